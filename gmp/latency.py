"""Per-request latency records: where each sampled request's time went.

A service is judged by its tail; when a request is slow its owner asks
where the time went.  gmp sees every transition of every G, so while
sampling is on (``enable()``) each G accounts its time in C (see
``_ext/latency.pxi``): runnable in a run queue, waiting for the GIL,
running, parked by wait reason (IO wait, chan, lock, blocking pool, sleep,
other), and runnable while its M ran *another* G for longer than
``hold_ms`` ("M held by G n": that G's stack is captured once per incident).

A request is whatever a server or handler brackets::

    with gmp.latency.begin("GET /quote") as req:     # or req = begin(...); end(req, 200)
        ...
        req.status = 200

On ``end`` the record (trace id, start, status, latency, class, breakdown)
is kept if the request failed, or took at least the class's ``slow_ms``, or
else 1 in ``every`` (a per-class counter; the record then has weight
``every`` so that percentiles over the records estimate those of all
requests).  Kept records go to a lock-free ring (appending needs no GIL and
never waits; when the reader falls behind the record is dropped and
counted: ``counts()``).  Read them in-process with ``take()``, or let a
drain thread append them to a file (``start_drain(path)``) that ``gmp
latency report FILE`` summarises with HdrHistogram.

Request classes are names (a route, a message type), mapped to small ids on
first use; ``configure(name, every=, slow_ms=)`` sets one class's sampling,
``enable(every=, slow_ms=)`` the default for classes not configured.  The
default rate, 1 in 16 plus every error and every request of 20 ms or more,
keeps the ring's traffic far below the request rate while never missing a
spike.  Decisions where the issue is silent: a request runs in one G (a
handler that hands work to other Gs sees that work as a park on a channel,
as Go's trace does); requests may nest; ``gmp.net.serve`` records each
connection G as a request unless its handler records its own (one per
message on a keep-alive connection); ``with begin(...)`` marks the record an error when the block
raises, and status 500 if none was set; a G spawned per request (gmp's
servers) starts its request at the G's birth (``since_spawn``), so queueing
before its first run counts.

The file (``start_drain``): a 64-byte header (``HEADER``: magic
``GMPLAT1``, version, record size, record count, drops, offset and length
of a JSON trailer, the clock origin), the fixed-size records (``RECORD``,
little-endian, 144 bytes each), then at ``stop`` the trailer: class names,
bucket names, the captured incidents of the records.  A file whose writer
died has a record count but no trailer; the report then names classes by id.
No numpy is needed to read it: ``read_file(path)``.
"""
import json
import mmap
import os
import struct
import threading
import time

from gmp._ext import _core

BUCKETS = ("run queue", "GIL wait", "running", "IO wait", "chan", "lock", "blocking pool",
           "sleep", "other wait", "M held by G")
HELD = BUCKETS.index("M held by G")
RECORD = struct.Struct("<Qqqq10qqqiHHII")
HEADER = struct.Struct("<8sIIQQQQq8x")
MAGIC = b"GMPLAT1\0"
VERSION = 1
ERROR, SLOW, SAMPLED = 1, 2, 4

assert RECORD.size == _core.lat_record_size() and HEADER.size == 64

_lock = threading.Lock()
_classes = _core.lat_class_ids   # name -> id (begin() looks names up in C)
_names = []            # id -> name
_configured = set()    # ids set by configure()
_default = (16, 20.0)  # every, slow_ms
_drain = None
_served = _core.lat_served   # G id -> its served() request, until the handler begins its own


class Record:
    """One request record (a row of the ring or the file)."""

    __slots__ = (
        "breakdown",
        "cls",
        "gid",
        "held_gid",
        "held_incident",
        "latency_ns",
        "start_ns",
        "status",
        "trace_id",
        "weight",
        "why",
    )

    def __init__(self, fields):
        (self.trace_id, self.start_ns, self.latency_ns, self.gid, *b) = fields[:14]
        self.breakdown = tuple(b)
        (self.held_gid, self.held_incident, self.status, self.cls, self.why,
         self.weight) = fields[14:20]

    def component(self, name):
        """The ns spent in the bucket called `name` (see BUCKETS)."""
        return self.breakdown[BUCKETS.index(name)]

    def __repr__(self):
        parts = ", ".join(f"{n}={v / 1e6:.3f}ms" for n, v in zip(BUCKETS, self.breakdown) if v)
        return (f"Record(cls={self.cls}, status={self.status}, "
                f"latency={self.latency_ns / 1e6:.3f}ms, {parts})")


def _check_rate(every, slow_ms):
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ValueError(f"every must be an int >= 0 (0: keep only errors and slow ones), got {every!r}")
    if isinstance(slow_ms, bool) or not isinstance(slow_ms, (int, float)) or not slow_ms >= 0:
        raise ValueError(f"slow_ms must be a number >= 0, got {slow_ms!r}")


def enable(every=16, slow_ms=20.0, capacity=4096, hold_ms=1.0):
    """Turn sampling on: per-G accounting and a fresh ring of `capacity`
    records (a power of two).  `every`/`slow_ms` are the default sampling
    of classes not configure()d; `hold_ms` is the shortest run of one G that
    counts as holding its M against the Gs queued behind it."""
    global _default
    _check_rate(every, slow_ms)
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError(f"capacity must be an int, not {type(capacity).__name__}")
    if isinstance(hold_ms, bool) or not isinstance(hold_ms, (int, float)):
        raise TypeError(f"hold_ms must be a number, not {type(hold_ms).__name__}")
    _core.lat_enable(True, capacity, float(hold_ms))
    with _lock:
        _default = (every, float(slow_ms))
        for cid in range(len(_names)):
            if cid not in _configured:
                _core.lat_configure(cid, every, int(slow_ms * 1e6))


def disable():
    """Turn sampling off; records already in the ring can still be taken."""
    _core.lat_enable(False)


def enabled():
    return _core.lat_enabled()


def class_id(name):
    """The id of request class `name` (registered on first use)."""
    cid = _classes.get(name)
    if cid is not None:
        return cid
    if not isinstance(name, str):
        raise TypeError(f"a request class is a str (a route, a message type), not {type(name).__name__}")
    with _lock:
        cid = _classes.get(name)
        if cid is None:
            cid = len(_names)
            every, slow_ms = _default
            _core.lat_configure(cid, every, int(slow_ms * 1e6))   # ValueError past the limit
            _names.append(name)
            _classes[name] = cid
    return cid


_core.lat_register = class_id


def class_names():
    """Request class names by id."""
    return list(_names)


def configure(name, every=None, slow_ms=None):
    """Sampling of one class: keep 1 in `every` (0: only errors and slow
    ones) and every request of `slow_ms` or more."""
    cid = class_id(name)
    every = _default[0] if every is None else every
    slow_ms = _default[1] if slow_ms is None else slow_ms
    _check_rate(every, slow_ms)
    with _lock:
        _core.lat_configure(cid, every, int(slow_ms * 1e6))
        _configured.add(cid)


Request = _core.Request


def begin(cls="-", trace_id=0, since_spawn=False):
    """The running G starts a request of class `cls`; returns a Request
    (``with`` it, or pass it to end()).  With since_spawn (a G spawned for
    this request) it counts from the G's birth, run-queue wait included.
    While sampling is off this costs one C call and records nothing."""
    return _core.lat_begin(cls, trace_id, since_spawn)


def end(req, status=0, error=False):
    """Closes `req`; True if it was recorded, False if not sampled (or
    sampling is off), None if the ring was full (counted as a drop)."""
    return _core.lat_end(req, status, error)


def served(handler):
    """`handler` for a server that runs it in a G per connection or per
    request (gmp.net.serve): while sampling is on each run is recorded as a
    request of class ``serve <handler name>`` from the G's birth, an error
    if it raised, unless the handler records requests of its own (a
    keep-alive connection's messages): then only those are recorded."""
    cls = f"serve {getattr(handler, '__qualname__', None) or repr(handler)}"

    def run(*args, **kwargs):
        if not _core.lat_enabled():
            return handler(*args, **kwargs)
        gid = _core.current().id
        req = _served[gid] = begin(cls, since_spawn=True)
        try:
            ret = handler(*args, **kwargs)
        except BaseException:
            if _served.pop(gid, None) is not None:
                end(req, 500, True)
            raise
        if _served.pop(gid, None) is not None:
            end(req)
        return ret

    run.__qualname__ = run.__name__ = getattr(handler, "__name__", "handler")
    run.__wrapped__ = handler
    return run


def record(cls, latency_s, status=0, error=False, trace_id=0, start_ns=None):
    """Records a request measured elsewhere (no breakdown: all "other
    wait"), sampled like the others; returns as end()."""
    if isinstance(latency_s, bool) or not isinstance(latency_s, (int, float)) or not latency_s >= 0:
        raise ValueError(f"latency_s must be a number >= 0, got {latency_s!r}")
    lat = int(latency_s * 1e9)
    if start_ns is None:
        start_ns = time.monotonic_ns() - lat
    return _core.lat_put(class_id(cls), trace_id, start_ns, lat, int(status), bool(error))


def take(n=256):
    """Up to n records from the ring (the in-process reader; do not use it
    while a drain thread runs)."""
    return [Record(f) for f in RECORD.iter_unpack(_core.lat_take(n))]


def counts():
    """(appended, dropped): records put in the ring, and those lost
    because it was full."""
    return _core.lat_counts()


def incidents():
    """{incident id: (holder G id, its name, ms held, stack lines innermost
    first)} of the recent incidents (a bounded table)."""
    return dict(_core.lat_incident_table())


# --- the file ---------------------------------------------------------------------

class Drain:
    """A thread that moves records from the ring into a memory-mapped file."""

    CHUNK = 1 << 20

    def __init__(self, path, interval=0.05):
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.path = os.fspath(path)
        self.interval = interval
        self.n = 0
        self.incidents = {}
        self._stop = threading.Event()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self._size = self.CHUNK
        os.ftruncate(self._fd, self._size)
        self._map = mmap.mmap(self._fd, self._size)
        self._origin = time.monotonic_ns()
        self._header(0, 0)
        self._thread = threading.Thread(target=self._loop, name="gmp-latency-drain", daemon=True)
        self._thread.start()

    def _header(self, toff, tlen):
        HEADER.pack_into(self._map, 0, MAGIC, VERSION, RECORD.size, self.n, counts()[1],
                         toff, tlen, self._origin)

    def _append(self, data):
        end = HEADER.size + (self.n * RECORD.size) + len(data)
        if end > self._size:
            self._map.close()
            self._size = max(self._size * 2, end + self.CHUNK)
            os.ftruncate(self._fd, self._size)
            self._map = mmap.mmap(self._fd, self._size)
        off = HEADER.size + self.n * RECORD.size
        self._map[off:off + len(data)] = data
        table = _core.lat_incident_table()
        for f in RECORD.iter_unpack(data):
            inc = f[15]
            if inc and inc not in self.incidents and inc in table:
                self.incidents[inc] = table[inc]
        self.n += len(data) // RECORD.size

    def drain_once(self):
        """Moves every record now in the ring to the file; returns how many."""
        got = 0
        while True:
            data = _core.lat_take(1024)
            if not data:
                break
            self._append(data)
            got += len(data) // RECORD.size
        self._header(0, 0)
        return got

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.drain_once()

    def stop(self):
        """Drains what is left, writes the trailer and closes the file."""
        self._stop.set()
        self._thread.join()
        self.drain_once()
        trailer = json.dumps({
            "classes": class_names(), "buckets": list(BUCKETS), "dropped": counts()[1],
            "incidents": {str(k): list(v) for k, v in self.incidents.items()},
        }).encode()
        off = HEADER.size + self.n * RECORD.size
        self._map.close()
        os.ftruncate(self._fd, off + len(trailer))
        os.pwrite(self._fd, trailer, off)
        self._map = mmap.mmap(self._fd, off + len(trailer))
        self._header(off, len(trailer))
        self._map.close()
        os.close(self._fd)
        return self.n


def start_drain(path, interval=0.05):
    """Starts the drain thread appending records to `path` (truncated);
    stop_drain() finishes the file."""
    global _drain
    if _drain is not None:
        raise RuntimeError(f"a latency drain is already writing {_drain.path}")
    _drain = Drain(path, interval)
    return _drain


def stop_drain():
    """Stops the drain thread; returns the number of records written."""
    global _drain
    d, _drain = _drain, None
    return d.stop() if d is not None else 0


class _EnvSampling:
    """Sampling and a drain started for GMPDEBUG=latency=FILE."""

    def __init__(self, path):
        enable()
        start_drain(path)

    def stop(self):
        stop_drain()
        disable()


def from_gmpdebug(value=None):
    """With GMPDEBUG latency=FILE (and no drain running): sampling on at the
    default rate, drained to FILE until stop()."""
    from gmp import settings

    path = settings.debug(value)["latency"]
    if not path or _drain is not None:
        return None
    if path == "1":
        raise ValueError("GMPDEBUG: latency needs a file name (latency=FILE)")
    return _EnvSampling(path)


def read_file(path):
    """(records, meta) of a file written by the drain; meta holds classes,
    buckets, incidents and dropped (from the trailer, when there is one)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < HEADER.size:
        raise ValueError(f"{path}: not a gmp latency file (too short)")
    magic, version, rsize, n, dropped, toff, tlen, _origin = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise ValueError(f"{path}: not a gmp latency file (bad magic {magic!r})")
    if version != VERSION or rsize != RECORD.size:
        raise ValueError(f"{path}: unsupported version {version} / record size {rsize}")
    body = data[HEADER.size:HEADER.size + n * RECORD.size]
    if len(body) != n * RECORD.size:
        raise ValueError(f"{path}: truncated: header says {n} records")
    records = [Record(f) for f in RECORD.iter_unpack(body)]
    meta = {"classes": [], "buckets": list(BUCKETS), "incidents": {}, "dropped": dropped}
    if toff and tlen:
        meta.update(json.loads(data[toff:toff + tlen]))
    return records, meta


# --- gmp latency report ---------------------------------------------------------------

PERCENTILES = (50, 90, 99, 99.9)


def _hist(records):
    from hdrh.histogram import HdrHistogram

    h = HdrHistogram(1, 3600 * 10**6, 3)          # microseconds, 1 us .. 1 h
    for r in records:
        h.record_value(max(1, min(r.latency_ns // 1000, 3600 * 10**6)), r.weight)
    return h


def _summary(records):
    h = _hist(records)
    out = {"records": len(records), "requests": h.get_total_count()}
    for p in PERCENTILES:
        out[f"p{p:g}_ms"] = h.get_value_at_percentile(p) / 1e3
    out["max_ms"] = max(r.latency_ns for r in records) / 1e6
    return out


def breakdown(rec, incidents=None):
    """The components of `rec`, worst first: [(label, ms, detail)]; the "M
    held by G" one names the holder and its function."""
    parts = []
    for name, ns in zip(BUCKETS, rec.breakdown):
        if ns <= 0:
            continue
        label, detail = name, None
        if name == BUCKETS[HELD] and rec.held_gid:
            label = f"M held by G {rec.held_gid}"
            inc = (incidents or {}).get(str(rec.held_incident)) or (incidents or {}).get(rec.held_incident)
            if inc:
                label += f" ({inc[1]})"
                detail = list(inc[3])
        parts.append((label, ns / 1e6, detail))
    parts.sort(key=lambda p: -p[1])
    return parts


def report(path, top=5):
    """The report of a latency file as a dict (what --json prints)."""
    records, meta = read_file(path)
    names = meta.get("classes") or []
    incidents = meta.get("incidents") or {}

    def cname(cid):
        return names[cid] if cid < len(names) else f"class {cid}"

    out = {"file": os.fspath(path), "dropped": meta.get("dropped", 0), "overall": None,
           "classes": {}, "slowest": []}
    if not records:
        return out
    out["overall"] = _summary(records)
    by = {}
    for r in records:
        by.setdefault(r.cls, []).append(r)
    for cid in sorted(by):
        out["classes"][cname(cid)] = _summary(by[cid])
    for r in sorted(records, key=lambda r: -r.latency_ns)[:top]:
        out["slowest"].append({
            "class": cname(r.cls), "latency_ms": r.latency_ns / 1e6, "status": r.status,
            "trace_id": r.trace_id, "g": r.gid, "start_ns": r.start_ns,
            "error": bool(r.why & ERROR),
            "breakdown": [{"component": label, "ms": ms, **({"stack": d} if d else {})}
                          for label, ms, d in breakdown(r, incidents)],
        })
    return out


def format_report(rep):
    cols = ["records", "requests"] + [f"p{p:g}_ms" for p in PERCENTILES] + ["max_ms"]
    heads = ["class", "records", "requests", "p50 ms", "p90 ms", "p99 ms", "p999 ms", "max ms"]
    lines = [f"gmp latency report: {rep['file']} ({rep['dropped']} dropped by the ring)"]
    if rep["overall"] is None:
        lines.append("no records")
        return "\n".join(lines)
    rows = [["(all)"] + [rep["overall"][c] for c in cols]]
    rows += [[name] + [s[c] for c in cols] for name, s in rep["classes"].items()]
    cells = [[str(r[0]), str(r[1]), str(r[2])] + [f"{v:.3f}" for v in r[3:]] for r in rows]
    width = [max(len(x) for x in col) for col in zip(heads, *cells)]
    lines.append("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(heads, width))))
    for c in cells:
        lines.append("  ".join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(c, width))))
    lines.append("")
    lines.append(f"slowest {len(rep['slowest'])} requests, worst component first:")
    for s in rep["slowest"]:
        lines.append(f"  {s['latency_ms']:.3f} ms  {s['class']}  status {s['status']}  G {s['g']}"
                     f"{'  ERROR' if s['error'] else ''}  trace {s['trace_id']:#x}")
        for b in s["breakdown"]:
            share = 100 * b["ms"] / s["latency_ms"] if s["latency_ms"] else 0
            lines.append(f"      {b['ms']:9.3f} ms {share:5.1f}%  {b['component']}")
            stack = b.get("stack", [])
            if stack:
                lines.append("                         where it let go of the M:")
            for frame in stack[:4]:
                lines.append(f"                           {frame}")
    return "\n".join(lines)


def _report_cmd(args):
    import sys

    try:
        import hdrh.histogram  # noqa: F401
    except ImportError:
        print("gmp latency report needs HdrHistogram: pip install 'gmp[latency]' "
              "(PyPI hdrhistogram)", file=sys.stderr)
        return 2
    try:
        rep = report(args.file, top=args.top)
    except (OSError, ValueError) as e:
        print(f"gmp latency report: {e}", file=sys.stderr)
        return 2
    print(json.dumps(rep, indent=2) if args.json else format_report(rep))
    return 0


def add_parser(subparsers):
    p = subparsers.add_parser("latency", help="per-request latency records",
                              description="Summarise per-request latency records.")
    sub = p.add_subparsers(dest="latency", metavar="ACTION")
    sub.required = True
    r = sub.add_parser("report", help="percentiles and the slowest requests' breakdown",
                       description="P50/P90/P99/P999/max overall and per class (HdrHistogram), "
                                   "and where the slowest requests' time went.")
    r.add_argument("file", help="a file written by gmp.latency.start_drain()")
    r.add_argument("--json", action="store_true", help="print JSON")
    r.add_argument("--top", type=int, default=5, help="slowest requests to break down (default 5)")
    r.set_defaults(func=_report_cmd)
    return p

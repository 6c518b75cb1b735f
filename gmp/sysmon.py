"""sysmon: the runtime's monitor thread (Go's sysmon), configured here.

The thread itself is compiled (``_ext/sysmon.pxi``): it scans the Ps without
the GIL every 500 us while any P is busy (backing off to 10 ms while all
sleep) and

(a) wakes an idle M when a P has made no scheduling progress (its schedtick
    unchanged) for ``stuck_ms`` (default 1 ms) while fresh Gs wait in its run
    queue or in the global queue: the owner is blocked in a call gmp cannot
    see or is running one long G, and the fresh Gs should be stolen.  That
    wake-up overrides the GIL back-off (see sysmon.pxi);
(b) reports, once per incident, a G that has kept its M for longer than
    ``long_ms`` without parking, with the stack of that M's thread
    (``sys._current_frames()``), on stderr.  Off unless asked for
    (``GMPDEBUG=sysmonlong=100``), as gevent's monitor thread is opt-in: a
    slow import or a CPU-bound handler is routine in a server, and a
    drop-in runtime must not write to its stderr uninvited;
(c) prints Go's schedtrace line every ``schedtrace`` ms when
    ``GMPDEBUG=schedtrace=MS`` is set, to stderr::

        SCHED 1004ms: gomaxprocs=2 idleprocs=1 threads=3 spinningthreads=0 idlethreads=1 runqueue=0 [ 3 0 ]

    threads counts the Ms plus sysmon; the bracket lists each P's local
    runnable Gs (runq, bound queue, inbox and runnext), as DESIGN.md shows
    it (Go itself prints ``[3 0]``).  With ``scheddetail=1`` the bracket
    gives way to one line per P, M and G in Go's detailed form
    (``  P0: status=1 schedtick=12 m=0 runqsize=3 ...``,
    ``  M1: p=1 curg=7 ...``, ``  G7: status=4(chan receive) m=1``).

Its settings come from GMPDEBUG (see gmp.settings, the one table of gmp's
environment variables): ``schedtrace`` (ms), ``scheddetail`` (0/1),
``sysmonlongms`` (ms; 0, the default, disables the report: the monitor is
quiet unless asked, as gevent's is), ``sysmonstuckms`` (ms, 0
disables the forced wake-up; a fraction such as 0.5 is allowed),
``sysmon`` (0 turns the thread off).  The old spellings ``sysmonlong`` (ms)
and ``sysmonstuck`` (us) still work.
"""
import sys
import traceback

from gmp import settings


class Config:
    """What the sysmon thread does; see the module docstring."""

    def __init__(self, stuck_ms=1.0, long_ms=100.0, schedtrace_ms=0, out=None,
                 on_long=None, on_trace=None, detail=False):
        self.stuck_ns = int(stuck_ms * 1e6)
        self.long_ns = int(long_ms * 1e6)
        self.trace_ns = int(schedtrace_ms * 1e6)
        self.out = out
        self.on_long = on_long
        self.on_trace = on_trace
        self.detail = bool(detail)
        self.incidents = []

    @classmethod
    def from_env(cls, value=None):
        """The Config GMPDEBUG (or `value`) asks for; None for sysmon=0."""
        d = settings.debug(value)
        if not d["sysmon"]:
            return None
        return cls(stuck_ms=d["sysmonstuckms"], long_ms=d["sysmonlongms"],
                   schedtrace_ms=d["schedtrace"], detail=d["scheddetail"])

    def _write(self, text):
        out = self.out if self.out is not None else sys.stderr
        try:
            out.write(text)
            out.flush()
        except (OSError, ValueError):
            pass

    def report_long(self, g, mid, ms, frame):
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "  (no frame)\n"
        self.incidents.append((g.id, mid, ms))
        if self.on_long is not None:
            self.on_long(g, mid, ms, stack)
            return
        self._write(f"gmp: sysmon: G {g.id} ({g.name}) has been running on M{mid} "
                    f"for {ms:.0f} ms without yielding:\n{stack}")

    def trace(self, line):
        if self.on_trace is not None:
            self.on_trace(line)
            return
        self._write(line + "\n")

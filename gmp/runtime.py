"""Starting the runtime: gmp.run() and the settings it reads.

``procs`` is the number of Ms (each an OS thread owning one P).  As in Go it
defaults to ``GMPMAXPROCS`` when set, else to the number of CPUs this process
may run on (its affinity mask, not the machine's CPU count).  ``policy`` is
a gmp.policy.Policy or the name of one; it defaults to ``GMPPOLICY`` or
"go".  Bad values are rejected here, before any thread starts, with a
message naming the setting -- also when run() is called from inside a G,
where the settings are otherwise unused; environment variables are read
through gmp.settings, the one table of them.  procs is capped at 1024 (Go's
limit on GOMAXPROCS).  ``GMPKILLGRACE`` (seconds, default 5) bounds how long
shutdown waits for a G that swallows gmp.Killed (see _ext/run.pxi).
"""
import os
import threading

from gmp import policy as _policy
from gmp import settings
from gmp import sysmon as _sysmon
from gmp import topology as _topology
from gmp._ext import _core
from gmp.debug import install_dump_signal

MAX_PROCS = 1024


def default_procs():
    n = settings.get("GMPMAXPROCS")
    return n if n is not None else len(os.sched_getaffinity(0))


def _observers():
    """The GMPDEBUG trace=FILE / latency=FILE recorders, started (imported
    only when asked for: a plain run does not pay for loading them)."""
    debug = settings.debug()
    out = []
    if debug["trace"]:
        from gmp import trace
        out.append(trace.from_gmpdebug())
    if debug["latency"]:
        from gmp import latency
        out.append(latency.from_gmpdebug())
    return [o for o in out if o is not None]


def run(main, *args, procs=None, policy=None, abort_on_error=False, sysmon=None, pin=None,
        **kwargs):
    """Run ``main(*args, **kwargs)`` as the main G and return its result.

    When the main G returns, every other G is cancelled (see gmp.Killed) and
    run() returns once each M has drained its queue.  An unhandled exception
    in another G is reported once on stderr and kept for join()/result();
    with ``abort_on_error=True`` it stops the runtime and run() raises it.
    ``sysmon`` is a gmp.sysmon.Config (default: from ``GMPDEBUG``; see
    gmp.sysmon), or False for no sysmon thread.  ``pin`` pins each M to a
    CPU: "none" (default, or ``GMPPIN``), "compact", "scatter" or a CPU list
    (gmp.topology); an impossible request raises ValueError here.

    Called from inside a G (a gmp program started by ``gmp run`` or
    ``gmp profile``), run() calls ``main`` in that G and returns its result:
    the runtime already running keeps its procs and policy.
    """
    if not callable(main):
        raise TypeError(f"gmp.run() main must be callable, not {type(main).__name__}")
    if procs is not None:
        if isinstance(procs, bool) or not isinstance(procs, int):
            raise TypeError(f"procs must be an int, not {type(procs).__name__}")
        if not 1 <= procs <= MAX_PROCS:
            raise ValueError(f"procs must be between 1 and {MAX_PROCS}, got {procs}")
    if sysmon is not None and sysmon is not False and not isinstance(sysmon, _sysmon.Config):
        raise TypeError(f"sysmon must be a gmp.sysmon.Config, False or None, "
                        f"not {type(sysmon).__name__}")
    if _core.current() is not None:
        return main(*args, **kwargs)
    if procs is None:
        procs = min(default_procs(), MAX_PROCS)
    kill_grace = settings.get("GMPKILLGRACE")
    policy = _policy.resolve(policy)
    placements = _topology.plan(procs, pin)
    if all(pl.cpus is None and pl.node == 0 for pl in placements):
        placements = None
    if sysmon is None:
        sysmon = _sysmon.Config.from_env()
    elif sysmon is False:
        sysmon = None
    restore = None
    signame = settings.debug()["dumpsignal"]
    if signame and threading.current_thread() is threading.main_thread():
        restore = install_dump_signal(signame)
    observers = _observers()
    try:
        return _core.run(main, args, kwargs, procs, policy, bool(abort_on_error), sysmon,
                         placements, kill_grace)
    finally:
        for o in observers:
            o.stop()
        if restore is not None:
            restore()

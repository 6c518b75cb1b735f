"""Starting the runtime: gmp.run() and the settings it reads.

``procs`` is the number of Ms (each an OS thread owning one P).  As in Go it
defaults to ``GMPMAXPROCS`` when set, else to the number of CPUs this process
may run on (its affinity mask, not the machine's CPU count).  ``policy`` is
a gmp.policy.Policy or the name of one; it defaults to ``GMPPOLICY`` or
"go".  Bad values are rejected here, before any thread starts, with a
message naming the setting; environment variables are read through
gmp.settings, the one table of them.
"""
import os
import threading

from gmp import policy as _policy
from gmp import settings
from gmp import sysmon as _sysmon
from gmp import topology as _topology
from gmp._ext import _core
from gmp.debug import install_dump_signal


def default_procs():
    n = settings.get("GMPMAXPROCS")
    return n if n is not None else len(os.sched_getaffinity(0))


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
    if _core.current() is not None:
        return main(*args, **kwargs)
    if procs is None:
        procs = default_procs()
    elif isinstance(procs, bool) or not isinstance(procs, int):
        raise TypeError(f"procs must be an int, not {type(procs).__name__}")
    elif procs < 1:
        raise ValueError(f"procs must be >= 1, got {procs}")
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
    try:
        return _core.run(main, args, kwargs, procs, policy, bool(abort_on_error), sysmon,
                         placements)
    finally:
        if restore is not None:
            restore()

"""Starting the runtime: gmp.run() and the settings it reads.

``procs`` is the number of Ms (each an OS thread owning one P).  As in Go it
defaults to ``GMPMAXPROCS`` when set, else to the number of CPUs this process
may run on (its affinity mask, not the machine's CPU count).  ``policy``
defaults to ``GMPPOLICY`` or "go".  Bad values are rejected here, before any
thread starts, with a message naming the setting.
"""
import os
import threading

from gmp._ext import _core
from gmp.debug import gmpdebug, install_dump_signal

POLICIES = _core.POLICIES


def default_procs():
    env = os.environ.get("GMPMAXPROCS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"GMPMAXPROCS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"GMPMAXPROCS must be a positive integer, got {env!r}")
        return n
    return len(os.sched_getaffinity(0))


def run(main, *args, procs=None, policy=None, abort_on_error=False, **kwargs):
    """Run ``main(*args, **kwargs)`` as the main G and return its result.

    When the main G returns, every other G is cancelled (see gmp.Killed) and
    run() returns once each M has drained its queue.  An unhandled exception
    in another G is reported once on stderr and kept for join()/result();
    with ``abort_on_error=True`` it stops the runtime and run() raises it.

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
    if policy is None:
        policy = os.environ.get("GMPPOLICY", "go")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; known policies: {', '.join(POLICIES)}")
    restore = None
    signame = gmpdebug().get("dumpsignal")
    if signame and threading.current_thread() is threading.main_thread():
        restore = install_dump_signal(signame)
    try:
        return _core.run(main, args, kwargs, procs, policy, bool(abort_on_error))
    finally:
        if restore is not None:
            restore()

"""gmp: a Go-style M:N coroutine runtime for CPython.

Gs (tasks, each run by a greenlet) are multiplexed over Ms (OS threads); each M
drives a P (local run queue, runnext slot, inbox, timer heap, epoll).  The hot
paths live in the Cython extension ``gmp._ext._core``; this package is the API.

Entry point
    gmp.run(main, *args, procs=None, policy=None, abort_on_error=False,
            sysmon=None, pin=None, **kwargs)
        Run ``main(*args, **kwargs)`` as the main G and return its result (or
        raise its exception).  When the main G returns, every other G is
        cancelled, as in Go when ``main`` returns: started Gs get ``gmp.Killed``
        at their park point (and at every park point after that) so their
        ``finally`` blocks run but cannot block; Gs that never started are
        dropped.  ``procs`` defaults to ``GMPMAXPROCS`` or the number of CPUs
        the process may run on; ``policy`` to ``GMPPOLICY`` or "go"; ``pin``
        to ``GMPPIN`` or "none" (see gmp.runtime, gmp.policy, gmp.topology).

    Blocking gmp operations called outside a runtime raise ``gmp.NoRuntime``:
    a runtime is never started implicitly.  Drop-in use goes through
    ``gmp run script.py`` (or ``gmp.run(main)``), which is explicit about the
    thread that becomes M0.

Gs
    gmp.go(fn, *args, **kwargs) -> G      spawn; fresh Gs may be stolen by any M
    G.join(timeout=None) -> bool          True once dead; never raises G's error
    G.result(timeout=None)                join, then return value / raise error
    G.exception                           the G's exception or None
    G.kill()                              deliver gmp.Killed at next park point
    G.id, G.name, G.dead, G.state
    gmp.current() -> G | None
    gmp.sleep(seconds), gmp.gosched()

Channels
    gmp.Chan(capacity=0): send(v, timeout=None), recv(timeout=None),
        try_send(v) -> bool, try_recv() -> (value, ok), close(),
        len(ch), ch.cap, ch.closed, iteration until closed and drained.
        Send on a closed channel raises gmp.ChanClosed; recv on a closed and
        drained channel raises gmp.ChanClosed; try_recv on it returns
        (None, False) only when the channel is open and empty and raises
        gmp.ChanClosed when it is closed and drained.
    gmp.select(*cases, default=False, timeout=None) -> (index, value, ok)
        cases are gmp.Recv(ch) and gmp.Send(ch, value).  Among ready cases one
        is chosen uniformly at random.  For a Recv case, value is the item
        received and ok is True, or (None, False) if the channel was closed.
        For a Send case value is None and ok is True.  With default=True and
        nothing ready, or when timeout expires, returns (-1, None, False).

Sync (gmp.sync, re-exported here)
    WaitGroup, Mutex, RWMutex, Once, Cond, Semaphore, Event

Cancellation
    gmp.Timeout(seconds): ``with`` scope; raises gmp.TimeoutError in the G when
        it expires while the G is parked inside the scope.
    Context: gmp.background(), gmp.with_cancel(parent) -> (ctx, cancel),
        gmp.with_timeout(parent, seconds), gmp.with_deadline(parent, when),
        gmp.with_value(parent, key, value); ctx.done() -> Chan, ctx.err(),
        ctx.value(key), ctx.deadline().

Networking and blocking calls
    gmp.net: listen, dial, serve, listen_udp, dial_udp, getaddrinfo (see
        gmp/net.py); I/O parks only the calling G.
    gmp.blocking(fn, *args, **kwargs): run a thread-blocking call on a helper
        OS thread, parking only the calling G.
    gmp.dump(file=None): every G with its state and stack, like Go's dump.
    gmp.net, gmp.monkey, gmp.profile, gmp.flame: networking, drop-in
        patching, the G-aware sampler, flame graphs and the A/B diff.
    gmp.latency, gmp.trace: per-request latency records with a breakdown of
        where the time went, and a scheduler trace for Perfetto.
    gmp.settings: every GMP* environment variable, its type, unit and
        default (the README's settings table is generated from it).

Errors
    ChanClosed, TimeoutError (a builtin TimeoutError), Killed (BaseException,
    like asyncio.CancelledError), Deadlock, NoRuntime; Rejected and
    QueueTimeout (a TimeoutError) from pooled policies (gmp.policy.submit).
"""

__version__ = "0.1.0"

# A clone that was never built (its root the working directory, or on
# sys.path ahead of an install) has this package but no compiled core: say
# what to do, as numpy does, rather than "No module named gmp._ext._core".
try:
    from gmp._ext._core import (
        Chan,
        ChanClosed,
        Deadlock,
        Event,
        G,
        Killed,
        Mutex,
        NoRuntime,
        Recv,
        Semaphore,
        Send,
        Timeout,
        TimeoutError,
        WaitGroup,
        current,
        go,
        gosched,
        select,
        sleep,
    )
except ModuleNotFoundError as _e:
    if _e.name != "gmp._ext._core":
        raise
    import os as _os
    _tree = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
    if _os.path.exists(_os.path.join(_tree, "setup.py")) and _os.path.isdir(_os.path.join(_tree, "_ext")):
        raise ImportError(
            f"you are importing gmp from its source tree ({_tree}) without a built extension: "
            "run `pip install -e .` there (or `python setup.py build_ext --inplace`), "
            "or leave the directory to use an installed gmp") from None
    raise ImportError(f"gmp's compiled core gmp._ext._core is missing under {_tree}: "
                      "reinstall gmp") from None
from gmp.blocking import blocking
from gmp.context import (
    Canceled,
    Context,
    DeadlineExceeded,
    background,
    with_cancel,
    with_deadline,
    with_timeout,
    with_value,
)
from gmp.debug import dump
from gmp.pool import QueueTimeout, Rejected
from gmp.runtime import run
from gmp.sync import Cond, Once, RWMutex

__all__ = [
    "Canceled",
    "Chan",
    "ChanClosed",
    "Cond",
    "Context",
    "DeadlineExceeded",
    "Deadlock",
    "Event",
    "G",
    "Killed",
    "Mutex",
    "NoRuntime",
    "Once",
    "QueueTimeout",
    "RWMutex",
    "Recv",
    "Rejected",
    "Semaphore",
    "Send",
    "Timeout",
    "TimeoutError",
    "WaitGroup",
    "background",
    "blocking",
    "current",
    "dump",
    "go",
    "gosched",
    "run",
    "select",
    "sleep",
    "with_cancel",
    "with_deadline",
    "with_timeout",
    "with_value",
]

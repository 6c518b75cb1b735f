"""gmp.monkey.signal: handlers installed with ``signal.signal`` run in a G
of their own (Python calls them in whatever greenlet is current on the main
thread, where blocking would stall that G or the scheduler); an exception
the handler raises is raised in the main G, as CPython raises it in the
main thread; ``getsignal`` returns the handler as installed.  An M parked in epoll_wait runs pending
handlers when a signal interrupts it.

``_thread.interrupt_main(signum)`` "simulates the effect of a signal
arriving in the main thread".  The real one only sets the signal's flag,
so the handler would run in whatever greenlet is current on the main OS
thread, whenever that thread next runs Python (M0 may sleep in epoll_wait
with nothing to wake it), and its KeyboardInterrupt would end that G, not
the main one.  Inside a G it runs the handler as a signal would under
patching, with its exception in the main G: called from the main G, at
once and raising there (CPython raises "instantly" in the main thread);
from another G, in that G, its exception thrown into the main G (at once
if it is parked, else at its next park point) before interrupt_main()
returns.  As CPython's,
a signal number out of range is ValueError and a signal Python does not
handle (SIG_DFL, SIG_IGN) does nothing.  Outside a G (a plain thread) it is
the real one.

The replacements carry the module of the functions they replace
(``signal.signal``, ``_thread.interrupt_main``), as pydoc expects."""
import _thread
import signal as _signal_mod

from gmp._ext import _core

_real_signal = _signal_mod.signal
_real_getsignal = _signal_mod.getsignal
_real_interrupt_main = _thread.interrupt_main


def _main_g():
    for g in _core.all_gs():
        if g.id == 1:
            return g
    return None


def _run_handler(handler, signum, frame, to_main):
    try:
        handler(signum, frame)
    except _core.Killed:
        raise
    except BaseException as e:  # noqa: BLE001 - re-raised in the main G, as CPython does
        # CPython raises a handler's exception in the main thread, in
        # whatever it was doing (an alarm that aborts a blocking call,
        # Ctrl-C's KeyboardInterrupt); here the main G's code is the main
        # thread's, so it gets it: returned to the main G when it was the
        # code interrupted, else thrown at its park point.
        main = _main_g() if to_main else None
        if main is None or main is _core.current():
            return e
        main.throw(e)
    return None


def _in_a_g(handler):
    def run_in_g(signum, frame):
        # Python runs signal handlers on the main thread, inside whatever
        # greenlet happens to be current there: a G or M0's scheduler.  A
        # handler that blocks would park that G or break the scheduler, so
        # it runs in a G of its own (while a runtime is up).  When the main
        # G was interrupted it waits for the handler, so that, as in
        # CPython, the handler has run (or its exception is raised) before
        # the interrupted call returns.
        cur = _core.current()
        sync = cur is not None and cur.id == 1
        try:
            g = _core.go(_run_handler, handler, signum, frame, not sync)
        except _core.NoRuntime:          # no runtime on this thread
            handler(signum, frame)
            return
        if sync:
            exc = g.result()
            if exc is not None:
                raise exc
    run_in_g.__wrapped__ = handler
    return run_in_g


def signal(signalnum, handler):
    if callable(handler) and not hasattr(handler, "__wrapped__"):
        handler = _in_a_g(handler)
    old = _real_signal(signalnum, handler)
    return getattr(old, "__wrapped__", old)


def getsignal(signalnum):
    h = _real_getsignal(signalnum)
    return getattr(h, "__wrapped__", h)


def interrupt_main(signum=_signal_mod.SIGINT):
    if _core.current() is None:
        return _real_interrupt_main(signum)
    if not 1 <= signum < _signal_mod.NSIG:
        raise ValueError("signal number out of range")
    handler = _real_getsignal(signum)
    if not callable(handler):            # SIG_DFL, SIG_IGN, or set from C
        return None
    # Unwrapped: the handler runs in the calling G, which asked for it, so
    # that its exception is in the main G before interrupt_main() returns
    # (a G of its own could run after the main G has moved on).
    handler = getattr(handler, "__wrapped__", handler)
    if _core.current().id == 1:
        return handler(signum, None)
    exc = _run_handler(handler, signum, None, True)
    if exc is not None:                  # no main G left to raise it in
        raise exc
    return None


# Shown under the module they replace, as pydoc and CPython's tests expect.
signal.__module__ = getsignal.__module__ = "signal"
interrupt_main.__module__ = "_thread"

"""gmp.monkey.signal: handlers installed with ``signal.signal`` run in a G
of their own (Python calls them in whatever greenlet is current on the main
thread, where blocking would stall that G or the scheduler); ``getsignal``
returns the handler as installed.  An M parked in epoll_wait runs pending
handlers when a signal interrupts it."""
import signal as _signal_mod

from gmp._ext import _core

_real_signal = _signal_mod.signal
_real_getsignal = _signal_mod.getsignal


def _in_a_g(handler):
    def run_in_g(signum, frame):
        # Python runs signal handlers on the main thread, inside whatever
        # greenlet happens to be current there: a G or M0's scheduler.  A
        # handler that blocks would park that G or break the scheduler, so
        # it runs in a G of its own (while a runtime is up).
        try:
            _core.go(handler, signum, frame)
        except _core.NoRuntime:          # no runtime on this thread
            handler(signum, frame)
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

"""gmp.blocking(fn, *args, **kwargs): run a call that would block its OS
thread (a C library call, DNS resolution, a file on a slow disk) on a helper
thread, while the calling G parks and its M goes on running other Gs.

The helper threads form one bounded pool per process (``GMPBLOCKINGTHREADS``,
default 32), started lazily and kept for the life of the process.  Calls
beyond the bound queue in FIFO order.  Completion readies the parked G on its
home P through the P's inbox and eventfd (see ``_ext/blocking.pxi``); while a
call is in flight it counts as an external waker, so deadlock detection does
not fire.  If the G is killed (or a ``gmp.Timeout`` expires) while it waits,
the G gets the exception at once; the helper thread still runs the call to
completion, as no thread can be interrupted, and its result is dropped.

Outside a G (no runtime, or a plain thread) the call simply runs inline.

The pool is built from ``_thread`` and ``_queue`` directly, so monkey
patching ``threading`` or ``queue`` never turns the helpers into Gs.

A forked child starts with no pool (its helper threads were not copied):
the first call there builds a new one.  A helper thread that cannot be
started is not counted, and the error reaches the caller.
"""
import _thread
import os
from _queue import SimpleQueue

from gmp import settings
from gmp._ext import _core

__all__ = ["blocking", "pool_size"]


def _max_threads():
    return settings.get("GMPBLOCKINGTHREADS")


class _Pool:
    def __init__(self, max_threads):
        self.max = max_threads
        self.jobs = SimpleQueue()
        self.lock = _thread.allocate_lock()
        self.nthreads = 0
        self.nidle = 0

    def submit(self, job):
        with self.lock:
            spawn = self.nidle == 0 and self.nthreads < self.max
            if spawn:
                self.nthreads += 1
            else:
                self.nidle -= 1 if self.nidle else 0
        if spawn:
            try:
                _thread.start_new_thread(self._worker, ())
            except BaseException:
                with self.lock:
                    self.nthreads -= 1
                raise
        self.jobs.put(job)

    def _worker(self):
        _core.own_thread()      # a helper: not a waker deadlock detection waits for
        get = self.jobs.get
        while True:
            job = get()
            job.run()
            job = None
            with self.lock:
                self.nidle += 1


_pool = None


def _forget_pool():
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def blocking(fn, *args, **kwargs):
    """Call fn(*args, **kwargs) on a helper OS thread and return its result
    (or raise its exception), parking only the calling G."""
    global _pool
    if not callable(fn):
        raise TypeError(f"gmp.blocking() target must be callable, not {type(fn).__name__}")
    if _core.current() is None:
        return fn(*args, **kwargs)
    if _pool is None:
        _pool = _Pool(_max_threads())
    return _core.blocking_call(_pool.submit, fn, args, kwargs)


def pool_size():
    """How many helper threads exist now."""
    return _pool.nthreads if _pool is not None else 0

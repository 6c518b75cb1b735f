"""gmp.monkey.threading: G-aware ``threading``.

``Thread`` starts a G (``current_thread()`` inside it is the Thread),
``Lock``/``_allocate_lock`` park Gs (and still block plain threads), so
``RLock`` (the Python version), ``Condition``, ``Event``, ``Semaphore``,
``Barrier`` and ``queue.Queue``/``SimpleQueue`` built on them are G-aware;
``get_ident`` is per G; ``local`` is G-local.
"""
import _thread
import contextvars
import threading
from time import monotonic as _monotonic

import gmp
from gmp._ext import _core
from gmp._ext._core import WaitList

_current = _core.current
_real_allocate_lock = _thread.allocate_lock
_real_get_ident = _thread.get_ident
_park_unless = _core.park_unless


class GLock:
    """threading.Lock that parks a G (and blocks a plain thread) while held
    elsewhere.  A real lock underneath, plus a list of parked Gs that
    release() notifies, so Gs and plain threads may share it."""

    __slots__ = ("_lock", "_waiters", "__weakref__")

    def __init__(self):
        self._lock = _real_allocate_lock()
        self._waiters = WaitList()

    def acquire(self, blocking=True, timeout=-1):
        lock = self._lock
        if lock.acquire(False):
            return True
        if not blocking:
            if timeout != -1:
                raise ValueError("can't specify a timeout for a non-blocking call")
            return False
        if _current() is None:
            return lock.acquire(True, timeout)
        deadline = None if timeout is None or timeout < 0 else _monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - _monotonic())
            r = _park_unless(lock.acquire, self._waiters, "sync.Mutex.Lock", left)
            if r == 1:
                return True
            if r == -1:
                return lock.acquire(False)

    __enter__ = acquire

    def release(self):
        self._lock.release()
        if self._waiters:
            self._waiters.notify(1)

    def __exit__(self, *exc):
        self.release()

    def locked(self):
        return self._lock.locked()

    def _at_fork_reinit(self):
        self._lock = _real_allocate_lock()
        self._waiters = WaitList()

    def __repr__(self):
        return f"<gmp.monkey.GLock {'locked' if self.locked() else 'unlocked'}>"


def get_ident():
    """threading.get_ident: per G inside a G (the main G keeps the thread's)."""
    g = _current()
    if g is None or g.id == 1:
        return _real_get_ident()
    return g.id


_RealThread = threading.Thread


class GThread(_RealThread):
    """threading.Thread whose start() spawns a G."""

    def start(self):
        if not self._initialized:
            raise RuntimeError("thread.__init__() not called")
        if self._started.is_set():
            raise RuntimeError("threads can only be started once")
        if _current() is None:
            # No runtime on this thread: a real thread, as before patching.
            return _RealThread.start(self)
        g = self._gmp_g = gmp.go(self._gmp_bootstrap)
        g.name = self.name
        # Registered before start() returns, as CPython's start() waits for
        # its thread to register: enumerate() and the join at exit see a
        # thread that has not run yet.
        self._ident = g.id
        threading._active[g.id] = self
        self._started.set()

    def _gmp_bootstrap(self):
        g = _current()
        try:
            self.run()
        except SystemExit:
            pass
        except gmp.Killed:
            # The runtime is ending (a daemon thread still running when the
            # script ended): CPython lets daemon threads vanish silently.
            pass
        except BaseException:
            self._invoke_excepthook(self)
        finally:
            self._gmp_done = True
            threading._active.pop(g.id, None)

    def join(self, timeout=None):
        g = getattr(self, "_gmp_g", None)
        if g is None:
            return _RealThread.join(self, timeout)
        if g is _current():
            raise RuntimeError("cannot join current thread")
        g.join(timeout)

    def is_alive(self):
        g = getattr(self, "_gmp_g", None)
        if g is None:
            return _RealThread.is_alive(self)
        return not g.dead

    @property
    def native_id(self):
        return self._ident if getattr(self, "_gmp_g", None) is not None else _RealThread.native_id.fget(self)


def shutdown():
    """What CPython's threading._shutdown() does at interpreter exit, for
    the threads that are Gs: call the ``threading._register_atexit`` hooks
    (ThreadPoolExecutor's, which lets queued work finish and joins its
    workers), then join every non-daemon G thread, including those started
    meanwhile.  Called in the main G when a ``gmp run`` script ends, before
    the runtime cancels the remaining Gs; CPython calls the real one after
    gmp.run returns, and finds no hooks left to run."""
    threading._SHUTTING_DOWN = True
    hooks = threading._threading_atexits
    while hooks:
        hooks.pop()()
    me = _current()
    while True:
        pending = [t for t in list(threading._active.values())
                   if getattr(t, "_gmp_g", None) is not None and t._gmp_g is not me
                   and not t.daemon and not t._gmp_g.dead]
        if not pending:
            return
        for t in pending:
            t.join()


class Glocal:
    """threading.local whose attributes are per G (per thread outside Gs):
    each G starts with its own contextvars context, so a ContextVar per
    local object is G-local storage."""

    __slots__ = ("_gmp_var", "_gmp_args", "__weakref__")

    def __new__(cls, *args, **kwargs):
        if (args or kwargs) and cls.__init__ is object.__init__:
            raise TypeError("Initialization arguments are not supported")
        self = object.__new__(cls)
        object.__setattr__(self, "_gmp_var", contextvars.ContextVar(f"gmp.local.{id(self)}"))
        object.__setattr__(self, "_gmp_args", (args, kwargs))
        return self

    def _gmp_dict(self):
        var = object.__getattribute__(self, "_gmp_var")
        d = var.get(None)
        if d is None:
            d = {}
            var.set(d)
            cls = type(self)
            if cls.__init__ is not object.__init__:
                args, kwargs = object.__getattribute__(self, "_gmp_args")
                cls.__init__(self, *args, **kwargs)
        return d

    def __getattribute__(self, name):
        if name in ("__class__", "__dict__", "_gmp_dict"):
            if name == "__dict__":
                return object.__getattribute__(self, "_gmp_dict")()
            return object.__getattribute__(self, name)
        d = object.__getattribute__(self, "_gmp_dict")()
        if name in d:
            return d[name]
        return object.__getattribute__(self, name)

    def __setattr__(self, name, value):
        object.__getattribute__(self, "_gmp_dict")()[name] = value

    def __delattr__(self, name):
        d = object.__getattribute__(self, "_gmp_dict")()
        try:
            del d[name]
        except KeyError:
            raise AttributeError(name) from None

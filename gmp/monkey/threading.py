"""gmp.monkey.threading: G-aware ``threading``.

``Thread`` starts a G (``current_thread()`` inside it is the Thread),
``Lock``/``_allocate_lock`` park Gs (and still block plain threads), so
``RLock`` (the Python version), ``Condition``, ``Event``, ``Semaphore``,
``Barrier`` and ``queue.Queue``/``SimpleQueue`` built on them are G-aware;
``get_ident`` is per G; ``local`` is per G (see Glocal); ``Timer`` is a
GThread.  ``shutdown()`` is CPython's exit-time join of non-daemon threads,
for those that are Gs (gmp run calls it when the script ends).

Names.  The replacements carry the module and name of what they replace
(``threading.Thread``, ``threading.Timer``, ``_thread._local``,
``_thread.get_ident``, ``_thread.allocate_lock``): reprs, error messages,
pickling by reference and checks such as CPython's ``check__all__`` see
the stdlib's names, as a user of the patched module expects; the base of
``Thread`` is the real one (``gmp.monkey.original("threading", "Thread")``).
As with ``_thread.lock``, lock objects come only from the factory
(``threading.Lock()``, ``allocate_lock()``): their type cannot be called.
"""
import _thread
import threading
import weakref
from time import monotonic as _monotonic

import gmp
from gmp._ext import _core
from gmp._ext._core import WaitList
from gmp.blocking import blocking

_current = _core.current
_real_allocate_lock = _thread.allocate_lock
_real_get_ident = _thread.get_ident
_real_local = _thread._local
_park_unless = _core.park_unless


class GLock:
    """threading.Lock that parks a G (and blocks a plain thread) while held
    elsewhere.  A real lock underneath, plus a list of parked Gs that
    release() notifies, so Gs and plain threads may share it."""

    __slots__ = ("_lock", "_waiters", "__weakref__")

    def __new__(cls, *args, **kwargs):
        raise TypeError(f"cannot create '{cls.__module__}.{cls.__qualname__}' instances")

    def acquire(self, blocking=True, timeout=-1):
        # Arguments are checked before trying, as _thread's lock does.
        if timeout != -1:
            if not blocking:
                raise ValueError("can't specify a timeout for a non-blocking call")
            if timeout < 0:
                raise ValueError("timeout value must be positive")
            if timeout > _thread.TIMEOUT_MAX:
                raise OverflowError("timeout value is too large")
        lock = self._lock
        if lock.acquire(False):
            return True
        if not blocking:
            return False
        if _current() is None:
            return lock.acquire(True, timeout)
        deadline = None if timeout == -1 else _monotonic() + timeout
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
        state = "locked" if self.locked() else "unlocked"
        return f"<{state} {type(self).__module__}.{type(self).__qualname__} object at {id(self):#x}>"


def allocate_lock():
    """threading.Lock() / _thread.allocate_lock(): a new unlocked GLock."""
    lock = object.__new__(GLock)
    lock._lock = _real_allocate_lock()
    lock._waiters = WaitList()
    return lock


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
        except gmp.Killed:
            # The runtime is ending (a daemon thread still running when the
            # script ended): CPython lets daemon threads vanish silently.
            pass
        except BaseException:  # noqa: BLE001 - as Thread._bootstrap_inner: to threading.excepthook
            # SystemExit included: the default threading.excepthook ignores
            # it, a replaced one sees it (as in CPython).
            self._invoke_excepthook(self)
        finally:
            # What the stdlib's _stop() records (repr says "stopped"); the
            # G's end is what is_alive() and join() look at.
            self._is_stopped = True
            threading._active.pop(g.id, None)
            _drop_locals_of(g)

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


class _OSThreadWaker:
    """Keeps deadlock detection from firing while OS threads started from
    Gs are alive: such a thread may still release a lock or set an event a
    G waits on, and the runtime cannot see it.  While any is alive, one
    keeper G waits on the gmp.blocking pool for the last to end - a call in
    flight there is what the runtime counts as an external waker.  A G that
    waits forever on a thread that never acts then hangs instead of raising
    Deadlock, as Go's detector stays silent while cgo threads run."""

    def __init__(self):
        self._mu = _real_allocate_lock()
        self._done = _real_allocate_lock()
        self._alive = 0

    def enter(self):
        with self._mu:
            self._alive += 1
            if self._alive > 1:
                return
            self._done.acquire()
        gmp.go(blocking, self._wait_all_ended).name = "gmp: OS threads alive"

    def leave(self):
        with self._mu:
            self._alive -= 1
            if self._alive == 0:
                self._done.release()

    def _wait_all_ended(self):
        with self._done:
            pass


_os_thread_waker = _OSThreadWaker()


class OSThread(_RealThread):
    """A real OS thread even under patching (for libraries whose threads sit
    in blocking C calls, gmp.monkey.grpc); started from a G, it counts as a
    possible waker of Gs for deadlock detection while it runs."""

    _gmp_tracked = False

    def start(self):
        if _current() is not None:
            self._gmp_tracked = True
            _os_thread_waker.enter()
        try:
            _RealThread.start(self)
        except BaseException:
            self._untrack()
            raise

    def _bootstrap_inner(self):
        try:
            _RealThread._bootstrap_inner(self)
        finally:
            self._untrack()

    def _untrack(self):
        if self._gmp_tracked:
            self._gmp_tracked = False
            _os_thread_waker.leave()


class GTimer(GThread):
    """threading.Timer on a G.  The stdlib's Timer subclasses the Thread
    class of import time (the real one), so it is rebuilt here from the
    stdlib's own methods over GThread rather than reimplemented."""

    __init__ = threading.Timer.__init__
    cancel = threading.Timer.cancel
    run = threading.Timer.run


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


_SWEEP_MIN = 64
_MISSING = object()


def _is_data_descriptor(cls, name):
    for klass in cls.__mro__:
        attr = klass.__dict__.get(name, _MISSING)
        if attr is not _MISSING:
            kind = type(attr)
            return hasattr(kind, "__set__") or hasattr(kind, "__delete__")
    return False


def _dict_of(self):
    """The attribute dict of local `self` for the calling G (or thread),
    made - and the subclass __init__ run on it - on first use."""
    g = _current()
    if g is None or g.id == 1:
        tls = object.__getattribute__(self, "_gmp_tls")
        try:
            return tls.d
        except AttributeError:
            pass
        d = tls.d = {}
    else:
        dicts = object.__getattribute__(self, "_gmp_dicts")
        d = dicts.get(g)
        if d is not None:
            return d
        d = dicts[g] = {}
        if len(dicts) > object.__getattribute__(self, "_gmp_sweep"):
            _sweep(self, dicts)
    cls = type(self)
    if cls.__init__ is not object.__init__:
        args, kwargs = object.__getattribute__(self, "_gmp_args")
        try:
            cls.__init__(self, *args, **kwargs)
        except BaseException:
            _forget(self, g)
            raise
    return d


def _forget(self, g):
    if g is None or g.id == 1:
        object.__getattribute__(self, "_gmp_tls").__dict__.pop("d", None)
    else:
        object.__getattribute__(self, "_gmp_dicts").pop(g, None)


# Every live Glocal, so that a thread ending drops its storage at once, as
# CPython's does (values such as connections are released with the thread).
# id -> weakref: list(dict.values()) copies without running Python code.
_all_locals = {}


def _drop_locals_of(g):
    for ref in list(_all_locals.values()):
        loc = ref()
        if loc is not None:
            object.__getattribute__(loc, "_gmp_dicts").pop(g, None)


def _sweep(self, dicts):
    # A G started by gmp.go rather than as a Thread runs no hook at its end
    # (and Gs cannot be weakly referenced), so the dicts of dead Gs are
    # dropped when the table has doubled since the last sweep: memory stays
    # proportional to the live Gs that use this local.
    # list() copies the keys without running Python code, so other Ms
    # adding theirs meanwhile cannot break the scan.
    for g in list(dicts):
        if g.dead:
            dicts.pop(g, None)
    object.__setattr__(self, "_gmp_sweep", max(_SWEEP_MIN, 2 * len(dicts)))


class Glocal:
    """threading.local whose attributes are per G (per OS thread outside
    Gs; the main G shares its thread's, as get_ident does).

    As in CPython: a subclass ``__init__`` runs once in each thread (G) on
    its first access, with the constructor's arguments - in the creating
    one by the constructor itself; class-level data descriptors
    (properties) win over the per-thread dict.  The storage belongs to the
    G itself, not to a contextvars Context: a value set inside
    ``contextvars.Context().run`` or an asyncio Task is seen by the rest of
    that G, as a thread-local is by the rest of a thread."""

    __slots__ = ("__weakref__", "_gmp_args", "_gmp_dicts", "_gmp_sweep", "_gmp_tls")

    def __new__(cls, *args, **kwargs):
        if (args or kwargs) and cls.__init__ is object.__init__:
            raise TypeError("Initialization arguments are not supported")
        self = object.__new__(cls)
        setslot = object.__setattr__
        setslot(self, "_gmp_dicts", {})
        setslot(self, "_gmp_tls", _real_local())
        setslot(self, "_gmp_args", (args, kwargs))
        setslot(self, "_gmp_sweep", _SWEEP_MIN)
        key = id(self)
        _all_locals[key] = weakref.ref(self, lambda _, key=key: _all_locals.pop(key, None))
        # The creating thread's dict, without __init__: type() calls that.
        g = _current()
        if g is None or g.id == 1:
            object.__getattribute__(self, "_gmp_tls").d = {}
        else:
            object.__getattribute__(self, "_gmp_dicts")[g] = {}
        return self

    def __getattribute__(self, name):
        if name == "__dict__":
            return _dict_of(self)
        d = _dict_of(self)
        if name in d and not _is_data_descriptor(type(self), name):
            return d[name]
        return object.__getattribute__(self, name)

    def __setattr__(self, name, value):
        if name == "__dict__":
            raise AttributeError(f"{type(self).__name__!r} object attribute '__dict__' is read-only")
        if _is_data_descriptor(type(self), name):
            return object.__setattr__(self, name, value)
        _dict_of(self)[name] = value

    def __delattr__(self, name):
        if name == "__dict__":
            raise AttributeError(f"{type(self).__name__!r} object attribute '__dict__' is read-only")
        if _is_data_descriptor(type(self), name):
            return object.__delattr__(self, name)
        d = _dict_of(self)
        try:
            del d[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}") from None


def _as_stdlib(obj, module, name):
    obj.__module__, obj.__name__, obj.__qualname__ = module, name, name


_as_stdlib(GThread, "threading", "Thread")
_as_stdlib(GTimer, "threading", "Timer")
_as_stdlib(Glocal, "_thread", "_local")
_as_stdlib(get_ident, "_thread", "get_ident")
_as_stdlib(allocate_lock, "_thread", "allocate_lock")

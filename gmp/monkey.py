"""gmp.monkey: make blocking stdlib code cooperative, as gevent.monkey does.

``patch_all()`` replaces, in place:

socket   ``socket.socket`` by a subclass whose fd is non-blocking and whose
         blocking methods (connect, accept, recv, recv_into, recvfrom,
         recvfrom_into, send, sendall, sendto, sendfile; makefile through them)
         park only the calling G on the netpoller.  settimeout() /
         setblocking() keep their meaning (socket.timeout, BlockingIOError).
         Outside a G (the main thread before gmp.run, a helper thread) the
         same socket blocks its thread, with poll(2).  ``getaddrinfo``,
         ``gethostbyname(_ex)``, ``gethostbyaddr`` and ``getnameinfo`` run on
         the gmp.blocking pool.
ssl      ``ssl.SSLContext.sslsocket_class`` (the stdlib's hook, read through
         the class, so contexts made before patching follow) becomes
         gmp._ssl.GSSLSocket: the fd stays non-blocking and the handshake,
         reads, writes and unwrap() retry on SSLWantRead/WriteError, parking
         only the G, with the socket's timeout (socket.timeout on expiry;
         timeout 0 raises SSLWant*Error as the stdlib does).  wrap_socket,
         http.client, urllib.request, urllib3/requests over https follow.  ssl
         may be imported before patch_all(): the class is patched in place.
         (patch_all(ssl=False) with socket patched leaves an ssl imported
         afterwards unusable: its SSLSocket would sit on a non-blocking GSocket.)
time     ``time.sleep`` is gmp.sleep inside a G.
select   ``select.select``, ``select.poll`` objects, ``select.epoll`` objects
         and the ``selectors`` classes wait on gmp's netpoller inside a G
         (``_ext/netpoll.pxi``, "Select"): a level-triggered poll(2) check
         without blocking, then, if nothing is ready, the G parks ("IO wait")
         on the poll descriptors of all its fds at once, as a channel select
         parks on several queues; its M runs other Gs and no helper thread is
         involved.  Outside a G they are the stdlib's.  ``selectors``:
         ``DefaultSelector`` and ``PollSelector`` are ``GSelector`` (a
         PollSelector over the patched poll object), ``SelectSelector`` and
         ``EpollSelector`` stay themselves but use the patched select.select
         and select.epoll, so code that picks one by name keeps its
         behaviour (an EpollSelector still has a fileno()).  select.select is
         not limited to FD_SETSIZE inside a G.
threading ``Thread`` starts a G (``current_thread()`` inside it is the Thread),
         ``Lock``/``_allocate_lock`` park Gs (and still block plain threads), so
         ``RLock`` (the Python version), ``Condition``, ``Event``,
         ``Semaphore``, ``Barrier`` and ``queue.Queue``/``SimpleQueue`` built on
         them are G-aware; ``get_ident`` is per G; ``local`` is G-local.
queue    ``queue.SimpleQueue`` becomes the pure-Python one (G-aware locks).
subprocess ``os.waitpid`` without WNOHANG runs on the gmp.blocking pool inside
         a G, so ``Popen.wait``/``run``/``call``/``communicate`` park only the
         G (their pipes go through the patched selectors and sockets).
signal   handlers installed with ``signal.signal`` run in a G of their own
         (Python calls them in whatever greenlet is current on the main
         thread, where blocking would stall that G or the scheduler);
         ``getsignal`` returns the handler as installed.  An M parked in
         epoll_wait runs pending handlers when a signal interrupts it.

Patching twice is harmless.  Modules that copied a name before patching
(``from socket import socket``, ``from time import sleep``) keep the original:
patch_all() warns about the ones it can detect (threads already running, known
modules holding the old objects).  ``run_script(path, argv)`` patches, then
runs the script as ``__main__`` inside ``gmp.run`` - what ``gmp run`` does.
"""
import _socket
import _thread
import argparse
import contextvars
import io
import os
import select as _select_mod
import selectors
import signal as _signal_mod
import socket as _socket_mod
import sys
import threading
import time
import warnings
from time import monotonic as _monotonic

import gmp
from gmp._ext import _core
from gmp._ext._core import PollDesc, WaitList
from gmp._ext._core import netpoll_poll_fds as _netpoll_poll_fds
from gmp._ext._core import netpoll_select as _netpoll_select
from gmp._ext._core import pd_registered as _pd_registered
from gmp.blocking import blocking

__all__ = ["patch_all", "patch_socket", "patch_ssl", "patch_time", "patch_select",
           "patch_thread", "patch_queue", "patch_subprocess", "patch_signal", "run_script",
           "is_patched", "original"]

_originals = {}
_patched = set()
_current = _core.current


def original(module, name):
    """The object `module.name` had before gmp patched it."""
    return _originals.get((module, name), getattr(sys.modules[module], name))


def _patch(module, name, value):
    mod = sys.modules[module]
    _originals.setdefault((module, name), getattr(mod, name, None))
    setattr(mod, name, value)


def is_patched(what):
    return what in _patched


# --- socket ----------------------------------------------------------------

_real_socket = _socket_mod.socket
_real_poll = _select_mod.poll
_POLLIN = _select_mod.POLLIN
_POLLOUT = _select_mod.POLLOUT
_EAGAIN = (BlockingIOError, InterruptedError)


def _timed_out():
    return _socket_mod.timeout("timed out")


class GSocket(_real_socket):
    """socket.socket with cooperative blocking (see the module notes)."""

    __slots__ = ("_gtimeout", "_pd")

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        _real_socket.__init__(self, family, type, proto, fileno)
        self._pd = None
        self._gtimeout = _socket_mod.getdefaulttimeout()
        _real_socket.settimeout(self, 0.0)

    # timeout / blocking mode, emulated on top of a non-blocking fd
    def settimeout(self, value):
        if value is not None:
            value = float(value)
            if value < 0:
                raise ValueError("Timeout value out of range")
        self._gtimeout = value

    def gettimeout(self):
        return self._gtimeout

    def setblocking(self, flag):
        self._gtimeout = None if flag else 0.0

    def getblocking(self):
        return self._gtimeout != 0.0

    @property
    def timeout(self):
        return self._gtimeout

    def _wait(self, write, deadline):
        """Waits until the fd may be ready; raises socket.timeout."""
        if _current() is None:
            remaining = -1 if deadline is None else max(0, deadline - _monotonic())
            p = _real_poll()
            p.register(self.fileno(), _POLLOUT if write else _POLLIN)
            if not p.poll(None if remaining < 0 else remaining * 1000):
                raise _timed_out()
            return
        pd = self._pd
        if pd is None or pd.fd != self.fileno():
            # select() may have registered one for this fd already.
            pd = self._pd = _pd_registered(self.fileno()) or PollDesc(self.fileno())
        try:
            if write:
                pd.set_write_deadline(deadline)
                pd.wait_write()
            else:
                pd.set_read_deadline(deadline)
                pd.wait_read()
        except TimeoutError:
            raise _timed_out() from None

    def _io(self, write, fn, *args):
        t = self._gtimeout
        deadline = None if t is None else _monotonic() + t
        while True:
            try:
                return fn(self, *args)
            except _EAGAIN:
                if t == 0.0:
                    raise
            self._wait(write, deadline)

    def recv(self, *args):
        return self._io(False, _real_socket.recv, *args)

    def recv_into(self, *args):
        return self._io(False, _real_socket.recv_into, *args)

    def recvfrom(self, *args):
        return self._io(False, _real_socket.recvfrom, *args)

    def recvfrom_into(self, *args):
        return self._io(False, _real_socket.recvfrom_into, *args)

    def recvmsg(self, *args):
        return self._io(False, _real_socket.recvmsg, *args)

    def send(self, *args):
        return self._io(True, _real_socket.send, *args)

    def sendto(self, *args):
        return self._io(True, _real_socket.sendto, *args)

    def sendmsg(self, *args):
        return self._io(True, _real_socket.sendmsg, *args)

    def sendall(self, data, flags=0):
        view = memoryview(data).cast("B")
        total = len(view)
        t = self._gtimeout
        deadline = None if t is None else _monotonic() + t
        sent = 0
        while sent < total:
            try:
                sent += _real_socket.send(self, view[sent:], flags)
            except _EAGAIN:
                if t == 0.0:
                    raise
                self._wait(True, deadline)

    def _accept(self):
        return self._io(False, _real_socket._accept)

    def accept(self):
        fd, addr = self._accept()
        return GSocket(self.family, self.type, self.proto, fileno=fd), addr

    def connect(self, address):
        err = self.connect_ex(address)
        if err:
            if err in (11, 115):   # EAGAIN / EINPROGRESS with timeout 0
                raise BlockingIOError(err, os.strerror(err))
            raise OSError(err, os.strerror(err))

    def connect_ex(self, address):
        if isinstance(address, tuple) and len(address) >= 2 and self.family in (
                _socket.AF_INET, _socket.AF_INET6):
            address = _resolve_for_connect(address, self.family, self.type)
        err = _real_socket.connect_ex(self, address)
        if err in (115, 11) and self._gtimeout != 0.0:   # EINPROGRESS, EAGAIN
            t = self._gtimeout
            self._wait(True, None if t is None else _monotonic() + t)
            err = self.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
        return err

    def sendfile(self, file, offset=0, count=None):
        return self._sendfile_use_send(file, offset, count)

    def dup(self):
        s = GSocket(self.family, self.type, self.proto, fileno=os.dup(self.fileno()))
        s.settimeout(self._gtimeout)
        return s

    def _close_pd(self):
        """Wakes the Gs waiting on this fd (in recv or select) with a close:
        our PollDesc, or the one a select() registered for the fd."""
        pd = getattr(self, "_pd", None)
        self._pd = None
        if pd is None:
            pd = _pd_registered(_real_socket.fileno(self))
        if pd is not None:
            pd.close()

    def detach(self):
        self._close_pd()
        return _real_socket.detach(self)

    def close(self):
        self._close_pd()
        _real_socket.close(self)

    def _real_close(self, _ss=_real_socket):
        self._close_pd()
        _ss._real_close(self)


def _resolve_for_connect(address, family, type_):
    host = address[0]
    try:
        _socket.inet_pton(family, host)
        return address
    except (OSError, TypeError, ValueError):
        pass
    infos = _getaddrinfo(host, address[1], family, type_)
    return infos[0][4] if infos else address


def _on_pool(name):
    fn = getattr(_socket_mod, name)

    def call(*args, **kwargs):
        if _current() is None:
            return fn(*args, **kwargs)
        return blocking(fn, *args, **kwargs)
    call.__name__ = name
    call.__doc__ = f"socket.{name} on the gmp.blocking pool (cooperative)."
    return call


_getaddrinfo = _on_pool("getaddrinfo")


def patch_socket():
    if "socket" in _patched:
        return
    _patch("socket", "socket", GSocket)
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
                 "getnameinfo"):
        _patch("socket", name, _getaddrinfo if name == "getaddrinfo" else _on_pool(name))
    _patched.add("socket")


# --- ssl -------------------------------------------------------------------

def patch_ssl():
    """Installs gmp._ssl.GSSLSocket as ``ssl.SSLContext.sslsocket_class``.
    Instances read the attribute through the class, so SSLContexts created
    before patching get the cooperative class too (unless one set its own)."""
    if "ssl" in _patched:
        return
    try:
        import ssl
    except ImportError:          # Python built without OpenSSL
        return
    from gmp._ssl import GSSLSocket
    ssl.SSLContext.sslsocket_class = GSSLSocket
    _patched.add("ssl")


# --- time ------------------------------------------------------------------

_real_sleep = time.sleep


def sleep(seconds):
    """time.sleep that parks only the G when called inside one."""
    if _current() is None:
        return _real_sleep(seconds)
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    gmp.sleep(seconds)


def patch_time():
    if "time" not in _patched:
        _patch("time", "sleep", sleep)
        _patched.add("time")


# --- select / selectors ------------------------------------------------------

_real_select = _select_mod.select
_real_epoll = _select_mod.epoll


def _fileno(obj):
    """The fd of an int or an object with fileno(), checked as select does."""
    if isinstance(obj, int):
        fd = obj
    else:
        try:
            fileno = obj.fileno
        except AttributeError:
            raise TypeError("argument must be an int, or have a fileno() method.") from None
        fd = fileno()
        if not isinstance(fd, int):
            raise TypeError("fileno() returned a non-integer")
    if fd < 0:
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    return fd


def select(rlist, wlist, xlist, timeout=None):
    """select.select; inside a G it parks only the G, on the netpoller."""
    if _current() is None:
        return _real_select(rlist, wlist, xlist, timeout)
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError("timeout must be a float or None")
        if timeout < 0:
            raise ValueError("timeout must be non-negative")
    lists = (list(rlist), list(wlist), list(xlist))
    fds = [[_fileno(o) for o in objs] for objs in lists]
    ready = _netpoll_select(fds[0], fds[1], fds[2], timeout)
    return [[o for o, fd in zip(objs, fdl) if fd in got] if got else []
            for objs, fdl, got in zip(lists, fds, map(set, ready))]


def _poll_seconds(timeout):
    """A poll() timeout in milliseconds as seconds (None: forever)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be an integer or None")
    return None if timeout < 0 else timeout / 1000.0


class _GPoll:
    """select.poll() whose poll() parks only the G, on the netpoller."""

    def __init__(self):
        self._p = _real_poll()      # validates, and serves plain threads
        self._fds = {}

    def register(self, fd, eventmask=_POLLIN | _POLLOUT | _select_mod.POLLPRI):
        self._p.register(fd, eventmask)
        self._fds[_fileno(fd)] = eventmask & 0xffff

    def modify(self, fd, eventmask):
        self._p.modify(fd, eventmask)
        self._fds[_fileno(fd)] = eventmask & 0xffff

    def unregister(self, fd):
        self._p.unregister(fd)
        del self._fds[_fileno(fd)]

    def poll(self, timeout=None):
        if _current() is None:
            return self._p.poll(timeout)
        return _netpoll_poll_fds(list(self._fds.items()), _poll_seconds(timeout))


class GEpoll:
    """select.epoll (a wrapper: the type cannot be subclassed) whose poll()
    parks only the G: it looks with timeout 0, then waits on the netpoller
    for the epoll fd itself to turn readable."""

    __slots__ = ("_ep", "__weakref__")

    def __init__(self, sizehint=-1, flags=0, *, _ep=None):
        self._ep = _real_epoll(sizehint, flags) if _ep is None else _ep

    @classmethod
    def fromfd(cls, fd):
        return cls(_ep=_real_epoll.fromfd(fd))

    def __getattr__(self, name):        # fileno, register, modify, unregister, close
        return getattr(self._ep, name)

    @property
    def closed(self):
        return self._ep.closed

    def __enter__(self):
        self._ep.__enter__()
        return self

    def __exit__(self, *exc):
        return self._ep.__exit__(*exc)

    def poll(self, timeout=None, maxevents=-1):
        ep = self._ep
        if _current() is None:
            return ep.poll(timeout, maxevents)
        if timeout is not None and (isinstance(timeout, bool)
                                    or not isinstance(timeout, (int, float))):
            raise TypeError("timeout must be an integer or None")
        deadline = None if timeout is None or timeout < 0 else _monotonic() + timeout
        while True:
            r = ep.poll(0, maxevents)
            if r:
                return r
            left = None
            if deadline is not None:
                left = deadline - _monotonic()
                if left <= 0:
                    return []
            _netpoll_poll_fds([(ep.fileno(), _POLLIN)], left)


class GSelector(selectors.PollSelector):
    """selectors.DefaultSelector (and PollSelector): a PollSelector whose
    select() waits on the netpoller inside a G."""

    _selector_cls = _GPoll


class GSelectSelector(selectors.SelectSelector):
    """selectors.SelectSelector over the patched select.select."""

    _select = staticmethod(select)


class GEpollSelector(selectors.EpollSelector):
    """selectors.EpollSelector over the patched select.epoll."""

    _selector_cls = GEpoll


def patch_select():
    if "select" in _patched:
        return
    _patch("select", "select", select)
    _patch("select", "poll", _GPoll)
    _patch("select", "epoll", GEpoll)
    for name, cls in (("DefaultSelector", GSelector), ("PollSelector", GSelector),
                      ("SelectSelector", GSelectSelector), ("EpollSelector", GEpollSelector)):
        _patch("selectors", name, cls)
    if "socketserver" in sys.modules:
        _patch("socketserver", "_ServerSelector", GSelector)
    _patched.add("select")


# --- threading -----------------------------------------------------------------

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
        self._gmp_g = gmp.go(self._gmp_bootstrap)
        self._gmp_g.name = self.name
        self._started.set()

    def _gmp_bootstrap(self):
        g = _current()
        self._ident = g.id
        threading._active[g.id] = self
        try:
            self.run()
        except SystemExit:
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


def patch_thread():
    if "thread" in _patched:
        return
    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and not isinstance(t, threading._DummyThread)]
    if others:
        warnings.warn(f"gmp.monkey: {len(others)} thread(s) were started before patching and "
                      "stay OS threads: " + ", ".join(t.name for t in others[:5]),
                      RuntimeWarning, stacklevel=3)
    _patch("threading", "Lock", GLock)
    _patch("threading", "_allocate_lock", GLock)
    _patch("threading", "_CRLock", None)          # RLock() -> _PyRLock on GLock
    _patch("threading", "get_ident", get_ident)
    _patch("threading", "Thread", GThread)
    _patch("threading", "local", Glocal)
    _patched.add("thread")


def patch_queue():
    if "queue" in _patched:
        return
    import queue
    _patch("queue", "SimpleQueue", queue._PySimpleQueue)
    _patched.add("queue")


# --- all -----------------------------------------------------------------------

def _warn_early_imports():
    for modname, mod in list(sys.modules.items()):
        if mod is None or modname.startswith(("gmp", "_")) or modname in (
                "socket", "time", "select", "selectors", "threading", "queue"):
            continue
        if modname == "ssl" and "ssl" in _patched:
            continue     # ssl.socket is only SSLSocket's base: GSSLSocket adds GSocket
        d = getattr(mod, "__dict__", None)
        if not d:
            continue
        for key, orig in (("sleep", _real_sleep), ("socket", _real_socket),
                          ("Thread", _RealThread)):
            if d.get(key) is orig:
                warnings.warn(f"gmp.monkey: {modname}.{key} was imported before patch_all() and "
                              "stays blocking; patch earlier (gmp run script.py does)",
                              RuntimeWarning, stacklevel=3)


# --- subprocess (os.waitpid) ---------------------------------------------------

_real_waitpid = os.waitpid


def _coop_waitpid(pid, options):
    # subprocess looks os.waitpid up at each call: Popen.wait() without a
    # timeout (and run(), call(), communicate() after the pipes close) block
    # in waitpid(pid, 0); a helper thread makes that park only the G.  With
    # WNOHANG it never blocks, and wait(timeout) polls with WNOHANG and
    # time.sleep, which is gmp.sleep once patched.
    if options & os.WNOHANG or _current() is None:
        return _real_waitpid(pid, options)
    return blocking(_real_waitpid, pid, options)


def patch_subprocess():
    if "subprocess" in _patched:
        return
    _patch("os", "waitpid", _coop_waitpid)
    _patched.add("subprocess")


# --- signal ------------------------------------------------------------------

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


def _coop_signal(signalnum, handler):
    if callable(handler) and not hasattr(handler, "__wrapped__"):
        handler = _in_a_g(handler)
    old = _real_signal(signalnum, handler)
    return getattr(old, "__wrapped__", old)


def _coop_getsignal(signalnum):
    h = _real_getsignal(signalnum)
    return getattr(h, "__wrapped__", h)


def patch_signal():
    if "signal" in _patched:
        return
    _patch("signal", "signal", _coop_signal)
    _patch("signal", "getsignal", _coop_getsignal)
    _patched.add("signal")


def patch_all(socket=True, time=True, select=True, thread=True, queue=True,
              subprocess=True, signal=True, ssl=True):
    """Patch the stdlib for cooperative use by Gs (see the module notes).
    Idempotent."""
    first = not _patched
    if socket:
        patch_socket()
    if ssl:
        patch_ssl()
    if time:
        patch_time()
    if select:
        patch_select()
    if thread:
        patch_thread()
    if queue:
        patch_queue()
    if subprocess:
        patch_subprocess()
    if signal:
        patch_signal()
    if first:
        _warn_early_imports()


def run_script(path, argv, procs=None, duration=None):
    """Patches, then runs the script at `path` as ``__main__`` with sys.argv
    = [path, *argv] inside gmp.run (the script body is the main G).  With
    `duration`, the script is stopped (its Gs cancelled) after that many
    seconds, as ``py-spy record --duration`` does."""
    import runpy
    if not os.path.exists(path):
        raise FileNotFoundError(f"gmp: no such script: {path}")
    patch_all()
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))

    def main():
        if duration is None:
            runpy.run_path(path, run_name="__main__")
            return
        g = gmp.go(runpy.run_path, path, run_name="__main__")
        if g.join(duration):
            g.result()
    return gmp.run(main, procs=procs)


def script_argv(args, command):
    """The script and its arguments from an argparse REMAINDER (a leading
    "--" dropped); None, after saying so, if there is no script."""
    argv = list(args.script)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print(f"gmp {command}: give a script to run: gmp {command} [options] [--] script.py [args...]",
              file=sys.stderr)
        return None
    return argv


def _run_cmd(args):
    argv = script_argv(args, "run")
    if argv is None:
        return 2
    run_script(argv[0], argv[1:], procs=args.procs)
    return 0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "run", help="run an unmodified script on gmp, monkey patched",
        description="Patch the standard library (gmp.monkey.patch_all) and run "
                    "SCRIPT as __main__ in the main G.")
    p.add_argument("--procs", type=int, help="number of Ms (default GMPMAXPROCS or CPUs)")
    p.add_argument("script", nargs=argparse.REMAINDER, help="script.py [args...]")
    p.set_defaults(func=_run_cmd)
    return p

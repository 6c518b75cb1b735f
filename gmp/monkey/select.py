"""gmp.monkey.select: ``select.select``, ``select.poll`` and ``select.epoll``
objects and the ``selectors`` classes that wait on gmp's netpoller inside a G.

Inside a G each wait is a level-triggered poll(2) check without blocking,
then, if nothing is ready, the G parks ("IO wait") on the poll descriptors
of all its fds at once (``_ext/netpoll.pxi``, "Select"), as a channel select
parks on several queues; its M runs other Gs and no helper thread is
involved.  Outside a G they are the stdlib's.  ``selectors``:
``DefaultSelector`` and ``PollSelector`` are ``GSelector`` (a PollSelector
over the patched poll object), ``SelectSelector`` and ``EpollSelector`` stay
themselves but use the patched select.select and select.epoll, so code that
picks one by name keeps its behaviour (an EpollSelector still has a
fileno()).  select.select is not limited to FD_SETSIZE inside a G.
"""
import select as _select_mod
import selectors
from time import monotonic as _monotonic

from gmp._ext import _core
from gmp._ext._core import netpoll_poll_fds as _netpoll_poll_fds
from gmp._ext._core import netpoll_select as _netpoll_select

_current = _core.current
_real_poll = _select_mod.poll
_POLLIN = _select_mod.POLLIN
_POLLOUT = _select_mod.POLLOUT
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


def _objects_and_fds(seq):
    """The objects of one select() list and their fds.  A list or tuple is
    walked by index with its length read at every step, as CPython's
    select does, so a fileno() that mutates the list sees the same result."""
    if not isinstance(seq, (list, tuple)):
        seq = list(seq)
    objs, fds = [], []
    i = 0
    while i < len(seq):
        obj = seq[i]
        fds.append(_fileno(obj))
        objs.append(obj)
        i += 1
    return objs, fds


def select(rlist, wlist, xlist, timeout=None):
    """select.select; inside a G it parks only the G, on the netpoller."""
    if _current() is None:
        return _real_select(rlist, wlist, xlist, timeout)
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError("timeout must be a float or None")
        if timeout < 0:
            raise ValueError("timeout must be non-negative")
    lists, fds = zip(*(_objects_and_fds(seq) for seq in (rlist, wlist, xlist)))
    ready = _netpoll_select(fds[0], fds[1], fds[2], timeout)
    return tuple([o for o, fd in zip(objs, fdl) if fd in got] if got else []
                 for objs, fdl, got in zip(lists, fds, map(set, ready)))


def _poll_seconds(timeout):
    """A poll() timeout in milliseconds as seconds (None: forever)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be an integer or None")
    return None if timeout < 0 else timeout / 1000.0


class _GPoll:
    """The objects select.poll() returns; their poll() parks only the G, on
    the netpoller.  Like the C type, made only by select.poll()."""

    __slots__ = ("_p", "_fds")

    def __new__(cls, *args, **kwargs):
        raise TypeError(f"cannot create '{cls.__module__}.{cls.__qualname__}' instances")

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


def poll():
    """select.poll: a poll object whose poll() parks only the G."""
    p = object.__new__(_GPoll)
    p._p = _real_poll()         # validates, and serves plain threads
    p._fds = {}
    return p


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

    _selector_cls = staticmethod(poll)


class GSelectSelector(selectors.SelectSelector):
    """selectors.SelectSelector over the patched select.select."""

    _select = staticmethod(select)


class GEpollSelector(selectors.EpollSelector):
    """selectors.EpollSelector over the patched select.epoll."""

    _selector_cls = GEpoll

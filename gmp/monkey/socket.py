"""gmp.monkey.socket: ``socket.socket`` with cooperative blocking.

GSocket is a subclass whose fd is non-blocking and whose blocking methods
(connect, accept, recv, recv_into, recvfrom, recvfrom_into, send, sendall,
sendto, sendfile; makefile through them) park only the calling G on the
netpoller.  settimeout() / setblocking() keep their meaning (socket.timeout,
BlockingIOError): the timeout is kept here and the fd's own stays 0.
Outside a G (the main thread before gmp.run, a helper thread) the same
socket blocks its thread, with poll(2).  Host names given to connect() are
resolved on the gmp.blocking pool (gmp.monkey.dns).
"""
import _socket
import os
import select as _select_mod
import socket as _socket_mod
from functools import partial
from time import monotonic as _monotonic

from gmp._ext import _core
from gmp._ext._core import PollDesc
from gmp._ext._core import pd_registered as _pd_registered
from gmp.monkey.dns import resolve_for_connect as _resolve_for_connect
from gmp.netcore import check_timeout, finish_connect, retry

_current = _core.current
_real_socket = _socket_mod.socket
_real_poll = _select_mod.poll
_POLLIN = _select_mod.POLLIN
_POLLOUT = _select_mod.POLLOUT


def _timed_out():
    return TimeoutError("timed out")


def _reraise(err):
    # The wait of a socket whose timeout is 0: the would-block error is the answer.
    raise err


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
        self._gtimeout = check_timeout(value)

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

    def _waiter(self, write):
        """netcore.retry's wait for one call, under this socket's timeout
        (one deadline for the whole call, as the stdlib's)."""
        t = self._gtimeout
        if t == 0.0:
            return _reraise
        deadline = None if t is None else _monotonic() + t
        return lambda _err: self._wait(write, deadline)

    def _io(self, write, fn, *args):
        return retry(partial(fn, self, *args), self._waiter(write))

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
        wait = self._waiter(True)
        sent = 0
        while sent < total:
            sent += retry(partial(_real_socket.send, self, view[sent:], flags), wait)

    def _accept(self):
        return self._io(False, _real_socket._accept)

    def accept(self):
        fd, addr = self._accept()
        return GSocket(self.family, self.type, self.proto, fileno=fd), addr

    def connect(self, address):
        # GSocket's own connect_ex, not self's: SSLSocket overrides
        # connect_ex to wrap and handshake, and its connect() reaches here
        # through super() with the wrapping already done.
        err = GSocket.connect_ex(self, address)
        if err:
            if err in (11, 115):   # EAGAIN / EINPROGRESS with timeout 0
                raise BlockingIOError(err, os.strerror(err))
            raise OSError(err, os.strerror(err))

    def connect_ex(self, address):
        if isinstance(address, tuple) and len(address) >= 2 and self.family in (
                _socket.AF_INET, _socket.AF_INET6):
            address = _resolve_for_connect(address, self.family, self.type)
        t = self._gtimeout
        wait = None if t == 0.0 else partial(self._wait, True, None if t is None else _monotonic() + t)
        return finish_connect(_real_socket.connect_ex(self, address), self, wait)

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

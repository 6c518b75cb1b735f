"""gmp.monkey.ssl: the cooperative ssl.SSLSocket that gmp.monkey.patch_ssl()
installs as ``ssl.SSLContext.sslsocket_class``.

The stdlib's SSLSocket waits inside C: each _ssl call (handshake, read,
write, shutdown) polls the fd with the socket's timeout.  GSSLSocket keeps
the fd non-blocking instead - it is also a gmp.monkey.socket.GSocket, whose C-level
timeout is always 0 and whose settimeout()/setblocking() are emulated - so
every _ssl call returns at once, raising SSLWantReadError/SSLWantWriteError
when it would block.  The methods that call into _ssl retry on those
(gmp.netcore.retry, the loop every gmp socket uses), waiting in between
with GSocket._wait: parked on the netpoller inside a G,
poll(2) on a plain thread.  As in _ssl.c, one deadline covers one call (a
whole handshake, one read, one write), expiry raises socket.timeout with the
stdlib's message, and a timeout of 0 lets the SSLWant*Error through.

Only the methods that reach _ssl directly are overridden: do_handshake,
read, write, send, unwrap.  The stdlib's own recv/recv_into (through read),
sendall and sendfile (through send), makefile (through recv_into/send),
connect/connect_ex (GSocket's connect, then do_handshake), accept (GSocket's
accept, then the context's wrap_socket, i.e. this class) and the clear-text
paths after unwrap() (GSocket's methods) are inherited unchanged.

GSSLSocket is ssl.SSLSocket plus GSocket, whichever socket class ssl saw when
it was imported: if ssl was imported before patching, ssl.SSLSocket derives
from the real socket.socket and GSocket is added after it in the MRO; if
after, ssl.SSLSocket already derives from GSocket.
"""
import ssl
from functools import partial
from time import monotonic as _monotonic

from gmp.monkey.socket import GSocket
from gmp.netcore import retry

__all__ = ["GSSLSocket"]

_SSLSocket = ssl.SSLSocket
_WantRead = ssl.SSLWantReadError
_WantWrite = ssl.SSLWantWriteError
_UNSET = object()
_bases = (_SSLSocket,) if issubclass(_SSLSocket, GSocket) else (_SSLSocket, GSocket)


class GSSLSocket(*_bases):
    """ssl.SSLSocket whose handshake, reads, writes and shutdown park only
    the calling G (see the module notes)."""

    def _retry(self, op, fn, *args, timeout=_UNSET):
        """fn(*args), retried after waiting on each SSLWant*Error until the
        deadline of this one call.  op names the operation in the timeout
        message ("handshake", "read", "write"; None: by the direction)."""
        t = self.gettimeout() if timeout is _UNSET else timeout
        deadline = None if t is None else _monotonic() + t

        def wait(err):
            if t == 0.0:
                raise err
            write = isinstance(err, _WantWrite)
            try:
                self._wait(write, deadline)
            except TimeoutError:
                what = op or ("write" if write else "read")
                raise TimeoutError(f"The {what} operation timed out") from None
        return retry(partial(fn, *args), wait, (_WantRead, _WantWrite))

    def do_handshake(self, block=False):
        self._check_connected()
        t = self.gettimeout()
        if t == 0.0 and block:
            t = None
        self._retry("handshake", self._sslobj.do_handshake, timeout=t)

    def read(self, len=1024, buffer=None):
        return self._retry("read", _SSLSocket.read, self, len, buffer)

    def write(self, data):
        return self._retry("write", _SSLSocket.write, self, data)

    def send(self, data, flags=0):
        return self._retry("write", _SSLSocket.send, self, data, flags)

    def unwrap(self):
        return self._retry(None, _SSLSocket.unwrap, self)

    do_handshake.__doc__ = _SSLSocket.do_handshake.__doc__
    read.__doc__ = _SSLSocket.read.__doc__
    write.__doc__ = _SSLSocket.write.__doc__
    unwrap.__doc__ = _SSLSocket.unwrap.__doc__

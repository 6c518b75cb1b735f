"""gmp.net: TCP, UDP and Unix sockets on the netpoller.

A thin layer over ``_ext/netpoll.pxi``: every connection owns a non-blocking
socket and a PollDesc, whose recv/recv_into/send/sendall/accept make the
syscall at once (GIL held, no release around a non-blocking call) and park
the calling G only on EAGAIN.  recv, send and sendall are bound straight
onto the connection, so ``conn.recv(n)`` is one C call on the fast path.
The rest (datagrams, connect, resolving, argument checks) is the socket
core gmp.net shares with the patched socket: gmp.netcore.

Addresses
    ("host", port)   TCP (or UDP); an IPv6 literal host selects AF_INET6.
                     Host names are resolved with gmp.net.getaddrinfo, which
                     runs on the gmp.blocking pool and never blocks an M.
    "/path" or "\\0abstract"  a Unix stream socket (AF_UNIX).

API
    listen(addr, backlog=None, reuse_port=False, fast_open=None) -> Listener
        backlog defaults to /proc/sys/net/core/somaxconn (as Go); TCP
        listeners set SO_REUSEADDR; fast_open=N enables TCP_FASTOPEN with a
        queue of N.
    Listener.accept() -> (Conn, addr); Listener.close(); Listener.addr
    serve(listener, handler): accept loop that runs handler(conn, addr) in a
        new G per connection and backs off on EMFILE/ENFILE/ENOBUFS/ENOMEM
        (5 ms doubling to 1 s, as Go's net/http), returning once the
        listener is closed.
    dial(addr, timeout=None) -> Conn (TCP_NODELAY on, as in Go)
    Conn.recv(n), recv_into(buf, nbytes=0), send(data), sendall(data),
        shutdown(how), close(), set_deadline(t), set_read_deadline(t),
        set_write_deadline(t), local_addr, remote_addr, fileno(), socket
    listen_udp(addr) / dial_udp(addr) -> UDPConn: recvfrom(n),
        recvfrom_into(buf), sendto(data, addr), recv(n), send(data), close()
    getaddrinfo(host, port, family=0, type=0, proto=0, flags=0)
    Conn.tcp_info(), Listener.stats, Conn.stats, gmp.tcpstats.dialer:
        TCP_INFO and the lifecycle counters (gmp/tcpstats.py)

Deadlines are absolute ``time.monotonic()`` values (None clears), as Go's
SetDeadline takes an absolute time; an operation past its deadline raises
gmp.TimeoutError, a subclass of the builtin TimeoutError (= socket.timeout).
A deadline also interrupts operations already parked.

Errors: any operation on a closed Conn or Listener, including ones parked
when close() was called from another G, raises gmp.net.NetClosed (an OSError
with errno EBADF, message "use of closed network connection").  A peer reset
raises ConnectionResetError in the G doing the I/O, and only there.
"""
import errno
import os
import socket
import time

from gmp import latency as _latency
from gmp import policy as _policy
from gmp import tcpstats
from gmp._ext import _core
from gmp._ext._core import NetClosed, PollDesc
from gmp._ext._core import sleep as _sleep
from gmp.netcore import check_nbytes, check_timeout, finish_connect, getaddrinfo, resolve, retry

__all__ = ["listen", "dial", "serve", "listen_udp", "dial_udp", "getaddrinfo",
           "Conn", "Listener", "UDPConn", "NetClosed"]

_TEMPORARY_ACCEPT = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM,
                     errno.ECONNABORTED, errno.EPROTO, errno.EPERM}


def somaxconn():
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return socket.SOMAXCONN


def _resolve(addr, type_):
    """(family, sockaddr) for addr; resolves host names off the M."""
    if isinstance(addr, (str, bytes)):
        return socket.AF_UNIX, addr
    if not isinstance(addr, tuple) or len(addr) < 2:
        raise TypeError(f"address must be (host, port) or a Unix socket path, not {addr!r}")
    if addr[0] in ("", None):
        return socket.AF_INET, ("0.0.0.0", addr[1])
    return resolve(addr, 0, type_)


class _PollSocket:
    """What Conn, Listener and UDPConn share: a non-blocking socket, its
    PollDesc, deadlines and an idempotent close()."""

    __slots__ = ("socket", "pd", "_closed", "stats")

    def __init__(self, sock, stats=tcpstats.UNTRACKED):
        sock.setblocking(False)
        self.socket = sock
        self.pd = PollDesc(sock.fileno())
        self._closed = False
        self.stats = stats

    def fileno(self):
        return self.socket.fileno()

    @property
    def closed(self):
        return self._closed

    @property
    def local_addr(self):
        return self.socket.getsockname()

    def set_deadline(self, t):
        self.pd.set_deadline(t)

    def set_read_deadline(self, t):
        self.pd.set_read_deadline(t)

    def set_write_deadline(self, t):
        self.pd.set_write_deadline(t)

    def _check_open(self):
        if self._closed:
            raise NetClosed(errno.EBADF, "use of closed network connection")

    def close(self):
        """Closes the socket; Gs parked on it raise NetClosed.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.stats.on_close(self.socket)
        self.pd.close()
        self.socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        state = "closed" if self._closed else f"fd={self.socket.fileno()}"
        return f"<gmp.net.{type(self).__name__} {state}>"


class Conn(_PollSocket):
    """A connected stream socket (TCP or Unix) driven by the netpoller."""

    __slots__ = ("recv", "send", "sendall")

    def __init__(self, sock, stats=tcpstats.UNTRACKED):
        _PollSocket.__init__(self, sock, stats)
        pd = self.pd
        self.recv = pd.recv
        self.send = pd.send
        self.sendall = pd.sendall

    def recv_into(self, buf, nbytes=0, flags=0):
        """recv(2) into `buf`; nbytes 0 means the whole buffer, one that is
        negative or larger than the buffer is a ValueError (as the stdlib)."""
        return self.pd.recv_into(buf, check_nbytes(buf, nbytes), flags)

    @property
    def remote_addr(self):
        return self.socket.getpeername()

    def shutdown(self, how=socket.SHUT_WR):
        """Half-close: SHUT_WR sends EOF to the peer, SHUT_RD makes our
        reads return b"" (parked readers wake)."""
        self._check_open()
        self.socket.shutdown(how)
        self.stats = self.stats.on_shutdown(how)

    def tcp_info(self):
        return tcpstats.tcp_info(self.socket)


class Listener(_PollSocket):
    """A listening stream socket; accept() parks until a connection comes."""

    __slots__ = ("_family", "_nodelay")

    def __init__(self, sock, stats=None):
        _PollSocket.__init__(self, sock, stats or tcpstats.ListenerStats(sock, None))
        self._family = sock.family
        self._nodelay = sock.family in (socket.AF_INET, socket.AF_INET6)

    @property
    def addr(self):
        return self.socket.getsockname()

    def accept(self):
        """(Conn, remote address).  OSError(EMFILE) etc. propagate: see serve()."""
        fd = self.pd.accept()
        sock = socket.socket(self._family, socket.SOCK_STREAM, 0, fileno=fd)
        if self._nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            addr = sock.getpeername()
        else:
            addr = ""
        return Conn(sock, self.stats.accept()), addr


def listen(addr, backlog=None, reuse_port=False, fast_open=None):
    """A Listener on addr ((host, port) for TCP, a path for Unix)."""
    fam, sa = _resolve(addr, socket.SOCK_STREAM)
    sock = socket.socket(fam, socket.SOCK_STREAM)
    try:
        if fam != socket.AF_UNIX:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if fast_open:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, int(fast_open))
        sock.bind(sa)
        sock.listen(somaxconn() if backlog is None else backlog)
    except BaseException:
        sock.close()
        raise
    return Listener(sock, tcpstats.ListenerStats(sock, backlog, fast_open))


def serve(listener, handler, per_m=None):
    """Runs handler(conn, addr) in a new G for every accepted connection
    until the listener is closed.  Temporary accept errors (out of fds,
    buffers or memory) back off 5 ms, doubling up to 1 s, and keep serving.

    With several Ms (and per_m not False) the listener is served by an
    accept loop on every M, each on its own dup() of the listening socket,
    so each is registered with its own P's epoll: a connection wakes the
    idle Ms' loops, one accepts, the others see EAGAIN.  An M stalled in a
    call gmp cannot see therefore stops neither accepting nor serving: the
    others accept, and handlers start on the accepting M.  (EPOLLEXCLUSIVE
    would wake only one loop, but may leave the event with the stalled M's
    epoll; the extra wake-ups are the price of never stalling.)"""
    handler = _latency.served(handler)        # a request per connection G (gmp.latency)
    nprocs = _core.nprocs()
    me = _core.current()
    extra = []
    if (per_m is None or per_m) and nprocs > 1 and me is not None and isinstance(listener, Listener):
        for pid in range(nprocs):
            if pid == me.home_p:
                continue
            try:
                dup = Listener(listener.socket.dup(), listener.stats)
            except OSError:
                break       # out of fds (EMFILE): serve on the loops we have
            extra.append(dup)
            _core.go_on(pid, _accept_loop, dup, handler)
    try:
        _accept_loop(listener, handler)
    finally:
        for dup in extra:
            dup.close()


def _accept_loop(listener, handler):
    delay = 0.0
    while True:
        try:
            conn, addr = listener.accept()
        except NetClosed:
            return
        except OSError as e:
            if e.errno not in _TEMPORARY_ACCEPT or listener.closed:
                raise
            delay = min(delay * 2, 1.0) if delay else 0.005
            _sleep(delay)
            continue
        delay = 0.0
        _policy.admit_connection(handler, conn, addr)


def _connect(sock, pd, sa, timeout):
    def wait():
        if timeout is not None:
            pd.set_write_deadline(time.monotonic() + timeout)
        try:
            pd.wait_write()
        finally:
            if timeout is not None:
                pd.set_write_deadline(None)
    err = finish_connect(sock.connect_ex(sa), sock, wait)
    if err:
        raise OSError(err, os.strerror(err))


def dial(addr, timeout=None):
    """Connects to addr and returns a Conn (TCP_NODELAY set for TCP).
    timeout: seconds for the connect (None: no limit); not a number is a
    TypeError, a negative one a ValueError."""
    timeout = check_timeout(timeout, "dial timeout")
    fam, sa = _resolve(addr, socket.SOCK_STREAM)
    sock = socket.socket(fam, socket.SOCK_STREAM)
    try:
        if fam != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Conn(sock)
        try:
            conn.stats = tcpstats.dialer.connect(_connect, sock, conn.pd, sa, timeout)
        except BaseException:
            conn.pd.close()
            raise
    except BaseException:
        sock.close()
        raise
    return conn


class UDPConn(_PollSocket):
    """A datagram socket on the netpoller."""

    __slots__ = ()

    def _io(self, wait, fn, *args):
        self._check_open()
        return retry(lambda: fn(*args), lambda _err: wait())

    def recvfrom(self, n):
        return self._io(self.pd.wait_read, self.socket.recvfrom, n)

    def recvfrom_into(self, buf, nbytes=0):
        return self._io(self.pd.wait_read, self.socket.recvfrom_into, buf, nbytes)

    def recv(self, n):
        return self.pd.recv(n)

    def sendto(self, data, addr):
        return self._io(self.pd.wait_write, self.socket.sendto, data, addr)

    def send(self, data):
        return self.pd.send(data)


def _udp(addr, setup):
    fam, sa = _resolve(addr, socket.SOCK_DGRAM)
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        setup(sock, sa)
    except BaseException:
        sock.close()
        raise
    return UDPConn(sock)


def listen_udp(addr):
    """A UDP socket bound to addr."""
    return _udp(addr, socket.socket.bind)


def dial_udp(addr):
    """A UDP socket connected to addr (recv/send)."""
    return _udp(addr, socket.socket.connect)

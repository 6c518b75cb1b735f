"""The socket core that gmp.net and the patched socket (gmp.monkey.socket,
gmp.monkey.ssl) share: the try-first I/O loop, the end of a non-blocking
connect, the resolver and the checks of their arguments.

Try first.  Every socket gmp drives is non-blocking, so an operation is
attempted at once (no poll first: on a busy connection the data is usually
there) and the G parks only when the kernel says it would block.  ``retry``
is that loop, written once: the caller passes the operation and a ``wait``
that parks until the fd may be ready, and raises to give up (a timeout, a
close, or a timeout of 0, which lets the would-block error through as the
stdlib does).  The hot stream paths of gmp.net (recv, recv_into, send,
sendall, accept) run the same loop in C (``PollDesc`` in
``_ext/netpoll.pxi``); this one serves the rest: datagrams, the patched
socket's relative timeouts and its plain-thread fallback, and TLS, whose
would-block errors are SSLWantRead/WriteError and say which way to wait.

Resolving.  A literal address is used as it is; a host name is resolved with
``getaddrinfo`` on the gmp.blocking pool, so a slow DNS answer parks only
the G (inline outside a G), and the first answer is used, as Go's dialer
tries first the first address.

Arguments are checked as the stdlib checks them, with its errors: a timeout
that is not a number is a TypeError, a negative or NaN one a ValueError
(not a timeout error later); an ``nbytes`` outside the buffer a ValueError.
"""
import errno
import math
import socket

from gmp.blocking import blocking

__all__ = ["WOULD_BLOCK", "retry", "finish_connect", "getaddrinfo", "resolve", "check_timeout",
           "check_nbytes"]

WOULD_BLOCK = (BlockingIOError, InterruptedError)
_IN_PROGRESS = (errno.EINPROGRESS, errno.EAGAIN)
_getaddrinfo = socket.getaddrinfo


def retry(op, wait, again=WOULD_BLOCK):
    """op() until it does not raise one of `again`; after each such error,
    wait(err), which returns once op may succeed or raises to give up."""
    while True:
        try:
            return op()
        except again as e:
            err = e
        wait(err)       # outside the handler: a parked G holds no exception state


def finish_connect(err, sock, wait):
    """The errno of a connect: `err` is what connect_ex() returned; if the
    connect is in progress, wait() (for writability) and read SO_ERROR.
    With wait None (timeout 0) an in-progress connect is returned as is."""
    if err in _IN_PROGRESS and wait is not None:
        wait()
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return err


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    """socket.getaddrinfo on the gmp.blocking pool (never blocks the M)."""
    return blocking(_getaddrinfo, host, port, family, type, proto, flags)


def _literal_family(host, family):
    for fam in (family,) if family else (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, host)
            return fam
        except (OSError, TypeError, ValueError):
            pass
    return None


def resolve(address, family=0, type=0):
    """(family, sockaddr) for a (host, port[, ...]) address: a literal host
    as given, a name through getaddrinfo (the first answer)."""
    host = address[0]
    fam = _literal_family(host, family)
    if fam is not None:
        return fam, address
    infos = getaddrinfo(host, address[1], family, type)
    if not infos:
        raise OSError(f"no address for {host!r}")
    return infos[0][0], infos[0][4]


def check_timeout(value, what="Timeout value"):
    """`value` as float seconds or None, checked as socket.settimeout does."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, bytearray)) or not hasattr(type(value), "__float__"):
        raise TypeError(f"{what} must be int, float or None, not {type(value).__name__}")
    t = float(value)
    if math.isnan(t):
        raise ValueError(f"{what}: invalid value NaN (not a number)")
    if t < 0:
        raise ValueError(f"{what} out of range")
    return t


def check_nbytes(buf, nbytes):
    """The byte count to read into `buf` (0: the whole buffer), checked as
    socket.recv_into checks it."""
    if nbytes < 0:
        raise ValueError("negative buffersize in recv_into")
    if nbytes:
        with memoryview(buf) as view:
            if nbytes > view.nbytes:
                raise ValueError("buffer too small for requested bytes")
    return nbytes

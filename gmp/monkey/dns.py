"""gmp.monkey.dns: the resolver functions of ``socket`` (getaddrinfo,
gethostbyname(_ex), gethostbyaddr, getnameinfo) run on the gmp.blocking pool
inside a G, so a slow DNS answer parks only the G; outside a G they are the
stdlib's.  ``resolve_for_connect`` is what GSocket.connect uses for a host
name, so that connect() never resolves on the M either.  getaddrinfo and
the resolving are gmp.netcore's, shared with gmp.net.
"""
import socket as _socket_mod

from gmp._ext import _core
from gmp.blocking import blocking
from gmp.netcore import getaddrinfo as netcore_getaddrinfo
from gmp.netcore import resolve

_current = _core.current
NAMES = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")


def resolve_for_connect(address, family, type_):
    """The sockaddr connect() should use for `address` (one resolver for
    gmp.net and the patched socket: gmp.netcore.resolve)."""
    return resolve(address, family, type_)[1]


def on_pool(name):
    fn = getattr(_socket_mod, name)

    def call(*args, **kwargs):
        if _current() is None:
            return fn(*args, **kwargs)
        return blocking(fn, *args, **kwargs)
    call.__name__ = name
    call.__doc__ = f"socket.{name} on the gmp.blocking pool (cooperative)."
    return call


getaddrinfo = netcore_getaddrinfo

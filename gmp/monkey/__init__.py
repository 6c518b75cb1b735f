"""gmp.monkey: make blocking stdlib code cooperative, as gevent.monkey does.

``patch_all()`` replaces, in place, what each module below implements (each
module's docstring gives the details):

socket     gmp.monkey.socket   ``socket.socket`` by GSocket: a non-blocking fd
                               whose blocking methods park only the calling G on
                               the netpoller (poll(2) outside a G)
dns        gmp.monkey.dns      ``getaddrinfo``, ``gethostbyname(_ex)``,
                               ``gethostbyaddr``, ``getnameinfo`` on the
                               gmp.blocking pool
ssl        gmp.monkey.ssl      ``ssl.SSLContext.sslsocket_class`` (the stdlib's
                               hook, read through the class, so contexts made
                               before patching follow) by GSSLSocket: handshake,
                               reads, writes and unwrap() park only the G.
                               wrap_socket, http.client, urllib.request,
                               urllib3/requests over https follow.  ssl may be
                               imported before patch_all(): the class is patched
                               in place.  (patch_all(ssl=False) with socket
                               patched leaves an ssl imported afterwards
                               unusable: its SSLSocket would sit on a
                               non-blocking GSocket.)
time       gmp.monkey.time     ``time.sleep`` is gmp.sleep inside a G
select     gmp.monkey.select   ``select.select``, ``select.poll`` and
                               ``select.epoll`` objects, the ``selectors``
                               classes: they wait on gmp's netpoller inside a G
threading  gmp.monkey.threading ``Thread`` and ``Timer`` start a G, ``Lock``
                               parks Gs, ``get_ident`` and ``local`` are per G
queue      gmp.monkey.queue    ``queue.SimpleQueue`` (and ``_queue``'s, also in
                               fresh imports) is a subclass of the C one whose
                               get() parks the G; put() stays reentrant
subprocess gmp.monkey.subprocess ``os.waitpid`` without WNOHANG on the
                               gmp.blocking pool; ``subprocess._PopenSelector``
                               (bound when subprocess is imported, often
                               before patching) is GSelector
signal     gmp.monkey.signal   handlers run in a G of their own;
                               ``_thread.interrupt_main`` interrupts the main G
asyncio    gmp.monkey.asyncio  the running event loop is per G, so Gs on one
                               M may each be inside ``asyncio.run``
psycopg    gmp.monkey.psycopg  psycopg2 and psycopg 3 wait on the netpoller
                               (their own wait hooks; applied when imported,
                               gmp.monkey.imports)
grpc       gmp.monkey.grpc     grpcio's pollers stay OS threads, blocking
                               unary calls park only the G (when imported)

Everything a patch installs is imported from those modules; this package
only keeps the record (``original()``, ``is_patched()``) and applies it.
The modules import nothing from this package, so there is no import cycle,
and ssl is imported only by patch_ssl() (Python may be built without it).

Patching twice is harmless.  Modules that copied a name before patching
(``from socket import socket``, ``from time import sleep``) keep the original:
patch_all() warns about the ones it can detect (threads already running, known
modules holding the old objects).  ``run_script(path, argv)`` patches, then
runs the script as ``__main__`` inside ``gmp.run`` - what ``gmp run`` does
(its command line is in gmp/cli.py).
"""
import os
import sys
import threading as _threading_mod
import warnings

import gmp
from gmp.monkey import dns as _dns
from gmp.monkey import queue as _queue
from gmp.monkey import select as _select
from gmp.monkey import signal as _signal
from gmp.monkey import socket as _socket
from gmp.monkey import subprocess as _subprocess
from gmp.monkey import threading as _threading
from gmp.monkey import time as _time
from gmp.monkey.select import GEpoll, GEpollSelector, GSelector, GSelectSelector
from gmp.monkey.socket import GSocket
from gmp.monkey.threading import Glocal, GLock, GThread

__all__ = ["patch_all", "patch_socket", "patch_ssl", "patch_time", "patch_select",
           "patch_thread", "patch_queue", "patch_subprocess", "patch_signal", "patch_asyncio",
           "patch_psycopg", "patch_grpc", "run_script",
           "is_patched", "original", "GSocket", "GLock", "GThread", "Glocal", "GSelector",
           "GSelectSelector", "GEpoll", "GEpollSelector"]

_originals = {}
_patched = set()


def original(module, name):
    """The object `module.name` had before gmp patched it."""
    return _originals.get((module, name), getattr(sys.modules[module], name))


def _patch(module, name, value):
    mod = sys.modules[module]
    _originals.setdefault((module, name), getattr(mod, name, None))
    setattr(mod, name, value)


def is_patched(what):
    return what in _patched


def _apply(what, replacements):
    """Installs (module, name, value) replacements once, recorded as `what`."""
    if what in _patched:
        return
    for module, name, value in replacements:
        _patch(module, name, value)
    _patched.add(what)


def patch_socket():
    if "socket" not in _patched:
        _apply("socket", [("socket", "socket", GSocket)] + [
            ("socket", name, _dns.getaddrinfo if name == "getaddrinfo" else _dns.on_pool(name))
            for name in _dns.NAMES])


def patch_ssl():
    """Installs gmp.monkey.ssl.GSSLSocket as ``ssl.SSLContext.sslsocket_class``.
    Instances read the attribute through the class, so SSLContexts created
    before patching get the cooperative class too (unless one set its own)."""
    if "ssl" in _patched:
        return
    try:
        import ssl
    except ImportError:          # Python built without OpenSSL
        return
    from gmp.monkey.ssl import GSSLSocket
    ssl.SSLContext.sslsocket_class = GSSLSocket
    _patched.add("ssl")


def patch_time():
    _apply("time", [("time", "sleep", _time.sleep)])


def patch_select():
    selectors = [("selectors", name, cls) for name, cls in (
        ("DefaultSelector", GSelector), ("PollSelector", GSelector),
        ("SelectSelector", GSelectSelector), ("EpollSelector", GEpollSelector))]
    if "socketserver" in sys.modules:
        selectors.append(("socketserver", "_ServerSelector", GSelector))
    _apply("select", [("select", "select", _select.select), ("select", "poll", _select.poll),
                      ("select", "epoll", GEpoll), *selectors])


def patch_thread():
    if "thread" in _patched:
        return
    others = [t for t in _threading_mod.enumerate()
              if t is not _threading_mod.main_thread() and not isinstance(t, _threading_mod._DummyThread)]
    if others:
        warnings.warn(f"gmp.monkey: {len(others)} thread(s) were started before patching and "
                      "stay OS threads: " + ", ".join(t.name for t in others[:5]),
                      RuntimeWarning, stacklevel=3)
    _apply("thread", [
        ("threading", "Lock", _threading.allocate_lock),
        ("threading", "_allocate_lock", _threading.allocate_lock),
        ("threading", "_CRLock", None),          # RLock() -> _PyRLock on GLock
        ("threading", "get_ident", _threading.get_ident),
        ("threading", "Thread", GThread),
        ("threading", "Timer", _threading.GTimer),
        ("threading", "local", Glocal),
        ("_thread", "_local", Glocal),           # what threading.local re-exports
    ])


def patch_queue():
    if "queue" in _patched:
        return
    import _queue as _c_queue
    import queue  # noqa: F401 - it bound _queue.SimpleQueue at its import
    cls = _queue.cooperative(_c_queue)
    _apply("queue", [("queue", "SimpleQueue", cls), ("_queue", "SimpleQueue", cls)])
    from gmp.monkey.imports import when_imported
    when_imported("_queue", _queue.patch_module)


def patch_subprocess():
    import subprocess  # noqa: F401 - _PopenSelector is bound at its import
    _apply("subprocess", [("os", "waitpid", _subprocess.waitpid),
                          ("subprocess", "_PopenSelector", GSelector)])


def patch_signal():
    _apply("signal", [("signal", "signal", _signal.signal), ("signal", "getsignal", _signal.getsignal),
                      ("_thread", "interrupt_main", _signal.interrupt_main)])


def patch_asyncio():
    if "asyncio" in _patched:
        return
    from gmp.monkey import asyncio as _asyncio
    for module, name, value in _asyncio.replacements():
        _patch(module, name, value)
    _asyncio.patch_policy()
    _patched.add("asyncio")


def _patch_on_import(what, library):
    # A third-party library is patched when (and if) the program imports
    # it: its module lists the (module name, patch function) hooks.
    if what in _patched:
        return
    from gmp.monkey.imports import when_imported
    for modname, patch in library.IMPORT_HOOKS:
        when_imported(modname, patch)
    _patched.add(what)


def patch_psycopg():
    from gmp.monkey import psycopg as _psycopg
    _patch_on_import("psycopg", _psycopg)


def patch_grpc():
    from gmp.monkey import grpc as _grpc
    _patch_on_import("grpc", _grpc)


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
        for key, orig in (("sleep", _time._real_sleep), ("socket", _socket._real_socket),
                          ("Thread", _threading._RealThread)):
            if d.get(key) is orig:
                warnings.warn(f"gmp.monkey: {modname}.{key} was imported before patch_all() and "
                              "stays blocking; patch earlier (gmp run script.py does)",
                              RuntimeWarning, stacklevel=3)


def patch_all(socket=True, time=True, select=True, thread=True, queue=True,
              subprocess=True, signal=True, ssl=True, asyncio=True, psycopg=True,
              grpc=True):
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
    if asyncio:
        patch_asyncio()
    if psycopg:
        patch_psycopg()
    if grpc:
        patch_grpc()
    if first:
        _warn_early_imports()


def run_script(path, argv, procs=None, duration=None):
    """Patches, then runs the script at `path` as ``__main__`` with sys.argv
    = [path, *argv] inside gmp.run (the script body is the main G).  When
    the script ends, its non-daemon threads (Gs) are joined and
    ``threading._register_atexit`` hooks run, as at CPython's exit; daemon
    threads are then cancelled silently.  With `duration`, the script is
    stopped (its Gs cancelled) after that many seconds, as
    ``py-spy record --duration`` does."""
    import runpy
    if not os.path.exists(path):
        raise FileNotFoundError(f"gmp: no such script: {path}")
    patch_all()
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))

    def main():
        if duration is None:
            # As at CPython's exit, non-daemon threads are joined when the
            # script ends, also by sys.exit() or an exception - but not on
            # Ctrl-C, which stops the runtime at once, as gevent does.
            interrupted = False
            try:
                runpy.run_path(path, run_name="__main__")
            except KeyboardInterrupt:
                interrupted = True
                raise
            finally:
                if not interrupted:
                    _threading.shutdown()
            return
        g = gmp.go(runpy.run_path, path, run_name="__main__")
        if g.join(duration):
            g.result()
    return gmp.run(main, procs=procs)


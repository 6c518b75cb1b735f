"""gmp.gunicorn: gunicorn's worker class for gmp, the way ``-k gevent`` is gevent's.

    gunicorn -k gmp.gunicorn.Worker -w 2 --threads 2 examples.flask_app:app

Each worker process gunicorn forks runs, in the child only (the arbiter
never starts a runtime): ``gmp.monkey.patch_all()`` as ``gmp run`` does,
the app import, then ``gmp.run`` on `procs` Ms, where gmp.wsgi.Server
serves every listener gunicorn hands over with an accept loop and an idle
poller on every M and each request in a fresh G (see gmp/wsgi.py).

procs: gunicorn's ``--threads N`` when N > 1 (a thread of a gthread worker
and an M are both OS threads serving requests of one process), else
``GMPMAXPROCS``, else gmp's default (the CPUs this process may use).  With
several workers on a small machine, say ``--threads`` or GMPMAXPROCS
explicitly: workers x procs Ms share the CPUs.

gunicorn settings honoured:
  worker_connections  connections served at once (accepting pauses at it)
  keepalive           seconds an idle kept-alive connection is held; 0 disables keep-alive
  timeout             the main G calls notify() every timeout/4 seconds, at most 1 s apart,
                      so a worker whose M0 is stuck in a C call longer than
                      timeout is killed by the arbiter, as a sync worker would be
  graceful_timeout    TERM (and HUP on the arbiter, which replaces workers
                      with TERM) stops accepting, closes idle connections and
                      waits this long for running requests, then closes the rest
  max_requests(+jitter)  after that many requests the worker stops gracefully
                      and the arbiter starts a fresh one
  limit_request_line, limit_request_fields, limit_request_field_size
                      bound the header block (their product plus the line; 0: 1 MiB)
  accesslog, errorlog, loglevel: through gunicorn's logger (self.log.access)
INT and QUIT stop at once (gunicorn's handle_quit, run in a G by the
patched signal module: its SystemExit stops the runtime).  The parent
going away (ppid changes) stops the worker gracefully.  TLS (certfile) is
refused with a clear error: gmp.wsgi does not terminate TLS yet.
"""
import datetime
import os
import socket

from gunicorn.workers import base

import gmp
import gmp.monkey
from gmp import net, wsgi

__all__ = ["Worker"]


class _AccessResponse:
    """What gunicorn's access log reads from a response."""

    __slots__ = ("headers", "sent", "status")

    def __init__(self, status, headers, sent):
        self.status = status
        self.headers = headers
        self.sent = sent


def _request_headers(environ):
    return [(k[5:].replace("_", "-"), v) for k, v in environ.items() if k.startswith("HTTP_")]


class _AccessRequest:
    __slots__ = ("headers",)

    def __init__(self, environ):
        self.headers = _request_headers(environ)


class Worker(base.Worker):
    """gunicorn worker: gmp.wsgi.Server on gmp's runtime (module notes)."""

    def init_process(self):
        if self.cfg.is_ssl:
            raise RuntimeError("gmp.gunicorn.Worker does not serve TLS yet: terminate TLS in a proxy")
        gmp.monkey.patch_all()
        self._stop = None
        super().init_process()

    def handle_exit(self, sig, frame):
        super().handle_exit(sig, frame)
        if self._stop is not None:
            self._stop.set()

    def _procs(self):
        threads = self.cfg.threads
        if threads and threads > 1:
            return threads
        return None                              # GMPMAXPROCS, else the CPUs we may use

    def _header_limit(self):
        c = self.cfg
        if c.limit_request_line and c.limit_request_fields and c.limit_request_field_size:
            return c.limit_request_line + c.limit_request_fields * (c.limit_request_field_size + 2)
        return 1 << 20

    def run(self):
        gmp.run(self._main, procs=self._procs())

    def _on_request(self, environ, status, headers, sent, seconds):
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
            self._stop.set()
        if self.log.access_log_enabled:
            self.log.access(_AccessResponse(status, headers, sent), _AccessRequest(environ),
                            environ, datetime.timedelta(seconds=seconds))

    def _listeners(self):
        # A dup of each socket gunicorn hands over: gmp makes it non-blocking
        # and closes it on its own terms; gunicorn's object stays untouched.
        return [net.Listener(socket.socket(s.family, s.type, 0, os.dup(s.fileno())))
                for s in self.sockets]

    def _main(self):
        cfg = self.cfg
        self._stop = gmp.Event()
        listeners = self._listeners()
        srv = wsgi.Server(
            self.wsgi, listeners,
            keepalive=cfg.keepalive or 0, max_connections=cfg.worker_connections,
            max_header_bytes=self._header_limit(), multiprocess=cfg.workers > 1,
            log=self.log, on_request=self._on_request)
        srv.start()
        beat = max(min(self.timeout / 4.0, 1.0), 0.05)
        heart = gmp.go(self._heartbeat, beat)      # also through the graceful shutdown
        try:
            while self.alive:
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    break
                self._stop.wait(beat)
            if not srv.shutdown(cfg.graceful_timeout):
                self.log.warning("graceful_timeout (%ss) passed: closed the remaining connections",
                                 cfg.graceful_timeout)
        finally:
            heart.kill()
            for ln in listeners:
                ln.close()

    def _heartbeat(self, beat):
        while True:
            self.notify()
            gmp.sleep(beat)

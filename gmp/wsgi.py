"""gmp.wsgi: an HTTP/1.1 WSGI server (PEP 3333) that runs each request in a fresh G.

    gmp.run(gmp.wsgi.serve, app, ("0.0.0.0", 8000))        # or, inside a G:
    srv = gmp.wsgi.Server(app, [gmp.net.listen(addr)]); srv.start(); ...; srv.shutdown(10)

Length: ~950 lines, one job: a connection's life (parse, body stream,
response writer, idle poller, shutdown) whose parts share the connection's
private state; split apart, each piece would have to expose it.

Design: no G waits on an idle connection
    A G that blocks its M in a C call gmp cannot see (a C extension, an
    unpatched sleep) holds every G bound to that M: a started G never changes
    thread.  A server that keeps one G per connection (gevent's pywsgi, a
    thread per connection) therefore freezes every connection whose G
    happens to live on the stalled M, even connections that are merely idle
    between keep-alive requests.  Here no G is bound to a connection except
    while a request on it is being read, run or answered:

    * Every M runs an accept loop on its own dup() of each listener (as
      gmp.net.serve does), so a stalled M stops no one accepting.  An
      accepted connection, and every request after it, is started by
      spawning a fresh G (``_spawn_request``: the one place where requests
      become Gs, where an admission policy plugs in).  A fresh G has never
      run, so any idle M may steal it.
    * When a response is done and the connection is to be kept alive, the G
      does not wait for the next request: it registers the connection's fd
      with the server's idle poller (one epoll instance shared by the
      process, EPOLLONESHOT) and returns.  Every M runs a poller G parked on
      its own dup() of that epoll fd, registered with its own P's epoll, so
      a readable idle connection wakes every idle M's poller; the first to
      call epoll_wait(0) takes the event (ONESHOT hands each to one caller)
      and spawns a fresh G for the next request.  This is Go's single
      netpoller, polled by whichever M is free, built from per-P epolls: an
      M stuck in a C call strands neither the event nor the connection.
    * A request that starts but whose header block is incomplete goes back
      to the idle poller too (with the header deadline instead of the
      keep-alive one), so a slow client holds no G either.  Pipelined
      requests already buffered each get a fresh G in turn.
    * Only the request's own reads of its body (``wsgi.input``) and its
      writes park the request's G on the connection, with read/write
      deadlines.

    The price is one epoll_ctl(MOD) per idle period and a spawn per request
    (a few microseconds), paid so that a stalled M holds only the requests
    that were running on it.  The stdlib's epoll.poll(0) releases the GIL
    around a syscall that cannot block; that is the stdlib's choice, made
    once per wake-up batch, not per request.

HTTP
    Parsing is httptools (llhttp, as uvicorn).  HTTP/1.1 keep-alive (1.0 with
    ``Connection: keep-alive``), pipelining, chunked request bodies (decoded
    by the parser; wsgi.input_terminated is set), ``Expect: 100-continue``
    (the interim response goes out when the app first reads wsgi.input; a
    body the client was never asked for closes the connection afterwards,
    as Go's net/http does), any other Expect is 417.  Responses without a
    Content-Length are chunked for HTTP/1.1 clients and close-delimited for
    HTTP/1.0 ones; a response whose iterable is a one-element list or tuple
    gets a Content-Length instead (it is known, and it saves the chunk
    framing).  HEAD, 1xx, 204 and 304 responses carry no body.

    Bad requests get a response and the connection is closed: 400 for what
    the parser rejects, 431 when the header block exceeds max_header_bytes,
    413 when the declared or received body exceeds max_body_bytes (a
    chunked body that grows past it raises BodyTooLarge in the app's read,
    which answers 413 if it escapes the app), 408 when a body read passes
    its deadline before the response has started, 417 for an unknown Expect.
    Upgrade (WebSocket, h2c) and CONNECT are not supported: the request is
    answered as a plain one and the connection closed.

WSGI
    environ follows PEP 3333: PATH_INFO is the percent-decoded path as
    latin-1 text, SCRIPT_NAME is the server's script_name (a prefix of the
    path is removed from PATH_INFO, as gunicorn does), HTTP_* headers
    repeated in the request are joined with ",".  Header names containing
    "_" are dropped, since HTTP_X_A could otherwise be spoofed by "X_A"
    (nginx and gunicorn do the same).  RAW_URI and REQUEST_URI carry the
    request target as sent.  wsgi.multithread is True: requests do run on
    several OS threads at once (an M each).  wsgi.input streams: the body is
    read from the socket as the app reads it, never buffered whole first;
    what the app leaves unread is drained (up to 256 KiB, then the
    connection is closed instead).  start_response validates its arguments
    (ValueError names the bad header; CR/LF in a value is refused, which
    prevents response splitting), a second call needs exc_info and re-raises
    it once headers are sent; write() works; the iterable's close() is
    always called.  An exception from the app before the headers are sent
    is logged and answered 500; after, the connection is cut (the client
    sees a truncated response rather than a wrong one).

Shutdown
    shutdown(timeout) stops accepting, closes idle connections, lets the
    running requests finish (their responses say Connection: close), and
    after `timeout` closes what is left (Gs parked on those connections
    raise NetClosed).
"""
import _socket
import logging
import select
import sys
import time
from collections import deque
from email.utils import formatdate
from urllib.parse import unquote_to_bytes

import httptools

from gmp import net
from gmp import policy as _policy
from gmp._ext import _core
from gmp._ext._core import Event, NetClosed, PollDesc, Semaphore
from gmp.pool import Rejected

__all__ = ["BodyTooLarge", "Server", "serve"]

_log = logging.getLogger("gmp.wsgi")
_recv_now = _socket.socket.recv          # non-blocking fd: BlockingIOError, never a park
_monotonic = time.monotonic
RECV_SIZE = 65536
DRAIN_LIMIT = 256 * 1024
_IDLE_EVENTS = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLONESHOT
_HOP_BY_HOP = frozenset(("keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                         "trailer", "trailers", "transfer-encoding", "upgrade"))
_NO_BODY_STATUS = frozenset((204, 304))
_REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large",
            417: "Expectation Failed", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}


class BodyTooLarge(ValueError):
    """Raised by wsgi.input when a request body grows past max_body_bytes."""


class _BadRequest(Exception):
    def __init__(self, status, why):
        Exception.__init__(self, why)
        self.status = status


def _spawn_request(c):
    """Every request (and the first one of each connection) starts here, as
    a fresh G under the go and global policies, or as a task of the pooled
    policy in force (gmp.policy: tars, sofa), keyed by the connection so
    that a keyed pool serves one connection's requests in order.  A full
    pool answers 503 and closes the connection; a request G reads its own
    request, so there is no deadline to give the pool yet."""
    try:
        _policy.submit(c.run, key=c.fd)
    except Rejected:
        c.fail(503, "server busy")


_date_cache = [0, ""]


def _http_date():
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[1] = formatdate(now, usegmt=True)
        _date_cache[0] = now
    return _date_cache[1]


class _Request:
    """One request as the parser delivers it; its body accumulates in
    `body` as the connection is read."""

    __slots__ = (
        "body",
        "body_len",
        "complete",
        "continue_sent",
        "expect",
        "hdr_bytes",
        "headers",
        "keep_alive",
        "method",
        "upgrade",
        "url",
        "version",
    )

    def __init__(self):
        self.url = b""
        self.headers = []
        self.body = bytearray()
        self.body_len = 0
        self.complete = False
        self.hdr_bytes = 0
        self.continue_sent = False
        self.expect = None
        self.upgrade = False
        self.method = None


class _Input:
    """wsgi.input: reads the body from the socket as the app asks for it."""

    __slots__ = ("_c", "_r")

    def __init__(self, c, r):
        self._c = c
        self._r = r

    def _fill(self, want):
        # want: bytes wanted in the buffer (-1: all), or 0 with newline search
        r = self._r
        while not r.complete and (want < 0 or len(r.body) < want):
            if want == 0 and b"\n" in r.body:
                return
            self._c.read_body(r)

    def read(self, size=-1):
        if size is None:
            size = -1
        self._fill(size)
        body = self._r.body
        if size < 0 or size >= len(body):
            data = bytes(body)
            body.clear()
        else:
            data = bytes(body[:size])
            del body[:size]
        return data

    def readline(self, size=-1):
        if size is None:
            size = -1
        body = self._r.body
        while True:
            nl = body.find(b"\n")
            if nl >= 0 or self._r.complete or (0 <= size <= len(body)):
                break
            self._c.read_body(self._r)
        end = len(body) if nl < 0 else nl + 1
        if 0 <= size < end:
            end = size
        data = bytes(body[:end])
        del body[:end]
        return data

    def readlines(self, hint=-1):
        lines, total = [], 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class _Conn:
    """One accepted connection.  Owned by at most one G at a time: the G
    serving its current request, or nobody while it sits in the idle
    poller."""

    __slots__ = (
        "__weakref__",
        "addr",
        "base",
        "closed",
        "conn",
        "cur",
        "deadline",
        "eof",
        "fd",
        "hdr_fed",
        "parser",
        "pending",
        "polled",
        "sock",
        "srv",
    )

    def __init__(self, srv, conn, addr, base):
        self.srv = srv
        self.conn = conn
        self.sock = conn.socket
        self.fd = conn.fileno()
        self.addr = addr
        self.base = base
        self.parser = httptools.HttpRequestParser(self)
        self.cur = None           # the request the parser is filling in
        self.pending = deque()    # requests whose headers are complete, not yet served
        self.hdr_fed = 0          # bytes fed while a header block is incomplete
        self.eof = False
        self.closed = False
        self.deadline = 0.0       # when the idle poller gives up on it
        self.polled = False       # registered with the idle epoll

    # --- httptools callbacks ----------------------------------------------

    def on_message_begin(self):
        self.cur = _Request()
        self.hdr_fed = 0

    def on_url(self, url):
        r = self.cur
        r.url += url
        r.hdr_bytes += len(url)

    def on_header(self, name, value):
        r = self.cur
        r.headers.append((name, value))
        r.hdr_bytes += len(name) + len(value) + 4

    def on_headers_complete(self):
        r, p = self.cur, self.parser
        r.method = p.get_method()
        r.version = p.get_http_version()
        r.keep_alive = p.should_keep_alive()
        r.upgrade = p.should_upgrade()
        self.pending.append(r)

    def on_body(self, body):
        r = self.cur
        r.body += body
        r.body_len += len(body)

    def on_message_complete(self):
        self.cur.complete = True
        self.cur = None

    # --- reading -----------------------------------------------------------

    def feed(self, data):
        """Feeds bytes to the parser; raises _BadRequest."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Upgrade / CONNECT: answered as a plain request, then closed.
            if self.pending:
                self.pending[-1].keep_alive = False
                self.pending[-1].complete = True
            self.eof = True
        except httptools.HttpParserError as e:
            raise _BadRequest(400, f"malformed request: {e}") from None

    def in_headers(self):
        return self.cur is not None and self.cur.method is None

    def read_body(self, r):
        """Reads more of request r's body from the socket (parks the G)."""
        srv = self.srv
        if r.expect is not None and not r.continue_sent and not r.body:
            r.continue_sent = True
            self.conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if srv.read_timeout is not None:
            self.conn.set_read_deadline(_monotonic() + srv.read_timeout)
        data = self.conn.recv(RECV_SIZE)
        if not data:
            self.eof = True
            raise _BadRequest(400, "connection closed before the request body was complete")
        before = r.body_len
        self.feed(data)
        if srv.max_body_bytes is not None and r.body_len > srv.max_body_bytes >= before:
            raise BodyTooLarge(f"request body larger than {srv.max_body_bytes} bytes")

    def next_request(self):
        """The next request whose headers are complete, reading what the
        socket has now; None when there is nothing yet (the connection has
        gone to the idle poller) or it was closed."""
        srv = self.srv
        while not self.pending:
            if self.eof:
                self.close()
                return None
            try:
                data = _recv_now(self.sock, RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                srv.idle(self, srv.header_timeout if self.in_headers() else srv.keepalive)
                return None
            except OSError:
                self.close()
                return None
            if not data:
                self.eof = True
                if self.cur is None:
                    self.close()
                    return None
            partial = self.in_headers() or self.cur is None
            self.feed(data)
            if partial and self.in_headers():
                self.hdr_fed += len(data)
                if self.hdr_fed > srv.max_header_bytes:
                    raise _BadRequest(431, "request header block too large")
        r = self.pending[0]
        if r.hdr_bytes > srv.max_header_bytes:
            raise _BadRequest(431, "request header block too large")
        return self.pending.popleft()

    # --- the G that serves one request ------------------------------------

    def run(self):
        if self.closed:
            return
        try:
            r = self.next_request()
            if r is None:
                return
            keep = self.srv.handle(self, r)
        except _BadRequest as e:
            self.fail(e.status, str(e))
            return
        except (NetClosed, ConnectionError, TimeoutError):
            self.close()
            return
        except BaseException:
            self.close()
            raise
        if not keep:
            self.close()
        elif self.pending:
            _spawn_request(self)          # pipelined: a fresh G per request
        else:
            srv = self.srv
            srv.idle(self, srv.header_timeout if self.in_headers() else srv.keepalive)

    def fail(self, status, why):
        """Answers a bad request and closes the connection."""
        body = f"{status} {_REASONS[status]}: {why}\n".encode("latin-1", "replace")
        head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1")
        try:
            if self.srv.write_timeout is not None:
                self.conn.set_write_deadline(_monotonic() + self.srv.write_timeout)
            self.conn.sendall(head + body)
        except OSError:
            pass
        self.close()

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.srv.forget(self)
        self.conn.close()


class Server:
    """An HTTP/1.1 WSGI server on one or more gmp.net Listeners.

    Settings (seconds; None: no limit):
      keepalive=5        idle time a kept-alive connection may wait for its next request
                         (0: answer every request with Connection: close)
      header_timeout=10  time a started request may take to send its header block
      read_timeout=30    per read of a request body, write_timeout=30 per write
      max_header_bytes=65536, max_body_bytes=None (bytes)
      max_connections=None  connections served at once; accepting pauses at the limit
      script_name="", url_scheme="http", multiprocess=False, errors=sys.stderr,
      log: a logging.Logger for errors (default "gmp.wsgi"),
      on_request(environ, status, headers, sent, seconds): called after each
        response (the gunicorn worker's access log and request counter)."""

    def __init__(self, app, listeners, *, keepalive=5.0, header_timeout=10.0, read_timeout=30.0,
                 write_timeout=30.0, max_header_bytes=65536, max_body_bytes=None,
                 max_connections=None, script_name="", url_scheme="http", multiprocess=False,
                 errors=None, log=None, on_request=None):
        if not callable(app):
            raise TypeError(f"the WSGI app must be callable, not {type(app).__name__}")
        listeners = list(listeners)
        if not listeners or not all(isinstance(ln, net.Listener) for ln in listeners):
            raise TypeError("listeners must be a non-empty list of gmp.net.Listener")
        if keepalive is not None and not (isinstance(keepalive, (int, float)) and keepalive >= 0):
            raise ValueError(f"keepalive must be seconds >= 0 (0: no keep-alive) or None, not {keepalive!r}")
        for name, v in (("header_timeout", header_timeout),
                        ("read_timeout", read_timeout), ("write_timeout", write_timeout)):
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"{name} must be a positive number of seconds or None, not {v!r}")
        for name, v in (("max_header_bytes", max_header_bytes), ("max_body_bytes", max_body_bytes),
                        ("max_connections", max_connections)):
            if v is not None and not (isinstance(v, int) and v > 0):
                raise ValueError(f"{name} must be a positive int or None, not {v!r}")
        if max_header_bytes is None:
            raise ValueError("max_header_bytes must be set: an unlimited header block is a DoS")
        if script_name and (not script_name.startswith("/") or script_name.endswith("/")):
            raise ValueError(f"script_name must start with '/' and not end with it: {script_name!r}")
        self.app = app
        self.listeners = listeners
        self.keepalive = keepalive
        self.header_timeout = header_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.script_name = script_name
        self.log = log or _log
        self.on_request = on_request
        self.draining = False
        self.conns = set()
        self._slots = Semaphore(max_connections) if max_connections else None
        self._idle = {}                       # fd -> _Conn waiting in the idle poller
        self._ep = None
        self._loops = []
        self._extra = []
        self._stopped = Event()
        self._environ = (url_scheme, multiprocess, errors or sys.stderr)

    def _base_environ(self, ln, url_scheme, multiprocess, errors):
        addr = ln.addr
        if isinstance(addr, tuple):
            name, port = addr[0], str(addr[1])
        else:
            name, port = (addr.decode() if isinstance(addr, bytes) else addr) or "localhost", ""
        return {"wsgi.version": (1, 0), "wsgi.url_scheme": url_scheme, "wsgi.errors": errors,
                "wsgi.multithread": True, "wsgi.multiprocess": multiprocess,
                "wsgi.run_once": False, "wsgi.input_terminated": True,
                "SERVER_NAME": name, "SERVER_PORT": port, "SCRIPT_NAME": self.script_name,
                "SERVER_SOFTWARE": "gmp.wsgi"}

    # --- life cycle --------------------------------------------------------

    def start(self):
        """Starts the accept loops and idle pollers, one of each per M
        (non-blocking; call from a G)."""
        if _core.current() is None:
            raise _core.NoRuntime("gmp.wsgi.Server.start() must be called inside a gmp runtime")
        if self._ep is not None:
            raise RuntimeError("server already started")
        self._ep = select.epoll()
        bases = {ln: self._base_environ(ln, *self._environ) for ln in self.listeners}
        for pid in range(_core.nprocs()):
            pd = PollDesc(_socket.dup(self._ep.fileno()))
            self._loops.append(_core.go_on(pid, self._poller, pd))
            for ln in self.listeners:
                dup = net.Listener(ln.socket.dup())
                self._extra.append(dup)
                self._loops.append(_core.go_on(pid, self._accept_loop, dup, bases[ln]))
        self._loops.append(_core.go(self._sweeper))

    def serve_forever(self):
        """start(), then park until shutdown() has finished."""
        self.start()
        self._stopped.wait()

    def shutdown(self, timeout=10.0):
        """Graceful stop: see the module notes.  Returns True if every
        connection finished within timeout."""
        if self.draining:
            self._stopped.wait()
            return not self.conns
        self.draining = True
        for ln in self._extra:
            ln.close()
        for fd in list(self._idle):
            c = self._idle.pop(fd, None)
            if c is not None:
                c.close()
        end = _monotonic() + timeout
        while self.conns and _monotonic() < end:
            _core.sleep(0.01)
        clean = not self.conns
        for c in list(self.conns):
            c.close()
        for g in self._loops:
            g.kill()
        if self._ep is not None:
            self._ep.close()
        self._stopped.set()
        return clean

    # --- accepting and idling ----------------------------------------------

    def _accept_loop(self, ln, base):
        delay = 0.0
        slots = self._slots
        while True:
            if slots is not None:
                slots.acquire()
            try:
                conn, addr = ln.accept()
            except BaseException as e:
                if slots is not None:
                    slots.release()
                if isinstance(e, NetClosed):
                    return
                if not isinstance(e, OSError) or e.errno not in net._TEMPORARY_ACCEPT or ln.closed:
                    raise
                delay = min(delay * 2, 1.0) if delay else 0.005
                _core.sleep(delay)
                continue
            delay = 0.0
            c = _Conn(self, conn, addr, base)
            self.conns.add(c)
            _spawn_request(c)

    def idle(self, c, timeout):
        """Parks connection c (no G) until it is readable or `timeout` passes."""
        if self.draining:
            c.close()
            return
        c.deadline = _monotonic() + timeout if timeout is not None else float("inf")
        self._idle[c.fd] = c
        # Once armed, c belongs to whichever poller takes its event, maybe on
        # another M at once: nothing of c may be touched after the arming.
        try:
            if c.polled:
                self._ep.modify(c.fd, _IDLE_EVENTS)
            else:
                c.polled = True
                self._ep.register(c.fd, _IDLE_EVENTS)
        except (OSError, ValueError):
            if self._idle.pop(c.fd, None) is c:
                c.close()

    def _poller(self, pd):
        ep, idle = self._ep, self._idle
        try:
            while True:
                try:
                    events = ep.poll(0, 64)
                except (OSError, ValueError):
                    return                    # closed by shutdown()
                for fd, _ in events:
                    c = idle.pop(fd, None)
                    if c is not None:
                        _spawn_request(c)
                if not events:
                    pd.wait_read()
        except NetClosed:
            return
        finally:
            pd.close()
            _socket.close(pd.fd)

    def _sweeper(self):
        """Closes idle connections past their deadline (keep-alive or header)."""
        period = min(t for t in (self.keepalive, self.header_timeout, 1.0) if t) / 2
        while not self.draining:
            _core.sleep(period)
            now = _monotonic()
            for fd, c in list(self._idle.items()):
                if c.deadline <= now and self._idle.get(fd) is c and self._idle.pop(fd, None) is c:
                    c.close()

    def forget(self, c):
        """Called once as c closes: drop it from the idle epoll and the books."""
        if c.polled and self._ep is not None and not self._ep.closed:
            try:
                self._ep.unregister(c.fd)
            except OSError:
                pass
        self.conns.discard(c)
        if self._slots is not None:
            self._slots.release()

    # --- one request ---------------------------------------------------------

    def environ(self, c, r):
        env = c.base.copy()
        url = r.url
        if url[:1] == b"/":
            path, _, query = url.partition(b"?")
        elif url == b"*":
            path, query = b"*", b""
        else:
            try:
                u = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                raise _BadRequest(400, "malformed request target") from None
            path, query = u.path or b"/", u.query or b""
        if b"%" in path:
            path = unquote_to_bytes(path)
        path = path.decode("latin-1")
        sn = self.script_name
        if sn and (path == sn or path.startswith(sn + "/")):
            path = path[len(sn):]
        raw = url.decode("latin-1")
        env["REQUEST_METHOD"] = r.method.decode("latin-1")
        env["PATH_INFO"] = path
        env["QUERY_STRING"] = query.decode("latin-1")
        env["RAW_URI"] = env["REQUEST_URI"] = raw
        env["SERVER_PROTOCOL"] = "HTTP/" + r.version
        addr = c.addr
        if isinstance(addr, tuple):
            env["REMOTE_ADDR"] = addr[0]
            env["REMOTE_PORT"] = str(addr[1])
        else:
            env["REMOTE_ADDR"] = ""
        for name, value in r.headers:
            key = name.decode("latin-1").upper()
            if "_" in key:
                continue
            value = value.decode("latin-1")
            if key == "CONTENT-TYPE":
                key = "CONTENT_TYPE"
            elif key == "CONTENT-LENGTH":
                key = "CONTENT_LENGTH"
            else:
                if key == "EXPECT":
                    if value.lower() != "100-continue":
                        raise _BadRequest(417, f"unsupported Expect: {value}")
                    if r.version == "1.1":
                        r.expect = value
                key = "HTTP_" + key.replace("-", "_")
            old = env.get(key)
            env[key] = value if old is None or key.startswith("wsgi.") else old + "," + value
        if self.max_body_bytes is not None and "CONTENT_LENGTH" in env:
            try:
                n = int(env["CONTENT_LENGTH"])
            except ValueError:
                raise _BadRequest(400, "invalid Content-Length") from None
            if n > self.max_body_bytes:
                raise _BadRequest(413, f"request body larger than {self.max_body_bytes} bytes")
        if r.body_len and self.max_body_bytes is not None and r.body_len > self.max_body_bytes:
            raise _BadRequest(413, f"request body larger than {self.max_body_bytes} bytes")
        env["wsgi.input"] = _Input(c, r)
        return env

    def handle(self, c, r):
        """Runs the app for request r on connection c; True to keep c alive."""
        t0 = _monotonic()
        env = self.environ(c, r)
        w = _Writer(self, c, r, env)
        result = None
        try:
            try:
                result = self.app(env, w.start_response)
                if w.content_length is None and w.status is not None and not w.headers_sent \
                        and type(result) in (list, tuple) and len(result) == 1:
                    w.set_length(len(result[0]))
                for data in result:
                    if data:
                        w.write(data)
                w.finish()
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except (NetClosed, ConnectionError):
            return False
        except _BadRequest:
            if w.headers_sent:
                return False
            raise
        except BodyTooLarge as e:
            if w.headers_sent:
                return False
            raise _BadRequest(413, str(e)) from None
        except TimeoutError:
            if w.headers_sent:
                return False
            raise _BadRequest(408, "request body not received in time") from None
        except Exception:
            self.log.exception("error handling %s %s", env["REQUEST_METHOD"], env["RAW_URI"])
            if not w.headers_sent:
                w.internal_error()
            return False
        if self.on_request is not None:
            self.on_request(env, w.status, w.headers, w.sent, _monotonic() - t0)
        if not w.keep_alive or self.draining:
            return False
        return r.complete or self._drain(c, r)

    def _drain(self, c, r):
        """Reads what the app left of r's body, if the client is sending it."""
        if r.expect is not None and not r.continue_sent:
            return False                  # never asked for: it may not come
        r.body.clear()
        start = r.body_len
        while not r.complete:
            if r.body_len - start > DRAIN_LIMIT:
                return False
            try:
                c.read_body(r)
            except (_BadRequest, BodyTooLarge, OSError):
                return False
            r.body.clear()
        return True


class _Writer:
    """The response side of one request: start_response, write, framing."""

    __slots__ = (
        "c",
        "chunked",
        "close_after",
        "code",
        "content_length",
        "env",
        "headers",
        "headers_sent",
        "keep_alive",
        "no_body",
        "r",
        "sent",
        "srv",
        "status",
    )

    def __init__(self, srv, c, r, env):
        self.srv = srv
        self.c = c
        self.r = r
        self.env = env
        self.status = None
        self.headers = None
        self.headers_sent = False
        self.content_length = None
        self.chunked = False
        self.keep_alive = r.keep_alive and not r.upgrade and srv.keepalive != 0
        self.sent = 0
        self.no_body = r.method == b"HEAD"
        self.close_after = False

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        if not isinstance(status, str):
            raise TypeError(f"status must be a str, not {type(status).__name__}")
        if len(status) < 4 or not status[:3].isdigit() or status[3] != " " or "\n" in status:
            raise ValueError(f"status must be 'NNN Reason', got {status!r}")
        if not isinstance(headers, list):
            raise TypeError(f"response headers must be a list, not {type(headers).__name__}")
        length = None
        for h in headers:
            if not (isinstance(h, tuple) and len(h) == 2 and isinstance(h[0], str)
                    and isinstance(h[1], str)):
                raise TypeError(f"each response header must be a (str, str) tuple, not {h!r}")
            name, value = h
            lname = name.lower()
            if "\n" in value or "\r" in value or not name or ":" in name or " " in name:
                raise ValueError(f"invalid response header {h!r}")
            if lname in _HOP_BY_HOP:
                raise ValueError(f"hop-by-hop header {name!r} is the server's to set (PEP 3333)")
            if lname == "content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise ValueError(f"invalid Content-Length {value!r}") from None
            elif lname == "connection" and value.lower() == "close":
                self.keep_alive = False
        self.status = status
        self.code = int(status[:3])
        self.headers = headers
        self.content_length = length
        if self.code in _NO_BODY_STATUS or self.code < 200:
            self.no_body = True
        return self.write

    def set_length(self, n):
        self.content_length = n
        self.headers.append(("Content-Length", str(n)))

    def _head(self):
        if self.status is None:
            raise AssertionError("the app wrote a body before calling start_response()")
        if self.srv.draining:
            self.keep_alive = False
        if self.content_length is None and not self.no_body:
            if self.r.version == "1.1":
                self.chunked = True
            else:
                self.keep_alive = False      # HTTP/1.0: the close delimits the body
        lines = ["HTTP/1.1 ", self.status, "\r\n"]
        for name, value in self.headers:
            lines += (name, ": ", value, "\r\n")
        lines += ("Date: ", _http_date(), "\r\n")
        if self.chunked:
            lines.append("Transfer-Encoding: chunked\r\n")
        r = self.r
        if r.expect is not None and not r.continue_sent and not r.complete:
            self.keep_alive = False          # a body we never asked for may or may not follow
        if not self.keep_alive:
            lines.append("Connection: close\r\n")
        elif self.r.version == "1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        self.headers_sent = True
        return "".join(lines).encode("latin-1")

    def _send(self, data):
        wt = self.srv.write_timeout
        if wt is not None:
            self.c.conn.set_write_deadline(_monotonic() + wt)
        self.c.conn.sendall(data)

    def write(self, data):
        """The write() callable, and how the iterable's chunks go out."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"WSGI body chunks must be bytes, not {type(data).__name__}")
        n = len(data)
        head = b"" if self.headers_sent else self._head()
        if self.no_body:
            if head:
                self._send(head)
            return
        if self.content_length is not None and self.sent + n > self.content_length:
            n = self.content_length - self.sent
            data = data[:n]
            self.keep_alive = False
            self.close_after = True
        self.sent += n
        if self.chunked:
            if n:
                self._send(b"".join((head, b"%x\r\n" % n, data, b"\r\n")))
            elif head:
                self._send(head)
        elif head:
            if n < 65536:
                self._send(head + data)
            else:
                self._send(head)
                self._send(data)
        elif n:
            self._send(data)
        if self.close_after:
            raise ConnectionAbortedError("the app wrote more than its Content-Length")

    def finish(self):
        if not self.headers_sent:
            if self.content_length is None and not self.no_body:
                self.set_length(0)
            self._send(self._head())
        elif self.chunked:
            self._send(b"0\r\n\r\n")
        if self.content_length is not None and self.sent < self.content_length and not self.no_body:
            self.keep_alive = False           # the client will see a short body

    def internal_error(self):
        self.status, self.headers = "500 Internal Server Error", []
        self.keep_alive = False
        body = b"500 Internal Server Error\n"
        self.headers.append(("Content-Type", "text/plain"))
        self.set_length(len(body))
        self.no_body = self.r.method == b"HEAD"
        try:
            self._send(self._head() + (b"" if self.no_body else body))
        except OSError:
            pass


def serve(app, addr, **settings):
    """Serves app on addr (a (host, port) or a Unix socket path, or a
    gmp.net.Listener) until the calling G is killed; call inside gmp.run.
    settings are Server's."""
    ln = addr if isinstance(addr, net.Listener) else net.listen(addr)
    srv = Server(app, [ln], **settings)
    try:
        srv.serve_forever()
    finally:
        if not srv.draining:
            srv.shutdown(0)
        ln.close()
    return srv

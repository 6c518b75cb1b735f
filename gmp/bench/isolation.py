"""Blocking isolation the realistic way: how many short requests does one
invisible 50 ms C call (ctypes usleep: gmp cannot see it) delay?

Two servers, each runnable under gmp (monkey patched, `procs` Ms) or gevent:
  accept   a plain accept loop, one G (gevent: greenlet) per connection
           answering one-line requests, and one G that makes the invisible
           call every 150 ms: the way servers are usually written;
  wsgi     a WSGI app where requests for /block make the invisible call,
           served by gmp.wsgi (gmp) or gevent.pywsgi (gevent).
The client (a separate process, plain sockets and selectors) keeps
`clients` keep-alive connections, each sending `rate` requests a second on a
fixed schedule; latency is measured from the scheduled send time, so a
request queued behind a late one counts as late (no coordinated omission).
For wsgi, every 100th request of each client (staggered) asks for /block; those are
left out of the share, which is of short requests only.

    python -m gmp.bench.isolation serve accept gmp 2      # prints the port
    python -m gmp.bench.isolation client PORT accept 40 50 3
"""
import ctypes
import json
import os
import selectors
import socket
import sys
import time

BLOCK_US = 50000
BLOCK_EVERY = 0.150
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
_libc = ctypes.CDLL(None)


def invisible_call():
    _libc.usleep(BLOCK_US)


def _handle(conn):
    buf = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
            _, _, buf = buf.partition(b"\r\n\r\n")
            conn.sendall(RESPONSE)


def _blocker():
    while True:
        time.sleep(BLOCK_EVERY)         # cooperative: patched
        invisible_call()


def accept_server(spawn, ready):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(512)
    ready(ls.getsockname()[1])
    spawn(_blocker)
    while True:
        conn, _ = ls.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        spawn(_handle, conn)


def wsgi_app(environ, start_response):
    if environ["PATH_INFO"] == "/block":
        invisible_call()
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def _ready(port):
    print(port, flush=True)


def serve(kind, impl, procs):
    if impl == "gevent":
        from gevent import monkey
        monkey.patch_all()
        import gevent
        if kind == "accept":
            accept_server(gevent.spawn, _ready)
        else:
            from gevent.pywsgi import WSGIServer
            ls = socket.socket()
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # pywsgi writes headers and body apart: without NODELAY (inherited
            # by accepted sockets) Nagle and delayed ACKs would add 40 ms.
            ls.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ls.bind(("127.0.0.1", 0))
            ls.listen(512)
            srv = WSGIServer(ls, wsgi_app, log=None)
            _ready(srv.server_port)
            srv.serve_forever()
        return
    import gmp
    import gmp.monkey
    gmp.monkey.patch_all()
    if kind == "accept":
        gmp.run(accept_server, gmp.go, _ready, procs=procs)
    else:
        import gmp.net
        import gmp.wsgi

        def main():
            ln = gmp.net.listen(("127.0.0.1", 0))
            _ready(ln.addr[1])
            gmp.wsgi.serve(wsgi_app, ln)
        gmp.run(main, procs=procs)


def client(port, kind, nclients=40, rate=50, duration=3.0, warmup=0.5):
    """Latencies (seconds) of the short requests sent after warmup, and the
    number of requests that got no answer."""
    sel = selectors.DefaultSelector()
    period = 1.0 / rate
    conns = []
    for i in range(nclients):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        # state: socket, next scheduled send, scheduled time in flight, is /block, count, index
        c = [s, 0.0, None, False, 0, i]
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    t0 = time.monotonic() + 0.05
    for i, c in enumerate(conns):
        c[1] = t0 + period * i / nclients          # staggered schedules
    end = t0 + warmup + duration
    lat = []
    while True:
        now = time.monotonic()
        if now >= end and all(c[2] is None for c in conns):
            break
        nxt = end
        for c in conns:
            if c[2] is None and c[1] < end:
                if c[1] <= now:
                    c[4] += 1
                    c[3] = kind == "wsgi" and (c[4] + 37 * c[5]) % 100 == 0   # staggered
                    c[0].send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n" if c[3]
                              else b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    c[2] = c[1]
                    c[1] += period
                else:
                    nxt = min(nxt, c[1])
        if now > end + 10:
            raise RuntimeError("the server stopped answering")
        for key, _ in sel.select(max(0.0, min(nxt, end + 10) - time.monotonic())):
            c = key.data
            data = c[0].recv(65536)
            if not data:
                raise RuntimeError("the server closed a connection")
            if c[2] is not None and data.endswith(b"ok"):
                t = time.monotonic()
                if c[2] >= t0 + warmup and not c[3]:
                    lat.append(t - c[2])
                c[2] = None
    for c in conns:
        c[0].close()
    return lat


def delayed_share(lat, over=0.010):
    return sum(1 for x in lat if x > over) / len(lat) if lat else float("nan")


class Server:
    """A serve() subprocess; .port once it listens."""

    def __init__(self, kind, impl, procs=1, cpu=None):
        import subprocess
        cmd = [sys.executable, "-m", "gmp.bench.isolation", "serve", kind, impl, str(procs)]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu)] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=dict(os.environ, GMPMAXPROCS=str(procs)))
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise RuntimeError(f"{impl} {kind} server did not start (rc {self.proc.returncode})")
        self.port = int(line)

    def cpu_seconds(self):
        import psutil
        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def close(self):
        self.proc.kill()
        self.proc.wait(10)


def measure(kind, impl, procs=1, nclients=40, rate=50, duration=3.0, cpu=None):
    srv = Server(kind, impl, procs, cpu)
    try:
        lat = client(srv.port, kind, nclients, rate, duration)
    finally:
        srv.close()
    lat.sort()
    return {"kind": kind, "impl": impl, "procs": procs, "n": len(lat),
            "delayed": delayed_share(lat), "p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99)]}


def main(argv):
    if argv[0] == "serve":
        serve(argv[1], argv[2], int(argv[3]))
    elif argv[0] == "client":
        lat = client(int(argv[1]), argv[2], int(argv[3]), float(argv[4]), float(argv[5]))
        print(json.dumps({"n": len(lat), "delayed": delayed_share(lat)}))
    elif argv[0] == "measure":
        print(json.dumps(measure(argv[1], argv[2], int(argv[3]))))
    else:
        raise SystemExit(f"unknown command {argv[0]!r}: serve, client or measure")


if __name__ == "__main__":
    main(sys.argv[1:])

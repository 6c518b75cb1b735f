"""Raw-socket HTTP/1.1 client side of the tests/serve tests: a gmp.wsgi
server in a gmp runtime on this thread, the client on a gmp.blocking helper
thread with plain (unpatched) sockets, so the client never shares an M."""
import http.client
import socket

import gmp
import gmp.net
import gmp.wsgi


def serve_and_call(app, client, procs, **settings):
    """Runs client(port, server) on a helper thread while a Server serves
    app; returns what client returned, after a clean shutdown."""
    def main():
        ln = gmp.net.listen(("127.0.0.1", 0))
        srv = gmp.wsgi.Server(app, [ln], **settings)
        srv.start()
        try:
            return gmp.blocking(client, ln.addr[1], srv)
        finally:
            srv.shutdown(5)
            ln.close()
    return gmp.run(main, procs=procs)


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_response(f):
    """(status, headers as a lower-cased dict, body) of one response on the
    buffered reader f; handles Content-Length, chunked and close-delimited."""
    line = f.readline()
    if not line:
        raise EOFError("connection closed before a response")
    _, status, _ = line.decode("latin-1").split(" ", 2)
    msg = http.client.parse_headers(f)
    headers = {k.lower(): v for k, v in msg.items()}
    if int(status) in (100, 204, 304):
        return int(status), headers, b""
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            n = int(f.readline().split(b";")[0], 16)
            chunk = f.read(n + 2)[:n]
            if n == 0:
                break
            body += chunk
        return int(status), headers, body
    if "content-length" in headers:
        return int(status), headers, f.read(int(headers["content-length"]))
    return int(status), headers, f.read()


def exchange(port, raw, n, closes):
    """Sends raw bytes and reads n responses; with closes, then asserts the
    server closed the connection (EOF, not a timeout), else that it still
    answers a request on it.  Returns the responses."""
    with connect(port) as s:
        s.sendall(raw)
        f = s.makefile("rb")
        out = [read_response(f) for _ in range(n)]
        if closes:
            assert f.read() == b"", "the server should have closed the connection"
        else:
            s.sendall(b"GET /still-open HTTP/1.1\r\nHost: x\r\n\r\n")
            read_response(f)
        return out

"""gmp.wsgi against PEP 3333 and HTTP/1.1, with raw sockets as clients."""
import json
import socket
import sys

import pytest
from wsgi_client import connect, exchange, read_response, serve_and_call

import gmp
from gmp._ext import _core

ENV_KEYS = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
            "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR",
            "REMOTE_PORT", "RAW_URI", "HTTP_X_MULTI", "HTTP_HOST", "HTTP_X_A")


def environ_app(env, start_response):
    out = {k: env.get(k) for k in ENV_KEYS}
    out["body"] = env["wsgi.input"].read().decode()
    out["url_scheme"] = env["wsgi.url_scheme"]
    out["version"] = list(env["wsgi.version"])
    out["multithread"] = env["wsgi.multithread"]
    out["errors"] = env["wsgi.errors"] is sys.stderr
    out["g"] = gmp.current().id
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_environ(procs):
    raw = (b"POST /app/a%20b%2Fc?x=1&y=%20 HTTP/1.1\r\nHost: example:8\r\nX-Multi: 1\r\n"
           b"X-Multi: 2\r\nX_A: spoof\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")

    def client(port, srv):
        return port, exchange(port, raw, 1, closes=False)

    port, [(status, headers, body)] = serve_and_call(environ_app, client, procs, script_name="/app")
    env = json.loads(body)
    assert status == 200
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == "/app"
    assert env["PATH_INFO"] == "/a b/c"             # unquoted, script_name removed
    assert env["QUERY_STRING"] == "x=1&y=%20"       # left as sent
    assert env["RAW_URI"] == "/app/a%20b%2Fc?x=1&y=%20"
    assert env["CONTENT_TYPE"] == "text/plain" and env["CONTENT_LENGTH"] == "5"
    assert env["SERVER_NAME"] == "127.0.0.1" and env["SERVER_PORT"] == str(port)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1" and int(env["REMOTE_PORT"]) > 0
    assert env["HTTP_HOST"] == "example:8"
    assert env["HTTP_X_MULTI"] == "1,2"
    assert env["HTTP_X_A"] is None                  # underscore names are dropped
    assert env["body"] == "hello"
    assert env["url_scheme"] == "http" and env["version"] == [1, 0]
    assert env["multithread"] is True and env["errors"] is True
    assert "date" in headers


def test_path_info_is_latin1_of_the_raw_bytes():
    def client(port, srv):
        return exchange(port, b"GET /caf%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n", 1, closes=False)

    [(_, _, body)] = serve_and_call(environ_app, client, 1)
    assert json.loads(body)["PATH_INFO"] == "/caf\u00c3\u00a9"


def streaming_app(env, start_response):
    inp = env["wsgi.input"]
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    first = inp.read(5)
    write(b"got:" + first + b"\n")            # the client sends the rest only after this
    rest = inp.read()
    return [b"rest:" + rest]


@pytest.mark.parametrize("procs", [1, 2])
def test_input_streams_while_the_body_arrives(procs):
    def client(port, srv):
        with connect(port) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
            f = s.makefile("rb")
            assert f.readline().startswith(b"HTTP/1.1 200")
            while f.readline() != b"\r\n":
                pass
            size = int(f.readline(), 16)
            first = f.read(size + 2)
            s.sendall(b"56789")
            size = int(f.readline(), 16)
            rest = f.read(size + 2)
            assert f.readline() == b"0\r\n"
            return first, rest

    first, rest = serve_and_call(streaming_app, client, procs)
    assert first == b"got:01234\n\r\n"
    assert rest == b"rest:56789\r\n"


def chunked_app(env, start_response):
    inp = env["wsgi.input"]
    lines = list(inp)                          # readline() through chunk boundaries
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        for line in lines:
            yield line.upper()
    return gen()


@pytest.mark.parametrize("procs", [1, 2])
def test_chunked_request_and_response(procs):
    raw = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4\r\nab\nc\r\n5\r\nd\nefg\r\n0\r\n\r\n")

    def client(port, srv):
        return exchange(port, raw, 1, closes=False)

    [(status, headers, body)] = serve_and_call(chunked_app, client, procs)
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert body == b"AB\nCD\nEFG"


def test_http10_response_without_length_is_close_delimited():
    def client(port, srv):
        return exchange(port, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1, closes=True)

    [(status, headers, body)] = serve_and_call(chunked_app, client, 1)
    assert status == 200 and "transfer-encoding" not in headers and body == b""


def echo_app(env, start_response):
    body = env["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


@pytest.mark.parametrize("procs", [1, 2])
def test_expect_100_continue(procs):
    def client(port, srv):
        with connect(port) as s:
            s.sendall(b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
            f = s.makefile("rb")
            interim = read_response(f)          # nothing is sent before it arrives
            s.sendall(b"abc")
            return interim, read_response(f)

    interim, final = serve_and_call(echo_app, client, procs)
    assert interim[0] == 100
    assert final[0] == 200 and final[2] == b"abc"


def ignore_body_app(env, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"no"]


def test_expect_100_continue_never_read_closes_the_connection():
    def client(port, srv):
        return exchange(port, b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                              b"Content-Length: 3\r\n\r\n", 1, closes=True)

    [(status, headers, body)] = serve_and_call(ignore_body_app, client, 1)
    assert status == 200 and headers["connection"] == "close" and body == b"no"


def test_unread_body_is_drained_and_the_connection_kept():
    def client(port, srv):
        return exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                              b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 2, closes=False)

    assert [r[0] for r in serve_and_call(ignore_body_app, client, 1)] == [200, 200]


@pytest.mark.parametrize("raw, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: aaaaaaaaaa\r\n" * 200 + b"\r\n", 431),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413),
    (b"POST / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", 417),
])
@pytest.mark.parametrize("procs", [1, 2])
def test_bad_requests_get_4xx_and_the_connection_closed(raw, status, procs):
    def client(port, srv):
        return exchange(port, raw, 1, closes=True)

    [(got, headers, body)] = serve_and_call(echo_app, client, procs, max_header_bytes=2048,
                                            max_body_bytes=1000)
    assert got == status, body
    assert headers["connection"] == "close"


def test_chunked_body_past_the_limit_is_413():
    raw = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           + (b"100\r\n" + b"x" * 256 + b"\r\n") * 8 + b"0\r\n\r\n")

    def client(port, srv):
        return exchange(port, raw, 1, closes=True)

    [(status, _, _)] = serve_and_call(echo_app, client, 1, max_body_bytes=1000)
    assert status == 413


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_keepalive_pipelining_each_request_in_a_fresh_g(procs):
    raw = b"".join(b"POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n%d" % (i, i)
                   for i in range(5))

    def client(port, srv):
        out = exchange(port, raw, 5, closes=False)
        with connect(port) as s:                    # and sequentially, on one connection
            f = s.makefile("rb")
            for i in range(3):
                s.sendall(b"GET /seq HTTP/1.1\r\nHost: x\r\n\r\n")
                out.append(read_response(f))
        return out

    out = serve_and_call(environ_app, client, procs)
    envs = [json.loads(b) for _, _, b in out]
    assert [e["body"] for e in envs[:5]] == ["0", "1", "2", "3", "4"]    # in order
    assert [e["PATH_INFO"] for e in envs[:5]] == ["/0", "/1", "/2", "/3", "/4"]
    assert len({e["g"] for e in envs}) == len(envs)                    # a fresh G each


def test_no_g_waits_on_an_idle_keepalive_connection():
    def client(port, srv):
        socks = [connect(port) for _ in range(20)]
        for s in socks:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(s.makefile("rb"))[0] == 200
        # every connection is now idle and kept alive: count what is parked
        parked = [g for g in _core.all_gs() if g.wait_reason == "IO wait"]
        conns = len(srv.conns)
        for s in socks:
            s.close()
        return len(parked), conns

    parked, conns = serve_and_call(ignore_body_app, client, 2)
    assert conns == 20
    assert parked == 4            # per M: its accept loop and its idle poller, nothing else


def test_idle_connection_closed_after_keepalive():
    def client(port, srv):
        with connect(port) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            f = s.makefile("rb")
            assert read_response(f)[0] == 200
            return f.read()                       # blocks until the server closes

    assert serve_and_call(ignore_body_app, client, 1, keepalive=0.2) == b""


def test_incomplete_header_block_times_out():
    def client(port, srv):
        with connect(port) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost:")
            return s.recv(100), len(srv.conns)

    data, _ = serve_and_call(ignore_body_app, client, 1, header_timeout=0.2)
    assert data == b""


def failing_app(env, start_response):
    if env["PATH_INFO"] == "/late":
        start_response("200 OK", [])

        def gen():
            yield b"partial"
            raise RuntimeError("boom after headers")
        return gen()
    raise RuntimeError("boom")


def test_app_error_is_500_and_logged(caplog):
    def client(port, srv):
        return exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, closes=True)

    [(status, headers, _)] = serve_and_call(failing_app, client, 1)
    assert status == 500 and headers["connection"] == "close"
    assert "boom" in caplog.text


def test_app_error_after_headers_cuts_the_connection():
    def client(port, srv):
        with connect(port) as s:
            s.sendall(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            return data

    data = serve_and_call(failing_app, client, 1)
    assert data.startswith(b"HTTP/1.1 200") and b"partial" in data and not data.endswith(b"0\r\n\r\n")


def exc_info_app(env, start_response):
    try:
        raise ValueError("handled")
    except ValueError:
        start_response("200 OK", [("X-First", "1")])
        start_response("503 Service Unavailable", [("Content-Length", "4")], sys.exc_info())
    return [b"oops"]


def test_start_response_with_exc_info_replaces_unsent_headers():
    def client(port, srv):
        return exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, closes=False)

    [(status, headers, body)] = serve_and_call(exc_info_app, client, 1)
    assert status == 503 and "x-first" not in headers and body == b"oops"


CLOSED = []


class ClosingBody:

    def __init__(self):
        self.parts = [b"a", b"b"]

    def __iter__(self):
        return iter(self.parts)

    def close(self):
        CLOSED.append(True)


def closing_app(env, start_response):
    start_response("200 OK", [])
    return ClosingBody()


def test_iterable_close_is_called_and_head_has_no_body():
    CLOSED.clear()

    def client(port, srv):
        get = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, closes=False)
        with connect(port) as s:
            s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            f = s.makefile("rb")
            line = f.readline()
            while f.readline() != b"\r\n":
                pass
            after = f.readline()                  # the next response, not a body
        return get, line, after

    get, head_line, after = serve_and_call(closing_app, client, 1)
    assert get[0][2] == b"ab"
    assert head_line.startswith(b"HTTP/1.1 200") and after.startswith(b"HTTP/1.1 200")
    assert len(CLOSED) == 4       # the still-open check is a GET too


@pytest.mark.parametrize("headers, error", [
    ([("X-Bad", "a\r\nInjected: 1")], ValueError),
    ([("Transfer-Encoding", "chunked")], ValueError),
    ([("X", 1)], TypeError),
    ((("X", "1"),), TypeError),
])
def test_start_response_validates_headers(headers, error):
    seen = []

    def app(env, start_response):
        try:
            start_response("200 OK", headers)
        except Exception as e:
            seen.append(type(e))
            raise
        return [b""]

    def client(port, srv):
        return exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, closes=True)

    [(status, _, _)] = serve_and_call(app, client, 1)
    assert status == 500 and seen == [error]


def test_server_settings_are_checked():
    ln = socket.socket()
    with pytest.raises(TypeError, match="listeners"):
        gmp.wsgi.Server(echo_app, [ln])
    ln.close()
    with pytest.raises(TypeError, match="callable"):
        gmp.wsgi.Server(None, [])
    with pytest.raises(gmp.NoRuntime):
        gmp.wsgi.Server(echo_app, [object.__new__(gmp.net.Listener)], keepalive=1).start()
    for bad in ({"keepalive": -1}, {"max_body_bytes": 0}, {"script_name": "app/"}):
        with pytest.raises(ValueError):
            gmp.wsgi.Server(echo_app, [object.__new__(gmp.net.Listener)], **bad)


@pytest.mark.parametrize("procs", [1, 2])
def test_shutdown_lets_running_requests_finish(procs):
    started = gmp.Event()

    def slow_app(env, start_response):
        started.set()
        gmp.sleep(0.2)
        start_response("200 OK", [("Content-Length", "4")])
        return [b"done"]

    def main():
        ln = gmp.net.listen(("127.0.0.1", 0))
        srv = gmp.wsgi.Server(slow_app, [ln])
        srv.start()
        port = ln.addr[1]
        pending = gmp.go(gmp.blocking, exchange, port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, True)
        started.wait()
        clean = srv.shutdown(5)
        ln.close()
        return clean, pending.result(10)

    clean, [(status, headers, body)] = gmp.run(main, procs=procs)
    assert clean and status == 200 and body == b"done" and headers["connection"] == "close"

"""gmp.net.serve records each connection G as a request, unless its handler
records requests of its own."""
import pytest

import gmp
from gmp import latency, net


@pytest.fixture
def sampling():
    latency.enable(every=1, slow_ms=0.0)
    try:
        yield
    finally:
        latency.disable()
        latency.take(1 << 20)


def exchange(handler, messages):
    """main: one connection sending `messages`; returns once the handler
    has seen it close (so shutdown does not cut the handler off)."""
    def main():
        done = gmp.Chan(1)

        def serving(conn, addr):
            try:
                handler(conn, addr)
            finally:
                done.send(None)

        ln = net.listen(("127.0.0.1", 0))
        server = gmp.go(net.serve, ln, serving)
        with net.dial(ln.addr) as c:
            for m in messages:
                c.sendall(m)
                assert c.recv(100) == m
        done.recv()
        ln.close()
        server.join()
    return main


def test_connection_is_a_request(grun, sampling):
    def plain_echo(conn, addr):
        with conn:
            while data := conn.recv(100):
                conn.sendall(data)

    grun(exchange(plain_echo, [b"a", b"b"]))
    names = latency.class_names()
    recs = [r for r in latency.take() if names[r.cls].startswith("serve ")]
    assert len(recs) == 1
    assert recs[0].component("IO wait") > 0 and recs[0].status == 0


def test_handler_records_its_own_messages(grun, sampling):
    def per_message(conn, addr):
        with conn:
            while data := conn.recv(100):
                with latency.begin("msg") as req:
                    conn.sendall(data)
                    req.status = 200

    grun(exchange(per_message, [b"a", b"b", b"c"]))
    names = latency.class_names()
    classes = [names[r.cls] for r in latency.take()]
    assert classes == ["msg"] * 3

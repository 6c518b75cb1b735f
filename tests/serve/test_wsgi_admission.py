"""gmp.wsgi under a pooled policy: requests are admitted by the pool in
force, and a full pool answers 503 and closes the connection."""
import threading

import pytest
from wsgi_client import connect, read_response

import gmp
import gmp.net
import gmp.wsgi
from gmp import policy as gpolicy
from gmp.pool import Tars


@pytest.mark.parametrize("procs", [1, 2])
def test_full_pool_answers_503_and_queued_requests_complete(procs):
    entered = threading.Event()
    gate = gmp.Event()

    def app(env, start_response):
        if env["PATH_INFO"] == "/hold":
            entered.set()
            gate.wait()
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    def client(port, pool):
        # Connected one by one: each connection's first request is
        # submitted when it is accepted, before it has sent anything.
        socks = []
        try:
            held = connect(port)
            socks.append(held)
            held.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
            assert entered.wait(10)                 # the one worker is busy
            queued = connect(port)
            socks.append(queued)
            queued.sendall(b"GET /q HTTP/1.1\r\nHost: x\r\n\r\n")
            for _ in range(10_000):                 # until the queue holds it
                if pool.stats()["queued"] == 1:
                    break
                threading.Event().wait(0.001)
            assert pool.stats()["queued"] == 1
            extra = connect(port)
            socks.append(extra)
            extra.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            f = extra.makefile("rb")
            status, headers, _ = read_response(f)
            assert status == 503 and headers["connection"] == "close"
            try:                                    # closed: the unread request
                assert f.read() == b""              # may turn the FIN into a reset
            except ConnectionResetError:
                pass
            return [read_response(s.makefile("rb"))[0] for s in (held, queued)]
        finally:
            for s in socks:
                s.close()

    def main():
        pool = gpolicy.current()
        ln = gmp.net.listen(("127.0.0.1", 0))
        srv = gmp.wsgi.Server(app, [ln])
        srv.start()
        try:
            job = gmp.go(gmp.blocking, client, ln.addr[1], pool)
            # /hold is released once the third request has been refused.
            for _ in range(10_000):
                if pool.stats()["rejected"]:
                    break
                gmp.sleep(0.001)
            gate.set()
            return job.result(20), pool.stats()
        finally:
            srv.shutdown(5)
            ln.close()

    policy = gpolicy.Policy("wsgi-tars", steal=False, admission=Tars(workers=1, capacity=1))
    statuses, stats = gmp.run(main, procs=procs, policy=policy)
    assert statuses == [200, 200]
    assert stats["rejected"] == 1

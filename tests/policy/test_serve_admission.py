"""gmp.net.serve admits each connection through the policy in force: under
a pooled policy a full pool closes the new connection at once (the busy
reply of a protocol-agnostic server) and the queued one is served later."""
import time

import gmp
from gmp import net
from gmp import policy as gpolicy
from gmp.pool import Tars


def test_full_pool_closes_the_connection(grun):
    gate = gmp.Event()
    serving = gmp.Event()

    def handler(conn, addr):
        with conn:
            serving.set()
            gate.wait()
            conn.sendall(b"served")

    def main():
        ln = net.listen(("127.0.0.1", 0))
        srv = gmp.go(net.serve, ln, handler)
        addr = ("127.0.0.1", ln.addr[1])
        first = net.dial(addr, timeout=5)
        assert serving.wait(timeout=10)           # the one worker holds it
        pool = gpolicy.current()
        second = net.dial(addr, timeout=5)
        end = time.monotonic() + 10
        while pool.stats()["queued"] < 1:         # accepted and queued
            assert time.monotonic() < end, "the second connection was never queued"
            gmp.sleep(0.001)
        third = net.dial(addr, timeout=5)
        third.set_read_deadline(time.monotonic() + 10)
        assert third.recv(16) == b""              # closed by the server: busy
        gate.set()
        assert first.recv(16) == b"served"
        assert second.recv(16) == b"served"
        for c in (first, second, third):
            c.close()
        ln.close()
        srv.join(timeout=10)
        return pool.stats()
    st = grun(main, policy=gpolicy.Policy("serve-tars", steal=False,
                                           admission=Tars(workers=1, capacity=1)))
    assert (st["rejected"], st["completed"]) == (1, 2)

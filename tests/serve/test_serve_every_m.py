"""net.serve() runs an accept loop on every M, so an M stalled in a call gmp
cannot see stops neither accepting nor serving new connections."""
import threading
import time

import pytest

import gmp
from gmp import net
from gmp._ext import _core


def echo_with_thread(conn, addr):
    with conn:
        data = conn.recv(100)
        conn.sendall(data + b"|" + str(threading.get_ident()).encode())


@pytest.mark.parametrize("procs", [2, 4])
def test_stalled_m_does_not_stop_accepting(procs):
    stalling = threading.Event()

    def client_during_stall(port):
        end = time.monotonic() + 10
        while not stalling.is_set():          # bounded: main stalls M0 next
            assert time.monotonic() < end
            gmp.gosched()
        with net.dial(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"hi")
            reply = c.recv(100)
        return time.monotonic(), reply

    def main():
        ln = net.listen(("127.0.0.1", 0))
        srv = gmp.go(net.serve, ln, echo_with_thread)
        client = _core.go_on(1, client_during_stall, ln.addr[1])
        stalling.set()
        time.sleep(0.5)                       # unpatched: blocks M0's thread
        stall_end = time.monotonic()
        done_at, reply = client.result(timeout=10)
        ln.close()
        srv.join()
        return done_at, stall_end, reply

    done_at, stall_end, reply = gmp.run(main, procs=procs)
    assert reply.startswith(b"hi|")
    assert done_at < stall_end, "the connection was served only after the stall"
    assert int(reply.split(b"|")[1]) != threading.get_ident(), "served on the stalled M"


def test_closing_the_listener_stops_every_loop():
    def main():
        ln = net.listen(("127.0.0.1", 0))
        srv = gmp.go(net.serve, ln, echo_with_thread)
        while sum(1 for g in _core.all_gs() if g.wait_reason == "IO wait") < 2:
            gmp.gosched()
        loops = [g for g in _core.all_gs() if g.name == "_accept_loop"]
        ln.close()
        assert srv.join(timeout=5)
        return [g.join(timeout=5) for g in loops]

    assert gmp.run(main, procs=2) == [True]   # the extra M's loop ended too


def test_go_on_binds_a_g_to_its_p():
    def where():
        return gmp.current().home_p, threading.get_ident()

    def main():
        gs = [_core.go_on(pid, where) for pid in (0, 1, 1, 0)]
        return [g.result() for g in gs]

    res = gmp.run(main, procs=2)
    assert [r[0] for r in res] == [0, 1, 1, 0]
    assert res[0][1] == res[3][1] != res[1][1] == res[2][1]


def test_go_on_rejects_bad_p():
    def main():
        with pytest.raises(ValueError, match="no P 5"):
            _core.go_on(5, print)
        with pytest.raises(TypeError, match="callable"):
            _core.go_on(0, 42)

    gmp.run(main, procs=2)

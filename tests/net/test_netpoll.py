"""The Cython netpoller (_ext/netpoll.pxi) driven directly through PollDesc."""
import errno
import socket
import threading
import time

import pytest
from gmp._ext._core import NetClosed, PollDesc
from helpers import parked, wait_until

import gmp


def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b, PollDesc(a.fileno()), PollDesc(b.fileno())


def test_read_parks_then_wakes_on_data(procs):
    def main():
        a, b, pa, pb = pair()
        g = gmp.go(pa.recv, 100)
        wait_until(parked(g), "reader parked")
        pb.sendall(b"hello")
        assert g.result(timeout=5) == b"hello"
        pa.close(); pb.close(); a.close(); b.close()
    gmp.run(main, procs=procs)


def test_ping_pong_many_pairs(procs):
    """Edge-triggered wake-ups are never lost: 40 pairs x 200 round trips,
    Gs spread over the Ms (a G may wait on an fd registered on another P)."""
    rounds = 200

    def server(pd):
        buf = bytearray(64)
        for _ in range(rounds):
            n = pd.recv_into(buf)
            assert n == 8
            pd.sendall(buf[:n])

    def client(pd, i):
        for r in range(rounds):
            msg = b"%04d%04d" % (i, r)
            pd.sendall(msg)
            got = b""
            while len(got) < 8:
                got += pd.recv(8 - len(got))
            assert got == msg
        return i

    def main():
        socks, gs = [], []
        for i in range(40):
            a, b, pa, pb = pair()
            socks += [a, b]
            gs.append(gmp.go(server, pa))
            gs.append(gmp.go(client, pb, i))
        for g in gs:
            g.result(timeout=30)
        for s in socks:
            s.close()
    gmp.run(main, procs=procs)


def test_bound_g_readied_home_from_other_p(procs):
    """The fd is registered on main's P; Gs started elsewhere park on it and
    must be readied on their home P (else greenlet raises)."""
    def main():
        a, b, pa, pb = pair()
        pa.set_read_deadline(time.monotonic() - 1)
        with pytest.raises(TimeoutError):
            pa.wait_read()            # registers a with this P's epoll
        pa.set_read_deadline(None)
        done = gmp.Chan(100)

        def reader(i):
            gmp.sleep(0)              # started: now bound to its home P
            pa.wait_read()
            done.send(i)
        gs = [gmp.go(reader, i) for i in range(20)]
        wait_until(lambda: all(g.wait_reason == "IO wait" for g in gs), "readers parked")
        pb.sendall(b"x")
        assert sorted(done.recv(timeout=5) for _ in gs) == list(range(20))
        for s in (a, b):
            s.close()
    gmp.run(main, procs=procs)


def test_deadline_wakes_only_the_waiting_g(procs):
    def main():
        a, b, pa, pb = pair()
        c, d, pc, pd = pair()
        other = gmp.go(pc.recv, 10)
        wait_until(parked(other), "other reader parked")
        pa.set_read_deadline(time.monotonic() + 0.05)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            pa.recv(10)
        assert 0.04 <= time.monotonic() - t0 < 2
        assert other.wait_reason == "IO wait"      # untouched
        pd.sendall(b"ok")
        assert other.result(timeout=5) == b"ok"
        # An expired deadline fails at once; moving it revives the fd.
        with pytest.raises(TimeoutError):
            pa.recv(10)
        pa.set_read_deadline(time.monotonic() + 60)
        pb.sendall(b"y")
        assert pa.recv(10) == b"y"
        for s in (a, b, c, d):
            s.close()
    gmp.run(main, procs=procs)


def test_deadline_extended_while_parked(procs):
    def main():
        a, b, pa, pb = pair()
        pa.set_read_deadline(time.monotonic() + 0.02)
        g = gmp.go(pa.recv, 10)
        wait_until(parked(g), "reader parked")
        pa.set_read_deadline(time.monotonic() + 60)    # moved before expiry
        gmp.sleep(0.05)                                # past the old deadline
        assert g.wait_reason == "IO wait"
        pb.sendall(b"late")
        assert g.result(timeout=5) == b"late"
        a.close(); b.close()
    gmp.run(main, procs=procs)


def test_close_wakes_parked_reader_and_writer(procs):
    def main():
        a, b, pa, _pb = pair()
        r = gmp.go(pa.recv, 10)

        def writer():
            chunk = b"z" * 65536
            while True:
                pa.send(chunk)        # fills the buffer, then parks
        w = gmp.go(writer)
        wait_until(lambda: r.wait_reason == "IO wait" and w.wait_reason == "IO wait",
                   "reader and writer parked")
        pa.close()
        for g in (r, w):
            with pytest.raises(NetClosed) as ei:
                g.result(timeout=5)
            assert ei.value.errno == errno.EBADF
        with pytest.raises(NetClosed):
            pa.recv(1)
        a.close(); b.close()
    gmp.run(main, procs=procs)


def test_peer_reset_only_hits_its_reader(procs):
    def main():
        a, b, pa, _pb = pair()
        c, d, pc, pd = pair()
        r1 = gmp.go(pa.recv, 10)
        r2 = gmp.go(pc.recv, 10)
        wait_until(lambda: r1.wait_reason == r2.wait_reason == "IO wait", "parked")
        # RST needs TCP; on a unix socketpair a close is EOF.
        b.close()
        assert r1.result(timeout=5) == b""
        assert r2.wait_reason == "IO wait"
        pd.sendall(b"alive")
        assert r2.result(timeout=5) == b"alive"
        for s in (a, c, d):
            s.close()
    gmp.run(main, procs=procs)


def test_fd_reuse_ignores_stale_events():
    """An fd closed behind its PollDesc's back and reused: the new PollDesc
    takes over (new seq), the old one's waiter fails instead of hanging."""
    def main():
        a, b, pa, _pb = pair()
        g = gmp.go(pa.recv, 10)
        wait_until(parked(g), "parked")
        fd = a.fileno()
        a.close()                    # not through gmp: the kernel drops it from epoll
        c, d = socket.socketpair()
        c.setblocking(False)
        assert c.fileno() == fd      # reused
        pc = PollDesc(c.fileno())
        g2 = gmp.go(pc.recv, 10)
        wait_until(parked(g2), "parked on the reused fd")
        with pytest.raises(NetClosed):
            g.result(timeout=5)
        d.sendall(b"new")
        assert g2.result(timeout=5) == b"new"
        assert g.dead
        for s in (b, c, d):
            s.close()
    gmp.run(main, procs=2)


def test_io_wait_is_not_a_deadlock():
    """main parks on a read that only an OS thread outside gmp satisfies."""
    a, b = socket.socketpair()
    a.setblocking(False)
    state = {}

    def outsider():
        end = time.monotonic() + 5
        while state.get("g") is None or state["g"].wait_reason != "IO wait":
            if time.monotonic() > end:
                return
            time.sleep(0.001)
        b.sendall(b"from outside")

    def main():
        state["g"] = gmp.current()
        pa = PollDesc(a.fileno())
        return pa.recv(100)

    t = threading.Thread(target=outsider)
    t.start()
    try:
        assert gmp.run(main, procs=2) == b"from outside"
    finally:
        t.join()
        a.close(); b.close()


def test_many_waiters_on_one_fd_all_served(procs):
    """Several Gs parked on one fd (like Gs accepting on one listener):
    every byte is read by someone, none is left parked forever."""
    def main():
        a, b, pa, pb = pair()
        got = gmp.Chan(100)

        def reader():
            got.send(pa.recv(1))
        gs = [gmp.go(reader) for _ in range(10)]
        wait_until(lambda: all(g.wait_reason == "IO wait" for g in gs), "all parked")
        pb.sendall(b"0123456789")
        assert sorted(got.recv(timeout=5) for _ in gs) == [bytes([c]) for c in b"0123456789"]
        a.close(); b.close()
    gmp.run(main, procs=procs)


def test_netpoll_counters_and_nexternal():
    def main():
        a, b, pa, pb = pair()
        g = gmp.go(pa.recv, 10)
        wait_until(parked(g), "parked")
        st = gmp._ext._core.stats()
        assert sum(p["fds"] for p in st["ps"]) == 1
        pb.sendall(b"x")
        g.result(timeout=5)
        pa.close()
        st = gmp._ext._core.stats()
        assert sum(p["fds"] for p in st["ps"]) == 0
        assert sum(p["netpoll_ready"] for p in st["ps"]) >= 1
        a.close(); b.close()
    gmp.run(main, procs=2)

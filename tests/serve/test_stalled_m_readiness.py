"""Readiness is never stranded on a stalled P: a G waiting on an fd whose
poll descriptor was registered with another P's epoll (that of an earlier
waiter) is woken as soon as the data arrives, while the earlier waiter's M
sits in a long call gmp cannot see."""
import socket
import threading
import time

import pytest
from helpers import parked, wait_until

import gmp
from gmp import net
from gmp._ext import _core

STALL = 1.5
DATA_AT = 0.15


@pytest.mark.parametrize("procs", [2, 4])
def test_waiter_on_a_healthy_m_is_woken_during_another_ms_stall(procs):
    a, b = socket.socketpair()

    def first_reader(conn):
        return conn.recv(10)                    # registers the fd with P0's epoll

    def second_reader(conn):
        data = conn.recv(10)
        return time.monotonic(), data, threading.get_ident()

    def main():
        conn = net.Conn(a)
        g0 = _core.go_on(0, first_reader, conn)
        wait_until(parked(g0), "the first reader to park on P0")
        b.send(b"x")
        assert g0.result(5) == b"x"
        g1 = _core.go_on(1, second_reader, conn)
        wait_until(parked(g1), "the second reader to park on P1")
        threading.Timer(DATA_AT, b.send, (b"late",)).start()
        t0 = time.monotonic()
        time.sleep(STALL)                       # unpatched: M0's thread is stuck
        woke, data, tid = g1.result(5)
        conn.close()
        return woke - t0, data, tid

    try:
        woke_after, data, tid = gmp.run(main, procs=procs)
    finally:
        b.close()
    assert data == b"late"
    assert tid != threading.get_ident()
    assert woke_after < DATA_AT + 0.3, f"woken {woke_after:.3f}s into a {STALL}s stall of M0"

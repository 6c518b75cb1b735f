"""Bad socket arguments fail at the call with the stdlib's kind of error
(issue 9, item 9): a timeout that is not a number is a TypeError, a negative
one a ValueError (not an "i/o timeout" later), an nbytes outside the buffer
a ValueError, for gmp.net and for the patched socket alike."""
import socket

import pytest

import gmp
from gmp import net
from gmp.monkey.socket import GSocket


@pytest.fixture
def listener(grun):
    """A loopback listener, made and closed inside a runtime on `procs` Ms."""
    def run(body):
        def main():
            ln = net.listen(("127.0.0.1", 0))
            try:
                return body(ln)
            finally:
                ln.close()
        return grun(main)
    return run


@pytest.mark.parametrize("timeout", ["x", b"1", [1], object()])
def test_dial_timeout_not_a_number_is_a_type_error(listener, timeout):
    def body(ln):
        with pytest.raises(TypeError, match="dial timeout must be int, float or None"):
            net.dial(ln.addr, timeout=timeout)
    listener(body)


@pytest.mark.parametrize("timeout", [-1, -0.001, float("nan")])
def test_dial_timeout_negative_or_nan_is_a_value_error(listener, timeout):
    def body(ln):
        with pytest.raises(ValueError, match="dial timeout"):
            net.dial(ln.addr, timeout=timeout)
    listener(body)


def test_dial_with_a_valid_timeout_connects(listener):
    def body(ln):
        with net.dial(ln.addr, timeout=5) as c:
            srv, _ = ln.accept()
            with srv:
                c.sendall(b"ok")
                assert srv.recv(2) == b"ok"
    listener(body)


def _pair(ln):
    c = net.dial(ln.addr)
    srv, _ = ln.accept()
    return c, srv


@pytest.mark.parametrize("nbytes, message", [(-1, "negative buffersize in recv_into"),
                                             (9, "buffer too small for requested bytes")])
def test_conn_recv_into_bad_nbytes_is_a_value_error(listener, nbytes, message):
    def body(ln):
        c, srv = _pair(ln)
        with c, srv:
            srv.sendall(b"0123456789")
            buf = bytearray(8)
            with pytest.raises(ValueError, match=message):
                c.recv_into(buf, nbytes)
            # Nothing was consumed: a valid call still reads the data.
            assert c.recv_into(buf, 4) == 4 and buf[:4] == b"0123"
            assert c.recv_into(buf) == 6 and buf[:6] == b"456789"
    listener(body)


def test_patched_socket_timeouts_are_checked_as_the_stdlib_does():
    with GSocket() as s, socket.socket() as ref:
        for bad, exc in (("x", TypeError), (-1, ValueError), (float("nan"), ValueError)):
            with pytest.raises(exc):
                ref.settimeout(bad)
            with pytest.raises(exc):
                s.settimeout(bad)
        s.settimeout(2)
        assert s.gettimeout() == 2.0 and s.getblocking()
        s.settimeout(None)
        assert s.gettimeout() is None


def test_patched_socket_recv_into_bad_nbytes(grun):
    def main():
        a, b = socket.socketpair()
        with GSocket(fileno=a.detach()) as ga, b:
            b.sendall(b"abc")
            with pytest.raises(ValueError, match="negative buffersize"):
                ga.recv_into(bytearray(4), -1)
            with pytest.raises(ValueError, match="buffer too small"):
                ga.recv_into(bytearray(4), 5)
            buf = bytearray(4)
            assert ga.recv_into(buf) == 3 and buf[:3] == b"abc"
    grun(main)


def test_one_resolver_for_gmp_net_and_the_patched_socket():
    from gmp import netcore
    from gmp.monkey import dns
    assert net.getaddrinfo is netcore.getaddrinfo is dns.getaddrinfo
    assert gmp.run(lambda: net.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM))[0][4] == ("127.0.0.1", 80)

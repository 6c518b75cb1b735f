"""gmp.net and gmp.blocking, under 1, 2 and 4 Ms."""
import errno
import os
import resource
import socket
import struct
import threading
import time

import pytest
from helpers import parked, wait_until

import gmp
from gmp import net

LOOP = ("127.0.0.1", 0)


def echo_handler(conn, addr):
    buf = bytearray(4096)
    with conn:
        while True:
            n = conn.recv_into(buf)
            if n == 0:
                return
            conn.sendall(memoryview(buf)[:n])


def start_echo(addr=LOOP):
    ln = net.listen(addr)
    gmp.go(net.serve, ln, echo_handler)
    return ln


def recv_exact(conn, n):
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        assert chunk, "unexpected EOF"
        out += chunk
    return out


def test_tcp_echo_many_clients(procs):
    def client(addr, i):
        with net.dial(addr, timeout=5) as c:
            for r in range(20):
                msg = b"%05d-%05d" % (i, r) * 10
                c.sendall(msg)
                assert recv_exact(c, len(msg)) == msg
        return i

    def main():
        ln = start_echo()
        gs = [gmp.go(client, ln.addr, i) for i in range(60)]
        assert sorted(g.result(timeout=30) for g in gs) == list(range(60))
        ln.close()
    gmp.run(main, procs=procs)


def test_listener_defaults():
    def main():
        ln = net.listen(LOOP)
        s = ln.socket
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        c = net.dial(ln.addr)
        conn, addr = ln.accept()
        assert addr == c.local_addr
        assert c.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert conn.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        for x in (c, conn, ln):
            x.close()
    gmp.run(main, procs=1)


def test_ipv6_and_unix_and_hostname(tmp_path, procs):
    path = str(tmp_path / "echo.sock")

    def main():
        outs = []
        lns = [start_echo(("::1", 0)), start_echo(path), start_echo(("localhost", 0))]
        for ln, target in ((lns[0], None), (lns[1], path), (lns[2], None)):
            addr = target or ("localhost", ln.addr[1]) if ln is lns[2] else (target or ln.addr)
            with net.dial(addr, timeout=5) as c:
                c.sendall(b"ping")
                outs.append(recv_exact(c, 4))
        for ln in lns:
            ln.close()
        return outs
    assert gmp.run(main, procs=procs) == [b"ping"] * 3


def test_udp_echo(procs):
    def main():
        srv = net.listen_udp(LOOP)

        def server():
            buf = bytearray(2048)
            while True:
                n, addr = srv.recvfrom_into(buf)
                if bytes(buf[:n]) == b"quit":
                    return
                srv.sendto(buf[:n], addr)
        sg = gmp.go(server)
        cli = net.dial_udp(srv.local_addr)
        for i in range(50):
            cli.send(b"dgram %d" % i)
            assert cli.recv(2048) == b"dgram %d" % i
        cli.send(b"quit")
        sg.result(timeout=5)
        cli.close(); srv.close()
    gmp.run(main, procs=procs)


def test_peer_reset_mid_read_only_that_g(procs):
    def main():
        ln = net.listen(LOOP)
        c1 = net.dial(ln.addr)
        s1, _ = ln.accept()
        c2 = net.dial(ln.addr)
        s2, _ = ln.accept()
        r1 = gmp.go(s1.recv, 100)
        r2 = gmp.go(s2.recv, 100)
        wait_until(lambda: r1.wait_reason == r2.wait_reason == "IO wait", "readers parked")
        c1.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c1.close()                              # RST
        with pytest.raises(ConnectionResetError):
            r1.result(timeout=5)
        assert r2.wait_reason == "IO wait"
        c2.sendall(b"fine")
        assert r2.result(timeout=5) == b"fine"
        for x in (s1, s2, c2, ln):
            x.close()
    gmp.run(main, procs=procs)


def test_half_close(procs):
    def main():
        ln = net.listen(LOOP)

        def server(conn, addr):
            data = b""
            while True:
                chunk = conn.recv(1000)
                if not chunk:
                    break
                data += chunk
            conn.sendall(b"got %d" % len(data))   # still writable after peer's FIN
            conn.close()
        gmp.go(net.serve, ln, server)
        c = net.dial(ln.addr)
        c.sendall(b"a" * 100000)
        c.shutdown(socket.SHUT_WR)
        with pytest.raises(OSError):
            c.sendall(b"more")                     # EPIPE after our own shutdown
        assert recv_exact(c, 10) == b"got 100000"
        assert c.recv(10) == b""
        c.close()
        ln.close()
    gmp.run(main, procs=procs)


def test_closed_conn_errors(procs):
    def main():
        ln = net.listen(LOOP)
        c = net.dial(ln.addr)
        s, _ = ln.accept()
        r = gmp.go(s.recv, 10)
        wait_until(parked(r), "reader parked")
        s.close()                                  # closed while parked
        with pytest.raises(net.NetClosed) as ei:
            r.result(timeout=5)
        assert ei.value.errno == errno.EBADF
        assert "use of closed network connection" in str(ei.value)
        for op in (lambda: s.recv(1), lambda: s.sendall(b"x"),
                   lambda: s.recv_into(bytearray(4)), lambda: s.shutdown()):
            with pytest.raises(net.NetClosed):
                op()
        s.close()                                  # idempotent
        a = gmp.go(ln.accept)
        wait_until(parked(a), "acceptor parked")
        ln.close()
        with pytest.raises(net.NetClosed):
            a.result(timeout=5)
        c.close()
    gmp.run(main, procs=procs)


def test_conn_deadlines(procs):
    def main():
        ln = net.listen(LOOP)
        c = net.dial(ln.addr)
        s, _ = ln.accept()
        c.set_read_deadline(time.monotonic() + 0.05)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            c.recv(10)
        assert time.monotonic() - t0 >= 0.04
        c.set_deadline(None)
        # A write deadline fires once the socket buffers are full.
        c.set_write_deadline(time.monotonic() + 0.05)
        with pytest.raises(TimeoutError):
            for _ in range(100000):
                c.sendall(b"x" * 65536)
        for x in (c, s, ln):
            x.close()
    gmp.run(main, procs=procs)


def test_dial_refused_and_timeout_arg():
    def main():
        ln = net.listen(LOOP)
        port = ln.addr[1]
        ln.close()
        with pytest.raises(ConnectionRefusedError):
            net.dial(("127.0.0.1", port), timeout=2)
    gmp.run(main, procs=1)


def test_accept_under_emfile_backs_off_and_keeps_serving():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nclients = 5
    attempts = []

    class CountingListener:
        def __init__(self, ln):
            self.ln = ln

        @property
        def closed(self):
            return self.ln.closed

        def accept(self):
            try:
                return self.ln.accept()
            except OSError as e:
                attempts.append(e.errno)
                raise

    def main():
        ln = net.listen(LOOP)
        served = gmp.Chan(nclients)

        def handler(conn, addr):
            with conn:
                conn.sendall(conn.recv(10))
            served.send(1)
        # Client sockets exist before the fd table is filled.
        clients = [socket.socket() for _ in range(nclients)]
        fill = []
        top = max(int(fd) for fd in os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (top + 16, hard))
        try:
            while True:
                fill.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as e:
            assert e.errno == errno.EMFILE
        srv = gmp.go(net.serve, CountingListener(ln), handler)
        for c in clients:
            c.setblocking(False)
            assert c.connect_ex(ln.addr) in (0, errno.EINPROGRESS)
        wait_until(lambda: len(attempts) >= 3 or srv.dead, "accept failing with EMFILE")
        assert not srv.dead, srv.exception
        t0 = time.monotonic()
        n0 = len(attempts)
        gmp.sleep(0.2)
        # 5 ms doubling: at most a handful of retries in 200 ms, no busy loop.
        assert len(attempts) - n0 <= 6, attempts
        for fd in fill:
            os.close(fd)
        fill.clear()
        for c in clients:
            c.setblocking(True)
            c.settimeout(5)
            c.sendall(b"hi")
        for _ in clients:
            served.recv(timeout=5)
        for c in clients:
            assert c.recv(10) == b"hi"
            c.close()
        assert set(attempts) == {errno.EMFILE}
        ln.close()
        srv.result(timeout=5)
        return time.monotonic() - t0

    try:
        gmp.run(main, procs=2)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


CLIENT_10K = r"""
import resource, selectors, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
sel = selectors.DefaultSelector()
socks, pending, end = [], 0, time.monotonic() + 60
i = 0
while (i < n or pending) and time.monotonic() < end:
    while i < n and pending < 500:           # stay within the accept backlog
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        s.sendall(b"%08d" % i)
        sel.register(s, selectors.EVENT_READ, b"%08d" % i)
        socks.append(s)
        pending += 1
        i += 1
    for key, _ in sel.select(1.0):
        assert key.fileobj.recv(8) == key.data, "bad echo"
        sel.unregister(key.fileobj)
        pending -= 1
print("open", len(socks), flush=True)
sys.stdin.readline()
for s in socks:
    s.close()
"""


def test_10k_concurrent_connections(tmp_path):
    """10 000 connections open at once against a gmp echo server (the
    clients live in a child process: each side needs 10 k fds)."""
    import subprocess
    import sys
    n = 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < n + 500:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {n + 500}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    script = tmp_path / "client10k.py"
    script.write_text(CLIENT_10K)

    def main():
        ln = net.listen(LOOP)
        live = [0, 0]                    # open now, most at once
        all_open = gmp.Event()

        def handler(conn, addr):
            live[0] += 1
            live[1] = max(live[1], live[0])
            if live[0] == n:
                all_open.set()
            try:
                echo_handler(conn, addr)
            finally:
                live[0] -= 1
        gmp.go(net.serve, ln, handler)
        proc = subprocess.Popen([sys.executable, str(script), str(ln.addr[1]), str(n)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            line = gmp.blocking(proc.stdout.readline)
            assert line.split() == [b"open", str(n).encode()], line
            assert all_open.wait(timeout=30), f"only {live[0]} connections open"
            assert len(os.listdir("/proc/self/fd")) >= n
            proc.stdin.write(b"bye\n")
            proc.stdin.flush()
            assert gmp.blocking(proc.wait, 60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        wait_until(lambda: live[0] == 0, "every handler saw EOF", timeout=30)
        ln.close()
        return live[1]
    try:
        assert gmp.run(main, procs=2) == n
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- gmp.blocking ------------------------------------------------------------

def test_blocking_overlaps_and_keeps_m_free(procs):
    def main():
        ticks = []
        stop = gmp.Event()

        def ticker():
            while not stop.is_set():
                ticks.append(1)
                gmp.sleep(0.005)
        gmp.go(ticker)
        t0 = time.monotonic()
        gs = [gmp.go(gmp.blocking, time.sleep, 0.2) for _ in range(8)]
        for g in gs:
            g.result(timeout=5)
        elapsed = time.monotonic() - t0
        stop.set()
        assert elapsed < 1.0, elapsed          # 8 x 0.2 s overlapped
        assert len(ticks) >= 10                # the M kept running Gs meanwhile
    gmp.run(main, procs=procs)


def test_blocking_result_exception_and_no_deadlock():
    def boom():
        raise KeyError("x")

    def main():
        assert gmp.blocking(lambda a, b=0: a + b, 2, b=3) == 5
        with pytest.raises(KeyError):
            gmp.blocking(boom)
        # main parked only on a blocking call: not a deadlock.
        ev = threading.Event()
        threading.Timer(0.05, ev.set).start()
        assert gmp.blocking(ev.wait, 5) is True
        return threading.current_thread() is threading.main_thread()
    assert gmp.run(main, procs=1)


def test_blocking_kill_while_waiting():
    def main():
        ev = threading.Event()
        g = gmp.go(gmp.blocking, ev.wait, 5)
        wait_until(parked(g, "blocking call"), "parked in blocking")
        g.kill()
        assert g.join(timeout=5)
        assert isinstance(g.exception, gmp.Killed)
        ev.set()
        # The runtime stays healthy after the late completion.
        assert gmp.blocking(lambda: 7) == 7
    gmp.run(main, procs=2)


def test_blocking_outside_runtime_runs_inline():
    assert gmp.blocking(lambda: threading.current_thread()) is threading.current_thread()

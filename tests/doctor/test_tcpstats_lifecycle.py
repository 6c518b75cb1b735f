"""gmp.tcpstats on real loopback connections: tcp_info(), the lifecycle
counters of gmp.net listeners and the dialer, the backlog warning, and an
accept queue overflowing under a burst, seen by gmp.net and by gmp doctor."""
import errno
import io
import socket
import struct
import warnings

import pytest
from helpers import wait_until

import gmp
from gmp import doctor, net, tcpstats
from gmp.doctor.procfs import Proc

LOOP = ("127.0.0.1", 0)


def connected_pair():
    """(server Conn, client Conn) over loopback, from gmp.net."""
    ln = net.listen(LOOP)
    g = gmp.go(ln.accept)
    client = net.dial(ln.addr)
    server, _ = g.result()
    return ln, server, client


def test_tcp_info_on_a_loopback_connection(grun):
    def main():
        ln, server, client = connected_pair()
        client.sendall(b"x" * 1000)
        got = 0
        while got < 1000:
            got += len(server.recv(4096))
        infos = [client.tcp_info(), server.tcp_info(), tcpstats.tcp_info(client.fileno()),
                 tcpstats.tcp_info(client.socket)]
        listener = tcpstats.tcp_info(ln)
        client.close(), server.close(), ln.close()
        return infos, listener

    infos, listener = grun(main)
    for info in infos:
        assert info.state == "ESTABLISHED"
        assert 0 < info.rtt_us < 200_000          # loopback: microseconds, even on a busy machine
        assert info.rttvar_us >= 0 and info.rto_us >= 200_000
        assert info.snd_cwnd >= 1 and info.snd_mss > 0
        assert info.total_retrans == 0
    assert infos[0].bytes_acked in (None, 1001)    # None: a kernel without the field
    assert listener.state == "LISTEN"


def test_tcp_info_rejects_what_is_not_tcp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(OSError):
        tcpstats.tcp_info(udp)


def test_listener_counts_how_connections_end(grun):
    def main():
        ln = net.listen(LOOP)
        ended = []

        def handler(conn, addr):
            try:
                while conn.recv(100):
                    pass
                ended.append("eof")
            except ConnectionResetError:
                ended.append("reset")
            finally:
                conn.close()

        gmp.go(net.serve, ln, handler)
        # 1: the client closes first.
        net.dial(ln.addr).close()
        # 2: the client aborts (RST).
        c = net.dial(ln.addr)
        c.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        wait_until(lambda: len(ended) == 2, "two handlers done")
        # 3: the client half-closes, the server answers and closes.
        c = net.dial(ln.addr)
        c.shutdown(socket.SHUT_WR)
        assert c.recv(10) == b""
        wait_until(lambda: len(ended) == 3, "third handler done")
        c.close()
        snap = ln.stats.snapshot()
        live = [s["addr"] for s in tcpstats.snapshots() if s["kind"] == "listener"]
        ln.close()
        after = [s["addr"] for s in tcpstats.snapshots() if s["kind"] == "listener"]
        return sorted(ended), snap, live, after

    ended, snap, live, after = grun(main)
    assert ended == ["eof", "eof", "reset"]
    assert snap["accepted"] == 3 and snap["closed"] == 3 and snap["open"] == 0
    assert snap["closed_by_peer"] == 2 and snap["reset"] == 1 and snap["timed_out"] == 0
    assert snap["accept_queue"] == 0 and snap["queue_full"] is False
    assert snap["addr"] in live and snap["addr"] not in after   # serve()'s dups do not unregister it


def test_dialer_counts_connects_failures_and_half_closes(grun):
    def main():
        before = tcpstats.dialer.snapshot()
        ln, server, client = connected_pair()
        client.shutdown(socket.SHUT_WR)
        assert server.recv(10) == b""
        server.close()
        assert client.recv(10) == b""
        client.close()
        addr = ln.addr
        ln.close()
        with pytest.raises(ConnectionRefusedError):
            net.dial(addr)          # nobody listens there any more
        return before, tcpstats.dialer.snapshot()

    before, after = grun(main)
    assert after["connected"] == before["connected"] + 1
    assert after["half_closed"] == before["half_closed"] + 1
    assert after["closed_by_peer"] == before["closed_by_peer"] + 1
    assert after["reset"] == before["reset"]
    assert after["failures"]["ECONNREFUSED"] == before["failures"].get("ECONNREFUSED", 0) + 1
    assert sum(after["connect_hist"].values()) == after["connected"]
    assert after["connect_mean_us"] > 0


class FakeSock:
    """What ConnCounters.on_close asks of a socket: TCP_INFO and SO_ERROR."""

    def __init__(self, state, so_error=0, retransmits=0):
        self.raw = bytes([state, 0, retransmits, 0]) + bytes(100)
        self.so_error = so_error

    def getsockopt(self, level, opt, size=None):
        return self.raw[:size] if opt == socket.TCP_INFO else self.so_error


@pytest.mark.parametrize("state,so_error,retransmits,fin_sent,counter", [
    (1, 0, 0, False, None),                          # ESTABLISHED: we closed first
    (8, 0, 0, False, "closed_by_peer"),              # CLOSE_WAIT
    (9, 0, 0, True, "closed_by_peer"),               # LAST_ACK
    (7, errno.ECONNRESET, 0, False, "reset"),
    (7, 0, 0, False, "reset"),                       # the app already took the ECONNRESET
    (7, errno.ETIMEDOUT, 0, False, "timed_out"),     # retransmission / keep-alive timeout
    (7, 0, 5, False, "timed_out"),                   # ... whose error the app already took
    (7, 0, 0, True, "closed_by_peer"),               # our FIN, then theirs: orderly
])
def test_close_is_classified_from_the_kernel_state(state, so_error, retransmits, fin_sent, counter):
    c = tcpstats.ConnCounters(True)
    conn_state = c.on_shutdown(socket.SHUT_WR) if fin_sent else c
    conn_state.on_close(FakeSock(state, so_error, retransmits))
    counts = {k: v for k, v in c.snapshot().items() if k in ("closed_by_peer", "reset", "timed_out") and v}
    assert c.closed == 1
    assert counts == ({counter: 1} if counter else {})


def test_close_counting_never_raises():
    """close() must release the fd even when the kernel cannot be asked."""
    s = socket.socket()
    s.close()
    c = tcpstats.ConnCounters(True)
    c.on_close(s)
    assert c.closed == 1 and c.reset == c.closed_by_peer == c.timed_out == 0


def test_backlog_above_somaxconn_warns_once(grun, monkeypatch):
    monkeypatch.setattr(tcpstats, "_backlog_warned", False)
    somax = Proc().sysctl_int("net.core.somaxconn")
    if somax is None or somax >= 2 ** 30:
        pytest.skip("no readable somaxconn below 2**30")

    def main():
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            a = net.listen(LOOP, backlog=somax + 1)
            b = net.listen(LOOP, backlog=somax + 1)
            c = net.listen(LOOP, backlog=8)
        snap = a.stats.snapshot()
        for ln in (a, b, c):
            ln.close()
        return [str(x.message) for x in w if x.category is RuntimeWarning], snap

    msgs, snap = grun(main)
    assert len(msgs) == 1
    assert f"backlog {somax + 1} clipped to {somax} by net.core.somaxconn" in msgs[0]
    assert snap["backlog"] == somax + 1 and snap["effective_backlog"] == somax


def test_dump_shows_the_counters(grun):
    def main():
        ln, server, client = connected_pair()
        out = io.StringIO()
        gmp.dump(out)
        addr = tcpstats.ListenerStats.snapshot(ln.stats)["addr"]
        for c in (client, server, ln):
            c.close()
        return out.getvalue(), addr

    text, addr = grun(main)
    assert "gmp.net connections:" in text
    assert f"listener {addr}: " in text and "accepted=1 open=1" in text
    assert "dialer: connected=" in text


def test_fast_open_reports_whether_the_kernel_allows_it(grun):
    allowed = bool((Proc().sysctl_int("net.ipv4.tcp_fastopen") or 0) & 2)

    def main():
        with net.listen(LOOP, fast_open=16) as tfo, net.listen(LOOP) as plain:
            return tfo.stats.snapshot(), plain.stats.snapshot()

    tfo, plain = grun(main)
    assert tfo["fast_open"] == 16 and tfo["fast_open_allowed"] is allowed
    assert "fast_open_allowed" not in plain


@pytest.mark.hang_timeout(30)
def test_accept_queue_overflow_under_a_burst(grun, monkeypatch):
    """Backlog 1 and nobody accepting: the kernel queues 2 connections and
    drops the SYNs of the rest.  gmp.net sees the full queue and the dials
    that time out; gmp doctor sees ListenOverflows move and the queue."""
    burst = 8

    def main():
        ln = net.listen(LOOP, backlog=1)
        socks = []
        failed = []

        def storm(_):
            for _ in range(burst):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(ln.addr)
                socks.append(s)
            for _ in range(2):      # gmp dials after the queue is full: their SYNs are dropped
                try:
                    net.dial(ln.addr, timeout=0.3).close()
                except TimeoutError:
                    failed.append(1)

        before = tcpstats.dialer.snapshot()["failures"].get("timeout", 0)
        monkeypatch.setattr(doctor.time, "sleep", storm)
        report = doctor.check("server", interval=1.0)
        snap = ln.stats.snapshot()
        after = tcpstats.dialer.snapshot()["failures"].get("timeout", 0)
        for s in socks:
            s.close()
        ln.close()
        return report, snap, after - before, len(failed)

    report, snap, dial_timeouts, failed = grun(main)
    # gmp.net's own view: the queue is full, and dials time out.
    assert snap["accept_queue"] == 2 and snap["effective_backlog"] == 1 and snap["queue_full"] is True
    assert failed == 2 and dial_timeouts == 2
    # The doctor's: the overflow counter moved in the interval, the queue is full.
    by_id = {}
    for f in report.findings:
        by_id.setdefault(f.id, []).append(f)
    over = by_id["counters.listen_overflows"][0]
    assert over.severity == "error" and over.value >= burst - 2, over
    queue = [f for f in by_id["sockets.listen_queue"] if f.subject == snap["addr"]]
    assert queue and queue[0].severity == "error" and queue[0].value == "2/1"
    assert report.exit_status == 1

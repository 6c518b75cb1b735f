"""gmp doctor's rules on fabricated /proc trees: each finding's ok and bad
case, the --interval rates and fd growth, missing files, the exit status."""
import json
import os
import socket
import struct
import subprocess
import sys

import pytest

from gmp import cli, doctor

PID = 4242
ME = ("10.0.0.1", 40000)
REDIS = ("10.0.0.2", 6379)

HEALTHY_SYSCTL = {
    "core/somaxconn": "4096", "ipv4/tcp_max_syn_backlog": "4096", "ipv4/tcp_syncookies": "1",
    "ipv4/tcp_fastopen": "3", "ipv4/tcp_tw_reuse": "1", "ipv4/tcp_fin_timeout": "30",
    "ipv4/ip_local_port_range": "10000\t65535", "ipv4/tcp_slow_start_after_idle": "0",
    "ipv4/tcp_keepalive_time": "60", "ipv4/tcp_keepalive_intvl": "10",
    "ipv4/tcp_keepalive_probes": "6", "core/netdev_max_backlog": "16384",
}
HEALTHY_COUNTERS = {
    "TcpExt": {"SyncookiesSent": 0, "ListenOverflows": 0, "ListenDrops": 0, "TCPTimeouts": 0,
               "TCPFastOpenActive": 5, "TCPFastOpenActiveFail": 0, "TCPFastOpenPassive": 7,
               "TCPFastOpenPassiveFail": 0, "TCPSynRetrans": 0},
    "Tcp": {"RtoAlgorithm": 1, "ActiveOpens": 10, "OutSegs": 1000, "RetransSegs": 0},
}
STATE_CODES = {"ESTABLISHED": 1, "SYN_SENT": 2, "TIME_WAIT": 6, "CLOSE_WAIT": 8, "LISTEN": 10}


def hexaddr(addr):
    host, port = addr
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    raw = socket.inet_pton(fam, host)
    words = struct.unpack(f"={len(raw) // 4}I", raw)
    return "".join(f"{w:08X}" for w in words) + f":{port:04X}"


def sock_line(i, local, remote, state, rx=0, tx=0, inode=0):
    return (f"{i:4d}: {hexaddr(local)} {hexaddr(remote)} {STATE_CODES[state]:02X} "
            f"{tx:08X}:{rx:08X} 00:00000000 00000000  1000        0 {inode} 1 0000000000000000 "
            f"100 0 0 10 0")


class FakeProc:
    """A proc/ tree in tmp_path: healthy settings, one process (PID) with
    a few fds, and setters to make one thing bad at a time."""

    def __init__(self, root):
        self.root = root
        self.proc = root / "proc"
        self.counters = {k: dict(v) for k, v in HEALTHY_COUNTERS.items()}
        for name, value in HEALTHY_SYSCTL.items():
            self.sysctl(name, value)
        self.write_counters()
        self.socks = {"tcp": [], "tcp6": []}
        self.write_socks()
        self.set_fds(socket=3, file=2, pipe=2, epoll=1, eventfd=1)
        self.limits(20000, 20000)

    def sysctl(self, name, value):
        path = self.proc / "sys" / "net" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{value}\n")

    def remove(self, rel):
        os.remove(self.proc / rel)

    def count(self, prefix, name, value):
        self.counters[prefix][name] = value
        self.write_counters()

    def write_counters(self):
        (self.proc / "net").mkdir(parents=True, exist_ok=True)
        for fname, prefixes in (("netstat", ["TcpExt"]), ("snmp", ["Tcp"])):
            text = ""
            for p in prefixes:
                names = self.counters[p]
                text += f"{p}: " + " ".join(names) + "\n"
                text += f"{p}: " + " ".join(str(v) for v in names.values()) + "\n"
            (self.proc / "net" / fname).write_text(text)

    def add_sock(self, local, remote, state, rx=0, tx=0, inode=0):
        table = "tcp6" if ":" in local[0] else "tcp"
        self.socks[table].append((local, remote, state, rx, tx, inode))
        self.write_socks()

    def write_socks(self):
        header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
        for table, socks in self.socks.items():
            lines = [header] + [sock_line(i, *s) for i, s in enumerate(socks)]
            (self.proc / "net" / table).write_text("\n".join(lines) + "\n")

    def set_fds(self, inodes=(), **kinds):
        d = self.proc / str(PID) / "fd"
        if d.exists():
            for f in d.iterdir():
                f.unlink()
        d.mkdir(parents=True, exist_ok=True)
        targets = [f"socket:[{i}]" for i in inodes]
        targets += [f"socket:[{900000 + i}]" for i in range(kinds.get("socket", 0))]
        targets += [f"/var/log/app{i}.log" for i in range(kinds.get("file", 0))]
        targets += [f"pipe:[{800000 + i}]" for i in range(kinds.get("pipe", 0))]
        targets += ["anon_inode:[eventpoll]"] * kinds.get("epoll", 0)
        targets += ["anon_inode:[eventfd]"] * kinds.get("eventfd", 0)
        for n, target in enumerate(targets):
            os.symlink(target, d / str(n))

    def limits(self, soft, hard):
        (self.proc / str(PID)).mkdir(parents=True, exist_ok=True)
        (self.proc / str(PID) / "limits").write_text(
            "Limit                     Soft Limit           Hard Limit           Units     \n"
            "Max processes             96362                96362                processes \n"
            f"Max open files            {soft:<21}{hard:<21}files     \n")


@pytest.fixture
def fake(tmp_path):
    return FakeProc(tmp_path)


def findings(fake, role="both", pid=None, listeners=(), interval=None):
    report = doctor.check(role, pid, interval, str(fake.root), listeners=list(listeners))
    return report, report.findings


def find(fake, fid, role="both", **kw):
    """The findings with id fid (exactly one unless several subjects)."""
    _, fs = findings(fake, role, **kw)
    got = [f for f in fs if f.id == fid]
    assert got, f"no finding {fid} in {[f.id for f in fs]}"
    return got


def one(fake, fid, role="both", **kw):
    got = find(fake, fid, role, **kw)
    assert len(got) == 1, got
    return got[0]


def test_healthy_tree_is_all_ok(fake):
    report, fs = findings(fake, pid=PID)
    bad = [(f.id, f.severity, f.advice) for f in fs if f.severity != "ok"]
    assert bad == []
    assert report.exit_status == 0
    assert len({f.id for f in fs}) >= 20


SETTING_CASES = [
    # (finding id, sysctl file, bad value, severity, words of the advice, fix)
    ("kernel.somaxconn", "core/somaxconn", "128", "warn", "somaxconn 128 clips", "net.core.somaxconn=4096"),
    ("kernel.tcp_max_syn_backlog", "ipv4/tcp_max_syn_backlog", "256", "warn", "SYN queue (256)",
     "tcp_max_syn_backlog=4096"),
    ("kernel.tcp_syncookies", "ipv4/tcp_syncookies", "0", "warn", "syncookies are off", "tcp_syncookies=1"),
    ("kernel.tcp_syncookies", "ipv4/tcp_syncookies", "2", "info", "every SYN", "tcp_syncookies=1"),
    ("kernel.tcp_fastopen", "ipv4/tcp_fastopen", "1", "info", "off for servers", "tcp_fastopen=3"),
    ("kernel.tcp_fastopen", "ipv4/tcp_fastopen", "0", "info", "clients and servers", "tcp_fastopen=3"),
    ("kernel.tcp_tw_reuse", "ipv4/tcp_tw_reuse", "0", "warn", "EADDRNOTAVAIL", "tcp_tw_reuse=1"),
    ("kernel.tcp_tw_reuse", "ipv4/tcp_tw_reuse", "2", "info", "loopback", "tcp_tw_reuse=1"),
    ("kernel.tcp_fin_timeout", "ipv4/tcp_fin_timeout", "60", "info", "60 s in FIN_WAIT2", "tcp_fin_timeout=30"),
    ("kernel.ip_local_port_range", "ipv4/ip_local_port_range", "60000 61000", "warn", "only 1001 local ports",
     "ip_local_port_range="),
    ("kernel.tcp_slow_start_after_idle", "ipv4/tcp_slow_start_after_idle", "1", "warn", "congestion window",
     "tcp_slow_start_after_idle=0"),
    ("kernel.tcp_keepalive", "ipv4/tcp_keepalive_time", "7200", "warn", "after 7260 s", "tcp_keepalive_time=60"),
    ("kernel.tcp_keepalive", "ipv4/tcp_keepalive_probes", "100", "warn", "after 1060 s", "tcp_keepalive_probes=6"),
    ("kernel.netdev_max_backlog", "core/netdev_max_backlog", "300", "warn", "holds 300 packets",
     "netdev_max_backlog=16384"),
]


@pytest.mark.parametrize("fid,name,value,severity,words,fix", SETTING_CASES,
                         ids=[f"{c[0]}={c[2]}" for c in SETTING_CASES])
def test_kernel_setting(fake, fid, name, value, severity, words, fix):
    assert one(fake, fid).severity == "ok"
    fake.sysctl(name, value)
    f = one(fake, fid)
    assert f.severity == severity, f
    assert words in f.advice
    assert fix in f.fix and f.fix.startswith("sysctl -w ")
    assert f.area == "kernel"


def test_roles_select_their_rules(fake):
    fake.sysctl("ipv4/tcp_fastopen", "1")           # the client bit only
    assert one(fake, "kernel.tcp_fastopen", "client").severity == "ok"
    assert one(fake, "kernel.tcp_fastopen", "server").severity == "info"
    _, server = findings(fake, "server")
    _, client = findings(fake, "client")
    server_ids, client_ids = {f.id for f in server}, {f.id for f in client}
    assert "kernel.somaxconn" in server_ids and "kernel.somaxconn" not in client_ids
    assert "kernel.tcp_tw_reuse" in client_ids and "kernel.tcp_tw_reuse" not in server_ids
    assert "sockets.time_wait" in client_ids and "sockets.listen_queue" not in client_ids


def test_syn_backlog_is_judged_against_somaxconn(fake):
    fake.sysctl("core/somaxconn", "1024")
    fake.sysctl("ipv4/tcp_max_syn_backlog", "1024")
    assert one(fake, "kernel.tcp_max_syn_backlog").severity == "ok"


# --- counters ---------------------------------------------------------------

COUNTER_CASES = [
    # (finding id, prefix, counter, severity since boot, severity in an interval)
    ("counters.listen_overflows", "TcpExt", "ListenOverflows", "info", "error"),
    ("counters.fastopen", "TcpExt", "TCPFastOpenActiveFail", "info", "warn"),
    ("counters.fastopen", "TcpExt", "TCPFastOpenPassiveFail", "info", "warn"),
    ("counters.syn_retrans", "TcpExt", "TCPSynRetrans", "info", "warn"),
]


@pytest.mark.parametrize("fid,prefix,name,since_boot,now", COUNTER_CASES, ids=[c[2] for c in COUNTER_CASES])
def test_drop_counters_since_boot_and_now(fake, monkeypatch, fid, prefix, name, since_boot, now):
    assert one(fake, fid).severity == "ok"
    fake.count(prefix, name, 12)
    assert one(fake, fid).severity == since_boot
    # With --interval only what moved between the samples counts.
    monkeypatch.setattr(doctor.time, "sleep", lambda s: None)
    assert one(fake, fid, interval=2).severity == "ok"
    monkeypatch.setattr(doctor.time, "sleep", lambda s: fake.count(prefix, name, 20))
    f = one(fake, fid, interval=2)
    assert f.severity == now
    assert "in the last 2 s" in f.advice


def test_listen_overflow_rate_is_reported(fake, monkeypatch):
    monkeypatch.setattr(doctor.time, "sleep", lambda s: (fake.count("TcpExt", "ListenOverflows", 10),
                                                         fake.count("TcpExt", "ListenDrops", 10)))
    report, _ = findings(fake, interval=2)
    f = next(f for f in report.findings if f.id == "counters.listen_overflows")
    assert f.value == 10 and "(5.0/s)" in f.advice and "10 SYNs dropped" in f.advice
    assert report.exit_status == 1


def test_retransmission_share(fake):
    fake.count("Tcp", "RetransSegs", 5)             # 0.5 % of 1000
    f = one(fake, "counters.retransmits")
    assert f.severity == "ok" and f.value.startswith("0.50%")
    fake.count("Tcp", "RetransSegs", 50)
    f = one(fake, "counters.retransmits")
    assert f.severity == "warn" and "5.0% of segments" in f.advice


# --- sockets ----------------------------------------------------------------

def test_socket_states_are_counted_over_tcp_and_tcp6(fake):
    fake.add_sock(("0.0.0.0", 8080), ("0.0.0.0", 0), "LISTEN")
    fake.add_sock(("::", 8081), ("::", 0), "LISTEN")
    fake.add_sock(ME, REDIS, "ESTABLISHED")
    fake.add_sock(("::1", 40001), ("::1", 8081), "ESTABLISHED")
    fake.add_sock(ME, REDIS, "TIME_WAIT")
    f = one(fake, "sockets.states")
    assert f.value == {"ESTABLISHED": 2, "LISTEN": 2, "TIME_WAIT": 1}


@pytest.mark.parametrize("n,severity", [(10, "ok"), (60, "warn"), (95, "error")])
def test_time_wait_against_the_port_range(fake, n, severity):
    fake.sysctl("ipv4/ip_local_port_range", "60000 60099")          # 100 ports
    for i in range(n):
        fake.add_sock(("10.0.0.1", 60000 + i), REDIS, "TIME_WAIT")
    for i in range(50):         # spread over other destinations: not the worst one
        fake.add_sock(("10.0.0.1", 60000 + i), ("10.0.0.3", 80 + i), "TIME_WAIT")
    f = one(fake, "sockets.time_wait")
    assert f.severity == severity and f.value == n
    if severity != "ok":
        assert f.subject == "10.0.0.2:6379" and f"{n}% of the 100 local ports" in f.advice
        assert f.fix == "sysctl -w net.ipv4.tcp_tw_reuse=1"


def test_close_wait_is_a_leak_of_the_checked_process(fake):
    assert one(fake, "sockets.close_wait").severity == "ok"
    fake.add_sock(("10.0.0.1", 8080), ("10.0.0.9", 5000), "CLOSE_WAIT", inode=111)
    fake.add_sock(("10.0.0.1", 8080), ("10.0.0.9", 5001), "CLOSE_WAIT", inode=222)
    f = one(fake, "sockets.close_wait")
    assert f.severity == "warn" and f.value == 2 and "peer closed" in f.advice
    fake.set_fds(inodes=[111])          # only one of them is the process's
    assert one(fake, "sockets.close_wait", pid=PID).value == 1
    fake.set_fds(inodes=[])
    assert one(fake, "sockets.close_wait", pid=PID).severity == "ok"


def test_listen_queue_against_somaxconn_and_a_known_backlog(fake):
    fake.add_sock(("0.0.0.0", 8080), ("0.0.0.0", 0), "LISTEN", rx=0)
    fs = find(fake, "sockets.listen_queue")
    assert [f.severity for f in fs] == ["ok"] and fs[0].value == 1
    fake.socks["tcp"].clear()
    fake.add_sock(("0.0.0.0", 8080), ("0.0.0.0", 0), "LISTEN", rx=3)
    fake.add_sock(("127.0.0.1", 9090), ("0.0.0.0", 0), "LISTEN", rx=2)
    fake.add_sock(("::", 7070), ("::", 0), "LISTEN", rx=4097)
    by = {f.subject: f for f in find(fake, "sockets.listen_queue")}
    assert by["0.0.0.0:8080"].severity == "info" and by["0.0.0.0:8080"].value == "3/4096"
    assert by["[::]:7070"].severity == "error" and "is full" in by["[::]:7070"].advice
    # A gmp listener's own backlog (1) is known: 2 waiting means full.
    known = [{"kind": "listener", "addr": "127.0.0.1:9090", "backlog": 1, "effective_backlog": 1}]
    by = {f.subject: f for f in find(fake, "sockets.listen_queue", listeners=known)}
    assert by["127.0.0.1:9090"].severity == "error" and by["127.0.0.1:9090"].value == "2/1"


# --- gmp's own listeners ----------------------------------------------------

def test_gmp_listener_backlog_clipped_by_somaxconn(fake):
    ok = [{"kind": "listener", "addr": "0.0.0.0:8080", "backlog": 1024, "effective_backlog": 1024}]
    assert one(fake, "gmp.listen_backlog", listeners=ok).severity == "ok"
    fake.sysctl("core/somaxconn", "128")
    clipped = [{"kind": "listener", "addr": "0.0.0.0:8080", "backlog": 1024, "effective_backlog": 128}]
    f = one(fake, "gmp.listen_backlog", listeners=clipped)
    assert f.severity == "warn" and f.subject == "0.0.0.0:8080"
    assert f.advice.startswith("somaxconn 128 clips your listen backlog of 1024: bursts of new connections")
    assert f.fix == "sysctl -w net.core.somaxconn=1024"


def test_gmp_listener_fast_open_needs_the_server_bit(fake):
    tfo = [{"kind": "listener", "addr": "0.0.0.0:8080", "backlog": None, "fast_open": 16,
            "effective_backlog": 4096}]
    assert [f.id for f in find(fake, "gmp.listen_backlog", listeners=tfo)] == ["gmp.listen_backlog"]
    fake.sysctl("ipv4/tcp_fastopen", "1")
    f = one(fake, "gmp.fast_open", listeners=tfo)
    assert f.severity == "warn" and "fast_open=16" in f.advice and f.fix == "sysctl -w net.ipv4.tcp_fastopen=3"


# --- the process --------------------------------------------------------------

@pytest.mark.parametrize("n,severity", [(100, "ok"), (750, "warn"), (950, "error")])
def test_fds_against_rlimit_nofile(fake, n, severity):
    fake.limits(1000, 4096)
    fake.set_fds(socket=n - 4, pipe=2, epoll=1, eventfd=1)
    f = one(fake, "process.fds", pid=PID)
    assert f.severity == severity
    assert f.value == f"{n}/1000 (socket {n - 4}, pipe 2, epoll 1, eventfd 1)"
    if severity != "ok":
        assert "EMFILE" in f.advice and f.fix.startswith(f"prlimit --pid {PID} --nofile=4096:4096")


def test_low_soft_nofile_limit_for_a_server(fake):
    assert one(fake, "process.nofile_limit", "server", pid=PID).severity == "ok"
    fake.limits(1024, 524288)
    f = one(fake, "process.nofile_limit", "server", pid=PID)
    assert f.severity == "warn" and f.value == 1024 and "--nofile=524288:524288" in f.fix
    _, client = findings(fake, "client", pid=PID)
    assert "process.nofile_limit" not in {f.id for f in client}


@pytest.mark.parametrize("grow,severity", [(0, "ok"), (3, "info"), (20, "warn")])
def test_fd_growth_between_samples(fake, monkeypatch, grow, severity):
    monkeypatch.setattr(doctor.time, "sleep", lambda s: fake.set_fds(socket=3 + grow, file=2, pipe=2,
                                                                     epoll=1, eventfd=1))
    f = one(fake, "process.fd_growth", pid=PID, interval=5)
    assert f.severity == severity
    if grow:
        assert f.value == f"+{grow} (socket +{grow})"
    _, once = findings(fake, pid=PID)
    assert "process.fd_growth" not in {f.id for f in once}       # needs two samples


def test_missing_files_are_unavailable_not_a_crash(tmp_path):
    report, fs = findings(FakeProcEmpty(tmp_path), pid=PID, interval=None)
    assert fs and all(f.severity == "info" and f.value is None for f in fs)
    assert all(f.advice.startswith("unavailable: ") for f in fs)
    assert report.exit_status == 0


class FakeProcEmpty:
    def __init__(self, root):
        self.root = root


def test_one_missing_sysctl(fake):
    fake.remove("sys/net/ipv4/tcp_keepalive_intvl")
    f = one(fake, "kernel.tcp_keepalive")
    assert f.value is None and "tcp_keepalive_intvl" in f.advice


def test_bad_arguments_are_clear_errors(fake):
    with pytest.raises(ValueError, match="role must be one of"):
        doctor.check("proxy", root=str(fake.root))
    with pytest.raises(ValueError, match="interval must be a positive"):
        doctor.check(interval=0, root=str(fake.root))
    with pytest.raises(ValueError, match="pid must be"):
        doctor.check(pid="init", root=str(fake.root))


# --- the command --------------------------------------------------------------

def test_cli_exit_status_and_json(fake, capsys):
    assert cli.main(["doctor", "--root", str(fake.root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == 1 and out["exit_status"] == 0 and out["summary"]["error"] == 0
    assert set(out["findings"][0]) == {"id", "area", "severity", "value", "advice", "fix", "subject"}
    fake.add_sock(("0.0.0.0", 8080), ("0.0.0.0", 0), "LISTEN", rx=5000)
    assert cli.main(["doctor", "--root", str(fake.root), "--json", "--role", "server"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["exit_status"] == 1 and out["summary"]["error"] == 1


def test_cli_human_table_groups_by_area(fake, capsys, monkeypatch):
    monkeypatch.setenv("GMP_PROC_ROOT", str(fake.root))
    fake.sysctl("core/somaxconn", "128")
    assert cli.main(["doctor", "--pid", str(PID)]) == 0
    out = capsys.readouterr().out
    areas = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert areas[1:] == ["kernel", "counters", "sockets", "process", areas[-1]]
    assert "WARN   kernel.somaxconn" in out and "fix: sysctl -w net.core.somaxconn=4096" in out
    assert cli.main(["doctor", "--pid", "init"]) == 2


def test_real_machine_does_not_crash():
    """The real /proc of this machine (a container may lack files)."""
    p = subprocess.run([sys.executable, "-m", "gmp", "doctor", "--json", "--pid", "self", "--interval", "0.2"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode in (0, 1), p.stderr
    out = json.loads(p.stdout)
    ids = {f["id"] for f in out["findings"]}
    assert {"kernel.somaxconn", "counters.listen_overflows", "sockets.states", "process.fds"} <= ids
    assert all(f["severity"] in ("ok", "info", "warn", "error") for f in out["findings"])
    p = subprocess.run([sys.executable, "-m", "gmp", "doctor"], capture_output=True, text=True, timeout=60,
                       check=False)
    assert p.returncode in (0, 1) and "gmp doctor: role both" in p.stdout, p.stderr

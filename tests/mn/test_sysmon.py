"""sysmon: GMPDEBUG parsing, Go's schedtrace lines, long-running G reports,
and the forced wake-up of an idle M when a P stops making progress."""
import hashlib
import re
import threading
import time

import pytest

import gmp
from gmp import settings, sysmon
from gmp._ext import _core

# Go's runtime/proc.go schedtrace (non-detailed), as DESIGN.md prints it.
SCHED_RE = re.compile(
    r"^SCHED (\d+)ms: gomaxprocs=(\d+) idleprocs=(\d+) threads=(\d+) "
    r"spinningthreads=(\d+) idlethreads=(\d+) runqueue=(\d+) \[ ((?:\d+ )*)\]$")


def test_parse_gmpdebug_like_godebug():
    assert settings.parse_gmpdebug("schedtrace=1000,scheddetail=1") == {
        "schedtrace": 1000, "scheddetail": True}
    assert settings.parse_gmpdebug("gctrace=1, schedtrace=5 ,schedtrace=7") == {"schedtrace": 7}
    assert settings.parse_gmpdebug("") == {}
    with pytest.raises(ValueError, match="schedtrace"):
        settings.parse_gmpdebug("schedtrace=fast")


def test_config_from_env_off():
    assert sysmon.Config.from_env("sysmon=0") is None
    c = sysmon.Config.from_env("schedtrace=250,sysmonlong=50")
    assert c.trace_ns == 250_000_000 and c.long_ns == 50_000_000


def test_schedtrace_lines_match_go_format():
    lines = []
    cfg = sysmon.Config(schedtrace_ms=5, on_trace=lines.append)

    def main():
        t_end = time.perf_counter() + 10
        while len(lines) < 3 and time.perf_counter() < t_end:
            hashlib.sha256(b"x" * (1 << 20)).digest()   # GIL-free: sysmon gets in
            gmp.gosched()

    gmp.run(main, procs=2, sysmon=cfg)
    assert len(lines) >= 3
    for line in lines:
        m = SCHED_RE.match(line)
        assert m, line
        assert m.group(2) == "2" and m.group(4) == "3"
        assert len(m.group(8).split()) == 2


def test_scheddetail_adds_p_m_and_g_lines():
    traces = []
    cfg = sysmon.Config(schedtrace_ms=5, detail=True, on_trace=traces.append)

    def main():
        c = gmp.Chan()
        parked = gmp.go(c.recv)
        t_end = time.perf_counter() + 10
        while not traces and time.perf_counter() < t_end:
            hashlib.sha256(b"x" * (1 << 20)).digest()   # GIL-free: sysmon gets in
            gmp.gosched()
        c.send(1)
        return parked.id

    parked_id = gmp.run(main, procs=2, sysmon=cfg)
    assert traces
    lines = traces[0].split("\n")
    assert lines[0].startswith("SCHED ") and "[" not in lines[0]
    assert [ln.split(":")[0] for ln in lines[1:5]] == ["  P0", "  P1", "  M0", "  M1"]
    assert re.search(r"^  P0: status=[01] schedtick=\d+ m=0 runqsize=\d+", lines[1])
    # The parked G may have been stolen by M1 before it first ran.
    assert any(re.fullmatch(rf"  G{parked_id}: status=4\(chan receive\) m=[01]", ln) for ln in lines)
    assert "  G1: status=2() m=0" in lines


def test_long_running_g_reported_once_with_stack():
    reports = []
    got = threading.Event()

    def on_long(g, mid, ms, stack):
        reports.append((g.id, mid, ms, stack))
        got.set()

    cfg = sysmon.Config(long_ms=20, on_long=on_long)

    def hog():
        t_end = time.perf_counter() + 10
        while not got.is_set() and time.perf_counter() < t_end:
            sum(range(1000))
        # keep running past three thresholds: still one report
        t_end = time.perf_counter() + 0.08
        while time.perf_counter() < t_end:
            sum(range(1000))
        return gmp.current().id

    def main():
        return gmp.go(hog).result(timeout=30)

    gid = gmp.run(main, procs=2, sysmon=cfg)
    mine = [r for r in reports if r[0] == gid]
    assert len(mine) == 1, reports
    assert mine[0][2] >= 20
    assert "in hog" in mine[0][3]


def test_stuck_p_fresh_gs_are_taken_by_another_m():
    """M0 blocks in a call gmp cannot see; the fresh Gs queued on its P run on
    the other M while it is blocked."""
    def main():
        m0 = threading.get_ident()
        ran = []

        def quick():
            ran.append((threading.get_ident(), time.perf_counter()))
        for _ in range(8):
            gmp.go(quick)
        t0 = time.perf_counter()
        time.sleep(0.3)                # the blocking call (the workload, not a settle)
        t1 = time.perf_counter()
        return m0, ran, t0, t1, _core.stats()

    m0, ran, _t0, t1, st = gmp.run(main, procs=2)
    assert len(ran) == 8
    assert all(tid != m0 and t < t1 for tid, t in ran), (ran, st)


def test_sysmon_forces_wake_when_helpers_are_not_woken():
    """With a policy that never wakes helper Ms on spawn, only sysmon's
    stuck-P check can get the fresh Gs off a P whose M is blocked."""
    from gmp.policy import Policy
    pol = Policy("nowake", wake_helpers=False)

    def main():
        m0 = threading.get_ident()
        ran = []
        for _ in range(8):
            gmp.go(lambda: ran.append(threading.get_ident()))
        time.sleep(0.2)                # blocks M0 (the workload)
        return m0, list(ran), _core.stats()

    m0, ran, st = gmp.run(main, procs=2, policy=pol)
    assert len(ran) == 8 and m0 not in ran
    assert sum(p["forced_wakes"] for p in st["ps"]) >= 1


def test_no_sysmon_no_forced_wakes():
    from gmp.policy import Policy
    pol = Policy("nowake2", wake_helpers=False)

    def main():
        ran = []
        for _ in range(4):
            gmp.go(lambda: ran.append(threading.get_ident()))
        time.sleep(0.05)
        return _core.stats()

    st = gmp.run(main, procs=2, policy=pol, sysmon=False)
    assert sum(p["forced_wakes"] for p in st["ps"]) == 0

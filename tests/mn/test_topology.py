"""CPU topology from sysfs (real and simulated), pin modes, NUMA placement
and steal order, and rejection of impossible pin requests."""
import os
import threading
import time

import pytest

import gmp
from gmp import topology
from gmp._ext import _core


def fake_sysfs(root, nodes):
    """nodes: list of cpulists, one per node."""
    cpu = root / "devices/system/cpu"
    cpu.mkdir(parents=True)
    allc = [c for cs in nodes for c in topology.parse_cpulist(cs)]
    (cpu / "online").write_text(f"{min(allc)}-{max(allc)}\n")
    for i, cs in enumerate(nodes):
        d = root / f"devices/system/node/node{i}"
        d.mkdir(parents=True)
        (d / "cpulist").write_text(cs + "\n")
    return str(root)


@pytest.fixture
def two_by_four(tmp_path, monkeypatch):
    root = fake_sysfs(tmp_path, ["0-3", "4-7"])
    monkeypatch.setenv("GMP_SYSFS_ROOT", root)
    return topology.read_topology()


def test_parse_cpulist():
    assert topology.parse_cpulist("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert topology.parse_cpulist("") == []
    with pytest.raises(ValueError):
        topology.parse_cpulist("3-1")
    with pytest.raises(ValueError):
        topology.parse_cpulist("a")


def test_simulated_topology(two_by_four):
    assert two_by_four.online == tuple(range(8))
    assert two_by_four.nodes == {0: (0, 1, 2, 3), 1: (4, 5, 6, 7)}
    assert two_by_four.node_of(5) == 1


def test_compact_and_scatter_on_simulated_topology(two_by_four):
    allowed = set(range(8))
    compact = topology.plan(4, "compact", two_by_four, allowed)
    assert [p.cpus for p in compact] == [(0,), (1,), (2,), (3,)]
    assert [p.node for p in compact] == [0, 0, 0, 0]
    scatter = topology.plan(4, "scatter", two_by_four, allowed)
    assert [p.cpus for p in scatter] == [(0,), (4,), (1,), (5,)]
    assert [p.node for p in scatter] == [0, 1, 0, 1]
    explicit = topology.plan(2, "3,6", two_by_four, allowed)
    assert [(p.cpus, p.node) for p in explicit] == [((3,), 0), ((6,), 1)]


def test_bad_pin_specs_rejected(two_by_four):
    allowed = {0, 1, 2, 3}
    with pytest.raises(ValueError, match="do not exist"):
        topology.plan(1, "9", two_by_four, allowed)
    with pytest.raises(ValueError, match="not in this process's allowed set"):
        topology.plan(1, "5", two_by_four, allowed)
    with pytest.raises(ValueError, match="need 5 CPUs"):
        topology.plan(5, "compact", two_by_four, allowed)
    with pytest.raises(ValueError, match="need 2 CPUs"):
        topology.plan(2, [1], two_by_four, allowed)
    with pytest.raises(ValueError, match="pin must be"):
        topology.plan(1, "sideways", two_by_four, allowed)


def test_impossible_pin_is_error_at_startup():
    ncpu = len(os.sched_getaffinity(0))
    with pytest.raises(ValueError, match="CPU"):
        gmp.run(lambda: None, procs=ncpu + 1, pin="compact")
    with pytest.raises(ValueError, match="CPU"):
        gmp.run(lambda: None, procs=1, pin=[4096])


def test_numa_steal_order_on_simulated_topology(two_by_four):
    plan = topology.plan(4, "scatter", two_by_four, set(range(8)))
    # This machine may lack CPUs 4-7: keep the nodes, drop the pinning.
    unpinned = [topology.Placement(None, p.node) for p in plan]

    def main():
        st = _core.stats()
        orders = {pid: [_core._steal_order(pid) for _ in range(20)] for pid in range(4)}
        return st, orders

    st, orders = gmp.run(main, procs=4, pin=unpinned)
    nodes = [p["node"] for p in st["ps"]]
    assert nodes == [0, 1, 0, 1]
    for pid, runs in orders.items():
        for order in runs:
            assert sorted(order) == sorted(set(range(4)) - {pid})
            assert nodes[order[0]] == nodes[pid]      # same node first
            assert all(nodes[v] != nodes[pid] for v in order[1:])


def _cpus_allowed_list(tid):
    with open(f"/proc/self/task/{tid}/status") as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return topology.parse_cpulist(line.split(":", 1)[1])
    raise AssertionError("no Cpus_allowed_list")


def _ms_started():
    """The Ms' (native tid, cpus) once every M thread has pinned itself (an M
    publishes its tid after pinning); polls with gosched, no sleeping."""
    deadline = time.monotonic() + 30
    while True:
        ps = _core.stats()["ps"]
        if all(p["m_tid"] for p in ps) or time.monotonic() > deadline:
            return [(p["m_tid"], p["m_cpus"]) for p in ps]
        gmp.gosched()


@pytest.mark.parametrize("mode", ["compact", "scatter", "explicit"])
def test_pinning_visible_in_proc(mode):
    allowed = sorted(os.sched_getaffinity(0))
    procs = min(2, len(allowed))
    pin = ",".join(str(c) for c in reversed(allowed[:procs])) if mode == "explicit" else mode
    before = os.sched_getaffinity(0)

    def main():
        ms = _ms_started()
        return [(tid, cpus, _cpus_allowed_list(tid)) for tid, cpus in ms], threading.get_native_id()

    ms, main_tid = gmp.run(main, procs=procs, pin=pin)
    assert ms[0][0] == main_tid
    want = topology.plan(procs, pin)
    for (tid, cpus, seen), pl in zip(ms, want):
        assert tuple(cpus) == pl.cpus
        assert seen == list(pl.cpus)
    assert os.sched_getaffinity(0) == before      # M0 restored


def test_unpinned_by_default():
    before = sorted(os.sched_getaffinity(0))

    def main():
        return [_cpus_allowed_list(tid) for tid, _ in _ms_started()]

    assert all(c == before for c in gmp.run(main, procs=2))


def test_gmppin_env(monkeypatch):
    first = min(os.sched_getaffinity(0))
    monkeypatch.setenv("GMPPIN", str(first))
    got = gmp.run(lambda: _core.stats()["ps"][0]["m_cpus"], procs=1)
    assert tuple(got) == (first,)
    monkeypatch.setenv("GMPPIN", "everywhere")
    with pytest.raises(ValueError, match="pin must be"):
        gmp.run(lambda: None, procs=1)

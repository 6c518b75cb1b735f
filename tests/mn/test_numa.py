"""The global run queue split by NUMA node, on a simulated 2-node x 2-CPU
machine (4 Ps pinned compact: P0, P1 on node 0, P2, P3 on node 1; this
machine may lack CPUs 2-3, so the nodes are kept and the pinning dropped).

The ordering tests are deterministic: every other M is asleep (wake_helpers
off, no sysmon, GIL learning off), the Ms that spawned block their threads on
a threading.Event, and exactly one P -- the puller -- is kicked once both
node queues are full.  Its run order is then the order of its global pulls.
"""
import dataclasses
import threading

import pytest
from helpers import wait_until
from test_topology import fake_sysfs

import gmp
from gmp import policy as gpolicy
from gmp import topology
from gmp._ext import _core

N0 = N1 = 200

# Every fresh G goes straight to its spawner's node queue, one G per pull,
# nobody steals: where a G runs and in which order is decided by the pulls.
PULLS = gpolicy.Policy("numa-pulls", placement="global", global_batch=1, steal=False,
                       wake_helpers=False, gil_learning=False)


@pytest.fixture
def compact4(tmp_path, monkeypatch):
    monkeypatch.setenv("GMP_SYSFS_ROOT", fake_sysfs(tmp_path, ["0-1", "2-3"]))
    plan = topology.plan(4, "compact", topology.read_topology(), set(range(4)))
    assert [p.node for p in plan] == [0, 0, 1, 1]
    return [topology.Placement(None, p.node) for p in plan]


def others_asleep():
    wait_until(lambda: _core.stats()["idle"] == 3, "the other three Ms asleep")


def alone_on(placements, pol, pid, body):
    """body() in a G on P pid, the other Ms asleep and P0's thread held;
    returns what body returned."""
    out = []
    done = threading.Event()

    def g():
        try:
            out.append(body())
        finally:
            done.set()

    def main():
        others_asleep()
        _core.go_on(pid, g)
        assert done.wait(60)

    gmp.run(main, procs=4, policy=pol, pin=placements, sysmon=False)
    return out[0]


def one_puller(placements, pol, puller):
    """N0 Gs spawned on P0 (node 0), N1 on P3 (node 1), then only P `puller`
    runs.  Returns the (origin node, P) of each G in run order, the global
    queue lengths after each spawn burst, and the final stats."""
    ran, snaps = [], []
    done = threading.Event()

    def work(origin):
        ran.append((origin, gmp.current().home_p))
        if len(ran) == N0 + N1:
            done.set()

    def spawner1():
        for _ in range(N1):
            gmp.go(work, 1)
        snaps.append(_core.stats()["globalqs"])
        _core.go_on(puller, lambda: None)
        done.wait(60)            # hold P3's thread: only the puller runs

    def main():
        others_asleep()
        for _ in range(N0):
            gmp.go(work, 0)
        snaps.append(_core.stats()["globalqs"])
        _core.go_on(3, spawner1)
        assert done.wait(60)     # hold P0's thread likewise
        return _core.stats()

    st = gmp.run(main, procs=4, policy=pol, pin=placements, sysmon=False)
    return ran, snaps, st


@pytest.mark.parametrize("puller", [1, 2])
def test_own_nodes_queue_first_remote_only_once_empty(compact4, puller):
    ran, snaps, st = one_puller(compact4, PULLS, puller)
    assert snaps == [[N0, 0], [N0, N1]]        # each G on its spawner's node
    own = compact4[puller].node
    assert {p for _, p in ran} == {puller}
    origins = [o for o, _ in ran]
    # Every local G before the first remote one: remote pulls only once the
    # own node's queue was empty.
    n_own = N0 if own == 0 else N1
    assert origins == [own] * n_own + [1 - own] * (N0 + N1 - n_own)
    ps = st["ps"]
    assert ps[puller]["global_pulls"] == N0 + N1
    assert ps[puller]["global_pulls_remote"] == N0 + N1 - n_own
    assert [p["globalq_index"] for p in ps] == [0, 0, 1, 1]
    assert sum(p["global_pulls"] for p in ps) == N0 + N1
    assert st["globalq"] == 0 and st["globalqs"] == [0, 0]


@pytest.mark.parametrize("puller", [1, 2])
def test_without_numa_first_one_pool_in_node_order(compact4, puller):
    pol = dataclasses.replace(PULLS, name="numa-pulls-flat", numa_first=False)
    ran, snaps, st = one_puller(compact4, pol, puller)
    assert snaps == [[N0, 0], [N0, N1]]
    assert [o for o, _ in ran] == [0] * N0 + [1] * N1    # node 0's queue first, whoever pulls
    ps = st["ps"]
    assert ps[puller]["global_pulls"] == N0 + N1
    assert ps[puller]["global_pulls_remote"] == (N1 if compact4[puller].node == 0 else N0)


def test_global_policy_keeps_one_fifo(compact4):
    pol = dataclasses.replace(gpolicy.GLOBAL, name="global-quiet", wake_helpers=False,
                              gil_learning=False)
    ran, snaps, st = one_puller(compact4, pol, 2)
    assert snaps == [[N0], [N0 + N1]]
    assert [o for o, _ in ran] == [0] * N0 + [1] * N1    # FIFO across nodes
    assert [p["globalq_index"] for p in st["ps"]] == [0, 0, 0, 0]
    assert st["ps"][2]["global_pulls"] == N0 + N1
    assert st["ps"][2]["global_pulls_remote"] == 0


def test_runq_overflow_lands_on_spawners_node(compact4):
    """Default placement (runnext, runq): what overflows a node-1 P's runq
    goes to node 1's queue and is pulled there."""
    pol = dataclasses.replace(gpolicy.GO, name="go-quiet", wake_helpers=False,
                              gil_learning=False)
    n = 1000

    def spawner():
        wg = gmp.WaitGroup()
        wg.add(n)
        for _ in range(n):
            gmp.go(wg.done)
        st = _core.stats()
        qs, runq = st["globalqs"], st["ps"][2]["runq"]
        wg.wait()
        return qs, runq, _core.stats()["ps"]

    qs, runq, ps = alone_on(compact4, pol, 2, spawner)
    assert qs[0] == 0 and qs[1] > 0
    assert qs[1] + runq + 1 == n            # + the one in runnext
    assert ps[2]["global_pulls"] == qs[1]
    assert ps[2]["global_pulls_remote"] == 0


def test_deadlock_detection_sees_every_nodes_queue(compact4):
    k = 50

    def checker():               # on P3, node 1
        seen = []
        wg = gmp.WaitGroup()
        wg.add(k)
        for _ in range(k):
            gmp.go(wg.done)
        seen.append((_core.stats()["globalqs"], _core._no_work_anywhere()))
        wg.wait()
        seen.append((_core.stats()["globalqs"], _core._no_work_anywhere()))
        return seen

    assert alone_on(compact4, PULLS, 3, checker) == [([0, k], False), ([0, 0], True)]


def test_real_deadlock_still_detected_on_two_nodes(compact4):
    def main():
        ch = gmp.Chan()
        for _ in range(300):          # overflows P0's runq into node 0's queue
            gmp.go(ch.recv)
        gmp.Chan().recv()

    with pytest.raises(gmp.Deadlock, match="all Gs are asleep"):
        gmp.run(main, procs=4, pin=compact4)


def test_hundred_thousand_gs_run_exactly_once(compact4):
    n, per = 100_000, 25_000
    hits = bytearray(n)
    wg = gmp.WaitGroup()

    def work(i):
        hits[i] += 1
        wg.done()

    def spawner(pid):
        for i in range(pid * per, (pid + 1) * per):
            gmp.go(work, i)

    def main():
        wg.add(n)
        for pid in range(4):
            _core.go_on(pid, spawner, pid)
        wg.wait()
        return _core.stats()

    st = gmp.run(main, procs=4, pin=compact4)
    assert hits == bytearray([1]) * n
    assert st["globalq"] == 0 and st["globalqs"] == [0, 0]
    ps = st["ps"]
    assert all(p["global_pulls_remote"] <= p["global_pulls"] for p in ps)
    assert sum(p["spawns"] for p in ps) >= n


def test_one_node_one_queue():
    st = gmp.run(_core.stats, procs=2)
    assert st["globalqs"] == [0]
    assert all(p["globalq_index"] == 0 and p["global_pulls_remote"] == 0 for p in st["ps"])

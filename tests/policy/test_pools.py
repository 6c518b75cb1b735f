"""Pooled admission (gmp.pool via gmp.policy.submit): tars and sofa
semantics at procs 1, 2 and 4: capacity, overload mark, rejection, queue
timeout, elastic growth and retirement, block/spawn/reject at max, per-key
order across Ms, a failing task's error, bad configuration."""
import threading
import time

import pytest

import gmp
from gmp import policy as gpolicy
from gmp.pool import Sofa, Tars


def pol(admission):
    return gpolicy.Policy("test-pool", steal=False, admission=admission)


def wait_until(predicate, timeout=10.0):
    """Parks in 1 ms steps until predicate() holds (for keep-alive timers,
    which only time can trigger); fails after `timeout`."""
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition never became true"
        gmp.sleep(0.001)


def occupy(n=1):
    """Submits n tasks that hold their worker until gate is set; returns
    (gate, tasks) once every one of them is running."""
    gate = gmp.Event()
    running = gmp.WaitGroup()
    running.add(n)

    def hold():
        running.done()
        gate.wait()
        return "held"
    tasks = [gpolicy.submit(hold) for _ in range(n)]
    assert running.wait(timeout=10)
    return gate, tasks


def test_tars_capacity_overload_mark_and_reject(grun):
    crossings = []

    def main():
        gate, (first,) = occupy()
        queued = [gpolicy.submit(lambda i=i: i) for i in range(10)]
        pool = gpolicy.current()
        assert pool.overloaded and crossings == [pool]
        with pytest.raises(gmp.Rejected, match="queue full"):
            gpolicy.submit(lambda: None)
        st = pool.stats()
        assert (st["queued"], st["rejected"]) == (10, 1)
        assert st["overloaded"] == 3            # submits that saw 8, 9 and 10 queued
        gate.set()
        assert [t.result(timeout=10) for t in queued] == list(range(10))
        assert first.result(timeout=10) == "held"
        gpolicy.submit(lambda: None).result(timeout=10)
        assert not pool.overloaded and len(crossings) == 1
        return pool.stats()
    st = grun(main, policy=pol(Tars(workers=1, capacity=10, on_overload=crossings.append)))
    assert (st["completed"], st["rejected"], st["submitted"]) == (12, 1, 13)


def test_tars_expired_task_never_runs(grun):
    ran = []

    def main():
        gate, _ = occupy()
        ctx, _cancel = gmp.with_timeout(gmp.background(), 30)
        expired = gpolicy.submit(ran.append, "expired", deadline=time.monotonic() - 0.001)
        alive = gpolicy.submit(ran.append, "alive", deadline=ctx)
        gate.set()
        with pytest.raises(gmp.QueueTimeout):
            expired.result(timeout=10)
        assert isinstance(expired.exception, TimeoutError)
        alive.result(timeout=10)
        return gpolicy.current().stats()
    st = grun(main, policy=pol(Tars(workers=1)))
    assert ran == ["alive"]
    assert st["queue_timeouts"] == 1


def test_failing_task_reaches_submitter_and_worker_survives(grun):
    def boom():
        raise ValueError("boom")

    def main():
        t = gpolicy.submit(boom)
        with pytest.raises(ValueError, match="boom"):
            t.result(timeout=10)
        assert gpolicy.submit(lambda: 7).result(timeout=10) == 7
        return gpolicy.current().stats()
    for adm in (Tars(workers=1), Sofa(core=1, max=1), Sofa(shards=1)):
        st = grun(main, policy=pol(adm))
        assert (st["errors"], st["completed"], st["workers"]) == (1, 1, 1)


def test_sofa_elastic_growth_and_retirement(grun):
    def main():
        pool = gpolicy.current()
        gate, tasks = occupy(3)
        st = pool.stats()
        assert (st["workers"], st["peak_workers"]) == (3, 3)
        with pytest.raises(gmp.Rejected, match="all 3 workers busy"):
            gpolicy.submit(lambda: None)
        gate.set()
        assert [t.result(timeout=10) for t in tasks] == ["held"] * 3
        wait_until(lambda: pool.stats()["workers"] == 1)
        st = pool.stats()
        assert (st["retired"], st["rejected"]) == (2, 1)
        # the core worker stays and keeps serving, by hand-off
        assert gpolicy.submit(lambda: 5).result(timeout=10) == 5
        assert pool.stats()["started"] == 3
    grun(main, policy=pol(Sofa(core=1, max=3, keepalive=0.02, mode="reject")))


def test_sofa_block_at_max_waits_for_an_idle_worker(grun):
    def main():
        pool = gpolicy.current()
        gate, (first,) = occupy()
        submitted = gmp.Event()
        out = []

        def submitter():
            t = gpolicy.submit(lambda: "second")
            submitted.set()
            out.append(t.result(timeout=10))
        g = gmp.go(submitter)
        assert not submitted.wait(timeout=0.05)     # blocked in submit: no idle worker
        with pytest.raises(gmp.QueueTimeout):
            gpolicy.submit(lambda: None, deadline=time.monotonic() + 0.01)
        gate.set()
        g.result(timeout=10)
        assert out == ["second"] and first.result(timeout=10) == "held"
        st = pool.stats()
        assert (st["peak_workers"], st["queue_timeouts"], st["unpooled"]) == (1, 1, 0)
    grun(main, policy=pol(Sofa(core=1, max=1, mode="block")))


def test_sofa_spawn_at_max_runs_unpooled(grun):
    def main():
        pool = gpolicy.current()
        gate, _ = occupy()
        # runs although the only worker is held
        assert gpolicy.submit(lambda: "extra").result(timeout=10) == "extra"
        gate.set()
        st = pool.stats()
        assert (st["unpooled"], st["peak_workers"]) == (1, 1)
    grun(main, policy=pol(Sofa(core=1, max=1, mode="spawn")))


def test_sofa_sharded_full_shard_rejects(grun):
    def main():
        gate, _ = occupy()                        # keyless: shard 0 of 1
        t = gpolicy.submit(lambda: 1, key="k")
        with pytest.raises(gmp.Rejected, match="shard full"):
            gpolicy.submit(lambda: 2, key="k")
        gate.set()
        assert t.result(timeout=10) == 1
    grun(main, policy=pol(Sofa(shards=1, capacity=1)))


N_KEYED = 100_000
N_KEYS = 64


@pytest.mark.parametrize("admission", [Tars(keyed=True, workers=8, capacity=N_KEYED),
                                       Sofa(shards=8, capacity=N_KEYED)],
                         ids=["tars-keyed", "sofa-sharded"])
def test_per_key_order_across_ms(grun, procs, admission):
    seen = {k: [] for k in range(N_KEYS)}
    threads = set()

    def record(k, i):
        seen[k].append(i)
        threads.add(threading.get_ident())

    def main():
        tasks = [gpolicy.submit(record, i % N_KEYS, i, key=i % N_KEYS) for i in range(N_KEYED)]
        for t in tasks:
            t.result(timeout=60)
    grun(main, policy=pol(admission))
    for k, order in seen.items():
        assert order == list(range(k, N_KEYED, N_KEYS)), f"key {k} out of order"
    assert len(threads) == procs            # workers are spread over every M


def test_submit_needs_a_runtime_and_a_callable():
    with pytest.raises(gmp.NoRuntime):
        gpolicy.submit(print)
    with pytest.raises(TypeError, match="callable"):
        gmp.run(lambda: gpolicy.submit(3), procs=1)
    with pytest.raises(TypeError, match="deadline"):
        gmp.run(lambda: gpolicy.submit(print, deadline="soon"), procs=1)


def test_go_policy_submit_is_a_g_per_task(grun):
    def main():
        t = gpolicy.submit(lambda: 3, key=1, deadline=time.monotonic() - 1)
        assert isinstance(t, gmp.G)
        return t.result(timeout=10)
    assert grun(main, policy="go") == 3


@pytest.mark.parametrize("make, knob", [
    (lambda: Tars(workers=0), "workers"),
    (lambda: Tars(capacity=0), "capacity"),
    (lambda: Tars(overload=1.5), "overload"),
    (lambda: Sofa(core=0), "core"),
    (lambda: Sofa(core=5, max=2), r"core \(5\) must be <= max \(2\)"),
    (lambda: Sofa(max=0), "max"),
    (lambda: Sofa(mode="drop"), "mode must be one of block, spawn, reject"),
    (lambda: Sofa(keepalive=0), "keepalive"),
    (lambda: Sofa(shards=2, capacity=0), "capacity"),
])
def test_bad_configuration_names_the_knob(make, knob):
    with pytest.raises(ValueError, match=knob):
        make()


def test_builtin_pooled_policies_do_not_steal():
    for name in ("tars", "sofa"):
        p = gpolicy.get(name)
        assert not p.steal
        assert gmp.run(lambda: gpolicy.submit(lambda: 1).result(timeout=10), procs=2, policy=name) == 1

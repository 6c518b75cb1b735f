"""Gs: gmp.run, go, join, result, exception, current, sleep, gosched, and the
end of the main G."""
import random
import sys
import time

import pytest
from helpers import SLACK, Stopwatch, assert_took, home_checker, wait_until

import gmp


def test_run_returns_main_result_and_passes_arguments(grun):
    def main(a, b, *, c):
        return (a, b, c, gmp.current() is not None)

    assert grun(main, 1, 2, c=3) == (1, 2, 3, True)


def test_run_reraises_main_exception(grun):
    err = KeyError("from main")

    def main():
        raise err

    with pytest.raises(KeyError) as info:
        grun(main)
    assert info.value is err


def test_run_can_be_called_again_after_it_returns(grun):
    for i in range(5):
        assert grun(lambda i=i: i * i) == i * i


def test_current_is_none_outside_a_runtime():
    assert gmp.current() is None


def test_current_identifies_every_g(grun):
    def main():
        me = gmp.current()
        gs = [gmp.go(gmp.current) for _ in range(20)]
        seen = [g.result() for g in gs]
        assert [s.id for s in seen] == [g.id for g in gs]
        assert len({g.id for g in gs} | {me.id}) == 21, "G ids are not unique"
        assert gmp.current().id == me.id
        assert all(isinstance(g.name, str) and g.name for g in gs)

    grun(main)


def test_go_passes_args_and_kwargs(grun):
    def main():
        g = gmp.go(lambda a, b=0, *, c: (a, b, c), 1, b=2, c=3)
        return g.result()

    assert grun(main) == (1, 2, 3)


def test_join_result_and_exception_of_a_successful_g(grun):
    def main():
        g = gmp.go(lambda x: x * 2, 21)
        assert g.join() is True
        assert g.dead
        assert "dead" in str(g.state).lower()
        assert g.result() == 42
        assert g.exception is None

    grun(main)


def test_join_never_raises_and_result_reraises_the_g_error(grun):
    err = ValueError("expected failure of a G")

    def fail():
        raise err

    def main():
        g = gmp.go(fail)
        assert g.join() is True
        assert g.exception is err
        for _ in range(2):  # result() keeps raising the same error
            with pytest.raises(ValueError) as info:
                g.result()
            assert info.value is err

    grun(main)


def test_join_with_timeout_returns_false_while_the_g_runs(grun):
    def main():
        gate = gmp.Chan()
        g = gmp.go(gate.recv)
        with Stopwatch() as sw:
            assert g.join(timeout=0.02) is False
        assert_took(sw, 0.02)
        assert not g.dead
        gate.send("opened")
        assert g.join(timeout=SLACK) is True
        assert g.result() == "opened"

    grun(main)


def test_result_with_timeout_raises_timeout_error_while_the_g_runs(grun):
    # The spec leaves result(timeout) expiry implicit; like
    # concurrent.futures.Future.result, it raises a (builtin) TimeoutError.
    def main():
        gate = gmp.Chan()
        g = gmp.go(gate.recv)
        with pytest.raises(TimeoutError):
            g.result(timeout=0.02)
        gate.send("later")
        assert g.result() == "later"

    grun(main)


def test_many_joiners_on_several_ms_all_wake(grun):
    def main():
        gate = gmp.Chan()
        target = gmp.go(gate.recv)
        joiners = [gmp.go(lambda: (target.join(), target.result())) for _ in range(16)]
        gate.send("v")
        assert [j.result() for j in joiners] == [(True, "v")] * 16

    grun(main)


def test_sleep_lasts_at_least_its_duration(grun):
    def main():
        with Stopwatch() as sw:
            gmp.sleep(0.03)
        assert_took(sw, 0.03)

    grun(main)


def test_sleepers_wake_in_deadline_order(grun):
    def main():
        order = gmp.Chan(3)
        for d in (0.045, 0.005, 0.025):
            gmp.go(lambda d=d: (gmp.sleep(d), order.send(d)))
        return [order.recv() for _ in range(3)]

    assert grun(main) == [0.005, 0.025, 0.045]


def test_concurrent_sleeps_overlap(grun):
    def main():
        with Stopwatch() as sw:
            gs = [gmp.go(gmp.sleep, 0.03) for _ in range(50)]
            for g in gs:
                g.join()
        # 50 sequential sleeps would take 1.5 s
        assert 0.03 - 0.002 <= sw.elapsed < 0.5, sw.elapsed

    grun(main)


def test_timers_fire_while_other_gs_keep_yielding(grun):
    """A runnable queue that never empties (Gs looping on gosched) must not
    keep expired timers from firing, as in Go where schedule() checks timers
    before taking the next runnable G."""

    def spinner(stop):
        deadline = time.monotonic() + 2.0  # bounded, so a starving runtime ends
        while not stop and time.monotonic() < deadline:
            gmp.gosched()

    def main():
        stop = []
        spinners = [gmp.go(spinner, stop) for _ in range(2)]
        gmp.gosched()
        with Stopwatch() as sw:
            gmp.sleep(0.02)
        stop.append(True)
        for g in spinners:
            g.result()
        return sw.elapsed

    elapsed = grun(main)
    assert elapsed < 0.5, f"sleep(0.02) took {elapsed:.3f} s while other Gs yielded"


def test_many_timers_never_fire_early(grun):
    """Hundreds of sleeps and Timeout scopes that are cancelled before they
    expire, across Ms: every sleep lasts at least its duration."""

    def sleeper(seed):
        rng = random.Random(seed)
        early = []
        for _ in range(5):
            with gmp.Timeout(rng.uniform(0.05, 0.1)):  # exits before it expires
                d = rng.uniform(0, 0.02)
                t0 = time.monotonic()
                gmp.sleep(d)
                if time.monotonic() - t0 < d - 0.002:
                    early.append(d)
        return early

    def main():
        gs = [gmp.go(sleeper, seed) for seed in range(200)]
        return [e for g in gs for e in g.result()]

    assert grun(main) == []


def test_a_tree_of_spawning_gs(grun):
    """2047 Gs, each joining the two it spawned (parallel divide and conquer)."""

    def node(depth):
        if depth == 0:
            return 1
        children = [gmp.go(node, depth - 1) for _ in range(2)]
        return 1 + sum(c.result() for c in children)

    assert grun(node, 10) == 2**11 - 1


def test_a_chain_of_waiting_gs_longer_than_the_recursion_limit(grun):
    """Each G has its own stack: a chain of Gs, each parked joining the next,
    must not add up toward the recursion limit."""
    length = sys.getrecursionlimit() + 100

    def link(i):
        if i == 0:
            return 0
        return gmp.go(link, i - 1).result() + 1

    assert grun(link, length) == length


def test_g_state_follows_its_life(procs):
    def main():
        gate, ready = gmp.Chan(), gmp.Chan()
        g = gmp.go(lambda: (ready.send(None), gate.recv(), str(gmp.current().state).lower())[2])
        if procs == 1:  # main has not yielded: g cannot have started
            assert "new" in str(g.state).lower()
        ready.recv()
        wait_until(lambda: "waiting" in str(g.state).lower())
        assert not g.dead
        gate.send("go on")
        assert "running" in g.result()
        assert "dead" in str(g.state).lower()

    gmp.run(main, procs=procs)


def test_sleep_zero_returns(grun):
    def main():
        gmp.sleep(0)
        return "ok"

    assert grun(main) == "ok"


def test_gosched_lets_another_g_run(grun):
    def main():
        flag = []
        gmp.go(flag.append, 1)
        wait_until(lambda: flag)

    grun(main)


def test_gosched_ping_pong_between_two_gs(grun):
    turn = [0]
    rounds = 200

    def player(me):
        for _ in range(rounds):
            wait_until(lambda: turn[0] % 2 == me)
            turn[0] += 1

    def main():
        gs = [gmp.go(player, 0), gmp.go(player, 1)]
        for g in gs:
            g.result()
        return turn[0]

    assert grun(main) == 2 * rounds


def test_a_started_g_never_changes_thread(grun):
    """Every wake-up path must route a bound G to its home M; with several Ms
    a wrong one shows as greenlet.error or a changed thread id."""

    def worker(inbox, outbox, mu, ev):
        check = home_checker()
        for i in range(10):
            v = inbox.recv()
            check()
            gmp.sleep(0.001)
            check()
            gmp.gosched()
            check()
            with mu:
                gmp.gosched()
            check()
            outbox.send(v)
            check()
        ev.wait()
        check()
        return "ok"

    def main():
        mu, ev = gmp.Mutex(), gmp.Event()
        outbox = gmp.Chan()
        pairs = []
        for _ in range(12):
            inbox = gmp.Chan()
            pairs.append((inbox, gmp.go(worker, inbox, outbox, mu, ev)))
        feeder = gmp.go(lambda: [inbox.send(i) for i in range(10) for inbox, _ in pairs])
        got = [outbox.recv() for _ in range(10 * len(pairs))]
        ev.set()
        feeder.result()
        assert sorted(got) == sorted(list(range(10)) * len(pairs))
        return [g.result() for _, g in pairs]

    assert grun(main) == ["ok"] * 12


def test_main_return_kills_parked_gs_and_runs_their_finally(grun):
    cleaned, killed = [], []

    def worker(ready, i):
        try:
            ready.send(i)
            gmp.Chan().recv()
        except gmp.Killed:
            killed.append(i)
            raise
        finally:
            cleaned.append(i)

    def main():
        ready = gmp.Chan()
        for i in range(10):
            gmp.go(worker, ready, i)
        for _ in range(10):
            ready.recv()
        return "main done"

    assert grun(main) == "main done"
    assert sorted(cleaned) == list(range(10))
    assert sorted(killed) == list(range(10))


def test_main_return_leaves_no_g_half_way_through_a_parking_finally(grun):
    """A finally block that parks again (a sleep, a contended lock) while the
    runtime shuts down must either complete or be interrupted by Killed; the
    G ends dead either way, never suspended for good half-way through."""
    log = []

    def worker(ready):
        try:
            ready.send(None)
            gmp.Chan().recv()
        finally:
            try:
                gmp.sleep(0.005)
                log.append("finally completed")
            except gmp.Killed:
                log.append("finally interrupted by Killed")
                raise

    def main():
        ready = gmp.Chan()
        g = gmp.go(worker, ready)
        ready.recv()
        return g

    g = grun(main)
    assert log in (["finally completed"], ["finally interrupted by Killed"]), log
    assert g.dead


def test_main_return_does_not_wait_for_sleeping_gs(grun):
    def main():
        ready = gmp.Chan()
        gmp.go(lambda: (ready.send(None), gmp.sleep(30)))
        ready.recv()

    t0 = time.monotonic()
    grun(main)
    assert time.monotonic() - t0 < SLACK


def test_main_return_drops_gs_that_never_started():
    # procs=1: main never yields, so the spawned G cannot have started.
    ran = []

    def main():
        gmp.go(ran.append, "ran")
        return "main done"

    assert gmp.run(main, procs=1) == "main done"
    assert ran == []

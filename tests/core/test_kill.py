"""G.kill: gmp.Killed delivered at the next park point."""
import pytest
from helpers import PARKS, SLACK, Stopwatch, home_checker, park_ids

import gmp


def test_killed_is_a_base_exception_not_an_exception():
    assert issubclass(gmp.Killed, BaseException)
    assert not issubclass(gmp.Killed, Exception)


@pytest.mark.parametrize("parking", PARKS, ids=park_ids)
def test_kill_wakes_a_parked_g(grun, parking):
    """The killed G leaves its park point with gmp.Killed, runs its finally,
    its joiners return, and the primitive it parked on keeps no ghost."""
    trace = []

    def victim(spot, ready):
        check = home_checker()
        try:
            ready.send(None)
            spot.park()
            trace.append("passed the park point")
        finally:
            check()  # Killed is thrown on the G's home M
            trace.append("finally")

    def main():
        spot = parking()
        ready = gmp.Chan()
        g = gmp.go(victim, spot, ready)
        ready.recv()
        with Stopwatch() as sw:
            g.kill()
            assert g.join(timeout=SLACK) is True
        assert sw.elapsed < 1.0
        assert trace == ["finally"]
        assert isinstance(g.exception, gmp.Killed)
        with pytest.raises(gmp.Killed):
            g.result()
        spot.check_after()

    grun(main)


def test_kill_of_a_g_that_never_started_means_it_never_runs(grun, procs):
    ran, passed = [], []

    def body(gate):
        ran.append(1)
        gate.recv()
        passed.append(1)

    def main():
        gate = gmp.Chan()
        gs = [gmp.go(body, gate) for _ in range(50)]
        for g in gs:
            g.kill()
        for g in gs:
            assert g.join(timeout=SLACK) is True
            with pytest.raises(gmp.Killed):
                g.result()
        assert not gate.try_send("late"), "a killed G is still parked in recv"

    grun(main)
    assert passed == []
    if procs == 1:
        # main did not yield between go() and kill(): none had started.
        assert ran == []


def test_except_exception_does_not_swallow_kill(grun):
    swallowed = []

    def stubborn(ready):
        while True:
            try:
                ready.send(None)
                gmp.Chan().recv()
            except Exception as exc:  # noqa: BLE001 - the point of the test
                swallowed.append(exc)

    def main():
        ready = gmp.Chan()
        g = gmp.go(stubborn, ready)
        ready.recv()
        g.kill()
        assert g.join(timeout=SLACK) is True
        assert isinstance(g.exception, gmp.Killed)

    grun(main)
    assert swallowed == []


def test_kill_from_several_gs_and_of_a_dead_g_is_harmless(grun):
    def main():
        gate = gmp.Chan()
        target = gmp.go(gate.recv)
        killers = [gmp.go(target.kill) for _ in range(4)]
        for k in killers:
            k.result()
        assert target.join(timeout=SLACK) is True
        target.kill()  # already dead: no effect, no error
        assert isinstance(target.exception, gmp.Killed)
        done = gmp.go(lambda: "finished")
        assert done.result() == "finished"
        done.kill()
        assert done.result() == "finished"

    grun(main)


def test_killed_g_joiners_on_other_gs_return(grun):
    def main():
        gate = gmp.Chan()
        target = gmp.go(gate.recv)
        joiners = [gmp.go(target.join) for _ in range(8)]
        target.kill()
        assert [j.result() for j in joiners] == [True] * 8

    grun(main)

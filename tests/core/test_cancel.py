"""Cancellation: gmp.Timeout scopes and Contexts."""
import time

import pytest
from helpers import PARKS, Stopwatch, assert_took, home_checker, park_ids

import gmp

# --- Timeout -----------------------------------------------------------------


@pytest.mark.parametrize("parking", PARKS, ids=park_ids)
def test_timeout_fires_in_a_g_parked_inside_the_scope(grun, parking):
    def victim(spot):
        check = home_checker()
        with Stopwatch() as sw, pytest.raises(gmp.TimeoutError), gmp.Timeout(0.02):
            spot.park()
        check()  # the expiry is delivered on the G's home M
        return sw

    def main():
        spot = parking()
        sw = gmp.go(victim, spot).result()
        assert_took(sw, 0.02)
        spot.check_after()

    grun(main)


def test_timeout_error_from_a_scope_is_a_builtin_timeout_error(grun):
    def main():
        try:
            with gmp.Timeout(0.01):
                gmp.Chan().recv()
        except TimeoutError as exc:
            return type(exc)

    assert issubclass(grun(main), gmp.TimeoutError)


def test_timeout_does_not_fire_after_the_scope_exits(grun):
    def main():
        ch = gmp.Chan(1)
        with gmp.Timeout(0.02):
            pass
        with gmp.Timeout(0.02):
            ch.send("ready")
            assert ch.recv() == "ready"
        late = gmp.Chan()
        sender = gmp.go(lambda: (gmp.sleep(0.05), late.send("after both deadlines")))
        # parked past both deadlines, outside the scopes
        assert late.recv() == "after both deadlines"
        sender.result()
        gmp.sleep(0.01)
        return "no stray timeout"

    assert grun(main) == "no stray timeout"


def test_timeout_that_expired_while_running_fires_at_the_next_park(grun):
    def main():
        t0 = time.monotonic()
        with pytest.raises(gmp.TimeoutError), gmp.Timeout(0.01):
            while time.monotonic() - t0 < 0.03:  # busy past the deadline
                pass
            gmp.Chan().recv()
        assert time.monotonic() - t0 < 1.0

    grun(main)


def test_g_can_catch_a_timeout_and_park_again(grun):
    def main():
        ch = gmp.Chan()
        for _ in range(3):
            with pytest.raises(gmp.TimeoutError), gmp.Timeout(0.005):
                ch.recv()
        gmp.go(lambda: (gmp.sleep(0.02), ch.send("later")))
        return ch.recv()

    assert grun(main) == "later"


def test_nested_timeouts_the_shorter_fires_and_neither_lingers(grun):
    def main():
        with Stopwatch() as sw, pytest.raises(gmp.TimeoutError), gmp.Timeout(0.02), gmp.Timeout(0.045):
            gmp.sleep(5)
        assert_took(sw, 0.02)
        with pytest.raises(gmp.TimeoutError), gmp.Timeout(0.045), gmp.Timeout(0.02):
            gmp.sleep(5)
        gmp.sleep(0.05)  # past every deadline above: nothing fires
        return "done"

    assert grun(main) == "done"


def test_timeout_scopes_in_many_gs(grun):
    def worker(i):
        ch = gmp.Chan()
        try:
            with gmp.Timeout(0.01 + 0.001 * (i % 5)):
                ch.recv()
        except gmp.TimeoutError:
            return i

    def main():
        gs = [gmp.go(worker, i) for i in range(40)]
        return [g.result() for g in gs]

    assert grun(main) == list(range(40))


# --- Context -----------------------------------------------------------------


def _ctx(made):
    """with_timeout/with_deadline may return ctx or (ctx, cancel) like Go."""
    return made[0] if isinstance(made, tuple) else made


def _is_done(ctx):
    return gmp.select(gmp.Recv(ctx.done()), default=True) == (0, None, False)


def test_with_cancel_done_and_err(grun):
    def main():
        ctx, cancel = gmp.with_cancel(gmp.background())
        assert ctx.err() is None
        assert not _is_done(ctx)
        cancel()
        assert ctx.err() is not None
        assert _is_done(ctx)
        with pytest.raises(gmp.ChanClosed):
            ctx.done().recv()
        cancel()  # idempotent
        assert ctx.err() is not None

    grun(main)


def test_background_is_never_cancelled(grun):
    def main():
        bg = gmp.background()
        assert bg.err() is None
        assert bg.deadline() is None
        assert bg.value("missing") is None

    grun(main)


def test_cancel_propagates_to_children_not_to_parents(grun):
    def main():
        parent, cancel_parent = gmp.with_cancel(gmp.background())
        child, cancel_child = gmp.with_cancel(parent)
        sibling, _ = gmp.with_cancel(parent)
        grandchild, _ = gmp.with_cancel(gmp.with_value(child, "k", "v"))

        cancel_child()
        assert child.err() is not None and grandchild.err() is not None
        assert parent.err() is None and sibling.err() is None
        assert not _is_done(parent) and not _is_done(sibling)

        cancel_parent()
        assert parent.err() is not None and sibling.err() is not None

    grun(main)


def test_parent_cancel_wakes_gs_waiting_on_descendants(grun):
    def main():
        root, cancel = gmp.with_cancel(gmp.background())
        leaves = [gmp.with_cancel(gmp.with_value(root, "i", i))[0] for i in range(8)]
        ready = gmp.Chan()

        def wait_done(ctx):
            ready.send(None)
            for _ in ctx.done():  # iteration ends when done() is closed
                pass
            return ctx.value("i")

        gs = [gmp.go(wait_done, leaf) for leaf in leaves]
        for _ in gs:
            ready.recv()
        cancel()
        return sorted(g.result() for g in gs)

    assert grun(main) == list(range(8))


def test_with_timeout_cancels_after_its_duration(grun):
    def main():
        ctx = _ctx(gmp.with_timeout(gmp.background(), 0.03))
        assert ctx.err() is None
        assert ctx.deadline() is not None
        with Stopwatch() as sw:
            assert gmp.select(gmp.Recv(ctx.done()), timeout=5) == (0, None, False)
        assert_took(sw, 0.03)
        assert ctx.err() is not None

    grun(main)


def test_deadline_is_inherited_and_the_earliest_wins(grun):
    def main():
        parent = _ctx(gmp.with_timeout(gmp.background(), 10))
        assert _ctx(gmp.with_cancel(parent)).deadline() == parent.deadline()
        assert gmp.with_value(parent, "k", 1).deadline() == parent.deadline()
        assert _ctx(gmp.with_timeout(parent, 100)).deadline() == parent.deadline()
        assert _ctx(gmp.with_timeout(parent, 1)).deadline() < parent.deadline()
        when = parent.deadline()
        assert _ctx(gmp.with_deadline(gmp.background(), when)).deadline() == when

    grun(main)


def test_parent_timeout_cancels_a_child_with_a_later_deadline(grun):
    def main():
        parent = _ctx(gmp.with_timeout(gmp.background(), 0.02))
        child = _ctx(gmp.with_timeout(parent, 10))
        with Stopwatch() as sw:
            assert gmp.select(gmp.Recv(child.done()), timeout=5) == (0, None, False)
        assert_took(sw, 0.02)
        assert child.err() is not None

    grun(main)


def test_with_deadline_in_the_past_is_already_done(grun):
    def main():
        live = _ctx(gmp.with_timeout(gmp.background(), 10))
        # one second before a live deadline, whatever clock the runtime uses
        past = _ctx(gmp.with_deadline(gmp.background(), live.deadline() - 11))
        with Stopwatch() as sw:
            assert gmp.select(gmp.Recv(past.done()), timeout=5) == (0, None, False)
        assert sw.elapsed < 1.0
        assert past.err() is not None

    grun(main)


def test_context_values(grun):
    def main():
        a = gmp.with_value(gmp.background(), "a", 1)
        b = gmp.with_value(a, "b", 2)
        shadow = gmp.with_value(b, "a", 10)
        child, _ = gmp.with_cancel(shadow)
        assert (b.value("a"), b.value("b"), b.value("c")) == (1, 2, None)
        assert (child.value("a"), child.value("b")) == (10, 2)
        assert a.value("b") is None, "a parent sees its child's value"

    grun(main)

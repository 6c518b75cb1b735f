"""gmp.Chan semantics, single G and across several Ms."""
import pytest
from helpers import Stopwatch, assert_took, check_no_loss, try_recv_spin, wait_until

import gmp


def test_cap_len_and_closed(grun):
    def main():
        ch = gmp.Chan(3)
        assert (ch.cap, len(ch), ch.closed) == (3, 0, False)
        ch.send("a")
        ch.send("b")
        assert len(ch) == 2
        assert ch.recv() == "a"
        assert len(ch) == 1
        ch.close()
        assert (len(ch), ch.closed) == (1, True)
        assert (gmp.Chan().cap, len(gmp.Chan()), gmp.Chan(0).cap) == (0, 0, 0)

    grun(main)


def test_buffered_channel_is_fifo_within_one_g(grun):
    def main():
        ch = gmp.Chan(100)
        for i in range(100):
            ch.send(i)
        assert len(ch) == 100
        assert not ch.try_send("overflow")
        return [ch.recv() for _ in range(100)]

    assert grun(main) == list(range(100))


@pytest.mark.parametrize("cap", [0, 1, 7])
def test_single_sender_order_is_kept_across_gs(grun, cap):
    def main():
        ch = gmp.Chan(cap)

        def producer():
            for i in range(1000):
                ch.send(i)
            ch.close()

        gmp.go(producer)
        return list(ch)

    assert grun(main) == list(range(1000))


def test_unbuffered_send_does_not_complete_without_a_receiver(grun):
    def main():
        ch = gmp.Chan()
        assert ch.try_send(1) is False
        with Stopwatch() as sw, pytest.raises(gmp.TimeoutError):
            ch.send(1, timeout=0.02)
        assert_took(sw, 0.02)
        # the timed-out send left nothing behind
        assert ch.try_recv() == (None, False)
        assert len(ch) == 0

    grun(main)


def test_unbuffered_rendezvous_between_gs(grun):
    def main():
        ch = gmp.Chan()
        receivers = [gmp.go(ch.recv) for _ in range(10)]
        payloads = [object() for _ in range(10)]
        for p in payloads:
            ch.send(p)  # each send completes only by meeting a receiver
        got = [g.result() for g in receivers]
        # the very objects sent, each exactly once
        assert sorted(map(id, got)) == sorted(map(id, payloads))

    grun(main)


def test_try_send_hands_a_value_to_a_parked_receiver(grun):
    def main():
        ch = gmp.Chan()
        g = gmp.go(ch.recv)
        wait_until(lambda: ch.try_send("handed"))
        assert g.result() == "handed"

    grun(main)


def test_try_recv_takes_a_value_from_a_parked_sender(grun):
    def main():
        ch = gmp.Chan()
        g = gmp.go(ch.send, "taken")
        assert try_recv_spin(ch) == "taken"
        assert g.join() is True
        assert g.exception is None

    grun(main)


def test_try_ops_on_an_open_channel(grun):
    def main():
        ch = gmp.Chan(2)
        assert ch.try_recv() == (None, False)
        assert ch.try_send(None) is True  # None is a value like any other
        assert ch.try_send(0) is True
        assert ch.try_send(1) is False
        assert ch.try_recv() == (None, True)
        assert ch.try_recv() == (0, True)
        assert ch.try_recv() == (None, False)

    grun(main)


@pytest.mark.parametrize("cap", [0, 2])
def test_close_semantics(grun, cap):
    def main():
        ch = gmp.Chan(cap)
        buffered = list(range(cap))
        for v in buffered:
            ch.send(v)
        ch.close()
        with pytest.raises(gmp.ChanClosed):
            ch.send("late")
        with pytest.raises(gmp.ChanClosed):
            ch.try_send("late")
        with pytest.raises(gmp.ChanClosed):
            ch.close()
        # buffered values are still delivered after close, in order
        if cap:
            assert ch.recv() == 0
            assert ch.try_recv() == (1, True)
        assert len(ch) == 0
        with pytest.raises(gmp.ChanClosed):
            ch.recv()
        with pytest.raises(gmp.ChanClosed):
            ch.try_recv()
        with Stopwatch() as sw, pytest.raises(gmp.ChanClosed):
            ch.recv(timeout=5)
        assert sw.elapsed < 1.0, "recv on a closed channel must not wait"

    grun(main)


def test_close_wakes_every_parked_receiver_with_chan_closed(grun):
    def main():
        ch, ready = gmp.Chan(), gmp.Chan()

        def receiver():
            ready.send(None)
            with pytest.raises(gmp.ChanClosed):
                ch.recv()
            return "woken"

        gs = [gmp.go(receiver) for _ in range(8)]
        for _ in gs:
            ready.recv()
        ch.close()
        return [g.result() for g in gs]

    assert grun(main) == ["woken"] * 8


def test_close_wakes_parked_senders_with_chan_closed_and_drops_their_values(grun):
    def main():
        ch, ready = gmp.Chan(1), gmp.Chan()
        ch.send("buffered")

        def sender(i):
            ready.send(None)
            with pytest.raises(gmp.ChanClosed):
                ch.send(i)
            return "woken"

        gs = [gmp.go(sender, i) for i in range(6)]
        for _ in gs:
            ready.recv()
        ch.close()
        assert [g.result() for g in gs] == ["woken"] * 6
        assert list(ch) == ["buffered"]

    grun(main)


def test_iteration_ends_when_closed_and_drained(grun):
    def main():
        ch = gmp.Chan(4)
        for i in range(4):
            ch.send(i)
        ch.close()
        assert list(ch) == [0, 1, 2, 3]
        assert list(ch) == []

    grun(main)


def test_several_consumers_iterating_share_the_values(grun):
    def main():
        ch = gmp.Chan(8)
        consumers = [gmp.go(lambda: list(ch)) for _ in range(4)]
        for i in range(400):
            ch.send(i)
        ch.close()
        parts = [c.result() for c in consumers]
        for part in parts:
            assert part == sorted(part)
        return sorted(v for part in parts for v in part)

    assert grun(main) == list(range(400))


def test_timeout_error_is_a_builtin_timeout_error():
    assert issubclass(gmp.TimeoutError, TimeoutError)


@pytest.mark.parametrize("cap", [0, 1])
def test_recv_timeout_leaves_no_ghost_receiver(grun, cap):
    def main():
        ch = gmp.Chan(cap)
        with Stopwatch() as sw, pytest.raises(gmp.TimeoutError):
            ch.recv(timeout=0.02)
        assert_took(sw, 0.02)
        if cap == 0:
            assert not ch.try_send("lost"), "the timed-out receiver took a value"
        else:
            ch.send("kept")
            assert ch.try_recv() == ("kept", True)

    grun(main)


def test_send_timeout_on_a_full_channel_enqueues_nothing(grun):
    def main():
        ch = gmp.Chan(1)
        ch.send("first")
        with Stopwatch() as sw, pytest.raises(gmp.TimeoutError):
            ch.send("second", timeout=0.02)
        assert_took(sw, 0.02)
        assert len(ch) == 1
        assert ch.recv() == "first"
        assert ch.try_recv() == (None, False)

    grun(main)


def test_recv_with_timeout_returns_a_value_that_arrives_in_time(grun):
    def main():
        ch = gmp.Chan()
        gmp.go(ch.send, "in time")
        with Stopwatch() as sw:
            assert ch.recv(timeout=5) == "in time"
        assert sw.elapsed < 1.0

    grun(main)


def _run_senders_and_receivers(ch, n_senders, per_sender, n_receivers, send, recv):
    """Senders send (sender, seq) values with ``send(ch, v)``; receivers call
    ``recv(ch)`` until it raises ChanClosed; the channel is closed once every
    sender is done.  Returns (sent, received per receiver)."""

    def sender(s):
        for i in range(per_sender):
            send(ch, (s, i))

    def receiver():
        got = []
        while True:
            try:
                got.append(recv(ch))
            except gmp.ChanClosed:
                return got

    receivers = [gmp.go(receiver) for _ in range(n_receivers)]
    senders = [gmp.go(sender, s) for s in range(n_senders)]
    for g in senders:
        g.result()
    ch.close()
    sent = [(s, i) for s in range(n_senders) for i in range(per_sender)]
    return sent, [g.result() for g in receivers]


def _retry_on_timeout(op):
    while True:
        try:
            return op()
        except gmp.TimeoutError:
            pass


def _in_scope(op):
    """``op`` in a short gmp.Timeout scope instead of a timeout argument."""

    def scoped():
        with gmp.Timeout(0.0005):
            return op()

    return scoped


TIMEOUT_STYLES = {
    "argument": (lambda ch, v: ch.send(v, timeout=0.0005), lambda ch: ch.recv(timeout=0.0005)),
    "scope": (lambda ch, v: _in_scope(lambda: ch.send(v))(), lambda ch: _in_scope(ch.recv)()),
}


@pytest.mark.parametrize("cap", [0, 1, 16])
def test_values_are_never_lost_or_duplicated(grun, cap):
    def main():
        return _run_senders_and_receivers(
            gmp.Chan(cap), 4, 250, 4, lambda ch, v: ch.send(v), lambda ch: ch.recv()
        )

    check_no_loss(*grun(main))


@pytest.mark.parametrize("style", TIMEOUT_STYLES)
@pytest.mark.parametrize("cap", [0, 2])
def test_values_are_never_lost_when_timeouts_race_hand_offs(grun, cap, style):
    """Short send/recv timeouts (argument or Timeout scope) fire while
    hand-offs are in progress: a value is counted sent only if send returned,
    and must then arrive exactly once."""
    send, recv = TIMEOUT_STYLES[style]

    def main():
        return _run_senders_and_receivers(
            gmp.Chan(cap),
            4,
            100,
            4,
            lambda ch, v: _retry_on_timeout(lambda: send(ch, v)),
            lambda ch: _retry_on_timeout(lambda: recv(ch)),
        )

    check_no_loss(*grun(main))


def test_try_ops_under_contention_lose_nothing(grun):
    def try_send_spin(ch, v):
        wait_until(lambda: ch.try_send(v))

    def try_recv_or_closed(ch):
        while True:
            value, ok = ch.try_recv()  # raises ChanClosed once closed and drained
            if ok:
                return value
            gmp.gosched()

    def main():
        return _run_senders_and_receivers(gmp.Chan(3), 3, 100, 3, try_send_spin, try_recv_or_closed)

    check_no_loss(*grun(main))

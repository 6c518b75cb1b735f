"""Model-based tests of channels and select (hypothesis).

1. One G runs a random program of try_send / try_recv / send and recv with a
   short timeout / close / len / select(default=True) on a few buffered and
   unbuffered channels.  With a single G every outcome is determined, except
   which ready case a select takes, so each result is compared exactly with a
   plain-Python deque model (a select must take a case the model says is
   ready, and the model then follows the choice).
2. Several Gs send and receive on a few channels with every mix of blocking,
   try_*, timeout and select operations, on 1, 2 or 4 Ms.  Interleavings are
   not observable, so the check is: each channel delivers exactly the
   multiset of values sent on it, and each receiver sees every sender's
   values in the order they were sent.
"""
import collections

from helpers import check_no_loss
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gmp

SHORT = 0.001  # timeouts expected to expire

MODEL_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --- 1. single G against a reference model ---------------------------------------


class ModelChan:
    def __init__(self, cap):
        self.cap = cap
        self.items = collections.deque()
        self.closed = False

    def can_send(self):
        return not self.closed and len(self.items) < self.cap

    def can_recv(self):
        return bool(self.items) or self.closed

    def recv_outcome(self):
        """(value, ok) a ready receive yields, consuming it."""
        if self.items:
            return self.items.popleft(), True
        return None, False


CLOSED = "ChanClosed"
TIMEOUT = "TimeoutError"


def _outcome(fn):
    try:
        return ("ok", fn())
    except gmp.ChanClosed:
        return CLOSED
    except gmp.TimeoutError:
        return TIMEOUT


class Program:
    """Executes one op on both the real channels and the model; returns
    (real, expected) outcomes, or None for a select the model cannot judge."""

    def __init__(self, caps):
        self.real = [gmp.Chan(cap) for cap in caps]
        self.model = [ModelChan(cap) for cap in caps]

    def try_send(self, c, v):
        m = self.model[c]
        expected = CLOSED if m.closed else ("ok", m.can_send())
        if expected == ("ok", True):
            m.items.append(v)
        return _outcome(lambda: self.real[c].try_send(v)), expected

    def try_recv(self, c, v):
        m = self.model[c]
        if m.items:
            expected = ("ok", (m.items.popleft(), True))
        else:
            expected = CLOSED if m.closed else ("ok", (None, False))
        return _outcome(self.real[c].try_recv), expected

    def send_timeout(self, c, v):
        m = self.model[c]
        if m.closed:
            expected = CLOSED
        elif m.can_send():
            m.items.append(v)
            expected = ("ok", None)
        else:
            expected = TIMEOUT
        real = _outcome(lambda: self.real[c].send(v, timeout=SHORT))
        return real if real in (CLOSED, TIMEOUT) else ("ok", None), expected

    def recv_timeout(self, c, v):
        m = self.model[c]
        if m.items:
            expected = ("ok", m.items.popleft())
        else:
            expected = CLOSED if m.closed else TIMEOUT
        return _outcome(lambda: self.real[c].recv(timeout=SHORT)), expected

    def close(self, c, v):
        m = self.model[c]
        expected = CLOSED if m.closed else ("ok", None)
        m.closed = True
        return _outcome(self.real[c].close), expected

    def length(self, c, v):
        m = self.model[c]
        real = self.real[c]
        return (len(real), real.closed, real.cap), (len(m.items), m.closed, m.cap)

    def select(self, cases):
        # Send on a closed channel is a programming error, not a select outcome.
        if any(kind == "send" and self.model[c].closed for kind, c, _ in cases):
            return None
        real_cases = [
            gmp.Send(self.real[c], v) if kind == "send" else gmp.Recv(self.real[c])
            for kind, c, v in cases
        ]
        index, value, ok = gmp.select(*real_cases, default=True)
        ready = [
            i
            for i, (kind, c, _) in enumerate(cases)
            if (self.model[c].can_send() if kind == "send" else self.model[c].can_recv())
        ]
        if not ready:
            return (index, value, ok), (-1, None, False)
        assert index in ready, f"select took case {index}; ready were {ready}"
        kind, c, v = cases[index]
        if kind == "send":
            self.model[c].items.append(v)
            return (index, value, ok), (index, None, True)
        expected_value, expected_ok = self.model[c].recv_outcome()
        return (index, value, ok), (index, expected_value, expected_ok)


SIMPLE_OPS = ["try_send", "try_recv", "send_timeout", "recv_timeout", "close", "length"]


def single_g_programs():
    caps = st.lists(st.sampled_from([0, 1, 2, 3]), min_size=1, max_size=3)

    def ops_for(caps):
        chan = st.integers(0, len(caps) - 1)
        # the first branch doubles the weight of the cheap, timer-free ops
        op = st.one_of(
            st.tuples(st.sampled_from(["try_send", "try_recv", "length"]), chan),
            st.tuples(st.sampled_from(SIMPLE_OPS), chan),
            st.tuples(
                st.just("select"),
                st.lists(st.tuples(st.sampled_from(["send", "recv"]), chan), min_size=1, max_size=4),
            ),
        )
        return st.tuples(st.just(caps), st.lists(op, max_size=40))

    return caps.flatmap(ops_for)


@MODEL_SETTINGS
@given(single_g_programs())
def test_single_g_channel_program_matches_the_model(program):
    caps, ops = program

    def main():
        prog = Program(caps)
        for step, (op, arg) in enumerate(ops):
            if op == "select":
                cases = [(kind, c, ("sel", step, i)) for i, (kind, c) in enumerate(arg)]
                pair = prog.select(cases)
            else:
                pair = getattr(prog, op)(arg, ("val", step))
            if pair is not None:
                real, expected = pair
                assert real == expected, f"step {step} {op}{arg!r}: got {real!r}, model {expected!r}"

    gmp.run(main, procs=1)


# --- 2. several Gs: multisets and per-sender order --------------------------------


def _send_plain(ch, v):
    ch.send(v)


def _send_select(ch, v):
    # a never-ready case next to the real one
    assert gmp.select(gmp.Recv(gmp.Chan()), gmp.Send(ch, v))[0] == 1


def _send_try(ch, v):
    # try_send on an unbuffered channel succeeds only against a parked
    # receiver, and "try" receivers never park: fall back to send.
    for _ in range(100):
        if ch.try_send(v):
            return
        gmp.gosched()
    ch.send(v)


def _send_timeout(ch, v):
    while True:
        try:
            return ch.send(v, timeout=SHORT)
        except gmp.TimeoutError:
            pass


SENDERS = {"send": _send_plain, "select": _send_select, "try": _send_try, "timeout": _send_timeout}


def _recv_iter(ch):
    return list(ch)


def _recv_plain(ch):
    got = []
    try:
        while True:
            got.append(ch.recv())
    except gmp.ChanClosed:
        return got


def _recv_try(ch):
    got = []
    try:
        while True:
            value, ok = ch.try_recv()
            if ok:
                got.append(value)
            else:
                gmp.gosched()
    except gmp.ChanClosed:
        return got


def _recv_timeout(ch):
    got = []
    while True:
        try:
            got.append(ch.recv(timeout=SHORT))
        except gmp.TimeoutError:
            pass
        except gmp.ChanClosed:
            return got


def _recv_select(ch):
    got = []
    while True:
        index, value, ok = gmp.select(gmp.Recv(ch), timeout=SHORT)
        if index == -1:
            continue
        if not ok:
            return got
        got.append(value)


RECEIVERS = {
    "iter": _recv_iter,
    "recv": _recv_plain,
    "try": _recv_try,
    "timeout": _recv_timeout,
    "select": _recv_select,
}


def _select_all(chans):
    """One receiver selecting over every channel until all are closed."""
    got, open_chans = [], list(chans)
    while open_chans:
        index, value, ok = gmp.select(*[gmp.Recv(ch) for ch in open_chans])
        if ok:
            got.append(value)
        else:
            del open_chans[index]
    return got


channel_plans = st.fixed_dictionaries(
    {
        "cap": st.sampled_from([0, 1, 3]),
        "senders": st.lists(
            st.tuples(st.sampled_from(sorted(SENDERS)), st.integers(0, 25)), max_size=3
        ),
        "receivers": st.lists(st.sampled_from(sorted(RECEIVERS)), min_size=1, max_size=3),
    }
)


@MODEL_SETTINGS
@given(
    plans=st.lists(channel_plans, min_size=1, max_size=3),
    select_all=st.booleans(),
    procs=st.sampled_from([1, 2, 4]),
)
def test_multi_g_channel_programs_lose_nothing_and_keep_sender_order(plans, select_all, procs):
    def main():
        chans = [gmp.Chan(plan["cap"]) for plan in plans]
        receivers = [
            (c, gmp.go(RECEIVERS[mode], chans[c]))
            for c, plan in enumerate(plans)
            for mode in plan["receivers"]
        ]
        everywhere = gmp.go(_select_all, chans) if select_all else None
        closers = []
        for c, plan in enumerate(plans):
            senders = [
                gmp.go(lambda c=c, s=s, mode=mode, n=n: [SENDERS[mode](chans[c], (c, s, i)) for i in range(n)])
                for s, (mode, n) in enumerate(plan["senders"])
            ]
            closers.append(gmp.go(lambda senders=senders, ch=chans[c]: ([g.result() for g in senders], ch.close())))
        for g in closers:
            g.result()
        got = [(c, g.result()) for c, g in receivers]
        if everywhere is not None:
            got.extend((c, [v for v in everywhere.result() if v[0] == c]) for c in range(len(plans)))
        return got

    got = gmp.run(main, procs=procs)
    for c, plan in enumerate(plans):
        sent = [(s, i) for s, (_, n) in enumerate(plan["senders"]) for i in range(n)]
        per_receiver = [[(s, i) for (_, s, i) in values] for rc, values in got if rc == c]
        check_no_loss(sent, per_receiver)

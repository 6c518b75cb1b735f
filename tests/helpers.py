"""Helpers shared by the test modules (imported as ``helpers``: the
conftest puts ``tests/`` on ``sys.path``)."""
import math
import os
import threading
import time

import gmp

# The folder holding tests/ and examples/: the repository root, or the
# temporary folder .ci/run copies them to for the installed-package run.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Lower bounds on timer durations allow this much early wake-up (clock and
# epoll millisecond granularity); upper bounds are deliberately generous.
TOL = 0.002
SLACK = 2.0


class Stopwatch:
    def __enter__(self):
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.t0
        return False


def assert_took(sw, seconds):
    assert seconds - TOL <= sw.elapsed < seconds + SLACK, sw.elapsed


def wait_until(pred, what="the awaited state", timeout=5.0):
    """Polls pred() between gosched()s (inside a G) until it holds; bounded
    in time, so a livelock (gosched never letting the awaited G run) fails
    instead of hanging.  Synchronises on observable state, never on a
    sleep."""
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        if gmp.current() is not None:
            gmp.gosched()
        else:
            time.sleep(0.0005)


def parked(g, reason="IO wait"):
    return lambda: g.wait_reason == reason


def try_recv_spin(ch):
    """try_recv until a value comes, yielding in between."""
    got = []

    def ready():
        value, ok = ch.try_recv()
        if ok:
            got.append(value)
        return ok

    wait_until(ready, "a value on the channel")
    return got[0]


def home_checker():
    """Returns a check that the calling G is still on the thread it started on
    (the design's one hard rule: a started G never changes thread)."""
    home = threading.get_ident()

    def check():
        assert threading.get_ident() == home, "a started G moved to another thread"

    return check


def chi2_uniform(counts):
    """Chi-square statistic of ``counts`` against the uniform distribution and
    its survival probability; ``len(counts) - 1`` must be even."""
    n = sum(counts)
    k = len(counts)
    expected = n / k
    x = sum((c - expected) ** 2 / expected for c in counts)
    df = k - 1
    assert df % 2 == 0, "closed form below is for even degrees of freedom"
    half = x / 2
    survival = math.exp(-half) * sum(half**i / math.factorial(i) for i in range(df // 2))
    return x, survival


def check_no_loss(sent, received_per_receiver):
    """Every sent value arrived exactly once, and each receiver saw the values
    of each sender in the order they were sent.  Values are (sender, seq)."""
    received = [v for rx in received_per_receiver for v in rx]
    assert sorted(received) == sorted(sent)
    for rx in received_per_receiver:
        last = {}
        for sender, seq in rx:
            assert seq > last.get(sender, -1), f"sender {sender} reordered"
            last[sender] = seq


# --- ways for a G to park ---------------------------------------------------
# Each is created inside the runtime by the G that will release/observe it,
# parks the calling G in ``park()``, and, after the parked G was woken by kill
# or by a Timeout, ``check_after()`` verifies the primitive is still sound
# (no ghost waiter keeps a value, a permit or the lock).


class Park:
    reason = ""

    def park(self):
        raise NotImplementedError

    def check_after(self):
        pass


class ChanRecv(Park):
    reason = "chan receive"

    def __init__(self):
        self.ch = gmp.Chan()

    def park(self):
        self.ch.recv()

    def check_after(self):
        assert not self.ch.try_send(1), "a value was handed to a G that left recv"


class ChanSend(Park):
    reason = "chan send"

    def __init__(self):
        self.ch = gmp.Chan()

    def park(self):
        self.ch.send("ghost")

    def check_after(self):
        assert self.ch.try_recv() == (None, False), "a G that left send still delivers"


class SelectPark(Park):
    reason = "select"

    def __init__(self):
        self.a = gmp.Chan()
        self.b = gmp.Chan()

    def park(self):
        gmp.select(gmp.Recv(self.a), gmp.Send(self.b, "ghost"))

    def check_after(self):
        assert not self.a.try_send(1), "a value was handed to a G that left select"
        assert self.b.try_recv() == (None, False), "a G that left select still sends"


class SleepPark(Park):
    reason = "sleep"

    def park(self):
        gmp.sleep(10)


class MutexPark(Park):
    reason = "mutex"

    def __init__(self):
        self.mu = gmp.Mutex()
        self.mu.lock()

    def park(self):
        self.mu.lock()

    def check_after(self):
        self.mu.unlock()
        assert self.mu.try_lock(), "the mutex was handed to a G that left lock()"
        self.mu.unlock()


class SemaphorePark(Park):
    reason = "semaphore"

    def __init__(self):
        self.sem = gmp.Semaphore(1)
        self.sem.acquire()

    def park(self):
        self.sem.acquire()

    def check_after(self):
        self.sem.release()
        with gmp.Timeout(SLACK):
            self.sem.acquire()  # the permit must not have gone to the ghost
        self.sem.release()


class EventPark(Park):
    reason = "event"

    def __init__(self):
        self.ev = gmp.Event()

    def park(self):
        self.ev.wait()


class WaitGroupPark(Park):
    reason = "waitgroup"

    def __init__(self):
        self.wg = gmp.WaitGroup()
        self.wg.add(1)

    def park(self):
        self.wg.wait()

    def check_after(self):
        self.wg.done()
        self.wg.wait()


class CondPark(Park):
    reason = "cond"

    def __init__(self):
        self.mu = gmp.Mutex()
        self.cond = gmp.Cond(self.mu)

    def park(self):
        with self.mu:
            self.cond.wait()

    def check_after(self):
        assert self.mu.try_lock(), "the G that left Cond.wait kept the mutex"
        self.mu.unlock()


class JoinPark(Park):
    reason = "join"

    def __init__(self):
        self.gate = gmp.Chan()
        self.target = gmp.go(self.gate.recv)

    def park(self):
        self.target.join()

    def check_after(self):
        self.gate.send("release")
        assert self.target.result() == "release"


PARKS = [
    ChanRecv,
    ChanSend,
    SelectPark,
    SleepPark,
    MutexPark,
    SemaphorePark,
    EventPark,
    WaitGroupPark,
    CondPark,
    JoinPark,
]


def park_ids(cls):
    return cls.reason.replace(" ", "-")

"""Injected stalls are charged to their cause, with 1, 2 and 4 Ms."""
import time

import pytest
from helpers import parked, wait_until

import gmp
from gmp import latency
from gmp._ext import _core

MS = 1e6


@pytest.fixture
def sampling():
    """Sampling on (process-wide), every request kept; off again after."""
    latency.enable(every=1, slow_ms=0.0)
    try:
        yield latency
    finally:
        latency.disable()
        latency.take(1 << 20)


def only_record(latency, cls):
    recs = [r for r in latency.take(1 << 16) if latency.class_names()[r.cls] == cls]
    assert len(recs) == 1, recs
    return recs[0]


def worst(rec, latency):
    return max(zip(latency.BUCKETS, rec.breakdown), key=lambda kv: kv[1])[0]


def busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_mutex_wait_is_parked_on_the_lock(grun, sampling):
    def main():
        mu = gmp.Mutex()
        mu.lock()

        def request():
            with sampling.begin("lock") as req:
                mu.lock()
                mu.unlock()
                req.status = 200

        g = gmp.go(request)
        wait_until(parked(g, "sync.Mutex.Lock"), "the request to park on the mutex")
        gmp.sleep(0.030)                       # the injected stall: hold the lock 30 ms
        mu.unlock()
        g.join()

    grun(main)
    rec = only_record(sampling, "lock")
    lock = rec.component("lock")
    assert rec.status == 200
    assert 29 * MS <= lock <= rec.latency_ns, rec
    assert worst(rec, sampling) == "lock", rec
    assert sum(rec.breakdown) <= rec.latency_ns + 0.1 * MS, rec


def test_other_g_holding_the_m_is_named(grun, sampling):
    def hog():
        busy(0.050)

    hogs = []

    def request():
        with sampling.begin("held"):
            # Bound to this G's own P from birth, so no other M can take it:
            # the request, yielding now, waits until the hog is done.
            hogs.append(_core.go_on(gmp.current().home_p, hog))
            gmp.gosched()

    def main():
        gmp.go(request).join()

    grun(main)
    rec = only_record(sampling, "held")
    held = rec.component("M held by G")
    assert 49 * MS <= held <= rec.latency_ns, rec
    assert worst(rec, sampling) == "M held by G", rec
    assert rec.held_gid == hogs[0].id
    gid, name, ms, stack = sampling.incidents()[rec.held_incident]
    assert gid == hogs[0].id and name.endswith("hog") and ms >= 49
    assert "hog" in stack[0]


def test_queued_behind_many_runnable_gs_is_run_queue_wait(grun):
    # A hold threshold above any one G's run: this test is about queueing.
    latency.enable(every=1, slow_ms=0.0, hold_ms=200.0)
    try:
        def work():
            busy(0.00002)

        def request():
            for _ in range(1000):
                gmp.go(work)
            # Spawning is not part of the request: with several Ms the
            # others run the new Gs meanwhile, and this G's wait for the GIL
            # inside the eval loop would count as running.
            with latency.begin("queued"):
                gmp.gosched()      # to the back of the queue, behind them

        def main():
            gmp.go(request).join()

        grun(main)
        rec = only_record(latency, "queued")
    finally:
        latency.disable()
    runq = rec.component("run queue")
    assert runq >= 2 * MS, rec
    assert worst(rec, latency) == "run queue", rec
    assert runq >= 0.5 * rec.latency_ns, rec

"""The record ring under 4 writer threads appending without the GIL and a
slow reader: no torn record, every drop counted, no writer ever waits."""
import threading
import time

from gmp import latency
from gmp._ext import _core

WRITERS = 4
PER_WRITER = 50_000


def check(rec):
    """The fields _lat_stress derives from trace_id: a torn record fails."""
    t = rec.trace_id
    seed, i = t >> 32, t & 0xFFFFFFFF
    assert rec.start_ns == t * 3
    assert rec.latency_ns == t ^ 0x5555
    assert rec.gid == seed and rec.cls == seed
    assert rec.breakdown == tuple(t + j for j in range(10))
    assert rec.held_gid == t * 7 and rec.held_incident == i
    assert rec.status == i & 0x7FFF and rec.weight == 1
    return seed, i


def run_writers(reader):
    latency.enable(capacity=1024)
    try:
        drops = [0] * WRITERS
        done = [None] * WRITERS
        start = threading.Barrier(WRITERS + 1)

        def writer(k):
            start.wait()
            drops[k] = _core._lat_stress(PER_WRITER, k + 1)
            done[k] = time.monotonic()

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(WRITERS)]
        for t in threads:
            t.start()
        start.wait()
        got = reader(threads)
        for t in threads:
            t.join()
        got += latency.take(1 << 20)
        return got, drops, latency.counts()
    finally:
        latency.disable()


def verify(got, drops, counts):
    appended, dropped = counts
    assert dropped == sum(drops)
    assert appended == len(got)
    assert len(got) + dropped == WRITERS * PER_WRITER
    last = {}
    for rec in got:
        seed, i = check(rec)
        # One producer's records come out in the order it appended them.
        assert i > last.get(seed, -1)
        last[seed] = i


def test_writers_finish_while_the_reader_is_stopped():
    def reader(threads):
        # The reader takes nothing until every writer is done: had a full
        # ring made a writer wait, they would never finish.
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive(), "a writer blocked on the full ring"
        return []

    got, drops, counts = run_writers(reader)
    assert len(got) == 1024                  # exactly one ring's worth kept
    verify(got, drops, counts)


def test_slow_concurrent_reader_sees_no_torn_record():
    def reader(threads):
        got = []
        while any(t.is_alive() for t in threads):
            got += latency.take(64)
            time.sleep(0.0002)               # slower than the writers
        return got

    got, drops, counts = run_writers(reader)
    assert 0 < sum(drops) < WRITERS * PER_WRITER
    verify(got, drops, counts)

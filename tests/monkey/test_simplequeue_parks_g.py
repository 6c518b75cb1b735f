"""queue.SimpleQueue under patch_all: get() parks the G, not the M; put()
stays reentrant and never blocks; a wake-up is never lost (cancelled
getter, OS-thread getters and putters, the C type from a fresh _queue)."""
import pytest
from patched import run_patched

PRELUDE = """
    import gc, queue, sys, threading, time, gmp, gmp.monkey
    from gmp.monkey.threading import OSThread as RealThread   # a real OS thread

    def wait_for(pred, what):
        end = time.monotonic() + 10
        while not pred():
            assert time.monotonic() < end, what
            gmp.gosched()

    def parked(g):
        return lambda: g.wait_reason == "queue.get"
"""


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_get_parks_only_the_g(tmp_path, procs):
    out = run_patched(tmp_path, PRELUDE + """
    q = queue.SimpleQueue()
    assert type(q) is queue.SimpleQueue and isinstance(q, gmp.monkey.original("queue", "SimpleQueue"))
    assert repr(q).startswith("<_queue.SimpleQueue object at"), repr(q)
    got = []
    getters = [gmp.go(lambda: got.append(q.get())) for _ in range(3)]
    for g in getters:
        # Reached at procs=1 only because the getters parked their G:
        # a get() blocking in C would hold the one M.
        wait_for(parked(g), "getter parked")
    q.put(1)                                     # from a G
    t = RealThread(target=q.put, args=(2,))      # from a plain OS thread
    t.start(); t.join()
    q.put_nowait(3)
    for g in getters:
        g.join(10)
    assert sorted(got) == [1, 2, 3], got
    # A plain OS thread blocked in the C get is woken by a G's put.
    box = []
    t = RealThread(target=lambda: box.append(q.get(timeout=10)))
    t.start()
    q.put("to the thread")
    t.join(10)
    assert box == ["to the thread"], box
    t0 = time.monotonic()
    try:
        q.get(timeout=0.05)
        raise AssertionError("no Empty")
    except queue.Empty:
        assert time.monotonic() - t0 >= 0.04
    for bad in (-1, -0.5):
        try:
            q.get(timeout=bad)
            raise AssertionError("no ValueError")
        except ValueError as e:
            assert "non-negative" in str(e)
    try:
        q.get(False)
        raise AssertionError("no Empty")
    except queue.Empty:
        pass
    print("ok")
    """, procs=procs)
    assert out.split() == ["ok"]


@pytest.mark.parametrize("procs", [1, 2])
def test_a_cancelled_getter_does_not_eat_the_next_wakeup(tmp_path, procs):
    out = run_patched(tmp_path, PRELUDE + """
    q = queue.SimpleQueue()
    got = []
    first = gmp.go(q.get)
    wait_for(parked(first), "first getter parked")
    second = gmp.go(lambda: got.append(q.get()))
    wait_for(parked(second), "second getter parked")
    first.kill()         # cancelled while parked, first in line ...
    first.join(10)
    q.put("item")        # ... so this wake-up must reach `second`
    second.join(10)
    assert got == ["item"], got
    assert isinstance(first.exception, gmp.Killed), first.exception
    print("ok")
    """, procs=procs)
    assert out.split() == ["ok"]


@pytest.mark.parametrize("procs", [1, 2])
def test_put_is_reentrant_from_del(tmp_path, procs):
    # bpo-14976, as CPython's test_reentrancy: __del__ in a reference cycle
    # runs whenever the GC does, also in the middle of a put().
    out = run_patched(tmp_path, PRELUDE + """
    import itertools
    q = queue.SimpleQueue()
    gen = itertools.count()
    results = []
    class Circular:
        def __init__(self):
            self.circular = self
        def __del__(self):
            q.put(next(gen))
    gc.set_threshold(1)
    while True:
        o = Circular()
        q.put(next(gen))
        del o
        results.append(q.get())
        if results[-1] >= 2000:
            break
    assert results == list(range(2001)), results[:10]
    print("ok")
    """, procs=procs)
    assert out.split() == ["ok"]


def test_fresh_c_queue_module_is_cooperative(tmp_path):
    # CPython's CSimpleQueueTest reaches the C type through a fresh _queue.
    out = run_patched(tmp_path, PRELUDE + """
    from test.support import import_helper
    c_queue = import_helper.import_fresh_module("queue", fresh=["_queue"])
    assert c_queue.SimpleQueue is not queue.SimpleQueue
    q = c_queue.SimpleQueue()
    g = gmp.go(q.get)
    wait_for(parked(g), "getter on the fresh type parked")
    q.put(7)
    assert g.result(10) == 7
    try:
        q.get(timeout=0.01)
    except c_queue.Empty:
        print("ok")
    """, procs=1)
    assert out.split() == ["ok"]

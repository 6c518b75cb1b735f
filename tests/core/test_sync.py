"""gmp.sync: WaitGroup, Mutex, RWMutex, Once, Cond, Semaphore, Event.

Method names follow Go and threading: WaitGroup.add/done/wait,
Mutex.lock/unlock/try_lock (and ``with``), RWMutex.rlock/runlock/lock/unlock,
Once.do(fn), Cond(mutex).wait/signal/broadcast, Semaphore(n).acquire/release
(and ``with``), Event.set/clear/is_set/wait.
"""
import pytest
from helpers import SLACK, wait_until

import gmp


class Occupancy:
    """Counts the Gs inside a section and remembers the worst overlap."""

    def __init__(self):
        self.inside = 0
        self.most = 0

    def __enter__(self):
        self.inside += 1
        self.most = max(self.most, self.inside)
        return self

    def __exit__(self, *exc):
        self.inside -= 1
        return False


def _yield_a_little(i):
    """Park inside a critical section: gosched, and now and then a real sleep."""
    gmp.gosched()
    if i % 10 == 0:
        gmp.sleep(0.0005)


def test_sync_types_are_reexported():
    import gmp.sync

    for name in ("WaitGroup", "Mutex", "RWMutex", "Once", "Cond", "Semaphore", "Event"):
        assert getattr(gmp, name) is getattr(gmp.sync, name)


# --- WaitGroup ---------------------------------------------------------------


def test_waitgroup_wait_returns_after_every_done(grun):
    def main():
        wg, finished = gmp.WaitGroup(), []
        wg.add(20)

        def worker(i):
            for _ in range(i % 4):
                gmp.gosched()
            finished.append(i)
            wg.done()

        for i in range(20):
            gmp.go(worker, i)
        waiters = [gmp.go(lambda: (wg.wait(), len(finished))[1]) for _ in range(4)]
        wg.wait()
        assert sorted(finished) == list(range(20))
        assert [w.result() for w in waiters] == [20] * 4

    grun(main)


def test_waitgroup_at_zero_does_not_block_and_can_be_reused(grun):
    def main():
        wg = gmp.WaitGroup()
        wg.wait()
        for _ in range(3):
            wg.add(2)
            gmp.go(wg.done)
            gmp.go(wg.done)
            wg.wait()

    grun(main)


def test_waitgroup_negative_counter_raises_value_error(grun):
    def main():
        wg = gmp.WaitGroup()
        with pytest.raises(ValueError):
            wg.done()
        wg.add(1)
        with pytest.raises(ValueError):
            wg.add(-2)

    grun(main)


# --- Mutex -------------------------------------------------------------------


def test_mutex_excludes_gs_that_park_inside(grun):
    def main():
        mu, occ, counter = gmp.Mutex(), Occupancy(), [0]

        def critical(i):
            with occ:
                value = counter[0]
                _yield_a_little(i)
                counter[0] = value + 1

        def worker(w):
            for i in range(30):
                if i % 2:
                    mu.lock()
                    critical(i + w)
                    mu.unlock()
                else:
                    with mu:
                        critical(i + w)

        gs = [gmp.go(worker, w) for w in range(8)]
        for g in gs:
            g.result()
        return counter[0], occ.most

    assert grun(main) == (8 * 30, 1)


def test_mutex_with_statement(grun):
    def main():
        mu = gmp.Mutex()
        with mu:
            assert not mu.try_lock()
        assert mu.try_lock()
        mu.unlock()
        with pytest.raises(KeyError), mu:
            raise KeyError("released on error")
        assert mu.try_lock()

    grun(main)


def test_mutex_unlock_of_unlocked_raises_runtime_error(grun):
    def main():
        mu = gmp.Mutex()
        with pytest.raises(RuntimeError):
            mu.unlock()
        mu.lock()
        mu.unlock()
        with pytest.raises(RuntimeError):
            mu.unlock()

    grun(main)


def test_mutex_try_lock(grun):
    def main():
        mu = gmp.Mutex()
        assert mu.try_lock() is True
        assert mu.try_lock() is False
        other = gmp.go(mu.try_lock)
        assert other.result() is False
        mu.unlock()
        assert gmp.go(mu.try_lock).result() is True
        assert mu.try_lock() is False

    grun(main)


def test_mutex_unlock_wakes_a_waiter_on_another_g(grun):
    def main():
        mu = gmp.Mutex()
        mu.lock()
        waiters = [gmp.go(lambda i=i: (mu.lock(), mu.unlock(), i)[2]) for i in range(6)]
        mu.unlock()
        return sorted(w.result() for w in waiters)

    assert grun(main) == list(range(6))


# --- RWMutex -----------------------------------------------------------------


def _assert_n_hold_at_once(n, acquire, release):
    """``n`` Gs acquire and then wait until all ``n`` hold at the same time,
    which they reach only if the primitive admits ``n`` holders at once."""
    holding, release_all = gmp.Chan(), gmp.Event()

    def holder():
        acquire()
        holding.send(None)
        release_all.wait()
        release()

    gs = [gmp.go(holder) for _ in range(n)]
    for _ in gs:
        holding.recv()
    release_all.set()
    for g in gs:
        g.result()


def test_rwmutex_admits_many_readers_at_once(grun):
    def main():
        rw = gmp.RWMutex()
        _assert_n_hold_at_once(5, rw.rlock, rw.runlock)
        rw.lock()  # all readers gone: the writer gets in
        rw.unlock()

    grun(main)


def test_rwmutex_writer_excludes_readers_and_writers(grun):
    def main():
        rw, readers, writers = gmp.RWMutex(), Occupancy(), Occupancy()
        violations = []

        def reader(r):
            for i in range(40):
                rw.rlock()
                with readers:
                    if writers.inside:
                        violations.append("reader saw a writer")
                    _yield_a_little(i + r)
                rw.runlock()

        def writer(w):
            for i in range(20):
                rw.lock()
                with writers:
                    if readers.inside or writers.inside > 1:
                        violations.append("writer not alone")
                    _yield_a_little(i + w)
                rw.unlock()

        gs = [gmp.go(reader, r) for r in range(4)] + [gmp.go(writer, w) for w in range(2)]
        for g in gs:
            g.result()
        return violations, writers.most

    assert grun(main) == ([], 1)


def test_rwmutex_waiting_writer_is_not_starved_by_new_readers(grun):
    """Readers overlap so the read count never drops to zero by itself; once a
    writer waits, new readers must queue behind it (as in Go)."""
    n_readers, max_rounds = 4, 3000

    def main():
        rw = gmp.RWMutex()
        state = {"writer_waiting": False, "done": False, "late_reads": 0, "reads": 0}

        def reader():
            for _ in range(max_rounds):
                if state["done"]:
                    return
                rw.rlock()
                state["reads"] += 1
                if state["writer_waiting"]:
                    state["late_reads"] += 1
                gmp.gosched()
                rw.runlock()

        gs = [gmp.go(reader) for _ in range(n_readers)]
        wait_until(lambda: state["reads"] >= 4 * n_readers)
        state["writer_waiting"] = True
        rw.lock()
        state["writer_waiting"] = False
        state["done"] = True
        late = state["late_reads"]
        rw.unlock()
        for g in gs:
            g.result()
        return late

    late = grun(main)
    assert late <= 4 * n_readers, f"{late} read locks were granted while the writer waited"


# --- Once --------------------------------------------------------------------


def test_once_runs_fn_once_and_callers_wait_for_it(grun):
    def main():
        once, calls, state = gmp.Once(), [], []

        def init():
            calls.append(1)
            for _ in range(3):
                gmp.gosched()
            gmp.sleep(0.001)
            state.append("initialised")

        def user():
            once.do(init)
            return list(state)  # do() returned: init has completed

        gs = [gmp.go(user) for _ in range(10)]
        assert [g.result() for g in gs] == [["initialised"]] * 10
        once.do(init)
        assert calls == [1]

    grun(main)


# --- Cond --------------------------------------------------------------------


def _park_cond_waiters(n):
    """Start ``n`` Gs waiting on a Cond; return once all are inside wait()."""
    mu = gmp.Mutex()
    cond = gmp.Cond(mu)
    state = {"waiting": 0}
    woke = gmp.Chan(n)

    def waiter(i):
        with mu:
            state["waiting"] += 1
            cond.wait()
            assert not mu.try_lock(), "wait() returned without the mutex"
            state["waiting"] -= 1
        woke.send(i)

    for i in range(n):
        gmp.go(waiter, i)

    def all_waiting():
        # Holding mu with the count at n means every waiter released mu, which
        # it does only inside wait().
        with mu:
            return state["waiting"] == n

    wait_until(all_waiting)
    return mu, cond, woke


def test_cond_signal_wakes_exactly_one(grun):
    def main():
        mu, cond, woke = _park_cond_waiters(5)
        for _ in range(5):
            with mu:
                cond.signal()
            woke.recv()
            # a second waiter must not wake from the same signal
            with pytest.raises(gmp.TimeoutError):
                woke.recv(timeout=0.01)
            assert len(woke) == 0

    grun(main)


def test_cond_broadcast_wakes_all(grun):
    def main():
        mu, cond, woke = _park_cond_waiters(6)
        with mu:
            cond.broadcast()
        return sorted(woke.recv() for _ in range(6))

    assert grun(main) == list(range(6))


def test_cond_signal_without_waiters_is_not_remembered(grun):
    def main():
        mu = gmp.Mutex()
        cond = gmp.Cond(mu)
        with mu:
            cond.signal()
            cond.broadcast()
        waiter = gmp.go(lambda: (mu.lock(), cond.wait(), mu.unlock()))
        assert waiter.join(timeout=0.02) is False, "an earlier signal woke a later waiter"
        while not waiter.join(timeout=0.005):
            with mu:
                cond.signal()

    grun(main)


# --- Semaphore ---------------------------------------------------------------


def test_semaphore_bounds_concurrent_holders(grun):
    def main():
        sem, occ = gmp.Semaphore(3), Occupancy()

        def worker(w):
            for i in range(10):
                with sem, occ:
                    _yield_a_little(i + w)

        gs = [gmp.go(worker, w) for w in range(8)]
        for g in gs:
            g.result()
        return occ.most

    assert 1 <= grun(main) <= 3


def test_semaphore_admits_n_holders_at_once(grun):
    def main():
        sem = gmp.Semaphore(3)
        _assert_n_hold_at_once(3, sem.acquire, sem.release)
        with gmp.Timeout(SLACK):
            sem.acquire()  # every permit came back

    grun(main)


def test_semaphore_of_zero_blocks_until_release(grun):
    def main():
        sem = gmp.Semaphore(0)
        g = gmp.go(lambda: (sem.acquire(), "acquired")[1])
        assert g.join(timeout=0.02) is False
        sem.release()
        assert g.result() == "acquired"

    grun(main)


# --- Event -------------------------------------------------------------------


def test_event_set_wakes_every_waiter(grun):
    def main():
        ev = gmp.Event()
        assert not ev.is_set()
        waiters = [gmp.go(lambda i=i: (ev.wait(), i)[1]) for i in range(10)]
        ev.set()
        assert ev.is_set()
        assert sorted(w.result() for w in waiters) == list(range(10))
        ev.wait()  # already set: returns at once

    grun(main)


def test_event_clear_makes_wait_block_again(grun):
    def main():
        ev = gmp.Event()
        ev.set()
        ev.clear()
        assert not ev.is_set()
        g = gmp.go(ev.wait)
        assert g.join(timeout=0.02) is False
        ev.set()
        assert g.join(timeout=SLACK) is True

    grun(main)

"""Go's sync package for Gs.

Mutex, Semaphore, Event and WaitGroup are compiled (``_ext/sync.pxi``)
because they sit on hot paths.  RWMutex, Once and Cond are composed here from
Mutex and WaitList, the compiled FIFO of parked Gs.

RWMutex grants by hand-off, like Mutex: a waiting writer blocks new readers
(so writers are not starved), and when the writer unlocks, every reader that
queued meanwhile is admitted before the next writer (so readers are not
starved either).  Each grant is made by the unlocking G, with exact counts
(WaitList.notify returns how many Gs it woke), so a G that was killed while
waiting is never counted as a holder.
"""
from gmp._ext._core import Event, Mutex, Semaphore, WaitGroup, WaitList

__all__ = ["Mutex", "RWMutex", "Once", "Cond", "Semaphore", "Event", "WaitGroup"]


class RWMutex:
    """sync.RWMutex: rlock()/runlock() for readers, lock()/unlock() for one
    writer; ``with rw.rlocker():`` and ``with rw:`` blocks."""

    __slots__ = ("_readers", "_writer", "_rq", "_wq")

    def __init__(self):
        self._readers = 0
        self._writer = False
        self._rq = WaitList()
        self._wq = WaitList()

    def rlock(self):
        if not self._writer and not self._wq:
            self._readers += 1
            return
        # Granted by unlock(), which counts us in _readers before waking us.
        self._rq.wait("sync.RWMutex.RLock")

    def runlock(self):
        if self._readers <= 0:
            raise RuntimeError("runlock of unlocked RWMutex")
        self._readers -= 1
        if self._readers == 0 and self._wq:
            self._writer = self._wq.notify(1) == 1

    def lock(self):
        if not self._writer and self._readers == 0:
            self._writer = True
            return
        # Granted by unlock()/runlock(), which set _writer before waking us.
        self._wq.wait("sync.RWMutex.Lock")

    def unlock(self):
        if not self._writer:
            raise RuntimeError("unlock of unlocked RWMutex")
        self._writer = False
        if self._rq:
            self._readers += self._rq.notify_all()
        if self._readers == 0 and self._wq:
            self._writer = self._wq.notify(1) == 1

    def rlocker(self):
        """A context manager taking the read lock."""
        return _ReadLocker(self)

    def __enter__(self):
        self.lock()
        return self

    def __exit__(self, *exc):
        self.unlock()
        return False


class _ReadLocker:
    __slots__ = ("_rw",)

    def __init__(self, rw):
        self._rw = rw

    def __enter__(self):
        self._rw.rlock()
        return self._rw

    def __exit__(self, *exc):
        self._rw.runlock()
        return False


class Once:
    """sync.Once: do(fn) calls fn the first time only; concurrent callers
    wait until that first call has returned.  As in Go, a call that raised
    still counts as done."""

    __slots__ = ("_done", "_m")

    def __init__(self):
        self._done = False
        self._m = Mutex()

    def do(self, fn):
        if self._done:
            return
        with self._m:
            if not self._done:
                try:
                    fn()
                finally:
                    self._done = True


class Cond:
    """sync.Cond over a Mutex (or anything with lock()/unlock()).

    wait() unlocks, parks until signal()/broadcast() (or the timeout), and
    locks again before returning; it returns False on timeout.  No wake-up is
    lost between the unlock and the park: neither switches G."""

    __slots__ = ("L", "_w")

    def __init__(self, lock=None):
        self.L = lock if lock is not None else Mutex()
        self._w = WaitList()

    def wait(self, timeout=None):
        self.L.unlock()
        try:
            return self._w.wait("sync.Cond.Wait", timeout)
        finally:
            self.L.lock()

    def signal(self):
        self._w.notify(1)

    def broadcast(self):
        self._w.notify_all()

# Synchronisation primitives that park Gs, and the Timeout scope.
#
# Mutex, Semaphore, Event and WaitGroup are here because they sit on hot
# paths (a contended lock is one park and one ready per hand-off).  RWMutex,
# Once and Cond are built in Python (gmp/sync.py) from Mutex and WaitList.
#
# Locks hand off: unlock() passes ownership straight to the first parked G
# instead of letting a newcomer barge in.  That is Go's "starvation mode"
# made permanent: strictly FIFO and never starving, at the price of one
# switch per contended hand-off; under the GIL the barging fast path Go keeps
# for throughput buys little.
#
# Every wait takes an optional timeout and is interruptible (kill, Timeout):
# an interrupted waiter's entry goes stale through its ticket (waitq.pxi), so
# a hand-off never lands on a G that has stopped waiting.

cdef class Mutex:
    """sync.Mutex: lock(), unlock(), try_lock(), and a `with` block."""
    cdef bint locked
    cdef waitq_t waiters

    def __dealloc__(self):
        waitq_free(&self.waiters)

    def lock(self, timeout=None):
        """Acquire; with a timeout, False if it expired."""
        if not self.locked:
            self.locked = True
            return True
        return block_on(&self.waiters, None, timeout, "sync.Mutex.Lock").wakeup == WAKE_OK

    def try_lock(self):
        if self.locked:
            return False
        self.locked = True
        return True

    def unlock(self):
        if not self.locked:
            raise RuntimeError("unlock of unlocked Mutex")
        if not wake_n(&self.waiters, 1, WAKE_OK):   # else ownership passed on
            self.locked = False

    @property
    def is_locked(self):
        return self.locked

    def __enter__(self):
        self.lock()
        return self

    def __exit__(self, *exc):
        self.unlock()
        return False


cdef class Semaphore:
    """A counting semaphore: Semaphore(value=1); acquire(timeout=None) ->
    bool, release(), and a `with` block."""
    cdef Py_ssize_t value
    cdef waitq_t waiters

    def __cinit__(self, value=1):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"Semaphore value must be an int, not {type(value).__name__}")
        if value < 0:
            raise ValueError(f"Semaphore value must be >= 0, got {value}")
        self.value = value

    def __dealloc__(self):
        waitq_free(&self.waiters)

    def acquire(self, timeout=None):
        if self.value > 0:
            self.value -= 1
            return True
        return block_on(&self.waiters, None, timeout, "semacquire").wakeup == WAKE_OK

    def try_acquire(self):
        if self.value > 0:
            self.value -= 1
            return True
        return False

    def release(self):
        if not wake_n(&self.waiters, 1, WAKE_OK):
            self.value += 1

    @property
    def value(self):
        return self.value

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False


cdef class WaitList:
    """A FIFO of parked Gs: wait(reason, timeout) parks the running G until
    notify() wakes it (True) or the timeout expires (False).  The building
    block of gmp.sync's Cond, RWMutex and Once."""
    cdef waitq_t waiters

    def __dealloc__(self):
        waitq_free(&self.waiters)

    def wait(self, str reason="wait", timeout=None):
        return block_on(&self.waiters, None, timeout, reason).wakeup == WAKE_OK

    def notify(self, Py_ssize_t n=1):
        """Wakes up to n waiters; returns how many were woken."""
        return wake_n(&self.waiters, n, WAKE_OK)

    def notify_all(self):
        return self.notify(PY_SSIZE_T_MAX)

    def __bool__(self):
        return waitq_has_valid(&self.waiters)


cdef class Event:
    """A flag Gs can wait for: set(), clear(), is_set(), wait(timeout) -> bool."""
    cdef bint flag
    cdef waitq_t waiters

    def __dealloc__(self):
        waitq_free(&self.waiters)

    def is_set(self):
        return self.flag

    def set(self):
        self.flag = True
        wake_n(&self.waiters, PY_SSIZE_T_MAX, WAKE_OK)

    def clear(self):
        self.flag = False

    def wait(self, timeout=None):
        if self.flag:
            return True
        return block_on(&self.waiters, None, timeout, "Event.wait").wakeup == WAKE_OK


cdef class WaitGroup:
    """sync.WaitGroup: add(n), done(), wait(timeout=None) -> bool."""
    cdef Py_ssize_t counter
    cdef waitq_t waiters

    def __dealloc__(self):
        waitq_free(&self.waiters)

    def add(self, Py_ssize_t delta=1):
        if delta > 0 and self.counter > PY_SSIZE_T_MAX - delta:
            raise OverflowError(f"WaitGroup counter would overflow ({self.counter} + {delta})")
        if self.counter + delta < 0:
            raise ValueError("WaitGroup counter would go negative "
                             f"({self.counter} + {delta})")
        self.counter += delta
        if self.counter == 0:
            wake_n(&self.waiters, PY_SSIZE_T_MAX, WAKE_OK)

    def done(self):
        self.add(-1)

    @property
    def count(self):
        return self.counter

    def wait(self, timeout=None):
        if self.counter == 0:
            return True
        return block_on(&self.waiters, None, timeout, "sync.WaitGroup.Wait").wakeup == WAKE_OK


cdef class Timeout:
    """``with gmp.Timeout(seconds):`` raises gmp.TimeoutError in the running
    G if it is still inside the block `seconds` later: at once if it is
    parked, else at its next park point.  The error propagates out of the
    block, as with asyncio.timeout().  Timeout(None) never expires."""
    cdef object seconds
    cdef int64_t dur            # validated once: ns, or NEVER
    cdef int64_t deadline
    cdef uint64_t scope         # which `with` of this object a timer is for
    cdef G g
    cdef bint active
    cdef readonly bint expired
    cdef object exc

    def __cinit__(self, seconds):
        self.dur = NEVER if seconds is None else timeout_ns(seconds, "Timeout seconds")
        self.seconds = seconds

    def __enter__(self):
        cdef G g
        if self.active:
            raise RuntimeError("this gmp.Timeout is already entered")
        g = begin_park()
        self.g = g
        self.expired = False
        self.exc = None
        # Each scope gets its own number: a reused Timeout's earlier timer
        # (still in the heap: lazy deletion) must not expire this scope.
        self.scope += 1
        if self.dur != NEVER:
            self.deadline = gmp_nanotime() + self.dur
            theap_push(&g.home.timers, self.deadline, g, self.scope, self)
            self.active = True
        return self

    def __exit__(self, et, ev, tb):
        self.active = False
        if self.g is not None and self.g.pending is self.exc and self.exc is not None:
            self.g.pending = None
        self.g = None
        return False

    cdef int expire(self, uint64_t scope) except -1:
        if not self.active or scope != self.scope:
            return 0
        self.active = False
        self.expired = True
        self.exc = TimeoutError(f"gmp.Timeout({self.seconds!r}) expired")
        interrupt(self.g, self.exc)
        return 1

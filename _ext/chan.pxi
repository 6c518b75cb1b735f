# Channels and select, with Go's semantics.
#
# A channel is a C ring of `capacity` owned references plus two wait queues
# (waitq.pxi): parked receivers and parked senders, each waiter offering its
# G, its park ticket and, for a sender, the value.  The invariants are Go's:
# receivers wait only when the buffer is empty, senders only when it is full
# (for an unbuffered channel: always, until a partner comes).  A hand-off
# writes the value straight into the partner G (G.wakeval) and readies it
# with next=True, so the partner runs next on this P: the channel ping-pong
# is one direct greenlet switch each way.
#
# Python has no zero values, so the API raises where Go would return one:
# receive from a closed and drained channel raises ChanClosed (iteration
# stops there), send on a closed channel raises ChanClosed (Go panics), and
# select reports a closed receive case as (index, None, False) like Go's
# `v, ok := <-ch`.
#
# select polls the cases in a random order (uniform over permutations, so a
# ready case is chosen uniformly among the ready ones) and takes the first
# ready one; with none ready it returns at once if default=True, otherwise it
# enqueues one waiter per case, all carrying the same ticket, and parks.  The
# first partner to pop any of them bumps the ticket, which withdraws the rest.
#
# Every wake-up goes through goready() with the waiter's ticket (the
# invariant in park.pxi); a hand-off whose partner refuses it (never the
# case while the invariant holds) moves on to the next waiter, so a value is
# never dropped.  A timeout is validated before any waiter is registered.
#
# A receive-only channel (a Context's done(), as Go's `<-chan struct{}`)
# refuses send and close with TypeError; its owner closes it through
# _close_receive_only().
#
# Relies on the GIL for atomicity of the buffer and the queues (see waitq.pxi).

cdef class Chan:
    """A Go channel: gmp.Chan(capacity=0)."""
    cdef readonly Py_ssize_t cap
    cdef PyObject** buf
    cdef Py_ssize_t head
    cdef Py_ssize_t count
    cdef readonly bint closed
    cdef bint recvonly
    cdef waitq_t recvq
    cdef waitq_t sendq

    def __cinit__(self, capacity=0):
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"Chan capacity must be an int, not {type(capacity).__name__}")
        if capacity < 0:
            raise ValueError(f"Chan capacity must be >= 0, got {capacity}")
        self.cap = capacity
        if capacity:
            self.buf = <PyObject**>malloc(capacity * sizeof(PyObject*))
            if self.buf == NULL:
                raise MemoryError()

    def __dealloc__(self):
        cdef Py_ssize_t i
        for i in range(self.count):
            _decref(self.buf[(self.head + i) % self.cap])
        free(self.buf)
        waitq_free(&self.recvq)
        waitq_free(&self.sendq)

    def __len__(self):
        return self.count

    def __repr__(self):
        state = " closed" if self.closed else ""
        return f"<gmp.Chan {self.count}/{self.cap}{state}>"

    cdef inline void buf_put(self, object v) noexcept:
        _incref(<PyObject*>v)
        self.buf[(self.head + self.count) % self.cap] = <PyObject*>v
        self.count += 1

    cdef inline object buf_get(self):
        cdef PyObject* r = self.buf[self.head]
        cdef object v = <object>r
        _decref(r)
        self.head += 1
        if self.head == self.cap:
            self.head = 0
        self.count -= 1
        return v

    cdef int try_send_c(self, object v) except -1:
        """1 if v was delivered or buffered, 0 if the send would block."""
        cdef waiter_t w
        cdef int woke
        if self.closed:
            raise ChanClosed("send on closed channel")
        if self.recvonly:
            raise TypeError("send on a receive-only channel")
        while waitq_pop(&self.recvq, &w):
            try:
                woke = wake(<G>w.g, &w, v, WAKE_OK)
            finally:
                waiter_release(&w)
            if woke:
                return 1
        if self.count < self.cap:
            self.buf_put(v)
            return 1
        return 0

    cdef object try_recv_c(self, int* status):
        """Takes a value without blocking.  status: 1 if one was taken (and
        returned), 0 if the receive would block, -2 if closed and drained."""
        cdef waiter_t w
        cdef object v
        cdef int woke
        if self.count:
            v = self.buf_get()
            while waitq_pop(&self.sendq, &w):
                # A sender was waiting for room: its value joins the tail.
                try:
                    woke = wake(<G>w.g, &w, None, WAKE_OK)
                    if woke:
                        self.buf_put(<object>w.elem)
                finally:
                    waiter_release(&w)
                if woke:
                    break
            status[0] = 1
            return v
        while waitq_pop(&self.sendq, &w):
            try:
                woke = wake(<G>w.g, &w, None, WAKE_OK)
                if woke:
                    v = <object>w.elem
            finally:
                waiter_release(&w)
            if woke:
                status[0] = 1
                return v
        status[0] = -2 if self.closed else 0
        return None

    def send(self, v, timeout=None):
        """Send v, blocking until a receiver takes it or buffer room frees."""
        cdef G g
        if self.try_send_c(v):
            return
        g = block_on(&self.sendq, v, timeout, "chan send")
        if g.wakeup == WAKE_OK:
            return
        if g.wakeup == WAKE_CLOSED:
            raise ChanClosed("send on closed channel")
        raise TimeoutError(f"send did not complete within {timeout!r} s")

    def recv(self, timeout=None):
        """Receive a value, blocking until one is available.

        Raises ChanClosed once the channel is closed and drained."""
        cdef G g
        cdef int r
        cdef object v = self.try_recv_c(&r)
        if r == 1:
            return v
        if r == -2:
            raise ChanClosed("receive from closed channel")
        g = block_on(&self.recvq, None, timeout, "chan receive")
        if g.wakeup == WAKE_OK:
            v = g.wakeval
            g.wakeval = None
            return v
        if g.wakeup == WAKE_CLOSED:
            raise ChanClosed("receive from closed channel")
        raise TimeoutError(f"receive did not complete within {timeout!r} s")

    def try_send(self, v):
        """Send without blocking; False if no receiver and no room."""
        return self.try_send_c(v) == 1

    def try_recv(self):
        """Receive without blocking: (value, True), or (None, False) if the
        channel is empty.  Raises ChanClosed if closed and drained."""
        cdef int r
        cdef object v = self.try_recv_c(&r)
        if r == 1:
            return (v, True)
        if r == -2:
            raise ChanClosed("receive from closed channel")
        return (None, False)

    def close(self):
        """Close: parked receivers get ChanClosed (or ok=False in select),
        parked senders get ChanClosed.  Buffered values stay receivable."""
        if self.recvonly:
            raise TypeError("close of a receive-only channel (a context's done(): "
                            "cancel the context instead)")
        self._close_receive_only()

    def _close_receive_only(self):
        """close() for the owner of a receive-only channel."""
        if self.closed:
            raise ChanClosed("close of closed channel")
        self.closed = True
        wake_n(&self.recvq, PY_SSIZE_T_MAX, WAKE_CLOSED)
        wake_n(&self.sendq, PY_SSIZE_T_MAX, WAKE_CLOSED)

    def _receive_only(self):
        """Makes send and close raise TypeError (for a Context's done())."""
        self.recvonly = True

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self.recv()
        except ChanClosed:
            raise StopIteration from None


cdef class Recv:
    """A receive case for gmp.select."""
    cdef Chan ch

    def __cinit__(self, Chan ch not None):
        self.ch = ch


cdef class Send:
    """A send case for gmp.select."""
    cdef Chan ch
    cdef object value

    def __cinit__(self, Chan ch not None, value):
        self.ch = ch
        self.value = value


cdef enum:
    SELECT_STACK = 16


def select(*cases, default=False, timeout=None):
    """Go's select: (index, value, ok) of the case that proceeded.

    Cases are gmp.Recv(ch) and gmp.Send(ch, v).  A Recv case yields the value
    and ok=True, or (None, False) if its channel is closed; a Send case
    yields (None, True) and raises ChanClosed if its channel is closed.  With
    default=True and no case ready, or when timeout expires, returns
    (-1, None, False).  With no cases and neither, parks forever."""
    cdef Py_ssize_t n = len(cases)
    cdef int order_stack[SELECT_STACK]
    cdef int* order = order_stack
    cdef int i, j, k
    cdef object c
    cdef Chan ch
    cdef object v
    cdef int r
    cdef G g
    cdef int64_t dl = NEVER
    if default and timeout is not None:
        raise ValueError("select: give default=True or a timeout, not both")
    if timeout is not None:
        dl = deadline_after(timeout_ns(timeout, "timeout"))
    for i in range(n):
        c = cases[i]
        if type(c) is not Recv and type(c) is not Send:
            raise TypeError(f"select case {i} must be gmp.Recv or gmp.Send, "
                            f"not {type(c).__name__}")
    if n > SELECT_STACK:
        order = <int*>malloc(n * sizeof(int))
        if order == NULL:
            raise MemoryError()
    try:
        # Fisher-Yates: a uniformly random poll order.
        for i in range(n):
            j = gmp_fastrandn(i + 1)
            order[i] = order[j]
            order[j] = i
        for k in range(n):
            i = order[k]
            c = cases[i]
            if type(c) is Recv:
                v = (<Recv>c).ch.try_recv_c(&r)
                if r == 1:
                    return (i, v, True)
                if r == -2:
                    return (i, None, False)
            elif (<Send>c).ch.try_send_c((<Send>c).value):
                return (i, None, True)
        if default:
            return (-1, None, False)
        g = begin_park()
        try:
            for i in range(n):
                c = cases[i]
                if type(c) is Recv:
                    waitq_push(&(<Recv>c).ch.recvq, g, None, i)
                else:
                    waitq_push(&(<Send>c).ch.sendq, g, (<Send>c).value, i)
            add_timer(g, dl)
        except BaseException:
            withdraw(g)
            raise
    finally:
        if order != order_stack:
            free(order)
    park(g, "select" if n else "select (no cases)")
    if g.wakeup == WAKE_TIMEOUT:
        return (-1, None, False)
    i = g.wakecase
    if not 0 <= i < n:
        raise SystemError(f"gmp select woken for case {i} of {n}: a wake-up of another park")
    if g.wakeup == WAKE_CLOSED:
        if type(cases[i]) is Send:
            raise ChanClosed("send on closed channel")
        return (i, None, False)
    v = g.wakeval
    g.wakeval = None
    if type(cases[i]) is Send:
        return (i, None, True)
    return (i, v, True)

# Wait queues: the Gs parked on a channel, a lock, a join, ...
#
# A waiter is a C struct, not an object: (G, ticket, elem, case index).
# Go keeps a doubly linked list of sudogs and unlinks a G from every queue
# it sat on when it wakes.  We invalidate instead: every G carries a park
# ticket, a waiter is valid only while its ticket equals the G's, and whoever
# wakes a G bumps the ticket first.  One increment therefore withdraws a
# select's waiters from all its channels at once, and a timeout or a kill
# needs no knowledge of where the G was parked.  Stale waiters are dropped
# when they reach the head, and the queue compacts itself when stale ones
# could otherwise pile up (a G that repeatedly times out on a quiet channel).
#
# Relies on the GIL: a waiter is registered and its G parked with no Python
# code in between, so no other M can observe the half-parked state.  A
# free-threaded build needs a per-queue lock and Go's selectDone CAS.

cdef inline bint waiter_valid(waiter_t* w) noexcept:
    return (<G>w.g).ticket == w.ticket


cdef void waitq_compact(waitq_t* q) noexcept:
    cdef Py_ssize_t i, j = 0
    cdef waiter_t w
    for i in range(q.n):
        w = q.buf[(q.head + i) % q.cap]
        if waiter_valid(&w):
            q.buf[(q.head + j) % q.cap] = w
            j += 1
        else:
            _decref(w.g)
            _xdecref(w.elem)
    q.n = j
    q.live_hint = j


cdef int waitq_push(waitq_t* q, G g, object elem, int idx) except -1:
    """Registers g (with its current ticket) at the tail."""
    cdef Py_ssize_t newcap, i
    cdef waiter_t* nb
    cdef waiter_t* w
    if q.n == q.cap and q.n > 2 * q.live_hint + 8:
        waitq_compact(q)
    if q.n == q.cap:
        newcap = q.cap * 2 if q.cap else 4
        nb = <waiter_t*>malloc(newcap * sizeof(waiter_t))
        if nb == NULL:
            raise MemoryError()
        for i in range(q.n):
            nb[i] = q.buf[(q.head + i) % q.cap]
        free(q.buf)
        q.buf = nb
        q.head = 0
        q.cap = newcap
    w = &q.buf[(q.head + q.n) % q.cap]
    w.g = <PyObject*>g
    _incref(w.g)
    w.ticket = g.ticket
    if elem is None:
        w.elem = NULL
    else:
        w.elem = <PyObject*>elem
        _incref(w.elem)
    w.idx = idx
    q.n += 1
    return 0


cdef bint waitq_pop(waitq_t* q, waiter_t* out) noexcept:
    """Pops the first valid waiter into out (caller owns its references)."""
    cdef waiter_t* w
    while q.n:
        w = &q.buf[q.head]
        q.head += 1
        if q.head == q.cap:
            q.head = 0
        q.n -= 1
        if waiter_valid(w):
            out[0] = w[0]
            return True
        _decref(w.g)
        _xdecref(w.elem)
    q.live_hint = 0
    return False


cdef bint waitq_has_valid(waitq_t* q) noexcept:
    """True if a valid waiter is queued; drops stale ones from the head."""
    cdef waiter_t* w
    while q.n:
        w = &q.buf[q.head]
        if waiter_valid(w):
            return True
        q.head += 1
        if q.head == q.cap:
            q.head = 0
        q.n -= 1
        _decref(w.g)
        _xdecref(w.elem)
    return False


cdef inline void waiter_release(waiter_t* w) noexcept:
    _decref(w.g)
    _xdecref(w.elem)


cdef void waitq_free(waitq_t* q) noexcept:
    cdef waiter_t w
    while waitq_pop(q, &w):
        waiter_release(&w)
    free(q.buf)
    q.buf = NULL
    q.cap = q.n = q.head = 0

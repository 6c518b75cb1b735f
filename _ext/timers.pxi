# Timers: a 4-ary min-heap per P, ordered by due time (monotonic ns).
#
# An entry is a C struct.  Three kinds, told apart by obj:
#   obj == NULL      wake g when due if g.ticket still equals ticket
#                    (sleep, and the timeouts of send/recv/select/join/...);
#   obj is Timeout   a `with gmp.Timeout(s)` scope: interrupt g if the scope
#                    is still active and is the one numbered ticket;
#   obj is TimerFunc an internal callback run in scheduler context (Context
#                    deadlines); it must not block.
# Deletion is lazy, as in Go before 1.14: a timer whose G already woke, whose
# scope was left or whose callback was cancelled stays in the heap and is
# discarded when it reaches the top.  So that stale timers with long timeouts
# cannot pile up, the heap is swept of them whenever it has doubled since the
# last sweep.  A 4-ary heap is shallower than a binary one and its children
# share a cache line, which is why Go uses it.

cdef inline void theap_siftup(timer_t* a, Py_ssize_t i) noexcept nogil:
    cdef timer_t t = a[i]
    cdef Py_ssize_t parent
    while i > 0:
        parent = (i - 1) >> 2
        if a[parent].when <= t.when:
            break
        a[i] = a[parent]
        i = parent
    a[i] = t


cdef inline void theap_siftdown(timer_t* a, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    cdef timer_t t = a[i]
    cdef Py_ssize_t c, m, end
    cdef int64_t w
    while True:
        c = 4 * i + 1
        if c >= n:
            break
        m = c
        w = a[c].when
        end = c + 4 if c + 4 < n else n
        c += 1
        while c < end:
            if a[c].when < w:
                w = a[c].when
                m = c
            c += 1
        if w >= t.when:
            break
        a[i] = a[m]
        i = m
    a[i] = t


cdef bint timer_stale(timer_t* t) noexcept:
    if t.obj == NULL:
        return (<G>t.g).ticket != t.ticket
    if type(<object>t.obj) is Timeout:
        return not (<Timeout>t.obj).active or (<Timeout>t.obj).scope != t.ticket
    return (<TimerFunc>t.obj).cancelled


cdef void theap_sweep(theap_t* h) noexcept:
    """Drops stale timers and re-heapifies (O(n))."""
    cdef Py_ssize_t i, j = 0
    for i in range(h.n):
        if timer_stale(&h.a[i]):
            _xdecref(h.a[i].g)
            _xdecref(h.a[i].obj)
        else:
            h.a[j] = h.a[i]
            j += 1
    h.n = j
    if j > 1:
        i = (j - 2) >> 2
        while i >= 0:
            theap_siftdown(h.a, j, i)
            i -= 1
    h.swept_n = j


cdef int theap_push(theap_t* h, int64_t when, G g, uint64_t ticket, object obj) except -1:
    cdef Py_ssize_t newcap
    cdef timer_t* na
    if h.n == h.cap and h.n >= 64 and h.n > 2 * h.swept_n:
        theap_sweep(h)
    if h.n == h.cap:
        newcap = h.cap * 2 if h.cap else 16
        na = <timer_t*>realloc(h.a, newcap * sizeof(timer_t))
        if na == NULL:
            raise MemoryError()
        h.a = na
        h.cap = newcap
    h.a[h.n].when = when
    h.a[h.n].g = <PyObject*>g if g is not None else NULL
    _xincref(h.a[h.n].g)
    h.a[h.n].ticket = ticket
    h.a[h.n].obj = <PyObject*>obj if obj is not None else NULL
    _xincref(h.a[h.n].obj)
    theap_siftup(h.a, h.n)
    h.n += 1
    return 0


cdef inline void _xincref(PyObject* o) noexcept:
    if o != NULL:
        _incref(o)


cdef inline int64_t theap_next(theap_t* h) noexcept nogil:
    """Due time of the earliest timer, or -1 if none."""
    return h.a[0].when if h.n else -1


cdef void theap_pop(theap_t* h, timer_t* out) noexcept nogil:
    """Removes the earliest timer into out (caller owns its references)."""
    out[0] = h.a[0]
    h.n -= 1
    if h.n:
        h.a[0] = h.a[h.n]
        theap_siftdown(h.a, h.n, 0)


cdef bint theap_drop_stale_top(theap_t* h) noexcept:
    """Discards stale timers at the top; True if a live one remains."""
    cdef timer_t t
    while h.n:
        if not timer_stale(&h.a[0]):
            return True
        theap_pop(h, &t)
        _xdecref(t.g)
        _xdecref(t.obj)
    return False


cdef void theap_free(theap_t* h) noexcept:
    cdef Py_ssize_t i
    for i in range(h.n):
        _xdecref(h.a[i].g)
        _xdecref(h.a[i].obj)
    free(h.a)
    h.a = NULL
    h.n = h.cap = h.swept_n = 0


cdef class TimerFunc:
    """An internal timer callback (see the module notes); cancel() is lazy."""
    cdef object fn
    cdef bint cancelled

    def cancel(self):
        self.cancelled = True

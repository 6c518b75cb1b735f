# Run queues.
#
# Every P has three queues, because of greenlet's one hard rule (a started
# greenlet never changes thread):
#
#   runq    fresh Gs (never started, so stealable).  Go's runq exactly: a
#           256-slot ring, the owner pushes at tail (store-release), anyone
#           pops at head with a CAS.  Thieves read a batch of slots and then
#           CAS head forward; if the CAS fails they read again, so racy slot
#           reads are harmless.  When the ring is full, half of it plus the
#           new G move to the global queue in one batch (Go's runqputslow).
#   boundq  bound Gs (started on this P's M) readied on this P.  Only the
#           owner touches it, so it is a plain growable ring.
#   inbox   bound Gs readied by another thread.  A mutex-protected singly
#           linked list through G.schedlink; the owner drains it into boundq.
#
# Which of runq and boundq goes next is decided by G.readyseq, a per-P
# counter stamped when a G is queued: the two rings together are one FIFO.
#
# The global queue holds fresh Gs only (linked through G.schedlink) behind a
# mutex, with an atomic size so the hot path checks emptiness without it.
#
# There is one global queue per NUMA node (nodeq_t, a C array in Sched sized
# by the distinct nodes among the Ps; one in the common case).  A G that
# overflows a runq, or that a policy places globally, was created by a G on
# that P's node and will most likely touch the same memory again: it goes to
# the placing P's node's queue, and a P pulls from its own node's queue
# before the others' (schedule.pxi, globrunqget).  Each queue has its own lock
# and its own cache lines (nodeq_t.pad), so the two nodes' Ps do not bounce a
# shared lock or counter between sockets; that is also why there is no
# atomic total beside the per-queue sizes: gq_total() sums them (one load on
# one node, a handful on a big machine), where a shared total would be the
# very cross-node line the split avoids and a second atomic add per push.
# A policy without local queues (the `global` baseline) keeps ONE queue on
# any machine: its point is one FIFO of every fresh G, and a FIFO split by
# node is no longer a FIFO.
#
# Every slot holds an owned reference.  No Python code runs while a mutex is
# held (no DECREF inside), so holding one can never wait for the GIL.

# --- runq: the lock-free ring of fresh Gs ---------------------------------

cdef inline bint runq_empty(runq_t* q) noexcept nogil:
    return gmp_load_acq_u32(&q.head) == gmp_load_acq_u32(&q.tail)

cdef inline uint32_t runq_len(runq_t* q) noexcept nogil:
    return gmp_load_acq_u32(&q.tail) - gmp_load_acq_u32(&q.head)

cdef void runq_put(P p, G g) noexcept:
    """Owner only. Takes a new reference to g."""
    cdef runq_t* q = &p.runq
    cdef uint32_t h, t
    _incref(<PyObject*>g)
    while True:
        h = gmp_load_acq_u32(&q.head)
        t = q.tail
        if t - h < RUNQ_SIZE:
            q.buf[t & RUNQ_MASK] = <PyObject*>g
            gmp_store_rel_u32(&q.tail, t + 1)
            return
        if runq_put_slow(p, <PyObject*>g, h, t):
            return


cdef bint runq_put_slow(P p, PyObject* g, uint32_t h, uint32_t t) noexcept:
    """Move half of the full ring plus g to p's node's global queue (owned refs)."""
    cdef runq_t* q = &p.runq
    cdef uint32_t n = (t - h) // 2
    cdef uint32_t i
    cdef PyObject* batch[RUNQ_HALF + 1]
    for i in range(n):
        batch[i] = q.buf[(h + i) & RUNQ_MASK]
    if not gmp_cas_rel_u32(&q.head, h, h + n):
        return False
    batch[n] = g
    for i in range(n):
        (<G>batch[i]).schedlink = batch[i + 1]
    (<G>g).schedlink = NULL
    gq_put_batch(p, batch[0], g, n + 1)
    return True


cdef PyObject* runq_get(runq_t* q) noexcept nogil:
    """Owner pop; returns an owned reference or NULL."""
    cdef uint32_t h, t
    cdef PyObject* g
    while True:
        h = gmp_load_acq_u32(&q.head)
        t = q.tail
        if t == h:
            return NULL
        g = q.buf[h & RUNQ_MASK]
        if gmp_cas_rel_u32(&q.head, h, h + 1):
            return g


cdef inline PyObject* runq_peek(runq_t* q) noexcept nogil:
    cdef uint32_t h = gmp_load_acq_u32(&q.head)
    if h == q.tail:
        return NULL
    return q.buf[h & RUNQ_MASK]


cdef uint32_t runq_steal(P thief, P victim, uint32_t maxn) noexcept:
    """Move half of victim's fresh Gs (at most maxn if maxn) into thief's
    (empty) runq.

    Returns how many were taken; they are visible to thief.runq afterwards.
    The readyseq of each stolen G is restamped so thief's FIFO stays ordered.
    """
    cdef runq_t* vq = &victim.runq
    cdef runq_t* tq = &thief.runq
    cdef uint32_t h, t, n, i, tt
    while True:
        h = gmp_load_acq_u32(&vq.head)
        t = gmp_load_acq_u32(&vq.tail)
        n = t - h
        n = n - n // 2
        if n == 0 or n > RUNQ_HALF + 1:
            if n == 0:
                return 0
            continue          # inconsistent h/t read; retry
        if maxn and n > maxn:
            n = maxn
        tt = tq.tail
        for i in range(n):
            tq.buf[(tt + i) & RUNQ_MASK] = vq.buf[(h + i) & RUNQ_MASK]
        if gmp_cas_rel_u32(&vq.head, h, h + n):
            for i in range(n):
                thief.readyseq += 1
                (<G>tq.buf[(tt + i) & RUNQ_MASK]).readyseq = thief.readyseq
            gmp_store_rel_u32(&tq.tail, tt + n)
            return n


# --- ring: owner-only growable FIFO of bound Gs ---------------------------

cdef int ring_push(ring_t* r, PyObject* g) except -1:
    """Appends g, taking over the caller's reference."""
    cdef Py_ssize_t newcap, i
    cdef PyObject** nb
    if r.n == r.cap:
        newcap = r.cap * 2 if r.cap else 64
        nb = <PyObject**>malloc(newcap * sizeof(PyObject*))
        if nb == NULL:
            raise MemoryError()
        for i in range(r.n):
            nb[i] = r.buf[(r.head + i) % r.cap]
        free(r.buf)
        r.buf = nb
        r.head = 0
        r.cap = newcap
    r.buf[(r.head + r.n) % r.cap] = g
    r.n += 1
    return 0

cdef inline PyObject* ring_peek(ring_t* r) noexcept nogil:
    if r.n == 0:
        return NULL
    return r.buf[r.head]

cdef inline PyObject* ring_pop(ring_t* r) noexcept nogil:
    cdef PyObject* g
    if r.n == 0:
        return NULL
    g = r.buf[r.head]
    r.head += 1
    if r.head == r.cap:
        r.head = 0
    r.n -= 1
    return g

cdef void ring_clear(ring_t* r) noexcept:
    cdef PyObject* g = ring_pop(r)
    while g != NULL:
        _decref(g)
        g = ring_pop(r)
    free(r.buf)
    r.buf = NULL
    r.cap = 0


# --- gqueue: the global queue, and each P's inbox --------------------------

cdef void gqueue_init(gqueue_t* q) noexcept:
    pthread_mutex_init(&q.lock, NULL)
    q.head = q.tail = NULL
    q.size = 0

cdef void gqueue_push_batch(gqueue_t* q, PyObject* first, PyObject* last, int64_t n) noexcept:
    """Appends a schedlink-chained batch of owned references."""
    pthread_mutex_lock(&q.lock)
    if q.tail == NULL:
        q.head = first
    else:
        (<G>q.tail).schedlink = first
    q.tail = last
    gmp_add_i64(&q.size, n)
    pthread_mutex_unlock(&q.lock)

cdef inline void gqueue_push(gqueue_t* q, PyObject* g) noexcept:
    (<G>g).schedlink = NULL
    gqueue_push_batch(q, g, g, 1)

cdef PyObject* gqueue_take(gqueue_t* q, int64_t n, int64_t* got) noexcept:
    """Detaches up to n Gs from the head; returns the chain (owned refs)."""
    cdef PyObject* first
    cdef PyObject* last
    cdef int64_t k = 0
    pthread_mutex_lock(&q.lock)
    first = q.head
    last = NULL
    while k < n and q.head != NULL:
        last = q.head
        q.head = (<G>last).schedlink
        k += 1
    if q.head == NULL:
        q.tail = NULL
    if last != NULL:
        (<G>last).schedlink = NULL
    gmp_add_i64(&q.size, -k)
    pthread_mutex_unlock(&q.lock)
    got[0] = k
    return first if k else NULL

cdef void gqueue_clear(gqueue_t* q) noexcept:
    cdef int64_t got
    cdef PyObject* g = gqueue_take(q, 1 << 62, &got)
    cdef PyObject* nxt
    while g != NULL:
        nxt = (<G>g).schedlink
        (<G>g).schedlink = NULL
        _decref(g)
        g = nxt
    pthread_mutex_destroy(&q.lock)


cdef inline void gq_put_batch(P p, PyObject* first, PyObject* last, int64_t n) noexcept:
    gqueue_push_batch(&sched.gqs[p.gqi].q, first, last, n)


cdef inline int64_t gqs_size(nodeq_t* qs, int n) noexcept nogil:
    """Gs in all the node queues (racy without the GIL; exact with it,
    since every push and take holds the GIL)."""
    cdef int64_t s = gmp_load_i64(&qs[0].q.size)
    cdef int i
    for i in range(1, n):
        s += gmp_load_i64(&qs[i].q.size)
    return s

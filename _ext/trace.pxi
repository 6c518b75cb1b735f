# The scheduler trace (Go's runtime/trace; gmp/trace.py turns it into Chrome
# trace-event JSON).
#
# While obs_flags & OBS_TRACE is set, the transition hooks of latency.pxi
# append fixed-size events (gmp_c.h: ts, G id, argument, kind) to a ring
# per M, allocated by the M's own thread on its first event, so each ring
# has one producer and needs no lock; the reader (gmp.trace's drain thread)
# frees slots with a store-release.  Memory is bounded by TRACE_CAP events
# per M: when a ring is full the event is dropped and counted, and the
# reader puts a marker where the count moved.  Events from threads that are
# not Ms (blocking-pool helpers, a foreign thread's inject(), GC callbacks
# there) go to one extra ring; its producers are serialised by the GIL,
# which this ring still relies on.
#
# Kinds: created (arg: parent G), ready (arg: the waking G, 0 from the
# netpoller, a timer or another thread), run, park (arg: wait-reason code),
# yield, exit, stolen, idle (arg: wake time; ts: sleep start) with the GIL
# wait after it (gil: ts, arg end), blocking-pool call begin/end, GC begin/
# end.

cdef extern from "gmp_c.h" nogil:
    ctypedef struct gmp_tevent_t:
        int64_t ts
        int64_t gid
        int64_t arg
        int32_t kind
        int32_t tid
    ctypedef struct gmp_tring_t:
        uint32_t dropped
    gmp_tring_t* gmp_tring_new(uint32_t)
    void gmp_tring_free(gmp_tring_t*)
    void gmp_tring_put(gmp_tring_t*, int32_t, int64_t, int64_t, int64_t, int32_t)
    uint32_t gmp_tring_take(gmp_tring_t*, gmp_tevent_t*, uint32_t)

cdef extern from "<sys/syscall.h>" nogil:
    enum:
        SYS_gettid
    long syscall(long, ...)

cdef enum:
    TR_CREATED = 1
    TR_READY = 2
    TR_RUN = 3
    TR_PARK = 4
    TR_YIELD = 5
    TR_EXIT = 6
    TR_STOLEN = 7
    TR_IDLE = 8
    TR_GIL = 9
    TR_BLOCK_B = 10
    TR_BLOCK_E = 11
    TR_GC_B = 12
    TR_GC_E = 13

cdef enum:
    TRACE_MAXM = 1024
    TRACE_TAKE = 4096

cdef uint32_t trace_cap = 1 << 16
cdef gmp_tring_t* trings[TRACE_MAXM + 1]
trace_gs = {}               # G id -> G, from its creation until trace_take reads it


cdef inline unsigned int ring_index(int mid) noexcept:
    """The ring of M `mid`; the last one for threads that are not Ms (-1).
    Unsigned, so a negative id cannot index below the array."""
    cdef unsigned int i = <unsigned int>mid
    return i if i < TRACE_MAXM else TRACE_MAXM


cdef void trace_put(int mid, int32_t kind, int64_t gid, int64_t arg, int64_t ts) noexcept:
    cdef unsigned int i = ring_index(mid)
    cdef gmp_tring_t* r = trings[i]
    if r == NULL:
        r = gmp_tring_new(trace_cap)
        if r == NULL:
            return
        trings[i] = r
    gmp_tring_put(r, kind, gid, arg, ts, <int32_t>syscall(SYS_gettid) if i == TRACE_MAXM else 0)


cdef void trace_created(M m, G g, int64_t ts) noexcept:
    trace_gs[g.id] = g
    trace_put(m.id if m is not None else -1, TR_CREATED, g.id,
              m.curgid if m is not None else 0, ts)


cdef void trace_idle(int mid, int64_t start, int64_t woke, int64_t now) noexcept:
    if start and woke:
        trace_put(mid, TR_IDLE, 0, woke, start)
        trace_put(mid, TR_GIL, 0, now, woke)


def trace_enable(bint on, uint32_t capacity=1 << 16):
    """Turn the trace hooks on, with new empty rings of `capacity` events
    per M (a power of two), or off (the rings stay to be drained)."""
    global obs_flags, trace_cap
    cdef int i
    if on:
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two >= 2, got {capacity}")
        # A fresh start: the last trace's rings go.  Safe with the GIL held
        # and tracing off: every producer runs its hook with the GIL.
        obs_flags &= ~OBS_TRACE
        for i in range(TRACE_MAXM + 1):
            if trings[i] != NULL:
                gmp_tring_free(trings[i])
                trings[i] = NULL
        trace_gs.clear()
        trace_cap = capacity
        obs_flags |= OBS_TRACE
    else:
        obs_flags &= ~OBS_TRACE


def trace_event(int kind, int64_t gid=0, int64_t arg=0):
    """Appends an event from Python (GC callbacks) to the calling thread's
    ring: its M's, or the shared one of other threads."""
    cdef M m = getm()
    if obs_flags & OBS_TRACE:
        trace_put(m.id if m is not None else -1, kind, gid, arg, gmp_nanotime())


def trace_take(int ring):
    """(events as bytes, dropped so far, names) from ring `ring` (an M id,
    or -1 for the threads that are not Ms): names lists (G id, name) of
    the Gs created in this batch, which are then forgotten.
    (b"", 0, []) if the ring does not exist yet."""
    cdef unsigned int i = ring_index(ring)
    cdef gmp_tring_t* r = trings[i]
    cdef gmp_tevent_t* buf
    cdef uint32_t k, j
    cdef list names = []
    if r == NULL:
        return b"", 0, names
    buf = <gmp_tevent_t*>malloc(TRACE_TAKE * sizeof(gmp_tevent_t))
    if buf == NULL:
        raise MemoryError()
    try:
        k = gmp_tring_take(r, buf, TRACE_TAKE)
        for j in range(k):
            if buf[j].kind == TR_CREATED:
                g = trace_gs.pop(buf[j].gid, None)
                if g is not None:
                    names.append((buf[j].gid, g.name))
        return (<char*>buf)[:k * sizeof(gmp_tevent_t)], gmp_load_acq_u32(&r.dropped), names
    finally:
        free(buf)


def trace_rings():
    """The ring indexes that exist (M ids, and -1 for other threads)."""
    cdef int i
    out = [i for i in range(TRACE_MAXM) if trings[i] != NULL]
    if trings[TRACE_MAXM] != NULL:
        out.append(-1)
    return out


def trace_reasons():
    """Wait-reason names by code."""
    return list(reason_names)


def trace_m_tids():
    """{M id: native thread id} of the running runtime."""
    cdef M m
    if sched is None:
        return {}
    return {m.id: m.native_tid for m in sched.ms}

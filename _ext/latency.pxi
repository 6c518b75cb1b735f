# Latency sampling: where a request's time went (gmp/latency.py is the API).
#
# Per-G accounting.  While sampling is on (obs_flags & OBS_LAT) every G keeps
# G.lacct: the time of its last transition (`since`), the bucket the time
# since then belongs to (`state`) and one ns accumulator per bucket:
#
#   LB_RUNQ     runnable, waiting in a run queue
#   LB_GIL      runnable or just woken, while its M waited for the GIL
#   LB_RUN      running on its M
#   LB_IO .. LB_OTHER   parked, by wait reason (IO wait, chan/select, locks,
#               the blocking pool, sleep, anything else)
#   LB_HELD     runnable while its M ran *another* G for >= hold_ns
#
# Each transition hook (the obs_* functions, called from proc.pxi, park.pxi and
# netpoll.pxi behind one `if obs_flags:` test) adds now - since to the
# current bucket: one clock read and a few integer operations.
#
# Attribution.  When a runnable G finally runs, its runnable interval is
# split three ways.  Each P remembers its last HOLD_RING run segments that
# lasted >= hold_ns (an "incident": which G, when), and its last GIL wait
# (from the return of the GIL-free epoll_wait to getting the GIL back,
# netpoll.pxi).  The overlap with incidents goes to LB_HELD (the longest one
# names the holder in the record), the overlap with the GIL wait to LB_GIL,
# the rest to LB_RUNQ.  A parked G woken by that same netpoll also has the
# GIL wait cut from the end of its park.  Decisions where the issue is
# silent: a G's time is charged to the P it was queued on (a stolen fresh G
# waited on its victim); a long segment of one G on another M (the GIL held
# by Python on another thread) shows up as LB_RUNQ or LB_RUN, not as
# LB_HELD, because gmp cannot see inside the eval loop's GIL hand-offs; a
# parked G whose wake-up was late because its M was busy (an expired timer
# or I/O nobody polled) is charged to its wait reason.  The holder's Python
# stack is captured once per incident, when the incident ends, by
# lat_incident() into a small table (gmp.latency reads it): at a park the
# holder's own frames are live (so the stack shows where it let go of the
# M, the code just after the long run, not a sample inside it); at its exit
# only its function is known.  HOLD_RING is 64 so that the short incidents
# a loaded machine produces (an OS preemption of > hold_ns) do not push a
# long one out while the Gs it delayed still wait.
#
# Requests.  lat_begin() in the request's G snapshots its accumulators
# (for a G spawned per request: none, they count from its birth); lat_end()
# subtracts the snapshot, decides whether to keep the record (errors and requests slower than
# the class's threshold always, else 1 in `every`, per class) and appends it
# to the record ring (gmp_c.h), whose operations need no GIL (the
# ring's tests append from 4 threads without it: _lat_stress).  Here they
# run with the GIL held anyway (they take well under a microsecond), so
# that lat_enable() can replace the ring without racing a writer or the
# drain thread; a free-threaded build would need to retire old rings
# instead of freeing them.  A record kept 1-in-N
# carries weight N, an always-kept one weight 1, so percentiles over the
# records estimate those of every request.  Requests may nest (a server's
# per-connection request around a handler's per-message ones); the holder
# a record names is the longest since the innermost begin.

cimport cython
from libc.stdint cimport uint16_t

cdef extern from "gmp_c.h" nogil:
    ctypedef struct gmp_latrec_t:
        uint64_t trace_id
        int64_t start_ns
        int64_t latency_ns
        int64_t gid
        int64_t b[GMP_LB_N]
        int64_t held_gid
        int64_t held_inc
        int32_t status
        uint16_t cls
        uint16_t why
        uint32_t weight
        uint32_t pad
    ctypedef struct gmp_latring_t:
        uint64_t dropped
        uint64_t appended
        uint64_t mask
    int gmp_latring_init(gmp_latring_t*, uint64_t)
    void gmp_latring_free(gmp_latring_t*)
    int gmp_latring_put(gmp_latring_t*, const gmp_latrec_t*)
    int64_t gmp_latring_take(gmp_latring_t*, gmp_latrec_t*, int64_t)
    uint64_t gmp_load_u64(uint64_t*)
    uint32_t gmp_add_u32(uint32_t*, uint32_t)

cdef extern from "<string.h>" nogil:
    void* memset(void*, int, size_t)
    void* memcpy(void*, const void*, size_t)

cdef enum:
    OBS_LAT = 1
    OBS_TRACE = 2

cdef enum:
    LB_RUNQ = 0
    LB_GIL = 1
    LB_RUN = 2
    LB_IO = 3
    LB_CHAN = 4
    LB_LOCK = 5
    LB_BLOCKING = 6
    LB_SLEEP = 7
    LB_OTHER = 8
    LB_HELD = 9
    LB_DEAD = 10

cdef enum:
    LK_ERROR = 1
    LK_SLOW = 2
    LK_SAMPLED = 4

# Both read on every hook call; obs_flags == 0 is the whole cost when off.
cdef int obs_flags = 0
cdef int64_t lat_hold_ns = 1000000
cdef int64_t lat_incgen = 0
cdef gmp_latring_t lat_ring
cdef bint lat_ring_ok = False
cdef uint32_t lat_every[LAT_MAXCLS]
cdef int64_t lat_slow_ns[LAT_MAXCLS]
cdef uint32_t lat_count[LAT_MAXCLS]
lat_incidents = {}          # incident id -> (gid, G name, stack lines)
cdef int lat_incidents_max = 1024

# Wait reasons, interned as small codes (trace events carry the code).
cdef dict reason_codes = {}
cdef list reason_names = []
cdef int32_t reason_bucket[256]


cdef int reason_code(object reason) noexcept:
    cdef object c = reason_codes.get(reason)
    cdef int b
    cdef str r
    if c is not None:
        return <int>c
    if len(reason_names) >= 255:
        return 255
    r = str(reason)
    if r == "IO wait" or r.startswith("select.") or r.startswith("poll"):
        b = LB_IO
    elif r.startswith("chan") or r.startswith("select"):
        b = LB_CHAN
    elif r.startswith("sync.") or r.startswith("sem") or "lock" in r.lower():
        b = LB_LOCK
    elif r == "blocking call":
        b = LB_BLOCKING
    elif r == "sleep":
        b = LB_SLEEP
    else:
        b = LB_OTHER
    c = len(reason_names)
    reason_names.append(r)
    reason_bucket[<int>c] = b
    reason_codes[reason] = c
    return <int>c


cdef inline int64_t overlap(int64_t a0, int64_t a1, int64_t b0, int64_t b1) noexcept nogil:
    cdef int64_t lo = a0 if a0 > b0 else b0
    cdef int64_t hi = a1 if a1 < b1 else b1
    return hi - lo if hi > lo else 0


cdef inline void acct_close(gacct_t* a, int64_t now) noexcept nogil:
    if a.since and a.state < LB_DEAD:
        a.b[a.state] += now - a.since
    a.since = now


cdef void acct_runnable_end(gacct_t* a, pacct_t* here, int64_t now) noexcept nogil:
    """a's runnable interval [since, now] ends: split it (see the header)."""
    cdef pacct_t* q = a.waitp if a.waitp != NULL else here
    cdef int64_t d = now - a.since
    cdef int64_t held = 0, ov, gil
    cdef uint32_t i, n = q.nholds if q.nholds < HOLD_RING else HOLD_RING
    cdef hold_t* h
    for i in range(n):
        h = &q.holds[(q.nholds - 1 - i) % HOLD_RING]
        if h.end <= a.since:
            break
        ov = overlap(a.since, now, h.start, h.end)
        held += ov
        if ov > a.held_max:
            a.held_max = ov
            a.held_gid = h.gid
            a.held_inc = h.inc
    gil = overlap(a.since, now, q.gil_start, q.gil_end)
    if held + gil > d:
        gil = d - held if d > held else 0
        if held > d:
            held = d
    a.b[LB_HELD] += held
    a.b[LB_GIL] += gil
    a.b[LB_RUNQ] += d - held - gil
    a.since = now


cdef void lat_incident(pacct_t* pa, G g, int64_t start, int64_t end, bint exiting) noexcept:
    """g ran [start, end] without letting go of its M: record the incident
    and capture g's stack once."""
    global lat_incgen
    cdef hold_t* h
    lat_incgen += 1
    h = &pa.holds[pa.nholds % HOLD_RING]
    h.start = start
    h.end = end
    h.gid = g.id
    h.inc = lat_incgen
    pa.nholds += 1
    try:
        if exiting:
            code = getattr(g.fn, "__code__", None)
            stack = [f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})"
                     if code is not None else repr(g.fn)]
        else:
            stack = []
            f = _sys._getframe()
            while f is not None and len(stack) < 32:
                c = f.f_code
                if not c.co_filename.endswith((".pxi", ".pyx")):
                    stack.append(f"{c.co_qualname} ({c.co_filename}:{f.f_lineno})")
                f = f.f_back
        if len(lat_incidents) >= lat_incidents_max:
            del lat_incidents[next(iter(lat_incidents))]
        lat_incidents[lat_incgen] = (g.id, g.name, (end - start) / 1e6, stack)
    except BaseException:
        pass


# --- the hooks ----------------------------------------------------------------
# Each is called as `if obs_flags: obs_x(...)` from the transition point.

cdef inline void obs_created(G g) noexcept:
    cdef int64_t now = gmp_nanotime()
    cdef M m = getm()
    if obs_flags & OBS_LAT:
        g.lacct.born = now
        g.lacct.since = now
        g.lacct.state = LB_RUNQ
        g.lacct.waitp = &m.p.lacct if m is not None else NULL
    if obs_flags & OBS_TRACE:
        trace_created(m, g, now)


cdef inline void obs_ready(M m, G g) noexcept:
    """g (parked or new) was made runnable by the G running on m (m None:
    a thread that is not an M)."""
    cdef int64_t now = gmp_nanotime()
    cdef gacct_t* a = &g.lacct
    cdef pacct_t* home
    cdef int64_t gil
    if obs_flags & OBS_LAT and a.since:
        home = &g.home.lacct if g.home is not None else (&m.p.lacct if m is not None else NULL)
        if a.state == LB_RUNQ:
            acct_close(a, now)
        else:
            gil = overlap(a.since, now, home.gil_start, home.gil_end) if home != NULL else 0
            a.b[LB_GIL] += gil
            a.b[a.state] += now - a.since - gil
            a.since = now
            a.state = LB_RUNQ
        a.waitp = home
    if obs_flags & OBS_TRACE:
        trace_put(m.id if m is not None else -1, TR_READY, g.id,
                  m.curgid if m is not None else 0, now)


cdef inline void obs_run(M m, G g) noexcept:
    """g starts or resumes running on m."""
    cdef int64_t now = gmp_nanotime()
    cdef pacct_t* pa = &m.p.lacct
    pa.seg_start = now
    pa.seg_gid = g.id
    if obs_flags & OBS_LAT:
        if g.lacct.since and g.lacct.state == LB_RUNQ:
            acct_runnable_end(&g.lacct, pa, now)
        else:
            acct_close(&g.lacct, now)
        g.lacct.state = LB_RUN
    if obs_flags & OBS_TRACE:
        trace_put(m.id, TR_RUN, g.id, 0, now)


cdef inline void obs_stop(M m, G g, int bucket, int kind, int code) noexcept:
    """g, running on m, stops: parks (bucket = its reason's), yields
    (LB_RUNQ) or exits (LB_DEAD)."""
    cdef int64_t now = gmp_nanotime()
    cdef pacct_t* pa = &m.p.lacct
    if pa.seg_gid == g.id:
        pa.seg_gid = 0
        if obs_flags & OBS_LAT and now - pa.seg_start >= lat_hold_ns:
            lat_incident(pa, g, pa.seg_start, now, bucket == LB_DEAD)
    if obs_flags & OBS_LAT:
        acct_close(&g.lacct, now)
        g.lacct.state = bucket
        g.lacct.waitp = pa
    if obs_flags & OBS_TRACE:
        trace_put(m.id, kind, g.id, code, now)


cdef inline void obs_park(M m, G g, object reason) noexcept:
    cdef int code = reason_code(reason)
    obs_stop(m, g, reason_bucket[code], TR_PARK, code)


cdef inline void obs_yield(M m, G g) noexcept:
    obs_stop(m, g, LB_RUNQ, TR_YIELD, 0)


cdef inline void obs_exit(G g) noexcept:
    cdef M m = getm()
    if m is not None:
        obs_stop(m, g, LB_DEAD, TR_EXIT, 0)


cdef inline void obs_idle(P p) noexcept:
    """p's M is about to sleep in epoll_wait."""
    p.lacct.idle_start = gmp_nanotime()


cdef inline void obs_woke(P p) noexcept:
    """p's M is back from epoll_wait (at p.wake_ns) and holds the GIL again."""
    cdef int64_t now = gmp_nanotime()
    p.lacct.gil_start = p.wake_ns
    p.lacct.gil_end = now
    if obs_flags & OBS_TRACE:
        trace_idle(p.id, p.lacct.idle_start, p.wake_ns, now)


cdef inline void obs_stolen(P p, G g) noexcept:
    if obs_flags & OBS_TRACE:
        trace_put(p.id, TR_STOLEN, g.id, 0, gmp_nanotime())


cdef inline void obs_blocking(G g, bint start) noexcept:
    """A blocking-pool call for g starts or ends on a helper thread."""
    if obs_flags & OBS_TRACE:
        trace_put(-1, TR_BLOCK_B if start else TR_BLOCK_E, g.id, 0, gmp_nanotime())


# --- the API gmp.latency wraps ------------------------------------------------

def lat_enable(bint on, int64_t capacity=4096, double hold_ms=1.0):
    """Turn per-G accounting and the record ring on (a fresh ring of
    `capacity` records, a power of two) or off."""
    global obs_flags, lat_ring_ok, lat_hold_ns
    if on:
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two >= 2, got {capacity}")
        if not hold_ms > 0:
            raise ValueError(f"hold_ms must be > 0, got {hold_ms!r}")
        if lat_ring_ok:
            obs_flags &= ~OBS_LAT
            gmp_latring_free(&lat_ring)
            lat_ring_ok = False
        if gmp_latring_init(&lat_ring, capacity) < 0:
            raise MemoryError()
        lat_ring_ok = True
        lat_hold_ns = <int64_t>(hold_ms * 1e6)
        obs_flags |= OBS_LAT
    else:
        # The ring stays: records not yet read can still be drained.
        obs_flags &= ~OBS_LAT


def lat_enabled():
    return bool(obs_flags & OBS_LAT)


def lat_configure(int cls, int every, int64_t slow_ns):
    """Sampling of class cls: keep 1 in `every` (0: none) of the requests
    that are neither errors nor slower than slow_ns."""
    if not 0 <= cls < LAT_MAXCLS:
        raise ValueError(f"at most {LAT_MAXCLS} request classes")
    if every < 0 or slow_ns < 0:
        raise ValueError("every and slow_ns must be >= 0")
    lat_every[cls] = every
    lat_slow_ns[cls] = slow_ns


lat_class_ids = {}          # request class name -> id (gmp.latency fills it)
lat_served = {}             # G id -> its served() Request, until the handler begins its own
lat_register = None         # gmp.latency.class_id, for a name not seen yet


@cython.freelist(64)
cdef class Request:
    """An open request of one G (gmp.latency.begin); a context manager."""
    cdef public int status
    cdef public bint error
    cdef readonly int cls
    cdef readonly uint64_t trace_id
    cdef readonly int64_t start_ns
    cdef bint has_base
    cdef int64_t base[GMP_LB_N]

    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        if typ is not None:
            self.error = True
            if not self.status:
                self.status = 500
        lat_finish(self, self.status, self.error)
        return False


# What begin() returns while sampling is off: no allocation, end() ignores it.
cdef Request lat_off_req = Request.__new__(Request)


def lat_begin(cls, uint64_t trace_id=0, bint since_spawn=False):
    """gmp.latency.begin: the running G starts a request of class `cls`
    (a name).  The Request snapshots the G's accumulators, which end
    subtracts, so requests may nest.  With since_spawn (a G spawned for
    the request) it starts at the G's birth, from zero."""
    cdef M m
    cdef G g
    cdef gacct_t* a
    cdef Request r
    cdef int64_t now
    m = getm()
    if m is None or m.curg is None:
        raise NoRuntime("gmp.latency.begin() needs a running G")
    if not obs_flags & OBS_LAT:
        return lat_off_req
    c = lat_class_ids.get(cls)
    if c is None:
        c = lat_register(cls)
    g = m.curg
    if lat_served:
        lat_served.pop(g.id, None)      # the handler records requests of its own
    r = Request.__new__(Request)
    r.cls = c
    r.trace_id = trace_id
    now = gmp_nanotime()
    a = &g.lacct
    acct_close(a, now)
    a.held_max = 0
    if since_spawn and a.born:
        r.start_ns = a.born
    else:
        r.start_ns = now
        r.has_base = True
        memcpy(r.base, a.b, sizeof(r.base))
    return r


cdef bint lat_keep(gmp_latrec_t* r, bint error) noexcept nogil:
    cdef uint32_t every = lat_every[r.cls]
    r.weight = 1
    if error:
        r.why = LK_ERROR
    elif r.latency_ns >= lat_slow_ns[r.cls]:
        r.why = LK_SLOW
    elif every and gmp_add_u32(&lat_count[r.cls], 1) % every == 0:
        r.why = LK_SAMPLED
        r.weight = every
    else:
        return False
    return True


def lat_end(Request req not None, int status=0, bint error=False):
    """gmp.latency.end: closes req; True if a record was appended, False
    if not sampled (or sampling is off), None if the ring was full."""
    return lat_finish(req, status, error)


cdef object lat_finish(Request req, int status, bint error):
    cdef M m
    cdef G g
    cdef gmp_latrec_t r
    cdef int64_t now
    cdef int i
    if req is lat_off_req or not obs_flags & OBS_LAT or not lat_ring_ok:
        return False
    m = getm()
    if m is None or m.curg is None:
        raise NoRuntime("gmp.latency.end() needs a running G")
    now = gmp_nanotime()
    g = m.curg
    acct_close(&g.lacct, now)
    memset(&r, 0, sizeof(r))
    r.trace_id = req.trace_id
    r.start_ns = req.start_ns
    r.latency_ns = now - req.start_ns
    r.gid = g.id
    r.status = status
    r.cls = req.cls
    if not lat_keep(&r, error):
        return False
    for i in range(GMP_LB_N):
        r.b[i] = g.lacct.b[i] - (req.base[i] if req.has_base else 0)
    if r.b[LB_HELD] > 0:
        r.held_gid = g.lacct.held_gid
        r.held_inc = g.lacct.held_inc
    i = gmp_latring_put(&lat_ring, &r)
    return True if i == 0 else None


def lat_put(int cls, uint64_t trace_id, int64_t start_ns, int64_t latency_ns, int status,
            bint error):
    """Appends a record measured outside gmp (no breakdown); as lat_end."""
    cdef gmp_latrec_t r
    cdef int rc
    if not 0 <= cls < LAT_MAXCLS:
        raise ValueError(f"bad request class id {cls}")
    if not lat_ring_ok:
        return False
    memset(&r, 0, sizeof(r))
    r.trace_id = trace_id
    r.start_ns = start_ns
    r.latency_ns = latency_ns
    r.status = status
    r.cls = cls
    r.b[LB_OTHER] = latency_ns
    if not lat_keep(&r, error):
        return False
    rc = gmp_latring_put(&lat_ring, &r)
    return True if rc == 0 else None


def lat_take(int64_t n=LAT_TAKE):
    """Up to n records from the ring, as bytes (RECORD each)."""
    cdef gmp_latrec_t* buf
    cdef int64_t k
    if not lat_ring_ok or n <= 0:
        return b""
    buf = <gmp_latrec_t*>malloc(n * sizeof(gmp_latrec_t))
    if buf == NULL:
        raise MemoryError()
    try:
        k = gmp_latring_take(&lat_ring, buf, n)
        return (<char*>buf)[:k * sizeof(gmp_latrec_t)]
    finally:
        free(buf)


def lat_counts():
    """(appended, dropped) since the ring was made."""
    if not lat_ring_ok:
        return (0, 0)
    return (gmp_load_u64(&lat_ring.appended), gmp_load_u64(&lat_ring.dropped))


def lat_record_size():
    return sizeof(gmp_latrec_t)


def lat_incident_table():
    return lat_incidents

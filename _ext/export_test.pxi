# The test door (Go's export_test.go): internals that tests, and only tests
# (and the chaos report), reach.  Nothing in the scheduler calls these; the
# loop has no test branches.  Each one reads state the runtime keeps anyway.


def wake_counts(bint reset=False):
    """Wake-ups since the process started (or the last reset), per source:
    {"waitq": (readied, stale), ...} plus "remote", the readied ones that
    crossed to another M's inbox.  For tests and the chaos report."""
    global remote_wakes
    cdef int i
    names = ("waitq", "timer", "interrupt", "netpoll", "blocking")
    out = {names[i]: (wakes[i], stale_wakes[i]) for i in range(<int>WS_N)}
    out["remote"] = remote_wakes
    if reset:
        for i in range(<int>WS_N):
            wakes[i] = stale_wakes[i] = 0
        remote_wakes = 0
    return out


def _steal_order(int pid):
    """The order P pid would try victims in now (for tests)."""
    cdef P p
    if sched is None:
        raise NoRuntime("no runtime")
    p = <P>sched.allp[pid]
    n = steal_order(p)
    return [p.sorder[i] for i in range(n)]


def _no_work_anywhere():
    """What deadlock detection asks: no runnable G queued anywhere, no
    timer, no external waker (for tests)."""
    if sched is None:
        raise NoRuntime("no runtime")
    return no_work_anywhere()


def _lat_stress(int64_t n, int64_t seed):
    """Appends n records from the calling thread without the GIL (for the
    ring's tests): record i has trace_id seed*2**32 + i and every field
    derived from it, so a torn record is detectable.  Returns the number of
    failed (dropped) appends."""
    cdef gmp_latrec_t r
    cdef int64_t i, drops = 0
    cdef int j
    if not lat_ring_ok:
        raise RuntimeError("latency ring not enabled")
    with nogil:
        for i in range(n):
            r.trace_id = <uint64_t>(seed << 32) + <uint64_t>i
            r.start_ns = <int64_t>r.trace_id * 3
            r.latency_ns = <int64_t>r.trace_id ^ 0x5555
            r.gid = seed
            for j in range(GMP_LB_N):
                r.b[j] = <int64_t>r.trace_id + j
            r.held_gid = <int64_t>r.trace_id * 7
            r.held_inc = i
            r.status = <int32_t>(i & 0x7fff)
            r.cls = <uint16_t>(seed & 0xffff)
            r.why = LK_SAMPLED
            r.weight = 1
            r.pad = 0
            if gmp_latring_put(&lat_ring, &r) < 0:
                drops += 1
    return drops

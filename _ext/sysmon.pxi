# sysmon and the GIL-wait learning of helper Ms.
#
# GIL learning (DESIGN "The GIL, honestly").  An M woken by wakep() to help
# (steal, take global work) timestamps the return of its GIL-free epoll_wait
# (P.wake_ns, netpoll.pxi) and measures how long it then waited for the GIL.
# About a switch interval (>= 0.8 sys.getswitchinterval(); less may be the
# OS scheduler's delay on a loaded machine, not the GIL) means the
# other Ms are running Python: the M declines to help (goes back to sleep
# without stealing) and the runtime stops waking helpers for a back-off
# period (10 ms, doubling to 200 ms while it keeps happening).  An M that
# is already awake probes the same way before taking work from others: it
# drops the GIL for 20 us and times getting it back (helper_declines).  A quick GIL
# means the others are blocked or in GIL-free code: the back-off is cleared.
# A P awake without scheduling progress for `stuck_ns` is marked P.stuck
# (cleared when it schedules or sleeps), which the spawn hand-off
# (proc.pxi) reads to keep new work off it.  sysmon overrides the back-off:
# when a P has made no scheduling progress for `stuck_ns` while fresh Gs
# wait (its owner is blocked in a C call or running one long G), it forces
# an idle M awake (P.woke = WOKE_FORCED), and that M always helps.
#
# sysmon is an OS thread running _sysmon_main.  Its scan runs without the
# GIL, reading the Ps through raw pointers (pview_t) to fields whose
# addresses are fixed for the life of the run; word-sized racy reads are
# fine for a heuristic.  It takes the GIL only to report a long-running G
# (with the stack of its M's thread, from sys._current_frames()) and to
# print schedtrace lines.  Its period is 500 us while any P is busy and
# backs off to 10 ms while every P sleeps.

cdef enum:
    BACKOFF_MIN_NS = 10000000
    BACKOFF_MAX_NS = 200000000
    SYSMON_BUSY_NS = 500000
    SYSMON_IDLE_NS = 10000000
    PROBE_NS = 20000
    PROBE_EVERY_NS = 2000000
    SYSMON_LONG = 1
    SYSMON_TRACE = 2


cdef inline bint in_backoff() noexcept:
    cdef int64_t until = sched.backoff_until
    return until != 0 and sched.pol.gil_learning and coarsetime() < until


cdef void learn_gil_wait(P p, int64_t waited) noexcept:
    """A helper M got the GIL `waited` ns after its epoll_wait returned."""
    p.ngilwait_ns += waited
    if sched.gil_slow_ns and waited >= sched.gil_slow_ns:
        p.ngil_slow += 1
        p.gil_slow_last = True
        sched.backoff_ns = sched.backoff_ns * 2 if sched.backoff_ns else BACKOFF_MIN_NS
        if sched.backoff_ns > BACKOFF_MAX_NS:
            sched.backoff_ns = BACKOFF_MAX_NS
        sched.backoff_until = coarsetime() + sched.backoff_ns
    else:
        p.ngil_fast += 1
        sched.backoff_ns = 0
        sched.backoff_until = 0


cdef bint helper_declines(M m, P p, int32_t woke) noexcept:
    """Should this M, about to take work from others, stay out of it?

    woke is WOKE_HELP if wakep() just woke it to help (its GIL wait was
    measured on the way out of epoll_wait), WOKE_FORCED if sysmon forced it
    (always helps), else WOKE_NONE: then, if another M is awake and there is work to take, it probes: drops
    the GIL for PROBE_NS and measures how long it takes to get it back (at
    most once per PROBE_EVERY_NS; in between the last verdict stands)."""
    cdef int64_t t0
    cdef P q
    cdef bint work = False
    if woke == WOKE_FORCED or sched.nprocs == 1 or not sched.pol.gil_learning:
        return False
    if woke == WOKE_HELP:
        return p.gil_slow_last
    if gmp_load_i32(&sched.nidle) >= sched.nprocs - 1:
        return False          # nobody else awake: nobody to contend with
    if gq_total():
        work = True
    elif sched.pol.steal:
        for q in sched.allp:
            if q is not p and not runq_empty(&q.runq):
                work = True
                break
    if not work:
        return False
    t0 = gmp_nanotime()
    if t0 - p.last_probe < PROBE_EVERY_NS:
        return p.gil_slow_last
    p.last_probe = t0
    p.nprobes += 1
    with nogil:
        gmp_sleep_ns(PROBE_NS)
    learn_gil_wait(p, gmp_nanotime() - t0 - PROBE_NS)
    return p.gil_slow_last


cdef void kick_one_idle() noexcept:
    """Plain kick (not a helper wake-up) of one sleeping M."""
    cdef P p
    for p in sched.allp:
        if gmp_load_i32(&p.sleeping):
            netpoll_kick(p)
            return


ctypedef struct pview_t:
    uint32_t* schedtick
    runq_t* runq
    PyObject** runnext
    int32_t* sleeping
    int32_t* woke
    int32_t* stuck
    int64_t* nforced
    int evfd
    int64_t* runstart
    int64_t* curgid
    uint32_t last_tick
    int64_t last_change
    int64_t reported_start


cdef int sysmon_scan(pview_t* pv, int n, nodeq_t* gqs, int ngq, int32_t* nidle,
                     int32_t* nspinning, int64_t now, int64_t cnow, int64_t stuck_ns,
                     int64_t long_ns, int* which, int64_t* long_gid, bint* busy) noexcept nogil:
    """One pass over the Ps; now is CLOCK_MONOTONIC, cnow the coarse clock
    that M.runstart uses."""
    cdef int i, j, act = 0
    cdef uint32_t t
    cdef int64_t gid, rs
    cdef uint64_t one = 1
    cdef bint fresh_global = gqs_size(gqs, ngq) != 0
    busy[0] = False
    for i in range(n):
        if gmp_load_i32(pv[i].sleeping):
            pv[i].last_change = now
            gmp_store_i32(pv[i].stuck, 0)
            continue
        busy[0] = True
        t = gmp_load_relaxed_u32(pv[i].schedtick)
        if t != pv[i].last_tick:
            pv[i].last_tick = t
            pv[i].last_change = now
            gmp_store_i32(pv[i].stuck, 0)
        elif stuck_ns and now - pv[i].last_change >= stuck_ns:
            # Until its M schedules again, the spawn hand-off skips P i.
            gmp_store_i32(pv[i].stuck, 1)
            if ((not runq_empty(pv[i].runq) or pv[i].runnext[0] != NULL or fresh_global)
                    and gmp_load_i32(nidle) and gmp_load_i32(nspinning) == 0):
                # P i is stuck with fresh Gs waiting: force an idle M awake.
                for j in range(n):
                    if j != i and gmp_load_i32(pv[j].sleeping) and gmp_cas_i32(pv[j].woke, WOKE_NONE, WOKE_FORCED):
                        gmp_add_i32(nspinning, 1)
                        pv[j].nforced[0] += 1
                        c_write(pv[j].evfd, &one, 8)
                        break
                pv[i].last_change = now
        if long_ns:
            gid = gmp_load_relaxed_i64(pv[i].curgid)
            rs = gmp_load_relaxed_i64(pv[i].runstart)
            if gid and rs != pv[i].reported_start and cnow - rs >= long_ns:
                pv[i].reported_start = rs
                which[0] = i
                long_gid[0] = gid
                act |= SYSMON_LONG
    return act


def _sysmon_main(Sched s, cfg):
    """Body of the sysmon thread; cfg is a gmp.sysmon.Config."""
    cdef int n = s.nprocs
    cdef int i, which = -1, act
    cdef int64_t long_gid = 0
    cdef bint busy = True
    cdef int64_t stuck_ns = cfg.stuck_ns, long_ns = cfg.long_ns
    cdef int64_t trace_ns = cfg.trace_ns
    cdef int64_t delay = SYSMON_BUSY_NS, now, next_trace
    cdef P p
    cdef M m
    cdef pview_t* pv = <pview_t*>malloc(n * sizeof(pview_t))
    if pv == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            p = <P>s.allp[i]
            m = <M>s.ms[i]
            pv[i].schedtick = &p.schedtick
            pv[i].runq = &p.runq
            pv[i].runnext = &p.runnext
            pv[i].sleeping = &p.sleeping
            pv[i].woke = &p.woke
            pv[i].stuck = &p.stuck
            pv[i].nforced = &p.nforced
            pv[i].evfd = p.evfd
            pv[i].runstart = &m.runstart
            pv[i].curgid = &m.curgid
            pv[i].last_tick = p.schedtick
            pv[i].last_change = gmp_nanotime()
            pv[i].reported_start = 0
        next_trace = s.start_ns + trace_ns
        while not s.sysmon_stop:
            with nogil:
                gmp_sleep_ns(delay)
                now = gmp_nanotime()
                act = sysmon_scan(pv, n, s.gqs, s.ngq, &s.nidle, &s.nspinning, now,
                                  coarsetime(), stuck_ns, long_ns, &which, &long_gid, &busy)
            delay = SYSMON_BUSY_NS if busy else min(delay * 2, SYSMON_IDLE_NS)
            if s.sysmon_stop:
                break
            if act & SYSMON_LONG:
                m = <M>s.ms[which]
                g = m.curg
                # The scan ran without the GIL: by now the M may have moved
                # on to another G, which has not been running long at all.
                if g is not None and g.id == long_gid:
                    frame = _sys._current_frames().get(m.tid)
                    cfg.report_long(g, m.id, (coarsetime() - m.runstart) / 1e6, frame)
            if trace_ns and now >= next_trace:
                next_trace += trace_ns
                if next_trace <= now:
                    next_trace = now + trace_ns
                cfg.trace(schedtrace_line(s, now, cfg.detail))
                if delay > trace_ns:
                    delay = trace_ns
    finally:
        free(pv)

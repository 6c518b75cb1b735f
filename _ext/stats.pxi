# What the runtime reports about itself: stats() (per-P counters and queue
# lengths), the ready->running latency histograms, and Go's schedtrace and
# scheddetail lines that sysmon prints (GMPDEBUG=schedtrace=N,scheddetail=1).
# The G dump (gmp.dump) is Python (gmp/debug.py) over all_gs() and
# running_gs().
#
# Latency.  With track_latency(True) every G is stamped (G.readyat) when it
# is spawned or readied, and note_run() adds ready->running to its P's
# log-scale histogram (4 buckets per power of two).  Off by default: it costs
# two clock reads per switch.

cdef bint lat_on = False


cdef inline void note_run(M m, G g) noexcept:
    """Bookkeeping as g starts or resumes running on m."""
    cdef P p = m.p
    cdef int64_t d
    p.nrun += 1
    m.curgid = g.id
    m.runstart = coarsetime()
    if lat_on and g.readyat:
        d = gmp_nanotime() - g.readyat
        p.lathist[gmp_lat_bucket(d)] += 1
        g.readyat = 0


def stats():
    """Per-P counters and queue lengths, plus global figures.  globalq is
    the global queue's length over every NUMA node, globalqs the length of
    each node's queue (node order; one entry on one node), globalq_index
    the P's own entry in it."""
    cdef P p
    cdef int i
    if sched is None:
        return None
    gqs = [gmp_load_i64(&sched.gqs[i].q.size) for i in range(sched.ngq)]
    ps = []
    for p in sched.allp:
        ps.append({
            "id": p.id, "runq": runq_len(&p.runq), "boundq": p.boundq.n,
            "runnext": p.runnext != NULL, "inbox": gmp_load_i64(&p.inbox.size),
            "timers": p.timers.n, "schedticks": p.schedtick, "spawns": p.nspawn, "handoffs": p.nhandoff,
            "steal_attempts": p.nsteal, "stolen": p.nstolen,
            "global_pulls": p.nglobal, "global_pulls_remote": p.nglobal_remote,
            "globalq_index": p.gqi, "kicks": p.nkicks, "parks": p.nparks,
            "idle_ns": p.nidle_ns, "runs": p.nrun, "gil_fast": p.ngil_fast,
            "gil_slow": p.ngil_slow, "gilwait_ns": p.ngilwait_ns,
            "forced_wakes": p.nforced, "gil_probes": p.nprobes, "node": p.node,
            "m_tid": p.m.native_tid if p.m is not None else 0,
            "m_cpus": p.m.cpus if p.m is not None else None,
            "fds": p.nfds, "netpoll_ready": p.npollready,
        })
    return {"procs": sched.nprocs, "policy": sched.policy.name,
            "gs": sched.ngs, "globalq": gq_total(),
            "globalqs": gqs,
            "idle": gmp_load_i32(&sched.nidle),
            "backoff": in_backoff(), "ps": ps}


def track_latency(bint on):
    """Turn ready->running latency tracking on or off (histograms reset)."""
    global lat_on
    cdef P p
    cdef int i
    if sched is not None:
        for p in sched.allp:
            for i in range(GMP_LAT_NB):
                p.lathist[i] = 0
    lat_on = on


def latency_hist():
    """Merged ready->running histogram: a list of (ns, count), ascending."""
    cdef P p
    cdef int i
    cdef int64_t c
    out = []
    if sched is None:
        return out
    for i in range(GMP_LAT_NB):
        c = 0
        for p in sched.allp:
            c += p.lathist[i]
        if c:
            out.append((gmp_lat_value(i), c))
    return out


cdef str schedtrace_line(Sched s, int64_t now, bint detail):
    """Go's schedtrace line (runtime/proc.go schedtrace).  With detail
    (GMPDEBUG=scheddetail=1) the queue list gives way to one line per P, M
    and G, as Go prints them; G status numbers are Go's (1 runnable,
    2 running, 4 waiting) with the wait reason in parentheses."""
    cdef P p
    cdef M m
    cdef G g
    cdef int nidle = 0
    cdef list q = []
    cdef list lines
    for p in s.allp:
        if gmp_load_i32(&p.sleeping):
            nidle += 1
        q.append(str(runq_len(&p.runq) + p.boundq.n + gmp_load_i64(&p.inbox.size)
                     + (1 if p.runnext != NULL else 0)))
    head = (f"SCHED {(now - s.start_ns) // 1000000}ms: gomaxprocs={s.nprocs} "
            f"idleprocs={nidle} threads={s.nprocs + 1} "
            f"spinningthreads={gmp_load_i32(&s.nspinning)} idlethreads={nidle} "
            f"runqueue={gqs_size(s.gqs, s.ngq)}")
    if not detail:
        return f"{head} [ {' '.join(q)} ]"
    lines = [head]
    for p in s.allp:
        lines.append(f"  P{p.id}: status={0 if gmp_load_i32(&p.sleeping) else 1} "
                     f"schedtick={p.schedtick} m={p.m.id} runqsize={q[p.id]} "
                     f"timerslen={p.timers.n} steals={p.nstolen} globalpulls={p.nglobal}")
    for m in s.ms:
        lines.append(f"  M{m.id}: p={m.p.id} curg={m.curg.id if m.curg is not None else -1} "
                     f"spinning={'true' if m.spinning else 'false'} "
                     f"blocked={'true' if gmp_load_i32(&m.p.sleeping) else 'false'}")
    for g in allg_list():
        reason = g.waitreason if g.status == GWAITING else ""
        mid = g.home.m.id if g.home is not None else -1
        lines.append(f"  G{g.id}: status={(0, 1, 2, 4, 6)[g.status]}({reason}) m={mid}")
    return "\n".join(lines)

# The scheduling loop: what an M runs next (findrunnable, local_pick), the
# global queue, stealing, waking and spinning Ms (wakep), timers fired by the
# loop, idle Ms parked in epoll_wait, and deadlock detection.
#
# The loop (findrunnable), in Go's order: expired timers; every 61st tick
# one G from the global queue; runnext (capped at RUNNEXT_STREAK picks in a
# row so a ping-ponging pair cannot starve the rest of the queue; Go bounds
# it by a time slice); the older of the local runq and boundq heads, after
# draining the inbox; the global queue (a batch of min(len/nprocs+1, 128),
# the own node's queue first: see NUMA below);
# then stealing half of another P's fresh Gs (policy "go"); then parking in
# epoll_wait with the GIL released and the timeout of the next timer.  The
# steal makes one pass over the Ps in random order where Go makes four: under
# the GIL no other M can change a queue while we look, so more passes would
# see the same queues.
#
# NUMA.  Ps are grouped by the node of their M's CPU (gmp.topology).  Go has
# one global queue; here each node has its own (runq.pxi says why), and with
# the policy's numa_first a P takes from its own node's queue and steals from
# its own node's Ps before going to another node: a G's memory was most
# likely allocated on the node that spawned it, and a remote pull moves the
# G (and later its data) across the interconnect.  Remote pulls are counted
# apart (P.nglobal_remote) so a run shows how often that happened.  Without
# numa_first the node queues are one pool taken in a fixed order (node 0
# first), as if there were one queue; Gs still land on their node's queue,
# so switching numa_first changes only who takes what, which is what
# comparing the two should measure.  On one node (the common case, and every
# unpinned run) there is one queue and the split costs a pointer load.
# Whoever asks whether any fresh G is
# waiting anywhere -- the 61-tick fairness pull, idle()'s re-check, deadlock
# detection, sysmon, schedtrace -- sums every node's queue (gq_total): a G on
# another node's queue is still runnable, only farther away.
#
# Deadlock.  The last M to go idle with no timer, no external waker
# (netpoll waiters, blocking calls) and no runnable G anywhere while the main
# G is parked raises gmp.Deadlock in the main G, listing the parked Gs: Go's
# "all goroutines are asleep".  Unless an OS thread that gmp did not start is
# alive (one started with _thread, or before patching, or by a C library
# that calls Python): any such thread may still set an Event, put on a queue
# or inject a G, so nothing can be called a deadlock and the Ms just sleep
# until it does (as a plain program would wait for it).  gmp's own threads
# (the Ms, sysmon, named "gmp-..."; helpers registered with own_thread())
# do not count.  Go has no such case: every thread there runs goroutines.


cdef class P:
    def __cinit__(self, int id):
        self.id = id
        self.epfd = -1
        self.evfd = -1
        gqueue_init(&self.inbox)

    cdef void release(self) noexcept:
        cdef PyObject* g = runq_get(&self.runq)
        while g != NULL:
            _decref(g)
            g = runq_get(&self.runq)
        if self.runnext != NULL:
            _decref(self.runnext)
            self.runnext = NULL
        ring_clear(&self.boundq)
        gqueue_clear(&self.inbox)
        theap_free(&self.timers)
        free(self.sorder)
        self.sorder = NULL
        netpoll_close(self)

    cdef bint has_work(self) noexcept:
        return (self.runnext != NULL or not runq_empty(&self.runq)
                or self.boundq.n != 0 or gmp_load_i64(&self.inbox.size) != 0)


cdef class Sched:
    cdef int init_gqs(self) except -1:
        """One global queue per distinct node of the Ps, in node order (one
        for a policy without local queues: see runq.pxi); sets each P's gqi."""
        cdef P p
        cdef int i
        nodes = sorted({p.node for p in self.allp})
        self.multinode = len(nodes) > 1
        if not self.pol.local_batch:
            nodes = nodes[:1]
        self.gqs = <nodeq_t*>malloc(len(nodes) * sizeof(nodeq_t))
        if self.gqs == NULL:
            raise MemoryError()
        self.ngq = len(nodes)
        for i in range(self.ngq):
            gqueue_init(&self.gqs[i].q)
            self.gqs[i].nps = 0
        for p in self.allp:
            p.gqi = nodes.index(p.node) if self.ngq > 1 else 0
            self.gqs[p.gqi].nps += 1
        return 0


cdef Sched sched = None


cdef inline int64_t gq_total() noexcept:
    return gqs_size(sched.gqs, sched.ngq)


cdef void wakep() noexcept:
    """Wakes one idle M to look for fresh Gs (to steal), unless one is
    already looking (Go's wakep)."""
    cdef P p
    cdef M m
    if gmp_load_i32(&sched.nidle) == 0 or gmp_load_i32(&sched.nspinning) != 0:
        return
    if in_backoff():
        return
    m = getm()
    for p in sched.allp:
        if (m is None or p is not m.p) and gmp_load_i32(&p.sleeping):
            if gmp_cas_i32(&p.woke, WOKE_NONE, WOKE_HELP):
                gmp_add_i32(&sched.nspinning, 1)
                netpoll_kick(p)
            return


cdef G local_pick(P p, bint fast):
    """The next G from p's own queues (runnext, runq/boundq, inbox), or None.

    With fast=True (called from a parking G) also returns None when the
    scheduler loop has periodic work due, so that it runs."""
    cdef PyObject* a
    cdef PyObject* b
    cdef PyObject* r
    cdef G g
    p.schedtick += 1
    if fast:
        if (sched.pol.global_tick and p.schedtick % sched.pol.global_tick == 0
                and gq_total()):
            return None
        if netpoll_due(p):
            return None
        if p.timers.n and p.timers.a[0].when <= gmp_nanotime():
            return None
        if sched.stopping:
            return None
    while True:
        if p.runnext != NULL and p.runnext_streak < RUNNEXT_STREAK:
            r = p.runnext
            p.runnext = NULL
            p.runnext_streak += 1
        else:
            p.runnext_streak = 0
            if gmp_load_i64(&p.inbox.size):
                drain_inbox(p)
            a = runq_peek(&p.runq)
            b = ring_peek(&p.boundq)
            if a == NULL and b == NULL:
                if p.runnext == NULL:
                    return None
                r = p.runnext
                p.runnext = NULL
            elif b == NULL or (a != NULL and (<G>a).readyseq < (<G>b).readyseq):
                r = runq_get(&p.runq)
                if r == NULL:
                    continue
            else:
                r = ring_pop(&p.boundq)
        g = <G>r
        _decref(r)
        if entry_runnable(g):
            return g


cdef void drain_inbox(P p) noexcept:
    cdef int64_t got
    cdef PyObject* r = gqueue_take(&p.inbox, 1 << 30, &got)
    cdef PyObject* nxt
    while r != NULL:
        nxt = (<G>r).schedlink
        (<G>r).schedlink = NULL
        stamp(p, <G>r)
        ring_push(&p.boundq, r)
        r = nxt


cdef G globrunqget(P p, int64_t maxn):
    """Takes a batch from the global queue: one to run, the rest into runq.
    With numa_first p's own node's queue first, then the next nodes'; else
    every P goes through them in node order."""
    cdef int k, i
    cdef int start = p.gqi if sched.pol.numa_first else 0
    cdef G g
    for k in range(sched.ngq):
        i = start + k
        if i >= sched.ngq:
            i -= sched.ngq
        if gmp_load_i64(&sched.gqs[i].q.size):
            g = gq_get(p, i, maxn)
            if g is not None:
                return g
    return None


cdef G gq_get(P p, int i, int64_t maxn):
    """globrunqget from node queue i."""
    cdef int64_t n, got
    cdef PyObject* r
    cdef PyObject* nxt
    cdef G g = None
    cdef gqueue_t* q = &sched.gqs[i].q
    n = gmp_load_i64(&q.size)
    if n == 0:
        return None
    # Go's fair share, len/nprocs + 1, among the Ps that take from this queue
    # first: its node's Ps when the queue is p's own and numa_first is on.
    if i == p.gqi and sched.pol.numa_first:
        n = n // sched.gqs[i].nps + 1
    else:
        n = n // sched.nprocs + 1
    if n > RUNQ_HALF:
        n = RUNQ_HALF
    if not sched.pol.local_batch:
        n = 1
    elif sched.pol.global_batch and n > sched.pol.global_batch:
        n = sched.pol.global_batch
    if maxn and n > maxn:
        n = maxn
    r = gqueue_take(q, n, &got)
    p.nglobal += got
    if i != p.gqi:
        p.nglobal_remote += got
    while r != NULL:
        nxt = (<G>r).schedlink
        (<G>r).schedlink = NULL
        if g is None and entry_runnable(<G>r):
            g = <G>r
        elif entry_runnable(<G>r):
            stamp(p, <G>r)
            runq_put(p, <G>r)
        _decref(r)
        r = nxt
    return g


cdef G look_elsewhere(P p, bint forced):
    """The policy's places to look once this P's own queues and timers are
    empty (in Go's order: the global queue, then stealing)."""
    cdef int i
    cdef G g
    for i in range(LOOK_MAX):
        if sched.pol.look[i] == LOOK_GLOBAL:
            g = globrunqget(p, 0)
        elif sched.pol.look[i] == LOOK_STEAL:
            if not sched.pol.steal or sched.nprocs == 1:
                continue
            g = steal_work(p, forced)
            if obs_flags and g is not None:
                obs_stolen(p, g)
        else:
            return None
        if g is not None:
            return g
    return None


cdef int steal_order(P p) noexcept:
    """Fills p.sorder with the other Ps in random order (same NUMA node first
    when the policy says so) and returns how many."""
    cdef int n = sched.nprocs
    cdef int start = gmp_fastrandn(n)
    cdef int i, k = 0, j, sweep
    cdef P q
    cdef bint numa = sched.multinode and sched.pol.numa_first
    for sweep in range(2 if numa else 1):
        for i in range(n):
            j = (start + i) % n
            q = <P>sched.allp[j]
            if q is p:
                continue
            if numa and (q.node == p.node) != (sweep == 0):
                continue
            p.sorder[k] = j
            k += 1
    return k


cdef G steal_work(P p, bint steal_next):
    """One pass over the other Ps in random order, stealing half of the
    first non-empty runq found.  With steal_next (sysmon saw the victim make
    no progress), also a fresh G in a victim's runnext, as Go's
    stealRunNextG does; plain pointer access is safe under the GIL."""
    cdef int n = steal_order(p)
    cdef int i
    cdef P victim
    cdef PyObject* r
    cdef G g
    for i in range(n):
        victim = <P>sched.allp[p.sorder[i]]
        if runq_empty(&victim.runq):
            continue
        p.nsteal += 1
        if runq_steal(p, victim, sched.pol.steal_max):
            p.nstolen += runq_len(&p.runq)
            while True:
                r = runq_get(&p.runq)
                if r == NULL:
                    break
                g = <G>r
                _decref(r)
                if entry_runnable(g):
                    return g
    if steal_next:
        for i in range(n):
            victim = <P>sched.allp[p.sorder[i]]
            r = victim.runnext
            if r == NULL or (<G>r).glet is not None or (<G>r).home is not None:
                continue
            victim.runnext = NULL
            p.nstolen += 1
            g = <G>r
            _decref(r)
            if entry_runnable(g):
                return g
    return None


cdef int run_timers(P p) except -1:
    """Fires p's expired timers; returns how many fired."""
    cdef timer_t t
    cdef int fired = 0
    cdef int64_t now = gmp_nanotime()
    while p.timers.n and p.timers.a[0].when <= now:
        theap_pop(&p.timers, &t)
        try:
            fired += fire_timer(&t)
        finally:
            _xdecref(t.g)
            _xdecref(t.obj)
    return fired


cdef int fire_timer(timer_t* t) except -1:
    if t.obj == NULL:
        return goready(<G>t.g, t.ticket, WAKE_TIMEOUT, None, 0, False, WS_TIMER)
    if type(<object>t.obj) is Timeout:
        return (<Timeout>t.obj).expire(t.ticket)
    if (<TimerFunc>t.obj).cancelled:
        return 0
    (<TimerFunc>t.obj).cancelled = True
    try:
        (<TimerFunc>t.obj).fn()
    except BaseException as e:
        _sys.stderr.write("gmp: timer callback failed:\n")
        _traceback.print_exception(type(e), e, e.__traceback__, file=_sys.stderr)
    return 1


cdef bint no_work_anywhere():
    cdef P p
    if gq_total() or gmp_load_i64(&sched.nexternal):
        return False
    for p in sched.allp:
        if p.has_work() or theap_drop_stale_top(&p.timers):
            return False
    return True


cdef set own_threads = set()       # idents of gmp's helper threads (own_thread)


def own_thread(bint add=True):
    """Marks the calling OS thread as one of gmp's own helpers (add=False:
    no longer): deadlock detection does not take it for a possible waker."""
    if add:
        own_threads.add(_threading.get_ident())
    else:
        own_threads.discard(_threading.get_ident())


cdef bint foreign_thread_alive():
    """Whether a thread with Python state that gmp did not start is alive
    (see Deadlock in the notes).  Only asked once everything is asleep."""
    cdef M m
    ours = {m.tid for m in sched.ms}
    active = _threading._active
    for ident in _sys._current_frames():
        if ident in ours or ident in own_threads:
            continue
        t = active.get(ident)
        if t is not None and t.name.startswith("gmp-"):
            continue
        return True
    return False


cdef bint check_deadlock():
    """Called by the last M to go idle.  Raises Deadlock in the main G if
    nothing can ever wake any G."""
    cdef G main = sched.main
    cdef G g
    cdef list lines = []
    cdef int nparked = 0
    if main is None or main.status != GWAITING or not no_work_anywhere():
        return False
    if foreign_thread_alive():
        return False
    for g in allg_list():
        if g.status == GWAITING:
            nparked += 1
            if nparked <= 32:
                lines.append(f"  G {g.id} ({g.name}) [{g.waitreason}]")
    if nparked > 32:
        lines.append(f"  ... and {nparked - 32} more")
    interrupt(main, Deadlock("all Gs are asleep - deadlock!\n" + "\n".join(lines)))
    return True


cdef int idle(M m, P p) except -1:
    """Parks the M in epoll_wait until its P may have work."""
    cdef int64_t next_t, timeout = -1, t0
    cdef int32_t nidle
    if theap_drop_stale_top(&p.timers):
        next_t = theap_next(&p.timers)
        timeout = next_t - gmp_nanotime()
        if timeout <= 0:
            return 0
    m.curgid = 0
    p.gil_slow_last = False
    gmp_store_i32(&p.sleeping, 1)
    nidle = gmp_add_i32(&sched.nidle, 1)
    try:
        # Re-check after publishing `sleeping`: a kicker that queued work
        # before seeing the flag must not be missed.
        if p.has_work() or sched.stopping or gmp_load_i32(&p.woke):
            return 0
        # Fresh Gs in the global queue: take them, unless the GIL learning
        # says helpers should back off and another M is awake to take them.
        if gq_total() and (
                nidle == sched.nprocs
                or not in_backoff()):
            return 0
        if timeout < 0 and nidle == sched.nprocs and check_deadlock():
            return 0
        t0 = gmp_nanotime()
        p.wake_ns = 0
        netpoll_wait(p, timeout)
        p.nidle_ns += gmp_nanotime() - t0
        if p.wake_ns and gmp_load_i32(&p.woke):
            learn_gil_wait(p, gmp_nanotime() - p.wake_ns)
    finally:
        gmp_store_i32(&p.sleeping, 0)
        gmp_add_i32(&sched.nidle, -1)
    return 0


cdef G findrunnable(M m):
    """Blocks until there is a G for this M to run; None once it should exit."""
    cdef P p = m.p
    cdef G g
    cdef int32_t woke = WOKE_NONE
    while True:
        if m.s is not sched:
            return None         # the runtime was torn down without this M (fork)
        if sched.stopping:
            return local_pick(p, False)
        # Expired timers first, as Go's checkTimers: a G that keeps
        # yielding must not starve the Gs whose sleep is over.
        if p.timers.n and p.timers.a[0].when <= gmp_nanotime():
            run_timers(p)
        # Fairness: every global_tick-th pick comes from the global queue.
        # local_pick's fast path hands over to us on exactly such a tick.
        if (sched.pol.global_tick and p.schedtick % sched.pol.global_tick == 0
                and gq_total()):
            p.schedtick += 1
            g = globrunqget(p, 1)
            if g is not None:
                return g
        if netpoll_due(p):
            netpoll_poll(p)
        g = local_pick(p, False)
        if g is not None:
            return g
        if p.nfds and netpoll_poll(p):
            continue
        # Taking work from others (global queue, stealing) is helping: an M
        # that finds the others running Python declines (helper_declines,
        # sysmon.pxi).  One that sysmon forced awake always helps.
        if not helper_declines(m, p, woke):
            g = look_elsewhere(p, woke == WOKE_FORCED)
        woke = 0
        if m.spinning:
            m.spinning = False
            gmp_add_i32(&sched.nspinning, -1)
            if g is not None and not runq_empty(&p.runq):
                wakep()
        if g is not None:
            return g
        idle(m, p)
        woke = gmp_load_i32(&p.woke)
        if woke:
            gmp_store_i32(&p.woke, WOKE_NONE)
            m.spinning = True


cdef object schedule(M m):
    """The scheduler loop, run in M's scheduler greenlet.  Gs finish on their
    worker greenlets (_gworker), so control comes back here only when a G
    parks with nothing else runnable on this P, or when a worker retires."""
    cdef G g
    while True:
        g = findrunnable(m)
        if g is None:
            break
        run_g(m, g, RESUME_SCHED, None)
        m.curg = None
    free_workers(m)
    if m.spinning:
        m.spinning = False
        gmp_add_i32(&sched.nspinning, -1)

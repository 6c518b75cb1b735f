# Park and ready.  Every blocking operation is built from two primitives.  A G
# that must wait validates its arguments, registers itself somewhere (a
# channel's wait queue, a timer, a join list, a PollDesc, a blocking job)
# with its current park ticket, then calls park(g, reason).  Whoever wakes it
# calls goready(g, ticket, ...), the one wake path, which records why it woke
# (G.wakeup: OK, TIMEOUT, CLOSED, INTERRUPT) and any value and queues it on
# its home P.  A kill or an expired `gmp.Timeout` scope is an INTERRUPT: the
# exception is stored in G.pending and raised from park() in the G itself, so
# it surfaces exactly at the park point; a G that is not parked gets it at
# its next park.
#
# THE INVARIANT (everything below keeps it; the debug build asserts it):
#   1. A G is queued at most once, and only a parked G (GWAITING) can be
#      readied: goready() refuses any other, and a popped G that is not
#      GRUNNABLE is skipped, never run.
#   2. A wake-up belongs to exactly one park: its ticket.  goready() takes
#      the ticket the waker registered with and does nothing unless it is
#      still the G's; it bumps the ticket, which withdraws every other
#      registration of that park (the other select cases, the timeout timer)
#      at once.  So of the many wakers of one park exactly one wins.
#   3. A registration never outlives its park or its G.  Arguments (above
#      all timeouts) are validated before anything is registered; an error
#      between registering and parking withdraws the registrations (bumps
#      the ticket: withdraw()); and a G's ticket is bumped when it finishes.
# A park whose registration may fire before the G has switched away (a
# gmp.blocking helper thread can finish the call while the G is still
# submitting it) marks the G GWAITING first (park_prepare), then registers,
# then switches (park_commit): an early wake-up then readies it normally and
# the switch just finds it queued.
#
# The GIL.  Scheduler state other than the run-queue rings and the kick flag
# is protected by the GIL: park/ready, wait queues, timers and the G list are
# only touched with it held, and no Python code runs between registering a
# waiter and parking.  The comments in runq.pxi and waitq.pxi say what a
# free-threaded build would need.


cdef int64_t NEVER = -1            # a timeout of inf: no deadline at all


cdef double INF = float("inf")


cdef inline int64_t coarsetime() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline M getm():
    """The M running on this thread, or None on a thread that is not an M of
    the runtime in force."""
    cdef void* m = gmp_get_m()
    if m == NULL or (<M>m).s is not sched:
        return None
    return <M>m


cdef str NOT_A_G = ("this gmp operation blocks and needs a running G: "
                    "call it inside gmp.run(main) or a G started with gmp.go()")


cdef object no_runtime(str what):
    """The NoRuntime error for `what` called where no G runs: on a plain
    thread while a runtime runs, or with no runtime at all."""
    if sched is not None:
        return NoRuntime(f"{what} was called from a thread that is not one of the running "
                         f"runtime's Ms: from other threads use gmp.inject(fn) to start a G")
    return NoRuntime(f"{what} needs a running runtime: call it inside gmp.run(main)")


cdef G begin_park():
    """The running G, about to block.  Raises NoRuntime outside a G, and any
    interrupt (kill, Timeout) that arrived while the G was not parked."""
    cdef M m = getm()
    cdef G g
    if m is None or m.curg is None:
        if sched is not None and m is None:
            raise no_runtime("this blocking gmp operation")
        raise NoRuntime(NOT_A_G)
    g = m.curg
    if g.status != GRUNNING:
        raise RuntimeError("a gmp operation cannot block while its G is already parking "
                           "(called from a blocking call's submit step)")
    if g.pending is not None:
        raise_pending(g)
    if sched.stopping:
        if gmp_nanotime() - sched.stop_ns > sched.kill_grace_ns:
            abandon(m, g)
        raise Killed()
    return g


cdef int abandon(M m, G g) except -1:
    """Parks g for good: it kept running past KILL_GRACE into shutdown,
    swallowing gmp.Killed (see Shutdown in the notes)."""
    report_error(g, RuntimeError(
        f"G {g.id} ({g.name}) swallowed gmp.Killed for more than "
        f"{sched.kill_grace_ns / 1e9:g} s of shutdown; it is abandoned at this park point"))
    park(g, "abandoned at shutdown")
    return 0


cdef int raise_pending(G g) except -1:
    exc = g.pending
    g.pending = None
    raise exc


cdef int64_t timeout_ns(object seconds, str what) except? -2:
    """Validates a duration in seconds and returns it in ns; NEVER for inf.

    As the stdlib's timeouts: not a number is TypeError, nan or negative is
    ValueError, finite but beyond int64 nanoseconds (292 years) is
    OverflowError; inf means "never" (threading's timeout=-1, Go's no
    deadline)."""
    cdef double s
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(seconds).__name__}")
    s = seconds
    if s != s:
        raise ValueError(f"{what} must not be NaN")
    if s < 0:
        raise ValueError(f"{what} must be >= 0 seconds, got {seconds!r}")
    if s == INF:
        return NEVER
    if s * 1e9 >= 9.2e18:
        raise OverflowError(f"{what} is too large: {seconds!r} s")
    return <int64_t>(s * 1e9)


cdef inline int64_t deadline_after(int64_t d) noexcept:
    """now + d for a validated d; NEVER stays NEVER."""
    if d == NEVER:
        return NEVER
    return gmp_nanotime() + d


cdef int add_timer(G g, int64_t deadline) except -1:
    """Arms a timer that wakes g's coming park with WAKE_TIMEOUT unless it
    wakes first (deadline from deadline_after; NEVER arms nothing)."""
    if deadline != NEVER:
        theap_push(&g.home.timers, deadline, g, g.ticket, None)
    return 0


cdef inline void withdraw(G g) noexcept:
    """Cancels every registration made for the park being prepared (an
    error came before the park): invariant 3."""
    g.ticket += 1


cdef int64_t wakes[WS_N]            # wake-ups that readied a G, per source


cdef int64_t stale_wakes[WS_N]      # wake-ups refused (another waker won)


cdef int64_t remote_wakes = 0       # of the readied, via another P's inbox


cdef inline void stamp(P p, G g) noexcept:
    p.readyseq += 1
    g.readyseq = p.readyseq


cdef int local_put(P p, G g) except -1:
    """Queues g on p, which the calling M owns (takes a new reference)."""
    stamp(p, g)
    if g.glet is None and g.home is None:
        runq_put(p, g)
    else:
        _incref(<PyObject*>g)
        ring_push(&p.boundq, <PyObject*>g)
    return 0


cdef int runnext_put(P p, G g) except -1:
    cdef PyObject* old = p.runnext
    _incref(<PyObject*>g)
    p.runnext = <PyObject*>g
    if old != NULL:
        local_put(p, <G>old)
        _decref(old)
    return 0


cdef int put_home(G g, bint next) except -1:
    """Queues runnable g on its home P: on the P's own queues when called on
    that P's M, else into its inbox followed by an eventfd kick."""
    global remote_wakes
    cdef M m = getm()
    cdef P p = g.home
    if m is not None and m.p is p:
        if next:
            runnext_put(p, g)
        else:
            local_put(p, g)
    else:
        _incref(<PyObject*>g)
        gqueue_push(&p.inbox, <PyObject*>g)
        netpoll_kick(p)
        remote_wakes += 1
    return 0


cdef int goready(G g, uint64_t ticket, int how, object val, int idx, bint next,
                 int src) except -1:
    """THE wake path (the invariant in the notes): every waker of a parked G
    -- channels, sync, join, timers, Timeout scopes, kill, netpoll, blocking
    calls -- comes here with the ticket it registered with.  Returns 1 if g
    was readied, 0 if the wake-up is stale (another waker won, or the G is
    not parked): then nothing changes and the caller keeps its value."""
    if g.ticket != ticket:
        stale_wakes[src] += 1
        return 0
    if g.status != GWAITING:
        # A registration with the live ticket of a G that is not parked
        # breaks invariant 3; refuse it rather than queue a running G.
        gmp_debug_fail("goready: G with a live ticket is not parked")
        stale_wakes[src] += 1
        return 0
    wakes[src] += 1
    g.ticket += 1
    g.wakeval = val
    g.wakecase = idx
    g.wakeup = how
    g.status = GRUNNABLE
    if lat_on:
        g.readyat = gmp_nanotime()
    if obs_flags:
        obs_ready(getm(), g)
    put_home(g, next)
    return 1


cdef inline int wake(G g, waiter_t* w, object val, int how) except -1:
    """goready for a waiter just popped from a wait queue (runs next)."""
    return goready(g, w.ticket, how, val, w.idx, True, WS_WAITQ)


cdef int interrupt(G g, object exc) except -1:
    """Raises exc in g at its park point: now if parked, else at the next."""
    if g.pending is None or isinstance(exc, Killed):
        g.pending = exc
    if g.status == GWAITING:
        goready(g, g.ticket, WAKE_INTERRUPT, None, 0, False, WS_INTERRUPT)
    return 0


cdef int park_prepare(M m, G g, object reason) except -1:
    """g (running) is parked from now on: a wake-up readies it (see the
    invariant).  Remembers a user greenlet parking on g's behalf."""
    cdef object cur = PyGreenlet_GetCurrent()
    if cur is not g.glet:
        g.parkglet = cur
    g.status = GWAITING
    g.waitreason = reason
    g.waitsince = coarsetime()
    g.iowoke = False
    m.p.nparks += 1
    if obs_flags:
        obs_park(m, g, reason)
    return 0


cdef int park_commit(M m, G g) except -1:
    """Switches away until g runs again; raises its pending interrupt."""
    schedule_from(m, g)
    if g.wakeup == WAKE_INTERRUPT:
        g.wakeup = WAKE_OK
        raise_pending(g)
    return 0


cdef int park(G g, object reason) except -1:
    """Parks the running G g until goready(g); raises its pending interrupt."""
    cdef M m = <M>gmp_get_m()
    park_prepare(m, g, reason)
    return park_commit(m, g)


cdef G block_on(waitq_t* q, object elem, object timeout, object reason):
    """Parks the running G on q (offering elem), with an optional timeout;
    returns the G, whose wakeup field says why it woke.  The timeout is
    validated before anything is registered (invariant 3)."""
    cdef int64_t dl = NEVER
    if timeout is not None:
        dl = deadline_after(timeout_ns(timeout, "timeout"))
    cdef G g = begin_park()
    waitq_push(q, g, elem, 0)
    try:
        add_timer(g, dl)
    except BaseException:
        withdraw(g)
        raise
    park(g, reason)
    return g


cdef Py_ssize_t wake_n(waitq_t* q, Py_ssize_t n, int how) except -1:
    """Wakes up to n valid waiters of q with `how`; returns how many."""
    cdef waiter_t w
    cdef Py_ssize_t k = 0
    while k < n and waitq_pop(q, &w):
        try:
            k += wake(<G>w.g, &w, None, how)
        finally:
            waiter_release(&w)
    return k


cdef int schedule_from(M m, G g) except -1:
    """Called by a G that parked or yielded: switch to the next G directly
    when the P has one at hand, else to the scheduler greenlet."""
    cdef G nxt = local_pick(m.p, True)
    if nxt is not None and nxt.glet is None and not m.gfree:
        # A new greenlet inherits the Python recursion depth of the one that
        # starts it: start it from g0, not from deep inside this G's stack.
        runnext_put(m.p, nxt)
        nxt = None
    if nxt is None:
        sched_switch(m, m.schedglet, None, g, RESUME_G)
    elif nxt is g:
        set_running(m, g)
    else:
        run_g(m, nxt, RESUME_G, g)
    return 0


cdef int gosched_g(G g) except -1:
    cdef M m = <M>gmp_get_m()
    g.status = GRUNNABLE
    if lat_on:
        g.readyat = gmp_nanotime()
    if obs_flags:
        obs_yield(m, g)
    local_put(m.p, g)
    schedule_from(m, g)
    return 0


def park_unless(trylock, WaitList wl not None, str reason, timeout):
    """For locks shared with monkey-patched code: returns 1 if trylock() is
    true, else parks the running G on wl until notified (0) or until timeout
    (-1).  No Python bytecode runs between the failed try and the park, so a
    release on another M (release, then notify wl) cannot slip in between
    and be lost.  trylock must be a C callable that does not release the
    GIL, e.g. a bound ``_thread.lock.acquire`` with blocking False."""
    cdef G g
    if trylock(False):
        return 1
    g = block_on(&wl.waiters, None, timeout, reason)
    return 0 if g.wakeup == WAKE_OK else -1

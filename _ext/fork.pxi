# fork(): what a child process inherits of a running runtime.
#
# fork() copies one thread, the one that called it, and every fd.  Left
# alone, the child would share each P's epoll instance and eventfd with the
# parent (epoll instances are open files: the parent's Ms would eat the
# child's edge-triggered events, and kicks would cross over), would count
# blocking calls whose helper threads do not exist, and would schedule onto
# Ms that are gone.  An os.register_at_fork hook therefore rebuilds the
# child's runtime; the parent is not touched at all.
#
# What a user of gevent or Go expects decides what survives.  gevent
# reinitialises its hub in the child and the forking greenlet carries on;
# Go has no fork, and its os/exec children start afresh.  So:
#
#   - Forked by a G (multiprocessing, a daemonising script, a pre-fork
#     server started from gmp): the runtime continues in the child as ONE M,
#     the forking G's, with a fresh epoll instance and eventfd.  Fresh Gs
#     queued anywhere move to that M; Gs bound to Ms that did not survive
#     (their greenlets belong to threads the child does not have) end with
#     gmp.Killed, waking their joiners; poll descriptors are re-registered
#     with the new epoll (the registration reports current readiness, so no
#     edge is lost); timers move over; a G parked in gmp.blocking, whose
#     helper thread is gone, gets RuntimeError.  If the forking G ran on M0,
#     gmp.run returns in the child as usual when main returns; on another M
#     the caller of gmp.run does not exist in the child, whose code is then
#     expected to leave by os._exit() (as multiprocessing's children do),
#     and main, bound to M0, ends with Killed there.
#   - Forked by a thread that is not an M (a plain thread, or after the
#     runtime ended): the child has no runtime.  It may call gmp.run afresh,
#     which is what gunicorn's workers do after the arbiter forks them.
# In every child the blocking pool starts empty (gmp/blocking.py).
#
# The greenlets of threads that do not exist in the child can never run
# and must never be freed (freeing a suspended greenlet switches into it to
# raise GreenletExit): they are kept in fork_orphans for the child's life.
#
# Relies on the GIL: the hook runs in the forking thread with the GIL held,
# and no other thread of the child exists yet.  That the parent held the
# GIL across fork() also means no queue mutex was held by another thread.

cdef list fork_orphans = []


cdef int fork_child() except -1:
    global sched
    cdef Sched s = sched
    cdef void* raw = gmp_get_m()
    if s is None:
        return 0
    if raw == NULL or (<M>raw).s is not s:
        # Not forked by an M of the runtime: nothing can run it here.
        forget_runtime(s)
        sched = None
        return 0
    continue_as_one_m(s, <M>raw)
    return 0


cdef void close_fds(P p) noexcept:
    """Closes the child's copies of p's epoll instance and eventfd."""
    if p.evfd >= 0:
        c_close(p.evfd)
        p.evfd = -1
    if p.epfd >= 0:
        c_close(p.epfd)
        p.epfd = -1


cdef int forget_runtime(Sched s) except -1:
    cdef P p
    cdef PollDesc pd
    for p in s.allp:
        close_fds(p)
    for pd in pd_table:
        if pd is not None and pd.owner is s:
            pd.p = None
            pd.owner = None
    fork_orphans.append(s)
    return 0


cdef int continue_as_one_m(Sched s, M m) except -1:
    cdef P p = m.p
    cdef P q
    cdef G g
    cdef PyObject* r
    cdef PyObject* nxt
    cdef int64_t got
    cdef timer_t t
    cdef int i
    cdef PollDesc pd
    cdef epoll_event ev
    lost = [q for q in s.allp if q is not p]
    fork_orphans.append([mm for mm in s.ms if mm is not m])
    fork_orphans.append(lost)
    for q in s.allp:
        close_fds(q)
    netpoll_init(p)
    s.allp = [p]
    s.ms = [m]
    s.nprocs = 1
    s.multinode = False
    s.nidle = 0
    s.nspinning = 0
    s.sysmon_entered = False        # that thread is not in the child
    s.sysmon_stop = True
    m.spinning = False
    p.sleeping = 0
    p.woke = WOKE_NONE
    # Blocking calls in flight: their helper threads are gone.
    gmp_add_i64(&s.nexternal, -s.nblocking)
    s.nblocking = 0
    for i in range(s.ngq):
        s.gqs[i].nps = 1 if i == p.gqi else 0
    # Fresh Gs queued on the lost Ps move here, as do their timers.
    for q in lost:
        r = runq_get(&q.runq)
        while r != NULL:
            adopt(p, <G>r)
            _decref(r)
            r = runq_get(&q.runq)
        if q.runnext != NULL:
            r = q.runnext
            q.runnext = NULL
            adopt(p, <G>r)
            _decref(r)
        r = gqueue_take(&q.inbox, 1 << 30, &got)     # spawn hand-offs (proc.pxi)
        while r != NULL:
            nxt = (<G>r).schedlink
            (<G>r).schedlink = NULL
            adopt(p, <G>r)
            _decref(r)
            r = nxt
        while q.timers.n:
            theap_pop(&q.timers, &t)
            try:
                theap_push(&p.timers, t.when, <G>t.g if t.g != NULL else None, t.ticket,
                           <object>t.obj if t.obj != NULL else None)
            finally:
                _xdecref(t.g)
                _xdecref(t.obj)
        q.m = None
    # Gs bound to a lost P (or running on its M) cannot run again.
    for g in allg_list():
        if g.status == GDEAD:
            continue
        if g.home is not None and g.home is not p:
            if g.glet is not None:
                fork_orphans.append(g.glet)
            fork_orphans.append(g)
            if g is s.main:
                s.main = None       # not a shutdown: the child goes on
            goexit(g, None, Killed("its M did not survive fork()"))
        elif g.status == GWAITING and g.waitreason == "blocking call":
            interrupt(g, RuntimeError("gmp.blocking: the helper thread running this call "
                                      "does not exist in the child after fork()"))
    # Poll descriptors: register afresh with the new epoll.
    p.nfds = 0
    for i in range(len(pd_table)):
        pd = pd_table[i]
        if pd is None or pd.owner is not s:
            continue
        ev.events = PD_EVENTS
        ev.data.u64 = (<uint64_t>pd.seq << 32) | <uint32_t>pd.fd
        if epoll_ctl(p.epfd, EPOLL_CTL_ADD, pd.fd, &ev) == 0:
            pd.p = p
            p.nfds += 1
        else:
            pd.p = None         # the fd is not open any more
            pd.owner = None
            pd_table[i] = None
    return 0


cdef void adopt(P p, G g) noexcept:
    """Queues a fresh G taken from a lost P on p (borrowed reference)."""
    if g.status == GRUNNABLE and g.glet is None and g.home is None:
        local_put(p, g)


def _after_fork_child():
    fork_child()


_os.register_at_fork(after_in_child=_after_fork_child)

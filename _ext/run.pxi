# The Ms and run(): starting each M's thread and scheduler greenlet and the
# sysmon thread, shutdown (cancelling every G) and teardown.
#
# Shutdown.  When the main G returns (or a G fails with abort_on_error), every
# other G is cancelled as asyncio.run does: Gs that never started are dropped
# (their result is gmp.Killed), started ones get gmp.Killed at their park
# point.  From then on every park point raises Killed at once, so a cleanup
# handler that blocks again (a `finally` that sleeps, locks or sends) is cut
# off there instead of being left suspended forever: every G ends dead,
# and nothing waits on a G that can no longer be woken.  Each M exits when
# its P has nothing runnable; M0 then joins the other Ms (a G stuck in a
# blocking C call delays this).  A G that swallows Killed and parks again is
# given KILL_GRACE (GMPKILLGRACE seconds, default 5) from the start of
# shutdown; after that its next park point reports it on stderr and parks it
# for good (Go would simply exit the process when main returns; a library
# must not, so the G is abandoned instead and gmp.run returns).
#
# Teardown cannot be interrupted half-way.  Whatever ends gmp.run (the main
# G returning, an exception from a signal handler in M0's scheduler, a
# thread that failed to start part-way through starting the Ms), every M
# that started is stopped and joined before the scheduler state is torn
# down; an exception that arrives during the joins (a second Ctrl-C) is held
# and raised once they are done.  Each M also holds its own reference to its
# Sched (M.s), and getm() answers only for an M of the runtime in force.
#
# Ctrl-C and sys.exit().  KeyboardInterrupt or SystemExit leaving any G
# stops the runtime (as on gevent's hub) and gmp.run raises it; one raised in
# M0's scheduler (a SIGINT while M0 sleeps in epoll_wait runs the handler
# there) stops the other Ms first.


cdef class M:
    def __cinit__(self, int id, P p):
        self.id = id
        self.p = p
        self.gfree = []
        p.m = self


cdef int begin_shutdown() except -1:
    cdef G g
    cdef P p
    if sched.stopping:
        return 0
    sched.stopping = True
    sched.stop_ns = gmp_nanotime()
    for g in allg_list():
        if g.status == GDEAD:
            continue
        if g.glet is None and g is not sched.main:
            finish_unstarted(g)
        else:
            interrupt(g, Killed())
    for p in sched.allp:
        netpoll_kick(p)
    return 0


def _mstart(M m):
    """Body of an M's scheduler greenlet."""
    schedule(m)


def _mthread(M m):
    """Body of the OS thread of an M other than M0.  m.tid set means the
    thread entered and run() waits for m.exited; a thread that comes in
    after teardown began (its start() was interrupted) leaves at once."""
    if m.s.nomore or m.s is not sched:
        return
    m.tid = _threading.get_ident()
    try:
        mthread_body(m)
    finally:
        gmp_set_m(NULL)
        m.exited.release()


cdef int mthread_body(M m) except -1:
    gmp_set_m(<void*>m)
    if m.cpus is not None:
        try:
            _os.sched_setaffinity(0, m.cpus)
        except OSError as e:
            _sys.stderr.write(f"gmp: M{m.id} could not pin itself to CPUs {m.cpus}: {e}\n")
    m.native_tid = _threading.get_native_id()     # published once pinned
    m.schedglet = PyGreenlet_New(_mstart, NULL)
    margs = (m,)
    PyGreenlet_Switch(<PyObject*>m.schedglet, <PyObject*>margs, NULL)
    return 0


def _sysmon_thread(Sched s, cfg):
    """Body of the sysmon thread (see _mthread for the entry protocol)."""
    if s.nomore:
        return
    s.sysmon_entered = True
    try:
        _sysmon_main(s, cfg)
    finally:
        s.sysmon_exited.release()


def run(main, tuple args, dict kwargs, int procs, policy, bint abort_on_error,
        sysmon=None, placements=None, double kill_grace=5.0):
    """Run main(*args, **kwargs) as the main G on `procs` Ms; see gmp.run.
    policy: a gmp.policy.Policy; sysmon: a gmp.sysmon.Config, or None for
    no sysmon thread; placements: one gmp.topology.Placement per M, or None;
    kill_grace: KILL_GRACE in seconds (see Shutdown in the notes)."""
    global sched
    cdef Sched s
    cdef P p
    cdef M m
    cdef M m0
    cdef G g = None
    cdef int i
    smt = None
    m0_affinity = None
    held = None
    if sched is not None:
        raise RuntimeError("gmp.run() is already running in this process; "
                           "start more Gs with gmp.go()")
    if gmp_get_m() != NULL:
        raise RuntimeError("gmp.run() cannot be called from inside an M")
    if not 1 <= procs <= MAX_PROCS:
        raise ValueError(f"procs must be between 1 and {MAX_PROCS}, got {procs}")
    if not kill_grace >= 0:
        raise ValueError(f"kill_grace must be >= 0 seconds, got {kill_grace!r}")
    s = Sched()
    s.nprocs = procs
    policy_from(&s.pol, policy)
    s.policy = policy
    s.abort_on_error = abort_on_error
    s.kill_grace_ns = <int64_t>(min(kill_grace, 9e9) * 1e9)
    s.allp = []
    s.ms = []
    s.start_ns = gmp_nanotime()
    s.gil_slow_ns = <int64_t>(_sys.getswitchinterval() * 0.8e9)
    for i in range(procs):
        p = P(i)
        p.sorder = <int*>malloc(procs * sizeof(int))
        if p.sorder == NULL:
            raise MemoryError()
        m = M(i, p)
        m.s = s
        if placements is not None:
            m.cpus = placements[i].cpus
            p.node = placements[i].node
        s.allp.append(p)
        s.ms.append(m)
    s.init_gqs()
    sched = s
    m0 = <M>s.ms[0]
    try:
        for p in s.allp:
            netpoll_init(p)
        # The main G is bound to P0 before it starts, so it always runs on
        # the calling thread (signal handlers, thread-affine libraries).
        g = newg(main, args, kwargs)
        g._name = "main"
        g.home = m0.p
        s.main = g
        local_put(m0.p, g)
        for m in s.ms[1:]:
            m.exited = _thread.allocate_lock()
            m.exited.acquire()
            m.thread = _threading.Thread(target=_mthread, args=(m,),
                                         name=f"gmp-M{m.id}", daemon=True)
        gmp_set_m(<void*>m0)
        m0.tid = _threading.get_ident()
        m0.native_tid = _threading.get_native_id()
        if m0.cpus is not None:
            m0_affinity = _os.sched_getaffinity(0)
            _os.sched_setaffinity(0, m0.cpus)
        m0.schedglet = PyGreenlet_New(_mstart, NULL)
        for m in s.ms[1:]:
            m.thread.start()
        if sysmon is not None:
            s.sysmon_exited = _thread.allocate_lock()
            s.sysmon_exited.acquire()
            smt = _threading.Thread(target=_sysmon_thread, args=(s, sysmon),
                                    name="gmp-sysmon", daemon=True)
            smt.start()
        margs = (m0,)
        PyGreenlet_Switch(<PyObject*>m0.schedglet, <PyObject*>margs, NULL)
    except BaseException as e:
        # M0's scheduler raised (a signal handler run while it was idle:
        # Ctrl-C), or starting failed part-way (a thread that would not
        # start).  Either way the Ms that did start are stopped below.
        held = e
    # Teardown, which nothing interrupts (see the notes).
    gmp_set_m(NULL)
    held = stop_ms(s, held)
    s.sysmon_stop = True
    if s.sysmon_entered:
        held = wait_exited(s.sysmon_exited, held)
    if m0_affinity is not None:
        try:
            _os.sched_setaffinity(0, m0_affinity)
        except BaseException as e:
            held = held or e
    sched = None
    teardown(s)
    if held is not None:
        raise held
    if s.abort_exc is not None:
        raise s.abort_exc
    if g._exc is not None:
        raise g._exc
    return g._value


cdef object wait_exited(object lock, object held):
    """Waits until a thread releases `lock` (its last act) even if exceptions
    (signal handlers) arrive meanwhile; returns held, or the first such
    exception if held was None.  Not Thread.join(): CPython 3.11 marks a
    thread stopped when a join is interrupted, while it still runs."""
    while True:
        try:
            lock.acquire()
            lock.release()
            return held
        except BaseException as e:
            if held is None:
                held = e


cdef object stop_ms(Sched s, object held):
    """Stops every M of s that started and waits for its thread to end (see
    wait_exited for held)."""
    cdef M m
    s.nomore = True
    while True:
        try:
            begin_shutdown()
            break
        except BaseException as e:
            if held is None:
                held = e
    for m in s.ms[1:]:
        if m.tid != 0:
            held = wait_exited(m.exited, held)
    return held


cdef void teardown(Sched s) noexcept:
    cdef P p
    cdef int i
    cdef PyObject* r
    cdef G g
    for p in s.allp:
        p.release()
        p.m = None
    if s.gqs != NULL:
        for i in range(s.ngq):
            gqueue_clear(&s.gqs[i].q)
        free(s.gqs)
        s.gqs = NULL
        s.ngq = 0
    # Abandoned Gs (parked when shutdown ended) are dropped from the G list;
    # their greenlets are collected like any unreachable greenlet.
    r = s.allg
    s.allg = NULL
    while r != NULL:
        g = <G>r
        r = g.allnext
        g.allprev = g.allnext = NULL
        g.in_allg = False
        _decref(<PyObject*>g)
    s.ngs = 0
    s.main = None

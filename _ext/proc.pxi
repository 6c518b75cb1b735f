# The G lifecycle: a G is created (newg, newproc, the spawn hand-off), started
# on a worker greenlet of the M that first runs it, switched to and from
# (run_g, sched_switch), and finished (goexit), its error reported.
#
# The scheduler: Gs, Ps and Ms.
#
# The hard rule.  greenlet never lets a thread switch into a greenlet that
# another thread started.  A G's greenlet is therefore created lazily, by the
# M that first runs it, with that M's scheduler greenlet as its parent.  Until
# then the G is *fresh* and may sit in any queue and be stolen; afterwards it
# is *bound* to its home P (G.home) and every wake-up routes it there:
# put_home() puts it on the home P's own queues when called on that P's M, and
# otherwise into the home P's inbox, followed by an eventfd kick.
#
# Spawn hand-off.  go() puts the new G in the spawner's runnext and wakes an
# idle M to steal it, as Go does.  Under the GIL the woken M cannot take the
# GIL before the spawner parks, and the spawner's M then runs runnext itself;
# an accept loop that takes a burst of connections without parking keeps the
# GIL throughout, and the helper, having waited a switch interval for the
# GIL, backs off.  Every connection G would start, and stay bound, on the
# accept loop's M, so one invisible C call there would hold them all.  So a
# G spawned by a G whose last park was an I/O wait (an accept loop, a
# server's poller, a handler that just read a request: G.iowoke, set by the
# netpoller, cleared by every park) is dealt round-robin over the Ps: the
# spawner's own turn goes to its runnext as usual, another P's turn into
# that P's inbox with a kick.  A P that sysmon sees stuck (P.stuck: awake,
# no scheduling progress for stuck_ns) is skipped, so new work stays off a
# stalled M.  Other spawns keep runnext's locality (a spawn followed by a
# join stays on one M).  No hand-off happens during the GIL back-off (the
# Ms are busy running Python: dealing work out would only make them fight).
#
# Switching.  park() does not return to the scheduler greenlet when it can
# avoid it: if the P has a runnable G at hand (runnext, the local queues, the
# inbox), the parking G switches straight to it.  That halves the greenlet
# switches of a channel hand-off (G1 -> G2 instead of G1 -> g0 -> G2).  The
# scheduler greenlet takes over whenever the fast path has nothing or when
# something periodic is due (every 61st tick with work waiting in the global
# queue, or an expired timer), and it is where finished Gs land: a greenlet
# that returns or raises always returns to its parent, g0.  Because control
# can reach g0 from any G, M.curg (set before every switch) is what tells g0
# which G just parked or finished.
#
# User greenlets.  Libraries create greenlets inside a G.  Such a greenlet
# runs on the G's M and belongs to the G: if it parks, the G parks, and the
# wake-up resumes that greenlet (G.parkglet), not the G's own, so a
# `child.switch()` returns the child's value.  A user greenlet can also
# outlive its G and be switched to from another G, and when it then returns
# it lands in its parent, a worker greenlet of the scheduler that has moved
# on.  Such a stray switch is detected at every place a scheduler-owned
# greenlet resumes (the resumer must be the scheduler: the M's curg must be
# the G it resumed, or a worker is handed a G) and the value (or exception)
# is passed on to the G running now, as if the dead G's greenlet had been the
# child's parent; the worker then waits again.  No switch can make the
# scheduler run a G twice or read a value it did not hand over.


cdef class G:
    """A task run by gmp.  Create with gmp.go(); see gmp.G for the API."""

    def __dealloc__(self):
        waitq_free(&self.joinq)

    @property
    def name(self):
        if self._name is None:
            fn = self.fn
            self._name = getattr(fn, "__qualname__", None) or repr(fn)
        return self._name

    @name.setter
    def name(self, value):
        if not isinstance(value, str):
            raise TypeError(f"G.name must be a str, not {type(value).__name__}")
        self._name = value

    @property
    def dead(self):
        return self.status == GDEAD

    @property
    def state(self):
        """'new' (never run), 'runnable', 'running', 'waiting' or 'dead'."""
        if self.status == GRUNNABLE:
            return "new" if self.glet is None else "runnable"
        return ("", "runnable", "running", "waiting", "dead")[self.status]

    @property
    def wait_reason(self):
        """Why the G is parked ('chan receive', 'sleep', ...), else None."""
        return self.waitreason if self.status == GWAITING else None

    @property
    def wait_seconds(self):
        """How long the G has been parked (coarse clock), else None."""
        if self.status != GWAITING:
            return None
        return (coarsetime() - self.waitsince) / 1e9

    @property
    def home_p(self):
        """Id of the P the G is bound to, or None while it is fresh."""
        return self.home.id if self.home is not None else None

    @property
    def frame(self):
        """The innermost frame of a parked or runnable started G (None for a
        running G: read its thread's frame instead)."""
        if self.glet is None or self.status == GRUNNING:
            return None
        return self.glet.gr_frame

    @property
    def exception(self):
        """The exception the G died with (gmp.Killed if killed), else None."""
        return self._exc if self.status == GDEAD else None

    def join(self, timeout=None):
        """Wait until the G is dead; True if it is, False on timeout.

        Never raises the G's exception (see result())."""
        if self.status == GDEAD:
            return True
        if current() is self:
            raise RuntimeError("a G cannot join itself")
        block_on(&self.joinq, None, timeout, "join")
        return self.status == GDEAD

    def result(self, timeout=None):
        """Join, then return the G's value or raise its exception."""
        if not self.join(timeout):
            raise TimeoutError(f"G {self.id} did not finish within {timeout!r} s")
        if self._exc is not None:
            raise self._exc
        return self._value

    def kill(self):
        """Deliver gmp.Killed at the G's next park point.

        A G that never started is marked dead and never runs.  Killing the
        running G raises gmp.Killed at once.  Does not wait: join() for that."""
        if self.status == GDEAD:
            return
        if self.glet is None:
            finish_unstarted(self)
            return
        m = getm()
        if m is not None and (<M>m).curg is self:
            raise Killed()
        interrupt(self, Killed())

    def throw(self, exc):
        """Raise exception instance `exc` in this started G: at once if it
        is the running G, else at its park point (waking it if parked) or
        its next one.  Does not wait.  gmp.monkey.signal uses it to raise a
        signal handler's exception in the main G, where CPython raises it
        in the main thread."""
        if not isinstance(exc, BaseException):
            raise TypeError(f"G.throw() takes an exception instance, not {type(exc).__name__}")
        if self.glet is None or self.status == GDEAD:
            raise RuntimeError(f"G.throw(): G {self.id} is not running or parked")
        m = getm()
        if m is not None and (<M>m).curg is self:
            raise exc
        interrupt(self, exc)

    def __repr__(self):
        r = self.wait_reason
        extra = f" [{r}]" if r else ""
        return f"<gmp.G {self.id} {self.name!r} {self.state}{extra}>"


cdef void allg_add(G g) noexcept:
    _incref(<PyObject*>g)
    g.allprev = NULL
    g.allnext = sched.allg
    if sched.allg != NULL:
        (<G>sched.allg).allprev = <PyObject*>g
    sched.allg = <PyObject*>g
    g.in_allg = True
    sched.ngs += 1


cdef void allg_remove(G g) noexcept:
    if not g.in_allg:
        return
    if g.allprev != NULL:
        (<G>g.allprev).allnext = g.allnext
    else:
        sched.allg = g.allnext
    if g.allnext != NULL:
        (<G>g.allnext).allprev = g.allprev
    g.allprev = g.allnext = NULL
    g.in_allg = False
    sched.ngs -= 1
    _decref(<PyObject*>g)


cdef list allg_list():
    cdef list out = []
    cdef PyObject* p = sched.allg if sched is not None else NULL
    while p != NULL:
        out.append(<G>p)
        p = (<G>p).allnext
    return out


cdef G newg(object fn, tuple args, dict kwargs):
    """A new runnable G on the G list, not yet queued anywhere."""
    cdef G g = G.__new__(G)
    sched.goidgen += 1
    g.id = sched.goidgen
    g.fn = fn
    g.args = args
    g.kwargs = kwargs if kwargs else None
    g.status = GRUNNABLE
    if lat_on:
        g.readyat = gmp_nanotime()
    if obs_flags:
        obs_created(g)
    allg_add(g)
    return g


cdef G newproc(object fn, tuple args, dict kwargs):
    cdef M m = getm()
    cdef G g
    cdef P p
    if m is None:
        raise no_runtime("gmp.go()")
    g = newg(fn, args, kwargs)
    if m.curg is not None:
        g.parent_id = m.curg.id
    p = m.p
    p.nspawn += 1
    if sched.stopping:
        finish_unstarted(g)
    elif sched.pol.place_global:
        _incref(<PyObject*>g)
        gqueue_push(&sched.gqs[p.gqi].q, <PyObject*>g)
        if sched.pol.wake_helpers:
            wakep()
    elif m.curg is not None and m.curg.iowoke and sched.nprocs > 1 and sched.pol.wake_helpers \
            and handoff(m, g):
        p.nhandoff += 1
    else:
        runnext_put(p, g)
        if sched.nidle and sched.pol.wake_helpers:
            wakep()
    return g


cdef bint handoff(M m, G g) noexcept:
    """Places fresh G g on the next P in round-robin order, unless that is
    this P or one sysmon sees stuck (then False: the caller keeps g).  See
    "Spawn hand-off"."""
    cdef P p
    if in_backoff():
        return False
    sched.spread += 1
    p = <P>sched.allp[sched.spread % <uint32_t>sched.nprocs]
    if p is m.p or gmp_load_i32(&p.stuck):
        return False
    _incref(<PyObject*>g)
    gqueue_push(&p.inbox, <PyObject*>g)
    netpoll_kick(p)
    return True


cdef int goexit(G g, object value, object exc) except -1:
    """Records a G's death and wakes its joiners (scheduler context)."""
    if obs_flags:
        obs_exit(g)
    g.status = GDEAD
    g.ticket += 1               # invariant 3: no registration outlives the G
    g._value = value
    g._exc = exc
    g.glet = g.parkglet = None
    g.args = g.kwargs = g.wakeval = g.pending = None
    wake_n(&g.joinq, PY_SSIZE_T_MAX, WAKE_OK)
    allg_remove(g)
    if g is sched.main:
        begin_shutdown()
    elif exc is not None and not isinstance(exc, Killed):
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            # As in a plain Python program (and on gevent's hub): Ctrl-C or
            # sys.exit() in any G stops the runtime, and gmp.run raises it.
            if sched.abort_exc is None:
                sched.abort_exc = exc
                begin_shutdown()
            return 0
        report_error(g, exc)
        if sched.abort_on_error and sched.abort_exc is None:
            sched.abort_exc = exc
            begin_shutdown()
    return 0


cdef int finish_unstarted(G g) except -1:
    """Kills a G that never ran; its queue slot is skipped when popped."""
    goexit(g, None, Killed())
    g.fn = None
    return 0


cdef void report_error(G g, object exc) noexcept:
    try:
        err = _sys.stderr
        err.write(f"gmp: G {g.id} ({g.name}) raised an unhandled exception:\n")
        tb = exc.__traceback__
        # Skip the worker greenlet's own frame: the report starts at the G's.
        while tb is not None and tb.tb_frame.f_code.co_filename.endswith(".pxi"):
            tb = tb.tb_next
        _traceback.print_exception(type(exc), exc, tb, file=err)
        err.flush()
    except BaseException:
        pass


cdef enum:
    RESUME_G = 0        # a parked G's greenlet: resumed when its G runs again
    RESUME_WORK = 1     # an idle worker: resumed with a fresh G, or RETIRE
    RESUME_SCHED = 2    # g0: resumed when the running G parks or finishes


cdef object RETIRE = object()   # what free_workers() hands an idle worker


cdef inline void set_running(M m, G g) noexcept:
    """g starts or resumes running on m (the M's thread is about to run it)."""
    if g.status != GRUNNABLE:
        gmp_debug_fail("set_running: G is not runnable (queued twice?)")
    m.curg = g
    g.status = GRUNNING
    note_run(m, g)
    if obs_flags:
        obs_run(m, g)


cdef inline bint entry_runnable(G g) noexcept:
    """Whether a G popped from a queue is to be run: GRUNNABLE.  A dead one
    (killed before it ever ran) is skipped; anything else is a second queue
    entry of one G (invariant 1), skipped too and fatal in the debug build."""
    if g.status == GRUNNABLE:
        return True
    if g.status != GDEAD:
        gmp_debug_fail("a G was queued twice")
    return False


cdef inline void bind_fresh(M m, G g, object glet) noexcept:
    """g, never run, will run on worker greenlet glet of m: it is bound to
    m's P from now on (unless it was bound at birth)."""
    if g.home is None:
        g.home = m.p
    g.glet = glet


cdef object sched_switch(M m, object to, object args, G expect, int mode):
    """Switches from a scheduler-owned greenlet to `to`; returns the value
    the scheduler resumes this greenlet with.  mode and expect say what a
    resume by the scheduler looks like; any other resume is a stray switch
    from a user greenlet (see User greenlets in the notes): its value or
    exception is passed on to the G running now, and we wait again."""
    cdef object r
    cdef object exc
    cdef object throw = None
    cdef G cur
    while True:
        exc = None
        r = None
        try:
            if throw is not None:
                r = to.throw(throw)
            elif args is None:
                r = PyGreenlet_Switch(<PyObject*>to, NULL, NULL)
            else:
                r = PyGreenlet_Switch(<PyObject*>to, <PyObject*>args, NULL)
        except BaseException as e:
            exc = e
        cur = m.curg
        if (cur is None or cur.status != GRUNNING or cur is expect
                or (mode == RESUME_WORK and (r is cur or r is RETIRE))
                or cur.glet is None or gmp_get_m() != <void*>m):
            if exc is not None:
                raise exc
            return r
        # A stray switch: hand it to the G that is running, which made it.
        to = cur.glet
        throw = exc
        args = (r,)
        exc = r = None


cdef object run_g(M m, G g, int mode, G expect):
    """Switches to g, starting it on a worker greenlet if it is fresh.
    Returns when control comes back to the calling greenlet (mode and
    expect describe it: see sched_switch)."""
    cdef object w
    set_running(m, g)
    if g.glet is not None:
        w = g.parkglet
        if w is None:
            w = g.glet
        else:
            g.parkglet = None
        return sched_switch(m, w, None, expect, mode)
    if m.gfree:
        w = m.gfree.pop()
    else:
        w = PyGreenlet_New(_gworker, <PyObject*>m.schedglet)
    bind_fresh(m, g, w)
    return sched_switch(m, w, (g,), expect, mode)


def _gworker(G g):
    """Body of a worker greenlet: runs fresh Gs one after another.

    This is Go's free list of Gs (gfget/gfput) for greenlets.  Creating a
    greenlet costs far more than switching to one: on CPython 3.11+ each new
    greenlet maps and unmaps its own frame data stack (two syscalls).  So a
    greenlet whose G has finished is kept: it runs the next fresh G in place
    if the P has one (no switch at all), else it parks in M.gfree until
    run_g hands it a fresh G.  Each G starts with an empty contextvars
    context, as it would on a greenlet of its own."""
    cdef M m = <M>gmp_get_m()
    cdef G nxt
    cdef object me = g.glet
    cdef object ret
    cdef object exc
    while True:
        gmp_reset_context()
        fn = g.fn
        args = g.args
        kwargs = g.kwargs
        g.args = g.kwargs = None
        exc = None
        try:
            if kwargs is None:
                ret = fn(*args)
            else:
                ret = fn(*args, **kwargs)
        except BaseException as e:
            ret = None
            exc = e
        fn = args = kwargs = None
        if m.s is not sched:
            return None     # an abandoned G's greenlet collected after its runtime
        goexit(g, ret, exc)
        ret = exc = None
        nxt = local_pick(m.p, True)
        if nxt is not None and nxt.glet is None:
            # A fresh G: run it right here.
            bind_fresh(m, nxt, me)
            set_running(m, nxt)
            g = nxt
            continue
        g = None
        if len(m.gfree) >= GFREE_MAX:
            m.curg = None
            if nxt is not None:
                local_put(m.p, nxt)
            return None          # to g0, which sees curg None and goes on
        m.gfree.append(me)
        if nxt is not None:
            r = run_g(m, nxt, RESUME_WORK, None)
        else:
            m.curg = None
            r = sched_switch(m, m.schedglet, None, None, RESUME_WORK)
        if r is RETIRE:
            return None          # M exiting: free_workers() retired us
        g = <G?>r                # run_g handed us a fresh G, already running


cdef void free_workers(M m) noexcept:
    """Retires M's idle worker greenlets on their own thread."""
    cdef object w
    cdef tuple retire = (RETIRE,)
    while m.gfree:
        w = m.gfree.pop()
        try:
            PyGreenlet_Switch(<PyObject*>w, <PyObject*>retire, NULL)
        except BaseException:
            pass

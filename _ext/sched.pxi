# The scheduler: Gs, Ps and Ms.
#
# A G is a task: a callable, its arguments, a state, a wait reason, its
# result or exception, and once started the greenlet that runs it.  An M is
# an OS thread; it runs the scheduler loop in its own scheduler greenlet (Go's
# g0) and owns one P for its life.  A P holds the run queues (runq.pxi), the
# timer heap (timers.pxi) and the epoll instance its M sleeps on
# (netpoll.pxi).  `sched` is the process-wide state: the global queue (one
# per NUMA node), the list of Ps, the idle count, the policy, and the list of
# all live Gs.
#
# The hard rule.  greenlet never lets a thread switch into a greenlet that
# another thread started.  A G's greenlet is therefore created lazily, by the
# M that first runs it, with that M's scheduler greenlet as its parent.  Until
# then the G is *fresh* and may sit in any queue and be stolen; afterwards it
# is *bound* to its home P (G.home) and every wake-up routes it there:
# put_home() puts it on the home P's own queues when called on that P's M, and
# otherwise into the home P's inbox, followed by an eventfd kick.
#
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
# Deadlock.  The last M to go idle with no timer, no external waker
# (netpoll waiters, blocking calls) and no runnable G anywhere while the main
# G is parked raises gmp.Deadlock in the main G, listing the parked Gs: Go's
# "all goroutines are asleep".
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
#
# The GIL.  Scheduler state other than the run-queue rings and the kick flag
# is protected by the GIL: park/ready, wait queues, timers and the G list are
# only touched with it held, and no Python code runs between registering a
# waiter and parking.  The comments in runq.pxi and waitq.pxi say what a
# free-threaded build would need.

import _thread
import sys as _sys
import threading as _threading
import traceback as _traceback
import os as _os

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    cdef struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int, timespec*)
    enum:
        CLOCK_MONOTONIC_COARSE


class ChanClosed(Exception):
    """Send on a closed channel, close of a closed one, or receive from a
    closed and drained channel."""


class TimeoutError(TimeoutError):
    """A gmp operation's timeout or a gmp.Timeout scope expired."""


class Killed(BaseException):
    """Delivered to a G by G.kill() or at shutdown.  A BaseException, like
    asyncio.CancelledError, so that ``except Exception`` does not swallow it."""


class Deadlock(RuntimeError):
    """Every G is parked and nothing can wake any of them."""


class NoRuntime(RuntimeError):
    """A gmp operation that needs a running G was called outside gmp.run()."""


cdef int64_t NEVER = -1            # a timeout of inf: no deadline at all
cdef double INF = float("inf")

cdef inline int64_t coarsetime() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


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


cdef class P:
    def __cinit__(self, int id):
        self.id = id
        self.epfd = -1
        self.evfd = -1
        gqueue_init(&self.inbox)

    cdef void release(self) noexcept:
        cdef PyObject* g = runq_get(&self.rq)
        while g != NULL:
            _decref(g)
            g = runq_get(&self.rq)
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
        return (self.runnext != NULL or not runq_empty(&self.rq)
                or self.boundq.n != 0 or gmp_load_i64(&self.inbox.size) != 0)


cdef class M:
    def __cinit__(self, int id, P p):
        self.id = id
        self.p = p
        self.gfree = []
        p.m = self


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


# --- small helpers -------------------------------------------------------

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


# --- the G list ------------------------------------------------------------

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


# --- ready -----------------------------------------------------------------

cdef int64_t wakes[WS_N]            # wake-ups that readied a G, per source
cdef int64_t stale_wakes[WS_N]      # wake-ups refused (another waker won)
cdef int64_t remote_wakes = 0       # of the readied, via another P's inbox


def wake_counts(bint reset=False):
    """Wake-ups since the process started (or the last reset), per source:
    {"waitq": (readied, stale), ...} plus "remote", the readied ones that
    crossed to another M's inbox.  For tests and the chaos report."""
    global remote_wakes
    cdef int i
    names = ("waitq", "timer", "interrupt", "netpoll", "blocking")
    out = {names[i]: (wakes[i], stale_wakes[i]) for i in range(WS_N)}
    out["remote"] = remote_wakes
    if reset:
        for i in range(WS_N):
            wakes[i] = stale_wakes[i] = 0
        remote_wakes = 0
    return out


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
            if gmp_cas_i32(&p.woken_to_spin, 0, 1):
                gmp_add_i32(&sched.nspinning, 1)
                netpoll_kick(p)
            return


# --- spawn, finish -----------------------------------------------------------

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


# --- switching ---------------------------------------------------------------

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
            a = runq_peek(&p.rq)
            b = ring_peek(&p.boundq)
            if a == NULL and b == NULL:
                if p.runnext == NULL:
                    return None
                r = p.runnext
                p.runnext = NULL
            elif b == NULL or (a != NULL and (<G>a).readyseq < (<G>b).readyseq):
                r = runq_get(&p.rq)
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


# --- the scheduler loop ------------------------------------------------------

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
        if runq_empty(&victim.rq):
            continue
        p.nsteal += 1
        if runq_steal(p, victim, sched.pol.steal_max):
            p.nstolen += runq_len(&p.rq)
            while True:
                r = runq_get(&p.rq)
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


cdef bint check_deadlock():
    """Called by the last M to go idle.  Raises Deadlock in the main G if
    nothing can ever wake any G."""
    cdef G main = sched.main
    cdef G g
    cdef list lines = []
    cdef int nparked = 0
    if main is None or main.status != GWAITING or not no_work_anywhere():
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
        if p.has_work() or sched.stopping or gmp_load_i32(&p.woken_to_spin):
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
        if p.wake_ns and gmp_load_i32(&p.woken_to_spin):
            learn_gil_wait(p, gmp_nanotime() - p.wake_ns)
    finally:
        gmp_store_i32(&p.sleeping, 0)
        gmp_add_i32(&sched.nidle, -1)
    return 0


cdef G findrunnable(M m):
    """Blocks until there is a G for this M to run; None once it should exit."""
    cdef P p = m.p
    cdef G g
    cdef int32_t woke = 0
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
            g = look_elsewhere(p, woke == 2)
        woke = 0
        if m.spinning:
            m.spinning = False
            gmp_add_i32(&sched.nspinning, -1)
            if g is not None and not runq_empty(&p.rq):
                wakep()
        if g is not None:
            return g
        idle(m, p)
        woke = gmp_load_i32(&p.woken_to_spin)
        if woke:
            gmp_store_i32(&p.woken_to_spin, 0)
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


# --- the API the gmp package wraps ------------------------------------------

def go(fn, *args, **kwargs):
    """Start fn(*args, **kwargs) in a new G and return the G."""
    if not callable(fn):
        raise TypeError(f"gmp.go() target must be callable, not {type(fn).__name__}")
    return newproc(fn, args, kwargs)


def go_on(int pid, fn, *args, **kwargs):
    """Start fn in a new G bound to P `pid` from birth: it runs only on that
    P's M and is never stolen (the main G is placed this way).  For work that
    must be spread over every M, such as one accept loop per M."""
    cdef G g
    if not callable(fn):
        raise TypeError(f"go_on() target must be callable, not {type(fn).__name__}")
    if getm() is None:
        raise no_runtime("go_on()")
    if not 0 <= pid < sched.nprocs:
        raise ValueError(f"no P {pid}: procs is {sched.nprocs}")
    g = newg(fn, args, kwargs)
    g.home = <P>sched.allp[pid]
    if sched.stopping:
        finish_unstarted(g)
    else:
        put_home(g, False)
    return g


def gosched():
    """Yield: let every G queued on this P run before this one continues."""
    gosched_g(begin_park())


def sleep(seconds):
    """Park the running G for `seconds` (0 yields, like gosched)."""
    cdef int64_t d = timeout_ns(seconds, "seconds")
    cdef G g = begin_park()
    if d == 0:
        gosched_g(g)
        return
    add_timer(g, deadline_after(d))     # inf: parks for good, as Go's select {}
    park(g, "sleep")


def current():
    """The running G, or None outside a G."""
    cdef M m = getm()
    return m.curg if m is not None else None


def call_later(seconds, fn):
    """Run fn() in scheduler context after `seconds` on this P (internal:
    fn must not block).  Returns a handle with cancel()."""
    cdef M m = getm()
    cdef TimerFunc t
    cdef int64_t d = timeout_ns(seconds, "seconds")
    if m is None:
        raise no_runtime("a gmp timer (call_later, a context deadline)")
    t = TimerFunc.__new__(TimerFunc)
    t.fn = fn
    if d != NEVER:
        theap_push(&m.p.timers, gmp_nanotime() + d, None, 0, t)
    return t


def running():
    """True while gmp.run() is running in this process."""
    return sched is not None


def nprocs():
    return sched.nprocs if sched is not None else 0


def all_gs():
    """Every live G (for dumps and deadlock reports)."""
    return allg_list()


def running_gs():
    """[(M id, thread ident, running G or None)] for each M."""
    cdef M m
    if sched is None:
        return []
    return [(m.id, m.tid, m.curg) for m in sched.ms]


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
            "id": p.id, "runq": runq_len(&p.rq), "boundq": p.boundq.n,
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

# gmp.blocking: run a call that would block its thread on a helper OS thread
# while the calling G parks ("blocking call").
#
# The pool itself is Python (gmp/blocking.py); this is the part that touches
# the scheduler.  blocking_call() counts the call in sched.nexternal (so
# deadlock detection knows a wake-up is coming) and sched.nblocking, marks
# the G parked (park_prepare), hands a BlockingJob carrying the G's ticket
# to the pool, and only then switches away (park_commit).  The helper thread
# runs the job and calls complete(), which goes through goready() with that
# ticket: from a thread that is not an M that pushes the G into its home P's
# inbox and kicks the P's eventfd, the thread-safe path every bound G takes
# home.  A G that was killed or timed out meanwhile has a new ticket, and
# its late result is dropped.
#
# The helper can finish before the G has switched away: submit() is Python
# code and may release the GIL.  Because the G is already GWAITING, that
# early completion is an ordinary wake-up -- the G is queued once, and
# park_commit() switches away only to find itself runnable -- and anything
# else that wakes it (a kill, a Timeout) finds it no longer parked.  This is
# Go's gopark(unlockf) order: become parked, then publish the registration.
#
# Relies on the GIL: complete() runs on the helper thread with the GIL held
# (it is Python code), which serialises it with the scheduler.

cdef class BlockingJob:
    """One call submitted to the blocking pool (internal)."""
    cdef G g
    cdef uint64_t ticket
    cdef Sched owner            # None once the job is withdrawn
    cdef object fn
    cdef tuple args
    cdef dict kwargs
    cdef object value
    cdef object exc

    def run(self):
        """Runs the call on the calling (helper) thread, then wakes the G."""
        if obs_flags:
            obs_blocking(self.g, True)
        try:
            if self.kwargs:
                self.value = self.fn(*self.args, **self.kwargs)
            else:
                self.value = self.fn(*self.args)
        except BaseException as e:
            self.exc = e
        self.fn = self.args = self.kwargs = None
        if obs_flags:
            obs_blocking(self.g, False)
        self.complete()

    cdef void complete(self) noexcept:
        cdef Sched s = self.owner
        if s is None:
            return
        self.owner = None
        if s is sched:
            try:
                goready(self.g, self.ticket, WAKE_OK, None, 0, False, WS_BLOCKING)
            except BaseException:
                pass
        gmp_add_i64(&s.nblocking, -1)
        gmp_add_i64(&s.nexternal, -1)


def blocking_call(submit, fn, tuple args, dict kwargs):
    """Runs fn(*args, **kwargs) via submit(job) (job.run() on another OS
    thread) while the running G parks; returns its result or raises its
    exception."""
    cdef G g = begin_park()
    cdef M m = <M>gmp_get_m()
    cdef BlockingJob job = BlockingJob.__new__(BlockingJob)
    job.g = g
    job.ticket = g.ticket
    job.owner = sched
    job.fn = fn
    job.args = args
    job.kwargs = kwargs
    gmp_add_i64(&sched.nexternal, 1)
    gmp_add_i64(&sched.nblocking, 1)
    park_prepare(m, g, "blocking call")
    try:
        submit(job)
    except BaseException:
        if job.owner is not None:
            job.owner = None
            gmp_add_i64(&sched.nblocking, -1)
            gmp_add_i64(&sched.nexternal, -1)
        if g.status == GWAITING:
            withdraw(g)
            g.status = GRUNNING
            g.parkglet = None
            raise
        # Already readied (a kill while submitting): take that wake-up.
        park_commit(m, g)
        raise
    park_commit(m, g)
    if job.exc is not None:
        exc = job.exc
        job.exc = None
        raise exc
    v = job.value
    job.value = None
    return v

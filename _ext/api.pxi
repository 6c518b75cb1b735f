# The API the gmp package wraps (gmp/__init__.py re-exports and documents
# it): the errors, spawning, yielding and sleeping, the running G, internal
# timers, and what is running where.  Each function validates its arguments
# here, at the boundary, so the loop below it never sees bad input.


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


def inject(fn, *args, **kwargs):
    """Start fn(*args, **kwargs) in a new G from any thread, including one
    that is not an M (Go's injectglist): the G goes to the global queue (of
    the calling M's node; from a foreign thread, the first node's) and
    one idle M is kicked, unless the GIL learning says helpers should back
    off while another M is awake (sysmon then rescues it if that M is stuck).
    """
    cdef G g
    cdef M m = getm()
    if sched is None:
        raise NoRuntime("gmp inject needs a running runtime")
    if not callable(fn):
        raise TypeError(f"inject() target must be callable, not {type(fn).__name__}")
    g = newg(fn, args, kwargs)
    if sched.stopping:
        finish_unstarted(g)
        return g
    _incref(<PyObject*>g)
    # From an M, its node's queue; a foreign thread has no node of its own
    # and uses the first node's, which every P reaches once its own is empty.
    gqueue_push(&sched.gqs[m.p.gqi if m is not None else 0].q, <PyObject*>g)
    if gmp_load_i32(&sched.nidle) and (
            gmp_load_i32(&sched.nidle) == sched.nprocs or not in_backoff()):
        kick_one_idle()
    return g


def external(int delta):
    """Count a waker outside the runtime (a thread that will inject Gs or
    ready them): while the count is above zero, all Ms idle is not a
    deadlock.  external(+1) / external(-1)."""
    if sched is None:
        raise NoRuntime("external() needs a running runtime")
    if gmp_add_i64(&sched.nexternal, delta) == 0:
        kick_one_idle()       # let an idle M re-check for deadlock

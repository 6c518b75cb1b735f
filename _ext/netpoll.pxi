# Netpoller: each P owns an epoll instance, and an eventfd registered in it.
#
# An M with nothing to run parks here: it releases the GIL and blocks in
# epoll_wait with the timeout of its P's next timer.  Three things wake it:
# a timer (the timeout), I/O readiness on an fd registered with this P, and
# the eventfd, which other threads write to after putting work it can take
# into its inbox (or fresh Gs for it to steal).  P.sleeping is set before the
# final emptiness check and cleared after the wait, and kickers read it after
# publishing work (both sequentially consistent), so a kick is never lost
# and an M that is running is never sent a needless syscall.
#
# Poll descriptors.  A PollDesc wraps one non-blocking fd.  It is registered,
# edge-triggered (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET), with the epoll of the
# P whose G has to wait on it, and stays there until close() or until a G of
# another P waits on it (below).
# The event's data is (seq << 32 | fd); `pd_table[fd]` is the PollDesc now
# registered for fd, and an event whose seq differs from that PollDesc's is
# stale (the fd was closed and reused) and dropped.  seq 0 is never used, so
# data 0 is the eventfd's tag.
#
# I/O is try-first: the syscall is made at once (GIL held: it is
# non-blocking, so releasing the GIL would only invite a convoy), and only on
# EAGAIN does the G park, on the PollDesc's reader or writer wait queue, with
# its park ticket (waitq.pxi).  An edge that arrives while no G waits sets
# rready/wready, which the next waiter consumes instead of parking, so an
# edge between the EAGAIN and the park is not lost (nothing can be
# dispatched in between anyway: dispatch runs in scheduler context on the
# registering P's M, and the GIL is held from the syscall to the park).  An
# edge wakes every parked reader (or writer): each retries its syscall and
# re-parks on EAGAIN.  With one waiter per direction, the usual case, that is
# exactly one wake-up; with several (many Gs accepting on one listener) it is
# a thundering herd but never a lost wake-up, which a single-waiter hand-off
# under edge triggering could produce when the woken G leaves data behind.
#
# Out-of-band data (EPOLLPRI) counts as a read edge: the registration asks
# for it so that select()'s exceptional-condition set can wait on it.
#
# A PollDesc follows its waiters: a G that parks on one registered with
# another P moves the registration to its own P (EPOLL_CTL_DEL there, ADD
# here; an edge-triggered ADD reports the readiness the fd already has, so
# no edge is lost, and the seq bump drops any event the old P still holds).
# Otherwise readiness would be stranded on a P whose M sits in a long C call
# while the waiter's M is free (the first waiter's P is not the last one's:
# gmp.wsgi starts every request in a fresh G, on whichever M takes it).  The
# price is two epoll_ctl calls when the waiting P changes, none otherwise.
#
# Wake-ups go through goready() (park.pxi's one wake path), so a bound G
# waiting on an fd registered with another P is readied into its home P's
# inbox and that M is kicked.  While a G is parked on a PollDesc it counts in
# sched.nexternal, so deadlock detection does not fire while Gs wait for I/O
# (as in Go).
#
# Deadlines are absolute CLOCK_MONOTONIC times (time.monotonic()), per
# direction.  A waiting G arms a plain ticket timer for the deadline, so
# expiry wakes exactly that G, which re-checks the deadline (it may have been
# moved) and raises gmp.TimeoutError (a builtin TimeoutError, hence also
# socket.timeout).  Changing a deadline wakes the parked Gs of that
# direction, which re-check and re-park with the new deadline.
#
# close() (the gmp API's, never a bare os.close) wakes every parked G with
# WAKE_CLOSED (they raise NetClosed, an OSError with EBADF), unregisters the
# fd and forgets it; the caller closes the fd itself afterwards.
#
# Select.  netpoll_select / netpoll_poll_fds (gmp.monkey's select.select,
# select.poll, select.epoll and selectors) wait on several fds at once, as
# channel select does on several queues: a level-triggered poll(2) with
# timeout 0 over all the fds answers the question; only if nothing is ready
# does the G register itself, with its one ticket, on the reader queue (read
# or out-of-band interest) and/or writer queue (write interest) of each fd's
# PollDesc, arm a ticket timer for the deadline, and park once ("IO wait").
# Whatever wakes it (an edge, the timer, a close) bumps the ticket, which
# withdraws all the other registrations; the G loops back to poll(0), so the
# answer is always level-triggered and an edge that raced with the check
# only costs a spurious wake-up.  An fd without a PollDesc gets one,
# registered with the waiter's P, which stays in pd_table (and epoll) after
# the select returns: the next select or a GSocket on that fd reuses it.
# Since such an fd may be closed with a bare close() and its number reused,
# every wait first re-arms the registration with EPOLL_CTL_MOD, and ENOENT
# means the registration went with the old file: register afresh.  Fds that
# epoll refuses (regular files: EPERM) are always readable and writable to
# poll(2), so the check answers for them and they are never waited on.  A
# PollDesc closed through gmp while the G waits on it wakes it with
# WAKE_CLOSED and the index of the entry: the fd is reported ready (POLLNVAL)
# so the caller's next call fails with EBADF, as the stdlib's would; a
# PollDesc merely replaced by another for the same live fd is not a close.
#
# Polling.  findrunnable polls a P's epoll without blocking (timeout 0, GIL
# held) after its timers, when the P has registered fds; so that a P whose
# queues never run dry still sees I/O, the scheduler also polls when
# netpoll_due() (NETPOLL_TICK schedticks since the last poll).  The idle path
# blocks in netpoll_wait, which dispatches the same way.
#
# Relies on the GIL: pd_table, the wait queues and the ready flags are only
# touched with it held.  A free-threaded build needs a lock per PollDesc and
# a per-M recv scratch buffer.

from libc.errno cimport errno, EAGAIN, EINTR, EEXIST, ENOENT, EBADF, EINPROGRESS
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING

cdef extern from "<sys/socket.h>" nogil:
    ssize_t c_recv "recv"(int, void*, size_t, int)
    ssize_t c_send "send"(int, const void*, size_t, int)
    int c_accept4 "accept4"(int, void*, void*, int)
    enum:
        MSG_NOSIGNAL
        SOCK_NONBLOCK
        SOCK_CLOEXEC

cdef extern from "<poll.h>" nogil:
    cdef struct pollfd:
        int fd
        short events
        short revents
    int c_poll "poll"(pollfd*, unsigned long, int)
    enum:
        POLLIN
        POLLPRI
        POLLOUT
        POLLERR
        POLLHUP
        POLLNVAL

cdef extern from "<string.h>" nogil:
    char* strerror(int)

cdef extern from "Python.h":
    int PyErr_CheckSignals_ "PyErr_CheckSignals"() except -1

cdef enum:
    NETPOLL_TICK = 61
    NETPOLL_EVENTS = 128
    EVFD_TAG = 0
    PD_READ = 0
    PD_WRITE = 1
    RECV_SCRATCH = 65536

cdef extern from *:
    """
    #define GMP_PD_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET)
    """
    uint32_t PD_EVENTS "GMP_PD_EVENTS"


class NetClosed(OSError):
    """I/O on a connection after gmp closed it (or while closing it): Go's
    "use of closed network connection".  errno is EBADF."""


cdef uint32_t pd_seqgen = 0
cdef list pd_table = []          # fd -> the PollDesc registered for it, or None
cdef char recv_scratch[RECV_SCRATCH]   # recv() reads here, then copies r bytes


cdef object closed_error():
    return NetClosed(EBADF, "use of closed network connection")


cdef object os_error(int e):
    # OSError(errno, ...) picks the subclass (ConnectionResetError, ...).
    return OSError(e, strerror(e).decode("utf-8", "replace"))


cdef class PollDesc:
    """The netpoller's state for one non-blocking fd (see the module notes).

    PollDesc(fd) does not take ownership of fd: close() unregisters it and
    wakes its waiters, and the caller closes the fd."""

    def __cinit__(self, int fd):
        if fd < 0:
            raise ValueError(f"PollDesc needs an open fd, got {fd}")
        self.fd = fd

    def __dealloc__(self):
        waitq_free(&self.rwait)
        waitq_free(&self.wwait)

    def __repr__(self):
        where = f" P{self.p.id}" if self.p is not None else ""
        return f"<gmp PollDesc fd={self.fd}{where}{' closing' if self.closing else ''}>"

    # --- waiting ---------------------------------------------------------

    cdef int wait(self, int mode) except -1:
        """Parks the running G until the fd may be ready for mode (after an
        EAGAIN).  Raises NetClosed or TimeoutError."""
        cdef G g = begin_park()
        cdef int64_t dl
        cdef waitq_t* q
        while True:
            if self.closing:
                raise closed_error()
            if mode == PD_READ:
                if self.rready:
                    self.rready = False
                    return 0
                dl = self.rdeadline
                q = &self.rwait
            else:
                if self.wready:
                    self.wready = False
                    return 0
                dl = self.wdeadline
                q = &self.wwait
            if dl and dl <= gmp_nanotime():
                raise TimeoutError("i/o timeout")
            if self.p is not g.home or self.owner is not sched:
                # Follow the waiter: an fd left with a P whose M is stuck in
                # a C call would strand this G's wake-up (module notes).
                pd_register(self, g.home)
            waitq_push(q, g, None, 0)
            if dl:
                try:
                    theap_push(&g.home.timers, dl, g, g.ticket, None)
                except BaseException:
                    withdraw(g)
                    raise
            gmp_add_i64(&sched.nexternal, 1)
            try:
                park(g, "IO wait")
            finally:
                gmp_add_i64(&sched.nexternal, -1)
            if g.wakeup == WAKE_OK:
                g.iowoke = True      # its next spawn may go to an idle M (proc.pxi)
                return 0
            if g.wakeup == WAKE_CLOSED:
                raise closed_error()
            # WAKE_TIMEOUT: the deadline passed or moved; loop to re-check.

    def wait_read(self):
        """Park until the fd may be readable (call after EAGAIN)."""
        self.wait(PD_READ)

    def wait_write(self):
        """Park until the fd may be writable (call after EAGAIN)."""
        self.wait(PD_WRITE)

    # --- deadlines -------------------------------------------------------

    cdef int set_dl(self, int mode, object when) except -1:
        cdef int64_t ns = 0
        cdef double w
        if when is not None:
            if isinstance(when, bool) or not isinstance(when, (int, float)):
                raise TypeError(f"deadline must be a time.monotonic() value or None, "
                                f"not {type(when).__name__}")
            w = when
            if w != w:
                raise ValueError("deadline must not be NaN")
            if w == INF:
                ns = 0          # never
            elif w * 1e9 >= 9.2e18 or w * 1e9 <= -9.2e18:
                raise OverflowError(f"deadline is out of range: {when!r}")
            else:
                ns = <int64_t>(w * 1e9)
                if ns <= 0:
                    ns = 1      # already passed (0 means "no deadline")
        if mode == PD_READ:
            self.rdeadline = ns
            wake_all_pd(&self.rwait, WAKE_TIMEOUT)
        else:
            self.wdeadline = ns
            wake_all_pd(&self.wwait, WAKE_TIMEOUT)
        return 0

    def set_deadline(self, when):
        """Absolute time.monotonic() after which reads and writes raise
        TimeoutError (None: no deadline).  Applies to parked Gs too."""
        self.set_dl(PD_READ, when)
        self.set_dl(PD_WRITE, when)

    def set_read_deadline(self, when):
        self.set_dl(PD_READ, when)

    def set_write_deadline(self, when):
        self.set_dl(PD_WRITE, when)

    @property
    def read_deadline(self):
        return self.rdeadline / 1e9 if self.rdeadline else None

    @property
    def write_deadline(self):
        return self.wdeadline / 1e9 if self.wdeadline else None

    # --- I/O -------------------------------------------------------------

    def recv(self, Py_ssize_t n, int flags=0):
        """recv(2) up to n bytes; b"" at EOF.  Reads of up to 64 KiB go
        through a shared scratch buffer, so only the bytes received are
        allocated."""
        cdef ssize_t r
        cdef int e
        cdef object b
        if n < 0:
            raise ValueError("negative buffersize in recv")
        while True:
            if self.closing:
                raise closed_error()
            if n <= RECV_SCRATCH:
                r = c_recv(self.fd, recv_scratch, n, flags)
                if r >= 0:
                    return PyBytes_FromStringAndSize(recv_scratch, r)
            else:
                b = PyBytes_FromStringAndSize(NULL, n)
                r = c_recv(self.fd, PyBytes_AS_STRING(b), n, flags)
                if r >= 0:
                    return b if r == n else b[:r]
            e = errno
            if e == EAGAIN:
                self.wait(PD_READ)
            elif e != EINTR:
                raise os_error(e)

    def recv_into(self, buf, Py_ssize_t nbytes=0, int flags=0):
        """recv(2) into a writable buffer; returns the byte count (0 at EOF)."""
        cdef Py_buffer view
        cdef ssize_t r
        cdef int e
        while True:
            if self.closing:
                raise closed_error()
            PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
            if nbytes <= 0 or nbytes > view.len:
                nbytes = view.len
            r = c_recv(self.fd, view.buf, nbytes, flags)
            e = errno
            PyBuffer_Release(&view)     # not held across a park
            if r >= 0:
                return r
            if e == EAGAIN:
                self.wait(PD_READ)
            elif e != EINTR:
                raise os_error(e)

    def send(self, data, int flags=0):
        """send(2) once; returns the byte count (may be short)."""
        cdef Py_buffer view
        cdef ssize_t r
        cdef int e
        while True:
            if self.closing:
                raise closed_error()
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            r = c_send(self.fd, view.buf, view.len, flags | MSG_NOSIGNAL)
            e = errno
            PyBuffer_Release(&view)
            if r >= 0:
                return r
            if e == EAGAIN:
                self.wait(PD_WRITE)
            elif e != EINTR:
                raise os_error(e)

    def sendall(self, data, int flags=0):
        """send(2) until every byte is written."""
        cdef Py_buffer view
        cdef ssize_t r, off = 0, total
        cdef int e
        while True:
            if self.closing:
                raise closed_error()
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            total = view.len
            while off < total:
                r = c_send(self.fd, <char*>view.buf + off, total - off, flags | MSG_NOSIGNAL)
                if r < 0:
                    break
                off += r
            e = errno
            PyBuffer_Release(&view)
            if off >= total:
                return None
            if e == EAGAIN:
                self.wait(PD_WRITE)
            elif e != EINTR:
                raise os_error(e)

    def accept(self):
        """accept4(2) a connection; returns its fd (non-blocking, cloexec).

        EMFILE and the like are raised as OSError: the caller backs off."""
        cdef int fd, e
        while True:
            if self.closing:
                raise closed_error()
            fd = c_accept4(self.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)
            if fd >= 0:
                return fd
            e = errno
            if e == EAGAIN:
                self.wait(PD_READ)
            elif e != EINTR:
                raise os_error(e)

    # --- close -----------------------------------------------------------

    def close(self):
        """Wakes every G parked on the fd with NetClosed and unregisters the
        fd.  Idempotent.  Does not close the fd: the caller does, after."""
        if self.closing:
            return
        self.closing = True
        wake_all_pd(&self.rwait, WAKE_CLOSED)
        wake_all_pd(&self.wwait, WAKE_CLOSED)
        pd_unregister(self)


cdef Py_ssize_t wake_all_pd(waitq_t* q, int how) except -1:
    """Wakes every valid waiter of q with `how`, in FIFO order (not via
    runnext: an epoll batch readies many Gs at once)."""
    cdef waiter_t w
    cdef Py_ssize_t k = 0
    while waitq_pop(q, &w):
        try:
            # wakecase: netpoll_select's entry index
            k += goready(<G>w.g, w.ticket, how, None, w.idx, False, WS_NETPOLL)
        finally:
            waiter_release(&w)
    return k


cdef int pd_register(PollDesc pd, P p) except -1:
    global pd_seqgen
    cdef epoll_event ev
    cdef int fd = pd.fd
    cdef PollDesc old
    pd_seqgen += 1
    if pd_seqgen == 0:
        pd_seqgen = 1
    if pd.p is not None and pd.owner is sched:
        pd_unregister(pd)
    pd.seq = pd_seqgen
    ev.events = PD_EVENTS
    ev.data.u64 = (<uint64_t>pd.seq << 32) | <uint32_t>fd
    while len(pd_table) <= fd:
        pd_table.extend([None] * (len(pd_table) + 64))
    old = pd_table[fd]
    if old is not None and old is not pd:
        # The fd was closed behind the old PollDesc's back and reused: its
        # waiters can never be woken by I/O again.
        old.closing = True
        wake_all_pd(&old.rwait, WAKE_CLOSED)
        wake_all_pd(&old.wwait, WAKE_CLOSED)
        pd_unregister(old)
    if epoll_ctl(p.epfd, EPOLL_CTL_ADD, fd, &ev) < 0:
        if errno != EEXIST or epoll_ctl(p.epfd, EPOLL_CTL_MOD, fd, &ev) < 0:
            raise os_error(errno)
    pd_table[fd] = pd
    pd.p = p
    pd.owner = sched
    p.nfds += 1
    return 0


cdef void pd_unregister(PollDesc pd) noexcept:
    cdef epoll_event ev
    cdef P p = pd.p
    if p is None:
        return
    pd.p = None
    if pd.owner is sched:
        if p.epfd >= 0:
            epoll_ctl(p.epfd, EPOLL_CTL_DEL, pd.fd, &ev)
        p.nfds -= 1
    pd.owner = None
    if pd.fd < len(pd_table) and pd_table[pd.fd] is pd:
        pd_table[pd.fd] = None


cdef int netpoll_init(P p) except -1:
    cdef epoll_event ev
    p.epfd = epoll_create1(EPOLL_CLOEXEC)
    if p.epfd < 0:
        raise OSError("epoll_create1 failed")
    p.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
    if p.evfd < 0:
        raise OSError("eventfd failed")
    ev.events = EPOLLIN
    ev.data.u64 = EVFD_TAG
    if epoll_ctl(p.epfd, EPOLL_CTL_ADD, p.evfd, &ev) < 0:
        raise OSError("epoll_ctl(eventfd) failed")
    return 0


cdef void netpoll_close(P p) noexcept:
    cdef Py_ssize_t i
    cdef PollDesc pd
    if p.nfds:
        # Forget the registrations: a PollDesc used again in a later run
        # registers afresh with that run's Ps.
        for i in range(len(pd_table)):
            pd = pd_table[i]
            if pd is not None and pd.p is p:
                pd.p = None
                pd.owner = None
                pd_table[i] = None
        p.nfds = 0
    if p.evfd >= 0:
        c_close(p.evfd)
        p.evfd = -1
    if p.epfd >= 0:
        c_close(p.epfd)
        p.epfd = -1


cdef inline void netpoll_kick(P p) noexcept nogil:
    """Wakes p's M if it is parked in epoll_wait."""
    cdef uint64_t one = 1
    if gmp_load_i32(&p.sleeping):
        c_write(p.evfd, &one, 8)


cdef int netpoll_dispatch(P p, epoll_event* events, int n) except -1:
    """Readies the Gs parked on the fds in events; returns how many."""
    cdef int i, fd
    cdef Py_ssize_t k, woke = 0
    cdef uint32_t ev
    cdef uint64_t u, buf
    cdef PollDesc pd
    for i in range(n):
        u = events[i].data.u64
        if u == EVFD_TAG:
            c_read(p.evfd, &buf, 8)
            p.nkicks += 1
            continue
        fd = <int>(u & 0xffffffffu)
        if fd >= len(pd_table):
            continue
        pd = pd_table[fd]
        if pd is None or pd.seq != <uint32_t>(u >> 32):
            continue                    # stale: the fd was closed (and reused)
        ev = events[i].events
        if ev & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR):
            k = wake_all_pd(&pd.rwait, WAKE_OK)
            if k == 0:
                pd.rready = True
            woke += k
        if ev & (EPOLLOUT | EPOLLHUP | EPOLLERR):
            k = wake_all_pd(&pd.wwait, WAKE_OK)
            if k == 0:
                pd.wready = True
            woke += k
    p.npollready += woke
    return woke


cdef int netpoll_wait(P p, int64_t timeout_ns) except -1:
    """Blocks (GIL released) until a kick, I/O or timeout_ns (-1: forever),
    then readies the Gs whose fds became ready."""
    cdef epoll_event events[NETPOLL_EVENTS]
    cdef int n
    if obs_flags:
        obs_idle(p)
    with nogil:
        n = gmp_epoll_wait_ns(p.epfd, events, NETPOLL_EVENTS, timeout_ns)
        p.wake_ns = gmp_nanotime()      # GIL-wait learning (sysmon.pxi)
    if obs_flags:
        obs_woke(p)
    p.lastpoll = p.schedtick
    if n < 0 and errno == EINTR:
        # A signal: run its Python handlers now (they may ready Gs), or an
        # idle M0 would go back to sleep with them still pending.
        PyErr_CheckSignals_()
    if n <= 0:
        return 0
    return netpoll_dispatch(p, events, n)


cdef int netpoll_poll(P p) except -1:
    """Non-blocking poll (GIL held: epoll_wait with timeout 0 does not
    block); returns how many Gs it readied."""
    cdef epoll_event events[NETPOLL_EVENTS]
    cdef int n
    p.lastpoll = p.schedtick
    n = gmp_epoll_wait_ns(p.epfd, events, NETPOLL_EVENTS, 0)
    if n <= 0:
        return 0
    return netpoll_dispatch(p, events, n)


cdef inline bint netpoll_due(P p) noexcept:
    """True when p has fds and has not polled for NETPOLL_TICK schedticks:
    a P that always has runnable Gs still looks at its fds (Go leaves this
    to sysmon's 10 ms netpoll; a tick count needs no clock read)."""
    return p.nfds != 0 and <uint32_t>(p.schedtick - p.lastpoll) >= NETPOLL_TICK


# --- select / poll over many fds (see "Select" in the notes) ---------------

cdef PollDesc pd_for_wait(int fd, P p):
    """The PollDesc to wait on for fd, registered with p: the one registered
    for it (re-armed, or moved here from another P), else a new one; None when
    epoll refuses fd (EPERM: a regular file, always ready to poll(2))."""
    cdef PollDesc pd = pd_table[fd] if fd < len(pd_table) else None
    cdef epoll_event ev
    if pd is not None and not pd.closing and pd.p is p and pd.owner is sched:
        ev.events = PD_EVENTS
        ev.data.u64 = (<uint64_t>pd.seq << 32) | <uint32_t>fd
        if epoll_ctl(pd.p.epfd, EPOLL_CTL_MOD, fd, &ev) == 0:
            return pd
        if errno != ENOENT:
            raise os_error(errno)
        # ENOENT: fd was closed behind the PollDesc's back (and reused).
    if pd is None or pd.closing:
        pd = PollDesc(fd)
    try:
        pd_register(pd, p)
    except PermissionError:
        return None
    return pd


def pd_registered(int fd):
    """The live PollDesc registered for fd in this runtime, or None: a socket
    wrapper that had none of its own uses it (select may have made it), and
    closes it when it closes the fd."""
    cdef PollDesc pd
    if fd < 0 or fd >= len(pd_table):
        return None
    pd = pd_table[fd]
    if pd is None or pd.closing or pd.owner is not sched:
        return None
    return pd


cdef inline short select_mask(short events) noexcept:
    """The revents that make a poll(2) entry ready for select(2): what the
    kernel's POLLIN_SET / POLLOUT_SET / POLLEX_SET hold."""
    cdef short m = 0
    if events & POLLIN:
        m |= POLLIN | POLLHUP | POLLERR
    if events & POLLOUT:
        m |= POLLOUT | POLLERR
    if events & POLLPRI:
        m |= POLLPRI
    return m


cdef Py_ssize_t poll_wait(pollfd* fds, Py_ssize_t n, object timeout, bint selectlike) except -1:
    """poll(2) over fds[:n] that parks the running G, not its M, until an
    entry is ready or `timeout` seconds (None: forever) pass; returns how
    many entries have revents (0 on timeout).  selectlike: only select(2)'s
    conditions count (select_mask) and a closed fd at the first check raises
    OSError(EBADF); otherwise poll(2)'s (any revents, POLLNVAL included)."""
    cdef int64_t deadline = -1
    cdef int64_t now
    cdef int r
    cdef Py_ssize_t i, k, nready, closed = -1
    cdef bint first = True
    cdef short ev
    cdef G g = None
    cdef list pds = None
    cdef PollDesc pd
    if timeout is not None:
        deadline = deadline_after(timeout_ns(timeout, "timeout"))
    while True:
        r = c_poll(fds, n, 0)
        if r < 0:
            if errno == EINTR:
                continue
            raise os_error(errno)
        nready = 0
        for i in range(n):
            if selectlike:
                if first and fds[i].revents & POLLNVAL:
                    raise os_error(EBADF)
                if fds[i].revents & POLLNVAL:
                    fds[i].revents = POLLNVAL     # closed while we waited
                else:
                    fds[i].revents &= select_mask(fds[i].events)
            if i == closed and fds[i].revents == 0:
                fds[i].revents = POLLNVAL
            if fds[i].revents:
                nready += 1
        first = False
        if nready:
            return nready
        if deadline >= 0:
            now = gmp_nanotime()
            if now >= deadline:
                return 0
        if g is None:
            g = begin_park()
            pds = [None] * n
        k = 0
        try:
            for i in range(n):
                ev = fds[i].events
                if fds[i].fd < 0 or not (ev & (POLLIN | POLLPRI | POLLOUT)):
                    continue
                pd = pd_for_wait(fds[i].fd, g.home)
                pds[i] = pd
                if pd is None:
                    continue
                if ev & (POLLIN | POLLPRI):
                    waitq_push(&pd.rwait, g, None, <int>i)
                if ev & POLLOUT:
                    waitq_push(&pd.wwait, g, None, <int>i)
                k += 1
            add_timer(g, deadline)
        except BaseException:
            withdraw(g)
            raise
        if k:
            gmp_add_i64(&sched.nexternal, 1)
        try:
            park(g, "IO wait")
        finally:
            if k:
                gmp_add_i64(&sched.nexternal, -1)
        if g.wakeup == WAKE_CLOSED:
            i = g.wakecase
            pd = pds[i] if 0 <= i < n else None
            if pd is not None and pd.closing and (
                    pd.fd >= len(pd_table) or pd_table[pd.fd] is None):
                closed = i      # closed through gmp, not merely replaced


cdef pollfd* pollfd_alloc(Py_ssize_t n) except NULL:
    cdef pollfd* fds = <pollfd*>malloc((n if n else 1) * sizeof(pollfd))
    if fds == NULL:
        raise MemoryError()
    return fds


def netpoll_select(rfds, wfds, xfds, timeout=None):
    """select(2) for a G: three iterables of fds (ints >= 0) and a timeout in
    seconds (None: forever); returns the lists of those ready to read, to
    write and with an exceptional condition (out-of-band data), in the order
    given.  Checks level-triggered first and parks the G on the netpoller
    only if nothing is ready.  Raises OSError(EBADF) for a closed fd; an fd
    closed through gmp while the G waits is returned ready.  Regular files
    are always ready to read and write, as with select(2)."""
    cdef dict index = {}
    cdef list order = []
    cdef Py_ssize_t i, n
    cdef pollfd* fds
    cdef short bit, rev
    cdef object fd, lst
    cdef list out = [[], [], []]
    cdef tuple bits = (POLLIN, POLLOUT, POLLPRI)
    for j, lst in enumerate((rfds, wfds, xfds)):
        bit = bits[j]
        for fd in lst:
            if fd < 0:
                raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
            index[fd] = index.get(fd, 0) | bit
            order.append((j, fd))
    n = len(index)
    fds = pollfd_alloc(n)
    try:
        i = 0
        for fd, bit in index.items():
            fds[i].fd = fd
            fds[i].events = bit
            fds[i].revents = 0
            index[fd] = i
            i += 1
        poll_wait(fds, n, timeout, True)
        for j, fd in order:
            rev = fds[<Py_ssize_t>index[fd]].revents
            if rev & POLLNVAL:
                if j < 2:
                    out[j].append(fd)
            elif rev & select_mask(bits[j]):
                out[j].append(fd)
    finally:
        free(fds)
    return out


def netpoll_poll_fds(pairs, timeout=None):
    """poll(2) for a G: `pairs` of (fd, events), fds unique; timeout in
    seconds (None: forever).  Returns [(fd, revents)] for the entries with
    revents, as select.poll().poll() does (POLLNVAL for a closed fd)."""
    cdef list items = list(pairs)
    cdef Py_ssize_t i, n = len(items)
    cdef pollfd* fds = pollfd_alloc(n)
    cdef list out = []
    try:
        for i in range(n):
            fds[i].fd = items[i][0]
            fds[i].events = items[i][1]
            fds[i].revents = 0
        poll_wait(fds, n, timeout, False)
        for i in range(n):
            if fds[i].revents:
                out.append((fds[i].fd, fds[i].revents))
    finally:
        free(fds)
    return out

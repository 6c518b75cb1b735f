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

cdef enum:
    NETPOLL_EVENTS = 128
    EVFD_TAG = 0


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


cdef int netpoll_wait(P p, int64_t timeout_ns) except -1:
    """Blocks (GIL released) until a kick, I/O or timeout_ns (-1: forever)."""
    cdef epoll_event events[NETPOLL_EVENTS]
    cdef int n, i
    cdef uint64_t buf
    with nogil:
        n = gmp_epoll_wait_ns(p.epfd, events, NETPOLL_EVENTS, timeout_ns)
    for i in range(n):
        if events[i].data.u64 == EVFD_TAG:
            c_read(p.evfd, &buf, 8)
            p.nkicks += 1
    return n

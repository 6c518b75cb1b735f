"""gmp.monkey.psycopg: PostgreSQL drivers wait on gmp's netpoller.

Both drivers run libpq in non-blocking mode under a wait hook, and both
default to waiting inside C, which holds the M: 20 concurrent queries on
one M then run one after another.

psycopg2   ``psycopg2.extensions.set_wait_callback(wait)`` (the hook
           psycogreen uses for gevent): ``wait`` drives ``conn.poll()`` and
           parks the G on the connection's fd between steps.  The callback
           is process-wide and used by plain threads too, which then wait
           in poll(2).
psycopg 3  ``psycopg.waiting.wait`` is the function every blocking call
           goes through; it picks ``wait_c`` unless it detects gevent's
           patching.  It becomes psycopg's own ``wait_poll`` (over the
           patched ``select.poll``), and ``wait_conn``'s selector, bound
           at import, the patched DefaultSelector.

Either driver may be imported before or after patch_all()
(gmp.monkey.imports).  A G parked in a wait that is killed or times out
leaves the connection mid-query, as an interrupted thread would; psycopg2
then refuses it until it is reset, as after any error.
"""
import select

from gmp._ext import _core
from gmp._ext._core import netpoll_poll_fds

_current = _core.current
_real_poll = select.poll


def _wait_fd(fd, events):
    if _current() is not None:
        netpoll_poll_fds([(fd, events)], None)
        return
    p = _real_poll()
    p.register(fd, events)
    p.poll()


def psycopg2_wait(conn):
    """psycopg2 wait callback: step the connection, parking between steps."""
    from psycopg2 import OperationalError, extensions
    while True:
        state = conn.poll()
        if state == extensions.POLL_OK:
            return
        if state == extensions.POLL_READ:
            _wait_fd(conn.fileno(), select.POLLIN)
        elif state == extensions.POLL_WRITE:
            _wait_fd(conn.fileno(), select.POLLOUT)
        else:
            raise OperationalError(f"psycopg2: bad poll() state {state!r}")


def patch_psycopg2(module):
    module.extensions.set_wait_callback(psycopg2_wait)


def patch_psycopg(waiting):
    import selectors
    waiting.wait = waiting.wait_poll
    waiting._ready = waiting._ready_poll
    waiting.DefaultSelector = selectors.DefaultSelector


# What gmp.monkey.patch_psycopg hooks: each driver when it is imported.
IMPORT_HOOKS = (("psycopg2", patch_psycopg2), ("psycopg.waiting", patch_psycopg))

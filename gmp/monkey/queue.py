"""gmp.monkey.queue: ``queue.SimpleQueue`` whose get() parks the G.

The stdlib's SimpleQueue is C (``_queue``): a blocking get() waits on a C
lock with the GIL released, which holds the whole M and every G bound to
it.  The pure-Python fallback (``queue._PySimpleQueue``) is no answer: it
is built on a Semaphore, so its put() takes a lock, and SimpleQueue
documents put() as reentrant (a put() from a ``__del__`` or a weakref
callback that runs in the middle of another put() must not deadlock;
concurrent.futures relies on it) and as never blocking.

So the cooperative class subclasses the C type and keeps its storage and
its put():

* put() is the C put (reentrant, never blocks), then a wake-up: it
  releases a *kick* lock (a real ``_thread`` lock used as a flag: released
  means an item may have arrived since a getter last looked) and readies
  one parked G.  Neither step runs Python code that a reentrant put could
  interleave with harmfully: both are single C calls.
* get() inside a G tries the C get without blocking; on Empty it parks
  with ``park_unless(kick.acquire)``, which retakes the flag and parks with
  no bytecode in between, so a put() on another M (or a reentrant one on
  this M) between the failed try and the park is never lost.  A woken G
  tries again (another getter may have been faster).  A getter cancelled
  while parked (Killed, a Timeout scope) is skipped by the next put's
  wake-up, which goes to a getter still waiting; one readied by a put
  takes the item before a later cancellation reaches it, at its next park.
* Outside a G (a plain OS thread, or no runtime) get() is the C blocking
  get, which the C put wakes: Gs and plain threads may share a queue.

``test.support.import_fresh_module('queue', fresh=['_queue'])`` and
``importlib.reload`` build a new ``_queue`` module with a new C type; a
program reaching SimpleQueue that way would block its M again, so every
later import of ``_queue`` gets its own cooperative subclass too (a hook
of gmp.monkey.imports).  Code that bound ``_queue.SimpleQueue`` before
patching keeps the C type (gmp.blocking does so on purpose: its workers
are OS threads).
"""
import _thread
from time import monotonic as _monotonic

from gmp._ext import _core
from gmp._ext._core import WaitList

_current = _core.current
_park_unless = _core.park_unless
_allocate_lock = _thread.allocate_lock


def cooperative(module):
    """The cooperative SimpleQueue over `module`'s C type (`module` is a
    ``_queue`` module object; its Empty is the one raised)."""
    base = module.SimpleQueue
    if getattr(base, "_gmp_cooperative", False):
        return base
    empty = module.Empty
    c_put = base.put
    c_get = base.get

    class SimpleQueue(base):
        __doc__ = base.__doc__
        __slots__ = ("_gmp_kick", "_gmp_waiters")
        _gmp_cooperative = True

        def __new__(cls, *args, **kwargs):
            # In __new__, not __init__: a subclass of the C type has no
            # __init__ of its base to call, so users' subclasses never do.
            self = base.__new__(cls, *args, **kwargs)
            self._gmp_kick = _allocate_lock()
            self._gmp_waiters = WaitList()
            return self

        def put(self, item, block=True, timeout=None):
            """Put the item on the queue; never blocks (block and timeout
            are accepted for compatibility with Queue.put)."""
            c_put(self, item)
            kick = self._gmp_kick
            if kick.locked():
                try:
                    kick.release()
                except RuntimeError:     # another put released it meanwhile
                    pass
            if self._gmp_waiters:
                self._gmp_waiters.notify(1)

        def put_nowait(self, item):
            """Put an item into the queue without blocking."""
            self.put(item)

        def get(self, block=True, timeout=None):
            """Remove and return an item from the queue; in a G, waiting
            parks only the G.  Raises Empty as the C get does."""
            if not block or _current() is None:
                return c_get(self, block, timeout)
            if timeout is not None and timeout < 0:
                raise ValueError("'timeout' must be a non-negative number")
            deadline = None if timeout is None else _monotonic() + timeout
            while True:
                try:
                    return c_get(self, False)
                except empty:
                    pass
                left = None if deadline is None else max(0.0, deadline - _monotonic())
                r = _park_unless(self._gmp_kick.acquire, self._gmp_waiters, "queue.get", left)
                if r == -1:
                    return c_get(self, False)

    # Named as the type it replaces (see gmp.monkey.threading, Names).
    SimpleQueue.__module__, SimpleQueue.__qualname__ = base.__module__, base.__qualname__
    return SimpleQueue


def patch_module(module):
    """Installs the cooperative class as `module`.SimpleQueue (a ``_queue``
    module: the running one, or one imported afresh after patching)."""
    module.SimpleQueue = cooperative(module)

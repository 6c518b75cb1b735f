"""gmp.monkey.asyncio: an asyncio event loop per G, not per OS thread.

asyncio keeps "the running loop" per OS thread (in C, in the thread
state's dict), so with several Gs on one M only one of them may be inside
``asyncio.run`` at a time: the others fail with "cannot be called from a
running event loop".  A loop running in a G is fine otherwise: it waits in
a patched selector, which parks only its G.

So, as CPython's own tests do to exercise them, the public names switch to
asyncio's pure-Python implementations (``events._py_get_running_loop`` and
friends, reading ``events._running_loop``), and the two thread-locals they
and the default policy read (``events._running_loop`` and the policy's
``_Local``, whose ``set_event_loop`` asyncio.run calls) become per-G
locals (gmp.monkey.threading.Glocal).  Nothing is reimplemented.

Left per OS thread, as no Python hook reaches them: a C ``asyncio.Future()``
or ``Task()`` made with no loop asks the policy (per G, so it gets the G's
loop), and the async-generator hooks (``sys.set_asyncgen_hooks``) a running
loop installs are those of the loop that started last on that M - async
generators left unfinished are then finalised by that loop.
"""
from asyncio import events

from gmp.monkey.threading import Glocal

# The functions whose C versions read the per-thread running loop.
NAMES = ("_get_running_loop", "_set_running_loop", "get_running_loop", "get_event_loop",
         "_get_event_loop")


class _RunningLoop(Glocal):
    loop_pid = (None, None)


class _PolicyLocal(Glocal):
    _loop = None
    _set_called = False


def replacements():
    """(module, name, value) triples that patch_asyncio() installs; the
    asyncio package re-exports the public ones (events.__all__)."""
    out = [("asyncio.events", "_running_loop", _RunningLoop())]
    for name in NAMES:
        py = getattr(events, "_py_" + name)
        out.append(("asyncio.events", name, py))
        if name in events.__all__:
            out.append(("asyncio", name, py))
    return out


def patch_policy():
    """New policies get per-G loops; an existing default policy keeps the
    calling thread's loop in its new per-G storage."""
    events.BaseDefaultEventLoopPolicy._Local = _PolicyLocal
    policy = events._event_loop_policy
    if isinstance(policy, events.BaseDefaultEventLoopPolicy) and not isinstance(policy._local, Glocal):
        old, policy._local = policy._local, _PolicyLocal()
        policy._local._loop = old._loop
        policy._local._set_called = old._set_called

"""Scheduling policies: where new Gs go, where an idle P looks for work and
in what order, whether and how much it steals, how idle Ms wait; and how
work is admitted and run (a G per task, or a pool of worker Gs).

A policy is a frozen ``Policy`` value; the core copies its knobs into a C
struct at start-up (``_ext/policy.pxi``), so a policy costs nothing on the
hot path.  Select one with ``gmp.run(..., policy=NAME_OR_POLICY)``, the
``GMPPOLICY`` environment variable, or ``--policies`` of ``gmp bench
steal-vs-global``.  ``register()`` adds a named policy; an unknown name is a
ValueError listing the known ones.

Knobs
    placement      "local": a new G goes to the spawning P's runnext (the
                   previous runnext to its runq), as in Go; "global": to the
                   global queue.
    local_queues   False: a global pull takes one G (no batch into the local
                   runq); the global queue is then the only queue of fresh Gs,
                   and it stays ONE queue on a multi-node machine (see
                   "NUMA" below).
    global_batch   max Gs per global pull (0: Go's min(len/procs+1, 128)).
    global_tick    every Nth scheduling tick take one G from the global queue
                   first, for fairness (Go: 61; 0: never).
    look           where an idle P looks once its own queues and timers are
                   empty, in order: ("global", "steal") is Go's order.
    steal          whether idle Ps steal fresh Gs; steal_max caps one steal
                   (0: half the victim's runq, Go's amount).
    wake_helpers   whether a spawn wakes an idle M to take the new G (wakep).
    gil_learning   idle-M waiting: helper Ms time the GIL and back off while
                   the others run Python (see ``_ext/sysmon.pxi``); False
                   makes every helper help.
    numa_first     steal from Ps on the same NUMA node first, and pull from
                   the own node's global queue before the others'
                   (gmp.topology); False: the node queues are one pool that
                   every P takes from in node order.
    admission      the second dimension: how submitted work is admitted and
                   run (gmp.pool): ``PerTask()`` (a fresh G per task, the
                   default), ``Tars(...)`` or ``Sofa(...)`` (bounded pools of
                   long-lived worker Gs), or a user's own (below).

Admission: submitting work
    ``submit(fn, *args, key=None, deadline=None, **kwargs) -> Task | G``
    runs ``fn`` under the admission of the policy in force (``current()``
    is the running gmp.run's pool, created on first use and dropped with
    the run).  Servers route each request through it: gmp.net.serve does
    for every connection, the WSGI server for every request.  Under a
    pooled policy it raises gmp.Rejected when the pool is full (answer
    busy) and the returned Task's ``result()`` raises gmp.QueueTimeout when
    the deadline passed in the queue (answer timeout); ``current().stats()``
    counts both.  ``key`` and ``deadline`` are keyword-only and reserved;
    pass a function that takes such keywords through functools.partial.

    How a task carries its key and deadline (decision): as arguments of
    submit, because the server that reads a request is the one that knows
    its key (a uid, a connection) and its client timeout, and gmp has no
    implicit per-G context to hide them in (Go passes a Context
    explicitly, too).  ``deadline`` is a time.monotonic() value or a
    gmp.Context, whose ``deadline()`` is used, so a request handled under
    ``gmp.with_deadline``/``with_timeout`` carries its deadline into the
    queue.  A G-per-task admission ignores both (nothing queues).

    A user's own admission is any object with ``start(procs) -> pool``,
    called once per run (make it a frozen dataclass and validate its knobs
    in ``__post_init__``), where the pool has ``submit(fn, args, kwargs,
    key, deadline)`` (deadline already a float or None) returning something
    with ``result(timeout)``/``join(timeout)``/``exception``, and
    ``stats() -> dict``.

NUMA
    With Ps on more than one node (gmp.topology) the global queue is split
    into one queue per node: Gs that overflow a P's runq or that the policy
    places globally go to the placing P's node's queue, and stats() counts
    pulls from another node's queue as ``global_pulls_remote``.  Policies
    without local queues are the exception: they keep a single global queue
    whatever the topology.  Such a policy (``global``) exists to be the
    one-FIFO baseline of ``steal-vs-global``; split by node, its queue would
    no longer be one FIFO (a G queued on node 1 could run before an older
    one on node 0), and the comparison would measure the split instead.

Idle Ms always sleep in the kernel (epoll_wait on their P, GIL released):
no policy spins holding the GIL.

Built-ins
    go       Go's scheduler: local placement, global batches, steal half;
             a G per task.
    global   the baseline: one global FIFO for every fresh G, no local
             batches, no stealing; a G per task.
    tars     Go's queues without stealing; work runs on a Tars() pool: one
             worker G per P, one bounded FIFO (10 000), overload above 80 %.
    sofa     Go's queues without stealing; work runs on a Sofa() pool:
             hand-off to idle workers, core one / max four per P, block at
             max.
    tars-keyed   tars with per-key queues (one per worker).
    sofa-sharded sofa's sharded pool: 8 shards, 1024 tasks each.
    Pooled policies do not steal: their workers are bound to a P from
    birth and their queued tasks are not Gs (gmp/pool.py).
"""
import dataclasses
import threading

from gmp._ext import _core
from gmp.pool import PerTask, QueueTimeout, Rejected, Sofa, Tars

__all__ = ["Policy", "register", "get", "names", "resolve", "current", "submit",
           "PerTask", "Tars", "Sofa", "Rejected", "QueueTimeout"]


@dataclasses.dataclass(frozen=True)
class Policy:
    name: str
    placement: str = "local"
    local_queues: bool = True
    global_batch: int = 0
    global_tick: int = 61
    look: tuple = ("global", "steal")
    steal: bool = True
    steal_max: int = 0
    wake_helpers: bool = True
    gil_learning: bool = True
    numa_first: bool = True
    admission: object = PerTask()

    def __post_init__(self):
        if self.placement not in ("local", "global"):
            raise ValueError(f"policy {self.name!r}: placement must be 'local' or 'global', "
                             f"not {self.placement!r}")
        for where in self.look:
            if where not in ("global", "steal"):
                raise ValueError(f"policy {self.name!r}: look entries are 'global' or 'steal', "
                                 f"not {where!r}")
        for knob in ("global_batch", "global_tick", "steal_max"):
            v = getattr(self, knob)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"policy {self.name!r}: {knob} must be an int >= 0, not {v!r}")
        object.__setattr__(self, "look", tuple(self.look))
        if not callable(getattr(self.admission, "start", None)):
            raise TypeError(f"policy {self.name!r}: admission must have a start(procs) method "
                             f"(gmp.pool.PerTask, Tars, Sofa), not {self.admission!r}")


GO = Policy("go")
GLOBAL = Policy("global", placement="global", local_queues=False, look=("global",),
                steal=False)

TARS = Policy("tars", steal=False, admission=Tars())
SOFA = Policy("sofa", steal=False, admission=Sofa())
TARS_KEYED = Policy("tars-keyed", steal=False, admission=Tars(keyed=True))
SOFA_SHARDED = Policy("sofa-sharded", steal=False, admission=Sofa(shards=8))

_registry = {p.name: p for p in (GO, GLOBAL, TARS, SOFA, TARS_KEYED, SOFA_SHARDED)}


def register(policy):
    """Make `policy` selectable by name (replaces one of the same name)."""
    if not isinstance(policy, Policy):
        raise TypeError(f"register() needs a gmp.policy.Policy, not {type(policy).__name__}")
    _registry[policy.name] = policy
    return policy


def names():
    return tuple(_registry)


def get(name):
    try:
        return _registry[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown policy {name!r}; known policies: {', '.join(_registry)}") from None


def resolve(policy=None):
    """A Policy from a Policy, a name, or None (GMPPOLICY, else "go")."""
    if isinstance(policy, Policy):
        return policy
    if policy is None:
        from gmp import settings
        policy = settings.get("GMPPOLICY")
    if not isinstance(policy, str):
        raise TypeError(f"policy must be a name or a gmp.policy.Policy, not {type(policy).__name__}")
    return get(policy)


# The running gmp.run's pool: (run stamp, pool).  Creating a pool starts Gs
# but never parks, so a thread lock may guard it: it only settles a race
# between Ms submitting a run's first tasks.
_pool = (0, None)
_pool_lock = threading.Lock()


def current():
    """The pool of the policy in force in the running gmp.run (created on
    first use, one per run); gmp.NoRuntime outside a runtime."""
    global _pool
    policy, stamp = _core.policy_in_force()
    if policy is None:
        raise _core.NoRuntime("gmp.policy.current() needs a running runtime")
    if _pool[0] == stamp:
        return _pool[1]
    with _pool_lock:
        if _pool[0] != stamp:
            _pool = (stamp, policy.admission.start(_core.nprocs()))
        return _pool[1]


def submit(fn, *args, key=None, deadline=None, **kwargs):
    """Run fn(*args, **kwargs) under the policy in force (see "Admission").
    Returns a Task (pooled) or a G (a G per task); raises gmp.Rejected when
    a pool is full."""
    if not callable(fn):
        raise TypeError(f"submit() target must be callable, not {type(fn).__name__}")
    if deadline is not None:
        if hasattr(deadline, "deadline"):
            deadline = deadline.deadline()
        elif isinstance(deadline, bool) or not isinstance(deadline, (int, float)):
            raise TypeError("deadline must be a time.monotonic() value or a gmp.Context, "
                            f"not {type(deadline).__name__}")
    return current().submit(fn, args, kwargs, key, deadline)


def admit_connection(handler, conn, addr):
    """gmp.net.serve's admission of one accepted connection: handler(conn,
    addr) is submitted like a request, so under a pooled policy a worker
    serves the connection until the handler returns (the pool bounds the
    connections served at once, as a thread-pool server does), and a
    rejected connection is closed at once: the only busy reply a server that
    does not know the protocol can give.  Protocols with many requests per
    connection admit each request with submit() from a plain connection G
    instead (as gmp.bench.rpc's server does)."""
    try:
        submit(handler, conn, addr, key=conn.fileno())
    except Rejected:
        conn.close()

"""Scheduling policies: where new Gs go, where an idle P looks for work and
in what order, whether and how much it steals, how idle Ms wait.

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
    go       Go's scheduler: local placement, global batches, steal half.
    global   the baseline: one global FIFO for every fresh G, no local
             batches, no stealing.
"""
import dataclasses

__all__ = ["Policy", "register", "get", "names", "resolve"]


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


GO = Policy("go")
GLOBAL = Policy("global", placement="global", local_queues=False, look=("global",),
                steal=False)

_registry = {p.name: p for p in (GO, GLOBAL)}


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

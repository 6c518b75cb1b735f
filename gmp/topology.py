"""CPU topology, pinning and NUMA placement of Ms.

Topology is read from sysfs: ``devices/system/cpu/online`` and
``devices/system/node/node*/cpulist`` under ``GMP_SYSFS_ROOT`` (default
``/sys``), so tests can simulate, say, 2 nodes x 4 CPUs in a temporary tree.
A machine without ``node*`` directories is one node holding every online CPU.

Pin modes (``gmp.run(..., pin=...)`` or ``GMPPIN``):
    none      (default) Ms are not pinned; every P counts as node 0.
    compact   M i on the i-th allowed CPU, filling node 0 first, then node 1...
    scatter   Ms spread round-robin over the nodes, then over each node's CPUs.
    a CPU list  "0,2", "0-3" or a list of ints: M i on the i-th CPU listed.

Each M pins itself at thread start with ``os.sched_setaffinity(0, {cpu})``
(per thread on Linux); M0, the thread that called gmp.run(), is restored to
its previous affinity when run() returns.  CPUs must lie in the process's
allowed set (psutil ``cpu_affinity()``) and there must be one per M: an
impossible request is a ValueError at start-up, before any thread starts.

Ps are grouped by the node of their M's CPU; with the policy's
``numa_first`` (the default) an idle P steals from Ps on its own node before
the others.  The global queue is one queue per node: Gs that overflow a P's
runq (or that a policy places globally) go to the queue of that P's node, and
a P pulls from its own node's queue before the others' (numa_first; without
it the queues are one pool taken in node order); see gmp.policy, "NUMA".
With pin mode none, every P is on node 0 and there is one global queue.
"""
import dataclasses
import glob
import os

from gmp import settings

__all__ = ["Topology", "Placement", "parse_cpulist", "read_topology", "allowed_cpus", "plan"]

MODES = ("none", "compact", "scatter")


@dataclasses.dataclass(frozen=True)
class Topology:
    online: tuple          # online CPU ids, ascending
    nodes: dict            # node id -> tuple of its online CPU ids

    def node_of(self, cpu):
        for node, cpus in self.nodes.items():
            if cpu in cpus:
                return node
        return 0


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where one M runs: cpus to pin it to (None: not pinned) and its node."""
    cpus: tuple = None
    node: int = 0


def parse_cpulist(text):
    """Linux cpulist format ("0-3,8,10-11") to a sorted list of ints."""
    out = set()
    for part in str(text).strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ValueError(f"bad CPU list {text!r}: {part!r} is not N or N-M") from None
        if a < 0 or b < a:
            raise ValueError(f"bad CPU list {text!r}: {part!r}")
        out.update(range(a, b + 1))
    return sorted(out)


def _read(path):
    with open(path) as f:
        return f.read()


def read_topology(root=None):
    root = root or settings.get("GMP_SYSFS_ROOT")
    try:
        online = parse_cpulist(_read(os.path.join(root, "devices/system/cpu/online")))
    except OSError:
        online = sorted(os.sched_getaffinity(0))
    nodes = {}
    for d in glob.glob(os.path.join(root, "devices/system/node/node[0-9]*")):
        try:
            nid = int(os.path.basename(d)[4:])
            cpus = [c for c in parse_cpulist(_read(os.path.join(d, "cpulist"))) if c in online]
        except (OSError, ValueError):
            continue
        if cpus:
            nodes[nid] = tuple(cpus)
    if not nodes:
        nodes = {0: tuple(online)}
    return Topology(tuple(online), dict(sorted(nodes.items())))


def allowed_cpus():
    """CPUs this process may run on (psutil, falling back to sched_getaffinity)."""
    try:
        import psutil
        return set(psutil.Process().cpu_affinity())
    except Exception:  # noqa: BLE001 - psutil missing or unsupported here: the kernel's answer will do
        return set(os.sched_getaffinity(0))


def plan(procs, pin=None, topo=None, allowed=None):
    """One Placement per M for `pin` (see the module docstring), or raise
    ValueError naming the impossible part of the request."""
    if pin is None:
        pin = settings.get("GMPPIN")
    if isinstance(pin, (list, tuple)) and pin and all(isinstance(p, Placement) for p in pin):
        if len(pin) != procs:
            raise ValueError(f"pin: {len(pin)} placements for {procs} Ms")
        return list(pin)
    if isinstance(pin, str) and pin.strip() in ("", "none"):
        return [Placement(None, 0) for _ in range(procs)]
    topo = topo or read_topology()
    if allowed is None:
        allowed = allowed_cpus()
    allowed = set(allowed) & set(topo.online)
    if isinstance(pin, str) and pin in ("compact", "scatter"):
        if procs > len(allowed):
            raise ValueError(f"pin={pin!r}: {procs} Ms need {procs} CPUs but this process may "
                             f"use only {len(allowed)}: {sorted(allowed)}")
        per_node = [[c for c in cpus if c in allowed] for cpus in topo.nodes.values()]
        per_node = [cs for cs in per_node if cs]
        if pin == "compact":
            order = [c for cs in per_node for c in cs]
        else:
            order = []
            for k in range(max(len(cs) for cs in per_node)):
                order += [cs[k] for cs in per_node if k < len(cs)]
        cpus = order[:procs]
    else:
        if isinstance(pin, str):
            if pin not in MODES and not pin[:1].isdigit():
                raise ValueError(f"pin must be one of {', '.join(MODES)} or a CPU list, "
                                 f"not {pin!r}")
            cpus = parse_cpulist(pin)
        else:
            try:
                cpus = [int(c) for c in pin]
            except (TypeError, ValueError):
                raise ValueError(f"pin must be a mode or a list of CPU ids, not {pin!r}") from None
        if not cpus:
            raise ValueError("pin: empty CPU list")
        bad = [c for c in cpus if c not in topo.online]
        if bad:
            raise ValueError(f"pin: CPU(s) {bad} do not exist (online: {list(topo.online)})")
        bad = [c for c in cpus if c not in allowed]
        if bad:
            raise ValueError(f"pin: CPU(s) {bad} are not in this process's allowed set "
                             f"{sorted(allowed)}")
        if len(cpus) < procs:
            raise ValueError(f"pin: {procs} Ms need {procs} CPUs, the list has {len(cpus)}")
        cpus = cpus[:procs]
    return [Placement((c,), topo.node_of(c)) for c in cpus]

# Scheduling policies, as the scheduler loop sees them: a C struct filled
# once at start-up from a gmp.policy.Policy (gmp/policy.py documents the
# knobs), so the hot paths read plain fields instead of calling Python.
#
# Only the conversion lives here; policy_t is in the vocabulary (gmp/_ext/_core.pxd).

cdef int policy_from(policy_t* pol, object p) except -1:
    """Fills pol from a gmp.policy.Policy (or anything with its attributes)."""
    cdef int i = 0
    pol.place_global = p.placement == "global"
    pol.local_batch = bool(p.local_queues)
    pol.global_batch = p.global_batch
    pol.global_tick = p.global_tick
    pol.steal = bool(p.steal)
    pol.steal_max = p.steal_max
    pol.wake_helpers = bool(p.wake_helpers)
    pol.gil_learning = bool(p.gil_learning)
    pol.numa_first = bool(p.numa_first)
    for where in p.look:
        if i == LOOK_MAX - 1:
            break
        if where == "global":
            pol.look[i] = LOOK_GLOBAL
        elif where == "steal":
            pol.look[i] = LOOK_STEAL
        else:
            raise ValueError(f"policy {p.name!r}: unknown place to look {where!r}")
        i += 1
    pol.look[i] = 0
    return 0


def policy_in_force():
    """(policy, run stamp) of the running gmp.run, or (None, 0).  The stamp
    (the run's start time) tells one run from the next, so that per-run
    state kept in Python (a policy's worker pool, gmp/policy.py) is never
    carried into a later run."""
    if sched is None:
        return (None, 0)
    return (sched.policy, sched.start_ns)

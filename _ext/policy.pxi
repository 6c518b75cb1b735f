# Scheduling policies, as the scheduler loop sees them: a C struct filled
# once at start-up from a gmp.policy.Policy (gmp/policy.py documents the
# knobs), so the hot paths read plain fields instead of calling Python.
#
# Included before sched.pxi: only C-level declarations and the conversion.

cdef enum:
    LOOK_GLOBAL = 1
    LOOK_STEAL = 2
    LOOK_MAX = 4

ctypedef struct policy_t:
    bint place_global      # new Gs go to the global queue (else runnext/runq)
    bint local_batch       # global pulls refill the local runq (else one G)
    int global_batch       # max Gs per global pull; 0: Go's min(len/nprocs+1, 128)
    int global_tick        # every Nth tick look at the global queue first; 0: never
    bint steal             # idle Ps steal fresh Gs from others
    int steal_max          # max Gs per steal; 0: half the victim's runq
    int look[LOOK_MAX]     # where an idle P looks, in order (LOOK_*), 0-ended
    bint wake_helpers      # spawns wake an idle M to take the new work (wakep)
    bint gil_learning      # helper Ms back off when the GIL is busy (sysmon.pxi)
    bint numa_first        # steal / pull from the same NUMA node first


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

# The core's vocabulary (Go's runtime2.go): every type the files of _core
# share, and the enums they speak in.  Only declarations live here; the code
# of each type lives with its concern (G's methods in proc.pxi, PollDesc's in
# netpoll.pxi, ...).  It is a .pxd, not a .pxi, because Cython wants a cdef
# class's fields in one place before its methods and allows the two to be in
# different files only through the module's own .pxd (uvloop's loop.pxd).
# It sits in the package, beside the module it declares (gmp/_ext/_core.so),
# because that is where Cython looks for module gmp._ext._core's own .pxd;
# the one alternative beside the sources, a dotted file name in _ext/, is
# deprecated by Cython.
#
# Who may write a field.  Each field says it, in these words:
#   owner      only the M that owns the P (the G's home P's M, for a G);
#   GIL        any thread holding the GIL (all Ms do while they run Python);
#   atomic     any thread, with the C atomics of gmp_c.h, GIL or not;
#   start      written once while the runtime starts (run()), read-only after;
#   sysmon     the sysmon thread, without the GIL (racy word reads/writes,
#              fine for a heuristic: sysmon.pxi says why).
# "GIL" is the rule the scheduler relies on for everything but the run-queue
# rings and the wake flags; a free-threaded build would need the locks that
# runq.pxi and waitq.pxi describe.

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from cpython.ref cimport PyObject

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass

cdef extern from "gmp_c.h" nogil:
    enum:
        GMP_LAT_NB          # buckets of a ready->running histogram
        GMP_LB_N            # buckets of a latency breakdown (LB_* in latency.pxi)


# --- G states, wake causes, wake sources, wait reasons ---------------------

cdef enum gstatus:
    # G.status.  A G is fresh while GRUNNABLE with no greenlet ("new").
    GRUNNABLE = 1       # queued (or about to be) on a run queue
    GRUNNING = 2        # its M runs it: M.curg
    GWAITING = 3        # parked: exactly one goready() with its ticket may ready it
    GDEAD = 4           # finished; result or exception recorded

cdef enum wakecause:
    # G.wakeup: why goready() readied a parked G (the "how" of goready).
    WAKE_OK = 0         # what it waited for happened (value in G.wakeval)
    WAKE_TIMEOUT = 1    # its timeout timer fired first
    WAKE_INTERRUPT = 2  # kill / Timeout scope / deadlock: G.pending is raised
    WAKE_CLOSED = 3     # the channel or fd it waited on was closed

cdef enum wakesource:
    # Who called goready() (the wake_counts() statistics, test door).
    WS_WAITQ = 0        # a channel, lock, event, wait group, join
    WS_TIMER = 1        # a timeout or sleep timer
    WS_INTERRUPT = 2    # kill, a Timeout scope, deadlock, shutdown
    WS_NETPOLL = 3      # fd readiness, close, deadline change
    WS_BLOCKING = 4     # a gmp.blocking helper thread
    WS_N = 5

cdef enum helpwake:
    # Why an idle M was woken to help (P.woke): it then takes work from
    # others (steals, pulls the global queue) instead of only its own.
    WOKE_NONE = 0       # not woken to help (a plain kick, or not asleep)
    WOKE_HELP = 1       # by wakep(): helps unless the GIL learning says the others run Python
    WOKE_FORCED = 2     # by sysmon, for a P stuck with fresh Gs: always helps

cdef enum:
    RUNNEXT_STREAK = 16     # runnext picks in a row before the queues get a turn
    GFREE_MAX = 256         # idle worker greenlets an M keeps (Go's gfree list)
    # Go's _MaxGomaxprocs.  Each M is an OS thread with its own epoll
    # instance and eventfd; beyond this a run is a mistake, not a machine.
    MAX_PROCS = 1024


# --- queues, timers, policy, latency accounting: C structs ----------------

cdef enum:
    RUNQ_SIZE = 256
    RUNQ_MASK = 255
    RUNQ_HALF = 128

ctypedef struct runq_t:
    # P.runq: Go's lock-free ring of fresh Gs (runq.pxi).
    uint32_t head           # atomic: consumers (owner, thieves) CAS it forward
    uint32_t tail           # owner: store-release after writing a slot
    PyObject* buf[256]      # owned references; a slot is the owner's until published

ctypedef struct ring_t:
    # P.boundq: growable FIFO of bound Gs readied on their P (owner only).
    PyObject** buf          # owner: owned references
    Py_ssize_t head         # owner: index of the oldest entry
    Py_ssize_t n            # owner: entries
    Py_ssize_t cap          # owner: allocated slots

ctypedef struct gqueue_t:
    # The global queue and a P's inbox: a locked list through G.schedlink.
    pthread_mutex_t lock    # held only around the pointer updates, never across Python
    PyObject* head          # under lock: oldest G (owned reference)
    PyObject* tail          # under lock: newest G
    int64_t size            # atomic: length, read without the lock on hot paths

ctypedef struct nodeq_t:
    # One NUMA node's global queue (Sched.gqs).
    gqueue_t q              # the queue itself
    int32_t nps             # start: Ps on this node, the fair share of a batch
    char pad[64]            # no two nodes' queues share a cache line

ctypedef struct waiter_t:
    # One parked G in a wait queue (waitq.pxi); valid while its ticket is the G's.
    PyObject* g             # owned: the parked G
    uint64_t ticket         # the G's park ticket when it registered
    PyObject* elem          # owned or NULL: the value a parked sender offers
    int idx                 # select case index (G.wakecase when it wins)

ctypedef struct waitq_t:
    # A FIFO of waiters (channels, sync, join, PollDesc): GIL.
    waiter_t* buf           # GIL: ring storage
    Py_ssize_t head         # GIL: index of the oldest waiter
    Py_ssize_t n            # GIL: waiters, stale ones included
    Py_ssize_t cap          # GIL: allocated slots
    Py_ssize_t live_hint    # GIL: size after the last compaction

ctypedef struct timer_t:
    # One entry of a P's timer heap (timers.pxi says the three kinds).
    int64_t when            # due time, monotonic ns
    PyObject* g             # owned or NULL: the G to wake
    uint64_t ticket         # the park (or Timeout scope) it belongs to
    PyObject* obj           # owned or NULL: a Timeout or TimerFunc

ctypedef struct theap_t:
    # P.timers: the 4-ary min-heap (owner: only the P's M pushes and pops).
    timer_t* a              # owner: the heap array
    Py_ssize_t n            # owner: entries, stale ones included
    Py_ssize_t cap          # owner: allocated entries
    Py_ssize_t swept_n      # owner: size after the last sweep of stale entries

cdef enum:
    LOOK_GLOBAL = 1
    LOOK_STEAL = 2
    LOOK_MAX = 4

ctypedef struct policy_t:
    # Sched.pol: the knobs the loop reads (start: filled once by policy_from).
    bint place_global       # new Gs go to the global queue (else runnext/runq)
    bint local_batch        # global pulls refill the local runq (else one G)
    int global_batch        # max Gs per global pull; 0: Go's min(len/nprocs+1, 128)
    int global_tick         # every Nth tick look at the global queue first; 0: never
    bint steal              # idle Ps steal fresh Gs from others
    int steal_max           # max Gs per steal; 0: half the victim's runq
    int look[LOOK_MAX]      # where an idle P looks, in order (LOOK_*), 0-ended
    bint wake_helpers       # spawns wake an idle M to take the new work (wakep)
    bint gil_learning       # helper Ms back off when the GIL is busy (sysmon.pxi)
    bint numa_first         # steal / pull from the same NUMA node first

cdef enum:
    HOLD_RING = 64
    LAT_MAXCLS = 1024
    LAT_TAKE = 256

ctypedef struct hold_t:
    # One long run segment of a P (an incident that delayed others).
    int64_t start           # owner: when the segment began, ns
    int64_t end             # owner: when it ended
    int64_t gid             # owner: the G that ran
    int64_t inc             # owner: its incident id (stack table), 0: none

ctypedef struct pacct_t:
    # P.lacct: latency attribution per P (latency.pxi).
    int64_t seg_start       # owner: when the running G's segment began
    int64_t seg_gid         # owner: that G, 0 when the M runs no G
    int64_t idle_start      # owner: when the M went idle
    int64_t gil_start       # owner: the last GIL wait of this P's M began
    int64_t gil_end         # owner: ... and ended
    uint32_t nholds         # owner: segments recorded in holds (a ring)
    hold_t holds[HOLD_RING]  # owner: its last long segments (incidents)

ctypedef struct gacct_t:
    # G.lacct: latency accounting per G (latency.pxi).
    int64_t since           # GIL: last transition, 0: not accounted
    int64_t born            # GIL: when the G (or its request) began
    pacct_t* waitp          # GIL: the P it is queued on while runnable
    int32_t state           # GIL: the LB_* bucket it is in now
    int64_t b[GMP_LB_N]     # GIL: ns spent per bucket
    int64_t held_gid        # GIL: the G that held its M longest
    int64_t held_max        # GIL: ... for how long
    int64_t held_inc        # GIL: ... and its incident id


# --- G, P, M, Sched, PollDesc ---------------------------------------------

cdef class G:
    cdef readonly int64_t id        # start of G: unique, from Sched.goidgen
    cdef object _name               # GIL: display name, None until first asked
    cdef object fn                  # GIL: the callable; None once finished
    cdef object args                # GIL: its arguments; None once started
    cdef object kwargs              # GIL: its keyword arguments or None
    cdef object glet                # owner: the greenlet running it, None while fresh
    cdef int status                 # GIL: gstatus
    cdef object waitreason          # GIL: why it is parked, while GWAITING
    cdef int64_t waitsince          # GIL: coarse time it parked
    cdef object _value              # GIL: its return value once GDEAD
    cdef object _exc                # GIL: the exception it died with, or None
    cdef P home                     # owner: the P it is bound to, None while fresh
    cdef uint64_t ticket            # GIL: park ticket; bumped by every wake-up (invariant 2)
    cdef uint64_t readyseq          # owner of the queuing P: FIFO order of runq vs boundq
    cdef int64_t readyat            # GIL: when last made runnable (ready->running histogram)
    cdef object wakeval             # GIL: the value its waker handed over
    cdef int wakecase               # GIL: the select case that woke it
    cdef int wakeup                 # GIL: wakecause of the last wake-up
    cdef object pending             # GIL: an interrupt to raise at its park point
    cdef object parkglet            # GIL: the user greenlet that parked, if not glet
    cdef waitq_t joinq              # GIL: Gs joining this one
    cdef PyObject* schedlink        # under the queue's lock: next G in a gqueue_t
    cdef PyObject* allprev          # GIL: the G list (Sched.allg)
    cdef PyObject* allnext          # GIL: the G list
    cdef bint in_allg               # GIL: on the G list
    cdef bint iowoke                # GIL: its last park was an I/O wait ("Spawn hand-off")
    cdef readonly int64_t parent_id  # start of G: the G that spawned it, 0: none
    cdef gacct_t lacct              # GIL: latency accounting (latency.pxi)


cdef class P:
    cdef readonly int id            # start: index in Sched.allp
    cdef readonly int node          # start: NUMA node of its M's CPU (gmp.topology)
    cdef int* sorder                # owner: steal order scratch (nprocs entries)
    cdef runq_t runq                # atomic: fresh Gs (runq.pxi)
    cdef PyObject* runnext          # owner (thieves under the GIL): the G to run next
    cdef int runnext_streak         # owner: runnext picks in a row (RUNNEXT_STREAK)
    cdef ring_t boundq              # owner: bound Gs readied on this P
    cdef gqueue_t inbox             # atomic/lock: Gs readied here by other Ms
    cdef theap_t timers             # owner: the timer heap
    cdef int epfd                   # start: its epoll instance
    cdef int evfd                   # start: the eventfd that kicks its M awake
    cdef int32_t sleeping           # atomic: its M is in (or entering) epoll_wait
    cdef int32_t woke               # atomic: why its M was woken to help (helpwake)
    cdef int32_t stuck              # sysmon: awake without scheduling progress for stuck_ns
    cdef uint64_t readyseq          # owner: stamp counter of readyseq
    cdef uint32_t schedtick         # owner: scheduling rounds (61-tick fairness, sysmon progress)
    cdef M m                        # start: the M that owns it
    cdef readonly int64_t nspawn    # owner: Gs spawned here
    cdef readonly int64_t nhandoff  # owner: spawns handed to another P ("Spawn hand-off")
    cdef readonly int64_t nsteal    # owner: steal attempts on a non-empty victim
    cdef readonly int64_t nstolen   # owner: Gs taken by stealing
    cdef readonly int64_t nglobal   # owner: Gs taken from the global queue
    cdef readonly int64_t nglobal_remote  # owner: of those, from another node's queue
    cdef int gqi                    # start: index of its node's queue in Sched.gqs
    cdef readonly int64_t nkicks    # atomic: eventfd kicks sent to its M
    cdef readonly int64_t nparks    # owner: parks of Gs running here
    cdef readonly int64_t nidle_ns  # owner: ns its M slept in epoll_wait
    cdef readonly int64_t nrun      # owner: Gs run (started or resumed)
    cdef int64_t lathist[GMP_LAT_NB]  # owner: ready->running histogram (track_latency)
    cdef int64_t wake_ns            # owner: when its epoll_wait returned (GIL learning)
    cdef bint gil_slow_last         # owner: its last GIL wait was slow
    cdef int64_t last_probe         # owner: when it last probed the GIL (helper_declines)
    cdef readonly int64_t nprobes   # owner: GIL probes
    cdef readonly int64_t ngil_fast  # owner: GIL waits shorter than Sched.gil_slow_ns
    cdef readonly int64_t ngil_slow  # owner: GIL waits of about a switch interval
    cdef readonly int64_t ngilwait_ns  # owner: ns spent waiting for the GIL after a wake
    cdef readonly int64_t nforced   # sysmon: times sysmon forced its M awake
    cdef readonly int64_t nfds      # owner: fds registered with epfd (netpoll.pxi)
    cdef uint32_t lastpoll          # owner: schedtick of the last netpoll
    cdef readonly int64_t npollready  # owner: Gs readied by its netpoller
    cdef pacct_t lacct              # owner: latency attribution (latency.pxi)

    cdef void release(self) noexcept
    cdef bint has_work(self) noexcept


cdef class M:
    cdef readonly int id            # start: equals its P's id
    cdef Sched s                    # start: the runtime this M belongs to
    cdef P p                        # start: the P it owns for its life
    cdef object schedglet           # own thread: its scheduler greenlet (g0)
    cdef G curg                     # own thread: the G it runs, None in g0
    cdef object thread              # start: its threading.Thread (None for M0)
    cdef bint spinning              # own thread: woken to look for work, not yet found
    cdef list gfree                 # own thread: idle worker greenlets
    cdef int64_t runstart           # own thread: coarse time curg started running (sysmon)
    cdef int64_t curgid             # own thread: id of the running G, 0 in g0 (sysmon)
    cdef object exited              # start: a lock held until its thread is done
    cdef readonly long tid          # own thread: threading.get_ident()
    cdef readonly long native_tid   # own thread: the kernel's thread id
    cdef readonly object cpus       # start: CPUs it pins itself to, or None


cdef class Sched:
    cdef list allp                  # start: the Ps, by id
    cdef list ms                    # start: the Ms, by id
    cdef int nprocs                 # start: len(allp)
    cdef bint multinode             # start: the Ps span more than one NUMA node
    cdef policy_t pol               # start: the policy's knobs
    cdef object policy              # start: the gmp.policy.Policy in force
    cdef nodeq_t* gqs               # start: the global queue, one per NUMA node (runq.pxi)
    cdef int ngq                    # start: entries of gqs
    cdef int32_t nidle              # atomic: Ms in idle()
    cdef int32_t nspinning          # atomic: Ms woken to help that have not found work yet
    cdef uint32_t spread            # GIL: round-robin cursor of the spawn hand-off
    cdef int64_t nexternal          # atomic: outside wakers in flight (netpoll, blocking, external())
    cdef bint stopping              # GIL: shutdown began
    cdef int64_t stop_ns            # GIL: when shutdown began
    cdef int64_t kill_grace_ns      # start: KILL_GRACE (see Shutdown in run.pxi)
    cdef int64_t nblocking          # GIL: gmp.blocking calls in flight (part of nexternal)
    cdef bint abort_on_error        # start: an unhandled error in a G stops the run
    cdef G main                     # start: the main G
    cdef object abort_exc           # GIL: the exception that stops the run, if any
    cdef int64_t goidgen            # GIL: last G id handed out
    cdef PyObject* allg             # GIL: head of the list of live Gs
    cdef int64_t ngs                # GIL: live Gs
    cdef int64_t backoff_until      # GIL: GIL learning: no helper wake-ups before this (ns)
    cdef int64_t backoff_ns         # GIL: the current back-off period
    cdef int64_t gil_slow_ns        # start: a GIL wait this long means the others run Python
    cdef int64_t start_ns           # start: when run() began
    cdef bint sysmon_stop           # GIL: tells the sysmon thread to exit
    cdef bint nomore                # GIL: teardown began: threads not yet in must not enter
    cdef bint sysmon_entered        # sysmon: its thread got in (run() must wait for it)
    cdef object sysmon_exited       # start: a lock held until the sysmon thread is done

    cdef int init_gqs(self) except -1


cdef class PollDesc:
    cdef readonly int fd            # start of PollDesc: the fd (not owned)
    cdef uint32_t seq               # GIL: bumped on (re)registration: squashes stale events
    cdef P p                        # GIL: the P whose epoll holds fd, or None
    cdef Sched owner                # GIL: the runtime p belongs to
    cdef readonly bint closing      # GIL: close() began: every op fails with NetClosed
    cdef bint rready                # GIL: readable since the last EAGAIN (edge-triggered)
    cdef bint wready                # GIL: writable since the last EAGAIN
    cdef waitq_t rwait              # GIL: parked readers
    cdef waitq_t wwait              # GIL: parked writers
    cdef int64_t rdeadline          # GIL: read deadline, absolute ns, 0: none
    cdef int64_t wdeadline          # GIL: write deadline

    cdef int wait(self, int mode) except -1
    cdef int set_dl(self, int mode, object when) except -1

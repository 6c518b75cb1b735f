"""Worker pools: how a policy admits work and runs it when it is not a G per
task (the second dimension of a gmp.policy.Policy, its ``admission``).

A pool is what an RPC framework puts between its connection readers and its
handlers: a bounded set of long-lived worker Gs and a bounded queue, so that
under overload requests are refused or expire in the queue instead of piling
up as ever more Gs whose latency grows without bound.

Admissions (frozen, validated at construction; a bad knob is a ValueError
that names it)
    PerTask()   a fresh G per task (gmp.go): what ``go`` and ``global`` do.
                Keys and deadlines are accepted and ignored, as Go's net/http
                ignores them: nothing bounds the number of Gs.
    Tars(workers=None, capacity=10_000, keyed=False, overload=0.8,
         on_overload=None)
                TarsGo's gpool / TarsCpp's handle threads.  ``workers``
                long-lived worker Gs (None: one per P), bound round-robin to
                the Ps from birth (go_on), so they spread over the Ms and are
                never stolen.  One FIFO of ``capacity`` tasks shared by every
                worker, or with ``keyed`` one FIFO of ``capacity`` per worker
                chosen by ``hash(key) % workers`` (for an int key that is
                ``key % workers``), so tasks of one key run in submission
                order.  Above ``overload`` x capacity queued the pool is
                *overloaded*: ``stats()["overloaded"]`` counts the submits
                that saw it, ``pool.overloaded`` is the flag, and
                ``on_overload(pool)`` is called when the queue crosses the
                mark upwards.  A full queue rejects (gmp.Rejected).
    Sofa(core=None, max=None, keepalive=60.0, mode="block", shards=0,
         capacity=1024)
                MOSN's workerpool / SOFARPC's business pool.  A submit hands
                the task straight to an idle worker (an unbuffered gmp.Chan:
                it succeeds only while a worker is parked receiving).
                Workers start lazily, as MOSN's do: ``core`` is the floor
                that retirement keeps, not a number started up front.  With
                none idle and fewer than ``max`` workers a new worker starts
                with the task; a worker above ``core`` that has been idle for
                ``keepalive`` seconds retires.  At ``max``: ``mode="block"``
                waits for an idle worker (until the task's deadline, then
                gmp.QueueTimeout), ``"spawn"`` runs the task on an unpooled G
                (MOSN's ScheduleAlways), ``"reject"`` raises gmp.Rejected
                (SOFARPC's SERVER_BUSY).  ``core``/``max`` None mean one / four
                per P (max at least core).  With ``shards`` > 0 the pool is sharded instead
                (MOSN's sharded pool): one worker per shard, each with a
                bounded FIFO of ``capacity``, chosen by ``hash(key) %
                shards`` (keyless tasks round-robin), full shard -> Rejected;
                tasks of one key run in submission order.

    Neither pool steals: queued tasks are not Gs, and workers are bound to
    their P from birth.

Tasks
    ``submit`` returns a Task: ``result(timeout=None)`` waits and returns the
    value or raises the task's exception (gmp.QueueTimeout if it expired in
    the queue), ``join(timeout=None) -> bool``, ``exception``, ``done``.  A
    task's exception is kept for its submitter, as in concurrent.futures,
    and never kills the worker (BaseExceptions, such as gmp.Killed at the end
    of gmp.run, do stop it after being recorded).  Waiting on a pool's task
    from inside one of its own workers can deadlock a bounded pool, as with
    any thread pool.

Deadlines
    A deadline is a time.monotonic() value fixed at submit.  A worker that
    dequeues a task whose deadline has passed completes it with
    gmp.QueueTimeout without running it (TarsGo's queue timeout, SOFARPC's
    timeout discard): the client has given up, so running it would only
    delay the requests behind it.  A running task is not interrupted.

Counters (``pool.stats()``, a dict per pool; plain ints updated under the
GIL, which makes each ``+=`` atomic on CPython 3.11-3.13)
    submitted, completed, errors, rejected, queue_timeouts, overloaded,
    workers, peak_workers, started, retired, unpooled, queued.
"""
import dataclasses
import itertools
import time

from gmp._ext._core import Chan, Event, Mutex, go, go_on, nprocs

__all__ = ["Rejected", "QueueTimeout", "Task", "PerTask", "Tars", "Sofa"]

SOFA_MODES = ("block", "spawn", "reject")


class Rejected(Exception):
    """The pool is at capacity: a server answers busy (SERVER_BUSY, 503)."""


class QueueTimeout(TimeoutError):
    """The task's deadline passed while it waited in the queue; it never ran."""


class Task:
    """One submitted call: its outcome, for the submitter to wait on."""
    __slots__ = ("fn", "args", "kwargs", "deadline", "value", "error", "_done")

    def __init__(self, fn, args, kwargs, deadline):
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.deadline = deadline
        self.value = None
        self.error = None
        self._done = Event()

    @property
    def done(self):
        return self._done.is_set()

    @property
    def exception(self):
        return self.error

    def join(self, timeout=None):
        return self._done.wait(timeout)

    def result(self, timeout=None):
        if not self._done.wait(timeout):
            raise TimeoutError("task not done within the timeout")
        if self.error is not None:
            raise self.error
        return self.value

    def __repr__(self):
        return f"<gmp.pool.Task {getattr(self.fn, '__qualname__', self.fn)} " \
               f"{'done' if self.done else 'pending'}>"


def _positive_int(owner, knob, v, zero_ok=False):
    if isinstance(v, bool) or not isinstance(v, int) or v < (0 if zero_ok else 1):
        raise ValueError(f"{owner}: {knob} must be an int >= {0 if zero_ok else 1}, not {v!r}")


def _optional_positive_int(owner, knob, v):
    if v is not None:
        _positive_int(owner, knob, v)


class _Pool:
    """What Tars and Sofa pools share: counters and running one task."""

    def __init__(self):
        self.st = dict.fromkeys(
            ("submitted", "completed", "errors", "rejected", "queue_timeouts", "overloaded",
             "workers", "peak_workers", "started", "retired", "unpooled"), 0)
        self._next_p = itertools.count()

    def _run(self, task):
        """Runs one dequeued task in the calling worker and completes it."""
        st = self.st
        if task.deadline is not None and time.monotonic() > task.deadline:
            task.error = QueueTimeout("deadline passed while queued")
            st["queue_timeouts"] += 1
            task._done.set()
            return
        try:
            task.value = task.fn(*task.args, **task.kwargs)
        except Exception as e:  # noqa: BLE001 - it goes to the submitter (Task.result)
            task.error = e
            st["errors"] += 1
        except BaseException as e:
            task.error = e
            task._done.set()
            raise
        else:
            st["completed"] += 1
        task._done.set()

    def _start_worker(self, fn, *args):
        """A worker G bound to the next P round-robin: spread over the Ms
        and, being bound from birth, never stolen."""
        st = self.st
        st["workers"] += 1
        st["started"] += 1
        st["peak_workers"] = max(st["peak_workers"], st["workers"])
        go_on(next(self._next_p) % nprocs(), fn, *args)

    def _reject(self, why):
        self.st["rejected"] += 1
        raise Rejected(why)


class _FifoPool(_Pool):
    """Workers serving bounded FIFOs (gmp.Chan), worker i the queue
    i % len(queues): what Tars and sharded Sofa pools share."""

    def __init__(self, nqueues, capacity, workers):
        super().__init__()
        self.capacity = capacity
        self.queues = [Chan(capacity) for _ in range(nqueues)]
        for i in range(workers):
            self._start_worker(self._worker, self.queues[i % nqueues])

    def _worker(self, q):
        try:
            for task in q:
                self._run(task)
        finally:
            self.st["workers"] -= 1

    def _offer(self, q, fn, args, kwargs, deadline, full):
        task = Task(fn, args, kwargs, deadline)
        if not q.try_send(task):
            self._reject(f"{full} ({self.capacity} tasks)")
        return task

    def stats(self):
        return dict(self.st, queued=sum(len(q) for q in self.queues))


class _PerTaskPool:
    def __init__(self):
        self.st = {"submitted": 0}

    def submit(self, fn, args, kwargs, key, deadline):
        self.st["submitted"] += 1
        return go(fn, *args, **kwargs)

    def stats(self):
        return dict(self.st)


@dataclasses.dataclass(frozen=True)
class PerTask:
    """A fresh G per task (gmp.go); see the module docstring."""

    def start(self, procs):
        return _PerTaskPool()


@dataclasses.dataclass(frozen=True)
class Tars:
    """TarsGo-style pool of long-lived workers; see the module docstring."""
    workers: int = None
    capacity: int = 10_000
    keyed: bool = False
    overload: float = 0.8
    on_overload: object = None

    def __post_init__(self):
        _optional_positive_int("tars", "workers", self.workers)
        _positive_int("tars", "capacity", self.capacity)
        if isinstance(self.overload, bool) or not isinstance(self.overload, (int, float)) \
                or not 0 < self.overload <= 1:
            raise ValueError(f"tars: overload must be a fraction in (0, 1], not {self.overload!r}")
        if self.on_overload is not None and not callable(self.on_overload):
            raise ValueError(f"tars: on_overload must be callable, not {self.on_overload!r}")

    def start(self, procs):
        return TarsPool(self, self.workers or procs)


class TarsPool(_FifoPool):
    def __init__(self, cfg, workers):
        super().__init__(workers if cfg.keyed else 1, cfg.capacity, workers)
        self.cfg = cfg
        self.mark = max(1, int(cfg.overload * cfg.capacity))
        self.overloaded = False

    def submit(self, fn, args, kwargs, key, deadline):
        qs = self.queues
        q = qs[0] if len(qs) == 1 or key is None else qs[hash(key) % len(qs)]
        st = self.st
        st["submitted"] += 1
        if len(q) >= self.mark:
            st["overloaded"] += 1
            if not self.overloaded:
                self.overloaded = True
                if self.cfg.on_overload is not None:
                    self.cfg.on_overload(self)
        elif self.overloaded:
            self.overloaded = False
        return self._offer(q, fn, args, kwargs, deadline, "tars: queue full")


@dataclasses.dataclass(frozen=True)
class Sofa:
    """MOSN/SOFARPC-style elastic or sharded pool; see the module docstring."""
    core: int = None
    max: int = None
    keepalive: float = 60.0
    mode: str = "block"
    shards: int = 0
    capacity: int = 1024

    def __post_init__(self):
        _optional_positive_int("sofa", "core", self.core)
        _optional_positive_int("sofa", "max", self.max)
        _positive_int("sofa", "shards", self.shards, zero_ok=True)
        _positive_int("sofa", "capacity", self.capacity)
        if self.core is not None and self.max is not None and self.core > self.max:
            raise ValueError(f"sofa: core ({self.core}) must be <= max ({self.max})")
        if isinstance(self.keepalive, bool) or not isinstance(self.keepalive, (int, float)) \
                or self.keepalive <= 0:
            raise ValueError(f"sofa: keepalive must be a number of seconds > 0, not {self.keepalive!r}")
        if self.mode not in SOFA_MODES:
            raise ValueError(f"sofa: mode must be one of {', '.join(SOFA_MODES)}, not {self.mode!r}")

    def start(self, procs):
        if self.shards:
            return ShardedPool(self.shards, self.capacity)
        core, mx = self.core, self.max
        if mx is None:
            mx = max(core or procs, 4 * procs)
        if core is None:
            core = min(procs, mx)
        return SofaPool(core, mx, self.keepalive, self.mode)


class SofaPool(_Pool):
    def __init__(self, core, mx, keepalive, mode):
        super().__init__()
        self.core, self.max, self.keepalive, self.mode = core, mx, keepalive, mode
        self.handoff = Chan(0)
        # Only growth and retirement take the lock; the hand-off does not.
        self.grow = Mutex()

    def _worker(self, first):
        st = self.st
        retired = False
        try:
            self._run(first)
            while not retired:
                # Only a worker above core can retire, so only it waits with
                # a keep-alive timer: core workers leave no timer behind per
                # task in their P's heap.
                try:
                    task = self.handoff.recv(
                        timeout=self.keepalive if st["workers"] > self.core else None)
                except TimeoutError:
                    # Count and decide under the lock, or two idle workers
                    # could both see workers > core and retire below it.
                    with self.grow:
                        if st["workers"] > self.core:
                            st["workers"] -= 1
                            st["retired"] += 1
                            retired = True
                    continue
                self._run(task)
        finally:
            if not retired:
                st["workers"] -= 1

    def submit(self, fn, args, kwargs, key, deadline):
        st = self.st
        st["submitted"] += 1
        task = Task(fn, args, kwargs, deadline)
        if self.handoff.try_send(task):
            return task
        with self.grow:
            if st["workers"] < self.max:
                self._start_worker(self._worker, task)
                return task
        if self.mode == "spawn":
            st["unpooled"] += 1
            go(self._run, task)
        elif self.mode == "reject":
            self._reject(f"sofa: all {self.max} workers busy")
        else:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self.handoff.send(task, timeout=wait)
            except TimeoutError:
                st["queue_timeouts"] += 1
                raise QueueTimeout("deadline passed waiting for an idle worker") from None
        return task

    def stats(self):
        return dict(self.st, queued=0)


class ShardedPool(_FifoPool):
    def __init__(self, shards, capacity):
        super().__init__(shards, capacity, shards)
        self._rr = itertools.count()

    def submit(self, fn, args, kwargs, key, deadline):
        qs = self.queues
        q = qs[(next(self._rr) if key is None else hash(key)) % len(qs)]
        self.st["submitted"] += 1
        return self._offer(q, fn, args, kwargs, deadline, "sofa: shard full")

"""Core benchmarks: gmp against raw greenlet, gevent (and asyncio/uvloop).

    python bench/core.py [--quick] [--json FILE] [--repeat N] [--only CASE,...]

Every case runs every implementation in this one process; repeats are
interleaved (repeat 1 of every case and implementation, then repeat 2, ...),
each (case, implementation) is warmed up once at a tenth of its size first, and
the table reports the best and the median ns/op over the repeats.  Ratios
("x floor", "vs gevent") and the PASS/MISS verdicts are taken best to best:
interference from other processes only ever adds time, so the best of N is
the estimate of the cost and the median shows the spread; the JSON has the
ratios both ways, and each target line prints both.

What is timed (``time.perf_counter_ns`` around the hot loop only; the cyclic
GC is collected before and disabled during every sample):

* floors (raw greenlet, no scheduler at all):
  - create+switch+finish: ``greenlet(noop).switch()`` in a loop; one op =
    allocate a greenlet, switch into it, run ``noop``, finish, switch back to
    the parent, free it.  Nothing is queued and nothing is joined.
  - switch round trip: the main greenlet and one other switch back and forth
    (``g.switch(i)`` / ``main.switch(x)``); one op = one round trip = two
    switches.  Used as the floor of every case except spawn.
* gmp: ``gmp.run(main, procs=1)``; ``main`` does the work and times itself, so
  runtime start-up and shut-down are outside the samples.
* gevent: the work runs in the main greenlet (as gevent users do); blocking
  calls switch to the hub.
* asyncio / uvloop (extra peers): ``asyncio.Runner``; the coroutine times
  itself.

Cases: spawn+join of 100 k no-op Gs; ping-pong over an unbuffered channel
(gevent: ``gevent.queue.Channel``, which is a rendezvous channel in gevent 26,
and ``gevent.queue.Queue()``) and over buffered channels of capacity 1 and 16;
a ``gosched`` round robin of 10 Gs (gevent: ``sleep(0)``); ``select`` over 4
channels fed by one G (gevent has no select: no peer); a contended mutex, 4 Gs
doing lock / yield / unlock (gevent: ``gevent.lock.Semaphore`` and
``BoundedSemaphore``); and 100 k Gs sleeping on timers, each in a fresh
subprocess: wake lateness and RSS per parked G (see ``sleepers``).
"""
import argparse
import asyncio
import faulthandler
import functools
import json
import os
import sys
import time
from dataclasses import dataclass, field

from gmp.bench import harness

try:
    from . import _util
except ImportError:  # run as a script: bench/ is sys.path[0]
    import _util

now_ns = _util.now_ns

PROCS = 1          # gmp.run(main, procs=PROCS) throughout
RR_GS = 10         # Gs in the gosched round robin
MUTEX_GS = 4       # Gs contending for the mutex
SELECT_CHANS = 4
RUN_TIMEOUT_S = 120  # a single sample that takes longer than this is a hang
DECIDE = "best"      # statistic behind the table's ratios and the verdicts


def noop():
    pass


# --------------------------------------------------------------------------
# raw greenlet floors

def gl_spawn(n):
    from greenlet import greenlet
    t0 = now_ns()
    for _ in range(n):
        greenlet(noop).switch()
    return now_ns() - t0


def gl_spawn_batch(n):
    """All n greenlets alive at once (like spawn-all-then-join), then run."""
    from greenlet import greenlet
    t0 = now_ns()
    gs = [greenlet(noop) for _ in range(n)]
    for g in gs:
        g.switch()
    return now_ns() - t0


def gl_reused(n):
    """Not a floor: one long-lived greenlet runs the n no-ops one after the
    other (switch in, run, switch out).  Shows the cost of a fresh greenlet:
    on CPython 3.11 each one that starts mmaps (and at exit munmaps) its own
    16 KiB frame data-stack chunk, which a reused greenlet keeps."""
    from greenlet import getcurrent, greenlet
    main_switch = getcurrent().switch

    def worker(fn):
        while True:
            fn()
            fn = main_switch()

    w = greenlet(worker)
    sw = w.switch
    t0 = now_ns()
    for _ in range(n):
        sw(noop)
    dt = now_ns() - t0
    w.throw()
    return dt


def gl_round_trip(n):
    from greenlet import getcurrent, greenlet
    main_switch = getcurrent().switch

    def pong(x):
        while True:
            x = main_switch(x)

    g = greenlet(pong)
    g.switch(0)              # start it; it parks in main_switch
    sw = g.switch
    t0 = now_ns()
    for i in range(n):
        sw(i)
    dt = now_ns() - t0
    g.throw()                # GreenletExit: let it finish
    return dt


def gl_ring(n, k=RR_GS):
    """k greenlets in a ring, each switching straight to the next (1 switch/op)."""
    from greenlet import getcurrent, greenlet
    rounds = n // k
    main_switch = getcurrent().switch
    ring = []

    def body(i):
        nxt = ring[(i + 1) % k].switch
        main_switch()
        for _ in range(rounds):
            nxt()

    ring.extend(greenlet(body) for _ in range(k))
    for i, g in enumerate(ring):
        g.switch(i)          # park each at its start
    t0 = now_ns()
    ring[0].switch()         # returns when ring[0] has done `rounds` switches
    dt = now_ns() - t0
    for g in ring:
        if not g.dead:
            g.throw()
    return dt * n // (rounds * k)


# --------------------------------------------------------------------------
# greenlet runtimes (gmp, gevent) behind one small adapter, so that both run
# exactly the same workload code.  Hot loops bind methods to locals first.

class GeventRT:
    name = "gevent"

    def __init__(self):
        import gevent
        import gevent.lock
        import gevent.queue
        self.gevent = gevent
        self.go = gevent.spawn
        self.sleep = gevent.sleep
        self.yield_ = functools.partial(gevent.sleep, 0)
        self.join_all = gevent.joinall

    def run(self, main, *args):
        return main(*args)

    def chan(self, kind, cap):
        q = self.gevent.queue
        c = q.Channel() if kind == "channel" else q.Queue(cap or None)
        return c.put, c.get

    def lock(self, kind):
        lk = getattr(self.gevent.lock, kind)(1)
        return lk.acquire, lk.release


class GmpRT:
    name = "gmp"

    def __init__(self):
        import gmp
        missing = [a for a in ("run", "go", "Chan", "gosched", "sleep") if not hasattr(gmp, a)]
        if missing:
            raise ImportError("gmp has no " + ", ".join(missing) + " (core not merged/built?)")
        self.gmp = gmp
        self.go = gmp.go
        self.sleep = gmp.sleep
        self.yield_ = gmp.gosched

    @staticmethod
    def join_all(gs):
        for g in gs:
            g.join()

    def run(self, main, *args):
        return self.gmp.run(main, *args, procs=PROCS)

    def chan(self, kind, cap):
        c = self.gmp.Chan(cap)
        return c.send, c.recv

    def lock(self, kind):
        m = self.gmp.Mutex()
        acquire = getattr(m, "lock", None) or m.acquire
        release = getattr(m, "unlock", None) or m.release
        return acquire, release


def w_spawn(rt, n):
    go = rt.go
    t0 = now_ns()
    gs = [go(noop) for _ in range(n)]
    rt.join_all(gs)
    return now_ns() - t0


def w_pingpong(rt, n, kind, cap):
    a_put, a_get = rt.chan(kind, cap)
    b_put, b_get = rt.chan(kind, cap)

    def pong():
        for _ in range(n):
            b_put(a_get())

    g = rt.go(pong)
    rt.yield_()              # pong starts and parks in a_get
    t0 = now_ns()
    for i in range(n):
        a_put(i)
        b_get()
    dt = now_ns() - t0
    rt.join_all([g])
    return dt


def w_round_robin(rt, n, k=RR_GS):
    per = n // k
    yield_ = rt.yield_

    def spinner():
        for _ in range(per):
            yield_()

    t0 = now_ns()
    gs = [rt.go(spinner) for _ in range(k)]
    rt.join_all(gs)
    return (now_ns() - t0) * n // (per * k)


def w_mutex(rt, n, kind, k=MUTEX_GS):
    per = n // k
    acquire, release = rt.lock(kind)
    yield_ = rt.yield_

    def worker():
        for _ in range(per):
            acquire()
            yield_()
            release()

    t0 = now_ns()
    gs = [rt.go(worker) for _ in range(k)]
    rt.join_all(gs)
    return (now_ns() - t0) * n // (per * k)


def w_select(rt, n, cap):
    gmp = rt.gmp
    select, Recv = gmp.select, gmp.Recv
    c0, c1, c2, c3 = cs = [gmp.Chan(cap) for _ in range(SELECT_CHANS)]
    sends = [c.send for c in cs]

    def feeder():
        for i in range(n):
            sends[i & 3](i)

    g = rt.go(feeder)
    t0 = now_ns()
    for _ in range(n):
        select(Recv(c0), Recv(c1), Recv(c2), Recv(c3))
    dt = now_ns() - t0
    rt.join_all([g])
    return dt


def on_rt(rt_cls, workload, *args):
    """Build ``fn(n) -> ns`` running ``workload(rt, n, *args)`` inside rt."""
    def fn(n):
        rt = _rt(rt_cls)
        return rt.run(workload, rt, n, *args)
    return fn


_RTS = {}


def _rt(cls):
    if cls not in _RTS:
        _RTS[cls] = cls()
    return _RTS[cls]


# --------------------------------------------------------------------------
# asyncio / uvloop

async def a_noop():
    pass


async def a_spawn(n):
    create_task = asyncio.get_running_loop().create_task
    t0 = now_ns()
    tasks = [create_task(a_noop()) for _ in range(n)]
    await asyncio.gather(*tasks)
    return now_ns() - t0


async def a_pingpong(n, cap):
    a, b = asyncio.Queue(cap), asyncio.Queue(cap)

    async def pong():
        get, put = a.get, b.put
        for _ in range(n):
            await put(await get())

    task = asyncio.get_running_loop().create_task(pong())
    await asyncio.sleep(0)
    put, get = a.put, b.get
    t0 = now_ns()
    for i in range(n):
        await put(i)
        await get()
    dt = now_ns() - t0
    await task
    return dt


async def a_round_robin(n, k=RR_GS):
    per = n // k
    sleep = asyncio.sleep

    async def spinner():
        for _ in range(per):
            await sleep(0)

    t0 = now_ns()
    await asyncio.gather(*(spinner() for _ in range(k)))
    return (now_ns() - t0) * n // (per * k)


async def a_mutex(n, k=MUTEX_GS):
    per = n // k
    lock = asyncio.Lock()
    sleep = asyncio.sleep

    async def worker():
        for _ in range(per):
            async with lock:
                await sleep(0)

    t0 = now_ns()
    await asyncio.gather(*(worker() for _ in range(k)))
    return (now_ns() - t0) * n // (per * k)


def _loop_factory(family):
    if family == "uvloop":
        import uvloop
        return uvloop.new_event_loop
    return None


def on_aio(family, coro_fn, *args):
    def fn(n):
        with asyncio.Runner(loop_factory=_loop_factory(family)) as r:
            return r.run(coro_fn(n, *args))
    return fn


# --------------------------------------------------------------------------
# the cases

@dataclass
class Impl:
    family: str          # greenlet | gmp | gevent | asyncio | uvloop
    label: str
    fn: object           # fn(n) -> elapsed ns for n ops
    role: str = ""       # "floor" (this case's floor) | "ref" (the gevent peer)
    samples: list = field(default_factory=list)
    error: str = ""


@dataclass
class Case:
    key: str
    title: str
    n: int
    n_quick: int
    floor: str           # "spawn" | "switch": which raw-greenlet floor
    impls: list
    note: str = ""


def aio_impls(label, coro_fn, *args):
    return [Impl(fam, f"{fam} {label}", on_aio(fam, coro_fn, *args)) for fam in ("asyncio", "uvloop")]


def build_cases():
    def pp(cap):
        impls = [Impl("gmp", f"gmp Chan({cap})", on_rt(GmpRT, w_pingpong, "chan", cap))]
        if cap == 0:
            impls.append(Impl("gevent", "gevent queue.Channel()", on_rt(GeventRT, w_pingpong, "channel", 0), "ref"))
            impls.append(Impl("gevent", "gevent queue.Queue()", on_rt(GeventRT, w_pingpong, "queue", 0)))
            return impls + aio_impls("Queue()", a_pingpong, 0)
        impls.append(Impl("gevent", f"gevent queue.Queue({cap})", on_rt(GeventRT, w_pingpong, "queue", cap), "ref"))
        return impls + aio_impls(f"Queue({cap})", a_pingpong, cap)

    return [
        Case("spawn", "spawn+join of N no-op Gs", 100_000, 20_000, "spawn", [
            Impl("greenlet", "greenlet(noop).switch() loop", gl_spawn, "floor"),
            Impl("greenlet", "greenlet: create N, then switch each", gl_spawn_batch),
            Impl("greenlet", "greenlet: 1 reused worker runs N noops", gl_reused),
            Impl("gmp", "gmp.go + G.join", on_rt(GmpRT, w_spawn)),
            Impl("gevent", "gevent.spawn + joinall", on_rt(GeventRT, w_spawn), "ref"),
            *aio_impls("create_task + gather", a_spawn),
        ]),
        Case("pingpong0", "ping-pong, unbuffered (op = round trip)", 50_000, 10_000, "switch", [
            Impl("greenlet", "greenlet switch round trip", gl_round_trip, "floor"),
            *pp(0),
        ]),
        Case("pingpong1", "ping-pong, buffered cap 1 (op = round trip)", 50_000, 10_000, "switch", pp(1)),
        Case("pingpong16", "ping-pong, buffered cap 16 (op = round trip)", 50_000, 10_000, "switch", pp(16)),
        Case("gosched", f"round robin, {RR_GS} Gs yielding (op = 1 yield)", 100_000, 20_000, "switch", [
            Impl("greenlet", f"greenlet ring of {RR_GS} (1 switch/op)", gl_ring),
            Impl("gmp", "gmp.gosched()", on_rt(GmpRT, w_round_robin)),
            Impl("gevent", "gevent.sleep(0)", on_rt(GeventRT, w_round_robin), "ref"),
            *aio_impls("sleep(0)", a_round_robin),
        ]),
        Case("select4", "select over 4 Chan(0), 1 feeder G (op = 1 select)", 50_000, 10_000, "switch", [
            Impl("gmp", "gmp.select(Recv x4)", on_rt(GmpRT, w_select, 0)),
        ], note="gevent has no select: no peer"),
        Case("select4b", "select over 4 Chan(16), 1 feeder G (op = 1 select)", 50_000, 10_000, "switch", [
            Impl("gmp", "gmp.select(Recv x4)", on_rt(GmpRT, w_select, 16)),
        ], note="gevent has no select: no peer"),
        Case("mutex", f"contended mutex, {MUTEX_GS} Gs lock/yield/unlock (op = 1 lock+unlock)",
             50_000, 10_000, "switch", [
                 Impl("gmp", "gmp.Mutex", on_rt(GmpRT, w_mutex, "Mutex")),
                 Impl("gevent", "gevent.lock.Semaphore", on_rt(GeventRT, w_mutex, "Semaphore"), "ref"),
                 Impl("gevent", "gevent.lock.BoundedSemaphore", on_rt(GeventRT, w_mutex, "BoundedSemaphore")),
                 *aio_impls("Lock + sleep(0)", a_mutex),
             ]),
    ]


FAMILY_CHECK = {
    "gmp": lambda: _rt(GmpRT),
    "gevent": lambda: _rt(GeventRT),
    "uvloop": lambda: __import__("uvloop"),
}


def family_status():
    """{family: "" if usable else why not}."""
    out = {}
    for fam in ("greenlet", "gmp", "gevent", "asyncio", "uvloop"):
        try:
            FAMILY_CHECK.get(fam, lambda: None)()
            out[fam] = ""
        except Exception as e:  # noqa: BLE001 - a peer that cannot run is reported as unavailable
            out[fam] = f"{type(e).__name__}: {e}"
    return out


def run_one(impl, n):
    """One sample in ns/op; records the error and disables impl on failure."""
    faulthandler.dump_traceback_later(RUN_TIMEOUT_S, exit=True)
    try:
        with _util.gc_off():
            ns = impl.fn(n)
        return ns / n
    except Exception as e:  # noqa: BLE001 - one failing implementation must not end the whole run
        impl.error = f"{type(e).__name__}: {e}"
        _util.progress(f"  ERROR {impl.label}: {impl.error}")
        return None
    finally:
        faulthandler.cancel_dump_traceback_later()


def run_cases(cases, repeat, quick):
    status = family_status()
    for case in cases:
        for impl in case.impls:
            if status[impl.family]:
                impl.error = "unavailable: " + status[impl.family]
    live = [(c, i) for c in cases for i in c.impls if not i.error]
    _util.progress(f"warm-up: {len(live)} (case, impl) pairs")
    for case, impl in live:
        n = case.n_quick if quick else case.n
        run_one(impl, max(n // 10, 100))
    for r in range(repeat):
        _util.progress(f"repeat {r + 1}/{repeat}")
        for case in cases:
            n = case.n_quick if quick else case.n
            for impl in case.impls:
                if not impl.error:
                    x = run_one(impl, n)
                    if x is not None:
                        impl.samples.append(x)


# --------------------------------------------------------------------------
# sleepers: 100 k Gs parked on timers; every (impl, measurement) runs in a
# fresh subprocess so that RSS deltas are not blurred by earlier cases.
#
# rss:  n Gs each sleep(3600); main polls until all n have parked, samples RSS
#       (psutil) and the child exits at once.  RSS per parked G = (RSS with all
#       parked - RSS before spawning) / n; it includes the G/greenlet objects,
#       their saved stacks and the timer entries.
# wake: n Gs each sleep(d), d spread evenly over [0.05, 0.1) s, measured from
#       the moment the G starts; lateness = actual wake - (start + d).

SLEEP_LO, SLEEP_SPAN = 0.05, 0.05
PARK_S = 3600.0
SLEEPER_IMPLS = ["greenlet", "gmp", "gevent", "asyncio", "uvloop"]


def _durations(n):
    # deterministic, evenly spread over [LO, LO + SPAN) (golden-ratio sequence)
    return [SLEEP_LO + SLEEP_SPAN * ((i * 0.6180339887498949) % 1.0) for i in range(n)]


def _lateness_summary(late):
    s = sorted(late)
    n = len(s)
    return {"p50_ms": s[n // 2] * 1e3, "p99_ms": s[min(n - 1, (n * 99) // 100)] * 1e3,
            "max_ms": s[-1] * 1e3}


def w_park(rt, n):
    st = [0]
    sleep = rt.sleep

    def sleeper():
        st[0] += 1
        sleep(PARK_S)

    rss0 = _util.rss_bytes()
    _alive = [rt.go(sleeper) for _ in range(n)]  # held: the Gs must stay alive while RSS is read
    while st[0] < n:
        sleep(0.001)
    _emit_park(rss0, _util.rss_bytes(), n)


def w_wake(rt, n):
    perf = time.perf_counter
    durs = _durations(n)
    late = [0.0] * n
    sleep = rt.sleep

    def sleeper(i):
        d = durs[i]
        t = perf()
        sleep(d)
        late[i] = perf() - t - d

    t0 = perf()
    gs = [rt.go(sleeper, i) for i in range(n)]
    t1 = perf()
    rt.join_all(gs)
    return {"spawn_ns_per_g": (t1 - t0) * 1e9 / n, "total_s": perf() - t0, **_lateness_summary(late)}


def gl_park(n):
    """Floor: n raw greenlets, each started and parked (no timer, no scheduler)."""
    from greenlet import getcurrent, greenlet
    main_switch = getcurrent().switch

    def body():
        main_switch()

    rss0 = _util.rss_bytes()
    gs = [greenlet(body) for _ in range(n)]
    for g in gs:
        g.switch()
    _emit_park(rss0, _util.rss_bytes(), n)


async def a_park(n):
    st = [0]
    sleep = asyncio.sleep

    async def sleeper():
        st[0] += 1
        await sleep(PARK_S)

    rss0 = _util.rss_bytes()
    create_task = asyncio.get_running_loop().create_task
    _alive = [create_task(sleeper()) for _ in range(n)]  # held, as above
    while st[0] < n:
        await sleep(0.001)
    _emit_park(rss0, _util.rss_bytes(), n)


async def a_wake(n):
    perf = time.perf_counter
    durs = _durations(n)
    late = [0.0] * n
    sleep = asyncio.sleep

    async def sleeper(i):
        d = durs[i]
        t = perf()
        await sleep(d)
        late[i] = perf() - t - d

    t0 = perf()
    create_task = asyncio.get_running_loop().create_task
    tasks = [create_task(sleeper(i)) for i in range(n)]
    t1 = perf()
    await asyncio.gather(*tasks)
    return {"spawn_ns_per_g": (t1 - t0) * 1e9 / n, "total_s": perf() - t0, **_lateness_summary(late)}


def _emit_park(rss0, rss1, n):
    """End of an rss child: report with every G still parked, then leave
    through os._exit so that no runtime shutdown (cancelling n Gs) happens."""
    print(json.dumps({"n": n, "rss_before": rss0, "rss_parked": rss1,
                      "rss_per_parked_g": (rss1 - rss0) / n}), flush=True)
    os._exit(0)


def sleepers_child(impl, mode, n):
    """Runs in the fresh subprocess; prints one JSON line on stdout."""
    import gc
    if impl in ("gmp", "gevent"):
        rt = _rt(GmpRT if impl == "gmp" else GeventRT)
        work = w_park if mode == "rss" else w_wake

        def run(k):
            return rt.run(work, rt, k)
    elif impl == "greenlet":
        run = gl_park
    else:
        run = on_aio(impl, a_park if mode == "rss" else a_wake)
    if mode == "wake":
        run(1000)  # warm up once; the rss child measures from a cold start
    gc.collect()
    gc.disable()
    res = run(n)  # rss mode never returns (_emit_park)
    res["n"] = n
    print(json.dumps(res), flush=True)


def run_sleepers(n, status):
    # gmp.bench.harness: the child imports the gmp this process measures,
    # and this folder for _util (its -P leaves the script's folder out).
    env = harness.child_env(extra_paths=[os.path.dirname(os.path.abspath(__file__))])
    out = {}
    for impl in SLEEPER_IMPLS:
        if status[impl]:
            out[impl] = {"error": "unavailable: " + status[impl]}
            continue
        out[impl] = {}
        for mode in ("rss",) if impl == "greenlet" else ("rss", "wake"):
            _util.progress(f"sleepers: {impl} {mode}, {n:,} Gs (fresh subprocess)")
            stdout, err = harness.run_child([os.path.abspath(__file__), "--_sleepers", impl, mode, str(n),
                                             "--procs", str(PROCS)], RUN_TIMEOUT_S, env=env)
            lines = stdout.strip().splitlines()
            if err or not lines:
                err = f"{mode}: {err or 'no result'}"
                out[impl]["error"] = err
                _util.progress(f"  ERROR {impl}: {err}")
                break
            out[impl].update(json.loads(lines[-1]))
    return out


# --------------------------------------------------------------------------
# report

def _find(cases, key, pred):
    for c in cases:
        if c.key == key:
            for i in c.impls:
                if pred(i) and i.samples:
                    return i
    return None


def floors(cases):
    return {"spawn": _find(cases, "spawn", lambda i: i.role == "floor"),
            "switch": _find(cases, "pingpong0", lambda i: i.role == "floor")}


def _ratio(a, b, stat):
    if a is None or b is None or not a.samples or not b.samples:
        return None
    return _util.stats(a.samples)[stat] / _util.stats(b.samples)[stat]


def results_rows(cases):
    fl = floors(cases)
    rows, recs = [], []
    for case in cases:
        ref = next((i for i in case.impls if i.role == "ref" and i.samples), None)
        floor = fl[case.floor]
        rows.append(f"{case.key}: {case.title}" + (f"   [{case.note}]" if case.note else ""))
        for impl in case.impls:
            tag = " (floor)" if impl.role == "floor" else " (*)" if impl.role == "ref" else ""
            rec = {"case": case.key, "impl": impl.label, "family": impl.family, "role": impl.role}
            if impl.error or not impl.samples:
                rows.append(("", impl.label + tag, "-", "-", "-", "-",
                             (impl.error or "no samples")[:70]))
                rec["error"] = impl.error or "no samples"
                recs.append(rec)
                continue
            s = _util.stats(impl.samples)
            xf = {st: _ratio(impl, floor, st) for st in ("best", "median")}
            vg = {st: _ratio(ref, impl, st) for st in ("best", "median")}
            rows.append(("", impl.label + tag, _util.fmt_ns(s["best"]), _util.fmt_ns(s["median"]),
                         _util.fmt_ratio(xf[DECIDE]), _util.fmt_ratio(vg[DECIDE]), ""))
            rec.update(ns_per_op=s, x_floor=xf, x_faster_than_gevent_ref=vg)
            recs.append(rec)
    return rows, recs


def sleeper_rows(sl):
    label = {"greenlet": "greenlet parked, no timer (floor)", "gmp": "gmp.go + gmp.sleep",
             "gevent": "gevent.spawn + gevent.sleep", "asyncio": "asyncio task + sleep",
             "uvloop": "uvloop task + sleep"}
    rows = []
    for impl, r in sl.items():
        def f(key, fmt, r=r):
            return fmt.format(r[key]) if key in r else "-"
        rows.append((label[impl], f("rss_per_parked_g", "{:,.0f}"), f("spawn_ns_per_g", "{:,.0f}"),
                     f("p50_ms", "{:.1f}"), f("p99_ms", "{:.1f}"), f("max_ms", "{:.1f}"),
                     r.get("error", "")[:70]))
    return rows


RSS_TARGET = 4096


def targets(cases, sl):
    """PASS / MISS per target (the DECIDE figure, best of N, decides; n/a = not measured)."""
    fl = floors(cases)
    gmp_spawn = _find(cases, "spawn", lambda i: i.family == "gmp")
    gev_spawn = _find(cases, "spawn", lambda i: i.role == "ref")
    gmp_pp = _find(cases, "pingpong0", lambda i: i.family == "gmp")
    gev_q = _find(cases, "pingpong0", lambda i: i.label == "gevent queue.Queue()")
    gev_ch = _find(cases, "pingpong0", lambda i: i.label == "gevent queue.Channel()")
    out = []

    def verdict(name, value, ok, detail):
        out.append({"target": name, "verdict": harness.verdict(None if value is None else ok),
                    "value": value, "detail": detail})

    def ratio(name, a, b, op, limit, what):
        med, best = _ratio(a, b, "median"), _ratio(a, b, "best")
        v = best if DECIDE == "best" else med
        ok = v is not None and (v <= limit if op == "<=" else v >= limit)
        detail = "not measured" if v is None else \
            f"{what} = {best:.2f}x best ({med:.2f}x median); target {op} {limit}x"
        verdict(name, v, ok, detail)

    ratio("spawn+join <= 1.5 x raw greenlet create+switch+finish", gmp_spawn, fl["spawn"], "<=", 1.5,
          "gmp / floor")
    ratio("spawn+join >= 10 x faster than gevent.spawn + joinall", gev_spawn, gmp_spawn, ">=", 10,
          "gevent / gmp")
    ratio("unbuffered ping-pong <= 2.5 x raw greenlet switch round trip", gmp_pp, fl["switch"], "<=", 2.5,
          "gmp Chan(0) / floor")
    ratio("unbuffered ping-pong >= 4 x faster than gevent.queue.Queue", gev_q, gmp_pp, ">=", 4,
          "gevent Queue() / gmp Chan(0)")
    g = sl.get("gmp", {})
    per = g.get("rss_per_parked_g")
    n = g.get("n", 0)
    detail = f"{per:,.0f} B per parked G at {n:,} Gs; target <= {RSS_TARGET} B at 100,000" if per is not None \
        else "not measured: " + g.get("error", "skipped")
    if per is not None and n < 100_000:
        detail += " (measured below 100 k: rerun with --sleepers-n 100000)"
    verdict("<= 4 KiB RSS per parked G at 100 k Gs", per, per is not None and per <= RSS_TARGET, detail)

    info = []
    r = _ratio(gev_ch, gmp_pp, DECIDE)
    if r:
        info.append(f"gmp Chan(0) is {r:.2f}x faster than gevent queue.Channel() (the unbuffered analog)")
    fl_rss = sl.get("greenlet", {}).get("rss_per_parked_g")
    if fl_rss:
        info.append(f"a bare parked greenlet costs {fl_rss:,.0f} B RSS here (the floor under any greenlet runtime)")
    return out, info


def main(argv=None):
    global PROCS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller N and fewer repeats (~20 s)")
    ap.add_argument("--repeat", type=int, default=None, help="interleaved repeats (default 5, quick 2)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--procs", type=int, default=PROCS, help="gmp.run(procs=...) (default 1)")
    ap.add_argument("--only", metavar="CASES", help="comma-separated case keys (and/or 'sleepers')")
    ap.add_argument("--sleepers-n", type=int, default=None, help="Gs in the sleepers case (100000; quick 20000)")
    harness.add_strict_arg(ap)
    ap.add_argument("--_sleepers", nargs=3, metavar=("IMPL", "MODE", "N"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    PROCS = a.procs
    if a._sleepers:
        sleepers_child(a._sleepers[0], a._sleepers[1], int(a._sleepers[2]))
        return 0
    repeat = a.repeat or (2 if a.quick else 5)
    n_sleepers = a.sleepers_n or (20_000 if a.quick else 100_000)
    only = set(a.only.split(",")) if a.only else None
    cases = [c for c in build_cases() if only is None or c.key in only]
    run_cases(cases, repeat, a.quick)
    status = family_status()
    sl = run_sleepers(n_sleepers, status) if only is None or "sleepers" in only else {}

    env = _util.environment()
    print(f"gmp core benchmarks: python {env['python']}, greenlet {env['greenlet']}, gevent {env['gevent']}, "
          f"uvloop {env['uvloop']}; tree {env['commit']}; {env['cpus']} CPUs; gmp procs={PROCS}")
    print(f"{repeat} interleaved repeats{' (--quick)' if a.quick else ''}, GC disabled in timed sections; "
          f"x floor, vs gevent and verdicts use the {DECIDE} of N; (*) = the gevent peer 'vs gevent' compares to")
    print("floors: spawn = greenlet(noop).switch() loop (create+switch+finish); "
          "others = greenlet switch round trip (2 switches)\n")
    rows, recs = results_rows(cases)
    print(_util.table(("case", "impl", "best ns/op", "median ns/op", "x floor", "vs gevent", "note"),
                      rows, right={2, 3, 4, 5}))
    if sl:
        print(f"\nsleepers: {n_sleepers:,} Gs, fresh subprocess per impl and measurement.  RSS: all Gs parked in "
              "sleep(3600), (RSS parked - RSS before spawning) / N.  wake: each G sleeps "
              f"{SLEEP_LO * 1e3:.0f}..{(SLEEP_LO + SLEEP_SPAN) * 1e3:.0f} ms from its own start; "
              "lateness = actual wake - due")
        print(_util.table(("impl", "RSS B/parked G", "spawn ns/G", "late p50 ms", "late p99 ms", "late max ms",
                           "note"),
                          sleeper_rows(sl), right={1, 2, 3, 4, 5}))
    tg, info = targets(cases, sl)
    print("\ntargets:")
    for t in tg:
        print(f"  {t['verdict']:4}  {t['target']}: {t['detail']}")
    for line in info:
        print(f"  info  {line}")
    if a.json:
        _util.write_json(a.json, {"env": env, "repeat": repeat, "quick": a.quick, "procs": PROCS,
                                  "gc": "disabled during timed sections", "results": recs,
                                  "sleepers": sl, "targets": tg})
    errors = [impl for impl, r in sl.items() if "error" in r and not r["error"].startswith("unavailable")]
    return harness.exit_code(errors, [t["verdict"] for t in tg], a.strict)


if __name__ == "__main__":
    sys.exit(main())

"""``gmp bench steal-vs-global``: the same workloads under each scheduling
policy, on 1 and N Ms, compared in one table.

Every (workload, runtime, policy, procs) cell runs in a fresh subprocess
(``python -m gmp.bench.steal_vs_global --child JSON``) that prints one JSON
result on stdout, so no run inherits another's heap, threads or caches.  The
cells are run round-robin ``--repeat`` times (interleaved, so that noise from
other processes on the machine spreads over all cells) and the median of each
figure is reported.

Figures per cell
    throughput   the workload's unit per second (tasks, messages, MiB, requests)
    x global     throughput relative to policy ``global`` on the same procs
    lat p50/p99/p999
                 scheduling latency, ready->running: from the core's
                 histograms (gmp._ext._core.track_latency), stamped when a G
                 is spawned or readied and when it starts or resumes running
                 (4 buckets per power of two, so +-12 %).  For gevent, the
                 start delay of each request in the blocking workloads.
    steals       Gs taken by stealing (sum over Ps, from stats())
    gpull        Gs taken from the global queue
    balance      share of G runs per P, in percent
    cpu s        process CPU time (user+system, psutil) during the workload
    >10ms        blocking workloads: share of short requests that started
                 more than 10 ms after they arrived

Workloads
    fanout_skewed    one producer G spawns every task (64 KiB sha256, which
                     drops the GIL, and a little Python) in bursts of 128:
                     the other Ms must steal (go) or pull (global)
    fanout_balanced  one producer G per P spawns its share
    pipeline         per P a chain producer -> stage -> sink over buffered
                     channels
    gil_release      Gs hashing 1 MiB buffers (hashlib drops the GIL)
    pure_python      Gs running a pure-Python loop (the GIL serialises them)
    blocking         requests arrive from a thread every 1 ms (inject(), as
                     from the network); every 200th makes a 50 ms call gmp
                     cannot see (time.sleep, unpatched); measured: how many
                     short requests are delayed > 10 ms.  Also run on gevent.
    blocking_coop    the same with the 50 ms call made cooperatively
                     (gmp.sleep): no short request should be delayed.
    rpc_*            an RPC server under load (gmp/bench/rpc.py): capacity,
                     then Poisson arrivals at 50/90/120 % of it; their own
                     table.  Pooled policies (tars, sofa) only change how
                     submitted work runs, so they run only these workloads.

The targets of issue 4 are checked below the table (ratios within this run).
"""
import argparse
import itertools
import json
import os
import statistics
import sys
import time

from gmp.bench import harness, rpc

POLICIES = ("go", "global", "tars", "sofa")   # the default; any registered policy may be named
WORKLOADS = ("fanout_skewed", "fanout_balanced", "pipeline", "gil_release",
             "pure_python", "blocking", "blocking_coop") + rpc.WORKLOADS
QUICK_RPC = ("rpc_short",)        # --quick runs only this RPC workload, at procs N
GEVENT_WORKLOADS = ("blocking",)


# --- workloads (run inside the child) ---------------------------------------

_BUF64K = b"\x5a" * (64 << 10)
_BUF1M = b"\xa5" * (1 << 20)


def _mixed_task():
    import hashlib
    hashlib.sha256(_BUF64K).digest()
    s = 0
    for i in range(50):
        s += i
    return s


def _spawn_wait(gmp, n, fn, burst=0):
    """Spawn n Gs running fn and wait for them; with burst, yield after
    every `burst` spawns (a producer that keeps producing)."""
    wg = gmp.WaitGroup()
    wg.add(n)

    def task():
        try:
            fn()
        finally:
            wg.done()
    for i in range(n):
        gmp.go(task)
        if burst and i % burst == burst - 1:
            gmp.gosched()
    wg.wait()


def wl_fanout_skewed(gmp, scale, procs):
    n = int(8000 * scale)
    _spawn_wait(gmp, n, _mixed_task, burst=128)
    return n, "tasks"


def wl_fanout_balanced(gmp, scale, procs):
    n = int(8000 * scale)
    share = n // procs
    wg = gmp.WaitGroup()
    wg.add(procs)

    def producer():
        try:
            _spawn_wait(gmp, share, _mixed_task, burst=128)
        finally:
            wg.done()
    for _ in range(procs):
        gmp.go(producer)
    wg.wait()
    return share * procs, "tasks"


def wl_pipeline(gmp, scale, procs):
    n = int(200000 * scale)
    wg = gmp.WaitGroup()
    wg.add(procs)

    def chain():
        a = gmp.Chan(128)
        b = gmp.Chan(128)

        def producer():
            for i in range(n):
                a.send(i)
            a.close()

        def stage():
            for v in a:
                b.send(v * 2)
            b.close()
        gmp.go(producer)
        gmp.go(stage)
        total = 0
        for v in b:
            total += v
        wg.done()
        return total
    for _ in range(procs):
        gmp.go(chain)
    wg.wait()
    return n * procs, "msgs"


def wl_gil_release(gmp, scale, procs):
    import hashlib
    n = int(64 * scale)
    k = 8

    def task():
        for _ in range(k):
            hashlib.sha256(_BUF1M).digest()
    _spawn_wait(gmp, n, task)
    return n * k, "MiB"


def wl_pure_python(gmp, scale, procs):
    n = int(400 * scale)

    def task():
        s = 0
        for i in range(6000):
            s += i * i % 7
        return s
    _spawn_wait(gmp, n, task)
    return n, "tasks"


def _blocking_common(scale, spawn, sleep_block, wait_done, on_start, on_end, done_set):
    """Open-loop load: request i arrives at t0 + i ms (injected from a
    thread); every 200th blocks 50 ms.  Returns (n, delays of short ones)."""
    import threading
    n = max(200, int(1000 * scale))
    interval = 0.001
    delays = []
    finished = itertools.count(1)

    def req(i, target):
        start = time.perf_counter()
        if i % 200 == 100:
            sleep_block(0.05)
        else:
            delays.append(start - target)
            s = 0
            for j in range(100):
                s += j
        if next(finished) == n:
            done_set()

    def injector():
        on_start()
        try:
            t0 = time.perf_counter() + 0.005
            for i in range(n):
                target = t0 + i * interval
                d = target - time.perf_counter()
                if d > 0:
                    time.sleep(d)
                spawn(req, i, target)
        finally:
            on_end()
    th = threading.Thread(target=injector, daemon=True)
    th.start()
    wait_done()
    return n, delays


def _gmp_blocking(gmp, scale, coop):
    from gmp._ext import _core
    done = gmp.Event()
    n, delays = _blocking_common(
        scale, _core.inject, gmp.sleep if coop else time.sleep, done.wait,
        lambda: None, lambda: _core.external(-1), done.set)
    return n, delays


def wl_blocking(gmp, scale, procs, coop=False):
    from gmp._ext import _core
    _core.external(1)        # the injector thread; it drops this when done
    n, delays = _gmp_blocking(gmp, scale, coop)
    return n, "reqs", delays


def wl_blocking_coop(gmp, scale, procs):
    return wl_blocking(gmp, scale, procs, coop=True)


# --- the child ---------------------------------------------------------------

def _percentiles_from_hist(hist):
    total = sum(c for _, c in hist)
    out = {}
    if not total:
        return out
    for name, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999)):
        want = q * total
        acc = 0
        for v, c in hist:
            acc += c
            if acc >= want:
                out[name] = v / 1e3          # us
                break
    return out


def _percentiles(values_s):
    if not values_s:
        return {}
    v = sorted(values_s)
    n = len(v)
    return {name: v[min(n - 1, int(q * n))] * 1e6
            for name, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999))}


def _delay_figures(res, delays):
    res["delayed_share"] = sum(1 for d in delays if d > 0.010) / max(1, len(delays))
    res["max_delay_ms"] = max(delays) * 1e3 if delays else 0.0


def child(cfg):
    if cfg["workload"] in rpc.WORKLOADS:
        return rpc.child(cfg)
    import psutil
    proc = psutil.Process()
    name = cfg["workload"]
    scale = cfg["scale"]
    procs = cfg["procs"]
    res = {"workload": name, "runtime": cfg["runtime"], "policy": cfg["policy"],
           "procs": procs}

    def cpu():
        t = proc.cpu_times()
        return t.user + t.system

    if cfg["runtime"] == "gevent":
        import gevent
        import gevent.event
        hub = gevent.get_hub()
        done = gevent.event.Event()
        # The thread-safe callbacks' watcher does not keep the loop alive.
        keepalive = gevent.spawn(gevent.sleep, 3600)
        c0, t0 = cpu(), time.perf_counter()
        n, delays = _blocking_common(
            scale, lambda fn, *a: hub.loop.run_callback_threadsafe(gevent.spawn, fn, *a),
            time.sleep, done.wait, lambda: None, lambda: None, done.set)
        dt = time.perf_counter() - t0
        keepalive.kill()
        res.update(ops=n, unit="reqs", seconds=dt, throughput=n / dt, cpu_s=cpu() - c0,
                   lat=_percentiles(delays))
        _delay_figures(res, delays)
        return res

    import gmp
    from gmp._ext import _core
    fn = globals()["wl_" + name]

    def main():
        _core.track_latency(True)
        c0, t0 = cpu(), time.perf_counter()
        out = fn(gmp, scale, procs)
        dt = time.perf_counter() - t0
        st = _core.stats()
        res.update(ops=out[0], unit=out[1], seconds=dt, throughput=out[0] / dt,
                   cpu_s=cpu() - c0, lat=_percentiles_from_hist(_core.latency_hist()))
        if len(out) > 2:
            _delay_figures(res, out[2])
        ps = st["ps"]
        runs = [p["runs"] for p in ps]
        tot = sum(runs) or 1
        res.update(steals=sum(p["stolen"] for p in ps),
                   steal_attempts=sum(p["steal_attempts"] for p in ps),
                   global_pulls=sum(p["global_pulls"] for p in ps),
                   balance=[round(100.0 * r / tot) for r in runs],
                   gil_fast=sum(p["gil_fast"] for p in ps),
                   gil_slow=sum(p["gil_slow"] for p in ps),
                   forced_wakes=sum(p["forced_wakes"] for p in ps),
                   gil_probes=sum(p["gil_probes"] for p in ps))
    gmp.run(main, procs=procs, policy=cfg["policy"])
    return res


# --- the parent ----------------------------------------------------------------

def _cells(workloads, policies, procs_list, with_gevent, quick=False):
    from gmp.policy import PerTask, get
    cells = []
    for w in workloads:
        is_rpc = w in rpc.WORKLOADS
        for procs in procs_list[-1:] if is_rpc and quick else procs_list:
            for pol in policies:
                if not is_rpc and not isinstance(get(pol).admission, PerTask):
                    continue
                cells.append({"workload": w, "runtime": "gmp", "policy": pol, "procs": procs,
                              **({"quick": quick} if is_rpc else {})})
        if with_gevent and w in GEVENT_WORKLOADS:
            cells.append({"workload": w, "runtime": "gevent", "policy": "-", "procs": 1})
    return cells


def _run_cell(cell, scale, timeout):
    cfg = dict(cell, scale=scale)
    env = harness.child_env(drop=("GMPPOLICY", "GMPMAXPROCS"))
    out, err = harness.run_child(["-m", "gmp.bench.steal_vs_global", "--child", json.dumps(cfg)],
                                 timeout, env=env)
    if err:
        return {"error": err}
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "no JSON result: " + (out or "")[-200:]}


def _progress(done, total, t0, label, stream=sys.stderr):
    if not stream.isatty():
        return
    width = 30
    fill = int(width * done / max(1, total))
    el = time.monotonic() - t0
    eta = el / done * (total - done) if done else 0
    stream.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} "
                 f"{el:5.1f}s eta {eta:4.0f}s {label[:40]:<40}")
    if done == total:
        stream.write("\n")
    stream.flush()


def _median_result(results):
    ok = [r for r in results if "error" not in r]
    if not ok:
        return results[-1]
    ok.sort(key=lambda r: r["throughput"])
    med = dict(ok[len(ok) // 2])
    med["runs"] = len(ok)
    med["throughput_all"] = [r["throughput"] for r in ok]
    for k in ("delayed_share", "max_delay_ms"):
        if k in med:
            med[k] = statistics.median(r[k] for r in ok)
    return med


def run_bench(workloads, policies, procs_list, scale, repeat, with_gevent, timeout, quick=False):
    cells = _cells(workloads, policies, procs_list, with_gevent, quick)
    results = {i: [] for i in range(len(cells))}
    total = len(cells) * repeat
    t0 = time.monotonic()
    done = 0
    _progress(0, total, t0, "")
    for _ in range(repeat):
        for i, cell in enumerate(cells):
            label = f"{cell['workload']} {cell['runtime']}/{cell['policy']} p{cell['procs']}"
            results[i].append(_run_cell(cell, scale, timeout))
            done += 1
            _progress(done, total, t0, label)
    out = []
    for i, cell in enumerate(cells):
        r = _median_result(results[i])
        r.update({k: cell[k] for k in cell})
        out.append(r)
    return out


def _find(rows, workload, runtime, policy, procs):
    for r in rows:
        if (r["workload"], r["runtime"], r["policy"], r["procs"]) == (workload, runtime, policy, procs):
            return r if "error" not in r else None
    return None


def format_table(rows):
    hdr = ("workload", "runtime", "procs", "throughput", "x global", "lat p50",
           "p99", "p999", "steals", "gpull", "balance %", "cpu s", ">10ms", "max")
    lines = []
    for r in rows:
        if "error" in r:
            lines.append((r["workload"], f"{r['runtime']}/{r['policy']}", str(r["procs"]),
                          "ERROR " + r["error"]) + ("",) * 10)
            continue
        base = _find(rows, r["workload"], "gmp", "global", r["procs"])
        ratio = f"{r['throughput'] / base['throughput']:.2f}" if base and r["runtime"] == "gmp" else "-"
        lat = r.get("lat", {})

        def us(k):
            v = lat.get(k)
            if v is None:
                return "-"
            return f"{v / 1e3:.1f}ms" if v >= 1e3 else f"{v:.0f}us"
        lines.append((
            r["workload"], "gevent" if r["runtime"] == "gevent" else f"gmp/{r['policy']}",
            str(r["procs"]), f"{r['throughput']:,.0f} {r['unit']}/s", ratio,
            us("p50"), us("p99"), us("p999"),
            str(r.get("steals", "-")), str(r.get("global_pulls", "-")),
            "/".join(str(b) for b in r["balance"]) if "balance" in r else "-",
            f"{r['cpu_s']:.2f}",
            f"{100 * r['delayed_share']:.1f}%" if "delayed_share" in r else "",
            f"{r['max_delay_ms']:.1f}ms" if "max_delay_ms" in r else "",
        ))
    widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h)
              for i, h in enumerate(hdr)]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    out = [fmt.format(*hdr), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*l) for l in lines]
    return "\n".join(out)


def targets(rows, nprocs):
    """The issue-4 targets, as (name, value, goal, ok) from this run."""
    out = []

    def ratio(a, b):
        return a["throughput"] / b["throughput"] if a and b else None
    if nprocs >= 2:
        v = ratio(_find(rows, "gil_release", "gmp", "go", 2), _find(rows, "gil_release", "gmp", "go", 1))
        out.append(("gil_release go procs=2 / procs=1 throughput", v, ">= 1.8", v is not None and v >= 1.8))
        v = ratio(_find(rows, "pure_python", "gmp", "go", 2), _find(rows, "pure_python", "gmp", "go", 1))
        out.append(("pure_python go procs=2 / procs=1 throughput", v, ">= 0.95", v is not None and v >= 0.95))
        a = _find(rows, "blocking", "gmp", "go", nprocs)
        b = _find(rows, "blocking", "gevent", "-", 1)
        v = (a["delayed_share"] / b["delayed_share"] if b["delayed_share"] else float("inf")) if a and b else None
        out.append((f"blocking: share delayed >10ms, gmp/go p{nprocs} / gevent", v, "<= 0.5", v is not None and v <= 0.5))
        c = _find(rows, "blocking_coop", "gmp", "go", nprocs)
        v = c["max_delay_ms"] if c else None
        out.append((f"blocking_coop: worst short-request delay (ms), gmp/go p{nprocs}", v, "<= 10", v is not None and v <= 10))
        v = ratio(_find(rows, "fanout_skewed", "gmp", "go", 2), _find(rows, "fanout_skewed", "gmp", "global", 2))
        out.append(("fanout_skewed procs=2 go / global throughput", v, ">= 1.0", v is not None and v >= 1.0))
    return out


def readings(rows):
    """One line per workload: at the largest procs, each policy's throughput
    against global's."""
    out = []
    for w in dict.fromkeys(r["workload"] for r in rows):
        procs = max(r["procs"] for r in rows if r["workload"] == w)
        base = _find(rows, w, "gmp", "global", procs)
        others = [r for r in rows if r["workload"] == w and r["procs"] == procs
                  and r["runtime"] == "gmp" and r["policy"] != "global" and "error" not in r]
        if base is None or not others:
            continue
        out.append(f"{w} (procs {procs}): throughput " + ", ".join(
            f"{r['policy']} {r['throughput'] / base['throughput']:.2f}x" for r in others)
            + " global's")
    return out


def format_targets(tg):
    lines = ["", "targets (ratios within this run):"]
    for name, v, goal, ok in tg:
        vs = "n/a" if v is None else f"{v:.2f}"
        lines.append(f"  {harness.verdict(None if v is None else ok):<4}  {name}: {vs} (goal {goal})")
    return "\n".join(lines)


def add_parser(subparsers):
    """Register ``steal-vs-global`` on a ``gmp bench`` subparsers object."""
    p = subparsers.add_parser(
        "steal-vs-global", help="compare scheduling policies on the same workloads",
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_args(p)
    p.set_defaults(func=run_cli)
    return p


def _add_args(p):
    ncpu = len(os.sched_getaffinity(0))
    p.add_argument("--procs", type=int, default=min(4, ncpu),
                   help="N in the procs 1 vs N comparison (default min(4, CPUs))")
    p.add_argument("--policies", default=",".join(POLICIES),
                   help="comma-separated policies (default %(default)s)")
    p.add_argument("--workloads", default=None,
                   help="comma-separated workloads (default: all; quick: the non-RPC ones "
                        f"and {', '.join(QUICK_RPC)})")
    p.add_argument("--repeat", type=int, default=None,
                   help="runs per cell, interleaved; the median is shown (default 3, quick 2)")
    p.add_argument("--scale", type=float, default=None,
                   help="work per run (default 1.0, quick 0.5)")
    p.add_argument("--quick", action="store_true", help="half sizes, two runs per cell (< 1 min)")
    p.add_argument("--no-gevent", action="store_true", help="skip the gevent comparison")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    p.add_argument("--timeout", type=float, default=120, help="per-run timeout, s")
    harness.add_strict_arg(p)


def run_cli(args):
    from gmp.policy import names
    known = names()
    policies = [s.strip() for s in args.policies.split(",") if s.strip()]
    for pol in policies:
        if pol not in known:
            raise SystemExit(f"unknown policy {pol!r}; known policies: {', '.join(known)}")
    if args.workloads is None:
        args.workloads = ",".join(w for w in WORKLOADS if not args.quick or w not in rpc.WORKLOADS
                                  or w in QUICK_RPC)
    workloads = [s.strip() for s in args.workloads.split(",") if s.strip()]
    for w in workloads:
        if w not in WORKLOADS:
            raise SystemExit(f"unknown workload {w!r}; known: {', '.join(WORKLOADS)}")
    if args.procs < 1:
        raise SystemExit("--procs must be >= 1")
    procs_list = sorted({1, args.procs})
    repeat = args.repeat or (2 if args.quick else 3)
    scale = args.scale or (0.5 if args.quick else 1.0)
    with_gevent = not args.no_gevent
    if with_gevent:
        try:
            import gevent  # noqa: F401
        except ImportError:
            sys.stderr.write("gevent not installed: skipping the gevent comparison\n")
            with_gevent = False
    t0 = time.monotonic()
    rows = run_bench(workloads, policies, procs_list, scale, repeat, with_gevent, args.timeout,
                     args.quick)
    rpc_rows = [r for r in rows if r["workload"] in rpc.WORKLOADS]
    rows = [r for r in rows if r["workload"] not in rpc.WORKLOADS]
    print(f"gmp bench steal-vs-global: procs 1 vs {args.procs}, scale {scale}, "
          f"{repeat} run(s) per cell (median), {time.monotonic() - t0:.0f} s, "
          f"{len(os.sched_getaffinity(0))} CPUs")
    print(format_table(rows))
    if rpc_rows:
        print(f"\nRPC server under Poisson load (client timeout {rpc.CLIENT_TIMEOUT * 1e3:.0f} ms, "
              "latency of OK replies from the intended send time):")
        print(rpc.format_table(rpc_rows))
    print("\nreading:")
    for line in readings(rows) + rpc.readings(rpc_rows):
        print("  " + line)
    tg = targets(rows, args.procs) + rpc.targets(rpc_rows)
    print(format_targets(tg))
    rows += rpc_rows
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"procs": procs_list, "scale": scale, "repeat": repeat, "rows": rows,
                       "targets": [dict(name=n, value=v, goal=g, ok=ok) for n, v, g, ok in tg]},
                      f, indent=1)
    errors = [r for r in rows if "error" in r]
    if errors:
        sys.stderr.write(f"gmp bench steal-vs-global: {len(errors)} of {len(rows)} cell(s) failed\n")
    return harness.exit_code(errors, [harness.verdict(None if v is None else ok) for _, v, _, ok in tg],
                             args.strict)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        res = child(json.loads(argv[1]))
        sys.stdout.write(json.dumps(res) + "\n")
        return 0
    p = argparse.ArgumentParser(prog="gmp bench steal-vs-global",
                                description=__doc__.split("\n\n")[0])
    _add_args(p)
    return run_cli(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

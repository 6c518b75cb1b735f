"""Cost of admitting a task: gmp.go vs gmp.policy.submit under each policy.

    python bench/admission.py [--quick] [--json FILE] [--repeat N]

One op = submit a no-op task and, in batches of 1000, join each task of
the batch: ``gmp.go`` + ``G.join`` (the floor: a G per task), then
``gmp.policy.submit`` under go (a G per task through the admission layer),
tars (one bounded gmp.Chan FIFO served by a worker G per P), tars-keyed
(a FIFO per worker), sofa (hand-off over an unbuffered gmp.Chan, elastic
workers) and sofa-sharded.  Each (policy, procs) runs in this process under
its own gmp.run; repeats are interleaved and the table shows the best and
the median ns/op, and the ratio of the best to gmp.go's best on the same
procs.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import environment, fmt_ns, fmt_ratio, gc_off, stats, table, write_json

import gmp
from gmp import policy as gpolicy

BATCH = 1000
CASES = ("go", "tars", "tars-keyed", "sofa", "sofa-sharded")


def _noop():
    return None


def _time_go(n):
    go = gmp.go
    t0 = time.perf_counter_ns()
    for _ in range(n // BATCH):
        gs = [go(_noop) for _ in range(BATCH)]
        for g in gs:
            g.join()
    return (time.perf_counter_ns() - t0) / n


def _time_submit(n):
    submit = gpolicy.submit
    t0 = time.perf_counter_ns()
    for _ in range(n // BATCH):
        tasks = [submit(_noop, key=i) for i in range(BATCH)]
        for t in tasks:
            t.join()
    return (time.perf_counter_ns() - t0) / n


def sample(case, procs, n, floor):
    fn = _time_go if floor else _time_submit
    with gc_off():
        return gmp.run(fn, n, procs=procs, policy=case)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    n = 20_000 if args.quick else 100_000
    repeat = args.repeat or (3 if args.quick else 5)
    procs_list = sorted({1, min(2, len(os.sched_getaffinity(0)))})
    cells = [("gmp.go", p, True) for p in procs_list] + \
            [(c, p, False) for p in procs_list for c in CASES]
    samples = {(c, p): [] for c, p, _ in cells}
    for _ in range(repeat):
        for case, procs, floor in cells:
            samples[(case, procs)].append(sample("go" if floor else case, procs, n, floor))
    rows, out = [], []
    for case, procs, _ in cells:
        s = stats(samples[(case, procs)])
        base = min(samples[("gmp.go", procs)])
        label = case if case == "gmp.go" else f"submit/{case}"
        rows.append((label, procs, fmt_ns(s["best"]), fmt_ns(s["median"]),
                     fmt_ratio(s["best"] / base)))
        out.append({"case": label, "procs": procs, **s, "x_go": s["best"] / base})
    print(f"admission cost: ns per task (submit + run + join), {n} tasks, "
          f"{repeat} interleaved repeats")
    print(table(("case", "procs", "best ns", "median ns", "x gmp.go"), rows, right=(1, 2, 3, 4)))
    if args.json:
        write_json(args.json, {"environment": environment(), "rows": out})
    return 0


if __name__ == "__main__":
    sys.exit(main())

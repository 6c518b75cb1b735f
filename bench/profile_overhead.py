"""Sampler overhead: the fan-out workload with the profiler off and on.

    python bench/profile_overhead.py [--rate 100] [--mode cpu] [--rounds 6] [--json FILE]

Runs the same fan-out (examples/fanout.py: a producer, 64 worker Gs, pure
Python plus hashlib per job) alternately without and with gmp's sampler, in
one process, and reports the best and median throughput of each and the
overhead (1 - on/off).  Alternating rounds keep machine noise from landing
on one side only.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

import fanout  # noqa: E402

import gmp  # noqa: E402
from gmp.profile import Profiler  # noqa: E402


def one_round(jobs, procs, profiler):
    t0 = time.perf_counter()
    if profiler is None:
        gmp.run(fanout.main, jobs, 64, procs=procs)
    else:
        with profiler:
            gmp.run(fanout.main, jobs, 64, procs=procs)
    return jobs / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description="profiler overhead on the fan-out workload")
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--mode", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()
    off, on, samples = [], [], 0
    one_round(a.jobs // 4, a.procs, None)  # warm-up
    for i in range(a.rounds):
        print(f"round {i + 1}/{a.rounds}", file=sys.stderr, end="\r")
        off.append(one_round(a.jobs, a.procs, None))
        prof = Profiler(rate=a.rate, mode=a.mode)
        on.append(one_round(a.jobs, a.procs, prof))
        samples += prof.samples
    res = {
        "rate_hz": a.rate, "mode": a.mode, "procs": a.procs, "rounds": a.rounds,
        "off_best": max(off), "on_best": max(on),
        "off_median": statistics.median(off), "on_median": statistics.median(on),
        "samples": samples,
    }
    res["overhead_best_pct"] = 100 * (1 - res["on_best"] / res["off_best"])
    res["overhead_median_pct"] = 100 * (1 - res["on_median"] / res["off_median"])
    print(f"fan-out, procs={a.procs}, sampler {a.mode} @ {a.rate:g} Hz, {a.rounds} alternating rounds")
    print(f"  off: best {res['off_best']:9.0f} jobs/s   median {res['off_median']:9.0f}")
    print(f"  on : best {res['on_best']:9.0f} jobs/s   median {res['on_median']:9.0f}   ({samples} samples)")
    print(f"  overhead: {res['overhead_best_pct']:+.2f} % (best), {res['overhead_median_pct']:+.2f} % (median)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()

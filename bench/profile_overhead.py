"""Sampler overhead: the fan-out workload with the profiler off and on.

    python bench/profile_overhead.py [--rate 100] [--mode cpu] [--rounds 6] [--json FILE]

Runs the same fan-out (examples/fanout.py: a producer, 64 worker Gs, pure
Python plus hashlib per job) alternately without and with gmp's sampler, in
one process.  Overhead is reported two ways: process CPU time per job
(``time.process_time``, which counts the sampler thread too, and which other
tenants of a shared machine disturb far less than wall time), and wall-clock
throughput.  Alternating rounds keep drift from landing on one side only;
the figure is the median over rounds of the on/off ratio of neighbours.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

import fanout

import gmp
from gmp.profile import Profiler


def one_round(jobs, procs, profiler):
    """(wall jobs/s, CPU seconds per job)."""
    t0, c0 = time.perf_counter(), time.process_time()
    if profiler is None:
        gmp.run(fanout.main, jobs, 64, procs=procs)
    else:
        with profiler:
            gmp.run(fanout.main, jobs, 64, procs=procs)
    return jobs / (time.perf_counter() - t0), (time.process_time() - c0) / jobs


def main():
    ap = argparse.ArgumentParser(description="profiler overhead on the fan-out workload")
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--mode", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--rounds", type=int, default=10)
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
    cpu_ratio = statistics.median(b[1] / a_[1] for a_, b in zip(off, on))
    wall_ratio = statistics.median(b[0] / a_[0] for a_, b in zip(off, on))
    res = {
        "rate_hz": a.rate, "mode": a.mode, "procs": a.procs, "rounds": a.rounds,
        "jobs_per_round": a.jobs, "samples": samples,
        "off_wall_median": statistics.median(r[0] for r in off),
        "on_wall_median": statistics.median(r[0] for r in on),
        "off_cpu_us_per_job": 1e6 * statistics.median(r[1] for r in off),
        "on_cpu_us_per_job": 1e6 * statistics.median(r[1] for r in on),
        "overhead_cpu_pct": 100 * (cpu_ratio - 1),
        "overhead_wall_pct": 100 * (1 - wall_ratio),
    }
    print(f"fan-out, procs={a.procs}, sampler {a.mode} @ {a.rate:g} Hz, "
          f"{a.rounds} alternating rounds of {a.jobs} jobs ({samples} samples taken)")
    print(f"  CPU per job : off {res['off_cpu_us_per_job']:7.1f} us   on {res['on_cpu_us_per_job']:7.1f} us"
          f"   overhead {res['overhead_cpu_pct']:+.2f} %")
    print(f"  throughput  : off {res['off_wall_median']:7.0f} /s   on {res['on_wall_median']:7.0f} /s"
          f"   overhead {res['overhead_wall_pct']:+.2f} %")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()

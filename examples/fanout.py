"""Fan-out/fan-in on gmp: one producer, a pool of worker Gs, a result channel.

    python examples/fanout.py [--jobs N] [--workers W] [--procs P]

Each job is a little pure-Python work plus a hashlib digest over 64 KiB
(which releases the GIL), so with procs > 1 the Ms overlap the hashing.
"""
import argparse
import hashlib
import time

import gmp

BLOB = bytes(range(256)) * 256


def work(i):
    acc = 0
    for k in range(200):
        acc += (i * k) % 7
    return hashlib.sha256(BLOB + i.to_bytes(4, "little")).digest()[0] + acc


def worker(jobs, results):
    for i in jobs:
        results.send(work(i))


def main(njobs, nworkers):
    jobs, results = gmp.Chan(64), gmp.Chan(64)
    for _ in range(nworkers):
        gmp.go(worker, jobs, results)

    def produce():
        for i in range(njobs):
            jobs.send(i)
        jobs.close()

    gmp.go(produce)
    return sum(results.recv() for _ in range(njobs))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=64)
    ap.add_argument("--procs", type=int, default=None)
    a = ap.parse_args()
    t0 = time.perf_counter()
    total = gmp.run(main, a.jobs, a.workers, procs=a.procs)
    dt = time.perf_counter() - t0
    print(f"{a.jobs} jobs on {a.workers} Gs: checksum {total}, {a.jobs / dt:.0f} jobs/s")

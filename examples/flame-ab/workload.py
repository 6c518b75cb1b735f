"""The workload the flame A/B recipe profiles: a fan-out of parse/encode jobs.

Set GMP_FLAME_AB_INJECT=1 to add a hot spot (`checksum`, about 10 % more
CPU per job): the regression the gate must catch.
"""
import json
import os
import time

import gmp

INJECT = os.environ.get("GMP_FLAME_AB_INJECT") == "1"
DOC = {"id": 1, "tags": ["a", "b", "c"] * 4, "nested": {"k": list(range(20))}}


def parse(raw):
    return json.loads(raw)


def encode(doc):
    return json.dumps(doc, sort_keys=True)


def transform(doc):
    doc["tags"] = sorted(set(doc["tags"]))
    doc["nested"]["k"] = [v * 2 for v in doc["nested"]["k"]]
    return doc


def checksum(text):
    acc = 0
    for ch in text:
        acc = (acc * 31 + ord(ch)) & 0xFFFFFFFF
    return acc


def job(raw):
    doc = transform(parse(raw))
    out = encode(doc)
    if INJECT:
        checksum(out[:12])
    return len(out)


def worker(jobs, done):
    for raw in jobs:
        job(raw)
    done.done()


def main(seconds=3.0, workers=16):
    raw = json.dumps(DOC)
    jobs, done = gmp.Chan(256), gmp.WaitGroup()
    for _ in range(workers):
        done.add(1)
        gmp.go(worker, jobs, done)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(100):
            jobs.send(raw)
    jobs.close()
    done.wait()


if __name__ == "__main__":
    gmp.run(main, float(os.environ.get("GMP_FLAME_AB_SECONDS", "3")), procs=1)

"""redis-py fan-out under monkey patching: many Gs issue commands at once.

    gmp run examples/redis_fanout.py [--port 6379] [--gs 1000] [--cmds 100]

Unmodified redis-py code: each G SETs and GETs its own keys through a shared
connection pool.  Under ``gmp run`` the sockets are cooperative, so the Gs'
round trips overlap; the script checks every reply and prints the rate.
"""
import argparse
import threading
import time

import redis


def worker(r, i, cmds, errors):
    for k in range(cmds):
        key = f"fanout:{i}:{k % 10}"
        r.set(key, f"{i}-{k}")
        if r.get(key) != f"{i}-{k}".encode():
            errors.append(key)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--gs", type=int, default=1000)
    ap.add_argument("--cmds", type=int, default=100)
    a = ap.parse_args()
    r = redis.Redis(host="127.0.0.1", port=a.port,
                    connection_pool=redis.BlockingConnectionPool(
                        host="127.0.0.1", port=a.port, max_connections=200, timeout=60))
    errors = []
    threads = [threading.Thread(target=worker, args=(r, i, a.cmds, errors)) for i in range(a.gs)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    n = a.gs * a.cmds * 2
    print(f"{n} commands from {a.gs} threads in {dt:.2f} s ({n / dt:.0f}/s), {len(errors)} wrong replies")
    raise SystemExit(1 if errors else 0)


if __name__ == "__main__":
    main()

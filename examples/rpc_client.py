"""Drive an RPC example server with many concurrent connections, on gmp.

    python examples/rpc_client.py PORT [--conns 1000] [--calls 5] [--sleep 0.2] [--spin MS]

Each connection is a G that makes `calls` requests (add, echo, then a
sleep(`sleep`)) and checks every reply.  Prints the wall time, the number of
distinct server OS threads seen by whoami(), and whether the sleeps
overlapped (wall time well under conns x sleep).
"""
import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rpcproto  # noqa: E402

import gmp  # noqa: E402
from gmp import net  # noqa: E402


def call(conn, rid, method, *params):
    conn.sendall(rpcproto.encode({"id": rid, "method": method, "params": list(params)}))
    reply = rpcproto.read_frame(conn.recv)
    if reply is None or reply.get("id") != rid or "error" in reply:
        raise RuntimeError(f"bad reply to {method}: {reply!r}")
    return reply["result"]


def client(port, i, calls, nap, tids, wg):
    try:
        with net.dial(("127.0.0.1", port), timeout=30) as conn:
            for k in range(calls):
                assert call(conn, k, "add", i, k) == i + k
                assert call(conn, k, "echo", [i, "x"]) == [i, "x"]
            tids.add(call(conn, calls, "whoami"))
            assert call(conn, calls + 1, "sleep", nap) == nap
    finally:
        wg.done()


def spinner(port, ms, every):
    """Calls spin(ms) every `every` seconds: CPU spikes on the server."""
    with net.dial(("127.0.0.1", port), timeout=30) as conn:
        k = 0
        while True:
            gmp.sleep(every)
            call(conn, k, "spin", ms)
            k += 1


def main(port, conns, calls, nap, spin_ms=0):
    tids, wg = set(), gmp.WaitGroup()
    gs = []
    if spin_ms:
        gmp.go(spinner, port, spin_ms, 0.5)
    t0 = time.monotonic()
    for i in range(conns):
        wg.add(1)
        gs.append(gmp.go(client, port, i, calls, nap, tids, wg))
    wg.wait()
    failed = [g for g in gs if g.exception is not None]
    return time.monotonic() - t0, len(tids), len(failed)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--sleep", type=float, default=0.2)
    ap.add_argument("--spin", type=float, default=0, metavar="MS",
                    help="also call spin(MS) (server CPU work) every 0.5 s on one more connection")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    wall, nthreads, failed = gmp.run(main, a.port, a.conns, a.calls, a.sleep, a.spin)
    print(f"{a.conns} connections x {a.calls * 2 + 2} calls in {wall:.2f} s; "
          f"server threads seen: {nthreads}; failed: {failed}; "
          f"sleeps overlapped: {wall < a.conns * a.sleep / 4}")
    sys.exit(1 if failed else 0)

"""Echo server benchmark: gmp.net vs gevent StreamServer vs asyncio
(Protocol) vs uvloop (Protocol), all driven by the same C load client.

    python bench/echo.py [--seconds 5] [--warmup 1] [--conns 100] [--size 100]
                         [--servers gmp,gevent,asyncio,uvloop] [--rounds N] [--json]

Each server runs in its own subprocess pinned with ``taskset -c 0``; the
client, ``echo_load`` built with ``cc -O2`` from bench/tools/echo_load.c,
runs pinned to CPU 1 with CONNS connections
sending SIZE-byte messages in a closed loop.  Server CPU % is measured with
psutil over the client's whole run, client CPU % from its rusage.  A client
near 100 % CPU means the figure is client-bound.  Servers that are not
installed are reported as skipped.  ``gmp+prof`` is the gmp server under
``gmp profile`` (the G-aware sampler at 100 Hz), for the profiler's overhead.
With ``--rounds N`` the servers run in rotation N times and each figure is
the median over rounds, so a noisy moment on a shared machine does not land
on one server only.
"""
import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

import psutil

from gmp.bench import harness

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLIENT_SRC = os.path.join(HERE, "tools", "echo_load.c")

GEVENT_SERVER = r"""
import sys
from gevent.server import StreamServer
def handle(sock, addr):
    buf = bytearray(65536); view = memoryview(buf)
    try:
        while True:
            n = sock.recv_into(buf)
            if not n: break
            sock.sendall(view[:n])
    except ConnectionError:
        pass
    finally:
        sock.close()
srv = StreamServer(("127.0.0.1", 0), handle, backlog=4096)
srv.start()
print("ready", srv.server_port, flush=True)
srv.serve_forever()
"""

ASYNCIO_SERVER = r"""
import asyncio, sys
class Echo(asyncio.Protocol):
    def connection_made(self, t):
        self.t = t
    def data_received(self, d):
        self.t.write(d)
async def main():
    srv = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0, backlog=4096)
    print("ready", srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()
if sys.argv[1] == "uvloop":
    import uvloop
    uvloop.install()
asyncio.run(main())
"""


def server_cmd(name):
    # harness.python_cmd: the server measures the gmp this process imported.
    py = harness.python_cmd
    if name == "gmp":
        return py(os.path.join(REPO, "examples", "echo_server.py"), "0")
    if name == "gmp+run":
        return py("-m", "gmp", "run", os.path.join(REPO, "examples", "echo_server.py"), "0")
    if name == "gmp+prof":
        return py("-m", "gmp", "profile", "--rate", "100", "-o", os.devnull, "--",
                  os.path.join(REPO, "examples", "echo_server.py"), "0")
    if name == "gevent":
        return py("-c", GEVENT_SERVER)
    if name in ("asyncio", "uvloop"):
        return py("-c", ASYNCIO_SERVER, name)
    raise ValueError(name)


def available(name):
    if name in ("gmp", "gmp+run", "gmp+prof", "asyncio"):
        return True
    try:
        __import__(name)
        return True
    except ImportError:
        return False


def build_client(outdir):
    exe = os.path.join(outdir, "echo_load")
    src = os.path.abspath(CLIENT_SRC)
    if not os.path.exists(src):
        sys.exit(f"echo client source not found at {src}")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        os.makedirs(outdir, exist_ok=True)
        subprocess.run(["cc", "-O2", "-o", exe, src], check=True)
    return exe


def pin(cpu):
    ncpu = len(os.sched_getaffinity(0))
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and ncpu > 1 else []


def run_one(name, client, args):
    srv = subprocess.Popen(pin(0) + server_cmd(name), stdout=subprocess.PIPE, env=harness.child_env(), text=True)
    try:
        line = srv.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            raise RuntimeError(f"{name} server did not start: {line!r}")
        port = int(line[1])
        ps = psutil.Process(srv.pid)
        before_srv = ps.cpu_times()
        before_cli = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        out = subprocess.run(pin(1) + [client, str(port), str(args.conns), str(args.size),
                                       str(args.seconds), str(args.warmup)],
                             check=False, capture_output=True, text=True, timeout=args.seconds + args.warmup + 60)
        wall = time.monotonic() - t0
        after_srv = ps.cpu_times()
        after_cli = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            raise RuntimeError(f"client failed against {name}: {out.stderr.strip()}")
        m = dict(re.findall(r"(\w[\w.]*)=([\d.]+)", out.stdout))
        return {
            "server": name,
            "rps": float(m["rps"]),
            "p50_ms": float(m["p50"]),
            "p99_ms": float(m["p99"]),
            "server_cpu_pct": 100 * ((after_srv.user + after_srv.system)
                                     - (before_srv.user + before_srv.system)) / wall,
            "client_cpu_pct": 100 * ((after_cli.ru_utime + after_cli.ru_stime)
                                     - (before_cli.ru_utime + before_cli.ru_stime)) / wall,
        }
    finally:
        srv.kill()
        srv.wait()


def median_run(rs):
    """Per-field medians of one server's rounds."""
    out = {"server": rs[0]["server"], "rounds": len(rs)}
    for k in ("rps", "p50_ms", "p99_ms", "server_cpu_pct", "client_cpu_pct"):
        out[k] = statistics.median(r[k] for r in rs)
    return out


def main():
    ap = argparse.ArgumentParser(description="echo server benchmark")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--servers", default="gmp,gevent,asyncio,uvloop")
    ap.add_argument("--rounds", type=int, default=1, help="rotations; figures are medians")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    client = build_client(os.path.join(HERE, ".build"))
    names = [n for n in args.servers.split(",") if available(n)]
    skipped = [n for n in args.servers.split(",") if not available(n)]
    runs = {n: [] for n in names}
    for i in range(args.rounds):
        for name in names:
            print(f"round {i + 1}/{args.rounds}: {name}", file=sys.stderr)
            runs[name].append(run_one(name, client, args))
    results = [median_run(runs[n]) for n in names]
    by = {r["server"]: r for r in results}
    for r in results:
        for ref in ("gevent", "uvloop"):
            if ref in by:
                r[f"vs_{ref}"] = r["rps"] / by[ref]["rps"]
    if args.json:
        print(json.dumps({"config": vars(args), "results": results, "skipped": skipped}, indent=2))
        return
    print(f"echo: {args.conns} conns, {args.size} B messages, {args.seconds:g} s "
          f"(+{args.warmup:g} s warm-up), median of {args.rounds} round(s); "
          f"server on CPU 0, client on CPU 1")
    hdr = f"{'server':<9} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'srv CPU%':>9} {'cli CPU%':>9} {'vs gevent':>10} {'vs uvloop':>10}"
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        vg = f"{r['vs_gevent']:.2f}x" if "vs_gevent" in r else "-"
        vu = f"{r['vs_uvloop']:.2f}x" if "vs_uvloop" in r else "-"
        print(f"{r['server']:<9} {r['rps']:>10.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['server_cpu_pct']:>9.1f} {r['client_cpu_pct']:>9.1f} {vg:>10} {vu:>10}")
    for name in skipped:
        print(f"{name:<8} skipped (not installed)")


if __name__ == "__main__":
    main()

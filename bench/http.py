"""HTTP serving: gmp's gunicorn worker against gunicorn -k gevent, -k gthread
and uvicorn (uvloop + httptools) on the equivalent ASGI app, one worker
process each, server pinned to CPU 0 and wrk (the client) to CPU 1.

    python bench/http.py [--duration 5] [--conns 100,500] [--quick]

Per cell: req/s and p99 latency from wrk, and the server's CPU seconds per
10^5 requests (user + system of the whole gunicorn/uvicorn process tree;
the client may be the limit on 2 cores, so this is the efficiency figure).
Then the blocking-isolation scenarios (gmp.bench.isolation) against gevent,
and procs=2 / procs=1 on the Flask app.  Cells are interleaved by app and
connection count so that a noisy neighbour hits every server alike.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
APPDIR = os.path.join(HERE, "apps")     # not HERE: this file would shadow the stdlib's http

from gmp.bench import isolation as iso

APPS = {  # name: (WSGI target, ASGI target, path)
    "hello": ("http_apps:hello", "http_apps:asgi_hello", "/"),
    "flask": ("http_apps:flask_app", "http_apps:asgi_json", "/json"),
}


def servers(procs_pairs=True):
    out = {"gmp": ["-k", "gmp.gunicorn.Worker", "--threads", "1"]}
    if procs_pairs:
        out["gmp/procs2"] = ["-k", "gmp.gunicorn.Worker", "--threads", "2"]
    out["gevent"] = ["-k", "gevent", "--worker-connections", "1000"]
    out["gthread"] = ["-k", "gthread", "--threads", "8"]
    out["uvicorn"] = None
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name, args, app, port):
    wsgi, asgi, _ = APPS[app]
    env = dict(os.environ, PYTHONPATH=APPDIR)    # gmp itself: the installed one
    if args is None:
        cmd = [sys.executable, "-m", "uvicorn", asgi, "--port", str(port), "--loop", "uvloop",
               "--http", "httptools", "--workers", "1", "--log-level", "warning", "--no-access-log"]
    else:
        cmd = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}",
               "--no-control-socket", "--log-level", "warning", "--keep-alive", "30", *args, wsgi]
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], cwd=APPDIR, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{name} did not start")


def tree_cpu(proc):
    total = 0.0
    try:
        ps = [psutil.Process(proc.pid)]
        ps += ps[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    for p in ps:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(2)]
    n = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p99, n, (errors.group(1) if errors else "") + (f" non2xx={non2xx.group(1)}" if non2xx else "")


def run_cell(name, args, app, conns, duration):
    port = free_port()
    proc = start(name, args, app, port)
    try:
        url = f"http://127.0.0.1:{port}{APPS[app][2]}"
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", "-d1s", url],
                       check=False, capture_output=True, timeout=30)              # warm-up
        cpu0 = tree_cpu(proc)
        r = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{duration}s",
                            "--latency", url], check=True, capture_output=True, text=True,
                           timeout=duration + 30)
        cpu = tree_cpu(proc) - cpu0
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    rps, p99, n, errs = parse_wrk(r.stdout)
    return {"server": name, "app": app, "conns": conns, "rps": rps, "p99": p99,
            "cpu_per_1e5": cpu / n * 1e5 if n else float("nan"), "errors": errs.strip()}


def table(rows, cols):
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)) for r in rows]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--conns", default="100,500")
    ap.add_argument("--apps", default="hello,flask")
    ap.add_argument("--quick", action="store_true", help="2 s cells, 100 connections, no isolation")
    a = ap.parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("bench/http.py needs wrk (Debian package wrk)")
    if a.quick:
        a.duration, a.conns = 2.0, "100"
    dur = int(a.duration)
    rows = []
    for app in a.apps.split(","):
        for conns in (int(c) for c in a.conns.split(",")):
            cell = []
            for name, args in servers().items():
                print(f"  {app} c={conns} {name} ...", file=sys.stderr, flush=True)
                try:
                    cell.append(run_cell(name, args, app, conns, dur))
                except (RuntimeError, OSError, subprocess.SubprocessError, AttributeError) as e:  # keep the table
                    cell.append({"server": name, "app": app, "conns": conns, "rps": 0.0, "p99": 0.0,
                                 "cpu_per_1e5": float("nan"), "errors": f"{type(e).__name__}: {e}"[:60]})
            ge = next((r for r in cell if r["server"] == "gevent"), None)
            for r in cell:
                r["x gevent"] = f"{r['rps'] / ge['rps']:.2f}" if ge and ge["rps"] else "-"
                r["p99 x gevent"] = f"{r['p99'] / ge['p99']:.2f}" if ge and ge["p99"] else "-"
                r["req/s"] = f"{r['rps']:,.0f}"
                r["p99 ms"] = f"{r['p99'] * 1e3:.1f}"
                r["cpu s/1e5"] = f"{r['cpu_per_1e5']:.1f}"
            rows += cell
    print(f"bench/http.py: wrk -t1 on CPU 1, server on CPU 0, {dur} s per cell, 1 worker process\n")
    print(table(rows, ["app", "conns", "server", "req/s", "x gevent", "p99 ms", "p99 x gevent",
                       "cpu s/1e5", "errors"]))
    for app in a.apps.split(","):
        for conns in (int(c) for c in a.conns.split(",")):
            one = next(r for r in rows if (r["app"], r["conns"], r["server"]) == (app, conns, "gmp"))
            two = next(r for r in rows if (r["app"], r["conns"], r["server"]) == (app, conns, "gmp/procs2"))
            if one["rps"]:
                print(f"procs=2 / procs=1 req/s, {app}, {conns} conns: {two['rps'] / one['rps']:.2f}")
    if a.quick:
        return 0
    iso_rows = []
    for kind, clients, rate in (("accept", 40, 50), ("wsgi", 20, 25)):
        for impl, procs in (("gevent", 1), ("gmp", 1), ("gmp", 2)):
            r = iso.measure(kind, impl, procs, clients, rate, 3.0)
            iso_rows.append(r)
        ge = iso_rows[-3]["delayed"]
        for r in iso_rows[-3:]:
            r["load"] = f"{clients}x{rate}/s"
            r[">10ms"] = f"{r['delayed'] * 100:.1f}%"
            r["x gevent"] = f"{r['delayed'] / ge:.2f}" if ge else "-"
            r["p50 ms"] = f"{r['p50'] * 1e3:.2f}"
            r["p99 ms"] = f"{r['p99'] * 1e3:.1f}"
    print("\nblocking isolation (gmp.bench.isolation): share of short requests delayed > 10 ms\n")
    print(table(iso_rows, ["kind", "impl", "procs", "load", "n", ">10ms", "x gevent", "p50 ms", "p99 ms"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

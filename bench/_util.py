"""Small helpers shared by the benchmarks in ``bench/``.

Timing: every timed section reads ``time.perf_counter_ns`` around the hot loop
only (set-up and tear-down are outside) and runs with the cyclic GC disabled
(``gc.collect()`` first, ``gc.disable()`` during, restored after), so a GC pass
never lands inside one implementation's sample and not another's.
"""
import gc
import json
import os
import statistics
import sys
import time
from contextlib import contextmanager

now_ns = time.perf_counter_ns

_T0 = time.perf_counter()


def progress(msg):
    """One progress line on stderr, prefixed with the seconds since start."""
    print(f"[{time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


@contextmanager
def gc_off():
    """Collect, then keep the cyclic GC off for the body."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def stats(samples):
    """best (min) and median of a list of per-op figures."""
    return {"best": min(samples), "median": statistics.median(samples),
            "samples": list(samples)}


def rss_bytes():
    import psutil
    return psutil.Process().memory_info().rss


def fmt_ns(x):
    if x is None:
        return "-"
    if x >= 100_000:
        return f"{x / 1000:,.0f}k"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}"


def fmt_ratio(x, suffix="x"):
    if x is None:
        return "-"
    return f"{x:.2f}{suffix}" if x < 100 else f"{x:.0f}{suffix}"


def table(headers, rows, right=()):
    """Plain-text table; columns whose index is in ``right`` are right-aligned.

    A row that is a plain string is printed as-is (section rule / note)."""
    cells = [r for r in rows if not isinstance(r, str)]
    widths = [max(len(str(h)), *(len(str(r[i])) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]

    def line(r):
        out = []
        for i, c in enumerate(r):
            c = str(c)
            out.append(c.rjust(widths[i]) if i in right else c.ljust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "-" * len(line(headers))
    lines = [line(headers), sep]
    for r in rows:
        lines.append(r if isinstance(r, str) else line(r))
    return "\n".join(lines)


def environment():
    """Versions and machine facts for the JSON report."""
    import platform

    info = {"python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}
    for mod in ("greenlet", "gevent", "psutil", "uvloop", "gmp"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", "?")
        except Exception as e:  # noqa: BLE001 - not installed, not built: reported, not fatal
            info[mod] = f"unavailable ({type(e).__name__})"
    try:
        import subprocess
        here = os.path.dirname(os.path.abspath(__file__))
        info["commit"] = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], check=False,
                                        capture_output=True, text=True, timeout=10).stdout.strip() or None
    except Exception:  # noqa: BLE001 - no git, not a checkout: the commit is only informative
        info["commit"] = None
    return info


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")

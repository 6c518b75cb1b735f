"""The scheduler trace: Chrome trace-event JSON whose G slices are well
nested, with a marker where a ring overflowed."""
import itertools
import json
import os
import subprocess
import sys
import textwrap

import gmp
from gmp import blocking, trace


def workload():
    ch = gmp.Chan()
    mu = gmp.Mutex()

    def producer():
        for i in range(200):
            ch.send(i)
        ch.close()

    def locker():
        with mu:
            gmp.sleep(0.001)

    gmp.go(producer)
    gs = [gmp.go(locker) for _ in range(5)]
    assert sum(ch) == sum(range(200))
    for g in gs:
        g.join()
    assert blocking(sum, [1, 2, 3]) == 6


def check_well_nested(events):
    """Per G: run slices never overlap, each ends in park/yield/exit (or
    the trace's end), nothing runs after its exit, and every slice after a
    park starts after a ready."""
    slices = {}
    readies = {}
    for e in events:
        assert e["ph"] in ("X", "i", "M", "B", "E"), e
        if e["ph"] == "X" and e.get("cat") == "g":
            slices.setdefault(e["args"]["g"], []).append(e)
        elif e["ph"] == "i" and e["name"].startswith("ready G"):
            readies.setdefault(e["args"]["g"], []).append(e["ts"])
    assert slices
    for gid, ss in slices.items():
        ss.sort(key=lambda e: e["ts"])
        for a, b in itertools.pairwise(ss):
            assert a["ts"] + a["dur"] <= b["ts"] + 1e-3, (gid, a, b)
            assert a["args"]["end"] != "exit", (gid, a, b)
            if a["args"]["end"].startswith("park"):
                end = a["ts"] + a["dur"]
                assert any(end - 1e-3 <= t <= b["ts"] + 1e-3 for t in readies.get(gid, [])), (gid, a, b)
        assert ss[-1]["args"]["end"] in ("exit", "trace ended") or ss[-1]["args"]["end"].startswith("park")
    return slices


def test_trace_is_chrome_json_and_well_nested(tmp_path, grun):
    path = tmp_path / "trace.json"
    with trace.Tracer(path) as t:
        grun(workload)
    events = json.loads(path.read_text())
    assert t.dropped == 0
    slices = check_well_nested(events)
    names = {e["name"] for e in events}
    assert any(n.endswith("producer") for n in names)
    assert any(e["args"]["name"].startswith("M0") for e in events if e["name"] == "thread_name")
    reasons = {s["args"]["end"] for ss in slices.values() for s in ss}
    assert {"park: sleep", "exit"} <= reasons
    assert any(r.startswith("park: chan") for r in reasons)
    assert any(e["name"].startswith("blocking call for G") for e in events)
    m_tracks = {e["tid"] for e in events if e.get("cat") == "g"}
    assert m_tracks and all(isinstance(t, int) for t in m_tracks)


def test_overflow_is_marked(tmp_path):
    path = tmp_path / "trace.json"
    with trace.Tracer(path, capacity=16, interval=10.0) as t:
        gmp.run(workload, procs=1)
    events = json.loads(path.read_text())
    marks = [e for e in events if e["name"].startswith("events dropped: ")]
    assert marks and t.dropped == sum(e["args"]["dropped"] for e in marks)
    assert all(e["s"] == "g" for e in marks)
    check_well_nested(events)


def test_gmp_trace_command_and_gmpdebug(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent("""
        import gmp
        def child():
            gmp.sleep(0.001)
        def main():
            gmp.go(child).join()
        gmp.run(main)
    """))
    out = tmp_path / "cli.json"
    r = subprocess.run([sys.executable, "-m", "gmp", "trace", "-o", str(out), "--", str(script)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert "events" in r.stderr
    assert any(e.get("name", "").endswith("child") for e in json.loads(out.read_text()))
    env_out = tmp_path / "env.json"
    env = dict(os.environ, GMPDEBUG=f"trace={env_out}")
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    check_well_nested(json.loads(env_out.read_text()))

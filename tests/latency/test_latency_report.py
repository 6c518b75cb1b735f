"""The drain file and ``gmp latency report``: percentiles per class and the
slowest requests broken down, worst component first."""
import json
import subprocess
import sys
import time

import pytest

import gmp
from gmp import latency
from gmp.cli import main as cli


def busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def serve_some(path):
    """200 fast requests of two classes and one held 50 ms by a hog."""
    from gmp._ext import _core

    def fast(i):
        with latency.begin("GET /a" if i % 2 else "GET /b", trace_id=i) as req:
            req.status = 200

    def hog():
        busy(0.050)

    def slow():
        with latency.begin("GET /slow", trace_id=999) as req:
            _core.go_on(gmp.current().home_p, hog)
            gmp.gosched()
            req.status = 503

    def main():
        latency.enable(every=4, slow_ms=20.0)
        latency.start_drain(path, interval=0.01)
        try:
            gs = [gmp.go(fast, i) for i in range(200)]
            gs.append(gmp.go(slow))
            for g in gs:
                g.join()
        finally:
            assert latency.stop_drain() > 0
            latency.disable()

    gmp.run(main, procs=2)


@pytest.fixture(scope="module")
def latfile(tmp_path_factory):
    path = tmp_path_factory.mktemp("lat") / "requests.lat"
    serve_some(path)
    return path


def test_file_holds_sampled_records_with_weights(latfile):
    records, meta = latency.read_file(latfile)
    assert set(meta["classes"]) >= {"GET /a", "GET /b", "GET /slow"}
    names = meta["classes"]
    slow = [r for r in records if names[r.cls] == "GET /slow"]
    assert len(slow) == 1 and slow[0].weight == 1 and slow[0].why & latency.SLOW
    fast = [r for r in records if names[r.cls] != "GET /slow"]
    # 1 in 4 of 100 per class, each standing for 4 (a fast one may still be
    # slow on a loaded machine: kept with weight 1).
    assert 40 <= len(fast) <= 200
    assert all(r.weight in (1, 4) for r in fast)
    assert str(slow[0].held_incident) in meta["incidents"]


def test_report_json(latfile, capsys):
    assert cli(["latency", "report", str(latfile), "--json", "--top", "1"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep["classes"]) == {"GET /a", "GET /b", "GET /slow"}
    assert rep["overall"]["requests"] >= 150
    o = rep["overall"]
    assert o["p50_ms"] <= o["p90_ms"] <= o["p99_ms"] <= o["p99.9_ms"] <= o["max_ms"] + 0.1
    worst = rep["slowest"][0]
    assert worst["class"] == "GET /slow" and worst["status"] == 503 and worst["trace_id"] == 999
    top = worst["breakdown"][0]
    assert top["component"].startswith("M held by G ") and top["component"].endswith("(serve_some.<locals>.hog)")
    assert top["ms"] >= 49
    assert "hog" in top["stack"][0]


def test_report_text_from_the_command_line(latfile):
    out = subprocess.run([sys.executable, "-m", "gmp", "latency", "report", str(latfile)],
                         capture_output=True, text=True, check=True).stdout
    assert "p999 ms" in out and "GET /slow" in out
    assert "M held by G" in out and "hog" in out


def test_report_rejects_a_file_that_is_not_one(tmp_path, capsys):
    bad = tmp_path / "x.lat"
    bad.write_bytes(b"not a latency file at all, really not one, no no no no no no no no no")
    assert cli(["latency", "report", str(bad)]) == 2
    assert "not a gmp latency file" in capsys.readouterr().err


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="power of two"):
        latency.enable(capacity=1000)
    with pytest.raises(ValueError, match="every"):
        latency.configure("x", every=-1)
    with pytest.raises(TypeError, match="request class"):
        latency.class_id(3)
    with pytest.raises(gmp.NoRuntime):
        latency.begin("x")

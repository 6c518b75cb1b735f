"""The bench harness: children measure the gmp their parent imported, even
from a directory holding an unbuilt gmp/ (a fresh clone's root), a failing
cell says why and makes the run exit non-zero, and --strict turns a missed
target into a non-zero exit."""
import json
import subprocess
import sys

import pytest

import gmp
from gmp.bench import harness


@pytest.fixture
def unbuilt_clone(tmp_path):
    """A directory that looks like a clone's root before any build: a gmp/
    package whose import fails, plus setup.py and _ext/."""
    (tmp_path / "gmp").mkdir()
    (tmp_path / "gmp" / "__init__.py").write_text("raise ImportError('the unbuilt clone was imported')\n")
    (tmp_path / "setup.py").write_text("")
    (tmp_path / "_ext").mkdir()
    return tmp_path


def test_child_imports_the_parents_gmp_not_the_working_directorys(unbuilt_clone):
    out, err = harness.run_child(["-c", "import gmp; print(gmp.__file__)"], timeout=60, cwd=unbuilt_clone)
    assert err is None
    assert out.strip() == gmp.__file__


def test_failing_child_reports_the_exception_line():
    _, err = harness.run_child(["-c", "import gmp\nraise ValueError('no such cell')"], timeout=60)
    assert err == "exit 1: ValueError: no such cell"


def test_child_past_its_timeout_is_an_error():
    _, err = harness.run_child(["-c", "import time; time.sleep(30)"], timeout=0.5)
    assert err == "timed out after 0.5 s"


def test_exit_code():
    assert harness.exit_code([], [harness.PASS, harness.MISS]) == 0
    assert harness.exit_code([], [harness.PASS, harness.MISS], strict=True) == 1
    assert harness.exit_code([], [harness.PASS, harness.NA], strict=True) == 1
    assert harness.exit_code([], [harness.PASS], strict=True) == 0
    assert harness.exit_code([{"error": "x"}], [harness.PASS]) == 1
    assert [harness.verdict(v) for v in (True, False, None)] == ["PASS", "MISS", "n/a"]


def _bench(cwd, env=None, *extra):
    # The parent too is started with -P: it is the `gmp` console script in
    # real use, whose sys.path[0] is the scripts folder, not the cwd.
    cmd = [sys.executable, "-P", "-m", "gmp", "bench", "steal-vs-global", "--workloads", "pipeline",
           "--procs", "1", "--repeat", "1", "--scale", "0.02", "--no-gevent", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd,
                          env=harness.child_env(env=env), check=False)


def test_bench_from_an_unbuilt_clone_root_measures_the_install(unbuilt_clone, tmp_path):
    out = tmp_path / "r.json"
    p = _bench(unbuilt_clone, None, "--json", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ERROR" not in p.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [r["policy"] for r in rows] == ["go", "global"] and all(r["throughput"] > 0 for r in rows)


def test_bench_exits_nonzero_and_says_why_when_a_cell_errors(tmp_path, monkeypatch):
    # A bad GMPDEBUG value is rejected by gmp.run() in every child.
    monkeypatch.setenv("GMPDEBUG", "schedtrace=soon")
    p = _bench(tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.count("ERROR exit 1: ValueError: GMPDEBUG") == 2, p.stdout
    assert "2 of 2 cell(s) failed" in p.stderr

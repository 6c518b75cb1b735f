"""The G-aware sampler: what it records, in which format, and how it
compares with py-spy's own labels."""
import json
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

import gmp
from gmp.flame import folded
from gmp.profile import Profiler

SPEEDSCOPE_LINE = re.compile(r"^(.*) (\d+)$")
PYSPY_FRAME = re.compile(r"^(.+) \((.+):(\d+)\)$")


def parked_on_chan(c):
    c.recv()


def sample_with_parked_g(mode, procs):
    prof = Profiler(mode=mode, threads=True)

    def main():
        c = gmp.Chan()
        g = gmp.go(parked_on_chan, c)
        while g.wait_reason != "chan receive":
            gmp.gosched()
        prof.sample()
        c.send(None)
        g.join()

    gmp.run(main, procs=procs)
    return prof.profile


@pytest.mark.parametrize("procs", [1, 2])
def test_wall_mode_shows_parked_g_with_wait_reason(procs):
    profile = sample_with_parked_g("wall", procs)
    stacks = list(profile.counts)
    parked = [s for s in stacks if s[-1] == "[chan receive]"]
    assert len(parked) == 1
    assert any(f.startswith("parked_on_chan (") for f in parked[0])
    assert parked[0][0].startswith("thread (")


@pytest.mark.parametrize("procs", [1, 2])
def test_cpu_mode_records_only_running_gs(procs):
    profile = sample_with_parked_g("cpu", procs)
    stacks = list(profile.counts)
    assert stacks, "the running main G must be recorded"
    assert not any("[chan receive]" in s for s in stacks)
    assert not any(any(f.startswith("parked_on_chan (") for f in s) for s in stacks)
    assert all(any(f.split(" (")[0].endswith(".main") for f in s) for s in stacks)


def test_folded_output_matches_speedscope_and_pyspy_grammars():
    profile = sample_with_parked_g("wall", 1)
    text = folded.dumps(profile)
    assert text
    for line in text.splitlines():
        m = SPEEDSCOPE_LINE.match(line)
        assert m, line
        frames = m.group(1).split(";")
        roots, code = folded.split_roots(tuple(frames))
        assert roots and roots[0].startswith("thread (")
        for f in code:
            assert PYSPY_FRAME.match(f) or (f.startswith("[") and f.endswith("]")), f


def test_bad_profiler_arguments_are_rejected():
    with pytest.raises(ValueError, match="mode"):
        Profiler(mode="gpu")
    with pytest.raises(ValueError, match="rate"):
        Profiler(rate=0)
    with pytest.raises(TypeError, match="rate"):
        Profiler(rate="fast")


SPIN = textwrap.dedent("""
    import time, gmp
    def spin(seconds):
        end = time.monotonic() + seconds
        x = 0
        while time.monotonic() < end:
            x += 1
        return x
    def main():
        spin(float(__import__("sys").argv[1]))
    gmp.run(main, procs=1)
""")


def test_gmp_profile_command_writes_folded_svg_and_speedscope(tmp_path):
    script = tmp_path / "spin.py"
    script.write_text(SPIN)
    raw = tmp_path / "out.txt"
    run = [sys.executable, "-m", "gmp", "profile", "--rate", "200", "-o", str(raw), "--", str(script), "0.5"]
    subprocess.run(run, check=True, capture_output=True)
    profile = folded.read(str(raw))
    labels = {f for s in profile.counts for f in s}
    assert any(f.startswith("spin (spin.py:") for f in labels), sorted(labels)[:10]
    svg = tmp_path / "out.svg"
    subprocess.run([sys.executable, "-m", "gmp", "flame", "svg", str(raw), "-o", str(svg)], check=True)
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg"))
    ss = tmp_path / "out.json"
    subprocess.run(run[:6] + ["--format", "speedscope", "-o", str(ss)] + run[8:], check=True, capture_output=True)
    doc = json.loads(ss.read_text())
    assert doc["shared"]["frames"] and doc["profiles"][0]["type"] == "sampled"


def test_frame_labels_match_py_spy(tmp_path):
    pyspy = shutil.which("py-spy")
    if pyspy is None:
        pytest.skip("py-spy is not installed")
    script = tmp_path / "spin.py"
    script.write_text(SPIN)
    spy_out = tmp_path / "pyspy.txt"
    r = subprocess.run([pyspy, "record", "--format", "raw", "--threads", "--rate", "200",
                        "-o", str(spy_out), "--", sys.executable, str(script), "1.0"],
                       check=False, capture_output=True, text=True)
    if r.returncode != 0 or not spy_out.exists():
        pytest.skip(f"py-spy cannot record here (ptrace not permitted?): {r.stderr.strip()[:200]}")
    gmp_out = tmp_path / "gmp.txt"
    subprocess.run([sys.executable, "-m", "gmp", "profile", "--rate", "200", "-o", str(gmp_out),
                    "--", str(script), "1.0"], check=True, capture_output=True)

    def spin_labels(path):
        p = folded.read(str(path))
        return {f for s in p.counts for f in s if f.startswith("spin (")}

    ours, theirs = spin_labels(gmp_out), spin_labels(spy_out)
    assert theirs, "py-spy recorded no spin() frame"
    # The hot loop's lines: both profilers must label them identically.
    assert ours & theirs, (ours, theirs)

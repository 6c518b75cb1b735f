"""``gmp flame diff``: canonicalisation, shares, the CI gate and its report."""

import json
import math
import random
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from gmp.flame import diff, folded
from gmp.flame.__main__ import main
from gmp.flame.folded import Profile

DATA = Path(__file__).parent / "data"

# A fixed "workload": a server thread dispatching to 8 handlers, each with 6
# leaf functions, plus a background thread.  Weights are drawn once from a
# seeded RNG, so no leaf holds more than a few percent of self time, which is
# what lets 3000-5000 samples resolve a 2 pp change (checked below).
MAIN = folded.thread_root(101, "MainThread")
BG = folded.thread_root(102, "flusher")
HOT = "parse_header (app/http.py:88)"


def _workload() -> dict[tuple, float]:
    rng = random.Random(1234)
    dist = {}
    for h in range(8):
        handler = f"handle_{h} (app/handlers.py:{10 * h + 3})"
        for leaf in range(6):
            stack = (MAIN, "<module> (server.py:40)", "serve (server.py:12)", handler, f"op_{h}_{leaf} (app/ops.py:{leaf + 1})")
            dist[stack] = rng.uniform(1, 3)
        dist[(MAIN, "<module> (server.py:40)", "serve (server.py:12)", handler)] = rng.uniform(0.5, 1)
    dist[(BG, "flush (app/log.py:7)", "write (app/log.py:19)")] = 4.0
    dist[(MAIN, "<module> (server.py:40)", "serve (server.py:12)", "handle_3 (app/handlers.py:33)", HOT)] = 1.0
    total = sum(dist.values())
    return {k: v / total for k, v in dist.items()}


WORKLOAD = _workload()


def sample(dist: dict, n: int, rng: random.Random, tid: int) -> Profile:
    """n multinomial draws from dist; thread ids differ per run, as in real runs."""
    stacks = list(dist)
    drawn = Counter(rng.choices(stacks, weights=[dist[s] for s in stacks], k=n))
    rename = {MAIN: folded.thread_root(tid, "MainThread"), BG: folded.thread_root(tid + 1, "flusher")}
    return Profile(Counter({(rename[s[0]],) + s[1:]: c for s, c in drawn.items()}))


def false_positive_bound(dist: dict, n: int, threshold_pp: float, pairs: int) -> float:
    """Union bound on P(any frame's self share grows > threshold in any pair)
    for two multinomial samples of at least n, normal approximation."""
    selves = Counter()
    for stack, p in dist.items():
        selves[stack[-1]] += p
    z = [threshold_pp / 100 / math.sqrt(2 * p * (1 - p) / n) for p in selves.values()]
    return pairs * sum(0.5 * math.erfc(zi / math.sqrt(2)) for zi in z)


def write(tmp_path: Path, name: str, profile: Profile) -> str:
    path = tmp_path / name
    folded.write(profile, str(path))
    return str(path)


def test_same_workload_passes_ten_pairs(tmp_path, capsys):
    # Not seed luck: for this workload and n >= 3000 the chance that any of
    # the 10 pairs crosses 2 pp is below 1e-3 (the largest leaf is ~3.7 %).
    assert false_positive_bound(WORKLOAD, 3000, diff.DEFAULT_FAIL_ABOVE, 10) < 1e-3
    rng = random.Random(5)
    for pair in range(10):
        base = sample(WORKLOAD, rng.randint(3000, 5000), rng, 1000 + pair)
        cand = sample(WORKLOAD, rng.randint(3000, 5000), rng, 2000 + pair)
        argv = ["diff", write(tmp_path, "b.txt", base), write(tmp_path, "c.txt", cand)]
        assert main(argv) == 0, capsys.readouterr().out
        assert capsys.readouterr().out.rstrip().endswith("PASS")


def test_injected_hot_spot_fails_and_is_named_first(tmp_path, capsys):
    rng = random.Random(7)
    hot_stack = next(s for s in WORKLOAD if s[-1] == HOT)
    hot = {s: 0.9 * p + (0.1 if s == hot_stack else 0.0) for s, p in WORKLOAD.items()}
    base = write(tmp_path, "b.txt", sample(WORKLOAD, 4000, rng, 11))
    cand = write(tmp_path, "c.txt", sample(hot, 4000, rng, 22))

    assert main(["diff", base, cand]) == 1
    report = capsys.readouterr().out
    rows = report.split("top regressions")[1].splitlines()[1:]
    assert rows[0].endswith(f"{HOT}  <- FAIL")
    assert "FAIL: 1 frame(s)" in report
    # Only the hot frame fails: every other frame shrank by ~10 % of its share.
    assert sum("<- FAIL" in row for row in report.splitlines()) == 1

    assert main(["diff", base, cand, "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["failing"] == [HOT] and result["exit_code"] == 1
    assert result["regressions"][0]["frame"] == HOT
    assert 8 < result["regressions"][0]["self_delta_pp"] < 12
    assert result["improvements"][0]["self_delta_pp"] < 0

    # A threshold above the injected growth passes the same pair.
    assert main(["diff", base, cand, "--fail-above", "15"]) == 0


def test_thresholds_are_strictly_greater():
    base = Profile.from_stacks([["a"]] * 50 + [["b"]] * 50)
    cand = Profile.from_stacks([["a"]] * 48 + [["b"]] * 52)
    assert diff.compare(base, cand, fail_above=2.0).exit_code == 0
    assert diff.compare(base, cand, fail_above=1.9).exit_code == 1


def test_prepare_canonicalises_roots_drops_empty_and_strips_lines():
    profile = Profile(
        Counter(
            {
                ('process 9:"python a.py"', "thread (123): MainThread", "f (a.py:1)"): 2,
                ('process 9:"python a.py"', "thread (123): MainThread", "f (a.py:2)"): 3,
                ('process 9:"python a.py"', "thread (123): MainThread"): 5,
                ("thread (0x7F)", "g (b.py:3)"): 1,
                (): 4,
            }
        )
    )
    assert diff.prepare(profile).counts == Counter(
        {
            ('process:"python a.py"', "thread: MainThread", "f (a.py:1)"): 2,
            ('process:"python a.py"', "thread: MainThread", "f (a.py:2)"): 3,
            ("thread", "g (b.py:3)"): 1,
        }
    )
    assert diff.prepare(profile, ignore_lines=True, drop_roots=True).counts == Counter(
        {("f (a.py)",): 5, ("g (b.py)",): 1}
    )


def test_inclusive_counts_a_recursive_frame_once_per_stack():
    self_counts, incl = diff.frame_counts(Profile.from_stacks([["r", "r", "r"], ["x"]]))
    assert incl == {"r": 1, "x": 1}
    assert self_counts == {"r": 1, "x": 1}


def test_normalises_different_totals():
    base = Profile(Counter({("a",): 100, ("b",): 300}))
    cand = Profile(Counter({("a",): 1000, ("b",): 3000}))
    result = diff.compare(base, cand)
    assert result.exit_code == 0
    assert all(f.self_delta_pp == 0 for f in result.frames)


def test_pyspy_recording_against_itself_with_new_ids(tmp_path, capsys):
    """Real py-spy file vs the same samples with other pids and tids: no change,
    and the differential SVG is all grey because roots were canonicalised."""
    text = (DATA / "pyspy_threads_subprocesses.txt").read_text()
    renumbered = re.sub(r"(process |thread \()(\d+)", lambda m: m.group(1) + str(int(m.group(2)) + 777), text)
    assert renumbered != text
    base, cand = tmp_path / "b.txt", tmp_path / "c.txt"
    base.write_text(text)
    cand.write_text(renumbered)
    out = tmp_path / "d.svg"
    assert main(["diff", str(base), str(cand), "--svg", str(out)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("PASS")
    fills = {r.get("fill") for r in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}rect")}
    assert fills == {"rgb(235,235,235)"}


def test_min_samples_guard_is_inconclusive(tmp_path, capsys):
    small = write(tmp_path, "s.txt", Profile.from_stacks([["a"]] * 10))
    big = write(tmp_path, "b.txt", Profile.from_stacks([["a"]] * 500 + [["b"]] * 500))
    assert main(["diff", small, big, "--min-samples", "100"]) == 2
    out = capsys.readouterr().out
    assert "INCONCLUSIVE: base profile has 10 samples, fewer than the 100 required" in out
    assert main(["diff", small, big, "--min-samples", "100", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["insufficient_samples"]
    # Without the guard the same pair is a plain regression.
    assert main(["diff", small, big]) == 1


def test_profile_with_only_empty_stacks_is_inconclusive(tmp_path):
    idle = write(tmp_path, "i.txt", Profile(Counter({("thread (1): MainThread",): 40})))
    busy = write(tmp_path, "b.txt", Profile.from_stacks([["a"]] * 40))
    assert main(["diff", idle, busy]) == 2


def test_bad_input_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("no count here\n")
    assert main(["diff", str(bad), str(bad)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_noise_note_for_small_samples():
    base = Profile.from_stacks([["a"]] * 10 + [["b"]] * 10)
    cand = Profile.from_stacks([["a"]] * 11 + [["b"]] * 9)
    text = diff.compare(base, cand).format_text(5)
    assert "FAIL" in text and "may be sampling noise" in text


@pytest.mark.parametrize("command", ["svg", "speedscope"])
def test_render_commands(tmp_path, command):
    out = tmp_path / "out"
    src = str(DATA / "pyspy_plain.txt")
    assert main([command, src, "-o", str(out)]) == 0
    if command == "svg":
        ET.parse(out)
    else:
        assert json.loads(out.read_text())["profiles"]

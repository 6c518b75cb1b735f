"""speedscope JSON: the schema's required fields and types, checked by hand.

The required fields below are transcribed from
https://www.speedscope.app/file-format-schema.json (no network in tests):
FileFormat.File requires $schema, shared{frames}, profiles; a SampledProfile
requires type, name, unit, startValue, endValue, samples, weights; a Frame
requires name and may have file, line, col.
"""

import json
from collections import Counter
from pathlib import Path

from gmp.flame import folded, speedscope
from gmp.flame.folded import Profile

DATA = Path(__file__).parent / "data"
UNITS = {"none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes"}


def check_schema(doc: dict) -> None:
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = doc["shared"]["frames"]
    for frame in frames:
        assert isinstance(frame["name"], str)
        assert set(frame) <= {"name", "file", "line", "col"}
        assert isinstance(frame.get("file", ""), str)
        assert isinstance(frame.get("line", 0), int)
    assert doc["profiles"]
    for p in doc["profiles"]:
        assert p["type"] == "sampled"
        assert isinstance(p["name"], str)
        assert p["unit"] in UNITS
        assert isinstance(p["startValue"], (int, float)) and isinstance(p["endValue"], (int, float))
        assert len(p["samples"]) == len(p["weights"])
        for sample in p["samples"]:
            assert all(isinstance(i, int) and 0 <= i < len(frames) for i in sample)
        assert p["endValue"] - p["startValue"] == sum(p["weights"])


def test_pyspy_threads_file_gives_one_profile_per_thread_root():
    profile = folded.read(str(DATA / "pyspy_threads_subprocesses.txt"))
    doc = json.loads(speedscope.dumps(profile, name="run"))
    check_schema(doc)
    names = [p["name"] for p in doc["profiles"]]
    assert 'process 12744:"python app.py";thread (12751): sleeper' in names
    assert sum(sum(p["weights"]) for p in doc["profiles"]) == profile.total()
    # Root frames name the profile and are not repeated inside samples.
    assert not any(folded.is_root(f["name"]) for f in doc["shared"]["frames"])


def test_samples_are_root_first_and_frames_split():
    profile = Profile(Counter({("a (x.py:1)", "b (y.py)", "c"): 3, ("a (x.py:1)",): 2}))
    doc = speedscope.to_speedscope(profile, name="file.txt")
    check_schema(doc)
    frames = doc["shared"]["frames"]
    assert frames[:3] == [{"name": "a", "file": "x.py", "line": 1}, {"name": "b", "file": "y.py"}, {"name": "c"}]
    (p,) = doc["profiles"]
    assert p["name"] == "file.txt"
    labels = {tuple(frames[i]["name"] for i in s): w for s, w in zip(p["samples"], p["weights"])}
    assert labels == {("a", "b", "c"): 3, ("a",): 2}


def test_custom_grouping():
    profile = Profile.from_stacks([["g1", "f"], ["g2", "f"], ["g2", "h"]])
    doc = speedscope.to_speedscope(profile, group_by=lambda s: (s[0], s[1:]))
    check_schema(doc)
    assert {p["name"]: sum(p["weights"]) for p in doc["profiles"]} == {"g1": 1, "g2": 2}

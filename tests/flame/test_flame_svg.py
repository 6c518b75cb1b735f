"""SVG flame graphs: well-formed XML, one rect per node, widths ∝ counts."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gmp.flame import folded, svg
from gmp.flame.folded import Profile

NS = {"s": "http://www.w3.org/2000/svg"}
DATA = Path(__file__).parent / "data"


def frames(text: str) -> list[dict]:
    """Each drawn frame: its label (from the tooltip), count, rect geometry, fill, text."""
    root = ET.fromstring(text.encode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    out = []
    for g in root.iterfind("s:g", NS):
        title = g.find("s:title", NS).text
        rect = g.find("s:rect", NS)
        m = re.match(r"(.*) \((\d+) samples, ", title, re.DOTALL)
        out.append(
            {
                "label": m.group(1),
                "count": int(m.group(2)),
                "title": title,
                "x": float(rect.get("x")),
                "y": float(rect.get("y")),
                "width": float(rect.get("width")),
                "fill": rect.get("fill"),
                "text": g.find("s:text", NS).text or "",
            }
        )
    assert len(root.findall(".//s:rect", NS)) == len(out)  # no rect besides frames
    return out


def prefixes(profile: Profile) -> set:
    return {stack[:i] for stack in profile.counts for i in range(1, len(stack) + 1)}


PROFILE = Profile.from_stacks(
    [["<module> (a.py:1)", "f (a.py:5)", "g (b.py:9)"]] * 6
    + [["<module> (a.py:1)", "f (a.py:5)"]] * 2
    + [["<module> (a.py:1)", "h (a.py:7)"]] * 3
    + [["other (c.py:2)"]] * 1
)


def test_one_rect_per_node_widths_proportional():
    drawn = frames(svg.render(PROFILE, "t", min_width=0))
    assert len(drawn) == len(prefixes(PROFILE)) == 5
    per_sample = (svg.WIDTH - 2 * svg.PAD) / PROFILE.total()
    for f in drawn:  # widths are written with two decimals
        assert f["width"] == pytest.approx(f["count"] * per_sample, abs=0.006)
    counts = {f["label"]: f["count"] for f in drawn}
    assert counts == {"<module> (a.py:1)": 11, "f (a.py:5)": 8, "g (b.py:9)": 6, "h (a.py:7)": 3, "other (c.py:2)": 1}


def test_children_sit_inside_parents_and_orientations_differ():
    icicle = {f["label"]: f for f in frames(svg.render(PROFILE, min_width=0))}
    flame = {f["label"]: f for f in frames(svg.render(PROFILE, orientation="flame", min_width=0))}
    mod, f, h = icicle["<module> (a.py:1)"], icicle["f (a.py:5)"], icicle["h (a.py:7)"]
    assert mod["x"] <= f["x"] and f["x"] + f["width"] <= h["x"] + 1e-6
    assert h["x"] + h["width"] <= mod["x"] + mod["width"] + 0.02
    assert icicle["f (a.py:5)"]["y"] > icicle["<module> (a.py:1)"]["y"]  # roots on top
    assert flame["f (a.py:5)"]["y"] < flame["<module> (a.py:1)"]["y"]  # roots at the bottom
    with pytest.raises(ValueError):
        svg.render(PROFILE, orientation="sideways")


def test_labels_are_escaped_clipped_and_coloured_by_function():
    wide = "w" * 400
    profile = Profile.from_stacks([["<module> (a.py:1)", "f (a.py:5)"]] * 50 + [["<module> (a.py:2)", wide]] * 20)
    drawn = {f["label"]: f for f in frames(svg.render(profile, "<&>", min_width=0))}
    assert drawn["<module> (a.py:1)"]["text"] == "<module> (a.py:1)"
    clipped = drawn[wide]["text"]
    assert clipped.endswith("..") and len(clipped) * svg.CHAR_WIDTH <= drawn[wide]["width"]
    # Same function on another line: same colour.
    assert drawn["<module> (a.py:1)"]["fill"] == drawn["<module> (a.py:2)"]["fill"]


def test_min_width_prunes_tiny_subtrees():
    profile = Profile.from_stacks([["big", "child"]] * 100_000 + [["tiny", "child"]])
    drawn = frames(svg.render(profile))
    assert {f["label"] for f in drawn} == {"big", "child"}


def test_real_pyspy_file_renders():
    profile = folded.read(str(DATA / "pyspy_threads_subprocesses.txt"))
    assert len(frames(svg.render(profile, min_width=0))) == len(prefixes(profile))


def test_empty_profile_renders():
    assert frames(svg.render(Profile())) == []


def test_diff_colours_red_grew_blue_shrank_grey_same():
    base = Profile.from_stacks([["main", "a"]] * 50 + [["main", "b"]] * 50)
    cand = Profile.from_stacks([["main", "a"]] * 40 + [["main", "b"]] * 40 + [["main", "hot"]] * 20)
    drawn = {f["label"]: f for f in frames(svg.render_diff(base, cand, min_width=0))}
    assert drawn["hot"]["fill"] == "rgb(255,0,0)"  # the largest change: full intensity
    assert drawn["a"]["fill"] == drawn["b"]["fill"]
    r, g, b = map(int, re.findall(r"\d+", drawn["a"]["fill"]))
    assert b == 255 and r == g > 0  # shrank 10 pp of the 20 pp maximum: half-blue
    assert drawn["main"]["fill"] == "rgb(235,235,235)"
    assert "+20.00 pp" in drawn["hot"]["title"]
    # Widths follow the candidate.
    assert drawn["hot"]["count"] == 20 and drawn["main"]["count"] == 100

"""A small, self-contained SVG flame graph renderer for folded profiles.

Why not a library: the issue asked for a maintained one if it fits.  None
does.  ``pyinferno`` (last release 0.2.6, 2022) ships cp311-only Rust wheels
and renders pyinstrument sessions, not folded text; ``flameprof`` (0.4, 2018)
renders cProfile stats; neither has a differential mode, and Brendan Gregg's
``flamegraph.pl`` / ``inferno`` need Perl or a Rust toolchain.  A flame graph
is a few dozen lines of layout, so we own it and test it.

Layout.  Stacks merge into a tree keyed by call path; each node is one
``<rect>`` whose width is its inclusive count over the total, children packed
left to right in label order (as flamegraph.pl does: alphabetical, not
temporal).  ``orientation="icicle"`` puts roots on top (py-spy's default, easier
to read), ``"flame"`` at the bottom.  Nodes narrower than ``min_width`` pixels
are left out with their subtrees (their samples still count in their parent),
which keeps huge profiles to a viewable size; ``min_width=0`` draws every node.
Labels are cut to what fits (about 0.6 em a character) with ``..``; every
frame has a ``<title>`` tooltip with the full label, count and share.  No
script: the file opens in any browser or image viewer and diffs as text.

Colours.  Normal graphs use a warm palette picked by a CRC of the function
name (not the line), so one function keeps one colour across lines, runs and
files.  ``render_diff`` lays out the *candidate* and colours each node by the
change in its self share at that call path between base and candidate: red
grew, blue shrank, grey unchanged, intensity proportional to the change over
the largest change in the graph.  Frames that exist only in the base cannot be
drawn in the candidate's layout; the text report of ``flame diff`` lists them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape  # not xml.sax.saxutils: it drags in urllib, http and ssl

from .folded import Profile, Stack, parse_frame

WIDTH = 1200
FRAME_HEIGHT = 16
FONT_SIZE = 11
CHAR_WIDTH = 0.6 * FONT_SIZE
PAD = 10
TITLE_SPACE = 40


@dataclass
class _Node:
    label: str
    path: Stack
    total: int = 0
    self_count: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _build_tree(profile: Profile) -> _Node:
    root = _Node("all", ())
    for stack, count in profile.counts.items():
        node = root
        node.total += count
        for label in stack:
            node = node.children.setdefault(label, _Node(label, node.path + (label,)))
            node.total += count
        node.self_count += count
    return root


def _hot_colour(label: str) -> str:
    h = zlib.crc32(parse_frame(label).name.encode())
    r = 205 + (h & 0xFF) * 50 // 255
    g = ((h >> 8) & 0xFF) * 230 // 255
    b = ((h >> 16) & 0xFF) * 55 // 255
    return f"rgb({r},{g},{b})"


def _diff_colour(delta: float, max_abs: float) -> str:
    if not delta or not max_abs:
        return "rgb(235,235,235)"
    c = round(235 * (1 - abs(delta) / max_abs))
    return f"rgb(255,{c},{c})" if delta > 0 else f"rgb({c},{c},255)"


def _fit(label: str, width: float) -> str:
    chars = int((width - 6) / CHAR_WIDTH)
    if chars < 3:
        return ""
    return label if len(label) <= chars else label[: chars - 2] + ".."


def _render(
    root: _Node,
    title: str,
    subtitle: str,
    orientation: str,
    min_width: float,
    style: Callable[[_Node, int], tuple[str, str]],
) -> str:
    """Lay out the tree under ``root``; ``style(node, total)`` gives (fill, tooltip)."""
    if orientation not in ("icicle", "flame"):
        raise ValueError(f"orientation must be 'icicle' or 'flame', not {orientation!r}")
    total = root.total
    scale = (WIDTH - 2 * PAD) / total if total else 0.0
    placed: list[tuple[_Node, float, int]] = []  # node, x in samples, depth

    def place(node: _Node, x: int, depth: int) -> None:
        for label in sorted(node.children):
            child = node.children[label]
            if child.total * scale >= min_width:
                placed.append((child, x, depth))
                place(child, x, depth + 1)
            x += child.total

    place(root, 0, 0)
    depth = 1 + max((d for _, _, d in placed), default=-1)
    height = TITLE_SPACE + depth * FRAME_HEIGHT + PAD
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" style="background:#fff">'),
        (f"<style>text{{font-family:Verdana,sans-serif;font-size:{FONT_SIZE}px}}"
        " .f text{pointer-events:none} .f rect{stroke:#fff;stroke-width:0.5}"
        " .f:hover rect{stroke:#000}</style>"),
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="16">{escape(title)}</text>',
        f'<text x="{WIDTH / 2}" y="32" text-anchor="middle" fill="#666">{escape(subtitle)}</text>',
    ]
    for node, x, d in placed:
        row = d if orientation == "icicle" else depth - 1 - d
        px, py, w = PAD + x * scale, TITLE_SPACE + row * FRAME_HEIGHT, node.total * scale
        fill, tip = style(node, total)
        out.append(
            f'<g class="f"><title>{escape(tip)}</title>'
            f'<rect x="{px:.2f}" y="{py}" width="{w:.2f}" height="{FRAME_HEIGHT - 1}"'
            f' fill="{escape(fill)}"/>'
            f'<text x="{px + 3:.2f}" y="{py + FRAME_HEIGHT - 4}">{escape(_fit(node.label, w))}</text></g>'
        )
    out.append("</svg>\n")
    return "\n".join(out)


def render(
    profile: Profile,
    title: str = "Flame graph",
    *,
    orientation: str = "icicle",
    min_width: float = 0.1,
) -> str:
    """An SVG flame graph of ``profile`` as a string."""

    def style(node: _Node, total: int) -> tuple[str, str]:
        return _hot_colour(node.label), f"{node.label} ({node.total} samples, {100 * node.total / total:.2f}%)"

    return _render(_build_tree(profile), title, f"{profile.total()} samples", orientation, min_width, style)


def render_diff(
    base: Profile,
    cand: Profile,
    title: str = "Differential flame graph",
    *,
    orientation: str = "icicle",
    min_width: float = 0.1,
) -> str:
    """The candidate's flame graph coloured by self-share change from base."""
    base_total, cand_total = base.total(), cand.total()
    tree = _build_tree(cand)

    def delta(node: _Node) -> float:
        # A node's self count is the count of the stack that ends at it.
        before = base.counts[node.path] / base_total if base_total else 0.0
        return node.self_count / cand_total - before

    max_abs = max((abs(delta(n)) for n in _walk(tree)), default=0.0)

    def style(node: _Node, total: int) -> tuple[str, str]:
        d = delta(node)
        return _diff_colour(d, max_abs), (
            f"{node.label} ({node.total} samples, {100 * node.total / total:.2f}%;"
            f" self share {100 * (node.self_count / total - d):.2f}% -> {100 * node.self_count / total:.2f}%,"
            f" {100 * d:+.2f} pp)"
        )

    subtitle = f"base {base_total} samples, candidate {cand_total} samples; red grew, blue shrank"
    return _render(tree, title, subtitle, orientation, min_width, style)


def _walk(node: _Node):
    for child in node.children.values():
        yield child
        yield from _walk(child)

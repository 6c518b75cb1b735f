"""speedscope's JSON file format, from a folded Profile.

Schema: https://www.speedscope.app/file-format-schema.json.  What we emit::

    {"$schema": "https://www.speedscope.app/file-format-schema.json",
     "name": ..., "exporter": "gmp",
     "shared": {"frames": [{"name": ..., "file": ..., "line": ...}, ...]},
     "profiles": [{"type": "sampled", "name": ..., "unit": "none",
                   "startValue": 0, "endValue": <total weight>,
                   "samples": [[frame index, ...], ...],   # root first
                   "weights": [count, ...]}, ...]}

Decisions:

* One sampled profile per group.  By default a group is a stack's leading
  root frames (``process ...`` and ``thread ...``), so a py-spy ``--threads``
  file or a per-M gmp profile opens as one tab per thread; the root frames are
  dropped from the samples since the profile name already says them.  Stacks
  without roots go to a group named after the file.  ``group_by`` lets the
  sampler group by anything else (per G group, per wait reason).
* Folded files carry counts, not times, so ``unit`` is ``"none"`` and each
  distinct stack is one sample weighted by its count.  That keeps the file the
  size of the folded file rather than of the sample stream; speedscope's
  left-heavy and sandwich views only need the weights.  Its time-order view is
  meaningless for folded input either way (folded files have no order).
* ``file`` and ``line`` are split out of py-spy's ``name (file:line)`` label
  and omitted when the label has none, as the schema makes them optional.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from .folded import Profile, Stack, parse_frame, split_roots

SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"

GroupBy = Callable[[Stack], tuple[str, Stack]]


def group_by_roots(default_name: str) -> GroupBy:
    """Group by leading root frames; stacks without them go to ``default_name``."""

    def group(stack: Stack) -> tuple[str, Stack]:
        roots, code = split_roots(stack)
        return (";".join(roots) if roots else default_name), code

    return group


def to_speedscope(profile: Profile, name: str = "gmp", group_by: GroupBy | None = None) -> dict:
    """The speedscope document for ``profile`` as a JSON-ready dict."""
    group_by = group_by or group_by_roots(name)
    frames: list[dict] = []
    index: dict[str, int] = {}
    groups: dict[str, tuple[list[list[int]], list[int]]] = {}
    for stack in sorted(profile.counts):
        group, code = group_by(stack)
        samples, weights = groups.setdefault(group, ([], []))
        sample = []
        for label in code:
            if label not in index:
                index[label] = len(frames)
                frames.append({k: v for k, v in parse_frame(label)._asdict().items() if v is not None})
            sample.append(index[label])
        samples.append(sample)
        weights.append(profile.counts[stack])
    return {
        "$schema": SCHEMA_URL,
        "name": name,
        "exporter": "gmp",
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "name": group,
                "unit": "none",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
            for group, (samples, weights) in groups.items()
        ],
    }


def dumps(profile: Profile, name: str = "gmp", group_by: GroupBy | None = None) -> str:
    return json.dumps(to_speedscope(profile, name, group_by), separators=(",", ":"))

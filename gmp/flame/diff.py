"""``gmp flame diff BASE CAND``: compare two folded profiles as a CI gate.

Steps, each for a reason:

1. Canonicalise root frames (``prepare``).  Thread ids and pids change every
   run, so ``thread (123): MainThread`` becomes ``thread: MainThread`` and
   ``process 9:"cmd"`` becomes ``process:"cmd"``; with ``drop_roots`` they go
   altogether (use it when thread names differ between runs too).
2. Drop empty stacks: samples with no code frame (an idle thread between
   calls, ``thread (1): MainThread 2``) say nothing about code and would
   dilute every share by however idle each run happened to be.
3. Optionally strip line numbers (``ignore_lines``) so an edit that moves code
   inside a function does not read as one frame vanishing and another appearing.
4. Normalise each side by its own total: runs never collect the same number of
   samples, so only shares are comparable.
5. Per frame label (all call paths together): *self* share = samples whose leaf
   is the frame; *inclusive* share = samples whose stack contains the frame,
   counted once per stack even when it recurses (otherwise a recursive frame's
   inclusive share could exceed 100 %).
6. Gate on self share only: a hot spot shows up as self growth in exactly one
   frame, while inclusive growth repeats it in every caller up to the root.
   Exit 1 when any frame's self share grows by more than ``fail_above``
   percentage points (default 2.0), else 0.

Exit code 2 means "inconclusive": either profile has fewer samples than
``min_samples`` (or none at all) after step 2.  It wins over 1 because a gate
on too few samples is noise, and CI should say so rather than pass or fail.

Sampling noise.  Under a multinomial model the standard error of a self-share
difference is ``sqrt(p_b(1-p_b)/n_b + p_c(1-p_c)/n_c)``; every row reports it
as ``sigma_pp``.  Real samples are correlated in time, so the true noise is
larger; treat sigma as a floor.  For a frame holding 30 % of 3000 samples per
side sigma is about 1.2 pp, so the default 2 pp gate would fire by chance on
a few percent of identical runs: collect more samples (sigma shrinks as
1/sqrt(n)) or raise ``--fail-above`` for profiles dominated by one frame.  The
text report flags a failing frame whose growth is under 3 sigma.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from .folded import Profile, Stack, canonical_root, is_root, split_roots, strip_line

DEFAULT_FAIL_ABOVE = 2.0


def prepare(profile: Profile, *, ignore_lines: bool = False, drop_roots: bool = False) -> Profile:
    """Steps 1-3 of the module docstring."""

    def canonical(stack: Stack) -> Stack | None:
        roots, code = split_roots(stack)
        if not code:
            return None
        if ignore_lines:
            code = tuple(strip_line(label) for label in code)
        if drop_roots:
            return code
        return tuple(canonical_root(label) for label in roots) + code

    return profile.map_stacks(canonical)


def frame_counts(profile: Profile) -> tuple[Counter[str], Counter[str]]:
    """Self and inclusive sample counts of every frame label in ``profile``."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    for stack, count in profile.counts.items():
        if stack:
            self_counts[stack[-1]] += count
        for label in set(stack):
            incl_counts[label] += count
    return self_counts, incl_counts


def _delta_pp(before: int, base_total: int, after: int, cand_total: int) -> float:
    # One division of exact integers, so a delta that equals the threshold
    # compares equal (52/100 - 50/100 in floats is 2.0000000000000018 pp).
    return 100 * (after * base_total - before * cand_total) / (base_total * cand_total)


@dataclass(frozen=True)
class FrameDelta:
    """One frame's self and inclusive sample counts in both profiles."""

    frame: str
    base_total: int
    cand_total: int
    base_self: int
    cand_self: int
    base_incl: int
    cand_incl: int

    @property
    def self_delta_pp(self) -> float:
        return _delta_pp(self.base_self, self.base_total, self.cand_self, self.cand_total)

    @property
    def incl_delta_pp(self) -> float:
        return _delta_pp(self.base_incl, self.base_total, self.cand_incl, self.cand_total)

    @property
    def sigma_pp(self) -> float:
        """Standard error of the self delta under a multinomial model."""
        pb, pc = self.base_self / self.base_total, self.cand_self / self.cand_total
        return 100 * math.sqrt(pb * (1 - pb) / self.base_total + pc * (1 - pc) / self.cand_total)

    def to_json(self) -> dict:
        return {
            "frame": self.frame,
            "self_base_pct": 100 * self.base_self / self.base_total,
            "self_cand_pct": 100 * self.cand_self / self.cand_total,
            "self_delta_pp": self.self_delta_pp,
            "incl_base_pct": 100 * self.base_incl / self.base_total,
            "incl_cand_pct": 100 * self.cand_incl / self.cand_total,
            "incl_delta_pp": self.incl_delta_pp,
            "sigma_pp": self.sigma_pp,
            "self_samples": [self.base_self, self.cand_self],
            "incl_samples": [self.base_incl, self.cand_incl],
        }


@dataclass(frozen=True)
class DiffResult:
    base_samples: int
    cand_samples: int
    frames: tuple[FrameDelta, ...]  # every frame, largest self growth first
    fail_above: float
    min_samples: int

    @property
    def insufficient(self) -> list[str]:
        """Why the comparison is inconclusive; empty when it is not."""
        floor = max(self.min_samples, 1)
        return [
            f"{side} profile has {n} samples, fewer than the {floor} required"
            for side, n in (("base", self.base_samples), ("candidate", self.cand_samples))
            if n < floor
        ]

    @property
    def failing(self) -> list[FrameDelta]:
        return [f for f in self.frames if f.self_delta_pp > self.fail_above]

    @property
    def exit_code(self) -> int:
        if self.insufficient:
            return 2
        return 1 if self.failing else 0

    def regressions(self, top: int) -> list[FrameDelta]:
        return [f for f in self.frames if f.self_delta_pp > 0][:top]

    def improvements(self, top: int) -> list[FrameDelta]:
        return [f for f in reversed(self.frames) if f.self_delta_pp < 0][:top]

    def to_json(self, top: int) -> dict:
        return {
            "base_samples": self.base_samples,
            "cand_samples": self.cand_samples,
            "fail_above_pp": self.fail_above,
            "min_samples": self.min_samples,
            "insufficient_samples": self.insufficient,
            "failing": [f.frame for f in self.failing],
            "exit_code": self.exit_code,
            "regressions": [f.to_json() for f in self.regressions(top)],
            "improvements": [f.to_json() for f in self.improvements(top)],
        }

    def format_text(self, top: int) -> str:
        lines = [
            (f"flame diff: base {self.base_samples} samples, candidate {self.cand_samples} samples;"
            f" shares are of each side's total"),
            f"gate: any frame's self share growing by more than {self.fail_above:.2f} pp fails",
        ]
        if self.insufficient:
            lines += [f"INCONCLUSIVE: {why}" for why in self.insufficient]
            return "\n".join(lines) + "\n"
        for heading, rows in (
            ("top regressions", self.regressions(top)),
            ("top improvements", self.improvements(top)),
        ):
            lines += ["", f"{heading} (self delta, self base -> cand, inclusive delta, sigma):"]
            lines += [_row(f, f.self_delta_pp > self.fail_above) for f in rows] or ["  (none)"]
        lines.append("")
        if self.failing:
            lines.append(f"FAIL: {len(self.failing)} frame(s) grew by more than {self.fail_above:.2f} pp")
            noisy = [f for f in self.failing if f.self_delta_pp < 3 * f.sigma_pp]
            if noisy:
                lines.append(
                    f"note: {len(noisy)} of them grew by less than 3 sigma;"
                    " that may be sampling noise (collect more samples)"
                )
        else:
            lines.append("PASS")
        return "\n".join(lines) + "\n"


def _row(f: FrameDelta, failing: bool) -> str:
    return (
        f"  {f.self_delta_pp:+7.2f} pp  {100 * f.base_self / f.base_total:6.2f}%"
        f" -> {100 * f.cand_self / f.cand_total:6.2f}%"
        f"  incl {f.incl_delta_pp:+7.2f} pp  sigma {f.sigma_pp:4.2f}  {f.frame}"
        + ("  <- FAIL" if failing else "")
    )


def compare(
    base: Profile,
    cand: Profile,
    *,
    fail_above: float = DEFAULT_FAIL_ABOVE,
    min_samples: int = 0,
) -> DiffResult:
    """Compare two profiles already passed through ``prepare``."""
    nb, nc = base.total(), cand.total()
    if not nb or not nc:
        return DiffResult(nb, nc, (), fail_above, min_samples)
    b_self, b_incl = frame_counts(base)
    c_self, c_incl = frame_counts(cand)
    frames = [
        FrameDelta(label, nb, nc, b_self[label], c_self[label], b_incl[label], c_incl[label])
        for label in b_incl.keys() | c_incl.keys()
        # A root is never a leaf after prepare; its inclusive share is its thread's.
        if not is_root(label)
    ]
    frames.sort(key=lambda f: (-f.self_delta_pp, -f.incl_delta_pp, f.frame))
    return DiffResult(nb, nc, tuple(frames), fail_above, min_samples)

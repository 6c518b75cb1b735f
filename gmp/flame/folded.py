"""py-spy's raw folded stack format: frame labels, root frames, parse and write.

The format (``py-spy record --format raw``) is one record per distinct stack::

    <frame>;<frame>;...;<frame> <count>

Frames are root first.  Facts below were checked against py-spy 0.4.3 output
(tests/flame/data/pyspy_*.txt are real recordings) and its source
(src/flamegraph.rs, src/python_spy.rs, src/stack_trace.rs):

* A code frame is ``name (file:line)``.  py-spy falls back to ``name (file)``
  when the line is 0 (``--nolineno``, or a native frame without line info) and
  to a bare ``name`` when the file name is empty.  ``name`` is the code
  object's qualified name on 3.11+ (``Thread.run``).
* ``file`` is py-spy's *short* file name unless ``--full-filenames``: the path
  with every leading directory removed except the chain of enclosing package
  directories (those holding an ``__init__.py``).  So
  ``.../lib/python3.11/importlib/resources/_common.py`` becomes
  ``importlib/resources/_common.py`` and ``/tmp/app.py`` becomes ``app.py``.
  (It is *not* "relative to the longest sys.path entry"; that was older
  py-spy behaviour.)  Pseudo files such as ``<string>`` and
  ``<frozen importlib._bootstrap>`` pass through unchanged.
* With ``--threads`` the root frame of every stack is ``thread (TID)``, or
  ``thread (TID): NAME`` when py-spy knows the Python thread name.  TID is the
  native thread id in decimal, except on macOS (and when no native id is known)
  where it is the pthread id as ``0x`` + upper-case hex.
* With ``--subprocesses`` every stack starts with one ``process PID:"CMDLINE"``
  frame per process from the outermost parent down, before the thread frame.
  CMDLINE is the argv joined by spaces, unescaped: it may hold ``;``, ``"`` and
  even newlines (``python -c "a\\nb"`` spans two physical lines), so the
  parser reads process frames with their own rule (see ``_split_stack``).
* A stack with no code frames is still written: ``thread (12744): MainThread 1``
  or, without ``--threads``, an empty stack, i.e. a line `` 1``.
* py-spy writes records in hash order; ``dumps`` sorts them so output is
  deterministic and diffable.

Every line gmp writes for stacks without process frames matches speedscope's
folded grammar ``^(.*) (\\d+)$`` with frames split on ``;``.
"""

from __future__ import annotations

import functools
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

Stack = tuple[str, ...]

_RECORD = re.compile(r"(.*) (\d+)", re.DOTALL)
_PROCESS_OPEN = re.compile(r'process (\d+):"')
_THREAD = re.compile(r"thread \((0x[0-9A-Fa-f]+|\d+)\)(?:: (.*))?", re.DOTALL)
_PROCESS = re.compile(r'process (\d+):"(.*)"', re.DOTALL)
_CODE_WITH_LINE = re.compile(r"(.+) \((.+):(\d+)\)")
_CODE_NO_LINE = re.compile(r"(.+) \((.+)\)")


class Frame(NamedTuple):
    """A frame label split into its parts; file and line are None if absent."""

    name: str
    file: str | None = None
    line: int | None = None


@functools.lru_cache(maxsize=4096)
def short_filename(filename: str) -> str:
    """py-spy's short file name: keep only the enclosing package directories.

    Cached like py-spy's own table, since a sampler asks for the same few
    files thousands of times and each miss costs a stat per directory level.
    """
    prefix = filename
    while True:
        parent = os.path.dirname(prefix)
        if parent == prefix:  # "/" or "": nothing left to climb
            break
        prefix = parent
        if not os.path.exists(os.path.join(parent, "__init__.py")):
            break
    if not prefix:
        return filename
    return filename[len(prefix):].lstrip(os.sep)


def frame_label(name: str, filename: str, line: int, *, full_filenames: bool = False) -> str:
    """The label py-spy prints for one code frame."""
    if filename and not full_filenames:
        filename = short_filename(filename)
    if line:
        return f"{name} ({filename}:{line})"
    if filename:
        return f"{name} ({filename})"
    return name


def thread_root(tid: int, name: str | None = None) -> str:
    """py-spy's ``--threads`` root frame for a native thread id."""
    return f"thread ({tid}): {name}" if name else f"thread ({tid})"


def process_root(pid: int, cmdline: str) -> str:
    """py-spy's ``--subprocesses`` root frame."""
    return f'process {pid}:"{cmdline}"'


def is_root(label: str) -> bool:
    """True for a thread or process root frame (not a code frame)."""
    return bool(_THREAD.fullmatch(label) or _PROCESS.fullmatch(label))


def split_roots(stack: Stack) -> tuple[Stack, Stack]:
    """Split a stack into its leading root frames and its code frames."""
    i = 0
    while i < len(stack) and is_root(stack[i]):
        i += 1
    return stack[:i], stack[i:]


def canonical_root(label: str) -> str:
    """Drop the run-specific id from a root frame so runs can be compared.

    ``thread (123): MainThread`` -> ``thread: MainThread``,
    ``thread (0x7F0A)`` -> ``thread``, ``process 9:"python a.py"`` ->
    ``process:"python a.py"``; any other label is returned unchanged.
    """
    m = _THREAD.fullmatch(label)
    if m:
        return f"thread: {m.group(2)}" if m.group(2) else "thread"
    m = _PROCESS.fullmatch(label)
    if m:
        return f'process:"{m.group(2)}"'
    return label


def parse_frame(label: str) -> Frame:
    """Split a label into name, file and line following py-spy's grammar.

    Root frames are returned whole as the name: ``thread (1): Thread-1 (idle)``
    would otherwise read as a function ``thread (1): Thread-1`` in file ``idle``.
    """
    if not is_root(label):
        m = _CODE_WITH_LINE.fullmatch(label)
        if m:
            return Frame(m.group(1), m.group(2), int(m.group(3)))
        m = _CODE_NO_LINE.fullmatch(label)
        if m:
            return Frame(m.group(1), m.group(2))
    return Frame(label)


def strip_line(label: str) -> str:
    """``name (file:line)`` -> ``name (file)``; other labels unchanged."""
    frame = parse_frame(label)
    if frame.line is None:
        return label
    return f"{frame.name} ({frame.file})"


@dataclass
class Profile:
    """Sample counts per stack (tuples of frame labels, root first)."""

    counts: Counter[Stack] = field(default_factory=Counter)

    @classmethod
    def from_stacks(cls, stacks: Iterable[Sequence[str]]) -> Profile:
        """One sample per stack, as a sampler produces them."""
        return cls(Counter(tuple(s) for s in stacks))

    def add(self, stack: Sequence[str], count: int = 1) -> None:
        if count < 0:
            raise ValueError(f"negative sample count {count}")
        if count:
            self.counts[tuple(stack)] += count

    def merge(self, other: Profile) -> Profile:
        """A new profile with both profiles' samples."""
        return Profile(self.counts + other.counts)

    def total(self) -> int:
        return sum(self.counts.values())

    def map_stacks(self, fn: Callable[[Stack], Sequence[str] | None]) -> Profile:
        """A new profile with ``fn(stack)`` for every stack; equal results merge.

        ``fn`` may return None to drop the stack's samples.
        """
        out = Profile()
        for stack, count in self.counts.items():
            new = fn(stack)
            if new is not None:
                out.add(new, count)
        return out


def _split_stack(text: str) -> list[str] | None:
    """Split the stack part of a record into frames; None if a process
    frame's quoted command line is still open (it continues on the next line).

    A process frame's command line ends at the first ``"`` followed by ``;``
    or by the end of the stack.  A command line that itself holds ``";``
    cannot be told apart from that; py-spy does not escape it either.
    """
    frames: list[str] = []
    pos = 0
    while m := _PROCESS_OPEN.match(text, pos):
        end = m.end()
        while True:
            end = text.find('"', end)
            if end < 0:
                return None
            if end + 1 == len(text) or text[end + 1] == ";":
                break
            end += 1
        frames.append(text[pos:end + 1])
        pos = end + 2
        if pos > len(text):
            return frames
    if text[pos:]:
        frames.extend(text[pos:].split(";"))
    return frames


def loads(text: str) -> Profile:
    """Parse folded text (py-spy's or ours).  Raises ValueError on bad input."""
    profile = Profile()
    pending: list[str] = []  # physical lines of a record with an open process cmdline
    # Split on "\n" only: py-spy writes "\n", and str.splitlines() would also
    # break labels at \r, \x85, \u2028 and friends.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line and not pending:
            continue
        pending.append(line)
        record = "\n".join(pending)
        m = _RECORD.fullmatch(record)
        frames = _split_stack(m.group(1)) if m else None
        if frames is not None:
            profile.add(frames, int(m.group(2)))
            pending.clear()
        elif _split_stack(record) is not None:  # not just an open cmdline
            raise ValueError(f"line {lineno}: not a folded record: {line!r}")
    if pending:
        raise ValueError(f"unterminated process frame at end of input: {pending[0]!r}")
    return profile


def dumps(profile: Profile) -> str:
    """Folded text, one record per stack, sorted; '' for an empty profile.

    Raises ValueError for a stack whose record would not parse back to itself
    (a code frame holding ``;`` or a newline, an empty label, ...): the format
    has no escapes, so refusing is the only way to never write a lie.
    """
    records = []
    for stack in sorted(profile.counts):
        record = f"{';'.join(stack)} {profile.counts[stack]}\n"
        try:
            faithful = loads(record).counts == Counter({stack: profile.counts[stack]})
        except ValueError:
            faithful = False
        if not faithful:
            raise ValueError(f"stack cannot be written as folded text: {stack!r}")
        records.append(record)
    return "".join(records)


def read(path: str) -> Profile:
    with open(path, encoding="utf-8") as f:
        return loads(f.read())


def write(profile: Profile, path: str) -> None:
    # newline="\n": the same bytes as py-spy on every platform.
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(dumps(profile))

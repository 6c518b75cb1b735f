"""py-spy raw folded format: grammar, real py-spy files, round trips.

tests/flame/data/pyspy_threads_subprocesses.txt and tests/flame/data/pyspy_plain.txt are
real, unedited py-spy 0.4.3 output (CPython 3.11.7, Linux) of
tests/flame/data/pyspy_app.py, recorded with

    py-spy record --format raw --threads --idle --subprocesses -r 20 -o ... -- python pyspy_app.py
    py-spy record --format raw --idle -r 20 -o ... -- python pyspy_app.py

The first holds process roots whose command line spans two physical lines,
named and unnamed thread roots, and records with no code frame.
"""

import re
import threading
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gmp.flame import folded
from gmp.flame.folded import Frame, Profile

DATA = Path(__file__).parent / "data"
THREADS = DATA / "pyspy_threads_subprocesses.txt"
PLAIN = DATA / "pyspy_plain.txt"

SPEEDSCOPE_LINE = re.compile(r"^(.*) (\d+)$")
PYSPY_FRAME = re.compile(r"^(.+) \((.+):(\d+)\)$")


def gmp_profile() -> Profile:
    """A profile as the gmp sampler would build it: per-thread roots, real files."""
    main = folded.thread_root(4242, "MainThread")
    m1 = folded.thread_root(4243, "gmp-M1")
    run = folded.frame_label("Thread.run", threading.__file__, 982)
    work = folded.frame_label("work", __file__, 10)
    leaf = folded.frame_label("leaf", __file__, 20)
    return Profile.from_stacks(
        [[main, work, leaf]] * 5 + [[main, work]] * 2 + [[m1, run, work, leaf]] * 3
    )


def test_written_lines_match_speedscope_and_pyspy_grammars():
    text = folded.dumps(gmp_profile())
    lines = text.splitlines()
    assert len(lines) == 3
    for line in lines:
        m = SPEEDSCOPE_LINE.match(line)
        assert m, line
        root, *code = m.group(1).split(";")
        assert folded.is_root(root)
        for frame in code:
            assert PYSPY_FRAME.match(frame), frame


def test_thread_and_process_roots_use_pyspy_spelling():
    assert folded.thread_root(12744, "MainThread") == "thread (12744): MainThread"
    assert folded.thread_root(12750) == "thread (12750)"
    assert folded.process_root(12744, "python app.py") == 'process 12744:"python app.py"'
    # Every one of these spellings occurs in the real recording.
    text = THREADS.read_text()
    for label in ("thread (12744): MainThread", "thread (12750);", 'process 12744:"python app.py"'):
        assert label in text


def test_frame_label_matches_pyspy_short_filenames():
    # Both labels occur verbatim in the real recording.
    text = THREADS.read_text()
    label = folded.frame_label("Thread.run", threading.__file__, 982)
    assert label == "Thread.run (threading.py:982)" and label in text
    import importlib.resources._adapters as adapters

    label = folded.frame_label("CompatibilityFiles._native", adapters.__file__, 155)
    assert label == "CompatibilityFiles._native (importlib/resources/_adapters.py:155)"
    assert label in text


def test_frame_label_fallbacks_and_full_filenames():
    assert folded.frame_label("f", "/x/y.py", 0) == "f (y.py)"
    assert folded.frame_label("f", "", 0) == "f"
    assert folded.frame_label("f", "<string>", 3) == "f (<string>:3)"
    assert folded.frame_label("f", "/x/y.py", 3, full_filenames=True) == "f (/x/y.py:3)"


def test_short_filename_keeps_package_chain(tmp_path):
    pkg = tmp_path / "pkg" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").touch()
    (pkg / "__init__.py").touch()
    assert folded.short_filename(str(pkg / "mod.py")) == "pkg/sub/mod.py"
    assert folded.short_filename(str(tmp_path / "script.py")) == "script.py"
    # A directory without __init__.py breaks the chain even above a package.
    (tmp_path / "plain").mkdir()
    assert folded.short_filename(str(tmp_path / "plain" / "m.py")) == "m.py"
    assert folded.short_filename("<frozen importlib._bootstrap>") == "<frozen importlib._bootstrap>"


def test_real_pyspy_threads_file_is_accepted():
    raw = THREADS.read_text()
    profile = folded.read(str(THREADS))
    # Every record's count is the number at the end of a physical line.
    assert profile.total() == sum(int(m) for m in re.findall(r" (\d+)$", raw, re.MULTILINE))
    assert len(profile.counts) == len(re.findall(r" \d+$", raw, re.MULTILINE))
    roots = Counter(folded.split_roots(s)[0] for s in profile.counts)
    child = 'process 12750:"/root/.pyenv/versions/3.11.7/bin/python -c import app\napp.spin(0.5)"'
    assert ('process 12744:"python app.py"', child, "thread (12750)") in roots
    assert ('process 12744:"python app.py"', "thread (12751): sleeper") in roots
    # Records with roots only (idle thread, no Python frame) survive parsing.
    empty = [s for s in profile.counts if not folded.split_roots(s)[1]]
    assert ('process 12744:"python app.py"', "thread (12744): MainThread") in empty
    assert ('process 12744:"python app.py"', child, "thread (12750)") in empty


def test_real_pyspy_plain_file_round_trips():
    profile = folded.read(str(PLAIN))
    assert profile.total() == 32
    assert folded.loads(folded.dumps(profile)) == profile
    assert folded.loads(folded.dumps(folded.read(str(THREADS)))) == folded.read(str(THREADS))


def test_hand_written_pyspy_variants_are_accepted():
    # Hand-written from py-spy's format code (src/flamegraph.rs, main.rs):
    # an empty stack without --threads is written as "" + " " + count; a
    # macOS thread id is {:#X}; --nolineno drops ":line"; native frames may
    # have no file at all.
    text = " 3\nthread (0x7FF8A1B2C3D4): MainThread;f (a.py) 2\nthread (0x1A);native_fn 1\n"
    profile = folded.loads(text)
    assert profile.counts == Counter(
        {(): 3, ("thread (0x7FF8A1B2C3D4): MainThread", "f (a.py)"): 2, ("thread (0x1A)", "native_fn"): 1}
    )
    assert folded.loads(folded.dumps(profile)) == profile


def test_process_cmdline_with_semicolons_quotes_and_newlines():
    root = folded.process_root(7, 'python -c "import a; a.b()\nx = 5"')
    profile = Profile.from_stacks([[root, "thread (7)", "f (a.py:1)"]] * 4)
    assert folded.loads(folded.dumps(profile)) == profile


@pytest.mark.parametrize("bad", ["f (a.py:1)", "f (a.py:1) 1.5", 'process 1:"unterminated 5'])
def test_malformed_input_is_rejected(bad):
    with pytest.raises(ValueError):
        folded.loads(bad + "\n")


def test_unwritable_stacks_are_refused():
    for stack in [("a;b",), ("a\nb 3",), ("",), ("thread (1)", 'process 1:"\n"')]:
        with pytest.raises(ValueError):
            folded.dumps(Profile(Counter({stack: 1})))


def test_parse_frame():
    assert folded.parse_frame("f (a/b.py:12)") == Frame("f", "a/b.py", 12)
    assert folded.parse_frame("f (a.py)") == Frame("f", "a.py")
    assert folded.parse_frame("native") == Frame("native")
    # A thread name with parentheses is not a file name.
    assert folded.parse_frame("thread (1): Thread-1 (idle)") == Frame("thread (1): Thread-1 (idle)")


def test_canonical_root():
    assert folded.canonical_root("thread (123): MainThread") == "thread: MainThread"
    assert folded.canonical_root("thread (0x7F0A)") == "thread"
    assert folded.canonical_root('process 9:"python a.py"') == 'process:"python a.py"'
    assert folded.canonical_root("f (a.py:1)") == "f (a.py:1)"


def test_profile_helpers():
    a = Profile.from_stacks([["x"], ["x"], ["x", "y"]])
    b = Profile.from_stacks([["x", "y"]])
    merged = a.merge(b)
    assert merged.counts == Counter({("x",): 2, ("x", "y"): 2})
    assert merged.total() == 4 and a.total() == 3  # merge does not mutate
    with pytest.raises(ValueError):
        a.add(["x"], -1)


# Code frames from py-spy's grammar, with names and files free of the
# characters the format cannot carry in a code frame.
_word = st.text(st.characters(blacklist_characters=";\n\r", blacklist_categories=("Cs",)), min_size=1)
_code_frame = st.builds(lambda n, f, line: f"{n} ({f}:{line})", _word, _word, st.integers(1, 10**6))
# py-spy's root order: process frames (outermost first), then the thread.
_processes = st.lists(
    st.builds(folded.process_root, st.integers(1, 2**22), st.text().filter(lambda c: '"' not in c)), max_size=2
)
_threads = st.lists(st.builds(folded.thread_root, st.integers(1, 2**63), st.none() | _word), max_size=1)
_stack = st.builds(
    lambda p, t, c: tuple(p) + tuple(t) + tuple(c), _processes, _threads, st.lists(_code_frame, max_size=6)
)
_profiles = st.dictionaries(_stack, st.integers(1, 10**9), max_size=8).map(lambda d: Profile(Counter(d)))


@given(_profiles)
def test_round_trip_well_formed(profile):
    assert folded.loads(folded.dumps(profile)) == profile


@given(st.dictionaries(st.lists(st.text(), max_size=4).map(tuple), st.integers(1, 99), max_size=5))
def test_arbitrary_labels_round_trip_or_are_refused(counts):
    profile = Profile(Counter(counts))
    try:
        text = folded.dumps(profile)
    except ValueError:
        return
    assert folded.loads(text) == profile


def test_file_round_trip(tmp_path):
    path = tmp_path / "p.txt"
    folded.write(gmp_profile(), str(path))
    assert folded.read(str(path)) == gmp_profile()

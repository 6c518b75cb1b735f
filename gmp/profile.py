"""A sampling profiler that sees every G, in py-spy's folded format.

py-spy reads each thread's frame stack, so on a greenlet runtime it sees
only the greenlet running on each thread, and never the Gs parked on a
channel, a lock or a socket.  gmp knows every G, so this sampler walks them:

* ``mode="cpu"``: each sample records, for every M, the G running on it (the
  M's thread's Python stack).  Idle Ms are not recorded, as py-spy leaves out
  idle threads by default.
* ``mode="wall"``: also every parked or runnable G, from its greenlet's
  suspended frame, with a leaf frame naming why it waits (``[chan receive]``,
  ``[runnable]``), so the profile shows where time is spent waiting.

Stacks are root first with py-spy's labels (``name (file:line)``, short file
names unless ``full_filenames``).  With ``threads=True`` each stack starts with
py-spy's ``--threads`` root (``thread (TID): NAME``, TID the native thread id
of the M that runs or owns the G); with ``g_roots=True`` a ``G (ID): NAME``
frame follows it, one subtree per G.  The result is a
``gmp.flame.folded.Profile``: write it as raw folded text, speedscope JSON
or SVG (gmp.flame).

The sampler is a daemon thread that takes the GIL ``rate`` times a second;
at 100 Hz that is a few hundred microseconds per second of run time for a
handful of Ms (see the README for the measured overhead).  A thread asking
for the GIL waits up to the switch interval (5 ms by default) for a busy M
to let go, which would cap the sample rate near 200 Hz and skew when
samples land; while profiling, the interval is lowered to a quarter of the
sample period, and restored afterwards.  That costs nothing by itself: the
GIL changes hands only when the sampler asks for it.

A known bias, inherent to sampling from inside the process: reading a
running G's stack needs the GIL, which the sampler gets either when the M
releases it (a blocking or GIL-free C call) or when the switch interval
forces a hand-over.  Python code that runs only in short bursts between
frequent GIL-releasing calls (e.g. a few microseconds of Python around each
``hashlib`` call) is therefore attributed to the next releasing call.  Pure
Python code and code that blocks are sampled where they are.  ``gmp profile
--py-spy`` records the same run with py-spy, which reads stacks from outside
the process without the GIL (no such bias) but cannot see parked Gs; compare
the two when a profile is dominated by GIL-releasing calls.
"""
import sys
import threading
import time

from gmp._ext import _core
from gmp.flame import folded, speedscope, svg

MODES = ("cpu", "wall")


class Profiler:
    """``with Profiler(rate=100, mode="cpu") as prof: ...``, then
    ``prof.profile`` (or ``prof.write(path, format)``)."""

    def __init__(self, rate=100, mode="cpu", threads=True, g_roots=False, full_filenames=False):
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise TypeError(f"rate must be a number of samples per second, not {type(rate).__name__}")
        if not 0 < rate <= 10000:
            raise ValueError(f"rate must be in (0, 10000] Hz, got {rate!r}")
        if mode not in MODES:
            raise ValueError(f"unknown profiler mode {mode!r}; known modes: {', '.join(MODES)}")
        self.rate = rate
        self.mode = mode
        self.threads = threads
        self.g_roots = g_roots
        self.full_filenames = full_filenames
        self.profile = folded.Profile()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = None
        self._labels = {}

    def start(self):
        if self._thread is not None:
            raise RuntimeError("Profiler already started")
        self._saved_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._saved_interval, 0.25 / self.rate))
        self._thread = threading.Thread(target=self._loop, name="gmp-profiler", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            sys.setswitchinterval(self._saved_interval)
        return self.profile

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def write(self, path, format="raw"):
        write_profile(self.profile, path, format)

    def _loop(self):
        interval = 1.0 / self.rate
        deadline = time.monotonic()
        while not self._stop.is_set():
            deadline += interval
            delay = deadline - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            if delay <= -interval:
                deadline = time.monotonic()    # fell behind: don't burst
            self.sample()

    def sample(self):
        """Record one sample of every M (and in wall mode every G)."""
        if not _core.running():
            return
        frames = sys._current_frames()
        threads = {t.ident: t for t in threading.enumerate()}
        running_ids = set()
        home_tid = {}
        for mid, tid, g in _core.running_gs():
            home_tid[mid] = tid
            if g is None:
                continue
            running_ids.add(g.id)
            self._add(tid, threads, g, frames.get(tid), None)
        if self.mode == "wall":
            for g in _core.all_gs():
                if g.id in running_ids or g.home_p is None:
                    continue
                reason = g.wait_reason or g.state
                self._add(home_tid.get(g.home_p), threads, g, g.frame, f"[{reason}]")
        self.samples += 1

    def _add(self, tid, threads, g, frame, leaf):
        stack = []
        while frame is not None:
            stack.append(self._label(frame.f_code, frame.f_lineno))
            frame = frame.f_back
        stack.reverse()
        if leaf is not None:
            stack.append(leaf)
        roots = []
        if self.threads and tid is not None:
            t = threads.get(tid)
            roots.append(folded.thread_root(getattr(t, "native_id", None) or tid,
                                            t.name if t is not None else None))
        if self.g_roots:
            roots.append(f"G ({g.id}): {g.name}")
        self.profile.add(tuple(roots) + tuple(stack))

    def _label(self, code, line):
        key = (code, line)
        label = self._labels.get(key)
        if label is None:
            label = folded.frame_label(code.co_qualname, code.co_filename, line,
                                       full_filenames=self.full_filenames)
            self._labels[key] = label
        return label


FORMATS = ("raw", "speedscope", "svg")


def write_profile(profile, path, format="raw"):
    """Write a Profile as raw folded text, speedscope JSON or SVG."""
    if format == "raw":
        text = folded.dumps(profile)
    elif format == "speedscope":
        text = speedscope.dumps(profile)
    elif format == "svg":
        text = svg.render(profile)
    else:
        raise ValueError(f"unknown profile format {format!r}; known formats: {', '.join(FORMATS)}")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def run_script_profiled(argv, profiler, duration=None):
    """Run a script (argv[0]) as ``gmp run`` does, under `profiler`."""
    from gmp.monkey import run_script

    with profiler:
        try:
            run_script(argv[0], argv[1:], duration=duration)
        except SystemExit as e:
            if e.code not in (None, 0):
                raise


SUFFIX = {"raw": "txt", "speedscope": "json", "svg": "svg"}


def _profile_cmd(args):
    from gmp.cli import script_argv

    argv = script_argv(args, "profile")
    if argv is None:
        return 2
    out = args.output or f"profile.{SUFFIX[args.format]}"
    if args.py_spy:
        import shutil
        import subprocess
        exe = shutil.which("py-spy")
        if exe is None:
            print("gmp profile: py-spy is not installed (pip install py-spy)", file=sys.stderr)
            return 2
        cmd = [exe, "record", "--threads", "--format", "raw", "--rate", str(int(args.rate)), "-o", out]
        if args.duration:
            cmd += ["--duration", str(int(args.duration))]
        return subprocess.call(cmd + ["--", sys.executable, "-m", "gmp", "run", *argv])
    prof = Profiler(rate=args.rate, mode=args.mode, g_roots=args.g_roots,
                    full_filenames=args.full_filenames)
    run_script_profiled(argv, prof, args.duration)
    write_profile(prof.profile, out, args.format)
    print(f"gmp profile: {prof.samples} samples, {prof.profile.total()} stacks -> {out}", file=sys.stderr)
    return 0


def add_parser(subparsers):
    from gmp.cli import add_script_command

    p = add_script_command(
        subparsers, "profile", _profile_cmd, help="run a script on gmp under the G-aware sampler",
        description="Run SCRIPT on gmp and record a flame profile of every G.")
    p.add_argument("-o", "--output", help="output file (default profile.txt/.json/.svg)")
    p.add_argument("--format", choices=FORMATS, default="raw")
    p.add_argument("--rate", type=float, default=100, help="samples per second (default 100)")
    p.add_argument("--mode", choices=MODES, default="cpu",
                   help="cpu: running Gs only; wall: parked Gs too, with their wait reason")
    p.add_argument("--duration", type=float, help="stop the script after this many seconds")
    p.add_argument("--g-roots", action="store_true", help="one subtree per G under its thread")
    p.add_argument("--full-filenames", action="store_true", help="full paths in frame labels")
    p.add_argument("--py-spy", action="store_true",
                   help="record with py-spy itself (--threads --format raw) for comparison")
    return p

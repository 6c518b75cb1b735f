"""G dumps (Go's goroutine dump), also on a signal.

``gmp.dump(file=None)`` writes every live G, running or parked, the way Go
prints goroutines on SIGQUIT::

    goroutine 7 [chan receive, 3.2s]:
    P1, name 'worker', created by goroutine 1
    worker(...)
            /srv/app.py:12
    ...

The header gives the state, or the wait reason of a parked G with the time
it has been parked (coarse clock).  Stacks are innermost first, as in Go.
A running G's stack comes from its thread (``sys._current_frames``); a
parked or runnable one's from its greenlet's suspended frame (``gr_frame``).
Gs that never started have no stack yet and show their target function.
After the Gs come the gmp.net lifecycle counters of each live listener and
of the dialer (gmp.tcpstats), when there are any.

``GMPDEBUG=dumpsignal=USR1`` (gmp.settings) makes gmp.run() install a
handler that dumps to stderr on that signal without stopping the process.
"""
import signal
import sys

from gmp import tcpstats
from gmp._ext import _core


def _stack_lines(frame):
    lines = []
    while frame is not None:
        code = frame.f_code
        lines.append(f"{code.co_name}(...)")
        lines.append(f"\t{code.co_filename}:{frame.f_lineno}")
        frame = frame.f_back
    return lines


def format_g(g, thread_frames, running_on):
    """The dump block of one G, as a list of lines."""
    state = g.wait_reason
    if state is not None:
        state = f"{state}, {g.wait_seconds:.1f}s"
    else:
        state = g.state
    lines = [f"goroutine {g.id} [{state}]:"]
    where = f"P{g.home_p}" if g.home_p is not None else "not started"
    parent = f", created by goroutine {g.parent_id}" if g.parent_id else ""
    lines.append(f"{where}, name {g.name!r}{parent}")
    if g.id in running_on:
        tid = running_on[g.id]
        frame = sys._getframe(2) if tid == _current_thread_ident() else thread_frames.get(tid)
    else:
        frame = g.frame
    if frame is None and g.state == "new":
        fn = getattr(g, "name", "?")
        lines.append(f"{fn}(...)  [not started]")
    else:
        lines.extend(_stack_lines(frame) or ["\t(no Python frames: parked in compiled code)"])
    return lines


def _current_thread_ident():
    import threading
    return threading.get_ident()


def dump(file=None):
    """Write every live G with its stack to `file` (default stderr)."""
    out = file if file is not None else sys.stderr
    if not _core.running():
        out.write("gmp: no runtime is running\n")
        return
    running_on = {g.id: tid for _, tid, g in _core.running_gs() if g is not None}
    thread_frames = sys._current_frames()
    blocks = []
    for g in sorted(_core.all_gs(), key=lambda g: g.id):
        blocks.append("\n".join(format_g(g, thread_frames, running_on)))
    net = tcpstats.format_snapshots()
    if net:
        blocks.append("\n".join(["gmp.net connections:", *net]))
    out.write("\n\n".join(blocks) + "\n")
    out.flush()


def install_dump_signal(name):
    """Install the GMPDEBUG dumpsignal handler for signal `name` ("SIGUSR1",
    checked by gmp.settings); returns a function that restores the previous
    one."""
    signum = getattr(signal, name)
    previous = signal.signal(signum, lambda *_: dump())
    return lambda: signal.signal(signum, previous)

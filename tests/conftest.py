"""Shared fixtures for the gmp test suite.

* ``procs``: every scheduling primitive runs with 1, 2 and 4 Ms, because the
  bugs that matter (a bound G woken on the wrong thread, a lost wake-up across
  Ps) only show with several Ms.
* ``grun``: ``gmp.run`` with ``procs`` bound.
* ``redis_port``: a real redis-server for the drop-in tests.
* a hang guard: a runtime bug usually shows as a hang, so each test gets an
  alarm that raises ``Hang`` in the main thread.  The signal handler runs in
  whatever G is current on M0, which may just die of it, so the alarm repeats
  every ``HANG_REPEAT`` seconds until the test ends (a livelock of many Gs
  unwinds G by G).  Should the main thread never run Python again (parked in
  ``epoll_wait`` and the runtime retries on EINTR), a faulthandler backstop
  dumps every thread and ends the run.
  ``@pytest.mark.hang_timeout(seconds)`` changes the limit for one test.
"""

import faulthandler
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

# The test modules live in one folder per area (core, net, monkey, ...) and
# import the shared modules here (helpers, patched) by name.  Only tests/
# goes on sys.path, never the repository root: gmp must come from the
# install being tested (editable, or the wheel in .ci/run's second run).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gmp

DEFAULT_HANG_TIMEOUT = 60.0
BACKSTOP_GRACE = 30.0
HANG_REPEAT = 0.2


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: a long-running test (deselect with -m 'not slow')"
    )
    config.addinivalue_line(
        "markers", "hang_timeout(seconds): per-test limit of the hang guard"
    )


class Hang(BaseException):
    """The test ran past its hang guard: the runtime is most likely stuck.
    A BaseException, so that ``except Exception`` loops in Gs let it through."""


def _on_alarm(signum, frame):
    raise Hang("test ran past its hang guard; the runtime is probably stuck")


@pytest.fixture(autouse=True)
def hang_guard(request):
    marker = request.node.get_closest_marker("hang_timeout")
    limit = marker.args[0] if marker else DEFAULT_HANG_TIMEOUT
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit, HANG_REPEAT)
    faulthandler.dump_traceback_later(limit + BACKSTOP_GRACE, exit=True, file=sys.__stderr__)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(params=[1, 2, 4], ids=lambda n: f"procs{n}")
def procs(request):
    return request.param


@pytest.fixture
def grun(procs):
    """``gmp.run`` with the parametrized number of Ms."""
    return functools.partial(gmp.run, procs=procs)


REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


@pytest.fixture
def redis_port(tmp_path):
    """A real redis-server on a free loopback port, for this test only."""
    if not os.path.exists(REDIS):
        pytest.skip("redis-server is not installed (.ci/run installs the Debian package)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(tmp_path), "--maxclients", "4000"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 10
        while True:                       # bounded: until it accepts
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(10).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > end or p.poll() is not None:
                    raise
                time.sleep(0.01)
        yield port
    finally:
        p.terminate()
        p.wait(timeout=10)

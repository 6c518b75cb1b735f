import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gmp  # noqa: E402


def wait_until(pred, what, timeout=5.0):
    """Polls pred() between gosched()s (inside a G) until it holds; bounded
    in time.  Synchronises on observable state, never on a sleep."""
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        if gmp.current() is not None:
            gmp.gosched()
        else:
            time.sleep(0.0005)


def parked(g, reason="IO wait"):
    return lambda: g.wait_reason == reason


@pytest.fixture(params=[1, 2, 4], ids=lambda n: f"procs{n}")
def procs(request):
    return request.param


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

import os
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

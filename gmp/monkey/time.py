"""gmp.monkey.time: ``time.sleep`` is gmp.sleep inside a G (the stdlib's
outside one)."""
import time

import gmp
from gmp._ext import _core

_current = _core.current
_real_sleep = time.sleep


def sleep(seconds):
    """time.sleep that parks only the G when called inside one."""
    if _current() is None:
        return _real_sleep(seconds)
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    gmp.sleep(seconds)

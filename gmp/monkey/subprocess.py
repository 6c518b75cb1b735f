"""gmp.monkey.subprocess: ``os.waitpid`` without WNOHANG runs on the
gmp.blocking pool inside a G, so ``Popen.wait``/``run``/``call``/
``communicate`` park only the G.  ``communicate()`` waits on its pipes
with ``subprocess._PopenSelector``, a selectors class bound when subprocess
is imported - usually before patching (``gmp run`` imports it itself) - so
patch_subprocess() replaces that name with gmp.monkey.select.GSelector
rather than relying on the patched ``selectors`` module."""
import os

from gmp._ext import _core
from gmp.blocking import blocking

_current = _core.current
_real_waitpid = os.waitpid


def waitpid(pid, options):
    # subprocess looks os.waitpid up at each call: Popen.wait() without a
    # timeout (and run(), call(), communicate() after the pipes close) block
    # in waitpid(pid, 0); a helper thread makes that park only the G.  With
    # WNOHANG it never blocks, and wait(timeout) polls with WNOHANG and
    # time.sleep, which is gmp.sleep once patched.
    if options & os.WNOHANG or _current() is None:
        return _real_waitpid(pid, options)
    return blocking(_real_waitpid, pid, options)

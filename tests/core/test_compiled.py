"""The hot paths are compiled extension code, not Python."""
import importlib.machinery

import gmp
from gmp._ext import _core


def test_core_is_an_extension_module():
    assert isinstance(_core.__loader__, importlib.machinery.ExtensionFileLoader)
    assert _core.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def test_runtime_types_are_extension_types():
    # G, P and M carry the run queues (runq/boundq/inbox), the timer heap
    # and the scheduler state; Chan the channel buffer and wait queues.
    # Extension types defined in the module have no instance __dict__.
    for t in (_core.G, _core.P, _core.M, _core.Chan, _core.Mutex, _core.Timeout,
              _core.TimerFunc, _core.WaitList):
        assert t.__module__ == "gmp._ext._core", t
        assert t.__dictoffset__ == 0, t


def test_public_api_uses_the_compiled_core():
    assert gmp.Chan is _core.Chan and gmp.G is _core.G
    for fn in (gmp.go, gmp.select, gmp.sleep, gmp.gosched, gmp.current):
        assert type(fn).__name__ == "cython_function_or_method", fn

"""The objects patch_all() installs in threading, _thread and signal carry
the stdlib's module and names (reprs, pydoc, pickling by reference, the
module's __all__), and lock types cannot be instantiated, as _thread.lock."""
from patched import run_patched


def test_patched_objects_look_like_the_stdlib(tmp_path):
    out = run_patched(tmp_path, """
    import _thread, inspect, pickle, signal, threading, unittest
    from test import support
    import gmp.monkey
    assert threading.Thread is not gmp.monkey.original("threading", "Thread")
    t = threading.Thread(target=lambda: None, name="w")
    assert repr(t).startswith("<Thread(w, initial)>"), repr(t)
    for obj in (threading.Thread, threading.Timer, threading.local):
        assert pickle.loads(pickle.dumps(obj)) is obj, obj
    assert threading.get_ident.__module__ == "_thread"
    support.check__all__(unittest.TestCase(), threading, ("threading", "_thread"),
                         extra={"ThreadError"}, not_exported={"currentThread", "activeCount"})
    for name in dir(signal):
        value = getattr(signal, name)
        if inspect.isroutine(value) and not inspect.isbuiltin(value):
            assert value.__module__ == "signal", name
    lock = threading.Lock()
    try:
        type(lock)()
        raise AssertionError("lock type instantiated")
    except TypeError as e:
        assert str(e) == f"cannot create '{type(lock).__module__}.{type(lock).__qualname__}' instances", e
    try:
        lock.acquire(timeout=threading.TIMEOUT_MAX * 2)
        raise AssertionError("no OverflowError")
    except OverflowError:
        pass
    with threading.RLock():          # the Python RLock, on the factory's locks
        pass
    print("ok")
    """)
    assert out.split() == ["ok"]

"""_thread.interrupt_main() under patch_all: the signal's handler runs and
its exception (KeyboardInterrupt by default) is raised in the main G, as
CPython raises it in the main thread, whichever G or M calls it."""
import pytest
from patched import run_patched


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_interrupt_main_from_a_thread_raises_in_the_main_g(tmp_path, procs):
    out = run_patched(tmp_path, """
    import _thread, signal, threading
    ends = []
    def call_interrupt():
        _thread.interrupt_main()
        ends.append("caller went on")       # the caller itself is not interrupted
    t = threading.Thread(target=call_interrupt)
    try:
        t.start()
        t.join()
        print("not raised")
    except KeyboardInterrupt:
        print("raised in main")
    t.join()
    print(ends == ["caller went on"])
    # From the main G: at once.  A handler's own exception is what arrives.
    try:
        _thread.interrupt_main()
        print("not raised")
    except KeyboardInterrupt:
        print("raised at once")
    def handler(signum, frame):
        raise LookupError(signum)
    signal.signal(signal.SIGUSR1, handler)
    t = threading.Thread(target=_thread.interrupt_main, args=(signal.SIGUSR1,))
    try:
        t.start()
        t.join()
    except LookupError as e:
        print("handler's", e.args[0] == signal.SIGUSR1)
    # A signal Python does not handle: nothing happens.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    _thread.interrupt_main(signal.SIGUSR1)
    for bad in (-1, signal.NSIG):
        try:
            _thread.interrupt_main(bad)
        except ValueError as e:
            print("ValueError", "out of range" in str(e))
    """, procs=procs)
    assert out.split() == ["raised", "in", "main", "True", "raised", "at", "once", "handler's", "True",
                           "ValueError", "True", "ValueError", "True"]

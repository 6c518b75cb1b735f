"""A signal handler's exception is raised in the main G, as CPython raises
it in the main thread: an alarm aborts the main G's blocking wait, and
Ctrl-C's KeyboardInterrupt can be caught by the script."""
import pytest
from gmprun import gmp_run


@pytest.mark.parametrize("procs", [1, 2])
def test_alarm_handler_exception_interrupts_a_blocking_select(tmp_path, procs):
    p = gmp_run(tmp_path, """
        import selectors, signal, socket, time
        class Interrupted(Exception):
            pass
        def handler(signum, frame):
            raise Interrupted(signum)
        signal.signal(signal.SIGALRM, handler)
        rd, wr = socket.socketpair()
        sel = selectors.DefaultSelector()
        sel.register(rd, selectors.EVENT_READ)
        t0 = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        try:
            sel.select(30)
        except Interrupted as e:
            print("interrupted", e.args[0] == signal.SIGALRM, time.monotonic() - t0 < 5)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.setitimer(signal.ITIMER_REAL, 0)
        import os
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
        except KeyboardInterrupt:
            print("caught", time.monotonic() - t0 < 10)
    """, procs=procs, timeout=60)
    assert p.stderr == ""
    assert p.stdout.split() == ["interrupted", "True", "True", "caught", "True"]


def test_handler_has_run_when_the_main_gs_raise_signal_returns(tmp_path):
    p = gmp_run(tmp_path, """
        import signal, gmp
        seen = []
        signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(gmp.current().id))
        signal.raise_signal(signal.SIGUSR1)
        print(len(seen) == 1 and seen[0] != gmp.current().id)   # ran, in its own G
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            signal.raise_signal(signal.SIGINT)
            print("not raised")
        except KeyboardInterrupt:
            print("raised")
    """)
    assert p.stderr == ""
    assert p.stdout.split() == ["True", "raised"]

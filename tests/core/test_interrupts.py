"""Ctrl-C and sys.exit() stop the runtime, as they stop a plain program."""
import subprocess
import sys
import textwrap

import pytest

import gmp


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_keyboardinterrupt_or_systemexit_in_a_g_stops_the_runtime(procs, exc):
    log = []

    def raiser():
        raise exc()

    def sleeper(started):
        try:
            started.set()
            gmp.Chan().recv()
        finally:
            log.append("cleaned up")

    def main():
        started = gmp.Event()
        gmp.go(sleeper, started)
        started.wait()
        gmp.go(raiser).join()
        gmp.Chan().recv()          # never woken: the runtime stops instead

    with pytest.raises(exc):
        gmp.run(main, procs=procs)
    assert log == ["cleaned up"]


@pytest.mark.parametrize("procs", [1, 2])
def test_sigint_while_m0_is_idle_raises_keyboardinterrupt_from_run(tmp_path, procs):
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(f"""
        import _thread, os, signal, time, gmp
        def main():
            # A plain OS thread delivers SIGINT while M0 sleeps in epoll_wait
            # (the main G waits for a timer far away).
            _thread.start_new_thread(lambda: (time.sleep(0.2), os.kill(os.getpid(), signal.SIGINT)), ())
            gmp.sleep(30)
        try:
            gmp.run(main, procs={procs})
        except KeyboardInterrupt:
            print("interrupted")
    """))
    r = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "interrupted"

"""G dumps: every G, running or parked, with state, wait reason and stack."""
import io
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

import gmp

HEADER = re.compile(r"^goroutine (\d+) \[([^\]]+)\]:$", re.MULTILINE)


def parked_in_recv(c):
    c.recv()


def sleeper():
    gmp.sleep(30)


@pytest.mark.parametrize("procs", [1, 2])
def test_dump_lists_running_and_parked_gs_with_stacks(procs):
    out = io.StringIO()

    def main():
        c = gmp.Chan()
        g1 = gmp.go(parked_in_recv, c)
        g2 = gmp.go(sleeper)
        while g1.wait_reason is None or g2.wait_reason is None:
            gmp.gosched()
        gmp.dump(out)
        c.send(1)
        g2.kill()
        return g1.id, g2.id

    id1, id2 = gmp.run(main, procs=procs)
    text = out.getvalue()
    headers = {int(i): state for i, state in HEADER.findall(text)}
    assert headers[1] == "running"
    assert headers[id1].startswith("chan receive, ")
    assert headers[id2].startswith("sleep, ")
    blocks = {int(b.split(" ", 2)[1]): b for b in text.split("\n\n") if b.startswith("goroutine ")}
    assert "parked_in_recv(...)" in blocks[id1] and "created by goroutine 1" in blocks[id1]
    assert "sleeper(...)" in blocks[id2]
    assert "main(...)" in blocks[1]


def test_dump_outside_a_runtime_says_so():
    out = io.StringIO()
    gmp.dump(out)
    assert "no runtime" in out.getvalue()


def test_dump_on_signal_without_stopping(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent("""
        import os, signal, gmp
        def waiter(c):
            c.recv()
        def main():
            c = gmp.Chan()
            gmp.go(waiter, c)
            gmp.gosched()
            os.kill(os.getpid(), signal.SIGUSR1)
            gmp.gosched()
            c.send("done")
            print("still running")
        gmp.run(main, procs=1)
    """))
    env = dict(os.environ, GMPDEBUG="dumpsignal=USR1")
    r = subprocess.run([sys.executable, str(script)], env=env, check=False, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "still running" in r.stdout
    assert re.search(r"^goroutine 2 \[chan receive, [\d.]+s\]:$", r.stderr, re.MULTILINE), r.stderr
    assert "waiter(...)" in r.stderr


def test_bad_dump_signal_is_rejected(monkeypatch):
    from gmp.debug import install_dump_signal
    monkeypatch.setenv("GMPDEBUG", "dumpsignal=NOPE")
    with pytest.raises(ValueError, match="dumpsignal must be a signal name, got 'NOPE'"):
        gmp.run(lambda: None)
    restore = install_dump_signal("SIGUSR2")
    try:
        assert signal.getsignal(signal.SIGUSR2) not in (signal.SIG_DFL, None)
    finally:
        restore()

"""subprocess.communicate()/run(capture_output=True) park only the G, even
though subprocess was imported (binding its _PopenSelector) before
patching, as ``gmp run`` always does."""
import pytest
from gmprun import gmp_run


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_communicate_overlaps_a_ticker_g(tmp_path, procs):
    out = gmp_run(tmp_path, """
        import subprocess, sys, time, gmp
        from gmp.monkey.select import GSelector
        assert subprocess._PopenSelector is GSelector
        ticks = 0
        def ticker():
            global ticks
            while True:
                ticks += 1
                time.sleep(0.01)
        gmp.go(ticker)
        # The child answers only after 0.5 s: communicate() waits on its
        # pipes all that time, and the ticker on the same M must keep going.
        child = "import sys, time; time.sleep(0.5); sys.stdout.write(sys.stdin.read().upper())"
        p = subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        before = ticks
        out, _ = p.communicate("hello")
        during = ticks - before
        before = ticks
        r = subprocess.run([sys.executable, "-c", "import time; time.sleep(0.3); print('ok')"],
                           capture_output=True, text=True)
        print(out, during >= 10, r.stdout.strip(), ticks - before >= 5)
    """, procs=procs)
    assert out.stdout.split() == ["HELLO", "True", "ok", "True"]

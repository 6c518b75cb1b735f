"""patch_all(): signal handlers run in a G; subprocess waits park only the G."""
import pytest
from patched import run_patched


@pytest.mark.parametrize("procs", [1, 2])
def test_signal_handler_runs_in_its_own_g_and_may_block(tmp_path, procs):
    out = run_patched(tmp_path, """
        import os, signal, gmp
        seen = []
        def on_usr1(signum, frame):
            gmp.sleep(0.01)                       # blocking is allowed: own G
            seen.append((signum, gmp.current().id != main_id))
            done.set()
        def main():
            global done, main_id
            done, main_id = gmp.Event(), gmp.current().id
            signal.signal(signal.SIGUSR1, on_usr1)
            assert signal.getsignal(signal.SIGUSR1) is on_usr1
            os.kill(os.getpid(), signal.SIGUSR1)
            assert done.wait(10)
            print(seen)
        gmp.run(main)
    """, procs=procs)
    assert out.strip() == "[(10, True)]"


def test_signal_wakes_an_idle_m0(tmp_path):
    # M0 has nothing to run and sleeps in epoll_wait: the signal must still
    # get its handler run, without waiting for unrelated work.
    out = run_patched(tmp_path, """
        import _thread, os, signal, gmp
        def on_usr2(signum, frame):
            done.set()
        def main():
            global done
            done = gmp.Event()
            signal.signal(signal.SIGUSR2, on_usr2)
            # A plain OS thread sends the signal while main waits.
            _thread.start_new_thread(os.kill, (os.getpid(), signal.SIGUSR2))
            print(done.wait(10))
        gmp.run(main)
    """, procs=1)
    assert out.strip() == "True"


@pytest.mark.parametrize("procs", [1, 2])
def test_subprocess_waits_overlap_and_other_gs_keep_running(tmp_path, procs):
    out = run_patched(tmp_path, """
        import subprocess, sys, time, gmp
        def child():
            return subprocess.run([sys.executable, "-c", "import time; time.sleep(0.4)"],
                                  capture_output=True).returncode
        def main():
            t0 = time.monotonic()
            gs = [gmp.go(child) for _ in range(4)]
            ticks = 0
            while not all(g.dead for g in gs):    # the M stays free meanwhile
                gmp.sleep(0.01)
                ticks += 1
            codes = [g.result() for g in gs]
            print(codes, ticks >= 10, time.monotonic() - t0 < 4 * 0.4 + 1.0)
        gmp.run(main)
    """, procs=procs)
    assert out.strip() == "[0, 0, 0, 0] True True"

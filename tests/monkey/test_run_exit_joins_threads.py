"""``gmp run`` ends a script as CPython does: non-daemon threads (Gs) are
joined, ``threading._register_atexit`` hooks (ThreadPoolExecutor's) run so
queued work completes, and daemon threads still parked vanish silently."""
import pytest
from gmprun import gmp_run


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_non_daemon_threads_and_pool_work_finish_after_the_script(tmp_path, procs):
    p = gmp_run(tmp_path, """
        import sys, threading, time
        from concurrent.futures import ThreadPoolExecutor
        def late(name):
            time.sleep(0.2)
            sys.stdout.write(name + "\\n")      # one write: Ms print at once
            sys.stdout.flush()
        threading.Thread(target=late, args=("thread",)).start()
        pool = ThreadPoolExecutor(2)
        for i in range(4):                 # queued, never awaited
            pool.submit(late, f"job{i}")
        threading._register_atexit(print, "hook")
        print("main", flush=True)
    """, procs=procs)
    assert p.stderr == ""
    lines = p.stdout.split()
    assert lines[0] == "main"
    assert sorted(lines[1:]) == sorted(["thread", "job0", "job1", "job2", "job3", "hook"])


def test_sys_exit_still_joins_and_keeps_the_code(tmp_path):
    p = gmp_run(tmp_path, """
        import sys, threading, time
        def late():
            time.sleep(0.1)
            print("joined", flush=True)
        threading.Thread(target=late).start()
        sys.exit(3)
    """, check=False)
    assert p.stdout.split() == ["joined"]
    assert p.returncode == 3, p.stderr


@pytest.mark.parametrize("procs", [1, 2])
def test_parked_daemon_threads_end_quietly(tmp_path, procs):
    p = gmp_run(tmp_path, """
        import threading, time
        started = threading.Barrier(6)
        def forever():
            started.wait()
            time.sleep(3600)
        for _ in range(5):
            threading.Thread(target=forever, daemon=True).start()
        started.wait()
        print("main")
    """, procs=procs, timeout=60)
    assert p.stderr == ""
    assert p.stdout.split() == ["main"]

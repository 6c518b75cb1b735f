"""threading.local under patch_all, as CPython documents it: per thread
(here per G), the subclass __init__ once per thread, and the storage bound
to the G whatever contextvars Context runs; threading.Timer is a G."""
import os
import subprocess
import sys

import pytest
from gmprun import ROOT, gmp_run


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_local_semantics(tmp_path, procs):
    p = gmp_run(tmp_path, """
        import asyncio, contextvars, threading
        inits = []
        class Counter(threading.local):
            def __init__(self, start):
                inits.append(threading.get_ident())
                self.n = start
            @property
            def double(self):
                return self.n * 2
        c = Counter(10)
        assert inits == [threading.get_ident()], inits       # once, not twice
        plain = threading.local()
        seen = {}
        def worker(i):
            assert c.n == 10                   # __init__ ran for this thread
            c.n += i
            contextvars.Context().run(setattr, plain, "x", i)   # empty context
            async def in_task():
                plain.y = i * 100              # inside an asyncio Task
            asyncio.run(in_task())
            threading.Event().wait(0.01)       # park: other Gs interleave
            seen[i] = (c.n, c.double, plain.x, plain.y, sorted(vars(plain)))
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert seen == {i: (10 + i, 2 * (10 + i), i, i * 100, ["x", "y"]) for i in range(8)}, seen
        assert len(inits) == 9 and len(set(inits)) == 9
        assert c.n == 10 and not hasattr(plain, "x")        # main's own storage
        print("ok")
    """, procs=procs)
    assert p.stdout.strip() == "ok"


def test_dead_gs_storage_is_dropped(tmp_path):
    p = gmp_run(tmp_path, """
        import gc, threading, weakref
        class Blob:
            pass
        loc = threading.local()
        refs = []
        def use():
            b = loc.b = Blob()
            refs.append(weakref.ref(b))
        for _ in range(20):                 # 20 waves of 50 short-lived threads
            ts = [threading.Thread(target=use) for _ in range(50)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        gc.collect()
        alive = sum(r() is not None for r in refs)
        print(alive < 300, alive)
    """)
    assert p.stdout.split()[0] == "True", p.stdout


def test_timer_is_a_g(tmp_path):
    p = gmp_run(tmp_path, """
        import threading, time, gmp
        from gmp.monkey.threading import GThread
        assert issubclass(threading.Timer, GThread)
        # The docs' example: a Timer started from the main G, and the
        # script ends; as in CPython it fires before the process exits.
        fired = []
        t0 = time.monotonic()
        t = threading.Timer(0.05, lambda: fired.append(time.monotonic() - t0))
        t.start()
        t.join()
        cancelled = threading.Timer(0.01, fired.append, args=("never",))
        cancelled.start()
        cancelled.cancel()
        cancelled.join()
        assert len(fired) == 1 and fired[0] >= 0.045, fired
        threading.Timer(0.05, print, args=("at exit",)).start()
    """)
    assert p.stdout == "at exit\n"


def test_timer_started_by_a_returning_main_g_is_no_deadlock():
    # gmp.run's main G returns at once, leaving the Timer's G parked: the
    # runtime cancels it, as Go does at main's return, without a Deadlock.
    code = ("import gmp.monkey; gmp.monkey.patch_all(); import threading, gmp; "
            "gmp.run(lambda: threading.Timer(0.05, print, args=('fired',)).start(), procs=2); "
            "print('returned')")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=ROOT), check=False)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert p.stdout == "returned\n"

"""Soundness of the park/ready protocol and the runtime's edges (issue 9).

Each test is one of the issue's reproducers, or the behaviour a user relies
on behind it.  The ones that used to crash the interpreter run in a
subprocess with a timeout and assert the documented outcome (exit status 0
and the expected output), never merely "no signal"."""
import math
import os
import subprocess
import sys
import textwrap
import time

import greenlet
import pytest

import gmp
from gmp._ext import _core

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_script(src, timeout=60, env=None):
    """Runs src in a fresh interpreter outside the source tree; returns the
    CompletedProcess (stdout+stderr in .stdout)."""
    e = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(src)], cwd="/",
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, env=e, check=False)
    assert p.returncode >= 0, f"killed by signal {-p.returncode}:\n{p.stdout}"
    return p


# --- item 1: a G readied twice by gmp.blocking --------------------------------

def test_blocking_storm_does_not_crash():
    p = run_script("""
        import time, gmp
        done = []
        def partner(c):
            while True:
                gmp.sleep(0.00002); c.send(1)
        def worker():
            cs = [gmp.Chan() for _ in range(8)]; gmp.go(partner, cs[7])
            while True:
                i, v, ok = gmp.select(*[gmp.Recv(c) for c in cs])
                assert (i, v, ok) == (7, 1, True), (i, v, ok)
                try:
                    with gmp.Timeout(0.0001):
                        r = gmp.blocking(int, "7")
                    assert r == 7, r
                except gmp.TimeoutError:
                    pass
                r = gmp.select(gmp.Recv(gmp.Chan()), timeout=0.0002)
                assert r == (-1, None, False), r
                done.append(1)
        def main():
            gs = [gmp.go(worker) for _ in range(64)]
            gmp.sleep(2)
            bad = [g.exception for g in gs if g.dead]
            assert not bad, bad
        gmp.run(main, procs=1)
        print("ok", len(done) > 0)
    """)
    assert p.returncode == 0 and "ok True" in p.stdout, p.stdout


def _sync_submit(job):
    job.run()                  # the helper finishes before the G parks


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_blocking_finishing_before_park_is_one_wakeup(procs):
    """The job completes inside submit(), before the G parks; a kill that
    then arrives must not ready the G a second time."""
    out = []

    def victim():
        def submit(job):
            _sync_submit(job)
            gmp.go(lambda: me.kill())     # runs while victim is "parking"
        me = gmp.current()
        try:
            v = _core.blocking_call(submit, int, ("7",), {})
        except gmp.Killed:
            v = "killed"
        t0 = time.monotonic()
        try:
            r = gmp.select(gmp.Recv(gmp.Chan()), timeout=0.05)
        except gmp.Killed:
            r = "killed"
        out.append((v, r, time.monotonic() - t0))
        gmp.sleep(0.01)        # a stale queue entry would resume this early
        out.append(gmp.blocking(int, "8"))

    def main():
        for _ in range(20):
            gmp.go(victim).join()
    gmp.run(main, procs=procs)
    assert len(out) == 40
    for v, r, dt in out[::2]:
        assert (v, r) in ((7, "killed"), ("killed", (-1, None, False))), (v, r)
        if r != "killed":
            assert dt >= 0.045, dt
    assert out[1::2] == [8] * 20


# --- item 2: an invalid timeout leaves a ghost waiter ---------------------------

def test_ghost_sender_reproducer():
    p = run_script("""
        import gmp
        def main():
            ch = gmp.Chan(1); ch.try_send(0)
            try: ch.send(1, timeout="x")
            except TypeError: pass
            assert ch.recv() == 0
            assert len(ch) == 0, "the failed send must not have delivered"
            assert gmp.select(timeout=0.01) == (-1, None, False)
        gmp.run(main, procs=1)
        print("ok")
    """)
    assert p.returncode == 0 and "ok" in p.stdout, p.stdout


BAD_TIMEOUTS = [("x", TypeError), (-1, ValueError), (math.nan, ValueError),
                (1e300, OverflowError), (True, TypeError)]


def _blocking_calls():
    """(name, start(timeout), wake()) per primitive: start blocks the G with
    the timeout, wake() is what would pop a registered waiter."""
    def chan_recv():
        ch = gmp.Chan()
        return (lambda t: ch.recv(timeout=t)), (lambda: ch.try_send(1))

    def chan_send():
        ch = gmp.Chan()
        return (lambda t: ch.send(5, timeout=t)), (lambda: ch.try_recv()[1])

    def select():
        ch = gmp.Chan()
        return (lambda t: gmp.select(gmp.Recv(ch), timeout=t)), (lambda: ch.try_send(1))

    def mutex():
        m = gmp.Mutex()
        m.lock()
        return (lambda t: m.lock(timeout=t)), (lambda: (m.unlock(), m.is_locked)[1])

    def sem():
        s = gmp.Semaphore(0)
        return (lambda t: s.acquire(timeout=t)), (lambda: (s.release(), s.value == 0)[1])

    def event():
        e = gmp.Event()
        return (lambda t: e.wait(timeout=t)), (lambda: False)

    def waitgroup():
        wg = gmp.WaitGroup()
        wg.add(1)
        return (lambda t: wg.wait(timeout=t)), (lambda: False)

    def waitlist():
        wl = _core.WaitList()
        return (lambda t: wl.wait("x", timeout=t)), (lambda: wl.notify() == 1)

    def join():
        ch = gmp.Chan()
        g = gmp.go(ch.recv)
        return (lambda t: g.join(timeout=t)), (lambda: False)

    def sleep():
        return (lambda t: gmp.sleep(t)), (lambda: False)

    return [chan_recv, chan_send, select, mutex, sem, event, waitgroup, waitlist, join, sleep]


@pytest.mark.parametrize("bad,exc", BAD_TIMEOUTS, ids=lambda x: repr(x))
def test_bad_timeout_registers_nothing(procs, bad, exc):
    """Every blocking call validates its timeout before registering: after
    the error no waiter is left behind to be woken (a "ghost")."""
    results = []

    def main():
        for make in _blocking_calls():
            start, wake = make()
            with pytest.raises(exc):
                start(bad)
            # Nothing must be registered: a would-be wake finds no waiter.
            results.append((make.__name__, wake()))
            gmp.select(timeout=0.001)           # and nothing readies us early
    gmp.run(main, procs=procs)
    assert len(results) == 10
    assert [name for name, woke in results if woke] == [], results


# --- items 5, 6: reused Timeout, infinite and huge timeouts ----------------------

def test_reused_timeout_gets_a_fresh_deadline(grun):
    def main():
        t = gmp.Timeout(0.05)
        with t:
            gmp.sleep(0.001)
        gmp.sleep(0.06)                 # past the first scope's deadline
        t0 = time.monotonic()
        with t:
            gmp.sleep(0.01)             # must not expire: a new 50 ms scope
        assert not t.expired
        with pytest.raises(gmp.TimeoutError), t:
            gmp.sleep(1)
        return time.monotonic() - t0
    assert 0.05 <= grun(main) < 1


def test_inf_means_never(grun):
    inf = math.inf

    def main():
        ch = gmp.Chan()
        gmp.go(lambda: (gmp.sleep(0.02), ch.send(1)))
        assert ch.recv(timeout=inf) == 1
        gmp.go(lambda: (gmp.sleep(0.02), ch.recv()))
        ch.send(2, timeout=inf)
        gmp.go(lambda: (gmp.sleep(0.02), ch.send(3)))
        assert gmp.select(gmp.Recv(ch), timeout=inf) == (0, 3, True)
        ev = gmp.Event()
        gmp.go(lambda: (gmp.sleep(0.02), ev.set()))
        assert ev.wait(timeout=inf)
        with gmp.Timeout(inf) as t:
            gmp.sleep(0.02)
        assert not t.expired
        g = gmp.go(gmp.sleep, 0.02)
        assert g.join(timeout=inf)
    grun(main)


@pytest.mark.parametrize("bad,exc", [(1e300, OverflowError), (2.0**63 / 1e9, OverflowError),
                                     (math.nan, ValueError), (-0.5, ValueError)])
def test_timeout_scope_and_sleep_reject_like_stdlib(bad, exc):
    with pytest.raises(exc):
        gmp.Timeout(bad)

    def main():
        with pytest.raises(exc):
            gmp.sleep(bad)
    gmp.run(main, procs=1)


# --- item 3: teardown while other Ms still run ---------------------------------

def test_ctrl_c_during_teardown_stops_every_m_first():
    p = run_script("""
        import os, signal, threading, time, gmp
        from gmp._ext import _core
        def spin():
            t = time.monotonic() + 1
            while time.monotonic() < t: pass
        def main():
            _core.go_on(1, spin); gmp.sleep(0.1)
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            gmp.run(main, procs=2)
        except KeyboardInterrupt:
            print("interrupted")
        assert not [t for t in threading.enumerate() if t.name.startswith("gmp-M")]
        time.sleep(1.5)
        print("ok")
    """)
    assert p.returncode == 0 and "ok" in p.stdout, p.stdout


def test_failed_thread_start_stops_the_started_ms():
    p = run_script("""
        import threading, time, gmp
        real = threading.Thread.start
        n = [0]
        def start(self):
            if self.name.startswith("gmp-M"):
                n[0] += 1
                if n[0] == 3:
                    raise RuntimeError("can't start new thread")
            real(self)
        threading.Thread.start = start
        try:
            gmp.run(lambda: gmp.sleep(0.05), procs=8)
        except RuntimeError as e:
            print("raised", e)
        assert not [t for t in threading.enumerate() if t.name.startswith("gmp-M")]
        threading.Thread.start = real
        assert gmp.run(lambda: 5, procs=2) == 5
        time.sleep(0.2)
        print("ok")
    """)
    assert p.returncode == 0 and "raised can't start" in p.stdout and "ok" in p.stdout, p.stdout


# --- item 4: user greenlets inside a G -----------------------------------------

def test_nested_greenlet_may_park(grun):
    def main():
        def body(x):
            gmp.sleep(0.01)
            return x * 2
        c = greenlet.greenlet(body)
        assert c.switch(21) == 42
        ch = gmp.Chan()
        gmp.go(lambda: ch.send("v"))
        c2 = greenlet.greenlet(lambda: ch.recv())
        assert c2.switch() == "v"
    grun(main)


def test_greenlet_outliving_its_g_does_not_crash():
    p = run_script("""
        import greenlet, gmp
        holder = []
        def g1():
            def body():
                greenlet.getcurrent().parent.switch("paused")
                return "done"
            c = greenlet.greenlet(body)
            assert c.switch() == "paused"
            holder.append(c)
        def main():
            gmp.go(g1).join()
            gmp.sleep(0.01)
            r = holder[0].switch()
            print("switched", r)
            gmp.sleep(0.01)
            return gmp.go(lambda: 7).result()
        print("result", gmp.run(main, procs=1))
    """)
    assert p.returncode == 0, p.stdout
    assert "result 7" in p.stdout, p.stdout


# --- item 7: fork is tested in test_fork.py -------------------------------------

# --- item 8: unbounded edges ---------------------------------------------------

def test_procs_is_capped():
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="procs"):
        gmp.run(lambda: None, procs=2**40)
    assert time.monotonic() - t0 < 1


def test_g_swallowing_killed_is_reported_and_given_up_on():
    p = run_script("""
        import time, gmp
        def stubborn():
            while True:
                try:
                    gmp.sleep(1)
                except gmp.Killed:
                    pass
        def main():
            gmp.go(stubborn); gmp.sleep(0.01)
        t0 = time.monotonic()
        gmp.run(main, procs=2)
        print("returned after", round(time.monotonic() - t0))
    """, env={"GMPKILLGRACE": "1"})
    assert p.returncode == 0, p.stdout
    assert "returned after 1" in p.stdout, p.stdout
    assert "stubborn" in p.stdout and "Killed" in p.stdout, p.stdout


# --- item 9: unclear errors ------------------------------------------------------

def test_plain_thread_gets_a_clear_error():
    import threading
    errs = []

    def thread():
        for call in (lambda: gmp.go(print), lambda: gmp.context.with_timeout(
                gmp.context.background(), 1)):
            try:
                call()
            except gmp.NoRuntime as e:
                errs.append(e)

    def main():
        t = threading.Thread(target=thread)
        t.start()
        gmp.blocking(t.join)
    gmp.run(main, procs=1)
    assert len(errs) == 2
    for e in errs:
        assert isinstance(e, gmp.NoRuntime)
        assert "thread" in str(e) and "inject" in str(e), e


def test_bad_run_settings_are_rejected():
    with pytest.raises(TypeError, match="sysmon"):
        gmp.run(lambda: None, procs=1, sysmon=42)

    def main():
        with pytest.raises(ValueError, match="procs"):
            gmp.run(lambda: None, procs=0)
    gmp.run(main, procs=1)


def test_closing_done_by_hand_then_cancel(grun):
    def main():
        ctx, cancel = gmp.context.with_cancel(gmp.context.background())
        with pytest.raises(TypeError, match="receive-only"):
            ctx.done().close()
        with pytest.raises(TypeError, match="receive-only"):
            ctx.done().try_send(1)
        assert ctx.err() is None
        cancel()
        assert ctx.err() is not None
        assert ctx.done().closed
    grun(main)


def test_waitgroup_add_overflow_is_an_error():
    def main():
        wg = gmp.WaitGroup()
        wg.add(sys.maxsize)
        with pytest.raises(OverflowError):
            wg.add(1)
        with pytest.raises(OverflowError):
            wg.add(2**70)
        assert wg.count == sys.maxsize
    gmp.run(main, procs=1)

"""Gs across several Ms: channel stress, the one hard rule (a bound G
resumes on its own M), stealing of fresh Gs only, injection from foreign
threads.  No test sleeps to let things settle: waits are on gmp primitives
with generous timeouts that only matter when something is broken."""
import hashlib
import itertools
import threading

import pytest

import gmp
from gmp._ext import _core

BUF = b"\x01" * (1 << 20)


@pytest.mark.parametrize("procs", [1, 2, 4])
@pytest.mark.parametrize("policy", ["go", "global"])
def test_million_messages_across_ms(procs, policy):
    senders, receivers, per_sender = 16, 16, 1_000_000 // 16
    total = senders * per_sender

    def main():
        ch = gmp.Chan(1024)
        got = []
        swg = gmp.WaitGroup()
        rwg = gmp.WaitGroup()
        swg.add(senders)
        rwg.add(receivers)

        def sender(base):
            send = ch.send
            for i in range(base, base + per_sender):
                send(i)
            swg.done()

        def receiver():
            n = s = 0
            for v in ch:
                n += 1
                s += v
            got.append((n, s, threading.get_ident()))
            rwg.done()
        for _ in range(receivers):
            gmp.go(receiver)
        for k in range(senders):
            gmp.go(sender, k * per_sender)
        assert swg.wait(timeout=60)
        ch.close()
        assert rwg.wait(timeout=60)
        return got, _core.stats()

    got, st = gmp.run(main, procs=procs, policy=policy)
    assert sum(n for n, _, _ in got) == total
    assert sum(s for _, s, _ in got) == total * (total - 1) // 2
    assert st["procs"] == procs


def test_bound_g_woken_from_other_m_resumes_on_its_m():
    def main():
        ch = gmp.Chan()
        home = {}
        claimed = itertools.count()
        done = gmp.Chan(1)

        def sleeper():
            home["tid"] = threading.get_ident()
            v = ch.recv()
            home["resumed"] = threading.get_ident()
            done.send(v)

        def prober():
            hashlib.sha256(BUF).digest()           # drops the GIL
            tid = threading.get_ident()
            if "tid" in home and tid != home["tid"] and next(claimed) == 0:
                home["waker"] = tid
                ch.send("hi")

        gmp.go(sleeper)
        gmp.gosched()
        for _ in range(50):                         # rounds until a prober ran elsewhere
            wg = gmp.WaitGroup()
            for _ in range(16):
                wg.add(1)
                gmp.go(lambda wg=wg: (prober(), wg.done()))
            wg.wait(timeout=30)
            if "waker" in home:
                break
        assert "waker" in home, "no G ever ran on a second M"
        assert done.recv(timeout=30) == "hi"
        return home

    home = gmp.run(main, procs=2)
    assert home["waker"] != home["tid"]
    assert home["resumed"] == home["tid"]


def test_stealing_moves_fresh_gs_only():
    def main():
        bound_ok = []
        stop = gmp.Event()

        def bound(i):
            tid = threading.get_ident()
            n = 0
            while not stop.is_set():
                gmp.gosched()                      # parked/readied: stays bound
                assert threading.get_ident() == tid
                n += 1
            bound_ok.append(n)

        ran_on = []

        def fresh():
            hashlib.sha256(BUF).digest()
            hashlib.sha256(BUF).digest()
            ran_on.append(threading.get_ident())

        for i in range(4):
            gmp.go(bound, i)
        wg = gmp.WaitGroup()
        for _ in range(64):
            wg.add(1)
            gmp.go(lambda: (fresh(), wg.done()))
        assert wg.wait(timeout=60)
        stop.set()
        st = _core.stats()
        return bound_ok, ran_on, st

    _bound_ok, ran_on, st = gmp.run(main, procs=2)
    assert len(ran_on) == 64
    assert sum(p["stolen"] for p in st["ps"]) > 0, st
    assert len(set(ran_on)) == 2


def test_global_policy_never_steals():
    def main():
        wg = gmp.WaitGroup()
        for _ in range(32):
            wg.add(1)
            gmp.go(lambda: (hashlib.sha256(BUF).digest(), wg.done()))
        wg.wait(timeout=60)
        return _core.stats()

    st = gmp.run(main, procs=2, policy="global")
    assert sum(p["stolen"] for p in st["ps"]) == 0
    assert sum(p["global_pulls"] for p in st["ps"]) >= 32


def test_inject_from_foreign_thread():
    n = 200

    def main():
        done = gmp.Event()
        seen = []
        left = itertools.count(1)

        def req(i):
            seen.append((i, gmp.current() is not None))
            if next(left) == n:
                done.set()

        def feeder():
            try:
                for i in range(n):
                    _core.inject(req, i)
            finally:
                _core.external(-1)
        _core.external(1)
        threading.Thread(target=feeder).start()
        assert done.wait(timeout=30)
        return seen

    seen = gmp.run(main, procs=2)
    assert sorted(i for i, _ in seen) == list(range(n))
    assert all(ok for _, ok in seen)


def test_deadlock_still_detected_after_external_released():
    def main():
        _core.external(1)
        _core.external(-1)
        gmp.Chan().recv()

    with pytest.raises(gmp.Deadlock):
        gmp.run(main, procs=2)


def test_inject_outside_runtime_raises():
    with pytest.raises(gmp.NoRuntime):
        _core.inject(print)


def test_latency_histogram_counts_runs():
    def main():
        _core.track_latency(True)
        wg = gmp.WaitGroup()
        for _ in range(100):
            wg.add(1)
            gmp.go(wg.done)
        wg.wait()
        h = _core.latency_hist()
        _core.track_latency(False)
        return h

    h = gmp.run(main, procs=2)
    assert sum(c for _, c in h) >= 100
    assert all(v >= 0 for v, _ in h)

"""Chaos: every wake source of the runtime at once (issue 9).

Channels (buffered and not), select with timeouts, sends with timeouts
that are retried, Timeout scopes around gmp.blocking calls, kill, netpoll
readiness on a socketpair, a Mutex and a WaitGroup, wake-ups across Ms
(consumers bound to every P) and closes, at procs 1, 2 and 4 with a 1 us
switch interval.  Every item must arrive exactly once, every G must end
with its expected result, and the wake-up counters (_core.wake_counts) are
printed so a run shows what it exercised.

GMP_CHAOS_ITEMS (items per producer, default 500) and GMP_CHAOS_ROUNDS
(default 1) make the long mode .ci/debug-stress runs under the debug build.
"""
import os
import random
import socket
import sys
import time

import pytest

import gmp
from gmp._ext import _core

ITEMS = int(os.environ.get("GMP_CHAOS_ITEMS", "500"))
ROUNDS = int(os.environ.get("GMP_CHAOS_ROUNDS", "1"))
NPROD = 4
NCONS = 4
NCHAN = 4
NVICTIMS = 12
NP_MSGS = 200


def chaos(procs, seed):
    rnd = random.Random(seed)
    tally = {"send_timeouts": 0, "select_timeouts": 0, "scope_expired": 0, "blocking_ok": 0}

    def main():
        chans = [gmp.Chan(c) for c in (0, 1, 4, 0)]
        lock = gmp.Mutex()
        counted = [0]
        wg = gmp.WaitGroup()

        def producer(k):
            try:
                for i in range(ITEMS):
                    ch = chans[(k + i) % NCHAN]
                    while True:                 # a timed-out send delivered nothing: retry
                        try:
                            ch.send((k, i), timeout=rnd.choice((None, 0.0003, 0.002)))
                            break
                        except gmp.TimeoutError:
                            tally["send_timeouts"] += 1
                    if i % 8 == 0:
                        try:
                            with gmp.Timeout(rnd.choice((0.00005, 0.01))):
                                assert gmp.blocking(int, str(i)) == i
                                tally["blocking_ok"] += 1
                        except gmp.TimeoutError:
                            tally["scope_expired"] += 1
                return ITEMS
            finally:
                wg.done()

        def consumer(k):
            got = []
            live = list(range(NCHAN))
            while live:
                i, v, ok = gmp.select(*[gmp.Recv(chans[j]) for j in live],
                                      timeout=rnd.choice((0.0005, 0.005)))
                if i < 0:
                    tally["select_timeouts"] += 1
                    continue
                if not ok:
                    del live[i]
                    continue
                got.append(v)
                with lock:
                    counted[0] += 1
                if rnd.random() < 0.05:
                    try:
                        with gmp.Timeout(0.0001):
                            gmp.blocking(time.sleep, 0.0003)
                    except gmp.TimeoutError:
                        tally["scope_expired"] += 1
            return got

        def victim(kind):
            ch = gmp.Chan()
            if kind == 0:
                ch.recv()
            elif kind == 1:
                gmp.select(gmp.Recv(ch), timeout=3600)
            elif kind == 2:
                gmp.sleep(3600)
            else:
                with gmp.Timeout(3600):
                    gmp.blocking(time.sleep, 0.05)
                    ch.recv()
            return "not killed"

        def killer(vs):
            for v in vs:
                gmp.sleep(rnd.random() * 0.002)
                v.kill()

        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        pda, pdb = _core.PollDesc(a.fileno()), _core.PollDesc(b.fileno())

        def np_writer():
            for i in range(NP_MSGS):
                pda.sendall(b"%06d" % i)
                if i % 7 == 0:
                    gmp.sleep(rnd.choice((0, 0.0001)))   # let the reader hit EAGAIN
            return NP_MSGS

        def np_reader():
            buf = bytearray()
            while len(buf) < 6 * NP_MSGS:
                buf += pdb.recv(4096)
            return [int(buf[j:j + 6]) for j in range(0, len(buf), 6)]

        wg.add(NPROD)
        cons = [_core.go_on(k % procs, consumer, k) for k in range(NCONS)]
        prods = [gmp.go(producer, k) for k in range(NPROD)]
        vics = [_core.go_on(k % procs, victim, k % 4) for k in range(NVICTIMS)]
        kil = gmp.go(killer, vics)
        npr = _core.go_on(procs - 1, np_reader)
        npw = gmp.go(np_writer)
        assert wg.wait(timeout=120), "producers did not finish"
        for ch in chans:
            ch.close()
        out = {
            "prods": [p.result(timeout=60) for p in prods],
            "cons": [c.result(timeout=60) for c in cons],
            "np": (npw.result(timeout=60), npr.result(timeout=60)),
            "counted": counted[0],
        }
        kil.result(timeout=60)
        for v in vics:
            assert v.join(timeout=60)
        out["victims"] = [type(v.exception).__name__ for v in vics]
        pda.close()
        pdb.close()
        a.close()
        b.close()
        return out

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        return gmp.run(main, procs=procs), tally
    finally:
        sys.setswitchinterval(old)


@pytest.mark.hang_timeout(240)
@pytest.mark.parametrize("procs", [1, 2, 4])
def test_chaos(procs):
    _core.wake_counts(reset=True)
    for r in range(ROUNDS):
        out, tally = chaos(procs, seed=1000 * procs + r)
        assert out["prods"] == [ITEMS] * NPROD
        received = sorted(v for got in out["cons"] for v in got)
        assert received == sorted((k, i) for k in range(NPROD) for i in range(ITEMS)), \
            "an item was lost or delivered twice"
        assert out["counted"] == NPROD * ITEMS
        assert out["np"] == (NP_MSGS, list(range(NP_MSGS)))
        assert out["victims"] == ["Killed"] * NVICTIMS
    counts = _core.wake_counts()
    print(f"\nchaos procs={procs} rounds={ROUNDS} items={ITEMS * NPROD} debug_build={_core.DEBUG_BUILD}"
          f" tally={tally} wakes(readied, stale)={counts}")
    for src in ("waitq", "timer", "interrupt", "netpoll", "blocking"):
        assert counts[src][0] > 0, f"no {src} wake-up exercised"
    if procs > 1:
        assert counts["remote"] > 0

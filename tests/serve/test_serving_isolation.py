"""One invisible 50 ms C call (ctypes usleep) must not delay the short
requests served by the other Ms: measured against procs=1 on the same server
(gmp.bench.isolation; the gevent comparison is in bench/http.py)."""
import pytest

from gmp.bench import isolation as iso

DURATION = 2.0


ATTEMPTS = 3


@pytest.mark.hang_timeout(180)
@pytest.mark.parametrize("kind, clients, rate", [("accept", 40, 50), ("wsgi", 20, 25)])
def test_other_ms_keep_serving_through_an_invisible_call(kind, clients, rate):
    # procs=1 delays about a third of the requests (the calls block the only
    # M a third of the time); with a second M, only the requests bound to
    # the blocked M at that moment wait.  The CI machine is shared: a
    # neighbour's burst can only add delays to a run, so a pair of runs gets
    # up to ATTEMPTS tries to show the difference.
    pairs = []
    for _ in range(ATTEMPTS):
        one = iso.measure(kind, "gmp", 1, clients, rate, DURATION)
        two = iso.measure(kind, "gmp", 2, clients, rate, DURATION)
        for r in (one, two):
            assert r["n"] > 0.9 * clients * rate * DURATION, r
        pairs.append((round(one["delayed"], 3), round(two["delayed"], 3)))
        if one["delayed"] > 0.15 and two["delayed"] < 0.6 * one["delayed"]:
            return
    raise AssertionError(f"share delayed > 10 ms (procs=1, procs=2) per try: {pairs}")

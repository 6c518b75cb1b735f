"""Pluggable scheduling policies: selection by argument, GMPPOLICY and name,
errors, and the knobs' effect on placement and stealing."""
import hashlib

import pytest

import gmp
from gmp import policy as gpolicy
from gmp._ext import _core

BUF = b"\x02" * (1 << 20)


def _fanout(n=32):
    wg = gmp.WaitGroup()
    for _ in range(n):
        wg.add(1)
        gmp.go(lambda: (hashlib.sha256(BUF).digest(), wg.done()))
    assert wg.wait(timeout=60)
    return _core.stats()


def test_builtins_and_unknown_name():
    assert {"go", "global"} <= set(gpolicy.names())
    with pytest.raises(ValueError, match=r"unknown policy 'nope'; known policies: go, global"):
        gmp.run(lambda: None, policy="nope")


def test_gmppolicy_env(monkeypatch):
    monkeypatch.setenv("GMPPOLICY", "global")
    assert gmp.run(lambda: _core.stats()["policy"], procs=1) == "global"
    monkeypatch.setenv("GMPPOLICY", "bogus")
    with pytest.raises(ValueError, match="known policies"):
        gmp.run(lambda: None, procs=1)


def test_policy_object_and_register():
    p = gpolicy.register(gpolicy.Policy("nosteal", steal=False))
    st = gmp.run(_fanout, procs=2, policy="nosteal")
    assert st["policy"] == "nosteal"
    assert sum(q["stolen"] for q in st["ps"]) == 0
    st = gmp.run(_fanout, procs=2, policy=p)
    assert sum(q["stolen"] for q in st["ps"]) == 0


def test_global_placement_goes_through_global_queue():
    st = gmp.run(_fanout, procs=2, policy="global")
    assert sum(q["global_pulls"] for q in st["ps"]) >= 32
    assert sum(q["stolen"] for q in st["ps"]) == 0


def test_steal_max_caps_each_steal():
    p = gpolicy.Policy("steal1", steal_max=1, gil_learning=False)
    st = gmp.run(_fanout, 64, procs=2, policy=p)
    for q in st["ps"]:
        assert q["stolen"] <= q["steal_attempts"]


def test_bad_knobs_rejected():
    with pytest.raises(ValueError, match="placement"):
        gpolicy.Policy("x", placement="elsewhere")
    with pytest.raises(ValueError, match="look"):
        gpolicy.Policy("x", look=("global", "netpoll-elsewhere"))
    with pytest.raises(ValueError, match="steal_max"):
        gpolicy.Policy("x", steal_max=-1)
    with pytest.raises(TypeError):
        gmp.run(lambda: None, policy=3)

"""The RPC workloads of gmp bench steal-vs-global (gmp/bench/rpc.py): a real
server and load-client process, every request accounted for, rejections
reaching the client, and the table's reading and targets."""
from gmp import policy as gpolicy
from gmp.bench import rpc
from gmp.pool import Sofa, Tars


def cell(policy, procs=1, workload="rpc_short"):
    return rpc.child({"workload": workload, "runtime": "gmp", "policy": policy,
                      "procs": procs, "scale": 0.3, "quick": True})


def accounted(ld):
    return ld["ok"] + ld["busy"] + ld["timeout"] + ld["unanswered"] == ld["sent"]


def test_go_answers_every_request():
    r = cell("go", procs=2)
    assert r["capacity"] > 0
    assert [ld["load"] for ld in r["loads"]] == list(rpc.QUICK_LOADS)
    for ld in r["loads"]:
        assert accounted(ld)
        assert ld["sent"] > 0 and ld["busy"] == ld["rejected"] == 0
        assert ld["queue_timeouts"] == 0       # a G per request: nothing queues
        assert set(ld["lat"]) == {"p50", "p99", "p999"}


def test_rejections_reach_the_client_as_busy():
    # one worker, reject at max: every request arriving while it sits in
    # one of rpc_stall's 50 ms calls is refused (by the reader on the other M)
    gpolicy.register(gpolicy.Policy("sofa-one", steal=False,
                                    admission=Sofa(core=1, max=1, mode="reject")))
    r = cell("sofa-one", procs=2, workload="rpc_stall")   # readers on the other M see it
    for ld in r["loads"]:
        assert accounted(ld)
        assert ld["busy"] == ld["rejected"]    # each server rejection reached the client
    assert sum(ld["busy"] for ld in r["loads"]) > 0


def test_tars_queue_timeouts_get_no_reply():
    gpolicy.register(gpolicy.Policy("tars-one", steal=False, admission=Tars(workers=1)))
    r = cell("tars-one")
    for ld in r["loads"]:
        assert accounted(ld)
        assert ld["timeout"] == 0 and ld["unanswered"] >= ld["queue_timeouts"]


def _row(policy, p999_lo, p999_hi):
    def ld(load, p999):
        return {"load": load, "offered": 100.0, "goodput": 100.0, "ok": 100, "late": 0,
                "rejected": 0, "queue_timeouts": 0, "cpu_s": 0.1,
                "lat": {"p50": 100, "p99": p999 / 2, "p999": p999}}
    return {"workload": "rpc_short", "runtime": "gmp", "policy": policy, "procs": 2,
            "loads": [ld(0.5, p999_lo), ld(1.2, p999_hi)]}


def test_reading_and_targets():
    rows = [_row("go", 1000, 50_000), _row("tars", 1000, 3000)]
    (line,) = rpc.readings(rows)
    assert "tars 3.0ms (3.0x its 50 %)" in line and "while go 50.0ms (50.0x its 50 %)" in line
    got = {name: ok for name, _, _, ok in rpc.targets(rows)}
    assert got["rpc_short p2 tars: P999 at 120 % / at 50 %"]
    assert "go" not in " ".join(n for n in got if "P999" in n)
    assert "rpc_short" in rpc.format_table(rows)

"""redis-py against a real redis-server, under gmp.monkey.patch_all()."""
import pytest
from patched import run_patched


# 100,000 round trips through redis-py: on a loaded 2-core machine that takes
# longer than the default hang guard; the child's own timeout (300 s) is the
# guard that matters here.
@pytest.mark.hang_timeout(330)
@pytest.mark.parametrize("procs", [1, 2, 4])
def test_redis_1000_gs_x_100_commands(tmp_path, redis_port, procs):
    out = run_patched(tmp_path, """
        import sys, threading, time
        import redis, gmp
        port = int(sys.argv[1])
        pool = redis.ConnectionPool(host="127.0.0.1", port=port, max_connections=1000)
        r = redis.Redis(connection_pool=pool)
        r.flushall()
        NG, NC = 1000, 100
        bad = []
        def worker(i):
            key = f"k{i}"
            for j in range(NC // 2):
                r.set(key, f"{i}:{j}")
                v = r.get(key)
                if v != f"{i}:{j}".encode():
                    bad.append((i, j, v))
        # Overlap: a BLPOP that only another G satisfies must not hold an M.
        def blocker():
            # Its own timeout outlasts the workload even on a loaded machine.
            return redis.Redis(host="127.0.0.1", port=port).blpop("wakeup", timeout=200)
        b = gmp.go(blocker)
        t0 = time.monotonic()
        gs = [gmp.go(worker, i) for i in range(NG)]
        for g in gs:
            g.result(timeout=120)
        elapsed = time.monotonic() - t0
        redis.Redis(host="127.0.0.1", port=port).rpush("wakeup", "x")
        assert b.result(timeout=10) == (b"wakeup", b"x")
        assert not bad, bad[:5]
        assert r.dbsize() == NG
        # every command is a round trip: serially these would need the sum of
        # all round-trip times; with 1000 Gs in flight the clients overlap,
        # i.e. many connections were used at once.
        print("ok", round(elapsed, 2), len(pool._available_connections) + len(pool._in_use_connections))
    """, str(redis_port), procs=procs, timeout=300)
    word, _elapsed, nconns = out.split()
    assert word == "ok"
    assert int(nconns) > 50          # overlap: many Gs had commands in flight at once

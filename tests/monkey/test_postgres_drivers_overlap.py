"""psycopg2 and psycopg 3 are cooperative under patch_all with no user
code: 20 concurrent ``SELECT pg_sleep(0.5)`` finish in about one sleep
(serialised they take 10 s), with the driver imported after patching (gmp
run) or before it."""
import pytest
from gmprun import gmp_run
from pgserver import pg_dsn  # noqa: F401 - the fixture

BODY = """
    import sys, threading, time
    import {module} as driver
    dsn = sys.argv[1]
    def query(out):
        conn = driver.connect(dsn)
        try:
            cur = conn.cursor()
            cur.execute("SELECT pg_sleep(0.5), 42")
            out.append(cur.fetchone()[1])
        finally:
            conn.close()
    out = []
    t0 = time.monotonic()
    ts = [threading.Thread(target=query, args=(out,)) for _ in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(out == [42] * 20, round(time.monotonic() - t0, 2))
"""


@pytest.mark.parametrize("module", ["psycopg2", "psycopg"])
@pytest.mark.parametrize("early", [False, True], ids=["imported-after", "imported-before"])
def test_twenty_pg_sleeps_overlap(tmp_path, pg_dsn, module, early):  # noqa: F811
    pytest.importorskip(module)
    p = gmp_run(tmp_path, BODY.format(module=module), pg_dsn, procs=1,
                preload=(module,) if early else ())
    assert p.stderr == ""
    ok, took = p.stdout.split()
    assert ok == "True"
    assert 0.5 <= float(took) < 3.0, took

"""Smoke test of ``gmp bench steal-vs-global`` (tiny sizes, one run per cell)."""
import json
import os
import subprocess
import sys

from gmp.bench import steal_vs_global as svg


def test_bench_cli_json(tmp_path):
    out = tmp_path / "r.json"
    env = dict(os.environ)
    p = subprocess.run(
        [sys.executable, "-m", "gmp.bench.steal_vs_global", "--workloads",
         "pipeline,blocking_coop", "--scale", "0.05", "--repeat", "1", "--procs", "2",
         "--no-gevent", "--json", str(out)],
        check=False, capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    assert "x global" in p.stdout and "targets" in p.stdout
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert {(r["workload"], r["policy"], r["procs"]) for r in rows} == {
        (w, pol, n) for w in ("pipeline", "blocking_coop") for pol in ("go", "global") for n in (1, 2)}
    for r in rows:
        assert "error" not in r, r
        assert r["throughput"] > 0 and "steals" in r and "balance" in r


def test_add_parser_registers_subcommand():
    import argparse
    ap = argparse.ArgumentParser(prog="gmp bench")
    sub = ap.add_subparsers(dest="cmd")
    svg.add_parser(sub)
    args = ap.parse_args(["steal-vs-global", "--quick", "--policies", "go"])
    assert args.func is svg.run_cli and args.quick


def test_unknown_policy_rejected():
    import argparse

    import pytest
    ap = argparse.ArgumentParser()
    svg._add_args(ap)
    with pytest.raises(SystemExit, match="known policies"):
        svg.run_cli(ap.parse_args(["--policies", "nope"]))

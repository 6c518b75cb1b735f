"""Runs patched scripts in a fresh interpreter: monkey patching is
process-wide, so it must not leak into the other tests."""
import os
import subprocess
import sys
import textwrap

from helpers import ROOT


def run_patched(tmp_path, body, *argv, procs=2, timeout=120):
    """Writes body to a script, runs it with gmp.monkey.run_script and
    returns its stdout; fails with its stderr if it exits non-zero."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    launcher = ("import sys, gmp.monkey as m; "
                f"m.run_script(sys.argv[1], sys.argv[2:], procs={procs})")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", launcher, str(script), *argv],
                       check=False, capture_output=True, text=True, timeout=timeout, env=env)
    assert p.returncode == 0, f"script failed ({p.returncode}):\n{p.stderr[-4000:]}"
    return p.stdout

"""Runs a script through the real ``gmp run`` command line in a fresh
interpreter (patching is process-wide), the way a user starts one: the CLI
imports modules such as subprocess before it patches, which is exactly the
import order the drop-in tests must survive."""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def gmp_run(tmp_path, body, *argv, procs=2, timeout=120, env=None, check=True, preload=()):
    """Writes body to script.py, runs ``python -m gmp run --procs N`` on it
    and returns the CompletedProcess (text); with check, a non-zero exit
    fails the test with the script's stderr.  `preload` names modules the
    interpreter imports before gmp patches (a user's sitecustomize, say)."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    full_env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    full_env.pop("GMPDEBUG", None)
    full_env.update(env or {})
    cli = ["-m", "gmp"]
    if preload:
        cli = ["-c", f"import sys, {', '.join(preload)}; from gmp.cli import main; sys.exit(main())"]
    p = subprocess.run([sys.executable, *cli, "run", "--procs", str(procs), str(script), *argv],
                       capture_output=True, text=True, timeout=timeout, env=full_env, check=False)
    if check:
        assert p.returncode == 0, f"script failed ({p.returncode}):\n{p.stderr[-4000:]}"
    return p

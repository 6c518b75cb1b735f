"""What every gmp benchmark shares: starting children, verdicts, exit codes.

Children.  A benchmark that measures in fresh processes must measure the gmp
it was started with.  ``python -m mod`` and ``python -c`` put the working
directory first on ``sys.path``, so a child started from a clone's root
imports the clone's ``gmp/`` (without its compiled core, unless built in
place) instead of the installed package: every cell failed that way on a
fresh clone.  ``python_cmd`` therefore starts children with ``-P`` (no
working directory or script directory on ``sys.path``) and ``child_env``
prepends the directory the parent's own ``gmp`` was imported from when that
is not a site-packages directory (an editable install's source tree, which
holds the built core; a tree built in place and run with ``python -m gmp``
from its root; ``PYTHONPATH``); a wheel in site-packages needs nothing.  Environment
variables that change what is measured (``GMPMAXPROCS``, ``GMPPOLICY``) are
dropped by the callers that set those per cell.

Verdicts.  A target is ``PASS`` or ``MISS`` (Go's benchmarks, like ours,
measure against a goal; "FAIL" is kept for tests), or ``n/a`` when it could
not be measured (a cell errored, a peer is not installed).  An error in a
cell is reported with the last line of the child's stderr, which is the
exception's ``Type: message``.

Exit codes.  ``exit_code`` gives 1 when any cell errored (always: a table of
errors is not a result) or, with ``strict``, when any target was missed or
could not be measured; 0 otherwise.
"""
import os
import site
import subprocess
import sys

import gmp

__all__ = [
    "MISS",
    "NA",
    "PASS",
    "add_strict_arg",
    "child_env",
    "error_line",
    "exit_code",
    "python_cmd",
    "run_child",
    "verdict",
]

PASS, MISS, NA = "PASS", "MISS", "n/a"


def verdict(ok):
    """PASS / MISS for a measured target, n/a for None (not measured)."""
    if ok is None:
        return NA
    return PASS if ok else MISS


def python_cmd(*args):
    """The command line of a Python child that cannot be shadowed by its
    working directory or its script's directory."""
    return [sys.executable, "-P", *args]


def _gmp_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(gmp.__file__)))


def _found_anyway(root):
    sitedirs = set(site.getsitepackages()) | {site.getusersitepackages()}
    return os.path.realpath(root) in {os.path.realpath(d) for d in sitedirs}


def child_env(extra_paths=(), drop=(), env=None):
    """os.environ (or `env`) with the parent's gmp pinned first on the
    child's import path, then `extra_paths` (e.g. a script's own folder,
    which -P leaves out), and the variables in `drop` removed."""
    env = dict(os.environ if env is None else env)
    for name in drop:
        env.pop(name, None)
    root = _gmp_root()
    paths = [] if _found_anyway(root) else [root]
    paths += [os.path.abspath(p) for p in extra_paths]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def error_line(stderr, returncode=None):
    """The line that says why a child failed: the last non-empty line of its
    stderr (a traceback ends with the exception), else its exit status."""
    for line in reversed((stderr or "").splitlines()):
        if line.strip():
            return line.strip()
    return f"exit status {returncode}" if returncode is not None else "no output"


def run_child(args, timeout, env=None, cwd=None):
    """Runs ``python -P *args`` and returns (stdout, error): error is None on
    exit 0, else one line saying why (timeout, or the exception's last line)."""
    try:
        p = subprocess.run(python_cmd(*args), capture_output=True, text=True, timeout=timeout,
                           env=child_env() if env is None else env, cwd=cwd, check=False)
    except subprocess.TimeoutExpired:
        return "", f"timed out after {timeout:g} s"
    if p.returncode != 0:
        return p.stdout, f"exit {p.returncode}: {error_line(p.stderr, p.returncode)}"
    return p.stdout, None


def exit_code(errors, verdicts, strict=False):
    """1 if any cell errored, or (strict) any target is not PASS; else 0."""
    if errors:
        return 1
    if strict and any(v != PASS for v in verdicts):
        return 1
    return 0


def add_strict_arg(parser):
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a target is missed or cannot be measured "
                             "(an errored run always exits 1)")

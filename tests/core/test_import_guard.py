"""Importing gmp from a source tree that was never built fails with a
message that says what to do, not with a bare missing-module error."""
import shutil
import subprocess
import sys

import gmp


def _import_from(tree):
    return subprocess.run([sys.executable, "-P", "-c", "import gmp"], cwd=tree, capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": str(tree)}, check=False)


def _copy_package(dst):
    shutil.copytree(gmp.__path__[0], dst / "gmp", ignore=shutil.ignore_patterns("*.so", "__pycache__"))


def test_unbuilt_source_tree_says_what_to_do(tmp_path):
    _copy_package(tmp_path)
    (tmp_path / "setup.py").write_text("")
    (tmp_path / "_ext").mkdir()
    p = _import_from(tmp_path)
    assert p.returncode == 1
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: you are importing gmp from its source tree"), p.stderr
    assert "pip install -e ." in last and str(tmp_path) in last


def test_installed_package_missing_its_core_says_reinstall(tmp_path):
    _copy_package(tmp_path)
    p = _import_from(tmp_path)
    assert p.stderr.strip().splitlines()[-1] == (
        f"ImportError: gmp's compiled core gmp._ext._core is missing under {tmp_path}: reinstall gmp")

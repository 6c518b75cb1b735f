"""gmp.settings, the one table of GMP* environment variables: values parsed
with clear errors naming the variable, GMPDEBUG parsed as Go's GODEBUG,
explicit units with the old spellings still working, and the README's
table generated from it."""
import os
import pathlib
import re

import pytest

import gmp
from gmp import settings, sysmon

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_table_is_the_generated_one():
    if not README.exists():
        pytest.skip("run from outside the source tree (installed-package run)")
    assert settings.markdown_table() in README.read_text()


def test_every_gmp_variable_read_in_gmp_is_in_the_table():
    root = pathlib.Path(gmp.__file__).parent
    names = {s.name for s in settings.SETTINGS}
    for path in root.rglob("*.py"):
        if path.name == "settings.py":
            continue
        text = path.read_text()
        assert not re.search(r"environ(\.get)?\(\s*['\"]GMP|getenv\(\s*['\"]GMP", text), (
            f"{path} reads a GMP variable itself; use gmp.settings")
        for name in re.findall(r"\b(GMP[A-Z_]*[A-Z])\b", text):
            if name not in ("GMP_DEBUG_BUILD",):      # a build option, read by setup.py
                assert name in names, f"{path} mentions {name}, which gmp.settings does not define"


def test_defaults_when_unset(monkeypatch):
    for s in settings.SETTINGS:
        monkeypatch.delenv(s.name, raising=False)
    assert settings.get("GMPMAXPROCS") is None
    assert settings.get("GMPPOLICY") == "go"
    assert settings.get("GMPBLOCKINGTHREADS") == 32
    d = settings.debug()
    assert d == {"schedtrace": 0, "scheddetail": False, "dumpsignal": None, "sysmon": True,
                 "sysmonlongms": 0.0, "sysmonstuckms": 1.0,
                 "trace": None, "latency": None}


@pytest.mark.parametrize("name, value, expected", [
    ("GMPMAXPROCS", "0", "GMPMAXPROCS must be an integer >= 1 (Ms), got '0'"),
    ("GMPMAXPROCS", "four", "GMPMAXPROCS must be an integer >= 1 (Ms), got 'four'"),
    ("GMPBLOCKINGTHREADS", "-3", "GMPBLOCKINGTHREADS must be an integer >= 1 (threads), got '-3'"),
])
def test_bad_value_names_the_variable_and_gmp_run_refuses_it(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as e:
        settings.get(name)
    assert str(e.value) == expected
    if name == "GMPMAXPROCS":
        with pytest.raises(ValueError, match=re.escape(expected)):
            gmp.run(lambda: None)


@pytest.mark.parametrize("value, expected", [
    ("schedtrace=fast", "GMPDEBUG: schedtrace must be an integer >= 0 (ms), got 'fast'"),
    ("sysmonstuckms=-1", "GMPDEBUG: sysmonstuckms must be a number >= 0 (ms), got '-1'"),
    ("sysmonlongms=nan", "GMPDEBUG: sysmonlongms must be a number >= 0 (ms), got 'nan'"),
    ("scheddetail=yes", "GMPDEBUG: scheddetail must be a 0 or 1, got 'yes'"),
    ("dumpsignal=NOPE", "GMPDEBUG: dumpsignal must be a signal name, got 'NOPE'"),
])
def test_bad_gmpdebug_key_names_the_key(value, expected):
    with pytest.raises(ValueError) as e:
        settings.debug(value)
    assert str(e.value) == expected


def test_gmpdebug_like_godebug():
    d = settings.debug("gctrace=1, schedtrace=5 ,schedtrace=7,scheddetail,dumpsignal=usr1")
    assert d["schedtrace"] == 7 and d["scheddetail"] is True and d["dumpsignal"] == "SIGUSR1"


def test_units_explicit_and_old_spellings_keep_their_units():
    c = sysmon.Config.from_env("sysmonlongms=50,sysmonstuckms=0.5")
    assert (c.long_ns, c.stuck_ns) == (50_000_000, 500_000)
    old = sysmon.Config.from_env("sysmonlong=50,sysmonstuck=500")     # ms and us, as before
    assert (old.long_ns, old.stuck_ns) == (50_000_000, 500_000)
    both = sysmon.Config.from_env("sysmonstuck=9000,sysmonstuckms=2")  # the explicit one wins
    assert both.stuck_ns == 2_000_000


def test_a_changed_environment_is_seen_by_the_next_call(monkeypatch):
    monkeypatch.setenv("GMPBLOCKINGTHREADS", "3")
    assert settings.get("GMPBLOCKINGTHREADS") == 3
    monkeypatch.setenv("GMPBLOCKINGTHREADS", "5")
    assert settings.get("GMPBLOCKINGTHREADS") == 5


def test_gmpmaxprocs_sets_the_number_of_ms(monkeypatch):
    from gmp._ext import _core
    monkeypatch.setenv("GMPMAXPROCS", "3")
    assert gmp.run(_core.nprocs) == 3
    assert os.environ["GMPMAXPROCS"] == "3"

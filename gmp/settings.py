"""Every ``GMP*`` environment variable in one table, parsed in one place.

As Go's runtime keeps its GODEBUG keys in one ``dbgvars`` table, gmp keeps
here each variable with its type, unit, default and meaning; the modules
that use one ask ``get(name)`` (or ``debug()`` for a GMPDEBUG key) and never
read ``os.environ`` themselves.  The README's settings table is generated
from this one (``markdown_table()``; a test checks that they agree).

Parsing.  A value is parsed once per distinct text (the cache is keyed by
the text, so a test or a program that changes the environment between two
gmp.run() calls gets the new value) and a bad one is a ValueError that names
the variable, the key and what was expected, raised by gmp.run() before any
thread starts.  An unset or empty variable means its default.

GMPDEBUG is parsed as Go parses GODEBUG: comma-separated ``key=value``
pairs, a bare key meaning ``key=1``, later keys winning, unknown keys
ignored (so one GMPDEBUG can serve several gmp versions).

Units.  Every duration key says its unit in its name or its row: the
schedtrace period is in ms as Go's; the sysmon thresholds are
``sysmonlongms`` and ``sysmonstuckms``, both in ms and both accepting a
fraction.  The first spellings, ``sysmonlong`` (ms) and ``sysmonstuck``
(which was in us), still work with their old units; when both spellings of
one key are given, the explicit one wins.
"""
import os
import signal
from dataclasses import dataclass

__all__ = ["SETTINGS", "DEBUG_KEYS", "get", "debug", "parse_gmpdebug", "markdown_table"]


def _positive_int(text):
    n = int(text)
    if n < 1:
        raise ValueError
    return n


def _nonneg_int(text):
    n = int(text)
    if n < 0:
        raise ValueError
    return n


def _nonneg_float(text):
    x = float(text)
    if not x >= 0:          # rejects NaN too
        raise ValueError
    return x


def _flag(text):
    if text not in ("0", "1"):
        raise ValueError
    return text == "1"


def _signal_name(text):
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name not in signal.Signals.__members__:
        raise ValueError
    return name


def _text(text):
    return text


@dataclass(frozen=True)
class Setting:
    """One environment variable or GMPDEBUG key."""

    name: str
    kind: str          # what a value looks like, for the error and the README
    unit: str
    default: object    # None: derived at run time, as `default_doc` says
    doc: str
    parse: object = _text
    default_doc: str = ""
    alias_of: str = ""     # an old spelling of another key
    alias_scale: float = 1.0

    def shown_default(self):
        if self.default_doc or self.default is None:
            return self.default_doc
        if isinstance(self.default, bool):
            return str(int(self.default))
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)


SETTINGS = (
    Setting("GMPMAXPROCS", "integer >= 1", "Ms", None, "number of Ms (OS threads, each with a P)",
            _positive_int, default_doc="CPUs in the process's affinity mask"),
    Setting("GMPPOLICY", "policy name", "", "go", "scheduling policy (`gmp/policy.py`)"),
    Setting("GMPPIN", "none, compact, scatter or a CPU list", "", "none",
            "pin each M to a CPU (`gmp/topology.py`)"),
    Setting("GMPBLOCKINGTHREADS", "integer >= 1", "threads", 32, "size of the `gmp.blocking` helper pool",
            _positive_int),
    Setting("GMP_SYSFS_ROOT", "path", "", "/sys", "where the CPU/NUMA topology is read (tests fake one)"),
    Setting("GMP_PROC_ROOT", "path", "", "/", "where `gmp doctor` reads /proc (tests fake one)"),
    Setting("GMPKILLGRACE", "number >= 0", "s", 5.0, "how long shutdown waits for a G that keeps "
            "swallowing gmp.Killed before reporting and abandoning it", _nonneg_float),
    Setting("GMPDEBUG", "key=value,...", "", "", "debugging keys, below (as Go's GODEBUG)"),
)

DEBUG_KEYS = (
    Setting("schedtrace", "integer >= 0", "ms", 0, "print Go's schedtrace line every N ms (0: off)", _nonneg_int),
    Setting("scheddetail", "0 or 1", "", False, "schedtrace prints every P, M and G", _flag),
    Setting("dumpsignal", "signal name", "", None, "dump every G on this signal (like Go's SIGQUIT), "
            "without stopping", _signal_name, default_doc="off"),
    Setting("sysmon", "0 or 1", "", True, "run the sysmon thread", _flag),
    Setting("sysmonlongms", "number >= 0", "ms", 0.0, "report a G holding its M longer (0: off, "
            "the default: the monitor is quiet unless asked)",
            _nonneg_float),
    Setting("sysmonstuckms", "number >= 0", "ms", 1.0, "wake an idle M when a P with queued Gs "
            "made no progress this long (0: off)", _nonneg_float),
    Setting("trace", "path", "", None, "record a scheduler trace to FILE (Chrome trace-event JSON; "
            "`gmp/trace.py`)", default_doc="off"),
    Setting("latency", "path", "", None, "sample request latencies into FILE (`gmp latency report "
            "FILE`; `gmp/latency.py`)", default_doc="off"),
    Setting("sysmonlong", "integer >= 0", "ms", None, "old spelling of sysmonlongms", _nonneg_int,
            alias_of="sysmonlongms"),
    Setting("sysmonstuck", "integer >= 0", "us", None, "old spelling of sysmonstuckms, in us", _nonneg_int,
            alias_of="sysmonstuckms", alias_scale=1e-3),
)

_BY_NAME = {s.name: s for s in SETTINGS}
_DEBUG_BY_KEY = {s.name: s for s in DEBUG_KEYS}
_cache = {}


def _parse(setting, text, where):
    try:
        return setting.parse(text)
    except (ValueError, TypeError):
        raise ValueError(f"{where} must be {'an ' if setting.kind[0] in 'aeiou' else 'a '}"
                         f"{setting.kind}{' (' + setting.unit + ')' if setting.unit else ''}, "
                         f"got {text!r}") from None


def get(name):
    """The value of environment variable `name` (one of SETTINGS), parsed;
    its default when unset or empty."""
    setting = _BY_NAME[name]
    text = os.environ.get(name, "")
    if not text:
        return setting.default
    key = (name, text)
    if key not in _cache:
        _cache[key] = _parse(setting, text, name)
    return _cache[key]


def parse_gmpdebug(value):
    """The GMPDEBUG keys gmp knows that `value` sets, parsed (old spellings
    as themselves, in their own units)."""
    out = {}
    for item in value.split(","):
        key, sep, text = item.strip().partition("=")
        setting = _DEBUG_BY_KEY.get(key)
        if setting is not None:
            out[key] = _parse(setting, text.strip() if sep else "1", f"GMPDEBUG: {key}")
    return out


def debug(value=None):
    """Every GMPDEBUG key (old spellings folded into the explicit ones),
    from `value` or the environment, with defaults filled in."""
    if value is None:
        value = os.environ.get("GMPDEBUG", "")
    key = ("GMPDEBUG", value)
    if key not in _cache:
        given = parse_gmpdebug(value)
        out = {s.name: s.default for s in DEBUG_KEYS if not s.alias_of}
        for s in DEBUG_KEYS:
            if s.alias_of and s.name in given and s.alias_of not in given:
                out[s.alias_of] = given[s.name] * s.alias_scale
        out.update((k, v) for k, v in given.items() if not _DEBUG_BY_KEY[k].alias_of)
        _cache[key] = out
    return dict(_cache[key])


def markdown_table():
    """The README's settings table."""
    rows = ["| variable | value | default | meaning |", "|---|---|---|---|"]

    def cell(text):
        return text.replace("|", "\\|")
    for s in SETTINGS:
        unit = f" ({s.unit})" if s.unit else ""
        rows.append(f"| `{s.name}` | {cell(s.kind)}{unit} | {cell(s.shown_default()) or '-'} | {cell(s.doc)} |")
    for s in DEBUG_KEYS:
        unit = f" ({s.unit})" if s.unit else ""
        rows.append(f"| `GMPDEBUG={s.name}=` | {cell(s.kind)}{unit} | {cell(s.shown_default()) or '-'} "
                    f"| {cell(s.doc)} |")
    return "\n".join(rows)

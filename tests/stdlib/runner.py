"""CPython's own tests for the modules gmp patches, run under gmp and gevent.

"Drop-in" means an unmodified program behaves as the stdlib documents, only
cooperatively.  The strictest unmodified programs at hand are CPython's own
test suites for the modules that ``gmp.monkey.patch_all()`` replaces, so this
runner loads them (the ``test`` package of the running interpreter) with
unittest and runs every test class three ways, each in fresh processes:

    plain    no patching at all: the reference; a test that fails here is
             excluded (it fails for reasons that have nothing to do with us:
             no network, no root, a missing resource)
    gevent   ``gevent.monkey.patch_all()`` first, then the tests in the main
             greenlet: the bar to beat
    gmp      ``gmp.monkey.patch_all()`` first, then the tests inside
             ``gmp.run(...)`` as the main G, on the default number of Ms

One process per (impl, test class), so a test that wrecks interpreter state
takes only its class down.  A per-test watchdog (``faulthandler``, a C thread
that no patching can turn into a G) ends a test that hangs; the runner then
records it as a hang and resumes the class after it in a new process, so one
hang costs one test, not the class.  A crash (a signal) is recorded the same
way.

Tests that cannot pass under any patching (they poke CPython internals, fork
without exec and expect OS threads in the child, count OS threads) are listed
with the reason in ``known.py`` beside this file; the table shows them apart,
and ``--strict`` exits 1 if gmp fails anything beyond that list or fails more
tests than gevent in any module.

    python tests/stdlib/runner.py                       # every target, table
    python tests/stdlib/runner.py -m test_select -m test_queue --impl gmp
    python tests/stdlib/runner.py --json out.json --jobs 2
    python tests/stdlib/runner.py --show test_socket    # each failing test id

It is not collected by pytest (the whole run takes many minutes); the
README records a real run's table.
"""
import argparse
import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))

# The modules gmp patches, by CPython test module.
TARGETS = [
    "test_socket", "test_ssl", "test_select", "test_selectors", "test_threading",
    "test_thread", "test_threading_local", "test_queue", "test_subprocess",
    "test_signal", "test_socketserver", "test_time", "test_httplib",
]
IMPLS = ("plain", "gevent", "gmp")
BAD = ("fail", "error", "hang", "crash")


# --------------------------------------------------------------------------
# child: run some tests of one module under one impl, one JSON line per event

def _child(impl, module, only, out_path, per_test):
    if impl == "gevent":
        from gevent import monkey
        monkey.patch_all()
    elif impl == "gmp":
        import gmp.monkey
        gmp.monkey.patch_all()
    import faulthandler
    import unittest

    out = open(out_path, "a", buffering=1)  # noqa: SIM115 - open for the process's life; os._exit ends it

    def emit(**kw):
        out.write(json.dumps(kw) + "\n")
        out.flush()

    class Result(unittest.TestResult):
        def startTest(self, test):
            super().startTest(test)
            emit(ev="start", id=test.id())
            faulthandler.dump_traceback_later(per_test, exit=True)

        def stopTest(self, test):
            faulthandler.cancel_dump_traceback_later()
            super().stopTest(test)

        def _end(self, test, outcome, err=None):
            line = ""
            if err is not None:
                exc = err[1]
                line = f"{type(exc).__name__}: {exc}".splitlines()[0][:300] if exc is not None else ""
            emit(ev="end", id=test.id(), outcome=outcome, why=line)

        def addSuccess(self, test):
            super().addSuccess(test)
            self._end(test, "pass")

        def addFailure(self, test, err):
            super().addFailure(test, err)
            self._end(test, "fail", err)

        def addError(self, test, err):
            super().addError(test, err)
            # setUpClass/setUpModule errors arrive with a _ErrorHolder.
            self._end(test, "error", err)

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            emit(ev="end", id=test.id(), outcome="skip", why=reason[:200])

        def addExpectedFailure(self, test, err):
            super().addExpectedFailure(test, err)
            self._end(test, "pass")

        def addUnexpectedSuccess(self, test):
            super().addUnexpectedSuccess(test)
            self._end(test, "fail")

    def main():
        mod = __import__(f"test.{module}", fromlist=["*"])
        suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
        wanted = set(only)
        flat = unittest.TestSuite(t for t in _flatten(suite) if t.id() in wanted)
        flat.run(Result())
        emit(ev="done")
        out.close()
        # Ends here, inside gmp.run: threads or Gs a test leaked (one stuck
        # in a real _thread lock holds its M, and gmp.run waits for every
        # M) must not keep the class's process alive past its results.
        os._exit(0)

    if impl == "gmp":
        import gmp
        gmp.run(main)
    else:
        main()


def _flatten(suite):
    import unittest
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


def _list_child(module):
    import unittest
    mod = __import__(f"test.{module}", fromlist=["*"])
    ids = [t.id() for t in _flatten(unittest.defaultTestLoader.loadTestsFromModule(mod))]
    print(json.dumps(ids))


# --------------------------------------------------------------------------
# parent

def _cmd(*args):
    # -X faulthandler so a crash prints its stack; cwd is a scratch dir so
    # nothing in the caller's directory shadows an installed gmp.
    return [sys.executable, "-X", "faulthandler", os.path.abspath(__file__), *args]


def list_tests(module):
    p = subprocess.run(_cmd("--list-child", module), check=False, capture_output=True, text=True, timeout=120,
                       cwd=tempfile.gettempdir())
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"{module}: cannot list tests: {tail}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_class(impl, module, ids, per_test, class_budget):
    """Outcome per test id, resuming after a hang or a crash."""
    results = {}
    todo = list(ids)
    deadline = time.monotonic() + class_budget
    while todo:
        with tempfile.NamedTemporaryFile("w+", suffix=".jsonl", delete=False) as f:
            path = f.name
        started = None
        try:
            left = max(5.0, deadline - time.monotonic())
            try:
                p = subprocess.run(_cmd("--child", impl, module, path, str(per_test)),
                                   input=json.dumps(todo), check=False, capture_output=True, text=True,
                                   timeout=left, cwd=tempfile.mkdtemp(prefix="gmp-stdlib-"))
                rc = p.returncode
            except subprocess.TimeoutExpired:
                rc = "budget"
            done = False
            with open(path) as fh:
                for line in fh:
                    ev = json.loads(line)
                    if ev["ev"] == "start":
                        started = ev["id"]
                    elif ev["ev"] == "end":
                        # A class/module fixture error has an id not in todo.
                        results.setdefault(ev["id"], (ev["outcome"], ev.get("why", "")))
                        started = None
                    elif ev["ev"] == "done":
                        done = True
        finally:
            os.unlink(path)
        seen = set(results)
        if done:
            break
        if started is not None:
            kind = "hang" if rc in (1, "budget") else "crash"
            results[started] = (kind, f"exit {rc}")
            seen.add(started)
        elif rc == "budget" or not results:
            for t in todo:
                results.setdefault(t, ("hang" if rc == "budget" else "crash", f"exit {rc}"))
            break
        todo = [t for t in todo if t not in seen]
        if time.monotonic() > deadline:
            for t in todo:
                results.setdefault(t, ("hang", "class budget"))
            break
    return results


def load_known():
    # known.py lies beside this file, which is sys.path[0] when run as a script.
    from known import KNOWN
    return KNOWN


def is_known(test_id, known):
    short = test_id.removeprefix("test.")
    return next((why for pat, why in known.items() if fnmatch.fnmatchcase(short, pat)), None)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="runner.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--module", action="append", help="CPython test module (default: all targets)")
    ap.add_argument("--impl", action="append", choices=IMPLS,
                    help="implementations to run besides plain (default: gevent and gmp)")
    ap.add_argument("--per-test", type=float, default=30.0, help="seconds before a test counts as hung")
    ap.add_argument("--class-budget", type=float, default=300.0, help="seconds for one class, all resumes")
    ap.add_argument("--jobs", type=int, default=2, help="classes run at once")
    ap.add_argument("--json", metavar="FILE", help="write every outcome as JSON")
    ap.add_argument("--show", action="append", default=[], metavar="MODULE",
                    help="list each test of MODULE that fails under gmp or gevent")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 if gmp fails beyond known.py or more than gevent in a module")
    args = ap.parse_args(argv)
    modules = args.module or TARGETS
    impls = ["plain"] + [i for i in (args.impl or ["gevent", "gmp"]) if i != "plain"]
    known = load_known()

    jobs = []
    for module in modules:
        ids = list_tests(module)
        by_class = {}
        for t in ids:
            by_class.setdefault(t.rsplit(".", 1)[0], []).append(t)
        for cls_ids in by_class.values():
            for impl in impls:
                jobs.append((impl, module, cls_ids))
    outcome = {impl: {} for impl in impls}
    t0 = time.monotonic()
    with ThreadPoolExecutor(args.jobs) as ex:
        futs = [(j, ex.submit(run_class, j[0], j[1], j[2], args.per_test, args.class_budget)) for j in jobs]
        for n, ((impl, module, _), fut) in enumerate(futs, 1):
            outcome[impl].update(fut.result())
            print(f"\r[{n}/{len(futs)}] {time.monotonic() - t0:5.0f} s {module:<22}", end="",
                  file=sys.stderr, flush=True)
    print(file=sys.stderr)

    rows, failed_strict = [], False
    for module in modules:
        pref = f"test.{module}."
        base = {t: o for t, o in outcome["plain"].items() if t.startswith(pref)}
        ok = [t for t, (o, _) in base.items() if o == "pass"]
        row = {"module": module, "tests": len(ok)}
        for impl in impls[1:]:
            bad = [t for t in ok if outcome[impl].get(t, ("missing",))[0] in BAD + ("missing",)]
            row[impl] = {
                "fail": sum(outcome[impl].get(t, ("fail",))[0] != "hang" for t in bad),
                "hang": sum(outcome[impl].get(t, ("",))[0] == "hang" for t in bad),
                "known": sum(is_known(t, known) is not None for t in bad),
                "bad": bad,
            }
        rows.append(row)
        if "gmp" in row:
            g = row["gmp"]
            beyond = len(g["bad"]) - g["known"]
            worse = "gevent" in row and len(g["bad"]) > len(row["gevent"]["bad"])
            failed_strict |= beyond > 0 or worse

    print_table(rows, impls)
    for module in args.show:
        for row in rows:
            if row["module"] != module:
                continue
            for impl in impls[1:]:
                for t in row[impl]["bad"]:
                    o, why = outcome[impl].get(t, ("missing", ""))
                    mark = " (known)" if impl == "gmp" and is_known(t, known) else ""
                    print(f"{impl:<6} {o:<6} {t}{mark}  {why}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "rows": rows,
                       "outcomes": {i: {t: list(o) for t, o in d.items()} for i, d in outcome.items()}}, f, indent=1)
    return 1 if args.strict and failed_strict else 0


def print_table(rows, impls):
    others = impls[1:]
    head = f"{'module':<22} {'tests':>5}" + "".join(f"  {i + ' fail/hang':>16}" for i in others)
    if "gmp" in others:
        head += f"  {'gmp known':>9}  {'gmp beyond':>10}"
    print(f"CPython {sys.version.split()[0]} test suites; tests that fail without patching excluded")
    print(head)
    print("-" * len(head))
    tot = {i: [0, 0] for i in others}
    ntests = known_t = beyond_t = 0
    for r in rows:
        line = f"{r['module']:<22} {r['tests']:>5}"
        ntests += r["tests"]
        for i in others:
            line += f"  {str(r[i]['fail']) + ' / ' + str(r[i]['hang']):>16}"
            tot[i][0] += r[i]["fail"]
            tot[i][1] += r[i]["hang"]
        if "gmp" in others:
            g = r["gmp"]
            line += f"  {g['known']:>9}  {len(g['bad']) - g['known']:>10}"
            known_t += g["known"]
            beyond_t += len(g["bad"]) - g["known"]
        print(line)
    line = f"{'total':<22} {ntests:>5}" + "".join(f"  {str(tot[i][0]) + ' / ' + str(tot[i][1]):>16}" for i in others)
    if "gmp" in others:
        line += f"  {known_t:>9}  {beyond_t:>10}"
    print("-" * len(head))
    print(line)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        impl, module, out_path, per_test = sys.argv[2:6]
        _child(impl, module, json.loads(sys.stdin.read()), out_path, float(per_test))
    elif sys.argv[1:2] == ["--list-child"]:
        _list_child(sys.argv[2])
    else:
        sys.exit(main())

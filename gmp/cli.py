"""The ``gmp`` command line (also ``python -m gmp``).

Subcommands register themselves from the module that implements them, so
this file wires argparse together and holds only ``gmp run`` (whose work is
gmp.monkey.run_script) and the script-argument parsing it shares with
``gmp profile``:

    gmp run SCRIPT [ARGS...]         run an unmodified script on gmp (monkey patched)
    gmp bench steal-vs-global ...    the scheduling-policy comparison
    gmp flame svg|diff ...           flame graphs and the A/B gate
    gmp version                      versions of gmp, greenlet and Python

Each handler returns the process exit code.
"""
import argparse
import importlib
import sys


def script_argv(args, command):
    """The script and its arguments from an argparse REMAINDER (a leading
    "--" dropped); None, after saying so, if there is no script."""
    argv = list(args.script)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print(f"gmp {command}: give a script to run: gmp {command} [options] [--] script.py [args...]",
              file=sys.stderr)
        return None
    return argv


def _run_cmd(args):
    from gmp.monkey import run_script

    argv = script_argv(args, "run")
    if argv is None:
        return 2
    run_script(argv[0], argv[1:], procs=args.procs)
    return 0


def _add_run_parser(subparsers):
    p = subparsers.add_parser(
        "run", help="run an unmodified script on gmp, monkey patched",
        description="Patch the standard library (gmp.monkey.patch_all) and run "
                    "SCRIPT as __main__ in the main G.")
    p.add_argument("--procs", type=int, help="number of Ms (default GMPMAXPROCS or CPUs)")
    p.add_argument("script", nargs=argparse.REMAINDER, help="script.py [args...]")
    p.set_defaults(func=_run_cmd)
    return p


def _version(args):
    import platform

    import greenlet

    import gmp

    print(f"gmp {gmp.__version__} (greenlet {greenlet.__version__}, "
          f"{platform.python_implementation()} {platform.python_version()})")
    return 0


# (module, function) pairs that add their subcommands to a subparsers object.
_TOP = [("gmp.profile", "add_parser"),
        ("gmp.flame.cli", "add_flame_parser")]
_BENCH = [("gmp.bench.steal_vs_global", "add_parser")]


def _register(sub, plugins):
    for modname, fn in plugins:
        getattr(importlib.import_module(modname), fn)(sub)


def build_parser():
    parser = argparse.ArgumentParser(prog="gmp", description="Go-style M:N coroutine runtime for Python")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    v = sub.add_parser("version", help="print versions")
    v.set_defaults(func=_version)
    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCH")
    bench_sub.required = True
    _register(bench_sub, _BENCH)
    _add_run_parser(sub)
    _register(sub, _TOP)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

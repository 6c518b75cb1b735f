"""The ``gmp`` command line (also ``python -m gmp``).

Subcommands register themselves from the module that implements them, so
this file only wires argparse together:

    gmp run SCRIPT [ARGS...]         run an unmodified script on gmp (monkey patched)
    gmp bench steal-vs-global ...    the scheduling-policy comparison
    gmp flame svg|diff ...           flame graphs and the A/B gate
    gmp version                      versions of gmp, greenlet and Python

Each handler returns the process exit code.
"""
import argparse
import importlib
import sys


def _version(args):
    import platform

    import greenlet

    import gmp

    print(f"gmp {gmp.__version__} (greenlet {greenlet.__version__}, "
          f"{platform.python_implementation()} {platform.python_version()})")
    return 0


# (module, function) pairs that add their subcommands to a subparsers object.
_TOP = [("gmp.monkey", "add_parser"), ("gmp.profile", "add_parser"),
        ("gmp.flame.cli", "add_flame_parser"), ("gmp.doctor", "add_parser"),
        ("gmp.latency", "add_parser"), ("gmp.trace", "add_parser")]
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
    _register(sub, _TOP)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""The ``gmp`` command line (also ``python -m gmp``).

Subcommands register themselves from the module that implements them, so
this file wires argparse together and holds only ``gmp run`` (whose work is
gmp.monkey.run_script) and the script-command parser and argument parsing it shares with
``gmp trace`` and ``gmp profile``:

    gmp run SCRIPT [ARGS...]         run an unmodified script on gmp (monkey patched)
    gmp bench steal-vs-global ...    the scheduling-policy comparison
    gmp flame svg|diff ...           flame graphs and the A/B gate
    gmp version                      versions of gmp, greenlet and Python

Each handler returns the process exit code.
"""
import argparse
import importlib
import sys
import warnings


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


def add_script_command(subparsers, name, func, help, description):
    """A subcommand that runs a script: ``gmp NAME [options] [--] SCRIPT [ARGS...]``.
    The caller adds its options to the parser returned (argparse parses
    optionals wherever they are declared; the script takes the rest)."""
    p = subparsers.add_parser(name, help=help, description=description)
    p.add_argument("script", nargs=argparse.REMAINDER, help="[--] script.py [args...]")
    p.set_defaults(func=func)
    return p


def _add_run_parser(subparsers):
    p = add_script_command(
        subparsers, "run", _run_cmd, help="run an unmodified script on gmp, monkey patched",
        description="Patch the standard library (gmp.monkey.patch_all) and run "
                    "SCRIPT as __main__ in the main G.")
    p.add_argument("--procs", type=int, help="number of Ms (default GMPMAXPROCS or CPUs)")


def _version(args):
    import platform
    from importlib.metadata import version

    import greenlet

    # The installed distribution's version (gmp.__version__ is the same):
    # the command line imports no part of gmp it does not run.
    print(f"gmp {version('gmp')} (greenlet {greenlet.__version__}, "
          f"{platform.python_implementation()} {platform.python_version()})")
    return 0


def _trace_cmd(args):
    from gmp.monkey import run_script
    from gmp.trace import Tracer

    argv = script_argv(args, "trace")
    if argv is None:
        return 2
    tracer = Tracer(args.output, capacity=args.capacity)
    with tracer, warnings.catch_warnings():
        # The only thread alive when run_script patches threading is the
        # drain thread, which must stay an OS thread: no news for the user.
        warnings.filterwarnings("ignore", "gmp.monkey: 1 thread", RuntimeWarning)
        try:
            run_script(argv[0], argv[1:], duration=args.duration)
        except SystemExit as e:
            if e.code not in (None, 0):
                raise
    print(f"gmp trace: {tracer.events} events ({tracer.dropped} dropped) -> {args.output}",
          file=sys.stderr)
    return 0


def _add_trace_parser(subparsers):
    p = add_script_command(
        subparsers, "trace", _trace_cmd, help="run a script on gmp and record a scheduler trace",
        description="Run SCRIPT on gmp (as gmp run does) and write every G transition per M "
                    "as Chrome trace-event JSON (open it in Perfetto or chrome://tracing).")
    p.add_argument("-o", "--output", default="trace.json", help="output file (default trace.json)")
    p.add_argument("--capacity", type=int, default=1 << 16,
                   help="events buffered per M between drains (a power of two, default 65536)")
    p.add_argument("--duration", type=float, help="stop the script after this many seconds")


# (module, function) pairs that add their subcommands to a subparsers object.
_TOP = [("gmp.profile", "add_parser"),
        ("gmp.flame.cli", "add_flame_parser"), ("gmp.doctor", "add_parser"),
        ("gmp.latency", "add_parser")]
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
    _add_trace_parser(sub)
    _register(sub, _TOP)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

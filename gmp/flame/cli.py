"""argparse wiring for ``gmp flame ...``.

``add_flame_parser(subparsers)`` registers ``flame`` with three commands on
the main CLI's subparsers; each leaf sets ``func``, a handler taking the
parsed ``args`` and returning the process exit code::

    gmp flame svg FILE [-o OUT] [--title T] [--orientation icicle|flame]
    gmp flame speedscope FILE [-o OUT]
    gmp flame diff BASE CAND [--fail-above PP] [--ignore-lines] [--drop-roots]
                   [--min-samples N] [--svg OUT] [--top N] [--json]

Exit codes: 0 ok / diff passed; 1 diff found a regression; 2 bad input
(unreadable or malformed file, as argparse uses 2 for bad arguments) or an
inconclusive diff (too few samples).  Output goes to stdout unless ``-o``.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import diff, folded, speedscope, svg


class _InputError(Exception):
    pass


def _read(path: str) -> folded.Profile:
    try:
        return folded.read(path)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise _InputError(f"gmp flame: cannot read {path}: {e}") from e


def _emit(text: str, out: str | None) -> None:
    if out is None or out == "-":
        sys.stdout.write(text)
    else:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)


def _reporting_input_errors(handler):
    """Turn a bad input file into a one-line message and exit code 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except _InputError as e:
            print(e, file=sys.stderr)
            return 2

    return run


@_reporting_input_errors
def _svg(args: argparse.Namespace) -> int:
    profile = _read(args.file)
    _emit(svg.render(profile, args.title or args.file, orientation=args.orientation), args.output)
    return 0


@_reporting_input_errors
def _speedscope(args: argparse.Namespace) -> int:
    _emit(speedscope.dumps(_read(args.file), name=args.file), args.output)
    return 0


@_reporting_input_errors
def _diff(args: argparse.Namespace) -> int:
    options = {"ignore_lines": args.ignore_lines, "drop_roots": args.drop_roots}
    base = diff.prepare(_read(args.base), **options)
    cand = diff.prepare(_read(args.cand), **options)
    result = diff.compare(base, cand, fail_above=args.fail_above, min_samples=args.min_samples)
    if args.json:
        print(json.dumps(result.to_json(args.top), indent=2))
    else:
        sys.stdout.write(result.format_text(args.top))
    if args.svg:
        title = f"{args.base} -> {args.cand}"
        _emit(svg.render_diff(base, cand, title, orientation=args.orientation), args.svg)
    return result.exit_code


def add_flame_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``flame svg|speedscope|diff`` on an argparse subparsers object."""
    flame = subparsers.add_parser("flame", help="flame profiles: render and compare folded files")
    commands = flame.add_subparsers(dest="flame_command", required=True)

    p = commands.add_parser("svg", help="render a folded file as an SVG flame graph")
    p.add_argument("file", help="folded file (gmp or py-spy --format raw)")
    p.add_argument("-o", "--output", help="SVG file to write (default: stdout)")
    p.add_argument("--title", help="graph title (default: the file name)")
    _orientation(p)
    p.set_defaults(func=_svg)

    p = commands.add_parser("speedscope", help="convert a folded file to speedscope JSON")
    p.add_argument("file", help="folded file (gmp or py-spy --format raw)")
    p.add_argument("-o", "--output", help="JSON file to write (default: stdout)")
    p.set_defaults(func=_speedscope)

    p = commands.add_parser(
        "diff",
        help="compare two folded files; exit 1 if a frame's self share grew too much",
        description="Exit status: 0 pass, 1 a frame's self share grew by more than"
        " --fail-above percentage points, 2 bad input or too few samples.",
    )
    p.add_argument("base", help="baseline folded file")
    p.add_argument("cand", help="candidate folded file")
    p.add_argument(
        "--fail-above",
        type=float,
        default=diff.DEFAULT_FAIL_ABOVE,
        metavar="PP",
        help="fail when a frame's self share grows by more than PP percentage points (default %(default)s)",
    )
    p.add_argument("--ignore-lines", action="store_true", help="compare frames without line numbers")
    p.add_argument(
        "--drop-roots", action="store_true", help="drop thread and process root frames instead of canonicalising them"
    )
    p.add_argument(
        "--min-samples",
        type=int,
        default=0,
        metavar="N",
        help="inconclusive (exit 2) if either side has fewer than N samples (default %(default)s)",
    )
    p.add_argument("--svg", metavar="OUT", help="also write a differential SVG (red grew, blue shrank)")
    _orientation(p)
    p.add_argument("--top", type=int, default=10, metavar="N", help="rows per table (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_diff)
    return flame


def _orientation(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--orientation",
        choices=("icicle", "flame"),
        default="icicle",
        help="icicle: roots on top (default); flame: roots at the bottom",
    )

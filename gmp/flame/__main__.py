"""``python -m gmp.flame diff BASE CAND`` = ``gmp flame diff BASE CAND``.

Runs the flame CLI without the rest of ``gmp``: the arguments are parsed as
if they followed ``gmp flame``, so usage and help texts match the real CLI.
"""

import argparse
import sys

from .cli import add_flame_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gmp")
    add_flame_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["flame", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

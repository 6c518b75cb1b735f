"""Benchmarks run by ``gmp bench``: each module exposes add_parser(subparsers)."""

"""Benchmarks run by ``gmp bench``: each workload module exposes
add_parser(subparsers) (steal_vs_global).  harness.py is what every gmp
benchmark shares, these and the scripts in the repository's bench/:
children that measure the gmp their parent imported, PASS/MISS verdicts and
the exit codes (--strict)."""

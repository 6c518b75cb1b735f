"""Compiled core (built from the top-level ``_ext/`` Cython sources)."""

"""Build the Cython core (`_ext/`) into `gmp._ext`.

The sources live in the top-level `_ext/` directory (one file per job: runq,
timers, sched, chan, ...) and are compiled as one extension module,
`gmp._ext._core`, so that the scheduler loop can call the run queue, timer and
channel code as plain C functions with no cross-module indirection.

``GMP_DEBUG_BUILD=1`` builds the debug extension: Cython bounds and
wraparound checks on, the scheduler's invariants asserted in C (a G queued
twice or readied while not parked aborts with a message: see GMP_DEBUG in
_ext/gmp_c.h) and ``-O1 -g`` for gdb and valgrind.  ``.ci/debug-stress``
builds it in a scratch copy of the tree and runs the stress tests on it.
"""
import os

import greenlet
from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
GREENLET_INCLUDE = os.path.dirname(greenlet.__file__)
DEBUG = os.environ.get("GMP_DEBUG_BUILD", "") not in ("", "0")

ext = Extension(
    "gmp._ext._core",
    ["_ext/_core.pyx"],
    include_dirs=[GREENLET_INCLUDE, "_ext"],
    define_macros=[("GMP_DEBUG", "1")] if DEBUG else [],
    extra_compile_args=(["-O1", "-g"] if DEBUG else ["-O3"])
    + ["-std=gnu11", "-Wall"],
)

setup(
    ext_modules=cythonize(
        [ext],
        # The vocabulary, gmp/_ext/_core.pxd, is found from the tree's root.
        include_path=[ROOT],
        language_level=3,
        compiler_directives={
            "boundscheck": DEBUG,
            "wraparound": DEBUG,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
        annotate=bool(os.environ.get("GMP_ANNOTATE")),
    ),
)

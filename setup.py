"""Build the Cython core (`_ext/`) into `gmp._ext`.

The sources live in the top-level `_ext/` directory (one file per job: runq,
timers, sched, chan, ...) and are compiled as one extension module,
`gmp._ext._core`, so that the scheduler loop can call the run queue, timer and
channel code as plain C functions with no cross-module indirection.
"""
import os

import greenlet
from Cython.Build import cythonize
from setuptools import Extension, setup

GREENLET_INCLUDE = os.path.dirname(greenlet.__file__)

ext = Extension(
    "gmp._ext._core",
    ["_ext/_core.pyx"],
    include_dirs=[GREENLET_INCLUDE, "_ext"],
    extra_compile_args=["-O3", "-std=gnu11", "-Wno-unused-function"],
)

setup(
    ext_modules=cythonize(
        [ext],
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
        annotate=bool(os.environ.get("GMP_ANNOTATE")),
    ),
)

# cython: language_level=3
"""gmp's compiled core: one extension module built from one file per job.

    ../gmp/_ext/_core.pxd  the vocabulary: every shared type (G, P, M, Sched,
                 PollDesc, the queue, timer, policy and latency structs) and
                 the enums of G states and wake causes, each field with who
                 may write it

    runq.pxi     the per-P lock-free ring of fresh Gs (Go's runq), the owner-only
                 ring of bound Gs, the inbox, and the global run queue
    waitq.pxi    wait queues of parked Gs (channels, sync, join), as C arrays
    timers.pxi   the per-P 4-ary timer heap
    netpoll.pxi  the per-P epoll instance and eventfd the M sleeps on, the
                 try-first I/O ops, select/poll over many fds
    policy.pxi   the policy knobs the scheduler loop reads (gmp/policy.py)
    latency.pxi  per-G latency accounting, the request-record ring, the
                 transition hooks (obs_*) the scheduler calls
    trace.pxi    per-M rings of scheduler trace events
    proc.pxi     the G lifecycle: create, start on a worker greenlet, switch,
                 finish, report errors
    park.pxi     park / ready: goready, the one wake path, and its ticket
                 invariant; timeouts; park_unless for shared locks
    schedule.pxi the scheduling loop: findrunnable, runnext, the global queue,
                 stealing, spinning and idle Ms, deadlock detection
    run.pxi      the Ms and run(): threads, shutdown, teardown
    api.pxi      the API gmp/ wraps: errors, go, sleep, current, inject ...
    sysmon.pxi   sysmon and the GIL-wait learning of helper Ms
    stats.pxi    stats(), ready->running histograms, schedtrace lines
    chan.pxi     channels and select
    sync.pxi     Mutex, Semaphore, Event, WaitGroup, WaitList, Timeout
    blocking.pxi the scheduler side of gmp.blocking (helper-thread calls)
    fork.pxi     what a forked child keeps of a running runtime
    export_test.pxi  the test door: internals only tests reach

They are compiled as a single module so the scheduler loop calls the run
queue, timer and channel code as plain (mostly inlined) C functions.  The
Python API in ``gmp/`` wraps these types; nothing here is imported by users
directly.
"""

import _thread
import sys as _sys
import threading as _threading
import traceback as _traceback
import os as _os

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from cpython.ref cimport PyObject
from posix.unistd cimport close as c_close, read as c_read, write as c_write

cdef extern from "Python.h":
    Py_ssize_t PY_SSIZE_T_MAX
    void _incref "Py_INCREF"(PyObject*)
    void _decref "Py_DECREF"(PyObject*)
    void _xdecref "Py_XDECREF"(PyObject*)

cdef extern from "gmp_c.h":
    int gmp_greenlet_import() except -1
    object PyGreenlet_New "gmp_greenlet_new"(object run, PyObject* parent)
    object PyGreenlet_Switch "gmp_greenlet_switch"(PyObject* g, PyObject* args, PyObject* kwargs)
    object PyGreenlet_GetCurrent "gmp_greenlet_getcurrent"()

cdef extern from "<pthread.h>" nogil:
    int pthread_mutex_init(pthread_mutex_t*, void*)
    int pthread_mutex_destroy(pthread_mutex_t*)
    int pthread_mutex_lock(pthread_mutex_t*)
    int pthread_mutex_unlock(pthread_mutex_t*)

cdef extern from "<sys/epoll.h>" nogil:
    cdef union epoll_data:
        void* ptr
        int fd
        uint32_t u32
        uint64_t u64
    cdef struct epoll_event:
        uint32_t events
        epoll_data data
    int epoll_create1(int)
    int epoll_ctl(int, int, int, epoll_event*)
    enum:
        EPOLL_CLOEXEC
        EPOLL_CTL_ADD
        EPOLL_CTL_MOD
        EPOLL_CTL_DEL
        EPOLLIN
        EPOLLOUT
        EPOLLERR
        EPOLLHUP
        EPOLLRDHUP
        EPOLLPRI
        EPOLLET

cdef extern from "<sys/eventfd.h>" nogil:
    int eventfd(unsigned int, int)
    enum:
        EFD_NONBLOCK
        EFD_CLOEXEC

cdef extern from "gmp_c.h" nogil:
    void* gmp_get_m()
    void gmp_set_m(void*)
    int64_t gmp_nanotime()
    uint32_t gmp_load_acq_u32(uint32_t*)
    void gmp_store_rel_u32(uint32_t*, uint32_t)
    bint gmp_cas_rel_u32(uint32_t*, uint32_t, uint32_t)
    int32_t gmp_load_i32(int32_t*)
    void gmp_store_i32(int32_t*, int32_t)
    int32_t gmp_add_i32(int32_t*, int32_t)
    int64_t gmp_load_i64(int64_t*)
    int64_t gmp_add_i64(int64_t*, int64_t)
    uint32_t gmp_fastrand()
    uint32_t gmp_fastrandn(uint32_t)
    int gmp_epoll_wait_ns(int, epoll_event*, int, int64_t)
    void gmp_reset_context()
    void gmp_debug_fail(const char*)
    const int gmp_debug_build

cdef extern from "gmp_c.h" nogil:
    int gmp_cas_i32(int32_t*, int32_t, int32_t)
    uint32_t gmp_load_relaxed_u32(uint32_t*)
    int64_t gmp_load_relaxed_i64(int64_t*)
    int gmp_lat_bucket(int64_t)
    double gmp_lat_value(int)
    void gmp_sleep_ns(int64_t)

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    cdef struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int, timespec*)
    enum:
        CLOCK_MONOTONIC_COARSE

gmp_greenlet_import()

include "runq.pxi"
include "waitq.pxi"
include "timers.pxi"
include "netpoll.pxi"
include "policy.pxi"
include "latency.pxi"
include "trace.pxi"
include "proc.pxi"
include "park.pxi"
include "schedule.pxi"
include "run.pxi"
include "api.pxi"
include "sysmon.pxi"
include "stats.pxi"
include "chan.pxi"
include "sync.pxi"
include "blocking.pxi"
include "fork.pxi"
include "export_test.pxi"

DEBUG_BUILD = bool(gmp_debug_build)   # built with GMP_DEBUG_BUILD=1 (setup.py)

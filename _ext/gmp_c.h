/* Small C helpers for the Cython core: thread-local current M, atomics,
 * the monotonic clock, a per-thread PRNG, and epoll waits with a nanosecond
 * timeout.  Kept in C because Cython has no spelling for __thread or for the
 * __atomic builtins. */
#ifndef GMP_C_H
#define GMP_C_H

#include <stdint.h>
#include <time.h>
#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* The M running on this OS thread (a borrowed PyObject*; the M outlives its
 * thread's scheduler loop).  NULL on threads that are not Ms. */
static __thread void *gmp_tls_m = NULL;

static inline void *gmp_get_m(void) { return gmp_tls_m; }
static inline void gmp_set_m(void *m) { gmp_tls_m = m; }

static inline int64_t gmp_nanotime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Go's runq uses load-acquire / store-release on head and tail and a CAS on
 * head for consumers; these are the same operations. */
static inline uint32_t gmp_load_acq_u32(uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void gmp_store_rel_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline int gmp_cas_rel_u32(uint32_t *p, uint32_t old, uint32_t new_) {
    return __atomic_compare_exchange_n(p, &old, new_, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}
static inline int32_t gmp_load_i32(int32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void gmp_store_i32(int32_t *p, int32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline int32_t gmp_add_i32(int32_t *p, int32_t v) { return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }
static inline int64_t gmp_load_i64(int64_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline int64_t gmp_add_i64(int64_t *p, int64_t v) { return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }
static inline void *gmp_xchg_ptr(void **p, void *v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }
static inline void *gmp_load_ptr(void **p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline int gmp_cas_ptr(void **p, void *old, void *new_) {
    return __atomic_compare_exchange_n(p, &old, new_, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* xorshift64*: cheap per-thread randomness for select's poll order and the
 * steal order.  Not for anything that needs to be unpredictable. */
static __thread uint64_t gmp_rng_state = 0;
static inline uint32_t gmp_fastrand(void) {
    uint64_t x = gmp_rng_state;
    if (x == 0) x = (uint64_t)gmp_nanotime() ^ (uint64_t)(uintptr_t)&gmp_rng_state ^ 0x9E3779B97F4A7C15ULL;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    gmp_rng_state = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}
/* Uniform in [0, n) without division (Lemire). */
static inline uint32_t gmp_fastrandn(uint32_t n) {
    return (uint32_t)(((uint64_t)gmp_fastrand() * n) >> 32);
}

/* Block in epoll for at most timeout_ns (-1: forever).  epoll_pwait2 takes a
 * timespec, so sub-millisecond timers are honoured; kernels without it fall
 * back to epoll_wait with the timeout rounded up to whole milliseconds. */
static int gmp_have_pwait2 = 1;
static inline int gmp_epoll_wait_ns(int epfd, struct epoll_event *ev, int n, int64_t timeout_ns) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
    if (gmp_have_pwait2) {
        struct timespec ts, *tp = NULL;
        if (timeout_ns >= 0) {
            ts.tv_sec = timeout_ns / 1000000000LL;
            ts.tv_nsec = timeout_ns % 1000000000LL;
            tp = &ts;
        }
        int r = epoll_pwait2(epfd, ev, n, tp, NULL);
        if (!(r < 0 && errno == ENOSYS)) return r;
        gmp_have_pwait2 = 0;
    }
#endif
    int ms = -1;
    if (timeout_ns >= 0) {
        int64_t m = (timeout_ns + 999999) / 1000000;
        ms = m > 0x7fffffff ? 0x7fffffff : (int)m;
    }
    return epoll_wait(epfd, ev, n, ms);
}

/* The debug build (GMP_DEBUG_BUILD=1 at build time, see setup.py) turns a
 * broken scheduler invariant into an immediate abort with a message, where
 * the release build refuses the operation and carries on. */
#ifdef GMP_DEBUG
#include <stdio.h>
#include <stdlib.h>
static inline void gmp_debug_fail(const char *what) {
    fprintf(stderr, "gmp debug build: invariant broken: %s\n", what);
    abort();
}
static const int gmp_debug_build = 1;
#else
static inline void gmp_debug_fail(const char *what) { (void)what; }
static const int gmp_debug_build = 0;
#endif

/* Give the running greenlet an empty contextvars context, as a brand-new
 * greenlet has.  Reads and clears the thread state's context the way
 * greenlet does on a switch (CPython 3.11-3.13 layout). */
#include <Python.h>
static inline void gmp_reset_context(void) {
    PyThreadState *ts = PyThreadState_Get();
    if (ts->context != NULL) {
        Py_CLEAR(ts->context);
        ts->context_ver++;
    }
}

#endif

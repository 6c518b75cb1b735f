/* The C helpers of the Cython core, in C because Cython has no spelling
 * for them: the thread-local current M (__thread), the __atomic builtins
 * (C11 atomics on 32/64-bit words), the monotonic clock, a per-thread PRNG,
 * epoll waits with a nanosecond timeout, the latency-histogram buckets, the
 * debug build's invariant checks, typed wrappers over greenlet's C API, and
 * the two lock-free rings of latency sampling and the scheduler trace.
 * One header: the core is one module, and every helper here is static
 * inline, so what is unused costs nothing. */
#ifndef GMP_C_H
#define GMP_C_H

#include <Python.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "greenlet.h"

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
static inline void gmp_reset_context(void) {
    PyThreadState *ts = PyThreadState_Get();
    if (ts->context != NULL) {
        Py_CLEAR(ts->context);
        ts->context_ver++;
    }
}

/* --- sysmon, GIL learning, latency histograms -------------------------- */

static inline int gmp_cas_i32(int32_t *p, int32_t old, int32_t new_) {
    return __atomic_compare_exchange_n(p, &old, new_, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline uint32_t gmp_load_relaxed_u32(uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline int64_t gmp_load_relaxed_i64(int64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void gmp_store_relaxed_i64(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

/* Latency histogram bucket: 4 sub-buckets per power of two (<= 19% error). */
#define GMP_LAT_NB 192
static inline int gmp_lat_bucket(int64_t ns) {
    if (ns < 4) return ns < 0 ? 0 : (int)ns;
    int b = 63 - __builtin_clzll((unsigned long long)ns);
    int i = b * 4 + (int)((ns >> (b - 2)) & 3);
    return i >= GMP_LAT_NB ? GMP_LAT_NB - 1 : i;
}
/* Middle of bucket i, in ns. */
static inline double gmp_lat_value(int i) {
    if (i < 4) return (double)i;
    int b = i / 4, s = i % 4;
    double lo = (double)(1ULL << b) * (1.0 + s / 4.0);
    return lo + (double)(1ULL << b) / 8.0;
}

static inline void gmp_sleep_ns(int64_t ns) {
    struct timespec ts;
    ts.tv_sec = ns / 1000000000LL;
    ts.tv_nsec = ns % 1000000000LL;
    nanosleep(&ts, NULL);
}

/* --- greenlet ------------------------------------------------------------ */

/* Typed wrappers over greenlet's C API, so the Cython side can pass plain
 * PyObject* (greenlet's macros expect PyGreenlet*, and newer compilers reject
 * the implicit conversion). */
static inline int gmp_greenlet_import(void) {
    PyGreenlet_Import();
    return _PyGreenlet_API == NULL ? -1 : 0;
}
static inline PyObject *gmp_greenlet_new(PyObject *run, PyObject *parent) {
    return (PyObject *)PyGreenlet_New(run, (PyGreenlet *)parent);
}
/* The running greenlet (a new reference). */
static inline PyObject *gmp_greenlet_getcurrent(void) {
    return (PyObject *)PyGreenlet_GetCurrent();
}
static inline PyObject *gmp_greenlet_switch(PyObject *g, PyObject *args, PyObject *kwargs) {
    return PyGreenlet_Switch((PyGreenlet *)g, args, kwargs);
}

/* --- the latency and trace rings ---------------------------------------- */

/* The two lock-free rings of gmp's latency sampling and scheduler trace
 * (_ext/latency.pxi, _ext/trace.pxi say what goes in them).  In C because
 * they need 64-bit C11 atomics on slot sequence numbers, which Cython cannot
 * spell; neither needs the GIL, so a free-threaded build keeps them as is.
 *
 * latring: a bounded multi-producer, single-consumer ring of fixed-size
 * request records (Vyukov's bounded queue).  Each slot carries a sequence
 * number: a producer claims position pos with a CAS on tail only when the
 * slot's seq says it is free (seq == pos), writes the record, then publishes
 * it with seq = pos + 1 (store-release).  The reader takes a slot only when
 * seq == pos + 1 (load-acquire), so it never sees a half-written record, and
 * frees it with seq = pos + capacity.  When the ring is full the producer
 * counts a drop and returns: a request never waits for the reader.
 *
 * tring: a single-producer (the M's own thread), single-consumer ring of
 * trace events; when full the event is dropped and counted. */

#define GMP_LB_N 10

/* One sampled request; 144 bytes, no padding (gmp/latency.py RECORD). */
typedef struct {
    uint64_t trace_id;
    int64_t start_ns;      /* CLOCK_MONOTONIC */
    int64_t latency_ns;
    int64_t gid;
    int64_t b[GMP_LB_N];   /* breakdown, ns: see LB_* in latency.pxi */
    int64_t held_gid;      /* the G that held the M longest, 0: none */
    int64_t held_inc;      /* its incident id (stack table) */
    int32_t status;
    uint16_t cls;
    uint16_t why;          /* LK_ERROR | LK_SLOW | LK_SAMPLED */
    uint32_t weight;       /* requests this record stands for */
    uint32_t pad;
} gmp_latrec_t;

typedef struct {
    uint64_t seq;
    gmp_latrec_t rec;
} gmp_latslot_t;

typedef struct {
    uint64_t tail;         /* producers CAS; own cache line */
    char pad0[56];
    uint64_t head;         /* the reader only */
    char pad1[56];
    uint64_t dropped;
    uint64_t appended;
    uint64_t mask;
    gmp_latslot_t *slots;
} gmp_latring_t;

static inline int gmp_latring_init(gmp_latring_t *r, uint64_t cap) {
    uint64_t i;
    memset(r, 0, sizeof(*r));
    r->slots = (gmp_latslot_t *)calloc(cap, sizeof(gmp_latslot_t));
    if (r->slots == NULL) return -1;
    r->mask = cap - 1;
    for (i = 0; i < cap; i++) r->slots[i].seq = i;
    return 0;
}

static inline void gmp_latring_free(gmp_latring_t *r) {
    free(r->slots);
    r->slots = NULL;
}

/* Appends *rec; 0 on success, -1 if the ring was full (counted). */
static inline int gmp_latring_put(gmp_latring_t *r, const gmp_latrec_t *rec) {
    uint64_t pos = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
    for (;;) {
        gmp_latslot_t *s = &r->slots[pos & r->mask];
        uint64_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            if (__atomic_compare_exchange_n(&r->tail, &pos, pos + 1, 1,
                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
                s->rec = *rec;
                __atomic_store_n(&s->seq, pos + 1, __ATOMIC_RELEASE);
                __atomic_add_fetch(&r->appended, 1, __ATOMIC_RELAXED);
                return 0;
            }
            /* lost the race: pos now holds the current tail */
        } else if (dif < 0) {
            __atomic_add_fetch(&r->dropped, 1, __ATOMIC_RELAXED);
            return -1;
        } else {
            pos = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
        }
    }
}

/* Takes up to n published records into out; returns how many. */
static inline int64_t gmp_latring_take(gmp_latring_t *r, gmp_latrec_t *out, int64_t n) {
    int64_t k = 0;
    while (k < n) {
        gmp_latslot_t *s = &r->slots[r->head & r->mask];
        uint64_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if (seq != r->head + 1) break;
        out[k++] = s->rec;
        __atomic_store_n(&s->seq, r->head + r->mask + 1, __ATOMIC_RELEASE);
        r->head++;
    }
    return k;
}

static inline uint64_t gmp_load_u64(uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint32_t gmp_add_u32(uint32_t *p, uint32_t v) { return __atomic_add_fetch(p, v, __ATOMIC_RELAXED); }

/* One trace event, 32 bytes (gmp/trace.py EVENT). */
typedef struct {
    int64_t ts;
    int64_t gid;
    int64_t arg;
    int32_t kind;
    int32_t tid;           /* native thread id, for events from non-M threads */
} gmp_tevent_t;

typedef struct {
    uint32_t head;         /* the reader */
    uint32_t tail;         /* the owner thread */
    uint32_t mask;
    uint32_t dropped;
    gmp_tevent_t *ev;
} gmp_tring_t;

static inline gmp_tring_t *gmp_tring_new(uint32_t cap) {
    gmp_tring_t *r = (gmp_tring_t *)calloc(1, sizeof(gmp_tring_t));
    if (r == NULL) return NULL;
    r->ev = (gmp_tevent_t *)malloc((size_t)cap * sizeof(gmp_tevent_t));
    if (r->ev == NULL) { free(r); return NULL; }
    r->mask = cap - 1;
    return r;
}

static inline void gmp_tring_free(gmp_tring_t *r) {
    free(r->ev);
    free(r);
}

static inline void gmp_tring_put(gmp_tring_t *r, int32_t kind, int64_t gid, int64_t arg,
                                 int64_t ts, int32_t tid) {
    uint32_t t = r->tail;
    uint32_t h = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    gmp_tevent_t *e;
    if (t - h > r->mask) {
        __atomic_add_fetch(&r->dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    e = &r->ev[t & r->mask];
    e->ts = ts;
    e->gid = gid;
    e->arg = arg;
    e->kind = kind;
    e->tid = tid;
    __atomic_store_n(&r->tail, t + 1, __ATOMIC_RELEASE);
}

/* Copies up to n events into out and frees their slots; returns how many. */
static inline uint32_t gmp_tring_take(gmp_tring_t *r, gmp_tevent_t *out, uint32_t n) {
    uint32_t h = r->head;
    uint32_t t = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    uint32_t k = 0;
    while (h != t && k < n) {
        out[k++] = r->ev[h & r->mask];
        h++;
    }
    __atomic_store_n(&r->head, h, __ATOMIC_RELEASE);
    return k;
}

#endif

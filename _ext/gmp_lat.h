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
#ifndef GMP_LAT_H
#define GMP_LAT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

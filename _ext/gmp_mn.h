/* C helpers for the M:N additions (sysmon, latency histograms, GIL-wait
 * learning).  Separate from gmp_c.h so that branches touching the netpoller
 * and the scheduler policies do not edit the same header. */
#ifndef GMP_MN_H
#define GMP_MN_H

#include <stdint.h>
#include <time.h>

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

#endif

/*
 * http/scan_select.c: which scanner the parsers use.
 *
 * The choice is made once, at the first parse: EDDY_HTTP_SCAN names an
 * implementation (scalar, sse42, avx2) for tests and comparisons, and
 * otherwise the fastest one the CPU has wins. It is kept in one atomic
 * pointer; threads that race on the first use compute the same answer, so
 * the race only costs a second getenv. eddy__http_scan_force overrides the
 * choice for the process (the tests run every table under every scanner).
 */
#include "http/internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic(const struct eddy__http_scanner *) current;

/* The implementation called name, or NULL; *rc says why not: -EINVAL for a
 * name eddy does not have, -EOPNOTSUPP for one this CPU cannot run. */
static const struct eddy__http_scanner *by_name(const char *name, int *rc)
{
    *rc = 0;
    if (strcmp(name, "scalar") == 0)
        return &eddy__http_scan_scalar;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (strcmp(name, "sse42") == 0) {
        if (__builtin_cpu_supports("sse4.2"))
            return &eddy__http_scan_sse42;
        *rc = -EOPNOTSUPP;
        return NULL;
    }
    if (strcmp(name, "avx2") == 0) {
        if (__builtin_cpu_supports("avx2"))
            return &eddy__http_scan_avx2;
        *rc = -EOPNOTSUPP;
        return NULL;
    }
#else
    if (strcmp(name, "sse42") == 0 || strcmp(name, "avx2") == 0) {
        *rc = -EOPNOTSUPP;
        return NULL;
    }
#endif
    *rc = -EINVAL;
    return NULL;
}

static const struct eddy__http_scanner *best(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        return &eddy__http_scan_avx2;
    if (__builtin_cpu_supports("sse4.2"))
        return &eddy__http_scan_sse42;
#endif
    return &eddy__http_scan_scalar;
}

const struct eddy__http_scanner *eddy__http_scanner(void)
{
    const struct eddy__http_scanner *s = atomic_load_explicit(&current, memory_order_acquire);
    if (EDDY_LIKELY(s))
        return s;
    const char *env = getenv("EDDY_HTTP_SCAN");
    int rc;
    s = env ? by_name(env, &rc) : NULL;
    if (!s)
        s = best();
    atomic_store_explicit(&current, s, memory_order_release);
    return s;
}

int eddy__http_scan_force(const char *name)
{
    int rc = 0;
    const struct eddy__http_scanner *s = name ? by_name(name, &rc) : best();
    if (!s)
        return rc;
    atomic_store_explicit(&current, s, memory_order_release);
    return 0;
}

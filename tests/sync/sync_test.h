/*
 * tests/sync/sync_test.h: what the sync tests share, on top of
 * tests/reactor/reactor_test.h (rt_run, tolerances, rt_scale).
 *
 *   - st_log: an append-only log of small integers that tasks write to, so
 *     a test can check the order in which waiters were served;
 *   - st_in_ms(): a deadline ms from now;
 *   - st_spawn(): eddy_task_spawn that asserts success.
 *
 * Everything is static inline (the Makefile links only test_*.c files).
 */
#ifndef EDDY_TESTS_SYNC_TEST_H
#define EDDY_TESTS_SYNC_TEST_H

#include "tests/reactor/reactor_test.h"

#define ST_LOG_MAX 20000

struct st_log {
    int v[ST_LOG_MAX];
    size_t n;
};

static inline void st_log_add(struct st_log *log, int x)
{
    if (log->n < ST_LOG_MAX)
        log->v[log->n++] = x;
}

/* Asserts that the log holds 0, 1, ..., n-1. */
static inline void st_log_expect_sequence(const struct st_log *log, size_t n)
{
    cr_assert_eq(log->n, n, "log has %zu entries, expected %zu", log->n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(log->v[i], (int)i, "entry %zu is %d", i, log->v[i]);
}

static inline int64_t st_in_ms(int64_t ms)
{
    return eddy_now_ns() + ms * EDDY_NS_PER_MS;
}

static inline struct eddy_task *st_spawn(eddy_task_fn *fn, void *arg)
{
    struct eddy_task *t = NULL;
    int rc = eddy_task_spawn(fn, arg, NULL, &t);
    cr_assert_eq(rc, 0, "spawn: %s", eddy_strerror(rc));
    return t;
}

static inline intptr_t st_join(struct eddy_task *t)
{
    intptr_t r = INTPTR_MIN;
    int rc = eddy_task_join(t, &r);
    cr_assert_eq(rc, 0, "join: %s", eddy_strerror(rc));
    return r;
}

/* Lets every runnable task run until all are parked (a few yields). */
static inline void st_settle(void)
{
    for (int i = 0; i < 4; i++)
        cr_assert_eq(eddy_task_yield(), 0);
}

#endif

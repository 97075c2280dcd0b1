/*
 * bench/micro/bm_reactor.c: the reactor's hot operations, through the public
 * API of include/eddy/reactor.h only.
 *
 * Each benchmark runs inside eddy_run(): the clock is paused around loop
 * creation and destruction and around each benchmark's own setup, and runs
 * only over the loop of operations, which happens inside the main task.
 *
 * Cases (impl eddy):
 *   BM_spawn_join             spawn a task that returns at once, join it
 *   BM_yield                  two tasks yield to each other; per yield call
 *   BM_timer_add_cancel/N     eddy_timer_start + eddy_timer_stop of one timer
 *                             while N other timers are armed at random
 *                             deadlines 1 to 2 hours ahead (param N)
 *   BM_suspended_1m           one iteration: 1,000,000 tasks each parked in
 *                             eddy_sleep_ms(1 hour). Counters:
 *                               create_ns_per_coro   spawn + run to the park,
 *                                                    per task (wall clock)
 *                               rss_bytes_per_coro   resident set growth per
 *                                                    parked task (/proc/self/statm)
 *                               cancel_join_ns_per_coro  cancel + join, per task
 *                             ns_per_op is the creation phase of all of them.
 *                             Creation includes the kernel's first-touch fault
 *                             of each new stack page, and cancel+join includes
 *                             what the stack pool does with a million released
 *                             stacks (madvise beyond its cache): both are what
 *                             a program with a million tasks pays.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <eddy/reactor.h>

#include "bench/micro/gbench.h"
#include "bench/micro/in_loop.h"

/* Runs fn(b) as the main task of a fresh loop, with the clock paused while
 * the loop is created and destroyed; fn resumes and pauses it itself. */
/* ---- spawn + join ------------------------------------------------------- */

static intptr_t return_arg(void *arg)
{
    return (intptr_t)arg;
}

static intptr_t spawn_join_main(void *arg)
{
    struct eddy_bench *b = arg;
    uint64_t n = eddy_bench_iterations(b);
    eddy_bench_resume(b);
    for (uint64_t i = 0; i < n; i++) {
        struct eddy_task *t;
        intptr_t r;
        int rc = eddy_task_spawn(return_arg, (void *)(intptr_t)1, NULL, &t);
        if (EDDY_UNLIKELY(rc < 0))
            return rc;
        rc = eddy_task_join(t, &r);
        if (EDDY_UNLIKELY(rc < 0))
            return rc;
    }
    eddy_bench_pause(b);
    return 0;
}

static void BM_spawn_join(struct eddy_bench *b)
{
    run_in_loop(b, spawn_join_main);
}
EDDY_BENCH(BM_spawn_join);

/* ---- yield ping-pong ----------------------------------------------------- */

static intptr_t yielder(void *arg)
{
    uint64_t count = *(const uint64_t *)arg;
    for (uint64_t i = 0; i < count; i++) {
        int rc = eddy_task_yield();
        if (EDDY_UNLIKELY(rc < 0))
            return rc;
    }
    return 0;
}

/* The main task and one other task yield in turn: n yield calls in all,
 * n - n/2 by the main task and n/2 by the other. The other task starts at
 * the main task's first yield, so its start is inside the timed loop: one
 * task start per run of millions of yields. */
static intptr_t yield_main(void *arg)
{
    struct eddy_bench *b = arg;
    uint64_t n = eddy_bench_iterations(b);
    uint64_t theirs = n / 2;
    struct eddy_task *other;
    int rc = eddy_task_spawn(yielder, &theirs, NULL, &other);
    if (rc < 0)
        return rc;
    eddy_bench_resume(b);
    for (uint64_t i = theirs; i < n; i++) {
        rc = eddy_task_yield();
        if (EDDY_UNLIKELY(rc < 0))
            return rc;
    }
    intptr_t r = 0;
    rc = eddy_task_join(other, &r);
    eddy_bench_pause(b);
    return rc < 0 ? rc : r;
}

static void BM_yield(struct eddy_bench *b)
{
    run_in_loop(b, yield_main);
}
EDDY_BENCH(BM_yield);

/* ---- timer start + stop among N live timers ------------------------------ */

/* xorshift64*: cheap, deterministic, good enough to scatter deadlines. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

static void timer_never(void *arg)
{
    (void)arg;
}

#define DEADLINES 4096 /* a power of two: the loop indexes with a mask */

static intptr_t timer_main(void *arg)
{
    struct eddy_bench *b = arg;
    uint64_t n = eddy_bench_iterations(b);
    size_t live = (size_t)eddy_bench_arg(b);
    /* Deadlines in [now + 1 h, now + 2 h): none fires during the run, and
     * the measured timer lands at a random place among the live ones. */
    int64_t base = eddy_now_ns() + 3600 * EDDY_NS_PER_SEC;
    uint64_t span = 3600 * (uint64_t)EDDY_NS_PER_SEC;
    uint64_t seed = UINT64_C(0x9e3779b97f4a7c15);
    struct eddy_timer *timers = calloc(live ? live : 1, sizeof(*timers));
    int64_t *deadlines = malloc(DEADLINES * sizeof(*deadlines));
    intptr_t rc = 0;
    if (!timers || !deadlines) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < live; i++) {
        rc = eddy_timer_start(&timers[i], base + (int64_t)(rng_next(&seed) % span), timer_never,
                              NULL);
        if (rc < 0) {
            live = i;
            goto stop;
        }
    }
    for (size_t i = 0; i < DEADLINES; i++)
        deadlines[i] = base + (int64_t)(rng_next(&seed) % span);

    struct eddy_timer t;
    memset(&t, 0, sizeof(t));
    eddy_bench_resume(b);
    for (uint64_t i = 0; i < n; i++) {
        int r = eddy_timer_start(&t, deadlines[i & (DEADLINES - 1)], timer_never, NULL);
        if (EDDY_UNLIKELY(r < 0)) {
            rc = r;
            break;
        }
        eddy_timer_stop(&t);
    }
    eddy_bench_pause(b);
stop:
    for (size_t i = 0; i < live; i++)
        eddy_timer_stop(&timers[i]);
out:
    free(deadlines);
    free(timers);
    return rc;
}

static void BM_timer_add_cancel(struct eddy_bench *b)
{
    run_in_loop(b, timer_main);
}
EDDY_BENCH_OPTS(BM_timer_add_cancel, .args = {1000000}, .nargs = 1);

/* ---- one million parked tasks -------------------------------------------- */

#define SUSPENDED_TASKS 1000000

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    long size = 0, resident = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = -1;
        fclose(f);
    }
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static size_t parked; /* tasks that reached their sleep */

static intptr_t park_an_hour(void *arg)
{
    (void)arg;
    parked++;
    return eddy_sleep_ms(3600 * 1000);
}

static intptr_t suspended_main(void *arg)
{
    struct eddy_bench *b = arg;
    const size_t count = SUSPENDED_TASKS;
    /* The handle array is allocated and touched before the RSS baseline,
     * so it is not charged to the tasks. */
    struct eddy_task **tasks = malloc(count * sizeof(*tasks));
    if (!tasks)
        return -ENOMEM;
    memset(tasks, 0, count * sizeof(*tasks));
    intptr_t rc = 0;
    size_t spawned = 0;
    parked = 0;
    long rss0 = rss_bytes();

    eddy_bench_resume(b);
    int64_t t0 = eddy_clock_ns();
    for (; spawned < count; spawned++) {
        rc = eddy_task_spawn(park_an_hour, NULL, NULL, &tasks[spawned]);
        if (rc < 0)
            break;
    }
    /* Tasks start when the spawner suspends: one yield lets every one of
     * them run up to its sleep. */
    int yrc = rc < 0 ? 0 : eddy_task_yield();
    int64_t t1 = eddy_clock_ns();
    eddy_bench_pause(b);

    long rss1 = rss_bytes();
    size_t parked_after_yield = parked;
    if (rc == 0 && yrc < 0)
        rc = yrc;
    int64_t t2 = eddy_clock_ns();
    size_t cancelled_ok = 0;
    for (size_t i = 0; i < spawned; i++)
        eddy_task_cancel(tasks[i]);
    for (size_t i = 0; i < spawned; i++) {
        intptr_t r = 0;
        int jrc = eddy_task_join(tasks[i], &r);
        if (jrc < 0 && rc == 0)
            rc = jrc;
        cancelled_ok += r == -ECANCELED;
    }
    int64_t t3 = eddy_clock_ns();
    free(tasks);
    if (rc < 0)
        return rc;
    if (parked_after_yield != count) {
        eddy_bench_fail(b, "one yield did not run every new task up to its sleep");
        return 0;
    }
    if (cancelled_ok != count) {
        eddy_bench_fail(b, "a parked task did not return -ECANCELED after its cancel");
        return 0;
    }
    if (rss0 < 0 || rss1 < 0) {
        eddy_bench_fail(b, "cannot read /proc/self/statm");
        return 0;
    }
    eddy_bench_counter(b, "rss_bytes_per_coro", (double)(rss1 - rss0) / (double)count);
    eddy_bench_counter(b, "create_ns_per_coro", (double)(t1 - t0) / (double)count);
    eddy_bench_counter(b, "cancel_join_ns_per_coro", (double)(t3 - t2) / (double)count);
    eddy_bench_items_processed(b, (int64_t)count);
    return 0;
}

static void BM_suspended_1m(struct eddy_bench *b)
{
    run_in_loop(b, suspended_main);
}
EDDY_BENCH_OPTS(BM_suspended_1m, .iterations = 1);

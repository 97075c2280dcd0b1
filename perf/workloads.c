/*
 * perf/workloads.c: fixed workloads for instruction counting under
 * callgrind (perf/instructions). Each runs one operation n times; the
 * script runs every workload at two sizes and divides the difference in
 * instructions by the difference in n, so start-up and tear-down cancel
 * out and what remains is the cost of one operation.
 *
 *   workloads OP N     OP: switch, yield, spawn_join, timer_add_cancel
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <eddy/eddy.h>

static long n_ops;

/* ---- switch: two coroutines ping-pong from one call site ---------------- */

static struct eddy_coro *ping, *pong, *origin;
static long switches;

static void pingpong(void *arg)
{
    struct eddy_coro *self = arg == &ping ? ping : pong;
    struct eddy_coro *other = arg == &ping ? pong : ping;
    while (switches < n_ops) {
        switches++;
        eddy_coro_switch(self, other);
    }
    eddy_coro_switch(self, origin);
}

static int run_switch(void)
{
    struct eddy_stack_pool *pool;
    if (eddy_stack_pool_create(NULL, &pool) < 0)
        return 1;
    origin = eddy_coro_current();
    if (eddy_coro_create(pool, pingpong, &ping, NULL, &ping) < 0 ||
        eddy_coro_create(pool, pingpong, &pong, NULL, &pong) < 0)
        return 1;
    eddy_coro_switch(origin, ping);
    eddy_coro_destroy(ping);
    eddy_coro_destroy(pong);
    eddy_stack_pool_destroy(pool);
    return 0;
}

/* ---- tasks --------------------------------------------------------------- */

static intptr_t yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < n_ops / 2; i++)
        eddy_task_yield();
    return 0;
}

static intptr_t trivial(void *arg)
{
    return (intptr_t)arg;
}

static void nothing(void *arg)
{
    (void)arg;
}

static intptr_t main_task(void *arg)
{
    const char *op = arg;
    if (strcmp(op, "yield") == 0) {
        struct eddy_task *a, *b;
        if (eddy_task_spawn(yielder, NULL, NULL, &a) < 0 ||
            eddy_task_spawn(yielder, NULL, NULL, &b) < 0)
            return -ENOMEM;
        eddy_task_join(a, NULL);
        eddy_task_join(b, NULL);
    } else if (strcmp(op, "spawn_join") == 0) {
        for (long i = 0; i < n_ops; i++) {
            struct eddy_task *t;
            intptr_t r;
            if (eddy_task_spawn(trivial, (void *)i, NULL, &t) < 0 || eddy_task_join(t, &r) < 0)
                return -ENOMEM;
        }
    } else if (strcmp(op, "timer_add_cancel") == 0) {
        /* 100,000 live timers at fixed pseudo-random deadlines. */
        enum { LIVE = 100000 };
        struct eddy_timer *live = calloc(LIVE, sizeof(*live));
        if (!live)
            return -ENOMEM;
        uint64_t x = 88172645463325252ull;
        int64_t base = eddy_now_ns() + EDDY_NS_PER_SEC * 3600;
        for (int i = 0; i < LIVE; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            eddy_timer_start(&live[i], base + (int64_t)(x % (uint64_t)EDDY_NS_PER_SEC), nothing,
                             NULL);
        }
        struct eddy_timer t = {0};
        for (long i = 0; i < n_ops; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            eddy_timer_start(&t, base + (int64_t)(x % (uint64_t)EDDY_NS_PER_SEC), nothing, NULL);
            eddy_timer_stop(&t);
        }
        for (int i = 0; i < LIVE; i++)
            eddy_timer_stop(&live[i]);
        free(live);
    } else {
        return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s switch|yield|spawn_join|timer_add_cancel N\n", argv[0]);
        return 2;
    }
    n_ops = atol(argv[2]);
    if (strcmp(argv[1], "switch") == 0)
        return run_switch();
    intptr_t result;
    int rc = eddy_run(main_task, argv[1], NULL, &result);
    if (rc < 0 || result < 0) {
        fprintf(stderr, "%s: %s\n", argv[1], eddy_strerror(rc < 0 ? rc : (int)result));
        return 1;
    }
    return 0;
}

/*
 * perf/switch_resume.c: why eddy's switch resumes with ret (see
 * coro/switch_x86_64.S). perf/switch_resume links this program twice, once
 * with the switch as committed and once with its final ret replaced by
 * pop+jmp, and prints ns per switch or per yield for three shapes:
 *
 *   cross_site  main and a coroutine switch to each other from two
 *               different call sites (generator style)
 *   same_site   two coroutines switch to each other from one call site
 *   task_yield  two reactor tasks yield to each other (the scheduler's shape)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <eddy/eddy.h>

enum { N = 10000000 };

static struct eddy_coro *a, *b, *origin;
static long count;

static void cross_body(void *arg)
{
    (void)arg;
    for (;;)
        eddy_coro_switch(a, origin);
}

static double cross_site(struct eddy_stack_pool *pool)
{
    origin = eddy_coro_current();
    eddy_coro_create(pool, cross_body, NULL, NULL, &a);
    int64_t t0 = eddy_clock_ns();
    for (long i = 0; i < N; i++)
        eddy_coro_switch(origin, a);
    int64_t t1 = eddy_clock_ns();
    eddy_coro_destroy(a);
    return (double)(t1 - t0) / (2.0 * N);
}

static void same_body(void *arg)
{
    struct eddy_coro *self = arg ? a : b, *other = arg ? b : a;
    while (count < N) {
        count++;
        eddy_coro_switch(self, other);
    }
    eddy_coro_switch(self, origin);
}

static double same_site(struct eddy_stack_pool *pool)
{
    origin = eddy_coro_current();
    count = 0;
    eddy_coro_create(pool, same_body, (void *)1, NULL, &a);
    eddy_coro_create(pool, same_body, NULL, NULL, &b);
    int64_t t0 = eddy_clock_ns();
    eddy_coro_switch(origin, a);
    int64_t t1 = eddy_clock_ns();
    eddy_coro_destroy(a);
    eddy_coro_destroy(b);
    return (double)(t1 - t0) / N;
}

static intptr_t yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < N / 2; i++)
        eddy_task_yield();
    return 0;
}

static intptr_t yield_main(void *arg)
{
    struct eddy_task *x, *y;
    eddy_task_spawn(yielder, NULL, NULL, &x);
    eddy_task_spawn(yielder, NULL, NULL, &y);
    int64_t t0 = eddy_clock_ns();
    eddy_task_join(x, NULL);
    eddy_task_join(y, NULL);
    *(double *)arg = (double)(eddy_clock_ns() - t0) / N;
    return 0;
}

int main(int argc, char **argv)
{
    const char *label = argc > 1 ? argv[1] : "eddy";
    struct eddy_stack_pool *pool;
    if (eddy_stack_pool_create(NULL, &pool) < 0)
        return 1;
    double per_yield = 0;
    printf("%-4s cross_site %6.2f ns/switch\n", label, cross_site(pool));
    printf("%-4s same_site  %6.2f ns/switch\n", label, same_site(pool));
    if (eddy_run(yield_main, &per_yield, NULL, NULL) < 0)
        return 1;
    printf("%-4s task_yield %6.2f ns/yield\n", label, per_yield);
    eddy_stack_pool_destroy(pool);
    return 0;
}

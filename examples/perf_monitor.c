/*
 * examples/perf_monitor.c: the guides' performance monitor: calls, errors
 * and latencies of each operation of a service, read as a report.
 *
 *   monitor = PerformanceMonitor()
 *   @monitor.track("fetch_user")
 *   async def fetch_user(uid): ...
 *   ...
 *   for name, m in monitor.metrics.items():
 *       print(name, m.calls, m.errors, m.mean, m.p99)
 *
 * fetch_user runs 20 times, at most 5 at once (eddy_gather_limited), each
 * call measured by eddy_metrics_call; save_order runs 6 times, measured by
 * hand around the call with eddy_metrics_record. The report prints counts,
 * and a check on the latencies rather than the latencies themselves, so the
 * output is the same on every machine: a real service would print
 * snap.mean_ns and snap.p99_ns.
 */
#include <stdio.h>

#include <eddy/eddy.h>

#define NUSERS 20
#define NORDERS 6
#define CONCURRENCY 5

static struct eddy_metrics fetch_user_metrics, save_order_metrics;

/* A lookup that takes 1 to 3 ms; every fifth user does not exist. */
static intptr_t fetch_user(void *arg)
{
    intptr_t uid = (intptr_t)arg;
    int rc = eddy_sleep_ms(1 + uid % 3);
    if (rc < 0)
        return rc;
    return uid % 5 == 4 ? -ENOENT : uid * 10;
}

static intptr_t tracked_fetch_user(void *arg)
{
    intptr_t result;
    int rc = eddy_metrics_call(&fetch_user_metrics, fetch_user, arg, &result);
    return rc < 0 ? rc : result;
}

/* A write that takes 2 ms; order 3 hits a connection reset. */
static intptr_t save_order(int order)
{
    int rc = eddy_sleep_ms(2);
    if (rc < 0)
        return rc;
    return order == 3 ? -ECONNRESET : 0;
}

static void report(const char *name, const struct eddy_metrics *m)
{
    struct eddy_metrics_snapshot s;
    eddy_metrics_snapshot(m, &s);
    printf("%-12s %5llu %6llu\n", name, (unsigned long long)s.calls, (unsigned long long)s.errors);
    printf("  min <= mean <= max and p50 <= p99 <= max: %s\n",
           s.min_ns <= s.mean_ns && s.mean_ns <= s.max_ns && s.p50_ns <= s.p99_ns &&
                   s.p99_ns <= s.max_ns
               ? "yes"
               : "no");
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    eddy_metrics_init(&fetch_user_metrics);
    eddy_metrics_init(&save_order_metrics);

    struct eddy_call calls[NUSERS];
    intptr_t users[NUSERS];
    for (intptr_t uid = 0; uid < NUSERS; uid++)
        calls[uid] = (struct eddy_call){tracked_fetch_user, (void *)uid};
    int rc = eddy_gather_limited(calls, NUSERS, CONCURRENCY, users, EDDY_GATHER_ALL);
    if (rc < 0)
        return rc;

    for (int order = 0; order < NORDERS; order++) {
        int64_t t0 = eddy_clock_ns();
        intptr_t r = save_order(order);
        eddy_metrics_record(&save_order_metrics, t0, r);
    }

    printf("operation    calls errors\n");
    report("fetch_user", &fetch_user_metrics);
    report("save_order", &save_order_metrics);
    return 0;
}

int main(void)
{
    intptr_t result = 0;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    return rc == 0 && result == 0 ? 0 : 1;
}

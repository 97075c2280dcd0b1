/*
 * tests/sync/test_metrics.c: eddy_metrics (sync/metrics.c).
 *
 * Covers exact counts, total, mean, min and max; percentiles against the
 * exact ones of the same samples (never below, at most 1/16 above, never
 * above the max), on uniform and skewed samples and across bucket edges;
 * exact small values; values past the histogram's top; record and call
 * around real sleeps (latency at least the sleep, errors from negative
 * results); merge; an empty struct; bad input.
 */
#include "tests/sync/sync_test.h"

/* A bucket is 1/16 of its power of two wide: the percentile's bound. */
#define PRECISION 0.0625

static struct eddy_metrics m; /* 4.8 KiB: static rather than on the test's stack */

/* The exact percentile of sorted samples: the value of rank ceil(q * n). */
static int64_t exact_percentile(const int64_t *sorted, size_t n, double q)
{
    size_t rank = (size_t)(q * (double)n);
    if ((double)rank < q * (double)n)
        rank++;
    if (rank == 0)
        rank = 1;
    return sorted[rank - 1];
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void expect_close(const struct eddy_metrics *mm, const int64_t *sorted, size_t n, double q)
{
    int64_t got = eddy_metrics_percentile_ns(mm, q);
    int64_t want = exact_percentile(sorted, n, q);
    cr_expect_geq(got, want, "p%g: %lld below the exact %lld", q * 100, (long long)got,
                  (long long)want);
    cr_expect_leq((double)got, (double)want * (1.0 + PRECISION), "p%g: %lld, exact %lld", q * 100,
                  (long long)got, (long long)want);
    cr_expect_leq(got, sorted[n - 1], "never above the max");
}

EDDY_TEST(metrics, counts_total_mean_min_and_max_are_exact)
{
    cr_assert_eq(eddy_metrics_init(&m), 0);
    int64_t v[] = {300, 100, 200, 1000000, 5};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(eddy_metrics_observe(&m, v[i], i == 1 || i == 3), 0);
    struct eddy_metrics_snapshot s;
    cr_assert_eq(eddy_metrics_snapshot(&m, &s), 0);
    cr_expect_eq(s.calls, 5);
    cr_expect_eq(s.errors, 2);
    cr_expect_eq(s.total_ns, 1000605);
    cr_expect_eq(s.mean_ns, 1000605 / 5);
    cr_expect_eq(s.min_ns, 5);
    cr_expect_eq(s.max_ns, 1000000);
    cr_expect_eq(s.p99_ns, 1000000, "the top sample, clamped to the max");
    /* Rank 3 of 5 is 200; from 128 ns up buckets are 8 ns wide: 200..207. */
    cr_expect_eq(s.p50_ns, 207);
}

EDDY_TEST(metrics, percentiles_are_within_one_sixteenth_above_the_exact_ones)
{
    static int64_t samples[10000];
    uint64_t seed = 42;
    /* Uniform over 1 us .. 10 ms, then a skewed set (most fast, a slow tail). */
    for (int round = 0; round < 2; round++) {
        eddy_metrics_init(&m);
        size_t n = 10000;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rt_rand(&seed);
            int64_t v = round == 0 ? 1000 + (int64_t)(r % 10000000)
                                   : (r % 100 < 95 ? 50000 + (int64_t)(r % 5000)
                                                   : 20000000 + (int64_t)(r % 80000000));
            samples[i] = v;
            cr_assert_eq(eddy_metrics_observe(&m, v, false), 0);
        }
        qsort(samples, n, sizeof(samples[0]), cmp_i64);
        static const double qs[] = {0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0};
        for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++)
            expect_close(&m, samples, n, qs[k]);
        cr_expect_eq(eddy_metrics_percentile_ns(&m, 0.0), samples[0], "p0 is the min");
        cr_expect_eq(eddy_metrics_percentile_ns(&m, 1.0), samples[n - 1], "p100 is the max");
    }
}

EDDY_TEST(metrics, every_value_lands_in_a_bucket_that_bounds_it)
{
    /* One value at a time, around every power of two up to the top: the
     * single-sample percentile is the value itself (clamped to the max),
     * and two samples show the bucket's upper end. */
    for (int bit = 0; bit < 41; bit++) {
        int64_t base = (int64_t)1 << bit;
        int64_t vs[] = {base - 1, base, base + 1, base + base / 2};
        for (int k = 0; k < 4; k++) {
            int64_t v = vs[k];
            if (v < 0)
                continue;
            eddy_metrics_init(&m);
            eddy_metrics_observe(&m, v, false);
            eddy_metrics_observe(&m, INT64_MAX, false); /* lifts the max out of the way */
            int64_t p = eddy_metrics_percentile_ns(&m, 0.5);
            cr_expect_geq(p, v, "value %lld: bucket top %lld", (long long)v, (long long)p);
            if (v < ((int64_t)1 << 39) + ((int64_t)15 << 35)) /* below the last bucket */
                cr_expect_leq((double)p, (double)v * (1.0 + PRECISION) + 1.0,
                              "value %lld: bucket top %lld", (long long)v, (long long)p);
        }
    }
    /* Below 32 ns every value is exact. */
    for (int64_t v = 0; v < 32; v++) {
        eddy_metrics_init(&m);
        eddy_metrics_observe(&m, v, false);
        eddy_metrics_observe(&m, 1000, false);
        cr_expect_eq(eddy_metrics_percentile_ns(&m, 0.5), v);
    }
}

EDDY_TEST(metrics, values_past_the_histogram_top_keep_an_exact_max)
{
    eddy_metrics_init(&m);
    int64_t huge = (int64_t)1 << 50;
    eddy_metrics_observe(&m, huge, false);
    eddy_metrics_observe(&m, INT64_MAX, true);
    struct eddy_metrics_snapshot s;
    eddy_metrics_snapshot(&m, &s);
    cr_expect_eq(s.max_ns, INT64_MAX);
    cr_expect_eq(s.min_ns, huge);
    cr_expect_eq(s.total_ns, INT64_MAX, "the total saturates");
    cr_expect_eq(s.p50_ns, INT64_MAX, "the last bucket reads as the max");
    cr_expect_eq(s.p99_ns, s.max_ns);
    /* With a smaller max, the same bucket reads as that max: never below
     * the true value, never above the max. */
    eddy_metrics_init(&m);
    eddy_metrics_observe(&m, huge, false);
    cr_expect_eq(eddy_metrics_percentile_ns(&m, 0.5), huge);
}

EDDY_TEST(metrics, an_empty_struct_reads_as_zeros)
{
    memset(&m, 0xa5, sizeof(m));
    cr_assert_eq(eddy_metrics_init(&m), 0);
    struct eddy_metrics_snapshot s;
    memset(&s, 0xa5, sizeof(s));
    cr_assert_eq(eddy_metrics_snapshot(&m, &s), 0);
    cr_expect(s.calls == 0 && s.errors == 0 && s.total_ns == 0 && s.mean_ns == 0);
    cr_expect(s.min_ns == 0 && s.max_ns == 0 && s.p50_ns == 0 && s.p90_ns == 0 && s.p99_ns == 0);
    cr_expect_eq(eddy_metrics_percentile_ns(&m, 0.99), 0);
}

/* ---- record and call ------------------------------------------------------------- */

struct op {
    int64_t sleep_ms;
    intptr_t result;
};

/* Sleeps from a fresh clock read, as the metrics measure: a sleep counted
 * from the loop's clock (read once per iteration) can end a little less
 * than its duration after a fresh read taken later in the iteration. */
static intptr_t timed_op(void *arg)
{
    const struct op *o = arg;
    int rc = eddy_sleep_until(eddy_clock_ns() + o->sleep_ms * EDDY_NS_PER_MS);
    return rc < 0 ? rc : o->result;
}

static intptr_t record_and_call(void *arg)
{
    (void)arg;
    eddy_metrics_init(&m);
    /* record: around a call written out by hand. */
    int64_t t0 = eddy_clock_ns();
    intptr_t r = timed_op(&(struct op){2, 11});
    cr_expect_eq(eddy_metrics_record(&m, t0, r), 0);
    /* call: the same, in one line; a failure is counted and returned. */
    intptr_t result = 0;
    cr_expect_eq(eddy_metrics_call(&m, timed_op, &(struct op){3, 12}, &result), 0);
    cr_expect_eq(result, 12);
    cr_expect_eq(eddy_metrics_call(&m, timed_op, &(struct op){1, -ECONNRESET}, &result),
                 -ECONNRESET);
    cr_expect_eq(result, -ECONNRESET);
    cr_expect_eq(eddy_metrics_call(&m, timed_op, &(struct op){1, 5}, NULL), 0);
    /* A start in the future counts as 0 ns. */
    cr_expect_eq(eddy_metrics_record(&m, eddy_clock_ns() + EDDY_NS_PER_SEC, 0), 0);
    /* A very old start: saturates instead of overflowing. */
    cr_expect_eq(eddy_metrics_record(&m, INT64_MIN, -EIO), 0);

    struct eddy_metrics_snapshot s;
    eddy_metrics_snapshot(&m, &s);
    cr_expect_eq(s.calls, 6);
    cr_expect_eq(s.errors, 2);
    cr_expect_eq(s.min_ns, 0);
    cr_expect_eq(s.max_ns, INT64_MAX);
    /* The four timed calls took at least their sleeps: 2 + 3 + 1 + 1 ms. */
    eddy_metrics_init(&m);
    cr_expect_eq(eddy_metrics_call(&m, timed_op, &(struct op){2, 0}, NULL), 0);
    cr_expect_eq(eddy_metrics_call(&m, timed_op, &(struct op){3, 0}, NULL), 0);
    eddy_metrics_snapshot(&m, &s);
    cr_expect_geq(s.min_ns, 2 * EDDY_NS_PER_MS);
    cr_expect_geq(s.max_ns, 3 * EDDY_NS_PER_MS);
    cr_expect_leq(s.max_ns, 3 * EDDY_NS_PER_MS + rt_late_tolerance_ns());
    cr_expect_geq(s.total_ns, 5 * EDDY_NS_PER_MS);
    return 0;
}

EDDY_TEST(metrics, record_and_call_time_real_calls_and_count_negative_results_as_errors)
{
    cr_assert_eq(rt_run(record_and_call, NULL), 0);
}

static intptr_t plain_fn(void *arg)
{
    return (intptr_t)arg;
}

EDDY_TEST(metrics, call_works_outside_a_task_for_a_function_that_does_not_block)
{
    eddy_metrics_init(&m);
    intptr_t r = 0;
    cr_expect_eq(eddy_metrics_call(&m, plain_fn, (void *)(intptr_t)9, &r), 0);
    cr_expect_eq(r, 9);
    cr_expect_eq(eddy_metrics_call(&m, plain_fn, (void *)(intptr_t)INTPTR_MIN, &r), INT32_MIN,
                 "a result below INT_MIN is clamped");
    struct eddy_metrics_snapshot s;
    eddy_metrics_snapshot(&m, &s);
    cr_expect_eq(s.calls, 2);
    cr_expect_eq(s.errors, 1);
}

EDDY_TEST(metrics, merge_adds_counts_and_keeps_min_max_and_percentiles)
{
    static struct eddy_metrics a, b, empty;
    eddy_metrics_init(&a);
    eddy_metrics_init(&b);
    eddy_metrics_init(&empty);
    for (int i = 1; i <= 99; i++)
        eddy_metrics_observe(&a, 1000 * i, false);
    eddy_metrics_observe(&b, 500, true);
    eddy_metrics_observe(&b, 5000000, true);
    cr_assert_eq(eddy_metrics_merge(&a, &b), 0);
    cr_assert_eq(eddy_metrics_merge(&a, &empty), 0, "merging an empty struct changes nothing");
    struct eddy_metrics_snapshot s;
    eddy_metrics_snapshot(&a, &s);
    cr_expect_eq(s.calls, 101);
    cr_expect_eq(s.errors, 2);
    cr_expect_eq(s.min_ns, 500);
    cr_expect_eq(s.max_ns, 5000000);
    cr_expect_eq(s.total_ns, 1000 * 99 * 100 / 2 + 500 + 5000000);
    /* Rank 100 of 101 is 99000, in the 4096 ns wide bucket 98304..102399. */
    cr_expect_eq(s.p99_ns, 102399);
    /* Into an empty one: a copy. */
    cr_assert_eq(eddy_metrics_merge(&empty, &b), 0);
    struct eddy_metrics_snapshot e;
    eddy_metrics_snapshot(&empty, &e);
    cr_expect(e.calls == 2 && e.errors == 2 && e.min_ns == 500 && e.max_ns == 5000000);
}

EDDY_TEST(metrics, bad_input_returns_einval)
{
    struct eddy_metrics_snapshot s;
    eddy_metrics_init(&m);
    cr_expect_eq(eddy_metrics_init(NULL), -EINVAL);
    cr_expect_eq(eddy_metrics_observe(NULL, 1, false), -EINVAL);
    cr_expect_eq(eddy_metrics_observe(&m, -1, false), -EINVAL, "a negative latency");
    cr_expect_eq(eddy_metrics_record(NULL, 0, 0), -EINVAL);
    cr_expect_eq(eddy_metrics_call(NULL, plain_fn, NULL, NULL), -EINVAL);
    cr_expect_eq(eddy_metrics_call(&m, NULL, NULL, NULL), -EINVAL);
    cr_expect_eq(eddy_metrics_snapshot(NULL, &s), -EINVAL);
    cr_expect_eq(eddy_metrics_snapshot(&m, NULL), -EINVAL);
    cr_expect_eq(eddy_metrics_percentile_ns(NULL, 0.5), -EINVAL);
    cr_expect_eq(eddy_metrics_percentile_ns(&m, -0.1), -EINVAL);
    cr_expect_eq(eddy_metrics_percentile_ns(&m, 1.5), -EINVAL);
    cr_expect_eq(eddy_metrics_percentile_ns(&m, 0.0 / 0.0), -EINVAL, "NaN");
    cr_expect_eq(eddy_metrics_merge(NULL, &m), -EINVAL);
    cr_expect_eq(eddy_metrics_merge(&m, NULL), -EINVAL);
    eddy_metrics_snapshot(&m, &s);
    cr_expect_eq(s.calls, 0, "nothing was recorded by the failed calls");
}

/*
 * sync/metrics.c: per-operation metrics: calls, errors, total/mean/min/max
 * latency and percentiles from a fixed log-linear histogram.
 *
 * Histogram (the layout HdrHistogram and others use, with 4 sub-bucket
 * bits): a value v < 32 has a bucket of its own; above, v's highest set bit
 * e picks a group of 16 buckets and the 4 bits below it pick one of them,
 * so each bucket is 1/16 of its power of two wide:
 *   index(v) = v                                   for v < 16
 *            = (e - 3) * 16 + (v >> (e - 4)) - 16  for 16 <= v < 2^40
 *            = 591                                 for v >= 2^40
 * (the two formulas agree on 16..31, where buckets are still 1 ns wide).
 * A percentile is the upper end of the bucket holding its rank, clamped to
 * the largest value seen: never below the true value, at most 1/16 above.
 * The last bucket (from 2^39 + 15 * 2^35, and every v >= 2^40) has no
 * upper end: a percentile that falls in it is the largest value seen.
 * Costs: observe is a count-leading-zeros, a shift and a few additions;
 * a percentile walks at most 592 counters.
 */
#include <limits.h>

#include <eddy/sync.h>

#define SUB_BITS 4
#define SUB (1u << SUB_BITS)
#define TOP_BIT 40 /* values from 2^TOP_BIT share the last bucket */

_Static_assert(EDDY_METRICS_BUCKETS == (TOP_BIT - SUB_BITS + 1) * SUB,
               "one group of SUB buckets per power of two from 2^4 to 2^39, and 0..15");

static unsigned bucket_of(int64_t v)
{
    uint64_t u = (uint64_t)v;
    if (u < SUB)
        return (unsigned)u;
    unsigned e = 63u - (unsigned)__builtin_clzll(u);
    if (e >= TOP_BIT)
        return EDDY_METRICS_BUCKETS - 1;
    return (e - SUB_BITS + 1) * SUB + (unsigned)(u >> (e - SUB_BITS)) - SUB;
}

/* The largest value that falls in bucket idx. The last one has no top (it
 * holds everything from 2^40), so the caller's clamp to the max decides. */
static int64_t bucket_upper(unsigned idx)
{
    if (idx < 2 * SUB)
        return idx;
    if (idx == EDDY_METRICS_BUCKETS - 1)
        return INT64_MAX;
    unsigned e = idx / SUB + SUB_BITS - 1;
    uint64_t mantissa = SUB + idx % SUB;
    return (int64_t)(((mantissa + 1) << (e - SUB_BITS)) - 1);
}

static int64_t add_saturating(int64_t a, int64_t b)
{
    int64_t sum;
    return __builtin_add_overflow(a, b, &sum) ? INT64_MAX : sum;
}

EDDY_API int eddy_metrics_init(struct eddy_metrics *m)
{
    if (!m)
        return -EINVAL;
    *m = (struct eddy_metrics){0};
    return 0;
}

EDDY_API int eddy_metrics_observe(struct eddy_metrics *m, int64_t latency_ns, bool failed)
{
    if (!m || latency_ns < 0)
        return -EINVAL;
    m->_buckets[bucket_of(latency_ns)]++;
    if (m->_calls == 0 || latency_ns < m->_min_ns)
        m->_min_ns = latency_ns;
    if (latency_ns > m->_max_ns)
        m->_max_ns = latency_ns;
    m->_calls++;
    m->_errors += failed;
    m->_total_ns = add_saturating(m->_total_ns, latency_ns);
    return 0;
}

EDDY_API int eddy_metrics_record(struct eddy_metrics *m, int64_t start_ns, intptr_t result)
{
    if (!m)
        return -EINVAL;
    int64_t now = eddy_clock_ns(), took;
    if (start_ns >= now)
        took = 0;
    else if (__builtin_sub_overflow(now, start_ns, &took))
        took = INT64_MAX;
    return eddy_metrics_observe(m, took, result < 0);
}

EDDY_API int eddy_metrics_call(struct eddy_metrics *m, eddy_task_fn *fn, void *arg,
                               intptr_t *result)
{
    if (!m || !fn)
        return -EINVAL;
    int64_t start = eddy_clock_ns();
    intptr_t r = fn(arg);
    eddy_metrics_record(m, start, r);
    if (result)
        *result = r;
    if (r >= 0)
        return 0;
    return r < INT_MIN ? INT_MIN : (int)r;
}

EDDY_API int64_t eddy_metrics_percentile_ns(const struct eddy_metrics *m, double q)
{
    if (!m || !(q >= 0.0 && q <= 1.0)) /* also refuses NaN */
        return -EINVAL;
    if (m->_calls == 0)
        return 0;
    if (q == 0.0)
        return m->_min_ns;
    /* The rank of the sample, 1-based: ceil(q * calls), without libm. */
    double x = q * (double)m->_calls;
    uint64_t rank = (uint64_t)x;
    if ((double)rank < x)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < EDDY_METRICS_BUCKETS; i++) {
        seen += m->_buckets[i];
        if (seen >= rank) {
            int64_t upper = bucket_upper(i);
            return upper < m->_max_ns ? upper : m->_max_ns;
        }
    }
    return m->_max_ns; /* not reached: the buckets add up to calls */
}

EDDY_API int eddy_metrics_snapshot(const struct eddy_metrics *m, struct eddy_metrics_snapshot *out)
{
    if (!m || !out)
        return -EINVAL;
    *out = (struct eddy_metrics_snapshot){
        .calls = m->_calls,
        .errors = m->_errors,
        .total_ns = m->_total_ns,
        .mean_ns = m->_calls ? m->_total_ns / (int64_t)m->_calls : 0,
        .min_ns = m->_min_ns,
        .max_ns = m->_max_ns,
        .p50_ns = eddy_metrics_percentile_ns(m, 0.50),
        .p90_ns = eddy_metrics_percentile_ns(m, 0.90),
        .p99_ns = eddy_metrics_percentile_ns(m, 0.99),
    };
    return 0;
}

EDDY_API int eddy_metrics_merge(struct eddy_metrics *into, const struct eddy_metrics *from)
{
    if (!into || !from)
        return -EINVAL;
    if (from->_calls == 0)
        return 0;
    for (unsigned i = 0; i < EDDY_METRICS_BUCKETS; i++)
        into->_buckets[i] += from->_buckets[i];
    if (into->_calls == 0 || from->_min_ns < into->_min_ns)
        into->_min_ns = from->_min_ns;
    if (from->_max_ns > into->_max_ns)
        into->_max_ns = from->_max_ns;
    into->_calls += from->_calls;
    into->_errors += from->_errors;
    into->_total_ns = add_saturating(into->_total_ns, from->_total_ns);
    return 0;
}

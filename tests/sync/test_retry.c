/*
 * tests/sync/test_retry.c: eddy_retry (sync/retry.c).
 *
 * Covers success after failures (the guides' operation that fails most of
 * the time), giving up after max_attempts with the last error, the policy
 * declining an error, the backoff schedule and its cap, jitter bounds,
 * cancellation during a backoff sleep, timeout scopes, and misuse.
 */
#include "tests/sync/sync_test.h"

struct flaky {
    unsigned fail_first; /* attempts that fail before one succeeds */
    unsigned calls;
    unsigned last_attempt;
    int error;
    int64_t at[16]; /* when each attempt ran, on the loop's clock */
};

static intptr_t flaky_op(void *arg, unsigned attempt)
{
    struct flaky *f = arg;
    /* The loop's clock: a backoff sleep is measured from it (read once per
     * iteration), so waits are exact on it even when the machine is slow. */
    if (f->calls < 16)
        f->at[f->calls] = eddy_now_ns();
    f->calls++;
    f->last_attempt = attempt;
    return attempt <= f->fail_first ? f->error : (intptr_t)(1000 + attempt);
}

static intptr_t succeed_on_third(void *arg)
{
    (void)arg;
    struct flaky f = {.fail_first = 2, .error = -ECONNREFUSED};
    struct eddy_retry_opts o = {.max_attempts = 5, .base_delay_ns = 2 * EDDY_NS_PER_MS};
    intptr_t r = 0;
    cr_expect_eq(eddy_retry(flaky_op, &f, &o, &r), 0);
    cr_expect_eq(r, 1003, "the result of the attempt that succeeded");
    cr_expect_eq(f.calls, 3);
    cr_expect_eq(f.last_attempt, 3, "attempts are numbered from 1");
    /* Backoff: 2 ms, then 4 ms (no jitter). */
    cr_expect_geq(f.at[1] - f.at[0], 2 * EDDY_NS_PER_MS);
    cr_expect_geq(f.at[2] - f.at[1], 4 * EDDY_NS_PER_MS);
    return 0;
}

EDDY_TEST(retry, an_operation_that_fails_twice_succeeds_on_the_third_attempt)
{
    rt_run(succeed_on_third, NULL);
}

static intptr_t give_up(void *arg)
{
    (void)arg;
    struct flaky f = {.fail_first = 100, .error = -ECONNRESET};
    struct eddy_retry_opts o = {.max_attempts = 4, .base_delay_ns = EDDY_NS_PER_MS};
    intptr_t r = 77;
    cr_expect_eq(eddy_retry(flaky_op, &f, &o, &r), -ECONNRESET);
    cr_expect_eq(f.calls, 4);
    cr_expect_eq(r, 77, "result untouched on failure");
    return 0;
}

EDDY_TEST(retry, gives_up_after_max_attempts_with_the_last_error)
{
    rt_run(give_up, NULL);
}

static bool only_refused(int error, void *arg)
{
    ++*(int *)arg;
    return error == -ECONNREFUSED;
}

static intptr_t declined(void *arg)
{
    (void)arg;
    int asked = 0;
    struct flaky f = {.fail_first = 100, .error = -EPROTO};
    struct eddy_retry_opts o = {.max_attempts = 5,
                                .base_delay_ns = EDDY_NS_PER_MS,
                                .retry_if = only_refused,
                                .retry_if_arg = &asked};
    cr_expect_eq(eddy_retry(flaky_op, &f, &o, NULL), -EPROTO);
    cr_expect_eq(f.calls, 1, "an error the policy declines is not retried");
    cr_expect_eq(asked, 1);
    /* By default cancellation and deadlines are never retried. */
    struct flaky g = {.fail_first = 100, .error = -ECANCELED};
    cr_expect_eq(eddy_retry(flaky_op, &g, NULL, NULL), -ECANCELED);
    cr_expect_eq(g.calls, 1);
    return 0;
}

EDDY_TEST(retry, the_policy_decides_which_errors_are_retried)
{
    rt_run(declined, NULL);
}

EDDY_TEST(retry, backoff_grows_by_the_multiplier_up_to_the_cap)
{
    struct eddy_retry_opts o = {.base_delay_ns = 100, .max_delay_ns = 1000, .multiplier = 3.0};
    cr_expect_eq(eddy_retry_delay_ns(&o, 1), 100);
    cr_expect_eq(eddy_retry_delay_ns(&o, 2), 300);
    cr_expect_eq(eddy_retry_delay_ns(&o, 3), 900);
    cr_expect_eq(eddy_retry_delay_ns(&o, 4), 1000);
    cr_expect_eq(eddy_retry_delay_ns(&o, 60), 1000);
    cr_expect_eq(eddy_retry_delay_ns(NULL, 1), 100 * EDDY_NS_PER_MS, "default base 100 ms");
    cr_expect_eq(eddy_retry_delay_ns(NULL, 40), 10 * EDDY_NS_PER_SEC, "default cap 10 s");
    struct eddy_retry_opts flat = {.base_delay_ns = 50, .multiplier = 0.5};
    cr_expect_eq(eddy_retry_delay_ns(&flat, 5), 50, "a multiplier below 1 counts as 1");
}

static intptr_t jittered(void *arg)
{
    (void)arg;
    /* Full jitter on a 20 ms delay: each wait lies in [0, 20 ms] and the
     * waits are not all the same. */
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 8; i++) {
        struct flaky f = {.fail_first = 1, .error = -EAGAIN};
        struct eddy_retry_opts o = {
            .max_attempts = 2, .base_delay_ns = 20 * EDDY_NS_PER_MS, .jitter = 1.0};
        cr_assert_eq(eddy_retry(flaky_op, &f, &o, NULL), 0);
        int64_t waited = f.at[1] - f.at[0];
        cr_expect_leq(waited, 20 * EDDY_NS_PER_MS + rt_late_tolerance_ns());
        lo = waited < lo ? waited : lo;
        hi = waited > hi ? waited : hi;
    }
    cr_expect_gt(hi - lo, EDDY_NS_PER_MS, "jitter spreads the waits (%lld..%lld ns)", (long long)lo,
                 (long long)hi);
    return 0;
}

EDDY_TEST(retry, jitter_spreads_the_waits_within_the_delay)
{
    rt_run(jittered, NULL);
}

static intptr_t retry_forever(void *arg)
{
    struct flaky *f = arg;
    struct eddy_retry_opts o = {.max_attempts = 1000, .base_delay_ns = EDDY_NS_PER_SEC};
    return eddy_retry(flaky_op, f, &o, NULL);
}

static intptr_t cancel_in_backoff(void *arg)
{
    (void)arg;
    struct flaky f = {.fail_first = 1000, .error = -EIO};
    struct eddy_task *t = st_spawn(retry_forever, &f);
    st_settle();
    cr_expect_eq(f.calls, 1, "first attempt ran, now sleeping 1 s");
    cr_expect_eq(eddy_task_cancel(t), 0);
    cr_expect_eq(st_join(t), -ECANCELED);
    cr_expect_eq(f.calls, 1, "no attempt after the cancellation");
    /* A timeout scope ends the loop the same way. */
    struct flaky g = {.fail_first = 1000, .error = -EIO};
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, 20 * EDDY_NS_PER_MS);
    cr_expect_eq(retry_forever(&g), -ETIMEDOUT);
    cr_expect_eq(eddy_timeout_exit(&scope), -ETIMEDOUT);
    cr_expect_eq(g.calls, 1);
    return 0;
}

EDDY_TEST(retry, cancellation_or_a_timeout_scope_ends_the_backoff)
{
    rt_run(cancel_in_backoff, NULL);
}

EDDY_TEST(retry, misuse_is_einval)
{
    cr_expect_eq(eddy_retry(flaky_op, NULL, NULL, NULL), -EINVAL, "outside a task");
}

static intptr_t null_fn(void *arg)
{
    (void)arg;
    cr_expect_eq(eddy_retry(NULL, NULL, NULL, NULL), -EINVAL);
    return 0;
}

EDDY_TEST(retry, a_null_function_is_einval)
{
    rt_run(null_fn, NULL);
}

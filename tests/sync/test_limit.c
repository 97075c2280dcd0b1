/*
 * tests/sync/test_limit.c: eddy_gather_limited (sync/limit.c).
 *
 * Covers the limit (never more than `limit` calls inside at once, and
 * exactly `limit` when there is enough work), the start order (call order),
 * results in call order, failures kept (ALL), fail-fast (running calls
 * cancelled, no new call started, the first failure returned), a limit
 * above n, 10,000 calls, cancellation of the caller and an expired timeout
 * scope (running calls cancelled and finished before the return, the rest
 * -ECANCELED), a caller cancelled before the call, bad input, and a spawn
 * failure (-ENOMEM with the loop still running).
 */
#include <sys/resource.h>

#include "tests/sync/sync_test.h"

#define MAXCALLS 10000

struct ltest;

struct ljob {
    struct ltest *lt;
    int id;
    int64_t delay_ms; /* 0: yield once */
    intptr_t result;
    bool started, cleaned_up;
};

struct ltest {
    struct ljob jobs[MAXCALLS];
    struct eddy_call calls[MAXCALLS];
    intptr_t results[MAXCALLS];
    struct st_log starts;
    size_t n, limit;
    enum eddy_gather_mode mode;
    int inside, most_inside;
    size_t started, cleaned_up_at_return;
    int rc, after_rc;
    int64_t elapsed_ns;
    bool in_scope, cancel_first;
};

static intptr_t ljob_run(void *arg)
{
    struct ljob *j = arg;
    struct ltest *lt = j->lt;
    j->started = true;
    lt->started++;
    st_log_add(&lt->starts, j->id);
    if (++lt->inside > lt->most_inside)
        lt->most_inside = lt->inside;
    int rc = j->delay_ms > 0 ? eddy_sleep_ms(j->delay_ms) : eddy_task_yield();
    lt->inside--;
    j->cleaned_up = true;
    return rc < 0 ? rc : j->result;
}

static void prepare(struct ltest *lt, size_t n, size_t limit, enum eddy_gather_mode mode)
{
    memset(lt, 0, sizeof(*lt));
    lt->n = n;
    lt->limit = limit;
    lt->mode = mode;
    for (size_t i = 0; i < n; i++) {
        lt->jobs[i] =
            (struct ljob){lt, (int)i, (int64_t)(i % 4) + 1, (intptr_t)(i * i), false, false};
        lt->calls[i] = (struct eddy_call){ljob_run, &lt->jobs[i]};
        lt->results[i] = INTPTR_MIN;
    }
}

static intptr_t run_limited(void *arg)
{
    struct ltest *lt = arg;
    struct eddy_timeout scope;
    if (lt->in_scope)
        cr_assert_eq(eddy_timeout_enter(&scope, 5 * EDDY_NS_PER_MS), 0);
    if (lt->cancel_first)
        cr_assert_eq(eddy_task_cancel(eddy_task_current()), 0);
    int64_t t0 = eddy_clock_ns();
    lt->rc = eddy_gather_limited(lt->calls, lt->n, lt->limit, lt->results, lt->mode);
    lt->elapsed_ns = eddy_clock_ns() - t0;
    for (size_t i = 0; i < lt->n; i++)
        lt->cleaned_up_at_return += lt->jobs[i].cleaned_up;
    lt->after_rc = eddy_task_yield();
    if (lt->in_scope)
        eddy_timeout_exit(&scope);
    return 0;
}

static void expect_results_in_call_order(const struct ltest *lt)
{
    for (size_t i = 0; i < lt->n; i++)
        cr_expect_eq(lt->results[i], lt->jobs[i].result, "results[%zu] = %ld", i,
                     (long)lt->results[i]);
}

EDDY_TEST(gather_limited, at_most_limit_calls_run_at_once_started_in_call_order)
{
    static struct ltest lt;
    prepare(&lt, 20, 3, EDDY_GATHER_ALL);
    cr_assert_eq(rt_run(run_limited, &lt), 0);
    cr_expect_eq(lt.rc, 0);
    cr_expect_eq(lt.most_inside, 3);
    st_log_expect_sequence(&lt.starts, 20);
    expect_results_in_call_order(&lt);
}

EDDY_TEST(gather_limited, a_limit_above_n_runs_every_call_at_once)
{
    static struct ltest lt;
    prepare(&lt, 5, 100, EDDY_GATHER_ALL);
    cr_assert_eq(rt_run(run_limited, &lt), 0);
    cr_expect_eq(lt.rc, 0);
    cr_expect_eq(lt.most_inside, 5);
    expect_results_in_call_order(&lt);
}

EDDY_TEST(gather_limited, all_mode_keeps_failures_in_results_and_runs_every_call)
{
    static struct ltest lt;
    prepare(&lt, 12, 4, EDDY_GATHER_ALL);
    lt.jobs[0].result = -EIO;
    lt.jobs[5].result = -ECONNRESET;
    lt.jobs[11].result = -EPIPE;
    cr_assert_eq(rt_run(run_limited, &lt), 0);
    cr_expect_eq(lt.rc, 0);
    cr_expect_eq(lt.started, 12);
    expect_results_in_call_order(&lt);
}

EDDY_TEST(gather_limited, fail_fast_cancels_running_calls_and_starts_no_more)
{
    static struct ltest lt;
    prepare(&lt, 10, 3, EDDY_GATHER_FAIL_FAST);
    for (size_t i = 0; i < 10; i++)
        lt.jobs[i].delay_ms = 60 * 1000;
    lt.jobs[1].delay_ms = 1;
    lt.jobs[1].result = -EIO;
    cr_assert_eq(rt_run(run_limited, &lt), 0);
    cr_expect_eq(lt.rc, -EIO);
    cr_expect_lt(lt.elapsed_ns, 1 * EDDY_NS_PER_MS + rt_late_tolerance_ns());
    cr_expect_eq(lt.results[1], -EIO);
    cr_expect_eq(lt.results[0], -ECANCELED, "running: cancelled");
    cr_expect_eq(lt.results[2], -ECANCELED, "running: cancelled");
    cr_expect_eq(lt.started, 3, "no call started after the failure");
    cr_expect_eq(lt.cleaned_up_at_return, 3, "the running calls had finished");
    for (size_t i = 3; i < 10; i++)
        cr_expect_eq(lt.results[i], -ECANCELED, "never started: %zu", i);
}

EDDY_TEST(gather_limited, ten_thousand_calls_through_ten_workers)
{
    static struct ltest lt;
    size_t n = rt_scale(MAXCALLS, 1000);
    prepare(&lt, n, 10, EDDY_GATHER_ALL);
    for (size_t i = 0; i < n; i++)
        lt.jobs[i].delay_ms = 0;
    cr_assert_eq(rt_run(run_limited, &lt), 0);
    cr_expect_eq(lt.rc, 0);
    cr_expect_eq(lt.most_inside, 10);
    st_log_expect_sequence(&lt.starts, n);
    expect_results_in_call_order(&lt);
}

/* The caller cancelled, or its scope expiring, while calls run. */
static intptr_t cancel_the_caller(void *arg)
{
    struct ltest *lt = arg;
    struct eddy_task *g = st_spawn(run_limited, lt);
    cr_assert_eq(eddy_sleep_ms(2), 0);
    cr_assert_eq(eddy_task_cancel(g), 0);
    st_join(g);
    return 0;
}

static void check_interrupted(bool in_scope)
{
    static struct ltest lt;
    prepare(&lt, 8, 3, EDDY_GATHER_ALL);
    for (size_t i = 0; i < 8; i++)
        lt.jobs[i].delay_ms = 60 * 1000;
    lt.in_scope = in_scope;
    cr_assert_eq(rt_run(in_scope ? run_limited : cancel_the_caller, &lt), 0);
    cr_expect_eq(lt.rc, in_scope ? -ETIMEDOUT : -ECANCELED);
    cr_expect_eq(lt.after_rc, in_scope ? -ETIMEDOUT : -ECANCELED, "still in force afterwards");
    cr_expect_eq(lt.started, 3);
    cr_expect_eq(lt.cleaned_up_at_return, 3, "the running calls finished before the return");
    for (size_t i = 0; i < 8; i++)
        cr_expect_eq(lt.results[i], -ECANCELED, "results[%zu] = %ld", i, (long)lt.results[i]);
    if (in_scope)
        cr_expect_lt(lt.elapsed_ns, 5 * EDDY_NS_PER_MS + rt_late_tolerance_ns());
}

EDDY_TEST(gather_limited, cancelling_the_caller_cancels_the_running_calls_and_waits_for_them)
{
    check_interrupted(false);
}

EDDY_TEST(gather_limited, an_expired_scope_returns_etimedout_after_the_running_calls_finished)
{
    check_interrupted(true);
}

EDDY_TEST(gather_limited, a_caller_cancelled_before_the_call_runs_no_call)
{
    static struct ltest lt;
    prepare(&lt, 6, 2, EDDY_GATHER_ALL);
    lt.cancel_first = true;
    cr_assert_eq(rt_run(run_limited, &lt), 0);
    cr_expect_eq(lt.rc, -ECANCELED);
    cr_expect_eq(lt.started, 0);
    for (size_t i = 0; i < 6; i++)
        cr_expect_eq(lt.results[i], -ECANCELED);
}

static intptr_t limited_bad_input(void *arg)
{
    struct ltest *lt = arg;
    cr_expect_eq(eddy_gather_limited(NULL, 0, 0, NULL, EDDY_GATHER_ALL), 0, "empty: 0 at once");
    cr_expect_eq(eddy_gather_limited(lt->calls, 2, 0, lt->results, EDDY_GATHER_ALL), -EINVAL,
                 "limit 0");
    cr_expect_eq(eddy_gather_limited(NULL, 2, 1, lt->results, EDDY_GATHER_ALL), -EINVAL);
    cr_expect_eq(eddy_gather_limited(lt->calls, 2, 1, NULL, EDDY_GATHER_ALL), -EINVAL);
    cr_expect_eq(eddy_gather_limited(lt->calls, 2, 1, lt->results, (enum eddy_gather_mode)7),
                 -EINVAL);
    cr_expect_eq(lt->started, 0, "no call ran");
    return 0;
}

EDDY_TEST(gather_limited, bad_input_returns_einval)
{
    static struct ltest lt;
    prepare(&lt, 2, 1, EDDY_GATHER_ALL);
    cr_expect_eq(eddy_gather_limited(lt.calls, 2, 1, lt.results, EDDY_GATHER_ALL), -EINVAL,
                 "outside a task");
    cr_assert_eq(rt_run(limited_bad_input, &lt), 0);
}

/* ---- out of stacks ------------------------------------------------------------------ */

#define ADDRESS_SPACE_HEADROOM ((rlim_t)256 << 20)

static long vm_size_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

static intptr_t limited_out_of_stacks(void *arg)
{
    struct ltest *lt = arg;
    long vm = vm_size_bytes();
    EDDY_CHILD_CHECK(vm > 0);
    struct rlimit lim = {(rlim_t)vm + ADDRESS_SPACE_HEADROOM, RLIM_INFINITY};
    EDDY_CHILD_CHECK(setrlimit(RLIMIT_AS, &lim) == 0);
    /* MAXCALLS workers need far more stacks than the headroom holds. */
    int rc = eddy_gather_limited(lt->calls, lt->n, lt->n, lt->results, EDDY_GATHER_ALL);
    EDDY_CHILD_CHECK(rc == -ENOMEM);
    EDDY_CHILD_CHECK(lt->started == 0);
    for (size_t i = 0; i < lt->n; i++)
        EDDY_CHILD_CHECK(lt->results[i] == -ECANCELED);
    /* The loop keeps running, and the stacks came back to the pool. */
    rc = eddy_gather_limited(lt->calls, 4, 2, lt->results, EDDY_GATHER_ALL);
    EDDY_CHILD_CHECK(rc == 0);
    EDDY_CHILD_CHECK(lt->started == 4);
    return 0;
}

static void out_of_stacks_child(void *arg)
{
    intptr_t result = -1;
    EDDY_CHILD_CHECK(eddy_run(limited_out_of_stacks, arg, NULL, &result) == 0);
    EDDY_CHILD_CHECK(result == 0);
}

EDDY_TEST(gather_limited, a_failed_spawn_returns_enomem_runs_no_call_and_the_loop_keeps_running)
{
    if (eddy_test_under_valgrind())
        cr_skip_test("Valgrind manages the address space itself; RLIMIT_AS does not apply");
    static struct ltest lt;
    prepare(&lt, MAXCALLS, MAXCALLS, EDDY_GATHER_ALL);
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(out_of_stacks_child, &lt, &child), 0);
    eddy_assert_child_ok(child);
}

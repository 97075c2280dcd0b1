/*
 * tests/sync/test_wait.c: eddy_wait_for (sync/wait.c).
 *
 * Covers a task finishing in time (its result), a deadline that passes
 * first (the task is cancelled and has finished when wait_for returns), the
 * caller cancelled while waiting (the task is cancelled and waited for, the
 * caller's cancellation is restored), an expired scope (the task is
 * cancelled and detached), and bad input.
 */
#include "tests/sync/sync_test.h"

struct job {
    int64_t delay_ms;
    bool finished, cleaned_up;
    int rc;
    int after_rc;
};

static intptr_t sleeper(void *arg)
{
    struct job *j = arg;
    int rc = eddy_sleep_ms(j->delay_ms);
    j->cleaned_up = true;
    if (rc < 0)
        return rc;
    j->finished = true;
    return 7;
}

static intptr_t in_time_and_late(void *arg)
{
    struct job *j = arg;
    intptr_t r = 0;
    j[0].delay_ms = 1;
    cr_expect_eq(eddy_wait_for(st_spawn(sleeper, &j[0]), st_in_ms(1000), &r), 0);
    cr_expect_eq(r, 7);
    j[1].delay_ms = 10000;
    int64_t t0 = eddy_clock_ns();
    cr_expect_eq(eddy_wait_for(st_spawn(sleeper, &j[1]), st_in_ms(10), &r), -ETIMEDOUT);
    cr_expect_lt(eddy_clock_ns() - t0, 10 * EDDY_NS_PER_MS + rt_late_tolerance_ns());
    cr_expect(j[1].cleaned_up, "the task had finished (cancelled) when wait_for returned");
    cr_expect_not(j[1].finished);
    cr_expect_eq(eddy_wait_for(NULL, EDDY_DEADLINE_NEVER, NULL), -EINVAL);
    cr_expect_eq(eddy_wait_for(eddy_task_current(), EDDY_DEADLINE_NEVER, NULL), -EINVAL);
    return 0;
}

EDDY_TEST(wait_for, returns_the_result_in_time_and_cancels_the_task_when_late)
{
    static struct job j[2];
    cr_assert_eq(rt_run(in_time_and_late, j), 0);
}

static intptr_t waiter(void *arg)
{
    struct job *j = arg;
    j[0].rc = eddy_wait_for(st_spawn(sleeper, &j[1]), EDDY_DEADLINE_NEVER, NULL);
    j[0].after_rc = eddy_task_yield();
    return 0;
}

static intptr_t cancel_caller(void *arg)
{
    struct job *j = arg;
    j[1].delay_ms = 10000;
    struct eddy_task *w = st_spawn(waiter, j);
    cr_assert_eq(eddy_sleep_ms(2), 0);
    eddy_task_cancel(w);
    st_join(w);
    return 0;
}

EDDY_TEST(wait_for, cancelling_the_caller_cancels_the_task_and_waits_for_it)
{
    static struct job j[2];
    cr_assert_eq(rt_run(cancel_caller, j), 0);
    cr_expect_eq(j[0].rc, -ECANCELED);
    cr_expect_eq(j[0].after_rc, -ECANCELED);
    cr_expect(j[1].cleaned_up);
}

static intptr_t expired_scope(void *arg)
{
    struct job *j = arg;
    j[0].delay_ms = 10000;
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, 5 * EDDY_NS_PER_MS);
    j[0].rc = eddy_wait_for(st_spawn(sleeper, &j[0]), EDDY_DEADLINE_NEVER, NULL);
    eddy_timeout_exit(&scope);
    /* The detached task ends on its own. */
    for (int i = 0; i < 10 && !j[0].cleaned_up; i++)
        eddy_task_yield();
    return 0;
}

EDDY_TEST(wait_for, an_expired_scope_cancels_and_detaches_the_task)
{
    static struct job j[1];
    cr_assert_eq(rt_run(expired_scope, j), 0);
    cr_expect_eq(j[0].rc, -ETIMEDOUT);
    cr_expect(j[0].cleaned_up);
}

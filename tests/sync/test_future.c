/*
 * tests/sync/test_future.c: eddy_future (sync/future.c).
 *
 * Covers set_result waking 10,000 waiters, set_error, cancel, -EALREADY on a
 * second completion (the outcome unchanged), -EINVAL for a non-negative
 * error, result without waiting (-EAGAIN while pending), completion from a
 * posted callback and from a timer callback, and a waiter's own
 * cancellation and deadline.
 */
#include "tests/sync/sync_test.h"

struct shared {
    struct eddy_future f;
    size_t got;
    struct eddy_timer timer;
};

static intptr_t await_it(void *arg)
{
    struct shared *s = arg;
    intptr_t v = -1;
    int rc = eddy_future_wait(&s->f, &v, EDDY_DEADLINE_NEVER);
    if (rc < 0)
        return rc;
    if (v == 42)
        s->got++;
    return v;
}

static intptr_t many(void *arg)
{
    struct shared *s = arg;
    eddy_future_init(&s->f);
    size_t n = rt_scale(10000, 1000);
    struct eddy_task **t = calloc(n, sizeof(*t));
    for (size_t i = 0; i < n; i++)
        t[i] = st_spawn(await_it, s);
    st_settle();
    intptr_t v;
    cr_expect_eq(eddy_future_result(&s->f, &v), -EAGAIN);
    cr_expect_not(eddy_future_is_done(&s->f));
    cr_assert_eq(eddy_future_set_result(&s->f, 42), 0);
    cr_expect_eq(eddy_future_set_result(&s->f, 43), -EALREADY, "double set_result");
    cr_expect_eq(eddy_future_set_error(&s->f, -EIO), -EALREADY);
    cr_expect_eq(eddy_future_cancel(&s->f), -EALREADY);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(st_join(t[i]), 42);
    free(t);
    cr_expect_eq(s->got, n);
    cr_expect_eq(eddy_future_result(&s->f, &v), 0);
    cr_expect_eq(v, 42);
    cr_expect_eq(eddy_future_wait(&s->f, &v, EDDY_DEADLINE_NEVER), 0, "done: no wait");
    return 0;
}

EDDY_TEST(future, set_result_wakes_ten_thousand_waiters_and_a_second_set_is_ealready)
{
    static struct shared s;
    cr_assert_eq(rt_run(many, &s), 0);
}

static intptr_t errors(void *arg)
{
    struct shared *s = arg;
    eddy_future_init(&s->f);
    struct eddy_task *t = st_spawn(await_it, s);
    st_settle();
    cr_expect_eq(eddy_future_set_error(&s->f, 0), -EINVAL);
    cr_expect_eq(eddy_future_set_error(&s->f, 5), -EINVAL);
    cr_assert_eq(eddy_future_set_error(&s->f, -EIO), 0);
    cr_expect_eq(st_join(t), -EIO);
    cr_expect_eq(eddy_future_result(&s->f, NULL), -EIO);
    cr_expect_not(eddy_future_is_cancelled(&s->f));

    eddy_future_init(&s->f);
    t = st_spawn(await_it, s);
    st_settle();
    cr_assert_eq(eddy_future_cancel(&s->f), 0);
    cr_expect_eq(st_join(t), -ECANCELED);
    cr_expect(eddy_future_is_cancelled(&s->f));
    cr_expect(eddy_future_is_done(&s->f));
    cr_expect_eq(eddy_future_set_result(&s->f, 1), -EALREADY);
    return 0;
}

EDDY_TEST(future, set_error_and_cancel_reach_every_waiter)
{
    static struct shared s;
    cr_assert_eq(rt_run(errors, &s), 0);
}

static void set_cb(void *arg)
{
    struct shared *s = arg;
    cr_assert_eq(eddy_future_set_result(&s->f, 42), 0);
}

static intptr_t from_callbacks(void *arg)
{
    struct shared *s = arg;
    eddy_future_init(&s->f);
    struct eddy_task *t = st_spawn(await_it, s);
    cr_assert_eq(eddy_loop_post(eddy_loop_current(), set_cb, s), 0);
    cr_expect_eq(st_join(t), 42);

    eddy_future_init(&s->f);
    t = st_spawn(await_it, s);
    memset(&s->timer, 0, sizeof(s->timer));
    cr_assert_eq(eddy_timer_start(&s->timer, st_in_ms(2), set_cb, s), 0);
    cr_expect_eq(st_join(t), 42);
    return 0;
}

EDDY_TEST(future, completes_from_posted_and_timer_callbacks)
{
    static struct shared s;
    cr_assert_eq(rt_run(from_callbacks, &s), 0);
    cr_expect_eq(s.got, 2);
}

static intptr_t await_deadline(void *arg)
{
    struct shared *s = arg;
    return eddy_future_wait(&s->f, NULL, st_in_ms(5));
}

static intptr_t waiter_errors(void *arg)
{
    struct shared *s = arg;
    eddy_future_init(&s->f);
    struct eddy_task *a = st_spawn(await_it, s);
    struct eddy_task *b = st_spawn(await_deadline, s);
    struct eddy_task *c = st_spawn(await_it, s);
    st_settle();
    eddy_task_cancel(a);
    cr_expect_eq(st_join(a), -ECANCELED);
    cr_expect_eq(st_join(b), -ETIMEDOUT);
    cr_expect_not(eddy_future_is_done(&s->f), "a waiter's failure does not touch the future");
    cr_assert_eq(eddy_future_set_result(&s->f, 42), 0);
    cr_expect_eq(st_join(c), 42);
    return 0;
}

EDDY_TEST(future, a_waiter_cancelled_or_timed_out_leaves_the_future_pending)
{
    static struct shared s;
    cr_assert_eq(rt_run(waiter_errors, &s), 0);
}

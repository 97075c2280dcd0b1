/*
 * tests/sync/test_event.c: eddy_event (sync/event.c).
 *
 * Covers set/clear/is_set, wait on a set event (no suspension), set waking
 * every waiter (also when cleared before they run), set from a loop
 * callback, cancellation and deadlines while waiting, 10,000 waiters.
 */
#include "tests/sync/sync_test.h"

struct shared {
    struct eddy_event ev;
    size_t woken;
};

static intptr_t wait_event(void *arg)
{
    struct shared *s = arg;
    int rc = eddy_event_wait(&s->ev, EDDY_DEADLINE_NEVER);
    if (rc == 0)
        s->woken++;
    return rc;
}

static void set_cb(void *arg)
{
    eddy_event_set(arg);
}

static intptr_t wake_all(void *arg)
{
    struct shared *s = arg;
    eddy_event_init(&s->ev);
    size_t n = rt_scale(10000, 1000);
    struct eddy_task **t = calloc(n, sizeof(*t));
    for (size_t i = 0; i < n; i++)
        t[i] = st_spawn(wait_event, s);
    st_settle();
    cr_expect_eq(s->woken, 0);
    eddy_event_set(&s->ev);
    cr_expect(eddy_event_is_set(&s->ev));
    eddy_event_clear(&s->ev); /* woken waiters still return 0 */
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(st_join(t[i]), 0);
    free(t);
    cr_expect_eq(s->woken, n);

    /* A set event: wait returns at once, even for a cancelled task. */
    eddy_event_set(&s->ev);
    cr_expect_eq(eddy_event_wait(&s->ev, EDDY_DEADLINE_NEVER), 0);
    eddy_event_clear(&s->ev);
    cr_expect_not(eddy_event_is_set(&s->ev));

    /* Set from a loop callback. */
    struct eddy_task *w = st_spawn(wait_event, s);
    cr_assert_eq(eddy_loop_post(eddy_loop_current(), set_cb, &s->ev), 0);
    cr_expect_eq(st_join(w), 0);
    return 0;
}

EDDY_TEST(event, set_wakes_ten_thousand_waiters_even_if_cleared_before_they_run)
{
    static struct shared s;
    cr_assert_eq(rt_run(wake_all, &s), 0);
}

static intptr_t wait_deadline(void *arg)
{
    struct shared *s = arg;
    return eddy_event_wait(&s->ev, st_in_ms(5));
}

static intptr_t cancel_and_timeout(void *arg)
{
    struct shared *s = arg;
    eddy_event_init(&s->ev);
    struct eddy_task *a = st_spawn(wait_event, s);
    struct eddy_task *b = st_spawn(wait_deadline, s);
    struct eddy_task *c = st_spawn(wait_event, s);
    st_settle();
    eddy_task_cancel(a);
    cr_assert_eq(eddy_sleep_ms(20), 0);
    eddy_event_set(&s->ev);
    cr_expect_eq(st_join(a), -ECANCELED);
    cr_expect_eq(st_join(b), -ETIMEDOUT);
    cr_expect_eq(st_join(c), 0);
    cr_expect_eq(eddy_event_wait(&s->ev, EDDY_DEADLINE_NEVER), 0);
    return 0;
}

EDDY_TEST(event, cancellation_and_deadlines_end_a_wait)
{
    static struct shared s;
    cr_assert_eq(rt_run(cancel_and_timeout, &s), 0);
    cr_expect_eq(s.woken, 1);
}

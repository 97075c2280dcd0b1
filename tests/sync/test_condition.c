/*
 * tests/sync/test_condition.c: eddy_cond (sync/condition.c).
 *
 * Covers the lock rules (-EPERM for wait and notify without the lock),
 * notify(1) waking waiters in FIFO order, notify_all with 10,000 waiters,
 * wait_for with a predicate, and the error paths: a cancelled or timed-out
 * waiter returns without the lock, and a waiter notified then cancelled
 * while re-acquiring the lock passes its notification on.
 */
#include "tests/sync/sync_test.h"

struct shared {
    struct eddy_lock lock;
    struct eddy_cond cond;
    struct st_log log;
    int items;
    bool owned_after_error[4];
};

struct waiter {
    struct shared *s;
    int id;
    int64_t deadline;
};

static intptr_t wait_once(void *arg)
{
    struct waiter *w = arg;
    int rc = eddy_lock_acquire(&w->s->lock, EDDY_DEADLINE_NEVER);
    if (rc < 0)
        return rc;
    rc = eddy_cond_wait(&w->s->cond, w->deadline);
    if (rc < 0) {
        if (w->id < 4)
            w->s->owned_after_error[w->id] = eddy_lock_is_owned(&w->s->lock);
        return rc;
    }
    st_log_add(&w->s->log, w->id);
    return eddy_lock_release(&w->s->lock);
}

static intptr_t rules(void *arg)
{
    struct shared *s = arg;
    eddy_lock_init(&s->lock);
    eddy_cond_init(&s->cond, &s->lock);
    cr_expect_eq(eddy_cond_wait(&s->cond, EDDY_DEADLINE_NEVER), -EPERM);
    cr_expect_eq(eddy_cond_notify(&s->cond, 1), -EPERM);
    cr_expect_eq(eddy_cond_notify_all(&s->cond), -EPERM);
    cr_assert_eq(eddy_lock_acquire(&s->lock, EDDY_DEADLINE_NEVER), 0);
    cr_expect_eq(eddy_cond_notify(&s->cond, 1), 0, "nobody waits");
    cr_expect_eq(eddy_cond_wait(&s->cond, st_in_ms(5)), -ETIMEDOUT);
    cr_expect_not(eddy_lock_is_owned(&s->lock), "an error returns without the lock");
    cr_expect_not(eddy_lock_is_locked(&s->lock));
    return 0;
}

EDDY_TEST(condition, wait_and_notify_need_the_lock)
{
    static struct shared s;
    cr_assert_eq(rt_run(rules, &s), 0);
}

struct many {
    struct shared s;
    struct waiter w[10000];
    size_t n;
    bool one_by_one;
};

static intptr_t notify_in_order(void *arg)
{
    struct many *m = arg;
    eddy_lock_init(&m->s.lock);
    eddy_cond_init(&m->s.cond, &m->s.lock);
    struct eddy_task **t = calloc(m->n, sizeof(*t));
    for (size_t i = 0; i < m->n; i++) {
        m->w[i] = (struct waiter){.s = &m->s, .id = (int)i, .deadline = EDDY_DEADLINE_NEVER};
        t[i] = st_spawn(wait_once, &m->w[i]);
    }
    st_settle();
    cr_assert_eq(eddy_lock_acquire(&m->s.lock, EDDY_DEADLINE_NEVER), 0);
    if (m->one_by_one) {
        for (size_t i = 0; i < m->n; i++)
            cr_assert_eq(eddy_cond_notify(&m->s.cond, 1), 1);
    } else {
        cr_assert_eq(eddy_cond_notify_all(&m->s.cond), (int)m->n);
    }
    cr_assert_eq(eddy_lock_release(&m->s.lock), 0);
    for (size_t i = 0; i < m->n; i++)
        cr_expect_eq(st_join(t[i]), 0);
    free(t);
    return 0;
}

EDDY_TEST(condition, notify_one_wakes_waiters_in_fifo_order)
{
    static struct many m;
    memset(&m, 0, sizeof(m));
    m.n = 50;
    m.one_by_one = true;
    cr_assert_eq(rt_run(notify_in_order, &m), 0);
    st_log_expect_sequence(&m.s.log, m.n);
}

EDDY_TEST(condition, notify_all_wakes_ten_thousand_waiters_in_order)
{
    static struct many m;
    memset(&m, 0, sizeof(m));
    m.n = rt_scale(10000, 1000);
    cr_assert_eq(rt_run(notify_in_order, &m), 0);
    st_log_expect_sequence(&m.s.log, m.n);
}

static bool has_items(void *arg)
{
    return ((struct shared *)arg)->items > 0;
}

static intptr_t consume(void *arg)
{
    struct shared *s = arg;
    int got = 0;
    while (got < 10) {
        int rc = eddy_lock_acquire(&s->lock, EDDY_DEADLINE_NEVER);
        if (rc < 0)
            return rc;
        rc = eddy_cond_wait_for(&s->cond, has_items, s, EDDY_DEADLINE_NEVER);
        if (rc < 0)
            return rc;
        s->items--;
        got++;
        eddy_lock_release(&s->lock);
    }
    return got;
}

static intptr_t produce_consume(void *arg)
{
    struct shared *s = arg;
    eddy_lock_init(&s->lock);
    eddy_cond_init(&s->cond, &s->lock);
    struct eddy_task *c = st_spawn(consume, s);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(eddy_lock_acquire(&s->lock, EDDY_DEADLINE_NEVER), 0);
        s->items++;
        cr_assert_geq(eddy_cond_notify(&s->cond, 1), 0);
        eddy_lock_release(&s->lock);
        if (i % 3 == 0)
            eddy_task_yield();
    }
    cr_expect_eq(st_join(c), 10);
    cr_expect_eq(s->items, 0);
    return 0;
}

EDDY_TEST(condition, wait_for_waits_until_the_predicate_holds)
{
    static struct shared s;
    cr_assert_eq(rt_run(produce_consume, &s), 0);
}

struct cancel_case {
    struct shared s;
    struct waiter a, b, c;
};

static intptr_t cancellation(void *arg)
{
    struct cancel_case *k = arg;
    struct shared *s = &k->s;
    eddy_lock_init(&s->lock);
    eddy_cond_init(&s->cond, &s->lock);
    k->a = (struct waiter){.s = s, .id = 0, .deadline = EDDY_DEADLINE_NEVER};
    k->b = (struct waiter){.s = s, .id = 1, .deadline = EDDY_DEADLINE_NEVER};
    k->c = (struct waiter){.s = s, .id = 2, .deadline = EDDY_DEADLINE_NEVER};
    struct eddy_task *ta = st_spawn(wait_once, &k->a);
    struct eddy_task *tb = st_spawn(wait_once, &k->b);
    struct eddy_task *tc = st_spawn(wait_once, &k->c);
    st_settle();

    /* A is notified while this task holds the lock, then cancelled before
     * it runs: it cannot get the lock back, returns -ECANCELED without it,
     * and passes the notification to B. */
    cr_assert_eq(eddy_lock_acquire(&s->lock, EDDY_DEADLINE_NEVER), 0);
    cr_assert_eq(eddy_cond_notify(&s->cond, 1), 1);
    cr_assert_eq(eddy_task_cancel(ta), 0);
    st_settle();
    cr_assert_eq(eddy_lock_release(&s->lock), 0);
    cr_expect_eq(st_join(ta), -ECANCELED);
    cr_expect_eq(st_join(tb), 0, "B got A's notification");
    cr_expect_not(s->owned_after_error[0]);

    /* C is cancelled while it waits: no lock, nothing else happens. */
    cr_assert_eq(eddy_task_cancel(tc), 0);
    cr_expect_eq(st_join(tc), -ECANCELED);
    cr_expect_not(s->owned_after_error[2]);
    cr_expect_not(eddy_lock_is_locked(&s->lock));
    return 0;
}

EDDY_TEST(condition, a_notified_waiter_cancelled_before_relocking_passes_the_notify_on)
{
    static struct cancel_case k;
    memset(&k, 0, sizeof(k));
    cr_assert_eq(rt_run(cancellation, &k), 0);
    cr_expect_eq(k.s.log.n, 1);
    cr_expect_eq(k.s.log.v[0], 1);
}

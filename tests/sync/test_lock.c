/*
 * tests/sync/test_lock.c: eddy_lock (sync/lock.c).
 *
 * Covers the owner rules (-EPERM for a release by a non-owner, of a free
 * lock, outside a task; -EDEADLK on re-acquire; -EBUSY from try_acquire),
 * FIFO hand-off with many waiters and no barging, a waiter cancelled before
 * the hand-off (skipped) and after it (keeps the lock), deadlines and
 * timeout scopes, and 10,000 waiters.
 */
#include "tests/sync/sync_test.h"

struct shared {
    struct eddy_lock lock;
    struct st_log log;
    int id_rc[16];
    int rc_other;
};

struct waiter {
    struct shared *s;
    int id;
    int rc;
    int64_t deadline;
};

static intptr_t lock_and_log(void *arg)
{
    struct waiter *w = arg;
    w->rc = eddy_lock_acquire(&w->s->lock, w->deadline);
    if (w->rc < 0)
        return w->rc;
    st_log_add(&w->s->log, w->id);
    eddy_task_yield(); /* hold it across a suspension */
    return eddy_lock_release(&w->s->lock);
}

static intptr_t release_other(void *arg)
{
    struct shared *s = arg;
    s->rc_other = eddy_lock_release(&s->lock);
    return 0;
}

static intptr_t owner_rules(void *arg)
{
    struct shared *s = arg;
    eddy_lock_init(&s->lock);
    cr_expect_eq(eddy_lock_release(&s->lock), -EPERM, "release of a free lock");
    cr_expect_not(eddy_lock_is_locked(&s->lock));
    cr_expect_eq(eddy_lock_acquire(&s->lock, EDDY_DEADLINE_NEVER), 0);
    cr_expect(eddy_lock_is_locked(&s->lock));
    cr_expect(eddy_lock_is_owned(&s->lock));
    cr_expect_eq(eddy_lock_acquire(&s->lock, EDDY_DEADLINE_NEVER), -EDEADLK);
    cr_expect_eq(eddy_lock_try_acquire(&s->lock), -EBUSY);
    st_join(st_spawn(release_other, s));
    cr_expect_eq(s->rc_other, -EPERM, "release by a task that does not own it");
    cr_expect(eddy_lock_is_owned(&s->lock));
    cr_expect_eq(eddy_lock_release(&s->lock), 0);
    cr_expect_eq(eddy_lock_release(&s->lock), -EPERM, "second release");
    cr_expect_eq(eddy_lock_try_acquire(&s->lock), 0);
    cr_expect_eq(eddy_lock_release(&s->lock), 0);
    return 0;
}

EDDY_TEST(lock, release_by_a_non_owner_or_of_a_free_lock_is_eperm)
{
    static struct shared s;
    cr_assert_eq(rt_run(owner_rules, &s), 0);
    struct eddy_lock l;
    eddy_lock_init(&l);
    cr_expect_eq(eddy_lock_release(&l), -EPERM, "outside a task");
    cr_expect_eq(eddy_lock_acquire(&l, EDDY_DEADLINE_NEVER), -EINVAL, "outside a task");
}

struct many {
    struct shared s;
    struct waiter w[10000];
    size_t n;
    int barge_rc;
};

static intptr_t many_in_fifo_order(void *arg)
{
    struct many *m = arg;
    eddy_lock_init(&m->s.lock);
    cr_assert_eq(eddy_lock_acquire(&m->s.lock, EDDY_DEADLINE_NEVER), 0);
    struct eddy_task **t = calloc(m->n, sizeof(*t));
    for (size_t i = 0; i < m->n; i++) {
        m->w[i] = (struct waiter){.s = &m->s, .id = (int)i, .deadline = EDDY_DEADLINE_NEVER};
        t[i] = st_spawn(lock_and_log, &m->w[i]);
    }
    st_settle();
    cr_assert_eq(eddy_lock_release(&m->s.lock), 0);
    /* Handed to waiter 0, which has not run yet: nobody can barge in. */
    cr_expect(eddy_lock_is_locked(&m->s.lock));
    m->barge_rc = eddy_lock_try_acquire(&m->s.lock);
    for (size_t i = 0; i < m->n; i++)
        cr_expect_eq(st_join(t[i]), 0);
    free(t);
    cr_expect_not(eddy_lock_is_locked(&m->s.lock));
    return 0;
}

static void check_many(size_t n)
{
    static struct many m;
    memset(&m, 0, sizeof(m));
    m.n = n;
    cr_assert_eq(rt_run(many_in_fifo_order, &m), 0);
    cr_expect_eq(m.barge_rc, -EBUSY);
    st_log_expect_sequence(&m.s.log, n);
}

EDDY_TEST(lock, waiters_get_the_lock_in_fifo_order_and_nobody_barges)
{
    check_many(100);
}

EDDY_TEST(lock, ten_thousand_waiters_are_served_in_order)
{
    check_many(rt_scale(10000, 1000));
}

struct cancel_case {
    struct shared s;
    struct waiter a, b, c;
    bool b_owned_after;
    int b_next_rc;
};

static intptr_t cancelled_before_handoff(void *arg)
{
    struct cancel_case *k = arg;
    eddy_lock_init(&k->s.lock);
    cr_assert_eq(eddy_lock_acquire(&k->s.lock, EDDY_DEADLINE_NEVER), 0);
    k->b = (struct waiter){.s = &k->s, .id = 1, .deadline = EDDY_DEADLINE_NEVER};
    k->c = (struct waiter){.s = &k->s, .id = 2, .deadline = EDDY_DEADLINE_NEVER};
    struct eddy_task *tb = st_spawn(lock_and_log, &k->b);
    struct eddy_task *tc = st_spawn(lock_and_log, &k->c);
    st_settle();
    /* B is cancelled (runnable, still queued), then the lock is released:
     * the hand-off skips B and goes to C. */
    cr_assert_eq(eddy_task_cancel(tb), 0);
    cr_assert_eq(eddy_lock_release(&k->s.lock), 0);
    cr_expect_eq(st_join(tb), -ECANCELED);
    cr_expect_eq(st_join(tc), 0);
    cr_expect_eq(k->b.rc, -ECANCELED);
    cr_expect_eq(k->c.rc, 0);
    cr_expect_not(eddy_lock_is_locked(&k->s.lock));
    return 0;
}

EDDY_TEST(lock, a_waiter_cancelled_before_the_handoff_is_skipped)
{
    static struct cancel_case k;
    memset(&k, 0, sizeof(k));
    cr_assert_eq(rt_run(cancelled_before_handoff, &k), 0);
    cr_expect_eq(k.s.log.n, 1);
    cr_expect_eq(k.s.log.v[0], 2);
}

static intptr_t keep_then_check(void *arg)
{
    struct cancel_case *k = arg;
    k->b.rc = eddy_lock_acquire(&k->s.lock, EDDY_DEADLINE_NEVER);
    k->b_owned_after = eddy_lock_is_owned(&k->s.lock);
    k->b_next_rc = eddy_task_yield();
    return eddy_lock_release(&k->s.lock);
}

static intptr_t cancelled_after_handoff(void *arg)
{
    struct cancel_case *k = arg;
    eddy_lock_init(&k->s.lock);
    cr_assert_eq(eddy_lock_acquire(&k->s.lock, EDDY_DEADLINE_NEVER), 0);
    struct eddy_task *tb = st_spawn(keep_then_check, k);
    st_settle();
    cr_assert_eq(eddy_lock_release(&k->s.lock), 0);
    cr_assert_eq(eddy_task_cancel(tb), 0);
    cr_expect_eq(st_join(tb), 0, "B still released the lock it was handed");
    cr_expect_eq(k->b.rc, 0);
    cr_expect(k->b_owned_after);
    cr_expect_eq(k->b_next_rc, -ECANCELED, "the cancellation stays pending");
    cr_expect_not(eddy_lock_is_locked(&k->s.lock));
    return 0;
}

EDDY_TEST(lock, a_waiter_cancelled_after_the_handoff_owns_the_lock)
{
    static struct cancel_case k;
    memset(&k, 0, sizeof(k));
    cr_assert_eq(rt_run(cancelled_after_handoff, &k), 0);
}

static intptr_t in_scope(void *arg)
{
    struct waiter *w = arg;
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, 10 * EDDY_NS_PER_MS);
    w->rc = eddy_lock_acquire(&w->s->lock, EDDY_DEADLINE_NEVER);
    eddy_timeout_exit(&scope);
    return 0;
}

static intptr_t timeouts(void *arg)
{
    struct cancel_case *k = arg;
    eddy_lock_init(&k->s.lock);
    cr_assert_eq(eddy_lock_acquire(&k->s.lock, EDDY_DEADLINE_NEVER), 0);
    k->a = (struct waiter){.s = &k->s, .id = 0, .deadline = st_in_ms(10)};
    k->b = (struct waiter){.s = &k->s, .id = 1};
    k->c = (struct waiter){.s = &k->s, .id = 2, .deadline = EDDY_DEADLINE_NEVER};
    struct eddy_task *ta = st_spawn(lock_and_log, &k->a);
    struct eddy_task *tb = st_spawn(in_scope, &k->b);
    struct eddy_task *tc = st_spawn(lock_and_log, &k->c);
    cr_assert_eq(eddy_sleep_ms(30), 0);
    cr_assert_eq(eddy_lock_release(&k->s.lock), 0);
    st_join(ta);
    st_join(tb);
    st_join(tc);
    cr_expect_eq(k->a.rc, -ETIMEDOUT, "deadline");
    cr_expect_eq(k->b.rc, -ETIMEDOUT, "scope");
    cr_expect_eq(k->c.rc, 0);
    cr_expect_not(eddy_lock_is_locked(&k->s.lock));
    return 0;
}

EDDY_TEST(lock, a_deadline_or_a_scope_ends_the_wait_and_the_next_waiter_gets_it)
{
    static struct cancel_case k;
    memset(&k, 0, sizeof(k));
    cr_assert_eq(rt_run(timeouts, &k), 0);
    cr_expect_eq(k.s.log.n, 1);
    cr_expect_eq(k.s.log.v[0], 2);
}

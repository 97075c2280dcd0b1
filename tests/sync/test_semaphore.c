/*
 * tests/sync/test_semaphore.c: eddy_sem (sync/semaphore.c).
 *
 * Covers counting, try_acquire (-EAGAIN), the bound of a bounded semaphore
 * (-EOVERFLOW, value unchanged), FIFO hand-off to many waiters with no
 * overtaking by a newcomer, cancellation before and after a hand-off,
 * deadlines, release from a loop callback, 10,000 waiters, and at most N
 * holders at any time.
 */
#include "tests/sync/sync_test.h"

struct shared {
    struct eddy_sem sem;
    struct st_log log;
    int holders, max_holders;
};

struct waiter {
    struct shared *s;
    int id;
    int rc;
    int64_t deadline;
};

static intptr_t take_and_log(void *arg)
{
    struct waiter *w = arg;
    w->rc = eddy_sem_acquire(&w->s->sem, w->deadline);
    if (w->rc < 0)
        return w->rc;
    st_log_add(&w->s->log, w->id);
    return 0; /* keeps the unit: the test releases */
}

EDDY_TEST(semaphore, counts_and_bounded_release_is_eoverflow)
{
    struct eddy_sem s;
    cr_expect_eq(eddy_sem_init(&s, -1), -EINVAL);
    cr_assert_eq(eddy_sem_init(&s, 2), 0);
    cr_expect_eq(eddy_sem_try_acquire(&s), 0);
    cr_expect_eq(eddy_sem_acquire(&s, EDDY_DEADLINE_NEVER), 0, "no wait: fine outside a task");
    cr_expect_eq(eddy_sem_try_acquire(&s), -EAGAIN);
    cr_expect_eq(eddy_sem_acquire(&s, EDDY_DEADLINE_NEVER), -EINVAL, "must wait outside a task");
    cr_expect_eq(eddy_sem_release(&s), 0);
    cr_expect_eq(eddy_sem_release(&s), 0);
    cr_expect_eq(eddy_sem_release(&s), 0, "unbounded: above the initial value is fine");
    cr_expect_eq(eddy_sem_value(&s), 3);

    cr_assert_eq(eddy_sem_init_bounded(&s, 1), 0);
    cr_expect_eq(eddy_sem_release(&s), -EOVERFLOW);
    cr_expect_eq(eddy_sem_value(&s), 1);
    cr_expect_eq(eddy_sem_try_acquire(&s), 0);
    cr_expect_eq(eddy_sem_release(&s), 0);
    cr_expect_eq(eddy_sem_release(&s), -EOVERFLOW);
    cr_expect_str_eq(eddy_strerror(-EOVERFLOW),
                     "EOVERFLOW: value too large (a bounded semaphore released above its "
                     "initial value)");
}

struct many {
    struct shared s;
    struct waiter w[10000];
    size_t n;
    int newcomer_rc;
};

static void release_cb(void *arg)
{
    struct many *m = arg;
    cr_assert_eq(eddy_sem_release(&m->s.sem), 0);
}

static intptr_t many_in_order(void *arg)
{
    struct many *m = arg;
    cr_assert_eq(eddy_sem_init(&m->s.sem, 0), 0);
    struct eddy_task **t = calloc(m->n, sizeof(*t));
    for (size_t i = 0; i < m->n; i++) {
        m->w[i] = (struct waiter){.s = &m->s, .id = (int)i, .deadline = EDDY_DEADLINE_NEVER};
        t[i] = st_spawn(take_and_log, &m->w[i]);
    }
    st_settle();
    /* Half the units from this task, half from loop callbacks. */
    for (size_t i = 0; i < m->n; i++) {
        if (i % 2)
            cr_assert_eq(eddy_loop_post(eddy_loop_current(), release_cb, m), 0);
        else
            cr_assert_eq(eddy_sem_release(&m->s.sem), 0);
        if (i == 0)
            m->newcomer_rc = eddy_sem_try_acquire(&m->s.sem);
    }
    for (size_t i = 0; i < m->n; i++)
        cr_expect_eq(st_join(t[i]), 0);
    free(t);
    cr_expect_eq(eddy_sem_value(&m->s.sem), 0);
    return 0;
}

static void check_many(size_t n)
{
    static struct many m;
    memset(&m, 0, sizeof(m));
    m.n = n;
    cr_assert_eq(rt_run(many_in_order, &m), 0);
    cr_expect_eq(m.newcomer_rc, -EAGAIN, "the unit went to the first waiter");
    st_log_expect_sequence(&m.s.log, n);
}

EDDY_TEST(semaphore, waiters_are_served_in_fifo_order)
{
    check_many(64);
}

EDDY_TEST(semaphore, ten_thousand_waiters_are_served_in_order)
{
    check_many(rt_scale(10000, 1000));
}

struct limited {
    struct shared s;
    struct waiter w[50];
};

static intptr_t hold_a_while(void *arg)
{
    struct waiter *w = arg;
    int rc = eddy_sem_acquire(&w->s->sem, EDDY_DEADLINE_NEVER);
    if (rc < 0)
        return rc;
    if (++w->s->holders > w->s->max_holders)
        w->s->max_holders = w->s->holders;
    eddy_task_yield();
    eddy_task_yield();
    w->s->holders--;
    return eddy_sem_release(&w->s->sem);
}

static intptr_t at_most_three(void *arg)
{
    struct limited *l = arg;
    cr_assert_eq(eddy_sem_init_bounded(&l->s.sem, 3), 0);
    struct eddy_task *t[50];
    for (int i = 0; i < 50; i++) {
        l->w[i] = (struct waiter){.s = &l->s, .id = i};
        t[i] = st_spawn(hold_a_while, &l->w[i]);
    }
    for (int i = 0; i < 50; i++)
        cr_expect_eq(st_join(t[i]), 0);
    cr_expect_eq(l->s.max_holders, 3);
    cr_expect_eq(eddy_sem_value(&l->s.sem), 3);
    return 0;
}

EDDY_TEST(semaphore, at_most_value_tasks_hold_it_at_once)
{
    static struct limited l;
    cr_assert_eq(rt_run(at_most_three, &l), 0);
}

struct cancel_case {
    struct shared s;
    struct waiter a, b, c;
};

static intptr_t cancellation(void *arg)
{
    struct cancel_case *k = arg;
    cr_assert_eq(eddy_sem_init(&k->s.sem, 0), 0);
    k->a = (struct waiter){.s = &k->s, .id = 0, .deadline = EDDY_DEADLINE_NEVER};
    k->b = (struct waiter){.s = &k->s, .id = 1, .deadline = st_in_ms(5)};
    k->c = (struct waiter){.s = &k->s, .id = 2, .deadline = EDDY_DEADLINE_NEVER};
    struct eddy_task *ta = st_spawn(take_and_log, &k->a);
    struct eddy_task *tb = st_spawn(take_and_log, &k->b);
    struct eddy_task *tc = st_spawn(take_and_log, &k->c);
    st_settle();
    /* A is cancelled before the release: the unit goes to the next parked
     * waiter. B times out meanwhile. C gets the unit, then is cancelled
     * before it runs, and keeps it. */
    cr_assert_eq(eddy_task_cancel(ta), 0);
    cr_assert_eq(eddy_sleep_ms(20), 0);
    cr_assert_eq(eddy_sem_release(&k->s.sem), 0);
    cr_assert_eq(eddy_task_cancel(tc), 0);
    cr_expect_eq(st_join(ta), -ECANCELED);
    cr_expect_eq(st_join(tb), -ETIMEDOUT);
    cr_expect_eq(st_join(tc), 0);
    cr_expect_eq(k->c.rc, 0);
    cr_expect_eq(eddy_sem_value(&k->s.sem), 0, "the unit was not duplicated or lost");
    return 0;
}

EDDY_TEST(semaphore, cancelled_and_timed_out_waiters_lose_nothing)
{
    static struct cancel_case k;
    memset(&k, 0, sizeof(k));
    cr_assert_eq(rt_run(cancellation, &k), 0);
    cr_expect_eq(k.s.log.n, 1);
    cr_expect_eq(k.s.log.v[0], 2);
}

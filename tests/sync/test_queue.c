/*
 * tests/sync/test_queue.c: eddy_queue (sync/queue.c).
 *
 * Covers FIFO, LIFO and priority order (equal keys in put order), growth of
 * unbounded queues, bounded queues (-EAGAIN from try_put, put waiting for a
 * slot), getters and putters served in FIFO order with 10,000 waiters, no
 * overtaking of a woken waiter, cancellation before and after a hand-off,
 * deadlines, close (waiters wake with -EPIPE, gets drain first, later puts
 * fail), fini with waiters, and task_done/join.
 */
#include "tests/sync/sync_test.h"

#define ITEM(i) ((void *)(intptr_t)(i))

static intptr_t orders(void *arg)
{
    (void)arg;
    struct eddy_queue q;
    void *it;
    cr_expect_eq(eddy_queue_init(&q, (enum eddy_queue_kind)7, 0), -EINVAL);

    cr_assert_eq(eddy_queue_init(&q, EDDY_QUEUE_FIFO, 0), 0);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(eddy_queue_try_put(&q, ITEM(i)), 0);
    cr_expect_eq(eddy_queue_len(&q), 1000);
    for (int i = 0; i < 500; i++) {
        cr_assert_eq(eddy_queue_get(&q, &it, EDDY_DEADLINE_NEVER), 0);
        cr_assert_eq(it, ITEM(i));
    }
    for (int i = 1000; i < 1600; i++) /* wraps, then grows while wrapped */
        cr_assert_eq(eddy_queue_put(&q, ITEM(i), EDDY_DEADLINE_NEVER), 0);
    for (int i = 500; i < 1600; i++) {
        cr_assert_eq(eddy_queue_try_get(&q, &it), 0);
        cr_assert_eq(it, ITEM(i));
    }
    cr_expect_eq(eddy_queue_try_get(&q, &it), -EAGAIN);
    eddy_queue_fini(&q);

    cr_assert_eq(eddy_queue_init(&q, EDDY_QUEUE_LIFO, 0), 0);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(eddy_queue_try_put(&q, ITEM(i)), 0);
    for (int i = 99; i >= 0; i--) {
        cr_assert_eq(eddy_queue_try_get(&q, &it), 0);
        cr_assert_eq(it, ITEM(i));
    }
    eddy_queue_fini(&q);

    cr_assert_eq(eddy_queue_init(&q, EDDY_QUEUE_PRIORITY, 0), 0);
    uint64_t seed = 42;
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(eddy_queue_try_put_key(&q, ITEM(i), (int64_t)(rt_rand(&seed) % 50)), 0);
    /* Keys ascending; equal keys in put order (items are put indices). */
    int64_t last_key = -1;
    intptr_t last_item = -1;
    seed = 42;
    int64_t keys[1000];
    for (int i = 0; i < 1000; i++)
        keys[i] = (int64_t)(rt_rand(&seed) % 50);
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(eddy_queue_try_get(&q, &it), 0);
        intptr_t x = (intptr_t)it;
        cr_assert_geq(keys[x], last_key);
        if (keys[x] == last_key)
            cr_assert_gt(x, last_item, "equal keys leave in put order");
        last_key = keys[x];
        last_item = x;
    }
    cr_expect_eq(eddy_queue_try_get(&q, &it), -EAGAIN);
    eddy_queue_fini(&q);
    return 0;
}

EDDY_TEST(queue, fifo_lifo_and_priority_orders)
{
    cr_assert_eq(rt_run(orders, NULL), 0);
}

struct shared {
    struct eddy_queue q;
    struct st_log log;
};

struct waiter {
    struct shared *s;
    int id;
    int rc;
    int64_t deadline;
    void *item;
};

static intptr_t get_one(void *arg)
{
    struct waiter *w = arg;
    w->rc = eddy_queue_get(&w->s->q, &w->item, w->deadline);
    if (w->rc == 0)
        st_log_add(&w->s->log, w->id);
    return w->rc;
}

static intptr_t put_one(void *arg)
{
    struct waiter *w = arg;
    w->rc = eddy_queue_put(&w->s->q, ITEM(w->id), w->deadline);
    if (w->rc == 0)
        st_log_add(&w->s->log, w->id);
    return w->rc;
}

struct many {
    struct shared s;
    struct waiter w[10000];
    size_t n;
    int overtake_rc;
};

static intptr_t many_getters(void *arg)
{
    struct many *m = arg;
    cr_assert_eq(eddy_queue_init(&m->s.q, EDDY_QUEUE_FIFO, 0), 0);
    struct eddy_task **t = calloc(m->n, sizeof(*t));
    for (size_t i = 0; i < m->n; i++) {
        m->w[i] = (struct waiter){.s = &m->s, .id = (int)i, .deadline = EDDY_DEADLINE_NEVER};
        t[i] = st_spawn(get_one, &m->w[i]);
    }
    st_settle();
    for (size_t i = 0; i < m->n; i++) {
        cr_assert_eq(eddy_queue_put(&m->s.q, ITEM(i), EDDY_DEADLINE_NEVER), 0);
        if (i == 0) {
            void *it;
            m->overtake_rc = eddy_queue_try_get(&m->s.q, &it);
        }
    }
    for (size_t i = 0; i < m->n; i++) {
        cr_expect_eq(st_join(t[i]), 0);
        cr_expect_eq(m->w[i].item, ITEM(i), "getter %zu", i);
    }
    free(t);
    cr_expect_eq(eddy_queue_len(&m->s.q), 0);
    eddy_queue_fini(&m->s.q);
    return 0;
}

EDDY_TEST(queue, ten_thousand_getters_get_items_in_fifo_order_and_none_is_overtaken)
{
    static struct many m;
    memset(&m, 0, sizeof(m));
    m.n = rt_scale(10000, 1000);
    cr_assert_eq(rt_run(many_getters, &m), 0);
    cr_expect_eq(m.overtake_rc, -EAGAIN, "the item was reserved for getter 0");
    st_log_expect_sequence(&m.s.log, m.n);
}

static intptr_t many_putters(void *arg)
{
    struct many *m = arg;
    cr_assert_eq(eddy_queue_init(&m->s.q, EDDY_QUEUE_FIFO, 1), 0);
    cr_assert_eq(eddy_queue_try_put(&m->s.q, ITEM(-1)), 0);
    cr_expect_eq(eddy_queue_try_put(&m->s.q, ITEM(-2)), -EAGAIN, "full");
    struct eddy_task **t = calloc(m->n, sizeof(*t));
    for (size_t i = 0; i < m->n; i++) {
        m->w[i] = (struct waiter){.s = &m->s, .id = (int)i, .deadline = EDDY_DEADLINE_NEVER};
        t[i] = st_spawn(put_one, &m->w[i]);
    }
    st_settle();
    void *it;
    cr_assert_eq(eddy_queue_get(&m->s.q, &it, EDDY_DEADLINE_NEVER), 0);
    cr_expect_eq(it, ITEM(-1));
    /* The freed slot is reserved for putter 0. */
    m->overtake_rc = eddy_queue_try_put(&m->s.q, ITEM(-3));
    for (size_t i = 0; i < m->n; i++) {
        cr_assert_eq(eddy_queue_get(&m->s.q, &it, EDDY_DEADLINE_NEVER), 0);
        cr_assert_eq(it, ITEM(i));
    }
    for (size_t i = 0; i < m->n; i++)
        cr_expect_eq(st_join(t[i]), 0);
    free(t);
    eddy_queue_fini(&m->s.q);
    return 0;
}

EDDY_TEST(queue, ten_thousand_putters_on_a_full_queue_go_in_fifo_order)
{
    static struct many m;
    memset(&m, 0, sizeof(m));
    m.n = rt_scale(10000, 1000);
    cr_assert_eq(rt_run(many_putters, &m), 0);
    cr_expect_eq(m.overtake_rc, -EAGAIN);
    st_log_expect_sequence(&m.s.log, m.n);
}

struct cancel_case {
    struct shared s;
    struct waiter w[4];
};

static intptr_t cancellation(void *arg)
{
    struct cancel_case *k = arg;
    struct shared *s = &k->s;
    cr_assert_eq(eddy_queue_init(&s->q, EDDY_QUEUE_FIFO, 0), 0);
    for (int i = 0; i < 4; i++)
        k->w[i] = (struct waiter){.s = s, .id = i, .deadline = EDDY_DEADLINE_NEVER};
    k->w[1].deadline = st_in_ms(5);
    struct eddy_task *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = st_spawn(get_one, &k->w[i]);
    st_settle();
    /* 0 is cancelled before any put, 1 times out: both are skipped. 2 is
     * handed item 7, then cancelled before it runs, and keeps it. 3 gets 8. */
    eddy_task_cancel(t[0]);
    cr_assert_eq(eddy_sleep_ms(20), 0);
    cr_assert_eq(eddy_queue_put(&s->q, ITEM(7), EDDY_DEADLINE_NEVER), 0);
    eddy_task_cancel(t[2]);
    cr_assert_eq(eddy_queue_put(&s->q, ITEM(8), EDDY_DEADLINE_NEVER), 0);
    cr_expect_eq(st_join(t[0]), -ECANCELED);
    cr_expect_eq(st_join(t[1]), -ETIMEDOUT);
    cr_expect_eq(st_join(t[2]), 0);
    cr_expect_eq(st_join(t[3]), 0);
    cr_expect_eq(k->w[2].item, ITEM(7));
    cr_expect_eq(k->w[3].item, ITEM(8));
    cr_expect_eq(eddy_queue_len(&s->q), 0);

    /* The same for putters of a full bounded queue. */
    eddy_queue_fini(&s->q);
    cr_assert_eq(eddy_queue_init(&s->q, EDDY_QUEUE_FIFO, 1), 0);
    cr_assert_eq(eddy_queue_try_put(&s->q, ITEM(100)), 0);
    for (int i = 0; i < 4; i++)
        t[i] = st_spawn(put_one, &k->w[i]);
    k->w[1].deadline = st_in_ms(5);
    st_settle();
    eddy_task_cancel(t[0]);
    cr_assert_eq(eddy_sleep_ms(20), 0);
    void *it;
    cr_assert_eq(eddy_queue_get(&s->q, &it, EDDY_DEADLINE_NEVER), 0);
    cr_expect_eq(it, ITEM(100));
    eddy_task_cancel(t[2]); /* handed the slot already */
    cr_assert_eq(eddy_queue_get(&s->q, &it, EDDY_DEADLINE_NEVER), 0);
    cr_expect_eq(it, ITEM(2));
    cr_assert_eq(eddy_queue_get(&s->q, &it, EDDY_DEADLINE_NEVER), 0);
    cr_expect_eq(it, ITEM(3));
    cr_expect_eq(st_join(t[0]), -ECANCELED);
    cr_expect_eq(st_join(t[1]), -ETIMEDOUT);
    cr_expect_eq(st_join(t[2]), 0);
    cr_expect_eq(st_join(t[3]), 0);
    eddy_queue_fini(&s->q);
    return 0;
}

EDDY_TEST(queue, cancelled_and_timed_out_waiters_lose_no_item_and_no_slot)
{
    static struct cancel_case k;
    memset(&k, 0, sizeof(k));
    cr_assert_eq(rt_run(cancellation, &k), 0);
}

static intptr_t closing(void *arg)
{
    struct cancel_case *k = arg;
    struct shared *s = &k->s;
    cr_assert_eq(eddy_queue_init(&s->q, EDDY_QUEUE_FIFO, 2), 0);
    for (int i = 0; i < 4; i++)
        k->w[i] = (struct waiter){.s = s, .id = i, .deadline = EDDY_DEADLINE_NEVER};
    struct eddy_task *g[2], *p[2];
    g[0] = st_spawn(get_one, &k->w[0]);
    g[1] = st_spawn(get_one, &k->w[1]);
    st_settle();
    eddy_queue_close(&s->q);
    cr_expect(eddy_queue_is_closed(&s->q));
    cr_expect_eq(st_join(g[0]), -EPIPE);
    cr_expect_eq(st_join(g[1]), -EPIPE);
    cr_expect_eq(eddy_queue_put(&s->q, ITEM(1), EDDY_DEADLINE_NEVER), -EPIPE);
    cr_expect_eq(eddy_queue_try_put(&s->q, ITEM(1)), -EPIPE);
    void *it;
    cr_expect_eq(eddy_queue_get(&s->q, &it, EDDY_DEADLINE_NEVER), -EPIPE);
    eddy_queue_fini(&s->q);

    /* Items left at close are drained first; waiting putters get -EPIPE. */
    cr_assert_eq(eddy_queue_init(&s->q, EDDY_QUEUE_FIFO, 2), 0);
    cr_assert_eq(eddy_queue_put(&s->q, ITEM(10), EDDY_DEADLINE_NEVER), 0);
    cr_assert_eq(eddy_queue_put(&s->q, ITEM(11), EDDY_DEADLINE_NEVER), 0);
    p[0] = st_spawn(put_one, &k->w[2]);
    p[1] = st_spawn(put_one, &k->w[3]);
    st_settle();
    eddy_queue_close(&s->q);
    eddy_queue_close(&s->q); /* idempotent */
    cr_expect_eq(st_join(p[0]), -EPIPE);
    cr_expect_eq(st_join(p[1]), -EPIPE);
    cr_assert_eq(eddy_queue_get(&s->q, &it, EDDY_DEADLINE_NEVER), 0);
    cr_expect_eq(it, ITEM(10));
    cr_assert_eq(eddy_queue_try_get(&s->q, &it), 0);
    cr_expect_eq(it, ITEM(11));
    cr_expect_eq(eddy_queue_try_get(&s->q, &it), -EPIPE);
    cr_expect_eq(eddy_queue_get(&s->q, &it, EDDY_DEADLINE_NEVER), -EPIPE);
    eddy_queue_fini(&s->q);

    /* fini wakes waiters with -EPIPE before freeing. */
    cr_assert_eq(eddy_queue_init(&s->q, EDDY_QUEUE_PRIORITY, 0), 0);
    g[0] = st_spawn(get_one, &k->w[0]);
    st_settle();
    eddy_queue_fini(&s->q);
    cr_expect_eq(st_join(g[0]), -EPIPE);
    return 0;
}

EDDY_TEST(queue, close_wakes_waiters_with_epipe_and_gets_drain_remaining_items)
{
    static struct cancel_case k;
    memset(&k, 0, sizeof(k));
    cr_assert_eq(rt_run(closing, &k), 0);
}

static intptr_t worker(void *arg)
{
    struct shared *s = arg;
    for (;;) {
        void *it;
        int rc = eddy_queue_get(&s->q, &it, EDDY_DEADLINE_NEVER);
        if (rc < 0)
            return rc == -EPIPE ? 0 : rc;
        eddy_task_yield();
        st_log_add(&s->log, (int)(intptr_t)it);
        cr_assert_eq(eddy_queue_task_done(&s->q), 0);
    }
}

static intptr_t join_all(void *arg)
{
    struct shared *s = arg;
    cr_assert_eq(eddy_queue_init(&s->q, EDDY_QUEUE_FIFO, 4), 0);
    cr_expect_eq(eddy_queue_join(&s->q, EDDY_DEADLINE_NEVER), 0, "nothing pending");
    cr_expect_eq(eddy_queue_task_done(&s->q), -EINVAL, "more done than put");
    struct eddy_task *w[3];
    for (int i = 0; i < 3; i++)
        w[i] = st_spawn(worker, s);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(eddy_queue_put(&s->q, ITEM(i), EDDY_DEADLINE_NEVER), 0);
    cr_expect_eq(eddy_queue_join(&s->q, st_in_ms(0)), -ETIMEDOUT);
    cr_assert_eq(eddy_queue_join(&s->q, EDDY_DEADLINE_NEVER), 0);
    cr_expect_eq(s->log.n, 20, "join returned after every task_done");
    eddy_queue_close(&s->q);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(st_join(w[i]), 0);
    eddy_queue_fini(&s->q);
    return 0;
}

EDDY_TEST(queue, join_waits_until_every_item_is_marked_done)
{
    static struct shared s;
    cr_assert_eq(rt_run(join_all, &s), 0);
}

/*
 * tests/reactor/test_channel.c: the cross-thread channel of reactor/channel.c.
 *
 * Covers FIFO order on the loop thread, -EAGAIN when full or empty, order per
 * sender with four threads sending 10,000 values each, a receiver parked in
 * epoll woken by another thread, plain threads blocking on a full channel
 * (and their deadline), tasks parking on a full channel (of their own loop
 * and of another loop), close semantics (drain, then -EPIPE; parked tasks
 * and blocked threads woken), cancellation and timeout scopes while
 * receiving (no value lost), destroy refusing while tasks are parked, and
 * misuse. Cross-thread tests have "thread" in their names.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "tests/reactor/reactor_test.h"

static struct eddy_channel *make_channel(size_t capacity)
{
    struct eddy_loop *loop = eddy_loop_current();
    cr_assert_not_null(loop);
    struct eddy_channel *ch;
    int rc = eddy_channel_create(loop, capacity, &ch);
    cr_assert_eq(rc, 0, "eddy_channel_create: %s", eddy_strerror(rc));
    return ch;
}

/* ---- on the loop thread ------------------------------------------------------ */

static intptr_t fifo_on_loop(void *arg)
{
    (void)arg;
    struct eddy_channel *ch = make_channel(3);
    intptr_t v;
    cr_expect_eq(eddy_channel_try_recv(ch, &v), -EAGAIN);
    for (intptr_t i = 1; i <= 3; i++)
        cr_expect_eq(eddy_channel_try_send(ch, i * 10), 0);
    cr_expect_eq(eddy_channel_try_send(ch, 40), -EAGAIN);
    cr_expect_eq(eddy_channel_len(ch), 3u);
    for (intptr_t i = 1; i <= 3; i++) {
        cr_expect_eq(eddy_channel_recv(ch, &v), 0);
        cr_expect_eq(v, i * 10);
    }
    /* The ring wraps. */
    for (intptr_t round = 0; round < 10; round++) {
        cr_expect_eq(eddy_channel_send(ch, round), 0);
        cr_expect_eq(eddy_channel_send(ch, round + 100), 0);
        cr_expect_eq(eddy_channel_try_recv(ch, &v), 0);
        cr_expect_eq(v, round);
        cr_expect_eq(eddy_channel_try_recv(ch, &v), 0);
        cr_expect_eq(v, round + 100);
    }
    cr_expect_eq(eddy_channel_destroy(ch), 0);
    return 0;
}

EDDY_TEST(channel, values_come_out_in_order_and_full_or_empty_is_eagain)
{
    rt_run(fifo_on_loop, NULL);
}

EDDY_TEST(channel, create_rejects_bad_arguments)
{
    struct eddy_loop *loop;
    cr_assert_eq(eddy_loop_create(NULL, &loop), 0);
    struct eddy_channel *ch;
    cr_expect_eq(eddy_channel_create(NULL, 4, &ch), -EINVAL);
    cr_expect_eq(eddy_channel_create(loop, 0, &ch), -EINVAL);
    cr_expect_eq(eddy_channel_create(loop, 4, NULL), -EINVAL);
    cr_expect_eq(eddy_channel_try_send(NULL, 1), -EINVAL);
    cr_expect_eq(eddy_channel_close(NULL), -EINVAL);
    /* Created before the loop runs; outside a task recv is misuse. */
    cr_assert_eq(eddy_channel_create(loop, 4, &ch), 0);
    intptr_t v;
    cr_expect_eq(eddy_channel_recv(ch, &v), -EINVAL);
    cr_expect_eq(eddy_channel_send(ch, 1), -EINVAL);
    cr_expect_eq(eddy_channel_send_blocking(ch, 1, EDDY_DEADLINE_NEVER), -EDEADLK);
    cr_expect_eq(eddy_channel_destroy(ch), 0);
    eddy_loop_destroy(loop);
}

/* ---- threads sending to tasks ----------------------------------------------- */

#define SENDERS 4

struct fan_in {
    struct eddy_channel *ch;
    int sender;
    size_t per_sender;
    bool use_try_send;
};

static void *send_sequence(void *arg)
{
    struct fan_in *f = arg;
    for (size_t i = 0; i < f->per_sender; i++) {
        intptr_t v = (intptr_t)((uint64_t)f->sender << 32 | i);
        int rc;
        if (f->use_try_send) {
            while ((rc = eddy_channel_try_send(f->ch, v)) == -EAGAIN)
                sched_yield();
        } else {
            rc = eddy_channel_send_blocking(f->ch, v, EDDY_DEADLINE_NEVER);
        }
        if (rc != 0)
            return (void *)(intptr_t)rc;
    }
    return NULL;
}

struct fan_in_case {
    size_t per_sender;
    size_t received;
    int order_errors;
    int send_errors;
};

static intptr_t receive_from_threads(void *arg)
{
    struct fan_in_case *c = arg;
    struct eddy_channel *ch = make_channel(64);
    struct fan_in f[SENDERS];
    pthread_t threads[SENDERS];
    for (int s = 0; s < SENDERS; s++) {
        f[s] = (struct fan_in){ch, s, c->per_sender, s % 2 == 0};
        cr_assert_eq(pthread_create(&threads[s], NULL, send_sequence, &f[s]), 0);
    }
    size_t next[SENDERS] = {0};
    while (c->received < SENDERS * c->per_sender) {
        intptr_t v;
        int rc = eddy_channel_recv(ch, &v);
        if (rc < 0)
            return rc;
        int s = (int)((uint64_t)v >> 32);
        size_t i = (size_t)((uint64_t)v & 0xffffffffu);
        if (s < 0 || s >= SENDERS || i != next[s])
            c->order_errors++;
        else
            next[s]++;
        c->received++;
    }
    for (int s = 0; s < SENDERS; s++) {
        void *ret;
        pthread_join(threads[s], &ret);
        c->send_errors += ret != NULL;
    }
    return eddy_channel_destroy(ch);
}

EDDY_TEST(channel, four_threads_send_ten_thousand_values_each_in_order_per_thread)
{
    struct fan_in_case c = {.per_sender = rt_scale(10000, 1000)};
    cr_expect_eq(rt_run(receive_from_threads, &c), 0);
    cr_expect_eq(c.received, SENDERS * c.per_sender);
    cr_expect_eq(c.order_errors, 0);
    cr_expect_eq(c.send_errors, 0);
}

struct epoll_wake {
    struct eddy_channel *ch;
    pid_t loop_tid;
    intptr_t got;
    int rc;
};

static void *send_when_loop_sleeps(void *arg)
{
    struct epoll_wake *w = arg;
    if (!rt_wait_in_epoll(w->loop_tid))
        return (void *)1;
    eddy_channel_try_send(w->ch, 4242);
    return NULL;
}

static intptr_t recv_parked_in_epoll(void *arg)
{
    struct epoll_wake *w = arg;
    w->ch = make_channel(1);
    w->loop_tid = rt_gettid();
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, send_when_loop_sleeps, w), 0);
    w->rc = eddy_channel_recv(w->ch, &w->got);
    void *ret;
    pthread_join(t, &ret);
    cr_expect_null(ret, "the loop never blocked in epoll");
    return eddy_channel_destroy(w->ch);
}

EDDY_TEST(channel, send_from_a_thread_wakes_a_loop_blocked_in_epoll)
{
    struct epoll_wake w = {0};
    cr_expect_eq(rt_run(recv_parked_in_epoll, &w), 0);
    cr_expect_eq(w.rc, 0);
    cr_expect_eq(w.got, 4242);
}

/* ---- full channel ----------------------------------------------------------- */

struct blocked_sender {
    struct eddy_channel *ch;
    atomic_int sent;
    int rc;
    int64_t deadline_ns;
};

static void *send_three(void *arg)
{
    struct blocked_sender *b = arg;
    for (int i = 0; i < 3; i++) {
        b->rc = eddy_channel_send_blocking(b->ch, i, b->deadline_ns);
        if (b->rc < 0)
            break;
        atomic_fetch_add(&b->sent, 1);
    }
    return NULL;
}

static intptr_t thread_blocks_until_a_receive(void *arg)
{
    struct blocked_sender *b = arg;
    b->ch = make_channel(2);
    b->deadline_ns = EDDY_DEADLINE_NEVER;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, send_three, b), 0);
    while (atomic_load(&b->sent) < 2)
        eddy_sleep_ms(1);
    /* Full: the third send waits for as long as nobody receives. */
    eddy_sleep_ms(50);
    cr_expect_eq(atomic_load(&b->sent), 2, "a send into a full channel did not block");
    intptr_t v;
    cr_expect_eq(eddy_channel_recv(b->ch, &v), 0);
    cr_expect_eq(v, 0);
    pthread_join(t, NULL);
    cr_expect_eq(atomic_load(&b->sent), 3);
    for (intptr_t i = 1; i < 3; i++) {
        cr_expect_eq(eddy_channel_recv(b->ch, &v), 0);
        cr_expect_eq(v, i);
    }
    return eddy_channel_destroy(b->ch);
}

EDDY_TEST(channel, blocking_send_from_a_thread_waits_while_full)
{
    struct blocked_sender b = {0};
    cr_expect_eq(rt_run(thread_blocks_until_a_receive, &b), 0);
    cr_expect_eq(b.rc, 0);
}

static intptr_t thread_send_deadline(void *arg)
{
    struct blocked_sender *b = arg;
    b->ch = make_channel(2);
    b->deadline_ns = eddy_clock_ns() + 30 * EDDY_NS_PER_MS;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, send_three, b), 0);
    /* Nobody receives: the thread's third send ends at its deadline. */
    pthread_join(t, NULL);
    cr_expect_eq(b->rc, -ETIMEDOUT, "%s", eddy_strerror(b->rc));
    cr_expect_geq(eddy_clock_ns(), b->deadline_ns);
    cr_expect_eq(atomic_load(&b->sent), 2);
    cr_expect_eq(eddy_channel_len(b->ch), 2u);
    return eddy_channel_destroy(b->ch);
}

EDDY_TEST(channel, blocking_send_from_a_thread_times_out_at_its_deadline)
{
    struct blocked_sender b = {0};
    cr_expect_eq(rt_run(thread_send_deadline, &b), 0);
}

struct task_pair {
    struct eddy_channel *ch;
    int sent;
    int rc;
};

static intptr_t send_five(void *arg)
{
    struct task_pair *p = arg;
    for (intptr_t i = 0; i < 5; i++) {
        p->rc = eddy_channel_send(p->ch, i);
        if (p->rc < 0)
            return p->rc;
        p->sent++;
    }
    return 0;
}

static intptr_t task_sender_parks_while_full(void *arg)
{
    struct task_pair *p = arg;
    p->ch = make_channel(2);
    struct eddy_task *sender;
    cr_assert_eq(eddy_task_spawn(send_five, p, NULL, &sender), 0);
    eddy_sleep_ms(10);
    cr_expect_eq(p->sent, 2, "the sender did not park on a full channel");
    for (intptr_t i = 0; i < 5; i++) {
        intptr_t v;
        cr_expect_eq(eddy_channel_recv(p->ch, &v), 0);
        cr_expect_eq(v, i);
    }
    intptr_t r;
    eddy_task_join(sender, &r);
    cr_expect_eq(r, 0);
    cr_expect_eq(p->sent, 5);
    return eddy_channel_destroy(p->ch);
}

EDDY_TEST(channel, task_send_parks_while_full_and_resumes_on_receive)
{
    struct task_pair p = {0};
    cr_expect_eq(rt_run(task_sender_parks_while_full, &p), 0);
}

/* A task of another loop, on another thread, sends into a full channel. */
struct foreign {
    struct eddy_channel *ch;
    size_t n;
    int rc;
};

static intptr_t foreign_sender_task(void *arg)
{
    struct foreign *f = arg;
    for (size_t i = 0; i < f->n; i++) {
        int rc = eddy_channel_send(f->ch, (intptr_t)i);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void *foreign_loop_thread(void *arg)
{
    struct foreign *f = arg;
    intptr_t r = -1;
    int rc = eddy_run(foreign_sender_task, f, NULL, &r);
    f->rc = rc < 0 ? rc : (int)r;
    return NULL;
}

static intptr_t receive_from_another_loop(void *arg)
{
    struct foreign *f = arg;
    f->ch = make_channel(4);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, foreign_loop_thread, f), 0);
    for (size_t i = 0; i < f->n; i++) {
        intptr_t v;
        int rc = eddy_channel_recv(f->ch, &v);
        cr_assert_eq(rc, 0, "%s", eddy_strerror(rc));
        cr_assert_eq(v, (intptr_t)i);
        if (i % 64 == 0)
            eddy_sleep_ms(1); /* let the sender find the channel full */
    }
    pthread_join(t, NULL);
    return eddy_channel_destroy(f->ch);
}

EDDY_TEST(channel, task_of_another_loop_thread_sends_through_a_full_channel)
{
    struct foreign f = {.n = rt_scale(2000, 300)};
    cr_expect_eq(rt_run(receive_from_another_loop, &f), 0);
    cr_expect_eq(f.rc, 0, "%s", eddy_strerror(f.rc));
}

/* ---- close ---------------------------------------------------------------------- */

static intptr_t recv_one(void *arg)
{
    intptr_t v = -1;
    int rc = eddy_channel_recv(arg, &v);
    return rc < 0 ? rc : v;
}

static intptr_t close_drains_then_epipe(void *arg)
{
    (void)arg;
    struct eddy_channel *ch = make_channel(4);
    cr_expect_eq(eddy_channel_try_send(ch, 1), 0);
    cr_expect_eq(eddy_channel_try_send(ch, 2), 0);
    cr_expect_eq(eddy_channel_close(ch), 0);
    cr_expect_eq(eddy_channel_close(ch), -EALREADY);
    cr_expect(eddy_channel_is_closed(ch));
    cr_expect_eq(eddy_channel_try_send(ch, 3), -EPIPE);
    cr_expect_eq(eddy_channel_send(ch, 3), -EPIPE);
    intptr_t v;
    cr_expect_eq(eddy_channel_recv(ch, &v), 0);
    cr_expect_eq(v, 1);
    cr_expect_eq(eddy_channel_try_recv(ch, &v), 0);
    cr_expect_eq(v, 2);
    cr_expect_eq(eddy_channel_recv(ch, &v), -EPIPE);
    cr_expect_eq(eddy_channel_try_recv(ch, &v), -EPIPE);
    return eddy_channel_destroy(ch);
}

EDDY_TEST(channel, close_lets_receivers_drain_then_gives_epipe)
{
    cr_expect_eq(rt_run(close_drains_then_epipe, NULL), 0);
}

struct closer {
    struct eddy_channel *ch;
    pid_t loop_tid;
};

static void *close_when_loop_sleeps(void *arg)
{
    struct closer *c = arg;
    rt_wait_in_epoll(c->loop_tid);
    eddy_channel_close(c->ch);
    return NULL;
}

static intptr_t close_from_thread_wakes_waiters(void *arg)
{
    (void)arg;
    struct closer c = {make_channel(1), rt_gettid()};
    struct task_pair p = {.ch = c.ch};
    struct eddy_task *r1, *r2, *sender;
    /* Two receivers park; the channel then fills; a sender parks. */
    cr_assert_eq(eddy_task_spawn(recv_one, c.ch, NULL, &r1), 0);
    cr_assert_eq(eddy_task_spawn(recv_one, c.ch, NULL, &r2), 0);
    eddy_task_yield();
    cr_assert_eq(eddy_task_spawn(send_five, &p, NULL, &sender), 0);
    intptr_t a, b;
    eddy_task_join(r1, &a);
    eddy_task_join(r2, &b);
    cr_expect_eq(a, 0);
    cr_expect_eq(b, 1);
    /* Now the sender parks on the full channel (value 3 pending). */
    eddy_sleep_ms(5);
    cr_expect_eq(p.sent, 3);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, close_when_loop_sleeps, &c), 0);
    intptr_t r;
    eddy_task_join(sender, &r);
    pthread_join(t, NULL);
    cr_expect_eq(r, -EPIPE);
    intptr_t v;
    cr_expect_eq(eddy_channel_recv(c.ch, &v), 0);
    cr_expect_eq(v, 2);
    cr_expect_eq(eddy_channel_recv(c.ch, &v), -EPIPE);
    return eddy_channel_destroy(c.ch);
}

EDDY_TEST(channel, close_from_a_thread_wakes_a_parked_sender_with_epipe)
{
    cr_expect_eq(rt_run(close_from_thread_wakes_waiters, NULL), 0);
}

static intptr_t parked_receiver_closed_from_thread(void *arg)
{
    (void)arg;
    struct closer c = {make_channel(2), rt_gettid()};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, close_when_loop_sleeps, &c), 0);
    intptr_t v;
    int rc = eddy_channel_recv(c.ch, &v);
    pthread_join(t, NULL);
    cr_expect_eq(rc, -EPIPE, "%s", eddy_strerror(rc));
    return eddy_channel_destroy(c.ch);
}

EDDY_TEST(channel, close_from_a_thread_wakes_a_parked_receiver_with_epipe)
{
    cr_expect_eq(rt_run(parked_receiver_closed_from_thread, NULL), 0);
}

static void *fill_then_block(void *arg)
{
    struct blocked_sender *b = arg;
    b->deadline_ns = EDDY_DEADLINE_NEVER;
    send_three(b);
    return NULL;
}

static intptr_t blocked_thread_closed(void *arg)
{
    struct blocked_sender *b = arg;
    b->ch = make_channel(2);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fill_then_block, b), 0);
    while (atomic_load(&b->sent) < 2)
        eddy_sleep_ms(1);
    eddy_sleep_ms(10);
    cr_expect_eq(eddy_channel_close(b->ch), 0);
    pthread_join(t, NULL);
    cr_expect_eq(b->rc, -EPIPE);
    return eddy_channel_destroy(b->ch);
}

EDDY_TEST(channel, close_wakes_a_thread_blocked_in_send_with_epipe)
{
    struct blocked_sender b = {0};
    cr_expect_eq(rt_run(blocked_thread_closed, &b), 0);
    cr_expect_eq(atomic_load(&b.sent), 2);
}

/* ---- cancellation and timeouts while receiving ------------------------------------ */

static intptr_t cancel_a_receiver(void *arg)
{
    (void)arg;
    struct eddy_channel *ch = make_channel(2);
    struct eddy_task *victim, *other;
    cr_assert_eq(eddy_task_spawn(recv_one, ch, NULL, &victim), 0);
    cr_assert_eq(eddy_task_spawn(recv_one, ch, NULL, &other), 0);
    eddy_task_yield(); /* both parked, victim first */
    cr_expect_eq(eddy_channel_destroy(ch), -EBUSY);
    eddy_task_cancel(victim);
    /* The value goes to the receiver still waiting, not the cancelled one. */
    cr_expect_eq(eddy_channel_try_send(ch, 99), 0);
    intptr_t a, b;
    eddy_task_join(victim, &a);
    eddy_task_join(other, &b);
    cr_expect_eq(a, -ECANCELED);
    cr_expect_eq(b, 99);
    cr_expect_eq(eddy_channel_len(ch), 0u);
    return eddy_channel_destroy(ch);
}

EDDY_TEST(channel, cancelled_receiver_returns_ecanceled_and_loses_no_value)
{
    cr_expect_eq(rt_run(cancel_a_receiver, NULL), 0);
}

static intptr_t receive_in_scope(void *arg)
{
    int64_t *elapsed = arg;
    struct eddy_channel *ch = make_channel(2);
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, 20 * EDDY_NS_PER_MS);
    int64_t t0 = eddy_now_ns(); /* the scope's base */
    intptr_t v;
    int rc = eddy_channel_recv(ch, &v);
    *elapsed = eddy_clock_ns() - t0;
    cr_expect_eq(eddy_timeout_exit(&scope), -ETIMEDOUT);
    cr_expect_eq(eddy_channel_destroy(ch), 0);
    return rc;
}

EDDY_TEST(channel, receive_in_an_expired_timeout_scope_is_etimedout)
{
    int64_t elapsed = 0;
    cr_expect_eq(rt_run(receive_in_scope, &elapsed), -ETIMEDOUT);
    cr_expect_geq(elapsed, 20 * EDDY_NS_PER_MS);
    cr_expect_lt(elapsed, 20 * EDDY_NS_PER_MS + rt_late_tolerance_ns());
}

static intptr_t cancel_a_sender(void *arg)
{
    (void)arg;
    struct task_pair p = {.ch = make_channel(1)};
    struct eddy_task *sender;
    cr_assert_eq(eddy_task_spawn(send_five, &p, NULL, &sender), 0);
    eddy_sleep_ms(2);
    cr_expect_eq(p.sent, 1);
    eddy_task_cancel(sender);
    intptr_t r;
    eddy_task_join(sender, &r);
    cr_expect_eq(r, -ECANCELED);
    cr_expect_eq(eddy_channel_len(p.ch), 1u);
    return eddy_channel_destroy(p.ch);
}

EDDY_TEST(channel, cancelled_task_sender_adds_nothing)
{
    cr_expect_eq(rt_run(cancel_a_sender, NULL), 0);
}

/* ---- destroy with a wakeup still queued ------------------------------------------- */

static void *send_one_value(void *arg)
{
    eddy_channel_try_send(arg, 5);
    return NULL;
}

static intptr_t destroy_with_wake_in_flight(void *arg)
{
    (void)arg;
    struct eddy_channel *ch = make_channel(1);
    struct eddy_task *r;
    cr_assert_eq(eddy_task_spawn(recv_one, ch, NULL, &r), 0);
    eddy_task_yield(); /* parked */
    /* The thread's wakeup is queued on the loop; cancel the receiver, which
     * leaves before the wakeup runs, and destroy the channel at once. */
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, send_one_value, ch), 0);
    pthread_join(t, NULL);
    eddy_task_cancel(r);
    intptr_t res;
    eddy_task_join(r, &res);
    cr_expect(res == -ECANCELED || res == 5);
    cr_expect_eq(eddy_channel_destroy(ch), 0);
    /* Let the loop run the orphaned wakeup (ASan/valgrind check it). */
    eddy_sleep_ms(2);
    return 0;
}

EDDY_TEST(channel, destroy_while_a_thread_wakeup_is_queued_is_safe)
{
    cr_expect_eq(rt_run(destroy_with_wake_in_flight, NULL), 0);
}

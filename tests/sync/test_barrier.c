/*
 * tests/sync/test_barrier.c: eddy_barrier (sync/barrier.c).
 *
 * Covers indices in arrival order over several cycles, parties 1, -EINVAL
 * for 0 parties, abort while tasks wait (-EPIPE for them and for later
 * waits until reset), reset, a waiter cancelled or timed out before the
 * barrier fills (it leaves, indices stay unique), a waiter cancelled after
 * it filled (returns its index), and 10,000 parties.
 */
#include "tests/sync/sync_test.h"

struct shared {
    struct eddy_barrier b;
    int rc[10000];
    int first[10000];                 /* index of each task in the first cycle */
    uint64_t seen[4][10000 / 64 + 1]; /* indices given out per cycle */
    int cycles;
};

struct waiter {
    struct shared *s;
    int id;
    int64_t deadline;
};

static intptr_t arrive(void *arg)
{
    struct waiter *w = arg;
    int last = 0;
    for (int c = 0; c < w->s->cycles; c++) {
        last = eddy_barrier_wait(&w->s->b, w->deadline);
        if (last < 0)
            break;
        if (c == 0)
            w->s->first[w->id] = last;
        if (c < 4)
            w->s->seen[c][last / 64] |= UINT64_C(1) << (last % 64);
    }
    w->s->rc[w->id] = last;
    return last;
}

struct many {
    struct shared s;
    struct waiter w[10000];
    size_t n;
};

static intptr_t cycles(void *arg)
{
    struct many *m = arg;
    cr_assert_eq(eddy_barrier_init(&m->s.b, (unsigned)m->n), 0);
    struct eddy_task **t = calloc(m->n, sizeof(*t));
    for (size_t i = 0; i < m->n; i++) {
        m->w[i] = (struct waiter){.s = &m->s, .id = (int)i, .deadline = EDDY_DEADLINE_NEVER};
        t[i] = st_spawn(arrive, &m->w[i]);
    }
    for (size_t i = 0; i < m->n; i++)
        cr_expect_geq(st_join(t[i]), 0, "task %zu", i);
    free(t);
    /* The first cycle's indices follow spawn (arrival) order; in each cycle
     * every index 0 .. n-1 was given out exactly once. */
    for (size_t i = 0; i < m->n; i++)
        cr_expect_eq(m->s.first[i], (int)i, "task %zu", i);
    for (int c = 0; c < m->s.cycles && c < 4; c++)
        for (size_t i = 0; i < m->n; i++)
            cr_expect(m->s.seen[c][i / 64] & (UINT64_C(1) << (i % 64)), "cycle %d index %zu", c, i);
    cr_expect_eq(eddy_barrier_waiting(&m->s.b), 0);
    return 0;
}

EDDY_TEST(barrier, indices_follow_arrival_order_cycle_after_cycle)
{
    static struct many m;
    memset(&m, 0, sizeof(m));
    m.n = 5;
    m.s.cycles = 4;
    cr_assert_eq(rt_run(cycles, &m), 0);
}

EDDY_TEST(barrier, ten_thousand_parties)
{
    static struct many m;
    memset(&m, 0, sizeof(m));
    m.n = rt_scale(10000, 1000);
    m.s.cycles = 2;
    cr_assert_eq(rt_run(cycles, &m), 0);
}

static intptr_t single(void *arg)
{
    (void)arg;
    struct eddy_barrier b;
    cr_expect_eq(eddy_barrier_init(&b, 0), -EINVAL);
    cr_assert_eq(eddy_barrier_init(&b, 1), 0);
    cr_expect_eq(eddy_barrier_wait(&b, EDDY_DEADLINE_NEVER), 0);
    cr_expect_eq(eddy_barrier_wait(&b, EDDY_DEADLINE_NEVER), 0);
    return 0;
}

EDDY_TEST(barrier, one_party_never_waits_and_zero_parties_is_einval)
{
    cr_assert_eq(rt_run(single, NULL), 0);
}

struct broken {
    struct shared s;
    struct waiter w[3];
};

static intptr_t abort_reset(void *arg)
{
    struct broken *k = arg;
    struct shared *s = &k->s;
    s->cycles = 1;
    cr_assert_eq(eddy_barrier_init(&s->b, 4), 0);
    struct eddy_task *t[3];
    for (int i = 0; i < 3; i++) {
        k->w[i] = (struct waiter){.s = s, .id = i, .deadline = EDDY_DEADLINE_NEVER};
        t[i] = st_spawn(arrive, &k->w[i]);
    }
    st_settle();
    cr_expect_eq(eddy_barrier_waiting(&s->b), 3);
    eddy_barrier_abort(&s->b);
    cr_expect(eddy_barrier_is_broken(&s->b));
    for (int i = 0; i < 3; i++)
        cr_expect_eq(st_join(t[i]), -EPIPE);
    cr_expect_eq(eddy_barrier_wait(&s->b, EDDY_DEADLINE_NEVER), -EPIPE, "broken until reset");

    eddy_barrier_reset(&s->b);
    cr_expect_not(eddy_barrier_is_broken(&s->b));
    for (int i = 0; i < 2; i++)
        t[i] = st_spawn(arrive, &k->w[i]);
    st_settle();
    eddy_barrier_reset(&s->b); /* waiters get -EPIPE, the barrier is empty again */
    for (int i = 0; i < 2; i++)
        cr_expect_eq(st_join(t[i]), -EPIPE);
    cr_expect_eq(eddy_barrier_waiting(&s->b), 0);
    cr_expect_not(eddy_barrier_is_broken(&s->b));
    return 0;
}

EDDY_TEST(barrier, abort_breaks_waiters_and_later_waits_until_reset)
{
    static struct broken k;
    memset(&k, 0, sizeof(k));
    cr_assert_eq(rt_run(abort_reset, &k), 0);
}

struct leave {
    struct shared s;
    struct waiter w[4];
};

static intptr_t leaving(void *arg)
{
    struct leave *k = arg;
    struct shared *s = &k->s;
    s->cycles = 1;
    cr_assert_eq(eddy_barrier_init(&s->b, 3), 0);
    for (int i = 0; i < 4; i++)
        k->w[i] = (struct waiter){.s = s, .id = i, .deadline = EDDY_DEADLINE_NEVER};
    k->w[1].deadline = st_in_ms(5);
    struct eddy_task *t[4];
    t[0] = st_spawn(arrive, &k->w[0]);
    t[1] = st_spawn(arrive, &k->w[1]); /* times out */
    st_settle();
    cr_expect_eq(eddy_barrier_waiting(&s->b), 2);
    cr_assert_eq(eddy_sleep_ms(20), 0);
    cr_expect_eq(eddy_barrier_waiting(&s->b), 1, "the timed-out waiter left");
    cr_expect_eq(st_join(t[1]), -ETIMEDOUT);
    t[2] = st_spawn(arrive, &k->w[2]); /* cancelled before the barrier fills */
    st_settle();
    cr_expect_eq(eddy_barrier_waiting(&s->b), 2);
    eddy_task_cancel(t[2]);
    cr_expect_eq(st_join(t[2]), -ECANCELED);
    cr_expect_eq(eddy_barrier_waiting(&s->b), 1, "the cancelled waiter left");
    /* Now 0 waits alone; 3 arrives, then this task fills the barrier while
     * 3 is cancelled but has not run yet: 3 was counted and gets its index. */
    t[3] = st_spawn(arrive, &k->w[3]);
    st_settle();
    eddy_task_cancel(t[3]);
    cr_expect_eq(eddy_barrier_wait(&s->b, EDDY_DEADLINE_NEVER), 2);
    cr_expect_eq(st_join(t[0]), 0);
    cr_expect_eq(st_join(t[3]), 1);
    return 0;
}

EDDY_TEST(barrier, waiters_that_fail_before_it_fills_leave_and_indices_stay_unique)
{
    static struct leave k;
    memset(&k, 0, sizeof(k));
    cr_assert_eq(rt_run(leaving, &k), 0);
}

/*
 * tests/sync/test_group.c: eddy_group (sync/group.c).
 *
 * Covers join waiting for every child (also children spawned by children),
 * an empty group, the first failure cancelling the siblings and being
 * returned, spawn into a failed group (-ECANCELED), eddy_group_cancel,
 * cancellation of the joining task, an expired timeout scope, and 10,000
 * children.
 */
#include "tests/sync/sync_test.h"

struct kid {
    int64_t delay_ms;
    intptr_t result;
    struct eddy_group *g;
    int *finished;
    bool spawn_more;
    int rc;
};

static intptr_t run_kid(void *arg)
{
    struct kid *k = arg;
    if (k->spawn_more) {
        static struct kid grandchild;
        grandchild = (struct kid){.delay_ms = 10, .result = 0, .finished = k->finished};
        k->rc = eddy_group_spawn(k->g, run_kid, &grandchild, NULL, NULL);
    }
    if (k->delay_ms > 0) {
        int rc = eddy_sleep_ms(k->delay_ms);
        if (rc < 0)
            return rc;
    }
    (*k->finished)++;
    return k->result;
}

struct setup {
    struct kid kids[4];
    int finished;
    int rc;
    int late_spawn_rc;
    int after_rc;
    struct eddy_task *joiner;
};

static intptr_t waits_for_all(void *arg)
{
    struct setup *s = arg;
    struct eddy_group *g;
    cr_assert_eq(eddy_group_create(&g), 0);
    cr_expect_eq(eddy_group_join(g), 0, "an empty group");
    cr_assert_eq(eddy_group_create(&g), 0);
    for (int i = 0; i < 3; i++) {
        s->kids[i] = (struct kid){.delay_ms = 5 * i, .result = i, .g = g, .finished = &s->finished};
        struct eddy_task *t;
        cr_assert_eq(eddy_group_spawn(g, run_kid, &s->kids[i], NULL, &t), 0);
        cr_assert_not_null(t);
    }
    s->kids[0].spawn_more = true;
    s->rc = eddy_group_join(g);
    return 0;
}

EDDY_TEST(group, join_returns_after_every_child_including_grandchildren)
{
    static struct setup s;
    memset(&s, 0, sizeof(s));
    cr_assert_eq(rt_run(waits_for_all, &s), 0);
    cr_expect_eq(s.rc, 0);
    cr_expect_eq(s.kids[0].rc, 0);
    cr_expect_eq(s.finished, 4);
}

static intptr_t first_failure(void *arg)
{
    struct setup *s = arg;
    struct eddy_group *g;
    cr_assert_eq(eddy_group_create(&g), 0);
    int64_t delays[3] = {10000, 5, 20};
    intptr_t results[3] = {0, -EIO, -EPROTO};
    for (int i = 0; i < 3; i++) {
        s->kids[i] = (struct kid){delays[i], results[i], g, &s->finished, false, 0};
        cr_assert_eq(eddy_group_spawn(g, run_kid, &s->kids[i], NULL, NULL), 0);
    }
    cr_assert_eq(eddy_sleep_ms(8), 0);
    s->late_spawn_rc = eddy_group_spawn(g, run_kid, &s->kids[3], NULL, NULL);
    s->rc = eddy_group_join(g);
    return 0;
}

EDDY_TEST(group, the_first_failure_cancels_the_siblings_and_is_returned)
{
    static struct setup s;
    memset(&s, 0, sizeof(s));
    cr_assert_eq(rt_run(first_failure, &s), 0);
    cr_expect_eq(s.rc, -EIO);
    cr_expect_eq(s.finished, 1, "only the failing child finished its work");
    cr_expect_eq(s.late_spawn_rc, -ECANCELED, "spawn into a failed group");
}

static intptr_t join_in_task(void *arg)
{
    struct setup *s = arg;
    struct eddy_group *g;
    cr_assert_eq(eddy_group_create(&g), 0);
    for (int i = 0; i < 3; i++) {
        s->kids[i] = (struct kid){.delay_ms = 10000, .g = g, .finished = &s->finished};
        cr_assert_eq(eddy_group_spawn(g, run_kid, &s->kids[i], NULL, NULL), 0);
    }
    s->rc = eddy_group_join(g);
    s->after_rc = eddy_task_yield();
    return 0;
}

static intptr_t cancel_joiner(void *arg)
{
    struct setup *s = arg;
    s->joiner = st_spawn(join_in_task, s);
    cr_assert_eq(eddy_sleep_ms(2), 0);
    eddy_task_cancel(s->joiner);
    st_join(s->joiner);
    return 0;
}

EDDY_TEST(group, cancelling_the_joiner_cancels_the_children_and_waits_for_them)
{
    static struct setup s;
    memset(&s, 0, sizeof(s));
    cr_assert_eq(rt_run(cancel_joiner, &s), 0);
    cr_expect_eq(s.rc, -ECANCELED);
    cr_expect_eq(s.after_rc, -ECANCELED);
    cr_expect_eq(s.finished, 0);
}

static intptr_t group_cancel(void *arg)
{
    struct setup *s = arg;
    struct eddy_group *g;
    cr_assert_eq(eddy_group_create(&g), 0);
    for (int i = 0; i < 3; i++) {
        s->kids[i] = (struct kid){.delay_ms = 10000, .g = g, .finished = &s->finished};
        cr_assert_eq(eddy_group_spawn(g, run_kid, &s->kids[i], NULL, NULL), 0);
    }
    st_settle();
    eddy_group_cancel(g);
    s->rc = eddy_group_join(g);
    return 0;
}

EDDY_TEST(group, group_cancel_cancels_every_child)
{
    static struct setup s;
    memset(&s, 0, sizeof(s));
    cr_assert_eq(rt_run(group_cancel, &s), 0);
    cr_expect_eq(s.rc, -ECANCELED);
    cr_expect_eq(s.finished, 0);
}

static intptr_t expired_scope(void *arg)
{
    struct setup *s = arg;
    struct eddy_group *g;
    cr_assert_eq(eddy_group_create(&g), 0);
    for (int i = 0; i < 3; i++) {
        s->kids[i] = (struct kid){.delay_ms = i == 0 ? 1 : 10000, .g = g, .finished = &s->finished};
        cr_assert_eq(eddy_group_spawn(g, run_kid, &s->kids[i], NULL, NULL), 0);
    }
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, 5 * EDDY_NS_PER_MS);
    s->rc = eddy_group_join(g);
    eddy_timeout_exit(&scope);
    return 0;
}

EDDY_TEST(group, an_expired_scope_detaches_cancelled_children_and_returns_etimedout)
{
    static struct setup s;
    memset(&s, 0, sizeof(s));
    cr_assert_eq(rt_run(expired_scope, &s), 0);
    cr_expect_eq(s.rc, -ETIMEDOUT);
    cr_expect_eq(s.finished, 1);
}

static intptr_t trivial(void *arg)
{
    (*(size_t *)arg)++;
    return 0;
}

static intptr_t ten_thousand(void *arg)
{
    size_t n = rt_scale(10000, 1000);
    size_t *count = arg;
    struct eddy_group *g;
    cr_assert_eq(eddy_group_create(&g), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(eddy_group_spawn(g, trivial, count, NULL, NULL), 0);
    cr_assert_eq(eddy_group_join(g), 0);
    cr_expect_eq(*count, n);
    return 0;
}

EDDY_TEST(group, ten_thousand_children)
{
    size_t count = 0;
    cr_assert_eq(rt_run(ten_thousand, &count), 0);
}

/*
 * tests/reactor/test_timeout.c: timeout scopes (eddy_timeout_enter/exit in
 * reactor/task.c), asyncio.timeout for eddy.
 *
 * Covers a scope ending each kind of blocking call (sleep, fd wait, join,
 * yield) with -ETIMEDOUT at its deadline and within RT_LATE_TOLERANCE_MS;
 * one scope covering a sequence of calls; nested scopes (the earliest
 * deadline wins, eddy_timeout_exit tells which scope expired); exit out of
 * order and other misuse (-EINVAL); a deadline already passed failing the
 * next blocking call at once, without suspending; the tie rule (the scope
 * wins over a sleep's own deadline); cancellation inside a scope.
 */
#include "tests/reactor/reactor_test.h"

#define SCOPE_MS 20

static intptr_t sleep_forever(void *arg)
{
    (void)arg;
    return eddy_sleep_until(EDDY_DEADLINE_NEVER);
}

enum call { CALL_SLEEP, CALL_FD, CALL_JOIN, CALL_YIELD };

struct timed {
    enum call call;
    int rc;
    int exit_rc;
    bool expired_before_exit;
    int64_t loop_start, loop_end;   /* eddy_now_ns() */
    int64_t fresh_start, fresh_end; /* eddy_clock_ns() */
    intptr_t target_result;
    int rejoin_rc;
    int after_rc;
};

static int blocking_call(enum call call, int rfd, struct eddy_task *target)
{
    switch (call) {
    case CALL_SLEEP:
        return eddy_sleep_ms(60 * 1000);
    case CALL_FD:
        return eddy_fd_wait(rfd, EDDY_FD_READ);
    case CALL_JOIN:
        return eddy_task_join(target, NULL);
    case CALL_YIELD:
        for (;;) {
            int rc = eddy_task_yield();
            if (rc != 0)
                return rc;
        }
    }
    return -1;
}

static intptr_t time_out_one_call(void *arg)
{
    struct timed *t = arg;
    int fds[2];
    rt_pipe(fds);
    struct eddy_task *target = NULL;
    if (t->call == CALL_JOIN)
        cr_assert_eq(eddy_task_spawn(sleep_forever, NULL, NULL, &target), 0);

    struct eddy_timeout scope;
    t->loop_start = eddy_now_ns();
    t->fresh_start = eddy_clock_ns();
    cr_assert_eq(eddy_timeout_enter(&scope, SCOPE_MS * EDDY_NS_PER_MS), 0);
    cr_expect_eq(scope.deadline_ns, t->loop_start + SCOPE_MS * EDDY_NS_PER_MS);
    t->rc = blocking_call(t->call, fds[0], target);
    t->fresh_end = eddy_clock_ns();
    t->loop_end = eddy_now_ns();
    t->expired_before_exit = eddy_timeout_is_expired(&scope);
    t->exit_rc = eddy_timeout_exit(&scope);

    if (target) {
        /* The target kept running and can be joined again. */
        cr_expect_not(eddy_task_is_done(target));
        cr_assert_eq(eddy_task_cancel(target), 0);
        t->rejoin_rc = eddy_task_join(target, &t->target_result);
    }
    /* Outside the scope, blocking works again. */
    t->after_rc = eddy_sleep_ms(1);
    eddy_fd_close(fds[0]);
    eddy_fd_close(fds[1]);
    return 0;
}

static void check_times_out(enum call call, const char *what)
{
    struct timed t = {.call = call};
    cr_assert_eq(rt_run(time_out_one_call, &t), 0);
    int64_t scope_ns = SCOPE_MS * EDDY_NS_PER_MS;
    cr_expect_eq(t.rc, -ETIMEDOUT, "%s returned %s", what, eddy_strerror(t.rc));
    cr_expect_geq(t.loop_end - t.loop_start, scope_ns, "%s: timed out early", what);
    cr_expect_leq(t.fresh_end - t.fresh_start, scope_ns + rt_late_tolerance_ns(),
                  "%s: timed out after %lld ns", what, (long long)(t.fresh_end - t.fresh_start));
    cr_expect(t.expired_before_exit);
    cr_expect_eq(t.exit_rc, -ETIMEDOUT, "exit tells the scope expired");
    cr_expect_eq(t.after_rc, 0);
    if (call == CALL_JOIN) {
        cr_expect_eq(t.rejoin_rc, 0);
        cr_expect_eq(t.target_result, -ECANCELED);
    }
}

EDDY_TEST(timeout, a_scope_ends_a_sleep_with_etimedout_at_its_deadline)
{
    check_times_out(CALL_SLEEP, "sleep");
}

EDDY_TEST(timeout, a_scope_ends_an_fd_wait_with_etimedout_at_its_deadline)
{
    check_times_out(CALL_FD, "fd wait");
}

EDDY_TEST(timeout, a_scope_ends_a_join_with_etimedout_at_its_deadline)
{
    check_times_out(CALL_JOIN, "join");
}

EDDY_TEST(timeout, a_scope_ends_yields_with_etimedout_at_its_deadline)
{
    check_times_out(CALL_YIELD, "yield");
}

struct sequence {
    int rc[4];
    int exit_rc;
    int short_rc, short_exit_rc;
    bool short_expired;
};

static intptr_t scope_over_a_sequence(void *arg)
{
    struct sequence *s = arg;
    struct eddy_timeout scope;
    cr_assert_eq(eddy_timeout_enter(&scope, 30 * EDDY_NS_PER_MS), 0);
    for (int i = 0; i < 4; i++)
        s->rc[i] = eddy_sleep_ms(10);
    s->exit_rc = eddy_timeout_exit(&scope);

    /* A scope whose calls all finish in time. */
    cr_assert_eq(eddy_timeout_enter(&scope, 60 * EDDY_NS_PER_SEC), 0);
    s->short_rc = eddy_sleep_ms(1);
    s->short_expired = eddy_timeout_is_expired(&scope);
    s->short_exit_rc = eddy_timeout_exit(&scope);
    return 0;
}

EDDY_TEST(timeout, one_scope_covers_every_call_inside_it)
{
    struct sequence s = {0};
    cr_assert_eq(rt_run(scope_over_a_sequence, &s), 0);
    cr_expect_eq(s.rc[0], 0);
    cr_expect_eq(s.rc[1], 0);
    /* The third sleep reaches the scope's deadline (a tie goes to the scope). */
    cr_expect_eq(s.rc[2], -ETIMEDOUT);
    cr_expect_eq(s.rc[3], -ETIMEDOUT, "the expired scope fails every later call");
    cr_expect_eq(s.exit_rc, -ETIMEDOUT);
    cr_expect_eq(s.short_rc, 0);
    cr_expect_not(s.short_expired);
    cr_expect_eq(s.short_exit_rc, 0);
}

/* ---- nesting ------------------------------------------------------------------ */

struct nested {
    int64_t outer_ms, inner_ms;
    int rc;
    int64_t waited_ns;
    int inner_exit_rc, between_rc, outer_exit_rc;
};

static intptr_t nested_scopes(void *arg)
{
    struct nested *n = arg;
    struct eddy_timeout outer, inner;
    int64_t start = eddy_now_ns();
    cr_assert_eq(eddy_timeout_enter(&outer, n->outer_ms * EDDY_NS_PER_MS), 0);
    cr_assert_eq(eddy_timeout_enter(&inner, n->inner_ms * EDDY_NS_PER_MS), 0);
    n->rc = eddy_sleep_ms(60 * 1000);
    n->waited_ns = eddy_now_ns() - start;
    n->inner_exit_rc = eddy_timeout_exit(&inner);
    /* Back in the outer scope only: its own deadline applies again. */
    n->between_rc = eddy_sleep_ms(1);
    n->outer_exit_rc = eddy_timeout_exit(&outer);
    return 0;
}

EDDY_TEST(timeout, a_shorter_inner_scope_expires_first_and_only_it_reports_etimedout)
{
    struct nested n = {.outer_ms = 60 * 1000, .inner_ms = SCOPE_MS};
    cr_assert_eq(rt_run(nested_scopes, &n), 0);
    cr_expect_eq(n.rc, -ETIMEDOUT);
    cr_expect_geq(n.waited_ns, SCOPE_MS * EDDY_NS_PER_MS);
    cr_expect_leq(n.waited_ns, SCOPE_MS * EDDY_NS_PER_MS + rt_late_tolerance_ns());
    cr_expect_eq(n.inner_exit_rc, -ETIMEDOUT);
    cr_expect_eq(n.between_rc, 0, "the outer scope has time left");
    cr_expect_eq(n.outer_exit_rc, 0);
}

EDDY_TEST(timeout, a_longer_inner_scope_does_not_extend_the_outer_deadline)
{
    struct nested n = {.outer_ms = SCOPE_MS, .inner_ms = 60 * 1000};
    cr_assert_eq(rt_run(nested_scopes, &n), 0);
    cr_expect_eq(n.rc, -ETIMEDOUT);
    cr_expect_geq(n.waited_ns, SCOPE_MS * EDDY_NS_PER_MS);
    cr_expect_leq(n.waited_ns, SCOPE_MS * EDDY_NS_PER_MS + rt_late_tolerance_ns(),
                  "the inner scope's later deadline won");
    cr_expect_eq(n.inner_exit_rc, 0, "the inner scope did not expire");
    cr_expect_eq(n.between_rc, -ETIMEDOUT, "the outer scope has expired");
    cr_expect_eq(n.outer_exit_rc, -ETIMEDOUT);
}

/* ---- misuse ------------------------------------------------------------------------ */

struct misuse {
    struct eddy_timeout *foreign_scope;
    int foreign_exit_rc;
};

static intptr_t exit_foreign_scope(void *arg)
{
    struct misuse *m = arg;
    m->foreign_exit_rc = eddy_timeout_exit(m->foreign_scope);
    return 0;
}

static intptr_t misuse_scopes(void *arg)
{
    struct misuse *m = arg;
    struct eddy_timeout a, b, never = {0};
    cr_expect_eq(eddy_timeout_enter(&a, -1), -EINVAL, "negative timeout");
    cr_expect_eq(eddy_timeout_enter(NULL, 1), -EINVAL);
    cr_expect_eq(eddy_timeout_exit(&never), -EINVAL, "never entered");
    cr_expect_eq(eddy_timeout_exit(NULL), -EINVAL);

    cr_assert_eq(eddy_timeout_enter(&a, 60 * EDDY_NS_PER_SEC), 0);
    cr_assert_eq(eddy_timeout_enter(&b, 60 * EDDY_NS_PER_SEC), 0);
    cr_expect_eq(eddy_timeout_exit(&a), -EINVAL, "out of order");
    /* The failed exit changed nothing: the proper order still works. */
    cr_expect_eq(eddy_timeout_exit(&b), 0);
    cr_expect_eq(eddy_timeout_exit(&b), -EINVAL, "exited twice");

    /* Another task cannot exit this task's scope. */
    m->foreign_scope = &a;
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(exit_foreign_scope, m, NULL, &t), 0);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    cr_expect_eq(eddy_timeout_exit(&a), 0);
    return 0;
}

EDDY_TEST(timeout, exit_out_of_order_and_other_misuse_return_einval)
{
    struct eddy_timeout scope;
    cr_expect_eq(eddy_timeout_enter(&scope, 1), -EINVAL, "outside a task");
    cr_expect_eq(eddy_timeout_enter_at(&scope, 1), -EINVAL, "outside a task");
    struct misuse m = {0};
    cr_assert_eq(rt_run(misuse_scopes, &m), 0);
    cr_expect_eq(m.foreign_exit_rc, -EINVAL);
}

/* ---- a deadline already passed -------------------------------------------------- */

struct passed {
    bool witness_ran;
    int64_t now_before;
    int rc[6];
    int64_t now_after;
    bool expired;
    int exit_rc;
    int zero_rc, zero_exit_rc;
};

static intptr_t witness(void *arg)
{
    *(bool *)arg = true;
    return 0;
}

static intptr_t block_after_deadline(void *arg)
{
    struct passed *p = arg;
    int fds[2];
    rt_pipe(fds);
    struct eddy_task *target, *w;
    cr_assert_eq(eddy_task_spawn(sleep_forever, NULL, NULL, &target), 0);
    cr_assert_eq(eddy_task_yield(), 0); /* target parks */
    /* If any call below suspended, the witness would run. */
    cr_assert_eq(eddy_task_spawn(witness, &p->witness_ran, NULL, &w), 0);

    struct eddy_timeout scope;
    p->now_before = eddy_now_ns();
    cr_assert_eq(eddy_timeout_enter_at(&scope, p->now_before - 1), 0);
    p->rc[0] = eddy_sleep_ms(1000);
    p->rc[1] = eddy_sleep_ms(0);
    p->rc[2] = eddy_fd_wait(fds[0], EDDY_FD_READ);
    p->rc[3] = eddy_task_join(target, NULL);
    p->rc[4] = eddy_task_yield();
    p->rc[5] = eddy_sleep_until(EDDY_DEADLINE_NEVER);
    p->now_after = eddy_now_ns();
    p->expired = eddy_timeout_is_expired(&scope);
    p->exit_rc = eddy_timeout_exit(&scope);

    /* A zero timeout is a deadline of now: already passed as well. */
    cr_assert_eq(eddy_timeout_enter(&scope, 0), 0);
    p->zero_rc = eddy_sleep_ms(1000);
    p->zero_exit_rc = eddy_timeout_exit(&scope);

    cr_assert_eq(eddy_task_cancel(target), 0);
    cr_assert_eq(eddy_task_join(target, NULL), 0);
    cr_assert_eq(eddy_task_join(w, NULL), 0);
    eddy_fd_close(fds[0]);
    eddy_fd_close(fds[1]);
    return 0;
}

EDDY_TEST(timeout, a_deadline_already_passed_fails_the_next_blocking_call_at_once)
{
    struct passed p = {0};
    cr_assert_eq(rt_run(block_after_deadline, &p), 0);
    static const char *what[] = {"sleep", "sleep 0", "fd wait", "join", "yield", "sleep_until"};
    for (int i = 0; i < 6; i++)
        cr_expect_eq(p.rc[i], -ETIMEDOUT, "%s returned %s", what[i], eddy_strerror(p.rc[i]));
    cr_expect_eq(p.now_after, p.now_before, "nothing suspended: the loop clock did not move");
    cr_expect(p.expired);
    cr_expect_eq(p.exit_rc, -ETIMEDOUT);
    cr_expect_eq(p.zero_rc, -ETIMEDOUT);
    cr_expect_eq(p.zero_exit_rc, -ETIMEDOUT);
}

struct tie {
    int rc;
    int64_t deadline;
    int64_t woke;
};

static intptr_t sleep_to_the_scope_deadline(void *arg)
{
    struct tie *t = arg;
    struct eddy_timeout scope;
    t->deadline = eddy_now_ns() + 5 * EDDY_NS_PER_MS;
    cr_assert_eq(eddy_timeout_enter_at(&scope, t->deadline), 0);
    t->rc = eddy_sleep_until(t->deadline);
    t->woke = eddy_now_ns();
    cr_expect_eq(eddy_timeout_exit(&scope), -ETIMEDOUT);
    return 0;
}

EDDY_TEST(timeout, a_scope_wins_a_tie_with_the_calls_own_deadline)
{
    struct tie t = {0};
    cr_assert_eq(rt_run(sleep_to_the_scope_deadline, &t), 0);
    cr_expect_eq(t.rc, -ETIMEDOUT);
    cr_expect_geq(t.woke, t.deadline);
}

struct cancel_in_scope {
    int rc;
    int exit_rc;
};

static intptr_t sleep_in_scope(void *arg)
{
    struct cancel_in_scope *c = arg;
    struct eddy_timeout scope;
    cr_assert_eq(eddy_timeout_enter(&scope, 60 * EDDY_NS_PER_SEC), 0);
    c->rc = eddy_sleep_ms(60 * 1000);
    c->exit_rc = eddy_timeout_exit(&scope);
    return 0;
}

static intptr_t cancel_inside_a_scope(void *arg)
{
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(sleep_in_scope, arg, NULL, &t), 0);
    cr_assert_eq(eddy_task_yield(), 0);
    cr_assert_eq(eddy_task_cancel(t), 0);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    return 0;
}

EDDY_TEST(timeout, a_cancel_inside_a_scope_returns_ecanceled_not_etimedout)
{
    struct cancel_in_scope c = {0};
    cr_assert_eq(rt_run(cancel_inside_a_scope, &c), 0);
    cr_expect_eq(c.rc, -ECANCELED);
    cr_expect_eq(c.exit_rc, 0);
}

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
 * wins over a sleep's own deadline); cancellation inside a scope; the lazy
 * park timer a wake leaves armed (a later, longer park still ends at its own
 * deadline, and a park without one is not woken by it).
 *
 * Shields (eddy_shield_enter/exit, also in reactor/task.c): each kind of
 * blocking call (sleep, fd wait, join, yield, offload, wait queue) completes
 * inside a shield although the task was cancelled before it, or its scope
 * expired before it, or a cancellation came during the call (held until the
 * shield ends, without waking the task); a timeout scope inside a shield
 * still times out; nested shields; uncancel inside a shield; the end of
 * eddy_run waiting for a shielded task; misuse (-EINVAL).
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

/* ---- shields -------------------------------------------------------------------- */

/* How long each shielded call takes to complete on its own. */
#define SHIELDED_MS 5

enum scall { S_SLEEP, S_FD, S_JOIN, S_YIELD, S_OFFLOAD, S_WAITQ, S_NCALLS };
static const char *scall_name[S_NCALLS] = {"sleep", "fd wait", "join", "yield", "offload", "waitq"};

/* What the task is up against when it enters the shield. */
enum threat {
    CANCELLED_BEFORE, /* cancelled, and its last call returned -ECANCELED */
    SCOPE_EXPIRED,    /* its timeout scope expired before the shield */
    CANCEL_DURING,    /* cancelled while parked in the shielded call */
};

struct shielded {
    enum scall call;
    enum threat threat;
    int before_rc;       /* the call that met the threat, outside the shield */
    int rc;              /* the shielded call */
    intptr_t value;      /* what the shielded call produced */
    int64_t took_ns;     /* how long it took (loop clock) */
    bool cancelled_in;   /* eddy_task_is_cancelled inside the shield */
    int cancel_rc;       /* CANCEL_DURING: eddy_task_cancel's answer */
    bool cancelled_seen; /* CANCEL_DURING: eddy_task_is_cancelled after it */
    int enter_rc, exit_rc;
    int after_rc;      /* the first blocking call after the shield */
    int scope_exit_rc; /* SCOPE_EXPIRED */
    struct eddy_waitq q;
    int fds[2];
};

static intptr_t write_byte_later(void *arg)
{
    struct shielded *s = arg;
    cr_assert_eq(eddy_sleep_ms(SHIELDED_MS), 0);
    cr_assert_eq(write(s->fds[1], "x", 1), 1);
    return 0;
}

static intptr_t wake_later(void *arg)
{
    struct shielded *s = arg;
    cr_assert_eq(eddy_sleep_ms(SHIELDED_MS), 0);
    cr_assert(eddy_waitq_wake_one(&s->q, 3), "the shielded task was parked on the queue");
    return 0;
}

static intptr_t return_five_later(void *arg)
{
    (void)arg;
    int rc = eddy_sleep_ms(SHIELDED_MS);
    return rc < 0 ? rc : 5;
}

static intptr_t offload_nine(void *arg)
{
    (void)arg;
    rt_thread_sleep_ms(SHIELDED_MS);
    return 9;
}

/* Runs one blocking call that completes by itself after about SHIELDED_MS
 * (yield: at once). Helpers are spawned as plain, unthreatened tasks. */
static int shielded_call(struct shielded *s)
{
    struct eddy_task *helper = NULL;
    int rc = 0;
    switch (s->call) {
    case S_SLEEP:
        return eddy_sleep_ms(SHIELDED_MS);
    case S_FD:
        cr_assert_eq(eddy_task_spawn(write_byte_later, s, NULL, &helper), 0);
        rc = eddy_fd_wait(s->fds[0], EDDY_FD_READ);
        s->value = rc == 0 ? read(s->fds[0], &(char){0}, 1) : -1;
        break;
    case S_JOIN:
        cr_assert_eq(eddy_task_spawn(return_five_later, NULL, NULL, &helper), 0);
        rc = eddy_task_join(helper, &s->value);
        return rc;
    case S_YIELD:
        return eddy_task_yield();
    case S_OFFLOAD:
        return eddy_offload_run(offload_nine, NULL, NULL, &s->value);
    case S_WAITQ:
        cr_assert_eq(eddy_task_spawn(wake_later, s, NULL, &helper), 0);
        rc = eddy_waitq_wait(&s->q, EDDY_DEADLINE_NEVER);
        s->value = rc;
        rc = rc == 3 ? 0 : rc;
        break;
    default:
        break;
    }
    if (helper) {
        /* The helper is not shielded and was not cancelled: join it inside
         * the shield (this task cannot block outside it). */
        cr_assert_eq(eddy_task_join(helper, NULL), 0);
    }
    return rc;
}

static intptr_t shielded_task(void *arg)
{
    struct shielded *s = arg;
    struct eddy_timeout scope;
    if (s->threat == CANCELLED_BEFORE)
        s->before_rc = eddy_sleep_until(EDDY_DEADLINE_NEVER);
    if (s->threat == SCOPE_EXPIRED) {
        cr_assert_eq(eddy_timeout_enter(&scope, 2 * EDDY_NS_PER_MS), 0);
        s->before_rc = eddy_sleep_until(EDDY_DEADLINE_NEVER);
    }
    struct eddy_shield shield;
    s->enter_rc = eddy_shield_enter(&shield);
    s->cancelled_in = eddy_task_is_cancelled(eddy_task_current());
    int64_t start = eddy_now_ns();
    s->rc = shielded_call(s);
    s->took_ns = eddy_now_ns() - start;
    s->exit_rc = eddy_shield_exit(&shield);
    s->after_rc = eddy_sleep_ms(1);
    if (s->threat == SCOPE_EXPIRED)
        s->scope_exit_rc = eddy_timeout_exit(&scope);
    return 0;
}

static intptr_t run_shielded(void *arg)
{
    struct shielded *s = arg;
    eddy_waitq_init(&s->q);
    rt_pipe(s->fds);
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(shielded_task, s, NULL, &t), 0);
    cr_assert_eq(eddy_task_yield(), 0); /* t parks: outside, or in its shielded call */
    if (s->threat != SCOPE_EXPIRED) {
        s->cancel_rc = eddy_task_cancel(t);
        s->cancelled_seen = eddy_task_is_cancelled(t);
    }
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    eddy_fd_close(s->fds[0]);
    eddy_fd_close(s->fds[1]);
    return 0;
}

static void check_shielded(enum threat threat)
{
    for (int call = 0; call < S_NCALLS; call++) {
        struct shielded s = {.call = (enum scall)call, .threat = threat};
        const char *what = scall_name[call];
        cr_assert_eq(rt_run(run_shielded, &s), 0);
        if (threat == CANCELLED_BEFORE)
            cr_expect_eq(s.before_rc, -ECANCELED, "%s: before the shield", what);
        if (threat == SCOPE_EXPIRED)
            cr_expect_eq(s.before_rc, -ETIMEDOUT, "%s: before the shield", what);
        cr_expect_eq(s.enter_rc, 0);
        cr_expect_eq(s.rc, 0, "%s in a shield returned %s", what, eddy_strerror(s.rc));
        if (call == S_SLEEP)
            cr_expect_geq(s.took_ns, SHIELDED_MS * EDDY_NS_PER_MS, "the sleep ran its full time");
        if (call == S_FD)
            cr_expect_eq(s.value, 1, "the byte was read");
        if (call == S_JOIN)
            cr_expect_eq(s.value, 5);
        if (call == S_OFFLOAD)
            cr_expect_eq(s.value, 9);
        if (call == S_WAITQ)
            cr_expect_eq(s.value, 3, "the waker's code");
        cr_expect_eq(s.exit_rc, 0);
        if (threat == SCOPE_EXPIRED) {
            cr_expect_not(s.cancelled_in);
            cr_expect_eq(s.after_rc, -ETIMEDOUT, "%s: the expired scope is back", what);
            cr_expect_eq(s.scope_exit_rc, -ETIMEDOUT);
        } else {
            cr_expect_eq(s.cancel_rc, 0);
            cr_expect(s.cancelled_seen, "a held cancellation is still a pending request");
            cr_expect_eq(s.cancelled_in, threat == CANCELLED_BEFORE);
            cr_expect_eq(s.after_rc, -ECANCELED, "%s: the cancellation is back", what);
        }
    }
}

EDDY_TEST(shield, every_blocking_call_of_a_cancelled_task_completes_in_a_shield)
{
    check_shielded(CANCELLED_BEFORE);
}

EDDY_TEST(shield, every_blocking_call_completes_in_a_shield_after_the_scope_expired)
{
    check_shielded(SCOPE_EXPIRED);
}

EDDY_TEST(shield, a_cancel_during_a_shielded_call_is_held_until_the_shield_ends)
{
    check_shielded(CANCEL_DURING);
}

/* A timeout scope inside a shield, with the task both cancelled and under
 * an expired outer scope: the inner scope alone decides. */
struct inner_scope {
    int before_rc;
    int rc;
    int64_t waited_ns;
    int inner_exit_rc, exit_rc, after_rc, outer_exit_rc;
};

static intptr_t scope_inside_shield(void *arg)
{
    struct inner_scope *n = arg;
    struct eddy_timeout outer, inner;
    struct eddy_shield shield;
    cr_assert_eq(eddy_timeout_enter(&outer, EDDY_NS_PER_MS), 0);
    cr_assert_eq(eddy_task_cancel(eddy_task_current()), 0);
    n->before_rc = eddy_sleep_ms(1000);
    cr_assert_eq(eddy_shield_enter(&shield), 0);
    int64_t start = eddy_now_ns();
    cr_assert_eq(eddy_timeout_enter(&inner, SCOPE_MS * EDDY_NS_PER_MS), 0);
    n->rc = eddy_sleep_ms(60 * 1000);
    n->waited_ns = eddy_now_ns() - start;
    n->inner_exit_rc = eddy_timeout_exit(&inner);
    n->exit_rc = eddy_shield_exit(&shield);
    n->after_rc = eddy_sleep_ms(1);
    n->outer_exit_rc = eddy_timeout_exit(&outer);
    eddy_task_uncancel();
    return 0;
}

EDDY_TEST(shield, a_timeout_scope_inside_a_shield_still_times_out)
{
    struct inner_scope n = {0};
    cr_assert_eq(rt_run(scope_inside_shield, &n), 0);
    cr_expect_eq(n.before_rc, -ECANCELED, "cancellation wins over the scope outside");
    cr_expect_eq(n.rc, -ETIMEDOUT, "the inner scope, not the held cancellation");
    cr_expect_geq(n.waited_ns, SCOPE_MS * EDDY_NS_PER_MS, "not the expired outer scope");
    cr_expect_leq(n.waited_ns, SCOPE_MS * EDDY_NS_PER_MS + rt_late_tolerance_ns());
    cr_expect_eq(n.inner_exit_rc, -ETIMEDOUT);
    cr_expect_eq(n.exit_rc, 0);
    cr_expect_eq(n.after_rc, -ECANCELED);
    cr_expect_eq(n.outer_exit_rc, -ETIMEDOUT);
}

/* An outer scope whose deadline passes while the task is shielded. */
struct outlived {
    int rc, after_rc, exit_rc;
    bool expired_inside;
    int64_t took_ns;
};

static intptr_t outlive_a_scope(void *arg)
{
    struct outlived *o = arg;
    struct eddy_timeout scope;
    struct eddy_shield shield;
    cr_assert_eq(eddy_timeout_enter(&scope, 2 * EDDY_NS_PER_MS), 0);
    cr_assert_eq(eddy_shield_enter(&shield), 0);
    int64_t start = eddy_now_ns();
    o->rc = eddy_sleep_ms(10);
    o->took_ns = eddy_now_ns() - start;
    o->expired_inside = eddy_timeout_is_expired(&scope);
    cr_assert_eq(eddy_shield_exit(&shield), 0);
    o->after_rc = eddy_sleep_ms(1);
    o->exit_rc = eddy_timeout_exit(&scope);
    return 0;
}

EDDY_TEST(shield, an_outer_scope_that_expires_during_a_shield_applies_after_it)
{
    struct outlived o = {0};
    cr_assert_eq(rt_run(outlive_a_scope, &o), 0);
    cr_expect_eq(o.rc, 0);
    cr_expect_geq(o.took_ns, 10 * EDDY_NS_PER_MS);
    cr_expect(o.expired_inside, "the scope's own state is not hidden");
    cr_expect_eq(o.after_rc, -ETIMEDOUT);
    cr_expect_eq(o.exit_rc, -ETIMEDOUT);
}

struct nested_shields {
    int cancel_rc;
    int inner_rc, between_rc, after_rc;
    int uncancel_rc, uncancelled_rc;
    bool cancelled_between;
};

static intptr_t nest_shields(void *arg)
{
    struct nested_shields *n = arg;
    struct eddy_task *self = eddy_task_current();
    struct eddy_shield a, b;
    cr_assert_eq(eddy_shield_enter(&a), 0);
    cr_assert_eq(eddy_shield_enter(&b), 0);
    n->cancel_rc = eddy_task_cancel(self);
    n->inner_rc = eddy_sleep_ms(1);
    cr_assert_eq(eddy_shield_exit(&b), 0);
    n->cancelled_between = eddy_task_is_cancelled(self);
    n->between_rc = eddy_sleep_ms(1);
    cr_assert_eq(eddy_shield_exit(&a), 0);
    n->after_rc = eddy_sleep_ms(1);

    /* Uncancel inside a shield withdraws the held request for good. */
    cr_assert_eq(eddy_shield_enter(&a), 0);
    n->uncancel_rc = eddy_task_uncancel();
    cr_assert_eq(eddy_shield_exit(&a), 0);
    n->uncancelled_rc = eddy_sleep_ms(1);
    return 0;
}

EDDY_TEST(shield, nested_shields_hold_a_cancellation_until_the_outermost_ends)
{
    struct nested_shields n = {0};
    cr_assert_eq(rt_run(nest_shields, &n), 0);
    cr_expect_eq(n.cancel_rc, 0);
    cr_expect_eq(n.inner_rc, 0);
    cr_expect(n.cancelled_between);
    cr_expect_eq(n.between_rc, 0, "still inside the outer shield");
    cr_expect_eq(n.after_rc, -ECANCELED);
    cr_expect_eq(n.uncancel_rc, 1, "the request moved back under the shield was withdrawn");
    cr_expect_eq(n.uncancelled_rc, 0);
}

/* eddy_run's end cancels what is left and waits: a shielded task finishes
 * its shielded work first. */
struct at_shutdown {
    int rc, after_rc;
    int64_t took_ns;
    bool done;
};

static intptr_t shielded_background(void *arg)
{
    struct at_shutdown *a = arg;
    struct eddy_shield shield;
    cr_assert_eq(eddy_shield_enter(&shield), 0);
    int64_t start = eddy_now_ns();
    a->rc = eddy_sleep_ms(10);
    a->took_ns = eddy_now_ns() - start;
    cr_assert_eq(eddy_shield_exit(&shield), 0);
    a->after_rc = eddy_sleep_ms(60 * 1000);
    a->done = true;
    return 0;
}

static intptr_t leave_shielded_task_behind(void *arg)
{
    cr_assert_eq(
        eddy_task_spawn(shielded_background, arg, &(struct eddy_task_opts){.detached = true}, NULL),
        0);
    cr_assert_eq(eddy_task_yield(), 0);
    return 0;
}

EDDY_TEST(shield, the_end_of_eddy_run_waits_for_a_shielded_task)
{
    struct at_shutdown a = {0};
    cr_assert_eq(rt_run(leave_shielded_task_behind, &a), 0);
    cr_expect(a.done);
    cr_expect_eq(a.rc, 0);
    cr_expect_geq(a.took_ns, 10 * EDDY_NS_PER_MS);
    cr_expect_eq(a.after_rc, -ECANCELED);
}

struct shield_misuse {
    struct eddy_shield *foreign;
    int foreign_exit_rc;
};

static intptr_t exit_foreign_shield(void *arg)
{
    struct shield_misuse *m = arg;
    m->foreign_exit_rc = eddy_shield_exit(m->foreign);
    return 0;
}

static intptr_t misuse_shields(void *arg)
{
    struct shield_misuse *m = arg;
    struct eddy_shield sh, never = {0};
    struct eddy_timeout scope;
    cr_expect_eq(eddy_shield_enter(NULL), -EINVAL);
    cr_expect_eq(eddy_shield_exit(NULL), -EINVAL);
    cr_expect_eq(eddy_shield_exit(&never), -EINVAL, "never entered");

    /* A timeout scope inside the shield must be exited first. */
    cr_assert_eq(eddy_shield_enter(&sh), 0);
    cr_assert_eq(eddy_timeout_enter(&scope, 60 * EDDY_NS_PER_SEC), 0);
    cr_expect_eq(eddy_shield_exit(&sh), -EINVAL, "out of order");
    cr_expect_eq(eddy_timeout_exit(&sh._scope), -EINVAL, "a shield is not a timeout scope");
    cr_expect_eq(eddy_timeout_exit(&scope), 0);
    /* And the other way round. */
    cr_assert_eq(eddy_timeout_enter(&scope, 60 * EDDY_NS_PER_SEC), 0);
    struct eddy_shield inner;
    cr_assert_eq(eddy_shield_enter(&inner), 0);
    cr_expect_eq(eddy_timeout_exit(&scope), -EINVAL, "out of order");
    cr_expect_eq(eddy_shield_exit(&inner), 0);
    cr_expect_eq(eddy_timeout_exit(&scope), 0);

    /* Another task cannot exit this task's shield. */
    m->foreign = &sh;
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(exit_foreign_shield, m, NULL, &t), 0);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    cr_expect_eq(eddy_shield_exit(&sh), 0);
    cr_expect_eq(eddy_shield_exit(&sh), -EINVAL, "exited twice");
    return 0;
}

EDDY_TEST(shield, exit_out_of_order_and_other_misuse_return_einval)
{
    struct eddy_shield sh;
    cr_expect_eq(eddy_shield_enter(&sh), -EINVAL, "outside a task");
    cr_expect_eq(eddy_shield_exit(&sh), -EINVAL, "outside a task");
    struct shield_misuse m = {0};
    cr_assert_eq(rt_run(misuse_shields, &m), 0);
    cr_expect_eq(m.foreign_exit_rc, -EINVAL);
}

/* ---- the lazy park timer: a wake leaves it armed ---------------------------------- */

/* The first park's scope and the second's: the first must outlast a 2 ms
 * poke, also under Valgrind. */
#define LAZY_SHORT_MS (eddy_test_under_valgrind() ? 1000 : 20)
#define LAZY_LONG_MS (4 * LAZY_SHORT_MS)

struct lazy {
    int fds[2];
    int64_t woke_ms;
    int rc_first, rc_second;
};

static intptr_t lazy_poke(void *arg)
{
    struct lazy *lz = arg;
    int rc = eddy_sleep_ms(2);
    if (rc < 0)
        return rc;
    return write(lz->fds[1], "x", 1);
}

static intptr_t lazy_longer_park(void *arg)
{
    struct lazy *lz = arg;
    /* A first park under a short scope, woken early by the fd: its timer
     * stays armed for LAZY_SHORT_MS. */
    struct eddy_task *p;
    cr_assert_eq(eddy_task_spawn(lazy_poke, lz, NULL, &p), 0);
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, (int64_t)LAZY_SHORT_MS * EDDY_NS_PER_MS);
    lz->rc_first = eddy_fd_wait(lz->fds[0], EDDY_FD_READ);
    cr_assert_eq(eddy_timeout_exit(&scope), 0);
    cr_assert_eq(eddy_task_join(p, NULL), 0);
    char c;
    cr_assert_eq(read(lz->fds[0], &c, 1), 1);
    /* A second park under a longer scope must not end at the stale timer. */
    int64_t t0 = eddy_now_ns();
    eddy_timeout_enter(&scope, (int64_t)LAZY_LONG_MS * EDDY_NS_PER_MS);
    lz->rc_second = eddy_fd_wait(lz->fds[0], EDDY_FD_READ);
    eddy_timeout_exit(&scope);
    lz->woke_ms = (eddy_now_ns() - t0) / EDDY_NS_PER_MS;
    return 0;
}

EDDY_TEST(timeout, a_later_park_outlives_the_timer_an_earlier_wake_left_armed)
{
    struct lazy lz = {0};
    rt_pipe(lz.fds);
    rt_run(lazy_longer_park, &lz);
    cr_expect_eq(lz.rc_first, 0);
    cr_expect_eq(lz.rc_second, -ETIMEDOUT);
    cr_expect_geq(lz.woke_ms, LAZY_LONG_MS, "timed out after %lld ms", (long long)lz.woke_ms);
    cr_expect_lt(lz.woke_ms, LAZY_LONG_MS + rt_late_tolerance_ns() / EDDY_NS_PER_MS);
    close(lz.fds[0]);
    close(lz.fds[1]);
}

static intptr_t lazy_poke_late(void *arg)
{
    struct lazy *lz = arg;
    int rc = eddy_sleep_ms(LAZY_LONG_MS);
    if (rc < 0)
        return rc;
    return write(lz->fds[1], "y", 1);
}

static intptr_t lazy_no_deadline(void *arg)
{
    struct lazy *lz = arg;
    struct eddy_task *p;
    cr_assert_eq(eddy_task_spawn(lazy_poke, lz, NULL, &p), 0);
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, (int64_t)LAZY_SHORT_MS * EDDY_NS_PER_MS);
    lz->rc_first = eddy_fd_wait(lz->fds[0], EDDY_FD_READ);
    cr_assert_eq(eddy_timeout_exit(&scope), 0);
    cr_assert_eq(eddy_task_join(p, NULL), 0);
    char c;
    cr_assert_eq(read(lz->fds[0], &c, 1), 1);
    /* No deadline now: the stale timer fires meanwhile and must not wake
     * (or time out) this park; the late write ends it. */
    cr_assert_eq(eddy_task_spawn(lazy_poke_late, lz, NULL, &p), 0);
    int64_t t0 = eddy_now_ns();
    lz->rc_second = eddy_fd_wait(lz->fds[0], EDDY_FD_READ);
    lz->woke_ms = (eddy_now_ns() - t0) / EDDY_NS_PER_MS;
    cr_assert_eq(eddy_task_join(p, NULL), 0);
    return 0;
}

EDDY_TEST(timeout, a_park_without_deadline_ignores_the_timer_an_earlier_wake_left_armed)
{
    struct lazy lz = {0};
    rt_pipe(lz.fds);
    rt_run(lazy_no_deadline, &lz);
    cr_expect_eq(lz.rc_first, 0);
    cr_expect_eq(lz.rc_second, 0);
    cr_expect_geq(lz.woke_ms, LAZY_LONG_MS - 1, "woke after %lld ms", (long long)lz.woke_ms);
    close(lz.fds[0]);
    close(lz.fds[1]);
}

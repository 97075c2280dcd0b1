/*
 * tests/sync/test_wait.c: eddy_wait_for, eddy_wait and eddy_shield_join
 * (sync/wait.c).
 *
 * wait_for: a task finishing in time (its result), a deadline that passes
 * first (the task is cancelled and has finished when wait_for returns), the
 * caller cancelled while waiting (the task is cancelled and waited for, the
 * caller's cancellation is restored), an expired scope (the task is
 * cancelled and detached), and bad input.
 * wait: each `when` (all, first completed, first failure), with tasks that
 * finish when the test opens their gate (an event), so the order does not
 * depend on timing; the deadline (a count, not an error; tasks untouched);
 * a condition already met (no suspension, even cancelled); the caller
 * cancelled or its scope expiring (the tasks run on); the joiner slots
 * (-EBUSY for others during the wait, free after it); many tasks consumed
 * one at a time in completion order; bad input.
 * shield_join: the result in time; a deadline or a cancellation of the
 * caller leaving the task running and its handle valid; bad input.
 */
#include "tests/sync/sync_test.h"

struct job {
    int64_t delay_ms;
    bool finished, cleaned_up;
    int rc;
    int after_rc;
};

static intptr_t sleeper(void *arg)
{
    struct job *j = arg;
    int rc = eddy_sleep_ms(j->delay_ms);
    j->cleaned_up = true;
    if (rc < 0)
        return rc;
    j->finished = true;
    return 7;
}

static intptr_t in_time_and_late(void *arg)
{
    struct job *j = arg;
    intptr_t r = 0;
    j[0].delay_ms = 1;
    cr_expect_eq(eddy_wait_for(st_spawn(sleeper, &j[0]), st_in_ms(1000), &r), 0);
    cr_expect_eq(r, 7);
    j[1].delay_ms = 10000;
    int64_t t0 = eddy_clock_ns();
    cr_expect_eq(eddy_wait_for(st_spawn(sleeper, &j[1]), st_in_ms(10), &r), -ETIMEDOUT);
    cr_expect_lt(eddy_clock_ns() - t0, 10 * EDDY_NS_PER_MS + rt_late_tolerance_ns());
    cr_expect(j[1].cleaned_up, "the task had finished (cancelled) when wait_for returned");
    cr_expect_not(j[1].finished);
    cr_expect_eq(eddy_wait_for(NULL, EDDY_DEADLINE_NEVER, NULL), -EINVAL);
    cr_expect_eq(eddy_wait_for(eddy_task_current(), EDDY_DEADLINE_NEVER, NULL), -EINVAL);
    return 0;
}

EDDY_TEST(wait_for, returns_the_result_in_time_and_cancels_the_task_when_late)
{
    static struct job j[2];
    cr_assert_eq(rt_run(in_time_and_late, j), 0);
}

static intptr_t waiter(void *arg)
{
    struct job *j = arg;
    j[0].rc = eddy_wait_for(st_spawn(sleeper, &j[1]), EDDY_DEADLINE_NEVER, NULL);
    j[0].after_rc = eddy_task_yield();
    return 0;
}

static intptr_t cancel_caller(void *arg)
{
    struct job *j = arg;
    j[1].delay_ms = 10000;
    struct eddy_task *w = st_spawn(waiter, j);
    cr_assert_eq(eddy_sleep_ms(2), 0);
    eddy_task_cancel(w);
    st_join(w);
    return 0;
}

EDDY_TEST(wait_for, cancelling_the_caller_cancels_the_task_and_waits_for_it)
{
    static struct job j[2];
    cr_assert_eq(rt_run(cancel_caller, j), 0);
    cr_expect_eq(j[0].rc, -ECANCELED);
    cr_expect_eq(j[0].after_rc, -ECANCELED);
    cr_expect(j[1].cleaned_up);
}

static intptr_t expired_scope(void *arg)
{
    struct job *j = arg;
    j[0].delay_ms = 10000;
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, 5 * EDDY_NS_PER_MS);
    j[0].rc = eddy_wait_for(st_spawn(sleeper, &j[0]), EDDY_DEADLINE_NEVER, NULL);
    eddy_timeout_exit(&scope);
    /* The detached task ends on its own. */
    for (int i = 0; i < 10 && !j[0].cleaned_up; i++)
        eddy_task_yield();
    return 0;
}

EDDY_TEST(wait_for, an_expired_scope_cancels_and_detaches_the_task)
{
    static struct job j[1];
    cr_assert_eq(rt_run(expired_scope, j), 0);
    cr_expect_eq(j[0].rc, -ETIMEDOUT);
    cr_expect(j[0].cleaned_up);
}

/* ---- wait (asyncio.wait) ----------------------------------------------------- */

#define NGATES 50

/* Set when it runs: a call that must not suspend is checked with it. */
static intptr_t witness(void *arg)
{
    *(bool *)arg = true;
    return 0;
}

/* A handle that must never be dereferenced (calls outside a task refuse it
 * before looking at it). */
static struct eddy_task *not_a_task(void)
{
    static int dummy;
    return (struct eddy_task *)(void *)&dummy;
}

/* A task that finishes, with `value`, when its gate opens. */
struct gate {
    struct eddy_event open;
    intptr_t value;
};

static intptr_t gated(void *arg)
{
    struct gate *g = arg;
    int rc = eddy_event_wait(&g->open, EDDY_DEADLINE_NEVER);
    return rc < 0 ? rc : g->value;
}

struct gates {
    struct gate g[NGATES];
    struct eddy_task *t[NGATES];
    size_t n;
    int order[NGATES]; /* gates to open, in this order */
    size_t nopen;      /* how many of them the opener opens */
    size_t opened;
};

static void gates_start(struct gates *gs, size_t n)
{
    gs->n = n;
    for (size_t i = 0; i < n; i++) {
        eddy_event_init(&gs->g[i].open);
        if (gs->g[i].value == 0)
            gs->g[i].value = (intptr_t)i + 100;
        gs->t[i] = st_spawn(gated, &gs->g[i]);
    }
}

/* Opens gs->nopen gates in gs->order, letting everything run between two. */
static intptr_t opener(void *arg)
{
    struct gates *gs = arg;
    for (size_t k = 0; k < gs->nopen; k++) {
        eddy_event_set(&gs->g[gs->order[k]].open);
        gs->opened++;
        st_settle();
    }
    return 0;
}

/* Opens the remaining gates and joins every task not joined yet (t[i] set
 * to NULL once joined), checking each result. */
static void gates_finish(struct gates *gs)
{
    for (size_t i = 0; i < gs->n; i++) {
        if (!gs->t[i])
            continue;
        eddy_event_set(&gs->g[i].open);
        cr_expect_not(eddy_task_is_cancelled(gs->t[i]), "wait never cancels a task");
        cr_expect_eq(st_join(gs->t[i]), gs->g[i].value);
        gs->t[i] = NULL;
    }
}

struct waited {
    int rc;
    bool done[NGATES];
    size_t opened_at_return;
};

static intptr_t wait_all(void *arg)
{
    struct gates *gs = arg;
    struct waited w = {0};
    gates_start(gs, 3);
    gs->order[0] = 0, gs->order[1] = 2, gs->order[2] = 1;
    gs->nopen = 3;
    struct eddy_task *op = st_spawn(opener, gs);
    w.rc = eddy_wait(gs->t, 3, EDDY_WAIT_ALL_COMPLETED, EDDY_DEADLINE_NEVER, w.done);
    cr_expect_eq(w.rc, 3);
    cr_expect_eq(gs->opened, 3, "returned only after the last gate opened");
    for (int i = 0; i < 3; i++)
        cr_expect(w.done[i]);
    st_join(op);
    gates_finish(gs);
    return 0;
}

EDDY_TEST(wait, all_completed_returns_when_every_task_has_finished)
{
    static struct gates gs;
    cr_assert_eq(rt_run(wait_all, &gs), 0);
}

static intptr_t wait_first(void *arg)
{
    struct gates *gs = arg;
    bool done[3] = {true, true, true};
    gates_start(gs, 3);
    gs->order[0] = 1;
    gs->nopen = 1;
    struct eddy_task *op = st_spawn(opener, gs);
    cr_expect_eq(eddy_wait(gs->t, 3, EDDY_WAIT_FIRST_COMPLETED, EDDY_DEADLINE_NEVER, done), 1);
    cr_expect(!done[0] && done[1] && !done[2]);
    st_join(op);
    /* A task already done satisfies the condition at once: to wait for the
     * next one, pass only the pending tasks (as with asyncio's pending set). */
    cr_expect_eq(eddy_wait(gs->t, 3, EDDY_WAIT_FIRST_COMPLETED, EDDY_DEADLINE_NEVER, done), 1);
    cr_expect_eq(st_join(gs->t[1]), 101);
    gs->t[1] = NULL;
    struct eddy_task *pending[2] = {gs->t[0], gs->t[2]};
    gs->order[0] = 2;
    op = st_spawn(opener, gs);
    cr_expect_eq(eddy_wait(pending, 2, EDDY_WAIT_FIRST_COMPLETED, EDDY_DEADLINE_NEVER, done), 1);
    cr_expect(!done[0] && done[1]);
    st_join(op);
    gates_finish(gs);
    return 0;
}

EDDY_TEST(wait, first_completed_returns_at_the_first_finish_and_leaves_the_others_running)
{
    static struct gates gs;
    cr_assert_eq(rt_run(wait_first, &gs), 0);
}

static intptr_t wait_first_failure(void *arg)
{
    struct gates *gs = arg;
    bool done[3];
    gs->g[1].value = -EIO;
    gates_start(gs, 3);
    gs->order[0] = 0, gs->order[1] = 1;
    gs->nopen = 2;
    struct eddy_task *op = st_spawn(opener, gs);
    cr_expect_eq(eddy_wait(gs->t, 3, EDDY_WAIT_FIRST_FAILURE, EDDY_DEADLINE_NEVER, done), 2);
    cr_expect_eq(gs->opened, 2, "a success did not end the wait, the failure did");
    cr_expect(done[0] && done[1] && !done[2]);
    st_join(op);
    gates_finish(gs);

    /* Without a failure, it waits for all of them. */
    struct gates *more = &gs[1];
    gates_start(more, 3);
    more->order[0] = 2, more->order[1] = 0, more->order[2] = 1;
    more->nopen = 3;
    op = st_spawn(opener, more);
    cr_expect_eq(eddy_wait(more->t, 3, EDDY_WAIT_FIRST_FAILURE, EDDY_DEADLINE_NEVER, done), 3);
    cr_expect_eq(more->opened, 3);
    st_join(op);
    gates_finish(more);
    return 0;
}

EDDY_TEST(wait, first_failure_returns_at_a_negative_result_or_when_all_have_finished)
{
    static struct gates gs[2];
    cr_assert_eq(rt_run(wait_first_failure, gs), 0);
}

static intptr_t wait_past_deadline(void *arg)
{
    struct gates *gs = arg;
    bool done[3] = {true, true, true};
    gates_start(gs, 3);
    cr_assert_eq(eddy_task_yield(), 0); /* they park on their gates */
    /* Early is measured on the loop's clock, which deadlines use; late on
     * a fresh one. */
    int64_t loop_t0 = eddy_now_ns(), t0 = eddy_clock_ns();
    cr_expect_eq(eddy_wait(gs->t, 3, EDDY_WAIT_ALL_COMPLETED, st_in_ms(10), done), 0);
    cr_expect_geq(eddy_now_ns() - loop_t0, 10 * EDDY_NS_PER_MS);
    cr_expect_leq(eddy_clock_ns() - t0, 10 * EDDY_NS_PER_MS + rt_late_tolerance_ns());
    cr_expect(!done[0] && !done[1] && !done[2]);

    /* One done, a deadline already passed: a poll, with no suspension. */
    eddy_event_set(&gs->g[2].open);
    cr_assert_eq(eddy_task_yield(), 0);
    bool witness_ran = false;
    struct eddy_task *w = st_spawn(witness, &witness_ran);
    cr_expect_eq(eddy_wait(gs->t, 3, EDDY_WAIT_ALL_COMPLETED, eddy_now_ns() - 1, done), 1);
    cr_expect(!done[0] && !done[1] && done[2]);
    cr_expect_not(witness_ran, "eddy_wait did not suspend");
    st_join(w);
    /* The joiner slots are free again: a plain join works. */
    cr_expect_eq(st_join(gs->t[2]), 102);
    gs->t[2] = NULL;
    gates_finish(gs);
    return 0;
}

EDDY_TEST(wait, a_deadline_returns_the_count_done_and_leaves_the_tasks_running)
{
    static struct gates gs;
    cr_assert_eq(rt_run(wait_past_deadline, &gs), 0);
}

static intptr_t wait_when_met(void *arg)
{
    struct gates *gs = arg;
    bool done[2];
    gates_start(gs, 2);
    eddy_event_set(&gs->g[0].open);
    eddy_event_set(&gs->g[1].open);
    st_settle();
    bool witness_ran = false;
    struct eddy_task *w = st_spawn(witness, &witness_ran);
    cr_assert_eq(eddy_task_cancel(eddy_task_current()), 0);
    cr_expect_eq(eddy_wait(gs->t, 2, EDDY_WAIT_ALL_COMPLETED, EDDY_DEADLINE_NEVER, done), 2);
    cr_expect(done[0] && done[1]);
    /* Duplicates count as given. */
    struct eddy_task *twice[2] = {gs->t[0], gs->t[0]};
    cr_expect_eq(eddy_wait(twice, 2, EDDY_WAIT_ALL_COMPLETED, EDDY_DEADLINE_NEVER, NULL), 2);
    cr_expect_not(witness_ran, "eddy_wait did not suspend");
    cr_expect_eq(eddy_task_uncancel(), 1);
    st_join(w);
    gates_finish(gs);
    return 0;
}

EDDY_TEST(wait, a_condition_already_met_returns_at_once_even_when_cancelled)
{
    static struct gates gs;
    cr_assert_eq(rt_run(wait_when_met, &gs), 0);
}

struct interrupted {
    struct gates gs;
    bool in_scope;
    int rc;
    bool done[3];
    int busy_join_rc, busy_wait_rc;
};

static intptr_t interrupted_waiter(void *arg)
{
    struct interrupted *in = arg;
    struct eddy_timeout scope;
    if (in->in_scope)
        eddy_timeout_enter(&scope, 5 * EDDY_NS_PER_MS);
    memset(in->done, 1, sizeof(in->done));
    in->rc = eddy_wait(in->gs.t, 3, EDDY_WAIT_ALL_COMPLETED, EDDY_DEADLINE_NEVER, in->done);
    if (in->in_scope)
        eddy_timeout_exit(&scope);
    return 0;
}

static intptr_t try_join(void *arg)
{
    return eddy_task_join(arg, NULL);
}

static intptr_t try_wait(void *arg)
{
    struct eddy_task *t = arg;
    return eddy_wait(&t, 1, EDDY_WAIT_ALL_COMPLETED, EDDY_DEADLINE_NEVER, NULL);
}

static intptr_t interrupt_a_wait(void *arg)
{
    struct interrupted *in = arg;
    gates_start(&in->gs, 3);
    struct eddy_task *w = st_spawn(interrupted_waiter, in);
    st_settle();
    /* While w waits, the tasks belong to its wait. */
    in->busy_join_rc = (int)st_join(st_spawn(try_join, in->gs.t[0]));
    in->busy_wait_rc = (int)st_join(st_spawn(try_wait, in->gs.t[1]));
    if (!in->in_scope)
        cr_assert_eq(eddy_task_cancel(w), 0);
    st_join(w);
    gates_finish(&in->gs);
    return 0;
}

static void check_interrupted(bool in_scope)
{
    static struct interrupted in;
    memset(&in, 0, sizeof(in));
    in.in_scope = in_scope;
    cr_assert_eq(rt_run(interrupt_a_wait, &in), 0);
    cr_expect_eq(in.rc, in_scope ? -ETIMEDOUT : -ECANCELED);
    cr_expect(!in.done[0] && !in.done[1] && !in.done[2], "done is written on errors too");
    cr_expect_eq(in.busy_join_rc, -EBUSY);
    cr_expect_eq(in.busy_wait_rc, -EBUSY);
}

EDDY_TEST(wait, cancelling_the_caller_returns_ecanceled_and_the_tasks_run_on)
{
    check_interrupted(false);
}

EDDY_TEST(wait, an_expiring_scope_returns_etimedout_and_the_tasks_run_on)
{
    check_interrupted(true);
}

/* as_completed over task handles: wait for the first of the pending ones,
 * collect it, repeat. */
static intptr_t consume_in_completion_order(void *arg)
{
    struct gates *gs = arg;
    size_t n = rt_scale(NGATES, 20);
    gates_start(gs, n);
    for (size_t k = 0; k < n; k++)
        gs->order[k] = (int)(n - 1 - k);
    gs->nopen = n;
    struct eddy_task *op = st_spawn(opener, gs);
    static struct st_log log; /* 80 KB: not on a task stack */
    log.n = 0;
    struct eddy_task *pending[NGATES];
    size_t index[NGATES];
    size_t npending = n;
    for (size_t i = 0; i < n; i++) {
        pending[i] = gs->t[i];
        index[i] = i;
    }
    while (npending > 0) {
        bool done[NGATES];
        int rc = eddy_wait(pending, npending, EDDY_WAIT_FIRST_COMPLETED, EDDY_DEADLINE_NEVER, done);
        cr_assert_eq(rc, 1, "one gate opens at a time");
        size_t kept = 0;
        for (size_t i = 0; i < npending; i++) {
            if (done[i]) {
                st_log_add(&log, (int)index[i]);
                cr_expect_eq(st_join(pending[i]), (intptr_t)index[i] + 100);
                gs->t[index[i]] = NULL;
            } else {
                pending[kept] = pending[i];
                index[kept++] = index[i];
            }
        }
        npending = kept;
    }
    st_join(op);
    cr_assert_eq(log.n, n);
    for (size_t k = 0; k < n; k++)
        cr_expect_eq(log.v[k], (int)(n - 1 - k), "completion %zu was task %d", k, log.v[k]);
    return 0;
}

EDDY_TEST(wait, first_completed_in_a_loop_collects_many_tasks_in_completion_order)
{
    static struct gates gs;
    cr_assert_eq(rt_run(consume_in_completion_order, &gs), 0);
}

static intptr_t wait_bad_input(void *arg)
{
    struct gates *gs = arg;
    gates_start(gs, 2);
    struct eddy_task *with_null[2] = {gs->t[0], NULL};
    struct eddy_task *with_self[2] = {gs->t[0], eddy_task_current()};
    cr_expect_eq(eddy_wait(NULL, 1, EDDY_WAIT_ALL_COMPLETED, EDDY_DEADLINE_NEVER, NULL), -EINVAL);
    cr_expect_eq(eddy_wait(with_null, 2, EDDY_WAIT_ALL_COMPLETED, EDDY_DEADLINE_NEVER, NULL),
                 -EINVAL);
    cr_expect_eq(eddy_wait(gs->t, 2, (enum eddy_wait_when)99, EDDY_DEADLINE_NEVER, NULL), -EINVAL);
    cr_expect_eq(eddy_wait(with_self, 2, EDDY_WAIT_ALL_COMPLETED, EDDY_DEADLINE_NEVER, NULL),
                 -EDEADLK);
    cr_expect_eq(eddy_wait(NULL, 0, EDDY_WAIT_FIRST_COMPLETED, EDDY_DEADLINE_NEVER, NULL), 0,
                 "an empty set");
    /* The failed calls took no joiner slot. */
    eddy_event_set(&gs->g[0].open);
    cr_expect_eq(st_join(st_spawn(try_join, gs->t[0])), 0);
    gs->t[0] = NULL;
    gates_finish(gs);
    return 0;
}

EDDY_TEST(wait, bad_input_returns_einval_or_edeadlk_and_takes_nothing)
{
    static struct gates gs;
    struct eddy_task *bogus = not_a_task();
    cr_expect_eq(eddy_wait(&bogus, 1, EDDY_WAIT_ALL_COMPLETED, EDDY_DEADLINE_NEVER, NULL), -EINVAL,
                 "outside a task");
    cr_assert_eq(rt_run(wait_bad_input, &gs), 0);
}

/* ---- shield_join (asyncio.shield) ------------------------------------------- */

struct shielded_join {
    struct job j[2];
    int late_rc, cancelled_rc;
    bool still_running;
    intptr_t r;
};

static intptr_t shield_join_in_time_and_late(void *arg)
{
    struct shielded_join *s = arg;
    s->j[0].delay_ms = 1;
    cr_expect_eq(eddy_shield_join(st_spawn(sleeper, &s->j[0]), st_in_ms(1000), &s->r), 0);
    cr_expect_eq(s->r, 7);

    s->j[1].delay_ms = 30;
    struct eddy_task *t = st_spawn(sleeper, &s->j[1]);
    s->late_rc = eddy_shield_join(t, st_in_ms(5), NULL);
    s->still_running = !eddy_task_is_done(t) && !eddy_task_is_cancelled(t);
    /* The handle is still valid: join it again, without a deadline. */
    cr_expect_eq(eddy_shield_join(t, EDDY_DEADLINE_NEVER, &s->r), 0);
    cr_expect_eq(s->r, 7, "the task finished its work");
    cr_expect(s->j[1].finished);
    return 0;
}

EDDY_TEST(shield_join, a_deadline_ends_the_wait_but_not_the_task)
{
    struct shielded_join s = {0};
    cr_assert_eq(rt_run(shield_join_in_time_and_late, &s), 0);
    cr_expect_eq(s.late_rc, -ETIMEDOUT);
    cr_expect(s.still_running);
}

struct cancelled_join {
    struct job j;
    struct eddy_task *target;
    int rc, after_rc;
    bool target_cancelled;
    intptr_t r;
};

static intptr_t shield_joiner(void *arg)
{
    struct cancelled_join *c = arg;
    c->rc = eddy_shield_join(c->target, EDDY_DEADLINE_NEVER, NULL);
    c->after_rc = eddy_task_yield();
    return 0;
}

static intptr_t cancel_a_shield_join(void *arg)
{
    struct cancelled_join *c = arg;
    c->j.delay_ms = 20;
    c->target = st_spawn(sleeper, &c->j);
    struct eddy_task *w = st_spawn(shield_joiner, c);
    st_settle();
    cr_assert_eq(eddy_task_cancel(w), 0);
    st_join(w);
    c->target_cancelled = eddy_task_is_cancelled(c->target);
    cr_expect_eq(eddy_task_join(c->target, &c->r), 0);
    return 0;
}

EDDY_TEST(shield_join, cancelling_the_caller_leaves_the_task_running)
{
    struct cancelled_join c = {0};
    cr_assert_eq(rt_run(cancel_a_shield_join, &c), 0);
    cr_expect_eq(c.rc, -ECANCELED);
    cr_expect_eq(c.after_rc, -ECANCELED, "the caller stays cancelled");
    cr_expect_not(c.target_cancelled);
    cr_expect_eq(c.r, 7);
    cr_expect(c.j.finished);
}

static intptr_t shield_join_bad_input(void *arg)
{
    struct job *j = arg;
    j->delay_ms = 5;
    struct eddy_task *t = st_spawn(sleeper, j);
    cr_expect_eq(eddy_shield_join(NULL, EDDY_DEADLINE_NEVER, NULL), -EINVAL);
    cr_expect_eq(eddy_shield_join(eddy_task_current(), EDDY_DEADLINE_NEVER, NULL), -EDEADLK);
    /* Another task is joining t: -EBUSY, and t stays theirs. */
    struct eddy_task *other = st_spawn(try_join, t);
    st_settle();
    cr_expect_eq(eddy_shield_join(t, EDDY_DEADLINE_NEVER, NULL), -EBUSY);
    cr_expect_eq(st_join(other), 0);
    return 0;
}

EDDY_TEST(shield_join, bad_input_returns_einval_edeadlk_or_ebusy)
{
    static struct job j;
    cr_expect_eq(eddy_shield_join(not_a_task(), EDDY_DEADLINE_NEVER, NULL), -EINVAL,
                 "outside a task");
    cr_assert_eq(rt_run(shield_join_bad_input, &j), 0);
}

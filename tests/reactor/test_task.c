/*
 * tests/reactor/test_task.c: tasks, as reactor/task.c implements them.
 *
 * Covers spawn (FIFO start order, stack sizes honoured, -EINVAL for absurd
 * stacks and outside a loop, -ENOMEM with the loop still running), join
 * (result, -EINVAL for a handle joined twice with and without EDDY_DEBUG,
 * -EDEADLK, -EBUSY, -EINVAL for detached tasks), cancel (-EALREADY, before
 * the first run, during each kind of wait: sleep, fd, join, yield; sticky
 * until uncancel), detach, yield's round robin, the queries (current,
 * is_done, result, name), coroutines taken at the first run (so that
 * trivial tasks spawned together run on a few recycled stacks), and scale:
 * 100,000 tasks spawned and joined, 100,000 sleeping at once, with the
 * loop's task slab and stack pool back to empty afterwards.
 *
 * The leak checks look inside the loop (reactor/internal.h): the task slab
 * and the stack pool are eddy's own allocators, so a task object or a stack
 * lost there would be invisible to ASan's and Valgrind's leak reports. The
 * finished coroutines the loop caches for reuse are not counted as lost.
 */
#include <sys/resource.h>

#include "reactor/internal.h"
#include "tests/reactor/reactor_test.h"

static intptr_t return_arg(void *arg)
{
    return (intptr_t)arg;
}

static intptr_t sleep_forever(void *arg)
{
    (void)arg;
    return eddy_sleep_until(EDDY_DEADLINE_NEVER);
}

static intptr_t sleep_ms_arg(void *arg)
{
    return eddy_sleep_ms((int64_t)(intptr_t)arg);
}

/* The number of task objects the current loop holds, and of stacks held by
 * coroutines other than the finished ones the loop keeps for reuse. */
static void loop_usage(size_t *tasks, size_t *stacks)
{
    struct eddy_loop *loop = eddy_loop_current();
    struct eddy_stack_pool_stats st;
    eddy_stack_pool_get_stats(loop->stacks, &st);
    *tasks = eddy_obj_slab_live(&loop->task_slab);
    *stacks = st.in_use - loop->coro_cache_len;
}

/* ---- spawn order, join, result -------------------------------------------------- */

struct order {
    int seen[100];
    int n;
};

struct order_arg {
    struct order *o;
    int i;
};

static intptr_t record_order(void *arg)
{
    struct order_arg *a = arg;
    a->o->seen[a->o->n++] = a->i;
    return a->i;
}

static intptr_t spawn_in_order(void *arg)
{
    struct order *o = arg;
    struct order_arg args[100];
    struct eddy_task *t[100];
    for (int i = 0; i < 100; i++) {
        args[i] = (struct order_arg){o, i};
        cr_assert_eq(eddy_task_spawn(record_order, &args[i], NULL, &t[i]), 0);
    }
    cr_assert_eq(o->n, 0, "spawn does not run the task: it starts when the caller suspends");
    /* Join in reverse: the start order must not depend on the join order. */
    for (int i = 99; i >= 0; i--) {
        intptr_t result = -1;
        cr_assert_eq(eddy_task_join(t[i], &result), 0);
        cr_assert_eq(result, i);
    }
    return 0;
}

EDDY_TEST(task, tasks_start_in_the_order_they_were_spawned)
{
    struct order o = {.n = 0};
    cr_assert_eq(rt_run(spawn_in_order, &o), 0);
    cr_assert_eq(o.n, 100);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(o.seen[i], i, "position %d ran task %d", i, o.seen[i]);
}

struct rounds {
    char log[64];
    int n;
};

struct round_arg {
    struct rounds *r;
    char name;
};

static intptr_t yield_three_times(void *arg)
{
    struct round_arg *a = arg;
    for (int i = 0; i < 3; i++) {
        a->r->log[a->r->n++] = a->name;
        int rc = eddy_task_yield();
        if (rc < 0)
            return rc;
    }
    return 0;
}

static intptr_t round_robin(void *arg)
{
    struct rounds *r = arg;
    struct round_arg args[3] = {{r, 'a'}, {r, 'b'}, {r, 'c'}};
    struct eddy_task *t[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(eddy_task_spawn(yield_three_times, &args[i], NULL, &t[i]), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(eddy_task_join(t[i], NULL), 0);
    return 0;
}

EDDY_TEST(task, yield_lets_every_other_runnable_task_run_once)
{
    struct rounds r = {.n = 0};
    cr_assert_eq(rt_run(round_robin, &r), 0);
    r.log[r.n] = '\0';
    cr_expect_str_eq(r.log, "abcabcabc");
}

static intptr_t join_results(void *arg)
{
    (void)arg;
    static const intptr_t values[] = {0, 1, -ECANCELED, INTPTR_MAX, INTPTR_MIN + 1};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct eddy_task *t;
        cr_assert_eq(eddy_task_spawn(return_arg, (void *)values[i], NULL, &t), 0);
        intptr_t result = 12345;
        cr_assert_eq(eddy_task_join(t, &result), 0);
        cr_assert_eq(result, values[i]);
    }
    /* A task that finished before the join; and a NULL result pointer. */
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(return_arg, (void *)(intptr_t)9, NULL, &t), 0);
    cr_assert_eq(eddy_task_yield(), 0);
    cr_assert(eddy_task_is_done(t));
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    return 0;
}

EDDY_TEST(task, join_returns_the_tasks_result)
{
    cr_assert_eq(rt_run(join_results, NULL), 0);
}

static intptr_t join_twice(void *arg)
{
    (void)arg;
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(return_arg, (void *)(intptr_t)5, NULL, &t), 0);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    /* Nothing reused the freed task object yet: the stale handle is caught. */
    cr_expect_eq(eddy_task_join(t, NULL), -EINVAL);
    cr_expect_eq(eddy_task_cancel(t), -EINVAL);
    cr_expect_eq(eddy_task_detach(t), -EINVAL);
    cr_expect_eq(eddy_task_result(t, NULL), -EINVAL);
    cr_expect_not(eddy_task_is_done(t));
    return 0;
}

EDDY_TEST(task, join_twice_returns_einval)
{
    cr_assert_eq(rt_run(join_twice, NULL), 0);
}

static intptr_t join_twice_with_reuse(void *arg)
{
    (void)arg;
    struct eddy_task *t;
    EDDY_CHILD_CHECK(eddy_task_spawn(return_arg, NULL, NULL, &t) == 0);
    EDDY_CHILD_CHECK(eddy_task_join(t, NULL) == 0);
    /* Without EDDY_DEBUG these spawns would reuse t's memory at once. */
    for (int i = 0; i < 100; i++) {
        struct eddy_task *other;
        EDDY_CHILD_CHECK(eddy_task_spawn(return_arg, NULL, NULL, &other) == 0);
        EDDY_CHILD_CHECK(other != t);
        EDDY_CHILD_CHECK(eddy_task_join(t, NULL) == -EINVAL);
        EDDY_CHILD_CHECK(eddy_task_join(other, NULL) == 0);
    }
    return 0;
}

static void debug_child_join_twice(void *arg)
{
    (void)arg;
    setenv("EDDY_DEBUG", "1", 1);
    intptr_t result = -1;
    EDDY_CHILD_CHECK(eddy_run(join_twice_with_reuse, NULL, NULL, &result) == 0);
    EDDY_CHILD_CHECK(result == 0);
}

EDDY_TEST(task, join_twice_returns_einval_reliably_in_debug_mode)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(debug_child_join_twice, NULL, &child), 0);
    eddy_assert_child_ok(child);
    cr_expect_str_empty(child.first_line, "unexpected report: %s", child.first_line);
}

static intptr_t join_self(void *arg)
{
    (void)arg;
    return eddy_task_join(eddy_task_current(), NULL);
}

EDDY_TEST(task, join_of_itself_returns_edeadlk)
{
    cr_expect_eq(rt_run(join_self, NULL), -EDEADLK);
}

struct two_joiners {
    struct eddy_task *target;
    intptr_t first_result;
    int first_rc;
};

static intptr_t first_joiner(void *arg)
{
    struct two_joiners *j = arg;
    j->first_rc = eddy_task_join(j->target, &j->first_result);
    return 0;
}

static intptr_t join_from_two_tasks(void *arg)
{
    struct two_joiners *j = arg;
    struct eddy_task *joiner;
    cr_assert_eq(eddy_task_spawn(sleep_ms_arg, (void *)(intptr_t)5, NULL, &j->target), 0);
    cr_assert_eq(eddy_task_spawn(first_joiner, j, NULL, &joiner), 0);
    cr_assert_eq(eddy_task_yield(), 0); /* the target sleeps, the joiner parks */
    cr_expect_eq(eddy_task_join(j->target, NULL), -EBUSY);
    cr_expect_eq(eddy_task_detach(j->target), -EINVAL, "detach while being joined");
    cr_assert_eq(eddy_task_join(joiner, NULL), 0);
    return 0;
}

EDDY_TEST(task, a_second_joiner_gets_ebusy)
{
    struct two_joiners j = {0};
    cr_assert_eq(rt_run(join_from_two_tasks, &j), 0);
    cr_expect_eq(j.first_rc, 0);
    cr_expect_eq(j.first_result, 0, "the first joiner got the sleep's result");
}

static intptr_t join_detached(void *arg)
{
    (void)arg;
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(sleep_ms_arg, (void *)(intptr_t)2, NULL, &t), 0);
    cr_assert_eq(eddy_task_detach(t), 0);
    cr_expect_eq(eddy_task_join(t, NULL), -EINVAL);
    cr_expect_eq(eddy_task_detach(t), -EINVAL, "detached twice");

    /* Spawned detached: no handle comes back. */
    struct eddy_task *none = (struct eddy_task *)&none;
    cr_assert_eq(
        eddy_task_spawn(return_arg, NULL, &(struct eddy_task_opts){.detached = true}, &none), 0);
    cr_expect_null(none);

    /* Detaching a finished task frees it at once. */
    struct eddy_task *done;
    cr_assert_eq(eddy_task_spawn(return_arg, NULL, NULL, &done), 0);
    cr_assert_eq(eddy_task_yield(), 0);
    cr_assert(eddy_task_is_done(done));
    cr_expect_eq(eddy_task_detach(done), 0);
    cr_expect_eq(eddy_task_join(done, NULL), -EINVAL);

    cr_assert_eq(eddy_sleep_ms(5), 0); /* t finishes and frees itself */
    size_t tasks, stacks;
    loop_usage(&tasks, &stacks);
    cr_expect_eq(tasks, 1, "only main is left");
    cr_expect_eq(stacks, 1);
    return 0;
}

EDDY_TEST(task, join_of_a_detached_task_returns_einval)
{
    cr_assert_eq(rt_run(join_detached, NULL), 0);
}

static intptr_t join_across_loops(void *arg)
{
    struct eddy_loop *other = arg;
    struct eddy_task *foreign;
    /* Spawning onto another loop of the same thread is allowed... */
    cr_assert_eq(eddy_loop_spawn(other, return_arg, NULL, NULL, &foreign), 0);
    /* ...but its tasks cannot be joined from this one. */
    cr_expect_eq(eddy_task_join(foreign, NULL), -EINVAL);
    return 0;
}

EDDY_TEST(task, join_of_a_task_of_another_loop_returns_einval)
{
    struct eddy_loop *other;
    cr_assert_eq(eddy_loop_create(NULL, &other), 0);
    cr_assert_eq(rt_run(join_across_loops, other), 0);
    eddy_loop_destroy(other);
}

/* ---- cancel -------------------------------------------------------------------- */

static intptr_t cancel_finished(void *arg)
{
    (void)arg;
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(return_arg, NULL, NULL, &t), 0);
    cr_assert_eq(eddy_task_yield(), 0);
    cr_assert(eddy_task_is_done(t));
    cr_expect_eq(eddy_task_cancel(t), -EALREADY);
    cr_expect_not(eddy_task_is_cancelled(t));
    cr_expect_eq(eddy_task_join(t, NULL), 0);
    cr_expect_eq(eddy_task_cancel(NULL), -EINVAL);
    return 0;
}

EDDY_TEST(task, cancel_of_a_finished_task_returns_ealready)
{
    cr_assert_eq(rt_run(cancel_finished, NULL), 0);
}

struct early {
    bool body_ran;
    int first_rc, second_rc, uncancel_rc, after_rc;
};

static intptr_t cancelled_before_start(void *arg)
{
    struct early *e = arg;
    e->body_ran = true;
    e->first_rc = eddy_sleep_ms(1);
    e->second_rc = eddy_task_yield();
    e->uncancel_rc = eddy_task_uncancel();
    e->after_rc = eddy_sleep_ms(1);
    return 0;
}

static intptr_t cancel_before_run(void *arg)
{
    struct early *e = arg;
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(cancelled_before_start, e, NULL, &t), 0);
    cr_assert_eq(eddy_task_cancel(t), 0);
    cr_expect(eddy_task_is_cancelled(t));
    cr_expect_not(e->body_ran);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    return 0;
}

EDDY_TEST(task, cancel_before_the_first_run_still_runs_the_body)
{
    struct early e = {0};
    cr_assert_eq(rt_run(cancel_before_run, &e), 0);
    cr_expect(e.body_ran);
    cr_expect_eq(e.first_rc, -ECANCELED);
    cr_expect_eq(e.second_rc, -ECANCELED, "cancellation stays until uncancel");
    cr_expect_eq(e.uncancel_rc, 1);
    cr_expect_eq(e.after_rc, 0);
}

static intptr_t cancel_myself(void *arg)
{
    int *rc = arg;
    rc[0] = eddy_task_cancel(eddy_task_current());
    rc[1] = eddy_task_is_cancelled(eddy_task_current());
    rc[2] = eddy_sleep_ms(1);
    rc[3] = eddy_task_uncancel();
    return 0;
}

EDDY_TEST(task, a_task_may_cancel_itself)
{
    int rc[4] = {1, 0, 1, 0};
    cr_assert_eq(rt_run(cancel_myself, rc), 0);
    cr_expect_eq(rc[0], 0);
    cr_expect_eq(rc[1], 1);
    cr_expect_eq(rc[2], -ECANCELED, "its next blocking call");
    cr_expect_eq(rc[3], 1);
}

enum wait_kind { WAIT_SLEEP, WAIT_FD, WAIT_JOIN, WAIT_YIELD };

struct waiter {
    enum wait_kind kind;
    int rfd;
    struct eddy_task *target; /* WAIT_JOIN */
    bool waiting;
    bool finished;
    int rc;
};

static intptr_t wait_once(void *arg)
{
    struct waiter *w = arg;
    w->waiting = true;
    switch (w->kind) {
    case WAIT_SLEEP:
        w->rc = eddy_sleep_ms(60 * 1000);
        break;
    case WAIT_FD:
        w->rc = eddy_fd_wait(w->rfd, EDDY_FD_READ);
        break;
    case WAIT_JOIN:
        w->rc = eddy_task_join(w->target, NULL);
        break;
    case WAIT_YIELD:
        w->rc = eddy_task_yield();
        break;
    }
    w->finished = true;
    return 0;
}

static intptr_t cancel_a_waiter(void *arg)
{
    struct waiter *w = arg;
    if (w->kind == WAIT_JOIN)
        cr_assert_eq(eddy_task_spawn(sleep_forever, NULL, NULL, &w->target), 0);
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(wait_once, w, NULL, &t), 0);
    cr_assert_eq(eddy_task_yield(), 0); /* t starts its wait */
    cr_assert(w->waiting && !w->finished);
    int64_t start = eddy_clock_ns();
    cr_assert_eq(eddy_task_cancel(t), 0);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    cr_expect_lt(eddy_clock_ns() - start, rt_late_tolerance_ns(), "the cancel was not prompt");
    if (w->kind == WAIT_JOIN) {
        /* Cancelling the joiner left the target alone. */
        cr_expect_not(eddy_task_is_done(w->target));
        cr_expect_not(eddy_task_is_cancelled(w->target));
        cr_assert_eq(eddy_task_cancel(w->target), 0);
        intptr_t result = 0;
        cr_assert_eq(eddy_task_join(w->target, &result), 0);
        cr_expect_eq(result, -ECANCELED);
    }
    return 0;
}

static void check_cancel_during(enum wait_kind kind, const char *what)
{
    int fds[2];
    rt_pipe(fds);
    struct waiter w = {.kind = kind, .rfd = fds[0]};
    cr_assert_eq(rt_run(cancel_a_waiter, &w), 0);
    cr_expect(w.finished, "%s: the waiter did not finish", what);
    cr_expect_eq(w.rc, -ECANCELED, "%s returned %s", what, eddy_strerror(w.rc));
    close(fds[0]);
    close(fds[1]);
}

EDDY_TEST(task, cancel_during_a_sleep_returns_ecanceled)
{
    check_cancel_during(WAIT_SLEEP, "sleep");
}

EDDY_TEST(task, cancel_during_an_fd_wait_returns_ecanceled)
{
    check_cancel_during(WAIT_FD, "fd wait");
}

EDDY_TEST(task, cancel_during_a_join_returns_ecanceled)
{
    check_cancel_during(WAIT_JOIN, "join");
}

EDDY_TEST(task, cancel_during_a_yield_returns_ecanceled)
{
    check_cancel_during(WAIT_YIELD, "yield");
}

struct sticky {
    int rc[6];
    int uncancel_again;
    bool cancelled_after;
};

static intptr_t sticky_victim(void *arg)
{
    struct sticky *s = arg;
    int fds[2];
    if (pipe2(fds, O_NONBLOCK) != 0)
        return -errno;
    s->rc[0] = eddy_sleep_ms(60 * 1000);
    s->rc[1] = eddy_sleep_ms(60 * 1000);
    s->rc[2] = eddy_task_yield();
    s->rc[3] = eddy_fd_wait(fds[0], EDDY_FD_READ);
    s->rc[4] = eddy_task_uncancel();
    s->cancelled_after = eddy_task_is_cancelled(eddy_task_current());
    s->rc[5] = eddy_sleep_ms(1);
    s->uncancel_again = eddy_task_uncancel();
    eddy_fd_close(fds[0]);
    close(fds[1]);
    return 0;
}

static intptr_t cancel_sticky(void *arg)
{
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(sticky_victim, arg, NULL, &t), 0);
    cr_assert_eq(eddy_task_yield(), 0);
    cr_assert_eq(eddy_task_cancel(t), 0);
    cr_assert_eq(eddy_task_cancel(t), 0, "a second cancel is harmless");
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    return 0;
}

EDDY_TEST(task, cancellation_is_sticky_until_uncancel)
{
    struct sticky s = {0};
    cr_assert_eq(rt_run(cancel_sticky, &s), 0);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(s.rc[i], -ECANCELED, "call %d returned %s", i, eddy_strerror(s.rc[i]));
    cr_expect_eq(s.rc[4], 1, "uncancel withdrew a request");
    cr_expect_not(s.cancelled_after);
    cr_expect_eq(s.rc[5], 0, "a blocking call works again after uncancel");
    cr_expect_eq(s.uncancel_again, 0, "nothing left to withdraw");
}

/* ---- spawn limits and calls outside a loop ------------------------------------- */

static intptr_t spawn_limits(void *arg)
{
    (void)arg;
    struct eddy_task *t = NULL;
    struct eddy_task_opts big = {.stack_size_bytes = EDDY_STACK_MAX_BYTES + 1};
    cr_expect_eq(eddy_task_spawn(return_arg, NULL, &big, &t), -EINVAL);
    big.stack_size_bytes = SIZE_MAX;
    cr_expect_eq(eddy_task_spawn(return_arg, NULL, &big, &t), -EINVAL);
    cr_expect_eq(eddy_task_spawn(NULL, NULL, NULL, &t), -EINVAL, "no function");
    cr_expect_eq(eddy_task_spawn(return_arg, NULL, NULL, NULL), -EINVAL, "nowhere to put it");
    /* The largest allowed stack is fine: it is reserved, not committed. */
    big.stack_size_bytes = EDDY_STACK_MAX_BYTES;
    cr_assert_eq(eddy_task_spawn(return_arg, (void *)(intptr_t)3, &big, &t), 0);
    intptr_t result = 0;
    cr_assert_eq(eddy_task_join(t, &result), 0);
    cr_expect_eq(result, 3);
    return 0;
}

EDDY_TEST(task, spawn_with_an_absurd_stack_size_returns_einval)
{
    cr_assert_eq(rt_run(spawn_limits, NULL), 0);
}

struct outside {
    int sleep_rc, yield_rc, join_rc, uncancel_rc, spawn_rc;
    bool no_current;
    struct eddy_task *spawned;
};

static void call_from_callback(void *arg)
{
    struct outside *o = arg;
    o->no_current = eddy_task_current() == NULL;
    o->sleep_rc = eddy_sleep_ms(1);
    o->yield_rc = eddy_task_yield();
    o->join_rc = eddy_task_join(o->spawned, NULL);
    o->uncancel_rc = eddy_task_uncancel();
    /* A callback may spawn tasks. */
    o->spawn_rc =
        eddy_task_spawn(return_arg, NULL, &(struct eddy_task_opts){.detached = true}, NULL);
}

EDDY_TEST(task, blocking_calls_outside_a_task_return_einval)
{
    struct eddy_task *t = NULL;
    cr_expect_eq(eddy_task_spawn(return_arg, NULL, NULL, &t), -EINVAL, "no running loop");
    cr_expect_null(t);
    cr_expect_eq(eddy_sleep_ms(1), -EINVAL);
    cr_expect_eq(eddy_sleep_ns(1), -EINVAL);
    cr_expect_eq(eddy_sleep_until(eddy_now_ns() + 1), -EINVAL);
    cr_expect_eq(eddy_task_yield(), -EINVAL);
    cr_expect_eq(eddy_task_join(NULL, NULL), -EINVAL);
    cr_expect_eq(eddy_task_uncancel(), -EINVAL);
    cr_expect_null(eddy_task_current());

    /* Inside a running loop, but in a posted callback rather than a task. */
    struct eddy_loop *loop;
    cr_assert_eq(eddy_loop_create(NULL, &loop), 0);
    struct outside o = {0};
    cr_assert_eq(eddy_loop_spawn(loop, sleep_ms_arg, (void *)(intptr_t)1, NULL, &o.spawned), 0);
    cr_assert_eq(eddy_loop_post(loop, call_from_callback, &o), 0);
    cr_assert_eq(eddy_loop_run(loop), 0);
    cr_expect(o.no_current);
    cr_expect_eq(o.sleep_rc, -EINVAL);
    cr_expect_eq(o.yield_rc, -EINVAL);
    cr_expect_eq(o.join_rc, -EINVAL);
    cr_expect_eq(o.uncancel_rc, -EINVAL);
    cr_expect_eq(o.spawn_rc, 0);
    eddy_loop_destroy(loop);
}

static intptr_t negative_sleep(void *arg)
{
    (void)arg;
    cr_expect_eq(eddy_sleep_ms(-1), -EINVAL);
    cr_expect_eq(eddy_sleep_ns(-1), -EINVAL);
    cr_expect_eq(eddy_sleep_ns(0), 0, "a zero sleep is a yield");
    cr_expect_eq(eddy_sleep_until(0), 0, "a deadline in the past is a yield");
    return 0;
}

EDDY_TEST(task, sleep_with_a_negative_duration_returns_einval)
{
    cr_assert_eq(rt_run(negative_sleep, NULL), 0);
}

/* ---- queries ---------------------------------------------------------------------- */

struct self_view {
    struct eddy_task *handle; /* stored by the spawner before the task runs */
    bool current_matches;
    bool done_while_running;
    int result_while_running;
    char name[40];
};

static intptr_t look_at_self(void *arg)
{
    struct self_view *v = arg;
    struct eddy_task *self = eddy_task_current();
    v->current_matches = self == v->handle;
    v->done_while_running = eddy_task_is_done(self);
    intptr_t r = 0;
    v->result_while_running = eddy_task_result(self, &r);
    snprintf(v->name, sizeof(v->name), "%s", eddy_task_name(self));
    return 77;
}

static intptr_t queries(void *arg)
{
    (void)arg;
    cr_expect_str_eq(eddy_task_name(eddy_task_current()), "main");

    struct self_view v = {0};
    cr_assert_eq(
        eddy_task_spawn(look_at_self, &v, &(struct eddy_task_opts){.name = "worker"}, &v.handle),
        0);
    cr_expect_not(eddy_task_is_done(v.handle));
    cr_expect_eq(eddy_task_result(v.handle, NULL), -EAGAIN, "not started yet");
    cr_expect_str_eq(eddy_task_name(v.handle), "worker");
    cr_assert_eq(eddy_task_yield(), 0);
    cr_expect(v.current_matches);
    cr_expect_not(v.done_while_running);
    cr_expect_eq(v.result_while_running, -EAGAIN);
    cr_expect_str_eq(v.name, "worker");
    cr_expect(eddy_task_is_done(v.handle));
    intptr_t result = 0;
    cr_expect_eq(eddy_task_result(v.handle, &result), 0);
    cr_expect_eq(result, 77);
    cr_expect_eq(eddy_task_result(v.handle, NULL), 0);
    cr_assert_eq(eddy_task_join(v.handle, NULL), 0);

    /* Default names are "task-N", N counting up. */
    struct eddy_task *a, *b;
    cr_assert_eq(eddy_task_spawn(return_arg, NULL, NULL, &a), 0);
    cr_assert_eq(eddy_task_spawn(return_arg, NULL, &(struct eddy_task_opts){.name = NULL}, &b), 0);
    unsigned long na = 0, nb = 0;
    cr_expect_eq(sscanf(eddy_task_name(a), "task-%lu", &na), 1, "%s", eddy_task_name(a));
    cr_expect_eq(sscanf(eddy_task_name(b), "task-%lu", &nb), 1, "%s", eddy_task_name(b));
    cr_expect_eq(nb, na + 1);
    cr_assert_eq(eddy_task_join(a, NULL), 0);
    cr_assert_eq(eddy_task_join(b, NULL), 0);

    /* Names are copied, up to 31 bytes. */
    char name[64];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    cr_assert_eq(eddy_task_spawn(return_arg, NULL, &(struct eddy_task_opts){.name = name}, &a), 0);
    memset(name, 'x', sizeof(name) - 1);
    cr_expect_eq(strlen(eddy_task_name(a)), 31);
    cr_expect_eq(eddy_task_name(a)[0], 'n');
    cr_assert_eq(eddy_task_join(a, NULL), 0);

    cr_expect_str_eq(eddy_task_name(NULL), "(not a task)");
    cr_expect_not(eddy_task_is_done(NULL));
    cr_expect_not(eddy_task_is_cancelled(NULL));
    cr_expect_eq(eddy_task_result(NULL, NULL), -EINVAL);
    return 0;
}

EDDY_TEST(task, queries_report_current_done_result_and_name)
{
    cr_assert_eq(rt_run(queries, NULL), 0);
}

/* ---- stacks ------------------------------------------------------------------------- */

#define USED_STACK_BYTES (200 << 10)

static __attribute__((noinline)) intptr_t fill_stack(void)
{
    volatile unsigned char buf[USED_STACK_BYTES];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)i;
    intptr_t sum = 0;
    for (size_t i = 0; i < sizeof(buf); i += 4096)
        sum += buf[i];
    return sum;
}

static intptr_t use_200_kib_of_stack(void *arg)
{
    (void)arg;
    if (eddy_coro_stack_size(eddy_coro_current()) < ((size_t)256 << 10))
        return -1;
    return fill_stack() >= 0 ? 1 : -1;
}

static intptr_t stack_sizes(void *arg)
{
    (void)arg;
    struct eddy_task *t;
    struct eddy_task_opts opts = {.stack_size_bytes = 256 << 10, .name = "deep"};
    cr_assert_eq(eddy_task_spawn(use_200_kib_of_stack, NULL, &opts, &t), 0);
    intptr_t result = 0;
    cr_assert_eq(eddy_task_join(t, &result), 0);
    cr_expect_eq(result, 1);
    cr_expect_geq(eddy_coro_stack_size(eddy_coro_current()), EDDY_STACK_DEFAULT_BYTES,
                  "main got the default stack");
    return 0;
}

EDDY_TEST(task, a_256_kib_stack_holds_200_kib_of_locals)
{
    cr_assert_eq(rt_run(stack_sizes, NULL), 0);
}

/* ---- scale ---------------------------------------------------------------------------- */

static intptr_t double_it(void *arg)
{
    return (intptr_t)arg * 2;
}

static intptr_t spawn_and_join_many(void *arg)
{
    size_t n = *(size_t *)arg;
    struct eddy_task **t = malloc(n * sizeof(*t));
    cr_assert_not_null(t);
    size_t tasks0, stacks0;
    loop_usage(&tasks0, &stacks0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(eddy_task_spawn(double_it, (void *)(intptr_t)i, NULL, &t[i]), 0, "spawn %zu",
                     i);
    for (size_t i = 0; i < n; i++) {
        intptr_t result = -1;
        cr_assert_eq(eddy_task_join(t[i], &result), 0);
        cr_assert_eq(result, (intptr_t)i * 2);
    }
    size_t tasks, stacks;
    loop_usage(&tasks, &stacks);
    cr_expect_eq(tasks, tasks0, "task objects leaked: %zu", tasks - tasks0);
    cr_expect_eq(stacks, stacks0, "stacks leaked: %zu", stacks - stacks0);
    free(t);
    return 0;
}

EDDY_TEST(task, hundred_thousand_tasks_spawned_and_joined_leave_nothing_behind)
{
    size_t n = rt_scale(100000, 2000);
    cr_assert_eq(rt_run(spawn_and_join_many, &n), 0);
}

/* Stacks the pool has carved so far: those in use, kept warm and given back. */
static size_t stacks_carved(void)
{
    struct eddy_stack_pool_stats st;
    eddy_stack_pool_get_stats(eddy_loop_current()->stacks, &st);
    return st.in_use + st.cached + st.released;
}

static intptr_t coroutine_on_first_run(void *arg)
{
    (void)arg;
    size_t tasks0, stacks0;
    loop_usage(&tasks0, &stacks0);
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(sleep_ms_arg, (void *)(intptr_t)1, NULL, &t), 0);
    size_t tasks, stacks;
    loop_usage(&tasks, &stacks);
    cr_expect_eq(tasks, tasks0 + 1);
    cr_expect_eq(stacks, stacks0, "spawn took no stack yet");
    cr_assert_eq(eddy_task_yield(), 0); /* t starts and parks in its sleep */
    loop_usage(&tasks, &stacks);
    cr_expect_eq(stacks, stacks0 + 1, "a parked task holds its stack");
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    return 0;
}

EDDY_TEST(task, a_tasks_coroutine_and_stack_are_taken_when_it_first_runs)
{
    cr_assert_eq(rt_run(coroutine_on_first_run, NULL), 0);
}

/* Stacks that ten thousand trivial tasks needed, spawned all at once. */
#define TRIVIAL_TASKS 10000
#define TRIVIAL_TASKS_STACKS_MAX 4

static intptr_t trivial_tasks_share_stacks(void *arg)
{
    (void)arg;
    struct eddy_task **t = malloc(TRIVIAL_TASKS * sizeof(*t));
    cr_assert_not_null(t);
    size_t carved0 = stacks_carved();
    for (size_t i = 0; i < TRIVIAL_TASKS; i++)
        cr_assert_eq(eddy_task_spawn(double_it, (void *)(intptr_t)i, NULL, &t[i]), 0);
    for (size_t i = 0; i < TRIVIAL_TASKS; i++) {
        intptr_t result = -1;
        cr_assert_eq(eddy_task_join(t[i], &result), 0);
        cr_assert_eq(result, (intptr_t)i * 2);
    }
    size_t carved = stacks_carved() - carved0;
    cr_expect_leq(carved, TRIVIAL_TASKS_STACKS_MAX,
                  "%zu stacks for tasks that each finish before the next starts", carved);
    free(t);
    return 0;
}

EDDY_TEST(task, tasks_that_finish_before_the_next_starts_share_a_few_stacks)
{
    cr_assert_eq(rt_run(trivial_tasks_share_stacks, NULL), 0);
}

/* Every sleeper must park on its timer before the first one wakes. They
 * first start (creating their coroutines, page faults included) and wait at
 * a gate; then the common deadline is set this far ahead, or four times as
 * long as starting them took, whichever is longer, and the gate opens. */
#define SLEEPERS_WINDOW_MS 300

struct sleepers {
    size_t n;
    struct eddy_waitq gate;
    int64_t deadline;
    size_t woke;
    size_t failed;
};

static intptr_t sleep_and_count(void *arg)
{
    struct sleepers *s = arg;
    int rc = eddy_waitq_wait(&s->gate, EDDY_DEADLINE_NEVER);
    if (rc == 0)
        rc = eddy_sleep_until(s->deadline);
    if (rc != 0 || eddy_now_ns() < s->deadline)
        s->failed++;
    s->woke++;
    return rc;
}

static intptr_t sleep_many(void *arg)
{
    struct sleepers *s = arg;
    size_t tasks0, stacks0;
    loop_usage(&tasks0, &stacks0);
    eddy_waitq_init(&s->gate);
    struct eddy_task_opts detached = {.detached = true, .stack_size_bytes = EDDY_STACK_MIN_BYTES};
    int64_t spawn_start = eddy_clock_ns();
    for (size_t i = 0; i < s->n; i++)
        cr_assert_eq(eddy_task_spawn(sleep_and_count, s, &detached, NULL), 0, "spawn %zu", i);
    /* main goes to the back of the run queue: every sleeper starts first. */
    cr_assert_eq(eddy_task_yield(), 0);
    int64_t started = eddy_clock_ns();
    int64_t window = SLEEPERS_WINDOW_MS * EDDY_NS_PER_MS;
    if (window < 4 * (started - spawn_start))
        window = 4 * (started - spawn_start);
    s->deadline = started + window;
    cr_assert_eq(eddy_waitq_wake_all(&s->gate, 0), s->n, "every sleeper waited at the gate");
    cr_assert_eq(eddy_task_yield(), 0);
    cr_assert_eq(s->woke, 0);
    cr_assert_eq(eddy_loop_current()->timers.len, s->n, "every sleeper armed its timer");
    while (s->woke < s->n)
        cr_assert_eq(eddy_sleep_ms(5), 0);
    cr_assert_eq(eddy_task_yield(), 0); /* the last sleeper's stack is reaped */
    size_t tasks, stacks;
    loop_usage(&tasks, &stacks);
    cr_expect_eq(tasks, tasks0, "detached task objects leaked: %zu", tasks - tasks0);
    cr_expect_eq(stacks, stacks0, "stacks leaked: %zu", stacks - stacks0);
    cr_expect_eq(eddy_loop_current()->timers.len, 0);
    return 0;
}

EDDY_TEST(task, hundred_thousand_tasks_sleep_at_once)
{
    struct sleepers s = {.n = rt_scale(100000, 2000)};
    cr_assert_eq(rt_run(sleep_many, &s), 0);
    cr_expect_eq(s.woke, s.n);
    cr_expect_eq(s.failed, 0, "%zu sleeps woke early or failed", s.failed);
}

/* ---- out of stack memory ---------------------------------------------------------------- */

#define BIG_STACK_BYTES ((size_t)64 << 20)
#define ADDRESS_SPACE_HEADROOM ((rlim_t)1 << 30)

static long vm_size_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

static intptr_t run_out_of_stacks(void *arg)
{
    (void)arg;
    /* A default-size stack goes back to the warm cache, for use later. */
    struct eddy_task *t;
    EDDY_CHILD_CHECK(eddy_task_spawn(return_arg, NULL, NULL, &t) == 0);
    EDDY_CHILD_CHECK(eddy_task_join(t, NULL) == 0);
    struct eddy_task *ticker;
    EDDY_CHILD_CHECK(eddy_task_spawn(sleep_ms_arg, (void *)(intptr_t)2, NULL, &ticker) == 0);

    long vm = vm_size_bytes();
    EDDY_CHILD_CHECK(vm > 0);
    struct rlimit lim = {(rlim_t)vm + ADDRESS_SPACE_HEADROOM, RLIM_INFINITY};
    EDDY_CHILD_CHECK(setrlimit(RLIMIT_AS, &lim) == 0);

    struct eddy_task *big[64];
    struct eddy_task_opts opts = {.stack_size_bytes = BIG_STACK_BYTES};
    int n = 0, rc = 0;
    while (n < 64 && (rc = eddy_task_spawn(sleep_ms_arg, (void *)(intptr_t)1, &opts, &big[n])) == 0)
        n++;
    EDDY_CHILD_CHECK(rc == -ENOMEM);
    EDDY_CHILD_CHECK(n < 64);

    /* The loop keeps running: what was spawned runs, and a spawn that can
     * reuse a cached stack still succeeds. */
    struct eddy_task *small;
    EDDY_CHILD_CHECK(eddy_task_spawn(double_it, (void *)(intptr_t)21, NULL, &small) == 0);
    EDDY_CHILD_CHECK(eddy_sleep_ms(1) == 0);
    intptr_t result = -1;
    EDDY_CHILD_CHECK(eddy_task_join(small, &result) == 0 && result == 42);
    EDDY_CHILD_CHECK(eddy_task_join(ticker, &result) == 0 && result == 0);
    for (int i = 0; i < n; i++)
        EDDY_CHILD_CHECK(eddy_task_join(big[i], &result) == 0 && result == 0);
    return n;
}

static void out_of_stack_memory_child(void *arg)
{
    (void)arg;
    intptr_t result = -1;
    EDDY_CHILD_CHECK(eddy_run(run_out_of_stacks, NULL, NULL, &result) == 0);
    fprintf(stderr, "spawned %d tasks with 64 MiB stacks before -ENOMEM\n", (int)result);
}

EDDY_TEST(task, running_out_of_stack_memory_returns_enomem_and_the_loop_keeps_running)
{
    if (eddy_test_under_valgrind())
        cr_skip_test("Valgrind manages the address space itself; RLIMIT_AS does not apply");
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(out_of_stack_memory_child, NULL, &child), 0);
    eddy_assert_child_ok(child);
    cr_expect(strncmp(child.first_line, "spawned ", 8) == 0, "%s", child.first_line);
}

/* ---- a second joiner of a finished task whose joiner has not run yet ---- */

struct late_joiners {
    struct eddy_task *target;
    int first_rc, second_rc;
    intptr_t first_result;
};

static intptr_t finishes_after_a_yield(void *arg)
{
    (void)arg;
    eddy_task_yield();
    return 42;
}

static intptr_t early_joiner(void *arg)
{
    struct late_joiners *j = arg;
    j->first_rc = eddy_task_join(j->target, &j->first_result);
    return 0;
}

static intptr_t late_joiner(void *arg)
{
    struct late_joiners *j = arg;
    /* Runs after the target finished and woke the first joiner, before
     * that joiner ran. */
    eddy_task_yield();
    j->second_rc = eddy_task_join(j->target, NULL);
    return 0;
}

static intptr_t join_race_main(void *arg)
{
    struct late_joiners *j = arg;
    struct eddy_task *a, *b;
    cr_assert_eq(eddy_task_spawn(early_joiner, j, NULL, &a), 0);
    cr_assert_eq(eddy_task_spawn(finishes_after_a_yield, NULL, NULL, &j->target), 0);
    cr_assert_eq(eddy_task_spawn(late_joiner, j, NULL, &b), 0);
    cr_assert_eq(eddy_task_join(a, NULL), 0);
    cr_assert_eq(eddy_task_join(b, NULL), 0);
    return 0;
}

EDDY_TEST(task, a_second_join_of_a_task_already_being_joined_is_ebusy_even_once_it_finished)
{
    struct late_joiners j = {.first_rc = 1, .second_rc = 1};
    rt_run(join_race_main, &j);
    cr_expect_eq(j.first_rc, 0);
    cr_expect_eq(j.first_result, 42);
    cr_expect_eq(j.second_rc, -EBUSY, "%s", eddy_strerror(j.second_rc));
}

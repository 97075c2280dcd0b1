/*
 * tests/reactor/test_loop.c: the loop of reactor/loop.c.
 *
 * Covers eddy_run (the main task's result, the tasks main leaves behind, a
 * stop inside it), eddy_loop_run and eddy_loop_run_until (when they return,
 * -EBUSY inside a task, -EINVAL from a foreign thread), eddy_loop_stop from a
 * task and from another thread (run returns, a later run resumes the
 * suspended tasks), eddy_loop_post from another thread (order, thread,
 * waking a loop blocked in epoll, -EINVAL, -ESHUTDOWN), destroy (it
 * cancels what is left, lets it finish, and drops callbacks not yet run),
 * and fds and timers served in time while tasks keep the run queue busy.
 *
 * Cross-thread tests have "thread" in their names, so that a filter on
 * "thread" (make tsan TEST_ARGS=--filter=...) runs them under ThreadSanitizer.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "tests/reactor/reactor_test.h"

static intptr_t return_arg(void *arg)
{
    return (intptr_t)arg;
}

/* Parks until cancelled (or woken by a byte on the pipe in *arg). */
static intptr_t wait_on_pipe(void *arg)
{
    return rt_read_byte(*(int *)arg);
}

/* ---- eddy_run --------------------------------------------------------------- */

EDDY_TEST(loop, run_returns_the_main_tasks_result)
{
    cr_expect_eq(rt_run(return_arg, (void *)(intptr_t)42), 42);
    cr_expect_eq(rt_run(return_arg, (void *)(intptr_t)-ETIMEDOUT), -ETIMEDOUT);
    /* result may be NULL. */
    cr_expect_eq(eddy_run(return_arg, NULL, NULL, NULL), 0);
    cr_expect_null(eddy_loop_current());
}

static intptr_t spawn_child_and_join(void *arg)
{
    (void)arg;
    struct eddy_task *child;
    int rc = eddy_task_spawn(return_arg, (void *)(intptr_t)7, NULL, &child);
    if (rc < 0)
        return rc;
    intptr_t result = 0;
    rc = eddy_task_join(child, &result);
    return rc < 0 ? rc : result * 6;
}

EDDY_TEST(loop, run_returns_what_main_computed_from_its_children)
{
    cr_expect_eq(rt_run(spawn_child_and_join, NULL), 42);
}

struct leftover {
    int rc;
    bool finished;
};

static intptr_t record_sleep_forever(void *arg)
{
    struct leftover *l = arg;
    l->rc = eddy_sleep_until(EDDY_DEADLINE_NEVER);
    l->finished = true;
    return 0;
}

static intptr_t leave_tasks_behind(void *arg)
{
    struct leftover *l = arg;
    struct eddy_task *joinable;
    struct eddy_task_opts detached = {.detached = true};
    if (eddy_task_spawn(record_sleep_forever, &l[0], NULL, &joinable) < 0 ||
        eddy_task_spawn(record_sleep_forever, &l[1], &detached, NULL) < 0)
        return -1;
    eddy_task_yield(); /* both start and park */
    return 3;
}

EDDY_TEST(loop, run_cancels_the_tasks_main_leaves_behind_and_lets_them_finish)
{
    struct leftover l[2] = {{0, false}, {0, false}};
    cr_expect_eq(rt_run(leave_tasks_behind, l), 3);
    for (int i = 0; i < 2; i++) {
        cr_expect(l[i].finished, "task %d never finished", i);
        cr_expect_eq(l[i].rc, -ECANCELED, "task %d saw %s", i, eddy_strerror(l[i].rc));
    }
}

static intptr_t stop_then_sleep(void *arg)
{
    (void)arg;
    eddy_loop_stop(eddy_loop_current());
    return eddy_sleep_ms(10 * 1000);
}

EDDY_TEST(loop, run_cancels_main_when_a_stop_interrupts_it)
{
    /* eddy_run cannot return with main half done: a stop makes it cancel main. */
    cr_expect_eq(rt_run(stop_then_sleep, NULL), -ECANCELED);
}

/* ---- eddy_loop_run / run_until ---------------------------------------------- */

static intptr_t sleep_then_count(void *arg)
{
    int *count = arg;
    int rc = eddy_sleep_ms(1 + *count % 3);
    (*count)++;
    return rc;
}

static intptr_t current_loop(void *arg)
{
    (void)arg;
    return (intptr_t)eddy_loop_current();
}

EDDY_TEST(loop, loop_run_returns_when_no_tasks_remain)
{
    struct eddy_loop *loop;
    cr_assert_eq(eddy_loop_create(NULL, &loop), 0);
    cr_expect_null(eddy_loop_current(), "creating a loop does not make it current");
    int count = 0;
    struct eddy_task *t[3], *cur;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(eddy_loop_spawn(loop, sleep_then_count, &count, NULL, &t[i]), 0);
    cr_assert_eq(eddy_loop_spawn(loop, current_loop, NULL, NULL, &cur), 0);
    cr_assert_eq(eddy_loop_spawn(loop, sleep_then_count, &count,
                                 &(struct eddy_task_opts){.detached = true}, NULL),
                 0);
    cr_assert_eq(eddy_loop_run(loop), 0);
    cr_expect_eq(count, 4);
    for (int i = 0; i < 3; i++) {
        intptr_t result = -1;
        cr_expect(eddy_task_is_done(t[i]));
        cr_expect_eq(eddy_task_result(t[i], &result), 0);
        cr_expect_eq(result, 0);
    }
    intptr_t seen = 0;
    cr_expect_eq(eddy_task_result(cur, &seen), 0);
    cr_expect_eq((struct eddy_loop *)seen, loop, "eddy_loop_current() inside a task");
    cr_expect_null(eddy_loop_current(), "no current loop after run");
    /* Nothing left to do: a second run returns at once. */
    cr_expect_eq(eddy_loop_run(loop), 0);
    eddy_loop_destroy(loop); /* frees the finished, unjoined tasks */
}

EDDY_TEST(loop, loop_run_of_an_empty_loop_returns_at_once)
{
    struct eddy_loop *loop;
    cr_assert_eq(eddy_loop_create(&(struct eddy_loop_opts){.stack_cache_bytes = 1 << 20}, &loop),
                 0);
    cr_expect_eq(eddy_loop_run(loop), 0);
    eddy_loop_destroy(loop);
    eddy_loop_destroy(NULL); /* harmless */
}

EDDY_TEST(loop, run_until_returns_when_its_task_finishes_and_leaves_others_suspended)
{
    struct eddy_loop *loop, *other;
    cr_assert_eq(eddy_loop_create(NULL, &loop), 0);
    cr_assert_eq(eddy_loop_create(NULL, &other), 0);
    struct leftover l = {0, false};
    int count = 0;
    struct eddy_task *quick, *forever, *foreign;
    cr_assert_eq(eddy_loop_spawn(loop, record_sleep_forever, &l, NULL, &forever), 0);
    cr_assert_eq(eddy_loop_spawn(loop, sleep_then_count, &count, NULL, &quick), 0);
    cr_assert_eq(eddy_loop_spawn(other, return_arg, NULL, NULL, &foreign), 0);

    cr_expect_eq(eddy_loop_run_until(loop, foreign), -EINVAL, "a task of another loop");
    cr_expect_eq(eddy_loop_run_until(loop, NULL), -EINVAL);
    cr_expect_eq(eddy_loop_run_until(loop, quick), 0);
    cr_expect(eddy_task_is_done(quick));
    cr_expect_eq(count, 1);
    cr_expect_not(eddy_task_is_done(forever));
    cr_expect_not(l.finished);

    eddy_loop_destroy(loop);
    cr_expect(l.finished);
    cr_expect_eq(l.rc, -ECANCELED);
    eddy_loop_destroy(other); /* cancels a task that never ran: it still runs */
}

struct nested_run {
    struct eddy_loop *other;
    int same_rc, same_until_rc, other_rc;
};

static intptr_t run_loops_from_inside(void *arg)
{
    struct nested_run *n = arg;
    n->same_rc = eddy_loop_run(eddy_loop_current());
    n->same_until_rc = eddy_loop_run_until(eddy_loop_current(), eddy_task_current());
    n->other_rc = eddy_loop_run(n->other);
    return 0;
}

EDDY_TEST(loop, loop_run_inside_a_task_returns_ebusy)
{
    struct nested_run n = {0};
    cr_assert_eq(eddy_loop_create(NULL, &n.other), 0);
    cr_expect_eq(rt_run(run_loops_from_inside, &n), 0);
    cr_expect_eq(n.same_rc, -EBUSY);
    cr_expect_eq(n.same_until_rc, -EBUSY);
    cr_expect_eq(n.other_rc, -EBUSY, "another loop on the same thread");
    eddy_loop_destroy(n.other);
}

/* ---- stop ------------------------------------------------------------------- */

struct stopper {
    int phase;
    int sleep_rc;
};

static intptr_t stop_and_go_on(void *arg)
{
    struct stopper *s = arg;
    s->phase = 1;
    eddy_loop_stop(eddy_loop_current());
    s->phase = 2; /* stop does not suspend the caller */
    s->sleep_rc = eddy_sleep_ms(1);
    s->phase = 3;
    return 0;
}

static intptr_t tick(void *arg)
{
    int *ticks = arg;
    for (int i = 0; i < 5; i++) {
        int rc = eddy_sleep_ms(1);
        if (rc < 0)
            return rc;
        (*ticks)++;
    }
    return 0;
}

EDDY_TEST(loop, stop_from_a_task_returns_run_and_a_later_run_continues)
{
    struct eddy_loop *loop;
    cr_assert_eq(eddy_loop_create(NULL, &loop), 0);
    struct stopper s = {0, 1};
    int ticks = 0;
    struct eddy_task *stopper, *ticker;
    cr_assert_eq(eddy_loop_spawn(loop, stop_and_go_on, &s, NULL, &stopper), 0);
    cr_assert_eq(eddy_loop_spawn(loop, tick, &ticks, NULL, &ticker), 0);

    cr_assert_eq(eddy_loop_run(loop), 0);
    cr_expect_eq(s.phase, 2, "the stopper runs on to its sleep, then run returns");
    cr_expect_not(eddy_task_is_done(stopper));
    cr_expect_not(eddy_task_is_done(ticker));
    cr_expect_lt(ticks, 5);
    cr_expect_null(eddy_loop_current());

    cr_assert_eq(eddy_loop_run(loop), 0);
    cr_expect_eq(s.phase, 3);
    cr_expect_eq(s.sleep_rc, 0, "the stop did not cancel anything");
    cr_expect_eq(ticks, 5);
    intptr_t result = -1;
    cr_expect_eq(eddy_task_result(ticker, &result), 0);
    cr_expect_eq(result, 0);
    eddy_loop_destroy(loop);
}

struct remote {
    struct eddy_loop *loop;
    pid_t loop_tid;
    int wfd;
    bool saw_epoll; /* written by the thread, read after pthread_join */
    int write_rc;
};

static void *stop_when_blocked(void *arg)
{
    struct remote *r = arg;
    r->saw_epoll = rt_wait_in_epoll(r->loop_tid);
    eddy_loop_stop(r->loop);
    return NULL;
}

static void *write_when_blocked(void *arg)
{
    struct remote *r = arg;
    r->saw_epoll = rt_wait_in_epoll(r->loop_tid);
    r->write_rc = (int)write(r->wfd, "x", 1);
    return NULL;
}

EDDY_TEST(loop, stop_from_another_thread_returns_run_and_a_later_run_continues)
{
    int fds[2];
    rt_pipe(fds);
    struct remote r = {.loop_tid = rt_gettid(), .wfd = fds[1]};
    cr_assert_eq(eddy_loop_create(NULL, &r.loop), 0);
    struct eddy_task *waiter;
    cr_assert_eq(eddy_loop_spawn(r.loop, wait_on_pipe, &fds[0], NULL, &waiter), 0);

    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, stop_when_blocked, &r), 0);
    cr_assert_eq(eddy_loop_run(r.loop), 0);
    pthread_join(thread, NULL);
    cr_expect(r.saw_epoll, "the loop never blocked in epoll");
    cr_expect_not(eddy_task_is_done(waiter), "a stop leaves tasks suspended");

    /* The next run resumes the waiter, which finishes when the byte comes. */
    r.saw_epoll = false;
    cr_assert_eq(pthread_create(&thread, NULL, write_when_blocked, &r), 0);
    cr_assert_eq(eddy_loop_run(r.loop), 0);
    pthread_join(thread, NULL);
    cr_expect(r.saw_epoll);
    cr_expect_eq(r.write_rc, 1);
    intptr_t result = 0;
    cr_expect_eq(eddy_task_result(waiter, &result), 0);
    cr_expect_eq(result, 'x');

    eddy_loop_destroy(r.loop);
    eddy_fd_close(fds[0]);
    close(fds[1]);
}

/* ---- post ------------------------------------------------------------------- */

struct posts {
    struct eddy_loop *loop;
    pthread_t loop_thread;
    struct eddy_task *waiter;
    size_t count;
    size_t ran;
    size_t *order;
    bool wrong_thread, inside_task;
    atomic_int post_failures;
};

struct post_arg {
    struct posts *p;
    size_t i;
};

static void record_post(void *arg)
{
    struct post_arg *a = arg;
    struct posts *p = a->p;
    if (!pthread_equal(pthread_self(), p->loop_thread) || eddy_loop_current() != p->loop)
        p->wrong_thread = true;
    if (eddy_task_current() != NULL)
        p->inside_task = true;
    p->order[p->ran++] = a->i;
    if (a->i == p->count - 1)
        eddy_task_cancel(p->waiter); /* callbacks may cancel tasks */
}

struct poster {
    struct posts *p;
    struct post_arg *args;
};

static void *post_all(void *arg)
{
    struct poster *ps = arg;
    for (size_t i = 0; i < ps->p->count; i++) {
        if (eddy_loop_post(ps->p->loop, record_post, &ps->args[i]) != 0)
            atomic_fetch_add(&ps->p->post_failures, 1);
    }
    return NULL;
}

EDDY_TEST(loop, post_from_another_thread_runs_callbacks_in_order_on_the_loop_thread)
{
    int fds[2];
    rt_pipe(fds);
    struct posts p = {.loop_thread = pthread_self(), .count = rt_scale(10000, 500)};
    p.order = calloc(p.count, sizeof(*p.order));
    struct post_arg *args = calloc(p.count, sizeof(*args));
    cr_assert(p.order && args);
    for (size_t i = 0; i < p.count; i++)
        args[i] = (struct post_arg){&p, i};
    cr_assert_eq(eddy_loop_create(NULL, &p.loop), 0);
    cr_assert_eq(eddy_loop_spawn(p.loop, wait_on_pipe, &fds[0], NULL, &p.waiter), 0);

    struct poster ps = {&p, args};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, post_all, &ps), 0);
    cr_assert_eq(eddy_loop_run(p.loop), 0); /* until the last callback cancels the waiter */
    pthread_join(thread, NULL);

    cr_expect_eq(atomic_load(&p.post_failures), 0);
    cr_expect_eq(p.ran, p.count);
    cr_expect_not(p.wrong_thread, "a callback ran off the loop's thread");
    cr_expect_not(p.inside_task, "a callback ran inside a task");
    for (size_t i = 0; i < p.ran; i++)
        cr_assert_eq(p.order[i], i, "callback %zu ran at position %zu", p.order[i], i);
    intptr_t result = 0;
    cr_expect_eq(eddy_task_result(p.waiter, &result), 0);
    cr_expect_eq(result, -ECANCELED);

    eddy_loop_destroy(p.loop);
    eddy_fd_close(fds[0]);
    close(fds[1]);
    free(p.order);
    free(args);
}

struct wake {
    struct eddy_loop *loop;
    struct eddy_task *waiter;
    pid_t loop_tid;
    bool saw_epoll;
    int post_rc;
    int64_t posted_ns;
    int64_t ran_ns;
    bool ran_on_loop_thread;
    pthread_t loop_thread;
};

static void cancel_waiter(void *arg)
{
    struct wake *w = arg;
    w->ran_ns = eddy_clock_ns();
    w->ran_on_loop_thread = pthread_equal(pthread_self(), w->loop_thread);
    eddy_task_cancel(w->waiter);
}

static void *post_when_blocked(void *arg)
{
    struct wake *w = arg;
    w->saw_epoll = rt_wait_in_epoll(w->loop_tid);
    w->posted_ns = eddy_clock_ns();
    w->post_rc = eddy_loop_post(w->loop, cancel_waiter, w);
    return NULL;
}

EDDY_TEST(loop, post_from_another_thread_wakes_a_loop_blocked_in_epoll)
{
    int fds[2];
    rt_pipe(fds);
    struct wake w = {.loop_tid = rt_gettid(), .loop_thread = pthread_self(), .post_rc = 1};
    cr_assert_eq(eddy_loop_create(NULL, &w.loop), 0);
    cr_assert_eq(eddy_loop_spawn(w.loop, wait_on_pipe, &fds[0], NULL, &w.waiter), 0);

    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, post_when_blocked, &w), 0);
    /* Nothing but the post can end this run: no timer, no data on the pipe. */
    cr_assert_eq(eddy_loop_run(w.loop), 0);
    pthread_join(thread, NULL);

    cr_expect(w.saw_epoll, "the loop never blocked in epoll");
    cr_expect_eq(w.post_rc, 0);
    cr_expect(w.ran_on_loop_thread);
    cr_expect_leq(w.ran_ns - w.posted_ns, rt_late_tolerance_ns(),
                  "the callback ran %lld ns after the post", (long long)(w.ran_ns - w.posted_ns));
    intptr_t result = 0;
    cr_expect_eq(eddy_task_result(w.waiter, &result), 0);
    cr_expect_eq(result, -ECANCELED);
    eddy_loop_destroy(w.loop);
    eddy_fd_close(fds[0]);
    close(fds[1]);
}

static void set_flag(void *arg)
{
    *(bool *)arg = true;
}

EDDY_TEST(loop, post_rejects_a_null_loop_or_function)
{
    struct eddy_loop *loop;
    cr_assert_eq(eddy_loop_create(NULL, &loop), 0);
    bool ran = false;
    cr_expect_eq(eddy_loop_post(NULL, set_flag, &ran), -EINVAL);
    cr_expect_eq(eddy_loop_post(loop, NULL, &ran), -EINVAL);
    eddy_loop_destroy(loop);
    cr_expect_not(ran);
}

EDDY_TEST(loop, post_from_the_loop_thread_runs_at_the_next_run)
{
    struct eddy_loop *loop;
    cr_assert_eq(eddy_loop_create(NULL, &loop), 0);
    bool ran = false;
    int count = 0;
    struct eddy_task *t;
    cr_assert_eq(eddy_loop_spawn(loop, sleep_then_count, &count, NULL, &t), 0);
    cr_assert_eq(eddy_loop_post(loop, set_flag, &ran), 0);
    cr_assert_eq(eddy_loop_run(loop), 0);
    cr_expect(ran);
    eddy_loop_destroy(loop);
}

struct chain {
    struct eddy_loop *loop;
    char log[4];
    int n;
    int post_rc;
};

static void chain_second(void *arg)
{
    struct chain *c = arg;
    c->log[c->n++] = '2';
    eddy_loop_stop(c->loop); /* a callback may stop the loop */
}

static void chain_first(void *arg)
{
    struct chain *c = arg;
    c->log[c->n++] = '1';
    c->post_rc = eddy_loop_post(c->loop, chain_second, c);
}

EDDY_TEST(loop, a_callback_may_post_another_and_stop_the_loop)
{
    int fds[2];
    rt_pipe(fds);
    struct chain c = {.post_rc = 1};
    cr_assert_eq(eddy_loop_create(NULL, &c.loop), 0);
    struct eddy_task *waiter;
    cr_assert_eq(eddy_loop_spawn(c.loop, wait_on_pipe, &fds[0], NULL, &waiter), 0);
    cr_assert_eq(eddy_loop_post(c.loop, chain_first, &c), 0);
    /* Only the stop of the second callback can end this run. */
    cr_assert_eq(eddy_loop_run(c.loop), 0);
    cr_expect_eq(c.post_rc, 0);
    cr_expect_str_eq(c.log, "12");
    cr_expect_not(eddy_task_is_done(waiter));
    eddy_loop_destroy(c.loop);
    close(fds[0]);
    close(fds[1]);
}

struct late_post {
    int sleep_rc;
    int post_rc;
    bool callback_ran;
};

static intptr_t post_after_cancel(void *arg)
{
    struct late_post *lp = arg;
    lp->sleep_rc = eddy_sleep_until(EDDY_DEADLINE_NEVER);
    lp->post_rc = eddy_loop_post(eddy_loop_current(), set_flag, &lp->callback_ran);
    return 0;
}

EDDY_TEST(loop, post_while_the_loop_is_being_destroyed_returns_eshutdown)
{
    struct eddy_loop *loop;
    cr_assert_eq(eddy_loop_create(NULL, &loop), 0);
    struct late_post lp = {0, 1, false};
    struct eddy_task *t, *quick;
    cr_assert_eq(eddy_loop_spawn(loop, post_after_cancel, &lp, NULL, &t), 0);
    cr_assert_eq(eddy_loop_spawn(loop, return_arg, NULL, NULL, &quick), 0);
    cr_assert_eq(eddy_loop_run_until(loop, quick), 0);
    /* destroy cancels t: its sleep returns, then it posts into a closing loop. */
    eddy_loop_destroy(loop);
    cr_expect_eq(lp.sleep_rc, -ECANCELED);
    cr_expect_eq(lp.post_rc, -ESHUTDOWN);
    cr_expect_not(lp.callback_ran);
}

EDDY_TEST(loop, destroy_drops_callbacks_posted_but_not_yet_run)
{
    struct eddy_loop *loop;
    cr_assert_eq(eddy_loop_create(NULL, &loop), 0);
    bool ran = false;
    cr_assert_eq(eddy_loop_post(loop, set_flag, &ran), 0);
    eddy_loop_destroy(loop);
    cr_expect_not(ran);
}

/* Sleeps until cancelled, then blocks once more for its cleanup. */
static intptr_t sleep_then_clean_up(void *arg)
{
    struct leftover *l = arg;
    l->rc = eddy_sleep_until(EDDY_DEADLINE_NEVER);
    eddy_task_uncancel();
    if (eddy_sleep_ms(1) == 0)
        l->finished = true;
    return 0;
}

EDDY_TEST(loop, destroy_drops_posted_callbacks_even_while_it_finishes_tasks)
{
    /* destroy runs the loop (and polls, since the cleanup blocks) to finish
     * the tasks it cancels; a callback posted before destroy must still not
     * run (eddy/reactor.h: "Callbacks posted but not yet run are dropped",
     * and eddy_loop_post: "or the loop is destroyed, and then fn never runs"). */
    struct eddy_loop *loop;
    cr_assert_eq(eddy_loop_create(NULL, &loop), 0);
    struct leftover l = {0, false};
    struct eddy_task *t, *quick;
    cr_assert_eq(eddy_loop_spawn(loop, sleep_then_clean_up, &l, NULL, &t), 0);
    cr_assert_eq(eddy_loop_spawn(loop, return_arg, NULL, NULL, &quick), 0);
    cr_assert_eq(eddy_loop_run_until(loop, quick), 0);
    bool ran = false;
    cr_assert_eq(eddy_loop_post(loop, set_flag, &ran), 0);
    eddy_loop_destroy(loop);
    cr_expect(l.finished);
    cr_expect_not(ran, "a callback posted before destroy ran during destroy");
}

/* A thread keeps posting into a loop until destroy makes it fail; the loop
 * cannot finish destroying before the thread has seen -ESHUTDOWN, because a
 * task blocks on a pipe the thread writes only then. */
struct shutdown_race {
    struct eddy_loop *loop;
    int release_wfd;
    int last_rc;
    long posted;
};

static void nothing(void *arg)
{
    (void)arg;
}

static void *post_until_refused(void *arg)
{
    struct shutdown_race *s = arg;
    int rc;
    while ((rc = eddy_loop_post(s->loop, nothing, NULL)) == 0)
        s->posted++;
    s->last_rc = rc;
    if (write(s->release_wfd, "r", 1) != 1)
        abort(); /* the loop would wait forever */
    return NULL;
}

static intptr_t block_destroy_until_released(void *arg)
{
    int rfd = *(int *)arg;
    int rc = eddy_sleep_until(EDDY_DEADLINE_NEVER);
    eddy_task_uncancel(); /* cleanup that must block: uncancel first */
    int byte = rt_read_byte(rfd);
    return rc == -ECANCELED && byte == 'r' ? 0 : -1;
}

EDDY_TEST(loop, posts_from_another_thread_during_destroy_fail_cleanly)
{
    int fds[2];
    rt_pipe(fds);
    struct shutdown_race s = {.release_wfd = fds[1]};
    cr_assert_eq(eddy_loop_create(NULL, &s.loop), 0);
    struct eddy_task *blocker, *quick;
    cr_assert_eq(eddy_loop_spawn(s.loop, block_destroy_until_released, &fds[0], NULL, &blocker), 0);
    cr_assert_eq(eddy_loop_spawn(s.loop, return_arg, NULL, NULL, &quick), 0);
    cr_assert_eq(eddy_loop_run_until(s.loop, quick), 0);
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, post_until_refused, &s), 0);
    eddy_loop_destroy(s.loop);
    pthread_join(thread, NULL);
    cr_expect_eq(s.last_rc, -ESHUTDOWN);
    close(fds[0]); /* destroy removed it from epoll along with the loop */
    close(fds[1]);
}

/* ---- thread rules ------------------------------------------------------------ */

struct foreign {
    struct eddy_loop *loop;
    struct eddy_task *task;
    int run_rc, until_rc, spawn_rc;
};

static void *use_from_foreign_thread(void *arg)
{
    struct foreign *f = arg;
    struct eddy_task *t = NULL;
    f->run_rc = eddy_loop_run(f->loop);
    f->until_rc = eddy_loop_run_until(f->loop, f->task);
    f->spawn_rc = eddy_loop_spawn(f->loop, return_arg, NULL, NULL, &t);
    return NULL;
}

EDDY_TEST(loop, run_from_another_thread_returns_einval)
{
    struct foreign f = {0};
    cr_assert_eq(eddy_loop_create(NULL, &f.loop), 0);
    cr_assert_eq(eddy_loop_spawn(f.loop, return_arg, NULL, NULL, &f.task), 0);
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, use_from_foreign_thread, &f), 0);
    pthread_join(thread, NULL);
    cr_expect_eq(f.run_rc, -EINVAL);
    cr_expect_eq(f.until_rc, -EINVAL);
    cr_expect_eq(f.spawn_rc, -EINVAL);
    cr_expect_not(eddy_task_is_done(f.task), "the foreign thread ran nothing");
    cr_expect_eq(eddy_loop_run(f.loop), 0); /* the owner still can */
    cr_expect(eddy_task_is_done(f.task));
    eddy_loop_destroy(f.loop);
}

/* ---- destroy ------------------------------------------------------------------ */

struct victim {
    int rc;
    bool finished;
    bool started;
};

struct victims {
    struct victim sleeper, reader, joiner, late;
    struct eddy_task *sleeper_task;
    int rfd;
};

static intptr_t victim_sleep(void *arg)
{
    struct victims *v = arg;
    v->sleeper.started = true;
    v->sleeper.rc = eddy_sleep_ms(60 * 1000);
    v->sleeper.finished = true;
    return 0;
}

static intptr_t victim_read(void *arg)
{
    struct victims *v = arg;
    v->reader.started = true;
    v->reader.rc = rt_read_byte(v->rfd);
    v->reader.finished = true;
    return 0;
}

static intptr_t victim_join(void *arg)
{
    struct victims *v = arg;
    v->joiner.started = true;
    v->joiner.rc = eddy_task_join(v->sleeper_task, NULL);
    v->joiner.finished = true;
    return 0;
}

static intptr_t victim_late(void *arg)
{
    struct victims *v = arg;
    v->late.started = true;
    v->late.rc = eddy_task_yield();
    v->late.finished = true;
    return 0;
}

EDDY_TEST(loop, destroy_cancels_remaining_tasks_and_they_finish)
{
    int fds[2];
    rt_pipe(fds);
    struct victims v = {.rfd = fds[0]};
    struct eddy_loop *loop;
    cr_assert_eq(eddy_loop_create(NULL, &loop), 0);
    struct eddy_task *t, *quick;
    cr_assert_eq(eddy_loop_spawn(loop, victim_sleep, &v, NULL, &v.sleeper_task), 0);
    cr_assert_eq(eddy_loop_spawn(loop, victim_read, &v, NULL, &t), 0);
    cr_assert_eq(eddy_loop_spawn(loop, victim_join, &v, NULL, &t), 0);
    cr_assert_eq(eddy_loop_spawn(loop, return_arg, NULL, NULL, &quick), 0);
    cr_assert_eq(eddy_loop_run_until(loop, quick), 0);
    /* Spawned after the run: it has never started when destroy comes. */
    cr_assert_eq(eddy_loop_spawn(loop, victim_late, &v, NULL, &t), 0);
    cr_assert_not(v.late.started);

    eddy_loop_destroy(loop);
    struct victim *all[] = {&v.sleeper, &v.reader, &v.joiner, &v.late};
    const char *names[] = {"sleep", "fd wait", "join", "never started"};
    for (int i = 0; i < 4; i++) {
        cr_expect(all[i]->started && all[i]->finished, "%s: did not finish", names[i]);
        cr_expect_eq(all[i]->rc, -ECANCELED, "%s: saw %s", names[i], eddy_strerror(all[i]->rc));
    }
    close(fds[0]);
    close(fds[1]);
}

EDDY_TEST(loop, destroy_of_a_loop_that_never_ran_runs_its_tasks_cancelled)
{
    struct eddy_loop *loop;
    cr_assert_eq(eddy_loop_create(NULL, &loop), 0);
    struct leftover l = {0, false};
    struct eddy_task *t;
    cr_assert_eq(eddy_loop_spawn(loop, record_sleep_forever, &l, NULL, &t), 0);
    eddy_loop_destroy(loop);
    cr_expect(l.finished);
    cr_expect_eq(l.rc, -ECANCELED);
}

/* ---- polling while tasks stay runnable ----------------------------------------
 * Tasks that keep yielding never empty the run queue; the loop then polls
 * only every POLL_INTERVAL_NS (20 us) of running, and fires timers after
 * every budget of dispatches. A ready fd and a due sleeper must still be
 * served within the tolerance. The yielders give up after BUSY_LIMIT_MS,
 * so a loop that never polled fails the test instead of hanging it.
 */
#define BUSY_YIELDERS 2
#define BUSY_LIMIT_MS 3000
#define BUSY_SLEEP_MS 5
#define BUSY_WARMUP_YIELDS 2000

struct busy {
    int fds[2];
    bool stop;
    int64_t limit;
    int64_t ready_ns; /* when the byte was written or the sleep was due */
    int64_t woke_ns;
    int rc;
    uint64_t yields;
};

static intptr_t yield_until_stopped(void *arg)
{
    struct busy *b = arg;
    while (!b->stop && eddy_clock_ns() < b->limit) {
        int rc = eddy_task_yield();
        if (rc < 0)
            return rc;
        b->yields++;
    }
    return 0;
}

static intptr_t read_and_stop(void *arg)
{
    struct busy *b = arg;
    b->rc = rt_read_byte(b->fds[0]);
    b->woke_ns = eddy_clock_ns();
    b->stop = true;
    return 0;
}

static intptr_t sleep_and_stop(void *arg)
{
    struct busy *b = arg;
    b->ready_ns = eddy_now_ns() + BUSY_SLEEP_MS * EDDY_NS_PER_MS;
    b->rc = eddy_sleep_ms(BUSY_SLEEP_MS);
    b->woke_ns = eddy_clock_ns();
    b->stop = true;
    return 0;
}

/* Runs waiter with BUSY_YIELDERS yielding tasks around it; with fd set, a
 * byte is written once everything has started. */
static void run_busy(struct busy *b, eddy_task_fn *waiter, bool fd)
{
    b->limit = eddy_clock_ns() + BUSY_LIMIT_MS * EDDY_NS_PER_MS;
    struct eddy_task *w, *y[BUSY_YIELDERS];
    cr_assert_eq(eddy_task_spawn(waiter, b, NULL, &w), 0);
    for (int i = 0; i < BUSY_YIELDERS; i++)
        cr_assert_eq(eddy_task_spawn(yield_until_stopped, b, NULL, &y[i]), 0);
    /* Everyone starts and the waiter parks; the yielders run through a few
     * budgets of dispatches, so that the loop has been busy for a while. */
    while (b->yields < BUSY_WARMUP_YIELDS && eddy_clock_ns() < b->limit)
        cr_assert_eq(eddy_task_yield(), 0);
    if (fd) {
        b->ready_ns = eddy_clock_ns();
        cr_assert_eq(write(b->fds[1], "x", 1), 1);
    }
    for (int i = 0; i < BUSY_YIELDERS; i++)
        cr_assert_eq(eddy_task_join(y[i], NULL), 0);
    cr_assert_eq(eddy_task_join(w, NULL), 0);
}

static intptr_t fd_while_busy(void *arg)
{
    struct busy *b = arg;
    rt_pipe(b->fds);
    run_busy(b, read_and_stop, true);
    close(b->fds[0]);
    close(b->fds[1]);
    return 0;
}

EDDY_TEST(loop, an_fd_ready_while_tasks_keep_yielding_wakes_its_waiter_in_time)
{
    struct busy b = {0};
    cr_assert_eq(rt_run(fd_while_busy, &b), 0);
    cr_expect_eq(b.rc, 'x');
    cr_expect_gt(b.yields, 0, "the yielders ran");
    cr_expect_leq(b.woke_ns - b.ready_ns, rt_late_tolerance_ns(), "woke %.3f ms after the write",
                  (double)(b.woke_ns - b.ready_ns) / EDDY_NS_PER_MS);
}

static intptr_t sleep_while_busy(void *arg)
{
    run_busy(arg, sleep_and_stop, false);
    return 0;
}

EDDY_TEST(loop, a_sleeper_wakes_on_time_while_tasks_keep_yielding)
{
    struct busy b = {0};
    cr_assert_eq(rt_run(sleep_while_busy, &b), 0);
    cr_expect_eq(b.rc, 0);
    cr_expect_gt(b.yields, 0, "the yielders ran");
    cr_expect_geq(b.woke_ns, b.ready_ns, "never early");
    cr_expect_leq(b.woke_ns - b.ready_ns, rt_late_tolerance_ns(), "woke %.3f ms late",
                  (double)(b.woke_ns - b.ready_ns) / EDDY_NS_PER_MS);
}

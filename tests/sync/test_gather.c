/*
 * tests/sync/test_gather.c: eddy_gather (sync/gather.c).
 *
 * Covers an empty gather (0 at once), results in spawn order whatever the
 * completion order, EDDY_GATHER_ALL keeping every result when some fail,
 * EDDY_GATHER_FAIL_FAST cancelling the rest and returning the first failure
 * in completion order, cancellation of the gathering task (children are
 * cancelled and waited for), an expired timeout scope (children cancelled
 * and left to finish on their own, nothing leaks), a spawn that fails
 * half-way (-ENOMEM under an address-space limit: the children already
 * spawned are cancelled and waited for), bad arguments, and 10,000 tasks.
 * The children are detached tasks, so the leak checks count the loop's
 * task objects (reactor/internal.h) before and after.
 */
#include <sys/resource.h>

#include "reactor/internal.h"
#include "tests/sync/sync_test.h"

static size_t live_task_objects(void)
{
    return eddy_obj_slab_live(&eddy_loop_current()->task_slab);
}

struct job {
    int64_t delay_ms;
    intptr_t result;
    struct st_log *log;
    int id;
    bool finished;
};

static intptr_t run_job(void *arg)
{
    struct job *j = arg;
    if (j->delay_ms > 0) {
        int rc = eddy_sleep_ms(j->delay_ms);
        if (rc < 0)
            return rc;
    }
    if (j->log)
        st_log_add(j->log, j->id);
    j->finished = true;
    return j->result;
}

struct setup {
    struct job jobs[8];
    struct eddy_call calls[8];
    intptr_t results[8];
    struct st_log log;
    size_t n;
    int rc;
    int64_t elapsed_ns;
};

static void prepare(struct setup *s, size_t n, const int64_t *delays, const intptr_t *res)
{
    memset(s, 0, sizeof(*s));
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        s->jobs[i] = (struct job){delays[i], res[i], &s->log, (int)i, false};
        s->calls[i] = (struct eddy_call){run_job, &s->jobs[i]};
        s->results[i] = INTPTR_MIN;
    }
}

static intptr_t gather_all(void *arg)
{
    struct setup *s = arg;
    int64_t t0 = eddy_clock_ns();
    s->rc = eddy_gather(s->calls, s->n, s->results, EDDY_GATHER_ALL);
    s->elapsed_ns = eddy_clock_ns() - t0;
    return 0;
}

static intptr_t gather_fail_fast(void *arg)
{
    struct setup *s = arg;
    int64_t t0 = eddy_clock_ns();
    s->rc = eddy_gather(s->calls, s->n, s->results, EDDY_GATHER_FAIL_FAST);
    s->elapsed_ns = eddy_clock_ns() - t0;
    return 0;
}

static intptr_t empty_and_bad(void *arg)
{
    (void)arg;
    intptr_t r;
    struct eddy_call c = {run_job, NULL};
    cr_expect_eq(eddy_gather(NULL, 0, NULL, EDDY_GATHER_ALL), 0, "empty: 0 at once");
    cr_expect_eq(eddy_gather(&c, 1, &r, (enum eddy_gather_mode)9), -EINVAL);
    cr_expect_eq(eddy_gather(&c, 1, NULL, EDDY_GATHER_ALL), -EINVAL);
    return 0;
}

EDDY_TEST(gather, an_empty_gather_returns_zero_at_once_and_bad_input_is_einval)
{
    cr_assert_eq(rt_run(empty_and_bad, NULL), 0);
    struct eddy_call c = {run_job, NULL};
    intptr_t r;
    cr_expect_eq(eddy_gather(&c, 1, &r, EDDY_GATHER_ALL), -EINVAL, "outside a task");
}

EDDY_TEST(gather, results_come_in_spawn_order_whatever_the_completion_order)
{
    static struct setup s;
    prepare(&s, 3, (int64_t[]){30, 10, 20}, (intptr_t[]){1, 2, 3});
    cr_assert_eq(rt_run(gather_all, &s), 0);
    cr_expect_eq(s.rc, 0);
    cr_expect_eq(s.results[0], 1);
    cr_expect_eq(s.results[1], 2);
    cr_expect_eq(s.results[2], 3);
    cr_expect_eq(s.log.n, 3);
    cr_expect_eq(s.log.v[0], 1, "completion order B, C, A");
    cr_expect_eq(s.log.v[1], 2);
    cr_expect_eq(s.log.v[2], 0);
    cr_expect_lt(s.elapsed_ns, (30 + 100) * EDDY_NS_PER_MS + rt_late_tolerance_ns(),
                 "concurrent, not 60 ms");
}

EDDY_TEST(gather, all_mode_keeps_every_result_when_some_fail)
{
    static struct setup s;
    prepare(&s, 4, (int64_t[]){5, 1, 3, 0}, (intptr_t[]){10, -EIO, 30, -EPROTO});
    cr_assert_eq(rt_run(gather_all, &s), 0);
    cr_expect_eq(s.rc, 0);
    cr_expect_eq(s.results[0], 10);
    cr_expect_eq(s.results[1], -EIO);
    cr_expect_eq(s.results[2], 30);
    cr_expect_eq(s.results[3], -EPROTO);
}

EDDY_TEST(gather, fail_fast_cancels_the_rest_and_returns_the_first_failure)
{
    static struct setup s;
    /* Job 2 fails first (at 5 ms), job 1 would fail later, job 0 sleeps. */
    prepare(&s, 3, (int64_t[]){10000, 40, 5}, (intptr_t[]){1, -EIO, -EPROTO});
    cr_assert_eq(rt_run(gather_fail_fast, &s), 0);
    cr_expect_eq(s.rc, -EPROTO);
    cr_expect_eq(s.results[0], -ECANCELED);
    cr_expect_eq(s.results[1], -ECANCELED);
    cr_expect_eq(s.results[2], -EPROTO);
    cr_expect_lt(s.elapsed_ns, 5 * EDDY_NS_PER_MS + rt_late_tolerance_ns());
}

struct outer {
    struct setup s;
    struct eddy_task *gatherer;
    int after_rc;
    int scope_rc;
};

static intptr_t gather_then_block(void *arg)
{
    struct outer *o = arg;
    o->s.rc = eddy_gather(o->s.calls, o->s.n, o->s.results, EDDY_GATHER_ALL);
    o->after_rc = eddy_task_yield();
    return 0;
}

static intptr_t cancel_gatherer(void *arg)
{
    struct outer *o = arg;
    o->gatherer = st_spawn(gather_then_block, o);
    cr_assert_eq(eddy_sleep_ms(5), 0);
    cr_assert_eq(eddy_task_cancel(o->gatherer), 0);
    st_join(o->gatherer);
    return 0;
}

EDDY_TEST(gather, cancelling_the_gatherer_cancels_and_waits_for_every_child)
{
    static struct outer o;
    prepare(&o.s, 3, (int64_t[]){10000, 1, 10000}, (intptr_t[]){1, 2, 3});
    cr_assert_eq(rt_run(cancel_gatherer, &o), 0);
    cr_expect_eq(o.s.rc, -ECANCELED);
    cr_expect_eq(o.s.results[0], -ECANCELED);
    cr_expect_eq(o.s.results[1], 2);
    cr_expect_eq(o.s.results[2], -ECANCELED);
    cr_expect_eq(o.after_rc, -ECANCELED, "the cancellation is restored afterwards");
}

static intptr_t gather_in_scope(void *arg)
{
    struct outer *o = arg;
    size_t objects = live_task_objects();
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, 5 * EDDY_NS_PER_MS);
    o->s.rc = eddy_gather(o->s.calls, o->s.n, o->s.results, EDDY_GATHER_ALL);
    o->scope_rc = eddy_timeout_exit(&scope);
    /* The abandoned children finish on their own, cancelled. */
    for (int i = 0; i < 10 && live_task_objects() > objects; i++)
        eddy_task_yield();
    cr_expect_eq(live_task_objects(), objects, "the abandoned children were freed");
    return 0;
}

EDDY_TEST(gather, an_expired_scope_cancels_the_children_and_returns_etimedout)
{
    static struct outer o;
    prepare(&o.s, 3, (int64_t[]){10000, 1, 10000}, (intptr_t[]){1, 2, 3});
    cr_assert_eq(rt_run(gather_in_scope, &o), 0);
    cr_expect_eq(o.s.rc, -ETIMEDOUT);
    cr_expect_eq(o.scope_rc, -ETIMEDOUT);
    cr_expect_eq(o.s.log.n, 1, "only the 1 ms job finished normally");
    cr_expect_eq(o.s.results[0], INTPTR_MIN, "results is not written after the return");
    cr_expect_eq(o.s.results[2], INTPTR_MIN, "results is not written after the return");
}

/* ---- a spawn that fails half-way --------------------------------------------- */

/* Room for what the child maps besides the children's stack reservations
 * (the state, the task objects, the sanitizers' own mappings); the
 * reservations of 100,000 default stacks need about 6.5 GiB. */
#define SPAWN_FAIL_HEADROOM ((rlim_t)256 << 20)
#define SPAWN_FAIL_TASKS 100000

static long vm_size_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "re");
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

struct spawn_fail {
    size_t started;
    size_t cancelled;
};

static intptr_t sleep_until_cancelled(void *arg)
{
    struct spawn_fail *f = arg;
    f->started++;
    int rc = eddy_sleep_ms(3600 * 1000);
    if (rc == -ECANCELED)
        f->cancelled++;
    return rc;
}

static intptr_t gather_until_enomem(void *arg)
{
    (void)arg;
    struct spawn_fail f = {0};
    struct eddy_call *calls = calloc(SPAWN_FAIL_TASKS, sizeof(*calls));
    intptr_t *results = calloc(SPAWN_FAIL_TASKS, sizeof(*results));
    EDDY_CHILD_CHECK(calls && results);
    for (size_t i = 0; i < SPAWN_FAIL_TASKS; i++) {
        calls[i] = (struct eddy_call){sleep_until_cancelled, &f};
        results[i] = INTPTR_MIN;
    }
    size_t objects = live_task_objects();
    long vm = vm_size_bytes();
    EDDY_CHILD_CHECK(vm > 0);
    struct rlimit lim = {(rlim_t)vm + SPAWN_FAIL_HEADROOM, RLIM_INFINITY};
    EDDY_CHILD_CHECK(setrlimit(RLIMIT_AS, &lim) == 0);
    int rc = eddy_gather(calls, SPAWN_FAIL_TASKS, results, EDDY_GATHER_ALL);
    EDDY_CHILD_CHECK(rc == -ENOMEM);
    EDDY_CHILD_CHECK(f.started > 0 && f.started < SPAWN_FAIL_TASKS);
    EDDY_CHILD_CHECK(f.cancelled == f.started);
    for (size_t i = 0; i < SPAWN_FAIL_TASKS; i++)
        EDDY_CHILD_CHECK(results[i] == (i < f.started ? -ECANCELED : INTPTR_MIN));
    EDDY_CHILD_CHECK(eddy_task_yield() == 0); /* the last child's leftovers go */
    EDDY_CHILD_CHECK(live_task_objects() == objects);
    fprintf(stderr, "%zu children spawned, cancelled and waited for\n", f.started);
    free(calls);
    free(results);
    return 0;
}

static void spawn_fail_child(void *arg)
{
    (void)arg;
    intptr_t result = -1;
    EDDY_CHILD_CHECK(eddy_run(gather_until_enomem, NULL, NULL, &result) == 0 && result == 0);
}

EDDY_TEST(gather, a_spawn_that_fails_cancels_and_waits_for_the_children_already_spawned)
{
    if (eddy_test_under_valgrind())
        cr_skip_test("Valgrind manages the address space itself; RLIMIT_AS does not apply");
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(spawn_fail_child, NULL, &child), 0);
    eddy_assert_child_ok(child);
    cr_expect(strstr(child.first_line, "waited for") != NULL, "%s", child.first_line);
}

static intptr_t trivial(void *arg)
{
    return (intptr_t)arg;
}

static intptr_t ten_thousand(void *arg)
{
    size_t n = *(size_t *)arg;
    struct eddy_call *calls = calloc(n, sizeof(*calls));
    intptr_t *results = calloc(n, sizeof(*results));
    for (size_t i = 0; i < n; i++)
        calls[i] = (struct eddy_call){trivial, (void *)(intptr_t)i};
    size_t objects = live_task_objects();
    cr_assert_eq(eddy_gather(calls, n, results, EDDY_GATHER_FAIL_FAST), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(results[i], (intptr_t)i);
    cr_assert_eq(eddy_task_yield(), 0); /* the last child's leftovers go */
    cr_expect_eq(live_task_objects(), objects, "every child's task object was freed");
    free(calls);
    free(results);
    return 0;
}

EDDY_TEST(gather, ten_thousand_tasks)
{
    size_t n = rt_scale(10000, 1000);
    cr_assert_eq(rt_run(ten_thousand, &n), 0);
}

/* ---- as_completed ---------------------------------------------------------- */

struct ac_case {
    struct setup s;
    size_t order[8];
    intptr_t values[8];
    int count;
    int end_rc;
    int timeout_rc;
    int stop_rc;
};

static intptr_t iterate(void *arg)
{
    struct ac_case *c = arg;
    struct eddy_as_completed *ac;
    cr_assert_eq(eddy_as_completed_start(c->s.calls, c->s.n, &ac), 0);
    cr_expect_eq(eddy_as_completed_next(ac, NULL, NULL, st_in_ms(0)), -ETIMEDOUT,
                 "nothing finished yet");
    size_t i;
    intptr_t v;
    int rc;
    while ((rc = eddy_as_completed_next(ac, &i, &v, EDDY_DEADLINE_NEVER)) > 0) {
        c->order[c->count] = i;
        c->values[c->count++] = v;
    }
    c->end_rc = rc;
    cr_expect_eq(eddy_as_completed_next(ac, &i, &v, EDDY_DEADLINE_NEVER), 0, "still exhausted");
    c->stop_rc = eddy_as_completed_stop(ac);
    return 0;
}

EDDY_TEST(as_completed, hands_out_results_in_completion_order)
{
    static struct ac_case c;
    memset(&c, 0, sizeof(c));
    prepare(&c.s, 3, (int64_t[]){30, 10, 20}, (intptr_t[]){'A', 'B', 'C'});
    cr_assert_eq(rt_run(iterate, &c), 0);
    cr_expect_eq(c.count, 3);
    cr_expect_eq(c.end_rc, 0);
    cr_expect_eq(c.stop_rc, 0);
    cr_expect_eq(c.order[0], 1);
    cr_expect_eq(c.order[1], 2);
    cr_expect_eq(c.order[2], 0);
    cr_expect_eq(c.values[0], 'B');
    cr_expect_eq(c.values[1], 'C');
    cr_expect_eq(c.values[2], 'A');
}

static intptr_t first_completed_then_stop(void *arg)
{
    struct ac_case *c = arg;
    struct eddy_as_completed *ac;
    cr_assert_eq(eddy_as_completed_start(c->s.calls, c->s.n, &ac), 0);
    size_t i;
    cr_expect_eq(eddy_as_completed_next(ac, &i, NULL, st_in_ms(1000)), 1);
    cr_expect_eq(i, 1, "asyncio.wait FIRST_COMPLETED");
    c->timeout_rc = eddy_as_completed_next(ac, &i, NULL, st_in_ms(5));
    c->stop_rc = eddy_as_completed_stop(ac);
    return 0;
}

EDDY_TEST(as_completed, a_deadline_ends_next_and_stop_cancels_the_rest)
{
    static struct ac_case c;
    memset(&c, 0, sizeof(c));
    prepare(&c.s, 3, (int64_t[]){10000, 1, 10000}, (intptr_t[]){1, 2, 3});
    cr_assert_eq(rt_run(first_completed_then_stop, &c), 0);
    cr_expect_eq(c.timeout_rc, -ETIMEDOUT);
    cr_expect_eq(c.stop_rc, 0);
    cr_expect_eq(c.s.log.n, 1, "the others were cancelled");
}

static intptr_t empty_set(void *arg)
{
    (void)arg;
    struct eddy_as_completed *ac;
    cr_assert_eq(eddy_as_completed_start(NULL, 0, &ac), 0);
    cr_expect_eq(eddy_as_completed_next(ac, NULL, NULL, EDDY_DEADLINE_NEVER), 0);
    cr_expect_eq(eddy_as_completed_stop(ac), 0);
    return 0;
}

EDDY_TEST(as_completed, an_empty_set_is_exhausted_at_once)
{
    cr_assert_eq(rt_run(empty_set, NULL), 0);
}

/*
 * tests/reactor/test_offload.c: the offload pool of reactor/offload.c.
 *
 * Covers results coming back (one job, 10,000 queued jobs), the caller
 * parking while other tasks run (a ticker task counts while a job blocks),
 * cancellation while the job runs (-ECANCELED at once, late result to
 * dispose exactly once) and before it starts (dropped, fn never runs),
 * timeout scopes, 10,000 queued jobs whose callers are all cancelled, the
 * pool size (concurrent workers counted, EDDY_OFFLOAD_THREADS), concurrent
 * jobs not serialising behind one worker, loop destroy with jobs running and
 * queued, and misuse. Each Criterion test is its own process, so a test may
 * set the process-wide pool size.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "tests/reactor/reactor_test.h"

/* ---- shared jobs ----------------------------------------------------------- */

static intptr_t square(void *arg)
{
    intptr_t x = (intptr_t)arg;
    return x * x;
}

static intptr_t sleep_job(void *arg)
{
    rt_thread_sleep_ms((long)(intptr_t)arg);
    return (intptr_t)arg;
}

/* Concurrency probe: counts jobs running at once and the maximum seen. */
static atomic_int running_now;
static atomic_int running_max;

static intptr_t counted_sleep_job(void *arg)
{
    int now = atomic_fetch_add(&running_now, 1) + 1;
    int max = atomic_load(&running_max);
    while (now > max && !atomic_compare_exchange_weak(&running_max, &max, now))
        ;
    rt_thread_sleep_ms((long)(intptr_t)arg);
    atomic_fetch_sub(&running_now, 1);
    return 0;
}

/* A gate a job waits on until the test opens it. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static atomic_int gate_entered;

static intptr_t gated_job(void *arg)
{
    atomic_fetch_add(&gate_entered, 1);
    pthread_mutex_lock(&gate_lock);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    return (intptr_t)arg;
}

static void open_gate(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

/* Dispose bookkeeping: every job has a slot; dispose must hit it once. */
struct slot {
    int index;
    int calls;
    bool ran;
    intptr_t result;
    int rc; /* what the caller returned */
    bool is_loop_thread;
    bool in_task;
};

static pthread_t loop_thread;

/* Set by a test: the gate opens once this many jobs have been dropped. */
static int open_gate_after_drops;

static void record_dispose(void *arg, intptr_t result, bool ran)
{
    struct slot *s = arg;
    if (!ran && open_gate_after_drops > 0 && --open_gate_after_drops == 0)
        open_gate();
    s->calls++;
    s->ran = ran;
    s->result = result;
    s->is_loop_thread = pthread_equal(pthread_self(), loop_thread);
    s->in_task = eddy_task_current() != NULL;
}

static intptr_t slot_job(void *arg)
{
    struct slot *s = arg;
    return (intptr_t)s->index * 3;
}

/* ---- results come back ----------------------------------------------------- */

static intptr_t offload_square(void *arg)
{
    intptr_t r = 0;
    int rc = eddy_offload_run(square, arg, NULL, &r);
    return rc < 0 ? rc : r;
}

EDDY_TEST(offload, run_returns_the_jobs_result)
{
    cr_expect_eq(rt_run(offload_square, (void *)(intptr_t)12), 144);
    cr_expect_eq(rt_run(offload_square, (void *)(intptr_t)-3), 9);
}

static intptr_t on_worker_thread(void *arg)
{
    return !pthread_equal(pthread_self(), *(pthread_t *)arg);
}

static intptr_t offload_thread_check(void *arg)
{
    (void)arg;
    pthread_t self = pthread_self();
    intptr_t r = 0;
    int rc = eddy_offload_run(on_worker_thread, &self, NULL, &r);
    return rc < 0 ? rc : r;
}

EDDY_TEST(offload, job_runs_on_another_thread)
{
    cr_expect_eq(rt_run(offload_thread_check, NULL), 1);
}

/* ---- the caller parks, the others run ----------------------------------------- */

struct ticker {
    int ticks;
    bool stop;
};

static intptr_t tick(void *arg)
{
    struct ticker *t = arg;
    while (!t->stop) {
        if (eddy_sleep_ms(5) < 0)
            break;
        t->ticks++;
    }
    return 0;
}

static intptr_t offload_while_ticking(void *arg)
{
    struct ticker *t = arg;
    struct eddy_task *ticker;
    if (eddy_task_spawn(tick, t, NULL, &ticker) < 0)
        return -1;
    intptr_t r = 0;
    int rc = eddy_offload_run(sleep_job, (void *)(intptr_t)200, NULL, &r);
    t->stop = true;
    eddy_task_join(ticker, NULL);
    return rc < 0 ? rc : r;
}

EDDY_TEST(offload, caller_parks_while_other_tasks_keep_running)
{
    struct ticker t = {0, false};
    cr_expect_eq(rt_run(offload_while_ticking, &t), 200);
    /* 200 ms of 5 ms ticks: 40 if the loop were idle; many fewer only if the
     * job had blocked the loop thread (then 0 or 1). */
    cr_expect_geq(t.ticks, 10, "the ticker ran %d times during a 200 ms job", t.ticks);
}

/* ---- many jobs ------------------------------------------------------------- */

struct many {
    size_t n;
    struct slot *slots;
    int cancel_after_yields; /* -1: never cancel */
    eddy_offload_fn *job;    /* NULL: slot_job */
};

static eddy_offload_fn *caller_job = slot_job;

static intptr_t slot_caller(void *arg)
{
    struct slot *s = arg;
    intptr_t r = -1;
    s->rc = eddy_offload_run(caller_job, s, record_dispose, &r);
    if (s->rc == 0)
        s->result = r;
    return 0;
}

static intptr_t spawn_many(void *arg)
{
    struct many *m = arg;
    loop_thread = pthread_self();
    if (m->job)
        caller_job = m->job;
    struct eddy_task **tasks = calloc(m->n, sizeof(*tasks));
    if (!tasks)
        return -ENOMEM;
    for (size_t i = 0; i < m->n; i++) {
        int rc = eddy_task_spawn(slot_caller, &m->slots[i], NULL, &tasks[i]);
        if (rc < 0)
            return rc;
    }
    for (int i = 0; i < m->cancel_after_yields; i++)
        eddy_task_yield();
    if (m->cancel_after_yields >= 0)
        for (size_t i = 0; i < m->n; i++)
            eddy_task_cancel(tasks[i]);
    for (size_t i = 0; i < m->n; i++)
        eddy_task_join(tasks[i], NULL);
    free(tasks);
    /* Late results arrive while the loop runs: wait for them all. */
    for (int waited = 0; waited < 20000; waited++) {
        size_t pending = 0;
        for (size_t i = 0; i < m->n; i++)
            pending += m->slots[i].rc != 0 && m->slots[i].calls == 0;
        if (pending == 0)
            break;
        eddy_sleep_ms(1);
    }
    return 0;
}

static struct slot *make_slots(size_t n)
{
    struct slot *slots = calloc(n, sizeof(*slots));
    cr_assert_not_null(slots);
    for (size_t i = 0; i < n; i++) {
        slots[i].index = (int)i;
        slots[i].rc = 1; /* not returned yet */
    }
    return slots;
}

EDDY_TEST(offload, ten_thousand_queued_jobs_all_return_their_results)
{
    size_t n = rt_scale(10000, 500);
    struct many m = {n, make_slots(n), -1, NULL};
    cr_expect_eq(rt_run(spawn_many, &m), 0);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(m.slots[i].rc, 0, "job %zu: %s", i, eddy_strerror(m.slots[i].rc));
        cr_assert_eq(m.slots[i].result, (intptr_t)i * 3, "job %zu", i);
        cr_assert_eq(m.slots[i].calls, 0, "job %zu disposed although collected", i);
    }
    free(m.slots);
}

/* Slow enough that two workers are still busy when the callers are cancelled. */
static intptr_t slow_slot_job(void *arg)
{
    struct timespec ts = {0, 100 * 1000};
    nanosleep(&ts, NULL);
    return slot_job(arg);
}

EDDY_TEST(offload, ten_thousand_cancelled_callers_get_each_job_disposed_exactly_once)
{
    size_t n = rt_scale(10000, 500);
    eddy_offload_set_threads(2);
    /* One yield: every caller has submitted; a few jobs have run. */
    struct many m = {n, make_slots(n), 1, slow_slot_job};
    cr_expect_eq(rt_run(spawn_many, &m), 0);
    size_t dropped = 0, late = 0, delivered = 0;
    for (size_t i = 0; i < n; i++) {
        struct slot *s = &m.slots[i];
        if (s->rc == 0) {
            /* The result was collected before the cancelled caller ran. */
            cr_assert_eq(s->calls, 0, "job %zu: result delivered and disposed", i);
            cr_assert_eq(s->result, (intptr_t)i * 3);
            delivered++;
            continue;
        }
        cr_assert_eq(s->rc, -ECANCELED, "job %zu: %s", i, eddy_strerror(s->rc));
        cr_assert_eq(s->calls, 1, "job %zu disposed %d times", i, s->calls);
        cr_assert(s->is_loop_thread, "job %zu disposed off the loop thread", i);
        if (s->ran) {
            cr_assert(!s->in_task, "job %zu: late result disposed inside a task", i);
            cr_assert_eq(s->result, (intptr_t)i * 3, "job %zu late result", i);
            late++;
        } else {
            cr_assert_eq(s->result, 0);
            dropped++;
        }
    }
    cr_expect_eq(dropped + late + delivered, n);
    /* Two workers cannot run 10,000 jobs in one yield. */
    cr_expect_gt(dropped, 0, "dropped %zu, late %zu, delivered %zu", dropped, late, delivered);
    free(m.slots);
}

/* ---- cancellation and timeouts ------------------------------------------------ */

struct cancel_case {
    struct slot gated;  /* keeps the single worker busy */
    struct slot queued; /* waits behind it */
    int64_t returned_after_ns;
};

/* The gated job, with a dispose recording the result. */
static intptr_t gated_slot_job(void *arg)
{
    return gated_job((void *)(intptr_t)((struct slot *)arg)->index);
}

static intptr_t gated_slot_caller(void *arg)
{
    struct slot *s = arg;
    intptr_t r = -1;
    s->rc = eddy_offload_run(gated_slot_job, s, record_dispose, &r);
    if (s->rc == 0)
        s->result = r;
    return 0;
}

static atomic_int slot_job_runs;

static intptr_t counting_slot_job(void *arg)
{
    atomic_fetch_add(&slot_job_runs, 1);
    return slot_job(arg);
}

static intptr_t counting_slot_caller(void *arg)
{
    struct slot *s = arg;
    intptr_t r = -1;
    s->rc = eddy_offload_run(counting_slot_job, s, record_dispose, &r);
    return 0;
}

static intptr_t cancel_both(void *arg)
{
    struct cancel_case *c = arg;
    loop_thread = pthread_self();
    struct eddy_task *running, *queued;
    if (eddy_task_spawn(gated_slot_caller, &c->gated, NULL, &running) < 0 ||
        eddy_task_spawn(counting_slot_caller, &c->queued, NULL, &queued) < 0)
        return -1;
    /* Wait until the single worker is inside the gated job. */
    while (atomic_load(&gate_entered) == 0)
        eddy_sleep_ms(1);
    int64_t t0 = eddy_clock_ns();
    eddy_task_cancel(queued);
    eddy_task_cancel(running);
    eddy_task_join(queued, NULL);
    eddy_task_join(running, NULL);
    c->returned_after_ns = eddy_clock_ns() - t0;
    /* The queued job was dropped before either caller returned. */
    if (c->queued.calls != 1 || c->queued.ran)
        return -2;
    if (c->gated.calls != 0)
        return -3; /* still running: no result yet */
    open_gate();
    while (c->gated.calls == 0)
        eddy_sleep_ms(1);
    return 0;
}

EDDY_TEST(offload, cancelled_callers_return_at_once_whether_job_is_queued_or_running)
{
    eddy_offload_set_threads(1);
    struct cancel_case c = {.gated = {.index = 5, .rc = 1}, .queued = {.index = 6, .rc = 1}};
    cr_expect_eq(rt_run(cancel_both, &c), 0);
    cr_expect_eq(c.gated.rc, -ECANCELED);
    cr_expect_eq(c.queued.rc, -ECANCELED);
    cr_expect_lt(c.returned_after_ns, rt_late_tolerance_ns(), "cancel took %lld ns",
                 (long long)c.returned_after_ns);
    /* Queued: dropped, fn never ran. Running: its late result disposed. */
    cr_expect_eq(c.queued.calls, 1);
    cr_expect(!c.queued.ran);
    cr_expect_eq(atomic_load(&slot_job_runs), 0, "a dropped job ran");
    cr_expect_eq(c.gated.calls, 1);
    cr_expect(c.gated.ran);
    cr_expect_eq(c.gated.result, 5);
    cr_expect(c.gated.is_loop_thread && !c.gated.in_task);
}

static intptr_t offload_already_cancelled(void *arg)
{
    struct slot *s = arg;
    eddy_task_cancel(eddy_task_current());
    s->rc = eddy_offload_run(counting_slot_job, s, record_dispose, NULL);
    eddy_task_uncancel();
    return 0;
}

EDDY_TEST(offload, already_cancelled_caller_never_runs_the_job)
{
    struct slot s = {.index = 1, .rc = 1};
    loop_thread = pthread_self();
    rt_run(offload_already_cancelled, &s);
    cr_expect_eq(s.rc, -ECANCELED);
    cr_expect_eq(s.calls, 1);
    cr_expect(!s.ran);
    cr_expect_eq(atomic_load(&slot_job_runs), 0);
}

struct timeout_case {
    struct slot s;
    int64_t elapsed_ns;
    int exit_rc;
};

static intptr_t sleep_slot_job(void *arg)
{
    rt_thread_sleep_ms(300);
    return slot_job(arg);
}

static intptr_t offload_in_scope(void *arg)
{
    struct timeout_case *c = arg;
    loop_thread = pthread_self();
    /* A worker exists, so the job starts well before the deadline. */
    if (eddy_offload_run(square, NULL, NULL, NULL) < 0)
        return -1;
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, 30 * EDDY_NS_PER_MS);
    int64_t t0 = eddy_now_ns(); /* the scope's base */
    intptr_t r = -1;
    c->s.rc = eddy_offload_run(sleep_slot_job, &c->s, record_dispose, &r);
    c->elapsed_ns = eddy_clock_ns() - t0;
    c->exit_rc = eddy_timeout_exit(&scope);
    /* The loop keeps running until the late result is disposed of. */
    while (c->s.calls == 0)
        eddy_sleep_ms(5);
    return 0;
}

EDDY_TEST(offload, timeout_scope_ends_the_wait_and_disposes_of_the_late_result)
{
    struct timeout_case c = {.s = {.index = 9, .rc = 1}};
    cr_expect_eq(rt_run(offload_in_scope, &c), 0);
    cr_expect_eq(c.s.rc, -ETIMEDOUT, "%s", eddy_strerror(c.s.rc));
    cr_expect_eq(c.exit_rc, -ETIMEDOUT);
    cr_expect_geq(c.elapsed_ns, 30 * EDDY_NS_PER_MS);
    cr_expect_lt(c.elapsed_ns, 30 * EDDY_NS_PER_MS + rt_late_tolerance_ns());
    cr_expect_eq(c.s.calls, 1);
    /* Valgrind runs one thread at a time: the job may still be queued at
     * the deadline, and is then dropped instead. */
    if (c.s.ran || !eddy_test_under_valgrind()) {
        cr_expect(c.s.ran);
        cr_expect_eq(c.s.result, 27);
    }
}

/* ---- pool size ------------------------------------------------------------- */

struct fanout {
    int jobs;
    long job_ms;
    int64_t elapsed_ns;
};

static intptr_t counted_caller(void *arg)
{
    return eddy_offload_run(counted_sleep_job, (void *)(intptr_t)((struct fanout *)arg)->job_ms,
                            NULL, NULL);
}

static intptr_t fan_out(void *arg)
{
    struct fanout *f = arg;
    struct eddy_task *tasks[64];
    int64_t t0 = eddy_clock_ns();
    for (int i = 0; i < f->jobs; i++)
        if (eddy_task_spawn(counted_caller, f, NULL, &tasks[i]) < 0)
            return -1;
    intptr_t worst = 0;
    for (int i = 0; i < f->jobs; i++) {
        intptr_t r;
        eddy_task_join(tasks[i], &r);
        if (r < 0)
            worst = r;
    }
    f->elapsed_ns = eddy_clock_ns() - t0;
    return worst;
}

EDDY_TEST(offload, pool_size_bounds_the_concurrent_workers)
{
    cr_assert_eq(eddy_offload_set_threads(3), 0);
    cr_expect_eq(eddy_offload_threads(), 3u);
    struct fanout f = {12, 30, 0};
    cr_expect_eq(rt_run(fan_out, &f), 0);
    cr_expect_eq(atomic_load(&running_max), 3, "up to %d jobs ran at once",
                 atomic_load(&running_max));
}

/* A job that waits (up to RENDEZVOUS_LIMIT_MS) until `arg` jobs run at
 * once: four of them can only all return early when four workers run them
 * side by side, however slow the machine. */
#define RENDEZVOUS_LIMIT_MS 10000

static intptr_t rendezvous_job(void *arg)
{
    int want = (int)(intptr_t)arg;
    int now = atomic_fetch_add(&running_now, 1) + 1;
    int max = atomic_load(&running_max);
    while (now > max && !atomic_compare_exchange_weak(&running_max, &max, now))
        ;
    for (int waited = 0; atomic_load(&running_max) < want && waited < RENDEZVOUS_LIMIT_MS; waited++)
        rt_thread_sleep_ms(1);
    atomic_fetch_sub(&running_now, 1);
    return atomic_load(&running_max) >= want ? 0 : -ETIMEDOUT;
}

static intptr_t rendezvous_caller(void *arg)
{
    (void)arg;
    intptr_t r = -1;
    int rc = eddy_offload_run(rendezvous_job, (void *)(intptr_t)4, NULL, &r);
    return rc < 0 ? rc : r;
}

static intptr_t rendezvous_of_four(void *arg)
{
    (void)arg;
    struct eddy_task *t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(eddy_task_spawn(rendezvous_caller, NULL, NULL, &t[i]), 0);
    intptr_t worst = 0;
    for (int i = 0; i < 4; i++) {
        intptr_t r;
        eddy_task_join(t[i], &r);
        if (r < 0)
            worst = r;
    }
    return worst;
}

EDDY_TEST(offload, concurrent_blocking_jobs_do_not_serialise_behind_one_worker)
{
    /* Default size 4: four jobs that each wait for the others all meet. */
    cr_expect_eq(eddy_offload_threads(), 4u);
    cr_expect_eq(rt_run(rendezvous_of_four, NULL), 0, "the four jobs never ran at once");
    cr_expect_eq(atomic_load(&running_max), 4);
}

EDDY_TEST(offload, environment_sets_the_pool_size)
{
    setenv("EDDY_OFFLOAD_THREADS", "2", 1);
    cr_expect_eq(eddy_offload_threads(), 2u);
    struct fanout f = {6, 20, 0};
    cr_expect_eq(rt_run(fan_out, &f), 0);
    cr_expect_eq(atomic_load(&running_max), 2);
}

EDDY_TEST(offload, set_threads_rejects_zero_and_too_many)
{
    cr_expect_eq(eddy_offload_set_threads(0), -EINVAL);
    cr_expect_eq(eddy_offload_set_threads(EDDY_OFFLOAD_MAX_THREADS + 1), -EINVAL);
    cr_expect_eq(eddy_offload_set_threads(EDDY_OFFLOAD_MAX_THREADS), 0);
}

static intptr_t shrink_then_run(void *arg)
{
    struct fanout *f = arg;
    intptr_t rc = fan_out(f); /* four workers started */
    if (rc < 0)
        return rc;
    eddy_offload_set_threads(1);
    atomic_store(&running_max, 0);
    return fan_out(f);
}

EDDY_TEST(offload, shrinking_the_pool_lets_extra_workers_leave)
{
    struct fanout f = {4, 20, 0};
    cr_expect_eq(rt_run(shrink_then_run, &f), 0);
    cr_expect_eq(atomic_load(&running_max), 1);
}

/* ---- loop destroy ---------------------------------------------------------- */

static intptr_t leave_jobs_in_flight(void *arg)
{
    struct many *m = arg;
    loop_thread = pthread_self();
    struct eddy_task_opts detached = {.detached = true};
    for (size_t i = 0; i < m->n; i++)
        if (eddy_task_spawn(gated_slot_caller, &m->slots[i], &detached, NULL) < 0)
            return -1;
    eddy_task_yield(); /* all submitted */
    while (atomic_load(&gate_entered) < 2)
        eddy_sleep_ms(1);
    return 0; /* eddy_run now destroys the loop */
}

EDDY_TEST(offload, destroy_drops_queued_jobs_and_waits_for_running_ones)
{
    eddy_offload_set_threads(2);
    size_t n = 8;
    struct many m = {n, make_slots(n), -1, NULL};
    /* The two running jobs finish only once destroy has dropped the six
     * queued ones. */
    open_gate_after_drops = (int)n - 2;
    cr_expect_eq(rt_run(leave_jobs_in_flight, &m), 0);
    size_t ran = 0;
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(m.slots[i].rc, -ECANCELED, "job %zu: %s", i, eddy_strerror(m.slots[i].rc));
        cr_expect_eq(m.slots[i].calls, 1, "job %zu disposed %d times", i, m.slots[i].calls);
        ran += m.slots[i].ran;
    }
    /* The two running when destroy began finished inside it. */
    cr_expect_eq(ran, 2);
    cr_expect_eq(atomic_load(&gate_entered), 2);
    free(m.slots);
    /* The pool serves the next loop. */
    cr_expect_eq(rt_run(offload_square, (void *)(intptr_t)7), 49);
}

/* ---- misuse -------------------------------------------------------------------- */

EDDY_TEST(offload, run_outside_a_task_is_einval_and_disposes)
{
    struct slot s = {.index = 2, .rc = 1};
    loop_thread = pthread_self();
    cr_expect_eq(eddy_offload_run(slot_job, &s, record_dispose, NULL), -EINVAL);
    cr_expect_eq(s.calls, 1);
    cr_expect(!s.ran);
    cr_expect_eq(eddy_offload_run(slot_job, NULL, NULL, NULL), -EINVAL);
}

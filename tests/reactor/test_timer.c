/*
 * tests/reactor/test_timer.c: callback timers and sleeps (reactor/timer.c on
 * the 4-ary heap of alloc/heap.h).
 *
 * Covers a million timers with random deadlines firing in deadline order
 * (ties in start order), equal deadlines in start order, stopping a random
 * half (exactly the other half fires, once each), stop after fire and stop
 * of a timer never started (no-ops), re-start moving a timer, a timer
 * re-arming itself from its callback, and sleeps: never early on the loop's
 * clock, late by at most RT_LATE_TOLERANCE_MS. The loop reads the clock once
 * per iteration, so "early" is judged against eddy_now_ns() taken when the
 * sleep began, and "late" against a fresh clock read.
 */

#include "tests/reactor/reactor_test.h"

/* Where timer callbacks report. One test per process: a global is fine. */
struct fire_log {
    struct eddy_timer *timers;
    size_t n;
    size_t fired;
    size_t *order; /* indexes in firing order (may be NULL) */
    unsigned char *times_fired;
    size_t out_of_order;
    size_t early;
    size_t inside_task;
    int64_t last_deadline;
    size_t last_index;
};

static struct fire_log g_log;

static void log_fire(void *arg)
{
    struct eddy_timer *t = arg;
    size_t i = (size_t)(t - g_log.timers);
    int64_t deadline = t->deadline_ns;
    if (g_log.fired > 0 && (deadline < g_log.last_deadline ||
                            (deadline == g_log.last_deadline && i < g_log.last_index)))
        g_log.out_of_order++;
    if (eddy_now_ns() < deadline)
        g_log.early++;
    if (eddy_task_current() != NULL)
        g_log.inside_task++;
    if (g_log.order)
        g_log.order[g_log.fired] = i;
    if (g_log.times_fired)
        g_log.times_fired[i]++;
    g_log.last_deadline = deadline;
    g_log.last_index = i;
    g_log.fired++;
}

static void log_init(size_t n, bool keep_order)
{
    g_log = (struct fire_log){.n = n};
    g_log.timers = calloc(n, sizeof(*g_log.timers));
    g_log.times_fired = calloc(n, 1);
    g_log.order = keep_order ? calloc(n, sizeof(*g_log.order)) : NULL;
    cr_assert(g_log.timers && g_log.times_fired && (!keep_order || g_log.order));
}

static void log_fini(void)
{
    free(g_log.timers);
    free(g_log.times_fired);
    free(g_log.order);
    g_log = (struct fire_log){0};
}

/* Sleeps the main task until `count` timers have fired. */
static void wait_for_fired(size_t count)
{
    while (g_log.fired < count)
        cr_assert_eq(eddy_sleep_ms(2), 0);
}

/* ---- ordering ---------------------------------------------------------------- */

#define RANDOM_SPREAD_NS (30 * EDDY_NS_PER_MS)

static intptr_t start_random_timers(void *arg)
{
    uint64_t *seed = arg;
    int64_t now = eddy_now_ns();
    int64_t deadline = now;
    for (size_t i = 0; i < g_log.n; i++) {
        /* Every eighth timer shares its predecessor's deadline: many ties. */
        if (i % 8 != 7)
            deadline = now + EDDY_NS_PER_MS + (int64_t)(rt_rand(seed) % RANDOM_SPREAD_NS);
        cr_assert_eq(eddy_timer_start(&g_log.timers[i], deadline, log_fire, &g_log.timers[i]), 0);
    }
    cr_assert_eq(g_log.fired, 0, "nothing fires while the starting task runs");
    wait_for_fired(g_log.n);
    return 0;
}

EDDY_TEST(timer, a_million_random_timers_fire_in_deadline_order)
{
    uint64_t seed = UINT64_C(0x9e3779b97f4a7c15);
    cr_log_info("seed %llu", (unsigned long long)seed);
    log_init(rt_scale(1000000, 20000), false);
    cr_assert_eq(rt_run(start_random_timers, &seed), 0);
    cr_expect_eq(g_log.fired, g_log.n);
    cr_expect_eq(g_log.out_of_order, 0, "%zu timers fired out of (deadline, start) order",
                 g_log.out_of_order);
    cr_expect_eq(g_log.early, 0, "%zu timers fired before their deadline", g_log.early);
    cr_expect_eq(g_log.inside_task, 0, "callbacks run outside any task");
    for (size_t i = 0; i < g_log.n; i++)
        cr_assert_eq(g_log.times_fired[i], 1, "timer %zu fired %d times", i, g_log.times_fired[i]);
    log_fini();
}

#define TIES 1000

static intptr_t start_equal_timers(void *arg)
{
    (void)arg;
    int64_t deadline = eddy_now_ns() + 2 * EDDY_NS_PER_MS;
    for (size_t i = 0; i < TIES; i++)
        cr_assert_eq(eddy_timer_start(&g_log.timers[i], deadline, log_fire, &g_log.timers[i]), 0);
    /* Re-starting timer 10 with the same deadline sends it behind the others. */
    cr_assert_eq(eddy_timer_start(&g_log.timers[10], deadline, log_fire, &g_log.timers[10]), 0);
    wait_for_fired(TIES);
    return 0;
}

EDDY_TEST(timer, equal_deadlines_fire_in_start_order)
{
    log_init(TIES, true);
    cr_assert_eq(rt_run(start_equal_timers, NULL), 0);
    cr_assert_eq(g_log.fired, TIES);
    size_t expect = 0;
    for (size_t pos = 0; pos < TIES - 1; pos++, expect++) {
        if (expect == 10)
            expect++;
        cr_assert_eq(g_log.order[pos], expect, "position %zu fired timer %zu", pos,
                     g_log.order[pos]);
    }
    cr_expect_eq(g_log.order[TIES - 1], 10);
    log_fini();
}

/* ---- stop ------------------------------------------------------------------------ */

static intptr_t stop_random_half(void *arg)
{
    unsigned char *stopped = arg;
    uint64_t seed = UINT64_C(12345);
    int64_t now = eddy_now_ns();
    int64_t last = now;
    for (size_t i = 0; i < g_log.n; i++) {
        int64_t deadline = now + EDDY_NS_PER_MS + (int64_t)(rt_rand(&seed) % (20 * EDDY_NS_PER_MS));
        if (deadline > last)
            last = deadline;
        cr_assert_eq(eddy_timer_start(&g_log.timers[i], deadline, log_fire, &g_log.timers[i]), 0);
    }
    size_t kept = 0;
    for (size_t i = 0; i < g_log.n; i++) {
        stopped[i] = rt_rand(&seed) >> 63;
        if (stopped[i]) {
            eddy_timer_stop(&g_log.timers[i]);
            cr_assert_not(eddy_timer_is_active(&g_log.timers[i]));
        } else {
            cr_assert(eddy_timer_is_active(&g_log.timers[i]));
            kept++;
        }
    }
    wait_for_fired(kept);
    /* Past the last deadline: nothing else may fire. */
    cr_assert_eq(eddy_sleep_until(last + EDDY_NS_PER_MS), 0);
    cr_assert_eq(eddy_sleep_ms(2), 0);
    return (intptr_t)kept;
}

EDDY_TEST(timer, stopping_a_random_half_leaves_exactly_the_other_half_firing)
{
    size_t n = rt_scale(200000, 10000);
    log_init(n, false);
    unsigned char *stopped = calloc(n, 1);
    cr_assert_not_null(stopped);
    size_t kept = (size_t)rt_run(stop_random_half, stopped);
    cr_expect_gt(kept, n / 3);
    cr_expect_lt(kept, 2 * n / 3);
    cr_expect_eq(g_log.fired, kept);
    cr_expect_eq(g_log.out_of_order, 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(g_log.times_fired[i], stopped[i] ? 0 : 1, "timer %zu (%s) fired %d times", i,
                     stopped[i] ? "stopped" : "kept", g_log.times_fired[i]);
    free(stopped);
    log_fini();
}

static bool g_stopped_in_own_callback;

static void stop_self(void *arg)
{
    struct eddy_timer *t = arg;
    eddy_timer_stop(t); /* it has already left the heap: a no-op */
    g_stopped_in_own_callback = !eddy_timer_is_active(t);
    log_fire(arg);
}

static intptr_t stop_after_fire(void *arg)
{
    (void)arg;
    struct eddy_timer *t = g_log.timers;
    int64_t now = eddy_now_ns();
    cr_assert_eq(eddy_timer_start(&t[0], now + 1 * EDDY_NS_PER_MS, stop_self, &t[0]), 0);
    cr_assert_eq(eddy_timer_start(&t[1], now + 2 * EDDY_NS_PER_MS, log_fire, &t[1]), 0);
    cr_assert_eq(eddy_timer_start(&t[2], now + 30 * EDDY_NS_PER_MS, log_fire, &t[2]), 0);
    wait_for_fired(2);
    cr_expect_not(eddy_timer_is_active(&t[0]));
    cr_expect_not(eddy_timer_is_active(&t[1]));
    cr_expect(eddy_timer_is_active(&t[2]));
    eddy_timer_stop(&t[0]);
    eddy_timer_stop(&t[1]);
    eddy_timer_stop(&t[1]);
    cr_expect(eddy_timer_is_active(&t[2]), "stopping fired timers left the others alone");
    wait_for_fired(3);
    /* A timer that was never started (zeroed caller memory). */
    struct eddy_timer never = {0};
    eddy_timer_stop(&never);
    cr_expect_not(eddy_timer_is_active(&never));
    return 0;
}

EDDY_TEST(timer, stop_after_fire_is_a_noop)
{
    log_init(3, true);
    cr_assert_eq(rt_run(stop_after_fire, NULL), 0);
    cr_expect(g_stopped_in_own_callback);
    cr_expect_eq(g_log.fired, 3);
    for (size_t i = 0; i < 3; i++)
        cr_expect_eq(g_log.order[i], i);
    log_fini();
}

/* ---- re-start --------------------------------------------------------------------- */

static intptr_t restart_moves(void *arg)
{
    (void)arg;
    struct eddy_timer *t = g_log.timers;
    int64_t now = eddy_now_ns();
    int64_t ms = EDDY_NS_PER_MS;
    cr_assert_eq(eddy_timer_start(&t[0], now + 30 * ms, log_fire, &t[0]), 0);
    cr_assert_eq(eddy_timer_start(&t[1], now + 20 * ms, log_fire, &t[1]), 0);
    cr_assert_eq(eddy_timer_start(&t[2], now + 5 * ms, log_fire, &t[2]), 0);
    /* Earlier: 0 goes first. Later: 2 goes last. */
    cr_assert_eq(eddy_timer_start(&t[0], now + 10 * ms, log_fire, &t[0]), 0);
    cr_assert_eq(eddy_timer_start(&t[2], now + 40 * ms, log_fire, &t[2]), 0);
    cr_expect_eq(t[0].deadline_ns, now + 10 * ms);
    cr_expect_eq(t[2].deadline_ns, now + 40 * ms);
    wait_for_fired(3);
    /* Each fired once, at its new deadline. */
    cr_assert_eq(eddy_sleep_ms(35), 0);
    return 0;
}

EDDY_TEST(timer, restart_moves_a_timer_to_its_new_deadline)
{
    log_init(3, true);
    cr_assert_eq(rt_run(restart_moves, NULL), 0);
    cr_assert_eq(g_log.fired, 3, "a re-started timer fires once, not twice");
    cr_expect_eq(g_log.order[0], 0);
    cr_expect_eq(g_log.order[1], 1);
    cr_expect_eq(g_log.order[2], 2);
    cr_expect_eq(g_log.early, 0);
    log_fini();
}

struct periodic {
    struct eddy_timer timer;
    int fired;
    int64_t last_ns;
};

static void rearm(void *arg)
{
    struct periodic *p = arg;
    p->fired++;
    p->last_ns = eddy_now_ns();
    if (p->fired < 5)
        eddy_timer_start(&p->timer, p->last_ns + EDDY_NS_PER_MS, rearm, p);
}

static intptr_t periodic_timer(void *arg)
{
    struct periodic *p = arg;
    int64_t start = eddy_now_ns();
    cr_assert_eq(eddy_timer_start(&p->timer, start + EDDY_NS_PER_MS, rearm, p), 0);
    while (p->fired < 5)
        cr_assert_eq(eddy_sleep_ms(1), 0);
    cr_expect_geq(p->last_ns - start, 5 * EDDY_NS_PER_MS, "five periods of 1 ms");
    cr_expect_not(eddy_timer_is_active(&p->timer));
    return 0;
}

EDDY_TEST(timer, a_callback_may_rearm_its_own_timer)
{
    struct periodic p = {.fired = 0};
    cr_assert_eq(rt_run(periodic_timer, &p), 0);
    cr_expect_eq(p.fired, 5);
}

static void never_called(void *arg)
{
    (void)arg;
    cr_assert_fail("a timer of a destroyed loop fired");
}

static intptr_t start_and_leave(void *arg)
{
    struct eddy_timer *t = arg;
    cr_assert_eq(eddy_timer_start(t, eddy_now_ns() + 60 * EDDY_NS_PER_SEC, never_called, NULL), 0);
    cr_expect_eq(eddy_timer_start(t, 0, NULL, NULL), -EINVAL, "no function");
    return 0;
}

EDDY_TEST(timer, start_needs_a_loop_and_destroy_disarms_what_is_left)
{
    struct eddy_timer t = {0};
    cr_expect_eq(eddy_timer_start(&t, 0, never_called, NULL), -EINVAL);
    cr_expect_not(eddy_timer_is_active(&t));
    cr_assert_eq(rt_run(start_and_leave, &t), 0);
    cr_expect_not(eddy_timer_is_active(&t), "the destroyed loop disarmed it");
    eddy_timer_stop(&t); /* safe afterwards */
}

/* ---- sleeps and the clock ------------------------------------------------------------ */

struct sleep_check {
    int64_t requested_ms;
    int rc;
    int64_t loop_before, loop_after;
    int64_t fresh_before, fresh_after;
};

static intptr_t measure_sleeps(void *arg)
{
    struct sleep_check *c = arg;
    for (; c->requested_ms >= 0; c++) {
        c->loop_before = eddy_now_ns();
        c->fresh_before = eddy_clock_ns();
        c->rc = eddy_sleep_ms(c->requested_ms);
        c->fresh_after = eddy_clock_ns();
        c->loop_after = eddy_now_ns();
    }
    return 0;
}

EDDY_TEST(timer, sleeps_last_their_duration_within_the_tolerance)
{
    struct sleep_check checks[] = {
        {.requested_ms = 1},  {.requested_ms = 5},  {.requested_ms = 20},
        {.requested_ms = 50}, {.requested_ms = -1},
    };
    cr_assert_eq(rt_run(measure_sleeps, checks), 0);
    for (struct sleep_check *c = checks; c->requested_ms >= 0; c++) {
        int64_t want = c->requested_ms * EDDY_NS_PER_MS;
        cr_expect_eq(c->rc, 0);
        /* Never early: the deadline is the loop clock at the call plus the
         * duration, and the loop clock has passed it when the task resumes. */
        cr_expect_geq(c->loop_after - c->loop_before, want, "%lld ms: woke early by %lld ns",
                      (long long)c->requested_ms,
                      (long long)(want - (c->loop_after - c->loop_before)));
        cr_expect_geq(c->fresh_after, c->loop_before + want);
        /* Not late beyond the tolerance, on a fresh clock. */
        cr_expect_leq(c->fresh_after - c->fresh_before, want + rt_late_tolerance_ns(),
                      "%lld ms took %lld ns", (long long)c->requested_ms,
                      (long long)(c->fresh_after - c->fresh_before));
    }
}

struct clock_check {
    int64_t a, b, after_sleep;
};

static intptr_t read_clock_in_a_slice(void *arg)
{
    struct clock_check *c = arg;
    c->a = eddy_now_ns();
    int64_t spin_until = eddy_clock_ns() + 3 * EDDY_NS_PER_MS;
    while (eddy_clock_ns() < spin_until)
        ;
    c->b = eddy_now_ns();
    cr_assert_eq(eddy_sleep_ms(1), 0);
    c->after_sleep = eddy_now_ns();
    return 0;
}

EDDY_TEST(timer, the_loop_clock_is_read_once_per_iteration)
{
    struct clock_check c = {0};
    cr_assert_eq(rt_run(read_clock_in_a_slice, &c), 0);
    cr_expect_eq(c.a, c.b, "eddy_now_ns() moved within one slice");
    /* The sleep's deadline was a + 1 ms on the loop clock, already behind
     * the real time when the task parked: the next clock read ends it. */
    cr_expect_geq(c.after_sleep - c.a, 3 * EDDY_NS_PER_MS, "the clock was read again");

    /* Outside a loop it is a fresh read. */
    int64_t x = eddy_now_ns();
    rt_thread_sleep_ms(2);
    int64_t y = eddy_now_ns();
    cr_expect_geq(y - x, 2 * EDDY_NS_PER_MS);
    cr_expect_leq(y, eddy_clock_ns());
}

struct sleepers_order {
    int order[4];
    int n;
};

struct sleeper_arg {
    struct sleepers_order *o;
    int id;
    int64_t ms;
};

static intptr_t sleep_and_log(void *arg)
{
    struct sleeper_arg *a = arg;
    int rc = eddy_sleep_ms(a->ms);
    a->o->order[a->o->n++] = a->id;
    return rc;
}

static intptr_t sleepers_wake_by_deadline(void *arg)
{
    struct sleepers_order *o = arg;
    struct sleeper_arg args[4] = {{o, 0, 20}, {o, 1, 5}, {o, 2, 15}, {o, 3, 5}};
    struct eddy_task *t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(eddy_task_spawn(sleep_and_log, &args[i], NULL, &t[i]), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(eddy_task_join(t[i], NULL), 0);
    return 0;
}

EDDY_TEST(timer, sleeping_tasks_wake_in_deadline_order)
{
    struct sleepers_order o = {.n = 0};
    cr_assert_eq(rt_run(sleepers_wake_by_deadline, &o), 0);
    int want[4] = {1, 3, 2, 0};
    for (int i = 0; i < 4; i++)
        cr_expect_eq(o.order[i], want[i], "position %d woke task %d", i, o.order[i]);
}

/* A task that hogs the CPU delays a sleeper until it yields; after that the
 * sleeper must wake at its deadline, not later by as long as the hog ran.
 * The hog runs longer than the tolerance, so that such a delay shows. */
#define HOG_MS (2 * RT_LATE_TOLERANCE_MS)
#define HOGGED_SLEEP_MS (HOG_MS + 50)

struct hogged {
    int64_t slept_loop_ns;  /* on the loop clock: never less than asked */
    int64_t slept_fresh_ns; /* on a fresh clock: at most the tolerance more */
    int rc;
};

static intptr_t sleep_while_hogged(void *arg)
{
    struct hogged *h = arg;
    int64_t loop_start = eddy_now_ns();
    int64_t fresh_start = eddy_clock_ns();
    h->rc = eddy_sleep_ms(HOGGED_SLEEP_MS);
    h->slept_fresh_ns = eddy_clock_ns() - fresh_start;
    h->slept_loop_ns = eddy_now_ns() - loop_start;
    return 0;
}

static intptr_t hog(void *arg)
{
    (void)arg;
    int64_t until = eddy_clock_ns() + HOG_MS * EDDY_NS_PER_MS;
    while (eddy_clock_ns() < until)
        ;
    return 0;
}

static intptr_t sleeper_and_hog(void *arg)
{
    /* Two short sleeps first, so the loop is past its first poll. */
    cr_assert_eq(eddy_sleep_ms(1), 0);
    cr_assert_eq(eddy_sleep_ms(1), 0);
    struct eddy_task *s, *h;
    cr_assert_eq(eddy_task_spawn(sleep_while_hogged, arg, NULL, &s), 0);
    cr_assert_eq(eddy_task_spawn(hog, NULL, NULL, &h), 0);
    cr_assert_eq(eddy_task_join(s, NULL), 0);
    cr_assert_eq(eddy_task_join(h, NULL), 0);
    return 0;
}

EDDY_TEST(timer, a_sleep_is_not_made_later_by_the_time_other_tasks_ran)
{
    struct hogged h = {0};
    cr_assert_eq(rt_run(sleeper_and_hog, &h), 0);
    cr_expect_eq(h.rc, 0);
    cr_expect_geq(h.slept_loop_ns, HOGGED_SLEEP_MS * EDDY_NS_PER_MS);
    cr_expect_leq(h.slept_fresh_ns, HOGGED_SLEEP_MS * EDDY_NS_PER_MS + rt_late_tolerance_ns(),
                  "a %d ms sleep took %.1f ms next to a task that ran %d ms", HOGGED_SLEEP_MS,
                  (double)h.slept_fresh_ns / 1e6, HOG_MS);
}

/*
 * tests/db/test_pool.c: the connection pool: min size opened at create,
 * reuse, the acquire/release scope that cannot leak, acquire timeouts, the
 * bound on waiters, FIFO hand-off, connections left in a transaction or
 * killed on the server replaced, concurrent queries through the pool, and
 * the server stopped mid-query (the spare cluster) with the pool
 * recovering when it comes back.
 */
#include "tests/db/db_test.h"

static struct eddy_pg_pool *pool_new(const char *conninfo, size_t min, size_t max)
{
    struct eddy_pg_pool_opts o = {.conninfo = conninfo, .min_size = min, .max_size = max};
    struct eddy_pg_pool *p;
    int rc = eddy_pg_pool_create(&o, &p);
    cr_assert_eq(rc, 0, "pool: %s", eddy_strerror(rc));
    return p;
}

static struct eddy_pg_pool_stats stats(struct eddy_pg_pool *p)
{
    struct eddy_pg_pool_stats s;
    eddy_pg_pool_stats(p, &s);
    return s;
}

static int fails(struct eddy_pg *c, void *arg)
{
    (void)arg;
    int64_t rc = eddy_pg_exec(c, "SELECT * FROM no_such_table", 0, NULL);
    return rc < 0 ? (int)rc : 0;
}

static int backend_pid(struct eddy_pg *c, void *arg)
{
    *(int64_t *)arg = db_scalar(c, "SELECT pg_backend_pid()");
    return 0;
}

static intptr_t basics(void *arg)
{
    (void)arg;
    struct eddy_pg_pool *p = pool_new(db_conninfo(), 2, 3);
    struct eddy_pg_pool_stats s = stats(p);
    cr_assert_eq(s.size, 2);
    cr_assert_eq(s.idle, 2);
    cr_assert_eq(s.opened, 2);
    /* The same connection comes back (LIFO). */
    int64_t pid1, pid2;
    cr_assert_eq(eddy_pg_pool_with(p, -1, backend_pid, &pid1), 0);
    cr_assert_eq(eddy_pg_pool_with(p, -1, backend_pid, &pid2), 0);
    cr_assert_eq(pid1, pid2);
    /* An error inside the scope still releases the connection. */
    cr_assert_eq(eddy_pg_pool_with(p, -1, fails, NULL), -EREMOTEIO);
    s = stats(p);
    cr_assert_eq(s.in_use, 0);
    cr_assert_eq(s.idle, 2);
    cr_assert_eq(s.acquired, 3);
    /* Three at once: the third is opened on demand. */
    struct eddy_pg *c[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(eddy_pg_pool_acquire(p, -1, &c[i]), 0);
    s = stats(p);
    cr_assert_eq(s.size, 3);
    cr_assert_eq(s.in_use, 3);
    cr_assert_eq(s.opened, 3);
    cr_assert_eq(eddy_pg_pool_destroy(p), -EBUSY);
    for (int i = 0; i < 3; i++)
        eddy_pg_pool_release(p, c[i]);
    cr_assert_eq(stats(p).idle, 3);
    cr_assert_eq(eddy_pg_pool_destroy(p), 0);
    return 0;
}

EDDY_TEST(db_pool, opens_min_size_reuses_connections_and_releases_on_error)
{
    db_conninfo();
    rt_run(basics, NULL);
}

struct holder {
    struct eddy_pg_pool *p;
    int64_t hold_ms;
    int rc;
    int order;
    int *next_order;
};

static intptr_t hold(void *arg)
{
    struct holder *h = arg;
    struct eddy_pg *c;
    h->rc = eddy_pg_pool_acquire(h->p, -1, &c);
    if (h->rc < 0)
        return 0;
    h->order = (*h->next_order)++;
    eddy_sleep_ms(h->hold_ms);
    eddy_pg_pool_release(h->p, c);
    return 0;
}

static intptr_t waits(void *arg)
{
    (void)arg;
    struct eddy_pg_pool_opts o = {.conninfo = db_conninfo(), .max_size = 1, .max_waiters = 3};
    struct eddy_pg_pool *p;
    cr_assert_eq(eddy_pg_pool_create(&o, &p), 0);
    struct eddy_pg *c;
    cr_assert_eq(eddy_pg_pool_acquire(p, -1, &c), 0);
    /* Timeout while the only connection is out. */
    int64_t t0 = eddy_now_ns(); /* the loop's time, which the timeout counts from */
    struct eddy_pg *c2;
    cr_assert_eq(eddy_pg_pool_acquire(p, 50 * EDDY_NS_PER_MS, &c2), -ETIMEDOUT);
    cr_assert_geq(eddy_clock_ns() - t0, 50 * EDDY_NS_PER_MS);
    cr_assert_eq(stats(p).timeouts, 1);
    cr_assert_eq(stats(p).waiting, 0);
    /* Three waiters queue in order; a fourth is refused at once. */
    int next = 0;
    struct holder h[3];
    struct eddy_task *t[3];
    for (int i = 0; i < 3; i++) {
        h[i] = (struct holder){.p = p, .hold_ms = 5, .next_order = &next};
        cr_assert_eq(eddy_task_spawn(hold, &h[i], NULL, &t[i]), 0);
    }
    cr_assert_eq(eddy_task_yield(), 0);
    cr_assert_eq(stats(p).waiting, 3);
    cr_assert_eq(eddy_pg_pool_acquire(p, -1, &c2), -EBUSY);
    cr_assert_eq(stats(p).rejected, 1);
    eddy_pg_pool_release(p, c);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(eddy_task_join(t[i], NULL), 0);
        cr_assert_eq(h[i].rc, 0);
        cr_assert_eq(h[i].order, i, "waiter %d served %d-th", i, h[i].order);
    }
    struct eddy_pg_pool_stats s = stats(p);
    cr_assert_eq(s.opened, 1, "one connection served everyone");
    cr_assert_eq(s.waiting, 0);
    cr_assert_eq(eddy_pg_pool_destroy(p), 0);
    return 0;
}

EDDY_TEST(db_pool, acquire_times_out_queues_fifo_and_refuses_waiters_above_the_bound)
{
    db_conninfo();
    rt_run(waits, NULL);
}

static intptr_t dirty_and_dead(void *arg)
{
    (void)arg;
    struct eddy_pg_pool_opts o = {.conninfo = db_conninfo(), .max_size = 2};
    struct eddy_pg_pool *p;
    cr_assert_eq(eddy_pg_pool_create(&o, &p), 0);
    /* Left inside a transaction: closed on release, never handed out. */
    struct eddy_pg *c;
    cr_assert_eq(eddy_pg_pool_acquire(p, -1, &c), 0);
    cr_assert_eq(eddy_pg_begin(c, EDDY_PG_ISOLATION_DEFAULT), 0);
    eddy_pg_pool_release(p, c);
    struct eddy_pg_pool_stats s = stats(p);
    cr_assert_eq(s.replaced, 1);
    cr_assert_eq(s.size, 0);
    /* Killed by the server while idle: found dead on acquire, replaced. */
    cr_assert_eq(eddy_pg_pool_acquire(p, -1, &c), 0);
    int64_t pid = db_scalar(c, "SELECT pg_backend_pid()");
    eddy_pg_pool_release(p, c);
    struct eddy_pg *killer = db_open(db_conninfo());
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%lld, 5000)", (long long)pid);
    db_exec(killer, sql);
    eddy_pg_close(killer);
    cr_assert_eq(eddy_pg_pool_acquire(p, -1, &c), 0);
    cr_assert_neq(db_scalar(c, "SELECT pg_backend_pid()"), pid);
    eddy_pg_pool_release(p, c);
    s = stats(p);
    cr_assert_eq(s.replaced, 2);
    cr_assert_eq(s.opened, 3);
    cr_assert_eq(eddy_pg_pool_destroy(p), 0);
    return 0;
}

EDDY_TEST(db_pool, a_connection_left_in_a_transaction_or_killed_while_idle_is_replaced)
{
    db_conninfo();
    rt_run(dirty_and_dead, NULL);
}

struct sleepy {
    struct eddy_pg_pool *p;
    int rc;
};

static int sleep_50ms(struct eddy_pg *c, void *arg)
{
    (void)arg;
    int64_t rc = eddy_pg_exec(c, "SELECT pg_sleep(0.05)", 0, NULL);
    return rc < 0 ? (int)rc : 0;
}

static intptr_t sleepy_task(void *arg)
{
    struct sleepy *s = arg;
    s->rc = eddy_pg_pool_with(s->p, -1, sleep_50ms, NULL);
    return 0;
}

/* 20 queries of 50 ms through 5 connections: about 4 rounds, far from
 * the 1 s they take one after another. */
#define DB_POOL_QUERIES 20
#define DB_POOL_SIZE 5
#define DB_POOL_MAX_NS (600 * EDDY_NS_PER_MS)

static intptr_t concurrent(void *arg)
{
    (void)arg;
    struct eddy_pg_pool *p = pool_new(db_conninfo(), DB_POOL_SIZE, DB_POOL_SIZE);
    struct sleepy s[DB_POOL_QUERIES];
    struct eddy_task *t[DB_POOL_QUERIES];
    int64_t t0 = eddy_clock_ns();
    for (int i = 0; i < DB_POOL_QUERIES; i++) {
        s[i] = (struct sleepy){p, 1};
        cr_assert_eq(eddy_task_spawn(sleepy_task, &s[i], NULL, &t[i]), 0);
    }
    for (int i = 0; i < DB_POOL_QUERIES; i++) {
        cr_assert_eq(eddy_task_join(t[i], NULL), 0);
        cr_assert_eq(s[i].rc, 0, "%s", eddy_strerror(s[i].rc));
    }
    int64_t took = eddy_clock_ns() - t0;
    cr_assert_leq(took, DB_POOL_MAX_NS + rt_late_tolerance_ns(), "took %lld ms",
                  (long long)(took / EDDY_NS_PER_MS));
    struct eddy_pg_pool_stats st = stats(p);
    cr_assert_eq(st.opened, DB_POOL_SIZE);
    cr_assert_eq(st.acquired, DB_POOL_QUERIES);
    cr_assert_eq(eddy_pg_pool_destroy(p), 0);
    return 0;
}

EDDY_TEST(db_pool, concurrent_queries_share_the_pools_connections)
{
    db_conninfo();
    rt_run(concurrent, NULL);
}

static intptr_t bad_pool(void *arg)
{
    (void)arg;
    char ci[256];
    snprintf(ci, sizeof(ci), "host=%s port=%s dbname=no_such_db user=postgres",
             db_env("EDDY_PG_HOST"), db_env("EDDY_PG_PORT"));
    struct eddy_pg_pool_opts o = {.conninfo = ci, .min_size = 1};
    struct eddy_pg_pool *p = NULL;
    cr_assert_eq(eddy_pg_pool_create(&o, &p), -ENOENT);
    cr_assert_null(p);
    o.min_size = 0;
    cr_assert_eq(eddy_pg_pool_create(&o, &p), 0);
    struct eddy_pg *c;
    cr_assert_eq(eddy_pg_pool_acquire(p, -1, &c), -ENOENT);
    cr_assert_eq(stats(p).size, 0);
    cr_assert_eq(eddy_pg_pool_destroy(p), 0);
    o.min_size = 3;
    o.max_size = 2;
    cr_assert_eq(eddy_pg_pool_create(&o, &p), -EINVAL);
    cr_assert_eq(eddy_pg_pool_create(NULL, &p), -EINVAL);
    cr_assert_eq(eddy_pg_pool_acquire(NULL, -1, &c), -EINVAL);
    cr_assert_eq(eddy_pg_pool_destroy(NULL), 0);
    return 0;
}

EDDY_TEST(db_pool, a_pool_on_a_missing_database_reports_enoent)
{
    db_conninfo();
    rt_run(bad_pool, NULL);
}

/* ---- the server stopped mid-query, then back --------------------------------- */

struct victim {
    struct eddy_pg *c;
    int64_t rc;
};

static intptr_t victim_query(void *arg)
{
    struct victim *v = arg;
    v->rc = eddy_pg_exec(v->c, "SELECT pg_sleep(30)", 0, NULL);
    return 0;
}

static intptr_t spare_ctl(const char *verb)
{
    intptr_t r = -1;
    int rc = eddy_offload_run(db_spare_job, (void *)verb, NULL, &r);
    cr_assert_eq(rc, 0, "offload: %s", eddy_strerror(rc));
    return r;
}

static intptr_t server_restart(void *arg)
{
    (void)arg;
    char ci[512];
    db_spare_conninfo(ci, sizeof(ci));
    cr_assert_eq(spare_ctl("start"), 0, "the spare cluster did not start");
    struct eddy_pg_pool_opts o = {.conninfo = ci, .min_size = 2, .max_size = 2};
    struct eddy_pg_pool *p;
    cr_assert_eq(eddy_pg_pool_create(&o, &p), 0);
    struct victim v = {NULL, 1};
    cr_assert_eq(eddy_pg_pool_acquire(p, -1, &v.c), 0);
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(victim_query, &v, NULL, &t), 0);
    cr_assert_eq(eddy_sleep_ms(100), 0);
    /* pg_ctl stop -m fast: the server ends every session with 57P01. */
    cr_assert_eq(spare_ctl("stop"), 0);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    cr_assert_eq(v.rc, -ECONNRESET, "%s", eddy_strerror((int)v.rc));
    cr_assert(eddy_pg_is_broken(v.c));
    eddy_pg_pool_release(p, v.c);
    /* Down: the idle connection is found dead, and a new one is refused. */
    struct eddy_pg *c;
    int rc = eddy_pg_pool_acquire(p, -1, &c);
    cr_assert_eq(rc, -ECONNREFUSED, "%s", eddy_strerror(rc));
    struct eddy_pg_pool_stats s = stats(p);
    cr_assert_eq(s.size, 0);
    cr_assert_eq(s.replaced, 2);
    /* Back: the pool opens fresh connections by itself. */
    cr_assert_eq(spare_ctl("start"), 0);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(eddy_pg_pool_acquire(p, -1, &c), 0);
        cr_assert_eq(db_scalar(c, "SELECT 9"), 9);
        eddy_pg_pool_release(p, c);
    }
    s = stats(p);
    cr_assert_eq(s.size, 1);
    cr_assert_eq(s.opened, 3);
    cr_assert_eq(eddy_pg_pool_destroy(p), 0);
    cr_assert_eq(spare_ctl("stop"), 0);
    return 0;
}

EDDY_TEST(db_pool, the_server_stopped_mid_query_fails_it_and_the_pool_recovers_on_restart)
{
    db_conninfo();
    rt_run(server_restart, NULL);
}

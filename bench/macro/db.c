/*
 * bench/macro/db.c: the C side of the `db` suite of bench/run: PostgreSQL
 * queries through blocking libpq (impl sync) and through eddy's db layer
 * (impl eddy). bench/peers/asyncpg_bench.py is the Python side (asyncpg)
 * and pgbench the server's own client; bench/run starts a throwaway
 * server, runs every impl in turn and writes results/db.csv.
 *
 *   db --impl sync|eddy --case sleep10ms|select1 --conninfo CI
 *      [--queries N] [--conns C]
 *
 * sleep10ms: N queries of `SELECT pg_sleep(0.01)`. sync runs them one
 *   after another on one connection (PQexec); eddy spawns N tasks that
 *   share a pool of C connections (eddy_pg_pool_with each), so about C
 *   sleep at once. Prints `seconds=S`.
 * select1: N queries of `SELECT 1`. sync: PQexec in a loop on one
 *   connection. eddy with C = 1: one task, eddy_pg_exec in a loop on one
 *   connection; with C > 1: C tasks, each acquiring a connection of a pool
 *   of C per query, N / C queries each. Prints `qps=Q seconds=S`.
 *
 * Each run does a warm-up pass (connections opened, pool filled, task
 * stacks cached) and times a second pass with CLOCK_MONOTONIC; select1's
 * warm-up is a tenth of N. Exits non-zero on any query error. Refuses to
 * run from a build without NDEBUG (STYLE.md: benchmarks need release
 * flags).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include <eddy/eddy.h>

struct opts {
    const char *impl;
    const char *kase;
    const char *conninfo;
    long queries;
    long conns;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "db: %s: %s\n", what, why);
    exit(1);
}

/* ---- sync: blocking libpq ------------------------------------------------------ */

static void sync_run(PGconn *pg, const char *sql, long n)
{
    for (long i = 0; i < n; i++) {
        PGresult *r = PQexec(pg, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            die(sql, PQerrorMessage(pg));
        PQclear(r);
    }
}

static double sync_bench(const struct opts *o, const char *sql, long warm)
{
    PGconn *pg = PQconnectdb(o->conninfo);
    if (PQstatus(pg) != CONNECTION_OK)
        die("connect", PQerrorMessage(pg));
    sync_run(pg, sql, warm);
    double t0 = now_s();
    sync_run(pg, sql, o->queries);
    double s = now_s() - t0;
    PQfinish(pg);
    return s;
}

/* ---- eddy ------------------------------------------------------------------------ */

struct run {
    const struct opts *o;
    const char *sql;
    struct eddy_pg_pool *pool;
    long per_task;
    long done; /* queries that succeeded in the last pass */
    double seconds;
    int failed;
};

static int one_query(struct eddy_pg *c, void *arg)
{
    const struct run *r = arg;
    int64_t n = eddy_pg_exec(c, r->sql, 0, NULL);
    return n < 0 ? (int)n : 0;
}

static intptr_t pooled_task(void *arg)
{
    struct run *r = arg;
    for (long i = 0; i < r->per_task; i++) {
        int rc = eddy_pg_pool_with(r->pool, -1, one_query, r);
        if (rc < 0) {
            fprintf(stderr, "db: query: %s\n", eddy_strerror(rc));
            r->failed++;
        } else {
            r->done++;
        }
    }
    return 0;
}

/* `tasks` tasks doing per_task pooled queries each; returns the seconds. */
static double pooled_pass(struct run *r, long tasks, long per_task)
{
    struct eddy_task **t = malloc((size_t)tasks * sizeof(*t));
    if (!t)
        die("malloc", "out of memory");
    r->per_task = per_task;
    r->done = 0;
    double t0 = now_s();
    for (long i = 0; i < tasks; i++)
        if (eddy_task_spawn(pooled_task, r, NULL, &t[i]) < 0)
            die("spawn", "failed");
    for (long i = 0; i < tasks; i++)
        eddy_task_join(t[i], NULL);
    double s = now_s() - t0;
    free(t);
    return s;
}

static intptr_t eddy_main(void *arg)
{
    struct run *r = arg;
    const struct opts *o = r->o;
    if (strcmp(o->kase, "select1") == 0 && o->conns == 1) {
        struct eddy_pg_error err;
        struct eddy_pg *c;
        int rc = eddy_pg_open(o->conninfo, 10 * EDDY_NS_PER_SEC, &err, &c);
        if (rc < 0)
            die("connect", err.message);
        for (int pass = 0; pass < 2; pass++) {
            long n = pass == 0 ? o->queries / 10 : o->queries;
            double t0 = now_s();
            for (long i = 0; i < n; i++)
                if (eddy_pg_exec(c, r->sql, 0, NULL) < 0)
                    die("select", eddy_pg_error(c)->message);
            r->seconds = now_s() - t0;
            r->done = n;
        }
        eddy_pg_close(c);
        return 0;
    }
    struct eddy_pg_pool_opts po = {
        .conninfo = o->conninfo,
        .min_size = (size_t)o->conns,
        .max_size = (size_t)o->conns,
        .max_waiters = (size_t)o->queries + 1,
        .health_check_idle_ns = -1,
    };
    int rc = eddy_pg_pool_create(&po, &r->pool);
    if (rc < 0)
        die("pool", eddy_strerror(rc));
    if (strcmp(o->kase, "sleep10ms") == 0) {
        /* One task per query, as a service has one task per request. */
        pooled_pass(r, o->queries, 1);
        r->seconds = pooled_pass(r, o->queries, 1);
    } else {
        pooled_pass(r, o->conns, o->queries / 10 / o->conns + 1);
        r->seconds = pooled_pass(r, o->conns, o->queries / o->conns);
    }
    eddy_pg_pool_destroy(r->pool);
    return 0;
}

int main(int argc, char **argv)
{
#ifndef NDEBUG
    fprintf(stderr, "db: built without NDEBUG; benchmarks need the release build\n");
    return 2;
#endif
    struct opts o = {.queries = 1000, .conns = 1};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--impl") == 0)
            o.impl = argv[i + 1];
        else if (strcmp(argv[i], "--case") == 0)
            o.kase = argv[i + 1];
        else if (strcmp(argv[i], "--conninfo") == 0)
            o.conninfo = argv[i + 1];
        else if (strcmp(argv[i], "--queries") == 0)
            o.queries = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--conns") == 0)
            o.conns = atol(argv[i + 1]);
        else
            die("unknown option", argv[i]);
    }
    if (!o.impl || !o.kase || !o.conninfo || o.queries < 1 || o.conns < 1 ||
        (strcmp(o.kase, "sleep10ms") != 0 && strcmp(o.kase, "select1") != 0)) {
        fprintf(stderr, "usage: db --impl sync|eddy --case sleep10ms|select1 --conninfo CI "
                        "[--queries N] [--conns C]\n");
        return 2;
    }
    const char *sql = strcmp(o.kase, "sleep10ms") == 0 ? "SELECT pg_sleep(0.01)" : "SELECT 1";
    double seconds;
    long done = o.queries;
    if (strcmp(o.impl, "sync") == 0) {
        long warm = strcmp(o.kase, "select1") == 0 ? o.queries / 10 : 1;
        seconds = sync_bench(&o, sql, warm);
    } else if (strcmp(o.impl, "eddy") == 0) {
        struct run r = {.o = &o, .sql = sql};
        intptr_t result;
        if (eddy_run(eddy_main, &r, NULL, &result) != 0 || r.failed)
            die("eddy", "queries failed");
        seconds = r.seconds;
        done = r.done;
    } else {
        die("unknown impl", o.impl);
    }
    if (strcmp(o.kase, "select1") == 0)
        printf("qps=%.1f seconds=%.6f queries=%ld\n", (double)done / seconds, seconds, done);
    else
        printf("seconds=%.6f\n", seconds);
    return 0;
}

/*
 * tests/db/db_test.h: what the db tests share: the throwaway server's
 * conninfo (tests/db/pg_server.sh, which `make test` wraps around the test
 * binary; without a server every db test reports itself skipped with the
 * reason), a run of a test body as the main task of a fresh loop, a
 * connection opened or the test fails, and the spare cluster the fault
 * tests stop and start.
 *
 * Tests run two at a time against one database: each uses tables of its
 * own (named after the test), created fresh at its start.
 */
#ifndef EDDY_TESTS_DB_TEST_H
#define EDDY_TESTS_DB_TEST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <eddy/eddy.h>

#include "tests/reactor/reactor_test.h"

/* How long opening a connection may take in a test before it fails. */
#define DB_CONNECT_TIMEOUT_NS (10 * EDDY_NS_PER_SEC)

/* The conninfo of the test database, or the test is skipped with the
 * reason pg_server.sh gave. */
static inline const char *db_conninfo(void)
{
    const char *skip = getenv("EDDY_PG_SKIP");
    if (skip)
        cr_skip_test("no PostgreSQL for the db tests: %s", skip);
    const char *ci = getenv("EDDY_PG_CONNINFO");
    if (!ci)
        cr_skip_test("EDDY_PG_CONNINFO is not set: run the tests through make test, which "
                     "starts a throwaway PostgreSQL (tests/db/pg_server.sh)");
    return ci;
}

static inline const char *db_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert_not_null(v, "%s is not set (tests/db/pg_server.sh sets it)", name);
    return v;
}

static inline struct eddy_pg *db_open(const char *conninfo)
{
    struct eddy_pg_error err;
    struct eddy_pg *c = NULL;
    int rc = eddy_pg_open(conninfo, DB_CONNECT_TIMEOUT_NS, &err, &c);
    cr_assert_eq(rc, 0, "eddy_pg_open(%s): %s: %s %s", conninfo, eddy_strerror(rc), err.sqlstate,
                 err.message);
    return c;
}

/* Runs a statement that must succeed; returns its affected-row count. */
static inline int64_t db_exec(struct eddy_pg *c, const char *sql)
{
    int64_t n = eddy_pg_exec(c, sql, 0, NULL);
    cr_assert_geq(n, 0, "%s: %s: %s %s", sql, eddy_strerror((int)n), eddy_pg_error(c)->sqlstate,
                  eddy_pg_error(c)->message);
    return n;
}

/* The single int64 a query returns. */
static inline int64_t db_scalar(struct eddy_pg *c, const char *sql)
{
    struct eddy_pg_result *r;
    int rc = eddy_pg_fetch_one(c, sql, 0, NULL, &r);
    cr_assert_eq(rc, 1, "%s: %s: %s", sql, eddy_strerror(rc), eddy_pg_error(c)->message);
    int64_t v;
    rc = eddy_pg_result_int64(r, 0, 0, &v);
    cr_assert_eq(rc, 0, "%s: %s", sql, eddy_strerror(rc));
    eddy_pg_result_free(r);
    return v;
}

/* Runs `pg_server.sh spare start|stop` and waits for it (a thread-blocking
 * wait: call it on the offload pool from a task, or outside the loop). */
static inline int db_spare(const char *verb)
{
    const char *script = getenv("EDDY_PG_SERVER");
    if (!script)
        return -ENOENT;
    char *argv[] = {(char *)script, (char *)"spare", (char *)verb, NULL};
    pid_t pid;
    if (posix_spawn(&pid, script, NULL, NULL, argv, environ) != 0)
        return -errno;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

static inline intptr_t db_spare_job(void *verb)
{
    return db_spare(verb);
}

/* The spare cluster's conninfo. */
static inline void db_spare_conninfo(char *buf, size_t cap)
{
    snprintf(buf, cap, "host=%s port=%s dbname=eddy_test user=postgres connect_timeout=5",
             db_env("EDDY_PG_SPARE_HOST"), db_env("EDDY_PG_SPARE_PORT"));
}

#endif

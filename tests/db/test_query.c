/*
 * tests/db/test_query.c: statements against the throwaway PostgreSQL:
 * affected-row counts, rows by index and name, fetch one, parameters that
 * carry SQL injection attempts as data, server errors with their SQLSTATE
 * (the connection stays usable), prepared statements, pipelines (and a
 * failing one rolls back as one implicit transaction), a result large
 * enough to need many reads, and cancellation: a timeout scope or a task
 * cancel stops pg_sleep on the server and leaves the connection usable.
 */
#include "tests/db/db_test.h"

typedef void db_body_fn(struct eddy_pg *c);

static intptr_t body_task(void *arg)
{
    db_body_fn *body = (db_body_fn *)arg;
    struct eddy_pg *c = db_open(db_conninfo());
    body(c);
    eddy_pg_close(c);
    return 0;
}

/* Runs body(conn) in a task of a fresh loop with a fresh connection. */
static void with_conn(db_body_fn *body)
{
    db_conninfo();
    rt_run(body_task, (void *)body);
}

static void exec_counts(struct eddy_pg *c)
{
    db_exec(c, "DROP TABLE IF EXISTS q_counts");
    cr_assert_eq(db_exec(c, "CREATE TABLE q_counts (id int PRIMARY KEY, name text)"), 0);
    for (int i = 1; i <= 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", i);
        const char *p[] = {id, "x"};
        cr_assert_eq(eddy_pg_exec(c, "INSERT INTO q_counts VALUES ($1, $2)", 2, p), 1);
    }
    cr_assert_eq(db_exec(c, "UPDATE q_counts SET name = 'y' WHERE id >= 2"), 2);
    cr_assert_eq(db_exec(c, "SELECT * FROM q_counts"), 3);
    cr_assert_eq(db_exec(c, "DELETE FROM q_counts"), 3);
}

EDDY_TEST(db_query, exec_returns_the_affected_row_count)
{
    with_conn(exec_counts);
}

static void rows_by_index_and_name(struct eddy_pg *c)
{
    struct eddy_pg_result *r;
    int rc = eddy_pg_query(c,
                           "SELECT g AS id, 'user' || g AS name FROM generate_series(1, 5) g "
                           "ORDER BY g",
                           0, NULL, &r);
    cr_assert_eq(rc, 0, "%s", eddy_strerror(rc));
    cr_assert_eq(eddy_pg_result_rows(r), 5);
    cr_assert_eq(eddy_pg_result_cols(r), 2);
    int name = eddy_pg_result_col(r, "name");
    cr_assert_eq(name, 1);
    cr_assert_str_eq(eddy_pg_result_col_name(r, 0), "id");
    cr_assert_eq(eddy_pg_result_col(r, "missing"), -ENOENT);
    for (int i = 0; i < 5; i++) {
        int64_t id;
        const char *s;
        size_t len;
        cr_assert_eq(eddy_pg_result_int64(r, i, eddy_pg_result_col(r, "id"), &id), 0);
        cr_assert_eq(id, i + 1);
        cr_assert_eq(eddy_pg_result_text(r, i, name, &s, &len), 0);
        char want[16];
        snprintf(want, sizeof(want), "user%d", i + 1);
        cr_assert_str_eq(s, want);
        cr_assert_eq(len, strlen(want));
    }
    eddy_pg_result_free(r);
}

EDDY_TEST(db_query, rows_are_read_by_index_and_by_column_name)
{
    with_conn(rows_by_index_and_name);
}

static void fetch_one_cases(struct eddy_pg *c)
{
    struct eddy_pg_result *r = (struct eddy_pg_result *)1;
    const char *p[] = {"3"};
    cr_assert_eq(eddy_pg_fetch_one(c, "SELECT $1::int * 2", 1, p, &r), 1);
    int64_t v;
    cr_assert_eq(eddy_pg_result_int64(r, 0, 0, &v), 0);
    cr_assert_eq(v, 6);
    eddy_pg_result_free(r);
    cr_assert_eq(eddy_pg_fetch_one(c, "SELECT 1 WHERE false", 0, NULL, &r), 0);
    cr_assert_null(r);
    cr_assert_eq(eddy_pg_fetch_one(c, "SELECT generate_series(1, 2)", 0, NULL, &r), -ERANGE);
    cr_assert_null(r);
    cr_assert_eq(db_scalar(c, "SELECT 7"), 7);
}

EDDY_TEST(db_query, fetch_one_returns_one_row_none_or_erange)
{
    with_conn(fetch_one_cases);
}

static void injection_stays_data(struct eddy_pg *c)
{
    db_exec(c, "DROP TABLE IF EXISTS q_inject");
    db_exec(c, "CREATE TABLE q_inject (id serial PRIMARY KEY, name text)");
    const char *evil[] = {
        "Robert'); DROP TABLE q_inject; --", "' OR '1'='1", "x\"; DELETE FROM q_inject; --", "$1",
        "\\'; SELECT pg_sleep(5); --",
    };
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        const char *p[] = {evil[i]};
        cr_assert_eq(eddy_pg_exec(c, "INSERT INTO q_inject (name) VALUES ($1)", 1, p), 1);
        struct eddy_pg_result *r;
        cr_assert_eq(eddy_pg_fetch_one(c, "SELECT name FROM q_inject WHERE name = $1", 1, p, &r), 1,
                     "row %zu not found by its own value", i);
        const char *s;
        cr_assert_eq(eddy_pg_result_text(r, 0, 0, &s, NULL), 0);
        cr_assert_str_eq(s, evil[i]);
        eddy_pg_result_free(r);
    }
    /* The classic login bypass matches nothing. */
    const char *p[] = {"' OR '1'='1' --"};
    cr_assert_eq(eddy_pg_exec(c, "SELECT 1 FROM q_inject WHERE name = $1", 1, p), 0);
    cr_assert_eq(db_scalar(c, "SELECT count(*) FROM q_inject"), 5);
    /* A NULL parameter is SQL NULL, not the text "NULL". */
    const char *nul[] = {NULL};
    cr_assert_eq(eddy_pg_exec(c, "INSERT INTO q_inject (name) VALUES ($1)", 1, nul), 1);
    cr_assert_eq(db_scalar(c, "SELECT count(*) FROM q_inject WHERE name IS NULL"), 1);
}

EDDY_TEST(db_query, sql_injection_attempts_in_parameters_stay_data)
{
    with_conn(injection_stays_data);
}

static void errors_keep_conn(struct eddy_pg *c)
{
    int64_t rc = eddy_pg_exec(c, "SELEC 1", 0, NULL);
    cr_assert_eq(rc, -EREMOTEIO, "%s", eddy_strerror((int)rc));
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "42601");
    cr_assert(strstr(eddy_pg_error(c)->message, "syntax error"), "%s", eddy_pg_error(c)->message);
    cr_assert_not(eddy_pg_is_broken(c));
    cr_assert_eq(db_scalar(c, "SELECT 41 + 1"), 42);
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "");

    db_exec(c, "DROP TABLE IF EXISTS q_unique");
    db_exec(c, "CREATE TABLE q_unique (id int PRIMARY KEY)");
    db_exec(c, "INSERT INTO q_unique VALUES (1)");
    rc = eddy_pg_exec(c, "INSERT INTO q_unique VALUES (1)", 0, NULL);
    cr_assert_eq(rc, -EEXIST);
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "23505");
    rc = eddy_pg_exec(c, "SELECT 1/0", 0, NULL);
    cr_assert_eq(rc, -EREMOTEIO);
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "22012");
    /* A parameter of the wrong type is the server's error too. */
    const char *p[] = {"not a number"};
    rc = eddy_pg_exec(c, "SELECT $1::int", 1, p);
    cr_assert_eq(rc, -EREMOTEIO);
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "22P02");
    cr_assert_eq(db_scalar(c, "SELECT count(*) FROM q_unique"), 1);
    /* Misuse is caught before anything is sent. */
    cr_assert_eq(eddy_pg_exec(c, NULL, 0, NULL), -EINVAL);
    cr_assert_eq(eddy_pg_exec(c, "SELECT $1", 1, NULL), -EINVAL);
    cr_assert_eq(eddy_pg_exec(c, "SELECT 1", -1, NULL), -EINVAL);
    cr_assert_eq(eddy_pg_query(c, "SELECT 1", 0, NULL, NULL), -EINVAL);
}

EDDY_TEST(db_query, a_server_error_carries_its_sqlstate_and_the_connection_stays_usable)
{
    with_conn(errors_keep_conn);
}

static void prepared(struct eddy_pg *c)
{
    cr_assert_eq(eddy_pg_prepare(c, "add", "SELECT $1::int + $2::int AS sum", 2), 0);
    for (int i = 0; i < 5; i++) {
        char a[16], b[16];
        snprintf(a, sizeof(a), "%d", i);
        snprintf(b, sizeof(b), "%d", 10 * i);
        const char *p[] = {a, b};
        struct eddy_pg_result *r;
        cr_assert_eq(eddy_pg_query_prepared(c, "add", 2, p, &r), 1);
        int64_t v;
        cr_assert_eq(eddy_pg_result_int64(r, 0, eddy_pg_result_col(r, "sum"), &v), 0);
        cr_assert_eq(v, 11 * i);
        eddy_pg_result_free(r);
    }
    cr_assert_eq(eddy_pg_prepare(c, "add", "SELECT 1", 0), -EREMOTEIO);
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "42P05");
    cr_assert_eq(eddy_pg_query_prepared(c, "nope", 0, NULL, NULL), -EREMOTEIO);
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "26000");
    cr_assert_eq(eddy_pg_query_prepared(c, NULL, 0, NULL, NULL), -EINVAL);
}

EDDY_TEST(db_query, a_prepared_statement_runs_again_with_new_parameters)
{
    with_conn(prepared);
}

static void pipeline_ok(struct eddy_pg *c)
{
    db_exec(c, "DROP TABLE IF EXISTS q_pipe");
    db_exec(c, "CREATE TABLE q_pipe (id int PRIMARY KEY)");
    const char *one[] = {"1"}, *two[] = {"2"};
    struct eddy_pg_stmt s[] = {
        {"INSERT INTO q_pipe VALUES ($1)", 1, one},
        {"INSERT INTO q_pipe VALUES ($1)", 1, two},
        {"SELECT id FROM q_pipe ORDER BY id", 0, NULL},
        {"SELECT 'x' || $1", 1, two},
    };
    struct eddy_pg_result *res[4];
    int rc = eddy_pg_pipeline(c, s, 4, res);
    cr_assert_eq(rc, 4, "%s: %s", eddy_strerror(rc), eddy_pg_error(c)->message);
    cr_assert_eq(eddy_pg_result_rows(res[2]), 2);
    const char *t;
    cr_assert_eq(eddy_pg_result_text(res[3], 0, 0, &t, NULL), 0);
    cr_assert_str_eq(t, "x2");
    for (int i = 0; i < 4; i++)
        eddy_pg_result_free(res[i]);

    /* The second statement fails: the third is skipped, and the first,
     * in the same implicit transaction, is rolled back. */
    const char *three[] = {"3"};
    struct eddy_pg_stmt bad[] = {
        {"INSERT INTO q_pipe VALUES ($1)", 1, three},
        {"INSERT INTO q_pipe VALUES ($1)", 1, one},
        {"SELECT 1", 0, NULL},
    };
    rc = eddy_pg_pipeline(c, bad, 3, res);
    cr_assert_eq(rc, -EEXIST, "%s", eddy_strerror(rc));
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "23505");
    cr_assert_null(res[1]);
    cr_assert_null(res[2]);
    eddy_pg_result_free(res[0]);
    cr_assert_not(eddy_pg_is_broken(c));
    cr_assert_eq(db_scalar(c, "SELECT count(*) FROM q_pipe"), 2);
    cr_assert_eq(eddy_pg_pipeline(c, NULL, 0, NULL), 0);
    /* Many statements in one go, without keeping their rows. */
    struct eddy_pg_stmt many[200];
    for (int i = 0; i < 200; i++)
        many[i] = (struct eddy_pg_stmt){"SELECT repeat('y', 1000)", 0, NULL};
    cr_assert_eq(eddy_pg_pipeline(c, many, 200, NULL), 200);
}

EDDY_TEST(db_query, a_pipeline_returns_every_result_and_a_failure_rolls_it_back)
{
    with_conn(pipeline_ok);
}

static void big_result(struct eddy_pg *c)
{
    struct eddy_pg_result *r;
    int rc = eddy_pg_query(c, "SELECT g, repeat('z', 100) FROM generate_series(1, 100000) g", 0,
                           NULL, &r);
    cr_assert_eq(rc, 0, "%s", eddy_strerror(rc));
    cr_assert_eq(eddy_pg_result_rows(r), 100000);
    int64_t last;
    cr_assert_eq(eddy_pg_result_int64(r, 99999, 0, &last), 0);
    cr_assert_eq(last, 100000);
    eddy_pg_result_free(r);
}

EDDY_TEST(db_query, a_result_of_ten_megabytes_is_read_whole)
{
    with_conn(big_result);
}

/* How long a cancelled pg_sleep may take to come back. */
#define DB_CANCEL_TOLERANCE_NS (2 * rt_late_tolerance_ns())

static void timeout_cancels(struct eddy_pg *c)
{
    struct eddy_timeout t;
    int64_t t0 = eddy_clock_ns();
    eddy_timeout_enter(&t, 100 * EDDY_NS_PER_MS);
    int64_t rc = eddy_pg_exec(c, "SELECT pg_sleep(30)", 0, NULL);
    eddy_timeout_exit(&t);
    int64_t took = eddy_clock_ns() - t0;
    cr_assert_eq(rc, -ETIMEDOUT, "%s", eddy_strerror((int)rc));
    cr_assert_leq(took, 100 * EDDY_NS_PER_MS + DB_CANCEL_TOLERANCE_NS, "took %lld ns",
                  (long long)took);
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "57014");
    cr_assert_not(eddy_pg_is_broken(c));
    cr_assert_eq(db_scalar(c, "SELECT 5"), 5);
}

EDDY_TEST(db_query, a_timeout_scope_cancels_the_query_on_the_server)
{
    with_conn(timeout_cancels);
}

struct sleeper {
    struct eddy_pg *c;
    int64_t rc;
};

static intptr_t sleep_query(void *arg)
{
    struct sleeper *s = arg;
    s->rc = eddy_pg_exec(s->c, "SELECT pg_sleep(30)", 0, NULL);
    return 0;
}

static void task_cancel(struct eddy_pg *c)
{
    struct sleeper s = {c, 1};
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(sleep_query, &s, NULL, &t), 0);
    cr_assert_eq(eddy_sleep_ms(100), 0);
    /* The connection is in use by the sleeper. */
    cr_assert_eq(eddy_pg_exec(c, "SELECT 1", 0, NULL), -EBUSY);
    int64_t t0 = eddy_clock_ns();
    cr_assert_eq(eddy_task_cancel(t), 0);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    cr_assert_eq(s.rc, -ECANCELED, "%s", eddy_strerror((int)s.rc));
    cr_assert_leq(eddy_clock_ns() - t0, DB_CANCEL_TOLERANCE_NS);
    cr_assert_not(eddy_pg_is_broken(c));
    cr_assert_eq(db_scalar(c, "SELECT 6"), 6);
}

EDDY_TEST(db_query, cancelling_the_task_cancels_the_query_and_the_connection_stays_usable)
{
    with_conn(task_cancel);
}

static void statement_timeout(struct eddy_pg *c)
{
    /* The server's own cancel (statement_timeout) is 57014 too. */
    db_exec(c, "SET statement_timeout = 50");
    cr_assert_eq(eddy_pg_exec(c, "SELECT pg_sleep(5)", 0, NULL), -ECANCELED);
    cr_assert_str_eq(eddy_pg_error(c)->sqlstate, "57014");
    db_exec(c, "RESET statement_timeout");
    cr_assert_eq(db_scalar(c, "SELECT 8"), 8);
}

EDDY_TEST(db_query, the_servers_statement_timeout_is_ecanceled_with_57014)
{
    with_conn(statement_timeout);
}

static void terminated(struct eddy_pg *c)
{
    /* Another session ends ours mid-query: ours sees the connection go. */
    struct eddy_pg *killer = db_open(db_conninfo());
    int64_t pid = db_scalar(c, "SELECT pg_backend_pid()");
    struct sleeper s = {c, 1};
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(sleep_query, &s, NULL, &t), 0);
    cr_assert_eq(eddy_sleep_ms(100), 0);
    char pidtext[32];
    snprintf(pidtext, sizeof(pidtext), "%lld", (long long)pid);
    const char *p[] = {pidtext};
    cr_assert_eq(eddy_pg_exec(killer, "SELECT pg_terminate_backend($1::int)", 1, p), 1);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    cr_assert_eq(s.rc, -ECONNRESET, "%s", eddy_strerror((int)s.rc));
    cr_assert(eddy_pg_is_broken(c));
    cr_assert_eq(eddy_pg_exec(c, "SELECT 1", 0, NULL), -ECONNRESET);
    eddy_pg_close(killer);
}

EDDY_TEST(db_query, a_session_terminated_mid_query_is_econnreset_and_broken)
{
    with_conn(terminated);
}

EDDY_TEST(db_query, calls_outside_a_task_are_einval)
{
    cr_assert_eq(eddy_pg_exec(NULL, "SELECT 1", 0, NULL), -EINVAL);
    cr_assert_eq(eddy_pg_pipeline(NULL, NULL, 1, NULL), -EINVAL);
}

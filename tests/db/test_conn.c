/*
 * tests/db/test_conn.c: opening connections to the throwaway PostgreSQL:
 * over the Unix socket, over TCP with a URI, with a scram-sha-256
 * password; and the faults: wrong password, missing database, nothing
 * listening, a listener that never answers (connect timeout), a malformed
 * conninfo, a call outside a task.
 */
#include "tests/db/db_test.h"

struct open_case {
    char conninfo[512];
    int64_t timeout_ns;
    int rc;
    struct eddy_pg_error err;
    int64_t elapsed_ns;
    char answer[64];
};

static intptr_t open_task(void *arg)
{
    struct open_case *oc = arg;
    struct eddy_pg *c = NULL;
    /* The loop's time, which timeouts count from (read once per loop
     * iteration: a fresh clock read would be later, and a timeout that
     * fires on time would look early). */
    int64_t t0 = eddy_now_ns();
    oc->rc = eddy_pg_open(oc->conninfo, oc->timeout_ns, &oc->err, &c);
    oc->elapsed_ns = eddy_clock_ns() - t0;
    if (oc->rc == 0) {
        cr_assert_not_null(c);
        struct eddy_pg_result *r;
        cr_assert_eq(
            eddy_pg_fetch_one(c, "SELECT current_user || '@' || current_database()", 0, NULL, &r),
            1);
        const char *s;
        cr_assert_eq(eddy_pg_result_text(r, 0, 0, &s, NULL), 0);
        snprintf(oc->answer, sizeof(oc->answer), "%s", s);
        eddy_pg_result_free(r);
        cr_assert_not(eddy_pg_is_broken(c));
        eddy_pg_close(c);
    } else {
        cr_assert_null(c);
    }
    return 0;
}

static struct open_case open_with(const char *conninfo, int64_t timeout_ns)
{
    struct open_case oc = {.timeout_ns = timeout_ns};
    snprintf(oc.conninfo, sizeof(oc.conninfo), "%s", conninfo);
    rt_run(open_task, &oc);
    return oc;
}

EDDY_TEST(db_conn, open_over_the_unix_socket_runs_a_query)
{
    struct open_case oc = open_with(db_conninfo(), DB_CONNECT_TIMEOUT_NS);
    cr_assert_eq(oc.rc, 0, "%s: %s", eddy_strerror(oc.rc), oc.err.message);
    cr_assert_str_eq(oc.answer, "postgres@eddy_test");
}

EDDY_TEST(db_conn, open_accepts_a_uri_over_tcp)
{
    db_conninfo();
    char uri[256];
    snprintf(uri, sizeof(uri), "postgresql://postgres@127.0.0.1:%s/eddy_test",
             db_env("EDDY_PG_PORT"));
    struct open_case oc = open_with(uri, 0);
    cr_assert_eq(oc.rc, 0, "%s: %s", eddy_strerror(oc.rc), oc.err.message);
    cr_assert_str_eq(oc.answer, "postgres@eddy_test");
}

EDDY_TEST(db_conn, open_with_the_right_scram_password_succeeds)
{
    db_conninfo();
    char ci[256];
    snprintf(ci, sizeof(ci),
             "host=127.0.0.1 port=%s dbname=eddy_test user=eddy_pw password=eddy-secret",
             db_env("EDDY_PG_PORT"));
    struct open_case oc = open_with(ci, DB_CONNECT_TIMEOUT_NS);
    cr_assert_eq(oc.rc, 0, "%s: %s", eddy_strerror(oc.rc), oc.err.message);
    cr_assert_str_eq(oc.answer, "eddy_pw@eddy_test");
}

EDDY_TEST(db_conn, open_with_a_wrong_password_is_eacces_with_sqlstate_28p01)
{
    db_conninfo();
    char ci[256];
    /* Over the socket and over TCP: both are scram-sha-256 for eddy_pw. */
    const char *hosts[] = {db_env("EDDY_PG_HOST"), "127.0.0.1"};
    for (int i = 0; i < 2; i++) {
        snprintf(ci, sizeof(ci), "host=%s port=%s dbname=eddy_test user=eddy_pw password=wrong",
                 hosts[i], db_env("EDDY_PG_PORT"));
        struct open_case oc = open_with(ci, DB_CONNECT_TIMEOUT_NS);
        cr_assert_eq(oc.rc, -EACCES, "%s: %s", eddy_strerror(oc.rc), oc.err.message);
        cr_assert_str_eq(oc.err.sqlstate, "28P01");
        cr_assert(strstr(oc.err.message, "password authentication failed"), "message: %s",
                  oc.err.message);
    }
}

EDDY_TEST(db_conn, open_of_a_missing_database_is_enoent_with_sqlstate_3d000)
{
    db_conninfo();
    char ci[256];
    snprintf(ci, sizeof(ci), "host=%s port=%s dbname=no_such_db user=postgres",
             db_env("EDDY_PG_HOST"), db_env("EDDY_PG_PORT"));
    struct open_case oc = open_with(ci, DB_CONNECT_TIMEOUT_NS);
    cr_assert_eq(oc.rc, -ENOENT, "%s: %s", eddy_strerror(oc.rc), oc.err.message);
    cr_assert_str_eq(oc.err.sqlstate, "3D000");
    cr_assert(strstr(oc.err.message, "no_such_db"), "message: %s", oc.err.message);
}

/* A loopback port with nothing listening: bound, then closed. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

EDDY_TEST(db_conn, open_where_nothing_listens_is_econnrefused)
{
    char ci[256];
    snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=x user=x", dead_port());
    struct open_case oc = open_with(ci, DB_CONNECT_TIMEOUT_NS);
    cr_assert_eq(oc.rc, -ECONNREFUSED, "%s: %s", eddy_strerror(oc.rc), oc.err.message);
    cr_assert_str_eq(oc.err.sqlstate, "");
    cr_assert(strstr(oc.err.message, "refused"), "message: %s", oc.err.message);
}

/* How long after its timeout a connect may return. */
#define DB_TIMEOUT_TOLERANCE_NS (rt_late_tolerance_ns())

EDDY_TEST(db_conn, open_times_out_against_a_listener_that_never_answers)
{
    /* The kernel completes the TCP handshake into the backlog; nobody ever
     * reads the startup packet. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(lfd, 4), 0);
    socklen_t len = sizeof(a);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    char ci[256];
    snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=x user=x sslmode=disable",
             ntohs(a.sin_port));
    const int64_t timeout = 200 * EDDY_NS_PER_MS;
    struct open_case oc = open_with(ci, timeout);
    close(lfd);
    cr_assert_eq(oc.rc, -ETIMEDOUT, "%s: %s", eddy_strerror(oc.rc), oc.err.message);
    cr_assert_geq(oc.elapsed_ns, timeout);
    cr_assert_leq(oc.elapsed_ns, timeout + DB_TIMEOUT_TOLERANCE_NS, "took %lld ns",
                  (long long)oc.elapsed_ns);
}

EDDY_TEST(db_conn, open_with_a_malformed_conninfo_is_einval)
{
    struct open_case oc = open_with("host=/tmp port", DB_CONNECT_TIMEOUT_NS);
    cr_assert_eq(oc.rc, -EINVAL, "%s", eddy_strerror(oc.rc));
    cr_assert_neq(oc.err.message[0], 0);
    oc = open_with("nosuchkey=1", DB_CONNECT_TIMEOUT_NS);
    cr_assert_eq(oc.rc, -EINVAL, "%s", eddy_strerror(oc.rc));
}

EDDY_TEST(db_conn, open_outside_a_task_is_einval)
{
    struct eddy_pg *c = (struct eddy_pg *)1;
    struct eddy_pg_error err;
    cr_assert_eq(eddy_pg_open("dbname=x", 0, &err, &c), -EINVAL);
    cr_assert_eq(eddy_pg_open(NULL, 0, NULL, &c), -EINVAL);
    eddy_pg_close(NULL);
}

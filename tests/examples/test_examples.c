/*
 * tests/examples/test_examples.c: runs each example program built by make
 * (EDDY_BUILD/examples/NAME; `make test` sets EDDY_BUILD) and compares its
 * whole output and exit status with what the example promises. The
 * shutdown example gets its signal from here, with kill(2), once it says
 * it is ready. The db_* examples need the PostgreSQL that make test starts
 * (tests/db/pg_server.sh); without it they report themselves skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/http/http_test.h"
#include "tests/support/test.h"

/* Runs the example, returns its stdout (malloc'd) and exit status. */
static char *run_example(const char *name, int *status)
{
    const char *build = getenv("EDDY_BUILD");
    cr_assert_not_null(build, "EDDY_BUILD is not set (run the tests through make test)");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s/examples/%s", build, name);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run %s", cmd);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 64)
            out = realloc(out, cap *= 2);
    }
    out[len] = 0;
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

static void check_example(const char *name, const char *expected)
{
    int status;
    char *out = run_example(name, &status);
    cr_expect_eq(status, 0, "%s exited with %d", name, status);
    cr_expect_str_eq(out, expected, "%s printed:\n%s", name, out);
    free(out);
}

EDDY_TEST(examples, gather_returns_results_in_call_order)
{
    check_example("gather", "B done\n"
                            "C done\n"
                            "A done\n"
                            "results in call order: A=4 B=9 C=16\n");
}

EDDY_TEST(examples, as_completed_prints_b_c_a)
{
    check_example("as_completed", "B (call 1)\n"
                                  "C (call 2)\n"
                                  "A (call 0)\n");
}

EDDY_TEST(examples, semaphore_lets_ten_tasks_through_three_at_a_time)
{
    char expected[2048] = "";
    for (int batch = 0; batch < 4; batch++) {
        int first = batch * 3, last = batch == 3 ? 9 : first + 2;
        for (int i = first; i <= last; i++)
            snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected),
                     "worker %d in (%d inside)\n", i, i - first + 1);
        for (int i = first; i <= last; i++)
            snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected),
                     "worker %d out\n", i);
    }
    strcat(expected, "at most 3 inside at once\n");
    check_example("semaphore", expected);
}

EDDY_TEST(examples, producer_consumer_ends_at_the_end_marker)
{
    check_example("producer_consumer", "put 1\n"
                                       "put 2\n"
                                       "got 1\n"
                                       "put 3\n"
                                       "got 2\n"
                                       "put 4\n"
                                       "got 3\n"
                                       "put 5\n"
                                       "got 4\n"
                                       "got 5\n"
                                       "end marker: done\n"
                                       "sum of items: 15\n");
}

EDDY_TEST(examples, retry_backs_off_until_the_flaky_operation_succeeds)
{
    check_example("retry", "attempt 1: connection reset\n"
                           "attempt 2: connection reset\n"
                           "attempt 3: connection reset\n"
                           "attempt 4: ok\n"
                           "fetched with status 200\n");
}

EDDY_TEST(examples, wait_for_cancels_the_slow_task_and_a_shielded_task_runs_on)
{
    check_example("wait_for", "fast: started\n"
                              "fast: finished\n"
                              "fast: in time, result 42\n"
                              "slow: started\n"
                              "slow: cancelled while sleeping\n"
                              "slow: timed out after 50 ms; its cleanup ran before wait_for "
                              "returned\n"
                              "save: started\n"
                              "save: the wait timed out after 10 ms, the task is still running\n"
                              "save: finished\n"
                              "save: result 42\n");
}

EDDY_TEST(examples, background_cancel_flushes_inside_a_shield_after_the_cancel)
{
    check_example("background_cancel",
                  "writer: buffered record 1\n"
                  "writer: buffered record 2\n"
                  "writer: buffered record 3\n"
                  "main: shutting down, cancelling the writer\n"
                  "writer: cancelled with 3 records buffered\n"
                  "writer: outside a shield, a sleep fails at once: ECANCELED: the task was "
                  "cancelled\n"
                  "writer: flushed record 1\n"
                  "writer: flushed record 2\n"
                  "writer: flushed record 3\n"
                  "writer: flush done, leaving\n"
                  "main: the writer ended with ECANCELED: the task was cancelled; 3 of 3 "
                  "records flushed\n");
}

EDDY_TEST(examples, task_queue_returns_each_result_through_its_future)
{
    check_example("task_queue", "submitted 8 jobs to 3 workers\n"
                                "job 0: 0\n"
                                "job 1: 1\n"
                                "job 2: 4\n"
                                "job 3: 9\n"
                                "job 4: 16\n"
                                "job 5: 25\n"
                                "job 6: 36\n"
                                "job 7: failed (ERANGE: result out of range)\n"
                                "queue closed; the workers handled 8 jobs in all\n");
}

EDDY_TEST(examples, perf_monitor_counts_calls_and_errors_per_operation)
{
    check_example("perf_monitor", "operation    calls errors\n"
                                  "fetch_user      20      4\n"
                                  "  min <= mean <= max and p50 <= p99 <= max: yes\n"
                                  "save_order       6      1\n"
                                  "  min <= mean <= max and p50 <= p99 <= max: yes\n");
}

/* Starts the example with its stdout on a pipe, waits for its "ready"
 * line, sends it sig with kill(2) and returns everything it printed, with
 * its exit status in *status. */
static char *run_until_signal(const char *name, int sig, int *status)
{
    const char *build = getenv("EDDY_BUILD");
    cr_assert_not_null(build, "EDDY_BUILD is not set (run the tests through make test)");
    char path[512];
    snprintf(path, sizeof(path), "%s/examples/%s", build, name);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    /* Its stderr names its pid for people: not compared, not shown. */
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    char *argv[] = {path, NULL};
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, path, &fa, NULL, argv, environ), 0, "cannot run %s", path);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    bool sent = false;
    for (;;) {
        ssize_t n = read(fds[0], out + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        out[len] = 0;
        if (!sent && strstr(out, "ready\n")) {
            cr_assert_eq(kill(pid, sig), 0);
            sent = true;
        }
        if (cap - len < 64)
            out = realloc(out, cap *= 2);
    }
    out[len] = 0;
    close(fds[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    return out;
}

EDDY_TEST(examples, shutdown_stops_the_server_gracefully_on_sigterm_and_sigint)
{
    static const int sigs[] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; i++) {
        int status;
        char *out = run_until_signal("shutdown", sigs[i], &status);
        char expected[512];
        snprintf(expected, sizeof(expected),
                 "server: 3 workers serving\n"
                 "ready\n"
                 "got %s: shutting down\n"
                 "server: stopping, the workers finish their requests\n"
                 "server: 3 of 3 workers finished cleanly\n"
                 "bye\n",
                 sigs[i] == SIGTERM ? "SIGTERM" : "SIGINT");
        cr_expect_eq(status, 0, "shutdown ended with %d", status);
        cr_expect_str_eq(out, expected, "shutdown printed:\n%s", out);
        free(out);
    }
}

EDDY_TEST(examples, http_server_answers_its_own_client_then_stops)
{
    check_example("http_server", "HTTP/1.1 200 OK\n"
                                 "  Hello, world!\n"
                                 "HTTP/1.1 200 OK\n"
                                 "  Hello, eddy!\n"
                                 "HTTP/1.1 404 Not Found\n"
                                 "  404 Not Found\n"
                                 "client done, stopping the server\n"
                                 "server stopped: success\n");
}

EDDY_TEST(examples, files_writes_reads_lines_gathers_lists_and_cleans_up)
{
    check_example("files", "wrote notes.txt (24 bytes)\n"
                           "line 1: apples 3\n"
                           "line 2: pears 5\n"
                           "line 3: plums 7 (no newline)\n"
                           "total fruit: 15\n"
                           "read part-1.txt: 100 bytes\n"
                           "read part-2.txt: 200 bytes\n"
                           "read part-3.txt: 300 bytes\n"
                           "directory: notes.txt part-1.txt part-2.txt part-3.txt\n"
                           "notes.txt: 24 bytes, a regular file\n"
                           "removed 4 files and the directory\n");
}

/* How far the example's timings may stray from the ideal on a loaded machine. */
#define FETCH_SLACK_S 1.0

/* Checks fetch_concurrent's report: ten pages each way, the sequential
 * run about ten waits long, the concurrent one about one. */
static void check_fetch_report(const char *out, int status)
{
    cr_expect_eq(status, 0, "fetch_concurrent printed:\n%s", out);
    int seq_ok = 0, conc_ok = 0;
    double seq = 0, conc = 0, speedup = 0;
    cr_assert_eq(sscanf(out,
                        "sequential: %d of 10 pages in %lf s\n"
                        "concurrent: %d of 10 pages in %lf s\n"
                        "speedup: %lfx\n",
                        &seq_ok, &seq, &conc_ok, &conc, &speedup),
                 5, "fetch_concurrent printed:\n%s", out);
    cr_expect_eq(seq_ok, 10);
    cr_expect_eq(conc_ok, 10);
    cr_expect_geq(seq, 1.0, "%s", out);
    cr_expect_lt(seq, 1.0 + FETCH_SLACK_S, "%s", out);
    cr_expect_geq(conc, 0.1, "%s", out);
    cr_expect_lt(conc, 0.1 + FETCH_SLACK_S, "%s", out);
}

EDDY_TEST(examples, fetch_concurrent_overlaps_ten_slow_pages)
{
    int status;
    char *out = run_example("fetch_concurrent", &status);
    check_fetch_report(out, status);
    free(out);
}

static int slow_page(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    int rc = eddy_sleep_ms(100);
    return rc < 0 ? rc : eddy_http_respond(ex, 200, "text/plain", "slow", 4);
}

static int link_page(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    static const char html[] = "<title>Index</title><a href=\"/slow\">s</a> <a href=\"x/y\">y</a>"
                               " <a href=\"http://127.0.0.1:1/\">closed</a>";
    return eddy_http_respond(ex, 200, "text/html", html, sizeof(html) - 1);
}

static int y_page(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    return eddy_http_respond(ex, 200, "text/html", "<title> Why </title>", 20);
}

static void example_routes(struct eddy_http_server *srv, void *arg)
{
    (void)arg;
    eddy_http_server_route(srv, "GET", "/slow", slow_page, NULL);
    eddy_http_server_route(srv, "GET", "/dir/index", link_page, NULL);
    eddy_http_server_route(srv, "GET", "/dir/x/y", y_page, NULL);
}

EDDY_TEST(examples, fetch_concurrent_and_crawler_take_a_url_of_another_server)
{
    struct ht_server s = {0};
    ht_start(&s, example_routes, NULL);
    char args[128];
    snprintf(args, sizeof(args), "fetch_concurrent http://127.0.0.1:%u/slow", s.port);
    int status;
    char *out = run_example(args, &status);
    check_fetch_report(out, status);
    free(out);
    snprintf(args, sizeof(args), "crawler http://127.0.0.1:%u/dir/index", s.port);
    out = run_example(args, &status);
    cr_expect_eq(status, 0, "%s", out);
    cr_expect_str_eq(out, "start: Index\n"
                          "  /slow: (no title)\n"
                          "  /dir/x/y: Why\n"
                          "  /: failed (ECONNREFUSED: connection refused)\n");
    free(out);
    ht_stop(&s);
    /* Each example reused its keep-alive connections. */
    cr_expect_leq(s.stats.connections_accepted, 12u);
}

EDDY_TEST(examples, crawler_prints_each_linked_page_title_in_link_order)
{
    check_example("crawler", "start: Home\n"
                             "  /about: About eddy\n"
                             "  /blog: The blog\n"
                             "  /blog/first: Hello, crawler\n"
                             "  /contact: Contact\n"
                             "  /gone: HTTP 404\n");
}

/* ---- PostgreSQL examples: need the server of tests/db/pg_server.sh ----------- */

static void need_postgres(void)
{
    const char *skip = getenv("EDDY_PG_SKIP");
    if (skip)
        cr_skip_test("no PostgreSQL for the db examples: %s", skip);
    if (!getenv("EDDY_PG_CONNINFO"))
        cr_skip_test("EDDY_PG_CONNINFO is not set: run the tests through make test, which "
                     "starts a throwaway PostgreSQL (tests/db/pg_server.sh)");
}

EDDY_TEST(examples, db_users_creates_inserts_and_fetches_by_id_and_all)
{
    need_postgres();
    check_example("db_users", "created table ex_users\n"
                              "inserted alice (1 row)\n"
                              "inserted bob (1 row)\n"
                              "inserted carol (1 row)\n"
                              "inserting a second bob@example.com: EEXIST: already exists, "
                              "SQLSTATE 23505\n"
                              "user 2:\n"
                              "  2 bob <bob@example.com>\n"
                              "all 3 users:\n"
                              "  1 alice <alice@example.com>\n"
                              "  2 bob <bob@example.com>\n"
                              "  3 carol <carol@example.com>\n");
}

EDDY_TEST(examples, db_transfer_commits_one_transfer_and_rolls_back_the_overdraft)
{
    need_postgres();
    check_example("db_transfer",
                  "before:\n"
                  "  alice: 100\n"
                  "  bob: 20\n"
                  "transfer 30 alice -> bob: committed\n"
                  "transfer 500 bob -> alice: rolled back, EREMOTEIO: the database server "
                  "reported an error (its SQLSTATE: eddy_pg_error) (SQLSTATE 23514)\n"
                  "after:\n"
                  "  alice: 70\n"
                  "  bob: 50\n");
}

EDDY_TEST(examples, db_pool_runs_twenty_queries_through_five_connections)
{
    need_postgres();
    check_example("db_pool", "20 queries through a pool of at most 5 connections\n"
                             "failed: 0, sum of results: 1900\n"
                             "connections opened: 5, acquires: 20, in use now: 0\n");
}

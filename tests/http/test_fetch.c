/*
 * tests/http/test_fetch.c: the eddy-fetch program as its users run it:
 * every mode against eddy's server, --json parsed field by field, exit
 * status and error counting against a refused port, the request flags
 * (method, body, headers, a file of URLs), and the sync-vs-async
 * reproduction in small: async finishes N slow requests in about the time
 * of one, sync needs N times that.
 */
#include <sys/stat.h>

#include "tests/http/http_test.h"

/* How much longer than the ideal a timed run may take on a loaded machine. */
#define FT_SLACK_S 1.5

static int r_plain(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    return eddy_http_respond(ex, 200, "text/plain", "Hello, World!", 13);
}

static int r_slow(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    int rc = eddy_sleep_ms(100);
    return rc < 0 ? rc : eddy_http_respond(ex, 200, "text/plain", "slow", 4);
}

/* 200 only for a POST of "abc" with X-Key: k. */
static int r_check(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    char body[16];
    ssize_t n = eddy_http_body_read_all(ex, body, sizeof(body));
    size_t len;
    const char *k = eddy_http_header(ex, "X-Key", &len);
    bool ok = eddy_http_req(ex)->method == EDDY_HTTP_POST && n == 3 && !memcmp(body, "abc", 3) &&
              k && len == 1 && *k == 'k';
    return eddy_http_respond(ex, ok ? 200 : 400, "text/plain", ok ? "ok" : "no", 2);
}

static void routes(struct eddy_http_server *srv, void *arg)
{
    (void)arg;
    eddy_http_server_route(srv, "GET", "/plaintext", r_plain, NULL);
    eddy_http_server_route(srv, "GET", "/slow", r_slow, NULL);
    eddy_http_server_route(srv, NULL, "/check", r_check, NULL);
}

/* Runs eddy-fetch with args (one shell-quoted string); returns stdout. */
static char *fetch(const char *args, int *status)
{
    const char *build = getenv("EDDY_BUILD");
    cr_assert_not_null(build, "EDDY_BUILD is not set (run the tests through make test)");
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "%s/bin/eddy-fetch %s 2>/dev/null", build, args);
    return ht_shell(cmd, status);
}

/* The number after "key": in a flat JSON text, or -1. */
static double json_num(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p)
        return -1;
    return strtod(p + strlen(pat), NULL);
}

static void check_json_run(uint16_t port, const char *mode, int c)
{
    char args[512];
    snprintf(args, sizeof(args),
             "--mode %s -n 200 -c %d --json http://127.0.0.1:%u/plaintext "
             "http://127.0.0.1:%u/nope",
             mode, c, port, port);
    int status;
    char *out = fetch(args, &status);
    cr_expect_eq(status, 1, "%s: 404s are failures", mode);
    cr_expect_eq(json_num(out, "requests"), 200, "%s: %s", mode, out);
    cr_expect_eq(json_num(out, "errors"), 100, "%s: %s", mode, out);
    cr_expect_eq(json_num(out, "http_errors"), 100, "%s: %s", mode, out);
    /* 100 bodies of 13 bytes and 100 of the 404 page. */
    cr_expect_gt(json_num(out, "bytes"), 100 * 13, "%s: %s", mode, out);
    cr_expect_eq(json_num(out, "2xx"), 100, "%s: %s", mode, out);
    cr_expect_eq(json_num(out, "4xx"), 100, "%s: %s", mode, out);
    cr_expect_gt(json_num(out, "seconds"), 0);
    cr_expect_gt(json_num(out, "rps"), 0);
    double p50 = json_num(out, "p50"), p90 = json_num(out, "p90"), p99 = json_num(out, "p99"),
           max = json_num(out, "max");
    cr_expect(p50 > 0 && p50 <= p90 && p90 <= p99 && p99 <= max, "%s", out);
    cr_expect_not_null(strstr(out, "\"latency_ms\":{"), "%s", out);
    cr_expect_not_null(strstr(out, "\"mode\":\""), "%s", out);
    free(out);
}

EDDY_TEST(eddy_fetch, every_mode_reports_json_and_fails_on_4xx)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    check_json_run(s.port, "sync", 1);
    check_json_run(s.port, "threads", 4);
    check_json_run(s.port, "async", 8);
    ht_stop(&s);
    /* Keep-alive: sync 1 connection, threads 4, async 8. */
    cr_expect_eq(s.stats.connections_accepted, 13u);
    cr_expect_eq(s.stats.requests, 600u);
}

EDDY_TEST(eddy_fetch, counts_every_request_to_a_refused_port_as_an_error)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    const char *modes[] = {"sync", "threads", "async"};
    for (int i = 0; i < 3; i++) {
        char args[256];
        snprintf(args, sizeof(args), "--mode %s -n 7 --json http://127.0.0.1:%u/", modes[i],
                 ntohs(a.sin_port));
        int status;
        char *out = fetch(args, &status);
        cr_expect_eq(status, 1, "%s", modes[i]);
        cr_expect_eq(json_num(out, "requests"), 7, "%s: %s", modes[i], out);
        cr_expect_eq(json_num(out, "errors"), 7, "%s: %s", modes[i], out);
        cr_expect_eq(json_num(out, "ECONNREFUSED"), 7, "%s: %s", modes[i], out);
        free(out);
    }
}

EDDY_TEST(eddy_fetch, sends_method_body_and_headers_and_reads_a_url_file)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    char path[64];
    snprintf(path, sizeof(path), "/tmp/eddy-fetch-urls-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    fprintf(f, "# a comment\nhttp://127.0.0.1:%u/check\n\n  http://127.0.0.1:%u/check\n", s.port,
            s.port);
    fclose(f);
    char body[64];
    snprintf(body, sizeof(body), "/tmp/eddy-fetch-body-%d", (int)getpid());
    f = fopen(body, "w");
    fputs("abc", f);
    fclose(f);
    const char *modes[] = {"sync", "threads", "async"};
    for (int i = 0; i < 3; i++) {
        char args[512];
        snprintf(args, sizeof(args), "--mode %s -n 6 --urls %s -d abc -H 'X-Key: k' --json",
                 modes[i], path);
        int status;
        char *out = fetch(args, &status);
        cr_expect_eq(status, 0, "%s: %s", modes[i], out);
        cr_expect_eq(json_num(out, "errors"), 0, "%s: %s", modes[i], out);
        cr_expect_eq(json_num(out, "urls"), 2, "%s: %s", modes[i], out);
        free(out);
        snprintf(args, sizeof(args),
                 "--mode %s -X POST --data-file %s -H 'X-Key: k' --json "
                 "http://127.0.0.1:%u/check",
                 modes[i], body, s.port);
        out = fetch(args, &status);
        cr_expect_eq(status, 0, "%s: %s", modes[i], out);
        free(out);
        /* Without the header the server says 400: an error. */
        snprintf(args, sizeof(args), "--mode %s -d abc --json http://127.0.0.1:%u/check", modes[i],
                 s.port);
        out = fetch(args, &status);
        cr_expect_eq(status, 1, "%s: %s", modes[i], out);
        free(out);
    }
    unlink(path);
    unlink(body);
    ht_stop(&s);
}

EDDY_TEST(eddy_fetch, text_report_help_and_bad_usage)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    char args[256];
    snprintf(args, sizeof(args), "-n 3 http://127.0.0.1:%u/plaintext", s.port);
    int status;
    char *out = fetch(args, &status);
    cr_expect_eq(status, 0);
    cr_expect_not_null(strstr(out, "requests  3 (errors 0)"), "%s", out);
    cr_expect_not_null(strstr(out, "latency   p50 "), "%s", out);
    cr_expect_not_null(strstr(out, "requests/s"), "%s", out);
    free(out);
    ht_stop(&s);
    out = fetch("--help", &status);
    cr_expect_eq(status, 0);
    cr_expect_not_null(strstr(out, "--mode sync|threads|async"), "%s", out);
    free(out);
    static const char *const bad[] = {
        "",
        "--mode fast http://h/",
        "-n 0 http://h/",
        "-c x http://h/",
        "not-a-url",
        "--mode sync -c 2 http://h/",
        "--urls /nonexistent/file",
        "-H nocolon http://h/",
        "--data-file /nonexistent http://h/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        out = fetch(bad[i], &status);
        cr_expect_eq(status, 2, "'%s' exited %d", bad[i], status);
        free(out);
    }
}

static double timed_run(uint16_t port, const char *mode, int n)
{
    char args[256];
    snprintf(args, sizeof(args), "--mode %s -n %d -c %d --json http://127.0.0.1:%u/slow", mode, n,
             strcmp(mode, "sync") ? n : 1, port);
    int status;
    char *out = fetch(args, &status);
    cr_expect_eq(status, 0, "%s: %s", mode, out);
    cr_expect_eq(json_num(out, "errors"), 0, "%s: %s", mode, out);
    double seconds = json_num(out, "seconds");
    free(out);
    return seconds;
}

EDDY_TEST(eddy_fetch, async_and_threads_overlap_the_waits_that_sync_serializes)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    double sync_s = timed_run(s.port, "sync", 10);
    double threads_s = timed_run(s.port, "threads", 10);
    double async_s = timed_run(s.port, "async", 50);
    ht_stop(&s);
    cr_expect_geq(sync_s, 1.0, "sync: %.3f s", sync_s);
    cr_expect_lt(sync_s, 1.0 + FT_SLACK_S, "sync: %.3f s", sync_s);
    cr_expect_geq(threads_s, 0.1);
    cr_expect_lt(threads_s, 0.1 + FT_SLACK_S, "threads: %.3f s", threads_s);
    cr_expect_geq(async_s, 0.1);
    cr_expect_lt(async_s, 0.1 + FT_SLACK_S, "async: %.3f s", async_s);
}

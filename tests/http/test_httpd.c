/*
 * tests/http/test_httpd.c: the eddy-httpd program as its users run it:
 * flags, routes, a short wrk load with zero errors, and the graceful stop
 * on SIGTERM that loses no request in flight.
 */
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "tests/http/http_test.h"
#include "tools/cpu_work.h"

struct httpd {
    pid_t pid;
    uint16_t port;
    FILE *out;
};

/* Starts build/bin/eddy-httpd with args (a NULL-terminated list after the
 * program name) on port 0 and reads the port it printed. */
static void httpd_start(struct httpd *h, const char *const *args)
{
    const char *build = getenv("EDDY_BUILD");
    cr_assert_not_null(build, "EDDY_BUILD is not set (run the tests through make test)");
    char prog[256];
    snprintf(prog, sizeof(prog), "%s/bin/eddy-httpd", build);
    const char *argv[16] = {prog, "--port", "0"};
    int n = 3;
    for (; args && *args && n < 15; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    int out[2];
    cr_assert_eq(pipe(out), 0);
    h->pid = fork();
    cr_assert_geq(h->pid, 0);
    if (h->pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    h->out = fdopen(out[0], "r");
    char line[256];
    cr_assert_not_null(fgets(line, sizeof(line), h->out), "eddy-httpd printed nothing");
    unsigned port = 0;
    cr_assert_eq(sscanf(line, "eddy-httpd listening on 127.0.0.1:%u", &port), 1, "%s", line);
    h->port = (uint16_t)port;
}

/* Sends sig and returns the exit status (-1 when killed by a signal). */
static int httpd_signal_and_wait(struct httpd *h, int sig)
{
    kill(h->pid, sig);
    int st;
    cr_assert_eq(waitpid(h->pid, &st, 0), h->pid);
    fclose(h->out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

EDDY_TEST(httpd, serves_the_design_routes_and_stops_on_sigterm)
{
    char root[64];
    snprintf(root, sizeof(root), "/tmp/eddy-httpd-root-%d", (int)getpid());
    mkdir(root, 0755);
    char path[128];
    snprintf(path, sizeof(path), "%s/f.json", root);
    FILE *f = fopen(path, "w");
    fputs("{\"a\":1}", f);
    fclose(f);
    const char *args[] = {"--root", root, NULL};
    struct httpd h;
    httpd_start(&h, args);
    size_t len;
    char *r = ht_exchange(h.port, "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                          &len);
    cr_expect_not_null(strstr(r, "Content-Length: 13\r\n"), "%s", r);
    cr_expect_not_null(strstr(r, "\r\n\r\nHello, World!"), "%s", r);
    free(r);
    r = ht_exchange(h.port, "GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
    cr_expect_not_null(strstr(r, "Content-Type: application/json\r\n"), "%s", r);
    cr_expect_not_null(strstr(r, "\r\n\r\n{\"message\":\"Hello, World!\"}"), "%s", r);
    free(r);
    r = ht_exchange(h.port, "GET /delay?ms=20 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    &len);
    cr_expect_eq(ht_status(r), 200, "%s", r);
    free(r);
    r = ht_exchange(h.port, "GET /delay?ms=x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    &len);
    cr_expect_eq(ht_status(r), 400, "%s", r);
    free(r);
    r = ht_exchange(
        h.port,
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        &len);
    cr_expect_not_null(strstr(r, "\r\n\r\nabc"), "%s", r);
    free(r);
    r = ht_exchange(h.port, "GET /files/f.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    &len);
    cr_expect_not_null(strstr(r, "\r\n\r\n{\"a\":1}"), "%s", r);
    free(r);
    cr_expect_eq(httpd_signal_and_wait(&h, SIGTERM), 0);
    unlink(path);
    rmdir(root);
}

static void *slow_request(void *arg)
{
    uint16_t port = *(uint16_t *)arg;
    size_t len;
    return ht_exchange(port, "GET /delay?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n", &len);
}

EDDY_TEST(httpd, sigterm_loses_no_request_in_flight_with_two_threads)
{
    const char *args[] = {"--threads", "2", NULL};
    struct httpd h;
    httpd_start(&h, args);
    enum { N = 8 };
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        pthread_create(&t[i], NULL, slow_request, &h.port);
    usleep(100 * 1000);
    cr_expect_eq(httpd_signal_and_wait(&h, SIGTERM), 0);
    for (int i = 0; i < N; i++) {
        char *r;
        pthread_join(t[i], (void **)&r);
        cr_expect_eq(ht_status(r), 200, "request %d lost: %s", i, r);
        free(r);
    }
}

EDDY_TEST(httpd, bad_flags_exit_2_and_help_exits_0)
{
    const char *build = getenv("EDDY_BUILD");
    cr_assert_not_null(build);
    const char *cases[][2] = {
        {"--port 70000", "2"},
        {"--threads 0", "2"},
        {"--host nothost", "2"},
        {"--bogus", "2"},
        {"--root /nonexistent-dir", "2"},
        {"--help", "0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "%s/bin/eddy-httpd %s >/dev/null 2>&1", build, cases[i][0]);
        int st = system(cmd);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == atoi(cases[i][1]), "%s: status %d",
                  cases[i][0], st);
    }
}

EDDY_TEST(httpd, a_short_wrk_load_has_no_errors)
{
    if (!ht_have("wrk"))
        cr_skip_test("wrk is not installed (make bench-deps)");
    if (eddy_test_under_valgrind())
        cr_skip_test("a load test says nothing under valgrind");
    struct httpd h;
    httpd_start(&h, NULL);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "wrk -t1 -c32 -d1s http://127.0.0.1:%u/plaintext 2>&1", h.port);
    int st;
    char *out = ht_shell(cmd, &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect_not_null(strstr(out, "Requests/sec"), "%s", out);
    cr_expect_null(strstr(out, "Socket errors"), "%s", out);
    cr_expect_null(strstr(out, "Non-2xx"), "%s", out);
    free(out);
    cr_expect_eq(httpd_signal_and_wait(&h, SIGTERM), 0);
}

/* GET /cpu?...; returns the body of a 200 answer (malloc'd), or NULL with
 * *status set to the other status. */
static char *get_cpu(uint16_t port, const char *query, int *status)
{
    char req[256];
    snprintf(req, sizeof(req), "GET /cpu%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             query);
    size_t len;
    char *r = ht_exchange(port, req, &len);
    *status = ht_status(r);
    char *body = strstr(r, "\r\n\r\n");
    char *out = *status == 200 && body ? strdup(body + 4) : NULL;
    free(r);
    return out;
}

EDDY_TEST(httpd, cpu_route_answers_the_same_hash_inline_and_offloaded)
{
    struct httpd h;
    httpd_start(&h, NULL);
    const unsigned long rounds[] = {0, 1, 1000, 54321};
    for (size_t i = 0; i < sizeof(rounds) / sizeof(rounds[0]); i++) {
        char want[32];
        snprintf(want, sizeof(want), "%016llx\n", (unsigned long long)cpu_work_rounds(rounds[i]));
        const char *offload[] = {"", "&offload=0", "&offload=1"};
        for (size_t j = 0; j < 3; j++) {
            char query[64];
            snprintf(query, sizeof(query), "?n=%lu%s", rounds[i], offload[j]);
            int status;
            char *body = get_cpu(h.port, query, &status);
            cr_expect_eq(status, 200, "%s", query);
            cr_expect_str_eq(body ? body : "", want, "%s", query);
            free(body);
        }
    }
    cr_expect_eq(httpd_signal_and_wait(&h, SIGTERM), 0);
}

EDDY_TEST(httpd, cpu_route_rejects_bad_rounds_and_offload_values_with_400)
{
    struct httpd h;
    httpd_start(&h, NULL);
    const char *bad[] = {"",
                         "?n=",
                         "?n=x",
                         "?n=-1",
                         "?n=1x",
                         "?n=100000001",
                         "?n=1&offload=2",
                         "?n=1&offload=",
                         "?offload=1",
                         "?n=99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int status;
        char *body = get_cpu(h.port, bad[i], &status);
        cr_expect_eq(status, 400, "%s answered %d", bad[i], status);
        free(body);
    }
    cr_expect_eq(httpd_signal_and_wait(&h, SIGTERM), 0);
}

/* Rounds for the loop-blocking tests: about 0.4 s in a release build. */
#define CPU_BLOCK_ROUNDS 5000000
/* Before /plaintext is sent, so that the loop has taken the /cpu request. */
#define CPU_HEAD_START_MS 50
/* /plaintext "waited for the CPU work" when it took at least this share of
 * the /cpu request's time, "did not" when it took less than the other. */
#define CPU_WAITED_SHARE 0.5
#define CPU_NOT_WAITED_SHARE 0.25

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Sends a long /cpu request (inline or offloaded) and, while it runs, a
 * /plaintext on another connection; returns each one's time to its answer. */
static void plaintext_beside_cpu(uint16_t port, bool offload, double *cpu_ms, double *plain_ms)
{
    char req[256];
    snprintf(req, sizeof(req), "GET /cpu?n=%d%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             CPU_BLOCK_ROUNDS, offload ? "&offload=1" : "");
    int fd = ht_connect(port);
    double t0 = now_ms();
    ht_send(fd, req, strlen(req));
    usleep(CPU_HEAD_START_MS * 1000);
    double t1 = now_ms();
    size_t len;
    char *r =
        ht_exchange(port, "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
    *plain_ms = now_ms() - t1;
    cr_expect_eq(ht_status(r), 200, "%s", r);
    free(r);
    r = ht_read_all(fd, &len);
    *cpu_ms = now_ms() - t0;
    cr_expect_eq(ht_status(r), 200, "%s", r);
    free(r);
    close(fd);
}

EDDY_TEST(httpd, inline_cpu_work_holds_up_the_loop_and_offloaded_work_does_not)
{
    if (eddy_test_under_valgrind())
        cr_skip_test("the timing says nothing under valgrind");
    struct httpd h;
    httpd_start(&h, NULL);
    double cpu_ms, plain_ms;
    plaintext_beside_cpu(h.port, false, &cpu_ms, &plain_ms);
    cr_expect_geq(plain_ms, cpu_ms * CPU_WAITED_SHARE,
                  "inline: /plaintext took %.1f ms beside a %.1f ms /cpu", plain_ms, cpu_ms);
    plaintext_beside_cpu(h.port, true, &cpu_ms, &plain_ms);
    cr_expect_lt(plain_ms, cpu_ms * CPU_NOT_WAITED_SHARE,
                 "offloaded: /plaintext took %.1f ms beside a %.1f ms /cpu", plain_ms, cpu_ms);
    cr_expect_eq(httpd_signal_and_wait(&h, SIGTERM), 0);
}

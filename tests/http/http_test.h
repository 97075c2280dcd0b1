/*
 * tests/http/http_test.h: a server on its own thread for the HTTP tests,
 * and blocking-socket clients that send raw bytes and read raw answers,
 * so that every byte on the wire is the test's to choose and to check.
 *
 * Static inline only, as tests/reactor/reactor_test.h.
 */
#ifndef EDDY_TESTS_HTTP_TEST_H
#define EDDY_TESTS_HTTP_TEST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <eddy/eddy.h>

#include "tests/support/test.h"

/* How long a raw client waits for an answer before the test fails. */
#define HT_READ_TIMEOUT_MS 10000

typedef void ht_setup_fn(struct eddy_http_server *srv, void *arg);

struct ht_server {
    struct eddy_http_server_opts opts;
    ht_setup_fn *setup;
    void *setup_arg;
    pthread_t thread;
    struct eddy_loop *loop;
    struct eddy_http_server *srv;
    uint16_t port;
    int serve_rc;
    struct eddy_http_server_stats stats; /* at the end of serve */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ready;
};

static inline intptr_t ht_serve(void *arg)
{
    struct ht_server *s = arg;
    int rc = eddy_http_server_create(&s->opts, &s->srv);
    cr_assert_eq(rc, 0, "%s", eddy_strerror(rc));
    if (s->setup)
        s->setup(s->srv, s->setup_arg);
    struct eddy_addr addr;
    eddy_addr_parse("127.0.0.1:0", &addr);
    cr_assert_eq(eddy_http_server_listen(s->srv, &addr, false), 0);
    eddy_http_server_addr(s->srv, &addr);
    pthread_mutex_lock(&s->lock);
    s->port = eddy_addr_port(&addr);
    s->loop = eddy_loop_current();
    s->ready = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    s->serve_rc = eddy_http_server_serve(s->srv);
    eddy_http_server_stats(s->srv, &s->stats);
    cr_expect_eq(eddy_http_server_destroy(s->srv), 0);
    return 0;
}

static inline void *ht_thread(void *arg)
{
    intptr_t r;
    eddy_run(ht_serve, arg, NULL, &r);
    return NULL;
}

/* Starts a server whose routes setup adds; returns when it listens. */
static inline void ht_start(struct ht_server *s, ht_setup_fn *setup, void *arg)
{
    s->setup = setup;
    s->setup_arg = arg;
    s->serve_rc = 1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    cr_assert_eq(pthread_create(&s->thread, NULL, ht_thread, s), 0);
    pthread_mutex_lock(&s->lock);
    while (!s->ready)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

static inline void ht_stop_cb(void *arg)
{
    eddy_http_server_stop(arg);
}

/* Stops the server gracefully, waits for its thread, frees it. */
static inline void ht_stop(struct ht_server *s)
{
    eddy_loop_post(s->loop, ht_stop_cb, s->srv);
    pthread_join(s->thread, NULL);
    cr_expect_eq(s->serve_rc, 0, "serve: %s", eddy_strerror(s->serve_rc));
}

/* ---- raw clients -------------------------------------------------------- */

static inline int ht_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static inline void ht_send(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        cr_assert_gt(n, 0, "send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

/* Reads until EOF (or the timeout); returns a malloc'd NUL-terminated
 * buffer and its length in *len. */
static inline char *ht_read_all(int fd, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, HT_READ_TIMEOUT_MS);
        cr_assert_gt(r, 0, "no answer (or no close) within %d ms; got so far:\n%.*s",
                     HT_READ_TIMEOUT_MS, (int)n, buf);
        if (cap - n < 4096)
            buf = realloc(buf, cap *= 2);
        ssize_t m = recv(fd, buf + n, cap - n - 1, 0);
        if (m <= 0)
            break; /* EOF, or a reset after the answer */
        n += (size_t)m;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Reads until want bytes arrived. Returns a malloc'd NUL-terminated buffer. */
static inline char *ht_read_n(int fd, size_t want)
{
    char *buf = malloc(want + 1);
    size_t n = 0;
    while (n < want) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        cr_assert_gt(poll(&p, 1, HT_READ_TIMEOUT_MS), 0, "timeout after %zu of %zu bytes", n, want);
        ssize_t m = recv(fd, buf + n, want - n, 0);
        cr_assert_gt(m, 0, "closed after %zu of %zu bytes:\n%.*s", n, want, (int)n, buf);
        n += (size_t)m;
    }
    buf[n] = 0;
    return buf;
}

/* Sends req on a fresh connection and returns everything until close. */
static inline char *ht_exchange(uint16_t port, const char *req, size_t *len)
{
    int fd = ht_connect(port);
    ht_send(fd, req, strlen(req));
    char *out = ht_read_all(fd, len);
    close(fd);
    return out;
}

/* The status code of the first response in buf, or -1. */
static inline int ht_status(const char *buf)
{
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    return status;
}

/* Runs a shell command, returns its stdout (malloc'd) and exit status. */
static inline char *ht_shell(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run %s", cmd);
    size_t cap = 65536, n = 0, m;
    char *out = malloc(cap);
    while ((m = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += m;
        if (cap - n < 1024)
            out = realloc(out, cap *= 2);
    }
    out[n] = 0;
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

static inline bool ht_have(const char *program)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", program);
    return system(cmd) == 0;
}

#endif

/*
 * bench/macro/threaded_httpd.c: the blocking baseline of the serve and cpu
 * suites of bench/run: one thread per connection, blocking accept/recv/send,
 * and eddy's HTTP parser (eddy_http_parse_request), so that the comparison
 * with eddy-httpd is threads against coroutines and not two parsers.
 *
 *   threaded_httpd [--host ADDR] [--port N] [--stack-kib N]
 *
 * Prints "threaded_httpd listening on ADDR:PORT" once it accepts, then
 * serves until killed (SIGTERM's default action: bench/run kills its
 * process group). Routes, with the bodies of eddy-httpd:
 *   /plaintext   "Hello, World!"
 *   /json        {"message":"Hello, World!"}
 *   /cpu?n=N     N rounds of tools/cpu_work.h's hash, on the connection's
 *                thread (so two connections use two cores)
 * Anything else is 404; a request with a body is read and its body dropped;
 * a malformed request gets the parser's status and the connection closes.
 * Keep-alive and pipelining as HTTP/1.1 says; the Date header is formatted
 * once per second per thread, as servers do.
 *
 * Each thread gets --stack-kib of stack (default 256): 10,000 connections
 * are 10,000 threads, and glibc's default 8 MiB stacks would reserve 80 GB
 * of address space (their RSS is only the pages touched either way). The
 * cost per connection is what this baseline exists to show: a thread, its
 * stack, and a context switch per request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <eddy/eddy.h>

#include "tools/cpu_work.h"

#define BUF_BYTES 8192
#define MAX_HEADERS 64
#define OUT_BYTES 512

static const char plaintext_body[] = "Hello, World!";
static const char json_body[] = "{\"message\":\"Hello, World!\"}";

struct conn {
    int fd;
    char buf[BUF_BYTES];
    size_t len;
    time_t date_at;
    char date[64];
};

/* Sends all of buf; false when the peer is gone. */
static bool send_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static const char *date_now(struct conn *c)
{
    time_t now = time(NULL);
    if (now != c->date_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(c->date, sizeof(c->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        c->date_at = now;
    }
    return c->date;
}

static bool respond(struct conn *c, unsigned status, const char *type, const char *body, size_t len,
                    bool keep_alive)
{
    char head[OUT_BYTES];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\nServer: threaded\r\nDate: %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     status, eddy_http_status_reason(status), date_now(c), type, len,
                     keep_alive ? "" : "Connection: close\r\n");
    if (n < 0 || (size_t)n >= sizeof(head))
        return false;
    /* One send for small answers: two would cost a second syscall and, with
     * Nagle off, a second segment. */
    if ((size_t)n + len <= sizeof(head)) {
        memcpy(head + n, body, len);
        return send_all(c->fd, head, (size_t)n + len);
    }
    return send_all(c->fd, head, (size_t)n) && send_all(c->fd, body, len);
}

/* The value of query parameter n, or -1 when absent or not a number in range. */
static long long query_rounds(const struct eddy_http_request *req)
{
    const char *q = req->query;
    size_t len = q ? req->query_len : 0;
    for (size_t i = 0; i + 2 <= len; i++) {
        if ((i == 0 || q[i - 1] == '&') && q[i] == 'n' && q[i + 1] == '=') {
            unsigned long long v = 0;
            size_t j = i + 2;
            if (j == len || q[j] == '&')
                return -1;
            for (; j < len && q[j] != '&'; j++) {
                if (q[j] < '0' || q[j] > '9' || v > CPU_WORK_MAX_ROUNDS)
                    return -1;
                v = v * 10 + (unsigned)(q[j] - '0');
            }
            return v <= CPU_WORK_MAX_ROUNDS ? (long long)v : -1;
        }
    }
    return -1;
}

static bool path_is(const struct eddy_http_request *req, const char *path)
{
    return req->path_len == strlen(path) && memcmp(req->path, path, req->path_len) == 0;
}

static bool handle(struct conn *c, const struct eddy_http_request *req)
{
    bool ka = req->keep_alive;
    if (req->method != EDDY_HTTP_GET)
        return respond(c, 405, "text/plain", "", 0, ka);
    if (path_is(req, "/plaintext"))
        return respond(c, 200, "text/plain", plaintext_body, sizeof(plaintext_body) - 1, ka);
    if (path_is(req, "/json"))
        return respond(c, 200, "application/json", json_body, sizeof(json_body) - 1, ka);
    if (path_is(req, "/cpu")) {
        long long n = query_rounds(req);
        if (n < 0) {
            static const char msg[] = "n must be an integer from 0 to 100000000\n";
            return respond(c, 400, "text/plain", msg, sizeof(msg) - 1, ka);
        }
        char body[32];
        int len = snprintf(body, sizeof(body), "%016llx\n",
                           (unsigned long long)cpu_work_rounds((uint64_t)n));
        return respond(c, 200, "text/plain", body, (size_t)len, ka);
    }
    static const char msg[] = "not found\n";
    return respond(c, 404, "text/plain", msg, sizeof(msg) - 1, ka);
}

/* Reads and drops n body bytes, the ones already buffered first. */
static bool skip_body(struct conn *c, uint64_t n)
{
    while (n) {
        if (c->len == 0) {
            ssize_t r = recv(c->fd, c->buf, sizeof(c->buf), 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return false;
            c->len = (size_t)r;
        }
        size_t take = c->len < n ? c->len : (size_t)n;
        memmove(c->buf, c->buf + take, c->len - take);
        c->len -= take;
        n -= take;
    }
    return true;
}

static void *serve_conn(void *arg)
{
    struct conn *c = arg;
    struct eddy_http_header headers[MAX_HEADERS];
    for (;;) {
        struct eddy_http_request req;
        int head = c->len
                       ? eddy_http_parse_request(c->buf, c->len, &req, headers, MAX_HEADERS, NULL)
                       : -EAGAIN;
        if (head == -EAGAIN) {
            if (c->len == sizeof(c->buf)) {
                respond(c, 431, "text/plain", "", 0, false);
                break;
            }
            ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            c->len += (size_t)r;
            continue;
        }
        if (head < 0) {
            respond(c, req.status ? req.status : 400, "text/plain", "", 0, false);
            break;
        }
        /* The handler answers before the consumed bytes move: req's views
         * point into buf. Bodies are not used by any route. */
        if (!handle(c, &req) || !req.keep_alive)
            break;
        memmove(c->buf, c->buf + head, c->len - (size_t)head);
        c->len -= (size_t)head;
        if (req.body == EDDY_HTTP_BODY_LENGTH && !skip_body(c, req.content_length))
            break;
        if (req.body == EDDY_HTTP_BODY_CHUNKED) {
            respond(c, 411, "text/plain", "", 0, false);
            break;
        }
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: threaded_httpd [--host ADDR] [--port N] [--stack-kib N]\n"
                "  one blocking thread per connection; routes /plaintext, /json, /cpu?n=N\n");
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"stack-kib", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *host = "127.0.0.1";
    long port = 8080, stack_kib = 256;
    int opt;
    char *end;
    while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'H':
            host = optarg;
            break;
        case 'p':
            port = strtol(optarg, &end, 10);
            if (*end || port < 0 || port > 65535) {
                fprintf(stderr, "threaded_httpd: --port wants 0 to 65535\n");
                return 2;
            }
            break;
        case 's':
            stack_kib = strtol(optarg, &end, 10);
            if (*end || stack_kib < 64 || stack_kib > 65536) {
                fprintf(stderr, "threaded_httpd: --stack-kib wants 64 to 65536\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "threaded_httpd: --host wants an IPv4 address, not '%s'\n", host);
        return 2;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 4096) < 0) {
        fprintf(stderr, "threaded_httpd: listen on %s:%ld: %s\n", host, port, strerror(errno));
        return 1;
    }
    socklen_t alen = sizeof(addr);
    getsockname(lfd, (struct sockaddr *)&addr, &alen);
    printf("threaded_httpd listening on %s:%u\n", host, ntohs(addr.sin_port));
    fflush(stdout);
    signal(SIGPIPE, SIG_IGN);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, (size_t)stack_kib * 1024);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            /* Out of descriptors or memory: say so once a second and keep
             * accepting, as servers do, rather than exit mid-benchmark. */
            fprintf(stderr, "threaded_httpd: accept: %s\n", strerror(errno));
            sleep(1);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        int rc = ENOMEM;
        if (c) {
            c->fd = fd;
            pthread_t t;
            rc = pthread_create(&t, &attr, serve_conn, c);
        }
        if (rc != 0) {
            fprintf(stderr, "threaded_httpd: thread for a connection: %s\n", strerror(rc));
            close(fd);
            free(c);
        }
    }
}

/*
 * bench/micro/bm_io.c: a TCP echo round trip over 127.0.0.1, eddy against
 * plain blocking sockets, in the same binary.
 *
 * Cases (case tcp_echo_roundtrip, param = message bytes):
 *   BM_tcp_echo_roundtrip           impl eddy: a client task and a server
 *                                   task of one loop on one thread. Per
 *                                   round trip: two writes, two reads, and
 *                                   two parks through epoll, since the
 *                                   peer's reply is never there yet.
 *   BM_tcp_echo_roundtrip_blocking  impl threads-blocking: a client thread
 *                                   and a server thread with blocking
 *                                   sockets, each read a futex-style sleep
 *                                   and wakeup in the kernel.
 * Both use TCP_NODELAY and the same message sizes; the kernel's loopback
 * path is common to both, so the difference is the waiting.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <eddy/eddy.h>

#include "bench/micro/gbench.h"
#include "bench/micro/in_loop.h"

#define MSG_MAX 4096

/* Reads exactly len bytes; a blocking or parking read, by `parking`. */
static int read_full(int fd, char *buf, size_t len, bool parking)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n =
            parking ? eddy_fd_read(fd, buf + got, len - got) : read(fd, buf + got, len - got);
        if (n <= 0)
            return n < 0 ? (parking ? (int)n : -errno) : -ENODATA;
        got += (size_t)n;
    }
    return 0;
}

/* A connected pair of blocking TCP sockets over 127.0.0.1: fds[0] is the
 * client's end, fds[1] the server's. */
static int tcp_pair(int fds[2])
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) < 0)
        return -errno;
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof(a)) < 0)
        return -errno;
    fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    close(l);
    if (fds[1] < 0)
        return -errno;
    int one = 1;
    setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return 0;
}

/* ---- eddy: two tasks of one loop ------------------------------------------- */

struct echo_run {
    int fds[2];
    size_t len;
    uint64_t rounds;
};

static intptr_t echo_server_task(void *arg)
{
    struct echo_run *r = arg;
    char buf[MSG_MAX];
    for (uint64_t i = 0; i < r->rounds; i++) {
        int rc = read_full(r->fds[1], buf, r->len, true);
        if (rc < 0)
            return rc;
        if (eddy_fd_write_all(r->fds[1], buf, r->len) < 0)
            return -EIO;
    }
    return 0;
}

static intptr_t echo_eddy_main(void *arg)
{
    struct eddy_bench *b = arg;
    struct echo_run r = {.len = (size_t)eddy_bench_arg(b), .rounds = eddy_bench_iterations(b)};
    int rc = tcp_pair(r.fds);
    if (rc < 0)
        return rc;
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(r.fds[i], F_GETFL);
        fcntl(r.fds[i], F_SETFL, fl | O_NONBLOCK);
    }
    struct eddy_task *server;
    if (eddy_task_spawn(echo_server_task, &r, NULL, &server) < 0)
        return -ENOMEM;
    char msg[MSG_MAX], back[MSG_MAX];
    memset(msg, 'x', sizeof(msg));
    eddy_bench_resume(b);
    for (uint64_t i = 0; i < r.rounds && rc == 0; i++) {
        if (eddy_fd_write_all(r.fds[0], msg, r.len) < 0)
            rc = -EIO;
        else
            rc = read_full(r.fds[0], back, r.len, true);
    }
    eddy_bench_pause(b);
    intptr_t sr = 0;
    eddy_task_join(server, &sr);
    eddy_fd_close(r.fds[0]);
    eddy_fd_close(r.fds[1]);
    return rc < 0 ? rc : sr;
}

static void BM_tcp_echo_roundtrip(struct eddy_bench *b)
{
    run_in_loop(b, echo_eddy_main);
}
EDDY_BENCH_OPTS(BM_tcp_echo_roundtrip, .args = {64, 4096}, .nargs = 2,
                .case_name = "tcp_echo_roundtrip", .impl = "eddy");

/* ---- blocking sockets, a thread per side ------------------------------ */

static void *echo_server_thread(void *arg)
{
    struct echo_run *r = arg;
    char buf[MSG_MAX];
    for (uint64_t i = 0; i < r->rounds; i++) {
        if (read_full(r->fds[1], buf, r->len, false) < 0)
            break;
        if (write(r->fds[1], buf, r->len) != (ssize_t)r->len)
            break;
    }
    return NULL;
}

static void BM_tcp_echo_roundtrip_blocking(struct eddy_bench *b)
{
    eddy_bench_pause(b);
    struct echo_run r = {.len = (size_t)eddy_bench_arg(b), .rounds = eddy_bench_iterations(b)};
    if (tcp_pair(r.fds) < 0) {
        eddy_bench_fail(b, "tcp_pair");
        return;
    }
    pthread_t t;
    pthread_create(&t, NULL, echo_server_thread, &r);
    char msg[MSG_MAX], back[MSG_MAX];
    memset(msg, 'x', sizeof(msg));
    eddy_bench_resume(b);
    for (uint64_t i = 0; i < r.rounds; i++) {
        if (write(r.fds[0], msg, r.len) != (ssize_t)r.len ||
            read_full(r.fds[0], back, r.len, false) < 0) {
            eddy_bench_fail(b, "echo");
            break;
        }
    }
    eddy_bench_pause(b);
    close(r.fds[0]); /* ends the server thread's read if it still waits */
    pthread_join(t, NULL);
    close(r.fds[1]);
}
EDDY_BENCH_OPTS(BM_tcp_echo_roundtrip_blocking, .args = {64, 4096}, .nargs = 2,
                .case_name = "tcp_echo_roundtrip", .impl = "threads-blocking");

/*
 * perf/conn_floor.c: the floor for N fresh loopback connections, one GET
 * each, written with nothing but non-blocking sockets and edge-triggered
 * epoll (no eddy). It is what eddy-fetch --mode async -n N -c N is measured
 * against: the syscalls left are socket, connect, epoll_ctl, send, read and
 * close per connection. Not built by make:
 *
 *     cc -O2 -o /tmp/conn_floor perf/conn_floor.c
 *     taskset -c 1 /tmp/conn_floor PORT N [PATH] [BATCH] [close]
 *
 * PATH defaults to /plaintext. BATCH connects that many sockets between
 * two epoll passes (default N: all first, as eddy-fetch's run queue does).
 * "close" sends Connection: close and reads to EOF, so that the server
 * closes first. Prints the phase times (all connects issued, last request
 * sent, first answer) to stderr and the total to stdout; exit status 1 when
 * an answer was not a 200.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { IDLE, SENT, DRAINING, DONE, CLOSED };

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Reads to EOF; returns 1 at EOF, 0 on EAGAIN, -1 on an error. */
static int drain(int fd)
{
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
    }
    if (n == 0)
        return 1;
    return errno == EAGAIN ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT N [PATH] [BATCH] [close]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]);
    const char *path = argc > 3 ? argv[3] : "/plaintext";
    int batch = argc > 4 ? atoi(argv[4]) : n;
    int server_closes = argc > 5 && strcmp(argv[5], "close") == 0;
    if (n <= 0 || batch <= 0)
        return 2;
    char req[512];
    int rl = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", path,
                      server_closes ? "Connection: close\r\n" : "");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    char *st = calloc((size_t)n, 1);
    if (ep < 0 || !st)
        return 2;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double t_connected = 0, t_last_send = 0, t_first = 0;
    int started = 0, sent = 0, done = 0, bad = 0;
    struct epoll_event evs[512];
    while (done < n) {
        for (int end = started + batch < n ? started + batch : n; started < end; started++) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0 ||
                (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS)) {
                perror("socket/connect");
                return 2;
            }
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLET,
                                     .data.u64 = ((uint64_t)started << 32) | (uint32_t)fd};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        if (started == n && t_connected == 0)
            t_connected = since(&t0);
        int k = epoll_wait(ep, evs, 512, started < n ? 0 : 5000);
        if (k < 0 || (k == 0 && started == n)) {
            fprintf(stderr, "no progress: %d of %d done\n", done, n);
            return 1;
        }
        for (int j = 0; j < k; j++) {
            int fd = (int)(uint32_t)evs[j].data.u64, i = (int)(evs[j].data.u64 >> 32);
            if (st[i] == IDLE && (evs[j].events & EPOLLOUT)) {
                if (send(fd, req, (size_t)rl, MSG_NOSIGNAL) != rl) {
                    bad++;
                    close(fd);
                    st[i] = DONE;
                    done++;
                    continue;
                }
                st[i] = SENT;
                if (++sent == n)
                    t_last_send = since(&t0);
            }
            if (st[i] == SENT && (evs[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                /* The whole answer: unread bytes would turn close into a reset. */
                char head[4096];
                ssize_t m = read(fd, head, sizeof(head));
                if (m < 0 && errno == EAGAIN)
                    continue;
                if (m < 12 || memcmp(head, "HTTP/1.1 200", 12) != 0)
                    bad++;
                if (t_first == 0)
                    t_first = since(&t0);
                st[i] = server_closes ? DRAINING : DONE;
            }
            if (st[i] == DRAINING && drain(fd) == 0)
                continue;
            if (st[i] == DRAINING || st[i] == DONE) {
                close(fd);
                st[i] = CLOSED;
                done++;
            }
        }
    }
    fprintf(stderr, "connects_done=%.3f last_send=%.3f first_answer=%.3f\n", t_connected,
            t_last_send, t_first);
    printf("floor n=%d bad=%d seconds=%.3f\n", n, bad, since(&t0));
    free(st);
    return bad != 0;
}

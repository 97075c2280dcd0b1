/*
 * tests/io/test_fdio.c: fd reads and writes that park on EAGAIN: pipes
 * filled past their kernel buffer, writev with many buffers, and the
 * errors a waiter can get (closed fd, cancellation, bad arguments).
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <eddy/eddy.h>

#include "tests/reactor/reactor_test.h"

#define BIG_BYTES (4u * 1024 * 1024) /* 64 pipe buffers */

struct transfer {
    int fds[2];
    unsigned char *src, *dst;
    size_t len;
    ssize_t wrote;
    size_t got;
};

static intptr_t reader(void *arg)
{
    struct transfer *t = arg;
    while (t->got < t->len) {
        /* Odd-sized reads, so they never line up with the writes. */
        size_t want = t->len - t->got < 3001 ? t->len - t->got : 3001;
        ssize_t n = eddy_fd_read(t->fds[0], t->dst + t->got, want);
        if (n <= 0)
            return n < 0 ? n : -ENODATA;
        t->got += (size_t)n;
    }
    return 0;
}

static intptr_t pipe_transfer(void *arg)
{
    struct transfer *t = arg;
    struct eddy_task *r;
    cr_assert_eq(eddy_task_spawn(reader, t, NULL, &r), 0);
    t->wrote = eddy_fd_write_all(t->fds[1], t->src, t->len);
    intptr_t rr;
    cr_assert_eq(eddy_task_join(r, &rr), 0);
    return rr;
}

EDDY_TEST(fdio, write_all_through_a_pipe_parks_until_the_reader_drains_it)
{
    struct transfer t = {.len = BIG_BYTES};
    rt_pipe(t.fds);
    t.src = malloc(t.len);
    t.dst = malloc(t.len);
    uint64_t seed = 42;
    for (size_t i = 0; i < t.len; i++)
        t.src[i] = (unsigned char)rt_rand(&seed);
    cr_expect_eq(rt_run(pipe_transfer, &t), 0);
    cr_expect_eq(t.wrote, (ssize_t)t.len);
    cr_expect_eq(t.got, t.len);
    cr_expect_eq(memcmp(t.src, t.dst, t.len), 0);
    free(t.src);
    free(t.dst);
}

#define MANY_IOV 100

static intptr_t writev_many(void *arg)
{
    struct transfer *t = arg;
    struct iovec iov[MANY_IOV];
    size_t per = t->len / MANY_IOV;
    for (int i = 0; i < MANY_IOV; i++)
        iov[i] = (struct iovec){.iov_base = t->src + (size_t)i * per, .iov_len = per};
    iov[7].iov_len = 0; /* an empty entry in the middle is fine */
    size_t expect = t->len - per;
    struct eddy_task *r;
    t->len = expect;
    cr_assert_eq(eddy_task_spawn(reader, t, NULL, &r), 0);
    t->wrote = eddy_fd_writev_all(t->fds[1], iov, MANY_IOV);
    /* iov is not modified. */
    cr_expect_eq(iov[0].iov_base, t->src);
    cr_expect_eq(iov[0].iov_len, per);
    intptr_t rr;
    cr_assert_eq(eddy_task_join(r, &rr), 0);
    return rr;
}

EDDY_TEST(fdio, writev_all_sends_a_hundred_buffers_in_order)
{
    struct transfer t = {.len = MANY_IOV * 20000};
    rt_pipe(t.fds);
    t.src = malloc(t.len);
    t.dst = malloc(t.len);
    for (size_t i = 0; i < t.len; i++)
        t.src[i] = (unsigned char)(i * 7);
    cr_expect_eq(rt_run(writev_many, &t), 0);
    cr_expect_eq(t.wrote, (ssize_t)t.len);
    /* Buffer 7 was empty: the reader saw 0-6 then 8-99. */
    size_t per = 20000;
    cr_expect_eq(memcmp(t.dst, t.src, 7 * per), 0);
    cr_expect_eq(memcmp(t.dst + 7 * per, t.src + 8 * per, t.len - 7 * per), 0);
    free(t.src);
    free(t.dst);
}

static intptr_t bad_args(void *arg)
{
    (void)arg;
    int fds[2];
    rt_pipe(fds);
    struct iovec iov = {.iov_base = "x", .iov_len = 1};
    cr_expect_eq(eddy_fd_writev_all(fds[1], &iov, -1), -EINVAL);
    cr_expect_eq(eddy_fd_writev_all(fds[1], &iov, IOV_MAX + 1), -EINVAL);
    cr_expect_eq(eddy_fd_writev_all(fds[1], NULL, 1), -EINVAL);
    cr_expect_eq(eddy_fd_writev_all(fds[1], NULL, 0), 0);
    struct iovec huge[2] = {{.iov_base = "x", .iov_len = SSIZE_MAX},
                            {.iov_base = "y", .iov_len = 2}};
    cr_expect_eq(eddy_fd_writev_all(fds[1], huge, 2), -EINVAL);
    cr_expect_eq(eddy_fd_read(-1, (char[1]){0}, 1), -EBADF);
    cr_expect_eq(eddy_fd_write(-1, "x", 1), -EBADF);
    cr_expect_eq(eddy_fd_write_all(-1, "x", 1), -EBADF);
    char b;
    cr_expect_eq(eddy_fd_read(fds[0], &b, 0), 0);
    close(fds[1]);
    cr_expect_eq(eddy_fd_read(fds[0], &b, 1), 0); /* end of file */
    close(fds[0]);
    return 0;
}

EDDY_TEST(fdio, bad_arguments_and_closed_fds_give_clear_errors)
{
    rt_run(bad_args, NULL);
}

struct parked {
    int fd;
    ssize_t rc;
};

static intptr_t park_read(void *arg)
{
    struct parked *p = arg;
    char b;
    p->rc = eddy_fd_read(p->fd, &b, 1);
    return 0;
}

static intptr_t close_and_cancel_under_readers(void *arg)
{
    (void)arg;
    int a[2], b[2];
    rt_pipe(a);
    rt_pipe(b);
    struct parked closed = {.fd = a[0], .rc = 1}, cancelled = {.fd = b[0], .rc = 1};
    struct eddy_task *t1, *t2;
    cr_assert_eq(eddy_task_spawn(park_read, &closed, NULL, &t1), 0);
    cr_assert_eq(eddy_task_spawn(park_read, &cancelled, NULL, &t2), 0);
    eddy_sleep_ms(5);
    eddy_fd_close(a[0]);
    eddy_task_cancel(t2);
    eddy_task_join(t1, NULL);
    eddy_task_join(t2, NULL);
    cr_expect_eq(closed.rc, -EBADF);
    cr_expect_eq(cancelled.rc, -ECANCELED);
    close(a[1]);
    eddy_fd_close(b[0]);
    close(b[1]);
    return 0;
}

EDDY_TEST(fdio, a_parked_reader_wakes_on_close_with_ebadf_and_on_cancel_with_ecanceled)
{
    rt_run(close_and_cancel_under_readers, NULL);
}

static intptr_t write_to_pipe_without_reader(void *arg)
{
    (void)arg;
    int fds[2];
    rt_pipe(fds);
    close(fds[0]);
    /* SIGPIPE keeps its default action: the write must not raise it. */
    cr_expect_eq(eddy_fd_write_all(fds[1], "x", 1), -EPIPE);
    cr_expect_eq(eddy_fd_write(fds[1], "x", 1), -EPIPE);
    sigset_t pending;
    sigpending(&pending);
    cr_expect(!sigismember(&pending, SIGPIPE), "a SIGPIPE was left pending");
    close(fds[1]);
    return 0;
}

EDDY_TEST(fdio, a_pipe_without_reader_gives_epipe_and_no_sigpipe)
{
    rt_run(write_to_pipe_without_reader, NULL);
}

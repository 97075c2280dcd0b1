/*
 * tests/reactor/reactor_test.h: what the reactor tests share.
 *
 *   - the tolerance every timing assertion uses (STYLE.md section 9: never a
 *     bare sleep), and the scaling of big counts under Valgrind;
 *   - a seeded PRNG, so a failing random test can be replayed;
 *   - rt_run(): eddy_run with the checks every test repeats;
 *   - non-blocking pipes, and rt_wait_in_epoll(), which waits until a thread
 *     is really blocked in epoll (read from /proc/self/task/TID/syscall), so
 *     the cross-thread tests prove that a post or a stop wakes a sleeping
 *     loop instead of hoping a nanosleep was long enough.
 *
 * Everything here is static inline: the Makefile links only test_*.c files,
 * and a header of inline helpers needs no entry of its own.
 */
#ifndef EDDY_TESTS_REACTOR_TEST_H
#define EDDY_TESTS_REACTOR_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <eddy/eddy.h>

#include "tests/support/in_epoll.h"

#include "tests/support/test.h"

/* How late a timer, a sleep or a timeout may fire, beyond its deadline, on a
 * shared machine running two tests at once. Early is never allowed. */
#define RT_LATE_TOLERANCE_MS 100
/* The same under Valgrind, which runs everything 20-50 times slower. */
#define RT_LATE_TOLERANCE_VALGRIND_MS 1000

static inline int64_t rt_late_tolerance_ns(void)
{
    return (eddy_test_under_valgrind() ? RT_LATE_TOLERANCE_VALGRIND_MS : RT_LATE_TOLERANCE_MS) *
           EDDY_NS_PER_MS;
}

/* n, or the smaller count to use under Valgrind. ThreadSanitizer gets the
 * small count too: it counts every coroutine as a thread and dies past 8128. */
static inline size_t rt_scale(size_t n, size_t under_valgrind)
{
#if defined(__SANITIZE_THREAD__)
    (void)n;
    return under_valgrind;
#else
    return eddy_test_under_valgrind() ? under_valgrind : n;
#endif
}

/* xorshift64*: a small, seeded, reproducible generator. */
static inline uint64_t rt_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

/* Runs fn(arg) as the main task of a fresh loop and returns its result. */
static inline intptr_t rt_run(eddy_task_fn *fn, void *arg)
{
    intptr_t result = INTPTR_MIN;
    int rc = eddy_run(fn, arg, NULL, &result);
    cr_assert_eq(rc, 0, "eddy_run: %s", eddy_strerror(rc));
    cr_assert_null(eddy_loop_current(), "eddy_run left a current loop behind");
    return result;
}

/* A non-blocking, close-on-exec pipe. */
static inline void rt_pipe(int fds[2])
{
    cr_assert_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0, "pipe2: %s", strerror(errno));
}

/* Sleeps the calling thread (not a task) for ms. */
static inline void rt_thread_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static inline pid_t rt_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* True when thread tid of this process is blocked in an epoll wait now. */
static inline bool rt_in_epoll(pid_t tid)
{
    return eddy_test_in_epoll(tid);
}

/* Waits (up to 10 s) until thread tid is blocked in epoll. Returns false when
 * it never got there. */
static inline bool rt_wait_in_epoll(pid_t tid)
{
    for (int i = 0; i < 10000; i++) {
        if (rt_in_epoll(tid)) {
            /* Seen twice in a row: not just passing through a zero poll. */
            rt_thread_sleep_ms(1);
            if (rt_in_epoll(tid))
                return true;
        }
        rt_thread_sleep_ms(1);
    }
    return false;
}

/* Reads one byte from a non-blocking fd, parking the task while it is empty.
 * Returns the byte, 0-255; -EPIPE at end of file; or the wait's error. */
static inline int rt_read_byte(int fd)
{
    for (;;) {
        unsigned char c;
        ssize_t n = read(fd, &c, 1);
        if (n == 1)
            return c;
        if (n == 0)
            return -EPIPE;
        if (errno != EAGAIN)
            return -errno;
        int rc = eddy_fd_wait(fd, EDDY_FD_READ);
        if (rc < 0)
            return rc;
    }
}

#endif

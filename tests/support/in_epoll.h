/*
 * tests/support/in_epoll.h: whether a thread is blocked in an epoll wait
 * right now, read from /proc/self/task/TID/syscall. Cross-thread tests use
 * it to know the loop really sleeps in the kernel before they wake it,
 * instead of trusting a sleep. Free of Criterion, so the TSan driver
 * (tests/tsan/) can use it too.
 */
#ifndef EDDY_TESTS_SUPPORT_IN_EPOLL_H
#define EDDY_TESTS_SUPPORT_IN_EPOLL_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/types.h>

static inline bool eddy_test_in_epoll(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    long nr = -1;
    int n = fscanf(f, "%ld", &nr);
    fclose(f);
    if (n != 1)
        return false;
    bool in = nr == SYS_epoll_pwait;
#ifdef SYS_epoll_pwait2
    in = in || nr == SYS_epoll_pwait2;
#endif
#ifdef SYS_epoll_wait
    in = in || nr == SYS_epoll_wait;
#endif
    return in;
}

#endif

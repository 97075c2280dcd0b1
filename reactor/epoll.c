/*
 * reactor/epoll.c: the poller backend, behind the seam of reactor/internal.h.
 * The only file of eddy that includes <sys/epoll.h>.
 *
 * Every fd is added once, edge-triggered, for read, write and peer hangup;
 * it is never re-armed per wait. The fd number itself is the event's data:
 * the loop looks its waiters up in an fd-indexed table.
 * Timeouts use epoll_pwait2's nanoseconds where the kernel has it (probed
 * once at init), else epoll_wait's milliseconds rounded up, so a timer is
 * never polled for early and spun on.
 */
#include "reactor/internal.h"

#include <errno.h>
#include <limits.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define EVENTS_PER_WAIT 256

int eddy__poller_init(struct eddy__poller *p)
{
    p->fd = epoll_create1(EPOLL_CLOEXEC);
    if (p->fd < 0)
        return -errno;
    p->capacity = EVENTS_PER_WAIT;
    p->events = eddy__calloc((size_t)p->capacity, sizeof(struct epoll_event));
    if (!p->events) {
        close(p->fd);
        return -ENOMEM;
    }
    /* Valgrind 3.19 does not know epoll_pwait2 and warns at every probe. */
    struct timespec zero = {0, 0};
    p->has_pwait2 = !RUNNING_ON_VALGRIND && epoll_pwait2(p->fd, p->events, 1, &zero, NULL) >= 0;
    return 0;
}

void eddy__poller_fini(struct eddy__poller *p)
{
    if (p->fd >= 0)
        close(p->fd);
    eddy__free(p->events);
    p->fd = -1;
    p->events = NULL;
}

int eddy__poller_add(struct eddy__poller *p, int fd)
{
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.fd = fd,
    };
    if (epoll_ctl(p->fd, EPOLL_CTL_ADD, fd, &ev) != 0)
        return -errno;
    return 0;
}

int eddy__poller_remove(struct eddy__poller *p, int fd)
{
    if (epoll_ctl(p->fd, EPOLL_CTL_DEL, fd, NULL) != 0)
        return -errno;
    return 0;
}

static int wait_once(struct eddy__poller *p, int64_t timeout_ns)
{
    struct epoll_event *events = p->events;
    if (p->has_pwait2) {
        struct timespec ts;
        struct timespec *tsp = NULL;
        if (timeout_ns >= 0) {
            ts.tv_sec = (time_t)(timeout_ns / EDDY_NS_PER_SEC);
            ts.tv_nsec = (long)(timeout_ns % EDDY_NS_PER_SEC);
            tsp = &ts;
        }
        return epoll_pwait2(p->fd, events, p->capacity, tsp, NULL);
    }
    int ms = -1;
    if (timeout_ns >= 0) {
        int64_t rounded = (timeout_ns + EDDY_NS_PER_MS - 1) / EDDY_NS_PER_MS;
        ms = rounded > INT_MAX ? INT_MAX : (int)rounded;
    }
    return epoll_wait(p->fd, events, p->capacity, ms);
}

int eddy__poller_wait(struct eddy__poller *p, int64_t timeout_ns, eddy__poller_event_fn *fn,
                      struct eddy_loop *loop)
{
    int n = wait_once(p, timeout_ns);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    struct epoll_event *events = p->events;
    for (int i = 0; i < n; i++) {
        uint32_t e = events[i].events;
        uint32_t mapped = 0;
        if (e & (EPOLLIN | EPOLLRDHUP))
            mapped |= EDDY__EV_READ;
        if (e & EPOLLRDHUP)
            mapped |= EDDY__EV_RDHUP;
        if (e & EPOLLOUT)
            mapped |= EDDY__EV_WRITE;
        if (e & (EPOLLERR | EPOLLHUP))
            mapped |= EDDY__EV_ERROR;
        fn(loop, events[i].data.fd, mapped);
    }
    return n;
}

/*
 * io/fdio.c: reads and writes on non-blocking fds that park the calling
 * task on EAGAIN, and the small syscall wrappers the io layer shares.
 *
 * Every call tries the syscall first and waits only when the kernel says
 * EAGAIN (edge-triggered epoll: the fd stays registered, a wakeup is
 * followed by another attempt). EINTR is retried here and nowhere else.
 * Cost: one syscall when data or buffer space is there; otherwise two
 * context switches and an epoll_wait on top. Writes to sockets use
 * MSG_NOSIGNAL; writes to anything else run under the SIGPIPE guard
 * (io/internal.h), so no eddy write ever raises SIGPIPE.
 */
#include "io/internal.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int eddy__fd_set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -errno;
    if (flags & O_NONBLOCK)
        return 0;
    if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

unsigned eddy__fd_kind(int fd)
{
    /* SO_TYPE answers for sockets, the common case, in one syscall; only
     * ENOTSOCK needs the fstat. */
    int type = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0)
        return EDDY__FD_SOCKET | (type == SOCK_STREAM ? EDDY__FD_BYTE_STREAM : 0u);
    if (errno != ENOTSOCK)
        return 0;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return 0;
    if (S_ISFIFO(st.st_mode)) {
        int flags = fcntl(fd, F_GETFL);
        return flags >= 0 && !(flags & O_DIRECT) ? EDDY__FD_BYTE_STREAM : 0u;
    }
    return 0;
}

EDDY_API ssize_t eddy_fd_read(int fd, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0)
            return n;
        int err = errno;
        if (err == EINTR)
            continue;
        if (err != EAGAIN)
            return -err;
        int rc = eddy_fd_wait(fd, EDDY_FD_READ);
        if (rc < 0)
            return rc;
    }
}

void eddy__sigpipe_block(struct eddy__sigpipe_guard *g)
{
    g->active = false;
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
        return;
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old) != 0 || sigismember(&g->old, SIGPIPE))
        return;
    /* Unblocked until now, so no SIGPIPE was pending: any pending after the
     * call is the call's. */
    g->active = true;
}

void eddy__sigpipe_restore(struct eddy__sigpipe_guard *g)
{
    if (!g->active)
        return;
    int saved = errno;
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    errno = saved;
}

ssize_t eddy__fd_try_writev(int fd, bool is_socket, const struct iovec *iov, int iovcnt)
{
    for (;;) {
        ssize_t n;
        if (is_socket) {
            /* One buffer (a stream's flush, most often) goes by send: the
             * kernel then copies no msghdr and no iovec array. */
            if (iovcnt == 1) {
                n = send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
            } else {
                struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
                n = sendmsg(fd, &msg, MSG_NOSIGNAL);
            }
            if (n < 0 && errno == ENOTSOCK) {
                /* A guess that did not hold: write as to a pipe. */
                is_socket = false;
                continue;
            }
        } else {
            struct eddy__sigpipe_guard g;
            eddy__sigpipe_block(&g);
            n = writev(fd, iov, iovcnt);
            eddy__sigpipe_restore(&g);
        }
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return -errno;
    }
}

EDDY_API ssize_t eddy_fd_write(int fd, const void *buf, size_t len)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    for (;;) {
        ssize_t n = eddy__fd_try_writev(fd, true, &iov, 1);
        if (n != -EAGAIN)
            return n;
        int rc = eddy_fd_wait(fd, EDDY_FD_WRITE);
        if (rc < 0)
            return rc;
    }
}

/* Advances iov[*first..cnt) past n written bytes. */
static void iov_advance(struct iovec *iov, int *first, int cnt, size_t n)
{
    while (*first < cnt && n >= iov[*first].iov_len) {
        n -= iov[*first].iov_len;
        (*first)++;
    }
    if (*first < cnt) {
        iov[*first].iov_base = (char *)iov[*first].iov_base + n;
        iov[*first].iov_len -= n;
    }
}

ssize_t eddy__fd_writev_all(int fd, bool is_socket, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt > 0 && !iov))
        return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > SSIZE_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    /* A scratch copy, because partial writes advance the entries. */
    size_t count = (size_t)iovcnt;
    struct iovec small[16];
    struct iovec *v = small;
    if (count > sizeof(small) / sizeof(small[0])) {
        v = eddy__malloc(count * sizeof(*v));
        if (!v)
            return -ENOMEM;
    }
    if (count > 0)
        memcpy(v, iov, count * sizeof(*v));
    int first = 0;
    iov_advance(v, &first, iovcnt, 0); /* skip leading empty entries */
    size_t left = total;
    ssize_t rc = (ssize_t)total;
    while (left > 0) {
        ssize_t n = eddy__fd_try_writev(fd, is_socket, v + first, iovcnt - first);
        if (n == -EAGAIN) {
            int w = eddy_fd_wait(fd, EDDY_FD_WRITE);
            if (w < 0) {
                rc = w;
                break;
            }
            continue;
        }
        if (n < 0) {
            rc = n;
            break;
        }
        left -= (size_t)n;
        iov_advance(v, &first, iovcnt, (size_t)n);
    }
    if (v != small)
        eddy__free(v);
    return rc;
}

EDDY_API ssize_t eddy_fd_writev_all(int fd, const struct iovec *iov, int iovcnt)
{
    return eddy__fd_writev_all(fd, true, iov, iovcnt);
}

EDDY_API ssize_t eddy_fd_write_all(int fd, const void *buf, size_t len)
{
    if (len > SSIZE_MAX)
        return -EINVAL;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return eddy__fd_writev_all(fd, true, &iov, 1);
}

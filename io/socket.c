/*
 * io/socket.c: stream sockets (TCP over IPv4 and IPv6, Unix) and UDP.
 *
 * Every socket is created non-blocking and close-on-exec in one call
 * (SOCK_NONBLOCK | SOCK_CLOEXEC) and waits through eddy_fd_wait, so it
 * joins epoll on its first EAGAIN and stays registered until eddy_fd_close.
 *
 * accept: each call tries accept4 before it parks, so a task accepting in
 * a loop drains the whole backlog of one readiness edge. Out of fds
 * (EMFILE/ENFILE), it backs off with sleeps instead of parking: the
 * pending connection keeps the listener readable without a new edge, and
 * an edge-triggered wait would never return. Network errors of a pending
 * connection that accept4 reports (accept(2), "Error handling") are
 * skipped like ECONNABORTED.
 */
#include "io/internal.h"

#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

/* Back-off of accept while the process is out of fds. */
#define ACCEPT_BACKOFF_MIN_NS (10 * EDDY_NS_PER_MS)
#define ACCEPT_BACKOFF_MAX_NS (200 * EDDY_NS_PER_MS)
/* Retry period of a Unix connect whose listener's backlog is full (the
 * kernel answers EAGAIN, and no readiness edge says when to retry). */
#define UNIX_CONNECT_RETRY_NS (1 * EDDY_NS_PER_MS)

static bool is_inet(int family)
{
    return family == AF_INET || family == AF_INET6;
}

static int set_int_opt(int fd, int level, int name, int value)
{
    if (setsockopt(fd, level, name, &value, sizeof(value)) < 0)
        return -errno;
    return 0;
}

/* Removes a stale Unix socket file, and only a socket file. */
static int unlink_stale(const struct eddy_addr *addr)
{
    const char *path = addr->u.un.sun_path;
    if (path[0] == 0)
        return 0; /* abstract: nothing on disk */
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EADDRINUSE;
    if (unlink(path) != 0 && errno != ENOENT)
        return -errno;
    return 0;
}

EDDY_API int eddy_sock_listen(const struct eddy_addr *addr, const struct eddy_listen_opts *opts)
{
    if (!addr || addr->len == 0)
        return -EINVAL;
    struct eddy_listen_opts o = opts ? *opts : (struct eddy_listen_opts){0};
    int family = addr->u.sa.sa_family;
    if (family == AF_UNIX && !o.keep_unix) {
        int rc = unlink_stale(addr);
        if (rc < 0)
            return rc;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (is_inet(family))
        rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && o.reuseport)
        rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    /* Set either way: the system default (net.ipv6.bindv6only) varies. */
    if (rc == 0 && family == AF_INET6)
        rc = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, o.v6only ? 1 : 0);
    if (rc == 0 && bind(fd, &addr->u.sa, addr->len) < 0)
        rc = -errno;
    if (rc == 0 && listen(fd, o.backlog > 0 ? o.backlog : SOMAXCONN) < 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* accept4's errors that belong to one pending connection, not to the
 * listener: skip it and take the next. */
static bool is_connection_error(int err)
{
    switch (err) {
    case ECONNABORTED:
    case EPROTO:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case ENETDOWN:
    case ENETUNREACH:
        return true;
    default:
        return false;
    }
}

EDDY_API int eddy_sock_accept(int listen_fd, struct eddy_addr *peer)
{
    int64_t backoff = ACCEPT_BACKOFF_MIN_NS;
    for (;;) {
        struct eddy_addr scratch;
        struct eddy_addr *a = peer ? peer : &scratch;
        a->len = sizeof(a->u);
        int fd = accept4(listen_fd, &a->u.sa, &a->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        int err = errno;
        if (err == EINTR || is_connection_error(err))
            continue;
        int rc;
        if (err == EAGAIN) {
            rc = eddy_fd_wait(listen_fd, EDDY_FD_READ);
        } else if (err == EMFILE || err == ENFILE) {
            rc = eddy_sleep_ns(backoff);
            backoff = backoff * 2 > ACCEPT_BACKOFF_MAX_NS ? ACCEPT_BACKOFF_MAX_NS : backoff * 2;
        } else {
            return -err;
        }
        if (rc < 0)
            return rc;
    }
}

/* Waits for a non-blocking connect in progress to finish. Asking connect()
 * again gives the outcome in one syscall (0 or EISCONN once connected,
 * EALREADY while the handshake goes on, the error once it failed), where
 * SO_ERROR plus getpeername took two. */
static int finish_connect(int fd, const struct eddy_addr *addr)
{
    for (;;) {
        int rc = eddy_fd_wait(fd, EDDY_FD_WRITE);
        if (rc < 0)
            return rc;
        if (connect(fd, &addr->u.sa, addr->len) == 0)
            return 0;
        int err = errno;
        if (err == EISCONN)
            return 0;
        /* A wakeup before the handshake ended (spurious): wait on. */
        if (err != EALREADY && err != EINPROGRESS && err != EINTR)
            return -err;
    }
}

static int connect_fd(int fd, const struct eddy_addr *addr)
{
    for (;;) {
        if (connect(fd, &addr->u.sa, addr->len) == 0)
            return 0;
        int err = errno;
        if (err == EINTR)
            continue; /* the attempt goes on: asked again, it answers EALREADY */
        if (err == EINPROGRESS || err == EALREADY)
            return finish_connect(fd, addr);
        if (err == EAGAIN && addr->u.sa.sa_family == AF_UNIX) {
            int rc = eddy_sleep_ns(UNIX_CONNECT_RETRY_NS);
            if (rc < 0)
                return rc;
            continue;
        }
        return -err;
    }
}

EDDY_API int eddy_sock_connect(const struct eddy_addr *addr, int64_t timeout_ns)
{
    if (!addr || addr->len == 0)
        return -EINVAL;
    if (!eddy_task_current())
        return -EINVAL;
    int family = addr->u.sa.sa_family;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (is_inet(family))
        (void)set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    struct eddy_timeout scope;
    bool scoped = timeout_ns >= 0;
    if (scoped)
        eddy_timeout_enter(&scope, timeout_ns);
    int rc = connect_fd(fd, addr);
    if (scoped)
        eddy_timeout_exit(&scope);
    if (rc < 0) {
        eddy_fd_close(fd);
        return rc;
    }
    return fd;
}

EDDY_API int eddy_sock_shutdown(int fd, int how)
{
    if (shutdown(fd, how) < 0)
        return -errno;
    return 0;
}

EDDY_API int eddy_sock_local_addr(int fd, struct eddy_addr *out)
{
    if (!out)
        return -EINVAL;
    out->len = sizeof(out->u);
    if (getsockname(fd, &out->u.sa, &out->len) < 0)
        return -errno;
    return 0;
}

EDDY_API int eddy_sock_peer_addr(int fd, struct eddy_addr *out)
{
    if (!out)
        return -EINVAL;
    out->len = sizeof(out->u);
    if (getpeername(fd, &out->u.sa, &out->len) < 0)
        return -errno;
    return 0;
}

EDDY_API int eddy_sock_set_nodelay(int fd, bool on)
{
    return set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, on);
}

EDDY_API int eddy_sock_set_keepalive(int fd, bool on)
{
    return set_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, on);
}

EDDY_API int eddy_sock_set_buffer_sizes(int fd, int rcvbuf_bytes, int sndbuf_bytes)
{
    int rc = 0;
    if (rcvbuf_bytes > 0)
        rc = set_int_opt(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf_bytes);
    if (rc == 0 && sndbuf_bytes > 0)
        rc = set_int_opt(fd, SOL_SOCKET, SO_SNDBUF, sndbuf_bytes);
    return rc;
}

EDDY_API int eddy_sock_pair(int fds[2])
{
    if (!fds)
        return -EINVAL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
        return -errno;
    return 0;
}

/* ---- UDP ------------------------------------------------------------------ */

EDDY_API int eddy_udp_open(const struct eddy_addr *addr)
{
    if (!addr || addr->len == 0)
        return -EINVAL;
    int fd = socket(addr->u.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, &addr->u.sa, addr->len) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

EDDY_API ssize_t eddy_udp_send(int fd, const void *buf, size_t len, const struct eddy_addr *to)
{
    if (!buf && len)
        return -EINVAL;
    for (;;) {
        ssize_t n = sendto(fd, buf, len, MSG_NOSIGNAL, to ? &to->u.sa : NULL, to ? to->len : 0);
        if (n >= 0)
            return n;
        int err = errno;
        if (err == EINTR)
            continue;
        if (err != EAGAIN)
            return -err;
        int rc = eddy_fd_wait(fd, EDDY_FD_WRITE);
        if (rc < 0)
            return rc;
    }
}

EDDY_API ssize_t eddy_udp_recv(int fd, void *buf, size_t len, struct eddy_addr *from)
{
    if (!buf && len)
        return -EINVAL;
    for (;;) {
        struct eddy_addr scratch;
        struct eddy_addr *a = from ? from : &scratch;
        a->len = sizeof(a->u);
        /* MSG_TRUNC: the real length of a datagram longer than len. */
        ssize_t n = recvfrom(fd, buf, len, MSG_TRUNC, &a->u.sa, &a->len);
        if (n >= 0)
            return (size_t)n > len ? -EMSGSIZE : n;
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

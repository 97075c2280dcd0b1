/*
 * http/client_conn.c: one client connection and the response side of an
 * exchange over it: the transport, reading and parsing the response head,
 * and reading the body by its framing (RFC 9112 section 6.3).
 *
 * Transport: the same code runs over two kinds of fd, and they differ only
 * in how they wait. A non-blocking fd goes through eddy_fd_read and
 * eddy_fd_writev_all, which park the task on EAGAIN; its read timeout is a
 * timeout scope around each read (free until a read parks). A blocking fd
 * (a client created with blocking = true: eddy-fetch's sync and threads
 * modes) never answers EAGAIN except when its SO_RCVTIMEO/SO_SNDTIMEO
 * passed, which is reported as -ETIMEDOUT; so it never parks and needs no
 * loop.
 *
 * Read buffer: rbuf[rstart, rend) holds received bytes not yet consumed.
 * The head is parsed in place (eddy_http_parse_response answers -EAGAIN
 * until it is complete, and each retry parses from the start: heads are
 * small, and a complete head usually arrives in one read). Chunked bodies
 * are decoded in place at the front of the buffer; the decoded bytes not
 * yet handed out are counted by the reader's `pending`.
 */
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/internal.h"

#define READ_BUFFER_BYTES (16u * 1024)

/* ---- transport ------------------------------------------------------------ */

static void set_timeout(int fd, int opt, int64_t ns)
{
    if (ns <= 0)
        return;
    struct timeval tv = {.tv_sec = ns / 1000000000, .tv_usec = (ns % 1000000000) / 1000};
    if (tv.tv_sec == 0 && tv.tv_usec == 0)
        tv.tv_usec = 1;
    (void)setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

/* getaddrinfo and a blocking connect bounded by SO_SNDTIMEO. */
static int connect_blocking(const char *host, uint16_t port, int64_t timeout_ns)
{
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, service, &hints, &res);
    if (g == EAI_NONAME || g == EAI_NODATA || g == EAI_ADDRFAMILY)
        return -ENXIO;
    if (g == EAI_AGAIN)
        return -EAGAIN;
    if (g == EAI_SYSTEM)
        return errno ? -errno : -EIO;
    if (g != 0)
        return -EIO;
    int rc = -ECONNREFUSED;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        set_timeout(fd, SO_SNDTIMEO, timeout_ns);
        int r;
        do {
            r = connect(fd, a->ai_addr, a->ai_addrlen);
        } while (r < 0 && errno == EINTR);
        if (r == 0) {
            int one = 1;
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            rc = fd;
            break;
        }
        /* A connect that outlived SO_SNDTIMEO answers EINPROGRESS. */
        rc = (errno == EINPROGRESS || errno == EAGAIN) ? -ETIMEDOUT : -errno;
        close(fd);
        if (rc == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

int eddy__http_cconn_connect(struct eddy__http_cconn *c, const char *host, uint16_t port,
                             int64_t timeout_ns)
{
    int fd;
    if (c->blocking) {
        fd = connect_blocking(host, port, timeout_ns);
        if (fd >= 0) {
            set_timeout(fd, SO_RCVTIMEO, c->read_timeout_ns);
            set_timeout(fd, SO_SNDTIMEO, c->write_timeout_ns);
        }
    } else {
        fd = eddy_tcp_connect_host(host, port, timeout_ns > 0 ? timeout_ns : -1);
    }
    if (fd < 0)
        return fd;
    c->fd = fd;
    return 0;
}

void eddy__http_cconn_close(struct eddy__http_cconn *c)
{
    if (c->fd >= 0) {
        if (c->blocking)
            close(c->fd);
        else
            eddy_fd_close(c->fd);
        c->fd = -1;
    }
    eddy__free(c->rbuf);
    c->rbuf = NULL;
    c->rcap = c->rstart = c->rend = 0;
}

static ssize_t read_blocking(int fd, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN ? -ETIMEDOUT : -errno;
    }
}

static ssize_t cconn_read(struct eddy__http_cconn *c, void *buf, size_t len)
{
    if (c->blocking)
        return read_blocking(c->fd, buf, len);
    if (c->read_timeout_ns <= 0)
        return eddy_fd_read(c->fd, buf, len);
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, c->read_timeout_ns);
    ssize_t n = eddy_fd_read(c->fd, buf, len);
    eddy_timeout_exit(&scope);
    return n;
}

static int write_blocking(int fd, const struct iovec *iov, int cnt)
{
    struct iovec small[8];
    if (cnt > 8)
        return -EINVAL;
    memcpy(small, iov, (size_t)cnt * sizeof(*iov));
    struct iovec *v = small;
    while (cnt > 0) {
        struct msghdr msg = {.msg_iov = v, .msg_iovlen = (size_t)cnt};
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        }
        size_t left = (size_t)n;
        while (cnt > 0 && left >= v->iov_len) {
            left -= v->iov_len;
            v++;
            cnt--;
        }
        if (cnt > 0) {
            v->iov_base = (char *)v->iov_base + left;
            v->iov_len -= left;
        }
    }
    return 0;
}

int eddy__http_cconn_write(struct eddy__http_cconn *c, const struct iovec *iov, int n)
{
    if (c->blocking)
        return write_blocking(c->fd, iov, n);
    struct eddy_timeout scope;
    bool scoped = c->write_timeout_ns > 0;
    if (scoped)
        eddy_timeout_enter(&scope, c->write_timeout_ns);
    ssize_t rc = eddy_fd_writev_all(c->fd, iov, n);
    if (scoped)
        eddy_timeout_exit(&scope);
    return rc < 0 ? (int)rc : 0;
}

ssize_t eddy__http_cconn_fill(struct eddy__http_cconn *c, size_t max_buffered)
{
    size_t have = c->rend - c->rstart;
    if (have >= max_buffered)
        return -EMSGSIZE;
    if (c->rstart > 0 && (have == 0 || c->rend == c->rcap)) {
        memmove(c->rbuf, c->rbuf + c->rstart, have);
        c->rstart = 0;
        c->rend = have;
    }
    if (c->rend == c->rcap) {
        size_t cap = c->rcap ? c->rcap * 2 : READ_BUFFER_BYTES;
        char *buf = eddy__realloc(c->rbuf, cap);
        if (!buf)
            return -ENOMEM;
        c->rbuf = buf;
        c->rcap = cap;
    }
    size_t room = c->rcap - c->rend;
    if (room > max_buffered - have)
        room = max_buffered - have;
    ssize_t n = cconn_read(c, c->rbuf + c->rend, room);
    if (n > 0)
        c->rend += (size_t)n;
    return n;
}

/* ---- the response head ---------------------------------------------------- */

int eddy__http_read_head(struct eddy__http_cconn *c, struct eddy_http_response *resp,
                         struct eddy_http_header *headers, size_t max_headers,
                         size_t max_head_bytes, bool *got_bytes)
{
    struct eddy_http_limits limits = {
        .max_request_line_bytes = max_head_bytes,
        .max_header_bytes = max_head_bytes,
        .max_headers = max_headers,
    };
    *got_bytes = c->rend > c->rstart;
    for (;;) {
        int rc = -EAGAIN;
        if (c->rend > c->rstart)
            rc = eddy_http_parse_response(c->rbuf + c->rstart, c->rend - c->rstart, resp, headers,
                                          max_headers, &limits);
        if (rc >= 0) {
            /* 1xx answers (100 Continue, 103 Early Hints) precede the real
             * one; 101 would switch protocols, which eddy does not do. */
            if (resp->status >= 100 && resp->status < 200) {
                if (resp->status == 101)
                    return -EBADMSG;
                c->rstart += (size_t)rc;
                continue;
            }
            return rc;
        }
        if (rc != -EAGAIN)
            return rc;
        ssize_t n = eddy__http_cconn_fill(c, max_head_bytes);
        if (n == -EMSGSIZE)
            return -EMSGSIZE;
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -ENODATA;
        *got_bytes = true;
    }
}

/* ---- the body ------------------------------------------------------------- */

void eddy__http_body_start(struct eddy__http_body_reader *br, const struct eddy_http_response *resp,
                           bool is_head)
{
    memset(br, 0, sizeof(*br));
    br->framing = is_head ? EDDY_HTTP_BODY_NONE : resp->body;
    br->left = resp->content_length;
    eddy_http_chunked_init(&br->chunked, 0);
    if (br->framing == EDDY_HTTP_BODY_NONE ||
        (br->framing == EDDY_HTTP_BODY_LENGTH && br->left == 0))
        br->done = true;
}

/* Marks the end; the connection is clean when nothing else was buffered. */
static void finish(struct eddy__http_cconn *c, struct eddy__http_body_reader *br)
{
    br->done = true;
    br->clean = c->rend == c->rstart + br->pending;
}

static size_t take(struct eddy__http_cconn *c, void *buf, size_t n)
{
    memcpy(buf, c->rbuf + c->rstart, n);
    c->rstart += n;
    if (c->rstart == c->rend)
        c->rstart = c->rend = 0;
    return n;
}

static ssize_t read_length(struct eddy__http_cconn *c, struct eddy__http_body_reader *br, void *buf,
                           size_t len)
{
    if (len > br->left)
        len = (size_t)br->left;
    size_t have = c->rend - c->rstart;
    ssize_t n;
    if (have) {
        n = (ssize_t)take(c, buf, have < len ? have : len);
    } else {
        /* Large reads go straight into the caller's memory. */
        n = len >= READ_BUFFER_BYTES / 2 ? cconn_read(c, buf, len)
                                         : eddy__http_cconn_fill(c, SIZE_MAX);
        if (n == 0)
            return -ENODATA;
        if (n < 0)
            return n;
        if (len < READ_BUFFER_BYTES / 2)
            n = (ssize_t)take(c, buf, (size_t)n < len ? (size_t)n : len);
    }
    br->left -= (uint64_t)n;
    if (br->left == 0)
        finish(c, br);
    return n;
}

static ssize_t read_close(struct eddy__http_cconn *c, struct eddy__http_body_reader *br, void *buf,
                          size_t len)
{
    size_t have = c->rend - c->rstart;
    if (have)
        return (ssize_t)take(c, buf, have < len ? have : len);
    ssize_t n = cconn_read(c, buf, len);
    if (n == 0) {
        br->done = true;
        br->clean = false; /* the server closed it */
    }
    return n;
}

static ssize_t read_chunked(struct eddy__http_cconn *c, struct eddy__http_body_reader *br,
                            void *buf, size_t len)
{
    for (;;) {
        if (br->pending) {
            size_t n = br->pending < len ? br->pending : len;
            br->pending -= n;
            take(c, buf, n);
            if (br->pending == 0 && br->done)
                br->clean = c->rend == c->rstart;
            return (ssize_t)n;
        }
        if (br->done)
            return 0;
        if (c->rend == c->rstart) {
            ssize_t n = eddy__http_cconn_fill(c, SIZE_MAX);
            if (n == 0)
                return -ENODATA;
            if (n < 0)
                return n;
        }
        /* Decode what is buffered, in place. */
        char *raw = c->rbuf + c->rstart;
        size_t raw_len = c->rend - c->rstart;
        size_t out = raw_len;
        ssize_t rc = eddy_http_chunked_decode(&br->chunked, raw, &out);
        if (rc == -EAGAIN) {
            c->rend = c->rstart + out;
        } else if (rc >= 0) {
            /* The bytes after the body follow the decoded ones. */
            memmove(raw + out, raw + raw_len - (size_t)rc, (size_t)rc);
            c->rend = c->rstart + out + (size_t)rc;
            br->pending = out;
            finish(c, br);
            if (out == 0)
                return 0;
            continue;
        } else {
            return rc == -EMSGSIZE ? -EBADMSG : rc;
        }
        br->pending = out;
        if (c->rend == c->rstart)
            c->rstart = c->rend = 0;
    }
}

ssize_t eddy__http_body_read(struct eddy__http_cconn *c, struct eddy__http_body_reader *br,
                             void *buf, size_t len)
{
    if (len == 0)
        return 0;
    switch (br->framing) {
    case EDDY_HTTP_BODY_LENGTH:
        return br->done ? 0 : read_length(c, br, buf, len);
    case EDDY_HTTP_BODY_CHUNKED:
        return read_chunked(c, br, buf, len);
    case EDDY_HTTP_BODY_CLOSE:
        return br->done ? 0 : read_close(c, br, buf, len);
    case EDDY_HTTP_BODY_NONE:
    default:
        return 0;
    }
}

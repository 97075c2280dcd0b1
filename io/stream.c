/*
 * io/stream.c: buffered streams over a connected fd (asyncio's StreamReader
 * and StreamWriter in one object).
 *
 * Read buffer: rbuf[rstart, rend) holds bytes received and not consumed.
 * It is allocated on the first read. Before a refill, bytes consumed at the
 * front make the rest move there (memmove of the unconsumed bytes, which a
 * refill only needs when they hold no complete message, so few), so each
 * read gets all the free space. It is doubled only when a caller asks for
 * more buffered bytes than fit (fill's max_bytes, a delimiter search's cap).
 * Reads of at least half the buffer skip it and go straight into the
 * caller's memory. A read that fails consumes nothing: read_until and
 * read_line only consume on success, and read_exactly puts the bytes it
 * gathered back in front of the buffer (unread) before it returns an error.
 *
 * Drained reads: on a byte stream (a TCP or Unix stream socket, a pipe) a
 * read that returns fewer bytes than asked emptied the kernel's buffer, so
 * the stream marks the fd drained (eddy_fd_mark_drained) and its next read
 * first waits for readiness (eddy_fd_wait_ready): it parks at once when no
 * edge came since, instead of making a read that would only say EAGAIN.
 * For a request/response peer that saves one syscall per exchange. The
 * wait comes before the buffer is allocated, so a stream whose buffers
 * were released (eddy_stream_release_buffers) holds none while it waits.
 *
 * Write buffer: wbuf[0, wlen) with capacity wcap, the high-water mark.
 * A write that fits is copied and returns without a syscall; one that does
 * not goes out with a single writev of the buffered bytes and the new ones,
 * waiting until the kernel took all of it (backpressure). So at most wcap
 * bytes ever wait in user space per stream. The first write error sticks:
 * later writes, flush and close report it, so data accepted by a write is
 * never dropped without a caller hearing of it.
 *
 * SIGPIPE: sockets are written with MSG_NOSIGNAL; pipe writes and
 * sendfile(2) have no such flag and run under the SIGPIPE guard of
 * io/internal.h.
 *
 * Costs: a small write is a memcpy; a read that the buffer can serve is a
 * memcpy; a delimiter search scans each byte once (after each fill it
 * resumes where it stopped).
 */
#include "io/internal.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <unistd.h>

#define DEFAULT_READ_BYTES (16u * 1024)
#define DEFAULT_WRITE_BYTES (64u * 1024)
/* Bounce buffer of sendfile's read/write fallback. */
#define SENDFILE_CHUNK_BYTES (64u * 1024)
/* Largest single sendfile(2) call (the kernel caps at 0x7ffff000). */
#define SENDFILE_MAX_BYTES (1u << 30)

/* ---- the per-thread cache of stream buffers ------------------------------------
 * A keep-alive server releases a connection's buffers at every idle wait
 * and takes them back at the next request: through malloc and free that
 * cost 340 instructions per request (jemalloc, callgrind). Each thread
 * keeps up to BUFFER_CACHE_MAX released buffers of at most
 * BUFFER_CACHE_MAX_BYTES with their sizes; taking one scans from the
 * newest (the cache-warm end). A pthread key frees them when the thread
 * exits; the main thread's stay reachable until the process ends. At most
 * 16 x 64 KiB per thread are kept this way.
 */
#define BUFFER_CACHE_MAX 16
#define BUFFER_CACHE_MAX_BYTES (64u * 1024)

struct buffer_cache {
    int n;
    size_t size[BUFFER_CACHE_MAX];
    void *buf[BUFFER_CACHE_MAX];
};

/* initial-exec: no __tls_get_addr call per access from the shared library. */
static _Thread_local struct buffer_cache buffer_cache __attribute__((tls_model("initial-exec")));
static _Thread_local bool buffer_cache_keyed __attribute__((tls_model("initial-exec")));
static pthread_key_t buffer_cache_key;
static pthread_once_t buffer_cache_once = PTHREAD_ONCE_INIT;
static bool buffer_cache_key_ok;

static void buffer_cache_free(void *arg)
{
    struct buffer_cache *c = arg;
    for (int i = 0; i < c->n; i++)
        eddy__free(c->buf[i]);
    c->n = 0;
}

static void buffer_cache_key_init(void)
{
    buffer_cache_key_ok = pthread_key_create(&buffer_cache_key, buffer_cache_free) == 0;
}

static inline void *buffer_get(size_t size)
{
    struct buffer_cache *c = &buffer_cache;
    for (int i = c->n - 1; i >= 0; i--) {
        if (c->size[i] == size) {
            void *buf = c->buf[i];
            c->n--;
            c->buf[i] = c->buf[c->n];
            c->size[i] = c->size[c->n];
            return buf;
        }
    }
    return eddy__malloc(size);
}

static inline void buffer_put(void *buf, size_t size)
{
    if (!buf)
        return;
    struct buffer_cache *c = &buffer_cache;
    if (c->n == BUFFER_CACHE_MAX || size > BUFFER_CACHE_MAX_BYTES) {
        eddy__free(buf);
        return;
    }
    if (EDDY_UNLIKELY(!buffer_cache_keyed)) {
        /* Once per thread: the key's destructor empties the cache at exit. */
        pthread_once(&buffer_cache_once, buffer_cache_key_init);
        if (!buffer_cache_key_ok || pthread_setspecific(buffer_cache_key, c) != 0) {
            eddy__free(buf);
            return;
        }
        buffer_cache_keyed = true;
    }
    c->buf[c->n] = buf;
    c->size[c->n] = size;
    c->n++;
}

struct eddy_stream {
    int fd;
    bool own_fd;
    bool is_socket;
    bool byte_stream; /* a short read means drained (io/internal.h) */
    bool drained;     /* the last read was short: wait for an edge first */
    bool eof;
    int write_error; /* first write error, sticky */
    char *rbuf;
    size_t rcap, rstart, rend;
    size_t rinit; /* capacity of the first read buffer */
    char *wbuf;
    size_t wcap, wlen;
};

EDDY_API int eddy_stream_open(int fd, const struct eddy_stream_opts *opts, struct eddy_stream **out)
{
    if (fd < 0 || !out)
        return -EINVAL;
    struct eddy_stream_opts o = opts ? *opts : EDDY_STREAM_OPTS_DEFAULT;
    int rc = eddy__fd_set_nonblocking(fd);
    if (rc < 0)
        return rc;
    struct eddy_stream *s = eddy__calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->fd = fd;
    s->own_fd = o.own_fd;
    unsigned kind = eddy__fd_kind(fd);
    s->is_socket = (kind & EDDY__FD_SOCKET) != 0;
    s->byte_stream = (kind & EDDY__FD_BYTE_STREAM) != 0;
    s->rinit = o.read_buffer_bytes ? o.read_buffer_bytes : DEFAULT_READ_BYTES;
    s->wcap = o.write_buffer_bytes ? o.write_buffer_bytes : DEFAULT_WRITE_BYTES;
    *out = s;
    return 0;
}

static void stream_free(struct eddy_stream *s)
{
    buffer_put(s->rbuf, s->rcap);
    buffer_put(s->wbuf, s->wcap);
    eddy__free(s);
}

EDDY_API int eddy_stream_close(struct eddy_stream *s)
{
    if (!s)
        return -EINVAL;
    int rc = eddy_stream_flush(s);
    if (s->own_fd) {
        int c = eddy_fd_close(s->fd);
        if (rc == 0)
            rc = c;
    }
    stream_free(s);
    return rc;
}

EDDY_API void eddy_stream_abort(struct eddy_stream *s)
{
    if (!s)
        return;
    if (s->own_fd)
        eddy_fd_close(s->fd);
    stream_free(s);
}

EDDY_API int eddy_stream_fd(const struct eddy_stream *s)
{
    return s ? s->fd : -EINVAL;
}

/* ---- reading ---------------------------------------------------------------- */

static size_t buffered(const struct eddy_stream *s)
{
    return s->rend - s->rstart;
}

EDDY_API void eddy_stream_consume(struct eddy_stream *s, size_t n)
{
    /* n is the caller's: past the buffered bytes would corrupt the
     * indices, so it is clamped (an assert would guard only debug builds). */
    if (n > buffered(s))
        n = buffered(s);
    s->rstart += n;
    if (s->rstart == s->rend)
        s->rstart = s->rend = 0;
}

EDDY_API size_t eddy_stream_peek(const struct eddy_stream *s, const char **data)
{
    *data = s->rbuf ? s->rbuf + s->rstart : "";
    return buffered(s);
}

EDDY_API bool eddy_stream_is_eof(const struct eddy_stream *s)
{
    return s->eof;
}

EDDY_API void eddy_stream_release_buffers(struct eddy_stream *s)
{
    if (!s)
        return;
    if (s->rbuf && buffered(s) == 0) {
        buffer_put(s->rbuf, s->rcap);
        s->rbuf = NULL;
        s->rcap = s->rstart = s->rend = 0;
    }
    if (s->wbuf && s->wlen == 0) {
        buffer_put(s->wbuf, s->wcap);
        s->wbuf = NULL;
    }
}

/* Makes room for at least `want` bytes after the buffered ones. */
static int reserve(struct eddy_stream *s, size_t want)
{
    if (!s->rbuf && want <= s->rinit) {
        /* The common case after eddy_stream_release_buffers. */
        s->rbuf = buffer_get(s->rinit);
        if (!s->rbuf)
            return -ENOMEM;
        s->rcap = s->rinit;
        s->rstart = s->rend = 0;
        return 0;
    }
    size_t have = buffered(s);
    if (s->rcap - s->rend >= want)
        return 0;
    if (s->rstart > 0 && s->rcap - have >= want) {
        memmove(s->rbuf, s->rbuf + s->rstart, have);
        s->rstart = 0;
        s->rend = have;
        return 0;
    }
    size_t cap = s->rcap ? s->rcap : s->rinit;
    while (cap - have < want) {
        if (cap > SIZE_MAX / 2)
            return -ENOMEM;
        cap *= 2;
    }
    char *buf = buffer_get(cap);
    if (!buf)
        return -ENOMEM;
    if (have)
        memcpy(buf, s->rbuf + s->rstart, have);
    buffer_put(s->rbuf, s->rcap);
    s->rbuf = buf;
    s->rcap = cap;
    s->rstart = 0;
    s->rend = have;
    return 0;
}

/* Before a read: after a drained one, waits for an edge. */
static int read_wait(struct eddy_stream *s)
{
    if (!s->drained)
        return 0;
    int rc = eddy_fd_wait_ready(s->fd, EDDY_FD_READ);
    if (rc < 0)
        return rc; /* still drained: the next read waits again */
    s->drained = false;
    return 0;
}

/* One read of at most len bytes into buf (after read_wait). */
static ssize_t read_once(struct eddy_stream *s, void *buf, size_t len)
{
    ssize_t n = eddy_fd_read(s->fd, buf, len);
    if (n > 0 && (size_t)n < len && s->byte_stream) {
        /* No suspension since the read: the clear cannot hide an edge. */
        eddy_fd_mark_drained(s->fd, EDDY_FD_READ);
        s->drained = true;
    } else if (n == 0) {
        s->eof = true;
    }
    return n;
}

/* A read straight into the caller's memory. */
static ssize_t read_direct_once(struct eddy_stream *s, void *buf, size_t len)
{
    int rc = read_wait(s);
    if (rc < 0)
        return rc;
    return read_once(s, buf, len);
}

EDDY_API ssize_t eddy_stream_fill(struct eddy_stream *s, size_t max_bytes)
{
    if (!s || max_bytes == 0)
        return -EINVAL;
    size_t have = buffered(s);
    if (have >= max_bytes)
        return -EMSGSIZE;
    int wrc = read_wait(s);
    if (wrc < 0)
        return wrc;
    /* Room for one read's worth, never more than max_bytes buffered. */
    size_t want = s->rcap > have ? s->rcap - have : s->rinit;
    if (want > max_bytes - have)
        want = max_bytes - have;
    int rc = reserve(s, want);
    if (rc < 0)
        return rc;
    size_t room = s->rcap - s->rend;
    if (room > max_bytes - have)
        room = max_bytes - have;
    ssize_t n = read_once(s, s->rbuf + s->rend, room);
    if (n > 0)
        s->rend += (size_t)n;
    return n;
}

/* Copies up to len buffered bytes out and consumes them. */
static size_t take(struct eddy_stream *s, void *buf, size_t len)
{
    size_t n = buffered(s);
    if (n > len)
        n = len;
    if (n) {
        memcpy(buf, s->rbuf + s->rstart, n);
        eddy_stream_consume(s, n);
    }
    return n;
}

/* True when a read of len bytes should bypass the buffer. */
static bool read_direct(const struct eddy_stream *s, size_t len)
{
    size_t cap = s->rcap ? s->rcap : s->rinit;
    return len >= cap / 2;
}

EDDY_API ssize_t eddy_stream_read_some(struct eddy_stream *s, void *buf, size_t len)
{
    if (!s || (!buf && len))
        return -EINVAL;
    if (len == 0)
        return 0;
    if (buffered(s))
        return (ssize_t)take(s, buf, len);
    if (s->eof)
        return 0;
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    if (read_direct(s, len))
        return read_direct_once(s, buf, len);
    ssize_t n = eddy_stream_fill(s, SIZE_MAX);
    if (n <= 0)
        return n;
    return (ssize_t)take(s, buf, len);
}

/* Puts the got bytes read_exactly already took back in front of the
 * (then empty) buffer, so that a failed read_exactly consumes nothing. */
static int unread(struct eddy_stream *s, const void *buf, size_t got)
{
    assert(buffered(s) == 0);
    s->rstart = s->rend = 0;
    if (got == 0)
        return 0;
    int rc = reserve(s, got);
    if (rc < 0)
        return rc;
    memcpy(s->rbuf, buf, got);
    s->rend = got;
    return 0;
}

EDDY_API ssize_t eddy_stream_read_exactly(struct eddy_stream *s, void *buf, size_t len)
{
    if (!s || (!buf && len) || len > SSIZE_MAX)
        return -EINVAL;
    char *p = buf;
    size_t got = take(s, p, len);
    while (got < len) {
        ssize_t n;
        if (s->eof) {
            n = 0;
        } else if (read_direct(s, len - got)) {
            n = read_direct_once(s, p + got, len - got);
        } else {
            n = eddy_stream_fill(s, SIZE_MAX);
            if (n > 0)
                n = (ssize_t)take(s, p + got, len - got);
        }
        if (n <= 0) {
            /* An early end, or an error (a cancel or a timeout included):
             * keep what arrived for the next call. */
            int rc = unread(s, p, got);
            if (rc < 0)
                return rc;
            return n == 0 ? -ENODATA : n;
        }
        got += (size_t)n;
    }
    return (ssize_t)len;
}

EDDY_API ssize_t eddy_stream_read_until(struct eddy_stream *s, const void *delim, size_t delim_len,
                                        char *buf, size_t cap)
{
    if (!s || !delim || delim_len == 0 || !buf || delim_len >= cap || cap - 1 > SSIZE_MAX)
        return -EINVAL;
    size_t max = cap - 1;
    size_t scanned = 0; /* bytes from the front already ruled out */
    for (;;) {
        size_t have = buffered(s);
        size_t limit = have < max ? have : max;
        /* Resume where the last search stopped, minus a delimiter's overlap. */
        size_t from = scanned >= delim_len ? scanned - (delim_len - 1) : 0;
        if (from < limit) {
            const char *base = s->rbuf + s->rstart;
            const char *hit = memmem(base + from, limit - from, delim, delim_len);
            if (hit) {
                size_t n = (size_t)(hit - base) + delim_len;
                memcpy(buf, base, n);
                buf[n] = 0;
                eddy_stream_consume(s, n);
                return (ssize_t)n;
            }
            scanned = limit;
        }
        if (have >= max)
            return -EMSGSIZE;
        if (s->eof)
            return -ENODATA;
        ssize_t n = eddy_stream_fill(s, max);
        if (n < 0)
            return n;
    }
}

EDDY_API ssize_t eddy_stream_read_line(struct eddy_stream *s, char *buf, size_t cap)
{
    ssize_t n = eddy_stream_read_until(s, "\n", 1, buf, cap);
    if (n == -EMSGSIZE && buffered(s) == cap - 1) {
        /* Exactly cap - 1 bytes without a newline: a last line that fits
         * when the stream ends right after them. One more read tells. */
        if (!s->eof) {
            ssize_t r = eddy_stream_fill(s, SIZE_MAX);
            if (r < 0)
                return r;
        }
        if (!s->eof || buffered(s) != cap - 1)
            return -EMSGSIZE;
        n = -ENODATA;
    }
    if (n != -ENODATA)
        return n;
    /* The last line has no newline: it is still a line. */
    size_t have = buffered(s);
    if (have == 0)
        return -ENODATA;
    n = (ssize_t)take(s, buf, have); /* have < cap, checked above or by read_until */
    buf[n] = 0;
    return n;
}

/* ---- writing ---------------------------------------------------------------- */

EDDY_API size_t eddy_stream_write_buffered(const struct eddy_stream *s)
{
    return s ? s->wlen : 0;
}

/* Writes all of v[0..cnt), parking while the fd is full. Returns the total
 * or -errno. */
static ssize_t write_all(struct eddy_stream *s, const struct iovec *v, int cnt)
{
    return eddy__fd_writev_all(s->fd, s->is_socket, v, cnt);
}

/* Sends the buffered bytes followed by iov[0..iovcnt) with one writev. */
static ssize_t send_through(struct eddy_stream *s, const struct iovec *iov, int iovcnt)
{
    struct iovec small[9] = {{0}};
    struct iovec *v = small;
    if (iovcnt + 1 > (int)(sizeof(small) / sizeof(small[0]))) {
        v = eddy__malloc(((size_t)iovcnt + 1) * sizeof(*v));
        if (!v)
            return -ENOMEM;
    }
    int n = 0;
    if (s->wlen)
        v[n++] = (struct iovec){.iov_base = s->wbuf, .iov_len = s->wlen};
    if (iovcnt)
        memcpy(v + n, iov, (size_t)iovcnt * sizeof(*v));
    ssize_t rc = write_all(s, v, n + iovcnt);
    if (v != small)
        eddy__free(v);
    /* -ENOMEM comes from a scratch array, before anything was sent: the
     * stream stays as it was. */
    if (rc == -ENOMEM)
        return rc;
    /* On another error, what went out of the buffered part is unknown: drop
     * it, and make the error stick so the loss is reported again. */
    if (rc < 0)
        s->write_error = (int)rc;
    s->wlen = 0;
    return rc;
}

EDDY_API ssize_t eddy_stream_writev(struct eddy_stream *s, const struct iovec *iov, int iovcnt)
{
    if (!s || iovcnt < 0 || iovcnt > IOV_MAX - 1 || (iovcnt && !iov))
        return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > SSIZE_MAX - total || (!iov[i].iov_base && iov[i].iov_len))
            return -EINVAL;
        total += iov[i].iov_len;
    }
    if (s->write_error)
        return s->write_error;
    /* The buffered total stays <= wcap, so this cannot overflow either. */
    if (total <= s->wcap - s->wlen) {
        if (total == 0)
            return 0;
        if (!s->wbuf) {
            s->wbuf = buffer_get(s->wcap);
            if (!s->wbuf)
                return -ENOMEM;
        }
        for (int i = 0; i < iovcnt; i++) {
            if (iov[i].iov_len) {
                memcpy(s->wbuf + s->wlen, iov[i].iov_base, iov[i].iov_len);
                s->wlen += iov[i].iov_len;
            }
        }
        return (ssize_t)total;
    }
    ssize_t rc = send_through(s, iov, iovcnt);
    return rc < 0 ? rc : (ssize_t)total;
}

EDDY_API ssize_t eddy_stream_write(struct eddy_stream *s, const void *buf, size_t len)
{
    if (!buf && len)
        return -EINVAL;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return eddy_stream_writev(s, &iov, 1);
}

EDDY_API int eddy_stream_flush(struct eddy_stream *s)
{
    if (!s)
        return -EINVAL;
    if (s->write_error)
        return s->write_error;
    if (s->wlen == 0)
        return 0;
    ssize_t rc = send_through(s, NULL, 0);
    return rc < 0 ? (int)rc : 0;
}

/* ---- sendfile ------------------------------------------------------------- */

static ssize_t sendfile_once(int out_fd, int in_fd, off_t *offset, size_t len)
{
    struct eddy__sigpipe_guard g;
    eddy__sigpipe_block(&g);
    ssize_t n;
    do {
        n = sendfile(out_fd, in_fd, offset, len);
    } while (n < 0 && errno == EINTR);
    int err = n < 0 ? errno : 0;
    eddy__sigpipe_restore(&g);
    return n < 0 ? -err : n;
}

/* The fallback where sendfile refuses the pair: pread into a bounce buffer
 * and write. */
static ssize_t copy_file(struct eddy_stream *s, int file_fd, off_t offset, size_t len)
{
    char *chunk = eddy__malloc(SENDFILE_CHUNK_BYTES);
    if (!chunk)
        return -ENOMEM;
    size_t left = len;
    ssize_t rc = (ssize_t)len;
    while (left > 0) {
        size_t want = left < SENDFILE_CHUNK_BYTES ? left : SENDFILE_CHUNK_BYTES;
        ssize_t n = pread(file_fd, chunk, want, offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -ENODATA;
            break;
        }
        struct iovec iov = {.iov_base = chunk, .iov_len = (size_t)n};
        ssize_t w = write_all(s, &iov, 1);
        if (w < 0) {
            s->write_error = (int)w;
            rc = w;
            break;
        }
        offset += n;
        left -= (size_t)n;
    }
    eddy__free(chunk);
    return rc;
}

EDDY_API ssize_t eddy_stream_sendfile(struct eddy_stream *s, int file_fd, off_t offset, size_t len)
{
    if (!s || file_fd < 0 || offset < 0 || len > SSIZE_MAX)
        return -EINVAL;
    int rc = eddy_stream_flush(s);
    if (rc < 0)
        return rc;
    size_t left = len;
    while (left > 0) {
        size_t want = left < SENDFILE_MAX_BYTES ? left : SENDFILE_MAX_BYTES;
        ssize_t n = sendfile_once(s->fd, file_fd, &offset, want);
        if (n > 0) {
            left -= (size_t)n;
            continue;
        }
        if (n == 0)
            return -ENODATA;
        if (n == -EAGAIN) {
            int w = eddy_fd_wait(s->fd, EDDY_FD_WRITE);
            if (w < 0) {
                /* As a write's: a part may have gone out. */
                s->write_error = w;
                return w;
            }
            continue;
        }
        if ((n == -EINVAL || n == -ENOSYS) && left == len)
            return copy_file(s, file_fd, offset, len);
        if (n == -EPIPE || n == -ECONNRESET)
            s->write_error = (int)n;
        return n;
    }
    return (ssize_t)len;
}

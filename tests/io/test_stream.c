/*
 * tests/io/test_stream.c: buffered streams (io/stream.c) over socketpairs,
 * pipes and TCP on 127.0.0.1, and against a python3 client.
 *
 * Covers:
 *   - every read call fed one ~40-byte message (lines, empty lines, a
 *     "\r\n\r\n" delimiter) whole, split at every byte boundary and one
 *     byte at a time, on each transport, with a 16-byte and the default read
 *     buffer: every delivery must give the same transcript;
 *   - a random mix of all read calls on random writes, checked call by call
 *     against a model of the byte sequence (seeded, replayable);
 *   - read_exactly's direct path and early end (-ENODATA, nothing lost),
 *     read_until's limits (-EMSGSIZE, -ENODATA, both consuming nothing) and
 *     arguments, read_line's last line and maximum length, fill's maximum;
 *   - write buffering below the high-water mark, direct writes above it,
 *     writev, flush, close (flushes) and abort (discards);
 *   - backpressure: a peer that never reads blocks the writer until a
 *     timeout scope ends it, and the error sticks; a peer that reads late
 *     gets every byte in order;
 *   - a vanished peer (-EPIPE / -ECONNRESET) with SIGPIPE at its default,
 *     fatal action, and a TCP reset under a parked reader;
 *   - sendfile to TCP, into a pipe and through the read/write fallback, with
 *     offsets, short files and vanished peers;
 *   - cancellation, timeout scopes and eddy_fd_close under a parked reader.
 */
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <eddy/io.h>
#include <eddy/sync.h>

#include "tests/reactor/reactor_test.h"

/* The writer's pause between the two parts of a split delivery: long
 * enough for the reader to take the first part before the rest arrives. */
#define SPLIT_PAUSE_NS (EDDY_NS_PER_MS / 2)
/* A bound on every test that waits for a peer, so a bug fails instead of
 * hanging until Criterion's timeout. */
#define PEER_TIMEOUT_NS (10 * EDDY_NS_PER_SEC)
/* The timeout scope of the backpressure tests. */
#define STALL_TIMEOUT_MS 100

extern char **environ;

/* ---- helpers ------------------------------------------------------------- */

/* SIGPIPE at its default (fatal) action and unblocked: the library must
 * survive a vanished peer by itself, so the tests must not ignore it. */
static void sigpipe_default(void)
{
    signal(SIGPIPE, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

enum transport { T_SOCKPAIR, T_PIPE, T_TCP, T_COUNT };

static const char *const transport_names[T_COUNT] = {"socketpair", "pipe", "tcp"};

/* A listening socket on 127.0.0.1 and a port the kernel picked. */
static int tcp_listener(struct eddy_addr *addr)
{
    struct eddy_addr any;
    cr_assert_eq(eddy_addr_parse("127.0.0.1:0", &any), 0);
    int lfd = eddy_sock_listen(&any, NULL);
    cr_assert_geq(lfd, 0, "listen: %s", eddy_strerror(lfd));
    cr_assert_eq(eddy_sock_local_addr(lfd, addr), 0);
    cr_assert_neq(eddy_addr_port(addr), 0);
    return lfd;
}

/* A connected loopback TCP pair: fds[0] accepted, fds[1] connected (with
 * TCP_NODELAY). Runs in a task: the connect parks until established. */
static void tcp_pair(int fds[2])
{
    struct eddy_addr addr;
    int lfd = tcp_listener(&addr);
    int c = eddy_sock_connect(&addr, PEER_TIMEOUT_NS);
    cr_assert_geq(c, 0, "connect: %s", eddy_strerror(c));
    int a = eddy_sock_accept(lfd, NULL);
    cr_assert_geq(a, 0, "accept: %s", eddy_strerror(a));
    eddy_fd_close(lfd);
    fds[0] = a;
    fds[1] = c;
}

/* fds[0] is the stream's end, fds[1] the peer's. A pipe reads at fds[0]. */
static void transport_open(enum transport t, int fds[2])
{
    switch (t) {
    case T_SOCKPAIR:
        cr_assert_eq(eddy_sock_pair(fds), 0);
        break;
    case T_PIPE:
        rt_pipe(fds);
        break;
    default:
        tcp_pair(fds);
        break;
    }
}

static struct eddy_stream *open_stream(int fd, size_t read_bytes, size_t write_bytes, bool own_fd)
{
    struct eddy_stream_opts o = {
        .read_buffer_bytes = read_bytes, .write_buffer_bytes = write_bytes, .own_fd = own_fd};
    struct eddy_stream *s = NULL;
    int rc = eddy_stream_open(fd, &o, &s);
    cr_assert_eq(rc, 0, "stream_open: %s", eddy_strerror(rc));
    cr_assert_not_null(s);
    return s;
}

static struct eddy_task *spawn(eddy_task_fn *fn, void *arg)
{
    struct eddy_task *t = NULL;
    int rc = eddy_task_spawn(fn, arg, NULL, &t);
    cr_assert_eq(rc, 0, "spawn: %s", eddy_strerror(rc));
    return t;
}

static intptr_t join(struct eddy_task *t)
{
    intptr_t r = INTPTR_MIN;
    int rc = eddy_task_join(t, &r);
    cr_assert_eq(rc, 0, "join: %s", eddy_strerror(rc));
    return r;
}

/* Byte i of the test pattern (not periodic at any power of two). */
static unsigned char pattern_byte(size_t i)
{
    return (unsigned char)((i * 131u) ^ (i >> 7) ^ (i >> 15));
}

static unsigned char *pattern_new(size_t len)
{
    unsigned char *p = malloc(len ? len : 1);
    cr_assert_not_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = pattern_byte(i);
    return p;
}

/* The first index where buf differs from the pattern at offset `from`, or
 * len when all match. */
static size_t pattern_mismatch(const unsigned char *buf, size_t len, size_t from)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != pattern_byte(from + i))
            return i;
    return len;
}

/* A non-blocking recv that never parks: the count, or -errno (-EAGAIN when
 * nothing has arrived). */
static ssize_t recv_now(int fd, void *buf, size_t len)
{
    ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
    return n < 0 ? -errno : n;
}

/* Reads fd until end of file into buf (a task: parks while empty).
 * Returns the count, or the read's error. */
static ssize_t read_to_eof(int fd, void *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = eddy_fd_read(fd, (char *)buf + got, cap - got);
        if (n < 0)
            return n;
        if (n == 0)
            return (ssize_t)got;
        got += (size_t)n;
        if (got == cap) {
            char extra;
            n = eddy_fd_read(fd, &extra, 1);
            return n == 0 ? (ssize_t)got : -EOVERFLOW;
        }
    }
}

/* A peer task that writes len bytes to fd, then closes fd (end of stream)
 * unless keep_open. */
struct sender {
    int fd;
    const void *data;
    size_t len;
    bool keep_open;
    int64_t delay_ns; /* before writing */
};

static intptr_t send_task(void *arg)
{
    struct sender *w = arg;
    if (w->delay_ns > 0) {
        int rc = eddy_sleep_ns(w->delay_ns);
        if (rc < 0)
            return rc;
    }
    ssize_t n = eddy_fd_write_all(w->fd, w->data, w->len);
    if (n < 0)
        return n;
    if (!w->keep_open)
        eddy_fd_close(w->fd);
    return 0;
}

/* A peer task that reads fd to end of file, optionally after a delay. */
struct receiver {
    int fd;
    unsigned char *buf;
    size_t cap;
    int64_t delay_ns;
    ssize_t got;
};

static intptr_t receive_task(void *arg)
{
    struct receiver *r = arg;
    if (r->delay_ns > 0) {
        int rc = eddy_sleep_ns(r->delay_ns);
        if (rc < 0)
            return rc;
    }
    r->got = read_to_eof(r->fd, r->buf, r->cap);
    return r->got < 0 ? r->got : 0;
}

/* ---- one message, every delivery ----------------------------------------- */

/* 39 bytes: a request head ending in "\r\n\r\n", an empty line, a CRLF line
 * and a last line without newline. */
#define MSG_TEXT "GET /a HTTP/1.1\r\nHost: x\r\n\r\nab\n\ncd\r\nend"
static const char MSG[] = MSG_TEXT;
#define MSG_LEN (sizeof(MSG) - 1)

/* What a reading script saw: bytes and results, "|" after each. */
struct transcript {
    char text[1024];
    size_t len;
};

static void tr_bytes(struct transcript *t, const void *p, size_t n)
{
    cr_assert_lt(n, sizeof(t->text) - t->len, "transcript overflow");
    memcpy(t->text + t->len, p, n);
    t->len += n;
    t->text[t->len] = 0;
}

static void tr_str(struct transcript *t, const char *s)
{
    tr_bytes(t, s, strlen(s));
}

/* Records a call's result: its bytes for a positive count, else a name. */
static void tr_result(struct transcript *t, ssize_t rc, const void *data)
{
    char name[32];
    if (rc > 0) {
        tr_bytes(t, data, (size_t)rc);
    } else if (rc == 0) {
        tr_str(t, "<EOF>");
    } else if (rc == -ENODATA) {
        tr_str(t, "<ENODATA>");
    } else if (rc == -EMSGSIZE) {
        tr_str(t, "<EMSGSIZE>");
    } else {
        snprintf(name, sizeof(name), "<%s>", eddy_strerror((int)rc));
        tr_str(t, name);
    }
    tr_str(t, "|");
}

/* A NUL-terminated result must hold no NUL before its end. */
static void expect_terminated(const char *buf, ssize_t n)
{
    if (n > 0) {
        cr_expect_eq(buf[n], 0, "no NUL after the result");
        cr_expect_eq(strlen(buf), (size_t)n, "a NUL inside the result");
    }
}

typedef void script_fn(struct eddy_stream *s, struct transcript *t);

/* read_some with lengths 3 and 9 in turn (9 skips a 16-byte buffer). */
static void script_read_some(struct eddy_stream *s, struct transcript *t)
{
    char buf[16];
    ssize_t n = 1;
    for (int i = 0; i < 200 && n > 0; i++) {
        size_t want = i % 2 ? 9 : 3;
        n = eddy_stream_read_some(s, buf, want);
        cr_assert_leq(n, (ssize_t)want);
        if (n > 0)
            tr_bytes(t, buf, (size_t)n);
    }
    tr_str(t, "|");
    tr_result(t, n, buf);
    tr_result(t, eddy_stream_read_some(s, buf, 9), buf);
    tr_str(t, eddy_stream_is_eof(s) ? "eof" : "not-eof");
}
#define EXPECT_READ_SOME MSG_TEXT "|<EOF>|<EOF>|eof"

/* read_exactly of 5 and 9 bytes in turn, until the stream ends early. */
static void script_read_exactly(struct eddy_stream *s, struct transcript *t)
{
    char buf[16];
    for (int i = 0; i < 20; i++) {
        size_t want = i % 2 ? 9 : 5;
        ssize_t n = eddy_stream_read_exactly(s, buf, want);
        tr_result(t, n, buf);
        if (n != (ssize_t)want)
            break;
    }
    tr_result(t, eddy_stream_read_some(s, buf, sizeof(buf)), buf);
    tr_result(t, eddy_stream_read_some(s, buf, sizeof(buf)), buf);
}
#define EXPECT_READ_EXACTLY                                                                        \
    "GET /|a HTTP/1.|1\r\nHo|st: x\r\n\r\n|ab\n\nc|<ENODATA>|d\r\nend|<EOF>|"

/* The head up to "\r\n\r\n", a second search that hits the end, then the
 * body line by line with read_until "\n". */
static void script_read_until(struct eddy_stream *s, struct transcript *t)
{
    char buf[64];
    ssize_t n = eddy_stream_read_until(s, "\r\n\r\n", 4, buf, sizeof(buf));
    expect_terminated(buf, n);
    tr_result(t, n, buf);
    tr_result(t, eddy_stream_read_until(s, "\r\n\r\n", 4, buf, sizeof(buf)), buf);
    for (int i = 0; i < 20; i++) {
        n = eddy_stream_read_until(s, "\n", 1, buf, sizeof(buf));
        expect_terminated(buf, n);
        tr_result(t, n, buf);
        if (n <= 0)
            break;
    }
    tr_result(t, eddy_stream_read_some(s, buf, sizeof(buf)), buf);
    tr_result(t, eddy_stream_read_some(s, buf, sizeof(buf)), buf);
}
#define EXPECT_READ_UNTIL                                                                          \
    "GET /a HTTP/1.1\r\nHost: x\r\n\r\n|<ENODATA>|ab\n|\n|cd\r\n|<ENODATA>|end|<EOF>|"

static void script_read_line(struct eddy_stream *s, struct transcript *t)
{
    char buf[64];
    for (int i = 0; i < 20; i++) {
        ssize_t n = eddy_stream_read_line(s, buf, sizeof(buf));
        expect_terminated(buf, n);
        tr_result(t, n, buf);
        if (n <= 0)
            break;
    }
    tr_result(t, eddy_stream_read_line(s, buf, sizeof(buf)), buf);
}
#define EXPECT_READ_LINE                                                                           \
    "GET /a HTTP/1.1\r\n|Host: x\r\n|\r\n|ab\n|\n|cd\r\n|end|<ENODATA>|<ENODATA>|"

/* A parser in place: fill until the head is buffered, consume it, then
 * consume the body half of what is buffered at a time. */
static void script_parse(struct eddy_stream *s, struct transcript *t)
{
    const char *d;
    for (int i = 0;; i++) {
        cr_assert_lt(i, 100, "no progress");
        size_t n = eddy_stream_peek(s, &d);
        const char *hit = memmem(d, n, "\r\n\r\n", 4);
        if (hit) {
            size_t head = (size_t)(hit - d) + 4;
            tr_str(t, "H:");
            tr_bytes(t, d, head);
            tr_str(t, "|");
            eddy_stream_consume(s, head);
            break;
        }
        ssize_t r = eddy_stream_fill(s, 64);
        if (r <= 0) {
            tr_result(t, r, NULL);
            return;
        }
    }
    ssize_t r;
    for (int i = 0;; i++) {
        cr_assert_lt(i, 200, "no progress");
        size_t n = eddy_stream_peek(s, &d);
        if (n > 0) {
            size_t half = (n + 1) / 2;
            tr_bytes(t, d, half);
            eddy_stream_consume(s, half);
            continue;
        }
        r = eddy_stream_fill(s, 64);
        if (r <= 0)
            break;
    }
    tr_str(t, "|");
    tr_result(t, r, NULL);
    tr_result(t, eddy_stream_fill(s, 64), NULL);
    cr_expect_eq(eddy_stream_peek(s, &d), 0);
}
#define EXPECT_PARSE "H:GET /a HTTP/1.1\r\nHost: x\r\n\r\n|ab\n\ncd\r\nend|<EOF>|<EOF>|"

/* Every call in turn on the same stream. */
static void script_mixed(struct eddy_stream *s, struct transcript *t)
{
    char buf[64];
    tr_result(t, eddy_stream_read_line(s, buf, sizeof(buf)), buf);
    tr_result(t, eddy_stream_read_exactly(s, buf, 3), buf);
    tr_result(t, eddy_stream_read_until(s, ": ", 2, buf, sizeof(buf)), buf);
    tr_result(t, eddy_stream_read_some(s, buf, 1), buf);
    tr_result(t, eddy_stream_read_until(s, "\n\n", 2, buf, sizeof(buf)), buf);
    tr_result(t, eddy_stream_read_exactly(s, buf, 10), buf);
    tr_result(t, eddy_stream_read_line(s, buf, sizeof(buf)), buf);
    tr_result(t, eddy_stream_read_line(s, buf, sizeof(buf)), buf);
    tr_result(t, eddy_stream_read_line(s, buf, sizeof(buf)), buf);
    tr_result(t, eddy_stream_read_some(s, buf, 8), buf);
}
#define EXPECT_MIXED                                                                               \
    "GET /a HTTP/1.1\r\n|Hos|t: |x|\r\n\r\nab\n\n|<ENODATA>|cd\r\n|end|<ENODATA>|<EOF>|"

/* How the peer delivers MSG: whole, in two parts, or a byte at a time. */
#define DELIVER_WHOLE 0
#define DELIVER_BYTES SIZE_MAX

struct delivery {
    int fd;
    size_t split;
};

static intptr_t deliver(void *arg)
{
    struct delivery *d = arg;
    size_t step = d->split == DELIVER_BYTES ? 1 : d->split == DELIVER_WHOLE ? MSG_LEN : d->split;
    for (size_t off = 0; off < MSG_LEN;) {
        size_t n = off == 0 ? step : d->split == DELIVER_BYTES ? 1 : MSG_LEN - off;
        ssize_t w = eddy_fd_write_all(d->fd, MSG + off, n);
        if (w < 0)
            return w;
        off += n;
        if (off < MSG_LEN) {
            int rc = eddy_sleep_ns(SPLIT_PAUSE_NS);
            if (rc < 0)
                return rc;
        }
    }
    return eddy_fd_close(d->fd);
}

struct split_run {
    script_fn *script;
    const char *expected;
    size_t runs;
};

static intptr_t split_main(void *arg)
{
    struct split_run *sr = arg;
    static const size_t read_sizes[] = {16, 0};
    for (int t = 0; t < T_COUNT; t++) {
        for (size_t b = 0; b < sizeof(read_sizes) / sizeof(read_sizes[0]); b++) {
            for (size_t split = 0; split <= MSG_LEN; split++) {
                int fds[2];
                transport_open((enum transport)t, fds);
                struct eddy_stream *s = open_stream(fds[0], read_sizes[b], 0, true);
                struct delivery d = {.fd = fds[1],
                                     .split = split == MSG_LEN ? DELIVER_BYTES : split};
                struct eddy_task *w = spawn(deliver, &d);
                struct transcript tr = {.len = 0};
                sr->script(s, &tr);
                cr_assert_eq(join(w), 0, "the peer's writes failed");
                cr_assert_eq(eddy_stream_close(s), 0);
                cr_assert_str_eq(tr.text, sr->expected, "%s, read buffer %zu, %s %zu",
                                 transport_names[t], read_sizes[b],
                                 split == MSG_LEN ? "bytes" : "split", split);
                sr->runs++;
            }
        }
    }
    return 0;
}

static void check_every_delivery(script_fn *script, const char *expected)
{
    struct split_run sr = {.script = script, .expected = expected};
    cr_assert_eq(rt_run(split_main, &sr), 0);
    cr_assert_eq(sr.runs, (size_t)T_COUNT * 2 * (MSG_LEN + 1));
}

EDDY_TEST(stream, read_some_gives_the_same_bytes_for_every_delivery)
{
    check_every_delivery(script_read_some, EXPECT_READ_SOME);
}

EDDY_TEST(stream, read_exactly_gives_the_same_pieces_for_every_delivery)
{
    check_every_delivery(script_read_exactly, EXPECT_READ_EXACTLY);
}

EDDY_TEST(stream, read_until_gives_the_same_results_for_every_delivery)
{
    check_every_delivery(script_read_until, EXPECT_READ_UNTIL);
}

EDDY_TEST(stream, read_line_gives_the_same_lines_for_every_delivery)
{
    check_every_delivery(script_read_line, EXPECT_READ_LINE);
}

EDDY_TEST(stream, fill_peek_consume_parse_the_same_for_every_delivery)
{
    check_every_delivery(script_parse, EXPECT_PARSE);
}

EDDY_TEST(stream, mixed_reads_give_the_same_results_for_every_delivery)
{
    check_every_delivery(script_mixed, EXPECT_MIXED);
}

/* ---- random reads against a model ------------------------------------------- */

/* What read_until(delim, cap) must return with `left` bytes of rest still
 * to come before the end: the length with the delimiter, or an error. */
static ssize_t model_until(const char *rest, size_t left, const char *delim, size_t dlen,
                           size_t cap)
{
    size_t max = cap - 1;
    size_t look = left < max ? left : max;
    const char *hit = memmem(rest, look, delim, dlen);
    if (hit)
        return (ssize_t)((size_t)(hit - rest) + dlen);
    return left >= max ? -EMSGSIZE : -ENODATA;
}

/* read_line: read_until "\n", and a last line without newline that fits. */
static ssize_t model_line(const char *rest, size_t left, size_t cap)
{
    ssize_t n = model_until(rest, left, "\n", 1, cap);
    if (n == -ENODATA && left > 0)
        return (ssize_t)left;
    if (n == -EMSGSIZE && left == cap - 1)
        return (ssize_t)left;
    return n;
}

struct random_run {
    enum transport transport;
    size_t read_bytes;
    uint64_t seed;
    char *msg;
    size_t len;
    int fd; /* the peer's end */
    size_t calls;
    size_t emsgsize, enodata; /* how often those outcomes came up */
};

static intptr_t random_writer(void *arg)
{
    struct random_run *r = arg;
    uint64_t rng = r->seed ^ UINT64_C(0x9e3779b97f4a7c15);
    for (size_t off = 0; off < r->len;) {
        size_t n = 1 + rt_rand(&rng) % 700;
        if (n > r->len - off)
            n = r->len - off;
        ssize_t w = eddy_fd_write_all(r->fd, r->msg + off, n);
        if (w < 0)
            return w;
        off += n;
        int rc = 0;
        switch (rt_rand(&rng) % 4) {
        case 0:
            break;
        case 1:
            rc = eddy_task_yield();
            break;
        default:
            rc = eddy_sleep_ns((int64_t)(rt_rand(&rng) % 200) * 1000);
            break;
        }
        if (rc < 0)
            return rc;
    }
    return eddy_fd_close(r->fd);
}

#define RANDOM_CAP_MAX 200

static intptr_t random_main(void *arg)
{
    struct random_run *r = arg;
    int fds[2];
    transport_open(r->transport, fds);
    r->fd = fds[1];
    struct eddy_stream *s = open_stream(fds[0], r->read_bytes, 0, true);
    struct eddy_task *w = spawn(random_writer, r);
    static const char *const delims[] = {"\n", "\r\n", "a\r\n\r", "bb"};
    char buf[4096];
    uint64_t rng = r->seed;
    size_t pos = 0;
    while (pos < r->len) {
        cr_assert_lt(r->calls, 20 * r->len, "no progress");
        r->calls++;
        const char *rest = r->msg + pos;
        size_t left = r->len - pos;
        unsigned op = (unsigned)(rt_rand(&rng) % 5);
        if (op == 0) {
            size_t want = 1 + rt_rand(&rng) % (rt_rand(&rng) % 32 ? 24 : sizeof(buf));
            ssize_t n = eddy_stream_read_some(s, buf, want);
            cr_assert(n >= 1 && (size_t)n <= want && (size_t)n <= left,
                      "seed %llu call %zu: read_some(%zu) = %zd with %zu left",
                      (unsigned long long)r->seed, r->calls, want, n, left);
            cr_assert_eq(memcmp(buf, rest, (size_t)n), 0, "read_some bytes");
            pos += (size_t)n;
        } else if (op == 1) {
            size_t want = 1 + rt_rand(&rng) % (rt_rand(&rng) % 32 ? 24 : 3000);
            ssize_t n = eddy_stream_read_exactly(s, buf, want);
            ssize_t expect = left >= want ? (ssize_t)want : -ENODATA;
            cr_assert_eq(n, expect, "seed %llu call %zu: read_exactly(%zu) = %zd with %zu left",
                         (unsigned long long)r->seed, r->calls, want, n, left);
            if (n > 0) {
                cr_assert_eq(memcmp(buf, rest, (size_t)n), 0, "read_exactly bytes");
                pos += (size_t)n;
            } else {
                r->enodata++;
            }
        } else if (op == 2 || op == 3) {
            const char *delim = op == 3 ? "\n" : delims[rt_rand(&rng) % 4];
            size_t dlen = strlen(delim);
            size_t cap = dlen + 1 + rt_rand(&rng) % (RANDOM_CAP_MAX - dlen);
            ssize_t n = op == 3 ? eddy_stream_read_line(s, buf, cap)
                                : eddy_stream_read_until(s, delim, dlen, buf, cap);
            ssize_t expect =
                op == 3 ? model_line(rest, left, cap) : model_until(rest, left, delim, dlen, cap);
            cr_assert_eq(n, expect, "seed %llu call %zu: %s cap %zu = %zd, expected %zd",
                         (unsigned long long)r->seed, r->calls,
                         op == 3 ? "read_line" : "read_until", cap, n, expect);
            if (n > 0) {
                cr_assert_eq(memcmp(buf, rest, (size_t)n), 0, "read_until bytes");
                cr_assert_eq(buf[n], 0, "read_until terminates");
                pos += (size_t)n;
            } else if (n == -EMSGSIZE) {
                r->emsgsize++;
            } else {
                r->enodata++;
            }
        } else {
            const char *d;
            size_t pre = eddy_stream_peek(s, &d);
            cr_assert_leq(pre, left);
            cr_assert_eq(memcmp(d, rest, pre), 0, "peek bytes before fill");
            size_t max = 1 + rt_rand(&rng) % 300;
            ssize_t n = eddy_stream_fill(s, max);
            if (pre >= max)
                r->emsgsize++;
            if (pre >= max)
                cr_assert_eq(n, -EMSGSIZE, "fill(%zu) with %zu buffered = %zd", max, pre, n);
            else if (pre == left)
                cr_assert_eq(n, 0, "fill at the end = %zd", n);
            else
                cr_assert(n >= 1 && pre + (size_t)n <= max,
                          "fill(%zu) with %zu buffered and %zu left = %zd", max, pre, left, n);
            size_t have = eddy_stream_peek(s, &d);
            cr_assert_eq(have, pre + (n > 0 ? (size_t)n : 0));
            cr_assert_eq(memcmp(d, rest, have), 0, "peek bytes after fill");
            size_t k = rt_rand(&rng) % (have + 1);
            eddy_stream_consume(s, k);
            pos += k;
        }
    }
    char c;
    cr_expect_eq(eddy_stream_read_some(s, &c, 1), 0);
    cr_expect_eq(eddy_stream_read_line(s, buf, sizeof(buf)), -ENODATA);
    cr_expect_eq(eddy_stream_read_exactly(s, buf, 1), -ENODATA);
    cr_expect(eddy_stream_is_eof(s));
    cr_assert_eq(join(w), 0);
    cr_assert_eq(eddy_stream_close(s), 0);
    return 0;
}

/* Random bytes where "\n", "\r\n" and the other delimiters are common. */
static char *random_message(uint64_t seed, size_t len)
{
    static const char alphabet[] = "ab\r\n\r\nxyzab\n";
    char *m = malloc(len);
    cr_assert_not_null(m);
    uint64_t rng = seed * 7 + 1;
    for (size_t i = 0; i < len; i++)
        m[i] = alphabet[rt_rand(&rng) % (sizeof(alphabet) - 1)];
    return m;
}

static void check_random_reads(size_t read_bytes)
{
    size_t base = rt_scale(30000, 3000);
    size_t emsgsize = 0, enodata = 0;
    for (int t = 0; t < T_COUNT; t++) {
        /* Four long messages, then four short ones (more ends per byte). */
        for (uint64_t seed = 1; seed <= 8; seed++) {
            uint64_t rng = seed * 1000 + (uint64_t)t;
            size_t len = 1 + rt_rand(&rng) % (seed <= 4 ? 2 * base : 200);
            struct random_run r = {.transport = (enum transport)t,
                                   .read_bytes = read_bytes,
                                   .seed = seed * 1000 + (uint64_t)t,
                                   .len = len};
            r.msg = random_message(r.seed, len);
            cr_assert_eq(rt_run(random_main, &r), 0);
            cr_assert_gt(r.calls, len / 200, "%zu calls", r.calls);
            emsgsize += r.emsgsize;
            enodata += r.enodata;
            free(r.msg);
        }
    }
    cr_expect_gt(emsgsize, 0, "no call ran into its limit");
    cr_expect_gt(enodata, 0, "no call ran into the end");
}

EDDY_TEST(stream, random_reads_on_a_16_byte_buffer_match_the_model)
{
    check_random_reads(16);
}

EDDY_TEST(stream, random_reads_on_the_default_buffer_match_the_model)
{
    check_random_reads(0);
}

/* ---- read_exactly ----------------------------------------------------------- */

struct big_read {
    enum transport transport;
    size_t read_bytes;
    size_t len;
};

/* A 4-byte line, then len bytes of pattern read in two read_exactly calls
 * far larger than the read buffer, then the end. */
static intptr_t big_read_main(void *arg)
{
    struct big_read *b = arg;
    int fds[2];
    transport_open(b->transport, fds);
    unsigned char *data = pattern_new(b->len + 4);
    memcpy(data, "hdr\n", 4);
    struct sender w = {.fd = fds[1], .data = data, .len = b->len + 4};
    struct eddy_task *wt = spawn(send_task, &w);
    struct eddy_stream *s = open_stream(fds[0], b->read_bytes, 0, true);
    char line[8];
    cr_assert_eq(eddy_stream_read_line(s, line, sizeof(line)), 4);
    cr_assert_str_eq(line, "hdr\n");
    unsigned char *got = malloc(b->len);
    size_t first = b->len * 3 / 5;
    cr_assert_eq(eddy_stream_read_exactly(s, got, first), (ssize_t)first);
    cr_assert_eq(eddy_stream_read_exactly(s, got + first, b->len - first),
                 (ssize_t)(b->len - first));
    size_t bad = pattern_mismatch(got, b->len, 4);
    cr_assert_eq(bad, b->len, "byte %zu differs", bad);
    cr_assert_eq(eddy_stream_read_exactly(s, got, 1), -ENODATA);
    cr_assert_eq(join(wt), 0);
    cr_assert_eq(eddy_stream_close(s), 0);
    free(got);
    free(data);
    return 0;
}

EDDY_TEST(stream, read_exactly_larger_than_the_buffer_reads_every_byte_in_order)
{
    size_t len = rt_scale(1u << 20, 1u << 17);
    for (int t = 0; t < T_COUNT; t++) {
        struct big_read b = {.transport = (enum transport)t, .read_bytes = 64, .len = len};
        cr_assert_eq(rt_run(big_read_main, &b), 0);
        b.read_bytes = 0;
        cr_assert_eq(rt_run(big_read_main, &b), 0);
    }
}

struct early_end {
    enum transport transport;
    size_t read_bytes;
    size_t sent;   /* bytes the peer sends before it closes */
    size_t asked;  /* the read_exactly */
    size_t before; /* bytes read with read_some before the read_exactly */
};

static intptr_t early_end_main(void *arg)
{
    struct early_end *e = arg;
    int fds[2];
    transport_open(e->transport, fds);
    unsigned char *data = pattern_new(e->sent);
    /* Sent in two parts, the second after the read_exactly started, so it
     * gathers across reads. */
    size_t first = e->sent / 3 > e->before ? e->sent / 3 : e->before;
    struct sender w = {.fd = fds[1], .data = data, .len = first, .keep_open = true};
    struct eddy_task *wt = spawn(send_task, &w);
    struct eddy_stream *s = open_stream(fds[0], e->read_bytes, 0, true);
    unsigned char *got = calloc(1, e->asked + e->sent);
    if (e->before) {
        cr_assert_eq(eddy_stream_read_exactly(s, got, e->before), (ssize_t)e->before);
    }
    struct sender rest = {
        .fd = fds[1], .data = data + first, .len = e->sent - first, .delay_ns = EDDY_NS_PER_MS};
    cr_assert_eq(join(wt), 0);
    wt = spawn(send_task, &rest);
    ssize_t n = eddy_stream_read_exactly(s, got + e->before, e->asked);
    cr_assert_eq(n, -ENODATA, "read_exactly(%zu) with %zu left = %zd", e->asked,
                 e->sent - e->before, n);
    cr_assert(eddy_stream_is_eof(s));
    /* Nothing lost: read_some returns every byte after the first ones. */
    size_t got_n = e->before;
    for (;;) {
        n = eddy_stream_read_some(s, got + got_n, e->asked + e->sent - got_n);
        cr_assert_geq(n, 0);
        if (n == 0)
            break;
        got_n += (size_t)n;
    }
    cr_assert_eq(got_n, e->sent, "read_some after -ENODATA gave %zu of %zu bytes", got_n, e->sent);
    size_t bad = pattern_mismatch(got, e->sent, 0);
    cr_assert_eq(bad, e->sent, "byte %zu differs", bad);
    cr_assert_eq(join(wt), 0);
    cr_assert_eq(eddy_stream_close(s), 0);
    free(got);
    free(data);
    return 0;
}

EDDY_TEST(stream, read_exactly_at_an_early_end_returns_enodata_and_loses_nothing)
{
    static const struct early_end cases[] = {
        {.read_bytes = 0, .sent = 5000, .asked = 6000},                /* through the buffer */
        {.read_bytes = 0, .sent = 5000, .asked = 6000, .before = 10},  /* with bytes left over */
        {.read_bytes = 0, .sent = 50000, .asked = 100000},             /* direct */
        {.read_bytes = 64, .sent = 5000, .asked = 10000, .before = 3}, /* direct, small buffer */
        {.read_bytes = 16, .sent = 100, .asked = 101, .before = 99},   /* one byte short */
        {.read_bytes = 16, .sent = 0, .asked = 1},                     /* nothing at all */
    };
    for (int t = 0; t < T_COUNT; t++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            struct early_end e = cases[i];
            e.transport = (enum transport)t;
            cr_assert_eq(rt_run(early_end_main, &e), 0);
        }
    }
}

static intptr_t exactly_args_main(void *arg)
{
    (void)arg;
    /* A bad argument that slips through waits for data: end it. */
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, EDDY_NS_PER_SEC);
    int fds[2];
    cr_assert_eq(eddy_sock_pair(fds), 0);
    struct eddy_stream *s = open_stream(fds[0], 0, 0, true);
    char buf[4];
    cr_expect_eq(eddy_stream_read_exactly(NULL, buf, 1), -EINVAL);
    cr_expect_eq(eddy_stream_read_exactly(s, NULL, 1), -EINVAL);
    cr_expect_eq(eddy_stream_read_exactly(s, buf, (size_t)SSIZE_MAX + 1), -EINVAL);
    cr_expect_eq(eddy_stream_read_exactly(s, buf, 0), 0);
    cr_expect_eq(eddy_stream_read_some(NULL, buf, 1), -EINVAL);
    cr_expect_eq(eddy_stream_read_some(s, NULL, 1), -EINVAL);
    cr_expect_eq(eddy_stream_read_some(s, buf, 0), 0);
    cr_expect_eq(eddy_stream_fill(NULL, 1), -EINVAL);
    cr_expect_eq(eddy_stream_fill(s, 0), -EINVAL);
    eddy_fd_close(fds[1]);
    cr_assert_eq(eddy_stream_close(s), 0);
    cr_assert_eq(eddy_timeout_exit(&scope), 0);
    return 0;
}

EDDY_TEST(stream, reads_reject_bad_arguments)
{
    cr_assert_eq(rt_run(exactly_args_main, NULL), 0);
}

/* ---- read_until and read_line ------------------------------------------------- */

/* The peer's side of a scripted exchange: writes each part after a pause
 * and logs it, keeping the connection open until told to close. */
struct script_peer {
    int fd;
    const char *parts[8];
    char log[16];
    size_t nlog;
    struct eddy_event done; /* set by the test: close now */
};

static intptr_t script_peer_task(void *arg)
{
    struct script_peer *p = arg;
    for (size_t i = 0; i < 8 && p->parts[i]; i++) {
        int rc = eddy_sleep_ms(2);
        if (rc < 0)
            return rc;
        ssize_t n = eddy_fd_write_all(p->fd, p->parts[i], strlen(p->parts[i]));
        if (n < 0)
            return n;
        p->log[p->nlog++] = (char)('0' + i);
    }
    int rc = eddy_event_wait(&p->done, EDDY_DEADLINE_NEVER);
    eddy_fd_close(p->fd);
    return rc;
}

struct until_span {
    enum transport transport;
    struct script_peer peer;
    char log_at_return[16];
};

static intptr_t until_span_main(void *arg)
{
    struct until_span *u = arg;
    int fds[2];
    transport_open(u->transport, fds);
    u->peer.fd = fds[1];
    eddy_event_init(&u->peer.done);
    struct eddy_task *pt = spawn(script_peer_task, &u->peer);
    struct eddy_stream *s = open_stream(fds[0], 0, 0, true);
    char buf[64];
    /* A search that misses the delimiter would wait for the peer forever. */
    struct eddy_timeout scope;
    cr_assert_eq(eddy_timeout_enter(&scope, PEER_TIMEOUT_NS), 0);
    ssize_t n = eddy_stream_read_until(s, "\r\n\r\n", 4, buf, sizeof(buf));
    eddy_timeout_exit(&scope);
    memcpy(u->log_at_return, u->peer.log, u->peer.nlog);
    cr_assert_eq(n, 7, "read_until = %zd", n);
    cr_assert_str_eq(buf, "abc\r\n\r\n");
    cr_assert_eq(eddy_stream_read_until(s, "\r\n", 2, buf, sizeof(buf)), 2);
    cr_assert_str_eq(buf, "\r\n");
    cr_assert_eq(eddy_stream_read_until(s, "\r\n", 2, buf, sizeof(buf)), 3);
    cr_assert_str_eq(buf, "d\r\n");
    eddy_event_set(&u->peer.done);
    cr_assert_eq(join(pt), 0);
    cr_assert_eq(eddy_stream_read_until(s, "\r\n", 2, buf, sizeof(buf)), -ENODATA);
    cr_assert_eq(eddy_stream_close(s), 0);
    return 0;
}

EDDY_TEST(stream, read_until_finds_a_delimiter_that_spans_reads)
{
    for (int t = 0; t < T_COUNT; t++) {
        /* "\r\n\r\n" arrives as "\r", "\n\r", "\n": the first two parts
         * hold a "\r\n" the search must not stop at. */
        struct until_span u = {.transport = (enum transport)t,
                               .peer.parts = {"abc\r", "\n\r", "\n\r\n", "d\r\n"}};
        cr_assert_eq(rt_run(until_span_main, &u), 0);
        cr_expect_str_eq(u.log_at_return, "012", "%s: read_until returned after parts %s",
                         transport_names[t], u.log_at_return);
    }
}

struct until_limit {
    enum transport transport;
    size_t read_bytes;
};

static intptr_t until_limit_main(void *arg)
{
    struct until_limit *u = arg;
    int fds[2];
    transport_open(u->transport, fds);
    struct eddy_stream *s = open_stream(fds[0], u->read_bytes, 0, true);
    char buf[64];
    const char *d;

    /* 9 bytes without the delimiter fill a cap of 10: -EMSGSIZE at once,
     * while the peer stays silent (no end of stream), consuming nothing. */
    cr_assert_eq(eddy_fd_write_all(fds[1], "123456789", 9), 9);
    cr_assert_eq(eddy_stream_read_until(s, "\r\n", 2, buf, 10), -EMSGSIZE);
    cr_assert_eq(eddy_stream_peek(s, &d), 9);
    cr_assert_eq(memcmp(d, "123456789", 9), 0);
    cr_assert(!eddy_stream_is_eof(s));
    /* The same call with room finds the delimiter once it comes. */
    cr_assert_eq(eddy_fd_write_all(fds[1], "\r\nxyz\r\n", 7), 7);
    cr_assert_eq(eddy_stream_read_until(s, "\r\n", 2, buf, sizeof(buf)), 11);
    cr_assert_str_eq(buf, "123456789\r\n");

    /* A delimiter ending exactly at cap - 1 is found; one byte later is not. */
    cr_assert_eq(eddy_stream_read_until(s, "\r\n", 2, buf, 6), 5);
    cr_assert_str_eq(buf, "xyz\r\n");
    cr_assert_eq(eddy_fd_write_all(fds[1], "uvwxyz\r\n", 8), 8);
    cr_assert_eq(eddy_stream_read_until(s, "\r\n", 2, buf, 8), -EMSGSIZE);
    cr_assert_eq(eddy_stream_read_until(s, "\r\n", 2, buf, 9), 8);
    cr_assert_str_eq(buf, "uvwxyz\r\n");

    /* Twenty bytes at once past a cap of 10: all of them stay. */
    cr_assert_eq(eddy_fd_write_all(fds[1], "abcdefghijklmnopqrst", 20), 20);
    cr_assert_eq(eddy_stream_read_until(s, "\n", 1, buf, 10), -EMSGSIZE);
    cr_assert_eq(eddy_stream_read_line(s, buf, 10), -EMSGSIZE);
    cr_assert_eq(eddy_stream_read_exactly(s, buf, 20), 20);
    cr_assert_eq(memcmp(buf, "abcdefghijklmnopqrst", 20), 0);

    /* At the end without the delimiter: -ENODATA, the bytes stay. */
    cr_assert_eq(eddy_fd_write_all(fds[1], "tail", 4), 4);
    eddy_fd_close(fds[1]);
    cr_assert_eq(eddy_stream_read_until(s, "\r\n", 2, buf, sizeof(buf)), -ENODATA);
    cr_assert(eddy_stream_is_eof(s));
    cr_assert_eq(eddy_stream_read_until(s, "\r\n", 2, buf, sizeof(buf)), -ENODATA);
    cr_assert_eq(eddy_stream_read_some(s, buf, sizeof(buf)), 4);
    cr_assert_eq(memcmp(buf, "tail", 4), 0);
    cr_assert_eq(eddy_stream_read_until(s, "\r\n", 2, buf, sizeof(buf)), -ENODATA);
    cr_assert_eq(eddy_stream_close(s), 0);
    return 0;
}

EDDY_TEST(stream, read_until_stops_at_its_limit_and_at_the_end_and_consumes_nothing)
{
    for (int t = 0; t < T_COUNT; t++) {
        struct until_limit u = {.transport = (enum transport)t, .read_bytes = 16};
        cr_assert_eq(rt_run(until_limit_main, &u), 0);
        u.read_bytes = 0;
        cr_assert_eq(rt_run(until_limit_main, &u), 0);
    }
}

static intptr_t until_args_main(void *arg)
{
    (void)arg;
    /* A bad argument that slips through waits for data: end it. */
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, EDDY_NS_PER_SEC);
    int fds[2];
    cr_assert_eq(eddy_sock_pair(fds), 0);
    struct eddy_stream *s = open_stream(fds[0], 0, 0, true);
    char buf[8];
    cr_expect_eq(eddy_stream_read_until(NULL, "\n", 1, buf, 8), -EINVAL);
    cr_expect_eq(eddy_stream_read_until(s, NULL, 1, buf, 8), -EINVAL);
    cr_expect_eq(eddy_stream_read_until(s, "\n", 0, buf, 8), -EINVAL);
    cr_expect_eq(eddy_stream_read_until(s, "\n", 1, NULL, 8), -EINVAL);
    cr_expect_eq(eddy_stream_read_until(s, "\n", 1, buf, 0), -EINVAL);
    cr_expect_eq(eddy_stream_read_until(s, "\n", 1, buf, 1), -EINVAL);
    cr_expect_eq(eddy_stream_read_until(s, "\r\n", 2, buf, 2), -EINVAL);
    cr_expect_eq(eddy_stream_read_until(s, "\r\n", SIZE_MAX, buf, 8), -EINVAL);
    cr_expect_eq(eddy_stream_read_line(NULL, buf, 8), -EINVAL);
    cr_expect_eq(eddy_stream_read_line(s, NULL, 8), -EINVAL);
    cr_expect_eq(eddy_stream_read_line(s, buf, 1), -EINVAL);
    cr_expect_eq(eddy_stream_read_line(s, buf, 0), -EINVAL);
    /* The smallest caps work. */
    cr_assert_eq(eddy_fd_write_all(fds[1], "\n\r\nx", 4), 4);
    cr_expect_eq(eddy_stream_read_line(s, buf, 2), 1);
    cr_expect_str_eq(buf, "\n");
    cr_expect_eq(eddy_stream_read_until(s, "\r\n", 2, buf, 3), 2);
    cr_expect_str_eq(buf, "\r\n");
    eddy_fd_close(fds[1]);
    cr_expect_eq(eddy_stream_read_line(s, buf, 2), 1);
    cr_expect_str_eq(buf, "x");
    cr_assert_eq(eddy_stream_close(s), 0);
    cr_assert_eq(eddy_timeout_exit(&scope), 0);
    return 0;
}

EDDY_TEST(stream, read_until_and_read_line_reject_bad_arguments)
{
    cr_assert_eq(rt_run(until_args_main, NULL), 0);
}

struct line_limit {
    enum transport transport;
    const char *text;
    size_t cap;
    const char *expected; /* transcript of read_line until it fails, then read_some */
};

static intptr_t line_limit_main(void *arg)
{
    struct line_limit *l = arg;
    int fds[2];
    transport_open(l->transport, fds);
    struct sender w = {.fd = fds[1], .data = l->text, .len = strlen(l->text)};
    struct eddy_task *wt = spawn(send_task, &w);
    struct eddy_stream *s = open_stream(fds[0], 16, 0, true);
    struct transcript t = {.len = 0};
    char buf[256];
    cr_assert_leq(l->cap, sizeof(buf));
    for (int i = 0; i < 50; i++) {
        ssize_t n = eddy_stream_read_line(s, buf, l->cap);
        expect_terminated(buf, n);
        tr_result(&t, n, buf);
        if (n <= 0)
            break;
    }
    /* The rest, however many reads it takes. */
    ssize_t n = 1;
    for (int i = 0; i < 50 && n > 0; i++) {
        n = eddy_stream_read_some(s, buf, sizeof(buf));
        if (n > 0)
            tr_bytes(&t, buf, (size_t)n);
    }
    tr_str(&t, "|");
    tr_result(&t, n, buf);
    cr_assert_eq(join(wt), 0);
    cr_assert_eq(eddy_stream_close(s), 0);
    cr_assert_str_eq(t.text, l->expected, "%s: %s", transport_names[l->transport], l->text);
    return 0;
}

EDDY_TEST(stream, read_line_returns_empty_lines_a_last_line_and_lines_up_to_cap_minus_one)
{
    static const struct line_limit cases[] = {
        {.text = "\n\n\nx", .cap = 8, .expected = "\n|\n|\n|x|<ENODATA>||<EOF>|"},
        {.text = "one\ntwo", .cap = 8, .expected = "one\n|two|<ENODATA>||<EOF>|"},
        {.text = "", .cap = 8, .expected = "<ENODATA>||<EOF>|"},
        /* 7 bytes with the newline fit a cap of 8; 8 do not. */
        {.text = "123456\n1234567\nz",
         .cap = 8,
         .expected = "123456\n|<EMSGSIZE>|1234567\nz|<EOF>|"},
        /* A last line of exactly cap - 1 bytes fits; one more does not. */
        {.text = "ab\n1234567", .cap = 8, .expected = "ab\n|1234567|<ENODATA>||<EOF>|"},
        {.text = "ab\n12345678", .cap = 8, .expected = "ab\n|<EMSGSIZE>|12345678|<EOF>|"},
        {.text = "\r\n\r\n", .cap = 3, .expected = "\r\n|\r\n|<ENODATA>||<EOF>|"},
    };
    for (int t = 0; t < T_COUNT; t++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            struct line_limit l = cases[i];
            l.transport = (enum transport)t;
            cr_assert_eq(rt_run(line_limit_main, &l), 0);
        }
    }
}

static intptr_t fill_max_main(void *arg)
{
    (void)arg;
    int fds[2];
    cr_assert_eq(eddy_sock_pair(fds), 0);
    struct eddy_stream *s = open_stream(fds[0], 16, 0, true);
    const char *d;
    cr_assert_eq(eddy_stream_peek(s, &d), 0);
    cr_assert_not_null(d);
    unsigned char *data = pattern_new(1000);
    cr_assert_eq(eddy_fd_write_all(fds[1], data, 1000), 1000);
    /* The buffer grows from 16 bytes to hold 1000, never past max_bytes. */
    size_t have = 0;
    while (have < 700) {
        ssize_t n = eddy_stream_fill(s, 700);
        cr_assert_gt(n, 0);
        have += (size_t)n;
        cr_assert_eq(eddy_stream_peek(s, &d), have);
        cr_assert_leq(have, 700);
    }
    cr_assert_eq(eddy_stream_fill(s, 700), -EMSGSIZE);
    cr_assert_eq(eddy_stream_fill(s, 500), -EMSGSIZE);
    cr_assert_eq(pattern_mismatch((const unsigned char *)d, 700, 0), 700);
    /* Consuming makes room again: the rest of the bytes follow in order. */
    eddy_stream_consume(s, 650);
    cr_assert_eq(eddy_stream_peek(s, &d), 50);
    while (have < 1000) {
        ssize_t n = eddy_stream_fill(s, 1000);
        cr_assert_gt(n, 0);
        have += (size_t)n;
    }
    cr_assert_eq(eddy_stream_peek(s, &d), 350);
    cr_assert_eq(pattern_mismatch((const unsigned char *)d, 350, 650), 350);
    eddy_stream_consume(s, 350);
    cr_assert_eq(eddy_stream_peek(s, &d), 0);
    eddy_fd_close(fds[1]);
    cr_assert_eq(eddy_stream_fill(s, 10), 0);
    cr_assert(eddy_stream_is_eof(s));
    cr_assert_eq(eddy_stream_fill(s, 10), 0);
    cr_assert_eq(eddy_stream_close(s), 0);
    free(data);
    return 0;
}

static intptr_t consume_past_main(void *arg)
{
    (void)arg;
    int fds[2];
    cr_assert_eq(eddy_sock_pair(fds), 0);
    struct eddy_stream *s = open_stream(fds[0], 0, 0, true);
    const char *d;
    eddy_stream_consume(s, 5); /* nothing buffered yet */
    cr_assert_eq(eddy_stream_peek(s, &d), 0);
    cr_assert_eq(eddy_fd_write_all(fds[1], "abc", 3), 3);
    cr_assert_eq(eddy_stream_fill(s, 100), 3);
    eddy_stream_consume(s, 0);
    eddy_stream_consume(s, 1);
    cr_assert_eq(eddy_stream_peek(s, &d), 2);
    cr_assert_eq(memcmp(d, "bc", 2), 0);
    eddy_stream_consume(s, 1000); /* past the end: drops what there is */
    cr_assert_eq(eddy_stream_peek(s, &d), 0);
    cr_assert_eq(eddy_fd_write_all(fds[1], "def", 3), 3);
    char buf[8];
    cr_assert_eq(eddy_stream_read_some(s, buf, sizeof(buf)), 3);
    cr_assert_eq(memcmp(buf, "def", 3), 0);
    eddy_fd_close(fds[1]);
    cr_assert_eq(eddy_stream_close(s), 0);
    return 0;
}

EDDY_TEST(stream, consume_drops_at_most_the_buffered_bytes)
{
    cr_assert_eq(rt_run(consume_past_main, NULL), 0);
}

EDDY_TEST(stream, fill_grows_the_buffer_up_to_max_bytes_and_then_returns_emsgsize)
{
    cr_assert_eq(rt_run(fill_max_main, NULL), 0);
}

/* ---- open, close, abort ------------------------------------------------------- */

static bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

EDDY_TEST(stream, open_rejects_bad_arguments_and_makes_the_fd_non_blocking)
{
    struct eddy_stream *s = NULL;
    cr_expect_eq(eddy_stream_open(-1, NULL, &s), -EINVAL);
    int fds[2];
    cr_assert_eq(pipe(fds), 0); /* blocking */
    cr_expect_eq(eddy_stream_open(fds[0], NULL, NULL), -EINVAL);
    /* A number that is no open fd. */
    int closed = dup(fds[0]);
    close(closed);
    cr_expect_eq(eddy_stream_open(closed, NULL, &s), -EBADF);
    cr_expect_eq(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
    cr_assert_eq(eddy_stream_open(fds[0], NULL, &s), 0);
    cr_expect_neq(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
    cr_expect_eq(eddy_stream_fd(s), fds[0]);
    cr_expect_eq(eddy_stream_fd(NULL), -EINVAL);
    cr_expect_eq(eddy_stream_write_buffered(s), 0);
    cr_expect(!eddy_stream_is_eof(s));
    eddy_stream_abort(s); /* closes the owned read end */
    cr_expect(!fd_is_open(fds[0]));
    close(fds[1]);
    cr_expect_eq(eddy_stream_close(NULL), -EINVAL);
    eddy_stream_abort(NULL);
}

static intptr_t close_ownership_main(void *arg)
{
    (void)arg;
    int fds[2];
    cr_assert_eq(eddy_sock_pair(fds), 0);
    /* Borrowed: close flushes and leaves the fd open. */
    struct eddy_stream *s = open_stream(fds[0], 0, 0, false);
    cr_assert_eq(eddy_stream_write(s, "borrowed", 8), 8);
    cr_assert_eq(eddy_stream_close(s), 0);
    cr_assert(fd_is_open(fds[0]));
    char buf[16];
    cr_assert_eq(recv_now(fds[1], buf, sizeof(buf)), 8);
    /* Borrowed and aborted: the fd stays open, the buffered bytes go. */
    s = open_stream(fds[0], 0, 0, false);
    cr_assert_eq(eddy_stream_write(s, "dropped", 7), 7);
    eddy_stream_abort(s);
    cr_assert(fd_is_open(fds[0]));
    cr_assert_eq(recv_now(fds[1], buf, sizeof(buf)), -EAGAIN);
    /* Owned: close flushes, then closes the fd; the peer reads the bytes
     * and then the end. */
    s = open_stream(fds[0], 0, 0, true);
    cr_assert_eq(eddy_stream_write(s, "owned", 5), 5);
    cr_assert_eq(recv_now(fds[1], buf, sizeof(buf)), -EAGAIN);
    cr_assert_eq(eddy_stream_close(s), 0);
    cr_assert(!fd_is_open(fds[0]));
    cr_assert_eq(read_to_eof(fds[1], buf, sizeof(buf)), 5);
    cr_assert_eq(memcmp(buf, "owned", 5), 0);
    eddy_fd_close(fds[1]);
    return 0;
}

EDDY_TEST(stream, close_flushes_and_closes_only_an_owned_fd_and_abort_discards)
{
    cr_assert_eq(rt_run(close_ownership_main, NULL), 0);
}

static intptr_t abort_main(void *arg)
{
    enum transport t = *(enum transport *)arg;
    int fds[2];
    transport_open(t, fds);
    int wfd = t == T_PIPE ? fds[1] : fds[0];
    int rfd = t == T_PIPE ? fds[0] : fds[1];
    struct eddy_stream *s = open_stream(wfd, 0, 0, true);
    cr_assert_eq(eddy_stream_write(s, "never sent", 10), 10);
    cr_assert_eq(eddy_stream_write_buffered(s), 10);
    eddy_stream_abort(s);
    char buf[16];
    cr_assert_eq(read_to_eof(rfd, buf, sizeof(buf)), 0, "the peer saw bytes after abort");
    eddy_fd_close(rfd);
    return 0;
}

EDDY_TEST(stream, abort_discards_buffered_bytes_and_the_peer_sees_only_the_end)
{
    for (int t = 0; t < T_COUNT; t++)
        cr_assert_eq(rt_run(abort_main, &t), 0);
}

/* ---- writing ------------------------------------------------------------------ */

/* The stream writes at `wfd`; its peer reads at `rfd`. */
struct write_pair {
    int wfd, rfd;
};

static struct write_pair write_pair_open(enum transport t)
{
    int fds[2];
    transport_open(t, fds);
    if (t == T_PIPE)
        return (struct write_pair){.wfd = fds[1], .rfd = fds[0]};
    return (struct write_pair){.wfd = fds[0], .rfd = fds[1]};
}

/* Nothing readable at fd now (a pipe or a socket). */
static bool nothing_readable(int fd)
{
    char c;
    ssize_t n = read(fd, &c, 1);
    return n < 0 && errno == EAGAIN;
}

/* Reads exactly len bytes from fd (parking). */
static void read_exactly_fd(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = eddy_fd_read(fd, (char *)buf + got, len - got);
        cr_assert_gt(n, 0, "peer read: %s", n ? eddy_strerror((int)n) : "end of stream");
        got += (size_t)n;
    }
}

static intptr_t buffered_write_main(void *arg)
{
    enum transport t = *(enum transport *)arg;
    struct write_pair p = write_pair_open(t);
    struct eddy_stream *s = open_stream(p.wfd, 0, 64, true);
    char buf[256];

    /* Below the high-water mark nothing is sent until flush. */
    cr_assert_eq(eddy_stream_write(s, "hello", 5), 5);
    cr_assert_eq(eddy_stream_write(s, " world", 6), 6);
    cr_assert_eq(eddy_stream_write_buffered(s), 11);
    cr_assert_eq(eddy_task_yield(), 0);
    cr_assert(nothing_readable(p.rfd), "bytes sent before flush");
    cr_assert_eq(eddy_stream_flush(s), 0);
    cr_assert_eq(eddy_stream_write_buffered(s), 0);
    read_exactly_fd(p.rfd, buf, 11);
    cr_assert_eq(memcmp(buf, "hello world", 11), 0);
    cr_assert_eq(eddy_stream_flush(s), 0, "an empty flush");

    /* Filling the buffer exactly still buffers; one byte more sends all. */
    char block[64];
    memset(block, 'b', sizeof(block));
    cr_assert_eq(eddy_stream_write(s, block, 60), 60);
    cr_assert_eq(eddy_stream_write(s, "1234", 4), 4);
    cr_assert_eq(eddy_stream_write_buffered(s), 64);
    cr_assert(nothing_readable(p.rfd));
    cr_assert_eq(eddy_stream_write(s, "!", 1), 1);
    cr_assert_eq(eddy_stream_write_buffered(s), 0);
    read_exactly_fd(p.rfd, buf, 65);
    cr_assert_eq(memcmp(buf, block, 60), 0);
    cr_assert_eq(memcmp(buf + 60, "1234!", 5), 0);

    /* A write larger than the buffer goes out at once, after what was
     * buffered. */
    cr_assert_eq(eddy_stream_write(s, "head:", 5), 5);
    char large[200];
    for (size_t i = 0; i < sizeof(large); i++)
        large[i] = (char)('a' + i % 26);
    cr_assert_eq(eddy_stream_write(s, large, sizeof(large)), (ssize_t)sizeof(large));
    cr_assert_eq(eddy_stream_write_buffered(s), 0);
    read_exactly_fd(p.rfd, buf, 205);
    cr_assert_eq(memcmp(buf, "head:", 5), 0);
    cr_assert_eq(memcmp(buf + 5, large, sizeof(large)), 0);

    /* Zero bytes are a no-op. */
    cr_assert_eq(eddy_stream_write(s, NULL, 0), 0);
    cr_assert_eq(eddy_stream_write(s, "", 0), 0);
    cr_assert_eq(eddy_stream_write_buffered(s), 0);
    cr_assert(nothing_readable(p.rfd));

    /* Close flushes the tail. */
    cr_assert_eq(eddy_stream_write(s, "tail", 4), 4);
    cr_assert(nothing_readable(p.rfd));
    cr_assert_eq(eddy_stream_close(s), 0);
    cr_assert_eq(read_to_eof(p.rfd, buf, sizeof(buf)), 4);
    cr_assert_eq(memcmp(buf, "tail", 4), 0);
    eddy_fd_close(p.rfd);
    return 0;
}

EDDY_TEST(stream, small_writes_wait_for_flush_and_large_ones_go_out_in_order)
{
    for (int t = 0; t < T_COUNT; t++)
        cr_assert_eq(rt_run(buffered_write_main, &t), 0);
}

static intptr_t writev_main(void *arg)
{
    enum transport t = *(enum transport *)arg;
    struct write_pair p = write_pair_open(t);
    struct eddy_stream *s = open_stream(p.wfd, 0, 64, true);
    char buf[2048];

    struct iovec small[3] = {{"ab", 2}, {NULL, 0}, {"cde", 3}};
    cr_assert_eq(eddy_stream_writev(s, small, 3), 5);
    cr_assert_eq(eddy_stream_writev(s, small, 0), 0);
    cr_assert_eq(eddy_stream_write_buffered(s), 5);
    cr_assert(nothing_readable(p.rfd));

    /* More entries than the stream keeps on its stack, past the mark. */
    enum { N = 40 };
    struct iovec many[N];
    char text[N][16];
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof(text[i]), "<%02d>", i);
        many[i] = (struct iovec){.iov_base = text[i], .iov_len = 4};
        total += 4;
    }
    cr_assert_eq(eddy_stream_writev(s, many, N), (ssize_t)total);
    cr_assert_eq(eddy_stream_write_buffered(s), 0);
    read_exactly_fd(p.rfd, buf, 5 + total);
    cr_assert_eq(memcmp(buf, "abcde<00><01>", 13), 0);
    cr_assert_eq(memcmp(buf + 5 + total - 4, "<39>", 4), 0);

    /* Arguments. */
    struct iovec big[2] = {{"x", (size_t)SSIZE_MAX}, {"y", 2}};
    cr_expect_eq(eddy_stream_writev(s, big, 2), -EINVAL, "lengths that overflow");
    cr_expect_eq(eddy_stream_writev(s, small, -1), -EINVAL);
    cr_expect_eq(eddy_stream_writev(s, small, IOV_MAX), -EINVAL);
    cr_expect_eq(eddy_stream_writev(s, NULL, 1), -EINVAL);
    cr_expect_eq(eddy_stream_writev(NULL, small, 1), -EINVAL);
    struct iovec null_base = {NULL, 3};
    cr_expect_eq(eddy_stream_writev(s, &null_base, 1), -EINVAL);
    cr_expect_eq(eddy_stream_write(s, NULL, 3), -EINVAL);
    cr_expect_eq(eddy_stream_write(NULL, "x", 1), -EINVAL);
    cr_expect_eq(eddy_stream_flush(NULL), -EINVAL);
    /* None of them broke the stream. */
    cr_assert_eq(eddy_stream_write(s, "ok", 2), 2);
    cr_assert_eq(eddy_stream_close(s), 0);
    cr_assert_eq(read_to_eof(p.rfd, buf, sizeof(buf)), 2);
    eddy_fd_close(p.rfd);
    return 0;
}

EDDY_TEST(stream, writev_buffers_or_sends_all_entries_in_order_and_rejects_bad_arguments)
{
    for (int t = 0; t < T_COUNT; t++)
        cr_assert_eq(rt_run(writev_main, &t), 0);
}

/* A writer of random-size writes and writevs, as fast as the peer allows. */
struct flood {
    enum transport transport;
    size_t len;
    size_t write_bytes;
    int64_t reader_delay_ns;
    struct eddy_stream *s;
    unsigned char *data;
    size_t max_buffered;
};

static intptr_t flood_writer(void *arg)
{
    struct flood *f = arg;
    uint64_t rng = 42;
    for (size_t off = 0; off < f->len;) {
        size_t n = 1 + rt_rand(&rng) % (rt_rand(&rng) % 8 ? 100 : 30000);
        if (n > f->len - off)
            n = f->len - off;
        ssize_t w;
        if (n >= 2 && rt_rand(&rng) % 3 == 0) {
            struct iovec iov[2] = {{f->data + off, n / 2}, {f->data + off + n / 2, n - n / 2}};
            w = eddy_stream_writev(f->s, iov, 2);
        } else {
            w = eddy_stream_write(f->s, f->data + off, n);
        }
        if (w != (ssize_t)n)
            return w < 0 ? w : -EIO;
        size_t b = eddy_stream_write_buffered(f->s);
        if (b > f->max_buffered)
            f->max_buffered = b;
        off += n;
    }
    return eddy_stream_close(f->s);
}

static intptr_t flood_main(void *arg)
{
    struct flood *f = arg;
    struct write_pair p = write_pair_open(f->transport);
    f->s = open_stream(p.wfd, 0, f->write_bytes, true);
    f->data = pattern_new(f->len);
    struct receiver r = {.fd = p.rfd, .cap = f->len, .delay_ns = f->reader_delay_ns};
    r.buf = malloc(f->len);
    struct eddy_task *rt = spawn(receive_task, &r);
    struct eddy_task *wt = spawn(flood_writer, f);
    cr_assert_eq(join(wt), 0);
    cr_assert_eq(join(rt), 0);
    cr_assert_eq(r.got, (ssize_t)f->len);
    size_t bad = pattern_mismatch(r.buf, f->len, 0);
    cr_assert_eq(bad, f->len, "byte %zu differs", bad);
    cr_assert_leq(f->max_buffered, f->write_bytes);
    eddy_fd_close(p.rfd);
    free(r.buf);
    free(f->data);
    return 0;
}

EDDY_TEST(stream, a_late_reader_gets_every_written_byte_in_order)
{
    size_t len = rt_scale(4u << 20, 1u << 19);
    for (int t = 0; t < T_COUNT; t++) {
        struct flood f = {.transport = (enum transport)t,
                          .len = len,
                          .write_bytes = 8192,
                          .reader_delay_ns = 20 * EDDY_NS_PER_MS};
        cr_assert_eq(rt_run(flood_main, &f), 0);
    }
}

/* ---- backpressure ------------------------------------------------------------- */

#define STALL_CHUNK_BYTES 4096
#define STALL_WRITE_BYTES (32u * 1024)

/* How many bytes the kernel takes on a fresh socketpair like the one used
 * below before send says EAGAIN. */
static size_t kernel_capacity(void)
{
    int fds[2];
    cr_assert_eq(eddy_sock_pair(fds), 0);
    cr_assert_eq(eddy_sock_set_buffer_sizes(fds[0], 0, 32 * 1024), 0);
    static char chunk[STALL_CHUNK_BYTES + STALL_WRITE_BYTES];
    size_t total = 0;
    for (;;) {
        ssize_t n = send(fds[0], chunk, sizeof(chunk), MSG_DONTWAIT);
        if (n < 0)
            break;
        total += (size_t)n;
    }
    close(fds[0]);
    close(fds[1]);
    return total;
}

struct stall {
    enum transport transport;
    size_t accepted;
    int64_t elapsed_ns;
    ssize_t rc;
};

static intptr_t stall_main(void *arg)
{
    struct stall *st = arg;
    struct write_pair p = write_pair_open(st->transport);
    if (st->transport != T_PIPE)
        cr_assert_eq(eddy_sock_set_buffer_sizes(p.wfd, 0, 32 * 1024), 0);
    struct eddy_stream *s = open_stream(p.wfd, 0, STALL_WRITE_BYTES, true);
    static char chunk[STALL_CHUNK_BYTES];
    memset(chunk, 's', sizeof(chunk));
    struct eddy_timeout scope;
    int64_t start = eddy_now_ns();
    cr_assert_eq(eddy_timeout_enter(&scope, STALL_TIMEOUT_MS * EDDY_NS_PER_MS), 0);
    for (;;) {
        st->rc = eddy_stream_write(s, chunk, sizeof(chunk));
        if (st->rc < 0)
            break;
        cr_assert_eq(st->rc, (ssize_t)sizeof(chunk));
        st->accepted += sizeof(chunk);
        cr_assert_lt(st->accepted, (size_t)1 << 30, "the writer never blocked");
    }
    st->elapsed_ns = eddy_now_ns() - start;
    cr_assert_eq(eddy_timeout_exit(&scope), -ETIMEDOUT);
    /* The error sticks, at once and without a scope. */
    int64_t t0 = eddy_now_ns();
    cr_assert_eq(eddy_stream_write(s, "x", 1), -ETIMEDOUT);
    cr_assert_eq(eddy_stream_writev(s, NULL, 0), -ETIMEDOUT);
    cr_assert_eq(eddy_stream_flush(s), -ETIMEDOUT);
    cr_assert_eq(eddy_stream_sendfile(s, 0, 0, 1), -ETIMEDOUT);
    cr_assert_eq(eddy_stream_close(s), -ETIMEDOUT);
    cr_assert_lt(eddy_now_ns() - t0, rt_late_tolerance_ns(), "a sticky error waited");
    eddy_fd_close(p.rfd);
    return 0;
}

EDDY_TEST(stream, a_peer_that_never_reads_blocks_the_writer_until_its_timeout_scope_ends)
{
    size_t capacity = kernel_capacity();
    for (int t = 0; t < T_COUNT; t++) {
        struct stall st = {.transport = (enum transport)t};
        cr_assert_eq(rt_run(stall_main, &st), 0);
        cr_expect_eq(st.rc, -ETIMEDOUT, "%s: write = %zd", transport_names[t], st.rc);
        cr_expect_geq(st.elapsed_ns, STALL_TIMEOUT_MS * EDDY_NS_PER_MS);
        cr_expect_lt(st.elapsed_ns, STALL_TIMEOUT_MS * EDDY_NS_PER_MS + rt_late_tolerance_ns());
        /* Everything accepted sits in the kernel or below the mark: at
         * least a full buffer and the write that first sent it. */
        cr_expect_geq(st.accepted, STALL_WRITE_BYTES + STALL_CHUNK_BYTES, "%s: %zu accepted",
                      transport_names[t], st.accepted);
        if (t == T_SOCKPAIR)
            cr_expect_leq(st.accepted, capacity + STALL_WRITE_BYTES,
                          "%zu accepted, kernel capacity %zu", st.accepted, capacity);
    }
}

/* ---- a vanished peer ---------------------------------------------------------- */

/* Is rc what a write to a vanished peer may return? */
static bool is_peer_gone(ssize_t rc)
{
    return rc == -EPIPE || rc == -ECONNRESET;
}

static intptr_t peer_gone_main(void *arg)
{
    enum transport t = *(enum transport *)arg;
    struct write_pair p = write_pair_open(t);
    struct eddy_stream *s = open_stream(p.wfd, 0, 64, true);
    eddy_fd_close(p.rfd);
    /* A TCP peer's close reaches the writer as a reset after the first
     * send: keep writing until the kernel reports it. */
    ssize_t rc = 0;
    for (int i = 0; i < 100 && rc >= 0; i++) {
        rc = eddy_stream_write(s, "buffered", 8);
        if (rc == 8)
            rc = eddy_stream_flush(s);
        if (rc >= 0)
            eddy_sleep_ms(1);
    }
    cr_assert(is_peer_gone(rc), "%s: %s", transport_names[t], eddy_strerror((int)rc));
    /* The error sticks, for every write call. */
    cr_assert_eq(eddy_stream_write(s, "x", 1), rc);
    char large[1000] = {0};
    cr_assert_eq(eddy_stream_write(s, large, sizeof(large)), rc);
    cr_assert_eq(eddy_stream_flush(s), rc);
    cr_assert_eq(eddy_stream_close(s), rc);
    return 0;
}

EDDY_TEST(stream, writing_to_a_vanished_peer_fails_with_epipe_and_sigpipe_kills_nothing)
{
    sigpipe_default();
    for (int t = 0; t < T_COUNT; t++)
        cr_assert_eq(rt_run(peer_gone_main, &t), 0);
}

static intptr_t peer_gone_direct_main(void *arg)
{
    enum transport t = *(enum transport *)arg;
    struct write_pair p = write_pair_open(t);
    struct eddy_stream *s = open_stream(p.wfd, 0, 64, true);
    eddy_fd_close(p.rfd);
    char large[4096] = {0};
    ssize_t rc = 0;
    for (int i = 0; i < 100 && rc >= 0; i++) {
        rc = eddy_stream_write(s, large, sizeof(large));
        if (rc >= 0)
            eddy_sleep_ms(1);
    }
    cr_assert(is_peer_gone(rc), "%s: %s", transport_names[t], eddy_strerror((int)rc));
    cr_assert_eq(eddy_stream_close(s), rc);
    return 0;
}

EDDY_TEST(stream, a_direct_write_to_a_vanished_peer_fails_and_sigpipe_kills_nothing)
{
    sigpipe_default();
    for (int t = 0; t < T_COUNT; t++)
        cr_assert_eq(rt_run(peer_gone_direct_main, &t), 0);
}

struct reset {
    bool with_partial_line;
    ssize_t rc;
    char partial[16];
};

static intptr_t read_until_reset(void *arg)
{
    struct eddy_stream *s = arg;
    char buf[64];
    return eddy_stream_read_line(s, buf, sizeof(buf));
}

static intptr_t reset_main(void *arg)
{
    struct reset *r = arg;
    int fds[2];
    tcp_pair(fds);
    struct eddy_stream *s = open_stream(fds[0], 0, 0, true);
    if (r->with_partial_line)
        cr_assert_eq(eddy_fd_write_all(fds[1], "partial", 7), 7);
    struct eddy_task *reader = spawn(read_until_reset, s);
    cr_assert_eq(eddy_sleep_ms(5), 0);
    cr_assert(!eddy_task_is_done(reader), "the reader did not park");
    /* SO_LINGER 0: close sends a reset instead of a FIN. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    cr_assert_eq(setsockopt(fds[1], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    eddy_fd_close(fds[1]);
    r->rc = (ssize_t)join(reader);
    const char *d;
    size_t n = eddy_stream_peek(s, &d);
    memcpy(r->partial, d, n);
    eddy_stream_abort(s);
    return 0;
}

EDDY_TEST(stream, a_tcp_reset_wakes_a_parked_reader_with_econnreset)
{
    struct reset r = {.with_partial_line = false};
    cr_assert_eq(rt_run(reset_main, &r), 0);
    cr_expect_eq(r.rc, -ECONNRESET, "%s", eddy_strerror((int)r.rc));
    r = (struct reset){.with_partial_line = true};
    cr_assert_eq(rt_run(reset_main, &r), 0);
    cr_expect_eq(r.rc, -ECONNRESET, "%s", eddy_strerror((int)r.rc));
    cr_expect_str_eq(r.partial, "partial", "the bytes read before the reset stay buffered");
}

/* ---- sendfile ----------------------------------------------------------------- */

#define FILE_BYTES (300u * 1000)

/* An unlinked temporary file holding FILE_BYTES of pattern. */
static int pattern_file(size_t len)
{
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/eddy-stream-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
    unlink(path);
    unsigned char *data = pattern_new(len);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    free(data);
    return fd;
}

struct sendfile_case {
    enum transport transport;
    off_t offset;
    size_t len;
    ssize_t expect_rc;
    size_t expect_sent; /* file bytes the peer gets */
};

static intptr_t sendfile_main(void *arg)
{
    struct sendfile_case *c = arg;
    int file = pattern_file(FILE_BYTES);
    cr_assert_eq(lseek(file, 123, SEEK_SET), 123);
    struct write_pair p = write_pair_open(c->transport);
    struct eddy_stream *s = open_stream(p.wfd, 0, 0, true);
    size_t cap = c->len + 64;
    struct receiver r = {.fd = p.rfd, .cap = cap, .buf = malloc(cap)};
    struct eddy_task *rt = spawn(receive_task, &r);
    /* The buffered prefix goes out first, the suffix after. */
    cr_assert_eq(eddy_stream_write(s, "<", 1), 1);
    ssize_t rc = eddy_stream_sendfile(s, file, c->offset, c->len);
    cr_assert_eq(rc, c->expect_rc, "%s: sendfile(%lld, %zu) = %zd (%s)",
                 transport_names[c->transport], (long long)c->offset, c->len, rc,
                 rc < 0 ? eddy_strerror((int)rc) : "");
    cr_assert_eq(eddy_stream_write(s, ">", 1), 1);
    cr_assert_eq(eddy_stream_close(s), 0);
    cr_assert_eq(join(rt), 0);
    cr_assert_eq(r.got, (ssize_t)c->expect_sent + 2);
    cr_assert_eq(r.buf[0], '<');
    size_t bad = pattern_mismatch(r.buf + 1, c->expect_sent, (size_t)c->offset);
    cr_assert_eq(bad, c->expect_sent, "file byte %zu differs", bad);
    cr_assert_eq(r.buf[c->expect_sent + 1], '>');
    cr_assert_eq(lseek(file, 0, SEEK_CUR), 123, "sendfile moved the file offset");
    close(file);
    eddy_fd_close(p.rfd);
    free(r.buf);
    return 0;
}

EDDY_TEST(stream, sendfile_sends_a_file_range_between_the_buffered_bytes)
{
    static const struct sendfile_case cases[] = {
        {.offset = 0, .len = FILE_BYTES, .expect_rc = FILE_BYTES, .expect_sent = FILE_BYTES},
        {.offset = 1000, .len = 200000, .expect_rc = 200000, .expect_sent = 200000},
        {.offset = 7, .len = 1, .expect_rc = 1, .expect_sent = 1},
        {.offset = 5, .len = 0, .expect_rc = 0, .expect_sent = 0},
        /* The file ends first: what was sent stays sent. */
        {.offset = FILE_BYTES - 10000, .len = 20000, .expect_rc = -ENODATA, .expect_sent = 10000},
        {.offset = FILE_BYTES, .len = 1, .expect_rc = -ENODATA, .expect_sent = 0},
        {.offset = FILE_BYTES + 5000, .len = 10, .expect_rc = -ENODATA, .expect_sent = 0},
    };
    for (int t = 0; t < T_COUNT; t++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            struct sendfile_case c = cases[i];
            c.transport = (enum transport)t;
            cr_assert_eq(rt_run(sendfile_main, &c), 0);
        }
    }
}

/* A regular file opened O_APPEND as the stream's fd: sendfile(2) refuses
 * it (EINVAL), so the stream copies with pread and write. */
static intptr_t sendfile_fallback_main(void *arg)
{
    (void)arg;
    int file = pattern_file(FILE_BYTES);
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/eddy-stream-out-XXXXXX", dir && *dir ? dir : "/tmp");
    int out = mkstemp(path);
    cr_assert_geq(out, 0);
    unlink(path);
    cr_assert_eq(fcntl(out, F_SETFL, O_APPEND), 0);
    struct eddy_stream *s = open_stream(out, 0, 0, false);
    cr_assert_eq(eddy_stream_write(s, "<", 1), 1);
    cr_assert_eq(eddy_stream_sendfile(s, file, 100, 150000), 150000);
    cr_assert_eq(eddy_stream_sendfile(s, file, FILE_BYTES - 5, 10), -ENODATA);
    int dirfd = open(dir && *dir ? dir : "/tmp", O_RDONLY | O_DIRECTORY);
    cr_assert_geq(dirfd, 0);
    cr_assert_eq(eddy_stream_sendfile(s, dirfd, 0, 10), -EISDIR);
    close(dirfd);
    cr_assert_eq(eddy_stream_write(s, ">", 1), 1);
    cr_assert_eq(eddy_stream_close(s), 0);
    struct stat st;
    cr_assert_eq(fstat(out, &st), 0);
    cr_assert_eq(st.st_size, 1 + 150000 + 5 + 1);
    unsigned char *got = malloc((size_t)st.st_size);
    cr_assert_eq(pread(out, got, (size_t)st.st_size, 0), st.st_size);
    cr_assert_eq(got[0], '<');
    cr_assert_eq(pattern_mismatch(got + 1, 150000, 100), 150000);
    cr_assert_eq(pattern_mismatch(got + 1 + 150000, 5, FILE_BYTES - 5), 5);
    cr_assert_eq(got[st.st_size - 1], '>');
    free(got);
    close(out);
    close(file);
    return 0;
}

EDDY_TEST(stream, sendfile_falls_back_to_pread_and_write_where_sendfile_refuses)
{
    cr_assert_eq(rt_run(sendfile_fallback_main, NULL), 0);
}

static intptr_t sendfile_gone_main(void *arg)
{
    enum transport t = *(enum transport *)arg;
    int file = pattern_file(FILE_BYTES);
    struct write_pair p = write_pair_open(t);
    struct eddy_stream *s = open_stream(p.wfd, 0, 0, true);
    eddy_fd_close(p.rfd);
    ssize_t rc = 0;
    for (int i = 0; i < 100 && rc >= 0; i++) {
        rc = eddy_stream_sendfile(s, file, 0, FILE_BYTES);
        if (rc >= 0)
            eddy_sleep_ms(1);
    }
    cr_assert(is_peer_gone(rc), "%s: %s", transport_names[t], eddy_strerror((int)rc));
    cr_assert_eq(eddy_stream_write(s, "x", 1), rc, "the error sticks");
    cr_assert_eq(eddy_stream_sendfile(s, file, 0, 1), rc);
    cr_assert_eq(eddy_stream_close(s), rc);
    close(file);
    return 0;
}

EDDY_TEST(stream, sendfile_to_a_vanished_peer_fails_and_sigpipe_kills_nothing)
{
    sigpipe_default();
    for (int t = 0; t < T_COUNT; t++)
        cr_assert_eq(rt_run(sendfile_gone_main, &t), 0);
}

static intptr_t sendfile_args_main(void *arg)
{
    (void)arg;
    int file = pattern_file(100);
    struct write_pair p = write_pair_open(T_SOCKPAIR);
    struct eddy_stream *s = open_stream(p.wfd, 0, 0, true);
    cr_expect_eq(eddy_stream_sendfile(NULL, file, 0, 1), -EINVAL);
    cr_expect_eq(eddy_stream_sendfile(s, -1, 0, 1), -EINVAL);
    cr_expect_eq(eddy_stream_sendfile(s, file, -1, 1), -EINVAL);
    cr_expect_eq(eddy_stream_sendfile(s, file, 0, (size_t)SSIZE_MAX + 1), -EINVAL);
    /* A file that is not open for reading. */
    int wo = open("/dev/null", O_WRONLY);
    cr_expect_eq(eddy_stream_sendfile(s, wo, 0, 1), -EBADF);
    close(wo);
    /* None of them broke the stream. */
    cr_assert_eq(eddy_stream_sendfile(s, file, 0, 100), 100);
    cr_assert_eq(eddy_stream_close(s), 0);
    unsigned char buf[128];
    cr_assert_eq(read_to_eof(p.rfd, buf, sizeof(buf)), 100);
    cr_assert_eq(pattern_mismatch(buf, 100, 0), 100);
    eddy_fd_close(p.rfd);
    close(file);
    return 0;
}

static intptr_t sendfile_stall_main(void *arg)
{
    enum transport t = *(enum transport *)arg;
    int file = pattern_file(FILE_BYTES);
    struct write_pair p = write_pair_open(t);
    struct eddy_stream *s = open_stream(p.wfd, 0, 0, true);
    struct eddy_timeout scope;
    int64_t start = eddy_now_ns();
    cr_assert_eq(eddy_timeout_enter(&scope, STALL_TIMEOUT_MS * EDDY_NS_PER_MS), 0);
    ssize_t rc = 0;
    for (int i = 0; i < 1000 && rc >= 0; i++)
        rc = eddy_stream_sendfile(s, file, 0, FILE_BYTES);
    int64_t elapsed = eddy_now_ns() - start;
    cr_assert_eq(eddy_timeout_exit(&scope), -ETIMEDOUT);
    cr_assert_eq(rc, -ETIMEDOUT, "%s: %s", transport_names[t], eddy_strerror((int)rc));
    cr_assert_geq(elapsed, STALL_TIMEOUT_MS * EDDY_NS_PER_MS);
    cr_assert_lt(elapsed, STALL_TIMEOUT_MS * EDDY_NS_PER_MS + rt_late_tolerance_ns());
    /* A part of the file may have gone out: the error sticks. */
    cr_assert_eq(eddy_stream_write(s, "x", 1), -ETIMEDOUT);
    cr_assert_eq(eddy_stream_sendfile(s, file, 0, 1), -ETIMEDOUT);
    cr_assert_eq(eddy_stream_close(s), -ETIMEDOUT);
    eddy_fd_close(p.rfd);
    close(file);
    return 0;
}

EDDY_TEST(stream, sendfile_to_a_peer_that_never_reads_ends_with_its_timeout_scope)
{
    for (int t = 0; t < T_COUNT; t++)
        cr_assert_eq(rt_run(sendfile_stall_main, &t), 0);
}

EDDY_TEST(stream, sendfile_rejects_bad_arguments_and_the_stream_survives)
{
    cr_assert_eq(rt_run(sendfile_args_main, NULL), 0);
}

/* ---- cancellation, timeouts, eddy_fd_close ------------------------------------ */

enum park_call { PARK_LINE, PARK_EXACTLY, PARK_UNTIL, PARK_SOME, PARK_FILL };

struct parked {
    struct eddy_stream *s;
    enum park_call call;
};

static intptr_t parked_read(void *arg)
{
    struct parked *p = arg;
    char buf[64];
    switch (p->call) {
    case PARK_LINE:
        return eddy_stream_read_line(p->s, buf, sizeof(buf));
    case PARK_EXACTLY:
        return eddy_stream_read_exactly(p->s, buf, 32);
    case PARK_UNTIL:
        return eddy_stream_read_until(p->s, "\r\n\r\n", 4, buf, sizeof(buf));
    case PARK_SOME:
        return eddy_stream_read_some(p->s, buf, sizeof(buf));
    default:
        return eddy_stream_fill(p->s, 64);
    }
}

struct interrupt {
    enum transport transport;
    enum park_call call;
    int how; /* 0: cancel, 1: timeout scope, 2: eddy_fd_close */
    ssize_t rc;
};

static intptr_t timed_parked_read(void *arg)
{
    struct eddy_timeout scope;
    cr_assert_eq(eddy_timeout_enter(&scope, 20 * EDDY_NS_PER_MS), 0);
    intptr_t rc = parked_read(arg);
    eddy_timeout_exit(&scope);
    return rc;
}

static intptr_t interrupt_main(void *arg)
{
    struct interrupt *in = arg;
    int fds[2];
    transport_open(in->transport, fds);
    /* Borrowed, so that eddy_fd_close by another task is the caller's
     * business and the stream never closes the fd itself. */
    struct eddy_stream *s = open_stream(fds[0], 16, 0, false);
    cr_assert_eq(eddy_fd_write_all(fds[1], "abc", 3), 3);
    struct parked p = {.s = s, .call = in->call};
    if (in->call == PARK_SOME || in->call == PARK_FILL) {
        /* These return what is there: park them on an empty stream. */
        char buf[8];
        cr_assert_eq(eddy_stream_read_exactly(s, buf, 3), 3);
    }
    struct eddy_task *t = spawn(in->how == 1 ? timed_parked_read : parked_read, &p);
    cr_assert_eq(eddy_sleep_ms(5), 0);
    cr_assert(in->how == 1 || !eddy_task_is_done(t), "the reader did not park");
    if (in->how == 0)
        cr_assert_eq(eddy_task_cancel(t), 0);
    else if (in->how == 2)
        cr_assert_eq(eddy_fd_close(fds[0]), 0);
    in->rc = (ssize_t)join(t);
    if (in->how == 2) {
        cr_assert_eq(eddy_stream_close(s), 0);
        eddy_fd_close(fds[1]);
        return 0;
    }
    /* The stream goes on: the bytes that came before the interruption are
     * still there for the next call. */
    char buf[64];
    const char *rest = "def\r\n\r\nghi\n";
    cr_assert_eq(eddy_fd_write_all(fds[1], rest, strlen(rest)), (ssize_t)strlen(rest));
    eddy_fd_close(fds[1]);
    ssize_t n = eddy_stream_read_until(s, "\r\n\r\n", 4, buf, sizeof(buf));
    if (in->call == PARK_SOME || in->call == PARK_FILL) {
        cr_assert_eq(n, 7);
        cr_assert_str_eq(buf, "def\r\n\r\n");
    } else {
        cr_assert_eq(n, 10, "%zd", n);
        cr_assert_str_eq(buf, "abcdef\r\n\r\n");
    }
    cr_assert_eq(eddy_stream_read_line(s, buf, sizeof(buf)), 4);
    cr_assert_str_eq(buf, "ghi\n");
    cr_assert_eq(eddy_stream_close(s), 0);
    eddy_fd_close(fds[0]);
    return 0;
}

static void check_interrupts(int how, ssize_t expect)
{
    static const char *const call_names[] = {"read_line", "read_exactly", "read_until", "read_some",
                                             "fill"};
    for (int t = 0; t < T_COUNT; t++) {
        for (int c = PARK_LINE; c <= PARK_FILL; c++) {
            struct interrupt in = {
                .transport = (enum transport)t, .call = (enum park_call)c, .how = how};
            cr_assert_eq(rt_run(interrupt_main, &in), 0);
            cr_expect_eq(in.rc, expect, "%s %s: %s", transport_names[t], call_names[c],
                         eddy_strerror((int)in.rc));
        }
    }
}

EDDY_TEST(stream, cancelling_a_parked_read_returns_ecanceled_and_loses_no_bytes)
{
    check_interrupts(0, -ECANCELED);
}

EDDY_TEST(stream, a_timeout_scope_ends_a_parked_read_with_etimedout_and_loses_no_bytes)
{
    check_interrupts(1, -ETIMEDOUT);
}

EDDY_TEST(stream, eddy_fd_close_of_a_borrowed_fd_wakes_a_parked_reader_with_ebadf)
{
    check_interrupts(2, -EBADF);
}

struct cancel_write {
    ssize_t rc;
};

static intptr_t blocked_writer(void *arg)
{
    struct eddy_stream *s = arg;
    static char chunk[STALL_CHUNK_BYTES];
    for (;;) {
        ssize_t rc = eddy_stream_write(s, chunk, sizeof(chunk));
        if (rc < 0)
            return rc;
    }
}

static intptr_t cancel_write_main(void *arg)
{
    struct cancel_write *cw = arg;
    struct write_pair p = write_pair_open(T_SOCKPAIR);
    struct eddy_stream *s = open_stream(p.wfd, 0, 0, true);
    struct eddy_task *t = spawn(blocked_writer, s);
    cr_assert_eq(eddy_sleep_ms(5), 0);
    cr_assert(!eddy_task_is_done(t));
    cr_assert_eq(eddy_task_cancel(t), 0);
    cw->rc = (ssize_t)join(t);
    cr_assert_eq(eddy_stream_write(s, "x", 1), -ECANCELED, "the error sticks");
    cr_assert_eq(eddy_stream_close(s), -ECANCELED);
    eddy_fd_close(p.rfd);
    return 0;
}

EDDY_TEST(stream, cancelling_a_blocked_writer_returns_ecanceled_and_the_error_sticks)
{
    struct cancel_write cw = {0};
    cr_assert_eq(rt_run(cancel_write_main, &cw), 0);
    cr_expect_eq(cw.rc, -ECANCELED);
}

/* ---- a python3 client ----------------------------------------------------------- */

/* Connects to the port in argv[1], sends lines in pieces with pauses (one
 * line split mid-way, one long, one empty, a CRLF one and a last one
 * without newline), shuts down its sending side, and prints everything it
 * got back until the end. */
static const char PY_CLIENT[] =
    "import socket, sys, time\n"
    "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
    "parts = [b'hello\\n', b'\\n', b'x' * 3000 + b'\\n', b'split ', b'across sends\\n',\n"
    "         b'crlf\\r\\n', b'a\\nb\\nc\\n', b'last line without newline']\n"
    "for p in parts:\n"
    "    s.sendall(p)\n"
    "    time.sleep(0.005)\n"
    "s.shutdown(socket.SHUT_WR)\n"
    "out = b''\n"
    "while True:\n"
    "    b = s.recv(65536)\n"
    "    if not b:\n"
    "        break\n"
    "    out += b\n"
    "sys.stdout.buffer.write(out)\n";

struct python_echo {
    int lfd;
    int out_fd; /* python's stdout */
    char *output;
    size_t output_len;
    size_t lines;
};

/* The server: each line back with its number in front, flushed when no
 * further input is buffered (so pipelined lines leave in one write). */
static intptr_t number_lines(void *arg)
{
    struct python_echo *pe = arg;
    int fd = eddy_sock_accept(pe->lfd, NULL);
    if (fd < 0)
        return fd;
    struct eddy_stream *s = open_stream(fd, 64, 0, true);
    char line[8192];
    for (;;) {
        ssize_t n = eddy_stream_read_line(s, line, sizeof(line));
        if (n == -ENODATA)
            break;
        if (n < 0) {
            eddy_stream_abort(s);
            return n;
        }
        char num[32];
        int k = snprintf(num, sizeof(num), "%zu:", ++pe->lines);
        struct iovec iov[2] = {{num, (size_t)k}, {line, (size_t)n}};
        ssize_t w = eddy_stream_writev(s, iov, 2);
        const char *d;
        if (w >= 0 && eddy_stream_peek(s, &d) == 0)
            w = eddy_stream_flush(s);
        if (w < 0) {
            eddy_stream_abort(s);
            return w;
        }
    }
    return eddy_stream_close(s);
}

/* Collects python's stdout through a pipe stream. */
static intptr_t collect_output(void *arg)
{
    struct python_echo *pe = arg;
    struct eddy_stream *s = open_stream(pe->out_fd, 0, 0, true);
    size_t cap = 1 << 16;
    pe->output = malloc(cap + 1);
    for (;;) {
        ssize_t n = eddy_stream_read_some(s, pe->output + pe->output_len, cap - pe->output_len);
        if (n <= 0) {
            eddy_stream_close(s);
            pe->output[pe->output_len] = 0;
            return n;
        }
        pe->output_len += (size_t)n;
    }
}

static intptr_t python_echo_main(void *arg)
{
    struct python_echo *pe = arg;
    struct eddy_timeout scope;
    cr_assert_eq(eddy_timeout_enter(&scope, PEER_TIMEOUT_NS), 0);
    struct eddy_task *server = spawn(number_lines, pe);
    struct eddy_task *reader = spawn(collect_output, pe);
    intptr_t src = join(server);
    intptr_t rrc = join(reader);
    cr_assert_eq(eddy_timeout_exit(&scope), 0, "python took too long");
    cr_assert_eq(src, 0, "server: %s", eddy_strerror((int)src));
    cr_assert_eq(rrc, 0, "python's output: %s", eddy_strerror((int)rrc));
    return 0;
}

EDDY_TEST(stream, a_python_client_gets_its_lines_back_numbered)
{
    /* Under Valgrind, python itself would run traced (--trace-children)
     * and take half a minute; the other tests cover the same stream calls.
     * (cr_skip_test would leave Criterion's own buffers behind as leaks.) */
    if (eddy_test_under_valgrind())
        return;
    struct python_echo pe = {.output = NULL};
    struct eddy_addr addr;
    pe.lfd = tcp_listener(&addr);
    char port[16];
    snprintf(port, sizeof(port), "%u", eddy_addr_port(&addr));
    int out[2];
    rt_pipe(out);
    /* Python writes its end blocking; only the stream's end stays
     * non-blocking (O_NONBLOCK belongs to each end's open file). */
    cr_assert_eq(fcntl(out[1], F_SETFL, 0), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    char *argv[] = {"python3", "-c", (char *)PY_CLIENT, port, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "python3", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "posix_spawnp python3: %s", strerror(rc));
    close(out[1]);
    pe.out_fd = out[0];
    intptr_t r = rt_run(python_echo_main, &pe);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python3 ended with status %d", st);
    cr_assert_eq(r, 0);
    close(pe.lfd);

    char *expected = malloc(8192);
    int n = snprintf(expected, 8192, "1:hello\n2:\n3:");
    memset(expected + n, 'x', 3000);
    n += 3000;
    snprintf(expected + n, 8192 - (size_t)n,
             "\n4:split across sends\n5:crlf\r\n6:a\n7:b\n8:c\n9:last line without newline");
    cr_expect_eq(pe.lines, 9);
    cr_expect_str_eq(pe.output, expected);
    free(expected);
    free(pe.output);
}

/* ---- drained reads: no read that only finds EAGAIN ----------------------------- */

/* read(2)-family calls this thread has made (/proc/thread-self/io syscr). */
static uint64_t thread_read_calls(void)
{
    int fd = open("/proc/thread-self/io", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    char buf[512];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    cr_assert_gt(n, 0);
    buf[n] = 0;
    const char *p = strstr(buf, "syscr:");
    cr_assert_not_null(p);
    return strtoull(p + 6, NULL, 10);
}

struct late_peer {
    int fd;
    const char *text;
};

static intptr_t late_write(void *arg)
{
    struct late_peer *lp = arg;
    int rc = eddy_sleep_ms(2);
    if (rc < 0)
        return rc;
    return write(lp->fd, lp->text, strlen(lp->text));
}

struct drain_case {
    enum transport t;
    uint64_t reads; /* read calls of the second fill */
};

static intptr_t drained_fill(void *arg)
{
    struct drain_case *dc = arg;
    /* One poll first: the loop's own eventfd reports its first edge there
     * (and is read), outside the counted fill. */
    cr_assert_eq(eddy_sleep_ms(1), 0);
    int fds[2];
    transport_open(dc->t, fds);
    struct eddy_stream *s = open_stream(fds[0], 0, 0, true);
    /* A first request: the read is short, so the stream is drained. */
    cr_assert_eq(write(fds[1], "ping", 4), 4);
    cr_assert_eq(eddy_stream_fill(s, SIZE_MAX), 4);
    eddy_stream_consume(s, 4);
    cr_expect_not(eddy_fd_is_ready(fds[0], EDDY_FD_READ));
    /* The next bytes come later: the fill parks first and reads once. */
    struct late_peer lp = {fds[1], "pong!"};
    struct eddy_task *w = spawn(late_write, &lp);
    uint64_t c0 = thread_read_calls();
    uint64_t c1 = thread_read_calls(); /* c1 - c0: one probe's own reads */
    cr_assert_eq(eddy_stream_fill(s, SIZE_MAX), 5);
    uint64_t c2 = thread_read_calls();
    dc->reads = (c2 - c1) - (c1 - c0);
    cr_assert_eq(join(w), 5);
    const char *data;
    cr_assert_eq(eddy_stream_peek(s, &data), 5);
    cr_expect_eq(memcmp(data, "pong!", 5), 0);
    eddy_stream_close(s);
    eddy_fd_close(fds[1]);
    return 0;
}

EDDY_TEST(stream, after_a_short_read_the_next_fill_makes_one_read_and_no_eagain_read)
{
    for (int t = 0; t < T_COUNT; t++) {
        struct drain_case dc = {.t = (enum transport)t};
        rt_run(drained_fill, &dc);
        /* Valgrind makes reads of its own on the thread: only the data is
         * checked there. */
        if (!eddy_test_under_valgrind())
            cr_expect_eq(dc.reads, 1, "%s: %llu read calls for one fill", transport_names[t],
                         (unsigned long long)dc.reads);
    }
}

static intptr_t seqpacket_fills(void *arg)
{
    (void)arg;
    int fds[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, fds), 0);
    struct eddy_stream *s = open_stream(fds[0], 0, 0, true);
    /* Watched first: the two messages then arrive under one edge. */
    struct late_peer lp = {fds[1], "one"};
    struct eddy_task *w = spawn(late_write, &lp);
    cr_assert_eq(eddy_stream_fill(s, SIZE_MAX), 3);
    cr_assert_eq(join(w), 3);
    eddy_stream_consume(s, 3);
    cr_assert_eq(write(fds[1], "two", 3), 3);
    cr_assert_eq(write(fds[1], "three", 5), 5);
    cr_assert_eq(eddy_sleep_ms(1), 0);
    /* Each read returns one message, shorter than asked, with more queued:
     * not a drain. A stream that took it for one would park forever. */
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, PEER_TIMEOUT_NS);
    cr_expect_eq(eddy_stream_fill(s, SIZE_MAX), 3);
    cr_expect_eq(eddy_stream_fill(s, SIZE_MAX), 5);
    eddy_timeout_exit(&scope);
    eddy_stream_close(s);
    eddy_fd_close(fds[1]);
    return 0;
}

EDDY_TEST(stream, a_short_read_of_one_message_is_not_taken_for_a_drained_socket)
{
    rt_run(seqpacket_fills, NULL);
}

static intptr_t release_then_fill(void *arg)
{
    (void)arg;
    int fds[2];
    cr_assert_eq(eddy_sock_pair(fds), 0);
    struct eddy_stream *s = open_stream(fds[0], 64, 256, true);
    cr_assert_eq(write(fds[1], "abcdef", 6), 6);
    cr_assert_eq(eddy_stream_fill(s, SIZE_MAX), 6);
    eddy_stream_consume(s, 2);
    cr_assert_eq(eddy_stream_write(s, "xy", 2), 2);
    /* Unconsumed input and unsent output are kept. */
    eddy_stream_release_buffers(s);
    const char *data;
    cr_assert_eq(eddy_stream_peek(s, &data), 4);
    cr_expect_eq(memcmp(data, "cdef", 4), 0);
    cr_assert_eq(eddy_stream_write_buffered(s), 2);
    eddy_stream_consume(s, 4);
    cr_assert_eq(eddy_stream_flush(s), 0);
    char got[8];
    cr_assert_eq(read(fds[1], got, sizeof(got)), 2);
    /* Now both go, and the next fill and write allocate again. */
    eddy_stream_release_buffers(s);
    cr_assert_eq(eddy_stream_peek(s, &data), 0);
    struct late_peer lp = {fds[1], "later"};
    struct eddy_task *w = spawn(late_write, &lp);
    cr_assert_eq(eddy_stream_fill(s, SIZE_MAX), 5);
    cr_assert_eq(join(w), 5);
    cr_assert_eq(eddy_stream_peek(s, &data), 5);
    cr_expect_eq(memcmp(data, "later", 5), 0);
    cr_assert_eq(eddy_stream_write(s, "ok", 2), 2);
    cr_assert_eq(eddy_stream_close(s), 0);
    cr_assert_eq(read(fds[1], got, sizeof(got)), 2);
    eddy_stream_release_buffers(NULL); /* a no-op */
    eddy_fd_close(fds[1]);
    return 0;
}

EDDY_TEST(stream, released_buffers_keep_pending_bytes_and_come_back_on_the_next_use)
{
    rt_run(release_then_fill, NULL);
}

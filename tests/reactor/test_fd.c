/*
 * tests/reactor/test_fd.c: fd readiness waits (reactor/fd.c over
 * reactor/epoll.c), with real pipes and socketpairs.
 *
 * Covers a reader parking on an empty pipe until a writer task writes, a
 * writer parking on a full socket buffer until the reader drains it, hangup
 * waking a reader, eddy_fd_close and eddy_fd_forget waking every parked
 * waiter with -EBADF, fd numbers reused after eddy_fd_close, -EPERM for a
 * regular file, -EINVAL for bad arguments, and thousands of tasks waiting
 * on thousands of fds (past the first 1024-slot chunk of the fd table).
 * Readiness memory: an edge with nobody waiting is remembered until a
 * drain; an edge handled before the drain is forgotten by it; one harvested
 * after it never loses the next bytes; a FIN that came with the last bytes
 * and a hangup survive a drain; eddy_fd_close forgets it for a reused fd
 * number; an fd with bytes before its first wait; tasks sharing an fd;
 * cancellation with an edge pending; bad arguments.
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include "tests/reactor/reactor_test.h"

static void close_pair(int fds[2])
{
    eddy_fd_close(fds[0]);
    eddy_fd_close(fds[1]);
}

/* ---- pipes ------------------------------------------------------------------- */

struct pipe_talk {
    int fds[2];
    char log[8];
    int n;
    char got[8];
    int wait_rc;
};

static intptr_t pipe_reader(void *arg)
{
    struct pipe_talk *p = arg;
    p->log[p->n++] = 'r';
    ssize_t n = read(p->fds[0], p->got, sizeof(p->got) - 1);
    if (n >= 0 || errno != EAGAIN)
        return -1;
    p->log[p->n++] = 'p'; /* empty: park */
    p->wait_rc = eddy_fd_wait(p->fds[0], EDDY_FD_READ);
    p->log[p->n++] = 'w';
    n = read(p->fds[0], p->got, sizeof(p->got) - 1);
    return n;
}

static intptr_t pipe_writer(void *arg)
{
    struct pipe_talk *p = arg;
    int rc = eddy_sleep_ms(2);
    if (rc < 0)
        return rc;
    p->log[p->n++] = 'W';
    return write(p->fds[1], "hello", 5);
}

static intptr_t pipe_talk(void *arg)
{
    struct pipe_talk *p = arg;
    struct eddy_task *r, *w;
    cr_assert_eq(eddy_task_spawn(pipe_reader, p, NULL, &r), 0);
    cr_assert_eq(eddy_task_spawn(pipe_writer, p, NULL, &w), 0);
    intptr_t rn = 0, wn = 0;
    cr_assert_eq(eddy_task_join(r, &rn), 0);
    cr_assert_eq(eddy_task_join(w, &wn), 0);
    cr_expect_eq(wn, 5);
    cr_expect_eq(rn, 5);
    close_pair(p->fds);
    return 0;
}

EDDY_TEST(fd, a_pipe_reader_parks_until_the_writer_task_writes)
{
    struct pipe_talk p = {0};
    rt_pipe(p.fds);
    cr_assert_eq(rt_run(pipe_talk, &p), 0);
    cr_expect_eq(p.wait_rc, 0);
    cr_expect_str_eq(p.log, "rpWw", "reader parked, writer wrote, reader woke");
    cr_expect_str_eq(p.got, "hello");
}

struct hangup {
    int fds[2];
    int wait_rc;
    ssize_t read_rc;
};

static intptr_t wait_for_eof(void *arg)
{
    struct hangup *h = arg;
    h->wait_rc = eddy_fd_wait(h->fds[0], EDDY_FD_READ);
    char c;
    h->read_rc = read(h->fds[0], &c, 1);
    return 0;
}

static intptr_t hang_up(void *arg)
{
    struct hangup *h = arg;
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(wait_for_eof, h, NULL, &t), 0);
    cr_assert_eq(eddy_task_yield(), 0);
    close(h->fds[1]); /* never waited on: a plain close is fine */
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    eddy_fd_close(h->fds[0]);
    return 0;
}

EDDY_TEST(fd, closing_the_write_end_wakes_a_reader_to_see_eof)
{
    struct hangup h = {.wait_rc = 1, .read_rc = -2};
    rt_pipe(h.fds);
    cr_assert_eq(rt_run(hang_up, &h), 0);
    cr_expect_eq(h.wait_rc, 0);
    cr_expect_eq(h.read_rc, 0, "end of file");
}

/* ---- socketpair: a full buffer ---------------------------------------------------- */

#define CHUNK_BYTES 4096
#define EXTRA_BYTES (256 << 10) /* written after the buffer first filled up */

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + (i >> 12));
}

struct stream {
    int sv[2];
    size_t total; /* bytes the writer writes, known once it first parks */
    size_t written;
    size_t read;
    size_t writer_parks;
    size_t reader_parks;
    size_t read_at_first_park; /* what the reader had when the writer first parked */
    size_t read_at_first_wake; /* what the reader had when the writer first resumed */
    size_t mismatches;
    int rc;
};

static intptr_t stream_writer(void *arg)
{
    struct stream *s = arg;
    unsigned char buf[CHUNK_BYTES];
    for (;;) {
        if (s->total && s->written == s->total)
            return 0;
        size_t len = CHUNK_BYTES;
        if (s->total && s->total - s->written < len)
            len = s->total - s->written;
        for (size_t i = 0; i < len; i++)
            buf[i] = pattern(s->written + i);
        ssize_t n = write(s->sv[0], buf, len);
        if (n > 0) {
            s->written += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN)
            return -errno;
        if (!s->total) {
            /* The buffer is full for the first time: write this much more. */
            s->total = s->written + EXTRA_BYTES;
            s->read_at_first_park = s->read;
        }
        s->writer_parks++;
        int rc = eddy_fd_wait(s->sv[0], EDDY_FD_WRITE);
        if (rc < 0)
            return rc;
        if (s->writer_parks == 1)
            s->read_at_first_wake = s->read;
    }
}

static intptr_t stream_reader(void *arg)
{
    struct stream *s = arg;
    /* Start draining only once the writer has filled the buffer. */
    while (!s->total) {
        int rc = eddy_task_yield();
        if (rc < 0)
            return rc;
    }
    unsigned char buf[CHUNK_BYTES];
    while (s->read < s->total) {
        ssize_t n = read(s->sv[1], buf, sizeof(buf));
        if (n > 0) {
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] != pattern(s->read + (size_t)i))
                    s->mismatches++;
            s->read += (size_t)n;
            continue;
        }
        if (n == 0)
            return -EPIPE;
        if (errno != EAGAIN)
            return -errno;
        s->reader_parks++;
        int rc = eddy_fd_wait(s->sv[1], EDDY_FD_READ);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static intptr_t stream_through_socketpair(void *arg)
{
    struct stream *s = arg;
    struct eddy_task *w, *r;
    cr_assert_eq(eddy_task_spawn(stream_writer, s, NULL, &w), 0);
    cr_assert_eq(eddy_task_spawn(stream_reader, s, NULL, &r), 0);
    intptr_t wr = -1, rr = -1;
    cr_assert_eq(eddy_task_join(w, &wr), 0);
    cr_assert_eq(eddy_task_join(r, &rr), 0);
    cr_expect_eq(wr, 0, "writer: %s", eddy_strerror((int)wr));
    cr_expect_eq(rr, 0, "reader: %s", eddy_strerror((int)rr));
    close_pair(s->sv);
    return 0;
}

EDDY_TEST(fd, a_writer_parks_on_a_full_socket_and_resumes_when_the_reader_drains_it)
{
    struct stream s = {0};
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s.sv), 0);
    cr_assert_eq(rt_run(stream_through_socketpair, &s), 0);
    cr_expect_gt(s.total, EXTRA_BYTES);
    cr_expect_eq(s.written, s.total);
    cr_expect_eq(s.read, s.total);
    cr_expect_eq(s.mismatches, 0, "%zu bytes arrived wrong", s.mismatches);
    cr_expect_geq(s.writer_parks, 1);
    cr_expect_eq(s.read_at_first_park, 0, "the writer parked before anything was read");
    cr_expect_gt(s.read_at_first_wake, 0, "the writer resumed only after the reader read");
    cr_log_info("%zu bytes, writer parked %zu times, reader %zu times", s.total, s.writer_parks,
                s.reader_parks);
}

/* ---- close and forget --------------------------------------------------------------- */

struct parked {
    int fd;
    uint32_t events;
    int rc;
    bool woke;
};

static intptr_t park_on(void *arg)
{
    struct parked *p = arg;
    p->rc = eddy_fd_wait(p->fd, p->events);
    p->woke = true;
    return 0;
}

/* Fills fd's send buffer, so it is neither readable nor writable. */
static void fill_socket(int fd)
{
    static const unsigned char zeros[CHUNK_BYTES];
    while (write(fd, zeros, sizeof(zeros)) > 0)
        ;
    cr_assert_eq(errno, EAGAIN);
}

#define PARKED 6

struct close_case {
    int sv[2];
    bool forget;
    struct parked p[PARKED];
    int close_rc;
    int after_rc;
};

static intptr_t close_under_waiters(void *arg)
{
    struct close_case *c = arg;
    fill_socket(c->sv[0]);
    struct eddy_task *t[PARKED];
    for (int i = 0; i < PARKED; i++) {
        c->p[i] = (struct parked){.fd = c->sv[0], .rc = 1};
        c->p[i].events = i % 3 == 0   ? EDDY_FD_READ
                         : i % 3 == 1 ? EDDY_FD_WRITE
                                      : EDDY_FD_READ | EDDY_FD_WRITE;
        cr_assert_eq(eddy_task_spawn(park_on, &c->p[i], NULL, &t[i]), 0);
    }
    cr_assert_eq(eddy_sleep_ms(2), 0); /* all park; nothing wakes them */
    for (int i = 0; i < PARKED; i++)
        cr_assert_not(c->p[i].woke, "waiter %d woke before the close", i);
    c->close_rc = c->forget ? eddy_fd_forget(c->sv[0]) : eddy_fd_close(c->sv[0]);
    for (int i = 0; i < PARKED; i++)
        cr_assert_eq(eddy_task_join(t[i], NULL), 0);
    if (c->forget) {
        /* Still open, and waiting on it registers it again. */
        cr_assert_geq(fcntl(c->sv[0], F_GETFD), 0);
        char buf[CHUNK_BYTES];
        cr_assert_eq(write(c->sv[1], "x", 1), 1);
        c->after_rc = eddy_fd_wait(c->sv[0], EDDY_FD_READ);
        cr_assert_eq(read(c->sv[0], buf, 1), 1);
        eddy_fd_close(c->sv[0]);
    } else {
        cr_assert_eq(fcntl(c->sv[0], F_GETFD), -1, "eddy_fd_close closed it");
        c->after_rc = eddy_fd_wait(c->sv[0], EDDY_FD_READ);
    }
    eddy_fd_close(c->sv[1]);
    return 0;
}

static void check_close_wakes_everyone(bool forget)
{
    struct close_case c = {.forget = forget};
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, c.sv), 0);
    cr_assert_eq(rt_run(close_under_waiters, &c), 0);
    cr_expect_eq(c.close_rc, 0);
    for (int i = 0; i < PARKED; i++) {
        cr_expect(c.p[i].woke);
        cr_expect_eq(c.p[i].rc, -EBADF, "waiter %d (events %u) saw %s", i, c.p[i].events,
                     eddy_strerror(c.p[i].rc));
    }
    if (forget)
        cr_expect_eq(c.after_rc, 0);
    else
        cr_expect_eq(c.after_rc, -EBADF, "waiting on a closed fd");
}

EDDY_TEST(fd, fd_close_wakes_every_parked_waiter_with_ebadf)
{
    check_close_wakes_everyone(false);
}

EDDY_TEST(fd, fd_forget_wakes_every_parked_waiter_and_leaves_the_fd_open)
{
    check_close_wakes_everyone(true);
}

static intptr_t reuse_fd_numbers(void *arg)
{
    (void)arg;
    int first = -1;
    for (int round = 0; round < 3; round++) {
        int fds[2];
        rt_pipe(fds);
        if (round == 0)
            first = fds[0];
        else
            cr_expect_eq(fds[0], first, "the kernel reuses the lowest free number");
        struct hangup h = {.fds = {fds[0], fds[1]}, .wait_rc = 1};
        struct eddy_task *t;
        cr_assert_eq(eddy_task_spawn(wait_for_eof, &h, NULL, &t), 0);
        cr_assert_eq(eddy_task_yield(), 0);
        cr_assert_eq(write(fds[1], "z", 1), 1);
        cr_assert_eq(eddy_task_join(t, NULL), 0);
        cr_expect_eq(h.wait_rc, 0, "round %d", round);
        cr_expect_eq(h.read_rc, 1, "round %d", round);
        cr_assert_eq(eddy_fd_close(fds[0]), 0);
        cr_assert_eq(eddy_fd_close(fds[1]), 0);
    }
    return 0;
}

EDDY_TEST(fd, an_fd_number_reused_after_fd_close_is_watched_again)
{
    cr_assert_eq(rt_run(reuse_fd_numbers, NULL), 0);
}

/* ---- errors ------------------------------------------------------------------------ */

static intptr_t wait_on_regular_file(void *arg)
{
    (void)arg;
    char path[] = "/tmp/eddy-test-fd-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    cr_expect_eq(eddy_fd_wait(fd, EDDY_FD_READ), -EPERM);
    cr_expect_eq(eddy_fd_wait(fd, EDDY_FD_WRITE), -EPERM);
    cr_expect_eq(eddy_fd_close(fd), 0);
    return 0;
}

EDDY_TEST(fd, fd_wait_on_a_regular_file_returns_eperm)
{
    cr_assert_eq(rt_run(wait_on_regular_file, NULL), 0);
}

struct bad_args {
    int in_callback_rc;
};

static void wait_from_callback(void *arg)
{
    struct bad_args *b = arg;
    b->in_callback_rc = eddy_fd_wait(0, EDDY_FD_READ);
}

static intptr_t wait_with_bad_args(void *arg)
{
    struct bad_args *b = arg;
    int fds[2];
    rt_pipe(fds);
    cr_expect_eq(eddy_fd_wait(-1, EDDY_FD_READ), -EINVAL);
    cr_expect_eq(eddy_fd_wait(fds[0], 0), -EINVAL);
    cr_expect_eq(eddy_fd_wait(fds[0], 4), -EINVAL);
    cr_expect_eq(eddy_fd_wait(fds[0], EDDY_FD_READ | 8), -EINVAL);
    cr_expect_eq(eddy_loop_post(eddy_loop_current(), wait_from_callback, b), 0);
    cr_assert_eq(eddy_sleep_ms(1), 0);
    /* A number that is not an open fd. */
    int closed = dup(fds[0]);
    cr_assert_geq(closed, 0);
    close(closed);
    cr_expect_eq(eddy_fd_wait(closed, EDDY_FD_READ), -EBADF);
    close_pair(fds);
    return 0;
}

EDDY_TEST(fd, fd_wait_rejects_invalid_arguments)
{
    cr_expect_eq(eddy_fd_wait(0, EDDY_FD_READ), -EINVAL, "outside a task");
    cr_expect_eq(eddy_fd_close(-1), -EBADF);
    cr_expect_eq(eddy_fd_forget(-1), 0);
    struct bad_args b = {.in_callback_rc = 1};
    cr_assert_eq(rt_run(wait_with_bad_args, &b), 0);
    cr_expect_eq(b.in_callback_rc, -EINVAL, "in a callback, outside any task");
}

/* ---- many fds ------------------------------------------------------------------------- */

struct many {
    size_t n;
    int (*fds)[2];
    int *got;
};

struct many_arg {
    struct many *m;
    size_t i;
};

static unsigned char byte_for(size_t i)
{
    return (unsigned char)(i * 31 + 7);
}

static intptr_t read_one(void *arg)
{
    struct many_arg *a = arg;
    a->m->got[a->i] = rt_read_byte(a->m->fds[a->i][0]);
    return 0;
}

static intptr_t many_waiters(void *arg)
{
    struct many *m = arg;
    struct many_arg *args = calloc(m->n, sizeof(*args));
    struct eddy_task **t = calloc(m->n, sizeof(*t));
    size_t *perm = calloc(m->n, sizeof(*perm));
    cr_assert(args && t && perm);
    for (size_t i = 0; i < m->n; i++) {
        args[i] = (struct many_arg){m, i};
        m->got[i] = -1;
        perm[i] = i;
        cr_assert_eq(eddy_task_spawn(read_one, &args[i], NULL, &t[i]), 0);
    }
    cr_assert_eq(eddy_task_yield(), 0); /* every reader parks */
    uint64_t seed = 42;
    for (size_t i = m->n - 1; i > 0; i--) {
        size_t j = (size_t)(rt_rand(&seed) % (i + 1));
        size_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    for (size_t k = 0; k < m->n; k++) {
        size_t i = perm[k];
        unsigned char c = byte_for(i);
        cr_assert_eq(write(m->fds[i][1], &c, 1), 1);
        if (k % 64 == 63)
            cr_assert_eq(eddy_task_yield(), 0);
    }
    for (size_t i = 0; i < m->n; i++) {
        cr_assert_eq(eddy_task_join(t[i], NULL), 0);
        close_pair(m->fds[i]);
    }
    free(args);
    free(t);
    free(perm);
    return 0;
}

EDDY_TEST(fd, thousands_of_tasks_wait_on_thousands_of_fds)
{
    struct many m = {.n = rt_scale(3000, 300)};
    struct rlimit lim;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &lim), 0);
    rlim_t need = 2 * m.n + 64;
    if (lim.rlim_cur < need && lim.rlim_max >= need) {
        lim.rlim_cur = need;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
    }
    if (lim.rlim_cur < need)
        m.n = (lim.rlim_cur - 64) / 2;
    cr_log_info("%zu pipes", m.n);
    m.fds = calloc(m.n, sizeof(*m.fds));
    m.got = calloc(m.n, sizeof(*m.got));
    cr_assert(m.fds && m.got);
    for (size_t i = 0; i < m.n; i++)
        rt_pipe(m.fds[i]);
    cr_assert_eq(rt_run(many_waiters, &m), 0);
    for (size_t i = 0; i < m.n; i++)
        cr_assert_eq(m.got[i], byte_for(i), "reader %zu got %d", i, m.got[i]);
    free(m.fds);
    free(m.got);
}

/* ---- readiness memory (eddy_fd_wait_ready, eddy_fd_mark_drained) ----------------- */

/* A socketpair end is a byte stream: a short read drains it. */
struct memo {
    int fds[2]; /* fds[0] is watched, fds[1] is the peer */
    char log[16];
    int n;
    int wait_rc;
};

static void memo_log(struct memo *m, char c)
{
    if (m->n < (int)sizeof(m->log) - 1)
        m->log[m->n++] = c;
}

/* Reads what fds[0] holds, expecting a short read of want bytes. */
static void read_short(struct memo *m, size_t want)
{
    char buf[64];
    ssize_t n = read(m->fds[0], buf, sizeof(buf));
    cr_assert_eq(n, (ssize_t)want, "read: %zd (errno %d)", n, errno);
}

/* Watches fds[0]: a first wait that a peer write ends. */
static intptr_t memo_late_writer(void *arg)
{
    struct memo *m = arg;
    int rc = eddy_sleep_ms(2);
    if (rc < 0)
        return rc;
    memo_log(m, 'W');
    return write(m->fds[1], "late", 4);
}

static void memo_register(struct memo *m)
{
    struct eddy_task *w;
    cr_assert_eq(eddy_task_spawn(memo_late_writer, m, NULL, &w), 0);
    cr_assert_eq(eddy_fd_wait_ready(m->fds[0], EDDY_FD_READ), 0);
    cr_assert_eq(eddy_task_join(w, NULL), 0);
    read_short(m, 4);
    eddy_fd_mark_drained(m->fds[0], EDDY_FD_READ);
}

/* A task that only logs that it ran: it runs only if the caller parks. */
static intptr_t memo_bystander(void *arg)
{
    memo_log(arg, 'b');
    return 0;
}

static intptr_t edge_with_no_waiter(void *arg)
{
    struct memo *m = arg;
    memo_register(m);
    cr_expect_not(eddy_fd_is_ready(m->fds[0], EDDY_FD_READ), "a short read drained it");
    /* Bytes arrive and the loop handles their edge while nobody waits. */
    cr_assert_eq(write(m->fds[1], "abc", 3), 3);
    cr_assert_eq(eddy_sleep_ms(1), 0);
    cr_expect(eddy_fd_is_ready(m->fds[0], EDDY_FD_READ), "the edge was remembered");
    struct eddy_task *b;
    cr_assert_eq(eddy_task_spawn(memo_bystander, m, NULL, &b), 0);
    cr_expect_eq(eddy_fd_wait_ready(m->fds[0], EDDY_FD_READ), 0);
    memo_log(m, 'r');
    cr_assert_eq(eddy_task_join(b, NULL), 0);
    read_short(m, 3);
    eddy_fd_mark_drained(m->fds[0], EDDY_FD_READ);
    cr_expect_not(eddy_fd_is_ready(m->fds[0], EDDY_FD_READ));
    close_pair(m->fds);
    return 0;
}

EDDY_TEST(fd, an_edge_with_nobody_waiting_is_remembered_until_a_short_read_drains_it)
{
    struct memo m = {0};
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, m.fds), 0);
    rt_run(edge_with_no_waiter, &m);
    /* 'r' before 'b': wait_ready returned without parking. */
    cr_expect_str_eq(m.log, "Wrb");
}

static intptr_t drained_then_parks(void *arg)
{
    struct memo *m = arg;
    memo_register(m);
    /* The edge of these bytes was handled before the read that took them:
     * the drain must forget it, or the next wait would not park. */
    cr_assert_eq(write(m->fds[1], "xy", 2), 2);
    cr_assert_eq(eddy_sleep_ms(1), 0);
    read_short(m, 2);
    eddy_fd_mark_drained(m->fds[0], EDDY_FD_READ);
    struct eddy_task *w;
    cr_assert_eq(eddy_task_spawn(memo_late_writer, m, NULL, &w), 0);
    memo_log(m, 'p');
    m->wait_rc = eddy_fd_wait_ready(m->fds[0], EDDY_FD_READ);
    memo_log(m, 'w');
    cr_assert_eq(eddy_task_join(w, NULL), 0);
    read_short(m, 4);
    close_pair(m->fds);
    return 0;
}

EDDY_TEST(fd, after_a_drain_wait_ready_parks_until_the_next_bytes_arrive)
{
    struct memo m = {0};
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, m.fds), 0);
    rt_run(drained_then_parks, &m);
    cr_expect_eq(m.wait_rc, 0);
    cr_expect_str_eq(m.log, "WpWw", "parked, the writer wrote, woke");
}

static intptr_t stale_edge(void *arg)
{
    struct memo *m = arg;
    memo_register(m);
    /* The bytes' edge is queued in epoll, but the loop has not polled:
     * the read takes them first, and the edge is harvested after the drain.
     * Linux re-checks an edge-triggered item when it reports it, so the
     * edge is usually dropped; when it is reported, it costs one read that
     * finds EAGAIN, and eddy_fd_wait (after EAGAIN) then parks for real. */
    cr_assert_eq(write(m->fds[1], "st", 2), 2);
    read_short(m, 2);
    eddy_fd_mark_drained(m->fds[0], EDDY_FD_READ);
    cr_assert_eq(eddy_sleep_ms(1), 0);
    struct eddy_task *w;
    cr_assert_eq(eddy_task_spawn(memo_late_writer, m, NULL, &w), 0);
    memo_log(m, 'p');
    if (eddy_fd_is_ready(m->fds[0], EDDY_FD_READ)) {
        cr_expect_eq(eddy_fd_wait_ready(m->fds[0], EDDY_FD_READ), 0);
        char c;
        cr_expect_eq(read(m->fds[0], &c, 1), -1);
        cr_expect_eq(errno, EAGAIN);
        m->wait_rc = eddy_fd_wait(m->fds[0], EDDY_FD_READ);
    } else {
        m->wait_rc = eddy_fd_wait_ready(m->fds[0], EDDY_FD_READ);
    }
    memo_log(m, 'w');
    cr_assert_eq(eddy_task_join(w, NULL), 0);
    read_short(m, 4);
    close_pair(m->fds);
    return 0;
}

EDDY_TEST(fd, an_edge_harvested_after_the_drain_never_loses_the_next_bytes)
{
    struct memo m = {0};
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, m.fds), 0);
    rt_run(stale_edge, &m);
    cr_expect_eq(m.wait_rc, 0);
    cr_expect_str_eq(m.log, "WpWw");
}

static intptr_t fin_with_last_bytes(void *arg)
{
    struct memo *m = arg;
    memo_register(m);
    /* The last bytes and the FIN arrive before the loop polls: one edge. */
    cr_assert_eq(write(m->fds[1], "end", 3), 3);
    cr_assert_eq(shutdown(m->fds[1], SHUT_WR), 0);
    cr_assert_eq(eddy_sleep_ms(1), 0);
    read_short(m, 3);
    eddy_fd_mark_drained(m->fds[0], EDDY_FD_READ);
    /* No edge will come again: the FIN must keep the fd ready. */
    cr_expect(eddy_fd_is_ready(m->fds[0], EDDY_FD_READ));
    struct eddy_task *b;
    cr_assert_eq(eddy_task_spawn(memo_bystander, m, NULL, &b), 0);
    cr_expect_eq(eddy_fd_wait_ready(m->fds[0], EDDY_FD_READ), 0);
    memo_log(m, 'r');
    cr_assert_eq(eddy_task_join(b, NULL), 0);
    char c;
    cr_expect_eq(read(m->fds[0], &c, 1), 0, "end of stream");
    close_pair(m->fds);
    return 0;
}

EDDY_TEST(fd, a_fin_that_came_with_the_last_bytes_survives_the_drain)
{
    struct memo m = {0};
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, m.fds), 0);
    rt_run(fin_with_last_bytes, &m);
    cr_expect_str_eq(m.log, "Wrb");
}

static intptr_t hangup_sticks(void *arg)
{
    struct memo *m = arg;
    memo_register(m);
    cr_assert_eq(close(m->fds[1]), 0); /* both directions hang up */
    cr_assert_eq(eddy_sleep_ms(1), 0);
    eddy_fd_mark_drained(m->fds[0], EDDY_FD_READ | EDDY_FD_WRITE);
    cr_expect(eddy_fd_is_ready(m->fds[0], EDDY_FD_READ));
    cr_expect(eddy_fd_is_ready(m->fds[0], EDDY_FD_WRITE));
    cr_expect_eq(eddy_fd_wait_ready(m->fds[0], EDDY_FD_WRITE), 0);
    cr_expect_eq(eddy_fd_close(m->fds[0]), 0);
    return 0;
}

EDDY_TEST(fd, a_hangup_keeps_both_directions_ready_whatever_is_drained)
{
    struct memo m = {0};
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, m.fds), 0);
    rt_run(hangup_sticks, &m);
}

static intptr_t reused_number(void *arg)
{
    struct memo *m = arg;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, m->fds), 0);
    memo_register(m);
    cr_assert_eq(close(m->fds[1]), 0);
    cr_assert_eq(eddy_sleep_ms(1), 0);
    int old = m->fds[0];
    cr_assert(eddy_fd_is_ready(old, EDDY_FD_READ));
    cr_assert_eq(eddy_fd_close(old), 0);
    /* The number comes back for a new, empty socket: nothing remembered. */
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, m->fds), 0);
    cr_assert_eq(m->fds[0], old);
    cr_expect_not(eddy_fd_is_ready(old, EDDY_FD_READ));
    struct eddy_task *w;
    cr_assert_eq(eddy_task_spawn(memo_late_writer, m, NULL, &w), 0);
    memo_log(m, 'p');
    m->wait_rc = eddy_fd_wait_ready(m->fds[0], EDDY_FD_READ);
    memo_log(m, 'w');
    cr_assert_eq(eddy_task_join(w, NULL), 0);
    read_short(m, 4);
    close_pair(m->fds);
    return 0;
}

EDDY_TEST(fd, fd_close_forgets_the_readiness_a_reused_number_had)
{
    struct memo m = {0};
    rt_run(reused_number, &m);
    cr_expect_eq(m.wait_rc, 0);
    cr_expect_str_eq(m.log, "WpWw");
}

static intptr_t unwatched_with_data(void *arg)
{
    struct memo *m = arg;
    /* Bytes wait before the fd was ever watched: marking it drained is a
     * no-op, and the first wait_ready sees epoll's first edge. */
    cr_assert_eq(write(m->fds[1], "early", 5), 5);
    eddy_fd_mark_drained(m->fds[0], EDDY_FD_READ);
    cr_expect_not(eddy_fd_is_ready(m->fds[0], EDDY_FD_READ));
    m->wait_rc = eddy_fd_wait_ready(m->fds[0], EDDY_FD_READ);
    read_short(m, 5);
    close_pair(m->fds);
    return 0;
}

EDDY_TEST(fd, wait_ready_on_a_new_fd_with_bytes_waiting_returns_at_its_first_edge)
{
    struct memo m = {0};
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, m.fds), 0);
    rt_run(unwatched_with_data, &m);
    cr_expect_eq(m.wait_rc, 0);
}

static intptr_t shared_fd_reader(void *arg)
{
    struct memo *m = arg;
    int rc = eddy_fd_wait_ready(m->fds[0], EDDY_FD_READ);
    memo_log(m, rc == 0 ? 'w' : 'x');
    return rc;
}

static intptr_t shared_fd(void *arg)
{
    struct memo *m = arg;
    memo_register(m);
    /* Two tasks wait on one drained fd: one edge wakes both. */
    struct eddy_task *a, *b;
    cr_assert_eq(eddy_task_spawn(shared_fd_reader, m, NULL, &a), 0);
    cr_assert_eq(eddy_task_spawn(shared_fd_reader, m, NULL, &b), 0);
    cr_assert_eq(eddy_sleep_ms(1), 0);
    memo_log(m, 'W');
    cr_assert_eq(write(m->fds[1], "both", 4), 4);
    intptr_t ra = -1, rb = -1;
    cr_assert_eq(eddy_task_join(a, &ra), 0);
    cr_assert_eq(eddy_task_join(b, &rb), 0);
    cr_expect_eq(ra, 0);
    cr_expect_eq(rb, 0);
    /* One of them drains it for both. */
    read_short(m, 4);
    eddy_fd_mark_drained(m->fds[0], EDDY_FD_READ);
    cr_expect_not(eddy_fd_is_ready(m->fds[0], EDDY_FD_READ));
    close_pair(m->fds);
    return 0;
}

EDDY_TEST(fd, tasks_sharing_an_fd_share_its_readiness)
{
    struct memo m = {0};
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, m.fds), 0);
    rt_run(shared_fd, &m);
    cr_expect_str_eq(m.log, "WWww");
}

static intptr_t cancelled_with_edge(void *arg)
{
    struct memo *m = arg;
    memo_register(m);
    cr_assert_eq(write(m->fds[1], "c", 1), 1);
    cr_assert_eq(eddy_sleep_ms(1), 0);
    cr_assert(eddy_fd_is_ready(m->fds[0], EDDY_FD_READ));
    cr_assert_eq(eddy_task_cancel(eddy_task_current()), 0);
    m->wait_rc = eddy_fd_wait_ready(m->fds[0], EDDY_FD_READ);
    cr_assert_eq(eddy_task_uncancel(), 1);
    close_pair(m->fds);
    return 0;
}

EDDY_TEST(fd, wait_ready_with_an_edge_pending_still_refuses_a_cancelled_task)
{
    struct memo m = {0};
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, m.fds), 0);
    rt_run(cancelled_with_edge, &m);
    cr_expect_eq(m.wait_rc, -ECANCELED);
}

static intptr_t wait_ready_args(void *arg)
{
    (void)arg;
    cr_expect_eq(eddy_fd_wait_ready(-1, EDDY_FD_READ), -EINVAL);
    cr_expect_eq(eddy_fd_wait_ready(0, 0), -EINVAL);
    cr_expect_eq(eddy_fd_wait_ready(0, 4), -EINVAL);
    cr_expect_not(eddy_fd_is_ready(-1, EDDY_FD_READ));
    eddy_fd_mark_drained(-1, EDDY_FD_READ); /* a no-op */
    return 0;
}

EDDY_TEST(fd, wait_ready_rejects_invalid_arguments_and_calls_outside_a_task)
{
    cr_expect_eq(eddy_fd_wait_ready(0, EDDY_FD_READ), -EINVAL);
    cr_expect_not(eddy_fd_is_ready(0, EDDY_FD_READ));
    eddy_fd_mark_drained(0, EDDY_FD_READ); /* no loop: a no-op */
    rt_run(wait_ready_args, NULL);
}

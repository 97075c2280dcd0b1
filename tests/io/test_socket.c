/*
 * tests/io/test_socket.c: TCP (IPv4, IPv6), Unix and UDP sockets on the
 * reactor, against eddy itself and against python3's socket module; faults:
 * refused, reset, timeouts, closing under a waiter, EMFILE from accept, and
 * 10,000 concurrent connections.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <eddy/eddy.h>

#include "tests/reactor/reactor_test.h"

/* A listener on 127.0.0.1 (or ::1), any free port; *addr gets its address. */
static int listen_any(const char *text, struct eddy_addr *addr, int backlog)
{
    struct eddy_addr a;
    cr_assert_eq(eddy_addr_parse(text, &a), 0);
    struct eddy_listen_opts o = {.backlog = backlog};
    int fd = eddy_sock_listen(&a, &o);
    cr_assert_geq(fd, 0, "listen %s: %s", text, eddy_strerror(fd));
    cr_assert_eq(eddy_sock_local_addr(fd, addr), 0);
    return fd;
}

static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* ---- echo through eddy on both sides ------------------------------------- */

struct echo {
    const char *listen_text;
    int lfd;
    struct eddy_addr addr;
    size_t clients;
    size_t rounds;
    size_t ok;
};

/* Echoes until the peer closes. */
static intptr_t echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = eddy_fd_read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        if (eddy_fd_write_all(fd, buf, (size_t)n) != n)
            break;
    }
    eddy_fd_close(fd);
    return 0;
}

static intptr_t echo_server(void *arg)
{
    struct echo *e = arg;
    for (;;) {
        int fd = eddy_sock_accept(e->lfd, NULL);
        if (fd < 0)
            return fd == -EBADF ? 0 : fd;
        struct eddy_task *t;
        struct eddy_task_opts o = {.detached = true};
        if (eddy_task_spawn(echo_conn, (void *)(intptr_t)fd, &o, &t) < 0)
            eddy_fd_close(fd);
    }
}

static intptr_t echo_client(void *arg)
{
    struct echo *e = arg;
    int fd = eddy_sock_connect(&e->addr, 5 * EDDY_NS_PER_SEC);
    if (fd < 0)
        return fd;
    char msg[64], back[64];
    for (size_t r = 0; r < e->rounds; r++) {
        int n = snprintf(msg, sizeof(msg), "message %zu from %d", r, fd);
        if (eddy_fd_write_all(fd, msg, (size_t)n) != n)
            return -EIO;
        size_t got = 0;
        while (got < (size_t)n) {
            ssize_t m = eddy_fd_read(fd, back + got, (size_t)n - got);
            if (m <= 0)
                return m < 0 ? m : -ENODATA;
            got += (size_t)m;
        }
        if (memcmp(msg, back, (size_t)n) != 0)
            return -EBADMSG;
    }
    eddy_fd_close(fd);
    e->ok++;
    return 0;
}

static intptr_t echo_main(void *arg)
{
    struct echo *e = arg;
    struct eddy_task *server;
    cr_assert_eq(eddy_task_spawn(echo_server, e, NULL, &server), 0);
    struct eddy_group *g;
    cr_assert_eq(eddy_group_create(&g), 0);
    for (size_t i = 0; i < e->clients; i++)
        cr_assert_eq(eddy_group_spawn(g, echo_client, e, NULL, NULL), 0);
    int rc = eddy_group_join(g);
    eddy_fd_close(e->lfd); /* wakes the server's accept with -EBADF */
    intptr_t sr;
    cr_assert_eq(eddy_task_join(server, &sr), 0);
    cr_expect_eq(sr, 0, "server: %s", eddy_strerror((int)sr));
    return rc;
}

static void run_echo(const char *text, size_t clients, size_t rounds)
{
    struct echo e = {.listen_text = text, .clients = clients, .rounds = rounds};
    e.lfd = listen_any(text, &e.addr, 0);
    intptr_t rc = rt_run(echo_main, &e);
    cr_expect_eq(rc, 0, "%s", eddy_strerror((int)rc));
    cr_expect_eq(e.ok, clients);
}

EDDY_TEST(socket, tcp4_echo_between_eddy_tasks)
{
    run_echo("127.0.0.1:0", 20, 50);
}

EDDY_TEST(socket, tcp6_echo_between_eddy_tasks)
{
    if (!have_ipv6_loopback())
        cr_skip_test("no IPv6 loopback on this machine");
    run_echo("[::1]:0", 20, 50);
}

EDDY_TEST(socket, unix_echo_between_eddy_tasks)
{
    char path[64];
    snprintf(path, sizeof(path), "unix:/tmp/eddy-test-%d.sock", (int)getpid());
    run_echo(path, 20, 50);
    unlink(path + 5);
}

EDDY_TEST(socket, unix_abstract_echo_between_eddy_tasks)
{
    char path[64];
    snprintf(path, sizeof(path), "unix:@eddy-test-%d", (int)getpid());
    run_echo(path, 5, 10);
}

/* ---- against python3 ---------------------------------------------------- */

struct py_peer {
    int lfd;
    struct eddy_addr addr;
    char *client_output;
};

static intptr_t serve_one_echo(void *arg)
{
    struct py_peer *p = arg;
    struct eddy_addr peer;
    int fd = eddy_sock_accept(p->lfd, &peer);
    if (fd < 0)
        return fd;
    char text[EDDY_ADDR_TEXT_MAX];
    cr_expect_gt(eddy_addr_format(&peer, text, sizeof(text)), 0);
    cr_expect(strncmp(text, "127.0.0.1:", 10) == 0, "peer %s", text);
    return echo_conn((void *)(intptr_t)fd);
}

EDDY_TEST(socket, eddy_echo_server_answers_a_python_client)
{
    struct py_peer p;
    p.lfd = listen_any("127.0.0.1:0", &p.addr, 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* Child: the Python client, 100 round trips then a check. */
        char script[1024];
        snprintf(script, sizeof(script),
                 "import socket,sys\n"
                 "s=socket.create_connection(('127.0.0.1',%u))\n"
                 "for i in range(100):\n"
                 "    m=('line %%d\\n'%%i).encode()*(i+1)\n"
                 "    s.sendall(m)\n"
                 "    b=b''\n"
                 "    while len(b)<len(m):\n"
                 "        c=s.recv(65536)\n"
                 "        if not c: sys.exit(3)\n"
                 "        b+=c\n"
                 "    if b!=m: sys.exit(4)\n"
                 "s.close()\n",
                 eddy_addr_port(&p.addr));
        execlp("python3", "python3", "-c", script, (char *)NULL);
        _exit(127);
    }
    intptr_t rc = rt_run(serve_one_echo, &p);
    cr_expect_eq(rc, 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python client status %d", st);
    close(p.lfd);
}

static intptr_t talk_to_python(void *arg)
{
    struct eddy_addr *addr = arg;
    int fd = eddy_sock_connect(addr, 5 * EDDY_NS_PER_SEC);
    if (fd < 0)
        return fd;
    const char *msg = "hello from eddy";
    if (eddy_fd_write_all(fd, msg, strlen(msg)) < 0)
        return -EIO;
    eddy_sock_shutdown(fd, SHUT_WR);
    char buf[128];
    size_t got = 0;
    for (;;) {
        ssize_t n = eddy_fd_read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n < 0)
            return n;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = 0;
    cr_expect_str_eq(buf, "HELLO FROM EDDY");
    eddy_fd_close(fd);
    return 0;
}

EDDY_TEST(socket, eddy_client_talks_to_a_python_server)
{
    /* The Python server prints its port, reads to EOF, answers upper-cased. */
    int out[2];
    cr_assert_eq(pipe(out), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execlp("python3", "python3", "-c",
               "import socket,sys\n"
               "l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen()\n"
               "print(l.getsockname()[1], flush=True)\n"
               "c,_=l.accept(); d=b''\n"
               "while True:\n"
               "    b=c.recv(100)\n"
               "    if not b: break\n"
               "    d+=b\n"
               "c.sendall(d.upper()); c.close()\n",
               (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[32] = "";
    FILE *f = fdopen(out[0], "r");
    cr_assert_not_null(fgets(line, sizeof(line), f), "python server printed no port");
    fclose(f);
    struct eddy_addr addr;
    cr_assert_eq(eddy_addr_from_ip("127.0.0.1", (uint16_t)atoi(line), &addr), 0);
    cr_expect_eq(rt_run(talk_to_python, &addr), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- faults --------------------------------------------------------------- */

static intptr_t connect_and_return(void *arg)
{
    struct eddy_addr *addr = arg;
    int fd = eddy_sock_connect(addr, 2 * EDDY_NS_PER_SEC);
    if (fd >= 0)
        eddy_fd_close(fd);
    return fd >= 0 ? 0 : fd;
}

EDDY_TEST(socket, connect_to_a_closed_port_is_refused)
{
    struct eddy_addr addr;
    int lfd = listen_any("127.0.0.1:0", &addr, 0);
    close(lfd); /* the port is free again: nothing listens */
    cr_expect_eq(rt_run(connect_and_return, &addr), -ECONNREFUSED);
}

EDDY_TEST(socket, connect_to_a_missing_unix_path_is_enoent)
{
    struct eddy_addr addr;
    cr_assert_eq(eddy_addr_parse("unix:/tmp/eddy-no-such-socket-here", &addr), 0);
    cr_expect_eq(rt_run(connect_and_return, &addr), -ENOENT);
}

struct timeout_case {
    struct eddy_addr addr;
    int64_t took_ns;
    int timeouts;
};

/* Connects without accepting until a SYN is dropped by the full backlog;
 * the connect that hangs must end by its timeout. */
static intptr_t connect_until_timeout(void *arg)
{
    struct timeout_case *c = arg;
    int fds[64];
    int n = 0;
    for (; n < 64; n++) {
        int64_t t0 = eddy_now_ns(); /* the clock the deadline counts from */
        int fd = eddy_sock_connect(&c->addr, 100 * EDDY_NS_PER_MS);
        if (fd == -ETIMEDOUT) {
            c->took_ns = eddy_clock_ns() - t0;
            c->timeouts++;
            break;
        }
        if (fd < 0)
            return fd;
        fds[n] = fd;
    }
    for (int i = 0; i < n; i++)
        eddy_fd_close(fds[i]);
    return 0;
}

EDDY_TEST(socket, connect_times_out_when_the_listener_never_answers)
{
    struct timeout_case c = {0};
    int lfd = listen_any("127.0.0.1:0", &c.addr, 1);
    cr_expect_eq(rt_run(connect_until_timeout, &c), 0);
    cr_assert_eq(c.timeouts, 1, "no connect ever hung (the backlog never filled)");
    cr_expect_geq(c.took_ns, 100 * EDDY_NS_PER_MS);
    cr_expect_lt(c.took_ns, 100 * EDDY_NS_PER_MS + rt_late_tolerance_ns());
    close(lfd);
}

struct closer {
    int fd;
    int rc;
};

static intptr_t accept_forever(void *arg)
{
    struct closer *c = arg;
    c->rc = eddy_sock_accept(c->fd, NULL);
    return 0;
}

static intptr_t close_under_accept(void *arg)
{
    struct closer *c = arg;
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(accept_forever, c, NULL, &t), 0);
    eddy_sleep_ms(10); /* the acceptor parks */
    cr_assert_eq(eddy_fd_close(c->fd), 0);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    return 0;
}

EDDY_TEST(socket, closing_a_listener_wakes_its_acceptor_with_ebadf)
{
    struct closer c = {.rc = 1};
    struct eddy_addr addr;
    c.fd = listen_any("127.0.0.1:0", &addr, 0);
    rt_run(close_under_accept, &c);
    cr_expect_eq(c.rc, -EBADF);
}

static intptr_t cancel_under_accept(void *arg)
{
    struct closer *c = arg;
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(accept_forever, c, NULL, &t), 0);
    eddy_sleep_ms(5);
    cr_assert_eq(eddy_task_cancel(t), 0);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    return 0;
}

EDDY_TEST(socket, cancelling_an_acceptor_returns_ecanceled)
{
    struct closer c = {.rc = 1};
    struct eddy_addr addr;
    c.fd = listen_any("127.0.0.1:0", &addr, 0);
    rt_run(cancel_under_accept, &c);
    cr_expect_eq(c.rc, -ECANCELED);
    close(c.fd);
}

struct reset_case {
    int lfd;
    struct eddy_addr addr;
    ssize_t read_rc;
};

static intptr_t read_until_reset(void *arg)
{
    struct reset_case *r = arg;
    int fd = eddy_sock_connect(&r->addr, EDDY_NS_PER_SEC);
    cr_assert_geq(fd, 0);
    int peer = eddy_sock_accept(r->lfd, NULL);
    cr_assert_geq(peer, 0);
    cr_assert_eq(eddy_fd_write_all(peer, "partial", 7), 7);
    /* An abortive close: linger 0 sends RST instead of FIN. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    cr_assert_eq(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    char buf[16];
    cr_assert_eq(eddy_fd_read(fd, buf, sizeof(buf)), 7);
    eddy_fd_close(peer);
    r->read_rc = eddy_fd_read(fd, buf, sizeof(buf));
    eddy_fd_close(fd);
    return 0;
}

EDDY_TEST(socket, a_reset_mid_read_is_econnreset)
{
    struct reset_case r;
    r.lfd = listen_any("127.0.0.1:0", &r.addr, 0);
    rt_run(read_until_reset, &r);
    cr_expect_eq(r.read_rc, -ECONNRESET, "%s", eddy_strerror((int)r.read_rc));
    close(r.lfd);
}

struct stall_case {
    int lfd;
    struct eddy_addr addr;
    ssize_t write_rc;
    size_t sent;
};

/* The peer accepts and never reads: the writer fills both kernel buffers,
 * parks, and its timeout scope ends the wait. */
static intptr_t write_to_a_stalled_peer(void *arg)
{
    struct stall_case *c = arg;
    int fd = eddy_sock_connect(&c->addr, EDDY_NS_PER_SEC);
    cr_assert_geq(fd, 0);
    int peer = eddy_sock_accept(c->lfd, NULL);
    cr_assert_geq(peer, 0);
    static char chunk[65536];
    struct eddy_timeout t;
    eddy_timeout_enter(&t, 200 * EDDY_NS_PER_MS);
    for (;;) {
        ssize_t n = eddy_fd_write(fd, chunk, sizeof(chunk));
        if (n < 0) {
            c->write_rc = n;
            break;
        }
        c->sent += (size_t)n;
    }
    cr_expect_eq(eddy_timeout_exit(&t), -ETIMEDOUT);
    eddy_fd_close(fd);
    eddy_fd_close(peer);
    return 0;
}

EDDY_TEST(socket, a_peer_that_never_reads_blocks_the_writer_until_its_timeout)
{
    struct stall_case c = {0};
    c.lfd = listen_any("127.0.0.1:0", &c.addr, 0);
    rt_run(write_to_a_stalled_peer, &c);
    cr_expect_eq(c.write_rc, -ETIMEDOUT);
    cr_expect_gt(c.sent, 0u);
    close(c.lfd);
}

static intptr_t write_after_peer_closed(void *arg)
{
    struct stall_case *c = arg;
    int fd = eddy_sock_connect(&c->addr, EDDY_NS_PER_SEC);
    cr_assert_geq(fd, 0);
    int peer = eddy_sock_accept(c->lfd, NULL);
    cr_assert_geq(peer, 0);
    eddy_fd_close(peer);
    static char chunk[65536];
    /* The first write may still be accepted; the RST makes a later one fail. */
    for (int i = 0; i < 100; i++) {
        ssize_t n = eddy_fd_write_all(fd, chunk, sizeof(chunk));
        if (n < 0) {
            c->write_rc = n;
            break;
        }
        eddy_sleep_ms(1);
    }
    eddy_fd_close(fd);
    return 0;
}

EDDY_TEST(socket, writing_to_a_closed_peer_is_epipe_without_sigpipe)
{
    struct stall_case c = {0};
    c.lfd = listen_any("127.0.0.1:0", &c.addr, 0);
    rt_run(write_after_peer_closed, &c);
    cr_expect(c.write_rc == -EPIPE || c.write_rc == -ECONNRESET, "%s",
              eddy_strerror((int)c.write_rc));
    close(c.lfd);
}

EDDY_TEST(socket, listen_on_a_port_in_use_is_eaddrinuse)
{
    struct eddy_addr addr;
    int lfd = listen_any("127.0.0.1:0", &addr, 0);
    cr_expect_eq(eddy_sock_listen(&addr, NULL), -EADDRINUSE);
    /* With SO_REUSEPORT on both, a second listener shares the port. */
    close(lfd);
    struct eddy_listen_opts o = {.reuseport = true};
    int a = eddy_sock_listen(&addr, &o);
    cr_assert_geq(a, 0);
    int b = eddy_sock_listen(&addr, &o);
    cr_expect_geq(b, 0, "%s", eddy_strerror(b));
    close(a);
    if (b >= 0)
        close(b);
}

EDDY_TEST(socket, listen_refuses_to_remove_a_file_that_is_not_a_socket)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/eddy-test-notsock-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    char text[80];
    snprintf(text, sizeof(text), "unix:%s", path);
    struct eddy_addr addr;
    cr_assert_eq(eddy_addr_parse(text, &addr), 0);
    cr_expect_eq(eddy_sock_listen(&addr, NULL), -EADDRINUSE);
    cr_expect_eq(access(path, F_OK), 0, "the regular file was removed");
    unlink(path);
}

EDDY_TEST(socket, calls_outside_a_task_or_with_bad_arguments_fail_cleanly)
{
    struct eddy_addr addr;
    cr_assert_eq(eddy_addr_parse("127.0.0.1:1", &addr), 0);
    cr_expect_eq(eddy_sock_connect(&addr, 0), -EINVAL); /* no task */
    cr_expect_eq(eddy_sock_connect(NULL, 0), -EINVAL);
    cr_expect_eq(eddy_sock_listen(NULL, NULL), -EINVAL);
    cr_expect_eq(eddy_udp_open(NULL), -EINVAL);
    cr_expect_eq(eddy_sock_shutdown(-1, SHUT_RDWR), -EBADF);
    cr_expect_eq(eddy_sock_local_addr(-1, &addr), -EBADF);
    cr_expect_eq(eddy_sock_pair(NULL), -EINVAL);
    int fds[2];
    cr_assert_eq(eddy_sock_pair(fds), 0);
    cr_expect_eq(eddy_sock_peer_addr(fds[0], &addr), 0);
    cr_expect_eq(eddy_sock_set_nodelay(fds[0], true), -EOPNOTSUPP);
    cr_expect_eq(eddy_sock_set_keepalive(fds[0], true), 0);
    cr_expect_eq(eddy_sock_set_buffer_sizes(fds[0], 65536, 65536), 0);
    close(fds[0]);
    close(fds[1]);
}

/* ---- EMFILE --------------------------------------------------------------- */

struct emfile_case {
    int lfd;
    struct eddy_addr addr;
    int fillers[64];
    int nfillers;
    int accepted;
    int64_t took_ns;
};

static intptr_t free_fds_later(void *arg)
{
    struct emfile_case *c = arg;
    eddy_sleep_ms(50);
    for (int i = 0; i < c->nfillers; i++)
        close(c->fillers[i]);
    return 0;
}

static intptr_t accept_while_out_of_fds(void *arg)
{
    struct emfile_case *c = arg;
    /* The client connects first; then every free fd is used up. */
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(client, 0);
    cr_assert_eq(connect(client, &c->addr.u.sa, c->addr.len), 0);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = (rlim_t)client + 8;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    for (;;) {
        int fd = dup(client);
        if (fd < 0) {
            cr_assert_eq(errno, EMFILE);
            break;
        }
        cr_assert_lt(c->nfillers, 64);
        c->fillers[c->nfillers++] = fd;
    }
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(free_fds_later, c, NULL, &t), 0);
    int64_t t0 = eddy_now_ns();
    int fd = eddy_sock_accept(c->lfd, NULL);
    c->took_ns = eddy_clock_ns() - t0;
    c->accepted = fd;
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    if (fd >= 0) {
        /* The connection works: data flows both ways. */
        cr_assert_eq(write(client, "x", 1), 1);
        char b;
        cr_expect_eq(eddy_fd_read(fd, &b, 1), 1);
        eddy_fd_close(fd);
    }
    close(client);
    return 0;
}

EDDY_TEST(socket, accept_survives_emfile_and_resumes_when_fds_free_up)
{
    if (eddy_test_under_valgrind())
        cr_skip_test("valgrind emulates RLIMIT_NOFILE and keeps fds of its own above it");
    struct emfile_case c = {0};
    c.lfd = listen_any("127.0.0.1:0", &c.addr, 0);
    rt_run(accept_while_out_of_fds, &c);
    cr_expect_geq(c.accepted, 0, "%s", eddy_strerror(c.accepted));
    cr_expect_geq(c.took_ns, 50 * EDDY_NS_PER_MS, "accept did not wait for free fds");
    cr_expect_lt(c.took_ns, 50 * EDDY_NS_PER_MS + 200 * EDDY_NS_PER_MS + rt_late_tolerance_ns());
    close(c.lfd);
}

/* ---- UDP ------------------------------------------------------------------- */

static intptr_t udp_roundtrip(void *arg)
{
    (void)arg;
    struct eddy_addr any, a_addr, b_addr;
    cr_assert_eq(eddy_addr_parse("127.0.0.1:0", &any), 0);
    int a = eddy_udp_open(&any);
    int b = eddy_udp_open(&any);
    cr_assert_geq(a, 0);
    cr_assert_geq(b, 0);
    eddy_sock_local_addr(a, &a_addr);
    eddy_sock_local_addr(b, &b_addr);
    cr_assert_eq(eddy_udp_send(a, "ping", 4, &b_addr), 4);
    char buf[16];
    struct eddy_addr from;
    cr_assert_eq(eddy_udp_recv(b, buf, sizeof(buf), &from), 4);
    cr_expect_eq(memcmp(buf, "ping", 4), 0);
    cr_expect_eq(eddy_addr_port(&from), eddy_addr_port(&a_addr));
    /* A datagram longer than the buffer: truncated and reported. */
    cr_assert_eq(eddy_udp_send(b, "0123456789", 10, &from), 10);
    cr_expect_eq(eddy_udp_recv(a, buf, 4, NULL), -EMSGSIZE);
    cr_expect_eq(memcmp(buf, "0123", 4), 0);
    /* A receive parks until a datagram comes; a timeout scope ends it. */
    struct eddy_timeout t;
    eddy_timeout_enter(&t, 20 * EDDY_NS_PER_MS);
    cr_expect_eq(eddy_udp_recv(a, buf, sizeof(buf), NULL), -ETIMEDOUT);
    eddy_timeout_exit(&t);
    eddy_fd_close(a);
    eddy_fd_close(b);
    return 0;
}

EDDY_TEST(socket, udp_datagrams_round_trip_and_truncation_is_reported)
{
    rt_run(udp_roundtrip, NULL);
}

/* ---- 10,000 concurrent connections -------------------------------------- */

#define MANY_CONNECTIONS 10000
#define MANY_CONNECTIONS_VALGRIND 200

struct many {
    struct eddy_addr addr;
    size_t n;
    size_t done;
    struct eddy_event all_connected;
    size_t connected;
};

/* Each client connects, waits until every client is connected (so all
 * connections are open at once), then does one round trip. */
static intptr_t many_client(void *arg)
{
    struct many *m = arg;
    int fd = eddy_sock_connect(&m->addr, 30 * EDDY_NS_PER_SEC);
    if (fd < 0)
        return fd;
    if (++m->connected == m->n)
        eddy_event_set(&m->all_connected);
    int rc = eddy_event_wait(&m->all_connected, EDDY_DEADLINE_NEVER);
    if (rc == 0 && eddy_fd_write_all(fd, "ping", 4) != 4)
        rc = -EIO;
    char buf[4];
    size_t got = 0;
    while (rc == 0 && got < 4) {
        ssize_t n = eddy_fd_read(fd, buf + got, 4 - got);
        if (n <= 0)
            rc = n < 0 ? (int)n : -ENODATA;
        else
            got += (size_t)n;
    }
    eddy_fd_close(fd);
    if (rc == 0)
        m->done++;
    return rc;
}

static intptr_t many_clients_main(void *arg)
{
    struct many *m = arg;
    eddy_event_init(&m->all_connected);
    struct eddy_group *g;
    cr_assert_eq(eddy_group_create(&g), 0);
    struct eddy_task_opts o = {.stack_size_bytes = 16 * 1024};
    for (size_t i = 0; i < m->n; i++)
        if (eddy_group_spawn(g, many_client, m, &o, NULL) < 0)
            return -ENOMEM;
    int rc = eddy_group_join(g);
    return rc < 0 ? rc : (intptr_t)m->done;
}

static intptr_t many_server_main(void *arg)
{
    struct echo *e = arg;
    size_t served = 0;
    struct eddy_group *g;
    cr_assert_eq(eddy_group_create(&g), 0);
    struct eddy_task_opts o = {.stack_size_bytes = 16 * 1024};
    while (served < e->clients) {
        int fd = eddy_sock_accept(e->lfd, NULL);
        if (fd < 0)
            return fd;
        if (eddy_group_spawn(g, echo_conn, (void *)(intptr_t)fd, &o, NULL) < 0)
            return -ENOMEM;
        served++;
    }
    int rc = eddy_group_join(g);
    return rc < 0 ? rc : (intptr_t)served;
}

static void raise_fd_limit(size_t need)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
        cr_skip_test("fd hard limit %lu is below the %zu this test needs",
                     (unsigned long)rl.rlim_max, need);
    if (rl.rlim_cur < need) {
        rl.rlim_cur = need;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
}

EDDY_TEST(socket, ten_thousand_concurrent_connections_on_loopback)
{
    size_t n = rt_scale(MANY_CONNECTIONS, MANY_CONNECTIONS_VALGRIND);
    /* Clients in a child process, the server here: each side needs n fds. */
    raise_fd_limit(n + 64);
    struct echo e = {.clients = n};
    e.lfd = listen_any("127.0.0.1:0", &e.addr, 4096);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(e.lfd);
        struct many m = {.addr = e.addr, .n = n};
        intptr_t r = INTPTR_MIN;
        int rc = eddy_run(many_clients_main, &m, NULL, &r);
        _exit(rc == 0 && r == (intptr_t)n ? 0 : 1);
    }
    intptr_t served = rt_run(many_server_main, &e);
    cr_expect_eq(served, (intptr_t)n, "%s", served < 0 ? eddy_strerror((int)served) : "");
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client process status %d", st);
    close(e.lfd);
}

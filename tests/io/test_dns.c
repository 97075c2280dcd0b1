/*
 * tests/io/test_dns.c: name resolution on the offload pool. Only names this
 * machine answers by itself (localhost from /etc/hosts, IP literals) are
 * resolved; a name that does not exist must fail with a resolver code, not
 * hang; a lookup stuck behind a busy pool ends with its timeout.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <eddy/eddy.h>

#include "tests/reactor/reactor_test.h"

struct lookup {
    const char *host;
    uint16_t port;
    int family;
    int64_t timeout_ns;
    struct eddy_addr out[8];
    int rc;
};

static intptr_t do_lookup(void *arg)
{
    struct lookup *l = arg;
    l->rc = eddy_dns_resolve(l->host, l->port, l->family, l->timeout_ns, l->out, 8);
    return 0;
}

static void resolve(struct lookup *l)
{
    rt_run(do_lookup, l);
}

EDDY_TEST(dns, localhost_resolves_to_a_loopback_address_with_the_port)
{
    struct lookup l = {.host = "localhost", .port = 8080, .family = AF_UNSPEC, .timeout_ns = -1};
    resolve(&l);
    cr_assert_gt(l.rc, 0, "%s", eddy_strerror(l.rc));
    for (int i = 0; i < l.rc; i++) {
        cr_expect_eq(eddy_addr_port(&l.out[i]), 8080);
        if (l.out[i].u.sa.sa_family == AF_INET)
            cr_expect_eq(ntohl(l.out[i].u.in4.sin_addr.s_addr) >> 24, 127u);
        else
            cr_expect(IN6_IS_ADDR_LOOPBACK(&l.out[i].u.in6.sin6_addr));
    }
}

EDDY_TEST(dns, ip_literals_resolve_to_themselves)
{
    struct lookup l = {.host = "10.1.2.3", .port = 1, .family = AF_UNSPEC, .timeout_ns = -1};
    resolve(&l);
    cr_assert_eq(l.rc, 1);
    char buf[EDDY_ADDR_TEXT_MAX];
    eddy_addr_format(&l.out[0], buf, sizeof(buf));
    cr_expect_str_eq(buf, "10.1.2.3:1");

    struct lookup b = {.host = "[::1]", .port = 2, .family = AF_UNSPEC, .timeout_ns = -1};
    resolve(&b);
    cr_assert_eq(b.rc, 1);
    eddy_addr_format(&b.out[0], buf, sizeof(buf));
    cr_expect_str_eq(buf, "[::1]:2");

    /* A literal of the other family than asked for. */
    struct lookup c = {.host = "10.1.2.3", .port = 1, .family = AF_INET6, .timeout_ns = -1};
    resolve(&c);
    cr_expect_eq(c.rc, -EAFNOSUPPORT);
}

EDDY_TEST(dns, a_name_that_does_not_exist_fails_with_a_resolver_code)
{
    /* One quick try of each name server, in case the machine has one. */
    setenv("RES_OPTIONS", "timeout:1 attempts:1", 1);
    struct lookup l = {.host = "no-such-host.invalid",
                       .port = 80,
                       .family = AF_UNSPEC,
                       .timeout_ns = 10 * EDDY_NS_PER_SEC};
    resolve(&l);
    /* -ENXIO from a resolver that answers, -EAGAIN when none is reachable. */
    cr_expect(l.rc == -ENXIO || l.rc == -EAGAIN, "%s", eddy_strerror(l.rc));
}

static intptr_t block_a_worker(void *arg)
{
    (void)arg;
    usleep(300 * 1000);
    return 0;
}

static intptr_t occupy_pool(void *arg)
{
    (void)arg;
    intptr_t r;
    return eddy_offload_run(block_a_worker, NULL, NULL, &r);
}

static intptr_t lookup_behind_busy_pool(void *arg)
{
    struct lookup *l = arg;
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(occupy_pool, NULL, NULL, &t), 0);
    eddy_sleep_ms(20);          /* the only worker is now busy for 300 ms */
    int64_t t0 = eddy_now_ns(); /* the clock the deadline counts from */
    do_lookup(l);
    int64_t took = eddy_clock_ns() - t0;
    cr_expect_geq(took, l->timeout_ns);
    cr_expect_lt(took, l->timeout_ns + rt_late_tolerance_ns());
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    return 0;
}

EDDY_TEST(dns, a_lookup_that_cannot_start_ends_with_its_timeout)
{
    cr_assert_eq(eddy_offload_set_threads(1), 0);
    struct lookup l = {
        .host = "localhost", .port = 1, .family = AF_UNSPEC, .timeout_ns = 50 * EDDY_NS_PER_MS};
    rt_run(lookup_behind_busy_pool, &l);
    cr_expect_eq(l.rc, -ETIMEDOUT);
}

EDDY_TEST(dns, bad_arguments_are_rejected)
{
    struct lookup l = {.host = "", .family = AF_UNSPEC, .timeout_ns = -1};
    resolve(&l);
    cr_expect_eq(l.rc, -EINVAL);
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    l.host = longname;
    resolve(&l);
    cr_expect_eq(l.rc, -EINVAL);
    l.host = "localhost";
    l.family = AF_UNIX;
    resolve(&l);
    cr_expect_eq(l.rc, -EAFNOSUPPORT);
    struct eddy_addr a;
    cr_expect_eq(eddy_dns_resolve("localhost", 1, AF_UNSPEC, -1, &a, 1), -EINVAL); /* no task */
}

struct connect_host {
    int lfd;
    uint16_t port;
    int rc;
};

static intptr_t connect_by_name(void *arg)
{
    struct connect_host *c = arg;
    int fd = eddy_tcp_connect_host("localhost", c->port, 5 * EDDY_NS_PER_SEC);
    c->rc = fd;
    if (fd >= 0) {
        int peer = eddy_sock_accept(c->lfd, NULL);
        cr_expect_geq(peer, 0);
        eddy_fd_close(peer);
        eddy_fd_close(fd);
        c->rc = 0;
    }
    return 0;
}

EDDY_TEST(dns, connect_host_tries_each_address_until_one_accepts)
{
    /* Only 127.0.0.1 listens: when localhost also gives ::1, that one is
     * refused first and the next address is tried. */
    struct eddy_addr a;
    cr_assert_eq(eddy_addr_parse("127.0.0.1:0", &a), 0);
    struct connect_host c;
    c.lfd = eddy_sock_listen(&a, NULL);
    cr_assert_geq(c.lfd, 0);
    eddy_sock_local_addr(c.lfd, &a);
    c.port = eddy_addr_port(&a);
    rt_run(connect_by_name, &c);
    cr_expect_eq(c.rc, 0, "%s", eddy_strerror(c.rc));
    close(c.lfd);
}

static intptr_t connect_by_name_refused(void *arg)
{
    struct connect_host *c = arg;
    c->rc = eddy_tcp_connect_host("localhost", c->port, 5 * EDDY_NS_PER_SEC);
    return 0;
}

EDDY_TEST(dns, connect_host_reports_refusal_when_no_address_accepts)
{
    struct eddy_addr a;
    cr_assert_eq(eddy_addr_parse("127.0.0.1:0", &a), 0);
    int lfd = eddy_sock_listen(&a, NULL);
    eddy_sock_local_addr(lfd, &a);
    close(lfd);
    struct connect_host c = {.port = eddy_addr_port(&a)};
    rt_run(connect_by_name_refused, &c);
    cr_expect_eq(c.rc, -ECONNREFUSED, "%s", eddy_strerror(c.rc));
}

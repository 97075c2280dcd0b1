/*
 * tests/io/test_addr.c: parsing and formatting of socket addresses, as
 * tables: every valid text parses and formats back to itself (or to its
 * canonical form), every invalid one gives its code.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>

#include <eddy/eddy.h>

#include "tests/support/test.h"

struct valid_case {
    const char *text;
    int family;
    uint16_t port;
    const char *formatted; /* canonical text */
};

static const struct valid_case valid[] = {
    {"127.0.0.1:8080", AF_INET, 8080, "127.0.0.1:8080"},
    {"0.0.0.0:0", AF_INET, 0, "0.0.0.0:0"},
    {"255.255.255.255:65535", AF_INET, 65535, "255.255.255.255:65535"},
    {"[::1]:80", AF_INET6, 80, "[::1]:80"},
    {"[::]:443", AF_INET6, 443, "[::]:443"},
    {"[2001:DB8:0:0:0:0:0:1]:1", AF_INET6, 1, "[2001:db8::1]:1"},
    {"[::ffff:10.0.0.1]:9", AF_INET6, 9, "[::ffff:10.0.0.1]:9"},
    {"[fe80::1%1]:22", AF_INET6, 22, NULL}, /* scope 1 is lo: formatted by name */
    {"unix:/run/eddy.sock", AF_UNIX, 0, "unix:/run/eddy.sock"},
    {"/tmp/x", AF_UNIX, 0, "unix:/tmp/x"},
    {"unix:@eddy-abstract", AF_UNIX, 0, "unix:@eddy-abstract"},
};

EDDY_TEST(addr, valid_texts_parse_and_format_back)
{
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        const struct valid_case *c = &valid[i];
        struct eddy_addr a;
        int rc = eddy_addr_parse(c->text, &a);
        cr_assert_eq(rc, 0, "%s: %s", c->text, eddy_strerror(rc));
        cr_expect_eq(a.u.sa.sa_family, c->family, "%s", c->text);
        cr_expect_eq(eddy_addr_port(&a), c->port, "%s", c->text);
        char buf[EDDY_ADDR_TEXT_MAX];
        int n = eddy_addr_format(&a, buf, sizeof(buf));
        cr_assert_gt(n, 0, "%s: %s", c->text, eddy_strerror(n));
        cr_expect_eq((size_t)n, strlen(buf));
        if (c->formatted)
            cr_expect_str_eq(buf, c->formatted, "%s", c->text);
        /* Whatever format writes, parse reads back to the same address. */
        struct eddy_addr b;
        cr_assert_eq(eddy_addr_parse(buf, &b), 0, "reparse of %s", buf);
        cr_expect_eq(a.len, b.len, "%s", buf);
        cr_expect_eq(memcmp(&a.u, &b.u, a.len), 0, "%s", buf);
    }
}

EDDY_TEST(addr, ipv6_scope_is_kept)
{
    struct eddy_addr a;
    cr_assert_eq(eddy_addr_parse("[fe80::1%1]:22", &a), 0);
    cr_expect_eq(a.u.in6.sin6_scope_id, 1u);
    char buf[EDDY_ADDR_TEXT_MAX];
    cr_assert_gt(eddy_addr_format(&a, buf, sizeof(buf)), 0);
    cr_expect(strncmp(buf, "[fe80::1%", 9) == 0, "%s", buf);
}

struct invalid_case {
    const char *text;
    int rc;
};

static const struct invalid_case invalid[] = {
    {"", -EINVAL},
    {"127.0.0.1", -EINVAL},        /* no port */
    {"127.0.0.1:", -EINVAL},       /* empty port */
    {"127.0.0.1:65536", -EINVAL},  /* port out of range */
    {"127.0.0.1:123456", -EINVAL}, /* too many digits */
    {"127.0.0.1:-1", -EINVAL},     /* sign */
    {"127.0.0.1:8o", -EINVAL},     /* not a digit */
    {"127.0.0.1: 80", -EINVAL},    /* space */
    {"256.0.0.1:80", -EINVAL},     /* octet out of range */
    {"1.2.3:80", -EINVAL},         /* shorthand is not accepted */
    {"localhost:80", -EINVAL},     /* names are for eddy_dns_resolve */
    {"::1:80", -EINVAL},           /* IPv6 without brackets */
    {"[::1]80", -EINVAL},          /* no colon after the bracket */
    {"[::1]:", -EINVAL},           /* empty port */
    {"[::1:80", -EINVAL},          /* unclosed bracket */
    {"[127.0.0.1]:80", -EINVAL},   /* brackets around IPv4 */
    {"[::g]:80", -EINVAL},         /* bad hex */
    {"unix:", -EINVAL},            /* empty path */
};

EDDY_TEST(addr, invalid_texts_are_rejected_with_their_code)
{
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        struct eddy_addr a;
        int rc = eddy_addr_parse(invalid[i].text, &a);
        cr_expect_eq(rc, invalid[i].rc, "\"%s\": got %s", invalid[i].text, eddy_strerror(rc));
    }
}

EDDY_TEST(addr, unix_path_longer_than_sun_path_is_enametoolong)
{
    struct sockaddr_un un;
    char text[sizeof(un.sun_path) + 16];
    memcpy(text, "unix:/", 6);
    memset(text + 6, 'a', sizeof(un.sun_path));
    text[6 + sizeof(un.sun_path)] = 0;
    struct eddy_addr a;
    cr_expect_eq(eddy_addr_parse(text, &a), -ENAMETOOLONG);
    /* The longest path that fits (with its NUL) is accepted. */
    text[5 + sizeof(un.sun_path) - 1] = 0;
    cr_expect_eq(eddy_addr_parse(text, &a), 0);
}

EDDY_TEST(addr, null_arguments_are_einval)
{
    struct eddy_addr a;
    cr_expect_eq(eddy_addr_parse(NULL, &a), -EINVAL);
    cr_expect_eq(eddy_addr_parse("127.0.0.1:1", NULL), -EINVAL);
    cr_expect_eq(eddy_addr_from_ip(NULL, 1, &a), -EINVAL);
    cr_expect_eq(eddy_addr_format(NULL, (char[8]){0}, 8), -EINVAL);
    cr_expect_eq(eddy_addr_port(NULL), 0);
}

EDDY_TEST(addr, format_reports_a_short_buffer)
{
    struct eddy_addr a;
    cr_assert_eq(eddy_addr_parse("127.0.0.1:8080", &a), 0);
    char buf[8];
    cr_expect_eq(eddy_addr_format(&a, buf, sizeof(buf)), -ENOSPC);
    char exact[15]; /* "127.0.0.1:8080" is 14 bytes */
    cr_expect_eq(eddy_addr_format(&a, exact, sizeof(exact)), 14);
}

EDDY_TEST(addr, format_rejects_other_families)
{
    struct eddy_addr a;
    memset(&a, 0, sizeof(a));
    a.u.sa.sa_family = AF_PACKET;
    a.len = sizeof(a.u.sa);
    char buf[EDDY_ADDR_TEXT_MAX];
    cr_expect_eq(eddy_addr_format(&a, buf, sizeof(buf)), -EAFNOSUPPORT);
}

EDDY_TEST(addr, from_ip_sets_port_in_network_order)
{
    struct eddy_addr a;
    cr_assert_eq(eddy_addr_from_ip("10.1.2.3", 258, &a), 0);
    cr_expect_eq(a.u.in4.sin_port, htons(258));
    cr_expect_eq(a.len, sizeof(struct sockaddr_in));
    cr_assert_eq(eddy_addr_from_ip("::1", 258, &a), 0);
    cr_expect_eq(a.u.in6.sin6_port, htons(258));
    cr_expect_eq(a.len, sizeof(struct sockaddr_in6));
    cr_expect_eq(eddy_addr_from_ip("not-an-ip", 1, &a), -EINVAL);
}

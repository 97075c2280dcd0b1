/*
 * tests/http/test_url.c: eddy_url_parse, eddy_url_resolve and
 * eddy_http_percent_encode, as tables. Every valid URL is also parsed from
 * a copy that ends flush against a PROT_NONE page, so an over-read faults.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <eddy/eddy.h>

#include "tests/support/test.h"

/* A copy of s whose last byte sits just before a PROT_NONE page. */
static char *guarded(const char *s, size_t len, void **map, size_t *map_len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page + 1;
    *map_len = (pages + 1) * page;
    char *m = mmap(NULL, *map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(mprotect(m + pages * page, page, PROT_NONE), 0);
    char *p = m + pages * page - len;
    memcpy(p, s, len);
    *map = m;
    return p;
}

struct url_case {
    const char *text;
    const char *scheme, *userinfo, *host;
    bool ipv6;
    unsigned port;
    bool port_explicit;
    const char *path, *query, *fragment;
};

static void expect_view(const char *p, size_t n, const char *want, const char *what,
                        const char *text)
{
    if (!want) {
        cr_expect_null(p, "%s: %s should be absent", text, what);
        return;
    }
    cr_expect_not_null(p, "%s: %s missing", text, what);
    if (p)
        cr_expect(n == strlen(want) && memcmp(p, want, n) == 0, "%s: %s is '%.*s', not '%s'", text,
                  what, (int)n, p, want);
}

EDDY_TEST(url, parse_splits_every_component)
{
    static const struct url_case cases[] = {
        {"http://example.com", "http", NULL, "example.com", false, 80, false, "", NULL, NULL},
        {"http://example.com/", "http", NULL, "example.com", false, 80, false, "/", NULL, NULL},
        {"HTTP://Example.COM:8080/a/b?x=1&y=2#frag", "HTTP", NULL, "Example.COM", false, 8080, true,
         "/a/b", "x=1&y=2", "frag"},
        {"https://h/p", "https", NULL, "h", false, 443, false, "/p", NULL, NULL},
        {"http://user:pw@h:81/", "http", "user:pw", "h", false, 81, true, "/", NULL, NULL},
        {"http://a@b@h/", "http", "a@b", "h", false, 80, false, "/", NULL, NULL},
        {"http://[::1]:8080/x", "http", NULL, "::1", true, 8080, true, "/x", NULL, NULL},
        {"http://[2001:db8::7]/", "http", NULL, "2001:db8::7", true, 80, false, "/", NULL, NULL},
        {"http://[::ffff:1.2.3.4]", "http", NULL, "::ffff:1.2.3.4", true, 80, false, "", NULL,
         NULL},
        {"http://h?q", "http", NULL, "h", false, 80, false, "", "q", NULL},
        {"http://h?", "http", NULL, "h", false, 80, false, "", "", NULL},
        {"http://h#f", "http", NULL, "h", false, 80, false, "", NULL, "f"},
        {"http://h:/p", "http", NULL, "h", false, 80, false, "/p", NULL, NULL},
        {"http://h:65535", "http", NULL, "h", false, 65535, true, "", NULL, NULL},
        {"http://h:0", "http", NULL, "h", false, 0, true, "", NULL, NULL},
        {"http://127.0.0.1:9/a%20b?c=%2F", "http", NULL, "127.0.0.1", false, 9, true, "/a%20b",
         "c=%2F", NULL},
        {"ftp://h/f", "ftp", NULL, "h", false, 0, false, "/f", NULL, NULL},
        {"http://h/p?a=/?b", "http", NULL, "h", false, 80, false, "/p", "a=/?b", NULL},
        {"web+x.y-z://h", "web+x.y-z", NULL, "h", false, 0, false, "", NULL, NULL},
        {"http://h%41st/", "http", NULL, "h%41st", false, 80, false, "/", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct url_case *c = &cases[i];
        size_t len = strlen(c->text);
        void *map;
        size_t map_len;
        char *text = guarded(c->text, len, &map, &map_len);
        struct eddy_url u;
        int rc = eddy_url_parse(text, len, &u);
        cr_expect_eq(rc, 0, "%s: %s", c->text, eddy_strerror(rc));
        if (rc == 0) {
            expect_view(u.scheme, u.scheme_len, c->scheme, "scheme", c->text);
            expect_view(u.userinfo, u.userinfo_len, c->userinfo, "userinfo", c->text);
            expect_view(u.host, u.host_len, c->host, "host", c->text);
            cr_expect_eq(u.host_is_ipv6, c->ipv6, "%s: ipv6", c->text);
            cr_expect_eq(u.port, c->port, "%s: port %u", c->text, u.port);
            cr_expect_eq(u.port_explicit, c->port_explicit, "%s: port_explicit", c->text);
            expect_view(u.path, u.path_len, c->path, "path", c->text);
            expect_view(u.query, u.query_len, c->query, "query", c->text);
            expect_view(u.fragment, u.fragment_len, c->fragment, "fragment", c->text);
        }
        munmap(map, map_len);
    }
}

EDDY_TEST(url, parse_rejects_malformed_urls_with_einval)
{
    static const char *const bad[] = {
        "",
        "example.com/path",
        "http:/h/p",
        "http//h",
        "1http://h",
        "ht tp://h",
        "http://",
        "http:///path",
        "http://:80/",
        "http://user@/",
        "http://h:8x/",
        "http://h:65536/",
        "http://h:99999999999/",
        "http://[::1/",
        "http://[::1]x/",
        "http://[zz::1]/",
        "http://[1]/",
        "http://h/a b",
        "http://h/a\tb",
        "http://h/\x7f",
        "http://h/\xc3\xa9",
        "http://h/%zz",
        "http://h/%4",
        "http://h/#a#b",
        "http://h^/",
        "http://h\r\n/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct eddy_url u;
        int rc = eddy_url_parse(bad[i], strlen(bad[i]), &u);
        cr_expect_eq(rc, -EINVAL, "'%s' gave %d", bad[i], rc);
    }
    struct eddy_url u;
    cr_expect_eq(eddy_url_parse(NULL, 0, &u), -EINVAL);
    cr_expect_eq(eddy_url_parse("http://h", 8, NULL), -EINVAL);
}

EDDY_TEST(url, parse_respects_the_given_length)
{
    struct eddy_url u;
    const char *text = "http://h/path?q=1 trailing garbage";
    cr_assert_eq(eddy_url_parse(text, strlen("http://h/path?q=1"), &u), 0);
    cr_expect_eq(u.query_len, 3);
}

EDDY_TEST(url, resolve_follows_rfc3986_examples)
{
    /* RFC 3986 5.4.1 normal examples with base http://a/b/c/d;p?q. */
    static const char *const cases[][2] = {
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q"},
        {"g#s", "http://a/b/c/g"},
        {";x", "http://a/b/c/;x"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../g", "http://a/g"},
        {"../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"http://other:81/x/../y?z", "http://other:81/y?z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        int rc = eddy_url_resolve("http://a/b/c/d;p?q", cases[i][0], out, sizeof(out));
        cr_expect_geq(rc, 0, "'%s': %s", cases[i][0], eddy_strerror(rc));
        if (rc >= 0) {
            cr_expect_str_eq(out, cases[i][1], "'%s' resolved to '%s'", cases[i][0], out);
            cr_expect_eq((size_t)rc, strlen(out));
        }
    }
}

EDDY_TEST(url, resolve_reports_errors)
{
    char out[32];
    cr_expect_eq(eddy_url_resolve("not a url", "/x", out, sizeof(out)), -EINVAL);
    cr_expect_eq(eddy_url_resolve("http://h/", "/a b", out, sizeof(out)), -EINVAL);
    cr_expect_eq(eddy_url_resolve("http://h/", "http://[::1/", out, sizeof(out)), -EINVAL);
    cr_expect_eq(eddy_url_resolve("http://h/", "//", out, sizeof(out)), -EINVAL);
    cr_expect_eq(
        eddy_url_resolve("http://h/", "/a-path-longer-than-thirty-two-bytes", out, sizeof(out)),
        -ENOSPC);
    cr_expect_eq(eddy_url_resolve("http://h/", "/x", out, 0), -EINVAL);
    cr_expect_eq(eddy_url_resolve(NULL, "/x", out, sizeof(out)), -EINVAL);
}

EDDY_TEST(url, percent_encode_keeps_unreserved_and_chosen_bytes)
{
    char out[64];
    cr_expect_eq(
        eddy_http_percent_encode("a b/c?d=é~", strlen("a b/c?d=é~"), out, sizeof(out), NULL),
        (int)strlen("a%20b%2Fc%3Fd%3D%C3%A9~"));
    cr_expect_str_eq(out, "a%20b%2Fc%3Fd%3D%C3%A9~");
    cr_expect_gt(eddy_http_percent_encode("/a b/", 5, out, sizeof(out), "/"), 0);
    cr_expect_str_eq(out, "/a%20b/");
    cr_expect_eq(eddy_http_percent_encode("\0x", 2, out, sizeof(out), "/"), 4);
    cr_expect_str_eq(out, "%00x");
    /* Round trip through the existing decoder. */
    char back[64];
    eddy_http_percent_encode("k=v&w x", 7, out, sizeof(out), NULL);
    cr_expect_eq(eddy_http_percent_decode(out, strlen(out), back, sizeof(back)), 7);
    cr_expect_str_eq(back, "k=v&w x");
    cr_expect_eq(eddy_http_percent_encode("abc", 3, out, 3, NULL), -ENOSPC);
    cr_expect_eq(eddy_http_percent_encode(" ", 1, out, 3, NULL), -ENOSPC);
    cr_expect_eq(eddy_http_percent_encode(NULL, 1, out, sizeof(out), NULL), -EINVAL);
    cr_expect_eq(eddy_http_percent_encode("", 0, out, sizeof(out), NULL), 0);
    cr_expect_str_eq(out, "");
}

/*
 * tests/http/test_parse.c: the HTTP/1.1 head parsers and the chunked
 * decoder, as tables (STYLE.md section 9).
 *
 * Every table runs once per scanner the CPU has (scalar, sse42, avx2,
 * forced with eddy__http_scan_force), and each entry's result is compared,
 * as a one-line summary with views as offsets, against the scalar one.
 * Every input sits flush against a PROT_NONE page, so a read past its end
 * faults. Valid heads are also fed at every prefix length (each must give
 * -EAGAIN) and with more bytes behind them (the same head length); invalid
 * ones at every prefix length too (each must give -EAGAIN or the same
 * status, never another one). Chunked bodies are fed whole, cut in two at
 * every byte, and one byte at a time.
 *
 * Real peers: curl and python3's http.client send requests (GET, POST,
 * chunked uploads with Expect: 100-continue, HTTP/1.0) that the parser
 * must take apart; python3's http.server sends responses (Content-Length
 * and chunked) that the response parser and the decoder must read.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <eddy/eddy.h>

#include "http/internal.h"
#include "tests/support/test.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* A string literal and its length, NULs included. */
#define T(s) s, sizeof(s) - 1
#define MAX_FIELDS 128
/* The request tables' inputs are at most this long (the limit tests use
 * their own buffers). */
#define TABLE_INPUT_MAX 4096

/* ---- scanners and guard pages ------------------------------------------------ */

static const char *const impls[] = {"scalar", "sse42", "avx2"};

/* Forces scanner k; false when this CPU does not have it. */
static bool use_impl(size_t k)
{
    int rc = eddy__http_scan_force(impls[k]);
    if (rc == -EOPNOTSUPP)
        return false;
    cr_assert_eq(rc, 0, "forcing %s: %s", impls[k], eddy_strerror(rc));
    cr_assert_str_eq(eddy__http_scanner()->name, impls[k]);
    return true;
}

/* Writable pages followed by a PROT_NONE page. */
struct guard {
    char *base;
    size_t cap; /* writable bytes before the guard page */
    size_t map_len;
};

static void guard_init(struct guard *g, size_t cap)
{
    size_t page = eddy_test_page_size();
    size_t n = (cap + page - 1) / page * page;
    if (n == 0)
        n = page;
    g->map_len = n + page;
    g->base = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(g->base, MAP_FAILED);
    cr_assert_eq(mprotect(g->base + n, page, PROT_NONE), 0);
    g->cap = n;
}

/* Copies data so that its last byte is the last one before the guard. */
static char *guard_put(struct guard *g, const void *data, size_t len)
{
    cr_assert_leq(len, g->cap);
    char *p = g->base + g->cap - len;
    if (len)
        memcpy(p, data, len);
    return p;
}

static void guard_fini(struct guard *g)
{
    munmap(g->base, g->map_len);
}

/* ---- summaries ---------------------------------------------------------------- */

struct text {
    char s[4096];
    size_t n;
};

__attribute__((format(printf, 2, 3))) static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->s + t->n, sizeof(t->s) - t->n, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->n += (size_t)n < sizeof(t->s) - t->n ? (size_t)n : sizeof(t->s) - t->n - 1;
}

/* A view as "offset+length" from buf ("-" for NULL). */
static void add_view(struct text *t, const char *name, const char *buf, const char *p, size_t n)
{
    if (p)
        add(t, " %s=%td+%zu", name, p - buf, n);
    else
        add(t, " %s=-", name);
}

static void assert_view(const char *what, const char *buf, size_t len, const char *p, size_t n)
{
    if (!p) {
        cr_assert_eq(n, 0, "%s: NULL view with length %zu", what, n);
        return;
    }
    cr_assert(p >= buf && p <= buf + len && n <= (size_t)(buf + len - p),
              "%s: view %td+%zu outside the %zu-byte input", what, p - buf, n, len);
}

/* Everything a request parse produced, comparable across scanners and
 * placements. Views are also checked to lie inside the head. */
static void req_summary(struct text *t, const char *buf, int rc, const struct eddy_http_request *r)
{
    t->n = 0;
    add(t, "rc=%d", rc);
    if (rc == -EBADMSG)
        add(t, " status=%u", r->status);
    if (rc <= 0)
        return;
    size_t len = (size_t)rc;
    assert_view("method", buf, len, r->method_text, r->method_len);
    assert_view("target", buf, len, r->target, r->target_len);
    assert_view("path", buf, len, r->path, r->path_len);
    assert_view("query", buf, len, r->query, r->query_len);
    assert_view("host", buf, len, r->host, r->host_len);
    add(t, " method=%d", (int)r->method);
    add_view(t, "m", buf, r->method_text, r->method_len);
    add_view(t, "target", buf, r->target, r->target_len);
    add_view(t, "path", buf, r->path, r->path_len);
    add_view(t, "query", buf, r->query, r->query_len);
    add(t, " v=1.%d n=%zu", r->version_minor, r->nheaders);
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct eddy_http_header *h = &r->headers[i];
        assert_view("name", buf, len, h->name, h->name_len);
        assert_view("value", buf, len, h->value, h->value_len);
        add_view(t, "h", buf, h->name, h->name_len);
        add_view(t, "v", buf, h->value, h->value_len);
    }
    add_view(t, "host", buf, r->host, r->host_len);
    add(t, " body=%d cl=%llu ka=%d ec=%d", (int)r->body, (unsigned long long)r->content_length,
        r->keep_alive, r->expect_continue);
}

static void resp_summary(struct text *t, const char *buf, int rc,
                         const struct eddy_http_response *r)
{
    t->n = 0;
    add(t, "rc=%d", rc);
    if (rc <= 0)
        return;
    size_t len = (size_t)rc;
    assert_view("reason", buf, len, r->reason, r->reason_len);
    add(t, " v=1.%d status=%u", r->version_minor, r->status);
    add_view(t, "reason", buf, r->reason, r->reason_len);
    add(t, " n=%zu", r->nheaders);
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct eddy_http_header *h = &r->headers[i];
        assert_view("name", buf, len, h->name, h->name_len);
        assert_view("value", buf, len, h->value, h->value_len);
        add_view(t, "h", buf, h->name, h->name_len);
        add_view(t, "v", buf, h->value, h->value_len);
    }
    add(t, " body=%d cl=%llu ka=%d", (int)r->body, (unsigned long long)r->content_length,
        r->keep_alive);
}

/* True when view (p, n) holds the text s. */
static bool view_is(const char *p, size_t n, const char *s)
{
    if (!s)
        return p == NULL;
    return p && n == strlen(s) && memcmp(p, s, n) == 0;
}

/* The value of header name, or NULL. */
static const struct eddy_http_header *header(const struct eddy_http_header *h, size_t n,
                                             const char *name)
{
    int i = eddy_http_header_find(h, n, name, strlen(name));
    return i >= 0 ? &h[i] : NULL;
}

/* ---- valid requests ----------------------------------------------------------- */

#define BROWSER_GET                                                                                \
    "GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n"                \
    "Host: www.kittyhell.com\r\n"                                                                  \
    "User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, "      \
    "like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"                                               \
    "Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\n"                 \
    "Accept-Language: ja,en-US;q=0.9,en;q=0.8\r\n"                                                 \
    "Accept-Encoding: gzip, deflate, br\r\n"                                                       \
    "Connection: keep-alive\r\n"                                                                   \
    "Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; "                          \
    "__utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; "                             \
    "__utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com\r\n"             \
    "Referer: https://www.kittyhell.com/\r\n"                                                      \
    "Sec-Fetch-Dest: image\r\n"                                                                    \
    "Sec-Fetch-Mode: no-cors\r\n"                                                                  \
    "Sec-Fetch-Site: same-origin\r\n"                                                              \
    "Sec-Ch-Ua-Platform: \"macOS\"\r\n"                                                            \
    "\r\n"

#define A10 "aaaaaaaaaa"
#define A50 A10 A10 A10 A10 A10

struct req_case {
    const char *name;
    const char *text;
    enum eddy_http_method method;
    const char *method_text;
    const char *path;
    const char *query; /* NULL: no '?' */
    int minor;
    size_t nheaders;
    const char *host; /* NULL: no Host header */
    enum eddy_http_body body;
    uint64_t content_length;
    bool keep_alive;
    bool expect_continue;
    const char *hname, *hvalue; /* one header to look up, if set */
};

static const struct req_case valid_reqs[] = {
    {"curl get",
     "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
     EDDY_HTTP_GET, "GET", "/", NULL, 1, 3, "127.0.0.1:8080", EDDY_HTTP_BODY_NONE, 0, true, false,
     "user-agent", "curl/7.88.1"},
    {"browser get", BROWSER_GET, EDDY_HTTP_GET, "GET",
     "/wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg", NULL, 1, 12,
     "www.kittyhell.com", EDDY_HTTP_BODY_NONE, 0, true, false, "sec-ch-ua-platform", "\"macOS\""},
    {"query", "GET /search?q=eddy&lang=c HTTP/1.1\r\nHost: h\r\n\r\n", EDDY_HTTP_GET, "GET",
     "/search", "q=eddy&lang=c", 1, 1, "h", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"empty query", "GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", EDDY_HTTP_GET, "GET", "/a", "", 1, 1,
     "h", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"second question mark stays in the query", "GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n",
     EDDY_HTTP_GET, "GET", "/a", "b?c", 1, 1, "h", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"http/1.0 needs no host", "GET /old HTTP/1.0\r\n\r\n", EDDY_HTTP_GET, "GET", "/old", NULL, 0,
     0, NULL, EDDY_HTTP_BODY_NONE, 0, false, false, NULL, NULL},
    {"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", EDDY_HTTP_GET,
     "GET", "/", NULL, 0, 1, NULL, EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"http/1.0 keep-alive then close", "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
     EDDY_HTTP_GET, "GET", "/", NULL, 0, 1, NULL, EDDY_HTTP_BODY_NONE, 0, false, false, NULL, NULL},
    {"http/1.1 close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", EDDY_HTTP_GET,
     "GET", "/", NULL, 1, 2, "h", EDDY_HTTP_BODY_NONE, 0, false, false, NULL, NULL},
    {"close in a token list, any case",
     "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade,  CLOSE \r\n\r\n", EDDY_HTTP_GET, "GET", "/",
     NULL, 1, 2, "h", EDDY_HTTP_BODY_NONE, 0, false, false, NULL, NULL},
    {"close in a second connection line",
     "GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nconnection: close\r\n\r\n", EDDY_HTTP_GET,
     "GET", "/", NULL, 1, 3, "h", EDDY_HTTP_BODY_NONE, 0, false, false, NULL, NULL},
    {"closed is not close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n",
     EDDY_HTTP_GET, "GET", "/", NULL, 1, 2, "h", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"content-length", "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 13\r\n\r\n",
     EDDY_HTTP_POST, "POST", "/echo", NULL, 1, 2, "h", EDDY_HTTP_BODY_LENGTH, 13, true, false, NULL,
     NULL},
    {"content-length zero", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
     EDDY_HTTP_POST, "POST", "/", NULL, 1, 2, "h", EDDY_HTTP_BODY_LENGTH, 0, true, false, NULL,
     NULL},
    {"content-length at the body limit",
     "PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n", EDDY_HTTP_PUT, "PUT", "/f",
     NULL, 1, 2, "h", EDDY_HTTP_BODY_LENGTH, 1048576, true, false, NULL, NULL},
    {"content-length with ows", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \t 42 \t\r\n\r\n",
     EDDY_HTTP_POST, "POST", "/", NULL, 1, 2, "h", EDDY_HTTP_BODY_LENGTH, 42, true, false,
     "content-length", "42"},
    {"duplicate content-length that agrees",
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 005\r\n\r\n",
     EDDY_HTTP_POST, "POST", "/", NULL, 1, 3, "h", EDDY_HTTP_BODY_LENGTH, 5, true, false, NULL,
     NULL},
    {"chunked", "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
     EDDY_HTTP_POST, "POST", "/up", NULL, 1, 2, "h", EDDY_HTTP_BODY_CHUNKED, 0, true, false, NULL,
     NULL},
    {"chunked in capitals with empty list elements",
     "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , CHUNKED ,\r\n\r\n", EDDY_HTTP_POST,
     "POST", "/up", NULL, 1, 2, "h", EDDY_HTTP_BODY_CHUNKED, 0, true, false, NULL, NULL},
    {"chunked after an empty transfer-encoding line",
     "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n",
     EDDY_HTTP_POST, "POST", "/up", NULL, 1, 3, "h", EDDY_HTTP_BODY_CHUNKED, 0, true, false, NULL,
     NULL},
    {"expect 100-continue",
     "PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
     EDDY_HTTP_PUT, "PUT", "/f", NULL, 1, 3, "h", EDDY_HTTP_BODY_LENGTH, 10, true, true, NULL,
     NULL},
    {"expect 100-continue in any case",
     "PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nEXPECT: 100-Continue\r\n\r\n",
     EDDY_HTTP_PUT, "PUT", "/f", NULL, 1, 3, "h", EDDY_HTTP_BODY_LENGTH, 10, true, true, NULL,
     NULL},
    {"expect 100-continue is ignored in http/1.0",
     "PUT /f HTTP/1.0\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n", EDDY_HTTP_PUT, "PUT",
     "/f", NULL, 0, 2, NULL, EDDY_HTTP_BODY_LENGTH, 10, false, false, NULL, NULL},
    {"another expectation", "GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", EDDY_HTTP_GET,
     "GET", "/", NULL, 1, 2, "h", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"options asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", EDDY_HTTP_OPTIONS, "OPTIONS", "*",
     NULL, 1, 1, "h", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"connect authority-form", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
     EDDY_HTTP_CONNECT, "CONNECT", "example.com:443", NULL, 1, 1, "example.com:443",
     EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"connect to an ip literal", "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
     EDDY_HTTP_CONNECT, "CONNECT", "[::1]:8443", NULL, 1, 1, "[::1]:8443", EDDY_HTTP_BODY_NONE, 0,
     true, false, NULL, NULL},
    {"absolute-form", "GET http://example.com/a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n",
     EDDY_HTTP_GET, "GET", "/a/b", "c=d", 1, 1, "example.com", EDDY_HTTP_BODY_NONE, 0, true, false,
     NULL, NULL},
    {"absolute-form without a path", "GET http://example.com:80 HTTP/1.1\r\nHost: x\r\n\r\n",
     EDDY_HTTP_GET, "GET", "", NULL, 1, 1, "x", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"absolute-form with a query and no path", "GET http://e.x?q HTTP/1.1\r\nHost: e.x\r\n\r\n",
     EDDY_HTTP_GET, "GET", "", "q", 1, 1, "e.x", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"absolute-form https ip literal", "GET https://[::1]:8443/x HTTP/1.1\r\nHost: [::1]\r\n\r\n",
     EDDY_HTTP_GET, "GET", "/x", NULL, 1, 1, "[::1]", EDDY_HTTP_BODY_NONE, 0, true, false, NULL,
     NULL},
    {"leading empty lines are skipped", "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", EDDY_HTTP_GET,
     "GET", "/", NULL, 1, 1, "h", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"head", "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n", EDDY_HTTP_HEAD, "HEAD", "/x", NULL, 1, 1, "h",
     EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"delete", "DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n", EDDY_HTTP_DELETE, "DELETE", "/x", NULL, 1,
     1, "h", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"patch", "PATCH /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n", EDDY_HTTP_PATCH, "PATCH",
     "/x", NULL, 1, 2, "h", EDDY_HTTP_BODY_LENGTH, 2, true, false, NULL, NULL},
    {"trace", "TRACE /x HTTP/1.1\r\nHost: h\r\n\r\n", EDDY_HTTP_TRACE, "TRACE", "/x", NULL, 1, 1,
     "h", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"unknown method is a token", "PURGE /cache HTTP/1.1\r\nHost: h\r\n\r\n", EDDY_HTTP_OTHER,
     "PURGE", "/cache", NULL, 1, 1, "h", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"methods are case-sensitive", "get / HTTP/1.1\r\nHost: h\r\n\r\n", EDDY_HTTP_OTHER, "get", "/",
     NULL, 1, 1, "h", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"every token character in a name",
     "GET / HTTP/1.1\r\nHost: h\r\n!#$%&'*+-.^_`|~09AZaz: v\r\n\r\n", EDDY_HTTP_GET, "GET", "/",
     NULL, 1, 2, "h", EDDY_HTTP_BODY_NONE, 0, true, false, "!#$%&'*+-.^_`|~09azAZ", "v"},
    {"values keep inner tabs and lose outer whitespace",
     "GET / HTTP/1.1\r\nHost: h\r\nX-Tab:\t value\twith tab \t\r\n\r\n", EDDY_HTTP_GET, "GET", "/",
     NULL, 1, 2, "h", EDDY_HTTP_BODY_NONE, 0, true, false, "x-tab", "value\twith tab"},
    {"obs-text in a value",
     "GET / HTTP/1.1\r\nHost: h\r\nX-Name: \xc3\xa9t\xc3\xa9 \xff\x80\r\n\r\n", EDDY_HTTP_GET,
     "GET", "/", NULL, 1, 2, "h", EDDY_HTTP_BODY_NONE, 0, true, false, "X-NAME",
     "\xc3\xa9t\xc3\xa9 \xff\x80"},
    {"empty values", "GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Blank:   \r\n\r\n", EDDY_HTTP_GET,
     "GET", "/", NULL, 1, 3, "h", EDDY_HTTP_BODY_NONE, 0, true, false, "x-blank", ""},
    {"names in any case", "GET / HTTP/1.1\r\nHOST: h\r\ncontent-LENGTH: 3\r\n\r\n", EDDY_HTTP_GET,
     "GET", "/", NULL, 1, 2, "h", EDDY_HTTP_BODY_LENGTH, 3, true, false, NULL, NULL},
    {"empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", EDDY_HTTP_GET, "GET", "/", NULL, 1, 1, "",
     EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"host with percent-encoding and sub-delims",
     "GET / HTTP/1.1\r\nHost: a%2Db!$&'()*+,;=.c:\r\n\r\n", EDDY_HTTP_GET, "GET", "/", NULL, 1, 1,
     "a%2Db!$&'()*+,;=.c:", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
    {"visible ascii in the target",
     "GET /~!$&'()*+,;=:@%20\"<>[]^`{|}\\# HTTP/1.1\r\nHost: h\r\n\r\n", EDDY_HTTP_GET, "GET",
     "/~!$&'()*+,;=:@%20\"<>[]^`{|}\\#", NULL, 1, 1, "h", EDDY_HTTP_BODY_NONE, 0, true, false, NULL,
     NULL},
    {"a long target", "GET /" A50 A50 A50 "?" A50 " HTTP/1.1\r\nHost: h\r\n\r\n", EDDY_HTTP_GET,
     "GET", "/" A50 A50 A50, A50, 1, 1, "h", EDDY_HTTP_BODY_NONE, 0, true, false, NULL, NULL},
};

/* What follows a head in the buffer must not change its parse. */
static const struct {
    const char *s;
    size_t n;
} trailing[] = {{T("G")}, {T("GET / HTTP/1.1\r\nHost: h\r\n\r\n")}, {T("\r\n")}, {T("\n\0\x01")}};

static void check_valid_req(const struct req_case *c, struct guard *g, struct text *scalar_sum,
                            bool is_scalar)
{
    const char *impl = eddy__http_scanner()->name;
    size_t len = strlen(c->text);
    struct eddy_http_header hdrs[MAX_FIELDS];
    struct eddy_http_request r;
    const char *buf = guard_put(g, c->text, len);
    int rc = eddy_http_parse_request(buf, len, &r, hdrs, MAX_FIELDS, NULL);
    cr_assert_eq(rc, (int)len, "%s [%s]: rc %d (%s), status %u", c->name, impl, rc,
                 eddy_strerror(rc), r.status);
    cr_expect_eq(r.method, c->method, "%s [%s]: method %d", c->name, impl, (int)r.method);
    cr_expect(view_is(r.method_text, r.method_len, c->method_text), "%s [%s]: method text", c->name,
              impl);
    cr_expect(view_is(r.path, r.path_len, c->path), "%s [%s]: path '%.*s'", c->name, impl,
              (int)r.path_len, r.path ? r.path : "");
    cr_expect(view_is(r.query, r.query_len, c->query), "%s [%s]: query '%.*s'", c->name, impl,
              (int)r.query_len, r.query ? r.query : "(null)");
    cr_expect_eq(r.version_minor, c->minor, "%s [%s]", c->name, impl);
    cr_expect_eq(r.nheaders, c->nheaders, "%s [%s]: %zu headers", c->name, impl, r.nheaders);
    cr_expect_eq(r.headers, hdrs, "%s [%s]", c->name, impl);
    cr_expect(view_is(r.host, r.host_len, c->host), "%s [%s]: host '%.*s'", c->name, impl,
              (int)r.host_len, r.host ? r.host : "(null)");
    cr_expect_eq(r.body, c->body, "%s [%s]: body %d", c->name, impl, (int)r.body);
    cr_expect_eq(r.content_length, c->content_length, "%s [%s]", c->name, impl);
    cr_expect_eq(r.keep_alive, c->keep_alive, "%s [%s]: keep_alive", c->name, impl);
    cr_expect_eq(r.expect_continue, c->expect_continue, "%s [%s]: expect", c->name, impl);
    cr_expect_eq(r.status, 0, "%s [%s]", c->name, impl);
    cr_expect(view_is(r.target, r.target_len, NULL) == false, "%s [%s]: no target", c->name, impl);
    if (c->hname) {
        const struct eddy_http_header *h = header(hdrs, r.nheaders, c->hname);
        cr_expect(h && view_is(h->value, h->value_len, c->hvalue), "%s [%s]: header %s", c->name,
                  impl, c->hname);
    }
    struct text sum;
    req_summary(&sum, buf, rc, &r);
    if (is_scalar)
        *scalar_sum = sum;
    else
        cr_expect_str_eq(sum.s, scalar_sum->s, "%s: %s and scalar disagree", c->name, impl);

    /* Every proper prefix asks for more bytes. */
    for (size_t n = 0; n < len; n++) {
        buf = guard_put(g, c->text, n);
        int prc = eddy_http_parse_request(buf, n, &r, hdrs, MAX_FIELDS, NULL);
        cr_assert_eq(prc, -EAGAIN, "%s [%s]: the %zu-byte prefix gives %d, status %u", c->name,
                     impl, n, prc, r.status);
    }
    /* Bytes after the head (a body, the next request) change nothing. */
    for (size_t i = 0; i < ARRAY_LEN(trailing); i++) {
        char more[TABLE_INPUT_MAX];
        size_t tlen = trailing[i].n;
        cr_assert_lt(len + tlen, sizeof(more));
        memcpy(more, c->text, len);
        memcpy(more + len, trailing[i].s, tlen);
        buf = guard_put(g, more, len + tlen);
        struct text sum2;
        rc = eddy_http_parse_request(buf, len + tlen, &r, hdrs, MAX_FIELDS, NULL);
        req_summary(&sum2, buf, rc, &r);
        cr_expect_str_eq(sum2.s, sum.s, "%s [%s]: with %zu more bytes", c->name, impl, tlen);
    }
}

EDDY_TEST(http_parse, valid_requests_parse_under_every_scanner)
{
    struct guard g;
    guard_init(&g, TABLE_INPUT_MAX);
    static struct text sums[ARRAY_LEN(valid_reqs)];
    size_t ran = 0;
    for (size_t k = 0; k < ARRAY_LEN(impls); k++) {
        if (!use_impl(k))
            continue;
        ran++;
        for (size_t i = 0; i < ARRAY_LEN(valid_reqs); i++)
            check_valid_req(&valid_reqs[i], &g, &sums[i], k == 0);
    }
    cr_log_info("%zu scanners", ran);
    guard_fini(&g);
}

/* ---- invalid requests ----------------------------------------------------------- */

struct bad_case {
    const char *name;
    const char *text;
    size_t len;
    uint16_t status;
};

#define H11 "GET / HTTP/1.1\r\nHost: h\r\n"

static const struct bad_case bad_reqs[] = {
    /* request line */
    {"two spaces after the method", T("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"a space before the method", T(" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"a space after the version", T("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), 400},
    {"a tab for a space", T("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"a tab in the target", T("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"a space in the target", T("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"obs-text in the target", T("GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"DEL in the target", T("GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"NUL in the target", T("GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"a non-token method", T("G@T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"NUL in the method", T("GE\0T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"bare LF after the request line", T("GET / HTTP/1.1\nHost: h\r\n\r\n"), 400},
    {"CR without LF after the request line", T("GET / HTTP/1.1\rHost: h\r\n\r\n"), 400},
    {"a request line of one word", T("GET\r\n\r\n"), 400},
    {"http/0.9", T("GET /\r\n\r\n"), 400},
    {"no target", T("GET HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"lower-case protocol", T("GET / http/1.1\r\nHost: h\r\n\r\n"), 400},
    {"a letter for the minor version", T("GET / HTTP/1.x\r\nHost: h\r\n\r\n"), 400},
    {"a version without a dot", T("GET / HTTP/11\r\nHost: h\r\n\r\n"), 400},
    {"two-digit minor version", T("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), 400},
    {"two-digit major version", T("GET / HTTP/10.1\r\nHost: h\r\n\r\n"), 400},
    {"http/2.0", T("GET / HTTP/2.0\r\n\r\n"), 505},
    {"http/1.2", T("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), 505},
    {"http/0.9 with a version", T("GET / HTTP/0.9\r\n\r\n"), 505},
    {"http/3.0", T("GET / HTTP/3.0\r\nHost: h\r\n\r\n"), 505},
    {"asterisk for GET", T("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"asterisk and more", T("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"authority-form for GET", T("GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"origin-form for CONNECT", T("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"CONNECT without a port", T("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"CONNECT with an empty port", T("CONNECT example.com: HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"CONNECT with an empty host", T("CONNECT :443 HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"a relative target", T("GET relative/path HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"absolute-form with one slash", T("GET http:/x HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"absolute-form with an empty host", T("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"absolute-form with only a port", T("GET http://:80/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"absolute-form with userinfo", T("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"absolute-form with a bad scheme", T("GET 1http://h/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"a leading bare LF", T("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    {"a leading CR CR", T("\r\rGET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
    /* Host */
    {"http/1.1 without host", T("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), 400},
    {"two hosts", T(H11 "Host: h\r\n\r\n"), 400},
    {"two different hosts", T(H11 "Host: evil\r\n\r\n"), 400},
    {"a space in the host", T("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400},
    {"a path in the host", T("GET / HTTP/1.1\r\nHost: h/x\r\n\r\n"), 400},
    {"userinfo in the host", T("GET / HTTP/1.1\r\nHost: u@h\r\n\r\n"), 400},
    {"a letter in the port", T("GET / HTTP/1.1\r\nHost: h:8o\r\n\r\n"), 400},
    {"an unclosed ip literal", T("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400},
    {"an empty ip literal", T("GET / HTTP/1.1\r\nHost: []\r\n\r\n"), 400},
    {"junk after an ip literal", T("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"), 400},
    {"a bad percent-encoding in the host", T("GET / HTTP/1.1\r\nHost: a%2\r\n\r\n"), 400},
    /* line endings and controls */
    {"bare LF between fields", T(H11 "X: a\nY: b\r\n\r\n"), 400},
    {"bare LF ending the last field", T(H11 "X: a\n\r\n"), 400},
    {"bare LF ending the head", T(H11 "\n"), 400},
    {"CR inside a value", T(H11 "X: a\rb\r\n\r\n"), 400},
    {"CR CR at the end", T(H11 "\r\r"), 400},
    {"NUL in a value", T(H11 "X: a\0b\r\n\r\n"), 400},
    {"SOH in a value",
     T(H11 "X: a\x01"
           "b\r\n\r\n"),
     400},
    {"ESC in a value", T(H11 "X: \x1b[31m\r\n\r\n"), 400},
    {"DEL in a value", T(H11 "X: a\x7f\r\n\r\n"), 400},
    {"VT in a name", T(H11 "X\x0b: a\r\n\r\n"), 400},
    {"NUL in a name", T(H11 "X\0Y: a\r\n\r\n"), 400},
    {"obs-text in a name", T(H11 "X\xc3\xa9: a\r\n\r\n"), 400},
    {"a space inside a name", T(H11 "X Y: z\r\n\r\n"), 400},
    {"a space before the colon", T("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), 400},
    {"a tab before the colon", T(H11 "X\t: a\r\n\r\n"), 400},
    {"an empty name", T(H11 ": a\r\n\r\n"), 400},
    {"no colon", T(H11 "Xyz\r\n\r\n"), 400},
    {"obs-fold with a space", T(H11 "X: a\r\n b\r\n\r\n"), 400},
    {"obs-fold with a tab", T(H11 "X: a\r\n\tb\r\n\r\n"), 400},
    {"whitespace before the first field", T("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), 400},
    /* Content-Length */
    {"content-length with a plus", T(H11 "Content-Length: +5\r\n\r\n"), 400},
    {"content-length with a minus", T(H11 "Content-Length: -5\r\n\r\n"), 400},
    {"content-length with an inner space", T(H11 "Content-Length: 5 5\r\n\r\n"), 400},
    {"content-length as a list", T(H11 "Content-Length: 5,5\r\n\r\n"), 400},
    {"content-length in hex", T(H11 "Content-Length: 0x10\r\n\r\n"), 400},
    {"content-length with a unit", T(H11 "Content-Length: 5a\r\n\r\n"), 400},
    {"an empty content-length", T(H11 "Content-Length: \r\n\r\n"), 400},
    {"content-length as a decimal", T(H11 "Content-Length: 5.0\r\n\r\n"), 400},
    {"duplicate content-length that differs",
     T(H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400},
    {"duplicate content-length that overflows",
     T(H11 "Content-Length: 99999999999999999999\r\nContent-Length: 99999999999999999999\r\n\r\n"),
     400},
    {"content-length above the body limit", T(H11 "Content-Length: 1048577\r\n\r\n"), 413},
    {"content-length of 2^64-1", T(H11 "Content-Length: 18446744073709551615\r\n\r\n"), 413},
    {"content-length of 2^64", T(H11 "Content-Length: 18446744073709551616\r\n\r\n"), 413},
    {"content-length of 23 digits", T(H11 "Content-Length: 99999999999999999999999\r\n\r\n"), 413},
    /* Transfer-Encoding */
    {"content-length then chunked",
     T(H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 400},
    {"chunked then content-length",
     T(H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), 400},
    {"gzip alone", T(H11 "Transfer-Encoding: gzip\r\n\r\n"), 400},
    {"chunked then gzip", T(H11 "Transfer-Encoding: chunked, gzip\r\n\r\n"), 400},
    {"chunked twice", T(H11 "Transfer-Encoding: chunked, chunked\r\n\r\n"), 400},
    {"chunked twice on two lines",
     T(H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 400},
    {"chunked then gzip on two lines",
     T(H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"), 400},
    {"identity", T(H11 "Transfer-Encoding: identity\r\n\r\n"), 400},
    {"chunked with a parameter", T(H11 "Transfer-Encoding: chunked;q=1\r\n\r\n"), 400},
    {"a word that contains chunked", T(H11 "Transfer-Encoding: xchunked\r\n\r\n"), 400},
    {"an empty transfer-encoding", T(H11 "Transfer-Encoding:\r\n\r\n"), 400},
    {"a space before the transfer-encoding colon", T(H11 "Transfer-Encoding : chunked\r\n\r\n"),
     400},
    {"chunked in http/1.0", T("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400},
    {"gzip then chunked", T(H11 "Transfer-Encoding: gzip, chunked\r\n\r\n"), 501},
    {"gzip then chunked on two lines",
     T(H11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"), 501},
};

static void check_bad_req(const struct bad_case *c, struct guard *g, struct text *scalar_sum,
                          bool is_scalar)
{
    const char *impl = eddy__http_scanner()->name;
    struct eddy_http_header hdrs[MAX_FIELDS];
    struct eddy_http_request r;
    const char *buf = guard_put(g, c->text, c->len);
    int rc = eddy_http_parse_request(buf, c->len, &r, hdrs, MAX_FIELDS, NULL);
    cr_assert_eq(rc, -EBADMSG, "%s [%s]: rc %d (%s)", c->name, impl, rc, eddy_strerror(rc));
    cr_expect_eq(r.status, c->status, "%s [%s]: status %u, not %u", c->name, impl, r.status,
                 c->status);
    struct text sum;
    req_summary(&sum, buf, rc, &r);
    if (is_scalar)
        *scalar_sum = sum;
    else
        cr_expect_str_eq(sum.s, scalar_sum->s, "%s: %s and scalar disagree", c->name, impl);
    /* A prefix may be undecided, but never decided otherwise. */
    for (size_t n = 0; n < c->len; n++) {
        buf = guard_put(g, c->text, n);
        int prc = eddy_http_parse_request(buf, n, &r, hdrs, MAX_FIELDS, NULL);
        cr_assert(prc == -EAGAIN || (prc == -EBADMSG && r.status == c->status),
                  "%s [%s]: the %zu-byte prefix gives %d, status %u", c->name, impl, n, prc,
                  r.status);
    }
}

EDDY_TEST(http_parse, invalid_requests_get_their_status_under_every_scanner)
{
    struct guard g;
    guard_init(&g, TABLE_INPUT_MAX);
    static struct text sums[ARRAY_LEN(bad_reqs)];
    for (size_t k = 0; k < ARRAY_LEN(impls); k++) {
        if (!use_impl(k))
            continue;
        for (size_t i = 0; i < ARRAY_LEN(bad_reqs); i++)
            check_bad_req(&bad_reqs[i], &g, &sums[i], k == 0);
    }
    guard_fini(&g);
}

EDDY_TEST(http_parse, every_control_byte_in_a_value_is_rejected_and_others_kept)
{
    struct guard g;
    guard_init(&g, TABLE_INPUT_MAX);
    for (size_t k = 0; k < ARRAY_LEN(impls); k++) {
        if (!use_impl(k))
            continue;
        /* Each byte value at several offsets of a long value, so that the
         * vector scanners meet it in every lane of their blocks. */
        for (unsigned b = 0; b < 256; b++) {
            for (size_t at = 0; at < 70; at += 3) {
                char text[256];
                int n = snprintf(text, sizeof(text), H11 "X: ");
                memset(text + n, 'v', 80);
                text[n + (int)at] = (char)b;
                memcpy(text + n + 80, "\r\n\r\n", 4);
                size_t len = (size_t)n + 84;
                const char *buf = guard_put(&g, text, len);
                struct eddy_http_header hdrs[4];
                struct eddy_http_request r;
                int rc = eddy_http_parse_request(buf, len, &r, hdrs, 4, NULL);
                bool allowed = b == '\t' || (b >= 0x20 && b != 0x7f);
                if (allowed) {
                    cr_assert_eq(rc, (int)len, "[%s] byte %#x at %zu: %d", impls[k], b, at, rc);
                    cr_assert_eq(r.headers[1].value_len, 80u - (at == 0 && (b == ' ' || b == '\t')),
                                 "[%s] byte %#x at %zu", impls[k], b, at);
                } else {
                    cr_assert(rc == -EBADMSG && r.status == 400, "[%s] byte %#x at %zu: %d",
                              impls[k], b, at, rc);
                }
            }
        }
    }
    guard_fini(&g);
}

/* ---- limits --------------------------------------------------------------------- */

/* Builds "GET /aaa...a HTTP/1.1\r\n" of exactly line_len bytes, CRLF
 * included, then "Host: h\r\n\r\n" into buf; returns the total length. */
static size_t long_line(char *buf, size_t line_len)
{
    size_t fixed = strlen("GET / HTTP/1.1\r\n");
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', line_len - fixed);
    memcpy(buf + 5 + line_len - fixed, " HTTP/1.1\r\nHost: h\r\n\r\n", 22);
    return line_len + 11;
}

/* One parse of buf[0, len) flush against a guard page, with limits. */
static int parse_limited(struct guard *g, const char *text, size_t len,
                         const struct eddy_http_limits *l, size_t max_headers,
                         struct eddy_http_request *r)
{
    static struct eddy_http_header hdrs[512];
    cr_assert_leq(max_headers, ARRAY_LEN(hdrs));
    const char *buf = guard_put(g, text, len);
    return eddy_http_parse_request(buf, len, r, hdrs, max_headers, l);
}

EDDY_TEST(http_parse, request_line_at_its_limit_parses_and_one_byte_more_is_414)
{
    struct guard g;
    guard_init(&g, 70 * 1024);
    char *text = malloc(70 * 1024);
    struct eddy_http_request r;
    for (size_t k = 0; k < ARRAY_LEN(impls); k++) {
        if (!use_impl(k))
            continue;
        /* The default limit, 8 KiB with the CRLF. */
        size_t len = long_line(text, 8192);
        cr_expect_eq(parse_limited(&g, text, len, NULL, 8, &r), (int)len);
        len = long_line(text, 8193);
        cr_expect_eq(parse_limited(&g, text, len, NULL, 8, &r), -EBADMSG);
        cr_expect_eq(r.status, 414);
        /* Undecided at the limit is decided: the line cannot end in time. */
        cr_expect_eq(parse_limited(&g, text, 8192, NULL, 8, &r), -EBADMSG);
        cr_expect_eq(r.status, 414);
        cr_expect_eq(parse_limited(&g, text, 8191, NULL, 8, &r), -EAGAIN);
        /* A limit of the caller's. */
        struct eddy_http_limits l = {.max_request_line_bytes = 40};
        len = long_line(text, 40);
        cr_expect_eq(parse_limited(&g, text, len, &l, 8, &r), (int)len);
        len = long_line(text, 41);
        cr_expect_eq(parse_limited(&g, text, len, &l, 8, &r), -EBADMSG);
        cr_expect_eq(r.status, 414);
        /* Leading empty lines do not count towards the line. */
        memcpy(text, "\r\n\r\n", 4);
        len = long_line(text + 4, 40) + 4;
        cr_expect_eq(parse_limited(&g, text, len, &l, 8, &r), (int)len);
        /* A bad byte before the limit is a 400, after it a 414. */
        len = long_line(text, 41);
        text[20] = '\x01';
        cr_expect_eq(parse_limited(&g, text, len, &l, 8, &r), -EBADMSG);
        cr_expect_eq(r.status, 400);
        len = long_line(text, 41);
        text[39] = '\x01';
        cr_expect_eq(parse_limited(&g, text, len, &l, 8, &r), -EBADMSG);
        cr_expect_eq(r.status, 400);
        len = long_line(text, 41);
        text[40] = '\x01';
        cr_expect_eq(parse_limited(&g, text, len, &l, 8, &r), -EBADMSG);
        cr_expect_eq(r.status, 414);
    }
    free(text);
    guard_fini(&g);
}

/* A head of exactly len bytes: a request line, Host, and one padding field. */
static size_t head_of(char *buf, size_t len)
{
    const char *start = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
    size_t s = strlen(start);
    memcpy(buf, start, s);
    memset(buf + s, 'p', len - s - 4);
    memcpy(buf + len - 4, "\r\n\r\n", 4);
    return len;
}

EDDY_TEST(http_parse, head_at_its_size_limit_parses_and_one_byte_more_is_431)
{
    struct guard g;
    guard_init(&g, 70 * 1024);
    char *text = malloc(70 * 1024);
    struct eddy_http_request r;
    for (size_t k = 0; k < ARRAY_LEN(impls); k++) {
        if (!use_impl(k))
            continue;
        size_t len = head_of(text, 65536);
        cr_expect_eq(parse_limited(&g, text, len, NULL, 8, &r), (int)len);
        len = head_of(text, 65537);
        cr_expect_eq(parse_limited(&g, text, len, NULL, 8, &r), -EBADMSG);
        cr_expect_eq(r.status, 431);
        cr_expect_eq(parse_limited(&g, text, 65536, NULL, 8, &r), -EBADMSG);
        cr_expect_eq(r.status, 431);
        cr_expect_eq(parse_limited(&g, text, 65535, NULL, 8, &r), -EAGAIN);
        struct eddy_http_limits l = {.max_header_bytes = 100};
        len = head_of(text, 100);
        cr_expect_eq(parse_limited(&g, text, len, &l, 8, &r), (int)len);
        len = head_of(text, 101);
        cr_expect_eq(parse_limited(&g, text, len, &l, 8, &r), -EBADMSG);
        cr_expect_eq(r.status, 431);
        /* The head limit cuts the request line too: 431, not 414. */
        l.max_header_bytes = 10;
        cr_expect_eq(parse_limited(&g, text, len, &l, 8, &r), -EBADMSG);
        cr_expect_eq(r.status, 431);
        /* So do leading empty lines. */
        memset(text, 0, 12);
        memcpy(text, "\r\n\r\n\r\n\r\n\r\n\r\n", 12);
        cr_expect_eq(parse_limited(&g, text, 12, &l, 8, &r), -EBADMSG);
        cr_expect_eq(r.status, 431);
        cr_expect_eq(parse_limited(&g, text, 9, &l, 8, &r), -EAGAIN);
    }
    free(text);
    guard_fini(&g);
}

/* A head with nfields fields: Host and X-N padding fields. */
static size_t head_with_fields(char *buf, size_t nfields)
{
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (size_t i = 1; i < nfields; i++)
        n += (size_t)sprintf(buf + n, "X-%zu: %zu\r\n", i, i);
    memcpy(buf + n, "\r\n", 2);
    return n + 2;
}

EDDY_TEST(http_parse, field_count_at_its_limit_parses_and_one_more_is_431)
{
    struct guard g;
    guard_init(&g, 16 * 1024);
    char *text = malloc(16 * 1024);
    struct eddy_http_request r;
    for (size_t k = 0; k < ARRAY_LEN(impls); k++) {
        if (!use_impl(k))
            continue;
        /* The default limit: 100 fields. */
        size_t len = head_with_fields(text, 100);
        cr_expect_eq(parse_limited(&g, text, len, NULL, 512, &r), (int)len);
        cr_expect_eq(r.nheaders, 100u);
        len = head_with_fields(text, 101);
        cr_expect_eq(parse_limited(&g, text, len, NULL, 512, &r), -EBADMSG);
        cr_expect_eq(r.status, 431);
        /* The caller's array bounds it too. */
        len = head_with_fields(text, 5);
        cr_expect_eq(parse_limited(&g, text, len, NULL, 5, &r), (int)len);
        len = head_with_fields(text, 6);
        cr_expect_eq(parse_limited(&g, text, len, NULL, 5, &r), -EBADMSG);
        cr_expect_eq(r.status, 431);
        /* And the caller's limit. */
        struct eddy_http_limits l = {.max_headers = 3};
        len = head_with_fields(text, 3);
        cr_expect_eq(parse_limited(&g, text, len, &l, 512, &r), (int)len);
        len = head_with_fields(text, 4);
        cr_expect_eq(parse_limited(&g, text, len, &l, 512, &r), -EBADMSG);
        cr_expect_eq(r.status, 431);
        /* No array at all: HTTP/1.0 without fields still parses. */
        struct eddy_http_request r0;
        cr_expect_eq(eddy_http_parse_request("GET / HTTP/1.0\r\n\r\n", 18, &r0, NULL, 0, NULL), 18);
        cr_expect_eq(
            eddy_http_parse_request("GET / HTTP/1.0\r\nA: b\r\n\r\n", 24, &r0, NULL, 0, NULL),
            -EBADMSG);
        cr_expect_eq(r0.status, 431);
    }
    free(text);
    guard_fini(&g);
}

EDDY_TEST(http_parse, content_length_above_the_body_limit_is_413)
{
    struct guard g;
    guard_init(&g, 4096);
    struct eddy_http_request r;
    char text[256];
    struct eddy_http_limits l = {.max_body_bytes = 10};
    int n = snprintf(text, sizeof(text), H11 "Content-Length: 10\r\n\r\n");
    cr_expect_eq(parse_limited(&g, text, (size_t)n, &l, 8, &r), n);
    cr_expect_eq(r.content_length, 10u);
    n = snprintf(text, sizeof(text), H11 "Content-Length: 11\r\n\r\n");
    cr_expect_eq(parse_limited(&g, text, (size_t)n, &l, 8, &r), -EBADMSG);
    cr_expect_eq(r.status, 413);
    /* The largest limit takes the largest length. */
    l.max_body_bytes = UINT64_MAX;
    n = snprintf(text, sizeof(text), H11 "Content-Length: 18446744073709551615\r\n\r\n");
    cr_expect_eq(parse_limited(&g, text, (size_t)n, &l, 8, &r), n);
    cr_expect_eq(r.content_length, UINT64_MAX);
    n = snprintf(text, sizeof(text), H11 "Content-Length: 18446744073709551616\r\n\r\n");
    cr_expect_eq(parse_limited(&g, text, (size_t)n, &l, 8, &r), -EBADMSG);
    cr_expect_eq(r.status, 413);
    /* Chunked bodies are limited by the decoder, not here. */
    l.max_body_bytes = 1;
    n = snprintf(text, sizeof(text), H11 "Transfer-Encoding: chunked\r\n\r\n");
    cr_expect_eq(parse_limited(&g, text, (size_t)n, &l, 8, &r), n);
    guard_fini(&g);
}

EDDY_TEST(http_parse, misuse_is_einval)
{
    struct eddy_http_request r;
    struct eddy_http_response resp;
    struct eddy_http_header h[2];
    cr_expect_eq(eddy_http_parse_request("GET", 3, NULL, h, 2, NULL), -EINVAL);
    cr_expect_eq(eddy_http_parse_request(NULL, 3, &r, h, 2, NULL), -EINVAL);
    cr_expect_eq(eddy_http_parse_request("GET", 3, &r, NULL, 2, NULL), -EINVAL);
    cr_expect_eq(eddy_http_parse_request(NULL, 0, &r, h, 2, NULL), -EAGAIN);
    cr_expect_eq(eddy_http_parse_response("HTTP", 4, NULL, h, 2, NULL), -EINVAL);
    cr_expect_eq(eddy_http_parse_response(NULL, 4, &resp, h, 2, NULL), -EINVAL);
    cr_expect_eq(eddy_http_parse_response("HTTP", 4, &resp, NULL, 2, NULL), -EINVAL);
    cr_expect_eq(eddy_http_parse_response(NULL, 0, &resp, h, 2, NULL), -EAGAIN);
    size_t len = 1;
    struct eddy_http_chunked c;
    eddy_http_chunked_init(&c, 0);
    cr_expect_eq(eddy_http_chunked_decode(NULL, (char[]){"0"}, &len), -EINVAL);
    cr_expect_eq(eddy_http_chunked_decode(&c, (char[]){"0"}, NULL), -EINVAL);
    cr_expect_eq(eddy_http_chunked_decode(&c, NULL, &len), -EINVAL);
    len = 0;
    cr_expect_eq(eddy_http_chunked_decode(&c, NULL, &len), -EAGAIN);
    cr_expect_eq(eddy_http_header_find(NULL, 1, "a", 1), -EINVAL);
    cr_expect_eq(eddy_http_header_find(h, 0, NULL, 1), -EINVAL);
}

/* ---- scanners ------------------------------------------------------------------- */

/* The reference: the first byte outside the class, one at a time. */
static const char *reference_scan(const char *p, const char *end, uint8_t bit)
{
    while (p < end && (eddy__http_class[(uint8_t)*p] & bit))
        p++;
    return p;
}

EDDY_TEST(http_parse, class_table_matches_the_grammar)
{
    for (unsigned b = 0; b < 256; b++) {
        uint8_t cls = eddy__http_class[b];
        bool tchar = (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ||
                     (b < 128 && strchr("!#$%&'*+-.^_`|~", (int)b) && b != 0);
        cr_expect_eq(!!(cls & EDDY__HTTP_TCHAR), tchar, "byte %#x", b);
        cr_expect_eq(!!(cls & EDDY__HTTP_TARGET), b > 0x20 && b < 0x7f, "byte %#x", b);
        cr_expect_eq(!!(cls & EDDY__HTTP_VALUE), b == 9 || (b >= 0x20 && b != 0x7f), "byte %#x", b);
        bool hex = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
        cr_expect_eq(!!(cls & EDDY__HTTP_HEX), hex, "byte %#x", b);
        bool regname = (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ||
                       (b < 128 && b && strchr("-._~!$&'()*+,;=", (int)b));
        cr_expect_eq(!!(cls & EDDY__HTTP_REGNAME), regname, "byte %#x", b);
    }
}

EDDY_TEST(http_parse, scanners_find_the_first_byte_outside_their_class)
{
    struct guard g;
    guard_init(&g, 4096);
    const struct eddy__http_scanner *scanners[3] = {&eddy__http_scan_scalar};
    size_t nscanners = 1;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        scanners[nscanners++] = &eddy__http_scan_sse42;
    if (__builtin_cpu_supports("avx2"))
        scanners[nscanners++] = &eddy__http_scan_avx2;
#endif
    cr_log_info("%zu scanners", nscanners);
    static const uint8_t bits[3] = {EDDY__HTTP_TCHAR, EDDY__HTTP_TARGET, EDDY__HTTP_VALUE};
    /* For every length up to 3 blocks and every position of the one byte
     * outside the class (or none), with every byte value cycling through
     * that position; in-class filler differs per class. */
    char data[128];
    for (size_t ci = 0; ci < 3; ci++) {
        char fill = ci == 2 ? ' ' : 'a';
        for (size_t len = 0; len <= 100; len++) {
            for (size_t at = 0; at <= len; at++) {
                memset(data, fill, len);
                uint8_t b = (uint8_t)(at * 37 + len * 11 + ci);
                if (at < len)
                    data[at] = (char)b;
                const char *buf = guard_put(&g, data, len);
                const char *want = reference_scan(buf, buf + len, bits[ci]);
                for (size_t s = 0; s < nscanners; s++) {
                    const char *(*fn)(const char *, const char *) =
                        ci == 0 ? scanners[s]->token
                                : (ci == 1 ? scanners[s]->target : scanners[s]->value);
                    const char *got = fn(buf, buf + len);
                    cr_assert_eq(got, want, "%s class %zu: len %zu, byte %#x at %zu: %td not %td",
                                 scanners[s]->name, ci, len, b, at, got - buf, want - buf);
                }
            }
        }
    }
    /* Every byte value at every offset of a 64-byte range. */
    for (size_t ci = 0; ci < 3; ci++) {
        char fill = ci == 2 ? 'x' : '~';
        for (unsigned b = 0; b < 256; b++) {
            for (size_t at = 0; at < 64; at++) {
                memset(data, fill, 64);
                data[at] = (char)b;
                const char *buf = guard_put(&g, data, 64);
                const char *want = reference_scan(buf, buf + 64, bits[ci]);
                for (size_t s = 0; s < nscanners; s++) {
                    const char *(*fn)(const char *, const char *) =
                        ci == 0 ? scanners[s]->token
                                : (ci == 1 ? scanners[s]->target : scanners[s]->value);
                    cr_assert_eq(fn(buf, buf + 64), want, "%s class %zu: byte %#x at %zu",
                                 scanners[s]->name, ci, b, at);
                }
            }
        }
    }
    guard_fini(&g);
}

EDDY_TEST(http_parse, scanner_choice_follows_the_cpu)
{
    cr_expect_eq(eddy__http_scan_force("sse4"), -EINVAL);
    cr_expect_eq(eddy__http_scan_force(""), -EINVAL);
    cr_expect_eq(eddy__http_scan_force("scalar"), 0);
    cr_expect_str_eq(eddy__http_scanner()->name, "scalar");
#if defined(__x86_64__)
    __builtin_cpu_init();
    bool sse42 = __builtin_cpu_supports("sse4.2"), avx2 = __builtin_cpu_supports("avx2");
    cr_expect_eq(eddy__http_scan_force("sse42"), sse42 ? 0 : -EOPNOTSUPP);
    cr_expect_eq(eddy__http_scan_force("avx2"), avx2 ? 0 : -EOPNOTSUPP);
    cr_expect_eq(eddy__http_scan_force(NULL), 0);
    cr_expect_str_eq(eddy__http_scanner()->name, avx2 ? "avx2" : (sse42 ? "sse42" : "scalar"));
    cr_log_info("this CPU: sse4.2 %d, avx2 %d", sse42, avx2);
#else
    cr_expect_eq(eddy__http_scan_force("sse42"), -EOPNOTSUPP);
    cr_expect_eq(eddy__http_scan_force("avx2"), -EOPNOTSUPP);
    cr_expect_eq(eddy__http_scan_force(NULL), 0);
    cr_expect_str_eq(eddy__http_scanner()->name, "scalar");
#endif
}

/* The scanner the automatic choice should make on this CPU. */
static const char *expected_best(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        return "avx2";
    if (__builtin_cpu_supports("sse4.2"))
        return "sse42";
#endif
    return "scalar";
}

/* The first use reads EDDY_HTTP_SCAN: each check runs in a child of a
 * process that has not parsed anything yet. */
static void scanner_from_env(void *arg)
{
    const char *want = arg;
    EDDY_CHILD_CHECK(strcmp(eddy__http_scanner()->name, want) == 0);
}

EDDY_TEST(http_parse, eddy_http_scan_names_the_scanner_at_first_use)
{
    const char *best = expected_best();
    bool sse42 = strcmp(best, "scalar") != 0; /* every avx2 CPU has sse4.2 */
    const struct {
        const char *env, *want;
    } cases[] = {
        {"scalar", "scalar"},
        {"sse42", sse42 ? "sse42" : best},
        {"avx2", strcmp(best, "avx2") == 0 ? "avx2" : best},
        {"quantum", best}, /* an unknown name: the automatic choice */
        {NULL, best},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        if (cases[i].env)
            setenv("EDDY_HTTP_SCAN", cases[i].env, 1);
        else
            unsetenv("EDDY_HTTP_SCAN");
        struct eddy_test_child child;
        cr_assert_eq(eddy_test_fork(scanner_from_env, (void *)cases[i].want, &child), 0);
        eddy_assert_child_ok(child);
    }
    unsetenv("EDDY_HTTP_SCAN");
}

/* ---- responses -------------------------------------------------------------------- */

struct resp_case {
    const char *name;
    const char *text;
    int minor;
    unsigned status;
    const char *reason;
    size_t nheaders;
    enum eddy_http_body body;
    uint64_t content_length;
    bool keep_alive;
};

static const struct resp_case valid_resps[] = {
    {"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 1, 200, "OK", 1,
     EDDY_HTTP_BODY_LENGTH, 5, true},
    {"an empty reason", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", 1, 200, "", 1,
     EDDY_HTTP_BODY_LENGTH, 0, true},
    {"no space and no reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 1, 200, "", 1,
     EDDY_HTTP_BODY_LENGTH, 0, true},
    {"a reason with spaces, tabs and obs-text",
     "HTTP/1.1 404 Not \tFound \xc3\xa9\r\nContent-Length: 9\r\n\r\n", 1, 404,
     "Not \tFound \xc3\xa9", 1, EDDY_HTTP_BODY_LENGTH, 9, true},
    {"http/1.0 until close", "HTTP/1.0 200 OK\r\nServer: x\r\n\r\n", 0, 200, "OK", 1,
     EDDY_HTTP_BODY_CLOSE, 0, false},
    {"http/1.0 keep-alive",
     "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", 0, 200, "OK", 2,
     EDDY_HTTP_BODY_LENGTH, 2, true},
    {"http/1.1 until close", "HTTP/1.1 200 OK\r\n\r\n", 1, 200, "OK", 0, EDDY_HTTP_BODY_CLOSE, 0,
     false},
    {"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", 1,
     200, "OK", 2, EDDY_HTTP_BODY_LENGTH, 1, false},
    {"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, 200, "OK", 1,
     EDDY_HTTP_BODY_CHUNKED, 0, true},
    {"100 continue", "HTTP/1.1 100 Continue\r\n\r\n", 1, 100, "Continue", 0, EDDY_HTTP_BODY_NONE, 0,
     true},
    {"103 early hints", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", 1, 103,
     "Early Hints", 1, EDDY_HTTP_BODY_NONE, 0, true},
    {"101 switching protocols",
     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 1,
     101, "Switching Protocols", 2, EDDY_HTTP_BODY_NONE, 0, true},
    {"204 no content", "HTTP/1.1 204 No Content\r\n\r\n", 1, 204, "No Content", 0,
     EDDY_HTTP_BODY_NONE, 0, true},
    {"304 with the representation's length",
     "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", 1, 304, "Not Modified", 1,
     EDDY_HTTP_BODY_NONE, 100, true},
    {"a three-digit status eddy has no name for", "HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n",
     1, 999, "Odd", 1, EDDY_HTTP_BODY_LENGTH, 0, true},
    {"duplicate content-length that agrees",
     "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 1, 200, "OK", 2,
     EDDY_HTTP_BODY_LENGTH, 3, true},
    {"a python http.server head",
     "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\nDate: Sun, 22 Nov 2026 05:00:00 "
     "GMT\r\nContent-type: text/html\r\nContent-Length: 44\r\nLast-Modified: Sun, 22 Nov 2026 "
     "04:00:00 GMT\r\n\r\n",
     0, 200, "OK", 5, EDDY_HTTP_BODY_LENGTH, 44, false},
};

static void check_valid_resp(const struct resp_case *c, struct guard *g, struct text *scalar_sum,
                             bool is_scalar)
{
    const char *impl = eddy__http_scanner()->name;
    size_t len = strlen(c->text);
    struct eddy_http_header hdrs[MAX_FIELDS];
    struct eddy_http_response r;
    const char *buf = guard_put(g, c->text, len);
    int rc = eddy_http_parse_response(buf, len, &r, hdrs, MAX_FIELDS, NULL);
    cr_assert_eq(rc, (int)len, "%s [%s]: rc %d (%s)", c->name, impl, rc, eddy_strerror(rc));
    cr_expect_eq(r.version_minor, c->minor, "%s [%s]", c->name, impl);
    cr_expect_eq(r.status, c->status, "%s [%s]", c->name, impl);
    cr_expect(view_is(r.reason, r.reason_len, c->reason), "%s [%s]: reason '%.*s'", c->name, impl,
              (int)r.reason_len, r.reason);
    cr_expect_eq(r.nheaders, c->nheaders, "%s [%s]", c->name, impl);
    cr_expect_eq(r.body, c->body, "%s [%s]: body %d", c->name, impl, (int)r.body);
    cr_expect_eq(r.content_length, c->content_length, "%s [%s]", c->name, impl);
    cr_expect_eq(r.keep_alive, c->keep_alive, "%s [%s]: keep_alive", c->name, impl);
    struct text sum;
    resp_summary(&sum, buf, rc, &r);
    if (is_scalar)
        *scalar_sum = sum;
    else
        cr_expect_str_eq(sum.s, scalar_sum->s, "%s: %s and scalar disagree", c->name, impl);
    for (size_t n = 0; n < len; n++) {
        buf = guard_put(g, c->text, n);
        int prc = eddy_http_parse_response(buf, n, &r, hdrs, MAX_FIELDS, NULL);
        cr_assert_eq(prc, -EAGAIN, "%s [%s]: the %zu-byte prefix gives %d", c->name, impl, n, prc);
    }
}

EDDY_TEST(http_parse, valid_responses_parse_under_every_scanner)
{
    struct guard g;
    guard_init(&g, TABLE_INPUT_MAX);
    static struct text sums[ARRAY_LEN(valid_resps)];
    for (size_t k = 0; k < ARRAY_LEN(impls); k++) {
        if (!use_impl(k))
            continue;
        for (size_t i = 0; i < ARRAY_LEN(valid_resps); i++)
            check_valid_resp(&valid_resps[i], &g, &sums[i], k == 0);
    }
    guard_fini(&g);
}

struct bad_resp {
    const char *name;
    const char *text;
    size_t len;
    int rc;
};

#define R200 "HTTP/1.1 200 OK\r\n"

static const struct bad_resp bad_resps[] = {
    {"a two-digit status", T("HTTP/1.1 20 OK\r\n\r\n"), -EBADMSG},
    {"a four-digit status", T("HTTP/1.1 2000 OK\r\n\r\n"), -EBADMSG},
    {"a status below 100", T("HTTP/1.1 099 Low\r\n\r\n"), -EBADMSG},
    {"a letter in the status", T("HTTP/1.1 2O0 OK\r\n\r\n"), -EBADMSG},
    {"two spaces before the status", T("HTTP/1.1  200 OK\r\n\r\n"), -EBADMSG},
    {"http/2.0", T("HTTP/2.0 200 OK\r\n\r\n"), -EBADMSG},
    {"http/1.2", T("HTTP/1.2 200 OK\r\n\r\n"), -EBADMSG},
    {"lower-case protocol", T("http/1.1 200 OK\r\n\r\n"), -EBADMSG},
    {"no status", T("HTTP/1.1\r\n\r\n"), -EBADMSG},
    {"bare LF after the status line", T("HTTP/1.1 200 OK\n\r\n"), -EBADMSG},
    {"a control in the reason", T("HTTP/1.1 200 O\x01K\r\n\r\n"), -EBADMSG},
    {"NUL in the reason", T("HTTP/1.1 200 O\0K\r\n\r\n"), -EBADMSG},
    {"bare LF in a field", T(R200 "X: a\nContent-Length: 0\r\n\r\n"), -EBADMSG},
    {"obs-fold", T(R200 "X: a\r\n b\r\n\r\n"), -EBADMSG},
    {"a space before the colon", T(R200 "Content-Length : 0\r\n\r\n"), -EBADMSG},
    {"content-length with transfer-encoding",
     T(R200 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), -EBADMSG},
    {"a bad content-length", T(R200 "Content-Length: abc\r\n\r\n"), -EBADMSG},
    {"duplicate content-length that differs",
     T(R200 "Content-Length: 5\r\nContent-Length: 50\r\n\r\n"), -EBADMSG},
    {"content-length of 2^64", T(R200 "Content-Length: 18446744073709551616\r\n\r\n"), -EBADMSG},
    {"gzip then chunked", T(R200 "Transfer-Encoding: gzip, chunked\r\n\r\n"), -EBADMSG},
    {"chunked then gzip", T(R200 "Transfer-Encoding: chunked, gzip\r\n\r\n"), -EBADMSG},
    {"chunked twice", T(R200 "Transfer-Encoding: chunked, chunked\r\n\r\n"), -EBADMSG},
    {"chunked in http/1.0", T("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), -EBADMSG},
    {"a bad content-length on a 304", T("HTTP/1.1 304 NM\r\nContent-Length: x\r\n\r\n"), -EBADMSG},
};

EDDY_TEST(http_parse, invalid_responses_are_ebadmsg_under_every_scanner)
{
    struct guard g;
    guard_init(&g, TABLE_INPUT_MAX);
    for (size_t k = 0; k < ARRAY_LEN(impls); k++) {
        if (!use_impl(k))
            continue;
        for (size_t i = 0; i < ARRAY_LEN(bad_resps); i++) {
            const struct bad_resp *c = &bad_resps[i];
            struct eddy_http_header hdrs[MAX_FIELDS];
            struct eddy_http_response r;
            const char *buf = guard_put(&g, c->text, c->len);
            int rc = eddy_http_parse_response(buf, c->len, &r, hdrs, MAX_FIELDS, NULL);
            cr_expect_eq(rc, c->rc, "%s [%s]: %d", c->name, impls[k], rc);
            for (size_t n = 0; n < c->len; n++) {
                buf = guard_put(&g, c->text, n);
                int prc = eddy_http_parse_response(buf, n, &r, hdrs, MAX_FIELDS, NULL);
                cr_assert(prc == -EAGAIN || prc == c->rc, "%s [%s]: the %zu-byte prefix gives %d",
                          c->name, impls[k], n, prc);
            }
        }
    }
    guard_fini(&g);
}

EDDY_TEST(http_parse, response_limits_are_emsgsize)
{
    struct guard g;
    guard_init(&g, 8192);
    char text[4096];
    struct eddy_http_header hdrs[8];
    struct eddy_http_response r;
    /* More fields than the array holds. */
    int n = snprintf(text, sizeof(text), R200 "A: 1\r\nB: 2\r\nC: 3\r\n\r\n");
    const char *buf = guard_put(&g, text, (size_t)n);
    cr_expect_eq(eddy_http_parse_response(buf, (size_t)n, &r, hdrs, 3, NULL), n);
    cr_expect_eq(eddy_http_parse_response(buf, (size_t)n, &r, hdrs, 2, NULL), -EMSGSIZE);
    /* A head above max_header_bytes, complete or not. */
    struct eddy_http_limits l = {.max_header_bytes = (size_t)n};
    cr_expect_eq(eddy_http_parse_response(buf, (size_t)n, &r, hdrs, 8, &l), n);
    l.max_header_bytes = (size_t)n - 1;
    cr_expect_eq(eddy_http_parse_response(buf, (size_t)n, &r, hdrs, 8, &l), -EMSGSIZE);
    buf = guard_put(&g, text, (size_t)n - 1);
    cr_expect_eq(eddy_http_parse_response(buf, (size_t)n - 1, &r, hdrs, 8, &l), -EMSGSIZE);
    cr_expect_eq(eddy_http_parse_response(buf, (size_t)n - 2, &r, hdrs, 8, &l), -EAGAIN);
    /* A status line above max_request_line_bytes. */
    n = snprintf(text, sizeof(text), "HTTP/1.1 200 %0100d\r\n\r\n", 0);
    buf = guard_put(&g, text, (size_t)n);
    l = (struct eddy_http_limits){.max_request_line_bytes = 115};
    cr_expect_eq(eddy_http_parse_response(buf, (size_t)n, &r, hdrs, 8, &l), n);
    l.max_request_line_bytes = 114;
    cr_expect_eq(eddy_http_parse_response(buf, (size_t)n, &r, hdrs, 8, &l), -EMSGSIZE);
    guard_fini(&g);
}

/* ---- chunked bodies ------------------------------------------------------------------ */

struct chunk_case {
    const char *name;
    const char *text;
    size_t len;
    const char *body;
    size_t body_len;
    const char *rest; /* what follows the body */
    size_t rest_len;
};

#define C(name, in, out, rest)                                                                     \
    {                                                                                              \
        name, T(in), T(out), T(rest)                                                               \
    }

static const struct chunk_case valid_chunks[] = {
    C("one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", ""),
    C("two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", ""),
    C("an empty body", "0\r\n\r\n", "", ""),
    C("hex sizes in both cases", "A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
      "0123456789abcdefghij", ""),
    C("leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", ""),
    C("CRLF inside the data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n", ""),
    C("NUL and high bytes in the data", "4\r\n\0\xff\x80\n\r\n0\r\n\r\n", "\0\xff\x80\n", ""),
    C("extensions", "5;name=value\r\nhello\r\n0;last;q=\"a;b\\\"c\"\r\n\r\n", "hello", ""),
    C("whitespace before an extension", "5 \t;a\r\nhello\r\n0\t;b=1\r\n\r\n", "hello", ""),
    C("trailers", "3\r\nabc\r\n0\r\nX-Checksum: 900150983cd2\r\nY:\r\nZ:\tv v \r\n\r\n", "abc", ""),
    C("the next request follows", "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "abc",
      "GET / HTTP/1.1\r\n"),
    C("the next request follows trailers", "0\r\nT: 1\r\n\r\nXY", "", "XY"),
    C("a large chunk",
      "40\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n"
      "0\r\n\r\n",
      "0123456789012345678901234567890123456789012345678901234567890123", ""),
};

/* Feeds text to a fresh decoder in pieces cut at the given offsets (a
 * sorted list ending with len), each piece flush against the guard page;
 * collects the body and what followed it. Returns the last result. */
static ssize_t feed_chunks(struct guard *g, const char *text, size_t len, const size_t *cuts,
                           size_t ncuts, uint64_t max, char *body, size_t *body_len, char *rest,
                           size_t *rest_len)
{
    struct eddy_http_chunked c;
    eddy_http_chunked_init(&c, max);
    size_t from = 0;
    ssize_t rc = -EAGAIN;
    *body_len = *rest_len = 0;
    for (size_t i = 0; i < ncuts && rc == -EAGAIN; i++) {
        size_t n = cuts[i] - from;
        char *buf = guard_put(g, text + from, n);
        size_t got = n;
        rc = eddy_http_chunked_decode(&c, buf, &got);
        cr_assert_leq(got, n);
        memcpy(body + *body_len, buf, got);
        *body_len += got;
        if (rc >= 0) {
            cr_assert_leq(got + (size_t)rc, n);
            memcpy(rest, buf + got, (size_t)rc);
            *rest_len = (size_t)rc;
            /* What comes after the end belongs to the next message. */
            *rest_len += len - cuts[i];
            memcpy(rest + rc, text + cuts[i], len - cuts[i]);
        }
        from = cuts[i];
    }
    return rc;
}

EDDY_TEST(http_parse, chunked_bodies_decode_whole_split_and_byte_by_byte)
{
    struct guard g;
    guard_init(&g, 4096);
    char body[512], rest[512];
    size_t body_len, rest_len;
    size_t cuts[512];
    for (size_t i = 0; i < ARRAY_LEN(valid_chunks); i++) {
        const struct chunk_case *c = &valid_chunks[i];
        /* whole */
        cuts[0] = c->len;
        ssize_t rc = feed_chunks(&g, c->text, c->len, cuts, 1, 0, body, &body_len, rest, &rest_len);
        cr_assert_eq(rc, (ssize_t)c->rest_len, "%s: whole gives %zd", c->name, rc);
        cr_expect(body_len == c->body_len && memcmp(body, c->body, body_len) == 0, "%s: body",
                  c->name);
        cr_expect(rest_len == c->rest_len && memcmp(rest, c->rest, rest_len) == 0, "%s: rest",
                  c->name);
        /* in two at every byte */
        for (size_t at = 0; at <= c->len; at++) {
            cuts[0] = at;
            cuts[1] = c->len;
            rc = feed_chunks(&g, c->text, c->len, cuts, 2, 0, body, &body_len, rest, &rest_len);
            cr_assert_geq(rc, 0, "%s: cut at %zu gives %zd", c->name, at, rc);
            cr_expect(body_len == c->body_len && memcmp(body, c->body, body_len) == 0,
                      "%s: cut at %zu: body", c->name, at);
            cr_expect(rest_len == c->rest_len && memcmp(rest, c->rest, rest_len) == 0,
                      "%s: cut at %zu: rest", c->name, at);
        }
        /* one byte at a time */
        for (size_t at = 0; at < c->len; at++)
            cuts[at] = at + 1;
        rc = feed_chunks(&g, c->text, c->len, cuts, c->len, 0, body, &body_len, rest, &rest_len);
        cr_assert_geq(rc, 0, "%s: byte by byte gives %zd", c->name, rc);
        cr_expect(body_len == c->body_len && memcmp(body, c->body, body_len) == 0,
                  "%s: byte by byte: body", c->name);
        cr_expect(rest_len == c->rest_len && memcmp(rest, c->rest, rest_len) == 0,
                  "%s: byte by byte: rest", c->name);
        /* every proper prefix wants more */
        for (size_t n = 0; n < c->len - c->rest_len; n++) {
            cuts[0] = n;
            rc = feed_chunks(&g, c->text, n, cuts, 1, 0, body, &body_len, rest, &rest_len);
            cr_assert_eq(rc, -EAGAIN, "%s: the %zu-byte prefix gives %zd", c->name, n, rc);
        }
    }
    guard_fini(&g);
}

struct bad_chunk {
    const char *name;
    const char *text;
    size_t len;
    ssize_t rc;
};

static const struct bad_chunk bad_chunks[] = {
    {"no size", T("\r\n"), -EBADMSG},
    {"a size that is not hex", T("g\r\n"), -EBADMSG},
    {"a minus sign", T("-5\r\nhello\r\n0\r\n\r\n"), -EBADMSG},
    {"a plus sign", T("+5\r\nhello\r\n0\r\n\r\n"), -EBADMSG},
    {"a 0x prefix", T("0x5\r\nhello\r\n0\r\n\r\n"), -EBADMSG},
    {"whitespace before the size", T(" 5\r\nhello\r\n0\r\n\r\n"), -EBADMSG},
    {"whitespace after the size without an extension", T("5 \r\nhello\r\n0\r\n\r\n"), -EBADMSG},
    {"a bare LF after the size", T("5\nhello\r\n0\r\n\r\n"), -EBADMSG},
    {"CR without LF after the size", T("5\rhello\r\n0\r\n\r\n"), -EBADMSG},
    {"a size of 2^64", T("10000000000000000\r\n"), -EBADMSG},
    {"a size of 17 hex digits", T("FFFFFFFFFFFFFFFFF\r\n"), -EBADMSG},
    {"data longer than its size", T("5\r\nhelloX\r\n0\r\n\r\n"), -EBADMSG},
    {"data shorter than its size", T("5\r\nhell\r\n0\r\n\r\n"), -EBADMSG},
    {"a bare LF after the data", T("5\r\nhello\n0\r\n\r\n"), -EBADMSG},
    {"a control in an extension", T("5;a\x01\r\nhello\r\n0\r\n\r\n"), -EBADMSG},
    {"a bare LF in an extension", T("5;a\nb\r\nhello\r\n0\r\n\r\n"), -EBADMSG},
    {"a CR inside an extension", T("5;a\rb\r\nhello\r\n0\r\n\r\n"), -EBADMSG},
    {"a bare LF after a trailer", T("0\r\nX: y\n\r\n"), -EBADMSG},
    {"a folded trailer", T("0\r\nX: y\r\n z\r\n\r\n"), -EBADMSG},
    {"a trailer without a colon", T("0\r\nX\r\n\r\n"), -EBADMSG},
    {"a space before a trailer colon", T("0\r\nX : y\r\n\r\n"), -EBADMSG},
    {"an empty trailer name", T("0\r\n: y\r\n\r\n"), -EBADMSG},
    {"a control in a trailer value", T("0\r\nX: \x7f\r\n\r\n"), -EBADMSG},
    {"a bare LF ending the body", T("0\r\n\n"), -EBADMSG},
    {"CR CR ending the body", T("0\r\n\r\r"), -EBADMSG},
};

EDDY_TEST(http_parse, malformed_chunked_bodies_are_ebadmsg_however_they_are_cut)
{
    struct guard g;
    guard_init(&g, 4096);
    char body[512], rest[512];
    size_t body_len, rest_len;
    size_t cuts[512];
    for (size_t i = 0; i < ARRAY_LEN(bad_chunks); i++) {
        const struct bad_chunk *c = &bad_chunks[i];
        cuts[0] = c->len;
        ssize_t rc = feed_chunks(&g, c->text, c->len, cuts, 1, 0, body, &body_len, rest, &rest_len);
        cr_expect_eq(rc, c->rc, "%s: whole gives %zd", c->name, rc);
        for (size_t at = 0; at <= c->len; at++) {
            cuts[0] = at;
            cuts[1] = c->len;
            rc = feed_chunks(&g, c->text, c->len, cuts, 2, 0, body, &body_len, rest, &rest_len);
            cr_expect_eq(rc, c->rc, "%s: cut at %zu gives %zd", c->name, at, rc);
        }
        for (size_t at = 0; at < c->len; at++)
            cuts[at] = at + 1;
        rc = feed_chunks(&g, c->text, c->len, cuts, c->len, 0, body, &body_len, rest, &rest_len);
        cr_expect_eq(rc, c->rc, "%s: byte by byte gives %zd", c->name, rc);
    }
    guard_fini(&g);
}

EDDY_TEST(http_parse, chunked_limits_are_emsgsize)
{
    struct guard g;
    guard_init(&g, 32 * 1024);
    char *text = malloc(32 * 1024);
    char body[512], rest[512];
    size_t body_len, rest_len, cut;
    /* The body limit is checked against each size line, before the data. */
    const char *ok = "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
    cut = strlen(ok);
    cr_expect_eq(feed_chunks(&g, ok, cut, &cut, 1, 10, body, &body_len, rest, &rest_len), 0);
    cr_expect_eq(feed_chunks(&g, ok, cut, &cut, 1, 9, body, &body_len, rest, &rest_len), -EMSGSIZE);
    cr_expect_eq(body_len, 5u, "the first chunk was within the limit");
    cut = 3;
    cr_expect_eq(feed_chunks(&g, "6\r\n", 3, &cut, 1, 5, body, &body_len, rest, &rest_len),
                 -EMSGSIZE);
    /* A size line of 4 KiB at most, extensions and CRLF included. */
    size_t n = (size_t)sprintf(text, "5;");
    memset(text + n, 'e', 4096 - 2 - 2);
    n += 4096 - 2 - 2;
    n += (size_t)sprintf(text + n, "\r\nhello\r\n0\r\n\r\n");
    cr_expect_eq(feed_chunks(&g, text, n, &n, 1, 0, body, &body_len, rest, &rest_len), 0);
    memmove(text + 1, text, n);
    text[0] = '0'; /* one more byte: a leading zero */
    n++;
    cr_expect_eq(feed_chunks(&g, text, n, &n, 1, 0, body, &body_len, rest, &rest_len), -EMSGSIZE);
    /* Leading zeros count too. */
    memset(text, '0', 5000);
    n = 5000;
    cr_expect_eq(feed_chunks(&g, text, n, &n, 1, 0, body, &body_len, rest, &rest_len), -EMSGSIZE);
    /* Trailers: 8 KiB at most, the final CRLF included. */
    n = (size_t)sprintf(text, "0\r\nX: ");
    memset(text + n, 't', 8192 - 3 - 4);
    n += 8192 - 3 - 4;
    n += (size_t)sprintf(text + n, "\r\n\r\n");
    cr_expect_eq(feed_chunks(&g, text, n, &n, 1, 0, body, &body_len, rest, &rest_len), 0);
    memmove(text + 4, text + 3, n - 3);
    text[3] = 'Y';
    n++;
    cr_expect_eq(feed_chunks(&g, text, n, &n, 1, 0, body, &body_len, rest, &rest_len), -EMSGSIZE);
    free(text);
    guard_fini(&g);
}

EDDY_TEST(http_parse, chunked_sizes_that_add_past_64_bits_are_ebadmsg)
{
    /* 2^64 bytes cannot be fed; start the decoder as if they had been. */
    struct eddy_http_chunked c;
    eddy_http_chunked_init(&c, 0);
    c._total = UINT64_MAX - 2;
    char in[] = "2\r\nab\r\n3\r\n";
    size_t len = strlen(in);
    cr_expect_eq(eddy_http_chunked_decode(&c, in, &len), -EBADMSG);
    cr_expect_eq(len, 2u);
    cr_expect_eq(memcmp(in, "ab", 2), 0);
}

EDDY_TEST(http_parse, chunked_decoder_errors_stick_and_the_end_leaves_everything)
{
    struct eddy_http_chunked c;
    eddy_http_chunked_init(&c, 0);
    char bad[] = "zz";
    size_t len = 2;
    cr_expect_eq(eddy_http_chunked_decode(&c, bad, &len), -EBADMSG);
    char good[] = "0\r\n\r\n";
    len = 5;
    cr_expect_eq(eddy_http_chunked_decode(&c, good, &len), -EBADMSG);
    cr_expect_eq(len, 0u);

    eddy_http_chunked_init(&c, 1);
    char big[] = "2\r\nab";
    len = 5;
    cr_expect_eq(eddy_http_chunked_decode(&c, big, &len), -EMSGSIZE);
    len = 5;
    cr_expect_eq(eddy_http_chunked_decode(&c, good, &len), -EMSGSIZE);

    /* After the last chunk, every byte belongs to what follows. */
    eddy_http_chunked_init(&c, 0);
    len = 5;
    cr_expect_eq(eddy_http_chunked_decode(&c, good, &len), 0);
    cr_expect_eq(len, 0u);
    char next[] = "GET /";
    len = 5;
    cr_expect_eq(eddy_http_chunked_decode(&c, next, &len), 5);
    cr_expect_eq(len, 0u);
    cr_expect_eq(memcmp(next, "GET /", 5), 0);
    /* A zeroed struct is a decoder without a limit. */
    struct eddy_http_chunked z = {0};
    char one[] = "1\r\nx\r\n0\r\n\r\n";
    len = strlen(one);
    cr_expect_eq(eddy_http_chunked_decode(&z, one, &len), 0);
    cr_expect_eq(len, 1u);
    cr_expect_eq(one[0], 'x');
}

/* ---- names ------------------------------------------------------------------------ */

EDDY_TEST(http_parse, method_names_round_trip)
{
    for (int m = EDDY_HTTP_GET; m <= EDDY_HTTP_CONNECT; m++) {
        const char *name = eddy_http_method_name((enum eddy_http_method)m);
        cr_assert_gt(strlen(name), 2u);
        char text[64];
        int n = snprintf(text, sizeof(text), "%s %s HTTP/1.1\r\nHost: h\r\n\r\n", name,
                         m == EDDY_HTTP_CONNECT ? "h:1" : "/");
        struct eddy_http_header h[2];
        struct eddy_http_request r;
        cr_expect_eq(eddy_http_parse_request(text, (size_t)n, &r, h, 2, NULL), n, "%s", name);
        cr_expect_eq((int)r.method, m, "%s", name);
    }
    cr_expect_str_eq(eddy_http_method_name(EDDY_HTTP_OTHER), "");
    cr_expect_str_eq(eddy_http_method_name((enum eddy_http_method)99), "");
}

EDDY_TEST(http_parse, status_reasons_are_the_standard_phrases)
{
    cr_expect_str_eq(eddy_http_status_reason(200), "OK");
    cr_expect_str_eq(eddy_http_status_reason(404), "Not Found");
    cr_expect_str_eq(eddy_http_status_reason(413), "Content Too Large");
    cr_expect_str_eq(eddy_http_status_reason(414), "URI Too Long");
    cr_expect_str_eq(eddy_http_status_reason(431), "Request Header Fields Too Large");
    cr_expect_str_eq(eddy_http_status_reason(501), "Not Implemented");
    cr_expect_str_eq(eddy_http_status_reason(505), "HTTP Version Not Supported");
    cr_expect_str_eq(eddy_http_status_reason(100), "Continue");
    cr_expect_str_eq(eddy_http_status_reason(0), "");
    cr_expect_str_eq(eddy_http_status_reason(299), "");
    cr_expect_str_eq(eddy_http_status_reason(1000), "");
    /* Exactly the registered codes have a phrase. */
    static const unsigned named[] = {
        100, 101, 103, 200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304, 305, 307,
        308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
        416, 417, 421, 422, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 511};
    size_t k = 0;
    for (unsigned st = 0; st < 1000; st++) {
        bool want = k < ARRAY_LEN(named) && named[k] == st;
        k += want;
        cr_expect_eq(eddy_http_status_reason(st)[0] != '\0', want, "status %u", st);
    }
    cr_expect_str_eq(eddy_http_status_reason(308), "Permanent Redirect");
    cr_expect_str_eq(eddy_http_status_reason(511), "Network Authentication Required");
    /* Every status the parser answers with has a phrase. */
    static const unsigned parser_statuses[] = {400, 413, 414, 431, 501, 505};
    for (size_t i = 0; i < ARRAY_LEN(parser_statuses); i++)
        cr_expect_gt(strlen(eddy_http_status_reason(parser_statuses[i])), 0u);
}

EDDY_TEST(http_parse, header_find_ignores_case_and_takes_the_first)
{
    struct eddy_http_header h[] = {
        {"Host", 4, "a", 1},
        {"X-Multi", 7, "1", 1},
        {"x-multi", 7, "2", 1},
        {"X-Multi-Long", 12, "3", 1},
    };
    cr_expect_eq(eddy_http_header_find(h, 4, "host", 4), 0);
    cr_expect_eq(eddy_http_header_find(h, 4, "X-MULTI", 7), 1);
    cr_expect_eq(eddy_http_header_find(h, 4, "x-multi-long", 12), 3);
    cr_expect_eq(eddy_http_header_find(h, 4, "x-mult", 6), -ENOENT);
    cr_expect_eq(eddy_http_header_find(h, 1, "x-multi", 7), -ENOENT);
    cr_expect_eq(eddy_http_header_find(h, 0, "host", 4), -ENOENT);
    /* The caller's name need not be a token: '@' is not a folded '`'. */
    struct eddy_http_header odd[] = {{"`", 1, "v", 1}};
    cr_expect_eq(eddy_http_header_find(odd, 1, "@", 1), -ENOENT);
    cr_expect_eq(eddy_http_header_find(odd, 1, "`", 1), 0);
}

/* ---- real peers ---------------------------------------------------------------------- */

/* How long a peer may take for one step; generous for `make valgrind`. */
#define PEER_TIMEOUT_MS 30000
#define PEER_BUF_BYTES (256 * 1024)

static int listen_loopback(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(fd, 4), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Waits until fd is readable; fails the test after PEER_TIMEOUT_MS. */
static void wait_readable(int fd, const char *what)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, PEER_TIMEOUT_MS);
    cr_assert_eq(n, 1, "%s: nothing within %d ms", what, PEER_TIMEOUT_MS);
}

/* Starts argv[0] with stdin from in_fd (-1: /dev/null) and stdout to
 * out_fd (-1: /dev/null). The child dies with the test's process, so a
 * failed test leaves no peer behind. */
static pid_t spawn(const char *const argv[], int in_fd, int out_fd)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        dup2(in_fd >= 0 ? in_fd : null, 0);
        dup2(out_fd >= 0 ? out_fd : null, 1);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static void expect_exit_0(pid_t pid, const char *what)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s ended with status %#x", what, st);
}

static bool have_program(const char *name)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

/* One request as a server reads it: head parsed by eddy, body decoded. */
struct peer_request {
    char raw[PEER_BUF_BYTES];
    size_t raw_len;
    int head_len;
    struct eddy_http_request req;
    struct eddy_http_header hdrs[32];
    char body[PEER_BUF_BYTES];
    size_t body_len;
};

static void read_more(int fd, char *buf, size_t *len, size_t cap, const char *what)
{
    cr_assert_lt(*len, cap, "%s: more than %zu bytes", what, cap);
    wait_readable(fd, what);
    ssize_t n = read(fd, buf + *len, cap - *len);
    cr_assert_gt(n, 0, "%s: the peer closed or failed (%zd)", what, n);
    *len += (size_t)n;
}

/* Reads a request from fd with eddy's parser and decoder, answering 100
 * Continue when the client waits for it, then answers 200 and closes. */
static void serve_one(int lfd, struct peer_request *p)
{
    wait_readable(lfd, "accept");
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    cr_assert_geq(fd, 0);
    p->raw_len = 0;
    for (;;) {
        read_more(fd, p->raw, &p->raw_len, sizeof(p->raw), "request head");
        p->head_len = eddy_http_parse_request(p->raw, p->raw_len, &p->req, p->hdrs, 32, NULL);
        if (p->head_len != -EAGAIN)
            break;
    }
    cr_assert_gt(p->head_len, 0, "head: %d, status %u: %.*s", p->head_len, p->req.status,
                 (int)p->raw_len, p->raw);
    if (p->req.expect_continue) {
        const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
        cr_assert_eq(write(fd, cont, strlen(cont)), (ssize_t)strlen(cont));
    }
    size_t have = p->raw_len - (size_t)p->head_len;
    memcpy(p->body, p->raw + p->head_len, have);
    p->body_len = 0;
    if (p->req.body == EDDY_HTTP_BODY_LENGTH) {
        p->body_len = have;
        while (p->body_len < p->req.content_length)
            read_more(fd, p->body, &p->body_len, sizeof(p->body), "request body");
    } else if (p->req.body == EDDY_HTTP_BODY_CHUNKED) {
        /* Decode in place as the bytes come: p->body[0, body_len) is
         * decoded, the bytes behind it are still to decode. */
        struct eddy_http_chunked c;
        eddy_http_chunked_init(&c, sizeof(p->body));
        size_t fresh = have;
        for (;;) {
            size_t n = fresh;
            ssize_t rc = eddy_http_chunked_decode(&c, p->body + p->body_len, &n);
            p->body_len += n;
            if (rc >= 0) {
                cr_expect_eq(rc, 0, "bytes after the body");
                break;
            }
            cr_assert_eq(rc, -EAGAIN, "chunked body: %s", eddy_strerror((int)rc));
            size_t before = p->body_len;
            read_more(fd, p->body, &p->body_len, sizeof(p->body), "chunked body");
            fresh = p->body_len - before;
            p->body_len = before;
        }
    }
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    cr_assert_eq(write(fd, ok, strlen(ok)), (ssize_t)strlen(ok));
    close(fd);
}

static const char *field(const struct peer_request *p, const char *name)
{
    static char value[512];
    const struct eddy_http_header *h = header(p->hdrs, p->req.nheaders, name);
    if (!h)
        return NULL;
    snprintf(value, sizeof(value), "%.*s", (int)h->value_len, h->value);
    return value;
}

EDDY_TEST(http_parse, requests_from_curl_parse)
{
    if (!have_program("curl"))
        cr_skip_test("curl is not installed");
    uint16_t port;
    int lfd = listen_loopback(&port);
    static struct peer_request p;
    char url[128], host[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hello/w%%C3%%B6rld?x=1&y=2", port);
    snprintf(host, sizeof(host), "127.0.0.1:%u", port);

    const char *get[] = {"curl", "-sS", "-o", "/dev/null", "-H", "X-Test:  a b ", url, NULL};
    pid_t pid = spawn(get, -1, -1);
    serve_one(lfd, &p);
    expect_exit_0(pid, "curl");
    cr_expect_eq(p.req.method, EDDY_HTTP_GET);
    cr_expect(view_is(p.req.path, p.req.path_len, "/hello/w%C3%B6rld"));
    cr_expect(view_is(p.req.query, p.req.query_len, "x=1&y=2"));
    cr_expect(view_is(p.req.host, p.req.host_len, host));
    cr_expect_eq(p.req.version_minor, 1);
    cr_expect(p.req.keep_alive);
    cr_expect_eq(p.req.body, EDDY_HTTP_BODY_NONE);
    cr_expect_str_eq(field(&p, "x-test"), "a b");
    cr_expect(strncmp(field(&p, "User-Agent"), "curl/", 5) == 0);

    const char *old[] = {"curl", "-sS", "--http1.0", "-o", "/dev/null", url, NULL};
    pid = spawn(old, -1, -1);
    serve_one(lfd, &p);
    expect_exit_0(pid, "curl --http1.0");
    cr_expect_eq(p.req.version_minor, 0);
    cr_expect_eq(p.req.keep_alive, field(&p, "connection") != NULL &&
                                       strcasecmp(field(&p, "connection"), "keep-alive") == 0);

    /* A chunked upload from stdin: curl sends Expect: 100-continue and
     * waits for the 100 (a second) before the body. */
    int in[2];
    cr_assert_eq(pipe2(in, O_CLOEXEC), 0); /* curl must not hold the write end */
    const char *put[] = {"curl", "-sS", "-T", "-", "-o", "/dev/null", url, NULL};
    pid = spawn(put, in[0], -1);
    close(in[0]);
    static char data[100000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7 + i / 256);
    cr_assert_eq(write(in[1], data, sizeof(data)), (ssize_t)sizeof(data));
    close(in[1]);
    serve_one(lfd, &p);
    expect_exit_0(pid, "curl -T -");
    cr_expect_eq(p.req.method, EDDY_HTTP_PUT);
    cr_expect_eq(p.req.body, EDDY_HTTP_BODY_CHUNKED);
    cr_expect(p.req.expect_continue);
    cr_assert_eq(p.body_len, sizeof(data));
    cr_expect_eq(memcmp(p.body, data, sizeof(data)), 0);
    close(lfd);
}

EDDY_TEST(http_parse, requests_from_python_http_client_parse)
{
    uint16_t port;
    int lfd = listen_loopback(&port);
    static struct peer_request p;
    char script[1024];
    snprintf(script, sizeof(script),
             "import http.client\n"
             "c = http.client.HTTPConnection('127.0.0.1', %u, timeout=30)\n"
             "def gen():\n"
             "    yield b'hello, '\n"
             "    yield b''\n"
             "    yield b'chunked ' * 1000\n"
             "    yield b'world'\n"
             "c.request('POST', '/upload?kind=stream', body=gen(),\n"
             "          headers={'X-Multi': 'one', 'Content-Type': 'text/plain'})\n"
             "r = c.getresponse(); assert r.status == 200 and r.read() == b'ok'\n",
             port);
    const char *py[] = {"python3", "-c", script, NULL};
    pid_t pid = spawn(py, -1, -1);
    serve_one(lfd, &p);
    expect_exit_0(pid, "python3 http.client");
    cr_expect_eq(p.req.method, EDDY_HTTP_POST);
    cr_expect(view_is(p.req.path, p.req.path_len, "/upload"));
    cr_expect(view_is(p.req.query, p.req.query_len, "kind=stream"));
    cr_expect_eq(p.req.body, EDDY_HTTP_BODY_CHUNKED);
    cr_expect_str_eq(field(&p, "x-multi"), "one");
    cr_assert_eq(p.body_len, 7 + 8000 + 5);
    cr_expect_eq(memcmp(p.body, "hello, chunked ", 15), 0);
    cr_expect_eq(memcmp(p.body + p.body_len - 13, "chunked world", 13), 0);

    snprintf(script, sizeof(script),
             "import http.client\n"
             "c = http.client.HTTPConnection('127.0.0.1', %u, timeout=30)\n"
             "c.request('PUT', '/f', body=b'x' * 5000, headers={'Expect': '100-continue'})\n"
             "r = c.getresponse(); assert r.status == 200\n",
             port);
    pid = spawn(py, -1, -1);
    serve_one(lfd, &p);
    expect_exit_0(pid, "python3 http.client");
    cr_expect_eq(p.req.method, EDDY_HTTP_PUT);
    cr_expect_eq(p.req.body, EDDY_HTTP_BODY_LENGTH);
    cr_expect_eq(p.req.content_length, 5000u);
    cr_expect(p.req.expect_continue);
    cr_expect_eq(p.body_len, 5000u);
    close(lfd);
}

/* python3's http.server answers GET /length, /chunked and /close (an
 * HTTP/1.0 answer ended by closing). */
static const char py_server[] =
    "import http.server, sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a): pass\n"
    "    def do_GET(self):\n"
    "        if self.path == '/close':\n"
    "            self.protocol_version = 'HTTP/1.0'\n"
    "            self.send_response(200, 'Fine')\n"
    "            self.end_headers()\n"
    "            self.wfile.write(b'until close')\n"
    "            self.close_connection = True\n"
    "            return\n"
    "        self.send_response(200)\n"
    "        self.send_header('Content-Type', 'text/plain')\n"
    "        if self.path == '/chunked':\n"
    "            self.send_header('Transfer-Encoding', 'chunked')\n"
    "            self.end_headers()\n"
    "            for part in (b'Mozilla', b'Developer' * 500, b'Network'):\n"
    "                self.wfile.write(b'%x;n=1\\r\\n%s\\r\\n' % (len(part), part))\n"
    "            self.wfile.write(b'0\\r\\nX-Trailer: t\\r\\n\\r\\n')\n"
    "        else:\n"
    "            self.send_header('Content-Length', '13')\n"
    "            self.end_headers()\n"
    "            self.wfile.write(b'Hello, World!')\n"
    "s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
    "print(s.server_address[1], flush=True)\n"
    "for i in range(3): s.handle_request()\n";

/* Sends GET path to port and reads the whole answer until the server closes. */
static size_t fetch(uint16_t port, const char *path, char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[256];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    size_t len = 0;
    for (;;) {
        cr_assert_lt(len, cap);
        wait_readable(fd, path);
        ssize_t got = read(fd, buf + len, cap - len);
        cr_assert_geq(got, 0);
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    return len;
}

EDDY_TEST(http_parse, responses_from_python_http_server_parse)
{
    int out[2];
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    const char *py[] = {"python3", "-c", py_server, NULL};
    pid_t pid = spawn(py, -1, out[1]);
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[32] = "";
    cr_assert_not_null(fgets(line, sizeof(line), f), "the python server printed no port");
    fclose(f);
    uint16_t port = (uint16_t)atoi(line);
    static char buf[PEER_BUF_BYTES];
    struct eddy_http_header hdrs[16];
    struct eddy_http_response r;

    size_t len = fetch(port, "/length", buf, sizeof(buf));
    int rc = eddy_http_parse_response(buf, len, &r, hdrs, 16, NULL);
    cr_assert_gt(rc, 0, "%d: %.*s", rc, (int)len, buf);
    cr_expect_eq(r.status, 200);
    cr_expect(view_is(r.reason, r.reason_len, "OK"));
    cr_expect_eq(r.body, EDDY_HTTP_BODY_LENGTH);
    cr_expect_eq(r.content_length, 13u);
    cr_expect_eq(len - (size_t)rc, 13u);
    cr_expect_eq(memcmp(buf + rc, "Hello, World!", 13), 0);

    len = fetch(port, "/chunked", buf, sizeof(buf));
    rc = eddy_http_parse_response(buf, len, &r, hdrs, 16, NULL);
    cr_assert_gt(rc, 0);
    cr_expect_eq(r.body, EDDY_HTTP_BODY_CHUNKED);
    struct eddy_http_chunked c;
    eddy_http_chunked_init(&c, 0);
    size_t n = len - (size_t)rc;
    cr_expect_eq(eddy_http_chunked_decode(&c, buf + rc, &n), 0);
    cr_expect_eq(n, 7u + 9 * 500 + 7);
    cr_expect_eq(memcmp(buf + rc, "MozillaDeveloperDeveloper", 25), 0);
    cr_expect_eq(memcmp(buf + rc + n - 16, "DeveloperNetwork", 16), 0);

    len = fetch(port, "/close", buf, sizeof(buf));
    rc = eddy_http_parse_response(buf, len, &r, hdrs, 16, NULL);
    cr_assert_gt(rc, 0);
    cr_expect_eq(r.version_minor, 0);
    cr_expect(view_is(r.reason, r.reason_len, "Fine"));
    cr_expect_eq(r.body, EDDY_HTTP_BODY_CLOSE);
    cr_expect(!r.keep_alive);
    cr_expect_eq(len - (size_t)rc, 11u);
    expect_exit_0(pid, "python3 http.server");
}

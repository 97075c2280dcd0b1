/*
 * tests/http/test_client.c: the HTTP client against eddy's server (on its
 * own thread), against servers eddy did not write (nginx, python3's
 * http.server), and against a hand-written misbehaving server whose every
 * byte the test chooses: a close mid-body, a truncated chunk, an endless
 * body, silence, malformed heads. Each fault must fail that request only,
 * with its own error, and leave the client's pool usable.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <zlib.h>

#include "tests/http/http_test.h"

/* A read timeout short enough for tests, long enough for a loaded machine. */
#define CT_SHORT_TIMEOUT_NS (200 * EDDY_NS_PER_MS)
/* How late a timeout may fire on a shared, loaded machine. */
#define CT_TIMEOUT_SLACK_NS (2000 * EDDY_NS_PER_MS)

/* ---- eddy's server, with the routes the tests use --------------------------- */

static int r_plain(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    return eddy_http_respond(ex, 200, "text/plain", "Hello, World!", 13);
}

static int r_echo(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    static char buf[4 << 20];
    ssize_t n = eddy_http_body_read_all(ex, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    size_t len;
    const char *ct = eddy_http_header(ex, "Content-Type", &len);
    if (ct) {
        char v[128];
        snprintf(v, sizeof(v), "%.*s", (int)len, ct);
        eddy_http_set_header(ex, "X-Echo-Type", v);
    }
    char m[32];
    snprintf(m, sizeof(m), "%.*s", (int)eddy_http_req(ex)->method_len,
             eddy_http_req(ex)->method_text);
    eddy_http_set_header(ex, "X-Echo-Method", m);
    return eddy_http_respond(ex, 200, "application/octet-stream", buf, (size_t)n);
}

/* Answers with the request's target, for query parameters. */
static int r_target(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    const struct eddy_http_request *req = eddy_http_req(ex);
    size_t n;
    const char *x = eddy_http_header(ex, "X-Test", &n);
    char body[1024];
    int len = snprintf(body, sizeof(body), "%.*s %.*s", (int)req->target_len, req->target,
                       x ? (int)n : 0, x ? x : "");
    return eddy_http_respond(ex, 200, "text/plain", body, (size_t)len);
}

static int r_json(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    return eddy_http_respond_json(ex, 200, "{\"ok\":true}", 11);
}

/* A chunked body of `n` (query) 1000-byte pieces of the letters a..z. */
static int r_chunked(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    char v[16];
    int n = eddy_http_query(ex, "n", v, sizeof(v)) > 0 ? atoi(v) : 3;
    int rc = eddy_http_stream_begin(ex, 200, "text/plain");
    char piece[1000];
    for (int i = 0; rc == 0 && i < n; i++) {
        memset(piece, 'a' + i % 26, sizeof(piece));
        rc = eddy_http_stream_write(ex, piece, sizeof(piece));
    }
    return rc ? rc : eddy_http_stream_end(ex);
}

static int r_slow(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    char v[16];
    int ms = eddy_http_query(ex, "ms", v, sizeof(v)) > 0 ? atoi(v) : 100;
    int rc = eddy_sleep_ms(ms);
    if (rc < 0)
        return rc;
    return eddy_http_respond(ex, 200, "text/plain", "slow", 4);
}

/* /redirect?to=URL&code=N */
static int r_redirect(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    char to[512], code[8];
    if (eddy_http_query(ex, "to", to, sizeof(to)) < 0)
        strcpy(to, "/plaintext");
    int status = eddy_http_query(ex, "code", code, sizeof(code)) > 0 ? atoi(code) : 302;
    eddy_http_set_header(ex, "Location", to);
    return eddy_http_respond(ex, (unsigned)status, "text/plain", "moved", 5);
}

/* gzip of "Hello, gzip! " x 100, made once with zlib. */
static unsigned char gz_data[4096];
static size_t gz_len;
static char gz_plain[1400];

static void make_gzip(void)
{
    gz_plain[0] = 0;
    for (int i = 0; i < 100; i++)
        strcat(gz_plain, "Hello, gzip! ");
    z_stream z = {0};
    cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)gz_plain;
    z.avail_in = (uInt)strlen(gz_plain);
    z.next_out = gz_data;
    z.avail_out = sizeof(gz_data);
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    gz_len = sizeof(gz_data) - z.avail_out;
    deflateEnd(&z);
}

/* /gzip?bad=1 corrupts the data after the header. */
static int r_gzip(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    char v[4];
    unsigned char data[4096];
    memcpy(data, gz_data, gz_len);
    if (eddy_http_query(ex, "bad", v, sizeof(v)) > 0)
        memset(data + 12, 0xff, 8);
    eddy_http_set_header(ex, "Content-Encoding", "gzip");
    return eddy_http_respond(ex, 200, "text/plain", data, gz_len);
}

static int r_loop(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    eddy_http_set_header(ex, "Location", "/loop");
    return eddy_http_respond(ex, 302, "text/plain", "again", 5);
}

static void routes(struct eddy_http_server *srv, void *arg)
{
    eddy_http_server_route(srv, "GET", "/loop", r_loop, NULL);
    (void)arg;
    eddy_http_server_route(srv, "GET", "/plaintext", r_plain, NULL);
    eddy_http_server_route(srv, NULL, "/echo", r_echo, NULL);
    eddy_http_server_route(srv, "GET", "/target", r_target, NULL);
    eddy_http_server_route(srv, "GET", "/json", r_json, NULL);
    eddy_http_server_route(srv, "GET", "/chunked", r_chunked, NULL);
    eddy_http_server_route(srv, "GET", "/slow", r_slow, NULL);
    eddy_http_server_route(srv, NULL, "/redirect", r_redirect, NULL);
    eddy_http_server_route(srv, "GET", "/gzip", r_gzip, NULL);
}

/* ---- running client code in a loop ----------------------------------------------- */

struct ct {
    uint16_t port;  /* eddy's server */
    uint16_t port2; /* the misbehaving server, or another peer */
    struct eddy_http_client_opts opts;
    struct eddy_http_client *client;
};

typedef void ct_body_fn(struct ct *t);

struct ct_run {
    struct ct *t;
    ct_body_fn *fn;
};

static intptr_t ct_task(void *arg)
{
    struct ct_run *run = arg;
    int rc = eddy_http_client_create(&run->t->opts, &run->t->client);
    cr_assert_eq(rc, 0, "%s", eddy_strerror(rc));
    run->fn(run->t);
    cr_expect_eq(eddy_http_client_destroy(run->t->client), 0);
    return 0;
}

static void ct_run(struct ct *t, ct_body_fn *fn)
{
    struct ct_run run = {.t = t, .fn = fn};
    intptr_t result;
    cr_assert_eq(eddy_run(ct_task, &run, NULL, &result), 0);
}

static void url(char *out, size_t cap, uint16_t port, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%u%s", port, path);
}

/* GET of path on port; returns the error or 0 and the reply in *r. */
static int get(struct ct *t, uint16_t port, const char *path, struct eddy_http_reply **r)
{
    char u[600];
    url(u, sizeof(u), port, path);
    return eddy_http_client_get(t->client, u, r);
}

/* True when the reply's header name has exactly the value want. */
static bool hdr_is(const struct eddy_http_reply *r, const char *name, const char *want)
{
    size_t len;
    const char *v = eddy_http_reply_header(r, name, &len);
    return v && len == strlen(want) && memcmp(v, want, len) == 0;
}

/* GET that must succeed with status and body. */
static void expect_get(struct ct *t, uint16_t port, const char *path, unsigned status,
                       const char *body)
{
    struct eddy_http_reply *r = NULL;
    int rc = get(t, port, path, &r);
    cr_assert_eq(rc, 0, "GET %s: %s", path, eddy_strerror(rc));
    cr_expect_eq(eddy_http_reply_status(r), status, "GET %s: status %u", path,
                 eddy_http_reply_status(r));
    if (body) {
        size_t len;
        const char *b = eddy_http_reply_body(r, &len);
        cr_expect_eq(len, strlen(body), "GET %s: %zu bytes", path, len);
        cr_expect_str_eq(b, body);
    }
    eddy_http_reply_destroy(r);
}

/* ---- against eddy's server ------------------------------------------------------- */

static void body_keep_alive(struct ct *t)
{
    for (int i = 0; i < 5; i++)
        expect_get(t, t->port, "/plaintext", 200, "Hello, World!");
    expect_get(t, t->port, "/nope", 404, NULL);
    struct eddy_http_client_stats st;
    eddy_http_client_stats(t->client, &st);
    cr_expect_eq(st.connections_opened, 1);
    cr_expect_eq(st.connections_reused, 5);
    cr_expect_eq(st.connections_idle, 1);
    cr_expect_eq(st.requests, 6);
}

EDDY_TEST(http_client, get_reuses_one_keep_alive_connection_counted_by_the_server)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port};
    ct_run(&t, body_keep_alive);
    ht_stop(&s);
    cr_expect_eq(s.stats.connections_accepted, 1u);
    cr_expect_eq(s.stats.requests, 6u);
}

static void body_methods(struct ct *t)
{
    char u[256];
    url(u, sizeof(u), t->port, "/echo");
    static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE"};
    for (size_t i = 0; i < 4; i++) {
        struct eddy_http_request_spec req = {.method = methods[i],
                                             .url = u,
                                             .body = "payload",
                                             .body_len = 7,
                                             .content_type = "text/x-test"};
        struct eddy_http_reply *r;
        int rc = eddy_http_client_request(t->client, &req, &r);
        cr_assert_eq(rc, 0, "%s: %s", methods[i], eddy_strerror(rc));
        size_t len;
        cr_expect_str_eq(eddy_http_reply_body(r, &len), "payload");
        const char *m = eddy_http_reply_header(r, "X-Echo-Method", &len);
        cr_expect(m && len == strlen(methods[i]) && !memcmp(m, methods[i], len));
        m = eddy_http_reply_header(r, "X-Echo-Type", &len);
        cr_expect(m && len == 11 && !memcmp(m, "text/x-test", 11));
        eddy_http_reply_destroy(r);
    }
    /* HEAD: no body although the head announces one. */
    url(u, sizeof(u), t->port, "/plaintext");
    struct eddy_http_request_spec head = {.method = "HEAD", .url = u};
    struct eddy_http_reply *r;
    cr_assert_eq(eddy_http_client_request(t->client, &head, &r), 0);
    size_t len = 99;
    eddy_http_reply_body(r, &len);
    cr_expect_eq(len, 0);
    cr_expect(hdr_is(r, "Content-Length", "13"));
    eddy_http_reply_destroy(r);
    /* The connection survived the HEAD. */
    expect_get(t, t->port, "/plaintext", 200, "Hello, World!");
    struct eddy_http_client_stats st;
    eddy_http_client_stats(t->client, &st);
    cr_expect_eq(st.connections_opened, 1, "%llu", (unsigned long long)st.connections_opened);
}

EDDY_TEST(http_client, sends_post_put_patch_delete_bodies_and_head)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port};
    ct_run(&t, body_methods);
    ht_stop(&s);
}

static void body_query_headers_json(struct ct *t)
{
    char u[256];
    url(u, sizeof(u), t->port, "/target?a=1");
    const char *q[] = {"k y", "v&=/", "e", ""};
    struct eddy_http_header h[] = {{"X-Test", 6, "hello", 5}};
    struct eddy_http_request_spec req = {
        .url = u, .query = q, .nquery = 2, .headers = h, .nheaders = 1};
    struct eddy_http_reply *r;
    cr_assert_eq(eddy_http_client_request(t->client, &req, &r), 0);
    cr_expect_str_eq(eddy_http_reply_body(r, NULL), "/target?a=1&k%20y=v%26%3D%2F&e= hello");
    eddy_http_reply_destroy(r);
    /* JSON both ways. */
    url(u, sizeof(u), t->port, "/echo");
    struct eddy_http_request_spec post = {.url = u, .json = "{\"x\":1}"};
    cr_assert_eq(eddy_http_client_request(t->client, &post, &r), 0);
    cr_expect(hdr_is(r, "X-Echo-Method", "POST"), "a body without a method is a POST");
    size_t len;
    const char *type = eddy_http_reply_header(r, "X-Echo-Type", &len);
    cr_expect(type && len == 16 && !memcmp(type, "application/json", 16));
    const char *json;
    cr_expect_eq(eddy_http_reply_json(r, &json, &len), -EBADMSG, "octet-stream is not JSON");
    eddy_http_reply_destroy(r);
    url(u, sizeof(u), t->port, "/json");
    cr_assert_eq(eddy_http_client_get(t->client, u, &r), 0);
    cr_expect_eq(eddy_http_reply_json(r, &json, &len), 0);
    cr_expect_str_eq(json, "{\"ok\":true}");
    eddy_http_reply_destroy(r);
    /* Caller mistakes are -EINVAL, before anything is sent. */
    struct eddy_http_header bad[] = {{"Bad Name", 8, "v", 1}};
    struct eddy_http_request_spec req2 = {.url = u, .headers = bad, .nheaders = 1};
    cr_expect_eq(eddy_http_client_request(t->client, &req2, &r), -EINVAL);
    struct eddy_http_header crlf[] = {{"X", 1, "a\r\nInjected: 1", 15}};
    req2.headers = crlf;
    cr_expect_eq(eddy_http_client_request(t->client, &req2, &r), -EINVAL);
    struct eddy_http_header host[] = {{"Host", 4, "evil", 4}};
    req2.headers = host;
    cr_expect_eq(eddy_http_client_request(t->client, &req2, &r), -EINVAL);
    struct eddy_http_request_spec req3 = {.url = "http://h/a b"};
    cr_expect_eq(eddy_http_client_request(t->client, &req3, &r), -EINVAL);
    req3.url = "https://127.0.0.1/";
    cr_expect_eq(eddy_http_client_request(t->client, &req3, &r), -EPROTONOSUPPORT);
    req3.url = u;
    req3.method = "GE T";
    cr_expect_eq(eddy_http_client_request(t->client, &req3, &r), -EINVAL);
    req3.method = NULL;
    req3.body = "x";
    req3.body_len = 1;
    req3.json = "{}";
    cr_expect_eq(eddy_http_client_request(t->client, &req3, &r), -EINVAL, "two bodies");
}

EDDY_TEST(http_client, query_parameters_headers_and_json_helpers)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port};
    ct_run(&t, body_query_headers_json);
    ht_stop(&s);
}

/* The head is built in a small stack buffer and moves to the heap when it
 * outgrows it: heads just below, at and well past that size arrive intact. */
static void body_long_heads(struct ct *t)
{
    char u[256];
    url(u, sizeof(u), t->port, "/target");
    static const size_t sizes[] = {100, 400, 511, 512, 600, 900};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char v[1000];
        for (size_t j = 0; j < sizes[i]; j++)
            v[j] = (char)('a' + (i + j) % 26);
        struct eddy_http_header h[] = {{"X-Test", 6, v, sizes[i]}};
        struct eddy_http_request_spec req = {.url = u, .headers = h, .nheaders = 1};
        struct eddy_http_reply *r;
        cr_assert_eq(eddy_http_client_request(t->client, &req, &r), 0, "size %zu", sizes[i]);
        size_t len;
        const char *b = eddy_http_reply_body(r, &len);
        cr_expect_eq(len, 8 + sizes[i], "size %zu", sizes[i]);
        cr_expect(len == 8 + sizes[i] && !memcmp(b, "/target ", 8) && !memcmp(b + 8, v, sizes[i]),
                  "size %zu: the header value comes back unchanged", sizes[i]);
        eddy_http_reply_destroy(r);
    }
}

EDDY_TEST(http_client, request_heads_longer_than_the_stack_buffer_arrive_intact)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port};
    ct_run(&t, body_long_heads);
    ht_stop(&s);
}

static void body_chunked_stream(struct ct *t)
{
    /* Buffered: 50 chunks of 1000 bytes. */
    struct eddy_http_reply *r;
    cr_assert_eq(get(t, t->port, "/chunked?n=50", &r), 0);
    size_t len;
    const char *b = eddy_http_reply_body(r, &len);
    cr_expect_eq(len, 50000);
    for (size_t i = 0; i < len; i++)
        if (b[i] != 'a' + (char)(i / 1000 % 26))
            cr_assert_fail("byte %zu is %c", i, b[i]);
    eddy_http_reply_destroy(r);
    /* Streamed in small reads. */
    char u[256];
    url(u, sizeof(u), t->port, "/chunked?n=300");
    struct eddy_http_request_spec req = {.url = u, .stream = true};
    cr_assert_eq(eddy_http_client_request(t->client, &req, &r), 0);
    char buf[777];
    size_t total = 0;
    ssize_t n;
    while ((n = eddy_http_reply_read(r, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != 'a' + (char)((total + (size_t)i) / 1000 % 26))
                cr_assert_fail("byte %zu", total + (size_t)i);
        total += (size_t)n;
    }
    cr_expect_eq(n, 0, "%s", eddy_strerror((int)n));
    cr_expect_eq(total, 300000);
    cr_expect_eq(eddy_http_reply_read(r, buf, sizeof(buf)), 0, "the end stays the end");
    eddy_http_reply_destroy(r);
    /* A streamed reply dropped before its end closes its connection. */
    cr_assert_eq(eddy_http_client_request(t->client, &req, &r), 0);
    cr_expect_gt(eddy_http_reply_read(r, buf, sizeof(buf)), 0);
    eddy_http_reply_destroy(r);
    struct eddy_http_client_stats st;
    eddy_http_client_stats(t->client, &st);
    cr_expect_eq(st.connections_open, 0);
    expect_get(t, t->port, "/plaintext", 200, "Hello, World!");
    /* A buffered reply cannot be read as a stream. */
    cr_assert_eq(get(t, t->port, "/plaintext", &r), 0);
    cr_expect_eq(eddy_http_reply_read(r, buf, sizeof(buf)), -EINVAL);
    eddy_http_reply_destroy(r);
}

EDDY_TEST(http_client, chunked_bodies_buffered_and_streamed)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port};
    ct_run(&t, body_chunked_stream);
    ht_stop(&s);
}

static ssize_t gen_body(void *arg, void *buf, size_t cap)
{
    int *left = arg;
    if (*left == 0)
        return 0;
    size_t n = cap < 10000 ? cap : 10000;
    memset(buf, 'z', n);
    (*left)--;
    return (ssize_t)n;
}

static void body_file_and_streamed_upload(struct ct *t)
{
    char path[] = "/tmp/eddy-client-body-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    static char data[200000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('0' + i % 10);
    cr_assert_eq(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
    lseek(fd, 0, SEEK_SET);
    char u[256];
    url(u, sizeof(u), t->port, "/echo");
    struct eddy_http_request_spec req = {.url = u, .use_body_fd = true, .body_fd = fd};
    struct eddy_http_reply *r;
    cr_assert_eq(eddy_http_client_request(t->client, &req, &r), 0);
    size_t len;
    const char *b = eddy_http_reply_body(r, &len);
    cr_expect_eq(len, sizeof(data));
    cr_expect(memcmp(b, data, sizeof(data)) == 0);
    eddy_http_reply_destroy(r);
    close(fd);
    int pieces = 7;
    struct eddy_http_request_spec up = {
        .url = u, .method = "PUT", .body_fn = gen_body, .body_arg = &pieces};
    cr_assert_eq(eddy_http_client_request(t->client, &up, &r), 0);
    b = eddy_http_reply_body(r, &len);
    cr_expect_eq(len, 70000);
    cr_expect(b[0] == 'z' && b[69999] == 'z');
    eddy_http_reply_destroy(r);
}

EDDY_TEST(http_client, sends_bodies_from_a_file_and_streamed_chunked)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port};
    ct_run(&t, body_file_and_streamed_upload);
    ht_stop(&s);
}

static void body_redirects(struct ct *t)
{
    char path[512];
    /* Not followed unless asked. */
    struct eddy_http_reply *r;
    cr_assert_eq(get(t, t->port, "/redirect?to=/plaintext", &r), 0);
    cr_expect_eq(eddy_http_reply_status(r), 302);
    eddy_http_reply_destroy(r);
    eddy_http_client_destroy(t->client);
    t->opts.follow_redirects = true;
    t->opts.max_redirects = 3;
    cr_assert_eq(eddy_http_client_create(&t->opts, &t->client), 0);
    expect_get(t, t->port, "/redirect?to=/plaintext", 200, "Hello, World!");
    /* Relative, absolute and chained. */
    expect_get(t, t->port, "/redirect?to=plaintext&code=301", 200, "Hello, World!");
    snprintf(path, sizeof(path),
             "/redirect?to=/redirect%%3Fto%%3Dhttp%%3A%%2F%%2F127.0.0.1%%3A%u%%2Fplaintext",
             t->port);
    cr_assert_eq(get(t, t->port, path, &r), 0);
    cr_expect_eq(eddy_http_reply_status(r), 200);
    char want[128];
    url(want, sizeof(want), t->port, "/plaintext");
    cr_expect_str_eq(eddy_http_reply_url(r), want);
    eddy_http_reply_destroy(r);
    /* A loop ends at max_redirects. */
    int rc = get(t, t->port, "/loop", &r);
    cr_expect_eq(rc, -ELOOP, "%s", eddy_strerror(rc));
    /* 303 turns a POST into a GET; 307 keeps the POST and its body. */
    char u[256];
    url(u, sizeof(u), t->port, "/redirect?to=/echo&code=303");
    struct eddy_http_request_spec req = {.url = u, .body = "data", .body_len = 4};
    cr_assert_eq(eddy_http_client_request(t->client, &req, &r), 0);
    cr_expect(hdr_is(r, "X-Echo-Method", "GET"));
    cr_expect_str_eq(eddy_http_reply_body(r, NULL), "");
    eddy_http_reply_destroy(r);
    url(u, sizeof(u), t->port, "/redirect?to=/echo&code=307");
    cr_assert_eq(eddy_http_client_request(t->client, &req, &r), 0);
    cr_expect(hdr_is(r, "X-Echo-Method", "POST"));
    cr_expect_str_eq(eddy_http_reply_body(r, NULL), "data");
    eddy_http_reply_destroy(r);
    struct eddy_http_client_stats st;
    eddy_http_client_stats(t->client, &st);
    cr_expect_eq(st.connections_opened, 1, "redirects reuse the connection");
}

EDDY_TEST(http_client, redirects_are_opt_in_relative_limited_and_change_post_on_303)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port};
    ct_run(&t, body_redirects);
    ht_stop(&s);
}

static void body_gzip(struct ct *t)
{
    struct eddy_http_reply *r;
    /* Without decompress the bytes come as sent. */
    cr_assert_eq(get(t, t->port, "/gzip", &r), 0);
    size_t len;
    eddy_http_reply_body(r, &len);
    cr_expect_eq(len, gz_len);
    eddy_http_reply_destroy(r);
    eddy_http_client_destroy(t->client);
    t->opts.decompress = true;
    cr_assert_eq(eddy_http_client_create(&t->opts, &t->client), 0);
    cr_assert_eq(get(t, t->port, "/gzip", &r), 0);
    const char *b = eddy_http_reply_body(r, &len);
    cr_expect_eq(len, strlen(gz_plain));
    cr_expect_str_eq(b, gz_plain);
    eddy_http_reply_destroy(r);
    cr_expect_eq(get(t, t->port, "/gzip?bad=1", &r), -EBADMSG);
    expect_get(t, t->port, "/plaintext", 200, "Hello, World!");
}

EDDY_TEST(http_client, decompresses_gzip_bodies_and_rejects_corrupt_ones)
{
    make_gzip();
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port};
    ct_run(&t, body_gzip);
    ht_stop(&s);
}

static void body_timeouts(struct ct *t)
{
    struct eddy_http_reply *r;
    int64_t t0 = eddy_clock_ns();
    cr_expect_eq(get(t, t->port, "/slow?ms=2000", &r), -ETIMEDOUT);
    int64_t took = eddy_clock_ns() - t0;
    cr_expect_geq(took, CT_SHORT_TIMEOUT_NS);
    cr_expect_lt(took, CT_SHORT_TIMEOUT_NS + CT_TIMEOUT_SLACK_NS);
    /* The pool dropped that connection and works on. */
    expect_get(t, t->port, "/slow?ms=10", 200, "slow");
    struct eddy_http_client_stats st;
    eddy_http_client_stats(t->client, &st);
    cr_expect_eq(st.connections_opened, 2);
    /* The total timeout covers a server that trickles. */
    eddy_http_client_destroy(t->client);
    t->opts.read_timeout_ns = 0;
    t->opts.total_timeout_ns = CT_SHORT_TIMEOUT_NS;
    cr_assert_eq(eddy_http_client_create(&t->opts, &t->client), 0);
    cr_expect_eq(get(t, t->port, "/slow?ms=2000", &r), -ETIMEDOUT);
    /* A connect timeout: a listener whose backlog is full drops SYNs. */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(lfd, 0), 0);
    socklen_t alen = sizeof(a);
    getsockname(lfd, (struct sockaddr *)&a, &alen);
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(fillers[i], (struct sockaddr *)&a, sizeof(a));
    }
    eddy_sleep_ms(20);
    eddy_http_client_destroy(t->client);
    t->opts.connect_timeout_ns = CT_SHORT_TIMEOUT_NS;
    t->opts.total_timeout_ns = 0;
    cr_assert_eq(eddy_http_client_create(&t->opts, &t->client), 0);
    t0 = eddy_clock_ns();
    int rc = get(t, ntohs(a.sin_port), "/", &r);
    took = eddy_clock_ns() - t0;
    cr_expect_eq(rc, -ETIMEDOUT, "%s", eddy_strerror(rc));
    cr_expect_lt(took, CT_SHORT_TIMEOUT_NS + CT_TIMEOUT_SLACK_NS);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(lfd);
}

EDDY_TEST(http_client, read_total_and_connect_timeouts_fail_only_that_request)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port, .opts = {.read_timeout_ns = CT_SHORT_TIMEOUT_NS}};
    ct_run(&t, body_timeouts);
    ht_stop(&s);
}

struct slow_fetch {
    struct ct *t;
};

static intptr_t slow_get(void *arg)
{
    struct ct *t = arg;
    struct eddy_http_reply *r;
    int rc = get(t, t->port, "/slow?ms=50", &r);
    if (rc == 0)
        eddy_http_reply_destroy(r);
    return rc;
}

static void body_pool_limit(struct ct *t)
{
    struct eddy_call calls[6];
    intptr_t results[6];
    for (int i = 0; i < 6; i++)
        calls[i] = (struct eddy_call){slow_get, t};
    cr_assert_eq(eddy_gather(calls, 6, results, EDDY_GATHER_ALL), 0);
    for (int i = 0; i < 6; i++)
        cr_expect_eq(results[i], 0, "%s", eddy_strerror((int)results[i]));
    struct eddy_http_client_stats st;
    eddy_http_client_stats(t->client, &st);
    cr_expect_eq(st.connections_opened, 2);
    cr_expect_eq(st.connections_open, 2);
}

EDDY_TEST(http_client, requests_over_the_per_host_limit_wait_for_a_connection)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port, .opts = {.max_per_host = 2}};
    ct_run(&t, body_pool_limit);
    ht_stop(&s);
    cr_expect_eq(s.stats.connections_accepted, 2u);
}

static void body_idle_expiry(struct ct *t)
{
    expect_get(t, t->port, "/plaintext", 200, "Hello, World!");
    eddy_sleep_ms(100);
    expect_get(t, t->port, "/plaintext", 200, "Hello, World!");
    struct eddy_http_client_stats st;
    eddy_http_client_stats(t->client, &st);
    cr_expect_eq(st.connections_opened, 2);
    cr_expect_eq(st.connections_open, 1);
}

EDDY_TEST(http_client, idle_connections_expire)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port, .opts = {.idle_timeout_ns = 30 * EDDY_NS_PER_MS}};
    ct_run(&t, body_idle_expiry);
    ht_stop(&s);
    cr_expect_eq(s.stats.connections_accepted, 2u);
}

static void body_fetch_many(struct ct *t)
{
    char u[5][128];
    url(u[0], sizeof(u[0]), t->port, "/slow?ms=60");
    url(u[1], sizeof(u[1]), t->port, "/plaintext");
    url(u[2], sizeof(u[2]), t->port2, "/refused");
    url(u[3], sizeof(u[3]), t->port, "/nope");
    snprintf(u[4], sizeof(u[4]), "not a url");
    const char *urls[5] = {u[0], u[1], u[2], u[3], u[4]};
    struct eddy_http_reply *replies[5];
    int errors[5];
    cr_assert_eq(eddy_http_fetch_many(t->client, urls, 5, 3, replies, errors), 0);
    cr_expect_eq(errors[0], 0);
    cr_expect_str_eq(eddy_http_reply_body(replies[0], NULL), "slow");
    cr_expect_eq(errors[1], 0);
    cr_expect_str_eq(eddy_http_reply_body(replies[1], NULL), "Hello, World!");
    cr_expect_eq(errors[2], -ECONNREFUSED);
    cr_expect_null(replies[2]);
    cr_expect_eq(errors[3], 0);
    cr_expect_eq(eddy_http_reply_status(replies[3]), 404);
    cr_expect_eq(errors[4], -EINVAL);
    for (int i = 0; i < 5; i++)
        eddy_http_reply_destroy(replies[i]);
    cr_expect_eq(eddy_http_fetch_many(t->client, urls, 5, 0, replies, errors), -EINVAL);
}

/* A port nothing listens on (bound, then closed). */
static uint16_t closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

EDDY_TEST(http_client, fetch_many_keeps_url_order_and_per_url_failures)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port, .port2 = closed_port()};
    ct_run(&t, body_fetch_many);
    ht_stop(&s);
}

static void body_dns_and_refused(struct ct *t)
{
    struct eddy_http_reply *r;
    cr_expect_eq(get(t, t->port2, "/", &r), -ECONNREFUSED);
    int rc = eddy_http_client_get(t->client, "http://no-such-host.invalid/", &r);
    cr_expect(rc == -ENXIO || rc == -EAGAIN, "DNS failure gave %s", eddy_strerror(rc));
    struct eddy_http_client_stats st;
    eddy_http_client_stats(t->client, &st);
    cr_expect_eq(st.connections_open, 0);
}

EDDY_TEST(http_client, dns_failure_and_refused_connections_are_distinct_errors)
{
    struct ct t = {.port2 = closed_port()};
    ct_run(&t, body_dns_and_refused);
}

/* The blocking client: no loop, the same code. */
EDDY_TEST(http_client, blocking_client_works_without_a_loop)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct eddy_http_client_opts o = {.blocking = true};
    struct eddy_http_client *c;
    cr_assert_eq(eddy_http_client_create(&o, &c), 0);
    char u[128];
    url(u, sizeof(u), s.port, "/chunked?n=20");
    for (int i = 0; i < 3; i++) {
        struct eddy_http_reply *r;
        int rc = eddy_http_client_get(c, u, &r);
        cr_assert_eq(rc, 0, "%s", eddy_strerror(rc));
        size_t len;
        eddy_http_reply_body(r, &len);
        cr_expect_eq(len, 20000);
        eddy_http_reply_destroy(r);
    }
    struct eddy_http_reply *r;
    url(u, sizeof(u), closed_port(), "/");
    cr_expect_eq(eddy_http_client_get(c, u, &r), -ECONNREFUSED);
    cr_expect_eq(eddy_http_fetch_many(c, (const char *[]){u}, 1, 1, &r, (int[1]){0}), -EINVAL);
    cr_expect_eq(eddy_http_client_destroy(c), 0);
    /* A blocking read timeout. */
    o.read_timeout_ns = CT_SHORT_TIMEOUT_NS;
    cr_assert_eq(eddy_http_client_create(&o, &c), 0);
    url(u, sizeof(u), s.port, "/slow?ms=2000");
    cr_expect_eq(eddy_http_client_get(c, u, &r), -ETIMEDOUT);
    cr_expect_eq(eddy_http_client_destroy(c), 0);
    ht_stop(&s);
    cr_expect_eq(s.stats.connections_accepted, 2u);
}

/* ---- the misbehaving server ---------------------------------------------------- */

/* Each connection reads one request head and answers by its path. */
struct bad_server {
    int fd;
    uint16_t port;
    pthread_t thread;
    int accepted;
};

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t m = send(fd, s, n, MSG_NOSIGNAL);
        if (m <= 0)
            return;
        s += m;
        n -= (size_t)m;
    }
}

static void sends(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* Serves requests on fd until the client leaves or a fault ends it. */
static void bad_conn(int fd)
{
    char buf[8192];
    size_t len = 0;
    for (;;) {
        char *end = NULL;
        while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
            ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
            if (n <= 0)
                return;
            len += (size_t)n;
            buf[len] = 0; /* for sscanf */
        }
        char path[256] = "";
        sscanf(buf, "%*s %255s", path);
        size_t used = (size_t)(end + 4 - buf);
        memmove(buf, buf + used, len - used);
        len -= used;
        if (!strcmp(path, "/ok")) {
            sends(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        } else if (!strcmp(path, "/ok-then-close")) {
            sends(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            return; /* closes the keep-alive connection behind the client's back */
        } else if (!strcmp(path, "/mid-body")) {
            sends(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part");
            return;
        } else if (!strcmp(path, "/truncated-chunk")) {
            sends(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc");
            return;
        } else if (!strcmp(path, "/bad-chunk")) {
            sends(fd,
                  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n");
        } else if (!strcmp(path, "/endless")) {
            sends(fd, "HTTP/1.1 200 OK\r\n\r\n");
            memset(buf, 'x', sizeof(buf));
            for (int i = 0; i < 100000; i++) /* 800 MB at most; the client leaves first */
                if (send(fd, buf, sizeof(buf), MSG_NOSIGNAL) <= 0)
                    return;
            return;
        } else if (!strcmp(path, "/huge-length")) {
            sends(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\nxx");
        } else if (!strcmp(path, "/silent")) {
            char c;
            recv(fd, &c, 1, 0); /* until the client gives up */
            return;
        } else if (!strcmp(path, "/bad-status")) {
            sends(fd, "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n");
        } else if (!strcmp(path, "/bad-version")) {
            sends(fd, "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        } else if (!strcmp(path, "/bad-header")) {
            sends(fd, "HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n");
        } else if (!strcmp(path, "/bad-length")) {
            sends(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello");
        } else if (!strcmp(path, "/not-http")) {
            sends(fd, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
        } else if (!strcmp(path, "/close-delimited")) {
            sends(fd, "HTTP/1.0 200 OK\r\n\r\nuntil close");
            return;
        } else if (!strcmp(path, "/continue")) {
            sends(fd,
                  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes");
        } else if (!strcmp(path, "/reset")) {
            struct linger l = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
            return;
        } else {
            sends(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

static void *bad_conn_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    bad_conn(fd);
    close(fd);
    return NULL;
}

static void *bad_accept(void *arg)
{
    struct bad_server *b = arg;
    for (;;) {
        int fd = accept(b->fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        __atomic_fetch_add(&b->accepted, 1, __ATOMIC_SEQ_CST);
        pthread_t t;
        pthread_create(&t, NULL, bad_conn_thread, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
}

static void bad_start(struct bad_server *b)
{
    b->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(b->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(b->fd, 64), 0);
    socklen_t len = sizeof(a);
    getsockname(b->fd, (struct sockaddr *)&a, &len);
    b->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&b->thread, NULL, bad_accept, b), 0);
}

static void bad_stop(struct bad_server *b)
{
    shutdown(b->fd, SHUT_RDWR);
    pthread_join(b->thread, NULL);
    close(b->fd);
}

struct fault {
    const char *path;
    int error;
};

static void body_faults(struct ct *t)
{
    static const struct fault faults[] = {
        {"/mid-body", -ENODATA},   {"/truncated-chunk", -ENODATA}, {"/bad-chunk", -EBADMSG},
        {"/endless", -EMSGSIZE},   {"/huge-length", -EMSGSIZE},    {"/silent", -ETIMEDOUT},
        {"/bad-status", -EBADMSG}, {"/bad-version", -EBADMSG},     {"/bad-header", -EBADMSG},
        {"/bad-length", -EBADMSG}, {"/not-http", -EBADMSG},        {"/reset", -ECONNRESET},
    };
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
        expect_get(t, t->port2, "/ok", 200, "ok");
        struct eddy_http_reply *r = NULL;
        int rc = get(t, t->port2, faults[i].path, &r);
        cr_expect_eq(rc, faults[i].error, "%s gave %s, not %s", faults[i].path, eddy_strerror(rc),
                     eddy_strerror(faults[i].error));
        cr_expect_null(r);
        /* Only that request failed: the pool and the other server work. */
        expect_get(t, t->port2, "/ok", 200, "ok");
        expect_get(t, t->port, "/plaintext", 200, "Hello, World!");
        struct eddy_http_client_stats st;
        eddy_http_client_stats(t->client, &st);
        cr_expect_eq(st.connections_open, 2, "after %s: %llu open", faults[i].path,
                     (unsigned long long)st.connections_open);
    }
    /* Close-delimited bodies and 1xx heads are fine. */
    expect_get(t, t->port2, "/close-delimited", 200, "until close");
    expect_get(t, t->port2, "/continue", 200, "yes");
    /* Streamed, the same faults surface from the read. */
    char u[128];
    url(u, sizeof(u), t->port2, "/mid-body");
    struct eddy_http_request_spec req = {.url = u, .stream = true};
    struct eddy_http_reply *r;
    cr_assert_eq(eddy_http_client_request(t->client, &req, &r), 0);
    char buf[256];
    ssize_t n = eddy_http_reply_read(r, buf, sizeof(buf));
    cr_expect_eq(n, 9);
    cr_expect_eq(eddy_http_reply_read(r, buf, sizeof(buf)), -ENODATA);
    cr_expect_eq(eddy_http_reply_read(r, buf, sizeof(buf)), -ENODATA, "the error sticks");
    eddy_http_reply_destroy(r);
}

EDDY_TEST(http_client, each_server_fault_fails_that_request_only)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct bad_server b = {0};
    bad_start(&b);
    struct ct t = {.port = s.port,
                   .port2 = b.port,
                   .opts = {.read_timeout_ns = CT_SHORT_TIMEOUT_NS, .max_body_bytes = 1 << 20}};
    ct_run(&t, body_faults);
    bad_stop(&b);
    ht_stop(&s);
}

static void body_retry(struct ct *t)
{
    expect_get(t, t->port2, "/ok-then-close", 200, "ok");
    eddy_sleep_ms(50); /* the server's FIN arrives; the connection looks idle */
    expect_get(t, t->port2, "/ok", 200, "ok");
    struct eddy_http_client_stats st;
    eddy_http_client_stats(t->client, &st);
    cr_expect_eq(st.retries, 1);
    cr_expect_eq(st.connections_opened, 2);
    /* A POST is not retried. */
    expect_get(t, t->port2, "/ok-then-close", 200, "ok");
    eddy_sleep_ms(50);
    char u[128];
    url(u, sizeof(u), t->port2, "/ok");
    struct eddy_http_request_spec req = {.url = u, .body = "x", .body_len = 1};
    struct eddy_http_reply *r;
    int rc = eddy_http_client_request(t->client, &req, &r);
    cr_expect(rc == -ENODATA || rc == -ECONNRESET || rc == -EPIPE, "%s", eddy_strerror(rc));
    eddy_http_client_stats(t->client, &st);
    cr_expect_eq(st.retries, 1);
}

EDDY_TEST(http_client, a_dead_pooled_connection_is_retried_once_for_idempotent_requests)
{
    struct bad_server b = {0};
    bad_start(&b);
    struct ct t = {.port2 = b.port};
    ct_run(&t, body_retry);
    bad_stop(&b);
    /* The retry's connection also took the second /ok-then-close. */
    cr_expect_eq(__atomic_load_n(&b.accepted, __ATOMIC_SEQ_CST), 2);
}

/* ---- servers eddy did not write ------------------------------------------------ */

static bool port_answers(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void wait_for_port(uint16_t port)
{
    for (int i = 0; i < 500 && !port_answers(port); i++)
        usleep(10000);
    cr_assert(port_answers(port), "nothing listens on %u", port);
}

static void body_nginx(struct ct *t)
{
    /* $connection_requests counts requests per connection on nginx's side. */
    for (int i = 1; i <= 5; i++) {
        char want[16];
        snprintf(want, sizeof(want), "%d", i);
        expect_get(t, t->port2, "/requests", 200, want);
    }
    expect_get(t, t->port2, "/plaintext", 200, "Hello, World!");
    struct eddy_http_reply *r;
    cr_assert_eq(get(t, t->port2, "/missing", &r), 0);
    cr_expect_eq(eddy_http_reply_status(r), 404);
    eddy_http_reply_destroy(r);
    /* nginx redirects and gzips; the client follows and inflates. */
    eddy_http_client_destroy(t->client);
    t->opts.follow_redirects = true;
    t->opts.decompress = true;
    cr_assert_eq(eddy_http_client_create(&t->opts, &t->client), 0);
    cr_assert_eq(get(t, t->port2, "/moved", &r), 0);
    cr_expect_eq(eddy_http_reply_status(r), 200);
    size_t len;
    const char *enc = eddy_http_reply_header(r, "Content-Encoding", &len);
    cr_expect(enc && len == 4 && !memcmp(enc, "gzip", 4), "nginx did not gzip");
    const char *b = eddy_http_reply_body(r, &len);
    cr_expect_eq(len, 2000);
    cr_expect(b[0] == 'A' && b[1999] == 'A');
    eddy_http_reply_destroy(r);
    /* nginx answers a POST to a static location with 405. */
    char u[128];
    url(u, sizeof(u), t->port2, "/index.html");
    struct eddy_http_request_spec req = {.url = u, .body = "x", .body_len = 1};
    cr_assert_eq(eddy_http_client_request(t->client, &req, &r), 0);
    cr_expect_eq(eddy_http_reply_status(r), 405);
    eddy_http_reply_destroy(r);
}

EDDY_TEST(http_client, against_nginx_keep_alive_redirects_and_gzip)
{
    if (access("/usr/sbin/nginx", X_OK) != 0)
        cr_skip_test("nginx is not installed (nginx-light: make bench-deps)");
    if (getenv("EDDY_UNDER_VALGRIND"))
        cr_skip_test("real peers are skipped under valgrind");
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/eddy-client-nginx-%d", (int)getpid());
    mkdir(dir, 0755);
    char path[128];
    snprintf(path, sizeof(path), "%s/index.html", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 2000; i++)
        fputc('A', f);
    fclose(f);
    uint16_t port = closed_port();
    snprintf(path, sizeof(path), "%s/nginx.conf", dir);
    f = fopen(path, "w");
    fprintf(f,
            "daemon off; master_process off; worker_processes 1;\n"
            "pid %s/nginx.pid; error_log %s/error.log warn;\n"
            "events { worker_connections 64; }\n"
            "http { access_log off; client_body_temp_path %s/body; proxy_temp_path %s/proxy;\n"
            " fastcgi_temp_path %s/fcgi; uwsgi_temp_path %s/uwsgi; scgi_temp_path %s/scgi;\n"
            " gzip on; gzip_min_length 1; gzip_types text/plain;\n"
            " server { listen 127.0.0.1:%u; root %s;\n"
            "  location = /plaintext { default_type text/plain; return 200 'Hello, World!'; }\n"
            "  location = /requests { default_type text/plain; gzip off;\n"
            "    return 200 '$connection_requests'; }\n"
            "  location = /moved { return 302 /index.html; }\n"
            " } }\n",
            dir, dir, dir, dir, dir, dir, dir, port, dir);
    fclose(f);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execl("/usr/sbin/nginx", "nginx", "-p", dir, "-c", path, (char *)NULL);
        _exit(127);
    }
    wait_for_port(port);
    struct ct t = {.port2 = port};
    ct_run(&t, body_nginx);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

static void body_python(struct ct *t)
{
    /* http.server answers HTTP/1.0 with Connection: close after each file. */
    for (int i = 0; i < 3; i++)
        expect_get(t, t->port2, "/hello.txt", 200, "hello from a file\n");
    struct eddy_http_client_stats st;
    eddy_http_client_stats(t->client, &st);
    cr_expect_eq(st.connections_opened, 3);
    cr_expect_eq(st.connections_open, 0);
    struct eddy_http_reply *r;
    cr_assert_eq(get(t, t->port2, "/missing", &r), 0);
    cr_expect_eq(eddy_http_reply_status(r), 404);
    eddy_http_reply_destroy(r);
    /* A directory is redirected to its slash form, then listed. */
    eddy_http_client_destroy(t->client);
    t->opts.follow_redirects = true;
    cr_assert_eq(eddy_http_client_create(&t->opts, &t->client), 0);
    cr_assert_eq(get(t, t->port2, "/sub", &r), 0);
    cr_expect_eq(eddy_http_reply_status(r), 200);
    cr_expect_not_null(strstr(eddy_http_reply_body(r, NULL), "inner.txt"));
    eddy_http_reply_destroy(r);
}

EDDY_TEST(http_client, against_python_http_server)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        cr_skip_test("/usr/bin/python3 is not installed");
    if (getenv("EDDY_UNDER_VALGRIND"))
        cr_skip_test("real peers are skipped under valgrind");
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/eddy-client-py-%d", (int)getpid());
    mkdir(dir, 0755);
    char path[128];
    snprintf(path, sizeof(path), "%s/hello.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("hello from a file\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/sub", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/sub/inner.txt", dir);
    f = fopen(path, "w");
    fclose(f);
    uint16_t port = closed_port();
    char port_text[8];
    snprintf(port_text, sizeof(port_text), "%u", port);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl("/usr/bin/python3", "python3", "-m", "http.server", "--bind", "127.0.0.1",
              "--directory", dir, port_text, (char *)NULL);
        _exit(127);
    }
    wait_for_port(port);
    struct ct t = {.port2 = port};
    ct_run(&t, body_python);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

static void body_busy(struct ct *t)
{
    struct eddy_http_reply *r;
    cr_assert_eq(get(t, t->port, "/plaintext", &r), 0);
    cr_expect_eq(eddy_http_client_destroy(t->client), -EBUSY, "a reply is still held");
    eddy_http_reply_destroy(r);
    struct eddy_http_client_opts bad = {.read_timeout_ns = -1};
    struct eddy_http_client *c2;
    cr_expect_eq(eddy_http_client_create(&bad, &c2), -EINVAL);
    bad = (struct eddy_http_client_opts){.user_agent = "a\r\nb"};
    cr_expect_eq(eddy_http_client_create(&bad, &c2), -EINVAL);
    cr_expect_eq(eddy_http_client_create(NULL, NULL), -EINVAL);
    cr_expect_eq(eddy_http_client_destroy(NULL), -EINVAL);
    cr_expect_eq(eddy_http_client_request(t->client, NULL, &r), -EINVAL);
    eddy_http_reply_destroy(NULL);
}

EDDY_TEST(http_client, destroy_refuses_while_replies_are_held_and_bad_options_are_einval)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port};
    ct_run(&t, body_busy);
    ht_stop(&s);
}

static intptr_t cancelled_get(void *arg)
{
    struct ct *t = arg;
    struct eddy_http_reply *r;
    return get(t, t->port, "/slow?ms=5000", &r);
}

static void body_cancel(struct ct *t)
{
    struct eddy_task *task;
    cr_assert_eq(eddy_task_spawn(cancelled_get, t, NULL, &task), 0);
    eddy_sleep_ms(50);
    eddy_task_cancel(task);
    intptr_t rc;
    cr_assert_eq(eddy_task_join(task, &rc), 0);
    cr_expect_eq(rc, -ECANCELED, "%s", eddy_strerror((int)rc));
    struct eddy_http_client_stats st;
    eddy_http_client_stats(t->client, &st);
    cr_expect_eq(st.connections_open, 0, "the cancelled request's connection was closed");
    expect_get(t, t->port, "/plaintext", 200, "Hello, World!");
}

EDDY_TEST(http_client, a_cancelled_request_returns_ecanceled_and_frees_its_connection)
{
    struct ht_server s = {0};
    ht_start(&s, routes, NULL);
    struct ct t = {.port = s.port};
    ct_run(&t, body_cancel);
    ht_stop(&s);
}

/*
 * tests/fuzz/fuzz_http_parse.c: the fuzz target of the HTTP parser.
 *
 * One input is read four ways: as a request head (default limits, then
 * tight ones), as a response head, and as a chunked body (whole, and cut in
 * two at a place the input picks). Each head is parsed under every scanner
 * the CPU has, and their results must agree. Each result must also keep
 * the contract of include/eddy/http.h:
 *   - a length is in (0, len], ends with CRLF CRLF, and parsing exactly
 *     that many bytes gives the same result while one byte less is -EAGAIN;
 *   - a rejection carries an allowed status (400, 413, 414, 431, 501, 505),
 *     and no prefix of the input is rejected with another one;
 *   - every view lies inside the head; names are tokens; values hold no
 *     control but HTAB and neither start nor end with whitespace;
 *   - the framing is consistent (chunked only in HTTP/1.1, Host in 1.1);
 *   - the chunked decoder gives the same body and leftover however the
 *     input is cut, and never more bytes than it was given.
 * A broken rule prints "fuzz_http_parse.c:LINE: rule" (and the input's
 * label when the replay test set one) and aborts.
 *
 * Builds: `make fuzz` links it with libFuzzer (clang, ASan+UBSan);
 * tests/fuzz/test_fuzz_replay.c calls it from the Criterion binary on
 * tests/fuzz/corpus and tests/fuzz/regression in every `make test`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void eddy_fuzz_set_label(const char *name);

#define MAX_FIELDS 64

static const char *label;

/* Names the input being replayed, for failure messages (NULL: none). */
void eddy_fuzz_set_label(const char *name)
{
    label = name;
}

static _Noreturn void fail(int line, const char *rule)
{
    fprintf(stderr, "fuzz_http_parse.c:%d: %s%s%s\n", line, rule, label ? " in " : "",
            label ? label : "");
    abort();
}

#define CHECK(rule)                                                                                \
    do {                                                                                           \
        if (!(rule))                                                                               \
            fail(__LINE__, #rule);                                                                 \
    } while (0)

/* FNV-1a over the results, views as offsets. */
struct sig {
    uint64_t h;
};

static void mix(struct sig *s, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        s->h ^= (v >> (i * 8)) & 0xff;
        s->h *= 0x100000001b3ull;
    }
}

static void mix_view(struct sig *s, const char *buf, size_t len, const char *p, size_t n)
{
    if (!p) {
        CHECK(n == 0);
        mix(s, UINT64_MAX);
        return;
    }
    CHECK(p >= buf && p <= buf + len && n <= (size_t)(buf + len - p));
    mix(s, (uint64_t)(p - buf));
    mix(s, n);
}

static void check_fields(struct sig *s, const char *buf, size_t len,
                         const struct eddy_http_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mix_view(s, buf, len, h[i].name, h[i].name_len);
        mix_view(s, buf, len, h[i].value, h[i].value_len);
        CHECK(h[i].name_len > 0);
        for (size_t j = 0; j < h[i].name_len; j++)
            CHECK(eddy__http_class[(uint8_t)h[i].name[j]] & EDDY__HTTP_TCHAR);
        for (size_t j = 0; j < h[i].value_len; j++)
            CHECK(eddy__http_class[(uint8_t)h[i].value[j]] & EDDY__HTTP_VALUE);
        if (h[i].value_len) {
            char first = h[i].value[0], last = h[i].value[h[i].value_len - 1];
            CHECK(first != ' ' && first != '\t' && last != ' ' && last != '\t');
        }
    }
}

static bool parser_status(unsigned st)
{
    return st == 400 || st == 413 || st == 414 || st == 431 || st == 501 || st == 505;
}

static uint64_t request_once(const char *buf, size_t len, const struct eddy_http_limits *l)
{
    struct eddy_http_header hdrs[MAX_FIELDS];
    struct eddy_http_request r;
    int rc = eddy_http_parse_request(buf, len, &r, hdrs, MAX_FIELDS, l);
    struct sig s = {0xcbf29ce484222325ull};
    mix(&s, (uint64_t)(int64_t)rc);
    if (rc == -EAGAIN)
        return s.h;
    if (rc == -EBADMSG) {
        CHECK(parser_status(r.status));
        mix(&s, r.status);
        return s.h;
    }
    CHECK(rc > 0 && (size_t)rc <= len);
    size_t n = (size_t)rc;
    CHECK(n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    mix_view(&s, buf, n, r.method_text, r.method_len);
    mix_view(&s, buf, n, r.target, r.target_len);
    mix_view(&s, buf, n, r.path, r.path_len);
    mix_view(&s, buf, n, r.query, r.query_len);
    mix_view(&s, buf, n, r.host, r.host_len);
    CHECK(r.method_len > 0 && r.target_len > 0);
    CHECK(r.version_minor == 0 || r.version_minor == 1);
    CHECK(r.headers == hdrs && r.nheaders <= MAX_FIELDS);
    check_fields(&s, buf, n, hdrs, r.nheaders);
    CHECK(r.version_minor == 0 || r.host);
    CHECK(r.body == EDDY_HTTP_BODY_NONE || r.body == EDDY_HTTP_BODY_LENGTH ||
          r.body == EDDY_HTTP_BODY_CHUNKED);
    CHECK(r.body != EDDY_HTTP_BODY_CHUNKED || r.version_minor == 1);
    CHECK(r.body == EDDY_HTTP_BODY_LENGTH || r.content_length == 0);
    CHECK(!r.expect_continue || r.version_minor == 1);
    CHECK(r.status == 0);
    mix(&s, (uint64_t)r.method);
    mix(&s, (uint64_t)r.version_minor);
    mix(&s, (uint64_t)r.body);
    mix(&s, r.content_length);
    mix(&s, (uint64_t)r.keep_alive << 1 | r.expect_continue);
    return s.h;
}

static uint64_t response_once(const char *buf, size_t len, const struct eddy_http_limits *l)
{
    struct eddy_http_header hdrs[MAX_FIELDS];
    struct eddy_http_response r;
    int rc = eddy_http_parse_response(buf, len, &r, hdrs, MAX_FIELDS, l);
    struct sig s = {0xcbf29ce484222325ull};
    mix(&s, (uint64_t)(int64_t)rc);
    if (rc == -EAGAIN || rc == -EBADMSG || rc == -EMSGSIZE)
        return s.h;
    CHECK(rc > 0 && (size_t)rc <= len);
    size_t n = (size_t)rc;
    CHECK(n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    CHECK(r.status >= 100 && r.status <= 999);
    CHECK(r.version_minor == 0 || r.version_minor == 1);
    mix_view(&s, buf, n, r.reason, r.reason_len);
    check_fields(&s, buf, n, hdrs, r.nheaders);
    CHECK(r.body != EDDY_HTTP_BODY_NONE || (r.status < 200 || r.status == 204 || r.status == 304));
    CHECK(r.body != EDDY_HTTP_BODY_CLOSE || !r.keep_alive);
    mix(&s, r.status);
    mix(&s, (uint64_t)r.body);
    mix(&s, r.content_length);
    mix(&s, r.keep_alive);
    return s.h;
}

/* The same parse under every scanner, which must agree; returns the hash. */
static uint64_t every_scanner(uint64_t (*once)(const char *, size_t,
                                               const struct eddy_http_limits *),
                              const char *buf, size_t len, const struct eddy_http_limits *l)
{
    static const char *const names[] = {"scalar", "sse42", "avx2"};
    uint64_t first = 0;
    bool have = false;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (eddy__http_scan_force(names[i]) != 0)
            continue;
        uint64_t h = once(buf, len, l);
        CHECK(!have || h == first); /* scanners disagree */
        first = h;
        have = true;
    }
    eddy__http_scan_force(NULL);
    return first;
}

static void heads(const char *buf, size_t len, const struct eddy_http_limits *l)
{
    struct eddy_http_header hdrs[MAX_FIELDS];
    struct eddy_http_request r;
    uint64_t whole = every_scanner(request_once, buf, len, l);
    int rc = eddy_http_parse_request(buf, len, &r, hdrs, MAX_FIELDS, l);
    if (rc > 0) {
        /* The head alone parses the same; one byte less is undecided. */
        CHECK(request_once(buf, (size_t)rc, l) == whole);
        CHECK(eddy_http_parse_request(buf, (size_t)rc - 1, &r, hdrs, MAX_FIELDS, l) == -EAGAIN);
    } else if (rc == -EBADMSG) {
        uint16_t st = r.status;
        size_t half = len / 2;
        int prc = eddy_http_parse_request(buf, half, &r, hdrs, MAX_FIELDS, l);
        CHECK(prc == -EAGAIN || (prc == -EBADMSG && r.status == st));
    }
    struct eddy_http_response resp;
    every_scanner(response_once, buf, len, l);
    rc = eddy_http_parse_response(buf, len, &resp, hdrs, MAX_FIELDS, l);
    if (rc > 0)
        CHECK(eddy_http_parse_response(buf, (size_t)rc - 1, &resp, hdrs, MAX_FIELDS, l) == -EAGAIN);
}

/* Decodes data[0, len) in pieces cut at `cut` (0: whole); fills out with
 * the body then the leftover. Returns the last result. */
static ssize_t decode(const uint8_t *data, size_t len, size_t cut, uint64_t max, char *out,
                      size_t *body_len, size_t *rest_len)
{
    struct eddy_http_chunked c;
    eddy_http_chunked_init(&c, max);
    size_t pieces[2] = {cut, len - cut};
    size_t from = 0;
    ssize_t rc = -EAGAIN;
    *body_len = *rest_len = 0;
    for (int i = 0; i < 2 && rc == -EAGAIN; i++) {
        char *buf = malloc(pieces[i] ? pieces[i] : 1);
        CHECK(buf);
        memcpy(buf, data + from, pieces[i]);
        size_t n = pieces[i];
        rc = eddy_http_chunked_decode(&c, buf, &n);
        CHECK(n <= pieces[i]);
        CHECK(rc == -EAGAIN || rc == -EBADMSG || rc == -EMSGSIZE ||
              (rc >= 0 && n + (size_t)rc <= pieces[i]));
        memcpy(out + *body_len, buf, n);
        *body_len += n;
        if (rc >= 0) {
            /* leftover: the rest of this piece, then the pieces not fed */
            memcpy(out + *body_len, buf + n, (size_t)rc);
            *rest_len = (size_t)rc + (len - from - pieces[i]);
            memcpy(out + *body_len + rc, data + from + pieces[i], len - from - pieces[i]);
        }
        free(buf);
        from += pieces[i];
    }
    return rc;
}

static void chunked(const uint8_t *data, size_t len)
{
    char *a = malloc(len + 1), *b = malloc(len + 1);
    CHECK(a && b);
    size_t a_body, a_rest, b_body, b_rest;
    uint64_t max = len ? data[0] % 64 : 0; /* 0 is no limit */
    ssize_t ra = decode(data, len, 0, max, a, &a_body, &a_rest);
    size_t cut = len ? (size_t)data[len - 1] * 7 % (len + 1) : 0;
    ssize_t rb = decode(data, len, cut, max, b, &b_body, &b_rest);
    CHECK(ra == rb || (ra >= 0 && rb >= 0));
    CHECK(a_body + a_rest <= len);
    if (ra >= 0) {
        CHECK(a_body == b_body && a_rest == b_rest);
        CHECK(memcmp(a, b, a_body + a_rest) == 0);
        /* The leftover is the input's tail, untouched. */
        CHECK(memcmp(a + a_body, data + len - a_rest, a_rest) == 0);
    } else if (ra == -EAGAIN) {
        CHECK(a_body == b_body && memcmp(a, b, a_body) == 0);
    }
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: a read past the end is a heap overflow. */
    char *buf = malloc(size ? size : 1);
    CHECK(buf);
    memcpy(buf, data, size);
    heads(buf, size, NULL);
    struct eddy_http_limits tight = {
        .max_request_line_bytes = 24,
        .max_header_bytes = size / 2 + 1,
        .max_headers = 3,
        .max_body_bytes = 100,
    };
    heads(buf, size, &tight);
    free(buf);
    chunked(data, size);
    return 0;
}

/*
 * http/exchange.c: what a handler reads: the request, its headers, route
 * and query parameters, and the body (Content-Length or chunked, decoded
 * from the connection's read buffer without another copy than the one into
 * the handler's buffer).
 */
#include "http/internal.h"

#include <string.h>
#include <strings.h>

/* Body bytes the server reads and drops after a handler that did not read
 * its whole body; a bigger rest closes the connection instead. */
#define DISCARD_MAX_BYTES (256u * 1024)

EDDY_API const struct eddy_http_request *eddy_http_req(const struct eddy_http_exchange *ex)
{
    return &ex->req;
}

EDDY_API const char *eddy_http_header(const struct eddy_http_exchange *ex, const char *name,
                                      size_t *len)
{
    int i = eddy_http_header_find(ex->req.headers, ex->req.nheaders, name, strlen(name));
    if (i < 0) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = ex->req.headers[i].value_len;
    return ex->req.headers[i].value;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX (and '+' as a space when plus_is_space). */
static int decode(const char *src, size_t len, char *dst, size_t cap, bool plus_is_space)
{
    if (!dst || cap == 0)
        return -ENOSPC;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -EBADMSG;
            int hi = hex_value(src[i + 1]), lo = hex_value(src[i + 2]);
            if (hi < 0 || lo < 0)
                return -EBADMSG;
            c = (char)(hi * 16 + lo);
            if (c == 0)
                return -EBADMSG;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (o + 1 >= cap)
            return -ENOSPC;
        dst[o++] = c;
    }
    dst[o] = 0;
    return (int)o;
}

EDDY_API int eddy_http_percent_decode(const char *src, size_t len, char *dst, size_t cap)
{
    if (!src && len)
        return -EINVAL;
    return decode(src, len, dst, cap, false);
}

EDDY_API int eddy_http_query(const struct eddy_http_exchange *ex, const char *key, char *buf,
                             size_t cap)
{
    if (!ex || !key)
        return -EINVAL;
    const char *q = ex->req.query;
    size_t qlen = q ? ex->req.query_len : 0, klen = strlen(key);
    size_t i = 0;
    while (i < qlen) {
        size_t end = i;
        while (end < qlen && q[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && q[eq] != '=')
            eq++;
        /* Keys are compared after decoding, in a small scratch buffer. */
        char name[256];
        int nlen = decode(q + i, eq - i, name, sizeof(name), true);
        if (nlen >= 0 && (size_t)nlen == klen && memcmp(name, key, klen) == 0) {
            size_t vstart = eq < end ? eq + 1 : end;
            return decode(q + vstart, end - vstart, buf, cap, true);
        }
        i = end + 1;
    }
    return -ENOENT;
}

/* Reads raw body bytes into the stream's buffer, within the body timeout. */
static ssize_t fill(struct eddy_http_exchange *ex)
{
    /* Responses to earlier pipelined requests go out before any wait. */
    int rc = eddy_stream_flush(ex->conn->stream);
    if (rc < 0)
        return rc;
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, ex->conn->srv->opts.body_timeout_ns);
    ssize_t n = eddy_stream_fill(ex->conn->stream, SIZE_MAX);
    eddy_timeout_exit(&scope);
    if (n == 0)
        return -ENODATA; /* the client closed inside the body */
    return n;
}

static int send_continue(struct eddy_http_exchange *ex)
{
    ex->continue_sent = true;
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, ex->conn->srv->opts.write_timeout_ns);
    ssize_t rc = eddy_stream_write(ex->conn->stream, line, sizeof(line) - 1);
    if (rc >= 0)
        rc = eddy_stream_flush(ex->conn->stream);
    eddy_timeout_exit(&scope);
    return rc < 0 ? (int)rc : 0;
}

static ssize_t read_length(struct eddy_http_exchange *ex, char *buf, size_t len)
{
    struct eddy_stream *s = ex->conn->stream;
    const char *data;
    size_t have = eddy_stream_peek(s, &data);
    if (have == 0) {
        ssize_t n = fill(ex);
        if (n < 0)
            return n;
        have = eddy_stream_peek(s, &data);
    }
    size_t n = have;
    if (n > len)
        n = len;
    if (n > ex->body_left)
        n = (size_t)ex->body_left;
    memcpy(buf, data, n);
    eddy_stream_consume(s, n);
    ex->body_left -= n;
    if (ex->body_left == 0)
        ex->body_done = true;
    return (ssize_t)n;
}

static ssize_t read_chunked(struct eddy_http_exchange *ex, char *buf, size_t len)
{
    struct eddy_stream *s = ex->conn->stream;
    for (;;) {
        const char *data;
        size_t have = eddy_stream_peek(s, &data);
        if (have == 0) {
            ssize_t n = fill(ex);
            if (n < 0)
                return n;
            continue;
        }
        size_t raw = have < len ? have : len;
        memcpy(buf, data, raw);
        size_t decoded = raw;
        ssize_t rc = eddy_http_chunked_decode(&ex->chunked, buf, &decoded);
        if (rc == -EAGAIN) {
            eddy_stream_consume(s, raw);
            if (decoded > 0)
                return (ssize_t)decoded;
            continue;
        }
        if (rc < 0)
            return rc;
        /* The body ended; the rc bytes after it belong to the next request. */
        eddy_stream_consume(s, raw - (size_t)rc);
        ex->body_done = true;
        return (ssize_t)decoded;
    }
}

EDDY_API ssize_t eddy_http_body_read(struct eddy_http_exchange *ex, void *buf, size_t len)
{
    if (!ex || (!buf && len))
        return -EINVAL;
    if (ex->body_done || len == 0)
        return 0;
    if (ex->req.expect_continue && !ex->continue_sent && ex->resp_state == EDDY__RESP_NONE) {
        int rc = send_continue(ex);
        if (rc < 0)
            return rc;
    }
    ssize_t n = ex->req.body == EDDY_HTTP_BODY_CHUNKED ? read_chunked(ex, buf, len)
                                                       : read_length(ex, buf, len);
    if (n < 0)
        ex->close_after = true; /* the framing is lost */
    return n;
}

EDDY_API ssize_t eddy_http_body_read_all(struct eddy_http_exchange *ex, void *buf, size_t cap)
{
    if (!ex || (!buf && cap))
        return -EINVAL;
    if (ex->req.body == EDDY_HTTP_BODY_LENGTH && ex->req.content_length > cap)
        return -EMSGSIZE;
    size_t got = 0;
    char *p = buf;
    for (;;) {
        if (got == cap) {
            /* Full: the body must end here. */
            char probe;
            ssize_t n = eddy_http_body_read(ex, &probe, 1);
            if (n < 0)
                return n;
            return n == 0 ? (ssize_t)got : -EMSGSIZE;
        }
        ssize_t n = eddy_http_body_read(ex, p + got, cap - got);
        if (n < 0)
            return n;
        if (n == 0)
            return (ssize_t)got;
        got += (size_t)n;
    }
}

int eddy__http_body_discard(struct eddy_http_exchange *ex)
{
    if (ex->body_done || ex->req.body == EDDY_HTTP_BODY_NONE)
        return 0;
    /* A client waiting for 100 Continue may never send the body. */
    if (ex->req.expect_continue && !ex->continue_sent)
        return -EPIPE;
    if (ex->req.body == EDDY_HTTP_BODY_LENGTH && ex->body_left > DISCARD_MAX_BYTES)
        return -EMSGSIZE;
    char scratch[4096];
    size_t total = 0;
    for (;;) {
        ssize_t n = eddy_http_body_read(ex, scratch, sizeof(scratch));
        if (n <= 0)
            return (int)n;
        total += (size_t)n;
        if (total > DISCARD_MAX_BYTES)
            return -EMSGSIZE;
    }
}

/*
 * http/response.c: writing responses: the head (status line, Server, Date,
 * Content-Type, framing, Connection, the handler's extra headers), bodies
 * with Content-Length, chunked streams, and the error responses the server
 * sends by itself. Also the Date header cache and IMF-fixdate parsing
 * (RFC 9110 5.6.7).
 *
 * A response goes into the connection stream's write buffer (one writev
 * when it is large); the connection loop flushes once no pipelined request
 * is left in the read buffer, so pipelined responses leave in one write.
 * Every write runs in a write-timeout scope.
 */
#include "http/internal.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- dates ------------------------------------------------------------------ */

static const char wday_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void two_digits(char *out, int v)
{
    out[0] = (char)('0' + v / 10);
    out[1] = (char)('0' + v % 10);
}

size_t eddy__http_format_date(int64_t t, char *out)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    memcpy(out, wday_names[tm.tm_wday], 3);
    memcpy(out + 3, ", ", 2);
    two_digits(out + 5, tm.tm_mday);
    out[7] = ' ';
    memcpy(out + 8, month_names[tm.tm_mon], 3);
    out[11] = ' ';
    int year = tm.tm_year + 1900;
    two_digits(out + 12, year / 100 % 100);
    two_digits(out + 14, year % 100);
    out[16] = ' ';
    two_digits(out + 17, tm.tm_hour);
    out[19] = ':';
    two_digits(out + 20, tm.tm_min);
    out[22] = ':';
    two_digits(out + 23, tm.tm_sec);
    memcpy(out + 25, " GMT", 4);
    return 29;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int eddy__http_parse_date(const char *s, size_t len, int64_t *t)
{
    /* "Sun, 06 Nov 1994 08:49:37 GMT": the only form servers must send;
     * the obsolete forms a recipient may accept are treated as absent. */
    if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return -EINVAL;
    int mon = -1;
    for (int i = 0; i < 12; i++)
        if (memcmp(s + 8, month_names[i], 3) == 0)
            mon = i;
    int day = digits(s + 5, 2), year = digits(s + 12, 4), hh = digits(s + 17, 2),
        mm = digits(s + 20, 2), ss = digits(s + 23, 2);
    if (mon < 0 || day < 1 || day > 31 || year < 1970 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60)
        return -EINVAL;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon,
                    .tm_mday = day,
                    .tm_hour = hh,
                    .tm_min = mm,
                    .tm_sec = ss};
    *t = (int64_t)timegm(&tm);
    return 0;
}

/* The formatted Date of the current second, per thread. */
static _Thread_local struct {
    int64_t second;
    char text[30];
} date_cache = {.second = -1};

const char *eddy__http_date_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != date_cache.second) {
        eddy__http_format_date(ts.tv_sec, date_cache.text);
        date_cache.text[29] = 0;
        date_cache.second = ts.tv_sec;
    }
    return date_cache.text;
}

/* ---- the head --------------------------------------------------------------- */

struct head {
    char *p;
    char *end;
};

static void put(struct head *h, const char *s, size_t n)
{
    if ((size_t)(h->end - h->p) < n) {
        h->p = h->end + 1; /* overflow: caught by head_len */
        return;
    }
    memcpy(h->p, s, n);
    h->p += n;
}

#define PUT_LIT(h, lit) put((h), (lit), sizeof(lit) - 1)

static void put_str(struct head *h, const char *s)
{
    put(h, s, strlen(s));
}

static void put_u64(struct head *h, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(h, tmp + sizeof(tmp) - n, n);
}

/* The stack buffer of a head's fixed part (the handler's extra headers go
 * out as their own iovec). A long server name or content type takes a heap
 * buffer instead: a connection's stack stays small (one page when idle). */
#define HEAD_FIXED_BYTES 512
/* A head's fixed part but the server name and the content type: status
 * line with the longest reason, Server, Date, Content-Type, Content-Length
 * or Transfer-Encoding, Connection, and the final CRLF. */
#define HEAD_LITERAL_BYTES 256

enum framing {
    FRAME_LENGTH,
    FRAME_CHUNKED,
    FRAME_NONE, /* 1xx, 204, 304: neither Content-Length nor a body */
};

/* Whether the request's connection stays open after this response. */
static bool keeps_alive(const struct eddy_http_exchange *ex)
{
    return ex->req.keep_alive && !ex->close_after && !ex->conn->srv->stopping;
}

static size_t build_head(struct eddy_http_exchange *ex, char *buf, size_t cap, unsigned status,
                         const char *content_type, size_t content_type_len, enum framing framing,
                         uint64_t length)
{
    struct eddy_http_server *srv = ex->conn->srv;
    struct head h = {buf, buf + cap};
    PUT_LIT(&h, "HTTP/1.1 ");
    put_u64(&h, status);
    PUT_LIT(&h, " ");
    put_str(&h, eddy_http_status_reason(status));
    PUT_LIT(&h, "\r\n");
    if (srv->server_name_len) {
        PUT_LIT(&h, "Server: ");
        put(&h, srv->server_name, srv->server_name_len);
        PUT_LIT(&h, "\r\n");
    }
    PUT_LIT(&h, "Date: ");
    put(&h, eddy__http_date_now(), 29);
    PUT_LIT(&h, "\r\n");
    if (content_type) {
        PUT_LIT(&h, "Content-Type: ");
        put(&h, content_type, content_type_len);
        PUT_LIT(&h, "\r\n");
    }
    if (framing == FRAME_LENGTH) {
        PUT_LIT(&h, "Content-Length: ");
        put_u64(&h, length);
        PUT_LIT(&h, "\r\n");
    } else if (framing == FRAME_CHUNKED) {
        PUT_LIT(&h, "Transfer-Encoding: chunked\r\n");
    }
    if (!keeps_alive(ex)) {
        ex->close_after = true;
        PUT_LIT(&h, "Connection: close\r\n");
    } else if (ex->req.version_minor == 0) {
        PUT_LIT(&h, "Connection: keep-alive\r\n");
    }
    if (ex->extra_len == 0)
        PUT_LIT(&h, "\r\n");
    assert(h.p <= h.end);
    return (size_t)(h.p - buf);
}

int eddy__http_write(struct eddy_http_exchange *ex, struct iovec *iov, int n)
{
    size_t total = eddy_stream_write_buffered(ex->conn->stream);
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (total <= EDDY__HTTP_CONN_WRITE_BYTES) {
        /* It fits the write buffer: a copy that cannot park, so no timeout
         * scope (whose enter and exit cost more than the copy). */
        ssize_t rc = eddy_stream_writev(ex->conn->stream, iov, n);
        if (rc < 0) {
            ex->close_after = true;
            return (int)rc;
        }
        return 0;
    }
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, ex->conn->srv->opts.write_timeout_ns);
    ssize_t rc = eddy_stream_writev(ex->conn->stream, iov, n);
    eddy_timeout_exit(&scope);
    if (rc < 0) {
        ex->close_after = true;
        return (int)rc;
    }
    return 0;
}

/* Writes a head, then body[0, body_len) when body is not NULL. The
 * handler's extra headers and the head's last CRLF follow the fixed part
 * as iovecs of their own. */
static int write_head(struct eddy_http_exchange *ex, unsigned status, const char *content_type,
                      enum framing framing, uint64_t length, const void *body, size_t body_len)
{
    char small[HEAD_FIXED_BYTES];
    char *buf = small;
    size_t content_type_len = content_type ? strlen(content_type) : 0;
    size_t need = HEAD_LITERAL_BYTES + ex->conn->srv->server_name_len + content_type_len;
    if (need > sizeof(small)) {
        buf = eddy__malloc(need);
        if (!buf) {
            ex->close_after = true;
            return -ENOMEM;
        }
    } else {
        need = sizeof(small);
    }
    size_t head_len =
        build_head(ex, buf, need, status, content_type, content_type_len, framing, length);
    struct iovec iov[4] = {{buf, head_len}};
    int n = 1;
    if (ex->extra_len) {
        iov[n++] = (struct iovec){ex->extra, ex->extra_len};
        iov[n++] = (struct iovec){(void *)"\r\n", 2};
    }
    if (body)
        iov[n++] = (struct iovec){(void *)body, body_len};
    int rc = eddy__http_write(ex, iov, n);
    if (buf != small)
        eddy__free(buf);
    return rc;
}

static bool has_no_body(unsigned status)
{
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

static void count_status(struct eddy_http_exchange *ex, unsigned status)
{
    ex->status = status;
    if (status >= 500)
        ex->conn->srv->stats.responses_5xx++;
    else if (status >= 400)
        ex->conn->srv->stats.responses_4xx++;
}

EDDY_API int eddy_http_respond(struct eddy_http_exchange *ex, unsigned status,
                               const char *content_type, const void *body, size_t len)
{
    if (!ex || status < 200 || status > 599 || (!body && len))
        return -EINVAL;
    if (ex->resp_state != EDDY__RESP_NONE)
        return -EALREADY;
    ex->resp_state = EDDY__RESP_DONE;
    count_status(ex, status);
    bool no_body = has_no_body(status);
    bool send_body = !no_body && ex->req.method != EDDY_HTTP_HEAD && len > 0;
    return write_head(ex, status, no_body ? NULL : content_type,
                      no_body ? FRAME_NONE : FRAME_LENGTH, len, send_body ? body : NULL, len);
}

int eddy__http_respond_head(struct eddy_http_exchange *ex, unsigned status,
                            const char *content_type, uint64_t length)
{
    if (ex->resp_state != EDDY__RESP_NONE)
        return -EALREADY;
    ex->resp_state = EDDY__RESP_DONE;
    count_status(ex, status);
    return write_head(ex, status, content_type, has_no_body(status) ? FRAME_NONE : FRAME_LENGTH,
                      length, NULL, 0);
}

EDDY_API int eddy_http_respond_json(struct eddy_http_exchange *ex, unsigned status,
                                    const char *json, size_t len)
{
    return eddy_http_respond(ex, status, "application/json", json, len);
}

EDDY_API int eddy_http_stream_begin(struct eddy_http_exchange *ex, unsigned status,
                                    const char *content_type)
{
    if (!ex || status < 200 || status > 599 || has_no_body(status))
        return -EINVAL;
    if (ex->resp_state != EDDY__RESP_NONE)
        return -EALREADY;
    count_status(ex, status);
    /* HTTP/1.0 has no chunked coding: the body ends with the connection. */
    bool chunked = ex->req.version_minor >= 1;
    if (!chunked)
        ex->close_after = true;
    ex->resp_state = ex->req.method == EDDY_HTTP_HEAD ? EDDY__RESP_DONE : EDDY__RESP_STREAMING;
    int rc = write_head(ex, status, content_type, chunked ? FRAME_CHUNKED : FRAME_NONE, 0, NULL, 0);
    if (rc == 0)
        rc = eddy_stream_flush(ex->conn->stream);
    return rc;
}

EDDY_API int eddy_http_stream_write(struct eddy_http_exchange *ex, const void *data, size_t len)
{
    if (!ex || (!data && len))
        return -EINVAL;
    if (ex->resp_state == EDDY__RESP_DONE && ex->req.method == EDDY_HTTP_HEAD)
        return 0;
    if (ex->resp_state != EDDY__RESP_STREAMING)
        return -EINVAL;
    if (len == 0)
        return 0;
    if (ex->req.version_minor == 0) {
        struct iovec iov = {(void *)data, len};
        return eddy__http_write(ex, &iov, 1);
    }
    char size_line[20];
    int n = snprintf(size_line, sizeof(size_line), "%zx\r\n", len);
    struct iovec iov[3] = {{size_line, (size_t)n}, {(void *)data, len}, {"\r\n", 2}};
    return eddy__http_write(ex, iov, 3);
}

EDDY_API int eddy_http_stream_end(struct eddy_http_exchange *ex)
{
    if (!ex)
        return -EINVAL;
    if (ex->resp_state == EDDY__RESP_DONE && ex->req.method == EDDY_HTTP_HEAD)
        return 0;
    if (ex->resp_state != EDDY__RESP_STREAMING)
        return -EINVAL;
    ex->resp_state = EDDY__RESP_DONE;
    if (ex->req.version_minor == 0)
        return 0;
    struct iovec iov = {"0\r\n\r\n", 5};
    return eddy__http_write(ex, &iov, 1);
}

static bool name_is(const char *name, const char *reserved)
{
    return strcasecmp(name, reserved) == 0;
}

EDDY_API int eddy_http_set_header(struct eddy_http_exchange *ex, const char *name,
                                  const char *value)
{
    if (!ex || !name || !value || !name[0] || ex->resp_state != EDDY__RESP_NONE)
        return -EINVAL;
    if (!eddy__http_is_token(name))
        return -EINVAL;
    for (const char *p = value; *p; p++)
        if (*p == '\r' || *p == '\n' || ((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return -EINVAL;
    if (name_is(name, "Content-Length") || name_is(name, "Transfer-Encoding") ||
        name_is(name, "Date") || name_is(name, "Connection"))
        return -EINVAL;
    size_t nl = strlen(name), vl = strlen(value);
    if (ex->extra_len + nl + vl + 4 > EDDY__HTTP_EXTRA_HEADER_BYTES)
        return -ENOSPC;
    if (!ex->extra) {
        ex->extra = eddy__malloc(EDDY__HTTP_EXTRA_HEADER_BYTES);
        if (!ex->extra)
            return -ENOMEM;
    }
    char *p = ex->extra + ex->extra_len;
    memcpy(p, name, nl);
    memcpy(p + nl, ": ", 2);
    memcpy(p + nl + 2, value, vl);
    memcpy(p + nl + 2 + vl, "\r\n", 2);
    ex->extra_len += nl + vl + 4;
    return 0;
}

int eddy__http_respond_error(struct eddy_http_exchange *ex, unsigned status, const char *allow)
{
    ex->extra_len = 0; /* whatever the handler set was for its own answer */
    if (allow && allow[0])
        eddy_http_set_header(ex, "Allow", allow);
    ex->resp_state = EDDY__RESP_NONE;
    const char *reason = eddy_http_status_reason(status);
    char body[96];
    int n = snprintf(body, sizeof(body), "%u %s\n", status, reason);
    return eddy_http_respond(ex, status, "text/plain; charset=utf-8", body, (size_t)n);
}

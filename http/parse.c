/*
 * http/parse.c: the HTTP/1.1 request and response head parsers and the
 * chunked body decoder (RFC 9112; field semantics from RFC 9110).
 *
 * Heads. Stateless: each call parses buf[0, len) from the start and either
 * finds the empty line that ends the head or answers -EAGAIN. Everything it
 * produces is a view into buf; it allocates nothing and writes only to the
 * caller's structs. The parser walks the head once, left to right, line by
 * line, and every check is made at the point of the walk where its bytes
 * are complete. Limits are enforced the same way: the walk may not look
 * past buf + max_header_bytes (and, on the request line, past its own
 * limit), and running into a limit with more input behind it, or with
 * exactly the limit received, is the limit's status. Two properties follow:
 * the parser never reads a byte that decides nothing, and a prefix of any
 * input gives either -EAGAIN or the same answer as the whole input (the
 * tests check both on every table entry).
 *
 * Per field line: the name is scanned as a token up to ':' (so leading
 * whitespace, i.e. obsolete line folding, whitespace before the colon,
 * bare LF and empty names all stop it at the wrong byte), the value is
 * scanned up to the first byte a value may not hold, which must be the CR
 * of a CRLF. The scans are the byte-class scanners of http/internal.h
 * (scalar, SSE4.2 or AVX2; identical answers). The fields with framing or
 * connection meaning (Host, Content-Length, Transfer-Encoding, Connection,
 * Expect) are recognised by length and a case-folding compare as they are
 * stored; the checks that need the whole head (Host present, CL with TE,
 * the final coding) run after the empty line.
 *
 * Cost: one pass over the head; per field a token scan, a value scan, and
 * a switch on the name's length. No allocation.
 *
 * Chunked bodies. A byte-wise state machine over the framing (size line,
 * extensions, CRLFs, trailers) that copies chunk data in place towards the
 * front of the buffer with memmove. All of its state lives in struct
 * eddy_http_chunked, so input can be cut anywhere. A chunk-size line
 * (CRLF included) is limited to CHUNK_LINE_MAX_BYTES and the trailer
 * section (final CRLF included) to TRAILER_MAX_BYTES, both -EMSGSIZE, so a
 * peer cannot feed framing without bound.
 */
#include "http/internal.h"

#include <limits.h>
#include <string.h>

#define DEFAULT_MAX_REQUEST_LINE_BYTES (8u * 1024)
#define DEFAULT_MAX_HEADER_BYTES (64u * 1024)
#define DEFAULT_MAX_HEADERS 100u
#define DEFAULT_MAX_BODY_BYTES (1u << 20)
#define CHUNK_LINE_MAX_BYTES 4096u
#define TRAILER_MAX_BYTES 8192u

struct limits {
    size_t line;   /* request or status line, CRLF included */
    size_t head;   /* the whole head, at most INT_MAX (the return type) */
    size_t fields; /* field lines */
    uint64_t body; /* Content-Length (requests) */
};

static void limits_of(const struct eddy_http_limits *in, size_t max_headers, struct limits *out)
{
    struct eddy_http_limits l = in ? *in : (struct eddy_http_limits){0};
    out->line =
        l.max_request_line_bytes ? l.max_request_line_bytes : DEFAULT_MAX_REQUEST_LINE_BYTES;
    out->head = l.max_header_bytes ? l.max_header_bytes : DEFAULT_MAX_HEADER_BYTES;
    if (out->head > INT_MAX)
        out->head = INT_MAX;
    out->fields = l.max_headers ? l.max_headers : DEFAULT_MAX_HEADERS;
    if (out->fields > max_headers)
        out->fields = max_headers;
    out->body = l.max_body_bytes ? l.max_body_bytes : DEFAULT_MAX_BODY_BYTES;
}

/* The walk over one head: its input, its limits, and what the fields said. */
struct head {
    const char *buf;
    const char *lim; /* the walk stops here: buf + min(len, head limit) */
    bool lim_hit;    /* lim is the head limit, not the end of the input */
    const struct eddy__http_scanner *sc;
    struct eddy_http_header *fields;
    size_t max_fields;
    size_t nfields;
    bool request;
    uint16_t status; /* why the head was rejected */

    unsigned hosts;
    const char *host;
    size_t host_len;
    bool has_cl, cl_overflow;
    uint64_t cl;
    bool has_te, te_chunked, te_chunked_twice, te_last_chunked, te_other;
    bool conn_close, conn_keep_alive;
    bool expect_continue;
};

static int reject(struct head *h, uint16_t status)
{
    h->status = status;
    return -EBADMSG;
}

/* The walk ran out at h->lim: more bytes may complete the head, unless
 * the head limit cut it. */
static int ran_out(struct head *h)
{
    return h->lim_hit ? reject(h, 431) : -EAGAIN;
}

static inline bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* s[0, n) equals the lowercase ASCII text lower, ignoring case. Exact for
 * tokens and field values: OR 0x20 maps only upper-case letters, and
 * controls that neither may hold, onto lower's letters, digits and '-'. */
static inline bool folds_to(const char *s, size_t n, const char *lower, size_t lower_len)
{
    if (n != lower_len)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((s[i] | 0x20) != lower[i])
            return false;
    return true;
}
#define FOLDS_TO(s, n, lit) folds_to((s), (n), lit, sizeof(lit) - 1)

/* Calls fn(h, element, length) on each non-empty element of a
 * comma-separated list (RFC 9110 5.6.1), OWS trimmed. */
static void each_element(struct head *h, const char *v, size_t n,
                         void (*fn)(struct head *h, const char *e, size_t len))
{
    const char *end = v + n;
    while (v < end) {
        while (v < end && (*v == ',' || is_ows(*v)))
            v++;
        const char *e = v;
        while (v < end && *v != ',')
            v++;
        const char *t = v;
        while (t > e && is_ows(t[-1]))
            t--;
        if (t > e)
            fn(h, e, (size_t)(t - e));
    }
}

static void te_coding(struct head *h, const char *e, size_t n)
{
    if (FOLDS_TO(e, n, "chunked")) {
        if (h->te_chunked)
            h->te_chunked_twice = true;
        h->te_chunked = true;
        h->te_last_chunked = true;
    } else {
        h->te_other = true;
        h->te_last_chunked = false;
    }
}

static void connection_option(struct head *h, const char *e, size_t n)
{
    if (FOLDS_TO(e, n, "close"))
        h->conn_close = true;
    else if (FOLDS_TO(e, n, "keep-alive"))
        h->conn_keep_alive = true;
}

static void expectation(struct head *h, const char *e, size_t n)
{
    if (FOLDS_TO(e, n, "100-continue"))
        h->expect_continue = true;
}

/* Content-Length = 1*DIGIT (RFC 9110 8.6): no sign, no space inside, no
 * list. Duplicates must carry the same value and fit in 64 bits. */
static int content_length(struct head *h, const char *v, size_t n)
{
    if (n == 0)
        return reject(h, 400);
    uint64_t x = 0;
    bool overflow = false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(v[i]))
            return reject(h, 400);
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            x = x * 10 + d;
    }
    if (h->has_cl && (overflow || h->cl_overflow || x != h->cl))
        return reject(h, 400);
    h->has_cl = true;
    h->cl_overflow = overflow;
    h->cl = x;
    return 0;
}

/* uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2): an IP-literal in
 * brackets, or a reg-name / IPv4 of unreserved, sub-delims and %XX. With
 * need_port, the port must be there and non-empty (CONNECT's target). */
static bool authority_ok(const char *s, size_t n, bool need_port)
{
    const char *p = s, *end = s + n;
    if (p < end && *p == '[') {
        p++;
        const char *start = p;
        while (p < end && *p != ']') {
            char c = *p;
            if (!(eddy__http_class[(uint8_t)c] & EDDY__HTTP_HEX) && c != ':' && c != '.' &&
                c != 'v' && c != 'V')
                return false;
            p++;
        }
        if (p == end || p == start)
            return false;
        p++;
    } else {
        /* reg-name and IPv4address share one alphabet; it stops at ':' */
        for (; p < end; p++) {
            uint8_t c = (uint8_t)*p;
            if (eddy__http_class[c] & EDDY__HTTP_REGNAME)
                continue;
            if (c != '%')
                break;
            if (end - p < 3 || !(eddy__http_class[(uint8_t)p[1]] & EDDY__HTTP_HEX) ||
                !(eddy__http_class[(uint8_t)p[2]] & EDDY__HTTP_HEX))
                return false;
            p += 2;
        }
        if (need_port && p == s)
            return false;
    }
    if (p == end)
        return !need_port;
    if (*p != ':')
        return false;
    p++;
    if (need_port && p == end)
        return false;
    for (; p < end; p++)
        if (!is_digit(*p))
            return false;
    return true;
}

/* Records the meaning of one stored field, by its name. */
static int field_meaning(struct head *h, const struct eddy_http_header *f)
{
    const char *n = f->name;
    switch (f->name_len) {
    case 4:
        if (h->request && FOLDS_TO(n, 4, "host")) {
            /* RFC 9112 3.2: more than one Host, or an invalid one, is 400. */
            if (++h->hosts > 1 || !authority_ok(f->value, f->value_len, false))
                return reject(h, 400);
            h->host = f->value;
            h->host_len = f->value_len;
        }
        return 0;
    case 6:
        if (h->request && FOLDS_TO(n, 6, "expect"))
            each_element(h, f->value, f->value_len, expectation);
        return 0;
    case 10:
        if (FOLDS_TO(n, 10, "connection"))
            each_element(h, f->value, f->value_len, connection_option);
        return 0;
    case 14:
        if (FOLDS_TO(n, 14, "content-length"))
            return content_length(h, f->value, f->value_len);
        return 0;
    case 17:
        if (FOLDS_TO(n, 17, "transfer-encoding")) {
            h->has_te = true;
            each_element(h, f->value, f->value_len, te_coding);
        }
        return 0;
    default:
        return 0;
    }
}

/*
 * Walks the field lines from p to the empty line. Returns the head's
 * length, -EAGAIN, or -EBADMSG with h->status (400, or 431 for the count
 * or size limit).
 */
static int parse_fields(struct head *h, const char *p)
{
    size_t n;
    int stop;
    const char *q = h->sc->fields(p, h->lim, h->fields, h->max_fields, &n, &stop);
    h->nfields = n;
    /* The stored fields all lie before where the split stopped, so their
     * meaning is judged first, as a left-to-right walk would. Only names
     * of these lengths mean something to the parser. */
    for (size_t i = 0; i < n; i++) {
        size_t nl = h->fields[i].name_len;
        if (nl == 4 || nl == 6 || nl == 10 || nl == 14 || nl == 17) {
            int rc = field_meaning(h, &h->fields[i]);
            if (rc < 0)
                return rc;
        }
    }
    switch (stop) {
    case EDDY__HTTP_FIELDS_END:
        return (int)(q - h->buf);
    case EDDY__HTTP_FIELDS_MORE:
        return ran_out(h);
    case EDDY__HTTP_FIELDS_FULL:
        return reject(h, 431);
    default:
        return reject(h, 400);
    }
}

/* Sets h->lim for an input of len bytes and a head limit of max bytes. */
static void head_bounds(struct head *h, size_t len, size_t max)
{
    h->lim_hit = len >= max;
    h->lim = h->buf + (h->lim_hit ? max : len);
}

/* The limit of the start line that begins at p: the walk of that line
 * stops at *line_lim; *hit says whether the line limit (rather than the
 * head's lim) put it there. */
static const char *line_bounds(const struct head *h, const char *p, size_t max, bool *hit)
{
    *hit = (size_t)(h->lim - p) >= max;
    return *hit ? p + max : h->lim;
}

/* Reads "HTTP/" DIGIT "." DIGIT at p (RFC 9112 2.3). Returns 8 with the
 * digits in *major and *minor; 0 when [p, lim) is a proper prefix of such
 * a version; -1 when it cannot be one. */
static int version_at(const char *p, const char *lim, int *major, int *minor)
{
    static const char shape[] = "HTTP/0.0"; /* '0': any digit */
    if (lim - p >= 8 && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '1' || p[7] == '0')) {
        *major = 1;
        *minor = p[7] - '0';
        return 8;
    }
    size_t n = (size_t)(lim - p) < 8 ? (size_t)(lim - p) : 8;
    for (size_t i = 0; i < n; i++) {
        bool ok = shape[i] == '0' ? is_digit(p[i]) : p[i] == shape[i];
        if (!ok)
            return -1;
    }
    if (n < 8)
        return 0;
    *major = p[5] - '0';
    *minor = p[7] - '0';
    return 8;
}

/* Method names are case-sensitive (RFC 9110 9.1). */
static enum eddy_http_method method_of(const char *m, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0)
            return EDDY_HTTP_GET;
        if (memcmp(m, "PUT", 3) == 0)
            return EDDY_HTTP_PUT;
        break;
    case 4:
        if (memcmp(m, "HEAD", 4) == 0)
            return EDDY_HTTP_HEAD;
        if (memcmp(m, "POST", 4) == 0)
            return EDDY_HTTP_POST;
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0)
            return EDDY_HTTP_PATCH;
        if (memcmp(m, "TRACE", 5) == 0)
            return EDDY_HTTP_TRACE;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0)
            return EDDY_HTTP_DELETE;
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0)
            return EDDY_HTTP_OPTIONS;
        if (memcmp(m, "CONNECT", 7) == 0)
            return EDDY_HTTP_CONNECT;
        break;
    default:
        break;
    }
    return EDDY_HTTP_OTHER;
}

/* Splits [t, t + n) into path and query at the first '?'. */
static void split_query(struct eddy_http_request *req, const char *t, size_t n)
{
    const char *q = memchr(t, '?', n);
    req->path = t;
    req->path_len = q ? (size_t)(q - t) : n;
    req->query = q ? q + 1 : NULL;
    req->query_len = q ? n - req->path_len - 1 : 0;
}

static inline bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Checks the request-target's form against the method and sets path and
 * query (RFC 9112 3.2). Returns false for a target that fits no form. */
static bool target_form(struct eddy_http_request *req)
{
    const char *t = req->target;
    size_t n = req->target_len;
    if (req->method == EDDY_HTTP_CONNECT) {
        /* authority-form, and only for CONNECT */
        if (!authority_ok(t, n, true))
            return false;
        req->path = t;
        req->path_len = n;
        return true;
    }
    if (t[0] == '/') {
        split_query(req, t, n);
        return true;
    }
    if (n == 1 && t[0] == '*') {
        if (req->method != EDDY_HTTP_OPTIONS)
            return false;
        req->path = t;
        req->path_len = 1;
        return true;
    }
    /* absolute-form: scheme "://" authority path-abempty [ "?" query ]. An
     * http(s) URI with an empty host, or with userinfo ('@', which
     * authority_ok refuses), is invalid (RFC 9110 4.2.1, 4.2.4). */
    size_t i = 0;
    if (!is_alpha(t[0]))
        return false;
    while (i < n && (is_alpha(t[i]) || is_digit(t[i]) || t[i] == '+' || t[i] == '-' || t[i] == '.'))
        i++;
    if (n - i < 3 || memcmp(t + i, "://", 3) != 0)
        return false;
    i += 3;
    size_t a = i;
    while (i < n && t[i] != '/' && t[i] != '?')
        i++;
    if (i == a || t[a] == ':' || !authority_ok(t + a, i - a, false))
        return false;
    /* The path is empty for "http://host" and "http://host?q"; it means "/". */
    split_query(req, t + i, n - i);
    return true;
}

static int request_head(struct head *h, struct eddy_http_request *req, const struct limits *l)
{
    const char *p = h->buf;
    /* RFC 9112 2.2: empty lines before the request line are skipped. They
     * count towards the head's size. */
    while (p != h->lim && *p == '\r') {
        if (p + 1 == h->lim)
            return ran_out(h);
        if (p[1] != '\n')
            return reject(h, 400);
        p += 2;
    }
    bool line_hit;
    const char *line_lim = line_bounds(h, p, l->line, &line_hit);
#define LINE_RAN_OUT() (line_hit ? reject(h, 414) : ran_out(h))

    /* method SP request-target SP HTTP-version CRLF, single spaces */
    const char *m = p;
    while (p != line_lim && (eddy__http_class[(uint8_t)*p] & EDDY__HTTP_TCHAR))
        p++;
    if (p == line_lim)
        return LINE_RAN_OUT();
    if (p == m || *p != ' ')
        return reject(h, 400);
    req->method_text = m;
    req->method_len = (size_t)(p - m);
    req->method = method_of(m, req->method_len);

    const char *t = ++p;
    p = h->sc->target(p, line_lim);
    if (p == line_lim)
        return LINE_RAN_OUT();
    if (p == t || *p != ' ')
        return reject(h, 400);
    req->target = t;
    req->target_len = (size_t)(p - t);
    p++;

    int major, minor;
    int v = version_at(p, line_lim, &major, &minor);
    if (v < 0)
        return reject(h, 400);
    if (v == 0)
        return LINE_RAN_OUT();
    if (major != 1 || minor > 1)
        return reject(h, 505);
    p += 8;
    if (p == line_lim)
        return LINE_RAN_OUT();
    if (*p != '\r')
        return reject(h, 400);
    if (p + 1 == line_lim)
        return LINE_RAN_OUT();
    if (p[1] != '\n')
        return reject(h, 400);
    p += 2;
#undef LINE_RAN_OUT
    req->version_minor = minor;
    if (!target_form(req))
        return reject(h, 400);

    int len = parse_fields(h, p);
    req->nheaders = h->nfields;
    if (len < 0)
        return len;

    /* Checks that need the whole head, the malformed (400) before the
     * unsupported (501) before the too large (413). */
    if (minor == 1 && h->hosts == 0)
        return reject(h, 400);
    req->host = h->host;
    req->host_len = h->host_len;
    if (h->has_te) {
        /* RFC 9112 6.1, 6.3: TE in HTTP/1.0, TE with CL, or a final coding
         * other than chunked leave the body's length unknowable. */
        if (minor == 0 || h->has_cl || !h->te_last_chunked || h->te_chunked_twice)
            return reject(h, 400);
        if (h->te_other)
            return reject(h, 501);
        req->body = EDDY_HTTP_BODY_CHUNKED;
    } else if (h->has_cl) {
        if (h->cl_overflow || h->cl > l->body)
            return reject(h, 413);
        req->body = EDDY_HTTP_BODY_LENGTH;
        req->content_length = h->cl;
    }
    /* RFC 9112 9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive". */
    req->keep_alive = !h->conn_close && (minor == 1 || h->conn_keep_alive);
    /* RFC 9110 10.1.1: a 100-continue from an HTTP/1.0 client is ignored. */
    req->expect_continue = minor == 1 && h->expect_continue;
    return len;
}

EDDY_API int eddy_http_parse_request(const char *buf, size_t len, struct eddy_http_request *req,
                                     struct eddy_http_header *headers, size_t max_headers,
                                     const struct eddy_http_limits *limits)
{
    if (!req || (!buf && len) || (!headers && max_headers))
        return -EINVAL;
    struct limits l;
    limits_of(limits, max_headers, &l);
    *req = (struct eddy_http_request){.headers = headers};
    struct head h = {
        .buf = buf,
        .sc = eddy__http_scanner(),
        .fields = headers,
        .max_fields = l.fields,
        .request = true,
    };
    head_bounds(&h, len, l.head);
    int rc = request_head(&h, req, &l);
    if (rc == -EBADMSG)
        req->status = h.status;
    return rc;
}

static int response_head(struct head *h, struct eddy_http_response *resp, const struct limits *l)
{
    const char *p = h->buf;
    bool line_hit;
    const char *line_lim = line_bounds(h, p, l->line, &line_hit);
#define LINE_RAN_OUT() (line_hit ? reject(h, 414) : ran_out(h))

    /* HTTP-version SP status-code SP [ reason-phrase ] CRLF; a missing SP
     * before an empty reason is accepted, as servers send it. */
    int major, minor;
    int v = version_at(p, line_lim, &major, &minor);
    if (v < 0)
        return reject(h, 400);
    if (v == 0)
        return LINE_RAN_OUT();
    if (major != 1 || minor > 1)
        return reject(h, 505);
    p += 8;
    if (p == line_lim)
        return LINE_RAN_OUT();
    if (*p != ' ')
        return reject(h, 400);
    p++;
    unsigned status = 0;
    for (int i = 0; i < 3; i++, p++) {
        if (p == line_lim)
            return LINE_RAN_OUT();
        if (!is_digit(*p))
            return reject(h, 400);
        status = status * 10 + (unsigned)(*p - '0');
    }
    if (status < 100)
        return reject(h, 400);
    if (p == line_lim)
        return LINE_RAN_OUT();
    const char *reason = p;
    if (*p == ' ') {
        reason = ++p;
        p = h->sc->value(p, line_lim);
        if (p == line_lim)
            return LINE_RAN_OUT();
    }
    if (*p != '\r')
        return reject(h, 400);
    if (p + 1 == line_lim)
        return LINE_RAN_OUT();
    if (p[1] != '\n')
        return reject(h, 400);
#undef LINE_RAN_OUT
    resp->version_minor = minor;
    resp->status = (uint16_t)status;
    resp->reason = reason;
    resp->reason_len = (size_t)(p - reason);
    p += 2;

    int len = parse_fields(h, p);
    resp->nheaders = h->nfields;
    if (len < 0)
        return len;
    if (h->has_cl && h->cl_overflow)
        return reject(h, 400);
    /* eddy decodes no coding but chunked, so that is the only one a
     * response may carry; TE in 1.0 or with CL is faulty framing. */
    if (h->has_te &&
        (minor == 0 || h->has_cl || !h->te_last_chunked || h->te_chunked_twice || h->te_other))
        return reject(h, 400);
    resp->content_length = h->cl;
    if (status < 200 || status == 204 || status == 304)
        resp->body = EDDY_HTTP_BODY_NONE;
    else if (h->has_te)
        resp->body = EDDY_HTTP_BODY_CHUNKED;
    else if (h->has_cl)
        resp->body = EDDY_HTTP_BODY_LENGTH;
    else
        resp->body = EDDY_HTTP_BODY_CLOSE;
    resp->keep_alive =
        !h->conn_close && (minor == 1 || h->conn_keep_alive) && resp->body != EDDY_HTTP_BODY_CLOSE;
    return len;
}

EDDY_API int eddy_http_parse_response(const char *buf, size_t len, struct eddy_http_response *resp,
                                      struct eddy_http_header *headers, size_t max_headers,
                                      const struct eddy_http_limits *limits)
{
    if (!resp || (!buf && len) || (!headers && max_headers))
        return -EINVAL;
    struct limits l;
    limits_of(limits, max_headers, &l);
    *resp = (struct eddy_http_response){.headers = headers};
    struct head h = {
        .buf = buf,
        .sc = eddy__http_scanner(),
        .fields = headers,
        .max_fields = l.fields,
        .request = false,
    };
    head_bounds(&h, len, l.head);
    int rc = response_head(&h, resp, &l);
    if (rc == -EBADMSG && (h.status == 414 || h.status == 431))
        return -EMSGSIZE;
    return rc;
}

/* ---- chunked bodies (RFC 9112 7.1) -------------------------------------------- */

enum {
    CH_SIZE_FIRST, /* the first hex digit of a chunk-size */
    CH_SIZE,       /* more digits, BWS, ';' or CR */
    CH_SIZE_BWS,   /* BWS after the size: only more BWS or ';' may follow */
    CH_EXT,        /* chunk extensions, skipped up to CR */
    CH_SIZE_LF,    /* the LF of the size line */
    CH_DATA,       /* chunk data, _left bytes to go */
    CH_DATA_CR,    /* the CRLF after chunk data */
    CH_DATA_LF,
    CH_TRAILER,      /* the start of a trailer field line, or the final CRLF */
    CH_TRAILER_NAME, /* a trailer field name, up to ':' */
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF, /* the LF of the final CRLF */
    CH_DONE,
    CH_BAD,     /* -EBADMSG was returned: sticky */
    CH_TOO_BIG, /* -EMSGSIZE was returned: sticky */
};

EDDY_API void eddy_http_chunked_init(struct eddy_http_chunked *c, uint64_t max_body_bytes)
{
    *c = (struct eddy_http_chunked){.max_body_bytes = max_body_bytes, ._state = CH_SIZE_FIRST};
}

/* The size line ended: account the chunk against the body limit. */
static int chunk_sized(struct eddy_http_chunked *c)
{
    if (c->_left > UINT64_MAX - c->_total)
        return -EBADMSG;
    c->_total += c->_left;
    if (c->max_body_bytes && c->_total > c->max_body_bytes)
        return -EMSGSIZE;
    return 0;
}

/* Steps the framing state machine over one byte. Returns 0 or an error. */
static int chunk_byte(struct eddy_http_chunked *c, char b)
{
    uint8_t cls = eddy__http_class[(uint8_t)b];
    switch (c->_state) {
    case CH_SIZE_FIRST:
    case CH_SIZE:
        if (++c->_line > CHUNK_LINE_MAX_BYTES)
            return -EMSGSIZE;
        if (cls & EDDY__HTTP_HEX) {
            if (c->_left >> 60)
                return -EBADMSG; /* the next digit would overflow 64 bits */
            unsigned d = is_digit(b) ? (unsigned)(b - '0') : (unsigned)((b | 0x20) - 'a' + 10);
            c->_left = c->_left << 4 | d;
            c->_state = CH_SIZE;
            return 0;
        }
        if (c->_state == CH_SIZE_FIRST)
            return -EBADMSG;
        if (b == ';' || is_ows(b))
            c->_state = b == ';' ? CH_EXT : CH_SIZE_BWS;
        else if (b == '\r')
            c->_state = CH_SIZE_LF;
        else
            return -EBADMSG;
        return chunk_sized(c);
    case CH_SIZE_BWS:
        if (++c->_line > CHUNK_LINE_MAX_BYTES)
            return -EMSGSIZE;
        if (b == ';')
            c->_state = CH_EXT;
        else if (!is_ows(b))
            return -EBADMSG;
        return 0;
    case CH_EXT:
        /* Extension names, values and quoted strings hold no CR or LF, so
         * the line ends at the first CR, which must start a CRLF. */
        if (++c->_line > CHUNK_LINE_MAX_BYTES)
            return -EMSGSIZE;
        if (b == '\r')
            c->_state = CH_SIZE_LF;
        else if (!(cls & EDDY__HTTP_VALUE))
            return -EBADMSG;
        return 0;
    case CH_SIZE_LF:
        if (++c->_line > CHUNK_LINE_MAX_BYTES)
            return -EMSGSIZE;
        if (b != '\n')
            return -EBADMSG;
        c->_line = 0;
        c->_state = c->_left ? CH_DATA : CH_TRAILER;
        return 0;
    case CH_DATA_CR:
        if (b != '\r')
            return -EBADMSG;
        c->_state = CH_DATA_LF;
        return 0;
    case CH_DATA_LF:
        if (b != '\n')
            return -EBADMSG;
        c->_state = CH_SIZE_FIRST;
        return 0;
    case CH_TRAILER:
    case CH_TRAILER_NAME:
    case CH_TRAILER_VALUE:
    case CH_TRAILER_LF:
    case CH_END_LF:
        if (++c->_line > TRAILER_MAX_BYTES)
            return -EMSGSIZE;
        break;
    default:
        return -EBADMSG;
    }
    /* The trailer section: field lines as in a head, then CRLF. */
    switch (c->_state) {
    case CH_TRAILER:
        if (b == '\r')
            c->_state = CH_END_LF;
        else if (cls & EDDY__HTTP_TCHAR)
            c->_state = CH_TRAILER_NAME;
        else
            return -EBADMSG; /* folding, bare LF, a control, an empty name */
        return 0;
    case CH_TRAILER_NAME:
        if (b == ':')
            c->_state = CH_TRAILER_VALUE;
        else if (!(cls & EDDY__HTTP_TCHAR))
            return -EBADMSG;
        return 0;
    case CH_TRAILER_VALUE:
        if (b == '\r')
            c->_state = CH_TRAILER_LF;
        else if (!(cls & EDDY__HTTP_VALUE))
            return -EBADMSG;
        return 0;
    case CH_TRAILER_LF:
        if (b != '\n')
            return -EBADMSG;
        c->_state = CH_TRAILER;
        return 0;
    default: /* CH_END_LF */
        if (b != '\n')
            return -EBADMSG;
        c->_state = CH_DONE;
        return 0;
    }
}

EDDY_API ssize_t eddy_http_chunked_decode(struct eddy_http_chunked *c, char *buf, size_t *len)
{
    if (!c || !len || (!buf && *len))
        return -EINVAL;
    if (c->_state == CH_BAD || c->_state == CH_TOO_BIG) {
        *len = 0;
        return c->_state == CH_BAD ? -EBADMSG : -EMSGSIZE;
    }
    char *r = buf, *w = buf, *end = buf + *len;
    while (r < end && c->_state != CH_DONE) {
        if (c->_state == CH_DATA) {
            size_t n = (size_t)(end - r);
            if (n > c->_left)
                n = (size_t)c->_left;
            if (w != r)
                memmove(w, r, n);
            w += n;
            r += n;
            c->_left -= n;
            if (c->_left == 0)
                c->_state = CH_DATA_CR;
            continue;
        }
        int rc = chunk_byte(c, *r++);
        if (rc < 0) {
            c->_state = rc == -EBADMSG ? CH_BAD : CH_TOO_BIG;
            *len = (size_t)(w - buf);
            return rc;
        }
    }
    *len = (size_t)(w - buf);
    if (c->_state != CH_DONE)
        return -EAGAIN;
    size_t rest = (size_t)(end - r);
    if (rest && w != r)
        memmove(w, r, rest);
    return (ssize_t)rest;
}

/* ---- names ------------------------------------------------------------------------ */

EDDY_API const char *eddy_http_method_name(enum eddy_http_method m)
{
    switch (m) {
    case EDDY_HTTP_GET:
        return "GET";
    case EDDY_HTTP_HEAD:
        return "HEAD";
    case EDDY_HTTP_POST:
        return "POST";
    case EDDY_HTTP_PUT:
        return "PUT";
    case EDDY_HTTP_DELETE:
        return "DELETE";
    case EDDY_HTTP_PATCH:
        return "PATCH";
    case EDDY_HTTP_OPTIONS:
        return "OPTIONS";
    case EDDY_HTTP_TRACE:
        return "TRACE";
    case EDDY_HTTP_CONNECT:
        return "CONNECT";
    default:
        return "";
    }
}

/* RFC 9110 section 15, plus 103 (RFC 8297) and 428, 429, 431, 511 (RFC
 * 6585); indexed by status % 100 within each class. */
static const char *const reasons_1xx[] = {
    [0] = "Continue",
    [1] = "Switching Protocols",
    [3] = "Early Hints",
};
static const char *const reasons_2xx[] = {
    [0] = "OK",
    [1] = "Created",
    [2] = "Accepted",
    [3] = "Non-Authoritative Information",
    [4] = "No Content",
    [5] = "Reset Content",
    [6] = "Partial Content",
};
static const char *const reasons_3xx[] = {
    [0] = "Multiple Choices",   [1] = "Moved Permanently",  [2] = "Found",
    [3] = "See Other",          [4] = "Not Modified",       [5] = "Use Proxy",
    [7] = "Temporary Redirect", [8] = "Permanent Redirect",
};
static const char *const reasons_4xx[] = {
    [0] = "Bad Request",
    [1] = "Unauthorized",
    [2] = "Payment Required",
    [3] = "Forbidden",
    [4] = "Not Found",
    [5] = "Method Not Allowed",
    [6] = "Not Acceptable",
    [7] = "Proxy Authentication Required",
    [8] = "Request Timeout",
    [9] = "Conflict",
    [10] = "Gone",
    [11] = "Length Required",
    [12] = "Precondition Failed",
    [13] = "Content Too Large",
    [14] = "URI Too Long",
    [15] = "Unsupported Media Type",
    [16] = "Range Not Satisfiable",
    [17] = "Expectation Failed",
    [21] = "Misdirected Request",
    [22] = "Unprocessable Content",
    [26] = "Upgrade Required",
    [28] = "Precondition Required",
    [29] = "Too Many Requests",
    [31] = "Request Header Fields Too Large",
};
static const char *const reasons_5xx[] = {
    [0] = "Internal Server Error",
    [1] = "Not Implemented",
    [2] = "Bad Gateway",
    [3] = "Service Unavailable",
    [4] = "Gateway Timeout",
    [5] = "HTTP Version Not Supported",
    [11] = "Network Authentication Required",
};

#define REASON(table, i) ((i) < sizeof(table) / sizeof(table[0]) ? table[i] : NULL)

EDDY_API const char *eddy_http_status_reason(unsigned status)
{
    unsigned i = status % 100;
    const char *r = NULL;
    switch (status / 100) {
    case 1:
        r = REASON(reasons_1xx, i);
        break;
    case 2:
        r = REASON(reasons_2xx, i);
        break;
    case 3:
        r = REASON(reasons_3xx, i);
        break;
    case 4:
        r = REASON(reasons_4xx, i);
        break;
    case 5:
        r = REASON(reasons_5xx, i);
        break;
    default:
        break;
    }
    return r ? r : "";
}

static inline char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c;
}

EDDY_API int eddy_http_header_find(const struct eddy_http_header *headers, size_t n,
                                   const char *name, size_t name_len)
{
    if ((!headers && n) || (!name && name_len))
        return -EINVAL;
    for (size_t i = 0; i < n && i <= INT_MAX; i++) {
        if (headers[i].name_len != name_len)
            continue;
        size_t j = 0;
        while (j < name_len && lower(headers[i].name[j]) == lower(name[j]))
            j++;
        if (j == name_len)
            return (int)i;
    }
    return -ENOENT;
}

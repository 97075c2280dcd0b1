/*
 * eddy/http.h: HTTP/1.1 (RFC 9110, RFC 9112): a strict zero-copy parser, a
 * server with a router, and a client with a connection pool.
 *
 * The aiohttp picture, in C:
 *   app.router.add_get('/hello/{name}', h)  eddy_http_server_route(srv, "GET",
 *                                              "/hello/{name}", h, arg)
 *   request.match_info['name']              eddy_http_param(ex, "name", &len)
 *   request.query['q']                      eddy_http_query(ex, "q", buf, cap)
 *   await request.read()                    eddy_http_body_read_all(ex, ...)
 *   web.Response(text=..., status=200)      eddy_http_respond(ex, 200, type, body, len)
 *   web.json_response(...)                  eddy_http_respond_json(ex, 200, json, len)
 *   web.StreamResponse / resp.write()       eddy_http_stream_begin / _write / _end
 *   web.FileResponse(path)                  eddy_http_respond_file(ex, path)
 *   web.run_app(app, port=8080)             eddy_http_server_listen + _serve
 *
 * Views: every (pointer, length) pair the parser produces points into the
 * caller's (the connection's) buffer. Views are not NUL-terminated and stay
 * valid until that buffer is read into again (for a handler: until it
 * returns or reads the body). Copy what you keep.
 */
#ifndef EDDY_HTTP_H
#define EDDY_HTTP_H

#include <eddy/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- parser ------------------------------------------------------------------
 * Stateless and incremental like picohttpparser: call it with everything
 * received so far; it answers -EAGAIN until the header block is complete,
 * then the header block's length. It never reads past len and never writes
 * to buf. Scanning uses SSE4.2 or AVX2 when the CPU has them (chosen once,
 * at first use), with a scalar fallback that gives identical results.
 *
 * Strictness (RFC 9112): the method is a token; the request-target is
 * origin-form ("/path?query"), absolute-form ("http://host/path"),
 * authority-form (CONNECT only) or "*" (OPTIONS only), of visible ASCII;
 * the version is HTTP/1.0 or HTTP/1.1 (another HTTP/x.y is 505, anything
 * else 400); lines end with CRLF (a bare LF is 400); field names are
 * tokens with no whitespace before the colon; field values are visible
 * ASCII, SP, HTAB and obs-text (0x80-0xFF), never NUL or other controls;
 * obsolete line folding is rejected; Content-Length must be digits only,
 * and duplicates must agree; Content-Length with Transfer-Encoding is
 * rejected; Transfer-Encoding must end in "chunked" and list no other
 * coding (eddy decodes none: 501); HTTP/1.0 with Transfer-Encoding is 400.
 * A request needs exactly one Host header in HTTP/1.1 (RFC 9112 3.2), and
 * a Host value must be uri-host [":" port] (400 otherwise, in any version).
 * Empty lines (CRLF) before the request line are skipped (RFC 9112 2.2).
 *
 * Order: the head is judged left to right, line by line, so the answer is
 * the first fault in it; the checks that need the whole head (Host
 * present, CL with TE, the codings) come after the empty line, 400 before
 * 501 before 413. Hence a prefix of any input gives -EAGAIN or the same
 * answer as the whole input. A limit counts as passed as soon as len
 * reaches it without the line (or head) being complete, so a client that
 * never ends its head is answered once it sends the limit's worth.
 *
 * Cost: one pass over the head, no allocation; about 0.25 us for a
 * browser's 760-byte GET with 12 fields on this project's machines.
 */

/* Parser results beyond the header length: -EAGAIN (need more bytes) and
 * -EBADMSG (reject; the status to answer is in the struct's `status`). */

enum eddy_http_method {
    EDDY_HTTP_OTHER = 0, /* a valid token eddy has no constant for */
    EDDY_HTTP_GET,
    EDDY_HTTP_HEAD,
    EDDY_HTTP_POST,
    EDDY_HTTP_PUT,
    EDDY_HTTP_DELETE,
    EDDY_HTTP_PATCH,
    EDDY_HTTP_OPTIONS,
    EDDY_HTTP_TRACE,
    EDDY_HTTP_CONNECT,
};

/* How the body that follows the header block is framed. */
enum eddy_http_body {
    EDDY_HTTP_BODY_NONE,    /* no body (requests without CL/TE; 204/304/HEAD answers) */
    EDDY_HTTP_BODY_LENGTH,  /* content_length bytes */
    EDDY_HTTP_BODY_CHUNKED, /* chunked coding: decode with eddy_http_chunked_decode */
    EDDY_HTTP_BODY_CLOSE,   /* responses only: until the connection closes */
};

struct eddy_http_header {
    const char *name;
    size_t name_len;
    const char *value; /* leading and trailing SP/HTAB removed */
    size_t value_len;
};

/* Limits, each answered with its status. Zero fields take the defaults. */
struct eddy_http_limits {
    size_t max_request_line_bytes; /* 414, the request line with its CRLF (8 KiB) */
    size_t max_header_bytes;       /* 431, the whole head with its empty lines (64 KiB) */
    size_t max_headers;            /* 431 (100; also bounded by the caller's array) */
    uint64_t max_body_bytes;       /* 413, checked against Content-Length (1 MiB) */
};

struct eddy_http_request {
    enum eddy_http_method method;
    const char *method_text;
    size_t method_len;
    const char *target; /* the request-target as sent */
    size_t target_len;
    /* The target up to '?'. For absolute-form, the path part after the
     * authority, which may be empty ("http://h" and "http://h?q": it means
     * "/"); for CONNECT, the authority ("host:port"); for OPTIONS, "*". */
    const char *path;
    size_t path_len;
    const char *query; /* after the first '?' (maybe empty), or NULL without one */
    size_t query_len;
    int version_minor;                /* HTTP/1.<version_minor>: 0 or 1 */
    struct eddy_http_header *headers; /* the caller's array, filled */
    size_t nheaders;
    const char *host; /* the Host header's value (also for absolute-form), or NULL */
    size_t host_len;
    enum eddy_http_body body;
    uint64_t content_length;
    bool keep_alive;      /* 1.1 unless Connection: close; 1.0 only with keep-alive */
    bool expect_continue; /* Expect: 100-continue, in HTTP/1.1 (1.0 ignores it) */
    uint16_t status;      /* on -EBADMSG: 400, 413, 414, 431, 501 or 505; else 0 */
};

/*
 * Parses the request head in buf[0, len). headers[0, max_headers) receives
 * the header fields (a request with more is 431). limits may be NULL.
 * Returns: the head's length including its final CRLF CRLF (the body, or
 * the next pipelined request, starts there); -EAGAIN when the head is not
 * complete yet (and no limit is passed); -EBADMSG with req->status set;
 * -EINVAL when req is NULL, or buf or headers is NULL with a length.
 * On -EAGAIN and -EBADMSG the other fields of req are unspecified.
 * buf, headers: borrowed; req's views point into buf. Suspends: no.
 * Thread rules: any thread.
 */
EDDY_API int eddy_http_parse_request(const char *buf, size_t len, struct eddy_http_request *req,
                                     struct eddy_http_header *headers, size_t max_headers,
                                     const struct eddy_http_limits *limits);

struct eddy_http_response {
    int version_minor;
    uint16_t status; /* 100-999 */
    const char *reason;
    size_t reason_len;
    struct eddy_http_header *headers;
    size_t nheaders;
    enum eddy_http_body body; /* NONE only for 1xx/204/304; the caller knows HEAD */
    uint64_t content_length;
    bool keep_alive;
};

/*
 * Parses a response head (for the client), with the request parser's field
 * rules. The status line is "HTTP/1.x NNN reason" (NNN >= 100; a missing
 * space before an empty reason is accepted). Framing (RFC 9112 6.3): 1xx,
 * 204 and 304 have no body (content_length still says what the header
 * said); then chunked; then Content-Length; else until close. The only
 * transfer coding eddy decodes is chunked, so any other is -EBADMSG.
 * keep_alive is false for HTTP/1.0 without keep-alive, for "close", and for
 * a body that ends at close. limits->max_body_bytes is not used here.
 * Returns: the head's length; -EAGAIN; -EBADMSG (malformed status line or
 * headers, a version other than 1.0/1.1, CL with TE, TE in 1.0, a bad or
 * differing Content-Length, a coding other than chunked); -EMSGSIZE (more
 * than max_headers fields, a status line above
 * limits->max_request_line_bytes, or a head above
 * limits->max_header_bytes); -EINVAL as for requests. buf, headers:
 * borrowed; resp's views point into buf. Suspends: no. Thread rules: any
 * thread.
 */
EDDY_API int eddy_http_parse_response(const char *buf, size_t len, struct eddy_http_response *resp,
                                      struct eddy_http_header *headers, size_t max_headers,
                                      const struct eddy_http_limits *limits);

/* State of a chunked-body decoder; zero it (no limit) or call
 * eddy_http_chunked_init before the first call. */
struct eddy_http_chunked {
    uint64_t _left; /* bytes left in the current chunk */
    uint64_t _total;
    size_t _line; /* bytes of the current size line, extension or trailer */
    uint8_t _state;
    uint64_t max_body_bytes; /* 0: no limit (the server sets it) */
};

/* Starts a decoder for one body of at most max_body_bytes decoded bytes
 * (0: no limit). c: borrowed. Suspends: no. */
EDDY_API void eddy_http_chunked_init(struct eddy_http_chunked *c, uint64_t max_body_bytes);

/*
 * Decodes chunked data in place: buf[0, *len) holds received bytes; on
 * return buf[0, *len) holds the decoded body bytes of this call (chunk
 * framing, extensions and trailers removed). The input may be cut
 * anywhere: the decoder keeps its place in c. Chunk extensions are
 * checked for bytes a field value may hold and skipped (a size line is at
 * most 4 KiB, CRLF included); trailers are checked as field lines and
 * dropped (at most 8 KiB, final CRLF included).
 * Returns: -EAGAIN when more input is needed (everything given was used);
 * n >= 0 when the body ended: the last n bytes of the input (not part of
 * the body, e.g. the next pipelined request) are left at buf[*len, *len+n);
 * after the end, each call returns all of its input that way. -EBADMSG for
 * a bad chunk size (no digit, not hex, above 64 bits, a sign, whitespace
 * without an extension), a missing or bare-LF line end, a bad extension or
 * trailer; -EMSGSIZE when the body passes max_body_bytes (checked at each
 * size line, before its data) or a size line or the trailers pass their
 * limit; on these two *len holds what was decoded before, and every later
 * call fails the same way. -EINVAL when c or len is NULL, or buf is NULL
 * with *len > 0. buf: borrowed. Suspends: no.
 */
EDDY_API ssize_t eddy_http_chunked_decode(struct eddy_http_chunked *c, char *buf, size_t *len);

/* The method's canonical name ("GET"), "" for EDDY_HTTP_OTHER. */
EDDY_API const char *eddy_http_method_name(enum eddy_http_method m);
/* The standard reason phrase of a status ("Not Found"), "" when unknown. */
EDDY_API const char *eddy_http_status_reason(unsigned status);
/* Finds the first header named name (ASCII case-insensitive); returns its
 * index, -ENOENT, or -EINVAL for a NULL array or name with a length. */
EDDY_API int eddy_http_header_find(const struct eddy_http_header *headers, size_t n,
                                   const char *name, size_t name_len);

/* ---- server ------------------------------------------------------------------
 * One task per connection; the handler runs in that task, so it may sleep,
 * query a database or call another service and then return. Requests of a
 * connection are answered in order; pipelined requests already buffered
 * are all answered before one write sends their responses together.
 *
 *   static int hello(struct eddy_http_exchange *ex, void *arg) {
 *       size_t n; const char *name = eddy_http_param(ex, "name", &n);
 *       char body[128]; int len = snprintf(body, sizeof body, "Hello, %.*s!", (int)n, name);
 *       return eddy_http_respond(ex, 200, "text/plain", body, (size_t)len);
 *   }
 *   eddy_http_server_create(NULL, &srv);
 *   eddy_http_server_route(srv, "GET", "/hello/{name}", hello, NULL);
 *   eddy_http_server_listen(srv, &addr, false);
 *   eddy_http_server_serve(srv);          // in a task; returns after stop
 *
 * Routing: patterns are paths whose segments are literals or {name}
 * parameters; a final "{name...}" takes the rest of the path (for static
 * files). The first route in registration order whose method and pattern
 * match wins; HEAD requests use GET routes (the body is not sent). No
 * pattern matches: 404. A pattern matches but not the method: 405 with an
 * Allow header. OPTIONS * is answered with the methods the server routes.
 *
 * Timeouts (per connection, each a timeout scope around its wait): idle
 * keep-alive (waiting for a request's first byte), header (first byte to
 * the end of the head: slow clients get 408 and are closed), body (each
 * body read), write (each response write). Errors a handler does not
 * answer become 500. Malformed requests get their 4xx/5xx with
 * Connection: close and the connection is closed.
 *
 * Graceful stop: eddy_http_server_stop closes the listener, closes idle
 * keep-alive connections at once, lets requests in flight finish (their
 * responses say Connection: close), and serve returns when the last
 * connection is gone.
 */
struct eddy_http_server;
struct eddy_http_exchange;

typedef int eddy_http_handler_fn(struct eddy_http_exchange *ex, void *arg);

struct eddy_http_server_opts {
    struct eddy_http_limits limits;
    int64_t idle_timeout_ns;   /* 0: 60 s */
    int64_t header_timeout_ns; /* 0: 10 s */
    int64_t body_timeout_ns;   /* 0: 30 s (each read of the body) */
    int64_t write_timeout_ns;  /* 0: 30 s (each response write) */
    size_t max_connections;    /* 0: 10,000; accepting pauses while at the limit */
    size_t stack_size_bytes;   /* handler stack; 0: 64 KiB */
    bool access_log;           /* one line per request to access_log_fd (default off) */
    int access_log_fd;
    const char *server_name; /* Server header; NULL: "eddy", "" to omit */
};

/* Creates a server (opts may be NULL: defaults). Returns: 0; -EINVAL;
 * -ENOMEM. opts: borrowed (server_name is copied). Suspends: no. */
EDDY_API int eddy_http_server_create(const struct eddy_http_server_opts *opts,
                                     struct eddy_http_server **out);
/* Frees the server. Returns: 0; -EBUSY while it serves. Suspends: no. */
EDDY_API int eddy_http_server_destroy(struct eddy_http_server *srv);

/*
 * Adds a route. method: "GET", "POST"... or NULL for every method. pattern:
 * "/", "/plaintext", "/hello/{name}", "/files/{path...}" (borrowed: copied).
 * Returns: 0; -EINVAL (pattern not starting with '/', bad {} syntax, more
 * than EDDY_HTTP_MAX_PARAMS parameters, a rest parameter not last, method
 * not a token); -EEXIST (same method and pattern again); -ENOMEM.
 * arg: retained until destroy. Suspends: no.
 */
#define EDDY_HTTP_MAX_PARAMS 8
EDDY_API int eddy_http_server_route(struct eddy_http_server *srv, const char *method,
                                    const char *pattern, eddy_http_handler_fn *fn, void *arg);

/* Opens the server's listener on addr (SO_REUSEPORT when reuseport, for
 * one server per loop on the same port). Returns: 0; -EBUSY when already
 * listening; errors of eddy_sock_listen. Suspends: no. */
EDDY_API int eddy_http_server_listen(struct eddy_http_server *srv, const struct eddy_addr *addr,
                                     bool reuseport);
/* The listener's address (port 0 resolved). Returns: 0; -ENOTCONN when not
 * listening. */
EDDY_API int eddy_http_server_addr(const struct eddy_http_server *srv, struct eddy_addr *out);

/*
 * Accepts and serves connections in the calling task until stopped, then
 * waits for the connections to finish. Returns: 0 after a stop; -ENOTCONN
 * when not listening; -EBUSY when already serving; -ECANCELED when the
 * serving task was cancelled (connections are cancelled too, and waited
 * for); accept's fatal errors. Suspends: yes.
 */
EDDY_API int eddy_http_server_serve(struct eddy_http_server *srv);

/* Starts the graceful stop (see above). Returns: 0; -EALREADY. Suspends:
 * no. Thread rules: the server's loop (from another thread, post it). */
EDDY_API int eddy_http_server_stop(struct eddy_http_server *srv);

struct eddy_http_server_stats {
    uint64_t connections_accepted;
    uint64_t connections_open;
    uint64_t requests;
    uint64_t responses_4xx;
    uint64_t responses_5xx;
};
EDDY_API void eddy_http_server_stats(const struct eddy_http_server *srv,
                                     struct eddy_http_server_stats *out);

/* ---- inside a handler -----------------------------------------------------
 * All calls take the exchange the handler received; none is valid after the
 * handler returns. Views follow the rule at the top of this file.
 */

/* The parsed request. */
EDDY_API const struct eddy_http_request *eddy_http_req(const struct eddy_http_exchange *ex);

/* A route parameter's raw (still percent-encoded) value, or NULL. */
EDDY_API const char *eddy_http_param(const struct eddy_http_exchange *ex, const char *name,
                                     size_t *len);

/* A request header's value by case-insensitive name, or NULL. */
EDDY_API const char *eddy_http_header(const struct eddy_http_exchange *ex, const char *name,
                                      size_t *len);

/*
 * Copies the percent-decoded value of query parameter key ('+' is a space)
 * into buf and NUL-terminates it. Returns: its length; -ENOENT when absent;
 * -ENOSPC when cap is too small; -EBADMSG for a bad %XX. Suspends: no.
 */
EDDY_API int eddy_http_query(const struct eddy_http_exchange *ex, const char *key, char *buf,
                             size_t cap);

/* Percent-decodes src into dst (cap bytes, NUL-terminated). Returns: the
 * length; -ENOSPC; -EBADMSG for a bad %XX or an encoded NUL. */
EDDY_API int eddy_http_percent_decode(const char *src, size_t len, char *dst, size_t cap);

/*
 * Reads up to len bytes of the request body (Content-Length or chunked),
 * sending "100 Continue" first when the client asked for it. Returns: the
 * count; 0 at the body's end; -EMSGSIZE past limits.max_body_bytes
 * (chunked); -EBADMSG for bad chunked framing; -ENODATA when the client
 * closed early; -ETIMEDOUT (body timeout); -ECANCELED. Suspends: yes.
 */
EDDY_API ssize_t eddy_http_body_read(struct eddy_http_exchange *ex, void *buf, size_t len);
/* Reads the whole body into buf. Returns: its length; -EMSGSIZE when it
 * does not fit in cap; the errors of eddy_http_body_read. Suspends: yes. */
EDDY_API ssize_t eddy_http_body_read_all(struct eddy_http_exchange *ex, void *buf, size_t cap);

/* Adds a response header (name and value copied; at most 4 KiB of headers
 * per response). Content-Length, Transfer-Encoding, Date and Connection are
 * the server's. Returns: 0; -EINVAL (bad name, CR/LF in value, reserved
 * name, response already started); -ENOSPC; -ENOMEM (the first header of
 * an exchange allocates its buffer). Suspends: no. */
EDDY_API int eddy_http_set_header(struct eddy_http_exchange *ex, const char *name,
                                  const char *value);

/*
 * Sends a complete response with a Content-Length body (not sent for HEAD,
 * 204 and 304). content_type may be NULL (no Content-Type). Returns: 0;
 * -EALREADY when a response was already started; -EINVAL (status outside
 * 200-599 for this call); write errors (-EPIPE, -ETIMEDOUT...). body:
 * borrowed. Suspends: yes (when the write buffer is full).
 */
EDDY_API int eddy_http_respond(struct eddy_http_exchange *ex, unsigned status,
                               const char *content_type, const void *body, size_t len);
/* eddy_http_respond with Content-Type: application/json. */
EDDY_API int eddy_http_respond_json(struct eddy_http_exchange *ex, unsigned status,
                                    const char *json, size_t len);

/* A streamed (chunked) response: begin sends the head, each write one chunk
 * (empty writes are skipped), end the last chunk. Returns: 0 or the errors
 * of eddy_http_respond. Suspends: yes. */
EDDY_API int eddy_http_stream_begin(struct eddy_http_exchange *ex, unsigned status,
                                    const char *content_type);
EDDY_API int eddy_http_stream_write(struct eddy_http_exchange *ex, const void *data, size_t len);
EDDY_API int eddy_http_stream_end(struct eddy_http_exchange *ex);

/*
 * Sends the regular file at path (borrowed) with sendfile: Content-Type by
 * extension, Last-Modified, If-Modified-Since (304), and a single byte
 * Range (206, or 416 when unsatisfiable; several ranges get the whole
 * file). A missing file is 404, a directory or other non-regular file 403,
 * an unreadable one 403. Returns: 0 once a response was sent (including
 * those errors); write errors. Suspends: yes.
 */
EDDY_API int eddy_http_respond_file(struct eddy_http_exchange *ex, const char *path);

/*
 * Serves files under root for a route "/prefix/{name...}": decodes the rest
 * parameter `param`, refuses ".." segments and NUL (404), and answers with
 * eddy_http_respond_file. A path naming a directory gets its index.html.
 * Returns: as eddy_http_respond_file. Suspends: yes.
 */
EDDY_API int eddy_http_serve_dir(struct eddy_http_exchange *ex, const char *root,
                                 const char *param);

/* The Content-Type eddy sends for a file name ("text/html; charset=utf-8"),
 * "application/octet-stream" when the extension is unknown. */
EDDY_API const char *eddy_http_content_type(const char *path);

/* ---- URLs --------------------------------------------------------------------
 * RFC 3986 URLs of the form scheme://[userinfo@]host[:port][/path][?query][#fragment],
 * parsed into views of the caller's text (no copy, no NUL guarantee).
 * Hosts are reg-names (letters, digits, "-._~", sub-delims, %XX) or
 * bracketed IPv6 literals ("[::1]", reported without the brackets). The
 * port defaults by scheme (http 80, https 443, other schemes 0).
 */
struct eddy_url {
    const char *scheme; /* as written; compare case-insensitively */
    size_t scheme_len;
    const char *userinfo; /* NULL when absent */
    size_t userinfo_len;
    const char *host; /* an IPv6 literal without its brackets */
    size_t host_len;
    bool host_is_ipv6;
    uint16_t port;      /* explicit, or the scheme's default */
    bool port_explicit; /* written in the URL */
    const char *path;   /* from the '/' on; empty when the URL has none (means "/") */
    size_t path_len;
    const char *query; /* after '?' (maybe empty), NULL without a '?' */
    size_t query_len;
    const char *fragment; /* after '#', NULL without one */
    size_t fragment_len;
};

/*
 * Parses text[0, len) (len may cover a NUL-free part of a longer string).
 * Returns: 0; -EINVAL for a malformed URL: no "scheme://", a bad scheme,
 * an empty host, a bad host byte, an unclosed or malformed IPv6 literal, a
 * port that is not digits or above 65535, a control byte, space or non-
 * ASCII byte anywhere (percent-encode them), a bad %XX. text: borrowed;
 * out's views point into it. Suspends: no. Thread rules: any thread.
 */
EDDY_API int eddy_url_parse(const char *text, size_t len, struct eddy_url *out);

/*
 * Resolves ref against the absolute URL base (RFC 3986 5.2, as a redirect's
 * Location is), writing a NUL-terminated absolute URL into out (cap bytes):
 * an absolute ref is copied; "//host/p" takes base's scheme; "/p" base's
 * scheme and authority; "?q" base's path; "p" replaces base's last path
 * segment. Dot segments are removed. Fragments are dropped. Returns: the
 * length; -EINVAL (base not a valid URL, ref malformed); -ENOSPC.
 * base, ref: borrowed. Suspends: no.
 */
EDDY_API int eddy_url_resolve(const char *base, const char *ref, char *out, size_t cap);

/*
 * Percent-encodes src[0, len) into dst (cap bytes, NUL-terminated): bytes
 * other than unreserved ones (ALPHA DIGIT "-._~") and those in keep (may be
 * NULL; "/" keeps a path's slashes) become %XX. Returns: the length;
 * -ENOSPC when dst is too small; -EINVAL for NULL arguments. Suspends: no.
 */
EDDY_API int eddy_http_percent_encode(const char *src, size_t len, char *dst, size_t cap,
                                      const char *keep);

/* ---- client ------------------------------------------------------------------
 * aiohttp's ClientSession in C:
 *   async with ClientSession() as s:       eddy_http_client_create(&opts, &c)
 *     async with s.get(url) as r:          eddy_http_client_get(c, url, &r)
 *       r.status; await r.text()           eddy_http_reply_status(r); _body(r, &len)
 *       await r.content.read(n)            eddy_http_reply_read(r, buf, n)  (stream = true)
 *       await r.json()                     eddy_http_reply_json(r, &json, &len)
 *     s.post(url, json=...)                eddy_http_client_request(c, &req, &r)
 *   gather(*(fetch(u) for u in urls),      eddy_http_fetch_many(c, urls, n, limit, replies,
 *          return_exceptions=True)                              errors)
 *
 * Pool: keep-alive connections are kept per origin (scheme, host, port)
 * and reused most-recently-released first. At most max_per_host
 * connections per origin and max_total in all are open; a request beyond
 * them waits for one (woken in FIFO order). An idle connection older than
 * idle_timeout_ns is closed instead of being taken (it stays open until
 * then: no timer runs per connection); when only the total limit blocks,
 * the least recently used idle connection of another origin is closed to
 * make room. A request on a reused connection
 * that fails before any byte of the answer arrived (the server closed it
 * while it was idle) is sent again once on a new connection, for the
 * idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) with an
 * in-memory body. A connection whose exchange failed in any way is closed,
 * never reused.
 *
 * Errors a caller can tell apart (every call below):
 *   -ENXIO         the host name does not resolve (DNS)
 *   -ECONNREFUSED  nothing listens there
 *   -ECONNRESET / -EPIPE  the server reset or closed the connection mid-exchange
 *   -ENODATA       the server closed the connection before the answer was complete
 *   -ETIMEDOUT     the connect, one read or the whole request took too long
 *   -EBADMSG       malformed status line, headers, chunked framing or gzip data
 *   -EMSGSIZE      the head or the body (decoded) above its limit
 *   -EPROTONOSUPPORT  a scheme other than http (https needs TLS, not built)
 *   -ELOOP         more redirects than max_redirects
 *   -ECANCELED     the task was cancelled
 *
 * Waiting: a client created with blocking = true uses blocking sockets
 * and no loop (one client per thread: the sync and threads modes of
 * eddy-fetch); it never waits for a pool slot (a thread does one request at
 * a time) and its timeouts are socket timeouts (SO_RCVTIMEO/SO_SNDTIMEO).
 * Otherwise the calls suspend the calling task only. Both run the same
 * request serialization, response parsing and body framing code.
 *
 * Thread rules: a client belongs to the thread (the loop) that created it.
 */
struct eddy_http_client;
struct eddy_http_reply;

struct eddy_http_client_opts {
    size_t max_per_host;        /* connections per origin; 0: 100 */
    size_t max_total;           /* connections in all; 0: 100 */
    int64_t idle_timeout_ns;    /* idle keep-alive connection lifetime; 0: 15 s */
    int64_t connect_timeout_ns; /* DNS and connect; 0: 30 s */
    int64_t read_timeout_ns;    /* each wait for the server's bytes; 0: 30 s */
    int64_t total_timeout_ns;   /* a whole request, redirects included; 0: 300 s */
    uint64_t max_body_bytes;    /* a buffered (not streamed) body, decoded; 0: 64 MiB */
    size_t max_head_bytes;      /* a response head; 0: 64 KiB */
    bool follow_redirects;      /* 301/302/303/307/308 (opt-in, as requests' allow_redirects) */
    unsigned max_redirects;     /* when following; 0: 10 */
    bool decompress;            /* send Accept-Encoding: gzip and inflate gzip bodies */
    bool blocking;              /* blocking sockets, no loop (see above) */
    const char *user_agent;     /* NULL: "eddy"; "" to send none (copied) */
};

/* Produces the next piece of a streamed request body into buf (cap bytes).
 * Returns the count, 0 at the end, or a negative errno that fails the
 * request. May suspend. */
typedef ssize_t eddy_http_body_fn(void *arg, void *buf, size_t cap);

/* One request. Zero-initialise and set what is needed: a GET of url. */
struct eddy_http_request_spec {
    const char *method; /* NULL: "GET" (or "POST" when a body is given) */
    const char *url;    /* absolute http:// URL */
    /* Extra header fields; Host, Content-Length, Transfer-Encoding and
     * Connection are the client's. */
    const struct eddy_http_header *headers;
    size_t nheaders;
    /* Query parameters appended to the URL's query, percent-encoded:
     * query[2i] is a key, query[2i+1] its value; nquery pairs. */
    const char *const *query;
    size_t nquery;
    /* The body, one of: in memory; json (body with Content-Type
     * application/json); from a file (body_fd, read from its current
     * offset, body_len bytes, or to its end when body_len is 0); streamed
     * (body_fn, sent chunked). */
    const void *body;
    size_t body_len;
    const char *json; /* NUL-terminated */
    int body_fd;      /* -1 or 0 when unused: set use_body_fd */
    bool use_body_fd;
    eddy_http_body_fn *body_fn;
    void *body_arg;
    const char *content_type; /* NULL: none (json: application/json) */
    /* true: the reply's body is read by the caller (eddy_http_reply_read),
     * holding the connection until eddy_http_reply_destroy. */
    bool stream;
};

/* Creates a client (opts may be NULL). Returns: 0; -EINVAL; -ENOMEM.
 * opts: borrowed. Suspends: no. */
EDDY_API int eddy_http_client_create(const struct eddy_http_client_opts *opts,
                                     struct eddy_http_client **out);

/* Closes the pooled connections and frees the client. Replies still held
 * must be destroyed first. Returns: 0; -EBUSY while replies are held or
 * requests run. Suspends: no. */
EDDY_API int eddy_http_client_destroy(struct eddy_http_client *c);

/*
 * Sends a request and reads the answer's head, and its body unless
 * req->stream. *out receives a reply for every status (a 404 is a reply,
 * not an error). Returns: 0; the codes listed above; -EINVAL (bad URL,
 * bad header name or value, NULL). req and what it points to: borrowed
 * for the call (body_fn and body_arg until the body is sent). Suspends:
 * yes (not for a blocking client, which blocks the thread instead).
 */
EDDY_API int eddy_http_client_request(struct eddy_http_client *c,
                                      const struct eddy_http_request_spec *req,
                                      struct eddy_http_reply **out);
/* A GET of url with a buffered body. As eddy_http_client_request. */
EDDY_API int eddy_http_client_get(struct eddy_http_client *c, const char *url,
                                  struct eddy_http_reply **out);

struct eddy_http_client_stats {
    uint64_t requests;           /* exchanges started (retries and redirects included) */
    uint64_t connections_opened; /* connects that succeeded */
    uint64_t connections_reused; /* requests sent on a pooled connection */
    uint64_t retries;            /* dead pooled connections retried */
    uint64_t connections_idle;   /* now, in the pool */
    uint64_t connections_open;   /* now, idle and busy */
};
EDDY_API void eddy_http_client_stats(const struct eddy_http_client *c,
                                     struct eddy_http_client_stats *out);

/* The reply's status code, HTTP minor version, and final URL (after
 * redirects; valid until destroy). Suspends: no. */
EDDY_API unsigned eddy_http_reply_status(const struct eddy_http_reply *r);
EDDY_API int eddy_http_reply_version_minor(const struct eddy_http_reply *r);
EDDY_API const char *eddy_http_reply_url(const struct eddy_http_reply *r);
/* The headers (views valid until destroy). */
EDDY_API const struct eddy_http_header *eddy_http_reply_headers(const struct eddy_http_reply *r,
                                                                size_t *n);
/* The first header named name (case-insensitive), or NULL. */
EDDY_API const char *eddy_http_reply_header(const struct eddy_http_reply *r, const char *name,
                                            size_t *len);
/* The buffered body, NUL-terminated (the NUL not counted); "" for a
 * streamed reply. Valid until destroy. */
EDDY_API const char *eddy_http_reply_body(const struct eddy_http_reply *r, size_t *len);
/* The body when the Content-Type is JSON (application/json or +json),
 * read as eddy_http_reply_body. Returns: 0; -EBADMSG for another type
 * (aiohttp's ContentTypeError); -EINVAL for a streamed reply. Suspends: no. */
EDDY_API int eddy_http_reply_json(const struct eddy_http_reply *r, const char **json, size_t *len);

/*
 * Reads up to len bytes of a streamed reply's body (decoded: chunked and
 * gzip framing removed). Returns: the count; 0 at the body's end; the
 * codes listed above (-ENODATA, -EBADMSG, -ETIMEDOUT...; after an error
 * the connection is closed and every later call returns the same error);
 * -EINVAL for a buffered reply. buf: borrowed.
 * Suspends: yes.
 */
EDDY_API ssize_t eddy_http_reply_read(struct eddy_http_reply *r, void *buf, size_t len);

/* Frees the reply. A connection whose body was read to the end goes back
 * to the pool; one with unread body bytes is closed. Suspends: no. */
EDDY_API void eddy_http_reply_destroy(struct eddy_http_reply *r);

/*
 * Fetches n URLs with GET, at most `limit` at once (asyncio's gather under
 * a Semaphore, with return_exceptions=True): replies[i] and errors[i]
 * (caller arrays of n) receive URL i's reply (or NULL) and 0 (or its
 * error), in URL order, whatever the completion order. One URL's failure
 * does not stop the others. The caller destroys the replies. Returns: 0
 * once every URL was tried; -ECANCELED / -ETIMEDOUT when the caller was
 * cancelled or its scope expired (URLs never started get -ECANCELED);
 * -EINVAL (NULL arrays, limit 0, a blocking client, outside a task);
 * -ENOMEM. urls: borrowed. Suspends: yes.
 */
EDDY_API int eddy_http_fetch_many(struct eddy_http_client *c, const char *const *urls, size_t n,
                                  size_t limit, struct eddy_http_reply **replies, int *errors);

#ifdef __cplusplus
}
#endif
#endif

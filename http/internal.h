/*
 * http/internal.h: what the http layer's files share.
 *
 * Parser block: the byte-class scanners behind the request and response
 * parsers (http/scan_scalar.c, http/scan_x86.c) and the way to pick one.
 * Each scanner answers "where is the first byte of [p, end) outside this
 * class?"; the parser (http/parse.c) does everything else with the byte it
 * stops at. Every implementation gives the same answer for the same input;
 * the tests and the fuzz target check that, each under every implementation
 * the CPU has.
 *
 * Server block: the server, connection and exchange structures shared by
 * http/server.c, http/router.c, http/exchange.c, http/response.c and
 * http/static.c.
 */
#ifndef EDDY_HTTP_INTERNAL_H
#define EDDY_HTTP_INTERNAL_H

#include <stdint.h>

#include "alloc/internal.h"
#include "alloc/list.h"
#include <eddy/http.h>
#include <eddy/sync.h>

/* ---- parser: scanners (http/parse.c, http/scan_*.c) ------------------------ */

/* tchar (RFC 9110 5.6.2) as a constant expression of a byte value c. */
#define EDDY__HTTP_IS_TCHAR(c)                                                                     \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z') ||     \
     (c) == '!' || ((c) >= '#' && (c) <= '\'') || (c) == '*' || (c) == '+' || (c) == '-' ||        \
     (c) == '.' || (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')

/* Bits of eddy__http_class[byte]. */
enum {
    EDDY__HTTP_TCHAR = 1u,    /* token character (RFC 9110 5.6.2) */
    EDDY__HTTP_TARGET = 2u,   /* request-target character: visible ASCII 0x21-0x7E */
    EDDY__HTTP_VALUE = 4u,    /* field-value character: HTAB, SP, 0x21-0x7E, obs-text 0x80-0xFF */
    EDDY__HTTP_HEX = 8u,      /* HEXDIG */
    EDDY__HTTP_REGNAME = 16u, /* reg-name character but '%': unreserved, sub-delims */
};

/* The class bits of each byte value; the scalar scanner and the parser's
 * short scalar loops read it. */
extern const uint8_t eddy__http_class[256];

/* Why eddy__http_scanner.fields stopped. */
enum {
    EDDY__HTTP_FIELDS_END,  /* at the empty line: returns the byte after its CRLF */
    EDDY__HTTP_FIELDS_MORE, /* ran into lim inside a line: returns lim */
    EDDY__HTTP_FIELDS_BAD,  /* a malformed line: returns the offending byte */
    EDDY__HTTP_FIELDS_FULL, /* one more well-named field than max: returns its name */
};

/* True when s is a non-empty token (a method, a field name). */
static inline bool eddy__http_is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!(eddy__http_class[(unsigned char)*s] & EDDY__HTTP_TCHAR))
            return false;
    return true;
}

/* One scanner implementation. token, target and value return the first
 * byte of [p, end) that is not in their class, or end when every byte is.
 * None reads outside [p, end), whatever the alignment (vector loads cover
 * only whole blocks inside the range). p <= end. */
struct eddy__http_scanner {
    const char *name;                                      /* "scalar", "sse42" or "avx2" */
    const char *(*token)(const char *p, const char *end);  /* EDDY__HTTP_TCHAR */
    const char *(*target)(const char *p, const char *end); /* EDDY__HTTP_TARGET */
    const char *(*value)(const char *p, const char *end);  /* EDDY__HTTP_VALUE */
    /* eddy__http_split_fields with this scanner's token and value scans
     * inlined: the per-field loop is where a head's time goes. */
    const char *(*fields)(const char *p, const char *lim, struct eddy_http_header *f, size_t max,
                          size_t *n, int *stop);
};

/*
 * Splits the field lines that start at p into f[0, max): each line is
 * `token ":" value CRLF`, the value without its leading and trailing SP and
 * HTAB. Stops at the empty line, at lim, at the first malformed line (a
 * name that is empty or not a token or not followed by ':', so also
 * obsolete folding and whitespace before the colon; a value byte that is a
 * control other than HTAB; a CR not followed by LF; a bare LF), or at a
 * well-named field when f is full; *stop says which (EDDY__HTTP_FIELDS_*)
 * and *n how many fields were stored. Reads nothing at or past lim.
 * Scanner files instantiate it with their own token and value scans, so
 * those inline; ctx is passed to them (a scanner that keeps state between
 * scans, such as precomputed class masks, keeps it there). Each scan
 * starts at or after where the previous one stopped.
 */
static inline __attribute__((always_inline)) const char *
eddy__http_split_fields(const char *p, const char *lim, struct eddy_http_header *f, size_t max,
                        size_t *n, int *stop, void *ctx,
                        const char *(*token)(void *ctx, const char *, const char *),
                        const char *(*value)(void *ctx, const char *, const char *))
{
    struct eddy_http_header *f0 = f, *f_end = f + max;
    int why;
    for (;;) {
        if (p == lim) {
            why = EDDY__HTTP_FIELDS_MORE;
            break;
        }
        if (*p == '\r') {
            if (p + 1 == lim) {
                why = EDDY__HTTP_FIELDS_MORE;
                p = lim;
            } else if (p[1] != '\n') {
                why = EDDY__HTTP_FIELDS_BAD;
            } else {
                why = EDDY__HTTP_FIELDS_END;
                p += 2;
            }
            break;
        }
        const char *name = p;
        p = token(ctx, p, lim);
        if (p == lim) {
            why = EDDY__HTTP_FIELDS_MORE;
            break;
        }
        if (p == name || *p != ':') {
            why = EDDY__HTTP_FIELDS_BAD;
            break;
        }
        if (f == f_end) {
            why = EDDY__HTTP_FIELDS_FULL;
            p = name;
            break;
        }
        const char *colon = p;
        const char *v = p + 1;
        p = value(ctx, v, lim);
        if (p == lim) {
            why = EDDY__HTTP_FIELDS_MORE;
            break;
        }
        if (*p != '\r') {
            why = EDDY__HTTP_FIELDS_BAD; /* bare LF, NUL or another control */
            break;
        }
        if (p + 1 == lim) {
            why = EDDY__HTTP_FIELDS_MORE; /* the CR's LF may still come */
            p = lim;
            break;
        }
        if (p[1] != '\n') {
            why = EDDY__HTTP_FIELDS_BAD;
            break;
        }
        const char *v_end = p;
        while (v < v_end && (*v == ' ' || *v == '\t'))
            v++;
        while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
            v_end--;
        f->name = name;
        f->name_len = (size_t)(colon - name);
        f->value = v;
        f->value_len = (size_t)(v_end - v);
        f++;
        p += 2;
    }
    *n = (size_t)(f - f0);
    *stop = why;
    return p;
}

/* Byte-wise with 8-byte SWAR skips; any CPU. */
extern const struct eddy__http_scanner eddy__http_scan_scalar;
#if defined(__x86_64__)
/* SSE4.2: PCMPESTRI with ranges for targets and values, PSHUFB nibble
 * lookups for tokens. Only call when __builtin_cpu_supports("sse4.2"). */
extern const struct eddy__http_scanner eddy__http_scan_sse42;
/* AVX2: compare-and-movemask over 32-byte blocks. Only call when
 * __builtin_cpu_supports("avx2"). */
extern const struct eddy__http_scanner eddy__http_scan_avx2;
#endif

/*
 * The scanner the parsers use. Chosen once, at first use: the one named by
 * the environment variable EDDY_HTTP_SCAN (scalar, sse42, avx2) when the CPU
 * has it, otherwise the fastest the CPU has (avx2, then sse42, then scalar).
 * Never NULL. Thread rules: any thread.
 */
const struct eddy__http_scanner *eddy__http_scanner(void);

/*
 * Forces the scanner for the whole process (tests, benchmarks): name is
 * "scalar", "sse42" or "avx2", or NULL for the automatic choice (which
 * ignores EDDY_HTTP_SCAN). Returns: 0; -EINVAL for an unknown name;
 * -EOPNOTSUPP when this CPU (or architecture) lacks the implementation, in
 * which case the current choice stays. name: borrowed. Thread rules: call
 * it while no other thread parses.
 */
int eddy__http_scan_force(const char *name);

/* ---- end of parser block ---------------------------------------------------- */

/* ---- server ---------------------------------------------------------------- */

/* Header fields a request may carry (more is 431). */
#define EDDY__HTTP_MAX_HEADERS 100
/* Write buffer (high-water mark) of a connection's stream: 16 pipelined
 * small responses fit. Larger writes go out directly. */
#define EDDY__HTTP_CONN_WRITE_BYTES (16u * 1024)
/* Bytes of extra response headers a handler may set. */
#define EDDY__HTTP_EXTRA_HEADER_BYTES 4096

struct eddy__http_route {
    struct eddy__list link;
    char *method; /* NULL: any */
    char *pattern;
    eddy_http_handler_fn *fn;
    void *arg;
};

struct eddy_http_server {
    struct eddy_http_server_opts opts;
    char *server_name;
    size_t server_name_len;
    struct eddy__list routes;
    int listen_fd;
    bool serving;
    bool stopping;
    struct eddy_task *serve_task;
    struct eddy__list conns;      /* open connections */
    struct eddy_waitq slot_wait;  /* the acceptor, while max_connections are open */
    struct eddy_waitq drain_wait; /* serve, waiting for the last connection */
    struct eddy_http_server_stats stats;
    /* Exchanges of finished requests, for the next ones (LIFO, so the
     * hottest memory is reused); at most EXCHANGE_CACHE_MAX. */
    struct eddy_http_exchange *free_exchanges;
    size_t nfree_exchanges;
};

enum eddy__http_resp_state {
    EDDY__RESP_NONE,
    EDDY__RESP_STREAMING,
    EDDY__RESP_DONE,
};

struct eddy__http_conn;

struct eddy_http_exchange {
    struct eddy__http_conn *conn;
    struct eddy_http_request req;
    const struct eddy__http_route *route;
    /* Route parameters: names point into the route's pattern, values into
     * the request's path. */
    const char *param_name[EDDY_HTTP_MAX_PARAMS];
    size_t param_name_len[EDDY_HTTP_MAX_PARAMS];
    const char *param_value[EDDY_HTTP_MAX_PARAMS];
    size_t param_value_len[EDDY_HTTP_MAX_PARAMS];
    size_t nparams;
    /* Body reading. */
    uint64_t body_left; /* Content-Length bytes not yet read */
    struct eddy_http_chunked chunked;
    bool body_done;
    bool continue_sent;
    /* Response. */
    uint8_t resp_state;
    unsigned status;
    bool close_after; /* Connection: close on the response */
    size_t extra_len;
    /* From here on, kept while the exchange waits in the server's cache
     * (exchange_init zeroes only what comes before). */
    char *extra; /* EDDY__HTTP_EXTRA_HEADER_BYTES, allocated by the first set_header */
    struct eddy_http_exchange *next_free;
    struct eddy_http_header headers[EDDY__HTTP_MAX_HEADERS];
};

/* A connection holds no exchange while it waits for a request: an idle
 * keep-alive connection is this struct, its stream (buffers released) and
 * its parked task. */
struct eddy__http_conn {
    struct eddy__list link;
    struct eddy_http_server *srv;
    struct eddy_stream *stream;
    struct eddy_task *task;
    bool idle; /* waiting for a request's first byte: a stop closes it */
    struct eddy_addr peer;
};

/* router.c: finds the route for ex->req and fills ex->params. Returns 0,
 * or the status to answer (404, 405 with *allow filled as "GET, HEAD"). */
unsigned eddy__http_route_match(struct eddy_http_server *srv, struct eddy_http_exchange *ex,
                                char *allow, size_t allow_cap);
/* The methods the server routes, for OPTIONS * ("GET, HEAD, *"). */
void eddy__http_routed_methods(const struct eddy_http_server *srv, char *allow, size_t cap);
/* Validates a route pattern. Returns 0 or -EINVAL. */
int eddy__http_pattern_check(const char *pattern);

/* response.c: a complete response for an error status, with
 * Connection: close (the caller closes the connection afterwards). */
int eddy__http_respond_error(struct eddy_http_exchange *ex, unsigned status, const char *allow);
/* Appends the IMF-fixdate of wall-clock second t ("Sun, 06 Nov 1994
 * 08:49:37 GMT", 29 bytes) to out; returns 29. */
size_t eddy__http_format_date(int64_t t, char *out);
/* Parses an IMF-fixdate. Returns 0 and *t, or -EINVAL. */
int eddy__http_parse_date(const char *s, size_t len, int64_t *t);
/* The Date header value for now, cached per thread and second. */
const char *eddy__http_date_now(void);

/* Sends a head announcing a Content-Length body of length bytes that the
 * caller then writes itself (a file). Returns 0 or a write error. */
int eddy__http_respond_head(struct eddy_http_exchange *ex, unsigned status,
                            const char *content_type, uint64_t length);
/* Writes through the connection's stream within the write timeout. */
int eddy__http_write(struct eddy_http_exchange *ex, struct iovec *iov, int n);

/* exchange.c: drains what the handler left of the body, so the next
 * request can be read. Returns 0, or < 0 when the connection must close. */
int eddy__http_body_discard(struct eddy_http_exchange *ex);

/* ---- client (http/client_conn.c, client.c, client_reply.c, gzip.c) ---------- */

/* Header fields a response may carry (more is -EMSGSIZE). */
#define EDDY__HTTP_CLIENT_MAX_HEADERS 100

struct eddy__http_origin;

/* One client connection: the transport (an fd that is non-blocking and
 * parks the task, or blocking and blocks the thread) and its read buffer. */
struct eddy__http_cconn {
    struct eddy__list link; /* in its origin's idle list while pooled */
    struct eddy__http_origin *origin;
    int fd;
    bool blocking;
    uint64_t served;       /* exchanges completed on it */
    int64_t idle_since_ns; /* when it was put back in the pool */
    int64_t read_timeout_ns;
    int64_t write_timeout_ns;
    char *rbuf;
    size_t rcap, rstart, rend;
    /* The parser's output for the current head: here rather than on the
     * task's stack, whose pages every task would otherwise touch. */
    struct eddy_http_header headers[EDDY__HTTP_CLIENT_MAX_HEADERS];
};

/* How a response body is being read. */
struct eddy__http_body_reader {
    enum eddy_http_body framing;
    uint64_t left; /* LENGTH: bytes still to come */
    struct eddy_http_chunked chunked;
    size_t pending; /* CHUNKED: decoded bytes waiting at the buffer's front */
    bool done;
    bool clean; /* ended with nothing extra buffered: the connection may be reused */
};

/* Connects to host:port (host NUL-terminated, an IPv6 literal without
 * brackets). Returns: 0 with c->fd open; the codes of eddy_tcp_connect_host
 * (-ENXIO, -ECONNREFUSED, -ETIMEDOUT...). */
int eddy__http_cconn_connect(struct eddy__http_cconn *c, const char *host, uint16_t port,
                             int64_t timeout_ns);
/* Closes the fd and frees the buffer (not c). */
void eddy__http_cconn_close(struct eddy__http_cconn *c);
/* Writes all of iov. Returns: 0; -EPIPE, -ECONNRESET, -ETIMEDOUT... */
int eddy__http_cconn_write(struct eddy__http_cconn *c, const struct iovec *iov, int n);
/* Reads more bytes into the buffer (growing it up to max_buffered).
 * Returns: the count; 0 at EOF; -EMSGSIZE at max_buffered; errors. */
ssize_t eddy__http_cconn_fill(struct eddy__http_cconn *c, size_t max_buffered);

/*
 * Reads and parses the response head (1xx heads other than 101 are
 * skipped). *got_bytes says whether any byte of the answer arrived (a
 * reused connection that fails before is retried). The head stays at
 * rbuf[rstart, rstart + head_len). Returns: head_len; -ENODATA (closed
 * before the head was complete); -EBADMSG; -EMSGSIZE; read errors.
 */
int eddy__http_read_head(struct eddy__http_cconn *c, struct eddy_http_response *resp,
                         struct eddy_http_header *headers, size_t max_headers,
                         size_t max_head_bytes, bool *got_bytes);

/* Starts reading the body of resp (head already consumed); is_head: the
 * request was HEAD (no body whatever the head says). */
void eddy__http_body_start(struct eddy__http_body_reader *br, const struct eddy_http_response *resp,
                           bool is_head);
/* Reads up to len body bytes (transfer coding removed). Returns: the
 * count; 0 at the end; -ENODATA (closed early); -EBADMSG; read errors. */
ssize_t eddy__http_body_read(struct eddy__http_cconn *c, struct eddy__http_body_reader *br,
                             void *buf, size_t len);

/* gzip.c: a streaming gunzip (Content-Encoding: gzip). */
struct eddy__http_gunzip;
/* Returns: 0; -ENOMEM; -EOPNOTSUPP when eddy was built without zlib. */
int eddy__http_gunzip_create(struct eddy__http_gunzip **out);
void eddy__http_gunzip_destroy(struct eddy__http_gunzip *g);
/* Inflates in[0, *in_len) into out (cap bytes): *in_len receives the input
 * bytes used. Returns: the output count (may be 0 when more input is
 * needed); -EBADMSG for corrupt data; 1 in *ended once the stream ended. */
ssize_t eddy__http_gunzip_run(struct eddy__http_gunzip *g, const void *in, size_t *in_len,
                              void *out, size_t cap, bool *ended);

/* client.c: the session and its per-origin pool. */
struct eddy__http_origin {
    struct eddy__list link;
    char *host; /* NUL-terminated, IPv6 without brackets */
    size_t host_len;
    char *host_header; /* the Host field's value */
    uint16_t port;
    struct eddy__list idle; /* eddy__http_cconn, most recent first */
    size_t open;            /* idle and busy */
};

struct eddy_http_client {
    struct eddy_http_client_opts opts;
    char *user_agent; /* NULL: none */
    struct eddy__list origins;
    size_t open;   /* connections, all origins */
    size_t active; /* requests running and replies held */
    struct eddy_waitq slot_wait;
    struct eddy_http_client_stats stats;
};

/* client_reply.c: a reply, holding its connection until the body ends. */
struct eddy_http_reply {
    struct eddy_http_client *client;
    struct eddy__http_cconn *conn; /* while the body is being read */
    struct eddy__http_body_reader br;
    struct eddy__http_gunzip *gz;
    char *gz_in;
    size_t gz_start, gz_len;
    bool raw_done;
    bool keep_alive;
    bool streamed;
    bool body_owned;
    int error; /* a streamed body's first read error, returned again */
    unsigned status;
    int version_minor;
    struct eddy_http_header *headers;
    size_t nheaders;
    char *body;
    size_t body_len;
    char *url;
};

/* Returns a connection whose exchange ended cleanly to its origin's idle
 * list (or closes it when the pool is over its limits). */
void eddy__http_pool_release(struct eddy_http_client *c, struct eddy__http_cconn *k);
/* Closes a connection and frees its slot in the limits. */
void eddy__http_pool_discard(struct eddy_http_client *c, struct eddy__http_cconn *k);

/* Builds a reply from the parsed head in k's buffer (copied out, then
 * consumed) and takes k until the body ends. Returns 0 or -ENOMEM. */
int eddy__http_reply_create(struct eddy_http_client *c, struct eddy__http_cconn *k,
                            const struct eddy_http_response *resp, size_t head_len, bool is_head,
                            const char *url, struct eddy_http_reply **out);
/* Reads body bytes (decoded); 0 at the end. Suspends. */
ssize_t eddy__http_reply_read(struct eddy_http_reply *r, void *buf, size_t len);
/* Reads the whole body into r->body, at most max bytes (-EMSGSIZE). */
int eddy__http_reply_buffer(struct eddy_http_reply *r, uint64_t max);
/* Gives the connection back (ok and a clean end) or closes it. */
void eddy__http_reply_let_go(struct eddy_http_reply *r, bool ok);

#endif

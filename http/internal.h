/*
 * http/internal.h: what the http layer's files share.
 */
#ifndef EDDY_HTTP_INTERNAL_H
#define EDDY_HTTP_INTERNAL_H

#include "alloc/internal.h"
#include "alloc/list.h"
#include <eddy/http.h>
#include <eddy/sync.h>

/* ---- server ---------------------------------------------------------------- */

/* Header fields a request may carry (more is 431). */
#define EDDY__HTTP_MAX_HEADERS 100
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
    struct eddy__list routes;
    int listen_fd;
    bool serving;
    bool stopping;
    struct eddy_task *serve_task;
    struct eddy__list conns;      /* open connections */
    struct eddy_waitq slot_wait;  /* the acceptor, while max_connections are open */
    struct eddy_waitq drain_wait; /* serve, waiting for the last connection */
    struct eddy_http_server_stats stats;
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
    char extra[EDDY__HTTP_EXTRA_HEADER_BYTES];
};

struct eddy__http_conn {
    struct eddy__list link;
    struct eddy_http_server *srv;
    struct eddy_stream *stream;
    struct eddy_task *task;
    bool idle; /* waiting for a request's first byte: a stop closes it */
    struct eddy_addr peer;
    struct eddy_http_header headers[EDDY__HTTP_MAX_HEADERS];
};

/* router.c: finds the route for ex->req and fills ex->params. Returns 0,
 * or the status to answer (404, 405 with *allow filled as "GET, HEAD"). */
unsigned eddy__http_route_match(struct eddy_http_server *srv, struct eddy_http_exchange *ex,
                                char *allow, size_t allow_cap);
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

#endif

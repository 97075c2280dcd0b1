/*
 * http/server.c: the server: routes, the listener, the accept loop, and
 * the connection task that reads requests, runs handlers and writes
 * responses, with its timeouts and the graceful stop.
 *
 * A connection task loops: wait for a request's first byte (idle timeout,
 * flushing earlier responses first), read until the head parses (header
 * timeout), route and run the handler, drop what it left of the body,
 * and go on while keep-alive holds. Pipelined requests already in the read
 * buffer are parsed without a read and their responses accumulate in the
 * write buffer; the flush before the next wait sends them in one write.
 * Per plaintext request that is one read and one write: the read that
 * took the request was short, so the stream parks on the fd's readiness
 * instead of reading again to find EAGAIN (io/stream.c).
 */
#include "http/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_IDLE_NS (60 * EDDY_NS_PER_SEC)
#define DEFAULT_HEADER_NS (10 * EDDY_NS_PER_SEC)
#define DEFAULT_BODY_NS (30 * EDDY_NS_PER_SEC)
#define DEFAULT_WRITE_NS (30 * EDDY_NS_PER_SEC)
#define DEFAULT_MAX_CONNECTIONS 10000
#define DEFAULT_STACK_BYTES (64u * 1024)
#define DEFAULT_REQUEST_LINE_BYTES (8u * 1024)
#define DEFAULT_HEADER_BYTES (64u * 1024)
#define DEFAULT_BODY_BYTES (1u * 1024 * 1024)
/* Pause of the acceptor after a transient accept error (ENOMEM, ENOBUFS). */
#define ACCEPT_ERROR_PAUSE_NS (10 * EDDY_NS_PER_MS)
/* Read buffer of a connection: a browser's request head fits. */
#define CONN_READ_BUFFER_BYTES (4u * 1024)
/* Exchanges kept for reuse by a server, beyond the requests in flight. */
#define EXCHANGE_CACHE_MAX 64

EDDY_API int eddy_http_server_create(const struct eddy_http_server_opts *opts,
                                     struct eddy_http_server **out)
{
    if (!out)
        return -EINVAL;
    struct eddy_http_server *srv = eddy__calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    if (opts)
        srv->opts = *opts;
    struct eddy_http_server_opts *o = &srv->opts;
    if (o->idle_timeout_ns < 0 || o->header_timeout_ns < 0 || o->body_timeout_ns < 0 ||
        o->write_timeout_ns < 0) {
        eddy__free(srv);
        return -EINVAL;
    }
    if (!o->idle_timeout_ns)
        o->idle_timeout_ns = DEFAULT_IDLE_NS;
    if (!o->header_timeout_ns)
        o->header_timeout_ns = DEFAULT_HEADER_NS;
    if (!o->body_timeout_ns)
        o->body_timeout_ns = DEFAULT_BODY_NS;
    if (!o->write_timeout_ns)
        o->write_timeout_ns = DEFAULT_WRITE_NS;
    if (!o->max_connections)
        o->max_connections = DEFAULT_MAX_CONNECTIONS;
    if (!o->stack_size_bytes)
        o->stack_size_bytes = DEFAULT_STACK_BYTES;
    if (!o->limits.max_request_line_bytes)
        o->limits.max_request_line_bytes = DEFAULT_REQUEST_LINE_BYTES;
    if (!o->limits.max_header_bytes)
        o->limits.max_header_bytes = DEFAULT_HEADER_BYTES;
    if (!o->limits.max_headers || o->limits.max_headers > EDDY__HTTP_MAX_HEADERS)
        o->limits.max_headers = EDDY__HTTP_MAX_HEADERS;
    if (!o->limits.max_body_bytes)
        o->limits.max_body_bytes = DEFAULT_BODY_BYTES;
    const char *name = o->server_name ? o->server_name : "eddy";
    srv->server_name = strdup(name);
    if (!srv->server_name || strpbrk(name, "\r\n")) {
        int rc = srv->server_name ? -EINVAL : -ENOMEM;
        free(srv->server_name);
        eddy__free(srv);
        return rc;
    }
    o->server_name = srv->server_name;
    srv->server_name_len = strlen(srv->server_name);
    eddy__list_init(&srv->routes);
    eddy__list_init(&srv->conns);
    eddy_waitq_init(&srv->slot_wait);
    eddy_waitq_init(&srv->drain_wait);
    srv->listen_fd = -1;
    *out = srv;
    return 0;
}

EDDY_API int eddy_http_server_destroy(struct eddy_http_server *srv)
{
    if (!srv)
        return -EINVAL;
    if (srv->serving)
        return -EBUSY;
    struct eddy__list *pos, *tmp;
    eddy__list_for_each_safe (pos, tmp, &srv->routes) {
        struct eddy__http_route *r = eddy__container_of(pos, struct eddy__http_route, link);
        free(r->method);
        free(r->pattern);
        eddy__free(r);
    }
    if (srv->listen_fd >= 0)
        eddy_fd_close(srv->listen_fd);
    while (srv->free_exchanges) {
        struct eddy_http_exchange *ex = srv->free_exchanges;
        srv->free_exchanges = ex->next_free;
        eddy__free(ex->extra);
        eddy__free(ex);
    }
    free(srv->server_name);
    eddy__free(srv);
    return 0;
}

EDDY_API int eddy_http_server_route(struct eddy_http_server *srv, const char *method,
                                    const char *pattern, eddy_http_handler_fn *fn, void *arg)
{
    if (!srv || !fn || (method && !eddy__http_is_token(method)) ||
        eddy__http_pattern_check(pattern) < 0)
        return -EINVAL;
    struct eddy__list *pos;
    eddy__list_for_each (pos, &srv->routes) {
        struct eddy__http_route *r = eddy__container_of(pos, struct eddy__http_route, link);
        bool same_method =
            (!r->method && !method) || (r->method && method && strcmp(r->method, method) == 0);
        if (same_method && strcmp(r->pattern, pattern) == 0)
            return -EEXIST;
    }
    struct eddy__http_route *r = eddy__calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->pattern = strdup(pattern);
    r->method = method ? strdup(method) : NULL;
    if (!r->pattern || (method && !r->method)) {
        free(r->pattern);
        free(r->method);
        eddy__free(r);
        return -ENOMEM;
    }
    r->fn = fn;
    r->arg = arg;
    eddy__list_push_back(&srv->routes, &r->link);
    return 0;
}

EDDY_API int eddy_http_server_listen(struct eddy_http_server *srv, const struct eddy_addr *addr,
                                     bool reuseport)
{
    if (!srv || !addr)
        return -EINVAL;
    if (srv->listen_fd >= 0)
        return -EBUSY;
    struct eddy_listen_opts o = {.reuseport = reuseport};
    int fd = eddy_sock_listen(addr, &o);
    if (fd < 0)
        return fd;
    srv->listen_fd = fd;
    return 0;
}

EDDY_API int eddy_http_server_addr(const struct eddy_http_server *srv, struct eddy_addr *out)
{
    if (!srv || !out)
        return -EINVAL;
    if (srv->listen_fd < 0)
        return -ENOTCONN;
    return eddy_sock_local_addr(srv->listen_fd, out);
}

EDDY_API void eddy_http_server_stats(const struct eddy_http_server *srv,
                                     struct eddy_http_server_stats *out)
{
    *out = srv->stats;
}

/* ---- one connection ------------------------------------------------------- */

/* Answers OPTIONS * with the methods the server routes. */
static int options_star(struct eddy_http_exchange *ex)
{
    char allow[256];
    eddy__http_routed_methods(ex->conn->srv, allow, sizeof(allow));
    eddy_http_set_header(ex, "Allow", allow);
    return eddy_http_respond(ex, 200, NULL, NULL, 0);
}

static void run_handler(struct eddy_http_exchange *ex)
{
    struct eddy_http_server *srv = ex->conn->srv;
    if (ex->req.path_len == 1 && ex->req.path[0] == '*' && ex->req.method == EDDY_HTTP_OPTIONS) {
        options_star(ex);
        return;
    }
    char allow[128];
    unsigned status = eddy__http_route_match(srv, ex, allow, sizeof(allow));
    if (status) {
        eddy__http_respond_error(ex, status, allow);
        return;
    }
    int rc = ex->route->fn(ex, ex->route->arg);
    if (ex->resp_state == EDDY__RESP_NONE) {
        /* An error (or no answer at all) from the handler: 500. */
        (void)rc;
        eddy__http_respond_error(ex, 500, NULL);
        ex->close_after = true;
    } else if (ex->resp_state == EDDY__RESP_STREAMING) {
        if (rc < 0)
            ex->close_after = true; /* the client sees a truncated body */
        else
            eddy_http_stream_end(ex);
    }
}

static void access_log(struct eddy_http_exchange *ex, const char *line, size_t len)
{
    char peer[EDDY_ADDR_TEXT_MAX] = "-";
    eddy_addr_format(&ex->conn->peer, peer, sizeof(peer));
    dprintf(ex->conn->srv->opts.access_log_fd, "%s [%s] \"%.*s\" %u\n", peer, eddy__http_date_now(),
            (int)len, line, ex->status);
}

/* Waits for more request bytes: flushes pending responses first. */
static ssize_t read_more(struct eddy__http_conn *c, int64_t timeout_ns, size_t max)
{
    int rc = eddy_stream_flush(c->stream);
    if (rc < 0)
        return rc;
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, timeout_ns);
    ssize_t n = eddy_stream_fill(c->stream, max);
    eddy_timeout_exit(&scope);
    return n;
}

/* Waits, idle, for the first byte of the next request: flushes the
 * responses so far and releases the stream's buffers first, so an idle
 * connection holds none (as nginx's keep-alive state). Returns true when
 * request bytes are buffered, false when the connection should close
 * (closed, idle timeout, reset, stop). */
static bool wait_request(struct eddy__http_conn *c)
{
    struct eddy_http_server *srv = c->srv;
    const char *data;
    if (eddy_stream_peek(c->stream, &data) > 0)
        return true; /* pipelined */
    if (srv->stopping)
        return false;
    int rc = eddy_stream_flush(c->stream);
    if (rc < 0)
        return false;
    eddy_stream_release_buffers(c->stream);
    c->idle = true;
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, srv->opts.idle_timeout_ns);
    ssize_t n = eddy_stream_fill(c->stream, srv->opts.limits.max_header_bytes + 1);
    eddy_timeout_exit(&scope);
    c->idle = false;
    return n > 0;
}

/* Parses the next request head into ex, reading more while it is
 * incomplete. Returns its length; 0 when the connection should close
 * quietly; < 0 after answering an error. */
static int read_head(struct eddy__http_conn *c, struct eddy_http_exchange *ex)
{
    struct eddy_http_server *srv = c->srv;
    const struct eddy_http_limits *lim = &srv->opts.limits;
    int64_t deadline = eddy_now_ns() + srv->opts.header_timeout_ns;
    for (;;) {
        const char *data;
        size_t len = eddy_stream_peek(c->stream, &data);
        int rc = eddy_http_parse_request(data, len, &ex->req, ex->headers, lim->max_headers, lim);
        if (rc > 0)
            return rc;
        if (rc == -EBADMSG) {
            ex->req.keep_alive = false;
            ex->close_after = true;
            eddy__http_respond_error(ex, ex->req.status, NULL);
            return -EBADMSG;
        }
        int64_t left = deadline - eddy_now_ns();
        ssize_t n = left > 0 ? read_more(c, left, lim->max_header_bytes + 1) : -ETIMEDOUT;
        if (n > 0)
            continue;
        if (n == -ETIMEDOUT || n == -EMSGSIZE) {
            /* A slow client (408), or a head the parser let grow past the
             * limit, which it should have answered with 431 itself. */
            ex->req.keep_alive = false;
            ex->close_after = true;
            eddy__http_respond_error(ex, n == -ETIMEDOUT ? 408 : 431, NULL);
            return (int)n;
        }
        return 0; /* closed mid-head, reset, cancelled */
    }
}

/* An exchange for the next request: the server's last released one, or a
 * new one. NULL when memory ran out. */
static struct eddy_http_exchange *exchange_acquire(struct eddy_http_server *srv)
{
    struct eddy_http_exchange *ex = srv->free_exchanges;
    if (ex) {
        srv->free_exchanges = ex->next_free;
        srv->nfree_exchanges--;
        return ex;
    }
    ex = eddy__malloc(sizeof(*ex));
    if (ex)
        ex->extra = NULL;
    return ex;
}

static void exchange_release(struct eddy_http_server *srv, struct eddy_http_exchange *ex)
{
    if (srv->nfree_exchanges >= EXCHANGE_CACHE_MAX) {
        eddy__free(ex->extra);
        eddy__free(ex);
        return;
    }
    ex->next_free = srv->free_exchanges;
    srv->free_exchanges = ex;
    srv->nfree_exchanges++;
}

static void exchange_init(struct eddy_http_exchange *ex, struct eddy__http_conn *c)
{
    /* Everything but what the cache keeps (extra's buffer, which extra_len
     * guards, and the header array, which the parser fills). */
    memset(ex, 0, offsetof(struct eddy_http_exchange, extra));
    ex->conn = c;
    ex->req.keep_alive = true;
    ex->req.version_minor = 1;
}

/* Serves one request whose first bytes are buffered. Returns true when the
 * connection goes on. */
static bool serve_request(struct eddy__http_conn *c, struct eddy_http_exchange *ex)
{
    struct eddy_http_server *srv = c->srv;
    exchange_init(ex, c);
    int head_len = read_head(c, ex);
    if (head_len <= 0)
        return false;
    srv->stats.requests++;
    eddy_stream_consume(c->stream, (size_t)head_len);
    if (ex->req.body == EDDY_HTTP_BODY_LENGTH) {
        ex->body_left = ex->req.content_length;
        ex->body_done = ex->body_left == 0;
    } else if (ex->req.body == EDDY_HTTP_BODY_CHUNKED) {
        eddy_http_chunked_init(&ex->chunked, srv->opts.limits.max_body_bytes);
    } else {
        ex->body_done = true;
    }
    char line[256];
    size_t line_len = 0;
    if (srv->opts.access_log) {
        line_len = (size_t)snprintf(line, sizeof(line), "%.*s %.*s HTTP/1.%d",
                                    (int)ex->req.method_len, ex->req.method_text,
                                    (int)ex->req.target_len, ex->req.target, ex->req.version_minor);
        if (line_len >= sizeof(line))
            line_len = sizeof(line) - 1;
    }
    run_handler(ex);
    if (srv->opts.access_log)
        access_log(ex, line, line_len);
    return !ex->close_after && ex->req.keep_alive && eddy__http_body_discard(ex) >= 0;
}

static void serve_connection(struct eddy__http_conn *c)
{
    struct eddy_http_server *srv = c->srv;
    while (wait_request(c)) {
        /* The exchange lives only while a request does: off the stack of
         * the connection's task and out of an idle connection. */
        struct eddy_http_exchange *ex = exchange_acquire(srv);
        if (!ex)
            break; /* no memory: close rather than answer wrongly */
        bool more = serve_request(c, ex);
        exchange_release(srv, ex);
        if (!more)
            break;
    }
}

static intptr_t conn_main(void *arg)
{
    struct eddy__http_conn *c = arg;
    struct eddy_http_server *srv = c->srv;
    c->task = eddy_task_current();
    serve_connection(c);
    /* Send what is buffered (a final error response) unless cancelled. */
    eddy_stream_close(c->stream);
    eddy__list_remove(&c->link);
    srv->stats.connections_open--;
    eddy_waitq_wake_one(&srv->slot_wait, 0);
    if (eddy__list_is_empty(&srv->conns))
        eddy_waitq_wake_all(&srv->drain_wait, 0);
    eddy__free(c);
    return 0;
}

static int start_connection(struct eddy_http_server *srv, int fd, const struct eddy_addr *peer)
{
    struct eddy__http_conn *c = eddy__malloc(sizeof(*c));
    if (!c) {
        eddy_fd_close(fd);
        return -ENOMEM;
    }
    c->srv = srv;
    c->idle = false;
    c->task = NULL;
    c->peer = *peer;
    struct eddy_stream_opts so = EDDY_STREAM_OPTS_DEFAULT;
    so.read_buffer_bytes = CONN_READ_BUFFER_BYTES;
    so.write_buffer_bytes = EDDY__HTTP_CONN_WRITE_BYTES;
    int rc = eddy_stream_open(fd, &so, &c->stream);
    if (rc < 0) {
        eddy_fd_close(fd);
        eddy__free(c);
        return rc;
    }
    struct eddy_task_opts to = {
        .name = "http-conn", .stack_size_bytes = srv->opts.stack_size_bytes, .detached = true};
    rc = eddy_task_spawn(conn_main, c, &to, NULL);
    if (rc < 0) {
        eddy_stream_abort(c->stream);
        eddy__free(c);
        return rc;
    }
    eddy__list_push_back(&srv->conns, &c->link);
    srv->stats.connections_open++;
    srv->stats.connections_accepted++;
    return 0;
}

/* Cancels the connections that wait for a request (all when `all`). */
static void cancel_connections(struct eddy_http_server *srv, bool all)
{
    struct eddy__list *pos;
    eddy__list_for_each (pos, &srv->conns) {
        struct eddy__http_conn *c = eddy__container_of(pos, struct eddy__http_conn, link);
        if (c->task && (all || c->idle))
            eddy_task_cancel(c->task);
    }
}

static int accept_loop(struct eddy_http_server *srv)
{
    while (!srv->stopping) {
        while (srv->stats.connections_open >= srv->opts.max_connections && !srv->stopping) {
            int rc = eddy_waitq_wait(&srv->slot_wait, EDDY_DEADLINE_NEVER);
            if (rc < 0)
                return rc;
        }
        if (srv->stopping)
            break;
        struct eddy_addr peer;
        int fd = eddy_sock_accept(srv->listen_fd, &peer);
        if (fd >= 0) {
            start_connection(srv, fd, &peer);
            continue;
        }
        if (srv->stopping && fd == -EBADF)
            break;
        if (fd == -ENOMEM || fd == -ENOBUFS) {
            int rc = eddy_sleep_ns(ACCEPT_ERROR_PAUSE_NS);
            if (rc < 0)
                return rc;
            continue;
        }
        return fd;
    }
    return 0;
}

EDDY_API int eddy_http_server_serve(struct eddy_http_server *srv)
{
    if (!srv || !eddy_task_current())
        return -EINVAL;
    if (srv->listen_fd < 0)
        return -ENOTCONN;
    if (srv->serving)
        return -EBUSY;
    srv->serving = true;
    srv->serve_task = eddy_task_current();
    int rc = accept_loop(srv);
    if (rc < 0) {
        /* Cancelled or a fatal accept error: take every connection down. */
        cancel_connections(srv, true);
        if (rc == -ECANCELED)
            eddy_task_uncancel();
    }
    while (!eddy__list_is_empty(&srv->conns)) {
        if (eddy_waitq_wait(&srv->drain_wait, EDDY_DEADLINE_NEVER) == -ECANCELED) {
            /* Cancelled while draining: stop waiting for requests in flight. */
            cancel_connections(srv, true);
            eddy_task_uncancel();
            rc = -ECANCELED;
        }
    }
    if (rc == -ECANCELED)
        eddy_task_cancel(srv->serve_task); /* restore the task's cancelled state */
    srv->serving = false;
    srv->serve_task = NULL;
    if (srv->listen_fd >= 0) {
        eddy_fd_close(srv->listen_fd);
        srv->listen_fd = -1;
    }
    return rc;
}

EDDY_API int eddy_http_server_stop(struct eddy_http_server *srv)
{
    if (!srv)
        return -EINVAL;
    if (srv->stopping)
        return -EALREADY;
    srv->stopping = true;
    if (srv->listen_fd >= 0) {
        eddy_fd_close(srv->listen_fd); /* wakes the acceptor with -EBADF */
        srv->listen_fd = -1;
    }
    eddy_waitq_wake_all(&srv->slot_wait, 0);
    cancel_connections(srv, false);
    return 0;
}

/*
 * http/client.c: the HTTP/1.1 client session: the per-origin keep-alive
 * pool, request serialization, redirects, timeouts, and fetch_many. The
 * reply (head, body buffered or streamed, gzip) is http/client_reply.c;
 * one connection's reads and body framing are http/client_conn.c.
 *
 * Pool: each origin (host, port) keeps its idle connections in a list,
 * most recently released first (a warm connection is the least likely to
 * have been closed by the server). origin->open and client->open count
 * idle and busy connections against max_per_host and max_total; a request
 * over either waits on client->slot_wait, which every release and close
 * wakes (all waiters: each rechecks its own origin's limit, so no wakeup
 * meant for another origin is lost). When only the total limit blocks and
 * another origin has idle connections, its oldest idle one is closed to
 * make room. Idle connections older than idle_timeout_ns are closed when
 * they would be taken. Origins live until the client is destroyed.
 *
 * Retry: a request sent on a pooled connection that fails before any byte
 * of the answer arrived (the server closed the idle connection, racing
 * with our write: -EPIPE, -ECONNRESET, or EOF) is sent once more on a new
 * connection when the method is idempotent (RFC 9110 9.2.2) and its body
 * can be replayed (none, or in memory).
 *
 * Timeouts: the total one is a timeout scope around the whole request
 * (redirects included), connect a deadline of eddy_tcp_connect_host, read
 * and write scopes around each wait (client_conn.c). A blocking client
 * uses socket timeouts instead, and checks the total one between redirects.
 *
 * Costs per request on a pooled connection: one writev for the head and an
 * in-memory body, usually one read for a small answer, one parse of the
 * head, two allocations for the reply (head copy, body).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http/internal.h"

#define DEFAULT_MAX_CONNS 100
#define DEFAULT_IDLE_NS (15 * EDDY_NS_PER_SEC)
#define DEFAULT_CONNECT_NS (30 * EDDY_NS_PER_SEC)
#define DEFAULT_READ_NS (30 * EDDY_NS_PER_SEC)
#define DEFAULT_TOTAL_NS (300 * EDDY_NS_PER_SEC)
#define DEFAULT_MAX_BODY (64u << 20)
#define DEFAULT_MAX_HEAD (64u << 10)
#define DEFAULT_MAX_REDIRECTS 10
#define URL_MAX 8192
/* The chunk size of file and streamed request bodies. */
#define BODY_CHUNK_BYTES (64u * 1024)
/* A redirect's own body is read (to keep the connection) up to this. */
#define REDIRECT_BODY_MAX (64u * 1024)

/* ---- client ------------------------------------------------------------- */

EDDY_API int eddy_http_client_create(const struct eddy_http_client_opts *opts,
                                     struct eddy_http_client **out)
{
    if (!out)
        return -EINVAL;
    struct eddy_http_client_opts o = opts ? *opts : (struct eddy_http_client_opts){0};
    if (o.idle_timeout_ns < 0 || o.connect_timeout_ns < 0 || o.read_timeout_ns < 0 ||
        o.total_timeout_ns < 0)
        return -EINVAL;
    if (!o.max_per_host)
        o.max_per_host = DEFAULT_MAX_CONNS;
    if (!o.max_total)
        o.max_total = DEFAULT_MAX_CONNS;
    if (!o.idle_timeout_ns)
        o.idle_timeout_ns = DEFAULT_IDLE_NS;
    if (!o.connect_timeout_ns)
        o.connect_timeout_ns = DEFAULT_CONNECT_NS;
    if (!o.read_timeout_ns)
        o.read_timeout_ns = DEFAULT_READ_NS;
    if (!o.total_timeout_ns)
        o.total_timeout_ns = DEFAULT_TOTAL_NS;
    if (!o.max_body_bytes)
        o.max_body_bytes = DEFAULT_MAX_BODY;
    if (!o.max_head_bytes)
        o.max_head_bytes = DEFAULT_MAX_HEAD;
    if (!o.max_redirects)
        o.max_redirects = DEFAULT_MAX_REDIRECTS;
    const char *ua = o.user_agent ? o.user_agent : "eddy";
    if (strpbrk(ua, "\r\n"))
        return -EINVAL;
    struct eddy_http_client *c = eddy__calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    if (*ua) {
        c->user_agent = strdup(ua);
        if (!c->user_agent) {
            eddy__free(c);
            return -ENOMEM;
        }
    }
    o.user_agent = NULL;
    c->opts = o;
    eddy__list_init(&c->origins);
    eddy_waitq_init(&c->slot_wait);
    *out = c;
    return 0;
}

static void conn_free(struct eddy__http_cconn *k)
{
    eddy__http_cconn_close(k);
    eddy__free(k);
}

EDDY_API int eddy_http_client_destroy(struct eddy_http_client *c)
{
    if (!c)
        return -EINVAL;
    if (c->active)
        return -EBUSY;
    struct eddy__list *pos, *tmp;
    eddy__list_for_each_safe (pos, tmp, &c->origins) {
        struct eddy__http_origin *o = eddy__container_of(pos, struct eddy__http_origin, link);
        struct eddy__list *p2, *t2;
        eddy__list_for_each_safe (p2, t2, &o->idle) {
            struct eddy__http_cconn *k = eddy__container_of(p2, struct eddy__http_cconn, link);
            conn_free(k);
        }
        free(o->host);
        free(o->host_header);
        eddy__free(o);
    }
    free(c->user_agent);
    eddy__free(c);
    return 0;
}

EDDY_API void eddy_http_client_stats(const struct eddy_http_client *c,
                                     struct eddy_http_client_stats *out)
{
    *out = c->stats;
    out->connections_open = c->open;
    uint64_t idle = 0;
    struct eddy__list *pos, *p2;
    eddy__list_for_each (pos, &c->origins) {
        struct eddy__http_origin *o = eddy__container_of(pos, struct eddy__http_origin, link);
        eddy__list_for_each (p2, &o->idle)
            idle++;
    }
    out->connections_idle = idle;
}

/* ---- the pool ----------------------------------------------------------- */

static int find_origin(struct eddy_http_client *c, const struct eddy_url *u,
                       struct eddy__http_origin **out)
{
    struct eddy__list *pos;
    eddy__list_for_each (pos, &c->origins) {
        struct eddy__http_origin *o = eddy__container_of(pos, struct eddy__http_origin, link);
        if (o->port == u->port && o->host_len == u->host_len &&
            strncasecmp(o->host, u->host, u->host_len) == 0) {
            *out = o;
            return 0;
        }
    }
    struct eddy__http_origin *o = eddy__calloc(1, sizeof(*o));
    if (!o)
        return -ENOMEM;
    o->host = strndup(u->host, u->host_len);
    size_t cap = u->host_len + 16;
    o->host_header = malloc(cap);
    if (!o->host || !o->host_header) {
        free(o->host);
        free(o->host_header);
        eddy__free(o);
        return -ENOMEM;
    }
    const char *l = u->host_is_ipv6 ? "[" : "", *r = u->host_is_ipv6 ? "]" : "";
    if (u->port == 80)
        snprintf(o->host_header, cap, "%s%.*s%s", l, (int)u->host_len, u->host, r);
    else
        snprintf(o->host_header, cap, "%s%.*s%s:%u", l, (int)u->host_len, u->host, r, u->port);
    o->port = u->port;
    o->host_len = u->host_len;
    eddy__list_init(&o->idle);
    eddy__list_push_front(&c->origins, &o->link);
    *out = o;
    return 0;
}

/* Closes a connection that holds a slot, and frees the slot. */
void eddy__http_pool_discard(struct eddy_http_client *c, struct eddy__http_cconn *k)
{
    if (eddy__list_is_linked(&k->link))
        eddy__list_remove(&k->link);
    k->origin->open--;
    c->open--;
    conn_free(k);
    if (!c->opts.blocking)
        eddy_waitq_wake_all(&c->slot_wait, 0);
}

/* Puts a connection whose exchange ended cleanly back in its pool. */
void eddy__http_pool_release(struct eddy_http_client *c, struct eddy__http_cconn *k)
{
    k->served++;
    k->idle_since_ns = eddy_now_ns();
    eddy__list_push_front(&k->origin->idle, &k->link);
    if (!c->opts.blocking && !eddy_waitq_is_empty(&c->slot_wait))
        eddy_waitq_wake_all(&c->slot_wait, 0);
}

/* Closes the least recently used idle connection of another origin. */
static bool evict_idle(struct eddy_http_client *c, struct eddy__http_origin *except)
{
    struct eddy__list *pos;
    eddy__list_for_each (pos, &c->origins) {
        struct eddy__http_origin *o = eddy__container_of(pos, struct eddy__http_origin, link);
        if (o == except || eddy__list_is_empty(&o->idle))
            continue;
        struct eddy__http_cconn *k =
            eddy__container_of(o->idle.prev, struct eddy__http_cconn, link);
        eddy__http_pool_discard(c, k);
        return true;
    }
    return false;
}

/* A connection for origin o: a pooled one (*reused) or a new one. */
static int conn_acquire(struct eddy_http_client *c, struct eddy__http_origin *o, bool fresh,
                        struct eddy__http_cconn **out, bool *reused)
{
    for (;;) {
        while (!fresh && !eddy__list_is_empty(&o->idle)) {
            struct eddy__http_cconn *k =
                eddy__container_of(eddy__list_pop_front(&o->idle), struct eddy__http_cconn, link);
            if (eddy_now_ns() - k->idle_since_ns > c->opts.idle_timeout_ns) {
                eddy__http_pool_discard(c, k);
                continue;
            }
            *out = k;
            *reused = true;
            return 0;
        }
        bool room = o->open < c->opts.max_per_host && c->open < c->opts.max_total;
        if (!room && o->open < c->opts.max_per_host && evict_idle(c, o))
            continue;
        if (room || c->opts.blocking)
            break;
        if (fresh && !eddy__list_is_empty(&o->idle)) {
            /* A retry needs a new connection: make room with an idle one. */
            eddy__http_pool_discard(
                c, eddy__container_of(o->idle.prev, struct eddy__http_cconn, link));
            continue;
        }
        int rc = eddy_waitq_wait(&c->slot_wait, EDDY_DEADLINE_NEVER);
        if (rc < 0)
            return rc;
    }
    /* malloc, not calloc: the header array is written only as far as a
     * head's fields go, so its pages are touched only when used. */
    struct eddy__http_cconn *k = eddy__malloc(sizeof(*k));
    if (!k)
        return -ENOMEM;
    memset(k, 0, offsetof(struct eddy__http_cconn, headers));
    k->fd = -1;
    k->blocking = c->opts.blocking;
    k->read_timeout_ns = c->opts.read_timeout_ns;
    k->write_timeout_ns = c->opts.read_timeout_ns;
    k->origin = o;
    eddy__list_init(&k->link);
    /* The slot is taken before the connect parks, so that concurrent
     * requests count it. */
    o->open++;
    c->open++;
    int rc = eddy__http_cconn_connect(k, o->host, o->port, c->opts.connect_timeout_ns);
    if (rc < 0) {
        eddy__http_pool_discard(c, k);
        return rc;
    }
    c->stats.connections_opened++;
    *out = k;
    *reused = false;
    return 0;
}

/* ---- request serialization ---------------------------------------------- */

struct sb {
    char *p;
    size_t len, cap;
    bool heap;
    bool oom;
};

static void sb_put(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap * 2;
        while (cap - b->len < n)
            cap *= 2;
        char *p = eddy__malloc(cap);
        if (!p) {
            b->oom = true;
            return;
        }
        memcpy(p, b->p, b->len);
        if (b->heap)
            eddy__free(b->p);
        b->p = p;
        b->cap = cap;
        b->heap = true;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_puts(struct sb *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_encode(struct sb *b, const char *s)
{
    char tmp[256];
    size_t len = strlen(s);
    while (len > 0) {
        size_t n = len < sizeof(tmp) / 3 - 1 ? len : sizeof(tmp) / 3 - 1;
        int m = eddy_http_percent_encode(s, n, tmp, sizeof(tmp), NULL);
        sb_put(b, tmp, (size_t)m);
        s += n;
        len -= n;
    }
}

static bool is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(eddy__http_class[(unsigned char)s[i]] & EDDY__HTTP_TCHAR))
            return false;
    return true;
}

static bool name_is(const struct eddy_http_header *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

static bool has_header(const struct eddy_http_request_spec *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (name_is(&req->headers[i], name))
            return true;
    return false;
}

static int check_headers(const struct eddy_http_request_spec *req)
{
    if (req->nheaders && !req->headers)
        return -EINVAL;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct eddy_http_header *h = &req->headers[i];
        if (!h->name || !is_token(h->name, h->name_len) || (!h->value && h->value_len))
            return -EINVAL;
        for (size_t j = 0; j < h->value_len; j++) {
            unsigned char ch = (unsigned char)h->value[j];
            if (ch == '\r' || ch == '\n' || ch == 0)
                return -EINVAL;
        }
        if (name_is(h, "Host") || name_is(h, "Content-Length") || name_is(h, "Transfer-Encoding") ||
            name_is(h, "Connection"))
            return -EINVAL;
    }
    return 0;
}

enum body_kind { BODY_NONE, BODY_MEMORY, BODY_FILE, BODY_STREAM };

struct prepared {
    const char *method;
    enum body_kind kind;
    const void *body;
    uint64_t body_len;
    const char *content_type;
};

static void build_head(struct eddy_http_client *c, const struct eddy__http_origin *o,
                       const struct eddy_url *u, const struct eddy_http_request_spec *req,
                       const struct prepared *pr, struct sb *b)
{
    sb_puts(b, pr->method);
    sb_put(b, " ", 1);
    if (u->path_len)
        sb_put(b, u->path, u->path_len);
    else
        sb_put(b, "/", 1);
    bool q = false;
    if (u->query) {
        sb_put(b, "?", 1);
        sb_put(b, u->query, u->query_len);
        q = true;
    }
    for (size_t i = 0; i < req->nquery; i++) {
        sb_put(b, q ? "&" : "?", 1);
        q = true;
        sb_encode(b, req->query[2 * i]);
        sb_put(b, "=", 1);
        sb_encode(b, req->query[2 * i + 1]);
    }
    sb_puts(b, " HTTP/1.1\r\nHost: ");
    sb_puts(b, o->host_header);
    sb_put(b, "\r\n", 2);
    if (c->user_agent && !has_header(req, "User-Agent")) {
        sb_puts(b, "User-Agent: ");
        sb_puts(b, c->user_agent);
        sb_put(b, "\r\n", 2);
    }
    if (!has_header(req, "Accept"))
        sb_puts(b, req->json ? "Accept: application/json\r\n" : "Accept: */*\r\n");
    if (c->opts.decompress && !has_header(req, "Accept-Encoding"))
        sb_puts(b, "Accept-Encoding: gzip\r\n");
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct eddy_http_header *h = &req->headers[i];
        sb_put(b, h->name, h->name_len);
        sb_put(b, ": ", 2);
        sb_put(b, h->value, h->value_len);
        sb_put(b, "\r\n", 2);
    }
    if (pr->content_type && !has_header(req, "Content-Type")) {
        sb_puts(b, "Content-Type: ");
        sb_puts(b, pr->content_type);
        sb_put(b, "\r\n", 2);
    }
    if (pr->kind == BODY_STREAM) {
        sb_puts(b, "Transfer-Encoding: chunked\r\n");
    } else if (pr->kind != BODY_NONE || strcmp(pr->method, "POST") == 0 ||
               strcmp(pr->method, "PUT") == 0 || strcmp(pr->method, "PATCH") == 0) {
        char cl[48];
        int n =
            snprintf(cl, sizeof(cl), "Content-Length: %llu\r\n", (unsigned long long)pr->body_len);
        sb_put(b, cl, (size_t)n);
    }
    sb_put(b, "\r\n", 2);
}

/* Sends the head and the body. */
static int send_request(struct eddy__http_cconn *k, struct sb *head,
                        const struct eddy_http_request_spec *req, const struct prepared *pr)
{
    struct iovec iov[2] = {{.iov_base = head->p, .iov_len = head->len}};
    int n = 1;
    if (pr->kind == BODY_MEMORY && pr->body_len) {
        iov[1] = (struct iovec){.iov_base = (void *)pr->body, .iov_len = (size_t)pr->body_len};
        n = 2;
    }
    int rc = eddy__http_cconn_write(k, iov, n);
    if (rc < 0 || pr->kind == BODY_MEMORY || pr->kind == BODY_NONE)
        return rc;
    char *chunk = eddy__malloc(BODY_CHUNK_BYTES + 32);
    if (!chunk)
        return -ENOMEM;
    uint64_t left = pr->body_len;
    for (;;) {
        ssize_t got;
        if (pr->kind == BODY_FILE) {
            if (left == 0)
                break;
            size_t want = left < BODY_CHUNK_BYTES ? (size_t)left : BODY_CHUNK_BYTES;
            /* A regular file: the read may block the loop for one chunk
             * (page cache hits are microseconds). */
            do {
                got = read(req->body_fd, chunk, want);
            } while (got < 0 && errno == EINTR);
            if (got < 0) {
                rc = -errno;
                break;
            }
            if (got == 0) {
                rc = -ENODATA; /* the file is shorter than body_len */
                break;
            }
            left -= (uint64_t)got;
            rc = eddy__http_cconn_write(k, &(struct iovec){chunk, (size_t)got}, 1);
        } else {
            got = req->body_fn(req->body_arg, chunk, BODY_CHUNK_BYTES);
            if (got < 0) {
                rc = (int)got;
                break;
            }
            char size[24];
            int sn = snprintf(size, sizeof(size), "%zx\r\n", (size_t)got);
            struct iovec v[3] = {{size, (size_t)sn}, {chunk, (size_t)got}, {(void *)"\r\n", 2}};
            if (got == 0) {
                rc = eddy__http_cconn_write(k, &(struct iovec){(void *)"0\r\n\r\n", 5}, 1);
                break;
            }
            rc = eddy__http_cconn_write(k, v, 3);
        }
        if (rc < 0)
            break;
    }
    eddy__free(chunk);
    return rc;
}

static int prepare(const struct eddy_http_request_spec *req, struct prepared *pr)
{
    memset(pr, 0, sizeof(*pr));
    int bodies = (req->body != NULL || req->body_len) + (req->json != NULL) + req->use_body_fd +
                 (req->body_fn != NULL);
    if (bodies > 1 || (req->body_len && !req->body && !req->use_body_fd) ||
        (req->nquery && !req->query))
        return -EINVAL;
    pr->content_type = req->content_type;
    if (req->json) {
        pr->kind = BODY_MEMORY;
        pr->body = req->json;
        pr->body_len = strlen(req->json);
        if (!pr->content_type)
            pr->content_type = "application/json";
    } else if (req->body) {
        pr->kind = BODY_MEMORY;
        pr->body = req->body;
        pr->body_len = req->body_len;
    } else if (req->use_body_fd) {
        if (req->body_fd < 0)
            return -EINVAL;
        pr->kind = BODY_FILE;
        pr->body_len = req->body_len;
        if (!pr->body_len) {
            off_t cur = lseek(req->body_fd, 0, SEEK_CUR);
            off_t end = lseek(req->body_fd, 0, SEEK_END);
            if (cur < 0 || end < 0 || lseek(req->body_fd, cur, SEEK_SET) < 0)
                return -errno;
            pr->body_len = (uint64_t)(end - cur);
        }
    } else if (req->body_fn) {
        pr->kind = BODY_STREAM;
    }
    pr->method = req->method ? req->method : (pr->kind != BODY_NONE ? "POST" : "GET");
    if (!is_token(pr->method, strlen(pr->method)))
        return -EINVAL;
    for (size_t i = 0; i < 2 * req->nquery; i++)
        if (!req->query[i])
            return -EINVAL;
    return check_headers(req);
}

static bool is_idempotent(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") || !strcmp(m, "DELETE") ||
           !strcmp(m, "OPTIONS") || !strcmp(m, "TRACE");
}

/* ---- one exchange (with its one retry) ---------------------------------- */

static bool retryable(int rc)
{
    return rc == -EPIPE || rc == -ECONNRESET || rc == -ENODATA;
}

static int exchange(struct eddy_http_client *c, const struct eddy_http_request_spec *req,
                    const struct prepared *pr, const char *url, struct eddy_http_reply **out)
{
    struct eddy_url u;
    if (eddy_url_parse(url, strlen(url), &u) < 0)
        return -EINVAL;
    if (u.scheme_len != 4 || strncasecmp(u.scheme, "http", 4) != 0)
        return -EPROTONOSUPPORT;
    struct eddy__http_origin *o;
    int rc = find_origin(c, &u, &o);
    if (rc < 0)
        return rc;
    /* Room for a usual head (~150 bytes), longer ones go to the heap: at
     * 1 KiB the connect path reached a third stack page, one more page
     * fault and 4 KiB of memory per request in flight. */
    char small[512];
    struct sb head = {.p = small, .cap = sizeof(small)};
    build_head(c, o, &u, req, pr, &head);
    if (head.oom)
        return -ENOMEM;
    bool may_retry = is_idempotent(pr->method) && pr->kind != BODY_FILE && pr->kind != BODY_STREAM;
    bool fresh = false;
    for (;;) {
        struct eddy__http_cconn *k;
        bool reused;
        rc = conn_acquire(c, o, fresh, &k, &reused);
        if (rc < 0)
            break;
        c->stats.requests++;
        if (reused)
            c->stats.connections_reused++;
        bool got = false;
        rc = send_request(k, &head, req, pr);
        struct eddy_http_response resp;
        if (rc == 0)
            rc = eddy__http_read_head(k, &resp, k->headers, EDDY__HTTP_CLIENT_MAX_HEADERS,
                                      c->opts.max_head_bytes, &got);
        if (rc >= 0) {
            rc = eddy__http_reply_create(c, k, &resp, (size_t)rc, strcmp(pr->method, "HEAD") == 0,
                                         url, out);
            if (rc < 0)
                eddy__http_pool_discard(c, k);
            break;
        }
        eddy__http_pool_discard(c, k);
        if (reused && !got && may_retry && retryable(rc) && !fresh) {
            c->stats.retries++;
            fresh = true;
            continue;
        }
        break;
    }
    if (head.heap)
        eddy__free(head.p);
    return rc;
}

static bool is_redirect(unsigned status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static int request(struct eddy_http_client *c, const struct eddy_http_request_spec *req,
                   struct eddy_http_reply **out)
{
    struct prepared pr;
    int rc = prepare(req, &pr);
    if (rc < 0)
        return rc;
    /* Redirects need two URL buffers and one for the Location: on the heap
     * (a task's stack would be probed page by page for them), and only
     * once a redirect is followed. */
    const char *url = req->url;
    char *bufs = NULL;
    int which = 0;
    int64_t deadline = eddy_clock_ns() + c->opts.total_timeout_ns;
    unsigned redirects = 0;
    struct eddy_http_request_spec cur = *req;
    while (rc == 0) {
        struct eddy_http_reply *r = NULL;
        bool follow = c->opts.follow_redirects;
        rc = exchange(c, &cur, &pr, url, &r);
        if (rc < 0)
            break;
        size_t loc_len = 0;
        const char *loc = eddy_http_reply_header(r, "Location", &loc_len);
        if (!follow || !is_redirect(r->status) || !loc) {
            if (cur.stream)
                r->streamed = true;
            else
                rc = eddy__http_reply_buffer(r, c->opts.max_body_bytes);
            if (rc < 0) {
                eddy_http_reply_destroy(r);
                break;
            }
            *out = r;
            break;
        }
        /* Follow: read this reply's (small) body to keep the connection. */
        unsigned status = r->status;
        if (!bufs)
            bufs = eddy__malloc(3 * URL_MAX);
        char *ref = bufs + 2 * URL_MAX;
        rc = bufs ? eddy__http_reply_buffer(r, REDIRECT_BODY_MAX) : -ENOMEM;
        if (rc == 0 && loc_len >= URL_MAX)
            rc = -EBADMSG;
        if (rc == 0) {
            memcpy(ref, loc, loc_len);
            ref[loc_len] = 0;
        }
        eddy_http_reply_destroy(r);
        if (rc == -EMSGSIZE)
            rc = 0; /* only the redirect's body was large: drop the connection */
        if (rc < 0)
            break;
        if (++redirects > c->opts.max_redirects) {
            rc = -ELOOP;
            break;
        }
        if (c->opts.blocking && eddy_clock_ns() > deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        char *next = bufs + which * URL_MAX;
        which ^= 1;
        int n = eddy_url_resolve(url, ref, next, URL_MAX);
        if (n < 0) {
            rc = -EBADMSG; /* a Location that is no URL, or too long */
            break;
        }
        url = next;
        /* 303 turns any method but HEAD into GET; 301 and 302 turn POST
         * into GET (as browsers and requests do); 307 and 308 keep both. */
        if ((status == 303 && strcmp(pr.method, "HEAD") != 0) ||
            ((status == 301 || status == 302) && strcmp(pr.method, "POST") == 0)) {
            pr.method = "GET";
            pr.kind = BODY_NONE;
            pr.body_len = 0;
            pr.content_type = NULL;
            cur.json = NULL;
        } else if (pr.kind == BODY_FILE || pr.kind == BODY_STREAM) {
            rc = -EINVAL; /* the body cannot be sent twice */
            break;
        }
    }
    eddy__free(bufs);
    return rc;
}

EDDY_API int eddy_http_client_request(struct eddy_http_client *c,
                                      const struct eddy_http_request_spec *req,
                                      struct eddy_http_reply **out)
{
    if (!c || !req || !req->url || !out)
        return -EINVAL;
    *out = NULL;
    if (c->opts.blocking) {
        c->active++;
        int rc = request(c, req, out);
        c->active--;
        return rc;
    }
    if (!eddy_task_current())
        return -EINVAL;
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, c->opts.total_timeout_ns);
    c->active++;
    int rc = request(c, req, out);
    c->active--;
    eddy_timeout_exit(&scope);
    return rc;
}

EDDY_API int eddy_http_client_get(struct eddy_http_client *c, const char *url,
                                  struct eddy_http_reply **out)
{
    struct eddy_http_request_spec req = {.url = url};
    return eddy_http_client_request(c, &req, out);
}

/* ---- fetch_many --------------------------------------------------------- */

struct fetch_one {
    struct eddy_http_client *client;
    const char *url;
    struct eddy_http_reply **reply;
};

static intptr_t fetch_call(void *arg)
{
    struct fetch_one *f = arg;
    return eddy_http_client_get(f->client, f->url, f->reply);
}

EDDY_API int eddy_http_fetch_many(struct eddy_http_client *c, const char *const *urls, size_t n,
                                  size_t limit, struct eddy_http_reply **replies, int *errors)
{
    if (!c || (n && (!urls || !replies || !errors)) || limit == 0 || c->opts.blocking ||
        !eddy_task_current())
        return -EINVAL;
    if (n == 0)
        return 0;
    struct fetch_one *f = eddy__malloc(n * sizeof(*f));
    struct eddy_call *calls = eddy__malloc(n * sizeof(*calls));
    intptr_t *results = eddy__malloc(n * sizeof(*results));
    int rc = -ENOMEM;
    if (f && calls && results) {
        for (size_t i = 0; i < n; i++) {
            replies[i] = NULL;
            f[i] = (struct fetch_one){.client = c, .url = urls[i], .reply = &replies[i]};
            calls[i] = (struct eddy_call){.fn = fetch_call, .arg = &f[i]};
        }
        rc = eddy_gather_limited(calls, n, limit, results, EDDY_GATHER_ALL);
        for (size_t i = 0; i < n; i++)
            errors[i] = (int)results[i];
    }
    eddy__free(f);
    eddy__free(calls);
    eddy__free(results);
    return rc;
}

/*
 * http/client_reply.c: a client reply: the head copied out of the
 * connection's buffer, and the body read from it (buffered whole, or
 * streamed by the caller), gzip decoded when the session asks for it.
 *
 * A reply holds its connection until the body ends: a clean end of a
 * keep-alive body returns the connection to the pool, anything else
 * (an error, a body left unread at destroy) closes it. Cost: one
 * allocation for the head, headers and URL together, one for a buffered
 * body (sized from Content-Length when there is one), and a 16 KiB input
 * buffer plus zlib's state for a gzip reply.
 */
#include <string.h>
#include <strings.h>

#include "http/internal.h"

/* Input buffer of a gzip reply. */
#define GZIP_IN_BYTES (16u * 1024)

/* ---- replies ---------------------------------------------------------- */

/* Ends the reply's hold on its connection: back to the pool after a clean
 * end of a keep-alive body, closed otherwise. */
void eddy__http_reply_let_go(struct eddy_http_reply *r, bool ok)
{
    struct eddy__http_cconn *k = r->conn;
    if (!k)
        return;
    r->conn = NULL;
    if (ok && r->keep_alive && r->br.done && r->br.clean && r->br.pending == 0)
        eddy__http_pool_release(r->client, k);
    else
        eddy__http_pool_discard(r->client, k);
}

static bool header_has_token(const struct eddy_http_header *h, const char *tok)
{
    size_t n = strlen(tok);
    for (size_t i = 0; i + n <= h->value_len; i++)
        if (strncasecmp(h->value + i, tok, n) == 0)
            return true;
    return false;
}

/* Builds the reply from the parsed head (whose views point into k's
 * buffer), copying the head; consumes the head from the buffer. */
int eddy__http_reply_create(struct eddy_http_client *c, struct eddy__http_cconn *k,
                            const struct eddy_http_response *resp, size_t head_len, bool is_head,
                            const char *url, struct eddy_http_reply **out)
{
    size_t url_len = strlen(url);
    size_t size = sizeof(struct eddy_http_reply) +
                  resp->nheaders * sizeof(struct eddy_http_header) + head_len + url_len + 1;
    struct eddy_http_reply *r = eddy__malloc(size);
    if (!r)
        return -ENOMEM;
    memset(r, 0, sizeof(*r));
    r->client = c;
    r->headers = (struct eddy_http_header *)(r + 1);
    char *head = (char *)(r->headers + resp->nheaders);
    const char *src = k->rbuf + k->rstart;
    memcpy(head, src, head_len);
    r->url = head + head_len;
    memcpy(r->url, url, url_len + 1);
    for (size_t i = 0; i < resp->nheaders; i++) {
        r->headers[i].name = head + (resp->headers[i].name - src);
        r->headers[i].name_len = resp->headers[i].name_len;
        r->headers[i].value = head + (resp->headers[i].value - src);
        r->headers[i].value_len = resp->headers[i].value_len;
    }
    r->nheaders = resp->nheaders;
    r->status = resp->status;
    r->version_minor = resp->version_minor;
    r->keep_alive = resp->keep_alive;
    r->body = (char *)"";
    k->rstart += head_len;
    if (k->rstart == k->rend)
        k->rstart = k->rend = 0;
    eddy__http_body_start(&r->br, resp, is_head);
    if (r->br.done)
        r->br.clean = k->rend == k->rstart; /* no body: clean unless more bytes came */
    r->conn = k;
    c->active++;
    if (c->opts.decompress && !r->br.done) {
        int i = eddy_http_header_find(r->headers, r->nheaders, "Content-Encoding", 16);
        if (i >= 0 && header_has_token(&r->headers[i], "gzip")) {
            int rc = eddy__http_gunzip_create(&r->gz);
            if (rc == 0) {
                r->gz_in = eddy__malloc(GZIP_IN_BYTES);
                if (!r->gz_in)
                    rc = -ENOMEM;
            }
            if (rc < 0) {
                r->conn = NULL;
                eddy_http_reply_destroy(r);
                return rc;
            }
        }
    }
    *out = r;
    return 0;
}

ssize_t eddy__http_reply_read(struct eddy_http_reply *r, void *buf, size_t len)
{
    if (!r->conn)
        return r->error;
    ssize_t n;
    if (!r->gz) {
        n = eddy__http_body_read(r->conn, &r->br, buf, len);
    } else {
        for (;;) {
            if (r->gz_len == 0 && !r->raw_done) {
                n = eddy__http_body_read(r->conn, &r->br, r->gz_in, GZIP_IN_BYTES);
                if (n < 0)
                    break;
                r->gz_start = 0;
                r->gz_len = (size_t)n;
                r->raw_done = n == 0;
            }
            size_t used = r->gz_len;
            bool ended = false;
            n = eddy__http_gunzip_run(r->gz, r->gz_in + r->gz_start, &used, buf, len, &ended);
            if (n < 0)
                break;
            r->gz_start += used;
            r->gz_len -= used;
            if (n > 0)
                break;
            if (ended) {
                /* Drain the raw body so the connection can be reused. */
                char sink[256];
                ssize_t m;
                while ((m = eddy__http_body_read(r->conn, &r->br, sink, sizeof(sink))) > 0) {
                }
                n = m;
                break;
            }
            if (r->raw_done) {
                n = -EBADMSG; /* the gzip stream was cut short */
                break;
            }
        }
    }
    if (n < 0) {
        r->error = (int)n;
        eddy__http_reply_let_go(r, false);
    } else if (r->br.done && r->br.pending == 0 && (!r->gz || n == 0)) {
        eddy__http_reply_let_go(r, true);
    }
    return n;
}

/* Reads the whole body into r->body (at most max bytes). */
int eddy__http_reply_buffer(struct eddy_http_reply *r, uint64_t max)
{
    size_t cap = 0, len = 0;
    char *buf = NULL;
    if (r->br.framing == EDDY_HTTP_BODY_LENGTH && !r->gz) {
        if (r->br.left > max) {
            eddy__http_reply_let_go(r, false);
            return -EMSGSIZE;
        }
        cap = (size_t)r->br.left + 1;
    } else {
        cap = 4096;
    }
    buf = eddy__malloc(cap);
    if (!buf) {
        eddy__http_reply_let_go(r, false);
        return -ENOMEM;
    }
    for (;;) {
        if (cap - len < 2) {
            if (cap > max) {
                eddy__free(buf);
                eddy__http_reply_let_go(r, false);
                return -EMSGSIZE;
            }
            char *nb = eddy__realloc(buf, cap * 2);
            if (!nb) {
                eddy__free(buf);
                eddy__http_reply_let_go(r, false);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = eddy__http_reply_read(r, buf + len, cap - len - 1);
        if (n < 0) {
            eddy__free(buf);
            return (int)n;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            eddy__free(buf);
            eddy__http_reply_let_go(r, false);
            return -EMSGSIZE;
        }
    }
    buf[len] = 0;
    r->body = buf;
    r->body_len = len;
    r->body_owned = true;
    return 0;
}

/* ---- reply accessors ---------------------------------------------------- */

EDDY_API unsigned eddy_http_reply_status(const struct eddy_http_reply *r)
{
    return r->status;
}

EDDY_API int eddy_http_reply_version_minor(const struct eddy_http_reply *r)
{
    return r->version_minor;
}

EDDY_API const char *eddy_http_reply_url(const struct eddy_http_reply *r)
{
    return r->url;
}

EDDY_API const struct eddy_http_header *eddy_http_reply_headers(const struct eddy_http_reply *r,
                                                                size_t *n)
{
    *n = r->nheaders;
    return r->headers;
}

EDDY_API const char *eddy_http_reply_header(const struct eddy_http_reply *r, const char *name,
                                            size_t *len)
{
    if (!r || !name)
        return NULL;
    int i = eddy_http_header_find(r->headers, r->nheaders, name, strlen(name));
    if (i < 0)
        return NULL;
    if (len)
        *len = r->headers[i].value_len;
    return r->headers[i].value;
}

EDDY_API const char *eddy_http_reply_body(const struct eddy_http_reply *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body;
}

EDDY_API int eddy_http_reply_json(const struct eddy_http_reply *r, const char **json, size_t *len)
{
    if (!r || !json || r->streamed)
        return -EINVAL;
    size_t n = 0;
    const char *ct = eddy_http_reply_header(r, "Content-Type", &n);
    if (!ct)
        return -EBADMSG;
    size_t base = 0;
    while (base < n && ct[base] != ';' && ct[base] != ' ')
        base++;
    bool ok = (base == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
              (base > 5 && strncasecmp(ct + base - 5, "+json", 5) == 0);
    if (!ok)
        return -EBADMSG;
    *json = r->body;
    if (len)
        *len = r->body_len;
    return 0;
}

EDDY_API ssize_t eddy_http_reply_read(struct eddy_http_reply *r, void *buf, size_t len)
{
    if (!r || (!buf && len) || !r->streamed)
        return -EINVAL;
    if (len == 0)
        return 0;
    return eddy__http_reply_read(r, buf, len);
}

EDDY_API void eddy_http_reply_destroy(struct eddy_http_reply *r)
{
    if (!r)
        return;
    eddy__http_reply_let_go(r, true);
    r->client->active--;
    eddy__http_gunzip_destroy(r->gz);
    eddy__free(r->gz_in);
    if (r->body_owned)
        eddy__free(r->body);
    eddy__free(r);
}

/*
 * http/static.c: static files: Content-Type by extension, Last-Modified
 * and If-Modified-Since (RFC 9110 13.1.3), single byte ranges (RFC 9110
 * 14), and bodies sent with sendfile(2) in 1 MiB steps, each step within
 * the write timeout, so a slow reader of a big file is cut off but a fast
 * one is not.
 *
 * open and fstat run on the loop thread: on a local file system with the
 * inode cached they take microseconds, as in nginx without thread pools.
 * Data goes kernel to socket, so the loop never blocks on reading it.
 */
#include "http/internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SENDFILE_STEP_BYTES (1u << 20)
#define PATH_MAX_BYTES 4096

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"pdf", "application/pdf"},
    {"wasm", "application/wasm"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"gz", "application/gzip"},
    {"zip", "application/zip"},
    {"tar", "application/x-tar"},
};

EDDY_API const char *eddy_http_content_type(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot && dot[1]) {
        for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++)
            if (strcasecmp(dot + 1, content_types[i].ext) == 0)
                return content_types[i].type;
    }
    return "application/octet-stream";
}

/* Parses "bytes=first-last", "bytes=first-" or "bytes=-suffix" against a
 * file of size bytes. Returns 1 with [*from, *to] set, 0 to serve the
 * whole file (not a single byte range), or -1 when unsatisfiable (416). */
static int parse_range(const char *v, size_t len, uint64_t size, uint64_t *from, uint64_t *to)
{
    if (len < 7 || strncasecmp(v, "bytes=", 6) != 0)
        return 0;
    v += 6;
    len -= 6;
    if (memchr(v, ',', len))
        return 0; /* several ranges: the whole file is a valid answer */
    const char *dash = memchr(v, '-', len);
    if (!dash)
        return 0;
    uint64_t a = 0, b = 0;
    bool has_a = false, has_b = false;
    for (const char *p = v; p < dash; p++) {
        if (*p < '0' || *p > '9' || a > (UINT64_MAX - 9) / 10)
            return 0;
        a = a * 10 + (uint64_t)(*p - '0');
        has_a = true;
    }
    for (const char *p = dash + 1; p < v + len; p++) {
        if (*p < '0' || *p > '9' || b > (UINT64_MAX - 9) / 10)
            return 0;
        b = b * 10 + (uint64_t)(*p - '0');
        has_b = true;
    }
    if (!has_a && !has_b)
        return 0;
    if (!has_a) { /* the last b bytes */
        if (b == 0 || size == 0)
            return -1;
        *from = b >= size ? 0 : size - b;
        *to = size - 1;
        return 1;
    }
    if (has_b && b < a)
        return 0; /* invalid range-spec: ignore the header */
    if (a >= size)
        return -1;
    *from = a;
    *to = has_b && b < size ? b : size - 1;
    return 1;
}

static int respond_status(struct eddy_http_exchange *ex, unsigned status)
{
    return eddy__http_respond_error(ex, status, NULL);
}

EDDY_API int eddy_http_respond_file(struct eddy_http_exchange *ex, const char *path)
{
    if (!ex || !path)
        return -EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        return respond_status(ex, err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG ? 404
                                  : err == EACCES || err == EPERM                        ? 403
                                                                                         : 500);
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return respond_status(ex, 403);
    }
    uint64_t size = (uint64_t)st.st_size;
    char date[30];
    eddy__http_format_date(st.st_mtim.tv_sec, date);
    date[29] = 0;
    eddy_http_set_header(ex, "Last-Modified", date);
    eddy_http_set_header(ex, "Accept-Ranges", "bytes");

    size_t vlen;
    const char *ims = eddy_http_header(ex, "If-Modified-Since", &vlen);
    int64_t since;
    if (ims && (ex->req.method == EDDY_HTTP_GET || ex->req.method == EDDY_HTTP_HEAD) &&
        eddy__http_parse_date(ims, vlen, &since) == 0 && st.st_mtim.tv_sec <= since) {
        close(fd);
        return eddy_http_respond(ex, 304, NULL, NULL, 0);
    }

    uint64_t from = 0, to = size ? size - 1 : 0;
    unsigned status = 200;
    const char *range = eddy_http_header(ex, "Range", &vlen);
    if (range && ex->req.method == EDDY_HTTP_GET && !eddy_http_header(ex, "If-Range", NULL)) {
        int r = parse_range(range, vlen, size, &from, &to);
        char cr[64];
        if (r < 0) {
            snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)size);
            eddy_http_set_header(ex, "Content-Range", cr);
            close(fd);
            return eddy_http_respond(ex, 416, NULL, NULL, 0);
        }
        if (r > 0) {
            status = 206;
            snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)from,
                     (unsigned long long)to, (unsigned long long)size);
            eddy_http_set_header(ex, "Content-Range", cr);
        }
    }
    uint64_t length = size ? to - from + 1 : 0;
    int rc = eddy__http_respond_head(ex, status, eddy_http_content_type(path), length);
    if (rc == 0 && ex->req.method != EDDY_HTTP_HEAD) {
        uint64_t off = from, left = length;
        while (left > 0 && rc == 0) {
            size_t step = left < SENDFILE_STEP_BYTES ? (size_t)left : SENDFILE_STEP_BYTES;
            struct eddy_timeout scope;
            eddy_timeout_enter(&scope, ex->conn->srv->opts.write_timeout_ns);
            ssize_t n = eddy_stream_sendfile(ex->conn->stream, fd, (off_t)off, step);
            eddy_timeout_exit(&scope);
            if (n < 0) {
                rc = (int)n; /* -ENODATA: the file shrank; the framing is lost */
                ex->close_after = true;
            }
            off += step;
            left -= step;
        }
    }
    close(fd);
    return rc;
}

/* serve_dir's work, with rel and path in heap scratch: two 4 KiB arrays on
 * the stack would stay resident in the connection task's stack afterwards
 * (measured: 12.8 KB per idle connection that once served a file, 4.7 KB
 * otherwise). */
struct serve_scratch {
    char rel[PATH_MAX_BYTES];
    char path[PATH_MAX_BYTES + 16];
};

static int serve_rel(struct eddy_http_exchange *ex, const char *root, const char *raw,
                     size_t raw_len, struct serve_scratch *sc)
{
    char *rel = sc->rel, *path = sc->path;
    int n = eddy_http_percent_decode(raw, raw_len, rel, PATH_MAX_BYTES);
    if (n < 0)
        return respond_status(ex, n == -ENOSPC ? 414 : 400);
    /* No segment may climb out of root. */
    for (const char *seg = rel; *seg;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 2 && seg[0] == '.' && seg[1] == '.')
            return respond_status(ex, 404);
        seg += len + (end ? 1 : 0);
    }
    size_t cap = sizeof(sc->path);
    int len = snprintf(path, cap, "%s/%s", root, rel);
    if (len < 0 || (size_t)len >= cap - 11)
        return respond_status(ex, 414);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(path + len, cap - (size_t)len, "%sindex.html",
                 len > 0 && path[len - 1] == '/' ? "" : "/");
    return eddy_http_respond_file(ex, path);
}

EDDY_API int eddy_http_serve_dir(struct eddy_http_exchange *ex, const char *root, const char *param)
{
    if (!ex || !root || !param)
        return -EINVAL;
    size_t raw_len;
    const char *raw = eddy_http_param(ex, param, &raw_len);
    if (!raw)
        return respond_status(ex, 404);
    struct serve_scratch *sc = eddy__malloc(sizeof(*sc));
    if (!sc)
        return -ENOMEM; /* the server answers 500 */
    int rc = serve_rel(ex, root, raw, raw_len, sc);
    eddy__free(sc);
    return rc;
}

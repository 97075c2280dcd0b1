/*
 * http/gzip.c: streaming gunzip of response bodies (Content-Encoding: gzip,
 * RFC 9110 8.4.1.3) on zlib's inflate, for the client's decompress option.
 *
 * inflateInit2 with windowBits 15 + 16 accepts the gzip wrapper only (a
 * zlib or raw deflate stream is -EBADMSG). One inflate state per reply,
 * about 7 KiB plus zlib's 32 KiB window, allocated only for gzip replies.
 * Bytes after the end of the gzip member are ignored.
 */
#include <zlib.h>

#include "http/internal.h"

struct eddy__http_gunzip {
    z_stream z;
    bool ended;
};

int eddy__http_gunzip_create(struct eddy__http_gunzip **out)
{
    struct eddy__http_gunzip *g = eddy__calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    int rc = inflateInit2(&g->z, 15 + 16);
    if (rc != Z_OK) {
        eddy__free(g);
        return rc == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    }
    *out = g;
    return 0;
}

void eddy__http_gunzip_destroy(struct eddy__http_gunzip *g)
{
    if (!g)
        return;
    inflateEnd(&g->z);
    eddy__free(g);
}

ssize_t eddy__http_gunzip_run(struct eddy__http_gunzip *g, const void *in, size_t *in_len,
                              void *out, size_t cap, bool *ended)
{
    if (g->ended) {
        *ended = true;
        return 0;
    }
    /* zlib counts in uInt: feed at most 1 GiB a call. */
    size_t in_n = *in_len < (1u << 30) ? *in_len : (1u << 30);
    size_t out_n = cap < (1u << 30) ? cap : (1u << 30);
    g->z.next_in = (Bytef *)in;
    g->z.avail_in = (uInt)in_n;
    g->z.next_out = out;
    g->z.avail_out = (uInt)out_n;
    int rc = inflate(&g->z, Z_NO_FLUSH);
    *in_len = in_n - g->z.avail_in;
    ssize_t produced = (ssize_t)(out_n - g->z.avail_out);
    if (rc == Z_STREAM_END) {
        g->ended = true;
    } else if (rc == Z_MEM_ERROR) {
        return -ENOMEM;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return -EBADMSG;
    }
    *ended = g->ended;
    return produced;
}

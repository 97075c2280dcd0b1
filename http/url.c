/*
 * http/url.c: URL parsing (RFC 3986 section 3), reference resolution for
 * redirects (section 5.2, with remove_dot_segments of 5.2.4) and
 * percent-encoding (section 2.1).
 *
 * The parser is one left-to-right pass that produces views into the
 * caller's text. It is stricter than the RFC's generic syntax where a
 * client is better off refusing early: every byte must be visible ASCII
 * (spaces and non-ASCII must be percent-encoded), and every '%' must start
 * a valid %XX. Hosts are reg-names or bracketed IPv6 literals (IPvFuture
 * is refused). Cost: O(len), no allocation.
 */
#include <string.h>

#include "http/internal.h"

static bool is_alpha(unsigned char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static bool is_unreserved(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool is_sub_delim(unsigned char c)
{
    return strchr("!$&'()*+,;=", c) != NULL && c != 0;
}

/* Checks that [p, end) holds visible ASCII with well-formed %XX. */
static int check_visible(const char *p, const char *end)
{
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f)
            return -EINVAL;
        if (c == '%') {
            if (end - p < 3 || !is_hex((unsigned char)p[1]) || !is_hex((unsigned char)p[2]))
                return -EINVAL;
            p += 2;
        }
    }
    return 0;
}

/* Checks an IPv6 literal's inside: hex digits, ':' and '.', with at least
 * two colons (getaddrinfo judges the rest when it is used). */
static int check_ipv6(const char *p, const char *end)
{
    int colons = 0;
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == ':')
            colons++;
        else if (!is_hex(c) && c != '.')
            return -EINVAL;
    }
    return colons >= 2 ? 0 : -EINVAL;
}

static uint16_t default_port(const char *scheme, size_t len)
{
    if (len == 4 && strncasecmp(scheme, "http", 4) == 0)
        return 80;
    if (len == 5 && strncasecmp(scheme, "https", 5) == 0)
        return 443;
    return 0;
}

EDDY_API int eddy_url_parse(const char *text, size_t len, struct eddy_url *out)
{
    if (!text || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    const char *p = text, *end = text + len;

    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) "://" */
    if (p == end || !is_alpha((unsigned char)*p))
        return -EINVAL;
    while (p < end && (is_alpha((unsigned char)*p) || is_digit((unsigned char)*p) || *p == '+' ||
                       *p == '-' || *p == '.'))
        p++;
    if (end - p < 3 || memcmp(p, "://", 3) != 0)
        return -EINVAL;
    out->scheme = text;
    out->scheme_len = (size_t)(p - text);
    p += 3;

    /* authority: up to the first '/', '?' or '#'. */
    const char *auth = p;
    while (p < end && *p != '/' && *p != '?' && *p != '#')
        p++;
    const char *auth_end = p;
    if (check_visible(auth, auth_end) < 0)
        return -EINVAL;
    const char *at = NULL;
    for (const char *q = auth; q < auth_end; q++)
        if (*q == '@')
            at = q;
    const char *h = auth;
    if (at) {
        out->userinfo = auth;
        out->userinfo_len = (size_t)(at - auth);
        h = at + 1;
    }
    const char *port_start = NULL;
    if (h < auth_end && *h == '[') {
        const char *close = memchr(h, ']', (size_t)(auth_end - h));
        if (!close || check_ipv6(h + 1, close) < 0)
            return -EINVAL;
        out->host = h + 1;
        out->host_len = (size_t)(close - h - 1);
        out->host_is_ipv6 = true;
        if (close + 1 < auth_end) {
            if (close[1] != ':')
                return -EINVAL;
            port_start = close + 2;
        }
    } else {
        const char *colon = memchr(h, ':', (size_t)(auth_end - h));
        const char *host_end = colon ? colon : auth_end;
        for (const char *q = h; q < host_end; q++) {
            unsigned char c = (unsigned char)*q;
            if (!is_unreserved(c) && !is_sub_delim(c) && c != '%')
                return -EINVAL;
        }
        out->host = h;
        out->host_len = (size_t)(host_end - h);
        if (colon)
            port_start = colon + 1;
    }
    if (out->host_len == 0)
        return -EINVAL;
    out->port = default_port(out->scheme, out->scheme_len);
    if (port_start && port_start < auth_end) {
        uint32_t port = 0;
        for (const char *q = port_start; q < auth_end; q++) {
            if (!is_digit((unsigned char)*q))
                return -EINVAL;
            port = port * 10 + (uint32_t)(*q - '0');
            if (port > 65535)
                return -EINVAL;
        }
        out->port = (uint16_t)port;
        out->port_explicit = true;
    }

    /* path, query, fragment */
    const char *path = p;
    while (p < end && *p != '?' && *p != '#')
        p++;
    out->path = path;
    out->path_len = (size_t)(p - path);
    if (p < end && *p == '?') {
        const char *q = ++p;
        while (p < end && *p != '#')
            p++;
        out->query = q;
        out->query_len = (size_t)(p - q);
    }
    if (p < end && *p == '#') {
        out->fragment = p + 1;
        out->fragment_len = (size_t)(end - p - 1);
    }
    /* '#' may appear only once; everything after the authority must be
     * visible ASCII. */
    if (out->fragment && memchr(out->fragment, '#', out->fragment_len))
        return -EINVAL;
    if (check_visible(path, end) < 0)
        return -EINVAL;
    return 0;
}

/* ---- resolution ---------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t cap, len;
    bool full;
};

static void put(struct sbuf *b, const char *s, size_t n)
{
    if (b->full || n >= b->cap - b->len) {
        b->full = true;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

/* Appends path to b with its dot segments removed (RFC 3986 5.2.4): the
 * output holds whole segments, so ".." pops back to the previous '/'. */
static void put_path(struct sbuf *b, const char *path, size_t len)
{
    size_t base = b->len;
    const char *p = path, *end = path + len;
    if (p < end && *p == '/')
        p++;
    for (;;) {
        const char *seg_end = memchr(p, '/', (size_t)(end - p));
        if (!seg_end)
            seg_end = end;
        size_t n = (size_t)(seg_end - p);
        bool last = seg_end == end;
        if (n == 1 && p[0] == '.') {
            if (last)
                put(b, "/", 1);
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            /* Drop the last output segment with its '/'. */
            while (b->len > base && b->p[b->len - 1] != '/')
                b->len--;
            if (b->len > base)
                b->len--;
            if (last)
                put(b, "/", 1);
        } else {
            put(b, "/", 1);
            put(b, p, n);
        }
        if (last)
            break;
        p = seg_end + 1;
    }
    if (b->len == base)
        put(b, "/", 1);
    if (!b->full)
        b->p[b->len] = 0;
}

EDDY_API int eddy_url_resolve(const char *base, const char *ref, char *out, size_t cap)
{
    if (!base || !ref || !out || cap == 0)
        return -EINVAL;
    struct eddy_url bu;
    if (eddy_url_parse(base, strlen(base), &bu) < 0)
        return -EINVAL;
    size_t ref_len = strlen(ref);
    const char *hash = memchr(ref, '#', ref_len);
    if (hash)
        ref_len = (size_t)(hash - ref);
    if (check_visible(ref, ref + ref_len) < 0)
        return -EINVAL;
    struct sbuf b = {.p = out, .cap = cap};
    out[0] = 0;
    /* The scheme, when ref has one: ALPHA *(...) ":" before any '/', '?'. */
    const char *r = ref;
    while (r < ref + ref_len && (is_alpha((unsigned char)*r) || is_digit((unsigned char)*r) ||
                                 *r == '+' || *r == '-' || *r == '.'))
        r++;
    bool absolute = r > ref && r < ref + ref_len && *r == ':' && is_alpha((unsigned char)ref[0]);
    const char *auth_end = bu.path; /* the end of base's "scheme://authority" */
    if (absolute) {
        struct eddy_url ru;
        if (eddy_url_parse(ref, ref_len, &ru) < 0)
            return -EINVAL;
        put(&b, ref, (size_t)(ru.path - ref));
        put_path(&b, ru.path, ru.path_len);
        if (ru.query) {
            put(&b, "?", 1);
            put(&b, ru.query, ru.query_len);
        }
    } else if (ref_len >= 2 && ref[0] == '/' && ref[1] == '/') {
        put(&b, base, bu.scheme_len + 1);
        put(&b, ref, ref_len);
        struct eddy_url check;
        if (!b.full && eddy_url_parse(out, b.len, &check) < 0)
            return -EINVAL;
    } else {
        put(&b, base, (size_t)(auth_end - base));
        const char *q = memchr(ref, '?', ref_len);
        size_t rpath_len = q ? (size_t)(q - ref) : ref_len;
        if (rpath_len == 0) {
            /* "" or "?q": base's path; base's query unless ref has one. */
            put(&b, bu.path_len ? bu.path : "/", bu.path_len ? bu.path_len : 1);
            if (!q && bu.query) {
                put(&b, "?", 1);
                put(&b, bu.query, bu.query_len);
            }
        } else if (ref[0] == '/') {
            put_path(&b, ref, rpath_len);
        } else {
            /* Merge (5.2.3): base's path up to its last '/', then ref. */
            char merged[2048];
            const char *slash = NULL;
            for (size_t i = 0; i < bu.path_len; i++)
                if (bu.path[i] == '/')
                    slash = bu.path + i;
            size_t keep = slash ? (size_t)(slash - bu.path) + 1 : 1;
            if (keep + rpath_len >= sizeof(merged))
                return -ENOSPC;
            if (slash)
                memcpy(merged, bu.path, keep);
            else
                merged[0] = '/';
            memcpy(merged + keep, ref, rpath_len);
            put_path(&b, merged, keep + rpath_len);
        }
        if (q)
            put(&b, q, ref_len - (size_t)(q - ref));
    }
    if (b.full)
        return -ENOSPC;
    return (int)b.len;
}

/* ---- percent-encoding ---------------------------------------------------- */

EDDY_API int eddy_http_percent_encode(const char *src, size_t len, char *dst, size_t cap,
                                      const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    if ((!src && len) || !dst || cap == 0)
        return -EINVAL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        bool plain = is_unreserved(c) || (c && keep && strchr(keep, c));
        size_t need = plain ? 1 : 3;
        if (need >= cap - n)
            return -ENOSPC;
        if (plain) {
            dst[n++] = (char)c;
        } else {
            dst[n++] = '%';
            dst[n++] = hex[c >> 4];
            dst[n++] = hex[c & 15];
        }
    }
    dst[n] = 0;
    return (int)n;
}

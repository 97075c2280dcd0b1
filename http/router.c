/*
 * http/router.c: method plus path-pattern routing.
 *
 * Patterns are matched in registration order, segment by segment, against
 * the raw request path: literals compare bytes, "{name}" takes one
 * non-empty segment, a final "{name...}" takes the rest of the path. Cost:
 * O(routes x path length) per request with no allocation, which for the
 * tens of routes of a service is a few hundred nanoseconds at most; a
 * radix tree starts to pay only with hundreds of routes.
 */
#include "http/internal.h"

#include <string.h>

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

int eddy__http_pattern_check(const char *pattern)
{
    if (!pattern || pattern[0] != '/')
        return -EINVAL;
    size_t params = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p == '}')
            return -EINVAL;
        if (*p != '{')
            continue;
        if (p[-1] != '/') /* a parameter is a whole segment */
            return -EINVAL;
        const char *name = ++p;
        while (is_name_char(*p))
            p++;
        if (p == name)
            return -EINVAL;
        bool rest = strncmp(p, "...", 3) == 0;
        if (rest)
            p += 3;
        if (*p != '}')
            return -EINVAL;
        if (p[1] != '/' && p[1] != 0)
            return -EINVAL;
        if (rest && p[1] != 0)
            return -EINVAL;
        if (++params > EDDY_HTTP_MAX_PARAMS)
            return -EINVAL;
    }
    return 0;
}

/* Matches path against pattern; on success fills ex's parameters. */
static bool pattern_match(const char *pat, const char *path, size_t len,
                          struct eddy_http_exchange *ex)
{
    size_t i = 0, n = 0;
    while (*pat) {
        if (*pat == '{') {
            const char *name = ++pat;
            while (is_name_char(*pat))
                pat++;
            size_t name_len = (size_t)(pat - name);
            bool rest = *pat == '.';
            pat += rest ? 4 : 1; /* "...}" or "}" */
            size_t start = i;
            if (rest) {
                i = len;
            } else {
                while (i < len && path[i] != '/')
                    i++;
                if (i == start)
                    return false;
            }
            ex->param_name[n] = name;
            ex->param_name_len[n] = name_len;
            ex->param_value[n] = path + start;
            ex->param_value_len[n] = i - start;
            n++;
            continue;
        }
        if (i >= len || path[i] != *pat)
            return false;
        i++;
        pat++;
    }
    if (i != len)
        return false;
    ex->nparams = n;
    return true;
}

static bool method_is(const struct eddy_http_request *req, const char *m)
{
    size_t n = strlen(m);
    return req->method_len == n && memcmp(req->method_text, m, n) == 0;
}

/* Appends m to the comma-separated list unless it is there already. */
static void allow_add(char *allow, size_t cap, const char *m)
{
    size_t n = strlen(m), len = strlen(allow);
    for (const char *p = allow; *p;) {
        const char *end = strchr(p, ',');
        size_t item = end ? (size_t)(end - p) : strlen(p);
        if (item == n && memcmp(p, m, n) == 0)
            return;
        p = end ? end + 2 : p + item;
    }
    if (len + n + 3 > cap)
        return;
    if (len) {
        memcpy(allow + len, ", ", 2);
        len += 2;
    }
    memcpy(allow + len, m, n + 1);
}

void eddy__http_routed_methods(const struct eddy_http_server *srv, char *allow, size_t cap)
{
    allow[0] = 0;
    struct eddy__list *pos;
    eddy__list_for_each (pos, &srv->routes) {
        struct eddy__http_route *r = eddy__container_of(pos, struct eddy__http_route, link);
        allow_add(allow, cap, r->method ? r->method : "*");
    }
}

unsigned eddy__http_route_match(struct eddy_http_server *srv, struct eddy_http_exchange *ex,
                                char *allow, size_t allow_cap)
{
    const struct eddy_http_request *req = &ex->req;
    allow[0] = 0;
    struct eddy__list *pos;
    eddy__list_for_each (pos, &srv->routes) {
        struct eddy__http_route *r = eddy__container_of(pos, struct eddy__http_route, link);
        if (!pattern_match(r->pattern, req->path, req->path_len, ex))
            continue;
        if (!r->method || method_is(req, r->method) ||
            (req->method == EDDY_HTTP_HEAD && strcmp(r->method, "GET") == 0)) {
            ex->route = r;
            return 0;
        }
        allow_add(allow, allow_cap, r->method);
        if (strcmp(r->method, "GET") == 0)
            allow_add(allow, allow_cap, "HEAD");
    }
    ex->nparams = 0;
    return allow[0] ? 405 : 404;
}

EDDY_API const char *eddy_http_param(const struct eddy_http_exchange *ex, const char *name,
                                     size_t *len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < ex->nparams; i++) {
        if (ex->param_name_len[i] == n && memcmp(ex->param_name[i], name, n) == 0) {
            if (len)
                *len = ex->param_value_len[i];
            return ex->param_value[i];
        }
    }
    if (len)
        *len = 0;
    return NULL;
}

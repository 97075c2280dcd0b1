/*
 * io/addr.c: socket addresses as text: parse "127.0.0.1:80", "[::1]:80",
 * "[fe80::1%eth0]:80", "unix:/path", "/path", "unix:@abstract", and format
 * them back the same way. Numeric only: names go through io/dns.c.
 */
#include "io/internal.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

/* Parses a decimal port of 1 to 5 digits, 0..65535. */
static int parse_port(const char *s, uint16_t *out)
{
    if (!*s || strlen(s) > 5)
        return -EINVAL;
    unsigned v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *out = (uint16_t)v;
    return 0;
}

/* An IPv6 literal, possibly with a %scope (name or number): getaddrinfo
 * with AI_NUMERICHOST only parses, it never queries a resolver. */
static int parse_ip6(const char *ip, uint16_t port, struct eddy_addr *out)
{
    if (!strchr(ip, '%')) {
        memset(out, 0, sizeof(*out));
        if (inet_pton(AF_INET6, ip, &out->u.in6.sin6_addr) != 1)
            return -EINVAL;
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons(port);
        out->len = sizeof(out->u.in6);
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_INET6, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *res = NULL;
    if (getaddrinfo(ip, NULL, &hints, &res) != 0 || !res)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    memcpy(&out->u.in6, res->ai_addr, sizeof(out->u.in6));
    freeaddrinfo(res);
    out->u.in6.sin6_port = htons(port);
    out->len = sizeof(out->u.in6);
    return 0;
}

EDDY_API int eddy_addr_from_ip(const char *ip, uint16_t port, struct eddy_addr *out)
{
    if (!ip || !out)
        return -EINVAL;
    if (strchr(ip, ':'))
        return parse_ip6(ip, port, out);
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, ip, &out->u.in4.sin_addr) != 1)
        return -EINVAL;
    out->u.in4.sin_family = AF_INET;
    out->u.in4.sin_port = htons(port);
    out->len = sizeof(out->u.in4);
    return 0;
}

static int parse_unix(const char *path, struct eddy_addr *out)
{
    size_t n = strlen(path);
    if (n == 0)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->u.un.sun_family = AF_UNIX;
    if (path[0] == '@') {
        /* Abstract namespace: a leading NUL, the name, no terminator. */
        if (n > sizeof(out->u.un.sun_path))
            return -ENAMETOOLONG;
        memcpy(out->u.un.sun_path + 1, path + 1, n - 1);
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    if (n >= sizeof(out->u.un.sun_path))
        return -ENAMETOOLONG;
    memcpy(out->u.un.sun_path, path, n + 1);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

EDDY_API int eddy_addr_parse(const char *text, struct eddy_addr *out)
{
    if (!text || !out)
        return -EINVAL;
    if (strncmp(text, "unix:", 5) == 0)
        return parse_unix(text + 5, out);
    if (text[0] == '/')
        return parse_unix(text, out);

    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    const char *port_text;
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end || end[1] != ':' || (size_t)(end - text - 1) >= sizeof(host))
            return -EINVAL;
        memcpy(host, text + 1, (size_t)(end - text - 1));
        host[end - text - 1] = 0;
        port_text = end + 2;
        if (!strchr(host, ':'))
            return -EINVAL;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof(host))
            return -EINVAL;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = 0;
        port_text = colon + 1;
        if (strchr(host, ':')) /* an IPv6 literal needs its brackets */
            return -EINVAL;
    }
    uint16_t port;
    if (parse_port(port_text, &port) < 0)
        return -EINVAL;
    return eddy_addr_from_ip(host, port, out);
}

EDDY_API int eddy_addr_format(const struct eddy_addr *addr, char *buf, size_t len)
{
    if (!addr || !buf)
        return -EINVAL;
    char ip[INET6_ADDRSTRLEN];
    int n;
    switch (addr->u.sa.sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &addr->u.in4.sin_addr, ip, sizeof(ip));
        n = snprintf(buf, len, "%s:%u", ip, ntohs(addr->u.in4.sin_port));
        break;
    case AF_INET6: {
        inet_ntop(AF_INET6, &addr->u.in6.sin6_addr, ip, sizeof(ip));
        char scope[IF_NAMESIZE + 2] = "";
        if (addr->u.in6.sin6_scope_id) {
            char name[IF_NAMESIZE];
            if (if_indextoname(addr->u.in6.sin6_scope_id, name))
                snprintf(scope, sizeof(scope), "%%%s", name);
            else
                snprintf(scope, sizeof(scope), "%%%u", (unsigned)addr->u.in6.sin6_scope_id);
        }
        n = snprintf(buf, len, "[%s%s]:%u", ip, scope, ntohs(addr->u.in6.sin6_port));
        break;
    }
    case AF_UNIX: {
        size_t path_len = addr->len > offsetof(struct sockaddr_un, sun_path)
                              ? addr->len - offsetof(struct sockaddr_un, sun_path)
                              : 0;
        const char *path = addr->u.un.sun_path;
        if (path_len > 0 && path[0] == 0) /* abstract */
            n = snprintf(buf, len, "unix:@%.*s", (int)(path_len - 1), path + 1);
        else
            n = snprintf(buf, len, "unix:%.*s", (int)strnlen(path, path_len), path);
        break;
    }
    default:
        return -EAFNOSUPPORT;
    }
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    return n;
}

EDDY_API uint16_t eddy_addr_port(const struct eddy_addr *addr)
{
    if (!addr)
        return 0;
    if (addr->u.sa.sa_family == AF_INET)
        return ntohs(addr->u.in4.sin_port);
    if (addr->u.sa.sa_family == AF_INET6)
        return ntohs(addr->u.in6.sin6_port);
    return 0;
}

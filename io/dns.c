/*
 * io/dns.c: name resolution with getaddrinfo on the offload pool.
 *
 * glibc's resolver blocks, so each lookup is one offload job; the calling
 * task parks, the loop keeps running. IP literals are answered inline
 * without a job. A lookup whose caller left (timeout, cancellation) runs to
 * its end on the worker and its result is freed by the dispose callback:
 * the request struct is heap memory for that reason.
 */
#include "io/internal.h"

#include <netdb.h>
#include <string.h>

#define HOST_MAX 255 /* RFC 1035 2.3.4: names are at most 255 octets */

struct lookup {
    char host[HOST_MAX + 1];
    int family;
    struct addrinfo *res;
};

static intptr_t lookup_run(void *arg)
{
    struct lookup *l = arg;
    struct addrinfo hints = {
        .ai_family = l->family,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_ADDRCONFIG,
    };
    int rc = getaddrinfo(l->host, NULL, &hints, &l->res);
    if (rc == EAI_SYSTEM)
        return errno ? -errno : -EIO;
    switch (rc) {
    case 0:
        return 0;
    case EAI_NONAME:
    case EAI_NODATA:
    case EAI_ADDRFAMILY:
        return -ENXIO;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAMILY:
        return -EAFNOSUPPORT;
    case EAI_SERVICE:
        return -EINVAL;
    default:
        return -EIO;
    }
}

static void lookup_free(void *arg, intptr_t result, bool ran)
{
    (void)result;
    (void)ran;
    struct lookup *l = arg;
    if (l->res)
        freeaddrinfo(l->res);
    eddy__free(l);
}

static void set_port(struct eddy_addr *a, uint16_t port)
{
    if (a->u.sa.sa_family == AF_INET)
        a->u.in4.sin_port = htons(port);
    else
        a->u.in6.sin6_port = htons(port);
}

EDDY_API int eddy_dns_resolve(const char *host, uint16_t port, int family, int64_t timeout_ns,
                              struct eddy_addr *out, size_t max)
{
    if (!host || !out || max == 0 || !eddy_task_current())
        return -EINVAL;
    if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
        return -EAFNOSUPPORT;
    size_t n = strlen(host);
    /* Brackets around an IPv6 literal, as in URLs. */
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n == 0 || n > HOST_MAX)
        return -EINVAL;

    struct lookup *l = eddy__malloc(sizeof(*l));
    if (!l)
        return -ENOMEM;
    memcpy(l->host, host, n);
    l->host[n] = 0;
    l->family = family;
    l->res = NULL;

    /* Literals need no resolver. */
    if (eddy_addr_from_ip(l->host, port, &out[0]) == 0) {
        int fam = out[0].u.sa.sa_family;
        eddy__free(l);
        return family == AF_UNSPEC || family == fam ? 1 : -EAFNOSUPPORT;
    }

    struct eddy_timeout scope;
    bool scoped = timeout_ns >= 0;
    if (scoped)
        eddy_timeout_enter(&scope, timeout_ns);
    intptr_t result = 0;
    int rc = eddy_offload_run(lookup_run, l, lookup_free, &result);
    if (scoped)
        eddy_timeout_exit(&scope);
    if (rc < 0)
        return rc; /* l belongs to lookup_free now */

    int count = (int)result;
    if (result == 0) {
        count = 0;
        for (struct addrinfo *ai = l->res; ai && (size_t)count < max; ai = ai->ai_next) {
            if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
                continue;
            if ((size_t)ai->ai_addrlen > sizeof(out[count].u))
                continue;
            memset(&out[count], 0, sizeof(out[count]));
            memcpy(&out[count].u, ai->ai_addr, ai->ai_addrlen);
            out[count].len = ai->ai_addrlen;
            set_port(&out[count], port);
            count++;
        }
        if (count == 0)
            count = -ENXIO;
    }
    lookup_free(l, 0, true);
    return count;
}

/* Addresses tried per name by eddy_tcp_connect_host. */
#define CONNECT_HOST_MAX_ADDRS 8

EDDY_API int eddy_tcp_connect_host(const char *host, uint16_t port, int64_t timeout_ns)
{
    if (!eddy_task_current())
        return -EINVAL;
    struct eddy_timeout scope;
    bool scoped = timeout_ns >= 0;
    if (scoped)
        eddy_timeout_enter(&scope, timeout_ns);
    struct eddy_addr addrs[CONNECT_HOST_MAX_ADDRS];
    int rc = eddy_dns_resolve(host, port, AF_UNSPEC, -1, addrs, CONNECT_HOST_MAX_ADDRS);
    if (rc > 0) {
        int n = rc, first_error = 0;
        rc = -ECONNREFUSED;
        for (int i = 0; i < n; i++) {
            int fd = eddy_sock_connect(&addrs[i], -1);
            if (fd >= 0) {
                rc = fd;
                break;
            }
            if (!first_error)
                first_error = fd;
            /* Time and cancellation end the attempts; refusals do not. */
            if (fd == -ETIMEDOUT || fd == -ECANCELED) {
                first_error = fd;
                break;
            }
        }
        if (rc < 0 && first_error)
            rc = first_error;
    }
    if (scoped)
        eddy_timeout_exit(&scope);
    return rc;
}

/*
 * examples/crawler.c: a small crawler: fetch a start page, collect its
 * links, fetch the linked pages concurrently (at most LIMIT at once, the
 * Semaphore idiom through eddy_http_fetch_many) and print each page's
 * <title> in link order. A page that fails is reported and the others go
 * on (gather with return_exceptions=True).
 *
 * Without an argument it crawls a small site served by this loop (every
 * page answers after 50 ms); with a URL argument it crawls that page's
 * links instead (only absolute http:// links and paths on the same
 * server are followed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <eddy/eddy.h>

#define MAX_LINKS 32
#define LIMIT 4
#define URL_BYTES 512

static const char *const site[][2] = {
    {"/", "<html><head><title>Home</title></head><body>"
          "<a href=\"/about\">about</a> <a href=\"/blog\">blog</a> "
          "<a href=\"/blog/first\">first post</a> <a href=\"/contact\">contact</a> "
          "<a href=\"/gone\">an old page</a></body></html>"},
    {"/about", "<html><head><title>About eddy</title></head><body>asyncio for C</body></html>"},
    {"/blog", "<html><head><TITLE>The blog</TITLE></head><body></body></html>"},
    {"/blog/first", "<html><head><title>\n  Hello, crawler\n</title></head></html>"},
    {"/contact", "<html><head><title>Contact</title></head><body>no mail</body></html>"},
};

static int page(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    const struct eddy_http_request *req = eddy_http_req(ex);
    int rc = eddy_sleep_ms(50);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < sizeof(site) / sizeof(site[0]); i++)
        if (strlen(site[i][0]) == req->path_len && !memcmp(site[i][0], req->path, req->path_len))
            return eddy_http_respond(ex, 200, "text/html", site[i][1], strlen(site[i][1]));
    return eddy_http_respond(ex, 404, "text/html", "<title>Not Found</title>", 24);
}

/* Finds the text between <title> and </title> (any case), trimmed. */
static int title_of(const char *html, char *out, size_t cap)
{
    const char *open = strcasestr(html, "<title>");
    const char *close = open ? strcasestr(open, "</title>") : NULL;
    if (!close)
        return -ENOENT;
    const char *p = open + 7;
    while (p < close && strchr(" \t\r\n", *p))
        p++;
    const char *e = close;
    while (e > p && strchr(" \t\r\n", e[-1]))
        e--;
    snprintf(out, cap, "%.*s", (int)(e - p), p);
    return 0;
}

/* Collects href="..." links, resolved against base, into links. */
static size_t links_of(const char *html, const char *base, char links[][URL_BYTES], size_t max)
{
    size_t n = 0;
    for (const char *p = html; n < max && (p = strstr(p, "href=\""));) {
        p += 6;
        const char *end = strchr(p, '"');
        if (!end)
            break;
        char ref[URL_BYTES];
        snprintf(ref, sizeof(ref), "%.*s", (int)(end - p), p);
        if (eddy_url_resolve(base, ref, links[n], URL_BYTES) > 0 &&
            strncmp(links[n], "http://", 7) == 0)
            n++;
        p = end;
    }
    return n;
}

struct run {
    struct eddy_http_server *srv;
    const char *start;
    int rc;
};

static intptr_t crawl(void *arg)
{
    struct run *run = arg;
    char start[URL_BYTES];
    if (run->start) {
        snprintf(start, sizeof(start), "%s", run->start);
    } else {
        struct eddy_addr addr;
        eddy_http_server_addr(run->srv, &addr);
        snprintf(start, sizeof(start), "http://127.0.0.1:%u/", eddy_addr_port(&addr));
    }
    struct eddy_http_client *c;
    int rc = eddy_http_client_create(NULL, &c);
    if (rc < 0)
        return rc;
    struct eddy_http_reply *r;
    rc = eddy_http_client_get(c, start, &r);
    if (rc == 0) {
        char title[256] = "(no title)";
        title_of(eddy_http_reply_body(r, NULL), title, sizeof(title));
        printf("start: %s\n", title);
        static char links[MAX_LINKS][URL_BYTES];
        size_t n = links_of(eddy_http_reply_body(r, NULL), start, links, MAX_LINKS);
        eddy_http_reply_destroy(r);
        const char *urls[MAX_LINKS];
        for (size_t i = 0; i < n; i++)
            urls[i] = links[i];
        struct eddy_http_reply *replies[MAX_LINKS];
        int errors[MAX_LINKS];
        rc = eddy_http_fetch_many(c, urls, n, LIMIT, replies, errors);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            struct eddy_url u;
            eddy_url_parse(urls[i], strlen(urls[i]), &u);
            printf("  %.*s: ", (int)(u.path_len ? u.path_len : 1), u.path_len ? u.path : "/");
            if (errors[i] < 0) {
                printf("failed (%s)\n", eddy_strerror(errors[i]));
                continue;
            }
            if (eddy_http_reply_status(replies[i]) != 200)
                printf("HTTP %u\n", eddy_http_reply_status(replies[i]));
            else if (title_of(eddy_http_reply_body(replies[i], NULL), title, sizeof(title)) == 0)
                printf("%s\n", title);
            else
                printf("(no title)\n");
            eddy_http_reply_destroy(replies[i]);
        }
    } else {
        printf("%s: %s\n", start, eddy_strerror(rc));
    }
    eddy_http_client_destroy(c);
    if (run->srv)
        eddy_http_server_stop(run->srv);
    run->rc = rc;
    return 0;
}

static intptr_t main_task(void *arg)
{
    struct run *run = arg;
    if (run->start)
        return crawl(run);
    int rc = eddy_http_server_create(NULL, &run->srv);
    if (rc < 0)
        return rc;
    eddy_http_server_route(run->srv, "GET", "/{path...}", page, NULL);
    eddy_http_server_route(run->srv, "GET", "/", page, NULL);
    struct eddy_addr addr;
    eddy_addr_parse("127.0.0.1:0", &addr);
    rc = eddy_http_server_listen(run->srv, &addr, false);
    struct eddy_task *t = NULL;
    if (rc == 0)
        rc = eddy_task_spawn(crawl, run, NULL, &t);
    if (rc == 0)
        rc = eddy_http_server_serve(run->srv);
    if (t)
        eddy_task_join(t, NULL);
    eddy_http_server_destroy(run->srv);
    return rc;
}

int main(int argc, char **argv)
{
    struct run run = {.start = argc > 1 ? argv[1] : NULL};
    intptr_t result = 0;
    int rc = eddy_run(main_task, &run, NULL, &result);
    return rc == 0 && result == 0 && run.rc == 0 ? 0 : 1;
}

/*
 * examples/fetch_concurrent.c: the asyncio guides' headline example: fetch
 * ten URLs one after another, then all at once, and compare.
 *
 *   async def main():
 *       async with aiohttp.ClientSession() as s:
 *           for u in urls: await fetch(s, u)                    # ~10 x 0.1 s
 *           await asyncio.gather(*(fetch(s, u) for u in urls))  # ~0.1 s
 *
 * Without an argument the pages come from a server on this loop whose
 * every page takes 100 ms to answer (a slow service); with a URL argument
 * that URL is fetched ten times instead. eddy-fetch does the same at any
 * scale: eddy-fetch --mode sync|async -n N URL.
 */
#include <stdio.h>
#include <string.h>

#include <eddy/eddy.h>

#define PAGES 10
#define PAGE_DELAY_MS 100

static int slow_page(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    int rc = eddy_sleep_ms(PAGE_DELAY_MS);
    if (rc < 0)
        return rc;
    size_t n;
    const char *id = eddy_http_param(ex, "id", &n);
    char body[64];
    int len = snprintf(body, sizeof(body), "page %.*s", (int)n, id);
    return eddy_http_respond(ex, 200, "text/plain", body, (size_t)len);
}

struct run {
    struct eddy_http_server *srv; /* NULL with a URL argument */
    const char *url;
    int rc;
};

static double seconds_since(int64_t t0)
{
    return (double)(eddy_clock_ns() - t0) / 1e9;
}

static intptr_t client(void *arg)
{
    struct run *run = arg;
    char urls[PAGES][256];
    const char *list[PAGES];
    struct eddy_addr addr;
    if (run->srv)
        eddy_http_server_addr(run->srv, &addr);
    for (int i = 0; i < PAGES; i++) {
        if (run->url)
            snprintf(urls[i], sizeof(urls[i]), "%s", run->url);
        else
            snprintf(urls[i], sizeof(urls[i]), "http://127.0.0.1:%u/page/%d", eddy_addr_port(&addr),
                     i);
        list[i] = urls[i];
    }
    struct eddy_http_client *c;
    struct eddy_http_client_opts opts = {.max_per_host = PAGES};
    int rc = eddy_http_client_create(&opts, &c);
    if (rc < 0)
        return rc;

    /* One after another: each request waits for the previous one. */
    int64_t t0 = eddy_clock_ns();
    int ok = 0;
    for (int i = 0; i < PAGES; i++) {
        struct eddy_http_reply *r;
        int e = eddy_http_client_get(c, list[i], &r);
        if (e < 0) {
            printf("  %s: %s\n", list[i], eddy_strerror(e));
            continue;
        }
        ok += eddy_http_reply_status(r) == 200;
        eddy_http_reply_destroy(r);
    }
    double seq = seconds_since(t0);
    printf("sequential: %d of %d pages in %.2f s\n", ok, PAGES, seq);

    /* All at once: the waits overlap (gather with return_exceptions). */
    struct eddy_http_reply *replies[PAGES];
    int errors[PAGES];
    t0 = eddy_clock_ns();
    rc = eddy_http_fetch_many(c, list, PAGES, PAGES, replies, errors);
    double conc = seconds_since(t0);
    ok = 0;
    for (int i = 0; i < PAGES; i++) {
        if (errors[i] < 0)
            printf("  %s: %s\n", list[i], eddy_strerror(errors[i]));
        else
            ok += eddy_http_reply_status(replies[i]) == 200;
        eddy_http_reply_destroy(replies[i]);
    }
    printf("concurrent: %d of %d pages in %.2f s\n", ok, PAGES, conc);
    printf("speedup: %.1fx\n", conc > 0 ? seq / conc : 0.0);
    eddy_http_client_destroy(c);
    if (run->srv)
        eddy_http_server_stop(run->srv);
    run->rc = rc < 0 ? rc : ok == PAGES ? 0 : -EIO;
    return 0;
}

static intptr_t main_task(void *arg)
{
    struct run *run = arg;
    if (run->url)
        return client(run);
    int rc = eddy_http_server_create(NULL, &run->srv);
    if (rc < 0)
        return rc;
    eddy_http_server_route(run->srv, "GET", "/page/{id}", slow_page, NULL);
    struct eddy_addr addr;
    eddy_addr_parse("127.0.0.1:0", &addr);
    rc = eddy_http_server_listen(run->srv, &addr, false);
    struct eddy_task *t = NULL;
    if (rc == 0)
        rc = eddy_task_spawn(client, run, NULL, &t);
    if (rc == 0)
        rc = eddy_http_server_serve(run->srv);
    if (t)
        eddy_task_join(t, NULL);
    eddy_http_server_destroy(run->srv);
    return rc;
}

int main(int argc, char **argv)
{
    struct run run = {.url = argc > 1 ? argv[1] : NULL};
    intptr_t result = 0;
    int rc = eddy_run(main_task, &run, NULL, &result);
    return rc == 0 && result == 0 && run.rc == 0 ? 0 : 1;
}

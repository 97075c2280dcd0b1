/*
 * examples/http_server.c: aiohttp.web's hello world, in C, talking to
 * itself.
 *
 *   async def hello(request):
 *       return web.Response(text=f"Hello, {request.match_info['name']}!")
 *   app = web.Application(); app.router.add_get("/hello/{name}", hello)
 *
 * The server listens on 127.0.0.1 (a free port); a client task of the same
 * loop opens a connection, sends two requests on it (keep-alive), prints
 * each status line and body, and stops the server, which finishes
 * gracefully: serve returns once the connection is closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <eddy/eddy.h>

static int hello(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    size_t n;
    const char *name = eddy_http_param(ex, "name", &n);
    char body[128];
    int len = snprintf(body, sizeof(body), "Hello, %.*s!", (int)n, name);
    return eddy_http_respond(ex, 200, "text/plain", body, (size_t)len);
}

/* Sends one GET and prints the status line and body of the answer. */
static int get(struct eddy_stream *s, const char *path)
{
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    if (eddy_stream_write(s, req, (size_t)n) < 0 || eddy_stream_flush(s) < 0)
        return -EIO;
    char line[256];
    size_t body_len = 0;
    bool status_line = true;
    for (;;) {
        ssize_t len = eddy_stream_read_line(s, line, sizeof(line));
        if (len < 0)
            return (int)len;
        if (status_line) {
            printf("%.*s\n", (int)strcspn(line, "\r\n"), line);
            status_line = false;
        } else if (strncmp(line, "Content-Length: ", 16) == 0) {
            body_len = strtoul(line + 16, NULL, 10);
        } else if (strcmp(line, "\r\n") == 0) {
            break;
        }
    }
    char body[256];
    if (body_len >= sizeof(body) || eddy_stream_read_exactly(s, body, body_len) < 0)
        return -EBADMSG;
    while (body_len > 0 && body[body_len - 1] == '\n')
        body_len--;
    printf("  %.*s\n", (int)body_len, body);
    return 0;
}

static intptr_t client(void *arg)
{
    struct eddy_http_server *srv = arg;
    struct eddy_addr addr;
    eddy_http_server_addr(srv, &addr);
    int fd = eddy_sock_connect(&addr, EDDY_NS_PER_SEC);
    struct eddy_stream *s;
    int rc = fd < 0 ? fd : eddy_stream_open(fd, NULL, &s);
    if (rc == 0) {
        rc = get(s, "/hello/world");
        if (rc == 0)
            rc = get(s, "/hello/eddy");
        if (rc == 0)
            rc = get(s, "/nowhere");
        eddy_stream_close(s);
    }
    printf("client done, stopping the server\n");
    eddy_http_server_stop(srv);
    return rc;
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    struct eddy_http_server *srv;
    int rc = eddy_http_server_create(NULL, &srv);
    if (rc < 0)
        return rc;
    eddy_http_server_route(srv, "GET", "/hello/{name}", hello, NULL);
    struct eddy_addr addr;
    eddy_addr_parse("127.0.0.1:0", &addr);
    rc = eddy_http_server_listen(srv, &addr, false);
    struct eddy_task *c = NULL;
    if (rc == 0)
        rc = eddy_task_spawn(client, srv, NULL, &c);
    if (rc == 0)
        rc = eddy_http_server_serve(srv);
    printf("server stopped: %s\n", eddy_strerror(rc));
    intptr_t crc = 0;
    if (c)
        eddy_task_join(c, &crc);
    eddy_http_server_destroy(srv);
    return rc < 0 ? rc : crc;
}

int main(void)
{
    intptr_t result = 0;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    return rc == 0 && result == 0 ? 0 : 1;
}

/*
 * tools/eddy-httpd.c: the HTTP server of eddy's benchmarks and demos.
 *
 * One loop per thread (--threads), each with its own SO_REUSEPORT listener
 * on the same port, so the kernel spreads connections over the threads.
 * The main thread's loop also waits for SIGINT/SIGTERM/SIGHUP and then
 * stops every server gracefully (each through a post to its loop): no new
 * connections, requests in flight finish, idle connections close; the
 * process exits 0 once all are done. A second signal exits at once.
 *
 * Routes (DESIGN.md): /plaintext, /json, /delay?ms=N, /echo (POST),
 * /files/... (under --root), and /cpu?n=N[&offload=1] for the cpu suite of
 * the benchmarks: N rounds of a hash (tools/cpu_work.h, ~80 ns a round),
 * computed on the loop (every other request on that loop waits meanwhile:
 * the trap of CPU work in a coroutine) or with offload=1 on the offload
 * pool (the loop keeps serving; EDDY_OFFLOAD_THREADS sizes the pool).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <eddy/eddy.h>

#include "tools/cpu_work.h"

#define MAX_THREADS 256
#define MAX_DELAY_MS 60000

struct config {
    const char *host;
    unsigned port;
    unsigned threads;
    const char *root;
    bool access_log;
    size_t max_connections;
    struct eddy_addr addr; /* resolved once the first listener is bound */
};

struct worker {
    const struct config *cfg;
    pthread_t thread;
    bool started;
    struct eddy_http_server *srv;
    struct eddy_loop *loop; /* while serving; under loops_lock */
    int rc;
};

static struct config cfg = {.host = "127.0.0.1", .port = 8080, .threads = 1};
static struct worker workers[MAX_THREADS];
static bool stopping; /* under loops_lock */

/* ---- handlers ------------------------------------------------------------- */

static int plaintext(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    static const char body[] = "Hello, World!";
    return eddy_http_respond(ex, 200, "text/plain", body, sizeof(body) - 1);
}

static int json(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    static const char body[] = "{\"message\":\"Hello, World!\"}";
    return eddy_http_respond_json(ex, 200, body, sizeof(body) - 1);
}

static int delay(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    char text[16];
    int n = eddy_http_query(ex, "ms", text, sizeof(text));
    char *end = NULL;
    long ms = n > 0 ? strtol(text, &end, 10) : -1;
    if (n <= 0 || *end || ms < 0 || ms > MAX_DELAY_MS) {
        static const char msg[] = "ms must be an integer from 0 to 60000\n";
        return eddy_http_respond(ex, 400, "text/plain", msg, sizeof(msg) - 1);
    }
    int rc = eddy_sleep_ms(ms);
    if (rc < 0)
        return rc;
    char body[32];
    n = snprintf(body, sizeof(body), "waited %ld ms\n", ms);
    return eddy_http_respond(ex, 200, "text/plain", body, (size_t)n);
}

/* The offload job of /cpu: the rounds travel in the argument itself, so a
 * job left behind by a cancelled caller has nothing to free. */
static intptr_t cpu_job(void *arg)
{
    return (intptr_t)cpu_work_rounds((uint64_t)(uintptr_t)arg);
}

static int cpu(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    char text[24];
    int n = eddy_http_query(ex, "n", text, sizeof(text));
    char *end = NULL;
    errno = 0;
    unsigned long long rounds = n > 0 && text[0] != '-' ? strtoull(text, &end, 10) : 0;
    bool rounds_ok = n > 0 && text[0] != '-' && !*end && !errno && rounds <= CPU_WORK_MAX_ROUNDS;
    n = eddy_http_query(ex, "offload", text, sizeof(text));
    bool offload = n > 0 && strcmp(text, "1") == 0;
    bool offload_ok = n == -ENOENT || (n > 0 && (offload || strcmp(text, "0") == 0));
    if (!rounds_ok || !offload_ok) {
        static const char msg[] = "n must be an integer from 0 to 100000000, offload 0 or 1\n";
        return eddy_http_respond(ex, 400, "text/plain", msg, sizeof(msg) - 1);
    }
    uint64_t hash;
    if (offload) {
        intptr_t result = 0;
        int rc = eddy_offload_run(cpu_job, (void *)(uintptr_t)rounds, NULL, &result);
        if (rc < 0)
            return rc;
        hash = (uint64_t)result;
    } else {
        hash = cpu_work_rounds(rounds);
    }
    char body[32];
    n = snprintf(body, sizeof(body), "%016llx\n", (unsigned long long)hash);
    return eddy_http_respond(ex, 200, "text/plain", body, (size_t)n);
}

static int echo(struct eddy_http_exchange *ex, void *arg)
{
    (void)arg;
    const struct eddy_http_request *req = eddy_http_req(ex);
    size_t cap = req->body == EDDY_HTTP_BODY_LENGTH ? (size_t)req->content_length : 64 * 1024;
    size_t len = 0;
    char *buf = malloc(cap ? cap : 1);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return -ENOMEM;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = eddy_http_body_read(ex, buf + len, cap - len);
        if (n == 0)
            break;
        if (n < 0) {
            free(buf);
            if (n == -EMSGSIZE) {
                static const char msg[] = "request body too large\n";
                return eddy_http_respond(ex, 413, "text/plain", msg, sizeof(msg) - 1);
            }
            return (int)n;
        }
        len += (size_t)n;
    }
    int rc = eddy_http_respond(ex, 200, "application/octet-stream", buf, len);
    free(buf);
    return rc;
}

static int files(struct eddy_http_exchange *ex, void *arg)
{
    const struct config *c = arg;
    return eddy_http_serve_dir(ex, c->root, "path");
}

/* ---- one loop per thread ------------------------------------------------- */

/* Guards each worker's loop pointer: a stop is posted only to a loop that
 * is still serving. */
static pthread_mutex_t loops_lock = PTHREAD_MUTEX_INITIALIZER;

static void *worker_thread(void *arg);

/* Starts workers 1..threads-1, once worker 0 has bound the port. */
static int start_other_workers(void)
{
    for (unsigned i = 1; i < cfg.threads; i++) {
        int rc = pthread_create(&workers[i].thread, NULL, worker_thread, &workers[i]);
        if (rc != 0) {
            fprintf(stderr, "eddy-httpd: thread %u: %s\n", i, strerror(rc));
            return -rc;
        }
        workers[i].started = true;
    }
    return 0;
}

static intptr_t serve(void *arg)
{
    struct worker *w = arg;
    const struct config *c = w->cfg;
    struct eddy_http_server_opts opts = {.max_connections = c->max_connections,
                                         .access_log = c->access_log,
                                         .access_log_fd = STDERR_FILENO};
    int rc = eddy_http_server_create(&opts, &w->srv);
    if (rc < 0)
        return rc;
    eddy_http_server_route(w->srv, "GET", "/plaintext", plaintext, NULL);
    eddy_http_server_route(w->srv, "GET", "/json", json, NULL);
    eddy_http_server_route(w->srv, "GET", "/delay", delay, NULL);
    eddy_http_server_route(w->srv, "POST", "/echo", echo, NULL);
    eddy_http_server_route(w->srv, "GET", "/cpu", cpu, NULL);
    if (c->root)
        eddy_http_server_route(w->srv, "GET", "/files/{path...}", files, (void *)c);
    rc = eddy_http_server_listen(w->srv, &cfg.addr, true);
    if (rc == 0 && w == &workers[0]) {
        /* Port 0 resolved here; the other workers share the bound port. */
        rc = eddy_http_server_addr(w->srv, &cfg.addr);
        char text[EDDY_ADDR_TEXT_MAX] = "?";
        eddy_addr_format(&cfg.addr, text, sizeof(text));
        printf("eddy-httpd listening on %s (%u thread%s)\n", text, cfg.threads,
               cfg.threads == 1 ? "" : "s");
        fflush(stdout);
        if (rc == 0)
            rc = start_other_workers();
    }
    if (rc == 0) {
        pthread_mutex_lock(&loops_lock);
        bool stopped_already = stopping;
        if (!stopped_already)
            w->loop = eddy_loop_current();
        pthread_mutex_unlock(&loops_lock);
        if (!stopped_already)
            rc = eddy_http_server_serve(w->srv);
        pthread_mutex_lock(&loops_lock);
        w->loop = NULL;
        pthread_mutex_unlock(&loops_lock);
    } else {
        char text[EDDY_ADDR_TEXT_MAX] = "?";
        eddy_addr_format(&cfg.addr, text, sizeof(text));
        fprintf(stderr, "eddy-httpd: listen on %s: %s\n", text, eddy_strerror(rc));
    }
    eddy_http_server_destroy(w->srv);
    return rc;
}

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    intptr_t result = 0;
    int rc = eddy_run(serve, w, NULL, &result);
    w->rc = rc < 0 ? rc : (int)result;
    return NULL;
}

static void stop_server(void *arg)
{
    eddy_http_server_stop(arg);
}

/* Stops every worker that serves (those still starting see `stopping`). */
static void stop_all(void)
{
    pthread_mutex_lock(&loops_lock);
    stopping = true;
    for (unsigned i = 0; i < cfg.threads; i++)
        if (workers[i].loop)
            eddy_loop_post(workers[i].loop, stop_server, workers[i].srv);
    pthread_mutex_unlock(&loops_lock);
}

static intptr_t signal_watch(void *arg)
{
    (void)arg;
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    int sig = eddy_signal_wait(sigs, 3, EDDY_DEADLINE_NEVER);
    if (sig < 0)
        return sig;
    fprintf(stderr, "eddy-httpd: %s, stopping (a second signal exits at once)\n", strsignal(sig));
    stop_all();
    sig = eddy_signal_wait(sigs, 3, EDDY_DEADLINE_NEVER);
    if (sig > 0)
        _exit(128 + sig);
    return 0;
}

/* The main thread: worker 0 and the signal watcher. */
static intptr_t main_task(void *arg)
{
    (void)arg;
    struct eddy_task *watcher;
    int rc = eddy_task_spawn(signal_watch, NULL, NULL, &watcher);
    if (rc < 0)
        return rc;
    intptr_t served = serve(&workers[0]);
    if (served < 0)
        stop_all(); /* worker 0 failed: take the others down too */
    eddy_task_cancel(watcher);
    eddy_task_join(watcher, NULL);
    return served;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: eddy-httpd [options]\n"
                "  --host ADDR          address to listen on (default 127.0.0.1; ::1 for IPv6)\n"
                "  --port N             port (default 8080; 0 picks a free one)\n"
                "  --threads N          loops, one per thread, sharing the port (default 1)\n"
                "  --root DIR           serve files under DIR at /files/...\n"
                "  --max-connections N  open connections before accepting pauses (default 10000)\n"
                "  --access-log         one line per request on stderr (default off)\n"
                "  --help               this text\n"
                "routes: /plaintext, /json, /delay?ms=N, POST /echo, /files/... (with --root),\n"
                "  /cpu?n=N            N rounds of a hash (~80 ns each), computed on the loop:\n"
                "                      the loop serves nothing else meanwhile\n"
                "  /cpu?n=N&offload=1  the same rounds on the offload pool (EDDY_OFFLOAD_THREADS\n"
                "                      threads, default 4): the loop keeps serving\n"
                "SIGINT/SIGTERM/SIGHUP stop gracefully; a second one exits at once.\n");
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !*s || *end || v > max || s[0] == '-')
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"root", required_argument, NULL, 'r'},
        {"max-connections", required_argument, NULL, 'm'},
        {"access-log", no_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int opt;
    unsigned long v;
    while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'H':
            cfg.host = optarg;
            break;
        case 'p':
            if (!parse_uint(optarg, 65535, &v)) {
                fprintf(stderr, "eddy-httpd: --port wants 0 to 65535, not '%s'\n", optarg);
                return 2;
            }
            cfg.port = (unsigned)v;
            break;
        case 't':
            if (!parse_uint(optarg, MAX_THREADS, &v) || v == 0) {
                fprintf(stderr, "eddy-httpd: --threads wants 1 to %d, not '%s'\n", MAX_THREADS,
                        optarg);
                return 2;
            }
            cfg.threads = (unsigned)v;
            break;
        case 'r':
            cfg.root = optarg;
            break;
        case 'm':
            if (!parse_uint(optarg, 1000000, &v) || v == 0) {
                fprintf(stderr, "eddy-httpd: --max-connections wants 1 to 1000000\n");
                return 2;
            }
            cfg.max_connections = v;
            break;
        case 'l':
            cfg.access_log = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "eddy-httpd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (cfg.root && access(cfg.root, R_OK | X_OK) != 0) {
        fprintf(stderr, "eddy-httpd: --root %s: %s\n", cfg.root, strerror(errno));
        return 2;
    }
    if (eddy_addr_from_ip(cfg.host, (uint16_t)cfg.port, &cfg.addr) < 0) {
        fprintf(stderr, "eddy-httpd: --host wants an IP address, not '%s'\n", cfg.host);
        return 2;
    }

    /* Signals are taken by the signalfd of the main loop: block them in
     * every thread, so none is delivered to a worker by default action. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    for (unsigned i = 0; i < cfg.threads; i++)
        workers[i].cfg = &cfg;

    intptr_t result = 0;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    int status = rc < 0 || result < 0 ? 1 : 0;
    for (unsigned i = 1; i < cfg.threads; i++) {
        if (!workers[i].started)
            continue;
        pthread_join(workers[i].thread, NULL);
        if (workers[i].rc < 0)
            status = 1;
    }
    return status;
}

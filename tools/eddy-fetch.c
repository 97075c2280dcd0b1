/*
 * tools/eddy-fetch.c: the HTTP load client and the sync-vs-async
 * reproducer (the guides' "fetch N URLs one after another, then all at
 * once").
 *
 *   eddy-fetch --mode sync    -n 10  http://127.0.0.1:8080/delay?ms=100   # ~1 s
 *   eddy-fetch --mode threads -n 10  -c 10 http://...                     # ~0.1 s
 *   eddy-fetch --mode async   -n 10000 -c 10000 http://...                # ~0.1 s + overhead
 *
 * Modes differ only in how they wait; all three run eddy's client
 * (http/client.c: the same request serialization, response parsing and
 * body framing):
 *   sync     one blocking client, requests one after another;
 *   threads  c OS threads, each with its own blocking client (one
 *            keep-alive connection each), taking the next request in turn;
 *   async    one loop, one client (pool limit c), c tasks taking the next
 *            request in turn.
 * Requests go to the URLs round-robin. A request counts as an error when
 * it fails (refused, reset, timeout, malformed answer...) or its answer's
 * status is 400 or above. Exit status: 0 when no request failed, 1 when
 * some did, 2 for bad usage.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <eddy/eddy.h>

#define MAX_HEADERS 64
#define MAX_THREADS 20000
#define ERROR_KINDS 64

enum mode { MODE_SYNC, MODE_THREADS, MODE_ASYNC };

struct config {
    enum mode mode;
    unsigned long n;
    unsigned long c;
    bool c_given;
    char **urls;
    size_t nurls;
    const char *method;
    const char *data;
    size_t data_len;
    char *data_owned;
    struct eddy_http_header headers[MAX_HEADERS];
    size_t nheaders;
    bool json;
    bool verbose;
    double timeout_s;
};

static struct config cfg = {.mode = MODE_ASYNC};

/* What one loop or thread measured; merged at the end. */
struct tally {
    struct eddy_metrics m;
    uint64_t bytes;
    uint64_t status_class[6]; /* [1] 1xx ... [5] 5xx */
    uint64_t http_errors;
    int error_codes[ERROR_KINDS];
    uint64_t error_counts[ERROR_KINDS];
    int first_error;
};

static atomic_ulong next_request;
/* When the last answer (or failure) came: "seconds" ends there, so that
 * closing the kept-alive connections afterwards is not counted (as wrk
 * does). The run's whole time is reported as wall_seconds. */
static _Atomic int64_t last_done_ns;

static void note_done(int64_t now)
{
    int64_t seen = atomic_load_explicit(&last_done_ns, memory_order_relaxed);
    while (now > seen &&
           !atomic_compare_exchange_weak_explicit(&last_done_ns, &seen, now, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

static void tally_error(struct tally *t, int code)
{
    if (!t->first_error)
        t->first_error = code;
    for (int i = 0; i < ERROR_KINDS; i++) {
        if (t->error_codes[i] == code || t->error_codes[i] == 0) {
            t->error_codes[i] = code;
            t->error_counts[i]++;
            return;
        }
    }
}

static void tally_merge(struct tally *into, const struct tally *from)
{
    eddy_metrics_merge(&into->m, &from->m);
    into->bytes += from->bytes;
    into->http_errors += from->http_errors;
    for (int i = 0; i < 6; i++)
        into->status_class[i] += from->status_class[i];
    for (int i = 0; i < ERROR_KINDS && from->error_codes[i]; i++)
        for (uint64_t k = 0; k < from->error_counts[i]; k++)
            tally_error(into, from->error_codes[i]);
    if (!into->first_error)
        into->first_error = from->first_error;
}

/* One request, the same in every mode. */
static void one_request(struct eddy_http_client *client, unsigned long i, struct tally *t)
{
    struct eddy_http_request_spec req = {
        .method = cfg.method,
        .url = cfg.urls[i % cfg.nurls],
        .headers = cfg.headers,
        .nheaders = cfg.nheaders,
        .body = cfg.data,
        .body_len = cfg.data_len,
    };
    struct eddy_http_reply *r = NULL;
    int64_t t0 = eddy_clock_ns();
    int rc = eddy_http_client_request(client, &req, &r);
    bool failed = rc < 0;
    if (rc < 0) {
        tally_error(t, rc);
        if (cfg.verbose)
            fprintf(stderr, "eddy-fetch: %s: %s\n", req.url, eddy_strerror(rc));
    } else {
        unsigned status = eddy_http_reply_status(r);
        size_t len;
        eddy_http_reply_body(r, &len);
        t->bytes += len;
        t->status_class[status / 100 <= 5 ? status / 100 : 5]++;
        if (status >= 400) {
            failed = true;
            t->http_errors++;
        }
        eddy_http_reply_destroy(r);
    }
    int64_t now = eddy_clock_ns();
    eddy_metrics_observe(&t->m, now - t0, failed);
    note_done(now);
}

static struct eddy_http_client_opts client_opts(size_t conns, bool blocking)
{
    struct eddy_http_client_opts o = {
        .max_per_host = conns,
        .max_total = conns,
        .blocking = blocking,
    };
    if (cfg.timeout_s > 0)
        o.total_timeout_ns = o.read_timeout_ns = o.connect_timeout_ns =
            (int64_t)(cfg.timeout_s * 1e9);
    return o;
}

/* ---- sync and threads ------------------------------------------------------ */

struct worker {
    pthread_t thread;
    struct tally t;
    int rc;
};

static void *blocking_worker(void *arg)
{
    struct worker *w = arg;
    struct eddy_http_client_opts o = client_opts(1, true);
    struct eddy_http_client *client;
    w->rc = eddy_http_client_create(&o, &client);
    if (w->rc < 0)
        return NULL;
    for (;;) {
        unsigned long i = atomic_fetch_add(&next_request, 1);
        if (i >= cfg.n)
            break;
        one_request(client, i, &w->t);
    }
    eddy_http_client_destroy(client);
    return NULL;
}

static int run_blocking(unsigned long threads, struct tally *total)
{
    struct worker *w = calloc(threads, sizeof(*w));
    if (!w)
        return -ENOMEM;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    unsigned long started = 0;
    int rc = 0;
    if (threads == 1) {
        eddy_metrics_init(&w[0].t.m);
        blocking_worker(&w[0]);
        started = 1;
    } else {
        for (; started < threads; started++) {
            eddy_metrics_init(&w[started].t.m);
            int e = pthread_create(&w[started].thread, &attr, blocking_worker, &w[started]);
            if (e) {
                fprintf(stderr, "eddy-fetch: thread %lu: %s (running with %lu)\n", started,
                        strerror(e), started);
                break;
            }
        }
        for (unsigned long i = 0; i < started; i++)
            pthread_join(w[i].thread, NULL);
        if (started == 0)
            rc = -EAGAIN;
    }
    pthread_attr_destroy(&attr);
    for (unsigned long i = 0; i < started; i++) {
        tally_merge(total, &w[i].t);
        if (w[i].rc < 0 && rc == 0)
            rc = w[i].rc;
    }
    free(w);
    return rc;
}

/* ---- async ------------------------------------------------------------------ */

struct async_run {
    struct eddy_http_client *client;
    struct tally *t;
};

static intptr_t async_worker(void *arg)
{
    struct async_run *run = arg;
    for (;;) {
        unsigned long i = atomic_fetch_add_explicit(&next_request, 1, memory_order_relaxed);
        if (i >= cfg.n)
            break;
        one_request(run->client, i, run->t);
    }
    return 0;
}

static intptr_t async_main(void *arg)
{
    struct tally *t = arg;
    struct eddy_http_client_opts o = client_opts(cfg.c, false);
    struct async_run run = {.t = t};
    int rc = eddy_http_client_create(&o, &run.client);
    if (rc < 0)
        return rc;
    struct eddy_group *g;
    rc = eddy_group_create(&g);
    if (rc < 0) {
        eddy_http_client_destroy(run.client);
        return rc;
    }
    struct eddy_task_opts topts = {.stack_size_bytes = 32 * 1024};
    unsigned long spawned = 0;
    for (; spawned < cfg.c; spawned++) {
        rc = eddy_group_spawn(g, async_worker, &run, &topts, NULL);
        if (rc < 0)
            break;
    }
    if (rc < 0 && spawned > 0) {
        fprintf(stderr, "eddy-fetch: task %lu: %s (running with %lu)\n", spawned, eddy_strerror(rc),
                spawned);
        rc = 0;
    }
    int jrc = eddy_group_join(g);
    if (rc == 0)
        rc = jrc;
    eddy_http_client_destroy(run.client);
    return rc;
}

/* ---- report ------------------------------------------------------------------ */

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

static const char *mode_name(enum mode m)
{
    return m == MODE_SYNC ? "sync" : m == MODE_THREADS ? "threads" : "async";
}

/* "ECONNREFUSED" from "ECONNREFUSED: connection refused". */
static void error_name(int code, char *out, size_t cap)
{
    const char *s = eddy_strerror(code);
    size_t n = strcspn(s, ":");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

static void report(const struct tally *t, double seconds, double wall)
{
    struct eddy_metrics_snapshot s;
    eddy_metrics_snapshot(&t->m, &s);
    double rps = seconds > 0 ? (double)s.calls / seconds : 0;
    if (cfg.json) {
        printf("{\"mode\":\"%s\",\"requests\":%llu,\"errors\":%llu,\"http_errors\":%llu,"
               "\"seconds\":%.6f,\"wall_seconds\":%.6f,\"rps\":%.1f,\"concurrency\":%lu,\"urls\":%"
               "zu,\"bytes\":%llu,"
               "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f,"
               "\"mean\":%.3f,\"min\":%.3f},\"status\":{",
               mode_name(cfg.mode), (unsigned long long)s.calls, (unsigned long long)s.errors,
               (unsigned long long)t->http_errors, seconds, wall, rps, cfg.c, cfg.nurls,
               (unsigned long long)t->bytes, ms(s.p50_ns), ms(s.p90_ns), ms(s.p99_ns), ms(s.max_ns),
               ms(s.mean_ns), ms(s.min_ns));
        bool first = true;
        for (int i = 1; i <= 5; i++) {
            if (!t->status_class[i])
                continue;
            printf("%s\"%dxx\":%llu", first ? "" : ",", i, (unsigned long long)t->status_class[i]);
            first = false;
        }
        printf("},\"error_kinds\":{");
        for (int i = 0; i < ERROR_KINDS && t->error_codes[i]; i++) {
            char name[32];
            error_name(t->error_codes[i], name, sizeof(name));
            printf("%s\"%s\":%llu", i ? "," : "", name, (unsigned long long)t->error_counts[i]);
        }
        printf("}}\n");
        return;
    }
    printf("eddy-fetch: mode %s, %lu requests, concurrency %lu, %zu URL%s\n", mode_name(cfg.mode),
           cfg.n, cfg.c, cfg.nurls, cfg.nurls == 1 ? "" : "s");
    printf("  requests  %llu (errors %llu)\n", (unsigned long long)s.calls,
           (unsigned long long)s.errors);
    printf("  time      %.3f s (%.3f s with setup and teardown)\n", seconds, wall);
    printf("  rate      %.1f requests/s\n", rps);
    printf("  latency   p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms\n", ms(s.p50_ns),
           ms(s.p90_ns), ms(s.p99_ns), ms(s.max_ns));
    printf("  bytes     %llu (bodies)\n", (unsigned long long)t->bytes);
    printf("  status   ");
    for (int i = 1; i <= 5; i++)
        if (t->status_class[i])
            printf(" %dxx %llu", i, (unsigned long long)t->status_class[i]);
    printf("\n");
    for (int i = 0; i < ERROR_KINDS && t->error_codes[i]; i++)
        printf("  error     %llu x %s\n", (unsigned long long)t->error_counts[i],
               eddy_strerror(t->error_codes[i]));
}

/* ---- options ---------------------------------------------------------------- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: eddy-fetch [options] URL... (or --urls FILE)\n"
            "  --mode sync|threads|async  how requests wait (default async):\n"
            "                       sync: one blocking request after another;\n"
            "                       threads: -c OS threads with blocking sockets;\n"
            "                       async: -c tasks on one eddy loop\n"
            "  -n N                 requests in all (default: one per URL); URLs round-robin\n"
            "  -c N                 requests in flight (default: N for async, up to 1000 for\n"
            "                       threads; sync is always 1)\n"
            "  --urls FILE          read URLs from FILE, one per line ('-': stdin)\n"
            "  -X METHOD            request method (default GET, POST with a body)\n"
            "  -d, --data TEXT      request body\n"
            "  --data-file FILE     request body from FILE\n"
            "  -H 'Name: value'     extra request header (repeatable)\n"
            "  --timeout SECONDS    per request (connect, each read, total); default 30/300 s\n"
            "  --json               one JSON object: requests, errors, seconds (first request to\n"
            "                       last answer), wall_seconds (with setup and teardown), rps,\n"
            "                       latency_ms {p50,p90,p99,max,mean,min}, bytes, status...\n"
            "  -v, --verbose        print each failed request on stderr\n"
            "  --help               this text\n"
            "A request fails when it gets no answer or an answer with status >= 400.\n"
            "Exit status: 0 when none failed, 1 when some did, 2 for bad usage.\n");
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !*s || *end || v > max || s[0] == '-')
        return false;
    *out = v;
    return true;
}

static int read_file(const char *path, char **data, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t m;
    while (buf && (m = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += m;
        if (cap - n < 2) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    int err = ferror(f) ? -EIO : 0;
    if (f != stdin)
        fclose(f);
    if (!buf)
        return -ENOMEM;
    if (err) {
        free(buf);
        return err;
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

static int add_urls_from(const char *path, char **text)
{
    size_t len;
    int rc = read_file(path, text, &len);
    if (rc < 0)
        return rc;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += (*text)[i] == '\n';
    char **urls = realloc(cfg.urls, (cfg.nurls + lines) * sizeof(*urls));
    if (!urls)
        return -ENOMEM;
    cfg.urls = urls;
    for (char *line = strtok(*text, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line && *line != '#')
            cfg.urls[cfg.nurls++] = line;
    }
    return 0;
}

static int parse_header(char *arg)
{
    char *colon = strchr(arg, ':');
    if (!colon || colon == arg || cfg.nheaders == MAX_HEADERS)
        return -EINVAL;
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    cfg.headers[cfg.nheaders++] = (struct eddy_http_header){
        .name = arg, .name_len = (size_t)(colon - arg), .value = v, .value_len = strlen(v)};
    return 0;
}

/* Raises the soft fd limit to the hard one: -c 10000 needs 10000 sockets. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"mode", required_argument, NULL, 'm'},
        {"urls", required_argument, NULL, 'u'},
        {"data", required_argument, NULL, 'd'},
        {"data-file", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    char *url_text = NULL;
    int opt;
    unsigned long v;
    bool n_given = false;
    while ((opt = getopt_long(argc, argv, "n:c:X:d:H:v", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'm':
            if (!strcmp(optarg, "sync"))
                cfg.mode = MODE_SYNC;
            else if (!strcmp(optarg, "threads"))
                cfg.mode = MODE_THREADS;
            else if (!strcmp(optarg, "async"))
                cfg.mode = MODE_ASYNC;
            else {
                fprintf(stderr, "eddy-fetch: --mode wants sync, threads or async\n");
                return 2;
            }
            break;
        case 'n':
            if (!parse_ulong(optarg, 1000000000ul, &v) || v == 0) {
                fprintf(stderr, "eddy-fetch: -n wants 1 to 1000000000, not '%s'\n", optarg);
                return 2;
            }
            cfg.n = v;
            n_given = true;
            break;
        case 'c':
            if (!parse_ulong(optarg, 1000000ul, &v) || v == 0) {
                fprintf(stderr, "eddy-fetch: -c wants 1 to 1000000, not '%s'\n", optarg);
                return 2;
            }
            cfg.c = v;
            cfg.c_given = true;
            break;
        case 'u': {
            int rc = add_urls_from(optarg, &url_text);
            if (rc < 0) {
                fprintf(stderr, "eddy-fetch: --urls %s: %s\n", optarg, eddy_strerror(rc));
                return 2;
            }
            break;
        }
        case 'X':
            cfg.method = optarg;
            break;
        case 'd':
            cfg.data = optarg;
            cfg.data_len = strlen(optarg);
            break;
        case 'f': {
            int rc = read_file(optarg, &cfg.data_owned, &cfg.data_len);
            if (rc < 0) {
                fprintf(stderr, "eddy-fetch: --data-file %s: %s\n", optarg, eddy_strerror(rc));
                return 2;
            }
            cfg.data = cfg.data_owned;
            break;
        }
        case 'H':
            if (parse_header(optarg) < 0) {
                fprintf(stderr, "eddy-fetch: -H wants 'Name: value' (at most %d), not '%s'\n",
                        MAX_HEADERS, optarg);
                return 2;
            }
            break;
        case 'j':
            cfg.json = true;
            break;
        case 't':
            cfg.timeout_s = strtod(optarg, NULL);
            if (cfg.timeout_s <= 0) {
                fprintf(stderr, "eddy-fetch: --timeout wants seconds > 0\n");
                return 2;
            }
            break;
        case 'v':
            cfg.verbose = true;
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
        char **urls = realloc(cfg.urls, (cfg.nurls + (size_t)(argc - optind)) * sizeof(*urls));
        if (!urls)
            return 2;
        cfg.urls = urls;
        for (int i = optind; i < argc; i++)
            cfg.urls[cfg.nurls++] = argv[i];
    }
    if (cfg.nurls == 0) {
        fprintf(stderr, "eddy-fetch: no URL given\n");
        usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < cfg.nurls; i++) {
        struct eddy_url u;
        if (eddy_url_parse(cfg.urls[i], strlen(cfg.urls[i]), &u) < 0) {
            fprintf(stderr, "eddy-fetch: not a URL: '%s'\n", cfg.urls[i]);
            return 2;
        }
    }
    if (!n_given)
        cfg.n = cfg.nurls;
    if (cfg.mode == MODE_SYNC) {
        if (cfg.c_given && cfg.c != 1) {
            fprintf(stderr, "eddy-fetch: --mode sync runs one request at a time (-c 1)\n");
            return 2;
        }
        cfg.c = 1;
    } else if (!cfg.c_given) {
        unsigned long cap = cfg.mode == MODE_THREADS ? 1000 : 1000000;
        cfg.c = cfg.n < cap ? cfg.n : cap;
    }
    if (cfg.c > cfg.n)
        cfg.c = cfg.n;
    if (cfg.mode == MODE_THREADS && cfg.c > MAX_THREADS) {
        fprintf(stderr, "eddy-fetch: --mode threads runs at most %d threads\n", MAX_THREADS);
        return 2;
    }
    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);

    struct tally *t = calloc(1, sizeof(*t));
    if (!t)
        return 1;
    eddy_metrics_init(&t->m);
    int64_t t0 = eddy_clock_ns();
    int rc;
    if (cfg.mode == MODE_ASYNC) {
        intptr_t result = 0;
        rc = eddy_run(async_main, t, NULL, &result);
        if (rc == 0)
            rc = (int)result;
    } else {
        rc = run_blocking(cfg.c, t);
    }
    int64_t end = eddy_clock_ns();
    int64_t last = atomic_load(&last_done_ns);
    double wall = (double)(end - t0) / 1e9;
    double seconds = last > t0 ? (double)(last - t0) / 1e9 : wall;
    if (rc < 0)
        fprintf(stderr, "eddy-fetch: %s\n", eddy_strerror(rc));
    report(t, seconds, wall);
    struct eddy_metrics_snapshot s;
    eddy_metrics_snapshot(&t->m, &s);
    int status = rc < 0 || s.errors > 0 || s.calls < cfg.n ? 1 : 0;
    free(t);
    free(cfg.urls);
    free(url_text);
    free(cfg.data_owned);
    return status;
}

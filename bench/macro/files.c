/*
 * bench/macro/files.c: the C side of the `files` suite of bench/run: file
 * read throughput of plain blocking reads (impl sync) and of eddy's files on
 * the offload pool (impl eddy-async). bench/macro/files.py is the Python
 * side (python, aiofiles); bench/run creates the files, warms the page cache,
 * runs every impl in turn and writes results/files.csv.
 *
 *   files --impl sync|eddy-async --case big --path FILE --chunk BYTES
 *   files --impl sync|eddy-async --case small --path DIR --files N
 *
 * big: one file read front to back with reads of --chunk bytes into one
 *   buffer (touched beforehand, so no impl pays its page faults): read(2) in
 *   a loop, or eddy_file_read in a loop in one task (one offload job per
 *   chunk of up to EDDY_FILE_CHUNK_BYTES).
 * small: DIR/0 .. DIR/N-1 read whole: sync opens, reads to the end and
 *   closes each in turn; eddy-async spawns one task per file, each calling
 *   eddy_file_read_all (one offload job per file), and joins them all.
 *
 * Every impl does the work twice in one process and times the second pass
 * (CLOCK_MONOTONIC around it): the first warms what a running program has
 * warm (for eddy-async: the loop, the worker threads, and the 1,000 task
 * stacks in the loop's stack cache, which is sized for them: a service
 * with 1,000 concurrent tasks sizes it so; bench/macro/files.py does the
 * same for Python). Prints one line, `bytes=B seconds=S`, B being the bytes
 * of the timed pass. Exits non-zero on any error or when the bytes read
 * differ from the files' sizes. Refuses to run from a build without NDEBUG
 * (STYLE.md: benchmarks need release flags).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <eddy/eddy.h>

struct opts {
    const char *impl;
    const char *kase;
    const char *path;
    size_t chunk;
    size_t files;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "files: %s: %s\n", what, strerror(err));
    exit(1);
}

/* ---- big: one file ----------------------------------------------------------- */

static long long big_sync(const struct opts *o, char *buf)
{
    int fd = open(o->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die(o->path, errno);
    long long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, o->chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("read", errno);
        }
        if (n == 0)
            break;
        total += n;
    }
    close(fd);
    return total;
}

struct big_eddy {
    const struct opts *o;
    char *buf;
    long long total;
    double seconds;
};

static int big_eddy_pass(struct big_eddy *b)
{
    struct eddy_file *f;
    int rc = eddy_file_open(b->o->path, O_RDONLY, 0, &f);
    if (rc < 0)
        return rc;
    b->total = 0;
    ssize_t n;
    while ((n = eddy_file_read(f, b->buf, b->o->chunk)) > 0)
        b->total += n;
    rc = eddy_file_close(f);
    return n < 0 ? (int)n : rc;
}

static intptr_t big_eddy_main(void *arg)
{
    struct big_eddy *b = arg;
    int rc = big_eddy_pass(b);
    if (rc < 0)
        return rc;
    double t0 = now_s();
    rc = big_eddy_pass(b);
    b->seconds = now_s() - t0;
    return rc;
}

/* ---- small: many files -------------------------------------------------------- */

static long long small_sync(const struct opts *o)
{
    char path[4096], buf[65536];
    long long total = 0;
    for (size_t i = 0; i < o->files; i++) {
        snprintf(path, sizeof(path), "%s/%zu", o->path, i);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            die(path, errno);
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            total += n;
        if (n < 0)
            die("read", errno);
        close(fd);
    }
    return total;
}

struct small_task {
    const struct opts *o;
    size_t i;
    size_t len;
    int rc;
};

static intptr_t small_read(void *arg)
{
    struct small_task *t = arg;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%zu", t->o->path, t->i);
    char *data;
    t->rc = eddy_file_read_all(path, 0, &data, &t->len);
    if (t->rc == 0)
        eddy_free(data);
    return 0;
}

struct small_eddy {
    const struct opts *o;
    struct small_task *tasks;
    long long total;
    double seconds;
};

/* One task per file, all at once, then joined in order. */
static int small_eddy_pass(struct small_eddy *s)
{
    size_t n = s->o->files;
    s->total = 0;
    struct eddy_task **t = calloc(n, sizeof(*t));
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        s->tasks[i] = (struct small_task){s->o, i, 0, 1};
        int rc = eddy_task_spawn(small_read, &s->tasks[i], NULL, &t[i]);
        if (rc < 0)
            return rc;
    }
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        eddy_task_join(t[i], NULL);
        if (s->tasks[i].rc < 0 && !err)
            err = s->tasks[i].rc;
        s->total += (long long)s->tasks[i].len;
    }
    free(t);
    return err;
}

static intptr_t small_eddy_main(void *arg)
{
    struct small_eddy *s = arg;
    int rc = small_eddy_pass(s);
    if (rc < 0)
        return rc;
    double t0 = now_s();
    rc = small_eddy_pass(s);
    s->seconds = now_s() - t0;
    return rc;
}

/* ---- driver ------------------------------------------------------------------- */

static long long expected_bytes(const struct opts *o)
{
    struct stat st;
    if (strcmp(o->kase, "big") == 0) {
        if (stat(o->path, &st) < 0)
            die(o->path, errno);
        return (long long)st.st_size;
    }
    long long total = 0;
    char path[4096];
    for (size_t i = 0; i < o->files; i++) {
        snprintf(path, sizeof(path), "%s/%zu", o->path, i);
        if (stat(path, &st) < 0)
            die(path, errno);
        total += (long long)st.st_size;
    }
    return total;
}

static void usage(void)
{
    fprintf(stderr, "usage: files --impl sync|eddy-async --case big|small --path P "
                    "[--chunk BYTES] [--files N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
#ifndef NDEBUG
    fprintf(stderr, "files: built without NDEBUG; benchmarks need the release build\n");
    return 2;
#endif
    struct opts o = {.chunk = 1 << 20, .files = 1000};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--impl") == 0)
            o.impl = argv[i + 1];
        else if (strcmp(argv[i], "--case") == 0)
            o.kase = argv[i + 1];
        else if (strcmp(argv[i], "--path") == 0)
            o.path = argv[i + 1];
        else if (strcmp(argv[i], "--chunk") == 0)
            o.chunk = strtoull(argv[i + 1], NULL, 0);
        else if (strcmp(argv[i], "--files") == 0)
            o.files = strtoull(argv[i + 1], NULL, 0);
        else
            usage();
    }
    if (!o.impl || !o.kase || !o.path || o.chunk == 0 || o.files == 0)
        usage();
    bool eddy = strcmp(o.impl, "eddy-async") == 0;
    if (!eddy && strcmp(o.impl, "sync") != 0)
        usage();
    bool big = strcmp(o.kase, "big") == 0;
    if (!big && strcmp(o.kase, "small") != 0)
        usage();
    long long want = expected_bytes(&o);

    char *buf = NULL;
    struct small_task *tasks = NULL;
    if (big) {
        buf = malloc(o.chunk);
        if (!buf)
            die("malloc", ENOMEM);
        memset(buf, 1, o.chunk);
    } else if (eddy) {
        tasks = calloc(o.files, sizeof(*tasks));
        if (!tasks)
            die("calloc", ENOMEM);
    }

    long long total = 0;
    intptr_t result = 0;
    int rc = 0;
    double seconds = 0, t0;
    /* Room in the stack cache for every task of the first pass. */
    struct eddy_loop_opts loop_opts = {.stack_cache_bytes =
                                           (o.files + 64) * EDDY_STACK_DEFAULT_BYTES};
    if (big && !eddy) {
        big_sync(&o, buf);
        t0 = now_s();
        total = big_sync(&o, buf);
        seconds = now_s() - t0;
    } else if (big) {
        struct big_eddy b = {&o, buf, 0, 0};
        rc = eddy_run(big_eddy_main, &b, NULL, &result);
        total = b.total;
        seconds = b.seconds;
    } else if (!eddy) {
        small_sync(&o);
        t0 = now_s();
        total = small_sync(&o);
        seconds = now_s() - t0;
    } else {
        struct small_eddy s = {&o, tasks, 0, 0};
        rc = eddy_run(small_eddy_main, &s, &loop_opts, &result);
        total = s.total;
        seconds = s.seconds;
    }
    if (rc < 0 || result < 0) {
        fprintf(stderr, "files: %s\n", eddy_strerror(rc < 0 ? rc : (int)result));
        return 1;
    }
    if (total != want) {
        fprintf(stderr, "files: read %lld bytes, the files hold %lld\n", total, want);
        return 1;
    }
    free(buf);
    free(tasks);
    printf("bytes=%lld seconds=%.6f\n", total, seconds);
    return 0;
}

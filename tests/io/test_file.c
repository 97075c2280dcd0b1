/*
 * tests/io/test_file.c: files through the offload pool (io/file.c).
 *
 * Covers files of 0 bytes, 1 byte and 1 GiB (smaller under Valgrind, skipped
 * when the disk lacks room), positions and read-ahead, 1,000 small files read
 * by 1,000 tasks at once, calls running side by side on the pool (openers
 * blocked on FIFOs are counted inside openat), the kernel's error codes
 * (ENOENT, EACCES as an unprivileged user, EISDIR, ENOTDIR, EEXIST,
 * ENOTEMPTY, EFBIG, EBADF), atomic writes, append, stat, rename, mkdir,
 * rmdir, readdir (against `ls`), the line iterator (against python3), and
 * cancellation: of an open in flight, of reads and whole-file reads in the
 * middle (the caller's buffer is never written after the call returned), of
 * a queued job, of an atomic write (no temporary file stays), and a close
 * while another task reads. Leaks are checked by counting /proc/self/fd and
 * by `make asan` / `make valgrind`.
 *
 * Every test works in its own directory under /tmp, removed afterwards.
 */
#include <dirent.h>
#include <ftw.h>
#include <grp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "tests/reactor/reactor_test.h"

/* ---- fixtures ------------------------------------------------------------------ */

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/eddy-file-XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_dir(void)
{
    if (dir[0]) {
        /* Make everything removable again (the EACCES tests chmod). */
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "chmod -R u+rwx %s 2>/dev/null", dir);
        if (system(cmd) != 0) {
            /* Nothing to restore: the tree is removed as far as it can be. */
        }
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

#define FILE_TEST(name)                                                                            \
    Test(file, name, .init = make_dir, .fini = remove_dir, .timeout = EDDY_TEST_TIMEOUT_S)

/* dir/name in a rotating set of static buffers. */
static const char *at(const char *name)
{
    static char bufs[8][256];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
    return b;
}

/* Plain blocking helpers for setting up and checking, independent of eddy. */
static void put_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *)data + done, len - done);
        cr_assert_gt(n, 0, "write %s: %s", path, strerror(errno));
        done += (size_t)n;
    }
    cr_assert_eq(close(fd), 0);
}

static char *get_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    char *p = malloc((size_t)st.st_size + 1);
    size_t done = 0;
    ssize_t n;
    while ((n = read(fd, p + done, (size_t)st.st_size - done)) > 0)
        done += (size_t)n;
    close(fd);
    p[done] = 0;
    *len = done;
    return p;
}

/* Open fds of this process (the directory stream's own fd not counted). */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* Waits (in a task) until count_fds() == want; false after 10 s. */
static bool wait_fds(int want)
{
    for (int i = 0; i < 10000; i++) {
        if (count_fds() == want)
            return true;
        eddy_sleep_ms(1);
    }
    return false;
}

/* Threads of this process inside openat(2) now. */
static int threads_in_openat(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/proc/self/task/%s/syscall", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        long nr = -1;
        if (fscanf(f, "%ld", &nr) == 1 && nr == SYS_openat)
            n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

/* Waits (in a task) until n threads are in openat; false after 10 s. */
static bool wait_openers(int n)
{
    for (int i = 0; i < 10000; i++) {
        if (threads_in_openat() >= n)
            return true;
        eddy_sleep_ms(1);
    }
    return false;
}

/* Drops path's pages from the page cache (they are clean after fdatasync),
 * so that the next reads go to the disk and take a while. */
static void drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

/* A file of len bytes where each 8-byte word holds its own offset (the
 * last word cut short), written with plain write(2). */
static void put_pattern(const char *path, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0);
    size_t block = 1 << 20;
    uint64_t *w = malloc(block);
    for (size_t off = 0; off < len; off += block) {
        for (size_t i = 0; i < block / 8; i++)
            w[i] = off + i * 8;
        size_t n = len - off < block ? len - off : block;
        cr_assert_eq(write(fd, w, n), (ssize_t)n);
    }
    free(w);
    cr_assert_eq(close(fd), 0);
}

/* Whether buf holds the pattern of the file bytes at [off, off + len). */
static bool is_pattern(const char *buf, size_t len, uint64_t off)
{
    for (size_t i = 0; i < len;) {
        uint64_t word_off = (off + i) & ~(uint64_t)7;
        uint64_t w = word_off;
        size_t in = (size_t)(off + i - word_off);
        size_t n = 8 - in < len - i ? 8 - in : len - i;
        if (memcmp(buf + i, (const char *)&w + in, n) != 0)
            return false;
        i += n;
    }
    return true;
}

/* Runs a shell command and returns its whole stdout (malloc'd). */
static char *sh(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    size_t cap = 4096, len = 0, n;
    char *out = malloc(cap);
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 64)
            out = realloc(out, cap *= 2);
    }
    out[len] = 0;
    cr_assert_eq(pclose(p), 0, "%s failed", cmd);
    return out;
}

/* ---- handles: positions, read-ahead -------------------------------------------- */

static intptr_t roundtrip(void *arg)
{
    (void)arg;
    struct eddy_file *f;
    cr_assert_eq(eddy_file_open(at("a"), O_RDWR | O_CREAT | O_TRUNC, 0644, &f), 0);
    cr_assert_eq(eddy_file_write(f, "hello world\n", 12), 12);
    cr_assert_eq(eddy_file_tell(f), 12);
    cr_assert_eq(eddy_file_seek(f, 0, SEEK_SET), 0);
    char buf[32] = {0};
    cr_assert_eq(eddy_file_read(f, buf, 5), 5);
    cr_assert_arr_eq(buf, "hello", 5);
    cr_assert_eq(eddy_file_tell(f), 5);
    cr_assert_eq(eddy_file_seek(f, 1, SEEK_CUR), 6);
    cr_assert_eq(eddy_file_read(f, buf, sizeof(buf)), 6);
    cr_assert_arr_eq(buf, "world\n", 6);
    cr_assert_eq(eddy_file_read(f, buf, sizeof(buf)), 0, "end of file");
    cr_assert_eq(eddy_file_tell(f), 12);
    /* pread and pwrite leave the position alone. */
    cr_assert_eq(eddy_file_pread(f, buf, 5, 6), 5);
    cr_assert_arr_eq(buf, "world", 5);
    cr_assert_eq(eddy_file_pwrite(f, "HELLO", 5, 0), 5);
    cr_assert_eq(eddy_file_tell(f), 12);
    cr_assert_eq(eddy_file_seek(f, -3, SEEK_END), 9);
    cr_assert_eq(eddy_file_read(f, buf, 3), 3);
    cr_assert_arr_eq(buf, "ld\n", 3);
    /* Writing past the end leaves a hole of zeros. */
    cr_assert_eq(eddy_file_pwrite(f, "!", 1, 15), 1);
    cr_assert_eq(eddy_file_read(f, buf, sizeof(buf)), 4);
    cr_assert_arr_eq(buf, "\0\0\0!", 4);
    struct eddy_file_stat st;
    cr_assert_eq(eddy_file_fstat(f, &st), 0);
    cr_assert_eq(st.size_bytes, 16);
    cr_assert_eq(eddy_file_fsync(f), 0);
    cr_assert_eq(eddy_file_fdatasync(f), 0);
    cr_assert_eq(eddy_file_close(f), 0);
    return 0;
}

FILE_TEST(write_read_seek_and_pread_keep_the_position_straight)
{
    int fds = count_fds();
    rt_run(roundtrip, NULL);
    size_t len;
    char *p = get_file(at("a"), &len);
    cr_expect_eq(len, 16);
    cr_expect_arr_eq(p, "HELLO world\n\0\0\0!", 16);
    free(p);
    cr_expect_eq(count_fds(), fds, "an fd leaked");
}

static intptr_t empty_file(void *arg)
{
    (void)arg;
    char *data = (char *)1;
    size_t len = 99;
    cr_assert_eq(eddy_file_read_all(at("empty"), 0, &data, &len), 0);
    cr_assert_not_null(data);
    cr_assert_eq(len, 0);
    cr_assert_eq(data[0], 0, "the buffer is NUL-terminated");
    eddy_free(data);
    struct eddy_file *f;
    cr_assert_eq(eddy_file_open(at("empty"), O_RDONLY, 0, &f), 0);
    char buf[16];
    cr_assert_eq(eddy_file_read(f, buf, sizeof(buf)), 0);
    cr_assert_eq(eddy_file_read_line(f, buf, sizeof(buf)), 0);
    cr_assert_eq(eddy_file_read(f, buf, 0), 0);
    struct eddy_file_stat st;
    cr_assert_eq(eddy_file_fstat(f, &st), 0);
    cr_assert_eq(st.size_bytes, 0);
    cr_assert_eq(st.type, EDDY_FILE_TYPE_REGULAR);
    cr_assert_eq(eddy_file_close(f), 0);
    /* Writing nothing creates an empty file. */
    cr_assert_eq(eddy_file_write_all(at("empty2"), NULL, 0, NULL), 0);
    cr_assert_eq(eddy_file_stat(at("empty2"), &st), 0);
    cr_assert_eq(st.size_bytes, 0);
    return 0;
}

FILE_TEST(empty_file_reads_as_zero_bytes)
{
    put_file(at("empty"), "", 0);
    rt_run(empty_file, NULL);
}

static intptr_t one_byte_file(void *arg)
{
    (void)arg;
    char *data;
    size_t len;
    cr_assert_eq(eddy_file_read_all(at("one"), 0, &data, &len), 0);
    cr_assert_eq(len, 1);
    cr_assert_str_eq(data, "x");
    eddy_free(data);
    struct eddy_file *f;
    cr_assert_eq(eddy_file_open(at("one"), O_RDONLY, 0, &f), 0);
    char line[8];
    cr_assert_eq(eddy_file_read_line(f, line, sizeof(line)), 1, "a last line without newline");
    cr_assert_str_eq(line, "x");
    cr_assert_eq(eddy_file_read_line(f, line, sizeof(line)), 0);
    cr_assert_eq(eddy_file_pread(f, line, sizeof(line), 0), 1);
    cr_assert_eq(eddy_file_pread(f, line, sizeof(line), 1), 0);
    cr_assert_eq(eddy_file_pread(f, line, sizeof(line), 1000), 0, "past the end");
    cr_assert_eq(eddy_file_close(f), 0);
    return 0;
}

FILE_TEST(one_byte_file_reads_as_one_byte)
{
    put_file(at("one"), "x", 1);
    rt_run(one_byte_file, NULL);
}

/* ---- one big file ---------------------------------------------------------------- */

struct big {
    size_t size;
};

static intptr_t big_file(void *arg)
{
    struct big *b = arg;
    /* Written through eddy in 4 MiB calls (4 chunks each)... */
    size_t piece = 4 << 20;
    uint64_t *w = malloc(piece);
    struct eddy_file *f;
    cr_assert_eq(eddy_file_open(at("big"), O_WRONLY | O_CREAT | O_TRUNC, 0644, &f), 0);
    for (size_t off = 0; off < b->size; off += piece) {
        for (size_t i = 0; i < piece / 8; i++)
            w[i] = off + i * 8;
        size_t n = b->size - off < piece ? b->size - off : piece;
        cr_assert_eq(eddy_file_write(f, w, n), (ssize_t)n);
    }
    cr_assert_eq(eddy_file_tell(f), (off_t)b->size);
    cr_assert_eq(eddy_file_close(f), 0);
    struct eddy_file_stat st;
    cr_assert_eq(eddy_file_stat(at("big"), &st), 0);
    cr_assert_eq(st.size_bytes, b->size);

    /* ...read back in 8 MiB calls... */
    size_t rd = 8 << 20;
    char *buf = malloc(rd);
    cr_assert_eq(eddy_file_open(at("big"), O_RDONLY, 0, &f), 0);
    size_t total = 0;
    ssize_t n;
    while ((n = eddy_file_read(f, buf, rd)) > 0) {
        cr_assert(is_pattern(buf, (size_t)n, total), "bad data in [%zu, %zu)", total,
                  total + (size_t)n);
        total += (size_t)n;
    }
    cr_assert_eq(n, 0, "read: %s", eddy_strerror((int)n));
    cr_assert_eq(total, b->size);
    cr_assert_eq(eddy_file_close(f), 0);
    free(buf);
    free(w);

    /* ...and whole. */
    char *data;
    size_t len;
    cr_assert_eq(eddy_file_read_all(at("big"), 0, &data, &len), 0);
    cr_assert_eq(len, b->size);
    cr_assert(is_pattern(data, len, 0), "read_all returned other bytes");
    cr_assert_eq(data[len], 0);
    eddy_free(data);
    cr_assert_eq(eddy_file_read_all(at("big"), b->size - 1, &data, &len), -EFBIG);
    cr_assert_null(data);
    return 0;
}

FILE_TEST(one_gib_file_round_trips_in_chunks)
{
    struct big b = {eddy_test_under_valgrind() ? (size_t)8 << 20 : (size_t)1 << 30};
    b.size += 3; /* not a multiple of the chunk or the word */
    struct statvfs vfs;
    cr_assert_eq(statvfs(dir, &vfs), 0);
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (avail < b.size + ((uint64_t)512 << 20))
        cr_skip_test("%s has %llu MiB free; the test needs %zu MiB plus 512 MiB of room", dir,
                     (unsigned long long)(avail >> 20), b.size >> 20);
    int fds = count_fds();
    rt_run(big_file, &b);
    cr_expect_eq(count_fds(), fds, "an fd leaked");
}

/* ---- many files, many tasks ------------------------------------------------------- */

#define SMALL_FILES 1000

static void small_content(size_t i, char *buf, size_t *len)
{
    /* 4 KiB give or take, different for each file. */
    size_t n = 4000 + i % 200;
    for (size_t k = 0; k < n; k++)
        buf[k] = (char)('a' + (i * 7 + k) % 26);
    *len = n;
}

struct small {
    size_t i;
    int rc;
};

static intptr_t read_small(void *arg)
{
    struct small *s = arg;
    char name[32], want[4200];
    size_t want_len;
    snprintf(name, sizeof(name), "s%zu", s->i);
    small_content(s->i, want, &want_len);
    char *data = NULL;
    size_t len = 0;
    if (s->i % 2 == 0) {
        s->rc = eddy_file_read_all(at(name), 0, &data, &len);
    } else {
        /* The other half opens, reads and closes. */
        struct eddy_file *f;
        s->rc = eddy_file_open(at(name), O_RDONLY, 0, &f);
        if (s->rc == 0) {
            data = malloc(8192);
            ssize_t n = eddy_file_read(f, data, 8192);
            s->rc = n < 0 ? (int)n : eddy_file_close(f);
            len = n < 0 ? 0 : (size_t)n;
        }
    }
    if (s->rc == 0 && (len != want_len || memcmp(data, want, len) != 0))
        s->rc = 1; /* wrong content */
    if (s->i % 2 == 0)
        eddy_free(data);
    else
        free(data);
    return 0;
}

static intptr_t read_smalls(void *arg)
{
    size_t n = *(size_t *)arg;
    struct small *s = calloc(n, sizeof(*s));
    struct eddy_task **t = calloc(n, sizeof(*t));
    for (size_t i = 0; i < n; i++) {
        s[i].i = i;
        s[i].rc = 2; /* never ran */
        cr_assert_eq(eddy_task_spawn(read_small, &s[i], NULL, &t[i]), 0);
    }
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(eddy_task_join(t[i], NULL), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(s[i].rc, 0, "file %zu: %d (%s)", i, s[i].rc, eddy_strerror(s[i].rc));
    free(s);
    free(t);
    return 0;
}

FILE_TEST(thousand_small_files_are_read_by_thousand_tasks_at_once)
{
    size_t n = rt_scale(SMALL_FILES, 100);
    for (size_t i = 0; i < n; i++) {
        char name[32], buf[4200];
        size_t len;
        snprintf(name, sizeof(name), "s%zu", i);
        small_content(i, buf, &len);
        put_file(at(name), buf, len);
    }
    int fds = count_fds();
    rt_run(read_smalls, &n);
    cr_expect_eq(count_fds(), fds, "an fd leaked");
}

/* Openers of FIFOs block inside open(2) until a writer comes: each holds a
 * worker, so counting threads in openat shows how many run at once. */
struct opener {
    const char *path;
    int rc;
    struct eddy_file *f;
};

static intptr_t open_fifo(void *arg)
{
    struct opener *o = arg;
    o->rc = eddy_file_open(o->path, O_RDONLY, 0, &o->f);
    return 0;
}

static intptr_t four_openers(void *arg)
{
    (void)arg;
    struct opener o[4];
    struct eddy_task *t[4];
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "fifo%d", i);
        o[i].path = strdup(at(name));
        cr_assert_eq(mkfifo(o[i].path, 0600), 0);
        cr_assert_eq(eddy_task_spawn(open_fifo, &o[i], NULL, &t[i]), 0);
    }
    bool all = wait_openers(4);
    int writers[4];
    for (int i = 0; i < 4; i++) {
        /* With a reader inside open, a non-blocking writer open succeeds. */
        writers[i] = -1;
        for (int k = 0; k < 10000 && writers[i] < 0; k++) {
            writers[i] = open(o[i].path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
            if (writers[i] < 0)
                eddy_sleep_ms(1);
        }
    }
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(eddy_task_join(t[i], NULL), 0);
        cr_assert_eq(o[i].rc, 0, "open %d: %s", i, eddy_strerror(o[i].rc));
        cr_assert_eq(eddy_file_close(o[i].f), 0);
        close(writers[i]);
        free((void *)o[i].path);
    }
    cr_assert(all, "the four opens never ran at the same time");
    return 0;
}

FILE_TEST(four_blocked_calls_run_side_by_side_on_the_pool)
{
    cr_assert_eq(eddy_offload_threads(), 4);
    rt_run(four_openers, NULL);
}

/* ---- errors ------------------------------------------------------------------------ */

static intptr_t missing(void *arg)
{
    (void)arg;
    struct eddy_file *f = (struct eddy_file *)1;
    cr_expect_eq(eddy_file_open(at("nope"), O_RDONLY, 0, &f), -ENOENT);
    cr_expect_null(f);
    char *data = (char *)1;
    size_t len = 5;
    cr_expect_eq(eddy_file_read_all(at("nope"), 0, &data, &len), -ENOENT);
    cr_expect_null(data);
    cr_expect_eq(len, 0);
    struct eddy_file_stat st;
    cr_expect_eq(eddy_file_stat(at("nope"), &st), -ENOENT);
    cr_expect_eq(eddy_file_lstat(at("nope"), &st), -ENOENT);
    cr_expect_eq(eddy_file_unlink(at("nope")), -ENOENT);
    cr_expect_eq(eddy_file_rmdir(at("nope")), -ENOENT);
    cr_expect_eq(eddy_file_rename(at("nope"), at("other")), -ENOENT);
    cr_expect_eq(eddy_file_mkdir(at("nope/sub"), 0755), -ENOENT);
    char **names = (char **)1;
    size_t count = 3;
    cr_expect_eq(eddy_file_readdir(at("nope"), &names, &count), -ENOENT);
    cr_expect_null(names);
    cr_expect_eq(count, 0);
    cr_expect_eq(eddy_file_write_all(at("nope/x"), "x", 1, NULL), -ENOENT);
    struct eddy_file_write_opts atomic = {.atomic = true};
    cr_expect_eq(eddy_file_write_all(at("nope/x"), "x", 1, &atomic), -ENOENT);
    cr_expect_eq(eddy_file_append(at("nope/x"), "x", 1), -ENOENT);
    return 0;
}

FILE_TEST(missing_paths_give_enoent)
{
    int fds = count_fds();
    rt_run(missing, NULL);
    cr_expect_eq(count_fds(), fds);
}

static intptr_t kernel_errors(void *arg)
{
    (void)arg;
    char *data;
    size_t len;
    struct eddy_file *f;
    cr_expect_eq(eddy_file_read_all(dir, 0, &data, &len), -EISDIR);
    cr_expect_eq(eddy_file_open(dir, O_WRONLY, 0, &f), -EISDIR);
    cr_expect_eq(eddy_file_write_all(dir, "x", 1, NULL), -EISDIR);
    char **names;
    size_t count;
    cr_expect_eq(eddy_file_readdir(at("file"), &names, &count), -ENOTDIR);
    cr_expect_eq(eddy_file_open(at("file/x"), O_RDONLY, 0, &f), -ENOTDIR);
    cr_expect_eq(eddy_file_mkdir(at("d"), 0755), 0);
    cr_expect_eq(eddy_file_mkdir(at("d"), 0755), -EEXIST);
    cr_expect_eq(eddy_file_write_all(at("d/inner"), "x", 1, NULL), 0);
    cr_expect_eq(eddy_file_rmdir(at("d")), -ENOTEMPTY);
    cr_expect_eq(eddy_file_rmdir(at("file")), -ENOTDIR);
    cr_expect_eq(eddy_file_unlink(at("d")), -EISDIR);
    cr_expect_eq(eddy_file_open(at("file"), O_WRONLY | O_CREAT | O_EXCL, 0644, &f), -EEXIST);
    cr_expect_eq(eddy_file_read_all(at("file"), 3, &data, &len), -EFBIG);
    cr_expect_eq(eddy_file_read_all(at("file"), 4, &data, &len), 0, "exactly max_bytes");
    eddy_free(data);

    /* A handle used against its open mode. */
    char buf[8];
    cr_assert_eq(eddy_file_open(at("file"), O_RDONLY, 0, &f), 0);
    cr_expect_eq(eddy_file_write(f, "x", 1), -EBADF);
    cr_expect_eq(eddy_file_tell(f), 0, "a failed write leaves the position");
    cr_expect_eq(eddy_file_seek(f, -1, SEEK_SET), -EINVAL);
    cr_expect_eq(eddy_file_seek(f, 0, 42), -EINVAL);
    cr_expect_eq(eddy_file_read_line(f, buf, 1), -EINVAL);
    cr_expect_eq(eddy_file_pread(f, buf, 1, -1), -EINVAL);
    cr_expect_eq(eddy_file_read(f, NULL, 1), -EINVAL);
    cr_expect_eq(eddy_file_close(f), 0);
    cr_assert_eq(eddy_file_open(at("file"), O_WRONLY, 0, &f), 0);
    cr_expect_eq(eddy_file_read(f, buf, 1), -EBADF);
    cr_expect_eq(eddy_file_close(f), 0);

    /* A FIFO is not seekable. */
    cr_assert_eq(mkfifo(at("fifo"), 0600), 0);
    cr_assert_eq(eddy_file_open(at("fifo"), O_RDWR, 0, &f), 0);
    cr_expect_eq(eddy_file_read(f, buf, 1), -ESPIPE);
    cr_expect_eq(eddy_file_close(f), 0);

    /* NULL arguments. */
    cr_expect_eq(eddy_file_open(NULL, O_RDONLY, 0, &f), -EINVAL);
    cr_expect_eq(eddy_file_open(at("file"), O_RDONLY, 0, NULL), -EINVAL);
    cr_expect_eq(eddy_file_close(NULL), -EINVAL);
    cr_expect_eq(eddy_file_read(NULL, buf, 1), -EINVAL);
    cr_expect_eq(eddy_file_read_all(NULL, 0, &data, &len), -EINVAL);
    cr_expect_eq(eddy_file_stat(at("file"), NULL), -EINVAL);
    cr_expect_eq(eddy_file_rename(at("file"), NULL), -EINVAL);
    cr_expect_eq(eddy_file_readdir(dir, NULL, &count), -EINVAL);
    return 0;
}

FILE_TEST(kernel_errors_come_back_as_negative_errno)
{
    put_file(at("file"), "abcd", 4);
    int fds = count_fds();
    rt_run(kernel_errors, NULL);
    cr_expect_eq(count_fds(), fds);
}

FILE_TEST(calls_outside_a_task_are_refused_without_leaks)
{
    put_file(at("file"), "abcd", 4);
    int fds = count_fds();
    struct eddy_file_stat st;
    cr_expect_eq(eddy_file_stat(at("file"), &st), -EINVAL);
    char *data;
    size_t len;
    cr_expect_eq(eddy_file_read_all(at("file"), 0, &data, &len), -EINVAL);
    struct eddy_file *f;
    cr_expect_eq(eddy_file_open(at("file"), O_RDONLY, 0, &f), -EINVAL);
    cr_expect_eq(count_fds(), fds);
}

/* EACCES needs a caller the permission bits apply to: root bypasses them, so
 * the check runs in a child that drops to nobody first. */
#define CHILD_SKIP 77

static intptr_t denied(void *arg)
{
    (void)arg;
    struct eddy_file *f;
    char *data;
    size_t len;
    char **names;
    size_t count;
    EDDY_CHILD_CHECK(eddy_file_open(at("secret"), O_RDONLY, 0, &f) == -EACCES);
    EDDY_CHILD_CHECK(eddy_file_read_all(at("secret"), 0, &data, &len) == -EACCES);
    EDDY_CHILD_CHECK(eddy_file_write_all(at("ro/new"), "x", 1, NULL) == -EACCES);
    struct eddy_file_write_opts atomic = {.atomic = true};
    EDDY_CHILD_CHECK(eddy_file_write_all(at("ro/new"), "x", 1, &atomic) == -EACCES);
    EDDY_CHILD_CHECK(eddy_file_readdir(at("closed"), &names, &count) == -EACCES);
    EDDY_CHILD_CHECK(eddy_file_mkdir(at("ro/sub"), 0755) == -EACCES);
    struct eddy_file_stat st;
    EDDY_CHILD_CHECK(eddy_file_stat(at("closed/x"), &st) == -EACCES);
    return 0;
}

static void denied_child(void *arg)
{
    (void)arg;
    if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0))
        _exit(CHILD_SKIP);
    intptr_t result = -1;
    EDDY_CHILD_CHECK(eddy_run(denied, NULL, NULL, &result) == 0 && result == 0);
}

FILE_TEST(permission_denied_gives_eacces)
{
    put_file(at("secret"), "s", 1);
    cr_assert_eq(chmod(at("secret"), 0), 0);
    cr_assert_eq(mkdir(at("ro"), 0555), 0);
    cr_assert_eq(mkdir(at("closed"), 0), 0);
    cr_assert_eq(chmod(dir, 0755), 0);
    struct eddy_test_child c;
    cr_assert_eq(eddy_test_fork(denied_child, NULL, &c), 0);
    if (c.exit_status == CHILD_SKIP)
        cr_skip_test("running as root and cannot drop to uid 65534 to see permission bits");
    eddy_assert_child_ok(c);
}

/* ---- whole files, paths, directories ---------------------------------------------- */

static intptr_t whole_files(void *arg)
{
    (void)arg;
    cr_assert_eq(eddy_file_write_all(at("w"), "old content", 11, NULL), 0);
    struct eddy_file_write_opts o = {.mode = 0600, .atomic = true, .sync = true};
    cr_assert_eq(eddy_file_write_all(at("w"), "new", 3, &o), 0);
    char *data;
    size_t len;
    cr_assert_eq(eddy_file_read_all(at("w"), 0, &data, &len), 0);
    cr_assert_eq(len, 3);
    cr_assert_str_eq(data, "new");
    eddy_free(data);
    struct eddy_file_stat st;
    cr_assert_eq(eddy_file_stat(at("w"), &st), 0);
    cr_assert_eq(st.mode, 0600 & ~(uint32_t)0022 & 0600);
    cr_assert_eq(eddy_file_append(at("log"), "one\n", 4), 0);
    cr_assert_eq(eddy_file_append(at("log"), "two\n", 4), 0);
    /* A handle in append mode writes at the end whatever its position. */
    struct eddy_file *f;
    cr_assert_eq(eddy_file_open(at("log"), O_RDWR | O_APPEND, 0, &f), 0);
    cr_assert_eq(eddy_file_write(f, "three\n", 6), 6);
    cr_assert_eq(eddy_file_tell(f), 14);
    cr_assert_eq(eddy_file_pwrite(f, "four\n", 5, 0), 5);
    cr_assert_eq(eddy_file_close(f), 0);
    return 0;
}

FILE_TEST(write_all_replaces_atomically_and_append_adds_at_the_end)
{
    umask(022);
    rt_run(whole_files, NULL);
    /* cat reads what eddy wrote. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cat %s", at("log"));
    char *out = sh(cmd);
    cr_expect_str_eq(out, "one\ntwo\nthree\nfour\n");
    free(out);
    /* No temporary file is left beside the atomically written one. */
    snprintf(cmd, sizeof(cmd), "LC_ALL=C ls -A %s", dir);
    out = sh(cmd);
    cr_expect_str_eq(out, "log\nw\n");
    free(out);
}

static intptr_t stats(void *arg)
{
    (void)arg;
    struct eddy_file_stat st;
    cr_assert_eq(eddy_file_stat(at("f"), &st), 0);
    cr_expect_eq(st.size_bytes, 5);
    cr_expect_eq(st.mode, 0640);
    cr_expect_eq(st.type, EDDY_FILE_TYPE_REGULAR);
    cr_expect_eq(st.mtime_ns, INT64_C(1700000000) * EDDY_NS_PER_SEC + 123456789);
    cr_assert_eq(eddy_file_stat(dir, &st), 0);
    cr_expect_eq(st.type, EDDY_FILE_TYPE_DIRECTORY);
    cr_assert_eq(eddy_file_stat(at("link"), &st), 0);
    cr_expect_eq(st.type, EDDY_FILE_TYPE_REGULAR, "stat follows the link");
    cr_assert_eq(eddy_file_lstat(at("link"), &st), 0);
    cr_expect_eq(st.type, EDDY_FILE_TYPE_SYMLINK);
    cr_assert_eq(eddy_file_stat(at("fifo"), &st), 0);
    cr_expect_eq(st.type, EDDY_FILE_TYPE_FIFO);
    cr_assert_eq(eddy_file_stat("/dev/null", &st), 0);
    cr_expect_eq(st.type, EDDY_FILE_TYPE_CHAR_DEVICE);
    cr_expect_eq(eddy_file_stat(at("dangling"), &st), -ENOENT);
    cr_assert_eq(eddy_file_lstat(at("dangling"), &st), 0);
    return 0;
}

FILE_TEST(stat_reports_size_mtime_mode_and_type)
{
    put_file(at("f"), "hello", 5);
    cr_assert_eq(chmod(at("f"), 0640), 0);
    struct timespec times[2] = {{1700000000, 123456789}, {1700000000, 123456789}};
    cr_assert_eq(utimensat(AT_FDCWD, at("f"), times, 0), 0);
    cr_assert_eq(symlink(at("f"), at("link")), 0);
    cr_assert_eq(symlink(at("gone"), at("dangling")), 0);
    cr_assert_eq(mkfifo(at("fifo"), 0600), 0);
    rt_run(stats, NULL);
}

static intptr_t paths(void *arg)
{
    (void)arg;
    cr_assert_eq(eddy_file_mkdir(at("d"), 0755), 0);
    struct eddy_file_stat st;
    cr_assert_eq(eddy_file_stat(at("d"), &st), 0);
    cr_assert_eq(st.type, EDDY_FILE_TYPE_DIRECTORY);
    cr_assert_eq(eddy_file_rename(at("a"), at("d/b")), 0);
    cr_assert_eq(eddy_file_stat(at("a"), &st), -ENOENT);
    cr_assert_eq(eddy_file_stat(at("d/b"), &st), 0);
    cr_assert_eq(st.size_bytes, 3);
    cr_assert_eq(eddy_file_unlink(at("d/b")), 0);
    cr_assert_eq(eddy_file_rmdir(at("d")), 0);
    cr_assert_eq(eddy_file_stat(at("d"), &st), -ENOENT);
    /* Across file systems, when /dev/shm is one of its own. */
    struct stat a, b;
    if (stat("/dev/shm", &a) == 0 && stat(dir, &b) == 0 && a.st_dev != b.st_dev) {
        cr_assert_eq(eddy_file_write_all(at("x"), "x", 1, NULL), 0);
        char other[64];
        snprintf(other, sizeof(other), "/dev/shm/eddy-file-%d", (int)getpid());
        cr_assert_eq(eddy_file_rename(at("x"), other), -EXDEV);
    }
    return 0;
}

FILE_TEST(rename_unlink_mkdir_and_rmdir_change_the_tree)
{
    put_file(at("a"), "abc", 3);
    rt_run(paths, NULL);
}

struct listing {
    char **names;
    size_t count;
};

static intptr_t list(void *arg)
{
    struct listing *l = arg;
    cr_assert_eq(eddy_file_readdir(dir, &l->names, &l->count), 0);
    return 0;
}

FILE_TEST(readdir_lists_the_names_ls_lists)
{
    const char *names[] = {"b", "a", "Z", ".hidden", "with space", "ü-utf8", "10", "9", "a.b"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        put_file(at(names[i]), "", 0);
    cr_assert_eq(mkdir(at("sub"), 0755), 0);
    struct listing l;
    rt_run(list, &l);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "LC_ALL=C ls -A %s", dir);
    char *want = sh(cmd);
    char got[1024] = "";
    for (size_t i = 0; i < l.count; i++)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s\n", l.names[i]);
    cr_expect_str_eq(got, want);
    cr_expect_eq(l.count, 10);
    cr_expect_null(l.names[l.count]);
    eddy_free(l.names);
    free(want);
}

static intptr_t list_empty(void *arg)
{
    struct listing *l = arg;
    cr_assert_eq(eddy_file_readdir(dir, &l->names, &l->count), 0);
    return 0;
}

FILE_TEST(readdir_of_an_empty_directory_is_an_empty_list)
{
    struct listing l;
    rt_run(list_empty, &l);
    cr_expect_eq(l.count, 0);
    cr_expect_null(l.names[0]);
    eddy_free(l.names);
}

/* ---- the line iterator ------------------------------------------------------------- */

struct lines_case {
    const char *path;
    size_t cap;
    const char *expect[8]; /* lines, then NULL */
    int end;               /* what follows them: 0 or -EMSGSIZE */
};

static intptr_t run_lines(void *arg)
{
    struct lines_case *c = arg;
    struct eddy_file *f;
    cr_assert_eq(eddy_file_open(c->path, O_RDONLY, 0, &f), 0);
    char *line = malloc(c->cap);
    size_t i = 0;
    ssize_t n;
    while ((n = eddy_file_read_line(f, line, c->cap)) > 0) {
        cr_assert_not_null(c->expect[i], "an extra line: %s", line);
        cr_assert_eq((size_t)n, strlen(c->expect[i]), "line %zu: %zd bytes", i, n);
        cr_assert_str_eq(line, c->expect[i]);
        i++;
    }
    cr_assert_null(c->expect[i], "line %zu missing (got %zd)", i, n);
    cr_assert_eq(n, c->end, "after the lines: %s", eddy_strerror((int)n));
    if (n == 0)
        cr_assert_eq(eddy_file_read_line(f, line, c->cap), 0, "end of file again");
    free(line);
    cr_assert_eq(eddy_file_close(f), 0);
    return 0;
}

FILE_TEST(lines_come_with_their_newline_and_the_last_without)
{
    put_file(at("t"), "a\n\nbcd\r\nlast", 12);
    struct lines_case c = {at("t"), 16, {"a\n", "\n", "bcd\r\n", "last", NULL}, 0};
    rt_run(run_lines, &c);
    put_file(at("u"), "x\ny\n", 4);
    struct lines_case d = {at("u"), 16, {"x\n", "y\n", NULL}, 0};
    rt_run(run_lines, &d);
}

FILE_TEST(line_of_exactly_cap_minus_one_bytes_fits_and_one_more_does_not)
{
    /* cap 8: seven bytes fit, with or without the newline. */
    put_file(at("t"), "123456\n1234567", 14);
    struct lines_case c = {at("t"), 8, {"123456\n", "1234567", NULL}, 0};
    rt_run(run_lines, &c);
    put_file(at("u"), "ok\n1234567\n", 11);
    struct lines_case d = {at("u"), 8, {"ok\n", NULL}, -EMSGSIZE};
    rt_run(run_lines, &d);
    put_file(at("v"), "12345678", 8);
    struct lines_case e = {at("v"), 8, {NULL}, -EMSGSIZE};
    rt_run(run_lines, &e);
}

static intptr_t too_long_consumes_nothing(void *arg)
{
    (void)arg;
    struct eddy_file *f;
    cr_assert_eq(eddy_file_open(at("t"), O_RDONLY, 0, &f), 0);
    char line[50], big[200];
    cr_assert_eq(eddy_file_read_line(f, line, sizeof(line)), 6);
    cr_assert_str_eq(line, "short\n");
    cr_assert_eq(eddy_file_read_line(f, line, sizeof(line)), -EMSGSIZE);
    cr_assert_eq(eddy_file_tell(f), 6, "nothing consumed");
    cr_assert_eq(eddy_file_read_line(f, line, sizeof(line)), -EMSGSIZE, "again");
    /* read continues from the start of the long line, from the buffer. */
    cr_assert_eq(eddy_file_read(f, big, 101), 101);
    cr_assert_eq(big[0], 'x');
    cr_assert_eq(big[100], '\n');
    cr_assert_eq(eddy_file_read_line(f, line, sizeof(line)), 5);
    cr_assert_str_eq(line, "tail\n");
    /* Back to the start: the iterator starts over. */
    cr_assert_eq(eddy_file_seek(f, 0, SEEK_SET), 0);
    cr_assert_eq(eddy_file_read_line(f, big, sizeof(big)), 6);
    cr_assert_eq(eddy_file_read_line(f, big, sizeof(big)), 101);
    /* A seek inside the read-ahead keeps it. */
    cr_assert_eq(eddy_file_seek(f, -3, SEEK_CUR), 104);
    cr_assert_eq(eddy_file_read_line(f, big, sizeof(big)), 3);
    cr_assert_str_eq(big, "xx\n");
    cr_assert_eq(eddy_file_close(f), 0);
    return 0;
}

FILE_TEST(line_longer_than_cap_is_emsgsize_and_consumes_nothing)
{
    char content[200];
    strcpy(content, "short\n");
    memset(content + 6, 'x', 100);
    content[106] = '\n';
    strcpy(content + 107, "tail\n");
    put_file(at("t"), content, 112);
    rt_run(too_long_consumes_nothing, NULL);
}

/* Long lines: lengths drawn from a seeded generator, up to 300,000 bytes,
 * across the 64 KiB read-ahead blocks; each line's bytes derive from its
 * index. */
#define LONG_LINES 400
#define LONG_LINE_MAX 300000

static size_t long_line_len(uint64_t *rng)
{
    uint64_t r = rt_rand(rng);
    /* A third short, a third medium, a third up to the maximum. */
    switch (r % 3) {
    case 0:
        return (size_t)(r >> 8) % 80;
    case 1:
        return (size_t)(r >> 8) % 70000;
    default:
        return (size_t)(r >> 8) % LONG_LINE_MAX;
    }
}

static char line_byte(size_t line, size_t k)
{
    return (char)(' ' + (line * 31 + k) % 90); /* printable, never '\n' */
}

struct long_lines {
    size_t count, total, longest;
};

static intptr_t read_long_lines(void *arg)
{
    struct long_lines *ll = arg;
    struct eddy_file *f;
    cr_assert_eq(eddy_file_open(at("long"), O_RDONLY, 0, &f), 0);
    size_t cap = LONG_LINE_MAX + 2;
    char *line = malloc(cap);
    uint64_t rng = 42;
    ssize_t n;
    while ((n = eddy_file_read_line(f, line, cap)) > 0) {
        size_t want = long_line_len(&rng);
        cr_assert_eq((size_t)n, want + 1, "line %zu: %zd bytes, want %zu", ll->count, n, want + 1);
        for (size_t k = 0; k < want; k++)
            if (line[k] != line_byte(ll->count, k))
                cr_assert_fail("line %zu byte %zu differs", ll->count, k);
        cr_assert_eq(line[want], '\n');
        cr_assert_eq(line[want + 1], 0);
        ll->count++;
        ll->total += (size_t)n;
        if ((size_t)n > ll->longest)
            ll->longest = (size_t)n;
    }
    cr_assert_eq(n, 0, "%s", eddy_strerror((int)n));
    cr_assert_eq(eddy_file_tell(f), (off_t)ll->total);
    /* A cap below the longest line stops there with -EMSGSIZE. */
    cr_assert_eq(eddy_file_seek(f, 0, SEEK_SET), 0);
    size_t small = 1000;
    while ((n = eddy_file_read_line(f, line, small)) > 0)
        ;
    cr_assert_eq(n, -EMSGSIZE);
    free(line);
    cr_assert_eq(eddy_file_close(f), 0);
    return 0;
}

FILE_TEST(long_lines_across_read_ahead_blocks_match_python)
{
    size_t lines = rt_scale(LONG_LINES, 60);
    int fd = open(at("long"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0);
    char *buf = malloc(LONG_LINE_MAX + 1);
    uint64_t rng = 42;
    for (size_t i = 0; i < lines; i++) {
        size_t n = long_line_len(&rng);
        for (size_t k = 0; k < n; k++)
            buf[k] = line_byte(i, k);
        buf[n] = '\n';
        cr_assert_eq(write(fd, buf, n + 1), (ssize_t)n + 1);
    }
    free(buf);
    close(fd);
    struct long_lines ll = {0, 0, 0};
    rt_run(read_long_lines, &ll);
    cr_expect_eq(ll.count, lines);
    /* python3 splits the same file into the same lines. (Not under Valgrind,
     * which would trace the interpreter too, for minutes.) */
    if (eddy_test_under_valgrind())
        return;
    char cmd[512], mine[128];
    snprintf(cmd, sizeof(cmd),
             "python3 -c 'import sys; ls = open(sys.argv[1], \"rb\").readlines(); "
             "print(len(ls), sum(map(len, ls)), max(map(len, ls)))' %s",
             at("long"));
    char *py = sh(cmd);
    snprintf(mine, sizeof(mine), "%zu %zu %zu\n", ll.count, ll.total, ll.longest);
    cr_expect_str_eq(mine, py);
    free(py);
}

/* ---- small reads from the page cache ------------------------------------------------ */

/* Small reads of a cached file run on the loop thread: a second task must
 * still get its turns, and cancellation and timeouts still apply. */
struct small_reads {
    size_t size;
    int ticks;
    bool stop;
    ssize_t total;
    int cancelled_rc, timeout_rc;
};

static intptr_t ticker(void *arg)
{
    struct small_reads *s = arg;
    while (!s->stop) {
        s->ticks++;
        if (eddy_task_yield() < 0)
            break;
    }
    return 0;
}

static intptr_t cached_small_reads(void *arg)
{
    struct small_reads *s = arg;
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(ticker, s, NULL, &t), 0);
    struct eddy_file *f;
    cr_assert_eq(eddy_file_open(at("big"), O_RDONLY, 0, &f), 0);
    char buf[4096];
    ssize_t n;
    int reads = 0;
    while ((n = eddy_file_read(f, buf, sizeof(buf))) > 0) {
        cr_assert(is_pattern(buf, (size_t)n, (uint64_t)s->total));
        s->total += n;
        reads++;
    }
    cr_assert_eq(n, 0);
    s->stop = true;
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    /* Every read yielded once: the ticker ran about as often. */
    cr_expect_geq(s->ticks, reads / 2, "the ticker ran %d times during %d reads", s->ticks, reads);

    /* Cached or not, a cancelled task's read fails. */
    cr_assert_eq(eddy_file_seek(f, 0, SEEK_SET), 0);
    eddy_task_cancel(eddy_task_current());
    s->cancelled_rc = (int)eddy_file_read(f, buf, sizeof(buf));
    eddy_task_uncancel();
    cr_assert_eq(eddy_file_tell(f), 0);
    struct eddy_timeout scope;
    cr_assert_eq(eddy_timeout_enter(&scope, 0), 0);
    s->timeout_rc = (int)eddy_file_pread(f, buf, sizeof(buf), 0);
    eddy_timeout_exit(&scope);
    cr_assert_eq(eddy_file_close(f), 0);
    return 0;
}

FILE_TEST(small_cached_reads_yield_and_still_see_cancellation)
{
    struct small_reads s = {.size = eddy_test_under_valgrind() ? (size_t)256 << 10 : 8 << 20};
    put_pattern(at("big"), s.size);
    rt_run(cached_small_reads, &s);
    cr_expect_eq(s.total, (ssize_t)s.size);
    cr_expect_eq(s.cancelled_rc, -ECANCELED);
    cr_expect_eq(s.timeout_rc, -ETIMEDOUT);
}

static intptr_t half_cached(void *arg)
{
    (void)arg;
    struct eddy_file *f;
    cr_assert_eq(eddy_file_open(at("big"), O_RDONLY, 0, &f), 0);
    char *buf = malloc(64 << 10);
    for (off_t off = 0; off < (1 << 20); off += 64 << 10) {
        ssize_t n = eddy_file_read(f, buf, 64 << 10);
        cr_assert_eq(n, 64 << 10, "at %lld: %zd", (long long)off, n);
        cr_assert(is_pattern(buf, (size_t)n, (uint64_t)off), "bad data at %lld", (long long)off);
    }
    cr_assert_eq(eddy_file_read(f, buf, 64 << 10), 0);
    free(buf);
    cr_assert_eq(eddy_file_close(f), 0);
    return 0;
}

FILE_TEST(reads_across_cached_and_uncached_pages_return_the_file)
{
    put_pattern(at("big"), 1 << 20);
    int fd = open(at("big"), O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    fdatasync(fd);
    /* Cached: the first 40 KiB, and a stripe in the middle; the rest is on
     * the disk only, so some 64 KiB reads start in the cache and end out. */
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    char tmp[40 << 10];
    cr_assert_eq(pread(fd, tmp, sizeof(tmp), 0), (ssize_t)sizeof(tmp));
    cr_assert_eq(pread(fd, tmp, sizeof(tmp), 500 << 10), (ssize_t)sizeof(tmp));
    posix_fadvise(fd, 40 << 10, 460 << 10, POSIX_FADV_DONTNEED);
    posix_fadvise(fd, 540 << 10, 0, POSIX_FADV_DONTNEED);
    close(fd);
    rt_run(half_cached, NULL);
}

/* ---- cancellation ------------------------------------------------------------------- */

struct cancel_open {
    int fds;
    int rc;
    int64_t returned_ns;
};

static intptr_t opener_task(void *arg)
{
    struct opener *o = arg;
    o->rc = eddy_file_open(o->path, O_RDONLY, 0, &o->f);
    return 0;
}

static intptr_t cancel_open_in_flight(void *arg)
{
    struct cancel_open *c = arg;
    c->fds = count_fds(); /* with the loop's own */
    struct opener o = {at("fifo"), 1, NULL};
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(opener_task, &o, NULL, &t), 0);
    cr_assert(wait_openers(1), "the open never started");
    int64_t t0 = eddy_clock_ns();
    eddy_task_cancel(t);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    c->returned_ns = eddy_clock_ns() - t0;
    c->rc = o.rc;
    cr_assert_null(o.f);
    /* Let the worker's open complete: it opens the fd nobody waits for. */
    int w = open(o.path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert_geq(w, 0, "no reader in open: %s", strerror(errno));
    cr_assert(wait_fds(c->fds + 1), "the late fd was not closed (%d open, want %d)", count_fds(),
              c->fds + 1);
    close(w);
    return 0;
}

FILE_TEST(cancelled_open_returns_at_once_and_its_late_fd_is_closed)
{
    cr_assert_eq(mkfifo(at("fifo"), 0600), 0);
    int fds = count_fds();
    struct cancel_open c;
    rt_run(cancel_open_in_flight, &c);
    cr_expect_eq(c.rc, -ECANCELED);
    cr_expect_lt(c.returned_ns, rt_late_tolerance_ns(), "cancel took %lld ns",
                 (long long)c.returned_ns);
    cr_expect_eq(count_fds(), fds);
}

/* A reader cancelled after `delay_us`: its buffer must stay as the caller
 * left it once the call has returned. */
struct cancel_read {
    size_t size;
    int delay_us;
    bool whole; /* eddy_file_read_all instead of eddy_file_read */
    int fds;
    ssize_t rc;
    int64_t returned_ns;
};

struct reader {
    struct eddy_file *f;
    char *buf;
    size_t len;
    bool whole;
    ssize_t rc;
    int64_t done_ns;
};

static intptr_t reader_task(void *arg)
{
    struct reader *r = arg;
    if (r->whole) {
        char *data = NULL;
        size_t len = 0;
        r->rc = eddy_file_read_all(at("big"), 0, &data, &len);
        if (r->rc == 0) {
            r->rc = (ssize_t)len;
            eddy_free(data);
        } else if (data) {
            r->rc = -1000; /* a buffer on an error */
        }
    } else {
        r->rc = eddy_file_read(r->f, r->buf, r->len);
        r->done_ns = eddy_clock_ns();
        /* From here the buffer is the caller's again. */
        if (r->rc < 0)
            memset(r->buf, 0x5A, r->len);
        return 0;
    }
    r->done_ns = eddy_clock_ns();
    return 0;
}

static intptr_t cancel_read_midway(void *arg)
{
    struct cancel_read *c = arg;
    c->fds = count_fds(); /* with the loop's own */
    struct reader r = {.len = c->size, .whole = c->whole};
    if (!c->whole) {
        cr_assert_eq(eddy_file_open(at("big"), O_RDONLY, 0, &r.f), 0);
        r.buf = malloc(c->size);
    }
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(reader_task, &r, NULL, &t), 0);
    eddy_task_yield(); /* the reader submits its first chunk */
    eddy_sleep_ns(c->delay_us * INT64_C(1000));
    int64_t t0 = eddy_clock_ns();
    eddy_task_cancel(t);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    c->rc = r.rc;
    c->returned_ns = r.done_ns - t0;
    if (!c->whole) {
        if (r.rc < 0)
            cr_assert_eq(eddy_file_tell(r.f), 0, "a failed read moved the position");
        /* Closing waits for nothing; the fd goes when the late chunk ends. */
        cr_assert_eq(eddy_file_close(r.f), 0);
    }
    cr_assert(wait_fds(c->fds), "an fd stayed open after the late jobs");
    if (!c->whole && r.rc < 0) {
        /* Every late job has ended (their fd is closed): none of them wrote
         * into the buffer after the call returned. */
        for (size_t i = 0; i < c->size; i++)
            if ((unsigned char)r.buf[i] != 0x5A)
                cr_assert_fail("byte %zu of the caller's buffer was written after the "
                               "cancelled read returned",
                               i);
    }
    free(r.buf);
    return 0;
}

static void check_cancelled_reads(bool whole, bool cold)
{
    size_t size = eddy_test_under_valgrind() ? (size_t)8 << 20 : (size_t)64 << 20;
    put_pattern(at("big"), size);
    int cancelled = 0;
    const int delays_us[] = {0, 50, 200, 1000, 3000};
    for (size_t i = 0; i < sizeof(delays_us) / sizeof(delays_us[0]); i++) {
        if (cold)
            drop_cache(at("big"));
        int fds = count_fds();
        struct cancel_read c = {size, delays_us[i], whole, 0, 0, 0};
        rt_run(cancel_read_midway, &c);
        cr_assert_eq(count_fds(), fds, "an fd leaked");
        if (c.rc == (ssize_t)size)
            continue; /* finished before the cancellation */
        cr_assert_eq(c.rc, -ECANCELED, "delay %d us: %s", delays_us[i], eddy_strerror((int)c.rc));
        cr_expect_lt(c.returned_ns, rt_late_tolerance_ns(), "cancel took %lld ns",
                     (long long)c.returned_ns);
        cancelled++;
    }
    cr_expect_gt(cancelled, 0, "no read was still running when cancelled");
}

FILE_TEST(cancelled_read_from_disk_never_writes_the_buffer_afterwards)
{
    check_cancelled_reads(false, true);
}

FILE_TEST(cancelled_read_from_page_cache_never_writes_the_buffer_afterwards)
{
    check_cancelled_reads(false, false);
}

FILE_TEST(cancelled_read_all_leaks_neither_fd_nor_buffer)
{
    check_cancelled_reads(true, true);
    check_cancelled_reads(true, false);
}

static intptr_t timeout_read_all(void *arg)
{
    int *rc = arg;
    struct eddy_timeout scope;
    cr_assert_eq(eddy_timeout_enter(&scope, EDDY_NS_PER_MS), 0);
    char *data = NULL;
    size_t len;
    *rc = eddy_file_read_all(at("big"), 0, &data, &len);
    eddy_timeout_exit(&scope);
    cr_assert(*rc != 0 || data, "success without data");
    eddy_free(data);
    return 0;
}

FILE_TEST(timeout_scope_ends_a_long_read_all)
{
    size_t size = eddy_test_under_valgrind() ? (size_t)16 << 20 : (size_t)256 << 20;
    put_pattern(at("big"), size);
    drop_cache(at("big"));
    int fds = count_fds();
    int rc = 1;
    rt_run(timeout_read_all, &rc);
    cr_expect_eq(rc, -ETIMEDOUT, "%s", eddy_strerror(rc));
    /* eddy_run waited for the late job while destroying the loop. */
    cr_expect_eq(count_fds(), fds);
}

/* With one worker held by a blocked open, a second call waits in the queue;
 * cancelling it drops the job before it runs. */
struct queued {
    int rc;
    int64_t returned_ns;
};

static intptr_t read_all_task(void *arg)
{
    struct queued *q = arg;
    char *data;
    size_t len;
    q->rc = eddy_file_read_all(at("f"), 0, &data, &len);
    if (q->rc == 0)
        eddy_free(data);
    return 0;
}

static intptr_t cancel_queued(void *arg)
{
    struct queued *q = arg;
    struct opener o = {at("fifo"), 1, NULL};
    struct eddy_task *blocker, *t;
    cr_assert_eq(eddy_task_spawn(opener_task, &o, NULL, &blocker), 0);
    cr_assert(wait_openers(1));
    cr_assert_eq(eddy_task_spawn(read_all_task, q, NULL, &t), 0);
    eddy_task_yield();
    eddy_sleep_ms(20);
    int64_t t0 = eddy_clock_ns();
    eddy_task_cancel(t);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    q->returned_ns = eddy_clock_ns() - t0;
    int w = open(o.path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert_eq(eddy_task_join(blocker, NULL), 0);
    cr_assert_eq(o.rc, 0);
    cr_assert_eq(eddy_file_close(o.f), 0);
    close(w);
    return 0;
}

FILE_TEST(cancelled_call_waiting_for_a_worker_is_dropped)
{
    eddy_offload_set_threads(1);
    cr_assert_eq(mkfifo(at("fifo"), 0600), 0);
    put_file(at("f"), "data", 4);
    int fds = count_fds();
    struct queued q = {1, 0};
    rt_run(cancel_queued, &q);
    cr_expect_eq(q.rc, -ECANCELED);
    cr_expect_lt(q.returned_ns, rt_late_tolerance_ns());
    cr_expect_eq(count_fds(), fds);
}

struct atomic_cancel {
    size_t size;
    char *data;
    int rc;
};

static intptr_t atomic_writer(void *arg)
{
    struct atomic_cancel *a = arg;
    struct eddy_file_write_opts o = {.atomic = true};
    a->rc = eddy_file_write_all(at("target"), a->data, a->size, &o);
    /* The data is the caller's again: scribbling on it must not reach the
     * file through a late chunk. */
    memset(a->data, 'Z', a->size);
    return 0;
}

static intptr_t cancel_atomic(void *arg)
{
    struct atomic_cancel *a = arg;
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(atomic_writer, a, NULL, &t), 0);
    eddy_task_yield();
    eddy_sleep_ms(2);
    eddy_task_cancel(t);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    /* The late job's request removes the temporary file when it ends. */
    for (int i = 0; i < 10000; i++) {
        char **names;
        size_t count;
        cr_assert_eq(eddy_file_readdir(dir, &names, &count), 0);
        eddy_free(names);
        if (count == 1)
            break;
        eddy_sleep_ms(1);
    }
    return 0;
}

FILE_TEST(cancelled_atomic_write_leaves_the_old_file_and_no_temporary)
{
    put_file(at("target"), "old", 3);
    struct atomic_cancel a = {.size = eddy_test_under_valgrind() ? (size_t)16 << 20
                                                                 : (size_t)256 << 20};
    a.data = malloc(a.size);
    memset(a.data, 'n', a.size);
    int fds = count_fds();
    rt_run(cancel_atomic, &a);
    free(a.data);
    if (a.rc == 0)
        cr_skip_test("the write finished within 2 ms; nothing was cancelled");
    cr_expect_eq(a.rc, -ECANCELED);
    size_t len;
    char *p = get_file(at("target"), &len);
    cr_expect_eq(len, 3);
    cr_expect_str_eq(p, "old");
    free(p);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "LC_ALL=C ls -A %s", dir);
    char *out = sh(cmd);
    cr_expect_str_eq(out, "target\n", "a temporary file stayed");
    free(out);
    cr_expect_eq(count_fds(), fds);
}

/* ---- handles shared by tasks --------------------------------------------------------- */

struct shared {
    struct eddy_file *f;
    char *buf;
    size_t size;
    ssize_t first, second, pread_rc;
};

static intptr_t long_reader(void *arg)
{
    struct shared *s = arg;
    s->first = eddy_file_read(s->f, s->buf, s->size);
    return 0;
}

static intptr_t shared_handle(void *arg)
{
    struct shared *s = arg;
    cr_assert_eq(eddy_file_open(at("big"), O_RDONLY, 0, &s->f), 0);
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(long_reader, s, NULL, &t), 0);
    eddy_task_yield();
    char small[16];
    /* The position is taken: a second reader is told, pread is fine. */
    s->second = eddy_file_read(s->f, small, sizeof(small));
    s->pread_rc = eddy_file_pread(s->f, small, 8, 8);
    cr_assert(is_pattern(small, 8, 8));
    /* Closing under the reader: it stops at its next chunk. */
    cr_assert_eq(eddy_file_close(s->f), 0);
    cr_assert_eq(eddy_task_join(t, NULL), 0);
    return 0;
}

FILE_TEST(second_reader_gets_ebusy_and_close_under_a_reader_is_safe)
{
    size_t size = eddy_test_under_valgrind() ? (size_t)8 << 20 : (size_t)64 << 20;
    put_pattern(at("big"), size);
    drop_cache(at("big"));
    int fds = count_fds();
    struct shared s = {.size = size, .buf = malloc(size)};
    rt_run(shared_handle, &s);
    cr_expect_eq(s.second, -EBUSY);
    cr_expect_eq(s.pread_rc, 8);
    cr_expect(s.first == -EBADF || s.first == (ssize_t)size, "first reader: %zd", s.first);
    cr_expect_eq(count_fds(), fds);
    free(s.buf);
}

/*
 * io/file.c: files through the offload pool (aiofiles): open/close,
 * read/write at a position of the handle, pread/pwrite, whole-file reads and
 * (atomic) writes, append, fsync, stat, unlink, rename, mkdir, rmdir,
 * readdir and a buffered line iterator.
 *
 * Every call builds a request (struct req), hands it to eddy_offload_run and
 * parks; a worker runs the syscalls. Requests are heap objects with two
 * references, the caller's and the job's, both dropped on the loop thread:
 * the caller drops its own when it returns, and the job's goes to dispose
 * when the caller left early (offload's ownership rule: arg is transferred to
 * dispose on an error). Whichever drops the last one frees the request and
 * whatever it still owns: an fd opened by a late open, a buffer, a temporary
 * file of an atomic write. So a cancellation leaks nothing, whatever moment
 * it hits.
 *
 * Caller memory. A late job must not touch the buffer of a caller that has
 * returned (the caller may have freed it, or it was on a task's stack). Each
 * request has a mutex and a `gone` flag: the worker copies into or out of
 * caller memory only while holding the mutex and seeing gone == false, and a
 * caller that leaves early sets gone under the mutex. The copies are bounded
 * (at most a chunk, no I/O), so the caller's wait for the mutex is too.
 * Reads first try preadv2(RWF_NOWAIT) straight into the caller's buffer
 * under the mutex: from the page cache it is one copy, the same as a plain
 * read(2); RWF_NOWAIT makes the kernel give up (EAGAIN, or a short count)
 * instead of waiting for the disk or an inode lock, so the mutex is never
 * held across I/O. The rest is read into a buffer of the request without the
 * mutex and copied under it. Measured on the development machine (1 GiB,
 * warm cache, 1 MiB reads): read(2) 14.9 GB/s, preadv2 NOWAIT 15.0 GB/s,
 * pread into a bounce buffer plus memcpy 10.5 GB/s. Writes always copy into
 * a buffer of the request first (a buffered write can block in dirty-page
 * throttling, which RWF_NOWAIT does not cover for every file system).
 *
 * Handles. struct eddy_file counts the requests that use its fd; close marks
 * it closed and the fd is closed when the last request lets go, so a late
 * job never reads or writes a reused fd number. The position is the
 * handle's (the kernel's file offset is used only with O_APPEND); it moves
 * when a call succeeds. The line iterator's read-ahead buffer holds the
 * bytes at [pos, pos + buffered); while a fill runs, the buffer belongs to
 * the fill's request, and a cancelled fill takes it along (the buffer is
 * only a cache of the file, so nothing is lost).
 *
 * Costs: one offload round trip per call and per chunk (about 7 us when a
 * worker is spinning, see reactor/offload.c), plus a malloc of the request.
 * Reads of up to 64 KiB that the page cache holds skip the round trip (see
 * read_cached): in the files benchmark's 64 KiB reads of a cached 1 GiB file
 * that took eddy from about 0.35x to about 0.9x of a plain read(2) loop.
 * A whole-file read of up to a chunk is one job: open, fstat, read, a read
 * that sees the end, close. Besides those cached reads, the loop thread makes no
 * syscall except the close/unlink of a request whose caller was cancelled.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <eddy/io.h>

#include "alloc/internal.h"

#define CHUNK ((size_t)EDDY_FILE_CHUNK_BYTES)
/* Read-ahead of the line iterator, and the first read of a file whose
 * size stat does not tell. */
#define READ_AHEAD ((size_t)64 * 1024)
/* Reads up to this size try the page cache on the loop thread first (see
 * read_cached). */
#define INLINE_READ ((size_t)64 * 1024)
/* Names tried for the temporary file of an atomic write before giving up. */
#define TMP_TRIES 16

struct eddy_file {
    int fd;
    int refs; /* the handle until closed, plus each request using fd */
    bool closed;
    bool busy; /* a task is inside read, write, seek or read_line */
    bool append;
    off_t pos;
    char *rbuf; /* read-ahead: rbuf[rstart, rend) is the file at pos */
    size_t rcap, rstart, rend;
};

struct req {
    int refs;               /* loop thread: the caller's and the job's */
    pthread_mutex_t lock;   /* guards gone and every touch of caller memory */
    bool gone;              /* the caller returned: its memory is off limits */
    struct eddy_file *file; /* a reference, or NULL */
    int fd;
    bool own_fd; /* fd is closed with the request */

    /* Transfers. */
    void *user; /* caller memory: read destination or write source */
    size_t len; /* bytes of this job (whole-file calls: in all) */
    off_t off;
    char *buf; /* the request's own data */
    size_t buf_len, buf_cap;
    size_t max; /* read_all: length limit, 0 for none */
    bool append;
    off_t newpos; /* after an O_APPEND write */

    /* Open, paths, results. */
    int flags;
    mode_t mode;
    bool atomic, sync;
    bool tmp_exists; /* tmp names a file to unlink with the request */
    struct stat st;
    char **names;
    const char *path, *path2, *dir;
    char *tmp;
    char paths[]; /* the copied path strings */
};

/* ---- errors -------------------------------------------------------------- */

/* code (negative) when eddy names it, else -EIO: nothing outside
 * EDDY_ERRORS leaves the library. */
static int known(int code)
{
    switch (-code) {
#define EDDY__FILE_KNOWN(name, text) case name:
        EDDY_ERRORS(EDDY__FILE_KNOWN)
#undef EDDY__FILE_KNOWN
        return code;
    default:
        return -EIO;
    }
}

/* ---- handles ------------------------------------------------------------- */

static void file_unref(struct eddy_file *f)
{
    if (--f->refs > 0)
        return;
    /* Only when jobs of cancelled calls outlived the handle: eddy_file_close
     * closes the fd itself otherwise. */
    if (f->fd >= 0)
        close(f->fd);
    eddy__free(f->rbuf);
    eddy__free(f);
}

static void drop_read_ahead(struct eddy_file *f)
{
    f->rstart = f->rend = 0;
}

/* ---- requests ------------------------------------------------------------ */

/* A request with room for `extra` bytes of path strings, holding the
 * caller's reference (and one on f when f is not NULL). */
static struct req *req_new(size_t extra, struct eddy_file *f)
{
    struct req *r = eddy__malloc(sizeof(*r) + extra);
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->refs = 1;
    pthread_mutex_init(&r->lock, NULL);
    r->fd = -1;
    if (f) {
        r->file = f;
        f->refs++;
        r->fd = f->fd;
    }
    return r;
}

/* Copies path into the request's string area at *at. */
static const char *req_put(struct req *r, size_t *at, const char *path)
{
    size_t n = strlen(path) + 1;
    memcpy(r->paths + *at, path, n);
    *at += n;
    return r->paths + *at - n;
}

static void req_unref(struct req *r)
{
    if (--r->refs > 0)
        return;
    /* Left behind by a job whose caller was cancelled (a successful caller
     * takes what it keeps before it lets go). */
    if (r->own_fd && r->fd >= 0)
        close(r->fd);
    if (r->tmp_exists)
        unlink(r->tmp);
    eddy__free(r->buf);
    eddy__free(r->names);
    if (r->file)
        file_unref(r->file);
    pthread_mutex_destroy(&r->lock);
    eddy__free(r);
}

static void job_dispose(void *arg, intptr_t result, bool ran)
{
    (void)result;
    (void)ran;
    req_unref(arg);
}

/*
 * Runs fn(r) on the pool. Returns 0 with the job's result in *res, or the
 * offload error; after an error the job may still be running, and the
 * caller's memory is off limits to it from here on.
 */
static int submit(eddy_offload_fn *fn, struct req *r, intptr_t *res)
{
    r->refs++; /* the job's, dropped here or by job_dispose */
    int rc = eddy_offload_run(fn, r, job_dispose, res);
    if (rc == 0) {
        r->refs--;
        return 0;
    }
    /* Waits only while a worker is copying into or out of caller memory. */
    pthread_mutex_lock(&r->lock);
    r->gone = true;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* submit, with the job's negative result as the error. */
static int submit_checked(eddy_offload_fn *fn, struct req *r, intptr_t *res)
{
    intptr_t v = 0;
    int rc = submit(fn, r, &v);
    if (rc < 0)
        return rc;
    if (v < 0)
        return known((int)v);
    if (res)
        *res = v;
    return 0;
}

/* ---- worker side: syscalls with EINTR retried ------------------------------ */

/* Reads until len bytes or end of file. Returns the count or -errno (a
 * count when some bytes came before the error: the next read reports it). */
static ssize_t pread_full(int fd, char *p, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, p + done, len - done, off + (off_t)done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return done > 0 ? (ssize_t)done : -errno;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* Writes all len bytes: pwrite at off, or write(2) for O_APPEND. */
static ssize_t write_full(int fd, const char *p, size_t len, off_t off, bool append)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = append ? write(fd, p + done, len - done)
                           : pwrite(fd, p + done, len - done, off + (off_t)done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO; /* no progress and no error: do not spin */
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* Copies n bytes between caller memory and the request while the caller
 * waits. Returns false when the caller has gone. */
static bool copy_user(struct req *r, void *dst, const void *src, size_t n)
{
    pthread_mutex_lock(&r->lock);
    bool here = !r->gone;
    if (here)
        memcpy(dst, src, n);
    pthread_mutex_unlock(&r->lock);
    return here;
}

/* ---- jobs on handles --------------------------------------------------------- */

static intptr_t job_open(void *arg)
{
    struct req *r = arg;
    int fd;
    do
        fd = open(r->path, r->flags, r->mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -errno;
    r->fd = fd;
    r->own_fd = true;
    return 0;
}

static intptr_t job_close(void *arg)
{
    struct req *r = arg;
    int rc = close(r->fd);
    r->own_fd = false;
    /* Linux releases the fd even when close reports EINTR: nothing to retry. */
    return rc < 0 && errno != EINTR ? -errno : 0;
}

/* One chunk from the file into caller memory (r->user, r->len at r->off). */
static intptr_t job_read_user(void *arg)
{
    struct req *r = arg;
    size_t done = 0;
    /* Page-cache hits go straight to the caller, one copy. */
    pthread_mutex_lock(&r->lock);
    if (r->gone) {
        pthread_mutex_unlock(&r->lock);
        return -ECANCELED;
    }
    struct iovec v = {r->user, r->len};
    ssize_t n;
    do
        n = preadv2(r->fd, &v, 1, r->off, RWF_NOWAIT);
    while (n < 0 && errno == EINTR);
    pthread_mutex_unlock(&r->lock);
    if (n == 0)
        return 0; /* end of file */
    if (n > 0)
        done = (size_t)n;
    if (done == r->len)
        return (intptr_t)done;
    /* EAGAIN (not cached), EOPNOTSUPP (no RWF_NOWAIT here), a short count
     * (partly cached, or the end of the file), or a real error that the
     * blocking read below reports again. */
    size_t rest = r->len - done;
    r->buf = eddy__malloc(rest);
    if (!r->buf)
        return done > 0 ? (intptr_t)done : -ENOMEM;
    ssize_t got = pread_full(r->fd, r->buf, rest, r->off + (off_t)done);
    if (got < 0)
        return done > 0 ? (intptr_t)done : got;
    if (!copy_user(r, (char *)r->user + done, r->buf, (size_t)got))
        return -ECANCELED;
    return (intptr_t)(done + (size_t)got);
}

/* One chunk from caller memory into the file. */
static intptr_t job_write_user(void *arg)
{
    struct req *r = arg;
    r->buf = eddy__malloc(r->len);
    if (!r->buf)
        return -ENOMEM;
    if (!copy_user(r, r->buf, r->user, r->len))
        return -ECANCELED;
    ssize_t n = write_full(r->fd, r->buf, r->len, r->off, r->append);
    if (n >= 0 && r->append) {
        r->newpos = lseek(r->fd, 0, SEEK_CUR);
        if (r->newpos < 0)
            return -errno;
    }
    return n;
}

/* Read-ahead for the line iterator: appends to the request's buffer. */
static intptr_t job_fill(void *arg)
{
    struct req *r = arg;
    return pread_full(r->fd, r->buf + r->buf_len, r->len, r->off);
}

static intptr_t job_fsync(void *arg)
{
    struct req *r = arg;
    return fsync(r->fd) < 0 ? -errno : 0;
}

static intptr_t job_fdatasync(void *arg)
{
    struct req *r = arg;
    return fdatasync(r->fd) < 0 ? -errno : 0;
}

static intptr_t job_fstat(void *arg)
{
    struct req *r = arg;
    return fstat(r->fd, &r->st) < 0 ? -errno : 0;
}

/* ---- handles: open, close, positions -------------------------------------------- */

static void to_stat(const struct stat *st, struct eddy_file_stat *out)
{
    out->size_bytes = (uint64_t)st->st_size;
    out->mtime_ns = (int64_t)st->st_mtim.tv_sec * EDDY_NS_PER_SEC + st->st_mtim.tv_nsec;
    out->mode = (uint32_t)(st->st_mode & 07777);
    switch (st->st_mode & S_IFMT) {
    case S_IFREG:
        out->type = EDDY_FILE_TYPE_REGULAR;
        break;
    case S_IFDIR:
        out->type = EDDY_FILE_TYPE_DIRECTORY;
        break;
    case S_IFLNK:
        out->type = EDDY_FILE_TYPE_SYMLINK;
        break;
    case S_IFIFO:
        out->type = EDDY_FILE_TYPE_FIFO;
        break;
    case S_IFSOCK:
        out->type = EDDY_FILE_TYPE_SOCKET;
        break;
    case S_IFCHR:
        out->type = EDDY_FILE_TYPE_CHAR_DEVICE;
        break;
    case S_IFBLK:
        out->type = EDDY_FILE_TYPE_BLOCK_DEVICE;
        break;
    default:
        out->type = EDDY_FILE_TYPE_OTHER;
        break;
    }
}

EDDY_API int eddy_file_open(const char *path, int flags, mode_t mode, struct eddy_file **out)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return -EINVAL;
    struct eddy_file *f = eddy__malloc(sizeof(*f));
    if (!f)
        return -ENOMEM;
    size_t at = 0;
    struct req *r = req_new(strlen(path) + 1, NULL);
    if (!r) {
        eddy__free(f);
        return -ENOMEM;
    }
    r->path = req_put(r, &at, path);
    r->flags = flags | O_CLOEXEC;
    r->mode = mode;
    int rc = submit_checked(job_open, r, NULL);
    if (rc < 0) {
        req_unref(r);
        eddy__free(f);
        return rc;
    }
    *f = (struct eddy_file){.fd = r->fd, .refs = 1, .append = (flags & O_APPEND) != 0};
    r->own_fd = false;
    req_unref(r);
    *out = f;
    return 0;
}

EDDY_API int eddy_file_close(struct eddy_file *f)
{
    if (!f)
        return -EINVAL;
    f->closed = true;
    if (f->refs > 1) {
        /* Requests still use the fd; the last one closes it. */
        file_unref(f);
        return 0;
    }
    int fd = f->fd;
    f->fd = -1;
    file_unref(f);
    if (fd < 0)
        return 0;
    struct req *r = eddy_task_current() ? req_new(0, NULL) : NULL;
    if (!r) {
        /* Outside a task, or out of memory: close here. */
        int rc = close(fd);
        return rc < 0 && errno != EINTR ? known(-errno) : 0;
    }
    r->fd = fd;
    r->own_fd = true; /* a dropped job leaves the close to req_unref */
    int rc = submit_checked(job_close, r, NULL);
    req_unref(r);
    return rc;
}

EDDY_API int eddy_file_fd(const struct eddy_file *f)
{
    return f ? f->fd : -EINVAL;
}

/*
 * Entry of every call on a handle: holds a reference for the call, so that a
 * close by another task meanwhile cannot free the handle under it. Calls
 * that use the position or the read-ahead (`positional`) also mark it busy.
 */
static int enter(struct eddy_file *f, bool positional)
{
    if (!f)
        return -EINVAL;
    if (f->closed)
        return -EBADF;
    if (positional) {
        if (f->busy)
            return -EBUSY;
        f->busy = true;
    }
    f->refs++;
    return 0;
}

static void leave(struct eddy_file *f, bool positional)
{
    if (positional)
        f->busy = false;
    file_unref(f);
}

/*
 * The page-cache fast path of small reads. A copy of up to INLINE_READ bytes
 * from the page cache costs about what an offload round trip costs (64 KiB:
 * about 5 us against 7 us), so such reads are first tried right here, on
 * the loop thread, with preadv2(RWF_NOWAIT), which never waits for the disk
 * or a lock; only what it cannot serve goes to the pool. (Larger reads stay
 * on the pool, which keeps the loop thread free for other work while a
 * worker copies.) The yield first lets every other runnable task run, so a
 * task reading a cached file in small pieces cannot starve them, and it
 * reports a cancellation or an expired timeout scope as any blocking call.
 * Returns the count (0 at end of file); -EAGAIN when the pool must do the
 * read (nothing cached, no RWF_NOWAIT on this file system, or an error,
 * which the pool's read reports again); or the yield's error.
 */
static ssize_t read_cached(int fd, char *buf, size_t len, off_t off)
{
    int rc = eddy_task_yield();
    if (rc < 0)
        return rc;
    struct iovec v = {buf, len};
    ssize_t n;
    do
        n = preadv2(fd, &v, 1, off, RWF_NOWAIT);
    while (n < 0 && errno == EINTR);
    return n >= 0 ? n : -EAGAIN;
}

/* Reads len bytes at off into buf, chunk by chunk, stopping at the end of
 * the file. Returns the count or an error. */
static ssize_t read_at(struct eddy_file *f, char *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        if (f->closed)
            return -EBADF;
        size_t n = len - done < CHUNK ? len - done : CHUNK;
        if (n <= INLINE_READ) {
            ssize_t got = read_cached(f->fd, buf + done, n, off + (off_t)done);
            if (got == 0)
                break;
            if (got > 0) {
                /* A short count: the end of the file, or the rest is not
                 * cached; the next round tells. */
                done += (size_t)got;
                continue;
            }
            if (got != -EAGAIN)
                return got;
        }
        struct req *r = req_new(0, f);
        if (!r)
            return -ENOMEM;
        r->user = buf + done;
        r->len = n;
        r->off = off + (off_t)done;
        intptr_t got = 0;
        int rc = submit_checked(job_read_user, r, &got);
        req_unref(r);
        if (rc < 0)
            return rc;
        done += (size_t)got;
        if ((size_t)got < n)
            break;
    }
    return (ssize_t)done;
}

/* Writes len bytes at off (the end with O_APPEND), chunk by chunk; *newpos
 * receives the position after the last O_APPEND write. */
static ssize_t write_at(struct eddy_file *f, const char *buf, size_t len, off_t off, off_t *newpos)
{
    size_t done = 0;
    while (done < len) {
        if (f->closed)
            return -EBADF;
        size_t n = len - done < CHUNK ? len - done : CHUNK;
        struct req *r = req_new(0, f);
        if (!r)
            return -ENOMEM;
        r->user = (void *)(buf + done);
        r->len = n;
        r->off = off + (off_t)done;
        r->append = f->append;
        int rc = submit_checked(job_write_user, r, NULL);
        if (rc == 0 && newpos && f->append)
            *newpos = r->newpos;
        req_unref(r);
        if (rc < 0)
            return rc;
        done += n;
    }
    return (ssize_t)done;
}

/* Whether [off, off + len) is a valid file range. */
static bool range_ok(off_t off, size_t len)
{
    return off >= 0 && len <= (size_t)SSIZE_MAX && (uint64_t)off + len <= (uint64_t)INT64_MAX;
}

EDDY_API ssize_t eddy_file_read(struct eddy_file *f, void *buf, size_t len)
{
    int rc = enter(f, true);
    if (rc < 0)
        return rc;
    ssize_t n = -EINVAL;
    if (len == 0) {
        n = 0;
    } else if (buf && range_ok(f->pos, len)) {
        /* Buffered bytes first; they are consumed now, and on an error the
         * rest of the read-ahead no longer starts at pos and is dropped. */
        size_t have = f->rend - f->rstart;
        if (have > len)
            have = len;
        if (have) {
            memcpy(buf, f->rbuf + f->rstart, have);
            f->rstart += have;
        }
        n = read_at(f, (char *)buf + have, len - have, f->pos + (off_t)have);
        if (n >= 0) {
            f->pos += (off_t)have + n;
            n += (ssize_t)have;
        } else {
            drop_read_ahead(f);
        }
    }
    leave(f, true);
    return n;
}

EDDY_API ssize_t eddy_file_write(struct eddy_file *f, const void *buf, size_t len)
{
    int rc = enter(f, true);
    if (rc < 0)
        return rc;
    ssize_t n = -EINVAL;
    if ((buf || !len) && range_ok(f->pos, len)) {
        drop_read_ahead(f);
        off_t newpos = f->pos + (off_t)len;
        n = write_at(f, buf, len, f->pos, &newpos);
        if (n >= 0)
            f->pos = newpos;
    }
    leave(f, true);
    return n;
}

EDDY_API ssize_t eddy_file_pread(struct eddy_file *f, void *buf, size_t len, off_t offset)
{
    int rc = enter(f, false);
    if (rc < 0)
        return rc;
    ssize_t n = -EINVAL;
    if ((buf || !len) && range_ok(offset, len))
        n = read_at(f, buf, len, offset);
    leave(f, false);
    return n;
}

EDDY_API ssize_t eddy_file_pwrite(struct eddy_file *f, const void *buf, size_t len, off_t offset)
{
    int rc = enter(f, false);
    if (rc < 0)
        return rc;
    ssize_t n = -EINVAL;
    if ((buf || !len) && range_ok(offset, len)) {
        drop_read_ahead(f);
        n = write_at(f, buf, len, offset, NULL);
    }
    leave(f, false);
    return n;
}

/* Runs a job on the handle's fd (fsync, fstat); the caller has entered. */
static int handle_job(struct eddy_file *f, eddy_offload_fn *fn, struct stat *st)
{
    struct req *r = req_new(0, f);
    if (!r)
        return -ENOMEM;
    int rc = submit_checked(fn, r, NULL);
    if (rc == 0 && st)
        *st = r->st;
    req_unref(r);
    return rc;
}

static int handle_call(struct eddy_file *f, eddy_offload_fn *fn, struct stat *st)
{
    int rc = enter(f, false);
    if (rc < 0)
        return rc;
    rc = handle_job(f, fn, st);
    leave(f, false);
    return rc;
}

EDDY_API int eddy_file_fsync(struct eddy_file *f)
{
    return handle_call(f, job_fsync, NULL);
}

EDDY_API int eddy_file_fdatasync(struct eddy_file *f)
{
    return handle_call(f, job_fdatasync, NULL);
}

EDDY_API int eddy_file_fstat(struct eddy_file *f, struct eddy_file_stat *out)
{
    if (!out)
        return -EINVAL;
    struct stat st;
    int rc = handle_call(f, job_fstat, &st);
    if (rc == 0)
        to_stat(&st, out);
    return rc;
}

/* The position whence + offset designates, or an error. */
static off_t seek_target(struct eddy_file *f, off_t offset, int whence)
{
    off_t base;
    if (whence == SEEK_SET) {
        base = 0;
    } else if (whence == SEEK_CUR) {
        base = f->pos;
    } else if (whence == SEEK_END) {
        struct stat st;
        int rc = handle_job(f, job_fstat, &st);
        if (rc < 0)
            return rc;
        base = st.st_size;
    } else {
        return -EINVAL;
    }
    off_t to;
    if (__builtin_add_overflow(base, offset, &to) || to < 0)
        return -EINVAL;
    return to;
}

EDDY_API off_t eddy_file_seek(struct eddy_file *f, off_t offset, int whence)
{
    int rc = enter(f, true);
    if (rc < 0)
        return rc;
    off_t to = seek_target(f, offset, whence);
    if (to >= 0) {
        /* Keep the read-ahead when the new position falls inside it. */
        size_t have = f->rend - f->rstart;
        if (to >= f->pos && (uint64_t)(to - f->pos) <= have)
            f->rstart += (size_t)(to - f->pos);
        else
            drop_read_ahead(f);
        f->pos = to;
    }
    leave(f, true);
    return to;
}

EDDY_API off_t eddy_file_tell(const struct eddy_file *f)
{
    return f ? f->pos : -EINVAL;
}

/* ---- the line iterator ------------------------------------------------------- */

/*
 * Reads more of the file behind the buffered bytes, making room for lines up
 * to max bytes. Returns the bytes added, 0 at end of file, or an error (the
 * read-ahead is then dropped: it only ever caches the file at pos).
 */
static ssize_t fill(struct eddy_file *f, size_t max)
{
    size_t have = f->rend - f->rstart;
    if (f->rstart > 0) {
        memmove(f->rbuf, f->rbuf + f->rstart, have);
        f->rstart = 0;
        f->rend = have;
    }
    if (f->rcap - have < READ_AHEAD / 2 && (f->rcap < READ_AHEAD || f->rcap - READ_AHEAD < max)) {
        /* Room for a block of read-ahead, and for the longest line. */
        size_t cap = f->rcap ? f->rcap * 2 : READ_AHEAD;
        if (cap < have + READ_AHEAD)
            cap = have + READ_AHEAD;
        char *p = eddy__realloc(f->rbuf, cap);
        if (!p)
            return -ENOMEM;
        f->rbuf = p;
        f->rcap = cap;
    }
    size_t room = f->rcap - have;
    size_t want = room < CHUNK ? room : CHUNK;
    if (want <= INLINE_READ) {
        ssize_t got = read_cached(f->fd, f->rbuf + have, want, f->pos + (off_t)have);
        if (got >= 0) {
            f->rend = have + (size_t)got;
            return got;
        }
        if (got != -EAGAIN)
            return got;
    }
    struct req *r = req_new(0, f);
    if (!r)
        return -ENOMEM;
    /* The buffer goes with the job: a late fill writes into memory of its
     * own, never into a buffer the handle reuses. */
    r->buf = f->rbuf;
    r->buf_len = have;
    r->len = want;
    r->off = f->pos + (off_t)have;
    f->rbuf = NULL;
    f->rcap = f->rstart = f->rend = 0;
    intptr_t got = 0;
    int rc = submit_checked(job_fill, r, &got);
    if (rc == 0) {
        f->rbuf = r->buf;
        f->rcap = f->rbuf ? room + have : 0;
        f->rend = have + (size_t)got;
        r->buf = NULL;
    }
    req_unref(r);
    return rc < 0 ? rc : (ssize_t)got;
}

/* Hands the first n buffered bytes out as a line. */
static ssize_t take_line(struct eddy_file *f, char *buf, size_t n)
{
    memcpy(buf, f->rbuf + f->rstart, n);
    buf[n] = 0;
    f->rstart += n;
    f->pos += (off_t)n;
    return (ssize_t)n;
}

EDDY_API ssize_t eddy_file_read_line(struct eddy_file *f, char *buf, size_t cap)
{
    if (!buf || cap < 2)
        return -EINVAL;
    int rc = enter(f, true);
    if (rc < 0)
        return rc;
    size_t max = cap - 1;
    size_t scanned = 0; /* bytes already searched, from rstart */
    ssize_t out;
    for (;;) {
        size_t have = f->rend - f->rstart;
        size_t look = have < max ? have : max;
        if (look > scanned) {
            char *start = f->rbuf + f->rstart;
            char *nl = memchr(start + scanned, '\n', look - scanned);
            if (nl) {
                out = take_line(f, buf, (size_t)(nl - start) + 1);
                break;
            }
            scanned = look;
        }
        /* max bytes without a newline fit only as the file's last line: one
         * more byte decides. */
        if (have > max) {
            out = -EMSGSIZE;
            break;
        }
        if (!range_ok(f->pos, have + 1)) {
            out = -EINVAL;
            break;
        }
        ssize_t got = fill(f, max);
        if (got < 0) {
            out = got;
            break;
        }
        if (got == 0) {
            /* End of file: the last line has no newline, or nothing is left. */
            out = have ? take_line(f, buf, have) : 0;
            break;
        }
    }
    leave(f, true);
    return out;
}

/* ---- whole files ----------------------------------------------------------- */

/*
 * One step of eddy_file_read_all: opens the file on the first call, then
 * reads up to a chunk into the request's buffer (len + 1 bytes, kept
 * NUL-able). Returns 1 when the file is read and closed, 0 when more
 * remains, or -errno.
 */
static intptr_t job_read_all(void *arg)
{
    struct req *r = arg;
    if (r->fd < 0) {
        int fd;
        do
            fd = open(r->path, O_RDONLY | O_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        if (fd < 0)
            return -errno;
        r->fd = fd;
        r->own_fd = true;
        struct stat st;
        if (fstat(fd, &st) < 0)
            return -errno;
        if (S_ISDIR(st.st_mode))
            return -EISDIR;
        size_t hint = S_ISREG(st.st_mode) ? (size_t)st.st_size : 0;
        if (r->max && hint > r->max)
            return -EFBIG;
        r->buf_cap = hint ? hint + 1 : READ_AHEAD;
        r->buf = eddy__malloc(r->buf_cap);
        if (!r->buf)
            return -ENOMEM;
    }
    size_t budget = CHUNK;
    while (budget > 0) {
        size_t room = r->buf_cap - 1 - r->buf_len;
        if (room == 0) {
            /* Full at the stat size: a read into the NUL slot tells whether
             * the file ends here or grew. */
            ssize_t n = pread_full(r->fd, r->buf + r->buf_len, 1, (off_t)r->buf_len);
            if (n < 0)
                return n;
            if (n == 0)
                break;
            r->buf_len++;
            if (r->max && r->buf_len > r->max)
                return -EFBIG;
            size_t cap = r->buf_cap * 2;
            char *p = eddy__realloc(r->buf, cap);
            if (!p)
                return -ENOMEM;
            r->buf = p;
            r->buf_cap = cap;
            continue;
        }
        size_t want = room < budget ? room : budget;
        ssize_t n = pread_full(r->fd, r->buf + r->buf_len, want, (off_t)r->buf_len);
        if (n < 0)
            return n;
        if (n == 0)
            break;
        r->buf_len += (size_t)n;
        budget -= (size_t)n;
        if (r->max && r->buf_len > r->max)
            return -EFBIG;
    }
    if (budget == 0)
        return 0;
    int rc = close(r->fd);
    r->own_fd = false;
    return rc < 0 && errno != EINTR ? -errno : 1;
}

EDDY_API int eddy_file_read_all(const char *path, size_t max_bytes, char **data, size_t *len)
{
    if (data)
        *data = NULL;
    if (len)
        *len = 0;
    if (!path || !data || !len)
        return -EINVAL;
    size_t at = 0;
    struct req *r = req_new(strlen(path) + 1, NULL);
    if (!r)
        return -ENOMEM;
    r->path = req_put(r, &at, path);
    r->max = max_bytes;
    intptr_t done = 0;
    int rc;
    do
        rc = submit_checked(job_read_all, r, &done);
    while (rc == 0 && done == 0);
    if (rc == 0) {
        r->buf[r->buf_len] = 0;
        *data = r->buf;
        *len = r->buf_len;
        r->buf = NULL;
    }
    req_unref(r);
    return rc;
}

/* A random-looking suffix for temporary names: the clock and the thread
 * mixed, different on every call. */
static uint32_t tmp_suffix(void)
{
    static atomic_uint counter;
    uint64_t x = (uint64_t)eddy_clock_ns() ^ ((uint64_t)atomic_fetch_add(&counter, 1) << 32) ^
                 (uint64_t)(uintptr_t)&x;
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return (uint32_t)x;
}

/*
 * One step of write_all / append: opens (a temporary file when atomic) on the
 * first call, writes up to a chunk copied from the caller's data, and on the
 * last step syncs, closes and renames. Returns 1 when done, 0 when more
 * remains, or -errno.
 */
static intptr_t job_write_path(void *arg)
{
    struct req *r = arg;
    if (r->fd < 0) {
        int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (r->append ? O_APPEND : O_TRUNC);
        const char *name = r->path;
        if (r->atomic) {
            flags |= O_EXCL;
            name = r->tmp;
        }
        int fd = -1;
        for (int i = 0; i < TMP_TRIES; i++) {
            if (r->atomic)
                snprintf(r->tmp, strlen(r->path) + 16, "%s.tmp.%08x", r->path, tmp_suffix());
            do
                fd = open(name, flags, r->mode);
            while (fd < 0 && errno == EINTR);
            if (fd >= 0 || errno != EEXIST || !r->atomic)
                break;
        }
        if (fd < 0)
            return -errno;
        r->fd = fd;
        r->own_fd = true;
        r->tmp_exists = r->atomic;
        size_t cap = r->len < CHUNK ? r->len : CHUNK;
        r->buf = eddy__malloc(cap ? cap : 1);
        if (!r->buf)
            return -ENOMEM;
    }
    size_t done = (size_t)r->off;
    size_t n = r->len - done < CHUNK ? r->len - done : CHUNK;
    if (n > 0) {
        if (!copy_user(r, r->buf, (const char *)r->user + done, n))
            return -ECANCELED;
        ssize_t w = write_full(r->fd, r->buf, n, r->off, r->append);
        if (w < 0)
            return w;
        r->off += (off_t)n;
        if ((size_t)r->off < r->len)
            return 0;
    }
    if ((r->sync || r->atomic) && fsync(r->fd) < 0)
        return -errno;
    int rc = close(r->fd);
    r->own_fd = false;
    if (rc < 0 && errno != EINTR)
        return -errno;
    if (r->atomic) {
        if (rename(r->tmp, r->path) < 0)
            return -errno;
        r->tmp_exists = false;
        if (r->sync) {
            /* The rename itself reaches the disk with the directory. */
            int dfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd < 0)
                return -errno;
            rc = fsync(dfd);
            int e = errno;
            close(dfd);
            if (rc < 0)
                return -e;
        }
    }
    return 1;
}

static int write_path(const char *path, const void *data, size_t len, bool append,
                      const struct eddy_file_write_opts *opts)
{
    if (!path || (!data && len) || len > (size_t)SSIZE_MAX)
        return -EINVAL;
    size_t plen = strlen(path);
    /* path, the temporary name (path + ".tmp." + 8 hex digits), the directory. */
    struct req *r = req_new(3 * (plen + 1) + 16, NULL);
    if (!r)
        return -ENOMEM;
    size_t at = 0;
    r->path = req_put(r, &at, path);
    r->user = (void *)data;
    r->len = len;
    r->append = append;
    r->mode = opts && opts->mode ? opts->mode : 0666;
    r->atomic = !append && opts && opts->atomic;
    r->sync = opts && opts->sync;
    r->tmp = r->paths + at;
    at += plen + 16;
    char *dir = r->paths + at;
    const char *slash = strrchr(path, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == path)
        strcpy(dir, "/");
    else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = 0;
    }
    r->dir = dir;
    intptr_t done = 0;
    int rc;
    do
        rc = submit_checked(job_write_path, r, &done);
    while (rc == 0 && done == 0);
    req_unref(r);
    return rc;
}

EDDY_API int eddy_file_write_all(const char *path, const void *data, size_t len,
                                 const struct eddy_file_write_opts *opts)
{
    return write_path(path, data, len, false, opts);
}

EDDY_API int eddy_file_append(const char *path, const void *data, size_t len)
{
    return write_path(path, data, len, true, NULL);
}

/* ---- paths --------------------------------------------------------------------- */

static intptr_t job_stat(void *arg)
{
    struct req *r = arg;
    return stat(r->path, &r->st) < 0 ? -errno : 0;
}

static intptr_t job_lstat(void *arg)
{
    struct req *r = arg;
    return lstat(r->path, &r->st) < 0 ? -errno : 0;
}

static intptr_t job_unlink(void *arg)
{
    struct req *r = arg;
    return unlink(r->path) < 0 ? -errno : 0;
}

static intptr_t job_rename(void *arg)
{
    struct req *r = arg;
    return rename(r->path, r->path2) < 0 ? -errno : 0;
}

static intptr_t job_mkdir(void *arg)
{
    struct req *r = arg;
    return mkdir(r->path, r->mode) < 0 ? -errno : 0;
}

static intptr_t job_rmdir(void *arg)
{
    struct req *r = arg;
    return rmdir(r->path) < 0 ? -errno : 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists r->path into r->names (one block: pointers, then strings). Returns
 * the count or -errno. */
static intptr_t job_readdir(void *arg)
{
    struct req *r = arg;
    DIR *d = opendir(r->path);
    if (!d)
        return -errno;
    /* The names, NUL-separated, in a growing buffer; pointers come last. */
    size_t count = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            rc = -errno;
            break;
        }
        const char *n = e->d_name;
        if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0)))
            continue;
        size_t nl = strlen(n) + 1;
        if (r->buf_cap - r->buf_len < nl) {
            size_t cap = r->buf_cap ? r->buf_cap * 2 : 4096;
            while (cap - r->buf_len < nl)
                cap *= 2;
            char *p = eddy__realloc(r->buf, cap);
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            r->buf = p;
            r->buf_cap = cap;
        }
        memcpy(r->buf + r->buf_len, n, nl);
        r->buf_len += nl;
        count++;
    }
    closedir(d);
    if (rc < 0)
        return rc;
    size_t ptrs = (count + 1) * sizeof(char *);
    char **names = eddy__malloc(ptrs + r->buf_len);
    if (!names)
        return -ENOMEM;
    char *s = (char *)names + ptrs;
    if (r->buf_len)
        memcpy(s, r->buf, r->buf_len);
    for (size_t i = 0; i < count; i++) {
        names[i] = s;
        s += strlen(s) + 1;
    }
    names[count] = NULL;
    qsort(names, count, sizeof(char *), name_cmp);
    r->names = names;
    return (intptr_t)count;
}

/* Runs a path job. */
static int path_job(eddy_offload_fn *fn, const char *path, const char *path2, mode_t mode,
                    struct stat *st)
{
    if (!path)
        return -EINVAL;
    size_t at = 0;
    struct req *r = req_new(strlen(path) + 1 + (path2 ? strlen(path2) + 1 : 0), NULL);
    if (!r)
        return -ENOMEM;
    r->path = req_put(r, &at, path);
    if (path2)
        r->path2 = req_put(r, &at, path2);
    r->mode = mode;
    int rc = submit_checked(fn, r, NULL);
    if (rc == 0 && st)
        *st = r->st;
    req_unref(r);
    return rc;
}

EDDY_API int eddy_file_stat(const char *path, struct eddy_file_stat *out)
{
    if (!out)
        return -EINVAL;
    struct stat st;
    int rc = path_job(job_stat, path, NULL, 0, &st);
    if (rc == 0)
        to_stat(&st, out);
    return rc;
}

EDDY_API int eddy_file_lstat(const char *path, struct eddy_file_stat *out)
{
    if (!out)
        return -EINVAL;
    struct stat st;
    int rc = path_job(job_lstat, path, NULL, 0, &st);
    if (rc == 0)
        to_stat(&st, out);
    return rc;
}

EDDY_API int eddy_file_unlink(const char *path)
{
    return path_job(job_unlink, path, NULL, 0, NULL);
}

EDDY_API int eddy_file_rename(const char *from, const char *to)
{
    if (!to)
        return -EINVAL;
    return path_job(job_rename, from, to, 0, NULL);
}

EDDY_API int eddy_file_mkdir(const char *path, mode_t mode)
{
    return path_job(job_mkdir, path, NULL, mode, NULL);
}

EDDY_API int eddy_file_rmdir(const char *path)
{
    return path_job(job_rmdir, path, NULL, 0, NULL);
}

EDDY_API int eddy_file_readdir(const char *path, char ***names, size_t *count)
{
    if (names)
        *names = NULL;
    if (count)
        *count = 0;
    if (!path || !names || !count)
        return -EINVAL;
    size_t at = 0;
    struct req *r = req_new(strlen(path) + 1, NULL);
    if (!r)
        return -ENOMEM;
    r->path = req_put(r, &at, path);
    intptr_t n = 0;
    int rc = submit_checked(job_readdir, r, &n);
    if (rc == 0) {
        *names = r->names;
        *count = (size_t)n;
        r->names = NULL;
    }
    req_unref(r);
    return rc;
}

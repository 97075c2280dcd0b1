/*
 * io/process.c: pipes and subprocesses: eddy_pipe, SIGPIPE-free pipe
 * writes, spawning a program with its standard fds wired to pipes,
 * /dev/null or given fds, waiting for its exit through a pidfd, signalling
 * it, and communicate (write stdin, read stdout and stderr, wait).
 *
 * Spawning. vfork, then exec in the child, as glibc's posix_spawn and
 * Python's _posixsubprocess do: the child borrows the parent's memory until
 * exec, so the cost does not grow with the parent's size as fork's page
 * table copy does. posix_spawn itself is not used because it cannot report
 * an exec failure where vfork becomes fork (Valgrind): it returns 0 and the
 * child exits with 127. Here the child writes its errno into a close-on-exec
 * pipe instead, so the parent reads 0 bytes after a successful exec and 4
 * bytes after a failure, in every case. The parent blocks every signal
 * around vfork, because a handler must not run in a child that shares the
 * parent's memory; the child resets the caught signals (and SIGPIPE,
 * SIGXFSZ) to their default action before it unblocks everything and
 * execs. The child only makes syscalls on its own stack and reads the
 * plan the parent prepared. It searches PATH itself rather than calling
 * execvpe, which runs a file without #! through /bin/sh (ENOEXEC is
 * reported instead).
 *
 * Standard fds. The sources to dup2 onto 0, 1 and 2 are first moved to
 * fds >= 3 (F_DUPFD_CLOEXEC) when they are below 3, so that a dup2 onto 0
 * cannot overwrite the source of the dup2 onto 1; dup2 clears the
 * close-on-exec flag of the target only. Pipe ends on the parent's side are
 * non-blocking; the child's ends stay blocking.
 *
 * Exit. pidfd_open on the fresh child (race-free: it is ours and not yet
 * reaped) gives an fd that epoll reports readable at the exit; waiters park
 * on it and reap with waitpid(WNOHANG). Kernels without pidfd_open (before
 * 5.3) are detected at the first spawn, and Valgrind (3.19 does not know
 * the syscall) is treated as one; then a callback timer polls waitpid,
 * 1 ms doubling to 50 ms, while tasks wait, and wakes them through a wait
 * queue.
 *
 * communicate. Three helper tasks in a task group: one writes stdin, two
 * read stdout and stderr, so no pipe can fill up while the parent is busy
 * with another. The first failure (a reader over its limit) cancels the
 * others. The helpers own the fds they use and close them when they end, and
 * share one heap block with the caller; when the caller must leave before
 * they end (its timeout scope expired), it marks the block abandoned and the
 * last helper frees it, touching neither the caller's input nor p.
 *
 * Costs: a spawn is a vfork and an exec, a pipe2 per piped fd plus the
 * error pipe, about 2 x 64 sigaction calls in the child, and pidfd_open;
 * a wait is one waitpid before and after one park.
 */
#include "io/internal.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <eddy/sync.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

/* ---- pipes -------------------------------------------------------------------- */

EDDY_API int eddy_pipe(int fds[2])
{
    if (!fds)
        return -EINVAL;
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return -errno;
    return 0;
}

/* ---- the process record -------------------------------------------------------- */

enum proc_state {
    PROC_RUNNING, /* not reaped */
    PROC_REAPED,  /* returncode is valid */
    PROC_LOST,    /* someone else reaped it (waitpid gave ECHILD) */
};

struct eddy_process {
    pid_t pid;
    int pidfd; /* -1 when exits are polled */
    int fds[3];
    int returncode;
    enum proc_state state;
    /* Polling only: the tasks in eddy_process_wait and the timer that
     * checks waitpid for them. */
    struct eddy_waitq waiters;
    struct eddy_timer poll_timer;
    int64_t poll_interval_ns;
};

#define POLL_FIRST_NS (1 * EDDY_NS_PER_MS)
#define POLL_MAX_NS (50 * EDDY_NS_PER_MS)

/* Whether pidfd_open works: 0 not probed yet, 1 yes, -1 no. */
static _Atomic int pidfd_support;

void eddy__process_use_pidfd(bool on)
{
    pidfd_support = on ? 0 : -1;
}

/* Returns a pidfd for pid, -ENOSYS when the kernel has none (remembered), or
 * another -errno. */
static int open_pidfd(pid_t pid)
{
    /* Valgrind 3.19 answers ENOSYS with a warning on stderr for each
     * process: do not ask it. */
    if (pidfd_support == 0 && RUNNING_ON_VALGRIND)
        pidfd_support = -1;
    if (pidfd_support < 0)
        return -ENOSYS;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        pidfd_support = 1;
        return fd;
    }
    int err = errno;
    if (err == ENOSYS)
        pidfd_support = -1;
    return -err;
}

static int status_to_returncode(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return -WTERMSIG(st);
}

/* waitpid without waiting (block false) or until the exit. Returns 0 once
 * reaped, -EAGAIN while running, -ECHILD when the child was reaped by
 * someone else. */
static int reap(struct eddy_process *p, bool block)
{
    if (p->state == PROC_REAPED)
        return 0;
    if (p->state == PROC_LOST)
        return -ECHILD;
    int st;
    pid_t r;
    do {
        r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        int err = errno;
        if (err == ECHILD)
            p->state = PROC_LOST;
        return -err;
    }
    if (r == 0)
        return -EAGAIN;
    p->returncode = status_to_returncode(st);
    p->state = PROC_REAPED;
    return 0;
}

/* ---- spawn --------------------------------------------------------------------- */

/* Everything the child needs, prepared by the parent: the child only reads
 * it and makes syscalls. */
struct spawn_plan {
    const char *const *argv;
    char *const *envp;
    const char *cwd;
    const char *path; /* PATH to search; NULL when argv[0] names a file */
    int src[3];       /* fd (>= 3) to dup2 onto 0, 1, 2; -1: leave as it is */
    bool err_to_out;  /* dup2(1, 2) once stdout is in place */
    int err_fd;       /* the error pipe's write end (close-on-exec) */
};

/* Tries execve on "dir/file" for each PATH entry, as execvp does: names not
 * found there are skipped (EACCES remembered). Returns the errno to report. */
static int exec_search(const struct spawn_plan *plan)
{
    const char *file = plan->argv[0];
    size_t flen = strlen(file);
    char buf[PATH_MAX];
    bool seen_eacces = false;
    const char *dir = plan->path;
    for (;;) {
        const char *end = strchr(dir, ':');
        size_t dlen = end ? (size_t)(end - dir) : strlen(dir);
        /* An empty entry means the current directory. */
        if (dlen + 1 + flen < sizeof(buf)) {
            size_t n = 0;
            if (dlen > 0) {
                memcpy(buf, dir, dlen);
                buf[dlen] = '/';
                n = dlen + 1;
            }
            memcpy(buf + n, file, flen + 1);
            execve(buf, (char *const *)plan->argv, plan->envp);
            switch (errno) {
            case EACCES:
                seen_eacces = true;
                break;
            case ENOENT:
            case ENOTDIR:
            case ESTALE:
            case ENODEV:
            case ETIMEDOUT:
                break;
            default:
                return errno;
            }
        }
        if (!end)
            return seen_eacces ? EACCES : ENOENT;
        dir = end + 1;
    }
}

/* The child between vfork and exec. Never returns. */
static _Noreturn void child_exec(const struct spawn_plan *plan)
{
    /* Handlers first: once the mask is cleared, a signal must not run a
     * handler of the parent in this child, which shares its memory. */
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) != 0)
            continue; /* a signal glibc keeps for itself */
        bool caught =
            (sa.sa_flags & SA_SIGINFO) || (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN);
        if (caught || sig == SIGPIPE || sig == SIGXFSZ) {
            memset(&sa, 0, sizeof(sa));
            sa.sa_handler = SIG_DFL;
            sigaction(sig, &sa, NULL);
        }
    }
    int err = 0;
    for (int i = 0; i < 3 && !err; i++) {
        if (plan->src[i] >= 0 && dup2(plan->src[i], i) < 0)
            err = errno;
    }
    if (!err && plan->err_to_out && dup2(1, 2) < 0)
        err = errno;
    if (!err && plan->cwd && chdir(plan->cwd) != 0)
        err = errno;
    if (!err) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (plan->path) {
            err = exec_search(plan);
        } else {
            execve(plan->argv[0], (char *const *)plan->argv, plan->envp);
            err = errno;
        }
    }
    /* A short write to a pipe of ours cannot fail in a way we could report. */
    ssize_t w = write(plan->err_fd, &err, sizeof(err));
    (void)w;
    _exit(127);
}

/* vfork with every signal blocked in the calling thread. Returns the pid or
 * -errno. Kept small: a vfork caller's locals are shared with the child. */
static pid_t spawn_child(const struct spawn_plan *plan)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = vfork();
    if (pid == 0)
        child_exec(plan);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return pid < 0 ? -err : pid;
}

/* Closes fd when >= 0 (a plain close: these fds were never waited on). */
static void close_quiet(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* Returns fd itself when >= 3, else a close-on-exec copy >= 3 recorded in
 * *tmp (to close after the spawn), or -errno. */
static int above_stdio(int fd, int *tmp)
{
    if (fd >= 3)
        return fd;
    int c = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (c < 0)
        return -errno;
    *tmp = c;
    return c;
}

static bool valid_mode(enum eddy_stdio mode, int child_fd, int given)
{
    switch (mode) {
    case EDDY_STDIO_INHERIT:
    case EDDY_STDIO_PIPE:
    case EDDY_STDIO_NULL:
        return true;
    case EDDY_STDIO_FD:
        return given >= 0;
    case EDDY_STDIO_STDOUT:
        return child_fd == 2;
    }
    return false;
}

EDDY_API int eddy_process_spawn(const char *const argv[], const struct eddy_process_opts *opts,
                                struct eddy_process **out)
{
    if (!argv || !argv[0] || !argv[0][0] || !out)
        return -EINVAL;
    struct eddy_process_opts o = opts ? *opts : EDDY_PROCESS_OPTS_DEFAULT;
    enum eddy_stdio modes[3] = {o.stdin_mode, o.stdout_mode, o.stderr_mode};
    int given[3] = {o.stdin_fd, o.stdout_fd, o.stderr_fd};
    for (int i = 0; i < 3; i++) {
        if (!valid_mode(modes[i], i, given[i]))
            return -EINVAL;
    }

    struct eddy_process *p = eddy__malloc(sizeof(*p));
    if (!p)
        return -ENOMEM;
    struct spawn_plan plan = {
        .argv = argv,
        .envp = o.env ? o.env : environ,
        .cwd = o.cwd,
        .path = NULL,
        .src = {-1, -1, -1},
        .err_to_out = modes[2] == EDDY_STDIO_STDOUT,
        .err_fd = -1,
    };
    if (!strchr(argv[0], '/')) {
        plan.path = getenv("PATH");
        if (!plan.path)
            plan.path = "/bin:/usr/bin"; /* glibc's default for execvp */
    }
    int parent_end[3] = {-1, -1, -1};
    int child_end[3] = {-1, -1, -1};
    int tmp[3] = {-1, -1, -1};
    int devnull = -1;
    int errpipe[2] = {-1, -1};
    int rc = 0;

    for (int i = 0; i < 3 && rc == 0; i++) {
        int src = -1;
        switch (modes[i]) {
        case EDDY_STDIO_PIPE: {
            int fds[2];
            if (pipe2(fds, O_CLOEXEC) != 0) {
                rc = -errno;
                break;
            }
            /* The child reads its stdin, writes its stdout and stderr. */
            child_end[i] = i == 0 ? fds[0] : fds[1];
            parent_end[i] = i == 0 ? fds[1] : fds[0];
            rc = eddy__fd_set_nonblocking(parent_end[i]);
            src = child_end[i];
            break;
        }
        case EDDY_STDIO_NULL:
            if (devnull < 0) {
                devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (devnull < 0) {
                    rc = -errno;
                    break;
                }
            }
            src = devnull;
            break;
        case EDDY_STDIO_FD:
            src = given[i];
            break;
        case EDDY_STDIO_INHERIT:
        case EDDY_STDIO_STDOUT:
            break;
        }
        if (rc == 0 && src >= 0) {
            src = above_stdio(src, &tmp[i]);
            if (src < 0)
                rc = src;
            plan.src[i] = src;
        }
    }
    if (rc == 0 && pipe2(errpipe, O_CLOEXEC) != 0)
        rc = -errno;
    pid_t pid = -1;
    if (rc == 0) {
        plan.err_fd = errpipe[1];
        pid = spawn_child(&plan);
        if (pid < 0)
            rc = pid;
    }
    close_quiet(errpipe[1]);
    if (rc == 0) {
        /* Blocking read: it returns once the child has exec'd (0 bytes, the
         * pipe closed by exec) or failed (its errno). */
        int child_err = 0;
        ssize_t n;
        do {
            n = read(errpipe[0], &child_err, sizeof(child_err));
        } while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof(child_err)) {
            rc = -child_err;
            /* It has exited (127) or is exiting: reap it. */
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
    }
    close_quiet(errpipe[0]);
    for (int i = 0; i < 3; i++) {
        close_quiet(child_end[i]);
        close_quiet(tmp[i]);
    }
    close_quiet(devnull);
    if (rc < 0)
        goto fail;

    p->pid = pid;
    p->pidfd = open_pidfd(pid);
    if (p->pidfd < 0 && p->pidfd != -ENOSYS) {
        rc = p->pidfd;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        goto fail;
    }
    if (p->pidfd < 0)
        p->pidfd = -1;
    for (int i = 0; i < 3; i++)
        p->fds[i] = parent_end[i];
    p->returncode = 0;
    p->state = PROC_RUNNING;
    eddy_waitq_init(&p->waiters);
    p->poll_timer = (struct eddy_timer){0};
    p->poll_interval_ns = POLL_FIRST_NS;
    *out = p;
    return 0;

fail:
    for (int i = 0; i < 3; i++)
        close_quiet(parent_end[i]);
    eddy__free(p);
    return rc;
}

/* ---- life of a process --------------------------------------------------------- */

EDDY_API void eddy_process_destroy(struct eddy_process *p)
{
    if (!p)
        return;
    if (p->state == PROC_RUNNING) {
        if (p->pidfd >= 0)
            syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
        else
            kill(p->pid, SIGKILL);
        reap(p, true);
    }
    for (int i = 0; i < 3; i++) {
        if (p->fds[i] >= 0)
            eddy_fd_close(p->fds[i]);
    }
    if (p->pidfd >= 0)
        eddy_fd_close(p->pidfd);
    eddy_timer_stop(&p->poll_timer);
    eddy_waitq_wake_all(&p->waiters, -EBADF);
    eddy__free(p);
}

EDDY_API pid_t eddy_process_pid(const struct eddy_process *p)
{
    return p->pid;
}

EDDY_API int eddy_process_fd(const struct eddy_process *p, int child_fd)
{
    if (!p || child_fd < 0 || child_fd > 2)
        return -EINVAL;
    return p->fds[child_fd] >= 0 ? p->fds[child_fd] : -EBADF;
}

EDDY_API int eddy_process_take_fd(struct eddy_process *p, int child_fd)
{
    int fd = eddy_process_fd(p, child_fd);
    if (fd >= 0)
        p->fds[child_fd] = -1;
    return fd;
}

EDDY_API int eddy_process_close_fd(struct eddy_process *p, int child_fd)
{
    int fd = eddy_process_take_fd(p, child_fd);
    if (fd < 0)
        return fd;
    eddy_fd_close(fd);
    return 0;
}

EDDY_API int eddy_process_poll(struct eddy_process *p, int *returncode)
{
    if (!p)
        return -EINVAL;
    int rc = reap(p, false);
    if (rc == 0 && returncode)
        *returncode = p->returncode;
    return rc;
}

EDDY_API int eddy_process_kill(struct eddy_process *p, int sig)
{
    if (!p || sig < 0 || sig >= NSIG)
        return -EINVAL;
    if (p->state != PROC_RUNNING)
        return -ESRCH;
    /* Unreaped, so the pid cannot have been recycled: kill is safe too. */
    long r =
        p->pidfd >= 0 ? syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) : kill(p->pid, sig);
    return r < 0 ? -errno : 0;
}

/* Polling: checks the child for the tasks waiting, backing off while it
 * runs; stops when nobody waits any more. */
static void poll_tick(void *arg)
{
    struct eddy_process *p = arg;
    if (reap(p, false) != -EAGAIN) {
        eddy_waitq_wake_all(&p->waiters, 0);
        return;
    }
    if (eddy_waitq_is_empty(&p->waiters))
        return;
    p->poll_interval_ns *= 2;
    if (p->poll_interval_ns > POLL_MAX_NS)
        p->poll_interval_ns = POLL_MAX_NS;
    if (eddy_timer_start(&p->poll_timer, eddy_now_ns() + p->poll_interval_ns, poll_tick, p) < 0)
        eddy_waitq_wake_all(&p->waiters, -ENOMEM);
}

/* One park until the child may have exited. Returns 0 (check again) or an
 * error; after -EBADF p may be gone. */
static int wait_exit_event(struct eddy_process *p)
{
    if (p->pidfd >= 0)
        return eddy_fd_wait(p->pidfd, EDDY_FD_READ);
    if (!eddy_timer_is_active(&p->poll_timer)) {
        p->poll_interval_ns = POLL_FIRST_NS;
        int rc =
            eddy_timer_start(&p->poll_timer, eddy_now_ns() + p->poll_interval_ns, poll_tick, p);
        if (rc < 0)
            return rc;
    }
    int rc = eddy_waitq_wait(&p->waiters, EDDY_DEADLINE_NEVER);
    if (rc != -EBADF && eddy_waitq_is_empty(&p->waiters))
        eddy_timer_stop(&p->poll_timer);
    return rc;
}

EDDY_API int eddy_process_wait(struct eddy_process *p, int64_t timeout_ns, int *returncode)
{
    if (!p || !eddy_task_current())
        return -EINVAL;
    struct eddy_timeout scope;
    bool scoped = timeout_ns >= 0 && eddy_timeout_enter(&scope, timeout_ns) == 0;
    int rc;
    for (;;) {
        rc = reap(p, false);
        if (rc != -EAGAIN)
            break;
        rc = wait_exit_event(p);
        if (rc < 0)
            break;
    }
    if (scoped)
        eddy_timeout_exit(&scope);
    if (rc == 0 && returncode)
        *returncode = p->returncode;
    return rc;
}

/* ---- communicate ---------------------------------------------------------------- */

struct comm_reader {
    int fd;
    char *buf;
    size_t len, cap, limit; /* limit: max bytes + 1, to see the overflow */
};

/* Shared by communicate and its helper tasks (see the file comment). */
struct comm {
    size_t live; /* helpers not finished */
    bool abandoned;
    int in_fd;
    const char *input;
    size_t input_len, input_off;
    struct comm_reader rd[2]; /* stdout, stderr */
};

#define COMM_FIRST_BUFFER 16384

static void comm_free(struct comm *c)
{
    for (int i = 0; i < 2; i++)
        eddy__free(c->rd[i].buf);
    eddy__free(c);
}

/* A helper's end: the last one of an abandoned block frees it. */
static intptr_t helper_done(struct comm *c, intptr_t rc)
{
    c->live--;
    if (c->abandoned && c->live == 0)
        comm_free(c);
    return rc;
}

static intptr_t comm_writer(void *arg)
{
    struct comm *c = arg;
    intptr_t rc = 0;
    /* abandoned is checked before each write: the input belongs to a caller
     * that may have returned. */
    while (c->input_off < c->input_len && !c->abandoned) {
        struct iovec iov = {.iov_base = (void *)(c->input + c->input_off),
                            .iov_len = c->input_len - c->input_off};
        ssize_t n = eddy__fd_try_writev(c->in_fd, false, &iov, 1);
        if (n == -EAGAIN) {
            int w = eddy_fd_wait(c->in_fd, EDDY_FD_WRITE);
            if (w < 0) {
                rc = w;
                break;
            }
            continue;
        }
        if (n == -EPIPE)
            break; /* the child closed its stdin: the rest is not wanted */
        if (n < 0) {
            rc = n;
            break;
        }
        c->input_off += (size_t)n;
    }
    eddy_fd_close(c->in_fd);
    c->in_fd = -1;
    return helper_done(c, rc);
}

static int reader_grow(struct comm_reader *r)
{
    size_t cap = r->cap * 2;
    /* One byte beyond limit for the NUL. */
    if (cap > r->limit + 1 || cap < r->cap)
        cap = r->limit + 1;
    char *b = eddy__realloc(r->buf, cap);
    if (!b)
        return -ENOMEM;
    r->buf = b;
    r->cap = cap;
    return 0;
}

static intptr_t read_until_eof(struct comm_reader *r)
{
    for (;;) {
        if (r->cap - r->len < 2) {
            int rc = reader_grow(r);
            if (rc < 0)
                return rc;
        }
        ssize_t n = eddy_fd_read(r->fd, r->buf + r->len, r->cap - 1 - r->len);
        if (n == 0)
            return 0;
        if (n < 0)
            return n;
        r->len += (size_t)n;
        if (r->len >= r->limit)
            return -EMSGSIZE;
    }
}

static intptr_t comm_reader(void *arg, int which)
{
    struct comm *c = arg;
    struct comm_reader *r = &c->rd[which];
    intptr_t rc = read_until_eof(r);
    eddy_fd_close(r->fd);
    r->fd = -1;
    return helper_done(c, rc);
}

static intptr_t comm_stdout(void *arg)
{
    return comm_reader(arg, 0);
}

static intptr_t comm_stderr(void *arg)
{
    return comm_reader(arg, 1);
}

EDDY_API void eddy_process_output_fini(struct eddy_process_output *out)
{
    if (!out)
        return;
    eddy__free(out->out_buf);
    eddy__free(out->err_buf);
    *out = (struct eddy_process_output){0};
}

/* Allocates the block and its first read buffers; takes nothing from p. */
static struct comm *comm_create(struct eddy_process *p, const void *input, size_t input_len,
                                size_t max_output_bytes)
{
    struct comm *c = eddy__malloc(sizeof(*c));
    if (!c)
        return NULL;
    *c = (struct comm){.in_fd = -1, .input = input, .input_len = input_len};
    size_t limit = max_output_bytes < SIZE_MAX - 1 ? max_output_bytes + 1 : SIZE_MAX - 1;
    for (int i = 0; i < 2; i++) {
        struct comm_reader *r = &c->rd[i];
        r->fd = -1;
        r->limit = limit;
        if (p->fds[i + 1] < 0)
            continue;
        r->cap = limit + 1 < COMM_FIRST_BUFFER ? limit + 1 : COMM_FIRST_BUFFER;
        r->buf = eddy__malloc(r->cap);
        if (!r->buf) {
            comm_free(c);
            return NULL;
        }
    }
    return c;
}

/* Starts the helpers, moving the pipe fds from p into the block. Returns 0
 * or the spawn's error (the group is then cancelled by the caller's join). */
static int comm_start(struct comm *c, struct eddy_process *p, struct eddy_group *g)
{
    static eddy_task_fn *const readers[2] = {comm_stdout, comm_stderr};
    if (c->input_len > 0) {
        c->in_fd = eddy_process_take_fd(p, 0);
        int rc = eddy_group_spawn(g, comm_writer, c, NULL, NULL);
        if (rc < 0) {
            eddy_fd_close(c->in_fd);
            return rc;
        }
        c->live++;
    } else {
        /* No input: the child sees end of file at once. */
        eddy_process_close_fd(p, 0);
    }
    for (int i = 0; i < 2; i++) {
        if (!c->rd[i].buf)
            continue;
        c->rd[i].fd = eddy_process_take_fd(p, i + 1);
        int rc = eddy_group_spawn(g, readers[i], c, NULL, NULL);
        if (rc < 0) {
            eddy_fd_close(c->rd[i].fd);
            return rc;
        }
        c->live++;
    }
    return 0;
}

/* Hands the reader's bytes to the caller, NUL-terminated. */
static void take_output(struct comm_reader *r, char **buf, size_t *len)
{
    if (!r->buf)
        return;
    r->buf[r->len] = 0;
    *buf = r->buf;
    *len = r->len;
    r->buf = NULL;
}

EDDY_API int eddy_process_communicate(struct eddy_process *p, const void *input, size_t input_len,
                                      size_t max_output_bytes, struct eddy_process_output *out)
{
    if (!p || !out || !eddy_task_current() || (input_len > 0 && (!input || p->fds[0] < 0)))
        return -EINVAL;
    *out = (struct eddy_process_output){0};
    struct comm *c = comm_create(p, input, input_len, max_output_bytes);
    if (!c)
        return -ENOMEM;
    struct eddy_group *g;
    int rc = eddy_group_create(&g);
    if (rc < 0) {
        comm_free(c);
        return rc;
    }
    rc = comm_start(c, p, g);
    if (rc < 0)
        eddy_group_cancel(g);
    int join = eddy_group_join(g);
    if (rc == 0)
        rc = join;
    if (c->live > 0) {
        /* The join could not wait (timeout scope expired): the helpers,
         * cancelled, free the block when the last one ends. */
        c->abandoned = true;
        return rc;
    }
    if (rc == 0)
        rc = eddy_process_wait(p, -1, &out->returncode);
    if (rc == 0) {
        take_output(&c->rd[0], &out->out_buf, &out->out_len);
        take_output(&c->rd[1], &out->err_buf, &out->err_len);
    }
    comm_free(c);
    return rc;
}

EDDY_API int eddy_process_run(const char *const argv[], const struct eddy_process_opts *opts,
                              const void *input, size_t input_len, size_t max_output_bytes,
                              struct eddy_process_output *out)
{
    if (!out || !eddy_task_current())
        return -EINVAL;
    *out = (struct eddy_process_output){0};
    struct eddy_process_opts o;
    if (opts) {
        o = *opts;
    } else {
        o = EDDY_PROCESS_OPTS_DEFAULT;
        o.stdin_mode = input_len > 0 ? EDDY_STDIO_PIPE : EDDY_STDIO_NULL;
        o.stdout_mode = EDDY_STDIO_PIPE;
        o.stderr_mode = EDDY_STDIO_PIPE;
    }
    struct eddy_process *p;
    int rc = eddy_process_spawn(argv, &o, &p);
    if (rc < 0)
        return rc;
    rc = eddy_process_communicate(p, input, input_len, max_output_bytes, out);
    eddy_process_destroy(p);
    return rc;
}

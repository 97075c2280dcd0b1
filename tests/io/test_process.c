/*
 * tests/io/test_process.c: pipes and subprocesses (io/process.c), against
 * real programs: /bin/sh, cat, head, dd, sleep and python3.
 *
 * Covers eddy_pipe's flags; pipe writes that return -EPIPE instead of
 * raising SIGPIPE (and plain fd writes that do raise it); exit codes and
 * deaths by signal as returncodes; -ENOENT, -EACCES and -ENOEXEC from the
 * exec, with no fd or zombie left behind; waits with a timeout, cancelled
 * waits, two waiters, kill, poll, destroy of a running process; every
 * stdio mode (pipe, /dev/null, a given fd, inherit, 2>&1), low fd numbers
 * as sources, cwd and environment, the child's signal mask, dispositions
 * and inherited fds; communicate with several MiB on stdin, stdout and
 * stderr at once, a child that closes stdin early, the output limit, a
 * timeout scope and cancellation; eddy_process_run; many processes from
 * many tasks at once; and a line-by-line dialogue with python3 whose
 * stdout is read through a buffered stream. The exit-watching tests run twice: with a pidfd
 * and with the waitpid polling used where pidfd_open is missing.
 *
 * Under Valgrind the children themselves are not traced (they are system
 * programs, and tracing python3 would take minutes); eddy's code between
 * vfork and exec still runs under it.
 */
#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "io/internal.h"
#include "tests/reactor/reactor_test.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

#define PYTHON "/usr/bin/python3"

static void setup(void)
{
#ifdef VALGRIND_CLO_CHANGE
    if (eddy_test_under_valgrind()) {
        VALGRIND_CLO_CHANGE("--trace-children=no");
        /* A child whose exec failed would print a leak report of the
         * test runner's state as it exits. */
        VALGRIND_CLO_CHANGE("--child-silent-after-fork=yes");
    }
#endif
}

#define PROC_TEST(name) Test(process, name, .timeout = EDDY_TEST_TIMEOUT_S, .init = setup)

/* ---- helpers ------------------------------------------------------------------ */

static struct eddy_process *spawn_ok(const char *const *argv, const struct eddy_process_opts *o)
{
    struct eddy_process *p = NULL;
    int rc = eddy_process_spawn(argv, o, &p);
    cr_assert_eq(rc, 0, "spawn %s: %s", argv[0], eddy_strerror(rc));
    cr_assert_not_null(p);
    return p;
}

static struct eddy_process_opts piped(bool in, bool out, bool err)
{
    struct eddy_process_opts o = EDDY_PROCESS_OPTS_DEFAULT;
    if (in)
        o.stdin_mode = EDDY_STDIO_PIPE;
    if (out)
        o.stdout_mode = EDDY_STDIO_PIPE;
    if (err)
        o.stderr_mode = EDDY_STDIO_PIPE;
    return o;
}

/* Reads fd to end of file into buf (NUL-terminated). Returns the length. */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        cr_assert_lt(len, cap - 1, "more output than expected");
        ssize_t n = eddy_fd_read(fd, buf + len, cap - 1 - len);
        cr_assert_geq(n, 0, "read: %s", eddy_strerror((int)n));
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = 0;
    return len;
}

static int wait_rc(struct eddy_process *p)
{
    int code = INT_MIN;
    int rc = eddy_process_wait(p, -1, &code);
    cr_assert_eq(rc, 0, "wait: %s", eddy_strerror(rc));
    return code;
}

static int open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* True when this process has no child left (none running, no zombie). */
static bool no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

static char tmpdir[64];

static const char *make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/eddy-process-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    return tmpdir;
}

static void write_file(const char *path, const char *content, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(content, f);
    fclose(f);
    cr_assert_eq(chmod(path, mode), 0);
}

/* ---- pipes -------------------------------------------------------------------- */

PROC_TEST(pipe_ends_are_non_blocking_and_close_on_exec)
{
    int fds[2];
    cr_assert_eq(eddy_pipe(fds), 0);
    for (int i = 0; i < 2; i++) {
        cr_expect(fcntl(fds[i], F_GETFL) & O_NONBLOCK);
        cr_expect(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
    }
    cr_expect_eq(write(fds[1], "x", 1), 1);
    char c;
    cr_expect_eq(read(fds[0], &c, 1), 1);
    cr_expect_eq(read(fds[0], &c, 1), -1, "an empty pipe does not block");
    cr_expect_eq(errno, EAGAIN);
    close(fds[0]);
    close(fds[1]);
    cr_expect_eq(eddy_pipe(NULL), -EINVAL);
}

static intptr_t write_to_closed_pipe(void *arg)
{
    (void)arg;
    int fds[2];
    cr_assert_eq(eddy_pipe(fds), 0);
    eddy_fd_close(fds[0]);
    ssize_t rc = eddy_fd_write_all(fds[1], "hello", 5);
    eddy_fd_close(fds[1]);
    return rc;
}

PROC_TEST(pipe_write_all_to_a_gone_reader_returns_epipe_and_raises_no_sigpipe)
{
    /* SIGPIPE has its default action here: a raised one would end the test. */
    cr_assert_eq(signal(SIGPIPE, SIG_DFL), SIG_DFL);
    cr_expect_eq(rt_run(write_to_closed_pipe, NULL), -EPIPE);
    sigset_t pending;
    sigpending(&pending);
    cr_expect_not(sigismember(&pending, SIGPIPE), "the SIGPIPE was consumed");
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    cr_expect_not(sigismember(&mask, SIGPIPE), "the mask is restored");
}

PROC_TEST(pipe_write_all_leaves_sigpipe_pending_when_the_thread_blocks_it)
{
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    cr_expect_eq(rt_run(write_to_closed_pipe, NULL), -EPIPE);
    sigset_t pending;
    sigpending(&pending);
    cr_expect(sigismember(&pending, SIGPIPE), "as a plain write would leave it");
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    cr_expect(sigismember(&mask, SIGPIPE), "still blocked");
}

static intptr_t fd_write_all_to_closed_pipe(void *arg)
{
    (void)arg;
    int fds[2];
    eddy_pipe(fds);
    close(fds[0]);
    return eddy_fd_write_all(fds[1], "hello", 5);
}

static void fd_write_all_child(void *arg)
{
    (void)arg;
    signal(SIGPIPE, SIG_DFL);
    intptr_t result = 0;
    EDDY_CHILD_CHECK(eddy_run(fd_write_all_to_closed_pipe, NULL, NULL, &result) == 0);
    EDDY_CHILD_CHECK(result == -EPIPE);
}

PROC_TEST(fd_write_all_to_a_gone_reader_is_epipe_even_with_sigpipe_at_its_default)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(fd_write_all_child, NULL, &child), 0);
    eddy_assert_child_ok(child);
}

#define BIG_PIPE_WRITE (1u << 20)

struct pipe_pair {
    int fds[2];
    size_t got;
    uint64_t sum;
};

static intptr_t drain_pipe(void *arg)
{
    struct pipe_pair *pp = arg;
    char buf[7000]; /* not a divisor of the pipe size: odd splits */
    for (;;) {
        ssize_t n = eddy_fd_read(pp->fds[0], buf, sizeof(buf));
        if (n <= 0)
            return n;
        for (ssize_t i = 0; i < n; i++)
            pp->sum += (unsigned char)buf[i] * (pp->got + (size_t)i + 1);
        pp->got += (size_t)n;
    }
}

static intptr_t write_big(void *arg)
{
    struct pipe_pair *pp = arg;
    cr_assert_eq(eddy_pipe(pp->fds), 0);
    unsigned char *data = malloc(BIG_PIPE_WRITE);
    uint64_t sum = 0;
    for (size_t i = 0; i < BIG_PIPE_WRITE; i++) {
        data[i] = (unsigned char)(i * 7 + i / 4096);
        sum += data[i] * (i + 1);
    }
    struct eddy_task *reader;
    cr_assert_eq(eddy_task_spawn(drain_pipe, pp, NULL, &reader), 0);
    cr_expect_eq(eddy_fd_write_all(pp->fds[1], data, BIG_PIPE_WRITE), BIG_PIPE_WRITE);
    eddy_fd_close(pp->fds[1]);
    intptr_t r;
    cr_assert_eq(eddy_task_join(reader, &r), 0);
    cr_expect_eq(r, 0);
    cr_expect_eq(pp->got, BIG_PIPE_WRITE);
    cr_expect_eq(pp->sum, sum, "bytes arrive in order");
    eddy_fd_close(pp->fds[0]);
    free(data);
    return 0;
}

PROC_TEST(pipe_write_all_parks_until_the_reader_task_drains_the_pipe)
{
    struct pipe_pair pp = {0};
    cr_assert_eq(rt_run(write_big, &pp), 0);
}

/* ---- exit status ------------------------------------------------------------------ */

static intptr_t exit_codes(void *arg)
{
    (void)arg;
    static const char *const scripts[] = {"exit 0", "exit 3", "exit 255", "kill -TERM $$",
                                          "kill -KILL $$"};
    static const int expected[] = {0, 3, 255, -SIGTERM, -SIGKILL};
    for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
        const char *argv[] = {"/bin/sh", "-c", scripts[i], NULL};
        struct eddy_process *p = spawn_ok(argv, NULL);
        cr_expect_gt(eddy_process_pid(p), 0);
        cr_expect_eq(wait_rc(p), expected[i], "%s", scripts[i]);
        /* Reaped: the code stays, and waiting again returns it at once. */
        int again = INT_MIN;
        cr_expect_eq(eddy_process_wait(p, 0, &again), 0);
        cr_expect_eq(again, expected[i]);
        cr_expect_eq(eddy_process_poll(p, &again), 0);
        cr_expect_eq(again, expected[i]);
        cr_expect_eq(eddy_process_kill(p, SIGTERM), -ESRCH, "a reaped process");
        eddy_process_destroy(p);
    }
    cr_expect(no_children());
    return 0;
}

PROC_TEST(exit_codes_and_deaths_by_signal_come_back_as_returncodes)
{
    cr_assert_eq(rt_run(exit_codes, NULL), 0);
}

PROC_TEST(exit_codes_and_deaths_by_signal_come_back_when_exits_are_polled)
{
    eddy__process_use_pidfd(false);
    cr_assert_eq(rt_run(exit_codes, NULL), 0);
}

static intptr_t kill_and_poll(void *arg)
{
    (void)arg;
    const char *argv[] = {"sleep", "30", NULL};
    struct eddy_process *p = spawn_ok(argv, NULL);
    int code = INT_MIN;
    cr_expect_eq(eddy_process_poll(p, &code), -EAGAIN);
    cr_expect_eq(eddy_process_kill(p, 0), 0, "signal 0 checks the process");
    cr_expect_eq(eddy_process_kill(p, -1), -EINVAL);
    cr_expect_eq(eddy_process_kill(p, 100000), -EINVAL);
    cr_expect_eq(eddy_process_kill(p, SIGKILL), 0);
    cr_expect_eq(wait_rc(p), -SIGKILL);
    cr_expect_eq(eddy_process_kill(p, SIGKILL), -ESRCH);
    eddy_process_destroy(p);
    return 0;
}

PROC_TEST(kill_ends_a_sleeping_program_and_wait_reports_the_signal)
{
    cr_assert_eq(rt_run(kill_and_poll, NULL), 0);
}

PROC_TEST(kill_ends_a_sleeping_program_when_exits_are_polled)
{
    eddy__process_use_pidfd(false);
    cr_assert_eq(rt_run(kill_and_poll, NULL), 0);
}

/* ---- exec failures --------------------------------------------------------------- */

static void expect_spawn_error(const char *const *argv, const struct eddy_process_opts *o, int err)
{
    struct eddy_process *p = (struct eddy_process *)(uintptr_t)1;
    int rc = eddy_process_spawn(argv, o, &p);
    cr_expect_eq(rc, err, "%s: got %s, expected %s", argv[0], eddy_strerror(rc),
                 eddy_strerror(err));
    cr_expect_eq(p, (struct eddy_process *)(uintptr_t)1, "*out untouched on failure");
}

PROC_TEST(exec_failures_come_back_as_errno_with_nothing_left_behind)
{
    const char *dir = make_tmpdir();
    char plain[128], script[128];
    snprintf(plain, sizeof(plain), "%s/plain", dir);
    snprintf(script, sizeof(script), "%s/noshebang", dir);
    write_file(plain, "#!/bin/sh\necho hi\n", 0644);         /* no execute bit */
    write_file(script, "echo this is not a binary\n", 0755); /* no #! line */

    struct eddy_process_opts all_piped = piped(true, true, true);
    int fds_before = open_fd_count();

    const char *missing[] = {"/nonexistent/eddy-prog", NULL};
    expect_spawn_error(missing, NULL, -ENOENT);
    const char *missing_in_path[] = {"eddy-no-such-program", NULL};
    expect_spawn_error(missing_in_path, &all_piped, -ENOENT);
    const char *not_exec[] = {plain, NULL};
    expect_spawn_error(not_exec, &all_piped, -EACCES);
    const char *a_dir[] = {dir, NULL};
    expect_spawn_error(a_dir, NULL, -EACCES);
    const char *bad_format[] = {script, NULL};
    expect_spawn_error(bad_format, &all_piped, -ENOEXEC);
    struct eddy_process_opts bad_cwd = all_piped;
    bad_cwd.cwd = "/nonexistent/dir";
    const char *sh[] = {"/bin/sh", "-c", "exit 0", NULL};
    expect_spawn_error(sh, &bad_cwd, -ENOENT);

    cr_expect_eq(open_fd_count(), fds_before, "no fd left open");
    cr_expect(no_children(), "no child and no zombie left");
    unlink(plain);
    unlink(script);
    rmdir(dir);
}

PROC_TEST(a_name_without_slash_is_searched_in_path_skipping_entries_that_fail)
{
    const char *dir = make_tmpdir();
    char prog[128], path[256];
    snprintf(prog, sizeof(prog), "%s/eddy-hello", dir);
    write_file(prog, "#!/bin/sh\nexit 7\n", 0755);
    /* A missing directory and a non-executable file first, as execvp skips. */
    char shadow_dir[128], shadow[160];
    snprintf(shadow_dir, sizeof(shadow_dir), "%s/sub", dir);
    mkdir(shadow_dir, 0755);
    snprintf(shadow, sizeof(shadow), "%s/eddy-hello", shadow_dir);
    write_file(shadow, "#!/bin/sh\nexit 1\n", 0644);
    snprintf(path, sizeof(path), "/nonexistent:%s:%s:/usr/bin:/bin", shadow_dir, dir);
    setenv("PATH", path, 1);
    const char *argv[] = {"eddy-hello", NULL};
    struct eddy_process *p = spawn_ok(argv, NULL);
    /* Spawn and poll need no loop. */
    int code = INT_MIN;
    for (int i = 0; i < 10000 && eddy_process_poll(p, &code) == -EAGAIN; i++)
        rt_thread_sleep_ms(1);
    cr_expect_eq(code, 7);
    eddy_process_destroy(p);

    /* Only the non-executable one found: -EACCES, as execvp reports. */
    snprintf(path, sizeof(path), "/nonexistent:%s", shadow_dir);
    setenv("PATH", path, 1);
    expect_spawn_error(argv, NULL, -EACCES);
    unlink(shadow);
    unlink(prog);
    rmdir(shadow_dir);
    rmdir(dir);
}

PROC_TEST(spawn_rejects_bad_arguments)
{
    struct eddy_process *p;
    const char *sh[] = {"/bin/sh", "-c", "exit 0", NULL};
    const char *empty[] = {NULL};
    const char *empty_name[] = {"", NULL};
    cr_expect_eq(eddy_process_spawn(NULL, NULL, &p), -EINVAL);
    cr_expect_eq(eddy_process_spawn(empty, NULL, &p), -EINVAL);
    cr_expect_eq(eddy_process_spawn(empty_name, NULL, &p), -EINVAL);
    cr_expect_eq(eddy_process_spawn(sh, NULL, NULL), -EINVAL);
    struct eddy_process_opts o = EDDY_PROCESS_OPTS_DEFAULT;
    o.stdin_mode = EDDY_STDIO_STDOUT;
    cr_expect_eq(eddy_process_spawn(sh, &o, &p), -EINVAL, "2>&1 is for stderr only");
    o = EDDY_PROCESS_OPTS_DEFAULT;
    o.stdout_mode = EDDY_STDIO_STDOUT;
    cr_expect_eq(eddy_process_spawn(sh, &o, &p), -EINVAL);
    o = EDDY_PROCESS_OPTS_DEFAULT;
    o.stdout_mode = EDDY_STDIO_FD;
    cr_expect_eq(eddy_process_spawn(sh, &o, &p), -EINVAL, "EDDY_STDIO_FD needs an fd");
    o = EDDY_PROCESS_OPTS_DEFAULT;
    o.stderr_mode = (enum eddy_stdio)99;
    cr_expect_eq(eddy_process_spawn(sh, &o, &p), -EINVAL);
    o = EDDY_PROCESS_OPTS_DEFAULT;
    o.stdin_mode = EDDY_STDIO_FD;
    o.stdin_fd = 1000000;
    cr_expect_eq(eddy_process_spawn(sh, &o, &p), -EBADF, "a given fd that is not open");
    cr_expect(no_children());

    /* Calls that need a task, or a process. */
    p = spawn_ok(sh, NULL);
    int code;
    cr_expect_eq(eddy_process_wait(p, -1, &code), -EINVAL, "outside a task");
    struct eddy_process_output out;
    cr_expect_eq(eddy_process_communicate(p, NULL, 0, 100, &out), -EINVAL);
    cr_expect_eq(eddy_process_run(sh, NULL, NULL, 0, 100, &out), -EINVAL);
    cr_expect_eq(eddy_process_fd(p, 3), -EINVAL);
    cr_expect_eq(eddy_process_fd(p, -1), -EINVAL);
    cr_expect_eq(eddy_process_fd(p, 1), -EBADF, "not a pipe");
    cr_expect_eq(eddy_process_close_fd(p, 0), -EBADF);
    cr_expect_eq(eddy_process_poll(NULL, &code), -EINVAL);
    cr_expect_eq(eddy_process_kill(NULL, SIGTERM), -EINVAL);
    eddy_process_destroy(p);
    eddy_process_destroy(NULL);
    cr_expect(no_children());
}

/* ---- waiting ---------------------------------------------------------------------- */

static intptr_t wait_with_timeout(void *arg)
{
    (void)arg;
    const char *argv[] = {"cat", NULL};
    struct eddy_process_opts o = piped(true, false, false);
    struct eddy_process *p = spawn_ok(argv, &o);
    const int64_t timeout = 50 * EDDY_NS_PER_MS;
    /* The loop's clock, from which the timeout counts. */
    int64_t t0 = eddy_now_ns();
    int code = INT_MIN;
    cr_expect_eq(eddy_process_wait(p, timeout, &code), -ETIMEDOUT);
    int64_t took = eddy_clock_ns() - t0;
    cr_expect_geq(took, timeout, "not early: %lld ns", (long long)took);
    cr_expect_leq(took, timeout + rt_late_tolerance_ns(), "late: %lld ns", (long long)took);
    cr_expect_eq(code, INT_MIN, "nothing stored on timeout");
    cr_expect_eq(eddy_process_poll(p, &code), -EAGAIN, "cat still runs");
    cr_expect_eq(eddy_process_wait(p, 0, &code), -ETIMEDOUT, "timeout 0 polls");

    /* A timeout scope ends the wait too. */
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, timeout);
    cr_expect_eq(eddy_process_wait(p, -1, &code), -ETIMEDOUT);
    cr_expect_eq(eddy_timeout_exit(&scope), -ETIMEDOUT);

    /* End of input ends cat. */
    cr_expect_eq(eddy_process_close_fd(p, 0), 0);
    cr_expect_eq(eddy_process_close_fd(p, 0), -EBADF, "closed already");
    cr_expect_eq(eddy_process_wait(p, 10 * EDDY_NS_PER_SEC, &code), 0);
    cr_expect_eq(code, 0);
    eddy_process_destroy(p);
    return 0;
}

PROC_TEST(wait_with_a_timeout_returns_etimedout_and_leaves_the_process_running)
{
    cr_assert_eq(rt_run(wait_with_timeout, NULL), 0);
}

PROC_TEST(wait_with_a_timeout_works_when_exits_are_polled)
{
    eddy__process_use_pidfd(false);
    cr_assert_eq(rt_run(wait_with_timeout, NULL), 0);
}

struct waiters {
    struct eddy_process *p;
    int codes[2];
};

static intptr_t waiter(void *arg)
{
    struct waiters *w = arg;
    int slot = w->codes[0] == INT_MIN ? 0 : 1;
    w->codes[slot] = INT_MAX;
    int code;
    int rc = eddy_process_wait(w->p, -1, &code);
    w->codes[slot] = rc == 0 ? code : rc;
    return rc;
}

static intptr_t two_waiters_and_cancel(void *arg)
{
    (void)arg;
    const char *argv[] = {"cat", NULL};
    struct eddy_process_opts o = piped(true, false, false);
    struct waiters w = {.codes = {INT_MIN, INT_MIN}};
    w.p = spawn_ok(argv, &o);

    /* A cancelled waiter leaves; the process keeps running. */
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(waiter, &w, NULL, &t), 0);
    eddy_sleep_ms(5);
    cr_assert_eq(eddy_task_cancel(t), 0);
    intptr_t r;
    cr_assert_eq(eddy_task_join(t, &r), 0);
    cr_expect_eq(r, -ECANCELED);
    cr_expect_eq(eddy_process_poll(w.p, NULL), -EAGAIN);

    /* Two waiters both get the code. */
    w.codes[0] = w.codes[1] = INT_MIN;
    struct eddy_task *a, *b;
    cr_assert_eq(eddy_task_spawn(waiter, &w, NULL, &a), 0);
    cr_assert_eq(eddy_task_spawn(waiter, &w, NULL, &b), 0);
    eddy_sleep_ms(5);
    cr_expect_eq(w.codes[0], INT_MAX, "parked");
    cr_expect_eq(w.codes[1], INT_MAX, "parked");
    cr_expect_eq(eddy_process_kill(w.p, SIGTERM), 0);
    cr_assert_eq(eddy_task_join(a, &r), 0);
    cr_expect_eq(r, 0);
    cr_assert_eq(eddy_task_join(b, &r), 0);
    cr_expect_eq(r, 0);
    cr_expect_eq(w.codes[0], -SIGTERM);
    cr_expect_eq(w.codes[1], -SIGTERM);
    eddy_process_destroy(w.p);
    return 0;
}

PROC_TEST(every_waiter_gets_the_returncode_and_a_cancelled_one_leaves)
{
    cr_assert_eq(rt_run(two_waiters_and_cancel, NULL), 0);
}

PROC_TEST(every_waiter_gets_the_returncode_when_exits_are_polled)
{
    eddy__process_use_pidfd(false);
    cr_assert_eq(rt_run(two_waiters_and_cancel, NULL), 0);
}

static intptr_t destroy_running(void *arg)
{
    (void)arg;
    const char *argv[] = {"sleep", "30", NULL};
    struct waiters w = {.codes = {INT_MIN, INT_MIN}};
    w.p = spawn_ok(argv, NULL);
    pid_t pid = eddy_process_pid(w.p);
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(waiter, &w, NULL, &t), 0);
    eddy_sleep_ms(5);
    cr_expect_eq(w.codes[0], INT_MAX, "parked");
    eddy_process_destroy(w.p);
    intptr_t r;
    cr_assert_eq(eddy_task_join(t, &r), 0);
    cr_expect_eq(r, -EBADF, "the waiter learns that the process is gone");
    cr_expect_eq(waitpid(pid, NULL, WNOHANG), -1, "reaped by destroy");
    cr_expect_eq(errno, ECHILD);
    cr_expect(no_children());
    return 0;
}

PROC_TEST(destroy_kills_and_reaps_a_running_process_and_wakes_its_waiter)
{
    cr_assert_eq(rt_run(destroy_running, NULL), 0);
}

PROC_TEST(destroy_kills_and_reaps_a_running_process_when_exits_are_polled)
{
    eddy__process_use_pidfd(false);
    cr_assert_eq(rt_run(destroy_running, NULL), 0);
}

PROC_TEST(a_child_reaped_behind_eddys_back_gives_echild)
{
    const char *argv[] = {"/bin/sh", "-c", "exit 4", NULL};
    struct eddy_process *p = spawn_ok(argv, NULL);
    cr_assert_eq(waitpid(eddy_process_pid(p), NULL, 0), eddy_process_pid(p));
    cr_expect_eq(eddy_process_poll(p, NULL), -ECHILD);
    cr_expect_eq(eddy_process_poll(p, NULL), -ECHILD, "and stays so");
    cr_expect_eq(eddy_process_kill(p, SIGTERM), -ESRCH, "no pid that could be recycled");
    eddy_process_destroy(p);
}

/* ---- standard fds ---------------------------------------------------------------- */

static intptr_t stdio_modes(void *arg)
{
    (void)arg;
    char buf[256];
    /* Separate pipes. */
    const char *both[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 2", NULL};
    struct eddy_process_opts o = piped(false, true, true);
    struct eddy_process *p = spawn_ok(both, &o);
    int out = eddy_process_fd(p, 1), err = eddy_process_fd(p, 2);
    cr_assert_geq(out, 0);
    cr_assert_geq(err, 0);
    cr_expect(fcntl(out, F_GETFL) & O_NONBLOCK, "parent ends are non-blocking");
    cr_expect(fcntl(out, F_GETFD) & FD_CLOEXEC, "and close-on-exec");
    read_all(out, buf, sizeof(buf));
    cr_expect_str_eq(buf, "out\n");
    read_all(err, buf, sizeof(buf));
    cr_expect_str_eq(buf, "err\n");
    cr_expect_eq(wait_rc(p), 2);
    eddy_process_destroy(p);

    /* 2>&1 */
    o = piped(false, true, false);
    o.stderr_mode = EDDY_STDIO_STDOUT;
    p = spawn_ok(both, &o);
    cr_expect_eq(eddy_process_fd(p, 2), -EBADF);
    read_all(eddy_process_fd(p, 1), buf, sizeof(buf));
    cr_expect_str_eq(buf, "out\nerr\n");
    cr_expect_eq(wait_rc(p), 2);
    eddy_process_destroy(p);

    /* /dev/null in and out: cat sees end of file at once. */
    const char *cat[] = {"cat", NULL};
    o = piped(false, false, true);
    o.stdin_mode = EDDY_STDIO_NULL;
    o.stdout_mode = EDDY_STDIO_NULL;
    p = spawn_ok(cat, &o);
    read_all(eddy_process_fd(p, 2), buf, sizeof(buf));
    cr_expect_str_eq(buf, "");
    cr_expect_eq(wait_rc(p), 0);
    eddy_process_destroy(p);

    /* A given fd as stdin (a file), the parent's end taken over. */
    const char *dir = make_tmpdir();
    char path[128];
    snprintf(path, sizeof(path), "%s/input", dir);
    write_file(path, "from a file\n", 0644);
    int file = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(file, 0);
    o = piped(false, true, false);
    o.stdin_mode = EDDY_STDIO_FD;
    o.stdin_fd = file;
    p = spawn_ok(cat, &o);
    close(file);
    int taken = eddy_process_take_fd(p, 1);
    cr_assert_geq(taken, 0);
    cr_expect_eq(eddy_process_fd(p, 1), -EBADF, "taken");
    cr_expect_eq(eddy_process_take_fd(p, 1), -EBADF);
    read_all(taken, buf, sizeof(buf));
    cr_expect_str_eq(buf, "from a file\n");
    eddy_fd_close(taken);
    cr_expect_eq(wait_rc(p), 0);
    eddy_process_destroy(p);
    unlink(path);
    rmdir(dir);
    return 0;
}

PROC_TEST(pipes_dev_null_given_fds_and_stderr_into_stdout_reach_the_child)
{
    cr_assert_eq(rt_run(stdio_modes, NULL), 0);
}

static intptr_t cwd_and_env(void *arg)
{
    (void)arg;
    const char *dir = make_tmpdir();
    char real[PATH_MAX];
    cr_assert_not_null(realpath(dir, real));
    char *env[] = {"EDDY_X=forty two", "LC_ALL=C", NULL};
    struct eddy_process_opts o = piped(false, true, false);
    o.cwd = dir;
    o.env = env;
    const char *argv[] = {"/bin/sh", "-c", "pwd -P; echo \"$EDDY_X\"; echo \"${HOME-unset}\"",
                          NULL};
    struct eddy_process *p = spawn_ok(argv, &o);
    char buf[PATH_MAX + 128], expected[PATH_MAX + 128];
    read_all(eddy_process_fd(p, 1), buf, sizeof(buf));
    snprintf(expected, sizeof(expected), "%s\nforty two\nunset\n", real);
    cr_expect_str_eq(buf, expected);
    cr_expect_eq(wait_rc(p), 0);
    eddy_process_destroy(p);
    rmdir(dir);
    return 0;
}

PROC_TEST(the_child_runs_in_the_given_cwd_with_exactly_the_given_environment)
{
    cr_assert_eq(rt_run(cwd_and_env, NULL), 0);
}

static intptr_t signal_state(void *arg)
{
    (void)arg;
    /* The loop thread blocks SIGTERM (as eddy_signal_wait leaves it) and the
     * program ignores SIGPIPE (as servers do); the child gets neither. */
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    const char *argv[] = {"/bin/sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status", NULL};
    struct eddy_process_opts o = piped(false, true, false);
    struct eddy_process *p = spawn_ok(argv, &o);
    char buf[512];
    read_all(eddy_process_fd(p, 1), buf, sizeof(buf));
    cr_expect_eq(wait_rc(p), 0);
    eddy_process_destroy(p);
    unsigned long long blk = ~0ull, ign = 0;
    char *s = strstr(buf, "SigBlk:");
    cr_assert_not_null(s, "%s", buf);
    blk = strtoull(s + 7, NULL, 16);
    s = strstr(buf, "SigIgn:");
    cr_assert_not_null(s, "%s", buf);
    ign = strtoull(s + 7, NULL, 16);
    cr_expect_eq(blk, 0, "empty mask in the child: %s", buf);
    cr_expect_eq(ign & (1ull << (SIGPIPE - 1)), 0, "SIGPIPE at its default: %s", buf);
    cr_expect_neq(ign & (1ull << (SIGHUP - 1)), 0, "other ignored signals stay: %s", buf);
    return 0;
}

PROC_TEST(the_child_starts_with_an_empty_mask_and_sigpipe_at_its_default)
{
    cr_assert_eq(rt_run(signal_state, NULL), 0);
}

static intptr_t fds_not_inherited(void *arg)
{
    (void)arg;
    int extra[2];
    cr_assert_eq(eddy_pipe(extra), 0);
    struct eddy_process_opts o = piped(true, true, true);
    char script[256];
    snprintf(script, sizeof(script),
             "for f in %d %d; do [ -e /proc/self/fd/$f ] && echo open $f; done; "
             "[ -p /proc/self/fd/0 ] && [ -p /proc/self/fd/1 ] && [ -p /proc/self/fd/2 ] "
             "&& echo pipes",
             extra[0], extra[1]);
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    struct eddy_process *p = spawn_ok(argv, &o);
    char buf[256];
    read_all(eddy_process_fd(p, 1), buf, sizeof(buf));
    cr_expect_str_eq(buf, "pipes\n", "eddy's fds stay out of the child");
    cr_expect_eq(wait_rc(p), 0);
    eddy_process_destroy(p);
    eddy_fd_close(extra[0]);
    eddy_fd_close(extra[1]);

    /* The child's ends are blocking, as programs expect. */
    const char *py[] = {PYTHON, "-c",
                        "import os, fcntl\n"
                        "print(all(fcntl.fcntl(f, fcntl.F_GETFL) & os.O_NONBLOCK == 0 "
                        "for f in (0, 1, 2)))",
                        NULL};
    p = spawn_ok(py, &o);
    read_all(eddy_process_fd(p, 1), buf, sizeof(buf));
    cr_expect_str_eq(buf, "True\n");
    cr_expect_eq(wait_rc(p), 0);
    eddy_process_destroy(p);
    return 0;
}

PROC_TEST(only_the_standard_fds_reach_the_child_and_they_are_blocking)
{
    cr_assert_eq(rt_run(fds_not_inherited, NULL), 0);
}

/* In a forked child: fd 0 is a pipe's write end that the caller gives as
 * the child's stdout while stdin is a new pipe. A naive dup2 order would
 * put stdin's pipe onto 0 first and then copy that onto 1. */
static intptr_t low_fd_sources(void *arg)
{
    int *sink = arg;
    const char *argv[] = {"/bin/sh", "-c", "read line; echo \"got $line\"", NULL};
    struct eddy_process_opts o = piped(true, false, false);
    o.stdout_mode = EDDY_STDIO_FD;
    o.stdout_fd = 0;
    struct eddy_process *p;
    EDDY_CHILD_CHECK(eddy_process_spawn(argv, &o, &p) == 0);
    EDDY_CHILD_CHECK(eddy_fd_write_all(eddy_process_fd(p, 0), "hi\n", 3) == 3);
    eddy_process_close_fd(p, 0);
    int code = -1;
    EDDY_CHILD_CHECK(eddy_process_wait(p, -1, &code) == 0 && code == 0);
    eddy_process_destroy(p);
    close(0);
    char buf[64] = {0};
    ssize_t n = read(sink[0], buf, sizeof(buf) - 1);
    EDDY_CHILD_CHECK(n == 7 && strcmp(buf, "got hi\n") == 0);
    return 0;
}

static void low_fd_child(void *arg)
{
    (void)arg;
    int sink[2];
    EDDY_CHILD_CHECK(pipe(sink) == 0);
    EDDY_CHILD_CHECK(dup2(sink[1], 0) == 0);
    close(sink[1]);
    intptr_t r = -1;
    EDDY_CHILD_CHECK(eddy_run(low_fd_sources, sink, NULL, &r) == 0 && r == 0);
}

PROC_TEST(a_given_fd_below_3_is_not_overwritten_by_another_stdio_redirection)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(low_fd_child, NULL, &child), 0);
    eddy_assert_child_ok(child);
}

static intptr_t inherit_stdout(void *arg)
{
    int *sink = arg;
    const char *argv[] = {"/bin/sh", "-c", "echo inherited", NULL};
    struct eddy_process *p;
    EDDY_CHILD_CHECK(eddy_process_spawn(argv, NULL, &p) == 0);
    int code = -1;
    EDDY_CHILD_CHECK(eddy_process_wait(p, -1, &code) == 0 && code == 0);
    eddy_process_destroy(p);
    char buf[64] = {0};
    ssize_t n = read(sink[0], buf, sizeof(buf) - 1);
    EDDY_CHILD_CHECK(n == 10 && strcmp(buf, "inherited\n") == 0);
    return 0;
}

static void inherit_child(void *arg)
{
    (void)arg;
    int sink[2];
    EDDY_CHILD_CHECK(pipe(sink) == 0);
    EDDY_CHILD_CHECK(dup2(sink[1], 1) == 1);
    close(sink[1]);
    intptr_t r = -1;
    EDDY_CHILD_CHECK(eddy_run(inherit_stdout, sink, NULL, &r) == 0 && r == 0);
}

PROC_TEST(inherited_stdout_is_the_parents_own)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(inherit_child, NULL, &child), 0);
    eddy_assert_child_ok(child);
}

/* ---- communicate -------------------------------------------------------------------- */

static intptr_t communicate_cat(void *arg)
{
    (void)arg;
    const char *argv[] = {"cat", NULL};
    struct eddy_process_opts o = piped(true, true, true);
    struct eddy_process *p = spawn_ok(argv, &o);
    struct eddy_process_output out;
    cr_assert_eq(eddy_process_communicate(p, "line 1\nline 2\n", 14, 1024, &out), 0);
    cr_expect_str_eq(out.out_buf, "line 1\nline 2\n");
    cr_expect_eq(out.out_len, 14);
    cr_expect_str_eq(out.err_buf, "", "an empty stderr is an empty string");
    cr_expect_eq(out.err_len, 0);
    cr_expect_eq(out.returncode, 0);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(eddy_process_fd(p, i), -EBADF, "communicate used the pipes up");
    eddy_process_output_fini(&out);
    cr_expect_null(out.out_buf);
    eddy_process_destroy(p);

    /* No input: stdin is closed at once; no stderr pipe: NULL. */
    o = piped(true, true, false);
    p = spawn_ok(argv, &o);
    cr_assert_eq(eddy_process_communicate(p, NULL, 0, 1024, &out), 0);
    cr_expect_str_eq(out.out_buf, "");
    cr_expect_null(out.err_buf);
    cr_expect_eq(out.returncode, 0);
    eddy_process_output_fini(&out);
    eddy_process_destroy(p);

    /* Input without a stdin pipe. */
    o = piped(false, true, false);
    p = spawn_ok(argv, &o);
    cr_expect_eq(eddy_process_communicate(p, "x", 1, 1024, &out), -EINVAL);
    cr_expect_eq(eddy_process_communicate(NULL, NULL, 0, 1024, &out), -EINVAL);
    cr_expect_eq(eddy_process_communicate(p, NULL, 0, 1024, NULL), -EINVAL);
    eddy_process_destroy(p);
    return 0;
}

PROC_TEST(communicate_feeds_stdin_and_collects_stdout_and_stderr_of_cat)
{
    cr_assert_eq(rt_run(communicate_cat, NULL), 0);
}

struct big_io {
    const char *const *argv;
    size_t in_len;
    size_t err_len;    /* expected stderr length */
    bool err_is_upper; /* stderr: the input in upper case; else zeros */
};

static intptr_t big_both_pipes(void *arg)
{
    struct big_io *b = arg;
    char *input = malloc(b->in_len);
    for (size_t i = 0; i < b->in_len; i++)
        input[i] = (char)('a' + (i * 31 + i / 1000) % 26);
    struct eddy_process_opts o = piped(true, true, true);
    struct eddy_process *p = spawn_ok(b->argv, &o);
    struct eddy_process_output out;
    int rc = eddy_process_communicate(p, input, b->in_len, 64u << 20, &out);
    cr_assert_eq(rc, 0, "communicate: %s", eddy_strerror(rc));
    cr_expect_eq(out.returncode, 0);
    cr_assert_eq(out.out_len, b->in_len);
    cr_expect_eq(memcmp(out.out_buf, input, b->in_len), 0, "stdout is stdin");
    cr_assert_eq(out.err_len, b->err_len);
    bool err_ok = true;
    for (size_t i = 0; i < b->err_len && err_ok; i++) {
        char want = b->err_is_upper ? (char)(input[i] - 'a' + 'A') : 0;
        err_ok = out.err_buf[i] == want;
    }
    cr_expect(err_ok, "stderr content");
    eddy_process_output_fini(&out);
    eddy_process_destroy(p);
    free(input);
    return 0;
}

static size_t big_len(void)
{
    return rt_scale(6u << 20, 1u << 20);
}

PROC_TEST(communicate_moves_mebibytes_through_stdin_stdout_and_stderr_of_python_at_once)
{
    /* Echoes every chunk to stdout and its upper-case copy to stderr as it
     * reads, so all three pipes are full at once. */
    const char *argv[] = {PYTHON, "-c",
                          "import sys\n"
                          "i, o, e = sys.stdin.buffer, sys.stdout.buffer, sys.stderr.buffer\n"
                          "while True:\n"
                          "    b = i.read1(65536)\n"
                          "    if not b: break\n"
                          "    o.write(b); e.write(b.upper())\n",
                          NULL};
    struct big_io b = {.argv = argv, .in_len = big_len(), .err_is_upper = true};
    b.err_len = b.in_len;
    cr_assert_eq(rt_run(big_both_pipes, &b), 0);
}

PROC_TEST(communicate_moves_mebibytes_through_cat_while_dd_fills_stderr)
{
    char script[128];
    size_t len = big_len();
    snprintf(script, sizeof(script),
             "dd if=/dev/zero bs=65536 count=%zu status=none >&2 & cat; wait", len / 65536);
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    struct big_io b = {.argv = argv, .in_len = len, .err_len = len, .err_is_upper = false};
    cr_assert_eq(rt_run(big_both_pipes, &b), 0);
}

static intptr_t early_close(void *arg)
{
    (void)arg;
    size_t len = 4u << 20;
    char *input = malloc(len);
    memset(input, 'z', len);
    struct eddy_process_output out;
    /* head exits after 10 bytes; true never reads at all. */
    const char *head[] = {"head", "-c", "10", NULL};
    int rc = eddy_process_run(head, NULL, input, len, 1024, &out);
    cr_assert_eq(rc, 0, "%s", eddy_strerror(rc));
    cr_expect_str_eq(out.out_buf, "zzzzzzzzzz");
    cr_expect_eq(out.returncode, 0);
    eddy_process_output_fini(&out);
    const char *t[] = {"true", NULL};
    rc = eddy_process_run(t, NULL, input, len, 1024, &out);
    cr_assert_eq(rc, 0, "%s", eddy_strerror(rc));
    cr_expect_eq(out.out_len, 0);
    cr_expect_eq(out.returncode, 0);
    eddy_process_output_fini(&out);
    free(input);
    return 0;
}

PROC_TEST(a_child_that_closes_stdin_early_ends_communicate_cleanly_without_sigpipe)
{
    cr_assert_eq(signal(SIGPIPE, SIG_DFL), SIG_DFL);
    cr_assert_eq(rt_run(early_close, NULL), 0);
    sigset_t pending;
    sigpending(&pending);
    cr_expect_not(sigismember(&pending, SIGPIPE));
}

static intptr_t output_limit(void *arg)
{
    (void)arg;
    struct eddy_process_output out;
    const char *exact[] = {"head", "-c", "1000", "/dev/zero", NULL};
    cr_assert_eq(eddy_process_run(exact, NULL, NULL, 0, 1000, &out), 0, "exactly the limit");
    cr_expect_eq(out.out_len, 1000);
    eddy_process_output_fini(&out);
    const char *over[] = {"head", "-c", "1001", "/dev/zero", NULL};
    out.out_buf = (char *)1;
    cr_expect_eq(eddy_process_run(over, NULL, NULL, 0, 1000, &out), -EMSGSIZE);
    cr_expect_null(out.out_buf, "no buffer after an error");
    /* Far over, on stderr: the reader stops early, the child is not
     * waited for; destroy ends it. */
    const char *flood[] = {"/bin/sh", "-c", "cat /dev/zero >&2", NULL};
    struct eddy_process_opts o = piped(false, true, true);
    struct eddy_process *p = spawn_ok(flood, &o);
    cr_expect_eq(eddy_process_communicate(p, NULL, 0, 100000, &out), -EMSGSIZE);
    eddy_process_destroy(p);
    /* A limit of 0 allows only silence. */
    const char *quiet[] = {"true", NULL};
    cr_expect_eq(eddy_process_run(quiet, NULL, NULL, 0, 0, &out), 0);
    eddy_process_output_fini(&out);
    const char *one[] = {"printf", "x", NULL};
    cr_expect_eq(eddy_process_run(one, NULL, NULL, 0, 0, &out), -EMSGSIZE);
    return 0;
}

PROC_TEST(output_above_the_limit_gives_emsgsize)
{
    cr_assert_eq(rt_run(output_limit, NULL), 0);
}

static intptr_t communicate_sleep(void *arg)
{
    struct eddy_process **pp = arg;
    const char *argv[] = {"sleep", "30", NULL};
    struct eddy_process_opts o = piped(true, true, true);
    *pp = spawn_ok(argv, &o);
    struct eddy_process_output out;
    return eddy_process_communicate(*pp, "input", 5, 1024, &out);
}

static intptr_t communicate_timeout(void *arg)
{
    (void)arg;
    struct eddy_process *p;
    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, 50 * EDDY_NS_PER_MS);
    int64_t t0 = eddy_clock_ns();
    cr_expect_eq(communicate_sleep(&p), -ETIMEDOUT);
    cr_expect_leq(eddy_clock_ns() - t0, 50 * EDDY_NS_PER_MS + rt_late_tolerance_ns());
    cr_expect_eq(eddy_timeout_exit(&scope), -ETIMEDOUT);
    cr_expect_eq(eddy_process_poll(p, NULL), -EAGAIN, "the process keeps running");
    eddy_process_destroy(p);

    /* Cancelled: the helpers are cancelled and waited for. */
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(communicate_sleep, &p, NULL, &t), 0);
    eddy_sleep_ms(20);
    eddy_task_cancel(t);
    intptr_t r;
    cr_assert_eq(eddy_task_join(t, &r), 0);
    cr_expect_eq(r, -ECANCELED);
    cr_expect_eq(eddy_process_poll(p, NULL), -EAGAIN);
    eddy_process_destroy(p);
    return 0;
}

PROC_TEST(communicate_ends_with_its_timeout_scope_or_cancellation_and_the_process_runs_on)
{
    cr_assert_eq(rt_run(communicate_timeout, NULL), 0);
    cr_expect(no_children());
}

static intptr_t run_variants(void *arg)
{
    (void)arg;
    struct eddy_process_output out;
    const char *sh[] = {"/bin/sh", "-c", "read x; echo \"<$x>\"; echo warn >&2; exit 5", NULL};
    cr_assert_eq(eddy_process_run(sh, NULL, "abc\n", 4, 1024, &out), 0);
    cr_expect_str_eq(out.out_buf, "<abc>\n");
    cr_expect_str_eq(out.err_buf, "warn\n");
    cr_expect_eq(out.returncode, 5);
    eddy_process_output_fini(&out);
    /* Without input, stdin is /dev/null: read fails, x stays empty. */
    cr_assert_eq(eddy_process_run(sh, NULL, NULL, 0, 1024, &out), 0);
    cr_expect_str_eq(out.out_buf, "<>\n");
    eddy_process_output_fini(&out);
    const char *missing[] = {"eddy-no-such-program", NULL};
    cr_expect_eq(eddy_process_run(missing, NULL, NULL, 0, 1024, &out), -ENOENT);
    cr_expect_eq(eddy_process_run(sh, NULL, NULL, 0, 1024, NULL), -EINVAL);
    return 0;
}

PROC_TEST(run_spawns_communicates_and_destroys_in_one_call)
{
    cr_assert_eq(rt_run(run_variants, NULL), 0);
    cr_expect(no_children());
}

/* ---- many at once ----------------------------------------------------------------- */

struct many {
    int index;
    int failures;
};

static intptr_t one_of_many(void *arg)
{
    struct many *m = arg;
    char input[64], expected[64];
    snprintf(input, sizeof(input), "task %d\n", m->index);
    snprintf(expected, sizeof(expected), "task %d\n", m->index);
    char code[16];
    snprintf(code, sizeof(code), "%d", m->index % 200);
    const char *argv[] = {"/bin/sh", "-c", "cat; exit $1", "sh", code, NULL};
    struct eddy_process_output out;
    int rc = eddy_process_run(argv, NULL, input, strlen(input), 1024, &out);
    if (rc != 0 || strcmp(out.out_buf, expected) != 0 || out.returncode != m->index % 200)
        m->failures++;
    eddy_process_output_fini(&out);
    return rc;
}

static intptr_t many_processes(void *arg)
{
    (void)arg;
    size_t n = rt_scale(64, 8);
    struct many *m = calloc(n, sizeof(*m));
    struct eddy_task **t = calloc(n, sizeof(*t));
    for (size_t i = 0; i < n; i++) {
        m[i].index = (int)i;
        cr_assert_eq(eddy_task_spawn(one_of_many, &m[i], NULL, &t[i]), 0);
    }
    for (size_t i = 0; i < n; i++) {
        intptr_t r;
        cr_assert_eq(eddy_task_join(t[i], &r), 0);
        cr_expect_eq(r, 0, "task %zu: %s", i, eddy_strerror((int)r));
        cr_expect_eq(m[i].failures, 0, "task %zu", i);
    }
    free(m);
    free(t);
    return 0;
}

PROC_TEST(many_tasks_run_their_own_subprocesses_at_once)
{
    cr_assert_eq(rt_run(many_processes, NULL), 0);
    cr_expect(no_children());
}

PROC_TEST(many_tasks_run_their_own_subprocesses_at_once_when_exits_are_polled)
{
    eddy__process_use_pidfd(false);
    cr_assert_eq(rt_run(many_processes, NULL), 0);
    cr_expect(no_children());
}

/* ---- streams over the pipes ---------------------------------------------------------- */

static intptr_t dialogue(void *arg)
{
    (void)arg;
    /* A line-by-line dialogue with python3: each line sent gets its answer
     * before the next is written, so neither side could buffer it all. */
    const char *argv[] = {PYTHON, "-u", "-c",
                          "import sys\n"
                          "for line in sys.stdin:\n"
                          "    print(line.strip().upper(), len(line.strip()))\n"
                          "print('done')\n",
                          NULL};
    struct eddy_process_opts o = piped(true, true, false);
    struct eddy_process *p = spawn_ok(argv, &o);
    /* stdout moves into the stream, which closes it. */
    struct eddy_stream *out;
    cr_assert_eq(eddy_stream_open(eddy_process_take_fd(p, 1), NULL, &out), 0);
    int in = eddy_process_fd(p, 0);
    char line[128], expected[128];
    static const char *const words[] = {"alpha", "beta", "gamma delta", "x"};
    for (size_t i = 0; i < 4; i++) {
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "%s\n", words[i]);
        cr_assert_eq(eddy_fd_write_all(in, msg, (size_t)n), n);
        ssize_t got = eddy_stream_read_line(out, line, sizeof(line));
        cr_assert_gt(got, 0, "read_line: %s", eddy_strerror((int)got));
        size_t wlen = strlen(words[i]);
        for (size_t k = 0; k < wlen; k++)
            expected[k] = (char)toupper((unsigned char)words[i][k]);
        snprintf(expected + wlen, sizeof(expected) - wlen, " %zu\n", wlen);
        cr_expect_str_eq(line, expected);
    }
    cr_assert_eq(eddy_process_close_fd(p, 0), 0, "end of input");
    cr_expect_gt(eddy_stream_read_line(out, line, sizeof(line)), 0);
    cr_expect_str_eq(line, "done\n");
    cr_expect_eq(eddy_stream_read_line(out, line, sizeof(line)), -ENODATA, "end of output");
    cr_expect_eq(eddy_stream_close(out), 0);
    cr_expect_eq(wait_rc(p), 0);
    eddy_process_destroy(p);
    return 0;
}

PROC_TEST(a_stream_over_stdout_reads_the_answers_of_a_line_by_line_dialogue_with_python)
{
    cr_assert_eq(rt_run(dialogue, NULL), 0);
}

/*
 * tests/reactor/test_debug.c: the EDDY_DEBUG=1 reports of reactor/debug.c.
 *
 * Each scenario runs in a forked child (eddy_test_fork) whose environment
 * sets or clears EDDY_DEBUG. The child sends its own stderr to a memfd while
 * the loop runs, checks the complete text itself, and only then writes to
 * the real stderr: the first line the parent sees is either nothing (all
 * checks passed) or the failed check together with what eddy printed.
 *
 * Covers: a task running longer than EDDY_SLOW_MS without suspending is
 * named (and a quick one is not; the default threshold is 100 ms); finished
 * tasks nobody joined and tasks still pending when the loop ends are named
 * (detached and joined tasks are not); without EDDY_DEBUG, or with
 * EDDY_DEBUG=0, nothing at all is printed.
 */
#include <sys/mman.h>

#include "tests/reactor/reactor_test.h"

/* How long the hog runs without suspending, and the threshold set for it. */
#define HOG_MS 200
#define SLOW_MS 80
#define SLOW_MS_TEXT "80"
/* Well under the default threshold of 100 ms, with room for a busy machine. */
#define MEDIUM_MS 40

/* ---- capturing the child's stderr --------------------------------------------- */

/* The child's real stderr while a capture runs (-1 outside one). */
static int g_real_stderr = -1;

/* EDDY_CHILD_CHECK, but one that still reaches the parent during a capture. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            dprintf(g_real_stderr >= 0 ? g_real_stderr : STDERR_FILENO,                            \
                    "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                       \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

struct capture {
    int memfd;
    int saved_stderr;
    char text[8192];
};

static void capture_begin(struct capture *c)
{
    fflush(stderr);
    c->memfd = memfd_create("eddy-test-stderr", MFD_CLOEXEC);
    CHECK(c->memfd >= 0);
    c->saved_stderr = dup(STDERR_FILENO);
    CHECK(c->saved_stderr >= 0);
    g_real_stderr = c->saved_stderr;
    CHECK(dup2(c->memfd, STDERR_FILENO) == STDERR_FILENO);
}

static void capture_end(struct capture *c)
{
    fflush(stderr);
    CHECK(dup2(c->saved_stderr, STDERR_FILENO) == STDERR_FILENO);
    close(c->saved_stderr);
    g_real_stderr = -1;
    ssize_t n = pread(c->memfd, c->text, sizeof(c->text) - 1, 0);
    CHECK(n >= 0);
    c->text[n] = '\0';
    close(c->memfd);
}

/* Fails the child with one line: the check, then the captured text. */
static void child_fail(const struct capture *c, const char *what, const char *needle)
{
    char flat[sizeof(c->text)];
    size_t i = 0;
    for (; c->text[i]; i++)
        flat[i] = c->text[i] == '\n' ? '|' : c->text[i];
    flat[i] = '\0';
    fprintf(stderr, "%s \"%s\" in stderr: \"%s\"\n", what, needle, flat);
    fflush(stderr);
    _exit(1);
}

static void expect_report(const struct capture *c, const char *needle)
{
    if (!strstr(c->text, needle))
        child_fail(c, "expected", needle);
}

static void expect_no_report(const struct capture *c, const char *needle)
{
    if (strstr(c->text, needle))
        child_fail(c, "did not expect", needle);
}

static void set_debug(const char *value)
{
    if (value)
        setenv("EDDY_DEBUG", value, 1);
    else
        unsetenv("EDDY_DEBUG");
}

/* ---- task bodies ------------------------------------------------------------------ */

static void spin_ms(int64_t ms)
{
    int64_t until = eddy_clock_ns() + ms * EDDY_NS_PER_MS;
    while (eddy_clock_ns() < until)
        ;
}

static intptr_t hog(void *arg)
{
    spin_ms((int64_t)(intptr_t)arg);
    return eddy_task_yield();
}

static intptr_t polite(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++) {
        int rc = eddy_task_yield();
        if (rc < 0)
            return rc;
    }
    return 0;
}

static intptr_t return_zero(void *arg)
{
    (void)arg;
    return 0;
}

static int g_sleeper_rc;

static intptr_t sleeper(void *arg)
{
    (void)arg;
    g_sleeper_rc = eddy_sleep_until(EDDY_DEADLINE_NEVER);
    return 0;
}

/* ---- slow tasks ------------------------------------------------------------------- */

static intptr_t run_hog_and_polite(void *arg)
{
    (void)arg;
    struct eddy_task *h, *p;
    CHECK(eddy_task_spawn(hog, (void *)(intptr_t)HOG_MS, &(struct eddy_task_opts){.name = "hog"},
                          &h) == 0);
    CHECK(eddy_task_spawn(polite, NULL, &(struct eddy_task_opts){.name = "polite"}, &p) == 0);
    CHECK(eddy_task_join(h, NULL) == 0);
    CHECK(eddy_task_join(p, NULL) == 0);
    return 0;
}

static void slow_task_child(void *arg)
{
    (void)arg;
    set_debug("1");
    setenv("EDDY_SLOW_MS", SLOW_MS_TEXT, 1);
    struct capture c;
    capture_begin(&c);
    intptr_t result = -1;
    int rc = eddy_run(run_hog_and_polite, NULL, NULL, &result);
    capture_end(&c);
    CHECK(rc == 0 && result == 0);
    expect_report(&c, "eddy: task 'hog' ran ");
    expect_report(&c, " ms without suspending (EDDY_SLOW_MS=" SLOW_MS_TEXT ")");
    CHECK(SLOW_MS < HOG_MS);
    expect_no_report(&c, "'polite'");
    expect_no_report(&c, "'main'");
    /* The report states how long it ran: at least the time it spun. */
    double ran_ms = 0;
    const char *at = strstr(c.text, "task 'hog' ran ");
    CHECK(sscanf(at, "task 'hog' ran %lf ms", &ran_ms) == 1);
    CHECK(ran_ms >= HOG_MS);
    /* One line per slow slice. */
    CHECK(strstr(at + 1, "task 'hog' ran ") == NULL);
}

EDDY_TEST(debug, a_task_running_longer_than_eddy_slow_ms_is_reported_by_name)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(slow_task_child, NULL, &child), 0);
    eddy_assert_child_ok(child);
    cr_expect_str_empty(child.first_line, "%s", child.first_line);
}

static intptr_t run_medium_and_long(void *arg)
{
    (void)arg;
    struct eddy_task *m, *l;
    CHECK(eddy_task_spawn(hog, (void *)(intptr_t)MEDIUM_MS,
                          &(struct eddy_task_opts){.name = "medium"}, &m) == 0);
    CHECK(eddy_task_spawn(hog, (void *)(intptr_t)HOG_MS, &(struct eddy_task_opts){.name = "long"},
                          &l) == 0);
    CHECK(eddy_task_join(m, NULL) == 0);
    CHECK(eddy_task_join(l, NULL) == 0);
    return 0;
}

static void default_threshold_child(void *arg)
{
    (void)arg;
    set_debug("1");
    unsetenv("EDDY_SLOW_MS");
    struct capture c;
    capture_begin(&c);
    intptr_t result = -1;
    int rc = eddy_run(run_medium_and_long, NULL, NULL, &result);
    capture_end(&c);
    CHECK(rc == 0 && result == 0);
    expect_report(&c, "eddy: task 'long' ran ");
    expect_report(&c, "(EDDY_SLOW_MS=100)");
    expect_no_report(&c, "'medium'");
}

EDDY_TEST(debug, the_default_threshold_is_100_ms)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(default_threshold_child, NULL, &child), 0);
    eddy_assert_child_ok(child);
    cr_expect_str_empty(child.first_line, "%s", child.first_line);
}

/* ---- tasks left at loop end ---------------------------------------------------------- */

static intptr_t leave_orphans(void *arg)
{
    (void)arg;
    struct eddy_task *orphan, *joined, *pending;
    CHECK(eddy_task_spawn(return_zero, NULL, &(struct eddy_task_opts){.name = "orphan"}, &orphan) ==
          0);
    CHECK(eddy_task_spawn(return_zero, NULL, &(struct eddy_task_opts){.name = "joined"}, &joined) ==
          0);
    CHECK(eddy_task_spawn(return_zero, NULL,
                          &(struct eddy_task_opts){.name = "loner", .detached = true}, NULL) == 0);
    CHECK(eddy_task_spawn(sleeper, NULL, &(struct eddy_task_opts){.name = "sleeper"}, &pending) ==
          0);
    CHECK(eddy_task_join(joined, NULL) == 0);
    CHECK(eddy_task_yield() == 0);
    CHECK(eddy_task_is_done(orphan));
    return 0;
}

static void loop_end_child(void *arg)
{
    const char *debug = arg;
    set_debug(debug);
    unsetenv("EDDY_SLOW_MS");
    g_sleeper_rc = 1;
    struct capture c;
    capture_begin(&c);
    intptr_t result = -1;
    int rc = eddy_run(leave_orphans, NULL, NULL, &result);
    capture_end(&c);
    CHECK(rc == 0 && result == 0);
    CHECK(g_sleeper_rc == -ECANCELED);
    expect_report(&c, "eddy: task 'orphan' finished but was never joined\n");
    expect_report(&c, "eddy: task 'sleeper' still pending when the loop ended\n");
    expect_no_report(&c, "'joined'");
    expect_no_report(&c, "'loner'");
    expect_no_report(&c, "'main'");
}

EDDY_TEST(debug, tasks_never_joined_and_tasks_still_pending_are_reported_at_loop_end)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(loop_end_child, "1", &child), 0);
    eddy_assert_child_ok(child);
    cr_expect_str_empty(child.first_line, "%s", child.first_line);
}

static void manual_loop_child(void *arg)
{
    (void)arg;
    set_debug("yes");
    g_sleeper_rc = 1;
    struct capture c;
    capture_begin(&c);
    struct eddy_loop *loop;
    CHECK(eddy_loop_create(NULL, &loop) == 0);
    struct eddy_task *pending, *orphan;
    CHECK(eddy_loop_spawn(loop, sleeper, NULL, &(struct eddy_task_opts){.name = "parked"},
                          &pending) == 0);
    CHECK(eddy_loop_spawn(loop, return_zero, NULL, &(struct eddy_task_opts){.name = "done"},
                          &orphan) == 0);
    CHECK(eddy_loop_run_until(loop, orphan) == 0);
    eddy_loop_destroy(loop);
    capture_end(&c);
    CHECK(g_sleeper_rc == -ECANCELED);
    expect_report(&c, "eddy: task 'parked' still pending when the loop ended\n");
    expect_report(&c, "eddy: task 'done' finished but was never joined\n");
}

EDDY_TEST(debug, eddy_loop_destroy_reports_what_is_left_too)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(manual_loop_child, NULL, &child), 0);
    eddy_assert_child_ok(child);
    cr_expect_str_empty(child.first_line, "%s", child.first_line);
}

/* ---- off ----------------------------------------------------------------------------- */

static void quiet_child(void *arg)
{
    const char *debug = arg;
    set_debug(debug);
    setenv("EDDY_SLOW_MS", SLOW_MS_TEXT, 1);
    g_sleeper_rc = 1;
    struct capture c;
    capture_begin(&c);
    intptr_t r1 = -1, r2 = -1;
    int rc1 = eddy_run(run_hog_and_polite, NULL, NULL, &r1);
    int rc2 = eddy_run(leave_orphans, NULL, NULL, &r2);
    capture_end(&c);
    CHECK(rc1 == 0 && r1 == 0 && rc2 == 0 && r2 == 0);
    CHECK(g_sleeper_rc == -ECANCELED);
    if (c.text[0] != '\0')
        child_fail(&c, "expected nothing, not even", "");
}

EDDY_TEST(debug, without_eddy_debug_nothing_is_printed)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(quiet_child, NULL, &child), 0);
    eddy_assert_child_ok(child);
    cr_expect_str_empty(child.first_line, "%s", child.first_line);
}

EDDY_TEST(debug, eddy_debug_0_prints_nothing)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(quiet_child, "0", &child), 0);
    eddy_assert_child_ok(child);
    cr_expect_str_empty(child.first_line, "%s", child.first_line);
}

EDDY_TEST(debug, an_empty_eddy_debug_prints_nothing)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(quiet_child, "", &child), 0);
    eddy_assert_child_ok(child);
    cr_expect_str_empty(child.first_line, "%s", child.first_line);
}

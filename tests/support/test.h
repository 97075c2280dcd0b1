/*
 * tests/support/test.h: what every eddy test file shares.
 *
 *   - EDDY_TEST(suite, name): a Criterion test with the default timeout.
 *     Criterion already runs each test in its own process; the timeout makes
 *     a hang fail instead of stalling the suite. Names read as sentences:
 *     EDDY_TEST(timer, cancel_after_fire_is_noop).
 *   - eddy_test_fork(): runs a function in a forked child with its stderr
 *     captured, and reports how the child ended and the first line it wrote
 *     to stderr. Tests that expect a crash (stack overflow, misuse abort)
 *     check both, as STYLE.md section 9 asks.
 *   - small probes the alloc and coro tests need: page residency (mincore),
 *     whether the suite runs under Valgrind, and the floating-point rounding
 *     mode.
 *
 * The helpers live in tests/support/support.c and are linked into the one
 * test binary with every tests/<layer>/test_*.c.
 */
#ifndef EDDY_TESTS_SUPPORT_TEST_H
#define EDDY_TESTS_SUPPORT_TEST_H

#include <stdbool.h>
#include <stddef.h>

#include <criterion/criterion.h>

/* Seconds a test may run before Criterion kills it and reports a timeout.
 * Generous because `make valgrind` runs the same binary 20-50 times slower;
 * tests that do a lot of work scale it down under Valgrind (see
 * eddy_test_under_valgrind) instead of raising this. */
#define EDDY_TEST_TIMEOUT_S 60.0

#define EDDY_TEST(suite, name) Test(suite, name, .timeout = EDDY_TEST_TIMEOUT_S)

/* How a child started by eddy_test_fork ended. */
struct eddy_test_child {
    int signal;           /* the signal that killed it, 0 when it exited */
    int exit_status;      /* its exit status, -1 when a signal killed it */
    char first_line[512]; /* first line of its stderr, without the newline ("" if none) */
};

/*
 * Runs fn(arg) in a forked child whose stderr goes to a pipe, waits for it
 * and fills *out. The child exits with status 0 when fn returns (through
 * _exit, so no atexit handler or sanitizer leak check of the parent's state
 * runs twice). Everything the child writes to stderr is read; only the first
 * line is kept. Returns 0, or -errno when the pipe or the fork failed.
 */
int eddy_test_fork(void (*fn)(void *arg), void *arg, struct eddy_test_child *out);

/* A check inside a child of eddy_test_fork, where Criterion's asserts do
 * not reach the runner: on failure it writes "file:line: expr" as the
 * child's first stderr line and exits with status 1. */
#define EDDY_CHILD_CHECK(cond)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            eddy_test_child_fail(__FILE__, __LINE__, #cond);                                       \
    } while (0)
_Noreturn void eddy_test_child_fail(const char *file, int line, const char *expr);

/* Asserts (in the parent) that a child ran to the end: exit status 0, no
 * signal. Shows the child's first stderr line otherwise. */
#define eddy_assert_child_ok(child)                                                                \
    cr_assert((child).signal == 0 && (child).exit_status == 0,                                     \
              "child ended with signal %d, status %d: %s", (child).signal, (child).exit_status,    \
              (child).first_line)

/* Number of pages of [addr, addr + len) that are resident (mincore), or -1
 * when mincore fails. addr must be page-aligned. */
long eddy_test_resident_pages(const void *addr, size_t len);

/* The page size. */
size_t eddy_test_page_size(void);

/* True when the tests run under Valgrind (`make valgrind`). */
bool eddy_test_under_valgrind(void);

/*
 * The rounding mode of the calling thread's floating-point unit, as the
 * FE_* constants of <fenv.h>. These stand in for fesetround/fegetround,
 * which glibc keeps in libm, and the test binary is not linked with -lm.
 * x86-64 has two control registers (MXCSR for SSE, the x87 control word for
 * long double); set changes both, get returns -1 when they disagree.
 * aarch64 has one (FPCR).
 */
void eddy_test_set_rounding(int fe_mode);
int eddy_test_get_rounding(void);

#endif

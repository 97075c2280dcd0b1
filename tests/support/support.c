/*
 * tests/support/support.c: the helpers declared in tests/support/test.h.
 *
 * eddy_test_fork keeps the child simple on purpose: the child only moves its
 * stderr onto a pipe, runs the function and _exits, so that whatever the
 * test expects (a SIGSEGV on a guard page, eddy's overflow report and
 * abort) is the only thing that can end it.
 */
#include "tests/support/test.h"

#include <errno.h>
#include <fenv.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif

int eddy_test_fork(void (*fn)(void *arg), void *arg, struct eddy_test_child *out)
{
    memset(out, 0, sizeof(*out));
    int fds[2];
    if (pipe(fds) != 0)
        return -errno;
    /* Anything buffered now would otherwise be written twice. */
    fflush(stdout);
    fflush(stderr);
#ifdef HAVE_VALGRIND_H
    /* Under Valgrind the child is expected to die or to _exit with the test
     * runner's state half-built; its leak report and "Process terminating"
     * lines would only be noise. Its errors still count: a child with one
     * exits with --error-exitcode and the test sees that status. The
     * setting stays for later forks of this test's process too. */
    VALGRIND_CLO_CHANGE("--child-silent-after-fork=yes");
#endif
    pid_t pid = fork();
    if (pid < 0) {
        int rc = -errno;
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    if (pid == 0) {
        close(fds[0]);
        if (dup2(fds[1], STDERR_FILENO) < 0)
            _exit(127);
        close(fds[1]);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);

    /* Read to EOF so the child never blocks on a full pipe; keep line 1. */
    size_t kept = 0;
    bool line_done = false;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n && !line_done; i++) {
            if (buf[i] == '\n')
                line_done = true;
            else if (kept + 1 < sizeof(out->first_line))
                out->first_line[kept++] = buf[i];
        }
    }
    out->first_line[kept] = '\0';
    close(fds[0]);

    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    if (WIFSIGNALED(status)) {
        out->signal = WTERMSIG(status);
        out->exit_status = -1;
    } else {
        out->signal = 0;
        out->exit_status = WEXITSTATUS(status);
    }
    return 0;
}

void eddy_test_child_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, expr);
    fflush(stderr);
    _exit(1);
}

size_t eddy_test_page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

long eddy_test_resident_pages(const void *addr, size_t len)
{
    size_t page = eddy_test_page_size();
    size_t npages = (len + page - 1) / page;
    unsigned char *vec = calloc(npages ? npages : 1, 1);
    if (!vec)
        return -1;
    long resident = -1;
    if (mincore((void *)(uintptr_t)addr, len, vec) == 0) {
        resident = 0;
        for (size_t i = 0; i < npages; i++)
            resident += vec[i] & 1;
    }
    free(vec);
    return resident;
}

bool eddy_test_under_valgrind(void)
{
#ifdef HAVE_VALGRIND_H
    if (RUNNING_ON_VALGRIND)
        return true;
#endif
    const char *env = getenv("EDDY_UNDER_VALGRIND");
    return env && *env && strcmp(env, "0") != 0;
}

#if defined(__x86_64__)
/* The rounding-control field: bits 10-11 of the x87 control word (where the
 * FE_* values of <fenv.h> already sit) and bits 13-14 of MXCSR. */
#define X87_RC_MASK 0x0c00u
#define MXCSR_RC_SHIFT 3

static unsigned x87_get_cw(void)
{
    uint16_t cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return cw;
}

static void x87_set_cw(unsigned cw)
{
    uint16_t v = (uint16_t)cw;
    __asm__ volatile("fldcw %0" : : "m"(v));
}

void eddy_test_set_rounding(int fe_mode)
{
    unsigned mode = (unsigned)fe_mode & X87_RC_MASK;
    x87_set_cw((x87_get_cw() & ~X87_RC_MASK) | mode);
    _mm_setcsr((_mm_getcsr() & ~(X87_RC_MASK << MXCSR_RC_SHIFT)) | (mode << MXCSR_RC_SHIFT));
}

int eddy_test_get_rounding(void)
{
    unsigned x87 = x87_get_cw() & X87_RC_MASK;
    unsigned sse = (_mm_getcsr() >> MXCSR_RC_SHIFT) & X87_RC_MASK;
    return x87 == sse ? (int)x87 : -1;
}
#elif defined(__aarch64__)
/* FPCR.RMode, bits 22-23, where the FE_* values of <fenv.h> already sit. */
#define FPCR_RMODE_MASK 0x00c00000u

void eddy_test_set_rounding(int fe_mode)
{
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = (fpcr & ~(uint64_t)FPCR_RMODE_MASK) | ((unsigned)fe_mode & FPCR_RMODE_MASK);
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
}

int eddy_test_get_rounding(void)
{
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return (int)(fpcr & FPCR_RMODE_MASK);
}
#else
#error "eddy's tests know the rounding-mode registers of x86_64 and aarch64 only"
#endif

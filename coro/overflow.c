/*
 * coro/overflow.c: naming the coroutine whose stack overflowed.
 *
 * A guarded stack that overflows faults on its PROT_NONE guard page. The
 * SIGSEGV handler runs on a per-thread alternate signal stack (the faulting
 * stack has no room left), checks whether the fault address lies in the
 * guard page of the running coroutine, and if so writes one line naming it
 * and aborts. Any other fault is handed to the handler that was installed
 * before eddy's, or to the default action, so eddy never hides a real crash.
 * Unguarded stacks are checked when released (see alloc/stack_slab.c) and
 * reported through the same function.
 */
#include "coro/internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc/internal.h"
#include <eddy/coro.h>

#define ALTSTACK_BYTES ((size_t)64 << 10)

static struct sigaction previous;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static int handler_rc;
static pthread_key_t altstack_key;
static __thread __attribute__((tls_model("initial-exec"))) void *altstack;

static void put(const char *s)
{
    size_t len = strlen(s);
    while (len) {
        ssize_t n = write(STDERR_FILENO, s, len);
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

static void put_num(uintptr_t v, unsigned base)
{
    char buf[32];
    int i = (int)sizeof(buf) - 1;
    buf[i] = 0;
    do {
        buf[--i] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v && i > 0);
    put(&buf[i]);
}

void eddy__coro_overflow_report(const struct eddy_coro *coro, const char *how)
{
    put("eddy: stack overflow in coroutine '");
    put(eddy_coro_name(coro));
    put("' (stack ");
    put_num(eddy_coro_stack_size(coro), 10);
    put(" bytes): ");
    put(how);
    put("\n");
    abort();
}

static void on_segv(int sig, siginfo_t *info, void *uctx)
{
    const struct eddy_coro *c = eddy__coro_running();
    if (c) {
        const struct eddy_stack *s = eddy__coro_stack(c);
        uintptr_t lo = (uintptr_t)s->lo;
        uintptr_t addr = (uintptr_t)info->si_addr;
        if (s->guarded && addr < lo && addr >= lo - eddy__page_size())
            eddy__coro_overflow_report(c, "guard page hit");
    }
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, info, uctx);
        return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    /* Restore the default action; returning re-executes the faulting
     * instruction, which then kills the process as it would have. */
    signal(sig, SIG_DFL);
}

static void altstack_free(void *p)
{
    stack_t none = {.ss_flags = SS_DISABLE};
    sigaltstack(&none, NULL);
    eddy__free(p);
}

static void install_handler(void)
{
    if (pthread_key_create(&altstack_key, altstack_free) != 0) {
        handler_rc = -ENOMEM;
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &previous) != 0)
        handler_rc = -errno;
}

int eddy__coro_overflow_init(void)
{
    if (EDDY_LIKELY(altstack != NULL))
        return 0;
    pthread_once(&handler_once, install_handler);
    if (handler_rc < 0)
        return handler_rc;
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE) && old.ss_size > 0) {
        /* The thread already has an alternate stack (a sanitizer's, or the
         * application's): use it rather than replace it. */
        altstack = old.ss_sp;
        return 0;
    }
    void *mem = eddy__malloc(ALTSTACK_BYTES);
    if (!mem)
        return -ENOMEM;
    stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_BYTES, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        int rc = -errno;
        eddy__free(mem);
        return rc;
    }
    altstack = mem;
    pthread_setspecific(altstack_key, mem);
    return 0;
}

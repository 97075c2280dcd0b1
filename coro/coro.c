/*
 * coro/coro.c: coroutine create, resume, yield, switch, exit, destroy.
 *
 * A coroutine's bookkeeping (struct eddy_coro) lives at the top of its own
 * stack, so creating one costs a stack from the pool and nothing else, and a
 * suspended coroutine that has used little stack occupies a single page.
 *
 * Each thread has an implicit main coroutine for its own stack; the running
 * coroutine is a thread-local pointer (NULL before the first switch) that the SIGSEGV
 * handler also reads.
 *
 * Tools: every stack is registered with Valgrind while in use; ASan builds
 * announce each switch (__sanitizer_start/finish_switch_fiber) and TSan
 * builds give each coroutine a fiber (__tsan_switch_to_fiber), so both
 * sanitizers know which stack is live.
 *
 * Cost: eddy_coro_switch is a thread-local store, a flags test and the
 * assembly switch (about 20 instructions).
 */
#include "coro/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "alloc/internal.h"
#include <eddy/coro.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define VALGRIND_STACK_REGISTER(lo, hi) 0u
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#define RUNNING_ON_VALGRIND 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define EDDY_ASAN 1
#include <sanitizer/asan_interface.h>
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDDY_ASAN 1
#include <sanitizer/asan_interface.h>
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define EDDY_TSAN 1
#include <sanitizer/tsan_interface.h>
#endif

enum {
    CORO_MAIN = 1u << 0,    /* the thread's own stack; never destroyed */
    CORO_DONE = 1u << 1,    /* the body returned or eddy_coro_exit ran */
    CORO_FPU = 1u << 2,     /* keeps its own FP control state */
    CORO_RESUMING = 1u << 3 /* suspended inside eddy_coro_resume */
};

struct eddy_coro {
    struct eddy__ctx ctx; /* first: the assembly sees a ctx pointer */
    uint32_t flags;
    unsigned valgrind_id;
    struct eddy_coro *resumer;
    eddy_coro_fn *fn;
    void *arg;
    void *data;
    const char *name;
    struct eddy_stack_pool *pool;
    struct eddy_stack stack;
#ifdef EDDY_ASAN
    void *asan_fake_stack;
#endif
#ifdef EDDY_TSAN
    void *tsan_fiber;
#endif
};

_Static_assert(offsetof(struct eddy__ctx, sp) == EDDY__CTX_SP, "ctx sp");
_Static_assert(sizeof(struct eddy__ctx) == EDDY__CTX_SIZE, "ctx size");
_Static_assert(sizeof(struct eddy__frame) == EDDY__FRAME_SIZE, "frame size");
#if defined(__x86_64__)
_Static_assert(offsetof(struct eddy__ctx, mxcsr) == EDDY__CTX_FPU, "ctx mxcsr");
_Static_assert(offsetof(struct eddy__ctx, fpucw) == EDDY__CTX_FPU + 4, "ctx fpucw");
_Static_assert(offsetof(struct eddy__frame, r12) == EDDY__FRAME_R12, "frame r12");
_Static_assert(offsetof(struct eddy__frame, r13) == EDDY__FRAME_R13, "frame r13");
_Static_assert(offsetof(struct eddy__frame, r14) == EDDY__FRAME_R14, "frame r14");
_Static_assert(offsetof(struct eddy__frame, r15) == EDDY__FRAME_R15, "frame r15");
_Static_assert(offsetof(struct eddy__frame, rbx) == EDDY__FRAME_RBX, "frame rbx");
_Static_assert(offsetof(struct eddy__frame, rbp) == EDDY__FRAME_RBP, "frame rbp");
_Static_assert(offsetof(struct eddy__frame, pc) == EDDY__FRAME_PC, "frame pc");
#else
_Static_assert(offsetof(struct eddy__ctx, fpcr) == EDDY__CTX_FPU, "ctx fpcr");
_Static_assert(offsetof(struct eddy__frame, x19_x28) == EDDY__FRAME_X19, "frame x19");
_Static_assert(offsetof(struct eddy__frame, x19_x28[2]) == EDDY__FRAME_X21, "frame x21");
_Static_assert(offsetof(struct eddy__frame, x19_x28[8]) == EDDY__FRAME_X27, "frame x27");
_Static_assert(offsetof(struct eddy__frame, x29) == EDDY__FRAME_X29, "frame x29");
_Static_assert(offsetof(struct eddy__frame, d8_d15) == EDDY__FRAME_D8, "frame d8");
_Static_assert(offsetof(struct eddy__frame, d8_d15[6]) == EDDY__FRAME_D14, "frame d14");
#endif
_Static_assert(offsetof(struct eddy_coro, ctx) == 0, "ctx first");

#define TLS __thread __attribute__((tls_model("initial-exec")))

static TLS struct eddy_coro *running; /* NULL until the first switch: main */
static TLS struct eddy_coro main_coro;
/* The SIGSEGV handler and this thread's alternate stack are in place. */
static TLS bool overflow_ready;
/* Valgrind's client requests cost a dozen instructions each; ask once per
 * thread (each thread's first coroutine call stores the same answer). */
static TLS bool under_valgrind;

static struct eddy_coro *main_get(void)
{
    if (EDDY_UNLIKELY(!(main_coro.flags & CORO_MAIN))) {
        under_valgrind = RUNNING_ON_VALGRIND != 0;
        main_coro.flags = CORO_MAIN;
        main_coro.name = "main";
#ifdef EDDY_TSAN
        main_coro.tsan_fiber = __tsan_get_current_fiber();
#endif
        eddy__ctx_save_fpu(&main_coro.ctx);
    }
    return &main_coro;
}

EDDY_API struct eddy_coro *eddy_coro_current(void)
{
    return running ? running : main_get();
}

const struct eddy_coro *eddy__coro_running(void)
{
    return running && !(running->flags & CORO_MAIN) ? running : NULL;
}

const struct eddy_stack *eddy__coro_stack(const struct eddy_coro *coro)
{
    return &coro->stack;
}

/* ---- ASan fiber annotations -------------------------------------------- */

#ifdef EDDY_ASAN
static TLS const void *main_stack_lo;
static TLS size_t main_stack_size;

static void asan_stack_of(struct eddy_coro *c, const void **lo, size_t *size)
{
    if (c->flags & CORO_MAIN) {
        if (!main_stack_lo) {
            pthread_attr_t attr;
            void *addr = NULL;
            size_t len = 0;
            if (pthread_getattr_np(pthread_self(), &attr) == 0) {
                pthread_attr_getstack(&attr, &addr, &len);
                pthread_attr_destroy(&attr);
            }
            main_stack_lo = addr;
            main_stack_size = len;
        }
        *lo = main_stack_lo;
        *size = main_stack_size;
    } else {
        *lo = c->stack.lo;
        *size = c->stack.size_bytes;
    }
}

static void asan_before(struct eddy_coro *from, struct eddy_coro *to, bool from_dies)
{
    const void *lo;
    size_t size;
    asan_stack_of(to, &lo, &size);
    __sanitizer_start_switch_fiber(from_dies ? NULL : &from->asan_fake_stack, lo, size);
}

static void asan_after(struct eddy_coro *self)
{
    __sanitizer_finish_switch_fiber(self->asan_fake_stack, NULL, NULL);
}
#else
#define asan_before(from, to, dies) ((void)(from), (void)(to), (void)(dies))
#define asan_after(self) ((void)(self))
#endif

/* ---- switching --------------------------------------------------------- */

/* Coroutines without save_fpu share the thread's FP control state, which is
 * kept here while a save_fpu coroutine runs with its private one. */
static TLS struct eddy__ctx shared_fpu;

/* Out of line, so that the common switch needs no stack frame of its own
 * and reaches the assembly by a tail jump. */
static __attribute__((noinline)) void switch_fpu(struct eddy_coro *from, struct eddy_coro *to)
{
    eddy__ctx_switch_fpu(&from->ctx, &to->ctx, (from->flags & CORO_FPU) ? &from->ctx : &shared_fpu,
                         (to->flags & CORO_FPU) ? &to->ctx : &shared_fpu);
}

static inline void raw_switch(struct eddy_coro *from, struct eddy_coro *to)
{
#ifdef EDDY_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    running = to;
    if (EDDY_UNLIKELY((from->flags | to->flags) & CORO_FPU))
        switch_fpu(from, to);
    else
        eddy__ctx_switch(&from->ctx, &to->ctx);
}

EDDY_API void eddy_coro_switch(struct eddy_coro *from, struct eddy_coro *to)
{
    /* A finished coroutine (eddy_coro_finish) leaves for the last time: ASan
     * must drop its fake stack rather than keep it for a resume. */
    asan_before(from, to, (from->flags & CORO_DONE) != 0);
    raw_switch(from, to);
    asan_after(from);
}

EDDY_API void eddy_coro_finish(struct eddy_coro *c)
{
    c->flags |= CORO_DONE;
}

EDDY_API void eddy_coro_exit(struct eddy_coro *to)
{
    struct eddy_coro *self = running;
    self->flags |= CORO_DONE;
    asan_before(self, to, true);
    raw_switch(self, to);
    __builtin_unreachable();
}

static void coro_main(void *p)
{
    struct eddy_coro *self = p;
#ifdef EDDY_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    self->fn(self->arg);
    struct eddy_coro *to = self->resumer ? self->resumer : main_get();
    self->resumer = NULL;
    to->flags &= ~(uint32_t)CORO_RESUMING;
    eddy_coro_exit(to);
}

/* ---- lifecycle --------------------------------------------------------- */

/* Sets up c (whose stack, pool and tool registrations are in place) to run
 * fn(arg) from the start. */
static void prepare(struct eddy_coro *c, eddy_coro_fn *fn, void *arg,
                    const struct eddy_coro_opts *opts)
{
    c->flags = opts && opts->save_fpu ? CORO_FPU : 0;
    c->resumer = NULL;
    c->fn = fn;
    c->arg = arg;
    c->name = opts && opts->name ? opts->name : "coroutine";
    /* A save_fpu coroutine's private FP state starts as its creator's. */
    if (c->flags & CORO_FPU)
        eddy__ctx_save_fpu(&c->ctx);
    eddy__ctx_prepare(&c->ctx, c, coro_main, c);
#ifdef EDDY_ASAN
    c->asan_fake_stack = NULL;
#endif
}

EDDY_API int eddy_coro_create(struct eddy_stack_pool *pool, eddy_coro_fn *fn, void *arg,
                              const struct eddy_coro_opts *opts, struct eddy_coro **out)
{
    if (!fn || !pool)
        return -EINVAL;
    (void)main_get();
    if (EDDY_UNLIKELY(!overflow_ready)) {
        int rc = eddy__coro_overflow_init();
        if (rc < 0)
            return rc;
        overflow_ready = true;
    }
    int rc;
    struct eddy_stack stack;
    rc = eddy_stack_pool_acquire(pool, opts ? opts->stack_size_bytes : 0, &stack);
    if (rc < 0)
        return rc;
    char *top = (char *)stack.lo + stack.size_bytes;
    uintptr_t at = ((uintptr_t)top - sizeof(struct eddy_coro)) & ~(uintptr_t)63;
    struct eddy_coro *c = (struct eddy_coro *)at;
    c->pool = pool;
    c->stack = stack;
    c->data = NULL;
#ifdef EDDY_TSAN
    c->tsan_fiber = __tsan_create_fiber(0);
#endif
    c->valgrind_id = 0;
    if (EDDY_UNLIKELY(under_valgrind))
        c->valgrind_id = VALGRIND_STACK_REGISTER(stack.lo, (char *)stack.lo + stack.size_bytes);
    prepare(c, fn, arg, opts);
    *out = c;
    return 0;
}

EDDY_API int eddy_coro_reset(struct eddy_coro *c, eddy_coro_fn *fn, void *arg,
                             const struct eddy_coro_opts *opts)
{
    if (!c || !fn || c == running || (c->flags & CORO_MAIN) || !(c->flags & CORO_DONE))
        return -EINVAL;
    if (opts && opts->stack_size_bytes > c->stack.size_bytes)
        return -EINVAL;
    if (!c->stack.guarded && !eddy_stack_is_intact(&c->stack))
        eddy__coro_overflow_report(c, "detected when its stack was reused");
#ifdef EDDY_ASAN
    ASAN_UNPOISON_MEMORY_REGION(c->stack.lo, c->stack.size_bytes);
#endif
    prepare(c, fn, arg, opts);
    return 0;
}

EDDY_API void eddy_coro_destroy(struct eddy_coro *c)
{
    if (!c || (c->flags & CORO_MAIN) || c == running)
        return;
    struct eddy_stack stack = c->stack;
    struct eddy_stack_pool *pool = c->pool;
    if (!stack.guarded && !eddy_stack_is_intact(&stack))
        eddy__coro_overflow_report(c, "detected when its stack was released");
    if (EDDY_UNLIKELY(under_valgrind))
        VALGRIND_STACK_DEREGISTER(c->valgrind_id);
#ifdef EDDY_TSAN
    __tsan_destroy_fiber(c->tsan_fiber);
#endif
#ifdef EDDY_ASAN
    /* Frames that never returned (a suspended coroutine, or eddy_coro_exit)
     * leave their redzones poisoned; the stack's next user must not inherit them. */
    ASAN_UNPOISON_MEMORY_REGION(stack.lo, stack.size_bytes);
#endif
    eddy_stack_pool_release(pool, &stack);
}

EDDY_API void eddy_coro_check_stack(const struct eddy_coro *c)
{
    if (!(c->flags & CORO_MAIN) && !eddy_stack_is_intact(&c->stack))
        eddy__coro_overflow_report(c, "stack limit overrun");
}

EDDY_API int eddy_coro_resume(struct eddy_coro *c)
{
    struct eddy_coro *cur = eddy_coro_current();
    if (!c || c == cur || (c->flags & (CORO_DONE | CORO_MAIN | CORO_RESUMING)))
        return -EINVAL;
    c->resumer = cur;
    cur->flags |= CORO_RESUMING;
    eddy_coro_switch(cur, c);
    return 0;
}

EDDY_API int eddy_coro_yield(void)
{
    struct eddy_coro *self = running;
    if (!self || (self->flags & CORO_MAIN) || !self->resumer)
        return -EINVAL;
    struct eddy_coro *to = self->resumer;
    self->resumer = NULL;
    to->flags &= ~(uint32_t)CORO_RESUMING;
    eddy_coro_switch(self, to);
    return 0;
}

EDDY_API bool eddy_coro_is_main(const struct eddy_coro *c)
{
    return (c->flags & CORO_MAIN) != 0;
}

EDDY_API bool eddy_coro_is_done(const struct eddy_coro *c)
{
    return (c->flags & CORO_DONE) != 0;
}

EDDY_API const char *eddy_coro_name(const struct eddy_coro *c)
{
    return c->name;
}

EDDY_API size_t eddy_coro_stack_size(const struct eddy_coro *c)
{
    return c->stack.size_bytes;
}

EDDY_API void eddy_coro_set_data(struct eddy_coro *c, void *data)
{
    c->data = data;
}

EDDY_API void *eddy_coro_data(const struct eddy_coro *c)
{
    return c->data;
}

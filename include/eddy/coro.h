/*
 * eddy/coro.h: stackful coroutines. A coroutine is a function running on its
 * own stack (from an eddy_stack_pool) that can suspend itself and be resumed
 * later at the same point.
 *
 * Two ways to switch:
 *   - asymmetric: eddy_coro_resume() runs a coroutine until it calls
 *     eddy_coro_yield() or returns, then control comes back to the resumer;
 *   - symmetric: eddy_coro_switch() hands the CPU straight from the running
 *     coroutine to another one (the reactor uses this between tasks).
 *
 * A switch saves only the registers the ABI makes callee-saved (x86-64: rbx,
 * rbp, r12-r15, rsp; aarch64: x19-x30, sp, d8-d15). The SSE control/status
 * register (MXCSR) and the x87 control word (FPCR on aarch64) are thread
 * state that all coroutines share; a coroutine that changes rounding modes
 * or exception masks is created with save_fpu, and then it keeps its own
 * (starting from its creator's), saved and restored at each of its
 * switches (about 3 ns more per switch).
 *
 * Stack overflow: see eddy/alloc.h (guard page, or canary beyond the guard
 * budget). Either way the report names the coroutine and its stack size.
 *
 * Thread rules: a coroutine is resumed only on the thread that created it.
 * Each thread has an implicit "main" coroutine standing for its own stack.
 */
#ifndef EDDY_CORO_H
#define EDDY_CORO_H

#include <eddy/alloc.h>

#ifdef __cplusplus
extern "C" {
#endif

struct eddy_coro;

/* The body of a coroutine. When it returns the coroutine is done. */
typedef void eddy_coro_fn(void *arg);

struct eddy_coro_opts {
    size_t stack_size_bytes; /* 0: EDDY_STACK_DEFAULT_BYTES */
    const char *name;        /* retained until destroy; shown in overflow reports */
    bool save_fpu;           /* keep a private MXCSR and x87 control word */
};

/*
 * Creates a suspended coroutine that will run fn(arg) when first resumed or
 * switched to. The coroutine's bookkeeping lives at the top of its stack,
 * so creation allocates nothing but the stack.
 * pool: retained until destroy. opts: borrowed (may be NULL). arg: retained.
 * Returns: 0; -EINVAL for a stack size above EDDY_STACK_MAX_BYTES or a NULL
 * fn; -ENOMEM. Suspends: no.
 */
EDDY_API int eddy_coro_create(struct eddy_stack_pool *pool, eddy_coro_fn *fn, void *arg,
                              const struct eddy_coro_opts *opts, struct eddy_coro **out);

/*
 * Prepares a finished coroutine to run fn(arg) from the start on the same
 * stack, as eddy_coro_create would (but keeping its data pointer), without
 * the round trip through the stack pool (schedulers keep finished
 * coroutines for reuse). The stack is
 * checked for an overflow first. opts: borrowed, may be NULL; its stack size
 * must fit the existing stack. Returns: 0; -EINVAL when coro is not done,
 * is running or main, or the requested stack is larger. Suspends: no.
 */
EDDY_API int eddy_coro_reset(struct eddy_coro *coro, eddy_coro_fn *fn, void *arg,
                             const struct eddy_coro_opts *opts);

/*
 * Releases a coroutine that is done or has never run or is suspended (its
 * stack is then discarded without unwinding: whatever it holds leaks).
 * Must not be called on the running coroutine. Checks the stack canary and
 * aborts with a report on overflow. Suspends: no.
 */
EDDY_API void eddy_coro_destroy(struct eddy_coro *coro);

/*
 * Runs coro until it yields or finishes. Returns: 0; -EINVAL when coro is
 * done, is the running one, or is suspended inside its own resume chain.
 * Cost: resume and yield are called from different places, so the CPU
 * mispredicts the returns after each of their switches (about 20 ns per
 * switch here, against 3 ns for eddy_coro_switch between coroutines that
 * switch from one place). Suspends: yes (the caller is suspended while coro
 * runs).
 */
EDDY_API int eddy_coro_resume(struct eddy_coro *coro);

/* Suspends the running coroutine and returns to its resumer. Returns: 0;
 * -EINVAL when called from a thread's main coroutine. Suspends: yes. */
EDDY_API int eddy_coro_yield(void);

/*
 * Transfers control from the running coroutine `from` to `to`, which must be
 * suspended or new. Returns when some coroutine switches back to `from`.
 * No checks: this is the hot path, for schedulers. Cost: about 20
 * instructions; the CPU predicts the switch when `to` last suspended at
 * the same call site as `from` does now, so a scheduler should switch from
 * a single place. Suspends: yes.
 */
EDDY_API void eddy_coro_switch(struct eddy_coro *from, struct eddy_coro *to);

/*
 * Ends the running coroutine (which must not be the thread's main one) and
 * transfers to `to` for the last time. The caller destroys the finished
 * coroutine later, from another context. Suspends: never returns.
 */
EDDY_API __attribute__((noreturn)) void eddy_coro_exit(struct eddy_coro *to);

/* Aborts with a report naming coro when its stack shows an overflow (debug
 * canary overwritten, or the slack page of an unguarded stack touched).
 * Costs a mincore() syscall for unguarded stacks. Suspends: no. */
EDDY_API void eddy_coro_check_stack(const struct eddy_coro *coro);

/*
 * Marks the running coroutine as finished, for a scheduler that then makes
 * its last eddy_coro_switch away from the same call site as all its other
 * switches (which keeps the CPU's return prediction in step; see
 * eddy_coro_switch). The coroutine must never be switched to again; it can
 * be reset or destroyed from another context. Suspends: no.
 */
EDDY_API void eddy_coro_finish(struct eddy_coro *coro);

/* The running coroutine: the thread's main coroutine outside any other. */
EDDY_API struct eddy_coro *eddy_coro_current(void);
EDDY_API bool eddy_coro_is_main(const struct eddy_coro *coro);
EDDY_API bool eddy_coro_is_done(const struct eddy_coro *coro);
EDDY_API const char *eddy_coro_name(const struct eddy_coro *coro);
EDDY_API size_t eddy_coro_stack_size(const struct eddy_coro *coro);
/* The data pointer a scheduler attaches to a coroutine (NULL by default). */
EDDY_API void eddy_coro_set_data(struct eddy_coro *coro, void *data);
EDDY_API void *eddy_coro_data(const struct eddy_coro *coro);

#ifdef __cplusplus
}
#endif
#endif

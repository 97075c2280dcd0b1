/*
 * bench/micro/bm_coro.c: the cost of one context switch, eddy's against
 * glibc's swapcontext (the boost.context peer is in bm_coro_boost.cc), and
 * of eddy's asymmetric resume/yield pair.
 *
 * Shape of the switch benchmarks. Two coroutines A and B run the same
 * function hop(), which switches to the other side `rounds` times: every
 * switch leaves from, and resumes at, one call site. That is how eddy's
 * scheduler switches (every task parks through one call site) and it
 * matters, because eddy's switch resumes the other side with `ret`: the
 * return is predicted only when both sides called the switch from the same
 * place (see coro/switch_x86_64.S). The peers get the same shape. The
 * pointers hop() passes stay in registers. Measured on the development
 * machine (AMD EPYC under KVM) with the same library: 2.8 ns per switch in
 * this shape, 5.0 ns when each side reloads the two pointers from memory
 * before every switch (a store-to-load round trip through the registers
 * the switch restores, on the critical path), 9.8 ns when the two sides
 * switch from two different call sites (a return misprediction per
 * switch; BM_resume_yield shows that case through the public API).
 *
 * Counting: one switch in one direction is one iteration. A run of n
 * iterations does ceil(n/2) switches on each side, plus the switch from
 * the benchmark thread into A and A's switch back when it is done: two
 * switches of overhead per run, against the tens of millions that Google
 * Benchmark times. Each side is entered once and parks before the clock
 * starts, so no first-entry path is timed.
 *
 * Cases:
 *   BM_switch           eddy_coro_switch (case "switch", impl eddy)
 *   BM_switch_fpu       the same between coroutines created with save_fpu
 *                       (MXCSR and x87 control word saved too), case
 *                       "switch_fpu": the configuration boost.context
 *                       always runs in
 *   BM_switch_ucontext  swapcontext(3), which also saves the signal mask
 *                       with a system call (case "switch", impl ucontext)
 *   BM_resume_yield     eddy_coro_resume and eddy_coro_yield, a generator's
 *                       round trip: two switches from two different call
 *                       sites, reported per switch (case "resume_yield")
 */
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#include <eddy/coro.h>

#include "bench/micro/gbench.h"

/* ---- eddy_coro_switch --------------------------------------------------- */

struct duo {
    struct eddy_coro *main;
    struct eddy_coro *a;
    struct eddy_coro *b;
    uint64_t rounds;
};

/* The one call site of both sides. */
__attribute__((noinline)) static void hop(struct eddy_coro *self, struct eddy_coro *peer,
                                          uint64_t rounds)
{
    for (uint64_t i = 0; i < rounds; i++)
        eddy_coro_switch(self, peer);
}

/* A parks once (before the clock starts), then ping-pongs with B and
 * returns to the benchmark thread. */
static void side_a(void *arg)
{
    struct duo *d = arg;
    eddy_coro_switch(d->a, d->main);
    hop(d->a, d->b, d->rounds);
    eddy_coro_switch(d->a, d->main);
}

/* B parks once, then answers A. Its last switch goes to A, so B stays
 * suspended inside hop() until it is destroyed; the final switch to the
 * benchmark thread only guards against a miscount. */
static void side_b(void *arg)
{
    struct duo *d = arg;
    eddy_coro_switch(d->b, d->main);
    hop(d->b, d->a, d->rounds);
    eddy_coro_switch(d->b, d->main);
}

static void switch_bench(struct eddy_bench *b, bool save_fpu)
{
    eddy_bench_pause(b);
    uint64_t n = eddy_bench_iterations(b);
    struct eddy_stack_pool *pool;
    if (eddy_stack_pool_create(NULL, &pool) < 0) {
        eddy_bench_fail(b, "eddy_stack_pool_create failed");
        return;
    }
    struct duo d = {.main = eddy_coro_current(), .rounds = (n + 1) / 2};
    struct eddy_coro_opts opts = {.name = "side", .save_fpu = save_fpu};
    if (eddy_coro_create(pool, side_a, &d, &opts, &d.a) < 0 ||
        eddy_coro_create(pool, side_b, &d, &opts, &d.b) < 0) {
        eddy_bench_fail(b, "eddy_coro_create failed");
        eddy_stack_pool_destroy(pool);
        return;
    }
    eddy_coro_switch(d.main, d.a);
    eddy_coro_switch(d.main, d.b);
    eddy_bench_resume(b);

    eddy_coro_switch(d.main, d.a);

    eddy_bench_pause(b);
    eddy_coro_destroy(d.a);
    eddy_coro_destroy(d.b);
    eddy_stack_pool_destroy(pool);
}

static void BM_switch(struct eddy_bench *b)
{
    switch_bench(b, false);
}
EDDY_BENCH(BM_switch);

static void BM_switch_fpu(struct eddy_bench *b)
{
    switch_bench(b, true);
}
EDDY_BENCH(BM_switch_fpu);

/* ---- swapcontext --------------------------------------------------------- */

/* makecontext passes only ints to the new context, so the contexts live in
 * file scope; the benchmark thread is their only user. */
static ucontext_t uc_main;
static ucontext_t uc_a;
static ucontext_t uc_b;
static uint64_t uc_rounds;

__attribute__((noinline)) static void uc_hop(ucontext_t *self, ucontext_t *peer, uint64_t rounds)
{
    for (uint64_t i = 0; i < rounds; i++)
        swapcontext(self, peer);
}

static void uc_side_a(void)
{
    swapcontext(&uc_a, &uc_main);
    uc_hop(&uc_a, &uc_b, uc_rounds);
    swapcontext(&uc_a, &uc_main);
}

static void uc_side_b(void)
{
    swapcontext(&uc_b, &uc_main);
    uc_hop(&uc_b, &uc_a, uc_rounds);
    swapcontext(&uc_b, &uc_main);
}

static bool uc_prepare(ucontext_t *uc, const struct eddy_stack *stack, void (*fn)(void))
{
    if (getcontext(uc) < 0)
        return false;
    uc->uc_stack.ss_sp = stack->lo;
    uc->uc_stack.ss_size = stack->size_bytes;
    uc->uc_link = NULL;
    makecontext(uc, fn, 0);
    return true;
}

static void BM_switch_ucontext(struct eddy_bench *b)
{
    eddy_bench_pause(b);
    uint64_t n = eddy_bench_iterations(b);
    struct eddy_stack_pool *pool;
    if (eddy_stack_pool_create(NULL, &pool) < 0) {
        eddy_bench_fail(b, "eddy_stack_pool_create failed");
        return;
    }
    /* The same kind of stacks eddy's coroutines get, so only the switch
     * differs. */
    struct eddy_stack sa, sb;
    if (eddy_stack_pool_acquire(pool, EDDY_STACK_DEFAULT_BYTES, &sa) < 0 ||
        eddy_stack_pool_acquire(pool, EDDY_STACK_DEFAULT_BYTES, &sb) < 0 ||
        !uc_prepare(&uc_a, &sa, uc_side_a) || !uc_prepare(&uc_b, &sb, uc_side_b)) {
        eddy_bench_fail(b, "stack or getcontext failed");
        eddy_stack_pool_destroy(pool);
        return;
    }
    uc_rounds = (n + 1) / 2;
    swapcontext(&uc_main, &uc_a);
    swapcontext(&uc_main, &uc_b);
    eddy_bench_resume(b);

    swapcontext(&uc_main, &uc_a);

    eddy_bench_pause(b);
    eddy_stack_pool_destroy(pool);
}
EDDY_BENCH_OPTS(BM_switch_ucontext, .case_name = "switch", .impl = "ucontext");

/* ---- eddy_coro_resume / eddy_coro_yield ---------------------------------- */

static void generator(void *arg)
{
    (void)arg;
    for (;;)
        eddy_coro_yield();
}

static void BM_resume_yield(struct eddy_bench *b)
{
    eddy_bench_pause(b);
    uint64_t n = eddy_bench_iterations(b);
    struct eddy_stack_pool *pool;
    struct eddy_coro *gen;
    if (eddy_stack_pool_create(NULL, &pool) < 0) {
        eddy_bench_fail(b, "eddy_stack_pool_create failed");
        return;
    }
    if (eddy_coro_create(pool, generator, NULL, NULL, &gen) < 0) {
        eddy_bench_fail(b, "eddy_coro_create failed");
        eddy_stack_pool_destroy(pool);
        return;
    }
    eddy_coro_resume(gen);
    eddy_bench_resume(b);

    /* A round trip is two switches: resume in, yield out. */
    for (uint64_t i = 0; i < n; i += 2)
        eddy_coro_resume(gen);

    eddy_bench_pause(b);
    eddy_coro_destroy(gen);
    eddy_stack_pool_destroy(pool);
}
EDDY_BENCH(BM_resume_yield);

/*
 * tests/coro/test_coro.c: coroutines (coro/coro.c, coro/switch_<arch>.S,
 * coro/overflow.c).
 *
 * Covers resume/yield and their misuse errors, symmetric switches, exit,
 * what a switch must preserve (the ABI's callee-saved registers, checked
 * exactly on x86-64 by a probe that fills them with patterns; and values the
 * compiler keeps in registers across switches: integers, doubles, SSE
 * vectors), the floating-point control state with and without save_fpu,
 * volume (100,000 coroutines), stack overflow reports (in forked children:
 * the test expects the child to abort), names and stack sizes, and deep but
 * legal stack use.
 */
#include <errno.h>
#include <fenv.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <eddy/coro.h>

#include "coro/internal.h" /* white-box: the raw switch tests call the assembly */
#include "tests/support/test.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

#define KIB ((size_t)1 << 10)

static struct eddy_stack_pool *pool_new(void)
{
    struct eddy_stack_pool *pool = NULL;
    cr_assert_eq(eddy_stack_pool_create(NULL, &pool), 0);
    return pool;
}

static struct eddy_coro *coro_new(struct eddy_stack_pool *pool, eddy_coro_fn *fn, void *arg,
                                  const struct eddy_coro_opts *opts)
{
    struct eddy_coro *c = NULL;
    int rc = eddy_coro_create(pool, fn, arg, opts, &c);
    cr_assert_eq(rc, 0, "eddy_coro_create: %s", eddy_strerror(rc));
    cr_assert_not_null(c);
    return c;
}

static size_t pool_in_use(const struct eddy_stack_pool *pool)
{
    struct eddy_stack_pool_stats st;
    eddy_stack_pool_get_stats(pool, &st);
    return st.in_use;
}

/* ---- resume and yield ---------------------------------------------------- */

struct ping {
    struct eddy_coro *self;
    long in, out;
    int rounds;
    bool saw_self_as_current;
    bool saw_main;
};

static void ping_body(void *arg)
{
    struct ping *p = arg;
    p->saw_self_as_current = eddy_coro_current() == p->self;
    p->saw_main = eddy_coro_is_main(eddy_coro_current());
    for (int i = 0; i < p->rounds; i++) {
        p->out = p->in * 2 + 1;
        cr_assert_eq(eddy_coro_yield(), 0);
    }
}

EDDY_TEST(coro, resume_and_yield_pass_values_back_and_forth)
{
    struct eddy_stack_pool *pool = pool_new();
    struct ping p = {.rounds = 10};
    p.self = coro_new(pool, ping_body, &p, NULL);
    for (long i = 0; i < p.rounds; i++) {
        p.in = 100 + i;
        cr_assert_eq(eddy_coro_resume(p.self), 0);
        cr_expect_eq(p.out, (100 + i) * 2 + 1, "round %ld", i);
        cr_expect_not(eddy_coro_is_done(p.self));
        cr_expect(eddy_coro_is_main(eddy_coro_current()), "control is back on main");
    }
    cr_expect(p.saw_self_as_current);
    cr_expect_not(p.saw_main);
    cr_assert_eq(eddy_coro_resume(p.self), 0); /* lets the body return */
    cr_expect(eddy_coro_is_done(p.self));
    eddy_coro_destroy(p.self);
    cr_expect_eq(pool_in_use(pool), 0);
    eddy_stack_pool_destroy(pool);
}

static void noop(void *arg)
{
    (void)arg;
}

static void set_flag(void *arg)
{
    *(int *)arg += 1;
}

EDDY_TEST(coro, coroutine_is_created_suspended)
{
    struct eddy_stack_pool *pool = pool_new();
    int ran = 0;
    struct eddy_coro *c = coro_new(pool, set_flag, &ran, NULL);
    cr_expect_eq(ran, 0, "creating a coroutine does not run it");
    cr_expect_not(eddy_coro_is_done(c));
    cr_expect_eq(pool_in_use(pool), 1);
    /* Destroying one that never ran is allowed and gives its stack back. */
    eddy_coro_destroy(c);
    cr_expect_eq(ran, 0);
    cr_expect_eq(pool_in_use(pool), 0);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(coro, coroutine_that_returns_is_done_and_cannot_be_resumed)
{
    struct eddy_stack_pool *pool = pool_new();
    int ran = 0;
    struct eddy_coro *c = coro_new(pool, set_flag, &ran, NULL);
    cr_assert_eq(eddy_coro_resume(c), 0);
    cr_expect_eq(ran, 1);
    cr_expect(eddy_coro_is_done(c));
    cr_expect(eddy_coro_is_main(eddy_coro_current()));
    cr_expect_eq(eddy_coro_resume(c), -EINVAL);
    cr_expect_eq(eddy_coro_resume(c), -EINVAL);
    cr_expect_eq(ran, 1, "a done coroutine never runs again");
    eddy_coro_destroy(c);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(coro, yield_from_main_is_einval)
{
    cr_expect_eq(eddy_coro_yield(), -EINVAL);
    /* And it stays usable afterwards. */
    struct eddy_stack_pool *pool = pool_new();
    int ran = 0;
    struct eddy_coro *c = coro_new(pool, set_flag, &ran, NULL);
    cr_expect_eq(eddy_coro_yield(), -EINVAL);
    cr_assert_eq(eddy_coro_resume(c), 0);
    cr_expect_eq(ran, 1);
    eddy_coro_destroy(c);
    eddy_stack_pool_destroy(pool);
}

struct misuse {
    struct eddy_coro *main;
    int resume_self, resume_main;
};

static void misuse_body(void *arg)
{
    struct misuse *m = arg;
    m->resume_self = eddy_coro_resume(eddy_coro_current());
    m->resume_main = eddy_coro_resume(m->main);
}

EDDY_TEST(coro, resume_of_self_or_of_main_is_einval)
{
    struct eddy_stack_pool *pool = pool_new();
    struct misuse m = {.main = eddy_coro_current()};
    cr_expect_eq(eddy_coro_resume(m.main), -EINVAL, "main resuming itself");
    cr_expect_eq(eddy_coro_resume(NULL), -EINVAL);
    struct eddy_coro *c = coro_new(pool, misuse_body, &m, NULL);
    cr_assert_eq(eddy_coro_resume(c), 0);
    cr_expect_eq(m.resume_self, -EINVAL);
    cr_expect_eq(m.resume_main, -EINVAL);
    cr_expect(eddy_coro_is_done(c));
    eddy_coro_destroy(c);
    eddy_stack_pool_destroy(pool);
}

/* main resumes outer, outer resumes inner: a resume chain of three. */
struct chain {
    struct eddy_coro *outer, *inner;
    char trace[16];
    int len;
    int inner_resumes_outer;
};

static void chain_inner(void *arg)
{
    struct chain *ch = arg;
    ch->trace[ch->len++] = 'i';
    ch->inner_resumes_outer = eddy_coro_resume(ch->outer);
    cr_assert_eq(eddy_coro_yield(), 0); /* back to outer, not to main */
    ch->trace[ch->len++] = 'j';
}

static void chain_outer(void *arg)
{
    struct chain *ch = arg;
    ch->trace[ch->len++] = 'o';
    cr_assert_eq(eddy_coro_resume(ch->inner), 0);
    ch->trace[ch->len++] = 'p';
    cr_assert_eq(eddy_coro_yield(), 0); /* back to main */
    ch->trace[ch->len++] = 'q';
    cr_assert_eq(eddy_coro_resume(ch->inner), 0); /* inner returns: back here */
    ch->trace[ch->len++] = 'r';
}

EDDY_TEST(coro, nested_resumes_return_to_each_resumer_and_reject_cycles)
{
    struct eddy_stack_pool *pool = pool_new();
    struct chain ch = {0};
    ch.outer = coro_new(pool, chain_outer, &ch, NULL);
    ch.inner = coro_new(pool, chain_inner, &ch, NULL);
    cr_assert_eq(eddy_coro_resume(ch.outer), 0);
    cr_expect_str_eq(ch.trace, "oip");
    cr_expect_eq(ch.inner_resumes_outer, -EINVAL, "outer is suspended inside its own resume");
    cr_assert_eq(eddy_coro_resume(ch.outer), 0);
    cr_expect_str_eq(ch.trace, "oipqjr");
    cr_expect(eddy_coro_is_done(ch.inner));
    cr_expect(eddy_coro_is_done(ch.outer));
    eddy_coro_destroy(ch.inner);
    eddy_coro_destroy(ch.outer);
    eddy_stack_pool_destroy(pool);
}

/* ---- symmetric switch and exit -------------------------------------------- */

struct ring {
    struct eddy_coro *main;
    struct eddy_coro *co[3];
    char trace[64];
    int len;
    int rounds;
    int current_ok;
};

/* Each ring member gets its own small context naming its index. */
struct ring_member {
    struct ring *ring;
    int index;
};

static void ring_member_body(void *arg)
{
    struct ring_member *m = arg;
    struct ring *r = m->ring;
    struct eddy_coro *self = r->co[m->index];
    for (int round = 0; round < r->rounds; round++) {
        r->trace[r->len++] = (char)('A' + m->index);
        r->current_ok += eddy_coro_current() == self;
        bool last = m->index == 2 && round == r->rounds - 1;
        eddy_coro_switch(self, last ? r->main : r->co[(m->index + 1) % 3]);
    }
}

EDDY_TEST(coro, switch_hands_control_around_a_ring_of_three)
{
    struct eddy_stack_pool *pool = pool_new();
    struct ring r = {.main = eddy_coro_current(), .rounds = 5};
    struct ring_member m[3];
    for (int i = 0; i < 3; i++) {
        m[i] = (struct ring_member){.ring = &r, .index = i};
        r.co[i] = coro_new(pool, ring_member_body, &m[i], NULL);
    }
    eddy_coro_switch(r.main, r.co[0]);
    cr_expect(eddy_coro_is_main(eddy_coro_current()));
    cr_expect_str_eq(r.trace, "ABCABCABCABCABC");
    cr_expect_eq(r.current_ok, 15, "eddy_coro_current() named the running coroutine");
    /* All three are suspended inside eddy_coro_switch; destroying them
     * discards their stacks. */
    for (int i = 0; i < 3; i++) {
        cr_expect_not(eddy_coro_is_done(r.co[i]));
        eddy_coro_destroy(r.co[i]);
    }
    cr_expect_eq(pool_in_use(pool), 0);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(coro, coroutine_reached_by_switch_returns_to_main_when_it_ends)
{
    struct eddy_stack_pool *pool = pool_new();
    int ran = 0;
    struct eddy_coro *c = coro_new(pool, set_flag, &ran, NULL);
    eddy_coro_switch(eddy_coro_current(), c);
    cr_expect_eq(ran, 1);
    cr_expect(eddy_coro_is_done(c));
    cr_expect(eddy_coro_is_main(eddy_coro_current()));
    eddy_coro_destroy(c);
    eddy_stack_pool_destroy(pool);
}

struct exiter {
    struct eddy_coro *to;
    int before, after;
};

static void exiter_body(void *arg)
{
    struct exiter *e = arg;
    e->before = 1;
    eddy_coro_exit(e->to);
}

EDDY_TEST(coro, exit_ends_the_coroutine_and_transfers_control)
{
    struct eddy_stack_pool *pool = pool_new();
    struct exiter e = {.to = eddy_coro_current()};
    struct eddy_coro *c = coro_new(pool, exiter_body, &e, NULL);
    eddy_coro_switch(e.to, c);
    cr_expect_eq(e.before, 1);
    cr_expect(eddy_coro_is_done(c));
    cr_expect_eq(eddy_coro_resume(c), -EINVAL);
    eddy_coro_destroy(c);
    cr_expect_eq(pool_in_use(pool), 0);
    eddy_stack_pool_destroy(pool);
}

/* A coroutine that ends through eddy_coro_exit never returns from the frames
 * below it; under ASan their redzones stay poisoned. The next coroutine on
 * the same (recycled) stack must not trip over them: here each one calls a
 * noreturn function (ASan then runs __asan_handle_no_return on the stack)
 * one frame deeper than the one before it ended. */
struct recycler {
    struct eddy_coro *to;
    int depth;
};

__attribute__((noinline)) static void exit_at_depth(struct recycler *r, int depth)
{
    /* 16 bytes of stack per level (return address and saved rbp), so the
     * noreturn call sweeps every position the frames before it left. */
    if (!r->to)
        return; /* never: r->to is main */
    if (depth >= r->depth)
        eddy_coro_exit(r->to);
    exit_at_depth(r, depth + 1);
    __asm__ volatile("" : : : "memory"); /* not a tail call: a frame per level */
}

static void recycler_body(void *arg)
{
    exit_at_depth(arg, 0);
}

EDDY_TEST(coro, a_recycled_stack_is_clean_for_the_next_coroutine)
{
    struct eddy_stack_pool *pool = pool_new();
    struct recycler r = {.to = eddy_coro_current()};
    void *first_stack = NULL;
    for (r.depth = 0; r.depth < 48; r.depth++) {
        struct eddy_coro *c = coro_new(pool, recycler_body, &r, NULL);
        if (!first_stack)
            first_stack = c;
        cr_assert_eq((void *)c, first_stack, "the pool hands the same stack back (LIFO)");
        eddy_coro_switch(r.to, c);
        cr_assert(eddy_coro_is_done(c), "depth %d", r.depth);
        eddy_coro_destroy(c);
    }
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(coro, a_reset_stack_is_clean_for_the_next_body)
{
    /* The same as above through eddy_coro_reset, which reuses the stack
     * without going through the pool. */
    struct eddy_stack_pool *pool = pool_new();
    struct recycler r = {.to = eddy_coro_current()};
    struct eddy_coro *c = coro_new(pool, recycler_body, &r, NULL);
    for (r.depth = 0; r.depth < 48; r.depth++) {
        if (r.depth > 0)
            cr_assert_eq(eddy_coro_reset(c, recycler_body, &r, NULL), 0);
        eddy_coro_switch(r.to, c);
        cr_assert(eddy_coro_is_done(c), "depth %d", r.depth);
    }
    eddy_coro_destroy(c);
    eddy_stack_pool_destroy(pool);
}

/* ---- reset and finish ------------------------------------------------------ */

static void add_one(void *arg)
{
    *(int *)arg += 1;
}

static void add_ten(void *arg)
{
    *(int *)arg += 10;
}

EDDY_TEST(coro, reset_runs_a_finished_coroutine_again_on_the_same_stack)
{
    struct eddy_stack_pool *pool = pool_new();
    int first = 0, second = 0;
    struct eddy_coro_opts opts = {.name = "first"};
    struct eddy_coro *c = coro_new(pool, add_one, &first, &opts);
    cr_assert_eq(eddy_coro_resume(c), 0);
    cr_assert(eddy_coro_is_done(c));

    opts = (struct eddy_coro_opts){.name = "second", .stack_size_bytes = 20000};
    cr_assert_eq(eddy_coro_reset(c, add_ten, &second, &opts), 0);
    cr_expect_not(eddy_coro_is_done(c));
    cr_expect_str_eq(eddy_coro_name(c), "second");
    cr_expect_eq(eddy_coro_stack_size(c), EDDY_STACK_DEFAULT_BYTES, "the stack stays");
    cr_expect_eq(pool_in_use(pool), 1, "no round trip through the pool");
    cr_expect_eq(second, 0, "reset does not run the body");
    cr_assert_eq(eddy_coro_resume(c), 0);
    cr_expect_eq(first, 1);
    cr_expect_eq(second, 10);
    cr_expect(eddy_coro_is_done(c));

    /* NULL opts: the default name. */
    cr_assert_eq(eddy_coro_reset(c, add_one, &first, NULL), 0);
    cr_expect_str_eq(eddy_coro_name(c), "coroutine");
    cr_assert_eq(eddy_coro_resume(c), 0);
    cr_expect_eq(first, 2);
    eddy_coro_destroy(c);
    cr_expect_eq(pool_in_use(pool), 0);
    eddy_stack_pool_destroy(pool);
}

struct self_reset {
    struct eddy_coro *self;
    int rc;
};

static void reset_self_body(void *arg)
{
    struct self_reset *s = arg;
    s->rc = eddy_coro_reset(s->self, noop, NULL, NULL);
    cr_assert_eq(eddy_coro_yield(), 0);
}

EDDY_TEST(coro, reset_rejects_a_coroutine_that_is_not_finished)
{
    struct eddy_stack_pool *pool = pool_new();
    struct self_reset s = {.rc = 1};
    s.self = coro_new(pool, reset_self_body, &s, NULL);
    cr_expect_eq(eddy_coro_reset(s.self, noop, NULL, NULL), -EINVAL, "never ran");
    cr_assert_eq(eddy_coro_resume(s.self), 0);
    cr_expect_eq(s.rc, -EINVAL, "a coroutine resetting itself while it runs");
    cr_expect_eq(eddy_coro_reset(s.self, noop, NULL, NULL), -EINVAL, "suspended");
    cr_expect_eq(eddy_coro_reset(eddy_coro_current(), noop, NULL, NULL), -EINVAL, "main");
    cr_expect_eq(eddy_coro_reset(NULL, noop, NULL, NULL), -EINVAL);
    cr_assert_eq(eddy_coro_resume(s.self), 0);
    cr_assert(eddy_coro_is_done(s.self));
    cr_expect_eq(eddy_coro_reset(s.self, NULL, NULL, NULL), -EINVAL, "NULL fn");
    struct eddy_coro_opts big = {.stack_size_bytes = 1u << 20};
    cr_expect_eq(eddy_coro_reset(s.self, noop, NULL, &big), -EINVAL,
                 "a bigger stack than the coroutine has");
    cr_expect(eddy_coro_is_done(s.self), "failed resets leave it finished");
    cr_expect_eq(eddy_coro_reset(s.self, noop, NULL, NULL), 0);
    eddy_coro_destroy(s.self);
    eddy_stack_pool_destroy(pool);
}

struct finisher {
    struct eddy_coro *self, *to;
    int after;
};

static void finisher_body(void *arg)
{
    struct finisher *f = arg;
    eddy_coro_finish(f->self);
    eddy_coro_switch(f->self, f->to);
    f->after = 1; /* never: a finished coroutine is not switched to again */
}

EDDY_TEST(coro, finish_then_a_last_switch_ends_the_coroutine)
{
    struct eddy_stack_pool *pool = pool_new();
    struct finisher f = {.to = eddy_coro_current()};
    f.self = coro_new(pool, finisher_body, &f, NULL);
    eddy_coro_switch(f.to, f.self);
    cr_expect(eddy_coro_is_done(f.self));
    cr_expect_eq(eddy_coro_resume(f.self), -EINVAL);
    cr_expect_eq(f.after, 0);
    /* A finished coroutine can be reset and run again. */
    int n = 0;
    cr_assert_eq(eddy_coro_reset(f.self, add_one, &n, NULL), 0);
    cr_assert_eq(eddy_coro_resume(f.self), 0);
    cr_expect_eq(n, 1);
    eddy_coro_destroy(f.self);
    eddy_stack_pool_destroy(pool);
}

/* ---- what a switch preserves ------------------------------------------------ */

static void resume_thunk(void *arg)
{
    cr_assert_eq(eddy_coro_resume(arg), 0);
}

static void yield_thunk(void *arg)
{
    (void)arg;
    cr_assert_eq(eddy_coro_yield(), 0);
}

#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
/*
 * uint64_t eddy_test_regs_probe(void (*fn)(void), void *a, void *b, uint64_t pattern);
 *
 * Loads pattern+1 ... pattern+6 into the callee-saved registers rbx, rbp,
 * r12, r13, r14, r15, calls fn(a, b), and returns a bit mask of the
 * registers whose value did not survive the call (bit 0: rbx, 1: rbp,
 * 2: r12, 3: r13, 4: r14, 5: r15). The compiler cannot be made to keep a
 * value in each of these registers across a call; this probe does it
 * exactly. To its own caller it is a normal function: it saves and restores
 * the caller's values of these registers. fn is only ever called from here,
 * with two pointer arguments, whatever C type it was cast from.
 */
uint64_t eddy_test_regs_probe(void (*fn)(void), void *a, void *b, uint64_t pattern);
__asm__(".text\n"
        ".globl eddy_test_regs_probe\n"
        ".hidden eddy_test_regs_probe\n"
        ".type eddy_test_regs_probe, @function\n"
        ".p2align 4\n"
        "eddy_test_regs_probe:\n"
        "    .cfi_startproc\n"
        "    pushq %rbx\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    pushq %rbp\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    pushq %r12\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    pushq %r13\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    pushq %r14\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    pushq %r15\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    subq $8, %rsp\n" /* 7 slots + return address: rsp is 16-aligned */
        "    .cfi_adjust_cfa_offset 8\n"
        "    movq %rcx, (%rsp)\n" /* keep pattern across the call */
        "    movq %rdi, %rax\n"   /* rax = fn */
        "    movq %rsi, %rdi\n"   /* rdi = a */
        "    movq %rdx, %rsi\n"   /* rsi = b */
        "    leaq 1(%rcx), %rbx\n"
        "    leaq 2(%rcx), %rbp\n"
        "    leaq 3(%rcx), %r12\n"
        "    leaq 4(%rcx), %r13\n"
        "    leaq 5(%rcx), %r14\n"
        "    leaq 6(%rcx), %r15\n"
        "    callq *%rax\n"
        "    movq (%rsp), %rdx\n" /* rdx = pattern */
        "    xorl %eax, %eax\n"
        "    leaq 1(%rdx), %rcx\n"
        "    cmpq %rcx, %rbx\n"
        "    je 1f\n"
        "    orl $1, %eax\n"
        "1:  leaq 2(%rdx), %rcx\n"
        "    cmpq %rcx, %rbp\n"
        "    je 2f\n"
        "    orl $2, %eax\n"
        "2:  leaq 3(%rdx), %rcx\n"
        "    cmpq %rcx, %r12\n"
        "    je 3f\n"
        "    orl $4, %eax\n"
        "3:  leaq 4(%rdx), %rcx\n"
        "    cmpq %rcx, %r13\n"
        "    je 4f\n"
        "    orl $8, %eax\n"
        "4:  leaq 5(%rdx), %rcx\n"
        "    cmpq %rcx, %r14\n"
        "    je 5f\n"
        "    orl $16, %eax\n"
        "5:  leaq 6(%rdx), %rcx\n"
        "    cmpq %rcx, %r15\n"
        "    je 6f\n"
        "    orl $32, %eax\n"
        "6:  addq $8, %rsp\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    popq %r15\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    popq %r14\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    popq %r13\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    popq %r12\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    popq %rbp\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    popq %rbx\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    ret\n"
        "    .cfi_endproc\n"
        ".size eddy_test_regs_probe, .-eddy_test_regs_probe\n");

#define PATTERN_MAIN UINT64_C(0x6d61696e00000000)
#define PATTERN_CORO UINT64_C(0x636f726f00000000)
#define PROBE_ROUNDS 8

/* Through the public API. The C functions between the probe and the
 * assembly (eddy_coro_resume, eddy_coro_switch...) may save and restore some
 * of these registers themselves, which would hide a switch that loses them;
 * the raw test below closes that gap. This one checks the whole path. */
static void resume2(void *c, void *unused)
{
    (void)unused;
    cr_assert_eq(eddy_coro_resume(c), 0);
}

static void yield2(void *unused_a, void *unused_b)
{
    (void)unused_a;
    (void)unused_b;
    cr_assert_eq(eddy_coro_yield(), 0);
}

static void probe_body(void *arg)
{
    uint64_t *bad = arg;
    for (int i = 0; i < PROBE_ROUNDS; i++)
        *bad |= eddy_test_regs_probe((void (*)(void))yield2, NULL, NULL,
                                     PATTERN_CORO + (uint64_t)i * 16);
}

static void check_callee_saved(bool save_fpu)
{
    struct eddy_stack_pool *pool = pool_new();
    uint64_t coro_bad = 0;
    struct eddy_coro_opts opts = {.save_fpu = save_fpu};
    struct eddy_coro *c = coro_new(pool, probe_body, &coro_bad, &opts);
    uint64_t bad = 0;
    for (int i = 0; i <= PROBE_ROUNDS; i++)
        bad |=
            eddy_test_regs_probe((void (*)(void))resume2, c, NULL, PATTERN_MAIN + (uint64_t)i * 16);
    cr_expect(eddy_coro_is_done(c));
    cr_expect_eq(bad, 0, "main lost callee-saved registers (mask %#lx: rbx rbp r12 r13 r14 r15)",
                 (unsigned long)bad);
    cr_expect_eq(coro_bad, 0, "the coroutine lost callee-saved registers (mask %#lx)",
                 (unsigned long)coro_bad);
    eddy_coro_destroy(c);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(coro, callee_saved_registers_survive_resume_and_yield)
{
    check_callee_saved(false);
}

EDDY_TEST(coro, callee_saved_registers_survive_resume_and_yield_with_save_fpu)
{
    check_callee_saved(true);
}

/*
 * The assembly itself (coro/internal.h, white-box): the probe calls
 * eddy__ctx_switch directly, so no C function can
 * restore a register the switch lost. Two raw contexts, main's and one on a
 * stack from the pool, ping-pong PROBE_ROUNDS times.
 */
struct raw_pair {
    struct eddy__ctx main_ctx, co_ctx;
    void (*switch_fn)(void);
    uint64_t co_bad;
};

static void raw_co_entry(void *arg)
{
    struct raw_pair *p = arg;
    for (int i = 0; i < PROBE_ROUNDS; i++)
        p->co_bad |= eddy_test_regs_probe(p->switch_fn, &p->co_ctx, &p->main_ctx,
                                          PATTERN_CORO + (uint64_t)i * 16);
    /* A context's entry never returns: park for good. */
    for (;;)
        eddy__ctx_switch(&p->co_ctx, &p->main_ctx);
}

static void check_raw_switch(void (*switch_fn)(void))
{
    struct eddy_stack_pool *pool = pool_new();
    struct eddy_stack s;
    cr_assert_eq(eddy_stack_pool_acquire(pool, 0, &s), 0);
    char *top = (char *)s.lo + s.size_bytes;
#if __has_include(<valgrind/valgrind.h>)
    unsigned vg_id = VALGRIND_STACK_REGISTER(s.lo, top);
#endif
    struct raw_pair p = {.switch_fn = switch_fn};
    eddy__ctx_save_fpu(&p.main_ctx);
    eddy__ctx_save_fpu(&p.co_ctx);
    eddy__ctx_prepare(&p.co_ctx, top, raw_co_entry, &p);
    uint64_t bad = 0;
    for (int i = 0; i <= PROBE_ROUNDS; i++)
        bad |= eddy_test_regs_probe(switch_fn, &p.main_ctx, &p.co_ctx,
                                    PATTERN_MAIN + (uint64_t)i * 16);
    cr_expect_eq(bad, 0, "main lost callee-saved registers (mask %#lx: rbx rbp r12 r13 r14 r15)",
                 (unsigned long)bad);
    cr_expect_eq(p.co_bad, 0, "the context lost callee-saved registers (mask %#lx)",
                 (unsigned long)p.co_bad);
#if __has_include(<valgrind/valgrind.h>)
    VALGRIND_STACK_DEREGISTER(vg_id);
#endif
    eddy_stack_pool_release(pool, &s);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(coro, ctx_switch_preserves_every_callee_saved_register)
{
    check_raw_switch((void (*)(void))eddy__ctx_switch);
}
#endif /* __x86_64__ && !__SANITIZE_THREAD__ */

/*
 * The same integer, double and vector computations run once straight and
 * once with a switch after every step; results must match bit for bit. The
 * many accumulators are live across every call, so the compiler keeps most
 * of them in callee-saved registers (at -O2) or in the frame (at -O0); the
 * coroutine runs the same code in between, so a switch that lost or mixed up
 * any of them shows.
 */
typedef double v2df __attribute__((vector_size(16)));
typedef float v4sf __attribute__((vector_size(16)));
typedef uint32_t v4si __attribute__((vector_size(16)));

struct work_result {
    uint64_t ints;
    double dbl;
    long double ext;
    v2df vd;
    v4sf vf;
    v4si vi;
};

static void churn(int steps, void (*between)(void *), void *arg, struct work_result *out)
{
    volatile uint64_t seed = UINT64_C(0x243f6a8885a308d3);
    volatile double dseed = 1.0000001;
    uint64_t a = seed, b = a * 3 + 1, c = b ^ (a >> 7), d = c * 5, e = d + a, f = e ^ b;
    uint64_t g = f * 7, h = g + c, i = h ^ d, j = i * 11, k = j + e, l = k ^ f;
    double x0 = dseed, x1 = dseed * 2, x2 = dseed / 3, x3 = dseed + 4, x4 = dseed - 5;
    double x5 = dseed * 6.5, x6 = dseed / 7.25, x7 = dseed + 0.125;
    long double y0 = dseed, y1 = (long double)dseed / 3;
    v2df vd0 = {dseed, dseed * 2}, vd1 = {dseed / 3, dseed / 5};
    v4sf vf0 = {1.5f, 2.25f, (float)dseed, 3.75f}, vf1 = {0.5f, 0.25f, 0.125f, (float)dseed};
    v4si vi0 = {1, 2, 3, 4}, vi1 = {(uint32_t)seed, 7, 11, 13};
    for (int s = 0; s < steps; s++) {
        a = a * UINT64_C(6364136223846793005) + b;
        b ^= a >> 17;
        c += b * 31;
        d ^= c << 5;
        e += d >> 3;
        f = f * 29 + e;
        g ^= f >> 11;
        h += g * 13;
        i ^= h << 7;
        j += i >> 5;
        k = k * 17 + j;
        l ^= k >> 13;
        x0 = x0 * 1.0000003 + x7 * 1e-3;
        x1 = x1 * 0.9999997 + x0 * 1e-4;
        x2 = x2 + x1 / 1024.0;
        x3 = x3 - x2 / 2048.0;
        x4 = x4 * 1.0000001 + x3 * 1e-5;
        x5 = x5 / 1.0000002 + x4 * 1e-6;
        x6 = x6 + x5 * 1e-7;
        x7 = x7 * 0.99999 + x6 * 1e-3;
        y0 = y0 * 1.0000000001L + y1;
        y1 = y1 / 1.0000000003L;
        vd0 = vd0 * (v2df){1.0000001, 0.9999999} + vd1;
        vd1 = vd1 / (v2df){1.0000002, 1.0000003};
        vf0 = vf0 * (v4sf){1.001f, 0.999f, 1.0001f, 0.9999f} + vf1;
        vf1 = vf1 * (v4sf){0.5f, 0.25f, 0.75f, 0.125f};
        vi0 = vi0 * (v4si){3, 5, 7, 9} + vi1;
        vi1 ^= vi0 >> 3;
        if (between)
            between(arg);
    }
    out->ints = a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ i ^ j ^ k ^ l;
    out->dbl = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
    out->ext = y0 + y1;
    out->vd = vd0 + vd1;
    out->vf = vf0 + vf1;
    out->vi = vi0 + vi1;
}

#define CHURN_STEPS 64

struct churner {
    struct work_result result;
};

static void churn_body(void *arg)
{
    struct churner *ch = arg;
    churn(CHURN_STEPS, yield_thunk, NULL, &ch->result);
}

static void expect_same_work(const struct work_result *got, const struct work_result *want,
                             const char *who)
{
    cr_expect_eq(got->ints, want->ints, "%s: integer registers", who);
    cr_expect(memcmp(&got->dbl, &want->dbl, sizeof(double)) == 0, "%s: double %a vs %a", who,
              got->dbl, want->dbl);
    cr_expect(got->ext == want->ext, "%s: long double (x87)", who);
    cr_expect(memcmp(&got->vd, &want->vd, sizeof(v2df)) == 0, "%s: double vector", who);
    cr_expect(memcmp(&got->vf, &want->vf, sizeof(v4sf)) == 0, "%s: float vector", who);
    cr_expect(memcmp(&got->vi, &want->vi, sizeof(v4si)) == 0, "%s: int vector", who);
}

static void check_work_survives(bool save_fpu)
{
    struct work_result want;
    churn(CHURN_STEPS, NULL, NULL, &want);

    struct eddy_stack_pool *pool = pool_new();
    struct churner ch;
    memset(&ch, 0, sizeof(ch));
    struct eddy_coro_opts opts = {.save_fpu = save_fpu};
    struct eddy_coro *c = coro_new(pool, churn_body, &ch, &opts);
    struct work_result got;
    /* Main resumes CHURN_STEPS times inside its own churn; the coroutine
     * yields CHURN_STEPS times inside its churn, then needs one more resume
     * to finish. */
    churn(CHURN_STEPS, resume_thunk, c, &got);
    cr_assert_eq(eddy_coro_resume(c), 0);
    cr_expect(eddy_coro_is_done(c));
    expect_same_work(&got, &want, "main");
    expect_same_work(&ch.result, &want, "coroutine");
    eddy_coro_destroy(c);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(coro, integer_float_and_vector_values_survive_switches)
{
    check_work_survives(false);
}

EDDY_TEST(coro, integer_float_and_vector_values_survive_switches_that_save_fpu_state)
{
    check_work_survives(true);
}

/* ---- floating-point control state --------------------------------------------
 *
 * By design (DESIGN.md, eddy/coro.h) a switch does not save MXCSR and the x87
 * control word: they are thread state that coroutines share, and a
 * coroutine that changes the rounding mode must be created with save_fpu to
 * keep a private copy. The rounding mode is read back from the control
 * registers; outside Valgrind the test also checks its effect on arithmetic
 * (Valgrind computes every FP operation in round-to-nearest, whatever the
 * control registers say).
 */

static double third(void)
{
    volatile double one = 1.0, three = 3.0;
    return one / three;
}

static long double third_ext(void)
{
    volatile long double one = 1.0L, three = 3.0L;
    return one / three;
}

struct fp_rounds {
    double nearest, up;
    long double nearest_ext, up_ext;
};

static struct fp_rounds fp_reference(void)
{
    struct fp_rounds r;
    int saved = eddy_test_get_rounding();
    eddy_test_set_rounding(FE_TONEAREST);
    r.nearest = third();
    r.nearest_ext = third_ext();
    eddy_test_set_rounding(FE_UPWARD);
    r.up = third();
    r.up_ext = third_ext();
    eddy_test_set_rounding(saved);
    return r;
}

struct fp_coro {
    int seen[4];
    double value[4];
    long double value_ext[4];
    int n;
    int set_to;
};

static void fp_record(struct fp_coro *f)
{
    f->seen[f->n] = eddy_test_get_rounding();
    f->value[f->n] = third();
    f->value_ext[f->n] = third_ext();
    f->n++;
}

/* Sets its rounding mode once, then records what it sees at every resume. */
static void fp_setter_body(void *arg)
{
    struct fp_coro *f = arg;
    eddy_test_set_rounding(f->set_to);
    fp_record(f);
    cr_assert_eq(eddy_coro_yield(), 0);
    fp_record(f);
    cr_assert_eq(eddy_coro_yield(), 0);
    fp_record(f);
}

/* Only records what it sees. */
static void fp_observer_body(void *arg)
{
    struct fp_coro *f = arg;
    for (int i = 0; i < 3; i++) {
        fp_record(f);
        if (i < 2)
            cr_assert_eq(eddy_coro_yield(), 0);
    }
}

EDDY_TEST(coro, save_fpu_coroutine_keeps_its_rounding_mode_to_itself)
{
    struct fp_rounds ref = fp_reference();
    bool arith = !eddy_test_under_valgrind();
    if (arith)
        cr_expect_neq(ref.nearest, ref.up, "1/3 rounds differently upward: the probe works");
    cr_assert_eq(eddy_test_get_rounding(), FE_TONEAREST);

    struct eddy_stack_pool *pool = pool_new();
    struct fp_coro fpu = {.set_to = FE_UPWARD}, plain = {0};
    struct eddy_coro_opts with_fpu = {.name = "fpu", .save_fpu = true};
    struct eddy_coro *cf = coro_new(pool, fp_setter_body, &fpu, &with_fpu);
    struct eddy_coro *cp = coro_new(pool, fp_observer_body, &plain, NULL);

    /* 1. The save_fpu coroutine switches to upward rounding... */
    cr_assert_eq(eddy_coro_resume(cf), 0);
    cr_expect_eq(fpu.seen[0], FE_UPWARD);
    if (arith) {
        cr_expect_eq(fpu.value[0], ref.up);
        cr_expect(fpu.value_ext[0] == ref.up_ext, "x87 rounds upward too");
    }
    /* ...and neither main nor another coroutine sees it. */
    cr_expect_eq(eddy_test_get_rounding(), FE_TONEAREST, "main sees the save_fpu coroutine's mode");
    if (arith)
        cr_expect_eq(third(), ref.nearest);
    cr_assert_eq(eddy_coro_resume(cp), 0);
    cr_expect_eq(plain.seen[0], FE_TONEAREST);
    if (arith)
        cr_expect_eq(plain.value[0], ref.nearest);

    /* 2. Main changes the thread's mode: the save_fpu coroutine keeps its
     * own; main gets its own back when the coroutine yields. */
    eddy_test_set_rounding(FE_DOWNWARD);
    cr_assert_eq(eddy_coro_resume(cf), 0);
    cr_expect_eq(fpu.seen[1], FE_UPWARD, "the save_fpu coroutine lost its mode");
    if (arith)
        cr_expect_eq(fpu.value[1], ref.up);
    cr_expect_eq(eddy_test_get_rounding(), FE_DOWNWARD);
    /* A coroutine without save_fpu shares the thread's (main's) state. */
    cr_assert_eq(eddy_coro_resume(cp), 0);
    cr_expect_eq(plain.seen[1], FE_DOWNWARD);

    /* 3. Back to nearest; both run to their end. */
    eddy_test_set_rounding(FE_TONEAREST);
    cr_assert_eq(eddy_coro_resume(cf), 0);
    cr_expect_eq(fpu.seen[2], FE_UPWARD);
    cr_expect(eddy_coro_is_done(cf));
    cr_expect_eq(eddy_test_get_rounding(), FE_TONEAREST, "the ended coroutine's mode leaked");
    cr_assert_eq(eddy_coro_resume(cp), 0);
    cr_expect_eq(plain.seen[2], FE_TONEAREST);
    cr_expect(eddy_coro_is_done(cp));

    eddy_coro_destroy(cf);
    eddy_coro_destroy(cp);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(coro, coroutine_without_save_fpu_shares_the_threads_rounding_mode)
{
    /* By design: without save_fpu, a coroutine's rounding mode change is a
     * change of the thread's state, seen by main and by every other
     * coroutine without save_fpu (it costs nothing on the switch path). */
    struct fp_rounds ref = fp_reference();
    bool arith = !eddy_test_under_valgrind();
    struct eddy_stack_pool *pool = pool_new();
    struct fp_coro setter = {.set_to = FE_UPWARD}, other = {0};
    struct eddy_coro *cs = coro_new(pool, fp_setter_body, &setter, NULL);
    struct eddy_coro *co = coro_new(pool, fp_observer_body, &other, NULL);

    cr_assert_eq(eddy_coro_resume(cs), 0);
    cr_expect_eq(setter.seen[0], FE_UPWARD);
    cr_expect_eq(eddy_test_get_rounding(), FE_UPWARD, "main shares the coroutine's mode");
    if (arith)
        cr_expect_eq(third(), ref.up);
    cr_assert_eq(eddy_coro_resume(co), 0);
    cr_expect_eq(other.seen[0], FE_UPWARD, "so does another coroutine");

    eddy_test_set_rounding(FE_TOWARDZERO);
    cr_assert_eq(eddy_coro_resume(cs), 0);
    cr_expect_eq(setter.seen[1], FE_TOWARDZERO, "and main's change reaches the coroutine");

    eddy_test_set_rounding(FE_TONEAREST);
    cr_assert_eq(eddy_coro_resume(cs), 0);
    cr_assert_eq(eddy_coro_resume(co), 0);
    cr_assert_eq(eddy_coro_resume(co), 0);
    cr_expect(eddy_coro_is_done(cs));
    cr_expect(eddy_coro_is_done(co));
    eddy_coro_destroy(cs);
    eddy_coro_destroy(co);
    eddy_stack_pool_destroy(pool);
}

/*
 * main and A have no save_fpu, so they share the thread's FP state; F has
 * save_fpu. main changes the rounding mode, then control goes main -> A
 * (plain switch) -> F (save_fpu switch) -> main (save_fpu switch). main
 * must still see the mode it set: F's private state is F's alone.

 */
struct fp_handoff {
    struct eddy_coro *main, *a, *f;
};

static void handoff_a(void *arg)
{
    struct fp_handoff *h = arg;
    eddy_coro_switch(h->a, h->f);
}

static void handoff_f(void *arg)
{
    struct fp_handoff *h = arg;
    eddy_coro_switch(h->f, h->main);
}

EDDY_TEST(coro, shared_fp_state_survives_a_handoff_through_a_save_fpu_coroutine)
{
    struct eddy_stack_pool *pool = pool_new();
    struct fp_handoff h = {.main = eddy_coro_current()};
    struct eddy_coro_opts with_fpu = {.name = "fpu", .save_fpu = true};
    h.a = coro_new(pool, handoff_a, &h, NULL);
    h.f = coro_new(pool, handoff_f, &h, &with_fpu);
    eddy_test_set_rounding(FE_UPWARD);
    eddy_coro_switch(h.main, h.a);
    int seen = eddy_test_get_rounding();
    eddy_test_set_rounding(FE_TONEAREST);
    cr_expect_eq(seen, FE_UPWARD, "main's rounding mode changed from %#x to %#x", FE_UPWARD, seen);
    eddy_coro_destroy(h.a);
    eddy_coro_destroy(h.f);
    eddy_stack_pool_destroy(pool);
}

/* ---- volume ------------------------------------------------------------------ */

struct pp_slot {
    long value;
    long sum;
};

#define PP_ROUNDS 4

static void pp_body(void *arg)
{
    struct pp_slot *s = arg;
    for (int r = 0; r < PP_ROUNDS; r++) {
        s->sum += s->value;
        if (eddy_coro_yield() != 0)
            abort();
    }
}

EDDY_TEST(coro, hundred_thousand_coroutines_ping_pong_and_are_destroyed)
{
    /* Under Valgrind, 10,000: Valgrind keeps registered stacks in a list it
     * searches on every stack switch, so the cost grows with the square of
     * the count (100,000 take minutes), and its address-space table cannot
     * hold the mappings of 16,000 guard pages. Leaks show either way. */
    const size_t N = eddy_test_under_valgrind() ? 10000 : 100000;
    struct eddy_stack_pool *pool = pool_new();
    struct eddy_coro **co = calloc(N, sizeof(*co));
    struct pp_slot *slot = calloc(N, sizeof(*slot));
    cr_assert(co && slot);
    struct eddy_coro_opts opts = {.stack_size_bytes = EDDY_STACK_MIN_BYTES};
    for (size_t i = 0; i < N; i++) {
        int rc = eddy_coro_create(pool, pp_body, &slot[i], &opts, &co[i]);
        cr_assert_eq(rc, 0, "coroutine %zu: %s", i, eddy_strerror(rc));
    }
    cr_expect_eq(pool_in_use(pool), N);
    /* Round-robin: every coroutine is suspended while the others run. The
     * last round lets each body return. */
    for (int r = 0; r <= PP_ROUNDS; r++) {
        for (size_t i = 0; i < N; i++) {
            slot[i].value = (long)i + r;
            if (eddy_coro_resume(co[i]) != 0)
                cr_assert_fail("resume of %zu in round %d failed", i, r);
        }
    }
    for (size_t i = 0; i < N; i++) {
        long want = 0;
        for (int r = 0; r < PP_ROUNDS; r++)
            want += (long)i + r;
        if (slot[i].sum != want || !eddy_coro_is_done(co[i]))
            cr_assert_fail("coroutine %zu: sum %ld, want %ld", i, slot[i].sum, want);
        eddy_coro_destroy(co[i]);
    }
    cr_expect_eq(pool_in_use(pool), 0);
    free(co);
    free(slot);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(coro, suspended_coroutines_can_be_destroyed_in_bulk)
{
    enum { N = 2000 };
    struct eddy_stack_pool *pool = pool_new();
    static struct eddy_coro *co[N];
    static struct pp_slot slot[N];
    for (size_t i = 0; i < N; i++) {
        co[i] = coro_new(pool, pp_body, &slot[i], NULL);
        slot[i].value = 1;
        cr_assert_eq(eddy_coro_resume(co[i]), 0);
    }
    /* Each is suspended in its first yield; destroy does not unwind them. */
    for (size_t i = 0; i < N; i++) {
        cr_assert_eq(slot[i].sum, 1);
        cr_assert_not(eddy_coro_is_done(co[i]));
        eddy_coro_destroy(co[i]);
    }
    cr_expect_eq(pool_in_use(pool), 0);
    eddy_stack_pool_destroy(pool);
}

/* ---- stack overflow ------------------------------------------------------------
 * These run in a forked child, which is expected to abort; the test checks
 * the signal and eddy's one-line report, the first line of the child's
 * stderr. */

static volatile int keep_recursing = 1;

__attribute__((noinline)) static int recurse_forever(int depth)
{
    volatile char frame[256];
    frame[0] = (char)depth;
    frame[sizeof(frame) - 1] = (char)depth;
    int r = keep_recursing ? recurse_forever(depth + 1) : 0;
    /* Using the frame after the call keeps this from becoming a loop. */
    __asm__ volatile("" : : "r"(frame) : "memory");
    return r + frame[0] + frame[sizeof(frame) - 1];
}

static void runaway_body(void *arg)
{
    (void)arg;
    recurse_forever(0);
}

struct overflow_case {
    const char *name;
    size_t stack_bytes;
};

static void overflow_child(void *arg)
{
    const struct overflow_case *oc = arg;
    struct eddy_stack_pool *pool = NULL;
    EDDY_CHILD_CHECK(eddy_stack_pool_create(NULL, &pool) == 0);
    struct eddy_coro_opts opts = {.name = oc->name, .stack_size_bytes = oc->stack_bytes};
    struct eddy_coro *c = NULL;
    EDDY_CHILD_CHECK(eddy_coro_create(pool, runaway_body, NULL, &opts, &c) == 0);
    eddy_coro_resume(c);
    EDDY_CHILD_CHECK(!"the coroutine survived unbounded recursion");
}

static void check_overflow_report(const char *name, size_t stack_bytes)
{
    struct overflow_case oc = {name, stack_bytes};
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(overflow_child, &oc, &child), 0);
    char want[256];
    snprintf(want, sizeof(want), "eddy: stack overflow in coroutine '%s' (stack %zu bytes): ", name,
             stack_bytes);
    cr_expect_eq(child.signal, SIGABRT, "child ended with signal %d, status %d: %s", child.signal,
                 child.exit_status, child.first_line);
    cr_expect(strncmp(child.first_line, want, strlen(want)) == 0,
              "first stderr line: \"%s\"; want it to start with \"%s\"", child.first_line, want);
    cr_expect_str_eq(child.first_line + strlen(want), "guard page hit");
}

EDDY_TEST(coro, unbounded_recursion_aborts_with_a_report_naming_the_coroutine)
{
    check_overflow_report("runaway", 64 * KIB);
}

EDDY_TEST(coro, overflow_report_gives_the_size_of_a_small_stack)
{
    check_overflow_report("tiny-stack-task", 16 * KIB);
}

/* With guard pages off, a coroutine that writes into the slack page below
 * its stack is caught when it is destroyed (or checked). To know where its
 * stack is, the child takes a stack from the pool and gives it back first:
 * the pool hands the same stack to the coroutine (LIFO). */
struct slack_case {
    bool check_instead_of_destroy;
};

static void touch_below(void *arg)
{
    ((volatile char *)arg)[-1] = 1;
}

static void slack_child(void *arg)
{
    const struct slack_case *sc = arg;
    setenv("EDDY_STACK_GUARDS", "0", 1);
    struct eddy_stack_pool *pool = NULL;
    EDDY_CHILD_CHECK(eddy_stack_pool_create(NULL, &pool) == 0);
    struct eddy_stack s;
    EDDY_CHILD_CHECK(eddy_stack_pool_acquire(pool, 0, &s) == 0);
    EDDY_CHILD_CHECK(!s.guarded);
    eddy_stack_pool_release(pool, &s);
    struct eddy_coro_opts opts = {.name = "slack-toucher"};
    struct eddy_coro *c = NULL;
    EDDY_CHILD_CHECK(eddy_coro_create(pool, touch_below, s.lo, &opts, &c) == 0);
    eddy_coro_check_stack(c); /* intact so far: must not abort */
    EDDY_CHILD_CHECK(eddy_coro_resume(c) == 0);
    EDDY_CHILD_CHECK(eddy_coro_is_done(c));
    if (sc->check_instead_of_destroy)
        eddy_coro_check_stack(c);
    else
        eddy_coro_destroy(c);
    EDDY_CHILD_CHECK(!"the touched slack page went unnoticed");
}

static void check_slack_report(bool check_instead_of_destroy, const char *how)
{
    struct slack_case sc = {check_instead_of_destroy};
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(slack_child, &sc, &child), 0);
    cr_expect_eq(child.signal, SIGABRT, "child ended with signal %d, status %d: %s", child.signal,
                 child.exit_status, child.first_line);
    char want[256];
    snprintf(want, sizeof(want),
             "eddy: stack overflow in coroutine 'slack-toucher' (stack %zu bytes): %s",
             EDDY_STACK_DEFAULT_BYTES, how);
    cr_expect_str_eq(child.first_line, want);
}

EDDY_TEST(coro, unguarded_overflow_is_reported_when_the_coroutine_is_destroyed)
{
    check_slack_report(false, "detected when its stack was released");
}

EDDY_TEST(coro, check_stack_reports_an_unguarded_overflow)
{
    check_slack_report(true, "stack limit overrun");
}

static void segv_child(void *arg)
{
    (void)arg;
    /* A fault that is not a guard-page hit goes on to the previous handler
     * or the default action: eddy must not turn every crash into its
     * overflow report. */
    signal(SIGSEGV, SIG_DFL);
    struct eddy_stack_pool *pool = NULL;
    EDDY_CHILD_CHECK(eddy_stack_pool_create(NULL, &pool) == 0);
    struct eddy_coro *c = NULL;
    EDDY_CHILD_CHECK(eddy_coro_create(pool, touch_below, (void *)(uintptr_t)4097, NULL, &c) == 0);
    eddy_coro_resume(c);
    EDDY_CHILD_CHECK(!"writing to address 4096 did not fault");
}

EDDY_TEST(coro, a_fault_outside_any_guard_page_is_not_reported_as_overflow)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(segv_child, NULL, &child), 0);
    cr_expect_eq(child.signal, SIGSEGV, "child ended with signal %d, status %d: %s", child.signal,
                 child.exit_status, child.first_line);
    cr_expect_str_eq(child.first_line, "");
}

/* ---- names, sizes, data ---------------------------------------------------------- */

EDDY_TEST(coro, names_and_stack_sizes_are_reported)
{
    struct eddy_stack_pool *pool = pool_new();
    struct eddy_coro *thread_main = eddy_coro_current();
    cr_expect(eddy_coro_is_main(thread_main));
    cr_expect_str_eq(eddy_coro_name(thread_main), "main");

    struct eddy_coro *plain = coro_new(pool, noop, NULL, NULL);
    cr_expect_str_eq(eddy_coro_name(plain), "coroutine", "the default name");
    cr_expect_eq(eddy_coro_stack_size(plain), EDDY_STACK_DEFAULT_BYTES);
    cr_expect_not(eddy_coro_is_main(plain));

    static const char name[] = "worker-7";
    struct eddy_coro_opts opts = {.name = name, .stack_size_bytes = 20000};
    struct eddy_coro *named = coro_new(pool, noop, NULL, &opts);
    cr_expect_eq(eddy_coro_name(named), name, "the name is retained, not copied");
    cr_expect_eq(eddy_coro_stack_size(named), 64 * KIB, "20000 bytes round up to 64 KiB");

    opts = (struct eddy_coro_opts){.name = "small", .stack_size_bytes = EDDY_STACK_MIN_BYTES};
    struct eddy_coro *small = coro_new(pool, noop, NULL, &opts);
    cr_expect_eq(eddy_coro_stack_size(small), EDDY_STACK_MIN_BYTES);

    opts = (struct eddy_coro_opts){.name = "big", .stack_size_bytes = 1u << 20};
    struct eddy_coro *big = coro_new(pool, noop, NULL, &opts);
    cr_expect_eq(eddy_coro_stack_size(big), (size_t)1 << 20);
    cr_expect_str_eq(eddy_coro_name(big), "big");

    eddy_coro_destroy(plain);
    eddy_coro_destroy(named);
    eddy_coro_destroy(small);
    eddy_coro_destroy(big);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(coro, create_rejects_bad_arguments)
{
    struct eddy_stack_pool *pool = pool_new();
    struct eddy_coro *c = NULL;
    cr_expect_eq(eddy_coro_create(pool, NULL, NULL, NULL, &c), -EINVAL, "NULL fn");
    cr_expect_eq(eddy_coro_create(NULL, noop, NULL, NULL, &c), -EINVAL, "NULL pool");
    struct eddy_coro_opts opts = {.stack_size_bytes = EDDY_STACK_MAX_BYTES + 1};
    cr_expect_eq(eddy_coro_create(pool, noop, NULL, &opts, &c), -EINVAL, "stack too big");
    cr_expect_null(c, "out is untouched on failure");
    cr_expect_eq(pool_in_use(pool), 0);
    eddy_stack_pool_destroy(pool);
}

static void data_body(void *arg)
{
    struct eddy_coro *self = eddy_coro_current();
    *(void **)arg = eddy_coro_data(self);
}

EDDY_TEST(coro, data_pointer_is_kept_for_the_scheduler)
{
    struct eddy_stack_pool *pool = pool_new();
    void *seen = NULL;
    struct eddy_coro *c = coro_new(pool, data_body, &seen, NULL);
    cr_expect_null(eddy_coro_data(c), "NULL by default");
    int token;
    eddy_coro_set_data(c, &token);
    cr_expect_eq(eddy_coro_data(c), &token);
    cr_assert_eq(eddy_coro_resume(c), 0);
    cr_expect_eq(seen, &token);
    eddy_coro_destroy(c);
    eddy_stack_pool_destroy(pool);
}

/* ---- deep but legal stack use ----------------------------------------------------- */

#define DEEP_BYTES (48 * KIB)

struct deep {
    unsigned long sum;
    int depth_reached;
};

/* 48 frames of a little over 1 KiB each: about 48 KiB deep. */
__attribute__((noinline)) static unsigned long deep_recurse(int depth, int max)
{
    volatile unsigned char frame[1000];
    for (size_t i = 0; i < sizeof(frame); i++)
        frame[i] = (unsigned char)(depth + i);
    unsigned long below = depth + 1 < max ? deep_recurse(depth + 1, max) : 0;
    unsigned long sum = below;
    for (size_t i = 0; i < sizeof(frame); i++)
        sum += frame[i];
    return sum;
}

/* One big frame, filled, kept across a yield, then summed. */
__attribute__((noinline)) static unsigned long deep_big_frame(void)
{
    volatile unsigned char big[DEEP_BYTES];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)i;
    cr_assert_eq(eddy_coro_yield(), 0);
    unsigned long sum = 0;
    for (size_t i = 0; i < sizeof(big); i++)
        sum += big[i];
    return sum;
}

static void deep_body(void *arg)
{
    struct deep *d = arg;
    d->sum = deep_big_frame();
    cr_assert_eq(eddy_coro_yield(), 0);
    /* Then as many small frames. */
    d->sum += deep_recurse(0, (int)(DEEP_BYTES / 1024));
    d->depth_reached = (int)(DEEP_BYTES / 1024);
}

EDDY_TEST(coro, deep_but_legal_stack_use_works)
{
    struct eddy_stack_pool *pool = pool_new();
    struct deep d = {0};
    struct eddy_coro_opts opts = {.name = "deep", .stack_size_bytes = 64 * KIB};
    struct eddy_coro *c = coro_new(pool, deep_body, &d, &opts);
    cr_assert_eq(eddy_coro_stack_size(c), 64 * KIB);
    while (!eddy_coro_is_done(c))
        cr_assert_eq(eddy_coro_resume(c), 0);

    unsigned long want = 0;
    for (size_t i = 0; i < DEEP_BYTES; i++)
        want += (unsigned char)i;
    for (int depth = 0; depth < (int)(DEEP_BYTES / 1024); depth++)
        for (size_t i = 0; i < 1000; i++)
            want += (unsigned char)(depth + i);
    cr_expect_eq(d.sum, want);
    cr_expect_eq(d.depth_reached, 48);
    /* Destroy checks the stack and would abort on an overflow. */
    eddy_coro_check_stack(c);
    eddy_coro_destroy(c);
    eddy_stack_pool_destroy(pool);
}

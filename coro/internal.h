/*
 * coro/internal.h: the saved-context layout, shared by C and the assembly.
 *
 * The offsets are defined once here; switch_<arch>.S includes this file
 * (with __ASSEMBLER__ defined) and the _Static_asserts in coro.c check them
 * against struct eddy__ctx.
 */
#ifndef EDDY_CORO_INTERNAL_H
#define EDDY_CORO_INTERNAL_H

#if defined(__x86_64__)
/* x86-64 SysV: rbx, rbp, r12-r15 and rsp are callee-saved (psABI 3.2.1). */
#define EDDY__CTX_SP 0
#define EDDY__CTX_PC 8
#define EDDY__CTX_RBX 16
#define EDDY__CTX_RBP 24
#define EDDY__CTX_R12 32
#define EDDY__CTX_R13 40
#define EDDY__CTX_R14 48
#define EDDY__CTX_R15 56
#define EDDY__CTX_MXCSR 64
#define EDDY__CTX_FPUCW 68
#define EDDY__CTX_SIZE 72
#elif defined(__aarch64__)
/* AAPCS64: x19-x28, x29 (fp), sp and the low halves of v8-v15 (d8-d15) are
 * callee-saved; x30 (lr) holds the resume address. */
#define EDDY__CTX_SP 0
#define EDDY__CTX_PC 8
#define EDDY__CTX_X19 16
#define EDDY__CTX_X21 32
#define EDDY__CTX_X23 48
#define EDDY__CTX_X25 64
#define EDDY__CTX_X27 80
#define EDDY__CTX_X29 96
#define EDDY__CTX_D8 104
#define EDDY__CTX_D10 120
#define EDDY__CTX_D12 136
#define EDDY__CTX_D14 152
#define EDDY__CTX_FPCR 168
#define EDDY__CTX_SIZE 176
#else
#error "eddy has a context switch for x86_64 and aarch64 only"
#endif

#ifndef __ASSEMBLER__
#include <stdint.h>

struct eddy__ctx {
    uint64_t sp;
    uint64_t pc;
#if defined(__x86_64__)
    uint64_t rbx, rbp, r12, r13, r14, r15;
    uint32_t mxcsr;
    uint16_t fpucw;
    uint16_t pad;
#else
    uint64_t x19_x29[11];
    uint64_t d8_d15[8];
    uint64_t fpcr;
#endif
};

/* Saves the callee-saved registers into *from, loads *to and jumps to its pc.
 * Returns when another context switches back to *from. */
void eddy__ctx_switch(struct eddy__ctx *from, struct eddy__ctx *to);
/* The same, also saving and loading the FP control state (MXCSR and the x87
 * control word; FPCR on aarch64). */
void eddy__ctx_switch_fpu(struct eddy__ctx *from, struct eddy__ctx *to);
/* First pc of a new context: calls (*entry)(arg) with entry and arg taken
 * from two callee-saved slots (see eddy__ctx_prepare). Never returns. */
void eddy__ctx_entry(void);
/* Saves the current FP control state into ctx (for new contexts). */
void eddy__ctx_save_fpu(struct eddy__ctx *ctx);

/* Prepares ctx so that switching to it runs entry(arg) on the stack whose
 * highest usable address is top. */
static inline void eddy__ctx_prepare(struct eddy__ctx *ctx, void *top, void (*entry)(void *),
                                     void *arg)
{
    uintptr_t sp = (uintptr_t)top & ~(uintptr_t)15;
    ctx->sp = sp;
    ctx->pc = (uint64_t)(uintptr_t)eddy__ctx_entry;
#if defined(__x86_64__)
    ctx->r12 = (uint64_t)(uintptr_t)entry;
    ctx->r13 = (uint64_t)(uintptr_t)arg;
    ctx->rbp = 0; /* ends frame-pointer backtraces */
#else
    ctx->x19_x29[0] = (uint64_t)(uintptr_t)entry;
    ctx->x19_x29[1] = (uint64_t)(uintptr_t)arg;
    ctx->x19_x29[10] = 0;
#endif
}

struct eddy_coro;
/* Installs the SIGSEGV handler (once per process) and this thread's
 * alternate signal stack (once per thread). Returns 0 or -ENOMEM. */
int eddy__coro_overflow_init(void);
/* The coroutine running on this thread (NULL on the thread's own stack). */
const struct eddy_coro *eddy__coro_running(void);
/* Writes one line naming the overflowed coroutine to stderr, then aborts.
 * Async-signal-safe. */
_Noreturn void eddy__coro_overflow_report(const struct eddy_coro *coro, const char *how);
/* The stack a coroutine runs on (for the SIGSEGV handler). */
const struct eddy_stack *eddy__coro_stack(const struct eddy_coro *coro);
#endif

#endif

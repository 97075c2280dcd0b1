/*
 * coro/internal.h: the saved-context layout, shared by C and the assembly.
 *
 * The offsets are defined once here; switch_<arch>.S includes this file
 * (with __ASSEMBLER__ defined) and the _Static_asserts in coro.c check them
 * against struct eddy__ctx.
 */
#ifndef EDDY_CORO_INTERNAL_H
#define EDDY_CORO_INTERNAL_H

/*
 * A suspended context is its stack pointer: the switch pushes the
 * callee-saved registers onto the suspended stack, above the return address
 * its caller's call pushed, and keeps only the resulting sp in the ctx.
 * EDDY__FRAME_* are byte offsets from that sp.
 */
#if defined(__x86_64__)
/* x86-64 SysV: rbx, rbp, r12-r15 and rsp are callee-saved (psABI 3.2.1). */
#define EDDY__FRAME_R12 0
#define EDDY__FRAME_R13 8
#define EDDY__FRAME_R14 16
#define EDDY__FRAME_R15 24
#define EDDY__FRAME_RBX 32
#define EDDY__FRAME_RBP 40
#define EDDY__FRAME_PC 48 /* the return address pushed by the caller's call */
#define EDDY__FRAME_SIZE 56
#elif defined(__aarch64__)
/* AAPCS64: x19-x28, x29 (fp), sp and the low halves of v8-v15 (d8-d15) are
 * callee-saved; x30 (lr) holds the resume address. */
#define EDDY__FRAME_X19 0
#define EDDY__FRAME_X21 16
#define EDDY__FRAME_X23 32
#define EDDY__FRAME_X25 48
#define EDDY__FRAME_X27 64
#define EDDY__FRAME_X29 80 /* x29 and x30 (the resume address) */
#define EDDY__FRAME_D8 96
#define EDDY__FRAME_D10 112
#define EDDY__FRAME_D12 128
#define EDDY__FRAME_D14 144
#define EDDY__FRAME_SIZE 160
#else
#error "eddy has a context switch for x86_64 and aarch64 only"
#endif

/* struct eddy__ctx: the saved sp, then the private FP control state of a
 * coroutine created with save_fpu. */
#define EDDY__CTX_SP 0
#define EDDY__CTX_FPU 8 /* x86-64: MXCSR (4 bytes), x87 control word (2); aarch64: FPCR (8) */
#define EDDY__CTX_SIZE 16

#ifndef __ASSEMBLER__
#include <stdint.h>

struct eddy__ctx {
    uint64_t sp;
#if defined(__x86_64__)
    uint32_t mxcsr;
    uint16_t fpucw;
    uint16_t pad;
#else
    uint64_t fpcr;
#endif
};

/* The registers a suspended context keeps on its stack, at ctx.sp. */
struct eddy__frame {
#if defined(__x86_64__)
    uint64_t r12, r13, r14, r15, rbx, rbp, pc;
#else
    uint64_t x19_x28[10];
    uint64_t x29, x30;
    uint64_t d8_d15[8];
#endif
};

/* Pushes the callee-saved registers, saves sp in *from, loads *to's sp, pops
 * its registers and jumps to its pc. Returns when another context switches
 * back to *from. */
void eddy__ctx_switch(struct eddy__ctx *from, struct eddy__ctx *to);
/* First pc of a new context: calls (*entry)(arg) with entry and arg taken
 * from two callee-saved slots (see eddy__ctx_prepare). Never returns. */
void eddy__ctx_entry(void);
/* The switch for a side created with save_fpu: saves the FP control state
 * (MXCSR and the x87 control word; FPCR on aarch64) into *save, loads it
 * from *load when it differs, then switches as eddy__ctx_switch. */
void eddy__ctx_switch_fpu(struct eddy__ctx *from, struct eddy__ctx *to, struct eddy__ctx *save,
                          const struct eddy__ctx *load);
/* Saves the FP control state into ctx. */
void eddy__ctx_save_fpu(struct eddy__ctx *ctx);

/* Prepares ctx so that switching to it runs entry(arg) on the stack whose
 * highest usable address is top: an initial frame whose registers carry
 * entry and arg to eddy__ctx_entry, placed so that sp is 16-byte aligned
 * once the frame has been popped. */
static inline void eddy__ctx_prepare(struct eddy__ctx *ctx, void *top, void (*entry)(void *),
                                     void *arg)
{
    uintptr_t aligned = (uintptr_t)top & ~(uintptr_t)15;
    struct eddy__frame *f = (struct eddy__frame *)(aligned - sizeof(struct eddy__frame));
    *f = (struct eddy__frame){0};
#if defined(__x86_64__)
    f->r12 = (uint64_t)(uintptr_t)entry;
    f->r13 = (uint64_t)(uintptr_t)arg;
    f->pc = (uint64_t)(uintptr_t)eddy__ctx_entry;
    /* rbp = 0 ends frame-pointer backtraces. */
#else
    f->x19_x28[0] = (uint64_t)(uintptr_t)entry;
    f->x19_x28[1] = (uint64_t)(uintptr_t)arg;
    f->x30 = (uint64_t)(uintptr_t)eddy__ctx_entry;
#endif
    ctx->sp = (uint64_t)(uintptr_t)f;
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

/*
 * coro/switch_x86_64.S: the context switch for x86-64 System V.
 *
 *   void eddy__ctx_switch(struct eddy__ctx *from, struct eddy__ctx *to);
 *   void eddy__ctx_switch_fpu(struct eddy__ctx *from, struct eddy__ctx *to,
 *                             struct eddy__ctx *save, const struct eddy__ctx *load);
 *   void eddy__ctx_entry(void);
 *   void eddy__ctx_save_fpu(struct eddy__ctx *ctx);
 *
 * ABI: the psABI (3.2.1) makes rbx, rbp, r12-r15 and rsp callee-saved; every
 * other general register, and all of xmm0-15, may be clobbered by a call, so
 * the compiler has already spilled whatever it needs before calling us.
 * Those six registers, pushed onto the suspended stack above the return
 * address our caller's call left there, plus rsp kept in *from, are all a
 * switch saves. The direction flag is clear at every call (ABI).
 * MXCSR and the x87 control word are callee-saved too, but they are thread
 * state that eddy's coroutines share (DESIGN.md). Only when one side was
 * created with save_fpu does coro.c call the _fpu variant, which saves them
 * into *save and loads them from *load (struct eddy__ctx fields; coro.c
 * picks the coroutine's private slot or the thread's shared one). Comparing
 * before loading does not pay: reading back what stmxcsr just stored stalls
 * longer than the loads take (measured: 8.2 vs 7.2 ns per switch).
 *
 * The other side resumes through ret, which keeps the CPU's return stack
 * buffer in step with the real stacks. Whether it is predicted depends on
 * where the two sides called the switch: the ret is predicted to go back to
 * our own call site, so when both sides suspended at the same site (every
 * task of eddy's scheduler parks through one call site) the switch and the
 * returns after it are all predicted. Resuming with pop+jmp instead is
 * predicted by the indirect-branch predictor wherever the sites are, but
 * leaves one stale entry on the return stack, so every return after the
 * switch mispredicts. Measured here (perf/switch_resume, medians in
 * results/switch_resume.txt), ns: a ping-pong between two different call
 * sites, 4.0 with jmp vs 12.2 with ret; two coroutines switching from one
 * site, 4.8 vs 3.9; a task yield ping-pong in the reactor, 32 vs 18.
 * to->sp is loaded first, so that its load overlaps the pushes instead of
 * delaying every pop behind it (measured during development: 5.0 vs 2.6 ns).
 *
 * Frame at ctx->sp (EDDY__FRAME_*, coro/internal.h, checked in coro.c):
 *    0 r12    8 r13   16 r14   24 r15   32 rbx   40 rbp   48 return address
 * struct eddy__ctx: 0 sp   8 mxcsr (4 bytes)   12 x87 control word (2 bytes)
 */
#include "coro/internal.h"

#define CTX_MXCSR EDDY__CTX_FPU
#define CTX_FPUCW (EDDY__CTX_FPU + 4)

    .text

    .globl  eddy__ctx_switch
    .hidden eddy__ctx_switch
    .type   eddy__ctx_switch, @function
    .p2align 4
eddy__ctx_switch:
    .cfi_startproc
    movq    EDDY__CTX_SP(%rsi), %rax        /* rax = to->sp, loaded early */
    pushq   %rbp                            /* frame rbp */
    .cfi_adjust_cfa_offset 8
    pushq   %rbx                            /* frame rbx */
    .cfi_adjust_cfa_offset 8
    pushq   %r15                            /* frame r15 */
    .cfi_adjust_cfa_offset 8
    pushq   %r14                            /* frame r14 */
    .cfi_adjust_cfa_offset 8
    pushq   %r13                            /* frame r13 */
    .cfi_adjust_cfa_offset 8
    pushq   %r12                            /* frame r12 */
    .cfi_adjust_cfa_offset 8
    movq    %rsp, EDDY__CTX_SP(%rdi)        /* from->sp = frame */
    movq    %rax, %rsp                      /* rsp = to's frame */
    popq    %r12                            /* frame r12 */
    popq    %r13                            /* frame r13 */
    popq    %r14                            /* frame r14 */
    popq    %r15                            /* frame r15 */
    popq    %rbx                            /* frame rbx */
    popq    %rbp                            /* frame rbp */
    ret                                     /* frame return address: resume to */
    .cfi_endproc
    .size   eddy__ctx_switch, .-eddy__ctx_switch

    .globl  eddy__ctx_switch_fpu
    .hidden eddy__ctx_switch_fpu
    .type   eddy__ctx_switch_fpu, @function
    .p2align 4
eddy__ctx_switch_fpu:
    .cfi_startproc
    stmxcsr CTX_MXCSR(%rdx)                 /* save->mxcsr */
    fnstcw  CTX_FPUCW(%rdx)                 /* save->fpucw */
    ldmxcsr CTX_MXCSR(%rcx)                 /* mxcsr = load->mxcsr */
    fldcw   CTX_FPUCW(%rcx)                 /* x87 control word = load->fpucw */
    jmp     eddy__ctx_switch                /* then the registers, as always */
    .cfi_endproc
    .size   eddy__ctx_switch_fpu, .-eddy__ctx_switch_fpu

/* A new context starts here with rsp 16-byte aligned (the initial frame has
 * just been popped), r12 = entry function, r13 = its argument. The call
 * leaves rsp = 8 mod 16 at entry's first instruction, as the ABI requires.
 * The CFI marks this frame as the outermost one, so unwinders stop here. */
    .globl  eddy__ctx_entry
    .hidden eddy__ctx_entry
    .type   eddy__ctx_entry, @function
    .p2align 4
eddy__ctx_entry:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r13, %rdi                      /* arg = frame r13 */
    callq   *%r12                           /* entry = frame r12; never returns */
    ud2                                     /* unreachable: trap if it does */
    .cfi_endproc
    .size   eddy__ctx_entry, .-eddy__ctx_entry

    .globl  eddy__ctx_save_fpu
    .hidden eddy__ctx_save_fpu
    .type   eddy__ctx_save_fpu, @function
    .p2align 4
eddy__ctx_save_fpu:
    .cfi_startproc
    stmxcsr CTX_MXCSR(%rdi)                 /* ctx->mxcsr */
    fnstcw  CTX_FPUCW(%rdi)                 /* ctx->fpucw */
    ret
    .cfi_endproc
    .size   eddy__ctx_save_fpu, .-eddy__ctx_save_fpu

    .section .note.GNU-stack, "", @progbits

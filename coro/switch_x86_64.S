/*
 * coro/switch_x86_64.S: the context switch for x86-64 System V.
 *
 *   void eddy__ctx_switch(struct eddy__ctx *from, struct eddy__ctx *to);
 *   void eddy__ctx_switch_fpu(struct eddy__ctx *from, struct eddy__ctx *to);
 *   void eddy__ctx_entry(void);
 *   void eddy__ctx_save_fpu(struct eddy__ctx *ctx);
 *
 * ABI: the psABI (3.2.1) makes rbx, rbp, r12-r15 and rsp callee-saved; every
 * other general register, and all of xmm0-15, may be clobbered by a call, so
 * the compiler has already spilled whatever it needs before calling us.
 * Those seven registers plus the resume address are all a switch saves.
 * The direction flag is clear at every call (ABI), so it needs no saving.
 * MXCSR and the x87 control word are callee-saved too, but they are thread
 * state that eddy's coroutines share (DESIGN.md): saving them costs about
 * 3 ns per switch here. The _fpu variant saves them for coroutines created
 * with save_fpu.
 *
 * The switch resumes the other side with an indirect jmp rather than ret:
 * a ret after the stack change always misses in the return predictor
 * (measured: 12 ns vs 3 ns per switch on this machine class).
 *
 * Offsets (coro/internal.h, checked against struct eddy__ctx in coro.c):
 *    0 sp     8 pc    16 rbx   24 rbp   32 r12   40 r13   48 r14   56 r15
 *   64 mxcsr (4 bytes)   68 x87 control word (2 bytes)
 */
#include "coro/internal.h"

    .text

    .globl  eddy__ctx_switch
    .hidden eddy__ctx_switch
    .type   eddy__ctx_switch, @function
    .p2align 4
eddy__ctx_switch:
    .cfi_startproc
    movq    (%rsp), %rax                    /* rax = our return address */
    leaq    8(%rsp), %rdx                   /* rdx = rsp as it is after that return */
    movq    %rdx, EDDY__CTX_SP(%rdi)        /* from->sp */
    movq    %rax, EDDY__CTX_PC(%rdi)        /* from->pc */
    movq    %rbx, EDDY__CTX_RBX(%rdi)       /* from->rbx */
    movq    %rbp, EDDY__CTX_RBP(%rdi)       /* from->rbp */
    movq    %r12, EDDY__CTX_R12(%rdi)       /* from->r12 */
    movq    %r13, EDDY__CTX_R13(%rdi)       /* from->r13 */
    movq    %r14, EDDY__CTX_R14(%rdi)       /* from->r14 */
    movq    %r15, EDDY__CTX_R15(%rdi)       /* from->r15 */
    movq    EDDY__CTX_SP(%rsi), %rsp        /* to->sp */
    movq    EDDY__CTX_RBX(%rsi), %rbx       /* to->rbx */
    movq    EDDY__CTX_RBP(%rsi), %rbp       /* to->rbp */
    movq    EDDY__CTX_R12(%rsi), %r12       /* to->r12 */
    movq    EDDY__CTX_R13(%rsi), %r13       /* to->r13 */
    movq    EDDY__CTX_R14(%rsi), %r14       /* to->r14 */
    movq    EDDY__CTX_R15(%rsi), %r15       /* to->r15 */
    jmpq    *EDDY__CTX_PC(%rsi)             /* to->pc */
    .cfi_endproc
    .size   eddy__ctx_switch, .-eddy__ctx_switch

    .globl  eddy__ctx_switch_fpu
    .hidden eddy__ctx_switch_fpu
    .type   eddy__ctx_switch_fpu, @function
    .p2align 4
eddy__ctx_switch_fpu:
    .cfi_startproc
    stmxcsr EDDY__CTX_MXCSR(%rdi)           /* from->mxcsr */
    fnstcw  EDDY__CTX_FPUCW(%rdi)           /* from->fpucw */
    movq    (%rsp), %rax                    /* rax = our return address */
    leaq    8(%rsp), %rdx                   /* rdx = rsp as it is after that return */
    movq    %rdx, EDDY__CTX_SP(%rdi)        /* from->sp */
    movq    %rax, EDDY__CTX_PC(%rdi)        /* from->pc */
    movq    %rbx, EDDY__CTX_RBX(%rdi)       /* from->rbx */
    movq    %rbp, EDDY__CTX_RBP(%rdi)       /* from->rbp */
    movq    %r12, EDDY__CTX_R12(%rdi)       /* from->r12 */
    movq    %r13, EDDY__CTX_R13(%rdi)       /* from->r13 */
    movq    %r14, EDDY__CTX_R14(%rdi)       /* from->r14 */
    movq    %r15, EDDY__CTX_R15(%rdi)       /* from->r15 */
    ldmxcsr EDDY__CTX_MXCSR(%rsi)           /* to->mxcsr */
    fldcw   EDDY__CTX_FPUCW(%rsi)           /* to->fpucw */
    movq    EDDY__CTX_SP(%rsi), %rsp        /* to->sp */
    movq    EDDY__CTX_RBX(%rsi), %rbx       /* to->rbx */
    movq    EDDY__CTX_RBP(%rsi), %rbp       /* to->rbp */
    movq    EDDY__CTX_R12(%rsi), %r12       /* to->r12 */
    movq    EDDY__CTX_R13(%rsi), %r13       /* to->r13 */
    movq    EDDY__CTX_R14(%rsi), %r14       /* to->r14 */
    movq    EDDY__CTX_R15(%rsi), %r15       /* to->r15 */
    jmpq    *EDDY__CTX_PC(%rsi)             /* to->pc */
    .cfi_endproc
    .size   eddy__ctx_switch_fpu, .-eddy__ctx_switch_fpu

/* A new context starts here with rsp 16-byte aligned, r12 = entry function,
 * r13 = its argument. The call leaves rsp = 8 mod 16 at entry's first
 * instruction, as the ABI requires. The CFI marks this frame as the
 * outermost one, so debuggers and unwinders stop here. */
    .globl  eddy__ctx_entry
    .hidden eddy__ctx_entry
    .type   eddy__ctx_entry, @function
    .p2align 4
eddy__ctx_entry:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r13, %rdi                      /* arg = ctx->r13 */
    callq   *%r12                           /* entry = ctx->r12; never returns */
    ud2                                     /* unreachable: trap if it does */
    .cfi_endproc
    .size   eddy__ctx_entry, .-eddy__ctx_entry

    .globl  eddy__ctx_save_fpu
    .hidden eddy__ctx_save_fpu
    .type   eddy__ctx_save_fpu, @function
    .p2align 4
eddy__ctx_save_fpu:
    .cfi_startproc
    stmxcsr EDDY__CTX_MXCSR(%rdi)           /* ctx->mxcsr */
    fnstcw  EDDY__CTX_FPUCW(%rdi)           /* ctx->fpucw */
    ret
    .cfi_endproc
    .size   eddy__ctx_save_fpu, .-eddy__ctx_save_fpu

    .section .note.GNU-stack, "", @progbits

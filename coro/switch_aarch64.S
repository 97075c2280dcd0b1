/*
 * coro/switch_aarch64.S: the context switch for AArch64 (AAPCS64).
 *
 *   void eddy__ctx_switch(struct eddy__ctx *from, struct eddy__ctx *to);
 *   void eddy__ctx_switch_fpu(struct eddy__ctx *from, struct eddy__ctx *to);
 *   void eddy__ctx_entry(void);
 *   void eddy__ctx_save_fpu(struct eddy__ctx *ctx);
 *
 * ABI: AAPCS64 (6.1.1, 6.1.2) makes x19-x28, x29 (frame pointer), sp and the
 * low 64 bits of v8-v15 (d8-d15) callee-saved. x30 (lr) holds our return
 * address, which becomes the saved pc. Everything else may be clobbered by
 * a call. FPCR (rounding mode, flush-to-zero) is thread state shared by
 * eddy's coroutines unless they ask for save_fpu, as on x86-64.
 * The other side is resumed with br, not ret, for the same reason as on
 * x86-64: ret after a stack change misses in the return predictor.
 *
 * Offsets (coro/internal.h):
 *    0 sp     8 pc (x30)   16 x19 24 x20   32 x21 40 x22   48 x23 56 x24
 *   64 x25 72 x26   80 x27 88 x28   96 x29   104 d8 112 d9   120 d10 128 d11
 *   136 d12 144 d13   152 d14 160 d15   168 fpcr
 */
#include "coro/internal.h"

    .text

    .globl  eddy__ctx_switch
    .hidden eddy__ctx_switch
    .type   eddy__ctx_switch, %function
    .p2align 4
eddy__ctx_switch:
    .cfi_startproc
    mov     x9, sp                          /* x9 = our sp */
    stp     x9, x30, [x0, #EDDY__CTX_SP]    /* from->sp, from->pc */
    stp     x19, x20, [x0, #EDDY__CTX_X19]  /* from->x19, x20 */
    stp     x21, x22, [x0, #EDDY__CTX_X21]  /* from->x21, x22 */
    stp     x23, x24, [x0, #EDDY__CTX_X23]  /* from->x23, x24 */
    stp     x25, x26, [x0, #EDDY__CTX_X25]  /* from->x25, x26 */
    stp     x27, x28, [x0, #EDDY__CTX_X27]  /* from->x27, x28 */
    str     x29, [x0, #EDDY__CTX_X29]       /* from->x29 */
    stp     d8, d9, [x0, #EDDY__CTX_D8]     /* from->d8, d9 */
    stp     d10, d11, [x0, #EDDY__CTX_D10]  /* from->d10, d11 */
    stp     d12, d13, [x0, #EDDY__CTX_D12]  /* from->d12, d13 */
    stp     d14, d15, [x0, #EDDY__CTX_D14]  /* from->d14, d15 */
    ldp     x9, x30, [x1, #EDDY__CTX_SP]    /* to->sp, to->pc */
    ldp     x19, x20, [x1, #EDDY__CTX_X19]  /* to->x19, x20 */
    ldp     x21, x22, [x1, #EDDY__CTX_X21]  /* to->x21, x22 */
    ldp     x23, x24, [x1, #EDDY__CTX_X23]  /* to->x23, x24 */
    ldp     x25, x26, [x1, #EDDY__CTX_X25]  /* to->x25, x26 */
    ldp     x27, x28, [x1, #EDDY__CTX_X27]  /* to->x27, x28 */
    ldr     x29, [x1, #EDDY__CTX_X29]       /* to->x29 */
    ldp     d8, d9, [x1, #EDDY__CTX_D8]     /* to->d8, d9 */
    ldp     d10, d11, [x1, #EDDY__CTX_D10]  /* to->d10, d11 */
    ldp     d12, d13, [x1, #EDDY__CTX_D12]  /* to->d12, d13 */
    ldp     d14, d15, [x1, #EDDY__CTX_D14]  /* to->d14, d15 */
    mov     sp, x9                          /* sp = to->sp */
    br      x30                             /* pc = to->pc */
    .cfi_endproc
    .size   eddy__ctx_switch, .-eddy__ctx_switch

    .globl  eddy__ctx_switch_fpu
    .hidden eddy__ctx_switch_fpu
    .type   eddy__ctx_switch_fpu, %function
    .p2align 4
eddy__ctx_switch_fpu:
    .cfi_startproc
    mrs     x9, fpcr                        /* x9 = our fpcr */
    str     x9, [x0, #EDDY__CTX_FPCR]       /* from->fpcr */
    ldr     x9, [x1, #EDDY__CTX_FPCR]       /* x9 = to->fpcr */
    msr     fpcr, x9                        /* fpcr = to->fpcr */
    b       eddy__ctx_switch                /* the rest is the plain switch */
    .cfi_endproc
    .size   eddy__ctx_switch_fpu, .-eddy__ctx_switch_fpu

/* A new context starts here with sp 16-byte aligned, x19 = entry function,
 * x20 = its argument. */
    .globl  eddy__ctx_entry
    .hidden eddy__ctx_entry
    .type   eddy__ctx_entry, %function
    .p2align 4
eddy__ctx_entry:
    .cfi_startproc
    .cfi_undefined x30
    mov     x0, x20                         /* arg = ctx->x20 */
    blr     x19                             /* entry = ctx->x19; never returns */
    brk     #0                              /* unreachable: trap if it does */
    .cfi_endproc
    .size   eddy__ctx_entry, .-eddy__ctx_entry

    .globl  eddy__ctx_save_fpu
    .hidden eddy__ctx_save_fpu
    .type   eddy__ctx_save_fpu, %function
    .p2align 4
eddy__ctx_save_fpu:
    .cfi_startproc
    mrs     x9, fpcr                        /* x9 = fpcr */
    str     x9, [x0, #EDDY__CTX_FPCR]       /* ctx->fpcr */
    ret
    .cfi_endproc
    .size   eddy__ctx_save_fpu, .-eddy__ctx_save_fpu

    .section .note.GNU-stack, "", %progbits

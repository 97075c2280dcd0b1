/*
 * coro/switch_aarch64.S: the context switch for AArch64 (AAPCS64).
 *
 *   void eddy__ctx_switch(struct eddy__ctx *from, struct eddy__ctx *to);
 *   void eddy__ctx_switch_fpu(struct eddy__ctx *from, struct eddy__ctx *to,
 *                             struct eddy__ctx *save, const struct eddy__ctx *load);
 *   void eddy__ctx_entry(void);
 *   void eddy__ctx_save_fpu(struct eddy__ctx *ctx);
 *
 * ABI: AAPCS64 (6.1.1, 6.1.2) makes x19-x28, x29 (frame pointer), sp and the
 * low 64 bits of v8-v15 (d8-d15) callee-saved. x30 (lr) holds our return
 * address, which is where the suspended side resumes. Everything else may be
 * clobbered by a call. The switch stores these registers in a 160-byte frame
 * on the suspended stack and keeps only sp in *from, as on x86-64. FPCR
 * (rounding mode, flush-to-zero) is thread state shared by eddy's coroutines
 * unless they ask for save_fpu; coro.c then calls the _fpu variant, which
 * saves FPCR into *save and loads it from *load when it differs.
 * The other side resumes through ret (x30), which keeps the return stack
 * predictor in step with the real stacks, and is predicted when both sides
 * suspended at the same call site; to->sp is loaded first so that the load
 * overlaps the stores (see switch_x86_64.S for why and for measurements).
 *
 * Frame at ctx->sp (EDDY__FRAME_*, coro/internal.h, checked in coro.c):
 *    0 x19  8 x20   16 x21 24 x22   32 x23 40 x24   48 x25 56 x26
 *   64 x27 72 x28   80 x29 88 x30   96 d8 104 d9   112 d10 120 d11
 *   128 d12 136 d13   144 d14 152 d15
 * struct eddy__ctx: 0 sp   8 fpcr
 */
#include "coro/internal.h"

    .text

    .globl  eddy__ctx_switch
    .hidden eddy__ctx_switch
    .type   eddy__ctx_switch, %function
    .p2align 4
eddy__ctx_switch:
    .cfi_startproc
    ldr     x10, [x1, #EDDY__CTX_SP]            /* x10 = to->sp, loaded early */
    sub     sp, sp, #EDDY__FRAME_SIZE           /* room for the frame */
    stp     x19, x20, [sp, #EDDY__FRAME_X19]    /* frame x19, x20 */
    stp     x21, x22, [sp, #EDDY__FRAME_X21]    /* frame x21, x22 */
    stp     x23, x24, [sp, #EDDY__FRAME_X23]    /* frame x23, x24 */
    stp     x25, x26, [sp, #EDDY__FRAME_X25]    /* frame x25, x26 */
    stp     x27, x28, [sp, #EDDY__FRAME_X27]    /* frame x27, x28 */
    stp     x29, x30, [sp, #EDDY__FRAME_X29]    /* frame x29, x30 (resume address) */
    stp     d8, d9, [sp, #EDDY__FRAME_D8]       /* frame d8, d9 */
    stp     d10, d11, [sp, #EDDY__FRAME_D10]    /* frame d10, d11 */
    stp     d12, d13, [sp, #EDDY__FRAME_D12]    /* frame d12, d13 */
    stp     d14, d15, [sp, #EDDY__FRAME_D14]    /* frame d14, d15 */
    mov     x9, sp                              /* x9 = frame */
    str     x9, [x0, #EDDY__CTX_SP]             /* from->sp = frame */
    mov     sp, x10                             /* sp = to's frame */
    ldp     x19, x20, [sp, #EDDY__FRAME_X19]    /* frame x19, x20 */
    ldp     x21, x22, [sp, #EDDY__FRAME_X21]    /* frame x21, x22 */
    ldp     x23, x24, [sp, #EDDY__FRAME_X23]    /* frame x23, x24 */
    ldp     x25, x26, [sp, #EDDY__FRAME_X25]    /* frame x25, x26 */
    ldp     x27, x28, [sp, #EDDY__FRAME_X27]    /* frame x27, x28 */
    ldp     x29, x30, [sp, #EDDY__FRAME_X29]    /* frame x29, x30 (resume address) */
    ldp     d8, d9, [sp, #EDDY__FRAME_D8]       /* frame d8, d9 */
    ldp     d10, d11, [sp, #EDDY__FRAME_D10]    /* frame d10, d11 */
    ldp     d12, d13, [sp, #EDDY__FRAME_D12]    /* frame d12, d13 */
    ldp     d14, d15, [sp, #EDDY__FRAME_D14]    /* frame d14, d15 */
    add     sp, sp, #EDDY__FRAME_SIZE           /* pop the frame */
    ret                                         /* x30: resume to */
    .cfi_endproc
    .size   eddy__ctx_switch, .-eddy__ctx_switch

    .globl  eddy__ctx_switch_fpu
    .hidden eddy__ctx_switch_fpu
    .type   eddy__ctx_switch_fpu, %function
    .p2align 4
eddy__ctx_switch_fpu:
    .cfi_startproc
    mrs     x9, fpcr                            /* x9 = fpcr now */
    str     x9, [x2, #EDDY__CTX_FPU]            /* save->fpcr */
    ldr     x10, [x3, #EDDY__CTX_FPU]           /* x10 = load->fpcr */
    cmp     x9, x10                             /* same as now? */
    b.eq    eddy__ctx_switch                    /* nothing to load: plain switch */
    msr     fpcr, x10                           /* fpcr = load->fpcr */
    b       eddy__ctx_switch                    /* then the registers, as always */
    .cfi_endproc
    .size   eddy__ctx_switch_fpu, .-eddy__ctx_switch_fpu

/* A new context starts here with sp 16-byte aligned (its initial frame just
 * popped), x19 = entry function, x20 = its argument. */
    .globl  eddy__ctx_entry
    .hidden eddy__ctx_entry
    .type   eddy__ctx_entry, %function
    .p2align 4
eddy__ctx_entry:
    .cfi_startproc
    .cfi_undefined x30
    mov     x0, x20                             /* arg = frame x20 */
    blr     x19                                 /* entry = frame x19; never returns */
    brk     #0                                  /* unreachable: trap if it does */
    .cfi_endproc
    .size   eddy__ctx_entry, .-eddy__ctx_entry

    .globl  eddy__ctx_save_fpu
    .hidden eddy__ctx_save_fpu
    .type   eddy__ctx_save_fpu, %function
    .p2align 4
eddy__ctx_save_fpu:
    .cfi_startproc
    mrs     x9, fpcr                            /* x9 = fpcr */
    str     x9, [x0, #EDDY__CTX_FPU]            /* ctx->fpcr */
    ret
    .cfi_endproc
    .size   eddy__ctx_save_fpu, .-eddy__ctx_save_fpu

    .section .note.GNU-stack, "", %progbits

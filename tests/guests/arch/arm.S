@ SPDX-License-Identifier: GPL-2.0-or-later
@ Traps for the ARM decoder, freestanding (no C library): every call and
@ return below is the program's own. Exercised:
@ - the same address (dual) executed in ARM state and in Thumb state,
@   where it means different instructions;
@ - interworking: blx imm (ARM -> Thumb), blx reg with an even (ARM) and
@   an odd (Thumb) target, bx lr back to either state; blx ip (r12);
@ - returns by bx lr, pop {..., pc} (Thumb), ldr pc, [sp], #4 (ARM);
@ - conditional calls (ARM bleq/blne) and conditional calls and returns
@   inside Thumb IT blocks, taken and not taken.
    .syntax unified
    .text

    .arm
    .globl _start
    .type _start, %function
_start:
    bl      arm_leaf            @ ARM -> ARM, returns with bx lr
    blx     thumb_fn            @ ARM -> Thumb (immediate)
    ldr     r3, =dual           @ even: dual in ARM state
    blx     r3
    ldr     r3, =dual + 1       @ odd: the same address in Thumb state
    blx     r3
    movs    r0, #0
    bleq    arm_leaf            @ taken (Z set)
    blne    arm_ldr             @ not taken
    bl      arm_ldr
    mov     r0, #0
    mov     r7, #1              @ exit(0)
    svc     #0
    .size   _start, . - _start

    .type   arm_leaf, %function
arm_leaf:
    bx      lr
    .size   arm_leaf, . - arm_leaf

    .type   arm_ldr, %function  @ return by a post-indexed load of pc
arm_ldr:
    str     lr, [sp, #-4]!
    bl      arm_leaf
    ldr     pc, [sp], #4
    .size   arm_ldr, . - arm_ldr

    @ In ARM state: mov r4, r0, ror r7 (0xe1a04770), then bx lr.
    @ In Thumb state the first halfword, 0x4770, is bx lr itself.
    .type   dual, %function
dual:
    .inst   0xe1a04770
    bx      lr
    .size   dual, . - dual
    .ltorg

    .thumb
    .type   thumb_fn, %function
    .thumb_func
thumb_fn:
    push    {r4, lr}
    bl      thumb_leaf          @ Thumb -> Thumb
    ldr     r3, =arm_leaf       @ Thumb -> ARM by register
    blx     r3
    ldr     ip, =thumb_leaf + 1 @ through r12, which Capstone calls ip
    blx     ip
    movs    r0, #1
    cmp     r0, #1
    it      ne
    blne    thumb_leaf          @ not taken
    it      eq
    bleq    thumb_cond_ret      @ taken
    pop     {r4, pc}
    .size   thumb_fn, . - thumb_fn

    .type   thumb_leaf, %function
    .thumb_func
thumb_leaf:
    bx      lr
    .size   thumb_leaf, . - thumb_leaf

    .type   thumb_cond_ret, %function
    .thumb_func
thumb_cond_ret:                 @ returns from inside an IT block
    movs    r0, #0
    cmp     r0, #1
    it      eq
    bxeq    lr                  @ not taken
    push    {r4, lr}
    bl      thumb_leaf
    cmp     r0, #0
    it      eq
    popeq   {r4, pc}            @ taken
    pop     {r4, pc}
    .size   thumb_cond_ret, . - thumb_cond_ret
    .ltorg

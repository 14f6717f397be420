// SPDX-License-Identifier: GPL-2.0-or-later
// Traps for the AArch64 decoder, freestanding: bl, blr xN, ret, ret xN
// (a return through another register) and br x30 (taken as a return).
    .text
    .globl  _start
    .type   _start, %function
_start:
    bl      leaf
    adr     x9, leaf
    blr     x9
    bl      br_ret
    bl      ret_xn
    mov     x0, #0
    mov     x8, #93             // exit(0)
    svc     #0
    .size   _start, . - _start

    .type   leaf, %function
leaf:
    ret
    .size   leaf, . - leaf

    .type   br_ret, %function
br_ret:
    stp     x29, x30, [sp, #-16]!
    bl      leaf
    ldp     x29, x30, [sp], #16
    br      x30
    .size   br_ret, . - br_ret

    .type   ret_xn, %function
ret_xn:
    mov     x9, x30
    ret     x9
    .size   ret_xn, . - ret_xn

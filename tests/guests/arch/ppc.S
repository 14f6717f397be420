# SPDX-License-Identifier: GPL-2.0-or-later
# Traps for the PowerPC decoder (32-bit and 64-bit), freestanding: bl,
# bctrl, blr; `bcl 20,31,$+4` reading the pc (no frame); conditional calls
# (beql/bnel) and conditional returns (beqlr), taken and not taken.
#ifdef __powerpc64__
    .abiversion 2               # ELFv2: the entry point is code, not a descriptor
#endif
    .text
    .globl  _start
    .type   _start, @function
_start:
    bl      leaf
    bl      getpc
    lis     9, leaf@ha
    addi    9, 9, leaf@l
    mtctr   9
    bctrl
    li      3, 0
    cmpwi   3, 0
    bnel    leaf                # not taken
    beql    leaf                # taken
    bl      condret
    li      0, 1                # exit(0)
    li      3, 0
    sc
    .size   _start, . - _start

    .type   getpc, @function
getpc:
    mflr    0
    bcl     20, 31, 1f
1:  mflr    9
    mtlr    0
    blr
    .size   getpc, . - getpc

    .type   leaf, @function
leaf:
    blr
    .size   leaf, . - leaf

    .type   condret, @function
condret:
    li      3, 0
    cmpwi   3, 1
    beqlr                       # not taken
    cmpwi   3, 0
    beqlr                       # taken
    blr
    .size   condret, . - condret

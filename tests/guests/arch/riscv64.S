# SPDX-License-Identifier: GPL-2.0-or-later
# Traps for the RISC-V decoder, freestanding. Links through ra and through
# t0 (the alternate link register), compressed and full-size encodings, and
# `jalr ra, 0(t0)`: a return to t0 and a call of the same place at once
# (the ISA's pop-then-push hint, a coroutine switch).
    .text
    .globl  _start
    .type   _start, @function
_start:
    .option push
    .option norvc
    call    leaf                # auipc ra + jalr ra, 0(ra): full size
    jal     ra, leaf            # jal ra
    jal     t0, t0_leaf         # jal t0: a call with the alternate link
    .option pop
    la      a5, leaf
    jalr    a5                  # c.jalr a5
    jal     t0, co_a            # co_a switches to co_b, which follows
    .size   _start, . - _start
    .type   co_b, @function
co_b:                           # entered from co_a by jalr ra, 0(t0)
    ret                         # c.jr ra: back into co_a
    .size   co_b, . - co_b

    .type   leaf, @function
leaf:
    .option push
    .option norvc
    ret                         # jalr x0, 0(ra): full size
    .option pop
    .size   leaf, . - leaf

    .type   t0_leaf, %function
t0_leaf:
    jr      t0                  # c.jr t0: return through the alternate link
    .size   t0_leaf, . - t0_leaf

    .type   co_a, @function
co_a:
    .option push
    .option norvc
    jalr    ra, 0(t0)           # return to _start's co_b, calling it
    .option pop
    li      a0, 0               # co_b returned here
    li      a7, 93              # exit(0)
    ecall
    .size   co_a, . - co_a

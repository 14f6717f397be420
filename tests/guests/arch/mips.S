# SPDX-License-Identifier: GPL-2.0-or-later
# Traps for the MIPS decoder (o32 and n64), freestanding, delay slots
# explicit: jal, jalr, bal, `bal` over its own delay slot reading the pc (no
# frame), conditional calls (bltzal/bgezal) taken and not taken, and an
# epilogue whose delay slot releases the stack frame.
#include <sys/regdef.h>
#if _MIPS_SIM == _ABI64
# define LA dla
# define REG_S sd
# define REG_L ld
# define ADDIU daddiu
# define SYS_EXIT 5058
#else
# define LA la
# define REG_S sw
# define REG_L lw
# define ADDIU addiu
# define SYS_EXIT 4001
#endif
    .set    noreorder
    .text
    .globl  __start
    .type   __start, @function
__start:
    jal     leaf
    nop
    LA      t9, leaf
    jalr    t9
    nop
    bal     1f                  # reads the pc: 1 is the return address
    nop
1:  bltzal  zero, leaf          # not taken (0 < 0), links all the same
    nop
    li      t0, 1
    bgezal  t0, leaf            # taken
    nop
    jal     epi
    nop
    li      a0, 0
    li      v0, SYS_EXIT
    syscall
    .size   __start, . - __start

    .type   leaf, @function
leaf:
    jr      ra
    nop
    .size   leaf, . - leaf

    .type   epi, @function
epi:
    ADDIU   sp, sp, -16
    REG_S   ra, 8(sp)
    bal     leaf
    nop
    REG_L   ra, 8(sp)
    jr      ra
    ADDIU   sp, sp, 16          # in the delay slot
    .size   epi, . - epi

# SPDX-License-Identifier: GPL-2.0-or-later
# A trap for the i386 decoder, freestanding: `call next; pop` reads the pc
# (old position-independent code) and must not create a frame.
    .text
    .globl  _start
    .type   _start, @function
_start:
    call    leaf
    call    getpc
    call    leaf
    movl    $1, %eax            # exit(0)
    xorl    %ebx, %ebx
    int     $0x80
    .size   _start, . - _start

    .type   getpc, @function
getpc:
    call    1f
1:  popl    %eax                # eax = the address of 1
    call    leaf
    ret
    .size   getpc, . - getpc

    .type   leaf, @function
leaf:
    ret     $0                  # ret with an immediate
    .size   leaf, . - leaf

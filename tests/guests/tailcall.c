/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A tail call: forward() ends with a jump to target(), which the real stack
 * (and so the shadow stack) never sees as a call. Built with -O2. */
#include <stdio.h>

__attribute__((noinline)) void checkpoint(int tag) { __asm__ volatile("" ::"r"(tag) : "memory"); }

__attribute__((noinline)) int target(int x)
{
    checkpoint(x);
    return x * 3;
}

__attribute__((noinline)) int forward(int x)
{
    __asm__ volatile("" : "+r"(x));
    return target(x + 1);     /* compiled as jmp target at -O2 */
}

int main(int argc, char **argv)
{
    (void)argv;
    printf("%d\n", forward(argc));
    return 0;
}

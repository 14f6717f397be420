/* SPDX-License-Identifier: GPL-2.0-or-later */
/* setjmp/longjmp out of a recursion, then more calls from the same frame. */
#include <setjmp.h>
#include <stdio.h>

static jmp_buf env;

__attribute__((noinline)) void checkpoint(int tag) { __asm__ volatile("" ::"r"(tag) : "memory"); }

__attribute__((noinline)) int dive(int n)
{
    if (n == 0) {
        longjmp(env, 7);
    }
    return dive(n - 1) + 1;
}

__attribute__((noinline)) int after(int x) { checkpoint(2); return x + 1; }

__attribute__((noinline)) int run(void)
{
    int r = setjmp(env);
    if (r == 0) {
        return dive(25);
    }
    return after(r);
}

int main(void)
{
    int a = run();
    int b = run();
    printf("%d %d\n", a, b);
    return 0;
}

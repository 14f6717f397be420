/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Deep and mutual recursion, function pointers, a libc callback (qsort),
 * and a checkpoint whose call stack the tests compare with GDB's. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void checkpoint(int tag) { __asm__ volatile("" ::"r"(tag) : "memory"); }

__attribute__((noinline)) int deep(int n)
{
    if (n == 0) {
        checkpoint(1);
        return 0;
    }
    return deep(n - 1) + 1;
}

int is_odd(int n);
__attribute__((noinline)) int is_even(int n) { return n == 0 ? 1 : is_odd(n - 1); }
__attribute__((noinline)) int is_odd(int n) { return n == 0 ? 0 : is_even(n - 1); }

__attribute__((noinline)) int twice(int x) { return 2 * x; }
__attribute__((noinline)) int square(int x) { return x * x; }
__attribute__((noinline)) int negate(int x) { return -x; }

static int (*const ops[])(int) = { twice, square, negate };

__attribute__((noinline)) int apply_all(int x)
{
    int acc = 0;
    for (unsigned i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        acc += ops[i](x + (int)i);
    }
    return acc;
}

__attribute__((noinline)) int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

__attribute__((noinline)) int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

int main(int argc, char **argv)
{
    int depth = argc > 1 ? atoi(argv[1]) : 300;
    int v[16];
    for (int i = 0; i < 16; i++) {
        v[i] = (i * 7919) % 31;
    }
    qsort(v, 16, sizeof v[0], cmp_int);
    printf("deep=%d even=%d apply=%d fib=%d min=%d\n", deep(depth), is_even(41), apply_all(5),
           fib(12), v[0]);
    return 0;
}

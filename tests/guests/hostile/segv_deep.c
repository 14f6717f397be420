/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Dies of SIGSEGV argv[1] frames deep (default 10000): dive() recurses,
 * then writes through a null pointer. It prints the depth it will reach
 * first, since nothing runs after the fault. */
#include <stdio.h>
#include <stdlib.h>

static volatile int *nowhere;

__attribute__((noinline)) static long dive(long n)
{
    if (n == 0) {
        *nowhere = 1;
        return 0;
    }
    return dive(n - 1) + 1;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000;
    printf("diving %ld\n", n);
    fflush(stdout);
    return (int)dive(n - 1);
}

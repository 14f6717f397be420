/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Many calls and a known output: the guest whose trace fills a small disk.
 * Prints a checksum of its work every ROUND calls of leaf. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static unsigned leaf(unsigned x) { return x * 2654435761u + 1; }

__attribute__((noinline)) static unsigned mid(unsigned x) { return leaf(x) ^ leaf(x + 1); }

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    unsigned acc = 0;
    for (long i = 0; i < n; i++) {
        acc += mid((unsigned)i);
        if (i % 5000 == 4999) {
            printf("after %ld: %08x\n", i + 1, acc);
        }
    }
    printf("done %08x\n", acc);
    return 0;
}

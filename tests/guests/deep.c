/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A recursion a million frames deep, on a thread with a large stack, then
 * back up; a checkpoint at the bottom. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void checkpoint(long tag) { __asm__ volatile("" ::"r"(tag) : "memory"); }

__attribute__((noinline)) long down(long n)
{
    if (n == 0) {
        checkpoint(1);
        return 0;
    }
    return down(n - 1) + 1;
}

static void *run(void *arg)
{
    long n = (long)arg;
    return (void *)down(n);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    pthread_attr_t a;
    pthread_t t;
    void *r;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, (size_t)(n + 1000) * 64);
    pthread_create(&t, &a, run, (void *)n);
    pthread_join(t, &r);
    printf("%ld\n", (long)r);
    return (long)r == n ? 0 : 1;
}

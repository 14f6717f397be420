/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Starts and joins many short threads (argv[1], default 10000), a few at a
 * time, each making some calls. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) long work(long n) { return n < 2 ? n : work(n - 1) + 1; }

static void *body(void *arg) { return (void *)work((long)arg % 50); }

int main(int argc, char **argv)
{
    long total = argc > 1 ? atol(argv[1]) : 10000, sum = 0;
    for (long i = 0; i < total; i += 8) {
        pthread_t t[8];
        int n = 0;
        for (long j = i; j < total && j < i + 8; j++) {
            pthread_create(&t[n++], NULL, body, (void *)j);
        }
        for (int k = 0; k < n; k++) {
            void *r;
            pthread_join(t[k], &r);
            sum += (long)r;
        }
    }
    printf("%ld\n", sum);
    return 0;
}

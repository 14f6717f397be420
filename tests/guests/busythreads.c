/* SPDX-License-Identifier: GPL-2.0-or-later */
/* argv[1] threads (default 64) released together by a barrier, each making
 * argv[2] rounds (default 200) of calls and returns at once: a recursion
 * whose depth depends on the thread and the round, and a leaf. Each thread
 * prints its own thread id and how many calls of this file's functions it
 * made (counted by the functions themselves), then the totals. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_barrier_t start;
static long rounds = 200;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((noinline)) long leaf(long x, long *calls)
{
    ++*calls;
    return x * 3 + 1;
}

__attribute__((noinline)) long descend(long n, long *calls)
{
    ++*calls;
    return n ? descend(n - 1, calls) + leaf(n, calls) : 0;
}

__attribute__((noinline)) void *worker(void *arg)
{
    long id = (long)arg, calls = 1, sum = 0;   /* calls: this one */
    pthread_barrier_wait(&start);
    for (long r = 0; r < rounds; r++) {
        sum += descend((id + r) % 9, &calls);
    }
    pthread_mutex_lock(&out_lock);
    printf("THREAD tid=%d calls=%ld sum=%ld\n", (int)gettid(), calls, sum);
    pthread_mutex_unlock(&out_lock);
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 64;
    if (argc > 2) {
        rounds = atol(argv[2]);
    }
    if (n < 1 || n > 1024 || rounds < 0) {
        fprintf(stderr, "usage: busythreads [THREADS 1..1024 [ROUNDS]]\n");
        return 2;
    }
    pthread_t *t = calloc((size_t)n, sizeof *t);
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (long i = 0; i < n; i++) {
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    for (long i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
    }
    printf("DONE threads=%ld\n", n);
    return 0;
}

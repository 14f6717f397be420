/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Four threads, each calling different functions, at the same time. */
#include <pthread.h>
#include <stdio.h>

static pthread_barrier_t start;

__attribute__((noinline)) int leaf_a(int x) { return x + 1; }
__attribute__((noinline)) int leaf_b(int x) { return x * 2; }
__attribute__((noinline)) int rec_c(int n) { return n ? rec_c(n - 1) + 1 : 0; }
__attribute__((noinline)) int mid_d(int x) { return leaf_a(x) + leaf_b(x); }

__attribute__((noinline)) void *worker_a(void *p)
{
    pthread_barrier_wait(&start);
    long s = 0;
    for (int i = 0; i < 2000; i++) s += leaf_a(i);
    return (void *)s;
}

__attribute__((noinline)) void *worker_b(void *p)
{
    pthread_barrier_wait(&start);
    long s = 0;
    for (int i = 0; i < 1500; i++) s += leaf_b(i);
    return (void *)s;
}

__attribute__((noinline)) void *worker_c(void *p)
{
    pthread_barrier_wait(&start);
    long s = 0;
    for (int i = 0; i < 60; i++) s += rec_c(i);
    return (void *)s;
}

__attribute__((noinline)) void *worker_d(void *p)
{
    pthread_barrier_wait(&start);
    long s = 0;
    for (int i = 0; i < 800; i++) s += mid_d(i);
    return (void *)s;
}

int main(void)
{
    void *(*fns[4])(void *) = { worker_a, worker_b, worker_c, worker_d };
    pthread_t t[4];
    pthread_barrier_init(&start, NULL, 4);
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, fns[i], NULL);
    long total = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (long)r;
    }
    printf("%ld\n", total + rec_c(10));
    return 0;
}

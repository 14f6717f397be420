/* SPDX-License-Identifier: GPL-2.0-or-later */
/* pthread_exit and pthread_cancel from deep stacks: one thread calls
 * pthread_exit 300 frames deep, another is cancelled while blocked 300
 * frames deep, with a cleanup handler pushed every 50 frames. Repeated
 * ROUNDS times; the guest prints what it saw. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define DEPTH 300
#define ROUNDS 3

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static int cleanups, exit_dives, cancel_dives;
static pthread_barrier_t at_bottom;

static void cleanup(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    cleanups++;
    pthread_mutex_unlock(&m);
}

__attribute__((noinline)) static long exit_dive(long n)
{
    __atomic_add_fetch(&exit_dives, 1, __ATOMIC_RELAXED);
    if (n == 0) {
        pthread_exit((void *)42);
    }
    return exit_dive(n - 1) + 1;
}

__attribute__((noinline)) static long cancel_dive(long n)
{
    __atomic_add_fetch(&cancel_dives, 1, __ATOMIC_RELAXED);
    long r;
    if (n == 0) {
        pthread_barrier_wait(&at_bottom);
        for (;;) {
            pause();          /* a cancellation point */
        }
    }
    if (n % 50 == 0) {
        pthread_cleanup_push(cleanup, NULL);
        r = cancel_dive(n - 1) + 1;
        pthread_cleanup_pop(0);
    } else {
        r = cancel_dive(n - 1) + 1;
    }
    return r;
}

static void *exiter(void *arg) { return (void *)exit_dive((long)arg); }
static void *cancelled(void *arg) { return (void *)cancel_dive((long)arg); }

int main(void)
{
    pthread_barrier_init(&at_bottom, NULL, 2);
    for (int round = 0; round < ROUNDS; round++) {
        pthread_t a, b;
        void *ra, *rb;
        pthread_create(&a, NULL, exiter, (void *)(long)(DEPTH - 1));
        pthread_create(&b, NULL, cancelled, (void *)(long)(DEPTH - 1));
        pthread_join(a, &ra);
        pthread_barrier_wait(&at_bottom);
        pthread_cancel(b);
        pthread_join(b, &rb);
        printf("round %d: exit value %ld, cancelled %d\n", round, (long)ra, rb == PTHREAD_CANCELED);
    }
    printf("dives %d %d, cleanups %d\n", exit_dives, cancel_dives, cleanups);
    return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A multi-threaded guest for the whole-system tests (threaded stacks):
 * scripts/make-system-guest.sh puts it in the initramfs, and init runs two
 * copies at once with systhreads=1 on the kernel command line.
 *
 *   systhreads ID [DIR]
 *
 * The main thread and three threads (roles main, t1, t2, t3) each run a
 * chain of functions of their own, with names of their own:
 *
 *   ROLE_work -> ROLE_level1 -> ROLE_level2 -> ROLE_leaf
 *
 * ITERS times (3 calls per iteration), the leaf making system calls
 * (getppid every time, sched_yield, a write to /dev/null, a short
 * nanosleep now and then) so that the kernel runs on each thread's behalf
 * and the scheduler switches between them in the middle of their chains.
 * No function is shared between roles above the C library, so a call trace
 * split by thread must show, on each thread's user stack, only the calls of
 * that thread's role (and the C library's system-call wrappers).
 *
 * All four start together (a pthread barrier) so that with -smp 2 they
 * run at once. With DIR, the process first creates DIR/ready.ID and waits
 * for DIR/go (init creates it once every copy is ready), so two copies
 * overlap as well.
 *
 * Each thread prints one line, with one write() (threads and copies print
 * concurrently on one console):
 *
 *   SYSTHREADS ID=<id> pid=<getpid()> tid=<gettid()> role=<role>
 *     func=<ROLE_work> level1=<..> level2=<..> leaf=<..> calls=<N>
 *     chain=<ret of leaf>,<ret of level2>,<ret of level1>,<ret of work>
 *
 * (on one line): the addresses of its functions, the number of calls of
 * its own functions it made (work's call included), and the return
 * addresses its frames saw on the first iteration (__builtin_return_address),
 * top first, which is the shadow stack expected at ROLE_leaf's entry down
 * to ROLE_work's frame.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ITERS 1500
#define ROLES 4

typedef struct role_state {
    const char *name;
    void *(*work)(void *);
    void *level1, *level2, *leaf;
    void *chain[4];
    long calls;
    int devnull;
} role_state;

static role_state roles[ROLES];
static pthread_barrier_t start;
static int copy_id;

/* The system calls each leaf makes; the iteration number spreads them. */
static void syscalls(role_state *r, int i)
{
    (void)getppid();
    if (i % 4 == 0) {
        sched_yield();
    }
    if (i % 8 == 0 && r->devnull >= 0) {
        (void)!write(r->devnull, "x", 1);
    }
    if (i % 128 == 0) {
        struct timespec ts = { 0, 20000 };
        nanosleep(&ts, NULL);
    }
}

static void report(role_state *r)
{
    char line[512];
    int len = snprintf(line, sizeof line,
                       "SYSTHREADS ID=%d pid=%d tid=%ld role=%s func=%p level1=%p level2=%p "
                       "leaf=%p calls=%ld chain=%p,%p,%p,%p\n",
                       copy_id, (int)getpid(), (long)syscall(SYS_gettid), r->name,
                       (void *)r->work, r->level1, r->level2, r->leaf, r->calls,
                       r->chain[0], r->chain[1], r->chain[2], r->chain[3]);
    if (len > 0 && len < (int)sizeof line) {
        (void)!write(1, line, (size_t)len);
    }
}

/*
 * One role's chain. Every function is noinline and ends with a compiler
 * barrier, so each call in the source is a call in the binary (no tail
 * calls), and -O0 -fno-omit-frame-pointer keep the frames plain.
 */
#define ROLE_CHAIN(R, IDX)                                                     \
    __attribute__((noinline)) void R##_leaf(int i)                             \
    {                                                                          \
        role_state *r = &roles[IDX];                                           \
        if (i == 0) {                                                          \
            r->chain[0] = __builtin_return_address(0);                         \
        }                                                                      \
        r->calls++;                                                            \
        syscalls(r, i);                                                        \
        __asm__ volatile("" ::: "memory");                                     \
    }                                                                          \
    __attribute__((noinline)) void R##_level2(int i)                           \
    {                                                                          \
        if (i == 0) {                                                          \
            roles[IDX].chain[1] = __builtin_return_address(0);                 \
        }                                                                      \
        roles[IDX].calls++;                                                    \
        R##_leaf(i);                                                           \
        __asm__ volatile("" ::: "memory");                                     \
    }                                                                          \
    __attribute__((noinline)) void R##_level1(int i)                           \
    {                                                                          \
        if (i == 0) {                                                          \
            roles[IDX].chain[2] = __builtin_return_address(0);                 \
        }                                                                      \
        roles[IDX].calls++;                                                    \
        R##_level2(i);                                                         \
        __asm__ volatile("" ::: "memory");                                     \
    }                                                                          \
    __attribute__((noinline)) void *R##_work(void *arg)                        \
    {                                                                          \
        role_state *r = &roles[IDX];                                           \
        (void)arg;                                                             \
        r->chain[3] = __builtin_return_address(0);                             \
        r->calls++;                                                            \
        r->devnull = open("/dev/null", O_WRONLY);                              \
        pthread_barrier_wait(&start);                                          \
        for (int i = 0; i < ITERS; i++) {                                      \
            R##_level1(i);                                                     \
        }                                                                      \
        if (r->devnull >= 0) {                                                 \
            close(r->devnull);                                                 \
        }                                                                      \
        report(r);                                                             \
        __asm__ volatile("" ::: "memory");                                     \
        return NULL;                                                           \
    }                                                                          \
    static void R##_register(void)                                             \
    {                                                                          \
        roles[IDX] = (role_state){ #R, R##_work, (void *)R##_level1,           \
                                   (void *)R##_level2, (void *)R##_leaf,       \
                                   { 0 }, 0, -1 };                             \
    }

ROLE_CHAIN(main, 0)
ROLE_CHAIN(t1, 1)
ROLE_CHAIN(t2, 2)
ROLE_CHAIN(t3, 3)

/* Waits for DIR/go after announcing DIR/ready.ID (see the top comment). */
static int wait_for_go(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/ready.%d", dir, copy_id);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0) {
        perror("systhreads: ready");
        return -1;
    }
    close(fd);
    snprintf(path, sizeof path, "%s/go", dir);
    while (access(path, F_OK) != 0) {
        usleep(10000);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: systhreads ID [DIR]\n");
        return 2;
    }
    copy_id = atoi(argv[1]);
    main_register();
    t1_register();
    t2_register();
    t3_register();
    if (argc == 3 && wait_for_go(argv[2]) != 0) {
        return 1;
    }
    if (pthread_barrier_init(&start, NULL, ROLES) != 0) {
        return 1;
    }
    pthread_t th[ROLES];
    for (int i = 1; i < ROLES; i++) {
        if (pthread_create(&th[i], NULL, roles[i].work, NULL) != 0) {
            fprintf(stderr, "systhreads: pthread_create failed\n");
            return 1;
        }
    }
    main_work(NULL);
    for (int i = 1; i < ROLES; i++) {
        pthread_join(th[i], NULL);
    }
    return 0;
}

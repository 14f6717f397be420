/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Non-local exits out of deep recursion: siglongjmp, a signal handler that
 * longjmps out, exit() from deep code; a checkpoint after each. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static sigjmp_buf env;

__attribute__((noinline)) void checkpoint(int tag) { __asm__ volatile("" ::"r"(tag) : "memory"); }

__attribute__((noinline)) int sink(int n)
{
    if (n == 0) {
        siglongjmp(env, 1);
    }
    return sink(n - 1) + 1;
}

__attribute__((noinline)) int raiser(int n)
{
    if (n == 0) {
        raise(SIGUSR1);      /* the handler jumps out */
        return -1;
    }
    return raiser(n - 1) + 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    siglongjmp(env, 2);
}

__attribute__((noinline)) int level2(int tag) { checkpoint(tag); return tag; }
__attribute__((noinline)) int level1(int tag) { return level2(tag) + 1; }

__attribute__((noinline)) int quitter(int n)
{
    if (n == 0) {
        fflush(stdout);
        exit(0);
    }
    return quitter(n - 1) + 1;
}

int main(int argc, char **argv)
{
    int depth = argc > 1 ? atoi(argv[1]) : 200;
    signal(SIGUSR1, on_usr1);
    if (sigsetjmp(env, 1) == 0) {
        sink(depth);
    }
    level1(10);
    if (sigsetjmp(env, 1) == 0) {
        raiser(depth / 2);
    }
    level1(20);
    printf("done\n");
    quitter(depth / 4);
    return 1;
}

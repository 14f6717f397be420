/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Two coroutines (swapcontext) on their own stacks, recursing and yielding
 * to each other and to main; a checkpoint deep inside each. */
#include <stdio.h>
#include <sys/mman.h>
#include <ucontext.h>

#define STACK_SIZE (256 * 1024)

static ucontext_t main_ctx, ctx[2];

__attribute__((noinline)) void checkpoint(int tag) { __asm__ volatile("" ::"r"(tag) : "memory"); }

__attribute__((noinline)) static void yield(int self, int to)
{
    swapcontext(&ctx[self], to < 0 ? &main_ctx : &ctx[to]);
}

__attribute__((noinline)) int walk_a(int n)
{
    if (n == 0) {
        checkpoint(100);
        yield(0, 1);            /* to coroutine b */
        checkpoint(101);
        return 0;
    }
    return walk_a(n - 1) + 1;
}

__attribute__((noinline)) int walk_b(int n)
{
    if (n == 0) {
        checkpoint(200);
        yield(1, 0);            /* back to coroutine a */
        return 0;
    }
    return walk_b(n - 1) + 1;
}

static void body_a(void) { walk_a(12); }
static void body_b(void) { walk_b(7); }

int main(void)
{
    void (*bodies[2])(void) = { body_a, body_b };
    for (int i = 0; i < 2; i++) {
        void *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        getcontext(&ctx[i]);
        ctx[i].uc_stack.ss_sp = stack;
        ctx[i].uc_stack.ss_size = STACK_SIZE;
        ctx[i].uc_link = &main_ctx;
        makecontext(&ctx[i], bodies[i], 0);
    }
    swapcontext(&main_ctx, &ctx[0]);   /* a runs, yields to b, b to a, a ends */
    printf("coroutines done\n");
    return 0;
}

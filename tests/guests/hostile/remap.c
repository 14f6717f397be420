/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Code generated into an mmap'd buffer, run, unmapped and mapped again at
 * the same address with different code, several times. Generation k starts
 * with k nops, then calls gen_target[k % 4] and returns. Even generations
 * map the buffer RWX, odd ones write it RW and mprotect it RX. The targets
 * print which generation ran them. x86_64 only. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define BUF ((void *)0x10000000)
#define GENERATIONS 8

static int generation;

__attribute__((noinline)) void gen_t0(void) { printf("gen %d: t0\n", generation); }
__attribute__((noinline)) void gen_t1(void) { printf("gen %d: t1\n", generation); }
__attribute__((noinline)) void gen_t2(void) { printf("gen %d: t2\n", generation); }
__attribute__((noinline)) void gen_t3(void) { printf("gen %d: t3\n", generation); }

static void (*const targets[4])(void) = { gen_t0, gen_t1, gen_t2, gen_t3 };

int main(void)
{
    for (generation = 0; generation < GENERATIONS; generation++) {
        int rwx = generation % 2 == 0;
        unsigned char *code = mmap(BUF, 4096, PROT_READ | PROT_WRITE | (rwx ? PROT_EXEC : 0),
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (code != BUF) {
            perror("mmap");
            return 1;
        }
        int k = generation;
        memset(code, 0x90, (size_t)k);
        /* sub rsp,8; call rel32; add rsp,8; ret */
        static const unsigned char body[] = { 0x48, 0x83, 0xec, 0x08, 0xe8, 0, 0, 0, 0,
                                              0x48, 0x83, 0xc4, 0x08, 0xc3 };
        memcpy(code + k, body, sizeof body);
        int32_t rel = (int32_t)((intptr_t)targets[k % 4] - (intptr_t)(code + k + 9));
        memcpy(code + k + 5, &rel, 4);
        if (!rwx && mprotect(code, 4096, PROT_READ | PROT_EXEC) != 0) {
            perror("mprotect");
            return 1;
        }
        ((void (*)(void))(void *)code)();
        if (munmap(code, 4096) != 0) {
            perror("munmap");
            return 1;
        }
    }
    printf("buffer %p\n", BUF);
    return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Self-modifying code: a call site in an RWX buffer whose target is
 * rewritten between calls (by main), and a second one that patches its own
 * call instruction right before executing it. target_a/target_b record
 * which of them ran, in order; the guest prints that record. x86_64 only. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define BUF ((void *)0x10000000)   /* low: within rel32 reach of the program */

static char record[64];
static int n_record;

__attribute__((noinline)) int target_a(void) { record[n_record++] = 'a'; return 1; }
__attribute__((noinline)) int target_b(void) { record[n_record++] = 'b'; return 2; }

static unsigned char *code;

static int32_t rel_to(void *target, unsigned char *next_insn)
{
    return (int32_t)((intptr_t)target - (intptr_t)next_insn);
}

int main(void)
{
    code = mmap(BUF, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (code != BUF) {
        perror("mmap");
        return 1;
    }
    /* site X at +0: sub rsp,8; call rel32; add rsp,8; ret */
    static const unsigned char x[] = { 0x48, 0x83, 0xec, 0x08, 0xe8, 0, 0, 0, 0,
                                       0x48, 0x83, 0xc4, 0x08, 0xc3 };
    memcpy(code, x, sizeof x);
    /* site Y at +64: sub rsp,8; mov [rip+1],edi (the call's rel32); call rel32;
     * add rsp,8; ret */
    static const unsigned char y[] = { 0x48, 0x83, 0xec, 0x08, 0x89, 0x3d, 1, 0, 0, 0,
                                       0xe8, 0, 0, 0, 0, 0x48, 0x83, 0xc4, 0x08, 0xc3 };
    memcpy(code + 64, y, sizeof y);
    int (*site_x)(void) = (int (*)(void))(void *)code;
    int (*site_y)(int32_t) = (int (*)(int32_t))(void *)(code + 64);
    const char *plan = "abbaab";
    int sum = 0;
    for (const char *p = plan; *p; p++) {
        void *t = *p == 'a' ? (void *)target_a : (void *)target_b;
        int32_t rel = rel_to(t, code + 9);
        memcpy(code + 5, &rel, 4);              /* rewrite X's target */
        sum += site_x();
        void *u = *p == 'a' ? (void *)target_b : (void *)target_a;
        sum += site_y(rel_to(u, code + 64 + 15));   /* Y rewrites itself */
    }
    printf("buffer %p\nrecord %s\nsum %d\n", (void *)code, record, sum);
    return 0;
}

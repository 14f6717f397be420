/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Function identity. Built with -finstrument-functions: GCC calls
 * __cyg_profile_func_enter with the address of every function entered (the
 * address C's `&f` gives), and this program prints each distinct one,
 * "fn 0x<address>", before it exits, and the hooks' own addresses: its own
 * report of its functions' addresses. The functions are reached in the ways that matter:
 *   fib      direct calls, from main and recursively (on ppc64le a direct
 *            call enters a function that uses the TOC at its local entry)
 *   apply    a direct call that calls `twice` through a pointer
 *   twice    directly and through a pointer
 *   by_libc  called back by the C library's qsort
 * (noipa: no clone such as fib.constprop.0 gets an address of its own) and
 * C library functions through the linker's call stubs (qsort, snprintf,
 * puts, printf).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_SEEN 64

static void *seen[MAX_SEEN];
static int n_seen;
static volatile int touched;
static volatile int exits;    /* global data: functions using it set up a TOC (ppc64) */

__attribute__((no_instrument_function, noipa)) void __cyg_profile_func_enter(void *fn, void *site);
__attribute__((no_instrument_function, noipa)) void __cyg_profile_func_exit(void *fn, void *site);

void __cyg_profile_func_enter(void *fn, void *site)
{
    (void)site;
    for (int i = 0; i < n_seen; i++) {
        if (seen[i] == fn) {
            return;
        }
    }
    if (n_seen < MAX_SEEN - 2) {
        seen[n_seen++] = fn;
    }
}

void __cyg_profile_func_exit(void *fn, void *site)
{
    (void)fn;
    (void)site;
    exits++;     /* a side effect, or calls to an empty function may be dropped */
}

__attribute__((noipa)) int fib(int n)
{
    touched++;
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

__attribute__((noipa)) static int twice(int x)
{
    touched++;
    return 2 * x;
}

__attribute__((noipa)) int apply(int (*f)(int), int x)
{
    touched++;
    return f(x) + 1;
}

__attribute__((noipa)) static int by_libc(const void *a, const void *b)
{
    touched++;
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    (void)argv;
    int v[] = { 5, 3, 9, 1, 7 };
    qsort(v, sizeof v / sizeof v[0], sizeof v[0], by_libc);
    int r = fib(argc + 6) + apply(twice, v[0]) + twice(v[4]);
    char buf[32];
    snprintf(buf, sizeof buf, "result %d", r);
    puts(buf);
    /* the hooks are not instrumented: their addresses as C gives them */
    seen[n_seen++] = (void *)__cyg_profile_func_enter;
    seen[n_seen++] = (void *)__cyg_profile_func_exit;
    for (int i = 0; i < n_seen; i++) {
        printf("fn 0x%llx\n", (unsigned long long)(uintptr_t)seen[i]);
    }
    return touched == 0;
}

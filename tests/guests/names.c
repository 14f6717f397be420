/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Functions of every kind a name can come from: static (.symtab only),
 * exported (.dynsym too, with -rdynamic), a libc function entered directly
 * through a pointer from dlsym (libc's own symbol), and through the PLT
 * (qsort@plt). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*sorter_t)(void *, size_t, size_t, int (*)(const void *, const void *));

__attribute__((noinline)) static int by_value(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

__attribute__((noinline)) static int local_helper(int x)
{
    return x * 3 + 1;
}

__attribute__((noinline)) int exported_work(int n)
{
    int s = 0;
    for (int i = 0; i < n; i++) {
        s += local_helper(i);
    }
    return s;
}

int main(void)
{
    int v[8] = { 5, 3, 7, 1, 8, 2, 6, 4 };
    /* libc's qsort itself: in a non-PIE program, &qsort is the PLT stub */
    sorter_t direct = (sorter_t)dlsym(RTLD_DEFAULT, "qsort");
    direct(v, 8, sizeof v[0], by_value);
    qsort(v, 8, sizeof v[0], by_value);
    printf("%d %d\n", v[0], exported_work(4));
    return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Maps an ELF file (argv[1]) whole, PROT_READ|PROT_EXEC, and calls the
 * function at file offset argv[2] (hex) twice. The file's headers and
 * tables may be corrupted: only the code at that offset must be intact. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

__attribute__((noinline)) int call_it(int (*f)(int), int x) { return f(x); }

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: corrupt_elf FILE OFFSET\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[1]);
        return 1;
    }
    char *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    int (*f)(int) = (int (*)(int))(void *)(base + strtoul(argv[2], NULL, 16));
    int a = call_it(f, 10), b = call_it(f, 20);
    printf("results %d %d\n", a, b);
    printf("base %p\n", (void *)base);   /* differs natively: not compared */
    return 0;
}

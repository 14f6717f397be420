/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the libFuzzer harnesses of tests/fuzz/. */
#ifndef CSI_FUZZ_H
#define CSI_FUZZ_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A failed check: one line on stderr, then abort(), which libFuzzer
 * reports as a crash and saves the input. */
static void __attribute__((format(printf, 2, 3), noreturn, unused))
fuzz_fail(const char *harness, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", harness);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

#endif

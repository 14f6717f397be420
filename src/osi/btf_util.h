/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the image and layout readers share: their one-line errors, and
 * parsing BTF without libbpf printing its complaints on stderr. */
#ifndef OSI_BTF_UTIL_H
#define OSI_BTF_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

/* Writes the message into err (if any room); returns false, for `return osi_errf(...)`. */
static inline bool __attribute__((format(printf, 3, 4)))
osi_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

static inline int osi_btf_silent_(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    (void)level, (void)fmt, (void)ap;
    return 0;
}

/* libbpf's parse (which validates every type) of the blob, or NULL. */
static inline struct btf *osi_btf_parse(const uint8_t *p, size_t n)
{
    if (n > UINT32_MAX) {
        return NULL;
    }
    libbpf_print_fn_t old = libbpf_set_print(osi_btf_silent_);
    struct btf *btf = btf__new(p, (uint32_t)n);
    libbpf_set_print(old);
    if (btf && libbpf_get_error(btf)) {
        btf = NULL;
    }
    return btf;
}

#endif

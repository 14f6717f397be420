/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers shared by calltrace's formats. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <qemu-plugin.h>
#include "calltrace.h"

uint64_t ct_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

bool ct_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        p += w;
        len -= (size_t)w;
    }
    return true;
}

/*
 * qemu_plugin_path_to_binary() is declared by QEMU 10.0's qemu-plugin.h but
 * its linux-user QEMU binary does not export it (checked with nm -D on
 * 10.0.13): a plain reference would keep calltrace from loading. A weak
 * one is NULL there and works where QEMU provides it.
 */
extern const char *qemu_plugin_path_to_binary(void) __attribute__((weak));

/* QEMU 10.0's linux-user options that take a value (linux-user/main.c). */
static bool option_has_value(const char *opt)
{
    static const char *const with_value[] = {
        "g", "L", "s", "cpu", "E", "U", "0", "r", "B", "R", "t", "d", "dfilter", "D", "p",
        "tb-size", "seed", "trace", "plugin",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(with_value); i++) {
        if (strcmp(opt, with_value[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Without the API: the first argument of QEMU's command line that is not
 * an option is the guest program. */
static char *program_from_cmdline(void)
{
    char *raw = NULL;
    gsize len = 0;
    char *found = NULL;
    if (!g_file_get_contents("/proc/self/cmdline", &raw, &len, NULL)) {
        return NULL;
    }
    GPtrArray *argv = g_ptr_array_new();
    for (gsize i = 0; i < len; i += strlen(raw + i) + 1) {
        g_ptr_array_add(argv, raw + i);
    }
    for (guint i = 1; i < argv->len; i++) {
        const char *a = g_ptr_array_index(argv, i);
        if (a[0] != '-') {
            found = g_strdup(a);
            break;
        }
        const char *opt = a + (a[1] == '-' ? 2 : 1);
        if (strchr(opt, '=') == NULL && option_has_value(opt)) {
            i++;
        }
    }
    g_ptr_array_free(argv, TRUE);
    g_free(raw);
    return found;
}

const char *ct_program_path(void)
{
    static char *path;
    if (!path) {
        char *p = NULL;
        if (qemu_plugin_path_to_binary) {
            p = g_strdup(qemu_plugin_path_to_binary());
        }
        if (!p) {
            p = program_from_cmdline();
        }
        /* Absolute and canonical, as the mappings name it. */
        char *real = p ? realpath(p, NULL) : NULL;
        path = real ? g_strdup(real) : g_strdup(p ? p : "unknown");
        free(real);
        g_free(p);
    }
    return path;
}

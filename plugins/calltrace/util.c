/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers shared by calltrace's formats. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
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

uint64_t ct_clock_read(ct_clock *c)
{
    uint64_t now = ct_now_ns();
#if defined(__x86_64__)
    uint64_t tsc = __rdtsc();
    /* The rate over the interval since the last reading (a longer one
     * measures it better); too short an interval keeps the previous rate. */
    if (c->ns0 && tsc > c->tsc0 + 10000 && now > c->ns0) {
        c->mult = (uint64_t)(((unsigned __int128)(now - c->ns0) << 32) / (tsc - c->tsc0));
    }
    c->tsc0 = tsc;
    c->ns0 = now;
    c->left = c->mult ? CT_CLOCK_EVENTS : 0;
#endif
    c->last = now > c->last ? now : c->last;
    return c->last;
}

/*
 * Output errors. A full disk or a failing device must not crash the guest,
 * flood stderr or leave a torn record: the first failure is reported in one
 * line, the file is cut back to its last whole record, and every later
 * write of this calltrace instance is dropped, so the output is a complete
 * prefix of the trace and the guest runs on unchanged.
 */
static bool output_failed;

bool ct_output_ok(void)
{
    return !__atomic_load_n(&output_failed, __ATOMIC_ACQUIRE);
}

void ct_output_error(const char *what, int err)
{
    if (!__atomic_exchange_n(&output_failed, true, __ATOMIC_ACQ_REL)) {
        fprintf(stderr, "calltrace: cannot write %s: %s; output stops here (what was written "
                "is complete)\n", what, strerror(err));
    }
}

/* write() until done; the bytes written. */
static size_t write_some(int fd, const char *p, size_t len, int *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            *err = w < 0 ? errno : ENOSPC;
            break;
        }
        done += (size_t)w;
    }
    return done;
}

bool ct_write_all(int fd, const void *buf, size_t len)
{
    if (!ct_output_ok()) {
        return true;       /* dropped: the failure was reported already */
    }
    int err = 0;
    if (write_some(fd, buf, len, &err) == len) {
        return true;
    }
    __atomic_store_n(&output_failed, true, __ATOMIC_RELEASE);
    errno = err;
    return false;
}

size_t ct_cut_lines(const char *buf, size_t written)
{
    while (written && buf[written - 1] != '\n') {
        written--;
    }
    return written;
}

bool ct_append(int fd, const void *buf, size_t len, size_t (*cut)(const char *, size_t),
               const char *what)
{
    if (!ct_output_ok() || fd < 0) {
        return false;
    }
    struct stat st;
    bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    off_t start = regular ? lseek(fd, 0, SEEK_END) : 0;
    int err = 0;
    size_t done = write_some(fd, buf, len, &err);
    if (done == len) {
        return true;
    }
    /* Keep only whole records of what reached the file. Another process
     * appending to the same file (fork) at that moment may lose its tail
     * too; the file still ends at a record boundary of ours. */
    if (regular && start >= 0 && ftruncate(fd, start + (off_t)cut(buf, done)) < 0) {
        err = errno;
    }
    ct_output_error(what, err);
    return false;
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

int ct_open_append(const char *out, const char **name)
{
    if (!out || !*out) {
        *name = "stderr";
        return dup(STDERR_FILENO);
    }
    /* O_APPEND: a forked child's writes go after whole records only. */
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "calltrace: cannot open '%s': %s\n", out, strerror(errno));
        return -1;
    }
    *name = g_strdup_printf("'%s'", out);
    return fd;
}

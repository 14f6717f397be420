/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <glib.h>
#include "cache.h"
#include "image.h"

#define MAGIC "osi_linux layout 1"
#define FILE_MAX 4096            /* an entry is a few hundred bytes */
#define OFFSET_MAX (1u << 20)    /* a task_struct is a few KiB, randomised or not */

char *osi_cache_default_dir(void)
{
    return g_build_filename(g_get_user_cache_dir(), "callstack_instr", "osi", NULL);
}

/*
 * 128 bits of the image's bytes in two independent lanes, a few
 * milliseconds for a 14 MB image where GLib's SHA-256 took 100 (nearly a
 * third of what the cache saves). Not cryptographic, and it need not be:
 * whoever can make a kernel image collide with another can as well write
 * the cache file, and an entry that does not describe the running kernel
 * fails osi_linux's checks of every task it reads (the stacks fall back to
 * asid, as with any wrong image).
 */
static void image_hash(const uint8_t *p, size_t n, uint64_t out[2])
{
    uint64_t a = 0x243f6a8885a308d3ull ^ n, b = 0x13198a2e03707344ull + n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        a = (a ^ w) * 0x9e3779b97f4a7c15ull;
        a ^= a >> 29;
        b = (b + w) * 0xc2b2ae3d27d4eb4full;
        b = (b << 27) | (b >> 37);
    }
    uint64_t last = 0;
    memcpy(&last, p + i, n - i);
    a = (a ^ last) * 0x9e3779b97f4a7c15ull;
    b = (b + last) * 0xc2b2ae3d27d4eb4full;
    for (int r = 0; r < 2; r++) {
        a ^= b >> 31;
        a *= 0xff51afd7ed558ccdull;
        b ^= a >> 33;
        b *= 0xc4ceb9fe1a85ec53ull;
    }
    out[0] = a;
    out[1] = b;
}

char *osi_cache_file(const char *dir, const char *path, const char *arch)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > OSI_IMAGE_MAX_BYTES) {
        return NULL;
    }
    gchar *data = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &data, &len, NULL)) {
        return NULL;
    }
    uint64_t h[2];
    image_hash((const uint8_t *)data, len, h);
    g_free(data);
    char *name = g_strdup_printf("%s-%zu-%016" PRIx64 "%016" PRIx64 ".layout", arch, (size_t)len,
                                 h[0], h[1]);
    char *file = g_build_filename(dir, name, NULL);
    g_free(name);
    return file;
}

/* A number within [lo, hi], the whole value. */
static bool number(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    if (!g_ascii_isdigit(v[0])) {
        return false;
    }
    errno = 0;
    guint64 x = g_ascii_strtoull(v, &end, 10);
    if (errno || *end || x < lo || x > hi) {
        return false;
    }
    *out = x;
    return true;
}

/* Printable text only (it is shown in messages), within the field. */
static bool text(const char *v, char *out, size_t size)
{
    size_t n = strlen(v);
    if (n >= size) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
            return false;
        }
    }
    memcpy(out, v, n + 1);
    return true;
}

typedef struct field {
    const char *key;
    uint64_t lo, hi;
    size_t offset, size;     /* in osi_layout */
} field;

#define U32(name, lo, hi) { #name, lo, hi, offsetof(osi_layout, name), sizeof(uint32_t) }
#define U64(name, lo, hi) { #name, lo, hi, offsetof(osi_layout, name), sizeof(uint64_t) }
static const field fields[] = {
    U32(task_pid, 0, OFFSET_MAX), U32(task_tgid, 0, OFFSET_MAX), U32(task_comm, 0, OFFSET_MAX),
    U32(task_mm, 0, OFFSET_MAX), U32(task_flags, 0, OFFSET_MAX), U32(task_stack, 0, OFFSET_MAX),
    U32(comm_size, 1, 64), U32(mm_pgd, 0, OFFSET_MAX), U32(pid_size, 4, 8),
    U64(thread_size, 4096, 1u << 20), U64(percpu_current, 0, UINT32_MAX),
};

bool osi_cache_load(const char *file, const char *arch, osi_cached *out)
{
    gchar *data = NULL;
    gsize len = 0;
    struct stat st;
    if (!file || stat(file, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX ||
        !g_file_get_contents(file, &data, &len, NULL)) {
        return false;
    }
    memset(out, 0, sizeof *out);
    bool ok = strlen(data) == len;   /* (no NUL inside) */
    unsigned seen = 0;               /* bits: fields, then arch, format, version, percpu flag */
    gchar **lines = g_strsplit(data, "\n", -1);
    ok = ok && lines[0] && strcmp(lines[0], MAGIC) == 0;
    for (size_t i = 1; ok && lines[i]; i++) {
        if (!lines[i][0]) {
            continue;
        }
        char *sp = strchr(lines[i], ' ');
        if (!sp) {
            ok = false;
            break;
        }
        *sp = '\0';
        const char *k = lines[i], *v = sp + 1;
        size_t nf = G_N_ELEMENTS(fields);
        uint64_t x = 0;
        if (strcmp(k, "arch") == 0) {
            ok = strcmp(v, arch) == 0 && !(seen & (1u << nf));
            seen |= 1u << nf;
        } else if (strcmp(k, "format") == 0) {
            ok = text(v, out->format, sizeof out->format) && !(seen & (2u << nf));
            seen |= 2u << nf;
        } else if (strcmp(k, "version") == 0) {
            ok = text(v, out->version, sizeof out->version) && !(seen & (4u << nf));
            seen |= 4u << nf;
        } else if (strcmp(k, "has_percpu_current") == 0) {
            ok = number(v, 0, 1, &x) && !(seen & (8u << nf));
            out->layout.has_percpu_current = x != 0;
            seen |= 8u << nf;
        } else {
            size_t f = 0;
            while (f < nf && strcmp(k, fields[f].key) != 0) {
                f++;
            }
            ok = f < nf && !(seen & (1u << f)) && number(v, fields[f].lo, fields[f].hi, &x);
            if (ok) {
                char *dst = (char *)&out->layout + fields[f].offset;
                if (fields[f].size == sizeof(uint32_t)) {
                    uint32_t y = (uint32_t)x;
                    memcpy(dst, &y, sizeof y);
                } else {
                    memcpy(dst, &x, sizeof x);
                }
                seen |= 1u << f;
            }
        }
    }
    g_strfreev(lines);
    g_free(data);
    /* every key once; THREAD_SIZE a power of two */
    ok = ok && seen == (16u << G_N_ELEMENTS(fields)) - 1 &&
         (out->layout.thread_size & (out->layout.thread_size - 1)) == 0;
    if (!ok) {
        memset(out, 0, sizeof *out);
    }
    return ok;
}

bool osi_cache_store(const char *file, const char *arch, const osi_cached *in)
{
    g_autofree char *dir = g_path_get_dirname(file);
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        return false;
    }
    GString *s = g_string_new(MAGIC "\n");
    g_string_append_printf(s, "arch %s\nformat %s\nversion %s\nhas_percpu_current %d\n", arch,
                           in->format, in->version, in->layout.has_percpu_current ? 1 : 0);
    for (size_t f = 0; f < G_N_ELEMENTS(fields); f++) {
        const char *src = (const char *)&in->layout + fields[f].offset;
        uint64_t x = 0;
        if (fields[f].size == sizeof(uint32_t)) {
            uint32_t y;
            memcpy(&y, src, sizeof y);
            x = y;
        } else {
            memcpy(&x, src, sizeof x);
        }
        g_string_append_printf(s, "%s %" PRIu64 "\n", fields[f].key, x);
    }
    /* (GLib writes a temporary file and renames it) */
    bool ok = g_file_set_contents(file, s->str, (gssize)s->len, NULL);
    g_string_free(s, TRUE);
    return ok;
}

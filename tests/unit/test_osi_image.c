/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * osi_linux's readers (src/osi/image.c, layout.c) on the kernels the
 * whole-system tests boot (Debian 12's, from scripts/make-system-guest.sh),
 * against independent references:
 *   - the x86 BTF blob: the payload decompressed by the lz4 tool, then the
 *     .BTF section cut out by objcopy;
 *   - the offsets: pahole on the extracted blob (task_struct, mm_struct),
 *     and bpftool's dump of .data..percpu for current_task;
 *   - the banner: the bzImage setup header's own kernel_version string.
 * Then images made here from the real ones with the standard tools (gzip,
 * xz, lzma, bzip2, lz4 -l, zstd, lzop) must give the identical blob, and
 * hostile files one line of error each. Synthetic BTF (libbpf's writer)
 * covers the layouts the Debian kernels do not have (anonymous nesting,
 * pcpu_hot of Linux 6.2+, bitfields, missing members).
 */
#define _GNU_SOURCE   /* memmem */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/btf.h>

#include "check.h"
#include "osi/cache.h"
#include "osi/image.h"
#include "osi/layout.h"

#ifndef SRC_ROOT
#error "SRC_ROOT (the source tree) is set by meson"
#endif

enum { GZIP, XZ, LZMA, BZIP2, LZ4, ZSTD, LZO, NCODECS };
static const char *const codec[NCODECS] = { "gzip", "xz", "lzma", "bzip2", "lz4", "zstd", "lzo" };
/* Linux's own commands (scripts/Makefile.lib), at fast levels. */
static const char *const codec_cmd[NCODECS] = {
    "gzip -1 -n", "xz -0 --check=crc32", "lzma -0", "bzip2 -1", "lz4 -l -1", "zstd -1 -q", "lzop -1",
};

/* What every case starts from, made once. */
static struct {
    bool tried, ok;
    char why[512];
    char *dir;                 /* scratch directory */
    char *kernel[2];           /* the guests' kernels: x86_64 bzImage, arm64 Image */
    gchar *x86;                /* the bzImage's bytes */
    gsize x86_size;
    size_t x86_payload;        /* where its payload starts */
    size_t x86_payload_end;    /* and ends (more of the boot code follows) */
    char *vmlinux;             /* its payload decompressed by the lz4 tool */
    gchar *ref_btf;            /* .BTF cut out of it by objcopy */
    gsize ref_btf_size;
    osi_image arm;             /* the real arm64 Image, read */
} fx;

static char *path_in(const char *name)
{
    return g_build_filename(fx.dir, name, NULL);
}

/* Runs a shell command; its stdout into *out if out. */
static bool G_GNUC_PRINTF(2, 3) sh(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    char *so = NULL, *se = NULL;
    int status = -1;
    GError *e = NULL;
    bool ok = g_spawn_sync(NULL, argv, NULL, 0, NULL, NULL, &so, &se, &status, &e)
              && g_spawn_check_wait_status(status, NULL);
    if (!ok) {
        snprintf(fx.why, sizeof fx.why, "`%.200s` failed (status %d): %.200s", cmd, status,
                 e ? e->message : se);
    }
    g_clear_error(&e);
    if (out) {
        *out = so;
    } else {
        g_free(so);
    }
    g_free(se);
    g_free(cmd);
    return ok;
}

static bool put(const char *name, const void *p, size_t n)
{
    char *path = path_in(name);
    bool ok = g_file_set_contents(path, p, (gssize)n, NULL);
    g_free(path);
    return ok;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static bool make_fixtures(void)
{
    static const char *const arches[2] = { "x86_64", "aarch64" };
    char *out = NULL, err[512];
    bool ok = false;
    fx.dir = g_dir_make_tmp("osi-image-XXXXXX", NULL);
    if (!fx.dir) {
        snprintf(fx.why, sizeof fx.why, "no scratch directory");
        return false;
    }
    for (int a = 0; a < 2; a++) {
        /* The guest directory is the script's last line of output. */
        if (!sh(&out, "bash '%s/scripts/make-system-guest.sh' %s 2>/dev/null | tail -n 1",
                SRC_ROOT, arches[a])) {
            goto out;
        }
        g_strstrip(out);
        fx.kernel[a] = g_build_filename(out, "kernel", NULL);
        g_clear_pointer(&out, g_free);
        if (!g_file_test(fx.kernel[a], G_FILE_TEST_IS_REGULAR)) {
            snprintf(fx.why, sizeof fx.why, "no guest kernel %s", fx.kernel[a]);
            goto out;
        }
    }
    if (!g_file_get_contents(fx.kernel[0], &fx.x86, &fx.x86_size, NULL) || fx.x86_size < 0x250) {
        snprintf(fx.why, sizeof fx.why, "cannot read %s", fx.kernel[0]);
        goto out;
    }
    /* Linux's boot protocol: setup_sects, payload_offset, payload_length. */
    const uint8_t *k = (const uint8_t *)fx.x86;
    fx.x86_payload = ((size_t)k[0x1f1] + 1) * 512 + le32(k + 0x248);
    size_t plen = le32(k + 0x24c);
    fx.x86_payload_end = fx.x86_payload + plen;
    /* Without the uncompressed size Linux appends (the lz4 tool rejects it). */
    if (plen < 4 || fx.x86_payload + plen > fx.x86_size
        || !put("payload.lz4", k + fx.x86_payload, plen - 4)) {
        snprintf(fx.why, sizeof fx.why, "bad bzImage header in %s", fx.kernel[0]);
        goto out;
    }
    fx.vmlinux = path_in("vmlinux");
    char *ref = path_in("btf.ref");
    ok = sh(NULL, "cd '%s' && lz4 -d -c payload.lz4 > vmlinux && "
                  "objcopy -O binary --only-section=.BTF vmlinux btf.ref && "
                  "objcopy --remove-section=.BTF vmlinux nobtf.elf", fx.dir)
         && g_file_get_contents(ref, &fx.ref_btf, &fx.ref_btf_size, NULL);
    g_free(ref);
    if (!ok) {
        goto out;
    }
    /* Every codec at once: x86 payloads and the arm64 Image whole. */
    GString *cmd = g_string_new("");
    g_string_printf(cmd, "cd '%s' || exit 1; ", fx.dir);
    for (int c = 0; c < NCODECS; c++) {
        g_string_append_printf(cmd, "%s -c vmlinux > v.%s & ", codec_cmd[c], codec[c]);
    }
    g_string_append_printf(cmd, "gzip -1 -n -c '%s' > arm.gz & zstd -1 -q -c '%s' > arm.zst & wait",
                           fx.kernel[1], fx.kernel[1]);
    ok = sh(NULL, "%s", cmd->str);
    g_string_free(cmd, true);
    if (!ok) {
        goto out;
    }
    ok = false;
    if (!osi_image_load(fx.kernel[1], &fx.arm, err, sizeof err)) {
        snprintf(fx.why, sizeof fx.why, "the arm64 kernel: %.400s", err);
        goto out;
    }
    ok = true;
out:
    g_free(out);
    return ok;
}

static bool fixtures(int line)
{
    if (!fx.tried) {
        fx.tried = true;
        fx.ok = make_fixtures();
    }
    if (!fx.ok) {
        fail_at(line, "setting up: %s", fx.why);
    }
    return fx.ok;
}
#define FIXTURES() REQUIRE(fixtures(__LINE__))

static void free_fixtures(void)
{
    if (fx.dir) {
        char *quoted = g_shell_quote(fx.dir);
        char *cmd = g_strdup_printf("rm -rf %s", quoted);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", fx.dir);
        }
        g_free(cmd);
        g_free(quoted);
    }
    for (int a = 0; a < 2; a++) {
        g_free(fx.kernel[a]);
    }
    g_free(fx.dir);
    g_free(fx.x86);
    g_free(fx.vmlinux);
    g_free(fx.ref_btf);
    osi_image_free(&fx.arm);
}

/* An error as osi_image promises it: one non-empty line. */
static bool one_line(int line, const char *err, const char *want)
{
    if (!err[0] || strchr(err, '\n') || !strstr(err, want)) {
        fail_at(line, "error \"%s\", wanted one line with \"%s\"", err, want);
        return false;
    }
    return true;
}

/* Loading path fails with one line containing want. */
static bool load_fails(int line, const char *path, const char *want)
{
    osi_image img;
    char err[512];
    if (osi_image_load(path, &img, err, sizeof err)) {
        fail_at(line, "%s loaded (%s)", path, img.format);
        osi_image_free(&img);
        return false;
    }
    if (img.btf || img.btf_size) {
        fail_at(line, "a failed load left a blob");
        return false;
    }
    return one_line(line, err, want);
}
#define LOAD_FAILS(path, want) REQUIRE(load_fails(__LINE__, path, want))

/* Loading path gives exactly the blob `btf` and the format. */
static bool load_same(int line, const char *path, const char *format, const void *btf, size_t size)
{
    osi_image img;
    char err[512];
    bool ok = false;
    if (!osi_image_load(path, &img, err, sizeof err)) {
        fail_at(line, "%s: %s", path, err);
        return false;
    }
    if (strcmp(img.format, format) != 0) {
        fail_at(line, "format \"%s\", expected \"%s\"", img.format, format);
    } else if (img.btf_size != size || memcmp(img.btf, btf, size) != 0) {
        fail_at(line, "%s: a different BTF blob (%zu bytes, expected %zu)", path, img.btf_size, size);
    } else {
        ok = true;
    }
    osi_image_free(&img);
    return ok;
}
#define LOAD_SAME(path, format, btf, size) REQUIRE(load_same(__LINE__, path, format, btf, size))

/* ---- the real kernels against pahole and bpftool ---- */

/* pahole's offset and size of `name` in struct sname (anonymous members
 * are printed inline with their offsets in the struct). */
static bool pahole_member(const char *text, const char *name, uint32_t *off, uint32_t *size)
{
    char *pat = g_strdup_printf("[ *]%s(\\[\\d+\\])?;\\s+/\\*\\s+(\\d+)\\s+(\\d+) \\*/", name);
    GMatchInfo *m = NULL;
    GRegex *re = g_regex_new(pat, 0, 0, NULL);
    bool ok = g_regex_match(re, text, 0, &m);
    if (ok) {
        char *o = g_match_info_fetch(m, 2), *s = g_match_info_fetch(m, 3);
        *off = (uint32_t)strtoul(o, NULL, 10);
        *size = (uint32_t)strtoul(s, NULL, 10);
        g_free(o);
        g_free(s);
    }
    g_match_info_free(m);
    g_regex_unref(re);
    g_free(pat);
    return ok;
}

/* The layout of the blob against pahole and bpftool run on it. */
static void check_layout(const osi_image *img, const char *arch)
{
    osi_layout l;
    char err[512], *ts = NULL, *mm = NULL, *raw = NULL, *file = NULL;
    const char *names[] = { "pid", "tgid", "comm", "mm", "flags", "stack" };
    uint32_t po, ps, task_size = 0;
    FIXTURES();
    CHECK(osi_layout_from_btf(img->btf, img->btf_size, arch, &l, err, sizeof err), "%s", err);
    const uint32_t mine[] = { l.task_pid, l.task_tgid, l.task_comm, l.task_mm, l.task_flags,
                              l.task_stack };
    file = g_strdup_printf("%s/%s.btf", fx.dir, arch);
    CHECK(g_file_set_contents(file, (const char *)img->btf, (gssize)img->btf_size, NULL), "write");
    CHECK(sh(&ts, "pahole -F btf -C task_struct '%s'", file), "%s", fx.why);
    CHECK(sh(&mm, "pahole -F btf -C mm_struct '%s'", file), "%s", fx.why);
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        CHECK(pahole_member(ts, names[i], &po, &ps), "pahole shows no task_struct.%s", names[i]);
        CHECK(po == mine[i], "task_struct.%s at %u, pahole says %u", names[i], mine[i], po);
        if (strcmp(names[i], "comm") == 0) {
            CHECK(ps == l.comm_size && ps == 16, "comm %u bytes, pahole %u", l.comm_size, ps);
        }
        if (strcmp(names[i], "pid") == 0) {
            CHECK(ps == l.pid_size && ps == 4, "pid %u bytes, pahole %u", l.pid_size, ps);
        }
    }
    CHECK(pahole_member(mm, "pgd", &po, &ps), "pahole shows no mm_struct.pgd");
    CHECK(po == l.mm_pgd, "mm_struct.pgd at %u, pahole says %u", l.mm_pgd, po);
    const char *sz = strstr(ts, "/* size: ");
    CHECK(sz && (task_size = (uint32_t)strtoul(sz + 9, NULL, 10)) > 0, "no size from pahole");
    for (size_t i = 0; i < G_N_ELEMENTS(mine); i++) {
        CHECK(mine[i] < task_size, "%s at %u outside task_struct (%u bytes)", names[i], mine[i],
              task_size);
    }
    CHECK(l.task_tgid == l.task_pid + 4, "tgid does not follow pid (Linux 6.1)");
    CHECK(l.thread_size == 16384, "THREAD_SIZE %" PRIu64 ", Debian's kernels have 16 KiB",
          l.thread_size);
    if (strcmp(arch, "x86_64") == 0) {
        CHECK(sh(&raw, "bpftool btf dump file '%s' format raw | "
                       "sed -n \"s/.*offset=\\([0-9]*\\) size=8 (VAR 'current_task')/\\1/p\"", file),
              "%s", fx.why);
        CHECK(l.has_percpu_current, "x86_64 without the per-CPU current task");
        CHECK(raw[0] && l.percpu_current == strtoull(raw, NULL, 10),
              "current_task at 0x%" PRIx64 " in .data..percpu, bpftool says %s", l.percpu_current, raw);
    } else {
        CHECK(!l.has_percpu_current, "aarch64 has no per-CPU current task (sp_el0 holds it)");
    }
done:
    g_free(ts);
    g_free(mm);
    g_free(raw);
    g_free(file);
}

static void test_real_x86(void)
{
    osi_image img = { 0 };
    char err[512], want[160];
    FIXTURES();
    CHECK(osi_image_load(fx.kernel[0], &img, err, sizeof err), "%s", err);
    CHECK(strcmp(img.format, "bzImage, lz4 payload, ELF vmlinux") == 0, "format %s", img.format);
    CHECK(img.btf_size == fx.ref_btf_size && !memcmp(img.btf, fx.ref_btf, img.btf_size),
          "BTF differs from objcopy's .BTF (%zu vs %zu bytes)", img.btf_size, fx.ref_btf_size);
    /* The setup header's kernel_version (pointer at 0x20e, from 0x200):
     * its first word is the release the banner names. */
    const char *kv = fx.x86 + 0x200 + ((uint8_t)fx.x86[0x20e] | (uint8_t)fx.x86[0x20f] << 8);
    snprintf(want, sizeof want, "Linux version %.*s (", (int)strcspn(kv, " "), kv);
    CHECK(g_str_has_prefix(img.version, want), "banner \"%s\", expected \"%s...\"", img.version, want);
    CHECK(strstr(img.version, " #1 SMP"), "not the numbered banner: %s", img.version);
    check_layout(&img, "x86_64");
done:
    osi_image_free(&img);
}

static void test_real_arm64(void)
{
    FIXTURES();
    CHECK(strcmp(fx.arm.format, "arm64 Image") == 0, "format %s", fx.arm.format);
    CHECK(g_str_has_prefix(fx.arm.version, "Linux version 6.1.") && strstr(fx.arm.version, "-arm64 ("),
          "banner \"%s\"", fx.arm.version);
    check_layout(&fx.arm, "aarch64");
done:
    ;
}

/* ---- images made from the real ones ---- */

/* The real bzImage's setup with another payload (Linux appends the
 * uncompressed size after all but gzip's). */
static bool make_bzimage(const char *name, const void *payload, size_t n, bool size_append)
{
    GByteArray *b = g_byte_array_new();
    uint8_t tail[4];
    struct stat st;
    g_byte_array_append(b, (const uint8_t *)fx.x86, (guint)fx.x86_payload);
    g_byte_array_append(b, payload, (guint)n);
    if (size_append && stat(fx.vmlinux, &st) == 0) {
        put_le32(tail, (uint32_t)st.st_size);
        g_byte_array_append(b, tail, 4);
        n += 4;
    }
    put_le32(b->data + 0x24c, (uint32_t)n);
    bool ok = put(name, b->data, b->len);
    g_byte_array_free(b, true);
    return ok;
}

static void test_codecs(void)
{
    gchar *payload = NULL;
    char *path = NULL, *img = NULL, format[64];
    gsize n;
    FIXTURES();
    for (int c = 0; c < NCODECS; c++) {
        g_free(path);
        g_free(payload);
        path = g_strdup_printf("%s/v.%s", fx.dir, codec[c]);
        payload = NULL;
        CHECK(g_file_get_contents(path, &payload, &n, NULL) && n > 1000, "no %s output", codec[c]);
        char *name = g_strdup_printf("bz.%s", codec[c]);
        g_free(img);
        img = path_in(name);
        bool made = make_bzimage(name, payload, n, c != GZIP);
        g_free(name);
        CHECK(made, "write");
        snprintf(format, sizeof format, "bzImage, %s payload, ELF vmlinux", codec[c]);
        LOAD_SAME(img, format, fx.ref_btf, fx.ref_btf_size);
    }
done:
    g_free(payload);
    g_free(path);
    g_free(img);
}

/* Each codec's stream cut short, and its magic followed by garbage. */
static void test_codecs_damaged(void)
{
    gchar *payload = NULL;
    char *path = NULL, *img = NULL, want[64];
    gsize n;
    uint32_t x = 2463534242u;
    FIXTURES();
    img = path_in("bz.damaged");
    for (int c = 0; c < NCODECS; c++) {
        g_free(path);
        g_free(payload);
        path = g_strdup_printf("%s/v.%s", fx.dir, codec[c]);
        payload = NULL;
        CHECK(g_file_get_contents(path, &payload, &n, NULL) && n > (2u << 20), "no %s output", codec[c]);
        /* Cut 1 MiB in: inside the stream, yet quick to read up to. */
        CHECK(make_bzimage("bz.damaged", payload, 1 << 20, false), "write");
        snprintf(want, sizeof want, "truncated %s data", codec[c]);
        LOAD_FAILS(img, want);
        /* Keep the magic (lzop's whole header), scramble the rest. */
        size_t keep = c == LZO ? 64 : 16;
        for (size_t i = keep; i < 65536 && i < n; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            payload[i] = (char)x;
        }
        CHECK(make_bzimage("bz.damaged", payload, 65536, false), "write");
        osi_image im;
        char err[512];
        CHECK(!osi_image_load(img, &im, err, sizeof err), "garbage %s payload loaded", codec[c]);
        REQUIRE(one_line(__LINE__, err, codec[c]));
    }
done:
    g_free(payload);
    g_free(path);
    g_free(img);
}

static void test_bare_elf(void)
{
    FIXTURES();
    LOAD_SAME(fx.vmlinux, "ELF vmlinux", fx.ref_btf, fx.ref_btf_size);
done:
    ;
}

static void test_raw_btf(void)
{
    char *path = NULL;
    FIXTURES();
    path = path_in("btf.ref");
    LOAD_SAME(path, "raw BTF", fx.ref_btf, fx.ref_btf_size);
done:
    g_free(path);
}

static void test_arm64_gzip(void)
{
    char *path = NULL;
    FIXTURES();
    path = path_in("arm.gz");
    LOAD_SAME(path, "gzip-compressed, arm64 Image", fx.arm.btf, fx.arm.btf_size);
done:
    g_free(path);
}

/* An EFI zboot image: the header Linux's zboot-header.S lays out ("MZ",
 * "zimg", payload offset and size, the codec's name at 24), the payload
 * 4 KiB in. */
static void test_arm64_zboot(void)
{
    gchar *zst = NULL;
    char *path = NULL;
    gsize n;
    GByteArray *b = g_byte_array_new();
    uint8_t head[4096] = { 'M', 'Z', 0, 0, 'z', 'i', 'm', 'g' };
    FIXTURES();
    path = path_in("arm.zst");
    CHECK(g_file_get_contents(path, &zst, &n, NULL), "no zstd output");
    put_le32(head + 8, sizeof head);
    put_le32(head + 12, (uint32_t)n);
    memcpy(head + 24, "zstd", 5);
    g_byte_array_append(b, head, sizeof head);
    g_byte_array_append(b, (const uint8_t *)zst, (guint)n);
    g_byte_array_append(b, head, 512);   /* what follows the payload in a real one */
    g_free(path);
    path = path_in("arm.zboot");
    CHECK(g_file_set_contents(path, (const char *)b->data, b->len, NULL), "write");
    LOAD_SAME(path, "EFI zboot, zstd payload, arm64 Image", fx.arm.btf, fx.arm.btf_size);
    /* The payload claimed longer than the file. */
    put_le32(b->data + 12, (uint32_t)n + 4096);
    CHECK(g_file_set_contents(path, (const char *)b->data, b->len, NULL), "write");
    LOAD_FAILS(path, "truncated: the EFI zboot payload ends at byte");
done:
    g_byte_array_free(b, true);
    g_free(zst);
    g_free(path);
}

/* ---- hostile files ---- */

static void test_truncated(void)
{
    gchar *elf = NULL, *arm = NULL;
    gsize elf_n, arm_n;
    char *path = path_in("cut");
    FIXTURES();
    const size_t x86_cuts[] = { 0x100, 0x240, 0x1000, fx.x86_payload + 1000, fx.x86_size / 2,
                                fx.x86_payload_end - 1 };
    const char *x86_want[] = { "not a kernel image", "not a kernel image", "truncated: the bzImage",
                               "truncated: the bzImage", "truncated: the bzImage",
                               "truncated: the bzImage" };
    for (size_t i = 0; i < G_N_ELEMENTS(x86_cuts); i++) {
        CHECK(put("cut", fx.x86, x86_cuts[i]), "write");
        if (!load_fails(__LINE__, path, x86_want[i])) {
            g_strlcat(t_msg, " (cut at byte ", sizeof t_msg);
            char at[32];
            snprintf(at, sizeof at, "%zu)", x86_cuts[i]);
            g_strlcat(t_msg, at, sizeof t_msg);
            goto done;
        }
    }
    /* The ELF: cut in its first page, then before its section headers. */
    CHECK(g_file_get_contents(fx.vmlinux, &elf, &elf_n, NULL), "read vmlinux");
    CHECK(put("cut", elf, 1000), "write");
    LOAD_FAILS(path, "truncated: the ELF's section headers");
    uint64_t shoff = le32((const uint8_t *)elf + 0x28)
                     | (uint64_t)le32((const uint8_t *)elf + 0x2c) << 32;   /* e_shoff */
    CHECK(shoff + 100 < elf_n, "e_shoff %" PRIu64 " past the file", shoff);
    CHECK(put("cut", elf, shoff + 100), "write");
    LOAD_FAILS(path, "truncated: the ELF's section headers");
    /* The arm64 Image cut inside its BTF blob. */
    CHECK(g_file_get_contents(fx.kernel[1], &arm, &arm_n, NULL), "read the arm64 Image");
    const char *at = memmem(arm, arm_n, fx.arm.btf, 4096);
    CHECK(at, "the blob is not in the Image");
    CHECK(put("cut", arm, (size_t)(at - arm) + fx.arm.btf_size / 2), "write");
    LOAD_FAILS(path, "no BTF in");
done:
    g_free(elf);
    g_free(arm);
    g_free(path);
}

static void test_garbage(void)
{
    uint8_t junk[65536];
    uint32_t x = 88172645u;
    char *path = path_in("junk");
    FIXTURES();
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        junk[i] = (uint8_t)x;
    }
    junk[0] = 0xa5, junk[1] = 0x5a, junk[2] = 0x01, junk[3] = 0x02;
    CHECK(make_bzimage("junk", junk, sizeof junk, false), "write");
    LOAD_FAILS(path, "unknown payload compression (magic a5 5a 01 02)");
    CHECK(put("junk", junk, sizeof junk), "write");
    LOAD_FAILS(path, "not a kernel image and no BTF in it (magic a5 5a 01 02)");
done:
    g_free(path);
}

static void test_no_btf(void)
{
    char *path = path_in("nobtf.elf");
    FIXTURES();
    LOAD_FAILS(path, "the kernel was built without CONFIG_DEBUG_INFO_BTF");
    LOAD_FAILS("/proc/self/exe", "the kernel was built without CONFIG_DEBUG_INFO_BTF");
done:
    g_free(path);
}

static void test_not_files(void)
{
    char *empty = NULL, *missing = NULL;
    FIXTURES();
    empty = path_in("empty");
    missing = path_in("missing");
    CHECK(put("empty", "", 0), "write");
    LOAD_FAILS(empty, "empty file");
    LOAD_FAILS(fx.dir, "is a directory");
    LOAD_FAILS(missing, "No such file or directory");
    LOAD_FAILS("/dev/null", "not a regular file");
done:
    g_free(empty);
    g_free(missing);
}

/* 24 MiB of zeros in each codec, read with a 16 MiB limit. */
static void test_bombs(void)
{
    GString *cmd = g_string_new("");
    char *path = NULL;
    FIXTURES();
    g_string_printf(cmd, "cd '%s' && head -c 24M /dev/zero > zeros || exit 1; ", fx.dir);
    for (int c = 0; c < NCODECS; c++) {
        g_string_append_printf(cmd, "%s -c zeros > bomb.%s & ", codec_cmd[c], codec[c]);
    }
    g_string_append(cmd, "wait; rm zeros");
    CHECK(sh(NULL, "%s", cmd->str), "%s", fx.why);
    osi_image_set_limit((size_t)16 << 20);
    for (int c = 0; c < NCODECS; c++) {
        g_free(path);
        path = g_strdup_printf("%s/bomb.%s", fx.dir, codec[c]);
        LOAD_FAILS(path, "decompresses to more than 16 MiB");
    }
    /* A file above the limit is not read at all. */
    LOAD_FAILS(fx.vmlinux, "larger than 16 MiB");
done:
    osi_image_set_limit(0);
    g_string_free(cmd, true);
    g_free(path);
}

/* ---- layouts the Debian kernels do not show, in BTF written here ---- */

typedef struct synth {
    struct btf *btf;
    int u32, ptr, chr, pid_t;
} synth;

static void synth_begin(synth *s)
{
    s->btf = btf__new_empty();
    s->u32 = btf__add_int(s->btf, "unsigned int", 4, 0);
    s->chr = btf__add_int(s->btf, "char", 1, BTF_INT_SIGNED);
    s->ptr = btf__add_ptr(s->btf, 0);
    s->pid_t = btf__add_typedef(s->btf, "pid_t", btf__add_int(s->btf, "int", 4, BTF_INT_SIGNED));
}

/*
 * A task_struct of 256 bytes with its members spread over anonymous
 * structs and unions (as randomized layouts do), mm_struct's pgd inside an
 * anonymous struct; pid_bits 0, or a bitfield width for pid.
 */
static void synth_task(synth *s, int pid_bits)
{
    struct btf *b = s->btf;
    int comm = btf__add_array(b, s->u32, s->chr, 16);
    int inner = btf__add_struct(b, NULL, 24);          /* at 64 in the union below */
    btf__add_field(b, "tgid", s->pid_t, 0, 0);
    btf__add_field(b, "pid", s->pid_t, pid_bits ? 32 : 64, pid_bits);
    btf__add_field(b, "mm", s->ptr, 128, 0);
    int uni = btf__add_union(b, NULL, 24);             /* at 96 in task_struct */
    btf__add_field(b, "other", s->u32, 0, 0);
    btf__add_field(b, NULL, inner, 0, 0);
    btf__add_struct(b, "task_struct", 256);
    btf__add_field(b, "flags", s->u32, 0, 0);
    btf__add_field(b, "stack", s->ptr, 64, 0);
    btf__add_field(b, NULL, uni, 96 * 8, 0);
    btf__add_field(b, "comm", comm, 200 * 8, 0);
    int mm_anon = btf__add_struct(b, NULL, 16);
    btf__add_field(b, "mmap_base", s->ptr, 0, 0);
    btf__add_field(b, "pgd", s->ptr, 64, 0);
    btf__add_struct(b, "mm_struct", 64);
    btf__add_field(b, "count", s->u32, 0, 0);
    btf__add_field(b, NULL, mm_anon, 32 * 8, 0);
}

/* Linux 6.2+'s per-CPU pcpu_hot with current_task at 8 in it, at 0x2000. */
static void synth_pcpu_hot(synth *s)
{
    struct btf *b = s->btf;
    int hot = btf__add_struct(b, "pcpu_hot", 64);
    btf__add_field(b, "preempt_count", s->u32, 0, 0);
    btf__add_field(b, "current_task", s->ptr, 64, 0);
    int var = btf__add_var(b, "pcpu_hot", BTF_VAR_GLOBAL_ALLOCATED, hot);
    btf__add_datasec(b, ".data..percpu", 0x3000);
    btf__add_datasec_var_info(b, var, 0x2000, 64);
}

static bool synth_layout(synth *s, const char *arch, osi_layout *l, char *err, size_t errlen)
{
    __u32 n = 0;
    const void *raw = btf__raw_data(s->btf, &n);
    return osi_layout_from_btf(raw, n, arch, l, err, errlen);
}

static void test_layout_nested(void)
{
    synth s;
    osi_layout l;
    char err[256];
    synth_begin(&s);
    synth_task(&s, 0);
    synth_pcpu_hot(&s);
    CHECK(synth_layout(&s, "x86_64", &l, err, sizeof err), "%s", err);
    CHECK(l.task_flags == 0 && l.task_stack == 8 && l.task_tgid == 96 && l.task_pid == 104
          && l.task_mm == 112 && l.task_comm == 200 && l.comm_size == 16 && l.pid_size == 4,
          "offsets flags %u stack %u tgid %u pid %u mm %u comm %u/%u", l.task_flags, l.task_stack,
          l.task_tgid, l.task_pid, l.task_mm, l.task_comm, l.comm_size);
    CHECK(l.mm_pgd == 40, "pgd at %u, expected 40", l.mm_pgd);
    CHECK(l.has_percpu_current && l.percpu_current == 0x2008, "pcpu_hot.current_task at 0x%" PRIx64,
          l.percpu_current);
    CHECK(l.thread_size == 16384, "THREAD_SIZE %" PRIu64, l.thread_size);
    CHECK(synth_layout(&s, "aarch64", &l, err, sizeof err), "%s", err);
    CHECK(!l.has_percpu_current && l.task_pid == 104, "aarch64 layout");
    /* KASAN doubles the stacks. */
    btf__add_func(s.btf, "kasan_report", BTF_FUNC_GLOBAL, btf__add_func_proto(s.btf, 0));
    CHECK(synth_layout(&s, "aarch64", &l, err, sizeof err), "%s", err);
    CHECK(l.thread_size == 32768, "THREAD_SIZE with KASAN %" PRIu64, l.thread_size);
done:
    btf__free(s.btf);
}

static void test_layout_bad(void)
{
    synth s = { 0 };
    osi_layout l;
    char err[256];
    static const uint8_t junk[64] = { 0x9f, 0xeb, 1, 0, 24 };
    CHECK(!osi_layout_from_btf(junk, sizeof junk, "x86_64", &l, err, sizeof err), "junk accepted");
    REQUIRE(one_line(__LINE__, err, "not valid BTF"));
    synth_begin(&s);
    CHECK(!synth_layout(&s, "x86_64", &l, err, sizeof err), "no task_struct accepted");
    REQUIRE(one_line(__LINE__, err, "no struct task_struct"));
    btf__free(s.btf);
    synth_begin(&s);
    synth_task(&s, 0);
    CHECK(!synth_layout(&s, "x86_64", &l, err, sizeof err), "x86_64 without per-CPU data accepted");
    REQUIRE(one_line(__LINE__, err, ".data..percpu"));
    CHECK(!synth_layout(&s, "mips", &l, err, sizeof err), "mips accepted");
    REQUIRE(one_line(__LINE__, err, "not mips"));
    btf__free(s.btf);
    synth_begin(&s);
    synth_task(&s, 20);
    CHECK(!synth_layout(&s, "aarch64", &l, err, sizeof err), "bitfield pid accepted");
    REQUIRE(one_line(__LINE__, err, "task_struct.pid"));
done:
    btf__free(s.btf);
}

/* ---- the layout cache (src/osi/cache.c) ---- */

static bool same_entry(const osi_cached *a, const osi_cached *b)
{
    const osi_layout *x = &a->layout, *y = &b->layout;
    return x->task_pid == y->task_pid && x->task_tgid == y->task_tgid &&
           x->task_comm == y->task_comm && x->task_mm == y->task_mm &&
           x->task_flags == y->task_flags && x->task_stack == y->task_stack &&
           x->comm_size == y->comm_size && x->mm_pgd == y->mm_pgd && x->pid_size == y->pid_size &&
           x->thread_size == y->thread_size && x->has_percpu_current == y->has_percpu_current &&
           x->percpu_current == y->percpu_current && strcmp(a->format, b->format) == 0 &&
           strcmp(a->version, b->version) == 0;
}

/* good with line `line` (0: the first) replaced by `with` (NULL: dropped). */
static char *edit_line(const char *good, int line, const char *with)
{
    gchar **l = g_strsplit(good, "\n", -1);
    GString *s = g_string_new(NULL);
    for (int i = 0; l[i]; i++) {
        if (i != line) {
            g_string_append(s, l[i]);
        } else if (with) {
            g_string_append(s, with);
        } else {
            continue;
        }
        if (l[i + 1]) {
            g_string_append_c(s, '\n');
        }
    }
    g_strfreev(l);
    return g_string_free(s, FALSE);
}

/*
 * The entry read back equals what the image gave (itself checked against
 * pahole above); another kernel or architecture never hits it; and every
 * damaged entry is a miss, never a layout.
 */
static void test_cache(void)
{
    osi_image img = { 0 };
    osi_cached want, got;
    char err[512];
    gchar *dir = NULL, *file = NULL, *other = NULL, *good = NULL, *bad = NULL, *blocker = NULL;
    memset(&want, 0, sizeof want);
    FIXTURES();
    CHECK(osi_image_load(fx.kernel[0], &img, err, sizeof err), "%s", err);
    CHECK(osi_layout_from_btf(img.btf, img.btf_size, "x86_64", &want.layout, err, sizeof err),
          "%s", err);
    g_strlcpy(want.format, img.format, sizeof want.format);
    g_strlcpy(want.version, img.version, sizeof want.version);
    dir = g_build_filename(fx.dir, "cache", "osi", NULL);   /* made by the store */
    file = osi_cache_file(dir, fx.kernel[0], "x86_64");
    other = osi_cache_file(dir, fx.kernel[1], "x86_64");
    CHECK(file && other && strcmp(file, other) != 0, "two kernels, one cache file");
    CHECK(!osi_cache_load(file, "x86_64", &got), "a hit before anything was stored");
    CHECK(osi_cache_store(file, "x86_64", &want), "the store failed");
    CHECK(osi_cache_load(file, "x86_64", &got) && same_entry(&got, &want),
          "the entry read back differs from the image's");
    CHECK(!osi_cache_load(file, "aarch64", &got), "an x86_64 entry served for aarch64");
    CHECK(!osi_cache_file(dir, fx.dir, "x86_64"), "a directory named as an image");
    CHECK(g_file_get_contents(file, &good, NULL, NULL), "read back");
    int lines = 0;
    for (const char *c = good; *c; c++) {
        lines += *c == '\n';
    }
    /* every line dropped, and every line doubled */
    for (int i = 0; i < lines; i++) {
        gchar **l = g_strsplit(good, "\n", -1);
        g_autofree char *twice = g_strdup_printf("%s\n%s", l[i], l[i]);
        g_strfreev(l);
        for (int k = 0; k < 2; k++) {
            g_free(bad);
            bad = edit_line(good, i, k ? twice : NULL);
            CHECK(g_file_set_contents(file, bad, -1, NULL), "write");
            CHECK(!osi_cache_load(file, "x86_64", &got), "a hit with line %d %s", i + 1,
                  k ? "doubled" : "dropped");
        }
    }
    static const char *const replaced[] = {
        "osi_linux layout 2", "task_pid 2000000", "task_pid 0x970", "task_pid -4", "task_pid ",
        "task_pid 12 34", "thread_size 12288", "comm_size 0", "pid_size 2",
        "has_percpu_current 2", "version a\tb", "format \x1b[31m", "unknown_key 1", "task_pid",
        "percpu_current 99999999999",
    };
    for (size_t r = 0; r < G_N_ELEMENTS(replaced); r++) {
        /* in place of the line with the same key (the magic for the
         * first), or added at the end */
        size_t klen = strcspn(replaced[r], " ");
        int at = r == 0 ? 0 : lines;
        gchar **l = g_strsplit(good, "\n", -1);
        for (int i = 1; r > 0 && l[i]; i++) {
            if (strncmp(l[i], replaced[r], klen) == 0 && l[i][klen] == ' ') {
                at = i;
            }
        }
        g_strfreev(l);
        g_free(bad);
        bad = edit_line(good, at, replaced[r]);
        if (at == lines) {
            g_free(bad);
            bad = g_strdup_printf("%s%s\n", good, replaced[r]);
        }
        CHECK(g_file_set_contents(file, bad, -1, NULL), "write");
        CHECK(!osi_cache_load(file, "x86_64", &got), "a hit with \"%s\"", replaced[r]);
    }
    /* a NUL inside, an empty file, one too large */
    size_t n = strlen(good);
    g_free(bad);
    bad = g_strdup(good);
    bad[n / 2] = '\0';
    CHECK(g_file_set_contents(file, bad, (gssize)n, NULL), "write");
    CHECK(!osi_cache_load(file, "x86_64", &got), "a hit with a NUL inside");
    CHECK(g_file_set_contents(file, "", 0, NULL), "write");
    CHECK(!osi_cache_load(file, "x86_64", &got), "a hit on an empty file");
    g_free(bad);
    bad = g_strdup_printf("%s%*s\n", good, 5000, "");
    CHECK(g_file_set_contents(file, bad, -1, NULL), "write");
    CHECK(!osi_cache_load(file, "x86_64", &got), "a hit on a 5 KB file");
    /* the store heals it; a directory that cannot be made fails the store */
    CHECK(osi_cache_store(file, "x86_64", &want) && osi_cache_load(file, "x86_64", &got) &&
          same_entry(&got, &want), "not healed by a store");
    blocker = g_build_filename(fx.dir, "blocker", NULL);
    CHECK(g_file_set_contents(blocker, "x", 1, NULL), "write");
    g_free(file);
    file = g_build_filename(blocker, "osi", "x.layout", NULL);
    CHECK(!osi_cache_store(file, "x86_64", &want), "stored under a regular file");
done:
    osi_image_free(&img);
    g_free(dir);
    g_free(file);
    g_free(other);
    g_free(good);
    g_free(bad);
    g_free(blocker);
}

static const test_case tests[] = {
    { "real_x86", test_real_x86 },
    { "real_arm64", test_real_arm64 },
    { "codecs", test_codecs },
    { "codecs_damaged", test_codecs_damaged },
    { "bare_elf", test_bare_elf },
    { "raw_btf", test_raw_btf },
    { "arm64_gzip", test_arm64_gzip },
    { "arm64_zboot", test_arm64_zboot },
    { "truncated", test_truncated },
    { "garbage", test_garbage },
    { "no_btf", test_no_btf },
    { "not_files", test_not_files },
    { "bombs", test_bombs },
    { "layout_nested", test_layout_nested },
    { "layout_bad", test_layout_bad },
    { "cache", test_cache },
};

int main(int argc, char **argv)
{
    int r = run_cases(tests, G_N_ELEMENTS(tests), argc, argv, NULL);
    free_fixtures();
    return r;
}

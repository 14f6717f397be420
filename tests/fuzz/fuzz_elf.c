/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer harness for symbolisation (src/symbols/) on arbitrary files, as
 * a hostile guest can map them: the bytes become a file, read with the
 * entry points the plugin uses (csi_elf_read, the symbolizer over a maps
 * text placing the file's segments, lookups by address), with detached
 * debug files searched in a directory of the harness's own.
 *
 * Input: 4 bytes, little-endian, the length L of the program file; then the
 * program (L bytes, or what there is); the rest, if any, is its detached
 * debug file, placed where its build-id (read here with libelf directly)
 * says. The input bytes also go through the maps parser as text.
 *
 * Checks (abort on failure): nothing crashes or leaks; a debug file used is
 * inside the debug directory; symbols are sorted, named, and a lookup's
 * symbol contains the address looked up.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include "symbols/elf_symbols.h"
#include "symbols/maps.h"
#include "symbols/symbolizer.h"
#include "fuzz.h"

static char *dir, *debug_dir, *prog_path;

#define bad(...) fuzz_fail("fuzz_elf", __VA_ARGS__)

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    /* A new file rather than a truncated one: ext4 flushes a file
     * truncated after a write, which would slow each run down tenfold. */
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        bad("cannot write %s: %s", path, strerror(errno));
    }
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            bad("cannot write %s: %s", path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    close(fd);
}

static void remove_tree(void)
{
    if (dir) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "fuzz_elf: could not remove %s\n", dir);
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = g_get_tmp_dir();
    dir = g_build_filename(tmp, "fuzz_elf.XXXXXX", NULL);
    if (!g_mkdtemp(dir)) {
        bad("cannot make a directory in %s", tmp);
    }
    atexit(remove_tree);
    debug_dir = g_build_filename(dir, "debug", NULL);
    prog_path = g_build_filename(dir, "prog", NULL);
    mkdir(debug_dir, 0700);
    csi_elf_set_debug_root(debug_dir);
    elf_version(EV_CURRENT);
    return 0;
}

/* The program's GNU build-id in hex, or NULL: the first NT_GNU_BUILD_ID
 * note named "GNU" with more than one byte of any SHT_NOTE section. Read
 * here by walking the notes by hand (libelf converts their headers to host
 * order), independently of the code under test. */
static char *build_id(const uint8_t *p, size_t n)
{
    char *copy = g_memdup2(p, n ? n : 1), *hex = NULL;
    Elf *elf = elf_memory(copy, n);
    for (Elf_Scn *scn = NULL; elf && !hex && (scn = elf_nextscn(elf, scn));) {
        GElf_Shdr sh;
        Elf_Data *d = gelf_getshdr(scn, &sh) && sh.sh_type == SHT_NOTE ? elf_getdata(scn, NULL) : NULL;
        const uint8_t *q = d ? d->d_buf : NULL, *end = q ? q + d->d_size : NULL;
        while (q && !hex && end - q >= 12) {
            uint32_t w[3];
            memcpy(w, q, sizeof w);    /* namesz, descsz, type */
            size_t name_len = (w[0] + 3ull) & ~3ull, desc_len = (w[1] + 3ull) & ~3ull;
            if ((size_t)(end - q - 12) < name_len || (size_t)(end - q - 12) - name_len < w[1]) {
                break;
            }
            const uint8_t *name = q + 12, *desc = name + name_len;
            if (w[2] == NT_GNU_BUILD_ID && w[0] == 4 && w[1] > 1 && memcmp(name, "GNU", 4) == 0) {
                hex = g_malloc(2 * (size_t)w[1] + 1);
                for (size_t i = 0; i < w[1]; i++) {
                    snprintf(hex + 2 * i, 3, "%02x", desc[i]);
                }
            }
            q = (size_t)(end - desc) > desc_len ? desc + desc_len : end;
        }
    }
    if (elf) {
        elf_end(elf);
    }
    g_free(copy);
    return hex;
}

static void check_elf(const csi_elf_file *f, const uint8_t *data, size_t size)
{
    if (f->debug_file) {
        /* A path derived from the file's contents must stay in the debug
         * directory: no "..", no other root. */
        g_autofree char *prefix = g_strconcat(debug_dir, "/.build-id/", NULL);
        if (!g_str_has_prefix(f->debug_file, prefix) || strstr(f->debug_file, "/../") ||
            strchr(f->debug_file + strlen(prefix), '/') != f->debug_file + strlen(prefix) + 2) {
            bad("debug file %s outside %s", f->debug_file, prefix);
        }
    }
    for (size_t i = 0; i < f->n_syms; i++) {
        const csi_elf_sym *s = &f->syms[i];
        if (!s->name || !s->name[0]) {
            bad("symbol %zu has no name", i);
        }
        if (i && f->syms[i - 1].addr >= s->addr) {
            bad("symbols not sorted at %zu", i);
        }
        uint64_t probes[3] = { s->addr, s->addr + (s->size ? s->size - 1 : 0), s->addr - 1 };
        for (int k = 0; k < 3; k++) {
            const csi_elf_sym *got = csi_elf_find(f, probes[k]);
            if (got && probes[k] - got->addr >= (got->size ? got->size : 1)) {
                bad("lookup of %#" G_GINT64_MODIFIER "x gave %s at %#" G_GINT64_MODIFIER "x",
                    probes[k], got->name, got->addr);
            }
            if (k == 0 && got != s) {
                bad("lookup of %s's own address gave another symbol", s->name);
            }
        }
    }
    /* addresses from the input itself */
    for (size_t i = 0; i + 8 <= size && i < 256; i += 8) {
        uint64_t a;
        memcpy(&a, data + i, 8);
        const csi_elf_sym *got = csi_elf_find(f, a);
        if (got && a - got->addr >= (got->size ? got->size : 1)) {
            bad("lookup of %#" G_GINT64_MODIFIER "x outside its symbol", a);
        }
        uint64_t bias;
        (void)csi_elf_bias(f, a, a >> 3, a >> 40, &bias);
        (void)csi_elf_covers(f, a >> 1, a);
    }
}

/* The maps text QEMU would show with the file's segments mapped at `base`
 * (page-granular, as the kernel shows them). */
static char *maps_text(const csi_elf_file *f, uint64_t base)
{
    GString *t = g_string_new(NULL);
    g_string_append_printf(t, "%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x r--p 00000000 "
                           "fe:01 42 %s\n", base, base + 0x1000, prog_path);
    for (guint i = 0; i < f->loads->len && i < 16; i++) {
        const csi_elf_load *l = &g_array_index(f->loads, csi_elf_load, i);
        uint64_t start = base + (l->vaddr & ~0xfffull);
        uint64_t len = (l->memsz + (l->vaddr & 0xfff) + 0xfff) & ~0xfffull;
        if (len == 0 || len > (1ull << 32) || start + len <= start) {
            continue;
        }
        g_string_append_printf(t, "%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x r-xp %08"
                               G_GINT64_MODIFIER "x fe:01 42 %s\n", start, start + len,
                               l->offset & ~(uint64_t)0xfff, prog_path);
    }
    g_string_append(t, "7fff0000-7fff1000 rw-p 00000000 00:00 0 [stack]\n");
    return g_string_free(t, FALSE);
}

static char *read_maps(void *opaque)
{
    return g_strdup(opaque);
}

static void check_symbolizer(const csi_elf_file *f, uint64_t base)
{
    g_autofree char *text = maps_text(f, base);
    csi_symbolizer *sy = csi_symbolizer_new(read_maps, NULL, text);
    GArray *probe = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (size_t i = 0; i < f->n_syms && i < 64; i++) {
        uint64_t a = f->syms[i].addr + base;
        g_array_append_val(probe, a);
    }
    for (guint i = 0; i < f->loads->len && i < 16; i++) {
        const csi_elf_load *l = &g_array_index(f->loads, csi_elf_load, i);
        uint64_t a = base + l->vaddr;
        g_array_append_val(probe, a);
        a += l->memsz ? l->memsz - 1 : 0;
        g_array_append_val(probe, a);
    }
    uint64_t extra[] = { base, base - 1, 0, UINT64_MAX, 0x7fff0800 };
    g_array_append_vals(probe, extra, G_N_ELEMENTS(extra));
    for (guint i = 0; i < probe->len; i++) {
        uint64_t a = g_array_index(probe, uint64_t, i);
        csi_sym_result r;
        if (!csi_symbolizer_lookup(sy, a, &r)) {
            continue;
        }
        if (!r.module || strcmp(r.module, prog_path) != 0) {
            bad("address %#" G_GINT64_MODIFIER "x in module %s", a, r.module ? r.module : "NULL");
        }
        if (r.module_start > a || a >= r.module_end) {
            bad("address %#" G_GINT64_MODIFIER "x outside its module's extent", a);
        }
        if (r.name && a - r.sym_addr >= (r.sym_size ? r.sym_size : 1)) {
            bad("address %#" G_GINT64_MODIFIER "x outside its symbol %s", a, r.name);
        }
    }
    g_array_free(probe, TRUE);
    csi_symbolizer_free(sy);
}

static void check_maps(const uint8_t *data, size_t size)
{
    g_autofree char *text = g_strndup((const char *)data, size);
    for (uint64_t bias = 0; bias <= 0x1000; bias += 0x1000) {
        GArray *r = csi_maps_parse(text, bias);
        for (guint i = 0; i < r->len; i++) {
            const csi_map_region *m = &g_array_index(r, csi_map_region, i);
            if (m->start >= m->end || m->path[0] != '/' || (i && m->start < (m - 1)->start)) {
                bad("maps region %u malformed", i);
            }
            const csi_map_region *got = csi_maps_find(r, m->start);
            if (!got || got->start > m->start || m->start >= got->end) {
                bad("maps lookup of a region's start failed");
            }
        }
        csi_maps_free(r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) {
        return 0;
    }
    check_maps(data, size);
    uint32_t plen = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                    (uint32_t)data[3] << 24;
    const uint8_t *prog = data + 4;
    size_t prog_len = MIN((size_t)plen, size - 4);
    const uint8_t *dbg = prog + prog_len;
    size_t dbg_len = size - 4 - prog_len;

    write_file(prog_path, prog, prog_len);
    g_autofree char *id = dbg_len ? build_id(prog, prog_len) : NULL;
    g_autofree char *dbg_path = NULL;
    /* (a very long build-id makes a name too long for the file system) */
    if (id && strlen(id) < 200) {
        g_autofree char *sub = g_strdup_printf("%s/.build-id/%.2s", debug_dir, id);
        g_mkdir_with_parents(sub, 0700);
        dbg_path = g_strdup_printf("%s/%s.debug", sub, id + 2);
        write_file(dbg_path, dbg, dbg_len);
    }

    char *err = NULL;
    csi_elf_file *f = csi_elf_read(prog_path, &err);
    if (!f && !err) {
        bad("csi_elf_read failed without a message");
    }
    g_free(err);
    if (f) {
        check_elf(f, prog, prog_len);
        check_symbolizer(f, 0x40000000);
        csi_elf_free(f);
    }
    if (dbg_path) {
        unlink(dbg_path);
    }
    return 0;
}

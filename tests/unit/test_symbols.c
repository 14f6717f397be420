/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the symbolisation code (src/symbols/), natively, on this
 * test program itself: its own functions and libc's must be named as the
 * symbol tables name them, from maps texts shaped as the kernel and as QEMU
 * linux-user produce them. One line "PASS name" or "FAIL name: reason" per
 * case, then "N passed, N failed".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include "symbols/elf_symbols.h"
#include "symbols/maps.h"
#include "symbols/plt_stubs.h"
#include "symbols/symbolizer.h"
#include "check.h"


/* Functions with known names in this binary's .symtab. */
__attribute__((noinline)) int symbols_test_target(int x);
__attribute__((noinline)) int symbols_test_target(int x)
{
    return x * 3 + 1;
}

__attribute__((noinline)) static int local_target(int x)
{
    return x ^ 0x5a;
}

/* ---- maps readers ------------------------------------------------------ */

typedef struct fake {
    char *text;
    uint64_t bias;
    int reads;
} fake;

static char *read_fake(void *opaque)
{
    fake *f = opaque;
    f->reads++;
    return g_strdup(f->text);
}

static uint64_t bias_fake(void *opaque)
{
    return ((fake *)opaque)->bias;
}

static char *read_self(void *opaque)
{
    char *text = NULL;
    if (opaque) {
        ((fake *)opaque)->reads++;
    }
    g_file_get_contents("/proc/self/maps", &text, NULL, NULL);
    return text;
}

static char *self_path(void)
{
    return g_file_read_link("/proc/self/exe", NULL);
}

/* ---- cases --------------------------------------------------------------- */

static void t_maps_parse(void)
{
    const char *text =
        "00400000-00401000 r--p 00000000 08:01 42   /bin/prog\n"
        "00401000-00402000 r-xp 00001000 08:01 42   /bin/prog\n"
        "00600000-00621000 rw-p 00000000 00:00 0    [heap]\n"
        "7f0000000000-7f0000001000 r-xp 00000000 00:00 0 \n"
        "7f0000001000-7f0000002000 r--p 00000000 08:01 43   /tmp/with space/lib.so\n"
        "7f0000002000-7f0000003000 r--p 00000000 08:01 44   /tmp/gone.so (deleted)\n"
        "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0    [stack]\n";
    GArray *r = csi_maps_parse(text, 0), *shifted = NULL;
    CHECK(r->len == 3, "expected 3 file regions, got %u", r->len);
    const csi_map_region *a = &g_array_index(r, csi_map_region, 1);
    CHECK(a->start == 0x401000 && a->end == 0x402000 && a->offset == 0x1000 && a->exec &&
          strcmp(a->path, "/bin/prog") == 0, "second region wrong");
    CHECK(strcmp(g_array_index(r, csi_map_region, 2).path, "/tmp/with space/lib.so") == 0,
          "a path with a space is kept whole");
    CHECK(csi_maps_find(r, 0x400fff) == &g_array_index(r, csi_map_region, 0), "find in first");
    CHECK(csi_maps_find(r, 0x401000) == a, "find at a region's start");
    CHECK(csi_maps_find(r, 0x402000) == NULL, "end is exclusive");
    CHECK(csi_maps_find(r, 0x3fffff) == NULL, "below everything");
    CHECK(csi_maps_find(r, 0x7f0000000500) == NULL, "anonymous memory has no region");
    /* guest_base: regions below it are not guest memory */
    shifted = csi_maps_parse(text, 0x500000);
    CHECK(shifted->len == 1 && g_array_index(shifted, csi_map_region, 0).start ==
          0x7f0000001000 - 0x500000, "shift by the bias");
done:
    csi_maps_free(r);
    csi_maps_free(shifted);
}

static void t_self_functions(void)
{
    csi_symbolizer *s = csi_symbolizer_new(read_self, NULL, NULL);
    g_autofree char *exe = self_path();
    csi_sym_result r;
    uint64_t f = (uint64_t)(uintptr_t)&symbols_test_target;
    uint64_t l = (uint64_t)(uintptr_t)&local_target;
    CHECK(csi_symbolizer_lookup(s, f, &r), "own function not in a module");
    CHECK(r.name && strcmp(r.name, "symbols_test_target") == 0, "name %s", r.name ? r.name : "(null)");
    CHECK(r.sym_addr == f, "symbol address " PX " != " PX, r.sym_addr, f);
    CHECK(strcmp(r.module, exe) == 0, "module %s, expected %s", r.module, exe);
    CHECK(r.module_start <= f && f < r.module_end, "extent");
    CHECK(csi_symbolizer_lookup(s, f + 3, &r) && r.name && r.sym_addr == f,
          "an address inside the function names it");
    CHECK(csi_symbolizer_lookup(s, l, &r) && r.name && strcmp(r.name, "local_target") == 0,
          "a static function (.symtab)");
    (void)symbols_test_target(local_target(1));
done:
    csi_symbolizer_free(s);
}

static void t_libc_function(void)
{
    fake counter = { 0 };
    csi_symbolizer *s = csi_symbolizer_new(read_self, NULL, &counter);
    csi_sym_result r;
    /* qsort's address in libc itself (not a PLT stub of ours, nor a
     * sanitizer's interceptor) */
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    uint64_t q = libc ? (uint64_t)(uintptr_t)dlsym(libc, "qsort") : 0;
    if (libc) {
        dlclose(libc);
    }
    CHECK(q, "no qsort");
    CHECK(csi_symbolizer_lookup(s, q, &r), "qsort not in a module");
    CHECK(r.module && strstr(r.module, "libc.so"), "module %s", r.module);
    CHECK(r.name && strcmp(r.name, "qsort") == 0, "name %s", r.name ? r.name : "(null)");
    /* the module's bias agrees with the dynamic linker's */
    Dl_info info;
    CHECK(dladdr((void *)(uintptr_t)q, &info) && (uint64_t)(uintptr_t)info.dli_fbase == r.module_start,
          "module start " PX " != dladdr's base %p", r.module_start, info.dli_fbase);
    int reads = counter.reads;
    /* heap memory: no module, and a second miss on that page reads nothing */
    void *heap = g_malloc(64);
    CHECK(!csi_symbolizer_lookup(s, (uint64_t)(uintptr_t)heap, &r), "heap named");
    CHECK(!csi_symbolizer_lookup(s, (uint64_t)(uintptr_t)heap + 8, &r), "heap named");
    CHECK(counter.reads == reads + 1, "maps read %d times for one unmapped page",
          counter.reads - reads);
    g_free(heap);
done:
    csi_symbolizer_free(s);
}

/*
 * QEMU linux-user maps a guest's segments without host execute permission,
 * so the kernel merges them: one region from offset 0 over text and rodata,
 * then the page shared by .rodata's end and .data's start a second time.
 * The second region's offset alone would give a wrong bias. Built here from
 * this binary's own PT_LOADs, at a made-up base and guest_base.
 */
static void t_qemu_layout(void)
{
    g_autofree char *exe = self_path();
    char *err = NULL;
    csi_elf_file *elf = csi_elf_read(exe, &err);
    csi_symbolizer *s = NULL;
    GString *text = g_string_new(NULL);
    fake fk = { 0 };
    CHECK(elf, "cannot read %s: %s", exe, err);
    CHECK(elf->loads->len >= 2, "expected 2+ PT_LOADs");
    const uint64_t base = 0x5500000000, guest_base = 0x100000, page = 0x1000;
    const csi_elf_load *first = &g_array_index(elf->loads, csi_elf_load, 0);
    CHECK(first->offset == 0, "first PT_LOAD at offset 0");
    /* one merged read-only region over every segment but the last, then
     * the last (writable) as the kernel maps it */
    const csi_elf_load *last = &g_array_index(elf->loads, csi_elf_load, elf->loads->len - 1);
    uint64_t ro_end = (last->vaddr & ~(page - 1));
    g_string_append_printf(text, "%" PRIx64 "-%" PRIx64 " r--p 00000000 08:01 1 %s\n",
                           guest_base + base, guest_base + base + ro_end, exe);
    /* The writable region's file page is given as the previous segment's
     * first page: the file page that page also holds (when .rodata ends in
     * the page where .data starts, as in small programs). */
    const csi_elf_load *prev = &g_array_index(elf->loads, csi_elf_load, elf->loads->len - 2);
    g_string_append_printf(text, "%" PRIx64 "-%" PRIx64 " rw-p %08" PRIx64 " 08:01 1 %s\n",
                           guest_base + base + ro_end,
                           guest_base + base + ((last->vaddr + last->memsz + page - 1) & ~(page - 1)),
                           prev->offset & ~(page - 1), exe);
    fk.text = text->str;
    fk.bias = guest_base;
    s = csi_symbolizer_new(read_fake, bias_fake, &fk);
    uint64_t real_bias = 0;
    {
        Dl_info info;
        CHECK(dladdr((void *)&symbols_test_target, &info), "dladdr");
        real_bias = (uint64_t)(uintptr_t)info.dli_fbase - first->vaddr;
    }
    uint64_t link = (uint64_t)(uintptr_t)&symbols_test_target - real_bias;
    csi_sym_result r;
    CHECK(csi_symbolizer_lookup(s, base + link, &r), "not found in the fake layout");
    CHECK(r.name && strcmp(r.name, "symbols_test_target") == 0, "name %s", r.name ? r.name : "-");
    CHECK(r.module_base == base, "bias " PX ", expected " PX, r.module_base, base);
    CHECK(r.module_start == base, "module start " PX, r.module_start);
    /* an address in the writable region belongs to the same module */
    csi_sym_result w;
    CHECK(csi_symbolizer_lookup(s, base + ro_end + 8, &w), "writable region not found");
    CHECK(w.module_base == base && w.module_start == base, "writable region: bias " PX
          " start " PX ": a second module", w.module_base, w.module_start);
done:
    csi_symbolizer_free(s);
    csi_elf_free(elf);
    g_free(err);
    g_string_free(text, TRUE);
}

/* The file libc's qsort_r is in (the loaded libc). */
static bool libc_file(Dl_info *info)
{
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void *qsort_r_addr = libc ? dlsym(libc, "qsort_r") : NULL;
    if (libc) {
        dlclose(libc);
    }
    return qsort_r_addr && dladdr(qsort_r_addr, info);
}

/* Debian's libc has no .symtab: its static functions come from libc6-dbg's
 * detached debug file, found by build-id. */
static void t_debug_file(void)
{
    Dl_info info;
    char *err = NULL;
    csi_elf_file *f = NULL;
    CHECK(libc_file(&info), "no libc qsort_r");
    f = csi_elf_read(info.dli_fname, &err);
    CHECK(f, "cannot read %s: %s", info.dli_fname, err);
    CHECK(f->debug_file, "%s: no debug file used (libc6-dbg is installed by scripts/setup.sh)",
          info.dli_fname);
    CHECK(!f->from_dynsym, "names from .dynsym despite the debug file");
    bool has_static = false;
    for (size_t i = 0; i < f->n_syms; i++) {
        has_static |= strncmp(f->syms[i].name, "msort_with_tmp", 14) == 0;
    }
    CHECK(has_static, "no msort_with_tmp (a static function) among %zu symbols", f->n_syms);
done:
    csi_elf_free(f);
    g_free(err);
}

/* The debug directory can be moved (the fuzz harness points it at a
 * directory of its own): a file's debug file is looked up there only, at
 * the same .build-id path. */
static void t_debug_root(void)
{
    Dl_info info;
    char *err = NULL, *root = NULL, *link = NULL, *sub = NULL;
    csi_elf_file *f = NULL, *moved = NULL, *absent = NULL;
    CHECK(libc_file(&info), "no libc qsort_r");
    f = csi_elf_read(info.dli_fname, &err);
    CHECK(f && f->debug_file && g_str_has_prefix(f->debug_file, "/usr/lib/debug/.build-id/"),
          "%s: no debug file under /usr/lib/debug", info.dli_fname);
    root = g_dir_make_tmp("debug_root.XXXXXX", NULL);
    CHECK(root, "no temporary directory");
    csi_elf_set_debug_root(root);
    absent = csi_elf_read(info.dli_fname, &err);
    CHECK(absent && !absent->debug_file && absent->from_dynsym,
          "a debug file found in an empty debug directory");
    /* the same debug file, under the new root */
    const char *rel = f->debug_file + strlen("/usr/lib/debug");
    link = g_strconcat(root, rel, NULL);
    sub = g_path_get_dirname(link);
    CHECK(g_mkdir_with_parents(sub, 0700) == 0 && symlink(f->debug_file, link) == 0,
          "cannot link %s", link);
    moved = csi_elf_read(info.dli_fname, &err);
    CHECK(moved && moved->debug_file && strcmp(moved->debug_file, link) == 0 &&
          moved->n_syms == f->n_syms, "debug file %s, %zu symbols (want %s, %zu)",
          moved && moved->debug_file ? moved->debug_file : "none", moved ? moved->n_syms : 0,
          link, f->n_syms);
done:
    csi_elf_set_debug_root(NULL);
    if (link) {
        unlink(link);
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", root);
        if (system(cmd) != 0) {
            fprintf(stderr, "cannot remove %s\n", root);
        }
    }
    csi_elf_free(f);
    csi_elf_free(absent);
    csi_elf_free(moved);
    g_free(root);
    g_free(link);
    g_free(sub);
    g_free(err);
}

static void t_unreadable_file(void)
{
    fake fk = { .text = (char *)"10000-20000 r--p 00000000 08:01 9 /nonexistent/lib.so\n" };
    csi_symbolizer *s = csi_symbolizer_new(read_fake, NULL, &fk);
    csi_sym_result r;
    CHECK(csi_symbolizer_lookup(s, 0x10010, &r), "a file region is a module even if unreadable");
    CHECK(strcmp(r.module, "/nonexistent/lib.so") == 0 && r.name == NULL && r.module_base == 0x10000,
          "module %s name %s base " PX, r.module, r.name ? r.name : "-", r.module_base);
done:
    csi_symbolizer_free(s);
}

/* A file the guest mapped may have been replaced by a FIFO: reading it
 * must fail at once, not wait for a writer. */
static void t_fifo(void)
{
    char *err = NULL, *dir = g_dir_make_tmp("fifo.XXXXXX", NULL), *path = NULL;
    csi_elf_file *f = NULL;
    CHECK(dir, "no temporary directory");
    path = g_build_filename(dir, "lib.so", NULL);
    CHECK(mkfifo(path, 0600) == 0, "cannot make a FIFO");
    alarm(10);    /* a blocked open ends the test program instead of hanging */
    f = csi_elf_read(path, &err);
    alarm(0);
    CHECK(!f && err && strstr(err, "not a regular file"), "a FIFO read: %s", err ? err : "no error");
done:
    if (path) {
        unlink(path);
    }
    if (dir) {
        rmdir(dir);
    }
    csi_elf_free(f);
    g_free(err);
    g_free(path);
    g_free(dir);
}

static void t_not_elf(void)
{
    char *err = NULL;
    csi_elf_file *f = csi_elf_read("/proc/self/status", &err);
    CHECK(!f && err, "a text file is not ELF");
done:
    csi_elf_free(f);
    g_free(err);
}

/* Instruction words in a guest's byte order. */
static size_t put_words(uint8_t *buf, const uint32_t *w, size_t n, bool big_endian)
{
    for (size_t i = 0; i < n; i++) {
        for (int b = 0; b < 4; b++) {
            buf[i * 4 + (size_t)b] = (uint8_t)(w[i] >> (big_endian ? 24 - 8 * b : 8 * b));
        }
    }
    return n * 4;
}

/*
 * Stubs as GNU ld 2.40 (Debian 12's cross binutils) wrote them into small
 * programs and libc, with the slot address readelf -r gives for the
 * relocation of the function objdump names the stub after.
 */
static void t_stub_decode(void)
{
    static const struct {
        const char *what;
        csi_stub_arch arch;
        uint64_t addr;
        uint32_t w[6];
        size_t n;
        size_t len;          /* expected stub length, 0: none */
        uint64_t slot;
    } cases[] = {
        { "aarch64 puts@plt", { EM_AARCH64, false, true, 0 }, 0x400570,
          { 0x90000110, 0xf9400e11, 0x91006210, 0xd61f0220 }, 4, 16, 0x420018 },
        { "aarch64 PLT0 is no stub", { EM_AARCH64, false, true, 0 }, 0x400520,
          { 0xa9bf7bf0, 0xf00000f0, 0xf947fe11, 0x913fe210, 0xd61f0220 }, 5, 0, 0 },
        { "arm puts@plt", { EM_ARM, false, false, 0 }, 0x1033c,
          { 0xe28fc600, 0xe28cca01, 0xe5bcfcd0 }, 3, 12, 0x12014 },
        { "arm libc realloc@plt, Thumb entry", { EM_ARM, false, false, 0 }, 0x1dee4,
          { 0xe7fd4778, 0xe28fc600, 0xe28ccaee, 0xe5bcf120 }, 4, 16, 0x10c010 },
        { "riscv64 puts@plt", { EM_RISCV, false, true, 0 }, 0x10490,
          { 0x00002e17, 0xb88e3e03, 0x000e0367, 0x00000013 }, 4, 16, 0x12018 },
        { "ppc puts@plt", { EM_PPC, true, false, 0 }, 0x10000580,
          { 0x3d601002, 0x816b0008, 0x7d6903a6, 0x4e800420 }, 4, 16, 0x10020008 },
        { "ppc libc realloc@plt (r30: DT_PPC_GOT)", { EM_PPC, true, false, 0x22fff4 }, 0x1acf70,
          { 0x817e000c, 0x7d6903a6, 0x4e800420 }, 3, 12, 0x230000 },
        { "ppc64le puts plt_call (TOC .got+0x8000)", { EM_PPC64, false, true, 0x10027f00 },
          0x10000560, { 0xf8410018, 0xe9828120, 0x7d8903a6, 0x4e800420 }, 4, 16,
          0x10020020 },
        { "ppc64le without a TOC", { EM_PPC64, false, true, 0 }, 0x10000560,
          { 0xf8410018, 0xe9828120, 0x7d8903a6, 0x4e800420 }, 4, 0, 0 },
        { "mips non-PIC puts@plt", { EM_MIPS, true, false, 0 }, 0x400830,
          { 0x3c0f0041, 0x8df90854, 0x03200008, 0x25f80854 }, 4, 16, 0x410854 },
        { "ppc64le: an indirect call is no stub", { EM_PPC64, false, true, 0x10027f00 }, 0x10000000,
          { 0xf8410018, 0xe9828120, 0x7d8903a6, 0x4e800421 }, 4, 0, 0 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        uint8_t buf[24];
        size_t len = put_words(buf, cases[i].w, cases[i].n, cases[i].arch.big_endian);
        uint64_t slot = 0;
        size_t got = csi_stub_decode(&cases[i].arch, buf, len, cases[i].addr, &slot);
        CHECK(got == cases[i].len, "%s: length %zu, expected %zu", cases[i].what, got, cases[i].len);
        CHECK(!got || slot == cases[i].slot, "%s: slot " PX ", expected " PX, cases[i].what, slot,
              cases[i].slot);
    }
done:;
}

/* ld's names of its PowerPC stubs, as readelf -s lists them. */
static void t_ld_stub_symbols(void)
{
    static const struct { const char *sym, *target; } cases[] = {
        { "00000037.plt_call.puts@@GLIBC_2.17", "puts" },
        { "00000025.plt_call.__gmon_start__", "__gmon_start__" },
        { "00000000.plt_pic32.puts@@GLIBC_2.0", "puts" },
        { "00008000.got2.plt_pic32.__cxa_finalize@@GLIBC_2.1.3", "__cxa_finalize" },
        { "00000018.long_branch.fib", NULL },     /* a branch to a local function */
        { "0000037.plt_call.puts", NULL },
        { "00000037.plt_call.", NULL },
        { "main", NULL },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        size_t len = 0;
        const char *t = csi_stub_ld_symbol(cases[i].sym, &len);
        if (!cases[i].target) {
            CHECK(!t, "%s: target %s", cases[i].sym, t);
        } else {
            CHECK(t && len == strlen(cases[i].target) && strncmp(t, cases[i].target, len) == 0,
                  "%s: target %.*s", cases[i].sym, t ? (int)len : 6, t ? t : "(none)");
        }
    }
done:;
}

/* ELFv2 ABI table of st_other's local-entry field: 0 and 1 none, then 1,
 * 2, 4, 8, 16 instructions (readelf prints them as [<localentry>: N]); 7
 * is reserved, 32 instructions by glibc's PPC64_LOCAL_ENTRY_OFFSET. */
static void t_ppc64_local_entry(void)
{
    static const unsigned want[8] = { 0, 0, 4, 8, 16, 32, 64, 128 };
    for (unsigned v = 0; v < 8; v++) {
        unsigned got = csi_ppc64_local_entry((unsigned char)(v << 5 | 3));   /* visibility bits set */
        CHECK(got == want[v], "field %u: %u bytes, expected %u", v, got, want[v]);
    }
done:;
}

static const test_case tests[] = {
    { "maps_parse", t_maps_parse },
    { "self_functions", t_self_functions },
    { "libc_function", t_libc_function },
    { "qemu_layout", t_qemu_layout },
    { "debug_file", t_debug_file },
    { "debug_root", t_debug_root },
    { "unreadable_file", t_unreadable_file },
    { "not_elf", t_not_elf },
    { "stub_decode", t_stub_decode },
    { "ppc64_local_entry", t_ppc64_local_entry },
    { "ld_stub_symbols", t_ld_stub_symbols },
    { "fifo", t_fifo },
};

int main(int argc, char **argv)
{
    return run_cases(tests, G_N_ELEMENTS(tests), argc, argv, NULL);
}

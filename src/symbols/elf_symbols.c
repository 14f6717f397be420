/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Function symbols of an ELF file via libelf: see elf_symbols.h. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "elf_symbols.h"
#include "plt_stubs.h"

/* Files are mapped; the fuzz build reads them into the heap instead
 * (ELF_C_READ), where AddressSanitizer sees every read past their end. */
#ifndef CSI_ELF_READ_CMD
#define CSI_ELF_READ_CMD ELF_C_READ_MMAP
#endif

/* A candidate before aliases at one address are merged. */
typedef struct raw_sym {
    uint64_t addr, size;
    const char *name;
    int rank;             /* lower is a better name for the address */
    unsigned local_entry;
} raw_sym;

/*
 * Several names can share an address (aliases: qsort and __libc_qsort...).
 * Prefer what a person would call the function: a global name over a weak
 * one over a local one, then one without leading underscores.
 */
static int name_rank(unsigned char bind, const char *name)
{
    int r = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 4 : 8;
    if (name[0] == '_') {
        r += name[1] == '_' ? 2 : 1;
    }
    return r;
}

static gint raw_cmp(gconstpointer a, gconstpointer b)
{
    const raw_sym *x = a, *y = b;
    if (x->addr != y->addr) {
        return x->addr < y->addr ? -1 : 1;
    }
    if (x->rank != y->rank) {
        return x->rank - y->rank;
    }
    return strcmp(x->name, y->name);
}

static raw_sym *add_raw(GArray *raw, GStringChunk *names, uint64_t addr, uint64_t size,
                        const char *name, int rank)
{
    raw_sym r = { .addr = addr, .size = size, .name = g_string_chunk_insert_const(names, name),
                  .rank = rank };
    g_array_append_val(raw, r);
    return &g_array_index(raw, raw_sym, raw->len - 1);
}

static void add_stub_name(GArray *raw, GStringChunk *names, uint64_t addr, uint64_t size,
                          const char *target)
{
    g_autofree char *plt_name = g_strconcat(target, "@plt", NULL);
    add_raw(raw, names, addr, size, plt_name, 0);
}

/* PowerPC: ld's own symbol for a call stub it wrote (see plt_stubs.h). */
static void add_ld_stub_symbol(const char *name, uint64_t addr, GArray *raw, GStringChunk *names)
{
    size_t len;
    const char *target = name ? csi_stub_ld_symbol(name, &len) : NULL;
    if (target) {
        g_autofree char *t = g_strndup(target, len);
        add_stub_name(raw, names, addr, 0, t);
    }
}

static size_t add_symbols(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, GArray *raw,
                          GStringChunk *names, uint16_t machine)
{
    Elf_Data *data = elf_getdata(scn, NULL);
    size_t n = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0, added = 0;
    for (size_t i = 0; data && i < n; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF) {
            continue;
        }
        unsigned char type = GELF_ST_TYPE(sym.st_info);
        if (type == STT_NOTYPE && (machine == EM_PPC || machine == EM_PPC64)) {
            add_ld_stub_symbol(elf_strptr(elf, sh->sh_link, sym.st_name), sym.st_value, raw, names);
            continue;
        }
        if (type != STT_FUNC && type != STT_GNU_IFUNC) {
            continue;
        }
        const char *name = elf_strptr(elf, sh->sh_link, sym.st_name);
        if (!name || !name[0]) {
            continue;
        }
        /* A .symtab may spell a versioned symbol "memcpy@@GLIBC_2.14" (as
         * libc's debug file does): the function is "memcpy". */
        const char *at = strchr(name, '@');
        g_autofree char *bare = at && at != name ? g_strndup(name, (gsize)(at - name)) : NULL;
        if (bare) {
            name = bare;
        }
        /* ARM: bit 0 of a function's value says Thumb; its code starts
         * at the even address (as objdump shows it) */
        uint64_t addr = machine == EM_ARM ? sym.st_value & ~1ull : sym.st_value;
        raw_sym *r = add_raw(raw, names, addr, sym.st_size, name,
                             name_rank(GELF_ST_BIND(sym.st_info), name));
        if (machine == EM_PPC64) {
            r->local_entry = csi_ppc64_local_entry(sym.st_other);
        }
        added++;
    }
    return added;
}

/* Relocations by the address of the slot they fill: GOT slot -> name. */
static void collect_relocs(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, uint64_t irelative_type,
                           GHashTable *slots, GStringChunk *names)
{
    Elf_Scn *symscn = elf_getscn(elf, sh->sh_link);
    GElf_Shdr sym_sh;
    Elf_Data *rdata = elf_getdata(scn, NULL), *sdata = symscn ? elf_getdata(symscn, NULL) : NULL;
    if (!rdata || !sdata || !gelf_getshdr(symscn, &sym_sh)) {
        return;
    }
    size_t n = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t info, offset;
        int64_t addend = 0;
        if (sh->sh_type == SHT_RELA) {
            GElf_Rela r;
            if (!gelf_getrela(rdata, (int)i, &r)) {
                continue;
            }
            info = r.r_info, offset = r.r_offset, addend = r.r_addend;
        } else {
            GElf_Rel r;
            if (!gelf_getrel(rdata, (int)i, &r)) {
                continue;
            }
            info = r.r_info, offset = r.r_offset;
        }
        /* gelf hands out r_info in the 64-bit layout whatever the class */
        size_t symidx = GELF_R_SYM(info);
        bool irelative = GELF_R_TYPE(info) == irelative_type;
        GElf_Sym sym;
        const char *name = NULL;
        char abs[40];
        if (symidx && gelf_getsym(sdata, (int)symidx, &sym)) {
            name = elf_strptr(elf, sym_sh.sh_link, sym.st_name);
        } else if (!symidx && irelative) {
            /* objdump's name for it: "*ABS*+0x<resolver>" from the addend,
             * "*ABS*" in REL files (i386), which keep it in the slot */
            if (sh->sh_type == SHT_RELA) {
                snprintf(abs, sizeof abs, "*ABS*+0x%" PRIx64, (uint64_t)addend);
            } else {
                snprintf(abs, sizeof abs, "*ABS*");
            }
            name = abs;
        }
        if (name && name[0]) {
            g_hash_table_insert(slots, g_memdup2(&offset, sizeof offset),
                                (gpointer)g_string_chunk_insert_const(names, name));
        }
    }
}

/* The relocation type of an IFUNC's slot (filled with the resolver's
 * answer), or UINT64_MAX for machines not listed. */
static uint64_t irelative_type(uint16_t machine)
{
    switch (machine) {
    case EM_X86_64: return R_X86_64_IRELATIVE;
    case EM_386: return R_386_IRELATIVE;
    case EM_AARCH64: return R_AARCH64_IRELATIVE;
    case EM_ARM: return R_ARM_IRELATIVE;
    case EM_PPC: return R_PPC_IRELATIVE;
    case EM_PPC64: return R_PPC64_IRELATIVE;
    case EM_RISCV: return R_RISCV_IRELATIVE;
    default: return UINT64_MAX;
    }
}

/* Every dynamic relocation of the file by the slot it fills: address ->
 * target name. */
static GHashTable *plt_slots(Elf *elf, const GElf_Ehdr *eh, size_t shstrndx, GStringChunk *names)
{
    GHashTable *slots = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        const char *name;
        if (gelf_getshdr(scn, &sh) && (sh.sh_type == SHT_RELA || sh.sh_type == SHT_REL) &&
            (name = elf_strptr(elf, shstrndx, sh.sh_name)) &&
            (strcmp(name, ".rela.plt") == 0 || strcmp(name, ".rel.plt") == 0 ||
             strcmp(name, ".rela.dyn") == 0 || strcmp(name, ".rel.dyn") == 0)) {
            collect_relocs(elf, scn, &sh, irelative_type(eh->e_machine), slots, names);
        }
    }
    return slots;
}

/* The data of the first section of a type with a table of entries
 * (*n of them), or NULL. */
static Elf_Data *table_of_type(Elf *elf, GElf_Word type, GElf_Shdr *sh, size_t *n)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        Elf_Data *d;
        if (gelf_getshdr(scn, sh) && sh->sh_type == type && sh->sh_entsize &&
            (d = elf_getdata(scn, NULL))) {
            *n = sh->sh_size / sh->sh_entsize;
            return d;
        }
    }
    return NULL;
}

/* A dynamic-section entry's value, or 0. */
static uint64_t dynamic_value(Elf *elf, int64_t tag)
{
    GElf_Shdr sh;
    size_t n = 0;
    Elf_Data *d = table_of_type(elf, SHT_DYNAMIC, &sh, &n);
    for (size_t i = 0; d && i < n; i++) {
        GElf_Dyn dyn;
        if (gelf_getdyn(d, (int)i, &dyn) && dyn.d_tag == tag) {
            return dyn.d_un.d_val;
        }
    }
    return 0;
}

/*
 * MIPS's lazy-binding stubs (.MIPS.stubs) pass the target's .dynsym index
 * to the resolver instead of reading a slot, and the ABI gives an
 * undefined function with such a stub the stub's address as its .dynsym
 * value: that value names the stub.
 */
static void add_mips_stubs(Elf *elf, GArray *raw, GStringChunk *names)
{
    GElf_Shdr sh;
    size_t n = 0;
    Elf_Data *d = table_of_type(elf, SHT_DYNSYM, &sh, &n);
    for (size_t i = 0; d && i < n; i++) {
        GElf_Sym sym;
        const char *name;
        if (gelf_getsym(d, (int)i, &sym) && sym.st_shndx == SHN_UNDEF && sym.st_value &&
            GELF_ST_TYPE(sym.st_info) == STT_FUNC &&
            (name = elf_strptr(elf, sh.sh_link, sym.st_name)) && name[0]) {
            add_stub_name(raw, names, sym.st_value, 0, name);
        }
    }
}

/*
 * Other architectures' stubs, recognised by their instructions (see
 * plt_stubs.h) in .plt, or in every executable section where ld puts its
 * stubs among the code (PowerPC), and named by the relocation of the slot
 * they jump through.
 */
static void add_stubs(Elf *elf, const GElf_Ehdr *eh, size_t shstrndx, GArray *raw,
                      GStringChunk *names)
{
    csi_stub_arch a = { .machine = eh->e_machine, .big_endian = eh->e_ident[EI_DATA] == ELFDATA2MSB,
                       .is64 = eh->e_ident[EI_CLASS] == ELFCLASS64 };
    if (a.machine == EM_MIPS) {
        add_mips_stubs(elf, raw, names);
    }
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        const char *name;
        if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_PROGBITS &&
            (name = elf_strptr(elf, shstrndx, sh.sh_name)) && strcmp(name, ".got") == 0) {
            /* ELFv2: the TOC pointer is .got + 0x8000 (ld's single TOC) */
            a.base = a.machine == EM_PPC64 ? sh.sh_addr + 0x8000 : 0;
        }
    }
    if (a.machine == EM_PPC) {
        a.base = dynamic_value(elf, DT_PPC_GOT);
    }
    GHashTable *slots = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        const char *name;
        Elf_Data *d;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_EXECINSTR) ||
            !(name = elf_strptr(elf, shstrndx, sh.sh_name)) ||
            (!csi_stub_in_text(&a) && strcmp(name, ".plt") != 0) ||
            !(d = elf_getdata(scn, NULL)) || !d->d_buf) {
            continue;
        }
        if (!slots) {
            slots = plt_slots(elf, eh, shstrndx, names);
        }
        const uint8_t *code = d->d_buf;
        for (size_t at = 0; at + 4 <= d->d_size;) {
            uint64_t slot;
            size_t n = csi_stub_decode(&a, code + at, d->d_size - at, sh.sh_addr + at, &slot);
            const char *target = n ? g_hash_table_lookup(slots, &slot) : NULL;
            if (target) {
                add_stub_name(raw, names, sh.sh_addr + at, n, target);
            }
            at += n ? n : 4;
        }
    }
    if (slots) {
        g_hash_table_destroy(slots);
    }
}

/*
 * PLT stubs are not symbols; name them "target@plt" as objdump and GDB do.
 * Which target a stub jumps to is read from the stub itself: the first
 * indirect jmp through a GOT slot, matched with the relocation that fills
 * that slot (their order is not the relocations' order in general: libc's
 * IRELATIVE stubs come first). Other architectures: add_stubs.
 *   x86_64: ff 25 disp32   jmp *disp(%rip)          slot = next insn + disp
 *   i386:   ff 25 abs32    jmp *abs                 slot = abs
 *           ff a3 disp32   jmp *disp(%ebx)          slot = .got.plt + disp
 * .plt (lazy stubs; its first entry is the resolver's), .plt.sec (IBT: the
 * stubs that are called) and .plt.got (functions bound at load) qualify.
 */
static void add_plt(Elf *elf, const GElf_Ehdr *eh, size_t shstrndx, GArray *raw,
                    GStringChunk *names)
{
    bool is64 = eh->e_machine == EM_X86_64;
    if (!is64 && eh->e_machine != EM_386) {
        add_stubs(elf, eh, shstrndx, raw, names);
        return;
    }
    GHashTable *slots = plt_slots(elf, eh, shstrndx, names);
    Elf_Scn *scn = NULL;
    Elf_Scn *stubs[3] = { NULL };
    GElf_Shdr stub_sh[3];
    uint64_t gotplt = 0;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        const char *name;
        if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(elf, shstrndx, sh.sh_name))) {
            continue;
        }
        if (strcmp(name, ".got.plt") == 0) {
            gotplt = sh.sh_addr;
        } else {
            int k = strcmp(name, ".plt") == 0 ? 0 : strcmp(name, ".plt.sec") == 0 ? 1
                  : strcmp(name, ".plt.got") == 0 ? 2 : -1;
            if (k >= 0 && sh.sh_type == SHT_PROGBITS) {
                stubs[k] = scn;
                stub_sh[k] = sh;
            }
        }
    }
    for (int k = 0; k < 3; k++) {
        Elf_Data *d = stubs[k] ? elf_getdata(stubs[k], NULL) : NULL;
        if (!d || !d->d_buf) {
            continue;
        }
        uint64_t entsize = stub_sh[k].sh_entsize >= 8 ? stub_sh[k].sh_entsize : 16;
        const uint8_t *code = d->d_buf;
        for (uint64_t at = 0; at + entsize <= d->d_size; at += entsize) {
            uint64_t stub = stub_sh[k].sh_addr + at;
            for (uint64_t j = 0; j + 6 <= entsize; j++) {
                const uint8_t *c = code + at + j;
                if (c[0] != 0xff || (c[1] != 0x25 && !(c[1] == 0xa3 && !is64))) {
                    continue;
                }
                int32_t disp = (int32_t)((uint32_t)c[2] | (uint32_t)c[3] << 8 |
                                         (uint32_t)c[4] << 16 | (uint32_t)c[5] << 24);
                uint64_t slot = is64 ? stub + j + 6 + (uint64_t)(int64_t)disp
                              : c[1] == 0x25 ? (uint32_t)disp : (uint32_t)(gotplt + (uint64_t)(int64_t)disp);
                const char *target = g_hash_table_lookup(slots, &slot);
                if (target) {
                    add_stub_name(raw, names, stub, entsize, target);
                }
                break;
            }
        }
    }
    g_hash_table_destroy(slots);
}

/*
 * Opens a regular file for reading, or returns -1 and sets *error. The path
 * comes from what the guest mapped, and the guest can put something else
 * there since: opening a FIFO would block until a writer appears (QEMU
 * with it), a device could be read forever. O_NONBLOCK keeps the open from
 * blocking; anything but a regular file is refused.
 */
static int open_regular(const char *path, char **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0) {
        *error = g_strdup_printf("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *error = g_strdup_printf("%s: not a regular file", path);
        return -1;
    }
    return fd;
}

/* Where Debian's -dbg packages put detached debug files (GDB's default). */
#define DEBUG_ROOT "/usr/lib/debug"
static const char *debug_root = DEBUG_ROOT;

void csi_elf_set_debug_root(const char *dir)
{
    debug_root = dir ? dir : DEBUG_ROOT;
}

/* The file's GNU build-id in hex (g_malloc), or NULL. */
static char *build_id_hex(Elf *elf)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        Elf_Data *d;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE || !(d = elf_getdata(scn, NULL))) {
            continue;
        }
        GElf_Nhdr nh;
        size_t off = 0, name_off, desc_off;
        while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && nh.n_descsz > 1 &&
                memcmp((const char *)d->d_buf + name_off, "GNU", 4) == 0) {
                GString *hex = g_string_new(NULL);
                for (size_t i = 0; i < nh.n_descsz; i++) {
                    g_string_append_printf(hex, "%02x", ((const uint8_t *)d->d_buf)[desc_off + i]);
                }
                return g_string_free(hex, FALSE);
            }
        }
    }
    return NULL;
}

/*
 * A stripped file's .symtab may live in a detached debug file, found by
 * build-id (Debian's libc6-dbg has libc's and ld.so's): every function,
 * static ones too, at the same link-time addresses.
 */
static size_t add_debug_symbols(Elf *elf, GArray *raw, csi_elf_file *f, uint16_t machine)
{
    g_autofree char *id = build_id_hex(elf);
    if (!id) {
        return 0;
    }
    g_autofree char *path = g_strdup_printf("%s/.build-id/%.2s/%s.debug", debug_root, id, id + 2);
    g_autofree char *err = NULL;
    int fd = open_regular(path, &err);
    if (fd < 0) {
        return 0;
    }
    size_t n = 0;
    Elf *dbg = elf_begin(fd, CSI_ELF_READ_CMD, NULL);
    Elf_Scn *scn = NULL;
    while (dbg && (scn = elf_nextscn(dbg, scn))) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB) {
            n = add_symbols(dbg, scn, &sh, raw, f->names, machine);   /* names are copied */
            break;
        }
    }
    if (dbg) {
        elf_end(dbg);
    }
    close(fd);
    if (n) {
        f->debug_file = g_steal_pointer(&path);
    }
    return n;
}

static bool read_elf(Elf *elf, csi_elf_file *f, char **error)
{
    GElf_Ehdr eh;
    size_t phnum, shstrndx;
    if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) || elf_getphdrnum(elf, &phnum) != 0) {
        *error = g_strdup("not an ELF file");
        return false;
    }
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
            csi_elf_load l = { ph.p_vaddr, ph.p_offset, ph.p_filesz, ph.p_memsz };
            g_array_append_val(f->loads, l);
        }
    }
    if (elf_getshdrstrndx(elf, &shstrndx) != 0) {
        shstrndx = 0;
    }
    GArray *raw = g_array_new(FALSE, FALSE, sizeof(raw_sym));
    Elf_Scn *scn = NULL, *symtab = NULL, *dynsym = NULL;
    GElf_Shdr symtab_sh = { 0 }, dynsym_sh = { 0 };
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh)) {
            continue;
        }
        if (sh.sh_type == SHT_SYMTAB) {
            symtab = scn;
            symtab_sh = sh;
        } else if (sh.sh_type == SHT_DYNSYM) {
            dynsym = scn;
            dynsym_sh = sh;
        }
    }
    /* .symtab has every function, .dynsym only exported ones: it is the
     * fallback for stripped files without a debug file. */
    size_t n = symtab ? add_symbols(elf, symtab, &symtab_sh, raw, f->names, eh.e_machine) : 0;
    if (n == 0) {
        n = add_debug_symbols(elf, raw, f, eh.e_machine);
    }
    if (n == 0 && dynsym) {
        add_symbols(elf, dynsym, &dynsym_sh, raw, f->names, eh.e_machine);
        f->from_dynsym = true;
    }
    if (shstrndx) {
        add_plt(elf, &eh, shstrndx, raw, f->names);
    }
    g_array_sort(raw, raw_cmp);
    f->syms = g_new(csi_elf_sym, raw->len ? raw->len : 1);
    for (guint i = 0; i < raw->len; i++) {
        raw_sym *r = &g_array_index(raw, raw_sym, i);
        if (f->n_syms && f->syms[f->n_syms - 1].addr == r->addr) {
            /* an alias: the best-ranked name came first; keep the largest
             * size, and a local entry any of them declares */
            csi_elf_sym *prev = &f->syms[f->n_syms - 1];
            prev->size = MAX(prev->size, r->size);
            prev->local_entry = MAX(prev->local_entry, r->local_entry);
            continue;
        }
        f->syms[f->n_syms++] = (csi_elf_sym){ r->addr, r->size, r->name, r->local_entry };
    }
    g_array_free(raw, TRUE);
    return true;
}

csi_elf_file *csi_elf_read(const char *path, char **error)
{
    *error = NULL;
    if (elf_version(EV_CURRENT) == EV_NONE) {
        *error = g_strdup("libelf is too old");
        return NULL;
    }
    int fd = open_regular(path, error);
    if (fd < 0) {
        return NULL;
    }
    Elf *elf = elf_begin(fd, CSI_ELF_READ_CMD, NULL);
    csi_elf_file *f = g_new0(csi_elf_file, 1);
    f->loads = g_array_new(FALSE, FALSE, sizeof(csi_elf_load));
    f->names = g_string_chunk_new(4096);
    bool ok = elf && read_elf(elf, f, error);
    if (!elf) {
        *error = g_strdup_printf("%s: %s", path, elf_errmsg(-1));
    }
    if (elf) {
        elf_end(elf);
    }
    close(fd);
    if (!ok) {
        csi_elf_free(f);
        return NULL;
    }
    return f;
}

void csi_elf_free(csi_elf_file *f)
{
    if (!f) {
        return;
    }
    g_array_free(f->loads, TRUE);
    g_free(f->syms);
    g_free(f->debug_file);
    g_string_chunk_free(f->names);
    g_free(f);
}

bool csi_elf_bias(const csi_elf_file *f, uint64_t start, uint64_t offset, uint64_t len,
                 uint64_t *bias)
{
    for (guint i = 0; i < f->loads->len; i++) {
        const csi_elf_load *l = &g_array_index(f->loads, csi_elf_load, i);
        uint64_t seg_end = l->offset + (l->filesz ? l->filesz : 1);
        /* The mapping places file offset X at start + (X - offset); the
         * segment puts the byte at p_offset at link address p_vaddr. */
        if (l->offset < offset + len && offset < seg_end) {
            *bias = start + l->offset - offset - l->vaddr;
            return true;
        }
    }
    return false;
}

bool csi_elf_covers(const csi_elf_file *f, uint64_t bias, uint64_t addr)
{
    /* 64 KiB: the largest page size a segment's start is rounded down to */
    const uint64_t page = 0x10000;
    for (guint i = 0; i < f->loads->len; i++) {
        const csi_elf_load *l = &g_array_index(f->loads, csi_elf_load, i);
        uint64_t lo = bias + (l->vaddr & ~(page - 1)), hi = bias + l->vaddr + l->memsz;
        if (addr >= lo && addr < hi) {
            return true;
        }
    }
    return false;
}

const csi_elf_sym *csi_elf_find(const csi_elf_file *f, uint64_t addr)
{
    size_t lo = 0, hi = f->n_syms;
    while (lo < hi) {      /* first symbol after addr */
        size_t mid = lo + (hi - lo) / 2;
        if (f->syms[mid].addr <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) {
        return NULL;
    }
    const csi_elf_sym *s = &f->syms[lo - 1];
    return addr - s->addr < (s->size ? s->size : 1) ? s : NULL;
}

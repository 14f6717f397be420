/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The function symbols of one ELF file, read with elfutils' libelf, and
 * what is needed to place them in memory (its PT_LOAD segments). No QEMU
 * headers. Addresses here are link-time addresses (as nm and readelf show
 * them); adding a module's load bias gives run-time addresses.
 */
#ifndef CSI_SYMBOLS_ELF_SYMBOLS_H
#define CSI_SYMBOLS_ELF_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

typedef struct csi_elf_sym {
    uint64_t addr;        /* link-time address */
    uint64_t size;        /* 0: matches its address only */
    const char *name;
    /* ppc64 ELFv2: bytes from the symbol (global entry) to the function's
     * local entry point, where calls from code sharing its TOC enter; 0
     * if the two are the same. */
    unsigned local_entry;
} csi_elf_sym;

typedef struct csi_elf_load {
    uint64_t vaddr, offset, filesz, memsz;
} csi_elf_load;

typedef struct csi_elf_file {
    GArray *loads;        /* csi_elf_load, in file order */
    csi_elf_sym *syms;     /* sorted by addr, one per address */
    size_t n_syms;
    bool from_dynsym;     /* no .symtab: names come from .dynsym (stripped file) */
    char *debug_file;     /* the detached debug file whose .symtab was used, or NULL */
    GStringChunk *names;
} csi_elf_file;

/*
 * Reads the file's segments and function symbols: .symtab if it has any,
 * else the .symtab of its detached debug file
 * (/usr/lib/debug/.build-id/xx/yyyy.debug), else .dynsym (stripped files),
 * plus "name@plt" for the linker's call stubs (PLT entries; see
 * plt_stubs.h for the architectures other than x86). Returns NULL and sets
 * *error (g_malloc) if the file is not a readable ELF file.
 */
csi_elf_file *csi_elf_read(const char *path, char **error);
/* The directory searched for detached debug files instead of /usr/lib/debug
 * (NULL: back to it). Set it before any csi_elf_read, from one thread. */
void csi_elf_set_debug_root(const char *dir);
void csi_elf_free(csi_elf_file *f);

/*
 * The load bias of the file when file offset `offset` is mapped at `start`
 * and `len` bytes follow: run-time address minus link-time address. False
 * if no PT_LOAD segment's file bytes lie in that range.
 */
bool csi_elf_bias(const csi_elf_file *f, uint64_t start, uint64_t offset, uint64_t len,
                 uint64_t *bias);

/* Whether a run-time address falls in the file's segments when it is
 * loaded at `bias` (pages included). */
bool csi_elf_covers(const csi_elf_file *f, uint64_t bias, uint64_t addr);

/* The symbol containing a link-time address, or NULL. */
const csi_elf_sym *csi_elf_find(const csi_elf_file *f, uint64_t addr);

#endif

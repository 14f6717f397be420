/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Address -> (module, function) for a process's memory, from a maps text
 * (see maps.h) and the mapped ELF files (see elf_symbols.h). No QEMU
 * headers: the host supplies the maps text and the address bias.
 *
 * Lazy: nothing is read until an address is looked up. The maps text is
 * read again only when an address falls in no known file region; an ELF
 * file is read once, the first time an address falls in it. Modules are
 * never freed, so names and paths handed out stay valid for the life of
 * the symbolizer. Thread-safe (one lock; a lookup of a known module is a
 * binary search or two).
 */
#ifndef CSI_SYMBOLS_SYMBOLIZER_H
#define CSI_SYMBOLS_SYMBOLIZER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct csi_symbolizer csi_symbolizer;

/* Returns the current maps text (g_malloc; the symbolizer frees it), or NULL. */
typedef char *(*csi_maps_reader)(void *opaque);
/* Returns the bias to subtract from the text's addresses (QEMU's guest_base). */
typedef uint64_t (*csi_bias_reader)(void *opaque);

typedef struct csi_sym_result {
    const char *module;     /* path of the file mapped at the address */
    uint64_t module_base;   /* load bias: run-time minus link-time address */
    uint64_t module_start;  /* lowest address of the module's file mappings */
    uint64_t module_end;    /* end of the highest one */
    const char *name;       /* function containing the address, or NULL */
    uint64_t sym_addr;      /* run-time address of `name` (when name) */
    uint64_t sym_size;
    unsigned local_entry;   /* ppc64 ELFv2: local entry offset of `name` (csi_elf_sym) */
} csi_sym_result;

csi_symbolizer *csi_symbolizer_new(csi_maps_reader read_maps, csi_bias_reader read_bias, void *opaque);
void csi_symbolizer_free(csi_symbolizer *s);

/* In the child of a fork(): the lock may have been held by a thread that
 * does not exist there. */
void csi_symbolizer_after_fork(csi_symbolizer *s);

/* False if the address lies in no file mapping (anonymous memory, JIT
 * code, QEMU's vdso) even after re-reading the maps. */
bool csi_symbolizer_lookup(csi_symbolizer *s, uint64_t addr, csi_sym_result *out);

#endif

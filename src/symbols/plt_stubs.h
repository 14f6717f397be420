/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Linker-generated call stubs (PLT entries and their kin) of architectures
 * other than x86, recognised by their instructions. A stub loads the
 * address of its target from a slot that a dynamic relocation fills; the
 * relocation names the target. No libelf here: this file decodes bytes,
 * elf_symbols.c finds the sections and the relocations.
 */
#ifndef CSI_SYMBOLS_PLT_STUBS_H
#define CSI_SYMBOLS_PLT_STUBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct csi_stub_arch {
    uint16_t machine;     /* e_machine: EM_AARCH64, EM_ARM, EM_RISCV, EM_PPC, EM_PPC64, EM_MIPS */
    bool big_endian;
    bool is64;
    /* The base register of the stubs that address their slot relative to
     * one: EM_PPC64, the TOC pointer (r2); EM_PPC, the GOT pointer (r30 in
     * code compiled -fpic/-fpie, DT_PPC_GOT); 0 if unknown. */
    uint64_t base;
} csi_stub_arch;

/*
 * Whether the architecture's stubs are searched in every executable
 * section (PowerPC: ld places its call stubs in .text) rather than in the
 * .plt section alone.
 */
bool csi_stub_in_text(const csi_stub_arch *a);

/*
 * Decodes a stub starting at code[0], at address addr, with len bytes
 * available. Returns the stub's length in bytes and sets *slot to the
 * address of the slot it jumps through, or returns 0 if no stub starts
 * there.
 */
size_t csi_stub_decode(const csi_stub_arch *a, const uint8_t *code, size_t len, uint64_t addr,
                      uint64_t *slot);

/*
 * PowerPC: GNU ld names the call stubs it writes in .symtab, as local
 * symbols without a type: "00000037.plt_call.puts@@GLIBC_2.17" (ppc64),
 * "00000000.plt_pic32.puts", "00008000.got2.plt_pic32.puts@@GLIBC_2.0"
 * (ppc; the first field is the stub's r30 addend, .got2 + 0x8000 for
 * -fPIC/-fPIE code, which the file does not let one resolve from the
 * stub's instructions). Returns where the target's name starts in such a
 * symbol and its length (*len, the version left out), or NULL.
 */
const char *csi_stub_ld_symbol(const char *name, size_t *len);

/* ELFv2 (ppc64le): the offset in bytes of a function's local entry point
 * from its global entry (its symbol), from the symbol's st_other. */
unsigned csi_ppc64_local_entry(unsigned char st_other);

#endif

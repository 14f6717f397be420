/* SPDX-License-Identifier: GPL-2.0-or-later */
/* callstack_instr_symbolize's symbolizer (symbols.c). */
#ifndef CSI_QEMU_SYMBOLS_H
#define CSI_QEMU_SYMBOLS_H

#include <stdint.h>

void csi_symbols_setup(void);
/* ppc64 ELFv2: the function's global entry (its symbol) if addr is the
 * local entry point of a named function, else addr. Translation time only
 * (a symbol lookup). */
uint64_t csi_symbols_function_entry(uint64_t addr);

#endif

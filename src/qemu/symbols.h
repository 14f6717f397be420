/* SPDX-License-Identifier: GPL-2.0-or-later */
/* callstack_instr_symbolize's symbolizer (symbols.c). */
#ifndef CS_QEMU_SYMBOLS_H
#define CS_QEMU_SYMBOLS_H

void cs_symbols_setup(void);

#endif

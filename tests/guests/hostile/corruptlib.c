/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A shared object that needs no relocation: corrupt_elf.c maps a corrupted
 * copy of it as plain executable memory and calls lib_entry. */
__attribute__((noinline)) static int lib_inner(int x) { return x * 2 + 1; }

int lib_entry(int x) { return lib_inner(x) + lib_inner(x + 1); }

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * osi_linux's QEMU glue: the current thread of a vCPU (current.c) and the
 * kernel's symbols with the KASLR slide (kernsyms.c); plugin.c installs
 * both and exports the API of include/osi_linux/osi_linux.h.
 */
#ifndef OSI_QEMU_OSI_H
#define OSI_QEMU_OSI_H

#include <stdbool.h>
#include <stdint.h>
#include <qemu-plugin.h>
#include "osi_linux/osi_linux_types.h"
#include "osi/layout.h"

typedef enum osi_arch { OSI_X86_64, OSI_AARCH64 } osi_arch;

/* Linux puts the kernel in the top half of the address space on both. */
static inline bool osi_kernel_addr(uint64_t a)
{
    return (a >> 48) == 0xffff;
}

extern bool osi_verbose;

/* current.c */
void osi_current_setup(osi_arch arch, const osi_layout *layout, unsigned max_vcpus);
bool osi_current(unsigned vcpu, osi_linux_thread *out);
bool osi_current_task(unsigned vcpu, uint64_t *task);
void osi_current_report(void);   /* at exit, with verbose=on */

/* kernsyms.c */
bool osi_kernsyms_setup(qemu_plugin_id_t id, osi_arch arch, const char *path);
bool osi_kernsyms_symbolize(uint64_t addr, osi_linux_symbol *out);
bool osi_kernsyms_lookup(const char *name, uint64_t *addr);
bool osi_kernsyms_slide(int64_t *slide);
void osi_kernsyms_report(void);  /* at exit */

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The callbacks of call and return sites (fastpath.c), through their
 * trampolines (trampoline.h), which add QEMU's CPU-state pointer env.
 */
#ifndef CSI_QEMU_FASTPATH_H
#define CSI_QEMU_FASTPATH_H

#include <stdint.h>
#include <qemu-plugin.h>

void csi_fastpath_call(unsigned int vcpu_index, void *udata, const void *env);
void csi_fastpath_ret(unsigned int vcpu_index, void *udata, const void *env);
/* A call that loads its target from memory (x86 `call *mem`): a callback
 * after that load, which hands over the loaded target (see translate.c). */
void csi_fastpath_call_loaded(unsigned int vcpu_index, qemu_plugin_meminfo_t info,
                              uint64_t vaddr, void *udata, const void *env);

#endif

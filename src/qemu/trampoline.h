/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The callbacks translated code calls (trampoline.c): each adds QEMU's CPU
 * state pointer `env` and jumps to its C function (fastpath.h, events.h).
 */
#ifndef CSI_QEMU_TRAMPOLINE_H
#define CSI_QEMU_TRAMPOLINE_H

#include <stdint.h>
#include <qemu-plugin.h>

/* A call or return site; udata: its csi_site (csi_site_udata). */
void csi_on_call(unsigned int vcpu_index, void *udata);
void csi_on_ret(unsigned int vcpu_index, void *udata);
/* A call site that loads its target from memory, after that load. */
void csi_on_call_loaded(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr,
                        void *udata);
/* The start of a block that follows a CSI_TARGET_NEXT site; udata: the
 * block's address. */
void csi_on_landing(unsigned int vcpu_index, void *block_vaddr);
/* The start of a signal handler; udata: its address. */
void csi_on_signal_entry(unsigned int vcpu_index, void *pc);

/* The host register that carries TCG's CPU-state pointer into our
 * callbacks ("rbp", "x19"), or NULL on hosts whose trampolines pass none. */
const char *csi_trampoline_env_register(void);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The callbacks translated code calls (trampoline.c): each adds QEMU's CPU
 * state pointer `env` and jumps to the matching *_env function.
 */
#ifndef CS_QEMU_TRAMPOLINE_H
#define CS_QEMU_TRAMPOLINE_H

void cs_vcpu_on_call(unsigned int vcpu_index, void *site);
void cs_vcpu_on_ret(unsigned int vcpu_index, void *site);
/* At the start of a block that follows a CS_TARGET_NEXT site; udata is
 * the block's address. */
void cs_vcpu_on_landing(unsigned int vcpu_index, void *block_vaddr);
void cs_vcpu_on_signal_entry(unsigned int vcpu_index, void *pc);

#endif

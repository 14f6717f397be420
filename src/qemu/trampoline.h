/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The callbacks translated code calls (trampoline.c): each adds QEMU's CPU
 * state pointer `env` and jumps to its C function (fastpath.h, events.h).
 */
#ifndef CS_QEMU_TRAMPOLINE_H
#define CS_QEMU_TRAMPOLINE_H

/* A call or return site; udata: its cs_site (cs_site_udata). */
void cs_on_call(unsigned int vcpu_index, void *udata);
void cs_on_ret(unsigned int vcpu_index, void *udata);
/* The start of a block that follows a CS_TARGET_NEXT site; udata: the
 * block's address. */
void cs_on_landing(unsigned int vcpu_index, void *block_vaddr);
/* The start of a signal handler; udata: its address. */
void cs_on_signal_entry(unsigned int vcpu_index, void *pc);

/* The host register that carries TCG's CPU-state pointer into our
 * callbacks ("rbp", "x19"), or NULL on hosts whose trampolines pass none. */
const char *cs_trampoline_env_register(void);

#endif

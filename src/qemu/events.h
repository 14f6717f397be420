/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The event path (events.c): every callback that the fast path does not
 * finish, after the gate (csi_vcpu_begin) let it in.
 */
#ifndef CSI_QEMU_EVENTS_H
#define CSI_QEMU_EVENTS_H

#include "site.h"
#include "vcpu.h"

/* A call or return site's event in the slow lane (or a site the fast path
 * does not take: see csi_site.hot). */
void csi_events_call(csi_vcpu *v, unsigned vcpu_index, const csi_site *site);
void csi_events_ret(csi_vcpu *v, unsigned vcpu_index, const csi_site *site);
/* A call whose target its callback was given (csi_fastpath_call_loaded). */
void csi_events_call_to(csi_vcpu *v, unsigned vcpu_index, const csi_site *site, uint64_t target);

/* Callbacks of translated code, through their trampolines (trampoline.h):
 * the start of a block that follows a CSI_TARGET_NEXT site (udata: the
 * block's address), and of a signal handler (udata: its address). */
void csi_events_landing(unsigned int vcpu_index, void *block_vaddr, const void *env);
void csi_events_signal_entry(unsigned int vcpu_index, void *pc, const void *env);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The event path (events.c): every callback that the fast path does not
 * finish, after the gate (cs_vcpu_begin) let it in.
 */
#ifndef CS_QEMU_EVENTS_H
#define CS_QEMU_EVENTS_H

#include "site.h"
#include "vcpu.h"

/* A call or return site's event in the slow lane (or a site the fast path
 * does not take: see cs_site.hot). */
void cs_events_call(cs_vcpu *v, unsigned vcpu_index, const cs_site *site);
void cs_events_ret(cs_vcpu *v, unsigned vcpu_index, const cs_site *site);

/* Callbacks of translated code, through their trampolines (trampoline.h):
 * the start of a block that follows a CS_TARGET_NEXT site (udata: the
 * block's address), and of a signal handler (udata: its address). */
void cs_events_landing(unsigned int vcpu_index, void *block_vaddr, const void *env);
void cs_events_signal_entry(unsigned int vcpu_index, void *pc, const void *env);

#endif

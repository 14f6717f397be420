/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Lazy returns (returns.c): while no plugin subscribes to events, return
 * instructions get no callback, only an inline count per vCPU that the
 * engine turns into pops at the vCPU's next event (csi_engine_set_return_
 * counters) and that readers skip (csi_read_view). A subscriber arriving
 * later switches every return back to a callback by retranslation.
 */
#ifndef CSI_QEMU_RETURNS_H
#define CSI_QEMU_RETURNS_H

#include <stdbool.h>
#include <qemu-plugin.h>
#include "engine/engine.h"
#include "site.h"
#include "vcpu.h"

typedef enum csi_returns_mode { CSI_RETURNS_LAZY, CSI_RETURNS_ALL } csi_returns_mode;

/* At install, once the stack type is settled: whether returns may be
 * counted (csi_returns_possible) and, if so, the counters;
 * register_callbacks registers every callback of the plugin (again after
 * the reset a late subscriber causes). */
void csi_returns_setup(void (*register_callbacks)(qemu_plugin_id_t id));
/* Returns are counted where possible (returns=lazy, user mode, a stack
 * that follows one guest stack). */
bool csi_returns_possible(void);
/* At the start of every translation: true if this block's plain returns
 * are to be counted rather than reported. */
bool csi_returns_translating(void);
/* Counts a return site's executions instead of a callback, if it can be
 * (an unconditional plain return); false: the caller registers the
 * callback. */
bool csi_returns_count(struct qemu_plugin_insn *insn, const csi_site *site);
/* A vCPU (index possibly reused) starts with no counted return. */
void csi_returns_vcpu_init(unsigned vcpu_index);
/* What a query of vCPU v sees (NULL: the stack as it is). */
const csi_read_view *csi_returns_view(csi_vcpu *v, csi_read_view *buf);
/* Pops v's counted returns from s now, with no event: on v's thread (or
 * once it is gone), s being v's stack. */
void csi_returns_pop_quietly(csi_vcpu *v, csi_stack *s);
/* A plugin subscribed: returns are reported from now on. (The caller
 * first pops the subscribing vCPU's counted returns quietly.) */
void csi_returns_subscribed(void);

#endif

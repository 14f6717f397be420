/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Translation-time instrumentation (translate.c), and the call and return
 * sites it decodes.
 */
#ifndef CS_QEMU_TRANSLATE_H
#define CS_QEMU_TRANSLATE_H

#include <stdbool.h>
#include <stdint.h>
#include <qemu-plugin.h>
#include "arch/arch.h"

/*
 * A call or return instruction, decoded once at translation time, with its
 * target's registers resolved to QEMU handles. Sites are interned by address
 * and decoded content (the same bytes can decode differently: ARM or Thumb
 * state, inside an IT block or not), so retranslating code allocates
 * nothing new.
 */
typedef struct cs_site {
    /* What every event reads, in the first cache line: the sites of a
     * program are many, and an event should miss at most one line. */
    uint64_t vaddr;
    uint64_t ret_addr;
    uint64_t direct;
    uint64_t mask;
    int64_t sp_delta;
    struct qemu_plugin_register *base;
    struct qemu_plugin_register *cond_reg;   /* NULL: unconditional */
    uint8_t cls;              /* cs_insn_class */
    uint8_t tkind;            /* cs_target_kind */
    bool hot;                 /* may take the fast path (fastpath.c) */
    uint8_t size;
    uint8_t scale;
    /* Targets in memory, conditions, and the interning key. */
    struct qemu_plugin_register *index;
    int64_t disp;
    cs_cond cond;
    cs_insn_info info;        /* as decoded: the interning key */
} __attribute__((aligned(64))) cs_site;

/*
 * The udata of a return's callback: the site, tagged (sites are 64-byte
 * aligned) when it is an x86-style `ret` that takes its target from the slot
 * at sp, in user mode, unconditional: the fast path then pops the top frame
 * whose sp is that slot without reading the site at all (cache misses on
 * sites are a measurable part of an event's cost).
 */
static inline void *cs_site_udata(cs_site *site, bool slot_ret)
{
    return (void *)((uintptr_t)site | (slot_ret ? 1u : 0u));
}

static inline const cs_site *cs_site_of(const void *udata)
{
    return (const cs_site *)((uintptr_t)udata & ~(uintptr_t)1);
}

static inline bool cs_site_is_slot_ret(const void *udata)
{
    return (uintptr_t)udata & 1;
}

/* Per-vCPU flag, non-zero while a CS_TARGET_NEXT site awaits its block
 * (whose callback is conditional on it). */
extern qemu_plugin_u64 cs_pending_flag;

void cs_translate_setup(qemu_plugin_id_t id);
/* QEMU's guest_base (host address minus guest address), learnt from the
 * first block translated; 0 until then. */
uint64_t cs_translate_guest_base(void);

#endif

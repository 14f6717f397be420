/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Call and return sites (decoded by translate.c) and what an event at one
 * does once its vCPU, stack and stack pointer are known (site.c): where the
 * instruction goes, whether a conditional one is taken, and the engine's
 * push or pop. Shared by the fast path (fastpath.c) and the event path
 * (events.c).
 */
#ifndef CSI_QEMU_SITE_H
#define CSI_QEMU_SITE_H

#include <stdbool.h>
#include <stdint.h>
#include <qemu-plugin.h>
#include "arch/arch.h"
#include "engine/engine.h"

/*
 * A call or return instruction, decoded once at translation time, with its
 * target's registers resolved to QEMU handles. Sites are interned by address
 * and decoded content (the same bytes can decode differently: ARM or Thumb
 * state, inside an IT block or not), so retranslating code allocates
 * nothing new.
 */
typedef struct csi_site {
    /* What every event reads, in the first cache line: the sites of a
     * program are many, and an event should miss at most one line. */
    uint64_t vaddr;
    uint64_t ret_addr;
    uint64_t direct;
    uint64_t mask;
    int64_t sp_delta;
    struct qemu_plugin_register *base;
    struct qemu_plugin_register *cond_reg;   /* NULL: unconditional */
    uint8_t cls;              /* csi_insn_class */
    uint8_t tkind;            /* csi_target_kind */
    bool hot;                 /* may take the fast path (fastpath.c) */
    uint8_t size;
    uint8_t scale;
    uint8_t half_bit;         /* csi_target.half_bit */
    /* Targets in memory, conditions, and the interning key. */
    struct qemu_plugin_register *index;
    int64_t disp;
    csi_cond cond;
    csi_insn_info info;        /* as decoded: the interning key */
} __attribute__((aligned(64))) csi_site;

/* A value of the site's target (or a stack pointer) as an address. */
static inline uint64_t csi_site_canon(const csi_site *site, uint64_t v)
{
    return csi_target_canon(v, site->mask, site->half_bit);
}

/*
 * The udata of a site's callback: the site (64-byte aligned), tagged in
 * its low bits:
 *  - CSI_UDATA_SLOT_RET: an x86-style `ret` that takes its target from the
 *    slot at sp, unconditional, on the fast path: the fast path then pops
 *    the top frame whose sp is that slot without reading the site at all
 *    (cache misses on sites are a measurable part of an event's cost).
 *  - CSI_UDATA_KERNEL: whole-system mode, the block was translated in a
 *    privileged mode. QEMU translates a block for one privilege level (it
 *    is part of every target's translation flags: x86 CPL, Arm EL or
 *    mode, PowerPC MSR.PR), so what held at translation holds at every
 *    execution, and no event reads the privilege register.
 */
#define CSI_UDATA_SLOT_RET 1u
#define CSI_UDATA_KERNEL 2u

static inline void *csi_site_udata(csi_site *site, unsigned tags)
{
    return (void *)((uintptr_t)site | tags);
}

static inline const csi_site *csi_site_of(const void *udata)
{
    return (const csi_site *)((uintptr_t)udata & ~(uintptr_t)(CSI_UDATA_SLOT_RET | CSI_UDATA_KERNEL));
}

static inline bool csi_site_is_slot_ret(const void *udata)
{
    return (uintptr_t)udata & CSI_UDATA_SLOT_RET;
}

static inline bool csi_site_is_kernel(const void *udata)
{
    return (uintptr_t)udata & CSI_UDATA_KERNEL;
}

#include "vcpu.h"
#include "plugin.h"

/* How a function finds its return address at entry (arch's entry_ret), as
 * a site, for signal handlers (events.c). Set once the registers are known
 * (csi_site_init_entry), in the first vcpu_init, under the vCPU table's
 * lock, which every vCPU's init takes before its first event: a lock other
 * threads' reads visibly follow (a GOnce's inline fast path is a
 * synchronisation ThreadSanitizer cannot see, GLib being uninstrumented). */
extern csi_site csi_site_entry;
void csi_site_init_entry(void);

/* Where the site's instruction is about to go; 0 if it cannot be known. */
uint64_t csi_site_target(csi_vcpu *v, const csi_site *site, uint64_t sp);

/* Is a conditional site taken? Unreadable conditions count as taken. */
static inline bool csi_site_taken(csi_vcpu *v, const csi_site *site)
{
    uint64_t value;
    if (!site->cond_reg || !csi_reg_read(v, site->cond_reg, &value)) {
        return true;
    }
    return csi_cond_holds(&site->cond, value);
}

/* The engine's push for a call at `site` to func. */
static inline void csi_site_call(csi_stack *s, unsigned vcpu_index, const csi_site *site,
                                uint64_t func, uint64_t sp)
{
    csi_engine_call(csi_eng, s, vcpu_index, func, site->ret_addr, site->vaddr,
                   csi_site_canon(site, sp + (uint64_t)site->sp_delta));
}

/* The engine's pop for a return at `site` to target (and the push of a
 * CSI_INSN_RET_CALL). */
void csi_site_ret(csi_stack *s, unsigned vcpu_index, const csi_site *site, uint64_t target,
                 uint64_t sp);

/* A return at `site`: pops by slot where it can (see site.c), else reads
 * the target and pops to it. */
void csi_site_ret_event(csi_vcpu *v, csi_stack *s, unsigned vcpu_index, const csi_site *site,
                       uint64_t sp);

#endif

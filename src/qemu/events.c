/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The event path: a call or return that the fast path (fastpath.c) does not
 * finish, the block after a CSI_TARGET_NEXT site, and the entry of a signal
 * handler. Here the vCPU's stack is chosen for the event (whole-system mode:
 * from its registers, system.c; heuristic: from the stack pointer; else the
 * stack bound to the thread, vcpu.c), and every register is read through
 * the CPU state where that is verified, through the API otherwise
 * (guestio.h). Choosing the stack also sets the vCPU's hot_stack, which
 * lets its next events take the fast path.
 */
#include <glib.h>
#include "plugin.h"
#include "events.h"
#include "guestio.h"
#include "site.h"
#include "system.h"
#include "translate.h"
#include "vcpu.h"

/* The vCPU's stack and the stack pointer before the instruction. need_sp
 * false: the caller does not use *sp (left 0), and neither does the stack
 * choice: user-mode asid stacks, which never resynchronise. */
static csi_stack *event_stack(csi_vcpu *v, uint64_t *sp, bool need_sp)
{
    csi_stack *s;
    *sp = 0;
    if (need_sp) {
        csi_reg_read_gpr(v, csi_reg_sp, sp);
    }
    if (csi_cfg.system_mode) {
        /* the stack id depends on the registers now */
        s = csi_system_stack(v, *sp);
    } else if (csi_cfg.kind == STACK_HEURISTIC) {
        s = csi_engine_heuristic_switch(csi_eng, csi_vcpu_space(v), *sp, &v->stack);
        v->hot_stack = v->stack;
    } else {
        s = csi_vcpu_stack(v);
        v->hot_stack = s;
    }
    return s;
}

/* The stack and stack pointer of a site's event; NULL if there is nothing
 * to do now (a condition not taken, or a target known only at the next
 * block). */
static csi_stack *site_event(csi_vcpu *v, unsigned int vcpu_index, const csi_site *site, uint64_t *sp)
{
    /* User-mode asid stacks do not resynchronise by the stack pointer
     * (threads share them), but on x86 the sp a frame records lets a return
     * find its target without reading guest memory (csi_site_ret_event),
     * which costs more than the register read. Elsewhere read it only if
     * the target needs it. */
    bool need_sp = csi_cfg.kind != STACK_ASID || csi_cfg.system_mode || csi_arch->ret_addr_on_stack ||
                   (site->base && site->base == csi_reg_sp) ||
                   (site->index && site->index == csi_reg_sp);
    csi_stack *s = event_stack(v, sp, need_sp);
    if (!csi_site_taken(v, site)) {
        return NULL;
    }
    csi_vcpu_set_last(v, site, 0);
    if (site->tkind == CSI_TARGET_NEXT) {
        /* The target is where execution goes next: wait for that block. */
        v->pending = site;
        qemu_plugin_u64_set(csi_pending_flag, vcpu_index, 1);
        return NULL;
    }
    return s;
}

void csi_events_call(csi_vcpu *v, unsigned vcpu_index, const csi_site *site)
{
    uint64_t sp;
    csi_stack *s = site_event(v, vcpu_index, site, &sp);
    if (s) {
        csi_site_call(s, vcpu_index, site, csi_site_target(v, site, sp), sp);
    }
}

void csi_events_call_to(csi_vcpu *v, unsigned vcpu_index, const csi_site *site, uint64_t target)
{
    uint64_t sp;
    csi_stack *s = site_event(v, vcpu_index, site, &sp);
    if (s) {
        csi_site_call(s, vcpu_index, site, target, sp);
    }
}

void csi_events_ret(csi_vcpu *v, unsigned vcpu_index, const csi_site *site)
{
    uint64_t sp;
    csi_stack *s = site_event(v, vcpu_index, site, &sp);
    if (s) {
        csi_site_ret_event(v, s, vcpu_index, site, sp);
    }
}

void csi_events_landing(unsigned int vcpu_index, void *block_vaddr, const void *env)
{
    /* registered with QEMU_PLUGIN_CB_NO_REGS: the state may be stale */
    (void)env;
    uint64_t target = (uint64_t)(uintptr_t)block_vaddr, sp;
    csi_vcpu *v;
    csi_lane lane = csi_vcpu_begin(vcpu_index, NULL, &v, &sp);
    qemu_plugin_u64_set(csi_pending_flag, vcpu_index, 0);
    if (v) {
        v->sys_priv = -1;   /* (not from a site: read the registers) */
    }
    csi_stack *s = lane != CSI_LANE_NONE ? event_stack(v, &sp, true) : NULL;
    const csi_site *site = lane != CSI_LANE_NONE ? v->pending : NULL;
    if (site) {
        v->pending = NULL;
        target = csi_site_canon(site, target);
        if (site->cls != CSI_INSN_CALL) {
            csi_site_ret(s, vcpu_index, site, target, sp);
        } else if (target != site->ret_addr) {
            /* (falling through to the return address: a conditional call
             * not taken, or a pc read) */
            csi_site_call(s, vcpu_index, site, target, sp);
        }
    }
    csi_vcpu_end(v);
}

/* A block starting a signal handler (signals.c): push its frame, unless a
 * direct call to it has just done so. */
void csi_events_signal_entry(unsigned int vcpu_index, void *udata, const void *env)
{
    uint64_t pc = (uint64_t)(uintptr_t)udata, sp;
    csi_vcpu *v;
    if (csi_vcpu_begin(vcpu_index, env, &v, &sp) != CSI_LANE_NONE) {
        csi_stack *s = event_stack(v, &sp, true);
        csi_frame top;
        if (!csi_engine_top(csi_eng, s, &top) || top.func != pc || top.sp != sp) {
            uint64_t ret = csi_site_target(v, &csi_site_entry, sp);
            csi_vcpu_set_last(v, NULL, pc);
            csi_engine_call(csi_eng, s, vcpu_index, pc, ret, 0, sp);
        }
    }
    csi_vcpu_end(v);
}

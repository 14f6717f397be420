/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What an event at a call or return site does once its vCPU, stack and
 * stack pointer are known (see site.h).
 */
#include "plugin.h"
#include "guestio.h"
#include "site.h"

csi_site csi_site_entry;

void csi_site_init_entry(void)
{
    const csi_target *t = &csi_arch->entry_ret;
    csi_site_entry.tkind = t->kind;
    csi_site_entry.base = t->base[0] ? csi_reg_handle(t->base) : NULL;
    csi_site_entry.size = t->size;
    csi_site_entry.disp = t->disp;
    csi_site_entry.mask = t->mask ? t->mask : UINT64_MAX;
    csi_site_entry.half_bit = t->half_bit;
    if (t->base[0] && !csi_site_entry.base) {
        csi_site_entry.tkind = CSI_TARGET_NONE;
    }
}

uint64_t csi_site_target(csi_vcpu *v, const csi_site *site, uint64_t sp)
{
    uint64_t base = 0, index = 0, value = 0;
    switch (site->tkind) {
    case CSI_TARGET_DIRECT:
        return csi_site_canon(site, site->direct);
    case CSI_TARGET_REG:
        if (site->base == csi_reg_sp) {
            base = sp;
        } else if (!csi_reg_read_gpr(v, site->base, &base)) {
            return 0;
        }
        return csi_site_canon(site, base + (uint64_t)site->disp);
    case CSI_TARGET_MEM:
        if (site->base == csi_reg_sp) {
            base = sp;
        } else if (site->base && !csi_reg_read_gpr(v, site->base, &base)) {
            return 0;
        }
        if (site->index && !csi_reg_read_gpr(v, site->index, &index)) {
            return 0;
        }
        if (!csi_mem_read(v, csi_site_canon(site, base + index * site->scale + (uint64_t)site->disp),
                         site->size, &value)) {
            return 0;
        }
        return csi_site_canon(site, value);
    case CSI_TARGET_NONE:
    default:
        return 0;
    }
}

void csi_site_ret(csi_stack *s, unsigned vcpu_index, const csi_site *site, uint64_t target,
                 uint64_t sp)
{
    csi_engine_ret(csi_eng, s, vcpu_index, target, csi_site_canon(site, sp + (uint64_t)site->sp_delta));
    if (site->cls == CSI_INSN_RET_CALL) {
        csi_site_call(s, vcpu_index, site, target, sp);
    }
}

/*
 * x86: a return reads its target from [sp], which in the common case is
 * exactly the top frame's recorded sp; the frame's saved return address is
 * then the target, with no guest memory read. (A return address rewritten
 * in place, as retpolines do, still pops that frame: the slot identifies it.)
 * In whole-system mode too: a kernel stack follows one guest stack, and a
 * user stack's frames left by a dead process are unwound before the vCPU
 * returns to it (system.c, drop_dead_frames), so the top frame's slot is
 * this address space's.
 */
void csi_site_ret_event(csi_vcpu *v, csi_stack *s, unsigned vcpu_index, const csi_site *site,
                       uint64_t sp)
{
    if (csi_arch->ret_addr_on_stack && site->cls == CSI_INSN_RET &&
        csi_engine_ret_from_slot(csi_eng, s, vcpu_index, csi_site_canon(site, sp))) {
        return;
    }
    csi_site_ret(s, vcpu_index, site, csi_site_target(v, site, sp), sp);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What an event at a call or return site does once its vCPU, stack and
 * stack pointer are known (see site.h).
 */
#include "plugin.h"
#include "guestio.h"
#include "site.h"

cs_site cs_site_entry;

void cs_site_init_entry(void)
{
    const cs_target *t = &cs_arch->entry_ret;
    cs_site_entry.tkind = t->kind;
    cs_site_entry.base = t->base[0] ? cs_reg_handle(t->base) : NULL;
    cs_site_entry.size = t->size;
    cs_site_entry.disp = t->disp;
    cs_site_entry.mask = t->mask ? t->mask : UINT64_MAX;
    if (t->base[0] && !cs_site_entry.base) {
        cs_site_entry.tkind = CS_TARGET_NONE;
    }
}

uint64_t cs_site_target(cs_vcpu *v, const cs_site *site, uint64_t sp)
{
    uint64_t base = 0, index = 0, value = 0;
    switch (site->tkind) {
    case CS_TARGET_DIRECT:
        return site->direct & site->mask;
    case CS_TARGET_REG:
        if (site->base == cs_reg_sp) {
            base = sp;
        } else if (!cs_reg_read_gpr(v, site->base, &base)) {
            return 0;
        }
        return (base + (uint64_t)site->disp) & site->mask;
    case CS_TARGET_MEM:
        if (site->base == cs_reg_sp) {
            base = sp;
        } else if (site->base && !cs_reg_read_gpr(v, site->base, &base)) {
            return 0;
        }
        if (site->index && !cs_reg_read_gpr(v, site->index, &index)) {
            return 0;
        }
        if (!cs_mem_read(v, (base + index * site->scale + (uint64_t)site->disp) & site->mask,
                         site->size, &value)) {
            return 0;
        }
        return value & site->mask;
    case CS_TARGET_NONE:
    default:
        return 0;
    }
}

void cs_site_ret(cs_stack *s, unsigned vcpu_index, const cs_site *site, uint64_t target,
                 uint64_t sp)
{
    cs_engine_ret(cs_eng, s, vcpu_index, target, (sp + (uint64_t)site->sp_delta) & site->mask);
    if (site->cls == CS_INSN_RET_CALL) {
        cs_site_call(s, vcpu_index, site, target, sp);
    }
}

/*
 * x86: a return reads its target from [sp], which in the common case is
 * exactly the top frame's recorded sp; the frame's saved return address is
 * then the target, with no guest memory read. (A return address rewritten
 * in place, as retpolines do, still pops that frame: the slot identifies it.)
 * Whole-system mode reads the target: a stack there may be another
 * process's (see system.c).
 */
void cs_site_ret_event(cs_vcpu *v, cs_stack *s, unsigned vcpu_index, const cs_site *site,
                       uint64_t sp)
{
    if (cs_arch->ret_addr_on_stack && !cs_cfg.system_mode && site->cls == CS_INSN_RET &&
        cs_engine_ret_from_slot(cs_eng, s, vcpu_index, sp & site->mask)) {
        return;
    }
    cs_site_ret(s, vcpu_index, site, cs_site_target(v, site, sp), sp);
}

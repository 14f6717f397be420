/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Stack ids in whole-system mode (system.c). */
#ifndef CSI_QEMU_SYSTEM_H
#define CSI_QEMU_SYSTEM_H

#include "plugin.h"
#include "vcpu.h"

/* At install; -1 after a message. The stack type is settled later, at the
 * first vCPU's init (threaded by default when osi_linux is loaded). */
int csi_system_setup(const char *target_name, bool stack_type_given);
void csi_system_registers_found(void);            /* once QEMU's registers are known */
/* At a call or return: the vCPU's stack for its registers and stack
 * pointer now, made its current stack (after dropping frames that died
 * while the vCPU was elsewhere). */
csi_stack *csi_system_stack(csi_vcpu *v, uint64_t sp);

/* Translation time: is the vCPU translating this block privileged? */
bool csi_system_kernel_now(void);

/*
 * The fast lane (fastpath.c): the vCPU's current stack if an event at this
 * privilege level and stack pointer stays on it, else NULL (take the event
 * path, which chooses the stack with csi_system_stack). No register is
 * read: kernel stacks are told apart by the stack pointer's region; a user
 * event right after user events (no kernel event in between) is on the
 * same address space, since the kernel changes address spaces only inside
 * functions, whose returns are kernel events.
 */
static inline csi_stack *csi_system_hot_stack(csi_vcpu *v, bool kernel, uint64_t sp)
{
    extern uint64_t csi_system_kregion_mask;
    if (kernel != v->sys_id.kernel || v->osi_pending) {
        return NULL;
    }
    if (kernel && (sp & csi_system_kregion_mask) != v->sys_id.second) {
        return NULL;
    }
    if (v->sys_id.kind == STACK_HEURISTIC) {
        /* heuristic user stacks: chosen by sp within the address space, cheap
         * while sp stays on the same stack */
        v->hot_stack = csi_engine_heuristic_switch(csi_eng, &v->sys_id, sp, &v->stack);
    }
    return v->hot_stack;
}

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Stack ids in whole-system mode (system.c). */
#ifndef CSI_QEMU_SYSTEM_H
#define CSI_QEMU_SYSTEM_H

#include "vcpu.h"

/* At install; -1 after a message. The stack type is settled later, at the
 * first vCPU's init (threaded by default when osi_linux is loaded). */
int csi_system_setup(const char *target_name, bool stack_type_given);
void csi_system_registers_found(void);            /* once QEMU's registers are known */
/* At a call or return: the vCPU's stack for its registers and stack
 * pointer now, made its current stack (after dropping frames that died
 * while the vCPU was elsewhere). */
csi_stack *csi_system_stack(csi_vcpu *v, uint64_t sp);

#endif

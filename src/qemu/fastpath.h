/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The callbacks of call and return sites (fastpath.c), through their
 * trampolines (trampoline.h), which add QEMU's CPU-state pointer env.
 */
#ifndef CSI_QEMU_FASTPATH_H
#define CSI_QEMU_FASTPATH_H

void csi_fastpath_call(unsigned int vcpu_index, void *udata, const void *env);
void csi_fastpath_ret(unsigned int vcpu_index, void *udata, const void *env);

#endif

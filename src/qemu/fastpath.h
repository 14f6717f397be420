/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The callbacks of call and return sites (fastpath.c), through their
 * trampolines (trampoline.h), which add QEMU's CPU-state pointer env.
 */
#ifndef CS_QEMU_FASTPATH_H
#define CS_QEMU_FASTPATH_H

void cs_fastpath_call(unsigned int vcpu_index, void *udata, const void *env);
void cs_fastpath_ret(unsigned int vcpu_index, void *udata, const void *env);

#endif

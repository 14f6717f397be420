/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where guest memory is (QEMU's guest_base), and the generation that
 * invalidates every vCPU's cache of directly readable pages (guestmem.h).
 */
#include "guestmem.h"

uint64_t csi_guestmem_gen = 1;
bool csi_guestmem_enabled;
uint64_t csi_guestmem_base;

void csi_guestmem_set_base(uint64_t base, bool direct)
{
    __atomic_store_n(&csi_guestmem_base, base, __ATOMIC_RELEASE);
    __atomic_store_n(&csi_guestmem_enabled, direct, __ATOMIC_RELEASE);
}

uint64_t csi_guestmem_guest_base(void)
{
    return __atomic_load_n(&csi_guestmem_base, __ATOMIC_ACQUIRE);
}

void csi_guestmem_forget_all(void)
{
    __atomic_add_fetch(&csi_guestmem_gen, 1, __ATOMIC_ACQ_REL);
}

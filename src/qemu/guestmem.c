/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The state the guest-memory page caches share (see guestmem.h): the
 * generation that invalidates them all, and where guest memory is.
 */
#include "guestmem.h"

uint64_t cs_guestmem_gen = 1;
bool cs_guestmem_enabled;
uint64_t cs_guestmem_base;

void cs_guestmem_enable(uint64_t base)
{
    cs_guestmem_base = base;
    __atomic_store_n(&cs_guestmem_enabled, true, __ATOMIC_RELEASE);
}

void cs_guestmem_forget_all(void)
{
    __atomic_add_fetch(&cs_guestmem_gen, 1, __ATOMIC_ACQ_REL);
}

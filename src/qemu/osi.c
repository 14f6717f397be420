/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The binding to osi_linux (see osi.h). */
#include "osi_linux/osi_linux.h"   /* first: it defines _GNU_SOURCE */
#include "osi.h"

static bool bound;

bool csi_osi_bind(const char **why)
{
    if (!bound) {
        bound = init_osi_linux_api();
    }
    if (!bound && why) {
        *why = osi_linux_api_error;
    }
    return bound;
}

bool csi_osi_bound(void)
{
    return bound;
}

bool csi_osi_current(unsigned vcpu, csi_osi_thread *out)
{
    osi_linux_thread t;
    if (!bound || !osi_linux_current(vcpu, &t)) {
        return false;
    }
    out->task = t.task;
    out->kstack = t.kstack;
    out->kstack_size = t.kstack_size;
    out->pid = t.pid;
    out->tgid = t.tgid;
    out->fresh = t.fresh;
    return true;
}

bool csi_osi_current_task(unsigned vcpu, uint64_t *task)
{
    return bound && osi_linux_current_task(vcpu, task);
}

bool csi_osi_symbolize(uint64_t addr, const char **name, uint64_t *sym_addr)
{
    osi_linux_symbol s;
    if (!bound || !osi_linux_symbolize(addr, &s)) {
        return false;
    }
    *name = s.name;
    *sym_addr = s.addr;
    return true;
}

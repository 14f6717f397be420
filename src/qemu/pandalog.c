/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pandalog_callstack_create/free: PANDA's CallStack message (protobuf-c),
 * with at most 16 return addresses, most recent first, as PANDA fills it.
 */
#include "callstack.pb-c.h"
#include <string.h>
#include "callstack_instr/callstack_instr.h"
#include "vcpu.h"

#define CSI_API __attribute__((visibility("default")))
#define PANDALOG_MAX_CALLERS 16

CSI_API Panda__CallStack *pandalog_callstack_create_vcpu(unsigned int vcpu_index)
{
    uint64_t callers[PANDALOG_MAX_CALLERS];
    uint32_t n = get_callers(callers, PANDALOG_MAX_CALLERS, vcpu_index);
    Panda__CallStack *cs = g_new(Panda__CallStack, 1);
    panda__call_stack__init(cs);
    cs->n_addr = n;
    cs->addr = g_new(uint64_t, n ? n : 1);
    memcpy(cs->addr, callers, n * sizeof callers[0]);
    return cs;
}

CSI_API Panda__CallStack *pandalog_callstack_create(void)
{
    int vcpu = csi_vcpu_current();
    return vcpu < 0 ? NULL : pandalog_callstack_create_vcpu((unsigned)vcpu);
}

CSI_API void pandalog_callstack_free(Panda__CallStack *cs)
{
    if (cs) {
        g_free(cs->addr);
        g_free(cs);
    }
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The exported API (include/callstack_instr/callstack_instr.h): PANDA's
 * functions with the vCPU index in place of CPUState *.
 */
#include <string.h>
#include "callstack_instr/callstack_instr.h"
#include "plugin.h"
#include "guestio.h"
#include "site.h"
#include "vcpu.h"

#define CS_API __attribute__((visibility("default")))

CS_API int callstack_instr_api_version(void)
{
    return CALLSTACK_INSTR_API_VERSION;
}

/* The vCPU's stack, valid until cs_vcpu_stack_unpin(*pinned): another
 * vCPU's may be freed meanwhile otherwise. */
static cs_stack *stack_of(unsigned int vcpu_index, bool *pinned)
{
    cs_vcpu *v = cs_eng ? cs_vcpu_get(vcpu_index) : NULL;
    *pinned = false;
    return v ? cs_vcpu_stack_pin(v, pinned) : NULL;
}

CS_API uint32_t get_callers(uint64_t *callers, uint32_t n, unsigned int vcpu_index)
{
    bool pinned;
    cs_stack *s = stack_of(vcpu_index, &pinned);
    uint32_t m = s && callers ? cs_engine_callers(cs_eng, s, callers, n) : 0;
    cs_vcpu_stack_unpin(pinned);
    return m;
}

CS_API uint32_t get_functions(uint64_t *functions, uint32_t n, unsigned int vcpu_index)
{
    bool pinned;
    cs_stack *s = stack_of(vcpu_index, &pinned);
    uint32_t m = s && functions ? cs_engine_functions(cs_eng, s, functions, n) : 0;
    cs_vcpu_stack_unpin(pinned);
    return m;
}

CS_API uint64_t get_stack_depth(unsigned int vcpu_index)
{
    bool pinned;
    cs_stack *s = stack_of(vcpu_index, &pinned);
    uint64_t d = s ? cs_engine_depth(cs_eng, s) : 0;
    cs_vcpu_stack_unpin(pinned);
    return d;
}

CS_API void get_prog_point(unsigned int vcpu_index, prog_point *p)
{
    if (!p) {
        return;
    }
    memset(p, 0, sizeof *p);
    p->stackKind = cs_cfg.kind;
    cs_vcpu *v = cs_eng ? cs_vcpu_get(vcpu_index) : NULL;
    if (!v) {
        return;
    }
    bool pinned;
    cs_stack *s = cs_vcpu_stack_pin(v, &pinned);
    if (s) {
        cs_engine_fill_prog_point(cs_eng, s, p);
    }
    cs_vcpu_stack_unpin(pinned);
    p->pc = cs_vcpu_last_pc(v);
    uint64_t pc;
    /* Whole-system mode: one thread may run several vCPUs (single-threaded
     * TCG), so the registers are this vCPU's only inside our callbacks. */
    bool own = cs_cfg.system_mode ? cs_vcpu_in_callback(vcpu_index)
                                  : cs_vcpu_current() == (int)vcpu_index;
    if (own && cs_reg_read_pc(v, &pc)) {
        p->pc = pc;
    }
}

CS_API bool ppp_add_cb_on_call(on_call_t fn)
{
    return cs_eng && cs_engine_subscribe(cs_eng, CS_SUB_CALL, (void (*)(void))fn);
}

CS_API bool ppp_remove_cb_on_call(on_call_t fn)
{
    return cs_eng && cs_engine_unsubscribe(cs_eng, CS_SUB_CALL, (void (*)(void))fn);
}

CS_API bool ppp_add_cb_on_ret(on_ret_t fn)
{
    return cs_eng && cs_engine_subscribe(cs_eng, CS_SUB_RET, (void (*)(void))fn);
}

CS_API bool ppp_remove_cb_on_ret(on_ret_t fn)
{
    return cs_eng && cs_engine_unsubscribe(cs_eng, CS_SUB_RET, (void (*)(void))fn);
}

CS_API bool ppp_add_cb_on_event(on_event_t fn)
{
    return cs_eng && cs_engine_subscribe(cs_eng, CS_SUB_EVENT, (void (*)(void))fn);
}

CS_API bool ppp_remove_cb_on_event(on_event_t fn)
{
    return cs_eng && cs_engine_unsubscribe(cs_eng, CS_SUB_EVENT, (void (*)(void))fn);
}

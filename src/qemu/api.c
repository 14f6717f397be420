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

#define CSI_API __attribute__((visibility("default")))

CSI_API int callstack_instr_api_version(void)
{
    return CALLSTACK_INSTR_API_VERSION;
}

/* The vCPU's stack, valid until csi_vcpu_stack_unpin(*pinned): another
 * vCPU's may be freed meanwhile otherwise. */
static csi_stack *stack_of(unsigned int vcpu_index, bool *pinned)
{
    csi_vcpu *v = csi_eng ? csi_vcpu_get(vcpu_index) : NULL;
    *pinned = false;
    return v ? csi_vcpu_stack_pin(v, pinned) : NULL;
}

CSI_API uint32_t get_callers(uint64_t *callers, uint32_t n, unsigned int vcpu_index)
{
    bool pinned;
    csi_stack *s = stack_of(vcpu_index, &pinned);
    uint32_t m = s && callers ? csi_engine_callers(csi_eng, s, callers, n) : 0;
    csi_vcpu_stack_unpin(pinned);
    return m;
}

CSI_API uint32_t get_functions(uint64_t *functions, uint32_t n, unsigned int vcpu_index)
{
    bool pinned;
    csi_stack *s = stack_of(vcpu_index, &pinned);
    uint32_t m = s && functions ? csi_engine_functions(csi_eng, s, functions, n) : 0;
    csi_vcpu_stack_unpin(pinned);
    return m;
}

CSI_API uint64_t get_stack_depth(unsigned int vcpu_index)
{
    bool pinned;
    csi_stack *s = stack_of(vcpu_index, &pinned);
    uint64_t d = s ? csi_engine_depth(csi_eng, s) : 0;
    csi_vcpu_stack_unpin(pinned);
    return d;
}

CSI_API void get_prog_point(unsigned int vcpu_index, prog_point *p)
{
    if (!p) {
        return;
    }
    memset(p, 0, sizeof *p);
    p->stackKind = csi_cfg.kind;
    csi_vcpu *v = csi_eng ? csi_vcpu_get(vcpu_index) : NULL;
    if (!v) {
        return;
    }
    bool pinned;
    csi_stack *s = csi_vcpu_stack_pin(v, &pinned);
    if (s) {
        csi_engine_fill_prog_point(csi_eng, s, p);
    }
    csi_vcpu_stack_unpin(pinned);
    p->pc = csi_vcpu_last_pc(v);
    uint64_t pc;
    /* Whole-system mode: one thread may run several vCPUs (single-threaded
     * TCG), so the registers are this vCPU's only inside our callbacks. */
    bool own = csi_cfg.system_mode ? csi_vcpu_in_callback(vcpu_index)
                                  : csi_vcpu_current() == (int)vcpu_index;
    if (own && csi_reg_read_pc(v, &pc)) {
        p->pc = pc;
    }
}

CSI_API bool ppp_add_cb_on_call(on_call_t fn)
{
    return csi_eng && csi_engine_subscribe(csi_eng, CSI_SUB_CALL, (void (*)(void))fn);
}

CSI_API bool ppp_remove_cb_on_call(on_call_t fn)
{
    return csi_eng && csi_engine_unsubscribe(csi_eng, CSI_SUB_CALL, (void (*)(void))fn);
}

CSI_API bool ppp_add_cb_on_ret(on_ret_t fn)
{
    return csi_eng && csi_engine_subscribe(csi_eng, CSI_SUB_RET, (void (*)(void))fn);
}

CSI_API bool ppp_remove_cb_on_ret(on_ret_t fn)
{
    return csi_eng && csi_engine_unsubscribe(csi_eng, CSI_SUB_RET, (void (*)(void))fn);
}

CSI_API bool ppp_add_cb_on_event(on_event_t fn)
{
    return csi_eng && csi_engine_subscribe(csi_eng, CSI_SUB_EVENT, (void (*)(void))fn);
}

CSI_API bool ppp_remove_cb_on_event(on_event_t fn)
{
    return csi_eng && csi_engine_unsubscribe(csi_eng, CSI_SUB_EVENT, (void (*)(void))fn);
}

CSI_API bool callstack_instr_claim_frames(on_frame_t on_call, on_frame_t on_ret)
{
    return csi_eng && csi_engine_claim_frames(csi_eng, on_call, on_ret);
}

CSI_API bool callstack_instr_release_frames(on_frame_t on_call, on_frame_t on_ret)
{
    return csi_eng && csi_engine_release_frames(csi_eng, on_call, on_ret);
}

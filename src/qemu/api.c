/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The exported API (include/callstack_instr/callstack_instr.h): PANDA's
 * functions with the vCPU index in place of CPUState *.
 */
#include <string.h>
#include "callstack_instr/callstack_instr.h"
#include "plugin.h"
#include "guestio.h"
#include "returns.h"
#include "site.h"
#include "vcpu.h"

#define CSI_API __attribute__((visibility("default")))

CSI_API int callstack_instr_api_version(void)
{
    return CALLSTACK_INSTR_API_VERSION;
}

/* Does this thread run that vCPU, so that its registers are the ones QEMU
 * reads? Whole-system mode: one thread may run several vCPUs
 * (single-threaded TCG), so only inside our callbacks. */
static bool own_vcpu(unsigned int vcpu_index)
{
    return csi_cfg.system_mode ? csi_vcpu_in_callback(vcpu_index)
                               : csi_vcpu_current() == (int)vcpu_index;
}

/*
 * The vCPU's stack, valid until csi_vcpu_stack_unpin(*pinned): another
 * vCPU's may be freed meanwhile otherwise. With lazy returns (returns.c),
 * *view is how a query sees it: the returns counted since the vCPU's last
 * event are skipped. A query never changes the stack (the asking thread
 * need not be the vCPU's), and its answer is the one it would get with
 * every return reported.
 */
static csi_stack *stack_of(unsigned int vcpu_index, bool *pinned, const csi_read_view **view,
                           csi_read_view *buf)
{
    csi_vcpu *v = csi_eng ? csi_vcpu_get(vcpu_index) : NULL;
    *pinned = false;
    *view = v ? csi_returns_view(v, buf) : NULL;
    return v ? csi_vcpu_stack_pin(v, pinned) : NULL;
}

static uint32_t list_frames(uint64_t *out, uint32_t n, unsigned int vcpu_index, bool functions)
{
    bool pinned;
    csi_read_view buf;
    const csi_read_view *view;
    csi_stack *s = stack_of(vcpu_index, &pinned, &view, &buf);
    uint32_t m = !s || !out ? 0
                 : functions ? csi_engine_functions_at(csi_eng, s, view, out, n)
                             : csi_engine_callers_at(csi_eng, s, view, out, n);
    csi_vcpu_stack_unpin(pinned);
    return m;
}

CSI_API uint32_t get_callers(uint64_t *callers, uint32_t n, unsigned int vcpu_index)
{
    return list_frames(callers, n, vcpu_index, false);
}

CSI_API uint32_t get_functions(uint64_t *functions, uint32_t n, unsigned int vcpu_index)
{
    return list_frames(functions, n, vcpu_index, true);
}

CSI_API uint64_t get_stack_depth(unsigned int vcpu_index)
{
    bool pinned;
    csi_read_view buf;
    const csi_read_view *view;
    csi_stack *s = stack_of(vcpu_index, &pinned, &view, &buf);
    uint64_t d = s ? csi_engine_depth_at(csi_eng, s, view) : 0;
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
    csi_read_view buf;
    const csi_read_view *view;
    csi_stack *s = stack_of(vcpu_index, &pinned, &view, &buf);
    if (s) {
        csi_engine_fill_prog_point_at(csi_eng, s, view, p);
    }
    csi_vcpu_stack_unpin(pinned);
    p->pc = csi_vcpu_last_pc(v);
    uint64_t pc;
    if (own_vcpu(vcpu_index) && csi_reg_read_pc(v, &pc)) {
        p->pc = pc;
    }
}

/* A subscriber sees every return: lazy returns end (returns.c). The
 * returns the subscribing vCPU made before are popped now, unseen (other
 * vCPUs' are reported just before their next event). */
static void returns_heard(void)
{
    int self = csi_vcpu_current();
    csi_vcpu *v = self >= 0 ? csi_vcpu_get((unsigned)self) : NULL;
    csi_stack *s = v ? csi_vcpu_stack(v) : NULL;
    if (s) {
        csi_returns_pop_quietly(v, s);
    }
    csi_returns_subscribed();
}

static bool subscribe(csi_sub_kind kind, void (*fn)(void))
{
    if (!csi_eng || !csi_engine_subscribe(csi_eng, kind, fn)) {
        return false;
    }
    returns_heard();
    return true;
}

CSI_API bool ppp_add_cb_on_call(on_call_t fn)
{
    return subscribe(CSI_SUB_CALL, (void (*)(void))fn);
}

CSI_API bool ppp_remove_cb_on_call(on_call_t fn)
{
    return csi_eng && csi_engine_unsubscribe(csi_eng, CSI_SUB_CALL, (void (*)(void))fn);
}

CSI_API bool ppp_add_cb_on_ret(on_ret_t fn)
{
    return subscribe(CSI_SUB_RET, (void (*)(void))fn);
}

CSI_API bool ppp_remove_cb_on_ret(on_ret_t fn)
{
    return csi_eng && csi_engine_unsubscribe(csi_eng, CSI_SUB_RET, (void (*)(void))fn);
}

CSI_API bool ppp_add_cb_on_event(on_event_t fn)
{
    return subscribe(CSI_SUB_EVENT, (void (*)(void))fn);
}

CSI_API bool ppp_remove_cb_on_event(on_event_t fn)
{
    return csi_eng && csi_engine_unsubscribe(csi_eng, CSI_SUB_EVENT, (void (*)(void))fn);
}

/* (a consumer of calls only keeps lazy returns: see csi_engine_has_subscribers) */
CSI_API bool callstack_instr_claim_frames(on_frame_t on_call, on_frame_t on_ret)
{
    if (!csi_eng || !csi_engine_claim_frames(csi_eng, on_call, on_ret)) {
        return false;
    }
    if (on_ret) {
        returns_heard();
    }
    return true;
}

CSI_API bool callstack_instr_release_frames(on_frame_t on_call, on_frame_t on_ret)
{
    return csi_eng && csi_engine_release_frames(csi_eng, on_call, on_ret);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The hot path: the callbacks of call and return sites, which is where an
 * instrumented program spends its plugin time.
 *
 * Each callback passes the gate (csi_vcpu_begin, vcpu.h) once. In the fast
 * lane the gate has verified that the vCPU is in user mode on a bound stack
 * (hot_stack) with a checked CPU-state pointer, and has read the stack
 * pointer through it (fastreg.h). Then an event is a few loads and the
 * engine's push or pop: no system call, no lock (see the engine's
 * write_begin), no plugin API call unless the target is in guest memory.
 * The common cases (a direct call; a return that pops the frame whose slot
 * it reads, x86) are handled inline; other targets and conditions out of
 * line (fast_rest).
 *
 * When the fast lane is not available (a register's offset not learnt yet
 * or never learnable, a CPU-state pointer not checked, the first event of a
 * thread or after a fork, whole-system mode's changes of stack, a target
 * known only at the next block) the slow lane hands the event to the event path (events.c),
 * which reads through the API what it cannot read directly. Both lanes give
 * the same events; the slow one is slower.
 */
#include "plugin.h"
#include "events.h"
#include "fastpath.h"
#include "site.h"
#include "system.h"
#include "tsan.h"
#include "vcpu.h"

/* The vCPU's stack for this event (heuristic: chosen by sp, cheap while sp
 * stays on the same stack). */
static inline csi_stack *fast_stack(csi_vcpu *v, uint64_t sp)
{
    csi_stack *s = v->hot_stack;
    if (csi_cfg.kind == STACK_HEURISTIC && s) {
        s = v->hot_stack = csi_engine_heuristic_switch(csi_eng, &v->space, sp, &v->stack);
    }
    return s;
}

/*
 * The gate (csi_vcpu_begin) and the stack: true for the fast lane, with *s
 * the stack. Whole-system mode takes the fast lane only while the event
 * stays on the vCPU's current stack (csi_system_hot_stack), and tells the
 * event path the privilege level from the translation either way.
 */
static inline __attribute__((always_inline)) bool fast_begin(unsigned vcpu_index, const void *udata, const void *env, csi_vcpu **vp,
                              uint64_t *sp, csi_stack **s)
{
    csi_lane lane = csi_vcpu_begin(vcpu_index, env, vp, sp);
    csi_vcpu *v = *vp;
    if (csi_cfg.system_mode && v) {
        bool kernel = csi_site_is_kernel(udata);
        v->sys_priv = kernel;
        return lane == CSI_LANE_FAST && (*s = csi_system_hot_stack(v, kernel, *sp)) != NULL;
    }
    if (lane != CSI_LANE_FAST) {
        return false;
    }
    *s = fast_stack(v, *sp);
    return true;
}

/* The slow lane: the event path (events.c). Out of line, as is
 * fast_rest, so that the callbacks stay small; both end the callback.
 * `loaded`: a call's target, when its callback was given it. */
static __attribute__((noinline)) void slow_lane(csi_vcpu *v, unsigned vcpu_index,
                                                const csi_site *site, bool ret,
                                                const uint64_t *loaded)
{
    if (!v) {
        /* (an untracked vCPU) */
        csi_vcpu_end(v);
        return;
    }
    /* (read by the exit report on another thread; counted here only) */
    __atomic_store_n(&v->slow_events, v->slow_events + 1, __ATOMIC_RELAXED);
    if (ret) {
        csi_events_ret(v, vcpu_index, site);
    } else if (loaded) {
        csi_events_call_to(v, vcpu_index, site, *loaded);
    } else {
        csi_events_call(v, vcpu_index, site);
    }
    csi_vcpu_refresh_fast(v);
    csi_vcpu_end(v);
}

/* The fast lane's other targets and conditions. */
static __attribute__((noinline)) void fast_rest(csi_vcpu *v, unsigned vcpu_index,
                                                const csi_site *site, csi_stack *s, uint64_t sp,
                                                bool ret)
{
    if (!site->hot) {
        /* (see csi_site.hot) */
        slow_lane(v, vcpu_index, site, ret, NULL);
        return;
    }
    csi_vcpu_set_last(v, site, 0);
    if (!csi_site_taken(v, site)) {
        /* a condition not taken */
    } else if (ret) {
        csi_site_ret_event(v, s, vcpu_index, site, sp);
    } else {
        csi_site_call(s, vcpu_index, site, csi_site_target(v, site, sp), sp);
    }
    csi_vcpu_end(v);
}

void csi_fastpath_call(unsigned int vcpu_index, void *udata, const void *env)
{
    const csi_site *site = csi_site_of(udata);
    csi_vcpu *v;
    csi_stack *s;
    uint64_t sp;
    CSI_TSAN_RECEIVE(site);
    if (!fast_begin(vcpu_index, udata, env, &v, &sp, &s)) {
        slow_lane(v, vcpu_index, site, false, NULL);
    } else if (!site->hot || site->cond_reg || site->tkind != CSI_TARGET_DIRECT) {
        fast_rest(v, vcpu_index, site, s, sp, false);
    } else {
        csi_vcpu_set_last(v, site, 0);
        csi_engine_call(csi_eng, s, vcpu_index, csi_site_canon(site, site->direct),
                       site->ret_addr, site->vaddr, csi_site_canon(site, sp + (uint64_t)site->sp_delta));
        csi_vcpu_end(v);
    }
}

/*
 * A call through memory (x86 `call *disp(base,index,scale)`, the form of
 * C++ virtual calls and of function tables) whose callback QEMU runs just
 * after the instruction loads its target, handing over the value loaded.
 * In whole-system mode the alternative, reading the target through
 * qemu_plugin_read_memory_vaddr, walks the guest's page tables on every
 * call (about 100 ns); in user mode it saves the read of guest memory.
 * The load comes before the push of the return address, so sp is still
 * the caller's, as at a call's instruction callback; a load that faults
 * runs no callback (the call is restarted after the fault).
 */
void csi_fastpath_call_loaded(unsigned int vcpu_index, qemu_plugin_meminfo_t info,
                              uint64_t vaddr, void *udata, const void *env)
{
    (void)vaddr;
    const csi_site *site = csi_site_of(udata);
    qemu_plugin_mem_value loaded = qemu_plugin_mem_get_value(info);
    uint64_t target = loaded.type == QEMU_PLUGIN_MEM_VALUE_U32   ? loaded.data.u32
                      : loaded.type == QEMU_PLUGIN_MEM_VALUE_U16 ? loaded.data.u16
                      : loaded.type == QEMU_PLUGIN_MEM_VALUE_U8  ? loaded.data.u8
                                                                 : loaded.data.u64;
    target = csi_site_canon(site, target);
    csi_vcpu *v;
    csi_stack *s;
    uint64_t sp;
    CSI_TSAN_RECEIVE(site);
    if (!fast_begin(vcpu_index, udata, env, &v, &sp, &s)) {
        slow_lane(v, vcpu_index, site, false, &target);
    } else {
        csi_vcpu_set_last(v, site, 0);
        csi_site_call(s, vcpu_index, site, target, sp);
        csi_vcpu_end(v);
    }
}

void csi_fastpath_ret(unsigned int vcpu_index, void *udata, const void *env)
{
    const csi_site *site = csi_site_of(udata);
    csi_vcpu *v;
    csi_stack *s;
    uint64_t sp;
    CSI_TSAN_RECEIVE(site);
    if (!fast_begin(vcpu_index, udata, env, &v, &sp, &s)) {
        slow_lane(v, vcpu_index, site, true, NULL);
    } else if (!csi_site_is_slot_ret(udata)) {
        fast_rest(v, vcpu_index, site, s, sp, true);
    } else {
        /* (a slot return's site is hot and unconditional: see csi_site_udata) */
        csi_vcpu_set_last(v, site, 0);
        if (!csi_engine_ret_from_slot(csi_eng, s, vcpu_index, sp)) {
            /* not the top frame's slot: read the target */
            csi_site_ret(s, vcpu_index, site, csi_site_target(v, site, sp), sp);
        }
        csi_vcpu_end(v);
    }
}

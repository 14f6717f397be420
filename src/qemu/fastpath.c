/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The hot path: the callbacks of call and return sites, which is where an
 * instrumented program spends its plugin time.
 *
 * Each callback passes the gate (cs_vcpu_begin, vcpu.h) once. In the fast
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
 * thread or after a fork, whole-system mode, a target known only at the
 * next block) the slow lane hands the event to the event path (events.c),
 * which reads through the API what it cannot read directly. Both lanes give
 * the same events; the slow one is slower.
 */
#include "plugin.h"
#include "events.h"
#include "fastpath.h"
#include "site.h"
#include "tsan.h"
#include "vcpu.h"

/* The vCPU's stack for this event (heuristic: chosen by sp, cheap while sp
 * stays on the same stack). */
static inline cs_stack *fast_stack(cs_vcpu *v, uint64_t sp)
{
    cs_stack *s = v->hot_stack;
    if (cs_cfg.kind == STACK_HEURISTIC && s) {
        s = v->hot_stack = cs_engine_heuristic_switch(cs_eng, &v->space, sp, &v->stack);
    }
    return s;
}

/* The slow lane: the event path (events.c). Out of line, as is
 * fast_rest, so that the callbacks stay small; both end the callback. */
static __attribute__((noinline)) void slow_lane(cs_vcpu *v, unsigned vcpu_index,
                                                const cs_site *site, bool ret)
{
    if (!v) {
        /* (an untracked vCPU) */
    } else if (ret) {
        cs_events_ret(v, vcpu_index, site);
    } else {
        cs_events_call(v, vcpu_index, site);
    }
    cs_vcpu_end(v);
}

/* The fast lane's other targets and conditions. */
static __attribute__((noinline)) void fast_rest(cs_vcpu *v, unsigned vcpu_index,
                                                const cs_site *site, uint64_t sp, bool ret)
{
    if (!site->hot) {
        /* (see cs_site.hot) */
        slow_lane(v, vcpu_index, site, ret);
        return;
    }
    cs_vcpu_set_last(v, site, 0);
    cs_stack *s = fast_stack(v, sp);
    if (!cs_site_taken(v, site)) {
        /* a condition not taken */
    } else if (ret) {
        cs_site_ret_event(v, s, vcpu_index, site, sp);
    } else {
        cs_site_call(s, vcpu_index, site, cs_site_target(v, site, sp), sp);
    }
    cs_vcpu_end(v);
}

void cs_fastpath_call(unsigned int vcpu_index, void *udata, const void *env)
{
    const cs_site *site = udata;
    cs_vcpu *v;
    uint64_t sp;
    CS_TSAN_RECEIVE(site);
    if (cs_vcpu_begin(vcpu_index, env, &v, &sp) != CS_LANE_FAST) {
        slow_lane(v, vcpu_index, site, false);
    } else if (!site->hot || site->cond_reg || site->tkind != CS_TARGET_DIRECT) {
        fast_rest(v, vcpu_index, site, sp, false);
    } else {
        cs_vcpu_set_last(v, site, 0);
        cs_engine_call(cs_eng, fast_stack(v, sp), vcpu_index, site->direct & site->mask,
                       site->ret_addr, site->vaddr, (sp + (uint64_t)site->sp_delta) & site->mask);
        cs_vcpu_end(v);
    }
}

void cs_fastpath_ret(unsigned int vcpu_index, void *udata, const void *env)
{
    const cs_site *site = cs_site_of(udata);
    cs_vcpu *v;
    uint64_t sp;
    CS_TSAN_RECEIVE(site);
    if (cs_vcpu_begin(vcpu_index, env, &v, &sp) != CS_LANE_FAST) {
        slow_lane(v, vcpu_index, site, true);
    } else if (!cs_site_is_slot_ret(udata)) {
        fast_rest(v, vcpu_index, site, sp, true);
    } else {
        /* (a slot return's site is hot and unconditional: see cs_site_udata) */
        cs_vcpu_set_last(v, site, 0);
        cs_stack *s = fast_stack(v, sp);
        if (!cs_engine_ret_from_slot(cs_eng, s, vcpu_index, sp)) {
            /* not the top frame's slot: read the target */
            cs_site_ret(s, vcpu_index, site, cs_site_target(v, site, sp), sp);
        }
        cs_vcpu_end(v);
    }
}

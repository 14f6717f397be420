/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Lazy returns. A return costs a callback like a call does, yet while no
 * plugin subscribes to on_call, on_ret or on_event nobody needs to see it
 * happen: only the query API (get_callers, get_functions, get_prog_point,
 * pandalog call stacks) reads the stacks. So return instructions then get
 * an inline counter instead of a callback (a few host instructions in the
 * translated code, no call), and the counted returns pop their frames at
 * the vCPU's next event, in the engine (csi_engine_set_return_counters),
 * or are skipped by a query (csi_read_view).
 *
 * Why a count and not the stack pointer alone: after a return, code may
 * move sp below the returned frame again (a push of stack arguments, the
 * `sub` after i386's __x86.get_pc_thunk call) before the next call, and the
 * frame would look alive. Each counted return pops the top frame, which is
 * what a reported return does whenever its slot is the top frame's (the
 * normal case); the stack pointer then unwinds, at the next call, what a
 * non-local exit left, as with reported returns.
 *
 * Only where a stack has one writer that is the vCPU whose returns are
 * counted: user mode, threaded or heuristic stacks (asid stacks are shared
 * by a process's threads, whose counts would be applied out of order), on
 * architectures with a readable stack pointer and targets known at the
 * instruction. Conditional returns keep their callback (a count cannot
 * tell taken from not taken); the engine pops the counted ones before it.
 */
#include <stdio.h>
#include "plugin.h"
#include "returns.h"

static qemu_plugin_u64 counters;
static bool possible;
/* New translations count returns: until the first subscriber, for good. */
static bool counting = true;
/* Some translation has counted returns (so a subscriber must retranslate). */
static bool counted_some;
static bool switching;
static void *known_base;
/* Registers every callback again after qemu_plugin_reset (plugin.c). */
static void (*register_again)(qemu_plugin_id_t id);

void csi_returns_setup(void (*register_callbacks)(qemu_plugin_id_t id))
{
    register_again = register_callbacks;
    possible = csi_cfg.returns == CSI_RETURNS_LAZY && !csi_cfg.system_mode &&
               csi_cfg.kind != STACK_ASID && csi_arch->sp_reg && !csi_arch->targets_observed;
    if (possible) {
        counters = qemu_plugin_scoreboard_u64(qemu_plugin_scoreboard_new(sizeof(uint64_t)));
    }
}

bool csi_returns_possible(void)
{
    return possible;
}

bool csi_returns_translating(void)
{
    if (!possible) {
        return false;
    }
    bool count = __atomic_load_n(&counting, __ATOMIC_ACQUIRE) &&
                 !csi_engine_has_subscribers(csi_eng);
    if (count) {
        /* (with csi_returns_subscribed: either this translation sees the
         * subscriber, or the subscriber sees counted_some and retranslates;
         * seq_cst store then seq_cst load on each side is that guarantee,
         * without fences, which ThreadSanitizer cannot follow) */
        __atomic_store_n(&counted_some, true, __ATOMIC_SEQ_CST);
        count = __atomic_load_n(&counting, __ATOMIC_SEQ_CST) && !csi_engine_has_subscribers(csi_eng);
    }
    /*
     * The engine reads the counters only once some block may count (so a
     * run with a subscriber from the start pays nothing for them), and from
     * then on for good (counts may be pending). QEMU reallocates scoreboards
     * when vCPUs are added, stopping every vCPU and flushing all
     * translations (the inline operations embed the address): so any block
     * runs after a translation that stored the current address here, and
     * the engine never reads a stale one from translated code.
     */
    if (__atomic_load_n(&counted_some, __ATOMIC_ACQUIRE)) {
        void *base = qemu_plugin_scoreboard_find(counters.score, 0);
        if (base != __atomic_load_n(&known_base, __ATOMIC_RELAXED)) {
            __atomic_store_n(&known_base, base, __ATOMIC_RELAXED);
            /* (elements of one uint64_t: an array) */
            csi_engine_set_return_counters(csi_eng, (uint64_t *)((char *)base + counters.offset));
        }
    }
    return count;
}

bool csi_returns_count(struct qemu_plugin_insn *insn, const csi_site *site)
{
    if (site->cls != CSI_INSN_RET || site->cond_reg || !site->hot) {
        return false;
    }
    /* An x86 `ret imm` is also how i386's lazy-binding resolver
     * (_dl_runtime_resolve: `xchg %eax,(%esp); ret $12`) jumps to the
     * function it resolved: no frame of its own to pop, which a count
     * cannot know. Such returns keep their callback (functions returning
     * a structure through a hidden pointer use it too: slower, not wrong). */
    if (csi_arch->ret_addr_on_stack && site->sp_delta != (int64_t)csi_arch->word_bytes) {
        return false;
    }
    qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_ADD_U64, counters, 1);
    return true;
}

void csi_returns_vcpu_init(unsigned vcpu_index)
{
    if (possible) {
        qemu_plugin_u64_set(counters, vcpu_index, 0);
    }
}

const csi_read_view *csi_returns_view(csi_vcpu *v, csi_read_view *buf)
{
    /* (an index QEMU has not initialised has no counter yet) */
    if (!__atomic_load_n(&counted_some, __ATOMIC_ACQUIRE) ||
        v->index >= (unsigned)qemu_plugin_num_vcpus()) {
        return NULL;
    }
    /* Another vCPU's count and stack are read while it runs on: a snapshot
     * of a moving stack, as without lazy returns. */
    buf->pending = qemu_plugin_u64_get(counters, v->index);
    return buf;
}

void csi_returns_pop_quietly(csi_vcpu *v, csi_stack *s)
{
    /* (through the API: the engine's copy of the counters' address is
     * current only inside translated code, see csi_returns_translating) */
    if (__atomic_load_n(&counted_some, __ATOMIC_ACQUIRE) &&
        v->index < (unsigned)qemu_plugin_num_vcpus()) {
        uint64_t n = qemu_plugin_u64_get(counters, v->index);
        qemu_plugin_u64_set(counters, v->index, 0);
        csi_engine_pop_returns_quietly(csi_eng, s, v->index, n);
    }
}

/* (QEMU calls it with every vCPU stopped and the translations flushed) */
static void after_reset(qemu_plugin_id_t id)
{
    register_again(id);
}

void csi_returns_subscribed(void)
{
    if (!possible) {
        return;
    }
    __atomic_store_n(&counting, false, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&counted_some, __ATOMIC_SEQ_CST) &&
        !__atomic_exchange_n(&switching, true, __ATOMIC_SEQ_CST)) {
        /*
         * Blocks translated so far count their returns: retranslate them.
         * qemu_plugin_reset removes all of this plugin's callbacks, flushes
         * the translations (once the vCPUs are stopped) and calls
         * after_reset to register them again. Until then, and until each
         * vCPU's next event, counted returns are popped (and reported)
         * just before that vCPU's next event, in order.
         */
        if (csi_cfg.verbose) {
            fprintf(stderr, "callstack_instr: a subscriber arrived: returns reported from now on "
                    "(retranslating)\n");
        }
        qemu_plugin_reset(csi_plugin_id, after_reset);
    }
}

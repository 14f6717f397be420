/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * callstack_instr as a QEMU TCG plugin: arguments and installation.
 *
 *   -plugin libcallstack_instr.so[,verbose=on][,stack_type=asid|heuristic|threaded]
 *           [,max_depth=N][,stack_distance=BYTES][,max_stacks=N][,max_spaces=N]
 *           [,fast_regs=on|off][,returns=lazy|all]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include "plugin.h"
#include "fastreg.h"
#include "returns.h"
#include "guestio.h"
#include "signals.h"
#include "symbols.h"
#include "syscalls.h"
#include "system.h"
#include "trampoline.h"
#include "translate.h"
#include "vcpu.h"
#include "options/options.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

csi_config csi_cfg;
qemu_plugin_id_t csi_plugin_id;
csi_engine *csi_eng;
const csi_arch_desc *csi_arch;

static const char *kind_name(stack_type k)
{
    switch (k) {
    case STACK_ASID: return "asid";
    case STACK_HEURISTIC: return "heuristic";
    case STACK_THREADED: return "threaded";
    }
    return "?";
}

/* The arguments, in the order of stack_type's values. */
static const char *const stack_types[] = { "asid", "heuristic", "threaded", NULL };
/* In the order of csi_returns_mode's values. */
static const char *const returns_modes[] = { "lazy", "all", NULL };

static int parse_args(int argc, char **argv, bool *kind_given)
{
    int kind = csi_cfg.kind;
    uint64_t max_depth = csi_cfg.engine.max_depth, max_stacks = csi_cfg.engine.max_heuristic_stacks;
    uint64_t max_spaces = csi_cfg.engine.max_spaces;
    const opt_spec specs[] = {
        { .name = "verbose", .kind = OPT_BOOL, .dest = &csi_cfg.verbose },
        { .name = "stack_type", .kind = OPT_CHOICE, .choices = stack_types, .dest = &kind,
          .given = kind_given },
        { .name = "max_depth", .kind = OPT_UINT, .synopsis = "N (2..2^31)", .min = 2,
          .max = 1ull << 31, .dest = &max_depth },
        { .name = "stack_distance", .kind = OPT_UINT, .synopsis = "BYTES", .min = 16,
          .max = 1ull << 40, .accepted = "a byte count from 16 to 2^40 (0x-prefixed hex or decimal)",
          .dest = &csi_cfg.engine.stack_distance },
        { .name = "max_stacks", .kind = OPT_UINT, .min = 1, .max = 1u << 20, .dest = &max_stacks },
        { .name = "max_spaces", .kind = OPT_UINT, .min = 1, .max = 1u << 20, .dest = &max_spaces },
        { .name = "fast_regs", .kind = OPT_BOOL, .dest = &csi_cfg.direct_reads },
        { .name = "returns", .kind = OPT_CHOICE, .choices = returns_modes, .dest = &csi_cfg.returns },
        { 0 },
    };
    if (!opts_parse("callstack_instr", specs, argc, argv)) {
        return -1;
    }
    csi_cfg.kind = (stack_type)kind;
    csi_cfg.engine.max_depth = (uint32_t)max_depth;
    csi_cfg.engine.max_heuristic_stacks = (uint32_t)max_stacks;
    csi_cfg.engine.max_spaces = (uint32_t)max_spaces;
    return 0;
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    if (csi_cfg.verbose) {
        csi_engine_stats st;
        csi_engine_get_stats(csi_eng, &st);
        fprintf(stderr, "callstack_instr: pid %d: %" PRIu64 " calls, %" PRIu64 " returns, %"
                PRIu64 " unwound, %" PRIu64 " unmatched returns (%" PRIu64 " returns counted, "
                "not reported), %" PRIu64 " stacks created, %u live\n",
                (int)getpid(), st.calls, st.returns, st.unwound, st.unmatched_returns,
                st.counted_returns,
                st.stacks_created, csi_engine_stack_count(csi_eng));
        fprintf(stderr, "callstack_instr: events through the event path: %" PRIu64
                " (the others on the fast path)\n", csi_vcpu_slow_events());
        csi_reg_report_learning();
        fprintf(stderr, "callstack_instr: registers read directly: %u, through QEMU: %u, "
                "still being checked: %u\n", csi_fastreg_count(CSI_FASTREG_FAST),
                csi_fastreg_count(CSI_FASTREG_SLOW), csi_fastreg_count(CSI_FASTREG_LEARNING));
    }
}

void csi_plugin_register_callbacks(qemu_plugin_id_t id)
{
    csi_vcpu_register_callbacks(id);
    csi_translate_register_callbacks(id);
    csi_syscalls_setup(id);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    bool kind_given = false;
    csi_cfg.system_mode = info->system_emulation;
    /* User mode has the operating-system view built in, so threads are told
     * apart by default; whole-system mode needs osi_linux for that (the type
     * is settled once every plugin is loaded: system.c). */
    csi_cfg.kind = info->system_emulation ? STACK_ASID : STACK_THREADED;
    csi_cfg.engine.max_depth = CSI_DEFAULT_MAX_DEPTH;
    csi_cfg.engine.max_spaces = CSI_DEFAULT_MAX_SPACES;
    csi_cfg.direct_reads = true;
    csi_cfg.returns = CSI_RETURNS_LAZY;
    csi_plugin_id = id;
    if (parse_args(argc, argv, &kind_given) < 0) {
        return -1;
    }
    csi_arch = csi_arch_find(info->target_name);
    if (!csi_arch) {
        fprintf(stderr, "callstack_instr: guest architecture '%s' is not supported; supported: %s\n",
                info->target_name, csi_arch_supported());
        return -1;
    }
    if (csi_cfg.kind == STACK_HEURISTIC && !csi_arch->sp_reg) {
        fprintf(stderr, "callstack_instr: stack_type=heuristic needs the stack pointer, which QEMU "
                "does not expose on %s; accepted there: asid, threaded\n", csi_arch->name);
        return -1;
    }
    if (info->system_emulation && csi_system_setup(info->target_name, kind_given) < 0) {
        return -1;
    }
    /* A stack that follows one guest stack can trust the stack pointer;
     * one shared by a process's threads (asid) cannot. */
    csi_cfg.engine.sp_resync = !csi_cfg.system_mode && csi_cfg.kind != STACK_ASID && csi_arch->sp_reg;
    csi_cfg.engine.ret_addr_on_stack = csi_arch->call_kills_equal_sp;
    /* linux-user calls the engine for a thread on that thread, and sees
     * every thread being created (syscalls.c); whole-system mode knows its
     * vCPUs before the guest runs (vcpu.c: the second one makes the engine
     * concurrent). */
    csi_cfg.engine.threaded_owned = !csi_cfg.system_mode;
    csi_cfg.engine.starts_single_threaded = csi_cfg.system_mode || csi_arch->clone_nr[0] != 0;
    csi_fastreg_enabled = csi_cfg.direct_reads && csi_trampoline_env_register();
    csi_eng = csi_engine_new(&csi_cfg.engine);

    csi_returns_setup(csi_plugin_register_callbacks);
    csi_vcpu_setup(id);
    csi_translate_setup(id);
    csi_signals_setup();
    csi_symbols_setup();
    csi_plugin_register_callbacks(id);
    if (csi_cfg.verbose) {
        const csi_engine_config *c = csi_engine_get_config(csi_eng);
        fprintf(stderr, "callstack_instr: target %s, stack_type=%s%s, max_depth=%u, "
                "sp resync %s, stack_distance=%" PRIu64 ", max_stacks=%u, max_spaces=%u, "
                "fast_regs=%s, returns %s\n",
                csi_arch->name, kind_name(csi_cfg.kind), kind_given ? "" : " (default)",
                c->max_depth, c->sp_resync ? "on" : c->sp_resync_own ? "on kernel stacks" : "off",
                c->stack_distance, c->max_heuristic_stacks, c->max_spaces,
                csi_fastreg_enabled ? "on" : csi_cfg.direct_reads ? "memory only (host)" : "off",
                csi_returns_possible() ? "counted while nobody subscribes (lazy)" : "reported");
        if (csi_cfg.direct_reads && !csi_trampoline_env_register()) {
            fprintf(stderr, "callstack_instr: this host's callbacks get no CPU-state pointer "
                    "(no trampoline for it): registers via the API\n");
        }
    }
    return 0;
}

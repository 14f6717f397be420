/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * callstack_instr as a QEMU TCG plugin: arguments and installation.
 *
 *   -plugin libcallstack_instr.so[,verbose=on][,stack_type=asid|heuristic|threaded]
 *           [,max_depth=N][,stack_distance=BYTES][,max_stacks=N][,fast_regs=on|off]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include "plugin.h"
#include "fastreg.h"
#include "guestio.h"
#include "signals.h"
#include "symbols.h"
#include "syscalls.h"
#include "system.h"
#include "trampoline.h"
#include "translate.h"
#include "vcpu.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

cs_config cs_cfg;
cs_engine *cs_eng;
const cs_arch_desc *cs_arch;

#define ARGS_HELP "accepted arguments: verbose=on|off, stack_type=asid|heuristic|threaded, " \
                  "max_depth=N (2..2^31), stack_distance=BYTES, max_stacks=N, " \
                  "fast_regs=on|off"

static const char *kind_name(stack_type k)
{
    switch (k) {
    case STACK_ASID: return "asid";
    case STACK_HEURISTIC: return "heuristic";
    case STACK_THREADED: return "threaded";
    }
    return "?";
}

static int arg_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "callstack_instr: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return -1;
}

/* An unsigned integer in [lo, hi], decimal or 0x-prefixed hex, nothing else. */
static bool parse_uint(const char *val, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    if (!g_ascii_isdigit(val[0])) {
        return false;
    }
    errno = 0;
    unsigned long long v = g_ascii_strtoull(val, &end, 0);
    if (errno || end == val || *end || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, bool *kind_given)
{
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            return arg_error("argument '%s' has no value; %s", argv[i], ARGS_HELP);
        }
        g_autofree char *key = g_strndup(argv[i], (gsize)(eq - argv[i]));
        const char *val = eq + 1;
        if (strcmp(key, "verbose") == 0) {
            if (!qemu_plugin_bool_parse(key, val, &cs_cfg.verbose)) {
                return arg_error("bad value '%s' for verbose; accepted: on, off, true, false%s",
                                 val, "");
            }
        } else if (strcmp(key, "fast_regs") == 0) {
            if (!qemu_plugin_bool_parse(key, val, &cs_cfg.direct_reads)) {
                return arg_error("bad value '%s' for fast_regs; accepted: on, off, true, false%s",
                                 val, "");
            }
        } else if (strcmp(key, "stack_type") == 0) {
            if (strcmp(val, "asid") == 0) {
                cs_cfg.kind = STACK_ASID;
            } else if (strcmp(val, "threaded") == 0) {
                cs_cfg.kind = STACK_THREADED;
            } else if (strcmp(val, "heuristic") == 0) {
                cs_cfg.kind = STACK_HEURISTIC;
            } else {
                return arg_error("bad value '%s' for stack_type; accepted: %s", val,
                                 "asid, heuristic, threaded");
            }
            *kind_given = true;
        } else if (strcmp(key, "max_depth") == 0) {
            uint64_t v;
            if (!parse_uint(val, 2, 1ull << 31, &v)) {
                return arg_error("bad value '%s' for max_depth; accepted: %s", val,
                                 "an integer from 2 to 2147483648");
            }
            cs_cfg.engine.max_depth = (uint32_t)v;
        } else if (strcmp(key, "stack_distance") == 0) {
            uint64_t v;
            if (!parse_uint(val, 16, 1ull << 40, &v)) {
                return arg_error("bad value '%s' for stack_distance; accepted: %s", val,
                                 "a byte count from 16 to 2^40 (0x-prefixed hex or decimal)");
            }
            cs_cfg.engine.stack_distance = v;
        } else if (strcmp(key, "max_stacks") == 0) {
            uint64_t v;
            if (!parse_uint(val, 1, 1u << 20, &v)) {
                return arg_error("bad value '%s' for max_stacks; accepted: %s", val,
                                 "an integer from 1 to 1048576");
            }
            cs_cfg.engine.max_heuristic_stacks = (uint32_t)v;
        } else {
            return arg_error("unknown argument '%s'; %s", key, ARGS_HELP);
        }
    }
    return 0;
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    if (cs_cfg.verbose) {
        cs_engine_stats st;
        cs_engine_get_stats(cs_eng, &st);
        fprintf(stderr, "callstack_instr: pid %d: %" PRIu64 " calls, %" PRIu64 " returns, %"
                PRIu64 " unwound, %" PRIu64 " unmatched returns, %" PRIu64 " stacks created, %u live\n",
                (int)getpid(), st.calls, st.returns, st.unwound, st.unmatched_returns,
                st.stacks_created, cs_engine_stack_count(cs_eng));
        cs_reg_report_learning();
        fprintf(stderr, "callstack_instr: registers read directly: %u, through QEMU: %u, "
                "still being checked: %u\n", cs_fastreg_count(CS_FASTREG_FAST),
                cs_fastreg_count(CS_FASTREG_SLOW), cs_fastreg_count(CS_FASTREG_LEARNING));
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    bool kind_given = false;
    cs_cfg.system_mode = info->system_emulation;
    /* User mode has the operating-system view built in, so threads are told
     * apart by default; in system mode there is no introspection yet. */
    cs_cfg.kind = info->system_emulation ? STACK_ASID : STACK_THREADED;
    cs_cfg.engine.max_depth = CS_DEFAULT_MAX_DEPTH;
    cs_cfg.direct_reads = true;
    if (parse_args(argc, argv, &kind_given) < 0) {
        return -1;
    }
    cs_arch = cs_arch_find(info->target_name);
    if (!cs_arch) {
        fprintf(stderr, "callstack_instr: guest architecture '%s' is not supported; supported: %s\n",
                info->target_name, cs_arch_supported());
        return -1;
    }
    if (cs_cfg.kind == STACK_HEURISTIC && !cs_arch->sp_reg) {
        fprintf(stderr, "callstack_instr: stack_type=heuristic needs the stack pointer, which QEMU "
                "does not expose on %s; accepted there: asid, threaded\n", cs_arch->name);
        return -1;
    }
    if (info->system_emulation && cs_system_setup(info->target_name) < 0) {
        return -1;
    }
    /* A stack that follows one guest stack can trust the stack pointer;
     * one shared by a process's threads (asid) cannot. */
    cs_cfg.engine.sp_resync = cs_cfg.kind != STACK_ASID && cs_arch->sp_reg;
    cs_cfg.engine.ret_addr_on_stack = cs_arch->call_kills_equal_sp;
    /* linux-user calls the engine for a thread on that thread, and sees
     * every thread being created (syscalls.c); whole-system mode may run
     * vCPUs on several threads from the start. */
    cs_cfg.engine.threaded_owned = !cs_cfg.system_mode;
    cs_cfg.engine.starts_single_threaded = !cs_cfg.system_mode && cs_arch->clone_nr[0] != 0;
    cs_fastreg_enabled = cs_cfg.direct_reads && cs_trampoline_env_register();
    cs_eng = cs_engine_new(&cs_cfg.engine);

    cs_vcpu_setup(id);
    cs_translate_setup(id);
    cs_signals_setup();
    cs_syscalls_setup(id);
    cs_symbols_setup();
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    if (cs_cfg.verbose) {
        const cs_engine_config *c = cs_engine_get_config(cs_eng);
        fprintf(stderr, "callstack_instr: target %s, stack_type=%s%s, max_depth=%u, "
                "sp resync %s, stack_distance=%" PRIu64 ", max_stacks=%u, fast_regs=%s\n",
                cs_arch->name, kind_name(cs_cfg.kind), kind_given ? "" : " (default)",
                c->max_depth, c->sp_resync ? "on" : c->sp_resync_kernel ? "on kernel stacks" : "off",
                c->stack_distance, c->max_heuristic_stacks,
                cs_fastreg_enabled ? "on" : cs_cfg.direct_reads ? "memory only (host)" : "off");
        if (cs_cfg.direct_reads && !cs_trampoline_env_register()) {
            fprintf(stderr, "callstack_instr: this host's callbacks get no CPU-state pointer "
                    "(no trampoline for it): registers via the API\n");
        }
    }
    return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_querier: a consumer that only QUERIES callstack_instr (so that
 * returns may be lazy: README.md, "Lazy returns"), for tests/e2e/test_lazy.py and
 * bench/bench.py. On every `every`-th executed block of a vCPU whose
 * address lies in [lo, hi) (counted inline: the blocks between samples
 * cost no callback) it asks, from that block's callback on the vCPU's own
 * thread, get_callers, get_functions, get_stack_depth,
 * get_prog_point and pandalog_callstack_create, and writes the answers.
 * With after=K it subscribes to on_event after its K-th sample and writes
 * every event from then on. With at=syscall it samples at every `every`-th
 * system call instead (linux-user), as analysis plugins ask for the stack
 * at events of their own: nothing is added to the blocks.
 *
 *   -plugin libcallstack_instr.so
 *   -plugin libtest_querier.so,out=PATH[,every=N][,only=LO-HI][,after=K][,quiet=on]
 *                             [,at=block|syscall]
 *
 * Lines (hex numbers), at most 64 entries per list:
 *   S <TAB> n <TAB> pc <TAB> depth <TAB> callers,… <TAB> functions,… <TAB>
 *     caller <TAB> sidFirst:sidSecond <TAB> pandalog,…
 *   E <TAB> call|ret <TAB> func <TAB> ret_addr <TAB> depth <TAB> unwound
 * quiet=on writes only the last line, `# samples=N events=N`, as a
 * benchmark consumer that does the queries but not the I/O.
 */
#define _GNU_SOURCE   /* (callstack_instr_ext.h: dl_iterate_phdr) */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <qemu-plugin.h>
#include "callstack_instr/callstack_instr_ext.h"
#include "callstack.pb-c.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_READ 64

static uint64_t every = 1000, lo = 0, hi = UINT64_MAX, after = 0;
static bool quiet, at_syscall;
static FILE *out;
static GMutex out_lock;
static uint64_t n_samples, n_events;
static bool subscribed;
static qemu_plugin_u64 blocks;   /* per vCPU: blocks since its last sample */

static void put_list(GString *s, const uint64_t *a, uint32_t n)
{
    g_string_append_c(s, '\t');
    for (uint32_t i = 0; i < n; i++) {
        g_string_append_printf(s, "%s%" PRIx64, i ? "," : "", a[i]);
    }
    if (n == 0) {
        g_string_append_c(s, '-');
    }
}

static void on_event(unsigned int vcpu, const callstack_event *ev)
{
    (void)vcpu;
    g_mutex_lock(&out_lock);
    n_events++;
    if (!quiet) {
        fprintf(out, "E\t%s\t%" PRIx64 "\t%" PRIx64 "\t%" PRIu64 "\t%d\n",
                ev->kind == CALLSTACK_EVENT_CALL ? "call" : "ret", ev->func, ev->ret_addr,
                ev->depth, ev->unwound ? 1 : 0);
    }
    g_mutex_unlock(&out_lock);
}

static void sample(unsigned int vcpu, void *udata)
{
    uint64_t pc = (uint64_t)(uintptr_t)udata;
    qemu_plugin_u64_set(blocks, vcpu, 0);
    uint64_t callers[MAX_READ], functions[MAX_READ];
    uint32_t nc = get_callers(callers, MAX_READ, vcpu);
    uint32_t nf = get_functions(functions, MAX_READ, vcpu);
    uint64_t depth = get_stack_depth(vcpu);
    prog_point p;
    get_prog_point(vcpu, &p);
    Panda__CallStack *cs = pandalog_callstack_create();
    GString *s = g_string_new(NULL);
    g_mutex_lock(&out_lock);
    uint64_t n = ++n_samples;
    if (!quiet) {
        g_string_append_printf(s, "S\t%" PRIu64 "\t%" PRIx64 "\t%" PRIu64, n, pc, depth);
        put_list(s, callers, nc);
        put_list(s, functions, nf);
        g_string_append_printf(s, "\t%" PRIx64 "\t%" PRIx64 ":%" PRIx64, p.caller, p.sidFirst,
                               p.sidSecond);
        put_list(s, cs ? cs->addr : NULL, cs ? (uint32_t)cs->n_addr : 0);
        fprintf(out, "%s\n", s->str);
    }
    bool subscribe = after && n == after && !subscribed;
    subscribed |= subscribe;
    g_mutex_unlock(&out_lock);
    g_string_free(s, TRUE);
    pandalog_callstack_free(cs);
    if (subscribe && !PPP_REG_CB("callstack_instr", on_event, on_event)) {
        fprintf(stderr, "querier: cannot subscribe to on_event\n");
        exit(1);
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    uint64_t pc = qemu_plugin_tb_vaddr(tb);
    if (pc >= lo && pc < hi) {
        qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(tb, QEMU_PLUGIN_INLINE_ADD_U64, blocks, 1);
        qemu_plugin_register_vcpu_tb_exec_cond_cb(tb, sample, QEMU_PLUGIN_CB_R_REGS,
                                                  QEMU_PLUGIN_COND_GE, blocks, every,
                                                  (void *)(uintptr_t)pc);
    }
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    (void)id; (void)a1; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
    uint64_t n = qemu_plugin_u64_get(blocks, vcpu) + 1;
    qemu_plugin_u64_set(blocks, vcpu, n);
    if (n >= every) {
        sample(vcpu, (void *)(uintptr_t)num);   /* (the "pc" column: the system call) */
    }
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    g_mutex_lock(&out_lock);
    fprintf(out, "# samples=%" PRIu64 " events=%" PRIu64 "\n", n_samples, n_events);
    fflush(out);
    g_mutex_unlock(&out_lock);
}

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;
    *v = strtoull(s, &end, 0);
    return *s && !*end;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    (void)info;
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        char *dash;
        bool ok;
        if (g_str_has_prefix(a, "out=")) {
            path = a + 4;
            ok = *path != 0;
        } else if (g_str_has_prefix(a, "every=")) {
            ok = parse_u64(a + 6, &every) && every > 0;
        } else if (g_str_has_prefix(a, "after=")) {
            ok = parse_u64(a + 6, &after);
        } else if (g_str_has_prefix(a, "quiet=")) {
            ok = !strcmp(a + 6, "on") || !strcmp(a + 6, "off");
            quiet = !strcmp(a + 6, "on");
        } else if (g_str_has_prefix(a, "at=")) {
            ok = !strcmp(a + 3, "block") || !strcmp(a + 3, "syscall");
            at_syscall = !strcmp(a + 3, "syscall");
        } else if (g_str_has_prefix(a, "only=") && (dash = strchr(a + 5, '-'))) {
            char *lo_s = g_strndup(a + 5, (gsize)(dash - (a + 5)));
            ok = parse_u64(lo_s, &lo) && parse_u64(dash + 1, &hi) && lo < hi;
            g_free(lo_s);
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "querier: bad argument '%s'; accepted: out=PATH, every=N (N > 0), "
                    "only=LO-HI, after=K, quiet=on|off, at=block|syscall\n", a);
            return -1;
        }
    }
    if (!path || !(out = fopen(path, "w"))) {
        fprintf(stderr, "querier: out=PATH is required and must be writable\n");
        return -1;
    }
    if (!init_callstack_instr_api()) {
        fprintf(stderr, "querier: %s (list callstack_instr first)\n", callstack_instr_api_error);
        return -1;
    }
    g_mutex_init(&out_lock);
    blocks = qemu_plugin_scoreboard_u64(qemu_plugin_scoreboard_new(sizeof(uint64_t)));
    if (at_syscall) {
        qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    } else {
        qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    }
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}

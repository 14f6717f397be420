/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_apireader: a consumer that reads OTHER vCPUs' stacks while they
 * change, for the thread-sanitizer runs (scripts/tsan.sh). It binds the
 * public API like any user's plugin and subscribes to on_call and on_ret;
 * on every `every`-th event of a vCPU it reads the stack of another vCPU
 * (the next index up, cycling through every vCPU initialised so far, live
 * or exited) with get_callers, get_functions, get_stack_depth,
 * get_prog_point and pandalog_callstack_create_vcpu.
 *
 *   -plugin libcallstack_instr.so -plugin libtest_apireader.so[,every=N]
 *
 * (after callstack_instr: it binds the API at install). At exit it prints
 * on stderr:
 *   apireader <TAB> reads=N <TAB> nonempty=N <TAB> bad=N
 * nonempty: reads that found frames; bad: reads that contradicted
 * themselves (more callers than the depth, or than asked for).
 */
#define _GNU_SOURCE   /* (callstack_instr_ext.h: dl_iterate_phdr) */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <glib.h>
#include <qemu-plugin.h>
#include "callstack_instr/callstack_instr_ext.h"
#include "callstack.pb-c.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_READ 64

static unsigned every = 16;
static unsigned n_vcpus;            /* highest vCPU index initialised + 1 */
static uint64_t n_reads, n_nonempty, n_bad;
static __thread uint64_t tls_events, tls_turn;

static void read_other(unsigned vcpu)
{
    unsigned n = __atomic_load_n(&n_vcpus, __ATOMIC_RELAXED);
    if (n < 2) {
        return;
    }
    unsigned other = (vcpu + 1 + (unsigned)(tls_turn++ % (n - 1))) % n;
    uint64_t callers[MAX_READ], functions[MAX_READ];
    uint32_t nc = get_callers(callers, MAX_READ, other);
    uint32_t nf = get_functions(functions, MAX_READ, other);
    uint64_t depth = get_stack_depth(other);
    prog_point p;
    get_prog_point(other, &p);
    Panda__CallStack *cs = pandalog_callstack_create_vcpu(other);
    /* The stack may change between the calls: each result on its own must
     * still be whole (at most what was asked for; a CallStack of at most
     * 16 addresses). */
    bool bad = nc > MAX_READ || nf > MAX_READ || !cs || cs->n_addr > 16;
    pandalog_callstack_free(cs);
    __atomic_fetch_add(&n_reads, 1, __ATOMIC_RELAXED);
    if (nc || nf || depth) {
        __atomic_fetch_add(&n_nonempty, 1, __ATOMIC_RELAXED);
    }
    if (bad) {
        __atomic_fetch_add(&n_bad, 1, __ATOMIC_RELAXED);
    }
}

static void on_event(unsigned int vcpu, uint64_t func)
{
    (void)func;
    if (++tls_events % every == 0) {
        read_other(vcpu);
    }
}

static void vcpu_init(qemu_plugin_id_t id, unsigned int vcpu)
{
    (void)id;
    unsigned n = __atomic_load_n(&n_vcpus, __ATOMIC_RELAXED);
    while (vcpu + 1 > n &&
           !__atomic_compare_exchange_n(&n_vcpus, &n, vcpu + 1, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
    }
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    fprintf(stderr, "apireader\treads=%" PRIu64 "\tnonempty=%" PRIu64 "\tbad=%" PRIu64 "\n",
            __atomic_load_n(&n_reads, __ATOMIC_RELAXED), __atomic_load_n(&n_nonempty, __ATOMIC_RELAXED),
            __atomic_load_n(&n_bad, __ATOMIC_RELAXED));
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        char *end;
        if (!g_str_has_prefix(argv[i], "every=") ||
            (every = (unsigned)strtoul(argv[i] + 6, &end, 10)) == 0 || *end) {
            fprintf(stderr, "apireader: bad argument '%s'; accepted: every=N (N > 0)\n", argv[i]);
            return -1;
        }
    }
    if (!init_callstack_instr_api()) {
        fprintf(stderr, "apireader: %s (list callstack_instr first)\n", callstack_instr_api_error);
        return -1;
    }
    if (!PPP_REG_CB("callstack_instr", on_call, on_event) ||
        !PPP_REG_CB("callstack_instr", on_ret, on_event)) {
        fprintf(stderr, "apireader: cannot subscribe to on_call/on_ret\n");
        return -1;
    }
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}

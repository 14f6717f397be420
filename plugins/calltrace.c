/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * calltrace: writes every call and return callstack_instr reports, in one of
 * several formats (plugins/calltrace/fmt_*.c; docs/formats.md). It uses only
 * the public API, bound at run time, as any user's plugin would.
 *
 *   -plugin libcalltrace.so[,format=tsv|uftrace|folded|chrome|pandalog]
 *           [,out=PATH][,names=on|off][,callers_at=ADDR]...[,events=on|off]
 *           [,only=LO-HI]...[,per_stack=on][,until=ADDR]
 *
 * This file: the arguments, the binding, and the callbacks, each handed to
 * the chosen format. until=ADDR stops tracing (lines and counts) at the
 * first call of ADDR, whatever the format.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <qemu-plugin.h>
#include "callstack_instr/callstack_instr_ext.h"
#include "calltrace/calltrace.h"
#include "options/options.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

ct_options ct_opt = { .events = true };
bool ct_system_mode;
static const ct_format *format = &ct_format_tsv;
static bool bound;
static bool stopped;               /* until=ADDR was called */

bool ct_callers_at_given(void)
{
    return ct_opt.callers_at->len;
}

bool ct_callers_at_has(uint64_t func)
{
    for (guint i = 0; i < ct_opt.callers_at->len; i++) {
        if (g_array_index(ct_opt.callers_at, uint64_t, i) == func) {
            return true;
        }
    }
    return false;
}

static void on_event(unsigned int vcpu_index, const callstack_event *ev)
{
    if (__atomic_load_n(&stopped, __ATOMIC_ACQUIRE)) {
        return;
    }
    if (ct_opt.until && ev->kind == CALLSTACK_EVENT_CALL && ev->func == ct_opt.until) {
        __atomic_store_n(&stopped, true, __ATOMIC_RELEASE);
        return;
    }
    format->on_event(vcpu_index, ev);
}

static bool bind_api(void)
{
    if (bound) {
        return true;
    }
    if (!init_callstack_instr_api()) {
        return false;
    }
    ct_callstack.symbolize = callstack_instr_symbolize;
    ct_callstack.callstack_create_vcpu = pandalog_callstack_create_vcpu;
    ct_callstack.callstack_free = pandalog_callstack_free;
    ct_callstack.get_callers = get_callers;
    ct_callstack.get_stack_depth = get_stack_depth;
    /* Without until= nothing stops the trace: events go straight to the
     * format, through callstack_instr's frame words if the format can use
     * them (and no other plugin holds them). */
    if (!ct_opt.until && format->on_frame_call) {
        prog_point p;
        get_prog_point(0, &p);   /* (the stack type, even before any vCPU) */
        bound = ct_stacks_claim(callstack_instr_claim_frames, p.stackKind);
        if (bound) {
            return true;
        }
    }
    bound = ppp_add_cb_on_event(ct_opt.until ? on_event : format->on_event);
    return bound;
}

static void vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id;
    (void)vcpu_index;
    if (!bind_api()) {
        fprintf(stderr, "calltrace: %s\n", callstack_instr_api_error);
        exit(1);
    }
    ct_threads_bind();
}

static void vcpu_exit(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id;
    (void)vcpu_index;
    /* QEMU runs this on the exiting thread (linux-user) */
    format->on_thread_exit();
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    format->on_exit();
}

/*
 * execve replaces the process (in linux-user the new program runs without
 * QEMU), and no exit callback runs: what is buffered would be lost. So just
 * before an execve the format makes its output complete, as at exit. If the
 * execve fails, the process goes on and writes its output again at exit.
 */
typedef struct exec_nrs {
    const char *target;
    int64_t execve, execveat;
} exec_nrs;

static const exec_nrs exec_table[] = {
    { "x86_64", 59, 322 },     { "i386", 11, 358 },     { "aarch64", 221, 281 },
    { "riscv64", 221, 281 },   { "arm", 11, 387 },      { "mips", 4011, 4356 },
    { "mipsel", 4011, 4356 },  { "mips64el", 5057, 5316 }, { "ppc", 11, 362 },
    { "ppc64", 11, 362 },      { "ppc64le", 11, 362 },
};
static const exec_nrs *exec_nr;

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    (void)id; (void)vcpu_index; (void)a1; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6;
    (void)a7; (void)a8;
    if (num == exec_nr->execve || num == exec_nr->execveat) {
        format->on_exec();
    }
}

/* Formats in the order of the format= choices. */
static const ct_format *const formats[] = {
    &ct_format_tsv, &ct_format_uftrace, &ct_format_folded, &ct_format_chrome, &ct_format_pandalog,
};
static const char *const format_names[] = { "tsv", "uftrace", "folded", "chrome", "pandalog", NULL };

static bool parse_args(int argc, char **argv)
{
    int fmt = 0;
    bool names_given = false;
    ct_opt.callers_at = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    ct_opt.only = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    const opt_spec specs[] = {
        { .name = "out", .kind = OPT_STRING, .synopsis = "PATH", .dest = &ct_opt.out },
        { .name = "format", .kind = OPT_CHOICE, .choices = format_names, .dest = &fmt },
        { .name = "names", .kind = OPT_BOOL, .dest = &ct_opt.names, .given = &names_given },
        { .name = "callers_at", .kind = OPT_UINT, .synopsis = "ADDR", .max = UINT64_MAX,
          .accepted = "an address (0x-prefixed hex or decimal)", .repeatable = true,
          .dest = ct_opt.callers_at },
        { .name = "events", .kind = OPT_BOOL, .dest = &ct_opt.events },
        { .name = "only", .kind = OPT_RANGE, .max = UINT64_MAX, .repeatable = true,
          .dest = ct_opt.only },
        { .name = "per_stack", .kind = OPT_BOOL, .dest = &ct_opt.per_stack },
        { .name = "until", .kind = OPT_UINT, .synopsis = "ADDR", .min = 1, .max = UINT64_MAX,
          .accepted = "an address (0x-prefixed hex or decimal), not 0", .dest = &ct_opt.until },
        { 0 },
    };
    G_STATIC_ASSERT(G_N_ELEMENTS(formats) + 1 == G_N_ELEMENTS(format_names));
    if (!opts_parse("calltrace", specs, argc, argv)) {
        return false;
    }
    format = formats[fmt];
    if (format != &ct_format_tsv && names_given) {
        fprintf(stderr, "calltrace: names applies to format=tsv only; format=%s always names "
                "functions\n", format->name);
        return false;
    }
    if (format != &ct_format_tsv && format != &ct_format_pandalog && ct_opt.callers_at->len) {
        fprintf(stderr, "calltrace: callers_at applies to format=tsv and format=pandalog only, "
                "not format=%s\n", format->name);
        return false;
    }
    return true;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    if (!parse_args(argc, argv)) {
        return -1;
    }
    ct_system_mode = info->system_emulation;
    ct_program_path();   /* before the guest can change the directory */
    if (!format->open(ct_opt.out)) {
        return -1;
    }
    if (format->needs_icount) {
        ct_icount_init(id);
    }
    if (format->on_event == ct_stacks_event) {
        ct_stacks_init(format);
    }

    /* If callstack_instr is listed after us it is not loaded yet: bind at
     * the first vCPU's creation, when every plugin is. */
    bind_api();
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
    qemu_plugin_register_vcpu_exit_cb(id, vcpu_exit);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    for (size_t i = 0; !info->system_emulation && i < G_N_ELEMENTS(exec_table); i++) {
        if (strcmp(info->target_name, exec_table[i].target) == 0) {
            exec_nr = &exec_table[i];
            qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
        }
    }
    return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * calltrace: writes every call and return callstack_instr reports, one line
 * each. It uses only the public API, bound at run time, as any user's plugin
 * would.
 *
 *   -plugin libcalltrace.so[,format=tsv|uftrace|folded|chrome|pandalog]
 *           [,out=PATH][,names=on|off][,callers_at=ADDR]...[,events=on|off]
 *           [,only=LO-HI]...[,per_stack=on][,until=ADDR]
 *
 * format=tsv (the default), tab-separated lines (documented in the README):
 *   call|ret  STACKID  DEPTH  FUNC  RETADDR  FLAG  [NAME  MODULE]  (names=on)
 *   callers   STACKID  DEPTH  FUNC  RET1,RET2,...      (callers_at=FUNC)
 *   pandalog  STACKID  RET1,...,RET16   (same point, via pandalog_callstack_create)
 *   # summary ...                                      (at exit, per process)
 *   # stack STACKID calls=N returns=N unwound=N lo=ADDR hi=ADDR digest=HEX
 *                                                      (at exit, per stack, per_stack=on)
 *
 * only=LO-HI (repeatable) writes call/ret lines only for events whose
 * function or return address lies in [LO, HI): a whole-system run makes
 * millions of kernel calls. Summaries still count every event.
 * until=ADDR stops tracing (lines and counts) at the first call of ADDR.
 * The other formats are written by plugins/calltrace/ (docs/formats.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <qemu-plugin.h>
#include "callstack_instr/callstack_instr_ext.h"
#include "callstack.pb-c.h"
#include "calltrace/calltrace.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define OUT_BUF 65536
/* Deeper stacks are listed up to this many callers. */
#define MAX_CALLERS 65536

static int out_fd = -1;
static const char *out_name = "stderr";   /* for error messages */
static bool bound;
static GMutex lock;                /* guards everything below */
static char buf[OUT_BUF];
static size_t buf_len;
static GHashTable *stacks_seen;    /* stack id string -> stack_stat */
static uint64_t n_calls, n_rets, n_unwound, max_depth;
static GArray *callers_at;         /* uint64_t function addresses */
static bool write_events = true;   /* events=off: only callers lines and the summary */
static const ct_format *format;    /* NULL: tsv, written here */
static bool names;                 /* tsv: NAME and MODULE columns */
static GArray *only;               /* uint64_t pairs [lo, hi) */
static bool per_stack;
static uint64_t until;
static bool stopped;               /* until=ADDR was called */
/* A thread's stack statistics are forgotten when it exits (unless
 * per_stack=on lists them at exit), so memory does not grow with the
 * number of threads a program starts; they are counted here. */
static uint64_t n_stacks_gone;
static __thread const char *thread_sid;   /* this thread's key in stacks_seen */

/* Per stack: counts, the range of addresses seen (functions, when known,
 * and return addresses) and a digest of its events in order, so runs can
 * be compared without writing every event. */
typedef struct stack_stat {
    uint64_t calls, rets, unwound, lo, hi, digest;
} stack_stat;

static void stat_event(stack_stat *st, const callstack_event *ev)
{
    if (ev->kind == CALLSTACK_EVENT_CALL) {
        st->calls++;
    } else if (ev->unwound) {
        st->unwound++;
    } else {
        st->rets++;
    }
    uint64_t a[2] = { ev->func ? ev->func : ev->ret_addr, ev->ret_addr };
    for (int i = 0; i < 2; i++) {
        st->lo = MIN(st->lo, a[i]);
        st->hi = MAX(st->hi, a[i]);
    }
    /* FNV-1a over what the event line says, less the stack id. */
    uint64_t v[5] = { ev->kind, ev->unwound, ev->depth, ev->func, ev->ret_addr };
    const unsigned char *p = (const unsigned char *)v;
    for (size_t i = 0; i < sizeof v; i++) {
        st->digest = (st->digest ^ p[i]) * 0x100000001b3ull;
    }
}

static bool wanted(const callstack_event *ev)
{
    if (!only->len) {
        return true;
    }
    for (guint i = 0; i + 1 < only->len; i += 2) {
        uint64_t lo = g_array_index(only, uint64_t, i), hi = g_array_index(only, uint64_t, i + 1);
        if ((ev->func >= lo && ev->func < hi) || (ev->ret_addr >= lo && ev->ret_addr < hi)) {
            return true;
        }
    }
    return false;
}

static void flush_locked(void)
{
    /* Whole lines only, even on a full disk (util.c). */
    ct_append(out_fd, buf, buf_len, ct_cut_lines, out_name);
    buf_len = 0;
}

/* Appends one whole line; lines are never split across write() calls, so
 * processes sharing the file (fork) interleave whole lines only. After a
 * write error nothing more is written (util.c). */
static void emit(const char *line, size_t len)
{
    if (!ct_output_ok()) {
        return;
    }
    g_mutex_lock(&lock);
    if (buf_len + len > sizeof buf) {
        flush_locked();
    }
    if (len > sizeof buf) {
        ct_append(out_fd, line, len, ct_cut_lines, out_name);
    } else {
        memcpy(buf + buf_len, line, len);
        buf_len += len;
    }
    g_mutex_unlock(&lock);
}

static bool wants_callers(uint64_t func)
{
    for (guint i = 0; callers_at && i < callers_at->len; i++) {
        if (g_array_index(callers_at, uint64_t, i) == func) {
            return true;
        }
    }
    return false;
}

bool ct_callers_at_given(void)
{
    return callers_at && callers_at->len;
}

bool ct_callers_at_has(uint64_t func)
{
    return wants_callers(func);
}

static void on_event(unsigned int vcpu_index, const callstack_event *ev)
{
    if (__atomic_load_n(&stopped, __ATOMIC_ACQUIRE)) {
        return;
    }
    if (until && ev->kind == CALLSTACK_EVENT_CALL && ev->func == until) {
        __atomic_store_n(&stopped, true, __ATOMIC_RELEASE);
        return;
    }
    if (format) {
        ct_stacks_event(vcpu_index, ev);
        return;
    }
    char *sid = get_stackid_string(ev->where);
    char line[512];
    int len = snprintf(line, sizeof line, "%s\t%s\t%" PRIu64 "\t0x%" PRIx64 "\t0x%" PRIx64 "\t%s\n",
                       ev->kind == CALLSTACK_EVENT_CALL ? "call" : "ret", sid, ev->depth,
                       ev->func, ev->ret_addr, ev->unwound ? "unwound" : "-");
    if (!write_events || !wanted(ev)) {
        /* events=off, or outside only=: counted below, not written */
    } else if (names) {
        /* Appended after the fixed columns, so readers of six keep working. */
        const ct_sym *sym = ct_sym_of(ev->func);
        g_autofree char *full = g_strdup_printf("%.*s\t%s\t%s\n", len - 1, line, sym->display,
                                                sym->module ? sym->module : "-");
        emit(full, strlen(full));
    } else {
        emit(line, (size_t)len);
    }

    if (ev->kind == CALLSTACK_EVENT_CALL && wants_callers(ev->func)) {
        uint64_t depth = get_stack_depth(vcpu_index);
        uint32_t want = depth < MAX_CALLERS ? (uint32_t)depth : MAX_CALLERS;
        uint64_t *callers = g_new(uint64_t, want ? want : 1);
        uint32_t n = get_callers(callers, want, vcpu_index);
        GString *s = g_string_new(NULL);
        g_string_printf(s, "callers\t%s\t%" PRIu64 "\t0x%" PRIx64 "\t", sid, ev->depth, ev->func);
        for (uint32_t i = 0; i < n; i++) {
            g_string_append_printf(s, "%s0x%" PRIx64, i ? "," : "", callers[i]);
        }
        g_string_append_c(s, '\n');
        g_free(callers);
        emit(s->str, s->len);
        /* The same stack as PANDA's pandalog message (at most 16). */
        Panda__CallStack *cs = pandalog_callstack_create();
        g_string_printf(s, "pandalog\t%s\t", sid);
        for (size_t i = 0; cs && i < cs->n_addr; i++) {
            g_string_append_printf(s, "%s0x%" PRIx64, i ? "," : "", cs->addr[i]);
        }
        g_string_append_c(s, '\n');
        emit(s->str, s->len);
        pandalog_callstack_free(cs);
        g_string_free(s, TRUE);
    }

    g_mutex_lock(&lock);
    if (ev->kind == CALLSTACK_EVENT_CALL) {
        n_calls++;
    } else if (ev->unwound) {
        n_unwound++;
    } else {
        n_rets++;
    }
    if (ev->depth > max_depth) {
        max_depth = ev->depth;
    }
    stack_stat *st = g_hash_table_lookup(stacks_seen, sid);
    if (!st) {
        st = g_new0(stack_stat, 1);
        st->lo = UINT64_MAX;
        st->digest = 0xcbf29ce484222325ull;
        g_hash_table_insert(stacks_seen, sid, st);
        if (ev->where.stackKind == STACK_THREADED) {
            thread_sid = sid;
        }
        sid = NULL;
    }
    stat_event(st, ev);
    g_mutex_unlock(&lock);
    g_free(sid);
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
    bound = ppp_add_cb_on_event(on_event);
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
}

static void vcpu_exit(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id;
    (void)vcpu_index;
    /* QEMU runs this on the exiting thread (linux-user) */
    if (format) {
        ct_stacks_thread_exit();
    } else if (thread_sid) {
        g_mutex_lock(&lock);
        if (!per_stack && g_hash_table_remove(stacks_seen, thread_sid)) {
            n_stacks_gone++;
        }
        g_mutex_unlock(&lock);
        thread_sid = NULL;
    }
}

/* Appends to the buffer with the lock held; a line never exceeds it. */
static void append_locked(const char *line, size_t len)
{
    if (buf_len + len > sizeof buf) {
        flush_locked();
    }
    memcpy(buf + buf_len, line, MIN(len, sizeof buf));
    buf_len += MIN(len, sizeof buf);
}

/* The per-stack lines and the summary, then everything out. */
static void write_summary_locked(void)
{
    char line[256];
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, stacks_seen);
    while (per_stack && g_hash_table_iter_next(&it, &key, &value)) {
        const stack_stat *st = value;
        g_autofree char *l = g_strdup_printf(
            "# stack\t%s\tcalls=%" PRIu64 "\treturns=%" PRIu64 "\tunwound=%" PRIu64 "\tlo=0x%"
            PRIx64 "\thi=0x%" PRIx64 "\tdigest=%016" PRIx64 "\n", (const char *)key, st->calls,
            st->rets, st->unwound, st->lo, st->hi, st->digest);
        append_locked(l, strlen(l));
    }
    int len = snprintf(line, sizeof line,
                       "# summary\tprocess=%d\tcalls=%" PRIu64 "\treturns=%" PRIu64
                       "\tunwound=%" PRIu64 "\tstacks=%u\tmax_depth=%" PRIu64 "\n",
                       (int)getpid(), n_calls, n_rets, n_unwound,
                       (unsigned)(n_stacks_gone + g_hash_table_size(stacks_seen)), max_depth);
    append_locked(line, (size_t)len);
    flush_locked();
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    if (format) {
        ct_stacks_at_exit();
        return;
    }
    g_mutex_lock(&lock);
    write_summary_locked();
    g_mutex_unlock(&lock);
}

/*
 * execve replaces the process (in linux-user the new program runs without
 * QEMU), and no exit callback runs: what is buffered would be lost. So just
 * before an execve the output is made complete, as at exit. If the execve
 * fails, the process goes on and writes its output again at exit (tsv: a
 * second summary line for the process, the later one counting everything).
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
    if (num != exec_nr->execve && num != exec_nr->execveat) {
        return;
    }
    if (format) {
        ct_stacks_before_exec();
        return;
    }
    g_mutex_lock(&lock);
    write_summary_locked();
    g_mutex_unlock(&lock);
}

/* Buffered lines must not be written twice, by parent and child. */
static void before_fork(void)
{
    g_mutex_lock(&lock);
    flush_locked();
}

static void after_fork_parent(void)
{
    g_mutex_unlock(&lock);
}

static void after_fork_child(void)
{
    g_mutex_init(&lock);
    n_calls = n_rets = n_unwound = max_depth = n_stacks_gone = 0;
    g_hash_table_remove_all(stacks_seen);
    thread_sid = NULL;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *out = NULL;
    bool names_given = false;
    callers_at = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    only = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (int i = 0; i < argc; i++) {
        if (g_str_has_prefix(argv[i], "out=")) {
            out = argv[i] + 4;
        } else if (g_str_has_prefix(argv[i], "events=")) {
            if (!qemu_plugin_bool_parse("events", argv[i] + 7, &write_events)) {
                fprintf(stderr, "calltrace: bad value '%s' for events; accepted: on, off\n",
                        argv[i] + 7);
                return -1;
            }
        } else if (g_str_has_prefix(argv[i], "format=")) {
            const char *v = argv[i] + 7;
            static const ct_format *const formats[] = {
                &ct_format_uftrace, &ct_format_folded, &ct_format_chrome, &ct_format_pandalog,
            };
            format = NULL;
            bool known = strcmp(v, "tsv") == 0;
            for (size_t k = 0; k < G_N_ELEMENTS(formats); k++) {
                if (strcmp(v, formats[k]->name) == 0) {
                    format = formats[k];
                    known = true;
                }
            }
            if (!known) {
                fprintf(stderr, "calltrace: bad value '%s' for format; accepted: tsv, uftrace, "
                        "folded, chrome, pandalog\n", v);
                return -1;
            }
        } else if (g_str_has_prefix(argv[i], "names=")) {
            if (!qemu_plugin_bool_parse("names", argv[i] + 6, &names)) {
                fprintf(stderr, "calltrace: bad value '%s' for names; accepted: on, off, true, "
                        "false\n", argv[i] + 6);
                return -1;
            }
            names_given = true;
        } else if (g_str_has_prefix(argv[i], "callers_at=")) {
            const char *v = argv[i] + 11;
            char *end;
            errno = 0;
            uint64_t a = g_ascii_strtoull(v, &end, 0);
            if (errno || end == v || *end) {
                fprintf(stderr, "calltrace: bad value '%s' for callers_at; accepted: an address "
                        "(0x-prefixed hex or decimal)\n", v);
                return -1;
            }
            g_array_append_val(callers_at, a);
        } else if (g_str_has_prefix(argv[i], "until=")) {
            const char *v = argv[i] + 6;
            char *end;
            errno = 0;
            until = g_ascii_strtoull(v, &end, 0);
            if (errno || end == v || *end || !until) {
                fprintf(stderr, "calltrace: bad value '%s' for until; accepted: an address "
                        "(0x-prefixed hex or decimal)\n", v);
                return -1;
            }
        } else if (g_str_has_prefix(argv[i], "only=")) {
            const char *v = argv[i] + 5;
            char *end, *end2 = NULL;
            errno = 0;
            uint64_t lo = g_ascii_strtoull(v, &end, 0), hi = 0;
            if (!errno && end != v && *end == '-') {
                hi = g_ascii_strtoull(end + 1, &end2, 0);
            }
            if (errno || !end2 || end2 == end + 1 || *end2 || hi <= lo) {
                fprintf(stderr, "calltrace: bad value '%s' for only; accepted: LO-HI, two "
                        "addresses (0x-prefixed hex or decimal) with LO < HI\n", v);
                return -1;
            }
            g_array_append_val(only, lo);
            g_array_append_val(only, hi);
        } else if (g_str_has_prefix(argv[i], "per_stack=")) {
            if (!qemu_plugin_bool_parse("per_stack", argv[i] + 10, &per_stack)) {
                fprintf(stderr, "calltrace: bad value '%s' for per_stack; accepted: on, off\n",
                        argv[i] + 10);
                return -1;
            }
        } else {
            fprintf(stderr, "calltrace: unknown argument '%s'; accepted arguments: out=PATH, "
                    "format=tsv|uftrace|folded|chrome|pandalog, names=on|off, callers_at=ADDR, "
                    "events=on|off, only=LO-HI, per_stack=on|off, until=ADDR\n", argv[i]);
            return -1;
        }
    }
    if (format && names_given) {
        fprintf(stderr, "calltrace: names applies to format=tsv only; format=%s always names "
                "functions\n", format->name);
        return -1;
    }
    if (format && format != &ct_format_pandalog && callers_at->len) {
        fprintf(stderr, "calltrace: callers_at applies to format=tsv and format=pandalog only, "
                "not format=%s\n", format->name);
        return -1;
    }
    if (format) {
        ct_program_path();   /* before the guest can change the directory */
        if (!format->open(out)) {
            return -1;
        }
        if (format->needs_icount) {
            ct_icount_init(id);
        }
        ct_stacks_init(format);
    } else if (out && *out) {
        out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
        if (out_fd < 0) {
            fprintf(stderr, "calltrace: cannot open '%s': %s\n", out, strerror(errno));
            return -1;
        }
        out_name = g_strdup_printf("'%s'", out);
    } else {
        out_fd = dup(STDERR_FILENO);
    }
    g_mutex_init(&lock);
    stacks_seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);

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

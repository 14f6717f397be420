/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * format=tsv, calltrace's default: one tab-separated line per event, as it
 * comes (documented in the README):
 *
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
 *
 * Unlike the other formats it needs no copy of the stacks: each line says
 * everything about its event, so events go straight to the writer (the
 * format's on_event), not through stacks.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "callstack.pb-c.h"
#include "calltrace.h"

#define OUT_BUF 65536
/* Deeper stacks are listed up to this many callers. */
#define MAX_CALLERS 65536

static int out_fd = -1;
static const char *out_name = "stderr";   /* for error messages */
static GMutex lock;                /* guards everything below */
static char buf[OUT_BUF];
static size_t buf_len;
static GHashTable *stacks_seen;    /* stack id string -> stack_stat */
static uint64_t n_calls, n_rets, n_unwound, max_depth;
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
    const GArray *only = ct_opt.only;
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

static void t_event(unsigned int vcpu_index, const callstack_event *ev)
{
    char *sid = get_stackid_string(ev->where);
    char line[512];
    int len = snprintf(line, sizeof line, "%s\t%s\t%" PRIu64 "\t0x%" PRIx64 "\t0x%" PRIx64 "\t%s\n",
                       ev->kind == CALLSTACK_EVENT_CALL ? "call" : "ret", sid, ev->depth,
                       ev->func, ev->ret_addr, ev->unwound ? "unwound" : "-");
    if (!ct_opt.events || !wanted(ev)) {
        /* events=off, or outside only=: counted below, not written */
    } else if (ct_opt.names) {
        /* Appended after the fixed columns, so readers of six keep working. */
        const ct_sym *sym = ct_sym_of(ev->func);
        g_autofree char *full = g_strdup_printf("%.*s\t%s\t%s\n", len - 1, line, sym->display,
                                                sym->module ? sym->module : "-");
        emit(full, strlen(full));
    } else {
        emit(line, (size_t)len);
    }

    if (ev->kind == CALLSTACK_EVENT_CALL && ct_callers_at_has(ev->func)) {
        uint64_t depth = ct_callstack.get_stack_depth(vcpu_index);
        uint32_t want = depth < MAX_CALLERS ? (uint32_t)depth : MAX_CALLERS;
        uint64_t *callers = g_new(uint64_t, want ? want : 1);
        uint32_t n = ct_callstack.get_callers(callers, want, vcpu_index);
        GString *s = g_string_new(NULL);
        g_string_printf(s, "callers\t%s\t%" PRIu64 "\t0x%" PRIx64 "\t", sid, ev->depth, ev->func);
        for (uint32_t i = 0; i < n; i++) {
            g_string_append_printf(s, "%s0x%" PRIx64, i ? "," : "", callers[i]);
        }
        g_string_append_c(s, '\n');
        g_free(callers);
        emit(s->str, s->len);
        /* The same stack as PANDA's pandalog message (at most 16). */
        Panda__CallStack *cs = ct_callstack.callstack_create_vcpu(vcpu_index);
        g_string_printf(s, "pandalog\t%s\t", sid);
        for (size_t i = 0; cs && i < cs->n_addr; i++) {
            g_string_append_printf(s, "%s0x%" PRIx64, i ? "," : "", cs->addr[i]);
        }
        g_string_append_c(s, '\n');
        emit(s->str, s->len);
        ct_callstack.callstack_free(cs);
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

/* QEMU runs this on the exiting thread (linux-user). */
static void t_thread_exit(void)
{
    if (thread_sid) {
        g_mutex_lock(&lock);
        if (!ct_opt.per_stack && g_hash_table_remove(stacks_seen, thread_sid)) {
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
    while (ct_opt.per_stack && g_hash_table_iter_next(&it, &key, &value)) {
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

static void t_exit(void)
{
    g_mutex_lock(&lock);
    write_summary_locked();
    g_mutex_unlock(&lock);
}

/* execve: the output made complete as at exit. If the execve fails the
 * process goes on and writes its summary again at exit, the later one
 * counting everything. */
static void t_exec(void)
{
    t_exit();
}

/* Buffered lines must not be written twice, by parent and child. */
static void t_before_fork(void)
{
    g_mutex_lock(&lock);
    flush_locked();
}

static void t_after_fork_parent(void)
{
    g_mutex_unlock(&lock);
}

static void t_after_fork_child(void)
{
    g_mutex_init(&lock);
    n_calls = n_rets = n_unwound = max_depth = n_stacks_gone = 0;
    g_hash_table_remove_all(stacks_seen);
    thread_sid = NULL;
}

static bool t_open(const char *out)
{
    out_fd = ct_open_append(out, &out_name);
    if (out_fd < 0) {
        return false;
    }
    g_mutex_init(&lock);
    stacks_seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    pthread_atfork(t_before_fork, t_after_fork_parent, t_after_fork_child);
    return true;
}

const ct_format ct_format_tsv = {
    .name = "tsv",
    .open = t_open,
    .on_event = t_event,
    .on_thread_exit = t_thread_exit,
    .on_exec = t_exec,
    .on_exit = t_exit,
};

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * format=tsv, calltrace's default: one tab-separated line per event, as it
 * comes (documented in the README):
 *
 *   call|ret  STACKID  DEPTH  FUNC  RETADDR  FLAG  [NAME  MODULE]  (names=on)
 *   callers   STACKID  DEPTH  FUNC  RET1,RET2,...      (callers_at=FUNC)
 *   pandalog  STACKID  RET1,...,RET16   (same point, via pandalog_callstack_create)
 *   # summary ...                                      (at exit, per process)
 *   # stack STACKID calls=N returns=N unwound=N lo=ADDR hi=ADDR digest=HEX [comm=NAME]
 *                                                      (at exit, per stack, per_stack=on;
 *                                                       comm: whole-system threaded stacks,
 *                                                       the thread's name when last entered)
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
/* Room a call/ret line takes without its names. */
#define LINE_MAX_FIXED 256
/* Deeper stacks are listed up to this many callers. */
#define MAX_CALLERS 65536

static int out_fd = -1;
static const char *out_name = "stderr";   /* for error messages */
static GMutex lock;                /* guards everything below but `out` */
static GHashTable *stacks_seen;    /* stack id string -> stack_stat */
static GPtrArray *threads;         /* out * of live threads */
/* Events of threads gone (and before an execve, nothing else). */
static uint64_t gone_calls, gone_rets, gone_unwound, gone_max_depth;
/* A thread's stack statistics are forgotten when it exits (unless
 * per_stack=on lists them at exit), so memory does not grow with the
 * number of threads a program starts; they are counted here. */
static uint64_t n_stacks_gone;

/* Per stack: counts, the range of addresses seen (functions, when known,
 * and return addresses) and a digest of its events in order, so runs can
 * be compared without writing every event. Kept with per_stack=on only. */
typedef struct stack_stat {
    uint64_t calls, rets, unwound, lo, hi, digest;
    char comm[CT_COMM_SIZE];   /* whole-system threaded: the thread's name, once known */
} stack_stat;

/*
 * A thread's writer: its own buffer of whole lines, written when full, at
 * the thread's exit, before a fork and at exit, so events take no lock.
 * Its counts are written only by the thread (relaxed atomic stores, plain
 * moves) and read by whoever writes the summary. The stack of its last
 * event and that stack's id string are kept, so the string is made once.
 */
typedef struct out {
    uint64_t calls, rets, unwound, max_depth;
    /* the last stack: its id, its id string, its statistics */
    uint64_t first, second;
    stack_type kind;
    bool kernel, shared;
    char *sid;
    size_t sid_len;
    stack_stat *st;
    const char *threaded_sid;   /* this thread's key in stacks_seen */
    size_t len;
    char buf[OUT_BUF];
} out;

static __thread out *self __attribute__((tls_model("initial-exec")));
/* The lines of stacks that several threads (or vCPUs) share, under the
 * lock: one buffer keeps each stack's events in order. */
static out *shared_lines;

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

/* Whole lines only, even on a full disk (util.c); lines are never split
 * across write() calls, so threads and processes sharing the file (fork)
 * interleave whole lines only. After a write error nothing more is
 * written. */
static void flush_out(out *o)
{
    if (o->len) {
        ct_append(out_fd, o->buf, o->len, ct_cut_lines, out_name);
        o->len = 0;
    }
}

/* Appends whole lines to the thread's buffer. */
static void emit(out *o, const char *line, size_t len)
{
    if (!ct_output_ok()) {
        return;
    }
    if (o->len + len > sizeof o->buf) {
        flush_out(o);
    }
    if (len > sizeof o->buf) {
        ct_append(out_fd, line, len, ct_cut_lines, out_name);
    } else {
        memcpy(o->buf + o->len, line, len);
        o->len += len;
    }
}

static out *out_new(void)
{
    out *o = g_new0(out, 1);
    g_mutex_lock(&lock);
    g_ptr_array_add(threads, o);
    g_mutex_unlock(&lock);
    return o;
}

/* The event's stack became this thread's current one: its id string and
 * statistics, found under the lock. */
static __attribute__((noinline)) void switch_stack(out *o, unsigned vcpu, const callstack_event *ev)
{
    g_free(o->sid);
    o->first = ev->where.sidFirst;
    o->second = ev->where.sidSecond;
    o->kind = ev->where.stackKind;
    o->kernel = ev->where.isKernelMode;
    /* Stacks other threads (or vCPUs) may share: statistics under the lock. */
    o->shared = ct_system_mode || o->kind != STACK_THREADED;
    o->sid = get_stackid_string(ev->where);
    o->sid_len = strlen(o->sid);
    g_mutex_lock(&lock);
    stack_stat *st = g_hash_table_lookup(stacks_seen, o->sid);
    if (!st) {
        st = g_new0(stack_stat, 1);
        st->lo = UINT64_MAX;
        st->digest = 0xcbf29ce484222325ull;
        char *key = g_strdup(o->sid);
        g_hash_table_insert(stacks_seen, key, st);
        if (ev->where.stackKind == STACK_THREADED) {
            o->threaded_sid = key;
        }
    }
    if (ct_opt.per_stack && ct_system_mode) {
        /* The thread's latest name (an execve renames it): read at each
         * entry to the stack, not per event. */
        char comm[CT_COMM_SIZE];
        if (ct_thread_comm(vcpu, &ev->where, comm)) {
            memcpy(st->comm, comm, sizeof comm);
        }
    }
    o->st = st;
    g_mutex_unlock(&lock);
}

static inline char *put_str(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static inline char *put_hex(char *p, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    *p++ = '0';
    *p++ = 'x';
    while (n) {
        *p++ = tmp[--n];
    }
    return p;
}

/* The event's line, into buffer o; `id` holds the stack id string. */
static void write_line(out *o, const out *id, const callstack_event *ev)
{
    const ct_sym *sym = ct_opt.names ? ct_sym_of(ev->func) : NULL;
    size_t extra = sym ? strlen(sym->display) + (sym->module ? strlen(sym->module) : 1) + 2 : 0;
    size_t need = LINE_MAX_FIXED + id->sid_len + extra;
    char *line = NULL;
    if (need > sizeof o->buf) {
        line = g_malloc(need);      /* (a name longer than the buffer) */
    } else {
        if (o->len + need > sizeof o->buf) {
            flush_out(o);
        }
        if (!ct_output_ok()) {
            return;
        }
    }
    char *start = line ? line : o->buf + o->len, *p = start;
    bool call = ev->kind == CALLSTACK_EVENT_CALL;
    p = call ? put_str(p, "call\t", 5) : put_str(p, "ret\t", 4);
    p = put_str(p, id->sid, id->sid_len);
    *p++ = '\t';
    p = ct_put_dec(p, ev->depth);
    *p++ = '\t';
    p = put_hex(p, ev->func);
    *p++ = '\t';
    p = put_hex(p, ev->ret_addr);
    p = ev->unwound ? put_str(p, "\tunwound", 8) : put_str(p, "\t-", 2);
    if (sym) {
        /* Appended after the fixed columns, so readers of six keep working. */
        *p++ = '\t';
        p = put_str(p, sym->display, strlen(sym->display));
        *p++ = '\t';
        p = sym->module ? put_str(p, sym->module, strlen(sym->module)) : put_str(p, "-", 1);
    }
    *p++ = '\n';
    if (line) {
        emit(o, line, (size_t)(p - line));
        g_free(line);
    } else {
        o->len += (size_t)(p - start);
    }
}

/* callers_at=FUNC: the stack, as get_callers and as pandalog_callstack_create. */
static void write_callers(out *o, const out *id, unsigned int vcpu_index,
                          const callstack_event *ev)
{
    uint64_t depth = ct_callstack.get_stack_depth(vcpu_index);
    uint32_t want = depth < MAX_CALLERS ? (uint32_t)depth : MAX_CALLERS;
    uint64_t *callers = g_new(uint64_t, want ? want : 1);
    uint32_t n = ct_callstack.get_callers(callers, want, vcpu_index);
    GString *s = g_string_new(NULL);
    g_string_printf(s, "callers\t%s\t%" PRIu64 "\t0x%" PRIx64 "\t", id->sid, ev->depth, ev->func);
    for (uint32_t i = 0; i < n; i++) {
        g_string_append_printf(s, "%s0x%" PRIx64, i ? "," : "", callers[i]);
    }
    g_string_append_c(s, '\n');
    g_free(callers);
    emit(o, s->str, s->len);
    /* The same stack as PANDA's pandalog message (at most 16). */
    Panda__CallStack *cs = ct_callstack.callstack_create_vcpu(vcpu_index);
    g_string_printf(s, "pandalog\t%s\t", id->sid);
    for (size_t i = 0; cs && i < cs->n_addr; i++) {
        g_string_append_printf(s, "%s0x%" PRIx64, i ? "," : "", cs->addr[i]);
    }
    g_string_append_c(s, '\n');
    emit(o, s->str, s->len);
    ct_callstack.callstack_free(cs);
    g_string_free(s, TRUE);
}

#define BUMP(field) __atomic_store_n(&(field), (field) + 1, __ATOMIC_RELAXED)

static void t_event(unsigned int vcpu_index, const callstack_event *ev)
{
    out *o = self;
    if (__builtin_expect(!o, 0)) {
        o = self = out_new();
    }
    if (__builtin_expect(o->first != ev->where.sidFirst || o->second != ev->where.sidSecond ||
                         o->kind != ev->where.stackKind || o->kernel != ev->where.isKernelMode ||
                         !o->sid, 0)) {
        switch_stack(o, vcpu_index, ev);
    }
    bool line = ct_opt.events && wanted(ev);
    /* (events=off, or outside only=: counted below, not written) */
    bool callers = ev->kind == CALLSTACK_EVENT_CALL && ct_callers_at_has(ev->func);
    if ((line || callers) && o->shared) {
        g_mutex_lock(&lock);
        if (line) {
            write_line(shared_lines, o, ev);
        }
        if (callers) {
            write_callers(shared_lines, o, vcpu_index, ev);
        }
        g_mutex_unlock(&lock);
    } else {
        if (line) {
            write_line(o, o, ev);
        }
        if (callers) {
            write_callers(o, o, vcpu_index, ev);
        }
    }

    if (ev->kind == CALLSTACK_EVENT_CALL) {
        BUMP(o->calls);
    } else if (ev->unwound) {
        BUMP(o->unwound);
    } else {
        BUMP(o->rets);
    }
    if (ev->depth > o->max_depth) {
        __atomic_store_n(&o->max_depth, ev->depth, __ATOMIC_RELAXED);
    }
    if (ct_opt.per_stack) {
        if (o->shared) {
            g_mutex_lock(&lock);
            stat_event(o->st, ev);
            g_mutex_unlock(&lock);
        } else {
            stat_event(o->st, ev);
        }
    }
}

/* A thread's counts go to the totals of threads gone. Under the lock. */
static void fold_out_locked(out *o)
{
    gone_calls += o->calls;
    gone_rets += o->rets;
    gone_unwound += o->unwound;
    gone_max_depth = MAX(gone_max_depth, o->max_depth);
}

/* QEMU runs this on the exiting thread (linux-user). */
static void t_thread_exit(void)
{
    out *o = self;
    if (!o) {
        return;
    }
    flush_out(o);
    g_mutex_lock(&lock);
    if (o->threaded_sid && !ct_opt.per_stack &&
        g_hash_table_remove(stacks_seen, o->threaded_sid)) {
        n_stacks_gone++;
    }
    fold_out_locked(o);
    g_ptr_array_remove_fast(threads, o);
    g_mutex_unlock(&lock);
    g_free(o->sid);
    g_free(o);
    self = NULL;
}

/* Appends to fd through a scratch buffer; a line never exceeds it. */
static void append_line(out *o, const char *line, size_t len)
{
    emit(o, line, MIN(len, sizeof o->buf));
}

/* The per-stack lines and the summary, then everything out. Under the
 * lock. */
static void write_summary_locked(void)
{
    char line[256];
    out *o = g_new0(out, 1);
    uint64_t calls = gone_calls, rets = gone_rets, unwound = gone_unwound, depth = gone_max_depth;
    for (guint i = 0; i < threads->len; i++) {
        const out *t = g_ptr_array_index(threads, i);
        calls += __atomic_load_n(&t->calls, __ATOMIC_RELAXED);
        rets += __atomic_load_n(&t->rets, __ATOMIC_RELAXED);
        unwound += __atomic_load_n(&t->unwound, __ATOMIC_RELAXED);
        depth = MAX(depth, __atomic_load_n(&t->max_depth, __ATOMIC_RELAXED));
    }
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, stacks_seen);
    while (ct_opt.per_stack && g_hash_table_iter_next(&it, &key, &value)) {
        const stack_stat *st = value;
        g_autofree char *l = g_strdup_printf(
            "# stack\t%s\tcalls=%" PRIu64 "\treturns=%" PRIu64 "\tunwound=%" PRIu64 "\tlo=0x%"
            PRIx64 "\thi=0x%" PRIx64 "\tdigest=%016" PRIx64 "%s%s\n", (const char *)key, st->calls,
            st->rets, st->unwound, st->lo, st->hi, st->digest, st->comm[0] ? "\tcomm=" : "",
            st->comm);
        append_line(o, l, strlen(l));
    }
    int len = snprintf(line, sizeof line,
                       "# summary\tprocess=%d\tcalls=%" PRIu64 "\treturns=%" PRIu64
                       "\tunwound=%" PRIu64 "\tstacks=%u\tmax_depth=%" PRIu64 "\n",
                       (int)getpid(), calls, rets, unwound,
                       (unsigned)(n_stacks_gone + g_hash_table_size(stacks_seen)), depth);
    append_line(o, line, (size_t)len);
    flush_out(o);
    g_free(o);
}

/* QEMU stops every other vCPU before the exit callbacks: every thread's
 * buffer can be written. */
static void t_exit(void)
{
    g_mutex_lock(&lock);
    for (guint i = 0; i < threads->len; i++) {
        flush_out(g_ptr_array_index(threads, i));
    }
    flush_out(shared_lines);
    write_summary_locked();
    g_mutex_unlock(&lock);
}

/* execve: the calling thread's lines and the summary, as at exit. Other
 * threads may still be running until the execve succeeds (which ends them):
 * their buffered lines are written only if it fails, at exit. The summary
 * counts everything so far; if the execve fails the process writes its
 * summary again at exit, the later one counting everything. */
static void t_exec(void)
{
    if (self) {
        flush_out(self);
    }
    g_mutex_lock(&lock);
    flush_out(shared_lines);
    write_summary_locked();
    g_mutex_unlock(&lock);
}

/* Buffered lines must not be written twice, by parent and child: the
 * forking thread's are written now, other threads' stay with the parent
 * and are dropped in the child. */
static void t_before_fork(void)
{
    if (self) {
        flush_out(self);
    }
    g_mutex_lock(&lock);
    flush_out(shared_lines);
}

static void t_after_fork_parent(void)
{
    g_mutex_unlock(&lock);
}

static void t_after_fork_child(void)
{
    g_mutex_init(&lock);
    for (guint i = 0; i < threads->len; i++) {
        out *o = g_ptr_array_index(threads, i);
        if (o != self) {
            g_free(o->sid);
            g_free(o);
        }
    }
    g_ptr_array_set_size(threads, 0);
    if (self) {
        out *o = self;
        g_ptr_array_add(threads, o);
        o->calls = o->rets = o->unwound = o->max_depth = 0;
        o->len = 0;
        o->st = NULL;
        o->threaded_sid = NULL;
        g_free(o->sid);
        o->sid = NULL;   /* the stack id changes: found again at the next event */
    }
    gone_calls = gone_rets = gone_unwound = gone_max_depth = n_stacks_gone = 0;
    g_hash_table_remove_all(stacks_seen);
}

static bool t_open(const char *out)
{
    out_fd = ct_open_append(out, &out_name);
    if (out_fd < 0) {
        return false;
    }
    g_mutex_init(&lock);
    stacks_seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    threads = g_ptr_array_new();
    shared_lines = g_malloc0(sizeof *shared_lines);
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

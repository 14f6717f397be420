/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest stacks as calltrace's structured formats see them: per stack
 * id, the frames (function, return address) rebuilt from the events'
 * depths, and the task (pid, tid) the stack belongs to.
 *
 * Each thread remembers the stack of its last event, and an event on that
 * stack needs no lookup. A threaded stack in user mode is changed only by
 * its own thread: for a format that allows it (ct_format.lockfree) its
 * events take no lock at all. Everything else (finding or creating a
 * stack, stacks that threads or vCPUs share, the formats' other hooks) is
 * done under one lock, which also orders a shared stack's timestamps.
 *
 * fork(): the child's forking thread continues on a copy of its parent's
 * stack under a new stack id (callstack_instr's rule). The child keeps that
 * thread's frames to seed the new stack, and forgets the parent's other
 * stacks without writing anything for them (the parent does).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include "calltrace.h"

/* A stack id: its numbers, and its kind and privilege (whole-system
 * threaded stacks: a thread's user and kernel stacks share the numbers). */
typedef struct stack_key {
    uint64_t first, second;
    uint32_t tag;
} stack_key;

static inline uint32_t tag_of(stack_type kind, bool kernel)
{
    return (uint32_t)kind << 1 | (kernel ? 1u : 0u);
}

static inline bool same_stack(const ct_stack *s, const prog_point *p)
{
    return s->first == p->sidFirst && s->second == p->sidSecond &&
           s->tag == tag_of(p->stackKind, p->isKernelMode);
}

static const ct_format *fmt;
static GMutex lock;
static GHashTable *stacks;            /* stack_key -> ct_stack */
/* The stack of this thread's last event (initial-exec: one load, no call). */
static __thread ct_stack *current __attribute__((tls_model("initial-exec")));
static ct_stack *inherit;             /* fork child: the forking thread's stack */

static guint key_hash(gconstpointer p)
{
    const stack_key *k = p;
    return g_int64_hash(&k->first) ^ (g_int64_hash(&k->second) * 31u) ^ (k->tag * 0x9e3779b9u);
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
    const stack_key *x = a, *y = b;
    return x->first == y->first && x->second == y->second && x->tag == y->tag;
}

static void stack_free(ct_stack *s)
{
    g_free(s->frames);
    g_free(s);
}

void ct_frames_reserve(ct_stack *s, uint32_t n)
{
    if (n > s->cap_frames) {
        uint32_t cap = MAX(s->cap_frames * 2, MAX(n, 64u));
        s->frames = g_renew(ct_frame, s->frames, cap);
        s->cap_frames = cap;
    }
}

static ct_stack *stack_new(const prog_point *p, uint64_t ts, unsigned vcpu)
{
    ct_stack *s = g_new0(ct_stack, 1);
    s->first = p->sidFirst;
    s->second = p->sidSecond;
    s->kind = p->stackKind;
    s->kernel = p->isKernelMode;
    s->tag = tag_of(p->stackKind, p->isKernelMode);
    s->comm_known = ct_thread_comm(vcpu, p, s->comm);
    s->lockfree = fmt->lockfree && !ct_system_mode && p->stackKind == STACK_THREADED;
    s->own_lock = fmt->lockfree && ct_system_mode;
    s->pid = (int)p->sidFirst;
    s->tid = p->stackKind == STACK_THREADED ? (int)p->sidSecond : (int)p->sidFirst;
    if (ct_system_mode && p->stackKind != STACK_THREADED) {
        /* No guest thread: an address space, a kernel stack region. Each
         * is a task of its own to the formats, numbered above any Linux
         * pid (PID_MAX_LIMIT is 2^22). */
        static int next_task = CT_FIRST_SYNTHETIC_TID;
        s->pid = s->tid = next_task++;
    }
    bool inherited = false;
    if (inherit && inherit == current) {
        /* The forking thread's first event in the child. */
        ct_frames_reserve(s, inherit->n_frames);
        if (inherit->n_frames) {
            memcpy(s->frames, inherit->frames, inherit->n_frames * sizeof(ct_frame));
        }
        s->n_frames = inherit->n_frames;
        if (fmt->stack_inherit) {
            fmt->stack_inherit(s, inherit);
        }
        fmt->stack_discard(inherit);
        stack_free(inherit);
        inherit = NULL;
        inherited = true;
    }
    stack_key *k = g_new(stack_key, 1);
    k->first = s->first;
    k->second = s->second;
    k->tag = s->tag;
    g_hash_table_insert(stacks, k, s);
    fmt->stack_begin(s, ts, inherited);
    return s;
}

/* The event on s: the frames follow its depth, the format writes it. */
static inline void stack_event(ct_stack *s, unsigned vcpu, const callstack_event *ev, uint64_t ts)
{
    if (ev->kind == CALLSTACK_EVENT_CALL) {
        /* (a frame between that calltrace never saw entered cannot be
         * named) */
        ct_mirror_push(s, ev->depth, ev->func, ev->ret_addr);
        fmt->event(s, ev, vcpu, ts);
    } else {
        fmt->event(s, ev, vcpu, ts);
        ct_mirror_pop(s, ev->depth);
    }
}

/* The stack of an event (s: the thread's last), found or made; under the
 * lock. */
static ct_stack *find_stack(ct_stack *s, unsigned vcpu, const callstack_event *ev)
{
    stack_key k = { ev->where.sidFirst, ev->where.sidSecond,
                    tag_of(ev->where.stackKind, ev->where.isKernelMode) };
    if (!s || !same_stack(s, &ev->where)) {
        s = g_hash_table_lookup(stacks, &k);
    }
    if (!s) {
        s = stack_new(&ev->where, ct_now_ns(), vcpu);
    } else if (ct_system_mode && s != current && s->kind == STACK_THREADED) {
        /* The thread's name, again at each entry to its stack: unknown at
         * the first event in the middle of a context switch, changed by an
         * execve. */
        char comm[CT_COMM_SIZE];
        if (ct_thread_comm(vcpu, &ev->where, comm) &&
            (!s->comm_known || strcmp(comm, s->comm) != 0)) {
            memcpy(s->comm, comm, sizeof comm);
            s->comm_known = true;
            if (fmt->stack_named) {
                fmt->stack_named(s);
            }
        }
    }
    current = s;
    return s;
}

/*
 * Whole-system mode, a lockfree format: vCPUs share stacks (a task's kernel
 * stack after a migration, a process's asid stack), so a stack's events
 * take its own lock; the format keeps per-stack state and guards anything
 * shared itself (ct_format.lockfree), so stacks.c's lock is taken only to
 * find a stack other than the vCPU's last. One lock for every event would
 * make the vCPUs wait for each other at every call and return.
 */
static void own_lock_event(ct_stack *s, unsigned vcpu, const callstack_event *ev)
{
    callstack_spin_lock(&s->mu);
    stack_event(s, vcpu, ev, fmt->needs_ts ? ct_clock_ns(&s->clock) : 0);
    callstack_spin_unlock(&s->mu);
}

/* An event of another stack than the thread's last, or of a stack other
 * threads may change: under the lock. */
static __attribute__((noinline)) void event_locked(ct_stack *s, unsigned vcpu,
                                                   const callstack_event *ev)
{
    g_mutex_lock(&lock);
    s = find_stack(s, vcpu, ev);
    if (s->own_lock) {
        g_mutex_unlock(&lock);
        own_lock_event(s, vcpu, ev);
        return;
    }
    stack_event(s, vcpu, ev, fmt->needs_ts ? ct_clock_ns(&s->clock) : 0);
    g_mutex_unlock(&lock);
}

/*
 * Word mode. A lockfree stack's word is its ct_stack from its first event
 * on, so its events need neither the thread's last stack nor a comparison
 * of ids (callstack_instr clears the word when the id changes: a forked
 * child's stack then comes here and is found, or inherited, by its new
 * id). Other stacks keep no word and come here at every event, for the
 * mirror and `event` as on_event would.
 */
void ct_stacks_frame_slow(unsigned vcpu, const callstack_frame_event *fe)
{
    ct_stack *s = ct_word_stack(fe);
    if (s) {
        /* (the engine's rarer paths give the whole event anyway) */
        fmt->frame_event(s, fe);
        return;
    }
    s = current;
    if (s && s->own_lock && same_stack(s, &fe->ev->where)) {
        own_lock_event(s, vcpu, fe->ev);
        return;
    }
    g_mutex_lock(&lock);
    s = find_stack(s, vcpu, fe->ev);
    if (s->own_lock) {
        g_mutex_unlock(&lock);
        own_lock_event(s, vcpu, fe->ev);
        return;
    }
    if (s->lockfree && fe->stack_word) {
        *fe->stack_word = (uintptr_t)s;
        fmt->frame_event(s, fe);
    } else {
        stack_event(s, vcpu, fe->ev, fmt->needs_ts ? ct_clock_ns(&s->clock) : 0);
    }
    g_mutex_unlock(&lock);
}

/* Mirror-mode stacks need every return; word-mode ones only if the format
 * says so. Every stack is word mode with threaded stacks in user mode. */
static void frame_ret_mirror_only(unsigned vcpu, const callstack_frame_event *fe)
{
    if (!ct_word_stack(fe)) {
        ct_stacks_frame_slow(vcpu, fe);
    }
}

bool ct_stacks_claim(bool (*claim)(on_frame_t, on_frame_t), stack_type kind)
{
    if (!fmt || !fmt->on_frame_call) {
        return false;
    }
    bool all_words = fmt->lockfree && !ct_system_mode && kind == STACK_THREADED;
    on_frame_t ret = fmt->on_frame_ret ? fmt->on_frame_ret
                                       : (all_words ? NULL : frame_ret_mirror_only);
    return claim(fmt->on_frame_call, ret);
}

void ct_stacks_event(unsigned vcpu, const callstack_event *ev)
{
    ct_stack *s = current;
    if (__builtin_expect(s && s->lockfree && same_stack(s, &ev->where), 1)) {
        stack_event(s, vcpu, ev, fmt->needs_ts ? ct_clock_ns(&s->clock) : 0);
    } else if (s && s->own_lock && same_stack(s, &ev->where)) {
        own_lock_event(s, vcpu, ev);
    } else {
        event_locked(s, vcpu, ev);
    }
}

void ct_stacks_thread_exit(void)
{
    g_mutex_lock(&lock);
    ct_stack *s = current;
    /* A threaded stack dies with its thread; an asid stack is the
     * process's. (In whole-system mode the exiting thread is a vCPU's.) */
    if (s && s->kind == STACK_THREADED && s != inherit && !ct_system_mode) {
        fmt->stack_end(s, ct_now_ns(), false);
        stack_key k = { s->first, s->second, s->tag };
        g_hash_table_remove(stacks, &k);
        stack_free(s);
    }
    current = NULL;
    g_mutex_unlock(&lock);
}

/* QEMU stops every other vCPU before the exit callbacks: all stacks are
 * quiet. */
void ct_stacks_at_exit(void)
{
    g_mutex_lock(&lock);
    uint64_t ts = ct_now_ns();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, stacks);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        fmt->stack_end(v, ts, true);
        stack_free(v);
        g_hash_table_iter_remove(&it);
    }
    current = NULL;
    if (inherit) {
        fmt->stack_discard(inherit);
        stack_free(inherit);
        inherit = NULL;
    }
    fmt->finish(ts);
    g_mutex_unlock(&lock);
}

/* Other threads may go on running until the execve succeeds: only the
 * stacks they cannot be changing are handed to exec_stack. */
void ct_stacks_before_exec(void)
{
    g_mutex_lock(&lock);
    if (fmt->exec_stack) {
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, stacks);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
            ct_stack *s = v;
            if (!s->lockfree || s == current) {
                fmt->exec_stack(s);
            }
        }
    }
    if (fmt->exec) {
        fmt->exec(ct_now_ns());
    } else {
        fmt->before_fork();
    }
    g_mutex_unlock(&lock);
}

static void before_fork(void)
{
    g_mutex_lock(&lock);
    fmt->before_fork();
}

static void after_fork_parent(void)
{
    g_mutex_unlock(&lock);
}

static void after_fork_child(void)
{
    g_mutex_init(&lock);
    ct_names_after_fork_child();
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, stacks);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        ct_stack *s = v;
        g_hash_table_iter_steal(&it);
        g_free(k);
        if (s == current) {
            inherit = s;
        } else {
            fmt->stack_discard(s);
            if (!s->lockfree) {
                /* (a lockfree stack's thread may have been moving its
                 * frames at the fork: left as it is) */
                stack_free(s);
            }
        }
    }
    g_hash_table_remove_all(stacks);
    fmt->after_fork_child();
}

void ct_stacks_init(const ct_format *f)
{
    fmt = f;
    g_mutex_init(&lock);
    stacks = g_hash_table_new_full(key_hash, key_equal, g_free, NULL);
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

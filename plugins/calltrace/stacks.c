/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest stacks as calltrace's structured formats see them: per stack
 * id, the frames (function, return address) rebuilt from the events'
 * depths, and the task (pid, tid) the stack belongs to. One lock guards
 * everything; the formats' hooks run under it, which also orders each
 * stack's timestamps.
 *
 * fork(): the child's forking thread continues on a copy of its parent's
 * stack under a new stack id (callstack_instr's rule). The child keeps that
 * thread's frames to seed the new stack, and forgets the parent's other
 * stacks without writing anything for them (the parent does).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>
#include "calltrace.h"

typedef struct stack_key {
    uint64_t first, second;
} stack_key;

static const ct_format *fmt;
static GMutex lock;
static GHashTable *stacks;            /* stack_key -> ct_stack */
static __thread ct_stack *current;    /* the stack of this thread's last event */
static ct_stack *inherit;             /* fork child: the forking thread's stack */

static guint key_hash(gconstpointer p)
{
    const stack_key *k = p;
    return g_int64_hash(&k->first) ^ (g_int64_hash(&k->second) * 31u);
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
    const stack_key *x = a, *y = b;
    return x->first == y->first && x->second == y->second;
}

static void stack_free(ct_stack *s)
{
    g_array_free(s->frames, TRUE);
    g_free(s);
}

static ct_stack *stack_new(const prog_point *p, uint64_t ts)
{
    ct_stack *s = g_new0(ct_stack, 1);
    s->first = p->sidFirst;
    s->second = p->sidSecond;
    s->kind = p->stackKind;
    s->pid = (int)p->sidFirst;
    s->tid = p->stackKind == STACK_THREADED ? (int)p->sidSecond : (int)p->sidFirst;
    s->frames = g_array_new(FALSE, TRUE, sizeof(ct_frame));
    bool inherited = false;
    if (inherit && inherit == current) {
        /* The forking thread's first event in the child. */
        g_array_append_vals(s->frames, inherit->frames->data, inherit->frames->len);
        fmt->stack_discard(inherit);
        stack_free(inherit);
        inherit = NULL;
        inherited = true;
    }
    stack_key *k = g_new(stack_key, 1);
    k->first = s->first;
    k->second = s->second;
    g_hash_table_insert(stacks, k, s);
    fmt->stack_begin(s, ts, inherited);
    return s;
}

void ct_stacks_event(unsigned vcpu, const callstack_event *ev)
{
    if (ev->kind == CALLSTACK_EVENT_CALL) {
        ct_sym_of(ev->func);   /* named while its file is surely mapped */
    }
    g_mutex_lock(&lock);
    uint64_t ts = ct_now_ns();
    stack_key k = { ev->where.sidFirst, ev->where.sidSecond };
    ct_stack *s = g_hash_table_lookup(stacks, &k);
    if (!s) {
        s = stack_new(&ev->where, ts);
    }
    current = s;
    GArray *f = s->frames;
    if (ev->kind == CALLSTACK_EVENT_CALL) {
        /* The new frame is at index depth - 1; anything between is a frame
         * calltrace never saw entered (it cannot be named). */
        uint64_t below = ev->depth ? ev->depth - 1 : 0;
        g_array_set_size(f, (guint)below);
        ct_frame nf = { .func = ev->func, .ret_addr = ev->ret_addr, .seen = true };
        g_array_append_val(f, nf);
        fmt->event(s, ev, vcpu, ts);
    } else {
        fmt->event(s, ev, vcpu, ts);
        if (f->len > ev->depth) {
            g_array_set_size(f, (guint)ev->depth);
        }
    }
    g_mutex_unlock(&lock);
}

void ct_stacks_thread_exit(void)
{
    g_mutex_lock(&lock);
    ct_stack *s = current;
    /* A threaded stack dies with its thread; an asid stack is the process's. */
    if (s && s->kind == STACK_THREADED && s != inherit) {
        fmt->stack_end(s, ct_now_ns(), false);
        stack_key k = { s->first, s->second };
        g_hash_table_remove(stacks, &k);
        stack_free(s);
    }
    current = NULL;
    g_mutex_unlock(&lock);
}

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
    if (inherit) {
        fmt->stack_discard(inherit);
        stack_free(inherit);
        inherit = NULL;
    }
    fmt->finish(ts);
    g_mutex_unlock(&lock);
}

void ct_stacks_before_exec(void)
{
    g_mutex_lock(&lock);
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
            stack_free(s);
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

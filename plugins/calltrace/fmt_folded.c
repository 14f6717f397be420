/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * format=folded: collapsed stacks, one line per distinct call path,
 *
 *   outer;middle;inner COUNT
 *
 * COUNT is the exact number of calls that entered `inner` with exactly that
 * chain of callers (not a sample, not time). Summed over lines sharing a
 * prefix, as flame-graph tools do, a frame's width is the number of calls
 * made at or under it. Paths start at the outermost frame calltrace saw
 * (_start, or a thread's start routine); a frame it never saw entered is
 * "[unknown]". Written at exit; a forked child appends its own lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "calltrace.h"

/*
 * A call tree: node 0 is the root; a node is a function under a parent
 * (its index is above its parent's). Each stack counts into its own tree,
 * without a lock (ct_format.lockfree); a tree is merged into `done` when
 * its stack ends, under stacks.c's lock, and `done` is written at exit.
 */
typedef struct node {
    uint64_t func;
    uint64_t count;
    uint32_t parent;
    uint32_t last_child;      /* the child found last: calls from one frame
                                 mostly repeat the previous callee */
} node;

/* The children by (parent, func), open addressing; node 0: empty. The key
 * is in the slot, so a probe reads one cache line. */
typedef struct slot {
    uint64_t func;
    uint32_t parent;
    uint32_t node;
} slot;

typedef struct tree {
    node *nodes;
    uint32_t n, cap;
    slot *slots;
    uint32_t mask;
} tree;

static int out_fd = -1;
static const char *out_name;         /* for error messages */
static tree done;

static void tree_init(tree *t)
{
    t->cap = 64;
    t->nodes = g_new0(node, t->cap);
    t->n = 1;
    t->mask = 127;
    t->slots = g_new0(slot, t->mask + 1);
}

static void tree_free(tree *t)
{
    g_free(t->nodes);
    g_free(t->slots);
}

static inline uint32_t slot_of(const tree *t, uint32_t parent, uint64_t func)
{
    /* (the parent spread over every bit before the product: the slot bits
     * then depend on all of it, and one function's nodes under many
     * parents do not cluster) */
    uint64_t h = (func ^ ((uint64_t)parent * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;
    return (uint32_t)(h >> 32) & t->mask;
}

static void rehash(tree *t)
{
    g_free(t->slots);
    t->mask = t->mask * 2 + 1;
    t->slots = g_new0(slot, t->mask + 1);
    for (uint32_t i = 1; i < t->n; i++) {
        uint32_t h = slot_of(t, t->nodes[i].parent, t->nodes[i].func);
        while (t->slots[h].node) {
            h = (h + 1) & t->mask;
        }
        t->slots[h] = (slot){ t->nodes[i].func, t->nodes[i].parent, i };
    }
}

/* A new node, in the empty slot h. */
static __attribute__((noinline)) uint32_t child_add(tree *t, uint32_t h, uint32_t parent,
                                                    uint64_t func)
{
    if (t->n == t->cap) {
        t->cap *= 2;
        t->nodes = g_renew(node, t->nodes, t->cap);
    }
    uint32_t i = t->n++;
    t->nodes[i] = (node){ .func = func, .parent = parent };
    if (func) {
        ct_sym_of(func);   /* named while its file is surely mapped */
    }
    t->slots[h] = (slot){ func, parent, i };
    if (t->n * 2 > t->mask) {
        rehash(t);
    }
    return i;
}

static inline uint32_t child(tree *t, uint32_t parent, uint64_t func)
{
    uint32_t c = t->nodes[parent].last_child;
    if (c && t->nodes[c].func == func) {
        return c;
    }
    uint32_t h = slot_of(t, parent, func);
    for (;; h = (h + 1) & t->mask) {
        const slot *sl = &t->slots[h];
        if (!sl->node) {
            c = child_add(t, h, parent, func);
            break;
        }
        if (sl->func == func && sl->parent == parent) {
            c = sl->node;
            break;
        }
    }
    t->nodes[parent].last_child = c;
    return c;
}

static bool f_open(const char *out)
{
    out_fd = ct_open_append(out, &out_name);
    if (out_fd < 0) {
        return false;
    }
    tree_init(&done);
    return true;
}

static void zero_counts(tree *t)
{
    for (uint32_t i = 0; i < t->n; i++) {
        t->nodes[i].count = 0;
    }
}

/* Adds t's counts to `done`, and zeroes them. */
static void merge_done(tree *t)
{
    uint32_t *map = g_new(uint32_t, t->n);
    map[0] = 0;
    for (uint32_t i = 1; i < t->n; i++) {
        map[i] = child(&done, map[t->nodes[i].parent], t->nodes[i].func);
        done.nodes[map[i]].count += t->nodes[i].count;
        t->nodes[i].count = 0;
    }
    g_free(map);
}

static void f_stack_begin(ct_stack *s, uint64_t ts, bool inherited)
{
    (void)ts;
    (void)inherited;   /* inherited frames keep their nodes: stack_inherit moved the tree */
    if (!s->fmt) {
        s->fmt = g_new(tree, 1);
        tree_init(s->fmt);
    }
}

static void f_stack_inherit(ct_stack *s, ct_stack *from)
{
    /* The child reports its own calls only; the tree's shape stays, so
     * inherited frames keep their paths. */
    s->fmt = from->fmt;
    from->fmt = NULL;
    if (s->fmt) {
        zero_counts(s->fmt);
    }
}

static void f_event(ct_stack *s, const callstack_event *ev, unsigned vcpu, uint64_t ts)
{
    (void)vcpu;
    (void)ts;
    if (ev->kind != CALLSTACK_EVENT_CALL) {
        return;
    }
    /* The new frame's parent is the node of the frame below it. Frames
     * pushed without an event here (never seen entered) have no node yet:
     * they get one now, "[unknown]" if their function is not known. */
    tree *t = s->fmt;
    ct_frame *f = s->frames;
    uint32_t top_i = s->n_frames - 1, j = top_i;
    uint32_t parent;
    if (__builtin_expect(j == 0 || f[j - 1].node, 1)) {
        parent = j ? f[j - 1].node : 0;
    } else {
        while (j > 0 && !f[j - 1].node) {
            j--;
        }
        parent = j ? f[j - 1].node : 0;
        for (; j < top_i; j++) {
            f[j].node = child(t, parent, f[j].func);
            parent = f[j].node;
        }
    }
    uint32_t n = child(t, parent, ev->func);
    f[top_i].node = n;
    t->nodes[n].count++;
}

/*
 * Word mode: each frame's word is its node, so the new frame's parent is
 * the word of the frame below, and returns need nothing. A parent word of
 * 0 below depth 1 is a frame never seen entered (pushed before calltrace
 * bound, or forgotten beyond callstack_instr's max_depth): the path then
 * starts with as many "[unknown]" frames, as in mirror mode.
 */
static __attribute__((noinline)) uint32_t unknown_path(tree *t, uint64_t frames)
{
    uint32_t parent = 0;
    for (uint64_t i = 0; i < frames; i++) {
        parent = child(t, parent, 0);
    }
    return parent;
}

static inline void f_word_call(ct_stack *s, const callstack_frame_event *fe)
{
    tree *t = s->fmt;
    uint32_t parent = (uint32_t)fe->parent_word;
    if (__builtin_expect(!parent && fe->depth > 1, 0)) {
        parent = unknown_path(t, fe->depth - 1);
    }
    uint32_t n = child(t, parent, fe->func);
    *fe->frame_word = n;
    t->nodes[n].count++;
}

static void f_frame_call(unsigned vcpu, const callstack_frame_event *fe)
{
    ct_stack *s = ct_word_stack(fe);
    if (__builtin_expect(s != NULL, 1)) {
        f_word_call(s, fe);
    } else {
        ct_stacks_frame_slow(vcpu, fe);
    }
}

static void f_frame_event(ct_stack *s, const callstack_frame_event *fe)
{
    if (fe->kind == CALLSTACK_EVENT_CALL) {
        f_word_call(s, fe);
    }
}

static void f_stack_end(ct_stack *s, uint64_t ts, bool at_exit)
{
    (void)ts;
    (void)at_exit;
    if (s->fmt) {
        merge_done(s->fmt);
        tree_free(s->fmt);
        g_free(s->fmt);
        s->fmt = NULL;
    }
}

static void f_stack_discard(ct_stack *s)
{
    /* (a lockfree stack's tree may have been moving at the fork: left) */
    if (s->fmt && !s->lockfree) {
        tree_free(s->fmt);
        g_free(s->fmt);
    }
    s->fmt = NULL;
}

static void f_before_fork(void)
{
}

static void f_after_fork_child(void)
{
    zero_counts(&done);
}

/* A function's name as a frame of a line: ';' separates frames and ' '
 * the count, so both become '_'. */
static char *frame_name(uint64_t func)
{
    char *name = g_strdup(func ? ct_sym_of(func)->display : "[unknown]");
    for (char *c = name; *c; c++) {
        if (*c == ';' || *c == ' ') {
            *c = '_';
        }
    }
    return name;
}

/*
 * One line per node with calls, in node order: its path from the root
 * (each node's name made once, in `names`), then the count. Written in
 * pieces of whole lines as it is made: a program with many distinct paths
 * has tens of megabytes of them, and one buffer of all of them cost its
 * reallocations' copies and page faults (a tenth of a python3 run).
 */
#define FLUSH_BYTES (1u << 20)
static void f_finish(uint64_t ts)
{
    (void)ts;
    GString *out = g_string_sized_new(FLUSH_BYTES + 4096);
    GHashTable *by_func = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    const char **names = g_new0(const char *, done.n);
    uint32_t *path = NULL, path_cap = 0;
    for (uint32_t i = 1; i < done.n; i++) {
        if (!done.nodes[i].count) {
            continue;
        }
        uint32_t len = 0;
        for (uint32_t n = i; n; n = done.nodes[n].parent) {
            if (len == path_cap) {
                path_cap = path_cap ? 2 * path_cap : 64;
                path = g_renew(uint32_t, path, path_cap);
            }
            path[len++] = n;
        }
        while (len-- > 0) {
            uint32_t n = path[len];
            if (!names[n]) {
                uint64_t func = done.nodes[n].func;
                names[n] = g_hash_table_lookup(by_func, &func);
                if (!names[n]) {
                    names[n] = frame_name(func);
                    g_hash_table_insert(by_func, g_memdup2(&func, sizeof func), (char *)names[n]);
                }
            }
            g_string_append(out, names[n]);
            g_string_append_c(out, len ? ';' : ' ');
        }
        g_string_append_printf(out, "%" G_GUINT64_FORMAT "\n", done.nodes[i].count);
        if (out->len >= FLUSH_BYTES) {
            ct_append(out_fd, out->str, out->len, ct_cut_lines, out_name);
            g_string_truncate(out, 0);
        }
    }
    g_free(path);
    g_free(names);
    g_hash_table_destroy(by_func);
    ct_append(out_fd, out->str, out->len, ct_cut_lines, out_name);
    g_string_free(out, TRUE);
}

/* Before an execve: the lines so far, then counting starts again (tools
 * add up lines of the same path, so a failed execve's later lines just
 * add to them). */
static void f_exec_stack(ct_stack *s)
{
    if (s->fmt) {
        merge_done(s->fmt);
    }
}

static void f_exec(uint64_t ts)
{
    f_finish(ts);
    zero_counts(&done);
}

const ct_format ct_format_folded = {
    .name = "folded",
    CT_FOLLOWS_STACKS,
    .lockfree = true,
    .open = f_open,
    .stack_begin = f_stack_begin,
    .event = f_event,
    .stack_end = f_stack_end,
    .stack_discard = f_stack_discard,
    .stack_inherit = f_stack_inherit,
    .exec_stack = f_exec_stack,
    .before_fork = f_before_fork,
    .after_fork_child = f_after_fork_child,
    .finish = f_finish,
    .exec = f_exec,
    .on_frame_call = f_frame_call,
    .frame_event = f_frame_event,
};

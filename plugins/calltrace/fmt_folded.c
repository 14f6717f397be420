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

/* The call tree: node 0 is the root; a node is a function under a parent. */
typedef struct node {
    uint32_t parent;
    uint64_t func;
    uint64_t count;
} node;

typedef struct child_key {
    uint32_t parent;
    uint64_t func;
} child_key;

static int out_fd = -1;
static const char *out_name;         /* for error messages */
static GArray *nodes;           /* node */
static GHashTable *children;    /* child_key -> node index + 1 */

static guint ck_hash(gconstpointer p)
{
    const child_key *k = p;
    return g_int64_hash(&k->func) ^ (k->parent * 2654435761u);
}

static gboolean ck_equal(gconstpointer a, gconstpointer b)
{
    const child_key *x = a, *y = b;
    return x->parent == y->parent && x->func == y->func;
}

static bool f_open(const char *out)
{
    out_fd = ct_open_append(out, &out_name);
    if (out_fd < 0) {
        return false;
    }
    nodes = g_array_new(FALSE, TRUE, sizeof(node));
    g_array_set_size(nodes, 1);
    children = g_hash_table_new_full(ck_hash, ck_equal, g_free, NULL);
    return true;
}

static uint32_t child(uint32_t parent, uint64_t func)
{
    child_key k = { parent, func };
    gpointer v = g_hash_table_lookup(children, &k);
    if (v) {
        return (uint32_t)(GPOINTER_TO_UINT(v) - 1);
    }
    node n = { .parent = parent, .func = func };
    g_array_append_val(nodes, n);
    uint32_t idx = nodes->len - 1;
    child_key *nk = g_new(child_key, 1);
    *nk = k;
    g_hash_table_insert(children, nk, GUINT_TO_POINTER(idx + 1));
    return idx;
}

static void f_stack_begin(ct_stack *s, uint64_t ts, bool inherited)
{
    (void)s;
    (void)ts;
    (void)inherited;   /* inherited frames keep their nodes: the tree was copied */
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
    GArray *f = s->frames;
    guint top_i = f->len - 1, j = top_i;
    while (j > 0 && !g_array_index(f, ct_frame, j - 1).node) {
        j--;
    }
    uint32_t parent = j ? g_array_index(f, ct_frame, j - 1).node : 0;
    for (; j < top_i; j++) {
        ct_frame *fr = &g_array_index(f, ct_frame, j);
        fr->node = child(parent, fr->func);
        parent = fr->node;
    }
    ct_frame *top = &g_array_index(f, ct_frame, top_i);
    top->node = child(parent, ev->func);
    g_array_index(nodes, node, top->node).count++;
}

static void f_stack_end(ct_stack *s, uint64_t ts, bool at_exit)
{
    (void)s;
    (void)ts;
    (void)at_exit;
}

static void f_stack_discard(ct_stack *s)
{
    (void)s;
}

static void f_before_fork(void)
{
}

static void f_after_fork_child(void)
{
    /* The child reports its own calls only; the tree's shape stays, so
     * inherited frames keep their paths. */
    for (guint i = 0; i < nodes->len; i++) {
        g_array_index(nodes, node, i).count = 0;
    }
}

static void append_path(GString *line, GArray *path, uint32_t n)
{
    g_array_set_size(path, 0);
    for (; n; n = g_array_index(nodes, node, n).parent) {
        g_array_append_val(path, n);
    }
    for (guint i = path->len; i-- > 0;) {
        const node *nd = &g_array_index(nodes, node, g_array_index(path, uint32_t, i));
        const char *name = nd->func ? ct_sym_of(nd->func)->display : "[unknown]";
        for (const char *c = name; *c; c++) {
            /* ';' separates frames and ' ' the count */
            g_string_append_c(line, *c == ';' || *c == ' ' ? '_' : *c);
        }
        g_string_append_c(line, i ? ';' : ' ');
    }
}

static void f_finish(uint64_t ts)
{
    (void)ts;
    GString *out = g_string_new(NULL);
    GArray *path = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    for (guint i = 1; i < nodes->len; i++) {
        const node *nd = &g_array_index(nodes, node, i);
        if (nd->count) {
            append_path(out, path, i);
            g_string_append_printf(out, "%" G_GUINT64_FORMAT "\n", nd->count);
        }
    }
    g_array_free(path, TRUE);
    ct_append(out_fd, out->str, out->len, ct_cut_lines, out_name);
    g_string_free(out, TRUE);
}

/* Before an execve: the lines so far, then counting starts again (tools
 * add up lines of the same path, so a failed execve's later lines just
 * add to them). */
static void f_exec(uint64_t ts)
{
    f_finish(ts);
    f_after_fork_child();
}

const ct_format ct_format_folded = {
    .name = "folded",
    CT_FOLLOWS_STACKS,
    .open = f_open,
    .stack_begin = f_stack_begin,
    .event = f_event,
    .stack_end = f_stack_end,
    .stack_discard = f_stack_discard,
    .before_fork = f_before_fork,
    .after_fork_child = f_after_fork_child,
    .finish = f_finish,
    .exec = f_exec,
};

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer harness for the engine (src/engine/): the input is decoded into
 * an engine configuration and a sequence of calls, returns, slot returns,
 * unwinds, stack switches and drops on a few stacks, and every event the
 * engine delivers is checked against a small reference model (an array per
 * stack, the rules written out plainly, as in tests/unit/test_engine.c's
 * random_stream_vs_model, extended to stack pointers, max_depth and several
 * stacks). Every frame carries a unique call site, so "every pushed frame is
 * popped by exactly one RET event" is checked frame by frame. Any
 * disagreement aborts, which libFuzzer reports as a crash.
 *
 * With flag 0x80, stacks are heuristic (told apart by the stack pointer):
 * three vCPUs, two of them in one address space, each on the stack
 * csi_engine_heuristic_stack picks for the sp of each call or return. The
 * model follows the engine's choice of stack (that rule is not modelled),
 * checks the choice covers the sp, that a stack a vCPU is on is never
 * evicted and that an address space keeps at most max_heuristic_stacks
 * (more only while vCPUs are on them); evicted stacks' frames count as
 * dropped.
 *
 * Input: 4 bytes of configuration, then operations of 4 bytes each:
 *   op: bits 0-2 the operation, bits 3-4 the stack (heuristic: the vCPU),
 *   bits 5-7 a variant; a, b, c: arguments (pool indexes, stack-pointer
 *   steps).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include "engine/engine_internal.h"
#include "fuzz.h"

#define NSTACKS 4
#define FN(f) ((void (*)(void))(f))

typedef struct mstack {
    GArray *frames;       /* csi_frame, [0] oldest retained */
    uint64_t forgotten;
    csi_stack_id id;
    bool resync;
    csi_stack *s;          /* the engine's */
    uint64_t nev;         /* calls, returns, unwinds and unmatched returns on it */
} mstack;

typedef struct model {
    csi_engine_config cfg;
    uint32_t max_depth;   /* as the engine applies it */
    uint32_t search_limit;
    uint64_t window;
    GPtrArray *stacks;    /* mstack *, owned */
    uint64_t calls, returns, unwound, unmatched;
    uint64_t forgotten_ever;   /* frames dropped beyond max_depth */
} model;

/* What the engine delivered during one operation. */
static GArray *got_events;   /* callstack_event (CSI_SUB_EVENT) */
static GArray *got_funcs;    /* uint64_t: func of each CSI_SUB_CALL / CSI_SUB_RET, ret tagged */
static GArray *want_events;
static bool with_events;     /* a CSI_SUB_EVENT subscriber is registered */

#define RET_TAG (1ull << 63)

static void on_event(unsigned vcpu, const callstack_event *ev)
{
    (void)vcpu;
    g_array_append_val(got_events, *ev);
}

static void on_call(unsigned vcpu, uint64_t func)
{
    (void)vcpu;
    g_array_append_val(got_funcs, func);
}

static void on_ret(unsigned vcpu, uint64_t func)
{
    (void)vcpu;
    uint64_t v = func | RET_TAG;
    g_array_append_val(got_funcs, v);
}

#define disagree(...) fuzz_fail("fuzz_engine: engine and model disagree", __VA_ARGS__)

static csi_frame *mtop(mstack *m)
{
    return m->frames->len ? &g_array_index(m->frames, csi_frame, m->frames->len - 1) : NULL;
}

static uint64_t mdepth(const mstack *m)
{
    return m->forgotten + m->frames->len;
}

static void expect(mstack *m, callstack_event_kind kind, bool unwound, const csi_frame *f,
                   uint64_t pc)
{
    csi_frame *top = mtop(m);
    callstack_event ev = {
        .kind = kind, .unwound = unwound, .func = f->func, .ret_addr = f->ret_addr,
        .call_site = f->call_site, .sp = f->sp, .depth = mdepth(m),
        .where = { .caller = top ? top->ret_addr : 0, .pc = pc, .sidFirst = m->id.first,
                   .sidSecond = m->id.second, .isKernelMode = m->id.kernel,
                   .stackKind = m->id.kind },
    };
    g_array_append_val(want_events, ev);
}

static void mpop(model *md, mstack *m, bool unwound, uint64_t pc)
{
    csi_frame f = *mtop(m);
    g_array_set_size(m->frames, m->frames->len - 1);
    m->nev++;
    expect(m, CALLSTACK_EVENT_RET, unwound, &f, pc);
    if (unwound) {
        md->unwound++;
    } else {
        md->returns++;
    }
}

/* The engine's rule for a frame whose stack memory has been released. */
static bool mdead(const model *md, mstack *m, uint64_t sp, bool at_call)
{
    csi_frame *top = mtop(m);
    if (!top || top->sp > sp) {
        return false;
    }
    if (top->sp == sp && !(at_call && md->cfg.ret_addr_on_stack)) {
        return false;
    }
    return sp - top->sp <= md->window;
}

static void mcall(model *md, mstack *m, const csi_frame *f)
{
    if (m->resync) {
        while (mdead(md, m, f->sp, true)) {
            mpop(md, m, true, f->func);
        }
    }
    if (m->frames->len == md->max_depth) {
        /* the oldest half is forgotten */
        uint32_t drop = md->max_depth / 2;
        g_array_remove_range(m->frames, 0, drop);
        m->forgotten += drop;
        md->forgotten_ever += drop;
    }
    g_array_append_val(m->frames, *f);
    m->nev++;
    expect(m, CALLSTACK_EVENT_CALL, false, f, f->func);
    md->calls++;
}

static void mret(model *md, mstack *m, uint64_t target, uint64_t sp)
{
    uint32_t n = m->frames->len;
    uint32_t limit = m->resync ? n : MIN(n, md->search_limit);
    int64_t idx = -1;
    for (uint32_t i = 0; i < limit; i++) {
        const csi_frame *f = &g_array_index(m->frames, csi_frame, n - 1 - i);
        if (m->resync && f->sp > sp) {
            break;
        }
        if (f->ret_addr == target) {
            idx = i;
            break;
        }
    }
    if (idx < 0) {
        if (n == 0 && m->forgotten > 0) {
            m->forgotten--;
        }
        md->unmatched++;
        m->nev++;
        if (m->resync) {
            while (mdead(md, m, sp, false)) {
                mpop(md, m, true, target);
            }
        }
        return;
    }
    for (int64_t i = 0; i <= idx; i++) {
        mpop(md, m, i != idx, target);
    }
}

static void compare(const char *what, uint64_t op_index)
{
    if (with_events) {
        if (got_events->len != want_events->len) {
            disagree("op %" G_GUINT64_FORMAT " (%s): %u events, model %u", op_index, what,
                     got_events->len, want_events->len);
        }
        for (guint i = 0; i < got_events->len; i++) {
            const callstack_event *g = &g_array_index(got_events, callstack_event, i);
            const callstack_event *w = &g_array_index(want_events, callstack_event, i);
            if (g->kind != w->kind || g->unwound != w->unwound || g->func != w->func ||
                g->ret_addr != w->ret_addr || g->call_site != w->call_site || g->sp != w->sp ||
                g->depth != w->depth || g->where.caller != w->where.caller ||
                g->where.pc != w->where.pc || g->where.sidFirst != w->where.sidFirst ||
                g->where.sidSecond != w->where.sidSecond ||
                g->where.isKernelMode != w->where.isKernelMode ||
                g->where.stackKind != w->where.stackKind) {
                disagree("op %" G_GUINT64_FORMAT " (%s), event %u: kind %d/%d unwound %d/%d "
                         "func %#" G_GINT64_MODIFIER "x/%#" G_GINT64_MODIFIER "x site %#"
                         G_GINT64_MODIFIER "x/%#" G_GINT64_MODIFIER "x depth %" G_GUINT64_FORMAT
                         "/%" G_GUINT64_FORMAT " (engine/model)",
                         op_index, what, i, g->kind, w->kind, g->unwound, w->unwound, g->func,
                         w->func, g->call_site, w->call_site, g->depth, w->depth);
            }
        }
    }
    /* on_call / on_ret: one per event, same order, same function */
    if (got_funcs->len != want_events->len) {
        disagree("op %" G_GUINT64_FORMAT " (%s): %u on_call/on_ret, model %u events", op_index,
                 what, got_funcs->len, want_events->len);
    }
    for (guint i = 0; i < got_funcs->len; i++) {
        const callstack_event *w = &g_array_index(want_events, callstack_event, i);
        uint64_t v = w->func | (w->kind == CALLSTACK_EVENT_RET ? RET_TAG : 0);
        if (g_array_index(got_funcs, uint64_t, i) != v) {
            disagree("op %" G_GUINT64_FORMAT " (%s): on_call/on_ret %u differs", op_index, what, i);
        }
    }
    g_array_set_size(got_events, 0);
    g_array_set_size(got_funcs, 0);
    g_array_set_size(want_events, 0);
}

/* The engine's view of a stack (depth, callers, functions, top) against the model's. */
static void compare_stack(csi_engine *e, mstack *m, uint64_t op_index)
{
    enum { N = 64 };
    uint64_t callers[N], funcs[N];
    uint32_t n = m->frames->len;
    uint64_t d = csi_engine_depth(e, m->s);
    if (d != mdepth(m)) {
        disagree("op %" G_GUINT64_FORMAT ": depth %" G_GUINT64_FORMAT ", model %" G_GUINT64_FORMAT,
                 op_index, d, mdepth(m));
    }
    uint32_t nc = csi_engine_callers(e, m->s, callers, N);
    uint32_t nf = csi_engine_functions(e, m->s, funcs, N);
    if (nc != MIN(n, (uint32_t)N) || nf != nc) {
        disagree("op %" G_GUINT64_FORMAT ": %u callers, %u functions, model %u frames", op_index,
                 nc, nf, n);
    }
    for (uint32_t i = 0; i < nc; i++) {
        const csi_frame *f = &g_array_index(m->frames, csi_frame, n - 1 - i);
        if (callers[i] != f->ret_addr || funcs[i] != f->func) {
            disagree("op %" G_GUINT64_FORMAT ": frame %u differs", op_index, i);
        }
    }
    csi_frame top;
    bool has = csi_engine_top(e, m->s, &top);
    if (has != (n > 0) || (has && memcmp(&top, mtop(m), sizeof top) != 0)) {
        disagree("op %" G_GUINT64_FORMAT ": top frame differs", op_index);
    }
    prog_point p;
    memset(&p, 0, sizeof p);
    csi_engine_fill_prog_point(e, m->s, &p);
    if (p.caller != (n ? mtop(m)->ret_addr : 0) || p.sidFirst != m->id.first ||
        p.sidSecond != m->id.second) {
        disagree("op %" G_GUINT64_FORMAT ": prog_point differs", op_index);
    }
}

static void set_events(csi_engine *e, bool on)
{
    if (on != with_events) {
        if (on) {
            csi_engine_subscribe(e, CSI_SUB_EVENT, FN(on_event));
        } else {
            csi_engine_unsubscribe(e, CSI_SUB_EVENT, FN(on_event));
        }
        with_events = on;
    }
}

static mstack *mstack_new(model *md, csi_stack *s)
{
    mstack *m = g_new0(mstack, 1);
    m->frames = g_array_new(FALSE, FALSE, sizeof(csi_frame));
    m->id = s->id;
    m->resync = md->cfg.sp_resync ||
                (md->cfg.sp_resync_own && (s->id.kernel || s->id.kind != STACK_ASID));
    m->s = s;
    g_ptr_array_add(md->stacks, m);
    return m;
}

static void mstack_free(gpointer p)
{
    mstack *m = p;
    g_array_free(m->frames, TRUE);
    g_free(m);
}

#define NVCPUS 3

/*
 * After csi_engine_heuristic_stack put vCPU v on `s` for stack pointer sp:
 * stacks the engine evicted leave the model (their frames dropped), and
 * the model stack of `s` is returned (new and empty if `s` is).
 */
static mstack *heuristic_sync(model *md, csi_engine *e, csi_stack *const cur[NVCPUS],
                              csi_stack *s, uint64_t sp, uint64_t max_stacks,
                              uint64_t *dropped, size_t op_index)
{
    if (s->last_sp != sp || s->high_sp < sp) {
        disagree("op %zu: the stack chosen does not cover sp %#" G_GINT64_MODIFIER "x", op_index, sp);
    }
    mstack *found = NULL;
    for (guint i = md->stacks->len; i-- > 0;) {
        mstack *m = g_ptr_array_index(md->stacks, i);
        csi_stack *now = g_hash_table_lookup(e->stacks, &m->id);
        /* (a stack evicted and made again under the same id has fewer events) */
        if (now == m->s && now->n_calls + now->n_returns + now->n_unwound + now->n_unmatched == m->nev) {
            if (now == s) {
                found = m;
            }
            continue;
        }
        for (int v = 0; v < NVCPUS; v++) {
            if (cur[v] == m->s && m->s != s) {
                disagree("op %zu: a stack vCPU %d is on was evicted", op_index, v);
            }
        }
        *dropped += m->frames->len;
        g_ptr_array_remove_index_fast(md->stacks, i);
    }
    if (!found) {
        found = mstack_new(md, s);
        if (csi_engine_depth(e, s) != 0) {
            disagree("op %zu: a new heuristic stack is not empty", op_index);
        }
    }
    unsigned in_space = 0;
    for (guint i = 0; i < md->stacks->len; i++) {
        in_space += ((mstack *)g_ptr_array_index(md->stacks, i))->id.first == s->id.first;
    }
    if (in_space > MAX(max_stacks, NVCPUS)) {
        disagree("op %zu: %u stacks in one address space, bound %" G_GUINT64_FORMAT, op_index,
                 in_space, max_stacks);
    }
    return found;
}

/* Small pools: equal return addresses and stack pointers must be common. */
static uint64_t pool_func(uint8_t v) { return 0x1000 + (v & 15) * 0x10; }
static uint64_t pool_ret(uint8_t v) { return 0x2000 + (v & 15) * 4; }
/* Stack pointers around 0x10000, in words; the window configuration makes
 * some distances exceed the resync window. */
static uint64_t pool_sp(uint8_t v) { return 0x10000 - 0x400 + (uint64_t)v * 8; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) {
        return 0;
    }
    if (!got_events) {
        got_events = g_array_new(FALSE, FALSE, sizeof(callstack_event));
        want_events = g_array_new(FALSE, FALSE, sizeof(callstack_event));
        got_funcs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    }
    model md;
    memset(&md, 0, sizeof md);
    uint8_t flags = data[0];
    md.cfg.sp_resync = flags & 1;
    md.cfg.ret_addr_on_stack = flags & 2;
    md.cfg.sp_resync_own = flags & 4;
    md.cfg.threaded_owned = flags & 8;
    md.cfg.starts_single_threaded = flags & 16;
    bool heuristic = flags & 128;
    md.cfg.max_depth = data[1] & 0x80 ? 0 : data[1];        /* 0, 1: the default */
    if (heuristic) {
        md.cfg.stack_distance = 16 + (uint64_t)data[2] * 8;
        md.cfg.max_heuristic_stacks = 1 + (data[3] & 7);
    }
    md.cfg.search_limit = data[2] & 31;                     /* 0: the default */
    md.cfg.resync_window = (uint64_t)data[3] * 8;           /* 0: the default */
    md.max_depth = md.cfg.max_depth < 2 ? CSI_DEFAULT_MAX_DEPTH : md.cfg.max_depth;
    md.search_limit = md.cfg.search_limit ? md.cfg.search_limit : CSI_DEFAULT_SEARCH_LIMIT;
    md.window = md.cfg.resync_window ? md.cfg.resync_window : CSI_DEFAULT_RESYNC_WINDOW;

    csi_engine *e = csi_engine_new(&md.cfg);
    csi_engine_subscribe(e, CSI_SUB_CALL, FN(on_call));
    csi_engine_subscribe(e, CSI_SUB_RET, FN(on_ret));
    with_events = false;
    set_events(e, flags & 32);
    if (flags & 64) {
        csi_engine_set_concurrent(e, true);
    }
    /* Threaded: two threads of a process, an asid stack, a kernel stack. */
    static const csi_stack_id ids[NSTACKS] = {
        { .first = 7, .second = 1, .kind = STACK_THREADED },
        { .first = 7, .second = 2, .kind = STACK_THREADED },
        { .first = 7, .second = 0, .kind = STACK_ASID },
        { .first = 0, .second = 0x4000, .kind = STACK_ASID, .kernel = true },
    };
    /* Heuristic: vCPUs 0 and 1 in address space 7, vCPU 2 in 8. */
    static const csi_stack_id spaces[NVCPUS] = {
        { .first = 7, .kind = STACK_HEURISTIC },
        { .first = 7, .kind = STACK_HEURISTIC },
        { .first = 8, .kind = STACK_HEURISTIC },
    };
    csi_stack *cur[NVCPUS] = { NULL };
    md.stacks = g_ptr_array_new_with_free_func(mstack_free);
    for (int k = 0; k < NSTACKS && !heuristic; k++) {
        mstack_new(&md, csi_engine_stack(e, &ids[k]));
    }
    uint64_t dropped_frames = 0, site = 0;

    for (size_t at = 4, op_index = 0; at + 4 <= size; at += 4, op_index++) {
        uint8_t op = data[at], a = data[at + 1], b = data[at + 2], c = data[at + 3];
        unsigned variant = op >> 5, v = ((op >> 3) & 3) % NVCPUS;
        const char *what = "?";
        mstack *m = heuristic ? NULL : g_ptr_array_index(md.stacks, (op >> 3) & 3);
        if (heuristic) {
            /* the vCPU's stack so far; calls and returns pick theirs below */
            for (guint i = 0; cur[v] && i < md.stacks->len; i++) {
                mstack *x = g_ptr_array_index(md.stacks, i);
                m = x->s == cur[v] ? x : m;
            }
            if ((op & 7) >= 4 && !m) {
                continue;
            }
        }
        switch (op & 7) {
        case 0:
        case 1: {   /* call; variant 0..3: sp just below the top frame's (x86-like) */
            what = "call";
            csi_frame f = { .func = pool_func(a), .ret_addr = pool_ret(b),
                           .call_site = 0x100000 + site++, .sp = pool_sp(c) };
            if (variant < 4 && m && mtop(m)) {
                f.sp = mtop(m)->sp - 8 * (c & 3);
            }
            if (heuristic) {
                cur[v] = csi_engine_heuristic_stack(e, &spaces[v], f.sp, cur[v]);
                m = heuristic_sync(&md, e, cur, cur[v], f.sp, md.cfg.max_heuristic_stacks,
                                   &dropped_frames, op_index);
            }
            mcall(&md, m, &f);
            csi_engine_call(e, m->s, 0, f.func, f.ret_addr, f.call_site, f.sp);
            break;
        }
        case 2:
        case 3: {   /* return: to the top frame, to some frame, or anywhere */
            what = "ret";
            uint32_t n = m ? m->frames->len : 0;
            uint64_t target = pool_ret(a), sp = pool_sp(b);
            if (n && variant < 4) {
                const csi_frame *f = &g_array_index(m->frames, csi_frame,
                                                   variant == 0 ? n - 1 : c % n);
                target = f->ret_addr;
                sp = f->sp + (variant & 1 ? 8 : 0);
            }
            if (heuristic) {
                cur[v] = csi_engine_heuristic_stack(e, &spaces[v], sp, cur[v]);
                m = heuristic_sync(&md, e, cur, cur[v], sp, md.cfg.max_heuristic_stacks,
                                   &dropped_frames, op_index);
            }
            mret(&md, m, target, sp);
            csi_engine_ret(e, m->s, 0, target, sp);
            break;
        }
        case 4: {   /* slot return (x86 ret before it executes) */
            what = "ret_from_slot";
            csi_frame *top = mtop(m);
            uint64_t slot = top && variant < 6 ? top->sp : pool_sp(a);
            bool want = top && top->sp == slot;
            if (want) {
                mpop(&md, m, false, top->ret_addr);
            }
            if (csi_engine_ret_from_slot(e, m->s, 0, slot) != want) {
                disagree("op %zu: ret_from_slot returned %d, model %d", op_index, !want, want);
            }
            break;
        }
        case 5: {   /* unwind the top frame if it is still the expected one */
            what = "unwind_top";
            csi_frame exp = mtop(m) ? *mtop(m) : (csi_frame){ 0 };
            if (variant >= 6) {
                exp.ret_addr ^= 4;
            }
            bool want = mtop(m) && memcmp(&exp, mtop(m), sizeof exp) == 0;
            if (want) {
                mpop(&md, m, true, 0x5000 + a);
            }
            if (csi_engine_unwind_top(e, m->s, 0, &exp, 0x5000 + a) != want) {
                disagree("op %zu: unwind_top returned %d, model %d", op_index, !want, want);
            }
            break;
        }
        case 6:     /* compare the stack; toggle the event subscriber */
            what = "query";
            compare_stack(e, m, op_index);
            if (variant == 7) {
                set_events(e, !with_events);
            }
            break;
        case 7:     /* the thread exits: its stack is dropped (no events), made anew */
            what = "drop";
            if (variant < 6) {
                continue;   /* rare: dropping often leaves shallow stacks only */
            }
            if (heuristic) {
                /* the vCPU leaves its stack, which may be evicted from now on */
                csi_engine_release_stack(e, cur[v]);
                cur[v] = NULL;
                break;
            }
            compare_stack(e, m, op_index);
            dropped_frames += m->frames->len;
            csi_engine_drop_stack(e, m->s);
            g_array_set_size(m->frames, 0);
            m->forgotten = 0;
            m->s = csi_engine_stack(e, &m->id);
            if (csi_engine_depth(e, m->s) != 0) {
                disagree("op %zu: a new stack is not empty", op_index);
            }
            break;
        }
        compare(what, op_index);
    }

    uint64_t live = 0;
    for (guint k = 0; k < md.stacks->len; k++) {
        mstack *m = g_ptr_array_index(md.stacks, k);
        compare_stack(e, m, UINT64_MAX);
        live += m->frames->len;
    }
    csi_engine_stats st;
    csi_engine_get_stats(e, &st);
    if (st.calls != md.calls || st.returns != md.returns || st.unwound != md.unwound ||
        st.unmatched_returns != md.unmatched) {
        disagree("statistics: calls %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " returns %"
                 G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " unwound %" G_GUINT64_FORMAT "/%"
                 G_GUINT64_FORMAT " unmatched %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT
                 " (engine/model)", st.calls, md.calls, st.returns, md.returns, st.unwound,
                 md.unwound, st.unmatched_returns, md.unmatched);
    }
    /* Every frame pushed left exactly one way: a RET event (normal or
     * unwound), forgotten beyond max_depth, dropped with its stack, or
     * still on a stack. */
    if (st.calls != st.returns + st.unwound + md.forgotten_ever + dropped_frames + live) {
        disagree("unbalanced: %" G_GUINT64_FORMAT " calls, %" G_GUINT64_FORMAT " returns, %"
                 G_GUINT64_FORMAT " unwound, %" G_GUINT64_FORMAT " forgotten, %" G_GUINT64_FORMAT
                 " dropped, %" G_GUINT64_FORMAT " live", st.calls, st.returns, st.unwound,
                 md.forgotten_ever, dropped_frames, live);
    }
    g_ptr_array_free(md.stacks, TRUE);
    csi_engine_free(e);
    return 0;
}

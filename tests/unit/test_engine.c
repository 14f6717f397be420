/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the host-independent engine (src/engine/): synthetic call and
 * return streams go in, the events delivered to CSI_SUB_EVENT, CSI_SUB_CALL and
 * CSI_SUB_RET subscribers and the resulting stacks are checked against what
 * the stream means (or against a small reference model).
 *
 * A tiny harness: each case is a function; one line "PASS name" or
 * "FAIL name: reason" per case, then "N passed, N failed"; the exit status
 * is non-zero if any case failed.
 *
 * Stack pointers in the x86-like cases follow what a real x86 stream looks
 * like: a call made with sp = S enters the callee with sp = S - 8 (the frame's
 * sp), and the matching ret lands with sp = S = frame sp + 8.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#ifdef G_OS_UNIX
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#endif
#include "engine/engine.h"
#include "check.h"

/* ---- harness: tests/unit/check.h -------------------------------------- */

#define FN(f) ((void (*)(void))(f))

/* ---- recording subscribers --------------------------------------------- */

static struct {
    GArray *events;   /* callstack_event, from CSI_SUB_EVENT */
    GArray *calls;    /* uint64_t func, from CSI_SUB_CALL */
    GArray *rets;     /* uint64_t func, from CSI_SUB_RET */
    GArray *vcpus;    /* unsigned, vcpu of each CSI_SUB_EVENT delivery */
} rec;

static void rec_event(unsigned vcpu, const callstack_event *ev)
{
    g_array_append_val(rec.events, *ev);
    g_array_append_val(rec.vcpus, vcpu);
}

static void rec_call(unsigned vcpu, uint64_t func)
{
    (void)vcpu;
    g_array_append_val(rec.calls, func);
}

static void rec_ret(unsigned vcpu, uint64_t func)
{
    (void)vcpu;
    g_array_append_val(rec.rets, func);
}

static void rec_clear(void)
{
    g_array_set_size(rec.events, 0);
    g_array_set_size(rec.calls, 0);
    g_array_set_size(rec.rets, 0);
    g_array_set_size(rec.vcpus, 0);
}

static const callstack_event *rec_ev(guint i)
{
    return &g_array_index(rec.events, callstack_event, i);
}

/*
 * Every case runs twice: with the engine's defaults (every change under the
 * stack's lock) and as "lockfree/NAME", with the settings linux-user uses
 * (threaded stacks owned by their thread, and no locking at all until
 * csi_engine_set_concurrent: cases that start threads on a shared stack call
 * it first, as the plugin does at a clone).
 */
static bool lockfree;

static void set_lock_mode(csi_engine_config *cfg)
{
    cfg->threaded_owned = lockfree;
    cfg->starts_single_threaded = lockfree;
}

static csi_engine *mk_engine(bool sp_resync, bool ret_addr_on_stack, uint32_t max_depth,
                            uint64_t resync_window, uint32_t search_limit)
{
    csi_engine_config cfg = {
        .max_depth = max_depth,
        .sp_resync = sp_resync,
        .ret_addr_on_stack = ret_addr_on_stack,
        .resync_window = resync_window,
        .search_limit = search_limit,
    };
    set_lock_mode(&cfg);
    return csi_engine_new(&cfg);
}

/* An engine with the three recorders subscribed. */
static csi_engine *mk_rec_engine(bool sp_resync, bool ret_addr_on_stack, uint32_t max_depth,
                                uint64_t resync_window, uint32_t search_limit)
{
    csi_engine *e = mk_engine(sp_resync, ret_addr_on_stack, max_depth, resync_window,
                             search_limit);
    csi_engine_subscribe(e, CSI_SUB_EVENT, FN(rec_event));
    csi_engine_subscribe(e, CSI_SUB_CALL, FN(rec_call));
    csi_engine_subscribe(e, CSI_SUB_RET, FN(rec_ret));
    rec_clear();
    return e;
}

static csi_stack_id tid(uint64_t pid, uint64_t thread)
{
    csi_stack_id id = { .first = pid, .second = thread, .kind = STACK_THREADED, .kernel = false };
    return id;
}

/* ---- expectations ------------------------------------------------------- */

typedef struct exp_ev {
    callstack_event_kind kind;
    bool unwound;
    uint64_t func, ret_addr, depth;
} exp_ev;

#define EV_CALL(f, r, d) { CALLSTACK_EVENT_CALL, false, (f), (r), (d) }
#define EV_RET(f, r, d)  { CALLSTACK_EVENT_RET, false, (f), (r), (d) }
#define EV_UNW(f, r, d)  { CALLSTACK_EVENT_RET, true, (f), (r), (d) }

static const char *kind_str(callstack_event_kind k, bool unwound)
{
    return k == CALLSTACK_EVENT_CALL ? "CALL" : unwound ? "RET(unwound)" : "RET";
}

/*
 * The events recorded since the last check are exactly `x`; the CSI_SUB_CALL
 * and CSI_SUB_RET recorders saw the same calls and returns (func only), in the
 * same order. Clears the recorders.
 */
static bool expect_events(int line, const exp_ev *x, size_t n)
{
    bool ok = false;
    if (rec.events->len != n) {
        GString *got = g_string_new(NULL);
        for (guint i = 0; i < rec.events->len; i++) {
            const callstack_event *ev = rec_ev(i);
            g_string_append_printf(got, " %s(func=" PX ",ret=" PX ",depth=%" PRIu64 ")",
                                   kind_str(ev->kind, ev->unwound), ev->func, ev->ret_addr,
                                   ev->depth);
        }
        fail_at(line, "expected %zu events, got %u:%s", n, rec.events->len, got->str);
        g_string_free(got, TRUE);
        goto out;
    }
    guint nc = 0, nr = 0;
    for (size_t i = 0; i < n; i++) {
        const callstack_event *ev = rec_ev((guint)i);
        if (ev->kind != x[i].kind || ev->unwound != x[i].unwound || ev->func != x[i].func ||
            ev->ret_addr != x[i].ret_addr || ev->depth != x[i].depth) {
            fail_at(line, "event %zu: expected %s(func=" PX ",ret=" PX ",depth=%" PRIu64
                    "), got %s(func=" PX ",ret=" PX ",depth=%" PRIu64 ")", i,
                    kind_str(x[i].kind, x[i].unwound), x[i].func, x[i].ret_addr, x[i].depth,
                    kind_str(ev->kind, ev->unwound), ev->func, ev->ret_addr, ev->depth);
            goto out;
        }
        GArray *side = ev->kind == CALLSTACK_EVENT_CALL ? rec.calls : rec.rets;
        guint *k = ev->kind == CALLSTACK_EVENT_CALL ? &nc : &nr;
        if (*k >= side->len || g_array_index(side, uint64_t, *k) != ev->func) {
            fail_at(line, "event %zu: the %s subscriber did not see func " PX " in order", i,
                    ev->kind == CALLSTACK_EVENT_CALL ? "CSI_SUB_CALL" : "CSI_SUB_RET", ev->func);
            goto out;
        }
        (*k)++;
    }
    if (nc != rec.calls->len || nr != rec.rets->len) {
        fail_at(line, "CSI_SUB_CALL/RET saw %u/%u deliveries, CSI_SUB_EVENT %u/%u",
                rec.calls->len, rec.rets->len, nc, nr);
        goto out;
    }
    ok = true;
out:
    rec_clear();
    return ok;
}

#define EXPECT_EVENTS(...) \
    REQUIRE(expect_events(__LINE__, (const exp_ev[]){ __VA_ARGS__ }, \
                          sizeof((const exp_ev[]){ __VA_ARGS__ }) / sizeof(exp_ev)))
#define EXPECT_NO_EVENTS() REQUIRE(expect_events(__LINE__, NULL, 0))

/* depth, and the retained frames most recent first (ret_addr and func). */
static bool expect_stack(int line, csi_engine *e, csi_stack *s, uint64_t depth,
                         const uint64_t *callers, const uint64_t *funcs, uint32_t n)
{
    uint64_t got[256], gotf[256];
    uint64_t d = csi_engine_depth(e, s);
    if (d != depth) {
        fail_at(line, "depth %" PRIu64 ", expected %" PRIu64, d, depth);
        return false;
    }
    uint32_t m = csi_engine_callers(e, s, got, 256);
    uint32_t mf = csi_engine_functions(e, s, gotf, 256);
    if (m != n || mf != n) {
        fail_at(line, "callers/functions returned %u/%u entries, expected %u", m, mf, n);
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (got[i] != callers[i] || (funcs && gotf[i] != funcs[i])) {
            fail_at(line, "entry %u: caller " PX " func " PX ", expected caller " PX " func " PX,
                    i, got[i], gotf[i], callers[i], funcs ? funcs[i] : 0);
            return false;
        }
    }
    /* A short buffer gets the most recent entries. */
    if (n >= 2) {
        uint64_t one[1];
        if (csi_engine_callers(e, s, one, 1) != 1 || one[0] != callers[0]) {
            fail_at(line, "callers(n=1) did not return the most recent caller");
            return false;
        }
    }
    return true;
}

#define U64S(...) ((const uint64_t[]){ __VA_ARGS__ })
#define EXPECT_STACK(e, s, depth, callers, funcs, n) \
    REQUIRE(expect_stack(__LINE__, (e), (s), (depth), (callers), (funcs), (n)))
#define EXPECT_EMPTY(e, s) REQUIRE(expect_stack(__LINE__, (e), (s), 0, NULL, NULL, 0))

static bool expect_stats(int line, csi_engine *e, uint64_t calls, uint64_t returns,
                         uint64_t unwound, uint64_t unmatched)
{
    csi_engine_stats st;
    csi_engine_get_stats(e, &st);
    if (st.calls != calls || st.returns != returns || st.unwound != unwound ||
        st.unmatched_returns != unmatched) {
        fail_at(line, "stats calls/returns/unwound/unmatched = %" PRIu64 "/%" PRIu64 "/%" PRIu64
                "/%" PRIu64 ", expected %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64,
                st.calls, st.returns, st.unwound, st.unmatched_returns,
                calls, returns, unwound, unmatched);
        return false;
    }
    return true;
}

#define EXPECT_STATS(e, c, r, u, m) REQUIRE(expect_stats(__LINE__, (e), (c), (r), (u), (m)))

/* ---- cases -------------------------------------------------------------- */

static void t_config_defaults(void)
{
    csi_engine *e = mk_engine(false, false, 0, 0, 0);
    csi_engine *e1 = mk_engine(true, true, 1, 5, 7);
    const csi_engine_config *c = csi_engine_get_config(e);
    CHECK(c->max_depth == CSI_DEFAULT_MAX_DEPTH, "max_depth 0 -> %u", c->max_depth);
    CHECK(c->search_limit == CSI_DEFAULT_SEARCH_LIMIT, "search_limit 0 -> %u", c->search_limit);
    CHECK(c->resync_window == CSI_DEFAULT_RESYNC_WINDOW, "resync_window 0 -> " PX,
          c->resync_window);
    c = csi_engine_get_config(e1);
    CHECK(c->max_depth == CSI_DEFAULT_MAX_DEPTH, "max_depth 1 -> %u", c->max_depth);
    CHECK(c->sp_resync && c->ret_addr_on_stack && c->resync_window == 5 && c->search_limit == 7,
          "explicit values not kept");
    CHECK(!csi_engine_has_subscribers(e), "new engine has subscribers");
    CHECK(csi_engine_stack_count(e) == 0, "new engine has stacks");
done:
    csi_engine_free(e);
    csi_engine_free(e1);
}

/* a -> b -> c, returns in order. */
static void t_nesting(void)
{
    csi_engine *e = mk_rec_engine(false, false, 0, 0, 0);
    csi_stack_id id = { .first = 0x11, .second = 0x22, .kind = STACK_THREADED, .kernel = true };
    csi_stack *s = csi_engine_stack(e, &id);
    const uint64_t A = 0xa000, B = 0xb000, C = 0xc000;

    CHECK(csi_engine_stack(e, &id) == s, "same id gave another stack");
    EXPECT_EMPTY(e, s);

    csi_engine_call(e, s, 3, A, 0x100, 0x0fb, 0x7ff8);
    CHECK(rec.events->len == 1, "no event for the call");
    {
        const callstack_event *ev = rec_ev(0);
        CHECK(ev->call_site == 0x0fb && ev->sp == 0x7ff8, "call_site/sp " PX "/" PX,
              ev->call_site, ev->sp);
        CHECK(ev->where.caller == 0x100 && ev->where.pc == A,
              "where caller/pc " PX "/" PX, ev->where.caller, ev->where.pc);
        CHECK(ev->where.sidFirst == 0x11 && ev->where.sidSecond == 0x22 &&
              ev->where.isKernelMode && ev->where.stackKind == STACK_THREADED,
              "where has the wrong stack id");
        CHECK(g_array_index(rec.vcpus, unsigned, 0) == 3, "vcpu not passed through");
    }
    EXPECT_EVENTS(EV_CALL(A, 0x100, 1));
    EXPECT_STACK(e, s, 1, U64S(0x100), U64S(A), 1);

    csi_engine_call(e, s, 3, B, 0x200, 0x1fb, 0x7ef8);
    EXPECT_EVENTS(EV_CALL(B, 0x200, 2));
    EXPECT_STACK(e, s, 2, U64S(0x200, 0x100), U64S(B, A), 2);

    csi_engine_call(e, s, 3, C, 0x300, 0x2fb, 0x7df8);
    EXPECT_EVENTS(EV_CALL(C, 0x300, 3));
    EXPECT_STACK(e, s, 3, U64S(0x300, 0x200, 0x100), U64S(C, B, A), 3);

    {
        prog_point p = { .pc = 0x5eed };
        csi_engine_fill_prog_point(e, s, &p);
        CHECK(p.caller == 0x300 && p.pc == 0x5eed && p.sidFirst == 0x11 &&
              p.sidSecond == 0x22 && p.isKernelMode && p.stackKind == STACK_THREADED,
              "fill_prog_point: caller " PX " pc " PX, p.caller, p.pc);
    }

    csi_engine_ret(e, s, 3, 0x300, 0x7e00);
    CHECK(rec.events->len == 1, "no event for the return");
    CHECK(rec_ev(0)->where.caller == 0x200 && rec_ev(0)->where.pc == 0x300 &&
          rec_ev(0)->call_site == 0x2fb && rec_ev(0)->sp == 0x7df8,
          "ret event where/call_site/sp wrong");
    EXPECT_EVENTS(EV_RET(C, 0x300, 2));
    EXPECT_STACK(e, s, 2, U64S(0x200, 0x100), U64S(B, A), 2);

    csi_engine_ret(e, s, 3, 0x200, 0x7f00);
    EXPECT_EVENTS(EV_RET(B, 0x200, 1));
    EXPECT_STACK(e, s, 1, U64S(0x100), U64S(A), 1);

    csi_engine_ret(e, s, 3, 0x100, 0x8000);
    CHECK(rec.events->len == 1 && rec_ev(0)->where.caller == 0, "empty stack: caller not 0");
    EXPECT_EVENTS(EV_RET(A, 0x100, 0));
    EXPECT_EMPTY(e, s);
    EXPECT_STATS(e, 3, 3, 0, 0);
    {
        csi_engine_stats st;
        csi_engine_get_stats(e, &st);
        CHECK(st.stacks_created == 1, "stacks_created %" PRIu64, st.stacks_created);
    }
done:
    csi_engine_free(e);
}

/* The same function 1000 deep, every return matched. */
static void t_recursion(void)
{
    csi_engine *e = NULL;
    const uint64_t F = 0xf000, N = 1000;
    for (int resync = 0; resync < 2; resync++) {
        e = mk_rec_engine(resync, true, 0, 0, 0);
        csi_stack_id id = tid(1, 1);
        csi_stack *s = csi_engine_stack(e, &id);
        /* First call from main (returns to 0x500), then from inside F (0xf010). */
        for (uint64_t i = 0; i < N; i++) {
            uint64_t ra = i == 0 ? 0x500 : 0xf010;
            csi_engine_call(e, s, 0, F, ra, ra - 5, 0x100000 - 0x40 * (i + 1));
            CHECK(rec.events->len == 1, "resync=%d call %" PRIu64 ": %u events", resync, i,
                  rec.events->len);
            EXPECT_EVENTS(EV_CALL(F, ra, i + 1));
        }
        uint64_t top[3];
        CHECK(csi_engine_callers(e, s, top, 3) == 3 && top[0] == 0xf010 && top[2] == 0xf010,
              "callers at depth 1000");
        CHECK(csi_engine_depth(e, s) == N, "depth %" PRIu64, csi_engine_depth(e, s));
        for (uint64_t i = N; i-- > 0;) {
            uint64_t ra = i == 0 ? 0x500 : 0xf010;
            csi_engine_ret(e, s, 0, ra, 0x100000 - 0x40 * (i + 1) + 8);
            CHECK(rec.events->len == 1, "resync=%d ret at depth %" PRIu64 ": %u events",
                  resync, i + 1, rec.events->len);
            EXPECT_EVENTS(EV_RET(F, ra, i));
        }
        EXPECT_EMPTY(e, s);
        EXPECT_STATS(e, N, N, 0, 0);
        csi_engine_free(e);
        e = NULL;
    }
done:
    csi_engine_free(e);
}

/*
 * a(0x100) b(0x200) c(0x300) d(0x400); a return to 0x200 leaves b and skips
 * d and c: RET(d, unwound), RET(c, unwound), RET(b).
 */
static void t_return_skips_frames(void)
{
    csi_engine *e = NULL;
    const uint64_t A = 0xa0, B = 0xb0, C = 0xc0, D = 0xd0;
    for (int resync = 0; resync < 2; resync++) {
        e = mk_rec_engine(resync, true, 0, 0, 0);
        csi_stack_id id = tid(2, 2);
        csi_stack *s = csi_engine_stack(e, &id);
        csi_engine_call(e, s, 0, A, 0x100, 0xfb, 0x7ff8);
        csi_engine_call(e, s, 0, B, 0x200, 0x1fb, 0x7ef8);
        csi_engine_call(e, s, 0, C, 0x300, 0x2fb, 0x7df8);
        csi_engine_call(e, s, 0, D, 0x400, 0x3fb, 0x7cf8);
        EXPECT_EVENTS(EV_CALL(A, 0x100, 1), EV_CALL(B, 0x200, 2), EV_CALL(C, 0x300, 3),
                      EV_CALL(D, 0x400, 4));
        /* b's ret lands 8 above b's frame sp */
        csi_engine_ret(e, s, 0, 0x200, 0x7f00);
        for (guint i = 0; i < rec.events->len; i++) {
            CHECK(rec_ev(i)->where.pc == 0x200, "resync=%d event %u: pc " PX, resync, i,
                  rec_ev(i)->where.pc);
        }
        EXPECT_EVENTS(EV_UNW(D, 0x400, 3), EV_UNW(C, 0x300, 2), EV_RET(B, 0x200, 1));
        EXPECT_STACK(e, s, 1, U64S(0x100), U64S(A), 1);
        EXPECT_STATS(e, 4, 1, 2, 0);
        csi_engine_ret(e, s, 0, 0x100, 0x8000);
        EXPECT_EVENTS(EV_RET(A, 0x100, 0));
        EXPECT_EMPTY(e, s);
        EXPECT_STATS(e, 4, 2, 2, 0);

        /* Recursion: the nearest frame with the target wins. */
        csi_engine_call(e, s, 0, A, 0x100, 0xfb, 0x7ff8);
        csi_engine_call(e, s, 0, B, 0x200, 0x1fb, 0x7ef8);
        csi_engine_call(e, s, 0, B, 0x200, 0x1fb, 0x7df8);
        csi_engine_call(e, s, 0, C, 0x300, 0x2fb, 0x7cf8);
        rec_clear();
        csi_engine_ret(e, s, 0, 0x200, 0x7e00);
        EXPECT_EVENTS(EV_UNW(C, 0x300, 3), EV_RET(B, 0x200, 2));
        EXPECT_STACK(e, s, 2, U64S(0x200, 0x100), U64S(B, A), 2);
        csi_engine_free(e);
        e = NULL;
    }
done:
    csi_engine_free(e);
}

/* No frame has the target: no event, nothing popped, unmatched counted. */
static void t_unmatched_return(void)
{
    csi_engine *e = mk_rec_engine(false, false, 0, 0, 0);
    csi_stack_id id = tid(3, 3);
    csi_stack *s = csi_engine_stack(e, &id);

    csi_engine_ret(e, s, 0, 0x1234, 0x8000);      /* on an empty stack */
    EXPECT_NO_EVENTS();
    EXPECT_EMPTY(e, s);
    EXPECT_STATS(e, 0, 0, 0, 1);

    csi_engine_call(e, s, 0, 0xa0, 0x100, 0xfb, 0x7ff8);
    csi_engine_call(e, s, 0, 0xb0, 0x200, 0x1fb, 0x7ef8);
    rec_clear();
    csi_engine_ret(e, s, 0, 0xdead, 0x9000);
    EXPECT_NO_EVENTS();
    EXPECT_STACK(e, s, 2, U64S(0x200, 0x100), U64S(0xb0, 0xa0), 2);
    EXPECT_STATS(e, 2, 0, 0, 2);
    /* The stack still works. */
    csi_engine_ret(e, s, 0, 0x200, 0x7f00);
    EXPECT_EVENTS(EV_RET(0xb0, 0x200, 1));
    EXPECT_STATS(e, 2, 1, 0, 2);
done:
    csi_engine_free(e);
}

/* Without sp_resync a return searches only search_limit frames. */
static void t_search_limit(void)
{
    csi_engine *e = NULL;
    for (int resync = 0; resync < 2; resync++) {
        e = mk_rec_engine(resync, true, 0, 0, 4);
        csi_stack_id id = tid(4, 4);
        csi_stack *s = csi_engine_stack(e, &id);
        for (uint64_t i = 0; i < 6; i++) {  /* f0 .. f5, f5 on top */
            csi_engine_call(e, s, 0, 0xf0 + i, 0x100 * (i + 1), 0, 0x8000 - 0x100 * i - 8);
        }
        rec_clear();
        /* f1 is 5th from the top: beyond a limit of 4 unless sp_resync */
        csi_engine_ret(e, s, 0, 0x200, 0x8000 - 0x100 + 0);
        if (!resync) {
            EXPECT_NO_EVENTS();
            EXPECT_STATS(e, 6, 0, 0, 1);
            /* f2 is 4th from the top: found */
            csi_engine_ret(e, s, 0, 0x300, 0x8000 - 0x200);
            EXPECT_EVENTS(EV_UNW(0xf5, 0x600, 5), EV_UNW(0xf4, 0x500, 4),
                          EV_UNW(0xf3, 0x400, 3), EV_RET(0xf2, 0x300, 2));
            EXPECT_STATS(e, 6, 1, 3, 1);
        } else {
            EXPECT_EVENTS(EV_UNW(0xf5, 0x600, 5), EV_UNW(0xf4, 0x500, 4),
                          EV_UNW(0xf3, 0x400, 3), EV_UNW(0xf2, 0x300, 2),
                          EV_RET(0xf1, 0x200, 1));
            EXPECT_STATS(e, 6, 1, 4, 0);
        }
        csi_engine_free(e);
        e = NULL;
    }
done:
    csi_engine_free(e);
}

/* 1000 stacks, calls and returns interleaved; each keeps its own frames. */
static void t_many_stacks(void)
{
    enum { NS = 1000, ROUNDS = 3 };
    csi_engine *e = mk_rec_engine(false, false, 0, 0, 0);
    csi_stack **s = g_new0(csi_stack *, NS);
    csi_stack_id *ids = g_new0(csi_stack_id, NS);
    csi_engine_stats st;

    for (unsigned i = 0; i < NS; i++) {
        ids[i] = tid(i / 10, i);
        ids[i].kernel = i & 1;
        s[i] = csi_engine_stack(e, &ids[i]);
    }
    CHECK(csi_engine_stack_count(e) == NS, "stack_count %u", csi_engine_stack_count(e));
    for (unsigned r = 0; r < ROUNDS; r++) {
        for (unsigned i = 0; i < NS; i++) {
            uint64_t base = 0x100000 * (uint64_t)(i + 1);
            csi_engine_call(e, s[i], i % 4, base + r, base + 0x100 + r, 0, 0x8000 - 0x100 * r);
            const callstack_event *ev = rec_ev(rec.events->len - 1);
            CHECK(ev->depth == r + 1 && ev->func == base + r, "stack %u: event depth %" PRIu64,
                  i, ev->depth);
            CHECK(ev->where.sidFirst == ids[i].first && ev->where.sidSecond == ids[i].second &&
                  ev->where.isKernelMode == ids[i].kernel &&
                  ev->where.stackKind == STACK_THREADED, "stack %u: event has another id", i);
        }
    }
    rec_clear();
    for (unsigned i = 0; i < NS; i++) {
        uint64_t base = 0x100000 * (uint64_t)(i + 1);
        CHECK(csi_engine_stack(e, &ids[i]) == s[i], "stack %u looked up differently", i);
        EXPECT_STACK(e, s[i], 3, U64S(base + 0x102, base + 0x101, base + 0x100),
                     U64S(base + 2, base + 1, base), 3);
    }
    /* A return on one stack never matches another stack's frames. */
    csi_engine_ret(e, s[0], 0, 0x100000 * 2 + 0x102, 0);
    EXPECT_NO_EVENTS();
    /* Pop the top of every stack, odd ones first. */
    for (unsigned pass = 0; pass < 2; pass++) {
        for (unsigned i = 1 - pass; i < NS; i += 2) {
            uint64_t base = 0x100000 * (uint64_t)(i + 1);
            csi_engine_ret(e, s[i], 0, base + 0x102, 0);
            EXPECT_EVENTS(EV_RET(base + 2, base + 0x102, 2));
        }
    }
    for (unsigned i = 0; i < NS; i++) {
        uint64_t base = 0x100000 * (uint64_t)(i + 1);
        EXPECT_STACK(e, s[i], 2, U64S(base + 0x101, base + 0x100), U64S(base + 1, base), 2);
    }
    /* Ids that differ only in kind, kernel or instance are different stacks. */
    {
        csi_stack_id a = { 7, 7, STACK_ASID, false, 0 }, b = { 7, 7, STACK_ASID, true, 0 },
                    c = { 7, 7, STACK_HEURISTIC, false, 0 }, d = { 7, 7, STACK_ASID, false, 1 };
        csi_stack *sa = csi_engine_stack(e, &a), *sb = csi_engine_stack(e, &b),
                 *sc = csi_engine_stack(e, &c), *sd = csi_engine_stack(e, &d);
        CHECK(sd != sa && sd != sb && sd != sc && csi_engine_stack(e, &d) == sd,
              "an id differing only in instance is another stack");
        CHECK(sa != sb && sa != sc && sb != sc, "ids differing in kind/kernel share a stack");
        CHECK(csi_engine_stack_count(e) == NS + 4, "stack_count %u", csi_engine_stack_count(e));
        csi_engine_drop_stack(e, sa);
        csi_engine_drop_stack(e, sb);
        csi_engine_drop_stack(e, sc);
        csi_engine_drop_stack(e, sd);
    }
    /* Drop the even stacks (with frames on them): freed, no events. */
    for (unsigned i = 0; i < NS; i += 2) {
        csi_engine_drop_stack(e, s[i]);
        s[i] = NULL;
    }
    EXPECT_NO_EVENTS();
    CHECK(csi_engine_stack_count(e) == NS / 2, "after drop: stack_count %u",
          csi_engine_stack_count(e));
    for (unsigned i = 1; i < NS; i += 2) {
        uint64_t base = 0x100000 * (uint64_t)(i + 1);
        EXPECT_STACK(e, s[i], 2, U64S(base + 0x101, base + 0x100), U64S(base + 1, base), 2);
    }
    /* A dropped id comes back as a new, empty stack. */
    s[0] = csi_engine_stack(e, &ids[0]);
    EXPECT_EMPTY(e, s[0]);
    CHECK(csi_engine_stack_count(e) == NS / 2 + 1, "stack_count %u", csi_engine_stack_count(e));
    csi_engine_get_stats(e, &st);
    CHECK(st.stacks_created == NS + 4 + 1, "stacks_created %" PRIu64, st.stacks_created);
    for (unsigned i = 0; i < NS; i++) {
        if (s[i]) {
            csi_engine_drop_stack(e, s[i]);
        }
    }
    CHECK(csi_engine_stack_count(e) == 0, "stack_count %u after dropping all",
          csi_engine_stack_count(e));
done:
    g_free(s);
    g_free(ids);
    csi_engine_free(e);
}

/*
 * max_depth = 8: 20 calls. Depth keeps counting, at most 8 frames are
 * retained (the most recent ones); returns into forgotten frames are
 * unmatched (no event) but still bring the depth down.
 */
static void t_max_depth(void)
{
    enum { MAXD = 8, N = 20 };
    csi_engine *e = mk_rec_engine(false, false, MAXD, 0, 0);
    csi_stack_id id = tid(5, 5);
    csi_stack *s = csi_engine_stack(e, &id);
    uint64_t got[64];
    uint32_t retained = 0;

    for (uint64_t i = 0; i < N; i++) {
        csi_engine_call(e, s, 0, 0x1000 + i, 0x2000 + i, 0, 0x8000 - 0x10 * i);
        EXPECT_EVENTS(EV_CALL(0x1000 + i, 0x2000 + i, i + 1));
        CHECK(csi_engine_depth(e, s) == i + 1, "depth %" PRIu64 " after %" PRIu64 " calls",
              csi_engine_depth(e, s), i + 1);
        retained = csi_engine_callers(e, s, got, 64);
        CHECK(retained <= MAXD, "%u frames retained, max_depth %u", retained, MAXD);
        CHECK(retained >= MIN(i + 1, MAXD / 2), "only %u frames retained at depth %" PRIu64,
              retained, i + 1);
        for (uint32_t k = 0; k < retained; k++) {
            CHECK(got[k] == 0x2000 + i - k, "caller %u is " PX ", expected " PX, k, got[k],
                  0x2000 + i - k);
        }
    }
    {
        prog_point p;
        csi_engine_fill_prog_point(e, s, &p);
        CHECK(p.caller == 0x2000 + N - 1, "prog_point caller " PX, p.caller);
    }
    /* Returns in order: the retained frames return normally, the others are
     * forgotten: no event, counted unmatched, depth still decreases. */
    for (uint64_t i = N; i-- > 0;) {
        csi_engine_ret(e, s, 0, 0x2000 + i, 0x8000 - 0x10 * i + 8);
        if (i >= N - retained) {
            EXPECT_EVENTS(EV_RET(0x1000 + i, 0x2000 + i, i));
        } else {
            EXPECT_NO_EVENTS();
        }
        CHECK(csi_engine_depth(e, s) == i, "depth %" PRIu64 ", expected %" PRIu64,
              csi_engine_depth(e, s), i);
    }
    EXPECT_EMPTY(e, s);
    EXPECT_STATS(e, N, retained, 0, N - retained);
    /* Past the bottom: nothing forgotten any more, depth stays 0. */
    csi_engine_ret(e, s, 0, 0x1, 0);
    EXPECT_EMPTY(e, s);
done:
    csi_engine_free(e);
}

/*
 * x86 (ret_addr_on_stack): at a call, frames at or below the new sp are dead
 * and popped as unwound before the call event; a frame more than
 * resync_window below sp is on another stack region and kept.
 */
static void t_resync_at_call_x86(void)
{
    csi_engine *e = mk_rec_engine(true, true, 0, 0x1000, 0);
    csi_stack_id id = tid(6, 6);
    csi_stack *s = csi_engine_stack(e, &id);
    const uint64_t A = 0xa0, B = 0xb0, C = 0xc0, D = 0xd0, H = 0x50, G = 0x60;

    csi_engine_call(e, s, 0, A, 0x100, 0xfb, 0x7ff8);
    csi_engine_call(e, s, 0, B, 0x200, 0x1fb, 0x7ef8);
    csi_engine_call(e, s, 0, C, 0x300, 0x2fb, 0x7df8);
    EXPECT_EVENTS(EV_CALL(A, 0x100, 1), EV_CALL(B, 0x200, 2), EV_CALL(C, 0x300, 3));

    /* b and c returned unseen; a calls d from where it called b: c is below
     * the new sp, b's return address was just overwritten (same sp). */
    csi_engine_call(e, s, 0, D, 0x210, 0x20b, 0x7ef8);
    for (guint i = 0; i < rec.events->len; i++) {
        CHECK(rec_ev(i)->where.pc == D, "event %u pc " PX, i, rec_ev(i)->where.pc);
    }
    EXPECT_EVENTS(EV_UNW(C, 0x300, 2), EV_UNW(B, 0x200, 1), EV_CALL(D, 0x210, 2));
    EXPECT_STACK(e, s, 2, U64S(0x210, 0x100), U64S(D, A), 2);
    EXPECT_STATS(e, 4, 0, 2, 0);

    /* A nested call (lower sp) pops nothing. */
    csi_engine_call(e, s, 0, C, 0x310, 0x30b, 0x7e00);
    EXPECT_EVENTS(EV_CALL(C, 0x310, 3));
    csi_engine_ret(e, s, 0, 0x310, 0x7e08);
    EXPECT_EVENTS(EV_RET(C, 0x310, 2));

    /* A handler on a stack region far below (more than the window). */
    csi_engine_call(e, s, 0, H, 0x510, 0, 0x2000);
    EXPECT_EVENTS(EV_CALL(H, 0x510, 3));
    /* A call at a sp above d's frame: the top (h) is far below, so it is
     * kept, and so is everything under it. */
    csi_engine_call(e, s, 0, G, 0x610, 0, 0x7f00);
    EXPECT_EVENTS(EV_CALL(G, 0x610, 4));
    EXPECT_STACK(e, s, 4, U64S(0x610, 0x510, 0x210, 0x100), U64S(G, H, D, A), 4);

    /* Window boundary: exactly resync_window below is still dead, one more
     * byte is not. */
    csi_engine_call(e, s, 0, 0x70, 0x710, 0, 0x5000);
    csi_engine_call(e, s, 0, 0x80, 0x810, 0, 0x5000 + 0x1000);
    EXPECT_EVENTS(EV_CALL(0x70, 0x710, 5), EV_UNW(0x70, 0x710, 4), EV_CALL(0x80, 0x810, 5));
    csi_engine_call(e, s, 0, 0x90, 0x910, 0, 0x6000 + 0x1001);
    EXPECT_EVENTS(EV_CALL(0x90, 0x910, 6));
    EXPECT_STATS(e, 10, 1, 3, 0);
done:
    csi_engine_free(e);
}

/* Link-register architectures: a frame at exactly the new call's sp lives. */
static void t_resync_at_call_lr(void)
{
    csi_engine *e = mk_rec_engine(true, false, 0, 0, 0);
    csi_stack_id id = tid(7, 7);
    csi_stack *s = csi_engine_stack(e, &id);
    const uint64_t A = 0xa0, B = 0xb0, C = 0xc0, D = 0xd0;

    csi_engine_call(e, s, 0, A, 0x100, 0xfc, 0x8000);
    csi_engine_call(e, s, 0, B, 0x200, 0x1fc, 0x7f00);
    /* b calls c without moving sp: the callee's sp equals b's */
    csi_engine_call(e, s, 0, C, 0x300, 0x2fc, 0x7f00);
    EXPECT_EVENTS(EV_CALL(A, 0x100, 1), EV_CALL(B, 0x200, 2), EV_CALL(C, 0x300, 3));
    EXPECT_STACK(e, s, 3, U64S(0x300, 0x200, 0x100), U64S(C, B, A), 3);
    /* A return landing at the frame's own sp matches it. */
    csi_engine_ret(e, s, 0, 0x300, 0x7f00);
    EXPECT_EVENTS(EV_RET(C, 0x300, 2));
    /* A call from higher up: b is below the new sp and dead; a (sp equal) lives. */
    csi_engine_call(e, s, 0, D, 0x400, 0x3fc, 0x8000);
    EXPECT_EVENTS(EV_UNW(B, 0x200, 1), EV_CALL(D, 0x400, 2));
    EXPECT_STACK(e, s, 2, U64S(0x400, 0x100), U64S(D, A), 2);
    csi_engine_free(e);

    /* The same stream with ret_addr_on_stack: b dies at c's call. */
    e = mk_rec_engine(true, true, 0, 0, 0);
    s = csi_engine_stack(e, &id);
    csi_engine_call(e, s, 0, A, 0x100, 0xfc, 0x8000);
    csi_engine_call(e, s, 0, B, 0x200, 0x1fc, 0x7f00);
    csi_engine_call(e, s, 0, C, 0x300, 0x2fc, 0x7f00);
    EXPECT_EVENTS(EV_CALL(A, 0x100, 1), EV_CALL(B, 0x200, 2), EV_UNW(B, 0x200, 1),
                  EV_CALL(C, 0x300, 2));
done:
    csi_engine_free(e);
}

/* sp_resync on a return that matches nothing: frames below the landing sp
 * are unwound, the frame at exactly the landing sp is kept. */
static void t_resync_unmatched_return(void)
{
    csi_engine *e = mk_rec_engine(true, true, 0, 0x1000, 0);
    csi_stack_id id = tid(8, 8);
    csi_stack *s = csi_engine_stack(e, &id);
    const uint64_t A = 0xa0, B = 0xb0, C = 0xc0;

    csi_engine_call(e, s, 0, A, 0x100, 0xfb, 0x7ff8);
    csi_engine_call(e, s, 0, B, 0x200, 0x1fb, 0x7ef8);
    csi_engine_call(e, s, 0, C, 0x300, 0x2fb, 0x7df8);
    rec_clear();
    csi_engine_ret(e, s, 0, 0xdead, 0x7f00);
    for (guint i = 0; i < rec.events->len; i++) {
        CHECK(rec_ev(i)->where.pc == 0xdead, "event %u pc " PX, i, rec_ev(i)->where.pc);
    }
    EXPECT_EVENTS(EV_UNW(C, 0x300, 2), EV_UNW(B, 0x200, 1));
    EXPECT_STACK(e, s, 1, U64S(0x100), U64S(A), 1);
    EXPECT_STATS(e, 3, 0, 2, 1);
    /* Landing exactly at a's frame sp: a lives (a return is not a call). */
    csi_engine_ret(e, s, 0, 0xbeef, 0x7ff8);
    EXPECT_NO_EVENTS();
    EXPECT_STACK(e, s, 1, U64S(0x100), U64S(A), 1);
    /* A frame far below the landing sp (beyond the window) is kept. */
    csi_engine_call(e, s, 0, 0x50, 0x500, 0, 0x1000);
    rec_clear();
    csi_engine_ret(e, s, 0, 0xbeef, 0x7f00);
    EXPECT_NO_EVENTS();
    EXPECT_STACK(e, s, 2, U64S(0x500, 0x100), U64S(0x50, A), 2);
    EXPECT_STATS(e, 4, 0, 2, 3);
done:
    csi_engine_free(e);
}

/*
 * With sp_resync the search for the returnee stops at the first frame above
 * the landing sp: a frame with the right return address but above sp cannot
 * be the one returned from.
 */
static void t_resync_return_sp_bound(void)
{
    csi_engine *e = mk_rec_engine(true, true, 0, 0, 0);
    csi_stack_id id = tid(9, 9);
    csi_stack *s = csi_engine_stack(e, &id);
    csi_engine_call(e, s, 0, 0xa0, 0x100, 0xfb, 0x7ff8);
    csi_engine_call(e, s, 0, 0xb0, 0x200, 0x1fb, 0x7ef8);
    rec_clear();
    /* Return to a's ret address, but landing below a's frame. */
    csi_engine_ret(e, s, 0, 0x100, 0x7f00);
    EXPECT_EVENTS(EV_UNW(0xb0, 0x200, 1));
    EXPECT_STACK(e, s, 1, U64S(0x100), U64S(0xa0), 1);
    EXPECT_STATS(e, 2, 0, 1, 1);
    csi_engine_free(e);

    /* Without sp_resync the same return matches a. */
    e = mk_rec_engine(false, true, 0, 0, 0);
    s = csi_engine_stack(e, &id);
    csi_engine_call(e, s, 0, 0xa0, 0x100, 0xfb, 0x7ff8);
    csi_engine_call(e, s, 0, 0xb0, 0x200, 0x1fb, 0x7ef8);
    rec_clear();
    csi_engine_ret(e, s, 0, 0x100, 0x7f00);
    EXPECT_EVENTS(EV_UNW(0xb0, 0x200, 1), EV_RET(0xa0, 0x100, 0));
done:
    csi_engine_free(e);
}

/*
 * sp_resync_own (whole-system mode): kernel stacks use the stack pointer,
 * user (asid) stacks do not, in the same engine.
 */
static void t_resync_kernel_only(void)
{
    csi_engine_config cfg = { .sp_resync_own = true, .ret_addr_on_stack = true };
    set_lock_mode(&cfg);
    csi_engine *e = csi_engine_new(&cfg);
    csi_engine_subscribe(e, CSI_SUB_EVENT, FN(rec_event));
    csi_engine_subscribe(e, CSI_SUB_CALL, FN(rec_call));
    csi_engine_subscribe(e, CSI_SUB_RET, FN(rec_ret));
    rec_clear();
    csi_stack_id kid = { .second = 0x4000, .kind = STACK_ASID, .kernel = true };
    csi_stack_id uid = { .first = 0x1000, .kind = STACK_ASID, .kernel = false };
    csi_stack *k = csi_engine_stack(e, &kid), *u = csi_engine_stack(e, &uid);
    CHECK(k != u, "kernel and user ids must be different stacks");
    /* A deep frame left behind, then a call from higher up: on the kernel
     * stack the abandoned frame is unwound first. */
    csi_engine_call(e, k, 0, 0xa0, 0x100, 0xfb, 0x7e00);
    csi_engine_call(e, k, 0, 0xb0, 0x200, 0x1fb, 0x7f00);
    EXPECT_EVENTS(EV_CALL(0xa0, 0x100, 1), EV_UNW(0xa0, 0x100, 0), EV_CALL(0xb0, 0x200, 1));
    rec_clear();
    /* The same on the user stack keeps both (threads may share it). */
    csi_engine_call(e, u, 0, 0xa0, 0x100, 0xfb, 0x7e00);
    csi_engine_call(e, u, 0, 0xb0, 0x200, 0x1fb, 0x7f00);
    EXPECT_EVENTS(EV_CALL(0xa0, 0x100, 1), EV_CALL(0xb0, 0x200, 2));
done:
    csi_engine_free(e);
}

/* csi_engine_top and csi_engine_unwind_top (whole-system mode drops frames
 * found dead from the top): one unwound event per frame, and nothing when
 * the top is no longer the frame the caller looked at. */
static void t_unwind_top(void)
{
    csi_engine *e = mk_rec_engine(false, true, 0, 0, 0);
    csi_stack_id id = { .first = 0x1000, .kind = STACK_ASID };
    csi_stack *s = csi_engine_stack(e, &id);
    csi_frame top, old;
    CHECK(!csi_engine_top(e, s, &top), "an empty stack has no top");
    csi_engine_call(e, s, 0, 0xa0, 0x100, 0xfb, 0x7ff8);
    csi_engine_call(e, s, 0, 0xb0, 0x200, 0x1fb, 0x7ef8);
    REQUIRE(csi_engine_top(e, s, &top));
    CHECK(top.func == 0xb0 && top.ret_addr == 0x200 && top.sp == 0x7ef8, "top is b");
    old = top;
    rec_clear();
    CHECK(csi_engine_unwind_top(e, s, 0, &top, 0x1234), "b unwound");
    CHECK(!csi_engine_unwind_top(e, s, 0, &old, 0x1234), "b is gone: a stays");
    EXPECT_EVENTS(EV_UNW(0xb0, 0x200, 1));
    CHECK(rec_ev(0)->where.pc == 0x1234, "pc " PX, rec_ev(0)->where.pc);
    EXPECT_STACK(e, s, 1, U64S(0x100), U64S(0xa0), 1);
done:
    csi_engine_free(e);
}

static unsigned sub_a_n, sub_b_n;
static void sub_a(unsigned vcpu, const callstack_event *ev) { (void)vcpu; (void)ev; sub_a_n++; }
static void sub_b(unsigned vcpu, const callstack_event *ev) { (void)vcpu; (void)ev; sub_b_n++; }

static void t_subscribe(void)
{
    csi_engine *e = mk_engine(false, false, 0, 0, 0);
    csi_stack_id id = tid(10, 10);
    csi_stack *s = csi_engine_stack(e, &id);
    rec_clear();
    sub_a_n = sub_b_n = 0;

    CHECK(!csi_engine_has_subscribers(e), "has_subscribers with none");
    CHECK(csi_engine_subscribe(e, CSI_SUB_EVENT, FN(rec_event)), "subscribe failed");
    CHECK(csi_engine_has_subscribers(e), "has_subscribers false after subscribe");
    csi_engine_subscribe(e, CSI_SUB_EVENT, FN(rec_event));       /* again */
    CHECK(csi_engine_subscribe(e, CSI_SUB_CALL, FN(rec_call)), "subscribe call failed");
    csi_engine_subscribe(e, CSI_SUB_CALL, FN(rec_call));
    CHECK(csi_engine_subscribe(e, CSI_SUB_RET, FN(rec_ret)), "subscribe ret failed");
    csi_engine_subscribe(e, CSI_SUB_RET, FN(rec_ret));
    CHECK(!csi_engine_subscribe(e, CSI_SUB_EVENT, NULL), "subscribing NULL succeeded");
    CHECK(!csi_engine_subscribe(e, CSI_SUB_KINDS, FN(sub_a)), "subscribing kind KINDS succeeded");

    csi_engine_call(e, s, 0, 0xa0, 0x100, 0, 0);
    CHECK(rec.events->len == 1 && rec.calls->len == 1 && rec.rets->len == 0,
          "one call, added twice: %u events %u calls %u rets",
          rec.events->len, rec.calls->len, rec.rets->len);
    csi_engine_ret(e, s, 0, 0x100, 0);
    CHECK(rec.events->len == 2 && rec.calls->len == 1 && rec.rets->len == 1,
          "one ret, added twice: %u events %u calls %u rets",
          rec.events->len, rec.calls->len, rec.rets->len);

    /* Two different subscribers both receive. */
    CHECK(csi_engine_subscribe(e, CSI_SUB_EVENT, FN(sub_a)), "subscribe sub_a");
    CHECK(csi_engine_subscribe(e, CSI_SUB_EVENT, FN(sub_b)), "subscribe sub_b");
    csi_engine_call(e, s, 0, 0xa0, 0x100, 0, 0);
    CHECK(sub_a_n == 1 && sub_b_n == 1 && rec.events->len == 3, "a %u b %u rec %u",
          sub_a_n, sub_b_n, rec.events->len);

    /* Removing. */
    CHECK(csi_engine_unsubscribe(e, CSI_SUB_EVENT, FN(sub_a)), "unsubscribe present failed");
    CHECK(!csi_engine_unsubscribe(e, CSI_SUB_EVENT, FN(sub_a)), "unsubscribe absent succeeded");
    CHECK(!csi_engine_unsubscribe(e, CSI_SUB_CALL, FN(sub_b)),
          "unsubscribe from the wrong kind succeeded");
    CHECK(!csi_engine_unsubscribe(e, CSI_SUB_EVENT, NULL), "unsubscribe NULL succeeded");
    CHECK(!csi_engine_unsubscribe(e, CSI_SUB_KINDS, FN(sub_b)), "unsubscribe kind KINDS");
    csi_engine_ret(e, s, 0, 0x100, 0);
    CHECK(sub_a_n == 1 && sub_b_n == 2 && rec.events->len == 4, "after removing a: a %u b %u",
          sub_a_n, sub_b_n);

    CHECK(csi_engine_unsubscribe(e, CSI_SUB_EVENT, FN(rec_event)), "unsubscribe rec_event");
    CHECK(!csi_engine_unsubscribe(e, CSI_SUB_EVENT, FN(rec_event)),
          "a twice-added subscriber had to be removed twice");
    CHECK(csi_engine_unsubscribe(e, CSI_SUB_EVENT, FN(sub_b)), "unsubscribe sub_b");
    csi_engine_call(e, s, 0, 0xa0, 0x100, 0, 0);
    CHECK(rec.events->len == 4 && sub_b_n == 2 && rec.calls->len == 3,
          "after removing all event subscribers: %u events, %u calls",
          rec.events->len, rec.calls->len);
    CHECK(csi_engine_has_subscribers(e), "call/ret subscribers remain");
    CHECK(csi_engine_unsubscribe(e, CSI_SUB_CALL, FN(rec_call)), "unsubscribe rec_call");
    CHECK(csi_engine_unsubscribe(e, CSI_SUB_RET, FN(rec_ret)), "unsubscribe rec_ret");
    CHECK(!csi_engine_has_subscribers(e), "has_subscribers with none left");
    /* Re-adding after removal works. */
    CHECK(csi_engine_subscribe(e, CSI_SUB_RET, FN(rec_ret)), "re-subscribe");
    csi_engine_ret(e, s, 0, 0x100, 0);
    CHECK(rec.rets->len == 3 && rec.calls->len == 3, "re-subscribed: %u rets", rec.rets->len);
done:
    csi_engine_free(e);
}

/* Subscribers calling back into the engine. */
typedef struct snap {
    uint64_t depth;
    uint32_t n;
    uint64_t callers[8], funcs[8];
    prog_point pp;
} snap;

static struct {
    csi_engine *e;
    csi_stack *s;
    GArray *snaps;       /* snap, one per event */
    GArray *ret_depths;  /* uint64_t depth seen from on_ret */
    unsigned self_unsub_n;
    bool self_unsub_ok;
} re;

static void re_on_event(unsigned vcpu, const callstack_event *ev)
{
    (void)vcpu;
    (void)ev;
    snap sn;
    memset(&sn, 0, sizeof sn);
    sn.depth = csi_engine_depth(re.e, re.s);
    sn.n = csi_engine_callers(re.e, re.s, sn.callers, 8);
    csi_engine_functions(re.e, re.s, sn.funcs, 8);
    csi_engine_fill_prog_point(re.e, re.s, &sn.pp);
    /* table and stats locks too */
    csi_engine_stats st;
    csi_engine_get_stats(re.e, &st);
    (void)csi_engine_stack_count(re.e);
    (void)csi_engine_stack(re.e, &re.s->id);
    g_array_append_val(re.snaps, sn);
}

static void re_on_ret(unsigned vcpu, uint64_t func)
{
    (void)vcpu;
    (void)func;
    uint64_t d = csi_engine_depth(re.e, re.s);
    g_array_append_val(re.ret_depths, d);
}

static void re_self_unsub(unsigned vcpu, const callstack_event *ev)
{
    (void)vcpu;
    (void)ev;
    re.self_unsub_n++;
    re.self_unsub_ok = csi_engine_unsubscribe(re.e, CSI_SUB_EVENT, FN(re_self_unsub));
}

static void t_reentrant_subscriber(void)
{
    csi_engine *e = mk_rec_engine(true, true, 0, 0, 0);
    csi_stack_id id = tid(11, 11);
    csi_stack *s = csi_engine_stack(e, &id);
    const uint64_t A = 0xa0, B = 0xb0, C = 0xc0, D = 0xd0, E = 0xe0, F = 0xf0;
    re.e = e;
    re.s = s;
    re.snaps = g_array_new(FALSE, TRUE, sizeof(snap));
    re.ret_depths = g_array_new(FALSE, TRUE, sizeof(uint64_t));
    re.self_unsub_n = 0;
    re.self_unsub_ok = false;
    CHECK(csi_engine_subscribe(e, CSI_SUB_EVENT, FN(re_on_event)), "subscribe");
    CHECK(csi_engine_subscribe(e, CSI_SUB_RET, FN(re_on_ret)), "subscribe ret");
    CHECK(csi_engine_subscribe(e, CSI_SUB_EVENT, FN(re_self_unsub)), "subscribe self_unsub");

    csi_engine_call(e, s, 0, A, 0x100, 0, 0x7ff8);
    csi_engine_call(e, s, 0, B, 0x200, 0, 0x7ef8);
    csi_engine_call(e, s, 0, C, 0x300, 0, 0x7df8);
    csi_engine_call(e, s, 0, D, 0x400, 0, 0x7cf8);
    csi_engine_ret(e, s, 0, 0x200, 0x7f00);       /* unwinds d, c; b returns */
    csi_engine_call(e, s, 0, E, 0x500, 0, 0x7ef8);
    csi_engine_call(e, s, 0, F, 0x600, 0, 0x7ef8); /* e's return missed: e dead */
    csi_engine_ret(e, s, 0, 0xdead, 0x8000);      /* unmatched: f and a unwound */

    EXPECT_EVENTS(EV_CALL(A, 0x100, 1), EV_CALL(B, 0x200, 2), EV_CALL(C, 0x300, 3),
                  EV_CALL(D, 0x400, 4),
                  EV_UNW(D, 0x400, 3), EV_UNW(C, 0x300, 2), EV_RET(B, 0x200, 1),
                  EV_CALL(E, 0x500, 2),
                  EV_UNW(E, 0x500, 1), EV_CALL(F, 0x600, 2),
                  EV_UNW(F, 0x600, 1), EV_UNW(A, 0x100, 0));
    {
        /* The stack (callers, most recent first) after each event. */
        static const struct { uint32_t n; uint64_t c[4], f[4]; } want[] = {
            { 1, { 0x100 }, { 0xa0 } },
            { 2, { 0x200, 0x100 }, { 0xb0, 0xa0 } },
            { 3, { 0x300, 0x200, 0x100 }, { 0xc0, 0xb0, 0xa0 } },
            { 4, { 0x400, 0x300, 0x200, 0x100 }, { 0xd0, 0xc0, 0xb0, 0xa0 } },
            { 3, { 0x300, 0x200, 0x100 }, { 0xc0, 0xb0, 0xa0 } },
            { 2, { 0x200, 0x100 }, { 0xb0, 0xa0 } },
            { 1, { 0x100 }, { 0xa0 } },
            { 2, { 0x500, 0x100 }, { 0xe0, 0xa0 } },
            { 1, { 0x100 }, { 0xa0 } },
            { 2, { 0x600, 0x100 }, { 0xf0, 0xa0 } },
            { 1, { 0x100 }, { 0xa0 } },
            { 0, { 0 }, { 0 } },
        };
        CHECK(re.snaps->len == G_N_ELEMENTS(want), "%u snapshots", re.snaps->len);
        for (guint i = 0; i < re.snaps->len; i++) {
            const snap *sn = &g_array_index(re.snaps, snap, i);
            CHECK(sn->n == want[i].n && sn->depth == want[i].n,
                  "event %u: callback saw %u frames depth %" PRIu64 ", expected %u", i, sn->n,
                  sn->depth, want[i].n);
            for (uint32_t k = 0; k < sn->n; k++) {
                CHECK(sn->callers[k] == want[i].c[k] && sn->funcs[k] == want[i].f[k],
                      "event %u entry %u: " PX "/" PX, i, k, sn->callers[k], sn->funcs[k]);
            }
            CHECK(sn->pp.caller == (want[i].n ? want[i].c[0] : 0) && sn->pp.sidFirst == 11,
                  "event %u: prog_point caller " PX, i, sn->pp.caller);
        }
        static const uint64_t want_ret_depth[] = { 3, 2, 1, 1, 1, 0 };
        CHECK(re.ret_depths->len == G_N_ELEMENTS(want_ret_depth), "%u on_ret calls",
              re.ret_depths->len);
        for (guint i = 0; i < re.ret_depths->len; i++) {
            CHECK(g_array_index(re.ret_depths, uint64_t, i) == want_ret_depth[i],
                  "on_ret %u saw depth %" PRIu64, i, g_array_index(re.ret_depths, uint64_t, i));
        }
    }
    CHECK(re.self_unsub_n == 1 && re.self_unsub_ok,
          "a subscriber removing itself from its callback: %u deliveries", re.self_unsub_n);
done:
    csi_engine_free(e);
    g_array_free(re.snaps, TRUE);
    g_array_free(re.ret_depths, TRUE);
    memset(&re, 0, sizeof re);
}

/* ---- threads ------------------------------------------------------------ */

enum { MT_THREADS = 4, MT_PAIRS = 100000, MT_NEST = 4 };

static struct {
    uint64_t events, calls, rets, unwound, wrong_stack, churn;
    uint64_t per_vcpu[MT_THREADS];
    int stop;
} mt;

static void mt_on_event(unsigned vcpu, const callstack_event *ev)
{
    __atomic_add_fetch(&mt.events, 1, __ATOMIC_RELAXED);
    if (ev->unwound) {
        __atomic_add_fetch(&mt.unwound, 1, __ATOMIC_RELAXED);
    }
    if (vcpu >= MT_THREADS || ev->where.sidSecond != vcpu) {
        __atomic_add_fetch(&mt.wrong_stack, 1, __ATOMIC_RELAXED);
    } else {
        __atomic_add_fetch(&mt.per_vcpu[vcpu], 1, __ATOMIC_RELAXED);
    }
}

static void mt_on_call(unsigned vcpu, uint64_t func)
{
    (void)vcpu;
    (void)func;
    __atomic_add_fetch(&mt.calls, 1, __ATOMIC_RELAXED);
}

static void mt_on_ret(unsigned vcpu, uint64_t func)
{
    (void)vcpu;
    (void)func;
    __atomic_add_fetch(&mt.rets, 1, __ATOMIC_RELAXED);
}

static void mt_churn_cb(unsigned vcpu, const callstack_event *ev)
{
    (void)vcpu;
    (void)ev;
    __atomic_add_fetch(&mt.churn, 1, __ATOMIC_RELAXED);
}

typedef struct mt_arg {
    csi_engine *e;
    unsigned idx;
    uint64_t pairs;
    csi_stack_id id;     /* the stack to drive */
    uint64_t final_depth;
} mt_arg;

/* pairs call/ret pairs, MT_NEST deep at a time, x86-consistent sp. */
static gpointer mt_driver(gpointer p)
{
    mt_arg *a = p;
    csi_stack *s = csi_engine_stack(a->e, &a->id);
    uint64_t tag = (uint64_t)(a->idx + 1) << 32;
    for (uint64_t i = 0; i < a->pairs; i += MT_NEST) {
        for (uint64_t k = 0; k < MT_NEST; k++) {
            csi_engine_call(a->e, s, a->idx, tag | (0x1000 + k), tag | (0x2000 + k),
                           tag | (0x2000 + k - 5), 0x7fff0000 - 0x40 * (k + 1));
        }
        for (uint64_t k = MT_NEST; k-- > 0;) {
            csi_engine_ret(a->e, s, a->idx, tag | (0x2000 + k), 0x7fff0000 - 0x40 * (k + 1) + 8);
        }
    }
    a->final_depth = csi_engine_depth(a->e, s);
    return NULL;
}

static void t_threads(void)
{
    csi_engine *e = mk_engine(true, true, 0, 0, 0);
    mt_arg args[MT_THREADS];
    GThread *th[MT_THREADS];
    memset(&mt, 0, sizeof mt);
    csi_engine_subscribe(e, CSI_SUB_EVENT, FN(mt_on_event));
    csi_engine_subscribe(e, CSI_SUB_CALL, FN(mt_on_call));
    csi_engine_subscribe(e, CSI_SUB_RET, FN(mt_on_ret));
    for (unsigned i = 0; i < MT_THREADS; i++) {
        args[i] = (mt_arg){ .e = e, .idx = i, .pairs = MT_PAIRS, .id = tid(1, i) };
        th[i] = g_thread_new("driver", mt_driver, &args[i]);
    }
    for (unsigned i = 0; i < MT_THREADS; i++) {
        g_thread_join(th[i]);
    }
    const uint64_t total = (uint64_t)MT_THREADS * MT_PAIRS;
    CHECK(mt.events == 2 * total, "%" PRIu64 " events, expected %" PRIu64, mt.events, 2 * total);
    CHECK(mt.calls == total && mt.rets == total, "on_call %" PRIu64 " on_ret %" PRIu64,
          mt.calls, mt.rets);
    CHECK(mt.unwound == 0, "%" PRIu64 " unwound", mt.unwound);
    CHECK(mt.wrong_stack == 0, "%" PRIu64 " events carried another thread's stack id",
          mt.wrong_stack);
    for (unsigned i = 0; i < MT_THREADS; i++) {
        CHECK(mt.per_vcpu[i] == 2 * (uint64_t)MT_PAIRS, "thread %u: %" PRIu64 " events", i,
              mt.per_vcpu[i]);
        CHECK(args[i].final_depth == 0, "thread %u: final depth %" PRIu64, i,
              args[i].final_depth);
    }
    EXPECT_STATS(e, total, total, 0, 0);
    CHECK(csi_engine_stack_count(e) == MT_THREADS, "stack_count %u", csi_engine_stack_count(e));
done:
    csi_engine_free(e);
}

static gpointer mt_churner(gpointer p)
{
    csi_engine *e = p;
    for (unsigned i = 0; i < 20000 && !__atomic_load_n(&mt.stop, __ATOMIC_ACQUIRE); i++) {
        csi_engine_subscribe(e, CSI_SUB_EVENT, FN(mt_churn_cb));
        csi_engine_subscribe(e, CSI_SUB_CALL, FN(mt_on_ret));   /* any on_call_t */
        g_thread_yield();
        csi_engine_unsubscribe(e, CSI_SUB_EVENT, FN(mt_churn_cb));
        csi_engine_unsubscribe(e, CSI_SUB_CALL, FN(mt_on_ret));
    }
    return NULL;
}

/* Subscribers added and removed while events flow: the steady subscriber
 * still sees every event exactly once. */
static void t_threads_subscriber_churn(void)
{
    enum { DRIVERS = 2, PAIRS = 50000 };
    csi_engine *e = mk_engine(true, true, 0, 0, 0);
    mt_arg args[DRIVERS];
    GThread *th[DRIVERS];
    memset(&mt, 0, sizeof mt);
    csi_engine_subscribe(e, CSI_SUB_EVENT, FN(mt_on_event));
    GThread *churn = g_thread_new("churn", mt_churner, e);
    for (unsigned i = 0; i < DRIVERS; i++) {
        args[i] = (mt_arg){ .e = e, .idx = i, .pairs = PAIRS, .id = tid(1, i) };
        th[i] = g_thread_new("driver", mt_driver, &args[i]);
    }
    for (unsigned i = 0; i < DRIVERS; i++) {
        g_thread_join(th[i]);
    }
    __atomic_store_n(&mt.stop, 1, __ATOMIC_RELEASE);
    g_thread_join(churn);
    CHECK(mt.events == 2ull * DRIVERS * PAIRS, "steady subscriber saw %" PRIu64 " events",
          mt.events);
    CHECK(mt.wrong_stack == 0, "events with another stack id");
    CHECK(mt.churn <= mt.events, "churning subscriber saw more events than there were");
done:
    csi_engine_free(e);
}

/* Two threads on one shared stack (asid-style): interleavings make frames
 * pop in odd ways, but each pop is one RET event and nothing crashes. */
static void t_threads_shared_stack(void)
{
    enum { DRIVERS = 2, PAIRS = 50000 };
    csi_engine *e = mk_engine(false, false, 0, 0, 0);
    mt_arg args[DRIVERS];
    GThread *th[DRIVERS];
    csi_stack_id id = { .first = 0x42, .kind = STACK_ASID };
    csi_engine_set_concurrent(e, true);   /* (as the plugin does before a thread starts) */
    memset(&mt, 0, sizeof mt);
    csi_engine_subscribe(e, CSI_SUB_EVENT, FN(mt_on_event));
    csi_engine_subscribe(e, CSI_SUB_CALL, FN(mt_on_call));
    csi_engine_subscribe(e, CSI_SUB_RET, FN(mt_on_ret));
    for (unsigned i = 0; i < DRIVERS; i++) {
        args[i] = (mt_arg){ .e = e, .idx = i, .pairs = PAIRS, .id = id };
        th[i] = g_thread_new("driver", mt_driver, &args[i]);
    }
    for (unsigned i = 0; i < DRIVERS; i++) {
        g_thread_join(th[i]);
    }
    csi_stack *s = csi_engine_stack(e, &id);
    uint64_t depth = csi_engine_depth(e, s);
    csi_engine_stats st;
    csi_engine_get_stats(e, &st);
    CHECK(csi_engine_stack_count(e) == 1, "stack_count %u", csi_engine_stack_count(e));
    CHECK(st.calls == (uint64_t)DRIVERS * PAIRS && mt.calls == st.calls,
          "calls %" PRIu64 " on_call %" PRIu64, st.calls, mt.calls);
    CHECK(mt.rets == st.returns + st.unwound, "on_ret %" PRIu64 " != returns+unwound %" PRIu64,
          mt.rets, st.returns + st.unwound);
    CHECK(mt.events == mt.calls + mt.rets, "events %" PRIu64 " != calls+rets", mt.events);
    CHECK(st.calls == st.returns + st.unwound + depth,
          "unbalanced: calls %" PRIu64 " returns %" PRIu64 " unwound %" PRIu64 " depth %" PRIu64,
          st.calls, st.returns, st.unwound, depth);
done:
    csi_engine_free(e);
}

/*
 * A stack its owner changes without the lock, read from another thread (as
 * get_callers for another vCPU does): every snapshot the reader gets must be
 * one the stack really had, including while frames are reallocated (deep
 * excursions grow and shrink the array; ASan would see a read of freed
 * frames).
 */
enum { OWN_CYCLES = 60, OWN_DEEP = 3000, OWN_READ = 4096 };

typedef struct own_arg {
    csi_engine *e;
    csi_stack *s;
    int done;
    uint64_t snapshots, torn;
    uint64_t cycles;   /* how many the writer made */
} own_arg;

static gpointer own_writer(gpointer p)
{
    own_arg *a = p;
    /* At least OWN_CYCLES, and on until the reader has taken a few
     * snapshots: on a loaded machine it may not run before the writer is
     * done otherwise (bounded, in case it never runs at all). */
    unsigned c;
    for (c = 0; c < OWN_CYCLES || (__atomic_load_n(&a->snapshots, __ATOMIC_RELAXED) < 10 &&
                                   c < 100 * OWN_CYCLES); c++) {
        for (uint64_t k = 0; k < OWN_DEEP; k++) {
            csi_engine_call(a->e, a->s, 0, 0x20000 + k, 0x10000 + k, 0, 0x7fff0000 - 16 * (k + 1));
        }
        for (uint64_t k = OWN_DEEP; k-- > 0;) {
            csi_engine_ret(a->e, a->s, 0, 0x10000 + k, 0x7fff0000 - 16 * (k + 1) + 8);
        }
    }
    a->cycles = c;
    __atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static gpointer own_reader(gpointer p)
{
    own_arg *a = p;
    uint64_t *callers = g_new(uint64_t, OWN_READ), *funcs = g_new(uint64_t, OWN_READ);
    while (!__atomic_load_n(&a->done, __ATOMIC_ACQUIRE)) {
        uint32_t m = csi_engine_callers(a->e, a->s, callers, OWN_READ);
        for (uint32_t i = 0; i < m; i++) {
            if (callers[i] != 0x10000 + (m - 1 - i)) {
                a->torn++;
                break;
            }
        }
        uint32_t n = csi_engine_functions(a->e, a->s, funcs, OWN_READ);
        for (uint32_t i = 0; i < n; i++) {
            if (funcs[i] != 0x20000 + (n - 1 - i)) {
                a->torn++;
                break;
            }
        }
        __atomic_add_fetch(&a->snapshots, 1, __ATOMIC_RELAXED);
    }
    g_free(callers);
    g_free(funcs);
    return NULL;
}

static void t_owned_stack_reader(void)
{
    csi_engine_config cfg = { .sp_resync = true, .ret_addr_on_stack = true,
                             .threaded_owned = true };
    csi_engine *e = csi_engine_new(&cfg);
    csi_stack_id id = tid(1, 1);
    own_arg a = { .e = e, .s = csi_engine_stack(e, &id) };
    CHECK(a.s->owned, "a threaded stack is not owned with threaded_owned set");
    GThread *r = g_thread_new("reader", own_reader, &a);
    GThread *w = g_thread_new("writer", own_writer, &a);
    g_thread_join(w);
    g_thread_join(r);
    CHECK(a.torn == 0, "%" PRIu64 " of %" PRIu64 " snapshots were not a state the stack had",
          a.torn, a.snapshots);
    CHECK(a.snapshots > 0, "the reader never read");
    EXPECT_STATS(e, a.cycles * OWN_DEEP, a.cycles * OWN_DEEP, 0, 0);
    EXPECT_EMPTY(e, a.s);
done:
    csi_engine_free(e);
}

/* ---- fork --------------------------------------------------------------- */

static void t_after_fork(void)
{
    csi_engine *e = mk_rec_engine(false, false, 0, 0, 0);
    csi_stack_id ida = tid(100, 1), idb = tid(100, 2), idc = tid(100, 3), nid = tid(200, 1);
    csi_stack *a = csi_engine_stack(e, &ida), *b = csi_engine_stack(e, &idb),
             *c = csi_engine_stack(e, &idc);
    csi_engine_call(e, a, 0, 0xa0, 0x100, 0, 0);
    csi_engine_call(e, a, 0, 0xa1, 0x101, 0, 0);
    csi_engine_call(e, b, 0, 0xb0, 0x200, 0, 0);
    csi_engine_call(e, c, 0, 0xc0, 0x300, 0, 0);
    rec_clear();

    csi_engine_after_fork(e, a, &nid);
    EXPECT_NO_EVENTS();
    CHECK(csi_engine_stack_count(e) == 1, "stack_count %u", csi_engine_stack_count(e));
    CHECK(csi_engine_stack(e, &nid) == a, "the kept stack is not under the new id");
    CHECK(csi_stack_id_equal(&a->id, &nid), "kept stack's id not updated");
    EXPECT_STACK(e, a, 2, U64S(0x101, 0x100), U64S(0xa1, 0xa0), 2);
    /* It works, reports the new id, and subscribers survived. */
    csi_engine_ret(e, a, 0, 0x101, 0);
    CHECK(rec.events->len == 1 && rec_ev(0)->where.sidFirst == 200 &&
          rec_ev(0)->where.sidSecond == 1, "event after fork has the old id");
    EXPECT_EVENTS(EV_RET(0xa1, 0x101, 1));
    /* The old ids are gone: looking one up makes a new empty stack. */
    csi_stack *b2 = csi_engine_stack(e, &idb);
    EXPECT_EMPTY(e, b2);
    CHECK(csi_engine_stack_count(e) == 2, "stack_count %u", csi_engine_stack_count(e));

    /* keep = NULL: everything goes. */
    csi_engine_after_fork(e, NULL, NULL);
    CHECK(csi_engine_stack_count(e) == 0, "stack_count %u after after_fork(NULL)",
          csi_engine_stack_count(e));
done:
    csi_engine_free(e);
}

#ifdef G_OS_UNIX
/* A thread that holds a lock until told to let go. */
typedef struct holder {
    csi_stack *target;
    GMutex m;
    GCond c;
    bool held, release;
} holder;

static gpointer holder_fn(gpointer p)
{
    holder *h = p;
    csi_stack_lock(h->target);
    g_mutex_lock(&h->m);
    h->held = true;
    g_cond_broadcast(&h->c);
    while (!h->release) {
        g_cond_wait(&h->c, &h->m);
    }
    g_mutex_unlock(&h->m);
    csi_stack_unlock(h->target);
    return NULL;
}

/*
 * fork() while another thread holds the lock of stack `held` (a thread of
 * the guest in the middle of a push or pop); in the child, after_fork keeps
 * `keep` and must leave a usable engine. Returns the child's wait status.
 */
static int fork_with_lock_held(csi_engine *e, csi_stack *keep, csi_stack *held,
                               const csi_stack_id *nid)
{
    holder h = { .target = held };
    g_mutex_init(&h.m);
    g_cond_init(&h.c);
    GThread *t = g_thread_new("holder", holder_fn, &h);
    g_mutex_lock(&h.m);
    while (!h.held) {
        g_cond_wait(&h.c, &h.m);
    }
    g_mutex_unlock(&h.m);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int rc = 0;
        csi_engine_after_fork(e, keep, nid);
        if (csi_engine_stack_count(e) != 1) {
            rc = 10;
        } else if (csi_engine_stack(e, nid) != keep) {
            rc = 11;
        } else {
            uint64_t d = csi_engine_depth(e, keep);
            csi_engine_call(e, keep, 0, 0xf0, 0xf1, 0, 0);
            csi_engine_ret(e, keep, 0, 0xf1, 0);
            if (csi_engine_depth(e, keep) != d) {
                rc = 12;
            }
        }
        _exit(rc);
    }
    int status = -1;
    if (pid > 0) {
        while (waitpid(pid, &status, 0) < 0) {
        }
    }
    g_mutex_lock(&h.m);
    h.release = true;
    g_cond_broadcast(&h.c);
    g_mutex_unlock(&h.m);
    g_thread_join(t);
    g_mutex_clear(&h.m);
    g_cond_clear(&h.c);
    return status;
}

static bool child_ok(int line, int status)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return true;
    }
    if (WIFSIGNALED(status)) {
        fail_at(line, "the child died of signal %d (%s) in or after csi_engine_after_fork",
                WTERMSIG(status), strsignal(WTERMSIG(status)));
    } else {
        fail_at(line, "the child failed (wait status 0x%x)", (unsigned)status);
    }
    return false;
}

/* The kept stack's lock was held by another thread at the fork. */
static void t_after_fork_keep_locked(void)
{
    csi_engine *e = mk_engine(false, false, 0, 0, 0);
    csi_stack_id ida = tid(300, 1), idb = tid(300, 2), nid = tid(301, 1);
    csi_stack *a = csi_engine_stack(e, &ida), *b = csi_engine_stack(e, &idb);
    csi_engine_call(e, a, 0, 0xa0, 0x100, 0, 0);
    csi_engine_call(e, b, 0, 0xb0, 0x200, 0, 0);
    REQUIRE(child_ok(__LINE__, fork_with_lock_held(e, a, a, &nid)));
done:
    csi_engine_free(e);
}

/*
 * Another (dropped) stack's lock was held by a thread at the fork: that
 * thread does not exist in the child, so after_fork must not trip over the
 * lock it left held ("Locks are re-initialised, since another thread may
 * have held one at the fork").
 */
static void t_after_fork_other_locked(void)
{
    csi_engine *e = mk_engine(false, false, 0, 0, 0);
    csi_stack_id ida = tid(400, 1), idb = tid(400, 2), nid = tid(401, 1);
    csi_stack *a = csi_engine_stack(e, &ida), *b = csi_engine_stack(e, &idb);
    csi_engine_call(e, a, 0, 0xa0, 0x100, 0, 0);
    csi_engine_call(e, b, 0, 0xb0, 0x200, 0, 0);
    REQUIRE(child_ok(__LINE__, fork_with_lock_held(e, a, b, &nid)));
done:
    csi_engine_free(e);
}
#endif

/* ---- a random stream against a reference model -------------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/*
 * Without sp_resync: a call pushes; a return to T leaves the nearest frame
 * (within search_limit from the top) whose ret_addr is T, every frame above
 * it unwound; otherwise nothing happens and the return is unmatched. Return
 * addresses come from a small pool, so recursion-like duplicates abound.
 */
static void t_random_model(void)
{
    enum { OPS = 50000, LIMIT = 16, POOL = 12 };
    csi_engine *e = mk_rec_engine(false, false, 0, 0, LIMIT);
    csi_stack_id id = tid(12, 12);
    csi_stack *s = csi_engine_stack(e, &id);
    GArray *m = g_array_new(FALSE, FALSE, sizeof(csi_frame));   /* the model */
    GArray *want = g_array_new(FALSE, FALSE, sizeof(exp_ev));
    uint64_t n_calls = 0, n_rets = 0, n_unw = 0, n_unm = 0;
    rng_state = 12345;

    for (unsigned op = 0; op < OPS; op++) {
        uint64_t r = rng() % 100;
        g_array_set_size(want, 0);
        bool call = m->len == 0 ? r < 70 : m->len > 200 ? r < 20 : r < 50;
        if (call) {
            csi_frame f = { .func = 0x1000 + rng() % POOL, .ret_addr = 0x2000 + rng() % POOL,
                           .call_site = 0x3000 + op, .sp = 0 };
            g_array_append_val(m, f);
            exp_ev x = EV_CALL(f.func, f.ret_addr, m->len);
            g_array_append_val(want, x);
            n_calls++;
            csi_engine_call(e, s, 0, f.func, f.ret_addr, f.call_site, f.sp);
        } else {
            uint64_t t, q = rng() % 100;
            if (m->len && q < 55) {
                t = g_array_index(m, csi_frame, m->len - 1).ret_addr;
            } else if (m->len && q < 75) {
                t = g_array_index(m, csi_frame, rng() % m->len).ret_addr;
            } else if (q < 85) {
                t = 0xdead;
            } else {
                t = 0x2000 + rng() % POOL;
            }
            int64_t idx = -1;
            for (uint32_t i = 0; i < MIN(m->len, (guint)LIMIT); i++) {
                if (g_array_index(m, csi_frame, m->len - 1 - i).ret_addr == t) {
                    idx = i;
                    break;
                }
            }
            if (idx < 0) {
                n_unm++;
            }
            for (int64_t i = 0; i <= idx; i++) {
                csi_frame f = g_array_index(m, csi_frame, m->len - 1);
                g_array_set_size(m, m->len - 1);
                exp_ev x = { CALLSTACK_EVENT_RET, i != idx, f.func, f.ret_addr, m->len };
                g_array_append_val(want, x);
                if (i == idx) {
                    n_rets++;
                } else {
                    n_unw++;
                }
            }
            csi_engine_ret(e, s, 0, t, 0);
        }
        if (!expect_events(__LINE__, (const exp_ev *)(void *)want->data, want->len)) {
            size_t l = strlen(t_msg);
            snprintf(t_msg + l, sizeof t_msg - l, " (at op %u)", op);
            goto done;
        }
        if (op % 97 == 0 || m->len == 0) {
            uint64_t cl[256], fn[256];
            for (guint i = 0; i < m->len && i < 256; i++) {
                cl[i] = g_array_index(m, csi_frame, m->len - 1 - i).ret_addr;
                fn[i] = g_array_index(m, csi_frame, m->len - 1 - i).func;
            }
            REQUIRE(expect_stack(__LINE__, e, s, m->len, cl, fn, MIN(m->len, 256u)));
        }
    }
    EXPECT_STATS(e, n_calls, n_rets, n_unw, n_unm);
    CHECK(n_unw > 100 && n_unm > 100 && n_rets > 1000, "stream too tame: %" PRIu64 " unwound %"
          PRIu64 " unmatched %" PRIu64 " returns", n_unw, n_unm, n_rets);
done:
    g_array_free(m, TRUE);
    g_array_free(want, TRUE);
    csi_engine_free(e);
}

/* ---- heuristic stacks --------------------------------------------------- */

static csi_engine *mk_heur_engine(uint64_t distance, uint32_t max_stacks)
{
    csi_engine_config cfg = {
        .sp_resync = true,
        .ret_addr_on_stack = true,
        .stack_distance = distance,
        .max_heuristic_stacks = max_stacks,
    };
    set_lock_mode(&cfg);
    return csi_engine_new(&cfg);
}

/* Nearby sps stay on one stack; a far jump makes another; coming back finds
 * the first again, by range (a longjmp far up the same stack stays on it). */
static void t_heuristic_switching(void)
{
    csi_engine *e = mk_heur_engine(0x1000, 16);
    csi_stack_id space = { .first = 42, .kind = STACK_HEURISTIC };
    csi_stack *a = csi_engine_heuristic_stack(e, &space, 0x7000000, NULL);
    CHECK(a && a->id.second == 0x7000000 && a->id.first == 42 && a->id.kind == STACK_HEURISTIC,
          "first stack id");
    /* the stack grows down gradually by far more than the distance */
    csi_stack *cur = a;
    for (uint64_t sp = 0x7000000; sp > 0x6f00000; sp -= 0x800) {
        cur = csi_engine_heuristic_stack(e, &space, sp, cur);
        CHECK(cur == a, "gradual growth left the stack at sp " PX, sp);
    }
    /* a jump back up within the range (longjmp) stays */
    CHECK(csi_engine_heuristic_stack(e, &space, 0x6ffff00, cur) == a, "longjmp up left the stack");
    /* a far jump down is another stack (coroutine) */
    csi_stack *b = csi_engine_heuristic_stack(e, &space, 0x1000000, a);
    CHECK(b && b != a && b->id.second == 0x1000000, "far jump did not create a stack");
    /* and back */
    CHECK(csi_engine_heuristic_stack(e, &space, 0x6fff000, b) == a, "did not find the first again");
    CHECK(csi_engine_heuristic_stack(e, &space, 0x1000100, a) == b, "did not find the second again");
    /* another address space never shares */
    csi_stack_id other = { .first = 43, .kind = STACK_HEURISTIC };
    csi_stack *c = csi_engine_heuristic_stack(e, &other, 0x6fff000, NULL);
    CHECK(c != a && c != b && c->id.first == 43, "address spaces mixed");
    CHECK(csi_engine_stack_count(e) == 3, "%u stacks", csi_engine_stack_count(e));
done:
    csi_engine_free(e);
}

/* Beyond max_spaces address spaces, the least recently used one no vCPU is
 * on goes with all its stacks (whole-system mode: dead processes). */
static void t_heuristic_space_bound(void)
{
    csi_engine_config cfg = { .sp_resync = true, .stack_distance = 0x1000,
                              .max_heuristic_stacks = 16, .max_spaces = 3 };
    set_lock_mode(&cfg);
    csi_engine *e = csi_engine_new(&cfg);
    csi_stack *slot = NULL, *held = NULL;
    csi_stack *first = NULL;
    for (uint64_t as = 1; as <= 10; as++) {
        csi_stack_id space = { .first = as, .kind = STACK_HEURISTIC };
        /* two stacks per space; the vCPU ends on the second */
        csi_engine_heuristic_switch(e, &space, 0x7000000, &slot);
        csi_engine_heuristic_switch(e, &space, 0x1000000, &slot);
        if (as == 1) {
            first = slot;
            /* another vCPU stays on space 1: it is never evicted */
            held = NULL;
            csi_engine_heuristic_switch(e, &space, 0x7000000, &held);
        }
        CHECK(csi_engine_stack_count(e) <= 2 * 3 + 2, "%u stacks after %" PRIu64 " spaces",
              csi_engine_stack_count(e), as);
    }
    csi_stack_id one = { .first = 1, .kind = STACK_HEURISTIC };
    CHECK(csi_engine_heuristic_switch(e, &one, 0x7000000, &held) == held, "held space evicted");
    (void)first;
    csi_stack_id nine = { .first = 9, .kind = STACK_HEURISTIC }, two = { .first = 2, .kind = STACK_HEURISTIC };
    unsigned before = csi_engine_stack_count(e);
    csi_stack *s9 = NULL;
    csi_engine_heuristic_switch(e, &nine, 0x1000000, &s9);
    CHECK(csi_engine_stack_count(e) == before, "space 9 was evicted though recent");
    csi_stack *s2 = NULL;
    csi_engine_heuristic_switch(e, &two, 0x1000000, &s2);
    CHECK(s2 && csi_engine_depth(e, s2) == 0, "space 2 came back");
done:
    csi_engine_free(e);
}

/* No wrap-around at either end of the address space. */
static void t_heuristic_edges(void)
{
    csi_engine *e = mk_heur_engine(0x10000, 16);
    csi_stack_id space = { .first = 1, .kind = STACK_HEURISTIC };
    csi_stack *top = csi_engine_heuristic_stack(e, &space, UINT64_MAX - 8, NULL);
    CHECK(csi_engine_heuristic_stack(e, &space, UINT64_MAX, top) == top, "top edge");
    csi_stack *low = csi_engine_heuristic_stack(e, &space, 8, top);
    CHECK(low != top, "sp 8 joined the stack at the top of the address space");
    CHECK(csi_engine_heuristic_stack(e, &space, 0, low) == low, "bottom edge");
    CHECK(csi_engine_heuristic_stack(e, &space, UINT64_MAX - 0x100, low) == top, "back to top");
    /* and events on them work */
    csi_engine_call(e, top, 0, 0x10, 0x20, 0x1c, UINT64_MAX - 0x200);
    csi_engine_ret(e, top, 0, 0x20, UINT64_MAX - 0x1f8);
    CHECK(csi_engine_depth(e, top) == 0, "call/ret near the top of the address space");
done:
    csi_engine_free(e);
}

/* At most max_stacks per address space; the least recently used stack that
 * no vCPU is on goes first; a stack in use is never freed. */
static void t_heuristic_bound(void)
{
    csi_engine *e = mk_heur_engine(0x1000, 4);
    csi_stack_id space = { .first = 7, .kind = STACK_HEURISTIC };
    csi_stack *held = csi_engine_heuristic_stack(e, &space, 0x100000, NULL);   /* vCPU 0 stays */
    csi_stack *cur = NULL;
    for (uint64_t i = 1; i <= 50; i++) {
        cur = csi_engine_heuristic_stack(e, &space, 0x100000 + i * 0x100000, cur);
        CHECK(csi_engine_stack_count(e) <= 4, "%u stacks after %" PRIu64, csi_engine_stack_count(e), i);
    }
    /* `held` is still the stack of its vCPU and still usable */
    CHECK(csi_engine_heuristic_stack(e, &space, 0x100000, held) == held, "held stack was evicted");
    csi_engine_release_stack(e, held);
    for (uint64_t i = 51; i <= 60; i++) {
        cur = csi_engine_heuristic_stack(e, &space, 0x100000 + i * 0x100000, cur);
    }
    CHECK(csi_engine_stack_count(e) <= 4, "%u stacks", csi_engine_stack_count(e));
done:
    csi_engine_free(e);
}

/* ---- whole-system stacks: bounded per class ------------------------------ */

static csi_engine *mk_bounded_engine(uint32_t max_spaces)
{
    csi_engine_config cfg = { .sp_resync_own = true, .ret_addr_on_stack = true,
                             .max_spaces = max_spaces };
    set_lock_mode(&cfg);
    return csi_engine_new(&cfg);
}

static csi_stack_id user_space(uint64_t asid)
{
    csi_stack_id id = { .first = asid, .kind = STACK_ASID };
    return id;
}

static csi_stack_id kernel_stack(uint64_t region)
{
    csi_stack_id id = { .second = region, .kind = STACK_ASID, .kernel = true };
    return id;
}

/* At most max_spaces user and max_spaces kernel stacks; the least recently
 * used one no vCPU is on goes; a vCPU's current stack (frames and all) is
 * never evicted; one class never evicts the other. */
static void t_bounded_spaces(void)
{
    csi_engine *e = mk_bounded_engine(4);
    csi_stack *vcpu0 = NULL, *vcpu1 = NULL;
    csi_stack_id id = user_space(0x1000);
    csi_stack *held = csi_engine_bounded_switch(e, &id, &vcpu0);
    CHECK(held && vcpu0 == held, "switch did not publish the stack");
    csi_engine_call(e, held, 0, 0x10, 0x20, 0x1c, 0x7000);
    id = kernel_stack(0xffff0000);
    csi_stack *kheld = csi_engine_bounded_switch(e, &id, &vcpu1);
    csi_engine_call(e, kheld, 1, 0x30, 0x40, 0x3c, 0xffff3000);
    /* vCPU 1 leaves its kernel stack for ever newer processes */
    for (uint64_t i = 1; i <= 50; i++) {
        id = user_space(0x1000 + i * 0x1000);
        csi_engine_bounded_switch(e, &id, &vcpu1);
        CHECK(csi_engine_stack_count(e) <= 4 + 1, "%u stacks after %" PRIu64 " processes",
              csi_engine_stack_count(e), i);
    }
    CHECK(vcpu0 == held && csi_engine_depth(e, held) == 1, "vCPU 0's stack was evicted");
    /* the kernel stack vCPU 1 left was not evicted by user stacks */
    id = kernel_stack(0xffff0000);
    CHECK(csi_engine_bounded_switch(e, &id, &vcpu1) == kheld && csi_engine_depth(e, kheld) == 1,
          "a user stack evicted a kernel stack");
    for (uint64_t i = 1; i <= 50; i++) {
        id = kernel_stack(0xffff0000 + i * 0x4000);
        csi_engine_bounded_switch(e, &id, &vcpu1);
    }
    CHECK(csi_engine_stack_count(e) <= 4 + 4, "%u stacks", csi_engine_stack_count(e));
    CHECK(vcpu0 == held && csi_engine_depth(e, held) == 1, "vCPU 0's stack was evicted");

    /* Least recently used first: user stacks a, b, c (with held: 4); touch a,
     * then a new one evicts b, the least recently used. */
    csi_stack *abc[3];
    for (int i = 0; i < 3; i++) {
        id = user_space(0x100000 + (uint64_t)i * 0x1000);
        abc[i] = csi_engine_bounded_switch(e, &id, &vcpu1);
        csi_engine_call(e, abc[i], 1, 0x50, 0x60, 0x5c, 0x7000);
    }
    id = user_space(0x100000);
    CHECK(csi_engine_bounded_switch(e, &id, &vcpu1) == abc[0], "a was not kept");
    id = user_space(0x200000);
    csi_engine_bounded_switch(e, &id, &vcpu1);
    for (int i = 0; i < 3; i++) {
        id = user_space(0x100000 + (uint64_t)i * 0x1000);
        csi_stack *s = csi_engine_bounded_switch(e, &id, &vcpu1);
        /* (each switch here creates at most one, evicting another) */
        if (i == 0) {
            CHECK(csi_engine_depth(e, s) == 1, "a, used recently, lost its frame");
        } else if (i == 1) {
            CHECK(csi_engine_depth(e, s) == 0, "b, the least recently used, kept its frame");
        }
    }
    /* with every stack of a class in use, the bound is the vCPU count */
    csi_engine_release_stack(e, vcpu1);
    vcpu1 = NULL;
    csi_engine_stats st;
    csi_engine_get_stats(e, &st);
    CHECK(st.calls == 2 + 3, "%" PRIu64 " calls counted (evicted stacks' included)", st.calls);
done:
    csi_engine_free(e);
}

/* A reader pinning a vCPU's current stack (the API from another thread)
 * while that vCPU goes through new processes, evicting old ones: the stack
 * it reads is never freed under it (run under a sanitizer or valgrind to
 * see a use after free; here: the depth read is the one pushed). */
typedef struct pin_reader {
    csi_engine *e;
    csi_stack **slot;
    bool stop;             /* atomic */
    uint64_t reads, bad;
} pin_reader;

static gpointer pin_reader_main(gpointer p)
{
    pin_reader *r = p;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        csi_stack *s = csi_engine_pin(r->e, r->slot);
        if (s) {
            uint64_t d = csi_engine_depth(r->e, s);
            uint64_t callers[4];
            uint32_t n = csi_engine_callers(r->e, s, callers, 4);
            if (d > 1 || n > 1 || (n == 1 && callers[0] != 0x20)) {
                r->bad++;
            }
            r->reads++;
        }
        csi_engine_unpin(r->e);
    }
    return NULL;
}

static void t_bounded_pinned_reader(void)
{
    csi_engine *e = mk_bounded_engine(3);
    csi_engine_set_concurrent(e, true);
    csi_stack *slot = NULL;
    pin_reader r = { .e = e, .slot = &slot };
    GThread *t = g_thread_new("reader", pin_reader_main, &r);
    for (uint64_t i = 0; i < 20000; i++) {
        csi_stack_id id = i & 1 ? kernel_stack(0xffff0000 + i * 0x4000) : user_space(0x1000 * i);
        csi_stack *s = csi_engine_bounded_switch(e, &id, &slot);
        csi_engine_call(e, s, 0, 0x10, 0x20, 0x1c, 0x7000);
    }
    __atomic_store_n(&r.stop, true, __ATOMIC_RELEASE);
    g_thread_join(t);
    CHECK(r.bad == 0, "%" PRIu64 " of %" PRIu64 " pinned reads saw a wrong stack", r.bad, r.reads);
    CHECK(csi_engine_stack_count(e) <= 3 + 3, "%u stacks", csi_engine_stack_count(e));
    csi_engine_stats st;
    csi_engine_get_stats(e, &st);
    CHECK(st.calls == 20000 && st.stacks_created == 20000, "%" PRIu64 " calls, %" PRIu64
          " stacks created", st.calls, st.stacks_created);
done:
    csi_engine_free(e);
}

/*
 * Frame words: the consumer's word of each frame comes back at the frame's
 * return and as the parent word of calls made from it; the stack's word
 * stays until the stack's id changes; the whole event comes along exactly
 * while the stack's word is 0. Stacks with several writers (the default
 * lock mode: no owner, concurrent) keep no words.
 */
typedef struct fw_rec {
    callstack_event_kind kind;
    bool unwound, had_ev, had_words;
    uint64_t func, depth, frame_word, parent_word, stack_word;
} fw_rec;
static GArray *fw_log;
static uint64_t fw_next = 100;   /* the word the call callback gives a frame */

static void fw_log_event(const callstack_frame_event *fe)
{
    fw_rec r = { fe->kind, fe->unwound, fe->ev != NULL, fe->stack_word != NULL, fe->func,
                 fe->depth, fe->frame_word ? *fe->frame_word : 0, fe->parent_word,
                 fe->stack_word ? *fe->stack_word : 0 };
    g_array_append_val(fw_log, r);
}

static void fw_call(unsigned vcpu, const callstack_frame_event *fe)
{
    (void)vcpu;
    fw_log_event(fe);
    if (fe->stack_word) {
        if (!*fe->stack_word) {
            *fe->stack_word = 7;
        }
        *fe->frame_word = fw_next++;
    }
}

static void fw_ret(unsigned vcpu, const callstack_frame_event *fe)
{
    (void)vcpu;
    fw_log_event(fe);
}

static const fw_rec *fw(guint i)
{
    return &g_array_index(fw_log, fw_rec, i);
}

static void t_frame_words(void)
{
    csi_engine *e = mk_engine(true, true, 4, 0, 0);   /* sp, x86 slot rule, max_depth 4 */
    csi_stack_id id = tid(20, 21);
    csi_stack *s = csi_engine_stack(e, &id);
    fw_log = g_array_new(FALSE, TRUE, sizeof(fw_rec));
    fw_next = 100;
    bool words = lockfree;   /* an owned threaded stack */

    CHECK(!csi_engine_release_frames(e, fw_call, fw_ret), "released before any claim");
    CHECK(!csi_engine_claim_frames(e, NULL, NULL), "claimed with no callback");
    CHECK(csi_engine_claim_frames(e, fw_call, fw_ret), "claim failed");
    CHECK(!csi_engine_claim_frames(e, fw_call, NULL), "a second claim succeeded");
    CHECK(csi_engine_has_subscribers(e), "a frame consumer is not a subscriber");

    /* main (sp 0x1000) calls a (0xff0), which calls b (0xfe0). */
    csi_engine_call(e, s, 0, 0x10, 0x501, 0x500, 0x1000);
    csi_engine_call(e, s, 0, 0x20, 0x601, 0x600, 0xff0);
    csi_engine_call(e, s, 0, 0x30, 0x701, 0x700, 0xfe0);
    CHECK(fw_log->len == 3, "%u frame events for 3 calls", fw_log->len);
    CHECK(fw(0)->had_ev && fw(0)->func == 0x10 && fw(0)->depth == 1 && fw(0)->parent_word == 0,
          "first call: ev %d func " PX " depth %" PRIu64, fw(0)->had_ev, fw(0)->func,
          fw(0)->depth);
    for (guint i = 0; i < 3; i++) {
        CHECK(fw(i)->had_words == words, "call %u: words %d in lock mode %d", i,
              fw(i)->had_words, lockfree);
        CHECK(fw(i)->had_ev == (!words || i == 0), "call %u: ev %d", i, fw(i)->had_ev);
        CHECK(fw(i)->kind == CALLSTACK_EVENT_CALL && fw(i)->depth == i + 1, "call %u", i);
    }
    if (words) {
        CHECK(fw(1)->parent_word == 100 && fw(2)->parent_word == 101 && fw(2)->stack_word == 7,
              "parent words %" PRIu64 ", %" PRIu64, fw(1)->parent_word, fw(2)->parent_word);
    }
    /* b returns through its slot (the fast path), a by target (the general
     * path), then main's frame is abandoned by a call at a higher sp. */
    CHECK(csi_engine_ret_from_slot(e, s, 0, 0xfe0), "slot return");
    csi_engine_ret(e, s, 0, 0x601, 0xff8);
    csi_engine_call(e, s, 0, 0x40, 0x801, 0x800, 0x1010);
    CHECK(fw_log->len == 7, "%u frame events after 3 more", fw_log->len);
    CHECK(fw(3)->kind == CALLSTACK_EVENT_RET && fw(3)->func == 0x30 && fw(3)->depth == 2 &&
          fw(4)->func == 0x20 && fw(4)->depth == 1 && !fw(4)->unwound,
          "returns: " PX "/%" PRIu64 ", " PX "/%" PRIu64, fw(3)->func, fw(3)->depth,
          fw(4)->func, fw(4)->depth);
    CHECK(fw(5)->kind == CALLSTACK_EVENT_RET && fw(5)->unwound && fw(5)->func == 0x10 &&
          fw(6)->kind == CALLSTACK_EVENT_CALL && fw(6)->func == 0x40 && fw(6)->depth == 1,
          "unwound main, then the call: " PX " %d, " PX, fw(5)->func, fw(5)->unwound,
          fw(6)->func);
    if (words) {
        CHECK(fw(3)->frame_word == 102 && fw(4)->frame_word == 101 && fw(5)->frame_word == 100,
              "words back at returns: %" PRIu64 " %" PRIu64 " %" PRIu64, fw(3)->frame_word,
              fw(4)->frame_word, fw(5)->frame_word);
        CHECK(fw(6)->parent_word == 0 && !fw(3)->had_ev, "fresh bottom frame / fast return");
    }

    /* A new label: the stack's word is cleared, the frames keep theirs. */
    csi_stack_id label = tid(20, 22);
    csi_engine_set_label(e, s, &label);
    csi_engine_call(e, s, 0, 0x50, 0x901, 0x900, 0x1000);
    CHECK(fw_log->len == 8 && fw(7)->had_ev && fw(7)->stack_word == 0,
          "after a new label: ev %d stack word %" PRIu64, fw(7)->had_ev, fw(7)->stack_word);
    if (words) {
        CHECK(fw(7)->parent_word == 103, "parent word after the label: %" PRIu64,
              fw(7)->parent_word);
    }

    /* Released: no more frame events, and on_call-only consumers are back
     * to the fast path. */
    CHECK(!csi_engine_release_frames(e, fw_call, NULL), "released with the wrong pair");
    CHECK(csi_engine_release_frames(e, fw_call, fw_ret), "release failed");
    csi_engine_call(e, s, 0, 0x60, 0xa01, 0xa00, 0xff0);
    CHECK(fw_log->len == 8, "frame events after the release: %u", fw_log->len);
    CHECK(!csi_engine_has_subscribers(e), "subscribers after the release");
    /* Only returns claimed. */
    CHECK(csi_engine_claim_frames(e, NULL, fw_ret), "returns-only claim");
    csi_engine_call(e, s, 0, 0x70, 0xb01, 0xb00, 0xfe0);
    CHECK(csi_engine_ret_from_slot(e, s, 0, 0xfe0), "slot return");
    CHECK(fw_log->len == 9 && fw(8)->func == 0x70 && fw(8)->kind == CALLSTACK_EVENT_RET &&
          fw(8)->frame_word == 0, "returns-only: %u events, word %" PRIu64, fw_log->len,
          fw_log->len > 8 ? fw(8)->frame_word : 0);
done:
    g_array_free(fw_log, TRUE);
    csi_engine_free(e);
}

/* ---- main --------------------------------------------------------------- */

/*
 * Lazy returns: counted returns pop the top frames (as returns, one event
 * each) just before the vCPU's next change of the stack; readers skip
 * them meanwhile without changing anything; counts beyond the retained
 * frames are unmatched returns; sp still unwinds abandoned frames at a
 * call; each vCPU has its own count.
 */
static void t_lazy_returns(void)
{
    csi_engine *e = mk_rec_engine(true, true, 0, 0x10000, 0);
    csi_stack_id id = tid(9, 9);
    csi_stack *s = csi_engine_stack(e, &id);
    uint64_t ctr[3] = { 0 };
    const uint64_t A = 0xa0, B = 0xb0, C = 0xc0, D = 0xd0, F = 0xf0, G = 0x60, H = 0x70, I = 0x80;
    csi_engine_set_return_counters(e, ctr);

    csi_engine_call(e, s, 1, A, 0x100, 0xfb, 0x7ff8);
    csi_engine_call(e, s, 1, B, 0x200, 0x1fb, 0x7ef8);
    csi_engine_call(e, s, 1, C, 0x300, 0x2fb, 0x7df8);
    rec_clear();
    /* C and B return, counted: a reader skips them, the stack keeps them. */
    ctr[1] = 2;
    csi_read_view view = { .pending = ctr[1] };
    uint64_t got[4];
    prog_point p;
    CHECK(csi_engine_depth_at(e, s, &view) == 1 && csi_engine_callers_at(e, s, &view, got, 4) == 1 &&
          got[0] == 0x100 && csi_engine_functions_at(e, s, &view, got, 4) == 1 && got[0] == A,
          "view of 2 counted returns: depth %" PRIu64, csi_engine_depth_at(e, s, &view));
    csi_engine_fill_prog_point_at(e, s, &view, &p);
    CHECK(p.caller == 0x100, "prog_point caller " PX, p.caller);
    EXPECT_NO_EVENTS();
    EXPECT_STACK(e, s, 3, U64S(0x300, 0x200, 0x100), U64S(C, B, A), 3);
    /* Another vCPU's count is not this one's. */
    ctr[0] = 1;
    /* A calls D at B's slot: the counted returns first, in order. */
    csi_engine_call(e, s, 1, D, 0x400, 0x3fb, 0x7ef8);
    EXPECT_EVENTS(EV_RET(C, 0x300, 2), EV_RET(B, 0x200, 1), EV_CALL(D, 0x400, 2));
    CHECK(ctr[1] == 0 && ctr[0] == 1, "counts after the call: %" PRIu64 "/%" PRIu64, ctr[0], ctr[1]);
    EXPECT_STATS(e, 4, 2, 0, 0);
    /* More counted returns than frames: the rest match nothing. */
    ctr[1] = 4;
    view.pending = 4;
    CHECK(csi_engine_depth_at(e, s, &view) == 0, "view past the bottom: depth %" PRIu64,
          csi_engine_depth_at(e, s, &view));
    csi_engine_call(e, s, 1, F, 0x500, 0x4fb, 0x7ff8);
    EXPECT_EVENTS(EV_RET(D, 0x400, 1), EV_RET(A, 0x100, 0), EV_CALL(F, 0x500, 1));
    EXPECT_STATS(e, 5, 4, 0, 2);
    /* Frames abandoned without a return (longjmp) are unwound by sp at the
     * next call, as with reported returns. */
    csi_engine_call(e, s, 1, G, 0x600, 0x5fb, 0x7ef8);
    csi_engine_call(e, s, 1, H, 0x700, 0x6fb, 0x7df8);
    rec_clear();
    csi_engine_call(e, s, 1, I, 0x800, 0x7fb, 0x7fe8);
    EXPECT_EVENTS(EV_UNW(H, 0x700, 2), EV_UNW(G, 0x600, 1), EV_CALL(I, 0x800, 2));
    /* A counted return, then a reported one: the counted one pops first. */
    ctr[1] = 1;
    CHECK(csi_engine_ret_from_slot(e, s, 1, 0x7ff8), "slot return after a counted one");
    EXPECT_EVENTS(EV_RET(I, 0x800, 1), EV_RET(F, 0x500, 0));
    /* Quiet pops: no event, still counted in the statistics. */
    csi_engine_call(e, s, 1, A, 0x100, 0xfb, 0x7ff8);
    rec_clear();
    csi_engine_pop_returns_quietly(e, s, 1, 1);
    EXPECT_NO_EVENTS();
    EXPECT_EMPTY(e, s);
    csi_engine_stats st;
    csi_engine_get_stats(e, &st);
    CHECK(st.returns == 7 && st.counted_returns == 8 && st.unmatched_returns == 2,
          "returns %" PRIu64 ", counted %" PRIu64, st.returns, st.counted_returns);
done:
    csi_engine_free(e);
}

static const test_case tests[] = {
    { "config_defaults", t_config_defaults },
    { "nesting", t_nesting },
    { "recursion_1000", t_recursion },
    { "return_skips_frames", t_return_skips_frames },
    { "unmatched_return", t_unmatched_return },
    { "search_limit", t_search_limit },
    { "many_stacks", t_many_stacks },
    { "max_depth", t_max_depth },
    { "resync_at_call_x86", t_resync_at_call_x86 },
    { "resync_at_call_link_register", t_resync_at_call_lr },
    { "resync_unmatched_return", t_resync_unmatched_return },
    { "resync_return_sp_bound", t_resync_return_sp_bound },
    { "resync_kernel_stacks_only", t_resync_kernel_only },
    { "unwind_top", t_unwind_top },
    { "lazy_returns", t_lazy_returns },
    { "subscribe_unsubscribe", t_subscribe },
    { "frame_words", t_frame_words },
    { "reentrant_subscriber", t_reentrant_subscriber },
    { "random_stream_vs_model", t_random_model },
    { "threads_4x100k", t_threads },
    { "threads_subscriber_churn", t_threads_subscriber_churn },
    { "threads_shared_stack", t_threads_shared_stack },
    { "owned_stack_read_by_another_thread", t_owned_stack_reader },
    { "after_fork", t_after_fork },
    { "heuristic_switching", t_heuristic_switching },
    { "heuristic_space_bound", t_heuristic_space_bound },
    { "heuristic_edges", t_heuristic_edges },
    { "heuristic_bound", t_heuristic_bound },
    { "bounded_spaces", t_bounded_spaces },
    { "bounded_pinned_reader", t_bounded_pinned_reader },
#ifdef G_OS_UNIX
    { "after_fork_keep_lock_held", t_after_fork_keep_locked },
    { "after_fork_other_lock_held", t_after_fork_other_locked },
#endif
};

static void before_each(void)
{
    lockfree = g_str_has_prefix(t_name, "lockfree/");
    rec_clear();
}

int main(int argc, char **argv)
{
    rec.events = g_array_new(FALSE, TRUE, sizeof(callstack_event));
    rec.calls = g_array_new(FALSE, TRUE, sizeof(uint64_t));
    rec.rets = g_array_new(FALSE, TRUE, sizeof(uint64_t));
    rec.vcpus = g_array_new(FALSE, TRUE, sizeof(unsigned));
    /* Each case, then each case again in lock-free mode (see lockfree). */
    enum { N = G_N_ELEMENTS(tests) };
    test_case all[2 * N];
    for (size_t i = 0; i < N; i++) {
        all[i] = tests[i];
        all[N + i] = (test_case){ g_strconcat("lockfree/", tests[i].name, NULL), tests[i].fn };
    }
    int status = run_cases(all, 2 * N, argc, argv, before_each);
    for (size_t i = 0; i < N; i++) {
        g_free((char *)all[N + i].name);
    }
    g_array_free(rec.events, TRUE);
    g_array_free(rec.calls, TRUE);
    g_array_free(rec.rets, TRUE);
    g_array_free(rec.vcpus, TRUE);
    return status;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>
#include "engine.h"

/*
 * Subscriber lists are copy-on-write: dispatch reads the current array with
 * one atomic load and no lock, registration publishes a new array. Old arrays
 * may still be in use by a dispatching thread, so they are retired and freed
 * with the engine; registrations are rare, so this stays small.
 */
#include "engine_internal.h"

guint id_hash(gconstpointer k) { return cs_stack_id_hash(k); }
gboolean id_equal(gconstpointer a, gconstpointer b) { return cs_stack_id_equal(a, b); }

static void stack_free(gpointer p)
{
    cs_stack *s = p;
    cs_stack_destroy(s);
    g_free(s);
}

cs_engine *cs_engine_new(const cs_engine_config *cfg)
{
    cs_engine *e = g_new0(cs_engine, 1);
    e->cfg = *cfg;
    if (e->cfg.max_depth < 2) {
        e->cfg.max_depth = CS_DEFAULT_MAX_DEPTH;
    }
    if (e->cfg.search_limit == 0) {
        e->cfg.search_limit = CS_DEFAULT_SEARCH_LIMIT;
    }
    if (e->cfg.resync_window == 0) {
        e->cfg.resync_window = CS_DEFAULT_RESYNC_WINDOW;
    }
    g_mutex_init(&e->table_lock);
    g_mutex_init(&e->sub_lock);
    e->stacks = g_hash_table_new_full(id_hash, id_equal, NULL, stack_free);
    e->groups = g_hash_table_new_full(id_hash, id_equal, g_free, cs_heuristic_group_free);
    if (e->cfg.stack_distance == 0) {
        e->cfg.stack_distance = CS_DEFAULT_STACK_DISTANCE;
    }
    if (e->cfg.max_heuristic_stacks == 0) {
        e->cfg.max_heuristic_stacks = CS_DEFAULT_MAX_HEURISTIC_STACKS;
    }
    e->retired = g_ptr_array_new_with_free_func(g_free);
    return e;
}

void cs_engine_free(cs_engine *e)
{
    if (!e) {
        return;
    }
    g_hash_table_destroy(e->groups);
    g_hash_table_destroy(e->stacks);
    for (int k = 0; k < CS_SUB_KINDS; k++) {
        g_free(e->subs[k]);
    }
    g_ptr_array_free(e->retired, TRUE);
    g_mutex_clear(&e->table_lock);
    g_mutex_clear(&e->sub_lock);
    g_free(e);
}

const cs_engine_config *cs_engine_get_config(const cs_engine *e)
{
    return &e->cfg;
}

cs_stack *cs_engine_stack(cs_engine *e, const cs_stack_id *id)
{
    g_mutex_lock(&e->table_lock);
    cs_stack *s = g_hash_table_lookup(e->stacks, id);
    if (!s) {
        s = g_new(cs_stack, 1);
        cs_stack_init(s, id, e->cfg.max_depth);
        g_hash_table_insert(e->stacks, &s->id, s);
        e->n_created++;
    }
    g_mutex_unlock(&e->table_lock);
    return s;
}

void cs_engine_drop_stack(cs_engine *e, cs_stack *s)
{
    g_mutex_lock(&e->table_lock);
    cs_heuristic_forget_locked(e, s);
    cs_engine_retire_stats_locked(e, s);
    g_hash_table_remove(e->stacks, &s->id);
    g_mutex_unlock(&e->table_lock);
}

void cs_engine_after_fork(cs_engine *e, cs_stack *keep, const cs_stack_id *new_id)
{
    g_mutex_init(&e->table_lock);
    g_mutex_init(&e->sub_lock);
    if (keep) {
        g_hash_table_steal(e->stacks, &keep->id);
    }
    /* Any of these may have been locked by a thread that no longer exists;
     * g_mutex_clear() aborts on a locked mutex. */
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, e->stacks);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        g_mutex_init(&((cs_stack *)value)->lock);
    }
    g_hash_table_remove_all(e->groups);
    g_hash_table_remove_all(e->stacks);
    if (keep) {
        g_mutex_init(&keep->lock);
        keep->id = *new_id;
        keep->users = 1;
        /* A stack already under the new id (possible only if ids repeat)
         * is replaced. */
        g_hash_table_replace(e->stacks, &keep->id, keep);
        if (keep->id.kind == STACK_HEURISTIC) {
            cs_heuristic_adopt_locked(e, keep);
        }
    }
}

unsigned cs_engine_stack_count(cs_engine *e)
{
    g_mutex_lock(&e->table_lock);
    unsigned n = g_hash_table_size(e->stacks);
    g_mutex_unlock(&e->table_lock);
    return n;
}

/* Adds a stack's counters to the engine's, before the stack is freed. */
void cs_engine_retire_stats_locked(cs_engine *e, const cs_stack *s)
{
    e->n_calls += s->n_calls;
    e->n_returns += s->n_returns;
    e->n_unwound += s->n_unwound;
    e->n_unmatched += s->n_unmatched;
}

void cs_engine_get_stats(cs_engine *e, cs_engine_stats *out)
{
    /* Counters live in the stacks, updated under their locks (no atomic
     * operation per event); freed stacks' counts were added to the
     * engine's. */
    g_mutex_lock(&e->table_lock);
    out->calls = e->n_calls;
    out->returns = e->n_returns;
    out->unwound = e->n_unwound;
    out->unmatched_returns = e->n_unmatched;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, e->stacks);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        cs_stack *s = value;
        g_mutex_lock(&s->lock);
        out->calls += s->n_calls;
        out->returns += s->n_returns;
        out->unwound += s->n_unwound;
        out->unmatched_returns += s->n_unmatched;
        g_mutex_unlock(&s->lock);
    }
    out->stacks_created = e->n_created;
    g_mutex_unlock(&e->table_lock);
}

/* ---- dispatch ---------------------------------------------------------- */

static inline cs_sublist *subs_get(cs_engine *e, cs_sub_kind k)
{
    return __atomic_load_n(&e->subs[k], __ATOMIC_ACQUIRE);
}

bool cs_engine_has_subscribers(cs_engine *e)
{
    for (int k = 0; k < CS_SUB_KINDS; k++) {
        cs_sublist *l = subs_get(e, k);
        if (l && l->n) {
            return true;
        }
    }
    return false;
}

static bool subs_change(cs_engine *e, cs_sub_kind kind, void (*fn)(void), bool add)
{
    if (!fn || kind >= CS_SUB_KINDS) {
        return false;
    }
    g_mutex_lock(&e->sub_lock);
    cs_sublist *old = e->subs[kind];
    unsigned n = old ? old->n : 0, pos = n;
    for (unsigned i = 0; i < n; i++) {
        if (old->fns[i] == fn) {
            pos = i;
            break;
        }
    }
    bool present = pos < n;
    if (present == add) {
        g_mutex_unlock(&e->sub_lock);
        return !add ? false : true;   /* add: already there; remove: absent */
    }
    unsigned m = add ? n + 1 : n - 1;
    cs_sublist *l = g_malloc(sizeof *l + m * sizeof l->fns[0]);
    l->n = 0;
    for (unsigned i = 0; i < n; i++) {
        if (i != pos) {
            l->fns[l->n++] = old->fns[i];
        }
    }
    if (add) {
        l->fns[l->n++] = fn;
    }
    __atomic_store_n(&e->subs[kind], l, __ATOMIC_RELEASE);
    if (old) {
        g_ptr_array_add(e->retired, old);
    }
    g_mutex_unlock(&e->sub_lock);
    return true;
}

bool cs_engine_subscribe(cs_engine *e, cs_sub_kind kind, void (*fn)(void))
{
    return subs_change(e, kind, fn, true);
}

bool cs_engine_unsubscribe(cs_engine *e, cs_sub_kind kind, void (*fn)(void))
{
    return subs_change(e, kind, fn, false);
}

static void dispatch(cs_engine *e, unsigned vcpu, const callstack_event *ev)
{
    cs_sublist *l = subs_get(e, ev->kind == CALLSTACK_EVENT_CALL ? CS_SUB_CALL : CS_SUB_RET);
    if (l) {
        for (unsigned i = 0; i < l->n; i++) {
            ((on_call_t)l->fns[i])(vcpu, ev->func);
        }
    }
    l = subs_get(e, CS_SUB_EVENT);
    if (l) {
        for (unsigned i = 0; i < l->n; i++) {
            ((on_event_t)l->fns[i])(vcpu, ev);
        }
    }
}

/* ---- the rules --------------------------------------------------------- */

static void fill_where(const cs_stack *s, prog_point *p)
{
    const cs_frame *top = cs_stack_peek(s, 0);
    p->caller = top ? top->ret_addr : 0;
    p->sidFirst = s->id.first;
    p->sidSecond = s->id.second;
    p->isKernelMode = s->id.kernel;
    p->stackKind = s->id.kind;
}

static void make_event(const cs_stack *s, callstack_event *ev, callstack_event_kind kind,
                       const cs_frame *f, bool unwound, uint64_t pc)
{
    ev->kind = kind;
    ev->unwound = unwound;
    ev->func = f->func;
    ev->ret_addr = f->ret_addr;
    ev->call_site = f->call_site;
    ev->sp = f->sp;
    ev->depth = cs_stack_depth(s);
    fill_where(s, &ev->where);
    ev->where.pc = pc;
}

static inline bool resync(const cs_engine *e, const cs_stack *s)
{
    return e->cfg.sp_resync || (e->cfg.sp_resync_kernel && s->id.kernel);
}

/*
 * Is the top frame dead given that the live stack pointer is `sp`? Its
 * memory is released once sp is above it (at a call on x86, also when sp
 * equals it: the new return address overwrote it). Frames far below sp are
 * on another stack region and left alone.
 */
static bool top_is_dead(const cs_engine *e, const cs_stack *s, uint64_t sp, bool at_call)
{
    const cs_frame *top = cs_stack_peek(s, 0);
    if (!top || top->sp > sp) {
        return false;
    }
    if (top->sp == sp && !(at_call && e->cfg.ret_addr_on_stack)) {
        return false;
    }
    return sp - top->sp <= e->cfg.resync_window;
}

/* Pops frames while `dead` holds, one event each, lock released between. */
static void pop_dead(cs_engine *e, cs_stack *s, unsigned vcpu, uint64_t sp, bool at_call,
                     uint64_t pc)
{
    for (;;) {
        callstack_event ev;
        cs_frame f;
        g_mutex_lock(&s->lock);
        if (!top_is_dead(e, s, sp, at_call) || !cs_stack_pop(s, &f)) {
            g_mutex_unlock(&s->lock);
            return;
        }
        make_event(s, &ev, CALLSTACK_EVENT_RET, &f, true, pc);
        s->n_unwound++;
        g_mutex_unlock(&s->lock);
        dispatch(e, vcpu, &ev);
    }
}

void cs_engine_call(cs_engine *e, cs_stack *s, unsigned vcpu, uint64_t func,
                    uint64_t ret_addr, uint64_t call_site, uint64_t sp)
{
    cs_frame f = { .func = func, .ret_addr = ret_addr, .call_site = call_site, .sp = sp };
    callstack_event ev;
    g_mutex_lock(&s->lock);
    if (resync(e, s) && top_is_dead(e, s, sp, true)) {
        /* Rare (after a non-local exit): report the dead frames first. */
        g_mutex_unlock(&s->lock);
        pop_dead(e, s, vcpu, sp, true, func);
        g_mutex_lock(&s->lock);
    }
    cs_stack_push(s, &f);
    make_event(s, &ev, CALLSTACK_EVENT_CALL, &f, false, func);
    s->n_calls++;
    g_mutex_unlock(&s->lock);
    dispatch(e, vcpu, &ev);
}

/*
 * Which frame does a return to `target` with stack pointer `sp` leave?
 * The nearest frame to the top whose return address is the target; with
 * sp_resync it must also lie at or below sp, and the search stops at the
 * first frame above sp (deeper frames are higher still). Returns its index
 * from the top, or -1.
 */
static int64_t find_returnee(const cs_engine *e, const cs_stack *s, uint64_t target, uint64_t sp)
{
    bool use_sp = resync(e, s);
    uint32_t limit = use_sp ? s->count : MIN(s->count, e->cfg.search_limit);
    for (uint32_t i = 0; i < limit; i++) {
        const cs_frame *f = cs_stack_peek(s, i);
        if (use_sp && f->sp > sp) {
            return -1;
        }
        if (f->ret_addr == target) {
            return i;
        }
    }
    return -1;
}

void cs_engine_ret(cs_engine *e, cs_stack *s, unsigned vcpu, uint64_t target, uint64_t sp)
{
    g_mutex_lock(&s->lock);
    int64_t idx = find_returnee(e, s, target, sp);
    if (idx < 0) {
        /* Nothing to match: a return into a forgotten frame (max_depth), or
         * into code whose call we did not see (signal trampolines, a return
         * used as an indirect jump). Defined outcome: no event; with sp, the
         * frames sp has left behind are unwound. */
        if (s->count == 0 && s->forgotten > 0) {
            s->forgotten--;
        }
        s->n_unmatched++;
        g_mutex_unlock(&s->lock);
        if (resync(e, s)) {
            pop_dead(e, s, vcpu, sp, false, target);
        }
        return;
    }
    if (idx == 0) {
        /* The common case: the top frame returns, under the same lock. */
        callstack_event ev;
        cs_frame f;
        cs_stack_pop(s, &f);
        make_event(s, &ev, CALLSTACK_EVENT_RET, &f, false, target);
        s->n_returns++;
        g_mutex_unlock(&s->lock);
        dispatch(e, vcpu, &ev);
        return;
    }
    g_mutex_unlock(&s->lock);
    /* Frames above the returnee were skipped: unwound. Then the returnee. */
    for (int64_t i = 0; i <= idx; i++) {
        callstack_event ev;
        cs_frame f;
        bool normal = i == idx;
        g_mutex_lock(&s->lock);
        if (!cs_stack_pop(s, &f)) {
            g_mutex_unlock(&s->lock);   /* another thread emptied a shared stack */
            return;
        }
        make_event(s, &ev, CALLSTACK_EVENT_RET, &f, !normal, target);
        if (normal) {
            s->n_returns++;
        } else {
            s->n_unwound++;
        }
        g_mutex_unlock(&s->lock);
        dispatch(e, vcpu, &ev);
    }
}

bool cs_engine_top(cs_engine *e, cs_stack *s, cs_frame *out)
{
    (void)e;
    g_mutex_lock(&s->lock);
    const cs_frame *top = cs_stack_peek(s, 0);
    if (top) {
        *out = *top;
    }
    g_mutex_unlock(&s->lock);
    return top != NULL;
}

bool cs_engine_unwind_top(cs_engine *e, cs_stack *s, unsigned vcpu, const cs_frame *expected,
                          uint64_t pc)
{
    callstack_event ev;
    cs_frame f;
    g_mutex_lock(&s->lock);
    const cs_frame *top = cs_stack_peek(s, 0);
    if (!top || memcmp(top, expected, sizeof *top) != 0 || !cs_stack_pop(s, &f)) {
        g_mutex_unlock(&s->lock);
        return false;
    }
    make_event(s, &ev, CALLSTACK_EVENT_RET, &f, true, pc);
    s->n_unwound++;
    g_mutex_unlock(&s->lock);
    dispatch(e, vcpu, &ev);
    return true;
}

/* ---- reading ----------------------------------------------------------- */

uint32_t cs_engine_callers(cs_engine *e, cs_stack *s, uint64_t *out, uint32_t n)
{
    (void)e;
    g_mutex_lock(&s->lock);
    uint32_t m = MIN(n, s->count);
    for (uint32_t i = 0; i < m; i++) {
        out[i] = cs_stack_peek(s, i)->ret_addr;
    }
    g_mutex_unlock(&s->lock);
    return m;
}

uint32_t cs_engine_functions(cs_engine *e, cs_stack *s, uint64_t *out, uint32_t n)
{
    (void)e;
    g_mutex_lock(&s->lock);
    uint32_t m = MIN(n, s->count);
    for (uint32_t i = 0; i < m; i++) {
        out[i] = cs_stack_peek(s, i)->func;
    }
    g_mutex_unlock(&s->lock);
    return m;
}

uint64_t cs_engine_depth(cs_engine *e, cs_stack *s)
{
    (void)e;
    g_mutex_lock(&s->lock);
    uint64_t d = cs_stack_depth(s);
    g_mutex_unlock(&s->lock);
    return d;
}

void cs_engine_fill_prog_point(cs_engine *e, cs_stack *s, prog_point *p)
{
    (void)e;
    g_mutex_lock(&s->lock);
    fill_where(s, p);
    g_mutex_unlock(&s->lock);
}

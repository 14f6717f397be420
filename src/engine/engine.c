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

static void stack_free(gpointer p)
{
    csi_stack *s = p;
    csi_stack_destroy(s);
    g_aligned_free(s);
}

csi_engine *csi_engine_new(const csi_engine_config *cfg)
{
    csi_engine *e = g_new0(csi_engine, 1);
    e->cfg = *cfg;
    if (e->cfg.max_depth < 2) {
        e->cfg.max_depth = CSI_DEFAULT_MAX_DEPTH;
    }
    if (e->cfg.search_limit == 0) {
        e->cfg.search_limit = CSI_DEFAULT_SEARCH_LIMIT;
    }
    if (e->cfg.resync_window == 0) {
        e->cfg.resync_window = CSI_DEFAULT_RESYNC_WINDOW;
    }
    g_mutex_init(&e->table_lock);
    g_mutex_init(&e->sub_lock);
    e->stacks = g_hash_table_new_full(id_hash, id_equal, NULL, stack_free);
    e->groups = g_hash_table_new_full(id_hash, id_equal, g_free, csi_heuristic_group_free);
    if (e->cfg.stack_distance == 0) {
        e->cfg.stack_distance = CSI_DEFAULT_STACK_DISTANCE;
    }
    if (e->cfg.max_heuristic_stacks == 0) {
        e->cfg.max_heuristic_stacks = CSI_DEFAULT_MAX_HEURISTIC_STACKS;
    }
    /* (max_spaces 0 stays 0: unbounded, for hosts that never call
     * csi_engine_bounded_switch.) */
    e->retired = g_ptr_array_new_with_free_func(g_free);
    e->concurrent = !e->cfg.starts_single_threaded;
    e->ret_addr_on_stack = e->cfg.ret_addr_on_stack;
    e->resync_window = e->cfg.resync_window;
    return e;
}

void csi_engine_free(csi_engine *e)
{
    if (!e) {
        return;
    }
    g_hash_table_destroy(e->groups);
    g_hash_table_destroy(e->stacks);
    for (int k = 0; k < CSI_SUB_KINDS; k++) {
        g_free(e->subs[k]);
    }
    g_ptr_array_free(e->retired, TRUE);
    g_mutex_clear(&e->table_lock);
    g_mutex_clear(&e->sub_lock);
    g_free(e);
}

const csi_engine_config *csi_engine_get_config(const csi_engine *e)
{
    return &e->cfg;
}

csi_stack *csi_engine_stack(csi_engine *e, const csi_stack_id *id)
{
    g_mutex_lock(&e->table_lock);
    csi_stack *s = g_hash_table_lookup(e->stacks, id);
    if (!s) {
        s = csi_engine_new_stack_locked(e, id);
    }
    g_mutex_unlock(&e->table_lock);
    return s;
}

void csi_engine_drop_stack(csi_engine *e, csi_stack *s)
{
    g_mutex_lock(&e->table_lock);
    csi_heuristic_forget_locked(e, s);
    csi_engine_retire_stats_locked(e, s);
    g_hash_table_remove(e->stacks, &s->id);
    g_mutex_unlock(&e->table_lock);
}

csi_stack *csi_engine_pin(csi_engine *e, csi_stack *const *slot)
{
    g_mutex_lock(&e->table_lock);
    return __atomic_load_n(slot, __ATOMIC_ACQUIRE);
}

void csi_engine_unpin(csi_engine *e)
{
    g_mutex_unlock(&e->table_lock);
}

void csi_engine_after_fork(csi_engine *e, csi_stack *keep, const csi_stack_id *new_id)
{
    g_mutex_init(&e->table_lock);
    g_mutex_init(&e->sub_lock);
    if (keep) {
        g_hash_table_steal(e->stacks, &keep->id);
    }
    /* Any of these may have been locked by a thread that no longer exists;
     * they are simply released. */
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, e->stacks);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        ((csi_stack *)value)->lock = 0;
    }
    g_hash_table_remove_all(e->groups);
    e->n_spaces = 0;
    g_hash_table_remove_all(e->stacks);
    if (keep) {
        keep->lock = 0;
        keep->id = *new_id;
        keep->label = *new_id;
        keep->consumer_word = 0;   /* a stack of its own now (its frames keep their words) */
        keep->users = 1;
        /* A stack already under the new id (possible only if ids repeat)
         * is replaced. */
        g_hash_table_replace(e->stacks, &keep->id, keep);
        if (keep->id.kind == STACK_HEURISTIC) {
            csi_heuristic_adopt_locked(e, keep);
        }
    }
}

unsigned csi_engine_stack_count(csi_engine *e)
{
    g_mutex_lock(&e->table_lock);
    unsigned n = g_hash_table_size(e->stacks);
    g_mutex_unlock(&e->table_lock);
    return n;
}

/* Adds a stack's counters to the engine's, before the stack is freed. */
void csi_engine_get_stats(csi_engine *e, csi_engine_stats *out)
{
    /* Counters live in the stacks, updated under their locks (no atomic
     * operation per event); freed stacks' counts were added to the
     * engine's. */
    g_mutex_lock(&e->table_lock);
    out->calls = e->n_calls;
    out->returns = e->n_returns;
    out->unwound = e->n_unwound;
    out->unmatched_returns = e->n_unmatched;
    out->counted_returns = e->n_counted;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, e->stacks);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        csi_stack *s = value;
        csi_stack_lock(s);
        out->calls += CSI_SNAPSHOT(s->n_calls);
        out->returns += CSI_SNAPSHOT(s->n_returns);
        out->unwound += CSI_SNAPSHOT(s->n_unwound);
        out->unmatched_returns += CSI_SNAPSHOT(s->n_unmatched);
        out->counted_returns += CSI_SNAPSHOT(s->n_counted);
        csi_stack_unlock(s);
    }
    out->stacks_created = e->n_created;
    g_mutex_unlock(&e->table_lock);
}

/* ---- dispatch ---------------------------------------------------------- */

static inline csi_sublist *subs_get(csi_engine *e, csi_sub_kind k)
{
    return __atomic_load_n(&e->subs[k], __ATOMIC_ACQUIRE);
}

bool csi_engine_has_subscribers(csi_engine *e)
{
    for (int k = 0; k < CSI_SUB_KINDS; k++) {
        csi_sublist *l = subs_get(e, k);
        if (l && l->n) {
            return true;
        }
    }
    return __atomic_load_n(&e->frame_ret, __ATOMIC_ACQUIRE) != NULL;
}

/* Under sub_lock, after a change of the on_event list or the frame
 * consumer. */
static void update_rich(csi_engine *e)
{
    /* (calls take the rich path with any frame consumer: it zeroes the new
     * frame's word) */
    uint8_t r = e->subs[CSI_SUB_EVENT] ? CSI_RICH_CALL | CSI_RICH_RET : 0;
    r |= e->frame_call || e->frame_ret ? CSI_RICH_CALL : 0;
    r |= e->frame_ret ? CSI_RICH_RET : 0;
    r |= e->frame_call || e->frame_ret ? CSI_RICH_FRAMES : 0;
    __atomic_store_n(&e->rich, r, __ATOMIC_RELEASE);
    __atomic_store_n(&e->call_frames_only,
                     e->subs[CSI_SUB_CALL] || e->subs[CSI_SUB_EVENT] ? NULL : e->frame_call,
                     __ATOMIC_RELEASE);
    __atomic_store_n(&e->ret_frames_only,
                     e->subs[CSI_SUB_RET] || e->subs[CSI_SUB_EVENT] ? NULL : e->frame_ret,
                     __ATOMIC_RELEASE);
}

static bool frames_change(csi_engine *e, on_frame_t on_call, on_frame_t on_ret, bool claim)
{
    g_mutex_lock(&e->sub_lock);
    bool held = e->frame_call || e->frame_ret;
    bool ok = claim ? !held && (on_call || on_ret)
                    : held && e->frame_call == on_call && e->frame_ret == on_ret;
    if (ok) {
        __atomic_store_n(&e->frame_call, claim ? on_call : NULL, __ATOMIC_RELEASE);
        __atomic_store_n(&e->frame_ret, claim ? on_ret : NULL, __ATOMIC_RELEASE);
        update_rich(e);
    }
    g_mutex_unlock(&e->sub_lock);
    return ok;
}

bool csi_engine_claim_frames(csi_engine *e, on_frame_t on_call, on_frame_t on_ret)
{
    return frames_change(e, on_call, on_ret, true);
}

bool csi_engine_release_frames(csi_engine *e, on_frame_t on_call, on_frame_t on_ret)
{
    return frames_change(e, on_call, on_ret, false);
}

static bool subs_change(csi_engine *e, csi_sub_kind kind, void (*fn)(void), bool add)
{
    if (!fn || kind >= CSI_SUB_KINDS) {
        return false;
    }
    g_mutex_lock(&e->sub_lock);
    csi_sublist *old = e->subs[kind];
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
    csi_sublist *l = g_malloc(sizeof *l + m * sizeof l->fns[0]);
    l->n = 0;
    for (unsigned i = 0; i < n; i++) {
        if (i != pos) {
            l->fns[l->n++] = old->fns[i];
        }
    }
    if (add) {
        l->fns[l->n++] = fn;
    }
    if (l->n == 0) {
        g_free(l);   /* no subscribers: NULL, so the hot path tests one pointer */
        l = NULL;
    }
    __atomic_store_n(&e->subs[kind], l, __ATOMIC_RELEASE);
    update_rich(e);
    if (old) {
        g_ptr_array_add(e->retired, old);
    }
    g_mutex_unlock(&e->sub_lock);
    return true;
}

bool csi_engine_subscribe(csi_engine *e, csi_sub_kind kind, void (*fn)(void))
{
    return subs_change(e, kind, fn, true);
}

bool csi_engine_unsubscribe(csi_engine *e, csi_sub_kind kind, void (*fn)(void))
{
    return subs_change(e, kind, fn, false);
}
/*
 * Dispatch. on_call/on_ret subscribers get only the function; the full
 * callstack_event is built (under the stack's lock, so it is consistent)
 * only when on_event subscribers exist: `ev` is NULL otherwise.
 */
static inline csi_sublist *event_subs(csi_engine *e)
{
    csi_sublist *l = subs_get(e, CSI_SUB_EVENT);
    return l && l->n ? l : NULL;
}

/* on_call/on_ret subscribers, out of line (the hot paths end with it). */
static __attribute__((noinline)) void dispatch_funcs(const csi_sublist *l, unsigned vcpu,
                                                     uint64_t func)
{
    for (unsigned i = 0; i < l->n; i++) {
        ((on_call_t)l->fns[i])(vcpu, func);
    }
}

static inline __attribute__((always_inline)) void dispatch(csi_engine *e, unsigned vcpu,
                                                         callstack_event_kind kind, uint64_t func,
                     const callstack_event *ev)
{
    csi_sublist *l = subs_get(e, kind == CALLSTACK_EVENT_CALL ? CSI_SUB_CALL : CSI_SUB_RET);
    if (l) {
        dispatch_funcs(l, vcpu, func);
    }
    l = ev ? subs_get(e, CSI_SUB_EVENT) : NULL;
    if (l) {
        for (unsigned i = 0; i < l->n; i++) {
            ((on_event_t)l->fns[i])(vcpu, ev);
        }
    }
}

/* ---- changing a stack -------------------------------------------------- */

void csi_engine_set_concurrent(csi_engine *e, bool concurrent)
{
    __atomic_store_n(&e->concurrent, concurrent, __ATOMIC_RELEASE);
}

/*
 * The common case takes no lock. A stack only its own thread changes
 * (`owned`: threaded stacks in user mode), or any stack while the guest has
 * a single thread (`concurrent` false), has one writer: it marks a change
 * with an odd `seq` and takes the lock only to reallocate frames, the one
 * thing a reader on another thread could trip on. Other stacks are changed
 * under the lock. `concurrent` only ever becomes true while the only guest
 * thread is outside the engine (the host sets it before creating a second
 * thread).
 */
typedef enum write_op { OP_PUSH, OP_POP, OP_ANY } write_op;

/* Marks a change of s as begun / ended for seqcount readers (read_stack).
 * The change's own stores are release stores (CSI_PUBLISH), which keeps them
 * after the odd seq without a fence (fences are also invisible to
 * ThreadSanitizer). */
static inline void seq_open(csi_stack *s)
{
    __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELAXED);
}

static inline void seq_close(csi_stack *s)
{
    __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);
}

/* Only this thread changes s (its frames stay put between its own
 * changes). */
static inline bool single_writer(const csi_engine *e, const csi_stack *s)
{
    return s->owned || !__atomic_load_n(&e->concurrent, __ATOMIC_RELAXED);
}

static inline bool write_begin(csi_engine *e, csi_stack *s, write_op op)
{
    bool lock_free = s->owned || !__atomic_load_n(&e->concurrent, __ATOMIC_ACQUIRE);
    /* (a lock-free writer is the only writer: it may look before locking) */
    bool locked = !lock_free || op == OP_ANY ||
                  (op == OP_PUSH ? csi_stack_push_moves(s) : csi_stack_pop_moves(s));
    if (locked) {
        csi_stack_lock(s);
    }
    seq_open(s);
    return locked;
}

static inline void write_end(csi_stack *s, bool locked)
{
    seq_close(s);
    if (locked) {
        csi_stack_unlock(s);
    }
}


/* ---- the rules --------------------------------------------------------- */

static void fill_where_top(const csi_stack *s, const csi_frame *top, prog_point *p)
{
    p->caller = top ? top->ret_addr : 0;
    p->sidFirst = s->label.first;
    p->sidSecond = s->label.second;
    p->isKernelMode = s->label.kernel;
    p->stackKind = s->label.kind;
}

static void fill_where(const csi_stack *s, prog_point *p)
{
    fill_where_top(s, csi_stack_peek(s, 0), p);
}

static inline __attribute__((always_inline)) void
make_event(const csi_stack *s, callstack_event *ev, callstack_event_kind kind,
           const csi_frame *f, bool unwound, uint64_t pc)
{
    ev->kind = kind;
    ev->unwound = unwound;
    ev->func = f->func;
    ev->ret_addr = f->ret_addr;
    ev->call_site = f->call_site;
    ev->sp = f->sp;
    ev->depth = csi_stack_depth(s);
    fill_where(s, &ev->where);
    ev->where.pc = pc;
}

/*
 * The frame-word consumer's callback (csi_engine_claim_frames), with the
 * whole event `ev`. `word` is the word of the frame pushed, or of the one
 * popped (or a copy of it), valid during the callback; NULL for a stack
 * several threads change, which keeps no words.
 */
static __attribute__((noinline)) void frame_notify_full(on_frame_t fn, csi_stack *s, unsigned vcpu,
                                                        const callstack_event *ev, uint64_t *word,
                                                        uint64_t parent_word)
{
    callstack_frame_event fe = {
        .kind = ev->kind,
        .unwound = ev->unwound,
        .func = ev->func,
        .depth = ev->depth,
        .stack_word = word ? &s->consumer_word : NULL,
        .frame_word = word,
        .parent_word = word ? parent_word : 0,
        .ev = ev,
    };
    fn(vcpu, &fe);
}

/* The consumer has no word for the stack yet: it gets the whole event. */
static __attribute__((noinline)) void frame_notify_new(on_frame_t fn, csi_stack *s, unsigned vcpu,
                                                       callstack_event_kind kind,
                                                       const csi_frame *f, uint64_t *word,
                                                       uint64_t parent_word, uint64_t pc)
{
    callstack_event ev;
    make_event(s, &ev, kind, f, false, pc);
    frame_notify_full(fn, s, vcpu, &ev, word, parent_word);
}

/*
 * The same on the fast paths (one writer, this thread; no reallocation),
 * for frame i (pushed, or just popped): once the consumer has a word for
 * the stack, a few stores into the stack's own frame event and a call,
 * which can be the path's tail call.
 */
static inline __attribute__((always_inline)) void
frame_notify_fast(on_frame_t fn, csi_stack *s, unsigned vcpu, callstack_event_kind kind,
                  const csi_frame *f, uint32_t i, uint64_t pc)
{
    uint64_t parent_word = kind == CALLSTACK_EVENT_CALL && i ? s->words[i - 1] : 0;
    if (__builtin_expect(!s->consumer_word, 0)) {
        frame_notify_new(fn, s, vcpu, kind, f, &s->words[i], parent_word, pc);
        return;
    }
    callstack_frame_event *fe = &s->fev;
    fe->kind = kind;
    fe->func = f->func;
    fe->depth = csi_stack_depth(s);
    fe->frame_word = &s->words[i];
    fe->parent_word = parent_word;
    fn(vcpu, fe);
}

/*
 * Is the top frame dead given that the live stack pointer is `sp`? Its
 * memory is released once sp is above it (at a call on x86, also when sp
 * equals it: the new return address overwrote it). Frames far below sp are
 * on another stack region and left alone.
 */
static bool top_is_dead(const csi_engine *e, const csi_stack *s, uint64_t sp, bool at_call)
{
    const csi_frame *top = csi_stack_peek(s, 0);
    if (!top || top->sp > sp) {
        return false;
    }
    if (top->sp == sp && !(at_call && e->ret_addr_on_stack)) {
        return false;
    }
    return sp - top->sp <= e->resync_window;
}

/*
 * Pops the top frame (which the caller checked under write_begin) and
 * reports it: one event, no lock held while subscribers run.
 */
static inline __attribute__((always_inline)) void
pop_report(csi_engine *e, csi_stack *s, bool locked, unsigned vcpu, bool unwound, uint64_t pc)
{
    csi_sublist *evs = event_subs(e);
    on_frame_t fn = __atomic_load_n(&e->frame_ret, __ATOMIC_ACQUIRE);
    callstack_event ev;
    csi_frame f;
    uint64_t word = 0;
    if (s->count == 0) {
        write_end(s, locked);
        return;
    }
    uint64_t func = s->frames[s->count - 1].func;
    if (evs || fn) {
        f = s->frames[s->count - 1];
        word = s->words[s->count - 1];   /* (a copy: the pop may move the words) */
        csi_stack_drop_top(s);
        make_event(s, &ev, CALLSTACK_EVENT_RET, &f, unwound, pc);
    } else {
        csi_stack_drop_top(s);
    }
    if (unwound) {
        CSI_PUBLISH(s->n_unwound, s->n_unwound + 1);
    } else {
        CSI_PUBLISH(s->n_returns, s->n_returns + 1);
    }
    write_end(s, locked);
    dispatch(e, vcpu, CALLSTACK_EVENT_RET, func, evs ? &ev : NULL);
    if (fn) {
        frame_notify_full(fn, s, vcpu, &ev, single_writer(e, s) ? &word : NULL, 0);
    }
}

/* Pops frames while `dead` holds, one event each. */
static void pop_dead(csi_engine *e, csi_stack *s, unsigned vcpu, uint64_t sp, bool at_call,
                     uint64_t pc)
{
    for (;;) {
        bool locked = write_begin(e, s, OP_ANY);
        if (!top_is_dead(e, s, sp, at_call)) {
            write_end(s, locked);
            return;
        }
        pop_report(e, s, locked, vcpu, true, pc);
    }
}

/* ---- lazy returns (csi_engine_set_return_counters) ---------------------- */

void csi_engine_set_return_counters(csi_engine *e, uint64_t *counts)
{
    __atomic_store_n(&e->ret_counters, counts, __ATOMIC_RELEASE);
}

/*
 * Pops the frames of the returns counted at *counter, one event each, the
 * pc of a return being where it lands. A count beyond the retained frames
 * is what csi_engine_ret does with a return that matches nothing: a
 * forgotten frame (max_depth) returns, or the return is unmatched.
 */
static __attribute__((noinline)) void pop_counted(csi_engine *e, csi_stack *s, unsigned vcpu,
                                                  uint64_t n, bool report)
{
    for (; n > 0; n--) {
        bool locked = write_begin(e, s, OP_POP);
        CSI_PUBLISH(s->n_counted, s->n_counted + 1);
        if (s->count == 0) {
            if (s->forgotten > 0) {
                CSI_PUBLISH(s->forgotten, s->forgotten - 1);
            }
            CSI_PUBLISH(s->n_unmatched, s->n_unmatched + 1);
            write_end(s, locked);
        } else if (report) {
            pop_report(e, s, locked, vcpu, false, s->frames[s->count - 1].ret_addr);
        } else {
            csi_stack_drop_top(s);
            CSI_PUBLISH(s->n_returns, s->n_returns + 1);
            write_end(s, locked);
        }
    }
}

static inline uint64_t *ret_counter(csi_engine *e, unsigned vcpu)
{
    uint64_t *counts = __atomic_load_n(&e->ret_counters, __ATOMIC_ACQUIRE);
    return counts ? &counts[vcpu] : NULL;
}

void csi_engine_pop_returns_quietly(csi_engine *e, csi_stack *s, unsigned vcpu, uint64_t n)
{
    pop_counted(e, s, vcpu, n, false);
}

/* Are returns counted for vcpu, to be popped before its next change? (The
 * count is written by this vCPU's translated code, on this thread.) */
static inline __attribute__((always_inline)) bool counted_pending(csi_engine *e, unsigned vcpu)
{
    uint64_t *counter = ret_counter(e, vcpu);
    return __builtin_expect(counter != NULL, 0) && *counter;
}

/* Before a change of s for vcpu: its counted returns first. The hot paths
 * test counted_pending and tail-call an out-of-line function that does
 * this, so that they stay free of spills. */
static inline __attribute__((always_inline)) void pop_counted_first(csi_engine *e, csi_stack *s,
                                                                   unsigned vcpu)
{
    if (counted_pending(e, vcpu)) {
        uint64_t *counter = ret_counter(e, vcpu);
        uint64_t n = *counter;
        *counter = 0;
        pop_counted(e, s, vcpu, n, true);
    }
}

/*
 * The common cases of a call and of a slot return, kept small (no spills,
 * no calls but the subscribers'): a stack with one writer, no reallocation,
 * no frame to unwind, no on_event subscriber or frame-word consumer. With
 * those the same cases go through their own out-of-line copies (call_slow,
 * ret_from_slot_slow), which build the event or the frame event;
 * everything else goes through the general code below them, which gives
 * the same result.
 */
static inline bool fast_ok(const csi_engine *e, const csi_stack *s, uint8_t rich)
{
    return single_writer(e, s) && !(__atomic_load_n(&e->rich, __ATOMIC_RELAXED) & rich);
}

/*
 * on_event subscribers of a fast-path event, out of line. The stack has one
 * writer, this thread, so it is read consistently without its lock after
 * the change; `f` is the frame pushed, or the one just popped (its memory
 * is still there: a fast pop never shrinks the array).
 */
static __attribute__((noinline)) void dispatch_event_fast(const csi_sublist *l, const csi_stack *s,
                                                          unsigned vcpu, callstack_event_kind kind,
                                                          const csi_frame *f, uint64_t pc)
{
    callstack_event ev;
    make_event(s, &ev, kind, f, false, pc);
    for (unsigned i = 0; i < l->n; i++) {
        ((on_event_t)l->fns[i])(vcpu, &ev);
    }
}

static __attribute__((noinline)) void call_general(csi_engine *e, csi_stack *s, unsigned vcpu, uint64_t func,
                         uint64_t ret_addr, uint64_t call_site, uint64_t sp);
static __attribute__((noinline)) void call_slow(csi_engine *e, csi_stack *s, unsigned vcpu,
                                                uint64_t func, uint64_t ret_addr,
                                                uint64_t call_site, uint64_t sp);

/* The stack takes the fast push: no reallocation, no frame to unwind. */
static inline bool push_fast_ok(const csi_stack *s, uint64_t sp)
{
    return !csi_stack_push_moves(s) &&
           !(s->resync && s->count > 0 && s->frames[s->count - 1].sp <= sp);
}

/* The fast push itself; returns the new frame's index. */
static inline __attribute__((always_inline)) uint32_t push_put(csi_stack *s, uint64_t func,
                                                               uint64_t ret_addr,
                                                               uint64_t call_site, uint64_t sp)
{
    uint32_t n = s->count;
    seq_open(s);
    csi_stack_put(s, n, func, ret_addr, call_site, sp);
    CSI_PUBLISH(s->n_calls, s->n_calls + 1);
    seq_close(s);
    return n;
}

/* The fast push when the frame consumer is all a call reports to: its own
 * copy, which keeps nothing across a call and so saves no register, and
 * ends in the consumer's tail call. */
static __attribute__((noinline)) void call_frames(csi_engine *e, csi_stack *s, unsigned vcpu,
                                                  uint64_t func, uint64_t ret_addr,
                                                  uint64_t call_site, uint64_t sp)
{
    on_frame_t fn = __atomic_load_n(&e->call_frames_only, __ATOMIC_ACQUIRE);
    uint32_t n = push_put(s, func, ret_addr, call_site, sp);
    s->words[n] = 0;
    frame_notify_fast(fn, s, vcpu, CALLSTACK_EVENT_CALL, &s->frames[n], n, func);
}

/* The fast push and its subscribers; `events`: on_event subscribers too,
 * for which the (always inlined) copy is out of line (call_slow). */
static inline __attribute__((always_inline)) void push_fast(csi_engine *e, csi_stack *s,
                                                            unsigned vcpu, uint64_t func,
                                                            uint64_t ret_addr, uint64_t call_site,
                                                            uint64_t sp, bool events,
                                                            bool frames)
{
    uint32_t n = push_put(s, func, ret_addr, call_site, sp);
    csi_sublist *l = __atomic_load_n(&e->subs[CSI_SUB_CALL], __ATOMIC_ACQUIRE);
    if (l) {
        dispatch_funcs(l, vcpu, func);
    }
    if (events) {
        if (frames) {
            s->words[n] = 0;
        }
        l = __atomic_load_n(&e->subs[CSI_SUB_EVENT], __ATOMIC_ACQUIRE);
        if (l) {
            dispatch_event_fast(l, s, vcpu, CALLSTACK_EVENT_CALL, &s->frames[n], func);
        }
        on_frame_t fn = frames ? __atomic_load_n(&e->frame_call, __ATOMIC_ACQUIRE) : NULL;
        if (fn) {
            frame_notify_fast(fn, s, vcpu, CALLSTACK_EVENT_CALL, &s->frames[n], n, func);
        }
    }
}

/* Not the bare fast push: the frame consumer's copy, or the rest. (The
 * same arguments throughout, so each step is a plain jump.) */
static __attribute__((noinline)) void call_rich(csi_engine *e, csi_stack *s, unsigned vcpu,
                                                uint64_t func, uint64_t ret_addr,
                                                uint64_t call_site, uint64_t sp)
{
    if (__atomic_load_n(&e->call_frames_only, __ATOMIC_RELAXED) && single_writer(e, s) &&
        push_fast_ok(s, sp)) {
        call_frames(e, s, vcpu, func, ret_addr, call_site, sp);
    } else {
        call_slow(e, s, vcpu, func, ret_addr, call_site, sp);
    }
}

/* A call after counted returns: they are popped first. */
static __attribute__((noinline)) void call_counted(csi_engine *e, csi_stack *s, unsigned vcpu,
                                                   uint64_t func, uint64_t ret_addr,
                                                   uint64_t call_site, uint64_t sp)
{
    pop_counted_first(e, s, vcpu);
    call_slow(e, s, vcpu, func, ret_addr, call_site, sp);
}

/*
 * The common case of counted returns, inline on the call path: the stack
 * has one writer and no subscriber to tell, and holds the frames, which
 * leave without reallocation: one change of the count (lazy returns exist
 * to make returns cheap). False: nothing done (call_counted then pops).
 */
static inline __attribute__((always_inline)) bool pop_counted_fast(const csi_engine *e,
                                                                   csi_stack *s, uint64_t *counter)
{
    uint64_t n = *counter;
    uint32_t c;
    if (!fast_ok(e, s, CSI_RICH_RET) || __atomic_load_n(&e->subs[CSI_SUB_RET], __ATOMIC_RELAXED) ||
        n > (c = s->count) ||
        (s->cap > 4 * CSI_STACK_INITIAL_CAP && c - n < s->cap / 4)) {
        return false;
    }
    *counter = 0;
    seq_open(s);
    CSI_PUBLISH(s->count, c - (uint32_t)n);
    CSI_PUBLISH(s->n_returns, s->n_returns + n);
    CSI_PUBLISH(s->n_counted, s->n_counted + n);
    seq_close(s);
    return true;
}

void csi_engine_call(csi_engine *e, csi_stack *s, unsigned vcpu, uint64_t func,
                    uint64_t ret_addr, uint64_t call_site, uint64_t sp)
{
    uint64_t *counter = ret_counter(e, vcpu);
    if (__builtin_expect(counter != NULL, 0) && *counter && !pop_counted_fast(e, s, counter)) {
        call_counted(e, s, vcpu, func, ret_addr, call_site, sp);
        return;
    }
    /* (the stack is read only once fast_ok says this thread is its one
     * writer: other threads may be changing a shared stack under its lock) */
    if (!fast_ok(e, s, CSI_RICH_CALL) || !push_fast_ok(s, sp)) {
        /* (both take these arguments: a plain jump either way) */
        if (__atomic_load_n(&e->rich, __ATOMIC_RELAXED) & CSI_RICH_FRAMES) {
            call_rich(e, s, vcpu, func, ret_addr, call_site, sp);
        } else {
            call_slow(e, s, vcpu, func, ret_addr, call_site, sp);
        }
        return;
    }
    push_fast(e, s, vcpu, func, ret_addr, call_site, sp, false, false);
}

/* The fast push with on_event subscribers, or the general call. */
static void call_slow(csi_engine *e, csi_stack *s, unsigned vcpu, uint64_t func,
                      uint64_t ret_addr, uint64_t call_site, uint64_t sp)
{
    if (!single_writer(e, s) || !push_fast_ok(s, sp)) {
        call_general(e, s, vcpu, func, ret_addr, call_site, sp);
        return;
    }
    /* (a copy without the frame consumer's code for on_event alone) */
    if (__atomic_load_n(&e->rich, __ATOMIC_RELAXED) & CSI_RICH_FRAMES) {
        push_fast(e, s, vcpu, func, ret_addr, call_site, sp, true, true);
    } else {
        push_fast(e, s, vcpu, func, ret_addr, call_site, sp, true, false);
    }
}

static __attribute__((noinline)) void call_general(csi_engine *e, csi_stack *s, unsigned vcpu, uint64_t func,
                         uint64_t ret_addr, uint64_t call_site, uint64_t sp)
{
    csi_sublist *evs = event_subs(e);
    on_frame_t fn = __atomic_load_n(&e->frame_call, __ATOMIC_ACQUIRE);
    bool single = single_writer(e, s);
    callstack_event ev;
    bool locked = write_begin(e, s, OP_PUSH);
    if (s->resync && top_is_dead(e, s, sp, true)) {
        /* Rare (after a non-local exit): report the dead frames first. */
        write_end(s, locked);
        pop_dead(e, s, vcpu, sp, true, func);
        locked = write_begin(e, s, OP_ANY);
    }
    csi_stack_push(s, func, ret_addr, call_site, sp);
    uint32_t top = s->count - 1;
    s->words[top] = 0;
    uint64_t parent_word = top ? s->words[top - 1] : 0;
    if (evs || fn) {
        make_event(s, &ev, CALLSTACK_EVENT_CALL, &s->frames[top], false, func);
    }
    CSI_PUBLISH(s->n_calls, s->n_calls + 1);
    write_end(s, locked);
    dispatch(e, vcpu, CALLSTACK_EVENT_CALL, func, evs ? &ev : NULL);
    if (fn) {
        /* (one writer: the frame stays where it is until this thread
         * changes the stack again) */
        frame_notify_full(fn, s, vcpu, &ev, single ? &s->words[top] : NULL, parent_word);
    }
}

/*
 * Which frame does a return to `target` with stack pointer `sp` leave?
 * The nearest frame to the top whose return address is the target; with
 * sp_resync it must also lie at or below sp, and the search stops at the
 * first frame above sp (deeper frames are higher still). Returns its index
 * from the top, or -1.
 */
static int64_t find_returnee(const csi_engine *e, const csi_stack *s, uint64_t target, uint64_t sp)
{
    bool use_sp = s->resync;
    uint32_t limit = use_sp ? s->count : MIN(s->count, e->cfg.search_limit);
    for (uint32_t i = 0; i < limit; i++) {
        const csi_frame *f = csi_stack_peek(s, i);
        if (use_sp && f->sp > sp) {
            return -1;
        }
        if (f->ret_addr == target) {
            return i;
        }
    }
    return -1;
}

void csi_engine_ret(csi_engine *e, csi_stack *s, unsigned vcpu, uint64_t target, uint64_t sp)
{
    pop_counted_first(e, s, vcpu);
    bool locked = write_begin(e, s, OP_POP);
    int64_t idx = find_returnee(e, s, target, sp);
    if (idx == 0) {
        /* The common case: the top frame returns. */
        pop_report(e, s, locked, vcpu, false, target);
        return;
    }
    if (idx < 0) {
        /* Nothing to match: a return into a forgotten frame (max_depth), or
         * into code whose call we did not see (signal trampolines, a return
         * used as an indirect jump). Defined outcome: no event; with sp, the
         * frames sp has left behind are unwound. */
        if (s->count == 0 && s->forgotten > 0) {
            CSI_PUBLISH(s->forgotten, s->forgotten - 1);
        }
        CSI_PUBLISH(s->n_unmatched, s->n_unmatched + 1);
        write_end(s, locked);
        if (s->resync) {
            pop_dead(e, s, vcpu, sp, false, target);
        }
        return;
    }
    write_end(s, locked);
    /* Frames above the returnee were skipped: unwound. Then the returnee.
     * (A stack shared by threads can change in between: stop if it empties.) */
    for (int64_t i = 0; i <= idx; i++) {
        locked = write_begin(e, s, OP_ANY);
        if (s->count == 0) {
            write_end(s, locked);
            return;
        }
        pop_report(e, s, locked, vcpu, i != idx, target);
    }
}

static __attribute__((noinline)) bool ret_from_slot_general(csi_engine *e, csi_stack *s,
                                                            unsigned vcpu, uint64_t slot);

/*
 * The fast slot return and its subscribers, if `ok` (the stack has one
 * writer and no on_event subscriber, or `events`: on_event subscribers
 * allowed) and the top frame can be popped without reallocation: 1 if
 * popped, 0 if the slot is not the top frame's; else -1 and nothing done.
 */
/* The fast pop itself, of frame n - 1. */
static inline __attribute__((always_inline)) void pop_put(csi_stack *s, uint32_t n)
{
    seq_open(s);
    CSI_PUBLISH(s->count, n - 1);
    CSI_PUBLISH(s->n_returns, s->n_returns + 1);
    seq_close(s);
}

static inline __attribute__((always_inline)) int pop_slot_fast(csi_engine *e, csi_stack *s,
                                                               unsigned vcpu, uint64_t slot,
                                                               bool ok, bool events,
                                                               bool frames)
{
    uint32_t n;
    if (!ok || (n = s->count) == 0 || csi_stack_pop_moves(s)) {
        return -1;
    }
    const csi_frame *top = &s->frames[n - 1];
    if (top->sp != slot) {
        return 0;
    }
    uint64_t func = top->func;
    pop_put(s, n);
    csi_sublist *l = __atomic_load_n(&e->subs[CSI_SUB_RET], __ATOMIC_ACQUIRE);
    if (l) {
        dispatch_funcs(l, vcpu, func);
    }
    if (events) {
        l = __atomic_load_n(&e->subs[CSI_SUB_EVENT], __ATOMIC_ACQUIRE);
        if (l) {
            dispatch_event_fast(l, s, vcpu, CALLSTACK_EVENT_RET, top, top->ret_addr);
        }
        on_frame_t fn = frames ? __atomic_load_n(&e->frame_ret, __ATOMIC_ACQUIRE) : NULL;
        if (fn) {
            frame_notify_fast(fn, s, vcpu, CALLSTACK_EVENT_RET, top, n - 1, top->ret_addr);
        }
    }
    return 1;
}

/* The fast slot return with on_event subscribers, or the general one. */
static __attribute__((noinline)) bool ret_from_slot_slow(csi_engine *e, csi_stack *s,
                                                         unsigned vcpu, uint64_t slot)
{
    int r = __atomic_load_n(&e->rich, __ATOMIC_RELAXED) & CSI_RICH_FRAMES
                ? pop_slot_fast(e, s, vcpu, slot, single_writer(e, s), true, true)
                : pop_slot_fast(e, s, vcpu, slot, single_writer(e, s), true, false);
    return r >= 0 ? r : ret_from_slot_general(e, s, vcpu, slot);
}

/* A slot return after counted returns: they are popped first. */
static __attribute__((noinline)) bool ret_from_slot_counted(csi_engine *e, csi_stack *s,
                                                            unsigned vcpu, uint64_t slot)
{
    pop_counted_first(e, s, vcpu);
    return ret_from_slot_slow(e, s, vcpu, slot);
}

/*
 * Not the bare fast slot return. One the frame consumer alone hears (no
 * on_ret or on_event subscriber), on a stack with one writer and without
 * reallocation, is done here: nothing is live across the consumer's
 * callback, so no register is saved. Anything else: ret_from_slot_slow.
 */
static __attribute__((noinline)) bool ret_rich(csi_engine *e, csi_stack *s, unsigned vcpu,
                                               uint64_t slot)
{
    on_frame_t fn = __atomic_load_n(&e->ret_frames_only, __ATOMIC_ACQUIRE);
    uint32_t n = s->count;
    if (!fn || !single_writer(e, s) || n == 0 || csi_stack_pop_moves(s)) {
        return ret_from_slot_slow(e, s, vcpu, slot);
    }
    const csi_frame *top = &s->frames[n - 1];
    if (top->sp != slot) {
        return false;
    }
    pop_put(s, n);
    frame_notify_fast(fn, s, vcpu, CALLSTACK_EVENT_RET, top, n - 1, top->ret_addr);
    return true;
}

bool csi_engine_ret_from_slot(csi_engine *e, csi_stack *s, unsigned vcpu, uint64_t slot)
{
    if (counted_pending(e, vcpu)) {
        return ret_from_slot_counted(e, s, vcpu, slot);
    }
    int r = pop_slot_fast(e, s, vcpu, slot, fast_ok(e, s, CSI_RICH_RET), false, false);
    if (r >= 0) {
        return r;
    }
    return __atomic_load_n(&e->rich, __ATOMIC_RELAXED) & CSI_RICH_FRAMES
               ? ret_rich(e, s, vcpu, slot)
               : ret_from_slot_slow(e, s, vcpu, slot);
}

static bool ret_from_slot_general(csi_engine *e, csi_stack *s, unsigned vcpu, uint64_t slot)
{
    bool locked = write_begin(e, s, OP_POP);
    const csi_frame *top = csi_stack_peek(s, 0);
    if (!top || top->sp != slot) {
        write_end(s, locked);
        return false;
    }
    pop_report(e, s, locked, vcpu, false, top->ret_addr);
    return true;
}

bool csi_engine_unwind_top(csi_engine *e, csi_stack *s, unsigned vcpu, const csi_frame *expected,
                          uint64_t pc)
{
    pop_counted_first(e, s, vcpu);
    bool locked = write_begin(e, s, OP_ANY);
    const csi_frame *top = csi_stack_peek(s, 0);
    if (!top || top->func != expected->func || top->ret_addr != expected->ret_addr ||
        top->call_site != expected->call_site || top->sp != expected->sp) {
        write_end(s, locked);
        return false;
    }
    pop_report(e, s, locked, vcpu, true, pc);
    return true;
}

/* ---- reading ----------------------------------------------------------- */

/*
 * Runs `copy` on a consistent state of s. Under the lock frames cannot move;
 * a lock-free writer (write_begin) may still be changing them, which an odd
 * or changed seq tells: then copy again. The lock is released while waiting
 * for a change to end, since the writer may need it to reallocate.
 */
static void read_stack(csi_stack *s, void (*copy)(const csi_stack *s, void *arg), void *arg)
{
    for (unsigned spins = 0;; spins++) {
        csi_stack_lock(s);
        uint32_t before = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if (!(before & 1)) {
            /* (copy loads with acquire, CSI_SNAPSHOT: the seq load below
             * cannot move before them) */
            copy(s, arg);
            if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == before) {
                csi_stack_unlock(s);
                return;
            }
        }
        csi_stack_unlock(s);
        if (spins > 64) {
            g_thread_yield();
        }
    }
}

typedef struct list_arg {
    const csi_read_view *view;
    uint64_t *out;
    uint32_t n, m;
    bool functions;
} list_arg;

/* The frame count, read once: a lock-free writer may change it during the
 * copy (seq then makes the reader copy again), but indexes must stay within
 * the array meanwhile. (`frames` and `cap` do not change under the lock.) */
static inline uint32_t count_once(const csi_stack *s)
{
    uint32_t c = CSI_SNAPSHOT(s->count);
    return MIN(c, s->cap);
}

/*
 * The frames `view` sees (csi_read_view): how many of the retained ones
 * (out of count_once's c), and how many forgotten ones (*forgotten).
 */
static uint32_t count_seen(const csi_stack *s, const csi_read_view *view, uint32_t c,
                           uint64_t *forgotten)
{
    uint64_t f = CSI_SNAPSHOT(s->forgotten);
    if (view) {
        uint64_t skip = MIN(view->pending, (uint64_t)c);
        c -= (uint32_t)skip;
        f -= MIN(view->pending - skip, f);
    }
    if (forgotten) {
        *forgotten = f;
    }
    return c;
}

/* A frame as a reader on another thread copies it. */
static inline void frame_snapshot(const csi_frame *f, csi_frame *out)
{
    out->func = CSI_SNAPSHOT(f->func);
    out->ret_addr = CSI_SNAPSHOT(f->ret_addr);
    out->call_site = CSI_SNAPSHOT(f->call_site);
    out->sp = CSI_SNAPSHOT(f->sp);
}

static void copy_list(const csi_stack *s, void *p)
{
    list_arg *a = p;
    uint32_t c = count_seen(s, a->view, count_once(s), NULL);
    a->m = MIN(a->n, c);
    for (uint32_t i = 0; i < a->m; i++) {
        const csi_frame *f = &s->frames[c - 1 - i];
        a->out[i] = a->functions ? CSI_SNAPSHOT(f->func) : CSI_SNAPSHOT(f->ret_addr);
    }
}

static uint32_t list_at(csi_engine *e, csi_stack *s, const csi_read_view *view, uint64_t *out,
                        uint32_t n, bool functions)
{
    (void)e;
    list_arg a = { .view = view, .out = out, .n = n, .functions = functions };
    read_stack(s, copy_list, &a);
    return a.m;
}

uint32_t csi_engine_callers_at(csi_engine *e, csi_stack *s, const csi_read_view *view,
                               uint64_t *out, uint32_t n)
{
    return list_at(e, s, view, out, n, false);
}

uint32_t csi_engine_functions_at(csi_engine *e, csi_stack *s, const csi_read_view *view,
                                 uint64_t *out, uint32_t n)
{
    return list_at(e, s, view, out, n, true);
}

uint32_t csi_engine_callers(csi_engine *e, csi_stack *s, uint64_t *out, uint32_t n)
{
    return list_at(e, s, NULL, out, n, false);
}

uint32_t csi_engine_functions(csi_engine *e, csi_stack *s, uint64_t *out, uint32_t n)
{
    return list_at(e, s, NULL, out, n, true);
}

/* A reader's arguments for copy_depth and copy_where. */
typedef struct view_arg {
    const csi_read_view *view;
    void *out;
} view_arg;

static void copy_depth(const csi_stack *s, void *p)
{
    view_arg *a = p;
    uint64_t f;
    uint32_t c = count_seen(s, a->view, count_once(s), &f);
    *(uint64_t *)a->out = f + c;
}

uint64_t csi_engine_depth_at(csi_engine *e, csi_stack *s, const csi_read_view *view)
{
    uint64_t d;
    (void)e;
    view_arg a = { .view = view, .out = &d };
    read_stack(s, copy_depth, &a);
    return d;
}

uint64_t csi_engine_depth(csi_engine *e, csi_stack *s)
{
    return csi_engine_depth_at(e, s, NULL);
}

static void copy_where(const csi_stack *s, void *p)
{
    view_arg *a = p;
    uint32_t c = count_seen(s, a->view, count_once(s), NULL);
    csi_frame top;
    if (c) {
        frame_snapshot(&s->frames[c - 1], &top);
    }
    fill_where_top(s, c ? &top : NULL, a->out);
}

void csi_engine_set_label(csi_engine *e, csi_stack *s, const csi_stack_id *label)
{
    bool locked = write_begin(e, s, OP_ANY);
    s->label = *label;
    s->consumer_word = 0;   /* events show another id: the consumer's state is another's */
    write_end(s, locked);
}

void csi_engine_fill_prog_point_at(csi_engine *e, csi_stack *s, const csi_read_view *view,
                                   prog_point *p)
{
    (void)e;
    view_arg a = { .view = view, .out = p };
    read_stack(s, copy_where, &a);
}

void csi_engine_fill_prog_point(csi_engine *e, csi_stack *s, prog_point *p)
{
    csi_engine_fill_prog_point_at(e, s, NULL, p);
}

typedef struct top_arg {
    csi_frame *out;
    uint32_t below;
    bool found;
} top_arg;

static void copy_top(const csi_stack *s, void *p)
{
    top_arg *a = p;
    uint32_t c = count_once(s);
    a->found = c > a->below;
    if (a->found) {
        frame_snapshot(&s->frames[c - 1 - a->below], a->out);
    }
}

bool csi_engine_top(csi_engine *e, csi_stack *s, csi_frame *out)
{
    return csi_engine_frame_below_top(e, s, 0, out);
}

bool csi_engine_frame_below_top(csi_engine *e, csi_stack *s, uint32_t k, csi_frame *out)
{
    (void)e;
    top_arg a = { .out = out, .below = k };
    read_stack(s, copy_top, &a);
    return a.found;
}

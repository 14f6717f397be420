/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stack_type=heuristic: telling stacks apart by the stack pointer alone,
 * within an address space, for guests whose threads we cannot see.
 *
 * A stack covers the stack-pointer range from the latest sp seen on it up to
 * the highest one: a thread's stack grows down from near its highest sp and
 * returns (or longjmps) back up within that range. An sp within
 * stack_distance of that range stays on the stack; anything else is another
 * stack (another thread, a coroutine, a signal stack), found among the
 * address space's stacks by the same rule, or created.
 *
 * Stacks are looked up only when the sp leaves the current one, so the
 * common case costs two comparisons. The number of stacks per address space
 * is bounded: the least recently used one no vCPU is on is freed.
 *
 * The same groups bound whole-system stacks (csi_engine_bounded_switch): one
 * group of user stacks and one of kernel stacks, max_spaces each. There is
 * no operating-system view of which address spaces and kernel stacks are
 * dead, so the least recently used ones go.
 */
#include "engine_internal.h"

typedef struct csi_heuristic_group {
    GPtrArray *stacks;   /* csi_stack*, owned by e->stacks */
    uint64_t last_use;   /* heuristic: LRU tick of the address space */
} csi_heuristic_group;

void csi_heuristic_group_free(gpointer p)
{
    csi_heuristic_group *g = p;
    g_ptr_array_free(g->stacks, TRUE);
    g_free(g);
}

/* a + b, saturating: no wrap-around at the top of the address space. */
static inline uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/*
 * A stack's range is updated without the table lock by the vCPU on it (the
 * common case below) while another vCPU may scan the group under the lock:
 * relaxed atomic accesses (plain moves on x86-64). A scan that sees a range
 * a moment old picks the same stack or creates another, as it would a
 * moment earlier.
 */
static inline uint64_t last_sp(const csi_stack *s)
{
    return __atomic_load_n(&s->last_sp, __ATOMIC_RELAXED);
}

static inline uint64_t high_sp(const csi_stack *s)
{
    return __atomic_load_n(&s->high_sp, __ATOMIC_RELAXED);
}

static inline void set_range(csi_stack *s, uint64_t sp)
{
    __atomic_store_n(&s->last_sp, sp, __ATOMIC_RELAXED);
    if (sp > high_sp(s)) {
        __atomic_store_n(&s->high_sp, sp, __ATOMIC_RELAXED);
    }
}

static inline bool covers(const csi_stack *s, uint64_t sp, uint64_t d)
{
    return sp <= sat_add(high_sp(s), d) && sat_add(sp, d) >= last_sp(s);
}

static inline uint64_t distance(uint64_t a, uint64_t b)
{
    return a > b ? a - b : b - a;
}

static csi_stack_id group_key(const csi_stack_id *space)
{
    csi_stack_id k = { .first = space->first, .kind = STACK_HEURISTIC, .kernel = space->kernel };
    return k;
}

/* Whole-system stacks: one group per class (user, kernel). */
static csi_stack_id class_key(const csi_stack_id *id)
{
    csi_stack_id k = { .kind = id->kind, .kernel = id->kernel };
    return k;
}

static csi_heuristic_group *group_by_key(csi_engine *e, csi_stack_id k, bool create)
{
    csi_heuristic_group *g = g_hash_table_lookup(e->groups, &k);
    if (!g && create) {
        g = g_new0(csi_heuristic_group, 1);
        g->stacks = g_ptr_array_new();
        g_hash_table_insert(e->groups, g_memdup2(&k, sizeof k), g);
        e->n_spaces += k.kind == STACK_HEURISTIC;
    }
    return g;
}

static csi_heuristic_group *group_of(csi_engine *e, const csi_stack_id *space, bool create)
{
    return group_by_key(e, group_key(space), create);
}

void csi_heuristic_forget_locked(csi_engine *e, csi_stack *s)
{
    csi_heuristic_group *g;
    if (s->id.kind == STACK_HEURISTIC) {
        g = group_of(e, &s->id, false);
    } else if (e->cfg.max_spaces) {
        g = group_by_key(e, class_key(&s->id), false);
    } else {
        return;
    }
    if (g) {
        g_ptr_array_remove_fast(g->stacks, s);
    }
}

void csi_heuristic_adopt_locked(csi_engine *e, csi_stack *s)
{
    g_ptr_array_add(group_of(e, &s->id, true)->stacks, s);
}

/* Frees the least recently used stack of the group that no vCPU is on. */
static void evict_one_locked(csi_engine *e, csi_heuristic_group *g)
{
    csi_stack *victim = NULL;
    for (guint i = 0; i < g->stacks->len; i++) {
        csi_stack *s = g_ptr_array_index(g->stacks, i);
        if (s->users == 0 && (!victim || s->last_use < victim->last_use)) {
            victim = s;
        }
    }
    if (victim) {
        g_ptr_array_remove_fast(g->stacks, victim);
        csi_engine_retire_stats_locked(e, victim);
        g_hash_table_remove(e->stacks, &victim->id);
    }
}

/* Evicts until the group has room for one more stack, or every stack left
 * has a vCPU on it (then the bound is the vCPU count). */
static void make_room_locked(csi_engine *e, csi_heuristic_group *g, uint32_t max)
{
    while (g->stacks->len >= max) {
        guint before = g->stacks->len;
        evict_one_locked(e, g);
        if (g->stacks->len == before) {
            break;
        }
    }
}

/*
 * Address spaces come and go (whole-system mode: processes), and nothing
 * says when one is dead: beyond max_spaces of them, the least recently used
 * address space no vCPU is on is freed with all its stacks.
 */
static void make_room_spaces_locked(csi_engine *e)
{
    while (e->n_spaces >= e->cfg.max_spaces) {
        GHashTableIter it;
        gpointer key, value, victim_key = NULL;
        csi_heuristic_group *victim = NULL;
        g_hash_table_iter_init(&it, e->groups);
        while (g_hash_table_iter_next(&it, &key, &value)) {
            csi_heuristic_group *g = value;
            if (((csi_stack_id *)key)->kind != STACK_HEURISTIC ||
                (victim && g->last_use >= victim->last_use)) {
                continue;
            }
            bool idle = true;
            for (guint i = 0; i < g->stacks->len && idle; i++) {
                idle = ((csi_stack *)g_ptr_array_index(g->stacks, i))->users == 0;
            }
            if (idle) {
                victim = g;
                victim_key = key;
            }
        }
        if (!victim) {
            return;   /* every space has a vCPU on it */
        }
        while (victim->stacks->len) {
            csi_stack *s = g_ptr_array_steal_index_fast(victim->stacks, victim->stacks->len - 1);
            csi_engine_retire_stats_locked(e, s);
            g_hash_table_remove(e->stacks, &s->id);
        }
        g_hash_table_remove(e->groups, victim_key);
        e->n_spaces--;
    }
}

csi_stack *csi_engine_heuristic_stack(csi_engine *e, const csi_stack_id *space, uint64_t sp,
                                    csi_stack *current)
{
    csi_stack *slot = current;
    return csi_engine_heuristic_switch(e, space, sp, &slot);
}

csi_stack *csi_engine_heuristic_switch(csi_engine *e, const csi_stack_id *space, uint64_t sp,
                                     csi_stack **slot)
{
    uint64_t d = e->cfg.stack_distance;
    csi_stack *current = *slot;
    if (current && covers(current, sp, d)) {
        set_range(current, sp);
        return current;
    }
    g_mutex_lock(&e->table_lock);
    csi_heuristic_group *g = group_of(e, space, false);
    if (!g) {
        if (e->cfg.max_spaces) {
            make_room_spaces_locked(e);
        }
        g = group_of(e, space, true);
    }
    csi_stack *best = NULL;
    for (guint i = 0; i < g->stacks->len; i++) {
        csi_stack *s = g_ptr_array_index(g->stacks, i);
        if (covers(s, sp, d) && (!best || distance(last_sp(s), sp) < distance(last_sp(best), sp))) {
            best = s;
        }
    }
    if (!best) {
        make_room_locked(e, g, e->cfg.max_heuristic_stacks);
        csi_stack_id id = { .first = space->first, .second = sp, .kind = STACK_HEURISTIC,
                           .kernel = space->kernel };
        best = g_hash_table_lookup(e->stacks, &id);
        if (!best) {
            best = csi_engine_new_stack_locked(e, &id);
        }
        if (!g_ptr_array_find(g->stacks, best, NULL)) {
            g_ptr_array_add(g->stacks, best);
        }
        __atomic_store_n(&best->high_sp, sp, __ATOMIC_RELAXED);
    }
    set_range(best, sp);
    best->last_use = ++e->lru_tick;
    g->last_use = best->last_use;
    if (best != current) {
        if (current) {
            current->users--;
        }
        best->users++;
        /* Published under the lock: `current` may be evicted as soon as the
         * lock is released, and a reader of *slot holding the lock
         * (csi_engine_pin) must never find it there afterwards. */
        __atomic_store_n(slot, best, __ATOMIC_RELEASE);
    }
    g_mutex_unlock(&e->table_lock);
    return best;
}

csi_stack *csi_engine_bounded_switch(csi_engine *e, const csi_stack_id *id, csi_stack **slot)
{
    g_mutex_lock(&e->table_lock);
    csi_stack *s = g_hash_table_lookup(e->stacks, id);
    if (!s) {
        csi_heuristic_group *g = NULL;
        if (e->cfg.max_spaces) {
            g = group_by_key(e, class_key(id), true);
            make_room_locked(e, g, e->cfg.max_spaces);
        }
        s = csi_engine_new_stack_locked(e, id);
        if (g) {
            g_ptr_array_add(g->stacks, s);
        }
    }
    uint64_t now = ++e->lru_tick;
    s->last_use = now;
    csi_stack *current = *slot;
    if (s != current) {
        if (current) {
            /* A stack a vCPU stayed on for long was in use until now. */
            current->last_use = now;
            current->users--;
        }
        s->users++;
        /* Published under the lock, as in csi_engine_heuristic_switch. */
        __atomic_store_n(slot, s, __ATOMIC_RELEASE);
    }
    g_mutex_unlock(&e->table_lock);
    return s;
}

void csi_engine_release_stack(csi_engine *e, csi_stack *s)
{
    g_mutex_lock(&e->table_lock);
    if (s->users > 0) {
        s->users--;
    }
    g_mutex_unlock(&e->table_lock);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine's table of stacks, as both engine.c (stacks by id) and
 * heuristic.c (stacks by address space and stack pointer) fill and empty
 * it. It calls neither of them, so neither depends on the other through it.
 */
#include "engine_internal.h"

guint id_hash(gconstpointer k) { return csi_stack_id_hash(k); }
gboolean id_equal(gconstpointer a, gconstpointer b) { return csi_stack_id_equal(a, b); }

csi_stack *csi_engine_new_stack_locked(csi_engine *e, const csi_stack_id *id)
{
    csi_stack *s = g_aligned_alloc(1, sizeof *s, _Alignof(csi_stack));
    csi_stack_init(s, id, e->cfg.max_depth);
    s->owned = e->cfg.threaded_owned && id->kind == STACK_THREADED;
    s->resync = e->cfg.sp_resync ||
                (e->cfg.sp_resync_own && (id->kernel || id->kind != STACK_ASID));
    g_hash_table_insert(e->stacks, &s->id, s);
    e->n_created++;
    return s;
}

void csi_engine_retire_stats_locked(csi_engine *e, const csi_stack *s)
{
    e->n_calls += s->n_calls;
    e->n_returns += s->n_returns;
    e->n_unwound += s->n_unwound;
    e->n_unmatched += s->n_unmatched;
    e->n_counted += s->n_counted;
}

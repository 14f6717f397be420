/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The engine's private state, shared by engine.c, heuristic.c and stack_table.c. */
#ifndef CSI_ENGINE_INTERNAL_H
#define CSI_ENGINE_INTERNAL_H

#include "engine.h"

/*
 * Subscriber lists are copy-on-write: dispatch reads the current array with
 * one atomic load and no lock, registration publishes a new array. Old arrays
 * may still be in use by a dispatching thread, so they are retired and freed
 * with the engine; registrations are rare, so this stays small.
 */
typedef struct csi_sublist {
    unsigned n;
    void (*fns[])(void);
} csi_sublist;

#define CSI_RICH_CALL 1u
#define CSI_RICH_RET  2u
#define CSI_RICH_FRAMES 4u   /* a frame consumer holds the words */

struct csi_engine {
    /* What every event reads, in the first cache line. */
    csi_sublist *subs[CSI_SUB_KINDS];
    bool concurrent;             /* see csi_engine_config.starts_single_threaded */
    bool ret_addr_on_stack;      /* = cfg.ret_addr_on_stack */
    uint64_t resync_window;      /* = cfg.resync_window */
    /* Lazy returns (csi_engine_set_return_counters): each vCPU's count of
     * return instructions not reported yet, ret_counters[vcpu]; NULL while
     * returns are reported. */
    uint64_t *ret_counters;
    /* The frame-word consumer's callbacks (csi_engine_claim_frames). */
    on_frame_t frame_call, frame_ret;
    /* CSI_RICH_CALL, CSI_RICH_RET: calls, returns take the paths that
     * build more than the function, for on_event subscribers or the
     * frame-word consumer (one test on the fast paths) */
    uint8_t rich;
    /* frame_call when it is all a call reports to (no on_call or on_event
     * subscriber), else NULL */
    on_frame_t call_frames_only;
    on_frame_t ret_frames_only;  /* the same for returns and frame_ret */

    csi_engine_config cfg;
    GMutex table_lock;           /* guards stacks, groups, lru_tick */
    GHashTable *stacks;          /* csi_stack_id* -> csi_stack* (key inside value) */
    GHashTable *groups;          /* heuristic: address space id -> csi_heuristic_group* */
    uint64_t lru_tick;
    uint32_t n_spaces;           /* heuristic groups (address spaces) */
    GMutex sub_lock;
    GPtrArray *retired;
    /* Statistics of freed stacks (live ones count in the stacks), and how
     * many stacks were made; under table_lock. */
    uint64_t n_calls, n_returns, n_unwound, n_unmatched, n_created, n_counted;
};

/* stack_table.c; *_locked functions need table_lock held. */
guint id_hash(gconstpointer k);
gboolean id_equal(gconstpointer a, gconstpointer b);
/* A new stack (csi_stack_init plus the engine's per-stack settings), in the
 * table. */
csi_stack *csi_engine_new_stack_locked(csi_engine *e, const csi_stack_id *id);
/* A stack's statistics, added to the engine's before the stack is freed. */
void csi_engine_retire_stats_locked(csi_engine *e, const csi_stack *s);

/* heuristic.c; *_locked functions need table_lock held. */
void csi_heuristic_group_free(gpointer group);
void csi_heuristic_forget_locked(csi_engine *e, csi_stack *s);
void csi_heuristic_adopt_locked(csi_engine *e, csi_stack *s);

#endif

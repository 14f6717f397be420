/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A shadow call stack: the frames a guest stack holds, as seen by calls and
 * returns. Plain data; the caller (engine.c) does the locking.
 */
#ifndef CSI_SHADOW_STACK_H
#define CSI_SHADOW_STACK_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "callstack_instr/callstack_instr_types.h"
#include "callstack_instr/spin.h"

/* What tells stacks apart; see prog_point for the meaning of each field. */
typedef struct csi_stack_id {
    uint64_t first;
    uint64_t second;
    stack_type kind;
    bool kernel;
    /* Tells apart stacks the ids of PANDA's formats cannot: whole-system
     * threaded stacks of one (process, thread) that are not one guest stack
     * (the user stack before and after an execve, a thread id reused by a
     * new task). Part of equality, never shown. */
    uint64_t instance;
} csi_stack_id;

typedef struct csi_frame {
    uint64_t func;       /* entry of the called function */
    uint64_t ret_addr;   /* where a normal return lands */
    uint64_t call_site;  /* the call instruction */
    uint64_t sp;         /* stack pointer at the callee's entry */
} csi_frame;

typedef struct csi_stack {
    /* What every call and return touches, in the first cache line. */
    csi_frame *frames;     /* frames[0] is the oldest retained frame */
    uint32_t count;       /* retained frames */
    uint32_t cap;         /* allocated frames */
    uint32_t max_depth;   /* retained frames never exceed this */
    /* The frame-word consumer's word of each frame (engine.c,
     * csi_engine_claim_frames), beside `frames` (same capacity) so that a
     * frame stays 32 bytes: 0 when the frame is pushed while a consumer
     * holds the words, then changed only by that consumer, on the stack's
     * one writer thread. Nobody else reads them. */
    uint64_t *words;
    /* Writers hold `lock`, except on a stack only one thread changes
     * (engine.c, write_begin): then `seq` is odd during a change, and readers
     * on other threads take the lock (which keeps `frames` from moving) and
     * retry until they saw an even, unchanged seq. */
    uint32_t seq;
    bool owned;           /* only its own thread (vCPU) ever changes it */
    bool resync;          /* the engine uses sp on this stack (set by engine.c) */
    /* Events on this stack (engine statistics), changed like the frames. */
    uint64_t n_calls, n_returns;
    /* stack_type=heuristic (heuristic.c): the stack-pointer range this stack
     * covers, from the latest sp seen on it up to the highest. */
    uint64_t last_sp;
    uint64_t high_sp;

    csi_stack_id id;
    /* The id events and program points show: `id` unless the host labels
     * the stack otherwise (csi_engine_set_label): whole-system threaded
     * mode keys kernel stacks by where they are and shows whose they are. */
    csi_stack_id label;
    /* Free for the host, never read by the engine (whole-system mode: what
     * is known of the owner of a kernel stack). Changed only by the thread
     * that is on the stack. */
    uint64_t host_word;
    /* The frame-word consumer's word for this stack: 0 for a new stack, and
     * again whenever the id events show changes (fork, a new label). */
    uint64_t consumer_word;
    /* The frame event of the fast paths, filled in place so that the
     * consumer's callback is the paths' tail call (its stack_word points
     * at consumer_word; ev stays NULL). */
    callstack_frame_event fev;
    uint64_t forgotten;   /* older frames dropped to respect max_depth */
    uint64_t n_unwound, n_unmatched;
    uint64_t n_counted;   /* returns among n_returns (and n_unmatched) that were counted */
    callstack_spin lock;  /* csi_stack_lock */
    uint64_t last_use;    /* LRU tick, for evicting stacks beyond the bound */
    int users;            /* vCPUs currently on this stack */
} __attribute__((aligned(64))) csi_stack;

/*
 * Stores to what a reader on another thread copies (frame fields, count,
 * forgotten, the statistics) while the stack's single writer changes it
 * without the lock, and the reader's loads of them (engine.c, read_stack).
 * A release store / acquire load each: a reader that sees any store of a
 * change also sees the odd seq written before it when it checks seq again,
 * and C11 (and ThreadSanitizer) see no data race. On x86-64 both are plain
 * moves, as the unsynchronised accesses were.
 */
#define CSI_PUBLISH(field, value) __atomic_store_n(&(field), (value), __ATOMIC_RELEASE)
#define CSI_SNAPSHOT(field)       __atomic_load_n(&(field), __ATOMIC_ACQUIRE)

/*
 * A stack's lock (callstack_instr/spin.h): held only for a push or pop, a
 * reallocation or a reader's copy, never while anything else runs
 * (subscribers are called after it is released). Taken on every event of a
 * stack several vCPUs may change (whole-system stacks, asid and heuristic
 * stacks of a multi-threaded program), where GLib's mutex cost a tenth of a
 * whole-system run with two vCPUs. Reset to 0 in a forked child (its holder
 * may not exist there).
 */
static inline void csi_stack_lock(csi_stack *s)
{
    callstack_spin_lock(&s->lock);
}
static inline void csi_stack_unlock(csi_stack *s)
{
    callstack_spin_unlock(&s->lock);
}

void csi_stack_init(csi_stack *s, const csi_stack_id *id, uint32_t max_depth);
void csi_stack_destroy(csi_stack *s);

/* Out of line: make room for one more frame (see csi_stack_push). */
void csi_stack_make_room(csi_stack *s);
/* Out of line: give memory back after a deep excursion. */
void csi_stack_shrink(csi_stack *s);

/* Would this push or pop reallocate `frames` (or move them)? */
static inline bool csi_stack_push_moves(const csi_stack *s)
{
    return s->count == s->cap || s->count == s->max_depth;
}

#define CSI_STACK_INITIAL_CAP 64

static inline bool csi_stack_pop_moves(const csi_stack *s)
{
    return s->cap > 4 * CSI_STACK_INITIAL_CAP && s->count > 0 && s->count - 1 < s->cap / 4;
}

/* Writes frame n and makes it the top (n + 1 frames); room is there. */
static inline void csi_stack_put(csi_stack *s, uint32_t n, uint64_t func, uint64_t ret_addr,
                                uint64_t call_site, uint64_t sp)
{
    /* Field by field from registers: a frame assembled on the C stack and
     * copied as a whole costs a store-forwarding stall (two 8-byte stores
     * read back by one 16-byte load) on every call. */
    csi_frame *f = &s->frames[n];
    CSI_PUBLISH(f->func, func);
    CSI_PUBLISH(f->ret_addr, ret_addr);
    CSI_PUBLISH(f->call_site, call_site);
    CSI_PUBLISH(f->sp, sp);
    CSI_PUBLISH(s->count, n + 1);
}

/*
 * Pushes a frame. At max_depth the oldest half of the retained frames is
 * forgotten (amortised O(1)): depth still counts them, but they can no
 * longer be matched by a return or listed by get_callers.
 */
static inline void csi_stack_push(csi_stack *s, uint64_t func, uint64_t ret_addr,
                                 uint64_t call_site, uint64_t sp)
{
    if (__builtin_expect(csi_stack_push_moves(s), 0)) {
        csi_stack_make_room(s);
    }
    csi_stack_put(s, s->count, func, ret_addr, call_site, sp);
}

/* Pops the top frame, which the caller knows exists. Keeps at most 4x the
 * frames in use allocated. */
static inline void csi_stack_drop_top(csi_stack *s)
{
    bool shrink = csi_stack_pop_moves(s);
    CSI_PUBLISH(s->count, s->count - 1);
    if (__builtin_expect(shrink, 0)) {
        csi_stack_shrink(s);
    }
}

/* The i-th frame from the top (0 = top), or NULL. */
static inline const csi_frame *csi_stack_peek(const csi_stack *s, uint32_t i)
{
    return i < s->count ? &s->frames[s->count - 1 - i] : NULL;
}

static inline uint64_t csi_stack_depth(const csi_stack *s)
{
    return s->forgotten + s->count;
}

bool csi_stack_id_equal(const csi_stack_id *a, const csi_stack_id *b);
guint csi_stack_id_hash(const csi_stack_id *id);

#endif

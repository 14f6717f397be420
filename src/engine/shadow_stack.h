/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A shadow call stack: the frames a guest stack holds, as seen by calls and
 * returns. Plain data; the caller (engine.c) does the locking.
 */
#ifndef CS_SHADOW_STACK_H
#define CS_SHADOW_STACK_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "callstack_instr/prog_point.h"

/* What tells stacks apart; see prog_point for the meaning of each field. */
typedef struct cs_stack_id {
    uint64_t first;
    uint64_t second;
    stack_type kind;
    bool kernel;
} cs_stack_id;

typedef struct cs_frame {
    uint64_t func;       /* entry of the called function */
    uint64_t ret_addr;   /* where a normal return lands */
    uint64_t call_site;  /* the call instruction */
    uint64_t sp;         /* stack pointer at the callee's entry */
} cs_frame;

typedef struct cs_stack {
    /* What every call and return touches, in the first cache line. */
    cs_frame *frames;     /* frames[0] is the oldest retained frame */
    uint32_t count;       /* retained frames */
    uint32_t cap;         /* allocated frames */
    uint32_t max_depth;   /* retained frames never exceed this */
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

    cs_stack_id id;
    uint64_t forgotten;   /* older frames dropped to respect max_depth */
    uint64_t n_unwound, n_unmatched;
    GMutex lock;
    uint64_t last_use;    /* LRU tick, for evicting stacks beyond the bound */
    int users;            /* vCPUs currently on this stack */
} __attribute__((aligned(64))) cs_stack;

/*
 * Stores to what a reader on another thread copies (frame fields, count,
 * forgotten, the statistics) while the stack's single writer changes it
 * without the lock, and the reader's loads of them (engine.c, read_stack).
 * A release store / acquire load each: a reader that sees any store of a
 * change also sees the odd seq written before it when it checks seq again,
 * and C11 (and ThreadSanitizer) see no data race. On x86-64 both are plain
 * moves, as the unsynchronised accesses were.
 */
#define CS_PUBLISH(field, value) __atomic_store_n(&(field), (value), __ATOMIC_RELEASE)
#define CS_SNAPSHOT(field)       __atomic_load_n(&(field), __ATOMIC_ACQUIRE)

void cs_stack_init(cs_stack *s, const cs_stack_id *id, uint32_t max_depth);
void cs_stack_destroy(cs_stack *s);

/* Out of line: make room for one more frame (see cs_stack_push). */
void cs_stack_make_room(cs_stack *s);
/* Out of line: give memory back after a deep excursion. */
void cs_stack_shrink(cs_stack *s);

/* Would this push or pop reallocate `frames` (or move them)? */
static inline bool cs_stack_push_moves(const cs_stack *s)
{
    return s->count == s->cap || s->count == s->max_depth;
}

#define CS_STACK_INITIAL_CAP 64

static inline bool cs_stack_pop_moves(const cs_stack *s)
{
    return s->cap > 4 * CS_STACK_INITIAL_CAP && s->count > 0 && s->count - 1 < s->cap / 4;
}

/* Writes frame n and makes it the top (n + 1 frames); room is there. */
static inline void cs_stack_put(cs_stack *s, uint32_t n, uint64_t func, uint64_t ret_addr,
                                uint64_t call_site, uint64_t sp)
{
    /* Field by field from registers: a frame assembled on the C stack and
     * copied as a whole costs a store-forwarding stall (two 8-byte stores
     * read back by one 16-byte load) on every call. */
    cs_frame *f = &s->frames[n];
    CS_PUBLISH(f->func, func);
    CS_PUBLISH(f->ret_addr, ret_addr);
    CS_PUBLISH(f->call_site, call_site);
    CS_PUBLISH(f->sp, sp);
    CS_PUBLISH(s->count, n + 1);
}

/*
 * Pushes a frame. At max_depth the oldest half of the retained frames is
 * forgotten (amortised O(1)): depth still counts them, but they can no
 * longer be matched by a return or listed by get_callers.
 */
static inline void cs_stack_push(cs_stack *s, uint64_t func, uint64_t ret_addr,
                                 uint64_t call_site, uint64_t sp)
{
    if (__builtin_expect(cs_stack_push_moves(s), 0)) {
        cs_stack_make_room(s);
    }
    cs_stack_put(s, s->count, func, ret_addr, call_site, sp);
}

/* Pops the top frame, which the caller knows exists. Keeps at most 4x the
 * frames in use allocated. */
static inline void cs_stack_drop_top(cs_stack *s)
{
    bool shrink = cs_stack_pop_moves(s);
    CS_PUBLISH(s->count, s->count - 1);
    if (__builtin_expect(shrink, 0)) {
        cs_stack_shrink(s);
    }
}

/* The i-th frame from the top (0 = top), or NULL. */
static inline const cs_frame *cs_stack_peek(const cs_stack *s, uint32_t i)
{
    return i < s->count ? &s->frames[s->count - 1 - i] : NULL;
}

static inline uint64_t cs_stack_depth(const cs_stack *s)
{
    return s->forgotten + s->count;
}

bool cs_stack_id_equal(const cs_stack_id *a, const cs_stack_id *b);
guint cs_stack_id_hash(const cs_stack_id *id);

#endif

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
    cs_stack_id id;
    cs_frame *frames;     /* frames[0] is the oldest retained frame */
    uint32_t count;       /* retained frames */
    uint32_t cap;         /* allocated frames */
    uint32_t max_depth;   /* retained frames never exceed this */
    uint64_t forgotten;   /* older frames dropped to respect max_depth */
    GMutex lock;          /* held by engine.c around every change */
    /* stack_type=heuristic (heuristic.c): the stack-pointer range this stack
     * covers, from the latest sp seen on it up to the highest. */
    uint64_t last_sp;
    uint64_t high_sp;
    uint64_t last_use;    /* LRU tick, for evicting stacks beyond the bound */
    int users;            /* vCPUs currently on this stack */
    /* Events on this stack (engine statistics), under `lock`. */
    uint64_t n_calls, n_returns, n_unwound, n_unmatched;
} cs_stack;

void cs_stack_init(cs_stack *s, const cs_stack_id *id, uint32_t max_depth);
void cs_stack_destroy(cs_stack *s);

/*
 * Pushes a frame. At max_depth the oldest half of the retained frames is
 * forgotten (amortised O(1)): depth still counts them, but they can no
 * longer be matched by a return or listed by get_callers.
 */
void cs_stack_push(cs_stack *s, const cs_frame *f);

/* Pops the top frame into *out; false if no frame is retained. */
bool cs_stack_pop(cs_stack *s, cs_frame *out);

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

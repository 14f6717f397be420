/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host-independent core: a table of shadow stacks keyed by stack id, the
 * rules that turn observed calls and returns into pushes and pops, and event
 * dispatch to subscribers. No QEMU headers: a host (src/qemu/) feeds it what
 * happened, a unit test can feed it synthetic streams.
 *
 * Thread safety: any thread may call any function. Each stack has its own
 * lock, held only while the stack changes (or only while its frames move,
 * for stacks one thread changes: see threaded_owned and write_begin in
 * engine.c); subscribers are called with no
 * lock held, after each single push or pop, so a subscriber may call back
 * into the engine (get_callers from on_ret sees the stack after the pop).
 */
#ifndef CSI_ENGINE_H
#define CSI_ENGINE_H

#include "shadow_stack.h"
#include "callstack_instr/callstack_instr_types.h"

typedef struct csi_engine_config {
    uint32_t max_depth;        /* retained frames per stack */
    /*
     * Use the stack pointer: frames whose stack memory has been released
     * (sp moved above them) are popped as unwound, and a return only matches
     * a frame at or below the landing sp. Only sound when a shadow stack
     * follows one guest stack (threaded, heuristic), not when threads share
     * one (asid).
     */
    bool sp_resync;
    /* The same for the stacks that follow one guest stack in whole-system
     * mode: kernel stacks (id.kernel) and threaded or heuristic user stacks,
     * while an asid user stack is shared by a process's threads. */
    bool sp_resync_own;
    /* x86: the call stores the return address at the callee's sp, so a frame
     * at exactly the sp of a new call has been overwritten. */
    bool ret_addr_on_stack;
    /* Frames more than this far below the current sp belong to another stack
     * region (signal stack, coroutine) and are never resynchronised away. */
    uint64_t resync_window;
    /* How many frames a return may search when sp_resync is off. */
    uint32_t search_limit;
    /* stack_type=heuristic: an sp more than this below a stack's latest sp,
     * or above its highest, is on another stack. */
    uint64_t stack_distance;
    /* stack_type=heuristic: stacks kept per address space; beyond it the
     * least recently used stack no vCPU is on is freed. */
    uint32_t max_heuristic_stacks;
    /* Stacks made by csi_engine_bounded_switch (whole-system mode): at most
     * this many user stacks and this many kernel stacks (id.kernel) are
     * kept; beyond it the least recently used one no vCPU is on is freed
     * with its frames (no event). 0: unbounded. */
    uint32_t max_spaces;
    /* Threaded stacks are changed only by their own thread (a host that
     * calls the engine for a thread on that thread): no lock per event. */
    bool threaded_owned;
    /* The guest starts with one thread, so nothing changes a stack
     * concurrently until the host calls csi_engine_set_concurrent(e, true),
     * before a second thread can reach the engine: no lock per event until
     * then. False (the safe default): any thread, any time. */
    bool starts_single_threaded;
} csi_engine_config;

/* Defaults documented in the README. */
#define CSI_DEFAULT_MAX_DEPTH     65536u
#define CSI_DEFAULT_RESYNC_WINDOW (64ull << 20)
#define CSI_DEFAULT_SEARCH_LIMIT  4096u
#define CSI_DEFAULT_STACK_DISTANCE (64ull << 10)
#define CSI_DEFAULT_MAX_HEURISTIC_STACKS 256u
#define CSI_DEFAULT_MAX_SPACES 1024u

typedef struct csi_engine csi_engine;

typedef enum csi_sub_kind { CSI_SUB_CALL, CSI_SUB_RET, CSI_SUB_EVENT, CSI_SUB_KINDS } csi_sub_kind;

typedef struct csi_engine_stats {
    uint64_t calls, returns, unwound, unmatched_returns, stacks_created;
    /* returns (matched or not) that were counted, not reported (lazy) */
    uint64_t counted_returns;
} csi_engine_stats;

csi_engine *csi_engine_new(const csi_engine_config *cfg);
void csi_engine_free(csi_engine *e);
const csi_engine_config *csi_engine_get_config(const csi_engine *e);

/* The stack with this id, created empty if new. Valid until dropped. */
csi_stack *csi_engine_stack(csi_engine *e, const csi_stack_id *id);
/* Frees a stack whose guest stack is gone (thread exit). Whoever publishes
 * `s` to other threads clears that pointer first (see csi_engine_pin). */
void csi_engine_drop_stack(csi_engine *e, csi_stack *s);
/*
 * Reading the stack another thread publishes in *slot (a vCPU's current
 * stack), which that thread may drop or the heuristic may evict meanwhile:
 * csi_engine_pin returns *slot (or NULL) and keeps it from being freed until
 * csi_engine_unpin. It holds the table lock: short reads only, and no call
 * that creates, drops or switches stacks in between.
 */
csi_stack *csi_engine_pin(csi_engine *e, csi_stack *const *slot);
void csi_engine_unpin(csi_engine *e);
/*
 * After fork(), in the child: gives `keep` the new id and frees every other
 * stack (their threads did not survive). Locks are re-initialised, since
 * another thread may have held one at the fork.
 */
void csi_engine_after_fork(csi_engine *e, csi_stack *keep, const csi_stack_id *new_id);
unsigned csi_engine_stack_count(csi_engine *e);
/* From now on several threads may change one stack at once (see
 * starts_single_threaded). Call it while no other thread is in the engine. */
void csi_engine_set_concurrent(csi_engine *e, bool concurrent);

/*
 * stack_type=heuristic: the stack of address space `space` (its first and
 * kernel fields) that the stack pointer `sp` lies on. `current` is the
 * vCPU's stack so far (or NULL); checking it first keeps the common case to
 * two comparisons. A stack's id is (space, the sp it was created at).
 */
csi_stack *csi_engine_heuristic_stack(csi_engine *e, const csi_stack_id *space, uint64_t sp,
                                    csi_stack *current);
/* The same, for a stack pointer that readers on other threads load (the
 * vCPU's current stack, *slot): a change of stack is stored there while the
 * table lock is held, so a csi_engine_pin() reader never loads an evicted
 * stack from it. */
csi_stack *csi_engine_heuristic_switch(csi_engine *e, const csi_stack_id *space, uint64_t sp,
                                     csi_stack **slot);
/*
 * The stack with this id, created if new, made the vCPU's current stack
 * (*slot, stored there under the table lock as csi_engine_heuristic_switch
 * does). Creating one beyond max_spaces of its class (user or kernel) first
 * frees the least recently used stack of that class that no vCPU is on.
 * Takes the table lock: call it when the id changes, not per event.
 */
csi_stack *csi_engine_bounded_switch(csi_engine *e, const csi_stack_id *id, csi_stack **slot);
/* The vCPU leaves `s` (thread exit): it may be evicted from now on. */
void csi_engine_release_stack(csi_engine *e, csi_stack *s);
void csi_engine_get_stats(csi_engine *e, csi_engine_stats *out);

/* A call entered `func` with stack pointer `sp`; a normal return lands at
 * ret_addr. */
void csi_engine_call(csi_engine *e, csi_stack *s, unsigned vcpu, uint64_t func,
                    uint64_t ret_addr, uint64_t call_site, uint64_t sp);
/* A return instruction landed at `target` with stack pointer `sp`. */
void csi_engine_ret(csi_engine *e, csi_stack *s, unsigned vcpu, uint64_t target, uint64_t sp);

/*
 * A return that takes its target from the stack slot at `slot` (x86 `ret`,
 * before it executes): if the top frame's sp is that slot, the top frame
 * returns (to its ret_addr: the slot holds it, or a rewritten copy) and this
 * is true, without reading guest memory. Otherwise false and nothing
 * happens: the caller reads the target and calls csi_engine_ret.
 */
bool csi_engine_ret_from_slot(csi_engine *e, csi_stack *s, unsigned vcpu, uint64_t slot);
/* The top frame of s into *out; false if s holds no frame. */
bool csi_engine_top(csi_engine *e, csi_stack *s, csi_frame *out);
/* The frame k below the top (0: the top) into *out; false if there is none. */
bool csi_engine_frame_below_top(csi_engine *e, csi_stack *s, uint32_t k, csi_frame *out);
/* Pops the top frame as unwound (one event) if it is still *expected: a
 * stack shared by threads may have changed since csi_engine_top. */
bool csi_engine_unwind_top(csi_engine *e, csi_stack *s, unsigned vcpu, const csi_frame *expected,
                          uint64_t pc);

/*
 * Lazy returns: the host reports no return instruction (while nobody
 * subscribes to events, README.md "Lazy returns") but counts each vCPU's returns
 * in counts[vcpu]. Before anything else the engine
 * does to a stack for a vCPU (a call, a reported return, an unwind), it
 * pops that many frames from the top as returns, and zeroes the count:
 * each of those returns would have popped the top frame, whose return
 * address its slot holds. Frames a non-local exit left behind are then
 * unwound by the stack pointer at that call, as with reported returns.
 * `counts` may move (the host's storage grows): the host stores the new
 * address before any event can use it. NULL: every return is reported.
 */
void csi_engine_set_return_counters(csi_engine *e, uint64_t *counts);
/* The same pops for n returns the host took from a vCPU's count, with no
 * event (a subscriber arriving must not see the returns made before it
 * came; a thread's last returns before it exits). By the stack's writer. */
void csi_engine_pop_returns_quietly(csi_engine *e, csi_stack *s, unsigned vcpu, uint64_t n);

/*
 * What a reader of a stack in lazy-return mode sees: the `pending` returns
 * counted for the vCPU but not popped yet are skipped from the top, as
 * they will be popped at its next event. Nothing is changed: a reader may
 * be on another thread than the stack's writer. (Frames a non-local exit
 * abandoned stay until the next call, as with reported returns: the stack
 * pointer is not consulted here, so that both modes answer alike.)
 */
typedef struct csi_read_view {
    uint64_t pending;
} csi_read_view;

/* Reading a stack: most recent first, up to n entries; returns the count.
 * The _at forms read it as `view` sees it (NULL: as it is). */
uint32_t csi_engine_callers(csi_engine *e, csi_stack *s, uint64_t *out, uint32_t n);
uint32_t csi_engine_functions(csi_engine *e, csi_stack *s, uint64_t *out, uint32_t n);
uint64_t csi_engine_depth(csi_engine *e, csi_stack *s);
uint32_t csi_engine_callers_at(csi_engine *e, csi_stack *s, const csi_read_view *view,
                               uint64_t *out, uint32_t n);
uint32_t csi_engine_functions_at(csi_engine *e, csi_stack *s, const csi_read_view *view,
                                 uint64_t *out, uint32_t n);
uint64_t csi_engine_depth_at(csi_engine *e, csi_stack *s, const csi_read_view *view);
void csi_engine_fill_prog_point_at(csi_engine *e, csi_stack *s, const csi_read_view *view,
                                   prog_point *p);
/* caller and stack id of a prog_point; pc is left to the host. */
/* From now on events and program points of `s` show `label` instead of
 * its id (the key it is found by stays). */
void csi_engine_set_label(csi_engine *e, csi_stack *s, const csi_stack_id *label);
void csi_engine_fill_prog_point(csi_engine *e, csi_stack *s, prog_point *p);

/* Subscribers: fn is an on_call_t, on_ret_t or on_event_t per kind. */
bool csi_engine_subscribe(csi_engine *e, csi_sub_kind kind, void (*fn)(void));
bool csi_engine_unsubscribe(csi_engine *e, csi_sub_kind kind, void (*fn)(void));
/* Does anyone hear returns (or every event)? A frame-word consumer of calls
 * only does not: it needs the stack right at each call, which counted
 * returns popped just before the call give it (lazy returns). */
bool csi_engine_has_subscribers(csi_engine *e);
/* Frame words (callstack_instr_claim_frames): one consumer at a time; false
 * if another holds them (claim), or the pair is not the holder's (release). */
bool csi_engine_claim_frames(csi_engine *e, on_frame_t on_call, on_frame_t on_ret);
bool csi_engine_release_frames(csi_engine *e, on_frame_t on_call, on_frame_t on_ret);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Types shared by callstack_instr's API (callstack_instr.h, for code linked
 * with the plugin) and its run-time binding (callstack_instr_ext.h, for other
 * QEMU plugins).
 *
 * PANDA's CPUState * becomes the QEMU plugin vCPU index and target_ulong
 * becomes uint64_t, so one build serves every guest architecture.
 */
#ifndef CALLSTACK_INSTR_TYPES_H
#define CALLSTACK_INSTR_TYPES_H

#include <stdbool.h>
#include <stdint.h>
#include "prog_point.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when a function's signature or a struct's layout changes. */
#define CALLSTACK_INSTR_API_VERSION 1

/* PANDA's callbacks: func is the function called, or returned from. */
typedef void (*on_call_t)(unsigned int vcpu_index, uint64_t func);
typedef void (*on_ret_t)(unsigned int vcpu_index, uint64_t func);

typedef enum callstack_event_kind {
    CALLSTACK_EVENT_CALL = 0,
    CALLSTACK_EVENT_RET = 1,
} callstack_event_kind;

/*
 * One call or return with everything known about it; delivered to on_event
 * subscribers (an extension over PANDA). A return is "unwound" when the frame
 * was abandoned rather than returned from: a return that skipped it, or
 * (with stack-pointer tracking) a longjmp, an exception or a stack switch
 * that left it behind. Every frame pushed is popped by exactly one RET event,
 * normal or unwound, as long as its stack lives and stays within max_depth;
 * so counting events keeps calls and returns balanced. (Frames forgotten
 * beyond max_depth are never reported again: see the README.)
 */
typedef struct callstack_event {
    callstack_event_kind kind;
    bool unwound;        /* RET only: the frame was abandoned, not returned from */
    uint64_t func;       /* the function entered, or the one whose frame is popped */
    uint64_t ret_addr;   /* the frame's return address */
    uint64_t call_site;  /* address of the call instruction */
    uint64_t sp;         /* stack pointer at the callee's first instruction */
    uint64_t depth;      /* frames on the stack after the event */
    prog_point where;    /* stack id, and caller/pc after the event */
} callstack_event;

typedef void (*on_event_t)(unsigned int vcpu_index, const callstack_event *ev);

/*
 * Frame words (an extension over PANDA, callstack_instr_claim_frames): one
 * consumer may keep a 64-bit word of its own in every shadow stack and in
 * every frame, so that what it derives per frame (a call-tree node, say)
 * needs no mirror stack and what it keeps per stack no lookup. The words
 * are kept on stacks with a single writer (threaded stacks in user mode;
 * any stack while the guest has one thread); on a stack several threads
 * change at once there are none (stack_word and frame_word NULL).
 *
 * A stack's word is 0 when the stack is new, and again whenever the stack
 * id its events show changes (a forked child's copy of its parent's
 * stack; a whole-system kernel stack given to another thread). While it is
 * 0 (or NULL) the callback also gets the full event in `ev`, from which it
 * can find or make its state for the stack and store it in *stack_word;
 * otherwise `ev` is NULL and the frame event is all there is, which is
 * cheap to deliver. A frame's word is 0 when the frame is pushed; the
 * consumer's call callback may set it, and gets it back at the frame's
 * return (and as parent_word of calls made from that frame).
 */
typedef struct callstack_frame_event {
    callstack_event_kind kind;
    bool unwound;            /* RET only: the frame was abandoned, not returned from */
    uint64_t func;           /* the function entered, or the one whose frame is popped */
    uint64_t depth;          /* frames on the stack after the event */
    uint64_t *stack_word;    /* the stack's word, or NULL (no words on this stack) */
    /* CALL: the new frame's word (0), to set; RET: the popped frame's word
     * (valid during the callback only); NULL with stack_word */
    uint64_t *frame_word;
    /* CALL: the word of the frame below the new one; 0 if there is none, or
     * it was forgotten (max_depth), or it was pushed before the claim */
    uint64_t parent_word;
    const callstack_event *ev;   /* the whole event while the stack's word is 0 or NULL */
} callstack_frame_event;

typedef void (*on_frame_t)(unsigned int vcpu_index, const callstack_frame_event *fe);

/*
 * Where an address is, in user mode: the ELF file mapped there and the
 * function symbol containing it (callstack_instr_symbolize, an extension
 * over PANDA). Strings belong to callstack_instr, never change and stay
 * valid until QEMU exits: keep the pointers, do not free them.
 */
typedef struct callstack_symbol {
    const char *module;      /* path of the mapped file, NULL if none */
    uint64_t module_base;    /* load bias: run-time address minus link-time
                                (nm/readelf) address; 0 for a non-PIE program */
    uint64_t module_start;   /* lowest address of the file's mappings seen so far */
    uint64_t module_end;     /* end of the highest one */
    const char *name;        /* function containing the address, NULL if none */
    uint64_t offset;         /* with name: address minus the function's start;
                                without: the link-time address (address - module_base) */
    uint64_t symbol_addr;    /* run-time address of `name` (0 without) */
    uint64_t symbol_size;    /* its size from the symbol table (0: unknown) */
} callstack_symbol;

/* PANDA's pandalog message: CallStack { repeated uint64 addr = 1; }. */
struct Panda__CallStack;
typedef struct Panda__CallStack Panda__CallStack;

#ifdef __cplusplus
}
#endif
#endif

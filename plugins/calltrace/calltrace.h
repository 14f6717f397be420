/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * calltrace's pieces: its arguments and the API it binds (calltrace.c), the
 * stacks the structured formats follow (stacks.c), the names of functions
 * (names.c) and the output formats (fmt_*.c). Everything here runs in
 * calltrace's event callback or at exit, never per executed block.
 */
#ifndef CALLTRACE_H
#define CALLTRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <glib.h>
#include "callstack_instr/callstack_instr_types.h"
#include "callstack_instr/spin.h"

/*
 * The callstack_instr functions the pieces use. callstack_instr_ext.h's
 * pointers are static to the file that binds them (calltrace.c), which
 * fills this in.
 */
typedef struct ct_api {
    bool (*symbolize)(uint64_t addr, callstack_symbol *out);
    Panda__CallStack *(*callstack_create_vcpu)(unsigned int vcpu_index);
    void (*callstack_free)(Panda__CallStack *cs);
    uint32_t (*get_callers)(uint64_t *callers, uint32_t n, unsigned int vcpu_index);
    uint64_t (*get_stack_depth)(unsigned int vcpu_index);
} ct_api;
extern ct_api ct_callstack;

/* calltrace's arguments (calltrace.c parses them; README lists them). */
typedef struct ct_options {
    const char *out;          /* out=, NULL if not given */
    bool names;               /* tsv: NAME and MODULE columns */
    bool events;              /* tsv: call/ret lines (events=off: callers and summary only) */
    bool per_stack;           /* tsv: a "# stack" line per stack at exit */
    GArray *callers_at;       /* uint64_t function addresses */
    GArray *only;             /* uint64_t pairs [lo, hi) */
    uint64_t until;           /* stop at the first call of this address (0: never) */
} ct_options;
extern ct_options ct_opt;

/* ---- util.c: the events' clock ---------------------------------------- */
/*
 * A cheaper CLOCK_MONOTONIC for per-event timestamps, one per stack (used
 * by one thread at a time): on x86-64 hosts it reads the time-stamp counter
 * and converts it with a rate measured between two clock readings, read
 * again every CT_CLOCK_EVENTS events; never goes back. Elsewhere it is
 * ct_now_ns(). Zero-initialised.
 */
typedef struct ct_clock {
    uint64_t tsc0, ns0;       /* the last clock reading, and the counter then */
    uint64_t mult;            /* ns per counter tick << 32, 0 while unknown */
    uint64_t last;            /* the last time returned */
    uint32_t left;            /* events until the clock is read again */
} ct_clock;
#define CT_CLOCK_EVENTS 1024u
uint64_t ct_clock_read(ct_clock *c);
#if defined(__x86_64__)
#include <x86intrin.h>
static inline uint64_t ct_clock_ns(ct_clock *c)
{
    if (__builtin_expect(c->left != 0, 1)) {
        c->left--;
        uint64_t ns = c->ns0 + (uint64_t)(((unsigned __int128)(__rdtsc() - c->tsc0) * c->mult) >> 32);
        c->last = ns > c->last ? ns : c->last;
        return c->last;
    }
    return ct_clock_read(c);
}
#else
static inline uint64_t ct_clock_ns(ct_clock *c)
{
    return ct_clock_read(c);
}
#endif

/* v in decimal at p, no NUL; returns the end (at most 20 characters). */
static inline char *ct_put_dec(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) {
        *p++ = tmp[--n];
    }
    return p;
}

/* ---- names.c: function names, resolved once per address -------------- */

typedef struct ct_sym {
    uint64_t addr;
    const char *display;      /* "name", "name+0x1c", "libc.so.6+0x3ab40" or "0x7f0012345678" */
    const char *module;       /* file path, or NULL */
    uint64_t module_start, module_end;
    /* The output format's own text for this function, made the first time
     * it needs it (chrome: its events' fixed parts); NULL until then. Set
     * and read under stacks.c's lock, by formats whose events take it. */
    const void *fmt_text;
} ct_sym;

/* Never NULL; the result stays valid. Any thread; an address named before
 * is usually found without a lock. */
const ct_sym *ct_sym_of(uint64_t addr);
void ct_names_after_fork_child(void);

#define CT_COMM_SIZE 17       /* a Linux comm and its NUL */
#define CT_FIRST_SYNTHETIC_TID (1 << 22)

/* ---- stacks.c: the guest stacks, as their events describe them -------- */

typedef struct ct_frame {
    uint64_t func;
    uint64_t ret_addr;        /* (0 in word mode, below) */
    uint32_t node;            /* the folded format's call-tree node */
    bool seen;                /* its call event was seen (here or, for an
                                 inherited frame, in the parent) */
} ct_frame;

/*
 * One guest stack. A stack only its own thread changes (`lockfree`:
 * threaded stacks in user mode, when the format allows it) is changed
 * without any lock; in whole-system mode, with such a format, each stack
 * under its own lock (`own_lock`); every other stack, and everything else
 * here, under stacks.c's lock. Per-stack state is reached from the thread's last
 * stack without a lookup; more per-task state (a thread's name, say) goes
 * here too.
 */
typedef struct ct_stack {
    uint64_t first, second;   /* the stack id's numbers (sidFirst, sidSecond) */
    stack_type kind;
    bool kernel;              /* isKernelMode */
    uint32_t tag;             /* kind and kernel, for telling stacks apart */
    bool comm_known;          /* whole-system threaded: comm is the thread's name */
    char comm[CT_COMM_SIZE];
    bool lockfree;            /* changed by its own thread only, without the lock */
    /* Whole-system mode with a lockfree format: the stack's events take
     * this lock instead of stacks.c's (vCPUs share stacks, but each
     * stack's events are the format's own business: see ct_format.lockfree) */
    bool own_lock;
    callstack_spin mu;
    int pid, tid;             /* the task: a thread, or the process for asid stacks
                                 (whole-system: a guest thread, else a number of
                                 its own from CT_FIRST_SYNTHETIC_TID) */
    ct_frame *frames;         /* bottom first: n_frames is the depth */
    uint32_t n_frames, cap_frames;
    void *fmt;                /* the format's own per-stack state */
    ct_clock clock;           /* its events' timestamps */
} ct_stack;

/*
 * An output format. calltrace calls its on_* hooks: a format that writes
 * events as they come (tsv) implements them itself; the others follow the
 * guest's stacks through stacks.c (CT_FOLLOWS_STACKS), which calls their
 * stack hooks, below, with its lock held, so such a format needs no lock of
 * its own; `ts` is CLOCK_MONOTONIC in ns.
 */
typedef struct ct_format {
    const char *name;
    /* Wants ct_icount_total(): calltrace then counts guest instructions. */
    bool needs_icount;
    /* Its event hook uses `ts` (otherwise it gets 0: reading the clock per
     * event costs more than some formats' whole work). */
    bool needs_ts;
    /* Its event hook may run without stacks.c's lock for a stack only its
     * own thread changes (threaded stacks in user mode), concurrently with
     * other stacks' events: it keeps per-stack state in s->fmt and guards
     * anything shared itself. Every other hook runs under the lock. */
    bool lockfree;
    /* Prepares the output; prints one line and returns false on error. */
    bool (*open)(const char *out);
    /* Every event; the calling thread's vCPU is exiting; the process is
     * about to execve; the process is exiting. */
    void (*on_event)(unsigned int vcpu, const callstack_event *ev);
    void (*on_thread_exit)(void);
    void (*on_exec)(void);
    void (*on_exit)(void);

    /* ---- formats following the stacks (stacks.c calls these) ---- */
    /* A stack's first event is next. `inherited`: its frames came from the
     * parent process (fork), they were not entered here. */
    void (*stack_begin)(ct_stack *s, uint64_t ts, bool inherited);
    /* Whole-system threaded stacks: s->comm became known after its
     * stack_begin (NULL: nothing to do). */
    void (*stack_named)(ct_stack *s);
    /* After a call's frame is pushed, before a return's is popped. */
    void (*event)(ct_stack *s, const callstack_event *ev, unsigned vcpu, uint64_t ts);
    /* The stack's thread exited (threaded stacks), or the process is
     * exiting (`at_exit`); the stack is freed after this. */
    void (*stack_end)(ct_stack *s, uint64_t ts, bool at_exit);
    /* In a fork child: a stack of the parent, to forget without output.
     * Another thread may have been changing a lockfree stack at the fork:
     * its memory is then left as it is, not freed. */
    void (*stack_discard)(ct_stack *s);
    /* In a fork child, before `from` (the forking thread's stack in the
     * parent) is discarded: `s` continues it (NULL: nothing to move). */
    void (*stack_inherit)(ct_stack *s, ct_stack *from);
    /* Just before exec, for each stack whose state may be read now (changed
     * under the lock, or by the calling thread), then exec(). NULL: none. */
    void (*exec_stack)(ct_stack *s);
    void (*before_fork)(void);
    void (*after_fork_child)(void);
    /* At exit, after every live stack's stack_end. */
    void (*finish)(uint64_t ts);
    /* Just before an execve, which may replace the process without an
     * exit: make the output written so far complete and readable. The
     * process may go on (the execve failed). NULL: before_fork is used. */
    void (*exec)(uint64_t ts);

    /* ---- word mode (optional) ----
     * callstack_instr's frame words (callstack_frame_event): a stack only
     * its own thread changes (ct_stack.lockfree) is found from its word,
     * and the format keeps what it derives per frame in the frames' words,
     * without `event`. The entries calltrace registers: each finds the
     * stack with ct_word_stack() and hands an event without one to
     * ct_stacks_frame_slow(). on_frame_ret NULL: word-mode stacks need no
     * returns (mirror-mode ones still get them). */
    on_frame_t on_frame_call, on_frame_ret;
    /* What the entries do with a word-mode stack's event (the slow path
     * calls it for a stack's first event). */
    void (*frame_event)(ct_stack *s, const callstack_frame_event *fe);
} ct_format;

extern const ct_format ct_format_tsv, ct_format_uftrace, ct_format_folded, ct_format_chrome,
    ct_format_pandalog;

/* Sets up following stacks for `fmt`. */
void ct_stacks_init(const ct_format *fmt);
/* The on_* hooks of a format that follows the stacks. */
void ct_stacks_event(unsigned int vcpu, const callstack_event *ev);
/* The calling thread's vCPU is exiting. */
void ct_stacks_thread_exit(void);
void ct_stacks_at_exit(void);
/* The process is about to execve. */
void ct_stacks_before_exec(void);
/* Word mode: the stack whose word this event carries, NULL if none. */
static inline ct_stack *ct_word_stack(const callstack_frame_event *fe)
{
    return fe->stack_word ? (ct_stack *)(uintptr_t)*fe->stack_word : NULL;
}
/* An event whose stack has no word (its first event, a stack without
 * words): finds or makes the stack under the lock, then hands the event on
 * to the format's frame_event (word mode) or to `event` (mirror mode). */
void ct_stacks_frame_slow(unsigned int vcpu, const callstack_frame_event *fe);
/* Registers the format's word-mode entries with `claim`
 * (callstack_instr_claim_frames); `kind` is the stacks' type. False: not
 * claimed (the format has none, or the words are another's). */
bool ct_stacks_claim(bool (*claim)(on_frame_t, on_frame_t), stack_type kind);
/* Room for n frames in s->frames. */
void ct_frames_reserve(ct_stack *s, uint32_t n);
/* The frames mirror at a call: the new frame is at index depth - 1;
 * frames between that calltrace never saw entered are zeroed. */
static inline void ct_mirror_push(ct_stack *s, uint64_t depth, uint64_t func, uint64_t ret_addr)
{
    uint32_t below = depth ? (uint32_t)(depth - 1) : 0;
    if (__builtin_expect(below >= s->cap_frames, 0)) {
        ct_frames_reserve(s, below + 1);
    }
    if (__builtin_expect(s->n_frames < below, 0)) {
        memset(s->frames + s->n_frames, 0, (below - s->n_frames) * sizeof(ct_frame));
    }
    ct_frame *f = &s->frames[below];
    f->func = func;
    f->ret_addr = ret_addr;
    f->node = 0;
    f->seen = true;
    s->n_frames = below + 1;
}
/* The frames mirror after a return to `depth`. */
static inline void ct_mirror_pop(ct_stack *s, uint64_t depth)
{
    if (s->n_frames > depth) {
        s->n_frames = (uint32_t)depth;
    }
}
#define CT_FOLLOWS_STACKS                                                     \
    .on_event = ct_stacks_event, .on_thread_exit = ct_stacks_thread_exit,     \
    .on_exec = ct_stacks_before_exec, .on_exit = ct_stacks_at_exit

/* ---- thread.c: guest threads' names in whole-system mode -------------- */
/* Binds osi_linux if it is loaded (whole-system mode; at a vCPU's init). */
void ct_threads_bind(void);
/* The name (Linux's comm) of the thread of a threaded stack id, if that
 * thread is the one vCPU `vcpu` runs now (call from its event callback). */
bool ct_thread_comm(unsigned vcpu, const prog_point *where, char out[CT_COMM_SIZE]);

/* ---- calltrace.c ------------------------------------------------------ */

/* QEMU emulates a whole system (vCPUs, not guest threads, are host threads). */
extern bool ct_system_mode;

/* The callers_at= arguments: whether any was given, and whether func is one. */
bool ct_callers_at_given(void);
bool ct_callers_at_has(uint64_t func);

/* ---- icount.c: guest instructions executed, counted only on request -- */

/* Adds an inline per-block count to every block translated from now on;
 * `plugin_id` is calltrace's qemu_plugin_id_t. At install time. */
void ct_icount_init(uint64_t plugin_id);
/* Instructions executed so far by every vCPU of this process (blocks are
 * counted whole when they start). From any vCPU's callback. */
uint64_t ct_icount_total(void);

/* ---- util.c ------------------------------------------------------------ */

uint64_t ct_now_ns(void);

/*
 * Output errors (util.c): after the first failed write of this calltrace
 * instance, reported once, all further output is dropped.
 */
bool ct_output_ok(void);
/* Reports a failure to write `what` (errno value err), once per process. */
void ct_output_error(const char *what, int err);
/* write() until done. False on the first failure (the caller reports it);
 * after any failure, nothing is written and true is returned. */
bool ct_write_all(int fd, const void *buf, size_t len);
/* Appends buf to fd. On failure the file (if regular) is cut back to its
 * size before plus cut(buf, bytes written), so that it ends at a record
 * boundary, the failure is reported once and false returned; after any
 * failure nothing is written. */
bool ct_append(int fd, const void *buf, size_t len, size_t (*cut)(const char *, size_t),
               const char *what);
/* cut for line-based output: up to the last newline. */
size_t ct_cut_lines(const char *buf, size_t written);
/* Opens `out` for appended text output (truncated first), or a copy of
 * stderr when it is NULL or empty; *name is how messages name it. -1 after
 * printing one line if it cannot be opened. */
int ct_open_append(const char *out, const char **name);
/* The guest program's absolute path. */
const char *ct_program_path(void);

#endif

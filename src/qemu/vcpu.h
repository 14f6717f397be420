/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-vCPU state (vcpu.c): the table of vCPUs, their lifecycle, the stack
 * each is bound to (and rebinding after fork), and the gate every callback
 * of translated code passes: csi_vcpu_begin at entry, csi_vcpu_end at exit.
 */
#ifndef CSI_QEMU_VCPU_H
#define CSI_QEMU_VCPU_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <qemu-plugin.h>
#include "engine/engine.h"
typedef struct csi_site csi_site;   /* site.h */

typedef struct csi_vcpu {
    unsigned index;
    csi_stack *stack;          /* NULL until the vCPU's first event binds it */
    unsigned fork_gen;        /* fork generation `stack` was bound in */
    csi_stack_id space;        /* heuristic: the address space (process), cached */
    unsigned space_gen;       /* fork generation + 1 `space` was computed in; 0: never */
    const csi_site *last_site; /* the last call or return instruction seen, */
    uint64_t last_pc;         /* or, if NULL, the last signal handler entered */
    GByteArray *regbuf;
    GByteArray *membuf;
    const csi_site *pending;   /* CSI_TARGET_NEXT: the site whose target is the next block */
    csi_stack_id sys_id;       /* whole-system mode: the id `stack` was bound for */
    /* Whole-system threaded stacks (system.c): the last kernel stack region;
     * the thread last read in kernel mode, which user-mode events belong
     * to; and whether the current kernel stack's thread is still to be
     * found (in the middle of a context switch). */
    uint64_t sys_kregion;
    int32_t osi_pid, osi_tgid;
    uint64_t osi_task;         /* the current task while osi_pending */
    bool osi_known, osi_pending;
    /* Whole-system mode: the privilege level of the event being handled,
     * from its block's translation (CSI_UDATA_KERNEL); -1: not known, read
     * the registers. */
    int8_t sys_priv;
    uint64_t slow_events;      /* events the event path handled (verbose=on) */
    /* QEMU's CPU state for this vCPU once verified (see csi_reg_accept_env),
     * and the same while one of our callbacks runs (NULL outside them:
     * registers are read directly only through it, and only then). */
    const void *env_trusted;
    const void *env_now;
    /* The stack the fast path may use without the stack choice of the
     * event path (user mode, bound in the current fork generation); NULL:
     * take the event path (events.c), which also (re)establishes it. */
    csi_stack *hot_stack;
    /* The fast lane's whole precondition in one compare: the CPU-state
     * pointer when it is trusted, hot_stack is set and the stack pointer's
     * offset in it is known (that offset and width beside it); NULL
     * otherwise. Recomputed after every event-path event
     * (csi_vcpu_refresh_fast); cleared wherever hot_stack or the trust is. */
    const void *fast_env;
    int32_t fast_sp_off;
    bool fast_sp_wide;
    struct csi_guestmem *mem;  /* linux-user: pages readable directly (guestmem.h) */
    /* The slow lane's view of the CPU-state pointer: the one last examined,
     * the same if it is readable (copies of it teach offsets), and that
     * while a callback in the slow lane runs. */
    const void *env_checked;
    const void *env_candidate;
    const void *env_probe;
} csi_vcpu;

#include "guestio.h"   /* (needs csi_vcpu complete) */

/* The table: vCPU indexes are small and dense but their number is not
 * known in advance (one per guest thread): two levels whose chunks are
 * never moved, so readers need no lock. */
#define CSI_VCPU_CHUNK_BITS 8
#define CSI_VCPU_CHUNK_SIZE (1u << CSI_VCPU_CHUNK_BITS)
#define CSI_VCPU_MAX_CHUNKS 1024
extern csi_vcpu *csi_vcpu_chunks[CSI_VCPU_MAX_CHUNKS];

/* The vCPU this thread has run, and the one whose callback it is running
 * (-1 outside our callbacks). initial-exec: a plain %fs-relative access, no
 * __tls_get_addr call per event. */
extern __thread int csi_vcpu_tls_current __attribute__((tls_model("initial-exec")));
extern __thread int csi_vcpu_tls_in_callback __attribute__((tls_model("initial-exec")));
/* Bumped in the child of every fork (user mode). */
extern unsigned csi_vcpu_fork_generation;

void csi_vcpu_setup(qemu_plugin_id_t id);
/* vcpu_init and vcpu_exit (again after qemu_plugin_reset: plugin.h) */
void csi_vcpu_register_callbacks(qemu_plugin_id_t id);

/* NULL if never initialised */
static inline csi_vcpu *csi_vcpu_get(unsigned index)
{
    unsigned c = index >> CSI_VCPU_CHUNK_BITS;
    if (c >= CSI_VCPU_MAX_CHUNKS) {
        return NULL;
    }
    csi_vcpu *chunk = __atomic_load_n(&csi_vcpu_chunks[c], __ATOMIC_ACQUIRE);
    return chunk ? &chunk[index & (CSI_VCPU_CHUNK_SIZE - 1)] : NULL;
}

/* The vCPU's stack, binding it if this is the vCPU's own thread. */
csi_stack *csi_vcpu_stack(csi_vcpu *v);
/* The same for reading it from any thread (the API): the stack stays valid
 * until csi_vcpu_stack_unpin(*pinned). */
csi_stack *csi_vcpu_stack_pin(csi_vcpu *v, bool *pinned);
void csi_vcpu_stack_unpin(bool pinned);
/* The address of the vCPU's last call or return instruction (or signal
 * handler entry), from any thread. */
uint64_t csi_vcpu_last_pc(const csi_vcpu *v);
/* What csi_vcpu_last_pc reports, set by the vCPU's own callbacks: the site
 * of its last call or return, or (site NULL) the signal handler entered at
 * pc. Another thread may read it: atomic accesses (plain moves on x86-64),
 * release/acquire since the reader follows the site pointer, which another
 * thread (the translating one) may have written. */
static inline void csi_vcpu_set_last(csi_vcpu *v, const csi_site *site, uint64_t pc)
{
    if (!site) {
        __atomic_store_n(&v->last_pc, pc, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&v->last_site, site, __ATOMIC_RELEASE);
}
/* verbose=on, at exit: the events all vCPUs handed to the event path. */
uint64_t csi_vcpu_slow_events(void);
/* The vCPU this thread has run, or -1. */
int csi_vcpu_current(void);
/* Is this thread handling a call or return of that vCPU right now (so that
 * its registers are the ones QEMU reads)? */
bool csi_vcpu_in_callback(unsigned index);

/* heuristic stacks: the vCPU's address space (the process), recomputed only
 * after a fork (no getpid() system call per event). */
void csi_vcpu_update_space(csi_vcpu *v);
static inline const csi_stack_id *csi_vcpu_space(csi_vcpu *v)
{
    if (v->space_gen != csi_vcpu_fork_generation + 1) {
        csi_vcpu_update_space(v);
    }
    return &v->space;
}

/*
 * The gate of a callback from translated code. csi_vcpu_begin marks this
 * thread as running vCPU `index`'s callback (what get_prog_point and direct
 * register reads rely on) and tells how the callback proceeds:
 *  - CSI_LANE_NONE: the vCPU is not tracked; nothing to do.
 *  - CSI_LANE_FAST: everything the fast path (fastpath.c) needs is verified:
 *    `env` is this vCPU's trusted CPU-state pointer (guestio.h), the vCPU
 *    is on a bound stack (hot_stack), and *sp was read through env.
 *  - CSI_LANE_SLOW: anything else; the event path (events.c) chooses the
 *    stack and reads each register through env where it can, through the
 *    API otherwise.
 * Every callback that called csi_vcpu_begin calls csi_vcpu_end before it
 * returns.
 */
typedef enum { CSI_LANE_NONE, CSI_LANE_SLOW, CSI_LANE_FAST } csi_lane;

static inline csi_lane csi_vcpu_begin(unsigned index, const void *env, csi_vcpu **vp, uint64_t *sp)
{
    csi_vcpu *v = csi_vcpu_get(index);
    *vp = v;
    if (!v) {
        return CSI_LANE_NONE;
    }
    csi_lane lane = CSI_LANE_SLOW;
    if (env && env == v->fast_env) {
        if (v->fast_sp_wide) {
            memcpy(sp, (const char *)env + v->fast_sp_off, 8);
        } else {
            uint32_t x;
            memcpy(&x, (const char *)env + v->fast_sp_off, 4);
            *sp = x;
        }
        v->env_now = env;
        lane = CSI_LANE_FAST;
    } else {
        csi_reg_accept_env(v, env);
    }
    csi_vcpu_tls_current = (int)index;
    csi_vcpu_tls_in_callback = (int)index;
    return lane;
}

/* After an event on the event path: whether the next may take the fast lane. */
static inline void csi_vcpu_refresh_fast(csi_vcpu *v)
{
    const csi_fastreg *f = csi_fastreg_of(csi_reg_sp);
    bool ready = v->env_trusted && v->hot_stack && f &&
                 __atomic_load_n(&f->state, __ATOMIC_ACQUIRE) == CSI_FASTREG_FAST;
    if (ready) {
        v->fast_sp_off = f->offset;
        v->fast_sp_wide = f->size == 8;
    }
    v->fast_env = ready ? v->env_trusted : NULL;
}

/* (v may be NULL: CSI_LANE_NONE) */
static inline void csi_vcpu_end(csi_vcpu *v)
{
    if (v) {
        v->env_now = NULL;
    }
    csi_vcpu_tls_in_callback = -1;
}

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-vCPU state: the table of vCPUs, their lifecycle, and the stack each
 * is bound to in user mode.
 *
 * In linux-user each guest thread is a vCPU on its own host thread, and the
 * guest process is the QEMU process: the process id is getpid() and the
 * thread id is gettid(), both as the guest sees them. A fork() gives the
 * child the parent's stack (its guest stack is a copy) under a new id.
 * Whole-system mode takes its stack ids from registers instead (system.c).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include "plugin.h"
#include "guestio.h"
#include "guestmem.h"
#include "returns.h"
#include "site.h"
#include "system.h"
#include "vcpu.h"

csi_vcpu *csi_vcpu_chunks[CSI_VCPU_MAX_CHUNKS];
static GMutex vcpu_table_lock;
static bool registers_found;
unsigned csi_vcpu_fork_generation;
__thread int csi_vcpu_tls_current __attribute__((tls_model("initial-exec"))) = -1;
__thread int csi_vcpu_tls_in_callback __attribute__((tls_model("initial-exec"))) = -1;

int csi_vcpu_current(void)
{
    return csi_vcpu_tls_current;
}

bool csi_vcpu_in_callback(unsigned index)
{
    return csi_vcpu_tls_in_callback == (int)index;
}

static csi_stack_id current_id(void)
{
    csi_stack_id id = { .kind = csi_cfg.kind };
    id.first = (uint64_t)getpid();
    if (csi_cfg.kind == STACK_THREADED) {
        id.second = (uint64_t)gettid();
    }
    return id;
}

csi_stack *csi_vcpu_stack(csi_vcpu *v)
{
    /* Only the vCPU's thread knows its thread id; heuristic stacks are
     * chosen by the stack pointer at each event (events.c). In whole-system
     * mode the stack is the one the vCPU's latest call or return was on
     * (outside our callbacks the registers may belong to another vCPU:
     * single-threaded TCG runs them all on one thread). */
    if ((int)v->index != csi_vcpu_tls_current || csi_cfg.kind == STACK_HEURISTIC || csi_cfg.system_mode) {
        return __atomic_load_n(&v->stack, __ATOMIC_ACQUIRE);
    }
    if (!v->stack || v->fork_gen != csi_vcpu_fork_generation) {
        csi_stack_id id = current_id();
        /* (other threads load it: csi_vcpu_stack_pin) */
        __atomic_store_n(&v->stack, csi_engine_stack(csi_eng, &id), __ATOMIC_RELEASE);
        v->fork_gen = csi_vcpu_fork_generation;
    }
    return v->stack;
}

csi_stack *csi_vcpu_stack_pin(csi_vcpu *v, bool *pinned)
{
    /* Another thread's stack may be dropped (its thread exits) or evicted
     * (heuristic, whole-system mode) while we read it. */
    *pinned = (int)v->index != csi_vcpu_tls_current;
    return *pinned ? csi_engine_pin(csi_eng, &v->stack) : csi_vcpu_stack(v);
}

void csi_vcpu_stack_unpin(bool pinned)
{
    if (pinned) {
        csi_engine_unpin(csi_eng);
    }
}

uint64_t csi_vcpu_last_pc(const csi_vcpu *v)
{
    const csi_site *site = __atomic_load_n(&v->last_site, __ATOMIC_ACQUIRE);
    return site ? site->vaddr : __atomic_load_n(&v->last_pc, __ATOMIC_RELAXED);
}

uint64_t csi_vcpu_slow_events(void)
{
    uint64_t n = 0;
    for (unsigned c = 0; c < CSI_VCPU_MAX_CHUNKS; c++) {
        csi_vcpu *chunk = __atomic_load_n(&csi_vcpu_chunks[c], __ATOMIC_ACQUIRE);
        for (unsigned i = 0; chunk && i < CSI_VCPU_CHUNK_SIZE; i++) {
            n += __atomic_load_n(&chunk[i].slow_events, __ATOMIC_RELAXED);
        }
    }
    return n;
}

void csi_vcpu_update_space(csi_vcpu *v)
{
    v->space = current_id();
    v->space_gen = csi_vcpu_fork_generation + 1;
}

static void vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id;
    unsigned c = vcpu_index >> CSI_VCPU_CHUNK_BITS;
    if (c >= CSI_VCPU_MAX_CHUNKS) {
        fprintf(stderr, "callstack_instr: vCPU %u exceeds the supported %u; not tracked\n",
                vcpu_index, CSI_VCPU_MAX_CHUNKS * CSI_VCPU_CHUNK_SIZE);
        return;
    }
    g_mutex_lock(&vcpu_table_lock);
    if (!registers_found) {
        registers_found = true;
        csi_reg_find_all();
        csi_site_init_entry();
        if (csi_cfg.system_mode) {
            csi_system_registers_found();
        }
    }
    if (!csi_vcpu_chunks[c]) {
        csi_vcpu *chunk = g_new0(csi_vcpu, CSI_VCPU_CHUNK_SIZE);
        for (unsigned i = 0; i < CSI_VCPU_CHUNK_SIZE; i++) {
            chunk[i].index = (c << CSI_VCPU_CHUNK_BITS) | i;
            chunk[i].regbuf = g_byte_array_sized_new(16);
            chunk[i].membuf = g_byte_array_sized_new(16);
        }
        __atomic_store_n(&csi_vcpu_chunks[c], chunk, __ATOMIC_RELEASE);
    }
    g_mutex_unlock(&vcpu_table_lock);
    if (csi_cfg.system_mode && vcpu_index > 0) {
        /* A second vCPU: stacks may now change on two threads (under
         * MTTCG). QEMU creates every vCPU, and runs this hook on its thread,
         * before the machine starts, and a secondary CPU runs no guest code
         * before the first one wakes it anyway; so no event is under way
         * without the lock when the lock becomes necessary. */
        csi_engine_set_concurrent(csi_eng, true);
    }
    csi_vcpu *v = csi_vcpu_get(vcpu_index);
    if (!v) {
        return;   /* (cannot happen: the chunk exists; tells the compiler) */
    }
    /* an index can be reused after a thread exits */
    __atomic_store_n(&v->stack, NULL, __ATOMIC_RELEASE);
    v->hot_stack = NULL;
    v->fast_env = NULL;
    if (!csi_cfg.system_mode && !v->mem) {
        v->mem = g_new0(csi_guestmem, 1);
    }
    csi_vcpu_set_last(v, NULL, 0);
    v->pending = NULL;
    v->sys_priv = -1;
    csi_returns_vcpu_init(vcpu_index);
}

static void vcpu_exit(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id;
    csi_vcpu *v = csi_vcpu_get(vcpu_index);
    if (!v || !v->stack) {
        return;
    }
    /* A thread's stack dies with it; a shared (asid) stack outlives it; a
     * heuristic stack may be reused by a later thread at the same place, and
     * becomes evictable, as does a whole-system stack. */
    csi_stack *s = v->stack;
    /* (a heuristic stack may outlive the thread) */
    csi_returns_pop_quietly(v, s);
    /* Unpublished before it is freed: a reader on another thread
     * (csi_vcpu_stack_pin) then finds NULL, or holds the stack until done. */
    __atomic_store_n(&v->stack, NULL, __ATOMIC_RELEASE);
    v->hot_stack = NULL;
    v->fast_env = NULL;
    if (csi_cfg.kind == STACK_THREADED) {
        csi_engine_drop_stack(csi_eng, s);
    } else if (csi_cfg.kind == STACK_HEURISTIC || csi_cfg.system_mode) {
        csi_engine_release_stack(csi_eng, s);
    }
}

/* In the child of a fork(): only the forking thread survives. */
static void after_fork_child(void)
{
    csi_vcpu_fork_generation++;
    g_mutex_init(&vcpu_table_lock);
    csi_stack *keep = NULL;
    csi_vcpu *self = csi_vcpu_tls_current >= 0 ? csi_vcpu_get((unsigned)csi_vcpu_tls_current) : NULL;
    if (self) {
        keep = self->stack;
    }
    for (unsigned c = 0; c < CSI_VCPU_MAX_CHUNKS; c++) {
        for (unsigned i = 0; csi_vcpu_chunks[c] && i < CSI_VCPU_CHUNK_SIZE; i++) {
            csi_vcpu_chunks[c][i].stack = NULL;
            csi_vcpu_chunks[c][i].hot_stack = NULL;
            csi_vcpu_chunks[c][i].fast_env = NULL;
        }
    }
    csi_stack_id id = current_id();
    if (keep && csi_cfg.kind == STACK_HEURISTIC) {
        id.second = keep->id.second;
    }
    csi_engine_after_fork(csi_eng, keep, &id);
    if (self && keep) {
        self->stack = keep;
        self->fork_gen = csi_vcpu_fork_generation;
    }
}

void csi_vcpu_setup(qemu_plugin_id_t id)
{
    (void)id;
    g_mutex_init(&vcpu_table_lock);
    if (!csi_cfg.system_mode) {
        pthread_atfork(NULL, NULL, after_fork_child);
    }
}

void csi_vcpu_register_callbacks(qemu_plugin_id_t id)
{
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
    qemu_plugin_register_vcpu_exit_cb(id, vcpu_exit);
}

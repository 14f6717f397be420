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
#include "site.h"
#include "system.h"
#include "vcpu.h"

cs_vcpu *cs_vcpu_chunks[CS_VCPU_MAX_CHUNKS];
static GMutex vcpu_table_lock;
static bool registers_found;
unsigned cs_vcpu_fork_generation;
__thread int cs_vcpu_tls_current __attribute__((tls_model("initial-exec"))) = -1;
__thread int cs_vcpu_tls_in_callback __attribute__((tls_model("initial-exec"))) = -1;

int cs_vcpu_current(void)
{
    return cs_vcpu_tls_current;
}

bool cs_vcpu_in_callback(unsigned index)
{
    return cs_vcpu_tls_in_callback == (int)index;
}

static cs_stack_id current_id(void)
{
    cs_stack_id id = { .kind = cs_cfg.kind };
    id.first = (uint64_t)getpid();
    if (cs_cfg.kind == STACK_THREADED) {
        id.second = (uint64_t)gettid();
    }
    return id;
}

cs_stack *cs_vcpu_stack(cs_vcpu *v)
{
    /* Only the vCPU's thread knows its thread id; heuristic stacks are
     * chosen by the stack pointer at each event (events.c). In whole-system
     * mode the stack is the one the vCPU's latest call or return was on
     * (outside our callbacks the registers may belong to another vCPU:
     * single-threaded TCG runs them all on one thread). */
    if ((int)v->index != cs_vcpu_tls_current || cs_cfg.kind == STACK_HEURISTIC || cs_cfg.system_mode) {
        return __atomic_load_n(&v->stack, __ATOMIC_ACQUIRE);
    }
    if (!v->stack || v->fork_gen != cs_vcpu_fork_generation) {
        cs_stack_id id = current_id();
        /* (other threads load it: cs_vcpu_stack_pin) */
        __atomic_store_n(&v->stack, cs_engine_stack(cs_eng, &id), __ATOMIC_RELEASE);
        v->fork_gen = cs_vcpu_fork_generation;
    }
    return v->stack;
}

cs_stack *cs_vcpu_stack_pin(cs_vcpu *v, bool *pinned)
{
    /* Another thread's stack may be dropped (its thread exits) or evicted
     * (heuristic, whole-system mode) while we read it. */
    *pinned = (int)v->index != cs_vcpu_tls_current;
    return *pinned ? cs_engine_pin(cs_eng, &v->stack) : cs_vcpu_stack(v);
}

void cs_vcpu_stack_unpin(bool pinned)
{
    if (pinned) {
        cs_engine_unpin(cs_eng);
    }
}

uint64_t cs_vcpu_last_pc(const cs_vcpu *v)
{
    const cs_site *site = __atomic_load_n(&v->last_site, __ATOMIC_ACQUIRE);
    return site ? site->vaddr : __atomic_load_n(&v->last_pc, __ATOMIC_RELAXED);
}

void cs_vcpu_update_space(cs_vcpu *v)
{
    v->space = current_id();
    v->space_gen = cs_vcpu_fork_generation + 1;
}

static void vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id;
    unsigned c = vcpu_index >> CS_VCPU_CHUNK_BITS;
    if (c >= CS_VCPU_MAX_CHUNKS) {
        fprintf(stderr, "callstack_instr: vCPU %u exceeds the supported %u; not tracked\n",
                vcpu_index, CS_VCPU_MAX_CHUNKS * CS_VCPU_CHUNK_SIZE);
        return;
    }
    g_mutex_lock(&vcpu_table_lock);
    if (!registers_found) {
        registers_found = true;
        cs_reg_find_all();
        cs_site_init_entry();
        if (cs_cfg.system_mode) {
            cs_system_registers_found();
        }
    }
    if (!cs_vcpu_chunks[c]) {
        cs_vcpu *chunk = g_new0(cs_vcpu, CS_VCPU_CHUNK_SIZE);
        for (unsigned i = 0; i < CS_VCPU_CHUNK_SIZE; i++) {
            chunk[i].index = (c << CS_VCPU_CHUNK_BITS) | i;
            chunk[i].regbuf = g_byte_array_sized_new(16);
            chunk[i].membuf = g_byte_array_sized_new(16);
        }
        __atomic_store_n(&cs_vcpu_chunks[c], chunk, __ATOMIC_RELEASE);
    }
    g_mutex_unlock(&vcpu_table_lock);
    cs_vcpu *v = cs_vcpu_get(vcpu_index);
    if (!v) {
        return;   /* (cannot happen: the chunk exists; tells the compiler) */
    }
    /* an index can be reused after a thread exits */
    __atomic_store_n(&v->stack, NULL, __ATOMIC_RELEASE);
    v->hot_stack = NULL;
    if (!cs_cfg.system_mode && !v->mem) {
        v->mem = g_new0(cs_guestmem, 1);
    }
    cs_vcpu_set_last(v, NULL, 0);
    v->pending = NULL;
}

static void vcpu_exit(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id;
    cs_vcpu *v = cs_vcpu_get(vcpu_index);
    if (!v || !v->stack) {
        return;
    }
    /* A thread's stack dies with it; a shared (asid) stack outlives it; a
     * heuristic stack may be reused by a later thread at the same place, and
     * becomes evictable, as does a whole-system stack. */
    cs_stack *s = v->stack;
    /* Unpublished before it is freed: a reader on another thread
     * (cs_vcpu_stack_pin) then finds NULL, or holds the stack until done. */
    __atomic_store_n(&v->stack, NULL, __ATOMIC_RELEASE);
    v->hot_stack = NULL;
    if (cs_cfg.kind == STACK_THREADED) {
        cs_engine_drop_stack(cs_eng, s);
    } else if (cs_cfg.kind == STACK_HEURISTIC || cs_cfg.system_mode) {
        cs_engine_release_stack(cs_eng, s);
    }
}

/* In the child of a fork(): only the forking thread survives. */
static void after_fork_child(void)
{
    cs_vcpu_fork_generation++;
    g_mutex_init(&vcpu_table_lock);
    cs_stack *keep = NULL;
    cs_vcpu *self = cs_vcpu_tls_current >= 0 ? cs_vcpu_get((unsigned)cs_vcpu_tls_current) : NULL;
    if (self) {
        keep = self->stack;
    }
    for (unsigned c = 0; c < CS_VCPU_MAX_CHUNKS; c++) {
        for (unsigned i = 0; cs_vcpu_chunks[c] && i < CS_VCPU_CHUNK_SIZE; i++) {
            cs_vcpu_chunks[c][i].stack = NULL;
            cs_vcpu_chunks[c][i].hot_stack = NULL;
        }
    }
    cs_stack_id id = current_id();
    if (keep && cs_cfg.kind == STACK_HEURISTIC) {
        id.second = keep->id.second;
    }
    cs_engine_after_fork(cs_eng, keep, &id);
    if (self && keep) {
        self->stack = keep;
        self->fork_gen = cs_vcpu_fork_generation;
    }
}

void cs_vcpu_setup(qemu_plugin_id_t id)
{
    g_mutex_init(&vcpu_table_lock);
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
    qemu_plugin_register_vcpu_exit_cb(id, vcpu_exit);
    if (!cs_cfg.system_mode) {
        pthread_atfork(NULL, NULL, after_fork_child);
    }
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-vCPU state, the handler that turns a pending call or return into an
 * engine event, and the stack ids of user mode.
 *
 * In linux-user each guest thread is a vCPU on its own host thread, and the
 * guest process is the QEMU process: the process id is getpid() and the
 * thread id is gettid(), both as the guest sees them. A fork() gives the
 * child the parent's stack (its guest stack is a copy) under a new id.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include "state.h"

/*
 * vCPU indexes are small and dense but their number is not known in advance
 * (one per guest thread): a two-level table whose chunks are never moved, so
 * readers need no lock.
 */
#define CHUNK_BITS 8
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 1024

static cs_vcpu *chunks[MAX_CHUNKS];
static GMutex vcpu_table_lock;
static struct qemu_plugin_register *sp_handle, *pc_handle;
static unsigned fork_generation;
static __thread int tls_vcpu = -1;

cs_vcpu *cs_vcpu_get(unsigned index)
{
    unsigned c = index >> CHUNK_BITS;
    if (c >= MAX_CHUNKS) {
        return NULL;
    }
    cs_vcpu *chunk = __atomic_load_n(&chunks[c], __ATOMIC_ACQUIRE);
    return chunk ? &chunk[index & (CHUNK_SIZE - 1)] : NULL;
}

int cs_vcpu_current(void)
{
    return tls_vcpu;
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
    if ((int)v->index != tls_vcpu) {
        return v->stack;     /* only the vCPU's thread knows its thread id */
    }
    if (!v->stack || v->fork_gen != fork_generation) {
        cs_stack_id id = current_id();
        v->stack = cs_engine_stack(cs_eng, &id);
        v->fork_gen = fork_generation;
    }
    return v->stack;
}

bool cs_vcpu_read_reg(cs_vcpu *v, bool pc, uint64_t *out)
{
    struct qemu_plugin_register *h = pc ? pc_handle : sp_handle;
    if (!h) {
        return false;
    }
    g_byte_array_set_size(v->regbuf, 0);
    int n = qemu_plugin_read_register(h, v->regbuf);
    if (n <= 0 || n > 8) {
        return false;
    }
    uint64_t x = 0;
    for (int i = 0; i < n; i++) {
        unsigned shift = cs_arch->big_endian ? 8u * (unsigned)(n - 1 - i) : 8u * (unsigned)i;
        x |= (uint64_t)v->regbuf->data[i] << shift;
    }
    *out = x;
    return true;
}

/* Called at the start of the first block after a call or return
 * instruction; udata is that block's pc. */
static void on_block_after_event(unsigned int vcpu_index, void *udata)
{
    cs_pending *p = qemu_plugin_scoreboard_find(cs_pending_sb, vcpu_index);
    cs_pending ev = *p;
    p->kind = CS_PENDING_NONE;

    uint64_t pc = (uint64_t)(uintptr_t)udata;
    cs_vcpu *v = cs_vcpu_get(vcpu_index);
    if (!v) {
        return;
    }
    tls_vcpu = (int)vcpu_index;
    cs_stack *s = cs_vcpu_stack(v);
    v->last_pc = pc;
    uint64_t sp = 0;
    if (cs_cfg.engine.sp_resync) {
        cs_vcpu_read_reg(v, false, &sp);
    }
    if (ev.kind == CS_PENDING_CALL) {
        cs_engine_call(cs_eng, s, vcpu_index, pc, ev.ret_addr, ev.call_site, sp);
    } else if (ev.kind == CS_PENDING_RET) {
        cs_engine_ret(cs_eng, s, vcpu_index, pc, sp);
    }
}

/* Registered on every block: fires only when a call or return is pending. */
void cs_vcpu_register_block(struct qemu_plugin_tb *tb, uint64_t pc);
void cs_vcpu_register_block(struct qemu_plugin_tb *tb, uint64_t pc)
{
    qemu_plugin_register_vcpu_tb_exec_cond_cb(
        tb, on_block_after_event, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_COND_NE,
        qemu_plugin_scoreboard_u64_in_struct(cs_pending_sb, cs_pending, kind), 0,
        (void *)(uintptr_t)pc);
}

static void find_registers(void)
{
    GArray *regs = qemu_plugin_get_registers();
    for (guint i = 0; regs && i < regs->len; i++) {
        qemu_plugin_reg_descriptor *d = &g_array_index(regs, qemu_plugin_reg_descriptor, i);
        if (!sp_handle && strcmp(d->name, cs_arch->sp_reg) == 0) {
            sp_handle = d->handle;
        } else if (!pc_handle && strcmp(d->name, cs_arch->pc_reg) == 0) {
            pc_handle = d->handle;
        }
    }
    if (regs) {
        g_array_free(regs, TRUE);
    }
    if (!sp_handle && cs_cfg.engine.sp_resync) {
        fprintf(stderr, "callstack_instr: warning: no register '%s' on %s; "
                "stack-pointer resynchronisation is off\n", cs_arch->sp_reg, cs_arch->name);
        cs_cfg.engine.sp_resync = false;
    }
}

static void vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id;
    unsigned c = vcpu_index >> CHUNK_BITS;
    if (c >= MAX_CHUNKS) {
        fprintf(stderr, "callstack_instr: vCPU %u exceeds the supported %u; not tracked\n",
                vcpu_index, MAX_CHUNKS * CHUNK_SIZE);
        return;
    }
    g_mutex_lock(&vcpu_table_lock);
    if (!sp_handle && !pc_handle) {
        find_registers();
    }
    if (!chunks[c]) {
        cs_vcpu *chunk = g_new0(cs_vcpu, CHUNK_SIZE);
        for (unsigned i = 0; i < CHUNK_SIZE; i++) {
            chunk[i].index = (c << CHUNK_BITS) | i;
            chunk[i].regbuf = g_byte_array_sized_new(16);
        }
        __atomic_store_n(&chunks[c], chunk, __ATOMIC_RELEASE);
    }
    g_mutex_unlock(&vcpu_table_lock);
    cs_vcpu *v = cs_vcpu_get(vcpu_index);
    v->stack = NULL;   /* an index can be reused after a thread exits */
    v->last_pc = 0;
    qemu_plugin_u64_set(qemu_plugin_scoreboard_u64_in_struct(cs_pending_sb, cs_pending, kind),
                        vcpu_index, CS_PENDING_NONE);
}

static void vcpu_exit(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id;
    cs_vcpu *v = cs_vcpu_get(vcpu_index);
    if (!v || !v->stack) {
        return;
    }
    /* A thread's stack dies with it; a shared (asid) stack outlives it. */
    if (cs_cfg.kind == STACK_THREADED) {
        cs_engine_drop_stack(cs_eng, v->stack);
    }
    v->stack = NULL;
}

/* In the child of a fork(): only the forking thread survives. */
static void after_fork_child(void)
{
    fork_generation++;
    g_mutex_init(&vcpu_table_lock);
    cs_stack *keep = NULL;
    cs_vcpu *self = tls_vcpu >= 0 ? cs_vcpu_get((unsigned)tls_vcpu) : NULL;
    if (self) {
        keep = self->stack;
    }
    for (unsigned c = 0; c < MAX_CHUNKS; c++) {
        for (unsigned i = 0; chunks[c] && i < CHUNK_SIZE; i++) {
            chunks[c][i].stack = NULL;
        }
    }
    cs_stack_id id = current_id();
    cs_engine_after_fork(cs_eng, keep, &id);
    if (self && keep) {
        self->stack = keep;
        self->fork_gen = fork_generation;
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

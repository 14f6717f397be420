/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-vCPU state, the callbacks that turn a call or return instruction into
 * an engine event, and the stack ids of user mode.
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
#include "fastreg.h"
#include "guestmem.h"
#include "system.h"
#include "translate.h"
#include "vcpu.h"

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
static GHashTable *reg_by_name;   /* register name -> handle */
static unsigned fork_generation;
/* initial-exec: a plain %fs-relative load, no __tls_get_addr call per event. */
static __thread int tls_vcpu __attribute__((tls_model("initial-exec"))) = -1;
/* vCPU of the call/return being handled, -1 outside our callbacks */
static __thread int tls_in_callback __attribute__((tls_model("initial-exec"))) = -1;

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

bool cs_vcpu_in_callback(unsigned index)
{
    return tls_in_callback == (int)index;
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
     * chosen by the stack pointer at each event (event_vcpu). In whole-system
     * mode the stack is the one the vCPU's latest call or return was on
     * (outside our callbacks the registers may belong to another vCPU:
     * single-threaded TCG runs them all on one thread). */
    if ((int)v->index != tls_vcpu || cs_cfg.kind == STACK_HEURISTIC || cs_cfg.system_mode) {
        return __atomic_load_n(&v->stack, __ATOMIC_ACQUIRE);
    }
    if (!v->stack || v->fork_gen != fork_generation) {
        cs_stack_id id = current_id();
        v->stack = cs_engine_stack(cs_eng, &id);
        v->fork_gen = fork_generation;
    }
    return v->stack;
}

static bool read_reg_api(cs_vcpu *v, struct qemu_plugin_register *h, bool learn, uint64_t *out);

/*
 * Registers read at events (the stack pointer, a target's base and index):
 * directly from the CPU state once learnt (fastreg.h). Only general
 * registers, whose gdbstub value is a plain copy of one field; others
 * (flags, system registers, which the gdbstub may compose from several
 * fields) are always read through the API (read_reg).
 */
static inline bool read_gpr(cs_vcpu *v, struct qemu_plugin_register *h, uint64_t *out)
{
    if (cs_fastreg_read(h, v->env_now, out)) {
        return true;
    }
    return read_reg_api(v, h, true, out);
}

static inline bool read_reg(cs_vcpu *v, struct qemu_plugin_register *h, uint64_t *out)
{
    return read_reg_api(v, h, false, out);
}

static bool read_reg_api(cs_vcpu *v, struct qemu_plugin_register *h, bool learn, uint64_t *out)
{
    if (!h) {
        return false;
    }
    v->regbuf->len = 0;   /* what g_byte_array_set_size(buf, 0) does, without the call */
    int n = qemu_plugin_read_register(h, v->regbuf);
    if (n <= 0 || n > 8) {
        return false;
    }
    uint64_t x = 0;
    if (!cs_arch->big_endian) {
        memcpy(&x, v->regbuf->data, (size_t)n);   /* host and guest are little-endian */
    } else {
        for (int i = 0; i < n; i++) {
            x |= (uint64_t)v->regbuf->data[i] << (8u * (unsigned)(n - 1 - i));
        }
    }
    *out = x;
    if (learn && v->env_now) {
        cs_fastreg_learn(h, v->env_now, x, (unsigned)n);
    }
    return true;
}

bool cs_vcpu_read_reg(cs_vcpu *v, struct qemu_plugin_register *h, uint64_t *out)
{
    return read_reg(v, h, out);
}

bool cs_vcpu_read_named(const char *name, uint64_t *out)
{
    static __thread cs_vcpu scratch;   /* only its register buffer is used */
    if (!scratch.regbuf) {
        scratch.regbuf = g_byte_array_sized_new(16);
    }
    return read_reg(&scratch, cs_vcpu_register(name), out);
}

bool cs_vcpu_read_pc(cs_vcpu *v, uint64_t *out)
{
    return read_reg(v, pc_handle, out);
}

static bool read_mem(cs_vcpu *v, uint64_t addr, unsigned size, uint64_t *out)
{
    uint8_t bytes[8];
    if (size == 0 || size > 8) {
        return false;
    }
    if (!cs_guestmem_read(v->mem, addr, size, bytes)) {
        uint64_t gen = cs_guestmem_now();
        /* (the API sizes the array itself) */
        if (!qemu_plugin_read_memory_vaddr(addr, v->membuf, size) || v->membuf->len < size) {
            return false;
        }
        memcpy(bytes, v->membuf->data, size);
        if (__atomic_load_n(&cs_guestmem_enabled, __ATOMIC_ACQUIRE)) {
            cs_guestmem_learn(v->mem, addr, size, gen);
        }
    }
    uint64_t x = 0;
    for (unsigned i = 0; i < size; i++) {
        unsigned shift = cs_arch->big_endian ? 8u * (size - 1 - i) : 8u * i;
        x |= (uint64_t)bytes[i] << shift;
    }
    *out = x;
    return true;
}

bool cs_vcpu_read_mem(cs_vcpu *v, uint64_t addr, unsigned size, uint64_t *out)
{
    return read_mem(v, addr, size, out);
}

/* Where the site's instruction is about to go; 0 if it cannot be known. */
static uint64_t site_target(cs_vcpu *v, const cs_site *site, uint64_t sp)
{
    uint64_t base = 0, index = 0, value = 0;
    switch (site->tkind) {
    case CS_TARGET_DIRECT:
        return site->direct & site->mask;
    case CS_TARGET_REG:
        if (site->base == sp_handle) {
            base = sp;
        } else if (!read_gpr(v, site->base, &base)) {
            return 0;
        }
        return (base + (uint64_t)site->disp) & site->mask;
    case CS_TARGET_MEM:
        if (site->base == sp_handle) {
            base = sp;
        } else if (site->base && !read_gpr(v, site->base, &base)) {
            return 0;
        }
        if (site->index && !read_gpr(v, site->index, &index)) {
            return 0;
        }
        if (!read_mem(v, (base + index * site->scale + (uint64_t)site->disp) & site->mask,
                      site->size, &value)) {
            return 0;
        }
        return value & site->mask;
    case CS_TARGET_NONE:
    default:
        return 0;
    }
}

/* The vCPU, its stack and the stack pointer before the instruction. */
static cs_vcpu *event_vcpu_sp(unsigned int vcpu_index, cs_stack **stack, uint64_t *sp,
                              bool need_sp);

static cs_vcpu *event_vcpu(unsigned int vcpu_index, cs_stack **stack, uint64_t *sp)
{
    return event_vcpu_sp(vcpu_index, stack, sp, true);
}

/* need_sp false: the caller does not use *sp (left 0), and neither does the
 * stack choice: user-mode asid stacks, which never resynchronise. */
static cs_vcpu *event_vcpu_sp(unsigned int vcpu_index, cs_stack **stack, uint64_t *sp,
                              bool need_sp)
{
    cs_vcpu *v = cs_vcpu_get(vcpu_index);
    if (!v) {
        return NULL;
    }
    tls_vcpu = (int)vcpu_index;
    tls_in_callback = (int)vcpu_index;   /* until the callback ends */
    *sp = 0;
    if (need_sp) {
        read_gpr(v, sp_handle, sp);
    }
    if (cs_cfg.system_mode) {
        /* the stack id depends on the registers now */
        *stack = cs_system_stack(v, *sp);
    } else if (cs_cfg.kind == STACK_HEURISTIC) {
        /* The address space (the process) changes only at a fork: no
         * getpid() system call per event. */
        if (v->space_gen != fork_generation + 1) {
            v->space = current_id();
            v->space_gen = fork_generation + 1;
        }
        v->stack = cs_engine_heuristic_stack(cs_eng, &v->space, *sp, v->stack);
        *stack = v->stack;
        v->hot_stack = v->stack;
    } else {
        *stack = cs_vcpu_stack(v);
        v->hot_stack = *stack;
    }
    return v;
}

/* Is a conditional site taken? Unreadable conditions count as taken. */
static bool site_taken(cs_vcpu *v, const cs_site *site)
{
    uint64_t value;
    if (!site->cond_reg || !read_reg(v, site->cond_reg, &value)) {
        return true;
    }
    return cs_cond_holds(&site->cond, value);
}

static void do_call(cs_vcpu *v, cs_stack *s, unsigned vcpu_index, const cs_site *site,
                    uint64_t func, uint64_t sp)
{
    cs_engine_call(cs_eng, s, vcpu_index, func, site->ret_addr, site->vaddr,
                   (sp + (uint64_t)site->sp_delta) & site->mask);
    (void)v;
}

static void do_ret(cs_vcpu *v, cs_stack *s, unsigned vcpu_index, const cs_site *site,
                   uint64_t target, uint64_t sp)
{
    cs_engine_ret(cs_eng, s, vcpu_index, target, (sp + (uint64_t)site->sp_delta) & site->mask);
    if (site->cls == CS_INSN_RET_CALL) {
        do_call(v, s, vcpu_index, site, target, sp);
    }
}

/* Common entry of the site callbacks; false if there is nothing to do now. */
static cs_vcpu *site_event(unsigned int vcpu_index, const cs_site *site, cs_stack **s,
                           uint64_t *sp)
{
    /* User-mode asid stacks do not resynchronise by the stack pointer
     * (threads share them), but on x86 the sp a frame records lets a return
     * find its target without reading guest memory (handle_ret), which
     * costs more than the register read. Elsewhere read it only if the
     * target needs it. */
    bool need_sp = cs_cfg.kind != STACK_ASID || cs_cfg.system_mode || cs_arch->ret_addr_on_stack ||
                   (site->base && site->base == sp_handle) ||
                   (site->index && site->index == sp_handle);
    cs_vcpu *v = event_vcpu_sp(vcpu_index, s, sp, need_sp);
    if (!v || !site_taken(v, site)) {
        return NULL;
    }
    v->last_site = site;
    if (site->tkind == CS_TARGET_NEXT) {
        /* The target is where execution goes next: wait for that block. */
        v->pending = site;
        qemu_plugin_u64_set(cs_pending_flag, vcpu_index, 1);
        return NULL;
    }
    return v;
}

static void cs_vcpu_on_call_impl(unsigned int vcpu_index, void *udata)
{
    const cs_site *site = udata;
    cs_stack *s;
    uint64_t sp;
    cs_vcpu *v = site_event(vcpu_index, site, &s, &sp);
    if (v) {
        do_call(v, s, vcpu_index, site, site_target(v, site, sp), sp);
    }
}

/*
 * x86: a return reads its target from [sp], which in the common case is
 * exactly the top frame's recorded sp; the frame's saved return address is
 * then the target, with no guest memory read. (A return address rewritten
 * in place, as retpolines do, still pops that frame: the slot identifies it.)
 * Whole-system mode reads the target: a stack there may be another
 * process's (see system.c).
 */
static void handle_ret(cs_vcpu *v, cs_stack *s, unsigned vcpu_index, const cs_site *site,
                       uint64_t sp)
{
    if (cs_arch->ret_addr_on_stack && !cs_cfg.system_mode && site->cls == CS_INSN_RET &&
        cs_engine_ret_from_slot(cs_eng, s, vcpu_index, sp & site->mask)) {
        return;
    }
    do_ret(v, s, vcpu_index, site, site_target(v, site, sp), sp);
}

static void cs_vcpu_on_ret_impl(unsigned int vcpu_index, void *udata)
{
    const cs_site *site = udata;
    cs_stack *s;
    uint64_t sp;
    cs_vcpu *v = site_event(vcpu_index, site, &s, &sp);
    if (v) {
        handle_ret(v, s, vcpu_index, site, sp);
    }
}

static void cs_vcpu_on_landing_impl(unsigned int vcpu_index, void *block_vaddr)
{
    uint64_t target = (uint64_t)(uintptr_t)block_vaddr;
    cs_stack *s;
    uint64_t sp;
    qemu_plugin_u64_set(cs_pending_flag, vcpu_index, 0);
    cs_vcpu *v = event_vcpu(vcpu_index, &s, &sp);
    const cs_site *site = v ? v->pending : NULL;
    if (!site) {
        return;
    }
    v->pending = NULL;
    target &= site->mask;
    if (site->cls == CS_INSN_CALL) {
        /* Falling through to the return address: a conditional call not
         * taken, or a pc read. */
        if (target != site->ret_addr) {
            do_call(v, s, vcpu_index, site, target, sp);
        }
    } else {
        do_ret(v, s, vcpu_index, site, target, sp);
    }
}

/* How a function finds its return address at entry (arch's entry_ret). */
static cs_site entry_site;
static GOnce entry_site_once = G_ONCE_INIT;

static gpointer init_entry_site(gpointer unused)
{
    (void)unused;
    const cs_target *t = &cs_arch->entry_ret;
    entry_site.tkind = t->kind;
    entry_site.base = t->base[0] ? cs_vcpu_register(t->base) : NULL;
    entry_site.size = t->size;
    entry_site.disp = t->disp;
    entry_site.mask = t->mask ? t->mask : UINT64_MAX;
    if (t->base[0] && !entry_site.base) {
        entry_site.tkind = CS_TARGET_NONE;
    }
    return NULL;
}

/* A block starting a signal handler (signals.c): push its frame, unless a
 * direct call to it has just done so. */
static void cs_vcpu_on_signal_entry_impl(unsigned int vcpu_index, void *udata)
{
    uint64_t pc = (uint64_t)(uintptr_t)udata;
    cs_stack *s;
    uint64_t sp;
    cs_vcpu *v = event_vcpu(vcpu_index, &s, &sp);
    if (!v) {
        return;
    }
    g_once(&entry_site_once, init_entry_site, NULL);
    cs_frame top;
    if (cs_engine_top(cs_eng, s, &top) && top.func == pc && top.sp == sp) {
        return;
    }
    uint64_t ret = site_target(v, &entry_site, sp);
    v->last_site = NULL;
    v->last_pc = pc;
    cs_engine_call(cs_eng, s, vcpu_index, pc, ret, 0, sp);
}

/*
 * The callbacks QEMU calls (through trampoline.c). `env` is TCG's CPU state
 * pointer, trusted for direct register reads once checked (fastreg.h).
 * tls_in_callback tells get_prog_point that this thread's registers are
 * this vCPU's (whole-system mode may run several vCPUs on one thread); it is
 * cleared when the callback ends, and so is env_now.
 */
static inline cs_vcpu *enter(unsigned int vcpu_index, const void *env)
{
    cs_vcpu *v = cs_vcpu_get(vcpu_index);
    if (!v) {
        return NULL;
    }
    if (env != v->env_checked && cs_fastreg_enabled && env && cs_fastreg_check_env(env)) {
        v->env_checked = env;
    }
    v->env_now = env == v->env_checked ? env : NULL;
    return v;
}

static inline void leave(cs_vcpu *v)
{
    if (v) {
        v->env_now = NULL;
    }
    tls_in_callback = -1;
}

/*
 * The hot path: a user-mode vCPU whose stack is bound (hot_stack), whose CPU
 * state pointer is checked and whose stack pointer's place in it is known
 * (fastreg.h). Then an event is a few loads and the engine's push or pop:
 * no system call, no lock (see the engine's write_begin), no plugin API
 * call unless the target is in guest memory. Anything else takes the
 * generic path, which also (re)establishes hot_stack.
 */
static inline cs_stack *hot_stack(cs_vcpu *v, uint64_t sp)
{
    cs_stack *s = v->hot_stack;
    if (cs_cfg.kind == STACK_HEURISTIC && s) {
        /* (cheap while sp stays on the same stack) */
        s = cs_engine_heuristic_stack(cs_eng, &v->space, sp, s);
        v->stack = v->hot_stack = s;
    }
    return s;
}

/* This thread now runs vCPU v's callback for `site` (cleared by leave()):
 * what get_prog_point and direct register reads rely on. */
static inline void mark_in_callback(cs_vcpu *v, unsigned vcpu_index, const void *env,
                                    const cs_site *site)
{
    tls_vcpu = (int)vcpu_index;
    tls_in_callback = (int)vcpu_index;
    v->env_now = env;
    v->last_site = site;
}

enum { HOT_NO, HOT_SKIP, HOT_GO };

/* HOT_GO: *s and *sp are set; HOT_SKIP: a condition not taken, nothing to
 * do; HOT_NO: take the generic path. */
static inline int hot_enter(cs_vcpu *v, unsigned vcpu_index, const cs_site *site, bool slot_ret,
                            const void *env, cs_stack **s, uint64_t *sp)
{
    /* (a slot return's site is hot and unconditional: see cs_site_udata) */
    if (!v || !env || env != v->env_checked || (!slot_ret && !site->hot) || !v->hot_stack ||
        !cs_fastreg_read(sp_handle, env, sp)) {
        return HOT_NO;
    }
    *s = hot_stack(v, *sp);
    mark_in_callback(v, vcpu_index, env, site);
    if (!slot_ret && site->cond_reg && !site_taken(v, site)) {
        return HOT_SKIP;
    }
    return HOT_GO;
}

/* Everything but the hot path's common case, out of line so that the
 * callbacks stay small. */
static __attribute__((noinline)) void on_site_rest(unsigned int vcpu_index, void *udata,
                                                   const void *env, bool ret)
{
    const cs_site *site = cs_site_of(udata);
    bool slot_ret = ret && cs_site_is_slot_ret(udata);
    uint64_t sp;
    cs_vcpu *v = cs_vcpu_get(vcpu_index);
    cs_stack *s;
    int hot = hot_enter(v, vcpu_index, site, slot_ret, env, &s, &sp);
    if (hot == HOT_GO) {
        if (slot_ret) {
            if (!cs_engine_ret_from_slot(cs_eng, s, vcpu_index, sp)) {
                do_ret(v, s, vcpu_index, site, site_target(v, site, sp), sp);
            }
        } else if (ret) {
            handle_ret(v, s, vcpu_index, site, sp);
        } else {
            do_call(v, s, vcpu_index, site, site_target(v, site, sp), sp);
        }
    } else if (hot == HOT_NO) {
        v = enter(vcpu_index, env);
        if (ret) {
            cs_vcpu_on_ret_impl(vcpu_index, (void *)site);
        } else {
            cs_vcpu_on_call_impl(vcpu_index, (void *)site);
        }
    }
    leave(v);
}

/*
 * The hot path's common cases, as small as they can be: a direct call, and
 * a return that pops the frame whose slot it reads (x86). The vCPU must be
 * on its hot stack with a checked CPU state and a learnt sp (hot_enter's
 * conditions); anything else is on_site_rest's.
 */
static inline bool hot_sp(const cs_vcpu *v, const void *env, uint64_t *sp)
{
    return v && env && env == v->env_checked && v->hot_stack &&
           cs_fastreg_read(sp_handle, env, sp);
}

void cs_vcpu_on_call_env(unsigned int vcpu_index, void *udata, const void *env)
{
    const cs_site *site = udata;
    cs_vcpu *v = cs_vcpu_get(vcpu_index);
    uint64_t sp;
    if (!hot_sp(v, env, &sp) || !site->hot || site->cond_reg || site->tkind != CS_TARGET_DIRECT) {
        on_site_rest(vcpu_index, udata, env, false);
        return;
    }
    mark_in_callback(v, vcpu_index, env, site);
    cs_engine_call(cs_eng, hot_stack(v, sp), vcpu_index, site->direct & site->mask, site->ret_addr,
                   site->vaddr, (sp + (uint64_t)site->sp_delta) & site->mask);
    leave(v);
}

void cs_vcpu_on_ret_env(unsigned int vcpu_index, void *udata, const void *env)
{
    cs_vcpu *v = cs_vcpu_get(vcpu_index);
    uint64_t sp;
    if (!cs_site_is_slot_ret(udata) || !hot_sp(v, env, &sp)) {
        on_site_rest(vcpu_index, udata, env, true);
        return;
    }
    const cs_site *site = cs_site_of(udata);
    mark_in_callback(v, vcpu_index, env, site);
    cs_stack *s = hot_stack(v, sp);
    if (!cs_engine_ret_from_slot(cs_eng, s, vcpu_index, sp)) {
        /* not the top frame's slot: read the target (now the site is needed) */
        do_ret(v, s, vcpu_index, site, site_target(v, site, sp), sp);
    }
    leave(v);
}

void cs_vcpu_on_landing_env(unsigned int vcpu_index, void *block_vaddr, const void *env)
{
    /* registered with QEMU_PLUGIN_CB_NO_REGS: the state may be stale */
    (void)env;
    cs_vcpu *v = enter(vcpu_index, NULL);
    cs_vcpu_on_landing_impl(vcpu_index, block_vaddr);
    leave(v);
}

void cs_vcpu_on_signal_entry_env(unsigned int vcpu_index, void *udata, const void *env)
{
    cs_vcpu *v = enter(vcpu_index, env);
    cs_vcpu_on_signal_entry_impl(vcpu_index, udata);
    leave(v);
}

struct qemu_plugin_register *cs_vcpu_register(const char *name)
{
    return reg_by_name ? g_hash_table_lookup(reg_by_name, name) : NULL;
}

static void find_registers(void)
{
    GArray *regs = qemu_plugin_get_registers();
    reg_by_name = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; regs && i < regs->len; i++) {
        qemu_plugin_reg_descriptor *d = &g_array_index(regs, qemu_plugin_reg_descriptor, i);
        if (!g_hash_table_contains(reg_by_name, d->name)) {
            g_hash_table_insert(reg_by_name, g_strdup(d->name), d->handle);
        }
    }
    if (regs) {
        g_array_free(regs, TRUE);
    }
    sp_handle = cs_arch->sp_reg ? cs_vcpu_register(cs_arch->sp_reg) : NULL;
    pc_handle = cs_arch->pc_reg ? cs_vcpu_register(cs_arch->pc_reg) : NULL;
    if (!sp_handle && cs_arch->sp_reg) {
        fprintf(stderr, "callstack_instr: warning: QEMU lists no register '%s' on %s; "
                "the stack pointer is unknown\n", cs_arch->sp_reg, cs_arch->name);
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
    if (!reg_by_name) {
        find_registers();
        if (cs_cfg.system_mode) {
            cs_system_registers_found();
        }
    }
    if (!chunks[c]) {
        cs_vcpu *chunk = g_new0(cs_vcpu, CHUNK_SIZE);
        for (unsigned i = 0; i < CHUNK_SIZE; i++) {
            chunk[i].index = (c << CHUNK_BITS) | i;
            chunk[i].regbuf = g_byte_array_sized_new(16);
            chunk[i].membuf = g_byte_array_sized_new(16);
        }
        __atomic_store_n(&chunks[c], chunk, __ATOMIC_RELEASE);
    }
    g_mutex_unlock(&vcpu_table_lock);
    cs_vcpu *v = cs_vcpu_get(vcpu_index);
    v->stack = NULL;   /* an index can be reused after a thread exits */
    v->hot_stack = NULL;
    if (!cs_cfg.system_mode && !v->mem) {
        v->mem = g_new0(cs_guestmem, 1);
    }
    v->last_pc = 0;
    v->last_site = NULL;
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
     * becomes evictable. */
    if (cs_cfg.kind == STACK_THREADED) {
        cs_engine_drop_stack(cs_eng, v->stack);
    } else if (cs_cfg.kind == STACK_HEURISTIC) {
        cs_engine_release_stack(cs_eng, v->stack);
    }
    v->stack = NULL;
    v->hot_stack = NULL;
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
            chunks[c][i].hot_stack = NULL;
        }
    }
    cs_stack_id id = current_id();
    if (keep && cs_cfg.kind == STACK_HEURISTIC) {
        id.second = keep->id.second;
    }
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

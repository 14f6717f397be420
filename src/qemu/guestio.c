/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reading the guest's registers and memory (see guestio.h): QEMU's register
 * handles by name, reads through the plugin API, and the direct reads that
 * the API reads verify (fastreg.h for registers, guestmem.h for memory).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>
#include "plugin.h"
#include "fastreg.h"
#include "guestio.h"
#include "guestmem.h"

struct qemu_plugin_register *cs_reg_sp, *cs_reg_pc;
static GHashTable *reg_by_name;   /* register name -> handle */

struct qemu_plugin_register *cs_reg_handle(const char *name)
{
    return reg_by_name ? g_hash_table_lookup(reg_by_name, name) : NULL;
}

void cs_reg_find_all(void)
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
    cs_reg_sp = cs_arch->sp_reg ? cs_reg_handle(cs_arch->sp_reg) : NULL;
    cs_reg_pc = cs_arch->pc_reg ? cs_reg_handle(cs_arch->pc_reg) : NULL;
    if (!cs_reg_sp && cs_arch->sp_reg) {
        fprintf(stderr, "callstack_instr: warning: QEMU lists no register '%s' on %s; "
                "the stack pointer is unknown\n", cs_arch->sp_reg, cs_arch->name);
        cs_cfg.engine.sp_resync = false;
    }
}

/* A handle's name, for messages. */
static const char *reg_name(const struct qemu_plugin_register *h)
{
    GHashTableIter it;
    gpointer name, handle;
    g_hash_table_iter_init(&it, reg_by_name);
    while (g_hash_table_iter_next(&it, &name, &handle)) {
        if (handle == h) {
            return name;
        }
    }
    return "?";
}

void cs_reg_report_learning(void)
{
    GHashTableIter it;
    gpointer name, handle;
    unsigned reads, candidates;
    if (!reg_by_name) {
        return;
    }
    g_hash_table_iter_init(&it, reg_by_name);
    while (g_hash_table_iter_next(&it, &name, &handle)) {
        if (cs_fastreg_progress(handle, &reads, &candidates)) {
            fprintf(stderr, "callstack_instr: %s via the API so far: its offset is still being "
                    "learnt (%u reads, %u offsets agree)\n", (const char *)name, reads, candidates);
        }
    }
}

void cs_reg_examine_env(cs_vcpu *v, const void *env)
{
    v->env_checked = env;
    v->env_candidate = NULL;
    v->env_trusted = NULL;
    if (!cs_fastreg_enabled) {
        return;
    }
    if (!cs_fastreg_check_env(env)) {
        if (cs_cfg.verbose) {
            fprintf(stderr, "callstack_instr: vcpu %u: CPU-state pointer %p is not readable; "
                    "registers via the API\n", v->index, env);
        }
        return;
    }
    v->env_candidate = env;
}

/*
 * An API read of a general register gave x, in a callback whose CPU-state
 * pointer is readable but not trusted yet (env_probe): trust it, or not
 * (then it is not read through again, not even to learn), or wait for a
 * read that decides (see cs_fastreg_verify_env).
 */
static void verify_env(cs_vcpu *v, struct qemu_plugin_register *h, uint64_t x, unsigned size)
{
    uint64_t direct = 0;
    switch (cs_fastreg_verify_env(h, v->env_probe, x, size, &direct)) {
    case CS_ENV_TRUSTED:
        v->env_trusted = v->env_now = v->env_probe;
        if (cs_cfg.verbose) {
            fprintf(stderr, "callstack_instr: vcpu %u: CPU-state pointer trusted: %s read through "
                    "it equals the API's 0x%" PRIx64 "; registers with a known offset read "
                    "through it\n", v->index, reg_name(h), x);
        }
        break;
    case CS_ENV_REJECTED:
        v->env_candidate = v->env_probe = NULL;
        if (cs_cfg.verbose) {
            fprintf(stderr, "callstack_instr: vcpu %u: CPU-state pointer not trusted: read "
                    "0x%" PRIx64 " through it as %s (offset 0x%x), API says 0x%" PRIx64 "; "
                    "registers via the API\n", v->index, direct, reg_name(h),
                    (unsigned)cs_fastreg_of(h)->offset, x);
        }
        break;
    case CS_ENV_UNDECIDED:
        break;
    }
}

/* Through the API; learn: also verify the callback's CPU-state pointer and
 * teach fastreg.c where the register lives. */
static bool read_api(cs_vcpu *v, struct qemu_plugin_register *h, bool learn, uint64_t *out)
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
    if (learn && !v->env_now && v->env_probe) {
        verify_env(v, h, x, (unsigned)n);
    }
    const void *env = v->env_now ? v->env_now : v->env_probe;
    if (learn && env) {
        cs_learn_result r = cs_fastreg_learn(h, env, x, (unsigned)n);
        if (r.outcome == CS_LEARN_FOUND && cs_cfg.verbose) {
            fprintf(stderr, "callstack_instr: vcpu %u: %s fast (offset 0x%x in the CPU state: "
                    "%u reads agreed)\n", v->index, reg_name(h), (unsigned)r.offset, r.reads);
        } else if (r.outcome == CS_LEARN_FAILED && cs_cfg.verbose) {
            fprintf(stderr, "callstack_instr: vcpu %u: %s via the API: %s (after %u reads)\n",
                    v->index, reg_name(h), r.why, r.reads);
        }
    }
    return true;
}

bool cs_reg_read(cs_vcpu *v, struct qemu_plugin_register *h, uint64_t *out)
{
    return read_api(v, h, false, out);
}

bool cs_reg_read_gpr_api(cs_vcpu *v, struct qemu_plugin_register *h, uint64_t *out)
{
    return read_api(v, h, true, out);
}

bool cs_reg_read_pc(cs_vcpu *v, uint64_t *out)
{
    return read_api(v, cs_reg_pc, false, out);
}

bool cs_reg_read_current(const char *name, uint64_t *out)
{
    static __thread cs_vcpu scratch;   /* only its register buffer is used */
    if (!scratch.regbuf) {
        scratch.regbuf = g_byte_array_sized_new(16);
    }
    return read_api(&scratch, cs_reg_handle(name), false, out);
}

bool cs_mem_read(cs_vcpu *v, uint64_t addr, unsigned size, uint64_t *out)
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

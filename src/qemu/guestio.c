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

struct qemu_plugin_register *csi_reg_sp, *csi_reg_pc;
static GHashTable *reg_by_name;   /* register name -> handle */

struct qemu_plugin_register *csi_reg_handle(const char *name)
{
    return reg_by_name ? g_hash_table_lookup(reg_by_name, name) : NULL;
}

void csi_reg_find_all(void)
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
    csi_reg_sp = csi_arch->sp_reg ? csi_reg_handle(csi_arch->sp_reg) : NULL;
    csi_reg_pc = csi_arch->pc_reg ? csi_reg_handle(csi_arch->pc_reg) : NULL;
    if (!csi_reg_sp && csi_arch->sp_reg) {
        fprintf(stderr, "callstack_instr: warning: QEMU lists no register '%s' on %s; "
                "the stack pointer is unknown\n", csi_arch->sp_reg, csi_arch->name);
        csi_cfg.engine.sp_resync = false;
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

void csi_reg_report_learning(void)
{
    GHashTableIter it;
    gpointer name, handle;
    unsigned reads, candidates;
    if (!reg_by_name) {
        return;
    }
    g_hash_table_iter_init(&it, reg_by_name);
    while (g_hash_table_iter_next(&it, &name, &handle)) {
        if (csi_fastreg_progress(handle, &reads, &candidates)) {
            fprintf(stderr, "callstack_instr: %s via the API so far: its offset is still being "
                    "learnt (%u reads, %u offsets agree)\n", (const char *)name, reads, candidates);
        }
    }
}

void csi_reg_examine_env(csi_vcpu *v, const void *env)
{
    v->env_checked = env;
    v->env_candidate = NULL;
    v->env_trusted = NULL;
    v->fast_env = NULL;
    if (!csi_fastreg_enabled) {
        return;
    }
    if (!csi_fastreg_check_env(env)) {
        if (csi_cfg.verbose) {
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
 * read that decides (see csi_fastreg_verify_env).
 */
static void verify_env(csi_vcpu *v, struct qemu_plugin_register *h, uint64_t x, unsigned size)
{
    uint64_t direct = 0;
    switch (csi_fastreg_verify_env(h, v->env_probe, x, size, &direct)) {
    case CSI_ENV_TRUSTED:
        v->env_trusted = v->env_now = v->env_probe;
        if (csi_cfg.verbose) {
            fprintf(stderr, "callstack_instr: vcpu %u: CPU-state pointer trusted: %s read through "
                    "it equals the API's 0x%" PRIx64 "; registers with a known offset read "
                    "through it\n", v->index, reg_name(h), x);
        }
        break;
    case CSI_ENV_REJECTED:
        v->env_candidate = v->env_probe = NULL;
        if (csi_cfg.verbose) {
            fprintf(stderr, "callstack_instr: vcpu %u: CPU-state pointer not trusted: read "
                    "0x%" PRIx64 " through it as %s (offset 0x%x), API says 0x%" PRIx64 "; "
                    "registers via the API\n", v->index, direct, reg_name(h),
                    (unsigned)csi_fastreg_of(h)->offset, x);
        }
        break;
    case CSI_ENV_UNDECIDED:
        break;
    }
}

/* Through the API; learn: also verify the callback's CPU-state pointer and
 * teach fastreg.c where the register lives. */
static bool read_api(csi_vcpu *v, struct qemu_plugin_register *h, bool learn, uint64_t *out)
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
    if (!csi_arch->big_endian) {
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
        csi_learn_result r = csi_fastreg_learn(h, env, x, (unsigned)n);
        if (r.outcome == CSI_LEARN_FOUND && csi_cfg.verbose) {
            fprintf(stderr, "callstack_instr: vcpu %u: %s fast (offset 0x%x in the CPU state: "
                    "%u reads agreed)\n", v->index, reg_name(h), (unsigned)r.offset, r.reads);
        } else if (r.outcome == CSI_LEARN_FAILED && csi_cfg.verbose) {
            fprintf(stderr, "callstack_instr: vcpu %u: %s via the API: %s (after %u reads)\n",
                    v->index, reg_name(h), r.why, r.reads);
        }
    }
    return true;
}

bool csi_reg_read(csi_vcpu *v, struct qemu_plugin_register *h, uint64_t *out)
{
    return read_api(v, h, false, out);
}

bool csi_reg_read_gpr_api(csi_vcpu *v, struct qemu_plugin_register *h, uint64_t *out)
{
    return read_api(v, h, true, out);
}

bool csi_reg_read_pc(csi_vcpu *v, uint64_t *out)
{
    return read_api(v, csi_reg_pc, false, out);
}

bool csi_reg_read_current(const char *name, uint64_t *out)
{
    static __thread csi_vcpu scratch;   /* only its register buffer is used */
    if (!scratch.regbuf) {
        scratch.regbuf = g_byte_array_sized_new(16);
    }
    return read_api(&scratch, csi_reg_handle(name), false, out);
}

bool csi_mem_read(csi_vcpu *v, uint64_t addr, unsigned size, uint64_t *out)
{
    uint8_t bytes[8];
    if (size == 0 || size > 8) {
        return false;
    }
    if (!csi_guestmem_read(v->mem, addr, size, bytes)) {
        uint64_t gen = csi_guestmem_now();
        /* (the API sizes the array itself) */
        if (!qemu_plugin_read_memory_vaddr(addr, v->membuf, size) || v->membuf->len < size) {
            return false;
        }
        memcpy(bytes, v->membuf->data, size);
        if (__atomic_load_n(&csi_guestmem_enabled, __ATOMIC_ACQUIRE)) {
            csi_guestmem_learn(v->mem, addr, size, gen);
        }
    }
    uint64_t x = 0;
    for (unsigned i = 0; i < size; i++) {
        unsigned shift = csi_arch->big_endian ? 8u * (size - 1 - i) : 8u * i;
        x |= (uint64_t)bytes[i] << shift;
    }
    *out = x;
    return true;
}

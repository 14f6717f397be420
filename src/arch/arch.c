/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>
#include <capstone/capstone.h>
#include <glib.h>
#include "arch.h"

/*
 * Link-register architectures record a frame with the sp of the call
 * (sp_delta 0): the callee's entry sp, which is also the sp once it has
 * returned. See docs/architectures.md.
 */
static const csi_arch_desc arches[] = {
    { .name = "x86_64", .sp_reg = "rsp", .pc_reg = "rip", .word_bytes = 8,
      .ret_addr_on_stack = true, .call_kills_equal_sp = true, .tail_insns = 1, .context_insns = 1,
      .classify = csi_arch_x86_classify, .resolve_call = csi_arch_x86_resolve_call,
      .capstone_arch = CS_ARCH_X86, .capstone_mode = CS_MODE_64,
      .entry_ret = { .kind = CSI_TARGET_MEM, .base = "rsp", .size = 8 },
      .sigaction_nr = 13, .clone_nr = { 56, 435 } },
    { .name = "i386", .sp_reg = "esp", .pc_reg = "eip", .word_bytes = 4,
      .ret_addr_on_stack = true, .call_kills_equal_sp = true, .tail_insns = 1, .context_insns = 1,
      .classify = csi_arch_x86_classify, .resolve_call = csi_arch_x86_resolve_call,
      .capstone_arch = CS_ARCH_X86, .capstone_mode = CS_MODE_32,
      .entry_ret = { .kind = CSI_TARGET_MEM, .base = "esp", .size = 4, .mask = UINT32_MAX },
      .sigaction_nr = 174, .clone_nr = { 120, 435 } },
    /* cpsr bit 5 (T) chooses ARM or Thumb; an IT instruction up to 4
     * instructions back makes a Thumb instruction conditional. */
    { .name = "arm", .sp_reg = "sp", .pc_reg = "pc", .word_bytes = 4,
      .call_kills_equal_sp = true, .tail_insns = 1, .context_insns = 4, .mode_reg = "cpsr",
      .classify = csi_arch_arm_classify, .capstone_arch = CS_ARCH_ARM, .capstone_mode = CS_MODE_ARM,
      .entry_ret = { .kind = CSI_TARGET_REG, .base = "lr", .mask = ~1ull & UINT32_MAX },
      .sigaction_nr = 174, .clone_nr = { 120, 435 } },
    { .name = "aarch64", .sp_reg = "sp", .pc_reg = "pc", .word_bytes = 8,
      .call_kills_equal_sp = true, .tail_insns = 1, .classify = csi_arch_aarch64_classify,
      .entry_ret = { .kind = CSI_TARGET_REG, .base = "x30" }, .sigaction_nr = 134, .clone_nr = { 220, 435 } },
    /* MIPS: the branch and its delay slot end the block together. */
    { .name = "mips", .word_bytes = 4, .big_endian = true, .targets_observed = true,
      .call_kills_equal_sp = true, .tail_insns = 2, .classify = csi_arch_mips_classify,
      .clone_nr = { 4120, 4435 } },
    { .name = "mipsel", .word_bytes = 4, .targets_observed = true,
      .call_kills_equal_sp = true, .tail_insns = 2, .classify = csi_arch_mips_classify,
      .clone_nr = { 4120, 4435 } },
    { .name = "mips64el", .word_bytes = 8, .targets_observed = true,
      .call_kills_equal_sp = true, .tail_insns = 2, .classify = csi_arch_mips_classify,
      .clone_nr = { 5055, 5435 } },
    { .name = "ppc", .sp_reg = "r1", .pc_reg = "pc", .word_bytes = 4, .big_endian = true,
      .call_kills_equal_sp = true, .tail_insns = 1, .classify = csi_arch_ppc_classify,
      .entry_ret = { .kind = CSI_TARGET_REG, .base = "lr", .mask = UINT32_MAX },
      .sigaction_nr = 173, .clone_nr = { 120, 435 } },
    { .name = "ppc64le", .sp_reg = "r1", .pc_reg = "pc", .word_bytes = 8,
      .call_kills_equal_sp = true, .local_entries = true, .tail_insns = 1, .classify = csi_arch_ppc_classify,
      .entry_ret = { .kind = CSI_TARGET_REG, .base = "lr" }, .sigaction_nr = 173, .clone_nr = { 120, 435 } },
    /* qemu-system-ppc64 (whole-system): the guest's byte order is MSR.LE,
     * read per block (mode_reg); little-endian (ppc64el) is what its
     * data and registers are read as. */
    { .name = "ppc64", .sp_reg = "r1", .pc_reg = "pc", .word_bytes = 8, .mode_reg = "msr",
      .call_kills_equal_sp = true, .tail_insns = 1, .classify = csi_arch_ppc_classify,
      .entry_ret = { .kind = CSI_TARGET_REG, .base = "lr" } },
    { .name = "riscv64", .sp_reg = "sp", .pc_reg = "pc", .word_bytes = 8,
      .call_kills_equal_sp = true, .tail_insns = 1, .classify = csi_arch_riscv_classify,
      .entry_ret = { .kind = CSI_TARGET_REG, .base = "ra" }, .sigaction_nr = 134, .clone_nr = { 220, 435 } },
};

const csi_arch_desc *csi_arch_find(const char *target_name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(arches); i++) {
        if (strcmp(arches[i].name, target_name) == 0) {
            return &arches[i];
        }
    }
    return NULL;
}

const char *csi_arch_supported(void)
{
    static char buf[256];
    if (!buf[0]) {
        for (size_t i = 0; i < G_N_ELEMENTS(arches); i++) {
            g_strlcat(buf, i ? ", " : "", sizeof buf);
            g_strlcat(buf, arches[i].name, sizeof buf);
        }
    }
    return buf;
}

/* ARM condition codes (ARM ARM, "Condition codes") on cpsr's N, Z, C, V. */
static bool arm_cond(unsigned code, uint64_t cpsr)
{
    bool n = cpsr >> 31 & 1, z = cpsr >> 30 & 1, c = cpsr >> 29 & 1, v = cpsr >> 28 & 1;
    bool r;
    switch (code >> 1) {
    case 0: r = z; break;                 /* EQ / NE */
    case 1: r = c; break;                 /* CS / CC */
    case 2: r = n; break;                 /* MI / PL */
    case 3: r = v; break;                 /* VS / VC */
    case 4: r = c && !z; break;           /* HI / LS */
    case 5: r = n == v; break;            /* GE / LT */
    case 6: r = !z && n == v; break;      /* GT / LE */
    default: return true;                 /* AL */
    }
    return (code & 1) ? !r : r;
}

bool csi_cond_holds(const csi_cond *c, uint64_t v)
{
    switch (c->kind) {
    case CSI_COND_ARM:
        return arm_cond(c->code, v);
    case CSI_COND_PPC_CR:
        return ((v >> (31 - c->code)) & 1) == (uint64_t)c->want;
    case CSI_COND_ALWAYS:
    default:
        return true;
    }
}

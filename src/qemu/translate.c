/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Translation-time instrumentation. Everything is decided here, once per
 * block, so that executing a block costs at most:
 *   - one inline load-compare-branch at its start (the conditional callback
 *     that fires only when the previous block ended in a call or return);
 *   - a few inline stores if it ends in a call or return.
 * No callback, register read or lookup happens on other blocks.
 */
#include <string.h>
#include "state.h"

void cs_vcpu_register_block(struct qemu_plugin_tb *tb, uint64_t pc);

static void instrument_insn(struct qemu_plugin_insn *insn, const cs_insn_info *info)
{
    qemu_plugin_u64 kind = qemu_plugin_scoreboard_u64_in_struct(cs_pending_sb, cs_pending, kind);
    if (info->cls == CS_INSN_CALL) {
        qemu_plugin_u64 ra = qemu_plugin_scoreboard_u64_in_struct(cs_pending_sb, cs_pending, ret_addr);
        qemu_plugin_u64 site = qemu_plugin_scoreboard_u64_in_struct(cs_pending_sb, cs_pending, call_site);
        qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_STORE_U64, ra,
                                                            info->ret_addr);
        qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_STORE_U64, site,
                                                            qemu_plugin_insn_vaddr(insn));
        qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_STORE_U64, kind,
                                                            CS_PENDING_CALL);
    } else if (info->cls == CS_INSN_RET) {
        qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_STORE_U64, kind,
                                                            CS_PENDING_RET);
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    cs_vcpu_register_block(tb, qemu_plugin_tb_vaddr(tb));

    /* Calls and returns end a block (or sit just before a delay slot), so
     * only the tail needs decoding. */
    size_t first = n > cs_arch->tail_insns ? n - cs_arch->tail_insns : 0;
    for (size_t i = first; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint8_t code[16];
        size_t len = qemu_plugin_insn_data(insn, code, sizeof code);
        cs_insn_info info;
        cs_arch->classify(cs_arch, code, len, qemu_plugin_insn_vaddr(insn), &info);
        if (info.cls != CS_INSN_OTHER) {
            instrument_insn(insn, &info);
        }
    }
}

void cs_translate_setup(qemu_plugin_id_t id)
{
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest instructions executed, for formats that stamp entries with them as
 * PANDA does (pandalog's instr). An inline add per block on a per-vCPU
 * scoreboard: no callback, no lock, and nothing at all unless a format asks.
 * A block's instructions are counted when it starts, so an entry made
 * inside a block counts the whole block; a block cut short by an exception
 * is still counted whole.
 */
#include <qemu-plugin.h>
#include "calltrace.h"

static struct qemu_plugin_scoreboard *board;
static qemu_plugin_u64 insns;

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(tb, QEMU_PLUGIN_INLINE_ADD_U64, insns,
                                                      qemu_plugin_tb_n_insns(tb));
}

void ct_icount_init(uint64_t plugin_id)
{
    board = qemu_plugin_scoreboard_new(sizeof(uint64_t));
    insns = qemu_plugin_scoreboard_u64(board);
    qemu_plugin_register_vcpu_tb_trans_cb(plugin_id, on_tb_trans);
}

uint64_t ct_icount_total(void)
{
    return board ? qemu_plugin_u64_sum(insns) : 0;
}

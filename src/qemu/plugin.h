/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What plugin.c sets up at install and every other file of the glue reads:
 * the configuration from the command line, the engine and the guest
 * architecture's description.
 */
#ifndef CSI_QEMU_PLUGIN_H
#define CSI_QEMU_PLUGIN_H

#include <stdbool.h>
#include <qemu-plugin.h>
#include "engine/engine.h"
#include "arch/arch.h"

typedef struct csi_config {
    bool verbose;
    stack_type kind;
    bool system_mode;
    /* fast_regs=on: read guest registers and memory directly where verified
     * (fastreg.h, guestmem.h); off: always through the plugin API. */
    bool direct_reads;
    /* returns=lazy|all: whether returns may be counted instead of reported
     * while nobody subscribes (returns.h; a csi_returns_mode) */
    int returns;
    csi_engine_config engine;
} csi_config;

extern csi_config csi_cfg;
extern qemu_plugin_id_t csi_plugin_id;
/* Registers every callback of the plugin (at install, and again after
 * qemu_plugin_reset, which removes them all). */
void csi_plugin_register_callbacks(qemu_plugin_id_t id);
extern csi_engine *csi_eng;
extern const csi_arch_desc *csi_arch;

#endif

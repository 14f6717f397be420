/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What plugin.c sets up at install and every other file of the glue reads:
 * the configuration from the command line, the engine and the guest
 * architecture's description.
 */
#ifndef CS_QEMU_PLUGIN_H
#define CS_QEMU_PLUGIN_H

#include <stdbool.h>
#include "engine/engine.h"
#include "arch/arch.h"

typedef struct cs_config {
    bool verbose;
    stack_type kind;
    bool system_mode;
    /* fast_regs=on: read guest registers and memory directly where verified
     * (fastreg.h, guestmem.h); off: always through the plugin API. */
    bool direct_reads;
    cs_engine_config engine;
} cs_config;

extern cs_config cs_cfg;
extern cs_engine *cs_eng;
extern const cs_arch_desc *cs_arch;

#endif

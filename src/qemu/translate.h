/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Translation-time instrumentation (translate.c). */
#ifndef CSI_QEMU_TRANSLATE_H
#define CSI_QEMU_TRANSLATE_H

#include <qemu-plugin.h>

/* Per-vCPU flag, non-zero while a CSI_TARGET_NEXT site awaits its block
 * (whose callback is conditional on it). */
extern qemu_plugin_u64 csi_pending_flag;

void csi_translate_setup(qemu_plugin_id_t id);
void csi_translate_register_callbacks(qemu_plugin_id_t id);

#endif

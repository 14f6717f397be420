/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The one system-call callback (syscalls.c; QEMU keeps one per plugin). */
#ifndef CSI_QEMU_SYSCALLS_H
#define CSI_QEMU_SYSCALLS_H

#include <qemu-plugin.h>

void csi_syscalls_setup(qemu_plugin_id_t id);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Signal handlers as frames (signals.c). */
#ifndef CSI_QEMU_SIGNALS_H
#define CSI_QEMU_SIGNALS_H

#include <stdbool.h>
#include <stdint.h>

void csi_signals_setup(void);
/* Before a system call (syscalls.c): learns handlers from rt_sigaction. */
void csi_signals_on_syscall(int64_t num, uint64_t a2);
/* Is pc a known handler's address (translation time)? */
bool csi_signals_is_handler(uint64_t pc);

#endif

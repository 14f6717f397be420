/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The callbacks QEMU calls from translated code, as trampolines that add
 * TCG's CPU-state pointer (TCG_AREG0, a host register the C convention
 * preserves, so still intact at our entry) as a third argument and jump to
 * the real callback. Nothing reads through the pointer before guestio.c has
 * checked it. This is the one list of hosts that have such a register;
 * other hosts get plain wrappers passing NULL, and read registers through
 * the API.
 */
#include <stddef.h>
#include "events.h"
#include "fastpath.h"
#include "trampoline.h"

#if defined(__x86_64__)
#define ENV_REGISTER "rbp"
#define ENV_TRAMPOLINE(name, target, ARG)                                       \
    __asm__(".text\n"                                                           \
            ".globl " #name "\n"                                                \
            ".hidden " #name "\n"                                               \
            ".type " #name ", @function\n"                                      \
            #name ":\n"                                                         \
            "\tmovq %" ENV_REGISTER ", %" ARG "\n"                              \
            "\tjmp " #target "\n"                                               \
            ".size " #name ", .-" #name "\n");
#define TRAMPOLINE(name, target) ENV_TRAMPOLINE(name, target, "rdx")
#define TRAMPOLINE_MEM(name, target) ENV_TRAMPOLINE(name, target, "r8")
#elif defined(__aarch64__)
#define ENV_REGISTER "x19"
#define ENV_TRAMPOLINE(name, target, ARG)                                       \
    __asm__(".text\n"                                                           \
            ".globl " #name "\n"                                                \
            ".hidden " #name "\n"                                               \
            ".type " #name ", %function\n"                                      \
            #name ":\n"                                                         \
            "\tmov " ARG ", " ENV_REGISTER "\n"                                  \
            "\tb " #target "\n"                                                 \
            ".size " #name ", .-" #name "\n");
#define TRAMPOLINE(name, target) ENV_TRAMPOLINE(name, target, "x2")
#define TRAMPOLINE_MEM(name, target) ENV_TRAMPOLINE(name, target, "x4")
#else
#define ENV_REGISTER NULL
#define TRAMPOLINE(name, target)                                                \
    void name(unsigned int vcpu_index, void *udata)                             \
    {                                                                           \
        target(vcpu_index, udata, NULL);                                        \
    }
#define TRAMPOLINE_MEM(name, target)                                            \
    void name(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr, \
              void *udata)                                                      \
    {                                                                           \
        target(vcpu_index, info, vaddr, udata, NULL);                           \
    }
#endif

TRAMPOLINE(csi_on_call, csi_fastpath_call)
TRAMPOLINE(csi_on_ret, csi_fastpath_ret)
TRAMPOLINE_MEM(csi_on_call_loaded, csi_fastpath_call_loaded)
TRAMPOLINE(csi_on_landing, csi_events_landing)
TRAMPOLINE(csi_on_signal_entry, csi_events_signal_entry)

const char *csi_trampoline_env_register(void)
{
    return ENV_REGISTER;
}

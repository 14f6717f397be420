/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The callbacks QEMU calls from translated code, as trampolines that add
 * TCG's CPU state pointer (TCG_AREG0, preserved across calls by the host's
 * C convention, so still intact at our entry) as a third argument and jump
 * to the real callback. Nothing trusts the pointer before fastreg.c has
 * checked it. Other hosts get plain wrappers passing NULL.
 */
#include "trampoline.h"
#include "vcpu.h"

#if defined(__x86_64__)
#define TRAMPOLINE(name, target)                                                \
    __asm__(".text\n"                                                           \
            ".globl " #name "\n"                                                \
            ".hidden " #name "\n"                                               \
            ".type " #name ", @function\n"                                      \
            #name ":\n"                                                         \
            "\tmovq %rbp, %rdx\n"                                               \
            "\tjmp " #target "\n"                                               \
            ".size " #name ", .-" #name "\n");
#elif defined(__aarch64__)
#define TRAMPOLINE(name, target)                                                \
    __asm__(".text\n"                                                           \
            ".globl " #name "\n"                                                \
            ".hidden " #name "\n"                                               \
            ".type " #name ", %function\n"                                      \
            #name ":\n"                                                         \
            "\tmov x2, x19\n"                                                   \
            "\tb " #target "\n"                                                 \
            ".size " #name ", .-" #name "\n");
#else
#define TRAMPOLINE(name, target)                                                \
    void name(unsigned int vcpu_index, void *udata)                             \
    {                                                                           \
        target(vcpu_index, udata, NULL);                                        \
    }
#endif

TRAMPOLINE(cs_vcpu_on_call, cs_vcpu_on_call_env)
TRAMPOLINE(cs_vcpu_on_ret, cs_vcpu_on_ret_env)
TRAMPOLINE(cs_vcpu_on_landing, cs_vcpu_on_landing_env)
TRAMPOLINE(cs_vcpu_on_signal_entry, cs_vcpu_on_signal_entry_env)

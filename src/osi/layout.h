/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * BTF -> the kernel-structure offsets osi_linux reads tasks with. Members
 * are found by name wherever they sit, inside anonymous structs and unions
 * too, so randomized layouts (CONFIG_RANDSTRUCT) work as well. No QEMU
 * headers: unit-tested on the BTF of real kernels.
 */
#ifndef OSI_LAYOUT_H
#define OSI_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct osi_layout {
    uint32_t task_pid, task_tgid, task_comm, task_mm, task_flags, task_stack;  /* byte offsets in task_struct */
    uint32_t comm_size;           /* sizeof task->comm (16) */
    uint32_t mm_pgd;              /* offset of pgd in mm_struct */
    uint32_t pid_size;            /* 4 */
    uint64_t thread_size;         /* THREAD_SIZE = sizeof(union thread_union) */
    bool has_percpu_current;      /* x86_64 */
    uint64_t percpu_current;      /* x86_64: offset of the current task pointer in the per-CPU area:
                                     variable `current_task` (<= 6.1) or `pcpu_hot` + offset of its member
                                     `current_task` (>= 6.2), from BTF's DATASEC ".data..percpu" */
} osi_layout;

/*
 * arch: "x86_64" or "aarch64". False after one clear line (no trailing
 * newline) in err.
 *
 * THREAD_SIZE: sizeof(union thread_union) when the BTF has that type;
 * Linux's BTF usually does not (no BTF-described variable uses it), and
 * then it is the architecture's default, 16 KiB on both, doubled when the
 * kernel has KASAN (its BTF then describes the function kasan_report).
 * Kernels with other stack sizes (arm64 with 64 KiB pages: 64 KiB) would
 * need it given explicitly.
 */
bool osi_layout_from_btf(const uint8_t *btf, size_t size, const char *arch, osi_layout *out,
                         char *err, size_t errlen);

#endif

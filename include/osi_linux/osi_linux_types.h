/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Types of osi_linux's API, shared by its run-time binding (osi_linux.h, for
 * other plugins) and its implementation. The plugin exports each function
 * of osi_linux.h as NAME_impl.
 */
#ifndef OSI_LINUX_TYPES_H
#define OSI_LINUX_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when a function's signature or a struct's layout changes. */
#define OSI_LINUX_API_VERSION 1

#define OSI_LINUX_COMM_LEN 16   /* Linux's TASK_COMM_LEN */

/* A guest thread (a Linux task), as read from its task_struct. */
typedef struct osi_linux_thread {
    uint64_t task;          /* guest address of the task_struct */
    int32_t pid;            /* thread id (task->pid; 0 for the idle tasks) */
    int32_t tgid;           /* process id (task->tgid) */
    bool kernel_thread;     /* PF_KTHREAD: has no user half */
    bool fresh;             /* read now; false: the vCPU's last identity read,
                               kernel memory being unreadable now (user mode
                               with page-table isolation) */
    char comm[OSI_LINUX_COMM_LEN + 1];   /* task->comm, NUL-terminated */
    uint64_t kstack;        /* task->stack: lowest address of its kernel stack */
    uint64_t kstack_size;   /* the kernel's THREAD_SIZE */
} osi_linux_thread;

/*
 * The Linux kernel symbol containing a run-time address. Strings belong to
 * osi_linux and stay valid until QEMU exits.
 */
typedef struct osi_linux_symbol {
    const char *name;       /* function (or other symbol) containing the address */
    uint64_t addr;          /* its run-time address */
    uint64_t offset;        /* address minus addr */
} osi_linux_symbol;

#ifdef __cplusplus
}
#endif
#endif

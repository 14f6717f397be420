/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The thread a vCPU runs: Linux's current task, found from registers and
 * read from guest memory at the offsets the kernel's BTF gives (layout.c).
 *
 *  - x86_64: the per-CPU variable holding the current task (current_task,
 *    or pcpu_hot.current_task from 6.2) at the per-CPU base. In kernel mode
 *    the base is gs_base; in user mode, and in the first instructions after
 *    `syscall` before `swapgs`, gs_base holds the user's value and the
 *    kernel's waits in k_gs_base: the one with the top bit set is the
 *    kernel's.
 *  - aarch64: SP_EL0 holds the current task while the kernel runs (EL1);
 *    in EL0 and at the exception vectors before the kernel reloads it, it is
 *    the user's stack pointer: only a kernel address is taken.
 *
 * Reads go through QEMU's page tables walk for the vCPU: unmapped or
 * garbage addresses fail, never fault. With page-table isolation the
 * kernel is not mapped in user mode; the vCPU's last identity is returned
 * then, marked not fresh.
 *
 * Nothing is cached by task address (a dead task's memory is reused by the
 * next one): pid, tgid and comm are read on every call. Callers ask only
 * when something changed (callstack_instr: at a change of kernel stack).
 *
 * The offsets may not describe the running kernel (kernel= names another
 * build): every task read is checked (a printable NUL-terminated comm,
 * pids in Linux's range, an aligned kernel stack in the kernel half, and on
 * x86_64 mm->pgd matching CR3 modulo 1 GiB, the granularity of the direct
 * map's randomisation). When failures outnumber successes by more than a
 * few, osi_linux says so once and reports no identities from then on.
 */
#include <stdio.h>
#include <string.h>
#include <glib.h>
#include "osi.h"

#define PID_MAX_LIMIT (4 * 1024 * 1024)   /* Linux's upper bound for pid_max */
#define PF_KTHREAD 0x00200000u
#define TRUST_MARGIN 8                    /* bad reads beyond good ones: give up */
#define PGD_CHECKS 64                     /* x86_64: mm->pgd checked on this many reads */

typedef struct osi_cpu {
    osi_linux_thread last;
    bool known;
    GByteArray *buf;
} osi_cpu;

static osi_arch arch;
static osi_layout L;
static osi_cpu *cpus;
static unsigned ncpus;

static struct qemu_plugin_register *r_base, *r_kbase, *r_pgtable;
static bool regs_ready;
static GMutex regs_lock;

static unsigned good, bad, pgd_checked, pgd_matched;   /* atomics */
static bool broken;                                    /* atomic */

void osi_current_setup(osi_arch a, const osi_layout *layout, unsigned max_vcpus)
{
    arch = a;
    L = *layout;
    ncpus = max_vcpus ? max_vcpus : 1;
    cpus = g_new0(osi_cpu, ncpus);
    for (unsigned i = 0; i < ncpus; i++) {
        cpus[i].buf = g_byte_array_sized_new(32);
    }
}

static struct qemu_plugin_register *find_reg(GArray *regs, const char *name)
{
    for (guint i = 0; i < regs->len; i++) {
        qemu_plugin_reg_descriptor *d = &g_array_index(regs, qemu_plugin_reg_descriptor, i);
        if (strcmp(d->name, name) == 0) {
            return d->handle;
        }
    }
    fprintf(stderr, "osi_linux: QEMU lists no register '%s' on this guest; no thread "
            "identities\n", name);
    __atomic_store_n(&broken, true, __ATOMIC_RELAXED);
    return NULL;
}

/* Handles are the same for every vCPU; QEMU lists them only from a vCPU's
 * thread, so on the first call rather than at install. */
static bool regs_find(void)
{
    if (__atomic_load_n(&regs_ready, __ATOMIC_ACQUIRE)) {
        return !__atomic_load_n(&broken, __ATOMIC_RELAXED);
    }
    g_mutex_lock(&regs_lock);
    if (!regs_ready) {
        GArray *regs = qemu_plugin_get_registers();
        if (arch == OSI_X86_64) {
            r_base = find_reg(regs, "gs_base");
            r_kbase = find_reg(regs, "k_gs_base");
            r_pgtable = find_reg(regs, "cr3");
        } else {
            r_base = find_reg(regs, "SP_EL0");
        }
        g_array_free(regs, TRUE);
        __atomic_store_n(&regs_ready, true, __ATOMIC_RELEASE);
    }
    g_mutex_unlock(&regs_lock);
    return !__atomic_load_n(&broken, __ATOMIC_RELAXED);
}

static bool reg(GByteArray *buf, struct qemu_plugin_register *h, uint64_t *out)
{
    g_byte_array_set_size(buf, 0);
    int n = qemu_plugin_read_register(h, buf);
    if (n <= 0 || n > 8) {
        return false;
    }
    uint64_t v = 0;
    memcpy(&v, buf->data, (size_t)n);   /* (little-endian host and guests) */
    *out = v;
    return true;
}

static bool mem(GByteArray *buf, uint64_t addr, void *out, size_t len)
{
    g_byte_array_set_size(buf, 0);
    if (!qemu_plugin_read_memory_vaddr(addr, buf, len) || buf->len < len) {
        return false;
    }
    memcpy(out, buf->data, len);
    return true;
}

static bool task_pointer(osi_cpu *c, uint64_t *task)
{
    uint64_t base = 0;
    if (!reg(c->buf, r_base, &base)) {
        return false;
    }
    if (arch == OSI_AARCH64) {
        *task = base;
        return osi_kernel_addr(base);
    }
    if (!osi_kernel_addr(base) && !(reg(c->buf, r_kbase, &base) && osi_kernel_addr(base))) {
        return false;   /* early boot: no per-CPU area yet */
    }
    return mem(c->buf, base + L.percpu_current, task, 8) && osi_kernel_addr(*task);
}

static const char *comm_problem(const char *comm, size_t size)
{
    size_t n = strnlen(comm, size);
    if (n == size) {
        return "comm is not NUL-terminated";
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)comm[i];
        if (ch < 0x20 || ch == 0x7f) {
            return "comm is not printable";
        }
    }
    return NULL;
}

static void give_up(unsigned vcpu, uint64_t task, const char *why)
{
    if (!__atomic_exchange_n(&broken, true, __ATOMIC_RELAXED)) {
        fprintf(stderr, "osi_linux: the task at 0x%" PRIx64 " (vCPU %u) makes no sense: %s; "
                "does kernel= name the kernel the guest runs? No thread identities from now "
                "on (callstack_instr falls back to asid stacks)\n", task, vcpu, why);
    }
}

/* Reads and checks the task's fields; NULL, or what is wrong. */
static const char *read_task(osi_cpu *c, uint64_t task, osi_linux_thread *t)
{
    int32_t pid, tgid;
    uint32_t flags = 0;
    char comm[OSI_LINUX_COMM_LEN + 1] = { 0 };
    uint64_t stack;
    size_t clen = L.comm_size < OSI_LINUX_COMM_LEN ? L.comm_size : OSI_LINUX_COMM_LEN;
    if (!mem(c->buf, task + L.task_pid, &pid, 4) || !mem(c->buf, task + L.task_tgid, &tgid, 4) ||
        !mem(c->buf, task + L.task_comm, comm, clen) ||
        !mem(c->buf, task + L.task_flags, &flags, 4) ||
        !mem(c->buf, task + L.task_stack, &stack, 8)) {
        return "its fields are not readable";
    }
    if (pid < 0 || pid > PID_MAX_LIMIT || tgid < 0 || tgid > PID_MAX_LIMIT || (pid && !tgid)) {
        return "pid or tgid out of range";
    }
    const char *p = comm_problem(comm, clen + 1);
    if (p) {
        return p;
    }
    if (!osi_kernel_addr(stack) || (stack & 0xfff)) {
        return "its kernel stack is not a page-aligned kernel address";
    }
    memset(t, 0, sizeof *t);
    t->task = task;
    t->pid = pid;
    t->tgid = tgid;
    t->kernel_thread = flags & PF_KTHREAD;
    memcpy(t->comm, comm, sizeof t->comm);
    t->kstack = stack;
    t->kstack_size = L.thread_size;
    t->fresh = true;
    return NULL;
}

/*
 * x86_64: in kernel mode CR3 is the current process's page table (its
 * kernel copy with page-table isolation: bit 12 is the user copy's). mm->pgd
 * is its direct-map address, phys + page_offset_base, and page_offset_base
 * is randomised in 1 GiB steps: the low 30 bits agree. A context switch
 * loads CR3 a little before the task changes, so single mismatches happen;
 * only a mostly mismatching kernel is wrong.
 */
static void check_pgd(osi_cpu *c, uint64_t task, unsigned vcpu)
{
    uint64_t mm = 0, pgd = 0, cr3 = 0;
    if (arch != OSI_X86_64 || __atomic_load_n(&pgd_checked, __ATOMIC_RELAXED) >= PGD_CHECKS ||
        !mem(c->buf, task + L.task_mm, &mm, 8) || !mm || !osi_kernel_addr(mm) ||
        !mem(c->buf, mm + L.mm_pgd, &pgd, 8) || !reg(c->buf, r_pgtable, &cr3)) {
        return;
    }
    const uint64_t mask = ((1ull << 30) - 1) & ~0x1fffull;
    unsigned n = __atomic_add_fetch(&pgd_checked, 1, __ATOMIC_RELAXED);
    unsigned m = (pgd & mask) == (cr3 & mask) ? __atomic_add_fetch(&pgd_matched, 1, __ATOMIC_RELAXED)
                                               : __atomic_load_n(&pgd_matched, __ATOMIC_RELAXED);
    if (n == PGD_CHECKS && m < PGD_CHECKS / 4) {
        give_up(vcpu, task, "mm->pgd does not match CR3");
    }
}

bool osi_current(unsigned vcpu, osi_linux_thread *out)
{
    if (vcpu >= ncpus || __atomic_load_n(&broken, __ATOMIC_RELAXED) || !regs_find()) {
        return false;
    }
    osi_cpu *c = &cpus[vcpu];
    uint64_t task;
    if (!task_pointer(c, &task)) {
        if (!c->known) {
            return false;
        }
        *out = c->last;
        out->fresh = false;
        return true;
    }
    osi_linux_thread t;
    const char *why = read_task(c, task, &t);
    if (why) {
        unsigned b = __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
        if (b > __atomic_load_n(&good, __ATOMIC_RELAXED) + TRUST_MARGIN) {
            give_up(vcpu, task, why);
        }
        return false;
    }
    __atomic_add_fetch(&good, 1, __ATOMIC_RELAXED);
    check_pgd(c, task, vcpu);
    if (__atomic_load_n(&broken, __ATOMIC_RELAXED)) {
        return false;
    }
    c->last = t;
    c->known = true;
    *out = t;
    return true;
}

bool osi_current_task(unsigned vcpu, uint64_t *task)
{
    return vcpu < ncpus && !__atomic_load_n(&broken, __ATOMIC_RELAXED) && regs_find() &&
           task_pointer(&cpus[vcpu], task);
}

void osi_current_report(void)
{
    fprintf(stderr, "osi_linux: task reads: %u sound, %u not; mm->pgd matched CR3 %u of %u "
            "times%s\n", good, bad, pgd_matched, pgd_checked,
            broken ? "; gave up (see above)" : "");
}

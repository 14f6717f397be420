/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Stack ids in whole-system mode (qemu-system-*), where there is no
 * operating-system view: only registers, read at call and return callbacks
 * (never per block).
 *
 * Privilege first: kernel and user code never share a stack.
 *  - User mode: one stack per address space, stack_type=asid as in PANDA:
 *    (asid=ADDRESS-SPACE-ID). The id comes from the page-table base register
 *    (see x86_asid and a64_asid for which bits and why).
 *  - Kernel mode: one stack per kernel stack, (kernel, sp=REGION): the
 *    THREAD_SIZE-aligned region holding the stack pointer. Linux gives every
 *    task its own kernel stack (THREAD_SIZE bytes, aligned to it: 16 KiB on
 *    x86_64, arm64 (32 KiB-aligned there) and ppc64; 8 KiB on i386 and arm)
 *    and every CPU its own interrupt stack, and switches tasks by
 *    switching the stack pointer inside the kernel. A region id follows those
 *    switches exactly: the call into the context switch is pushed on the old
 *    task's stack and its return pops the new task's, interrupts nest on
 *    whatever stack they run on, and a kernel thread (which borrows another
 *    process's page tables) still has a stack of its own. The page-table
 *    register is no use here: it changes before the kernel switches stacks,
 *    and kernel threads do not change it at all.
 *
 * Since each kernel shadow stack follows one guest stack, the stack pointer
 * is trusted there (engine sp_resync_own): frames left behind by a task
 * that exited are unwound when a new task reuses its stack. User stacks are
 * shared by a process's threads, so the stack pointer is not trusted there.
 *
 * Neither kind of stack can be known to be dead (no operating-system view),
 * so their number is bounded instead: at most max_spaces user stacks and
 * max_spaces kernel stacks; creating one more frees the least recently used
 * one no vCPU is on, with its frames, without events (as a thread that
 * exits in user mode gets none). A process or task evicted while alive
 * (asleep behind max_spaces more recent ones) later starts on an empty
 * stack: its returns to the lost frames match nothing.
 *
 * Entering the kernel (interrupt, exception, system call) changes the
 * privilege level, hence the stack: nothing is pushed on the interrupted
 * user stack, and the return to user mode (iretq, sysretq, eret) is not a
 * return instruction, so nothing is popped either.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plugin.h"
#include "system.h"
#include "guestio.h"
#include "vcpu.h"
#include "osi.h"

typedef struct sys_arch {
    const char *name;                       /* QEMU's target_name */
    const char *regs[4];                    /* registers read, by QEMU's names */
    bool (*kernel)(csi_vcpu *v);             /* privileged? */
    bool (*asid)(csi_vcpu *v, uint64_t *out);
    /* Linux's THREAD_SIZE there (without KASAN, as Debian builds it): the
     * size and alignment of task and interrupt stacks. */
    uint32_t kstack;
    /* On coming back to a user stack, unwinds the frames of a dead process
     * whose address-space id a new one got; NULL where ids are not reused. */
    void (*drop_dead)(csi_vcpu *v, csi_stack *s);
} sys_arch;

static const sys_arch *sys;

/* The kernel-stack region size of the guest's architecture. */
#define KERNEL_STACK_REGION (sys->kstack)
uint64_t csi_system_kregion_mask;

static struct qemu_plugin_register *handle[4];

static bool rd(csi_vcpu *v, unsigned i, uint64_t *out)
{
    return csi_reg_read(v, handle[i], out);
}

/*
 * x86: the CPL is the low two bits of the cs selector. In protected and long
 * mode the processor keeps them equal to the CPL (QEMU loads cs with RPL =
 * CPL on every privilege change: syscall, sysret, interrupts, iret), for any
 * operating system. rip's canonical half is only Linux's convention, and
 * says nothing for 32-bit guests. (In real mode, where the selector is a
 * plain segment, everything runs at CPL 0; firmware only.)
 */
static bool x86_kernel(csi_vcpu *v)
{
    uint64_t cs = 0;
    return rd(v, 0, &cs) && (cs & 3) != 3;
}

/*
 * x86: CR3 holds the page-table base. Its low 12 bits are the PCID when
 * CR4.PCIDE is set: Linux gives an address space a different PCID on each
 * CPU and recycles them, so they are masked off, or a process would get one
 * stack per CPU. Without PCIDE the low bits are the PWT/PCD flags (bits 3-4;
 * bits 5-11 are the PDPT address with 32-bit PAE). Bits 52-63 are not
 * address bits (bit 63 is the "no flush" hint of a CR3 write).
 */
static bool x86_asid(csi_vcpu *v, uint64_t *out)
{
    uint64_t cr3, cr4 = 0;
    if (!rd(v, 1, &cr3)) {
        return false;
    }
    rd(v, 2, &cr4);
    uint64_t low = (cr4 & (1u << 17)) ? 0xfff : 0x1f;
    *out = cr3 & 0x000fffffffffffffull & ~low;
    return true;
}

/*
 * AArch64: the exception level is PSTATE bits 3:2 (QEMU's cpsr); an AArch32
 * EL0 process shows mode 0x10 (usr) there instead.
 */
static bool a64_kernel(csi_vcpu *v)
{
    uint64_t cpsr = 0;
    if (!rd(v, 0, &cpsr)) {
        return false;
    }
    if (cpsr & 0x10) {
        return (cpsr & 0x1f) != 0x10;
    }
    return ((cpsr >> 2) & 3) != 0;
}

/*
 * AArch64: TTBR0_EL1 is the user half's page-table base (BADDR, bits 47:1;
 * bit 0 is CnP), i.e. the process's address space, like CR3. Its ASID field
 * (bits 63:48) is only in use when TCR_EL1.A1 is 0; Linux sets A1, so the
 * ASID lives in TTBR1_EL1 instead. We add that ASID (from whichever
 * register TCR_EL1.A1 selects) to the base: page-table pages of dead
 * processes are reused by new ones, but Linux hands out ASIDs in increasing
 * order until they wrap, so a new process on a reused page table still gets
 * a new stack, without its predecessor's frames. (Only user-mode events use
 * it, so the KPTI user/kernel ASID pair never mixes.)
 */
static bool a64_asid(csi_vcpu *v, uint64_t *out)
{
    uint64_t ttbr0, ttbr1 = 0, tcr = 0;
    if (!rd(v, 1, &ttbr0)) {
        return false;
    }
    rd(v, 3, &tcr);
    bool a1 = tcr & (1ull << 22), as16 = tcr & (1ull << 36);
    if (a1) {
        rd(v, 2, &ttbr1);
    }
    uint64_t asid = (a1 ? ttbr1 : ttbr0) >> 48;
    if (!as16) {
        asid &= 0xff;
    }
    *out = (ttbr0 & 0x0000fffffffffffeull) | (asid << 48);
    return true;
}

/*
 * 32-bit Arm: cpsr's mode field (bits 4:0) is 0x10 (usr) in user mode; every
 * other mode (svc, irq, abt, und, fiq, sys) is privileged.
 */
static bool a32_kernel(csi_vcpu *v)
{
    uint64_t cpsr = 0;
    return rd(v, 0, &cpsr) && (cpsr & 0x1f) != 0x10;
}

/*
 * 32-bit Arm: TTBR0 is the user half's page-table base (read through its
 * 64-bit view, which also holds the ASID with LPAE). Without LPAE (TTBCR.EAE
 * clear, Debian's armmp), the ASID is CONTEXTIDR's low byte, and Linux
 * writes CONTEXTIDR with the whole mm->context.id: the ASID and above it
 * the allocator's generation, which only grows; so (CONTEXTIDR, table base)
 * tells a new process on a reused page table from the dead one, like arm64's
 * ASID. With LPAE the ASID is TTBR0 bits 55:48 (Linux keeps TTBCR.A1 clear),
 * without the generation. Bits 6:0 of a short-descriptor TTBR0 and 4:0 of a
 * long one are attributes, not address.
 */
static bool a32_asid(csi_vcpu *v, uint64_t *out)
{
    uint64_t ttbr0, ttbcr = 0, ctx = 0;
    if (!rd(v, 1, &ttbr0)) {
        return false;
    }
    rd(v, 3, &ttbcr);
    if (ttbcr & (1u << 31)) {
        *out = ttbr0 & 0x00ffffffffffffe0ull;
        return true;
    }
    rd(v, 2, &ctx);
    *out = (ctx & 0xffffffffu) << 32 | (ttbr0 & 0xffffff80u);
    return true;
}

/*
 * ppc64: MSR.PR (bit 14) is set in problem (user) state. QEMU gives
 * registers in the guest's current byte order (MSR.LE, bit 0) and we read
 * them as little-endian: a value whose bit 0 is clear was given big-endian
 * (firmware, the kernel's first instructions), so it is swapped back (the
 * swapped value's bit 0 is the true bit 56, reserved, hence clear).
 */
static uint64_t ppc_msr(csi_vcpu *v)
{
    uint64_t msr = 0;
    rd(v, 0, &msr);
    return (msr & 1) ? msr : __builtin_bswap64(msr);
}

static bool ppc64_kernel(csi_vcpu *v)
{
    return !(ppc_msr(v) & (1u << 14));
}

/*
 * ppc64 with the radix MMU (POWER9 and later; Linux's default there): PIDR
 * holds the process's id while it runs in user mode (Linux writes the mm's
 * context id there at every switch), and selects its entry in the process
 * table, i.e. its page-table tree. Under the hash MMU PIDR stays 0 and no
 * register names the address space (the segment table is in the SLB); see
 * docs/system-mode.md.
 */
static bool ppc64_asid(csi_vcpu *v, uint64_t *out)
{
    return rd(v, 1, out);
}

static void drop_dead_frames(csi_vcpu *v, csi_stack *s);
static void ppc64_drop_dead_frames(csi_vcpu *v, csi_stack *s);

static const sys_arch sys_arches[] = {
    { "x86_64", { "cs", "cr3", "cr4", NULL }, x86_kernel, x86_asid, 16 * 1024, drop_dead_frames },
    { "aarch64", { "cpsr", "TTBR0_EL1", "TTBR1_EL1", "TCR_EL1" }, a64_kernel, a64_asid, 16 * 1024, NULL },
    /* qemu-system-i386: the CPL and CR3 as on x86_64 (no PCID in 32-bit
     * paging; with PAE, CR3 bits 5-11 are address bits and are kept). */
    { "i386", { "cs", "cr3", "cr4", NULL }, x86_kernel, x86_asid, 8 * 1024, drop_dead_frames },
    { "arm", { "cpsr", "TTBR0", "CONTEXTIDR_EL1", "TTBCR" }, a32_kernel, a32_asid, 8 * 1024, NULL },
    { "ppc64", { "msr", "pidr", NULL, NULL }, ppc64_kernel, ppc64_asid, 16 * 1024,
      ppc64_drop_dead_frames },
};

static bool kind_given;

int csi_system_setup(const char *target_name, bool stack_type_given)
{
    for (size_t i = 0; i < G_N_ELEMENTS(sys_arches); i++) {
        if (strcmp(sys_arches[i].name, target_name) == 0) {
            sys = &sys_arches[i];
        }
    }
    if (!sys && strncmp(target_name, "mips", 4) == 0) {
        /* docs/system-mode.md, "MIPS": neither the privilege level, nor
         * an address-space id, nor the stack pointer can be read. */
        fprintf(stderr, "callstack_instr: whole-system mode is not supported for '%s': QEMU 10.0 "
                "gives plugins no MIPS registers (no privilege level, address-space id or stack "
                "pointer to tell stacks apart)\n", target_name);
        return -1;
    }
    if (!sys) {
        fprintf(stderr, "callstack_instr: whole-system mode is not supported for '%s'; "
                "supported: x86_64, aarch64, i386, arm, ppc64\n", target_name);
        return -1;
    }
    kind_given = stack_type_given;
    csi_cfg.engine.sp_resync_own = true;
    csi_system_kregion_mask = ~(uint64_t)(KERNEL_STACK_REGION - 1);
    return 0;
}

/*
 * The stack type is settled once every plugin is loaded (the first vCPU's
 * init): threaded is the default when osi_linux is there, whatever the
 * -plugin order, as PANDA's default is threaded with -os; without it,
 * threaded is refused rather than silently replaced.
 */
static void settle_stack_type(void)
{
    const char *why = "";
    bool osi = csi_osi_bind(&why);
    if (!kind_given && osi) {
        csi_cfg.kind = STACK_THREADED;
    }
    if (csi_cfg.kind == STACK_THREADED && !osi) {
        fprintf(stderr, "callstack_instr: stack_type=threaded needs operating-system "
                "introspection (process and thread ids) in whole-system mode: %s; or use "
                "stack_type=asid (the default without it) or heuristic\n", why);
        exit(1);
    }
    if (csi_cfg.verbose) {
        fprintf(stderr, "callstack_instr: whole-system stack_type=%s%s\n",
                csi_cfg.kind == STACK_THREADED ? "threaded" :
                csi_cfg.kind == STACK_HEURISTIC ? "heuristic" : "asid",
                kind_given ? "" : osi ? " (default with osi_linux)" : " (default)");
    }
}

void csi_system_registers_found(void)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(handle); i++) {
        const char *n = sys->regs[i];
        if (n && !(handle[i] = csi_reg_handle(n))) {
            /* Register names are QEMU's; another QEMU version may differ. */
            fprintf(stderr, "callstack_instr: QEMU lists no register '%s' on %s; whole-system "
                    "stack ids cannot be computed\n", n, sys->name);
            exit(1);
        }
    }
    settle_stack_type();
}

/*
 * x86 calls store the return address at the callee's sp, and it stays there
 * while the frame lives. Page-table pages of dead processes are reused, and
 * x86 has nothing like an ASID generation to tell the new process from the
 * old (PCIDs are per-CPU slots): a new process whose page table sits where a
 * dead one's did gets the same asid, and with it the dead process's
 * leftover frames (it never returned from exit). So when a vCPU comes back
 * to a user stack, frames are checked from the top: one whose slot no
 * longer holds its return address (or is not even mapped) is dead and is
 * unwound; the first live frame ends the check. This costs one memory read
 * per return to user mode, not per call. A frame of another thread sharing
 * the stack stays: its slot is intact on that thread's stack.
 */
static void drop_dead_frames(csi_vcpu *v, csi_stack *s)
{
    csi_frame f;
    uint64_t pc = 0;
    unsigned word = csi_arch->word_bytes;
    bool read_pc = false;
    while (csi_engine_top(csi_eng, s, &f)) {
        uint64_t slot;
        if (csi_mem_read(v, f.sp, word, &slot) &&
            (slot == f.ret_addr || (f.ret_addr <= UINT32_MAX && (uint32_t)slot == f.ret_addr))) {
            return;   /* (the second case: a 32-bit process pushed 4 bytes) */
        }
        if (!read_pc) {
            csi_reg_read_pc(v, &pc);
            read_pc = true;
        }
        if (!csi_engine_unwind_top(csi_eng, s, v->index, &f, pc)) {
            return;   /* another vCPU changed the stack meanwhile */
        }
    }
}

/*
 * ppc64 (ELFv2): Linux hands out the smallest free context id (PIDR), so a
 * new process gets a dead one's id, hence its stack with its leftover
 * frames. A call leaves its return address in the link register, not in
 * memory; but a function that calls anything saves it first, in its
 * caller's frame at sp + 16 with sp as at the call (the ABI's LR save
 * doubleword), where it stays while the frame lives. Every frame but the
 * top one is such a caller's, so a frame below the top whose slot lost its
 * return address is dead, with all above it; the top frame may be a leaf's
 * (nothing saved), so its slot alone decides nothing: it goes only with the
 * frame below it. One or two memory reads per return to user mode.
 */
static bool lr_slot_holds(csi_vcpu *v, const csi_frame *f)
{
    uint64_t slot;
    return csi_mem_read(v, f->sp + 16, 8, &slot) && slot == f->ret_addr;
}

static void ppc64_drop_dead_frames(csi_vcpu *v, csi_stack *s)
{
    csi_frame f, below;
    uint64_t pc = 0;
    bool top = true;
    while (csi_engine_top(csi_eng, s, &f) && !lr_slot_holds(v, &f)) {
        if (top && (!csi_engine_frame_below_top(csi_eng, s, 1, &below) || lr_slot_holds(v, &below))) {
            return;   /* a leaf's frame over a live one, or a lone frame */
        }
        if (top) {
            csi_reg_read_pc(v, &pc);
            top = false;
        }
        if (!csi_engine_unwind_top(csi_eng, s, v->index, &f, pc)) {
            return;   /* another vCPU changed the stack meanwhile */
        }
    }
}

/*
 * stack_type=threaded, kernel mode. Kernel shadow stacks stay keyed by
 * their region, as with asid (so each follows one guest stack whatever the
 * kernel does), and are labelled with the thread whose kernel stack they
 * are: (processID=tgid, threadID=pid, isKernelMode=true). osi_linux reads
 * the current task when the vCPU enters another region (a context switch,
 * an interrupt stack), not when it comes back from user mode to the region
 * it left (the same task: tasks change only in kernel mode). The region is
 * the current task's when sp lies in its kernel stack; if not, it is
 * either a CPU's interrupt or exception stack, which belongs to no thread
 * and keeps its region id, or the next task's stack in the middle of a
 * context switch: the stack pointer has moved, the kernel's current-task
 * pointer not yet (Linux 6.1's __switch_to makes about eight calls before
 * it stores the new task). The stack is then re-checked at each event
 * until the two agree; a stack never labelled gives up after LABEL_TRIES
 * events, taken for a CPU's stack, and is never asked about again
 * (host_word). Idle tasks (pid 0, one
 * per CPU) keep region ids too: they would share one thread id.
 *
 * A stack labelled for a thread that has exited and whose stack memory a
 * new thread got: the dead thread's frames are unwound (their events under
 * its label) before the stack takes the new label.
 */
#define LABEL_TRIES 256u
#define LABEL_NO_THREAD (1ull << 63)

static void relabel(csi_vcpu *v, csi_stack *s, const csi_stack_id *label)
{
    if (s->label.kind == STACK_THREADED) {
        csi_frame f;
        uint64_t pc = 0;
        csi_reg_read_pc(v, &pc);
        while (csi_engine_top(csi_eng, s, &f) && csi_engine_unwind_top(csi_eng, s, v->index, &f, pc)) {
        }
    }
    csi_engine_set_label(csi_eng, s, label);
}

static void label_kernel_stack(csi_vcpu *v, csi_stack *s, uint64_t sp)
{
    csi_osi_thread t;
    if (v->osi_pending) {
        /* Still the task the stack did not belong to: nothing new (one
         * register and one memory read instead of the whole task). */
        uint64_t task;
        if (csi_osi_current_task(v->index, &task) && task == v->osi_task) {
            if (s->label.kind != STACK_THREADED && ++s->host_word >= LABEL_TRIES) {
                s->host_word = LABEL_NO_THREAD;
                v->osi_pending = false;
            }
            return;
        }
    }
    v->osi_pending = false;
    if (s->host_word & LABEL_NO_THREAD) {
        return;
    }
    if (!csi_osi_current(v->index, &t)) {
        /* No identity (osi_linux gave up on this kernel): user mode falls
         * back to asid stacks rather than keep a stale thread. */
        v->osi_known = false;
        return;
    }
    if (!t.fresh) {
        return;
    }
    /* Whatever the stack, this is the thread user mode will return to. */
    v->osi_known = true;
    v->osi_pid = t.pid;
    v->osi_tgid = t.tgid;
    if (sp - t.kstack < t.kstack_size) {
        s->host_word = 0;
        if (t.pid == 0) {
            s->host_word = LABEL_NO_THREAD;
            return;
        }
        csi_stack_id label = { .kind = STACK_THREADED, .kernel = true,
                               .first = (uint64_t)t.tgid, .second = (uint64_t)t.pid };
        if (!csi_stack_id_equal(&label, &s->label)) {
            relabel(v, s, &label);
        }
        return;
    }
    if (s->label.kind != STACK_THREADED && ++s->host_word >= LABEL_TRIES) {
        s->host_word = LABEL_NO_THREAD;
        return;
    }
    v->osi_pending = true;
    v->osi_task = t.task;
}

static csi_stack *switch_to(csi_vcpu *v, const csi_stack_id *id)
{
    /* Made current (and so never evicted) before its dead frames go. */
    csi_stack *s = csi_engine_bounded_switch(csi_eng, id, &v->stack);
    v->sys_id = *id;
    if (!id->kernel && sys->drop_dead) {
        sys->drop_dead(v, s);
    }
    return s;
}

bool csi_system_kernel_now(void)
{
    static __thread csi_vcpu scratch;   /* only its register buffer is used */
    if (!scratch.regbuf) {
        scratch.regbuf = g_byte_array_sized_new(16);
    }
    return sys->kernel(&scratch);
}

static csi_stack *choose(csi_vcpu *v, uint64_t sp)
{
    csi_stack_id id = { .kind = STACK_ASID };
    csi_stack *cur = v->stack;
    bool threads = csi_cfg.kind == STACK_THREADED;
    if (v->sys_priv >= 0 ? v->sys_priv : sys->kernel(v)) {
        id.kernel = true;
        id.second = sp & ~(uint64_t)(KERNEL_STACK_REGION - 1);
        if (threads) {
            bool same = cur && csi_stack_id_equal(&id, &v->sys_id);
            if (same && !v->osi_pending) {
                return cur;
            }
            csi_stack *s = cur;
            if (!same) {
                s = switch_to(v, &id);
                v->osi_pending = false;   /* (it was about the region left) */
                if (id.second == v->sys_kregion) {
                    return s;   /* back from user mode to the region it left */
                }
            }
            v->sys_kregion = id.second;
            label_kernel_stack(v, s, sp);
            return s;
        }
    } else if (threads && v->osi_known) {
        /* User mode: the thread last seen in kernel mode (with page-table
         * isolation the kernel's memory is not even mapped now). The
         * address space is the instance: after an execve the thread's new
         * program starts on a new stack. */
        id.kind = STACK_THREADED;
        id.first = (uint64_t)v->osi_tgid;
        id.second = (uint64_t)v->osi_pid;
        sys->asid(v, &id.instance);
    } else {
        sys->asid(v, &id.first);
        if (csi_cfg.kind == STACK_HEURISTIC) {
            /* PANDA's heuristic: (asid, sp) within the address space. */
            csi_stack_id space = { .kind = STACK_HEURISTIC, .first = id.first };
            v->sys_id = space;
            return csi_engine_heuristic_switch(csi_eng, &space, sp, &v->stack);
        }
    }
    /* The id changes at privilege changes, context switches and interrupt
     * stack switches, not at most calls: look the table up only then. */
    if (cur && csi_stack_id_equal(&id, &v->sys_id)) {
        return cur;
    }
    return switch_to(v, &id);
}

csi_stack *csi_system_stack(csi_vcpu *v, uint64_t sp)
{
    /* (the fast lane takes it from here: csi_system_hot_stack) */
    return v->hot_stack = choose(v, sp);
}

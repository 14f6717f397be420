/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reading guest memory in linux-user without the plugin API.
 *
 * qemu_plugin_read_memory_vaddr() takes QEMU's mmap lock and searches its
 * page-flags tree on every call: 35-40 ns, for the x86 returns whose slot is
 * not the top frame's and for calls through memory (`call *8(%rax)`, 5% of
 * sqlite3's events). In linux-user, guest memory is host memory at
 * guest_base + address, so a load would do, but only where the page is
 * mapped: a fault inside a plugin kills QEMU.
 *
 * So a page is read directly only after the API read it successfully, and
 * only until the next system call of any thread (mmap, munmap, mprotect,
 * mremap, brk and shmdt are the only ways a guest changes its mappings, and
 * all are system calls; bumping a generation at every call keeps this
 * independent of per-architecture numbers). A small direct-mapped cache per
 * vCPU remembers the pages. The one case left is a guest thread unmapping a
 * page while another is about to read it: the guest's own access would
 * fault there too, but QEMU dies of the fault (outside translated code it
 * is a host bug to QEMU) instead of delivering SIGSEGV to the guest.
 */
#ifndef CSI_QEMU_GUESTMEM_H
#define CSI_QEMU_GUESTMEM_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define CSI_GUESTMEM_SLOTS 16
#define CSI_GUESTMEM_PAGE_BITS 12   /* host pages; guest pages are no smaller here */

typedef struct csi_guestmem_slot {
    uint64_t page;   /* guest address >> CSI_GUESTMEM_PAGE_BITS, + 1 (0: empty) */
    uint64_t gen;    /* csi_guestmem_gen when it was read through the API */
} csi_guestmem_slot;

struct csi_guestmem {
    csi_guestmem_slot slot[CSI_GUESTMEM_SLOTS];
};
typedef struct csi_guestmem csi_guestmem;

/* (guestmem.c) */
extern uint64_t csi_guestmem_gen;      /* bumped before every system call */
extern bool csi_guestmem_enabled;      /* linux-user, guest_base known, fast_regs=on */
extern uint64_t csi_guestmem_base;     /* QEMU's guest_base */

/* In linux-user, guest memory is host memory at guest_base + address;
 * translate.c learns guest_base from the first block translated. direct:
 * pages may be read there directly from now on (fast_regs=on). */
void csi_guestmem_set_base(uint64_t base, bool direct);
/* guest_base; 0 until known (and in whole-system mode). */
uint64_t csi_guestmem_guest_base(void);
/* Before any system call: every page must be read through the API again. */
void csi_guestmem_forget_all(void);

static inline uint64_t csi_guestmem_now(void)
{
    return __atomic_load_n(&csi_guestmem_gen, __ATOMIC_ACQUIRE);
}

static inline csi_guestmem_slot *csi_guestmem_slot_of(csi_guestmem *m, uint64_t addr)
{
    return &m->slot[(addr >> CSI_GUESTMEM_PAGE_BITS) % CSI_GUESTMEM_SLOTS];
}

/* `size` bytes at guest address addr, in host order, if its page is known
 * readable; false otherwise (the caller then asks the API). */
static inline bool csi_guestmem_read(const csi_guestmem *m, uint64_t addr, unsigned size, void *out)
{
    uint64_t page = (addr >> CSI_GUESTMEM_PAGE_BITS) + 1;
    if (!m || ((addr + size - 1) >> CSI_GUESTMEM_PAGE_BITS) + 1 != page) {
        return false;
    }
    const csi_guestmem_slot *s = &m->slot[(page - 1) % CSI_GUESTMEM_SLOTS];
    if (s->page != page || s->gen != csi_guestmem_now()) {
        return false;
    }
    memcpy(out, (const void *)(uintptr_t)(csi_guestmem_base + addr), size);
    return true;
}

/* The API read [addr, addr+size) successfully; gen is csi_guestmem_now()
 * from before that read. */
static inline void csi_guestmem_learn(csi_guestmem *m, uint64_t addr, unsigned size, uint64_t gen)
{
    uint64_t page = (addr >> CSI_GUESTMEM_PAGE_BITS) + 1;
    if (m && ((addr + size - 1) >> CSI_GUESTMEM_PAGE_BITS) + 1 == page) {
        csi_guestmem_slot *s = &m->slot[(page - 1) % CSI_GUESTMEM_SLOTS];
        s->page = page;
        s->gen = gen;
    }
}

#endif

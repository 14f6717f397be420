/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The direct reads of the QEMU glue, without QEMU: learning a register's
 * offset in the CPU state from snapshots (src/qemu/fastreg.c), fed with
 * fake CPU states (byte buffers) and the values an API read would give;
 * and the guest-memory page cache (src/qemu/guestmem.h) over a host buffer
 * standing for guest memory at guest_base.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"
#include "qemu/fastreg.h"
#include "qemu/guestmem.h"

#define SCAN CSI_FASTREG_SCAN_BYTES

/* A fake CPU state: noise that never repeats a register's values, so that
 * only the planted slots can agree with them. */
static void fill_noise(uint8_t *state, uint32_t seed)
{
    for (unsigned i = 0; i < SCAN; i++) {
        seed = seed * 1103515245u + 12345u;
        state[i] = (uint8_t)(seed >> 16) | 0x80;   /* no byte of a small value */
    }
}

static void put(uint8_t *state, unsigned off, uint64_t value, unsigned size)
{
    if (size == 8) {
        memcpy(state + off, &value, 8);
    } else {
        uint32_t x = (uint32_t)value;
        memcpy(state + off, &x, 4);
    }
}

/* Feeds reads of value i * step + 1 (i = 0..n-1), planted at each offset of
 * `offs` (0-terminated by n_offs) in a fresh noisy state; returns the last
 * result and, in *first_found, the read (1-based) that first returned
 * FOUND (0: none). */
static csi_learn_result feed(csi_fastreg_learner *l, const unsigned *offs, unsigned n_offs,
                            unsigned size, unsigned n, uint64_t step, unsigned *first_found)
{
    uint8_t state[SCAN];
    csi_learn_result r = { .outcome = CSI_LEARN_MORE };
    *first_found = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = (uint64_t)i * step + 1;
        fill_noise(state, i + 7);
        for (unsigned k = 0; k < n_offs; k++) {
            put(state, offs[k], v, size);
        }
        r = csi_fastreg_learn_step(l, state, v, size);
        if (r.outcome != CSI_LEARN_MORE) {
            if (r.outcome == CSI_LEARN_FOUND && !*first_found) {
                *first_found = i + 1;
            }
            break;
        }
    }
    return r;
}

static void t_learn_finds_offset(void)
{
    csi_fastreg_learner l = { 0 };
    unsigned off = 0x20, found;
    csi_learn_result r = feed(&l, &off, 1, 8, 1000, 0x1010, &found);
    CHECK(r.outcome == CSI_LEARN_FOUND, "outcome %d, why %s", r.outcome, r.why ? r.why : "");
    CHECK(r.offset == 0x20, "offset 0x%x", (unsigned)r.offset);
    /* not before the agreed number of reads */
    CHECK(found == CSI_FASTREG_MIN_AGREE, "found at read %u", found);
done:;
}

static void t_learn_four_byte_register(void)
{
    csi_fastreg_learner l = { 0 };
    unsigned off = 0x104, found;
    csi_learn_result r = feed(&l, &off, 1, 4, 1000, 3, &found);
    CHECK(r.outcome == CSI_LEARN_FOUND && r.offset == 0x104, "outcome %d offset 0x%x",
          r.outcome, (unsigned)r.offset);
done:;
}

/* A copy of the register elsewhere in the state: two offsets agree on
 * every read, so neither is chosen. */
static void t_learn_ambiguous_gives_up(void)
{
    csi_fastreg_learner l = { 0 };
    unsigned offs[2] = { 0x20, 0x140 }, found;
    csi_learn_result r = feed(&l, offs, 2, 8, CSI_FASTREG_MAX_LEARN + 10, 0x1010, &found);
    CHECK(r.outcome == CSI_LEARN_FAILED, "outcome %d", r.outcome);
    CHECK(r.reads == CSI_FASTREG_MAX_LEARN, "gave up after %u reads", r.reads);
    CHECK(strstr(r.why, "several offsets"), "why: %s", r.why);
done:;
}

/* A register that keeps one value could sit next to a copy of it: never
 * trusted on one value, however often read. */
static void t_learn_constant_value_gives_up(void)
{
    csi_fastreg_learner l = { 0 };
    unsigned off = 0x20, found;
    csi_learn_result r = feed(&l, &off, 1, 8, CSI_FASTREG_MAX_LEARN + 10, 0, &found);
    CHECK(r.outcome == CSI_LEARN_FAILED && !found, "outcome %d", r.outcome);
    CHECK(strstr(r.why, "too few different values"), "why: %s", r.why);
done:;
}

static void t_learn_value_absent(void)
{
    csi_fastreg_learner l = { 0 };
    uint8_t state[SCAN];
    fill_noise(state, 1);
    csi_learn_result r = csi_fastreg_learn_step(&l, state, 0x1234, 8);
    CHECK(r.outcome == CSI_LEARN_FAILED && strstr(r.why, "no offset"), "outcome %d", r.outcome);
done:;
}

/* The register is found at one place, then at another only: no offset
 * held every value. */
static void t_learn_value_moves(void)
{
    csi_fastreg_learner l = { 0 };
    uint8_t state[SCAN];
    csi_learn_result r = { .outcome = CSI_LEARN_MORE };
    for (unsigned i = 0; i < 20 && r.outcome == CSI_LEARN_MORE; i++) {
        fill_noise(state, i + 3);
        put(state, i < 10 ? 0x20 : 0x28, i + 1, 8);
        r = csi_fastreg_learn_step(&l, state, i + 1, 8);
    }
    CHECK(r.outcome == CSI_LEARN_FAILED && r.reads == 11, "outcome %d after %u reads",
          r.outcome, r.reads);
done:;
}

static void t_learn_bad_reads(void)
{
    uint8_t state[SCAN];
    fill_noise(state, 5);
    put(state, 0x10, 9, 8);
    csi_fastreg_learner l = { 0 };
    csi_learn_result r = csi_fastreg_learn_step(&l, state, 9, 2);
    CHECK(r.outcome == CSI_LEARN_FAILED && strstr(r.why, "4 or 8"), "2-byte: %d", r.outcome);
    memset(&l, 0, sizeof l);
    r = csi_fastreg_learn_step(&l, state, 9, 8);
    CHECK(r.outcome == CSI_LEARN_MORE && r.candidates == 1, "first read: %d, %u candidates",
          r.outcome, r.candidates);
    r = csi_fastreg_learn_step(&l, state, 9, 4);
    CHECK(r.outcome == CSI_LEARN_FAILED && strstr(r.why, "width changed"), "width: %d", r.outcome);
    memset(&l, 0, sizeof l);
    r = csi_fastreg_learn_step(&l, NULL, 9, 8);
    CHECK(r.outcome == CSI_LEARN_FAILED && strstr(r.why, "could not be copied"), "no copy: %d",
          r.outcome);
done:;
}

/* The stateful side: a real pointer to a fake state, copied with
 * process_vm_readv; once learnt, reads go through the pointer. */
static void t_learn_through_pointer(void)
{
    uint8_t *state = g_malloc(SCAN);
    const struct qemu_plugin_register *h = (const struct qemu_plugin_register *)(uintptr_t)17;
    uint64_t out = 0;
    csi_learn_result r = { .outcome = CSI_LEARN_MORE };
    CHECK(csi_fastreg_check_env(state), "a heap buffer is readable");
    CHECK(!csi_fastreg_check_env(NULL), "NULL is not");
    CHECK(!csi_fastreg_read(h, state, &out), "not fast before learning");
    for (unsigned i = 0; i < 200 && r.outcome == CSI_LEARN_MORE; i++) {
        fill_noise(state, i + 11);
        put(state, 0x38, 0x7ffd0000u + 16 * i, 8);
        r = csi_fastreg_learn(h, state, 0x7ffd0000u + 16 * i, 8);
    }
    CHECK(r.outcome == CSI_LEARN_FOUND && r.offset == 0x38, "outcome %d offset 0x%x",
          r.outcome, (unsigned)r.offset);
    put(state, 0x38, 0xabcdef, 8);
    CHECK(csi_fastreg_read(h, state, &out) && out == 0xabcdef, "direct read gave " PX, out);
    CHECK(!csi_fastreg_read(h, NULL, &out), "no pointer, no direct read");
    /* learning has stopped: further reads report nothing */
    r = csi_fastreg_learn(h, state, 1, 8);
    CHECK(r.outcome == CSI_LEARN_MORE, "after FOUND: %d", r.outcome);
done:
    g_free(state);
}

/* A CPU-state pointer is trusted only when a register read through it
 * equals the API's read of the same register; another vCPU's state (or
 * anything else) is rejected. */
static void t_verify_env(void)
{
    uint8_t *mine = g_malloc(SCAN), *other = g_malloc(SCAN);
    const struct qemu_plugin_register *h = (const struct qemu_plugin_register *)(uintptr_t)23;
    const struct qemu_plugin_register *unknown = (const struct qemu_plugin_register *)(uintptr_t)24;
    uint64_t direct = 0;
    csi_learn_result r = { .outcome = CSI_LEARN_MORE };
    for (unsigned i = 0; i < 200 && r.outcome == CSI_LEARN_MORE; i++) {
        fill_noise(mine, i + 13);
        put(mine, 0x48, 0x5000 + 8 * i, 8);
        r = csi_fastreg_learn(h, mine, 0x5000 + 8 * i, 8);
    }
    CHECK(r.outcome == CSI_LEARN_FOUND, "not learnt: %d", r.outcome);
    fill_noise(other, 99);
    put(mine, 0x48, 0x7000, 8);
    put(other, 0x48, 0x9000, 8);
    CHECK(csi_fastreg_verify_env(h, mine, 0x7000, 8, &direct) == CSI_ENV_TRUSTED && direct == 0x7000,
          "own state: direct " PX, direct);
    CHECK(csi_fastreg_verify_env(h, other, 0x7000, 8, &direct) == CSI_ENV_REJECTED && direct == 0x9000,
          "another state: direct " PX, direct);
    CHECK(csi_fastreg_verify_env(h, mine, 0, 8, &direct) == CSI_ENV_UNDECIDED, "a zero decides nothing");
    CHECK(csi_fastreg_verify_env(h, mine, 0x7000, 4, &direct) == CSI_ENV_UNDECIDED,
          "another width decides nothing");
    CHECK(csi_fastreg_verify_env(unknown, mine, 0x7000, 8, &direct) == CSI_ENV_UNDECIDED,
          "nor does a register whose offset is not known");
done:
    g_free(mine);
    g_free(other);
}

static void t_check_env_unmapped(void)
{
    long page = sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap");
    CHECK(!csi_fastreg_check_env(p), "an inaccessible page is not a readable state");
    /* readable, but the scan would run into the inaccessible page */
    void *two = mmap(NULL, 2 * (size_t)page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(two != MAP_FAILED, "mmap");
    mprotect((char *)two + page, (size_t)page, PROT_NONE);
    CHECK(!csi_fastreg_check_env((char *)two + page - 100), "a state cut short is not readable");
    CHECK(csi_fastreg_check_env(two), "a readable page is");
    munmap(two, 2 * (size_t)page);
done:
    if (p != MAP_FAILED) {
        munmap(p, (size_t)page);
    }
}

/* Guest memory: a host buffer of 32 pages standing for guest addresses
 * from GUEST on. */
#define GUEST 0x400000ull
#define PAGE (1ull << CSI_GUESTMEM_PAGE_BITS)
#define PAGES 32
static uint8_t *host;

static void setup_guest(void)
{
    if (!host) {
        host = aligned_alloc(PAGE, PAGES * PAGE);
        for (unsigned i = 0; i < PAGES * PAGE; i++) {
            host[i] = (uint8_t)(i * 7 + i / PAGE);
        }
        csi_guestmem_set_base((uint64_t)(uintptr_t)host - GUEST, true);
    }
}

static bool read_u32(const csi_guestmem *m, uint64_t addr, uint32_t *out)
{
    return csi_guestmem_read(m, addr, 4, out);
}

static void t_guestmem_learn_then_read(void)
{
    setup_guest();
    csi_guestmem m = { 0 };
    uint32_t x = 0, want;
    uint64_t a = GUEST + 3 * PAGE + 0x40;
    CHECK(!read_u32(&m, a, &x), "nothing known yet");
    csi_guestmem_learn(&m, a, 4, csi_guestmem_now());
    CHECK(read_u32(&m, a, &x), "the page is known now");
    memcpy(&want, host + 3 * PAGE + 0x40, 4);
    CHECK(x == want, "read 0x%x, memory holds 0x%x", x, want);
    /* anywhere on the same page */
    uint64_t y = 0, want8;
    CHECK(csi_guestmem_read(&m, GUEST + 3 * PAGE + PAGE - 8, 8, &y), "same page, other place");
    memcpy(&want8, host + 4 * PAGE - 8, 8);
    CHECK(y == want8, "read " PX ", memory holds " PX, y, want8);
    CHECK(!read_u32(&m, a + PAGE, &x), "the next page is not known");
    CHECK(!csi_guestmem_read(NULL, a, 4, &x), "no cache, no read");
done:;
}

/* Any system call may change the mappings: every page is forgotten. */
static void t_guestmem_forgets_at_syscall(void)
{
    setup_guest();
    csi_guestmem m = { 0 };
    uint32_t x;
    uint64_t a = GUEST + 5 * PAGE;
    csi_guestmem_learn(&m, a, 4, csi_guestmem_now());
    CHECK(read_u32(&m, a, &x), "known");
    csi_guestmem_forget_all();
    CHECK(!read_u32(&m, a, &x), "forgotten after a system call");
    /* an API read that started before the system call teaches nothing */
    uint64_t before = csi_guestmem_now();
    csi_guestmem_forget_all();
    csi_guestmem_learn(&m, a, 4, before);
    CHECK(!read_u32(&m, a, &x), "a stale generation is not trusted");
    csi_guestmem_learn(&m, a, 4, csi_guestmem_now());
    CHECK(read_u32(&m, a, &x), "known again");
done:;
}

static void t_guestmem_page_crossing(void)
{
    setup_guest();
    csi_guestmem m = { 0 };
    uint64_t x;
    uint64_t a = GUEST + 7 * PAGE - 4;   /* 8 bytes over two pages */
    csi_guestmem_learn(&m, GUEST + 6 * PAGE, 4, csi_guestmem_now());
    csi_guestmem_learn(&m, GUEST + 7 * PAGE, 4, csi_guestmem_now());
    CHECK(!csi_guestmem_read(&m, a, 8, &x), "a read across pages is never direct");
    csi_guestmem_learn(&m, a, 8, csi_guestmem_now());
    CHECK(!csi_guestmem_read(&m, a, 8, &x), "nor learnt");
done:;
}

/* Direct-mapped: a page evicts the one CSI_GUESTMEM_SLOTS pages away. */
static void t_guestmem_slot_eviction(void)
{
    setup_guest();
    csi_guestmem m = { 0 };
    uint32_t x;
    uint64_t a = GUEST + 1 * PAGE, b = a + CSI_GUESTMEM_SLOTS * PAGE, c = a + PAGE;
    csi_guestmem_learn(&m, a, 4, csi_guestmem_now());
    csi_guestmem_learn(&m, c, 4, csi_guestmem_now());
    csi_guestmem_learn(&m, b, 4, csi_guestmem_now());
    CHECK(csi_guestmem_slot_of(&m, a) == csi_guestmem_slot_of(&m, b), "same slot");
    CHECK(!read_u32(&m, a, &x), "evicted");
    CHECK(read_u32(&m, b, &x) && read_u32(&m, c, &x), "the others stay");
done:;
}

static const test_case tests[] = {
    { "learn_finds_offset", t_learn_finds_offset },
    { "learn_four_byte_register", t_learn_four_byte_register },
    { "learn_ambiguous_gives_up", t_learn_ambiguous_gives_up },
    { "learn_constant_value_gives_up", t_learn_constant_value_gives_up },
    { "learn_value_absent", t_learn_value_absent },
    { "learn_value_moves", t_learn_value_moves },
    { "learn_bad_reads", t_learn_bad_reads },
    { "learn_through_pointer", t_learn_through_pointer },
    { "verify_env", t_verify_env },
    { "check_env_unmapped", t_check_env_unmapped },
    { "guestmem_learn_then_read", t_guestmem_learn_then_read },
    { "guestmem_forgets_at_syscall", t_guestmem_forgets_at_syscall },
    { "guestmem_page_crossing", t_guestmem_page_crossing },
    { "guestmem_slot_eviction", t_guestmem_slot_eviction },
};

int main(int argc, char **argv)
{
    int rc = run_cases(tests, G_N_ELEMENTS(tests), argc, argv, NULL);
    free(host);
    return rc;
}

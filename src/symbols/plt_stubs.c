/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Linker stubs by their instructions: see plt_stubs.h. The sequences are
 * the ones GNU ld writes (binutils' elf*-<arch>.c PLT templates), decoded
 * field by field from the architectures' instruction encodings:
 *
 * aarch64 .plt   [bti c] adrp x16, P; ldr x17, [x16, #o]; add x16, x16, #o;
 *                [autia1716|autib1716] br x17                slot = P + o
 * arm .plt       [bx pc; b.n|nop (Thumb entry)] add ip, pc, #a;
 *                add ip, ip, #b (one or more); ldr pc, [ip, #c]!
 *                                             slot = (add's address) + 8 + a + b + c
 * riscv .plt     auipc t3, h; l[wd] t3, l(t3); jalr t1, t3   slot = stub + h + l
 * ppc64 .text    [std r2, 24(r1)] addis r12, r2, h; ld r12, l(r12)   (or
 *                ld r12, l(r2)); mtctr r12; bctr          slot = TOC + h + l
 * ppc .text      lis r11, h; lwz r11, l(r11)                 slot = h + l
 *                addis r11, r30, h; lwz r11, l(r11)          slot = GOT + h + l
 *                lwz r11, l(r30)                            slot = GOT + l
 *                then mtctr r11; bctr
 * mips .plt      lui t7, h; l[wd] t9, l(t7); jr t9           slot = h + l
 *
 * (h: the high half shifted into place; l, o: sign- or zero-extended as
 * the instruction does.) MIPS's lazy-binding stubs (.MIPS.stubs) hold no
 * slot address: elf_symbols.c names them from .dynsym instead.
 */
#include <elf.h>
#include <string.h>
#include <glib.h>
#include "plt_stubs.h"

static uint32_t word(const csi_stub_arch *a, const uint8_t *p)
{
    return a->big_endian ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
                         : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static int64_t sext(uint64_t v, unsigned bits)
{
    uint64_t m = 1ull << (bits - 1);
    v &= (1ull << bits) - 1;
    return (int64_t)((v ^ m) - m);
}

/* Up to 6 instruction words from code (fewer if len is short). */
static size_t words(const csi_stub_arch *a, const uint8_t *code, size_t len, uint32_t w[6])
{
    size_t n = 0;
    for (; n < 6 && (n + 1) * 4 <= len; n++) {
        w[n] = word(a, code + n * 4);
    }
    return n;
}

#define AARCH64_BTI_C      0xd503245fu
#define AARCH64_AUTIA1716  0xd503219fu
#define AARCH64_AUTIB1716  0xd50321dfu
#define AARCH64_BR_X17     0xd61f0220u

static size_t aarch64_stub(const uint32_t *w, size_t n, uint64_t addr, uint64_t *slot)
{
    size_t i = n > 0 && w[0] == AARCH64_BTI_C ? 1 : 0;
    if (n < i + 4 || (w[i] & 0x9f00001fu) != 0x90000010u ||       /* adrp x16 */
        (w[i + 1] & 0xffc003ffu) != 0xf9400211u ||                  /* ldr x17, [x16, #o] */
        (w[i + 2] & 0xffc003ffu) != 0x91000210u) {                  /* add x16, x16, #o */
        return 0;
    }
    size_t br = i + 3;
    if (br < n && (w[br] == AARCH64_AUTIA1716 || w[br] == AARCH64_AUTIB1716)) {
        br++;
    }
    if (br >= n || w[br] != AARCH64_BR_X17) {
        return 0;
    }
    uint64_t imm = (uint64_t)((w[i] >> 5) & 0x7ffff) << 2 | ((w[i] >> 29) & 3);
    uint64_t page = ((addr + i * 4) & ~0xfffull) + (uint64_t)(sext(imm, 21) * 4096);
    *slot = page + (uint64_t)((w[i + 1] >> 10) & 0xfff) * 8;
    return (br + 1) * 4;
}

/* An ARM data-processing immediate: 8 bits rotated right by twice 4 bits. */
static uint32_t arm_imm(uint32_t w)
{
    uint32_t v = w & 0xff, r = ((w >> 8) & 15) * 2;
    return r ? (v >> r) | (v << (32 - r)) : v;
}

static size_t arm_stub(const csi_stub_arch *a, const uint32_t *w, size_t n, uint64_t addr,
                       uint64_t *slot)
{
    /* Thumb callers' entry: bx pc; b.n / nop, then the ARM stub */
    size_t t = n > 0 && !a->big_endian && (w[0] & 0xffff) == 0x4778 &&
               ((w[0] >> 16) == 0xe7fd || (w[0] >> 16) == 0x46c0) ? 1 : 0;
    w += t;
    n -= t;
    addr += t * 4;
    if (n < 3 || (w[0] & 0xfffff000u) != 0xe28fc000u) {             /* add ip, pc, #a */
        return 0;
    }
    uint32_t sum = (uint32_t)addr + 8 + arm_imm(w[0]);
    size_t i = 1;
    for (; i < n && (w[i] & 0xfffff000u) == 0xe28cc000u; i++) {      /* add ip, ip, #b */
        sum += arm_imm(w[i]);
    }
    if (i == 1 || i >= n || (w[i] & 0xfffff000u) != 0xe5bcf000u) {  /* ldr pc, [ip, #c]! */
        return 0;
    }
    *slot = (uint32_t)(sum + (w[i] & 0xfff));
    return (t + i + 1) * 4;
}

#define RISCV_T3           28u
#define RISCV_JALR_T1_T3   0x000e0367u
#define RISCV_NOP          0x00000013u

static size_t riscv_stub(const csi_stub_arch *a, const uint32_t *w, size_t n, uint64_t addr,
                         uint64_t *slot)
{
    uint32_t load = (RISCV_T3 << 15) | ((a->is64 ? 3u : 2u) << 12) | (RISCV_T3 << 7) | 0x03;
    if (n < 3 || (w[0] & 0xfff) != ((RISCV_T3 << 7) | 0x17) ||      /* auipc t3, h */
        (w[1] & 0xfffff) != load || w[2] != RISCV_JALR_T1_T3) {      /* l[wd] t3, l(t3) */
        return 0;
    }
    int64_t hi = sext(w[0] & 0xfffff000u, 32), lo = sext(w[1] >> 20, 12);
    *slot = addr + (uint64_t)hi + (uint64_t)lo;
    if (!a->is64) {
        *slot &= UINT32_MAX;
    }
    return n > 3 && w[3] == RISCV_NOP ? 16 : 12;
}

#define PPC_MTCTR_R12      0x7d8903a6u
#define PPC_MTCTR_R11      0x7d6903a6u
#define PPC_BCTR           0x4e800420u
#define PPC64_STD_R2_24_R1 0xf8410018u

static size_t ppc64_stub(const csi_stub_arch *a, const uint32_t *w, size_t n, uint64_t *slot)
{
    size_t i = n > 0 && w[0] == PPC64_STD_R2_24_R1 ? 1 : 0;
    int64_t off;
    if (i + 1 < n && (w[i] & 0xffff0000u) == 0x3d820000u &&         /* addis r12, r2, h */
        (w[i + 1] & 0xffff0003u) == 0xe98c0000u) {                   /* ld r12, l(r12) */
        off = sext(w[i], 16) * 65536 + sext(w[i + 1] & 0xfffc, 16);
        i += 2;
    } else if (i < n && (w[i] & 0xffff0003u) == 0xe9820000u) {      /* ld r12, l(r2) */
        off = sext(w[i] & 0xfffc, 16);
        i += 1;
    } else {
        return 0;
    }
    if (!a->base || i + 1 >= n || w[i] != PPC_MTCTR_R12 || w[i + 1] != PPC_BCTR) {
        return 0;
    }
    *slot = a->base + (uint64_t)off;
    return (i + 2) * 4;
}

static size_t ppc_stub(const csi_stub_arch *a, const uint32_t *w, size_t n, uint64_t *slot)
{
    uint32_t at;
    size_t i;
    if (n >= 2 && (w[0] & 0xffff0000u) == 0x3d600000u &&            /* lis r11, h */
        (w[1] & 0xffff0000u) == 0x816b0000u) {                       /* lwz r11, l(r11) */
        at = (uint32_t)(sext(w[0], 16) * 65536 + sext(w[1], 16));
        i = 2;
    } else if (a->base && n >= 2 && (w[0] & 0xffff0000u) == 0x3d7e0000u &&   /* addis r11, r30, h */
               (w[1] & 0xffff0000u) == 0x816b0000u) {
        at = (uint32_t)(a->base + (uint64_t)(sext(w[0], 16) * 65536 + sext(w[1], 16)));
        i = 2;
    } else if (a->base && n >= 1 && (w[0] & 0xffff0000u) == 0x817e0000u) {    /* lwz r11, l(r30) */
        at = (uint32_t)(a->base + (uint64_t)sext(w[0], 16));
        i = 1;
    } else {
        return 0;
    }
    if (i + 1 >= n || w[i] != PPC_MTCTR_R11 || w[i + 1] != PPC_BCTR) {
        return 0;
    }
    *slot = at;
    return (i + 2) * 4;
}

#define MIPS_JR_T9         0x03200008u

static size_t mips_stub(const csi_stub_arch *a, const uint32_t *w, size_t n, uint64_t *slot)
{
    uint32_t load = a->is64 ? 0xddf90000u : 0x8df90000u;            /* ld / lw t9, l(t7) */
    if (n < 3 || (w[0] & 0xffff0000u) != 0x3c0f0000u ||              /* lui t7, h */
        (w[1] & 0xffff0000u) != load || w[2] != MIPS_JR_T9) {
        return 0;
    }
    *slot = (uint64_t)(sext(w[0], 16) * 65536 + sext(w[1], 16));
    if (!a->is64) {
        *slot &= UINT32_MAX;
    }
    return 16;   /* the jr's delay slot belongs to the stub */
}

bool csi_stub_in_text(const csi_stub_arch *a)
{
    return a->machine == EM_PPC || a->machine == EM_PPC64;
}

size_t csi_stub_decode(const csi_stub_arch *a, const uint8_t *code, size_t len, uint64_t addr,
                      uint64_t *slot)
{
    uint32_t w[6];
    size_t n = words(a, code, len, w);
    switch (a->machine) {
    case EM_AARCH64:
        return aarch64_stub(w, n, addr, slot);
    case EM_ARM:
        return arm_stub(a, w, n, addr, slot);
    case EM_RISCV:
        return riscv_stub(a, w, n, addr, slot);
    case EM_PPC64:
        return ppc64_stub(a, w, n, slot);
    case EM_PPC:
        return ppc_stub(a, w, n, slot);
    case EM_MIPS:
        return mips_stub(a, w, n, slot);
    default:
        return 0;
    }
}

const char *csi_stub_ld_symbol(const char *name, size_t *len)
{
    static const char *const kinds[] = { ".plt_call.", ".plt_pic32.", ".got2.plt_pic32." };
    for (int i = 0; i < 8; i++) {
        if (!g_ascii_isxdigit(name[i])) {
            return NULL;
        }
    }
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t n = strlen(kinds[k]);
        if (strncmp(name + 8, kinds[k], n) == 0 && name[8 + n] && name[8 + n] != '@') {
            const char *target = name + 8 + n;
            *len = strcspn(target, "@");
            return target;
        }
    }
    return NULL;
}

unsigned csi_ppc64_local_entry(unsigned char st_other)
{
    /* ELFv2 ABI, "Symbol Values": st_other bits 5-7 hold v; the local entry
     * is (1 << v) >> 2 instructions after the global one (v = 0, 1: the
     * same address). */
    unsigned v = (st_other >> 5) & 7;
    return ((1u << v) >> 2) * 4;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The instruction classifiers on instructions whose meaning the
 * architecture manuals fix, for the cases whole-system guests add:
 *  - 32-bit Arm exception returns (ARM ARM: `MOVS PC, LR` and `LDM ... {..,
 *    PC}^` copy SPSR to CPSR, i.e. leave an exception, like x86's iret):
 *    no return, while their plain forms stay returns;
 *  - ppc64 whole-system code in either byte order, chosen by MSR.LE (bit 0
 *    of the mode register at translation): `blr` is 0x4e800020 and `bl .+8`
 *    0x48000009 (Power ISA I-form/XL-form), stored in that order.
 * The encodings were checked against GNU objdump for each architecture.
 */
#include "check.h"
#include "arch/arch.h"

static csi_insn_info classify(const char *arch, const uint8_t *b, size_t n, uint64_t mode)
{
    const csi_arch_desc *a = csi_arch_find(arch);
    csi_insn_info info;
    memset(&info, 0, sizeof info);
    csi_code c = { .bytes = b, .len = n, .addr = 0x1000, .at = 0, .block_start = true, .mode = mode };
    if (a) {
        a->classify(a, &c, &info);
    }
    return info;
}

/* ARM-state (cpsr.T clear) encodings, little-endian words. */
static void arm_exception_returns_are_not_returns(void)
{
    static const struct { uint32_t w; csi_insn_class want; const char *text; } cases[] = {
        { 0xe1a0f00e, CSI_INSN_RET, "mov pc, lr" },
        { 0xe1b0f00e, CSI_INSN_OTHER, "movs pc, lr" },
        { 0xe8bd8010, CSI_INSN_RET, "pop {r4, pc}" },
        { 0xe8fd8000, CSI_INSN_OTHER, "ldm sp!, {pc}^" },
        { 0xe8ddffff, CSI_INSN_OTHER, "ldm sp, {r0-pc}^" },
        { 0xe12fff1e, CSI_INSN_RET, "bx lr" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        uint8_t b[4] = { cases[i].w & 0xff, (cases[i].w >> 8) & 0xff, (cases[i].w >> 16) & 0xff,
                         cases[i].w >> 24 };
        csi_insn_info in = classify("arm", b, 4, 0x13 /* svc mode, ARM state */);
        CHECK(in.cls == cases[i].want, "%s: class %d, expected %d", cases[i].text, in.cls,
              cases[i].want);
    }
done:;
}

static void ppc64_byte_order_follows_msr_le(void)
{
    static const uint8_t blr_le[4] = { 0x20, 0x00, 0x80, 0x4e }, blr_be[4] = { 0x4e, 0x80, 0x00, 0x20 };
    static const uint8_t bl_le[4] = { 0x09, 0x00, 0x00, 0x48 }, bl_be[4] = { 0x48, 0x00, 0x00, 0x09 };
    const uint64_t le = 0x8000000000000001ull, be = 0x8000000000000000ull;   /* SF, LE */
    csi_insn_info in = classify("ppc64", blr_le, 4, le);
    CHECK(in.cls == CSI_INSN_RET, "blr stored little-endian, MSR.LE set: class %d", in.cls);
    in = classify("ppc64", blr_be, 4, be);
    CHECK(in.cls == CSI_INSN_RET, "blr stored big-endian, MSR.LE clear: class %d", in.cls);
    in = classify("ppc64", blr_le, 4, be);
    CHECK(in.cls == CSI_INSN_OTHER, "little-endian bytes of blr read big-endian: class %d", in.cls);
    in = classify("ppc64", bl_be, 4, be);
    CHECK(in.cls == CSI_INSN_CALL && in.target.addr == 0x1008 && in.ret_addr == 0x1004,
          "bl .+8 big-endian: class %d target " PX " return " PX, in.cls, in.target.addr, in.ret_addr);
    in = classify("ppc64", bl_le, 4, le);
    CHECK(in.cls == CSI_INSN_CALL && in.target.addr == 0x1008, "bl .+8 little-endian: class %d", in.cls);
    /* user-mode ppc64le has no mode register: always little-endian */
    in = classify("ppc64le", blr_le, 4, 0);
    CHECK(in.cls == CSI_INSN_RET, "ppc64le blr: class %d", in.cls);
done:;
}

int main(int argc, char **argv)
{
    static const test_case cases[] = {
        { "arm_exception_returns_are_not_returns", arm_exception_returns_are_not_returns },
        { "ppc64_byte_order_follows_msr_le", ppc64_byte_order_follows_msr_le },
    };
    return run_cases(cases, G_N_ELEMENTS(cases), argc, argv, NULL);
}

# SPDX-License-Identifier: GPL-2.0-or-later
"""Whole-system tests on the other architectures PANDA records: the same
guest as test_system.py (Debian 12 kernel, busybox initramfs, two waves of
four copies of tests/guests/sysprog.c) under qemu-system-i386 (Debian's 686
kernel), qemu-system-arm (-M virt, Cortex-A15, the armmp kernel; the test
program is Thumb-2, Debian armhf's default) and qemu-system-ppc64 (pseries,
the ppc64el kernel), with the same checks against the same references:
each copy's stack at its checkpoint is exactly the return addresses it saw
itself, its calls and returns exactly its call pattern, copies alive
together have different stacks, kernel addresses only on kernel stacks;
with one and two vCPUs, and a record/replay pair (identical traces).

These QEMU binaries come from the separate set-up (scripts/setup.sh
--system-extra), built on first use.
"""
from harness import test
from test_system import record_replay, system_test


@test
def system_i386_stacks():
    system_test("i386", 1)


@test
def system_i386_smp2_stacks():
    system_test("i386", 2)


@test
def system_i386_record_replay():
    record_replay("i386")


@test
def system_arm_stacks():
    system_test("arm", 1)


@test
def system_arm_smp2_stacks():
    system_test("arm", 2)


@test
def system_arm_record_replay():
    record_replay("arm")


@test
def system_ppc64_stacks():
    system_test("ppc64", 1)


@test
def system_ppc64_smp2_stacks():
    system_test("ppc64", 2)


@test
def system_ppc64_record_replay():
    record_replay("ppc64")

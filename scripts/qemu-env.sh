# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by the scripts: which QEMU we use and where it is cached.
# Sets QEMU_VERSION, QEMU_DEB_VERSION, QEMU_TARGETS, QEMU_CONFIG_KEY,
# CALLSTACK_CACHE and QEMU_PREFIX (bin/ and include/qemu-plugin.h); for the
# whole-system targets of the other architectures, built apart and only when
# their tests run, QEMU_SYS_TARGETS, QEMU_SYS_CONFIG_KEY and QEMU_SYS_PREFIX.

QEMU_VERSION=10.0.13
QEMU_DEB_VERSION=1:10.0.13+ds-0+deb13u1
# user mode for every architecture we support, system mode for x86_64 and
# aarch64. Changing the list changes the cache key, hence a new build.
QEMU_TARGETS=x86_64-linux-user,i386-linux-user,aarch64-linux-user,arm-linux-user,mips-linux-user,mipsel-linux-user,mips64el-linux-user,ppc-linux-user,ppc64le-linux-user,riscv64-linux-user,x86_64-softmmu,aarch64-softmmu
QEMU_CONFIG_KEY=$(printf '%s' "$QEMU_TARGETS" | cksum | cut -d' ' -f1)
CALLSTACK_CACHE=${CALLSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callstack_instr}
if [ -n "${CALLSTACK_QEMU_PREFIX:-}" ]; then
    QEMU_PREFIX=$CALLSTACK_QEMU_PREFIX
else
    QEMU_PREFIX=$CALLSTACK_CACHE/qemu-$QEMU_VERSION-$QEMU_CONFIG_KEY
fi
# Whole-system i386, arm and ppc64: a second cached build with its own key,
# so that adding them rebuilt nothing of the first and a run that does not
# test them does not build them (about 3 more system emulators' worth of
# compilation). With CALLSTACK_QEMU_PREFIX, they are looked for there too.
QEMU_SYS_TARGETS=i386-softmmu,arm-softmmu,ppc64-softmmu
QEMU_SYS_CONFIG_KEY=$(printf '%s' "$QEMU_SYS_TARGETS" | cksum | cut -d' ' -f1)
if [ -n "${CALLSTACK_QEMU_PREFIX:-}" ]; then
    QEMU_SYS_PREFIX=$CALLSTACK_QEMU_PREFIX
else
    QEMU_SYS_PREFIX=$CALLSTACK_CACHE/qemu-$QEMU_VERSION-sys-$QEMU_SYS_CONFIG_KEY
fi

# ninja target names of a target list (default QEMU_TARGETS), x86_64 user
# mode first.
qemu_binaries() {
    local t list=${1:-$QEMU_TARGETS}
    for t in ${list//,/ }; do
        case $t in
            *-linux-user) echo "qemu-${t%-linux-user}" ;;
            *-softmmu)    echo "qemu-system-${t%-softmmu}" ;;
        esac
    done
}

# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by the scripts: which QEMU we use and where it is cached.
# Sets QEMU_VERSION, QEMU_DEB_VERSION, QEMU_TARGETS, QEMU_CONFIG_KEY,
# CALLSTACK_CACHE and QEMU_PREFIX (bin/ and include/qemu-plugin.h).

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

# ninja target names, x86_64 user mode first.
qemu_binaries() {
    local t
    for t in ${QEMU_TARGETS//,/ }; do
        case $t in
            *-linux-user) echo "qemu-${t%-linux-user}" ;;
            *-softmmu)    echo "qemu-system-${t%-softmmu}" ;;
        esac
    done
}

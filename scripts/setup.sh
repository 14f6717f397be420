#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# One-time set-up on a Debian 12 machine: the packages callstack_instr builds
# and tests with, and a plugin-capable QEMU 10.0.13.
#
#   scripts/setup.sh              everything the tests need
#   scripts/setup.sh qemu-x86_64  only the packages that build and run the
#                                 plugins, and only the QEMU binaries named
#                                 (what the demo runs); a later full run
#                                 builds the rest from the same build tree
#
# Debian 12 ships QEMU 7.2 (plugin API v1, no register reads) and no package
# ships qemu-plugin.h, so QEMU is built from Debian trixie's source package
# and cached outside the clone (see scripts/qemu-env.sh for where). A second
# run finds the cache and only checks it.
#
# Environment:
#   CALLSTACK_QEMU_PREFIX  use an existing QEMU install instead (it must have
#                          bin/qemu-x86_64 and include/qemu-plugin.h); nothing
#                          is built.
#   CALLSTACK_CACHE        where the QEMU build is cached
#                          (default ~/.cache/callstack_instr).
#   CALLSTACK_SKIP_APT=1   do not install Debian packages (they are present).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/qemu-env.sh"
. "$here/apt-env.sh"

# Each step with the time since set-up started: the first run is long.
log() { printf 'setup [%4ds]: %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# QEMU binaries to build: the arguments, or all of QEMU_TARGETS.
ONLY=("$@")
for b in "${ONLY[@]}"; do
    qemu_binaries | grep -qx "$b" \
        || die "unknown QEMU binary '$b'; accepted: $(qemu_binaries | tr '\n' ' ')"
done

# Packages: building QEMU and the plugins (symbol tables through elfutils'
# libelf; osi_linux reads kernel images: BTF through libbpf, and every
# compression Linux builds its images with), and uftrace, which replays the
# demo's trace.
BASE_PKGS=(build-essential g++ pkg-config ninja-build python3 python3-venv
      libglib2.0-dev zlib1g-dev libfdt-dev flex bison dpkg-dev xz-utils
      libcapstone-dev libprotobuf-c-dev protobuf-c-compiler libelf-dev
      uftrace file binutils
      libbpf-dev liblz4-dev libzstd-dev liblzma-dev libbz2-dev liblzo2-dev)
# The test references: GDB; libc's detached symbols (libc6-dbg), which the
# tests name libc's static functions with; Chromium, which renders the
# flame graphs; GCC's shared TSan runtime, which the thread-sanitizer runs
# (scripts/tsan.sh) preload into QEMU; pahole (dwarves) and bpftool, which
# read the kernels' BTF for osi_linux's unit test, and lzop, which with
# gzip, xz, bzip2, lz4 and zstd recompresses the kernels there.
PKGS=("${BASE_PKGS[@]}" gdb libc6-dbg chromium libtsan2 dwarves bpftool lzop lz4 zstd bzip2)

# Cross toolchains for the tests of the other guest architectures
# (tests/e2e/test_arches.py): compilers, C++ runtime and C library of each
# triple, run with qemu-<arch> -L /usr/<triple>. Installing all of them took
# about 41 s on this machine kind (downloads included).
CROSS_PKGS=()
for t in i686-linux-gnu:i386 arm-linux-gnueabihf:armhf aarch64-linux-gnu:arm64 \
         mips-linux-gnu:mips mipsel-linux-gnu:mipsel mips64el-linux-gnuabi64:mips64el \
         powerpc-linux-gnu:powerpc powerpc64le-linux-gnu:ppc64el riscv64-linux-gnu:riscv64; do
    CROSS_PKGS+=("gcc-${t%%:*}" "g++-${t%%:*}" "libc6-dev-${t##*:}-cross")
done
PKGS+=("${CROSS_PKGS[@]}")

# A private apt configuration for bookworm-backports (meson >= 1.5) and
# trixie's sources (QEMU 10.0.13); the system's apt configuration is untouched.
APT_PRIV=()
private_apt() {
    local d="$CALLSTACK_CACHE/apt" uri
    uri=$(debian_uri)
    private_apt_opts "$d"
    cat > "$d/sources.list" <<LIST
deb $uri bookworm-backports main
deb-src $uri trixie main
LIST
    APT_PRIV=("${APT_OPTS[@]}")
    apt-get "${APT_PRIV[@]}" -qq update
}

install_packages() {
    [ "${CALLSTACK_SKIP_APT:-0}" = 1 ] && return 0
    if [ ${#ONLY[@]} -gt 0 ]; then
        log "installing the packages that build the plugins"
        apt_install_missing "${BASE_PKGS[@]}"
    else
        log "installing the packages the tests use"
        apt_install_missing "${PKGS[@]}"
    fi
    # QEMU 10 needs meson >= 1.5; bookworm has 1.0.1, bookworm-backports 1.7.
    if ! meson_ok; then
        private_apt
        local d; d=$(mktemp -d)
        (cd "$d" && apt-get "${APT_PRIV[@]}" -qq download meson/bookworm-backports)
        DEBIAN_FRONTEND=noninteractive as_root apt-get -y -qq install "$d"/meson_*.deb >/dev/null
        rm -rf "$d"
        meson_ok || die "meson >= 1.5 could not be installed"
    fi
}

meson_ok() {
    command -v meson >/dev/null || return 1
    local v; v=$(meson --version)
    [ "$(printf '%s\n1.5.0\n' "$v" | sort -V | head -n1)" = 1.5.0 ]
}

build_qemu() {
    local work="$CALLSTACK_CACHE/work-$QEMU_VERSION"
    mkdir -p "$work"
    if [ ! -d "$work/src" ]; then
        [ ${#APT_PRIV[@]} -gt 0 ] || private_apt
        log "fetching QEMU $QEMU_DEB_VERSION source"
        rm -rf "$work/dl"; mkdir -p "$work/dl"
        (cd "$work/dl" && apt-get "${APT_PRIV[@]}" -qq source --download-only "qemu=$QEMU_DEB_VERSION")
        # dpkg-source applies Debian's patch series, which among other things
        # drops configure's need for pycotap (absent from bookworm).
        (cd "$work/dl" && dpkg-source --no-check -x qemu_*.dsc "$work/src.tmp" >/dev/null)
        mv "$work/src.tmp" "$work/src"
        rm -rf "$work/dl"
    fi
    local b="$work/build-$QEMU_CONFIG_KEY"
    if [ ! -f "$b/build.ninja" ]; then
        log "configuring QEMU ($QEMU_TARGETS)"
        rm -rf "$b"; mkdir -p "$b"
        (cd "$b" && "$work/src/configure" --prefix="$QEMU_PREFIX" \
            --without-default-features --enable-plugins --enable-tcg --enable-fdt=system \
            --disable-download --disable-install-blobs --disable-docs \
            --python=/usr/bin/python3 --target-list="$QEMU_TARGETS" >configure.log 2>&1) \
            || { tail -n 30 "$b/configure.log"; die "QEMU configure failed (log: $b/configure.log)"; }
    fi
    local bin
    mkdir -p "$QEMU_PREFIX/bin" "$QEMU_PREFIX/include"
    install -m 644 "$work/src/include/qemu/qemu-plugin.h" "$QEMU_PREFIX/include/qemu-plugin.h"
    # x86_64 user mode first: it is what the demo and the first tests need.
    for bin in ${ONLY[@]+"${ONLY[@]}"} $(qemu_binaries); do
        [ -x "$QEMU_PREFIX/bin/$bin" ] && continue
        log "building $bin"
        ninja -C "$b" "$bin" >"$b/ninja-$bin.log" 2>&1 \
            || { tail -n 30 "$b/ninja-$bin.log"; die "building $bin failed"; }
        install -m 755 "$b/$bin" "$QEMU_PREFIX/bin/$bin"
        [ ${#ONLY[@]} -gt 0 ] && all_installed "${ONLY[@]}" && return 0
    done
    echo "$QEMU_TARGETS" > "$QEMU_PREFIX/.complete"
    rm -rf "$b"   # the objects are large; the installed binaries are the cache
}

# all_installed BIN...: whether every one is in the cache already.
all_installed() {
    local b
    for b in "$@"; do [ -x "$QEMU_PREFIX/bin/$b" ] || return 1; done
}

install_packages

# One set-up at a time per cache (a second waits, then finds the cache).
mkdir -p "$CALLSTACK_CACHE"
exec 9>"$CALLSTACK_CACHE/.lock"
flock 9

if [ -n "${CALLSTACK_QEMU_PREFIX:-}" ]; then
    [ -x "$QEMU_PREFIX/bin/qemu-x86_64" ] || die "CALLSTACK_QEMU_PREFIX=$QEMU_PREFIX has no bin/qemu-x86_64"
    [ -f "$QEMU_PREFIX/include/qemu-plugin.h" ] || die "CALLSTACK_QEMU_PREFIX=$QEMU_PREFIX has no include/qemu-plugin.h"
    log "using QEMU at $QEMU_PREFIX"
elif [ -f "$QEMU_PREFIX/.complete" ] || { [ ${#ONLY[@]} -gt 0 ] && all_installed "${ONLY[@]}"; }; then
    log "using cached QEMU at $QEMU_PREFIX"
else
    build_qemu
    log "QEMU $QEMU_VERSION (${ONLY[*]:-all of $QEMU_TARGETS}) installed at $QEMU_PREFIX"
fi
"$QEMU_PREFIX/bin/qemu-x86_64" --version | head -n1 >&2

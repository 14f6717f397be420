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
#   scripts/setup.sh --system-extra
#                                 the whole-system emulators of the other
#                                 architectures (QEMU_SYS_TARGETS: i386,
#                                 arm, ppc64), a separate cached build that
#                                 only their tests need; naming one of them
#                                 (qemu-system-arm) does the same
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

# QEMU binaries to build: the arguments, or all of QEMU_TARGETS; or (SYS=1)
# those of QEMU_SYS_TARGETS. (grep reads all its input: with -q it could
# exit at the match, and the writer's SIGPIPE fail the pipeline.)
ONLY=() SYS=0
for b in "$@"; do
    if [ "$b" = --system-extra ] || qemu_binaries "$QEMU_SYS_TARGETS" | grep -x -- "$b" >/dev/null; then
        SYS=1
    elif qemu_binaries | grep -x -- "$b" >/dev/null; then
        ONLY+=("$b")
    else
        die "unknown QEMU binary '$b'; accepted: --system-extra $(qemu_binaries | tr '\n' ' ')$(qemu_binaries "$QEMU_SYS_TARGETS" | tr '\n' ' ')"
    fi
done
[ $SYS = 1 ] && [ ${#ONLY[@]} -gt 0 ] && die "build --system-extra on its own"

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
    if [ ${#ONLY[@]} -gt 0 ] || [ $SYS = 1 ]; then
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

# The QEMU source, patched by Debian, once for every build.
fetch_qemu_source() {
    local work=$1
    [ -d "$work/src" ] && return 0
    [ ${#APT_PRIV[@]} -gt 0 ] || private_apt
    log "fetching QEMU $QEMU_DEB_VERSION source"
    rm -rf "$work/dl"; mkdir -p "$work/dl"
    (cd "$work/dl" && apt-get "${APT_PRIV[@]}" -qq source --download-only "qemu=$QEMU_DEB_VERSION")
    # dpkg-source applies Debian's patch series, which among other things
    # drops configure's need for pycotap (absent from bookworm).
    (cd "$work/dl" && dpkg-source --no-check -x qemu_*.dsc "$work/src.tmp" >/dev/null)
    mv "$work/src.tmp" "$work/src"
    rm -rf "$work/dl"
}

# build_qemu TARGETS KEY PREFIX [NINJA-ARGS...]: configures QEMU for the
# target list in its own build tree (by KEY), builds the ONLY binaries first
# (stopping there) or all of the list's, and installs them into PREFIX.
build_qemu() {
    local targets=$1 key=$2 prefix=$3; shift 3
    local work="$CALLSTACK_CACHE/work-$QEMU_VERSION"
    mkdir -p "$work"
    fetch_qemu_source "$work"
    local b="$work/build-$key"
    if [ ! -f "$b/build.ninja" ]; then
        log "configuring QEMU ($targets)"
        rm -rf "$b"; mkdir -p "$b"
        (cd "$b" && "$work/src/configure" --prefix="$prefix" \
            --without-default-features --enable-plugins --enable-tcg --enable-fdt=system \
            --disable-download --disable-install-blobs --disable-docs \
            --python=/usr/bin/python3 --target-list="$targets" >configure.log 2>&1) \
            || { tail -n 30 "$b/configure.log"; die "QEMU configure failed (log: $b/configure.log)"; }
    fi
    local bin
    mkdir -p "$prefix/bin" "$prefix/include"
    install -m 644 "$work/src/include/qemu/qemu-plugin.h" "$prefix/include/qemu-plugin.h"
    # x86_64 user mode first: it is what the demo and the first tests need.
    for bin in ${ONLY[@]+"${ONLY[@]}"} $(qemu_binaries "$targets"); do
        [ -x "$prefix/bin/$bin" ] && continue
        log "building $bin"
        ${NICE[@]+"${NICE[@]}"} ninja -C "$b" "$@" "$bin" >"$b/ninja-$bin.log" 2>&1 \
            || { tail -n 30 "$b/ninja-$bin.log"; die "building $bin failed"; }
        install -m 755 "$b/$bin" "$prefix/bin/$bin"
        [ ${#ONLY[@]} -gt 0 ] && all_installed "$prefix" "${ONLY[@]}" && return 0
    done
    echo "$targets" > "$prefix/.complete"
    rm -rf "$b"   # the objects are large; the installed binaries are the cache
}

NICE=()   # a command prefix for the compilers (nice)

# all_installed PREFIX BIN...: whether every one is in the cache already.
all_installed() {
    local p=$1 b; shift
    for b in "$@"; do [ -x "$p/bin/$b" ] || return 1; done
}

install_packages
mkdir -p "$CALLSTACK_CACHE"

# The extra whole-system emulators: their own lock, so that set-ups of the
# main build (other clones' test runs) do not wait behind this one, and
# niced, since it usually runs beside tests (scripts/test.sh starts it in
# the background). Measured on this 2-core machine kind: see README.md.
if [ $SYS = 1 ]; then
    exec 9>"$CALLSTACK_CACHE/.lock-sys"
    flock 9
    if [ -n "${CALLSTACK_QEMU_PREFIX:-}" ]; then
        all_installed "$QEMU_SYS_PREFIX" $(qemu_binaries "$QEMU_SYS_TARGETS") \
            || die "CALLSTACK_QEMU_PREFIX=$QEMU_SYS_PREFIX lacks some of: $(qemu_binaries "$QEMU_SYS_TARGETS" | tr '\n' ' ')"
    elif [ -f "$QEMU_SYS_PREFIX/.complete" ]; then
        log "using cached QEMU at $QEMU_SYS_PREFIX"
    else
        # The lowest priority, two jobs at most.
        NICE=(nice -n 19)
        build_qemu "$QEMU_SYS_TARGETS" "sys-$QEMU_SYS_CONFIG_KEY" "$QEMU_SYS_PREFIX" -j2
        log "QEMU $QEMU_VERSION ($QEMU_SYS_TARGETS) installed at $QEMU_SYS_PREFIX"
    fi
    exit 0
fi

# One set-up at a time per cache (a second waits, then finds the cache).
exec 9>"$CALLSTACK_CACHE/.lock"
flock 9

if [ -n "${CALLSTACK_QEMU_PREFIX:-}" ]; then
    [ -x "$QEMU_PREFIX/bin/qemu-x86_64" ] || die "CALLSTACK_QEMU_PREFIX=$QEMU_PREFIX has no bin/qemu-x86_64"
    [ -f "$QEMU_PREFIX/include/qemu-plugin.h" ] || die "CALLSTACK_QEMU_PREFIX=$QEMU_PREFIX has no include/qemu-plugin.h"
    log "using QEMU at $QEMU_PREFIX"
elif [ -f "$QEMU_PREFIX/.complete" ] || { [ ${#ONLY[@]} -gt 0 ] && all_installed "$QEMU_PREFIX" "${ONLY[@]}"; }; then
    log "using cached QEMU at $QEMU_PREFIX"
else
    build_qemu "$QEMU_TARGETS" "$QEMU_CONFIG_KEY" "$QEMU_PREFIX"
    log "QEMU $QEMU_VERSION (${ONLY[*]:-all of $QEMU_TARGETS}) installed at $QEMU_PREFIX"
fi
"$QEMU_PREFIX/bin/qemu-x86_64" --version | head -n1 >&2

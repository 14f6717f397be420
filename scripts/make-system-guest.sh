#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Builds the whole-system test guest for ARCH (x86_64, aarch64, i386, arm or
# ppc64) from Debian packages: a Debian 12 kernel and a busybox-static initramfs whose
# init runs two waves of copies of tests/guests/sysprog.c, each wave's
# copies at once (N, from the kernel command line's sysprog=N, default 4),
# then powers off. With spawn=N on the kernel command line, init instead
# runs N short-lived processes one after another (sysprog spawn N); with
# systhreads=1, two copies of tests/guests/systhreads.c (a main thread and
# three threads each) at once. With kallsyms=1, init first prints
# /proc/kallsyms between the lines KALLSYMS-BEGIN and KALLSYMS-END (as
# root, kptr_restrict=0: the real addresses of this boot), then goes on;
# kallsyms=only powers off after it. With bench=N, the benchmark's workload
# instead (bench/system.py, block below).
#
# KASLR (kernel address-space layout randomisation), as measured with
# these guests (Debian 6.1 cloud kernels, QEMU 10.0 TCG; the kallsyms
# dumps of tests/e2e/sysguest.py):
#   x86_64 (qemu64 CPU, no RDRAND): randomised all the same, the
#     decompressor taking its entropy from the TSC and the i8254 timer:
#     three boots put _text at 0xffffffff9a400000, 0xffffffffb7a00000 and
#     0xffffffff81e00000 (slides are multiples of 2 MiB); with nokaslr on
#     the command line, 0xffffffff81000000 (System.map's address).
#   aarch64 (cortex-a57, no EFI, no RNDR): the only entropy is the device
#     tree's /chosen/kaslr-seed, so dtb-kaslr-seed=off (qemu.args, needed
#     for record/replay) boots unrandomised, _stext at 0xffff800008010000;
#     with -M virt,dtb-kaslr-seed=on two boots gave 0xffffbed1cc210000 and
#     0xffffdfcbfec10000 (slides are multiples of 64 KiB).
#   Without modules in the initramfs, the dumps hold no [module] lines;
#   x86_64's kallsyms lists data symbols too (87,000 lines), aarch64's
#   only functions (44,600).
#
#   scripts/make-system-guest.sh ARCH
#
# Prints the guest directory on its last line of output. It holds
#   kernel      the kernel image (-kernel)
#   config      its build configuration (THREAD_SIZE, Thumb-2, BTF)
#   initrd.gz   the initramfs (-initrd)
#   sysprog     the test program, with symbols (for nm)
#   systhreads  the threaded test program, with symbols
#   sysbench    the benchmark's workload (-O2), with symbols
#   qemu.args   QEMU arguments booting it, one per line (machine, firmware,
#               kernel, initrd, command line); add -plugin ... and run
#   firmware/   x86_64: the BIOS and option ROMs QEMU's PC needs (-L)
#
# Everything is cached outside the clone, like QEMU, under
# $CALLSTACK_CACHE/system-guest/: the downloaded packages once, then one
# directory per build input (script, program, package versions).
# Packages come through apt with a private configuration (the system's is
# not touched) whose archive URI is read from this machine's /etc/apt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
. "$here/qemu-env.sh"
. "$here/apt-env.sh"

die() { printf 'make-system-guest: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'make-system-guest: %s\n' "$*" >&2; }

[ $# = 1 ] || die "usage: make-system-guest.sh ARCH (x86_64, aarch64, i386, arm or ppc64)"
arch=$1
# Per architecture: Debian's architecture, the compiler of the test
# program, the console, and the kernel metapackage. x86_64 and aarch64 use
# the "cloud" flavour (virtio and serial built in, fewer drivers to probe,
# so it boots in about 3 s under TCG instead of 7); the others have no such
# flavour: i386's 686 (non-PAE, for any i686), armhf's armmp (ARMv7
# multiplatform, LPAE-less, which knows QEMU's virt board) and ppc64el's
# only kernel.
case $arch in
    x86_64)  darch=amd64 cc=gcc console=ttyS0 kmeta=linux-image-cloud-amd64 ;;
    aarch64) darch=arm64 cc=aarch64-linux-gnu-gcc console=ttyAMA0 kmeta=linux-image-cloud-arm64 ;;
    i386)    darch=i386 cc=i686-linux-gnu-gcc console=ttyS0 kmeta=linux-image-686 ;;
    arm)     darch=armhf cc=arm-linux-gnueabihf-gcc console=ttyAMA0 kmeta=linux-image-armmp ;;
    ppc64)   darch=ppc64el cc=powerpc64le-linux-gnu-gcc console=hvc0 kmeta=linux-image-powerpc64le ;;
    *) die "unsupported ARCH '$arch'; accepted: x86_64, aarch64, i386, arm, ppc64" ;;
esac
# PC firmware (SeaBIOS and QEMU's option ROMs) for x86, the pseries
# machine's Open Firmware for ppc64 (the QEMU build has no blobs).
case $arch in
    x86_64|i386) fwpkgs=(seabios qemu-system-data) ;;
    ppc64)       fwpkgs=(qemu-system-data) ;;
    *)           fwpkgs=() ;;
esac

top=$CALLSTACK_CACHE/system-guest
debs=$top/debs-$darch
mkdir -p "$debs"
exec 9>"$top/.lock"
flock 9

# The cross compiler for the test program (x86_64 uses the host's gcc).
if ! command -v "$cc" >/dev/null; then
    [ "${CALLSTACK_SKIP_APT:-0}" = 1 ] && die "$cc is missing (CALLSTACK_SKIP_APT=1)"
    log "installing the $darch cross compiler"
    as_root apt-get -qq update
    DEBIAN_FRONTEND=noninteractive as_root apt-get -y -qq install \
        "gcc-${cc%-gcc}" "libc6-dev-$darch-cross" >/dev/null
fi

# Downloads, once: the kernel the metapackage points to, busybox-static
# of the guest's architecture, and the firmware.
fetch() {
    local d=$top/apt-$darch uri
    uri=$(debian_uri)
    private_apt_opts "$d" "$darch"
    printf 'deb [arch=%s] %s bookworm main\n' "$darch" "$uri" > "$d/sources.list"
    local apt=("${APT_OPTS[@]}")
    log "fetching the $darch package lists"
    apt-get "${apt[@]}" -qq update
    local kpkg
    kpkg=$(apt-cache "${apt[@]}" depends "$kmeta" |
           awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
    [ -n "$kpkg" ] || die "no kernel package behind $kmeta"
    local pkgs=("$kpkg" busybox-static ${fwpkgs[@]+"${fwpkgs[@]}"})
    log "downloading ${pkgs[*]}"
    rm -rf "$debs.tmp"; mkdir -p "$debs.tmp"
    (cd "$debs.tmp" && apt-get "${apt[@]}" -qq download "${pkgs[@]}")
    rm -rf "$debs"; mv "$debs.tmp" "$debs"
}
have_debs() {
    local p
    for p in linux-image busybox-static ${fwpkgs[@]+"${fwpkgs[@]}"}; do
        ls "$debs/${p}"[-_]*.deb >/dev/null 2>&1 || return 1
    done
}
have_debs || fetch

src=$root/tests/guests/sysprog.c
src_threads=$root/tests/guests/systhreads.c
key=$( { cat "$0" "$src" "$src_threads" "$here/mkinitramfs.py"; ls "$debs"; } | cksum | cut -d' ' -f1)
# The benchmark's workload is an input too (bench/system.py).
src_bench=$root/tests/guests/sysbench.c
key=$( { echo "$key"; cat "$src_bench"; } | cksum | cut -d' ' -f1)
out=$top/$arch-$key
if [ -f "$out/.complete" ]; then
    printf '%s\n' "$out"
    exit 0
fi

log "building the $arch guest in $out"
tmp=$(mktemp -d "$top/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/x" "$tmp/out" "$tmp/root/bin" "$tmp/root/tmp/w1" "$tmp/root/tmp/w2" "$tmp/root/tmp/t" "$tmp/root/proc"
dpkg-deb -x "$debs"/linux-image-*.deb "$tmp/x"
# (ppc64el's kernel is an uncompressed ELF vmlinux, which pseries boots)
cp "$tmp"/x/boot/vmlinu[xz]-* "$tmp/out/kernel"
cp "$tmp"/x/boot/config-* "$tmp/out/config"
dpkg-deb -x "$debs"/busybox-static_*.deb "$tmp/bb"
cp "$tmp/bb/bin/busybox" "$tmp/root/bin/busybox"
for applet in sh mount sleep nproc poweroff cat; do
    ln -s busybox "$tmp/root/bin/$applet"
done
# -O0 and frame pointers: every call in the source is a call in the binary,
# and the program's own view of its return addresses is exact. Linked at
# 0x10000000, away from busybox (also static, at 0x400000), so that an
# address says which program it belongs to.
"$cc" -static -O0 -g -fno-omit-frame-pointer -fno-inline -Wall -Werror \
    -Wl,-Ttext-segment=0x10000000 -o "$tmp/out/sysprog" "$src"
cp "$tmp/out/sysprog" "$tmp/root/sysprog"
# The threaded program likewise, at 0x20000000.
"$cc" -static -O0 -g -fno-omit-frame-pointer -fno-inline -Wall -Werror -pthread \
    -Wl,-Ttext-segment=0x20000000 -o "$tmp/out/systhreads" "$src_threads"
cp "$tmp/out/systhreads" "$tmp/root/systhreads"

# The whole-system benchmark (bench/system.py): with bench=N on the kernel
# command line, init sources /bench.sh, which runs N copies of the static,
# optimised call-heavy tests/guests/sysbench.c at once (benchscale=S units of
# work each, default 40), then busybox gzip -9 on the text each copy wrote,
# and powers off. Linked at 0x30000000, apart from the other programs.
"$cc" -static -O2 -g -Wall -Wextra -Werror -Wl,-Ttext-segment=0x30000000 \
    -o "$tmp/out/sysbench" "$src_bench"
cp "$tmp/out/sysbench" "$tmp/root/sysbench"
cat > "$tmp/root/bench.sh" <<'BENCH'
echo "SYSBENCH-CPUS $(nproc)"
i=1
while [ "$i" -le "$bench" ]; do
    { /sysbench "$i" "${benchscale:-40}" "/tmp/bench.$i" &&
      busybox gzip -9 -c "/tmp/bench.$i" > "/tmp/bench.$i.gz" &&
      echo "SYSBENCH-GZIP id=$i $(busybox wc -c < "/tmp/bench.$i.gz")"; } &
    i=$((i + 1))
done
wait
echo SYSBENCH-DONE
poweroff -f
BENCH

cat > "$tmp/root/init" <<'INIT'
#!/bin/sh
# Init of the whole-system test guest: two waves of N copies of /sysprog
# (a wave's copies all start before any of them runs: see sysprog.c); the
# second wave's processes get page tables the first wave freed. Then a mark
# for the tests (sysprog end), and power off. Options from the kernel
# command line (the kernel passes unknown NAME=VALUE to init's
# environment): kallsyms= (first print /proc/kallsyms; "only": nothing
# else), systhreads= (two copies of /systhreads at once instead of the
# waves), spawn=N (N short-lived processes instead), bench=N (the
# benchmark: /bench.sh).
export PATH=/bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
if [ -n "${kallsyms:-}" ]; then
    # Root reads real addresses only with kptr_restrict below 2.
    echo 0 > /proc/sys/kernel/kptr_restrict
    echo KALLSYMS-BEGIN
    cat /proc/kallsyms
    echo KALLSYMS-END
    [ "$kallsyms" = only ] && poweroff -f
fi
[ -n "${bench:-}" ] && . /bench.sh
echo "SYSPROG-CPUS $(nproc)"
if [ -n "${systhreads:-}" ]; then
    /systhreads 1 /tmp/t &
    /systhreads 2 /tmp/t &
    while :; do
        set -- /tmp/t/ready.*
        [ -e "$1" ] && [ "$#" -ge 2 ] && break
        sleep 0.05
    done
    : > /tmp/t/go
    wait
    /sysprog end
    echo SYSPROG-DONE
    poweroff -f
fi
if [ -n "${spawn:-}" ]; then
    /sysprog spawn "$spawn"
    echo SYSPROG-DONE
    poweroff -f
fi
n=${sysprog:-4}
id=1
for wave in w1 w2; do
    i=0
    while [ "$i" -lt "$n" ]; do
        /sysprog "$id" "/tmp/$wave" &
        i=$((i + 1))
        id=$((id + 1))
    done
    while :; do
        set -- /tmp/$wave/ready.*
        [ -e "$1" ] && [ "$#" -ge "$n" ] && break
        sleep 0.05
    done
    : > "/tmp/$wave/go"
    wait
done
/sysprog end
echo SYSPROG-DONE
poweroff -f
INIT
chmod 755 "$tmp/root/init"
python3 "$here/mkinitramfs.py" "$tmp/root" "$tmp/out/initrd.gz"

append="console=$console quiet panic=-1"
{
    case $arch in
        x86_64|i386)
            mkdir -p "$tmp/fw" "$tmp/out/firmware"
            for f in "$debs"/seabios_*.deb "$debs"/qemu-system-data_*.deb; do dpkg-deb -x "$f" "$tmp/fw"; done
            cp "$tmp/fw/usr/share/seabios/bios-256k.bin" "$tmp/fw/usr/share/qemu/linuxboot_dma.bin" \
               "$tmp/fw/usr/share/qemu/kvmvapic.bin" "$tmp/out/firmware/"
            printf '%s\n' -L "$out/firmware" -vga none
            ;;
        arm)
            # ARMv7 (the virt board's default CPU for qemu-system-arm).
            printf '%s\n' -M virt -cpu cortex-a15
            ;;
        ppc64)
            # QEMU's minimal Open Firmware (VOF) instead of SLOF: it boots
            # the -kernel directly, in a fraction of SLOF's time under TCG.
            mkdir -p "$tmp/fw" "$tmp/out/firmware"
            dpkg-deb -x "$debs"/qemu-system-data_*.deb "$tmp/fw"
            cp "$tmp/fw/usr/share/qemu/vof.bin" "$tmp/out/firmware/"
            printf '%s\n' -L "$out/firmware" -M pseries,x-vof=on -vga none
            ;;
        aarch64)
            # No random KASLR seed in the device tree: a record/replay pair
            # must boot the same kernel layout.
            printf '%s\n' -M virt,dtb-kaslr-seed=off -cpu cortex-a57
            ;;
    esac
    printf '%s\n' -m 256M -nographic -no-reboot -nic none \
        -kernel "$out/kernel" -initrd "$out/initrd.gz" -append "$append"
} > "$tmp/out/qemu.args"
touch "$tmp/out/.complete"
rm -rf "$out"
mv "$tmp/out" "$out"
log "guest ready: $("$cc" --version | head -n1 | cut -c1-40)..., $(basename "$debs"/linux-image-*.deb)"
printf '%s\n' "$out"

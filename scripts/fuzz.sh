#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the libFuzzer harnesses of tests/fuzz/ with clang-14 under
# AddressSanitizer and UBSan (into build-fuzz/, apart from the gcc build of
# scripts/build.sh), then runs each for SECONDS on a scratch copy of its
# corpus (tests/fuzz/corpus/<harness>/: seeds and regression inputs, run
# first). One line per harness, "PASS fuzz(<harness>): ..." or
# "FAIL fuzz(<harness>): ..." naming the crashing input (kept under
# build-fuzz/crashes/<harness>/) with the sanitizer's report before it; the
# last line is "N passed, N failed". The exit status is non-zero on any
# failure.
#
#   bash scripts/fuzz.sh SECONDS [HARNESS...]
#
# Environment: CALLSTACK_SKIP_APT=1 installs nothing.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/apt-env.sh"

seconds=${1:-}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: $0 SECONDS [HARNESS...]" >&2; exit 2; }
shift
all=(fuzz_elf fuzz_arch fuzz_engine fuzz_osi_image fuzz_kallsyms)
harnesses=("$@")
[ $# -gt 0 ] || harnesses=("${all[@]}")

apt_install_missing clang-14 libclang-rt-14-dev pkg-config libglib2.0-dev libcapstone-dev libelf-dev \
    libbpf-dev liblz4-dev libzstd-dev liblzma-dev libbz2-dev liblzo2-dev \
    || { echo "FAIL fuzz: cannot install clang-14"; echo "0 passed, 1 failed"; exit 1; }

out="$root/build-fuzz"
mkdir -p "$out"
cflags=(-std=gnu11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
        -I"$root/src" -I"$root/include" -DCSI_ELF_READ_CMD=ELF_C_READ)
read -r -a glib <<<"$(pkg-config --cflags --libs glib-2.0)"
read -r -a capstone <<<"$(pkg-config --cflags --libs capstone)"
read -r -a osi <<<"$(pkg-config --cflags --libs libbpf liblzma liblz4 libzstd lzo2 zlib)"

# The sources each harness links (the code under test and nothing of QEMU).
sources() {
    case $1 in
    fuzz_elf) echo src/symbols/elf_symbols.c src/symbols/maps.c src/symbols/symbolizer.c src/symbols/plt_stubs.c ;;
    fuzz_arch) echo src/arch/arch.c src/arch/capstone.c src/arch/x86.c src/arch/arm.c src/arch/aarch64.c \
                    src/arch/mips.c src/arch/ppc.c src/arch/riscv.c ;;
    fuzz_engine) echo src/engine/engine.c src/engine/heuristic.c src/engine/shadow_stack.c src/engine/stack_table.c ;;
    fuzz_osi_image) echo src/osi/image.c src/osi/layout.c ;;
    fuzz_kallsyms) echo src/osi/kallsyms.c ;;
    esac
}
libs() {
    case $1 in
    fuzz_elf) echo "${glib[*]} -lelf" ;;
    fuzz_arch) echo "${glib[*]} ${capstone[*]}" ;;
    fuzz_engine) echo "${glib[*]}" ;;
    fuzz_osi_image) echo "${glib[*]} ${osi[*]} -lbz2" ;;
    fuzz_kallsyms) echo "" ;;
    esac
}
# Inputs beyond these lengths only slow the search down.
max_len() {
    case $1 in fuzz_elf) echo 65536 ;; fuzz_arch) echo 62 ;; fuzz_engine) echo 4096 ;;
               fuzz_osi_image) echo 65536 ;; fuzz_kallsyms) echo 16384 ;; esac
}

# fuzz_elf and fuzz_kallsyms write each input to a file: on tmpfs if there is one.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi

passed=0 failed=0
for h in "${harnesses[@]}"; do
    src=$(sources "$h")
    if [ -z "$src" ]; then
        echo "FAIL fuzz($h): no such harness (${all[*]})"; failed=$((failed + 1)); continue
    fi
    # shellcheck disable=SC2046
    if ! (cd "$root" && clang-14 "${cflags[@]}" -o "$out/$h" "tests/fuzz/$h.c" $src $(libs "$h")) \
            >"$out/$h.build.log" 2>&1; then
        cat "$out/$h.build.log"
        echo "FAIL fuzz($h): the build failed"; failed=$((failed + 1)); continue
    fi
    scratch=$(mktemp -d)
    crashes="$out/crashes/$h"
    mkdir -p "$crashes"
    cp "$root/tests/fuzz/corpus/$h/"* "$scratch/" 2>/dev/null
    log="$out/$h.log"
    # -timeout: an input running 10 s is a hang, reported like a crash.
    # The outer timeout bounds the whole run should libFuzzer itself hang.
    # A GLib critical (a precondition of a GLib call broken) aborts too.
    G_DEBUG=fatal-criticals ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        timeout $((seconds + 120)) "$out/$h" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$h")" -artifact_prefix="$crashes/" -print_final_stats=1 \
        "$scratch" >"$log" 2>&1
    rc=$?
    runs=$(grep -a -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
    if [ $rc = 0 ]; then
        echo "PASS fuzz($h): $runs inputs in ${seconds} s, corpus $(ls "$scratch" | wc -l) inputs"
        passed=$((passed + 1))
    else
        input=$(grep -a -o "Test unit written to .*" "$log" | tail -n 1 | sed 's/Test unit written to //')
        grep -a -E -A 25 '^(==[0-9]+== ?ERROR|.*runtime error|.*-CRITICAL|fuzz_[a-z]+: )' "$log" | head -n 40
        echo "FAIL fuzz($h): exit $rc on input ${input:-(none written; see $log)}"
        failed=$((failed + 1))
    fi
    rm -rf "$scratch"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

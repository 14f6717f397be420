#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The test command: sets up (if needed), builds, then runs
#   1. the unit tests (engine, symbolisation, options, the glue's direct
#      reads, osi_linux's kernel-image readers, kernel symbols) under
#      AddressSanitizer and UBSan;
#   2. the fuzz harnesses of tests/fuzz/, 30 s each (CALLSTACK_FUZZ_SECONDS);
#   3. the thread-sanitizer runs (scripts/tsan.sh: the plugins built with
#      TSan, in QEMU, with many threads and a 4-vCPU whole-system boot);
#   4. the end-to-end tests (real QEMU runs against uftrace and GDB).
# Arguments select thread-sanitizer and end-to-end tests by substring. The last line is
# "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh" || { echo "0 passed, 1 failed"; exit 1; }
bash "$root/scripts/build.sh" || { echo "0 passed, 1 failed"; exit 1; }
. "$root/scripts/qemu-env.sh"

# The whole-system emulators of i386, arm and ppc64 (a separate QEMU build,
# scripts/setup.sh --system-extra) are needed only by
# tests/e2e/test_system_arches.py: when those are selected and not built
# yet, they build in the background, niced, while the unit, fuzz and
# thread-sanitizer runs go on; the tests wait for the build (its lock) when
# they get there. Its output: build/qemu-system-extra.log.
sys_tests=$(sed -n 's/^def \(system_[a-z0-9_]*\)(.*/\1/p' "$root/tests/e2e/test_system_arches.py")
want_sys=$(($# == 0))
for a in "$@"; do
    grep -qF -- "$a" <<<"$sys_tests" && want_sys=1
done
if [ "$want_sys" = 1 ] && [ ! -f "$QEMU_SYS_PREFIX/.complete" ] && [ -z "${CALLSTACK_QEMU_PREFIX:-}" ]; then
    CALLSTACK_SKIP_APT=1 bash "$root/scripts/setup.sh" --system-extra \
        >"$root/build/qemu-system-extra.log" 2>&1 &
fi

passed=0 failed=0
count() {   # adds the "N passed, N failed" of a log's last line
    local last; last=$(tail -n 1 "$1")
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
    else
        echo "FAIL $2: no summary line"; failed=$((failed + 1))
    fi
}
log=$(mktemp)

asan="$root/build-asan"
if [ ! -f "$asan/build.ninja" ]; then
    meson setup "$asan" "$root" -Dqemu_include="$QEMU_PREFIX/include" \
        -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
# Two boots' /proc/kallsyms dumps of the x86_64 test guest (cached with
# the guest) for the kernel-symbol unit test's real-dump cases; a failure
# to get them leaves paths that make those cases fail.
dumps=$(QEMU_PREFIX=$QEMU_PREFIX python3 "$root/tests/e2e/sysguest.py" kallsyms x86_64 a b) ||
    echo "kallsyms dumps: the guest boots failed"
export CALLSTACK_KALLSYMS_A=$(sed -n 1p <<<"$dumps") CALLSTACK_KALLSYMS_B=$(sed -n 2p <<<"$dumps")
: "${CALLSTACK_KALLSYMS_A:=/nonexistent}" "${CALLSTACK_KALLSYMS_B:=/nonexistent}"
for t in test_engine test_symbols test_options test_qemu_reads test_osi_kallsyms test_osi_image test_arch; do
    if ninja -C "$asan" "tests/unit/$t" >/dev/null; then
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
            "$asan/tests/unit/$t" 2>&1 | tee "$log" | sed "s/^/unit($t): /"
        count "$log" "unit($t)"
    else
        echo "FAIL unit($t): the sanitizer build failed"; failed=$((failed + 1))
    fi
done

# Layering: no two files of src/ call each other, directly or in a circle.
python3 "$root/tests/layering/check_circles.py" "$root/build" 2>&1 | tee "$log" | sed 's/^/layering: /'
count "$log" layering

# Fuzzing (docs/reliability.md): each harness for a while on top of its
# corpus, one passed or failed each.
bash "$root/scripts/fuzz.sh" "${CALLSTACK_FUZZ_SECONDS:-30}" 2>&1 | tee "$log"
count "$log" fuzz

bash "$root/scripts/tsan.sh" "$@" 2>&1 | tee "$log"
count "$log" tsan

QEMU_PREFIX=$QEMU_PREFIX python3 "$root/tests/e2e/run.py" "$@" 2>&1 | tee "$log"
count "$log" e2e
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

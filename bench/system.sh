#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The whole-system benchmark: the x86_64 test guest boots under
# qemu-system-x86_64 and runs tests/guests/sysbench.c, plain and with
# callstack_instr in every configuration. See bench/README.md.
#
#   bash bench/system.sh            3 rounds, writes bench/results/system.md
#   bash bench/system.sh --quick    1 round, little work, writes bench/out/system-quick.md
#
# Other arguments go to bench/system.py (--runs N, --smp 1,2, --configs a,b,
# --paired, --scale S, --copies N, --out FILE). Not part of the test command.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/qemu-env.sh"

log() { printf 'system: %s\n' "$*" >&2; }
. "$root/scripts/apt-env.sh"
apt_install_missing time

if [ ! -x "$QEMU_PREFIX/bin/qemu-system-x86_64" ]; then
    bash "$root/scripts/setup.sh"
fi
bash "$root/scripts/build.sh"
for f in libcallstack_instr.so libosi_linux.so libcalltrace.so bench/libbench_count.so \
         bench/libbench_pandaref.so; do
    [ -f "$root/build/$f" ] || { log "build/$f was not built"; exit 1; }
done
guest=$(bash "$root/scripts/make-system-guest.sh" x86_64 | tail -n 1)

cmd="bash bench/system.sh${*:+ $*}"
exec /usr/bin/python3 "$root/bench/system.py" --qemu "$QEMU_PREFIX/bin/qemu-system-x86_64" \
    --build "$root/build" --guest "$guest" --command "$cmd" "$@"

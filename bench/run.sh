#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The benchmark: real Debian programs under qemu-x86_64, plain and with
# callstack_instr in every configuration. See bench/README.md.
#
#   bash bench/run.sh            full run (5 rounds), writes bench/results/tables.md
#   bash bench/run.sh --quick    1 round, small inputs, writes bench/out/quick.md
#
# Other arguments go to bench/bench.py (--runs N, --only WORKLOAD, --configs
# a,b, --out FILE). Not part of the test command.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/qemu-env.sh"

log() { printf 'bench: %s\n' "$*" >&2; }
. "$root/scripts/apt-env.sh"

# The guests are the host's own Debian binaries; install those missing.
apt_install_missing sqlite3 python3 gzip bzip2 xz-utils groff-base time

# QEMU (cached after the first time) and the plugins, bench plugins included.
if [ ! -x "$QEMU_PREFIX/bin/qemu-x86_64" ]; then
    bash "$root/scripts/setup.sh"
fi
bash "$root/scripts/build.sh"
for f in libcallstack_instr.so bench/libbench_count.so bench/libbench_pandaref.so; do
    [ -f "$root/build/$f" ] || { log "build/$f was not built"; exit 1; }
done

cmd="bash bench/run.sh${*:+ $*}"
exec /usr/bin/python3 "$root/bench/bench.py" --qemu "$QEMU_PREFIX/bin/qemu-x86_64" \
    --build "$root/build" --command "$cmd" "$@"

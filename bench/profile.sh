#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Sampling profile of QEMU running benchmark workloads plain and with the
# plugin (perf record -e cpu-clock), sorted into buckets. See bench/README.md.
#
#   bash bench/profile.sh                 troff and sqlite3, writes the profile block of bench/results/tables.md
#   bash bench/profile.sh --quick         small inputs, writes bench/out/profile-quick.md
#   bash bench/profile.sh --only gzip     another workload
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/qemu-env.sh"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v perf >/dev/null && [ "${CALLSTACK_SKIP_APT:-0}" != 1 ]; then
    echo "profile: installing linux-perf" >&2
    as_root apt-get -qq update
    DEBIAN_FRONTEND=noninteractive as_root apt-get -y -qq install linux-perf >/dev/null
fi
[ -x "$QEMU_PREFIX/bin/qemu-x86_64" ] || bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
cmd="bash bench/profile.sh${*:+ $*}"
exec /usr/bin/python3 "$root/bench/profile.py" --qemu "$QEMU_PREFIX/bin/qemu-x86_64" \
    --build "$root/build" --command "$cmd" "$@"

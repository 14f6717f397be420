#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the plugins into build/ against the QEMU that scripts/setup.sh
# installed (or CALLSTACK_QEMU_PREFIX). Extra arguments go to `meson setup`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/qemu-env.sh"
[ -f "$QEMU_PREFIX/include/qemu-plugin.h" ] || {
    echo "build: no QEMU at $QEMU_PREFIX; run scripts/setup.sh first" >&2; exit 1; }
if [ ! -f "$root/build/build.ninja" ]; then
    meson setup "$root/build" "$root" -Dqemu_include="$QEMU_PREFIX/include" "$@" >/dev/null
fi
ninja -C "$root/build" >/dev/null || ninja -C "$root/build"

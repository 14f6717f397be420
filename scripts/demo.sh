#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job on the built-in example: sets up (if needed), builds, runs
# examples/demo.c under qemu-x86_64 with callstack_instr and calltrace, and
# prints the program's call tree. The raw trace is left in out/demo.trace.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
. "$root/scripts/qemu-env.sh"
mkdir -p "$root/out"
gcc -O0 -g -no-pie -fno-pie -o "$root/out/demo" "$root/examples/demo.c"
"$QEMU_PREFIX/bin/qemu-x86_64" \
    -plugin "$root/build/libcallstack_instr.so,stack_type=threaded" \
    -plugin "$root/build/libcalltrace.so,out=$root/out/demo.trace" \
    "$root/out/demo"
echo "--- call tree of the program's own functions (out/demo.trace has every event) ---"
python3 "$root/scripts/calltree.py" "$root/out/demo.trace" "$root/out/demo"

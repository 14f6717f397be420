#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job on the built-in example: sets up (if needed), builds, runs
# examples/demo.c under qemu-x86_64 with callstack_instr and calltrace, and
# prints the program's call tree with the names calltrace gave its
# functions (callstack_instr_symbolize), as uftrace replays it.
# Left in out/: demo.trace (every event, tab-separated, with names),
# demo.uftrace/ (uftrace replay/report/graph/tui -d out/demo.uftrace),
# demo.folded (collapsed call paths with exact call counts) and demo.svg (its
# flame graph, drawn by scripts/flamegraph.py; open it in a browser).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh" qemu-x86_64    # only what the demo runs
bash "$root/scripts/build.sh"
. "$root/scripts/qemu-env.sh"
mkdir -p "$root/out"
gcc -O0 -g -no-pie -fno-pie -o "$root/out/demo" "$root/examples/demo.c"
"$QEMU_PREFIX/bin/qemu-x86_64" \
    -plugin "$root/build/libcallstack_instr.so,stack_type=threaded" \
    -plugin "$root/build/libcalltrace.so,out=$root/out/demo.trace,names=on" \
    "$root/out/demo"
"$QEMU_PREFIX/bin/qemu-x86_64" \
    -plugin "$root/build/libcallstack_instr.so,stack_type=threaded" \
    -plugin "$root/build/libcalltrace.so,format=uftrace,out=$root/out/demo.uftrace" \
    "$root/out/demo" >/dev/null
echo "--- call tree under main, printf's insides hidden:" \
     "uftrace replay -d out/demo.uftrace -F main -N printf ---"
uftrace replay --no-pager -d "$root/out/demo.uftrace" -F main -N printf
"$QEMU_PREFIX/bin/qemu-x86_64" \
    -plugin "$root/build/libcallstack_instr.so,stack_type=threaded" \
    -plugin "$root/build/libcalltrace.so,format=folded,out=$root/out/demo.folded" \
    "$root/out/demo" >/dev/null
python3 "$root/scripts/flamegraph.py" --title "examples/demo.c under QEMU: calls" \
    "$root/out/demo.folded" -o "$root/out/demo.svg"
echo "--- flame graph of the calls: $root/out/demo.svg" \
     "(open it in a browser: click a frame to zoom, Ctrl-F to search)"

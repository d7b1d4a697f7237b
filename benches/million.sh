#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
# The 1M-flow example-level run (DESIGN.md: linear to 1M, peak RSS < 16 MiB).
#
#   sudo benches/million.sh BIN_DIR [FLOWS] [ROUNDS]
#
# A namespace holds at most nf_conntrack_max flows, and that sysctl is global
# (only the initial namespace can write it). So this script, unlike the
# benches and the tests, RAISES THE HOST'S nf_conntrack_max for the run and
# restores the previous value on exit (also on error or Ctrl-C). Run it only
# on a machine where that is acceptable. The flows live in a throwaway
# namespace (`ctrs-million`), deleted on exit; the host's own table is not
# touched. Needs the release examples in BIN_DIR and about 400 MB of kernel
# memory per million flows.
set -eu
BIN=${1:?usage: benches/million.sh BIN_DIR [FLOWS] [ROUNDS]}
FLOWS=${2:-1000000}
ROUNDS=${3:-9}
NS=ctrs-million
HERE=$(cd "$(dirname "$0")" && pwd)
OLD=$(sysctl -n net.netfilter.nf_conntrack_max)
cleanup() {
    ip netns del "$NS" 2>/dev/null || true
    sysctl -q -w net.netfilter.nf_conntrack_max="$OLD"
    echo "nf_conntrack_max restored to $(sysctl -n net.netfilter.nf_conntrack_max)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
sysctl -q -w net.netfilter.nf_conntrack_max=$((FLOWS + FLOWS / 10))
ip netns add "$NS"
ip -n "$NS" link set lo up
"$BIN/fill" --netns "$NS" --mix --flows "$FLOWS" | tail -n 1
python3 "$HERE/dump_vs_drain.py" "$BIN" "$NS" "$ROUNDS"
for mode in never auto; do
    /usr/bin/time -f "dump --stats-only --prefetch $mode: %e s, peak RSS %M KiB" \
        "$BIN/dump" --netns "$NS" --stats-only --prefetch "$mode" >/dev/null
done
/usr/bin/time -f "drain: %e s, peak RSS %M KiB" "$BIN/drain" --netns "$NS" >/dev/null
for _ in 1 2 3; do
    "$BIN/doctor" --netns "$NS" --json --interval 0 |
        python3 -c 'import json, sys; print("doctor census", json.load(sys.stdin)["dump"]["seconds"], "s")'
done

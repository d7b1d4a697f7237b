#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
# The main job, until the `doctor` health report lands: builds the examples,
# makes a throwaway network namespace with a realistic table (20 000 flows of
# several protocols and states through the library, plus real loopback TCP and
# UDP traffic), reports on it, and removes the namespace, also when interrupted.
# Never touches the host's own conntrack table. Run as root.
set -eu
cd "$(dirname "$0")/.."
. tests/deps.sh
cargo build --release --quiet --examples
bin="${CARGO_TARGET_DIR:-target}/release/examples"

ns="ctrs-demo-$$"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" nft -f - <<NFT
table inet demo {
    chain out { type filter hook output priority 0; ct state new accept; }
}
NFT

echo "== building a table in namespace $ns"
"$bin/fill" --netns "$ns" --flows 20000 --mix
ip netns exec "$ns" python3 - <<'PY'
import socket
srv = socket.socket(); srv.bind(("127.0.0.1", 8080)); srv.listen()
cli = socket.create_connection(("127.0.0.1", 8080)); peer, _ = srv.accept()
cli.sendall(b"GET / HTTP/1.0\r\n\r\n"); peer.recv(100); peer.sendall(b"HTTP/1.0 200 OK\r\n\r\n"); cli.recv(100)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in range(5300, 5310):
    udp.sendto(b"query", ("127.0.0.1", port))
PY

echo
echo "== first flows, in the format of conntrack -L -o extended"
"$bin/dump" --netns "$ns" | sort -k3,3 -k5,5 | awk 'NR % 2000 == 1 || /dport=8080/' | head -12
echo
echo "== every flow decoded into the owned model"
"$bin/dump" --netns "$ns" --stats-only
echo "== conntrack-tools counts the same table"
ip netns exec "$ns" conntrack -C
echo
echo "== raw drain of the same dump (the kernel's own cost, no decoding)"
"$bin/drain" --netns "$ns"

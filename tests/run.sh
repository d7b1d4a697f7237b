#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
# The whole test suite: unit tests, byte-fixture decode tests, fuzz-corpus
# replay, and the kernel tests (each in its own throwaway network namespace).
# Run as root for the kernel tests; without root they skip with a reason.
# Installs what it needs (Debian/Ubuntu) when run as root on a fresh machine.
set -eu
cd "$(dirname "$0")/.."

missing=""
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v nft >/dev/null 2>&1 || missing="$missing nftables"
command -v conntrack >/dev/null 2>&1 || missing="$missing conntrack"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
command -v setpriv >/dev/null 2>&1 || missing="$missing util-linux"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "missing tools:$missing (install them, or run as root on Debian/Ubuntu)" >&2
        exit 1
    fi
fi
# Kernel tests need nf_conntrack (and its netlink interface) available.
if [ "$(id -u)" = 0 ]; then
    modprobe nf_conntrack_netlink 2>/dev/null || true
fi

cargo test --workspace --all-features "$@"

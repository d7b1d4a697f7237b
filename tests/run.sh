#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
# The whole test suite: unit tests, byte-fixture decode tests, fuzz-corpus
# replay, example tests and the kernel tests (each in its own throwaway network
# namespace). Run as root: without root the kernel tests skip with a reason.
# Installs the tools it needs (Debian/Ubuntu) when run as root on a fresh machine.
set -eu
cd "$(dirname "$0")/.."
. tests/deps.sh
cargo build --workspace --examples
cargo test --workspace "$@"
# The async event stream lives behind the `tokio` feature.
cargo test -p conntrack-rs --features tokio --test kernel_events "$@"
sh conntrack-py/tests/run.sh

#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
# The main job: builds and runs the `doctor` health report (examples/doctor.rs)
# with the given arguments, after installing the tools it needs on a fresh
# Debian/Ubuntu machine (as root). `examples/doctor.sh --demo` reports on a
# throwaway namespace filled to its limit and never touches the host's table;
# `examples/doctor.sh` alone reports on the host's own table (read only unless
# --apply); `--help` lists the options.
set -eu
cd "$(dirname "$0")/.."
. tests/deps.sh
cargo build --release --quiet --example doctor
exec "${CARGO_TARGET_DIR:-target}/release/examples/doctor" "$@"

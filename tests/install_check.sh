#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
# Proves the README's install command: installs the operator tools (every
# example, so a new tool is covered without editing this file) into a
# temporary root with `cargo install --path . --examples --locked`, checks that
# each examples/*.rs became a binary there, and runs each installed binary's
# `--help` from that root (exit 0, a usage line on stdout). Needs only a Rust
# toolchain, no root. Arguments go to `cargo install` (.ci/run passes --debug
# so the install reuses the test build in the shared target directory).
set -eu
cd "$(dirname "$0")/.."
REPO=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/conntrack-rs-install.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT INT TERM

cargo install --quiet --path . --examples --locked --root "$ROOT" "$@"

failed=0
count=0
for source in examples/*.rs; do
    tool=$(basename "$source" .rs)
    count=$((count + 1))
    if [ ! -x "$ROOT/bin/$tool" ]; then
        echo "FAIL $tool: not installed in $ROOT/bin" >&2
        failed=1
        continue
    fi
    # Run from the install root with nothing of the repository on the path.
    if ! (cd "$ROOT" && PATH="$ROOT/bin:$PATH" "$tool" --help >"$ROOT/help.out" 2>"$ROOT/help.err"); then
        echo "FAIL $tool --help exited nonzero: $(cat "$ROOT/help.err")" >&2
        failed=1
    elif ! grep -qi '^usage: ' "$ROOT/help.out"; then
        echo "FAIL $tool --help printed no usage line on stdout" >&2
        failed=1
    else
        echo "ok   $ROOT/bin/$tool --help"
    fi
done
[ "$count" -gt 0 ] || { echo "FAIL no examples/*.rs found" >&2; exit 1; }
[ "$failed" = 0 ] || exit 1
echo "install check: $count tools installed and answered --help"

#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
# Keeps the declared MSRV (`rust-version` in Cargo.toml) honest without an old
# toolchain: clippy's incompatible_msrv lint (an API newer than rust-version is
# an error; the lint skips #[test] code) over the library with every feature,
# examples and benches; then every crate the committed Cargo.lock builds for
# conntrack-rs (normal, build and dev dependencies, all features) must declare
# a rust-version no newer than ours, so `cargo install --locked` and the test
# build work on that toolchain too.
set -eu
cd "$(dirname "$0")/.."
cargo clippy --locked -p conntrack-rs --all-targets --all-features -- -D warnings -D clippy::incompatible_msrv

TREE=$(mktemp)
trap 'rm -f "$TREE"' EXIT INT TERM
cargo tree --locked -p conntrack-rs --all-features -e normal,build,dev --prefix none --format '{p}' >"$TREE"
cargo metadata --locked --format-version 1 | python3 -c '
import json, sys
tree = {line.split(" (")[0].strip() for line in open(sys.argv[1]) if line.strip()}
packages = json.load(sys.stdin)["packages"]
def version(text):
    return tuple(int(part) for part in (text or "0").split("."))
ours = next(p for p in packages if p["name"] == "conntrack-rs" and p["source"] is None)
msrv = version(ours["rust_version"])
newer = sorted(
    "%s %s needs Rust %s" % (p["name"], p["version"], p["rust_version"])
    for p in packages
    if "%s v%s" % (p["name"], p["version"]) in tree and version(p.get("rust_version")) > msrv
)
if newer:
    sys.exit("rust-version %s is not honest: the lock builds\n  %s" % (ours["rust_version"], "\n  ".join(newer)))
print("msrv check: %d crates of the locked build need at most Rust %s" % (len(tree), ours["rust_version"]))
' "$TREE"

#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
# The published crate is the repository's crate: `cargo package --list` must
# hold every example, test, bench, fixture and support module that git tracks
# (Cargo finds them by its conventions, no path entries), plus docs/, the
# licenses and the README; `cargo publish --dry-run` must pass without a
# warning (other than cargo's own "aborting upload due to dry run"); and the
# packaged crate, unpacked outside the repository, must build and pass its
# byte-fixture tests (fixture paths relative to the package, not the
# repository). Needs the crates.io index (the dry run resolves there).
set -eu
cd "$(dirname "$0")/.."
REPO=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/conntrack-rs-package.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

cargo package --list --allow-dirty --locked -p conntrack-rs >"$WORK/list"
missing=0
for file in $(git ls-files examples benches tests docs) LICENSE-MIT LICENSE-APACHE README.md \
    CHANGELOG.md conntrack-rs/src/lib.rs; do
    if ! grep -qxF "$file" "$WORK/list"; then
        echo "FAIL not in the package: $file" >&2
        missing=1
    fi
done
[ "$missing" = 0 ] || exit 1

cargo publish --dry-run --allow-dirty --locked -p conntrack-rs >"$WORK/publish.out" 2>&1 || {
    cat "$WORK/publish.out" >&2
    exit 1
}
if grep '^warning' "$WORK/publish.out" | grep -vxF 'warning: aborting upload due to dry run'; then
    echo "FAIL cargo publish --dry-run warned (above)" >&2
    exit 1
fi

PKGID=$(cargo pkgid -p conntrack-rs)
VERSION=${PKGID##*[@#]}
cargo package --quiet --allow-dirty --locked --no-verify -p conntrack-rs
tar -xzf "$CARGO_TARGET_DIR/package/conntrack-rs-$VERSION.crate" -C "$WORK"
# A target directory of its own: Cargo hashes a path package by its place in
# its workspace, so the unpacked crate's artifacts would replace the
# repository's own in a shared one.
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/package-check" \
    cargo test --quiet --locked --manifest-path "$WORK/conntrack-rs-$VERSION/Cargo.toml" \
    --features testing --test decode_fixtures --test oracle --test fuzz_replay
echo "package check: $(wc -l <"$WORK/list") files, publish dry run without warnings, packaged tests pass"

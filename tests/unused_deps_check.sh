#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
# Every declared dependency of the library is used by it: compiles the library
# (default features, then every feature, so the optional ones are there) with
# rustc's unused_crate_dependencies lint as an error. The flag goes to the
# library crate only (`cargo rustc`), so no dependency is rebuilt for it.
# Dev-dependencies are not the library's: tests, examples and benches use them.
set -eu
cd "$(dirname "$0")/.."
cargo rustc --locked -p conntrack-rs --lib --profile check -- -D unused-crate-dependencies
cargo rustc --locked -p conntrack-rs --lib --profile check --all-features -- -D unused-crate-dependencies
echo "unused dependency check: every dependency of the library is used"

// SPDX-License-Identifier: MIT OR Apache-2.0
//! A filter built from the input, evaluated on a generated or decoded flow
//! against a reference predicate and the kernel-side plan.
//! The body is the shared entry point, so `tests/fuzz_replay.rs` runs the same code.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    conntrack::fuzzing::filter_eval(bytes);
});

// SPDX-License-Identifier: MIT OR Apache-2.0
//! A flow spec built from the input, encoded as a `CT_NEW` request and as a dump
//! entry, decoded back and compared field by field.
//! The body is the shared entry point, so `tests/fuzz_replay.rs` runs the same code.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    conntrack::fuzzing::request_roundtrip(bytes);
});

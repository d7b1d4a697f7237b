// SPDX-License-Identifier: MIT OR Apache-2.0
//! A whole ctnetlink datagram through every decoder, as the dump path sees it.
//! The body is the shared entry point, so `tests/fuzz_replay.rs` runs the same code.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    conntrack::fuzzing::datagram(bytes);
});

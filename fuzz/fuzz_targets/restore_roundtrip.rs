// SPDX-License-Identifier: MIT OR Apache-2.0
//! Saved-table parsers (`conntrack::restore`): the input as a line of
//! `conntrack -L` text and of `dump --json` (never panics; text that parses
//! is stable when written and read again), and a generated flow written as
//! JSON and read back (the same flow, or refused exactly when invalid).
//! The body is the shared entry point, so `tests/fuzz_replay.rs` runs the same code.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    conntrack::fuzzing::restore_roundtrip(bytes);
});

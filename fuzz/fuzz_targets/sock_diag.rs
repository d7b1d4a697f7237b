// SPDX-License-Identifier: MIT OR Apache-2.0
//! A sock_diag (inet_diag) or rtnetlink address-dump datagram through the
//! socket-table decoders. The body is the shared entry point, so
//! `tests/fuzz_replay.rs` runs the same code.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    conntrack::fuzzing::sock_diag(bytes);
});

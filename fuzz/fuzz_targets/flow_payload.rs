// SPDX-License-Identifier: MIT OR Apache-2.0
//! One flow message payload (after `nlmsghdr`) through `decode_flow`.
//! The body is the shared entry point, so `tests/fuzz_replay.rs` runs the same code.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    conntrack::fuzzing::flow_payload(bytes);
});

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Entry points shared by the fuzz targets (`fuzz/`) and the stable-Rust replay
//! test (`tests/fuzz_replay.rs`), so the replay is never a copy of a target,
//! and the generator of kernel-shaped dump buffers the benchmarks use.
//! Not part of the supported API.

use crate::decode::decode_flow;
use crate::stats::{decode_cpu_stats, decode_table_stats};
use crate::wire::{parse_error, Messages};

/// Decodes `bytes` as a ctnetlink datagram the way the dump path does: walks
/// every message and runs every decoder on it. Returns the number of flows
/// that decoded. Must never panic, whatever the input.
pub fn datagram(bytes: &[u8]) -> usize {
    let mut flows = 0;
    for message in Messages::new(bytes) {
        let Ok(message) = message else { break };
        assert!(
            crate::decode::fast_paths_agree(message.payload),
            "fast path and general decoder disagree"
        );
        let _ = parse_error(&message);
        let _ = decode_table_stats(message.payload);
        let _ = decode_cpu_stats(message.payload);
        if let Ok(flow) = decode_flow(message.payload) {
            // Exercise the owned conversion and the formatting paths too.
            let owned = flow.to_owned_flow();
            let _ = format!("{owned:?}");
            flows += 1;
        }
    }
    flows
}

/// Decodes `bytes` as one flow message payload (after `nlmsghdr`), and panics
/// if a fixed-layout fast path disagrees with the general decoder.
pub fn flow_payload(bytes: &[u8]) -> bool {
    assert!(
        crate::decode::fast_paths_agree(bytes),
        "fast path and general decoder disagree"
    );
    decode_flow(bytes).is_ok()
}

/// Appends `spec` as the kernel would dump the flow created from it (see
/// `request::put_dump_entry`): the decode benchmark's buffers.
pub fn encode_dump_entry(
    enc: &mut crate::wire::Encoder,
    spec: &crate::FlowSpec,
    seq: u32,
    id: crate::FlowId,
) {
    crate::request::put_dump_entry(enc, spec, seq, id);
}

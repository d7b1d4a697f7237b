// SPDX-License-Identifier: MIT OR Apache-2.0
//! Decode cost per flow, from in-memory dump buffers (no kernel, no socket).
//!
//! The buffers hold exactly the flows `fill --mix` creates (the same
//! `examples/support/mix.rs` builds both), encoded by the library in the shape
//! the kernel dumps them (attribute order
//! and sizes checked against a real 6.18 dump: `ORIG, REPLY, [ZONE], STATUS,
//! MARK, ID, USE, TIMEOUT, [PROTOINFO], SYNPROXY`; 192–288 bytes per message),
//! packed like the kernel packs them: `NLM_F_MULTI` messages in datagrams of at
//! most 32 448 bytes (`SKB_WITH_OVERHEAD(32768)`, CTNETLINK.md §7.2), then
//! `NLMSG_DONE`.
//!
//! Benchmarks, per table size (10k and 100k flows), `Throughput::Elements(flows)`:
//! * `walk`: the message walk only ([`Messages`]), the floor of any decoder;
//! * `borrowed`: [`conntrack::decode_flow`] per message (the `Dump::next_flow` path);
//! * `owned`: the same plus `.to_owned_flow()` (the `Conntrack::flows` path);
//! * `netlink_packet_netfilter`: the typed parse of the same messages by
//!   `NetlinkMessage::<NetfilterMessage>::deserialize`, for comparison.
//!
//! Before measuring, it counts heap allocations per flow of each path with a
//! counting global allocator and prints them (DESIGN.md: zero on the borrowed path).
//!
//! ```text
//! CARGO_TARGET_DIR=... cargo bench -p conntrack-rs --bench decode -- --warm-up-time 1 --measurement-time 3
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use conntrack::consts::*;
use conntrack::fuzzing::encode_dump_entry;
use conntrack::wire::{Encoder, Messages};
use conntrack::{decode_flow, FlowId, ProtoInfo, TcpFlags};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use netlink_packet_core::NetlinkMessage;
use netlink_packet_netfilter::NetfilterMessage;

#[path = "../examples/support/mix.rs"]
mod mix;

/// Counts allocations, to check the zero-allocation claim of the borrowed path.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// `SKB_WITH_OVERHEAD(32768)` on x86-64: the largest dump batch the kernel builds.
const MAX_DATAGRAM: usize = 32448;
const SEQ: u32 = 0x1234_5678;
const PORTID: u32 = 0x0abc_def0;

/// Appends dump entry `i`: flow `i` of `fill --mix` (the same module builds
/// both), with the TCP details the kernel reports for such flows (window
/// scale 7, flags `WINDOW_SCALE|SACK_PERM|MAXACK_SET`), as the kernel dumps it.
fn put_dump_entry(enc: &mut Encoder, i: u32) {
    let mut spec = mix::mixed_flow(i).timeout(3599);
    if let Some(ProtoInfo::Tcp(tcp)) = &mut spec.protoinfo {
        let flags = (TcpFlags::from_bits_retain(0x23), TcpFlags::empty());
        tcp.wscale_orig = Some(7);
        tcp.wscale_reply = Some(7);
        tcp.flags_orig = Some(flags);
        tcp.flags_reply = Some(flags);
    }
    let id = FlowId(i.wrapping_mul(0x9e37_79b9).to_be_bytes());
    encode_dump_entry(enc, &spec, SEQ, id);
}

/// Writes `nlmsg_pid` (the encoder leaves it 0, as requests have it).
fn set_portid(message: &mut [u8]) {
    message[12..16].copy_from_slice(&PORTID.to_ne_bytes());
}

/// A dump of `flows` entries, as the datagrams a 64 KiB reader receives.
fn dump_datagrams(flows: u32) -> Vec<Vec<u8>> {
    let mut datagrams = Vec::new();
    let mut current = Vec::with_capacity(MAX_DATAGRAM);
    let mut enc = Encoder::new();
    for i in 0..flows {
        enc.clear();
        put_dump_entry(&mut enc, i);
        if current.len() + enc.as_bytes().len() > MAX_DATAGRAM {
            datagrams.push(std::mem::replace(
                &mut current,
                Vec::with_capacity(MAX_DATAGRAM),
            ));
        }
        let start = current.len();
        current.extend_from_slice(enc.as_bytes());
        set_portid(&mut current[start..]);
    }
    // NLMSG_DONE: nlmsghdr + the dump's final status (0), in the last batch if it fits.
    let mut done = Vec::with_capacity(20);
    done.extend_from_slice(&20u32.to_ne_bytes());
    done.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    done.extend_from_slice(&NLM_F_MULTI.to_ne_bytes());
    done.extend_from_slice(&SEQ.to_ne_bytes());
    done.extend_from_slice(&PORTID.to_ne_bytes());
    done.extend_from_slice(&0i32.to_ne_bytes());
    if current.len() + done.len() > MAX_DATAGRAM {
        datagrams.push(std::mem::take(&mut current));
    }
    current.extend_from_slice(&done);
    datagrams.push(current);
    datagrams
}

const FLOW_MESSAGE: u16 = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW as u16;

/// The message walk only: frames every message, touches each payload's length.
fn walk(datagrams: &[Vec<u8>]) -> usize {
    let mut flows = 0;
    for datagram in datagrams {
        for message in Messages::new(datagram) {
            let message = message.expect("generated buffers frame");
            if message.kind == FLOW_MESSAGE {
                black_box(message.payload.len());
                flows += 1;
            }
        }
    }
    flows
}

fn borrowed(datagrams: &[Vec<u8>]) -> usize {
    let mut flows = 0;
    for datagram in datagrams {
        for message in Messages::new(datagram) {
            let message = message.expect("generated buffers frame");
            if message.kind == FLOW_MESSAGE {
                let flow = decode_flow(message.payload).expect("generated flows decode");
                black_box(&flow);
                flows += 1;
            }
        }
    }
    flows
}

fn owned(datagrams: &[Vec<u8>]) -> usize {
    let mut flows = 0;
    for datagram in datagrams {
        for message in Messages::new(datagram) {
            let message = message.expect("generated buffers frame");
            if message.kind == FLOW_MESSAGE {
                let flow = decode_flow(message.payload)
                    .expect("generated flows decode")
                    .to_owned_flow();
                black_box(flow);
                flows += 1;
            }
        }
    }
    flows
}

/// The typed parse of `netlink-packet-netfilter` on the same messages.
fn netlink_packet_netfilter(datagrams: &[Vec<u8>]) -> usize {
    let mut flows = 0;
    for datagram in datagrams {
        let mut messages = Messages::new(datagram);
        loop {
            let start = messages.position();
            let Some(message) = messages.next() else {
                break;
            };
            let message = message.expect("generated buffers frame");
            if message.kind == FLOW_MESSAGE {
                let bytes = &datagram[start..start + NLMSG_HDRLEN + message.payload.len()];
                let parsed = NetlinkMessage::<NetfilterMessage>::deserialize(bytes)
                    .expect("netlink-packet-netfilter parses generated flows");
                black_box(parsed);
                flows += 1;
            }
        }
    }
    flows
}

type Path = fn(&[Vec<u8>]) -> usize;

const PATHS: [(&str, Path); 4] = [
    ("walk", walk),
    ("borrowed", borrowed),
    ("owned", owned),
    ("netlink_packet_netfilter", netlink_packet_netfilter),
];

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for flows in [10_000u32, 100_000] {
        let datagrams = dump_datagrams(flows);
        let bytes: usize = datagrams.iter().map(Vec::len).sum();
        eprintln!(
            "{flows} flows: {} datagrams, {bytes} bytes ({:.1} bytes per flow)",
            datagrams.len(),
            bytes as f64 / f64::from(flows)
        );
        for (name, path) in PATHS {
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            assert_eq!(path(&datagrams), flows as usize, "{name} saw every flow");
            let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
            eprintln!(
                "  {name}: {:.2} heap allocations per flow",
                allocations as f64 / f64::from(flows)
            );
        }
        group.throughput(Throughput::Elements(u64::from(flows)));
        for (name, path) in PATHS {
            group.bench_with_input(BenchmarkId::new(name, flows), &datagrams, |b, datagrams| {
                b.iter(|| path(black_box(datagrams)))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = decode
}
criterion_main!(benches);

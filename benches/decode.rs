// SPDX-License-Identifier: MIT OR Apache-2.0
//! Decode cost per flow, from in-memory dump buffers (no kernel, no socket).
//!
//! The buffers hold exactly the flows `fill --mix` creates (the same
//! `conntrack::testing::mix` builds both), encoded by the library in the shape
//! the kernel dumps them (attribute order
//! and sizes checked against a real 6.18 dump: `ORIG, REPLY, [ZONE], STATUS,
//! MARK, ID, USE, TIMEOUT, [PROTOINFO], SYNPROXY`; 192–288 bytes per message),
//! packed like the kernel packs them: `NLM_F_MULTI` messages in datagrams of at
//! most 32 448 bytes (`SKB_WITH_OVERHEAD(32768)`, docs/ctnetlink.md §7.2), then
//! `NLMSG_DONE`.
//!
//! Before anything is timed, the layout of generated entries (every attribute's
//! type, length and nesting) is checked against two captured kernel dumps in
//! `tests/fixtures/` (a ctnetlink-created TCP and UDP flow); the bench stops if
//! they differ.
//!
//! Benchmarks, per table size (10k, 100k and 1M flows), `Throughput::Elements(flows)`:
//! * `walk`: the message walk only ([`Messages`]), the floor of any decoder;
//! * `borrowed`: [`conntrack::decode_flow`] per message (the `Dump::next_flow` path);
//! * `owned`: the same plus `.to_owned_flow()` (the `Conntrack::flows` path);
//! * `census`: `borrowed` plus the consumer side of the doctor's
//!   [`conntrack::Conntrack::census`]: the same four [`GroupTally`]s (source;
//!   protocol and destination port; protocol; TCP state) and an [`OrphanScan`]
//!   with the default policy and the kernel's default timeouts, finished with
//!   the doctor's top-N. Its cost minus `borrowed` is the census cost per flow;
//! * `netlink_packet_netfilter`: the typed parse of the same messages by
//!   `NetlinkMessage::<NetfilterMessage>::deserialize`, for comparison.
//!
//! Before measuring, it counts heap allocations per flow of each path with a
//! counting global allocator and prints them (DESIGN.md: zero on the borrowed path).
//!
//! ```text
//! CARGO_TARGET_DIR=... cargo bench -p conntrack-rs --bench decode -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Instruction counts (load-independent), one path over N flows under callgrind,
//! counting only inside that path's function (`walk`, `borrowed`, `owned`,
//! `census`, `netlink_packet_netfilter`):
//!
//! ```text
//! CONNTRACK_DECODE_ONCE=borrowed:100000 valgrind --tool=callgrind \
//!     --toggle-collect='decode::borrowed' target/release/deps/decode-<hash>
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use conntrack::consts::*;
use conntrack::fuzzing::encode_dump_entry;
use conntrack::sysctl::Timeouts;
use conntrack::testing::mix;
use conntrack::wire::{Encoder, Messages};
use conntrack::{
    decode_flow, FlowId, FlowRef, FlowSpec, GroupBy, GroupTally, OrphanPolicy, OrphanScan,
    ProtoInfo, Status, TcpFlags, TcpState, Tuple,
};
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use netlink_packet_core::NetlinkMessage;
use netlink_packet_netfilter::NetfilterMessage;

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

/// Decodes every flow message (borrowed) and hands the view to `consume`.
#[inline(always)]
fn each_flow(datagrams: &[Vec<u8>], mut consume: impl FnMut(&FlowRef<'_>)) -> usize {
    let mut flows = 0;
    for datagram in datagrams {
        for message in Messages::new(datagram) {
            let message = message.expect("generated buffers frame");
            if message.kind == FLOW_MESSAGE {
                let flow = decode_flow(message.payload).expect("generated flows decode");
                consume(&flow);
                flows += 1;
            }
        }
    }
    flows
}

fn borrowed(datagrams: &[Vec<u8>]) -> usize {
    each_flow(datagrams, |flow| {
        black_box(flow);
    })
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

/// The groupings of `examples/doctor.rs` (`--top 5`): keys and top-N.
const DOCTOR_GROUPINGS: [(&[GroupBy], usize); 4] = [
    (&[GroupBy::Source], 5),
    (&[GroupBy::Protocol, GroupBy::DestinationPort], 5),
    (&[GroupBy::Protocol], 8),
    (&[GroupBy::TcpState], usize::MAX),
];

/// The consumer side of the doctor's census on borrowed flows: four tallies
/// and an orphan scan per flow, then the top-N of each tally.
fn census(datagrams: &[Vec<u8>]) -> usize {
    let mut tallies: Vec<GroupTally> = DOCTOR_GROUPINGS
        .iter()
        .map(|(keys, _)| GroupTally::new(keys).expect("keys"))
        .collect();
    let policy = OrphanPolicy::new();
    let mut scan = OrphanScan::new(&policy, Timeouts::kernel_defaults());
    let flows = each_flow(datagrams, |flow| {
        for tally in &mut tallies {
            tally.add(flow);
        }
        black_box(scan.observe(flow));
    });
    for (tally, (_, top)) in tallies.into_iter().zip(DOCTOR_GROUPINGS) {
        black_box(tally.finish(top));
    }
    black_box(scan.counts());
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

const PATHS: [(&str, Path); 5] = [
    ("walk", walk),
    ("borrowed", borrowed),
    ("owned", owned),
    ("census", census),
    ("netlink_packet_netfilter", netlink_packet_netfilter),
];

/// The shape of a message: `(depth, attribute type, nla_len)` of every
/// attribute, nests walked, values ignored.
fn layout(message: &[u8]) -> Vec<(usize, u16, u16)> {
    fn walk(mut attrs: &[u8], depth: usize, out: &mut Vec<(usize, u16, u16)>) {
        while attrs.len() >= 4 {
            let len = u16::from_ne_bytes([attrs[0], attrs[1]]);
            let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
            let end = usize::from(len).clamp(4, attrs.len());
            out.push((depth, kind & NLA_TYPE_MASK, len));
            if kind & NLA_F_NESTED != 0 {
                walk(&attrs[4..end], depth + 1, out);
            }
            attrs = &attrs[((end + 3) & !3).min(attrs.len())..];
        }
    }
    let mut out = Vec::new();
    walk(&message[NLMSG_HDRLEN + NFGENMSG_LEN..], 0, &mut out);
    out
}

/// The one message of a `tests/fixtures/*.hex` capture (`#` lines are comments).
fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let hex: String = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(|line| line.split_whitespace())
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex fixture"))
        .collect()
}

/// Checks generated entries against kernel captures of the same flows
/// (`conntrack -I` in a throwaway namespace, see the fixtures' headers).
fn check_against_captures() {
    let tcp = FlowSpec::new(Tuple::tcp(([10, 0, 0, 1], 1111), ([10, 0, 0, 2], 80)))
        .timeout(3600)
        .tcp_state(TcpState::Established)
        .status(Status::SEEN_REPLY | Status::ASSURED);
    let udp = FlowSpec::new(Tuple::udp(([192, 0, 2, 1], 5353), ([192, 0, 2, 2], 53))).timeout(30);
    for (name, spec) in [("tcp_ipv4_established", tcp), ("udp_ipv4", udp)] {
        let captured = fixture(name);
        let mut enc = Encoder::new();
        let mut spec = spec;
        if let Some(ProtoInfo::Tcp(tcp)) = &mut spec.protoinfo {
            // The capture's protoinfo has every TCP field (values do not matter).
            tcp.wscale_orig = Some(0);
            tcp.wscale_reply = Some(0);
            tcp.flags_orig = Some((TcpFlags::empty(), TcpFlags::empty()));
            tcp.flags_reply = Some((TcpFlags::empty(), TcpFlags::empty()));
        }
        encode_dump_entry(&mut enc, &spec, SEQ, FlowId([0; 4]));
        assert_eq!(
            layout(enc.as_bytes()),
            layout(&captured),
            "generated {name} entry differs in layout from the kernel capture"
        );
        assert_eq!(enc.as_bytes().len(), captured.len(), "{name} size");
        let (ours, kernel) = (
            decode_flow(&enc.as_bytes()[NLMSG_HDRLEN..]).expect("generated entry decodes"),
            decode_flow(&captured[NLMSG_HDRLEN..]).expect("capture decodes"),
        );
        assert_eq!(
            (ours.orig, ours.reply),
            (kernel.orig, kernel.reply),
            "{name} tuples"
        );
    }
    eprintln!("generated entries match the layout of the kernel captures");
}

fn decode(c: &mut Criterion) {
    check_against_captures();
    let mut group = c.benchmark_group("decode");
    for flows in [10_000u32, 100_000, 1_000_000] {
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
        // 1M flows take 0.1-1 s per pass: criterion's minimum of 10 samples.
        group.sample_size(if flows >= 1_000_000 { 10 } else { 20 });
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

/// `CONNTRACK_DECODE_ONCE=<path>:<flows>`: builds the buffers, runs one path
/// once and exits, for instruction counts under callgrind (see the module docs).
fn decode_once(spec: &str) {
    let (name, flows) = spec
        .split_once(':')
        .expect("CONNTRACK_DECODE_ONCE=<path>:<flows>");
    let flows: u32 = flows.parse().expect("a number of flows");
    let (_, path) = PATHS
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("unknown path {name:?}"));
    let datagrams = dump_datagrams(flows);
    assert_eq!(path(black_box(&datagrams)), flows as usize);
    eprintln!("{name}: decoded {flows} flows once");
}

fn main() {
    match std::env::var("CONNTRACK_DECODE_ONCE") {
        Ok(spec) => decode_once(&spec),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}

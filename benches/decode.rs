// SPDX-License-Identifier: MIT OR Apache-2.0
//! Decode cost per flow, from in-memory dump buffers (no kernel, no socket).
//!
//! The buffers are built with the library's own [`Encoder`] in the exact shape
//! the kernel dumps flows created by `examples/fill.rs --mix` (attribute order
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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};

use conntrack::consts::*;
use conntrack::decode_flow;
use conntrack::wire::{Encoder, Messages};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
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

/// The layer-4 part of a generated tuple.
#[derive(Clone, Copy)]
enum L4 {
    /// Source and destination ports.
    Ports(u16, u16),
    /// ICMP identifier and type (code 0).
    Icmp(u16, u8),
}

/// Encodes a tuple nest the way the kernel dumps it (mirrors `request.rs`).
fn put_tuple(enc: &mut Encoder, kind: u16, addresses: (IpAddr, IpAddr), protocol: u8, l4: L4) {
    let outer = enc.nest(kind);
    let ip = enc.nest(CTA_TUPLE_IP);
    match addresses {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            enc.bytes(CTA_IP_V4_SRC, &src.octets());
            enc.bytes(CTA_IP_V4_DST, &dst.octets());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            enc.bytes(CTA_IP_V6_SRC, &src.octets());
            enc.bytes(CTA_IP_V6_DST, &dst.octets());
        }
        _ => unreachable!("generated tuples have one family"),
    }
    enc.end_nest(ip);
    let proto = enc.nest(CTA_TUPLE_PROTO);
    enc.u8(CTA_PROTO_NUM, protocol);
    match l4 {
        L4::Ports(src, dst) => {
            enc.be16(CTA_PROTO_SRC_PORT, src);
            enc.be16(CTA_PROTO_DST_PORT, dst);
        }
        L4::Icmp(id, icmp_type) if protocol == IPPROTO_ICMPV6 => {
            enc.be16(CTA_PROTO_ICMPV6_ID, id);
            enc.u8(CTA_PROTO_ICMPV6_TYPE, icmp_type);
            enc.u8(CTA_PROTO_ICMPV6_CODE, 0);
        }
        L4::Icmp(id, icmp_type) => {
            enc.be16(CTA_PROTO_ICMP_ID, id);
            enc.u8(CTA_PROTO_ICMP_TYPE, icmp_type);
            enc.u8(CTA_PROTO_ICMP_CODE, 0);
        }
    }
    enc.end_nest(proto);
    enc.end_nest(outer);
}

fn v4(base: [u8; 4], i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(u32::from_be_bytes(base).wrapping_add(i)))
}

fn v6(net: u16, i: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        net,
        0,
        0,
        0,
        (i >> 16) as u16,
        i as u16,
    ))
}

/// Appends dump entry `i` of the mix (the same proportions as `fill --mix`):
/// 55 % TCP (ESTABLISHED, SYN_SENT, TIME_WAIT; a fifth IPv6; some NAT-like),
/// 35 % UDP, 10 % ICMP/ICMPv6; marks on one flow in seven, zones on one in fifty.
fn put_dump_entry(enc: &mut Encoder, i: u32) {
    const TCP_ESTABLISHED: u8 = 3;
    const TCP_SYN_SENT: u8 = 1;
    const TCP_TIME_WAIT: u8 = 7;
    let port = 1024 + (i % 60000) as u16;
    let kind = i % 20;
    let ipv6 = matches!(kind, 9 | 10 | 16 | 17 | 19);
    let (client, server) = if ipv6 {
        (v6(1, i), v6(2, i % 200))
    } else {
        (v4([10, 0, 0, 1], i), v4([198, 51, 100, 1], i % 200))
    };
    let (protocol, tcp_state, service) = match kind {
        0..=6 | 9 | 10 => (IPPROTO_TCP, Some(TCP_ESTABLISHED), 443),
        7 => (IPPROTO_TCP, Some(TCP_SYN_SENT), 22),
        8 => (IPPROTO_TCP, Some(TCP_TIME_WAIT), 443),
        11..=13 | 16 | 17 => (IPPROTO_UDP, None, 53),
        14 | 15 => (IPPROTO_UDP, None, 123),
        18 => (IPPROTO_ICMP, None, 0),
        _ => (IPPROTO_ICMPV6, None, 0),
    };
    // CONFIRMED, plus SEEN_REPLY | ASSURED for answered flows.
    let status: u32 = match kind {
        7 | 14 | 15 | 19 => 0x8,
        _ => 0xe,
    };
    let family = if ipv6 { AF_INET6 } else { AF_INET };
    let m = enc.begin(IPCTNL_MSG_CT_NEW, NLM_F_MULTI, SEQ, family, NFNETLINK_V0);
    let (orig_l4, reply_l4) = match protocol {
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            let (request, reply) = if ipv6 { (128, 129) } else { (8, 0) };
            let id = i as u16;
            (L4::Icmp(id, request), L4::Icmp(id, reply))
        }
        _ => (L4::Ports(port, service), L4::Ports(service, port)),
    };
    // Kind 6 looks masqueraded: the reply goes to another address.
    let reply_dst = if kind == 6 {
        v4([100, 64, 0, 1], i)
    } else {
        client
    };
    put_tuple(enc, CTA_TUPLE_ORIG, (client, server), protocol, orig_l4);
    put_tuple(
        enc,
        CTA_TUPLE_REPLY,
        (server, reply_dst),
        protocol,
        reply_l4,
    );
    if i % 50 == 0 {
        enc.be16(CTA_ZONE, 1 + (i / 50 % 3) as u16);
    }
    enc.be32(CTA_STATUS, status);
    enc.be32(CTA_MARK, if i % 7 == 0 { 1 + i % 16 } else { 0 });
    enc.be32(CTA_ID, i.wrapping_mul(0x9e37_79b9));
    enc.be32(CTA_USE, 1);
    enc.be32(CTA_TIMEOUT, 3599);
    if let Some(state) = tcp_state {
        let info = enc.nest(CTA_PROTOINFO);
        let tcp = enc.nest(CTA_PROTOINFO_TCP);
        enc.u8(CTA_PROTOINFO_TCP_STATE, state);
        enc.u8(CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, 7);
        enc.u8(CTA_PROTOINFO_TCP_WSCALE_REPLY, 7);
        enc.bytes(CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, &[0x23, 0]);
        enc.bytes(CTA_PROTOINFO_TCP_FLAGS_REPLY, &[0x23, 0]);
        enc.end_nest(tcp);
        enc.end_nest(info);
    }
    // The kernel adds the synproxy extension to every ctnetlink-created flow.
    let synproxy = enc.nest(CTA_SYNPROXY);
    enc.be32(CTA_SYNPROXY_ISN, 0);
    enc.be32(CTA_SYNPROXY_ITS, 0);
    enc.be32(CTA_SYNPROXY_TSOFF, 0);
    enc.end_nest(synproxy);
    enc.end(m);
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

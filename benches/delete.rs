// SPDX-License-Identifier: MIT OR Apache-2.0
//! Deleting 10 % of a 100k-flow table, through each delete path, against the
//! real kernel.
//!
//! Root only; otherwise it prints one line saying why it skipped. A throwaway
//! namespace (deleted on drop, also on panic) holds flows 0..100 000 of `fill
//! --mix`, created through the library; the victims are every tenth flow
//! (10 000 flows, IPv4 and IPv6, TCP, UDP and ICMP), each with its own source
//! address and, only for this bench, the mark `0xde1e7e`, so that a set filter
//! and a single-value filter select exactly the same flows. Each iteration
//! deletes them (timed) and then re-creates them (not timed: `iter_custom`),
//! checking the table size both times. `Throughput::Elements(10 000)`:
//!
//! * `set_dump_and_delete`: `delete_matching(Filter::new().src_any(victims))`,
//!   a source-address set, which no kernel evaluates: the library's
//!   `DeletePath::DumpAndDelete` (one streaming dump, pipelined deletes),
//!   with the default `Prefetch::Auto` (the dump received on a prefetch
//!   thread); `set_dump_and_delete_one_thread`: the same with
//!   `Prefetch::Never`;
//! * `mark_kernel_flush`: `delete_matching(Filter::new().mark(0xde1e7e))`, a
//!   single value the kernel evaluates itself: `DeletePath::KernelFlush` (one
//!   filtered flush request, no dump);
//! * `raw_dump_and_delete`: the limit for the set shape, without the library:
//!   a `netlink-sys` dump whose messages are not decoded, only scanned for the
//!   original source address (looked up in a hash set); a match's original
//!   tuple, zone and id attributes are copied verbatim into a delete message,
//!   128 per datagram with an ACK on the last, as the library batches them;
//! * `conntrack_cli_mark`: `ip netns exec NS conntrack -D -m 0xde1e7e`
//!   (conntrack-tools, output to /dev/null), the reference DESIGN.md compares
//!   with; includes starting two processes (a few ms).
//!
//! Before criterion's measurements, the paths also run interleaved
//! (`CONNTRACK_BENCH_ROUNDS`, default 5, rounds of each in turn, so that load
//! from elsewhere hits them alike) and the medians and ratios to
//! `raw_dump_and_delete` are printed: the figures to read on a noisy machine.
//!
//! ```text
//! sudo CARGO_TARGET_DIR=... cargo bench -p conntrack-rs --bench delete
//! ```

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conntrack::consts::*;
use conntrack::testing::mix;
use conntrack::testing::raw::{self, RawSocket};
use conntrack::testing::scratch::{is_root, ScratchNs};
use conntrack::{AddrHasher, Conntrack, DeleteOptions, DeletePath, Filter, Prefetch};
use criterion::{BenchmarkId, Criterion, Throughput};

const FLOWS: u32 = 100_000;
const VICTIMS: u32 = FLOWS / 10;
const VICTIM_MARK: u32 = 0x00de_1e7e;
/// Deletes per datagram, as the library sends them.
const BATCH: usize = 128;

fn is_victim(i: u32) -> bool {
    i % 10 == 0
}

fn spec(i: u32) -> conntrack::FlowSpec {
    let spec = mix::mixed_flow(i).timeout(3600);
    if is_victim(i) {
        spec.mark(VICTIM_MARK)
    } else {
        spec
    }
}

/// Creates flows `i` of `range` that `which` selects.
fn create(ct: &mut Conntrack, range: std::ops::Range<u32>, which: impl Fn(u32) -> bool) {
    for i in range.filter(|&i| which(i)) {
        ct.create(&spec(i))
            .unwrap_or_else(|e| panic!("create flow {i}: {e}"));
    }
}

/// Source addresses as the raw loop compares them: (is IPv6, address bits).
type Keys = HashSet<(bool, u128), BuildHasherDefault<AddrHasher>>;

fn v4_key(octets: [u8; 4]) -> (bool, u128) {
    (false, u128::from(u32::from_be_bytes(octets)))
}

fn v6_key(octets: [u8; 16]) -> (bool, u128) {
    (true, u128::from_be_bytes(octets))
}

/// The raw dump-and-delete loop (see the module docs). Returns flows deleted.
fn raw_dump_and_delete(dump: &mut RawSocket, del: &mut RawSocket, victims: &Keys) -> u64 {
    let mut batch: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut pending = 0usize;
    let mut last = (0usize, 0u32); // (offset, seq) of the last delete in the batch
    let mut deleted = 0u64;
    let flush =
        |del: &mut RawSocket, batch: &mut Vec<u8>, pending: &mut usize, last: (usize, u32)| {
            if *pending == 0 {
                return 0;
            }
            // ACK on the last message only: its arrival ends the batch.
            let flags = u16::from_ne_bytes([batch[last.0 + 6], batch[last.0 + 7]]) | NLM_F_ACK;
            batch[last.0 + 6..last.0 + 8].copy_from_slice(&flags.to_ne_bytes());
            del.send(batch).expect("send deletes");
            let mut errors = 0u64;
            'acks: loop {
                for message in raw::messages(del.recv().expect("receive acks")) {
                    let message = message.expect("ack");
                    if message.error_code().is_some_and(|code| code != 0) {
                        errors += 1;
                    }
                    if message.seq == last.1 {
                        break 'acks;
                    }
                }
            }
            let done = *pending as u64 - errors;
            *pending = 0;
            batch.clear();
            done
        };
    dump.start_dump().expect("start dump");
    dump.receive_until_end(|message| {
        if message.kind != ct_msg_type(IPCTNL_MSG_CT_NEW) {
            return;
        }
        let message = message.bytes;
        let family = message[NLMSG_HDRLEN];
        let (mut orig, mut zone, mut id): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
        let mut attrs = &message[NLMSG_HDRLEN + NFGENMSG_LEN..];
        while attrs.len() >= NLA_HDRLEN {
            let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
            let padded = ((len + 3) & !3).min(attrs.len());
            match u16::from_ne_bytes([attrs[2], attrs[3]]) & NLA_TYPE_MASK {
                CTA_TUPLE_ORIG => orig = &attrs[..padded],
                CTA_ZONE => zone = &attrs[..padded],
                CTA_ID => id = &attrs[..padded],
                _ => {}
            }
            attrs = &attrs[padded..];
        }
        // CTA_TUPLE_ORIG > CTA_TUPLE_IP (first) > source address (first).
        let key = match orig.get(8..12).map(|h| u16::from_ne_bytes([h[2], h[3]])) {
            Some(CTA_IP_V4_SRC) => v4_key(orig[12..16].try_into().expect("v4")),
            Some(CTA_IP_V6_SRC) => v6_key(orig[12..28].try_into().expect("v6")),
            _ => return,
        };
        if !victims.contains(&key) {
            return;
        }
        let seq = del.next_seq();
        let start = batch.len();
        let size = NLMSG_HDRLEN + NFGENMSG_LEN + orig.len() + zone.len() + id.len();
        batch.extend_from_slice(&(size as u32).to_ne_bytes());
        batch.extend_from_slice(&ct_msg_type(IPCTNL_MSG_CT_DELETE).to_ne_bytes());
        batch.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        batch.extend_from_slice(&seq.to_ne_bytes());
        batch.extend_from_slice(&0u32.to_ne_bytes());
        batch.extend_from_slice(&[family, NFNETLINK_V0, 0, 0]);
        batch.extend_from_slice(orig);
        batch.extend_from_slice(zone);
        batch.extend_from_slice(id);
        pending += 1;
        last = (start, seq);
        if pending >= BATCH {
            deleted += flush(del, &mut batch, &mut pending, last);
        }
    })
    .expect("dump");
    deleted + flush(del, &mut batch, &mut pending, last)
}

/// The delete paths; the first is the baseline of the ratios.
const PATHS: [&str; 5] = [
    "raw_dump_and_delete",
    "set_dump_and_delete",
    "set_dump_and_delete_one_thread",
    "mark_kernel_flush",
    "conntrack_cli_mark",
];

fn delete(c: &mut Criterion) {
    let ns = ScratchNs::new("bench-delete");
    let mut ct = ns.conntrack();
    let started = Instant::now();
    create(&mut ct, 0..FLOWS, |_| true);
    eprintln!(
        "filled {FLOWS} flows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(ct.count().expect("count"), FLOWS);
    let sources: Vec<IpAddr> = (0..FLOWS)
        .filter(|&i| is_victim(i))
        .map(|i| spec(i).orig.src)
        .collect();
    let keys: Keys = sources
        .iter()
        .map(|addr| match addr {
            IpAddr::V4(v4) => v4_key(v4.octets()),
            IpAddr::V6(v6) => v6_key(v6.octets()),
        })
        .collect();
    let set = Filter::new().src_any(sources.iter().copied());
    let mark = Filter::new().mark(VICTIM_MARK);
    let netns = ns.file();
    let mut dump_socket = RawSocket::open(Some(&netns)).expect("raw netlink socket");
    let mut delete_socket = RawSocket::open(Some(&netns)).expect("raw netlink socket");
    dump_socket.warm_up().expect("GET_STATS round trip");

    // One way to delete the victims; returns how many were deleted.
    let mut delete_with = |ct: &mut Conntrack, path: &str| -> u64 {
        match path {
            "set_dump_and_delete" | "set_dump_and_delete_one_thread" | "mark_kernel_flush" => {
                let (filter, expected) = if path == "mark_kernel_flush" {
                    (&mark, DeletePath::KernelFlush)
                } else {
                    (&set, DeletePath::DumpAndDelete)
                };
                ct.set_prefetch(if path == "set_dump_and_delete_one_thread" {
                    Prefetch::Never
                } else {
                    Prefetch::Auto
                });
                let report = ct
                    .delete_matching(filter, DeleteOptions::default())
                    .expect("delete_matching");
                assert_eq!(report.path, expected, "{path}");
                report.deleted
            }
            "raw_dump_and_delete" => {
                raw_dump_and_delete(&mut dump_socket, &mut delete_socket, &keys)
            }
            _ => {
                let status = Command::new("ip")
                    .args(["netns", "exec", &ns.name, "conntrack", "-D", "-m"])
                    .arg(VICTIM_MARK.to_string())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("run conntrack (apt install conntrack)");
                assert!(status.success(), "conntrack -D failed: {status}");
                u64::from(VICTIMS)
            }
        }
    };

    // One timed deletion of the victims, checked, then their re-creation.
    let mut timed = |ct: &mut Conntrack, path: &str| -> Duration {
        let started = Instant::now();
        let deleted = delete_with(ct, path);
        let elapsed = started.elapsed();
        assert_eq!(deleted, u64::from(VICTIMS), "{path} deleted the victims");
        assert_eq!(ct.count().expect("count"), FLOWS - VICTIMS, "{path}");
        create(ct, 0..FLOWS, is_victim);
        assert_eq!(ct.count().expect("count"), FLOWS, "refilled");
        elapsed
    };

    // Interleaved rounds: medians and the ratio to the raw loop.
    let rounds = std::env::var("CONNTRACK_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5usize);
    let mut times = vec![Vec::new(); PATHS.len()];
    for _ in 0..rounds {
        for (i, path) in PATHS.iter().enumerate() {
            times[i].push(timed(&mut ct, path));
        }
    }
    let medians: Vec<Duration> = times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect();
    let line: Vec<String> = PATHS
        .iter()
        .zip(&medians)
        .map(|(path, m)| {
            format!(
                "{path} {:.1} ms ({:.3}x)",
                m.as_secs_f64() * 1e3,
                m.as_secs_f64() / medians[0].as_secs_f64()
            )
        })
        .collect();
    eprintln!("median of {rounds} interleaved rounds: {}", line.join(", "));

    let mut group = c.benchmark_group("delete_10pct_of_100k");
    group.throughput(Throughput::Elements(u64::from(VICTIMS)));
    group.sample_size(10);
    for path in PATHS {
        group.bench_function(BenchmarkId::new(path, FLOWS), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| timed(&mut ct, path)).sum())
        });
    }
    group.finish();
}

fn main() {
    if !is_root() {
        println!("delete: skipped: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces");
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    delete(&mut criterion);
    criterion.final_summary();
}

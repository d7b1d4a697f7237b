// SPDX-License-Identifier: MIT OR Apache-2.0
//! The dump path against the real kernel, measured against the kernel's own cost.
//!
//! Root only (namespaces, ctnetlink); otherwise it prints one line saying why it
//! skipped and exits successfully. It builds a throwaway namespace (`ip netns
//! add`, loopback up, an nftables `ct state` rule), fills it through the
//! library with the flows of `fill --mix` (the same `conntrack::testing::mix`,
//! created one by one with `Conntrack::create` as `fill` does) to 10k, then
//! 100k, then 250k flows, and at each size measures, with
//! `Throughput::Elements(flows)`:
//!
//! * `raw_drain`: a `netlink-sys` socket that receives the dump and counts
//!   messages without decoding them (like `examples/drain.rs`): the kernel's
//!   cost, the physical limit;
//! * `borrowed`: `Conntrack::dump` + `Dump::next_flow` (zero-copy views),
//!   received on the calling thread (`Prefetch::Never`);
//! * `owned`: `Conntrack::flows` (an owned `Flow` per entry), likewise;
//! * `borrowed_prefetch`, `owned_prefetch`: the same with the datagrams
//!   received on the library's prefetch thread (`Prefetch::Always`; what
//!   the default `Prefetch::Auto` does from 4 096 flows), so that the
//!   kernel's work inside `recvmsg` overlaps with decoding;
//! * `count`: `Conntrack::count` (one `GET_STATS` round trip; its own group,
//!   no throughput: it does not depend on the table size).
//!
//! Both sockets are opened and warmed up once (a `GET_STATS` round trip, so
//! every dump batch is 32 KiB), as a long-lived handle is. Before criterion's
//! measurements, each size also runs the dump paths interleaved (so that
//! load from other processes hits them alike) and prints medians and the ratio
//! to raw drain, the figure that matters (DESIGN.md: <= 1.10 at 250k).
//!
//! The namespace is deleted when the bench ends, also on panic. 250k flows
//! stay below the default `nf_conntrack_max` (262144, a per-namespace limit
//! on the global sysctl, which this bench never changes). Other sizes:
//! `CONNTRACK_BENCH_SIZES=10000,100000,250000,1000000`; a size above the
//! limit stops the bench with a message saying so (raise the limit yourself,
//! on a machine where that is acceptable, and restore it afterwards).
//!
//! ```text
//! sudo CARGO_TARGET_DIR=... cargo bench -p conntrack-rs --bench live_dump
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use conntrack::testing::bench::{env_or, median};
use conntrack::testing::mix::create_mixed;
use conntrack::testing::raw::RawSocket;
use conntrack::testing::scratch::{is_root, ScratchNs};
use conntrack::{Conntrack, Prefetch};
use criterion::{BenchmarkId, Criterion, Throughput};

const SIZES: [u32; 3] = [10_000, 100_000, 250_000];

/// `CONNTRACK_BENCH_SIZES` (comma-separated, increasing), else [`SIZES`].
fn sizes() -> Vec<u32> {
    match std::env::var("CONNTRACK_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse().expect("CONNTRACK_BENCH_SIZES: numbers"))
            .collect(),
        Err(_) => SIZES.to_vec(),
    }
}
/// Interleaved rounds per size (`CONNTRACK_BENCH_ROUNDS` to change).
const ROUNDS: usize = 5;

fn rounds() -> usize {
    env_or("CONNTRACK_BENCH_ROUNDS", ROUNDS as u32) as usize
}

fn raw_drain(_: &mut Conntrack, raw: &mut RawSocket) -> u64 {
    raw.drain().expect("raw drain").messages
}

fn borrowed(ct: &mut Conntrack, _: &mut RawSocket) -> u64 {
    ct.set_prefetch(Prefetch::Never);
    borrowed_dump(ct)
}

fn borrowed_prefetch(ct: &mut Conntrack, _: &mut RawSocket) -> u64 {
    ct.set_prefetch(Prefetch::Always);
    borrowed_dump(ct)
}

fn owned(ct: &mut Conntrack, _: &mut RawSocket) -> u64 {
    ct.set_prefetch(Prefetch::Never);
    owned_dump(ct)
}

fn owned_prefetch(ct: &mut Conntrack, _: &mut RawSocket) -> u64 {
    ct.set_prefetch(Prefetch::Always);
    owned_dump(ct)
}

fn borrowed_dump(ct: &mut Conntrack) -> u64 {
    let mut n = 0;
    let mut dump = ct.dump().expect("dump");
    while let Some(flow) = dump.next_flow() {
        black_box(flow.expect("flow"));
        n += 1;
    }
    n
}

fn owned_dump(ct: &mut Conntrack) -> u64 {
    let mut n = 0;
    for flow in ct.flows().expect("dump") {
        black_box(flow.expect("flow"));
        n += 1;
    }
    n
}

type Path = fn(&mut Conntrack, &mut RawSocket) -> u64;

/// The dump paths; the first is the baseline of the ratios.
const PATHS: [(&str, Path); 5] = [
    ("raw_drain", raw_drain),
    ("borrowed", borrowed),
    ("owned", owned),
    ("borrowed_prefetch", borrowed_prefetch),
    ("owned_prefetch", owned_prefetch),
];

fn live_dump(c: &mut Criterion) {
    let ns = ScratchNs::new("bench-live");
    let mut ct = ns.conntrack();
    let mut raw = RawSocket::open(Some(&ns.file())).expect("raw netlink socket");
    raw.warm_up().expect("GET_STATS round trip");
    let mut filled = 0;
    let limit = ct.limit().expect("nf_conntrack_max");
    for flows in sizes() {
        assert!(
            flows < limit,
            "{flows} flows do not fit under nf_conntrack_max {limit} (a global sysctl this bench does not change)"
        );
        let started = Instant::now();
        create_mixed(&mut ct, filled..flows);
        eprintln!(
            "filled {} flows in {:.1} s",
            flows - filled,
            started.elapsed().as_secs_f64()
        );
        filled = flows;
        assert_eq!(ct.count().expect("count"), flows, "table size");

        // Interleaved rounds: medians and the ratio to raw drain.
        let mut times = vec![Vec::new(); PATHS.len()];
        let rounds = rounds();
        for _ in 0..rounds {
            for (i, &(name, path)) in PATHS.iter().enumerate() {
                let started = Instant::now();
                let seen = path(&mut ct, &mut raw);
                times[i].push(started.elapsed());
                assert_eq!(seen, u64::from(flows), "{name} saw every flow");
            }
        }
        let medians: Vec<Duration> = times.into_iter().map(median).collect();
        let base = medians[0].as_secs_f64();
        let line: Vec<String> = PATHS
            .iter()
            .zip(&medians)
            .map(|((name, _), m)| {
                format!(
                    "{name} {:.1} ms ({:.0} ns/flow, {:.3}x)",
                    m.as_secs_f64() * 1e3,
                    m.as_secs_f64() * 1e9 / f64::from(flows),
                    m.as_secs_f64() / base
                )
            })
            .collect();
        eprintln!(
            "{flows} flows, median of {rounds} interleaved rounds: {}",
            line.join(", ")
        );

        let mut group = c.benchmark_group("live_dump");
        group.throughput(Throughput::Elements(u64::from(flows)));
        group.sample_size(10);
        // About 1-2 us per flow: keep 10 samples within the measurement time.
        group.measurement_time(Duration::from_secs(u64::from(flows / 25_000).max(5)));
        for (name, path) in PATHS {
            group.bench_function(BenchmarkId::new(name, flows), |b| {
                b.iter(|| path(&mut ct, &mut raw))
            });
        }
        group.finish();

        let mut group = c.benchmark_group("count");
        group.bench_function(BenchmarkId::new("count", flows), |b| {
            b.iter(|| ct.count().expect("count"))
        });
        group.finish();
    }
}

fn main() {
    if !is_root() {
        println!("live_dump: skipped: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces");
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    live_dump(&mut criterion);
    criterion.final_summary();
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! The orphan scan with socket evidence against the plain (estimate-only)
//! scan, on the same 250k-flow table, against the real kernel.
//!
//! Root only; otherwise it prints one line saying why it skipped. A throwaway
//! namespace (deleted on drop) holds, created through the library:
//!
//! * 210 000 forwarded TCP `ESTABLISHED` flows (10.x to 192.0.2.x: no local end);
//! * 25 000 local TCP `ESTABLISHED` flows (127.0.0.1 to 127.0.0.1) without
//!   sockets: confirmed;
//! * the flows of 4 000 open loopback TCP connections (8 000 sockets), of
//!   10 000 closed ones (10 000 `TIME_WAIT` sockets, which hold no file
//!   descriptor: the fd limit here is 20 000), and 10 000 bound UDP sockets:
//!   28 000 local sockets in all, the `TIME_WAIT` ones made last (they last 60 s).
//!
//! Every flow is idle enough (thresholds at zero), so every flow is an orphan
//! candidate: the worst case for the evidence. `Throughput::Elements(flows)`:
//!
//! * `plain`: `count_orphans` with `SocketCheck::Off`;
//! * `confirmed`: `count_orphans` with `SocketCheck::Namespace` (addresses,
//!   the dump, the four inet_diag socket dumps, the evidence of each local
//!   candidate);
//! * `confirmed_only`: the same with `require_confirmation(true)`.
//!
//! Also prints the medians of interleaved rounds (7, or
//! `CONNTRACK_BENCH_ROUNDS`) and the ratio to `plain`, with the raw drain of
//! the same table (`drain`, the baseline) in the same rounds; then the
//! confirmed-only delete of the 25 000 dead flows (each read again, its
//! sockets looked up, then deleted: steps 4 to 6 of the `orphans` module
//! docs), re-created after each of 3 rounds, against deleting the same
//! flows by a filter.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use conntrack::testing::raw::RawSocket;
use conntrack::testing::scratch::{is_root, ScratchNs};
use conntrack::{
    proto, Conntrack, DeleteOptions, Filter, FlowSpec, OrphanPolicy, SocketCheck, Status, TcpState,
    Tuple,
};
use criterion::{BenchmarkId, Criterion, Throughput};

const FORWARDED: u32 = 210_000;
const LOCAL_DEAD: u32 = 25_000;
const TCP_CONNECTIONS: u32 = 4_000;
const TIME_WAIT: u32 = 10_000;
const UDP_SOCKETS: u32 = 10_000;

fn policy(check: SocketCheck, confirmed: bool) -> OrphanPolicy {
    OrphanPolicy::new()
        .idle_established(Duration::ZERO)
        .half_closed(Duration::ZERO)
        .unreplied(Duration::ZERO)
        .sockets(check)
        .require_confirmation(confirmed)
}

fn main() {
    if !is_root() {
        println!("confirmed_orphans: skipped: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces");
        return;
    }
    let ns = ScratchNs::new("bench-confirmed");
    let mut ct: Conntrack = ns.conntrack();
    let started = Instant::now();
    let replied = Status::SEEN_REPLY | Status::ASSURED;
    let established = |orig: Tuple| {
        FlowSpec::new(orig)
            .tcp_state(TcpState::Established)
            .status(replied)
            .timeout(400_000)
    };
    for i in 0..FORWARDED {
        let src = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
        let dst = [192, 0, 2, (i % 200) as u8];
        ct.create(&established(Tuple::tcp((src, 40000), (dst, 443))))
            .expect("create forwarded flow");
    }
    let dead: Vec<FlowSpec> = (0..LOCAL_DEAD)
        .map(|i| {
            established(Tuple::tcp(
                ([127, 0, 0, 1], 10_000 + (i % 50_000) as u16),
                (
                    [127, 0, 0, 1],
                    60_000 + (i / 50_000) as u16 + (i % 7) as u16,
                ),
            ))
        })
        .collect();
    for spec in &dead {
        ct.create(spec).expect("create local flow");
    }
    // Real sockets (kept open until the end of the bench).
    let file = ns.file();
    let (_listener, _tcp, _udp) = file
        .run(|| {
            let listener = TcpListener::bind("127.0.0.1:5000").expect("listen");
            let mut tcp = Vec::new();
            for _ in 0..TCP_CONNECTIONS {
                let client = TcpStream::connect("127.0.0.1:5000").expect("connect");
                let (server, _) = listener.accept().expect("accept");
                tcp.push((client, server));
            }
            let udp: Vec<UdpSocket> = (0..UDP_SOCKETS)
                .map(|i| UdpSocket::bind(("127.0.0.1", 20_000 + i as u16)).expect("bind"))
                .collect();
            // The client closes first: its end stays in TIME_WAIT, no fd held.
            for _ in 0..TIME_WAIT {
                let client = TcpStream::connect("127.0.0.1:5000").expect("connect");
                let (server, _) = listener.accept().expect("accept");
                drop(client);
                drop(server);
            }
            (listener, tcp, udp)
        })
        .expect("enter namespace");
    let flows = u64::from(ct.count().expect("count"));
    eprintln!(
        "filled {flows} flows and {} sockets in {:.1} s",
        TCP_CONNECTIONS * 2 + UDP_SOCKETS + TIME_WAIT,
        started.elapsed().as_secs_f64()
    );

    let paths: [(&str, OrphanPolicy); 3] = [
        ("plain", policy(SocketCheck::Off, false)),
        ("confirmed", policy(SocketCheck::Namespace, false)),
        ("confirmed_only", policy(SocketCheck::Namespace, true)),
    ];
    let counts = ct.count_orphans(&paths[1].1).expect("count");
    eprintln!("evidence: {counts:?}");
    assert_eq!(counts.confirmed, u64::from(LOCAL_DEAD), "{counts:?}");
    assert!(counts.alive >= u64::from(TCP_CONNECTIONS), "{counts:?}");

    // Interleaved rounds: the ratio that matters.
    let rounds: usize = std::env::var("CONNTRACK_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let mut times = vec![Vec::new(); paths.len() + 1];
    let mut raw = RawSocket::open(Some(&file)).expect("raw socket");
    raw.warm_up().expect("warm up");
    for _ in 0..rounds {
        for (k, (_, policy)) in paths.iter().enumerate() {
            let t = Instant::now();
            std::hint::black_box(ct.count_orphans(policy).expect("count"));
            times[k].push(t.elapsed().as_secs_f64());
        }
        let t = Instant::now();
        let drained = raw.drain().expect("drain");
        times[paths.len()].push(t.elapsed().as_secs_f64());
        assert_eq!(drained.messages, flows);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let plain = median(&mut times[0]);
    let drain = median(&mut times[paths.len()]);
    let names = paths.iter().map(|(name, _)| *name).chain(["drain"]);
    for (k, name) in names.enumerate() {
        let m = median(&mut times[k]);
        eprintln!(
            "median of {rounds}: {name:<15} {:8.2} ms  ratio to plain {:.2}  to the raw drain {:.2}",
            m * 1e3,
            m / plain,
            m / drain
        );
    }

    // Deletes of the dead flows: with proof, and by a filter naming them.
    let by_filter = Filter::new()
        .protocol(proto::TCP)
        .dst_ports(60_000..=60_006);
    let mut deletes = [Vec::new(), Vec::new()];
    for _ in 0..3 {
        for (k, deletes) in deletes.iter_mut().enumerate() {
            let t = Instant::now();
            let report = if k == 0 {
                ct.delete_orphans(&paths[2].1, DeleteOptions::default())
            } else {
                ct.delete_matching(&by_filter, DeleteOptions::default())
            }
            .expect("delete");
            deletes.push(t.elapsed().as_secs_f64());
            assert_eq!(report.deleted, u64::from(LOCAL_DEAD), "{report:?}");
            for spec in &dead {
                ct.create(spec).expect("re-create dead flow");
            }
        }
    }
    for (name, times) in ["confirmed_only delete", "filter delete"]
        .iter()
        .zip(&mut deletes)
    {
        let m = median(times);
        eprintln!(
            "median of 3: {name:<22} {:8.2} ms  {:6.1} us per deleted flow",
            m * 1e3,
            m * 1e6 / f64::from(LOCAL_DEAD)
        );
    }

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("orphan_scan");
    group.throughput(Throughput::Elements(flows));
    group.sample_size(10);
    for (name, policy) in &paths {
        group.bench_function(BenchmarkId::new(*name, flows), |b| {
            b.iter(|| ct.count_orphans(policy).expect("count"))
        });
    }
    group.finish();
    criterion.final_summary();
}

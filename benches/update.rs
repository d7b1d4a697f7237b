// SPDX-License-Identifier: MIT OR Apache-2.0
//! Bulk update beside delete: changing 10 % of a 250k-flow table by a set
//! filter (`update_matching`) against deleting the same flows
//! (`delete_matching`), on the real kernel.
//!
//! Root only; otherwise it prints one line saying why it skipped. A throwaway
//! namespace holds flows 0..`CONNTRACK_BENCH_FLOWS` (default 250 000) of
//! `fill --mix`, created through the library; the victims are every tenth
//! flow, selected by a set of their source addresses (which no kernel
//! evaluates: one streaming dump, the set checked in userspace, pipelined
//! requests). Paths, run interleaved for `CONNTRACK_BENCH_ROUNDS` (default 5)
//! rounds so that load from elsewhere hits them alike:
//!
//! * `update_mark`: `update_matching(set, FlowChange::new().mark_masked(round, 0xff))`;
//! * `update_mark_labels_timeout`: mark, a label and a timeout in one update;
//! * `delete`: `delete_matching(set)`, the flows re-created afterwards (not timed).
//!
//! Prints each path's median time, flows per second, and its ratio to
//! `delete`. Not a criterion bench: each run changes the table it measures.
//!
//! ```text
//! sudo CARGO_TARGET_DIR=... cargo bench -p conntrack-rs --bench update
//! ```

use std::net::IpAddr;
use std::time::{Duration, Instant};

use conntrack::testing::bench::{env_or, median};
use conntrack::testing::mix;
use conntrack::testing::scratch::{is_root, ScratchNs};
use conntrack::{Cidr, Conntrack, DeleteOptions, Filter, FlowChange, Labels};

fn is_victim(i: u32) -> bool {
    i % 10 == 0
}

fn main() {
    if !is_root() {
        println!("update: skipped: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces");
        return;
    }
    let flows = env_or("CONNTRACK_BENCH_FLOWS", 250_000);
    let rounds = env_or("CONNTRACK_BENCH_ROUNDS", 5);
    let ns = ScratchNs::new("bench-update");
    // Labels need a ruleset that uses them.
    ns.exec(&[
        "nft", "add", "rule", "inet", "ctrs", "out", "ct", "label", "127", "counter",
    ]);
    let mut ct: Conntrack = ns.conntrack();
    let specs: Vec<_> = (0..flows)
        .map(|i| mix::mixed_flow(i).timeout(3600))
        .collect();
    for spec in &specs {
        ct.create(spec).expect("create");
    }
    let victims: Vec<u32> = (0..flows).filter(|&i| is_victim(i)).collect();
    let sources: Vec<IpAddr> = victims
        .iter()
        .map(|&i| specs[i as usize].orig.src)
        .collect();
    let set = Filter::new().src_any(sources.iter().map(|&a| Cidr::from(a)));
    let expected = ct.count_matching(&set).expect("count");
    println!(
        "update: {flows} flows, {expected} selected by a set of {} source addresses",
        sources.len()
    );
    let mut times: [Vec<Duration>; 3] = Default::default();
    for round in 0..rounds {
        let change = FlowChange::new().mark_masked(round & 0xff, 0xff);
        let started = Instant::now();
        let report = ct
            .update_matching(&set, &change, DeleteOptions::default())
            .expect("update");
        times[0].push(started.elapsed());
        assert_eq!(report.updated, expected, "{report:?}");

        let change = FlowChange::new()
            .mark_masked((round + 1) & 0xff, 0xff)
            .add_labels(Labels::default().with(round % 64))
            .timeout(1800 + round);
        let started = Instant::now();
        let report = ct
            .update_matching(&set, &change, DeleteOptions::default())
            .expect("update");
        times[1].push(started.elapsed());
        assert_eq!(report.updated, expected, "{report:?}");

        let started = Instant::now();
        let report = ct
            .delete_matching(&set, DeleteOptions::default())
            .expect("delete");
        times[2].push(started.elapsed());
        assert_eq!(report.deleted, expected, "{report:?}");
        for &i in &victims {
            ct.create(&specs[i as usize]).expect("re-create");
        }
    }
    let delete = median(times[2].clone());
    for (name, times) in ["update_mark", "update_mark_labels_timeout", "delete"]
        .iter()
        .zip(times)
    {
        let m = median(times);
        println!(
            "{name:<28} median {:>8.1} ms  {:>9.0} flows/s  {:.2}x delete",
            m.as_secs_f64() * 1e3,
            expected as f64 / m.as_secs_f64(),
            m.as_secs_f64() / delete.as_secs_f64()
        );
    }
}

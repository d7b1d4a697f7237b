// SPDX-License-Identifier: MIT OR Apache-2.0
//! Dumps received on a prefetch thread ([`Prefetch`]) give exactly what the
//! calling thread gives on its own, stop their thread when abandoned, and
//! leave the handle usable; `Auto` picks the thread only for large tables.
//!
//! The tests of this binary take one lock: the abandoned-dump test counts the
//! process's prefetch threads, which another test's dump must not disturb.

mod common;

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::ScratchNs;
use conntrack::testing::mix::create_mixed;
use conntrack::{Conntrack, DeleteOptions, DeletePath, Filter, Flow, Prefetch, PREFETCH_MIN_FLOWS};

static SERIAL: Mutex<()> = Mutex::new(());

fn fill(ct: &mut Conntrack, flows: u32) {
    create_mixed(ct, 0..flows);
    assert_eq!(ct.count().unwrap(), flows);
}

/// Every flow of a dump (timeouts cleared), with the dump's summary.
fn dump_all(ct: &mut Conntrack, prefetch: Prefetch) -> (HashSet<Flow>, conntrack::DumpSummary) {
    ct.set_prefetch(prefetch);
    let mut flows = HashSet::new();
    let mut dump = ct.dump().unwrap();
    while let Some(flow) = dump.next_flow() {
        let flow = flow.unwrap_or_else(|e| panic!("{prefetch:?}: {e}"));
        // Timeouts tick down between dumps; everything else must agree.
        let mut owned: Flow = flow.to_owned_flow();
        owned.timeout = None;
        assert!(flows.insert(owned), "{prefetch:?}: flow twice");
    }
    (flows, dump.summary())
}

/// Threads of this process named like the prefetch thread.
fn prefetch_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == "conntrack-dump")
        .count()
}

#[test]
fn prefetched_dump_equals_the_inline_dump() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = ScratchNs::new("pf-equal");
    let mut ct = ns.conntrack();
    let flows = 12_000;
    fill(&mut ct, flows);

    let (inline, inline_summary) = dump_all(&mut ct, Prefetch::Never);
    let (threaded, threaded_summary) = dump_all(&mut ct, Prefetch::Always);
    let (auto, auto_summary) = dump_all(&mut ct, Prefetch::Auto);
    assert_eq!(inline.len(), flows as usize);
    assert!(inline == threaded, "the prefetched dump differs");
    assert!(inline == auto, "the Auto dump differs");

    assert!(!inline_summary.prefetched);
    assert!(threaded_summary.prefetched);
    assert!(
        auto_summary.prefetched,
        "{flows} flows >= {PREFETCH_MIN_FLOWS}: Auto prefetches"
    );
    for summary in [inline_summary, threaded_summary, auto_summary] {
        assert_eq!(summary.flows, u64::from(flows));
        assert_eq!(summary.decode_errors, 0);
        assert!(summary.complete && !summary.interrupted);
        // Same batches from the kernel either way (32 KiB skbs from the first).
        assert_eq!(summary.datagrams, inline_summary.datagrams);
        assert_eq!(summary.bytes, inline_summary.bytes);
        assert!(summary.first_datagram > 16 * 1024, "{summary:?}");
    }

    // The owned iterator and the filtered dump go through the same receiver.
    ct.set_prefetch(Prefetch::Always);
    assert_eq!(
        ct.flows().unwrap().filter(Result::is_ok).count(),
        flows as usize
    );
    let filter = Filter::new().dst_port(443);
    ct.set_prefetch(Prefetch::Never);
    let expected = ct
        .flows()
        .unwrap()
        .filter(|flow| filter.matches(&flow.as_ref().unwrap().as_ref_flow()))
        .count();
    ct.set_prefetch(Prefetch::Always);
    let mut matched = 0;
    let mut dump = ct.dump_filtered(&filter).unwrap();
    while let Some(flow) = dump.next_flow() {
        assert!(filter.matches(&flow.unwrap()));
        matched += 1;
    }
    assert_eq!(
        matched, expected,
        "filtered dump through the prefetch thread"
    );
    assert!(matched > 0);
}

#[test]
fn auto_reads_small_tables_on_the_calling_thread() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = ScratchNs::new("pf-small");
    let mut ct = ns.conntrack();
    fill(&mut ct, 100);
    let (flows, summary) = dump_all(&mut ct, Prefetch::Auto);
    assert_eq!(flows.len(), 100);
    assert!(
        !summary.prefetched,
        "100 flows < {PREFETCH_MIN_FLOWS}: no thread"
    );
    // An empty table through the thread: just NLMSG_DONE.
    let empty = ScratchNs::new("pf-empty");
    let mut ct = empty.conntrack();
    let (flows, summary) = dump_all(&mut ct, Prefetch::Always);
    assert!(flows.is_empty());
    assert!(summary.prefetched && summary.complete, "{summary:?}");
}

#[test]
fn abandoned_prefetched_dump_stops_its_thread_and_the_handle_goes_on() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = ScratchNs::new("pf-drop");
    let mut ct = ns.conntrack();
    let flows = 20_000;
    fill(&mut ct, flows);
    ct.set_prefetch(Prefetch::Always);
    for round in 0..3 {
        let mut dump = ct.dump().unwrap();
        for _ in 0..10 {
            dump.next_flow().unwrap().unwrap();
        }
        assert!(dump.summary().prefetched);
        assert!(prefetch_threads() >= 1, "the dump's thread is running");
        drop(dump);
        // The handle goes on at once: a request, then a whole dump.
        assert_eq!(ct.count().unwrap(), flows, "round {round}");
        assert_eq!(
            ct.flows().unwrap().filter(Result::is_ok).count(),
            flows as usize,
            "round {round}"
        );
    }
    // Every thread stops (after at most one more datagram and one poll period).
    let deadline = Instant::now() + Duration::from_secs(5);
    while prefetch_threads() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} prefetch threads still running 5 s after their dumps ended",
            prefetch_threads()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn delete_by_set_through_a_prefetched_dump() {
    require_root!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = ScratchNs::new("pf-delete");
    let mut ct = ns.conntrack();
    let flows = 10_000;
    fill(&mut ct, flows);
    // Two server addresses: a set, which the kernel cannot flush by itself.
    let filter = Filter::new().dst_any([[198, 51, 100, 8], [198, 51, 100, 9]]);
    ct.set_prefetch(Prefetch::Never);
    let mut expected = 0u64;
    let mut dump = ct.dump().unwrap();
    while let Some(flow) = dump.next_flow() {
        expected += u64::from(filter.matches(&flow.unwrap()));
    }
    drop(dump);
    assert!(expected > 0);

    ct.set_prefetch(Prefetch::Always);
    let report = ct
        .delete_matching(&filter, DeleteOptions::default())
        .unwrap();
    assert_eq!(report.path, DeletePath::DumpAndDelete);
    assert_eq!(report.matched, expected);
    assert_eq!(report.deleted, expected);
    assert_eq!(u64::from(ct.count().unwrap()), u64::from(flows) - expected);
    let mut dump = ct.dump().unwrap();
    while let Some(flow) = dump.next_flow() {
        assert!(!filter.matches(&flow.unwrap()), "a selected flow survived");
    }
}

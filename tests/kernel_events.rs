// SPDX-License-Identifier: MIT OR Apache-2.0
//! Events against the real kernel, each test in its own throwaway namespace:
//! exact ordered NEW/UPDATE/DESTROY for changes made through the library,
//! group selection, the `nf_conntrack_events` trap, overflow reported as a
//! "lost" item with the stream going on, subscribe-then-dump losing nothing
//! under concurrent churn, reliable delivery's trade-off, and (feature
//! `tokio`) the async stream.
//!
//! Waits for an event are bounded (`next_event_timeout`) so that a missing
//! event fails the test instead of hanging it; no assertion depends on timing.

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ScratchNs;
use conntrack::events::{EventItem, EventKind, EventMask, EventOptions, Events};
use conntrack::*;

/// Upper bound for an event that must come: a failure guard, not a measurement.
const MUST_ARRIVE: Duration = Duration::from_secs(20);

/// A namespace whose flows all get event storage (`nf_conntrack_events=1`),
/// so results do not depend on whether other listeners exist on the host.
fn events_ns(tag: &str) -> ScratchNs {
    let ns = ScratchNs::new(tag);
    ns.sysctl("nf_conntrack_events", "1");
    ns
}

/// A UDP flow unique to `i`.
fn udp(i: u32) -> FlowSpec {
    let src = IpAddr::V4(Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8));
    let dst = IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1));
    FlowSpec::new(Tuple::udp((src, 10_000 + (i % 50_000) as u16), (dst, 53))).timeout(3600)
}

/// Identity of a flow for reconciliation: original tuple, zone, kernel id.
type Key = (Tuple, u16, Option<FlowId>);

fn key<S>(flow: &Flow<S>) -> Key {
    (flow.orig, flow.zone_id(), flow.id)
}

/// The next item, owned; panics if none comes within [`MUST_ARRIVE`].
fn next_item(events: &mut Events) -> EventItem {
    match events.next_event_timeout(MUST_ARRIVE) {
        Ok(Some(item)) => item.to_owned_item(),
        Ok(None) => panic!(
            "no event within {MUST_ARRIVE:?}; stats {:?}",
            events.stats()
        ),
        Err(e) => panic!("event stream error: {e}"),
    }
}

/// The next item, which must be a flow event.
fn next_event(events: &mut Events) -> Event {
    match next_item(events) {
        EventItem::Event(event) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Everything already queued, owned.
fn drain(events: &mut Events) -> Vec<EventItem> {
    let mut items = Vec::new();
    while let Some(item) = events.try_next_event().expect("event stream") {
        items.push(item.to_owned_item());
    }
    items
}

#[test]
fn create_update_delete_give_exactly_those_events_in_order() {
    require_root!();
    let ns = events_ns("ev-order");
    let mut all = Events::open_in(&ns.netns(), EventMask::all()).unwrap();
    let mut destroy_only = Events::open_in(&ns.netns(), EventMask::DESTROY).unwrap();
    assert_eq!(all.mask(), EventMask::all());
    assert!(all.netns_path().is_some());
    let mut ct = ns.conntrack();

    let tcp = FlowSpec::new(Tuple::tcp(
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40_000),
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80),
    ))
    .timeout(3600)
    .tcp_state(TcpState::Established)
    .status(Status::SEEN_REPLY);
    let udp_flow = udp(7);

    ct.create(&tcp).unwrap();
    ct.update(&FlowSpec::new(tcp.orig).mark(7)).unwrap();
    ct.create(&udp_flow).unwrap();
    assert!(ct.delete(&tcp.orig, 0, None).unwrap());
    assert!(ct.delete(&udp_flow.orig, 0, None).unwrap());

    let expected = [
        (EventKind::New, tcp.orig),
        (EventKind::Update, tcp.orig),
        (EventKind::New, udp_flow.orig),
        (EventKind::Destroy, tcp.orig),
        (EventKind::Destroy, udp_flow.orig),
    ];
    let got: Vec<Event> = expected.iter().map(|_| next_event(&mut all)).collect();
    for ((kind, orig), event) in expected.iter().zip(&got) {
        assert_eq!((event.kind, event.flow.orig), (*kind, *orig), "{got:#?}");
        assert_eq!(
            event.origin_portid,
            ct.portid(),
            "caused by our handle: {event:?}"
        );
        assert!(event.flow.id.is_some());
    }
    // Nothing else: the kernel queues each event before it acknowledges the
    // request that caused it, so the queue is complete now.
    assert_eq!(drain(&mut all), vec![]);

    // The same flow throughout: one id from NEW to DESTROY.
    assert_eq!(got[0].flow.id, got[1].flow.id);
    assert_eq!(got[0].flow.id, got[3].flow.id);
    assert_ne!(got[0].flow.id, got[2].flow.id);
    assert_eq!(got[0].flow.tcp_state(), Some(TcpState::Established));
    assert_eq!(got[1].flow.mark, Some(7), "UPDATE carries the new mark");
    assert!(got[3].flow.status.contains(Status::DYING), "{:?}", got[3]);

    let stats = all.stats();
    assert_eq!((stats.new, stats.update, stats.destroy), (2, 1, 2));
    assert_eq!(stats.lost_reports, 0);

    // A subscriber to DESTROY alone got exactly the two DESTROY events.
    let destroyed: Vec<_> = drain(&mut destroy_only)
        .into_iter()
        .map(|item| match item {
            EventItem::Event(event) => (event.kind, event.flow.orig),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        destroyed,
        vec![
            (EventKind::Destroy, tcp.orig),
            (EventKind::Destroy, udp_flow.orig)
        ]
    );
}

#[test]
fn events_sysctl_decides_at_creation_whether_a_flow_will_ever_send_destroy() {
    // docs/ctnetlink.md §6.2: event storage is attached when a flow is created.
    // With events=0 (as with the default 2 while nobody listens) a flow gets
    // none and its end is never announced; with events=1 every flow gets it,
    // so a flow created before anyone subscribed still reports its DESTROY.
    require_root!();
    let ns = ScratchNs::new("ev-sysctl");
    let mut ct = ns.conntrack();
    let silent = udp(1);
    let announced = udp(2);
    ns.sysctl("nf_conntrack_events", "0");
    ct.create(&silent).unwrap();
    ns.sysctl("nf_conntrack_events", "1");
    ct.create(&announced).unwrap();

    let mut events = Events::open_in(&ns.netns(), EventMask::DESTROY).unwrap();
    assert!(ct.delete(&silent.orig, 0, None).unwrap());
    assert!(ct.delete(&announced.orig, 0, None).unwrap());
    let event = next_event(&mut events);
    assert_eq!(
        (event.kind, event.flow.orig),
        (EventKind::Destroy, announced.orig)
    );
    assert_eq!(
        drain(&mut events),
        vec![],
        "a flow created with events=0 announced its end"
    );
}

#[test]
fn overflow_yields_a_lost_item_and_the_stream_goes_on() {
    require_root!();
    let ns = events_ns("ev-lost");
    // A tiny buffer: a handful of events (the minimum, 1 byte asked, holds one).
    let mut events = EventOptions::new(EventMask::NEW)
        .receive_buffer(4096)
        .open_in(&ns.netns())
        .unwrap();
    let granted = events.granted_receive_buffer().unwrap();
    eprintln!("receive buffer: {granted:?}");
    assert!(granted.forced, "root may force the buffer size");
    assert_eq!(granted.granted, events.receive_buffer().unwrap());

    let mut ct = ns.conntrack();
    const BURST: u32 = 3000;
    for i in 0..BURST {
        ct.create(&udp(i)).unwrap();
    }

    let items = drain(&mut events);
    let (EventItem::Lost { dropped }, rest) = items.split_first().expect("some item") else {
        panic!(
            "the first item must report the overflow: {:?}",
            items.iter().take(3).collect::<Vec<_>>()
        );
    };
    let mut seen = HashSet::new();
    for item in rest {
        match item {
            EventItem::Event(event) => {
                assert_eq!(event.kind, EventKind::New);
                assert!(seen.insert(event.flow.orig), "duplicate {event:?}");
            }
            other => panic!("one overflow, one report: {other:?}"),
        }
    }
    eprintln!(
        "{BURST} flows created: {} NEW events queued before the overflow, {dropped:?} dropped",
        seen.len()
    );
    assert!(!seen.is_empty() && seen.len() < BURST as usize);
    // Every event was either delivered or counted as dropped.
    if let Some(dropped) = dropped {
        assert_eq!(seen.len() as u64 + dropped, u64::from(BURST));
    }
    let stats = events.stats();
    assert_eq!(stats.lost_reports, 1);
    assert_eq!(stats.new, seen.len() as u64);

    // The subscription still works: a later flow is announced.
    let marker = udp(BURST + 1);
    ct.create(&marker).unwrap();
    let event = next_event(&mut events);
    assert_eq!((event.kind, event.flow.orig), (EventKind::New, marker.orig));

    // And a resync rebuilds the whole table.
    let mut dumped = 0;
    let summary = events.resync_with(|_| dumped += 1).unwrap();
    assert_eq!(dumped, BURST + 1);
    assert!(summary.complete);
}

#[test]
fn subscribe_then_dump_loses_nothing_under_concurrent_churn() {
    require_root!();
    let ns = events_ns("ev-resync");
    const BEFORE: u32 = 1000;
    const DURING: u32 = 3000;
    {
        let mut ct = ns.conntrack();
        for i in 0..BEFORE {
            ct.create(&udp(i)).unwrap();
        }
    }

    // Churn from another thread: create new flows, delete old ones, update some.
    let progress = Arc::new(AtomicU32::new(0));
    let churn = {
        let netns = ns.netns();
        let progress = Arc::clone(&progress);
        std::thread::spawn(move || {
            let mut ct = Conntrack::open_in(&netns).unwrap();
            for i in 0..DURING {
                ct.create(&udp(BEFORE + i)).unwrap();
                if i % 3 == 0 {
                    let old = udp(i % BEFORE).orig;
                    ct.delete(&old, 0, None).unwrap();
                }
                if i % 5 == 0 {
                    ct.update(&FlowSpec::new(udp(BEFORE + i / 2).orig).mark(i))
                        .unwrap();
                }
                progress.store(i + 1, Ordering::Relaxed);
            }
        })
    };
    while progress.load(Ordering::Relaxed) < 100 {
        std::thread::yield_now();
    }

    let mut mirror: HashSet<Key> = HashSet::new();
    let started = progress.load(Ordering::Relaxed);
    let (mut events, summary) = EventOptions::new(EventMask::all())
        .receive_buffer(32 << 20)
        .subscribe_then_dump(&ns.netns(), |flow| {
            mirror.insert(key(&flow));
        })
        .unwrap();
    let finished = progress.load(Ordering::Relaxed);
    eprintln!(
        "dump of {} flows ran while the churn went from step {started} to {finished} of {DURING}",
        summary.flows
    );
    churn.join().unwrap();

    for item in drain(&mut events) {
        match item {
            EventItem::Event(event) => match event.kind {
                EventKind::New | EventKind::Update => {
                    mirror.insert(key(&event.flow));
                }
                EventKind::Destroy => {
                    mirror.remove(&key(&event.flow));
                }
                _ => unreachable!("new kinds"),
            },
            EventItem::Lost { .. } => panic!("a 32 MiB buffer overflowed"),
            _ => unreachable!("new items"),
        }
    }

    let mut table = HashSet::new();
    let mut ct = ns.conntrack();
    for flow in ct.flows().unwrap() {
        table.insert(key(&flow.unwrap()));
    }
    let missing: Vec<_> = table.difference(&mirror).take(5).collect();
    let ghosts: Vec<_> = mirror.difference(&table).take(5).collect();
    assert!(
        missing.is_empty() && ghosts.is_empty(),
        "mirror {} vs table {}: missing {missing:?}, ghosts {ghosts:?}",
        mirror.len(),
        table.len()
    );
    let deleted = DURING.div_ceil(3);
    assert_eq!(table.len() as u32, BEFORE + DURING - deleted);
}

#[test]
fn discard_queued_drops_what_is_queued_and_keeps_the_subscription() {
    require_root!();
    let ns = events_ns("ev-discard");
    let mut events = EventOptions::new(EventMask::NEW)
        .receive_buffer(4 << 20)
        .open_in(&ns.netns())
        .unwrap();
    let mut ct = ns.conntrack();
    for i in 0..50 {
        ct.create(&udp(i)).unwrap();
    }
    // Read one, so that part of a datagram is left in the buffer too.
    let first = next_event(&mut events);
    assert_eq!(first.flow.orig, udp(0).orig);
    events.discard_queued().unwrap();
    assert!(
        drain(&mut events).is_empty(),
        "nothing left after the discard"
    );
    let stats = events.stats();
    assert_eq!(
        stats.new, 1,
        "discarded events are not delivered: {stats:?}"
    );
    // The subscription goes on.
    ct.create(&udp(50)).unwrap();
    assert_eq!(next_event(&mut events).flow.orig, udp(50).orig);
}

#[test]
fn reliable_mode_delivers_every_destroy_and_holds_flows_until_read() {
    require_root!();
    let ns = events_ns("ev-reliable");
    let mut events = EventOptions::new(EventMask::DESTROY)
        .receive_buffer(4096)
        .reliable(true)
        .open_in(&ns.netns())
        .unwrap();
    assert!(events.is_reliable());
    let mut ct = ns.conntrack();
    const FLOWS: u32 = 300;
    for i in 0..FLOWS {
        ct.create(&udp(i)).unwrap();
    }
    ct.flush().unwrap();
    // The reader has not read anything: most DESTROY events could not be
    // delivered, so the kernel keeps those flows (counted, dying) for now.
    let held = ct.count().unwrap();
    eprintln!(
        "after flushing {FLOWS} flows with a stalled reliable listener, count = {held}, \
         kernel drops so far {:?}",
        events.kernel_drops().unwrap()
    );
    assert!(held > 0, "flows were released without their DESTROY event");
    assert!(held < FLOWS, "some events fit in the buffer");

    let mut destroyed = HashSet::new();
    while destroyed.len() < FLOWS as usize {
        match next_item(&mut events) {
            EventItem::Event(event) => {
                assert_eq!(event.kind, EventKind::Destroy);
                assert!(destroyed.insert(event.flow.orig), "duplicate {event:?}");
            }
            other => panic!("reliable mode reports no loss: {other:?}"),
        }
    }
    let expected: HashSet<Tuple> = (0..FLOWS).map(|i| udp(i).orig).collect();
    assert_eq!(destroyed, expected);
    assert_eq!(events.stats().lost_reports, 0);
}

#[test]
fn a_subscriber_in_the_current_namespace_and_refusals() {
    require_root!();
    let ns = events_ns("ev-current");
    // Opened from a thread inside the namespace, used from this one: it stays
    // there, and so does its companion handle for dumps.
    let mut events = ns.run(|| Events::open(EventMask::NEW).unwrap());
    assert!(events.netns_path().is_none());
    let mut ct = ns.conntrack();
    ct.create(&udp(1)).unwrap();
    assert_eq!(next_event(&mut events).flow.orig, udp(1).orig);
    assert_eq!(events.table().unwrap().count().unwrap(), 1);
    assert!(matches!(
        Events::open_in(&Netns::named("ctrs-no-such-namespace"), EventMask::NEW),
        Err(Error::NoSuchNetns { .. })
    ));
}

/// An FTP control flow with the kernel's ftp helper attached, as the master
/// of expectations, and a data connection to `port` from any source port.
fn ftp_master(ct: &mut Conntrack, zone: Option<u16>) -> Tuple {
    let master = Tuple::tcp(([10, 9, 0, 1], 40000), ([10, 9, 0, 2], 21));
    let mut spec = common::ftp_master(master);
    if let Some(zone) = zone {
        spec = spec.zone(zone);
    }
    ct.create(&spec).unwrap();
    master
}

fn data_expectation(master: Tuple, port: u16) -> ExpectationSpec {
    let tuple = Tuple::tcp(([10, 9, 0, 1], 0), ([10, 9, 0, 2], port));
    ExpectationSpec::new(master, tuple, 120).any_source_port()
}

/// `conntrack -E expect` through the library: an expectation's NEW and
/// DESTROY arrive as typed items, alone or interleaved with flow events in
/// the kernel's order, with the creating socket as their origin.
#[test]
fn expectation_events_arrive_as_typed_items_alone_or_with_flow_events() {
    require_root!();
    let ns = events_ns("ev-exp");
    let mut both = EventOptions::new(EventMask::NEW | EventMask::DESTROY)
        .expectations(EventMask::all())
        .open_in(&ns.netns())
        .unwrap();
    let mut alone = EventOptions::new(EventMask::empty())
        .expectations(EventMask::NEW | EventMask::DESTROY)
        .open_in(&ns.netns())
        .unwrap();
    assert_eq!(alone.mask(), EventMask::empty());
    assert_eq!(both.expectation_mask(), EventMask::all());
    let mut ct = ns.conntrack();
    let master = ftp_master(&mut ct, None);
    let spec = data_expectation(master, 50000);
    ct.create_expectation(&spec).unwrap();
    let listed = ct.expectations().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(ct.delete_expectation(&spec.tuple, 0, None).unwrap());
    ct.delete(&master, 0, None).unwrap();

    let expectation_event = |item: EventItem| match item {
        EventItem::Expectation(event) => event,
        other => panic!("expected an expectation event, got {other:?}"),
    };
    // Alone: only the expectation's two events.
    let new = expectation_event(next_item(&mut alone));
    assert_eq!(new.kind, EventKind::New);
    assert_eq!(new.origin_portid, ct.portid());
    let e = &new.expectation;
    assert_eq!((e.master, e.tuple, e.mask), (master, spec.tuple, spec.mask));
    assert_eq!(e.helper.as_deref(), Some("ftp"));
    assert_eq!((e.id, e.class), (listed[0].id, Some(0)));
    // The ftp helper's policy timeout (300 s), not the requested 120 s.
    assert!(e.timeout.is_some_and(|t| t > 120 && t <= 300), "{e:?}");
    let gone = expectation_event(next_item(&mut alone));
    assert_eq!(gone.kind, EventKind::Destroy);
    assert_eq!(
        (gone.expectation.tuple, gone.expectation.id),
        (spec.tuple, e.id)
    );
    assert!(drain(&mut alone).is_empty(), "no flow events on this one");
    let stats = alone.stats();
    assert_eq!(
        (stats.expectation_new, stats.expectation_destroy, stats.new),
        (1, 1, 0)
    );

    // Together: flow NEW, expectation NEW, expectation DESTROY, flow DESTROY.
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(match next_item(&mut both) {
            EventItem::Event(event) => ("flow", event.kind, event.flow.orig),
            EventItem::Expectation(event) => ("expectation", event.kind, event.expectation.tuple),
            other => panic!("{other:?}"),
        });
    }
    assert_eq!(
        seen,
        [
            ("flow", EventKind::New, master),
            ("expectation", EventKind::New, spec.tuple),
            ("expectation", EventKind::Destroy, spec.tuple),
            ("flow", EventKind::Destroy, master),
        ]
    );
    assert!(drain(&mut both).is_empty());

    // The master's removal takes its expectations with it: a DESTROY too.
    let master = ftp_master(&mut ct, Some(7));
    let spec = data_expectation(master, 50001).zone(7);
    ct.create_expectation(&spec).unwrap();
    ct.delete(&master, 7, None).unwrap();
    let new = expectation_event(next_item(&mut alone));
    // The kernel (6.18) does not report an expectation's zone
    // (ctnetlink_exp_dump_expect sends no CTA_EXPECT_ZONE).
    assert_eq!(
        (new.kind, new.expectation.master, new.expectation.zone),
        (EventKind::New, master, None)
    );
    let gone = expectation_event(next_item(&mut alone));
    assert_eq!(
        (gone.kind, gone.expectation.tuple),
        (EventKind::Destroy, spec.tuple)
    );
}

#[cfg(feature = "tokio")]
#[test]
fn async_subscription_awaits_events_and_streams_them() {
    use std::future::poll_fn;
    use std::pin::Pin;

    use conntrack::events::AsyncEvents;
    use futures_core::Stream;

    require_root!();
    let ns = events_ns("ev-async");
    let events = Events::open_in(&ns.netns(), EventMask::NEW | EventMask::DESTROY).unwrap();
    assert!(
        events.into_async().is_err(),
        "outside a runtime it must fail, not panic"
    );
    // The writer outpaces a debug-build reader on a loaded machine: give the
    // queue room for the whole burst, as a real consumer would.
    let events = EventOptions::new(EventMask::NEW | EventMask::DESTROY)
        .receive_buffer(8 << 20)
        .open_in(&ns.netns())
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut events = events.into_async().unwrap();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let netns = ns.netns();
        let writer = std::thread::spawn(move || {
            let mut ct = Conntrack::open_in(&netns).unwrap();
            wait.recv().unwrap();
            ct.create(&udp(1)).unwrap();
            wait.recv().unwrap();
            ct.delete(&udp(1).orig, 0, None).unwrap();
            for i in 2..200 {
                ct.create(&udp(i)).unwrap();
            }
        });
        // Nothing is queued yet: this await parks on readiness until the
        // writer's flow arrives.
        go.send(()).unwrap();
        match events.next_event().await.unwrap() {
            EventItem::Event(event) => {
                assert_eq!((event.kind, event.flow.orig), (EventKind::New, udp(1).orig))
            }
            other => panic!("{other:?}"),
        }
        go.send(()).unwrap();
        async fn next(events: &mut AsyncEvents) -> Option<Result<EventItem>> {
            poll_fn(|cx| Pin::new(&mut *events).poll_next(cx)).await
        }
        match next(&mut events).await.unwrap().unwrap() {
            EventItem::Event(event) => assert_eq!(
                (event.kind, event.flow.orig),
                (EventKind::Destroy, udp(1).orig)
            ),
            other => panic!("{other:?}"),
        }
        for i in 2..200 {
            match next(&mut events).await.unwrap().unwrap() {
                EventItem::Event(event) => assert_eq!(event.flow.orig, udp(i).orig),
                other => panic!("{other:?}"),
            }
        }
        writer.join().unwrap();
        assert_eq!(events.stats().new, 199);
        assert_eq!(events.table().unwrap().count().unwrap(), 198);
        drop(ns);
    });
}

/// Run by `unprivileged_subscription_fails_with_eperm_and_says_why` in a
/// child process without privileges; does nothing when run directly.
#[test]
#[ignore = "helper run by another test in an unprivileged child process"]
fn unprivileged_events_probe() {
    if std::env::var_os("CTRS_UNPRIVILEGED_PROBE").is_none() {
        return;
    }
    // Asking for a buffer first exercises the SO_RCVBUF fallback: without
    // CAP_NET_ADMIN, SO_RCVBUFFORCE is refused; joining the groups then is too.
    match EventOptions::new(EventMask::all())
        .receive_buffer(1 << 20)
        .open()
    {
        Ok(_) => println!("PROBE-OK"),
        Err(e) => println!(
            "PROBE-ERR errno={:?} denied={} msg={e}",
            e.errno(),
            e.is_permission_denied()
        ),
    }
}

#[test]
fn unprivileged_subscription_fails_with_eperm_and_says_why() {
    require_root!();
    let line = common::run_unprivileged_probe("unprivileged_events_probe");
    assert!(
        line.starts_with("PROBE-ERR errno=Some(1) denied=true"),
        "{line}"
    );
    assert!(line.contains("multicast group"), "{line}");
    assert!(line.contains("CAP_NET_ADMIN"), "{line}");
}

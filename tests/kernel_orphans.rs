// SPDX-License-Identifier: MIT OR Apache-2.0
//! Orphan detection against the real kernel: a lost RST reproduced with real
//! loopback TCP and an nftables rule that drops it before conntrack, unreplied
//! UDP by idle time and by age, the exclusions (NAT, fixed timeouts, ASSURED,
//! the candidate filter), counts that agree with the list, deletes of exactly
//! the orphans found, and the `gc --orphans` example.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ping, reset_on_close, ScratchNs};
use conntrack::sysctl::{Sysctl, Timeout};
use conntrack::*;

const SECOND: Duration = Duration::from_secs(1);

/// The original tuple conntrack gives a connection opened by `client`.
fn tuple_of(client: &TcpStream) -> Tuple {
    Tuple::tcp(client.local_addr().unwrap(), client.peer_addr().unwrap())
}

/// The orphans as `orig tuple -> category`, checked against `count_orphans`.
fn orphan_map(ct: &mut Conntrack, policy: &OrphanPolicy) -> BTreeMap<Tuple, OrphanCategory> {
    let orphans = ct.orphans(policy).expect("orphans");
    let map: BTreeMap<Tuple, OrphanCategory> =
        orphans.iter().map(|o| (o.flow.orig, o.category)).collect();
    assert_eq!(map.len(), orphans.len(), "an orphan listed twice");
    let counts = ct.count_orphans(policy).expect("count_orphans");
    for category in OrphanCategory::ALL {
        let listed = orphans.iter().filter(|o| o.category == category).count() as u64;
        assert_eq!(
            counts.get(category),
            listed,
            "count_orphans disagrees with orphans() on {category}: {counts:?}"
        );
    }
    assert_eq!(counts.total(), orphans.len() as u64);
    assert!(counts.candidates >= counts.total() + counts.unestimated);
    map
}

fn addr(c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 77, c, d))
}

#[test]
fn a_lost_rst_leaves_an_established_orphan_found_and_deleted_exactly() {
    require_root!();
    let ns = ScratchNs::new("orph-rst");
    // The namespace's own ESTABLISHED timeout, far from the host's: an estimate
    // made with another namespace's sysctls would be off by hours or days.
    ns.sysctl("nf_conntrack_tcp_timeout_established", "1000");
    assert_eq!(
        Sysctl::in_netns(ns.netns())
            .timeout(Timeout::TcpEstablished)
            .unwrap(),
        Duration::from_secs(1000)
    );
    const PORT: u16 = 7101;
    // Before conntrack (priority -300 < -200): FIN and RST of the test service
    // never reach it, in either direction.
    common::drop_fin_rst(&ns, PORT);
    let (listener, mut dead_client, mut dead_server, mut live_client, mut live_server) =
        ns.run(|| {
            let listener = TcpListener::bind(("127.0.0.1", PORT)).expect("listen");
            let dead_client = TcpStream::connect(("127.0.0.1", PORT)).expect("connect");
            let (dead_server, _) = listener.accept().expect("accept");
            let live_client = TcpStream::connect(("127.0.0.1", PORT)).expect("connect");
            let (live_server, _) = listener.accept().expect("accept");
            (listener, dead_client, dead_server, live_client, live_server)
        });
    for stream in [&dead_client, &dead_server, &live_client, &live_server] {
        stream.set_read_timeout(Some(5 * SECOND)).unwrap();
    }
    ping(&mut dead_client, &mut dead_server);
    ping(&mut live_client, &mut live_server);
    let dead = tuple_of(&dead_client);
    let live = tuple_of(&live_client);
    // Let every ACK through: no unacknowledged data, so the kernel arms the
    // ESTABLISHED timeout and not the 300 s "unacknowledged" one.
    std::thread::sleep(Duration::from_millis(300));

    // The client dies (RST), then the server closes (FIN): both are dropped.
    reset_on_close(&dead_client);
    drop(dead_client);
    drop(dead_server);
    std::thread::sleep(Duration::from_millis(200));
    let rules = String::from_utf8(
        ns.exec(&["nft", "list", "chain", "inet", "ctrs", "early"])
            .stdout,
    )
    .unwrap();
    assert_eq!(
        rules.matches("counter packets ").count(),
        2,
        "two counters: {rules}"
    );
    assert!(
        !rules.contains("counter packets 0 "),
        "the RST (dport rule) and the FIN (sport rule) were sent and dropped: {rules}"
    );
    let mut ct = ns.conntrack();
    let flow = ct
        .get(&dead, 0)
        .unwrap()
        .expect("the dead connection's flow");
    assert_eq!(flow.tcp_state(), Some(TcpState::Established), "{flow:?}");
    assert!(flow.status.assured());

    // Idle time for the dead flow, traffic on the live one.
    let until = Instant::now() + Duration::from_millis(3200);
    while Instant::now() < until {
        ping(&mut live_client, &mut live_server);
        std::thread::sleep(Duration::from_millis(200));
    }
    ping(&mut live_client, &mut live_server);

    // The estimate alone: the server socket still exists, retransmitting its
    // dropped FIN (FIN_WAIT1), so the socket check would rightly call the flow
    // alive for a while (tests/kernel_confirmed_orphans.rs covers evidence).
    let policy = OrphanPolicy::new()
        .idle_established(2 * SECOND)
        .sockets(SocketCheck::Off);
    let orphans = ct.orphans(&policy).unwrap();
    assert_eq!(
        orphans.len(),
        1,
        "exactly the dead connection: {orphans:#?}"
    );
    let orphan = &orphans[0];
    assert_eq!(orphan.flow.orig, dead);
    assert_eq!(orphan.category, OrphanCategory::IdleEstablished);
    let idle = orphan.idle.expect("an idle estimate");
    assert!(
        idle >= 2 * SECOND && idle <= 30 * SECOND,
        "idle {idle:?}: estimated with the namespace's 1000 s, not the host's timeout"
    );
    let counts = ct.count_orphans(&policy).unwrap();
    assert_eq!(counts.idle_established, 1, "{counts:?}");
    assert_eq!(counts.total(), 1, "{counts:?}");
    assert_eq!(counts.candidates, 2, "both connections judged: {counts:?}");

    // A dry run changes nothing.
    let dry = ct
        .delete_orphans(
            &policy,
            DeleteOptions {
                dry_run: true,
                ..DeleteOptions::default()
            },
        )
        .unwrap();
    assert_eq!(dry.path, DeletePath::DryRun);
    assert_eq!((dry.matched, dry.deleted), (1, 0), "{dry:?}");
    assert!(ct.get(&dead, 0).unwrap().is_some());

    ping(&mut live_client, &mut live_server);
    let report = ct
        .delete_orphans(&policy, DeleteOptions::default())
        .unwrap();
    assert_eq!(report.path, DeletePath::DumpAndDelete);
    assert_eq!(report.matched, 1, "{report:?}");
    assert_eq!(report.deleted, 1, "{report:?}");
    assert_eq!(report.already_gone, 0, "{report:?}");
    assert_eq!(report.failed_total(), 0, "{report:?}");
    assert_eq!(ct.get(&dead, 0).unwrap(), None, "the orphan is gone");
    let kept = ct.get(&live, 0).unwrap().expect("the live flow remains");
    assert_eq!(kept.tcp_state(), Some(TcpState::Established));

    // The live connection still works, and it is the only TCP flow left.
    ping(&mut live_client, &mut live_server);
    let tcp: Vec<Tuple> = ct
        .flows_matching(&Filter::new().protocol(proto::TCP))
        .unwrap()
        .into_iter()
        .map(|f| f.orig)
        .collect();
    assert_eq!(tcp, [live]);
    assert!(ct.orphans(&policy).unwrap().is_empty());
    drop(listener);
}

#[test]
fn unreplied_udp_is_found_while_nat_and_fixed_timeouts_are_not() {
    require_root!();
    let ns = ScratchNs::new("orph-udp");
    // Real NAT: port 19 is redirected to port 10.
    ns.nft("add table ip ctrsnat");
    ns.exec(&[
        "nft",
        "add chain ip ctrsnat out { type nat hook output priority -100 ; }",
    ]);
    ns.nft("add rule ip ctrsnat out udp dport 19 dnat to 127.0.0.1:10");
    // A real unreplied flow: a datagram to a port nobody listens on (the ICMP
    // port-unreachable it draws is RELATED, not a reply); and one through DNAT.
    let (client, nat_client) = ns.run(|| {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.send_to(b"anyone?", "127.0.0.1:9").expect("send");
        let natted = UdpSocket::bind("127.0.0.1:0").expect("bind");
        natted.send_to(b"anyone?", "127.0.0.1:19").expect("send");
        (socket.local_addr().unwrap(), natted.local_addr().unwrap())
    });
    let unreplied = Tuple::udp(client, ([127, 0, 0, 1], 9));
    let dnat = Tuple::udp(nat_client, ([127, 0, 0, 1], 19));
    std::thread::sleep(Duration::from_millis(3200));

    let mut ct = ns.conntrack();
    let real = ct.get(&unreplied, 0).unwrap().expect("the UDP flow");
    assert!(real.status.unreplied(), "{real:?}");
    let real_nat = ct.get(&dnat, 0).unwrap().expect("the DNAT-ed UDP flow");
    assert!(
        real_nat.status.dst_nat() && real_nat.status.unreplied(),
        "{real_nat:?}"
    );

    let replied = Status::SEEN_REPLY | Status::ASSURED;
    let established = |c: u8| {
        FlowSpec::new(Tuple::tcp((addr(c, 1), 40000), (addr(c, 2), 443)))
            .tcp_state(TcpState::Established)
            .status(replied)
    };
    // Unreplied UDP 5 s idle, with a NAT-ed reply direction. (The kernel
    // ignores NAT bits in `CTA_STATUS` on create: NAT-ed by its tuple only.)
    let nat_orig = Tuple::udp((addr(1, 1), 5000), (addr(1, 2), 53));
    let nat_reply = Tuple::udp((addr(1, 2), 53), ([192, 0, 2, 1], 61000));
    // ESTABLISHED 431000 s idle by its numbers, but with a fixed timeout.
    let fixed = established(2)
        .timeout(1000)
        .status(replied | Status::FIXED_TIMEOUT);
    // ESTABLISHED 431000 s idle, in zone 0 and in zone 3.
    let idle = established(3).timeout(1000);
    let zoned = established(4).timeout(1000).zone(3);
    // TIME_WAIT 90 s idle (120 s configured).
    let time_wait = FlowSpec::new(Tuple::tcp((addr(5, 1), 40000), (addr(5, 2), 443)))
        .tcp_state(TcpState::TimeWait)
        .status(replied)
        .timeout(30);
    // Unreplied UDP with more time left than the 30 s configured (0 s idle
    // for the next 30 s), and an ESTABLISHED flow 10 s idle.
    let young = FlowSpec::new(Tuple::udp((addr(6, 1), 5000), (addr(6, 2), 53))).timeout(60);
    let busy = established(7).timeout(431_990);
    for spec in [
        FlowSpec::new(nat_orig)
            .reply(nat_reply)
            .status(Status::SRC_NAT)
            .timeout(25),
        fixed.clone(),
        idle.clone(),
        zoned.clone(),
        time_wait.clone(),
        young.clone(),
        busy.clone(),
    ] {
        ct.create(&spec)
            .unwrap_or_else(|e| panic!("create {spec:?}: {e}"));
    }
    let nat = ct.get(&nat_orig, 0).unwrap().expect("the NAT-ed flow");
    assert_eq!(nat.reply, nat_reply, "{nat:?}");
    let stored_fixed = ct.get(&fixed.orig, 0).unwrap().unwrap();
    assert!(stored_fixed.status.fixed_timeout(), "{stored_fixed:?}");

    use OrphanCategory::*;
    let base = OrphanPolicy::new()
        .unreplied(2 * SECOND)
        .half_closed(60 * SECOND);
    let expected: BTreeMap<Tuple, OrphanCategory> = [
        (unreplied, LongUnreplied),
        (idle.orig, IdleEstablished),
        (zoned.orig, IdleEstablished),
        (time_wait.orig, LingeringHalfClosed),
    ]
    .into_iter()
    .collect();
    let found = orphan_map(&mut ct, &base);
    assert_eq!(found, expected);
    let orphans = ct.orphans(&base).unwrap();
    let udp = orphans.iter().find(|o| o.flow.orig == unreplied).unwrap();
    let udp_idle = udp.idle.unwrap();
    assert!(
        udp_idle >= 2 * SECOND && udp_idle < 30 * SECOND,
        "{udp_idle:?}"
    );

    // NAT on request.
    let mut with_nat = expected.clone();
    with_nat.insert(nat_orig, LongUnreplied);
    with_nat.insert(dnat, LongUnreplied);
    assert_eq!(
        orphan_map(&mut ct, &base.clone().include_nat(true)),
        with_nat
    );

    // ASSURED spared: only the (non-NAT) real UDP flow is not assured.
    let unassured = orphan_map(&mut ct, &base.clone().exclude_assured(true));
    assert_eq!(unassured.keys().collect::<Vec<_>>(), [&unreplied]);

    // The candidate filter.
    let zone3 = orphan_map(&mut ct, &base.clone().filter(Filter::new().zone(3)));
    assert_eq!(zone3.keys().collect::<Vec<_>>(), [&zoned.orig]);
    let none = orphan_map(
        &mut ct,
        &base
            .clone()
            .only(IdleEstablished)
            .filter(Filter::new().protocol(proto::UDP)),
    );
    assert!(none.is_empty());

    // One category at a time; a disabled one hands its flows to no other.
    let only_unreplied = orphan_map(&mut ct, &base.clone().only(LongUnreplied));
    assert_eq!(only_unreplied.keys().collect::<Vec<_>>(), [&unreplied]);
    let replied_only = orphan_map(&mut ct, &base.clone().enable(LongUnreplied, false));
    let mut expected_replied = expected.clone();
    expected_replied.remove(&unreplied);
    assert_eq!(replied_only, expected_replied);

    // With every threshold at zero the young and busy flows count too, but a
    // fixed timeout never gives an idle estimate.
    let everything = base
        .clone()
        .idle_established(Duration::ZERO)
        .unreplied(Duration::ZERO)
        .half_closed(Duration::ZERO);
    let all = orphan_map(&mut ct, &everything);
    assert!(all.contains_key(&young.orig) && all.contains_key(&busy.orig));
    assert!(!all.contains_key(&fixed.orig), "fixed timeout: {all:?}");
    assert!(
        !all.contains_key(&nat_orig) && !all.contains_key(&dnat),
        "NAT: {all:?}"
    );
    assert_eq!(all.len(), expected.len() + 2);
    let counts = ct.count_orphans(&everything).unwrap();
    assert!(
        counts.unestimated >= 1,
        "the fixed-timeout flow: {counts:?}"
    );
}

#[test]
fn an_unreplied_flow_kept_alive_by_retries_is_found_by_its_age() {
    require_root!();
    let ns = ScratchNs::new("orph-age");
    // Two senders retrying every 200 ms towards a port nobody answers: their
    // idle time stays near zero. Only the second one's flow is created after
    // timestamps are switched on, so only it has an age.
    let (without, with) = ns.run(|| {
        let first = UdpSocket::bind("127.0.0.1:0").unwrap();
        first.send_to(b"?", "127.0.0.1:9").unwrap();
        ns.sysctl("nf_conntrack_timestamp", "1");
        let second = UdpSocket::bind("127.0.0.1:0").unwrap();
        let until = Instant::now() + Duration::from_millis(3200);
        while Instant::now() < until {
            first.send_to(b"?", "127.0.0.1:9").unwrap();
            second.send_to(b"?", "127.0.0.1:9").unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }
        (first.local_addr().unwrap(), second.local_addr().unwrap())
    });
    let with = Tuple::udp(with, ([127, 0, 0, 1], 9));
    let without = Tuple::udp(without, ([127, 0, 0, 1], 9));
    let mut ct = ns.conntrack();
    assert!(ct.get(&without, 0).unwrap().unwrap().timestamp.is_none());
    assert!(ct.get(&with, 0).unwrap().unwrap().timestamp.is_some());

    let policy = OrphanPolicy::new()
        .only(OrphanCategory::LongUnreplied)
        .unreplied(2 * SECOND);
    let orphans = ct.orphans(&policy).unwrap();
    assert_eq!(orphans.len(), 1, "{orphans:#?}");
    let orphan = &orphans[0];
    assert_eq!(orphan.flow.orig, with);
    assert!(orphan.idle.unwrap() < 2 * SECOND, "{orphan:?}");
    let age = orphan.age.expect("an age from CTA_TIMESTAMP_START");
    assert!(age >= 3 * SECOND && age < 30 * SECOND, "{age:?}");
    assert_eq!(ct.count_orphans(&policy).unwrap().long_unreplied, 1);
}

/// A table of orphans and non-orphans whose idle times are far from the
/// thresholds (so that nothing crosses one while the test runs), for
/// `nf_conntrack_udp_timeout` = 600 s (see [`orphan_table_ns`]) and thresholds of
/// 100 s (ESTABLISHED), 100 s (unreplied) and 60 s (half-closed).
fn orphan_table() -> (Vec<FlowSpec>, BTreeSet<Tuple>) {
    let replied = Status::SEEN_REPLY | Status::ASSURED;
    let mut specs = Vec::new();
    let mut orphans = BTreeSet::new();
    for i in 0..480u16 {
        let (src, dst) = (addr(10 + (i % 8) as u8, 1), addr(20, (i % 200) as u8 + 1));
        let sport = 20_000 + i;
        let (spec, orphan) = match i % 8 {
            // ESTABLISHED: 1000 s idle (orphan), 10 s idle, 431000 s but NAT-ed.
            0 => (
                FlowSpec::new(Tuple::tcp((src, sport), (dst, 443)))
                    .tcp_state(TcpState::Established)
                    .status(replied)
                    .timeout(431_000),
                true,
            ),
            1 => (
                FlowSpec::new(Tuple::tcp((src, sport), (dst, 443)))
                    .tcp_state(TcpState::Established)
                    .status(replied)
                    .timeout(431_990),
                false,
            ),
            2 => {
                let orig = Tuple::tcp((src, sport), (dst, 443));
                let reply = Tuple::tcp((dst, 443), ([192, 0, 2, 9], sport));
                (
                    FlowSpec::new(orig)
                        .reply(reply)
                        .tcp_state(TcpState::Established)
                        .status(replied)
                        .timeout(1000),
                    false,
                )
            }
            // Unreplied UDP: 300 s idle (orphan), 10 s idle.
            3 => (
                FlowSpec::new(Tuple::udp((src, sport), (dst, 53))).timeout(300),
                true,
            ),
            4 => (
                FlowSpec::new(Tuple::udp((src, sport), (dst, 53))).timeout(590),
                false,
            ),
            // TIME_WAIT: 90 s idle (orphan), 20 s idle.
            5 => (
                FlowSpec::new(Tuple::tcp((src, sport), (dst, 443)))
                    .tcp_state(TcpState::TimeWait)
                    .status(replied)
                    .timeout(30),
                true,
            ),
            6 => (
                FlowSpec::new(Tuple::tcp((src, sport), (dst, 443)))
                    .tcp_state(TcpState::TimeWait)
                    .status(replied)
                    .timeout(100),
                false,
            ),
            // Replied UDP: never an orphan.
            _ => (
                FlowSpec::new(Tuple::udp((src, sport), (dst, 53)))
                    .status(replied)
                    .timeout(100),
                false,
            ),
        };
        if orphan {
            orphans.insert(spec.orig);
        }
        specs.push(spec);
    }
    (specs, orphans)
}

/// A namespace holding [`orphan_table`].
fn orphan_table_ns(tag: &str) -> (ScratchNs, Vec<FlowSpec>, BTreeSet<Tuple>) {
    let ns = ScratchNs::new(tag);
    // Unreplied UDP lives 30 s by default: too short to stay clear of a threshold.
    ns.sysctl("nf_conntrack_udp_timeout", "600");
    let (specs, expected) = orphan_table();
    let mut ct = ns.conntrack();
    for spec in &specs {
        ct.create(spec)
            .unwrap_or_else(|e| panic!("create {spec:?}: {e}"));
    }
    (ns, specs, expected)
}

#[test]
fn delete_orphans_deletes_exactly_what_orphans_lists() {
    require_root!();
    let (ns, specs, expected) = orphan_table_ns("orph-del");
    let mut ct = ns.conntrack();
    let policy = OrphanPolicy::new()
        .idle_established(100 * SECOND)
        .unreplied(100 * SECOND)
        .half_closed(60 * SECOND);
    let found = orphan_map(&mut ct, &policy);
    assert_eq!(found.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(expected.len(), 180);

    // A limit stops after that many orphans.
    let limited = ct
        .delete_orphans(
            &policy,
            DeleteOptions {
                limit: Some(5),
                ..DeleteOptions::default()
            },
        )
        .unwrap();
    assert_eq!((limited.matched, limited.deleted), (5, 5), "{limited:?}");
    let left = orphan_map(&mut ct, &policy);
    assert_eq!(left.len(), expected.len() - 5);

    // Then everything else, counted per category in the same pass (several
    // pipelined batches).
    let (report, counts) = ct
        .delete_orphans_counted(&policy, DeleteOptions::default())
        .unwrap();
    assert_eq!(report.path, DeletePath::DumpAndDelete);
    assert_eq!(report.matched, left.len() as u64, "{report:?}");
    assert_eq!(report.deleted, report.matched, "{report:?}");
    assert_eq!(report.already_gone + report.failed_total(), 0, "{report:?}");
    assert_eq!(counts.total(), report.matched, "{counts:?}");
    for category in OrphanCategory::ALL {
        let listed = left.values().filter(|c| **c == category).count() as u64;
        assert_eq!(counts.get(category), listed, "{category}: {counts:?}");
    }

    // What remains is exactly the complement.
    let remaining: BTreeSet<Tuple> = ct.flows().unwrap().map(|f| f.unwrap().orig).collect();
    let all: BTreeSet<Tuple> = specs.iter().map(|s| s.orig).collect();
    assert_eq!(remaining, &all - &expected);
    assert!(ct.orphans(&policy).unwrap().is_empty());
}

/// `target/<profile>/examples/gc`, built by `cargo test` (or on demand here).
fn gc(args: &[&str]) -> String {
    common::run_example("gc", args)
}

#[test]
fn the_gc_example_lists_and_deletes_orphans() {
    require_root!();
    let (ns, specs, expected) = orphan_table_ns("orph-gc");
    let mut ct = ns.conntrack();
    let thresholds = common::GC_ORPHAN_THRESHOLDS;
    let with = |extra: &[&'static str]| -> Vec<&str> {
        let mut args = vec!["--netns", ns.name.as_str()];
        args.extend_from_slice(&thresholds);
        args.extend_from_slice(extra);
        args
    };

    // Dry run by default, with the list and the counts.
    let out = gc(&with(&["--list"]));
    let listed = out.lines().filter(|l| l.contains(" idle=")).count();
    assert_eq!(listed, expected.len(), "{out}");
    assert!(
        out.contains("orphans: idle_established=60 long_unreplied=60 lingering_half_closed=60"),
        "{out}"
    );
    assert!(out.contains("path=dry_run matched=180 deleted=0"), "{out}");
    assert_eq!(ct.flows().unwrap().count(), specs.len());

    // The filter options restrict the candidates.
    let json = gc(&with(&["--json", "-p", "udp"]));
    let report: serde_json::Value = serde_json::from_str(json.trim()).expect(&json);
    assert_eq!(report["matched"], 60, "{json}");
    assert_eq!(report["orphans"]["long_unreplied"], 60, "{json}");
    assert_eq!(report["orphans"]["idle_established"], 0, "{json}");

    // --include-nat adds the NAT-ed idle flows.
    let json = gc(&with(&["--json", "--include-nat"]));
    let report: serde_json::Value = serde_json::from_str(json.trim()).expect(&json);
    assert_eq!(report["orphans"]["idle_established"], 120, "{json}");

    // --confirmed: these flows have no local end, so none is confirmed and
    // nothing would go; the counts say they are suspected.
    let json = gc(&with(&["--json", "--confirmed"]));
    let report: serde_json::Value = serde_json::from_str(json.trim()).expect(&json);
    assert_eq!(report["matched"], 0, "{json}");
    assert_eq!(report["orphans"]["suspected"], 180, "{json}");
    assert_eq!(report["orphans"]["confirmed"], 0, "{json}");

    // --yes deletes.
    let json = gc(&with(&["--json", "--yes"]));
    let report: serde_json::Value = serde_json::from_str(json.trim()).expect(&json);
    assert_eq!(report["path"], "dump_and_delete", "{json}");
    assert_eq!(report["deleted"], 180, "{json}");
    let remaining: BTreeSet<Tuple> = ct.flows().unwrap().map(|f| f.unwrap().orig).collect();
    let all: BTreeSet<Tuple> = specs.iter().map(|s| s.orig).collect();
    assert_eq!(remaining, &all - &expected);

    // Orphan options without --orphans are a usage error.
    let status = Command::new(common::example_binary("gc"))
        .args(["--idle", "5", "-p", "tcp"])
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(2));
}

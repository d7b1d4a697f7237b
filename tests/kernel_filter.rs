// SPDX-License-Identifier: MIT OR Apache-2.0
//! Filters against the real kernel: the capability probe, pushed-down dumps
//! equal to userspace evaluation, grouped counts, deletes.

mod common;

use common::{Rng, ScratchNs};
use conntrack::*;

#[test]
fn the_probe_finds_every_filter_of_this_kernel() {
    require_root!();
    let host_before =
        std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count").unwrap();
    let features = KernelFeatures::probe_uncached().expect("root can probe");
    eprintln!("{features:?}");
    // The cached answer (per process and per boot) is the same.
    let cached = KernelFeatures::probe();
    assert_eq!(cached, features);
    assert!(features.probed);
    // 6.18 has all of them (docs/ctnetlink.md appendix A).
    assert!(
        features.dump_mark && features.dump_status && features.dump_zone && features.dump_tuple
    );
    assert!(
        features.flush_mark && features.flush_status && features.flush_zone && features.flush_tuple
    );
    // The probe ran in a private namespace: the host's table did not see it.
    let host_after = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count").unwrap();
    assert_eq!(host_before, host_after);
}

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn v4(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i))
}

fn v6(i: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        0,
        0,
        0,
        0,
        (i >> 16) as u16,
        i as u16,
    ))
}

const STATES: [TcpState; 5] = [
    TcpState::SynSent,
    TcpState::Established,
    TcpState::FinWait,
    TcpState::TimeWait,
    TcpState::Close,
];

/// A random mix of flows: families, protocols, zones, marks, statuses, states.
fn random_table(rng: &mut Rng, n: u32) -> Vec<FlowSpec> {
    let mut specs = Vec::new();
    for i in 0..n {
        let ipv6 = rng.chance(30);
        let addr = |x: u32| if ipv6 { v6(x) } else { v4(x) };
        let src = addr(1 + rng.below(24) as u32);
        let dst = addr(100 + rng.below(8) as u32);
        let sport = 10_000 + i as u16;
        let dport = [53u16, 80, 443, 8080, 22][rng.below(5) as usize];
        let tuple = match rng.below(6) {
            0 | 1 => Tuple::tcp((src, sport), (dst, dport)),
            2 | 3 => Tuple::udp((src, sport), (dst, dport)),
            4 => Tuple::icmp(src, dst, i as u16, if ipv6 { 128 } else { 8 }, 0),
            _ => Tuple::ports(proto::SCTP, src, sport, dst, dport),
        };
        let mut spec = FlowSpec::new(tuple).timeout(600).mark(rng.below(8) as u32);
        if tuple.protocol == proto::TCP {
            spec = spec.tcp_state(STATES[rng.below(5) as usize]);
        }
        if tuple.protocol == proto::SCTP {
            spec = spec.protoinfo(ProtoInfo::Sctp(SctpInfo {
                state: Some(SctpState::Established),
                vtag_orig: Some(1),
                vtag_reply: Some(2),
            }));
        }
        spec = match rng.below(3) {
            0 => spec,
            1 => spec.status(Status::SEEN_REPLY),
            _ => spec.status(Status::SEEN_REPLY | Status::ASSURED),
        };
        if rng.chance(20) {
            spec = spec.zone(1 + rng.below(2) as u16);
        }
        specs.push(spec);
    }
    specs
}

/// The conditions of a random filter, kept as plain data so that the test's
/// own reference predicate can be written without the library's `Filter`.
#[derive(Debug, Clone, Default)]
struct Spec {
    family: Option<bool>,
    protocols: Vec<u8>,
    src: Vec<(IpAddr, u8)>,
    dst: Vec<(IpAddr, u8)>,
    dst_ports: Vec<u16>,
    src_port_range: Option<(u16, u16)>,
    states: Vec<TcpState>,
    status_set: Status,
    status_unset: Status,
    mark: Option<(u32, u32)>,
    zone: Option<u16>,
}

fn random_spec(rng: &mut Rng) -> Spec {
    let mut s = Spec::default();
    let ipv6 = rng.chance(30);
    let addr = |x: u32| if ipv6 { v6(x) } else { v4(x) };
    if rng.chance(25) {
        s.family = Some(ipv6);
    }
    if rng.chance(50) {
        s.protocols
            .push([proto::TCP, proto::UDP, proto::ICMP, proto::SCTP][rng.below(4) as usize]);
        if rng.chance(20) {
            s.protocols.push(proto::UDP);
        }
    }
    let full = if ipv6 { 128 } else { 32 };
    match rng.below(5) {
        0 => s.src.push((addr(1 + rng.below(24) as u32), full)),
        1 => s.src.push((addr(rng.below(24) as u32), full - 3)),
        2 => {
            for _ in 0..1 + rng.below(6) {
                s.src.push((addr(1 + rng.below(24) as u32), full));
            }
        }
        _ => {}
    }
    if rng.chance(25) {
        s.dst.push((addr(100 + rng.below(8) as u32), full));
    }
    match rng.below(4) {
        0 => s
            .dst_ports
            .push([53u16, 80, 443, 8080, 22][rng.below(5) as usize]),
        1 => s.dst_ports.extend([80u16, 443]),
        _ => {}
    }
    if rng.chance(10) {
        s.src_port_range = Some((10_000, 10_000 + rng.below(400) as u16));
    }
    if rng.chance(20) {
        s.states.push(STATES[rng.below(5) as usize]);
    }
    match rng.below(5) {
        0 => s.status_set = Status::ASSURED,
        1 => s.status_unset = Status::SEEN_REPLY,
        2 => s.status_set = Status::SEEN_REPLY,
        _ => {}
    }
    match rng.below(4) {
        0 => s.mark = Some((rng.below(8) as u32, u32::MAX)),
        1 => s.mark = Some((1, 1)),
        _ => {}
    }
    if rng.chance(20) {
        s.zone = Some(rng.below(3) as u16);
    }
    s
}

fn to_filter(s: &Spec) -> Filter {
    let mut f = Filter::new();
    if let Some(v6) = s.family {
        f = f.family(if v6 { Family::Ipv6 } else { Family::Ipv4 });
    }
    for &p in &s.protocols {
        f = f.protocol(p);
    }
    for &(a, p) in &s.src {
        f = f.src(Cidr::new(a, p).unwrap());
    }
    for &(a, p) in &s.dst {
        f = f.dst(Cidr::new(a, p).unwrap());
    }
    for &p in &s.dst_ports {
        f = f.dst_port(p);
    }
    if let Some((lo, hi)) = s.src_port_range {
        f = f.src_ports(lo..=hi);
    }
    for &state in &s.states {
        f = f.tcp_state(state);
    }
    f = f.status(s.status_set).status_unset(s.status_unset);
    if let Some((value, mask)) = s.mark {
        f = f.mark_masked(value, mask);
    }
    if let Some(zone) = s.zone {
        f = f.zone(zone);
    }
    f
}

/// The reference predicate: written from the spec, independently of `Filter`.
fn reference(s: &Spec, flow: &Flow) -> bool {
    let in_net = |addr: IpAddr, (net, prefix): (IpAddr, u8)| -> bool {
        match (addr, net) {
            (IpAddr::V4(a), IpAddr::V4(n)) => {
                prefix == 0 || (u32::from(a) ^ u32::from(n)) >> (32 - u32::from(prefix)) == 0
            }
            (IpAddr::V6(a), IpAddr::V6(n)) => {
                prefix == 0 || (u128::from(a) ^ u128::from(n)) >> (128 - u32::from(prefix)) == 0
            }
            _ => false,
        }
    };
    s.family.map_or(true, |v6| flow.orig.src.is_ipv6() == v6)
        && (s.protocols.is_empty() || s.protocols.contains(&flow.orig.protocol))
        && (s.src.is_empty() || s.src.iter().any(|&n| in_net(flow.orig.src, n)))
        && (s.dst.is_empty() || s.dst.iter().any(|&n| in_net(flow.orig.dst, n)))
        && (s.dst_ports.is_empty()
            || flow
                .orig
                .dst_port()
                .is_some_and(|p| s.dst_ports.contains(&p)))
        && s.src_port_range.map_or(true, |(lo, hi)| {
            flow.orig.src_port().is_some_and(|p| (lo..=hi).contains(&p))
        })
        && (s.states.is_empty()
            || (flow.orig.protocol == proto::TCP
                && flow.tcp_state().is_some_and(|st| s.states.contains(&st))))
        && flow.status.contains(s.status_set)
        && (flow.status & s.status_unset).is_empty()
        && s.mark.map_or(true, |(v, m)| flow.mark.unwrap() & m == v)
        && s.zone.map_or(true, |z| flow.zone.unwrap_or(0) == z)
}

type Key = (Tuple, Option<u16>);

fn key(flow: &Flow) -> Key {
    (flow.orig, flow.zone)
}

fn fill(ct: &mut Conntrack, specs: &[FlowSpec]) {
    for spec in specs {
        ct.create(spec)
            .unwrap_or_else(|e| panic!("create {:?}: {e}", spec.orig));
    }
}

#[test]
fn pushed_down_userspace_and_reference_select_the_same_flows() {
    require_root!();
    let ns = ScratchNs::new("equiv");
    let mut ct = ns.conntrack();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let specs = random_table(&mut rng, 600);
    fill(&mut ct, &specs);
    let all: Vec<Flow> = ct.flows().unwrap().collect::<Result<_>>().unwrap();
    assert_eq!(all.len(), 600);
    let mut userspace_only = ns.conntrack();
    userspace_only.assume_features(KernelFeatures::conservative());
    let mut nonempty = 0;
    let mut kernel_filtered = 0;
    for round in 0..250 {
        let spec = random_spec(&mut rng);
        let filter = to_filter(&spec);
        let expected: BTreeSet<Key> = all
            .iter()
            .filter(|f| reference(&spec, f))
            .map(key)
            .collect();
        let by_matches: BTreeSet<Key> =
            all.iter().filter(|f| filter.matches(*f)).map(key).collect();
        assert_eq!(
            by_matches, expected,
            "round {round}: Filter::matches vs reference for {spec:?}"
        );
        if let Err(refusal) = filter.validate() {
            // Only a filter that selects nothing is refused.
            assert!(expected.is_empty(), "round {round}: {refusal} for {spec:?}");
            assert!(matches!(
                ct.dump_filtered(&filter),
                Err(Error::InvalidInput(_))
            ));
            continue;
        }
        let mut dump = ct.dump_filtered(&filter).unwrap();
        let mut pushed = BTreeSet::new();
        while let Some(flow) = dump.next_flow() {
            pushed.insert(key(&flow.unwrap().to_owned_flow()));
        }
        kernel_filtered += u32::from(dump.summary().filtered);
        drop(dump);
        assert_eq!(
            pushed, expected,
            "round {round}: pushed-down dump vs reference for {spec:?}"
        );
        let slow: BTreeSet<Key> = userspace_only
            .flows_matching(&filter)
            .unwrap()
            .iter()
            .map(key)
            .collect();
        assert_eq!(
            slow, expected,
            "round {round}: userspace-only dump vs reference for {spec:?}"
        );
        assert_eq!(ct.count_matching(&filter).unwrap(), expected.len() as u64);
        nonempty += u32::from(!expected.is_empty());
    }
    assert!(
        nonempty > 60,
        "the random filters select something often enough ({nonempty})"
    );
    assert!(
        kernel_filtered > 60,
        "the kernel filtered often enough ({kernel_filtered})"
    );
}

#[test]
fn delete_by_filter_leaves_exactly_the_complement() {
    require_root!();
    let ns = ScratchNs::new("delequiv");
    let mut ct = ns.conntrack();
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    let mut paths = BTreeMap::new();
    for round in 0..40 {
        ct.flush().unwrap();
        let specs = random_table(&mut rng, 300);
        fill(&mut ct, &specs);
        let all: Vec<Flow> = ct.flows().unwrap().collect::<Result<_>>().unwrap();
        let spec = random_spec(&mut rng);
        let filter = to_filter(&spec);
        if filter.is_empty() {
            continue;
        }
        let keep: BTreeSet<Key> = all
            .iter()
            .filter(|f| !reference(&spec, f))
            .map(key)
            .collect();
        if filter.validate().is_err() {
            assert_eq!(keep.len(), all.len(), "round {round}: refused but selects");
            assert!(ct
                .delete_matching(&filter, DeleteOptions::default())
                .is_err());
            let left: BTreeSet<Key> = ct.flows().unwrap().map(|f| key(&f.unwrap())).collect();
            assert_eq!(
                left, keep,
                "round {round}: a refused delete changed the table"
            );
            continue;
        }
        let report = ct
            .delete_matching(&filter, DeleteOptions::default())
            .unwrap();
        *paths.entry(format!("{:?}", report.path)).or_insert(0) += 1;
        let left: BTreeSet<Key> = ct.flows().unwrap().map(|f| key(&f.unwrap())).collect();
        assert_eq!(left, keep, "round {round}: {spec:?} via {:?}", report.path);
        let gone = (all.len() - keep.len()) as u64;
        assert_eq!(report.deleted, gone, "round {round}: {report:?}");
        assert_eq!(report.matched, gone);
        assert_eq!(report.failed_total() + report.already_gone, 0, "{report:?}");
    }
    eprintln!("paths taken: {paths:?}");
    assert!(
        paths.contains_key("KernelFlush") && paths.contains_key("DumpAndDelete"),
        "{paths:?}"
    );
}

#[test]
fn filters_the_kernel_gets_wrong_never_widen_a_delete() {
    require_root!();
    let ns = ScratchNs::new("safety");
    let mut ct = ns.conntrack();
    let a = |last: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last));
    let mut specs = Vec::new();
    for i in 1..=3u16 {
        specs.push(
            FlowSpec::new(Tuple::tcp((a(i), 1000), (a(100), 80)))
                .timeout(600)
                .mark(u32::from(i)),
        );
        specs.push(
            FlowSpec::new(Tuple::udp((v4(u32::from(i)), 1000), (v4(100), 53)))
                .timeout(600)
                .mark(u32::from(i))
                .zone(if i == 2 { 7 } else { 0 }),
        );
    }
    fill(&mut ct, &specs);
    let count = |ct: &mut Conntrack| ct.count_matching(&Filter::new()).unwrap();

    // IPv6 source: the kernel would delete everything *except* it.
    let report = ct
        .delete_matching(&Filter::new().src(a(1)), DeleteOptions::default())
        .unwrap();
    assert_eq!(report.path, DeletePath::DumpAndDelete);
    assert_eq!((report.matched, report.deleted), (1, 1));
    assert_eq!(count(&mut ct), 5);
    assert_eq!(ct.count_matching(&Filter::new().src(a(1))).unwrap(), 0);

    // A kernel that ignores zone and status filters: must not flush everything.
    let mut old = ns.conntrack();
    old.assume_features(KernelFeatures::conservative());
    let report = old
        .delete_matching(&Filter::new().zone(7), DeleteOptions::default())
        .unwrap();
    assert_eq!(report.path, DeletePath::DumpAndDelete);
    assert_eq!(report.deleted, 1);
    assert_eq!(count(&mut ct), 4);
    let report = old
        .delete_matching(
            &Filter::new().status(Status::ASSURED),
            DeleteOptions::default(),
        )
        .unwrap();
    assert_eq!(
        (report.path, report.deleted),
        (DeletePath::DumpAndDelete, 0)
    );
    assert_eq!(count(&mut ct), 4);

    // A mask always travels with its value: odd marks only, in one kernel flush.
    let report = ct
        .delete_matching(&Filter::new().mark_masked(1, 1), DeleteOptions::default())
        .unwrap();
    assert_eq!(report.path, DeletePath::KernelFlush);
    let left: Vec<u32> = ct
        .flows()
        .unwrap()
        .map(|f| f.unwrap().mark.unwrap())
        .collect();
    assert!(
        left.iter().all(|m| m % 2 == 0) && !left.is_empty(),
        "{left:?}"
    );

    // A per-family flush keeps the other family (nfgenmsg version 1).
    for spec in &specs {
        ct.create_or_update(spec).unwrap();
    }
    let before_v6 = ct
        .count_matching(&Filter::new().family(Family::Ipv6))
        .unwrap();
    let report = ct
        .delete_matching(
            &Filter::new().family(Family::Ipv4),
            DeleteOptions::default(),
        )
        .unwrap();
    assert_eq!(report.path, DeletePath::KernelFlush);
    assert_eq!(
        ct.count_matching(&Filter::new().family(Family::Ipv4))
            .unwrap(),
        0
    );
    assert_eq!(
        ct.count_matching(&Filter::new().family(Family::Ipv6))
            .unwrap(),
        before_v6
    );

    // An empty filter is refused; flush() is the explicit way.
    assert!(ct
        .delete_matching(&Filter::new(), DeleteOptions::default())
        .is_err());
    ct.flush().unwrap();
    assert_eq!(count(&mut ct), 0);
}

#[test]
fn single_delete_echoes_zone_and_id() {
    require_root!();
    let ns = ScratchNs::new("delone");
    let mut ct = ns.conntrack();
    let orig = Tuple::udp((v4(1), 1), (v4(2), 2));
    ct.create(&FlowSpec::new(orig).timeout(60).zone(4)).unwrap();
    let flow = ct.get(&orig, 4).unwrap().unwrap();
    assert!(
        !ct.delete(&orig, 0, None).unwrap(),
        "zone 0 has no such flow"
    );
    let wrong = FlowId([0xde, 0xad, 0xbe, 0xef]);
    assert!(
        !ct.delete(&orig, 4, Some(wrong)).unwrap(),
        "a different id is spared"
    );
    assert!(ct.delete_flow(&flow).unwrap());
    assert!(!ct.delete_flow(&flow).unwrap(), "already gone");
    assert_eq!(ct.count().unwrap(), 0);
}

#[test]
fn count_by_agrees_with_grouping_a_full_dump_by_hand() {
    require_root!();
    let ns = ScratchNs::new("countby");
    let mut ct = ns.conntrack();
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    fill(&mut ct, &random_table(&mut rng, 500));
    let all: Vec<Flow> = ct.flows().unwrap().collect::<Result<_>>().unwrap();
    let filter = Filter::new().status(Status::SEEN_REPLY);
    let counts = ct
        .count_by(&[GroupBy::Source, GroupBy::DestinationPort], &filter, 5)
        .unwrap();
    let mut by_hand: BTreeMap<(IpAddr, Option<u16>), u64> = BTreeMap::new();
    for flow in all.iter().filter(|f| f.status.seen_reply()) {
        *by_hand
            .entry((flow.orig.src, flow.orig.dst_port()))
            .or_default() += 1;
    }
    let total: u64 = by_hand.values().sum();
    assert_eq!(counts.total, total);
    assert_eq!(counts.groups.len(), 5);
    assert_eq!(
        counts.other + counts.groups.iter().map(|g| g.1).sum::<u64>(),
        total
    );
    assert_eq!(counts.other_groups as usize, by_hand.len() - 5);
    for (key, n) in &counts.groups {
        let port = match key[1] {
            GroupValue::Number(p) => Some(p as u16),
            GroupValue::None => None,
            other => panic!("{other:?}"),
        };
        let GroupValue::Addr(src) = key[0] else {
            panic!("{key:?}")
        };
        assert_eq!(by_hand[&(src, port)], *n);
    }
    let mut sorted: Vec<u64> = by_hand.values().copied().collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(
        counts.groups.iter().map(|g| g.1).collect::<Vec<_>>(),
        sorted[..5].to_vec()
    );
    // By protocol, everything in one pass, no top limit.
    let protocols = ct
        .count_by(&[GroupBy::Protocol], &Filter::new(), usize::MAX)
        .unwrap();
    assert_eq!(protocols.total, 500);
    assert_eq!(protocols.other, 0);
    for (key, n) in protocols.groups {
        let GroupValue::Number(p) = key[0] else {
            panic!()
        };
        assert_eq!(
            all.iter().filter(|f| u32::from(f.protocol()) == p).count() as u64,
            n
        );
    }
}

#[test]
fn bulk_delete_of_a_ten_percent_source_set_on_100k_flows() {
    require_root!();
    let ns = ScratchNs::new("bulk");
    let mut ct = ns.conntrack();
    const FLOWS: u32 = 100_000;
    for i in 0..FLOWS {
        let spec = FlowSpec::new(Tuple::udp((v4(i), 4000), ([192, 0, 2, 1], 53))).timeout(3600);
        ct.create(&spec).unwrap();
    }
    let victims: Vec<IpAddr> = (0..FLOWS).filter(|i| i % 10 == 3).map(v4).collect();
    let filter = Filter::new().src_any(victims.iter().copied());
    let dry = ct
        .delete_matching(
            &filter,
            DeleteOptions {
                dry_run: true,
                ..DeleteOptions::default()
            },
        )
        .unwrap();
    assert_eq!(
        (dry.path, dry.matched, dry.deleted),
        (DeletePath::DryRun, 10_000, 0)
    );
    assert_eq!(ct.count().unwrap(), FLOWS);
    let report = ct
        .delete_matching(&filter, DeleteOptions::default())
        .unwrap();
    assert_eq!(report.path, DeletePath::DumpAndDelete);
    assert_eq!(report.matched, 10_000);
    assert_eq!(
        report.deleted + report.already_gone + report.failed_total(),
        report.matched
    );
    assert_eq!(report.deleted, 10_000, "{report:?}");
    assert_eq!(ct.count().unwrap(), FLOWS - 10_000);
    assert_eq!(ct.count_matching(&filter).unwrap(), 0);
    // Limit: stops after exactly that many.
    let limited = ct
        .delete_matching(
            &Filter::new().src("10.0.0.0/8".parse::<Cidr>().unwrap()),
            DeleteOptions {
                limit: Some(1000),
                ..DeleteOptions::default()
            },
        )
        .unwrap();
    assert_eq!((limited.matched, limited.deleted), (1000, 1000));
    assert_eq!(ct.count().unwrap(), FLOWS - 11_000);
}

#[test]
fn zone_filter_matches_directional_zones_like_the_kernel() {
    require_root!();
    let ns = ScratchNs::new("dirzone");
    ns.exec(&[
        "conntrack",
        "-I",
        "-p",
        "udp",
        "-s",
        "10.9.0.1",
        "-d",
        "10.9.0.2",
        "--sport",
        "1",
        "--dport",
        "2",
        "-t",
        "60",
        "--reply-zone",
        "6",
    ]);
    ns.exec(&[
        "conntrack",
        "-I",
        "-p",
        "udp",
        "-s",
        "10.9.0.3",
        "-d",
        "10.9.0.4",
        "--sport",
        "1",
        "--dport",
        "2",
        "-t",
        "60",
        "--orig-zone",
        "5",
    ]);
    let mut ct = ns.conntrack();
    for zone in [0u16, 5, 6] {
        let filter = Filter::new().zone(zone);
        let kernel = ct.count_matching(&filter).unwrap();
        let mut userspace = ns.conntrack();
        userspace.assume_features(KernelFeatures::conservative());
        assert_eq!(
            userspace.count_matching(&filter).unwrap(),
            kernel,
            "zone {zone}"
        );
        assert_eq!(kernel, u64::from(zone != 0), "zone {zone}");
    }
}

#[test]
fn reply_direction_addresses_select_and_flush_exactly() {
    require_root!();
    let ns = ScratchNs::new("replyaddr");
    let mut ct = ns.conntrack();
    // Three flows from one client; two answered by a NAT-like reply address.
    for (i, reply_src) in [(1u32, 200u32), (2, 200), (3, 3)] {
        let orig = Tuple::tcp((v4(i), 1000), (v4(3), 80));
        let reply = Tuple::tcp((v4(reply_src), 80), (v4(i), 1000));
        ct.create(&FlowSpec::new(orig).reply(reply).timeout(600))
            .unwrap();
    }
    let filter = Filter::new().reply_src(Cidr::from(v4(200)));
    assert_eq!(ct.count_matching(&filter).unwrap(), 2);
    let report = ct
        .delete_matching(&filter, DeleteOptions::default())
        .unwrap();
    assert_eq!(report.path, DeletePath::KernelFlush, "{report:?}");
    let left: Vec<Flow> = ct.flows().unwrap().collect::<Result<_>>().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].reply.src, v4(3));
    let filter = Filter::new()
        .reply_dst(Cidr::from(v4(3)))
        .protocol(proto::TCP);
    assert_eq!(
        ct.delete_matching(&filter, DeleteOptions::default())
            .unwrap()
            .deleted,
        1
    );
    assert_eq!(ct.count().unwrap(), 0);
}

#[test]
fn delete_rate_is_respected() {
    require_root!();
    let ns = ScratchNs::new("rate");
    let mut ct = ns.conntrack();
    for i in 0..1024u32 {
        ct.create(&FlowSpec::new(Tuple::udp((v4(i), 1), (v4(5000), 2))).timeout(600))
            .unwrap();
    }
    let started = std::time::Instant::now();
    let report = ct
        .delete_matching(
            &Filter::new().src("10.0.0.0/16".parse::<Cidr>().unwrap()),
            DeleteOptions {
                rate: Some(4096),
                ..DeleteOptions::default()
            },
        )
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.deleted, 1024);
    // 1024 deletes at 4096/s: at least ~0.2 s (the last batch is not waited for).
    assert!(
        elapsed >= std::time::Duration::from_millis(180),
        "{elapsed:?}"
    );
}

/// Issue 12, cases 1 to 5: deletes that used to remove more than asked.
#[test]
fn no_delete_removes_more_than_its_filter_says() {
    require_root!();
    let ns = ScratchNs::new("narrow");
    let mut ct = ns.conntrack();
    let mut specs = Vec::new();
    for (i, mark) in [0u32, 0, 0, 0x100, 42].into_iter().enumerate() {
        specs.push(
            FlowSpec::new(Tuple::tcp((v4(1 + i as u32), 1000), (v4(100), 80)))
                .timeout(600)
                .tcp_state(TcpState::Established)
                .mark(mark),
        );
    }
    // A GRE flow whose destination key is 0x35 (53), where ports would be.
    specs.push(
        FlowSpec::new(Tuple {
            l4: L4::Ports { src: 7, dst: 0x35 },
            ..Tuple::generic(proto::GRE, v4(20), v4(21))
        })
        .timeout(600),
    );
    specs.push(FlowSpec::new(Tuple::udp((v4(30), 5000), (v4(31), 53))).timeout(600));
    fill(&mut ct, &specs);
    let all = |ct: &mut Conntrack| -> BTreeSet<Key> {
        ct.flows().unwrap().map(|f| key(&f.unwrap())).collect()
    };
    let before = all(&mut ct);
    assert_eq!(before.len(), specs.len());
    let cli_count = |args: &[&str]| {
        let mut full = vec!["-L"];
        full.extend_from_slice(args);
        ns.conntrack_cli(&full).lines().count()
    };
    for ct in [&mut ct, &mut {
        let mut old = ns.conntrack();
        old.assume_features(KernelFeatures::default());
        old
    }] {
        // 1. A mark value with bits outside its mask: refused, as it selects nothing.
        assert_eq!(cli_count(&["--mark", "0x100/0xff"]), 0, "conntrack-tools");
        for (value, mask) in [(0x100, 0xff), (42, 0xf)] {
            let filter = Filter::new().mark_masked(value, mask);
            let err = ct
                .delete_matching(&filter, DeleteOptions::default())
                .unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{err}");
            assert!(
                err.to_string().contains(&format!("{value:#x}/{mask:#x}")),
                "{err}"
            );
            assert!(ct.count_matching(&filter).is_err());
            assert_eq!(all(ct), before, "nothing deleted");
        }
        // 2. A zero mask holds for every flow: the empty-filter guard applies.
        for filter in [
            Filter::new().mark_masked(0, 0),
            Filter::new().mark_masked(7, 0),
        ] {
            assert!(ct
                .delete_matching(&filter, DeleteOptions::default())
                .is_err());
            assert_eq!(all(ct), before, "{filter:?} deleted something");
        }
        // 3. limit 0 deletes nothing.
        let report = ct
            .delete_matching(
                &Filter::new().protocol(proto::TCP),
                DeleteOptions {
                    limit: Some(0),
                    ..DeleteOptions::default()
                },
            )
            .unwrap();
        assert_eq!((report.matched, report.deleted), (0, 0));
        assert_eq!(all(ct), before, "limit 0");
        // 4. A port condition never matches a GRE key.
        let dns = Filter::new().dst_port(53);
        let report = ct
            .delete_matching(
                &dns,
                DeleteOptions {
                    dry_run: true,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(report.matched, 1, "only the UDP flow: {report:?}");
        // 5. A contradiction asks nothing of the kernel: a clear refusal, not EINVAL.
        let v6: Cidr = "2001:db8:1::1".parse().unwrap();
        let contradiction = Filter::new().family(Family::Ipv4).src(v6);
        for err in [
            ct.count_matching(&contradiction).unwrap_err(),
            ct.delete_matching(&contradiction, DeleteOptions::default())
                .unwrap_err(),
        ] {
            assert!(matches!(err, Error::InvalidInput(_)), "{err}");
            assert!(err.to_string().contains("family ipv4"), "{err}");
        }
        assert_eq!(all(ct), before);
    }
    // 4, for real: deleting port 53 leaves the GRE flow.
    let report = ct
        .delete_matching(&Filter::new().dst_port(53), DeleteOptions::default())
        .unwrap();
    assert_eq!(report.deleted, 1, "{report:?}");
    assert!(all(&mut ct).iter().any(|(t, _)| t.protocol == proto::GRE));
    // 1, for real: the masked value the kernel means.
    let report = ct
        .delete_matching(
            &Filter::new().mark_masked(0xa, 0xf),
            DeleteOptions::default(),
        )
        .unwrap();
    assert_eq!(report.deleted, 1, "mark 42 & 0xf == 0xa: {report:?}");
}

/// Issue 12, case 6: updates add status bits, as `conntrack -U -u` does.
#[test]
fn updates_add_status_bits_like_conntrack_tools() {
    require_root!();
    let ns = ScratchNs::new("status");
    let mut ct = ns.conntrack();
    let orig = Tuple::tcp((v4(1), 1000), (v4(2), 80));
    let spec = FlowSpec::new(orig)
        .timeout(600)
        .tcp_state(TcpState::Established)
        .status(Status::SEEN_REPLY | Status::ASSURED);
    ct.create(&spec).unwrap();
    let status = |ct: &mut Conntrack| ct.get(&orig, 0).unwrap().unwrap().status;
    ct.update(&FlowSpec::new(orig).status(Status::FIXED_TIMEOUT))
        .unwrap();
    assert_eq!(
        status(&mut ct),
        Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED | Status::FIXED_TIMEOUT
    );
    // conntrack-tools agrees on the same kind of flow.
    let other = Tuple::tcp((v4(3), 1000), (v4(2), 80));
    let mut copy = spec.clone();
    copy.orig = other;
    copy.reply = other.reversed();
    ct.create(&copy).unwrap();
    ns.conntrack_cli(&[
        "-U",
        "-p",
        "tcp",
        "-s",
        "10.0.0.3",
        "-d",
        "10.0.0.2",
        "--sport",
        "1000",
        "--dport",
        "80",
        "-u",
        "FIXED_TIMEOUT",
    ]);
    assert!(ct
        .get(&other, 0)
        .unwrap()
        .unwrap()
        .status
        .contains(Status::FIXED_TIMEOUT));

    // ASSURED on a flow that has only SEEN_REPLY.
    let replied = Tuple::udp((v4(4), 53), (v4(5), 53));
    ct.create(
        &FlowSpec::new(replied)
            .timeout(600)
            .status(Status::SEEN_REPLY),
    )
    .unwrap();
    ct.update(&FlowSpec::new(replied).status(Status::ASSURED))
        .unwrap();
    assert!(ct
        .get(&replied, 0)
        .unwrap()
        .unwrap()
        .status
        .contains(Status::SEEN_REPLY | Status::ASSURED));

    // create_or_update on an existing flow adds too.
    ct.create_or_update(
        &FlowSpec::new(replied)
            .timeout(900)
            .status(Status::FIXED_TIMEOUT),
    )
    .unwrap();
    let flow = ct.get(&replied, 0).unwrap().unwrap();
    assert!(flow
        .status
        .contains(Status::SEEN_REPLY | Status::ASSURED | Status::FIXED_TIMEOUT));

    // The word as given is still available, with the kernel's rule explained.
    let err = ct
        .update(&FlowSpec::new(orig).status_word(Status::FIXED_TIMEOUT))
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::EBUSY));
    let text = err.to_string();
    assert!(
        text.contains("SEEN_REPLY") && !text.contains("dump is already running"),
        "{text}"
    );
    ct.update(&FlowSpec::new(replied).status_word(Status::SEEN_REPLY | Status::ASSURED))
        .unwrap();
    assert!(
        ct.get(&replied, 0)
            .unwrap()
            .unwrap()
            .status
            .contains(Status::FIXED_TIMEOUT),
        "the kernel clears no bit"
    );

    // The kernel never changes a FIXED_TIMEOUT flow's timeout: EPERM, which
    // is not about privileges here, and the message says so.
    let err = ct.update(&FlowSpec::new(orig).timeout(30)).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EPERM), "{err}");
    assert!(err.to_string().contains("FIXED_TIMEOUT"), "{err}");

    // Updating a flow that does not exist is still ENOENT.
    let missing = Tuple::tcp((v4(9), 1), (v4(9), 2));
    let err = ct
        .update(&FlowSpec::new(missing).status(Status::ASSURED))
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

/// Issue 12, case 8: status words beyond the kernel's 16 bits are refused at the edge.
#[test]
fn out_of_range_status_is_refused_before_the_kernel() {
    require_root!();
    let ns = ScratchNs::new("bounds");
    let mut ct = ns.conntrack();
    let orig = Tuple::tcp((v4(1), 1000), (v4(2), 80));
    let err = ct
        .create(
            &FlowSpec::new(orig)
                .timeout(60)
                .status(Status::from_bits_retain(0xffff_ffff)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("0xffffffff") && text.contains("0xffff0000"),
        "{text}"
    );
    // Within the 16 bits, EXPECTED and DYING are what the kernel answers EBUSY to.
    for bits in [
        Status::EXPECTED,
        Status::DYING,
        Status::from_bits_retain(0xffff),
    ] {
        let err = ct
            .create(&FlowSpec::new(orig).timeout(60).status(bits))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{bits:?}: {err}");
        assert!(err.to_string().contains("refuses"), "{err}");
    }
    assert_eq!(ct.count_matching(&Filter::new()).unwrap(), 0);
    // Bits the kernel keeps for itself otherwise are ignored, as it does.
    ct.create(
        &FlowSpec::new(orig)
            .timeout(60)
            .status(Status::SEEN_REPLY | Status::SRC_NAT | Status::FIXED_TIMEOUT),
    )
    .unwrap();
    let flow = ct.get(&orig, 0).unwrap().unwrap();
    assert_eq!(
        flow.status,
        Status::CONFIRMED | Status::SEEN_REPLY | Status::FIXED_TIMEOUT
    );
}

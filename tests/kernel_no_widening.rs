// SPDX-License-Identifier: MIT OR Apache-2.0
//! The no-widening property, on the real kernel: no filter selects or deletes
//! a flow its conditions do not describe.
//!
//! Thousands of random filters over every condition kind (address sets and
//! networks of both families, mixed with a family of the other; protocol sets
//! including ones without ports; port sets and ranges, reversed ones
//! included; TCP states; status bits set and clear; marks under random masks,
//! zero masks and values with bits outside the mask; zones; labels) run
//! against a random table of every protocol conntrack tracks (GRE, whose keys
//! sit where ports would, and generic protocols included). For each filter,
//! four answers must equal the reference predicate below, written from
//! conntrack-tools' documented semantics and not from the library's `Filter`:
//! `Filter::matches`, the pushed-down dump, the userspace-only dump and the
//! count; for a sample, what a delete removes (kernel-flush path and
//! dump-and-delete path). A filter the library refuses must select nothing by
//! the reference (or everything, for the empty-filter guard of a delete), and
//! a refused delete leaves the table untouched.
//!
//! The same property for the `gc` example against `conntrack -L`: with
//! options drawn the same way (those both take), `gc --yes` deletes exactly
//! the flows `conntrack -L` lists, and never another one.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use common::{Rng, ScratchNs};
use conntrack::*;

fn v4(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, a, b))
}

fn v6(a: u8, b: u8) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0xfd00,
        0,
        0,
        u16::from(a),
        0,
        0,
        0,
        u16::from(b),
    ))
}

/// Every protocol the table holds: with ports, with ICMP identities, GRE
/// (keys in the port slots), DCCP (tracked generically by this kernel) and
/// two generic ones.
const PROTOCOLS: [u8; 9] = [
    proto::TCP,
    proto::UDP,
    proto::UDPLITE,
    proto::SCTP,
    proto::DCCP,
    proto::ICMP,
    proto::GRE,
    99,
    2,
];
const PORTS: [u16; 6] = [53, 80, 443, 1000, 1001, 0x35 + 256];
const MARKS: [u32; 7] = [0, 1, 7, 42, 0x100, 0x1ff, 0xdead_beef];
const LABEL_BITS: [u32; 4] = [0, 5, 64, 127];
const STATUS_BITS: [Status; 5] = [
    Status::SEEN_REPLY,
    Status::ASSURED,
    Status::FIXED_TIMEOUT,
    Status::EXPECTED,
    Status::SRC_NAT,
];

fn address(rng: &mut Rng, ipv6: bool) -> IpAddr {
    let (a, b) = (rng.below(2) as u8, 1 + rng.below(6) as u8);
    if ipv6 {
        v6(a, b)
    } else {
        v4(a, b)
    }
}

/// A random table of `n` flows, unique by (original tuple, zone).
fn random_table(rng: &mut Rng, n: u16) -> Vec<FlowSpec> {
    let mut specs = Vec::new();
    for i in 0..n {
        let ipv6 = rng.chance(30);
        let (src, dst) = (address(rng, ipv6), address(rng, ipv6));
        let protocol = match rng.pick(&PROTOCOLS) {
            proto::ICMP if ipv6 => proto::ICMPV6,
            p => p,
        };
        let sport = 2000 + i;
        let dport = rng.pick(&PORTS);
        let orig = match protocol {
            proto::TCP | proto::UDP | proto::UDPLITE | proto::SCTP => {
                Tuple::ports(protocol, src, sport, dst, dport)
            }
            proto::ICMP => Tuple::icmp(src, dst, i, 8, 0),
            proto::ICMPV6 => Tuple::icmp(src, dst, i, 128, 0),
            proto::GRE => Tuple {
                l4: L4::Ports {
                    src: sport,
                    dst: dport,
                },
                ..Tuple::generic(proto::GRE, src, dst)
            },
            // Generic tracking: the addresses are the whole tuple, so they
            // carry the index to stay unique.
            _ => {
                let unique = |base: IpAddr| match base {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(10, 9, (i >> 8) as u8, i as u8)),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(0xfd09, 0, 0, 0, 0, 0, 0, i)),
                };
                Tuple::generic(protocol, src, unique(dst))
            }
        };
        let mut spec = FlowSpec::new(orig).timeout(3600).mark(if rng.chance(15) {
            rng.next() as u32
        } else {
            rng.pick(&MARKS)
        });
        if rng.chance(12) {
            // NAT-like: someone else answers.
            let mut reply = orig.reversed();
            reply.src = if ipv6 { v6(7, i as u8) } else { v4(7, i as u8) };
            spec = spec.reply(reply);
        }
        if protocol == proto::TCP {
            spec = spec.tcp_state(TcpState::from_raw(1 + rng.below(9) as u8));
        }
        let mut status = Status::empty();
        for bit in [Status::SEEN_REPLY, Status::ASSURED, Status::FIXED_TIMEOUT] {
            if rng.chance(40) {
                status |= bit;
            }
        }
        spec = spec.status(status);
        if rng.chance(40) {
            let mut labels = Labels::default();
            for bit in LABEL_BITS {
                if rng.chance(50) {
                    labels = labels.with(bit);
                }
            }
            spec = spec.labels(labels);
        }
        if rng.chance(25) {
            spec = spec.zone(1 + rng.below(2) as u16);
        }
        specs.push(spec);
    }
    specs
}

/// The conditions of a random filter as plain data, so that the reference
/// predicate never goes through the library's `Filter`.
#[derive(Debug, Clone, Default)]
struct Conditions {
    family: Option<Family>,
    /// Whether there is a protocol condition (its list may be empty).
    protocol_condition: bool,
    protocols: Vec<u8>,
    /// Original source, original destination, reply source, reply destination.
    addresses: [Option<Vec<(IpAddr, u8)>>; 4],
    src_ports: Option<Vec<u16>>,
    dst_ports: Option<Vec<u16>>,
    states: Vec<u8>,
    status_set: Status,
    status_unset: Status,
    mark: Option<(u32, u32)>,
    zone: Option<u16>,
    labels: Option<Vec<u32>>,
}

fn random_ports(rng: &mut Rng) -> Vec<u16> {
    if rng.chance(3) {
        return Vec::new();
    }
    match rng.below(4) {
        0 => vec![rng.pick(&PORTS)],
        1 => (0..1 + rng.below(3)).map(|_| rng.pick(&PORTS)).collect(),
        // A range, sometimes reversed (empty: selects nothing).
        2 => {
            let (lo, hi) = (rng.pick(&PORTS), rng.pick(&PORTS));
            (lo..=hi).collect()
        }
        _ => vec![rng.below(65536) as u16],
    }
}

fn random_conditions(rng: &mut Rng) -> Conditions {
    let mut c = Conditions::default();
    if rng.chance(25) {
        c.family = Some(rng.pick(&[Family::Ipv4, Family::Ipv6, Family::All]));
    }
    if rng.chance(45) {
        c.protocol_condition = true;
        for _ in 0..if rng.chance(3) { 0 } else { 1 + rng.below(3) } {
            c.protocols.push(match rng.pick(&PROTOCOLS) {
                proto::ICMP if rng.chance(50) => proto::ICMPV6,
                p => p,
            });
        }
    }
    let ipv6 = rng.chance(35);
    for slot in 0..4 {
        if !rng.chance(if slot < 2 { 30 } else { 12 }) {
            continue;
        }
        let mut set = Vec::new();
        // Sometimes no alternative at all: any of nothing selects nothing.
        let entries = if rng.chance(4) { 0 } else { 1 + rng.below(3) };
        for _ in 0..entries {
            let family = if rng.chance(15) { !ipv6 } else { ipv6 };
            let addr = if slot == 2 && rng.chance(50) {
                if family {
                    v6(7, rng.below(200) as u8)
                } else {
                    v4(7, rng.below(200) as u8)
                }
            } else {
                address(rng, family)
            };
            let max = if family { 128 } else { 32 };
            let prefix = match rng.below(5) {
                0 => 0,
                1 => rng.below(u64::from(max) + 1) as u8,
                2 => max - 8,
                _ => max,
            };
            set.push((addr, prefix));
        }
        c.addresses[slot] = Some(set);
    }
    if rng.chance(20) {
        c.src_ports = Some(random_ports(rng));
    }
    if rng.chance(30) {
        c.dst_ports = Some(random_ports(rng));
    }
    if rng.chance(20) {
        for _ in 0..1 + rng.below(2) {
            c.states.push(if rng.chance(3) {
                12
            } else {
                rng.below(10) as u8
            });
        }
    }
    for bit in STATUS_BITS {
        match rng.below(12) {
            0 => c.status_set |= bit,
            1 => c.status_unset |= bit,
            _ => {}
        }
    }
    if rng.chance(35) {
        let mask = match rng.below(6) {
            0 => u32::MAX,
            1 => 0xff,
            2 => 0xf,
            3 => 0,
            _ => rng.next() as u32,
        };
        let value = match rng.below(5) {
            0 => rng.next() as u32,
            1 => rng.next() as u32 & mask,
            2 => 0,
            _ => rng.pick(&MARKS) & if rng.chance(70) { mask } else { u32::MAX },
        };
        c.mark = Some((value, mask));
    }
    if rng.chance(15) {
        c.zone = Some(rng.below(3) as u16);
    }
    if rng.chance(12) {
        c.labels = Some(
            LABEL_BITS
                .iter()
                .copied()
                .filter(|_| rng.chance(40))
                .collect(),
        );
    }
    c
}

fn to_filter(c: &Conditions) -> Filter {
    let mut f = Filter::new();
    if let Some(family) = c.family {
        f = f.family(family);
    }
    if c.protocol_condition {
        f = f.protocols(c.protocols.iter().copied());
    }
    for (slot, set) in c.addresses.iter().enumerate() {
        let Some(set) = set else { continue };
        let cidrs = set.iter().map(|&(a, p)| Cidr::new(a, p).unwrap());
        f = match slot {
            0 => f.src_any(cidrs),
            1 => f.dst_any(cidrs),
            2 => f.reply_src_any(cidrs),
            _ => f.reply_dst_any(cidrs),
        };
    }
    if let Some(ports) = &c.src_ports {
        f = f.src_ports(ports.iter().copied());
    }
    if let Some(ports) = &c.dst_ports {
        f = f.dst_ports(ports.iter().copied());
    }
    for &state in &c.states {
        f = f.tcp_state(TcpState::from_raw(state));
    }
    f = f.status(c.status_set).status_unset(c.status_unset);
    if let Some((value, mask)) = c.mark {
        f = f.mark_masked(value, mask);
    }
    if let Some(zone) = c.zone {
        f = f.zone(zone);
    }
    if let Some(bits) = &c.labels {
        f = f.labels(bits.iter().fold(Labels::default(), |l, &b| l.with(b)));
    }
    f
}

/// The reference: conntrack-tools' documented semantics (conntrack(8),
/// ctnetlink_filter_match), applied to a flow as dumped.
fn reference(c: &Conditions, flow: &Flow) -> bool {
    let in_net = |addr: IpAddr, (net, prefix): (IpAddr, u8)| match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            prefix == 0 || (u32::from(a) ^ u32::from(n)) >> (32 - u32::from(prefix)) == 0
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            prefix == 0 || (u128::from(a) ^ u128::from(n)) >> (128 - u32::from(prefix)) == 0
        }
        _ => false,
    };
    let addresses = [flow.orig.src, flow.orig.dst, flow.reply.src, flow.reply.dst];
    // `--sport`/`--dport` are options of the port protocols' modules only.
    let has_ports = matches!(
        flow.orig.protocol,
        proto::TCP | proto::UDP | proto::UDPLITE | proto::SCTP | proto::DCCP
    );
    let port_ok = |set: &Option<Vec<u16>>, port: Option<u16>| match set {
        None => true,
        Some(set) => has_ports && port.is_some_and(|p| set.contains(&p)),
    };
    // The builder: a bit asked both set and clear is clear (the later call wins).
    let required = c.status_set & !c.status_unset;
    c.family.map_or(true, |family| match family {
        Family::Ipv4 => !flow.orig.src.is_ipv6(),
        Family::Ipv6 => flow.orig.src.is_ipv6(),
        _ => true,
    }) && (!c.protocol_condition || c.protocols.contains(&flow.orig.protocol))
        && c.addresses.iter().zip(addresses).all(|(set, addr)| {
            set.as_ref()
                .map_or(true, |set| set.iter().any(|&net| in_net(addr, net)))
        })
        && port_ok(&c.src_ports, flow.orig.src_port())
        && port_ok(&c.dst_ports, flow.orig.dst_port())
        && (c.states.is_empty()
            || (flow.orig.protocol == proto::TCP
                && flow
                    .tcp_state()
                    .is_some_and(|s| c.states.contains(&s.raw()))))
        && flow.status.contains(required)
        && (flow.status & c.status_unset).is_empty()
        && c.mark
            .map_or(true, |(value, mask)| flow.mark.unwrap_or(0) & mask == value)
        && c.zone.map_or(true, |z| flow.zone.unwrap_or(0) == z)
        && c.labels.as_ref().map_or(true, |bits| {
            let have = flow.labels.unwrap_or_default();
            bits.iter().all(|&b| have.0 >> b & 1 == 1)
        })
}

type Key = (Tuple, Option<u16>);

fn key(flow: &Flow) -> Key {
    (flow.orig, flow.zone)
}

fn spec_key(spec: &FlowSpec) -> Key {
    (spec.orig, spec.zone)
}

fn table(ct: &mut Conntrack) -> BTreeMap<Key, Flow> {
    ct.flows()
        .unwrap()
        .map(|f| {
            let f = f.unwrap();
            (key(&f), f)
        })
        .collect()
}

/// A namespace whose ruleset uses labels (the kernel keeps no label storage
/// otherwise), filled with `n` random flows.
fn labelled_namespace(tag: &str, rng: &mut Rng, n: u16) -> (ScratchNs, Vec<FlowSpec>) {
    let ns = ScratchNs::new(tag);
    ns.nft("add rule inet ctrs in ct label set 127");
    let specs = random_table(rng, n);
    let mut ct = ns.conntrack();
    for spec in &specs {
        ct.create(spec)
            .unwrap_or_else(|e| panic!("create {:?}: {e}", spec.orig));
    }
    (ns, specs)
}

#[test]
fn no_filter_selects_or_deletes_more_than_it_says() {
    require_root!();
    let seed = 0x6e6f_2d77_6964_656e;
    let mut rng = Rng(seed);
    let (ns, specs) = labelled_namespace("widen", &mut rng, 240);
    let by_key: BTreeMap<Key, FlowSpec> = specs.iter().map(|s| (spec_key(s), s.clone())).collect();
    let mut ct = ns.conntrack();
    let mut userspace = ns.conntrack();
    userspace.assume_features(KernelFeatures::default());
    let all = table(&mut ct);
    assert_eq!(all.len(), specs.len(), "every flow created");
    let protocols: BTreeSet<u8> = all.values().map(|f| f.protocol()).collect();
    assert!(protocols.contains(&proto::GRE) && protocols.contains(&proto::ICMPV6));
    assert!(all.values().any(|f| f.labels.is_some_and(|l| l.0 != 0)));

    let (filters, deletes) = (3000, 360);
    let mut tally: BTreeMap<&str, u32> = BTreeMap::new();
    for round in 0..filters {
        let c = random_conditions(&mut rng);
        let filter = to_filter(&c);
        let expected: BTreeSet<Key> = all.values().filter(|f| reference(&c, f)).map(key).collect();
        let by_matches: BTreeSet<Key> = all
            .values()
            .filter(|f| filter.matches(*f))
            .map(key)
            .collect();
        assert_eq!(by_matches, expected, "round {round}: matches() for {c:?}");
        let delete_round = round % (filters / deletes) == 0;
        if let Err(refusal) = filter.validate() {
            *tally.entry("refused").or_default() += 1;
            // A refusal is for a filter that selects nothing, or for a
            // value out of range (a TCP state the kernel does not have).
            let out_of_range = c.states.iter().any(|&s| s > 9);
            assert!(
                expected.is_empty() || out_of_range,
                "round {round}: refused ({refusal}) but selects {} flows: {c:?}",
                expected.len()
            );
            assert!(matches!(
                ct.count_matching(&filter),
                Err(Error::InvalidInput(_))
            ));
            if delete_round {
                assert!(ct
                    .delete_matching(&filter, DeleteOptions::default())
                    .is_err());
                assert_eq!(
                    table(&mut ct).len(),
                    all.len(),
                    "round {round}: refused delete"
                );
            }
            continue;
        }
        *tally
            .entry(if expected.is_empty() {
                "selects none"
            } else {
                "selects some"
            })
            .or_default() += 1;
        let mut dump = ct.dump_filtered(&filter).unwrap();
        let mut pushed = BTreeSet::new();
        while let Some(flow) = dump.next_flow() {
            pushed.insert(key(&flow.unwrap().to_owned_flow()));
        }
        if dump.summary().filtered {
            *tally.entry("kernel-filtered").or_default() += 1;
        }
        drop(dump);
        assert_eq!(
            pushed, expected,
            "round {round}: pushed-down dump for {c:?}"
        );
        let slow: BTreeSet<Key> = userspace
            .flows_matching(&filter)
            .unwrap()
            .iter()
            .map(key)
            .collect();
        assert_eq!(slow, expected, "round {round}: userspace dump for {c:?}");
        assert_eq!(
            ct.count_matching(&filter).unwrap(),
            expected.len() as u64,
            "round {round}: count"
        );
        if !delete_round {
            continue;
        }
        // Both delete paths, in turn.
        let handle = if round / (filters / deletes) % 2 == 0 {
            &mut ct
        } else {
            &mut userspace
        };
        let result = handle.delete_matching(&filter, DeleteOptions::default());
        let left = table(&mut ct);
        let gone: BTreeSet<Key> = all
            .keys()
            .filter(|k| !left.contains_key(*k))
            .copied()
            .collect();
        match result {
            Err(e) => {
                assert!(filter.is_empty(), "round {round}: {e} for {c:?}");
                assert_eq!(
                    expected.len(),
                    all.len(),
                    "round {round}: empty selects all"
                );
                assert!(gone.is_empty(), "round {round}: refused delete deleted");
                *tally.entry("delete refused (empty)").or_default() += 1;
            }
            Ok(report) => {
                assert_eq!(gone, expected, "round {round}: {report:?} for {c:?}");
                assert_eq!(report.deleted, expected.len() as u64, "round {round}");
                *tally
                    .entry(match report.path {
                        DeletePath::KernelFlush => "delete: kernel flush",
                        _ => "delete: dump and delete",
                    })
                    .or_default() += 1;
            }
        }
        for k in gone {
            ct.create(&by_key[&k]).unwrap();
        }
    }
    eprintln!(
        "{filters} random filters on a {}-flow table: {tally:?}",
        all.len()
    );
    for outcome in [
        "refused",
        "selects none",
        "selects some",
        "kernel-filtered",
        "delete: kernel flush",
        "delete: dump and delete",
    ] {
        assert!(
            tally.get(outcome).is_some_and(|&n| n >= 5),
            "the generator reaches {outcome:?} often enough: {tally:?}"
        );
    }
}

/// Options for both `gc` and `conntrack -L`, drawn from what both take.
fn random_cli_options(rng: &mut Rng) -> (Vec<String>, Vec<String>) {
    let (mut gc, mut cli) = (Vec::<String>::new(), Vec::<String>::new());
    let mut both = |option_gc: &str, option_cli: &str, value: String| {
        gc.extend([option_gc.to_owned(), value.clone()]);
        cli.extend([option_cli.to_owned(), value]);
    };
    let ipv6 = rng.chance(30);
    if rng.chance(25) {
        both("--family", "-f", if ipv6 { "ipv6" } else { "ipv4" }.into());
    }
    let protocol = if rng.chance(60) {
        Some(rng.pick(&["tcp", "udp", "udplite", "sctp", "gre", "icmp", "icmpv6"]))
    } else {
        None
    };
    if let Some(p) = protocol {
        both("-p", "-p", p.into());
    }
    if rng.chance(30) {
        let family = if rng.chance(15) { !ipv6 } else { ipv6 };
        both("-s", "-s", address(rng, family).to_string());
    }
    if rng.chance(20) {
        both("-d", "-d", address(rng, ipv6).to_string());
    }
    // conntrack takes ports after a protocol with ports, states after tcp.
    if matches!(protocol, Some("tcp" | "udp")) {
        if rng.chance(40) {
            both("--dport", "--dport", rng.pick(&PORTS).to_string());
        }
        if rng.chance(15) {
            both("--sport", "--sport", (2000 + rng.below(240)).to_string());
        }
    }
    if protocol == Some("tcp") && rng.chance(40) {
        both(
            "--state",
            "--state",
            rng.pick(&["SYN_SENT", "ESTABLISHED", "TIME_WAIT", "CLOSE", "LISTEN"])
                .into(),
        );
    }
    if rng.chance(20) {
        both(
            "--status",
            "-u",
            rng.pick(&["ASSURED", "SEEN_REPLY", "FIXED_TIMEOUT"]).into(),
        );
    }
    if rng.chance(35) {
        let random = rng.next() as u32;
        let mask = rng.pick(&[u32::MAX, 0xff, 0xf, 0, random]);
        let value = match rng.below(4) {
            0 => rng.next() as u32,
            1 => rng.pick(&MARKS) & mask,
            _ => rng.pick(&MARKS),
        };
        let text = if mask == u32::MAX && rng.chance(50) {
            format!("{value:#x}")
        } else {
            format!("{value:#x}/{mask:#x}")
        };
        both("--mark", "-m", text);
    }
    if rng.chance(15) {
        both("--zone", "-w", rng.below(3).to_string());
    }
    (gc, cli)
}

/// `conntrack -L OPTIONS -o id` in the namespace: the ids listed, or `None`
/// when conntrack refuses the options.
fn conntrack_ids(ns: &ScratchNs, options: &[String]) -> Option<BTreeSet<u32>> {
    let output = Command::new("ip")
        .args(["netns", "exec", &ns.name, "conntrack", "-L"])
        .args(options)
        .args(["-o", "id"])
        .output()
        .expect("run conntrack (apt install conntrack)");
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).expect("utf-8 from conntrack");
    Some(
        text.lines()
            .filter_map(|line| line.rsplit_once("id=")?.1.trim().parse().ok())
            .collect(),
    )
}

#[test]
fn gc_deletes_exactly_what_conntrack_lists() {
    require_root!();
    let mut rng = Rng(0x6763_2d76_732d_636c);
    let (ns, specs) = labelled_namespace("gcwiden", &mut rng, 160);
    let by_key: BTreeMap<Key, FlowSpec> = specs.iter().map(|s| (spec_key(s), s.clone())).collect();
    let gc = common::example_binary("gc");
    let mut ct = ns.conntrack();
    let mut tally: BTreeMap<&str, u32> = BTreeMap::new();
    for round in 0..120 {
        let (gc_options, cli_options) = random_cli_options(&mut rng);
        let before = table(&mut ct);
        let listed = conntrack_ids(&ns, &cli_options);
        let output = Command::new(&gc)
            .args(["--netns", &ns.name, "--yes"])
            .args(&gc_options)
            .output()
            .unwrap();
        let after = table(&mut ct);
        let deleted: BTreeSet<u32> = before
            .iter()
            .filter(|(k, _)| !after.contains_key(*k))
            .map(|(_, f)| f.id.expect("dumps carry ids").value())
            .collect();
        let context = format!(
            "round {round}: gc {gc_options:?} ({}, {}) / conntrack -L {cli_options:?}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        match (output.status.code(), &listed) {
            (Some(0), Some(listed)) => {
                assert_eq!(&deleted, listed, "{context}");
                *tally
                    .entry(if listed.is_empty() {
                        "agree: none"
                    } else {
                        "agree: some"
                    })
                    .or_default() += 1;
            }
            (Some(0), None) => panic!("{context}: conntrack refused what gc deleted by"),
            (_, listed) => {
                assert!(deleted.is_empty(), "{context}: a refused gc deleted flows");
                // gc refuses a filter that selects nothing, or everything.
                let listed = listed.as_ref().map_or(0, BTreeSet::len);
                assert!(
                    listed == 0 || listed == before.len(),
                    "{context}: gc refused a filter conntrack answers with {listed} flows"
                );
                *tally.entry("gc refused").or_default() += 1;
            }
        }
        for (k, _) in before.iter().filter(|(k, _)| !after.contains_key(*k)) {
            ct.create(&by_key[k]).unwrap();
        }
    }
    eprintln!("gc against conntrack -L: {tally:?}");
    for outcome in ["agree: none", "agree: some", "gc refused"] {
        assert!(
            tally.get(outcome).is_some_and(|&n| n >= 5),
            "the generator reaches {outcome:?}: {tally:?}"
        );
    }
}

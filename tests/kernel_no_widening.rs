// SPDX-License-Identifier: MIT OR Apache-2.0
//! The no-widening property, on the real kernel: no filter selects or deletes
//! a flow its conditions do not describe.
//!
//! Thousands of random filters over every condition kind (address sets and
//! networks of both families, mixed with a family of the other; protocol sets
//! including ones without ports; port sets and ranges, reversed ones
//! included; TCP states; status bits set and clear, sometimes bits beyond the
//! kernel's 16; marks under random masks, zero masks and values with bits
//! outside the mask; zones; labels) run against a random table of every
//! protocol conntrack tracks (GRE, whose keys sit where ports would, and
//! generic protocols included). For each filter, the answers must equal the
//! reference predicate below, written from conntrack-tools' documented
//! semantics and not from the library's `Filter`: `Filter::matches`, the
//! pushed-down dump and count of a handle with the probed kernel features,
//! the dump and count of a userspace-only handle; and, for the delete rounds
//! (every sixth filter by default), what a delete removes on both paths: the
//! table has two copies in two namespaces, one per handle, so that the
//! kernel-filtering handle (a filtered flush where the kernel evaluates the
//! whole filter, else a prefiltered dump and delete) and the userspace-only
//! one (dump and delete) delete by the same filter from the same table. The
//! two sides run at once, on two threads.
//!
//! A filter the library refuses must select nothing by the reference, or
//! hold a value the kernel does not have (a TCP state above 9, a status bit
//! above 0x8000: always refused); its count and delete are refused on both
//! handles and leave both tables untouched. The empty-filter guard of a
//! delete refuses a filter that selects everything.
//!
//! The same property for the `gc` example against `conntrack -L`: with
//! options drawn the same way (those both take, ports with a protocol
//! without ports included: gc refuses them, conntrack too), `gc --yes`
//! deletes exactly the flows `conntrack -L` lists, and never another one.
//!
//! Seeds and sizes come from the environment, so a failure reproduces from
//! the line each test prints first: `CONNTRACK_NO_WIDENING_SEED`, `_FLOWS`,
//! `_FILTERS`, `_DELETES`; `CONNTRACK_NO_WIDENING_GC_SEED`, `_GC_FLOWS`,
//! `_GC_ROUNDS`. Below the default sizes the coverage checks (that the
//! generator reaches every outcome) are skipped.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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
    // Sometimes a bit beyond the kernel's 16 (0x1-0x8000): always refused.
    if rng.chance(3) {
        let unknown = Status::from_bits_retain(1 << (16 + rng.below(16)));
        if rng.chance(50) {
            c.status_set |= unknown;
        } else {
            c.status_unset |= unknown;
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

/// A number from environment variable `name` (decimal or `0x` hex), or
/// `default` when it is unset: the seeds and sizes of the properties below,
/// so that a failure reproduces (`CONNTRACK_NO_WIDENING_SEED=0x...`).
fn env_number(name: &str, default: u64) -> u64 {
    let Some(text) = std::env::var_os(name) else {
        return default;
    };
    let text = text.to_string_lossy();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    };
    parsed.unwrap_or_else(|| {
        panic!(
            "{name}={text:?}: not a number (decimal or 0x hex, 0-{})",
            u64::MAX
        )
    })
}

/// [`env_number`] for a seed: xorshift never leaves 0, so 0 is refused.
fn env_seed(name: &str, default: u64) -> u64 {
    let seed = env_number(name, default);
    assert!(
        seed != 0,
        "{name}=0: a seed must be non-zero (1-{})",
        u64::MAX
    );
    seed
}

/// [`env_number`] for a size within `min..=max`.
fn env_size(name: &str, default: u64, min: u64, max: u64) -> u64 {
    let n = env_number(name, default);
    assert!(
        (min..=max).contains(&n),
        "{name}={n}: out of range (allowed {min}-{max})"
    );
    n
}

/// A namespace whose ruleset uses labels (the kernel keeps no label storage
/// otherwise), holding the flows of `specs`.
fn labelled_namespace(tag: &str, specs: &[FlowSpec]) -> ScratchNs {
    let ns = ScratchNs::new(tag);
    ns.nft("add rule inet ctrs in ct label set 127");
    let mut ct = ns.conntrack();
    for spec in specs {
        ct.create(spec)
            .unwrap_or_else(|e| panic!("create {:?}: {e}", spec.orig));
    }
    ns
}

/// What the reference reads of a flow: everything but its id, timeout and
/// counters (which differ between two copies of a table).
type Essence = (
    Tuple,
    Tuple,
    Status,
    Option<u32>,
    Option<u16>,
    Option<Labels>,
    Option<TcpState>,
);

fn essence(flow: &Flow) -> Essence {
    (
        flow.orig,
        flow.reply,
        flow.status,
        flow.mark,
        flow.zone,
        flow.labels,
        flow.tcp_state(),
    )
}

/// Status bits the kernel does not define (it has 16: 0x1-0x8000).
fn unknown_status(c: &Conditions) -> u32 {
    (c.status_set | c.status_unset).bits() & !0xffff
}

/// Which handle a side of the property uses, and so which delete path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The probed kernel features: kernel-side filtering, a filtered flush
    /// when the kernel evaluates the whole filter.
    Kernel,
    /// No kernel feature: every filter evaluated in userspace, every delete
    /// a dump and delete.
    Userspace,
}

/// Sets the flag when the thread that holds it panics, so that the other
/// side stops at its next round instead of running to its end.
struct StopOnPanic<'a>(&'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// The CPU time (user and system) the calling thread has used so far: the
/// kernel's walks of its hash table run in the thread's own system calls.
fn thread_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a properly sized struct.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn bump(tally: &mut BTreeMap<&'static str, u32>, what: &'static str) {
    *tally.entry(what).or_default() += 1;
}

/// One side of the no-widening property: every filter of `conditions`
/// against the table of `ct`'s namespace (a copy of the flows of `by_key`);
/// the rounds of `delete_rounds` also delete, and re-create what went.
/// Returns the tally and the CPU seconds the side used.
fn run_side(
    side: Side,
    mut ct: Conntrack,
    conditions: &[Conditions],
    delete_rounds: &BTreeSet<usize>,
    by_key: &BTreeMap<Key, FlowSpec>,
    stop: &AtomicBool,
) -> (BTreeMap<&'static str, u32>, f64) {
    let _guard = StopOnPanic(stop);
    let started = Instant::now();
    let handle = match side {
        Side::Kernel => "kernel-filtering handle",
        Side::Userspace => "userspace-only handle",
    };
    let all = table(&mut ct);
    let total = all.len() as u32;
    let mut tally: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut in_deletes = std::time::Duration::ZERO;
    for (round, c) in conditions.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let filter = to_filter(c);
        let expected: BTreeSet<Key> = all.values().filter(|f| reference(c, f)).map(key).collect();
        let context = format!("{handle}, round {round}, {c:?}");
        if side == Side::Kernel {
            let by_matches: BTreeSet<Key> = all
                .values()
                .filter(|f| filter.matches(*f))
                .map(key)
                .collect();
            assert_eq!(by_matches, expected, "matches(): {context}");
        }
        if let Err(refusal) = filter.validate() {
            if side == Side::Kernel {
                bump(&mut tally, "refused");
                if unknown_status(c) != 0 {
                    bump(&mut tally, "refused: unknown status bits");
                }
            }
            // A refusal is for a filter that selects nothing, or for a
            // value out of range (a TCP state or status bit the kernel does
            // not have).
            let out_of_range = c.states.iter().any(|&s| s > 9) || unknown_status(c) != 0;
            assert!(
                expected.is_empty() || out_of_range,
                "refused ({refusal}) but selects {} flows: {context}",
                expected.len()
            );
            assert!(
                matches!(ct.count_matching(&filter), Err(Error::InvalidInput(_))),
                "count of a refused filter: {context}"
            );
            // A refusal sends nothing: the delete is cheap to try every time.
            let result = ct.delete_matching(&filter, DeleteOptions::default());
            assert!(
                matches!(result, Err(Error::InvalidInput(_))),
                "delete of a refused filter: {result:?}: {context}"
            );
            assert_eq!(
                ct.count().unwrap(),
                total,
                "a refused delete changed the table: {context}"
            );
            continue;
        }
        assert_eq!(
            unknown_status(c),
            0,
            "accepted unknown status bits: {context}"
        );
        let selected: BTreeSet<Key> = match side {
            Side::Kernel => {
                bump(
                    &mut tally,
                    if expected.is_empty() {
                        "selects none"
                    } else {
                        "selects some"
                    },
                );
                let mut dump = ct.dump_filtered(&filter).unwrap();
                let mut pushed = BTreeSet::new();
                while let Some(flow) = dump.next_flow() {
                    pushed.insert(key(&flow.unwrap().to_owned_flow()));
                }
                if dump.summary().filtered {
                    bump(&mut tally, "kernel-filtered");
                }
                pushed
            }
            Side::Userspace => ct
                .flows_matching(&filter)
                .unwrap()
                .iter()
                .map(key)
                .collect(),
        };
        assert_eq!(selected, expected, "dump: {context}");
        assert_eq!(
            ct.count_matching(&filter).unwrap(),
            expected.len() as u64,
            "count: {context}"
        );
        if !delete_rounds.contains(&round) {
            continue;
        }
        let deleting = Instant::now();
        let result = ct.delete_matching(&filter, DeleteOptions::default());
        let nothing = BTreeSet::new();
        let should_go = match &result {
            Ok(_) => &expected,
            Err(e) => {
                assert!(
                    filter.is_empty() && matches!(e, Error::InvalidInput(_)),
                    "delete: {e}: {context}"
                );
                assert_eq!(expected.len(), all.len(), "empty selects all: {context}");
                &nothing
            }
        };
        // What went, without a dump (each costs a walk of the kernel's whole
        // hash table): exactly those flows went when the table lost as many
        // flows as should go and none of them is left. Nothing else creates
        // or deletes flows in the namespace.
        let lost = total - ct.count().unwrap();
        let left: Vec<Key> = should_go
            .iter()
            .filter(|(tuple, zone)| ct.get(tuple, zone.unwrap_or(0)).unwrap().is_some())
            .copied()
            .collect();
        if lost as usize != should_go.len() || !left.is_empty() {
            // Say which flows differ.
            let now = table(&mut ct);
            let gone: BTreeSet<Key> = all
                .keys()
                .filter(|k| !now.contains_key(*k))
                .copied()
                .collect();
            assert_eq!(&gone, should_go, "delete {result:?}: {context}");
            panic!("lost {lost} flows, left {left:?}: delete {result:?}: {context}");
        }
        match result {
            Err(_) => bump(
                &mut tally,
                match side {
                    Side::Kernel => "delete refused (empty), kernel-filtering",
                    Side::Userspace => "delete refused (empty), userspace-only",
                },
            ),
            Ok(report) => {
                assert_eq!(
                    report.deleted,
                    expected.len() as u64,
                    "delete {report:?}: {context}"
                );
                bump(
                    &mut tally,
                    match (side, report.path) {
                        (Side::Kernel, DeletePath::KernelFlush) => "delete: kernel flush",
                        (Side::Kernel, _) => "delete: dump and delete, kernel-filtering",
                        // The family is in every request's header: a filter
                        // of nothing else is exact on every kernel.
                        (Side::Userspace, DeletePath::KernelFlush) => {
                            assert!(
                                c.family.is_some_and(|f| filter == Filter::new().family(f)),
                                "a kernel flush without kernel features: {context}"
                            );
                            "delete: kernel flush (family only), userspace-only"
                        }
                        (Side::Userspace, _) => "delete: dump and delete, userspace-only",
                    },
                );
                for k in &expected {
                    ct.create(&by_key[k])
                        .unwrap_or_else(|e| panic!("re-create {k:?}: {e}: {context}"));
                }
            }
        }
        in_deletes += deleting.elapsed();
    }
    let cpu = thread_cpu_seconds();
    eprintln!(
        "{handle}: {:.1} s ({cpu:.1} s of CPU), of which {:.1} s in delete rounds",
        started.elapsed().as_secs_f64(),
        in_deletes.as_secs_f64()
    );
    (tally, cpu)
}

/// Delete rounds by default (every sixth filter): each deletes on both
/// paths. The budget is the kernel's: every dump walks its whole hash table,
/// shared by all namespaces (12 ms of CPU alone with 262144 buckets, about
/// 18 ms when the two sides walk at once, however few flows the namespace
/// holds). An accepted filter costs four walks, two per side, so the 3000
/// filters' reads alone take about 90 s on this 2-core VM with no other
/// load; a delete round costs each side one more walk and the re-creation
/// of what went (500 rounds: about 10 s).
const DEFAULT_DELETES: usize = 500;

#[test]
fn no_filter_selects_or_deletes_more_than_it_says() {
    require_root!();
    let started = Instant::now();
    let seed = env_seed("CONNTRACK_NO_WIDENING_SEED", 0x6e6f_2d77_6964_656e);
    let flows = env_size("CONNTRACK_NO_WIDENING_FLOWS", 240, 1, 4000) as u16;
    let filters = env_size("CONNTRACK_NO_WIDENING_FILTERS", 3000, 1, 1_000_000) as usize;
    let deletes = env_size(
        "CONNTRACK_NO_WIDENING_DELETES",
        DEFAULT_DELETES as u64,
        0,
        filters as u64,
    ) as usize;
    eprintln!(
        "no widening: CONNTRACK_NO_WIDENING_SEED={seed:#x} CONNTRACK_NO_WIDENING_FLOWS={flows} \
         CONNTRACK_NO_WIDENING_FILTERS={filters} CONNTRACK_NO_WIDENING_DELETES={deletes}"
    );
    let mut rng = Rng(seed);
    let specs = random_table(&mut rng, flows);
    let conditions: Vec<Conditions> = (0..filters).map(|_| random_conditions(&mut rng)).collect();
    // The delete rounds, spread evenly; each deletes on both paths.
    let delete_rounds: BTreeSet<usize> = (0..deletes).map(|i| i * filters / deletes).collect();
    let by_key: BTreeMap<Key, FlowSpec> = specs.iter().map(|s| (spec_key(s), s.clone())).collect();
    // Two copies of the table, one per delete path: each side deletes and
    // re-creates in its own namespace, and the two sides run at once.
    let kernel_ns = labelled_namespace("widen", &specs);
    let userspace_ns = labelled_namespace("widenu", &specs);
    let all = table(&mut kernel_ns.conntrack());
    let copy = table(&mut userspace_ns.conntrack());
    assert_eq!(all.len(), specs.len(), "every flow created");
    let essences = |t: &BTreeMap<Key, Flow>| -> Vec<Essence> { t.values().map(essence).collect() };
    assert_eq!(essences(&all), essences(&copy), "the two copies differ");
    let ct = kernel_ns.conntrack();
    let mut userspace = userspace_ns.conntrack();
    userspace.assume_features(KernelFeatures::default());
    let stop = AtomicBool::new(false);
    let (kernel, user) = std::thread::scope(|scope| {
        let sides = [(Side::Kernel, ct), (Side::Userspace, userspace)].map(|(side, handle)| {
            let (conditions, delete_rounds, by_key, stop) =
                (&conditions, &delete_rounds, &by_key, &stop);
            scope.spawn(move || run_side(side, handle, conditions, delete_rounds, by_key, stop))
        });
        let [kernel, user] = sides.map(|side| side.join());
        match (kernel, user) {
            (Ok(kernel), Ok(user)) => (kernel, user),
            (Err(panic), _) | (_, Err(panic)) => std::panic::resume_unwind(panic),
        }
    });
    let ((mut tally, kernel_cpu), (user, user_cpu)) = (kernel, user);
    for (what, n) in user {
        *tally.entry(what).or_default() += n;
    }
    eprintln!(
        "no widening: {filters} random filters, {} delete rounds each on both paths, on a \
         {}-flow table, in {:.1} s ({:.1} s of CPU; seed {seed:#x}): {tally:?}",
        delete_rounds.len(),
        all.len(),
        started.elapsed().as_secs_f64(),
        kernel_cpu + user_cpu
    );
    if flows < 240 || filters < 3000 || deletes < DEFAULT_DELETES {
        eprintln!("smaller than the defaults: the coverage checks are skipped");
        return;
    }
    let protocols: BTreeSet<u8> = all.values().map(|f| f.protocol()).collect();
    assert!(protocols.contains(&proto::GRE) && protocols.contains(&proto::ICMPV6));
    assert!(all.values().any(|f| f.labels.is_some_and(|l| l.0 != 0)));
    for outcome in [
        "refused",
        "refused: unknown status bits",
        "selects none",
        "selects some",
        "kernel-filtered",
        "delete: kernel flush",
        "delete: dump and delete, kernel-filtering",
        "delete: dump and delete, userspace-only",
        "delete refused (empty), kernel-filtering",
        "delete refused (empty), userspace-only",
    ] {
        assert!(
            tally.get(outcome).is_some_and(|&n| n >= 5),
            "the generator reaches {outcome:?} often enough: {tally:?}"
        );
    }
}

/// The arguments of one `gc --yes` run and of the `conntrack -L` that lists
/// what it must delete.
#[derive(Debug, Default)]
struct CliOptions {
    gc: Vec<String>,
    cli: Vec<String>,
    /// Ports with a protocol that has none (`-p gre --dport 53`, `-p icmp
    /// --sport 1`): gc must refuse them (`conntrack -L` refuses them too).
    must_refuse: bool,
}

impl CliOptions {
    /// An option both take with the same value.
    fn both(&mut self, option_gc: &str, option_cli: &str, value: impl Into<String>) {
        let value = value.into();
        self.gc.extend([option_gc.to_owned(), value.clone()]);
        self.cli.extend([option_cli.to_owned(), value]);
    }
}

/// Options for both `gc` and `conntrack -L`, drawn from what both take.
fn random_cli_options(rng: &mut Rng) -> CliOptions {
    let mut o = CliOptions::default();
    let ipv6 = rng.chance(30);
    if rng.chance(25) {
        o.both("--family", "-f", if ipv6 { "ipv6" } else { "ipv4" });
    }
    let protocol = if rng.chance(60) {
        Some(rng.pick(&["tcp", "udp", "udplite", "sctp", "gre", "icmp", "icmpv6"]))
    } else {
        None
    };
    if let Some(p) = protocol {
        o.both("-p", "-p", p);
    }
    if rng.chance(30) {
        let family = if rng.chance(15) { !ipv6 } else { ipv6 };
        o.both("-s", "-s", address(rng, family).to_string());
    }
    if rng.chance(20) {
        o.both("-d", "-d", address(rng, ipv6).to_string());
    }
    // conntrack takes ports after a protocol with ports, states after tcp.
    if matches!(protocol, Some("tcp" | "udp")) {
        if rng.chance(40) {
            o.both("--dport", "--dport", rng.pick(&PORTS).to_string());
        }
        if rng.chance(15) {
            o.both("--sport", "--sport", (2000 + rng.below(240)).to_string());
        }
    }
    // Ports of a protocol without ports (GRE keys sit where ports would):
    // never a condition on something else; gc refuses.
    if matches!(protocol, Some("gre" | "icmp" | "icmpv6")) && rng.chance(30) {
        o.must_refuse = true;
        if rng.chance(50) {
            o.both("--dport", "--dport", rng.pick(&PORTS).to_string());
        } else {
            o.both("--sport", "--sport", rng.pick(&["1", "53", "2000"]));
        }
    }
    if protocol == Some("tcp") && rng.chance(40) {
        o.both(
            "--state",
            "--state",
            rng.pick(&["SYN_SENT", "ESTABLISHED", "TIME_WAIT", "CLOSE", "LISTEN"]),
        );
    }
    if rng.chance(25) {
        // One bit, or two that must both be set (gc: the option repeated;
        // conntrack: a list).
        let bits = ["ASSURED", "SEEN_REPLY", "FIXED_TIMEOUT"];
        let first = rng.pick(&bits);
        let option = rng.pick(&["--status", "-u"]);
        if rng.chance(40) {
            let second = rng.pick(&bits);
            o.gc.extend([option, first, option, second].map(String::from));
            o.cli.extend(["-u".to_owned(), format!("{first},{second}")]);
        } else {
            o.both(option, "-u", first);
        }
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
        o.both("--mark", "-m", text);
    }
    if rng.chance(20) {
        o.both(rng.pick(&["--zone", "-w"]), "-w", rng.below(3).to_string());
    }
    o
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
    let started = Instant::now();
    let seed = env_seed("CONNTRACK_NO_WIDENING_GC_SEED", 0x6763_2d76_732d_636c);
    let flows = env_size("CONNTRACK_NO_WIDENING_GC_FLOWS", 160, 1, 4000) as u16;
    let rounds = env_size("CONNTRACK_NO_WIDENING_GC_ROUNDS", 120, 1, 100_000);
    eprintln!(
        "gc against conntrack -L: CONNTRACK_NO_WIDENING_GC_SEED={seed:#x} \
         CONNTRACK_NO_WIDENING_GC_FLOWS={flows} CONNTRACK_NO_WIDENING_GC_ROUNDS={rounds}"
    );
    let mut rng = Rng(seed);
    let specs = random_table(&mut rng, flows);
    let ns = labelled_namespace("gcwiden", &specs);
    let by_key: BTreeMap<Key, FlowSpec> = specs.iter().map(|s| (spec_key(s), s.clone())).collect();
    let gc = common::example_binary("gc");
    let mut ct = ns.conntrack();
    let mut tally: BTreeMap<&str, u32> = BTreeMap::new();
    for round in 0..rounds {
        let CliOptions {
            gc: gc_options,
            cli: cli_options,
            must_refuse,
        } = random_cli_options(&mut rng);
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
        let stderr = String::from_utf8_lossy(&output.stderr);
        let context = format!(
            "round {round}: gc {gc_options:?} ({}, {}) / conntrack -L {cli_options:?}",
            output.status,
            stderr.trim()
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
            (code, listed) if must_refuse => {
                assert!(deleted.is_empty(), "{context}: a refused gc deleted flows");
                assert_eq!(code, Some(2), "{context}: a usage error");
                assert!(
                    stderr.contains("port condition with protocol"),
                    "{context}: the refusal explains"
                );
                let listed = listed.as_ref().map_or(0, BTreeSet::len);
                assert_eq!(listed, 0, "{context}: conntrack lists flows");
                *tally.entry("gc refused: ports without ports").or_default() += 1;
            }
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
    eprintln!(
        "gc against conntrack -L: {rounds} rounds on a {flows}-flow table in {:.1} s (seed \
         {seed:#x}): {tally:?}",
        started.elapsed().as_secs_f64()
    );
    if flows < 160 || rounds < 120 {
        eprintln!("smaller than the defaults: the coverage checks are skipped");
        return;
    }
    for outcome in [
        "agree: none",
        "agree: some",
        "gc refused",
        "gc refused: ports without ports",
    ] {
        assert!(
            tally.get(outcome).is_some_and(|&n| n >= 5),
            "the generator reaches {outcome:?}: {tally:?}"
        );
    }
}

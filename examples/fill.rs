// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fills the conntrack table of a namespace with N flows through
//! [`Conntrack::create`], for benchmarks and manual tests.
//!
//! ```text
//! fill --netns NAME --flows N [--mix] [--timeout SECONDS] [--start I]
//! ```
//!
//! Default: N IPv4 UDP flows, each with its own source address and port
//! (`10.0.0.0/8` counted up from `10.0.0.1`, to `172.16.0.x:53`), unreplied,
//! like the kernel-created flows of CTNETLINK.md §7.3.
//!
//! `--mix`: a realistic table, still fully deterministic (flow `i` is always the
//! same flow): about 55 % TCP (ESTABLISHED and assured, some SYN_SENT and
//! TIME_WAIT, a fifth of it IPv6, some with a NAT-like reply tuple), 35 % UDP
//! (IPv4 and IPv6, replied or not), 10 % ICMP/ICMPv6 echo; one flow in seven
//! carries a mark, one in fifty a zone (1 to 3).
//!
//! Flows get a long timeout (default 3600 s) so the table stays put while it is
//! measured. Flows that already exist (`EEXIST`, e.g. a second run) are counted
//! and skipped; `--start I` continues a numbering. The table limit is the global
//! `nf_conntrack_max`, shared with every namespace: this tool never changes it.
//! The library sends one request and waits for its ACK per flow (no pipelining
//! yet); the rate is printed at the end. Needs `CAP_NET_ADMIN` in the namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;
use std::time::Instant;

use conntrack::{Conntrack, FlowSpec, Netns, Status, TcpState, Tuple};

const USAGE: &str = "usage: fill --netns NAME --flows N [--mix] [--timeout SECONDS] [--start I]";

struct Options {
    netns: String,
    flows: u32,
    mix: bool,
    timeout: u32,
    start: u32,
}

type BoxError = Box<dyn std::error::Error>;

fn parse_options() -> Result<Options, BoxError> {
    let (mut netns, mut flows) = (None, None);
    let mut options = Options {
        netns: String::new(),
        flows: 0,
        mix: false,
        timeout: 3600,
        start: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--netns" => netns = Some(value("--netns")?),
            "--flows" => flows = Some(value("--flows")?.parse()?),
            "--mix" => options.mix = true,
            "--timeout" => options.timeout = value("--timeout")?.parse()?,
            "--start" => options.start = value("--start")?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    // Refuse to fill the caller's own (likely the host's) table by accident.
    options.netns = netns.ok_or(format!("--netns is required\n{USAGE}"))?;
    options.flows = flows.ok_or(format!("--flows is required\n{USAGE}"))?;
    let end = options.start.checked_add(options.flows);
    if !matches!(end, Some(end) if end <= 1 << 22) {
        return Err("--start + --flows must stay below 2^22 (distinct addresses)".into());
    }
    Ok(options)
}

/// `base` + `i` as an IPv4 address.
fn v4(base: [u8; 4], i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(u32::from_be_bytes(base).wrapping_add(i)))
}

/// `2001:db8:<net>::<i>` (documentation prefix).
fn v6(net: u16, i: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        net,
        0,
        0,
        0,
        (i >> 16) as u16,
        i as u16,
    ))
}

/// Flow `i` of the default table: IPv4 UDP, unreplied, distinct source.
fn udp_flow(i: u32) -> FlowSpec {
    let src = v4([10, 0, 0, 1], i);
    let dst = v4([172, 16, 0, 1], i % 256);
    FlowSpec::new(Tuple::udp((src, 1024 + (i % 64000) as u16), (dst, 53)))
}

/// Flow `i` of the `--mix` table. Every tuple (and reply tuple) embeds `i` in
/// its client address, so no two flows clash in either direction.
fn mixed_flow(i: u32) -> FlowSpec {
    let port = 1024 + (i % 60000) as u16;
    let client4 = v4([10, 0, 0, 1], i);
    let client6 = v6(1, i);
    let server4 = v4([198, 51, 100, 1], i % 200);
    let server6 = v6(2, i % 200);
    let established = Status::SEEN_REPLY | Status::ASSURED;
    let mut spec = match i % 20 {
        0..=5 => FlowSpec::new(Tuple::tcp((client4, port), (server4, 443)))
            .tcp_state(TcpState::Established)
            .status(established),
        6 => {
            // Looks like masquerading: the reply goes to a public address and port.
            // (100.64.0.0/10 + i keeps every reply tuple distinct).
            let orig = Tuple::tcp((client4, port), (server4, 80));
            let reply = Tuple::tcp((server4, 80), (v4([100, 64, 0, 1], i), port));
            FlowSpec::new(orig)
                .reply(reply)
                .tcp_state(TcpState::Established)
                .status(established)
        }
        7 => FlowSpec::new(Tuple::tcp((client4, port), (server4, 22))).tcp_state(TcpState::SynSent),
        8 => FlowSpec::new(Tuple::tcp((client4, port), (server4, 443)))
            .tcp_state(TcpState::TimeWait)
            .status(established),
        9 | 10 => FlowSpec::new(Tuple::tcp((client6, port), (server6, 443)))
            .tcp_state(TcpState::Established)
            .status(established),
        11..=13 => FlowSpec::new(Tuple::udp((client4, port), (server4, 53))).status(established),
        14 | 15 => FlowSpec::new(Tuple::udp((client4, port), (server4, 123))),
        16 | 17 => FlowSpec::new(Tuple::udp((client6, port), (server6, 53))).status(established),
        18 => FlowSpec::new(Tuple::icmp(client4, server4, i as u16, 8, 0)).status(established),
        _ => FlowSpec::new(Tuple::icmp(client6, server6, i as u16, 128, 0)),
    };
    if i % 7 == 0 {
        spec = spec.mark(1 + i % 16);
    }
    if i % 50 == 0 {
        spec = spec.zone(1 + (i / 50 % 3) as u16);
    }
    spec
}

fn run() -> Result<(), BoxError> {
    let options = parse_options()?;
    let mut ct = Conntrack::open_in(&Netns::named(options.netns.as_str()))?;
    let before = ct.count()?;
    let limit = ct.limit()?;
    let (mut created, mut existing) = (0u64, 0u64);
    let started = Instant::now();
    for i in options.start..options.start + options.flows {
        let spec = if options.mix {
            mixed_flow(i)
        } else {
            udp_flow(i)
        };
        match ct.create(&spec.timeout(options.timeout)) {
            Ok(()) => created += 1,
            Err(e) if e.errno() == Some(libc::EEXIST) => existing += 1,
            Err(e) => {
                return Err(
                    format!("flow {i} ({created} created, table limit {limit}): {e}").into(),
                )
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = ct.count()?;
    println!(
        "created={created} existing={existing} seconds={elapsed:.3} rate={:.0}/s entries_before={before} entries_after={after} limit={limit}",
        (created + existing) as f64 / elapsed.max(1e-9)
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fill: {e}");
            ExitCode::FAILURE
        }
    }
}

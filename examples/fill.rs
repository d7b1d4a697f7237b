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
//! like the kernel-created flows of docs/ctnetlink.md §7.3.
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

use std::process::ExitCode;
use std::time::Instant;

use conntrack::{Conntrack, Netns};

#[path = "support/mix.rs"]
mod mix;

use mix::{mixed_flow, udp_flow};

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

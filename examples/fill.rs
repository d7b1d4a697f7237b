// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fills the conntrack table of a namespace with N flows through
//! [`Conntrack::create`], for benchmarks and manual tests.
//!
//! ```text
//! fill --netns NAME|PATH|PID --flows N [--mix] [--timeout SECONDS] [--start I]
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

use conntrack::testing::mix::{mixed_flow, udp_flow};
use conntrack::{Conntrack, Netns};

#[path = "support/cli.rs"]
mod cli;

/// Fill the conntrack table of a namespace with N flows, for benchmarks and tests.
#[derive(clap::Parser, Debug)]
#[command(name = "fill", version)]
struct Options {
    /// Namespace to fill (required: never the caller's table by accident): an
    /// `ip netns` name, a path or a pid.
    #[arg(long, value_name = "NAME|PATH|PID", value_parser = cli::parse_netns)]
    netns: Netns,
    /// Number of flows to create (start + flows below 2^22).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(..=1 << 22))]
    flows: u32,
    /// A realistic mix of TCP, UDP and ICMP flows instead of UDP only.
    #[arg(long)]
    mix: bool,
    /// Timeout of the created flows, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "3600", value_parser = clap::value_parser!(u32).range(1..))]
    timeout: u32,
    /// Number of the first flow (continues a numbering).
    #[arg(long, value_name = "I", default_value = "0", value_parser = clap::value_parser!(u32).range(..=1 << 22))]
    start: u32,
}

type BoxError = Box<dyn std::error::Error>;

fn parse_options() -> Options {
    let options: Options = cli::parse();
    if options.start + options.flows > 1 << 22 {
        cli::usage_error::<Options>("--start + --flows must stay below 2^22 (distinct addresses)");
    }
    options
}

fn run() -> Result<(), BoxError> {
    let options = parse_options();
    let mut ct = Conntrack::open_in(&options.netns)?;
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
    cli::quiet_on_closed_pipe();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fill: {e}");
            ExitCode::FAILURE
        }
    }
}

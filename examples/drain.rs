// SPDX-License-Identifier: MIT OR Apache-2.0
//! The raw-drain baseline: the kernel's own cost of a conntrack dump.
//!
//! Opens a `NETLINK_NETFILTER` socket directly with `netlink-sys` (no
//! [`conntrack::Conntrack`]; `conntrack::testing::raw`, the raw loop the
//! benches share), sends one `IPCTNL_MSG_CT_GET` dump request
//! (`AF_UNSPEC`, `NLM_F_REQUEST | NLM_F_DUMP`) and receives until `NLMSG_DONE`,
//! reading only the 16-byte `nlmsghdr` of each message to count it: nothing is
//! decoded. This is the floor the library's dump is measured against
//! (DESIGN.md, "Performance bars").
//!
//! Like `Conntrack::dump`, it uses a 64 KiB receive buffer and first does one
//! `IPCTNL_MSG_CT_GET_STATS` round trip, so that the kernel has already seen a
//! large `recvmsg` and builds even the first dump batch as a 32 KiB skb
//! (docs/ctnetlink.md §7.2).
//!
//! ```text
//! drain [--netns NAME|PATH|PID] [--repeat K] [--buffer BYTES] [--no-warm-up]
//! ```
//!
//! Prints one line per dump, `messages=N bytes=B datagrams=D seconds=S`, where
//! `messages` counts flow messages (`NLMSG_DONE` excluded), `bytes` and
//! `datagrams` everything received for the dump, and `seconds` the wall time of
//! one run (fresh socket, warm-up, dump). With `--repeat K > 1`, a last line
//! gives the median. Needs `CAP_NET_ADMIN` in the namespace.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use conntrack::netns::NetnsFile;
use conntrack::testing::raw::{RawSocket, Received};
use conntrack::Netns;

#[path = "support/cli.rs"]
mod cli;

/// The raw-drain baseline: one conntrack dump received and counted, not decoded.
#[derive(clap::Parser, Debug)]
#[command(name = "drain", version)]
struct Options {
    /// Namespace: an `ip netns` name, a path or a pid; default: the current one.
    #[arg(long, value_name = "NAME|PATH|PID", value_parser = cli::parse_netns)]
    netns: Option<Netns>,
    /// Dumps to run (a last line gives the median).
    #[arg(long, value_name = "K", default_value = "1", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    repeat: u32,
    /// Receive buffer in bytes (4096 to 1 GiB; below 4096 truncates dump batches).
    #[arg(long, value_name = "BYTES", default_value = "65536", value_parser = clap::value_parser!(u32).range(4096..=1 << 30))]
    buffer: u32,
    /// Skip the GET_STATS round trip that makes the kernel batch 32 KiB from
    /// the first datagram.
    #[arg(long = "no-warm-up", action = clap::ArgAction::SetFalse)]
    warm_up: bool,
}

type BoxError = Box<dyn std::error::Error>;

/// One run: a fresh socket (receiving into `buf`, handed back), the warm-up,
/// the dump.
fn drain_once(
    netns: Option<&NetnsFile>,
    options: &Options,
    buf: Vec<u8>,
) -> Result<(Received, Duration, Vec<u8>), BoxError> {
    let start = Instant::now();
    let mut socket = RawSocket::with_buffer(netns, buf)?;
    if options.warm_up {
        socket.warm_up()?;
    }
    let received = socket.drain()?;
    Ok((received, start.elapsed(), socket.into_buffer()))
}

fn run() -> Result<(), BoxError> {
    let options: Options = cli::parse();
    let netns = match &options.netns {
        Some(netns) => netns.open()?,
        None => None,
    };
    // Both bounded by the parser (at most 1 GiB, 100 000 runs).
    let mut buf = vec![0u8; options.buffer as usize];
    let mut times = Vec::with_capacity(options.repeat as usize);
    for _ in 0..options.repeat {
        let (totals, elapsed, reused) = drain_once(netns.as_ref(), &options, buf)?;
        buf = reused;
        println!(
            "messages={} bytes={} datagrams={} seconds={:.6}",
            totals.messages,
            totals.bytes,
            totals.datagrams,
            elapsed.as_secs_f64()
        );
        times.push(elapsed);
    }
    if times.len() > 1 {
        times.sort();
        let middle = times.len() / 2;
        let median = if times.len() % 2 == 1 {
            times[middle]
        } else {
            (times[middle - 1] + times[middle]) / 2
        };
        println!(
            "median_seconds={:.6} runs={}",
            median.as_secs_f64(),
            times.len()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    cli::quiet_on_closed_pipe();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drain: {e}");
            ExitCode::FAILURE
        }
    }
}

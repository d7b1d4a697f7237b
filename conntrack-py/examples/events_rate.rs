// SPDX-License-Identifier: MIT OR Apache-2.0
//! `events_rate`: the Rust side of the Python events benchmark.
//!
//! ```text
//! events_rate --netns NAME --events N [--buffer BYTES] [--borrowed]
//! ```
//!
//! Subscribes to NEW and DESTROY in namespace `NAME` with a forced receive
//! buffer (default 1 GiB), prints `ready`, waits for a line on stdin (the
//! benchmark creates and deletes its burst meanwhile, so the events queue up
//! on the socket), then reads until `N` items have come and prints
//! `events_rate ms=... events=... lost=...`: the wall time of draining the
//! queue. Items are owned `EventItem`s from the blocking iterator (what the
//! Python objects are built from), or with `--borrowed` lent views from
//! `next_event` (no allocation per event). The Python benchmark
//! (`conntrack-py/tests/bench_events.py`) times `for item in events` on the
//! same burst.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use conntrack::events::{EventItem, EventMask, EventOptions};
use conntrack::Netns;

/// Times draining a queued burst of events.
#[derive(Parser, Debug)]
#[command(name = "events_rate")]
struct Args {
    /// Namespace: an `ip netns` name, a path or a pid.
    #[arg(long, value_name = "NAME|PATH|PID", value_parser = parse_netns)]
    netns: Netns,
    /// Items to read before stopping.
    #[arg(long = "events", value_name = "N")]
    wanted: u64,
    /// Receive buffer to force, in bytes (4 KiB to 2 GiB).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30, value_parser = clap::value_parser!(u64).range(4096..=(1 << 31)))]
    buffer: u64,
    /// Read lent views (`next_event`) instead of owned items.
    #[arg(long)]
    borrowed: bool,
}

fn parse_netns(text: &str) -> Result<Netns, String> {
    text.parse().map_err(|e: conntrack::Error| e.to_string())
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (netns, wanted, buffer, borrowed) =
        (args.netns, args.wanted, args.buffer as usize, args.borrowed);
    let mut events = EventOptions::new(EventMask::NEW | EventMask::DESTROY)
        .receive_buffer(buffer)
        .open_in(&netns)?;
    println!("ready");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let started = Instant::now();
    let (mut seen, mut lost, mut ports) = (0u64, 0u64, 0u64);
    if borrowed {
        while seen < wanted {
            match events.next_event()? {
                EventItem::Event(event) => {
                    // Read a field of every flow, as the Python side does.
                    ports += u64::from(event.flow.orig.src_port().unwrap_or(0));
                }
                _ => lost += 1,
            }
            seen += 1;
        }
    } else {
        for item in events.by_ref() {
            match item? {
                EventItem::Event(event) => {
                    ports += u64::from(event.flow.orig.src_port().unwrap_or(0))
                }
                _ => lost += 1,
            }
            seen += 1;
            if seen == wanted {
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "events_rate ms={:.1} events={seen} lost={lost} ports={ports}",
        elapsed.as_secs_f64() * 1000.0
    );
    Ok(())
}

fn main() -> ExitCode {
    // clap reads the arguments as OsStrings: a non-UTF-8 one is a usage
    // error (exit 2), never a panic.
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("events_rate: {e}");
            ExitCode::FAILURE
        }
    }
}

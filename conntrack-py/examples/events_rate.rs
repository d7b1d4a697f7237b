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

use conntrack::events::{EventItem, EventMask, EventOptions};
use conntrack::Netns;

const USAGE: &str = "usage: events_rate --netns NAME --events N [--buffer BYTES] [--borrowed]";

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut netns = None;
    let mut wanted = 0u64;
    let mut buffer = 1usize << 30;
    let mut borrowed = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--netns" => netns = Some(value("--netns")?),
            "--events" => wanted = value("--events")?.parse()?,
            "--buffer" => buffer = value("--buffer")?.parse()?,
            "--borrowed" => borrowed = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    let netns = netns.ok_or(format!("--netns is required\n{USAGE}"))?;
    let mut events = EventOptions::new(EventMask::NEW | EventMask::DESTROY)
        .receive_buffer(buffer)
        .open_in(&Netns::named(netns))?;
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
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("events_rate: {e}");
            ExitCode::FAILURE
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `count_by`: the Rust side of the Python `count_by` benchmark.
//!
//! ```text
//! count_by --netns NAME [--key KEY]... [--top N] [--repeat N]
//! ```
//!
//! Opens one handle in namespace `NAME`, then runs
//! [`Conntrack::count_by`] `--repeat` times (default 5) with the keys given
//! (`src`, `dst`, `src_port`, `dst_port`, `proto`, `state`, `zone`, `mark`;
//! default `src`) and an empty filter, printing the wall time of each run in
//! milliseconds, the total and the largest groups. The Python benchmark
//! (`conntrack-py/tests/bench.py`) times `ct.count_by(...)` the same way, on
//! an already opened handle, so the two numbers compare the same work.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use conntrack::{Conntrack, Filter, GroupBy, Netns};

/// Times `Conntrack::count_by` on an opened handle.
#[derive(Parser, Debug)]
#[command(name = "count_by")]
struct Args {
    /// Namespace: an `ip netns` name, a path or a pid.
    #[arg(long, value_name = "NAME|PATH|PID", value_parser = parse_netns)]
    netns: Netns,
    /// A grouping key (repeatable; default src).
    #[arg(long = "key", value_name = "KEY", value_parser = parse_key)]
    keys: Vec<GroupBy>,
    /// Groups to keep, largest first.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Runs to time.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    repeat: u32,
}

fn parse_netns(text: &str) -> Result<Netns, String> {
    text.parse().map_err(|e: conntrack::Error| e.to_string())
}

fn parse_key(name: &str) -> Result<GroupBy, String> {
    GroupBy::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = GroupBy::ALL.iter().map(|k| k.name()).collect();
        format!("unknown key {name:?} ({})", names.join(", "))
    })
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (netns, top, repeat) = (args.netns, args.top, args.repeat);
    let mut keys = args.keys;
    if keys.is_empty() {
        keys.push(GroupBy::Source);
    }
    let mut ct = Conntrack::open_in(&netns)?;
    let filter = Filter::new();
    for _ in 0..repeat {
        let started = Instant::now();
        let counts = ct.count_by(&keys, &filter, top)?;
        let elapsed = started.elapsed();
        let largest: Vec<String> = counts
            .groups
            .iter()
            .take(3)
            .map(|(key, n)| {
                let key: Vec<String> = key.iter().map(ToString::to_string).collect();
                format!("{}={n}", key.join(","))
            })
            .collect();
        println!(
            "count_by ms={:.1} total={} other={} largest={}",
            elapsed.as_secs_f64() * 1000.0,
            counts.total,
            counts.other,
            largest.join(" ")
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    // clap reads the arguments as OsStrings: a non-UTF-8 one is a usage
    // error (exit 2), never a panic.
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("count_by: {e}");
            ExitCode::FAILURE
        }
    }
}

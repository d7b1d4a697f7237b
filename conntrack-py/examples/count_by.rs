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

use conntrack::{Conntrack, Filter, GroupBy, Netns};

const USAGE: &str = "usage: count_by --netns NAME [--key KEY]... [--top N] [--repeat N]";

fn key(name: &str) -> Result<GroupBy, String> {
    GroupBy::from_name(name).ok_or_else(|| format!("unknown key {name:?}"))
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut netns = None;
    let mut keys = Vec::new();
    let mut top = 10usize;
    let mut repeat = 5u32;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--netns" => netns = Some(value("--netns")?),
            "--key" => keys.push(key(&value("--key")?)?),
            "--top" => top = value("--top")?.parse()?,
            "--repeat" => repeat = value("--repeat")?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    let netns = netns.ok_or(format!("--netns is required\n{USAGE}"))?;
    if keys.is_empty() {
        keys.push(GroupBy::Source);
    }
    let mut ct = Conntrack::open_in(&Netns::named(netns))?;
    let filter = Filter::new();
    for _ in 0..repeat.max(1) {
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
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("count_by: {e}");
            ExitCode::FAILURE
        }
    }
}

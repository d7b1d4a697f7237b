// SPDX-License-Identifier: MIT OR Apache-2.0
//! `restore`: create every flow of a saved table (`conntrack -R`), from the
//! NDJSON of `dump --json`, the text of `conntrack -L -o extended` or
//! conntrack-tools' own snapshot, `conntrack -L -o save`.
//!
//! ```text
//! restore [--netns NS] [--labels-file FILE] [--timeout SECONDS] [--zone ZONE]
//!         [--dry-run] [--json] FILE|-
//! ```
//!
//! A snapshot and its restore:
//!
//! ```text
//! dump --json > table.ndjson              # or: conntrack -L -o extended (or -o save) > table.txt
//! restore --netns other table.ndjson      # creates every flow again, pipelined
//! ```
//!
//! The format is recognised line by line (a line starting with `{` is JSON,
//! one starting with `-` is `-o save`);
//! empty lines and `#` comments are skipped. What the kernel lets a create
//! set comes back (tuples, NAT, zone, mark, labels, helper, protocol state,
//! timeout, the status bits userspace may set; see `conntrack::restore`).
//! Existing flows are never overwritten: such a flow fails with `EEXIST`.
//! Every flow not restored is printed to stderr with its line number and
//! why (`line 7: tcp src=... : restore flow: File exists ...`), as it happens;
//! the others are created regardless. `--dry-run` reads and checks every line
//! and sends nothing. Label names (`labels=` of `conntrack -o labels`) are
//! read with `connlabel.conf` (`/etc/xtables/connlabel.conf`,
//! `/etc/connlabel.conf`, or `--labels-file`).
//!
//! Prints `read=N created=N invalid=N failed=N seconds=S` (or `--json`).
//! Exit status 0 when every flow was restored, 1 when some were not, 2 for a
//! usage error or an unreadable file.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use conntrack::restore::{RestoreOptions, SavedTable, READ_SAVED_TABLE};
use conntrack::{Conntrack, LabelMap, Netns};

#[path = "support/cli.rs"]
mod cli;

/// Create every flow of a saved table (conntrack -R): dump --json NDJSON,
/// conntrack -L -o extended text or conntrack -L -o save lines.
#[derive(Parser, Debug)]
#[command(name = "restore", version)]
struct Args {
    /// Namespace: an `ip netns` name, a path (/proc/PID/ns/net) or a pid;
    /// default: the current one.
    #[arg(long, value_name = "NAME|PATH|PID", value_parser = cli::parse_netns, default_value = "current")]
    netns: Netns,
    /// The label names to read `labels=` with, instead of the system's connlabel.conf.
    #[arg(long, value_name = "FILE")]
    labels_file: Option<PathBuf>,
    /// Give every flow this timeout instead of its saved one.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32))]
    timeout: Option<u32>,
    /// Create every flow in this zone instead of its saved one.
    #[arg(long, value_name = "ZONE", value_parser = clap::value_parser!(u16))]
    zone: Option<u16>,
    /// Read and check every line; create nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// The saved table; `-` reads standard input.
    #[arg(value_name = "FILE|-")]
    file: PathBuf,
}

fn open(path: &PathBuf) -> io::Result<Box<dyn Read>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::stdin()));
    }
    let file = File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory",
        ));
    }
    Ok(Box::new(file))
}

fn main() -> ExitCode {
    cli::quiet_on_closed_pipe();
    let args: Args = cli::parse();
    let labels = match &args.labels_file {
        Some(path) => LabelMap::load(path).map(Some),
        // Without a file on the system, names cannot be read (numbers can).
        None => LabelMap::system().map(Some),
    }
    .unwrap_or_else(|e| cli::usage_error::<Args>(format!("--labels-file: {e}")));
    let input = open(&args.file).unwrap_or_else(|e| {
        eprintln!("restore: {}: {e}", args.file.display());
        std::process::exit(2)
    });
    let mut options = RestoreOptions::default().dry_run(args.dry_run);
    if let Some(seconds) = args.timeout {
        options = options.timeout(seconds);
    }
    if let Some(zone) = args.zone {
        options = options.zone(zone);
    }
    let table = SavedTable::new(BufReader::with_capacity(1 << 16, input), labels);
    let started = Instant::now();
    let result = Conntrack::open_in(&args.netns)
        .and_then(|mut ct| ct.restore(table, options, |failure| eprintln!("{failure}")));
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("restore: {e}");
            let unreadable = matches!(
                e,
                conntrack::Error::Io { operation, .. } if operation == READ_SAVED_TABLE
            );
            return ExitCode::from(if unreadable { 2 } else { 1 });
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let mut line = serde_json::to_value(&report).expect("a report serializes");
        line["dry_run"] = args.dry_run.into();
        line["seconds"] = seconds.into();
        println!("{line}");
    } else {
        println!(
            "read={} created={} invalid={} failed={} seconds={seconds:.3}{}",
            report.read,
            report.created,
            report.invalid,
            report.failed.values().sum::<u64>(),
            if args.dry_run {
                " (dry run: nothing was created)"
            } else {
                ""
            }
        );
        for (errno, n) in &report.failed {
            let text = io::Error::from_raw_os_error(*errno);
            println!("  {n} failed with errno {errno} ({text})");
        }
    }
    if report.failed_total() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

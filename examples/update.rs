// SPDX-License-Identifier: MIT OR Apache-2.0
//! `update`: change every flow a filter selects (`conntrack -U` with filter
//! options), a dry run unless `--yes`.
//!
//! ```text
//! update [--netns NS] [--yes] [--json] [--limit N] [--rate N]
//!        [--set-mark MARK[/MASK]] [--label-add LABEL]... [--label-del LABEL]...
//!        [--labels-file FILE] [--timeout SECONDS] [--set-status BIT]...
//!        [filter options of conntrack -L: -f -p -s -d --sport --dport --state -u -m -w]
//! ```
//!
//! The change: `--set-mark` sets the mark (with `/MASK`, only the mask's
//! bits), `--label-add` / `--label-del` add or remove labels (bit numbers or
//! names of `connlabel.conf`: `/etc/xtables/connlabel.conf`,
//! `/etc/connlabel.conf`, or `--labels-file`), `--timeout` sets the timeout,
//! `--set-status` adds status bits. A filter is required, as for `gc`: this
//! tool never changes a whole table by accident. One streaming dump and
//! pipelined updates (`Conntrack::update_matching`); the kernel applies each
//! change to the flow as it is when the update arrives. Exit status 0 when
//! every update went through, 1 when some failed (the report says which
//! errno), 2 for a usage error.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use conntrack::{Conntrack, FlowChange, Labels, Status};

#[path = "support/cli.rs"]
mod cli;

/// Change every flow a filter selects (conntrack -U): a dry run unless --yes.
#[derive(Parser, Debug)]
#[command(name = "update", version)]
struct Args {
    #[command(flatten)]
    bulk: cli::BulkArgs,
    /// The new mark, MARK or MARK/MASK (only the mask's bits change).
    #[arg(long, value_name = "MARK[/MASK]", value_parser = cli::parse_mark, help_heading = "Change")]
    set_mark: Option<(u32, u32)>,
    /// A label to add: a bit number 0-127 or a name (repeatable).
    #[arg(long, value_name = "LABEL", help_heading = "Change")]
    label_add: Vec<String>,
    /// A label to remove (repeatable).
    #[arg(long, value_name = "LABEL", help_heading = "Change")]
    label_del: Vec<String>,
    /// The label names to use instead of the system's connlabel.conf.
    #[arg(long, value_name = "FILE", help_heading = "Change")]
    labels_file: Option<std::path::PathBuf>,
    /// The new timeout in seconds.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32), help_heading = "Change")]
    timeout: Option<u32>,
    /// A status bit to add: ASSURED, FIXED_TIMEOUT, ... (repeatable).
    #[arg(long, value_name = "BIT", value_parser = cli::parse_status, help_heading = "Change")]
    set_status: Vec<Status>,
    #[command(flatten)]
    filter: cli::FilterArgs,
}

/// The change the options describe, or a usage error naming the option.
fn change(args: &Args) -> Result<FlowChange, String> {
    let mut change = FlowChange::new();
    if let Some((value, mask)) = args.set_mark {
        change = change.mark_masked(value, mask);
    }
    if !args.label_add.is_empty() || !args.label_del.is_empty() {
        let map = cli::load_label_map(args.labels_file.as_deref())?;
        let labels = |option: &str, items: &[String]| -> Result<Labels, String> {
            items.iter().try_fold(Labels::default(), |labels, item| {
                map.resolve(item)
                    .map(|bit| labels.with(bit))
                    .map_err(|e| format!("{option}: {}", strip(&e)))
            })
        };
        change = change
            .add_labels(labels("--label-add", &args.label_add)?)
            .remove_labels(labels("--label-del", &args.label_del)?);
    }
    if let Some(seconds) = args.timeout {
        change = change.timeout(seconds);
    }
    for &bit in &args.set_status {
        change = change.add_status(bit);
    }
    change.validate().map_err(|e| strip(&e))?;
    Ok(change)
}

fn strip(error: &conntrack::Error) -> String {
    match error {
        conntrack::Error::InvalidInput(text) => text.clone(),
        other => other.to_string(),
    }
}

fn main() -> ExitCode {
    cli::quiet_on_closed_pipe();
    let args: Args = cli::parse();
    let filter = args
        .filter
        .filter()
        .unwrap_or_else(|e| cli::usage_error::<Args>(e));
    if filter.is_empty() {
        cli::usage_error::<Args>(
            "a filter is required: update never changes a whole table (give e.g. -f ipv4 to \
             change every IPv4 flow on purpose)",
        );
    }
    let change = change(&args).unwrap_or_else(|e| cli::usage_error::<Args>(e));
    let options = args.bulk.options();
    let started = Instant::now();
    let report = match Conntrack::open_in(&args.bulk.netns)
        .and_then(|mut ct| ct.update_matching(&filter, &change, options))
    {
        Ok(report) => report,
        Err(e) => {
            eprintln!("update: {e}");
            return ExitCode::FAILURE;
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if args.bulk.json {
        let failed: serde_json::Map<String, serde_json::Value> = report
            .failed
            .iter()
            .map(|(errno, n)| (errno.to_string(), (*n).into()))
            .collect();
        let line = serde_json::json!({
            "dry_run": report.dry_run,
            "matched": report.matched,
            "updated": report.updated,
            "already_gone": report.already_gone,
            "failed": failed,
            "kernel_prefiltered": report.kernel_prefiltered,
            "seconds": seconds,
        });
        println!("{line}");
    } else {
        println!(
            "matched={} updated={} already_gone={} failed={} seconds={seconds:.3}{}",
            report.matched,
            report.updated,
            report.already_gone,
            report.failed_total(),
            if report.dry_run {
                " (dry run: add --yes to update)"
            } else {
                ""
            }
        );
        for (errno, n) in &report.failed {
            let text = std::io::Error::from_raw_os_error(*errno);
            println!("  {n} failed with errno {errno} ({text})");
        }
    }
    if report.failed_total() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `gc`: delete the flows a filter selects, or the orphaned flows an orphan
//! policy selects, dry run by default.
//!
//! ```text
//! gc [--netns NAME|PATH|PID] [--yes] [--json] [--list [--labels [--labels-file FILE]]]
//!    [--limit N] [--rate PER_SECOND]
//!    [--orphans [--idle SECONDS] [--unreplied SECONDS] [--half-closed SECONDS]
//!               [--include-nat] [--confirmed] [--sockets namespace|all|off]]
//!    [-f ipv4|ipv6] [-p PROTO] [-s CIDR]... [-d CIDR]... [--sport PORT[-PORT]]...
//!    [--dport PORT[-PORT]]... [--state STATE]... [-u|--status BIT]... [--no-status BIT]...
//!    [-m|--mark MARK[/MASK]] [-w|--zone ZONE]
//! ```
//!
//! Without `--yes` nothing is deleted: the report says how many flows match.
//! With `--yes` the library takes the fastest correct path: one kernel-side
//! filtered flush when this kernel evaluates the whole filter itself, else one
//! streaming dump with pipelined deletes. Repeated options of one kind select
//! any of their values (`-s 10.0.0.1 -s 10.0.0.2`). An empty filter is refused
//! (gc never empties a table; `conntrack -F` does).
//! `PROTO` is a name (`tcp`, `udp`, `icmp`, `sctp`, ...) or a number, `STATE` a
//! TCP state name (`ESTABLISHED`, `TIME_WAIT`, ...), `BIT` a status bit name
//! (`ASSURED`, `SEEN_REPLY`, ...). Exit status 0 on success, 1 on failure,
//! 2 for a usage error.
//!
//! With `--orphans` the flows to delete are the orphans of the default
//! [`OrphanPolicy`](conntrack::OrphanPolicy) (flows left behind by a lost FIN or
//! RST, or that never saw a reply): TCP `ESTABLISHED` idle for an hour
//! (`--idle`), unreplied for a minute (`--unreplied`), half-closed idle for five
//! minutes (`--half-closed`); NATed flows are spared unless `--include-nat`.
//! Filter options then restrict the candidates (an empty filter is fine), and
//! the output adds the number of orphans per category and per evidence.
//!
//! Every orphan also gets its evidence from the socket table of the namespace
//! (`confirmed`: a local end without a socket; `suspected`: idle by the
//! estimate only, e.g. forwarded; flows with a live socket are never orphans).
//! `--confirmed` selects confirmed orphans only: the safe choice for an
//! unattended `--yes`. Each is looked up again right before its delete.
//! `--sockets` says whose socket tables give that evidence: `namespace` (the
//! default: the table's own namespace), `all` (every network namespace of the
//! host: the pod case, a host or router table that forwards for containers
//! or pods whose sockets live in their own namespaces, where `namespace`
//! finds no local end and every flow stays suspected; it assumes their
//! addresses are unique on the host), `off` (none: every orphan suspected;
//! refused with `--confirmed`, which would select nothing).
//!
//! `--list` first prints each flow that is deleted (or would be, in a dry run)
//! like `conntrack -D` does: its `conntrack -L -o extended,id` line (orphans:
//! their category and idle estimate first; `--labels` ends it with the
//! flow's labels by name like `-o extended,id,labels`, names of
//! `--labels-file FILE` or the system's `connlabel.conf`), or with `--json` one object per
//! line, the flow object `dump --json` prints (orphans: `{"orphan", "idle",
//! "age", "flow"}`). It costs one more dump, so a flow that appears or goes
//! between the two passes may differ. A run limited by `--rate` shows its
//! progress on stderr when stderr is a terminal, and stays quiet otherwise.
//! Output to a closed pipe (`gc --list | head`) is dropped: the run goes on
//! and its exit status tells how the deletion went. Idle times are estimated from the namespace's timeout sysctls:
//! read the caveats of `OrphanPolicy` before deleting with `--yes`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use conntrack::text::TextOptions;
use conntrack::{
    Conntrack, DeleteOptions, DeleteReport, Filter, LabelMap, OrphanCounts, OrphanPolicy,
    SocketCheck,
};
use serde::Serialize;

#[path = "support/cli.rs"]
mod cli;

/// Delete the flows a filter selects, or the orphaned flows an orphan policy
/// selects: a dry run unless --yes.
#[derive(Parser, Debug)]
#[command(name = "gc", version)]
struct Args {
    #[command(flatten)]
    bulk: cli::BulkArgs,
    /// Print each flow deleted (or that would be), like conntrack -D.
    #[arg(long)]
    list: bool,
    #[command(flatten)]
    labels: cli::LabelArgs,
    #[command(flatten)]
    orphans: OrphanArgs,
    #[command(flatten)]
    filter: cli::FilterArgs,
}

/// The orphan options.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Orphans")]
struct OrphanArgs {
    /// Delete orphaned flows (lost FIN/RST, never replied) instead of every
    /// flow the filter selects; the filter then restricts the candidates.
    #[arg(long)]
    orphans: bool,
    /// Idle ESTABLISHED threshold in seconds (default 3600).
    #[arg(long, value_name = "SECONDS", requires = "orphans", value_parser = clap::value_parser!(u64).range(..=100 * 365 * 86400))]
    idle: Option<u64>,
    /// Unreplied threshold in seconds (default 60).
    #[arg(long, value_name = "SECONDS", requires = "orphans", value_parser = clap::value_parser!(u64).range(..=100 * 365 * 86400))]
    unreplied: Option<u64>,
    /// Half-closed idle threshold in seconds (default 300).
    #[arg(long, value_name = "SECONDS", requires = "orphans", value_parser = clap::value_parser!(u64).range(..=100 * 365 * 86400))]
    half_closed: Option<u64>,
    /// Also consider NATed flows (spared by default).
    #[arg(long, requires = "orphans")]
    include_nat: bool,
    /// Only orphans the socket table proves dead (a local end without a
    /// socket), each looked up again right before its delete: the safe choice
    /// for an unattended --yes.
    #[arg(long, requires = "orphans")]
    confirmed: bool,
    /// Whose socket tables give the evidence. `all` is for a host or router
    /// whose table forwards the flows of containers or pods: their sockets
    /// live in their own namespaces, so with `namespace` no flow has a local
    /// end and every one stays suspected.
    #[arg(long, value_enum, value_name = "WHERE", default_value_t = Sockets::Namespace, requires = "orphans")]
    sockets: Sockets,
}

/// The values of `--sockets`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Sockets {
    /// The table's own namespace.
    Namespace,
    /// Every network namespace of the host (each pod's or container's
    /// sockets); assumes their addresses are unique on the host.
    All,
    /// None: every orphan is suspected (not with --confirmed).
    Off,
}

impl Sockets {
    fn check(self) -> SocketCheck {
        match self {
            Sockets::Namespace => SocketCheck::Namespace,
            Sockets::All => SocketCheck::AllNamespaces,
            Sockets::Off => SocketCheck::Off,
        }
    }
}

impl OrphanArgs {
    fn policy(&self, filter: Filter) -> OrphanPolicy {
        let mut policy = OrphanPolicy::new()
            .filter(filter)
            .include_nat(self.include_nat)
            .sockets(self.sockets.check())
            .require_confirmation(self.confirmed);
        if let Some(seconds) = self.idle {
            policy = policy.idle_established(Duration::from_secs(seconds));
        }
        if let Some(seconds) = self.unreplied {
            policy = policy.unreplied(Duration::from_secs(seconds));
        }
        if let Some(seconds) = self.half_closed {
            policy = policy.half_closed(Duration::from_secs(seconds));
        }
        policy
    }
}

/// One line to stdout; a closed pipe drops the rest of the output but not
/// the run (the deletion goes on, the exit status says how it went).
fn out(line: std::fmt::Arguments<'_>) {
    static CLOSED: AtomicBool = AtomicBool::new(false);
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"))
        .is_err()
    {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

macro_rules! outln {
    ($($t:tt)*) => { out(format_args!($($t)*)) };
}

fn main() -> ExitCode {
    let args: Args = cli::parse();
    let filter = match args.filter.filter() {
        Ok(filter) => filter,
        Err(e) => cli::usage_error::<Args>(e),
    };
    if !args.orphans.orphans && filter.is_empty() {
        cli::usage_error::<Args>(
            "no filter option: gc deletes only the flows a filter (-p, -s, -d, --sport, --dport, \
             --state, --status, --mark, --zone, ...) or --orphans selects, never the whole table \
             (to empty it on purpose: conntrack -F)",
        );
    }
    if args.orphans.confirmed && args.orphans.sockets == Sockets::Off {
        cli::usage_error::<Args>(
            "--confirmed with --sockets off: confirmation needs socket evidence and `off` reads \
             none, so nothing would be selected (use --sockets namespace or --sockets all)",
        );
    }
    if args.labels.labels && (!args.list || args.bulk.json) {
        cli::usage_error::<Args>("--labels prints labels on the text lines of --list (not --json)");
    }
    let labels = args
        .labels
        .map()
        .unwrap_or_else(|e| cli::usage_error::<Args>(e));
    let labels = labels.as_ref();
    let delete = args.bulk.options();
    let started = Instant::now();
    let result = Conntrack::open_in(&args.bulk.netns).and_then(|mut ct| {
        let progress = Progress::start(&args, &mut ct, &delete)?;
        let result = if args.orphans.orphans {
            let policy = args.orphans.policy(filter.clone());
            if args.list {
                list_orphans(&mut ct, &policy, args.bulk.json, labels, args.bulk.limit)?;
            }
            ct.delete_orphans_counted(&policy, delete)
                .map(|(report, counts)| (report, Some(counts)))
        } else {
            if args.list {
                list_flows(&mut ct, &filter, args.bulk.json, labels, args.bulk.limit)?;
            }
            ct.delete_matching(&filter, delete)
                .map(|report| (report, None))
        };
        drop(progress);
        result
    });
    let (report, counts) = match result {
        Ok(done) => done,
        Err(e) => {
            eprintln!("gc: {e}");
            return ExitCode::FAILURE;
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if args.bulk.json {
        print_json(&delete, &report, counts.as_ref(), seconds);
    } else {
        if let Some(counts) = &counts {
            let per_category: Vec<String> = counts
                .iter()
                .map(|(category, n)| format!("{category}={n}"))
                .collect();
            outln!(
                "orphans: {} unestimated={} candidates={} confirmed={} suspected={} alive={}",
                per_category.join(" "),
                counts.unestimated,
                counts.candidates,
                counts.confirmed,
                counts.suspected,
                counts.alive
            );
        }
        outln!(
            "path={} matched={} deleted={} already_gone={} failed={} seconds={seconds:.3}{}",
            report.path,
            report.matched,
            report.deleted,
            report.already_gone,
            report.failed_total(),
            if delete.dry_run {
                " (dry run: add --yes to delete)"
            } else {
                ""
            }
        );
    }
    if report.failed_total() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints the flows `filter` selects (at most `limit`), as `conntrack -D` does.
fn list_flows(
    ct: &mut Conntrack,
    filter: &Filter,
    json: bool,
    labels: Option<&LabelMap>,
    limit: Option<u64>,
) -> conntrack::Result<()> {
    let mut listed = 0u64;
    let mut dump = ct.dump_filtered(filter)?;
    while let Some(flow) = dump.next_flow() {
        if limit.is_some_and(|limit| listed >= limit) {
            break;
        }
        let flow = flow?;
        listed += 1;
        if json {
            outln!(
                "{}",
                serde_json::to_string(&flow).expect("a flow serializes")
            );
        } else {
            outln!(
                "{}",
                cli::flow_text(&flow, TextOptions::EXTENDED_ID, labels)
            );
        }
    }
    Ok(())
}

/// Prints every orphan: text lines, or one JSON object per line with `--json`.
fn list_orphans(
    ct: &mut Conntrack,
    policy: &OrphanPolicy,
    json: bool,
    labels: Option<&LabelMap>,
    limit: Option<u64>,
) -> conntrack::Result<()> {
    let orphans = ct.orphans(policy)?;
    let shown = limit.map_or(orphans.len(), |limit| {
        usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .min(orphans.len())
    });
    for orphan in &orphans[..shown] {
        if json {
            #[derive(Serialize)]
            struct Listed<'a> {
                orphan: conntrack::OrphanCategory,
                evidence: conntrack::Evidence,
                #[serde(with = "seconds")]
                idle: Option<Duration>,
                #[serde(with = "seconds")]
                age: Option<Duration>,
                flow: &'a conntrack::Flow,
            }
            let line = Listed {
                orphan: orphan.category,
                evidence: orphan.evidence,
                idle: orphan.idle,
                age: orphan.age,
                flow: &orphan.flow,
            };
            outln!(
                "{}",
                serde_json::to_string(&line).expect("an orphan serializes")
            );
        } else {
            let idle = orphan
                .idle
                .map_or("-".to_owned(), |d| d.as_secs().to_string());
            outln!(
                "{:<21} {:<9} idle={idle}s {}",
                orphan.category.name(),
                orphan.evidence.name(),
                cli::flow_text(&orphan.flow, TextOptions::EXTENDED_ID, labels)
            );
        }
    }
    Ok(())
}

/// Whole seconds (as `gc` always printed them), or `null`.
mod seconds {
    pub fn serialize<S: serde::Serializer>(
        value: &Option<std::time::Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_u64(d.as_secs()),
            None => serializer.serialize_none(),
        }
    }
}

fn print_json(
    delete: &DeleteOptions,
    report: &DeleteReport,
    counts: Option<&OrphanCounts>,
    seconds: f64,
) {
    #[derive(Serialize)]
    struct Report<'a> {
        #[serde(flatten)]
        report: &'a DeleteReport,
        dry_run: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        orphans: Option<&'a OrphanCounts>,
        seconds: f64,
    }
    let line = Report {
        report,
        dry_run: delete.dry_run,
        orphans: counts,
        seconds,
    };
    outln!(
        "{}",
        serde_json::to_string(&line).expect("a report serializes")
    );
}

/// A progress line on stderr while a rate-limited delete runs, only when
/// stderr is a terminal: elapsed time and the namespace's entry count (an
/// O(1) read on a second handle; the library reports no per-flow progress).
struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(
        args: &Args,
        ct: &mut Conntrack,
        delete: &DeleteOptions,
    ) -> conntrack::Result<Option<Progress>> {
        let Some(rate) = delete.rate else {
            return Ok(None);
        };
        if delete.dry_run || !std::io::stderr().is_terminal() {
            return Ok(None);
        }
        let before = ct.count()?;
        let mut counter = Conntrack::open_in(&args.bulk.netns)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            let mut shown = false;
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                let Ok(now) = counter.count() else { break };
                eprint!(
                    "\rgc: {:.0} s at up to {rate}/s: table {} -> {} entries\x1b[K",
                    started.elapsed().as_secs_f64(),
                    cli::thousands(before.into()),
                    cli::thousands(now.into()),
                );
                shown = true;
            }
            if shown {
                eprint!("\r\x1b[K");
            }
        });
        Ok(Some(Progress {
            stop,
            thread: Some(thread),
        }))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

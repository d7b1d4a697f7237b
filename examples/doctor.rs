// SPDX-License-Identifier: MIT OR Apache-2.0
//! `doctor`: a one-shot health report of a conntrack table, and a safe plan to
//! fix it. The main job of this repository.
//!
//! ```text
//! doctor [--netns NAME|PATH|PID] [--json] [--interval SECONDS] [--warn PERCENT]
//!        [--crit PERCENT] [--top N] [--memory-budget SIZE] [--chain-depth D]
//!        [--apply] [--check] [--root DIR]
//! doctor --demo [--json] [...]
//! ```
//!
//! When a host logs `nf_conntrack: table full, dropping packet`, this tells what
//! is wrong and what to do, in one command:
//!
//! - **table**: entries against `nf_conntrack_max`, with a level: OK, WARN from
//!   `--warn` (80 %), CRIT from `--crit` (95 %). The limit is global (one value
//!   for the host, writable only from the initial namespace) but applies to each
//!   namespace separately.
//! - **hash**: buckets and the average chain length now and when full (each
//!   entry sits in two chains), also over the whole host's entries.
//! - **memory**: bytes per entry from the `nf_conntrack` slab cache (plus the
//!   128-byte extension area when accounting, timestamps or events are on), in
//!   use now, and pinned when full. Unswappable kernel memory.
//! - **kernel counters**: what `drop`, `early_drop`, `insert_failed`,
//!   `clash_resolve`, `chaintoolong`, ... did over `--interval` seconds (1 s;
//!   0 skips the wait), in plain language, and their totals since the namespace
//!   started (since boot for the host).
//! - **top**: the largest sources, destination ports, protocols and TCP states,
//!   from one streaming dump (no per-flow allocation), which also counts the
//!   **orphans**: TCP flows idle in ESTABLISHED for an hour (a lost FIN or RST),
//!   flows unreplied for a minute, half-closed flows idle for five minutes.
//! - **plan**: when the table is (nearly) full, drops happen, or chains would
//!   be long, a new `nf_conntrack_max` (twice the demand, in steps of 65536)
//!   and buckets (chain depth `--chain-depth`, 4, when full; never fewer than
//!   now) within a memory budget (`--memory-budget`, 1/16 of RAM by default;
//!   `SIZE` is bytes, `512M`, `2G`, or a percentage of RAM such as `10%`), the
//!   exact content of the `sysctl.d`, `modprobe.d` and `modules-load.d` files,
//!   and the lines elsewhere that would override them. Dry by default:
//!   `--apply` writes the values now and persists them (from the initial
//!   namespace only: the keys are global). Orphans get a `gc` command.
//!
//! `--demo` makes a throwaway network namespace held by a child process (so it
//! disappears with this program, even on Ctrl-C or `kill -9`), loads it with a
//! realistic table built through the library (thousands of flows over TCP, UDP
//! and ICMP, IPv4 and IPv6, several TCP states, a few heavy sources, some
//! orphaned ESTABLISHED flows) filled close to the limit, sends real loopback
//! traffic into it while the counters are measured so that the kernel has to
//! evict or drop, and reports on it. It never touches the host's own table or
//! settings (`--apply` is refused). When the host's limit is above 400 000 the
//! demo builds 40 000 flows and the table stays OK. Needs root, `unshare`,
//! `nsenter`, `setpriv` (util-linux), `ip` and `nft`.
//!
//! `--root DIR` reads `/proc`, `/sys` and `/etc` below `DIR` (tests use it to
//! check `--apply` on a copy). `--check` sets the exit status from the level
//! (0 OK, 1 WARN, 2 CRIT, 3 on error, as monitoring plugins do); otherwise it is
//! 0 when the report was made, 1 on error, 2 for a usage error.
//!
//! # `--json`
//! One JSON object on stdout. Keys (sizes in bytes, durations in seconds):
//! - `level`: `"OK"`, `"WARN"` or `"CRIT"`, the worst of `findings`.
//! - `namespace`: `{name, initial, kernel}`.
//! - `table`: `{entries, max, usage` (0..1)`, level, warn, crit, buckets,
//!   chain_depth, chain_depth_at_max, host_entries, host_chain_depth}`
//!   (`host_*` are `null` when the slab cache cannot be read).
//! - `memory`: `{entry_bytes, extension_bytes, per_entry_bytes, entries_bytes,
//!   hash_table_bytes, in_use_bytes, at_max_bytes, host_entries_bytes, ram_bytes}`.
//! - `counters`: `{interval, delta: {name: n}, since_start: {name: n},
//!   table_full, readings: [text]}`; `delta` is `null` with `--interval 0`.
//! - `dump`: `{flows, seconds, interrupted, decode_errors}`.
//! - `top`: `{sources: [{address, flows}], destination_ports: [{protocol, port,
//!   flows}], protocols: [{protocol, number, flows}], tcp_states: [{state,
//!   flows}], other: {sources, destination_ports, protocols, tcp_states}}`
//!   (`port` is `null` for protocols without ports; `other` sums the groups
//!   beyond `--top`).
//! - `orphans`: `{total, idle_established, long_unreplied,
//!   lingering_half_closed, candidates, unestimated, thresholds: {idle_established,
//!   long_unreplied, lingering_half_closed}}`.
//! - `findings`: `[{level, text}]`, worst first.
//! - `plan`: `{needed, reasons: [text], max: {current, recommended}, buckets:
//!   {current, recommended}, chain_depth_when_full, per_entry_bytes, pinned_bytes,
//!   memory_budget, capped_by_budget, files: [{path, outcome, content}],
//!   overrides: [{path, line, text}], commands: [text], applied}`; when not
//!   `needed`, only `needed`, `reasons` (empty), `commands` and `applied`.
//! - `demo` (with `--demo`): `{pid, namespace_inode, flows_created,
//!   traffic_sent, traffic_refused}`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conntrack::sysctl::{
    Capacity, Counter, KernelStatsDelta, Key, MemoryModel, PersistReport, Recommendation, Settings,
    SlabInfo, Sysctl, SysctlRoot, Timeout, EXTENSION_PREALLOC_BYTES,
};
use conntrack::testing::mix;
use conntrack::{
    Conntrack, FlowSpec, GroupBy, GroupCounts, GroupValue, Grouping, KernelStats, Netns,
    OrphanCategory, OrphanCounts, OrphanPolicy, Status, TcpState, Tuple,
};
use serde_json::{json, Value};

#[path = "support/cli.rs"]
mod cli;

use clap::Parser;
use cli::{parse_netns, protocol_name, thousands};

/// New limits are rounded up to a multiple of this.
const MAX_STEP: u64 = 65_536;
/// Chains longer than this when the table is full call for more buckets.
const LONG_CHAIN: f64 = 8.0;
/// Above this limit the demo does not fill the table (it would take too much memory).
const DEMO_FILL_LIMIT: u32 = 400_000;
/// New flows the demo's traffic opens while the counters are measured.
const DEMO_TRAFFIC: u32 = 5_000;

type BoxError = Box<dyn std::error::Error>;

// ---------------------------------------------------------------------------
// Options

#[derive(Debug, Clone, Copy)]
enum Budget {
    Bytes(u64),
    PercentOfRam(f64),
}

struct Options {
    netns: Netns,
    json: bool,
    interval: Duration,
    warn: f64,
    crit: f64,
    top: usize,
    budget: Budget,
    chain_depth: f64,
    apply: bool,
    check: bool,
    root: SysctlRoot,
    demo: bool,
}

fn parse_size(text: &str) -> Option<Budget> {
    if let Some(percent) = text.strip_suffix('%') {
        let p: f64 = percent.trim().parse().ok()?;
        return (p > 0.0 && p <= 100.0).then_some(Budget::PercentOfRam(p));
    }
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
        .filter(|&b| b > 0)
        .map(Budget::Bytes)
}

/// A one-shot health report of a conntrack table, with a safe remediation plan.
#[derive(Parser, Debug)]
#[command(name = "doctor", version)]
struct Args {
    /// Namespace: an `ip netns` name, a path (/proc/PID/ns/net) or a pid;
    /// default: the current one.
    #[arg(long, value_name = "NAME|PATH|PID", value_parser = parse_netns, default_value = "current")]
    netns: Netns,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Seconds over which kernel counter rates are measured (0-3600; 0: none).
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = number_in(0.0, 3600.0))]
    interval: f64,
    /// Fill level (percent) from which the table is WARN.
    #[arg(long, value_name = "PERCENT", default_value = "80", value_parser = parse_percent)]
    warn: f64,
    /// Fill level (percent) from which the table is CRIT.
    #[arg(long, value_name = "PERCENT", default_value = "95", value_parser = parse_percent)]
    crit: f64,
    /// Rows of each top-N breakdown.
    #[arg(long, value_name = "N", default_value = "5", value_parser = clap::value_parser!(u16))]
    top: u16,
    /// Memory the plan may give conntrack: bytes with a unit (512M, 2G) or a
    /// percentage of RAM (default 6.25%).
    #[arg(long, value_name = "SIZE", value_parser = budget)]
    memory_budget: Option<Budget>,
    /// Target average hash chain depth of the plan (0.5-64).
    #[arg(long, value_name = "D", default_value = "4", value_parser = number_in(0.5, 64.0))]
    chain_depth: f64,
    /// Write the plan (sysctl.d drop-in and module options; initial namespace only).
    #[arg(long, conflicts_with = "demo")]
    apply: bool,
    /// Exit status by level: 0 OK, 1 WARN, 2 CRIT, 3 failure.
    #[arg(long)]
    check: bool,
    /// Root directory for /proc, /sys and /etc (tests).
    #[arg(long, value_name = "DIR")]
    root: Option<std::path::PathBuf>,
    /// Build a throwaway namespace with a realistic load, report on it, remove it.
    #[arg(long, conflicts_with = "netns")]
    demo: bool,
}

/// A number in `low..=high`.
fn number_in(low: f64, high: f64) -> impl Fn(&str) -> Result<f64, String> + Clone {
    move |text: &str| match text.parse::<f64>() {
        Ok(v) if (low..=high).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a number from {low} to {high}")),
    }
}

fn parse_percent(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!(
            "{text:?} is not a percentage (above 0, at most 100)"
        )),
    }
}

fn budget(text: &str) -> Result<Budget, String> {
    parse_size(text).ok_or_else(|| {
        format!("{text:?} is not a size (512M, 2G, 1048576) or a percentage of RAM (10%)")
    })
}

impl Args {
    fn options(self) -> Options {
        if self.warn > self.crit {
            cli::usage_error::<Args>(format!(
                "--warn ({}) must not be above --crit ({})",
                self.warn, self.crit
            ));
        }
        Options {
            netns: self.netns,
            json: self.json,
            interval: Duration::from_secs_f64(self.interval),
            warn: self.warn,
            crit: self.crit,
            top: usize::from(self.top),
            budget: self
                .memory_budget
                .unwrap_or(Budget::PercentOfRam(100.0 / 16.0)),
            chain_depth: self.chain_depth,
            apply: self.apply,
            check: self.check,
            root: self.root.map_or_else(SysctlRoot::system, SysctlRoot::under),
            demo: self.demo,
        }
    }
}

// ---------------------------------------------------------------------------
// Levels and findings

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Warn,
    Crit,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Crit => "CRIT",
        }
    }
}

struct Finding {
    level: Level,
    text: String,
}

// ---------------------------------------------------------------------------
// Gathering

/// Everything read from the kernel and the system.
struct Gathered {
    label: String,
    kernel: String,
    settings: Settings,
    entries: u64,
    max: u64,
    slab: Option<SlabInfo>,
    ram: Option<u64>,
    delta: Option<KernelStatsDelta>,
    since_start: KernelStats,
    dumped: u64,
    dump_seconds: f64,
    interrupted: bool,
    decode_errors: u64,
    sources: GroupCounts,
    ports: GroupCounts,
    protocols: GroupCounts,
    states: GroupCounts,
    orphans: OrphanCounts,
    policy: OrphanPolicy,
}

fn label_of(netns: &Netns, initial: bool) -> String {
    match netns {
        Netns::Current if initial => "current (the initial namespace)".into(),
        other => other.label(),
    }
}

fn read_ram(root: &SysctlRoot) -> Option<u64> {
    let text = std::fs::read_to_string(root.proc.join("meminfo")).ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn gather(options: &Options, netns: &Netns) -> Result<Gathered, BoxError> {
    let sysctl = Sysctl::in_netns(netns.clone()).with_root(options.root.clone());
    let settings = sysctl.settings()?;
    let mut ct = Conntrack::open_in(netns)?;

    let before = ct.kernel_stats()?;
    let delta = if options.interval.is_zero() {
        None
    } else {
        std::thread::sleep(options.interval);
        Some(KernelStatsDelta::between(&before, &ct.kernel_stats()?))
    };
    let since_start = ct.kernel_stats()?;
    let stats = ct.table_stats()?;

    // One streaming pass: four groupings and the orphan classification.
    let policy = OrphanPolicy::new();
    let census = ct.census(
        &[
            Grouping::new(&[GroupBy::Source], options.top),
            Grouping::new(&[GroupBy::Protocol, GroupBy::DestinationPort], options.top),
            Grouping::new(&[GroupBy::Protocol], 8),
            Grouping::new(&[GroupBy::TcpState], usize::MAX),
        ],
        Some(&policy),
    )?;
    let mut groups = census.groups.into_iter();
    let mut next = || groups.next().expect("one result per grouping");
    let (sources, ports, protocols) = (next(), next(), next());
    // TCP states of TCP flows only: drop the group of the others.
    let mut states = next();
    if let Some(i) = states
        .groups
        .iter()
        .position(|(k, _)| k[0] == GroupValue::None)
    {
        states.total -= states.groups.remove(i).1;
    }
    let orphans = census.orphans.unwrap_or_default();

    Ok(Gathered {
        label: label_of(netns, settings.initial_namespace),
        kernel: std::fs::read_to_string(options.root.proc.join("sys/kernel/osrelease"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into()),
        entries: stats.entries.into(),
        max: stats.max_entries.unwrap_or(settings.max).into(),
        settings,
        slab: SlabInfo::read(&options.root).ok(),
        ram: read_ram(&options.root),
        delta,
        since_start,
        dumped: census.flows,
        dump_seconds: census.elapsed.as_secs_f64(),
        interrupted: census.interrupted,
        decode_errors: census.decode_errors,
        sources,
        ports,
        protocols,
        states,
        orphans,
        policy,
    })
}

// ---------------------------------------------------------------------------
// Assessment and plan

struct Plan {
    reasons: Vec<String>,
    recommendation: Recommendation,
    current_max: u64,
    current_buckets: u64,
    budget: u64,
    capped_by_budget: bool,
    persist: PersistReport,
}

struct Assessment {
    table_level: Level,
    usage: f64,
    capacity: Capacity,
    findings: Vec<Finding>,
    plan: Option<Plan>,
    commands: Vec<String>,
}

fn percent(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn budget_bytes(budget: Budget, ram: Option<u64>) -> Result<u64, BoxError> {
    match budget {
        Budget::Bytes(b) => Ok(b),
        Budget::PercentOfRam(p) => ram
            .map(|ram| (ram as f64 * p / 100.0) as u64)
            .ok_or_else(|| "cannot read MemTotal from /proc/meminfo: give --memory-budget".into()),
    }
}

fn netns_argument(netns: &Netns) -> String {
    match netns {
        Netns::Current => String::new(),
        // Read back by every tool's --netns as this very namespace.
        other => format!(" --netns {}", other.argument()),
    }
}

fn assess(g: &Gathered, options: &Options, netns: &Netns) -> Result<Assessment, BoxError> {
    let mut findings = Vec::new();
    let mut reasons = Vec::new();
    // Without the slab cache (no /sys/kernel/slab), 256-byte entries as on 6.18 x86-64.
    let slab = g.slab.unwrap_or_default();
    let capacity = match g.slab {
        Some(slab) => Capacity::new(&g.settings, &slab),
        None => Capacity::new(&g.settings, &slab).with_model(MemoryModel::new(
            MemoryModel::default().entry_bytes,
            if g.settings.extensions_on() {
                EXTENSION_PREALLOC_BYTES
            } else {
                0
            },
        )),
    };
    let usage = if g.max > 0 {
        g.entries as f64 / g.max as f64
    } else {
        0.0
    };
    let table_level = if usage * 100.0 >= options.crit {
        Level::Crit
    } else if usage * 100.0 >= options.warn {
        Level::Warn
    } else {
        Level::Ok
    };
    let used = format!(
        "{} of {} entries in use ({})",
        thousands(g.entries),
        thousands(g.max),
        percent(usage)
    );
    match table_level {
        Level::Ok => findings.push(Finding {
            level: Level::Ok,
            text: format!("table: {used}"),
        }),
        level => {
            findings.push(Finding {
                level,
                text: format!("table: {used}, at or above the {} threshold", level.name()),
            });
            reasons.push(format!("the table is {} full", percent(usage)));
        }
    }

    let delta_of = |c: Counter| g.delta.as_ref().and_then(|d| d.get(c)).unwrap_or(0);
    let seconds = options.interval.as_secs_f64();
    let full_now = g.delta.as_ref().is_some_and(|d| d.table_full());
    if full_now {
        let (drop, early) = (delta_of(Counter::Drop), delta_of(Counter::EarlyDrop));
        findings.push(Finding {
            level: Level::Crit,
            text: format!(
                "table full in the last {seconds:.1} s: {} new connections dropped, \
                 {} unassured entries evicted to admit new ones",
                thousands(drop),
                thousands(early)
            ),
        });
        reasons.push("the kernel dropped or evicted entries because the table was full".into());
    } else {
        let since = |c: Counter| c.get(&g.since_start.total).unwrap_or(0);
        let (drop, early) = (since(Counter::Drop), since(Counter::EarlyDrop));
        if drop + early > 0 {
            findings.push(Finding {
                level: Level::Warn,
                text: format!(
                    "the table was full before: {} drops and {} early drops since \
                     the namespace started (none during the measurement)",
                    thousands(drop),
                    thousands(early)
                ),
            });
            reasons.push("the table overflowed before (drop/early_drop since start)".into());
        }
    }
    for (counter, moved) in [
        (Counter::InsertFailed, delta_of(Counter::InsertFailed)),
        (Counter::ChainTooLong, delta_of(Counter::ChainTooLong)),
    ] {
        if moved > 0 {
            findings.push(Finding {
                level: Level::Warn,
                text: format!(
                    "{} ({counter}) in {seconds:.1} s — {}",
                    counter.describe(moved),
                    counter.advice().unwrap_or("")
                ),
            });
        }
    }
    if delta_of(Counter::ChainTooLong) > 0 {
        reasons.push("hash chains grew too long (chaintoolong)".into());
    }
    let depth_at_max = capacity.chain_depth_at_max();
    if depth_at_max > LONG_CHAIN {
        findings.push(Finding {
            level: Level::Warn,
            text: format!(
                "a full table would average {depth_at_max:.1} entries per hash chain \
                 ({} buckets for a limit of {}): lookups slow down",
                thousands(g.settings.buckets.into()),
                thousands(g.max)
            ),
        });
        reasons.push(format!(
            "too few buckets: chains of {depth_at_max:.1} when full"
        ));
    }

    let mut commands = Vec::new();
    let orphan_total = g.orphans.total();
    if orphan_total > 0 {
        let level = if g.dumped > 0 && orphan_total * 100 >= g.dumped {
            Level::Warn
        } else {
            Level::Ok
        };
        findings.push(Finding {
            level,
            text: format!(
                "{} orphaned flows ({} of the dumped table): entries left behind by a lost \
                 FIN/RST or a peer that never answered, holding slots until they time out",
                thousands(orphan_total),
                percent(orphan_total as f64 / g.dumped.max(1) as f64)
            ),
        });
        commands.push(format!(
            "{:<36} # list them; add --yes to delete them",
            format!("gc{} --orphans --list", netns_argument(netns))
        ));
    }
    if g.interrupted {
        findings.push(Finding {
            level: Level::Ok,
            text: "the table changed under the dump (NLM_F_DUMP_INTR): groups are approximate"
                .into(),
        });
    }

    let plan = if reasons.is_empty() {
        None
    } else {
        let budget = budget_bytes(options.budget, g.ram)?;
        // Plan for the worst case: entries with the extension area (an event
        // listener, NAT or a helper adds it even with the defaults).
        let model = match g.slab {
            Some(slab) => MemoryModel::for_settings(&slab, &g.settings, true),
            None => MemoryModel::new(MemoryModel::default().entry_bytes, EXTENSION_PREALLOC_BYTES),
        };
        let demand = if table_level == Level::Crit || full_now {
            2 * g.max.max(g.entries)
        } else {
            2 * g.entries
        };
        let wanted = demand.div_ceil(MAX_STEP) * MAX_STEP;
        let wanted = wanted.max(g.max).max(MAX_STEP);
        let current_buckets = u64::from(g.settings.buckets);
        let mut recommendation = model.plan_for(wanted, options.chain_depth, current_buckets)?;
        let mut capped_by_budget = false;
        if recommendation.pinned_bytes > budget {
            let fit = model.recommend(budget, options.chain_depth)?;
            capped_by_budget = true;
            // The buckets never shrink, so what the budget leaves for entries is
            // what remains after the larger of the two hash tables.
            let buckets = u64::from(fit.buckets).max(current_buckets);
            let room = budget.saturating_sub(MemoryModel::hash_table_bytes(buckets));
            // Never lower the limit: that would drop connections that fit today.
            let max = (room / model.per_entry_bytes()).max(g.max);
            recommendation = model.plan_for(max, options.chain_depth, current_buckets)?;
            findings.push(Finding {
                level: Level::Warn,
                text: format!(
                    "the memory budget ({}) allows a limit of {} at most, below the {} wanted: \
                     shorten timeouts, remove orphans, or raise --memory-budget",
                    bytes(budget),
                    thousands(recommendation.max.into()),
                    thousands(wanted)
                ),
            });
        }
        let persist = recommendation.plan().preview(&options.root)?;
        Some(Plan {
            reasons,
            recommendation,
            current_max: g.max,
            current_buckets,
            budget,
            capped_by_budget,
            persist,
        })
    };
    if plan.is_some() {
        commands.insert(
            0,
            format!(
                "{:<36} # write the values now and persist them (from the host)",
                "doctor --apply"
            ),
        );
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    Ok(Assessment {
        table_level,
        usage,
        capacity,
        findings,
        plan,
        commands,
    })
}

/// `--apply`: the live values, then the files. Global keys: initial namespace only.
fn apply(plan: &Plan, options: &Options) -> Result<PersistReport, BoxError> {
    let sysctl = Sysctl::new().with_root(options.root.clone());
    if !sysctl.is_initial_namespace()? {
        return Err(format!(
            "--apply: {} — run doctor from the host (initial namespace)",
            Key::Max.rule()
        )
        .into());
    }
    let persist_plan = plan.recommendation.plan();
    sysctl.apply(&persist_plan)?;
    Ok(persist_plan.persist(&options.root)?)
}

// ---------------------------------------------------------------------------
// Output

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn port_of(value: &GroupValue) -> Option<u32> {
    match value {
        GroupValue::Number(n) => Some(*n),
        _ => None,
    }
}

fn state_name(value: &GroupValue) -> String {
    match value {
        GroupValue::TcpState(state) => state.name().to_owned(),
        other => other.to_string(),
    }
}

/// `"a 12 (3.4 %), b 5 (1.0 %), other 7"`.
fn group_line(counts: &GroupCounts, name: impl Fn(&[GroupValue]) -> String) -> String {
    let total = counts.total.max(1) as f64;
    let mut parts: Vec<String> = counts
        .groups
        .iter()
        .map(|(key, n)| {
            format!(
                "{} {} ({:.1} %)",
                name(key),
                thousands(*n),
                *n as f64 * 100.0 / total
            )
        })
        .collect();
    if counts.other > 0 {
        parts.push(format!(
            "{} more with {}",
            thousands(counts.other_groups),
            thousands(counts.other)
        ));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn port_name(key: &[GroupValue]) -> String {
    match port_of(&key[1]) {
        Some(port) => format!("{}/{port}", protocol_name(&key[0])),
        None => protocol_name(&key[0]),
    }
}

fn counters_map(counters: &conntrack::CpuCounters) -> serde_json::Map<String, Value> {
    Counter::ALL
        .iter()
        .filter_map(|c| c.get(counters).map(|v| (c.name().to_owned(), json!(v))))
        .collect()
}

fn text_report(
    g: &Gathered,
    a: &Assessment,
    options: &Options,
    applied: Option<&PersistReport>,
) -> String {
    let mut out = String::new();
    let level = a.findings.first().map_or(Level::Ok, |f| f.level);
    let c = &a.capacity;
    let _ = writeln!(
        out,
        "conntrack doctor: {} — namespace {}, kernel {}",
        level.name(),
        g.label,
        g.kernel
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "TABLE     {:<4}  {} of {} entries ({})   [WARN at {:.0} %, CRIT at {:.0} %]",
        a.table_level.name(),
        thousands(g.entries),
        thousands(g.max),
        percent(a.usage),
        options.warn,
        options.crit
    );
    let _ = writeln!(
        out,
        "          limit: nf_conntrack_max, one value for the host, counted per namespace"
    );
    let host = match (c.slab_objects, c.host_chain_depth()) {
        (Some(n), Some(depth)) => {
            format!("; host-wide {} entries, chains {depth:.1}", thousands(n))
        }
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "HASH      {} buckets: average chain {:.1} now, {:.1} when full{host}",
        thousands(c.buckets),
        c.chain_depth(),
        c.chain_depth_at_max()
    );
    let ext = if c.model.extension_bytes > 0 {
        format!(" + {} B extensions", c.model.extension_bytes)
    } else {
        String::new()
    };
    let ram = g
        .ram
        .map_or(String::new(), |r| format!("; RAM {}", bytes(r)));
    let _ = writeln!(
        out,
        "MEMORY    {} B per entry (slab {} B{ext}): {} in use (hash table {}), {} when full{ram}",
        c.model.per_entry_bytes(),
        c.model.entry_bytes,
        bytes(c.in_use_bytes()),
        bytes(c.hash_table_bytes()),
        bytes(c.at_max_bytes())
    );
    match &g.delta {
        None => {
            let _ = writeln!(out, "COUNTERS  not measured (--interval 0)");
        }
        Some(delta) => {
            let readings = delta.readings();
            let _ = writeln!(
                out,
                "COUNTERS  over {:.1} s: {}",
                options.interval.as_secs_f64(),
                if readings.is_empty() {
                    "nothing moved".to_owned()
                } else {
                    format!("{} moved", readings.len())
                }
            );
            for reading in readings {
                let _ = writeln!(out, "          {reading}");
            }
        }
    }
    let since: Vec<String> = [
        Counter::Drop,
        Counter::EarlyDrop,
        Counter::InsertFailed,
        Counter::ClashResolve,
        Counter::ChainTooLong,
        Counter::Invalid,
    ]
    .iter()
    .filter_map(|c| {
        c.get(&g.since_start.total)
            .map(|v| format!("{} {}", c.name(), thousands(v)))
    })
    .collect();
    let _ = writeln!(out, "          since start: {}", since.join(", "));
    let interrupted = if g.interrupted { ", interrupted" } else { "" };
    let _ = writeln!(
        out,
        "TOP       one dump of {} flows in {:.2} s{interrupted}",
        thousands(g.dumped),
        g.dump_seconds
    );
    let _ = writeln!(
        out,
        "  sources      {}",
        group_line(&g.sources, |k| k[0].to_string())
    );
    let _ = writeln!(out, "  dest ports   {}", group_line(&g.ports, port_name));
    let _ = writeln!(
        out,
        "  protocols    {}",
        group_line(&g.protocols, |k| protocol_name(&k[0]))
    );
    let _ = writeln!(
        out,
        "  TCP states   {}",
        group_line(&g.states, |k| state_name(&k[0]))
    );
    let o = &g.orphans;
    let threshold = |cat| g.policy.threshold_of(cat).as_secs();
    let _ = writeln!(
        out,
        "ORPHANS   {} (confirmed {}, suspected {}; {} idle but alive): idle ESTABLISHED ≥ {} s: {}, unreplied ≥ {} s: {}, half-closed ≥ {} s: {}",
        thousands(o.total()),
        thousands(o.confirmed),
        thousands(o.suspected),
        thousands(o.alive),
        threshold(OrphanCategory::IdleEstablished),
        thousands(o.idle_established),
        threshold(OrphanCategory::LongUnreplied),
        thousands(o.long_unreplied),
        threshold(OrphanCategory::LingeringHalfClosed),
        thousands(o.lingering_half_closed)
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "FINDINGS");
    for f in &a.findings {
        let _ = writeln!(out, "  {:<4}  {}", f.level.name(), f.text);
    }
    let _ = writeln!(out);
    match &a.plan {
        None => {
            let _ = writeln!(out, "PLAN      no change needed");
        }
        Some(plan) => {
            let r = &plan.recommendation;
            let _ = writeln!(
                out,
                "PLAN      {} (because {})",
                if applied.is_some() {
                    "applied"
                } else {
                    "dry run; --apply writes it"
                },
                plan.reasons.join("; ")
            );
            let _ = writeln!(
                out,
                "          nf_conntrack_max {} -> {}, buckets {} -> {} (chains {:.1} when full)",
                thousands(plan.current_max),
                thousands(r.max.into()),
                thousands(plan.current_buckets),
                thousands(r.buckets.into()),
                r.chain_depth
            );
            let _ = writeln!(
                out,
                "          a full table pins {} of unswappable kernel memory per namespace \
                 ({} B per entry + {} hash table); budget {}{}",
                bytes(r.pinned_bytes),
                r.per_entry_bytes,
                bytes(r.hash_table_bytes),
                bytes(plan.budget),
                if plan.capped_by_budget {
                    " (the limit is capped by it)"
                } else {
                    ""
                }
            );
            let files = applied.unwrap_or(&plan.persist);
            for file in &files.files {
                let _ = writeln!(
                    out,
                    "          {} ({}):",
                    file.path.display(),
                    file.outcome.name()
                );
                for line in file.content.lines() {
                    let _ = writeln!(out, "            | {line}");
                }
            }
            for o in &files.overrides {
                let _ = writeln!(
                    out,
                    "          overridden by {}:{}: {}",
                    o.path.display(),
                    o.line,
                    o.text.trim()
                );
            }
        }
    }
    if !a.commands.is_empty() {
        if options.demo {
            let _ = writeln!(
                out,
                "NEXT      (on a real host; the demo namespace goes away with doctor)"
            );
        } else {
            let _ = writeln!(out, "NEXT");
        }
        for command in &a.commands {
            let _ = writeln!(out, "          {command}");
        }
    }
    out
}

fn json_report(
    g: &Gathered,
    a: &Assessment,
    options: &Options,
    applied: Option<&PersistReport>,
    demo: Option<&DemoSummary>,
) -> Value {
    let c = &a.capacity;
    let level = a.findings.first().map_or(Level::Ok, |f| f.level);
    let groups = |counts: &GroupCounts, f: &dyn Fn(&[GroupValue], u64) -> Value| -> Value {
        counts.groups.iter().map(|(k, n)| f(k, *n)).collect()
    };
    let threshold = |cat| g.policy.threshold_of(cat).as_secs();
    let plan = match &a.plan {
        None => json!({"needed": false, "reasons": [], "commands": a.commands, "applied": false}),
        Some(plan) => {
            let r = &plan.recommendation;
            let files = applied.unwrap_or(&plan.persist);
            json!({
                "needed": true,
                "reasons": plan.reasons,
                "max": {"current": plan.current_max, "recommended": r.max},
                "buckets": {"current": plan.current_buckets, "recommended": r.buckets},
                "chain_depth_when_full": r.chain_depth,
                "per_entry_bytes": r.per_entry_bytes,
                "pinned_bytes": r.pinned_bytes,
                "memory_budget": plan.budget,
                "capped_by_budget": plan.capped_by_budget,
                "files": files.files.iter().map(|f| json!({
                    "path": f.path.display().to_string(),
                    "outcome": f.outcome.name(),
                    "content": f.content,
                })).collect::<Vec<_>>(),
                "overrides": files.overrides.iter().map(|o| json!({
                    "path": o.path.display().to_string(),
                    "line": o.line,
                    "text": o.text,
                })).collect::<Vec<_>>(),
                "commands": a.commands,
                "applied": applied.is_some(),
            })
        }
    };
    let mut report = json!({
        "level": level.name(),
        "namespace": {
            "name": g.label,
            "initial": g.settings.initial_namespace,
            "kernel": g.kernel,
        },
        "table": {
            "entries": g.entries,
            "max": g.max,
            "usage": a.usage,
            "level": a.table_level.name(),
            "warn": options.warn / 100.0,
            "crit": options.crit / 100.0,
            "buckets": c.buckets,
            "chain_depth": c.chain_depth(),
            "chain_depth_at_max": c.chain_depth_at_max(),
            "host_entries": c.slab_objects,
            "host_chain_depth": c.host_chain_depth(),
        },
        "memory": {
            "entry_bytes": c.model.entry_bytes,
            "extension_bytes": c.model.extension_bytes,
            "per_entry_bytes": c.model.per_entry_bytes(),
            "entries_bytes": c.entries_bytes(),
            "hash_table_bytes": c.hash_table_bytes(),
            "in_use_bytes": c.in_use_bytes(),
            "at_max_bytes": c.at_max_bytes(),
            "host_entries_bytes": g.slab.and_then(|s| s.objects_bytes()),
            "ram_bytes": g.ram,
        },
        "counters": {
            "interval": options.interval.as_secs_f64(),
            "delta": g.delta.as_ref().map(|d| counters_map(&d.total)),
            "since_start": counters_map(&g.since_start.total),
            "table_full": g.delta.as_ref().is_some_and(|d| d.table_full()),
            "readings": g.delta.as_ref().map(|d| d.readings()).unwrap_or_default(),
        },
        "dump": {
            "flows": g.dumped,
            "seconds": g.dump_seconds,
            "interrupted": g.interrupted,
            "decode_errors": g.decode_errors,
        },
        "top": {
            "sources": groups(&g.sources, &|k, n| json!({"address": k[0].to_string(), "flows": n})),
            "destination_ports": groups(&g.ports, &|k, n| json!({
                "protocol": protocol_name(&k[0]), "port": port_of(&k[1]), "flows": n})),
            "protocols": groups(&g.protocols, &|k, n| json!({
                "protocol": protocol_name(&k[0]), "number": port_of(&k[0]), "flows": n})),
            "tcp_states": groups(&g.states, &|k, n| json!({"state": state_name(&k[0]), "flows": n})),
            "other": {
                "sources": g.sources.other,
                "destination_ports": g.ports.other,
                "protocols": g.protocols.other,
                "tcp_states": g.states.other,
            },
        },
        "orphans": {
            "total": g.orphans.total(),
            "idle_established": g.orphans.idle_established,
            "long_unreplied": g.orphans.long_unreplied,
            "lingering_half_closed": g.orphans.lingering_half_closed,
            "candidates": g.orphans.candidates,
            "unestimated": g.orphans.unestimated,
            "confirmed": g.orphans.confirmed,
            "suspected": g.orphans.suspected,
            "alive": g.orphans.alive,
            "thresholds": {
                "idle_established": threshold(OrphanCategory::IdleEstablished),
                "long_unreplied": threshold(OrphanCategory::LongUnreplied),
                "lingering_half_closed": threshold(OrphanCategory::LingeringHalfClosed),
            },
        },
        "findings": a.findings.iter().map(|f| json!({"level": f.level.name(), "text": f.text}))
            .collect::<Vec<_>>(),
        "plan": plan,
    });
    if let Some(demo) = demo {
        report["demo"] = json!({
            "pid": demo.pid,
            "namespace_inode": demo.inode,
            "flows_created": demo.created,
            "traffic_sent": demo.sent,
            "traffic_refused": demo.refused,
        });
    }
    report
}

// ---------------------------------------------------------------------------
// The demo: a throwaway namespace that dies with this process

/// A network namespace held by a `sleep` child started with `PR_SET_PDEATHSIG`
/// (`setpriv --pdeathsig KILL`): when this program ends, however it ends, the
/// child is killed and the namespace, with its whole table, goes away. Dropping
/// the guard kills the child at once.
struct DemoNamespace {
    child: Child,
    pid: u32,
    inode: u64,
}

impl DemoNamespace {
    fn create() -> Result<Self, BoxError> {
        let own = std::fs::metadata("/proc/self/ns/net")?.ino();
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", "unshare", "--net", "--"])
            .args(["sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start setpriv/unshare (util-linux): {e}"))?;
        let pid = child.id();
        let mut demo = DemoNamespace {
            child,
            pid,
            inode: 0,
        };
        let path = format!("/proc/{pid}/ns/net");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = demo.child.try_wait()? {
                return Err(format!(
                    "unshare --net failed ({status}): creating a namespace needs root"
                )
                .into());
            }
            match std::fs::metadata(&path) {
                Ok(meta) if meta.ino() != own => {
                    demo.inode = meta.ino();
                    break;
                }
                _ if Instant::now() > deadline => {
                    return Err("the demo namespace did not appear within 5 s".into())
                }
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        demo.run("ip", &["link", "set", "lo", "up"], None)?;
        demo.run(
            "nft",
            &["-f", "-"],
            Some(
                "table inet doctor_demo {\n\
                 \tchain out { type filter hook output priority 0; ct state new accept; }\n\
                 \tchain in { type filter hook input priority 0; ct state established,related accept; ct state new accept; }\n\
                 }\n",
            ),
        )?;
        Ok(demo)
    }

    fn netns(&self) -> Netns {
        Netns::Pid(self.pid)
    }

    /// Runs a tool inside the namespace (`nsenter --net`).
    fn run(&self, tool: &str, args: &[&str], stdin: Option<&str>) -> Result<(), BoxError> {
        let mut child = Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", self.pid))
            .arg(tool)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run nsenter (util-linux): {e}"))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())?;
        }
        let output = child.wait_with_output()?;
        if !output.status.success() {
            return Err(format!(
                "{tool} {} in the demo namespace: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        Ok(())
    }
}

impl Drop for DemoNamespace {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct DemoSummary {
    pid: u32,
    inode: u64,
    created: u64,
    sent: u64,
    refused: u64,
}

/// Flow `i` of the demo's own parts: heavy sources and orphans.
fn demo_flows(total: u32, established_timeout: u64) -> Vec<FlowSpec> {
    let replied = Status::SEEN_REPLY | Status::ASSURED;
    let proxy = [10, 20, 0, 5];
    let resolver = [10, 20, 0, 6];
    let scanner = [203, 0, 113, 66];
    let mut flows = Vec::new();
    // A busy proxy: 10 % of the table, HTTPS to many servers.
    for i in 0..total / 10 {
        let dst = mix::v4([198, 51, 100, 1], i / 60_000 % 200);
        flows.push(
            FlowSpec::new(Tuple::tcp((proxy, 1024 + (i % 60_000) as u16), (dst, 443)))
                .tcp_state(TcpState::Established)
                .status(replied),
        );
    }
    // A chatty resolver: 5 %, DNS over UDP.
    for i in 0..total / 20 {
        let dst = mix::v4([192, 0, 2, 53], i / 60_000 % 4);
        flows.push(
            FlowSpec::new(Tuple::udp(
                (resolver, 1024 + (i % 60_000) as u16),
                (dst, 53),
            ))
            .status(replied),
        );
    }
    // A port scan: 3 %, SYNs that never get an answer.
    for i in 0..total / 33 {
        let dst = mix::v4([10, 30, 0, 1], i / 60_000);
        flows.push(
            FlowSpec::new(Tuple::tcp(
                (scanner, 40_000 + (i % 7) as u16),
                (dst, 1 + (i % 60_000) as u16),
            ))
            .tcp_state(TcpState::SynSent),
        );
    }
    // Orphans: 0.5 %, ESTABLISHED connections to a database whose clients
    // vanished without a FIN or RST, idle for 2 to 3 hours.
    for i in 0..(total / 200).max(50) {
        let client = mix::v4([10, 40, 0, 1], i);
        let idle = 7_200 + u64::from(i % 3_600);
        flows.push(
            FlowSpec::new(Tuple::tcp((client, 50_000), ([192u8, 0, 2, 10], 5432)))
                .tcp_state(TcpState::Established)
                .status(replied)
                .timeout(established_timeout.saturating_sub(idle) as u32),
        );
    }
    flows
}

/// Builds the demo's table; returns the flows created.
fn build_demo_table(demo: &DemoNamespace, quiet: bool) -> Result<u64, BoxError> {
    let netns = demo.netns();
    let mut ct = Conntrack::open_in(&netns)?;
    let limit = ct.limit()?;
    let timeouts = Sysctl::in_netns(netns.clone()).timeouts()?;
    let established = timeouts
        .seconds(Timeout::TcpEstablished)
        .ok_or("no nf_conntrack_tcp_timeout_established sysctl")?
        .into();
    let total = if limit <= DEMO_FILL_LIMIT {
        // Close to full, so that the traffic below makes the kernel evict.
        limit.saturating_sub(DEMO_TRAFFIC / 3)
    } else {
        40_000
    };
    if !quiet {
        eprintln!(
            "doctor --demo: building {} flows in a throwaway namespace (pid {}, limit {})...",
            thousands(total.into()),
            demo.pid,
            thousands(limit.into())
        );
    }
    let special = demo_flows(total, established);
    let mixed = total.saturating_sub(special.len() as u32);
    let mut created = 0u64;
    let specs = special.into_iter().chain((0..mixed).map(mix::mixed_flow));
    for (i, spec) in specs.enumerate() {
        // Like live traffic: the state's own timeout, re-armed a little while ago
        // (up to a quarter of it, at most 5 minutes). Orphans bring their own.
        let spec = if spec.timeout.is_some() {
            spec
        } else {
            let status = spec.status.unwrap_or_default();
            let configured = timeouts
                .configured(spec.orig.protocol, spec.protoinfo.as_ref(), status)
                .map_or(600, |t| t.as_secs().clamp(20, u64::from(u32::MAX)));
            let idle = (i as u64) % (configured / 4).min(300);
            spec.timeout((configured - idle) as u32)
        };
        match ct.create(&spec) {
            Ok(()) => created += 1,
            Err(e) if e.errno() == Some(libc::EEXIST) => {}
            // The limit counts entries not yet reaped: stop at the limit.
            Err(e) if e.errno() == Some(libc::ENOMEM) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(created)
}

/// Opens `count` new UDP flows over loopback inside the namespace, spread
/// over about `duration`; returns (sent, refused by the kernel).
fn demo_traffic(
    netns: &Netns,
    count: u32,
    duration: Duration,
    stop: &AtomicBool,
) -> Result<(u64, u64), BoxError> {
    let file = netns.open()?.ok_or("the demo namespace has no file")?;
    let batches = 50u32;
    let pause = duration / batches;
    let result = file.run(|| -> std::io::Result<(u64, u64)> {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let (mut sent, mut refused) = (0u64, 0u64);
        for batch in 0..batches {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            for i in 0..count / batches {
                let n = batch * (count / batches) + i;
                let dst = std::net::SocketAddr::from((
                    [127, 1, (n >> 8) as u8, n as u8],
                    20_000 + (n % 1000) as u16,
                ));
                match socket.send_to(b"ping", dst) {
                    Ok(_) => sent += 1,
                    // A packet the kernel drops on output comes back as EPERM.
                    Err(_) => refused += 1,
                }
            }
            std::thread::sleep(pause);
        }
        Ok((sent, refused))
    })?;
    Ok(result?)
}

// ---------------------------------------------------------------------------

fn run(options: &Options) -> Result<Level, BoxError> {
    let mut demo_guard = None;
    let mut demo_summary = None;
    let netns = if options.demo {
        let demo = DemoNamespace::create()?;
        let created = build_demo_table(&demo, options.json)?;
        demo_summary = Some(DemoSummary {
            pid: demo.pid,
            inode: demo.inode,
            created,
            sent: 0,
            refused: 0,
        });
        let netns = demo.netns();
        demo_guard = Some(demo);
        netns
    } else {
        options.netns.clone()
    };

    let stop = Arc::new(AtomicBool::new(false));
    let traffic = if options.demo {
        let (netns, stop) = (netns.clone(), Arc::clone(&stop));
        let duration = options
            .interval
            .mul_f64(0.8)
            .max(Duration::from_millis(200));
        Some(std::thread::spawn(move || {
            demo_traffic(&netns, DEMO_TRAFFIC, duration, &stop).map_err(|e| e.to_string())
        }))
    } else {
        None
    };
    let gathered = gather(options, &netns);
    stop.store(true, Ordering::Relaxed);
    if let (Some(handle), Some(summary)) = (traffic, demo_summary.as_mut()) {
        let (sent, refused) = handle
            .join()
            .map_err(|_| "the demo traffic thread panicked")??;
        summary.sent = sent;
        summary.refused = refused;
    }
    let gathered = gathered?;
    let assessment = assess(&gathered, options, &netns)?;

    let applied = match (&assessment.plan, options.apply) {
        (Some(plan), true) => Some(apply(plan, options)?),
        _ => None,
    };
    let level = assessment.findings.first().map_or(Level::Ok, |f| f.level);
    if options.json {
        let report = json_report(
            &gathered,
            &assessment,
            options,
            applied.as_ref(),
            demo_summary.as_ref(),
        );
        println!("{report}");
    } else {
        if let Some(demo) = &demo_summary {
            println!(
                "DEMO      a throwaway namespace (pid {}, net:[{}]) with {} flows built through \
                 the library; {} new UDP flows sent over loopback during the measurement, {} \
                 refused by the kernel. It is removed when doctor exits.",
                demo.pid,
                demo.inode,
                thousands(demo.created),
                thousands(demo.sent + demo.refused),
                thousands(demo.refused)
            );
            println!();
        }
        print!(
            "{}",
            text_report(&gathered, &assessment, options, applied.as_ref())
        );
        if options.apply && assessment.plan.is_none() {
            println!("--apply: nothing to apply");
        }
    }
    drop(demo_guard);
    Ok(level)
}

fn main() -> ExitCode {
    cli::quiet_on_closed_pipe();
    let options = cli::parse::<Args>().options();
    match run(&options) {
        Ok(level) if options.check => ExitCode::from(match level {
            Level::Ok => 0,
            Level::Warn => 1,
            Level::Crit => 2,
        }),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("doctor: {e}");
            ExitCode::from(if options.check { 3 } else { 1 })
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `gc`: delete the flows a filter selects, or the orphaned flows an orphan
//! policy selects, dry run by default.
//!
//! ```text
//! gc [--netns NAME] [--yes] [--json] [--limit N] [--rate PER_SECOND]
//!    [--orphans [--idle SECONDS] [--unreplied SECONDS] [--half-closed SECONDS]
//!               [--include-nat] [--confirmed] [--list]]
//!    [--family ipv4|ipv6] [-p PROTO] [-s CIDR]... [-d CIDR]... [--sport PORT[-PORT]]...
//!    [--dport PORT[-PORT]]... [--state STATE]... [--status BIT]... [--no-status BIT]...
//!    [--mark MARK[/MASK]] [--zone ZONE]
//! ```
//!
//! Without `--yes` nothing is deleted: the report says how many flows match.
//! With `--yes` the library takes the fastest correct path: one kernel-side
//! filtered flush when this kernel evaluates the whole filter itself, else one
//! streaming dump with pipelined deletes. Repeated options of one kind select
//! any of their values (`-s 10.0.0.1 -s 10.0.0.2`). An empty filter is refused.
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
//! the output adds the number of orphans per category. `--list` first prints
//! each orphan (its category, idle estimate and `conntrack -L -o id` line; one
//! more dump). Idle times are estimated from the namespace's timeout sysctls:
//! read the caveats of `OrphanPolicy` before deleting with `--yes`.
//!
//! Every orphan also gets its evidence from the socket table of the namespace
//! (`confirmed`: a local end without a socket; `suspected`: idle by the
//! estimate only, e.g. forwarded; flows with a live socket are never orphans).
//! `--confirmed` selects confirmed orphans only: the safe choice for an
//! unattended `--yes`. Each is looked up again right before its delete.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use conntrack::text::{display, TextOptions};
use conntrack::{
    Cidr, Conntrack, DeleteOptions, DeleteReport, Family, Filter, Netns, OrphanCounts,
    OrphanPolicy, Status, TcpState,
};

const USAGE: &str = "usage: gc [--netns NAME] [--yes] [--json] [--limit N] [--rate N] \
[--orphans [--idle SECONDS] [--unreplied SECONDS] [--half-closed SECONDS] [--include-nat] [--confirmed] [--list]] \
[--family ipv4|ipv6] [-p PROTO] [-s CIDR]... [-d CIDR]... [--sport P[-P]]... [--dport P[-P]]... \
[--state STATE]... [--status BIT]... [--no-status BIT]... [--mark M[/MASK]] [--zone Z]";

/// `PORT` or `LOW-HIGH` (0-65535, LOW <= HIGH), for `option`.
fn ports(option: &str, text: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("{option}: {p:?} is not a port (0-65535) in {text:?}"))
    };
    match text.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (port(lo)?, port(hi)?);
            if lo > hi {
                return Err(format!(
                    "{option}: the range {text:?} is reversed (write {hi}-{lo})"
                ));
            }
            Ok(lo..=hi)
        }
        None => port(text).map(|p| p..=p),
    }
}

struct Options {
    netns: Netns,
    yes: bool,
    json: bool,
    delete: DeleteOptions,
    filter: Filter,
    orphans: Option<Orphans>,
}

/// The orphan options (`--orphans` and the options that refine it).
#[derive(Default)]
struct Orphans {
    /// `--orphans` was given.
    on: bool,
    idle: Option<u64>,
    unreplied: Option<u64>,
    half_closed: Option<u64>,
    include_nat: bool,
    /// `--confirmed`: only orphans proven by the socket table.
    confirmed: bool,
    list: bool,
}

impl Orphans {
    fn policy(&self, filter: Filter) -> OrphanPolicy {
        let mut policy = OrphanPolicy::new()
            .filter(filter)
            .include_nat(self.include_nat)
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

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        netns: Netns::Current,
        yes: false,
        json: false,
        delete: DeleteOptions::default(),
        filter: Filter::new(),
        orphans: None,
    };
    let mut orphans = Orphans::default();
    let mut orphan_option = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        let bad = |what: &str, v: &str| format!("{what}: cannot parse {v:?}");
        let f = std::mem::take(&mut o.filter);
        o.filter = match arg.as_str() {
            "--help" | "-h" => return Err(String::new()),
            "--netns" => {
                let v = value("--netns")?;
                o.netns = v.parse().map_err(|e| format!("--netns: {e}"))?;
                f
            }
            "--yes" => {
                o.yes = true;
                f
            }
            "--json" => {
                o.json = true;
                f
            }
            "--orphans" => {
                orphans.on = true;
                f
            }
            "--idle" | "--unreplied" | "--half-closed" => {
                let v = value(arg)?;
                let seconds = Some(v.parse().map_err(|_| bad(arg, &v))?);
                match arg.as_str() {
                    "--idle" => orphans.idle = seconds,
                    "--unreplied" => orphans.unreplied = seconds,
                    _ => orphans.half_closed = seconds,
                }
                orphan_option = Some(arg.clone());
                f
            }
            "--include-nat" => {
                orphans.include_nat = true;
                orphan_option = Some(arg.clone());
                f
            }
            "--confirmed" => {
                orphans.confirmed = true;
                orphan_option = Some(arg.clone());
                f
            }
            "--list" => {
                orphans.list = true;
                orphan_option = Some(arg.clone());
                f
            }
            "--limit" => {
                let v = value("--limit")?;
                o.delete.limit = Some(v.parse().map_err(|_| bad("--limit", &v))?);
                f
            }
            "--rate" => {
                let v = value("--rate")?;
                let rate = v.parse().ok().filter(|&r: &u32| r > 0).ok_or_else(|| {
                    format!("--rate: {v:?} is not a number of deletes per second (1-4294967295)")
                })?;
                o.delete.rate = Some(rate);
                f
            }
            "--family" => match value("--family")?.as_str() {
                "ipv4" => f.family(Family::Ipv4),
                "ipv6" => f.family(Family::Ipv6),
                v => return Err(format!("--family: unknown family {v:?} (ipv4 or ipv6)")),
            },
            "-p" | "--proto" => {
                let v = value(arg)?;
                f.protocol(conntrack::proto::parse_named(arg, &v).map_err(|e| e.to_string())?)
            }
            "-s" | "--src" => f.src(cidr(arg, &value(arg)?)?),
            "-d" | "--dst" => f.dst(cidr(arg, &value(arg)?)?),
            "--sport" => f.src_ports(ports("--sport", &value("--sport")?)?),
            "--dport" => f.dst_ports(ports("--dport", &value("--dport")?)?),
            "--state" => f.tcp_state(
                TcpState::parse_named("--state", &value("--state")?).map_err(|e| e.to_string())?,
            ),
            "--status" => f.status(
                Status::parse_named("--status", &value("--status")?).map_err(|e| e.to_string())?,
            ),
            "--no-status" => f.status_unset(
                Status::parse_named("--no-status", &value("--no-status")?)
                    .map_err(|e| e.to_string())?,
            ),
            "--mark" => {
                let v = value("--mark")?;
                let (mark, mask) = match v.split_once('/') {
                    Some((m, k)) => (parse_u32(m), parse_u32(k)),
                    None => (parse_u32(&v), Some(u32::MAX)),
                };
                let (Some(mark), Some(mask)) = (mark, mask) else {
                    return Err(format!(
                        "--mark: {v:?} is not MARK or MARK/MASK (numbers 0-0xffffffff, decimal or 0x hex)"
                    ));
                };
                f.mark_masked(mark, mask)
            }
            "--zone" => {
                let v = value("--zone")?;
                f.zone(
                    v.parse()
                        .map_err(|_| format!("--zone: {v:?} is not a zone (0-65535)"))?,
                )
            }
            other => return Err(format!("unknown argument {other:?}")),
        };
    }
    // A filter that can match nothing is a mistake in the options: say which.
    o.filter.validate().map_err(|e| match e {
        conntrack::Error::InvalidInput(text) => text,
        other => other.to_string(),
    })?;
    o.delete.dry_run = !o.yes;
    if orphans.on {
        o.orphans = Some(orphans);
    } else if let Some(option) = orphan_option {
        return Err(format!("{option} needs --orphans"));
    }
    Ok(o)
}

/// An address or network for `option`.
fn cidr(option: &str, text: &str) -> Result<Cidr, String> {
    text.parse::<Cidr>().map_err(|_| {
        format!("{option}: {text:?} is not an address or network (e.g. 10.0.0.1, 10.0.0.0/8, 2001:db8::/32)")
    })
}

fn parse_u32(text: &str) -> Option<u32> {
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("gc: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let netns = options.netns.clone();
    let started = Instant::now();
    let result = Conntrack::open_in(&netns).and_then(|mut ct| match &options.orphans {
        None => ct
            .delete_matching(&options.filter, options.delete)
            .map(|report| (report, None)),
        Some(orphans) => {
            let policy = orphans.policy(options.filter.clone());
            if orphans.list {
                list_orphans(&mut ct, &policy, options.json)?;
            }
            ct.delete_orphans_counted(&policy, options.delete)
                .map(|(report, counts)| (report, Some(counts)))
        }
    });
    let (report, counts) = match result {
        Ok(done) => done,
        Err(e) => {
            eprintln!("gc: {e}");
            return ExitCode::FAILURE;
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if options.json {
        print_json(&options, &report, counts.as_ref(), seconds);
    } else {
        if let Some(counts) = &counts {
            let per_category: Vec<String> = counts
                .iter()
                .map(|(category, n)| format!("{category}={n}"))
                .collect();
            println!(
                "orphans: {} unestimated={} candidates={} confirmed={} suspected={} alive={}",
                per_category.join(" "),
                counts.unestimated,
                counts.candidates,
                counts.confirmed,
                counts.suspected,
                counts.alive
            );
        }
        println!(
            "path={:?} matched={} deleted={} already_gone={} failed={} seconds={seconds:.3}{}",
            report.path,
            report.matched,
            report.deleted,
            report.already_gone,
            report.failed_total(),
            if options.delete.dry_run {
                " (dry run: add --yes to delete)"
            } else {
                ""
            }
        );
    }
    ExitCode::SUCCESS
}

/// Prints every orphan: text lines, or one JSON object per line with `--json`.
fn list_orphans(ct: &mut Conntrack, policy: &OrphanPolicy, json: bool) -> conntrack::Result<()> {
    let seconds = |d: Option<Duration>| d.map_or("null".to_owned(), |d| d.as_secs().to_string());
    for orphan in ct.orphans(policy)? {
        let line = display(&orphan.flow, TextOptions::EXTENDED_ID).to_string();
        if json {
            println!(
                "{{\"orphan\":\"{}\",\"evidence\":\"{}\",\"idle\":{},\"age\":{},\"flow\":\"{}\"}}",
                orphan.category,
                orphan.evidence,
                seconds(orphan.idle),
                seconds(orphan.age),
                json_escape(&line)
            );
        } else {
            println!(
                "{:<21} {:<9} idle={}s {line}",
                orphan.category,
                orphan.evidence,
                seconds(orphan.idle)
            );
        }
    }
    Ok(())
}

fn print_json(
    options: &Options,
    report: &DeleteReport,
    counts: Option<&OrphanCounts>,
    seconds: f64,
) {
    let failed: Vec<String> = report
        .failed
        .iter()
        .map(|(errno, n)| format!("\"{errno}\":{n}"))
        .collect();
    let orphans = counts.map_or(String::new(), |counts| {
        let per_category: Vec<String> = counts
            .iter()
            .map(|(category, n)| format!("\"{category}\":{n}"))
            .collect();
        format!(
            ",\"orphans\":{{{},\"unestimated\":{},\"candidates\":{},\"confirmed\":{},\"suspected\":{},\"alive\":{}}}",
            per_category.join(","),
            counts.unestimated,
            counts.candidates,
            counts.confirmed,
            counts.suspected,
            counts.alive
        )
    });
    println!(
        "{{\"path\":\"{:?}\",\"dry_run\":{},\"matched\":{},\"deleted\":{},\"already_gone\":{},\"failed\":{{{}}},\"kernel_prefiltered\":{}{orphans},\"seconds\":{seconds:.6}}}",
        report.path,
        options.delete.dry_run,
        report.matched,
        report.deleted,
        report.already_gone,
        failed.join(","),
        report.kernel_prefiltered,
    );
}

/// Escapes a string for a JSON string literal.
fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

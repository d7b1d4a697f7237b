// SPDX-License-Identifier: MIT OR Apache-2.0
//! `exporter`: Prometheus metrics of conntrack tables over HTTP.
//!
//! ```text
//! exporter [--listen ADDR:PORT] [--netns NAME|PATH|PID]... [--all-namespaces]
//!          [--top N] [--breakdown-interval SECONDS] [--no-orphans]
//! ```
//!
//! Serves `GET /metrics` (OpenMetrics text) on `127.0.0.1:9466` by default:
//! loopback only, since the metrics name the addresses of the busiest
//! sources. Put it behind a proxy or pass `--listen 0.0.0.0:9466` to expose
//! it. Each `--netns` adds a namespace (by `ip netns` name, namespace file or
//! pid; the default is the exporter's own), every metric but the global ones
//! carries a `netns` label. `--all-namespaces` follows every network namespace
//! of the host as they come and go (named ones and those of running processes,
//! looked up at each scrape; labelled with their `ip netns` name, `host` for
//! the initial one, else `net:[INODE]`). Prints `listening on http://ADDR/metrics` once
//! bound (`--listen 127.0.0.1:0` picks a free port). Needs `CAP_NET_ADMIN`
//! (and `CAP_SYS_ADMIN` for other namespaces).
//!
//! # Metrics (prefix `conntrack_`)
//! Read at every scrape (one `GET_STATS` and one `GET_STATS_CPU` round trip
//! per namespace, microseconds whatever the table size):
//! - `entries`, `entries_limit` (gauges): `nf_conntrack_count` and `nf_conntrack_max`.
//! - `buckets` (gauge, no label): the hash table size, shared by the host.
//! - `<counter>_total` (counters): every per-CPU kernel counter the kernel
//!   reports, summed: `drop`, `early_drop`, `insert_failed`, `invalid`,
//!   `clash_resolve`, `chaintoolong`, `search_restart`, ... The kernel keeps
//!   32-bit counters per CPU; the exporter accumulates wrap-aware deltas so the
//!   exported counters only go up.
//! - `up` (gauge): 1 when the namespace could be read at this scrape.
//!
//! From one streaming dump per namespace, redone at most every
//! `--breakdown-interval` seconds (30; cached in between, so scrapes stay cheap
//! on tables of millions):
//! - `flows{protocol}`, `tcp_flows{state}` (gauges).
//! - `orphan_flows{category}` (gauge): `idle_established`, `long_unreplied`,
//!   `lingering_half_closed` (the default `OrphanPolicy`; `--no-orphans` skips it).
//! - With `--top N` (off by default: addresses make many series),
//!   `top_source_flows{address}` and `top_destination_port_flows{protocol,port}`,
//!   the N largest plus one `other` series each: at most N + 1 series per namespace.
//! - `breakdown_age_seconds`, `breakdown_duration_seconds` (gauges): how old the
//!   breakdown is and what its dump cost.
//!
//! The exporter's own cost: `exporter_scrape_duration_seconds` (gauge, this scrape
//! until encoding), `exporter_scrape_errors_total{netns}` (counter).
//!
//! `examples/conntrack-alerts.yml` has alert rules for "table nearly full" and
//! "drops rising" built on these metrics.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use conntrack::netns::{list_all, NetnsId};
use conntrack::sysctl::{Counter, KernelStatsDelta, Key, Sysctl};
use conntrack::{
    Census, Conntrack, GroupBy, GroupCounts, GroupValue, Grouping, KernelStats, Netns, OrphanPolicy,
};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[path = "support/cli.rs"]
mod cli;

use cli::{parse_netns, protocol_name};

const USAGE: &str = "usage: exporter [--listen ADDR:PORT] [--netns NAME|PATH|PID]... \
[--all-namespaces] [--top N] \
[--breakdown-interval SECONDS] [--no-orphans]";

/// Largest request head accepted.
const MAX_REQUEST: usize = 8192;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

struct Options {
    listen: String,
    namespaces: Vec<Netns>,
    all_namespaces: bool,
    top: usize,
    breakdown_interval: Duration,
    orphans: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        listen: "127.0.0.1:9466".into(),
        namespaces: Vec::new(),
        all_namespaces: false,
        top: 0,
        breakdown_interval: Duration::from_secs(30),
        orphans: true,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| cli::next_value(&mut it, name);
        match arg.as_str() {
            "--listen" => o.listen = value("--listen")?,
            "--netns" => o.namespaces.push(parse_netns(&value("--netns")?)?),
            "--all-namespaces" => o.all_namespaces = true,
            "--top" => {
                let v = value("--top")?;
                o.top = v.parse().map_err(|_| format!("--top: invalid {v:?}"))?;
            }
            "--breakdown-interval" => {
                let v = value("--breakdown-interval")?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| (0.0..=86_400.0).contains(s))
                    .ok_or_else(|| format!("--breakdown-interval: invalid {v:?}"))?;
                o.breakdown_interval = Duration::from_secs_f64(secs);
            }
            "--no-orphans" => o.orphans = false,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.namespaces.is_empty() && !o.all_namespaces {
        o.namespaces.push(Netns::Current);
    }
    Ok(o)
}

// ---------------------------------------------------------------------------
// What the exporter remembers between scrapes

struct Breakdown {
    at: Instant,
    census: Census,
}

/// One namespace: its handle, the accumulated counters, the cached breakdown.
struct Target {
    label: String,
    netns: Netns,
    /// The namespace's identity, for targets found by `--all-namespaces`.
    id: Option<NetnsId>,
    /// The identity of the namespace the handle and counters belong to.
    opened: Option<NetnsId>,
    ct: Option<Conntrack>,
    last: Option<KernelStats>,
    totals: BTreeMap<Counter, u64>,
    breakdown: Option<Breakdown>,
    errors: u64,
}

/// One scrape's reading of a namespace.
struct Reading {
    entries: u64,
    limit: u64,
}

impl Target {
    fn new(netns: Netns) -> Self {
        Target {
            label: netns.label(),
            netns,
            id: None,
            opened: None,
            ct: None,
            last: None,
            totals: BTreeMap::new(),
            breakdown: None,
            errors: 0,
        }
    }

    /// Reads the cheap numbers, refreshes the breakdown when it is stale.
    fn read(&mut self, options: &Options) -> conntrack::Result<Reading> {
        // A namespace deleted and re-created under the same name or path is
        // another table: our socket would keep the old one alive and read it.
        if let Some(path) = self.netns.path()? {
            let id = NetnsId::of_path(path)?;
            if self.opened.is_some_and(|opened| opened != id) {
                self.ct = None;
                self.last = None;
                self.totals.clear();
                self.breakdown = None;
            }
            self.opened = Some(id);
        }
        let ct = match &mut self.ct {
            Some(ct) => ct,
            slot => slot.insert(Conntrack::open_in(&self.netns)?),
        };
        let stats = ct.table_stats()?;
        let kernel = ct.kernel_stats()?;
        match &self.last {
            // Wrap-aware per-CPU deltas keep the exported counters monotonic.
            Some(last) => {
                for (counter, delta) in KernelStatsDelta::between(last, &kernel).iter() {
                    *self.totals.entry(counter).or_insert(0) += delta;
                }
            }
            None => {
                for counter in Counter::ALL {
                    if let Some(value) = counter.get(&kernel.total) {
                        self.totals.insert(*counter, value);
                    }
                }
            }
        }
        self.last = Some(kernel);
        let stale = match &self.breakdown {
            None => true,
            Some(b) => b.at.elapsed() >= options.breakdown_interval,
        };
        if stale {
            let policy = OrphanPolicy::new();
            let top = options.top.max(1);
            let census = ct.census(
                &[
                    Grouping::new(&[GroupBy::Protocol], usize::MAX),
                    Grouping::new(&[GroupBy::TcpState], usize::MAX),
                    Grouping::new(&[GroupBy::Source], top),
                    Grouping::new(&[GroupBy::Protocol, GroupBy::DestinationPort], top),
                ],
                options.orphans.then_some(&policy),
            )?;
            self.breakdown = Some(Breakdown {
                at: Instant::now(),
                census,
            });
        }
        Ok(Reading {
            entries: stats.entries.into(),
            limit: stats.max_entries.unwrap_or(0).into(),
        })
    }
}

// ---------------------------------------------------------------------------
// Metrics

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn gauge_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    registry.register(name, help, family.clone());
    family
}

fn float_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, FloatGauge> {
    let family = Family::<Labels, FloatGauge>::default();
    registry.register(name, help, family.clone());
    family
}

/// Sets one gauge per group plus an `other` series (when `top` cut anything).
fn set_top(
    family: &Family<Labels, Gauge>,
    netns: &str,
    counts: &GroupCounts,
    key: impl Fn(&[GroupValue]) -> Vec<(&'static str, String)>,
    other: &[(&str, &str)],
) {
    for (group, flows) in &counts.groups {
        let mut l = labels(&[("netns", netns)]);
        l.extend(key(group).into_iter().map(|(k, v)| (k.to_owned(), v)));
        family.get_or_create(&l).set(*flows as i64);
    }
    let mut l = labels(&[("netns", netns)]);
    l.extend(labels(other));
    family.get_or_create(&l).set(counts.other as i64);
}

/// `--all-namespaces`: adds the namespaces that appeared, drops those that are gone.
fn discover(targets: &mut Vec<Target>) {
    let entries = match list_all() {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("exporter: listing namespaces: {e}");
            return;
        }
    };
    targets.retain(|t| match t.id {
        Some(id) => entries.iter().any(|e| e.id == id),
        None => true,
    });
    for entry in entries {
        match targets.iter_mut().find(|t| t.id == Some(entry.id)) {
            // A namespace found by pid may be held by another process now.
            Some(target) => target.netns = entry.netns,
            None => {
                let label = match entry.names.first() {
                    Some(name) => name.clone(),
                    None if entry.initial => "host".to_owned(),
                    None => format!("net:[{}]", entry.id.inode),
                };
                let mut target = Target::new(entry.netns);
                target.label = label;
                target.id = Some(entry.id);
                targets.push(target);
            }
        }
    }
}

/// Reads every namespace and encodes the exposition.
fn scrape(targets: &mut Vec<Target>, options: &Options) -> String {
    let started = Instant::now();
    if options.all_namespaces {
        discover(targets);
    }
    let mut registry = Registry::with_prefix("conntrack");
    let up = gauge_family(
        &mut registry,
        "up",
        "1 when the namespace's table could be read at this scrape",
    );
    let entries = gauge_family(
        &mut registry,
        "entries",
        "Entries in the table (nf_conntrack_count)",
    );
    let limit = gauge_family(
        &mut registry,
        "entries_limit",
        "Entries allowed per namespace (nf_conntrack_max, one value for the host)",
    );
    let errors = Family::<Labels, PromCounter>::default();
    registry.register(
        "exporter_scrape_errors",
        "Namespaces that could not be read, per scrape",
        errors.clone(),
    );
    let mut kernel: BTreeMap<Counter, Family<Labels, PromCounter>> = BTreeMap::new();
    for counter in Counter::ALL {
        let family = Family::<Labels, PromCounter>::default();
        registry.register(
            counter.name(),
            format!("Kernel conntrack statistic: {}", counter.meaning()),
            family.clone(),
        );
        kernel.insert(*counter, family);
    }
    let flows = gauge_family(
        &mut registry,
        "flows",
        "Flows by layer-4 protocol (breakdown)",
    );
    let tcp = gauge_family(&mut registry, "tcp_flows", "TCP flows by state (breakdown)");
    let orphans = gauge_family(
        &mut registry,
        "orphan_flows",
        "Orphaned flows by category (breakdown, default OrphanPolicy)",
    );
    let (sources, ports) = if options.top > 0 {
        (
            Some(gauge_family(
                &mut registry,
                "top_source_flows",
                "Flows of the busiest sources, plus address=\"other\" (breakdown)",
            )),
            Some(gauge_family(
                &mut registry,
                "top_destination_port_flows",
                "Flows of the busiest destination ports, plus port=\"other\" (breakdown)",
            )),
        )
    } else {
        (None, None)
    };
    let age = float_family(
        &mut registry,
        "breakdown_age_seconds",
        "Age of the cached breakdown (one dump every --breakdown-interval)",
    );
    let cost = float_family(
        &mut registry,
        "breakdown_duration_seconds",
        "Time the breakdown's dump took",
    );

    for target in targets.iter_mut() {
        let netns = target.label.clone();
        let ns = labels(&[("netns", &netns)]);
        match target.read(options) {
            Ok(reading) => {
                up.get_or_create(&ns).set(1);
                entries.get_or_create(&ns).set(reading.entries as i64);
                limit.get_or_create(&ns).set(reading.limit as i64);
            }
            Err(e) => {
                eprintln!("exporter: namespace {netns}: {e}");
                target.errors += 1;
                target.ct = None;
                // Counters restart from the kernel's totals when it is back.
                target.last = None;
                up.get_or_create(&ns).set(0);
            }
        }
        errors.get_or_create(&ns).inc_by(target.errors);
        for (counter, total) in &target.totals {
            kernel[counter].get_or_create(&ns).inc_by(*total);
        }
        let Some(breakdown) = &target.breakdown else {
            continue;
        };
        let census = &breakdown.census;
        for (key, n) in &census.groups[0].groups {
            let l = labels(&[("netns", &netns), ("protocol", &protocol_name(&key[0]))]);
            flows.get_or_create(&l).set(*n as i64);
        }
        for (key, n) in &census.groups[1].groups {
            if let GroupValue::TcpState(state) = key[0] {
                let l = labels(&[("netns", &netns), ("state", state.name())]);
                tcp.get_or_create(&l).set(*n as i64);
            }
        }
        if let Some(counts) = &census.orphans {
            for (category, n) in counts.iter() {
                let l = labels(&[("netns", &netns), ("category", category.name())]);
                orphans.get_or_create(&l).set(n as i64);
            }
        }
        if let (Some(sources), Some(ports)) = (&sources, &ports) {
            set_top(
                sources,
                &netns,
                &census.groups[2],
                |k| vec![("address", k[0].to_string())],
                &[("address", "other")],
            );
            set_top(
                ports,
                &netns,
                &census.groups[3],
                |k| {
                    vec![
                        ("protocol", protocol_name(&k[0])),
                        ("port", k[1].to_string()),
                    ]
                },
                &[("protocol", "other"), ("port", "other")],
            );
        }
        age.get_or_create(&ns)
            .set(breakdown.at.elapsed().as_secs_f64());
        cost.get_or_create(&ns).set(census.elapsed.as_secs_f64());
    }

    // Global: the hash table is one for the host.
    if let Ok(buckets) = Sysctl::new().read(Key::Buckets) {
        let gauge = Gauge::<i64>::default();
        gauge.set(buckets as i64);
        registry.register("buckets", "Hash table buckets (shared by the host)", gauge);
    }
    let duration = FloatGauge::default();
    duration.set(started.elapsed().as_secs_f64());
    registry.register(
        "exporter_scrape_duration_seconds",
        "Time this scrape took to read every namespace",
        duration,
    );
    let mut body = String::new();
    encode(&mut body, &registry).expect("encoding into a String cannot fail");
    body
}

// ---------------------------------------------------------------------------
// HTTP

fn respond(stream: &mut TcpStream, status: &str, extra: &str, content_type: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

/// Reads the request head (up to [`MAX_REQUEST`] bytes); `None` if malformed.
fn request_line(stream: &TcpStream) -> Option<(String, String)> {
    let mut reader = BufReader::new(Read::take(stream, MAX_REQUEST as u64 + 1));
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let mut total = first.len();
    // Drain the headers (bounded).
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).ok()?;
        total += n;
        if n == 0 || total > MAX_REQUEST {
            return None;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = first.split_whitespace();
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return None;
    }
    Some((method.to_owned(), target.to_owned()))
}

fn handle(mut stream: TcpStream, targets: &mut Vec<Target>, options: &Options) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let Some((method, target)) = request_line(&stream) else {
        respond(
            &mut stream,
            "400 Bad Request",
            "",
            "text/plain",
            "bad request\n",
        );
        // Closing with unread input would reset the connection and could lose
        // the answer: end our side, then drain (bounded by size and timeout).
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = std::io::copy(&mut Read::take(&stream, 1 << 20), &mut std::io::sink());
        return;
    };
    let path = target.split('?').next().unwrap_or("");
    match (path, method.as_str()) {
        ("/metrics", "GET" | "HEAD") => {
            let body = scrape(targets, options);
            let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
            if method == "HEAD" {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
            } else {
                respond(&mut stream, "200 OK", "", content_type, &body);
            }
        }
        ("/", "GET" | "HEAD") => respond(
            &mut stream,
            "200 OK",
            "",
            "text/html; charset=utf-8",
            "<html><body><a href=\"/metrics\">conntrack metrics</a></body></html>\n",
        ),
        ("/metrics" | "/", _) => respond(
            &mut stream,
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n",
            "text/plain",
            "method not allowed\n",
        ),
        _ => respond(
            &mut stream,
            "404 Not Found",
            "",
            "text/plain",
            "not found\n",
        ),
    }
}

fn run(options: Options) -> Result<(), String> {
    let listener =
        TcpListener::bind(&options.listen).map_err(|e| format!("bind {}: {e}", options.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let mut targets: Vec<Target> = options
        .namespaces
        .iter()
        .cloned()
        .map(Target::new)
        .collect();
    println!("listening on http://{address}/metrics");
    let _ = std::io::stdout().flush();
    // One request at a time: scrapes are rare, and the namespaces' handles are
    // not shared between threads.
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => handle(stream, &mut targets, &options),
            Err(e) => eprintln!("exporter: accept: {e}"),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match cli::parse_args("exporter", USAGE, parse) {
        Ok(options) => options,
        Err(code) => return code,
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("exporter: {e}");
            ExitCode::FAILURE
        }
    }
}

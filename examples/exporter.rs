// SPDX-License-Identifier: MIT OR Apache-2.0
//! `exporter`: Prometheus metrics of conntrack tables over HTTP.
//!
//! ```text
//! exporter [--listen ADDR:PORT] [--netns NAME|PATH|PID]...
//!          [--all-namespaces [--discovery-interval SECONDS]]
//!          [--top N] [--breakdown-interval SECONDS] [--breakdown-budget PERCENT]
//!          [--no-orphans] [--request-timeout SECONDS] [--max-connections N]
//! ```
//!
//! Serves `GET /metrics` on `127.0.0.1:9466` by default: loopback only, since
//! the metrics name the addresses of the busiest sources. Put it behind a
//! proxy or pass `--listen 0.0.0.0:9466` to expose it. Each `--netns` adds a
//! namespace (by `ip netns` name, namespace file or pid; the default is the
//! exporter's own); every metric but the global ones carries a `netns` label.
//! `--all-namespaces` follows every network namespace of the host as they come
//! and go (named ones and those of running processes; labelled with their
//! `ip netns` name, `host` for the initial one, else `net:[INODE]`). A
//! background thread looks for them every `--discovery-interval` seconds (10;
//! a scan of /proc, then a handle opened in each new namespace): scrapes never
//! wait for it, they read the namespaces found so far. A namespace that went
//! away is no longer exported from the next scrape on (each scrape checks
//! that one of its paths still leads to it, a few `stat`s); one that appeared
//! is exported after the next discovery. A namespace given twice (by two spellings, or by `--netns`
//! and `--all-namespaces`) is exported once, under its first label: namespaces
//! are told apart by inode, so counters are never doubled. Prints
//! `listening on http://ADDR/metrics` once bound (`--listen 127.0.0.1:0` picks
//! a free port; a closed stdout drops the line, the exporter serves on).
//! `--listen` takes an IP address and a port, no host name. Needs
//! `CAP_NET_ADMIN` (and `CAP_SYS_ADMIN` for other namespaces). Exit status 2
//! for a usage error, 1 when it cannot start (e.g. the address is taken).
//!
//! # HTTP
//! hyper 1 on a small tokio runtime: connections are served concurrently, each
//! one answers one request (`Connection: close`) and is cut at
//! `--request-timeout` (5 s) from its accept, headers included, so a client
//! that trickles its request (slowloris) or sends nothing holds one connection
//! slot for that long and never delays another scrape. At most
//! `--max-connections` (64) are open at once; past that, new connections are
//! closed at once. The format follows the `Accept` header: OpenMetrics 1.0.0
//! (`application/openmetrics-text; version=1.0.0`) when the client prefers it,
//! else the Prometheus text format 0.0.4 (also when there is no `Accept`).
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
//! From one streaming dump per namespace (the breakdown), made by a background
//! thread, never by a scrape: one namespace at a time, oldest first, each at
//! most every `--breakdown-interval` seconds (30), and pacing itself so that
//! dumps take at most `--breakdown-budget` percent (25) of the wall time. A
//! namespace whose O(1) count says its table is empty is not dumped (every dump
//! walks the host's one hash table, even for an empty namespace). Scrapes show
//! the latest breakdown:
//! - `flows{protocol}`, `tcp_flows{state}` (gauges).
//! - `orphan_flows{category}` (gauge): `idle_established`, `long_unreplied`,
//!   `lingering_half_closed` (the default `OrphanPolicy`; `--no-orphans` skips it).
//! - `orphan_evidence_flows{evidence}` (gauge): the same orphans by what the
//!   namespace's socket table says: `confirmed` (a local end without a
//!   socket: certainly dead) and `suspected` (idle by the estimate only, e.g.
//!   forwarded flows).
//! - With `--top N` (off by default: addresses make many series),
//!   `top_source_flows{address}` and `top_destination_port_flows{protocol,port}`,
//!   the N largest plus one `other` series each: at most N + 1 series per namespace.
//! - `breakdown_age_seconds` (gauge): how old the breakdown is (it grows while
//!   dumps fail or fall behind), `breakdown_duration_seconds`: what it cost
//!   (for an empty table, the O(1) count alone), `breakdown_dumps_total`
//!   (counter): the dumps made (an empty table's breakdown is not one).
//!
//! The exporter itself: `exporter_build_info{version}` (always 1),
//! `exporter_scrape_duration_seconds` (gauge: the kernel reads of this scrape),
//! `exporter_scrape_errors_total{netns}` (counter),
//! `exporter_breakdown_seconds_total` (counter: the background thread's time
//! on breakdowns, what `--breakdown-budget` bounds), with `--all-namespaces`
//! `exporter_discovery_age_seconds` and `exporter_discovery_duration_seconds`
//! (gauges: since the latest discovery, and what it took), and the usual
//! `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds` from `/proc/self`.
//!
//! `examples/conntrack-alerts.yml` has alert rules built on these metrics,
//! `examples/kubernetes/` a DaemonSet and a Grafana dashboard.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clap::Parser;
use conntrack::netns::{list_all, NetnsEntry, NetnsFile, NetnsId};
use conntrack::sysctl::{Counter, KernelStatsDelta, Key, Sysctl};
use conntrack::{
    Conntrack, GroupBy, GroupCounts, GroupValue, Grouping, KernelStats, Netns, OrphanCategory,
    OrphanPolicy,
};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

#[path = "support/cli.rs"]
mod cli;

/// A line on stderr, dropped if stderr is closed (never a panic in a
/// background thread or a scrape).
macro_rules! log {
    ($($t:tt)*) => { cli::log_line(format_args!($($t)*)) };
}

use cli::protocol_name;

/// Largest request head accepted (hyper's minimum buffer); larger gets 431.
const MAX_REQUEST_HEAD: usize = 8192;

/// A namespace is re-dumped at most this often, even with `--breakdown-interval 0`.
const MIN_BREAKDOWN_PERIOD: Duration = Duration::from_millis(100);

/// Namespaces are looked for at most this often, even when scrapes ask.
const MIN_DISCOVERY_PERIOD: Duration = Duration::from_millis(100);

/// Prometheus metrics of conntrack tables over HTTP.
#[derive(Parser, Debug)]
#[command(name = "exporter", version, about, long_about = None)]
struct Options {
    /// Address and port to listen on, e.g. 127.0.0.1:9466, [::1]:9466,
    /// 0.0.0.0:9466 (loopback by default: the metrics can name addresses;
    /// port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9466", value_parser = listen_arg)]
    listen: SocketAddr,
    /// A network namespace to export: `ip netns` name, namespace file path, or pid.
    /// Repeatable; the default is the exporter's own namespace.
    #[arg(long = "netns", value_name = "NAME|PATH|PID", value_parser = cli::parse_netns)]
    namespaces: Vec<Netns>,
    /// Export every network namespace of the host, following them as they come and go.
    #[arg(long)]
    all_namespaces: bool,
    /// With --all-namespaces: look for namespaces that came or went this
    /// often, in the background (scrapes never wait for it).
    #[arg(long, value_name = "SECONDS", default_value = "10", requires = "all_namespaces",
          allow_negative_numbers = true, value_parser = discovery_interval_arg)]
    discovery_interval: Duration,
    /// Export the N busiest sources and destination ports per namespace (plus `other`).
    #[arg(long, value_name = "N", default_value_t = 0, allow_negative_numbers = true, value_parser = clap::value_parser!(u16))]
    top: u16,
    /// Re-dump each namespace's breakdown at most this often.
    #[arg(long, value_name = "SECONDS", default_value = "30", allow_negative_numbers = true, value_parser = seconds_arg)]
    breakdown_interval: Duration,
    /// Spend at most this percentage of wall time dumping breakdowns.
    #[arg(long, value_name = "PERCENT", default_value_t = 25.0, allow_negative_numbers = true, value_parser = percent_arg)]
    breakdown_budget: f64,
    /// Do not classify orphaned flows in the breakdown.
    #[arg(long)]
    no_orphans: bool,
    /// Cut a connection this long after accepting it, whatever it is doing.
    #[arg(long, value_name = "SECONDS", default_value = "5", allow_negative_numbers = true, value_parser = seconds_arg)]
    request_timeout: Duration,
    /// Serve at most this many connections at once (new ones are closed at once).
    #[arg(long, value_name = "N", default_value_t = 64, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_connections: u32,
}

/// `--listen`: an IP address and a port (no host name: the exporter binds
/// exactly the address it is given). An IPv6 address may also come without
/// brackets, the last `:PORT` being the port (`fd00::1:9466`), as a pod's
/// `$(NODE_IP):9466` reads in an IPv6 cluster.
fn listen_arg(text: &str) -> Result<SocketAddr, String> {
    let unbracketed = || {
        let (address, port) = text.rsplit_once(':')?;
        let address = address.parse::<std::net::Ipv6Addr>().ok()?;
        Some(SocketAddr::from((address, port.parse::<u16>().ok()?)))
    };
    text.parse::<SocketAddr>()
        .ok()
        .or_else(unbracketed)
        .ok_or_else(|| {
            format!(
                "{text:?} is not an address and port (e.g. 127.0.0.1:9466, [::1]:9466, 0.0.0.0:9466)"
            )
        })
}

fn seconds_arg(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| (0.0..=86_400.0).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{text:?} is not a number of seconds from 0 to 86400"))
}

/// `--discovery-interval`: 0.1 s (a scan of /proc ten times a second) to a day.
fn discovery_interval_arg(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| (0.1..=86_400.0).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{text:?} is not a number of seconds from 0.1 to 86400"))
}

fn percent_arg(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|p| *p > 0.0 && *p <= 100.0)
        .ok_or_else(|| format!("{text:?} is not a percentage above 0 and at most 100"))
}

// ---------------------------------------------------------------------------
// Exposition: one model, two text formats

/// The two formats a scraper can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format an `Accept` header prefers: OpenMetrics when it names it
    /// with a higher or equal quality than the text format, else text (also
    /// for a missing or unreadable header, or one that accepts neither).
    fn negotiate(accept: Option<&HeaderValue>) -> Format {
        let Some(accept) = accept.and_then(|a| a.to_str().ok()) else {
            return Format::Text;
        };
        let (mut openmetrics, mut text) = (0.0f64, 0.0f64);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let (mut quality, mut version) = (1.0f64, None);
            for parameter in parts {
                let Some((name, value)) = parameter.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"');
                match name.trim().to_ascii_lowercase().as_str() {
                    "q" => {
                        quality = value
                            .parse()
                            .ok()
                            .filter(|q| (0.0..=1.0).contains(q))
                            .unwrap_or(0.0)
                    }
                    "version" => version = Some(value.to_owned()),
                    _ => {}
                }
            }
            match media.as_str() {
                "application/openmetrics-text"
                    if matches!(version.as_deref(), None | Some("1.0.0")) =>
                {
                    openmetrics = openmetrics.max(quality)
                }
                "text/plain" if matches!(version.as_deref(), None | Some("0.0.4")) => {
                    text = text.max(quality)
                }
                "text/*" | "*/*" => text = text.max(quality),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
    /// OpenMetrics `info` (a gauge named `..._info` in the text format).
    Info,
}

#[derive(Debug, Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

#[derive(Debug)]
struct Sample {
    labels: Vec<(&'static str, String)>,
    value: Value,
}

/// One metric family: `name` without the `_total`/`_info` suffix of its samples.
#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<Sample>,
}

impl Family {
    fn new(name: impl Into<String>, kind: Kind, help: impl Into<String>) -> Self {
        Family {
            name: name.into(),
            help: help.into(),
            kind,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: &[(&'static str, &str)], value: Value) {
        self.samples.push(Sample {
            labels: labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            value,
        });
    }

    fn int(&mut self, labels: &[(&'static str, &str)], value: u64) {
        self.add(labels, Value::Int(value));
    }

    fn float(&mut self, labels: &[(&'static str, &str)], value: f64) {
        self.add(labels, Value::Float(value));
    }

    fn sample_name(&self) -> String {
        match self.kind {
            Kind::Gauge => self.name.clone(),
            Kind::Counter => format!("{}_total", self.name),
            Kind::Info => format!("{}_info", self.name),
        }
    }
}

fn escape_label(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(help: &str, format: Format, out: &mut String) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            // Only OpenMetrics escapes quotes in HELP (0.0.4 would print the backslash).
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn write_value(value: Value, out: &mut String) {
    match value {
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(x) if x.is_nan() => out.push_str("NaN"),
        Value::Float(x) if x.is_infinite() => out.push_str(if x > 0.0 { "+Inf" } else { "-Inf" }),
        Value::Float(x) => {
            let _ = write!(out, "{x:?}");
        }
    }
}

/// Encodes `families` (skipping empty ones) in `format`.
fn encode(families: &[Family], format: Format) -> String {
    let mut out = String::with_capacity(64 * 1024);
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        let sample_name = family.sample_name();
        let (described, kind) = match (format, family.kind) {
            (Format::OpenMetrics, Kind::Gauge) => (&family.name, "gauge"),
            (Format::OpenMetrics, Kind::Counter) => (&family.name, "counter"),
            (Format::OpenMetrics, Kind::Info) => (&family.name, "info"),
            (Format::Text, Kind::Gauge | Kind::Info) => (&sample_name, "gauge"),
            (Format::Text, Kind::Counter) => (&sample_name, "counter"),
        };
        let _ = write!(out, "# HELP {described} ");
        escape_help(&family.help, format, &mut out);
        let _ = writeln!(out, "\n# TYPE {described} {kind}");
        for sample in &family.samples {
            out.push_str(&sample_name);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (name, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(name);
                    out.push_str("=\"");
                    escape_label(value, &mut out);
                    out.push('"');
                }
                out.push('}');
            }
            out.push(' ');
            write_value(sample.value, &mut out);
            out.push('\n');
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

// ---------------------------------------------------------------------------
// What the exporter remembers between scrapes

/// The dump-based numbers of one namespace.
#[derive(Debug, Default)]
struct Breakdown {
    /// The namespace the dump read (`None`: the exporter's own, unidentified).
    id: Option<NetnsId>,
    flows: Vec<(String, u64)>,
    tcp: Vec<(&'static str, u64)>,
    orphans: Option<Vec<(&'static str, u64)>>,
    /// Orphans by evidence: `confirmed`, `suspected`.
    evidence: Option<[(&'static str, u64); 2]>,
    sources: Vec<(String, u64)>,
    sources_other: u64,
    ports: Vec<(String, String, u64)>,
    ports_other: u64,
    duration: Duration,
    /// Whether a dump was made (not for a table whose O(1) count was 0).
    dumped: bool,
}

/// One namespace: its handle, the accumulated counters, the latest breakdown.
struct Target {
    /// Names this target for the background thread (labels can repeat in time).
    key: u64,
    label: String,
    netns: Netns,
    /// The namespace's identity, for targets found by `--all-namespaces`.
    discovered: Option<NetnsId>,
    /// For those: every path it had at the latest discovery (its names,
    /// then its processes), to tell at a scrape whether it is still there.
    paths: Vec<std::path::PathBuf>,
    /// The identity of the namespace the handle and counters belong to.
    opened: Option<NetnsId>,
    ct: Option<Conntrack>,
    last: Option<KernelStats>,
    totals: BTreeMap<Counter, u64>,
    breakdown: Option<(Instant, Arc<Breakdown>)>,
    /// When the background thread last took this namespace.
    breakdown_attempt: Option<Instant>,
    /// Breakdown dumps made of this namespace (an empty table is not dumped).
    dumps: u64,
    errors: u64,
}

/// One scrape's reading of a namespace.
struct Reading {
    entries: u64,
    limit: u64,
}

impl Target {
    fn new(key: u64, label: String, netns: Netns) -> Self {
        Target {
            key,
            label,
            netns,
            discovered: None,
            paths: Vec::new(),
            opened: None,
            ct: None,
            last: None,
            totals: BTreeMap::new(),
            breakdown: None,
            breakdown_attempt: None,
            dumps: 0,
            errors: 0,
        }
    }

    /// A namespace found by `--all-namespaces`, with its handle when the
    /// discovery could open one.
    fn discovered(key: u64, entry: &NetnsEntry, ct: Option<Conntrack>) -> Self {
        let label = match entry.names.first() {
            Some(name) => name.clone(),
            None if entry.initial => "host".to_owned(),
            None => format!("net:[{}]", entry.id.inode),
        };
        let mut target = Target::new(key, label, entry.netns.clone());
        target.discovered = Some(entry.id);
        target.opened = Some(entry.id);
        target.paths = entry_paths(entry);
        target.ct = ct;
        target
    }

    /// For a discovered namespace: whether it can still be reached by one
    /// of its paths (a few `stat`s, no scan of /proc). The first that still
    /// leads to it becomes its way in; none: it is gone, or only the
    /// discovery can find it again.
    fn still_there(&mut self) -> bool {
        let Some(id) = self.discovered else {
            return false;
        };
        let found = self
            .paths
            .iter()
            .position(|path| NetnsId::of_path(path).is_ok_and(|now| now == id));
        match found {
            Some(0) => true,
            Some(i) => {
                self.paths.drain(..i);
                self.netns = Netns::Path(self.paths[0].clone());
                true
            }
            None => false,
        }
    }

    /// Which namespace the target names now. A namespace deleted and
    /// re-created under the same name or path is another table: the socket
    /// would keep the old one alive and read it, so everything is dropped.
    fn resolve(&mut self) -> conntrack::Result<NetnsId> {
        let id = identify(&self.netns)?;
        if self.opened.is_some_and(|opened| opened != id) {
            self.ct = None;
            self.last = None;
            self.totals.clear();
            self.breakdown = None;
            self.dumps = 0;
        }
        self.opened = Some(id);
        Ok(id)
    }

    /// The O(1) reads of a scrape: table stats and the per-CPU counters. A
    /// `--netns` target without a handle (the first reading, or after an
    /// error) opens one; a discovered one waits for the discovery to open it
    /// (`Err(None)`): scrapes never open namespaces they did not ask for.
    fn read(&mut self) -> Result<Reading, Option<conntrack::Error>> {
        let ct = match &mut self.ct {
            Some(ct) => ct,
            None if self.discovered.is_some() => return Err(None),
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
        Ok(Reading {
            entries: stats.entries.into(),
            limit: stats.max_entries.unwrap_or(0).into(),
        })
    }
}

/// The identity of a namespace (its nsfs inode) as it is now.
fn identify(netns: &Netns) -> conntrack::Result<NetnsId> {
    match netns.path()? {
        Some(path) => NetnsId::of_path(path),
        None => NetnsId::current(),
    }
}

/// The paths of a listed namespace: its names, then its processes'.
fn entry_paths(entry: &NetnsEntry) -> Vec<std::path::PathBuf> {
    let named = entry
        .names
        .iter()
        .filter_map(|name| Netns::named(name.as_str()).path().ok().flatten());
    let of_processes = entry
        .pids
        .iter()
        .map(|pid| std::path::PathBuf::from(format!("/proc/{pid}/ns/net")));
    named.chain(of_processes).collect()
}

struct State {
    targets: Vec<Target>,
    next_key: u64,
    /// The latest scrape, shared with requests that arrived while it ran.
    last: Option<Arc<Snapshot>>,
    /// `--all-namespaces`: when the latest discovery ended, what it took.
    discovery: Option<(Instant, Duration)>,
    /// Wall time the background thread spent on breakdowns (what
    /// `--breakdown-budget` bounds), all namespaces, failures included.
    breakdown_seconds: f64,
}

struct Shared {
    options: Options,
    state: Mutex<State>,
    /// Set (and the discovery thread woken) when a scrape found a
    /// discovered namespace without a handle (a read failed).
    rediscover: Mutex<bool>,
    rediscover_now: Condvar,
}

/// One reading of every namespace, ready to encode in either format.
struct Snapshot {
    started: Instant,
    families: Vec<Family>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not stop the scrapes: the state stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The metrics for a request that arrived at `arrived`: a reading that
    /// started after it (made while this request waited for the lock) is
    /// shared, so concurrent scrapes cost at most two readings.
    fn snapshot(&self, arrived: Instant) -> Arc<Snapshot> {
        let mut state = self.lock();
        if let Some(last) = &state.last {
            if last.started >= arrived {
                return Arc::clone(last);
            }
        }
        let (snapshot, rediscover) = scrape(&mut state, &self.options);
        let snapshot = Arc::new(snapshot);
        state.last = Some(Arc::clone(&snapshot));
        drop(state);
        if rediscover {
            *self.rediscover.lock().unwrap_or_else(|e| e.into_inner()) = true;
            self.rediscover_now.notify_one();
        }
        snapshot
    }

    /// The namespaces exported by `--netns` targets, as of their latest
    /// reading: `--all-namespaces` leaves them to those.
    fn taken(state: &State) -> HashSet<NetnsId> {
        state
            .targets
            .iter()
            .filter(|t| t.discovered.is_none())
            .filter_map(|t| t.opened)
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Discovery (`--all-namespaces`): in the background, never in a scrape

/// One look at the host's namespaces: lists them (a scan of /proc) and opens
/// a handle in each new one (a thread and a `setns(2)` each) without the
/// lock, then, under it for a moment, adds the new ones and drops those that
/// are gone or exported by a `--netns` target. Namespaces are told apart by
/// inode, so none is exported twice.
fn discover(shared: &Shared) {
    let started = Instant::now();
    let entries = match list_all() {
        Ok(entries) => entries,
        Err(e) => {
            log!("exporter: listing namespaces: {e}");
            return;
        }
    };
    // What needs a handle: new namespaces, and those whose handle a read
    // error dropped.
    let with_handle: HashSet<NetnsId> = {
        let state = shared.lock();
        let mut ids = Shared::taken(&state);
        ids.extend(
            state
                .targets
                .iter()
                .filter(|t| t.ct.is_some())
                .filter_map(|t| t.discovered),
        );
        ids
    };
    let mut handles: HashMap<NetnsId, Conntrack> = HashMap::new();
    for entry in entries.iter().filter(|e| !with_handle.contains(&e.id)) {
        // Pinned: the handle is in exactly the namespace listed.
        match entry
            .open()
            .and_then(|file| Conntrack::open_in(&file.pinned()))
        {
            Ok(ct) => {
                handles.insert(entry.id, ct);
            }
            // Gone since the listing, or not readable: exported with up 0
            // (a scrape logs why), tried again at the next discovery.
            Err(e) => log!("exporter: namespace {}: {e}", entry.description()),
        }
    }

    let mut state = shared.lock();
    let taken = Shared::taken(&state);
    state.targets.retain(|t| match t.discovered {
        Some(id) => !taken.contains(&id) && entries.iter().any(|e| e.id == id),
        None => true,
    });
    for entry in &entries {
        if taken.contains(&entry.id) {
            continue;
        }
        let handle = handles.remove(&entry.id);
        match state
            .targets
            .iter_mut()
            .find(|t| t.discovered == Some(entry.id))
        {
            Some(target) => {
                // A namespace found by pid may be held by another process now.
                target.netns = entry.netns.clone();
                target.paths = entry_paths(entry);
                if target.ct.is_none() {
                    target.ct = handle;
                }
            }
            None => {
                let key = state.next_key;
                state.next_key += 1;
                state.targets.push(Target::discovered(key, entry, handle));
            }
        }
    }
    state.discovery = Some((Instant::now(), started.elapsed()));
}

/// The discovery thread: [`discover`] every `--discovery-interval`, or at
/// once when a scrape asks for it (a read failed and its handle was
/// dropped), at most every [`MIN_DISCOVERY_PERIOD`].
fn keep_discovering(shared: Arc<Shared>) {
    let interval = shared.options.discovery_interval;
    loop {
        {
            let wanted = shared.rediscover.lock().unwrap_or_else(|e| e.into_inner());
            let (mut wanted, _) = shared
                .rediscover_now
                .wait_timeout_while(wanted, interval, |wanted| !*wanted)
                .unwrap_or_else(|e| e.into_inner());
            *wanted = false;
        }
        discover(&shared);
        std::thread::sleep(MIN_DISCOVERY_PERIOD);
    }
}

// ---------------------------------------------------------------------------
// Scrape: O(1) kernel reads and formatting, never a dump or a discovery

/// Reads every namespace (O(1) each) and builds the metric families.
/// Also says whether the discovery should look again now (a discovered
/// namespace has no handle: a read failed).
fn scrape(state: &mut State, options: &Options) -> (Snapshot, bool) {
    let started = Instant::now();
    // The explicit namespaces first: they keep their labels, and
    // --all-namespaces skips what they already cover.
    let mut ids: Vec<Option<conntrack::Result<NetnsId>>> = Vec::new();
    let mut taken = HashSet::new();
    for target in state.targets.iter_mut() {
        if target.discovered.is_some() {
            ids.push(None);
            continue;
        }
        let id = target.resolve();
        // The same namespace under two spellings: exported once, first label.
        let duplicate = matches!(&id, Ok(id) if !taken.insert(*id));
        ids.push(if duplicate { None } else { Some(id) });
    }
    let mut rediscover = false;

    let mut up = Family::new(
        "conntrack_up",
        Kind::Gauge,
        "1 when the namespace's table could be read at this scrape",
    );
    let mut entries = Family::new(
        "conntrack_entries",
        Kind::Gauge,
        "Entries in the table (nf_conntrack_count)",
    );
    let mut limit = Family::new(
        "conntrack_entries_limit",
        Kind::Gauge,
        "Entries allowed per namespace (nf_conntrack_max, one value for the host)",
    );
    let mut errors = Family::new(
        "conntrack_exporter_scrape_errors",
        Kind::Counter,
        "Namespaces that could not be read, per scrape",
    );
    let mut kernel: BTreeMap<Counter, Family> = Counter::ALL
        .iter()
        .map(|counter| {
            let family = Family::new(
                format!("conntrack_{}", counter.name()),
                Kind::Counter,
                format!("Kernel conntrack statistic: {}", counter.meaning()),
            );
            (*counter, family)
        })
        .collect();
    let mut flows = Family::new(
        "conntrack_flows",
        Kind::Gauge,
        "Flows by layer-4 protocol (breakdown)",
    );
    let mut tcp = Family::new(
        "conntrack_tcp_flows",
        Kind::Gauge,
        "TCP flows by state (breakdown)",
    );
    let mut orphans = Family::new(
        "conntrack_orphan_flows",
        Kind::Gauge,
        "Orphaned flows by category (breakdown, default OrphanPolicy)",
    );
    let mut evidence = Family::new(
        "conntrack_orphan_evidence_flows",
        Kind::Gauge,
        "Orphaned flows by socket-table evidence: confirmed (a local end without a socket) or suspected (idle by the estimate only)",
    );
    let mut sources = Family::new(
        "conntrack_top_source_flows",
        Kind::Gauge,
        "Flows of the busiest sources, plus address=\"other\" (breakdown)",
    );
    let mut ports = Family::new(
        "conntrack_top_destination_port_flows",
        Kind::Gauge,
        "Flows of the busiest destination ports, plus port=\"other\" (breakdown)",
    );
    let mut age = Family::new(
        "conntrack_breakdown_age_seconds",
        Kind::Gauge,
        "Age of the latest breakdown (dumped in the background, at most every --breakdown-interval)",
    );
    let mut cost = Family::new(
        "conntrack_breakdown_duration_seconds",
        Kind::Gauge,
        "Time the latest breakdown's dump took",
    );
    let mut dumps = Family::new(
        "conntrack_breakdown_dumps",
        Kind::Counter,
        "Breakdown dumps made (a table whose O(1) count is 0 is not dumped)",
    );

    for (target, id) in state.targets.iter_mut().zip(ids) {
        let id = match (id, target.discovered) {
            (Some(id), _) => Some(id),
            // A discovered namespace: exported while one of its paths still
            // leads to it (else it is gone, or the next discovery finds its
            // new way in) and no --netns target exports it.
            (None, Some(id)) => {
                let there = !taken.contains(&id) && target.still_there();
                there.then_some(Ok(id))
            }
            // A duplicate of an earlier --netns: not exported.
            (None, None) => None,
        };
        let Some(id) = id else { continue };
        let result = id.map_err(Some).and_then(|_| target.read());
        let ns = [("netns", target.label.as_str())];
        match result {
            Ok(reading) => {
                up.int(&ns, 1);
                entries.int(&ns, reading.entries);
                limit.int(&ns, reading.limit);
            }
            Err(e) => {
                match e {
                    Some(e) => log!("exporter: namespace {}: {e}", target.label),
                    None => log!(
                        "exporter: namespace {}: no handle yet (the discovery opens it)",
                        target.label
                    ),
                }
                target.errors += 1;
                target.ct = None;
                // Counters restart from the kernel's totals when it is back.
                target.last = None;
                up.int(&ns, 0);
                rediscover |= target.discovered.is_some();
            }
        }
        errors.int(&ns, target.errors);
        for (counter, total) in &target.totals {
            if let Some(family) = kernel.get_mut(counter) {
                family.int(&ns, *total);
            }
        }
        let Some((at, breakdown)) = &target.breakdown else {
            continue;
        };
        if breakdown.id.is_some() && breakdown.id != target.opened {
            continue;
        }
        let netns = target.label.as_str();
        for (protocol, n) in &breakdown.flows {
            flows.int(&[("netns", netns), ("protocol", protocol)], *n);
        }
        for (state, n) in &breakdown.tcp {
            tcp.int(&[("netns", netns), ("state", state)], *n);
        }
        for (category, n) in breakdown.orphans.iter().flatten() {
            orphans.int(&[("netns", netns), ("category", category)], *n);
        }
        for (kind, n) in breakdown.evidence.iter().flatten() {
            evidence.int(&[("netns", netns), ("evidence", kind)], *n);
        }
        if options.top > 0 {
            for (address, n) in &breakdown.sources {
                sources.int(&[("netns", netns), ("address", address)], *n);
            }
            sources.int(
                &[("netns", netns), ("address", "other")],
                breakdown.sources_other,
            );
            for (protocol, port, n) in &breakdown.ports {
                ports.int(
                    &[("netns", netns), ("protocol", protocol), ("port", port)],
                    *n,
                );
            }
            ports.int(
                &[("netns", netns), ("protocol", "other"), ("port", "other")],
                breakdown.ports_other,
            );
        }
        age.float(&ns, at.elapsed().as_secs_f64());
        cost.float(&ns, breakdown.duration.as_secs_f64());
        dumps.int(&ns, target.dumps);
    }

    let mut families = vec![up, entries, limit, errors];
    families.extend(kernel.into_values());
    families.extend([
        flows, tcp, orphans, evidence, sources, ports, age, cost, dumps,
    ]);
    let mut spent = Family::new(
        "conntrack_exporter_breakdown_seconds",
        Kind::Counter,
        "Wall time spent on breakdowns (what --breakdown-budget bounds)",
    );
    spent.float(&[], state.breakdown_seconds);
    families.push(spent);
    if let Some((at, took)) = state.discovery {
        let mut age = Family::new(
            "conntrack_exporter_discovery_age_seconds",
            Kind::Gauge,
            "Time since the latest look for namespaces (--all-namespaces, every --discovery-interval)",
        );
        age.float(&[], at.elapsed().as_secs_f64());
        let mut cost = Family::new(
            "conntrack_exporter_discovery_duration_seconds",
            Kind::Gauge,
            "Time the latest look for namespaces took (listing, opening the new ones)",
        );
        cost.float(&[], took.as_secs_f64());
        families.extend([age, cost]);
    }
    // Global: the hash table is one for the host.
    if let Ok(buckets) = Sysctl::new().read(Key::Buckets) {
        let mut family = Family::new(
            "conntrack_buckets",
            Kind::Gauge,
            "Hash table buckets (shared by the host)",
        );
        family.int(&[], buckets);
        families.push(family);
    }
    let mut build = Family::new(
        "conntrack_exporter_build",
        Kind::Info,
        "The exporter's version",
    );
    build.int(&[("version", env!("CARGO_PKG_VERSION"))], 1);
    families.push(build);
    families.extend(process_metrics());
    let mut duration = Family::new(
        "conntrack_exporter_scrape_duration_seconds",
        Kind::Gauge,
        "Time this scrape took to read every namespace",
    );
    duration.float(&[], started.elapsed().as_secs_f64());
    families.push(duration);
    (Snapshot { started, families }, rediscover)
}

/// The standard process metrics (as the Prometheus client libraries name
/// them), from `/proc/self`. A file that cannot be read leaves its metrics out.
fn process_metrics() -> Vec<Family> {
    let mut families = Vec::new();
    // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command (which may contain spaces and parentheses).
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(1) // the state letter
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    // proc(5) numbers: utime 14, stime 15, starttime 22, vsize 23, rss 24; the
    // state (3) was skipped, so field N is at N - 4.
    let field = |n: usize| fields.get(n - 4).copied();
    if let (Some(user), Some(system)) = (field(14), field(15)) {
        if ticks > 0 {
            let mut cpu = Family::new(
                "process_cpu_seconds",
                Kind::Counter,
                "Total user and system CPU time spent in seconds.",
            );
            cpu.float(&[], (user + system) as f64 / ticks as f64);
            families.push(cpu);
        }
    }
    if let Some(rss) = field(24) {
        if page > 0 {
            let mut family = Family::new(
                "process_resident_memory_bytes",
                Kind::Gauge,
                "Resident memory size in bytes.",
            );
            family.int(&[], rss.saturating_mul(page as u64));
            families.push(family);
        }
    }
    if let Some(vsize) = field(23) {
        let mut family = Family::new(
            "process_virtual_memory_bytes",
            Kind::Gauge,
            "Virtual memory size in bytes.",
        );
        family.int(&[], vsize);
        families.push(family);
    }
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    if let (Some(boot), Some(start)) = (boot, field(22)) {
        if ticks > 0 {
            let mut family = Family::new(
                "process_start_time_seconds",
                Kind::Gauge,
                "Start time of the process since unix epoch in seconds.",
            );
            family.float(&[], boot as f64 + start as f64 / ticks as f64);
            families.push(family);
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let mut family = Family::new(
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
        );
        family.int(&[], fds.count() as u64);
        families.push(family);
    }
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Max open files"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        });
    if let Some(max) = max_fds {
        let mut family = Family::new(
            "process_max_fds",
            Kind::Gauge,
            "Maximum number of open file descriptors.",
        );
        family.int(&[], max);
        families.push(family);
    }
    families
}

// ---------------------------------------------------------------------------
// Breakdowns: one namespace at a time, in the background, under a budget

/// One dump (or none, for an empty table) of the namespace `netns` that is
/// expected to be `expected` (a re-created namespace is not dumped for the old one).
fn read_breakdown(
    netns: &Netns,
    expected: Option<NetnsId>,
    options: &Options,
) -> conntrack::Result<Breakdown> {
    let started = Instant::now();
    // Pin the namespace: the dump reads exactly the one identified.
    let (id, mut ct) = match netns.path()? {
        Some(path) => {
            let file = NetnsFile::open(path)?;
            let id = file.id()?;
            (Some(id), Conntrack::open_in(&file.pinned())?)
        }
        None => (NetnsId::current().ok(), Conntrack::open()?),
    };
    let mut breakdown = Breakdown {
        id,
        ..Breakdown::default()
    };
    if expected.is_some() && id != expected {
        return Err(conntrack::Error::NoSuchNetns {
            path: std::path::PathBuf::from(netns.label()),
        });
    }
    let orphan_policy = OrphanPolicy::new();
    let orphan_policy = (!options.no_orphans).then_some(&orphan_policy);
    // GET_STATS is O(1): an empty table needs no dump (which would walk the
    // host's whole hash table).
    if ct.table_stats()?.entries == 0 {
        breakdown.orphans = orphan_policy.map(|_| {
            OrphanCategory::ALL
                .iter()
                .map(|category| (category.name(), 0))
                .collect()
        });
        breakdown.evidence = orphan_policy.map(|_| [("confirmed", 0), ("suspected", 0)]);
        breakdown.duration = started.elapsed();
        return Ok(breakdown);
    }
    let top = usize::from(options.top).max(1);
    let census = ct.census(
        &[
            Grouping::new(&[GroupBy::Protocol], usize::MAX),
            Grouping::new(&[GroupBy::TcpState], usize::MAX),
            Grouping::new(&[GroupBy::Source], top),
            Grouping::new(&[GroupBy::Protocol, GroupBy::DestinationPort], top),
        ],
        orphan_policy,
    )?;
    breakdown.dumped = true;
    let empty = GroupCounts::default();
    let group = |i: usize| census.groups.get(i).unwrap_or(&empty);
    breakdown.flows = group(0)
        .groups
        .iter()
        .filter_map(|(key, n)| Some((protocol_name(key.first()?), *n)))
        .collect();
    breakdown.tcp = group(1)
        .groups
        .iter()
        .filter_map(|(key, n)| match key.first() {
            Some(GroupValue::TcpState(state)) => Some((state.name(), *n)),
            _ => None,
        })
        .collect();
    breakdown.orphans = census
        .orphans
        .as_ref()
        .map(|counts| counts.iter().map(|(c, n)| (c.name(), n)).collect());
    breakdown.evidence = census.orphans.as_ref().map(|counts| {
        [
            ("confirmed", counts.confirmed),
            ("suspected", counts.suspected),
        ]
    });
    breakdown.sources = group(2)
        .groups
        .iter()
        .filter_map(|(key, n)| Some((key.first()?.to_string(), *n)))
        .collect();
    breakdown.sources_other = group(2).other;
    breakdown.ports = group(3)
        .groups
        .iter()
        .filter_map(|(key, n)| match key.as_slice() {
            [protocol, port] => Some((protocol_name(protocol), port.to_string(), *n)),
            _ => None,
        })
        .collect();
    breakdown.ports_other = group(3).other;
    breakdown.duration = started.elapsed();
    Ok(breakdown)
}

/// The background thread: forever, the namespace whose breakdown is the
/// oldest and due, one at a time, then a pause that keeps dumping within
/// `--breakdown-budget` of the wall time.
fn refresh_breakdowns(shared: Arc<Shared>) {
    let options = &shared.options;
    let period = options.breakdown_interval.max(MIN_BREAKDOWN_PERIOD);
    loop {
        let job = {
            let mut state = shared.lock();
            let due = state
                .targets
                .iter_mut()
                .filter(|t| {
                    t.breakdown_attempt
                        .map_or(true, |at| at.elapsed() >= period)
                })
                .min_by_key(|t| t.breakdown_attempt);
            due.map(|target| {
                target.breakdown_attempt = Some(Instant::now());
                (
                    target.key,
                    target.netns.clone(),
                    target.discovered.or(target.opened),
                    target.label.clone(),
                )
            })
        };
        let Some((key, netns, expected, label)) = job else {
            std::thread::sleep(MIN_BREAKDOWN_PERIOD);
            continue;
        };
        let started = Instant::now();
        let result = read_breakdown(&netns, expected, options);
        let spent = started.elapsed();
        let mut state = shared.lock();
        state.breakdown_seconds += spent.as_secs_f64();
        match result {
            Ok(breakdown) => {
                if let Some(target) = state.targets.iter_mut().find(|t| t.key == key) {
                    target.dumps += u64::from(breakdown.dumped);
                    target.breakdown = Some((Instant::now(), Arc::new(breakdown)));
                }
            }
            Err(e) => log!("exporter: breakdown of namespace {label}: {e}"),
        }
        drop(state);
        // Budget: dumping `spent` allows `spent * (100 / budget - 1)` of rest.
        let rest = spent.as_secs_f64() * (100.0 / options.breakdown_budget - 1.0);
        std::thread::sleep(Duration::from_secs_f64(rest.min(3600.0)).max(Duration::from_millis(1)));
    }
}

// ---------------------------------------------------------------------------
// HTTP

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    let get = matches!(*request.method(), Method::GET | Method::HEAD);
    Ok(match (request.uri().path(), get) {
        ("/metrics", true) => {
            let format = Format::negotiate(request.headers().get(ACCEPT));
            // Kernel reads block: off the reactor, so other connections go on.
            let read = tokio::task::spawn_blocking(move || {
                let snapshot = shared.snapshot(arrived);
                encode(&snapshot.families, format)
            });
            match read.await {
                Ok(body) => response(StatusCode::OK, format.content_type(), body),
                Err(_) => response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    "the scrape failed\n",
                ),
            }
        }
        ("/", true) => response(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<html><body><a href=\"/metrics\">conntrack metrics</a></body></html>\n",
        ),
        ("/metrics" | "/", false) => {
            let mut r = response(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "method not allowed\n",
            );
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
        _ => response(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    })
}

async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(
        shared.options.max_connections as usize,
    ));
    let deadline = shared.options.request_timeout;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, mostly: let some connections end.
                log!("exporter: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the bound: closed at once, never queued behind slow clients.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _slot = slot;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(deadline)
                .keep_alive(false)
                .max_buf_size(MAX_REQUEST_HEAD);
            let connection = builder.serve_connection(
                TokioIo::new(stream),
                service_fn(move |request| handle(request, Arc::clone(&shared))),
            );
            // The deadline covers the whole exchange, headers included; one
            // request per connection, so it is the request's deadline.
            let _ = tokio::time::timeout(deadline, connection).await;
        });
    }
}

fn run(options: Options) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(options.listen))
        .map_err(|e| format!("bind {}: {e}", options.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;

    let mut namespaces = options.namespaces.clone();
    if namespaces.is_empty() && !options.all_namespaces {
        namespaces.push(Netns::Current);
    }
    // The same namespace twice (`--netns a --netns /run/netns/a`): once.
    let mut seen = HashSet::new();
    let mut targets = Vec::new();
    for netns in namespaces {
        let label = netns.label();
        let identity = identify(&netns).map_err(|_| label.clone());
        if !seen.insert(identity) {
            log!("exporter: namespace {label} is given twice; exported once");
            continue;
        }
        targets.push(Target::new(targets.len() as u64, label, netns));
    }
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            next_key: targets.len() as u64,
            targets,
            last: None,
            discovery: None,
            breakdown_seconds: 0.0,
        }),
        options,
        rediscover: Mutex::new(false),
        rediscover_now: Condvar::new(),
    });
    if shared.options.all_namespaces {
        // The first discovery before serving (the --netns targets resolved
        // first, so it leaves their namespaces to them); the next ones in
        // the background.
        for target in shared.lock().targets.iter_mut() {
            let _ = target.resolve();
        }
        discover(&shared);
        let background = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("discovery".into())
            .spawn(move || keep_discovering(background))
            .map_err(|e| format!("starting the discovery thread: {e}"))?;
    }
    // A first reading before serving: it opens a handle in every --netns
    // namespace (a thread and a setns(2) each, about 1.5 ms), which the
    // first scrape would otherwise pay for all of them.
    shared.snapshot(Instant::now());
    let background = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("breakdowns".into())
        .spawn(move || refresh_breakdowns(background))
        .map_err(|e| format!("starting the breakdown thread: {e}"))?;

    // A closed stdout drops the line; the exporter serves on.
    cli::print_line(format_args!("listening on http://{address}/metrics"));
    runtime.block_on(serve(listener, shared));
    Ok(())
}

fn main() -> ExitCode {
    // Usage errors exit 2, --help, --version and --generate 0 (the shared
    // layer). SIGPIPE stays ignored, unlike in the other tools
    // (`cli::quiet_on_closed_pipe`): its default action would let a scraper
    // that closes its connection during a vectored write kill the exporter.
    // Output goes through `cli::print_line` and `log!`, which drop what a
    // closed stdout or stderr cannot take instead of panicking.
    let options: Options = cli::parse();
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log!("exporter: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_an_address_and_a_port() {
        let ok = |text: &str| listen_arg(text).unwrap().to_string();
        assert_eq!(ok("127.0.0.1:9466"), "127.0.0.1:9466");
        assert_eq!(ok("[::1]:9466"), "[::1]:9466");
        assert_eq!(ok("fd00::1:9466"), "[fd00::1]:9466");
        assert_eq!(ok("0.0.0.0:0"), "0.0.0.0:0");
        for bad in [
            "",
            "9466",
            "127.0.0.1",
            "127.0.0.1:65536",
            "localhost:9466",
            "::1",
            "[::1]",
            "1.2.3.4:9466:1",
        ] {
            let e = listen_arg(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn accept_headers_choose_the_format() {
        let negotiate =
            |accept: &str| Format::negotiate(Some(&HeaderValue::from_str(accept).unwrap()));
        assert_eq!(Format::negotiate(None), Format::Text);
        // Prometheus 2.x's header.
        assert_eq!(
            negotiate("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate("text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"),
            Format::Text
        );
        assert_eq!(negotiate("*/*"), Format::Text);
        assert_eq!(
            negotiate("application/openmetrics-text"),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate("application/openmetrics-text; version=2.0.0"),
            Format::Text
        );
        assert_eq!(negotiate("application/openmetrics-text;q=0"), Format::Text);
        assert_eq!(negotiate(",;;=,q=x"), Format::Text);
    }

    #[test]
    fn both_formats_name_counters_and_info_as_expected() {
        let mut counter = Family::new("conntrack_drop", Kind::Counter, "a \"help\"\\ line");
        counter.int(&[("netns", "a\"b\\c\nd")], 3);
        let mut info = Family::new("conntrack_exporter_build", Kind::Info, "version");
        info.int(&[("version", "0.1.0")], 1);
        let families = [counter, info, Family::new("empty", Kind::Gauge, "skipped")];
        assert_eq!(
            encode(&families, Format::Text),
            "# HELP conntrack_drop_total a \"help\"\\\\ line\n# TYPE conntrack_drop_total counter\n\
             conntrack_drop_total{netns=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP conntrack_exporter_build_info version\n# TYPE conntrack_exporter_build_info gauge\n\
             conntrack_exporter_build_info{version=\"0.1.0\"} 1\n"
        );
        assert_eq!(
            encode(&families, Format::OpenMetrics),
            "# HELP conntrack_drop a \\\"help\\\"\\\\ line\n# TYPE conntrack_drop counter\n\
             conntrack_drop_total{netns=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP conntrack_exporter_build version\n# TYPE conntrack_exporter_build info\n\
             conntrack_exporter_build_info{version=\"0.1.0\"} 1\n# EOF\n"
        );
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `exporter` example under load, against the real kernel: scrape latency
//! with 1, 10 and 100 namespaces (one of them holding 250k flows, the others
//! empty) given by `--netns`, and with the 100 found by `--all-namespaces` (the
//! DaemonSet's mode: discovery in the background), first scrape included, and
//! a load test of 50 concurrent scrapers.
//!
//! Not a criterion bench: the first scrape happens once per exporter, and the
//! load test is about concurrency and tails, so this harness prints its own
//! table (`harness = false`). Root only (namespaces, ctnetlink); otherwise it
//! prints why it skipped and exits successfully. Every namespace is a
//! throwaway one (`ip netns add`), deleted when the bench ends, also on panic;
//! nothing touches the host's table or a global sysctl (250k flows stay below
//! the default `nf_conntrack_max` of 262144).
//!
//! For each size: an exporter started with `--netns` for each namespace, the
//! first scrape timed (before any breakdown: the background thread starts
//! dumping at once, and scrapes never wait for it), then scrapes every 50 ms
//! for 10 s (`CONNTRACK_BENCH_SCRAPE_SECONDS`), while the breakdown of the
//! 250k-flow namespace is being dumped and after. The last row is an exporter
//! started with `--all-namespaces --discovery-interval 1` instead: it finds
//! the 100 namespaces (and every other namespace of the host: the row says how
//! many it exported) by its background discovery, which runs every second
//! while the scrapes go on. Then, against the 100-namespace `--netns`
//! exporter, 50 threads scrape as fast as they can for 10 s
//! (`CONNTRACK_BENCH_LOAD_SECONDS`): requests, errors, p50, p99, max.
//!
//! A quick run for a smoke test: `CONNTRACK_BENCH_FLOWS` (250000) flows in
//! the big namespace, `CONNTRACK_BENCH_NAMESPACES` (100) namespaces in all
//! (the sizes above it are skipped), and the two durations above in seconds.
//!
//! ```text
//! sudo -E cargo bench -p conntrack-rs --bench exporter
//! sudo -E CONNTRACK_BENCH_FLOWS=1000 CONNTRACK_BENCH_NAMESPACES=3 \
//!     CONNTRACK_BENCH_SCRAPE_SECONDS=1 CONNTRACK_BENCH_LOAD_SECONDS=1 \
//!     cargo bench -p conntrack-rs --bench exporter
//! ```

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conntrack::testing::bench::{env_or, median};
use conntrack::testing::http::{self, ExporterProcess};
use conntrack::testing::mix::create_mixed;
use conntrack::testing::raw::RawSocket;
use conntrack::testing::scratch::{is_root, ScratchNs};

/// The exporter on `namespaces`, with room for the load test's scrapers.
fn start_exporter(binary: &std::path::Path, namespaces: &[&ScratchNs]) -> ExporterProcess {
    let mut args = vec!["--max-connections", "256"];
    for ns in namespaces {
        args.extend(["--netns", ns.name.as_str()]);
    }
    ExporterProcess::start(binary, &args, Stdio::inherit()).expect("start the exporter")
}

/// The exporter of every namespace of the host, the DaemonSet's way.
fn start_all_namespaces_exporter(binary: &std::path::Path) -> ExporterProcess {
    let args = [
        "--max-connections",
        "256",
        "--all-namespaces",
        "--discovery-interval",
        "1",
    ];
    ExporterProcess::start(binary, &args, Stdio::inherit()).expect("start the exporter")
}

/// One row of the table: the first scrape of `exporter`, then scrapes every
/// 50 ms for `scrape_for`; when the big namespace's breakdown first showed.
fn measure(exporter: &ExporterProcess, big: &ScratchNs, scrape_for: Duration) -> Row {
    let (first, body) = scrape(&exporter.address).expect("first scrape");
    let mut exported = count_namespaces(&body);
    let mut latencies = vec![first];
    let started = Instant::now();
    let mut breakdown: Option<String> = None;
    let series = format!(
        "conntrack_breakdown_duration_seconds{{netns=\"{}\"}} ",
        big.name
    );
    while started.elapsed() < scrape_for {
        let (took, body) = scrape(&exporter.address).expect("scrape");
        latencies.push(took);
        exported = exported.max(count_namespaces(&body));
        if breakdown.is_none() {
            if let Some(line) = body.lines().find(|l| l.starts_with(&series)) {
                let cost: f64 = line[series.len()..].parse().unwrap_or(f64::NAN);
                breakdown = Some(format!(
                    "dumped in {:.0} ms, first seen {:.1} s after start",
                    cost * 1e3,
                    started.elapsed().as_secs_f64()
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    latencies.sort();
    Row {
        first,
        latencies,
        exported,
        breakdown,
    }
}

/// What [`measure`] found.
struct Row {
    first: Duration,
    latencies: Vec<Duration>,
    /// Namespaces the exporter exported (`conntrack_up` series).
    exported: usize,
    breakdown: Option<String>,
}

impl Row {
    fn print(&self, label: &str) {
        println!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} |",
            self.exported,
            ms(self.first),
            ms(percentile(&self.latencies, 0.5)),
            ms(percentile(&self.latencies, 0.99)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.latencies.len(),
            self.breakdown.as_deref().unwrap_or("not seen"),
        );
    }
}

/// The `conntrack_up` series of an exposition: the namespaces it exports.
fn count_namespaces(body: &str) -> usize {
    body.lines()
        .filter(|l| l.starts_with("conntrack_up{"))
        .count()
}

/// One scrape: its latency (connect to last byte), or why it failed.
fn scrape(address: &str) -> Result<(Duration, String), String> {
    let response = http::get(address, "/metrics", None, Duration::from_secs(10))?;
    if response.status != 200 {
        return Err(format!(
            "status {:?}",
            response.head.lines().next().unwrap_or_default()
        ));
    }
    Ok((response.took, response.body))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn seconds(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// The exporter binary of this profile, built with the cargo that runs the bench.
fn exporter_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("bench binary lives in target/<profile>/deps")
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "conntrack-rs",
            "--example",
            "exporter",
        ])
        .arg("--target-dir")
        .arg(profile_dir.parent().expect("target directory"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build --example exporter");
    assert!(
        status.success(),
        "cargo build --release --example exporter failed"
    );
    profile_dir.join("examples").join("exporter")
}

fn main() {
    if !is_root() {
        println!("exporter bench skipped: needs root (network namespaces, CAP_NET_ADMIN)");
        return;
    }
    // Cargo passes harness flags (`--bench`, `--list`, filters): only `--list`
    // matters here. Read as OsStrings, so a non-UTF-8 argument cannot panic.
    if std::env::args_os().any(|a| a == "--list") {
        return;
    }
    let binary = exporter_binary();
    let flows = env_or("CONNTRACK_BENCH_FLOWS", 250_000);
    let total = env_or("CONNTRACK_BENCH_NAMESPACES", 100).max(1) as usize;
    println!("filling a namespace with {flows} flows (fill --mix)...");
    let big = ScratchNs::new("bench-exporter-big");
    create_mixed(&mut big.conntrack(), 0..flows);
    let empties: Vec<ScratchNs> = (1..total)
        .map(|_| ScratchNs::new("bench-exporter-empty"))
        .collect();
    let scrape_for = seconds("CONNTRACK_BENCH_SCRAPE_SECONDS", 10);
    // The baseline of the breakdown column: the raw drain of the big table.
    let mut raw = RawSocket::open(Some(&big.file())).expect("raw socket");
    raw.warm_up().expect("warm up");
    let drains: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let drained = raw.drain().expect("drain");
            assert_eq!(drained.messages, u64::from(flows));
            started.elapsed()
        })
        .collect();
    drop(raw);
    println!(
        "raw drain of the {flows}-flow namespace (the baseline of the breakdown dump), median of 5: {:.0} ms",
        median(drains).as_secs_f64() * 1e3
    );

    println!(
        "\n| namespaces | exported | first scrape | p50 | p99 | max | scrapes | breakdown of the {flows}-flow namespace |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut last = None;
    let mut sizes: Vec<usize> = [1usize, 10, 100]
        .into_iter()
        .filter(|n| *n < total)
        .collect();
    sizes.push(total);
    for size in sizes {
        let mut namespaces = vec![&big];
        namespaces.extend(empties.iter().take(size - 1));
        let exporter = start_exporter(&binary, &namespaces);
        measure(&exporter, &big, scrape_for).print(&format!("{size} (--netns)"));
        last = Some(exporter);
    }
    // The DaemonSet's mode: the same namespaces, found by the discovery.
    let all = start_all_namespaces_exporter(&binary);
    measure(&all, &big, scrape_for).print(&format!("{total} (--all-namespaces)"));
    drop(all);

    // The load test, against the exporter of every bench namespace.
    let exporter = last.expect("the exporter of every bench namespace");
    let load_for = seconds("CONNTRACK_BENCH_LOAD_SECONDS", 10);
    let scrapers = 50;
    let deadline = Instant::now() + load_for;
    let threads: Vec<_> = (0..scrapers)
        .map(|_| {
            let address = exporter.address.clone();
            std::thread::spawn(move || {
                let (mut ok, mut errors) = (Vec::new(), Vec::new());
                while Instant::now() < deadline {
                    match scrape(&address) {
                        Ok((took, _)) => ok.push(took),
                        Err(e) => errors.push(e),
                    }
                }
                (ok, errors)
            })
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), Vec::new());
    for thread in threads {
        let (ok, failed) = thread.join().expect("scraper thread");
        latencies.extend(ok);
        errors.extend(failed);
    }
    latencies.sort();
    println!(
        "\nload: {scrapers} concurrent scrapers for {} s against {total} namespaces (one with {flows} flows):",
        load_for.as_secs()
    );
    println!(
        "  {} scrapes ({:.0}/s), {} errors, p50 {}, p99 {}, max {}",
        latencies.len(),
        latencies.len() as f64 / load_for.as_secs_f64(),
        errors.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    if let Some(error) = errors.first() {
        println!("  first error: {error}");
    }
}

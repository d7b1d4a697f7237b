// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `exporter` example against the real kernel: started on a loopback port,
//! scraped over HTTP, its metrics parsed and checked against a namespace with a
//! known load; bad requests get 400/404/405/431 and the exporter keeps serving;
//! slow and idle clients never delay a scrape; a namespace given twice is
//! exported once; the format follows the `Accept` header and both formats pass
//! the reference parsers; the breakdown's age moves; an empty table is never
//! dumped and breakdowns keep to their budget; orphans without a socket are
//! confirmed; `--all-namespaces` finds namespaces in the background, never in
//! a scrape, and scrapes never wait for it; the alert rules and the Grafana
//! dashboard only name metrics the exporter exports.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{example_binary, known_load, ScratchNs};
use conntrack::testing::http::ExporterProcess;
use conntrack::{FlowSpec, Status, TcpState, Tuple};

/// What Prometheus 2.x sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The exporter process, killed when dropped.
struct Exporter(ExporterProcess);

impl std::ops::Deref for Exporter {
    type Target = ExporterProcess;
    fn deref(&self) -> &ExporterProcess {
        &self.0
    }
}

impl Exporter {
    fn start(args: &[&str]) -> Exporter {
        let binary = example_binary("exporter");
        Exporter(ExporterProcess::start(&binary, args, Stdio::null()).expect("start the exporter"))
    }

    /// Sends `request` as is; returns the status code, the head and the body.
    fn raw(&self, request: &str) -> (u16, String, String) {
        let response = self.0.raw(request, Duration::from_secs(30)).unwrap();
        (response.status, response.head, response.body)
    }

    fn get(&self, path: &str) -> (u16, String, String) {
        self.get_accepting(path, None)
    }

    fn get_accepting(&self, path: &str, accept: Option<&str>) -> (u16, String, String) {
        let response = self.0.get(path, accept, Duration::from_secs(30)).unwrap();
        (response.status, response.head, response.body)
    }

    /// One scrape in the default (text 0.0.4) format, as `name{labels}` → value.
    fn scrape(&self) -> BTreeMap<String, f64> {
        let (status, head, body) = self.get("/metrics");
        assert_eq!(status, 200, "{head}\n{body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        samples(&body)
    }

    /// Scrapes until `done` holds (the breakdown is made in the background).
    fn scrape_until(
        &self,
        what: &str,
        done: impl Fn(&BTreeMap<String, f64>) -> bool,
    ) -> BTreeMap<String, f64> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.scrape();
            if done(&m) {
                return m;
            }
            assert!(Instant::now() < deadline, "never got {what}: {m:#?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The samples of an exposition (either format), as `name{labels}` → value.
fn samples(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn value(metrics: &BTreeMap<String, f64>, series: &str) -> f64 {
    *metrics
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {metrics:#?}"))
}

#[test]
fn metrics_match_a_known_load() {
    require_root!();
    let ns = ScratchNs::new("exporter");
    known_load(&ns);
    let n = ns.name.as_str();
    let exporter = Exporter::start(&[
        "--netns",
        n,
        "--netns",
        "ctrs-no-such-namespace",
        "--top",
        "2",
        "--breakdown-interval",
        "0",
    ]);
    let tcp = format!("conntrack_flows{{netns=\"{n}\",protocol=\"tcp\"}}");
    let m = exporter.scrape_until("the first breakdown", |m| m.contains_key(&tcp));
    let s = |series: &str| value(&m, &series.replace("NS", n));

    assert_eq!(s(r#"conntrack_up{netns="NS"}"#), 1.0);
    assert_eq!(s(r#"conntrack_entries{netns="NS"}"#), 650.0);
    let limit = ns.conntrack().limit().unwrap();
    assert_eq!(
        s(r#"conntrack_entries_limit{netns="NS"}"#),
        f64::from(limit)
    );
    assert_eq!(s(r#"conntrack_flows{netns="NS",protocol="tcp"}"#), 420.0);
    assert_eq!(s(r#"conntrack_flows{netns="NS",protocol="udp"}"#), 200.0);
    assert_eq!(s(r#"conntrack_flows{netns="NS",protocol="icmp"}"#), 30.0);
    assert_eq!(
        s(r#"conntrack_tcp_flows{netns="NS",state="ESTABLISHED"}"#),
        320.0
    );
    assert_eq!(
        s(r#"conntrack_tcp_flows{netns="NS",state="SYN_SENT"}"#),
        100.0
    );
    assert_eq!(
        s(r#"conntrack_orphan_flows{netns="NS",category="idle_established"}"#),
        20.0
    );
    assert_eq!(
        s(r#"conntrack_orphan_flows{netns="NS",category="long_unreplied"}"#),
        0.0
    );
    // None of those ends is an address of the namespace: suspected, not confirmed.
    assert_eq!(
        s(r#"conntrack_orphan_evidence_flows{netns="NS",evidence="suspected"}"#),
        20.0
    );
    assert_eq!(
        s(r#"conntrack_orphan_evidence_flows{netns="NS",evidence="confirmed"}"#),
        0.0
    );
    // Top 2 sources and the rest.
    assert_eq!(
        s(r#"conntrack_top_source_flows{netns="NS",address="10.9.0.1"}"#),
        300.0
    );
    assert_eq!(
        s(r#"conntrack_top_source_flows{netns="NS",address="10.9.0.2"}"#),
        200.0
    );
    assert_eq!(
        s(r#"conntrack_top_source_flows{netns="NS",address="other"}"#),
        150.0
    );
    let sources = m
        .keys()
        .filter(|k| k.starts_with("conntrack_top_source_flows{"))
        .count();
    assert_eq!(sources, 3, "bounded cardinality: top 2 + other");
    assert_eq!(
        s(r#"conntrack_top_destination_port_flows{netns="NS",protocol="tcp",port="443"}"#),
        300.0
    );
    assert_eq!(
        s(r#"conntrack_top_destination_port_flows{netns="NS",protocol="udp",port="53"}"#),
        200.0
    );
    assert_eq!(
        s(r#"conntrack_top_destination_port_flows{netns="NS",protocol="other",port="other"}"#),
        150.0
    );
    // 650 flows created through ctnetlink: the kernel counted each insert.
    assert_eq!(s(r#"conntrack_insert_total{netns="NS"}"#), 650.0);
    assert!(m.contains_key("conntrack_buckets"));
    assert!(value(&m, "conntrack_exporter_scrape_duration_seconds") > 0.0);
    // The namespace that does not exist: down and counted, the other one served.
    assert_eq!(
        value(&m, r#"conntrack_up{netns="ctrs-no-such-namespace"}"#),
        0.0
    );
    let missing_errors =
        r#"conntrack_exporter_scrape_errors_total{netns="ctrs-no-such-namespace"}"#;
    let errors_before = value(&m, missing_errors);
    assert!(errors_before >= 1.0);

    // Changes show at the next scrape (the breakdown soon after); counters only go up.
    let mut ct = ns.conntrack();
    for i in 1..=10u8 {
        let orig = Tuple::udp(([10, 9, 0, 2], 60000 + u16::from(i)), ([192, 0, 2, 54], 53));
        ct.create(&FlowSpec::new(orig).timeout(100)).unwrap();
    }
    ns.send_invalid_tcp_segments(25);
    let m = exporter.scrape();
    assert_eq!(
        value(&m, &format!("conntrack_entries{{netns=\"{n}\"}}")),
        660.0
    );
    let udp = format!("conntrack_flows{{netns=\"{n}\",protocol=\"udp\"}}");
    let m = exporter.scrape_until("the new breakdown", |m| m.get(&udp) == Some(&210.0));
    let s = |series: &str| value(&m, &series.replace("NS", n));
    assert_eq!(s(r#"conntrack_flows{netns="NS",protocol="udp"}"#), 210.0);
    assert_eq!(s(r#"conntrack_insert_total{netns="NS"}"#), 660.0);
    assert!(s(r#"conntrack_invalid_total{netns="NS"}"#) >= 25.0);
    assert!(value(&m, missing_errors) > errors_before);
}

#[test]
fn bad_requests_are_answered_and_the_exporter_keeps_serving() {
    require_root!();
    let ns = ScratchNs::new("exporter-http");
    let exporter = Exporter::start(&["--netns", &ns.name]);
    let (status, head, _) = exporter.raw("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, 405);
    assert!(
        head.to_ascii_lowercase().contains("allow: get, head"),
        "{head}"
    );
    assert_eq!(exporter.get("/nope").0, 404);
    assert_eq!(exporter.get("/metrics/../etc/passwd").0, 404);
    assert_eq!(exporter.raw("garbage\r\n\r\n").0, 400);
    assert_eq!(exporter.raw("GET /metrics SMTP/2\r\n\r\n").0, 400);
    // A head larger than the limit.
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(exporter.raw(&huge).0, 431);
    // Not HTTP at all, then a closed connection in the middle of a request.
    assert_eq!(
        exporter
            .raw("\x16\x03\x01\x02\x00\x01\x00\x01\x7f\x03\x03\r\n\r\n")
            .0,
        400
    );
    drop(TcpStream::connect(&exporter.address).and_then(|mut s| s.write_all(b"GET /met")));
    let (status, head, body) = exporter.raw("HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, 200, "{head}");
    assert!(body.is_empty());
    assert_eq!(exporter.get("/").0, 200);
    // Still serving, with the top series off by default.
    let m = exporter.scrape();
    assert_eq!(
        value(&m, &format!("conntrack_up{{netns=\"{}\"}}", ns.name)),
        1.0
    );
    assert!(!m.keys().any(|k| k.starts_with("conntrack_top_")), "{m:#?}");
}

#[test]
fn all_namespaces_follows_namespaces_as_they_come_and_go() {
    require_root!();
    let ns = ScratchNs::new("exporter-all");
    known_load(&ns);
    let exporter = Exporter::start(&["--all-namespaces", "--breakdown-interval", "0"]);
    let m = exporter.scrape();
    let series = |name: &str, netns: &str| format!("{name}{{netns=\"{netns}\"}}");
    assert_eq!(value(&m, &series("conntrack_up", &ns.name)), 1.0);
    assert_eq!(value(&m, &series("conntrack_entries", &ns.name)), 650.0);
    assert_eq!(value(&m, &series("conntrack_up", "host")), 1.0, "{m:#?}");
    let name = ns.name.clone();
    drop(ns);
    let m = exporter.scrape();
    assert!(
        !m.contains_key(&series("conntrack_up", &name)),
        "a deleted namespace is no longer exported: {m:#?}"
    );
    assert_eq!(value(&m, &series("conntrack_up", "host")), 1.0);
}

#[test]
fn a_recreated_namespace_is_read_afresh() {
    require_root!();
    let ns = ScratchNs::new("exporter-again");
    known_load(&ns);
    let name = ns.name.clone();
    let exporter = Exporter::start(&["--netns", &name, "--breakdown-interval", "0"]);
    let entries = format!("conntrack_entries{{netns=\"{name}\"}}");
    let inserts = format!("conntrack_insert_total{{netns=\"{name}\"}}");
    let m = exporter.scrape();
    assert_eq!(value(&m, &entries), 650.0);
    assert_eq!(value(&m, &inserts), 650.0);
    // Same name, new namespace with one flow: the old table must not be read.
    drop(ns);
    conntrack::testing::scratch::run("ip", &["netns", "add", &name]);
    let cleanup = Cleanup(name.clone());
    let mut ct = conntrack::Conntrack::open_in(&conntrack::Netns::named(name.as_str())).unwrap();
    let orig = Tuple::udp(([10, 1, 1, 1], 5000), ([10, 1, 1, 2], 53));
    ct.create(&FlowSpec::new(orig).timeout(100)).unwrap();
    let m = exporter.scrape();
    assert_eq!(value(&m, &entries), 1.0, "{m:#?}");
    assert_eq!(
        value(&m, &inserts),
        1.0,
        "counters restart with the new table"
    );
    drop(cleanup);
}

/// Deletes a namespace made by hand, also on panic.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A client that sends its request head one byte every 4 s (slowloris): until
/// the exporter cuts it, returns how long it was held.
fn slowloris(address: &str) -> Duration {
    let mut stream = TcpStream::connect(address).unwrap();
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(4)))
        .unwrap();
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\n");
    let mut buffer = [0u8; 512];
    while started.elapsed() < Duration::from_secs(60) {
        match stream.read(&mut buffer) {
            // Closed by the exporter (the deadline's answer is no answer).
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return started.elapsed(),
        }
        if stream.write_all(b"X").is_err() {
            return started.elapsed();
        }
    }
    panic!("the slow client was never cut off");
}

#[test]
fn slow_and_idle_clients_never_delay_a_scrape() {
    require_root!();
    let ns = ScratchNs::new("exporter-slow");
    known_load(&ns);
    // The default deadline (5 s) and connection bound (64).
    let exporter = Exporter::start(&["--netns", &ns.name]);
    let address = exporter.address.clone();
    let slow = std::thread::spawn(move || slowloris(&address));
    let idle: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(&exporter.address).unwrap())
        .collect();
    let entries = format!("conntrack_entries{{netns=\"{}\"}}", ns.name);
    // Scrapes all along the slow client's life and past its deadline.
    let started = Instant::now();
    let mut scrapes = 0;
    while started.elapsed() < Duration::from_secs(7) {
        let scrape = Instant::now();
        let m = exporter.scrape();
        let took = scrape.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "scrape {scrapes} took {took:?} with a slow and 10 idle clients"
        );
        assert_eq!(value(&m, &entries), 650.0);
        scrapes += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(scrapes >= 10);
    let held = slow.join().unwrap();
    assert!(
        held >= Duration::from_millis(4500) && held < Duration::from_secs(8),
        "the slow client was cut after {held:?}, not at the 5 s deadline"
    );
    // The idle ones were cut at the deadline too.
    for mut stream in idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut byte = [0u8; 1];
        assert!(
            matches!(stream.read(&mut byte), Ok(0) | Err(_)),
            "an idle connection is still open after the deadline"
        );
    }
}

#[test]
fn a_namespace_given_twice_is_exported_once() {
    require_root!();
    let ns = ScratchNs::new("exporter-twice");
    known_load(&ns);
    let n = ns.name.as_str();
    let path = format!("/run/netns/{n}");
    let inode = std::fs::metadata(&path).unwrap().ino();
    let up_labels = |m: &BTreeMap<String, f64>| -> Vec<String> {
        m.keys()
            .filter_map(|k| k.strip_prefix("conntrack_up{netns=\""))
            .filter_map(|k| k.strip_suffix("\"}"))
            .map(str::to_owned)
            .collect()
    };
    let inserts = format!("conntrack_insert_total{{netns=\"{n}\"}}");

    // Three spellings of one namespace: one series, under the first label.
    let exporter = Exporter::start(&["--netns", n, "--netns", n, "--netns", &path]);
    let m = exporter.scrape();
    assert_eq!(up_labels(&m), vec![n.to_owned()], "{m:#?}");
    assert_eq!(value(&m, &inserts), 650.0, "counters are not doubled");
    drop(exporter);

    // --netns and --all-namespaces: the explicit label, once.
    let exporter = Exporter::start(&["--netns", n, "--all-namespaces"]);
    let m = exporter.scrape();
    let labels = up_labels(&m);
    assert_eq!(labels.iter().filter(|l| *l == n).count(), 1, "{labels:?}");
    assert!(
        !labels.contains(&format!("net:[{inode}]")),
        "exported twice: {labels:?}"
    );
    assert_eq!(value(&m, &inserts), 650.0);
    let series_of_ns = m.keys().filter(|k| k.contains(&format!("\"{n}\""))).count();
    let once = Exporter::start(&["--netns", n]);
    let m_once = once.scrape();
    let series_once = m_once
        .keys()
        .filter(|k| k.contains(&format!("\"{n}\"")))
        .count();
    assert_eq!(
        series_of_ns, series_once,
        "the same series as a lone --netns"
    );
}

/// Runs `python3` with `script` on `input`; panics with its output on failure.
fn python(script: &str, input: &str) {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (tests/deps.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}\n--- input:\n{input}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `promtool` when installed (PATH or $PROMTOOL): the reference checker.
fn promtool() -> Option<String> {
    let candidate = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    Command::new(&candidate)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| candidate)
}

#[test]
fn the_accept_header_chooses_the_format_and_both_parse() {
    require_root!();
    let ns = ScratchNs::new("exporter-format");
    known_load(&ns);
    let n = ns.name.as_str();
    let exporter = Exporter::start(&["--netns", n, "--top", "2", "--breakdown-interval", "0"]);
    let tcp = format!("conntrack_flows{{netns=\"{n}\",protocol=\"tcp\"}}");
    exporter.scrape_until("the breakdown", |m| m.contains_key(&tcp));

    // No Accept, text/plain, anything: text 0.0.4.
    for accept in [None, Some("text/plain"), Some("*/*"), Some("image/png")] {
        let (status, head, body) = exporter.get_accepting("/metrics", accept);
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
            "{accept:?}: {head}"
        );
        assert!(!body.contains("# EOF"), "{accept:?}");
        assert!(body.contains("# TYPE conntrack_insert_total counter\n"));
        assert!(body.contains("# TYPE conntrack_exporter_build_info gauge\n"));
    }
    // What Prometheus sends, or OpenMetrics alone: OpenMetrics 1.0.0.
    for accept in [
        PROMETHEUS_ACCEPT,
        "application/openmetrics-text; version=1.0.0",
    ] {
        let (status, head, body) = exporter.get_accepting("/metrics", Some(accept));
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase().contains(
                "content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"
            ),
            "{accept}: {head}"
        );
        assert!(body.ends_with("# EOF\n"));
        assert!(body.contains("# TYPE conntrack_insert counter\n"));
        assert!(body.contains("# TYPE conntrack_exporter_build info\n"));
    }
    // Text preferred by quality.
    let (_, head, _) = exporter.get_accepting(
        "/metrics",
        Some("application/openmetrics-text;q=0.2,text/plain;version=0.0.4;q=0.9"),
    );
    assert!(head.contains("version=0.0.4"), "{head}");

    // Both parse with the reference parsers, with the same samples.
    let (_, _, text) = exporter.get("/metrics");
    let (_, _, openmetrics) = exporter.get_accepting("/metrics", Some(PROMETHEUS_ACCEPT));
    python(
        "import sys\n\
         from prometheus_client.parser import text_string_to_metric_families as parse\n\
         families = list(parse(sys.stdin.read()))\n\
         names = {s.name for f in families for s in f.samples}\n\
         assert 'conntrack_insert_total' in names, names\n\
         assert 'conntrack_exporter_build_info' in names, names\n\
         assert 'process_cpu_seconds_total' in names, names\n",
        &text,
    );
    python(
        "import sys\n\
         from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n\
         families = list(parse(sys.stdin.read()))\n\
         kinds = {f.name: f.type for f in families}\n\
         assert kinds['conntrack_insert'] == 'counter', kinds\n\
         assert kinds['conntrack_exporter_build'] == 'info', kinds\n\
         assert kinds['process_resident_memory_bytes'] == 'gauge', kinds\n",
        &openmetrics,
    );
    let strip_times = |m: BTreeMap<String, f64>| -> BTreeSet<String> { m.into_keys().collect() };
    assert_eq!(
        strip_times(samples(&text)),
        strip_times(samples(&openmetrics)),
        "the same series in both formats"
    );
    // promtool checks the text format (its `check metrics` has no OpenMetrics
    // parser); the OpenMetrics body passed Python's strict parser above.
    if let Some(promtool) = promtool() {
        let mut child = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_breakdown_age_moves() {
    require_root!();
    let ns = ScratchNs::new("exporter-age");
    known_load(&ns);
    let n = ns.name.as_str();
    let exporter = Exporter::start(&["--netns", n, "--breakdown-interval", "1"]);
    let age = format!("conntrack_breakdown_age_seconds{{netns=\"{n}\"}}");
    let first = exporter.scrape_until("a breakdown", |m| m.contains_key(&age));
    let mut ages = vec![value(&first, &age)];
    // Grows between dumps, falls back after each (one every second).
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(150));
        ages.push(value(&exporter.scrape(), &age));
    }
    let rose = ages.windows(2).any(|w| w[1] > w[0]);
    let fell = ages.windows(2).any(|w| w[1] < w[0]);
    assert!(rose && fell, "the age should grow and reset: {ages:?}");
    assert!(
        ages.iter().all(|a| (0.0..3.0).contains(a)),
        "a 1 s interval keeps the breakdown young: {ages:?}"
    );
    // The dump's cost is exported too.
    assert!(
        value(
            &first,
            &format!("conntrack_breakdown_duration_seconds{{netns=\"{n}\"}}")
        ) > 0.0
    );
}

/// Metric names (`conntrack_*`, `process_*`, `up`) used in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    // Label matchers' values are strings: skip quoted text.
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '"') {
        rest = &rest[start..];
        if let Some(quoted) = rest.strip_prefix('"') {
            rest = quoted.split_once('"').map_or("", |(_, after)| after);
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        if word.starts_with("conntrack_") || word.starts_with("process_") {
            names.insert(word.to_owned());
        }
        rest = &rest[end..];
    }
    names
}

#[test]
fn alert_rules_and_dashboard_name_exported_metrics() {
    require_root!();
    let ns = ScratchNs::new("exporter-names");
    known_load(&ns);
    let exporter = Exporter::start(&[
        "--netns",
        &ns.name,
        "--top",
        "2",
        "--breakdown-interval",
        "0",
    ]);
    let top = format!(
        "conntrack_top_source_flows{{netns=\"{}\",address=\"other\"}}",
        ns.name
    );
    let m = exporter.scrape_until("the breakdown", |m| m.contains_key(&top));
    let exported: BTreeSet<String> = m
        .keys()
        .map(|k| k.split('{').next().unwrap().to_owned())
        .collect();

    let root = env!("CARGO_MANIFEST_DIR");
    let rules = std::fs::read_to_string(format!("{root}/examples/conntrack-alerts.yml")).unwrap();
    let mut used = BTreeSet::new();
    let mut alerts = 0;
    for line in rules.lines() {
        if let Some(expr) = line.trim().strip_prefix("expr:") {
            used.extend(metric_names(expr));
            alerts += 1;
        }
    }
    assert!(alerts >= 5, "{alerts} alert expressions");
    // The exporter-down alert is about the scrape job, not a namespace.
    assert!(rules.contains("alert: ConntrackExporterDown"));
    assert!(rules.contains("alert: ConntrackNamespaceUnreadable"));

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/examples/kubernetes/grafana-dashboard.json"))
            .unwrap(),
    )
    .unwrap();
    fn exprs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr" | "definition", serde_json::Value::String(s)) => {
                            out.push(s.clone())
                        }
                        _ => exprs(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
            _ => {}
        }
    }
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(queries.len() >= 8, "{} dashboard queries", queries.len());
    for query in &queries {
        let names = metric_names(query);
        assert!(!names.is_empty(), "a query without a metric: {query}");
        used.extend(names);
    }
    let unknown: Vec<&String> = used.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "not exported: {unknown:?}\nexported: {exported:?}"
    );
}

#[test]
fn the_kubernetes_manifest_is_valid() {
    // Offline: the Kubernetes API schemas of `kubernetes-validate` (strict:
    // unknown fields are errors), then what the exporter needs of the pod.
    // tests/deps.sh installs PyYAML and kubernetes-validate.
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/kubernetes/daemonset.yaml"
    ))
    .unwrap();
    python(
        r#"
import sys, yaml, kubernetes_validate
docs = [d for d in yaml.safe_load_all(sys.stdin.read()) if d]
assert [d["kind"] for d in docs] == ["DaemonSet"], [d["kind"] for d in docs]
for doc in docs:
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
pod = docs[0]["spec"]["template"]["spec"]
assert pod["hostNetwork"] is True and pod["hostPID"] is True
(container,) = pod["containers"]
args = container["args"]
assert "--all-namespaces" in args, args
listen = [a for a in args if a.startswith("--listen=")]
assert len(listen) == 1, args
port = int(listen[0].rsplit(":", 1)[1])
assert [p["containerPort"] for p in container["ports"]] == [port]
names = {p["name"]: p["containerPort"] for p in container["ports"]}
for probe in ("livenessProbe", "readinessProbe"):
    target = container[probe]["httpGet"]["port"]
    assert names.get(target, target) == port, (probe, target)
caps = set(container["securityContext"]["capabilities"]["add"])
assert {"NET_ADMIN", "SYS_ADMIN"} <= caps, caps
limits = container["resources"]["limits"]
assert "cpu" in limits and "memory" in limits, limits
mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
assert mounts["/run/netns"]["mountPropagation"] == "HostToContainer"
volumes = {v["name"]: v for v in pod["volumes"]}
assert volumes[mounts["/run/netns"]["name"]]["hostPath"]["path"] == "/run/netns"
"#,
        &manifest,
    );
}

/// Counts `conntrack_up` series whose label starts with `prefix`.
fn exported_with_prefix(m: &BTreeMap<String, f64>, prefix: &str) -> usize {
    m.keys()
        .filter(|k| k.starts_with(&format!("conntrack_up{{netns=\"{prefix}")))
        .count()
}

#[test]
fn a_namespace_that_appears_is_exported_after_the_background_discovery() {
    require_root!();
    // Two exporters of every namespace: one looks every 0.3 s, the other
    // once an hour. Scrapes never look themselves, so only the first one
    // finds a namespace made after both started.
    let quick = Exporter::start(&["--all-namespaces", "--discovery-interval", "0.3"]);
    let slow = Exporter::start(&["--all-namespaces", "--discovery-interval", "3600"]);
    let slow_age = value(&slow.scrape(), "conntrack_exporter_discovery_age_seconds");
    let ns = ScratchNs::new("exporter-late");
    known_load(&ns);
    let entries = format!("conntrack_entries{{netns=\"{}\"}}", ns.name);
    let m = quick.scrape_until("the new namespace", |m| m.contains_key(&entries));
    assert_eq!(value(&m, &entries), 650.0);
    let age = value(&m, "conntrack_exporter_discovery_age_seconds");
    assert!((0.0..5.0).contains(&age), "discovery age {age}");
    assert!(m.contains_key("conntrack_exporter_discovery_duration_seconds"));
    // Its breakdown follows, from the handle the discovery opened.
    let udp = format!("conntrack_flows{{netns=\"{}\",protocol=\"udp\"}}", ns.name);
    quick.scrape_until("its breakdown", |m| m.get(&udp) == Some(&200.0));
    for _ in 0..5 {
        let m = slow.scrape();
        assert!(
            !m.contains_key(&entries),
            "a scrape looked for namespaces: {m:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = slow.scrape();
    assert!(
        value(&m, "conntrack_exporter_discovery_age_seconds") > slow_age,
        "the hourly discovery has not run again"
    );
    // Gone: no longer exported at the next scrape, whatever the interval.
    drop(ns);
    for exporter in [&quick, &slow] {
        let m = exporter.scrape();
        assert!(!m.contains_key(&entries), "{m:#?}");
        assert_eq!(value(&m, r#"conntrack_up{netns="host"}"#), 1.0);
    }
    // Without --all-namespaces the interval means nothing: a usage error.
    let out = Command::new(example_binary("exporter"))
        .args(["--discovery-interval", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn scrapes_never_wait_for_the_discovery() {
    require_root!();
    let namespaces: Vec<ScratchNs> = (0..30).map(|_| ScratchNs::new("exporter-many")).collect();
    let prefix = namespaces[0]
        .name
        .rsplit_once('-')
        .map(|(prefix, _)| format!("{prefix}-"))
        .unwrap();
    // Discovery all the time (every 0.1 s: a scan of /proc each).
    let exporter = Exporter::start(&["--all-namespaces", "--discovery-interval", "0.1"]);
    // Namespaces come and go meanwhile: the discovery opens and drops handles.
    let churn = std::thread::spawn(|| {
        for _ in 0..5 {
            let ns = ScratchNs::new("exporter-churn");
            std::thread::sleep(Duration::from_millis(300));
            drop(ns);
        }
    });
    let started = Instant::now();
    let mut took = Vec::new();
    while started.elapsed() < Duration::from_secs(4) {
        let scrape = Instant::now();
        let m = exporter.scrape();
        took.push(scrape.elapsed());
        assert_eq!(exported_with_prefix(&m, &prefix), 30, "{m:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    churn.join().unwrap();
    let slowest = took.iter().max().unwrap();
    assert!(
        *slowest < Duration::from_secs(1),
        "the slowest of {} scrapes took {slowest:?}",
        took.len()
    );
    assert!(took.len() >= 10, "{} scrapes", took.len());
}

#[test]
fn an_empty_table_is_never_dumped() {
    require_root!();
    let full = ScratchNs::new("exporter-full");
    known_load(&full);
    let empty = ScratchNs::new("exporter-empty");
    let exporter = Exporter::start(&[
        "--netns",
        &full.name,
        "--netns",
        &empty.name,
        "--breakdown-interval",
        "0",
    ]);
    let dumps =
        |ns: &ScratchNs| format!("conntrack_breakdown_dumps_total{{netns=\"{}\"}}", ns.name);
    let age = format!(
        "conntrack_breakdown_age_seconds{{netns=\"{}\"}}",
        empty.name
    );
    // Both namespaces are taken in turn (every 0.1 s): the full one is
    // dumped each time, the empty one only counted.
    let m = exporter.scrape_until("several breakdowns of both", |m| {
        m.get(&dumps(&full)).is_some_and(|n| *n >= 3.0) && m.contains_key(&age)
    });
    let flows_of_empty = format!("conntrack_flows{{netns=\"{}\"", empty.name);
    assert_eq!(value(&m, &dumps(&empty)), 0.0, "{m:#?}");
    assert!(value(&m, &age) < 2.0, "the empty one is looked at too");
    assert!(
        !m.keys().any(|k| k.starts_with(&flows_of_empty)),
        "no flows without a dump: {m:#?}"
    );
    assert_eq!(
        value(
            &m,
            &format!(
                "conntrack_orphan_flows{{netns=\"{}\",category=\"idle_established\"}}",
                empty.name
            )
        ),
        0.0
    );
    // One flow in it: from then on it is dumped like any other.
    let mut ct = empty.conntrack();
    let orig = Tuple::udp(([10, 1, 1, 1], 5000), ([10, 1, 1, 2], 53));
    ct.create(&FlowSpec::new(orig).timeout(100)).unwrap();
    let udp = format!(
        "conntrack_flows{{netns=\"{}\",protocol=\"udp\"}}",
        empty.name
    );
    let m = exporter.scrape_until("a dump of the no longer empty one", |m| {
        m.get(&udp) == Some(&1.0)
    });
    assert!(value(&m, &dumps(&empty)) >= 1.0, "{m:#?}");
}

/// One reading of an exporter's breakdown counters: when, the dumps of the
/// namespace `dumps` names, the seconds spent on breakdowns.
fn breakdown_reading(exporter: &Exporter, dumps: &str) -> (Instant, f64, f64) {
    let m = exporter.scrape_until("a breakdown", |m| m.contains_key(dumps));
    (
        Instant::now(),
        value(&m, dumps),
        value(&m, "conntrack_exporter_breakdown_seconds_total"),
    )
}

/// Reads `exporter` until at least `seconds` passed and `dumps` more dumps
/// were made (a loaded machine makes dumps, and the pauses after them,
/// longer); the dumps made and the share of the wall time spent on them.
fn breakdown_share(exporter: &Exporter, dumps: &str, seconds: u64, at_least: f64) -> (f64, f64) {
    let first = breakdown_reading(exporter, dumps);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let last = breakdown_reading(exporter, dumps);
        let took = last.0.duration_since(first.0);
        if took >= Duration::from_secs(seconds) && last.1 - first.1 >= at_least {
            return (last.1 - first.1, (last.2 - first.2) / took.as_secs_f64());
        }
        assert!(Instant::now() < deadline, "too few dumps: {last:?}");
    }
}

#[test]
fn breakdowns_keep_to_the_budget() {
    require_root!();
    let ns = ScratchNs::new("exporter-budget");
    // Enough flows that a dump takes milliseconds on any machine.
    conntrack::testing::mix::create_mixed(&mut ns.conntrack(), 0..10_000);
    let start = |budget: &str| {
        Exporter::start(&[
            "--netns",
            &ns.name,
            "--breakdown-interval",
            "0",
            "--breakdown-budget",
            budget,
        ])
    };
    let dumps = format!("conntrack_breakdown_dumps_total{{netns=\"{}\"}}", ns.name);
    // Unpaced, a namespace is dumped every 0.1 s at most: what share of the
    // time does that take here?
    let unpaced = start("100");
    let (unpaced_dumps, unpaced_share) = breakdown_share(&unpaced, &dumps, 3, 5.0);
    drop(unpaced);
    // A budget a quarter of that: only the pacing can keep to it.
    let budget = (unpaced_share * 100.0 / 4.0).clamp(1.0, 25.0);
    let paced = start(&format!("{budget:.2}"));
    let (paced_dumps, paced_share) = breakdown_share(&paced, &dumps, 6, 3.0);
    let context = format!(
        "budget {budget:.2} %: {paced_dumps} dumps, {:.2} % of the time; \
         unpaced: {unpaced_dumps} dumps, {:.2} %",
        paced_share * 100.0,
        unpaced_share * 100.0
    );
    eprintln!("{context}");
    assert!(
        unpaced_share * 100.0 >= 3.0 * budget,
        "dumps too quick to tell the budget (more flows?): {context}"
    );
    // Within the budget; a window of three dumps or more may catch one more
    // dump than its pauses pay for.
    assert!(paced_share * 100.0 <= 1.5 * budget, "{context}");
}

#[test]
fn orphans_without_a_socket_are_exported_as_confirmed() {
    require_root!();
    let ns = ScratchNs::new("exporter-confirmed");
    // 20 idle flows between addresses of no namespace: suspected.
    known_load(&ns);
    let mut ct = ns.conntrack();
    let established = common::established_timeout(&ns);
    let idle_two_hours = |orig: Tuple| {
        FlowSpec::new(orig)
            .tcp_state(TcpState::Established)
            .status(Status::SEEN_REPLY | Status::ASSURED)
            .timeout(established - 7200)
    };
    // Idle two hours between local addresses, to ports nothing listens on:
    // no socket at either end, so certainly dead.
    let localhost = IpAddr::from([127, 0, 0, 1]);
    for port in [40001, 40002, 40003] {
        ct.create(&idle_two_hours(Tuple::tcp(
            (localhost, port),
            (localhost, 5999),
        )))
        .unwrap();
    }
    let v6_localhost = IpAddr::from(Ipv6Addr::LOCALHOST);
    ct.create(&idle_two_hours(Tuple::tcp(
        (v6_localhost, 40004),
        (v6_localhost, 5999),
    )))
    .unwrap();
    // A real connection made to look idle the same way: its sockets are
    // there, so it is alive, no orphan at all.
    let (listener, client, server) = ns.run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (listener, client, server)
    });
    let live = Tuple::tcp(
        (localhost, client.local_addr().unwrap().port()),
        (localhost, listener.local_addr().unwrap().port()),
    );
    ct.update(&FlowSpec::new(live).timeout(established - 7200))
        .unwrap();

    let exporter = Exporter::start(&["--netns", &ns.name, "--breakdown-interval", "0"]);
    let n = ns.name.as_str();
    let confirmed =
        format!("conntrack_orphan_evidence_flows{{netns=\"{n}\",evidence=\"confirmed\"}}");
    let m = exporter.scrape_until("the breakdown", |m| m.contains_key(&confirmed));
    assert_eq!(value(&m, &confirmed), 4.0, "{m:#?}");
    assert_eq!(
        value(
            &m,
            &format!("conntrack_orphan_evidence_flows{{netns=\"{n}\",evidence=\"suspected\"}}")
        ),
        20.0
    );
    assert_eq!(
        value(
            &m,
            &format!("conntrack_orphan_flows{{netns=\"{n}\",category=\"idle_established\"}}")
        ),
        24.0,
        "the live connection is not an orphan"
    );
    drop((client, server, listener));
}

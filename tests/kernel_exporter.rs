// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `exporter` example against the real kernel: started on a loopback port,
//! scraped over HTTP, its metrics parsed and checked against a namespace with a
//! known load; bad requests get 400/404/405 and the exporter keeps serving.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use common::{example_binary, known_load, TestNs};
use conntrack::{FlowSpec, Tuple};

/// The exporter process, killed when dropped.
struct Exporter {
    child: Child,
    address: String,
}

impl Exporter {
    fn start(args: &[&str]) -> Exporter {
        let mut child = Command::new(example_binary("exporter"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the exporter");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Exporter { child, address }
    }

    /// Sends `request` as is; returns the status code, the head and the body.
    fn raw(&self, request: &str) -> (u16, String, String) {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no head in {response:?}"));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        (status, head.to_owned(), body.to_owned())
    }

    fn get(&self, path: &str) -> (u16, String, String) {
        self.raw(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.address
        ))
    }

    /// One scrape, as `name{labels}` → value.
    fn scrape(&self) -> BTreeMap<String, f64> {
        let (status, head, body) = self.get("/metrics");
        assert_eq!(status, 200, "{head}\n{body}");
        assert!(head.contains("application/openmetrics-text"), "{head}");
        assert!(body.ends_with("# EOF\n"), "{body}");
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                (series.to_owned(), value.parse().unwrap())
            })
            .collect()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn value(metrics: &BTreeMap<String, f64>, series: &str) -> f64 {
    *metrics
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {metrics:#?}"))
}

#[test]
fn metrics_match_a_known_load() {
    require_root!();
    let ns = TestNs::new("exporter");
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
    let m = exporter.scrape();
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
    assert_eq!(
        value(
            &m,
            r#"conntrack_exporter_scrape_errors_total{netns="ctrs-no-such-namespace"}"#
        ),
        1.0
    );

    // Changes show at the next scrape; counters only go up.
    let mut ct = ns.conntrack();
    for i in 1..=10u8 {
        let orig = Tuple::udp(([10, 9, 0, 2], 60000 + u16::from(i)), ([192, 0, 2, 54], 53));
        ct.create(&FlowSpec::new(orig).timeout(100)).unwrap();
    }
    ns.send_invalid_tcp_segments(25);
    let m = exporter.scrape();
    let s = |series: &str| value(&m, &series.replace("NS", n));
    assert_eq!(s(r#"conntrack_entries{netns="NS"}"#), 660.0);
    assert_eq!(s(r#"conntrack_flows{netns="NS",protocol="udp"}"#), 210.0);
    assert_eq!(s(r#"conntrack_insert_total{netns="NS"}"#), 660.0);
    assert!(s(r#"conntrack_invalid_total{netns="NS"}"#) >= 25.0);
    assert_eq!(
        value(
            &m,
            r#"conntrack_exporter_scrape_errors_total{netns="ctrs-no-such-namespace"}"#
        ),
        2.0
    );
}

#[test]
fn bad_requests_are_answered_and_the_exporter_keeps_serving() {
    require_root!();
    let ns = TestNs::new("exporter-http");
    let exporter = Exporter::start(&["--netns", &ns.name]);
    let (status, head, _) = exporter.raw("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET, HEAD"), "{head}");
    assert_eq!(exporter.get("/nope").0, 404);
    assert_eq!(exporter.get("/metrics/../etc/passwd").0, 404);
    assert_eq!(exporter.raw("garbage\r\n\r\n").0, 400);
    assert_eq!(exporter.raw("GET /metrics SMTP/2\r\n\r\n").0, 400);
    // A head larger than the limit.
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(exporter.raw(&huge).0, 400);
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
    let ns = TestNs::new("exporter-all");
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
    let ns = TestNs::new("exporter-again");
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
    common::run("ip", &["netns", "add", &name]);
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

// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `gc` command lines of the issue "A filter never selects more than it
//! says", each run with `--yes` (where it has one) on a table that also holds
//! flows the command must spare, and the table checked afterwards:
//!
//! * `gc --mark 7/0 --yes`: a value with bits outside its mask can never
//!   match: a usage error, nothing deleted (not "mark & 0 == 7, ignore it");
//! * `gc --mark 0/0 --yes`: a zero mask is no condition, so no filter at all:
//!   a usage error (gc never empties a table), nothing deleted;
//! * `gc --limit 0 -p tcp --yes`: deletes nothing (not "no limit");
//! * `gc --dport 53 --yes` (no `-p`): the flows of the port protocols to port
//!   53, never a GRE flow whose key is 0x35 (GRE keys sit where ports would);
//! * `gc --family ipv4 -s 2001:db8:1::1 --yes`: a contradiction, refused with
//!   a message naming both, never the kernel's `EINVAL`, nothing deleted;
//! * `gc --dport 100-50`: a reversed range, a usage error naming `--dport`.

mod common;

use std::collections::BTreeSet;

use common::{run_tool_in, v4, ScratchNs, ToolRun};
use conntrack::{proto, FlowSpec, Status, TcpState, Tuple};

fn v6(text: &str) -> std::net::IpAddr {
    text.parse().expect("an IPv6 address")
}

/// What a flow is for these tests: its original tuple and zone.
type Key = (Tuple, Option<u16>);

/// The flows of every case, by name.
fn flows() -> Vec<(&'static str, FlowSpec)> {
    let tcp = |sport, dport| {
        FlowSpec::new(Tuple::tcp(
            (v4(10, 1, 0, 1), sport),
            (v4(10, 1, 0, 2), dport),
        ))
        .timeout(600)
        .tcp_state(TcpState::Established)
        .status(Status::SEEN_REPLY | Status::ASSURED)
    };
    let udp = |sport, dport| {
        FlowSpec::new(Tuple::udp(
            (v4(10, 1, 0, 1), sport),
            (v4(10, 1, 0, 3), dport),
        ))
        .timeout(600)
    };
    vec![
        ("tcp to 53", tcp(40000, 53).mark(7)),
        ("tcp to 80", tcp(40001, 80).mark(7)),
        ("tcp from 53", tcp(53, 8053)),
        ("udp to 53", udp(40000, 53)),
        ("udp to 80", udp(40001, 80).mark(7)),
        ("udp from 53", udp(53, 5353)),
        (
            "udp to 53, ipv6, from 2001:db8:1::1",
            FlowSpec::new(Tuple::udp(
                (v6("2001:db8:1::1"), 40000),
                (v6("2001:db8:2::1"), 53),
            ))
            .timeout(600),
        ),
        (
            "sctp to 53",
            FlowSpec::new(Tuple::ports(
                proto::SCTP,
                v4(10, 1, 0, 1),
                40000,
                v4(10, 1, 0, 4),
                53,
            ))
            .timeout(600),
        ),
        (
            "gre with key 0x35",
            FlowSpec::new(Tuple::ports(
                proto::GRE,
                v4(10, 1, 0, 1),
                0x35,
                v4(10, 1, 0, 5),
                0x35,
            ))
            .timeout(600),
        ),
        (
            "gre with key 0x35, ipv6",
            FlowSpec::new(Tuple::ports(
                proto::GRE,
                v6("2001:db8:1::1"),
                1,
                v6("2001:db8:2::1"),
                0x35,
            ))
            .timeout(600)
            .mark(7),
        ),
        (
            "icmp",
            FlowSpec::new(Tuple::icmp(v4(10, 1, 0, 1), v4(10, 1, 0, 6), 53, 8, 0)).timeout(600),
        ),
        (
            "generic",
            FlowSpec::new(Tuple::generic(253, v4(10, 1, 0, 1), v4(10, 1, 0, 7)))
                .timeout(600)
                .mark(7),
        ),
    ]
}

/// A namespace holding [`flows`].
fn filled(tag: &str) -> ScratchNs {
    let ns = ScratchNs::new(tag);
    let mut ct = ns.conntrack();
    for (name, spec) in flows() {
        ct.create(&spec)
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
    }
    assert_eq!(table(&ns).len(), flows().len(), "every flow created");
    ns
}

/// The flows of the namespace, by original tuple and zone.
fn table(ns: &ScratchNs) -> BTreeSet<Key> {
    ns.conntrack()
        .flows()
        .unwrap()
        .map(|f| {
            let f = f.unwrap();
            (f.orig, f.zone)
        })
        .collect()
}

/// The flows of [`flows`] whose names are not in `gone`.
fn all_but(gone: &[&str]) -> BTreeSet<Key> {
    let names: BTreeSet<&str> = flows().iter().map(|(name, _)| *name).collect();
    for name in gone {
        assert!(names.contains(name), "no flow {name:?} in the table");
    }
    flows()
        .into_iter()
        .filter(|(name, _)| !gone.contains(name))
        .map(|(_, spec)| (spec.orig, spec.zone))
        .collect()
}

fn describe(args: &[&str], run: &ToolRun) -> String {
    format!(
        "gc {}: exit {:?}, stdout {:?}, stderr {:?}",
        args.join(" "),
        run.code,
        run.stdout.trim(),
        run.stderr.trim()
    )
}

/// Runs `gc ARGS` in a fresh namespace holding [`flows`]; asserts a usage
/// error (exit status 2) whose message holds every one of `words` and never
/// the kernel's `EINVAL`, and that the table is untouched.
fn assert_refused(tag: &str, args: &[&str], words: &[&str]) {
    let ns = filled(tag);
    let run = run_tool_in(&ns, "gc", args);
    let what = describe(args, &run);
    assert_eq!(run.code, Some(2), "a usage error: {what}");
    for word in words {
        assert!(
            run.stderr.contains(word),
            "the message says {word:?}: {what}"
        );
    }
    for kernel_words in ["EINVAL", "Invalid argument", "malformed"] {
        assert!(!run.stderr.contains(kernel_words), "{what}");
    }
    assert_eq!(table(&ns), all_but(&[]), "nothing deleted: {what}");
}

#[test]
fn mark_7_under_mask_0_is_refused_and_deletes_nothing() {
    require_root!();
    // (mark & 0) is 0 for every flow: 7 can never match. Flows with mark 7
    // are there, in case the mask were dropped.
    assert_refused(
        "gcedge-m70",
        &["--mark", "7/0", "--yes"],
        &["mark 0x7/0x0", "outside the mask", "0x0/0x0"],
    );
}

#[test]
fn mark_0_under_mask_0_is_no_filter_and_deletes_nothing() {
    require_root!();
    // (mark & 0) == 0 holds for every flow: no condition, so no filter.
    assert_refused(
        "gcedge-m00",
        &["--mark", "0/0", "--yes"],
        &["no filter option", "never the whole table", "conntrack -F"],
    );
}

#[test]
fn limit_0_deletes_nothing() {
    require_root!();
    let ns = filled("gcedge-l0");
    let args = ["--limit", "0", "-p", "tcp", "--yes"];
    let run = run_tool_in(&ns, "gc", &args);
    let what = describe(&args, &run);
    assert_eq!(run.code, Some(0), "{what}");
    assert!(
        run.stdout.contains("matched=0 deleted=0"),
        "the report says nothing matched: {what}"
    );
    assert_eq!(table(&ns), all_but(&[]), "nothing deleted: {what}");
    // The same without the limit deletes the three TCP flows: the limit,
    // not the filter, spared them.
    let run = run_tool_in(&ns, "gc", &["-p", "tcp", "--yes"]);
    assert_eq!(
        run.code,
        Some(0),
        "{}",
        describe(&["-p", "tcp", "--yes"], &run)
    );
    assert_eq!(
        table(&ns),
        all_but(&["tcp to 53", "tcp to 80", "tcp from 53"])
    );
}

#[test]
fn dport_53_without_a_protocol_spares_gre_key_0x35() {
    require_root!();
    let ns = filled("gcedge-d53");
    let args = ["--dport", "53", "--yes"];
    let run = run_tool_in(&ns, "gc", &args);
    let what = describe(&args, &run);
    assert_eq!(run.code, Some(0), "{what}");
    let gone = [
        "tcp to 53",
        "udp to 53",
        "udp to 53, ipv6, from 2001:db8:1::1",
        "sctp to 53",
    ];
    assert!(
        run.stdout.contains(&format!("deleted={}", gone.len())),
        "{what}"
    );
    assert_eq!(
        table(&ns),
        all_but(&gone),
        "exactly the port protocols' flows to port 53 deleted: {what}"
    );
}

#[test]
fn family_ipv4_with_an_ipv6_source_is_refused_not_einval() {
    require_root!();
    // IPv4 flows (family alone) and IPv6 flows from 2001:db8:1::1 (source
    // alone) are there: dropping either condition would delete some.
    assert_refused(
        "gcedge-fam",
        &["--family", "ipv4", "-s", "2001:db8:1::1", "--yes"],
        &["family ipv4", "2001:db8:1::1", "cannot hold together"],
    );
}

#[test]
fn a_reversed_port_range_is_refused_naming_dport() {
    require_root!();
    assert_refused(
        "gcedge-rev",
        &["--dport", "100-50"],
        &["--dport", "100-50", "reversed", "50-100"],
    );
}

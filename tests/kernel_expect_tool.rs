// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `expect` tool against conntrack-tools on one table: expectations it
//! creates are listed by `conntrack -L expect` exactly as it lists them
//! itself; `get` finds one; `delete` and `flush` are dry runs unless `--yes`
//! and then remove exactly what they showed.

mod common;

use std::net::IpAddr;

use common::ScratchNs;
use conntrack::Tuple;

fn addr(last: u8) -> IpAddr {
    IpAddr::from([10, 5, 0, last])
}

/// Runs `expect --netns NS args`; returns (exit code, stdout, stderr).
fn expect(ns: &ScratchNs, args: &[&str]) -> (Option<i32>, String, String) {
    let run = common::run_tool_in(ns, "expect", args);
    (run.code, run.stdout, run.stderr)
}

/// Lines without their first field (the timeout ticks between two runs), sorted.
fn untimed(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_owned())
        .collect();
    lines.sort();
    lines
}

#[test]
fn the_expect_tool_creates_lists_gets_deletes_and_flushes_like_conntrack() {
    require_root!();
    let ns = ScratchNs::new("expect-tool");
    let mut ct = ns.conntrack();
    // Masters with the FTP helper (a helper-less master refuses expectations).
    for (client, port) in [(1, 40000), (3, 40001)] {
        ct.create(&common::ftp_master(Tuple::tcp(
            (addr(client), port),
            (addr(2), 21),
        )))
        .unwrap();
    }
    let create = |client: &str, master_sport: &str, extra: &[&str]| {
        let mut args = vec![
            "create",
            "--master-src",
            client,
            "--master-dst",
            "10.5.0.2",
            "--master-sport",
            master_sport,
            "--master-dport",
            "21",
            "-p",
            "tcp",
            "--src",
            client,
            "--dst",
            "10.5.0.2",
            "--timeout",
            "120",
        ];
        args.extend_from_slice(extra);
        expect(&ns, &args)
    };
    let (code, out, err) = create("10.5.0.1", "40000", &["--any-sport", "--dport", "50000"]);
    assert_eq!((code, out.as_str()), (Some(0), "created=1\n"), "{err}");
    let (code, _, err) = create(
        "10.5.0.3",
        "40001",
        &["--sport", "7000", "--dport", "50001", "--permanent"],
    );
    assert_eq!(code, Some(0), "{err}");
    // A master without a helper: the kernel's refusal, explained.
    let (code, _, err) = create("10.5.0.9", "40009", &["--any-sport", "--dport", "50009"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no such flow"), "{err}");

    let (code, listed, _) = expect(&ns, &["list"]);
    assert_eq!(code, Some(0));
    let theirs = ns.conntrack_cli(&["-L", "expect"]);
    assert_eq!(
        untimed(&listed),
        untimed(&theirs),
        "expect list vs conntrack -L expect"
    );
    assert_eq!(untimed(&listed).len(), 2);
    assert!(listed.contains("PERMANENT"), "{listed}");

    let tuple = [
        "-p", "tcp", "--src", "10.5.0.1", "--dst", "10.5.0.2", "--sport", "0", "--dport", "50000",
    ];
    let (code, got, _) = expect(&ns, &[&["get"][..], &tuple].concat());
    assert_eq!(code, Some(0));
    let expected: Vec<String> = untimed(&listed)
        .into_iter()
        .filter(|l| l.contains("src=10.5.0.1 "))
        .collect();
    assert_eq!(untimed(&got), expected);
    let (_, json, _) = expect(&ns, &[&["get"][..], &tuple, &["--json"]].concat());
    let value: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(value["helper"], "ftp", "{json}");

    // Delete: a dry run shows it and keeps it; --yes removes it.
    let (code, out, _) = expect(&ns, &[&["delete"][..], &tuple].concat());
    assert_eq!(code, Some(0));
    assert!(out.contains("deleted=0 (dry run"), "{out}");
    assert_eq!(untimed(&ns.conntrack_cli(&["-L", "expect"])).len(), 2);
    let (code, out, _) = expect(&ns, &[&["delete"][..], &tuple, &["--yes"]].concat());
    assert_eq!(code, Some(0));
    assert!(out.ends_with("deleted=1\n"), "{out}");
    assert_eq!(untimed(&ns.conntrack_cli(&["-L", "expect"])).len(), 1);
    let (code, _, err) = expect(&ns, &[&["get"][..], &tuple].concat());
    assert_eq!(code, Some(1), "gone: {err}");

    // Flush: a dry run lists what would go; --helper selects; --yes flushes.
    let (_, out, _) = expect(&ns, &["flush", "--helper", "sip"]);
    assert!(out.contains("0 would go"), "{out}");
    let (_, out, _) = expect(&ns, &["flush"]);
    assert!(out.contains("1 would go"), "{out}");
    assert_eq!(untimed(&ns.conntrack_cli(&["-L", "expect"])).len(), 1);
    let (code, out, _) = expect(&ns, &["flush", "--helper", "ftp", "--yes"]);
    assert_eq!((code, out.as_str()), (Some(0), "flushed=1\n"));
    assert!(untimed(&ns.conntrack_cli(&["-L", "expect"])).is_empty());
}

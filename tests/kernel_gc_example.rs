// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `gc` example's output against the real kernel: a closed pipe
//! (`gc --list --json | head`) ends it quietly with its own exit status;
//! `--orphans --list --json` prints each orphan's flow exactly as `dump
//! --json` prints it; a `--rate`-limited run shows its progress on a terminal
//! and nothing when stderr is piped.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::{Command, Output};

use common::{example_binary, v4, v6, ScratchNs};
use conntrack::sysctl::{Sysctl, Timeout};
use conntrack::{FlowSpec, Status, TcpState, Tuple};

/// A namespace with `n` of each: ESTABLISHED idle 2 h over IPv4 and IPv6,
/// unreplied UDP 300 s old, TIME_WAIT 90 s idle (orphans), and as many
/// flows that are not (recent ESTABLISHED, replied UDP). Returns the number
/// of orphans.
fn orphan_table(tag: &str, n: u16) -> (ScratchNs, usize) {
    let ns = ScratchNs::new(tag);
    // Unreplied UDP lives 30 s and TIME_WAIT 120 s by default: too short to
    // stay clear of a threshold, or to outlive a slow run.
    ns.sysctl("nf_conntrack_udp_timeout", "600");
    ns.sysctl("nf_conntrack_tcp_timeout_time_wait", "600");
    let timeouts = Sysctl::in_netns(ns.netns()).timeouts().unwrap();
    let established = timeouts.seconds(Timeout::TcpEstablished).unwrap();
    let time_wait = timeouts.seconds(Timeout::TcpTimeWait).unwrap();
    let replied = Status::SEEN_REPLY | Status::ASSURED;
    let mut ct = ns.conntrack();
    let mut orphans = 0;
    for i in 0..n {
        let (a, b) = ((i / 250) as u8, (i % 250) as u8 + 1);
        let port = 10_000 + i;
        let tcp = |src: IpAddr, dst: IpAddr, state, timeout| {
            FlowSpec::new(Tuple::tcp((src, port), (dst, 443)))
                .tcp_state(state)
                .status(replied)
                .timeout(timeout)
        };
        let specs = [
            (
                tcp(
                    v4(10, 1, a, b),
                    v4(192, 0, 2, 1),
                    TcpState::Established,
                    established - 7200,
                ),
                true,
            ),
            (
                tcp(
                    v6(i + 1),
                    v6(0xffff),
                    TcpState::Established,
                    established - 7200,
                ),
                true,
            ),
            (
                FlowSpec::new(Tuple::udp((v4(10, 2, a, b), port), (v4(192, 0, 2, 53), 53)))
                    .timeout(300),
                true,
            ),
            (
                tcp(
                    v4(10, 3, a, b),
                    v4(192, 0, 2, 2),
                    TcpState::TimeWait,
                    time_wait - 90,
                ),
                true,
            ),
            (
                tcp(
                    v4(10, 4, a, b),
                    v4(192, 0, 2, 3),
                    TcpState::Established,
                    established - 10,
                ),
                false,
            ),
            (
                FlowSpec::new(Tuple::udp((v4(10, 5, a, b), port), (v4(192, 0, 2, 53), 53)))
                    .status(replied)
                    .timeout(100),
                false,
            ),
        ];
        for (spec, orphan) in specs {
            ct.create(&spec)
                .unwrap_or_else(|e| panic!("create {spec:?}: {e}"));
            orphans += usize::from(orphan);
        }
    }
    (ns, orphans)
}

/// `gc --netns NS args | head -n LINES` in bash with `pipefail`: the exit
/// status is gc's unless gc succeeded.
fn gc_into_head(ns: &ScratchNs, args: &[&str], lines: usize) -> Output {
    let mut command = format!("'{}' --netns '{}'", example_binary("gc").display(), ns.name);
    for arg in args {
        command.push_str(&format!(" '{arg}'"));
    }
    Command::new("bash")
        .args([
            "-c",
            &format!("set -o pipefail; {command} | head -n {lines}"),
        ])
        .output()
        .unwrap()
}

#[test]
fn a_closed_pipe_ends_gc_quietly() {
    require_root!();
    // 3000 orphans, 4500 flows: far more output than a pipe holds.
    let (ns, orphans) = orphan_table("gc-pipe", 750);
    assert_eq!(orphans, 3000);
    let mut cases: Vec<(Vec<&str>, usize)> = Vec::new();
    let mut orphan_list = common::GC_ORPHAN_THRESHOLDS.to_vec();
    orphan_list.extend(["--list", "--json"]);
    cases.push((orphan_list, 3));
    cases.push((vec!["-p", "udp", "--list", "--json"], 1));
    cases.push((vec!["-p", "tcp", "--list"], 2));
    for (args, lines) in cases {
        let output = gc_into_head(&ns, &args, lines);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let context = format!(
            "gc {args:?} | head -n {lines}: {:?}\n{stderr}",
            output.status
        );
        // Not killed by SIGPIPE (141), no panic (101): the dry run went on
        // and succeeded.
        assert_eq!(output.status.code(), Some(0), "{context}");
        assert!(stderr.is_empty(), "{context}");
        assert_eq!(stdout.lines().count(), lines, "{context}\n{stdout}");
        if args.contains(&"--json") {
            for line in stdout.lines() {
                let object: serde_json::Value = serde_json::from_str(line).expect(line);
                assert!(object.get("flow").is_some() || object.get("family").is_some());
            }
        }
    }
    // The dry runs changed nothing.
    assert_eq!(ns.conntrack().count().unwrap(), 4500);
}

/// The key of a flow object: its original tuple and zone.
fn key_of(flow: &serde_json::Value) -> String {
    format!("{} {}", flow["orig"], flow["zone"])
}

#[test]
fn gc_lists_each_orphan_as_dump_json_prints_its_flow() {
    require_root!();
    let (ns, orphans) = orphan_table("gc-json", 40);
    let gc = |args: &[&str]| {
        let output = Command::new(example_binary("gc"))
            .args(["--netns", &ns.name])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let mut args = common::GC_ORPHAN_THRESHOLDS.to_vec();
    args.extend(["--list", "--json"]);
    let listed = gc(&args);
    let dumped = Command::new(example_binary("dump"))
        .args(["--netns", &ns.name, "--json"])
        .output()
        .unwrap();
    assert!(dumped.status.success(), "{dumped:?}");
    let dumped: BTreeMap<String, serde_json::Value> = String::from_utf8(dumped.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let flow: serde_json::Value = serde_json::from_str(line).expect(line);
            (key_of(&flow), flow)
        })
        .collect();
    assert_eq!(dumped.len(), orphans / 4 * 6, "every flow dumped");

    let mut compared = 0;
    for line in listed.lines() {
        let object: serde_json::Value = serde_json::from_str(line).expect(line);
        let Some(flow) = object.get("flow") else {
            // The report, last.
            assert_eq!(object["matched"], orphans, "{line}");
            continue;
        };
        assert!(
            object["orphan"].is_string() && object["evidence"].is_string(),
            "{line}"
        );
        let mut theirs = dumped
            .get(&key_of(flow))
            .unwrap_or_else(|| panic!("not in dump --json: {line}"))
            .clone();
        let mut ours = flow.clone();
        // The remaining timeout goes down between the two runs.
        let (a, b) = (
            ours["timeout"].as_u64().unwrap(),
            theirs["timeout"].as_u64().unwrap(),
        );
        assert!(a.abs_diff(b) <= 5, "timeouts {a} and {b}: {line}");
        ours["timeout"] = serde_json::Value::Null;
        theirs["timeout"] = serde_json::Value::Null;
        assert_eq!(ours, theirs, "gc --list --json and dump --json of one flow");
        compared += 1;
    }
    assert_eq!(compared, orphans, "{listed}");
}

#[test]
fn a_rate_limited_gc_shows_progress_on_a_terminal_only() {
    require_root!();
    let ns = ScratchNs::new("gc-progress");
    let fill = |ns: &ScratchNs| {
        let mut ct = ns.conntrack();
        for i in 0..400u16 {
            let orig = Tuple::udp(
                (v4(10, 6, (i / 250) as u8, (i % 250) as u8 + 1), 7000),
                (v4(192, 0, 2, 53), 53),
            );
            ct.create(&FlowSpec::new(orig).timeout(600)).unwrap();
        }
    };
    let args = ["-p", "udp", "--yes", "--rate", "200"];
    let gc = example_binary("gc");

    // On a terminal (script(1) gives gc a pty for stdout and stderr).
    fill(&ns);
    let command = format!(
        "'{}' --netns '{}' {}",
        gc.display(),
        ns.name,
        args.join(" ")
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        terminal.contains("\rgc: ") && terminal.contains("at up to 200/s: table 400 -> "),
        "no progress line on the terminal: {terminal:?}"
    );
    assert!(terminal.contains("deleted=400"), "{terminal:?}");

    // Piped: the report only, no progress.
    fill(&ns);
    let output = Command::new(&gc)
        .args(["--netns", &ns.name])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "progress on a pipe: {stderr:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("deleted=400"), "{stdout}");
    assert_eq!(ns.conntrack().count().unwrap(), 0);
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Snapshot and restore on the real kernel: a diverse table (every protocol
//! kind, IPv4 and IPv6, marks, zones, labels, a helper, an expected flow and
//! its master, source and destination NAT, sequence adjustment, fixed
//! timeouts, and real loopback traffic through a NAT hook) is saved with
//! `dump --json`, flushed, brought back with `restore`, and dumped again:
//! the same flows, field by field, apart from what the kernel sets itself
//! (timeout clock, id, use count, counters, timestamps). The same with
//! conntrack-tools' `-o extended` text, checked against conntrack-tools'
//! own listing before and after; and the per-flow failure report.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;

use common::{every_kind, example_binary, v4, ScratchNs};
use conntrack::{
    Conntrack, Flow, FlowSpec, Labels, NatTarget, SeqAdj, Status, Synproxy, TcpState, Tuple,
};

/// Flows by original tuple and zone, with what a restore cannot bring back
/// (the kernel sets it) cleared.
fn table(ct: &mut Conntrack) -> BTreeMap<(Tuple, Option<u16>), Flow> {
    ct.flows()
        .unwrap()
        .map(|flow| {
            let mut flow = flow.unwrap();
            flow.timeout = None;
            flow.id = None;
            flow.use_count = None;
            flow.counters_orig = None;
            flow.counters_reply = None;
            flow.timestamp = None;
            // Every flow created over ctnetlink has a SYN proxy state (zero).
            if flow.synproxy == Some(Synproxy::default()) {
                flow.synproxy = None;
            }
            ((flow.orig, flow.zone), flow)
        })
        .collect()
}

/// Creates the diverse table; returns the live loopback connection (its
/// flow must stay as it is while the test runs).
fn diverse_table(ns: &ScratchNs) -> (TcpStream, TcpStream) {
    // A NAT hook: traffic flows pass it (null bindings, *_NAT_DONE bits).
    ns.nft("add chain inet ctrs post { type nat hook postrouting priority 100 ; }");
    // Any rule using labels makes the kernel reserve label space.
    ns.nft("add rule inet ctrs in ct label 127 counter");
    let mut ct = ns.conntrack();
    let established = |spec: FlowSpec| {
        spec.timeout(3600)
            .tcp_state(TcpState::Established)
            .status(Status::SEEN_REPLY | Status::ASSURED)
    };
    let master = Tuple::tcp((v4(10, 2, 3, 1), 5001), (v4(10, 2, 3, 2), 21));
    let mut specs = vec![
        established(FlowSpec::new(master)),
        FlowSpec::new(Tuple::tcp((v4(10, 2, 3, 1), 5002), (v4(10, 2, 3, 2), 20)))
            .timeout(300)
            .tcp_state(TcpState::SynSent)
            .master(master),
        established(FlowSpec::new(Tuple::tcp(
            (v4(10, 0, 0, 1), 1112),
            (v4(10, 0, 0, 2), 80),
        )))
        .status(Status::SEEN_REPLY | Status::ASSURED | Status::FIXED_TIMEOUT)
        .labels(Labels::default().with(1).with(127)),
        established(FlowSpec::new(Tuple::tcp(
            (v4(10, 0, 0, 1), 1113),
            (v4(10, 0, 0, 2), 80),
        )))
        .seqadj(
            SeqAdj {
                correction_pos: 1000,
                offset_before: 4,
                offset_after: -2,
            },
            SeqAdj::default(),
        ),
        // Destination NAT to 10.9.9.9:8080, source NAT to 192.0.2.9:61000, both.
        established(FlowSpec::new(Tuple::tcp(
            (v4(10, 0, 1, 1), 2000),
            (v4(10, 0, 1, 2), 80),
        )))
        .dnat(NatTarget {
            addr: Some(v4(10, 9, 9, 9)),
            port: Some(8080),
        }),
        FlowSpec::new(Tuple::udp((v4(10, 0, 1, 1), 2001), (v4(10, 0, 1, 3), 53)))
            .timeout(60)
            .snat(NatTarget {
                addr: Some(v4(192, 0, 2, 9)),
                port: Some(61000),
            }),
        established(FlowSpec::new(Tuple::tcp(
            (v4(10, 0, 1, 1), 2002),
            (v4(10, 0, 1, 4), 443),
        )))
        .dnat(NatTarget {
            addr: Some(v4(10, 9, 9, 10)),
            port: None,
        })
        .snat(NatTarget {
            addr: Some(v4(192, 0, 2, 10)),
            port: None,
        }),
    ];
    // One flow of every kind the kernel tracks (marks, zones, labels, SCTP tags).
    specs.extend(every_kind());
    if std::path::Path::new("/sys/module/nf_conntrack_ftp").exists() {
        specs.push(common::ftp_master(Tuple::tcp(
            (v4(10, 2, 9, 1), 40000),
            (v4(10, 2, 9, 2), 21),
        )));
    }
    for spec in &specs {
        ct.create(spec)
            .unwrap_or_else(|e| panic!("create {spec:?}: {e}"));
    }
    // Real traffic over loopback: a TCP connection that stays open, and UDP.
    ns.run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.send_to(b"x", "127.0.0.1:9").unwrap();
        (client, server)
    })
}

fn restore(ns: &ScratchNs, args: &[&str]) -> (bool, String, String) {
    let run = common::run_tool_in(ns, "restore", args);
    (run.code == Some(0), run.stdout, run.stderr)
}

/// `conntrack -L -o FORMAT` lines, sorted, what ticks left out: the
/// timeout (`extended`: the fifth field; `save`: `-t N`) and the use count.
fn listing(ns: &ScratchNs, format: &str) -> Vec<String> {
    let mut lines: Vec<String> = ns
        .conntrack_cli(&["-L", "-o", format])
        .lines()
        .map(|line| {
            let mut fields: Vec<&str> = line.split_whitespace().collect();
            match fields.iter().position(|f| *f == "-t") {
                Some(at) => drop(fields.drain(at..at + 2)),
                // ipv4 2 tcp 6 TIMEOUT ...
                None => fields[4] = "T",
            }
            fields.retain(|f| !f.starts_with("use="));
            fields.join(" ")
        })
        .collect();
    lines.sort();
    lines
}

/// `conntrack -L -o extended`, as [`listing`] gives it.
fn conntrack_listing(ns: &ScratchNs) -> Vec<String> {
    listing(ns, "extended")
}

#[test]
fn a_table_saved_as_json_comes_back_flow_by_flow() {
    require_root!();
    let ns = ScratchNs::new("restore-json");
    let _connection = diverse_table(&ns);
    let mut ct = ns.conntrack();
    let before = table(&mut ct);
    assert!(before.len() >= 18, "the diverse table: {before:#?}");
    assert!(
        before
            .values()
            .any(|f| f.status.contains(Status::SRC_NAT_DONE)
                && !f.status.intersects(Status::SRC_NAT | Status::DST_NAT)),
        "a traffic flow with a null binding"
    );
    let dir = std::env::temp_dir().join(format!("ctrs-restore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("table.ndjson");
    let dump = Command::new(example_binary("dump"))
        .args(["--netns", &ns.name, "--json"])
        .output()
        .unwrap();
    assert!(dump.status.success());
    std::fs::write(&saved, &dump.stdout).unwrap();

    ct.flush().unwrap();
    assert_eq!(ct.count().unwrap(), 0);
    let (ok, out, err) = restore(&ns, &[saved.to_str().unwrap()]);
    assert!(ok, "restore: {out}{err}");
    assert!(
        out.starts_with(&format!(
            "read={} created={} invalid=0 failed=0",
            before.len(),
            before.len()
        )),
        "{out}{err}"
    );
    let after = table(&mut ct);
    for (key, want) in &before {
        let got = after
            .get(key)
            .unwrap_or_else(|| panic!("not restored: {want:?}"));
        assert_eq!(got, want, "restored flow differs");
    }
    assert_eq!(after.len(), before.len());

    // A second restore: every flow exists, each one reported, none changed.
    let (ok, out, err) = restore(&ns, &[saved.to_str().unwrap()]);
    assert!(!ok, "exit 1 when flows were not restored");
    assert!(
        out.contains(&format!("created=0 invalid=0 failed={}", before.len())),
        "{out}"
    );
    assert_eq!(
        err.lines().filter(|l| l.contains("File exists")).count(),
        before.len(),
        "{err}"
    );
    assert!(err.lines().all(|l| l.starts_with("line ")), "{err}");
    assert_eq!(table(&mut ct), after);

    // Into another zone, with a fixed timeout: a copy of the table.
    let (ok, out, err) = restore(
        &ns,
        &["--zone", "11", "--timeout", "77", saved.to_str().unwrap()],
    );
    assert!(ok, "{out}{err}");
    let moved: Vec<Flow> = ct
        .flows()
        .unwrap()
        .map(Result::unwrap)
        .filter(|f| f.zone == Some(11))
        .collect();
    assert_eq!(moved.len(), before.len());
    assert!(moved
        .iter()
        .all(|f| f.timeout.is_some_and(|t| (70..=77).contains(&t))));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_table_saved_by_conntrack_tools_comes_back_as_conntrack_tools_shows_it() {
    require_root!();
    let ns = ScratchNs::new("restore-text");
    let _connection = diverse_table(&ns);
    let before = conntrack_listing(&ns);
    let saved = ns.conntrack_cli(&["-L", "-o", "extended"]);
    let mut ct = ns.conntrack();
    ct.flush().unwrap();

    let dir = std::env::temp_dir().join(format!("ctrs-restore-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("table.txt");
    std::fs::write(&path, &saved).unwrap();
    let (ok, out, err) = restore(&ns, &[path.to_str().unwrap()]);
    assert!(ok, "restore: {out}{err}");
    assert_eq!(
        conntrack_listing(&ns),
        before,
        "conntrack -L after the restore"
    );

    // conntrack-tools reads back what it sees: a line of its own text per flow.
    let ours: Vec<Flow> = ct.flows().unwrap().map(Result::unwrap).collect();
    assert_eq!(ours.len(), before.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_flow_not_restored_is_reported_with_its_line() {
    require_root!();
    let ns = ScratchNs::new("restore-failures");
    let good = "ipv4     2 udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 \
                [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=0 use=1";
    let input = [
        "# a saved table",
        good,
        "",
        "ipv4     2 tcp      6 30 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2",
        good,
        "not a flow",
        // Offloaded flows have no timeout: nothing to create them with.
        "ipv4     2 tcp      6 ESTABLISHED src=10.0.0.3 dst=10.0.0.2 sport=1 dport=2 \
         src=10.0.0.2 dst=10.0.0.3 sport=2 dport=1 [OFFLOAD] mark=0 use=1",
    ]
    .join("\n");
    let mut child = Command::new(example_binary("restore"))
        .args(["--netns", &ns.name, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    stdin.write_all(b"\n\xff not utf-8\n").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{out}{err}");
    assert!(
        out.starts_with("read=3 created=1 invalid=4 failed=1"),
        "{out}{err}"
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 5, "{err}");
    for (line, says) in [
        ("line 4:", "has one tuple"),
        ("line 5:", "File exists"),
        ("line 6:", "unknown protocol"),
        ("line 7:", "needs a timeout"),
        ("line 8:", "not UTF-8"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(line) && l.contains(says)),
            "{line} {says}: {err}"
        );
    }
    assert_eq!(ns.conntrack().count().unwrap(), 1);

    // A dry run reads and checks, and creates nothing.
    let dir = std::env::temp_dir().join(format!("ctrs-restore-dry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.txt");
    std::fs::write(&path, good.replace("10.0.0.1", "10.0.0.9")).unwrap();
    let (ok, out, _) = restore(&ns, &["--dry-run", path.to_str().unwrap()]);
    assert!(
        ok && out.starts_with("read=1 created=1 invalid=0 failed=0"),
        "{out}"
    );
    assert_eq!(
        ns.conntrack().count().unwrap(),
        1,
        "a dry run creates nothing"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_conntrack_save_snapshot_comes_back_as_conntrack_r_brings_it_back() {
    require_root!();
    let source = ScratchNs::new("restore-save");
    let _connection = diverse_table(&source);
    let saved = source.conntrack_cli(&["-L", "-o", "save"]);
    // conntrack -R stops at the first line the kernel refuses: the expected
    // flow's `-u EXPECTED` (EBUSY: only a master makes a flow expected).
    let replayable: String = saved
        .lines()
        .filter(|l| !l.contains("-u EXPECTED"))
        .map(|l| format!("{l}\n"))
        .collect();
    let lines = replayable.lines().count();
    assert!(lines >= 18 && lines + 1 == saved.lines().count(), "{saved}");
    let dir = std::env::temp_dir().join(format!("ctrs-restore-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (all, some) = (dir.join("all.save"), dir.join("replayable.save"));
    std::fs::write(&all, &saved).unwrap();
    std::fs::write(&some, &replayable).unwrap();
    let (all, some) = (all.to_str().unwrap(), some.to_str().unwrap());

    // conntrack-tools replays its own file into one namespace...
    let theirs = ScratchNs::new("restore-save-cli");
    theirs.conntrack_cli(&["-R", some]);
    // ...and the restore tool reads the same file into another.
    let ours = ScratchNs::new("restore-save-ours");
    let (ok, out, err) = restore(&ours, &[some]);
    assert!(ok, "restore: {out}{err}");
    assert!(
        out.starts_with(&format!("read={lines} created={lines} invalid=0 failed=0")),
        "{out}{err}"
    );
    assert_eq!(listing(&ours, "save"), listing(&theirs, "save"), "-o save");
    assert_eq!(
        conntrack_listing(&ours),
        conntrack_listing(&theirs),
        "-o extended"
    );

    // The whole file: the expected flow comes back too (as a plain flow:
    // the save format names no master), every other one exists already.
    let (ok, out, err) = restore(&ours, &[all]);
    assert!(!ok, "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "read={} created=1 invalid=0 failed={lines}",
            lines + 1
        )),
        "{out}{err}"
    );
    assert!(listing(&ours, "save")
        .iter()
        .any(|l| l.contains("--sport 5002")));
    let _ = std::fs::remove_dir_all(&dir);
}

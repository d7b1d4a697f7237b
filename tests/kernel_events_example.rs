// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `events` example against `conntrack -E` on the same traffic in a
//! throwaway namespace, and its loss line against a forced overrun.

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{example_binary, ScratchNs};
use conntrack::{ExpectFlags, ExpectationSpec, FlowSpec, Status, TcpState, Tuple};

fn addr(c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 7, c, d))
}

/// Stops a listener and returns what it printed.
fn stop(mut child: Child) -> String {
    // SIGINT, as a user at a terminal would (conntrack prints its summary on stderr).
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(200));
    let _ = child.kill();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let _ = child.wait();
    out
}

/// The NEW and DESTROY lines, sorted, without the parts that are not the
/// same in both listeners' views (none expected: compared whole).
fn lines_of(text: &str, kind: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(kind))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    lines
}

/// The `events` example running with `args`, its output piped.
fn events_listener(args: &[&str]) -> Child {
    Command::new(example_binary("events"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Creates every flow, then deletes every flow (one NEW and one DESTROY
/// event each), and gives the listeners time to print them.
fn create_then_delete(ct: &mut conntrack::Conntrack, specs: &[FlowSpec]) {
    for spec in specs {
        ct.create(spec).unwrap();
    }
    for spec in specs {
        assert!(ct.delete(&spec.orig, 0, None).unwrap());
    }
    std::thread::sleep(Duration::from_millis(700));
}

/// Both listeners printed the same `count` NEW and `count` DESTROY lines.
fn same_new_and_destroy_lines(ours: &str, theirs: &str, count: usize) {
    for kind in ["[NEW]", "[DESTROY]"] {
        let (a, b) = (lines_of(ours, kind), lines_of(theirs, kind));
        assert_eq!(a.len(), count, "{kind}: {ours}");
        assert_eq!(a, b, "{kind} lines: events vs conntrack -E");
    }
}

#[test]
fn events_print_what_conntrack_e_prints() {
    require_root!();
    let ns = ScratchNs::new("eventsex");
    let conntrack = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "conntrack",
            "-E",
            "-e",
            "NEW,DESTROY",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run conntrack -E (apt install conntrack)");
    let ours = events_listener(&["--netns", &ns.name, "-e", "NEW,DESTROY"]);
    let json = events_listener(&[
        "--netns",
        &ns.name,
        "--json",
        "--event-mask=new,destroy",
        "-p",
        "udp",
    ]);
    std::thread::sleep(Duration::from_millis(700));
    let mut ct = ns.conntrack();
    let mut specs = Vec::new();
    for i in 0..10u8 {
        specs.push(
            FlowSpec::new(Tuple::tcp(
                (addr(0, i + 1), 1000 + u16::from(i)),
                (addr(1, 1), 443),
            ))
            .tcp_state(TcpState::Established)
            .status(Status::SEEN_REPLY | Status::ASSURED)
            .mark(u32::from(i))
            .timeout(300),
        );
        specs.push(FlowSpec::new(Tuple::udp((addr(2, i + 1), 2000), (addr(3, 1), 53))).timeout(60));
    }
    create_then_delete(&mut ct, &specs);
    let theirs = stop(conntrack);
    let ours = stop(ours);
    let json = stop(json);
    same_new_and_destroy_lines(&ours, &theirs, 20);
    // The JSON stream: the same events, filtered to UDP, each with the flow
    // object `dump --json` prints.
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 20, "{json}");
    assert_eq!(objects.iter().filter(|o| o["event"] == "new").count(), 10);
    assert_eq!(
        objects.iter().filter(|o| o["event"] == "destroy").count(),
        10
    );
    for object in &objects {
        assert_eq!(object["flow"]["protocol_name"], "udp", "{object}");
        assert_eq!(object["flow"]["orig"]["dst_port"], 53, "{object}");
    }
}

#[test]
fn a_forced_overrun_prints_the_loss_line_and_resyncs() {
    require_root!();
    let ns = ScratchNs::new("eventslost");
    // A tiny receive buffer and a reader that does not read: the pipe fills,
    // the tool blocks on its output, the kernel's queue for it overflows.
    let mut child = Command::new(example_binary("events"))
        .args([
            "--netns", &ns.name, "--buffer", "4096", "--resync", "-e", "NEW",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut ct = ns.conntrack();
    for i in 0..3000u32 {
        let spec = FlowSpec::new(Tuple::udp(
            (addr((i >> 8) as u8, i as u8), 3000),
            (addr(200, 1), 53),
        ))
        .timeout(120);
        ct.create(&spec).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    // Now read everything it has (it goes on until stopped).
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    std::thread::sleep(Duration::from_millis(1500));
    let _ = child.kill();
    let _ = child.wait();
    let text = reader.join().unwrap();
    let lost: Vec<&str> = text.lines().filter(|l| l.contains("[LOST]")).collect();
    assert!(
        !lost.is_empty(),
        "no loss line in {} lines",
        text.lines().count()
    );
    assert!(
        lost[0].contains("events dropped by the kernel"),
        "{:?}",
        lost[0]
    );
    // --resync: the start-up dump (empty table) and one after the loss that
    // sees the whole table.
    let resynced: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("[RESYNCED]"))
        .collect();
    assert!(resynced.len() >= 2, "{resynced:?}");
    assert_eq!(resynced[0], "[RESYNCED] 0 flows");
    assert!(
        text.lines().filter(|l| l.starts_with(" [RESYNC]")).count() > 0,
        "the resync after the loss lists flows"
    );
}

/// `events --expect` prints what `conntrack -E expect` prints, byte for byte,
/// for expectations of IPv4 and IPv6 masters, with flags and without;
/// `dump --expect` lists them as `conntrack -L expect`; `--with-expect
/// --json` carries both kinds of events.
#[test]
fn events_expect_prints_what_conntrack_e_expect_prints() {
    require_root!();
    let ns = ScratchNs::new("eventsexp");
    let listen = |program: &std::path::Path, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let events = example_binary("events");
    let theirs = listen(
        std::path::Path::new("ip"),
        &["netns", "exec", &ns.name, "conntrack", "-E", "expect"],
    );
    let ours = listen(&events, &["--netns", &ns.name, "--expect"]);
    let json = listen(&events, &["--netns", &ns.name, "--with-expect", "--json"]);
    std::thread::sleep(Duration::from_millis(700));

    let mut ct = ns.conntrack();
    let mut made = Vec::new();
    for (client, server, port, flags) in [
        (addr(8, 1), addr(8, 2), 50000, ExpectFlags::empty()),
        (addr(8, 3), addr(8, 4), 50001, ExpectFlags::PERMANENT),
        (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
            50002,
            ExpectFlags::empty(),
        ),
    ] {
        let master = Tuple::tcp((client, 40000), (server, 21));
        ct.create(&common::ftp_master(master)).unwrap();
        let tuple = Tuple::tcp((client, 0), (server, port));
        let spec = ExpectationSpec::new(master, tuple, 120).any_source_port();
        ct.create_expectation(&spec.flags(flags)).unwrap();
        made.push(tuple);
    }
    // The listing, without the first field (the timeout ticks between the two runs).
    let untimed = |text: &str| -> Vec<String> {
        let mut lines: Vec<String> = text
            .lines()
            .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_owned())
            .collect();
        lines.sort();
        lines
    };
    let listed = common::run_example("dump", &["--netns", &ns.name, "--expect"]);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    // conntrack lists one family at a time (IPv4 unless told).
    let cli =
        ns.conntrack_cli(&["-L", "expect"]) + &ns.conntrack_cli(&["-L", "expect", "-f", "ipv6"]);
    assert_eq!(
        untimed(&listed),
        untimed(&cli),
        "dump --expect vs conntrack -L expect"
    );
    ct.flush_expectations(None).unwrap();
    std::thread::sleep(Duration::from_millis(700));

    let (theirs, ours, json) = (stop(theirs), stop(ours), stop(json));
    let exact = |text: &str, kind: &str| -> Vec<String> {
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| l.trim_start().starts_with(kind))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    for kind in ["[NEW]", "[DESTROY]"] {
        let (a, b) = (exact(&ours, kind), exact(&theirs, kind));
        assert_eq!(a.len(), 3, "{kind}: {ours}");
        assert_eq!(a, b, "{kind} lines: events --expect vs conntrack -E expect");
    }
    assert!(ours.contains(" PERMANENT "), "{ours}");
    assert!(
        ours.contains("mask-src=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        "{ours}"
    );
    // JSON: the three masters' flow NEW events and the six expectation events.
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let expectations: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| !o["expectation"].is_null())
        .collect();
    assert_eq!(expectations.len(), 6, "{json}");
    assert_eq!(
        objects.iter().filter(|o| o["flow"].is_object()).count(),
        3,
        "{json}"
    );
    let first = &expectations[0];
    assert_eq!(first["event"], "new");
    assert_eq!(first["expectation"]["tuple"]["dst_port"], 50000, "{first}");
    assert_eq!(first["expectation"]["mask"]["src_port"], 0, "{first}");
    assert_eq!(first["expectation"]["helper"], "ftp", "{first}");
    assert_eq!(expectations[1]["expectation"]["flag_names"][0], "PERMANENT");
    assert_eq!(expectations[5]["event"], "destroy");
}

/// `events --labels` prints the lines of `conntrack -E -o labels` given the
/// same `connlabel.conf` (conntrack reads it in a private mount namespace:
/// `common::conntrack_with_connlabel_conf`).
#[test]
fn events_labels_print_what_conntrack_e_o_labels_prints() {
    require_root!();
    let ns = ScratchNs::new("eventsex-labels");
    // The kernel only stores labels in a namespace whose ruleset uses them.
    ns.nft("add rule inet ctrs out meta mark 0x7fffffff ct label set 127");
    let dir = std::env::temp_dir().join(format!("ctrs-events-labels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("connlabel.conf");
    std::fs::write(&conf, "0 blocked\n5 audited\n").unwrap();
    let conntrack = common::conntrack_with_connlabel_conf(
        &ns,
        &dir,
        true,
        &["-E", "-e", "NEW,DESTROY", "-o", "labels"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("run conntrack -E in a private mount namespace");
    let ours = events_listener(&[
        "--netns",
        &ns.name,
        "-e",
        "NEW,DESTROY",
        "--labels",
        "--labels-file",
        conf.to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_millis(700));
    let mut ct = ns.conntrack();
    let with = |bits: &[u32]| {
        bits.iter()
            .fold(conntrack::Labels::default(), |l, &b| l.with(b))
    };
    let specs: Vec<FlowSpec> = [&[0, 5][..], &[5, 9], &[127], &[]]
        .iter()
        .enumerate()
        .map(|(i, bits)| {
            let spec = FlowSpec::new(Tuple::udp((addr(4, 1), 3000 + i as u16), (addr(5, 1), 53)))
                .timeout(60);
            if bits.is_empty() {
                spec
            } else {
                spec.labels(with(bits))
            }
        })
        .collect();
    create_then_delete(&mut ct, &specs);
    let theirs = stop(conntrack);
    let ours = stop(ours);
    let _ = std::fs::remove_dir_all(&dir);
    same_new_and_destroy_lines(&ours, &theirs, 4);
    // The field ends the flow, before the part about who made the change.
    for field in [
        " labels=blocked,audited ",
        " labels=audited ",
        " mark=0 labels ",
    ] {
        assert!(
            ours.lines()
                .any(|line| line.contains(&format!("{field}[USERSPACE] "))),
            "a line with {field:?}:\n{ours}"
        );
    }
}

/// `--resync --json`: one `resync` object per flow (the flow object `dump
/// --json` prints), then the `resynced` line with the count, byte for byte;
/// with expectation events, the expectations' `resynced` line after it.
#[test]
fn json_resync_lines_carry_the_flows_and_their_count() {
    require_root!();
    let ns = ScratchNs::new("eventsresync");
    let mut ct = ns.conntrack();
    for i in 1..=3u8 {
        let spec = FlowSpec::new(Tuple::udp((addr(9, i), 4000), (addr(200, 1), 53))).timeout(120);
        ct.create(&spec).unwrap();
    }
    let listener = events_listener(&["--netns", &ns.name, "--json", "--resync", "--with-expect"]);
    std::thread::sleep(Duration::from_millis(700));
    let out = stop(listener);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    let mut sources = Vec::new();
    for line in &lines[..3] {
        let object: serde_json::Value = serde_json::from_str(line).expect(line);
        assert_eq!(object["event"], "resync", "{line}");
        let flow = conntrack::restore::parse_json(&object["flow"].to_string()).expect(line);
        sources.push(flow.orig.src);
    }
    sources.sort();
    assert_eq!(sources, [addr(9, 1), addr(9, 2), addr(9, 3)]);
    assert_eq!(lines[3], r#"{"event":"resynced","flows":3}"#);
    assert_eq!(lines[4], r#"{"event":"resynced","expectations":0}"#);
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `dump` example against the real kernel and the real `conntrack` tool:
//! its text output must equal `conntrack -L -o extended,id` line for line,
//! its `--json` must carry every field, and its `--stats-only` digest must
//! agree with the library's own dump.
//!
//! The example binary is the one cargo built next to this test
//! (`target/<profile>/examples/dump`); a plain `cargo test` builds it.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{v4, ScratchNs};
use conntrack::*;

fn v6(s: &str) -> IpAddr {
    s.parse::<Ipv6Addr>().unwrap().into()
}

/// `target/<profile>/examples/dump`, found from this test's own path
/// (`target/<profile>/deps/kernel_dump_example-<hash>`).
///
/// A plain `cargo test` builds examples, `cargo test --test kernel_dump_example`
/// does not: the first call then builds it with the cargo running this test
/// (`$CARGO`, same profile and target directory).
fn example_binary() -> PathBuf {
    common::example_binary("dump")
}

/// Runs the example with `args`, asserting success; returns stdout.
fn run_example(args: &[&str]) -> String {
    common::run_example("dump", args)
}

/// Flow specs covering every protocol, state and optional field the text
/// format shows. `phase` tells the two batches apart (before and after
/// accounting and timestamps are switched on), so their tuples differ.
fn specs(phase: u8) -> Vec<FlowSpec> {
    let p = phase;
    let tcp = |sport: u16, state: TcpState| {
        FlowSpec::new(Tuple::tcp((v4(10, p, 0, 1), sport), (v4(10, p, 0, 2), 80)))
            .timeout(3600)
            .tcp_state(state)
    };
    let sctp = |sport: u16, state: SctpState, tags: (u32, u32)| {
        FlowSpec::new(Tuple::ports(
            proto::SCTP,
            v4(10, p, 1, 1),
            sport,
            v4(10, p, 1, 2),
            3868,
        ))
        .timeout(3600)
        .protoinfo(ProtoInfo::Sctp(SctpInfo {
            state: Some(state),
            vtag_orig: Some(tags.0),
            vtag_reply: Some(tags.1),
        }))
    };
    let ip6 = |host: u16| v6(&format!("2001:db8:{p}::{host:x}"));

    // Directional zones: the zone sits on one tuple only.
    let orig_zoned = {
        let mut orig = Tuple::udp((v4(10, p, 2, 1), 4000), (v4(10, p, 2, 2), 4001));
        orig.zone = Some(5);
        let mut reply = orig.reversed();
        reply.zone = None;
        FlowSpec::new(orig).reply(reply).timeout(3600)
    };
    let reply_zoned = {
        let orig = Tuple::udp((v4(10, p, 2, 1), 4002), (v4(10, p, 2, 2), 4003));
        let mut reply = orig.reversed();
        reply.zone = Some(6);
        FlowSpec::new(orig).reply(reply).timeout(3600)
    };
    // As NAT would make it: the reply comes from another address and port.
    let natted = FlowSpec::new(Tuple::tcp((v4(10, p, 3, 1), 5001), (v4(10, p, 3, 2), 20)))
        .reply(Tuple::tcp(
            (v4(192, 168, p, 9), 2020),
            (v4(10, p, 3, 1), 5001),
        ))
        .timeout(3600)
        .tcp_state(TcpState::Established)
        .status(Status::SEEN_REPLY | Status::ASSURED | Status::SEQ_ADJUST)
        .seqadj(
            SeqAdj {
                correction_pos: 1000,
                offset_before: -4,
                offset_after: 12,
            },
            SeqAdj {
                correction_pos: 2000,
                offset_before: 3,
                offset_after: -7,
            },
        );

    vec![
        tcp(1000, TcpState::Established)
            .status(Status::SEEN_REPLY | Status::ASSURED)
            .mark(0x42),
        tcp(1001, TcpState::SynSent),
        tcp(1002, TcpState::SynRecv).status(Status::SEEN_REPLY),
        tcp(1003, TcpState::FinWait).status(Status::SEEN_REPLY | Status::ASSURED),
        tcp(1004, TcpState::CloseWait).status(Status::SEEN_REPLY | Status::ASSURED),
        tcp(1005, TcpState::LastAck).status(Status::SEEN_REPLY),
        tcp(1006, TcpState::TimeWait).status(Status::SEEN_REPLY | Status::ASSURED),
        tcp(1007, TcpState::Close).mark(u32::MAX),
        tcp(1008, TcpState::SynSent2),
        tcp(1009, TcpState::Established)
            .status(Status::SEEN_REPLY | Status::ASSURED)
            .zone(3)
            .labels(Labels::default().with(0).with(127)),
        FlowSpec::new(Tuple::tcp((ip6(1), 2222), (ip6(2), 443)))
            .timeout(3600)
            .tcp_state(TcpState::Established)
            .status(Status::SEEN_REPLY | Status::ASSURED),
        FlowSpec::new(Tuple::tcp(
            (v6(&format!("::{p}.2.3.4")), 2223),
            (v6("fe80::1"), 443),
        ))
        .timeout(3600)
        .tcp_state(TcpState::SynSent),
        FlowSpec::new(Tuple::udp((v4(10, p, 4, 1), 5353), (v4(10, p, 4, 2), 53))).timeout(3600),
        FlowSpec::new(Tuple::udp(
            (v6(&format!("::ffff:10.{p}.4.1")), 5353),
            (ip6(3), 53),
        ))
        .timeout(3600)
        .status(Status::SEEN_REPLY)
        .zone(7)
        .mark(9),
        FlowSpec::new(Tuple::ports(
            proto::UDPLITE,
            v4(10, p, 5, 1),
            7000,
            v4(10, p, 5, 2),
            7001,
        ))
        .timeout(3600),
        FlowSpec::new(Tuple::ports(proto::UDPLITE, ip6(4), 7002, ip6(5), 7003))
            .timeout(3600)
            .status(Status::SEEN_REPLY | Status::ASSURED),
        FlowSpec::new(Tuple::icmp(v4(10, p, 6, 1), v4(10, p, 6, 2), 77, 8, 0)).timeout(3600),
        FlowSpec::new(Tuple::icmp(ip6(6), ip6(7), 78, 128, 0))
            .timeout(3600)
            .status(Status::SEEN_REPLY),
        sctp(3868, SctpState::Established, (0x1111_2222, 0x3333_4444)),
        sctp(3869, SctpState::CookieWait, (1, 0)).mark(3),
        sctp(3870, SctpState::HeartbeatSent, (7, 8)).status(Status::SEEN_REPLY),
        FlowSpec::new(Tuple::ports(
            proto::GRE,
            v4(10, p, 7, 1),
            0x10,
            v4(10, p, 7, 2),
            0xbeef,
        ))
        .timeout(3600),
        FlowSpec::new(Tuple::generic(253, v4(10, p, 8, 1), v4(10, p, 8, 2)))
            .timeout(3600)
            .labels(Labels::default().with(1).with(70)),
        FlowSpec::new(Tuple::generic(253, ip6(8), ip6(9)))
            .timeout(3600)
            .zone(9)
            .mark(0xffff_ffff),
        orig_zoned,
        reply_zoned,
        natted,
    ]
}

/// A namespace holding the varied table: a first batch without, a second
/// with accounting and timestamps; labels enabled by a ruleset that uses them.
fn populated_namespace(tag: &str) -> (ScratchNs, Conntrack) {
    let ns = ScratchNs::new(tag);
    // The kernel only stores labels in a namespace whose ruleset uses them.
    ns.nft("add rule inet ctrs out meta mark 0x7fffffff ct label set 127");
    let mut ct = ns.conntrack();
    for phase in [1, 2] {
        if phase == 2 {
            ns.sysctl("nf_conntrack_acct", "1");
            ns.sysctl("nf_conntrack_timestamp", "1");
        }
        for spec in specs(phase) {
            ct.create(&spec)
                .unwrap_or_else(|e| panic!("create {:?}: {e}", spec.orig));
        }
    }
    // A flow from an expectation: related to an existing master flow.
    let master = Tuple::tcp((v4(10, 2, 3, 1), 5000), (v4(10, 2, 3, 2), 21));
    ct.create(
        &FlowSpec::new(master)
            .timeout(3600)
            .tcp_state(TcpState::Established),
    )
    .unwrap();
    ct.create(
        &FlowSpec::new(Tuple::tcp((v4(10, 2, 3, 1), 5002), (v4(10, 2, 3, 2), 20)))
            .timeout(3600)
            .tcp_state(TcpState::SynSent)
            .master(master),
    )
    .unwrap();
    // A helper, when the kernel has the FTP helper.
    if std::path::Path::new("/sys/module/nf_conntrack_ftp").exists() {
        ct.create(&common::ftp_master(Tuple::tcp(
            (v4(10, 2, 9, 1), 40000),
            (v4(10, 2, 9, 2), 21),
        )))
        .expect("create a flow with the ftp helper");
    }
    (ns, ct)
}

/// Sockets kept open so their flows stay put while the table is compared.
struct Traffic {
    _sockets: (TcpListener, TcpStream, TcpStream, UdpSocket, UdpSocket),
}

/// Real traffic in the namespace (after accounting is on): one TCP
/// connection with data both ways, one UDP exchange over IPv6.
fn traffic(ns: &ScratchNs) -> Traffic {
    let sockets = ns.run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        client.write_all(b"hello").unwrap();
        server.read_exact(&mut buf[..5]).unwrap();
        server.write_all(b"world!").unwrap();
        client.read_exact(&mut buf[..6]).unwrap();

        let a = UdpSocket::bind("[::1]:0").unwrap();
        let b = UdpSocket::bind("[::1]:0").unwrap();
        a.send_to(&[1; 40], b.local_addr().unwrap()).unwrap();
        let (n, from) = b.recv_from(&mut buf).unwrap();
        b.send_to(&buf[..n], from).unwrap();
        a.recv_from(&mut buf).unwrap();
        (listener, client, server, a, b)
    });
    // Let delayed ACKs go out before the table is compared.
    std::thread::sleep(Duration::from_millis(500));
    Traffic { _sockets: sockets }
}

/// A line with its ticking values (the timeout column and `delta-time=`)
/// replaced by placeholders, and those values. Spacing is kept as is.
fn mask(line: &str) -> (String, Vec<u64>) {
    let mut ticking = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut nonempty = 0;
    for word in line.split(' ') {
        let mut word = word.to_owned();
        if !word.is_empty() {
            nonempty += 1;
            // l3 name, l3 number, l4 name, l4 number, then the timeout.
            if nonempty == 5 && word.bytes().all(|b| b.is_ascii_digit()) {
                ticking.push(word.parse().unwrap());
                word = "<timeout>".into();
            } else if let Some(value) = word.strip_prefix("delta-time=") {
                ticking.push(value.parse().expect("delta-time is a number"));
                word = "delta-time=<delta>".into();
            }
        }
        words.push(word);
    }
    (words.join(" "), ticking)
}

/// Masked line -> the ticking values of each occurrence.
fn masked_multiset(text: &str) -> BTreeMap<String, Vec<Vec<u64>>> {
    let mut set: BTreeMap<String, Vec<Vec<u64>>> = BTreeMap::new();
    for line in text.lines() {
        let (masked, values) = mask(line);
        set.entry(masked).or_default().push(values);
    }
    for values in set.values_mut() {
        values.sort();
    }
    set
}

#[test]
fn text_output_equals_conntrack_cli() {
    require_root!();
    let (ns, mut ct) = populated_namespace("dumpex-text");
    let _traffic = traffic(&ns);
    let flows = ct.flows().unwrap().count();

    let cli = ns.conntrack_cli(&["-L", "-o", "extended,id"]);
    let ours = run_example(&["--netns", &ns.name, "--id"]);
    let (cli_set, our_set) = (masked_multiset(&cli), masked_multiset(&ours));

    assert_eq!(ours.lines().count(), flows, "one line per flow:\n{ours}");
    assert_eq!(cli.lines().count(), flows, "conntrack -L:\n{cli}");
    for (line, cli_values) in &cli_set {
        let our_values = our_set.get(line).unwrap_or_else(|| {
            panic!("conntrack printed\n  {line}\nwhich dump did not print; dump printed:\n{ours}")
        });
        assert_eq!(our_values.len(), cli_values.len(), "occurrences of {line}");
        // The ticking values may only have moved by a few seconds.
        for (ours, theirs) in our_values.iter().zip(cli_values) {
            assert_eq!(ours.len(), theirs.len(), "{line}");
            for (a, b) in ours.iter().zip(theirs) {
                assert!(a.abs_diff(*b) <= 3, "{line}: {ours:?} vs {theirs:?}");
            }
        }
    }
    assert_eq!(
        cli_set.keys().collect::<Vec<_>>(),
        our_set.keys().collect::<Vec<_>>()
    );

    // The table really exercised the format.
    for needle in [
        " tcp      6 ",
        " udp      17 ",
        " udplite  136 ",
        " icmp     1 ",
        " icmpv6   58 ",
        " sctp     132 ",
        " gre      47 ",
        " unknown  253 ",
        "ipv6     10 ",
        " SYN_SENT2 ",
        " TIME_WAIT ",
        " HEARTBEAT_SENT ",
        " COOKIE_WAIT ",
        " srckey=0x10 dstkey=0xbeef ",
        " type=8 code=0 id=77 ",
        " type=129 code=0 id=78 ",
        " [UNREPLIED] ",
        " [ASSURED] ",
        " zone=3 ",
        " zone-orig=5 ",
        " zone-reply=6 ",
        " mark=4294967295 ",
        " packets=0 bytes=0 ",
        " delta-time=",
        " src=::1.2.3.4 ",
        " src=::ffff:10.1.4.1 ",
        " src=192.168.2.9 ",
        " use=",
        " id=",
    ] {
        assert!(ours.contains(needle), "no {needle:?} in:\n{ours}");
    }
    // Real traffic shows non-zero counters.
    assert!(
        ours.lines()
            .any(|l| l.contains("dst=127.0.0.1") && !l.contains("packets=0 ")),
        "{ours}"
    );
    if std::path::Path::new("/sys/module/nf_conntrack_ftp").exists() {
        assert!(ours.contains(" helper=ftp "), "{ours}");
    }
    // Without --id, the lines are those of `conntrack -L -o extended`.
    let plain_cli = masked_multiset(&ns.conntrack_cli(&["-L", "-o", "extended"]));
    let plain_ours = masked_multiset(&run_example(&["--netns", &ns.name]));
    assert_eq!(
        plain_cli.keys().collect::<Vec<_>>(),
        plain_ours.keys().collect::<Vec<_>>()
    );
}

/// The keys every JSON object carries.
const JSON_KEYS: &[&str] = &[
    "family",
    "protocol",
    "protocol_name",
    "orig",
    "reply",
    "status",
    "status_flags",
    "timeout",
    "mark",
    "use",
    "id",
    "zone",
    "protoinfo",
    "counters_orig",
    "counters_reply",
    "timestamp",
    "labels",
    "helper",
    "secctx",
    "seqadj_orig",
    "seqadj_reply",
    "synproxy",
    "master",
    "event_timestamp",
];

fn json_tuple_matches(json: &serde_json::Value, tuple: &Tuple) {
    assert_eq!(json["src"], tuple.src.to_string());
    assert_eq!(json["dst"], tuple.dst.to_string());
    assert_eq!(json["protocol"], tuple.protocol);
    assert_eq!(json["src_port"].as_u64(), tuple.src_port().map(u64::from));
    assert_eq!(json["dst_port"].as_u64(), tuple.dst_port().map(u64::from));
    let icmp = match tuple.l4 {
        L4::Icmp {
            id,
            icmp_type,
            code,
        } => Some((u64::from(icmp_type), u64::from(code), u64::from(id))),
        _ => None,
    };
    assert_eq!(
        (
            json["icmp_type"].as_u64(),
            json["icmp_code"].as_u64(),
            json["icmp_id"].as_u64()
        ),
        (icmp.map(|i| i.0), icmp.map(|i| i.1), icmp.map(|i| i.2))
    );
    assert_eq!(json["zone"].as_u64(), tuple.zone.map(u64::from));
}

#[test]
fn json_lines_parse_and_carry_every_field() {
    require_root!();
    let (ns, mut ct) = populated_namespace("dumpex-json");
    let flows: Vec<Flow> = ct.flows().unwrap().collect::<Result<_>>().unwrap();
    let out = run_example(&["--netns", &ns.name, "--json"]);
    let objects: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(objects.len(), flows.len());

    let mut seen = std::collections::BTreeSet::new();
    for obj in &objects {
        let map = obj.as_object().expect("a JSON object per line");
        for key in JSON_KEYS {
            assert!(map.contains_key(*key), "no {key} in {obj}");
        }
        assert_eq!(map.len(), JSON_KEYS.len(), "unexpected keys in {obj}");
        let id = obj["id"].as_u64().expect("id") as u32;
        assert!(seen.insert(id), "id {id} twice");
        let flow = flows
            .iter()
            .find(|f| f.id.map(FlowId::value) == Some(id))
            .unwrap_or_else(|| panic!("no flow with id {id}"));

        let family = if flow.orig.is_ipv6() { "ipv6" } else { "ipv4" };
        assert_eq!(obj["family"], family);
        assert_eq!(obj["protocol"], flow.protocol());
        assert_eq!(obj["protocol_name"], proto::name(flow.protocol()));
        json_tuple_matches(&obj["orig"], &flow.orig);
        json_tuple_matches(&obj["reply"], &flow.reply);
        assert_eq!(obj["status"], flow.status.bits());
        let names: Vec<&str> = obj["status_flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let want: Vec<&str> = flow.status.iter_names().map(|(name, _)| name).collect();
        assert_eq!(names, want);
        assert!(names.contains(&"CONFIRMED"));
        let timeout = obj["timeout"].as_u64().expect("timeout") as u32;
        let ours = flow.timeout.unwrap();
        assert!(timeout.abs_diff(ours) <= 3, "timeout {timeout} vs {ours}");
        assert_eq!(obj["mark"].as_u64(), flow.mark.map(u64::from));
        assert_eq!(obj["use"].as_u64(), flow.use_count.map(u64::from));
        assert_eq!(obj["zone"].as_u64(), flow.zone.map(u64::from));
        match flow.protoinfo {
            Some(ProtoInfo::Tcp(tcp)) => {
                let j = &obj["protoinfo"]["tcp"];
                assert_eq!(j["state"], tcp.state.unwrap().name());
                assert_eq!(j["state_raw"], tcp.state.unwrap().raw());
                assert_eq!(j["wscale_orig"].as_u64(), tcp.wscale_orig.map(u64::from));
                assert_eq!(
                    j["flags_reply"].as_u64(),
                    tcp.flags_reply.map(|f| u64::from(f.0.bits()))
                );
            }
            Some(ProtoInfo::Sctp(sctp)) => {
                let j = &obj["protoinfo"]["sctp"];
                assert_eq!(j["state"], sctp.state.unwrap().name());
                assert_eq!(j["vtag_orig"].as_u64(), sctp.vtag_orig.map(u64::from));
                assert_eq!(j["vtag_reply"].as_u64(), sctp.vtag_reply.map(u64::from));
            }
            None => assert!(obj["protoinfo"].is_null()),
            Some(other) => panic!("unexpected protoinfo {other:?}"),
        }
        for (key, counters) in [
            ("counters_orig", flow.counters_orig),
            ("counters_reply", flow.counters_reply),
        ] {
            match counters {
                Some(c) => {
                    assert_eq!(obj[key]["packets"], c.packets);
                    assert_eq!(obj[key]["bytes"], c.bytes);
                }
                None => assert!(obj[key].is_null()),
            }
        }
        match flow.timestamp {
            Some(ts) => {
                assert_eq!(obj["timestamp"]["start"].as_u64(), ts.start);
                assert_eq!(obj["timestamp"]["stop"].as_u64(), ts.stop);
            }
            None => assert!(obj["timestamp"].is_null()),
        }
        let labels: Option<Vec<u64>> = obj["labels"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_u64().unwrap()).collect());
        assert_eq!(
            labels,
            flow.labels.map(|l| l.iter().map(u64::from).collect())
        );
        assert_eq!(obj["helper"].as_str(), flow.helper.as_deref());
        assert_eq!(obj["secctx"].as_str(), flow.secctx.as_deref());
        for (key, seqadj) in [
            ("seqadj_orig", flow.seqadj_orig),
            ("seqadj_reply", flow.seqadj_reply),
        ] {
            match seqadj {
                Some(s) => {
                    assert_eq!(obj[key]["correction_pos"], s.correction_pos);
                    assert_eq!(obj[key]["offset_before"], s.offset_before);
                    assert_eq!(obj[key]["offset_after"], s.offset_after);
                }
                None => assert!(obj[key].is_null()),
            }
        }
        let synproxy = flow
            .synproxy
            .expect("ctnetlink-created flows have synproxy");
        assert_eq!(obj["synproxy"]["isn"], synproxy.isn);
        match &flow.master {
            Some(master) => json_tuple_matches(&obj["master"], master),
            None => assert!(obj["master"].is_null()),
        }
        assert!(obj["event_timestamp"].is_null());
    }
    // The fields of the varied table did show up.
    let any = |f: &dyn Fn(&serde_json::Value) -> bool| objects.iter().any(f);
    assert!(any(&|o| o["labels"] == serde_json::json!([0, 127])));
    assert!(any(&|o| o["labels"] == serde_json::json!([1, 70])));
    assert!(any(&|o| o["protoinfo"]["sctp"]["vtag_orig"] == 0x1111_2222));
    assert!(any(
        &|o| o["orig"]["zone"] == 5 && o["reply"]["zone"].is_null()
    ));
    assert!(any(&|o| o["zone"] == 9 && o["mark"] == 0xffff_ffffu32));
    assert!(any(
        &|o| o["counters_orig"].is_object() && o["timestamp"].is_object()
    ));
    assert!(any(
        &|o| o["counters_orig"].is_null() && o["timestamp"].is_null()
    ));
    assert!(any(&|o| o["seqadj_orig"]["offset_before"] == -4));
    assert!(any(&|o| o["master"]["dst_port"] == 21
        && o["status_flags"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("EXPECTED"))));
    assert!(any(
        &|o| o["orig"]["icmp_type"] == 128 && o["family"] == "ipv6"
    ));
}

/// The `--stats-only` digest of `flows` without the timeouts, and the sum of
/// the timeouts.
fn digest_parts(flows: &[Flow]) -> (u64, u64) {
    let mut fixed = 0u64;
    let mut timeouts = 0u64;
    for f in flows {
        for port in [
            f.orig.src_port(),
            f.orig.dst_port(),
            f.reply.src_port(),
            f.reply.dst_port(),
        ] {
            fixed = fixed.wrapping_add(u64::from(port.unwrap_or(0)));
        }
        fixed = fixed.wrapping_add(u64::from(f.status.bits()));
        timeouts = timeouts.wrapping_add(u64::from(f.timeout.unwrap_or(0)));
    }
    (fixed, timeouts)
}

#[test]
fn stats_only_counts_and_digests_like_the_library() {
    require_root!();
    // No traffic here: every timeout only counts down, so the example's sum of
    // timeouts lies between the library's sums before and after it ran.
    let (ns, mut ct) = populated_namespace("dumpex-stats");
    let before: Vec<Flow> = ct.flows().unwrap().collect::<Result<_>>().unwrap();
    let out = run_example(&["--netns", &ns.name, "--stats-only"]);
    let after: Vec<Flow> = ct.flows().unwrap().collect::<Result<_>>().unwrap();

    let line = out.trim_end();
    assert_eq!(out.lines().count(), 1, "{out}");
    let (flows, digest) = line
        .strip_prefix("flows=")
        .and_then(|rest| rest.split_once(" digest="))
        .unwrap_or_else(|| panic!("unexpected output {out:?}"));
    let flows: usize = flows.parse().unwrap();
    let digest: u64 = digest.parse().unwrap();

    assert_eq!(flows, before.len());
    assert_eq!(after.len(), before.len());
    let (fixed_before, timeouts_before) = digest_parts(&before);
    let (fixed_after, timeouts_after) = digest_parts(&after);
    assert_eq!(fixed_before, fixed_after, "ports and status do not change");
    let timeouts = digest.wrapping_sub(fixed_before);
    assert!(
        (timeouts_after..=timeouts_before).contains(&timeouts),
        "timeouts in the digest: {timeouts}, library saw {timeouts_before} then {timeouts_after}"
    );
    // The sum really includes every part.
    assert!(fixed_before > 0 && timeouts_before >= 3000 * before.len() as u64);
}

#[test]
fn usage_errors_and_help() {
    let help = Command::new(example_binary())
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--stats-only"));
    for bad in [&["--bogus"][..], &["--netns"], &["--json", "--stats-only"]] {
        let out = Command::new(example_binary()).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty());
        assert!(!out.stderr.is_empty());
    }
    require_root!();
    let out = Command::new(example_binary())
        .args(["--netns", "ctrs-dumpex-no-such-namespace"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such network namespace"));
}

/// `dump`'s filter options select the flows `conntrack -L` selects with the
/// same options (compared by kernel id).
#[test]
fn filter_options_agree_with_conntrack_cli() {
    require_root!();
    let (ns, _ct) = populated_namespace("dumpfilter");
    let ids = |text: &str| -> std::collections::BTreeSet<u32> {
        text.lines()
            .filter_map(|line| line.rsplit_once("id=")?.1.trim().parse().ok())
            .collect()
    };
    let cases: &[&[&str]] = &[
        &["-p", "tcp"],
        &["-p", "udp", "--dport", "53"],
        &["-f", "ipv6"],
        &["-p", "tcp", "--state", "ESTABLISHED"],
        &["-s", "10.0.0.1"],
        &["-d", "198.51.100.0/24"],
        &["--mark", "0x1/0x1"],
        &["-m", "7"],
        &["--status", "ASSURED"],
        &["-u", "SEEN_REPLY", "-p", "udp"],
        &["--zone", "1"],
        &["-p", "icmp"],
    ];
    let mut nonempty = 0;
    for options in cases {
        let mut args = vec!["--netns", &ns.name, "--id"];
        args.extend_from_slice(options);
        let ours = ids(&run_example(&args));
        let output = Command::new("ip")
            .args(["netns", "exec", &ns.name, "conntrack", "-L"])
            .args(*options)
            .args(["-o", "id"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "conntrack -L {options:?}: {output:?}"
        );
        let theirs = ids(&String::from_utf8_lossy(&output.stdout));
        assert_eq!(ours, theirs, "dump {options:?} vs conntrack -L");
        nonempty += usize::from(!ours.is_empty());
    }
    assert!(nonempty >= 6, "the cases select something: {nonempty}");
}

/// The names of the label test (bit 127 and 9 stay unnamed).
const CONNLABEL_CONF: &str = "# test names\n0 blocked\n5 audited\n70 far\n";

/// `conntrack ARGS` in `ns` with `dir/connlabel.conf` as its label names
/// ([`common::conntrack_with_connlabel_conf`]); its stdout.
fn conntrack_with_connlabel_conf(
    ns: &ScratchNs,
    dir: &std::path::Path,
    overlay: bool,
    args: &[&str],
) -> String {
    let output = common::conntrack_with_connlabel_conf(ns, dir, overlay, args)
        .output()
        .expect("run unshare (util-linux)");
    assert!(
        output.status.success(),
        "conntrack {args:?} with a private connlabel.conf: {output:?}"
    );
    String::from_utf8(output.stdout).expect("utf-8 from conntrack")
}

/// `dump --labels` and `gc --list --labels` print the lines of `conntrack
/// -L -o extended[,id],labels` given the same `connlabel.conf`: names in bit
/// order, unnamed bits left out, the bare `labels` when no set bit is named.
#[test]
fn labels_by_name_equal_conntrack_cli_o_labels() {
    require_root!();
    let host_xtables = std::path::Path::new("/etc/xtables/connlabel.conf");
    let host_before = std::fs::read(host_xtables).ok();

    let (ns, mut ct) = populated_namespace("dumpex-labels");
    let labelled = |port: u16, bits: &[u32]| {
        let spec =
            FlowSpec::new(Tuple::udp((v4(10, 9, 0, 1), port), (v4(10, 9, 0, 2), 53))).timeout(3600);
        match bits {
            [] => spec,
            _ => spec.labels(bits.iter().fold(Labels::default(), |l, &b| l.with(b))),
        }
    };
    for (port, bits) in [(1, &[0, 5, 70][..]), (2, &[5, 9]), (3, &[127]), (4, &[])] {
        ct.create(&labelled(port, bits)).unwrap();
    }
    let _traffic = traffic(&ns);

    let dir = std::env::temp_dir().join(format!("ctrs-labels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("connlabel.conf");
    std::fs::write(&conf, CONNLABEL_CONF).unwrap();
    let conf_arg = conf.to_str().unwrap();

    let cli = conntrack_with_connlabel_conf(&ns, &dir, true, &["-L", "-o", "extended,labels"]);
    let ours = run_example(&["--netns", &ns.name, "--labels", "--labels-file", conf_arg]);
    assert_eq!(
        masked_multiset(&ours).keys().collect::<Vec<_>>(),
        masked_multiset(&cli).keys().collect::<Vec<_>>(),
        "dump --labels:\n{ours}\nconntrack -L -o extended,labels:\n{cli}"
    );
    // The table exercised every case of the field.
    let line_of = |needle: &str| -> &str {
        let mut lines = ours.lines().filter(|line| line.contains(needle));
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{ours}"));
        assert!(lines.next().is_none(), "one {needle:?} in:\n{ours}");
        line
    };
    for (needle, end) in [
        ("dst=10.9.0.2 sport=1 ", " use=1 labels=blocked,audited,far"),
        ("dst=10.9.0.2 sport=2 ", " use=1 labels=audited"),
        ("dst=10.9.0.2 sport=3 ", " use=1 labels"),
        ("dst=10.9.0.2 sport=4 ", " use=1"),
        ("dst=10.1.0.2 sport=1009 ", " use=1 labels=blocked"),
        ("src=10.1.8.1 ", " use=1 labels=far"),
    ] {
        let line = line_of(needle);
        assert!(line.ends_with(end), "{line:?} ends with {end:?}");
    }
    // The tmpfs path gives conntrack the same file.
    let tmpfs = conntrack_with_connlabel_conf(&ns, &dir, false, &["-L", "-o", "extended,labels"]);
    assert_eq!(
        masked_multiset(&tmpfs).keys().collect::<Vec<_>>(),
        masked_multiset(&cli).keys().collect::<Vec<_>>()
    );

    // gc --list --labels (a dry run): the lines of -o extended,id,labels.
    let listed = common::run_example(
        "gc",
        &[
            "--netns",
            &ns.name,
            "--list",
            "--labels",
            "--labels-file",
            conf_arg,
            "-s",
            "10.9.0.1",
        ],
    );
    let listed: String = listed
        .lines()
        .filter(|line| !line.starts_with("path="))
        .map(|line| format!("{line}\n"))
        .collect();
    let cli_listed = conntrack_with_connlabel_conf(
        &ns,
        &dir,
        true,
        &["-L", "-s", "10.9.0.1", "-o", "extended,id,labels"],
    );
    assert_eq!(listed.lines().count(), 4, "{listed}");
    assert_eq!(
        masked_multiset(&listed).keys().collect::<Vec<_>>(),
        masked_multiset(&cli_listed).keys().collect::<Vec<_>>()
    );

    // A file that names nothing: conntrack prints no field, nor do we.
    std::fs::write(&conf, "# no names\n").unwrap();
    let cli = conntrack_with_connlabel_conf(&ns, &dir, true, &["-L", "-o", "extended,labels"]);
    let ours = run_example(&["--netns", &ns.name, "--labels", "--labels-file", conf_arg]);
    assert!(!ours.contains("labels"), "{ours}");
    assert_eq!(
        masked_multiset(&ours).keys().collect::<Vec<_>>(),
        masked_multiset(&cli).keys().collect::<Vec<_>>()
    );

    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        std::fs::read(host_xtables).ok(),
        host_before,
        "the host's connlabel.conf is untouched"
    );
}

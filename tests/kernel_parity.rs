// SPDX-License-Identifier: MIT OR Apache-2.0
//! What conntrack-tools can do and this library now does too, against the
//! real kernel and, where it can do the same, conntrack-tools itself:
//! zero-on-read dumps, the dying and unconfirmed lists, bulk update by
//! filter, labels by name.

mod common;

use std::net::UdpSocket;

use common::{run_example, ScratchNs};
use conntrack::*;

/// Sends `n` datagrams of `size` payload bytes from one client socket to one
/// server socket on loopback (one flow), and one answer to each.
fn udp_exchange(ns: &ScratchNs, ports: Option<(u16, u16)>, n: u32, size: usize) -> (u16, u16) {
    ns.run(move || {
        let (client_port, server_port) = ports.unwrap_or((0, 0));
        let server = UdpSocket::bind(("127.0.0.1", server_port)).unwrap();
        let client = UdpSocket::bind(("127.0.0.1", client_port)).unwrap();
        let payload = vec![7u8; size];
        let mut buf = vec![0u8; size + 16];
        for _ in 0..n {
            client
                .send_to(&payload, server.local_addr().unwrap())
                .unwrap();
            let (got, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(got, size);
            server.send_to(&buf[..1], from).unwrap();
            client.recv(&mut buf).unwrap();
        }
        (
            client.local_addr().unwrap().port(),
            server.local_addr().unwrap().port(),
        )
    })
}

fn udp_counters(flows: &[Flow]) -> (Counters, Counters) {
    let udp: Vec<&Flow> = flows
        .iter()
        .filter(|f| f.protocol() == proto::UDP)
        .collect();
    assert_eq!(udp.len(), 1, "{flows:#?}");
    (
        udp[0].counters_orig.expect("acct on"),
        udp[0].counters_reply.expect("acct on"),
    )
}

#[test]
fn a_zeroing_dump_reads_each_interval_exactly_once() {
    require_root!();
    let ns = ScratchNs::new("ctrzero");
    ns.sysctl("nf_conntrack_acct", "1");
    let mut ct = ns.conntrack();
    // 3 requests of 100 bytes: 3 x (100 + 8 + 20) = 384 bytes out, 3 x 29 back.
    let ports = udp_exchange(&ns, None, 3, 100);
    let first: Vec<Flow> = ct
        .dump_zeroing(Family::All)
        .unwrap()
        .into_flows()
        .collect::<Result<_>>()
        .unwrap();
    let (orig, reply) = udp_counters(&first);
    assert_eq!((orig.packets, orig.bytes), (3, 384));
    assert_eq!((reply.packets, reply.bytes), (3, 87));
    // A plain dump now reads zero: the counters were exchanged for zero.
    let plain: Vec<Flow> = ct.flows().unwrap().collect::<Result<_>>().unwrap();
    let (orig, reply) = udp_counters(&plain);
    assert_eq!(
        (orig.packets, reply.packets),
        (0, 0),
        "zeroed by the first read"
    );
    // 2 more requests of 50 bytes on the same flow: exactly those are read next.
    udp_exchange(&ns, Some(ports), 2, 50);
    let second: Vec<Flow> = ct
        .dump_zeroing(Family::Ipv4)
        .unwrap()
        .into_flows()
        .collect::<Result<_>>()
        .unwrap();
    let (orig, reply) = udp_counters(&second);
    assert_eq!((orig.packets, orig.bytes), (2, 2 * 78));
    assert_eq!((reply.packets, reply.bytes), (2, 2 * 29));
    // conntrack -L -z agrees that nothing is left to count (and, like this
    // library, refuses to zero with a filter: it would zero hidden flows).
    let cli = ns.conntrack_cli(&["-L", "-z", "-o", "extended"]);
    let line = cli
        .lines()
        .find(|l| l.contains("udp"))
        .expect("the udp flow");
    assert!(line.contains("packets=0 bytes=0"), "{cli}");
}

#[test]
fn the_dying_and_unconfirmed_lists_dump_like_conntrack_tools() {
    require_root!();
    let ns = ScratchNs::new("lists");
    let mut ct = ns.conntrack();
    udp_exchange(&ns, None, 1, 10);
    // Nothing lingers in either list of an idle namespace, for both tools.
    let dying: Vec<Flow> = ct
        .dump_dying()
        .unwrap()
        .into_flows()
        .collect::<Result<_>>()
        .unwrap();
    let unconfirmed: Vec<Flow> = ct
        .dump_unconfirmed()
        .unwrap()
        .into_flows()
        .collect::<Result<_>>()
        .unwrap();
    let cli_dying = ns.conntrack_cli(&["-L", "dying"]);
    let cli_unconfirmed = ns.conntrack_cli(&["-L", "unconfirmed"]);
    assert_eq!(dying.len(), cli_dying.lines().count(), "{cli_dying}");
    assert_eq!(unconfirmed.len(), cli_unconfirmed.lines().count());
    // The handle is in step afterwards: the table is still there.
    assert_eq!(
        ct.flows().unwrap().filter(|f| f.is_ok()).count(),
        1,
        "the exchanged flow"
    );
}

/// `update_matching` changes exactly the flows its filter selects, as the
/// kernel applies each change. (conntrack-tools 1.4.7's `conntrack -U` with
/// filter options fails on this kernel with EOPNOTSUPP, even for a plain
/// mark, so the reference is computed here from the dumped table.)
#[test]
fn bulk_update_changes_exactly_what_conntrack_u_changes() {
    require_root!();
    let ours = ScratchNs::new("bulkupd");
    // Label storage exists only where a rule uses labels.
    ours.nft("add rule inet ctrs in ct label set 127");
    let specs: Vec<FlowSpec> = (0..200u16)
        .map(|i| {
            let src = std::net::IpAddr::from([10, 0, (i % 4) as u8, 1 + (i % 50) as u8]);
            let dst = std::net::IpAddr::from([10, 1, 0, 1]);
            let orig = if i % 3 == 0 {
                Tuple::tcp((src, 1000 + i), (dst, 443))
            } else {
                Tuple::udp((src, 1000 + i), (dst, if i % 2 == 0 { 53 } else { 123 }))
            };
            let mut spec = FlowSpec::new(orig)
                .timeout(600)
                .mark(u32::from(i % 7) | 0xab00)
                .labels(Labels::default().with(u32::from(i % 5)));
            if orig.protocol == proto::TCP {
                spec = spec
                    .tcp_state(TcpState::Established)
                    .status(Status::SEEN_REPLY | Status::ASSURED);
            }
            spec
        })
        .collect();
    let mut ct = ours.conntrack();
    for spec in &specs {
        ct.create(spec).unwrap();
    }
    let snapshot = |ct: &mut Conntrack| -> Vec<(Tuple, u32, u128, Status)> {
        let mut flows: Vec<_> = ct
            .flows()
            .unwrap()
            .map(|f| {
                let f = f.unwrap();
                (
                    f.orig,
                    f.mark.unwrap_or(0),
                    f.labels.unwrap_or_default().0,
                    f.status,
                )
            })
            .collect();
        flows.sort_by_key(|f| f.0);
        flows
    };
    // udp to port 53: mark bits 0-3 set to 0x5, keeping the others.
    let filter = Filter::new().protocol(proto::UDP).dst_port(53);
    let change = FlowChange::new().mark_masked(0x5, 0xf);
    let expected_marks: Vec<(Tuple, u32, u128, Status)> = snapshot(&mut ct)
        .into_iter()
        .map(|(orig, mark, labels, status)| {
            let selected = orig.protocol == proto::UDP && orig.dst_port() == Some(53);
            let mark = if selected { (mark & !0xf) | 0x5 } else { mark };
            (orig, mark, labels, status)
        })
        .collect();
    let report = ct
        .update_matching(&filter, &change, DeleteOptions::default())
        .unwrap();
    let expected = specs
        .iter()
        .filter(|s| s.orig.protocol == proto::UDP && s.orig.dst_port() == Some(53))
        .count() as u64;
    assert_eq!(
        (report.matched, report.updated),
        (expected, expected),
        "{report:?}"
    );
    assert_eq!(snapshot(&mut ct), expected_marks, "mark under a mask");

    // A dry run changes nothing and says how many it would.
    let before = snapshot(&mut ct);
    let dry = ct
        .update_matching(
            &Filter::new().protocol(proto::TCP),
            &FlowChange::new().mark(1),
            DeleteOptions {
                dry_run: true,
                ..DeleteOptions::default()
            },
        )
        .unwrap();
    assert_eq!((dry.matched, dry.updated), (67, 0));
    assert_eq!(snapshot(&mut ct), before);

    // Labels added and removed, status added, timeout: on one source network.
    let filter = Filter::new().src("10.0.1.0/24".parse::<Cidr>().unwrap());
    let change = FlowChange::new()
        .add_labels(Labels::default().with(9))
        .remove_labels(Labels::default().with(1))
        .add_status(Status::FIXED_TIMEOUT)
        .timeout(1234);
    let report = ct
        .update_matching(&filter, &change, DeleteOptions::default())
        .unwrap();
    assert_eq!(report.matched, 50);
    assert_eq!(report.updated, 50, "{report:?}");
    for flow in ct.flows().unwrap() {
        let flow = flow.unwrap();
        let labels = flow.labels.unwrap_or_default();
        if filter.matches(&flow) {
            assert!(labels.contains(9) && !labels.contains(1), "{flow:?}");
            assert!(flow.status.contains(Status::FIXED_TIMEOUT));
            assert!(flow.timeout.unwrap() > 1200, "{flow:?}");
            if flow.protocol() == proto::TCP {
                assert!(flow.status.contains(Status::SEEN_REPLY | Status::ASSURED));
            }
        } else {
            assert!(!labels.contains(9) && !flow.status.contains(Status::FIXED_TIMEOUT));
            assert!(flow.timeout.unwrap() <= 600);
        }
    }
    // Refusals, before anything is sent.
    let before = snapshot(&mut ct);
    for (filter, change) in [
        (Filter::new(), FlowChange::new().mark(1)),
        (Filter::new().protocol(proto::UDP), FlowChange::new()),
        (
            Filter::new().protocol(proto::UDP),
            FlowChange::new().mark_masked(0x100, 0xff),
        ),
        (
            Filter::new().protocol(proto::UDP).mark_masked(0x100, 0xff),
            FlowChange::new().mark(1),
        ),
    ] {
        let err = ct
            .update_matching(&filter, &change, DeleteOptions::default())
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }
    assert_eq!(snapshot(&mut ct), before);
}

/// Labels by name, and the kernel's silence about label space explained.
#[test]
fn labels_by_name_and_the_label_space_trap() {
    require_root!();
    let map = LabelMap::parse("3 blocked\n4 audited\n", "test connlabel.conf").unwrap();
    let ns = ScratchNs::new("nolabel");
    let mut ct = ns.conntrack();
    let t = Tuple::udp(([10, 0, 0, 1], 1), ([10, 0, 0, 2], 2));
    let labels = map.labels("blocked,audited").unwrap();
    // No ruleset uses labels: the kernel would drop them silently on create.
    let err = ct
        .create(&FlowSpec::new(t).timeout(60).labels(labels))
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOSPC));
    let text = err.to_string();
    assert!(
        text.contains("ct label") && text.contains("without its labels"),
        "{text}"
    );
    let report = ct
        .update_matching(
            &Filter::new().protocol(proto::UDP),
            &FlowChange::new().add_labels(labels),
            DeleteOptions::default(),
        )
        .unwrap();
    assert_eq!(report.failed.get(&libc::ENOSPC), Some(&1), "{report:?}");
    // A rule that only matches labels is enough to reserve the space.
    ns.nft("add rule inet ctrs in ct label 127 counter");
    let t2 = Tuple::udp(([10, 0, 0, 1], 3), ([10, 0, 0, 2], 2));
    ct.create(&FlowSpec::new(t2).timeout(60).labels(labels))
        .unwrap();
    let flow = ct.get(&t2, 0).unwrap().unwrap();
    assert_eq!(map.describe(flow.labels.unwrap()), ["blocked", "audited"]);
    let selected = ct
        .flows_matching(&Filter::new().labels(map.labels("audited").unwrap()))
        .unwrap();
    assert_eq!(selected.len(), 1);
}

/// `conntrack -L expect` lines as (expected destination port, master source
/// port, helper), the fields both tools must agree on.
fn cli_expectations(ns: &ScratchNs) -> Vec<(u16, u16, String)> {
    let text = ns.conntrack_cli(&["-L", "expect"]);
    let field = |line: &str, key: &str, nth: usize| -> Option<String> {
        line.split_whitespace()
            .filter_map(|w| w.strip_prefix(key))
            .nth(nth)
            .map(str::to_owned)
    };
    let mut found: Vec<(u16, u16, String)> = text
        .lines()
        .map(|line| {
            (
                field(line, "dport=", 0).unwrap().parse().unwrap(),
                field(line, "sport=", 2).unwrap().parse().unwrap(),
                field(line, "helper=", 0).unwrap_or_default(),
            )
        })
        .collect();
    found.sort();
    found
}

fn our_expectations(ct: &mut Conntrack) -> Vec<(u16, u16, String)> {
    let mut found: Vec<(u16, u16, String)> = ct
        .expectations()
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.tuple.dst_port().unwrap(),
                e.master.src_port().unwrap(),
                e.helper.unwrap_or_default(),
            )
        })
        .collect();
    found.sort();
    found
}

/// Real expectations: the kernel's FTP helper, assigned by nftables, reads a
/// `227 Entering Passive Mode` reply on loopback and expects the data
/// connection; the library lists, gets and deletes it like conntrack-tools.
#[test]
fn expectations_from_the_ftp_helper_on_real_traffic() {
    require_root!();
    let ns = ScratchNs::new("ftpexp");
    ns.nft("add ct helper inet ctrs ftp-std { type \"ftp\" protocol tcp ; }");
    // Before the chain's `ct state new accept`, which ends the chain.
    ns.nft("insert rule inet ctrs out tcp dport 21 ct helper set \"ftp-std\"");
    let client_port = ns.run(|| {
        use std::io::{Read, Write};
        let server = std::net::TcpListener::bind("127.0.0.1:21").unwrap();
        let mut client = std::net::TcpStream::connect("127.0.0.1:21").unwrap();
        let (mut served, _) = server.accept().unwrap();
        // The helper reads a reply only where a line starts, as a server's
        // first line (its banner) is followed by the next one.
        let banner: &[u8] = b"220 ready\r\n";
        served.write_all(banner).unwrap();
        let mut got = vec![0u8; banner.len()];
        client.read_exact(&mut got).unwrap();
        client.write_all(b"PASV\r\n").unwrap();
        let mut line = [0u8; 6];
        served.read_exact(&mut line).unwrap();
        // 200 * 256 + 10 = 51210.
        let pasv: &[u8] = b"227 Entering Passive Mode (127,0,0,1,200,10).\r\n";
        served.write_all(pasv).unwrap();
        let mut reply = vec![0u8; pasv.len()];
        client.read_exact(&mut reply).unwrap();
        let port = client.local_addr().unwrap().port();
        // Keep the connection (and its expectation) until after the checks.
        std::mem::forget((client, served, server));
        port
    });
    let mut ct = ns.conntrack();
    let expectations = ct.expectations().unwrap();
    assert_eq!(expectations.len(), 1, "{expectations:#?}");
    let e = &expectations[0];
    assert_eq!(e.helper.as_deref(), Some("ftp"));
    assert_eq!(e.tuple.dst_port(), Some(51210));
    assert_eq!(e.master.src_port(), Some(client_port));
    assert_eq!(e.master.dst_port(), Some(21));
    assert!(e.timeout.is_some_and(|t| t > 0 && t <= 300), "{e:?}");
    assert_eq!(our_expectations(&mut ct), cli_expectations(&ns));
    let got = ct
        .get_expectation(&e.tuple, 0)
        .unwrap()
        .expect("get by tuple");
    assert_eq!(got.id, e.id);
    let stats = ct.expectation_stats().unwrap();
    assert!(
        stats.iter().map(|s| s.create).sum::<u32>() >= 1,
        "{stats:?}"
    );
    assert!(ct.delete_expectation(&e.tuple, 0, e.id).unwrap());
    assert!(
        !ct.delete_expectation(&e.tuple, 0, e.id).unwrap(),
        "already gone"
    );
    assert!(ct.expectations().unwrap().is_empty());
    assert!(cli_expectations(&ns).is_empty());
}

/// Expectations created through the library: against a master with the FTP
/// helper (which allows one expectation per master: the kernel evicts the
/// older one) and against a master without a helper (userspace
/// expectations, as many as asked); listed like conntrack-tools lists them,
/// then flushed by helper name and in full.
#[test]
fn expectations_created_listed_and_flushed() {
    require_root!();
    let ns = ScratchNs::new("mkexp");
    let mut ct = ns.conntrack();
    let master = Tuple::tcp(([10, 3, 0, 1], 40000), ([10, 3, 0, 2], 21));
    ct.create(&common::ftp_master(master)).unwrap();
    let mut mask = exact_mask(&Tuple::tcp(([10, 3, 0, 1], 0), ([10, 3, 0, 2], 0)));
    mask.l4 = L4::Ports {
        src: 0,
        dst: u16::MAX,
    };
    let data = |port: u16| Tuple::tcp(([10, 3, 0, 1], 0), ([10, 3, 0, 2], port));
    ct.create_expectation(&ExpectationSpec::new(master, data(50000), 120).mask(mask))
        .unwrap();
    let err = ct
        .create_expectation(&ExpectationSpec::new(master, data(50000), 120).mask(mask))
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");
    // The FTP helper keeps one expectation per master: a second replaces it.
    ct.create_expectation(&ExpectationSpec::new(master, data(50001), 120).mask(mask))
        .unwrap();
    let ftp: Vec<Expectation> = ct.expectations().unwrap();
    assert_eq!(ftp.len(), 1, "{ftp:#?}");
    assert_eq!(ftp[0].tuple.dst_port(), Some(50001));
    assert_eq!(ftp[0].helper.as_deref(), Some("ftp"));

    // The amanda helper allows three per master.
    let amanda = Tuple::udp(([10, 3, 0, 1], 40001), ([10, 3, 0, 2], 10080));
    ct.create(&FlowSpec::new(amanda).timeout(600).helper("amanda"))
        .unwrap();
    for port in [60000u16, 60001, 60002] {
        ct.create_expectation(&ExpectationSpec::new(amanda, data(port), 120).mask(mask))
            .unwrap();
    }
    let made = ct
        .get_expectation(&data(60001), 0)
        .unwrap()
        .expect("created");
    assert_eq!(made.master, amanda);
    assert_eq!(made.helper.as_deref(), Some("amanda"));
    assert_eq!(our_expectations(&mut ct).len(), 4);
    assert_eq!(our_expectations(&mut ct), cli_expectations(&ns));
    assert!(ct.delete_expectation(&data(60001), 0, made.id).unwrap());
    assert_eq!(our_expectations(&mut ct).len(), 3);
    // A master without a helper cannot have one, and the error says why.
    let plain = Tuple::tcp(([10, 3, 0, 1], 40002), ([10, 3, 0, 2], 2121));
    ct.create(&FlowSpec::new(plain).timeout(600)).unwrap();
    let err = ct
        .create_expectation(&ExpectationSpec::new(plain, data(61000), 120).mask(mask))
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::EOPNOTSUPP), "{err}");
    assert!(err.to_string().contains("no helper"), "{err}");

    ct.flush_expectations(Some("sip")).unwrap();
    assert_eq!(
        ct.expectations().unwrap().len(),
        3,
        "another helper's flush"
    );
    ct.flush_expectations(Some("ftp")).unwrap();
    let left = ct.expectations().unwrap();
    assert_eq!(left.len(), 2, "{left:#?}");
    assert!(left.iter().all(|e| e.master == amanda));
    ct.flush_expectations(None).unwrap();
    assert!(ct.expectations().unwrap().is_empty());
    assert!(cli_expectations(&ns).is_empty());
}

/// `dump -S expect` and `dump -S` print what `conntrack -S expect` and
/// `conntrack -S` print for the same namespace, and the counters move.
#[test]
fn dump_stats_print_what_conntrack_s_prints() {
    require_root!();
    let ns = ScratchNs::new("statsexp");
    let mut ct = ns.conntrack();
    let master = Tuple::tcp(([10, 4, 0, 1], 40000), ([10, 4, 0, 2], 21));
    ct.create(&FlowSpec::new(master).timeout(600).helper("ftp"))
        .unwrap();
    let data = Tuple::tcp(([10, 4, 0, 1], 0), ([10, 4, 0, 2], 50000));
    ct.create_expectation(&ExpectationSpec::new(master, data, 120))
        .unwrap();
    assert!(ct.delete_expectation(&data, 0, None).unwrap());
    let ours = run_example("dump", &["--netns", &ns.name, "-S", "expect"]);
    assert_eq!(ours, ns.conntrack_cli(&["-S", "expect"]));
    let created: u32 = ct
        .expectation_stats()
        .unwrap()
        .iter()
        .map(|s| s.create)
        .sum();
    assert_eq!(created, 1);
    assert!(ours.contains("expect_create=1 "), "{ours}");
    ns.send_invalid_tcp_segments(3);
    let ours = run_example("dump", &["--netns", &ns.name, "--stats"]);
    assert_eq!(ours, ns.conntrack_cli(&["-S"]));
    assert!(ours.contains("invalid="), "{ours}");
    let json = run_example("dump", &["--netns", &ns.name, "-S", "expect", "--json"]);
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), ours.lines().count(), "one object per CPU");
    assert_eq!(
        objects
            .iter()
            .map(|o| o["create"].as_u64().unwrap())
            .sum::<u64>(),
        1
    );
}

/// The `update` tool (`conntrack -U` with filter options): a dry run unless
/// `--yes`, label names from a connlabel.conf, a filter required.
#[test]
fn the_update_tool_changes_the_selection() {
    require_root!();
    let ns = ScratchNs::new("updtool");
    ns.nft("add rule inet ctrs in ct label 127 counter");
    let mut ct = ns.conntrack();
    for i in 0..6u16 {
        let orig = Tuple::udp(
            ([10, 0, 0, 1 + i as u8], 1000),
            ([10, 1, 0, 1], if i % 2 == 0 { 53 } else { 123 }),
        );
        ct.create(&FlowSpec::new(orig).timeout(600).mark(0xab00))
            .unwrap();
    }
    let dir = std::env::temp_dir().join(format!("ctrs-labels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let labels_file = dir.join("connlabel.conf");
    std::fs::write(&labels_file, "7 audited\n").unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(common::example_binary("update"))
            .args(["--netns", ns.name.as_str()])
            .args(args)
            .output()
            .unwrap()
    };
    let change = [
        "-p",
        "udp",
        "--dport",
        "53",
        "--set-mark",
        "0x5/0xf",
        "--label-add",
        "audited",
        "--labels-file",
        labels_file.to_str().unwrap(),
    ];
    let dry = run(&change);
    assert!(dry.status.success(), "{dry:?}");
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("matched=3 updated=0"),
        "{dry:?}"
    );
    assert!(ct.flows().unwrap().all(|f| f.unwrap().mark == Some(0xab00)));
    let mut yes = change.to_vec();
    yes.extend(["--yes", "--json"]);
    let done = run(&yes);
    assert!(done.status.success(), "{done:?}");
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(
        (report["matched"].as_u64(), report["updated"].as_u64()),
        (Some(3), Some(3))
    );
    for flow in ct.flows().unwrap() {
        let flow = flow.unwrap();
        let selected = flow.orig.dst_port() == Some(53);
        assert_eq!(
            flow.mark,
            Some(if selected { 0xab05 } else { 0xab00 }),
            "{flow:?}"
        );
        assert_eq!(flow.labels.unwrap_or_default().contains(7), selected);
    }
    // Usage errors: no filter, an unknown label, a value outside its mask.
    for args in [
        &["--set-mark", "1", "--yes"][..],
        &["-p", "udp", "--label-add", "no-such-name", "--yes"],
        &["-p", "udp", "--set-mark", "0x100/0xff", "--yes"],
        &["-p", "udp", "--yes"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `dump --zero` and `dump --list dying|unconfirmed` agree with conntrack-tools.
#[test]
fn the_dump_tool_zeroes_and_reads_the_other_lists() {
    require_root!();
    let ns = ScratchNs::new("dumpzero");
    ns.sysctl("nf_conntrack_acct", "1");
    udp_exchange(&ns, None, 2, 100);
    let dump = |args: &[&str]| {
        common::run_example("dump", &[&["--netns", ns.name.as_str()][..], args].concat())
    };
    let first = dump(&["--zero"]);
    let udp = first
        .lines()
        .find(|l| l.contains("udp"))
        .expect("the udp flow");
    assert!(udp.contains("packets=2 bytes=256"), "{first}");
    let second = dump(&["--zero"]);
    let udp = second.lines().find(|l| l.contains("udp")).unwrap();
    assert!(udp.contains("packets=0 bytes=0"), "{second}");
    for list in ["dying", "unconfirmed"] {
        let ours = dump(&["--list", list]);
        let theirs = ns.conntrack_cli(&["-L", list]);
        assert_eq!(ours.lines().count(), theirs.lines().count(), "{list}");
    }
    let refused = std::process::Command::new(common::example_binary("dump"))
        .args(["--netns", ns.name.as_str(), "--zero", "-p", "udp"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `gc --orphans --confirmed` against the real kernel, with orphans the socket
//! table proves dead: real connections whose sockets are gone (their RST or
//! FIN dropped by nftables before conntrack, so the flow stays), next to
//! suspected ones (forwarded: no local end) and silent live connections.
//!
//! * In one namespace: `--confirmed --yes` deletes exactly the confirmed
//!   flows; `--list` shows each orphan's evidence (text and JSON).
//! * The pod case: a router namespace forwarding between two others holds
//!   the flows, the sockets live in the end namespaces; with `--sockets all`
//!   gc finds them (confirmed, alive), with the default every flow is
//!   suspected.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::{ping, reset_on_close, run_example, ScratchNs};
use conntrack::{FlowSpec, Status, TcpState, Tuple};
use serde_json::Value;

const WAIT: Duration = Duration::from_millis(2200);

fn gc_json(args: &[&str]) -> Value {
    let out = run_example("gc", args);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("gc JSON ({e}): {out}"))
}

/// The evidence column of each `--list` line, by the line's `dport=`.
fn listed_evidence(out: &str) -> Vec<(String, String)> {
    let mut listed: Vec<(String, String)> = out
        .lines()
        .filter(|l| l.contains(" idle="))
        .map(|l| {
            let evidence = l.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let dport = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("dport="))
                .unwrap_or_default()
                .to_owned();
            (dport, evidence)
        })
        .collect();
    listed.sort();
    listed
}

/// A connected client/server pair over `listener`, one ping done.
fn pair(listener: &TcpListener, connect: impl FnOnce() -> TcpStream) -> (TcpStream, TcpStream) {
    let mut client = connect();
    let (mut server, _) = listener.accept().expect("accept");
    for s in [&client, &server] {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    ping(&mut client, &mut server);
    (client, server)
}

#[test]
fn confirmed_gc_deletes_exactly_the_confirmed_orphans() {
    require_root!();
    const DEAD: u16 = 7611;
    const LIVE: u16 = 7612;
    const UDP_GONE: u16 = 7613;
    let ns = ScratchNs::new("gc-confirmed");
    common::drop_fin_rst(&ns, DEAD);
    let mut ct = ns.conntrack();
    // Confirmed: a TCP connection whose sockets were closed with an RST that
    // never reached conntrack, and a UDP exchange whose both sockets closed.
    let (dead, live, live_pair, udp) = ns.run(|| {
        let listener = TcpListener::bind(("127.0.0.1", DEAD)).expect("listen");
        let (client, server) = pair(&listener, || {
            TcpStream::connect(("127.0.0.1", DEAD)).expect("connect")
        });
        let dead = Tuple::tcp(client.local_addr().unwrap(), client.peer_addr().unwrap());
        reset_on_close(&client);
        reset_on_close(&server);
        drop((client, server, listener));
        let listener = TcpListener::bind(("127.0.0.1", LIVE)).expect("listen");
        let (client, server) = pair(&listener, || {
            TcpStream::connect(("127.0.0.1", LIVE)).expect("connect")
        });
        let live = Tuple::tcp(client.local_addr().unwrap(), client.peer_addr().unwrap());
        let server_udp = UdpSocket::bind(("127.0.0.1", UDP_GONE)).expect("bind");
        let client_udp = UdpSocket::bind(("127.0.0.1", 0)).expect("bind");
        client_udp
            .send_to(b"metrics", ("127.0.0.1", UDP_GONE))
            .unwrap();
        server_udp
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        server_udp.recv_from(&mut [0u8; 16]).expect("datagram");
        let udp = Tuple::udp(
            client_udp.local_addr().unwrap(),
            SocketAddr::from(([127, 0, 0, 1], UDP_GONE)),
        );
        (dead, live, (client, server), udp)
    });
    // Suspected: forwarded flows (neither end is local), idle as long.
    let established = 432_000;
    let forwarded: Vec<Tuple> = (1..=2u8)
        .map(|i| Tuple::tcp(([10, 61, 0, i], 50000), ([192, 0, 2, 61], 5432)))
        .collect();
    for orig in &forwarded {
        ct.create(
            &FlowSpec::new(*orig)
                .tcp_state(TcpState::Established)
                .status(Status::SEEN_REPLY | Status::ASSURED)
                .timeout(established - 60),
        )
        .unwrap();
    }
    std::thread::sleep(WAIT);
    let flow = ct
        .get(&dead, 0)
        .unwrap()
        .expect("the dead connection's flow");
    assert_eq!(flow.tcp_state(), Some(TcpState::Established), "{flow:?}");
    assert!(ct.get(&udp, 0).unwrap().is_some(), "the UDP flow");

    let base = [
        "--netns",
        ns.name.as_str(),
        "--orphans",
        "--idle",
        "1",
        "--unreplied",
        "1",
    ];
    let with = |extra: &[&'static str]| -> Vec<&str> { [&base[..], extra].concat() };
    let dead_port = DEAD.to_string();
    let udp_port = UDP_GONE.to_string();

    // Without --confirmed: every orphan listed with its evidence; the live
    // connection is no orphan (counted as alive).
    let out = run_example("gc", &with(&["--list"]));
    let all = listed_evidence(&out);
    let mut expected = vec![
        (dead_port.clone(), "confirmed".to_owned()),
        (udp_port.clone(), "confirmed".to_owned()),
        ("5432".to_owned(), "suspected".to_owned()),
        ("5432".to_owned(), "suspected".to_owned()),
    ];
    expected.sort();
    assert_eq!(all, expected, "{out}");
    assert!(out.contains(" confirmed=2 suspected=2 alive=1"), "{out}");
    assert!(out.contains("path=dry_run matched=4 deleted=0"), "{out}");

    // --confirmed: only the confirmed ones, in text and in JSON.
    let out = run_example("gc", &with(&["--confirmed", "--list"]));
    let mut expected = vec![
        (dead_port.clone(), "confirmed".to_owned()),
        (udp_port.clone(), "confirmed".to_owned()),
    ];
    expected.sort();
    assert_eq!(listed_evidence(&out), expected, "{out}");
    assert!(out.contains("path=dry_run matched=2 deleted=0"), "{out}");
    let out = run_example("gc", &with(&["--confirmed", "--list", "--json"]));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    let (listed, report) = lines.split_at(lines.len() - 1);
    assert_eq!(listed.len(), 2, "{out}");
    for line in listed {
        assert_eq!(line["evidence"], "confirmed", "{line}");
        let port = line["flow"]["orig"]["dst_port"].as_u64().unwrap();
        assert!([DEAD, UDP_GONE].contains(&(port as u16)), "{line}");
    }
    assert_eq!(report[0]["orphans"]["confirmed"], 2, "{out}");
    assert_eq!(report[0]["orphans"]["suspected"], 2, "{out}");
    assert_eq!(report[0]["orphans"]["alive"], 1, "{out}");

    // --confirmed --yes: exactly the confirmed flows go.
    let report = gc_json(&with(&["--confirmed", "--yes", "--json"]));
    assert_eq!(report["matched"], 2, "{report}");
    assert_eq!(report["deleted"], 2, "{report}");
    assert!(ct.get(&dead, 0).unwrap().is_none());
    assert!(ct.get(&udp, 0).unwrap().is_none());
    for orig in forwarded.iter().chain([&live]) {
        assert!(ct.get(orig, 0).unwrap().is_some(), "{orig:?} spared");
    }
    let (mut client, mut server) = live_pair;
    ping(&mut client, &mut server);
}

static SUBNET: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Client namespace `a` and server namespace `b` joined through router `r`
/// (veth pairs, IPv4); `r` forwards and tracks, like a node for its pods.
struct Pods {
    a: ScratchNs,
    r: ScratchNs,
    b: ScratchNs,
    b_addr: std::net::Ipv4Addr,
}

impl Pods {
    fn new(tag: &str) -> Pods {
        // Subnets of their own (10.86/10.87): --sockets all reads every
        // namespace of the host, other tests' included.
        let n = (std::process::id() % 200) as u8
            + SUBNET.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as u8;
        let a = ScratchNs::new(&format!("{tag}a"));
        let r = ScratchNs::new(&format!("{tag}r"));
        let b = ScratchNs::new(&format!("{tag}b"));
        for (end, peer, net) in [(&a, "ea", 86), (&b, "eb", 87)] {
            r.exec(&[
                "ip", "link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns",
                &end.name,
            ]);
            r.exec(&["ip", "link", "set", peer, "up"]);
            r.exec(&[
                "ip",
                "addr",
                "add",
                &format!("10.{net}.{n}.2/24"),
                "dev",
                peer,
            ]);
            end.exec(&["ip", "link", "set", "eth0", "up"]);
            end.exec(&[
                "ip",
                "addr",
                "add",
                &format!("10.{net}.{n}.1/24"),
                "dev",
                "eth0",
            ]);
            end.exec(&[
                "ip",
                "route",
                "add",
                "default",
                "via",
                &format!("10.{net}.{n}.2"),
            ]);
        }
        r.exec(&["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
        Pods {
            a,
            r,
            b,
            b_addr: format!("10.87.{n}.1").parse().unwrap(),
        }
    }
}

#[test]
fn gc_with_sockets_all_judges_forwarded_pod_flows_by_their_namespaces_sockets() {
    require_root!();
    const PORT: u16 = 7621;
    let pods = Pods::new("gc-pods");
    common::drop_fin_rst(&pods.a, PORT);
    common::drop_fin_rst(&pods.b, PORT);
    let server = SocketAddr::new(pods.b_addr.into(), PORT);
    let listener = pods.b.run(|| TcpListener::bind(server).expect("listen"));
    let connect = || {
        pods.a
            .run(|| TcpStream::connect_timeout(&server, Duration::from_secs(5)).expect("connect"))
    };
    let (dead_client, dead_server) = pair(&listener, connect);
    let dead = Tuple::tcp(
        dead_client.local_addr().unwrap(),
        dead_client.peer_addr().unwrap(),
    );
    let (mut live_client, mut live_server) = pair(&listener, connect);
    let live = Tuple::tcp(
        live_client.local_addr().unwrap(),
        live_client.peer_addr().unwrap(),
    );
    reset_on_close(&dead_client);
    reset_on_close(&dead_server);
    drop((dead_client, dead_server));
    std::thread::sleep(WAIT);
    let mut ct_r = pods.r.conntrack();
    for orig in [&dead, &live] {
        let flow = ct_r
            .get(orig, 0)
            .unwrap()
            .expect("a forwarded flow in the router");
        assert_eq!(flow.tcp_state(), Some(TcpState::Established), "{flow:?}");
    }

    let port = PORT.to_string();
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "--netns",
            pods.r.name.as_str(),
            "--orphans",
            "--idle",
            "1",
            "-p",
            "tcp",
            "--dport",
            port.as_str(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |extra: &[&'static str]| -> String {
        let args = args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_example("gc", &args)
    };
    let json = |extra: &[&'static str]| -> Value {
        let out = run(extra);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("gc JSON ({e}): {out}"))
    };

    // The router's own namespace has neither end: both flows are suspected,
    // so --confirmed selects nothing.
    let report = json(&["--json"]);
    assert_eq!(report["orphans"]["suspected"], 2, "{report}");
    assert_eq!(report["orphans"]["confirmed"], 0, "{report}");
    let report = json(&["--json", "--confirmed", "--sockets", "namespace"]);
    assert_eq!(report["matched"], 0, "{report}");

    // --sockets all reads the pods' sockets: the dead connection confirmed,
    // the live one alive.
    let out = run(&["--sockets", "all", "--list"]);
    assert_eq!(
        listed_evidence(&out),
        vec![(port.clone(), "confirmed".to_owned())],
        "{out}"
    );
    assert!(out.contains("confirmed=1 suspected=0 alive=1"), "{out}");
    let report = json(&["--sockets", "all", "--confirmed", "--yes", "--json"]);
    assert_eq!(report["matched"], 1, "{report}");
    assert_eq!(report["deleted"], 1, "{report}");
    assert!(
        ct_r.get(&dead, 0).unwrap().is_none(),
        "the dead flow is gone"
    );
    assert!(
        ct_r.get(&live, 0).unwrap().is_some(),
        "the live flow is spared"
    );
    ping(&mut live_client, &mut live_server);

    // --confirmed with --sockets off is refused: it could select nothing.
    let output = Command::new(common::example_binary("gc"))
        .args(args(&["--confirmed", "--sockets", "off"]))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--confirmed with --sockets off"),
        "{stderr}"
    );
    drop(listener);
}

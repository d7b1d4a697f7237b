// SPDX-License-Identifier: MIT OR Apache-2.0
//! What conntrack-tools can do and this library now does too, against the
//! real kernel and, where it can do the same, conntrack-tools itself:
//! zero-on-read dumps, the dying and unconfirmed lists, bulk update by
//! filter, labels by name.

mod common;

use std::net::UdpSocket;

use common::TestNs;
use conntrack::*;

/// Sends `n` datagrams of `size` payload bytes from one client socket to one
/// server socket on loopback (one flow), and one answer to each.
fn udp_exchange(ns: &TestNs, ports: Option<(u16, u16)>, n: u32, size: usize) -> (u16, u16) {
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
    let ns = TestNs::new("ctrzero");
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
    let line = cli.lines().find(|l| l.contains("udp")).expect("the udp flow");
    assert!(line.contains("packets=0 bytes=0"), "{cli}");
}

#[test]
fn the_dying_and_unconfirmed_lists_dump_like_conntrack_tools() {
    require_root!();
    let ns = TestNs::new("lists");
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

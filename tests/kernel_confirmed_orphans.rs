// SPDX-License-Identifier: MIT OR Apache-2.0
//! Orphans confirmed by the socket table, against the real kernel: a client
//! namespace and a server namespace joined through a router namespace by veth
//! pairs, real TCP connections whose RST is dropped by nftables before
//! conntrack (the flow stays ESTABLISHED, the socket is gone), silent live
//! connections, DNAT to the local host, UDP servers that exit, the "pod" case
//! (the router's table, the sockets in the end namespaces), and a race test:
//! confirmed-only deletes while connections come and go never break a live one.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ping, reset_on_close, ScratchNs};
use conntrack::sockets::{LocalAddrs, SocketTable};
use conntrack::*;

const SECOND: Duration = Duration::from_secs(1);

static SUBNET: AtomicU32 = AtomicU32::new(0);

/// Client `a` and server `b`, each joined to router `r` by a veth pair; `r`
/// forwards. Every namespace tracks connections (ScratchNs's ruleset).
struct Topology {
    a: ScratchNs,
    r: ScratchNs,
    b: ScratchNs,
    /// The client's and the server's address, per family.
    a_addr: [IpAddr; 2],
    b_addr: [IpAddr; 2],
}

impl Topology {
    fn new(tag: &str) -> Topology {
        // Subnets unique within this process: SocketCheck::AllNamespaces reads
        // every namespace of the host, the other tests' ones included.
        let n = (std::process::id() % 40) as u8 * 6 + SUBNET.fetch_add(1, Ordering::SeqCst) as u8;
        let a = ScratchNs::new(&format!("{tag}a"));
        let r = ScratchNs::new(&format!("{tag}r"));
        let b = ScratchNs::new(&format!("{tag}b"));
        let a_v4 = format!("10.88.{n}.1");
        let ra_v4 = format!("10.88.{n}.2");
        let rb_v4 = format!("10.89.{n}.2");
        let b_v4 = format!("10.89.{n}.1");
        let a_v6 = format!("fd88:{n}::1");
        let ra_v6 = format!("fd88:{n}::2");
        let rb_v6 = format!("fd89:{n}::2");
        let b_v6 = format!("fd89:{n}::1");
        for (end, peer) in [(&a, "ea"), (&b, "eb")] {
            r.exec(&[
                "ip", "link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns",
                &end.name,
            ]);
            r.exec(&["ip", "link", "set", peer, "up"]);
            end.exec(&["ip", "link", "set", "eth0", "up"]);
        }
        let addr = |ns: &ScratchNs, dev: &str, cidr: &str| {
            let mut args = vec!["ip", "addr", "add", cidr, "dev", dev];
            if cidr.contains(':') {
                args.push("nodad");
            }
            ns.exec(&args);
        };
        addr(&a, "eth0", &format!("{a_v4}/24"));
        addr(&a, "eth0", &format!("{a_v6}/64"));
        addr(&r, "ea", &format!("{ra_v4}/24"));
        addr(&r, "ea", &format!("{ra_v6}/64"));
        addr(&r, "eb", &format!("{rb_v4}/24"));
        addr(&r, "eb", &format!("{rb_v6}/64"));
        addr(&b, "eth0", &format!("{b_v4}/24"));
        addr(&b, "eth0", &format!("{b_v6}/64"));
        a.exec(&["ip", "route", "add", "default", "via", &ra_v4]);
        a.exec(&["ip", "-6", "route", "add", "default", "via", &ra_v6]);
        b.exec(&["ip", "route", "add", "default", "via", &rb_v4]);
        b.exec(&["ip", "-6", "route", "add", "default", "via", &rb_v6]);
        r.exec(&["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
        r.exec(&[
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
        ]);
        Topology {
            a,
            r,
            b,
            a_addr: [a_v4.parse().unwrap(), a_v6.parse().unwrap()],
            b_addr: [b_v4.parse().unwrap(), b_v6.parse().unwrap()],
        }
    }
}

/// A connection: client stream (in `a`), server stream (in `b`), and the
/// conntrack original tuple as the client's namespace sees it.
struct Connection {
    client: TcpStream,
    server: TcpStream,
    tuple: Tuple,
}

fn connect(top: &Topology, listener: &TcpListener, to: SocketAddr) -> Connection {
    let client = top
        .a
        .run(|| TcpStream::connect_timeout(&to, 5 * SECOND).expect("connect"));
    let (server, _) = listener.accept().expect("accept");
    for s in [&client, &server] {
        s.set_read_timeout(Some(5 * SECOND)).unwrap();
    }
    let tuple = Tuple::tcp(client.local_addr().unwrap(), client.peer_addr().unwrap());
    let mut c = Connection {
        client,
        server,
        tuple,
    };
    ping(&mut c.client, &mut c.server);
    c
}

/// The orphans of `policy` as `orig tuple -> evidence`.
fn evidence_map(ct: &mut Conntrack, policy: &OrphanPolicy) -> BTreeMap<Tuple, Evidence> {
    let orphans = ct.orphans(policy).expect("orphans");
    let map: BTreeMap<Tuple, Evidence> =
        orphans.iter().map(|o| (o.flow.orig, o.evidence)).collect();
    assert_eq!(
        map.len(),
        orphans.len(),
        "an orphan listed twice: {orphans:#?}"
    );
    let counts = ct.count_orphans(policy).expect("count_orphans");
    assert_eq!(
        counts.total(),
        orphans.len() as u64,
        "{counts:?} vs {orphans:#?}"
    );
    let confirmed = map.values().filter(|e| **e == Evidence::Confirmed).count() as u64;
    assert_eq!(counts.confirmed, confirmed, "{counts:?}");
    map
}

/// Only the flows of TCP port `port` (the tests' own), as a candidate filter.
fn port_filter(port: u16) -> Filter {
    Filter::new().protocol(proto::TCP).dst_port(port)
}

/// Each test runs IPv4 (index 0) then IPv6 (index 1); the flows of the first
/// round stay in the tables, so each round looks at its own family only.
const FAMILIES: [Family; 2] = [Family::Ipv4, Family::Ipv6];

#[test]
fn lost_rsts_are_confirmed_silent_connections_alive_forwarded_flows_suspected() {
    require_root!();
    const PORT: u16 = 7301;
    let top = Topology::new("cfo");
    common::drop_fin_rst(&top.a, PORT);
    common::drop_fin_rst(&top.b, PORT);
    for (family, label) in [(0usize, "IPv4"), (1, "IPv6")] {
        let server_addr = SocketAddr::new(top.b_addr[family], PORT);
        let listener = top
            .b
            .run(|| TcpListener::bind(server_addr).expect("listen"));
        // dead_client: the client dies (RST lost), the server keeps its socket.
        // dead_both: both sides die (both RSTs lost). live: open and silent.
        let dead_client = connect(&top, &listener, server_addr);
        let dead_both = connect(&top, &listener, server_addr);
        let mut live = connect(&top, &listener, server_addr);
        std::thread::sleep(Duration::from_millis(300));
        reset_on_close(&dead_client.client);
        drop(dead_client.client);
        reset_on_close(&dead_both.client);
        reset_on_close(&dead_both.server);
        drop(dead_both.client);
        drop(dead_both.server);
        std::thread::sleep(Duration::from_millis(2200));

        let policy = OrphanPolicy::new()
            .idle_established(SECOND)
            .filter(port_filter(PORT).family(FAMILIES[family]));
        use Evidence::*;
        // The client's table: both dead connections confirmed, the silent one alive.
        let mut ct_a = top.a.conntrack();
        for t in [&dead_client.tuple, &dead_both.tuple, &live.tuple] {
            let flow = ct_a.get(t, 0).unwrap().expect("flow in the client's table");
            assert_eq!(
                flow.tcp_state(),
                Some(TcpState::Established),
                "{label} {flow:?}"
            );
        }
        let expected: BTreeMap<Tuple, Evidence> =
            [(dead_client.tuple, Confirmed), (dead_both.tuple, Confirmed)].into();
        assert_eq!(evidence_map(&mut ct_a, &policy), expected, "{label}");
        let counts = ct_a.count_orphans(&policy).unwrap();
        assert_eq!(
            (counts.confirmed, counts.alive, counts.suspected),
            (2, 1, 0),
            "{label} {counts:?}"
        );
        // Without the socket check all three are suspected.
        let unchecked = evidence_map(&mut ct_a, &policy.clone().sockets(SocketCheck::Off));
        assert_eq!(unchecked.len(), 3, "{label} {unchecked:?}");
        assert!(unchecked.values().all(|e| *e == Suspected));

        // The server's table: the server socket of dead_client still exists.
        let mut ct_b = top.b.conntrack();
        assert_eq!(
            evidence_map(&mut ct_b, &policy),
            [(dead_both.tuple, Confirmed)].into(),
            "{label}"
        );

        // The router's table: forwarded flows are suspected only...
        let mut ct_r = top.r.conntrack();
        let forwarded = evidence_map(&mut ct_r, &policy);
        assert_eq!(forwarded.len(), 3, "{label} {forwarded:?}");
        assert!(
            forwarded.values().all(|e| *e == Suspected),
            "{label} {forwarded:?}"
        );
        let confirmed_only = policy.clone().require_confirmation(true);
        assert!(evidence_map(&mut ct_r, &confirmed_only).is_empty());
        assert_eq!(ct_r.count_orphans(&confirmed_only).unwrap().suspected, 3);
        // ...unless the host's other namespaces are consulted (the pod case:
        // the sockets live in the end namespaces, not in the router's).
        let pods = policy.clone().sockets(SocketCheck::AllNamespaces);
        assert_eq!(
            evidence_map(&mut ct_r, &pods),
            [(dead_both.tuple, Confirmed)].into(),
            "{label}: the pod case"
        );

        // A confirmed-only delete in the client's table: exactly the dead ones.
        let report = ct_a
            .delete_orphans(&confirmed_only, DeleteOptions::default())
            .unwrap();
        assert_eq!(
            (report.matched, report.deleted),
            (2, 2),
            "{label} {report:?}"
        );
        assert!(ct_a.get(&dead_client.tuple, 0).unwrap().is_none());
        assert!(ct_a.get(&dead_both.tuple, 0).unwrap().is_none());
        assert!(ct_a.get(&live.tuple, 0).unwrap().is_some());
        ping(&mut live.client, &mut live.server);
        drop(listener);
    }
}

#[test]
fn dnat_to_the_local_host_is_judged_by_the_reply_tuple() {
    require_root!();
    const PORT: u16 = 7302;
    const PUBLIC: u16 = 7402;
    let top = Topology::new("cfn");
    common::drop_fin_rst(&top.b, PORT);
    top.b.nft("add table inet ctrsnat");
    top.b.exec(&[
        "nft",
        "add chain inet ctrsnat pre { type nat hook prerouting priority -100 ; }",
    ]);
    top.b.nft(&format!(
        "add rule inet ctrsnat pre tcp dport {PUBLIC} redirect to :{PORT}"
    ));
    for (family, label) in [(0usize, "IPv4"), (1, "IPv6")] {
        let listener = top
            .b
            .run(|| TcpListener::bind(SocketAddr::new(top.b_addr[family], PORT)).expect("listen"));
        let public = SocketAddr::new(top.b_addr[family], PUBLIC);
        // The server dies (its RST lost); the client keeps its socket.
        let dead_server = connect(&top, &listener, public);
        let mut live = connect(&top, &listener, public);
        std::thread::sleep(Duration::from_millis(300));
        reset_on_close(&dead_server.server);
        drop(dead_server.server);
        std::thread::sleep(Duration::from_millis(2200));

        let policy = OrphanPolicy::new().idle_established(SECOND).filter(
            Filter::new()
                .protocol(proto::TCP)
                .dst_port(PUBLIC)
                .family(FAMILIES[family]),
        );
        let mut ct_b = top.b.conntrack();
        let flow = ct_b
            .get(&dead_server.tuple, 0)
            .unwrap()
            .expect("DNATed flow");
        assert!(flow.status.dst_nat(), "{label} {flow:?}");
        assert_eq!(flow.reply.src, top.b_addr[family]);
        // NATed flows are excluded by default.
        assert!(evidence_map(&mut ct_b, &policy).is_empty());
        let with_nat = policy.clone().include_nat(true);
        assert_eq!(
            evidence_map(&mut ct_b, &with_nat),
            [(dead_server.tuple, Evidence::Confirmed)].into(),
            "{label}"
        );
        assert_eq!(ct_b.count_orphans(&with_nat).unwrap().alive, 1, "{label}");
        // The client's table (not NATed there): the client sockets live.
        let mut ct_a = top.a.conntrack();
        assert!(evidence_map(&mut ct_a, &policy).is_empty(), "{label}");
        let report = ct_b
            .delete_orphans(
                &with_nat.require_confirmation(true),
                DeleteOptions::default(),
            )
            .unwrap();
        assert_eq!(
            (report.matched, report.deleted),
            (1, 1),
            "{label} {report:?}"
        );
        ping(&mut live.client, &mut live.server);
        drop(listener);
    }
}

#[test]
fn a_udp_server_that_exits_leaves_confirmed_flows_a_live_one_does_not() {
    require_root!();
    let top = Topology::new("cfu");
    for (family, label) in [(0usize, "IPv4"), (1, "IPv6")] {
        let gone = SocketAddr::new(top.b_addr[family], 7311);
        let kept = SocketAddr::new(top.b_addr[family], 7312);
        // A wildcard-bound live server counts as bound too.
        let wildcard = SocketAddr::new(
            if family == 0 {
                [0u8; 4].into()
            } else {
                [0u16; 8].into()
            },
            7313,
        );
        let (gone_server, kept_server, wild_server) = top.b.run(|| {
            (
                UdpSocket::bind(gone).unwrap(),
                UdpSocket::bind(kept).unwrap(),
                UdpSocket::bind(wildcard).unwrap(),
            )
        });
        let wild_target = SocketAddr::new(top.b_addr[family], 7313);
        let client_addrs: Vec<SocketAddr> = top.a.run(|| {
            [gone, kept, wild_target]
                .iter()
                .map(|to| {
                    let socket = UdpSocket::bind(SocketAddr::new(top.a_addr[family], 0)).unwrap();
                    socket.send_to(b"metrics", to).unwrap();
                    socket.local_addr().unwrap()
                })
                .collect()
        });
        let mut buf = [0u8; 16];
        for server in [&gone_server, &kept_server, &wild_server] {
            server.set_read_timeout(Some(5 * SECOND)).unwrap();
            server.recv_from(&mut buf).expect("datagram arrives");
        }
        drop(gone_server);
        std::thread::sleep(Duration::from_millis(2200));
        let policy = OrphanPolicy::new()
            .only(OrphanCategory::LongUnreplied)
            .unreplied(SECOND)
            .filter(
                Filter::new()
                    .protocol(proto::UDP)
                    .dst_ports([7311, 7312, 7313])
                    .family(FAMILIES[family]),
            );
        let mut ct_b = top.b.conntrack();
        let gone_flow = Tuple::udp(client_addrs[0], gone);
        assert_eq!(
            evidence_map(&mut ct_b, &policy),
            [(gone_flow, Evidence::Confirmed)].into(),
            "{label}"
        );
        let counts = ct_b.count_orphans(&policy).unwrap();
        assert_eq!(
            (counts.confirmed, counts.alive),
            (1, 2),
            "{label} {counts:?}"
        );
        let report = ct_b
            .delete_orphans(
                &policy.clone().require_confirmation(true),
                DeleteOptions::default(),
            )
            .unwrap();
        assert_eq!(report.deleted, 1, "{label} {report:?}");
        drop((kept_server, wild_server));
    }
}

#[test]
fn the_socket_table_and_local_addresses_are_read_in_a_namespace() {
    require_root!();
    let top = Topology::new("cfs");
    let listener = top
        .b
        .run(|| TcpListener::bind(SocketAddr::new(top.b_addr[0], 7321)).unwrap());
    let c = connect(&top, &listener, SocketAddr::new(top.b_addr[0], 7321));
    let udp = top.b.run(|| UdpSocket::bind("[::]:7322").unwrap());
    let table = SocketTable::read(&top.b.netns()).unwrap();
    let (client, server) = (
        c.client.local_addr().unwrap(),
        c.server.local_addr().unwrap(),
    );
    assert!(table.has_tcp(server, client));
    assert!(
        !table.has_tcp(client, server),
        "the client lives in another namespace"
    );
    assert!(
        table.has_udp(SocketAddr::new(top.b_addr[0], 7322)),
        "dual-stack wildcard"
    );
    assert!(table.has_udp(SocketAddr::new(top.b_addr[1], 7322)));
    assert!(!table.has_udp(SocketAddr::new(top.b_addr[0], 7323)));
    let locals = LocalAddrs::read(&top.b.netns()).unwrap();
    assert!(locals.contains(top.b_addr[0]) && locals.contains(top.b_addr[1]));
    assert!(!locals.contains(top.a_addr[0]));
    drop((udp, listener));
}

/// A blocking TCP connection to `to` from the bound address `local`, in the
/// calling thread's namespace (std cannot bind before connecting).
fn connect_from(local: SocketAddr, to: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    fn raw(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin)
                };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: 0,
                };
                // SAFETY: as above.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6)
                };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        (storage, len as libc::socklen_t)
    }
    let family = if local.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the fd is owned by the TcpStream below.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh socket nobody else owns.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let (addr, len) = raw(local);
    // SAFETY: a valid socket and a sockaddr of `len` bytes.
    let rc = unsafe { libc::bind(fd, (&addr as *const libc::sockaddr_storage).cast(), len) };
    assert_eq!(rc, 0, "bind {local}: {}", std::io::Error::last_os_error());
    let (addr, len) = raw(to);
    // SAFETY: as above.
    let rc = unsafe { libc::connect(fd, (&addr as *const libc::sockaddr_storage).cast(), len) };
    assert_eq!(
        rc,
        0,
        "connect {local} -> {to}: {}",
        std::io::Error::last_os_error()
    );
    stream
}

/// The race of the module docs at its worst moment, made deterministic by a
/// test hook: after the dump and the socket read judged a flow confirmed
/// (both ends closed, RST lost on both sides, the entry ESTABLISHED), a new
/// connection on exactly its 4-tuple picks the dead entry up (same id)
/// before the re-check. The delete must spare it, and it must still work
/// afterwards with loose pickup off and invalid packets dropped (so a
/// deleted entry would break it for good). A second dead flow is deleted.
#[test]
fn a_connection_reusing_a_dead_flows_tuple_before_the_recheck_is_spared() {
    require_root!();
    const PORT: u16 = 7332;
    let top = Topology::new("cfh");
    top.a.sysctl("nf_conntrack_tcp_loose", "0");
    top.a.nft("add rule inet ctrs in ct state invalid drop");
    top.a.nft("add rule inet ctrs out ct state invalid drop");
    common::drop_fin_rst(&top.a, PORT);
    common::drop_fin_rst(&top.b, PORT);
    for (round, family) in FAMILIES.into_iter().enumerate() {
        let server_addr = SocketAddr::new(top.b_addr[round], PORT);
        let listener = Arc::new(top.b.run(|| TcpListener::bind(server_addr).unwrap()));
        // Two connections killed on both sides with their RSTs lost: dead
        // flows whose entries stay ESTABLISHED everywhere.
        let mut dead = Vec::new();
        for _ in 0..2 {
            let c = connect(&top, &listener, server_addr);
            reset_on_close(&c.client);
            reset_on_close(&c.server);
            dead.push((c.tuple, c.client.local_addr().unwrap()));
        }
        std::thread::sleep(Duration::from_millis(1200));
        let (reused, reused_local) = dead[0];
        let (gone, _) = dead[1];

        // The hook: the new connection on the first dead tuple, handshake and
        // one exchange done, before the re-check and the delete.
        let reborn: Arc<std::sync::Mutex<Option<(TcpStream, TcpStream)>>> = Arc::default();
        let seen: Arc<std::sync::Mutex<Vec<Tuple>>> = Arc::default();
        {
            let (reborn, seen, listener, a) =
                (reborn.clone(), seen.clone(), listener.clone(), top.a.file());
            conntrack::testing::hooks::before_orphan_recheck(Some(Box::new(move |tuples| {
                seen.lock().unwrap().extend_from_slice(tuples);
                if !tuples.contains(&reused) {
                    return;
                }
                let mut client = a.run(|| connect_from(reused_local, server_addr)).unwrap();
                let (mut server, _) = listener.accept().expect("accept the new connection");
                for s in [&client, &server] {
                    s.set_read_timeout(Some(2 * SECOND)).unwrap();
                }
                ping(&mut client, &mut server);
                *reborn.lock().unwrap() = Some((client, server));
            })));
        }
        let policy = OrphanPolicy::new()
            .idle_established(SECOND)
            .filter(port_filter(PORT).family(family))
            .require_confirmation(true);
        let mut ct = top.a.conntrack();
        let (report, counts) = ct
            .delete_orphans_counted(&policy, DeleteOptions::default())
            .unwrap();
        conntrack::testing::hooks::before_orphan_recheck(None);
        let seen = seen.lock().unwrap().clone();
        assert!(
            seen.contains(&reused) && seen.contains(&gone),
            "{family:?}: both dead flows were judged confirmed: {seen:?}"
        );
        let (mut client, mut server) = reborn
            .lock()
            .unwrap()
            .take()
            .expect("the hook made the new connection");
        assert_eq!(
            (report.matched, report.deleted, report.failed_total()),
            (1, 1, 0),
            "{family:?}: only the still-dead flow is deleted: {report:?} {counts:?}"
        );
        assert_eq!(counts.confirmed, 1, "{family:?}: {counts:?}");
        let table: Vec<Tuple> = ct.flows().unwrap().map(|f| f.unwrap().orig).collect();
        assert!(
            table.contains(&reused),
            "{family:?}: the reborn entry stays"
        );
        assert!(!table.contains(&gone), "{family:?}: the dead entry is gone");
        // The new connection still works, both ways, after the delete.
        ping(&mut client, &mut server);
        ping(&mut server, &mut client);
    }
}

#[test]
fn confirmed_deletes_never_break_a_live_connection_under_churn() {
    require_root!();
    const PORT: u16 = 7331;
    let top = Topology::new("cfr");
    // Deleting a live flow would break it for good: no loose pickup, and
    // untracked (invalid) packets dropped on the client's side.
    top.a.sysctl("nf_conntrack_tcp_loose", "0");
    top.a.nft("add rule inet ctrs in ct state invalid drop");
    top.a.nft("add rule inet ctrs out ct state invalid drop");
    common::drop_fin_rst(&top.a, PORT);
    common::drop_fin_rst(&top.b, PORT);
    let server_addr = SocketAddr::new(top.b_addr[0], PORT);
    let listener = Arc::new(top.b.run(|| TcpListener::bind(server_addr).unwrap()));
    // A server that echoes every connection until it closes.
    let accepting = Arc::new(AtomicBool::new(true));
    let server = {
        let (listener, accepting) = (listener.clone(), accepting.clone());
        std::thread::spawn(move || {
            let mut workers = Vec::new();
            listener.set_nonblocking(true).unwrap();
            while accepting.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        workers.push(std::thread::spawn(move || {
                            let mut buf = [0u8; 4];
                            while stream.read_exact(&mut buf).is_ok() {
                                if &buf == b"kill" {
                                    // Both ends die with their RSTs lost.
                                    reset_on_close(&stream);
                                    let _ = stream.write_all(b"dead");
                                    break;
                                }
                                if stream.write_all(b"pong").is_err() {
                                    break;
                                }
                            }
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            workers
        })
    };
    let echo = |s: &mut TcpStream| -> bool {
        let mut buf = [0u8; 4];
        s.write_all(b"ping").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"pong"
    };
    let open = || -> TcpStream {
        let s = top
            .a
            .run(|| TcpStream::connect_timeout(&server_addr, 5 * SECOND).expect("connect"));
        s.set_read_timeout(Some(3 * SECOND)).unwrap();
        s
    };
    // Long-lived silent connections and dead ones (RST lost) to delete.
    let mut silent: Vec<TcpStream> = (0..20).map(|_| open()).collect();
    for s in &mut silent {
        assert!(echo(s));
    }
    let mut dead = 0;
    for _ in 0..10 {
        let mut s = open();
        assert!(echo(&mut s));
        reset_on_close(&s);
        dead += 1;
    }
    std::thread::sleep(Duration::from_millis(300));

    // Churn: connections opened, used, held a little and closed, continuously.
    let stop = Arc::new(AtomicBool::new(false));
    let broken = Arc::new(AtomicU32::new(0));
    let made = Arc::new(AtomicU32::new(0));
    let churners: Vec<_> = (0..4)
        .map(|k| {
            let (stop, broken, made) = (stop.clone(), broken.clone(), made.clone());
            let file = top.a.file();
            std::thread::spawn(move || {
                file.run(|| {
                    let mut i = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let Ok(mut s) = TcpStream::connect_timeout(&server_addr, 5 * SECOND) else {
                            broken.fetch_add(1, Ordering::SeqCst);
                            continue;
                        };
                        s.set_read_timeout(Some(3 * SECOND)).unwrap();
                        let ok = |s: &mut TcpStream| {
                            let mut buf = [0u8; 4];
                            s.write_all(b"ping").is_ok() && s.read_exact(&mut buf).is_ok()
                        };
                        if !ok(&mut s) {
                            broken.fetch_add(1, Ordering::SeqCst);
                        }
                        std::thread::sleep(Duration::from_millis(5 + (i * 7 + k) % 40));
                        // Each client verifies its connection before closing it.
                        if !ok(&mut s) {
                            broken.fetch_add(1, Ordering::SeqCst);
                        }
                        // Every other one dies at both ends with its RSTs
                        // lost: dead flows (in every table, ESTABLISHED) keep
                        // appearing while the deletes run, and a later
                        // connection may reuse their 4-tuple.
                        if i % 2 == 0 {
                            let mut buf = [0u8; 4];
                            if s.write_all(b"kill").is_err()
                                || s.read_exact(&mut buf).is_err()
                                || &buf != b"dead"
                            {
                                broken.fetch_add(1, Ordering::SeqCst);
                            }
                            reset_on_close(&s);
                        }
                        made.fetch_add(1, Ordering::SeqCst);
                        i += 1;
                    }
                })
                .unwrap()
            })
        })
        .collect();

    // Every category at a zero threshold: every flow is a candidate by the
    // estimate; only the socket table may spare the live ones.
    let policy = OrphanPolicy::new()
        .idle_established(Duration::ZERO)
        .half_closed(Duration::ZERO)
        .unreplied(Duration::ZERO)
        .filter(port_filter(PORT))
        .require_confirmation(true);
    let mut ct = top.a.conntrack();
    let (mut deleted, mut rounds) = (0u64, 0);
    let until = Instant::now() + 4 * SECOND;
    while Instant::now() < until {
        let report = ct
            .delete_orphans(&policy, DeleteOptions::default())
            .unwrap();
        assert_eq!(report.failed_total(), 0, "{report:?}");
        deleted += report.deleted;
        rounds += 1;
    }
    stop.store(true, Ordering::SeqCst);
    for c in churners {
        c.join().unwrap();
    }
    assert_eq!(broken.load(Ordering::SeqCst), 0, "a live connection broke");
    assert!(
        made.load(Ordering::SeqCst) > 50,
        "churn too slow to mean anything"
    );
    for (i, s) in silent.iter_mut().enumerate() {
        assert!(
            echo(s),
            "silent connection {i} broken after {rounds} rounds"
        );
    }
    eprintln!(
        "churn: {} connections made, {deleted} dead flows deleted in {rounds} confirmed-only rounds",
        made.load(Ordering::SeqCst)
    );
    // The first dead ones, and churned ones that died during the run.
    assert!(
        deleted >= dead + 10,
        "dead connections were deleted during the churn: {deleted} < {dead} + 10"
    );
    accepting.store(false, Ordering::SeqCst);
    drop(silent);
    let _ = server.join();
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! The socket decoder of `conntrack::sockets` against `netlink-packet-sock-diag`
//! on the same captured inet_diag replies: is our own decoder worth keeping?
//!
//! Root only (it captures a real dump); otherwise it prints one line saying
//! why it skipped. A throwaway namespace (deleted on drop) holds about 30 000
//! sockets, half IPv4 and half IPv6 on loopback: 4 000 open TCP connections
//! (8 000 sockets and two listeners), 12 000 `TIME_WAIT` sockets (closed
//! connections: they hold no file descriptor, the fd limit here is 20 000)
//! and 10 000 bound UDP sockets. The four inet_diag dumps `SocketTable::read`
//! makes (TCP and UDP, `AF_INET` and `AF_INET6`, every state) are captured as
//! the kernel sent them: multi-part datagrams of up to 64 KiB, attributes
//! included, then the sockets are closed and the namespace deleted. Every
//! path then decodes the same in-memory datagrams; `Throughput::Elements`
//! is the number of sockets:
//!
//! * `walk`: the message framing only (`wire::Messages`), the floor;
//! * `ours_decode`: `wire::Messages` + `sockets::decode_socket`, the fields
//!   a check reads summed (no set);
//! * `netlink_packet_sock_diag_decode`:
//!   `NetlinkMessage::<SockDiagMessage>::deserialize` per message (its typed
//!   parse, attributes included), the same fields summed;
//! * `ours` and `netlink_packet_sock_diag`: the same, each socket inserted
//!   into the sets `SocketTable` keeps (TCP 4-tuples except listeners, UDP
//!   bound address and port, wildcards apart; `SocketTable`'s key, hash and
//!   hasher), what `SocketTable::read` does with a dump.
//!
//! For scale, it first times `SocketTable::read` of the namespace (the four
//! dumps from the kernel, decoded into the sets). Before timing, both
//! decoders must build identical sets. Also prints how
//! well the TCP keys spread over hash buckets (distinct values of the low 15
//! bits of their hashes, which pick the bucket), and the medians of
//! interleaved rounds (21, or `CONNTRACK_BENCH_ROUNDS`) in ns per socket with
//! the ratio of the two decoders.
//!
//! `ours` goes through the public `decode_socket`, which also builds the
//! `SocketEntry` (two `SocketAddr`s, the inode); `SocketTable`'s own dump
//! reads the same fixed offsets without building them, so it is at most as
//! slow as measured here.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr, TcpListener, TcpStream, UdpSocket};
use std::time::Instant;

use conntrack::consts::{NLMSG_DONE, NLMSG_ERROR};
use conntrack::sockets::{decode_socket, key_of, SocketTable};
use conntrack::testing::bench::median;
use conntrack::testing::scratch::{is_root, ScratchNs};
use conntrack::wire::{Encoder, Messages};
use criterion::{BenchmarkId, Criterion, Throughput};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{Socket, SocketAddr};

const TCP_CONNECTIONS: u32 = 4_000;
const TIME_WAIT: u32 = 12_000;
const UDP_SOCKETS: u32 = 10_000;

/// `NETLINK_SOCK_DIAG`, `SOCK_DIAG_BY_FAMILY`.
const NETLINK_SOCK_DIAG: isize = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;

/// One captured dump: the protocol asked for and the datagrams received.
struct Capture {
    tcp: bool,
    datagrams: Vec<Vec<u8>>,
}

/// Dumps every socket of `protocol` and `family` on `socket`, as
/// `SocketTable::read` asks (`inet_diag_req_v2`, every state, no extension),
/// and keeps each datagram.
fn capture(socket: &Socket, seq: u32, protocol: u8, family: u8) -> Capture {
    let mut enc = Encoder::new();
    let mark = enc.begin_raw(
        SOCK_DIAG_BY_FAMILY,
        conntrack::consts::NLM_F_REQUEST | conntrack::consts::NLM_F_DUMP,
        seq,
    );
    let mut req = [0u8; 56];
    req[0] = family;
    req[1] = protocol;
    req[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
    enc.raw(&req);
    enc.end(mark);
    socket
        .send_to(enc.as_bytes(), &SocketAddr::new(0, 0), 0)
        .expect("send the dump request");
    let mut buf = vec![0u8; 64 * 1024];
    let mut datagrams = Vec::new();
    loop {
        let mut window: &mut [u8] = &mut buf;
        let len = socket.recv(&mut window, 0).expect("recv");
        let datagram = buf[..len].to_vec();
        let done = Messages::new(&datagram).any(|m| {
            let m = m.expect("a well-formed reply");
            assert_ne!(m.kind, NLMSG_ERROR, "the dump failed");
            m.kind == NLMSG_DONE
        });
        datagrams.push(datagram);
        if done {
            return Capture {
                tcp: protocol == libc::IPPROTO_TCP as u8,
                datagrams,
            };
        }
    }
}

/// The floor: the framing only.
fn walk(captures: &[Capture]) -> usize {
    let mut n = 0;
    for capture in captures {
        for datagram in &capture.datagrams {
            for message in Messages::new(datagram) {
                let message = message.expect("framing");
                n += usize::from(message.kind == SOCK_DIAG_BY_FAMILY);
            }
        }
    }
    n
}

/// The fields a check reads of one socket: whether the dump was TCP, the
/// state, local address key and port, remote address key and port.
type Fields = (bool, u8, u128, u16, u128, u16);

/// A decoder under test: walks every reply, handing each socket's fields to
/// `each` (statically dispatched: nothing but the decode is measured).
trait Decoder {
    fn each(captures: &[Capture], each: impl FnMut(Fields));
}

/// Our decoder (`sockets::decode_socket`).
struct Ours;

/// netlink-packet-sock-diag's typed parse.
struct Theirs;

impl Decoder for Ours {
    #[inline(always)]
    fn each(captures: &[Capture], mut each: impl FnMut(Fields)) {
        for capture in captures {
            for datagram in &capture.datagrams {
                for message in Messages::new(datagram) {
                    let message = message.expect("framing");
                    if message.kind != SOCK_DIAG_BY_FAMILY {
                        continue;
                    }
                    let socket = decode_socket(message.payload).expect("decode");
                    each((
                        capture.tcp,
                        socket.state,
                        key_of(socket.local.ip()),
                        socket.local.port(),
                        key_of(socket.remote.ip()),
                        socket.remote.port(),
                    ));
                }
            }
        }
    }
}

impl Decoder for Theirs {
    #[inline(always)]
    fn each(captures: &[Capture], mut each: impl FnMut(Fields)) {
        for capture in captures {
            for datagram in &capture.datagrams {
                let mut offset = 0;
                while offset < datagram.len() {
                    let message =
                        NetlinkMessage::<SockDiagMessage>::deserialize(&datagram[offset..])
                            .expect("netlink-packet-sock-diag parses the reply");
                    let length = message.header.length as usize;
                    if let NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) =
                        message.payload
                    {
                        let id = &response.header.socket_id;
                        each((
                            capture.tcp,
                            response.header.state,
                            key_of(id.source_address),
                            id.source_port,
                            key_of(id.destination_address),
                            id.destination_port,
                        ));
                    }
                    if length == 0 {
                        break;
                    }
                    offset += (length + 3) & !3;
                }
            }
        }
    }
}

/// The decode alone: the fields a check reads, summed.
fn decode_only<D: Decoder>(captures: &[Capture]) -> u64 {
    let mut sum = 0u64;
    D::each(
        captures,
        |(_, state, local, local_port, remote, remote_port)| {
            sum = sum
                .wrapping_add(u64::from(state))
                .wrapping_add(local as u64)
                .wrapping_add(u64::from(local_port))
                .wrapping_add(remote as u64)
                .wrapping_add(u64::from(remote_port));
        },
    );
    sum
}

/// The decode into `SocketTable`'s sets, by its own insertion.
fn into_sets<D: Decoder>(captures: &[Capture]) -> SocketTable {
    let mut table = SocketTable::default();
    D::each(
        captures,
        |(tcp, state, local, local_port, remote, remote_port)| {
            table.insert_socket(tcp, state, local, local_port, remote, remote_port)
        },
    );
    table
}

fn main() {
    if !is_root() {
        println!("sock_diag_decode: skipped: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create a network namespace and its sockets");
        return;
    }
    let started = Instant::now();
    let (captures, sockets, read) = {
        let ns = ScratchNs::new("bench-sockdiag");
        let netns = ns.netns();
        ns.run(|| {
            let v4: IpAddr = [127, 0, 0, 1].into();
            let v6: IpAddr = Ipv6Addr::LOCALHOST.into();
            let listeners = [
                TcpListener::bind((v4, 5000)).expect("listen"),
                TcpListener::bind((v6, 5000)).expect("listen"),
            ];
            let connect = |i: u32| {
                let listener = &listeners[(i % 2) as usize];
                let client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
                let (server, _) = listener.accept().expect("accept");
                (client, server)
            };
            let open: Vec<(TcpStream, TcpStream)> = (0..TCP_CONNECTIONS).map(connect).collect();
            let udp: Vec<UdpSocket> = (0..UDP_SOCKETS)
                .map(|i| {
                    let addr = if i % 2 == 0 { v4 } else { v6 };
                    UdpSocket::bind((addr, 20_000 + i as u16)).expect("bind")
                })
                .collect();
            // The client closes first: its end stays in TIME_WAIT, no fd held.
            for i in 0..TIME_WAIT {
                let (client, server) = connect(i);
                drop(client);
                drop(server);
            }
            let mut socket = Socket::new(NETLINK_SOCK_DIAG).expect("sock_diag socket");
            socket.bind_auto().expect("bind");
            let mut captures = Vec::new();
            let mut seq = 0;
            for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
                for protocol in [libc::IPPROTO_TCP as u8, libc::IPPROTO_UDP as u8] {
                    seq += 1;
                    captures.push(capture(&socket, seq, protocol, family));
                }
            }
            let sockets = walk(&captures);
            // The whole read, kernel included, for scale.
            let reads: Vec<std::time::Duration> = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let table = SocketTable::read(&netns).expect("read the socket table");
                    let elapsed = t.elapsed();
                    assert_eq!(table.udp_len(), UDP_SOCKETS as usize);
                    elapsed
                })
                .collect();
            drop((open, udp, listeners));
            (captures, sockets, median(reads))
        })
    };
    eprintln!(
        "SocketTable::read of the namespace (four dumps from the kernel, decoded into the sets): \
         {:.1} ms, {:.0} ns per socket (median of 5)",
        read.as_secs_f64() * 1e3,
        read.as_nanos() as f64 / sockets as f64
    );
    let datagrams: usize = captures.iter().map(|c| c.datagrams.len()).sum();
    let bytes: usize = captures
        .iter()
        .flat_map(|c| &c.datagrams)
        .map(Vec::len)
        .sum();
    eprintln!(
        "captured {sockets} sockets in {datagrams} datagrams ({:.1} MiB, {:.0} B per socket) in {:.1} s",
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / sockets as f64,
        started.elapsed().as_secs_f64()
    );
    let expected = TCP_CONNECTIONS * 2 + 2 + TIME_WAIT + UDP_SOCKETS;
    assert!(
        sockets as u32 >= expected,
        "captured {sockets} sockets, made {expected}"
    );

    // Both decoders must agree before either is timed.
    let a = into_sets::<Ours>(&captures);
    let b = into_sets::<Theirs>(&captures);
    assert_eq!(a, b, "the two decoders build different sets");
    assert_eq!(a.udp_len(), UDP_SOCKETS as usize);
    assert!(a.tcp_len() >= (TCP_CONNECTIONS * 2 + TIME_WAIT) as usize);
    assert_eq!(
        decode_only::<Ours>(&captures),
        decode_only::<Theirs>(&captures)
    );
    let buckets: HashSet<u64> = a.tcp_key_hashes().map(|h| h & 0x7fff).collect();
    eprintln!(
        "sets: {} TCP keys ({} distinct low-15-bit hashes), {} UDP sockets",
        a.tcp_len(),
        buckets.len(),
        a.udp_len(),
    );

    type Path = (&'static str, fn(&[Capture]) -> u64);
    let paths: [Path; 5] = [
        ("walk", |c| walk(c) as u64),
        ("ours_decode", decode_only::<Ours>),
        ("netlink_packet_sock_diag_decode", decode_only::<Theirs>),
        ("ours", |c| into_sets::<Ours>(c).udp_len() as u64),
        ("netlink_packet_sock_diag", |c| {
            into_sets::<Theirs>(c).udp_len() as u64
        }),
    ];
    let rounds = conntrack::testing::bench::env_or("CONNTRACK_BENCH_ROUNDS", 21) as usize;
    let mut times = vec![Vec::new(); paths.len()];
    for _ in 0..rounds {
        for (k, (_, path)) in paths.iter().enumerate() {
            let t = Instant::now();
            std::hint::black_box(path(&captures));
            times[k].push(t.elapsed());
        }
    }
    let per_socket: Vec<f64> = times
        .into_iter()
        .map(|t| median(t).as_nanos() as f64 / sockets as f64)
        .collect();
    for (k, (name, _)) in paths.iter().enumerate() {
        let ratio = match k {
            2 => format!(" ({:.1}x ours_decode)", per_socket[2] / per_socket[1]),
            4 => format!(" ({:.1}x ours)", per_socket[4] / per_socket[3]),
            _ => String::new(),
        };
        eprintln!(
            "median of {rounds}: {name:<32} {:8.1} ns per socket{ratio}",
            per_socket[k]
        );
    }

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("sock_diag_decode");
    group.throughput(Throughput::Elements(sockets as u64));
    for (name, path) in paths {
        group.bench_function(BenchmarkId::new(name, sockets), |b| {
            b.iter(|| path(&captures))
        });
    }
    group.finish();
    criterion.final_summary();
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! The socket table of a network namespace, read over `NETLINK_SOCK_DIAG`
//! (inet_diag), and its local addresses, read over `NETLINK_ROUTE`
//! (`RTM_GETADDR`): the evidence that turns an orphan estimate into a fact.
//!
//! A flow that ends on this host has a socket at its local end for as long as
//! the connection lives: TCP in any state (`TIME_WAIT` included), UDP while
//! something is bound to the address and port. [`SocketTable`] holds what a
//! check needs in a compact set — for TCP the 4-tuple `(local address, local
//! port, remote address, remote port)`, for UDP the bound `(address, port)`
//! (wildcard binds kept apart) — filled while the dump streams by, never
//! holding the kernel's messages. [`LocalAddrs`] is the set of addresses
//! assigned to the namespace's interfaces.
//!
//! Addresses are kept as IPv6 (IPv4 as `::ffff:a.b.c.d`) so that a dual-stack
//! socket, which the kernel reports in `AF_INET6` with a v4-mapped address,
//! matches the IPv4 flow it carries.
//!
//! The decoder is our own, on the crate's wire layer: an `inet_diag_msg` is a
//! fixed 72-byte header whose fields sit at fixed offsets, and a check reads
//! six of them and no attribute. Measured against `netlink-packet-sock-diag`
//! 0.5 on a captured dump of 30 000 sockets (`benches/sock_diag_decode.rs`,
//! figures in `benches/README.md`): 9 against 222 ns per socket for the
//! decode, 40 against 231 ns into [`SocketTable`]'s sets; the crate's typed
//! parse allocates per message and would add about 18 % to a whole
//! [`SocketTable::read`], ours about 4 %.
//!
//! Contract of [`decode_socket`]: any byte string yields a value or a
//! [`DecodeError`], never a panic; a message shorter than `inet_diag_msg` is
//! `Truncated`, an address family other than `AF_INET`/`AF_INET6` `Invalid`.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::consts::*;
use crate::error::{DecodeError, DecodeErrorKind, Error, Result};
use crate::filter::AddrHasher;
use crate::netns::{Netns, NetnsFile};
use crate::socket::NlSocket;
use crate::wire::{parse_error, Attrs, Encoder, Messages};

/// `NETLINK_SOCK_DIAG` (`include/uapi/linux/netlink.h`).
const NETLINK_SOCK_DIAG: isize = 4;
/// `NETLINK_ROUTE`.
const NETLINK_ROUTE: isize = 0;
/// `SOCK_DIAG_BY_FAMILY` (`include/uapi/linux/sock_diag.h`).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `RTM_NEWADDR` / `RTM_GETADDR` (`include/uapi/linux/rtnetlink.h`).
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
/// `IFA_ADDRESS` / `IFA_LOCAL` (`include/uapi/linux/if_addr.h`).
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// Size of `struct ifaddrmsg`.
const IFADDRMSG_LEN: usize = 8;
/// Size of `struct inet_diag_msg` (`include/uapi/linux/inet_diag.h`).
pub const INET_DIAG_MSG_LEN: usize = 72;
/// Size of `struct inet_diag_req_v2`.
const INET_DIAG_REQ_V2_LEN: usize = 56;
/// `TCP_LISTEN` (`include/net/tcp_states.h`).
const TCP_LISTEN: u8 = 10;
/// `INET_DIAG_NOCOOKIE`: match any socket cookie.
const INET_DIAG_NOCOOKIE: u32 = !0;
/// Exact lookups sent per datagram: the replies (at most one message of a few
/// hundred bytes each) must fit the socket's default receive buffer, or the
/// kernel would drop them.
const LOOKUP_BATCH: usize = 64;

type FastBuild = BuildHasherDefault<AddrHasher>;

/// An address as the key of every set here: IPv6 bits, IPv4 v4-mapped.
/// Public (hidden) for the benches that feed captured replies to
/// [`SocketTable::insert_socket`].
#[doc(hidden)]
#[inline]
pub fn key_of(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => 0xffff_0000_0000 | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn addr_of(key: u128) -> IpAddr {
    let v6 = Ipv6Addr::from(key);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// One TCP connection end: local and remote address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpKey {
    pub(crate) local: u128,
    pub(crate) remote: u128,
    pub(crate) ports: u32,
}

impl TcpKey {
    #[inline]
    pub(crate) fn new(local: u128, local_port: u16, remote: u128, remote_port: u16) -> Self {
        TcpKey {
            local,
            remote,
            ports: u32::from(local_port) << 16 | u32::from(remote_port),
        }
    }
}

impl Hash for TcpKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(self.local ^ self.remote.rotate_left(17));
        state.write_u64(u64::from(self.ports));
    }
}

/// One socket as inet_diag reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketEntry {
    /// `AF_INET` or `AF_INET6` (a dual-stack socket carrying IPv4 reports
    /// `AF_INET6` with v4-mapped addresses; [`local`](Self::local) and
    /// [`remote`](Self::remote) give them as IPv4).
    pub family: u8,
    /// `idiag_state`: the TCP state (`1` ESTABLISHED ... `6` TIME_WAIT, `10`
    /// LISTEN, `12` NEW_SYN_RECV); UDP uses `1` (connected) and `7` (unconnected).
    pub state: u8,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port (unspecified, port 0, when unconnected).
    pub remote: SocketAddr,
    /// `idiag_inode` (0 for `TIME_WAIT` and request sockets).
    pub inode: u32,
}

/// The raw fields a check needs, without building `SocketAddr`s.
#[derive(Clone, Copy)]
struct RawSocket {
    state: u8,
    local: u128,
    local_port: u16,
    remote: u128,
    remote_port: u16,
}

#[inline]
fn raw_socket(payload: &[u8], offset: usize) -> Result<RawSocket, DecodeError> {
    let Some(msg) = payload.get(..INET_DIAG_MSG_LEN) else {
        return Err(DecodeError::new(
            "inet_diag_msg",
            DecodeErrorKind::Truncated {
                needed: INET_DIAG_MSG_LEN,
                available: payload.len(),
            },
            offset,
        ));
    };
    let address = |at: usize| -> u128 {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&msg[at..at + 16]);
        u128::from_be_bytes(bytes)
    };
    let (local, remote) = match u16::from(msg[0]) as i32 {
        libc::AF_INET => {
            let v4 = |at: usize| {
                0xffff_0000_0000
                    | u128::from(u32::from_be_bytes([
                        msg[at],
                        msg[at + 1],
                        msg[at + 2],
                        msg[at + 3],
                    ]))
            };
            (v4(8), v4(24))
        }
        libc::AF_INET6 => (address(8), address(24)),
        _ => {
            return Err(DecodeError::new(
                "inet_diag_msg.idiag_family",
                DecodeErrorKind::Invalid,
                offset,
            ))
        }
    };
    Ok(RawSocket {
        state: msg[1],
        local,
        local_port: u16::from_be_bytes([msg[4], msg[5]]),
        remote,
        remote_port: u16::from_be_bytes([msg[6], msg[7]]),
    })
}

/// Decodes the payload of one `SOCK_DIAG_BY_FAMILY` reply (everything after
/// the `nlmsghdr`): the fixed `inet_diag_msg` header; attributes are ignored.
pub fn decode_socket(payload: &[u8]) -> Result<SocketEntry, DecodeError> {
    let raw = raw_socket(payload, NLMSG_HDRLEN)?;
    let inode = u32::from_ne_bytes([payload[68], payload[69], payload[70], payload[71]]);
    Ok(SocketEntry {
        family: payload[0],
        state: raw.state,
        local: SocketAddr::new(addr_of(raw.local), raw.local_port),
        remote: SocketAddr::new(addr_of(raw.remote), raw.remote_port),
        inode,
    })
}

/// The TCP and UDP sockets of one or more network namespaces, as sets.
///
/// ```no_run
/// use conntrack::{sockets::SocketTable, Netns};
/// # fn main() -> conntrack::Result<()> {
/// let table = SocketTable::read(&Netns::Current)?;
/// println!("{} TCP, {} UDP", table.tcp_len(), table.udp_len());
/// let live = table.has_tcp("127.0.0.1:5432".parse().unwrap(), "127.0.0.1:40000".parse().unwrap());
/// # let _ = live; Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketTable {
    tcp: HashSet<TcpKey, FastBuild>,
    /// Bound UDP `(address, port)` with a specific address.
    udp: HashSet<(u128, u16), FastBuild>,
    /// Ports with a UDP socket bound to the IPv4 wildcard (`false`) or the
    /// IPv6 wildcard (`true`, which also receives IPv4 unless `IPV6_V6ONLY`:
    /// counted for both, the safe side).
    udp_wildcard: HashSet<(bool, u16), FastBuild>,
    udp_sockets: usize,
}

impl SocketTable {
    /// Reads every TCP socket (all states, `TIME_WAIT` and request sockets
    /// included) and every UDP socket, IPv4 and IPv6, of a namespace: four
    /// streaming inet_diag dumps. Any user may read the socket table of its own
    /// namespace; entering another one needs `CAP_SYS_ADMIN`.
    pub fn read(netns: &Netns) -> Result<SocketTable> {
        let file = netns.open()?;
        read_in(file.as_ref(), |socket| {
            let mut table = SocketTable::default();
            table.fill(socket)?;
            Ok(table)
        })
    }

    pub(crate) fn fill(&mut self, socket: &mut DiagSocket) -> Result<()> {
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            for (protocol, tcp) in [
                (libc::IPPROTO_TCP as u8, true),
                (libc::IPPROTO_UDP as u8, false),
            ] {
                socket.dump(protocol, family, |raw| {
                    self.insert_socket(
                        tcp,
                        raw.state,
                        raw.local,
                        raw.local_port,
                        raw.remote,
                        raw.remote_port,
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Adds one socket of a TCP (`tcp`) or UDP dump as the table keeps it:
    /// TCP by 4-tuple, listeners left out; UDP by bound address and port,
    /// the wildcards apart. Addresses as [`key_of`] gives them. Public
    /// (hidden) so that the benches measure this very insertion.
    #[doc(hidden)]
    #[inline]
    pub fn insert_socket(
        &mut self,
        tcp: bool,
        state: u8,
        local: u128,
        local_port: u16,
        remote: u128,
        remote_port: u16,
    ) {
        if tcp {
            if state != TCP_LISTEN {
                self.tcp
                    .insert(TcpKey::new(local, local_port, remote, remote_port));
            }
        } else {
            self.udp_sockets += 1;
            if local == 0 {
                self.udp_wildcard.insert((true, local_port));
            } else if local == 0xffff_0000_0000 {
                self.udp_wildcard.insert((false, local_port));
            } else {
                self.udp.insert((local, local_port));
            }
        }
    }

    /// The hash of every TCP key (the benches look at how they spread over
    /// buckets). Hidden: not part of the supported API.
    #[doc(hidden)]
    pub fn tcp_key_hashes(&self) -> impl Iterator<Item = u64> + '_ {
        use std::hash::BuildHasher;
        let build = FastBuild::default();
        self.tcp.iter().map(move |key| build.hash_one(key))
    }

    /// Adds every socket of `other` (the tables of several namespaces).
    pub fn merge(&mut self, other: SocketTable) {
        self.tcp.extend(other.tcp);
        self.udp.extend(other.udp);
        self.udp_wildcard.extend(other.udp_wildcard);
        self.udp_sockets += other.udp_sockets;
    }

    /// TCP sockets held (listening sockets are not kept).
    pub fn tcp_len(&self) -> usize {
        self.tcp.len()
    }

    /// UDP sockets read.
    pub fn udp_len(&self) -> usize {
        self.udp_sockets
    }

    /// Whether a TCP socket (any state but `LISTEN`) has this 4-tuple.
    pub fn has_tcp(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        self.has_tcp_key(&TcpKey::new(
            key_of(local.ip()),
            local.port(),
            key_of(remote.ip()),
            remote.port(),
        ))
    }

    #[inline]
    pub(crate) fn has_tcp_key(&self, key: &TcpKey) -> bool {
        self.tcp.contains(key)
    }

    /// Whether a UDP socket is bound where a datagram to `local` would be
    /// delivered: that address and port, or the wildcard on that port.
    pub fn has_udp(&self, local: SocketAddr) -> bool {
        self.has_udp_key(key_of(local.ip()), local.port())
    }

    #[inline]
    pub(crate) fn has_udp_key(&self, local: u128, port: u16) -> bool {
        let v4 = local >> 32 == 0xffff;
        self.udp.contains(&(local, port))
            || self.udp_wildcard.contains(&(true, port))
            || (v4 && self.udp_wildcard.contains(&(false, port)))
    }
}

/// The addresses assigned to the interfaces of one or more namespaces
/// (`RTM_GETADDR`: `IFA_LOCAL`, else `IFA_ADDRESS`; a point-to-point peer is
/// not local), each remembering which namespaces (by index, up to 63; 63
/// stands for "63 or later") it belongs to.
#[derive(Debug, Clone, Default)]
pub struct LocalAddrs {
    addrs: HashMap<u128, u64, FastBuild>,
}

impl LocalAddrs {
    /// The local addresses of one namespace.
    pub fn read(netns: &Netns) -> Result<LocalAddrs> {
        let file = netns.open()?;
        let mut addrs = LocalAddrs::default();
        for addr in read_addresses(file.as_ref())? {
            addrs.insert(addr, 0);
        }
        Ok(addrs)
    }

    pub(crate) fn insert(&mut self, addr: u128, namespace: usize) {
        *self.addrs.entry(addr).or_insert(0) |= 1u64 << namespace.min(63);
    }

    /// Removes namespace `namespace` from every address (its sockets could
    /// not be read: its flows must look forwarded, never confirmed).
    pub(crate) fn forget(&mut self, namespace: usize) {
        let bit = 1u64 << namespace.min(63);
        self.addrs.retain(|_, bits| {
            *bits &= !bit;
            *bits != 0
        });
    }

    /// Whether `addr` is local.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.addrs.contains_key(&key_of(addr))
    }

    #[inline]
    pub(crate) fn namespaces_of(&self, key: u128) -> u64 {
        self.addrs.get(&key).copied().unwrap_or(0)
    }

    /// Number of distinct addresses.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }
}

/// Runs `f` with a sock_diag socket opened in `netns` (the calling thread's
/// namespace for `None`).
pub(crate) fn read_in<T>(
    netns: Option<&NetnsFile>,
    f: impl FnOnce(&mut DiagSocket) -> Result<T>,
) -> Result<T> {
    let mut socket = match netns {
        None => DiagSocket::open()?,
        Some(file) => file.run(DiagSocket::open)??,
    };
    f(&mut socket)
}

/// The local addresses of `netns` (`RTM_GETADDR` dump on a `NETLINK_ROUTE`
/// socket opened inside it).
pub(crate) fn read_addresses(netns: Option<&NetnsFile>) -> Result<Vec<u128>> {
    let open = || NlSocket::open_protocol(NETLINK_ROUTE, "socket(NETLINK_ROUTE)");
    let mut socket = match netns {
        None => open()?,
        Some(file) => file.run(open)??,
    };
    let seq = socket.next_seq();
    let mut enc = Encoder::new();
    let mark = enc.begin_raw(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq);
    enc.raw(&[0u8; IFADDRMSG_LEN]);
    enc.end(mark);
    socket.send(enc.as_bytes())?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut addrs = Vec::new();
    loop {
        let len = socket.recv(&mut buf)?;
        for message in Messages::new(&buf[..len]) {
            let message = message?;
            if message.seq != seq {
                continue;
            }
            match message.kind {
                NLMSG_DONE => return Ok(addrs),
                NLMSG_ERROR => {
                    let reply = parse_error(&message)?;
                    if reply.errno == 0 {
                        return Ok(addrs);
                    }
                    return Err(Error::Kernel {
                        operation: "rtnetlink address dump (RTM_GETADDR)",
                        errno: reply.errno,
                        message: reply.message.map(str::to_owned),
                        offset: reply.offset,
                    });
                }
                RTM_NEWADDR => {
                    if let Some(addr) = decode_address(message.payload)? {
                        addrs.push(addr);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The local address of one `RTM_NEWADDR` payload, if it has one.
pub(crate) fn decode_address(payload: &[u8]) -> Result<Option<u128>, DecodeError> {
    let Some(attrs) = payload.get(IFADDRMSG_LEN..) else {
        return Err(DecodeError::new(
            "ifaddrmsg",
            DecodeErrorKind::Truncated {
                needed: IFADDRMSG_LEN,
                available: payload.len(),
            },
            NLMSG_HDRLEN,
        ));
    };
    let family = i32::from(payload[0]);
    let (mut local, mut address) = (None, None);
    for attr in Attrs::new(attrs, NLMSG_HDRLEN + IFADDRMSG_LEN, "ifaddrmsg attributes") {
        let attr = attr?;
        let slot = match attr.kind {
            IFA_LOCAL => &mut local,
            IFA_ADDRESS => &mut address,
            _ => continue,
        };
        *slot = Some(match family {
            libc::AF_INET => key_of(IpAddr::V4(Ipv4Addr::from(attr.array::<4>("IFA_ADDRESS")?))),
            libc::AF_INET6 => u128::from_be_bytes(attr.array::<16>("IFA_ADDRESS")?),
            _ => return Ok(None),
        });
    }
    Ok(local.or(address))
}

/// One exact lookup: is there a socket for this end of a flow?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lookup {
    /// `IPPROTO_TCP` or `IPPROTO_UDP`.
    pub(crate) protocol: u8,
    pub(crate) local: u128,
    pub(crate) local_port: u16,
    pub(crate) remote: u128,
    pub(crate) remote_port: u16,
}

/// A `NETLINK_SOCK_DIAG` socket.
pub(crate) struct DiagSocket {
    socket: NlSocket,
    buf: Vec<u8>,
    enc: Encoder,
}

impl DiagSocket {
    fn open() -> Result<DiagSocket> {
        Ok(DiagSocket {
            socket: NlSocket::open_protocol(NETLINK_SOCK_DIAG, "socket(NETLINK_SOCK_DIAG)")?,
            buf: vec![0u8; 64 * 1024],
            enc: Encoder::new(),
        })
    }

    /// Appends one `inet_diag_req_v2`.
    fn request(&mut self, flags: u16, protocol: u8, family: u8, id: Option<&Lookup>) -> u32 {
        let seq = self.socket.next_seq();
        let mark = self.enc.begin_raw(SOCK_DIAG_BY_FAMILY, flags, seq);
        let mut req = [0u8; INET_DIAG_REQ_V2_LEN];
        req[0] = family;
        req[1] = protocol;
        req[4..8].copy_from_slice(&u32::MAX.to_ne_bytes()); // idiag_states: all
        if let Some(id) = id {
            // TCP looks the socket up as the owner of (src = local, dst =
            // remote); UDP as the receiver of a datagram from src to dst.
            let (src, sport, dst, dport) = if protocol == libc::IPPROTO_TCP as u8 {
                (id.local, id.local_port, id.remote, id.remote_port)
            } else {
                (id.remote, id.remote_port, id.local, id.local_port)
            };
            req[8..10].copy_from_slice(&sport.to_be_bytes());
            req[10..12].copy_from_slice(&dport.to_be_bytes());
            let put = |req: &mut [u8], at: usize, addr: u128| {
                if family == libc::AF_INET as u8 {
                    req[at..at + 4].copy_from_slice(&(addr as u32).to_be_bytes());
                } else {
                    req[at..at + 16].copy_from_slice(&addr.to_be_bytes());
                }
            };
            put(&mut req, 12, src);
            put(&mut req, 28, dst);
            req[48..52].copy_from_slice(&INET_DIAG_NOCOOKIE.to_ne_bytes());
            req[52..56].copy_from_slice(&INET_DIAG_NOCOOKIE.to_ne_bytes());
        }
        self.enc.raw(&req);
        self.enc.end(mark);
        seq
    }

    /// Streams every socket of one protocol and family into `each`.
    fn dump(&mut self, protocol: u8, family: u8, mut each: impl FnMut(RawSocket)) -> Result<()> {
        self.enc.clear();
        let seq = self.request(NLM_F_REQUEST | NLM_F_DUMP, protocol, family, None);
        self.socket.send(self.enc.as_bytes())?;
        loop {
            let len = self.socket.recv(&mut self.buf)?;
            for message in Messages::new(&self.buf[..len]) {
                let message = message?;
                if message.seq != seq {
                    continue;
                }
                match message.kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let reply = parse_error(&message)?;
                        return Err(Error::Kernel {
                            operation: "sock_diag socket dump",
                            errno: reply.errno,
                            message: reply.message.map(str::to_owned),
                            offset: reply.offset,
                        });
                    }
                    SOCK_DIAG_BY_FAMILY => each(raw_socket(message.payload, NLMSG_HDRLEN)?),
                    _ => {}
                }
            }
        }
    }

    /// Exact lookups (`SOCK_DIAG_BY_FAMILY` with the socket id, no dump),
    /// pipelined: whether each end has a socket. TCP: a connection socket with
    /// exactly this 4-tuple (the kernel falls back to a listener, which does
    /// not count); UDP: any socket that would receive a datagram from the
    /// remote end at the local one.
    pub(crate) fn lookup(&mut self, queries: &[Lookup]) -> Result<Vec<bool>> {
        let mut found = vec![false; queries.len()];
        for (chunk_index, chunk) in queries.chunks(LOOKUP_BATCH).enumerate() {
            self.enc.clear();
            let mut seqs = Vec::with_capacity(chunk.len());
            for query in chunk {
                let v4 = query.local >> 32 == 0xffff && query.remote >> 32 == 0xffff;
                let family = if v4 { libc::AF_INET } else { libc::AF_INET6 } as u8;
                seqs.push(self.request(NLM_F_REQUEST, query.protocol, family, Some(query)));
            }
            self.socket.send(self.enc.as_bytes())?;
            let mut answered = 0;
            while answered < chunk.len() {
                let len = self.socket.recv(&mut self.buf)?;
                for message in Messages::new(&self.buf[..len]) {
                    let message = message?;
                    let Some(i) = seqs.iter().position(|&s| s == message.seq) else {
                        continue;
                    };
                    let query = &chunk[i];
                    match message.kind {
                        NLMSG_ERROR => {
                            let reply = parse_error(&message)?;
                            match reply.errno {
                                0 => continue,
                                libc::ENOENT => {}
                                errno => {
                                    return Err(Error::Kernel {
                                        operation: "sock_diag socket lookup",
                                        errno,
                                        message: reply.message.map(str::to_owned),
                                        offset: reply.offset,
                                    })
                                }
                            }
                        }
                        SOCK_DIAG_BY_FAMILY => {
                            let raw = raw_socket(message.payload, NLMSG_HDRLEN)?;
                            let owns = query.protocol != libc::IPPROTO_TCP as u8
                                || (raw.state != TCP_LISTEN
                                    && raw.remote == query.remote
                                    && raw.remote_port == query.remote_port);
                            found[chunk_index * LOOKUP_BATCH + i] = owns;
                        }
                        _ => continue,
                    }
                    answered += 1;
                }
            }
        }
        Ok(found)
    }
}

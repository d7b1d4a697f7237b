// SPDX-License-Identifier: MIT OR Apache-2.0
//! The flow model: what one conntrack entry is, as typed data.
//!
//! [`Flow`] is generic over how it holds its two strings (helper name and
//! security context): [`FlowRef<'a>`](FlowRef) borrows them from the receive
//! buffer and is `Copy` (the zero-allocation path), [`Flow`] (= `Flow<String>`)
//! owns them. Everything else is plain `Copy` data, decoded once.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::consts::*;
use crate::status::Status;

/// Protocol numbers and names (`include/uapi/linux/in.h`).
pub mod proto {
    pub use crate::consts::{
        IPPROTO_DCCP as DCCP, IPPROTO_GRE as GRE, IPPROTO_ICMP as ICMP, IPPROTO_ICMPV6 as ICMPV6,
        IPPROTO_SCTP as SCTP, IPPROTO_TCP as TCP, IPPROTO_UDP as UDP, IPPROTO_UDPLITE as UDPLITE,
    };

    /// Every protocol conntrack tracks by name, with the name conntrack-tools
    /// prints and `conntrack -p` takes.
    pub const NAMED: [(&str, u8); 8] = [
        ("tcp", TCP),
        ("udp", UDP),
        ("udplite", UDPLITE),
        ("icmp", ICMP),
        ("icmpv6", ICMPV6),
        ("sctp", SCTP),
        ("dccp", DCCP),
        ("gre", GRE),
    ];

    /// The name conntrack-tools prints for a layer-4 protocol number
    /// (`"unknown"` for protocols conntrack tracks generically).
    pub fn name(protocol: u8) -> &'static str {
        NAMED
            .iter()
            .find(|(_, number)| *number == protocol)
            .map_or("unknown", |(name, _)| name)
    }

    /// The protocol number of a name (any case) or of a decimal number
    /// 0-255 (`"tcp"` → 6, `"47"` → 47, `"igmp"` → 2): the names of
    /// [`NAMED`], then every name and alias of the system's protocol database
    /// (`/etc/protocols`, as `getprotobyname(3)` reads it and conntrack-tools
    /// resolves `-p`), read once per process.
    pub fn from_name(text: &str) -> Option<u8> {
        let text = text.trim();
        NAMED
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|(_, number)| *number)
            .or_else(|| text.parse().ok())
            .or_else(|| {
                system_protocols()
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(text))
                    .map(|(_, number)| *number)
            })
    }

    /// Parses a protocol like [`from_name`], or says what is accepted: `what`
    /// names the argument in the message (`"-p"`, `"proto"`).
    pub fn parse_named(what: &str, text: &str) -> crate::Result<u8> {
        from_name(text).ok_or_else(|| {
            crate::Error::InvalidInput(format!(
                "{what}: unknown protocol {text:?} (a number 0-255, or a name: {}, or any \
                 other name of /etc/protocols)",
                NAMED.map(|(name, _)| name).join(", ")
            ))
        })
    }

    /// Names and aliases of `/etc/protocols` (empty when it cannot be read).
    fn system_protocols() -> &'static [(String, u8)] {
        static TABLE: std::sync::OnceLock<Vec<(String, u8)>> = std::sync::OnceLock::new();
        TABLE.get_or_init(|| {
            std::fs::read("/etc/protocols")
                .map(|bytes| parse_protocols(&String::from_utf8_lossy(&bytes)))
                .unwrap_or_default()
        })
    }

    /// Parses `protocols(5)`: `name number [alias...] [# comment]` per line.
    pub(crate) fn parse_protocols(text: &str) -> Vec<(String, u8)> {
        let mut table = Vec::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let (Some(name), Some(number)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Ok(number) = number.parse::<u8>() else {
                continue;
            };
            table.push((name.to_owned(), number));
            table.extend(fields.map(|alias| (alias.to_owned(), number)));
        }
        table
    }
}

/// Which address families a dump, filter or flush covers.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Family {
    /// IPv4 and IPv6 in one request (`AF_UNSPEC`).
    #[default]
    All,
    /// IPv4 only (`AF_INET`, filtered by the kernel).
    Ipv4,
    /// IPv6 only (`AF_INET6`, filtered by the kernel).
    Ipv6,
}

impl Family {
    pub(crate) fn raw(self) -> u8 {
        match self {
            Family::All => AF_UNSPEC,
            Family::Ipv4 => AF_INET,
            Family::Ipv6 => AF_INET6,
        }
    }
}

/// Layer-4 identity of a tuple.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum L4 {
    /// Only the protocol number is tracked (generic protocols).
    None,
    /// Source and destination port (TCP, UDP, UDPLite, SCTP, DCCP); for GRE the
    /// kernel puts the key / call id here.
    Ports {
        /// Source port (GRE: source key).
        src: u16,
        /// Destination port (GRE: destination key).
        dst: u16,
    },
    /// ICMP or ICMPv6 identity (which one follows from the tuple's protocol).
    Icmp {
        /// Echo identifier.
        id: u16,
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
    },
}

/// One direction of a flow: addresses, protocol and layer-4 identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Layer-4 protocol number (`proto::TCP`, ...).
    pub protocol: u8,
    /// Ports or ICMP identity.
    pub l4: L4,
    /// Directional zone (`CTA_TUPLE_ZONE`), only for flows whose zone applies to
    /// one direction. The flow-wide zone is [`Flow::zone`].
    pub zone: Option<u16>,
}

impl Tuple {
    fn with_ports(protocol: u8, src: (IpAddr, u16), dst: (IpAddr, u16)) -> Self {
        Tuple {
            src: src.0,
            dst: dst.0,
            protocol,
            l4: L4::Ports {
                src: src.1,
                dst: dst.1,
            },
            zone: None,
        }
    }

    /// A TCP tuple.
    pub fn tcp(src: impl Into<std::net::SocketAddr>, dst: impl Into<std::net::SocketAddr>) -> Self {
        let (src, dst) = (src.into(), dst.into());
        Self::with_ports(proto::TCP, (src.ip(), src.port()), (dst.ip(), dst.port()))
    }

    /// A UDP tuple.
    pub fn udp(src: impl Into<std::net::SocketAddr>, dst: impl Into<std::net::SocketAddr>) -> Self {
        let (src, dst) = (src.into(), dst.into());
        Self::with_ports(proto::UDP, (src.ip(), src.port()), (dst.ip(), dst.port()))
    }

    /// A tuple with ports for any port-based protocol (UDPLite, SCTP, DCCP, GRE keys).
    pub fn ports(protocol: u8, src: IpAddr, src_port: u16, dst: IpAddr, dst_port: u16) -> Self {
        Self::with_ports(protocol, (src, src_port), (dst, dst_port))
    }

    /// An ICMP (IPv4) or ICMPv6 (IPv6) tuple, chosen by the address family.
    pub fn icmp(src: IpAddr, dst: IpAddr, id: u16, icmp_type: u8, code: u8) -> Self {
        Tuple {
            src,
            dst,
            protocol: if src.is_ipv6() {
                proto::ICMPV6
            } else {
                proto::ICMP
            },
            l4: L4::Icmp {
                id,
                icmp_type,
                code,
            },
            zone: None,
        }
    }

    /// A tuple for a generically tracked protocol (no ports).
    pub fn generic(protocol: u8, src: IpAddr, dst: IpAddr) -> Self {
        Tuple {
            src,
            dst,
            protocol,
            l4: L4::None,
            zone: None,
        }
    }

    /// Source port, for port-based protocols.
    pub fn src_port(&self) -> Option<u16> {
        match self.l4 {
            L4::Ports { src, .. } => Some(src),
            _ => None,
        }
    }

    /// Destination port, for port-based protocols.
    pub fn dst_port(&self) -> Option<u16> {
        match self.l4 {
            L4::Ports { dst, .. } => Some(dst),
            _ => None,
        }
    }

    /// ICMP / ICMPv6 type, code and identifier, for ICMP tuples.
    pub fn icmp_fields(&self) -> Option<(u8, u8, u16)> {
        match self.l4 {
            L4::Icmp {
                id,
                icmp_type,
                code,
            } => Some((icmp_type, code, id)),
            _ => None,
        }
    }

    /// True for an IPv6 tuple.
    pub fn is_ipv6(&self) -> bool {
        self.src.is_ipv6()
    }

    /// The address family (`AF_INET` or `AF_INET6`).
    pub fn family(&self) -> u8 {
        if self.is_ipv6() {
            AF_INET6
        } else {
            AF_INET
        }
    }

    /// The tuple the kernel expects in the reply direction when there is no NAT:
    /// addresses and ports swapped; ICMP requests turned into their replies
    /// (the kernel's `invert_tuple` maps, `nf_conntrack_proto_icmp{,v6}.c`).
    pub fn reversed(&self) -> Tuple {
        let l4 = match self.l4 {
            L4::None => L4::None,
            L4::Ports { src, dst } => L4::Ports { src: dst, dst: src },
            L4::Icmp {
                id,
                icmp_type,
                code,
            } => L4::Icmp {
                id,
                icmp_type: icmp_reply_type(self.protocol, icmp_type),
                code,
            },
        };
        Tuple {
            src: self.dst,
            dst: self.src,
            protocol: self.protocol,
            l4,
            zone: self.zone,
        }
    }
}

fn icmp_reply_type(protocol: u8, icmp_type: u8) -> u8 {
    let pairs: &[(u8, u8)] = if protocol == proto::ICMPV6 {
        // ECHO_REQUEST/REPLY, NI_QUERY/NI_REPLY
        &[(128, 129), (139, 140)]
    } else {
        // ECHO/ECHOREPLY, TIMESTAMP/REPLY, INFO_REQUEST/REPLY, ADDRESS/REPLY
        &[(8, 0), (13, 14), (15, 16), (17, 18)]
    };
    for &(a, b) in pairs {
        if icmp_type == a {
            return b;
        }
        if icmp_type == b {
            return a;
        }
    }
    icmp_type
}

impl Default for Tuple {
    fn default() -> Self {
        Tuple::generic(
            0,
            Ipv4Addr::UNSPECIFIED.into(),
            Ipv4Addr::UNSPECIFIED.into(),
        )
    }
}

macro_rules! kernel_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:expr, $text:expr;)* }) => {
        kernel_enum! { $(#[$meta])* $name { $($(#[$vmeta])* $variant = $value, $text;)* } aliases {} }
    };
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:expr, $text:expr;)* }
     aliases { $($alias:expr => $aliased:ident;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this library does not know (from a newer kernel).
            Unknown(u8),
        }

        impl $name {
            /// Decodes the kernel's value.
            pub fn from_raw(value: u8) -> Self {
                match value {
                    $($value => $name::$variant,)*
                    other => $name::Unknown(other),
                }
            }

            /// The kernel's value.
            pub fn raw(self) -> u8 {
                match self {
                    $($name::$variant => $value,)*
                    $name::Unknown(other) => other,
                }
            }

            /// The name conntrack-tools prints.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Unknown(_) => "UNKNOWN",
                }
            }

            /// The value of a name conntrack-tools prints or takes as input
            /// (any case; `"UNKNOWN"` is no name).
            pub fn from_name(text: &str) -> Option<Self> {
                let text = text.trim();
                [$($name::$variant),*]
                    .into_iter()
                    .find(|value| value.name().eq_ignore_ascii_case(text))
                    .or_else(|| {
                        let aliases: &[(&str, $name)] = &[$(($alias, $name::$aliased)),*];
                        aliases
                            .iter()
                            .copied()
                            .find(|(alias, _)| alias.eq_ignore_ascii_case(text))
                            .map(|(_, value)| value)
                    })
            }

            /// Every name [`from_name`](Self::from_name) takes, printed names
            /// first, for messages that list the valid ones.
            pub fn names() -> &'static [&'static str] {
                &[$($text,)* $($alias,)*]
            }

            /// Parses a name, or says which names exist: `what` names the
            /// argument in the message (`"--state"`, `"state"`).
            pub fn parse_named(what: &str, text: &str) -> crate::Result<Self> {
                Self::from_name(text).ok_or_else(|| {
                    crate::Error::InvalidInput(format!(
                        "{what}: unknown value {text:?} (one of {})",
                        Self::names().join(", ")
                    ))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kernel_enum! {
    /// TCP tracking state (`enum tcp_conntrack`, `nf_conntrack_tcp.h`).
    TcpState {
        /// `TCP_CONNTRACK_NONE`.
        None = 0, "NONE";
        /// `TCP_CONNTRACK_SYN_SENT`.
        SynSent = 1, "SYN_SENT";
        /// `TCP_CONNTRACK_SYN_RECV`.
        SynRecv = 2, "SYN_RECV";
        /// `TCP_CONNTRACK_ESTABLISHED`.
        Established = 3, "ESTABLISHED";
        /// `TCP_CONNTRACK_FIN_WAIT`.
        FinWait = 4, "FIN_WAIT";
        /// `TCP_CONNTRACK_CLOSE_WAIT`.
        CloseWait = 5, "CLOSE_WAIT";
        /// `TCP_CONNTRACK_LAST_ACK`.
        LastAck = 6, "LAST_ACK";
        /// `TCP_CONNTRACK_TIME_WAIT`.
        TimeWait = 7, "TIME_WAIT";
        /// `TCP_CONNTRACK_CLOSE`.
        Close = 8, "CLOSE";
        /// `TCP_CONNTRACK_SYN_SENT2` (formerly `LISTEN`): simultaneous open.
        /// conntrack-tools takes `LISTEN` for it as input.
        SynSent2 = 9, "SYN_SENT2";
    }
    aliases {
        "LISTEN" => SynSent2;
    }
}

kernel_enum! {
    /// SCTP tracking state (`enum sctp_conntrack`).
    SctpState {
        /// `SCTP_CONNTRACK_NONE`.
        None = 0, "NONE";
        /// `SCTP_CONNTRACK_CLOSED`.
        Closed = 1, "CLOSED";
        /// `SCTP_CONNTRACK_COOKIE_WAIT`.
        CookieWait = 2, "COOKIE_WAIT";
        /// `SCTP_CONNTRACK_COOKIE_ECHOED`.
        CookieEchoed = 3, "COOKIE_ECHOED";
        /// `SCTP_CONNTRACK_ESTABLISHED`.
        Established = 4, "ESTABLISHED";
        /// `SCTP_CONNTRACK_SHUTDOWN_SENT`.
        ShutdownSent = 5, "SHUTDOWN_SENT";
        /// `SCTP_CONNTRACK_SHUTDOWN_RECD`.
        ShutdownRecd = 6, "SHUTDOWN_RECD";
        /// `SCTP_CONNTRACK_SHUTDOWN_ACK_SENT`.
        ShutdownAckSent = 7, "SHUTDOWN_ACK_SENT";
        /// `SCTP_CONNTRACK_HEARTBEAT_SENT`.
        HeartbeatSent = 8, "HEARTBEAT_SENT";
        /// `SCTP_CONNTRACK_HEARTBEAT_ACKED` (unused by current kernels).
        HeartbeatAcked = 9, "HEARTBEAT_ACKED";
    }
}

kernel_enum! {
    /// DCCP tracking state (`enum ct_dccp_states`; the tracker is gone from recent kernels).
    DccpState {
        /// `CT_DCCP_NONE`.
        None = 0, "NONE";
        /// `CT_DCCP_REQUEST`.
        Request = 1, "REQUEST";
        /// `CT_DCCP_RESPOND`.
        Respond = 2, "RESPOND";
        /// `CT_DCCP_PARTOPEN`.
        PartOpen = 3, "PARTOPEN";
        /// `CT_DCCP_OPEN`.
        Open = 4, "OPEN";
        /// `CT_DCCP_CLOSEREQ`.
        CloseReq = 5, "CLOSEREQ";
        /// `CT_DCCP_CLOSING`.
        Closing = 6, "CLOSING";
        /// `CT_DCCP_TIMEWAIT`.
        TimeWait = 7, "TIMEWAIT";
        /// `CT_DCCP_IGNORE`.
        Ignore = 8, "IGNORE";
        /// `CT_DCCP_INVALID`.
        Invalid = 9, "INVALID";
    }
}

bitflags::bitflags! {
    /// Per-direction TCP tracking flags (`IP_CT_TCP_FLAG_*`, `nf_conntrack_tcp.h`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
    pub struct TcpFlags: u8 {
        /// `IP_CT_TCP_FLAG_WINDOW_SCALE`.
        const WINDOW_SCALE = 0x01;
        /// `IP_CT_TCP_FLAG_SACK_PERM`.
        const SACK_PERM = 0x02;
        /// `IP_CT_TCP_FLAG_CLOSE_INIT`.
        const CLOSE_INIT = 0x04;
        /// `IP_CT_TCP_FLAG_BE_LIBERAL`.
        const BE_LIBERAL = 0x08;
        /// `IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED`.
        const DATA_UNACKNOWLEDGED = 0x10;
        /// `IP_CT_TCP_FLAG_MAXACK_SET`.
        const MAXACK_SET = 0x20;
        /// `IP_CT_EXP_CHALLENGE_ACK`.
        const EXP_CHALLENGE_ACK = 0x40;
        /// `IP_CT_TCP_SIMULTANEOUS_OPEN`.
        const SIMULTANEOUS_OPEN = 0x80;
    }
}

/// TCP protocol info (`CTA_PROTOINFO_TCP`). DESTROY events carry only the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct TcpInfo {
    /// Tracking state.
    pub state: Option<TcpState>,
    /// Window scale seen in the original direction.
    pub wscale_orig: Option<u8>,
    /// Window scale seen in the reply direction.
    pub wscale_reply: Option<u8>,
    /// Flags of the original direction (`{flags, mask}`; dumps send mask 0).
    pub flags_orig: Option<(TcpFlags, TcpFlags)>,
    /// Flags of the reply direction.
    pub flags_reply: Option<(TcpFlags, TcpFlags)>,
}

/// SCTP protocol info (`CTA_PROTOINFO_SCTP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct SctpInfo {
    /// Tracking state.
    pub state: Option<SctpState>,
    /// Verification tag of the original direction.
    pub vtag_orig: Option<u32>,
    /// Verification tag of the reply direction.
    pub vtag_reply: Option<u32>,
}

/// DCCP protocol info (`CTA_PROTOINFO_DCCP`, kernels that still track DCCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct DccpInfo {
    /// Tracking state.
    pub state: Option<DccpState>,
    /// Role (`CT_DCCP_ROLE_CLIENT` = 0, `CT_DCCP_ROLE_SERVER` = 1).
    pub role: Option<u8>,
    /// Handshake sequence number.
    pub handshake_seq: Option<u64>,
}

/// Protocol-specific tracking state (`CTA_PROTOINFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProtoInfo {
    /// TCP.
    Tcp(TcpInfo),
    /// SCTP.
    Sctp(SctpInfo),
    /// DCCP.
    Dccp(DccpInfo),
}

/// Packet and byte counters of one direction (`CTA_COUNTERS_*`, needs `nf_conntrack_acct=1`).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes (layer 3: IP header included).
    pub bytes: u64,
}

/// Start and stop times (`CTA_TIMESTAMP`, needs `nf_conntrack_timestamp=1`), in
/// nanoseconds since the Unix epoch.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Timestamp {
    /// When the flow was inserted in the table.
    pub start: Option<u64>,
    /// When it was destroyed (DESTROY events only).
    pub stop: Option<u64>,
}

/// NAT sequence adjustment of one direction (`CTA_SEQ_ADJ_*`).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct SeqAdj {
    /// `CTA_SEQADJ_CORRECTION_POS`.
    pub correction_pos: u32,
    /// `CTA_SEQADJ_OFFSET_BEFORE` (signed offset).
    pub offset_before: i32,
    /// `CTA_SEQADJ_OFFSET_AFTER` (signed offset).
    pub offset_after: i32,
}

/// SYN proxy state (`CTA_SYNPROXY`). Every flow created over ctnetlink has one (all zeros).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Synproxy {
    /// `CTA_SYNPROXY_ISN`.
    pub isn: u32,
    /// `CTA_SYNPROXY_ITS`.
    pub its: u32,
    /// `CTA_SYNPROXY_TSOFF`.
    pub tsoff: u32,
}

/// Connection labels (`CTA_LABELS`): a 128-bit set, bit *i* = label *i*
/// (the names in `/etc/xtables/connlabel.conf` map to these bit numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Labels(pub u128);

impl Labels {
    /// The number of label bits the kernel supports (`NF_CT_LABELS_MAX_SIZE * 8`).
    pub const BITS: u32 = 128;

    /// Whether label `bit` is set (false for `bit >= 128`).
    pub fn contains(self, bit: u32) -> bool {
        bit < Self::BITS && self.0 >> bit & 1 == 1
    }

    /// Sets label `bit` (ignored for `bit >= 128`).
    pub fn with(self, bit: u32) -> Self {
        if bit < Self::BITS {
            Labels(self.0 | 1 << bit)
        } else {
            self
        }
    }

    /// The set bits, lowest first.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..Self::BITS).filter(move |&b| self.contains(b))
    }

    /// Decodes the kernel's host-order `unsigned long` bitmap (up to 16 bytes).
    pub fn from_kernel_bytes(bytes: &[u8]) -> Option<Labels> {
        const WORD: usize = std::mem::size_of::<libc::c_ulong>();
        if bytes.len() > 16 || bytes.len() % WORD != 0 {
            return None;
        }
        let mut value = 0u128;
        for (i, chunk) in bytes.chunks_exact(WORD).enumerate() {
            let mut word = [0u8; 8];
            word[..WORD].copy_from_slice(chunk);
            let word = if WORD == 8 {
                u64::from_ne_bytes(word)
            } else {
                u64::from(u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            };
            value |= u128::from(word) << (i * WORD * 8);
        }
        Some(Labels(value))
    }

    /// Encodes as the kernel's 16-byte host-order bitmap.
    pub fn to_kernel_bytes(self) -> [u8; 16] {
        const WORD: usize = std::mem::size_of::<libc::c_ulong>();
        let mut out = [0u8; 16];
        for (i, chunk) in out.chunks_exact_mut(WORD).enumerate() {
            let word = (self.0 >> (i * WORD * 8)) as u64;
            if WORD == 8 {
                chunk.copy_from_slice(&word.to_ne_bytes());
            } else {
                chunk.copy_from_slice(&(word as u32).to_ne_bytes());
            }
        }
        out
    }
}

/// The kernel's id of a flow (`CTA_ID`): four opaque bytes, echoed back unchanged
/// to delete exactly this flow and not a newer one that reused its tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct FlowId(pub [u8; 4]);

impl FlowId {
    /// The number `conntrack -o id` prints (`ntohl` of the raw bytes).
    pub fn value(self) -> u32 {
        u32::from_be_bytes(self.0)
    }
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value())
    }
}

/// One conntrack entry.
///
/// `S` is how the two strings are held: `String` for [`Flow`] (owned), `&str`
/// for [`FlowRef`] (borrowed from the receive buffer, `Copy`, no allocation).
/// Fields the kernel did not send are `None` (e.g. `counters_orig` without
/// `nf_conntrack_acct=1`, `timeout` for offloaded flows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct Flow<S = String> {
    /// Original direction (`CTA_TUPLE_ORIG`).
    pub orig: Tuple,
    /// Reply direction (`CTA_TUPLE_REPLY`); differs from `orig.reversed()` under NAT.
    pub reply: Tuple,
    /// Status bits.
    pub status: Status,
    /// Remaining lifetime in whole seconds (absent for offloaded flows).
    pub timeout: Option<u32>,
    /// Connection mark (`CTA_MARK`; every dump carries it, events only when non-zero).
    pub mark: Option<u32>,
    /// Reference count (`CTA_USE`, diagnostic).
    pub use_count: Option<u32>,
    /// Kernel id (`CTA_ID`).
    pub id: Option<FlowId>,
    /// Zone for both directions (`CTA_ZONE`); `None` means zone 0 or a directional
    /// zone (see [`Tuple::zone`]).
    pub zone: Option<u16>,
    /// Protocol state (TCP, SCTP, DCCP).
    pub protoinfo: Option<ProtoInfo>,
    /// Counters of the original direction.
    pub counters_orig: Option<Counters>,
    /// Counters of the reply direction.
    pub counters_reply: Option<Counters>,
    /// Start/stop timestamps.
    pub timestamp: Option<Timestamp>,
    /// Labels (present only when at least one is set).
    pub labels: Option<Labels>,
    /// Name of the attached helper (`CTA_HELP_NAME`, e.g. `"ftp"`).
    pub helper: Option<S>,
    /// Security context (`CTA_SECCTX_NAME`).
    pub secctx: Option<S>,
    /// Sequence adjustment, original direction.
    pub seqadj_orig: Option<SeqAdj>,
    /// Sequence adjustment, reply direction.
    pub seqadj_reply: Option<SeqAdj>,
    /// SYN proxy state.
    pub synproxy: Option<Synproxy>,
    /// Master flow's original tuple, for flows created from an expectation.
    pub master: Option<Tuple>,
    /// Event time in ns since the epoch (`CTA_TIMESTAMP_EVENT`, events on 6.14+).
    pub event_timestamp: Option<u64>,
}

/// A flow whose strings borrow from the receive buffer: the allocation-free view.
pub type FlowRef<'a> = Flow<&'a str>;

impl<S> Flow<S> {
    /// Address family (`AF_INET` or `AF_INET6`).
    pub fn family(&self) -> u8 {
        self.orig.family()
    }

    /// Layer-4 protocol number.
    pub fn protocol(&self) -> u8 {
        self.orig.protocol
    }

    /// TCP state, for TCP flows that carry protoinfo.
    pub fn tcp_state(&self) -> Option<TcpState> {
        match self.protoinfo {
            Some(ProtoInfo::Tcp(info)) => info.state,
            _ => None,
        }
    }

    /// SCTP state, for SCTP flows that carry protoinfo.
    pub fn sctp_state(&self) -> Option<SctpState> {
        match self.protoinfo {
            Some(ProtoInfo::Sctp(info)) => info.state,
            _ => None,
        }
    }

    /// The flow's zone id, flow-wide or directional (0 = default zone), as the
    /// kernel's zone filter compares it.
    pub fn zone_id(&self) -> u16 {
        self.zone
            .or(self.orig.zone)
            .or(self.reply.zone)
            .unwrap_or(0)
    }

    #[inline]
    pub(crate) fn map_strings<'a, T>(&'a self, mut f: impl FnMut(&'a S) -> T) -> Flow<T> {
        Flow {
            orig: self.orig,
            reply: self.reply,
            status: self.status,
            timeout: self.timeout,
            mark: self.mark,
            use_count: self.use_count,
            id: self.id,
            zone: self.zone,
            protoinfo: self.protoinfo,
            counters_orig: self.counters_orig,
            counters_reply: self.counters_reply,
            timestamp: self.timestamp,
            labels: self.labels,
            helper: self.helper.as_ref().map(&mut f),
            secctx: self.secctx.as_ref().map(&mut f),
            seqadj_orig: self.seqadj_orig,
            seqadj_reply: self.seqadj_reply,
            synproxy: self.synproxy,
            master: self.master,
            event_timestamp: self.event_timestamp,
        }
    }
}

impl Flow<&str> {
    /// Copies the view into an owned [`Flow`] (allocates only for helper/secctx).
    // Inlined (across crates too): the fields then go straight from the view
    // to where the caller keeps the owned flow, instead of through a return
    // slot that the caller copies whole again.
    #[inline]
    pub fn to_owned_flow(&self) -> Flow {
        self.map_strings(|s| (*s).to_owned())
    }
}

impl Flow {
    /// Borrows this flow as a [`FlowRef`].
    pub fn as_ref_flow(&self) -> FlowRef<'_> {
        self.map_strings(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn reversed_swaps_and_maps_icmp() {
        let v4: IpAddr = Ipv4Addr::new(10, 0, 0, 1).into();
        let w4: IpAddr = Ipv4Addr::new(10, 0, 0, 2).into();
        let t = Tuple::tcp((v4, 1111), (w4, 80)).reversed();
        assert_eq!(
            (t.src, t.dst, t.src_port(), t.dst_port()),
            (w4, v4, Some(80), Some(1111))
        );
        let echo = Tuple::icmp(v4, w4, 7, 8, 0).reversed();
        assert_eq!(
            echo.l4,
            L4::Icmp {
                id: 7,
                icmp_type: 0,
                code: 0
            }
        );
        let v6: IpAddr = Ipv6Addr::LOCALHOST.into();
        let echo6 = Tuple::icmp(v6, v6, 1, 128, 0);
        assert_eq!(echo6.protocol, proto::ICMPV6);
        assert_eq!(
            echo6.reversed().l4,
            L4::Icmp {
                id: 1,
                icmp_type: 129,
                code: 0
            }
        );
    }

    #[test]
    fn labels_round_trip_host_order() {
        let l = Labels::default()
            .with(0)
            .with(63)
            .with(64)
            .with(127)
            .with(500);
        assert_eq!(Labels::from_kernel_bytes(&l.to_kernel_bytes()), Some(l));
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![0, 63, 64, 127]);
        assert_eq!(Labels::from_kernel_bytes(&[0; 17]), None);
        #[cfg(all(target_endian = "little", target_pointer_width = "64"))]
        assert_eq!(
            Labels::from_kernel_bytes(&[0b10, 0, 0, 0, 0, 0, 0, 0]),
            Some(Labels(2))
        );
    }

    #[test]
    fn states_round_trip_and_keep_unknown() {
        for v in 0..=255u8 {
            assert_eq!(TcpState::from_raw(v).raw(), v);
            assert_eq!(SctpState::from_raw(v).raw(), v);
        }
        assert_eq!(TcpState::from_raw(3).name(), "ESTABLISHED");
        assert_eq!(TcpState::from_name("time_wait"), Some(TcpState::TimeWait));
        assert_eq!(TcpState::from_name("UNKNOWN"), None);
        assert_eq!(proto::from_name("UDP"), Some(proto::UDP));
        assert_eq!(proto::from_name("47"), Some(47));
        assert_eq!(proto::from_name("unknown"), None);
        assert_eq!(proto::name(proto::GRE), "gre");
        assert_eq!(TcpState::from_raw(42), TcpState::Unknown(42));
    }

    #[test]
    fn owned_and_borrowed_convert() {
        let owned = Flow {
            helper: Some("ftp".to_string()),
            ..Flow::default()
        };
        let view = owned.as_ref_flow();
        assert_eq!(view.helper, Some("ftp"));
        assert_eq!(view.to_owned_flow(), owned);
    }
}

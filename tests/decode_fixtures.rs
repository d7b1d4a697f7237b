// SPDX-License-Identifier: MIT OR Apache-2.0
//! Offline decoding of real kernel captures (no root needed).
//!
//! Every `tests/fixtures/*.hex` file holds bytes a Linux 6.18 kernel sent over
//! ctnetlink, captured with `examples/capture.rs` in a throwaway namespace
//! (two are hand-built and say so); its `#` header names the exact commands
//! that produced it. Here each flow fixture is decoded with
//! [`conntrack::decode_flow`] and every field is asserted, then cross-checked
//! with an independent decoder (netlink-packet-netfilter 0.4 on top of
//! netlink-packet-core 0.9). Finally the bytes are truncated and corrupted to
//! check that decoding never panics, and malformed variants must give the
//! expected typed [`DecodeError`].
//!
//! Netlink headers are host-order and the captures come from x86-64, so this
//! file only runs on little-endian targets (labels also assume 64-bit longs).
#![cfg(target_endian = "little")]

use std::collections::BTreeSet;
use std::net::IpAddr;

use conntrack::wire::{parse_error, Messages};
use conntrack::{
    decode_cpu_stats, decode_flow, decode_table_stats, fuzzing, Counters, CpuCounters, CpuStats,
    DccpInfo, DccpState, DecodeError, DecodeErrorKind, FlowId, FlowRef, KernelStats, Labels,
    ProtoInfo, SctpInfo, SctpState, SeqAdj, Status, Synproxy, TableStats, TcpFlags, TcpInfo,
    TcpState, Timestamp, Tuple, L4,
};
use netlink_packet_core::{
    DefaultNla, NetlinkMessage, NetlinkPayload, Nla, NlasIterator, Parseable,
};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoInfo as NpProtoInfo, ProtoInfoTCP,
    ProtoTuple, Tuple as NpTuple,
};
use netlink_packet_netfilter::{NetfilterMessage, NetfilterMessageInner};

// ---------------------------------------------------------------------------
// Fixture loading

/// Fixtures holding exactly one flow message (`IPCTNL_MSG_CT_NEW`, header included).
const FLOW_FIXTURES: &[&str] = &[
    "dccp_handbuilt",
    "gre_keys",
    "helper_ftp",
    "icmp_echo",
    "icmpv6_echo_kernel",
    "labels",
    "mark",
    "master_expected",
    "orig_zone",
    "reply_zone",
    "sctp_kernel",
    "sctp_protoinfo",
    "secctx_handbuilt",
    "seqadj",
    "synproxy",
    "tcp_ipv4_established",
    "tcp_ipv6_syn_sent",
    "tcp_kernel_established",
    "tcp_kernel_time_wait",
    "udp_counters_timestamp",
    "udp_ipv4",
    "udplite_ipv4",
    "unknown_proto_253",
    "zone",
];

/// Fixtures holding a whole reply datagram.
const DATAGRAM_FIXTURES: &[&str] = &[
    "dump_datagram",
    "error_extack_capped",
    "error_extack_uncapped",
    "expect_dump",
    "expect_event",
    "stats_cpu",
    "stats_global",
];

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture_text(name: &str) -> String {
    let path = fixture_dir().join(format!("{name}.hex"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The bytes of a fixture: `#` lines are comments, whitespace is ignored.
fn fixture(name: &str) -> Vec<u8> {
    let hex: String = fixture_text(name)
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
        .collect();
    assert!(hex.len() % 2 == 0, "{name}: odd number of hex digits");
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16)
                .unwrap_or_else(|e| panic!("{name}: bad hex at {i}: {e}"))
        })
        .collect()
}

fn all_fixtures() -> impl Iterator<Item = &'static str> {
    FLOW_FIXTURES.iter().chain(DATAGRAM_FIXTURES).copied()
}

// ---------------------------------------------------------------------------
// Small independent netlink helpers (deliberately not the library's walker)

fn ne16(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn ne32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// (offset, nla_len, raw nla_type) of every top-level attribute of a flow message.
fn top_attrs(msg: &[u8]) -> Vec<(usize, usize, u16)> {
    let mut out = Vec::new();
    let mut pos = 20; // nlmsghdr + nfgenmsg
    while pos + 4 <= msg.len() {
        let len = ne16(msg, pos) as usize;
        out.push((pos, len, ne16(msg, pos + 2)));
        pos += (len + 3) & !3;
    }
    out
}

/// (offset, nla_len) of the top-level attribute of type `kind`.
fn find_top(msg: &[u8], kind: u16) -> (usize, usize) {
    top_attrs(msg)
        .into_iter()
        .find(|a| a.2 & 0x3fff == kind)
        .map(|a| (a.0, a.1))
        .unwrap_or_else(|| panic!("no top-level attribute {kind}"))
}

/// An attribute with its padding.
fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

/// Rewrites `nlmsg_len` after an edit.
fn fix_len(msg: &mut [u8]) {
    let len = msg.len() as u32;
    msg[..4].copy_from_slice(&len.to_ne_bytes());
}

/// Clears `NLA_F_NESTED` on every attribute of a stream, recursively; returns how many.
fn strip_nested_flags(buf: &mut [u8]) -> usize {
    let mut cleared = 0;
    let mut pos = 0;
    while pos + 4 <= buf.len() {
        let len = ne16(buf, pos) as usize;
        let kind = ne16(buf, pos + 2);
        if kind & 0x8000 != 0 {
            buf[pos + 2..pos + 4].copy_from_slice(&(kind & !0x8000).to_ne_bytes());
            cleared += 1 + strip_nested_flags(&mut buf[pos + 4..pos + len]);
        }
        pos += (len + 3) & !3;
    }
    cleared
}

/// Decodes a one-message fixture after checking its nlmsghdr against the bytes.
fn decode(bytes: &[u8]) -> FlowRef<'_> {
    assert_eq!(ne32(bytes, 0) as usize, bytes.len(), "nlmsg_len");
    assert_eq!(ne16(bytes, 4), 0x0100, "nlmsg_type IPCTNL_MSG_CT_NEW");
    assert_eq!(ne16(bytes, 6), 0x0002, "nlmsg_flags NLM_F_MULTI");
    assert_eq!(ne32(bytes, 8), 1, "nlmsg_seq of the capture request");
    decode_flow(&bytes[16..]).expect("fixture decodes")
}

// ---------------------------------------------------------------------------
// Expected values

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tuple(src: &str, dst: &str, protocol: u8, l4: L4, zone: Option<u16>) -> Tuple {
    Tuple {
        src: ip(src),
        dst: ip(dst),
        protocol,
        l4,
        zone,
    }
}

fn ports(src: u16, dst: u16) -> L4 {
    L4::Ports { src, dst }
}

fn tcp(
    state: TcpState,
    wscale: (u8, u8),
    flags_orig: TcpFlags,
    flags_reply: TcpFlags,
) -> Option<ProtoInfo> {
    Some(ProtoInfo::Tcp(TcpInfo {
        state: Some(state),
        wscale_orig: Some(wscale.0),
        wscale_reply: Some(wscale.1),
        // Dumps always send mask 0 (docs/ctnetlink.md §2.3).
        flags_orig: Some((flags_orig, TcpFlags::empty())),
        flags_reply: Some((flags_reply, TcpFlags::empty())),
    }))
}

const NO_SYNPROXY_STATE: Option<Synproxy> = Some(Synproxy {
    isn: 0,
    its: 0,
    tsoff: 0,
});

/// A flow built field by field: every test names all twenty fields.
macro_rules! flow {
    ($($field:ident: $value:expr),* $(,)?) => {{
        let mut flow = FlowRef::default();
        $(flow.$field = $value;)*
        flow
    }};
}

/// Compares field by field (readable failures), then as a whole (catches
/// fields added to `Flow` later).
fn assert_flow(got: &FlowRef<'_>, want: &FlowRef<'_>) {
    assert_eq!(got.orig, want.orig, "orig");
    assert_eq!(got.reply, want.reply, "reply");
    assert_eq!(got.status, want.status, "status");
    assert_eq!(got.timeout, want.timeout, "timeout");
    assert_eq!(got.mark, want.mark, "mark");
    assert_eq!(got.use_count, want.use_count, "use_count");
    assert_eq!(got.id, want.id, "id");
    assert_eq!(got.zone, want.zone, "zone");
    assert_eq!(got.protoinfo, want.protoinfo, "protoinfo");
    assert_eq!(got.counters_orig, want.counters_orig, "counters_orig");
    assert_eq!(got.counters_reply, want.counters_reply, "counters_reply");
    assert_eq!(got.timestamp, want.timestamp, "timestamp");
    assert_eq!(got.labels, want.labels, "labels");
    assert_eq!(got.helper, want.helper, "helper");
    assert_eq!(got.secctx, want.secctx, "secctx");
    assert_eq!(got.seqadj_orig, want.seqadj_orig, "seqadj_orig");
    assert_eq!(got.seqadj_reply, want.seqadj_reply, "seqadj_reply");
    assert_eq!(got.synproxy, want.synproxy, "synproxy");
    assert_eq!(got.master, want.master, "master");
    assert_eq!(got.event_timestamp, want.event_timestamp, "event_timestamp");
    assert_eq!(got, want, "whole flow");
}

/// Decodes `name`, asserts it equals `want` and that its id prints as
/// `id_value` (what `conntrack -o id` shows), and cross-checks it with
/// netlink-packet-netfilter.
fn check_fixture(name: &str, want: FlowRef<'_>, id_value: u32) {
    let bytes = fixture(name);
    let got = decode(&bytes);
    assert_flow(&got, &want);
    let id = got.id.expect("dumps always carry CTA_ID");
    assert_eq!(
        id.value(),
        id_value,
        "FlowId::value() is ntohl of the raw bytes"
    );
    assert_eq!(id.0, id_value.to_be_bytes(), "FlowId keeps the raw bytes");
    assert_eq!(format!("{id}"), id_value.to_string());
    cross_check(&bytes, &got);
}

// ---------------------------------------------------------------------------
// Cross-check with netlink-packet-netfilter 0.4

fn nla_value(nla: &DefaultNla) -> Vec<u8> {
    let mut value = vec![0; nla.value_len()];
    nla.emit_value(&mut value);
    value
}

/// (masked type, payload) of each attribute nested in `value`, via netlink-packet-core.
fn nested(value: &[u8]) -> Vec<(u16, Vec<u8>)> {
    NlasIterator::new(value)
        .map(|nla| {
            let nla = nla.expect("netlink-packet-core walks the nest");
            (nla.kind(), nla.value().to_vec())
        })
        .collect()
}

fn be16(v: &[u8]) -> u16 {
    u16::from_be_bytes(v.try_into().expect("2-byte payload"))
}

fn be32(v: &[u8]) -> u32 {
    u32::from_be_bytes(v.try_into().expect("4-byte payload"))
}

fn be64(v: &[u8]) -> u64 {
    u64::from_be_bytes(v.try_into().expect("8-byte payload"))
}

fn string(v: &[u8]) -> &str {
    std::str::from_utf8(v.split(|&b| b == 0).next().unwrap()).unwrap()
}

/// Checks a tuple as netlink-packet-netfilter parsed it against ours.
fn check_np_tuple(parts: &[NpTuple], want: &Tuple, what: &str) {
    let (mut src, mut dst, mut protocol) = (None, None, None);
    let (mut sport, mut dport, mut zone) = (None, None, None);
    let (mut icmp_id, mut icmp_type, mut icmp_code) = (None, None, None);
    for part in parts {
        match part {
            NpTuple::Ip(ips) => {
                for a in ips {
                    match a {
                        IPTuple::SourceAddress(a) => src = Some(*a),
                        IPTuple::DestinationAddress(a) => dst = Some(*a),
                        other => panic!("{what}: unexpected ip attribute {other:?}"),
                    }
                }
            }
            NpTuple::Proto(protos) => {
                for p in protos {
                    match p {
                        ProtoTuple::Protocol(p) => protocol = Some(u8::from(*p)),
                        ProtoTuple::SourcePort(p) => sport = Some(*p),
                        ProtoTuple::DestinationPort(p) => dport = Some(*p),
                        ProtoTuple::Other(nla) => {
                            let v = nla_value(nla);
                            match nla.kind() {
                                4 | 7 => icmp_id = Some(be16(&v)),
                                5 | 8 => icmp_type = Some(v[0]),
                                6 | 9 => icmp_code = Some(v[0]),
                                k => panic!("{what}: unexpected l4 attribute {k}"),
                            }
                        }
                        other => panic!("{what}: unexpected l4 attribute {other:?}"),
                    }
                }
            }
            NpTuple::Other(nla) if nla.kind() == 3 => zone = Some(be16(&nla_value(nla))),
            other => panic!("{what}: unexpected tuple attribute {other:?}"),
        }
    }
    assert_eq!(src, Some(want.src), "{what} src");
    assert_eq!(dst, Some(want.dst), "{what} dst");
    assert_eq!(protocol, Some(want.protocol), "{what} protocol");
    assert_eq!(zone, want.zone, "{what} zone");
    match want.l4 {
        L4::Ports { src, dst } => {
            assert_eq!((sport, dport), (Some(src), Some(dst)), "{what} ports");
            assert_eq!((icmp_id, icmp_type, icmp_code), (None, None, None));
        }
        L4::Icmp {
            id,
            icmp_type: t,
            code,
        } => {
            assert_eq!(
                (icmp_id, icmp_type, icmp_code),
                (Some(id), Some(t), Some(code)),
                "{what} icmp"
            );
            assert_eq!((sport, dport), (None, None));
        }
        L4::None => {
            assert_eq!(
                (sport, dport, icmp_id, icmp_type, icmp_code),
                (None, None, None, None, None)
            )
        }
    }
}

fn check_np_protoinfo(parts: &[NpProtoInfo], want: Option<ProtoInfo>) {
    assert_eq!(parts.len(), 1, "one protocol nest");
    match (&parts[0], want) {
        (NpProtoInfo::TCP(attrs), Some(ProtoInfo::Tcp(tcp))) => {
            let mut got = TcpInfo::default();
            for a in attrs {
                match a {
                    ProtoInfoTCP::State(s) => got.state = Some(TcpState::from_raw(*s)),
                    ProtoInfoTCP::OriginalWindowScale(w) => got.wscale_orig = Some(*w),
                    ProtoInfoTCP::ReplyWindowScale(w) => got.wscale_reply = Some(*w),
                    ProtoInfoTCP::OriginalFlags(f) => {
                        got.flags_orig = Some((
                            TcpFlags::from_bits_retain(f.flags),
                            TcpFlags::from_bits_retain(f.mask),
                        ))
                    }
                    ProtoInfoTCP::ReplyFlags(f) => {
                        got.flags_reply = Some((
                            TcpFlags::from_bits_retain(f.flags),
                            TcpFlags::from_bits_retain(f.mask),
                        ))
                    }
                    other => panic!("unexpected TCP protoinfo {other:?}"),
                }
            }
            assert_eq!(got, tcp, "TCP protoinfo");
        }
        // SCTP (3) and DCCP (2) are opaque to netlink-packet-netfilter: walk them.
        (NpProtoInfo::Other(nla), Some(ProtoInfo::Sctp(sctp))) => {
            assert_eq!(nla.kind() & 0x3fff, 3, "CTA_PROTOINFO_SCTP");
            let mut got = SctpInfo::default();
            for (kind, v) in nested(&nla_value(nla)) {
                match kind {
                    1 => got.state = Some(SctpState::from_raw(v[0])),
                    2 => got.vtag_orig = Some(be32(&v)),
                    3 => got.vtag_reply = Some(be32(&v)),
                    k => panic!("unexpected SCTP protoinfo {k}"),
                }
            }
            assert_eq!(got, sctp, "SCTP protoinfo");
        }
        (NpProtoInfo::Other(nla), Some(ProtoInfo::Dccp(dccp))) => {
            assert_eq!(nla.kind() & 0x3fff, 2, "CTA_PROTOINFO_DCCP");
            let mut got = DccpInfo::default();
            for (kind, v) in nested(&nla_value(nla)) {
                match kind {
                    1 => got.state = Some(DccpState::from_raw(v[0])),
                    2 => got.role = Some(v[0]),
                    3 => got.handshake_seq = Some(be64(&v)),
                    k => panic!("unexpected DCCP protoinfo {k}"),
                }
            }
            assert_eq!(got, dccp, "DCCP protoinfo");
        }
        (other, want) => panic!("protoinfo mismatch: {other:?} vs {want:?}"),
    }
}

fn np_counters(value: &[u8]) -> Counters {
    let mut c = Counters::default();
    for (kind, v) in nested(value) {
        match kind {
            1 => c.packets = be64(&v),
            2 => c.bytes = be64(&v),
            k => panic!("unexpected counter {k}"),
        }
    }
    c
}

fn np_seqadj(value: &[u8]) -> SeqAdj {
    let mut s = SeqAdj::default();
    for (kind, v) in nested(value) {
        match kind {
            1 => s.correction_pos = be32(&v),
            2 => s.offset_before = be32(&v) as i32,
            3 => s.offset_after = be32(&v) as i32,
            k => panic!("unexpected seqadj {k}"),
        }
    }
    s
}

/// Parses the message with netlink-packet-netfilter and checks every
/// attribute it yields against our decoded flow, and that every optional
/// field we decoded corresponds to an attribute it saw (and vice versa).
fn cross_check(bytes: &[u8], flow: &FlowRef<'_>) {
    let msg = NetlinkMessage::<NetfilterMessage>::deserialize(bytes)
        .expect("netlink-packet-netfilter parses the fixture");
    assert_eq!(msg.header.length as usize, bytes.len());
    assert_eq!(msg.header.message_type, 0x0100);
    assert_eq!(msg.header.flags, 0x0002);
    assert_eq!(msg.header.sequence_number, 1);
    let NetlinkPayload::InnerMessage(nf) = msg.payload else {
        panic!("not a netfilter message: {:?}", msg.payload)
    };
    assert_eq!(u8::from(nf.header.family), flow.family(), "nfgen_family");
    assert_eq!((nf.header.version, nf.header.res_id), (0, 0));
    let NetfilterMessageInner::Conntrack(ConntrackMessage::New(attrs)) = nf.inner else {
        panic!("not a CT_NEW message: {:?}", nf.inner)
    };
    let mut seen = BTreeSet::new();
    for attr in &attrs {
        let kind = match attr {
            ConntrackAttribute::CtaTupleOrig(t) => {
                check_np_tuple(t, &flow.orig, "orig");
                1
            }
            ConntrackAttribute::CtaTupleReply(t) => {
                check_np_tuple(t, &flow.reply, "reply");
                2
            }
            ConntrackAttribute::CtaStatus(s) => {
                assert_eq!(s.bits(), flow.status.bits(), "status");
                3
            }
            ConntrackAttribute::CtaProtoInfo(p) => {
                check_np_protoinfo(p, flow.protoinfo);
                4
            }
            ConntrackAttribute::CtaTimeout(t) => {
                assert_eq!(Some(*t), flow.timeout, "timeout");
                7
            }
            ConntrackAttribute::CtaMark(m) => {
                assert_eq!(Some(*m), flow.mark, "mark");
                8
            }
            ConntrackAttribute::Other(nla) => {
                let kind = nla.kind() & 0x3fff;
                let v = nla_value(nla);
                match kind {
                    5 => {
                        let name = nested(&v).into_iter().find(|a| a.0 == 1).unwrap().1;
                        assert_eq!(Some(string(&name)), flow.helper, "helper");
                    }
                    9 => assert_eq!(Some(np_counters(&v)), flow.counters_orig),
                    10 => assert_eq!(Some(np_counters(&v)), flow.counters_reply),
                    11 => assert_eq!(Some(be32(&v)), flow.use_count, "use"),
                    12 => assert_eq!(Some(FlowId(v[..].try_into().unwrap())), flow.id, "id"),
                    14 => {
                        let parts: Vec<NpTuple> = NlasIterator::new(&v[..])
                            .map(|n| NpTuple::parse(&n.unwrap()).unwrap())
                            .collect();
                        check_np_tuple(&parts, flow.master.as_ref().unwrap(), "master");
                    }
                    15 => assert_eq!(Some(np_seqadj(&v)), flow.seqadj_orig),
                    16 => assert_eq!(Some(np_seqadj(&v)), flow.seqadj_reply),
                    18 => assert_eq!(Some(be16(&v)), flow.zone, "zone"),
                    19 => {
                        let name = nested(&v).into_iter().find(|a| a.0 == 1).unwrap().1;
                        assert_eq!(Some(string(&name)), flow.secctx, "secctx");
                    }
                    20 => {
                        let mut ts = Timestamp::default();
                        for (k, t) in nested(&v) {
                            match k {
                                1 => ts.start = Some(be64(&t)),
                                2 => ts.stop = Some(be64(&t)),
                                k => panic!("unexpected timestamp attribute {k}"),
                            }
                        }
                        assert_eq!(Some(ts), flow.timestamp, "timestamp");
                    }
                    22 => {
                        let labels = flow.labels.expect("labels decoded");
                        assert_eq!(v, labels.to_kernel_bytes(), "labels bitmap");
                    }
                    24 => {
                        let mut s = Synproxy::default();
                        for (k, x) in nested(&v) {
                            match k {
                                1 => s.isn = be32(&x),
                                2 => s.its = be32(&x),
                                3 => s.tsoff = be32(&x),
                                k => panic!("unexpected synproxy attribute {k}"),
                            }
                        }
                        assert_eq!(Some(s), flow.synproxy, "synproxy");
                    }
                    k => panic!("unexpected top-level attribute {k}"),
                }
                kind
            }
            other => panic!("unexpected attribute {other:?}"),
        };
        assert!(seen.insert(kind), "attribute {kind} twice");
    }
    let presence = [
        (4, flow.protoinfo.is_some()),
        (5, flow.helper.is_some()),
        (7, flow.timeout.is_some()),
        (8, flow.mark.is_some()),
        (9, flow.counters_orig.is_some()),
        (10, flow.counters_reply.is_some()),
        (11, flow.use_count.is_some()),
        (12, flow.id.is_some()),
        (14, flow.master.is_some()),
        (15, flow.seqadj_orig.is_some()),
        (16, flow.seqadj_reply.is_some()),
        (18, flow.zone.is_some()),
        (19, flow.secctx.is_some()),
        (20, flow.timestamp.is_some()),
        (22, flow.labels.is_some()),
        (24, flow.synproxy.is_some()),
        (27, flow.event_timestamp.is_some()),
    ];
    for (kind, decoded) in presence {
        assert_eq!(
            seen.contains(&kind),
            decoded,
            "attribute {kind} present vs decoded"
        );
    }
    assert!(seen.contains(&1) && seen.contains(&2) && seen.contains(&3));
}

// ---------------------------------------------------------------------------
// One test per flow fixture: every field, explicitly.

/// tcp_ipv4_established.hex: `conntrack -I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 1111
/// --dport 80 --state ESTABLISHED -t 3600 -u SEEN_REPLY,ASSURED` (the docs/ctnetlink.md §2.6 example).
#[test]
fn tcp_ipv4_established_from_conntrack_cli_decodes_every_field() {
    let want = flow! {
        orig: tuple("10.0.0.1", "10.0.0.2", 6, ports(1111, 80), None),
        reply: tuple("10.0.0.2", "10.0.0.1", 6, ports(80, 1111), None),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
        timeout: Some(3599),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0x47, 0xf2, 0x5d, 0xd3])),
        zone: None,
        protoinfo: tcp(
            TcpState::Established,
            (0, 0),
            TcpFlags::SACK_PERM | TcpFlags::BE_LIBERAL,
            TcpFlags::SACK_PERM | TcpFlags::BE_LIBERAL,
        ),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("tcp_ipv4_established", want, 0x47f2_5dd3);
}

/// tcp_ipv6_syn_sent.hex: `conntrack -I -p tcp -s 2001:db8::1 -d 2001:db8::2 --sport 40000
/// --dport 443 --state SYN_SENT -t 120`.
#[test]
fn tcp_ipv6_syn_sent_decodes_every_field() {
    let want = flow! {
        orig: tuple("2001:db8::1", "2001:db8::2", 6, ports(40000, 443), None),
        reply: tuple("2001:db8::2", "2001:db8::1", 6, ports(443, 40000), None),
        status: Status::CONFIRMED,
        timeout: Some(119),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0xe5, 0x48, 0xcc, 0xca])),
        zone: None,
        protoinfo: tcp(
            TcpState::SynSent,
            (0, 0),
            TcpFlags::SACK_PERM | TcpFlags::BE_LIBERAL,
            TcpFlags::SACK_PERM | TcpFlags::BE_LIBERAL,
        ),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("tcp_ipv6_syn_sent", want, 0xe548_ccca);
}

/// udp_ipv4.hex: `conntrack -I -p udp -s 192.0.2.1 -d 192.0.2.2 --sport 5353 --dport 53 -t 30`.
#[test]
fn udp_ipv4_unreplied_decodes_every_field() {
    let want = flow! {
        orig: tuple("192.0.2.1", "192.0.2.2", 17, ports(5353, 53), None),
        reply: tuple("192.0.2.2", "192.0.2.1", 17, ports(53, 5353), None),
        status: Status::CONFIRMED,
        timeout: Some(29),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0x07, 0xb9, 0xd0, 0x31])),
        zone: None,
        protoinfo: None,
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("udp_ipv4", want, 0x07b9_d031);
}

/// udplite_ipv4.hex: `conntrack -I -p udplite -s 192.0.2.3 -d 192.0.2.4 --sport 1234
/// --dport 5678 -t 30`.
#[test]
fn udplite_ports_decode_every_field() {
    let want = flow! {
        orig: tuple("192.0.2.3", "192.0.2.4", 136, ports(1234, 5678), None),
        reply: tuple("192.0.2.4", "192.0.2.3", 136, ports(5678, 1234), None),
        status: Status::CONFIRMED,
        timeout: Some(29),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0xf6, 0x77, 0x06, 0xc9])),
        zone: None,
        protoinfo: None,
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("udplite_ipv4", want, 0xf677_06c9);
}

/// icmp_echo.hex: `conntrack -I -p icmp -s 192.0.2.1 -d 192.0.2.2 --icmp-type 8 --icmp-code 0
/// --icmp-id 4660 -t 30`: the reply tuple is the echo reply (type 0), same id.
#[test]
fn icmp_echo_id_type_code_decode_every_field() {
    let want = flow! {
        orig: tuple("192.0.2.1", "192.0.2.2", 1, L4::Icmp { id: 4660, icmp_type: 8, code: 0 }, None),
        reply: tuple("192.0.2.2", "192.0.2.1", 1, L4::Icmp { id: 4660, icmp_type: 0, code: 0 }, None),
        status: Status::CONFIRMED,
        timeout: Some(29),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0x60, 0x4c, 0xdd, 0xca])),
        zone: None,
        protoinfo: None,
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("icmp_echo", want, 0x604c_ddca);
}

/// icmpv6_echo_kernel.hex: a real echo request to ::1 from a raw ICMPv6 socket (python3,
/// id 0x1234) under an nft `ct state` rule; the kernel's echo reply sets SEEN_REPLY.
#[test]
fn icmpv6_echo_from_kernel_traffic_decodes_every_field() {
    let want = flow! {
        orig: tuple("::1", "::1", 58, L4::Icmp { id: 0x1234, icmp_type: 128, code: 0 }, None),
        reply: tuple("::1", "::1", 58, L4::Icmp { id: 0x1234, icmp_type: 129, code: 0 }, None),
        status: Status::CONFIRMED | Status::SEEN_REPLY,
        timeout: Some(29),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0xbb, 0x12, 0x3f, 0xe1])),
        zone: None,
        protoinfo: None,
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        // Kernel-created flows have no synproxy extension.
        synproxy: None,
        master: None,
        event_timestamp: None,
    };
    check_fixture("icmpv6_echo_kernel", want, 0xbb12_3fe1);
}

/// sctp_protoinfo.hex: `capture create sctp`, i.e. `ct.create(FlowSpec::new(Tuple::ports(SCTP,
/// 192.0.2.1, 5000, 192.0.2.2, 6000)).timeout(300).protoinfo(Sctp { ESTABLISHED,
/// vtag_orig 0x11111111, vtag_reply 0x22222222 }))`.
#[test]
fn sctp_state_and_vtags_from_library_create_decode_every_field() {
    let want = flow! {
        orig: tuple("192.0.2.1", "192.0.2.2", 132, ports(5000, 6000), None),
        reply: tuple("192.0.2.2", "192.0.2.1", 132, ports(6000, 5000), None),
        status: Status::CONFIRMED,
        timeout: Some(299),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0xe3, 0x46, 0xe2, 0xda])),
        zone: None,
        protoinfo: Some(ProtoInfo::Sctp(SctpInfo {
            state: Some(SctpState::Established),
            vtag_orig: Some(0x1111_1111),
            vtag_reply: Some(0x2222_2222),
        })),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("sctp_protoinfo", want, 0xe346_e2da);
}

/// sctp_kernel.hex: `python3 sctp_assoc.py` (INIT / INIT ACK / COOKIE ECHO / COOKIE ACK on raw
/// sockets, 127.0.0.1:5000 -> 127.0.0.2:6000, initiate tags A=0x11223344, B=0x55667788):
/// each direction's vtag is the tag its packets carry, i.e. the peer's initiate tag.
#[test]
fn sctp_association_tracked_from_real_packets_decodes_every_field() {
    let want = flow! {
        orig: tuple("127.0.0.1", "127.0.0.2", 132, ports(5000, 6000), None),
        reply: tuple("127.0.0.2", "127.0.0.1", 132, ports(6000, 5000), None),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
        timeout: Some(209),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0xf8, 0xda, 0x5f, 0xe9])),
        zone: None,
        protoinfo: Some(ProtoInfo::Sctp(SctpInfo {
            state: Some(SctpState::Established),
            vtag_orig: Some(0x5566_7788),
            vtag_reply: Some(0x1122_3344),
        })),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: None,
        master: None,
        event_timestamp: None,
    };
    check_fixture("sctp_kernel", want, 0xf8da_5fe9);
}

/// gre_keys.hex: `conntrack -I -p gre -s 192.0.2.1 -d 192.0.2.2 --srckey 0x1234 --dstkey 0x5678
/// -t 300`: the keys travel as CTA_PROTO_SRC/DST_PORT.
#[test]
fn gre_keys_decode_as_ports_with_every_field() {
    let want = flow! {
        orig: tuple("192.0.2.1", "192.0.2.2", 47, ports(0x1234, 0x5678), None),
        reply: tuple("192.0.2.2", "192.0.2.1", 47, ports(0x5678, 0x1234), None),
        status: Status::CONFIRMED,
        timeout: Some(300),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0x0e, 0x82, 0xc1, 0xb2])),
        zone: None,
        protoinfo: None,
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("gre_keys", want, 0x0e82_c1b2);
}

/// unknown_proto_253.hex: `conntrack -I -p 253 -s 192.0.2.1 -d 192.0.2.2 -t 300` (generic
/// tracker: CTA_PROTO_NUM only).
#[test]
fn unknown_protocol_253_has_no_l4_identity_and_decodes_every_field() {
    let want = flow! {
        orig: tuple("192.0.2.1", "192.0.2.2", 253, L4::None, None),
        reply: tuple("192.0.2.2", "192.0.2.1", 253, L4::None, None),
        status: Status::CONFIRMED,
        timeout: Some(300),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0x66, 0x5d, 0xc6, 0x78])),
        zone: None,
        protoinfo: None,
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("unknown_proto_253", want, 0x665d_c678);
}

/// zone.hex: `conntrack -I -p udp -s 192.0.2.9 -d 192.0.2.10 --sport 1000 --dport 2000 -t 300
/// --zone 7`: a zone for both directions is the top-level CTA_ZONE.
#[test]
fn zone_for_both_directions_is_top_level_cta_zone() {
    let want = flow! {
        orig: tuple("192.0.2.9", "192.0.2.10", 17, ports(1000, 2000), None),
        reply: tuple("192.0.2.10", "192.0.2.9", 17, ports(2000, 1000), None),
        status: Status::CONFIRMED,
        timeout: Some(300),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0xbb, 0x8b, 0x93, 0x32])),
        zone: Some(7),
        protoinfo: None,
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("zone", want, 0xbb8b_9332);
    let bytes = fixture("zone");
    assert_eq!(decode(&bytes).zone_id(), 7);
}

/// orig_zone.hex: `conntrack -I -p udp -s 192.0.2.7 -d 192.0.2.8 --sport 10 --dport 20
/// --orig-zone 5 -t 300`: a directional zone is CTA_TUPLE_ZONE inside CTA_TUPLE_ORIG only.
#[test]
fn original_direction_zone_is_in_the_orig_tuple_only() {
    let want = flow! {
        orig: tuple("192.0.2.7", "192.0.2.8", 17, ports(10, 20), Some(5)),
        reply: tuple("192.0.2.8", "192.0.2.7", 17, ports(20, 10), None),
        status: Status::CONFIRMED,
        timeout: Some(300),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0x1e, 0xcd, 0x0d, 0x81])),
        zone: None,
        protoinfo: None,
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("orig_zone", want, 0x1ecd_0d81);
    let bytes = fixture("orig_zone");
    assert_eq!(decode(&bytes).zone_id(), 5);
}

/// reply_zone.hex: `conntrack -I -p udp -s 192.0.2.5 -d 192.0.2.6 --sport 10 --dport 20
/// --reply-zone 6 -t 300`: CTA_TUPLE_ZONE inside CTA_TUPLE_REPLY only.
#[test]
fn reply_direction_zone_is_in_the_reply_tuple_only() {
    let want = flow! {
        orig: tuple("192.0.2.5", "192.0.2.6", 17, ports(10, 20), None),
        reply: tuple("192.0.2.6", "192.0.2.5", 17, ports(20, 10), Some(6)),
        status: Status::CONFIRMED,
        timeout: Some(299),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0xa7, 0x9f, 0x81, 0xa3])),
        zone: None,
        protoinfo: None,
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("reply_zone", want, 0xa79f_81a3);
    let bytes = fixture("reply_zone");
    assert_eq!(
        decode(&bytes).zone_id(),
        6,
        "zone_id is the flow's zone id whatever its direction, as the kernel's zone filter compares it"
    );
}

/// mark.hex: `conntrack -I -p tcp -s 10.0.0.3 -d 10.0.0.4 --sport 2222 --dport 22 --state
/// ESTABLISHED -t 3600 -u SEEN_REPLY,ASSURED --mark 0xdeadbeef`.
#[test]
fn mark_0xdeadbeef_decodes_with_every_field() {
    let want = flow! {
        orig: tuple("10.0.0.3", "10.0.0.4", 6, ports(2222, 22), None),
        reply: tuple("10.0.0.4", "10.0.0.3", 6, ports(22, 2222), None),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
        timeout: Some(3600),
        mark: Some(0xdead_beef),
        use_count: Some(1),
        id: Some(FlowId([0x89, 0xca, 0x8e, 0x8d])),
        zone: None,
        protoinfo: tcp(
            TcpState::Established,
            (0, 0),
            TcpFlags::SACK_PERM | TcpFlags::BE_LIBERAL,
            TcpFlags::SACK_PERM | TcpFlags::BE_LIBERAL,
        ),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("mark", want, 0x89ca_8e8d);
}

/// labels.hex: nft `ct label set 127` (so the netns uses labels), then `capture create labels`,
/// i.e. `ct.create(FlowSpec::new(Tuple::udp(198.51.100.1:1000, 198.51.100.2:2000)).timeout(600)
/// .labels(bits 0, 1, 31, 32, 63, 64, 100, 127))`.
#[test]
#[cfg(target_pointer_width = "64")]
fn labels_bitmap_decodes_bit_by_bit_with_every_field() {
    let bits = [0u32, 1, 31, 32, 63, 64, 100, 127];
    let labels = bits.iter().fold(Labels::default(), |l, &b| l.with(b));
    let want = flow! {
        orig: tuple("198.51.100.1", "198.51.100.2", 17, ports(1000, 2000), None),
        reply: tuple("198.51.100.2", "198.51.100.1", 17, ports(2000, 1000), None),
        status: Status::CONFIRMED,
        timeout: Some(599),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0xa9, 0x4b, 0xf6, 0x06])),
        zone: None,
        protoinfo: None,
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: Some(labels),
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("labels", want, 0xa94b_f606);
    let bytes = fixture("labels");
    let got = decode(&bytes).labels.unwrap();
    assert_eq!(got.iter().collect::<Vec<_>>(), bits);
    assert_eq!(
        got.0,
        (1u128 << 127) | (1 << 100) | (1 << 64) | (1 << 63) | (1 << 32) | (1 << 31) | (1 << 1) | 1
    );
    // The kernel's raw bitmap: two little-endian unsigned longs.
    let (at, len) = find_top(&bytes, 22);
    assert_eq!(len, 4 + 16);
    assert_eq!(
        &bytes[at + 4..at + 20],
        &[
            0x03, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00, 0x80, // bits 0, 1, 31, 32, 63
            0x01, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x80, // bits 64, 100, 127
        ]
    );
}

/// udp_counters_timestamp.hex: sysctls nf_conntrack_acct=1 and nf_conntrack_timestamp=1 in the
/// netns, nft `ct state` rule, then python3 sends 3 x 100-byte UDP datagrams 127.0.0.1:9001 ->
/// :9000 and 2 x 50-byte replies: L3 bytes 3 x (20+8+100) = 384 and 2 x (20+8+50) = 156.
#[test]
fn counters_and_timestamp_from_real_udp_traffic_decode_every_field() {
    let want = flow! {
        orig: tuple("127.0.0.1", "127.0.0.1", 17, ports(9001, 9000), None),
        reply: tuple("127.0.0.1", "127.0.0.1", 17, ports(9000, 9001), None),
        status: Status::CONFIRMED | Status::SEEN_REPLY,
        timeout: Some(29),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0xdf, 0x98, 0x8f, 0x08])),
        zone: None,
        protoinfo: None,
        counters_orig: Some(Counters { packets: 3, bytes: 384 }),
        counters_reply: Some(Counters { packets: 2, bytes: 156 }),
        timestamp: Some(Timestamp { start: Some(1_795_273_702_010_128_797), stop: None }),
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: None,
        master: None,
        event_timestamp: None,
    };
    check_fixture("udp_counters_timestamp", want, 0xdf98_8f08);
}

/// helper_ftp.hex: `capture create helper`, i.e. `ct.create(FlowSpec::new(Tuple::tcp(
/// 10.1.0.1:40000, 10.1.0.2:21)).timeout(3600).tcp_state(Established).status(SEEN_REPLY |
/// ASSURED).helper("ftp"))` (nf_conntrack_ftp is built in: CONFIG_NF_CONNTRACK_FTP=y).
#[test]
fn helper_name_ftp_decodes_with_every_field() {
    let want = flow! {
        orig: tuple("10.1.0.1", "10.1.0.2", 6, ports(40000, 21), None),
        reply: tuple("10.1.0.2", "10.1.0.1", 6, ports(21, 40000), None),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED | Status::HELPER,
        timeout: Some(3599),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0x51, 0xe6, 0x8d, 0xcb])),
        zone: None,
        protoinfo: tcp(TcpState::Established, (0, 0), TcpFlags::empty(), TcpFlags::empty()),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: Some("ftp"),
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("helper_ftp", want, 0x51e6_8dcb);
}

/// seqadj.hex: `capture create seqadj`, i.e. `.seqadj(SeqAdj { 0x11223344, 12, -20 },
/// SeqAdj { 0x55667788, -4, 100 })` on an ESTABLISHED TCP flow; the kernel adds SEQ_ADJUST.
#[test]
fn seqadj_both_directions_with_negative_offsets_decode_every_field() {
    let want = flow! {
        orig: tuple("10.2.0.1", "10.2.0.2", 6, ports(40002, 8080), None),
        reply: tuple("10.2.0.2", "10.2.0.1", 6, ports(8080, 40002), None),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED | Status::SEQ_ADJUST,
        timeout: Some(3599),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0x88, 0x27, 0x13, 0xd0])),
        zone: None,
        protoinfo: tcp(TcpState::Established, (0, 0), TcpFlags::empty(), TcpFlags::empty()),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: Some(SeqAdj { correction_pos: 0x1122_3344, offset_before: 12, offset_after: -20 }),
        seqadj_reply: Some(SeqAdj { correction_pos: 0x5566_7788, offset_before: -4, offset_after: 100 }),
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("seqadj", want, 0x8827_13d0);
}

/// synproxy.hex: `capture create synproxy`, i.e. TCP ESTABLISHED with window scales 7/9 and
/// flags (both directions need WINDOW_SCALE for the kernel to take the scales) and
/// `.synproxy(Synproxy { isn: 0x01020304, its: 0xa0b0c0d0, tsoff: 0xfffffff0 })`.
#[test]
fn synproxy_values_and_window_scales_decode_every_field() {
    let want = flow! {
        orig: tuple("10.4.0.1", "10.4.0.2", 6, ports(40004, 443), None),
        reply: tuple("10.4.0.2", "10.4.0.1", 6, ports(443, 40004), None),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
        timeout: Some(3599),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0xa0, 0x06, 0x7b, 0x89])),
        zone: None,
        protoinfo: tcp(
            TcpState::Established,
            (7, 9),
            TcpFlags::WINDOW_SCALE | TcpFlags::SACK_PERM,
            TcpFlags::WINDOW_SCALE,
        ),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: Some(Synproxy { isn: 0x0102_0304, its: 0xa0b0_c0d0, tsoff: 0xffff_fff0 }),
        master: None,
        event_timestamp: None,
    };
    check_fixture("synproxy", want, 0xa006_7b89);
}

/// master_expected.hex: `capture create master`: a master TCP flow 10.3.0.1:40003 -> 10.3.0.2:21
/// with helper ftp, then `FlowSpec::new(Tuple::tcp(10.3.0.2:20, 10.3.0.1:50000)).timeout(120)
/// .tcp_state(SynSent).master(<the master's orig tuple>)`; the dump of the expected flow.
#[test]
fn expected_flow_carries_its_master_tuple_and_every_field() {
    let want = flow! {
        orig: tuple("10.3.0.2", "10.3.0.1", 6, ports(20, 50000), None),
        reply: tuple("10.3.0.1", "10.3.0.2", 6, ports(50000, 20), None),
        status: Status::CONFIRMED | Status::EXPECTED,
        timeout: Some(119),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0x89, 0xb0, 0x8c, 0xe1])),
        zone: None,
        protoinfo: tcp(TcpState::SynSent, (0, 0), TcpFlags::empty(), TcpFlags::empty()),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: Some(tuple("10.3.0.1", "10.3.0.2", 6, ports(40003, 21), None)),
        event_timestamp: None,
    };
    check_fixture("master_expected", want, 0x89b0_8ce1);
}

/// tcp_kernel_established.hex: nft `ct state` rule, then a real loopback TCP connection
/// (python3: 127.0.0.1:45678 -> 127.0.0.1:8000, a request and an answer), captured while open:
/// real window scales and WINDOW_SCALE|SACK_PERM|MAXACK_SET flags, 5-day timeout.
#[test]
fn tcp_established_from_real_handshake_decodes_every_field() {
    let flags = TcpFlags::WINDOW_SCALE | TcpFlags::SACK_PERM | TcpFlags::MAXACK_SET;
    let want = flow! {
        orig: tuple("127.0.0.1", "127.0.0.1", 6, ports(45678, 8000), None),
        reply: tuple("127.0.0.1", "127.0.0.1", 6, ports(8000, 45678), None),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
        timeout: Some(431_998),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0xa6, 0x0d, 0x7b, 0x17])),
        zone: None,
        protoinfo: tcp(TcpState::Established, (10, 10), flags, flags),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: None,
        master: None,
        event_timestamp: None,
    };
    check_fixture("tcp_kernel_established", want, 0xa60d_7b17);
}

/// tcp_kernel_time_wait.hex: the same connection as tcp_kernel_established.hex (same id),
/// captured after the client then the server closed: TIME_WAIT, CLOSE_INIT on the client side.
#[test]
fn tcp_time_wait_after_real_close_decodes_every_field() {
    let want = flow! {
        orig: tuple("127.0.0.1", "127.0.0.1", 6, ports(45678, 8000), None),
        reply: tuple("127.0.0.1", "127.0.0.1", 6, ports(8000, 45678), None),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
        timeout: Some(119),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0xa6, 0x0d, 0x7b, 0x17])),
        zone: None,
        protoinfo: tcp(
            TcpState::TimeWait,
            (10, 10),
            TcpFlags::WINDOW_SCALE | TcpFlags::SACK_PERM | TcpFlags::CLOSE_INIT | TcpFlags::MAXACK_SET,
            TcpFlags::WINDOW_SCALE | TcpFlags::SACK_PERM | TcpFlags::MAXACK_SET,
        ),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: None,
        master: None,
        event_timestamp: None,
    };
    check_fixture("tcp_kernel_time_wait", want, 0xa60d_7b17);
}

/// secctx_handbuilt.hex (hand-built from tcp_ipv4_established.hex: no LSM here provides a
/// secctx): CTA_SECCTX { CTA_SECCTX_NAME "system_u:object_r:ssh_server_packet_t:s0" }.
#[test]
fn secctx_name_from_handbuilt_fixture_decodes_with_every_field() {
    let want = flow! {
        orig: tuple("10.0.0.1", "10.0.0.2", 6, ports(1111, 80), None),
        reply: tuple("10.0.0.2", "10.0.0.1", 6, ports(80, 1111), None),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
        timeout: Some(3599),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0x47, 0xf2, 0x5d, 0xd3])),
        zone: None,
        protoinfo: tcp(
            TcpState::Established,
            (0, 0),
            TcpFlags::SACK_PERM | TcpFlags::BE_LIBERAL,
            TcpFlags::SACK_PERM | TcpFlags::BE_LIBERAL,
        ),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: Some("system_u:object_r:ssh_server_packet_t:s0"),
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("secctx_handbuilt", want, 0x47f2_5dd3);
}

/// dccp_handbuilt.hex (hand-built from tcp_ipv4_established.hex: 6.18 has no DCCP tracker):
/// protocol 33 and CTA_PROTOINFO_DCCP { STATE OPEN, ROLE client, HANDSHAKE_SEQ 0x123456789abc }.
#[test]
fn dccp_protoinfo_from_handbuilt_fixture_decodes_with_every_field() {
    let want = flow! {
        orig: tuple("10.0.0.1", "10.0.0.2", 33, ports(1111, 80), None),
        reply: tuple("10.0.0.2", "10.0.0.1", 33, ports(80, 1111), None),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
        timeout: Some(3599),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0x47, 0xf2, 0x5d, 0xd3])),
        zone: None,
        protoinfo: Some(ProtoInfo::Dccp(DccpInfo {
            state: Some(DccpState::Open),
            role: Some(0),
            handshake_seq: Some(0x1234_5678_9abc),
        })),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    check_fixture("dccp_handbuilt", want, 0x47f2_5dd3);
}

// ---------------------------------------------------------------------------
// Datagram fixtures

fn datagram_messages(bytes: &[u8]) -> Vec<conntrack::wire::Message<'_>> {
    Messages::new(bytes)
        .collect::<Result<Vec<_>, _>>()
        .expect("the datagram frames")
}

/// dump_datagram.hex: the first datagram of a dump after `conntrack -I` of a TCP (10.0.0.1:1111
/// -> 10.0.0.2:80 ESTABLISHED), an IPv6 UDP (2001:db8::1:5353 -> 2001:db8::2:53) and an ICMP
/// echo (id 4660) flow: three messages back to back, every field of each.
#[test]
fn dump_datagram_with_three_flows_decodes_every_message() {
    let bytes = fixture("dump_datagram");
    let messages = datagram_messages(&bytes);
    assert_eq!(messages.len(), 3);
    let mut offset = 0;
    for m in &messages {
        assert_eq!((m.kind, m.flags, m.seq), (0x0100, 0x0002, 1));
        let end = offset + 16 + m.payload.len();
        cross_check(&bytes[offset..end], &decode_flow(m.payload).unwrap());
        offset = end;
    }
    assert_eq!(offset, bytes.len(), "no NLMSG_DONE in this datagram");
    let udp6 = flow! {
        orig: tuple("2001:db8::1", "2001:db8::2", 17, ports(5353, 53), None),
        reply: tuple("2001:db8::2", "2001:db8::1", 17, ports(53, 5353), None),
        status: Status::CONFIRMED,
        timeout: Some(299),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0x8d, 0xd6, 0x73, 0x12])),
        zone: None,
        protoinfo: None,
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    let icmp = flow! {
        orig: tuple("192.0.2.1", "192.0.2.2", 1, L4::Icmp { id: 4660, icmp_type: 8, code: 0 }, None),
        reply: tuple("192.0.2.2", "192.0.2.1", 1, L4::Icmp { id: 4660, icmp_type: 0, code: 0 }, None),
        status: Status::CONFIRMED,
        timeout: Some(299),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0x5c, 0x54, 0x26, 0xb0])),
        zone: None,
        protoinfo: None,
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    let tcp4 = flow! {
        orig: tuple("10.0.0.1", "10.0.0.2", 6, ports(1111, 80), None),
        reply: tuple("10.0.0.2", "10.0.0.1", 6, ports(80, 1111), None),
        status: Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
        timeout: Some(3599),
        mark: Some(0),
        use_count: Some(1),
        id: Some(FlowId([0xcc, 0xbe, 0x47, 0xf9])),
        zone: None,
        protoinfo: tcp(
            TcpState::Established,
            (0, 0),
            TcpFlags::SACK_PERM | TcpFlags::BE_LIBERAL,
            TcpFlags::SACK_PERM | TcpFlags::BE_LIBERAL,
        ),
        counters_orig: None,
        counters_reply: None,
        timestamp: None,
        labels: None,
        helper: None,
        secctx: None,
        seqadj_orig: None,
        seqadj_reply: None,
        synproxy: NO_SYNPROXY_STATE,
        master: None,
        event_timestamp: None,
    };
    for (m, want) in messages.iter().zip([udp6, icmp, tcp4]) {
        assert_flow(&decode_flow(m.payload).unwrap(), &want);
    }
    assert_eq!(fuzzing::datagram(&bytes), 3);
}

/// stats_global.hex: `capture stats` (IPCTNL_MSG_CT_GET_STATS) in a netns holding 3 flows
/// (`conntrack -C` said 3; nf_conntrack_max 262144).
#[test]
fn get_stats_reply_decodes_entries_and_max_entries() {
    let bytes = fixture("stats_global");
    let messages = datagram_messages(&bytes);
    assert_eq!(messages.len(), 1);
    let m = messages[0];
    assert_eq!((m.kind, m.flags, m.seq), (0x0105, 0x0002, 1));
    assert_eq!(
        &m.payload[..4],
        &[0, 0, 0, 0],
        "nfgenmsg AF_UNSPEC, v0, res_id 0"
    );
    let stats = decode_table_stats(m.payload).unwrap();
    assert_eq!(
        stats,
        TableStats {
            entries: 3,
            max_entries: Some(262_144)
        }
    );
    assert_eq!(stats.usage(), Some(3.0 / 262_144.0));
    // netlink-packet-netfilter sees the same two attributes.
    let np = NetlinkMessage::<NetfilterMessage>::deserialize(&bytes).unwrap();
    let NetlinkPayload::InnerMessage(nf) = np.payload else {
        panic!()
    };
    let NetfilterMessageInner::Conntrack(ConntrackMessage::Other {
        message_type,
        attributes,
    }) = nf.inner
    else {
        panic!()
    };
    assert_eq!(message_type, 5);
    let attrs: Vec<(u16, u32)> = attributes
        .iter()
        .map(|a| (a.kind(), be32(&nla_value(a))))
        .collect();
    assert_eq!(attrs, [(1, 3), (2, 262_144)]);
    assert_eq!(fuzzing::datagram(&bytes), 0, "no flows in a stats reply");
}

/// The one expectation of expect_dump.hex and expect_event.hex (`capture
/// create expect`: an ftp master 10.5.0.1:40005 -> 10.5.0.2:21, the data
/// connection to port 50005 from any source port, PERMANENT); every field
/// the kernel sent. It sends no zone (ctnetlink_exp_dump_expect has no
/// CTA_EXPECT_ZONE), no NAT (no NAT helper) and no function name (created
/// from userspace: no expectfn).
fn assert_captured_expectation(e: &conntrack::ExpectationRef<'_>, timeout: u32) {
    let tcp = |a: [u8; 4], sport, b: [u8; 4], dport| Tuple::tcp((a, sport), (b, dport));
    assert_eq!(e.master, tcp([10, 5, 0, 1], 40005, [10, 5, 0, 2], 21));
    assert_eq!(e.tuple, tcp([10, 5, 0, 1], 0, [10, 5, 0, 2], 50005));
    assert_eq!(
        e.mask,
        tcp([255; 4], 0, [255; 4], 65535),
        "mask: any source port"
    );
    assert_eq!(
        e.timeout,
        Some(timeout),
        "the ftp helper's 300 s, not the 120 asked"
    );
    assert_eq!(e.id, Some(FlowId([0x00, 0x5d, 0x71, 0xa0])));
    assert_eq!(e.id.unwrap().value(), 6_123_936);
    assert_eq!(e.flags, conntrack::ExpectFlags::PERMANENT);
    assert_eq!(e.class, Some(0));
    assert_eq!(e.helper, Some("ftp"));
    assert_eq!((e.zone, e.nat, e.function), (None, None, None));
    // The same line conntrack -L expect printed (in the fixture's header).
    let line = conntrack::text::display_expectation(e).to_string();
    if timeout == 299 {
        assert!(
            fixture_text("expect_dump").contains(&format!("# {line}\n")),
            "{line}"
        );
    }
}

/// expect_dump.hex: `capture expect-dump`, the first datagram of an
/// expectation dump (IPCTNL_MSG_EXP_GET, subsystem 2): one IPCTNL_MSG_EXP_NEW
/// message with NLM_F_MULTI, DONE in a later datagram.
#[test]
fn expectation_dump_reply_decodes_every_field() {
    let bytes = fixture("expect_dump");
    let messages = datagram_messages(&bytes);
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(
        (m.kind, m.flags, m.seq),
        (0x0200, 0x0002, 1),
        "EXP_NEW, NLM_F_MULTI"
    );
    assert_eq!(
        &m.payload[..4],
        &[2, 0, 0, 0],
        "AF_INET, version 0, res_id 0"
    );
    let e = conntrack::decode_expectation_ref(m.payload).unwrap();
    assert_captured_expectation(&e, 299);
    assert_eq!(
        conntrack::decode_expectation(m.payload).unwrap(),
        e.to_owned_expectation()
    );
    // Not a flow: the flow decoder finds no tuples.
    assert!(decode_flow(m.payload).is_err());
    // Every truncation is an error, never a panic; the mandatory tuples make
    // any cut before the last of them an error.
    for cut in 4..m.payload.len() {
        let result = conntrack::decode_expectation_ref(&m.payload[..cut]);
        if cut < 4 + 3 * 0x34 {
            assert!(result.is_err(), "cut at {cut} decoded");
        }
    }
}

/// expect_event.hex: `capture expect-event`, the NEW event of the same
/// expectation on NFNLGRP_CONNTRACK_EXP_NEW: IPCTNL_MSG_EXP_NEW with
/// NLM_F_CREATE|NLM_F_EXCL, seq 0, the creating socket's port id.
#[test]
fn expectation_event_decodes_every_field() {
    use conntrack::events::{decode_event, decode_expectation_event, EventKind};
    let bytes = fixture("expect_event");
    let messages = datagram_messages(&bytes);
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!((m.kind, m.flags, m.seq), (0x0200, 0x0600, 0));
    assert_eq!(decode_event(m).unwrap(), None, "not a flow event");
    let event = decode_expectation_event(m)
        .unwrap()
        .expect("an expectation event");
    assert_eq!(event.kind, EventKind::New);
    assert_eq!(event.origin_portid, 0xbd76_22bf);
    assert_captured_expectation(&event.expectation, 300);
}

/// stats_cpu.hex: `capture stats-cpu` (IPCTNL_MSG_CT_GET_STATS_CPU dump) on the 2-CPU VM, same
/// netns as stats_global.hex; `conntrack -S` said insert=1 on each CPU, every other counter 0.
#[test]
fn get_stats_cpu_reply_decodes_one_message_per_cpu() {
    let bytes = fixture("stats_cpu");
    let messages = datagram_messages(&bytes);
    assert_eq!(
        messages.len(),
        2,
        "one message per possible CPU, DONE comes later"
    );
    let mut counters = CpuCounters::default();
    counters.searched = None;
    counters.found = Some(0);
    counters.new = None;
    counters.invalid = Some(0);
    counters.ignore = None;
    counters.delete = None;
    counters.delete_list = None;
    counters.insert = Some(1);
    counters.insert_failed = Some(0);
    counters.drop = Some(0);
    counters.early_drop = Some(0);
    counters.error = Some(0);
    counters.search_restart = Some(0);
    counters.clash_resolve = Some(0);
    counters.chain_too_long = Some(0);

    let mut per_cpu = Vec::new();
    for (cpu, m) in messages.iter().enumerate() {
        assert_eq!((m.kind, m.flags, m.seq), (0x0104, 0x0002, 1));
        assert_eq!(
            &m.payload[..4],
            &[0, 0, 0, cpu as u8],
            "res_id = htons(cpu)"
        );
        let stats = decode_cpu_stats(m.payload).unwrap();
        assert_eq!(
            stats,
            CpuStats {
                cpu: cpu as u16,
                counters
            }
        );
        per_cpu.push(stats);
    }
    let total = KernelStats::from_per_cpu(per_cpu).total;
    assert_eq!(total.insert, Some(2));
    assert_eq!(total.found, Some(0));
    assert_eq!(total.searched, None);
    let names: Vec<_> = total
        .fields()
        .iter()
        .filter(|f| f.1.is_some())
        .map(|f| f.0)
        .collect();
    assert_eq!(
        names,
        [
            "found",
            "invalid",
            "insert",
            "insert_failed",
            "drop",
            "early_drop",
            "error",
            "search_restart",
            "clash_resolve",
            "chaintoolong"
        ]
    );
    // Cross-check the first message with netlink-packet-netfilter.
    let np = NetlinkMessage::<NetfilterMessage>::deserialize(&bytes).unwrap();
    let NetlinkPayload::InnerMessage(nf) = np.payload else {
        panic!()
    };
    assert_eq!(nf.header.res_id, 0);
    let NetfilterMessageInner::Conntrack(ConntrackMessage::Other {
        message_type,
        attributes,
    }) = nf.inner
    else {
        panic!()
    };
    assert_eq!(message_type, 4);
    let attrs: Vec<(u16, u32)> = attributes
        .iter()
        .map(|a| (a.kind(), be32(&nla_value(a))))
        .collect();
    assert_eq!(
        attrs,
        [
            (2, 0),
            (4, 0),
            (8, 1),
            (9, 0),
            (10, 0),
            (11, 0),
            (12, 0),
            (13, 0),
            (14, 0),
            (15, 0)
        ]
    );
    assert_eq!(fuzzing::datagram(&bytes), 0);
}

/// The request the error fixtures answer, from their `request hex` comment.
fn error_request(name: &str) -> Vec<u8> {
    let text = fixture_text(name);
    let hex = text
        .split("request hex ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("request hex in the header");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn check_extack(name: &str, flags: u16) -> Vec<u8> {
    let bytes = fixture(name);
    let request = error_request(name);
    assert_eq!(request.len(), 140);
    // The offending attribute of the request: a 2-byte CTA_STATUS (len 6, type 3) at 132.
    assert_eq!(&request[132..136], &[6, 0, 3, 0]);
    let messages = datagram_messages(&bytes);
    assert_eq!(messages.len(), 1);
    let m = messages[0];
    assert_eq!((m.kind, m.flags, m.seq), (2, flags, 1), "NLMSG_ERROR");
    let reply = parse_error(&m).unwrap();
    assert_eq!(reply.errno, libc::ERANGE);
    assert_eq!(reply.message, Some("Attribute failed policy validation"));
    assert_eq!(reply.offset, Some(132));
    // The echoed request header is the request's.
    assert_eq!(&m.payload[4..20], &request[..16]);
    // netlink-packet-core agrees on the code.
    let np = NetlinkMessage::<NetfilterMessage>::deserialize(&bytes).unwrap();
    let NetlinkPayload::Error(e) = np.payload else {
        panic!("not an error")
    };
    assert_eq!(e.raw_code(), -libc::ERANGE);
    assert_eq!(fuzzing::datagram(&bytes), 0);
    bytes
}

/// error_extack_capped.hex: `capture error`: CT_NEW whose CTA_STATUS has a 2-byte payload,
/// on a socket with NETLINK_EXT_ACK and NETLINK_CAP_ACK (as the library opens it).
#[test]
fn capped_extack_error_gives_erange_message_and_offset() {
    let bytes = check_extack("error_extack_capped", 0x0300);
    assert_eq!(
        bytes.len(),
        16 + 4 + 16 + 84,
        "only the request header is echoed"
    );
}

/// error_extack_uncapped.hex: `capture error --uncapped`: same request, NETLINK_CAP_ACK off,
/// so the whole request is echoed before the TLVs.
#[test]
fn uncapped_extack_error_echoes_request_and_gives_offset() {
    let bytes = check_extack("error_extack_uncapped", 0x0200);
    let request = error_request("error_extack_uncapped");
    assert_eq!(&bytes[20..20 + request.len()], &request[..]);
}

// ---------------------------------------------------------------------------
// Coverage of the fixture directory

#[test]
fn every_fixture_file_is_listed_and_names_its_origin() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".hex"))
        .map(|n| n.trim_end_matches(".hex").to_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = all_fixtures().map(str::to_owned).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    for name in all_fixtures() {
        let text = fixture_text(name);
        assert!(
            text.starts_with('#'),
            "{name}: starts with its comment header"
        );
        assert!(
            text.contains("# captured: ") || text.starts_with("# hand-built, not captured: "),
            "{name}: says how it was produced"
        );
    }
}

// ---------------------------------------------------------------------------
// Robustness: truncation and corruption never panic

/// Ends of the complete flow messages of a datagram, by an independent walk.
fn flow_message_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut pos = 0;
    while pos + 16 <= bytes.len() {
        let len = ne32(bytes, pos) as usize;
        if len < 16 || pos + len > bytes.len() {
            break;
        }
        if ne16(bytes, pos + 4) == 0x0100 {
            ends.push(pos + len);
        }
        pos += (len + 3) & !3;
    }
    ends
}

#[test]
fn every_truncation_of_every_fixture_decodes_only_complete_messages() {
    for name in all_fixtures() {
        let bytes = fixture(name);
        let ends = flow_message_ends(&bytes);
        for n in 0..=bytes.len() {
            let cut = &bytes[..n];
            let complete = ends.iter().filter(|&&end| end <= n).count();
            assert_eq!(fuzzing::datagram(cut), complete, "{name} cut at {n}");
            if n >= 16 {
                let _ = decode_flow(&cut[16..]);
                let _ = decode_table_stats(&cut[16..]);
                let _ = decode_cpu_stats(&cut[16..]);
            }
        }
    }
}

#[test]
fn truncating_a_flow_before_its_reply_tuple_ends_is_an_error() {
    for name in FLOW_FIXTURES {
        let bytes = fixture(name);
        let (at, len) = find_top(&bytes, 2);
        for n in 16..at + len {
            assert!(
                decode_flow(&bytes[16..n]).is_err(),
                "{name}: payload cut at {n} decoded"
            );
        }
    }
}

/// Byte values that stress lengths (0, 1-4, odd, huge) and type flags (0x40, 0x80).
const DATAGRAM_PROBES: &[u8] = &[
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xfe, 0xff,
];

#[test]
fn every_single_byte_corruption_of_every_fixture_never_panics() {
    for name in all_fixtures() {
        let bytes = fixture(name);
        let is_flow = FLOW_FIXTURES.contains(&name);
        let original = is_flow.then(|| decode_flow(&bytes[16..]).unwrap());
        let mut corrupt = bytes.clone();
        for at in 0..bytes.len() {
            for value in 0..=255u8 {
                if value == bytes[at] {
                    continue;
                }
                corrupt[at] = value;
                // The full datagram path (framing, every decoder, owned copy,
                // Debug) for the values that matter most to lengths, types and
                // flags; the flow decoder for every value.
                if DATAGRAM_PROBES.contains(&value) || value == bytes[at] ^ 0x01 {
                    let _ = fuzzing::datagram(&corrupt);
                }
                let _ = conntrack::decode_expectation_ref(&corrupt[16..]);
                let decoded = decode_flow(&corrupt[16..]);
                if is_flow && (8..16).contains(&at) {
                    // nlmsg_seq / nlmsg_pid are not part of the flow.
                    assert_eq!(decoded.ok(), original, "{name}: byte {at} = {value}");
                }
            }
            corrupt[at] = bytes[at];
        }
    }
}

// ---------------------------------------------------------------------------
// Specific malformed messages give typed errors

/// Built from tcp_ipv4_established.hex (`conntrack -I -p tcp ... --state ESTABLISHED`):
/// CTA_STATUS (at offset 124) with nla_len 6, i.e. a 2-byte payload; the padding keeps the
/// following attributes where they were.
#[test]
fn wrong_size_status_is_wrong_size_at_the_status_offset() {
    let mut bytes = fixture("tcp_ipv4_established");
    let (at, len) = find_top(&bytes, 3);
    assert_eq!((at, len), (124, 8));
    bytes[at..at + 2].copy_from_slice(&6u16.to_ne_bytes());
    assert_eq!(
        decode_flow(&bytes[16..]).unwrap_err(),
        DecodeError {
            what: "CTA_STATUS",
            kind: DecodeErrorKind::WrongSize {
                expected: 4,
                found: 2
            },
            offset: 124,
        }
    );
    assert_eq!(fuzzing::datagram(&bytes), 0);
}

/// Built from tcp_ipv4_established.hex: CTA_TUPLE_REPLY (offset 72, 52 bytes) removed.
#[test]
fn missing_reply_tuple_is_missing() {
    let mut bytes = fixture("tcp_ipv4_established");
    let (at, len) = find_top(&bytes, 2);
    assert_eq!((at, len), (72, 52));
    bytes.drain(at..at + len);
    fix_len(&mut bytes);
    assert_eq!(
        decode_flow(&bytes[16..]).unwrap_err(),
        DecodeError {
            what: "CTA_TUPLE_REPLY",
            kind: DecodeErrorKind::Missing,
            offset: 16, // Missing errors point at the message (after its nlmsghdr)
        }
    );
    // And without the original tuple.
    let mut bytes = fixture("tcp_ipv4_established");
    bytes.drain(20..72);
    fix_len(&mut bytes);
    assert_eq!(
        decode_flow(&bytes[16..]).unwrap_err(),
        DecodeError {
            what: "CTA_TUPLE_ORIG",
            kind: DecodeErrorKind::Missing,
            offset: 16,
        }
    );
}

/// Built from tcp_ipv4_established.hex: CTA_MARK (offset 132) claims 1024 bytes while 108
/// remain; and, in a nest, CTA_IP_V4_SRC claims more than its CTA_TUPLE_IP.
#[test]
fn nla_len_beyond_the_message_is_truncated_at_that_attribute() {
    let mut bytes = fixture("tcp_ipv4_established");
    let (at, _) = find_top(&bytes, 8);
    assert_eq!(at, 132);
    bytes[at..at + 2].copy_from_slice(&1024u16.to_ne_bytes());
    assert_eq!(
        decode_flow(&bytes[16..]).unwrap_err(),
        DecodeError {
            what: "ctattr_type",
            kind: DecodeErrorKind::Truncated {
                needed: 1024,
                available: 240 - 132
            },
            offset: 132,
        }
    );
    assert_eq!(fuzzing::datagram(&bytes), 0);

    // CTA_TUPLE_ORIG at 20, its CTA_TUPLE_IP at 24 (len 20), CTA_IP_V4_SRC at 28.
    let mut bytes = fixture("tcp_ipv4_established");
    assert_eq!(ne16(&bytes, 24), 20);
    assert_eq!(ne16(&bytes, 28), 8);
    bytes[28..30].copy_from_slice(&40u16.to_ne_bytes());
    assert_eq!(
        decode_flow(&bytes[16..]).unwrap_err(),
        DecodeError {
            what: "CTA_TUPLE_IP",
            kind: DecodeErrorKind::Truncated {
                needed: 40,
                available: 16
            },
            offset: 28,
        }
    );
}

/// Built from tcp_ipv4_established.hex: the original tuple's CTA_IP_V4_DST replaced by a
/// CTA_IP_V6_DST (2001:db8::2), so the tuple mixes families.
#[test]
fn ipv4_source_with_ipv6_destination_is_invalid() {
    let bytes = fixture("tcp_ipv4_established");
    let (at, len) = find_top(&bytes, 1);
    let orig = &bytes[at + 4..at + len];
    let ip_len = ne16(orig, 0) as usize;
    let proto = &orig[ip_len..];
    let mut ip_nest = nla(1, &[10, 0, 0, 1]);
    let v6: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
    ip_nest.extend(nla(4, &v6.octets()));
    let mut tuple_payload = nla(1 | 0x8000, &ip_nest);
    tuple_payload.extend_from_slice(proto);
    let mut edited = bytes[..at].to_vec();
    edited.extend(nla(1 | 0x8000, &tuple_payload));
    edited.extend_from_slice(&bytes[at + len..]);
    fix_len(&mut edited);
    assert_eq!(
        decode_flow(&edited[16..]).unwrap_err(),
        DecodeError {
            what: "CTA_TUPLE_ORIG",
            kind: DecodeErrorKind::Invalid,
            offset: 20,
        }
    );
}

/// Every flow fixture with an unknown top-level attribute (type 200, plain and as a nest
/// with garbage inside) first and last decodes exactly as the original.
#[test]
fn unknown_top_level_attribute_200_is_skipped() {
    for name in FLOW_FIXTURES {
        let bytes = fixture(name);
        let original = decode_flow(&bytes[16..]).unwrap();
        let mut edited = bytes[..20].to_vec();
        edited.extend(nla(200, &[0xde, 0xad, 0xbe, 0xef, 0x01]));
        edited.extend_from_slice(&bytes[20..]);
        edited.extend(nla(200 | 0x8000, &[0xff, 0xff, 0x01, 0x00, 0x42]));
        fix_len(&mut edited);
        assert_eq!(decode_flow(&edited[16..]).unwrap(), original, "{name}");
        assert_eq!(fuzzing::datagram(&edited), 1, "{name}");
    }
}

/// Every flow fixture with NLA_F_NESTED cleared on every nest, as kernels before 5.2 sent
/// them, decodes exactly as the original.
#[test]
fn nests_without_nla_f_nested_as_before_linux_5_2_decode_the_same() {
    for name in FLOW_FIXTURES {
        let bytes = fixture(name);
        let original = decode_flow(&bytes[16..]).unwrap();
        let mut old = bytes.clone();
        let cleared = strip_nested_flags(&mut old[20..]);
        assert!(cleared >= 6, "{name}: only {cleared} nests");
        assert_ne!(old, bytes);
        assert_eq!(decode_flow(&old[16..]).unwrap(), original, "{name}");
    }
}

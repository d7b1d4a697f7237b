// SPDX-License-Identifier: MIT OR Apache-2.0
//! Decoding one ctnetlink flow message into a [`FlowRef`].
//!
//! Contract: [`decode_flow`] reads every attribute of the message once, in one
//! pass, without allocating. Unknown attributes (at any level) are skipped;
//! a known attribute with a payload of the wrong size, a framing error, a
//! tuple without addresses or protocol, or mixed address families give a
//! [`DecodeError`] naming the attribute and its offset. It never panics, whatever
//! the bytes (the fuzz targets call it through [`crate::fuzzing`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::consts::*;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::flow::*;
use crate::status::Status;
use crate::wire::{netfilter_attrs, Attr, Attrs};

/// Offset of the first attribute in a ctnetlink message (nlmsghdr + nfgenmsg).
const ATTRS_OFFSET: usize = NLMSG_HDRLEN + NFGENMSG_LEN;

/// Decodes the payload of a flow message (everything after the `nlmsghdr`,
/// starting with the `nfgenmsg`): a dump entry, a GET reply or an event.
#[inline]
pub fn decode_flow(payload: &[u8]) -> Result<FlowRef<'_>, DecodeError> {
    let mut flow = FlowRef::default();
    decode_fields(payload, &mut flow)?;
    Ok(flow)
}

/// Like [`decode_flow`], but decodes into `flow` (every field is overwritten),
/// which saves moving the result on hot paths.
#[inline]
pub fn decode_flow_into<'a>(payload: &'a [u8], flow: &mut FlowRef<'a>) -> Result<(), DecodeError> {
    *flow = FlowRef::default();
    decode_fields(payload, flow)
}

/// Decodes into a flow whose fields are all at their defaults.
///
/// The top-level attributes are walked by a plain loop over the bytes rather
/// than the general [`Attrs`] iterator (the per-attribute `Result` costs about
/// a tenth of a flow's decoding); the framing rule is the same, and a framing
/// error is reported by the general walker itself ([`framing_error`]), so the
/// result is identical ([`fast_paths_agree`] checks it on fuzz input).
#[inline(always)]
fn decode_fields<'a>(payload: &'a [u8], flow: &mut FlowRef<'a>) -> Result<(), DecodeError> {
    let Some(attrs) = payload.get(NFGENMSG_LEN..) else {
        return Err(framing_error(payload));
    };
    let mut seen = Seen::default();
    let mut rest = attrs;
    // Fewer bytes than a header at the end is alignment padding (`nla_ok()`).
    while rest.len() >= NLA_HDRLEN {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let raw_type = u16::from_ne_bytes([rest[2], rest[3]]);
        if len < NLA_HDRLEN || len > rest.len() {
            return Err(framing_error(payload));
        }
        let kind = raw_type & NLA_TYPE_MASK;
        // The scalars every dump entry carries, read directly when their size
        // is right; anything else (or a wrong size, to report it) goes
        // through the per-attribute decoder.
        match (kind, len) {
            (CTA_STATUS, 8) => flow.status = Status::from_bits_retain(be32_at(rest, 4)),
            (CTA_TIMEOUT, 8) => flow.timeout = Some(be32_at(rest, 4)),
            (CTA_MARK, 8) => flow.mark = Some(be32_at(rest, 4)),
            (CTA_USE, 8) => flow.use_count = Some(be32_at(rest, 4)),
            (CTA_ID, 8) => flow.id = Some(FlowId([rest[4], rest[5], rest[6], rest[7]])),
            (CTA_ZONE, 6) => flow.zone = Some(u16::from_be_bytes([rest[4], rest[5]])),
            _ => {
                let attr = Attr {
                    kind,
                    nested: raw_type & NLA_F_NESTED != 0,
                    payload: &rest[NLA_HDRLEN..len],
                    offset: ATTRS_OFFSET + (attrs.len() - rest.len()),
                };
                decode_attr(&attr, flow, &mut seen)?;
            }
        }
        // Past the padding; the last attribute may omit it.
        rest = rest.get((len + 3) & !3..).unwrap_or_default();
    }
    seen.check()
}

/// The same decoding driven by the general [`Attrs`] walker: the reference
/// [`decode_fields`] must agree with.
fn decode_fields_general<'a>(payload: &'a [u8], flow: &mut FlowRef<'a>) -> Result<(), DecodeError> {
    let mut seen = Seen::default();
    for attr in netfilter_attrs(payload, "ctattr_type")? {
        decode_attr(&attr?, flow, &mut seen)?;
    }
    seen.check()
}

/// The framing error the general walker reports for `payload` (cold: only
/// malformed messages get here).
#[cold]
#[inline(never)]
fn framing_error(payload: &[u8]) -> DecodeError {
    let first_error =
        netfilter_attrs(payload, "ctattr_type").map(|attrs| attrs.filter_map(Result::err).next());
    match first_error {
        Err(e) | Ok(Some(e)) => e,
        // Unreachable: both walkers apply the same rule. Still an error, not a panic.
        Ok(None) => DecodeError::new("ctattr_type", DecodeErrorKind::Invalid, NLMSG_HDRLEN),
    }
}

/// Which mandatory attributes a message had.
#[derive(Default)]
struct Seen {
    orig: bool,
    reply: bool,
}

impl Seen {
    #[inline(always)]
    fn check(&self) -> Result<(), DecodeError> {
        if !self.orig {
            return Err(missing("CTA_TUPLE_ORIG"));
        }
        if !self.reply {
            return Err(missing("CTA_TUPLE_REPLY"));
        }
        Ok(())
    }
}

/// Decodes one top-level attribute into `flow`.
#[inline(always)]
fn decode_attr<'a>(
    attr: &Attr<'a>,
    flow: &mut FlowRef<'a>,
    seen: &mut Seen,
) -> Result<(), DecodeError> {
    match attr.kind {
        CTA_TUPLE_ORIG => {
            decode_tuple(attr, "CTA_TUPLE_ORIG", &mut flow.orig)?;
            seen.orig = true;
        }
        CTA_TUPLE_REPLY => {
            decode_tuple(attr, "CTA_TUPLE_REPLY", &mut flow.reply)?;
            seen.reply = true;
        }
        CTA_TUPLE_MASTER => {
            let mut master = Tuple::default();
            decode_tuple(attr, "CTA_TUPLE_MASTER", &mut master)?;
            flow.master = Some(master);
        }
        CTA_STATUS => flow.status = Status::from_bits_retain(attr.be32("CTA_STATUS")?),
        CTA_TIMEOUT => flow.timeout = Some(attr.be32("CTA_TIMEOUT")?),
        CTA_MARK => flow.mark = Some(attr.be32("CTA_MARK")?),
        CTA_USE => flow.use_count = Some(attr.be32("CTA_USE")?),
        CTA_ID => flow.id = Some(FlowId(attr.array("CTA_ID")?)),
        CTA_ZONE => flow.zone = Some(attr.be16("CTA_ZONE")?),
        CTA_PROTOINFO => flow.protoinfo = decode_protoinfo(attr)?,
        CTA_COUNTERS_ORIG => flow.counters_orig = Some(decode_counters(attr, "CTA_COUNTERS_ORIG")?),
        CTA_COUNTERS_REPLY => {
            flow.counters_reply = Some(decode_counters(attr, "CTA_COUNTERS_REPLY")?)
        }
        CTA_TIMESTAMP => flow.timestamp = Some(decode_timestamp(attr)?),
        CTA_LABELS => {
            flow.labels = Some(
                Labels::from_kernel_bytes(attr.payload).ok_or(DecodeError::new(
                    "CTA_LABELS",
                    DecodeErrorKind::WrongSize {
                        expected: 16,
                        found: attr.payload.len(),
                    },
                    attr.offset,
                ))?,
            )
        }
        CTA_HELP => flow.helper = decode_name(attr, CTA_HELP_NAME, "CTA_HELP_NAME")?,
        CTA_SECCTX => flow.secctx = decode_name(attr, CTA_SECCTX_NAME, "CTA_SECCTX_NAME")?,
        CTA_SEQ_ADJ_ORIG => flow.seqadj_orig = Some(decode_seqadj(attr, "CTA_SEQ_ADJ_ORIG")?),
        CTA_SEQ_ADJ_REPLY => flow.seqadj_reply = Some(decode_seqadj(attr, "CTA_SEQ_ADJ_REPLY")?),
        CTA_SYNPROXY => flow.synproxy = Some(decode_synproxy(attr)?),
        CTA_TIMESTAMP_EVENT => flow.event_timestamp = Some(attr.be64("CTA_TIMESTAMP_EVENT")?),
        _ => {} // padding, request-only and future attributes
    }
    Ok(())
}

fn missing(what: &'static str) -> DecodeError {
    DecodeError::new(what, DecodeErrorKind::Missing, NLMSG_HDRLEN)
}

fn invalid(what: &'static str, attr: &Attr<'_>) -> DecodeError {
    DecodeError::new(what, DecodeErrorKind::Invalid, attr.offset)
}

/// The attribute header at `at` (which the caller has bounds-checked, e.g. by
/// taking `b` as a fixed-size array) as one native-endian word, with the
/// type's flag bits masked off: one load, one mask, compared with [`nla_is`].
#[inline(always)]
fn nla(b: &[u8], at: usize) -> u32 {
    // One 4-byte copy: LLVM does not merge the byte loads of
    // `from_ne_bytes([b[at], ..])` when the top byte is masked afterwards.
    let mut word = [0u8; 4];
    word.copy_from_slice(&b[at..at + NLA_HDRLEN]);
    u32::from_ne_bytes(word) & NLA_WORD_MASK
}

/// Keeps `nla_len` and the type without `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER`.
const NLA_WORD_MASK: u32 = nla_is(u16::MAX, NLA_TYPE_MASK);

/// The word [`nla`] gives for an attribute of type `kind` and `nla_len` `len`.
const fn nla_is(len: u16, kind: u16) -> u32 {
    let (l, k) = (len.to_ne_bytes(), kind.to_ne_bytes());
    u32::from_ne_bytes([l[0], l[1], k[0], k[1]])
}

/// The tuple layouts the kernel emits (`ctnetlink_dump_tuples`): `CTA_TUPLE_IP`
/// with source then destination, then `CTA_TUPLE_PROTO` with the protocol
/// number then ports, or ICMP id, type and code, or nothing else. Recognised by
/// exact lengths and types and read at fixed offsets of fixed-size arrays (one
/// bounds check per nest); any other layout (a tuple zone, other orders,
/// future attributes) returns `None` and takes the general path, which gives
/// the same result.
#[inline]
fn decode_tuple_fast(p: &[u8], out: &mut Tuple) -> Option<()> {
    let (src, dst, rest) = match nla(p.get(..NLA_HDRLEN)?, 0) {
        x if x == nla_is(20, CTA_TUPLE_IP) => {
            let ip: &[u8; 20] = p.get(..20)?.try_into().ok()?;
            if nla(ip, 4) != nla_is(8, CTA_IP_V4_SRC) || nla(ip, 12) != nla_is(8, CTA_IP_V4_DST) {
                return None;
            }
            let src = Ipv4Addr::new(ip[8], ip[9], ip[10], ip[11]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            (IpAddr::V4(src), IpAddr::V4(dst), &p[20..])
        }
        x if x == nla_is(44, CTA_TUPLE_IP) => {
            let ip: &[u8; 44] = p.get(..44)?.try_into().ok()?;
            if nla(ip, 4) != nla_is(20, CTA_IP_V6_SRC) || nla(ip, 24) != nla_is(20, CTA_IP_V6_DST) {
                return None;
            }
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&ip[8..24]);
            dst.copy_from_slice(&ip[28..44]);
            (IpAddr::V6(src.into()), IpAddr::V6(dst.into()), &p[44..])
        }
        _ => return None,
    };
    // CTA_TUPLE_PROTO is the rest of the tuple, exactly.
    let (protocol, l4) = match rest.len() {
        12 => {
            let l4: &[u8; 12] = rest.try_into().ok()?;
            if nla(l4, 0) != nla_is(12, CTA_TUPLE_PROTO) || nla(l4, 4) != nla_is(5, CTA_PROTO_NUM) {
                return None;
            }
            (l4[8], L4::None)
        }
        28 => {
            let l4: &[u8; 28] = rest.try_into().ok()?;
            if nla(l4, 0) != nla_is(28, CTA_TUPLE_PROTO)
                || nla(l4, 4) != nla_is(5, CTA_PROTO_NUM)
                || nla(l4, 12) != nla_is(6, CTA_PROTO_SRC_PORT)
                || nla(l4, 20) != nla_is(6, CTA_PROTO_DST_PORT)
            {
                return None;
            }
            let ports = L4::Ports {
                src: u16::from_be_bytes([l4[16], l4[17]]),
                dst: u16::from_be_bytes([l4[24], l4[25]]),
            };
            (l4[8], ports)
        }
        36 => {
            let l4: &[u8; 36] = rest.try_into().ok()?;
            if nla(l4, 0) != nla_is(36, CTA_TUPLE_PROTO) || nla(l4, 4) != nla_is(5, CTA_PROTO_NUM) {
                return None;
            }
            let (id, kind, code) = (nla(l4, 12), nla(l4, 20), nla(l4, 28));
            let icmp = id == nla_is(6, CTA_PROTO_ICMP_ID)
                && kind == nla_is(5, CTA_PROTO_ICMP_TYPE)
                && code == nla_is(5, CTA_PROTO_ICMP_CODE);
            let icmpv6 = id == nla_is(6, CTA_PROTO_ICMPV6_ID)
                && kind == nla_is(5, CTA_PROTO_ICMPV6_TYPE)
                && code == nla_is(5, CTA_PROTO_ICMPV6_CODE);
            if !(icmp || icmpv6) {
                return None;
            }
            let icmp = L4::Icmp {
                id: u16::from_be_bytes([l4[16], l4[17]]),
                icmp_type: l4[24],
                code: l4[32],
            };
            (l4[8], icmp)
        }
        _ => return None,
    };
    out.src = src;
    out.dst = dst;
    out.protocol = protocol;
    out.l4 = l4;
    out.zone = None;
    Some(())
}

#[inline(always)]
fn decode_tuple(tuple: &Attr<'_>, what: &'static str, out: &mut Tuple) -> Result<(), DecodeError> {
    if decode_tuple_fast(tuple.payload, out).is_some() {
        return Ok(());
    }
    *out = decode_tuple_general(tuple, what)?;
    Ok(())
}

#[cold]
fn decode_tuple_general(tuple: &Attr<'_>, what: &'static str) -> Result<Tuple, DecodeError> {
    let mut src = None;
    let mut dst = None;
    let mut protocol = None;
    let (mut sport, mut dport) = (None, None);
    let (mut icmp_id, mut icmp_type, mut icmp_code) = (None, None, None);
    let mut zone = None;
    for attr in tuple.nested(what) {
        let attr = attr?;
        match attr.kind {
            CTA_TUPLE_IP => {
                for ip in attr.nested("CTA_TUPLE_IP") {
                    let ip = ip?;
                    match ip.kind {
                        CTA_IP_V4_SRC => {
                            src = Some(IpAddr::V4(Ipv4Addr::from(ip.array("CTA_IP_V4_SRC")?)))
                        }
                        CTA_IP_V4_DST => {
                            dst = Some(IpAddr::V4(Ipv4Addr::from(ip.array("CTA_IP_V4_DST")?)))
                        }
                        CTA_IP_V6_SRC => {
                            src = Some(IpAddr::V6(Ipv6Addr::from(ip.array("CTA_IP_V6_SRC")?)))
                        }
                        CTA_IP_V6_DST => {
                            dst = Some(IpAddr::V6(Ipv6Addr::from(ip.array("CTA_IP_V6_DST")?)))
                        }
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for p in attr.nested("CTA_TUPLE_PROTO") {
                    let p = p?;
                    match p.kind {
                        CTA_PROTO_NUM => protocol = Some(p.u8("CTA_PROTO_NUM")?),
                        CTA_PROTO_SRC_PORT => sport = Some(p.be16("CTA_PROTO_SRC_PORT")?),
                        CTA_PROTO_DST_PORT => dport = Some(p.be16("CTA_PROTO_DST_PORT")?),
                        CTA_PROTO_ICMP_ID | CTA_PROTO_ICMPV6_ID => {
                            icmp_id = Some(p.be16("CTA_PROTO_ICMP_ID")?)
                        }
                        CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE => {
                            icmp_type = Some(p.u8("CTA_PROTO_ICMP_TYPE")?)
                        }
                        CTA_PROTO_ICMP_CODE | CTA_PROTO_ICMPV6_CODE => {
                            icmp_code = Some(p.u8("CTA_PROTO_ICMP_CODE")?)
                        }
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_ZONE => zone = Some(attr.be16("CTA_TUPLE_ZONE")?),
            _ => {}
        }
    }
    let (src, dst) = match (src, dst) {
        (Some(s), Some(d)) if s.is_ipv4() == d.is_ipv4() => (s, d),
        (Some(_), Some(_)) => return Err(invalid(what, tuple)),
        _ => {
            return Err(DecodeError::new(
                what,
                DecodeErrorKind::Missing,
                tuple.offset,
            ))
        }
    };
    let protocol = protocol.ok_or(DecodeError::new(
        "CTA_PROTO_NUM",
        DecodeErrorKind::Missing,
        tuple.offset,
    ))?;
    let l4 = if sport.is_some() || dport.is_some() {
        L4::Ports {
            src: sport.unwrap_or(0),
            dst: dport.unwrap_or(0),
        }
    } else if icmp_id.is_some() || icmp_type.is_some() || icmp_code.is_some() {
        L4::Icmp {
            id: icmp_id.unwrap_or(0),
            icmp_type: icmp_type.unwrap_or(0),
            code: icmp_code.unwrap_or(0),
        }
    } else {
        L4::None
    };
    Ok(Tuple {
        src,
        dst,
        protocol,
        l4,
        zone,
    })
}

/// `CTA_PROTOINFO` as `tcp_to_nlattr` writes it (the `CTA_PROTOINFO_TCP` nest
/// with state, both window scales and both flag pairs, in that order), read at
/// fixed offsets.
#[inline]
fn decode_tcp_protoinfo_fast(p: &[u8]) -> Option<ProtoInfo> {
    let p: &[u8; 44] = p.try_into().ok()?;
    if nla(p, 0) != nla_is(44, CTA_PROTOINFO_TCP)
        || nla(p, 4) != nla_is(5, CTA_PROTOINFO_TCP_STATE)
        || nla(p, 12) != nla_is(5, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL)
        || nla(p, 20) != nla_is(5, CTA_PROTOINFO_TCP_WSCALE_REPLY)
        || nla(p, 28) != nla_is(6, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL)
        || nla(p, 36) != nla_is(6, CTA_PROTOINFO_TCP_FLAGS_REPLY)
    {
        return None;
    }
    let flags = |at: usize| {
        (
            TcpFlags::from_bits_retain(p[at]),
            TcpFlags::from_bits_retain(p[at + 1]),
        )
    };
    Some(ProtoInfo::Tcp(TcpInfo {
        state: Some(TcpState::from_raw(p[8])),
        wscale_orig: Some(p[16]),
        wscale_reply: Some(p[24]),
        flags_orig: Some(flags(32)),
        flags_reply: Some(flags(40)),
    }))
}

fn decode_protoinfo(attr: &Attr<'_>) -> Result<Option<ProtoInfo>, DecodeError> {
    if let Some(tcp) = decode_tcp_protoinfo_fast(attr.payload) {
        return Ok(Some(tcp));
    }
    decode_protoinfo_general(attr)
}

fn decode_protoinfo_general(attr: &Attr<'_>) -> Result<Option<ProtoInfo>, DecodeError> {
    let mut result = None;
    for inner in attr.nested("CTA_PROTOINFO") {
        let inner = inner?;
        match inner.kind {
            CTA_PROTOINFO_TCP => {
                let mut tcp = TcpInfo::default();
                for a in inner.nested("CTA_PROTOINFO_TCP") {
                    let a = a?;
                    match a.kind {
                        CTA_PROTOINFO_TCP_STATE => {
                            tcp.state = Some(TcpState::from_raw(a.u8("CTA_PROTOINFO_TCP_STATE")?))
                        }
                        CTA_PROTOINFO_TCP_WSCALE_ORIGINAL => {
                            tcp.wscale_orig = Some(a.u8("CTA_PROTOINFO_TCP_WSCALE_ORIGINAL")?)
                        }
                        CTA_PROTOINFO_TCP_WSCALE_REPLY => {
                            tcp.wscale_reply = Some(a.u8("CTA_PROTOINFO_TCP_WSCALE_REPLY")?)
                        }
                        CTA_PROTOINFO_TCP_FLAGS_ORIGINAL => {
                            tcp.flags_orig =
                                Some(tcp_flags(&a, "CTA_PROTOINFO_TCP_FLAGS_ORIGINAL")?)
                        }
                        CTA_PROTOINFO_TCP_FLAGS_REPLY => {
                            tcp.flags_reply = Some(tcp_flags(&a, "CTA_PROTOINFO_TCP_FLAGS_REPLY")?)
                        }
                        _ => {}
                    }
                }
                result = Some(ProtoInfo::Tcp(tcp));
            }
            CTA_PROTOINFO_SCTP => {
                let mut sctp = SctpInfo::default();
                for a in inner.nested("CTA_PROTOINFO_SCTP") {
                    let a = a?;
                    match a.kind {
                        CTA_PROTOINFO_SCTP_STATE => {
                            sctp.state =
                                Some(SctpState::from_raw(a.u8("CTA_PROTOINFO_SCTP_STATE")?))
                        }
                        CTA_PROTOINFO_SCTP_VTAG_ORIGINAL => {
                            sctp.vtag_orig = Some(a.be32("CTA_PROTOINFO_SCTP_VTAG_ORIGINAL")?)
                        }
                        CTA_PROTOINFO_SCTP_VTAG_REPLY => {
                            sctp.vtag_reply = Some(a.be32("CTA_PROTOINFO_SCTP_VTAG_REPLY")?)
                        }
                        _ => {}
                    }
                }
                result = Some(ProtoInfo::Sctp(sctp));
            }
            CTA_PROTOINFO_DCCP => {
                let mut dccp = DccpInfo::default();
                for a in inner.nested("CTA_PROTOINFO_DCCP") {
                    let a = a?;
                    match a.kind {
                        CTA_PROTOINFO_DCCP_STATE => {
                            dccp.state =
                                Some(DccpState::from_raw(a.u8("CTA_PROTOINFO_DCCP_STATE")?))
                        }
                        CTA_PROTOINFO_DCCP_ROLE => {
                            dccp.role = Some(a.u8("CTA_PROTOINFO_DCCP_ROLE")?)
                        }
                        CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ => {
                            dccp.handshake_seq = Some(a.be64("CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ")?)
                        }
                        _ => {}
                    }
                }
                result = Some(ProtoInfo::Dccp(dccp));
            }
            _ => {}
        }
    }
    Ok(result)
}

fn tcp_flags(attr: &Attr<'_>, what: &'static str) -> Result<(TcpFlags, TcpFlags), DecodeError> {
    let [flags, mask] = attr.array::<2>(what)?;
    Ok((
        TcpFlags::from_bits_retain(flags),
        TcpFlags::from_bits_retain(mask),
    ))
}

fn decode_counters(attr: &Attr<'_>, what: &'static str) -> Result<Counters, DecodeError> {
    let mut counters = Counters::default();
    for a in attr.nested(what) {
        let a = a?;
        match a.kind {
            CTA_COUNTERS_PACKETS => counters.packets = a.be64("CTA_COUNTERS_PACKETS")?,
            CTA_COUNTERS_BYTES => counters.bytes = a.be64("CTA_COUNTERS_BYTES")?,
            CTA_COUNTERS32_PACKETS => {
                counters.packets = u64::from(a.be32("CTA_COUNTERS32_PACKETS")?)
            }
            CTA_COUNTERS32_BYTES => counters.bytes = u64::from(a.be32("CTA_COUNTERS32_BYTES")?),
            _ => {}
        }
    }
    Ok(counters)
}

fn decode_timestamp(attr: &Attr<'_>) -> Result<Timestamp, DecodeError> {
    let mut ts = Timestamp::default();
    for a in attr.nested("CTA_TIMESTAMP") {
        let a = a?;
        match a.kind {
            CTA_TIMESTAMP_START => ts.start = Some(a.be64("CTA_TIMESTAMP_START")?),
            CTA_TIMESTAMP_STOP => ts.stop = Some(a.be64("CTA_TIMESTAMP_STOP")?),
            _ => {}
        }
    }
    Ok(ts)
}

fn decode_name<'a>(
    attr: &Attr<'a>,
    name_kind: u16,
    what: &'static str,
) -> Result<Option<&'a str>, DecodeError> {
    let mut name = None;
    for a in attr.nested(what) {
        let a = a?;
        if a.kind == name_kind {
            name = Some(a.str(what)?);
        }
    }
    Ok(name)
}

fn decode_seqadj(attr: &Attr<'_>, what: &'static str) -> Result<SeqAdj, DecodeError> {
    let mut seqadj = SeqAdj::default();
    for a in attr.nested(what) {
        let a = a?;
        match a.kind {
            CTA_SEQADJ_CORRECTION_POS => {
                seqadj.correction_pos = a.be32("CTA_SEQADJ_CORRECTION_POS")?
            }
            CTA_SEQADJ_OFFSET_BEFORE => {
                seqadj.offset_before = a.be32("CTA_SEQADJ_OFFSET_BEFORE")? as i32
            }
            CTA_SEQADJ_OFFSET_AFTER => {
                seqadj.offset_after = a.be32("CTA_SEQADJ_OFFSET_AFTER")? as i32
            }
            _ => {}
        }
    }
    Ok(seqadj)
}

fn decode_synproxy(attr: &Attr<'_>) -> Result<Synproxy, DecodeError> {
    match decode_synproxy_fast(attr.payload) {
        Some(synproxy) => Ok(synproxy),
        None => decode_synproxy_general(attr),
    }
}

/// `CTA_SYNPROXY` as the kernel writes it (ISN, ITS, TSOFF), read at fixed offsets.
#[inline(always)]
fn decode_synproxy_fast(p: &[u8]) -> Option<Synproxy> {
    let p: &[u8; 24] = p.try_into().ok()?;
    if nla(p, 0) != nla_is(8, CTA_SYNPROXY_ISN)
        || nla(p, 8) != nla_is(8, CTA_SYNPROXY_ITS)
        || nla(p, 16) != nla_is(8, CTA_SYNPROXY_TSOFF)
    {
        return None;
    }
    Some(Synproxy {
        isn: be32_at(p, 4),
        its: be32_at(p, 12),
        tsoff: be32_at(p, 20),
    })
}

/// The big-endian `u32` at `at` (in bounds: the caller checked the length).
#[inline(always)]
fn be32_at(b: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(word)
}

fn decode_synproxy_general(attr: &Attr<'_>) -> Result<Synproxy, DecodeError> {
    let mut synproxy = Synproxy::default();
    for a in attr.nested("CTA_SYNPROXY") {
        let a = a?;
        match a.kind {
            CTA_SYNPROXY_ISN => synproxy.isn = a.be32("CTA_SYNPROXY_ISN")?,
            CTA_SYNPROXY_ITS => synproxy.its = a.be32("CTA_SYNPROXY_ITS")?,
            CTA_SYNPROXY_TSOFF => synproxy.tsoff = a.be32("CTA_SYNPROXY_TSOFF")?,
            _ => {}
        }
    }
    Ok(synproxy)
}

/// Checks that every fast path agrees with the general decoder wherever it
/// applies (the fuzz targets assert this on arbitrary input).
#[doc(hidden)]
pub fn fast_paths_agree(payload: &[u8]) -> bool {
    let mut general = FlowRef::default();
    let general = decode_fields_general(payload, &mut general).map(|()| general);
    if decode_flow(payload) != general {
        return false;
    }
    let Some(attrs) = payload.get(NFGENMSG_LEN..) else {
        return true;
    };
    for attr in Attrs::new(attrs, ATTRS_OFFSET, "ctattr_type") {
        let Ok(attr) = attr else { return true };
        let agrees = match attr.kind {
            CTA_TUPLE_ORIG | CTA_TUPLE_REPLY | CTA_TUPLE_MASTER => {
                let mut fast = Tuple::default();
                decode_tuple_fast(attr.payload, &mut fast).is_none()
                    || decode_tuple_general(&attr, "tuple") == Ok(fast)
            }
            CTA_PROTOINFO => match decode_tcp_protoinfo_fast(attr.payload) {
                None => true,
                Some(fast) => decode_protoinfo_general(&attr) == Ok(Some(fast)),
            },
            CTA_SYNPROXY => match decode_synproxy_fast(attr.payload) {
                None => true,
                Some(fast) => decode_synproxy_general(&attr) == Ok(fast),
            },
            _ => true,
        };
        if !agrees {
            return false;
        }
    }
    true
}

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
#[inline(always)]
fn decode_fields<'a>(payload: &'a [u8], flow: &mut FlowRef<'a>) -> Result<(), DecodeError> {
    let mut have_orig = false;
    let mut have_reply = false;
    for attr in netfilter_attrs(payload, "ctattr_type")? {
        let attr = attr?;
        match attr.kind {
            CTA_TUPLE_ORIG => {
                decode_tuple(&attr, "CTA_TUPLE_ORIG", &mut flow.orig)?;
                have_orig = true;
            }
            CTA_TUPLE_REPLY => {
                decode_tuple(&attr, "CTA_TUPLE_REPLY", &mut flow.reply)?;
                have_reply = true;
            }
            CTA_TUPLE_MASTER => {
                let mut master = Tuple::default();
                decode_tuple(&attr, "CTA_TUPLE_MASTER", &mut master)?;
                flow.master = Some(master);
            }
            CTA_STATUS => flow.status = Status::from_bits_retain(attr.be32("CTA_STATUS")?),
            CTA_TIMEOUT => flow.timeout = Some(attr.be32("CTA_TIMEOUT")?),
            CTA_MARK => flow.mark = Some(attr.be32("CTA_MARK")?),
            CTA_USE => flow.use_count = Some(attr.be32("CTA_USE")?),
            CTA_ID => flow.id = Some(FlowId(attr.array("CTA_ID")?)),
            CTA_ZONE => flow.zone = Some(attr.be16("CTA_ZONE")?),
            CTA_PROTOINFO => flow.protoinfo = decode_protoinfo(&attr)?,
            CTA_COUNTERS_ORIG => {
                flow.counters_orig = Some(decode_counters(&attr, "CTA_COUNTERS_ORIG")?)
            }
            CTA_COUNTERS_REPLY => {
                flow.counters_reply = Some(decode_counters(&attr, "CTA_COUNTERS_REPLY")?)
            }
            CTA_TIMESTAMP => flow.timestamp = Some(decode_timestamp(&attr)?),
            CTA_LABELS => {
                flow.labels = Some(Labels::from_kernel_bytes(attr.payload).ok_or(
                    DecodeError::new(
                        "CTA_LABELS",
                        DecodeErrorKind::WrongSize {
                            expected: 16,
                            found: attr.payload.len(),
                        },
                        attr.offset,
                    ),
                )?)
            }
            CTA_HELP => flow.helper = decode_name(&attr, CTA_HELP_NAME, "CTA_HELP_NAME")?,
            CTA_SECCTX => flow.secctx = decode_name(&attr, CTA_SECCTX_NAME, "CTA_SECCTX_NAME")?,
            CTA_SEQ_ADJ_ORIG => flow.seqadj_orig = Some(decode_seqadj(&attr, "CTA_SEQ_ADJ_ORIG")?),
            CTA_SEQ_ADJ_REPLY => {
                flow.seqadj_reply = Some(decode_seqadj(&attr, "CTA_SEQ_ADJ_REPLY")?)
            }
            CTA_SYNPROXY => flow.synproxy = Some(decode_synproxy(&attr)?),
            CTA_TIMESTAMP_EVENT => flow.event_timestamp = Some(attr.be64("CTA_TIMESTAMP_EVENT")?),
            _ => {} // padding, request-only and future attributes
        }
    }
    if !have_orig {
        return Err(missing("CTA_TUPLE_ORIG"));
    }
    if !have_reply {
        return Err(missing("CTA_TUPLE_REPLY"));
    }
    Ok(())
}

fn missing(what: &'static str) -> DecodeError {
    DecodeError::new(what, DecodeErrorKind::Missing, NLMSG_HDRLEN)
}

fn invalid(what: &'static str, attr: &Attr<'_>) -> DecodeError {
    DecodeError::new(what, DecodeErrorKind::Invalid, attr.offset)
}

/// Header (length, masked type) of the attribute at `offset`, if it fits.
#[inline(always)]
fn header_at(payload: &[u8], offset: usize) -> Option<(usize, u16)> {
    let b = payload.get(offset..offset + NLA_HDRLEN)?;
    Some((
        usize::from(u16::from_ne_bytes([b[0], b[1]])),
        u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK,
    ))
}

/// The tuple layouts the kernel emits (`ctnetlink_dump_tuples`): `CTA_TUPLE_IP`
/// with source then destination, then `CTA_TUPLE_PROTO` with the protocol
/// number then ports, or ICMP id, type and code, or nothing else. Recognised by
/// exact lengths and types and read at fixed offsets; any other layout (a
/// tuple zone, other orders, future attributes) returns `None` and takes the
/// general path, which gives the same result.
#[inline]
fn decode_tuple_fast(p: &[u8], out: &mut Tuple) -> Option<()> {
    let (ip_len, ip_kind) = header_at(p, 0)?;
    if ip_kind != CTA_TUPLE_IP {
        return None;
    }
    let (src, dst) = match ip_len {
        20 if header_at(p, 4)? == (8, CTA_IP_V4_SRC) && header_at(p, 12)? == (8, CTA_IP_V4_DST) => {
            let src: [u8; 4] = p.get(8..12)?.try_into().ok()?;
            let dst: [u8; 4] = p.get(16..20)?.try_into().ok()?;
            (IpAddr::V4(src.into()), IpAddr::V4(dst.into()))
        }
        44 if header_at(p, 4)? == (20, CTA_IP_V6_SRC)
            && header_at(p, 24)? == (20, CTA_IP_V6_DST) =>
        {
            let src: [u8; 16] = p.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = p.get(28..44)?.try_into().ok()?;
            (IpAddr::V6(src.into()), IpAddr::V6(dst.into()))
        }
        _ => return None,
    };
    let (proto_len, proto_kind) = header_at(p, ip_len)?;
    if proto_kind != CTA_TUPLE_PROTO || ip_len + proto_len != p.len() {
        return None;
    }
    let q = ip_len + NLA_HDRLEN;
    if header_at(p, q)? != (5, CTA_PROTO_NUM) {
        return None;
    }
    let protocol = *p.get(q + 4)?;
    let be16 = |at: usize| p.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let l4 = match proto_len {
        12 => L4::None,
        28 if header_at(p, q + 8)? == (6, CTA_PROTO_SRC_PORT)
            && header_at(p, q + 16)? == (6, CTA_PROTO_DST_PORT) =>
        {
            L4::Ports {
                src: be16(q + 12)?,
                dst: be16(q + 20)?,
            }
        }
        36 => {
            let (id, kind, code) = (
                header_at(p, q + 8)?,
                header_at(p, q + 16)?,
                header_at(p, q + 24)?,
            );
            let icmp = id == (6, CTA_PROTO_ICMP_ID)
                && kind == (5, CTA_PROTO_ICMP_TYPE)
                && code == (5, CTA_PROTO_ICMP_CODE);
            let icmpv6 = id == (6, CTA_PROTO_ICMPV6_ID)
                && kind == (5, CTA_PROTO_ICMPV6_TYPE)
                && code == (5, CTA_PROTO_ICMPV6_CODE);
            if !(icmp || icmpv6) {
                return None;
            }
            L4::Icmp {
                id: be16(q + 12)?,
                icmp_type: *p.get(q + 20)?,
                code: *p.get(q + 28)?,
            }
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

#[inline]
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

/// True when `p` holds exactly the attributes `expected` (`(nla_len, type)`),
/// in that order, each padded to 4 bytes: the fixed layouts the kernel emits.
#[inline(always)]
fn layout_is(p: &[u8], expected: &[(usize, u16)]) -> bool {
    let mut at = 0;
    for &want in expected {
        if header_at(p, at) != Some(want) {
            return false;
        }
        at += (want.0 + 3) & !3;
    }
    at == p.len()
}

const TCP_LAYOUT: [(usize, u16); 5] = [
    (5, CTA_PROTOINFO_TCP_STATE),
    (5, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL),
    (5, CTA_PROTOINFO_TCP_WSCALE_REPLY),
    (6, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL),
    (6, CTA_PROTOINFO_TCP_FLAGS_REPLY),
];

/// `CTA_PROTOINFO` as `tcp_to_nlattr` writes it, read at fixed offsets.
#[inline]
fn decode_tcp_protoinfo_fast(p: &[u8]) -> Option<ProtoInfo> {
    if !(layout_is(p, &[(44, CTA_PROTOINFO_TCP)]) && layout_is(p.get(4..)?, &TCP_LAYOUT)) {
        return None;
    }
    let flags = |at: usize| {
        Some((
            TcpFlags::from_bits_retain(*p.get(at)?),
            TcpFlags::from_bits_retain(*p.get(at + 1)?),
        ))
    };
    Some(ProtoInfo::Tcp(TcpInfo {
        state: Some(TcpState::from_raw(*p.get(8)?)),
        wscale_orig: Some(*p.get(16)?),
        wscale_reply: Some(*p.get(24)?),
        flags_orig: Some(flags(32)?),
        flags_reply: Some(flags(40)?),
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
    let p = attr.payload;
    let fixed = [
        (8, CTA_SYNPROXY_ISN),
        (8, CTA_SYNPROXY_ITS),
        (8, CTA_SYNPROXY_TSOFF),
    ];
    if layout_is(p, &fixed) {
        let be32 = |at: usize| u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]);
        return Ok(Synproxy {
            isn: be32(4),
            its: be32(12),
            tsoff: be32(20),
        });
    }
    decode_synproxy_general(attr)
}

const SYNPROXY_LAYOUT: [(usize, u16); 3] = [
    (8, CTA_SYNPROXY_ISN),
    (8, CTA_SYNPROXY_ITS),
    (8, CTA_SYNPROXY_TSOFF),
];

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
            CTA_SYNPROXY => {
                !layout_is(attr.payload, &SYNPROXY_LAYOUT)
                    || decode_synproxy(&attr) == decode_synproxy_general(&attr)
            }
            _ => true,
        };
        if !agrees {
            return false;
        }
    }
    true
}

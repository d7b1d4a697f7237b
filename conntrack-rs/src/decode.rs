// SPDX-License-Identifier: MIT OR Apache-2.0
//! Decoding one ctnetlink flow message into a [`FlowRef`].
//!
//! Contract: [`decode_flow`] decodes a message without allocating. Unknown
//! attributes (at any level) are skipped; a known attribute with a payload of
//! the wrong size, a framing error, a tuple without addresses or protocol, or
//! mixed address families give a [`DecodeError`] naming the attribute and its
//! offset. It never panics, whatever the bytes (the fuzz targets in `fuzz/`
//! call it through the test-only `fuzzing` module).
//!
//! Two decoders implement it. A fast one reads the messages the kernel sends
//! in one pass, with the attribute layouts of a dump entry recognised by their
//! exact headers and read at fixed offsets; it builds no error and gives up on
//! anything else. The general one walks every attribute with [`Attrs`](crate::wire::Attrs) and
//! the typed readers of [`Attr`]; it decodes again whatever the fast one gave
//! up on, and so gives every error. They must agree wherever the fast one
//! succeeds ([`fast_paths_agree`], asserted by the fuzz targets).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::consts::*;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::flow::*;
use crate::status::Status;
#[cfg(any(test, feature = "testing"))]
use crate::wire::Attrs;
use crate::wire::{netfilter_attrs, Attr};

/// Offset of the first attribute in a ctnetlink message (nlmsghdr + nfgenmsg).
#[cfg(any(test, feature = "testing"))]
const ATTRS_OFFSET: usize = NLMSG_HDRLEN + NFGENMSG_LEN;

/// Decodes the payload of a flow message (everything after the `nlmsghdr`,
/// starting with the `nfgenmsg`): a dump entry, a GET reply or an event.
// A `FlowRef` is 416 bytes: inlined, the flow is decoded in the caller's
// frame rather than copied out of a call (`decode_flow_into` copies nothing).
#[inline(always)]
pub fn decode_flow(payload: &[u8]) -> Result<FlowRef<'_>, DecodeError> {
    let mut flow = FlowRef::default();
    if decode_fields_fast(payload, &mut flow).is_none() {
        decode_fields_again(payload, &mut flow)?;
    }
    // A no-op that saves a copy of the flow: `Result` keeps its `Err` in a
    // spare value of the `labels` tag, which the decoders (out of line) might
    // have written as far as the optimiser knows; re-reading the tag here
    // shows the result is `Ok`. Without it, `decode_flow(..).expect(..)` in
    // the decode bench copies the flow twice instead of once (callgrind).
    #[allow(clippy::bind_instead_of_map)] // the no-op is the point
    {
        flow.labels = flow.labels.and_then(Some);
    }
    Ok(flow)
}

/// Like [`decode_flow`], but decodes into `flow` (every field is overwritten),
/// which saves moving the result on hot paths.
#[inline]
pub fn decode_flow_into<'a>(payload: &'a [u8], flow: &mut FlowRef<'a>) -> Result<(), DecodeError> {
    *flow = FlowRef::default();
    if decode_fields_fast(payload, flow).is_none() {
        decode_fields_again(payload, flow)?;
    }
    Ok(())
}

/// The whole message again, from a default flow, through the general
/// decoder: the result (and the error, for a malformed message) that
/// [`decode_fields_fast`] gave up on.
#[cold]
#[inline(never)]
fn decode_fields_again<'a>(payload: &'a [u8], flow: &mut FlowRef<'a>) -> Result<(), DecodeError> {
    *flow = FlowRef::default();
    decode_fields_general(payload, flow)
}

/// Decodes into a flow whose fields are all at their defaults, or gives up
/// (`None`) on anything it does not expect: any error, and layouts it does not
/// know. The caller then decodes the message again with the general decoder,
/// which reports the error with its attribute and offset; so this path never
/// builds an error, an offset or an [`Attr`] for the attributes of every dump
/// entry. When it succeeds, the flow is the one the general decoder gives
/// ([`fast_paths_agree`] checks it on fuzz input).
///
/// The framing rule is the general walker's ([`Attrs`](crate::wire::Attrs)): fewer bytes than a
/// header at the end is padding; the last attribute may omit its padding.
#[inline(never)]
fn decode_fields_fast<'a>(payload: &'a [u8], flow: &mut FlowRef<'a>) -> Option<()> {
    let mut rest = payload.get(NFGENMSG_LEN..)?;
    let (mut orig, mut reply) = (false, false);
    // Fewer bytes than a header at the end is alignment padding (`nla_ok()`).
    while rest.len() >= NLA_HDRLEN {
        let (raw_type, value, mut next) = split_attr(rest)?;
        match raw_type & NLA_TYPE_MASK {
            CTA_TUPLE_ORIG => {
                decode_tuple_any(value, &mut flow.orig)?;
                orig = true;
                // The reply tuple follows in every message the kernel sends.
                if let Some((raw_type, value, after)) = split_attr(next) {
                    if raw_type & NLA_TYPE_MASK == CTA_TUPLE_REPLY {
                        decode_tuple_any(value, &mut flow.reply)?;
                        reply = true;
                        next = after;
                    }
                }
            }
            CTA_TUPLE_REPLY => {
                decode_tuple_any(value, &mut flow.reply)?;
                reply = true;
            }
            CTA_STATUS => {
                flow.status = Status::from_bits_retain(be32(value)?);
                next = decode_info_run(next, flow);
            }
            CTA_TIMEOUT => flow.timeout = Some(be32(value)?),
            CTA_MARK => flow.mark = Some(be32(value)?),
            CTA_USE => flow.use_count = Some(be32(value)?),
            CTA_ID => flow.id = Some(FlowId(value.try_into().ok()?)),
            CTA_ZONE => flow.zone = Some(u16::from_be_bytes(value.try_into().ok()?)),
            CTA_PROTOINFO => {
                flow.protoinfo = match decode_tcp_protoinfo_fast(value) {
                    Some(tcp) => Some(tcp),
                    None => decode_protoinfo_general(&unplaced(raw_type, value)).ok()?,
                }
            }
            CTA_SYNPROXY => {
                flow.synproxy = Some(match decode_synproxy_fast(value) {
                    Some(synproxy) => synproxy,
                    None => decode_synproxy_general(&unplaced(raw_type, value)).ok()?,
                })
            }
            _ => decode_other_attr(&unplaced(raw_type, value), flow)?,
        }
        rest = next;
    }
    (orig && reply).then_some(())
}

/// The attributes a dump entry has after `CTA_STATUS` (6.18's
/// `ctnetlink_dump_info`): `CTA_MARK`, `CTA_ID`, `CTA_USE`, `CTA_TIMEOUT`, 8
/// bytes each, then `CTA_PROTOINFO` for TCP and `CTA_SYNPROXY`, read at fixed
/// offsets after one header compare each instead of one trip around the
/// attribute loop each. Returns what it did not read: everything, if the four
/// scalars are not there in this order (older kernels, events); the loop then
/// reads the rest one attribute at a time, with the same result.
#[inline(always)]
fn decode_info_run<'a>(attrs: &'a [u8], flow: &mut FlowRef<'_>) -> &'a [u8] {
    let Some((run, mut rest)) = attrs.split_first_chunk::<32>() else {
        return attrs;
    };
    if nla(run, 0) != nla_is(8, CTA_MARK)
        || nla(run, 8) != nla_is(8, CTA_ID)
        || nla(run, 16) != nla_is(8, CTA_USE)
        || nla(run, 24) != nla_is(8, CTA_TIMEOUT)
    {
        return attrs;
    }
    flow.mark = Some(be32_at(run, 4));
    flow.id = Some(FlowId([run[12], run[13], run[14], run[15]]));
    flow.use_count = Some(be32_at(run, 20));
    flow.timeout = Some(be32_at(run, 28));
    if let Some((protoinfo, after)) = rest.split_first_chunk::<48>() {
        if nla(protoinfo, 0) == nla_is(48, CTA_PROTOINFO) {
            if let Some(tcp) = decode_tcp_protoinfo_fast(&protoinfo[NLA_HDRLEN..]) {
                flow.protoinfo = Some(tcp);
                rest = after;
            }
        }
    }
    if let Some((synproxy, after)) = rest.split_first_chunk::<28>() {
        if nla(synproxy, 0) == nla_is(28, CTA_SYNPROXY) {
            if let Some(synproxy) = decode_synproxy_fast(&synproxy[NLA_HDRLEN..]) {
                flow.synproxy = Some(synproxy);
                rest = after;
            }
        }
    }
    rest
}

/// The first attribute of `rest`: its type (flag bits included), its payload
/// and what follows it (past the padding, which the last attribute may omit);
/// `None` for a length that is below the header or beyond `rest`.
#[inline(always)]
fn split_attr(rest: &[u8]) -> Option<(u16, &[u8], &[u8])> {
    let header: &[u8; NLA_HDRLEN] = rest.first_chunk()?;
    let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
    let raw_type = u16::from_ne_bytes([header[2], header[3]]);
    let value = rest.get(NLA_HDRLEN..len)?;
    Some((
        raw_type,
        value,
        rest.get((len + 3) & !3..).unwrap_or_default(),
    ))
}

/// An attribute for the general per-attribute decoders, on the fast path:
/// its offset only serves error reports, which the fast path never keeps.
#[inline(always)]
fn unplaced(raw_type: u16, payload: &[u8]) -> Attr<'_> {
    Attr {
        kind: raw_type & NLA_TYPE_MASK,
        nested: raw_type & NLA_F_NESTED != 0,
        payload,
        offset: 0,
    }
}

/// The attributes a plain dump entry does not carry (counters, timestamps,
/// labels, helper, ...), on the fast path.
#[inline(never)]
fn decode_other_attr<'a>(attr: &Attr<'a>, flow: &mut FlowRef<'a>) -> Option<()> {
    // The mandatory tuples have their own arms: this never sees them.
    let mut seen = Seen::default();
    decode_attr(attr, flow, &mut seen).ok()
}

/// A tuple: the kernel's layout at fixed offsets, any other through the
/// general decoder. Out of line: inlined twice, it would crowd the attribute
/// loop's registers.
#[inline(never)]
fn decode_tuple_any(value: &[u8], out: &mut Tuple) -> Option<()> {
    if decode_tuple_fast(value, out).is_some() {
        return Some(());
    }
    *out = decode_tuple_general(&unplaced(0, value), "tuple").ok()?;
    Some(())
}

/// A big-endian `u32` payload, or `None` for another size.
#[inline(always)]
fn be32(value: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(value.try_into().ok()?))
}

/// The same decoding driven by the general [`Attrs`](crate::wire::Attrs) walker: the reference
/// [`decode_fields_fast`] must agree with, and the source of every error.
fn decode_fields_general<'a>(payload: &'a [u8], flow: &mut FlowRef<'a>) -> Result<(), DecodeError> {
    let mut seen = Seen::default();
    for attr in netfilter_attrs(payload, "ctattr_type")? {
        decode_attr(&attr?, flow, &mut seen)?;
    }
    seen.check()
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

/// Two consecutive attribute headers at `at` as one native-endian word, flag
/// bits masked off: compared with [`nla_pair_is`].
#[inline(always)]
fn nla_pair(b: &[u8], at: usize) -> u64 {
    let mut words = [0u8; 8];
    words.copy_from_slice(&b[at..at + 2 * NLA_HDRLEN]);
    u64::from_ne_bytes(words) & NLA_PAIR_MASK
}

/// Keeps both lengths and both types without their flag bits.
const NLA_PAIR_MASK: u64 = nla_pair_is((u16::MAX, NLA_TYPE_MASK), (u16::MAX, NLA_TYPE_MASK));

/// The word [`nla_pair`] gives for two consecutive headers `(nla_len, type)`.
const fn nla_pair_is(first: (u16, u16), second: (u16, u16)) -> u64 {
    let (a, b) = (nla_is(first.0, first.1), nla_is(second.0, second.1));
    let (a, b) = (a.to_ne_bytes(), b.to_ne_bytes());
    u64::from_ne_bytes([a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]])
}

/// The big-endian `u16` at `at` of a fixed-size array.
#[inline(always)]
fn be16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// `CTA_TUPLE_IP` with IPv4 source and destination: 20 bytes.
const TUPLE_IP_V4: u64 = nla_pair_is((20, CTA_TUPLE_IP), (8, CTA_IP_V4_SRC));
/// `CTA_TUPLE_IP` with IPv6 source and destination: 44 bytes.
const TUPLE_IP_V6: u64 = nla_pair_is((44, CTA_TUPLE_IP), (20, CTA_IP_V6_SRC));
/// `CTA_TUPLE_PROTO` with the protocol number and ports: 28 bytes.
const TUPLE_PROTO_PORTS: u64 = nla_pair_is((28, CTA_TUPLE_PROTO), (5, CTA_PROTO_NUM));
/// `CTA_TUPLE_PROTO` with the protocol number only: 12 bytes.
const TUPLE_PROTO_NUM: u64 = nla_pair_is((12, CTA_TUPLE_PROTO), (5, CTA_PROTO_NUM));
/// `CTA_TUPLE_PROTO` with the protocol number and an ICMP identity: 36 bytes.
const TUPLE_PROTO_ICMP: u64 = nla_pair_is((36, CTA_TUPLE_PROTO), (5, CTA_PROTO_NUM));

/// The tuple layouts the kernel emits (`ctnetlink_dump_tuples`): `CTA_TUPLE_IP`
/// with source then destination, then `CTA_TUPLE_PROTO` with the protocol
/// number then ports, or ICMP id, type and code, or nothing else. Recognised by
/// the tuple's length and exact header words, read at fixed offsets of
/// fixed-size arrays (one bounds check per tuple); any other layout (a tuple
/// zone, other orders, future attributes) returns `None` and takes the general
/// path, which gives the same result.
#[inline(always)]
fn decode_tuple_fast(p: &[u8], out: &mut Tuple) -> Option<()> {
    // The IP nest is 20 (IPv4) or 44 (IPv6) bytes, the protocol nest 12, 28
    // or 36: every length but 56 names one layout.
    let v6 = match p.len() {
        32 | 48 => false,
        72 | 80 => true,
        56 => nla_pair(p, 0) == TUPLE_IP_V6,
        _ => return None,
    };
    // Each family writes its own tuple: merged, the IPv4 path would copy
    // the 16 bytes of an IPv6 address.
    if v6 {
        let ip: &[u8; 44] = p[..44].try_into().ok()?;
        if nla_pair(ip, 0) != TUPLE_IP_V6 || nla(ip, 24) != nla_is(20, CTA_IP_V6_DST) {
            return None;
        }
        let (protocol, l4) = decode_tuple_proto_fast(&p[44..])?;
        let src: [u8; 16] = ip[8..24].try_into().ok()?;
        let dst: [u8; 16] = ip[28..44].try_into().ok()?;
        *out = Tuple {
            src: IpAddr::V6(src.into()),
            dst: IpAddr::V6(dst.into()),
            protocol,
            l4,
            zone: None,
        };
    } else {
        let ip: &[u8; 20] = p[..20].try_into().ok()?;
        if nla_pair(ip, 0) != TUPLE_IP_V4 || nla(ip, 12) != nla_is(8, CTA_IP_V4_DST) {
            return None;
        }
        let (protocol, l4) = decode_tuple_proto_fast(&p[20..])?;
        *out = Tuple {
            src: IpAddr::V4(Ipv4Addr::new(ip[8], ip[9], ip[10], ip[11])),
            dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
            protocol,
            l4,
            zone: None,
        };
    }
    Some(())
}

/// `CTA_TUPLE_PROTO`, which is the rest of the tuple exactly, in one of the
/// kernel's three layouts.
#[inline(always)]
fn decode_tuple_proto_fast(l4: &[u8]) -> Option<(u8, L4)> {
    match l4.len() {
        28 => {
            let l4: &[u8; 28] = l4.try_into().ok()?;
            if nla_pair(l4, 0) != TUPLE_PROTO_PORTS
                || nla(l4, 12) != nla_is(6, CTA_PROTO_SRC_PORT)
                || nla(l4, 20) != nla_is(6, CTA_PROTO_DST_PORT)
            {
                return None;
            }
            let ports = L4::Ports {
                src: be16_at(l4, 16),
                dst: be16_at(l4, 24),
            };
            Some((l4[8], ports))
        }
        12 => {
            let l4: &[u8; 12] = l4.try_into().ok()?;
            if nla_pair(l4, 0) != TUPLE_PROTO_NUM {
                return None;
            }
            Some((l4[8], L4::None))
        }
        36 => {
            let l4: &[u8; 36] = l4.try_into().ok()?;
            if nla_pair(l4, 0) != TUPLE_PROTO_ICMP {
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
                id: be16_at(l4, 16),
                icmp_type: l4[24],
                code: l4[32],
            };
            Some((l4[8], icmp))
        }
        _ => None,
    }
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
pub(crate) fn decode_tuple_general(
    tuple: &Attr<'_>,
    what: &'static str,
) -> Result<Tuple, DecodeError> {
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
#[inline(always)]
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
#[cfg(any(test, feature = "testing"))]
pub(crate) fn fast_paths_agree(payload: &[u8]) -> bool {
    let mut general = FlowRef::default();
    let general = decode_fields_general(payload, &mut general).map(|()| general);
    // The fast path on its own: it may give up, but never decode otherwise.
    let mut fast = FlowRef::default();
    if decode_fields_fast(payload, &mut fast).is_some() && Ok(fast) != general {
        return false;
    }
    if decode_flow(payload) != general {
        return false;
    }
    let mut into = used_flow();
    if decode_flow_into(payload, &mut into).map(|()| into) != general {
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

/// A flow with every field set, to check that decoding into it overwrites them all.
#[cfg(any(test, feature = "testing"))]
fn used_flow() -> FlowRef<'static> {
    let tuple = Tuple::icmp(
        Ipv6Addr::LOCALHOST.into(),
        Ipv6Addr::LOCALHOST.into(),
        1,
        2,
        3,
    );
    FlowRef {
        orig: tuple,
        reply: tuple,
        status: Status::all(),
        timeout: Some(1),
        mark: Some(2),
        use_count: Some(3),
        id: Some(FlowId([4; 4])),
        zone: Some(5),
        protoinfo: Some(ProtoInfo::Sctp(SctpInfo::default())),
        counters_orig: Some(Counters::default()),
        counters_reply: Some(Counters::default()),
        timestamp: Some(Timestamp::default()),
        labels: Some(Labels(6)),
        helper: Some("helper"),
        secctx: Some("secctx"),
        seqadj_orig: Some(SeqAdj::default()),
        seqadj_reply: Some(SeqAdj::default()),
        synproxy: Some(Synproxy::default()),
        master: Some(tuple),
        event_timestamp: Some(7),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{put_dump_entry, FlowSpec};
    use crate::wire::Encoder;

    /// A TCP entry as a 6.18 kernel dumps an established flow: every
    /// protoinfo field, zone 3, mark 7.
    fn tcp_spec() -> FlowSpec {
        let flags = (TcpFlags::from_bits_retain(0x23), TcpFlags::empty());
        FlowSpec::new(Tuple::tcp(([10, 0, 0, 1], 1111), ([10, 0, 0, 2], 80)))
            .timeout(3600)
            .mark(7)
            .zone(3)
            .status(Status::SEEN_REPLY | Status::ASSURED)
            .protoinfo(ProtoInfo::Tcp(TcpInfo {
                state: Some(TcpState::Established),
                wscale_orig: Some(7),
                wscale_reply: Some(7),
                flags_orig: Some(flags),
                flags_reply: Some(flags),
            }))
    }

    fn specs() -> Vec<FlowSpec> {
        let v6 = |last: u16| IpAddr::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last));
        vec![
            tcp_spec(),
            FlowSpec::new(Tuple::udp((v6(1), 5353), (v6(2), 53))).timeout(30),
            FlowSpec::new(Tuple::icmp(
                [10, 0, 0, 1].into(),
                [10, 0, 0, 2].into(),
                9,
                8,
                0,
            )),
            FlowSpec::new(Tuple::icmp(v6(1), v6(2), 9, 128, 0)),
            FlowSpec::new(Tuple::generic(
                253,
                [10, 0, 0, 1].into(),
                [10, 0, 0, 2].into(),
            )),
            FlowSpec::new(Tuple::generic(253, v6(1), v6(2))),
        ]
    }

    /// The top-level attributes of `spec`'s dump entry, each with its header
    /// and padding.
    fn entry_attrs(spec: &FlowSpec) -> Vec<Vec<u8>> {
        let mut enc = Encoder::new();
        put_dump_entry(&mut enc, spec, 1, FlowId([1, 2, 3, 4]));
        let mut rest = &enc.as_bytes()[ATTRS_OFFSET..];
        let mut attrs = Vec::new();
        while !rest.is_empty() {
            let len = (usize::from(u16::from_ne_bytes([rest[0], rest[1]])) + 3) & !3;
            attrs.push(rest[..len].to_vec());
            rest = &rest[len..];
        }
        attrs
    }

    /// A flow message payload (`nfgenmsg` and attributes).
    fn payload(attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = vec![AF_INET, 0, 0, 0];
        attrs.iter().for_each(|attr| bytes.extend_from_slice(attr));
        bytes
    }

    fn kind(attr: &[u8]) -> u16 {
        u16::from_ne_bytes([attr[2], attr[3]]) & NLA_TYPE_MASK
    }

    fn general(payload: &[u8]) -> Result<FlowRef<'_>, DecodeError> {
        let mut flow = FlowRef::default();
        decode_fields_general(payload, &mut flow).map(|()| flow)
    }

    fn fast(payload: &[u8]) -> Option<FlowRef<'_>> {
        let mut flow = FlowRef::default();
        decode_fields_fast(payload, &mut flow).map(|()| flow)
    }

    #[test]
    fn kernel_layout_takes_the_fast_path() {
        for spec in specs() {
            let bytes = payload(&entry_attrs(&spec));
            let flow = general(&bytes).expect("a dump entry decodes");
            assert_eq!(fast(&bytes), Some(flow), "{spec:?}");
            assert_eq!(decode_flow(&bytes), Ok(flow));
            assert!(fast_paths_agree(&bytes));
            // Everything after the status is read in one run.
            let attrs = entry_attrs(&spec);
            let status = attrs.iter().position(|a| kind(a) == CTA_STATUS).unwrap();
            let after_status = attrs[status + 1..].concat();
            let mut run = FlowRef::default();
            assert!(
                decode_info_run(&after_status, &mut run).is_empty(),
                "{spec:?}"
            );
        }
        let bytes = payload(&entry_attrs(&tcp_spec()));
        let flow = decode_flow(&bytes).unwrap();
        assert_eq!(
            (flow.mark, flow.zone, flow.use_count),
            (Some(7), Some(3), Some(1))
        );
        assert_eq!(flow.id, Some(FlowId([1, 2, 3, 4])));
        assert_eq!(flow.tcp_state(), Some(TcpState::Established));
        assert_eq!(flow.synproxy, Some(Synproxy::default()));
    }

    /// Other orders (older kernels put the timeout right after the status,
    /// events differ) read one attribute at a time, with the same result.
    #[test]
    fn other_orders_decode_the_same() {
        for spec in specs() {
            let attrs = entry_attrs(&spec);
            let original = payload(&attrs);
            let want = general(&original).unwrap();
            let mut reversed = attrs.clone();
            reversed.reverse();
            let mut timeout_first = attrs.clone();
            let at = timeout_first
                .iter()
                .position(|a| kind(a) == CTA_TIMEOUT)
                .unwrap();
            let timeout = timeout_first.remove(at);
            let status = timeout_first
                .iter()
                .position(|a| kind(a) == CTA_STATUS)
                .unwrap();
            timeout_first.insert(status + 1, timeout);
            let mut without_mark = attrs.clone();
            without_mark.retain(|a| kind(a) != CTA_MARK);
            for (name, attrs) in [("reversed", reversed), ("timeout first", timeout_first)] {
                let bytes = payload(&attrs);
                assert_eq!(fast(&bytes), Some(want), "{name}: {spec:?}");
                assert!(fast_paths_agree(&bytes), "{name}: {spec:?}");
            }
            let bytes = payload(&without_mark);
            let want = FlowRef { mark: None, ..want };
            assert_eq!(fast(&bytes), Some(want), "without mark: {spec:?}");
        }
    }

    /// Every error comes from the general decoder, with its attribute and
    /// offset, whether the fast path read that attribute in a run or alone.
    #[test]
    fn errors_are_the_general_decoders() {
        let attrs = entry_attrs(&tcp_spec());
        let offset_of = |attrs: &[Vec<u8>], kind_wanted: u16| {
            let at = attrs.iter().position(|a| kind(a) == kind_wanted).unwrap();
            ATTRS_OFFSET + attrs[..at].iter().map(Vec::len).sum::<usize>()
        };
        for wrong in [CTA_STATUS, CTA_MARK, CTA_ID, CTA_USE, CTA_TIMEOUT] {
            // The same attribute with a 2-byte payload.
            let mut bad = attrs.clone();
            let at = bad.iter().position(|a| kind(a) == wrong).unwrap();
            bad[at] = [nla_is(6, wrong).to_ne_bytes(), [0, 1, 0, 0]].concat();
            let bytes = payload(&bad);
            let err = decode_flow(&bytes).unwrap_err();
            assert_eq!(Err(err), general(&bytes));
            assert_eq!(
                err.kind,
                DecodeErrorKind::WrongSize {
                    expected: 4,
                    found: 2
                }
            );
            assert_eq!(err.offset, offset_of(&bad, wrong));
            assert!(fast_paths_agree(&bytes));
        }
        // A length beyond the message inside the run.
        let mut bad = payload(&attrs);
        let mark = offset_of(&attrs, CTA_MARK) - NLMSG_HDRLEN;
        bad[mark..mark + 2].copy_from_slice(&1000u16.to_ne_bytes());
        let err = decode_flow(&bad).unwrap_err();
        assert_eq!(Err(err), general(&bad));
        assert_eq!(err.offset, offset_of(&attrs, CTA_MARK));
        // The message cut in the middle of the run, and right after it.
        let bytes = payload(&attrs);
        for cut in [mark + 12, mark + 32] {
            assert_eq!(
                decode_flow(&bytes[..cut]),
                general(&bytes[..cut]),
                "cut at {cut}"
            );
            assert!(fast_paths_agree(&bytes[..cut]));
        }
        // No reply tuple.
        let mut no_reply = attrs.clone();
        no_reply.retain(|a| kind(a) != CTA_TUPLE_REPLY);
        assert_eq!(
            decode_flow(&payload(&no_reply)).unwrap_err(),
            missing("CTA_TUPLE_REPLY")
        );
    }

    #[test]
    fn decode_flow_into_overwrites_every_field() {
        for spec in specs() {
            let bytes = payload(&entry_attrs(&spec));
            let mut flow = used_flow();
            decode_flow_into(&bytes, &mut flow).unwrap();
            assert_eq!(Ok(flow), decode_flow(&bytes));
        }
    }
}

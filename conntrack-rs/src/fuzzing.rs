// SPDX-License-Identifier: MIT OR Apache-2.0
//! Entry points shared by the fuzz targets (`fuzz/`) and the stable-Rust replay
//! test (`tests/fuzz_replay.rs`), so the replay is never a copy of a target,
//! and the generator of kernel-shaped dump buffers the benchmarks use.
//! Not part of the supported API.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::consts::*;
use crate::decode::decode_flow;
use crate::filter::{Cidr, Filter};
use crate::flow::Family;
use crate::flow::{
    proto, DccpInfo, DccpState, Flow, FlowId, FlowRef, Labels, ProtoInfo, SctpInfo, SctpState,
    SeqAdj, Synproxy, TcpFlags, TcpInfo, TcpState, Tuple, L4,
};
use crate::pushdown::{KernelFeatures, Pushdown, TupleFilter};
use crate::request::{put_dump_entry, put_flow_spec, FlowSpec, WriteMode};
use crate::stats::{decode_cpu_stats, decode_table_stats};
use crate::status::Status;
use crate::wire::{parse_error, Encoder, Messages};

/// Decodes `bytes` as a ctnetlink datagram the way the dump path does: walks
/// every message and runs every decoder on it. Returns the number of flows
/// that decoded. Must never panic, whatever the input.
pub fn datagram(bytes: &[u8]) -> usize {
    let mut flows = 0;
    for message in Messages::new(bytes) {
        let Ok(message) = message else { break };
        assert!(
            crate::decode::fast_paths_agree(message.payload),
            "fast path and general decoder disagree"
        );
        let _ = parse_error(&message);
        let _ = decode_table_stats(message.payload);
        let _ = decode_cpu_stats(message.payload);
        if let Ok(flow) = decode_flow(message.payload) {
            // Exercise the owned conversion and the formatting paths too.
            let owned = flow.to_owned_flow();
            let _ = format!("{owned:?}");
            flows += 1;
        }
    }
    flows
}

/// Decodes `bytes` as a `NETLINK_SOCK_DIAG` or `NETLINK_ROUTE` address-dump
/// datagram: every message's payload through the inet_diag decoder and the
/// `RTM_NEWADDR` decoder (both message types are 20). Returns the number of
/// sockets that decoded. Must never panic, whatever the input.
pub fn sock_diag(bytes: &[u8]) -> usize {
    let mut sockets = 0;
    for message in Messages::new(bytes) {
        let Ok(message) = message else { break };
        let _ = parse_error(&message);
        let _ = crate::sockets::decode_address(message.payload);
        if let Ok(socket) = crate::sockets::decode_socket(message.payload) {
            let _ = format!("{socket:?}");
            sockets += 1;
        }
    }
    sockets
}

/// Decodes `bytes` as one flow message payload (after `nlmsghdr`), and panics
/// if a fixed-layout fast path disagrees with the general decoder.
pub fn flow_payload(bytes: &[u8]) -> bool {
    assert!(
        crate::decode::fast_paths_agree(bytes),
        "fast path and general decoder disagree"
    );
    decode_flow(bytes).is_ok()
}

/// Appends `spec` as the kernel would dump the flow created from it (see
/// `request::put_dump_entry`): the decode benchmark's buffers.
pub fn encode_dump_entry(enc: &mut Encoder, spec: &FlowSpec, seq: u32, id: FlowId) {
    put_dump_entry(enc, spec, seq, id);
}

// ---------------------------------------------------------------------------
// Structured targets: the input bytes drive a small generator (`Input`) that
// builds typed values (flow specs, filters); exhausted input reads as zeros,
// so every byte string is a valid input.

/// A cursor over fuzz bytes; reads past the end return zeros.
struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&b, rest)) => {
                self.bytes = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = rest;
        head
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let head = self.take(N);
        out[..head.len()].copy_from_slice(head);
        out
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

/// An address: mostly from a small pool (so that filters and flows meet),
/// sometimes raw bytes.
fn gen_addr(input: &mut Input<'_>, v6: bool) -> IpAddr {
    let pick = input.u8();
    match (pick & 0x80 != 0, v6) {
        (true, false) => IpAddr::V4(Ipv4Addr::from(input.array::<4>())),
        (true, true) => IpAddr::V6(Ipv6Addr::from(input.array::<16>())),
        (false, false) => IpAddr::V4(Ipv4Addr::new(10, 0, pick >> 3 & 1, pick & 7)),
        (false, true) => IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            u16::from(pick >> 3 & 1),
            u16::from(pick & 7),
        )),
    }
}

/// A port: mostly from a small pool, sometimes any value.
fn gen_port(input: &mut Input<'_>) -> u16 {
    let pick = input.u8();
    if pick & 0x80 != 0 {
        input.u16()
    } else {
        [0, 22, 53, 80, 443, 1024, 8080, u16::MAX][usize::from(pick & 7)]
    }
}

/// A tuple. `family`: `None` picks one; mixed-family tuples come out now and
/// then (the encoder must refuse them).
fn gen_tuple(input: &mut Input<'_>, family: Option<bool>) -> Tuple {
    let shape = input.u8();
    let v6 = family.unwrap_or(shape & 1 == 1);
    let mixed = shape & 0x0e == 0x0e;
    let src = gen_addr(input, v6);
    let dst = gen_addr(input, v6 != mixed);
    let selector = input.u8();
    let protocol = match selector % 12 {
        0 | 1 => proto::TCP,
        2 | 3 => proto::UDP,
        4 => {
            if v6 {
                proto::ICMPV6
            } else {
                proto::ICMP
            }
        }
        5 => proto::ICMP,
        6 => proto::ICMPV6,
        7 => proto::SCTP,
        8 => proto::DCCP,
        9 => proto::GRE,
        10 => proto::UDPLITE,
        _ => input.u8(),
    };
    let icmp_like = matches!(protocol, proto::ICMP | proto::ICMPV6);
    let l4 = match (selector >> 4) % 4 {
        0 if icmp_like => 2,
        0 if protocol == proto::TCP
            || protocol == proto::UDP
            || protocol == proto::SCTP
            || protocol == proto::DCCP
            || protocol == proto::GRE
            || protocol == proto::UDPLITE =>
        {
            1
        }
        0 => 3,
        kind => kind,
    };
    let l4 = match l4 {
        1 => L4::Ports {
            src: gen_port(input),
            dst: gen_port(input),
        },
        2 => L4::Icmp {
            id: input.u16(),
            icmp_type: input.u8(),
            code: input.u8(),
        },
        _ => L4::None,
    };
    let zone = (shape & 0x10 != 0).then(|| u16::from(input.u8() % 4));
    Tuple {
        src,
        dst,
        protocol,
        l4,
        zone,
    }
}

fn gen_protoinfo(input: &mut Input<'_>) -> ProtoInfo {
    let shape = input.u8();
    let has = |bit: u8| shape & (1 << bit) != 0;
    match shape % 3 {
        0 => ProtoInfo::Tcp(TcpInfo {
            state: has(2).then(|| TcpState::from_raw(input.u8() % 12)),
            wscale_orig: has(3).then(|| input.u8()),
            wscale_reply: has(4).then(|| input.u8()),
            flags_orig: has(5).then(|| {
                (
                    TcpFlags::from_bits_retain(input.u8()),
                    TcpFlags::from_bits_retain(input.u8()),
                )
            }),
            flags_reply: has(6).then(|| {
                (
                    TcpFlags::from_bits_retain(input.u8()),
                    TcpFlags::from_bits_retain(input.u8()),
                )
            }),
        }),
        1 => ProtoInfo::Sctp(SctpInfo {
            state: has(2).then(|| SctpState::from_raw(input.u8())),
            vtag_orig: has(3).then(|| input.u32()),
            vtag_reply: has(4).then(|| input.u32()),
        }),
        _ => ProtoInfo::Dccp(DccpInfo {
            state: has(2).then(|| DccpState::from_raw(input.u8())),
            role: has(3).then(|| input.u8()),
            handshake_seq: has(4).then(|| input.u64()),
        }),
    }
}

fn gen_seqadj(input: &mut Input<'_>) -> SeqAdj {
    SeqAdj {
        correction_pos: input.u32(),
        offset_before: input.u32() as i32,
        offset_after: input.u32() as i32,
    }
}

/// A flow spec and the write mode to encode it with.
fn gen_spec(input: &mut Input<'_>) -> (FlowSpec, WriteMode) {
    let fields = input.u16();
    let has = |bit: u16| fields & (1 << bit) != 0;
    let orig = gen_tuple(input, None);
    let mut spec = FlowSpec::new(orig);
    if has(0) {
        // Mostly the same family and protocol (what the encoder accepts).
        let mut reply = gen_tuple(input, Some(orig.is_ipv6()));
        if !has(13) {
            reply.protocol = orig.protocol;
        }
        spec.reply = reply;
    }
    if has(1) {
        spec.timeout = Some(input.u32());
    }
    if has(2) {
        spec.status = Some(Status::from_bits_retain(input.u32()));
    }
    if has(3) {
        spec.mark = Some(u32::from(input.u8() % 4) | if input.bool() { input.u32() } else { 0 });
    }
    if has(4) {
        spec.zone = Some(u16::from(input.u8() % 4));
    }
    if has(5) {
        spec.protoinfo = Some(gen_protoinfo(input));
    }
    if has(6) {
        spec.labels = Some(Labels(u128::from_le_bytes(input.array())));
    }
    if has(7) {
        let len = usize::from(input.u8() % 32);
        spec.helper = Some(String::from_utf8_lossy(input.take(len)).into_owned());
    }
    if has(8) {
        spec.seqadj_orig = Some(gen_seqadj(input));
    }
    if has(9) {
        spec.seqadj_reply = Some(gen_seqadj(input));
    }
    if has(10) {
        spec.synproxy = Some(Synproxy {
            isn: input.u32(),
            its: input.u32(),
            tsoff: input.u32(),
        });
    }
    if has(11) {
        spec.master = Some(gen_tuple(input, None));
    }
    let mode = match fields >> 14 {
        0 => WriteMode::Create,
        1 => WriteMode::Update,
        _ => WriteMode::CreateOrUpdate,
    };
    (spec, mode)
}

/// A flow as a dump shows it: a generated spec's fields plus what only the
/// kernel sets (id, use count, counters, timestamps, security context).
#[cfg(feature = "serde")]
fn gen_flow(input: &mut Input<'_>) -> Flow {
    let (spec, _) = gen_spec(input);
    let extra = input.u8();
    let has = |bit: u8| extra & (1 << bit) != 0;
    let counters = |input: &mut Input<'_>| crate::flow::Counters {
        packets: input.u64(),
        bytes: input.u64(),
    };
    Flow {
        orig: spec.orig,
        reply: spec.reply,
        status: spec.status.unwrap_or_default(),
        timeout: spec.timeout,
        mark: spec.mark,
        use_count: has(0).then(|| input.u32()),
        id: has(1).then(|| FlowId(input.array())),
        zone: spec.zone,
        protoinfo: spec.protoinfo,
        counters_orig: has(2).then(|| counters(input)),
        counters_reply: has(2).then(|| counters(input)),
        timestamp: has(3).then(|| crate::flow::Timestamp {
            start: Some(input.u64()),
            stop: None,
        }),
        labels: spec.labels,
        helper: spec.helper,
        secctx: has(4).then(|| "system_u:object_r:unlabeled_t:s0".to_owned()),
        seqadj_orig: spec.seqadj_orig,
        seqadj_reply: spec.seqadj_reply,
        synproxy: spec.synproxy,
        master: spec.master,
        event_timestamp: None,
    }
}

/// Saved-table round trip (`conntrack::restore`), two halves:
/// * the input as one line of text: parsing it as `conntrack -L` text, as
///   `conntrack -L -o save` (and, with the `serde` feature, as `dump --json`)
///   never panics, and a line
///   that parses is stable: written as text and read again, then once more,
///   it reads the same (one round may normalise what the text cannot show);
/// * with the `serde` feature, a flow generated from the input, written as
///   `dump --json` and read back, is the same flow apart from what a restore
///   cannot set (counters, timestamps), or refused when its tuples are not
///   valid; the create spec made from it encodes whenever its tuples are
///   valid and it has a timeout.
///
/// Returns whether the line parsed as text. Panics on any disagreement.
pub fn restore_roundtrip(bytes: &[u8]) -> bool {
    use crate::restore::parse_text;
    use crate::text::{display, TextOptions};

    let line = String::from_utf8_lossy(bytes);
    let _ = crate::restore::parse_save(&line, None);
    let parsed = parse_text(&line, None).ok();
    if let Some(first) = &parsed {
        let reread = |flow: &Flow| {
            // Labels as bit numbers: they read back without a map.
            let text = display(flow, TextOptions::EXTENDED_ID)
                .label_bits()
                .to_string();
            let back = parse_text(&text, None)
                .unwrap_or_else(|e| panic!("own text {text:?} does not parse: {e}"));
            assert_eq!(back.labels, flow.labels, "labels of {text:?}");
            back
        };
        let second = reread(first);
        assert_eq!(reread(&second), second, "text round trip is not stable");
    }
    #[cfg(feature = "serde")]
    {
        let _ = crate::restore::parse_json(&line);
        let flow = gen_flow(&mut Input { bytes });
        let json = serde_json::to_string(&flow).expect("a flow serializes");
        let valid = tuple_is_valid(&flow.orig)
            && tuple_is_valid(&flow.reply)
            && flow.orig.is_ipv6() == flow.reply.is_ipv6()
            && flow.orig.protocol == flow.reply.protocol
            && flow.master.as_ref().map_or(true, tuple_is_valid);
        match crate::restore::parse_json(&json) {
            Ok(back) => {
                assert!(valid, "invalid flow read back: {json}");
                let expected = Flow {
                    counters_orig: None,
                    counters_reply: None,
                    timestamp: None,
                    event_timestamp: None,
                    ..flow.clone()
                };
                assert_eq!(back, expected, "JSON round trip: {json}");
                let spec = FlowSpec::from_flow(&back);
                let encodes = put_flow_spec(&mut Encoder::new(), &spec, WriteMode::Create).is_ok();
                let helper_ok = spec.helper.as_ref().map_or(true, |h| h.len() <= 15);
                let nat_ok = [spec.snat, spec.dnat].iter().flatten().all(|t| {
                    t.port.is_none() || matches!(spec.orig.l4, L4::Ports { .. } | L4::Icmp { .. })
                });
                assert_eq!(
                    encodes,
                    spec.timeout.is_some() && helper_ok && nat_ok,
                    "restore spec of {json}: {spec:?}"
                );
            }
            Err(e) => assert!(!valid, "valid flow refused: {json}: {e}"),
        }
    }
    parsed.is_some()
}

/// Whether `tuple` can be sent, by the rules the encoder documents (one
/// family; an ICMP identity only on the protocol of its family).
fn tuple_is_valid(tuple: &Tuple) -> bool {
    let icmp_ok = match tuple.l4 {
        L4::Icmp { .. } => {
            tuple.protocol
                == if tuple.src.is_ipv6() {
                    proto::ICMPV6
                } else {
                    proto::ICMP
                }
        }
        _ => true,
    };
    tuple.src.is_ipv6() == tuple.dst.is_ipv6() && icmp_ok
}

/// The one flow message in `bytes`, decoded; panics otherwise.
fn decode_single(bytes: &[u8]) -> FlowRef<'_> {
    let mut messages = Messages::new(bytes);
    let message = messages
        .next()
        .expect("one message")
        .expect("the encoder frames its messages");
    assert!(messages.next().is_none(), "exactly one message");
    assert!(
        crate::decode::fast_paths_agree(message.payload),
        "fast path and general decoder disagree on an encoded flow"
    );
    decode_flow(message.payload).expect("an encoded flow decodes")
}

/// Request encoding round trip: builds a [`FlowSpec`] from `bytes`, encodes
/// it as a `CT_NEW` request with the library's encoder and, if the encoder
/// accepts it, decodes the message back and checks every field against the
/// spec; does the same for the dump-entry encoder (the decode benchmark's
/// buffers). The encoder must refuse exactly the invalid specs (mixed
/// families, an ICMP identity on the wrong protocol, a create without a
/// timeout, a helper name longer than the kernel's 15 bytes, status bits
/// beyond the kernel's 16 or `EXPECTED`/`DYING` unless sent as a raw word).
/// Returns whether the spec was valid. Panics on any disagreement.
pub fn request_roundtrip(bytes: &[u8]) -> bool {
    let mut input = Input { bytes };
    let (spec, mode) = gen_spec(&mut input);
    let valid = tuple_is_valid(&spec.orig)
        && tuple_is_valid(&spec.reply)
        && spec.orig.is_ipv6() == spec.reply.is_ipv6()
        && spec.orig.protocol == spec.reply.protocol
        && (mode == WriteMode::Update || spec.timeout.is_some())
        && spec.master.as_ref().map_or(true, tuple_is_valid)
        // Only the kernel's 16 status bits, and (unless sent as a raw word)
        // not the two it refuses from a request.
        && spec.status.map_or(true, |status| {
            status.bits() & !crate::status::KNOWN_STATUS_BITS == 0
                && (spec.status_change == crate::request::StatusChange::Word
                    || !status.intersects(Status::EXPECTED | Status::DYING))
        })
        && spec
            .helper
            .as_ref()
            .map_or(true, |h| h.len() <= crate::request::HELPER_NAME_MAX);

    let mut enc = Encoder::new();
    let mark = enc.begin(
        IPCTNL_MSG_CT_NEW,
        NLM_F_REQUEST | mode.flags(),
        1,
        spec.orig.family(),
        NFNETLINK_V0,
    );
    let encoded = put_flow_spec(&mut enc, &spec, mode);
    assert_eq!(
        encoded.is_ok(),
        valid,
        "encoder verdict {encoded:?} for {spec:?} ({mode:?})"
    );
    if !valid {
        return false;
    }
    enc.end(mark);
    let flow = decode_single(enc.as_bytes());
    // The kernel reads strings up to the first NUL; so does the decoder.
    let helper = spec
        .helper
        .as_deref()
        .map(|h| h.split('\0').next().unwrap_or_default());
    let expected: FlowRef<'_> = Flow {
        orig: spec.orig,
        reply: spec.reply,
        status: spec
            .status
            .map_or(Status::empty(), |s| s | Status::CONFIRMED),
        timeout: spec.timeout,
        mark: spec.mark,
        zone: spec.zone,
        protoinfo: spec.protoinfo,
        labels: spec.labels,
        helper,
        seqadj_orig: spec.seqadj_orig,
        seqadj_reply: spec.seqadj_reply,
        synproxy: spec.synproxy,
        master: spec.master,
        ..Flow::default()
    };
    assert_eq!(flow, expected, "request round trip of {spec:?}");
    assert_eq!(flow.to_owned_flow().as_ref_flow(), flow);

    // The same flow as the kernel would dump it.
    let id = FlowId(input.array());
    let seq = input.u32();
    enc.clear();
    put_dump_entry(&mut enc, &spec, seq, id);
    let dumped = decode_single(enc.as_bytes());
    let expected = Flow {
        orig: spec.orig,
        reply: spec.reply,
        status: spec.status.unwrap_or_default() | Status::CONFIRMED,
        timeout: Some(spec.timeout.unwrap_or(0)),
        mark: Some(spec.mark.unwrap_or(0)),
        use_count: Some(1),
        id: Some(id),
        zone: spec.zone,
        protoinfo: spec.protoinfo,
        synproxy: Some(spec.synproxy.unwrap_or_default()),
        ..Flow::default()
    };
    assert_eq!(dumped, expected, "dump entry round trip of {spec:?}");
    true
}

/// The conditions of a generated filter, kept as plain data for a reference
/// predicate written without [`Filter`]'s own data structures.
#[derive(Debug, Default)]
struct Conditions {
    family: Option<bool>,
    protocols: Vec<u8>,
    /// orig src, orig dst, reply src, reply dst: (network, prefix) lists.
    addrs: [Vec<(IpAddr, u8)>; 4],
    /// src, dst: inclusive port ranges.
    ports: [Vec<(u16, u16)>; 2],
    states: Vec<TcpState>,
    status_set: Status,
    status_unset: Status,
    mark: Option<(u32, u32)>,
    zone: Option<u16>,
    labels: Option<u128>,
}

fn gen_filter(input: &mut Input<'_>) -> (Filter, Conditions) {
    let mut filter = Filter::new();
    let mut c = Conditions::default();
    let ops = input.u8() % 12;
    for _ in 0..ops {
        let op = input.u8();
        match op % 16 {
            0 => {
                let family = [Family::All, Family::Ipv4, Family::Ipv6][usize::from(op >> 4) % 3];
                filter = filter.family(family);
                c.family = match family {
                    Family::All => None,
                    Family::Ipv4 => Some(false),
                    Family::Ipv6 => Some(true),
                };
            }
            1 => {
                let p = match op >> 4 {
                    0..=4 => proto::TCP,
                    5..=8 => proto::UDP,
                    9 => proto::ICMP,
                    10 => proto::ICMPV6,
                    11 => proto::SCTP,
                    _ => input.u8(),
                };
                filter = filter.protocol(p);
                c.protocols.push(p);
            }
            2..=5 => {
                let which = usize::from(op % 16 - 2);
                let addr = gen_addr(input, op & 0x10 != 0);
                let max = if addr.is_ipv6() { 128 } else { 32 };
                // Mostly hosts, sometimes a network (any prefix, also /0).
                let prefix = if op & 0x20 != 0 {
                    input.u8() % (max + 1)
                } else {
                    max
                };
                let cidr = Cidr::new(addr, prefix).expect("prefix within the address");
                filter = match which {
                    0 => filter.src(cidr),
                    1 => filter.dst(cidr),
                    2 => filter.reply_src(cidr),
                    _ => filter.reply_dst(cidr),
                };
                c.addrs[which].push((addr, prefix));
            }
            6 | 7 => {
                let which = usize::from(op % 16 - 6);
                let (lo, hi) = if op & 0x10 != 0 {
                    let (a, b) = (gen_port(input), gen_port(input));
                    (a.min(b), a.max(b))
                } else {
                    let p = gen_port(input);
                    (p, p)
                };
                filter = match (which, lo == hi) {
                    (0, true) => filter.src_port(lo),
                    (0, false) => filter.src_ports(lo..=hi),
                    (_, true) => filter.dst_port(lo),
                    (_, false) => filter.dst_ports(lo..=hi),
                };
                c.ports[which].push((lo, hi));
            }
            8 => {
                let state = TcpState::from_raw(input.u8() % 12);
                filter = filter.tcp_state(state);
                c.states.push(state);
            }
            9 => {
                let bits = Status::from_bits_retain(u32::from(input.u16()));
                filter = filter.status(bits);
                c.status_set |= bits;
                c.status_unset &= !bits;
            }
            10 => {
                let bits = Status::from_bits_retain(u32::from(input.u16()));
                filter = filter.status_unset(bits);
                c.status_unset |= bits;
                c.status_set &= !bits;
            }
            11 => {
                let value = u32::from(input.u8() % 4);
                filter = filter.mark(value);
                c.mark = Some((value, u32::MAX));
            }
            12 => {
                let (value, mask) = (input.u32(), input.u32());
                filter = filter.mark_masked(value, mask);
                c.mark = Some((value, mask));
            }
            13 => {
                let zone = u16::from(input.u8() % 4);
                filter = filter.zone(zone);
                c.zone = Some(zone);
            }
            14 => {
                let labels = u128::from(input.u8()) << (input.u8() % 121);
                filter = filter.labels(Labels(labels));
                c.labels = Some(labels);
            }
            _ => {
                let addrs: Vec<IpAddr> = (0..input.u8() % 8)
                    .map(|_| gen_addr(input, op & 0x10 != 0))
                    .collect();
                filter = filter.src_any(addrs.iter().copied());
                c.addrs[0].extend(
                    addrs
                        .iter()
                        .map(|&a| (a, if a.is_ipv6() { 128 } else { 32 })),
                );
            }
        }
    }
    (filter, c)
}

/// Whether `addr` is in `net`/`prefix`, bit by bit on the octets.
fn in_network(addr: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let octets = |a: IpAddr| match a {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    if addr.is_ipv6() != net.is_ipv6() {
        return false;
    }
    let (a, n) = (octets(addr), octets(net));
    (0..usize::from(prefix)).all(|bit| (a[bit / 8] ^ n[bit / 8]) & (0x80 >> (bit % 8)) == 0)
}

/// The reference predicate for `c`, independent of [`Filter`]'s sets and bitmaps.
fn reference_matches(c: &Conditions, flow: &FlowRef<'_>) -> bool {
    let addrs = [flow.orig.src, flow.orig.dst, flow.reply.src, flow.reply.dst];
    let ports = [flow.orig.src_port(), flow.orig.dst_port()];
    c.family.map_or(true, |v6| flow.orig.src.is_ipv6() == v6)
        && (c.protocols.is_empty() || c.protocols.contains(&flow.orig.protocol))
        && (0..4).all(|i| {
            c.addrs[i].is_empty()
                || c.addrs[i]
                    .iter()
                    .any(|&(net, prefix)| in_network(addrs[i], net, prefix))
        })
        && (0..2).all(|i| {
            c.ports[i].is_empty()
                || ports[i].is_some_and(|p| c.ports[i].iter().any(|&(lo, hi)| lo <= p && p <= hi))
        })
        // Documented: TCP states at or above 32 (no kernel has them) never match.
        && (c.states.is_empty()
            || (flow.orig.protocol == proto::TCP
                && flow
                    .tcp_state()
                    .is_some_and(|s| s.raw() < 32 && c.states.contains(&s))))
        && flow.status.bits() & c.status_set.bits() == c.status_set.bits()
        && flow.status.bits() & c.status_unset.bits() == 0
        && c.mark
            .map_or(true, |(value, mask)| flow.mark.unwrap_or(0) & mask == value & mask)
        && c.zone.map_or(true, |zone| {
            flow.zone.or(flow.orig.zone).or(flow.reply.zone).unwrap_or(0) == zone
        })
        && c.labels.map_or(true, |wanted| {
            flow.labels.unwrap_or_default().0 & wanted == wanted
        })
}

/// What the kernel does with a pushed-down filter (`ctnetlink_filter_match`,
/// docs/ctnetlink.md §3), including its inverted IPv6 address comparison.
fn kernel_matches(plan: &Pushdown, flow: &FlowRef<'_>) -> bool {
    if plan.family != AF_UNSPEC && flow.family() != plan.family {
        return false;
    }
    if let Some((value, mask)) = plan.mark {
        if flow.mark.unwrap_or(0) & mask != value {
            return false;
        }
    }
    if let Some((value, mask)) = plan.status {
        if flow.status.bits() & mask != value {
            return false;
        }
    }
    if let Some(zone) = plan.zone {
        if flow.zone_id() != zone {
            return false;
        }
    }
    let tuple_matches = |filter: &TupleFilter, tuple: &Tuple| -> bool {
        const IP_SRC: u32 = 1 << 0;
        const IP_DST: u32 = 1 << 1;
        const PROTO_NUM: u32 = 1 << 3;
        const SRC_PORT: u32 = 1 << 4;
        const DST_PORT: u32 = 1 << 5;
        let addr_ok = |flag: u32, want: Option<IpAddr>, have: IpAddr| {
            if filter.flags & flag == 0 {
                return true;
            }
            let equal = want == Some(have);
            // The kernel's IPv6 branch tests `!ipv6_addr_cmp()`: inverted.
            if have.is_ipv6() {
                !equal
            } else {
                equal
            }
        };
        if !addr_ok(IP_SRC, filter.src, tuple.src) || !addr_ok(IP_DST, filter.dst, tuple.dst) {
            return false;
        }
        if filter.flags & PROTO_NUM != 0 && filter.protocol != Some(tuple.protocol) {
            return false;
        }
        // Ports are compared only for TCP and UDP entries.
        if matches!(tuple.protocol, proto::TCP | proto::UDP) {
            if filter.flags & SRC_PORT != 0 && filter.src_port != tuple.src_port() {
                return false;
            }
            if filter.flags & DST_PORT != 0 && filter.dst_port != tuple.dst_port() {
                return false;
            }
        }
        true
    };
    tuple_matches(&plan.orig, &flow.orig) && tuple_matches(&plan.reply, &flow.reply)
}

fn gen_features(input: &mut Input<'_>) -> KernelFeatures {
    let bits = input.u8();
    match bits % 4 {
        0 => KernelFeatures::everything(),
        1 => KernelFeatures::conservative(),
        _ => {
            let more = input.u8();
            let has = |bit: u8| more & (1 << bit) != 0;
            KernelFeatures {
                probed: true,
                dump_mark: has(0),
                dump_status: has(1),
                dump_zone: has(2),
                dump_tuple: has(3),
                flush_mark: has(4),
                flush_status: has(5),
                flush_zone: has(6),
                flush_tuple: has(7),
            }
        }
    }
}

/// Filter evaluation on arbitrary flows: builds a [`Filter`] from `bytes`
/// (together with a plain list of its conditions), then a flow, either
/// generated (a spec encoded as a dump entry and decoded) or decoded from the
/// remaining bytes as a flow message payload. Checks that
/// [`Filter::matches`] agrees with a reference predicate written without the
/// filter's data structures, and that the kernel-side part of the filter
/// (`Pushdown::plan`, for arbitrary kernel features, dump and flush) never
/// rejects a flow the filter selects and, when the plan claims to be exact,
/// selects exactly the same flows as the kernel would. Returns whether the
/// flow matched (false when no flow could be built). Panics on any
/// disagreement.
pub fn filter_eval(bytes: &[u8]) -> bool {
    let mut input = Input { bytes };
    let generated_flow = input.bool();
    let (filter, conditions) = gen_filter(&mut input);
    let features = gen_features(&mut input);
    let mut enc = Encoder::new();
    let owned_payload;
    let payload: &[u8] = if generated_flow {
        let (spec, _) = gen_spec(&mut input);
        if !(tuple_is_valid(&spec.orig) && tuple_is_valid(&spec.reply))
            || spec.orig.is_ipv6() != spec.reply.is_ipv6()
        {
            return false;
        }
        let labels = spec.labels;
        put_dump_entry(&mut enc, &spec, 1, FlowId::default());
        if let Some(labels) = labels {
            // Dump entries carry no labels; append them like the kernel does.
            let mut bytes = enc.as_bytes().to_vec();
            let mut extra = Encoder::new();
            extra.bytes(CTA_LABELS, &labels.to_kernel_bytes());
            bytes.extend_from_slice(extra.as_bytes());
            let len = bytes.len() as u32;
            bytes[..4].copy_from_slice(&len.to_ne_bytes());
            owned_payload = bytes;
            &owned_payload[NLMSG_HDRLEN..]
        } else {
            &enc.as_bytes()[NLMSG_HDRLEN..]
        }
    } else {
        input.rest()
    };
    let Ok(flow) = decode_flow(payload) else {
        return false;
    };

    let matched = filter.matches(&flow);
    assert_eq!(
        matched,
        reference_matches(&conditions, &flow),
        "Filter::matches disagrees with the reference for {conditions:?} on {flow:?}"
    );
    assert_eq!(
        matched,
        filter.matches(&flow.to_owned_flow()),
        "owned and borrowed flows evaluate differently"
    );
    if filter.is_empty() {
        assert!(matched, "an empty filter selects every flow");
    }
    for for_flush in [false, true] {
        let plan = Pushdown::plan(&filter, &features, for_flush);
        let kernel = kernel_matches(&plan, &flow);
        if matched {
            assert!(
                kernel,
                "the kernel part {plan:?} (flush: {for_flush}) drops a selected flow {flow:?} of {filter:?}"
            );
        }
        if plan.exact {
            assert_eq!(
                kernel, matched,
                "exact plan {plan:?} (flush: {for_flush}) disagrees with {filter:?} on {flow:?}"
            );
        }
        let mut request = Encoder::new();
        let mark = request.begin(IPCTNL_MSG_CT_GET, NLM_F_DUMP, 1, plan.family, NFNETLINK_V0);
        plan.encode(&mut request);
        request.end(mark);
    }
    matched
}

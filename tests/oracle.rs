// SPDX-License-Identifier: MIT OR Apache-2.0
//! A second opinion on every byte the library reads or writes: the
//! rust-netlink crates (`netlink-packet-core` for the netlink framing,
//! `netlink-packet-netfilter` for `nfgenmsg` and the typed ctnetlink
//! attributes) decode the same bytes independently, and both readings must
//! agree (docs/ctnetlink.md §1, §2).
//!
//! Inputs: every capture under `tests/fixtures/` (a new fixture is checked
//! without editing this file), and dump entries and requests produced by the
//! library's own encoder. The oracle is slow (it allocates per nesting level),
//! which is why the library does not use it on its hot path; here it is a
//! reference.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack::wire::{parse_error, Encoder, Message, Messages};
use conntrack::{
    decode_cpu_stats, decode_flow, decode_table_stats, proto, CpuCounters, FlowId, FlowRef,
    FlowSpec, Labels, ProtoInfo, Status, TcpState, Tuple, L4,
};
use netlink_packet_core::{
    DefaultNla, NetlinkBuffer, NetlinkMessage, NetlinkPayload, Nla, NlaBuffer, NlasIterator,
    NLA_TYPE_MASK, NLM_F_DUMP, NLM_F_MULTIPART, NLM_F_REQUEST,
};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoInfo as OracleProtoInfo, ProtoInfoTCP,
    ProtoTuple, Tuple as OracleTuple,
};
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterSubsystem,
};

const CT_NEW: u16 = 0x100;
const CT_GET: u16 = 0x101;
const CT_DELETE: u16 = 0x102;
const CT_GET_STATS_CPU: u16 = 0x104;
const CT_GET_STATS: u16 = 0x105;

// ---------------------------------------------------------------------------
// Fixtures

/// Every `tests/fixtures/*.hex`, sorted, as (name, bytes).
fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable fixture folder").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "hex"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable fixture");
            let hex: String = text
                .lines()
                .filter(|line| !line.trim_start().starts_with('#'))
                .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
                .collect();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex fixture"))
                .collect();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, bytes)
        })
        .collect();
    out.sort();
    // A fixture folder that silently went missing would make every test vacuous.
    assert!(
        out.len() >= 20,
        "only {} fixtures in {}",
        out.len(),
        dir.display()
    );
    out
}

/// The messages of a datagram, framed by the oracle (`NetlinkBuffer`), each
/// as its own byte slice.
fn oracle_frames(datagram: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let buffer = NetlinkBuffer::new_checked(rest).expect("oracle: framing");
        let len = buffer.length() as usize;
        frames.push(&rest[..len]);
        rest = &rest[((len + 3) & !3).min(rest.len())..];
    }
    frames
}

// ---------------------------------------------------------------------------
// Reading the oracle's values

/// (kind, payload) of an attribute the oracle kept untyped. `DefaultNla`
/// keeps the flag bits in its kind: mask them (docs/ctnetlink.md §2).
fn raw(nla: &DefaultNla) -> (u16, Vec<u8>) {
    let mut value = vec![0; nla.value_len()];
    nla.emit_value(&mut value);
    (nla.kind() & NLA_TYPE_MASK, value)
}

fn be16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes(bytes.try_into().expect("2-byte attribute"))
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes.try_into().expect("4-byte attribute"))
}

/// A tuple as the oracle reads it, in the library's shape.
fn oracle_tuple(parts: &[OracleTuple]) -> Tuple {
    let (mut src, mut dst, mut protocol) = (None, None, None);
    let (mut sport, mut dport) = (None, None);
    let (mut icmp_id, mut icmp_type, mut icmp_code) = (None, None, None);
    let mut zone = None;
    for part in parts {
        match part {
            OracleTuple::Ip(addresses) => {
                for address in addresses {
                    match address {
                        IPTuple::SourceAddress(a) => src = Some(*a),
                        IPTuple::DestinationAddress(a) => dst = Some(*a),
                        other => panic!("oracle: unexpected address attribute {other:?}"),
                    }
                }
            }
            OracleTuple::Proto(fields) => {
                for field in fields {
                    match field {
                        ProtoTuple::Protocol(p) => protocol = Some(u8::from(*p)),
                        ProtoTuple::SourcePort(p) => sport = Some(*p),
                        ProtoTuple::DestinationPort(p) => dport = Some(*p),
                        ProtoTuple::Other(nla) => match raw(nla) {
                            // CTA_PROTO_ICMP_* (4, 5, 6) and CTA_PROTO_ICMPV6_* (7, 8, 9).
                            (4 | 7, v) => icmp_id = Some(be16(&v)),
                            (5 | 8, v) => icmp_type = Some(v[0]),
                            (6 | 9, v) => icmp_code = Some(v[0]),
                            (kind, v) => panic!("oracle: unknown proto attribute {kind}: {v:?}"),
                        },
                        other => panic!("oracle: unexpected proto attribute {other:?}"),
                    }
                }
            }
            // CTA_TUPLE_ZONE.
            OracleTuple::Other(nla) if raw(nla).0 == 3 => zone = Some(be16(&raw(nla).1)),
            other => panic!("oracle: unexpected tuple attribute {other:?}"),
        }
    }
    let l4 = match (sport, dport, icmp_id, icmp_type, icmp_code) {
        (Some(src), Some(dst), None, None, None) => L4::Ports { src, dst },
        (None, None, Some(id), Some(icmp_type), Some(code)) => L4::Icmp {
            id,
            icmp_type,
            code,
        },
        (None, None, None, None, None) => L4::None,
        other => panic!("oracle: incomplete layer-4 tuple {other:?}"),
    };
    Tuple {
        src: src.expect("oracle: tuple without source"),
        dst: dst.expect("oracle: tuple without destination"),
        protocol: protocol.expect("oracle: tuple without protocol"),
        l4,
        zone,
    }
}

/// Checks one flow message (dump entry, GET reply, event, or an encoded
/// entry): the oracle's reading of every attribute it knows against the
/// library's decode of the same payload.
fn check_flow(what: &str, header: &NetfilterHeader, message: &ConntrackMessage, payload: &[u8]) {
    let flow: FlowRef<'_> =
        decode_flow(payload).unwrap_or_else(|e| panic!("{what}: library decode: {e}"));
    assert_eq!(
        u8::from(header.family),
        flow.family(),
        "{what}: nfgen_family"
    );
    assert_eq!(header.version, 0, "{what}: nfgenmsg version");
    assert_eq!(header.res_id, 0, "{what}: nfgenmsg res_id");
    let attributes = match message {
        ConntrackMessage::New(attributes) | ConntrackMessage::Delete(attributes) => attributes,
        other => panic!("{what}: oracle read {other:?}"),
    };
    let mut seen = Vec::new();
    for attribute in attributes {
        match attribute {
            ConntrackAttribute::CtaTupleOrig(parts) => {
                assert_eq!(oracle_tuple(parts), flow.orig, "{what}: original tuple");
                seen.push(1);
            }
            ConntrackAttribute::CtaTupleReply(parts) => {
                assert_eq!(oracle_tuple(parts), flow.reply, "{what}: reply tuple");
                seen.push(2);
            }
            ConntrackAttribute::CtaStatus(status) => {
                assert_eq!(status.bits(), flow.status.bits(), "{what}: status");
                seen.push(3);
            }
            ConntrackAttribute::CtaProtoInfo(infos) => {
                check_protoinfo(what, infos, flow.protoinfo);
                seen.push(4);
            }
            ConntrackAttribute::CtaTimeout(timeout) => {
                assert_eq!(Some(*timeout), flow.timeout, "{what}: timeout");
                seen.push(7);
            }
            ConntrackAttribute::CtaMark(mark) => {
                assert_eq!(Some(*mark), flow.mark, "{what}: mark");
                seen.push(8);
            }
            ConntrackAttribute::Other(nla) => {
                let (kind, value) = raw(nla);
                check_untyped(what, kind, &value, &flow);
                seen.push(kind);
            }
            other => panic!("{what}: oracle read an attribute this test does not know: {other:?}"),
        }
    }
    // Nothing the library decoded is missing from the oracle's reading.
    let present = [
        (3, true),
        (7, flow.timeout.is_some()),
        (8, flow.mark.is_some()),
        (11, flow.use_count.is_some()),
        (12, flow.id.is_some()),
        (18, flow.zone.is_some()),
        (4, flow.protoinfo.is_some()),
        (9, flow.counters_orig.is_some()),
        (10, flow.counters_reply.is_some()),
        (20, flow.timestamp.is_some()),
        (22, flow.labels.is_some()),
        (5, flow.helper.is_some()),
        (19, flow.secctx.is_some()),
        (15, flow.seqadj_orig.is_some()),
        (16, flow.seqadj_reply.is_some()),
        (24, flow.synproxy.is_some()),
        (14, flow.master.is_some()),
        (27, flow.event_timestamp.is_some()),
    ];
    for (kind, decoded) in present {
        assert_eq!(
            seen.contains(&kind),
            decoded,
            "{what}: attribute {kind} present for the oracle but not the library, or back"
        );
    }
}

/// The attributes netlink-packet-netfilter leaves untyped, read by hand from
/// the oracle's (kind, payload) and compared with the library's fields.
fn check_untyped(what: &str, kind: u16, value: &[u8], flow: &FlowRef<'_>) {
    match kind {
        // CTA_USE
        11 => assert_eq!(Some(be32(value)), flow.use_count, "{what}: use"),
        // CTA_ID: opaque bytes, kept as they came.
        12 => assert_eq!(
            Some(FlowId(value.try_into().unwrap())),
            flow.id,
            "{what}: id"
        ),
        // CTA_ZONE
        18 => assert_eq!(Some(be16(value)), flow.zone, "{what}: zone"),
        // CTA_COUNTERS_ORIG / _REPLY: nests of packets (1) and bytes (2).
        9 | 10 => {
            let counters = if kind == 9 {
                flow.counters_orig
            } else {
                flow.counters_reply
            };
            let counters = counters.unwrap_or_else(|| panic!("{what}: counters {kind} missing"));
            for (field, bytes) in nested(value) {
                match field {
                    1 => assert_eq!(be64(&bytes), counters.packets, "{what}: packets"),
                    2 => assert_eq!(be64(&bytes), counters.bytes, "{what}: bytes"),
                    _ => {}
                }
            }
        }
        // CTA_TIMESTAMP: start (1), stop (2).
        20 => {
            let timestamp = flow.timestamp.expect("timestamp");
            for (field, bytes) in nested(value) {
                match field {
                    1 => assert_eq!(Some(be64(&bytes)), timestamp.start, "{what}: start"),
                    2 => assert_eq!(Some(be64(&bytes)), timestamp.stop, "{what}: stop"),
                    _ => {}
                }
            }
        }
        // CTA_LABELS: host-order bitmap.
        22 => assert_eq!(
            Labels::from_kernel_bytes(value),
            flow.labels,
            "{what}: labels"
        ),
        // CTA_HELP, CTA_SECCTX: a nested name (1), NUL-terminated.
        5 => assert_eq!(
            Some(nested_name(value).as_str()),
            flow.helper,
            "{what}: helper"
        ),
        19 => assert_eq!(
            Some(nested_name(value).as_str()),
            flow.secctx,
            "{what}: secctx"
        ),
        // CTA_SEQ_ADJ_ORIG / _REPLY: correction position, offset before, after.
        15 | 16 => {
            let seqadj = if kind == 15 {
                flow.seqadj_orig
            } else {
                flow.seqadj_reply
            };
            let seqadj = seqadj.expect("seqadj");
            let fields: Vec<u32> = nested(value).iter().map(|(_, v)| be32(v)).collect();
            assert_eq!(
                fields,
                [
                    seqadj.correction_pos,
                    seqadj.offset_before as u32,
                    seqadj.offset_after as u32
                ],
                "{what}: seqadj {kind}"
            );
        }
        // CTA_SYNPROXY: isn, its, tsoff.
        24 => {
            let synproxy = flow.synproxy.expect("synproxy");
            let fields: Vec<u32> = nested(value).iter().map(|(_, v)| be32(v)).collect();
            assert_eq!(
                fields,
                [synproxy.isn, synproxy.its, synproxy.tsoff],
                "{what}: synproxy"
            );
        }
        // CTA_TUPLE_MASTER: a tuple, read with the oracle's tuple parser.
        14 => {
            let parts: Vec<OracleTuple> = NlasIterator::new(value)
                .map(|nla| {
                    use netlink_packet_core::Parseable;
                    OracleTuple::parse(&nla.expect("oracle: master tuple")).expect("master")
                })
                .collect();
            assert_eq!(Some(oracle_tuple(&parts)), flow.master, "{what}: master");
        }
        // CTA_TIMESTAMP_EVENT
        27 => assert_eq!(
            Some(be64(value)),
            flow.event_timestamp,
            "{what}: event timestamp"
        ),
        other => panic!("{what}: attribute {other} not compared (extend this test)"),
    }
}

fn be64(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().expect("8-byte attribute"))
}

/// (kind, payload) of the attributes of a nest, walked by the oracle's
/// `NlasIterator` (kind masked with `NLA_TYPE_MASK`).
fn nested(value: &[u8]) -> Vec<(u16, Vec<u8>)> {
    NlasIterator::new(value)
        .map(|nla| {
            let nla = nla.expect("oracle: nested attribute");
            (nla.kind(), nla.value().to_vec())
        })
        .collect()
}

/// The NUL-terminated name (attribute 1) of a nest such as `CTA_HELP`.
fn nested_name(value: &[u8]) -> String {
    let (_, name) = nested(value)
        .into_iter()
        .find(|(k, _)| *k == 1)
        .expect("name");
    let name = name.split(|b| *b == 0).next().unwrap_or_default();
    std::str::from_utf8(name).unwrap().to_owned()
}

fn check_protoinfo(what: &str, infos: &[OracleProtoInfo], decoded: Option<ProtoInfo>) {
    for info in infos {
        match (info, decoded) {
            (OracleProtoInfo::TCP(fields), Some(ProtoInfo::Tcp(tcp))) => {
                for field in fields {
                    match field {
                        ProtoInfoTCP::State(state) => {
                            assert_eq!(Some(TcpState::from_raw(*state)), tcp.state, "{what}")
                        }
                        ProtoInfoTCP::OriginalWindowScale(w) => {
                            assert_eq!(Some(*w), tcp.wscale_orig, "{what}: wscale orig")
                        }
                        ProtoInfoTCP::ReplyWindowScale(w) => {
                            assert_eq!(Some(*w), tcp.wscale_reply, "{what}: wscale reply")
                        }
                        ProtoInfoTCP::OriginalFlags(f) => assert_eq!(
                            tcp.flags_orig
                                .map(|(flags, mask)| (flags.bits(), mask.bits())),
                            Some((f.flags, f.mask)),
                            "{what}: flags orig"
                        ),
                        ProtoInfoTCP::ReplyFlags(f) => assert_eq!(
                            tcp.flags_reply
                                .map(|(flags, mask)| (flags.bits(), mask.bits())),
                            Some((f.flags, f.mask)),
                            "{what}: flags reply"
                        ),
                        other => panic!("{what}: unexpected TCP protoinfo {other:?}"),
                    }
                }
            }
            // SCTP (3) and DCCP (2) stay untyped for the oracle: compare the state byte.
            (OracleProtoInfo::Other(nla), Some(ProtoInfo::Sctp(sctp))) if raw(nla).0 == 3 => {
                let state = nested(&raw(nla).1).into_iter().find(|(k, _)| *k == 1);
                assert_eq!(
                    state.map(|(_, v)| v[0]),
                    sctp.state.map(|s| s.raw()),
                    "{what}: SCTP state"
                );
            }
            (OracleProtoInfo::Other(nla), Some(ProtoInfo::Dccp(dccp))) if raw(nla).0 == 2 => {
                let state = nested(&raw(nla).1).into_iter().find(|(k, _)| *k == 1);
                assert_eq!(
                    state.map(|(_, v)| v[0]),
                    dccp.state.map(|s| s.raw()),
                    "{what}: DCCP state"
                );
            }
            (info, decoded) => panic!("{what}: oracle {info:?}, library {decoded:?}"),
        }
    }
}

/// The counters of a `GET_STATS_CPU` reply by attribute number (docs/ctnetlink.md §2.4).
fn cpu_counter(counters: &CpuCounters, kind: u16) -> Option<u64> {
    match kind {
        1 => counters.searched,
        2 => counters.found,
        3 => counters.new,
        4 => counters.invalid,
        5 => counters.ignore,
        6 => counters.delete,
        7 => counters.delete_list,
        8 => counters.insert,
        9 => counters.insert_failed,
        10 => counters.drop,
        11 => counters.early_drop,
        12 => counters.error,
        13 => counters.search_restart,
        14 => counters.clash_resolve,
        15 => counters.chain_too_long,
        _ => None,
    }
}

/// Checks one message of a datagram: the oracle's header against the
/// library's walker, then the body by message type. Returns the type.
fn check_message(what: &str, frame: &[u8], ours: &Message<'_>) -> u16 {
    let oracle = NetlinkMessage::<NetfilterMessage>::deserialize(frame)
        .unwrap_or_else(|e| panic!("{what}: oracle cannot parse: {e:?}"));
    let header = &oracle.header;
    assert_eq!(header.length as usize, frame.len(), "{what}: nlmsg_len");
    assert_eq!(header.message_type, ours.kind, "{what}: nlmsg_type");
    assert_eq!(header.flags, ours.flags, "{what}: nlmsg_flags");
    assert_eq!(header.sequence_number, ours.seq, "{what}: nlmsg_seq");
    assert_eq!(header.port_number, ours.pid, "{what}: nlmsg_pid");
    assert_eq!(&frame[16..], ours.payload, "{what}: payload");
    match &oracle.payload {
        NetlinkPayload::InnerMessage(message) => {
            // NFNL_SUBSYS_CTNETLINK_EXP: the oracle has no model of
            // expectation messages; framing and header agree (above), and
            // the library must read the body.
            if message.subsys() == NetfilterSubsystem::Other(2) {
                conntrack::decode_expectation(ours.payload)
                    .unwrap_or_else(|e| panic!("{what}: library: expectation: {e}"));
                return ours.kind;
            }
            assert_eq!(
                message.subsys(),
                NetfilterSubsystem::Conntrack,
                "{what}: subsystem"
            );
            match (&message.inner, ours.kind) {
                (NetfilterMessageInner::Conntrack(flow), CT_NEW | CT_DELETE) => {
                    check_flow(what, &message.header, flow, ours.payload);
                }
                (NetfilterMessageInner::Conntrack(stats), CT_GET_STATS) => {
                    let ConntrackMessage::Other { attributes, .. } = stats else {
                        panic!("{what}: oracle read {stats:?}");
                    };
                    let table = decode_table_stats(ours.payload).expect("library: table stats");
                    for (kind, value) in attributes.iter().map(raw) {
                        match kind {
                            1 => assert_eq!(be32(&value), table.entries, "{what}: entries"),
                            2 => assert_eq!(Some(be32(&value)), table.max_entries, "{what}: max"),
                            _ => {}
                        }
                    }
                    assert!(!attributes.is_empty(), "{what}: no statistics");
                }
                (NetfilterMessageInner::Conntrack(stats), CT_GET_STATS_CPU) => {
                    let ConntrackMessage::Other { attributes, .. } = stats else {
                        panic!("{what}: oracle read {stats:?}");
                    };
                    let cpu = decode_cpu_stats(ours.payload).expect("library: CPU stats");
                    // res_id carries the CPU number here (docs/ctnetlink.md §1.1).
                    assert_eq!(message.header.res_id, cpu.cpu, "{what}: CPU");
                    for (kind, value) in attributes.iter().map(raw) {
                        assert_eq!(
                            Some(u64::from(be32(&value))),
                            cpu_counter(&cpu.counters, kind),
                            "{what}: counter {kind}"
                        );
                    }
                }
                (inner, kind) => panic!("{what}: type {kind:#x}, oracle read {inner:?}"),
            }
        }
        NetlinkPayload::Error(error) => {
            let ours = parse_error(ours).expect("library: error reply");
            assert_eq!(-error.raw_code(), ours.errno, "{what}: errno");
        }
        NetlinkPayload::Done(done) => {
            let ours = parse_error(ours).expect("library: done");
            assert_eq!(-done.code, ours.errno, "{what}: done code");
        }
        other => panic!("{what}: oracle read {other:?}"),
    }
    ours.kind
}

/// Checks every message of `datagram`; returns their types.
fn check_datagram(what: &str, datagram: &[u8]) -> Vec<u16> {
    let frames = oracle_frames(datagram);
    let ours: Vec<Message<'_>> = Messages::new(datagram)
        .map(|m| m.unwrap_or_else(|e| panic!("{what}: library framing: {e}")))
        .collect();
    assert_eq!(frames.len(), ours.len(), "{what}: number of messages");
    frames
        .iter()
        .zip(&ours)
        .enumerate()
        .map(|(i, (frame, message))| check_message(&format!("{what}#{i}"), frame, message))
        .collect()
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn every_fixture_reads_the_same_to_the_oracle() {
    let mut kinds = Vec::new();
    for (name, bytes) in fixtures() {
        kinds.extend(check_datagram(&name, &bytes));
    }
    // The captures cover flows, both statistics replies and errors.
    for kind in [
        CT_NEW,
        CT_GET_STATS,
        CT_GET_STATS_CPU,
        2, /* NLMSG_ERROR */
    ] {
        assert!(
            kinds.contains(&kind),
            "no fixture message of type {kind:#x}"
        );
    }
}

/// Flows the encoder writes as the kernel would dump them (the decode
/// benchmark's input): a spread of families, protocols and optional fields.
fn specs() -> Vec<FlowSpec> {
    let a4 = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let b4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200));
    let a6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let b6 = IpAddr::V6(Ipv6Addr::new(
        0x2001, 0xdb8, 0xffff, 0, 0, 0, 0x1234, 0xabcd,
    ));
    vec![
        FlowSpec::new(Tuple::tcp((a4, 40000), (b4, 443)))
            .timeout(432_000)
            .tcp_state(TcpState::Established)
            .status(Status::SEEN_REPLY | Status::ASSURED)
            .mark(0xdead_beef),
        FlowSpec::new(Tuple::udp((a6, 5353), (b6, 53)))
            .timeout(30)
            .zone(7),
        FlowSpec::new(Tuple::icmp(a4, b4, 0x4242, 8, 0)).timeout(29),
        FlowSpec::new(Tuple::icmp(a6, b6, 7, 128, 0)).timeout(30),
        FlowSpec::new(Tuple::ports(proto::SCTP, a4, 5000, b4, 5001)).timeout(210),
        FlowSpec::new(Tuple::generic(253, a6, b6)).timeout(600),
        FlowSpec::new(Tuple::tcp((a4, 1), (b4, 65535)))
            .timeout(1)
            .tcp_state(TcpState::TimeWait)
            .status(Status::SEEN_REPLY),
    ]
}

#[test]
fn encoded_dump_entries_read_the_same_to_the_oracle() {
    for (i, spec) in specs().iter().enumerate() {
        let mut enc = Encoder::new();
        let id = FlowId([i as u8, 0xa5, 0x5a, 0xff]);
        conntrack::fuzzing::encode_dump_entry(&mut enc, spec, 1000 + i as u32, id);
        let what = format!("encoded entry {i} ({:?})", spec.orig);
        assert_eq!(check_datagram(&what, enc.as_bytes()), [CT_NEW]);
        // And the oracle's reading is the spec itself.
        let flow = decode_flow(&enc.as_bytes()[16..]).expect("decode");
        assert_eq!(flow.orig, spec.orig, "{what}");
        assert_eq!(flow.id, Some(id), "{what}");
    }
}

#[test]
fn encoded_request_framing_reads_the_same_to_the_oracle() {
    // A zone-filtered dump request for IPv6 flows, in the encoder's framing:
    // header, nfgenmsg, a nest and scalars (docs/ctnetlink.md §1.1, §2).
    let mut enc = Encoder::new();
    let message = enc.begin(1, NLM_F_REQUEST | NLM_F_DUMP, 77, libc::AF_INET6 as u8, 1);
    enc.be16(18, 5); // CTA_ZONE
    let nest = enc.nest(1); // CTA_TUPLE_ORIG
    let ip = enc.nest(1); // CTA_TUPLE_IP
    enc.bytes(
        3,
        &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
    );
    enc.end_nest(ip);
    enc.end_nest(nest);
    enc.be32(3, Status::ASSURED.bits()); // CTA_STATUS
    enc.end(message);
    let bytes = enc.as_bytes();

    let oracle = NetlinkMessage::<NetfilterMessage>::deserialize(bytes).expect("oracle parse");
    assert_eq!(oracle.header.length as usize, bytes.len());
    assert_eq!(oracle.header.message_type, CT_GET);
    assert_eq!(oracle.header.flags, NLM_F_REQUEST | NLM_F_DUMP);
    assert_eq!(oracle.header.flags & NLM_F_MULTIPART, 0);
    assert_eq!(oracle.header.sequence_number, 77);
    let NetlinkPayload::InnerMessage(message) = &oracle.payload else {
        panic!("oracle read {:?}", oracle.payload);
    };
    assert_eq!(u8::from(message.header.family), libc::AF_INET6 as u8);
    assert_eq!(message.header.version, 1);
    let NetfilterMessageInner::Conntrack(ConntrackMessage::Get(attributes)) = &message.inner else {
        panic!("oracle read {:?}", message.inner);
    };
    let orig = attributes.iter().find_map(|a| match a {
        ConntrackAttribute::CtaTupleOrig(parts) => Some(parts),
        _ => None,
    });
    let Some([OracleTuple::Ip(addresses)]) = orig.map(Vec::as_slice) else {
        panic!("oracle read {attributes:?}");
    };
    assert_eq!(
        addresses.as_slice(),
        [IPTuple::SourceAddress("2001:db8::9".parse().unwrap())]
    );
    assert!(attributes.contains(&ConntrackAttribute::CtaStatus(
        netlink_packet_netfilter::conntrack::Status::Assured
    )));
    // Nests carry NLA_F_NESTED, scalars do not (docs/ctnetlink.md §2).
    let top = &bytes[20..];
    let flags: Vec<(u16, bool)> = NlasIterator::new(top)
        .map(|nla| {
            let nla: NlaBuffer<&[u8]> = nla.expect("attribute");
            (nla.kind(), nla.nested_flag())
        })
        .collect();
    assert_eq!(flags, [(18, false), (1, true), (3, false)]);
    // The oracle re-emits what it read byte for byte.
    let mut emitted = vec![0; oracle.buffer_len()];
    oracle.serialize(&mut emitted);
    assert_eq!(emitted, bytes);
}

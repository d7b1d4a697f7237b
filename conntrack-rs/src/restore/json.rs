// SPDX-License-Identifier: MIT OR Apache-2.0
//! Reading `dump --json` back (feature `serde`): one NDJSON object per flow,
//! the shape [`crate::serialize`] writes.
//!
//! The object is read strictly: every key of the written shape is known, an
//! unknown key is an error (so a typo or another tool's JSON is not half
//! read), and the redundant keys must agree with the rest (`family` with the
//! addresses, `protocol` with the tuples, `state_raw` with `state`).

#![cfg(feature = "serde")]

use std::net::IpAddr;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::flow::{
    proto, DccpInfo, DccpState, Flow, FlowId, Labels, ProtoInfo, SctpInfo, SctpState, SeqAdj,
    Synproxy, TcpFlags, TcpInfo, TcpState, Tuple, L4,
};
use crate::status::Status;
use crate::text::family_name;

/// Parses one line of `dump --json` into the flow it describes.
///
/// ```
/// use conntrack::restore::parse_json;
/// let line = r#"{"family":"ipv4","protocol":17,"protocol_name":"udp",
///   "orig":{"src":"10.0.0.1","dst":"10.0.0.2","protocol":17,"src_port":5353,"dst_port":53,
///           "icmp_type":null,"icmp_code":null,"icmp_id":null,"zone":null},
///   "reply":{"src":"10.0.0.2","dst":"10.0.0.1","protocol":17,"src_port":53,"dst_port":5353,
///            "icmp_type":null,"icmp_code":null,"icmp_id":null,"zone":null},
///   "status":8,"status_flags":["CONFIRMED"],"timeout":30,"mark":0,"use":1,"id":7,"zone":null,
///   "protoinfo":null,"counters_orig":null,"counters_reply":null,"timestamp":null,"labels":null,
///   "helper":null,"secctx":null,"seqadj_orig":null,"seqadj_reply":null,"synproxy":null,
///   "master":null,"event_timestamp":null}"#;
/// let flow = parse_json(&line.replace('\n', ""))?;
/// assert_eq!(flow.orig.dst_port(), Some(53));
/// # Ok::<(), conntrack::Error>(())
/// ```
pub fn parse_json(line: &str) -> Result<Flow> {
    let saved: SavedFlowJson = serde_json::from_str(line).map_err(|e| {
        // The position is within this one line: say the column only.
        let text = e.to_string();
        let what = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(what, _)| what);
        Error::InvalidInput(format!(
            "not a flow of dump --json: {what} (column {})",
            e.column()
        ))
    })?;
    saved.into_flow()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TupleJson {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    icmp_id: Option<u16>,
    zone: Option<u16>,
}

impl TupleJson {
    fn into_tuple(self, which: &str) -> Result<Tuple> {
        let bad = |what: String| Error::InvalidInput(format!("{which}: {what}"));
        if self.src.is_ipv4() != self.dst.is_ipv4() {
            return Err(bad(format!(
                "mixes address families: src {} dst {}",
                self.src, self.dst
            )));
        }
        let ports = (self.src_port, self.dst_port);
        let icmp = (self.icmp_type, self.icmp_code, self.icmp_id);
        let l4 = match (ports, icmp) {
            ((None, None), (None, None, None)) => L4::None,
            ((Some(src), Some(dst)), (None, None, None)) => L4::Ports { src, dst },
            ((None, None), (Some(icmp_type), Some(code), Some(id))) => L4::Icmp {
                id,
                icmp_type,
                code,
            },
            _ => {
                return Err(bad(
                    "has an incomplete or mixed layer-4 identity (src_port and dst_port, or \
                     icmp_type, icmp_code and icmp_id)"
                        .into(),
                ))
            }
        };
        if let L4::Icmp { .. } = l4 {
            let expected = if self.src.is_ipv6() {
                proto::ICMPV6
            } else {
                proto::ICMP
            };
            if self.protocol != expected {
                return Err(bad(format!(
                    "has ICMP fields but protocol {}",
                    self.protocol
                )));
            }
        }
        Ok(Tuple {
            src: self.src,
            dst: self.dst,
            protocol: self.protocol,
            l4,
            zone: self.zone,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TcpJson {
    state: Option<String>,
    state_raw: Option<u8>,
    wscale_orig: Option<u8>,
    wscale_reply: Option<u8>,
    flags_orig: Option<u8>,
    mask_orig: Option<u8>,
    flags_reply: Option<u8>,
    mask_reply: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SctpJson {
    state: Option<String>,
    state_raw: Option<u8>,
    vtag_orig: Option<u32>,
    vtag_reply: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DccpJson {
    state: Option<String>,
    state_raw: Option<u8>,
    role: Option<u8>,
    handshake_seq: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum ProtoInfoJson {
    Tcp(TcpJson),
    Sctp(SctpJson),
    Dccp(DccpJson),
}

/// A kernel state from its `state_raw` number, checked against its name
/// (`state`, which is `"UNKNOWN"` for a number this library does not name).
fn kernel_state<T: Copy>(
    what: &str,
    name: Option<String>,
    raw: Option<u8>,
    from_raw: fn(u8) -> T,
    name_of: fn(T) -> &'static str,
) -> Result<Option<T>> {
    let state = raw.map(from_raw);
    let agrees = match (&name, state) {
        (None, None) => true,
        (Some(name), Some(state)) => name_of(state) == name,
        _ => false,
    };
    if !agrees {
        return Err(Error::InvalidInput(format!(
            "{what} state {name:?} does not match state_raw {raw:?}"
        )));
    }
    Ok(state)
}

fn tcp_flags(
    flags: Option<u8>,
    mask: Option<u8>,
    which: &str,
) -> Result<Option<(TcpFlags, TcpFlags)>> {
    match (flags, mask) {
        (None, None) => Ok(None),
        (Some(flags), Some(mask)) => Ok(Some((
            TcpFlags::from_bits_retain(flags),
            TcpFlags::from_bits_retain(mask),
        ))),
        _ => Err(Error::InvalidInput(format!(
            "tcp flags_{which} and mask_{which} come together"
        ))),
    }
}

impl ProtoInfoJson {
    fn into_protoinfo(self) -> Result<ProtoInfo> {
        Ok(match self {
            ProtoInfoJson::Tcp(tcp) => ProtoInfo::Tcp(TcpInfo {
                state: kernel_state(
                    "tcp",
                    tcp.state,
                    tcp.state_raw,
                    TcpState::from_raw,
                    TcpState::name,
                )?,
                wscale_orig: tcp.wscale_orig,
                wscale_reply: tcp.wscale_reply,
                flags_orig: tcp_flags(tcp.flags_orig, tcp.mask_orig, "orig")?,
                flags_reply: tcp_flags(tcp.flags_reply, tcp.mask_reply, "reply")?,
            }),
            ProtoInfoJson::Sctp(sctp) => ProtoInfo::Sctp(SctpInfo {
                state: kernel_state(
                    "sctp",
                    sctp.state,
                    sctp.state_raw,
                    SctpState::from_raw,
                    SctpState::name,
                )?,
                vtag_orig: sctp.vtag_orig,
                vtag_reply: sctp.vtag_reply,
            }),
            ProtoInfoJson::Dccp(dccp) => ProtoInfo::Dccp(DccpInfo {
                state: kernel_state(
                    "dccp",
                    dccp.state,
                    dccp.state_raw,
                    DccpState::from_raw,
                    DccpState::name,
                )?,
                role: dccp.role,
                handshake_seq: dccp.handshake_seq,
            }),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeqAdjJson {
    correction_pos: u32,
    offset_before: i32,
    offset_after: i32,
}

impl From<SeqAdjJson> for SeqAdj {
    fn from(s: SeqAdjJson) -> SeqAdj {
        SeqAdj {
            correction_pos: s.correction_pos,
            offset_before: s.offset_before,
            offset_after: s.offset_after,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SynproxyJson {
    isn: u32,
    its: u32,
    tsoff: u32,
}

/// The object `dump --json` writes for a flow. Keys the kernel sets and a
/// create cannot (counters, timestamps, id, use count, security context) are
/// accepted and not kept.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedFlowJson {
    family: String,
    protocol: u8,
    #[serde(rename = "protocol_name")]
    _protocol_name: IgnoredAny,
    orig: TupleJson,
    reply: TupleJson,
    status: u32,
    #[serde(rename = "status_flags")]
    _status_flags: IgnoredAny,
    timeout: Option<u32>,
    mark: Option<u32>,
    #[serde(rename = "use")]
    use_count: Option<u32>,
    id: Option<u32>,
    zone: Option<u16>,
    protoinfo: Option<ProtoInfoJson>,
    #[serde(rename = "counters_orig")]
    _counters_orig: IgnoredAny,
    #[serde(rename = "counters_reply")]
    _counters_reply: IgnoredAny,
    #[serde(rename = "timestamp")]
    _timestamp: IgnoredAny,
    labels: Option<Vec<u32>>,
    helper: Option<String>,
    secctx: Option<String>,
    seqadj_orig: Option<SeqAdjJson>,
    seqadj_reply: Option<SeqAdjJson>,
    synproxy: Option<SynproxyJson>,
    master: Option<TupleJson>,
    #[serde(rename = "event_timestamp")]
    _event_timestamp: IgnoredAny,
}

impl SavedFlowJson {
    fn into_flow(self) -> Result<Flow> {
        let orig = self.orig.into_tuple("orig")?;
        let reply = self.reply.into_tuple("reply")?;
        if orig.is_ipv6() != reply.is_ipv6() || orig.protocol != reply.protocol {
            return Err(Error::InvalidInput(
                "orig and reply differ in address family or protocol".into(),
            ));
        }
        if self.protocol != orig.protocol {
            return Err(Error::InvalidInput(format!(
                "protocol {} but the tuples' protocol is {}",
                self.protocol, orig.protocol
            )));
        }
        if self.family != family_name(orig.family()) {
            return Err(Error::InvalidInput(format!(
                "family {:?} but the addresses are {}",
                self.family,
                family_name(orig.family())
            )));
        }
        let labels = match self.labels {
            None => None,
            Some(bits) => {
                let mut labels = Labels::default();
                for bit in bits {
                    if bit >= Labels::BITS {
                        return Err(Error::InvalidInput(format!(
                            "label {bit}: labels are bits 0-127"
                        )));
                    }
                    labels = labels.with(bit);
                }
                Some(labels)
            }
        };
        let master = match self.master {
            Some(master) => Some(master.into_tuple("master")?),
            None => None,
        };
        let protoinfo = match self.protoinfo {
            Some(info) => Some(info.into_protoinfo()?),
            None => None,
        };
        Ok(Flow {
            orig,
            reply,
            status: Status::from_bits_retain(self.status),
            timeout: self.timeout,
            mark: self.mark,
            use_count: self.use_count,
            id: self.id.map(|id| FlowId(id.to_be_bytes())),
            zone: self.zone,
            protoinfo,
            labels,
            helper: self.helper,
            secctx: self.secctx,
            seqadj_orig: self.seqadj_orig.map(SeqAdj::from),
            seqadj_reply: self.seqadj_reply.map(SeqAdj::from),
            synproxy: self.synproxy.map(|s| Synproxy {
                isn: s.isn,
                its: s.its,
                tsoff: s.tsoff,
            }),
            master,
            ..Flow::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's round trip (write JSON, read back, build the
    /// restore spec) over 5000 generated flows.
    #[cfg(feature = "testing")]
    #[test]
    fn reads_back_every_flow_the_json_writer_prints() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut bytes = [0u8; 160];
        for _ in 0..5000 {
            for chunk in bytes.chunks_mut(8) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                chunk.copy_from_slice(&rng.to_le_bytes());
            }
            crate::fuzzing::restore_roundtrip(&bytes);
        }
    }

    #[test]
    fn refuses_other_json() {
        let flow = Flow::<String> {
            orig: Tuple::udp(([10, 0, 0, 1], 1), ([10, 0, 0, 2], 2)),
            reply: Tuple::udp(([10, 0, 0, 2], 2), ([10, 0, 0, 1], 1)),
            timeout: Some(30),
            ..Flow::default()
        };
        let good = serde_json::to_string(&flow).unwrap();
        assert!(parse_json(&good).is_ok());
        for (line, says) in [
            ("{}".to_owned(), "missing field"),
            ("{\"event\":\"new\"}".to_owned(), "unknown field"),
            (
                good.replace("\"timeout\":30", "\"timeout\":-1"),
                "invalid value",
            ),
            (
                good.replace("\"family\":\"ipv4\"", "\"family\":\"ipv6\""),
                "family",
            ),
            (
                good.replace(
                    "\"protocol\":17,\"protocol_name\"",
                    "\"protocol\":6,\"protocol_name\"",
                ),
                "protocol 6",
            ),
            (
                good.replacen("\"src_port\":1", "\"src_port\":null", 1),
                "incomplete",
            ),
            (
                good.replacen("\"src\":\"10.0.0.1\"", "\"src\":\"::1\"", 1),
                "mixes",
            ),
            (good.replace("\"labels\":null", "\"labels\":[128]"), "0-127"),
            (
                good.replace("\"timeout\":30", "\"timeout\":30,\"colour\":1"),
                "unknown field",
            ),
            (good[..good.len() - 1].to_owned(), "EOF"),
        ] {
            let err = parse_json(&line).expect_err(&line).to_string();
            assert!(err.contains(says), "{line}: {err}");
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Reading conntrack-tools' text back: one line of `conntrack -L` (plain,
//! `-o extended`, `-o id`, `-o labels`, `-o timestamp`, `-o ktimestamp`), the
//! inverse of [`crate::text`].
//!
//! Every field is checked: an unknown field, a malformed value, a value out
//! of range or a tuple that is incomplete for its protocol is an error naming
//! the field and the value; nothing is skipped silently.

use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::flow::{
    proto, Counters, DccpInfo, DccpState, Flow, FlowId, Labels, ProtoInfo, SctpInfo, SctpState,
    TcpInfo, TcpState, Tuple, L4,
};
use crate::labelmap::LabelMap;
use crate::status::Status;

/// Parses one line of `conntrack -L` text into the flow it shows.
///
/// What the text shows comes back; status bits it does not show are inferred
/// where they can be: `SEEN_REPLY` unless `[UNREPLIED]`, `ASSURED` for
/// `[ASSURED]` (and for `[OFFLOAD]`/`[HW_OFFLOAD]`, which conntrack prints
/// instead), `SRC_NAT`/`DST_NAT` when the reply tuple is not the reverse of
/// the original. Label names (`labels=` of `-o labels`) are looked up in
/// `labels`; bit numbers are taken as they are (what
/// [`FlowText::label_bits`](crate::text::FlowText::label_bits) prints). The
/// bare word `labels`, which conntrack prints when no set bit has a name,
/// reads as labels with no bit set.
///
/// ```
/// use conntrack::restore::parse_text;
/// let flow = parse_text(
///     "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=40000 \
///      dport=80 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 [ASSURED] mark=7 use=1",
///     None,
/// )?;
/// assert_eq!(flow.timeout, Some(431999));
/// assert_eq!(flow.mark, Some(7));
/// # Ok::<(), conntrack::Error>(())
/// ```
pub fn parse_text(line: &str, labels: Option<&LabelMap>) -> Result<Flow> {
    Parser::new(line, labels).flow()
}

fn invalid(message: String) -> Error {
    Error::InvalidInput(message)
}

/// A tuple as read so far.
#[derive(Default)]
struct PartialTuple {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: Option<u16>,
    dport: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    icmp_id: Option<u16>,
    zone: Option<u16>,
    counters: Option<Counters>,
    packets: Option<u64>,
}

impl PartialTuple {
    fn finish(self, protocol: u8, which: &str) -> Result<Tuple> {
        let missing = |field: &str| invalid(format!("the {which} tuple has no {field}="));
        let src = self.src.ok_or_else(|| missing("src"))?;
        let dst = self.dst.ok_or_else(|| missing("dst"))?;
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(invalid(format!(
                "the {which} tuple mixes address families: src={src} dst={dst}"
            )));
        }
        if self.packets.is_some() {
            return Err(missing("bytes (after packets=)"));
        }
        let l4 = match protocol {
            proto::TCP | proto::UDP | proto::UDPLITE | proto::SCTP | proto::DCCP | proto::GRE => {
                let (key_src, key_dst) = if protocol == proto::GRE {
                    ("srckey", "dstkey")
                } else {
                    ("sport", "dport")
                };
                L4::Ports {
                    src: self.sport.ok_or_else(|| missing(key_src))?,
                    dst: self.dport.ok_or_else(|| missing(key_dst))?,
                }
            }
            proto::ICMP | proto::ICMPV6 => L4::Icmp {
                icmp_type: self.icmp_type.ok_or_else(|| missing("type"))?,
                code: self.icmp_code.ok_or_else(|| missing("code"))?,
                id: self.icmp_id.ok_or_else(|| missing("id"))?,
            },
            _ => L4::None,
        };
        let wrong_protocol = match l4 {
            L4::Ports { .. } => self.icmp_type.or(self.icmp_code).is_some(),
            L4::Icmp { .. } => self.sport.or(self.dport).is_some(),
            L4::None => {
                self.sport.or(self.dport).is_some() || self.icmp_type.or(self.icmp_code).is_some()
            }
        };
        if wrong_protocol {
            return Err(invalid(format!(
                "the {which} tuple has layer-4 fields that protocol {} ({protocol}) does not have",
                proto::name(protocol)
            )));
        }
        Ok(Tuple {
            src,
            dst,
            protocol,
            l4,
            zone: self.zone,
        })
    }
}

struct Parser<'a> {
    tokens: std::iter::Peekable<std::str::SplitAsciiWhitespace<'a>>,
    labels: Option<&'a LabelMap>,
}

/// Which part of the line the fields belong to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Orig,
    Reply,
    /// After the reply tuple's layer-4 fields: flow-wide fields.
    Flow,
}

impl<'a> Parser<'a> {
    fn new(line: &'a str, labels: Option<&'a LabelMap>) -> Self {
        Parser {
            tokens: line.split_ascii_whitespace().peekable(),
            labels,
        }
    }

    fn next(&mut self, what: &str) -> Result<&'a str> {
        self.tokens
            .next()
            .ok_or_else(|| invalid(format!("the line ends before its {what}")))
    }

    fn flow(mut self) -> Result<Flow> {
        // `-o timestamp` starts lines with `[seconds.micros]`.
        if let Some(first) = self.tokens.peek() {
            if first.starts_with('[')
                && first.ends_with(']')
                && first[1..first.len() - 1].contains('.')
            {
                self.tokens.next();
            }
        }
        let mut family = None;
        let mut first = self.next("protocol")?;
        if matches!(first, "ipv4" | "ipv6") {
            let number = self.next("layer-3 protocol number")?;
            let expected = if first == "ipv4" { "2" } else { "10" };
            if number != expected {
                return Err(invalid(format!(
                    "layer-3 protocol {first} with number {number:?} (expected {expected})"
                )));
            }
            family = Some(first);
            first = self.next("protocol")?;
        }
        let name = first;
        if name != "unknown" && proto::from_name(name).is_none() {
            return Err(invalid(format!(
                "unknown protocol {name:?} (a line of conntrack -L starts with the protocol \
                 name and number, after ipv4 2 / ipv6 10 with -o extended)"
            )));
        }
        let raw = self.next("protocol number")?;
        let protocol: u8 = raw
            .parse()
            .map_err(|_| invalid(format!("protocol number {raw:?} is not 0-255")))?;
        if name != "unknown" && proto::from_name(name) != Some(protocol) {
            return Err(invalid(format!(
                "protocol name {name:?} does not match protocol number {protocol}"
            )));
        }

        let mut flow = Flow::<String>::default();
        if let Some(token) = self.tokens.peek().copied() {
            if token.bytes().all(|b| b.is_ascii_digit()) {
                self.tokens.next();
                flow.timeout = Some(
                    token
                        .parse()
                        .map_err(|_| invalid(format!("timeout {token:?} is out of range")))?,
                );
            }
        }
        if let Some(token) = self.tokens.peek().copied() {
            if !token.contains('=') && !token.starts_with('[') {
                self.tokens.next();
                flow.protoinfo = Some(state(protocol, token)?);
            }
        }

        let mut tuples = [PartialTuple::default(), PartialTuple::default()];
        let mut part = Part::Orig;
        let mut started = [false, false];
        let mut unreplied = false;
        let mut status = Status::empty();
        while let Some(token) = self.tokens.next() {
            if let Some(flag) = token.strip_prefix('[') {
                let flag = self.bracket(flag)?;
                match flag {
                    "UNREPLIED" => unreplied = true,
                    "ASSURED" => status |= Status::ASSURED,
                    "OFFLOAD" => status |= Status::ASSURED | Status::OFFLOAD,
                    "HW_OFFLOAD" => status |= Status::ASSURED | Status::HW_OFFLOAD,
                    // `-o ktimestamp`: wall-clock times, not restorable.
                    _ if flag.starts_with("start=") || flag.starts_with("stop=") => {}
                    _ => return Err(invalid(format!("unknown flag [{flag}]"))),
                }
                continue;
            }
            // `-o labels` when no set bit has a name: the bare word (after
            // the reply tuple; no label is readable from it).
            if token == "labels" && started[1] {
                set(&mut flow.labels, token, Labels::default())?;
                part = Part::Flow;
                continue;
            }
            let (key, value) = token.split_once('=').ok_or_else(|| {
                invalid(format!("unexpected word {token:?} (fields are key=value)"))
            })?;
            if key == "src" {
                part = match (started, part) {
                    ([false, _], _) => Part::Orig,
                    ([true, false], _) => Part::Reply,
                    _ => return Err(invalid("a third src= (a line has two tuples)".into())),
                };
                started[part as usize] = true;
            }
            if part != Part::Flow {
                let index = part as usize;
                if !started[index] {
                    return Err(invalid(format!("{key}= before the first src=")));
                }
                let tuple = &mut tuples[index];
                let icmp = matches!(protocol, proto::ICMP | proto::ICMPV6);
                let taken = match key {
                    "src" => set(&mut tuple.src, key, addr(key, value)?)?,
                    "dst" => set(&mut tuple.dst, key, addr(key, value)?)?,
                    "sport" => set(&mut tuple.sport, key, number(key, value)?)?,
                    "dport" => set(&mut tuple.dport, key, number(key, value)?)?,
                    "srckey" => set(&mut tuple.sport, key, hex16(key, value)?)?,
                    "dstkey" => set(&mut tuple.dport, key, hex16(key, value)?)?,
                    "type" => set(&mut tuple.icmp_type, key, number(key, value)?)?,
                    "code" => set(&mut tuple.icmp_code, key, number(key, value)?)?,
                    "id" if icmp && tuple.icmp_id.is_none() => {
                        set(&mut tuple.icmp_id, key, number(key, value)?)?
                    }
                    "zone-orig" if part == Part::Orig => {
                        set(&mut tuple.zone, key, number(key, value)?)?
                    }
                    "zone-reply" if part == Part::Reply => {
                        set(&mut tuple.zone, key, number(key, value)?)?
                    }
                    "packets" if tuple.counters.is_none() => {
                        set(&mut tuple.packets, key, number(key, value)?)?
                    }
                    "bytes" => {
                        let packets = tuple
                            .packets
                            .take()
                            .ok_or_else(|| invalid(format!("bytes={value} without packets=")))?;
                        tuple.counters = Some(Counters {
                            packets,
                            bytes: number(key, value)?,
                        });
                        true
                    }
                    _ => false,
                };
                if taken {
                    continue;
                }
                if part == Part::Orig {
                    return Err(invalid(format!(
                        "{key}={value} inside the original tuple (no reply tuple follows)"
                    )));
                }
                part = Part::Flow;
            }
            match key {
                "mark" => set(&mut flow.mark, key, number(key, value)?)?,
                "secctx" => set(&mut flow.secctx, key, value.to_owned())?,
                "zone" => set(&mut flow.zone, key, number(key, value)?)?,
                "use" => set(&mut flow.use_count, key, number(key, value)?)?,
                "id" => set(
                    &mut flow.id,
                    key,
                    FlowId(number::<u32>(key, value)?.to_be_bytes()),
                )?,
                "helper" => set(&mut flow.helper, key, value.to_owned())?,
                "labels" => set(&mut flow.labels, key, self.labels(value)?)?,
                // Seconds since the flow started: not restorable.
                "delta-time" => number::<u64>(key, value).map(|_| true)?,
                _ => return Err(invalid(format!("unknown field {key}={value}"))),
            };
        }
        if !started[1] {
            return Err(invalid(format!(
                "the line has {} tuple (a flow has two: src=... src=...)",
                if started[0] { "one" } else { "no" }
            )));
        }
        let [orig, reply] = tuples;
        let (counters_orig, counters_reply) = (orig.counters, reply.counters);
        flow.orig = orig.finish(protocol, "original")?;
        flow.reply = reply.finish(protocol, "reply")?;
        if flow.orig.is_ipv6() != flow.reply.is_ipv6() {
            return Err(invalid(
                "the original and reply tuples are of different address families".into(),
            ));
        }
        if let Some(family) = family {
            if (family == "ipv6") != flow.orig.is_ipv6() {
                return Err(invalid(format!(
                    "layer-3 protocol {family} with addresses src={} dst={}",
                    flow.orig.src, flow.orig.dst
                )));
            }
        }
        flow.counters_orig = counters_orig;
        flow.counters_reply = counters_reply;
        if !unreplied {
            status |= Status::SEEN_REPLY;
        }
        flow.status = status | Status::CONFIRMED | nat_status(&flow.orig, &flow.reply);
        Ok(flow)
    }

    /// The rest of a `[...]` token, joining tokens up to the closing `]`
    /// (`[start=Wed Dec  2 06:32:02 2026]` spans several).
    fn bracket(&mut self, first: &'a str) -> Result<&'a str> {
        if let Some(flag) = first.strip_suffix(']') {
            return Ok(flag);
        }
        loop {
            let token = self
                .tokens
                .next()
                .ok_or_else(|| invalid(format!("[{first} is not closed by ]")))?;
            if token.ends_with(']') {
                // The flag's content is only matched by its start (start=, stop=).
                return Ok(first);
            }
        }
    }

    fn labels(&self, value: &str) -> Result<Labels> {
        match self.labels {
            Some(map) => map.labels(value),
            None => {
                let mut labels = Labels::default();
                for item in value.split(',') {
                    let bit = item
                        .parse::<u32>()
                        .ok()
                        .filter(|bit| *bit < Labels::BITS)
                        .ok_or_else(|| {
                            invalid(format!(
                                "label {item:?}: a bit number 0-127 (no connlabel.conf was given \
                                 to look names up in)"
                            ))
                        })?;
                    labels = labels.with(bit);
                }
                Ok(labels)
            }
        }
    }
}

/// The status NAT bits the tuples imply: a reply that does not come from the
/// original destination is destination NAT, one that does not go back to the
/// original source is source NAT.
fn nat_status(orig: &Tuple, reply: &Tuple) -> Status {
    let expected = orig.reversed();
    let port_src = |t: &Tuple| match t.l4 {
        L4::Ports { src, .. } => Some(src),
        _ => None,
    };
    let port_dst = |t: &Tuple| match t.l4 {
        L4::Ports { dst, .. } => Some(dst),
        L4::Icmp { id, .. } => Some(id),
        L4::None => None,
    };
    let mut status = Status::empty();
    if reply.src != expected.src || port_src(reply) != port_src(&expected) {
        status |= Status::DST_NAT;
    }
    if reply.dst != expected.dst || port_dst(reply) != port_dst(&expected) {
        status |= Status::SRC_NAT;
    }
    status
}

fn state(protocol: u8, name: &str) -> Result<ProtoInfo> {
    Ok(match protocol {
        proto::TCP => ProtoInfo::Tcp(TcpInfo {
            state: Some(TcpState::parse_named("TCP state", name)?),
            ..TcpInfo::default()
        }),
        proto::SCTP => ProtoInfo::Sctp(SctpInfo {
            state: Some(SctpState::parse_named("SCTP state", name)?),
            ..SctpInfo::default()
        }),
        proto::DCCP => ProtoInfo::Dccp(DccpInfo {
            state: Some(DccpState::parse_named("DCCP state", name)?),
            ..DccpInfo::default()
        }),
        _ => {
            return Err(invalid(format!(
                "unexpected word {name:?}: protocol {} has no state",
                proto::name(protocol)
            )))
        }
    })
}

/// Stores a field seen once; a repeated field is an error.
fn set<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<bool> {
    if slot.is_some() {
        return Err(invalid(format!("{key}= appears twice")));
    }
    *slot = Some(value);
    Ok(true)
}

fn addr(key: &str, value: &str) -> Result<IpAddr> {
    value
        .parse()
        .map_err(|_| invalid(format!("{key}={value}: not an IP address")))
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    if !value.bytes().all(|b| b.is_ascii_digit()) || value.is_empty() {
        return Err(invalid(format!("{key}={value}: not a decimal number")));
    }
    value.parse().map_err(|_| {
        invalid(format!(
            "{key}={value}: out of range for {}",
            std::any::type_name::<T>()
        ))
    })
}

fn hex16(key: &str, value: &str) -> Result<u16> {
    value
        .strip_prefix("0x")
        .and_then(|hex| u16::from_str_radix(hex, 16).ok())
        .ok_or_else(|| {
            invalid(format!(
                "{key}={value}: not a 16-bit hexadecimal key (0x...)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{display, TextOptions};
    use crate::FlowSpec;

    fn round_trip(flow: &Flow, options: TextOptions) -> Flow {
        let line = display(flow, options).to_string();
        parse_text(&line, None).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn reads_back_the_labels_the_text_writer_prints() {
        let map = LabelMap::parse("0 blocked\n5 audited\n70 far\n", "test").unwrap();
        let mut flow = Flow::<String> {
            orig: Tuple::udp(([10, 0, 0, 1], 3), ([10, 0, 0, 2], 4)),
            timeout: Some(99),
            mark: Some(0),
            use_count: Some(1),
            id: Some(FlowId(77u32.to_be_bytes())),
            status: Status::CONFIRMED,
            labels: Some(Labels::default().with(0).with(70).with(127)),
            ..Flow::default()
        };
        flow.reply = flow.orig.reversed();
        for options in [TextOptions::PLAIN, TextOptions::EXTENDED_ID] {
            // By name, read with the same map: the named bits come back, the
            // unnamed one (127) is not printed, as by conntrack.
            let line = display(&flow, options).labels(&map).to_string();
            let back = parse_text(&line, Some(&map)).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(
                back.labels,
                Some(Labels::default().with(0).with(70)),
                "{line}"
            );
            // Names without a map to read them: refused, naming the label.
            let err = parse_text(&line, None).unwrap_err().to_string();
            assert!(err.contains("blocked"), "{err}");
            // By number: every bit comes back, without a map.
            let line = display(&flow, options).label_bits().to_string();
            let back = parse_text(&line, None).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(back.labels, flow.labels, "{line}");
        }
        // No set bit has a name: the bare word, read as no bit set.
        flow.labels = Some(Labels::default().with(127));
        let line = display(&flow, TextOptions::EXTENDED_ID)
            .labels(&map)
            .to_string();
        assert!(line.ends_with(" id=77 labels"), "{line}");
        let back = parse_text(&line, Some(&map)).unwrap();
        assert_eq!(back.labels, Some(Labels::default()));
        assert_eq!(round_trip(&back, TextOptions::EXTENDED_ID).labels, None);
        let line = display(&back, TextOptions::EXTENDED_ID)
            .label_bits()
            .to_string();
        assert_eq!(parse_text(&line, None).unwrap(), back);
        // The bare word is a field of its own: once, and only after the tuples.
        for bad in [
            "udp 17 9 src=10.0.0.1 dst=10.0.0.2 sport=3 dport=4 src=10.0.0.2 dst=10.0.0.1 sport=4 dport=3 labels labels",
            "udp 17 9 src=10.0.0.1 dst=10.0.0.2 sport=3 dport=4 labels src=10.0.0.2 dst=10.0.0.1 sport=4 dport=3",
        ] {
            assert!(parse_text(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_back_what_the_text_writer_prints() {
        let mut flow = Flow::<String> {
            orig: Tuple::tcp(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80)),
            timeout: Some(431999),
            mark: Some(7),
            zone: Some(3),
            use_count: Some(1),
            id: Some(FlowId(1234u32.to_be_bytes())),
            helper: Some("ftp".into()),
            protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
                state: Some(TcpState::Established),
                ..TcpInfo::default()
            })),
            counters_orig: Some(Counters {
                packets: 3,
                bytes: 180,
            }),
            counters_reply: Some(Counters {
                packets: 2,
                bytes: 120,
            }),
            status: Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED,
            ..Flow::default()
        };
        flow.reply = flow.orig.reversed();
        for options in [
            TextOptions::PLAIN,
            TextOptions::EXTENDED,
            TextOptions::EXTENDED_ID,
        ] {
            let back = round_trip(&flow, options);
            let mut expected = flow.clone();
            if !options.id {
                expected.id = None;
            }
            assert_eq!(back, expected, "{options:?}");
        }
        // Unreplied UDP, IPv6, directional zones.
        let mut udp = Flow::<String> {
            orig: Tuple::udp(
                ("2001:db8::1".parse::<IpAddr>().unwrap(), 5353),
                ("2001:db8::2".parse::<IpAddr>().unwrap(), 53),
            ),
            timeout: Some(30),
            mark: Some(0),
            status: Status::CONFIRMED,
            ..Flow::default()
        };
        udp.orig.zone = Some(4);
        udp.reply = udp.orig.reversed();
        udp.reply.zone = Some(5);
        assert_eq!(round_trip(&udp, TextOptions::EXTENDED), udp);
    }

    #[test]
    fn reads_icmp_gre_and_generic_tuples_and_infers_nat() {
        let icmp = parse_text(
            "ipv4     2 icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=77 \
             src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=77 mark=0 use=1 id=99",
            None,
        )
        .unwrap();
        assert_eq!(
            icmp.orig.l4,
            L4::Icmp {
                id: 77,
                icmp_type: 8,
                code: 0
            }
        );
        assert_eq!(icmp.id, Some(FlowId(99u32.to_be_bytes())));
        assert!(!icmp.status.intersects(Status::SRC_NAT | Status::DST_NAT));
        let gre = parse_text(
            "gre      47 179 src=10.0.0.1 dst=10.0.0.2 srckey=0x35 dstkey=0x0 \
             src=10.0.0.2 dst=10.0.0.1 srckey=0x0 dstkey=0x35 [ASSURED] mark=0 use=1",
            None,
        )
        .unwrap();
        assert_eq!(gre.orig.l4, L4::Ports { src: 0x35, dst: 0 });
        let generic = parse_text(
            "unknown  112 599 src=10.0.0.1 dst=10.0.0.2 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 mark=0 use=1",
            None,
        )
        .unwrap();
        assert_eq!(generic.orig.l4, L4::None);
        assert!(!generic.status.contains(Status::SEEN_REPLY));
        // DNAT to 10.3.3.3:8080, SNAT to 192.0.2.1:61000.
        let nat = parse_text(
            "tcp      6 99 ESTABLISHED src=10.1.1.1 dst=10.2.2.2 sport=1000 dport=80 \
             src=10.3.3.3 dst=192.0.2.1 sport=8080 dport=61000 [ASSURED] mark=0 use=1",
            None,
        )
        .unwrap();
        assert!(nat.status.contains(Status::SRC_NAT | Status::DST_NAT));
        let spec = FlowSpec::from_flow(&nat);
        assert_eq!(spec.reply, nat.orig.reversed());
        assert_eq!(spec.dnat.unwrap().addr, Some("10.3.3.3".parse().unwrap()));
        assert_eq!(spec.dnat.unwrap().port, Some(8080));
        assert_eq!(spec.snat.unwrap().addr, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(spec.snat.unwrap().port, Some(61000));
    }

    #[test]
    fn reads_timestamps_and_labels() {
        let map = LabelMap::parse("0 blocked\n5 audited\n", "test").unwrap();
        let line = "[1733120000.123456] ipv4     2 udp      17 20 src=10.0.0.1 dst=10.0.0.2 \
                    sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=0 \
                    [start=Wed Dec  2 06:32:02 2026] delta-time=5 labels=blocked,audited,9 use=1";
        let flow = parse_text(line, Some(&map)).unwrap();
        assert_eq!(flow.labels, Some(Labels(1 | 1 << 5 | 1 << 9)));
        let err = parse_text(line, None).unwrap_err().to_string();
        assert!(err.contains("\"blocked\""), "{err}");
    }

    #[test]
    fn refuses_what_it_cannot_read_exactly() {
        let good = "tcp      6 99 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 \
                    src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [ASSURED] mark=0 use=1";
        assert!(parse_text(good, None).is_ok());
        for (line, says) in [
            ("", "ends before its protocol"),
            ("tcp", "ends before its protocol number"),
            ("tcp 17 99 src=1.1.1.1", "does not match"),
            ("tcp 600 1", "not 0-255"),
            ("ipv4 10 tcp 6", "expected 2"),
            ("ipv6     10 tcp 6 99 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1", "layer-3 protocol ipv6"),
            ("tcp 6 99 BOGUS src=10.0.0.1", "unknown value \"BOGUS\""),
            ("udp 17 99 NEW src=10.0.0.1", "has no state"),
            ("tcp 6 99 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2", "has one tuple"),
            ("tcp 6 99 src=10.0.0.1 dst=10.0.0.2 sport=1 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1", "no dport="),
            ("tcp 6 99 src=10.0.0.1 dst=10.0.0.2 sport=70000 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1", "out of range"),
            ("tcp 6 99 src=10.0.0.1 dst=::1 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1", "mixes address families"),
            ("tcp 6 99 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=-1", "not a decimal"),
            ("tcp 6 99 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=1 mark=2", "twice"),
            ("tcp 6 99 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 colour=red", "unknown field"),
            ("tcp 6 99 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [WEIRD]", "unknown flag"),
            ("tcp 6 99 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [start=Wed", "not closed"),
            ("tcp 6 99 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 src=1.1.1.1", "third src="),
            ("tcp 6 99 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 mark=1 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1", "inside the original tuple"),
            ("udp 17 99 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 type=1 code=0 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1", "does not have"),
            ("gre 47 99 src=10.0.0.1 dst=10.0.0.2 srckey=53 dstkey=0x0 src=10.0.0.2 dst=10.0.0.1 srckey=0x0 dstkey=0x0", "hexadecimal"),
            ("tcp 6 99 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 labels=200", "0-127"),
            ("tcp 6 99 dst=10.0.0.2", "before the first src="),
            ("tcp 6 99 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 bytes=5 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1", "without packets="),
        ] {
            let err = parse_text(line, None).expect_err(line).to_string();
            assert!(err.contains(says), "{line:?}: {err}");
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Reading conntrack-tools' own snapshot format back: one line of
//! `conntrack -L -o save`, the `-A`/`-I` command lines that `conntrack -R FILE`
//! replays (`-A -t 599 -u SEEN_REPLY,ASSURED -w 3 -s 10.0.0.1 -d 10.0.0.2 -r
//! 10.0.0.2 -q 10.0.0.1 -p tcp --sport 1 --dport 80 --reply-port-src 80
//! --reply-port-dst 1 --state ESTABLISHED`).
//!
//! SCTP verification tags are read the way conntrack-tools writes them (see
//! `vtag` below: network byte order as a host number). The options are
//! those of `conntrack -I` (long and short names); a NAT
//! flow is saved with `-g ADDR` (`--dst-nat`) in place of `-r` and `-n ADDR`
//! (`--src-nat`) in place of `-q`, and read back as NAT. An unknown option,
//! a missing or malformed value, or an option given twice is an error naming
//! it.

use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::flow::{
    proto, DccpInfo, DccpState, Flow, ProtoInfo, SctpInfo, SctpState, TcpInfo, TcpState, Tuple, L4,
};
use crate::labelmap::LabelMap;
use crate::status::Status;

fn invalid(message: String) -> Error {
    Error::InvalidInput(message)
}

/// Every value option the parser knows, by its canonical long name; the
/// aliases map to it.
const OPTIONS: &[(&str, &[&str])] = &[
    ("timeout", &["-t", "--timeout"]),
    ("status", &["-u", "--status"]),
    ("zone", &["-w", "--zone"]),
    ("orig-zone", &["--orig-zone"]),
    ("reply-zone", &["--reply-zone"]),
    ("src", &["-s", "--src", "--orig-src"]),
    ("dst", &["-d", "--dst", "--orig-dst"]),
    ("reply-src", &["-r", "--reply-src"]),
    ("reply-dst", &["-q", "--reply-dst"]),
    ("dst-nat", &["-g", "--dst-nat"]),
    ("src-nat", &["-n", "--src-nat"]),
    ("proto", &["-p", "--proto", "--protonum"]),
    ("family", &["-f", "--family"]),
    ("sport", &["--sport", "--orig-port-src"]),
    ("dport", &["--dport", "--orig-port-dst"]),
    ("reply-sport", &["--reply-port-src"]),
    ("reply-dport", &["--reply-port-dst"]),
    ("srckey", &["--srckey"]),
    ("dstkey", &["--dstkey"]),
    ("reply-srckey", &["--reply-key-src"]),
    ("reply-dstkey", &["--reply-key-dst"]),
    ("icmp-type", &["--icmp-type", "--icmpv6-type"]),
    ("icmp-code", &["--icmp-code", "--icmpv6-code"]),
    ("icmp-id", &["--icmp-id", "--icmpv6-id"]),
    ("state", &["--state"]),
    ("orig-vtag", &["--orig-vtag"]),
    ("reply-vtag", &["--reply-vtag"]),
    ("mark", &["-m", "--mark"]),
    ("label", &["-l", "--label"]),
    ("helper", &["--helper"]),
];

/// Parses one line of `conntrack -L -o save` into the flow it creates.
///
/// Label names (`-l`) are looked up in `labels`; bit numbers are taken as
/// they are.
///
/// ```
/// use conntrack::restore::parse_save;
/// let flow = parse_save(
///     "-A -t 599 -u SEEN_REPLY,ASSURED -w 3 -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 \
///      -q 10.0.0.1 -p tcp --sport 1 --dport 80 --reply-port-src 80 \
///      --reply-port-dst 1 --state ESTABLISHED",
///     None,
/// )?;
/// assert_eq!((flow.timeout, flow.zone), (Some(599), Some(3)));
/// # Ok::<(), conntrack::Error>(())
/// ```
pub fn parse_save(line: &str, labels: Option<&LabelMap>) -> Result<Flow> {
    let mut tokens = line.split_ascii_whitespace();
    match tokens.next() {
        Some("-A" | "--add" | "-I" | "--create") => {}
        Some(other) => {
            return Err(invalid(format!(
                "{other:?}: a line of conntrack -o save starts with -A (or -I)"
            )))
        }
        None => return Err(invalid("empty line".into())),
    }
    let mut values: Vec<(&str, &str)> = Vec::new();
    while let Some(option) = tokens.next() {
        let name = OPTIONS
            .iter()
            .find(|(_, aliases)| aliases.contains(&option))
            .map(|(name, _)| *name)
            .ok_or_else(|| invalid(format!("unknown option {option}")))?;
        let value = tokens
            .next()
            .filter(|v| !OPTIONS.iter().any(|(_, aliases)| aliases.contains(v)))
            .ok_or_else(|| invalid(format!("{option} needs a value")))?;
        if values.iter().any(|(n, _)| *n == name) {
            return Err(invalid(format!("{option} appears twice")));
        }
        values.push((name, value));
    }
    let get = |name: &str| values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let number = |name: &str| -> Result<Option<u64>> {
        get(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| invalid(format!("--{name} {v}: not a decimal number")))
            })
            .transpose()
    };
    let bounded = |name: &str, max: u64| -> Result<Option<u64>> {
        match number(name)? {
            Some(n) if n > max => Err(invalid(format!("--{name} {n}: out of range (0-{max})"))),
            other => Ok(other),
        }
    };
    let addr = |name: &str| -> Result<Option<IpAddr>> {
        get(name)
            .map(|v| {
                v.parse::<IpAddr>()
                    .map_err(|_| invalid(format!("--{name} {v}: not an IP address")))
            })
            .transpose()
    };
    let required = |name: &str, value: Option<IpAddr>| {
        value.ok_or_else(|| invalid(format!("no --{name} (a saved flow has both tuples)")))
    };

    let protocol = match get("proto") {
        Some(text) => proto::parse_named("-p", text)?,
        None => return Err(invalid("no -p (the protocol)".into())),
    };
    let (src, dst) = (
        required("src", addr("src")?)?,
        required("dst", addr("dst")?)?,
    );
    let dnat = addr("dst-nat")?;
    let snat = addr("src-nat")?;
    let reply_src = match (addr("reply-src")?, dnat) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "both -r and -g (--dst-nat) give the reply source".into(),
            ))
        }
        (found, nat) => required("reply-src", found.or(nat))?,
    };
    let reply_dst = match (addr("reply-dst")?, snat) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "both -q and -n (--src-nat) give the reply destination".into(),
            ))
        }
        (found, nat) => required("reply-dst", found.or(nat))?,
    };
    for (what, a, b) in [("original", src, dst), ("reply", reply_src, reply_dst)] {
        if a.is_ipv4() != b.is_ipv4() || a.is_ipv4() != src.is_ipv4() {
            return Err(invalid(format!(
                "the {what} tuple mixes address families ({a}, {b})"
            )));
        }
    }
    if let Some(family) = get("family") {
        let v6 = match family {
            "ipv4" => false,
            "ipv6" => true,
            other => return Err(invalid(format!("-f {other}: ipv4 or ipv6"))),
        };
        if v6 != src.is_ipv6() {
            return Err(invalid(format!("-f {family} with address {src}")));
        }
    }

    let port = |name: &str| bounded(name, u64::from(u16::MAX)).map(|p| p.map(|p| p as u16));
    fn present(values: &[(&str, &str)], names: &[&'static str]) -> Vec<&'static str> {
        names
            .iter()
            .filter(|n| values.iter().any(|(v, _)| v == *n))
            .copied()
            .collect()
    }
    let port_names = ["sport", "dport", "reply-sport", "reply-dport"];
    let key_names = ["srckey", "dstkey", "reply-srckey", "reply-dstkey"];
    let icmp_names = ["icmp-type", "icmp-code", "icmp-id"];
    let l4_names: &[&'static str] = match protocol {
        proto::TCP | proto::UDP | proto::UDPLITE | proto::SCTP | proto::DCCP => &port_names,
        proto::GRE => &key_names,
        proto::ICMP | proto::ICMPV6 => &icmp_names,
        _ => &[],
    };
    let foreign: Vec<&str> = present(
        &values,
        &[&port_names[..], &key_names, &icmp_names].concat(),
    )
    .into_iter()
    .filter(|n| !l4_names.contains(n))
    .collect();
    if let Some(name) = foreign.first() {
        return Err(invalid(format!(
            "--{name}: protocol {} has no such field",
            proto::name(protocol)
        )));
    }
    let (orig_l4, reply_l4) = match protocol {
        proto::ICMP | proto::ICMPV6 => {
            let need = |name: &str, max: u64| {
                bounded(name, max)?.ok_or_else(|| invalid(format!("no --{name}")))
            };
            let icmp_type = need("icmp-type", 255)? as u8;
            let code = need("icmp-code", 255)? as u8;
            let id = need("icmp-id", u64::from(u16::MAX))? as u16;
            let orig = L4::Icmp {
                id,
                icmp_type,
                code,
            };
            let reply = Tuple {
                src,
                dst,
                protocol,
                l4: orig,
                zone: None,
            }
            .reversed()
            .l4;
            (orig, reply)
        }
        _ if l4_names.is_empty() => (L4::None, L4::None),
        _ => {
            let need = |name: &str| port(name)?.ok_or_else(|| invalid(format!("no --{name}")));
            (
                L4::Ports {
                    src: need(l4_names[0])?,
                    dst: need(l4_names[1])?,
                },
                L4::Ports {
                    src: need(l4_names[2])?,
                    dst: need(l4_names[3])?,
                },
            )
        }
    };
    let zone = |name: &str| bounded(name, u64::from(u16::MAX)).map(|z| z.map(|z| z as u16));
    let mut flow = Flow::<String> {
        orig: Tuple {
            src,
            dst,
            protocol,
            l4: orig_l4,
            zone: zone("orig-zone")?,
        },
        reply: Tuple {
            src: reply_src,
            dst: reply_dst,
            protocol,
            l4: reply_l4,
            zone: zone("reply-zone")?,
        },
        zone: zone("zone")?,
        timeout: bounded("timeout", u64::from(u32::MAX))?.map(|t| t as u32),
        mark: bounded("mark", u64::from(u32::MAX))?.map(|m| m as u32),
        helper: get("helper").map(str::to_owned),
        ..Flow::default()
    };
    let mut status = Status::CONFIRMED;
    match get("status") {
        None | Some("UNSET") => {}
        Some(list) => {
            for name in list.split(',') {
                status |= Status::parse_named("-u", name)?;
            }
        }
    }
    if dnat.is_some() {
        status |= Status::DST_NAT;
    }
    if snat.is_some() {
        status |= Status::SRC_NAT;
    }
    flow.status = status;
    if let Some(list) = get("label") {
        flow.labels = Some(match labels {
            Some(map) => map.labels(list)?,
            None => LabelMap::default().labels(list)?,
        });
    }
    // conntrack-tools prints the tags as it holds them, in network byte order
    // read as a host number (byte-swapped on a little-endian host), and
    // `conntrack -R` reads them back the same way: do as it does, so that a
    // file conntrack wrote on this host brings back the tags the flows had.
    let vtag =
        |name: &str| bounded(name, u64::from(u32::MAX)).map(|v| v.map(|v| u32::from_be(v as u32)));
    let state = get("state");
    flow.protoinfo = match protocol {
        proto::TCP => state
            .map(|s| TcpState::parse_named("--state", s))
            .transpose()?
            .map(|s| {
                ProtoInfo::Tcp(TcpInfo {
                    state: Some(s),
                    ..TcpInfo::default()
                })
            }),
        proto::SCTP => {
            let info = SctpInfo {
                state: state
                    .map(|s| SctpState::parse_named("--state", s))
                    .transpose()?,
                vtag_orig: vtag("orig-vtag")?,
                vtag_reply: vtag("reply-vtag")?,
            };
            (info != SctpInfo::default()).then_some(ProtoInfo::Sctp(info))
        }
        proto::DCCP => state
            .map(|s| DccpState::parse_named("--state", s))
            .transpose()?
            .map(|s| {
                ProtoInfo::Dccp(DccpInfo {
                    state: Some(s),
                    ..DccpInfo::default()
                })
            }),
        _ if state.is_some() => {
            return Err(invalid(format!(
                "--state: protocol {} has no state",
                proto::name(protocol)
            )))
        }
        _ => None,
    };
    if protocol != proto::SCTP {
        if let Some(name) = present(&values, &["orig-vtag", "reply-vtag"]).first() {
            return Err(invalid(format!(
                "--{name}: only SCTP has verification tags"
            )));
        }
    }
    Ok(flow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlowSpec;

    #[test]
    fn reads_what_conntrack_o_save_prints() {
        // Lines printed by conntrack-tools 1.4.7 (kernel 6.18).
        let lines = [
            "-A -t 29 -u UNSET -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p 253",
            "-A -t 29 -u UNSET -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p sctp --sport 3868 --dport 3868 --reply-port-src 3868 --reply-port-dst 3868 --state NONE --orig-vtag 0 --reply-vtag 0",
            "-A -t 599 -u SEEN_REPLY,ASSURED -w 3 -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p tcp --sport 1 --dport 80 --reply-port-src 80 --reply-port-dst 1 --state ESTABLISHED",
            "-A -t 29 -u UNSET -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 9",
            "-A -t 29 -u UNSET -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p gre --srckey 53 --dstkey 0 --reply-key-src 0 --reply-key-dst 53",
            "-A -t 59 -u UNSET -s 2001:db8::1 -d 2001:db8::2 -r 2001:db8::2 -q 2001:db8::1 -p udp --sport 5 --dport 53 --reply-port-src 53 --reply-port-dst 5",
            "-A -t 29 -u UNSET -s 2001:db8::1 -d 2001:db8::2 -r 2001:db8::2 -q 2001:db8::1 -p icmpv6 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 9",
            "-A -t 99 -u SEEN_REPLY,ASSURED -s 10.1.1.2 -d 10.2.2.2 -g 10.3.3.3 -q 10.1.1.2 -p tcp --sport 1000 --dport 80 --reply-port-src 8080 --reply-port-dst 1000 --state ESTABLISHED",
        ];
        let flows: Vec<Flow> = lines
            .iter()
            .map(|l| parse_save(l, None).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
        assert_eq!(flows[0].orig.l4, L4::None);
        assert_eq!(
            flows[1].protoinfo.map(|p| matches!(p, ProtoInfo::Sctp(_))),
            Some(true)
        );
        assert_eq!((flows[2].zone, flows[2].timeout), (Some(3), Some(599)));
        assert!(flows[2]
            .status
            .contains(Status::SEEN_REPLY | Status::ASSURED));
        assert_eq!(
            flows[3].reply.l4,
            L4::Icmp {
                id: 9,
                icmp_type: 0,
                code: 0
            }
        );
        assert_eq!(flows[4].orig.l4, L4::Ports { src: 53, dst: 0 });
        assert!(flows[5].orig.is_ipv6());
        assert_eq!(
            flows[6].reply.l4,
            L4::Icmp {
                id: 9,
                icmp_type: 129,
                code: 0
            }
        );
        // -g: destination NAT to 10.3.3.3:8080, restored as a binding.
        assert!(flows[7].status.contains(Status::DST_NAT));
        let spec = FlowSpec::from_flow(&flows[7]);
        assert_eq!(spec.reply, flows[7].orig.reversed());
        assert_eq!(
            (spec.dnat.unwrap().addr, spec.dnat.unwrap().port),
            (Some("10.3.3.3".parse().unwrap()), Some(8080))
        );
        // Every unnamed flow is its own reverse, apart from the NAT one.
        for flow in &flows[..7] {
            assert_eq!(flow.reply, flow.orig.reversed(), "{flow:?}");
        }
        let marked = parse_save(
            "-I -t 5 -m 7 -l 1,3 --helper ftp -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p tcp --sport 1 --dport 21 --reply-port-src 21 --reply-port-dst 1",
            None,
        )
        .unwrap();
        assert_eq!(
            (marked.mark, marked.helper.as_deref()),
            (Some(7), Some("ftp"))
        );
        assert_eq!(marked.labels, Some(crate::Labels(0b1010)));
    }

    #[test]
    fn refuses_what_it_cannot_read_exactly() {
        let good = "-A -t 9 -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p udp --sport 1 --dport 2 --reply-port-src 2 --reply-port-dst 1";
        assert!(parse_save(good, None).is_ok());
        for (line, says) in [
            ("", "empty"),
            ("-D -s 10.0.0.1", "starts with -A"),
            (&good.replace("-t 9", "-t"), "-t needs a value"),
            (&good.replace("-t 9", "-t x"), "not a decimal"),
            (&format!("{good} --colour red"), "unknown option --colour"),
            (&format!("{good} -t 5"), "appears twice"),
            (&format!("{good} -m"), "needs a value"),
            (&good.replace("-p udp", "-p nosuch"), "unknown protocol"),
            (&good.replace("-p udp ", ""), "no -p"),
            (&good.replace("-s 10.0.0.1 ", ""), "no --src"),
            (&good.replace("-d 10.0.0.2", "-d ::2"), "mixes"),
            (&good.replace("--sport 1", "--sport 70000"), "out of range"),
            (&good.replace("--dport 2 ", ""), "no --dport"),
            (&format!("{good} --icmp-id 3"), "no such field"),
            (&format!("{good} --state NEW"), "has no state"),
            (&format!("{good} --orig-vtag 1"), "verification tags"),
            (&format!("{good} -g 10.9.9.9"), "both -r and -g"),
            (&format!("{good} -u BOGUS"), "BOGUS"),
            (&format!("{good} -f ipv6"), "-f ipv6"),
            (&format!("{good} -l 200"), "0-127"),
            (&format!("{good} -w -1"), "not a decimal"),
        ] {
            let err = parse_save(line, None).expect_err(line).to_string();
            assert!(err.contains(says), "{line:?}: {err}");
        }
    }
}

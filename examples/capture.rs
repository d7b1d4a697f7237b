// SPDX-License-Identifier: MIT OR Apache-2.0
//! `capture`: records what the real kernel says over ctnetlink, byte for byte,
//! as hex fixtures for the offline decoder tests (`tests/fixtures/*.hex`).
//!
//! Everything is read on a raw `NETLINK_NETFILTER` socket (netlink-sys,
//! `conntrack::testing::raw`) opened inside the namespace given by `--netns`, so a fixture is exactly the bytes
//! the kernel sent: the full netlink message, its 16-byte `nlmsghdr` included.
//! The library is used only to pick flows (`decode_flow`), to encode requests
//! (`wire::Encoder`) and to create flows that `conntrack -I` cannot express.
//!
//! ```text
//! capture --netns NAME list
//!     print every flow of the table (decoded) with its message length
//! capture --netns NAME dump --out FILE [--proto N] [--sport N] [--dport N]
//!                           [--expected | --not-expected] [--comment TEXT]...
//!     write the one flow message matching the filters (it is an error if
//!     none or several match)
//! capture --netns NAME dump-datagram --out FILE
//!     the first datagram of a dump, as received (several flow messages)
//! capture --netns NAME stats --out FILE       one GET_STATS reply datagram
//! capture --netns NAME stats-cpu --out FILE   first GET_STATS_CPU reply datagram
//! capture --netns NAME expect-dump --out FILE
//!     the first datagram of an expectation dump (`conntrack -L expect`)
//! capture --netns NAME expect-event --out FILE
//!     joins NFNLGRP_CONNTRACK_EXP_NEW, creates the `expect` preset with the
//!     library, and writes the first event datagram
//! capture --netns NAME error --out FILE [--uncapped]
//!     the NLMSG_ERROR (extended ack) answering a CT_NEW whose CTA_STATUS has
//!     a 2-byte payload ("Attribute failed policy validation")
//! capture --netns NAME create PRESET
//!     create flows with the library (presets: labels, helper, seqadj,
//!     synproxy, master, sctp, generic, expect: an ftp master and an
//!     expectation of it); prints the calls made, for the fixture's header
//! ```
//!
//! Fixture format: `#` comment lines (the `--comment`s, then the capture
//! command line and kernel), then hex, 16 bytes a line in 4-byte groups.
//! Only ever point it at a throwaway namespace.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use conntrack::consts::*;
use conntrack::testing::raw::{self, RawSocket};
use conntrack::wire::Encoder;
use conntrack::{
    decode_flow, proto, Conntrack, ExpectFlags, ExpectationSpec, FlowSpec, Labels, Netns,
    ProtoInfo, SctpInfo, SctpState, SeqAdj, Status, Synproxy, TcpFlags, TcpInfo, TcpState, Tuple,
};

type BoxError = Box<dyn std::error::Error>;

#[path = "support/cli.rs"]
mod cli;

/// Record what the kernel says over ctnetlink, byte for byte, as hex fixtures.
#[derive(clap::Parser, Debug)]
#[command(name = "capture", version)]
struct Args {
    /// Namespace to read (a throwaway one): an `ip netns` name, a path or a pid.
    #[arg(long, value_name = "NAME|PATH|PID", value_parser = cli::parse_netns)]
    netns: Netns,
    /// What to capture: list, dump, dump-datagram, stats, stats-cpu, expect-dump,
    /// expect-event, error, create.
    #[arg(value_parser = ["list", "dump", "dump-datagram", "stats", "stats-cpu", "expect-dump", "expect-event", "error", "create"])]
    command: String,
    /// The preset of `create`: labels, helper, seqadj, synproxy, master, sctp, generic, expect.
    #[arg(required_if_eq("command", "create"))]
    preset: Option<String>,
    /// The fixture file to write.
    #[arg(long, value_name = "FILE", value_parser = utf8_path)]
    out: Option<PathBuf>,
    /// A comment line for the fixture's header (repeatable).
    #[arg(long = "comment", value_name = "TEXT")]
    comments: Vec<String>,
    /// dump: the flow's layer-4 protocol number.
    #[arg(long, value_name = "N")]
    proto: Option<u8>,
    /// dump: the flow's original source port.
    #[arg(long, value_name = "N")]
    sport: Option<u16>,
    /// dump: the flow's original destination port.
    #[arg(long, value_name = "N")]
    dport: Option<u16>,
    /// dump: only a flow created from an expectation.
    #[arg(long, conflicts_with = "not_expected")]
    expected: bool,
    /// dump: only a flow not created from an expectation.
    #[arg(long)]
    not_expected: bool,
    /// error: do not cap the extended ack (the kernel echoes the request).
    #[arg(long)]
    uncapped: bool,
}

impl Args {
    fn expected(&self) -> Option<bool> {
        match (self.expected, self.not_expected) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

/// A file name that is UTF-8 (it is written into the fixture's header).
fn utf8_path(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Err("empty file name".into());
    }
    Ok(PathBuf::from(text))
}

/// A raw netfilter netlink socket created inside the namespace, extended
/// acks on, the request's echo in error replies capped or not.
fn raw_socket(netns: &Netns, cap_ack: bool) -> Result<RawSocket, BoxError> {
    let file = netns
        .open()?
        .ok_or("capture reads only a namespace given by --netns, never the current one")?;
    let socket = RawSocket::open(Some(&file))?;
    socket.socket().set_ext_ack(true)?;
    socket.socket().set_cap_ack(cap_ack)?;
    Ok(socket)
}

/// Every flow message of a full dump, each with its nlmsghdr.
fn dump_messages(netns: &Netns) -> Result<Vec<Vec<u8>>, BoxError> {
    let mut socket = raw_socket(netns, true)?;
    socket.start_dump()?;
    let mut flows = Vec::new();
    socket
        .receive_until_end(|message| {
            if message.kind == ct_msg_type(IPCTNL_MSG_CT_NEW) {
                flows.push(message.bytes.to_vec());
            }
        })
        .map_err(|e| format!("dump failed: {e}"))?;
    Ok(flows)
}

fn describe(message: &[u8]) -> String {
    match decode_flow(&message[NLMSG_HDRLEN..]) {
        Ok(flow) => format!("{flow:?}"),
        Err(e) => format!("<undecodable: {e}>"),
    }
}

fn matches(args: &Args, message: &[u8]) -> bool {
    let Ok(flow) = decode_flow(&message[NLMSG_HDRLEN..]) else {
        return false;
    };
    args.proto.map_or(true, |p| flow.orig.protocol == p)
        && args.sport.map_or(true, |p| flow.orig.src_port() == Some(p))
        && args.dport.map_or(true, |p| flow.orig.dst_port() == Some(p))
        && args
            .expected()
            .map_or(true, |e| flow.status.contains(Status::EXPECTED) == e)
}

fn hex_lines(bytes: &[u8]) -> String {
    let mut out = String::new();
    for line in bytes.chunks(16) {
        let groups: Vec<String> = line
            .chunks(4)
            .map(|g| g.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        out.push_str(&groups.join(" "));
        out.push('\n');
    }
    out
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

fn write_fixture(args: &Args, what: &str, bytes: &[u8]) -> Result<(), BoxError> {
    let path = args.out.as_ref().ok_or("--out FILE is required")?;
    let mut text = String::new();
    for comment in &args.comments {
        for line in comment.lines() {
            writeln!(text, "# {line}")?;
        }
    }
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut shown = Vec::new();
    let mut skip = false;
    for a in &argv {
        // The comments are already above; show the rest of the command line.
        if skip {
            skip = false;
            continue;
        }
        if a == "--comment" {
            skip = true;
            continue;
        }
        shown.push(if a.contains(' ') {
            format!("'{a}'")
        } else {
            a.clone()
        });
    }
    writeln!(
        text,
        "# captured: cargo run -p conntrack-rs --example capture -- {}",
        shown.join(" ")
    )?;
    writeln!(
        text,
        "# kernel {}; {what}; {} bytes",
        kernel_release(),
        bytes.len()
    )?;
    text.push_str(&hex_lines(bytes));
    std::fs::write(path, text)?;
    eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
    Ok(())
}

fn cmd_list(args: &Args) -> Result<(), BoxError> {
    for message in dump_messages(&args.netns)? {
        println!("[{} bytes] {}", message.len(), describe(&message));
    }
    Ok(())
}

fn cmd_dump(args: &Args) -> Result<(), BoxError> {
    let all = dump_messages(&args.netns)?;
    let picked: Vec<&Vec<u8>> = all.iter().filter(|m| matches(args, m)).collect();
    if picked.len() != 1 {
        for m in &all {
            eprintln!("  {}", describe(m));
        }
        return Err(format!(
            "{} of {} flows match the filters, need exactly one",
            picked.len(),
            all.len()
        )
        .into());
    }
    let message = picked[0];
    eprintln!("{}", describe(message));
    write_fixture(
        args,
        "one IPCTNL_MSG_CT_NEW dump message, nlmsghdr included",
        message,
    )
}

/// Sends a bodiless ctnetlink request and returns the first reply datagram.
fn first_reply(args: &Args, msg: u8, flags: u16) -> Result<Vec<u8>, BoxError> {
    first_reply_typed(args, ct_msg_type(msg), flags)
}

/// [`first_reply`] for a message of any subsystem (`kind` is the full
/// `nlmsg_type`).
fn first_reply_typed(args: &Args, kind: u16, flags: u16) -> Result<Vec<u8>, BoxError> {
    let mut socket = raw_socket(&args.netns, true)?;
    let mut enc = Encoder::new();
    let seq = socket.next_seq();
    let mark = enc.begin_typed(kind, NLM_F_REQUEST | flags, seq, AF_UNSPEC, NFNETLINK_V0);
    enc.end(mark);
    socket.send(enc.as_bytes())?;
    let first = socket.recv()?.to_vec();
    // Drain the rest of the exchange so the kernel is not left mid-dump.
    let mut last_ended = ends_exchange(&first)?;
    while !last_ended {
        last_ended = ends_exchange(socket.recv()?)?;
    }
    Ok(first)
}

/// True when the datagram holds an `NLMSG_DONE` or an `NLMSG_ERROR` (ACK or
/// error): the last of an exchange.
fn ends_exchange(datagram: &[u8]) -> Result<bool, BoxError> {
    for message in raw::messages(datagram) {
        if matches!(message?.kind, NLMSG_DONE | NLMSG_ERROR) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn cmd_dump_datagram(args: &Args) -> Result<(), BoxError> {
    let datagram = first_reply(args, IPCTNL_MSG_CT_GET, NLM_F_DUMP)?;
    write_fixture(
        args,
        "first reply datagram to IPCTNL_MSG_CT_GET (NLM_F_REQUEST|NLM_F_DUMP, AF_UNSPEC, seq 1)",
        &datagram,
    )
}

fn cmd_stats(args: &Args) -> Result<(), BoxError> {
    let datagram = first_reply(args, IPCTNL_MSG_CT_GET_STATS, NLM_F_ACK)?;
    write_fixture(
        args,
        "first reply datagram to IPCTNL_MSG_CT_GET_STATS (NLM_F_REQUEST|NLM_F_ACK, seq 1)",
        &datagram,
    )
}

fn cmd_stats_cpu(args: &Args) -> Result<(), BoxError> {
    let datagram = first_reply(args, IPCTNL_MSG_CT_GET_STATS_CPU, NLM_F_DUMP)?;
    write_fixture(
        args,
        "first reply datagram to IPCTNL_MSG_CT_GET_STATS_CPU (NLM_F_REQUEST|NLM_F_DUMP, seq 1)",
        &datagram,
    )
}

fn cmd_expect_dump(args: &Args) -> Result<(), BoxError> {
    let datagram = first_reply_typed(args, exp_msg_type(IPCTNL_MSG_EXP_GET), NLM_F_DUMP)?;
    write_fixture(
        args,
        "first reply datagram to IPCTNL_MSG_EXP_GET (NFNL_SUBSYS_CTNETLINK_EXP, \
         NLM_F_REQUEST|NLM_F_DUMP, AF_UNSPEC, seq 1)",
        &datagram,
    )
}

fn cmd_expect_event(args: &Args) -> Result<(), BoxError> {
    /// `NFNLGRP_CONNTRACK_EXP_NEW` (include/uapi/linux/netfilter/nfnetlink.h).
    const NFNLGRP_CONNTRACK_EXP_NEW: u32 = 4;
    let mut socket = raw_socket(&args.netns, true)?;
    socket.socket().add_membership(NFNLGRP_CONNTRACK_EXP_NEW)?;
    let mut ct = Conntrack::open_in(&args.netns)?;
    create_expect_preset(&mut ct)?;
    let datagram = socket.recv()?.to_vec();
    write_fixture(
        args,
        "first datagram on a socket joined to NFNLGRP_CONNTRACK_EXP_NEW, while \
         `capture create expect` ran",
        &datagram,
    )
}

/// The `expect` preset: an ftp master, then an expectation of its data
/// connection from any source port, created from another socket than the
/// capturing one (the event's `nlmsg_pid` names it).
fn create_expect_preset(ct: &mut Conntrack) -> Result<(), BoxError> {
    let master = Tuple::tcp(([10, 5, 0, 1], 40005), ([10, 5, 0, 2], 21));
    ct.create(
        &FlowSpec::new(master)
            .timeout(3600)
            .tcp_state(TcpState::Established)
            .status(Status::SEEN_REPLY | Status::ASSURED)
            .helper("ftp"),
    )?;
    println!(
        "ct.create(&FlowSpec::new(Tuple::tcp(([10,5,0,1],40005),([10,5,0,2],21))).timeout(3600)\
         .tcp_state(TcpState::Established).status(Status::SEEN_REPLY|Status::ASSURED).helper(\"ftp\"))"
    );
    let tuple = Tuple::tcp(([10, 5, 0, 1], 0), ([10, 5, 0, 2], 50005));
    ct.create_expectation(
        &ExpectationSpec::new(master, tuple, 120)
            .any_source_port()
            .flags(ExpectFlags::PERMANENT),
    )?;
    println!(
        "ct.create_expectation(&ExpectationSpec::new(master, Tuple::tcp(([10,5,0,1],0),([10,5,0,2],50005)), 120)\
         .any_source_port().flags(ExpectFlags::PERMANENT))"
    );
    Ok(())
}

fn cmd_error(args: &Args) -> Result<(), BoxError> {
    let mut socket = raw_socket(&args.netns, !args.uncapped)?;
    let mut enc = Encoder::new();
    let mark = enc.begin(
        IPCTNL_MSG_CT_NEW,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        socket.next_seq(),
        AF_INET,
        NFNETLINK_V0,
    );
    for (kind, src, dst, sport, dport) in [
        (CTA_TUPLE_ORIG, [10, 9, 9, 1], [10, 9, 9, 2], 1111u16, 80u16),
        (CTA_TUPLE_REPLY, [10, 9, 9, 2], [10, 9, 9, 1], 80, 1111),
    ] {
        let tuple = enc.nest(kind);
        let ip = enc.nest(CTA_TUPLE_IP);
        enc.bytes(CTA_IP_V4_SRC, &src);
        enc.bytes(CTA_IP_V4_DST, &dst);
        enc.end_nest(ip);
        let proto = enc.nest(CTA_TUPLE_PROTO);
        enc.u8(CTA_PROTO_NUM, IPPROTO_TCP);
        enc.be16(CTA_PROTO_SRC_PORT, sport);
        enc.be16(CTA_PROTO_DST_PORT, dport);
        enc.end_nest(proto);
        enc.end_nest(tuple);
    }
    enc.be32(CTA_TIMEOUT, 60);
    // The wrong size: a 2-byte CTA_STATUS (the policy says NLA_U32).
    enc.be16(CTA_STATUS, 8);
    enc.end(mark);
    let request = enc.as_bytes().to_vec();
    socket.send(&request)?;
    let datagram = socket.recv()?.to_vec();
    let status_offset = request.len() - 8;
    let what = format!(
        "reply datagram (NLMSG_ERROR with extended ack, {}) to a {}-byte CT_NEW request \
         whose 2-byte CTA_STATUS sits at offset {status_offset}: request hex {}",
        if args.uncapped {
            "NETLINK_CAP_ACK off: request echoed"
        } else {
            "NETLINK_CAP_ACK on: echo capped to the header"
        },
        request.len(),
        request
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    write_fixture(args, &what, &datagram)
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

/// Flows `conntrack -I` cannot create, made with the library. Prints the
/// calls made (as Rust) so they can go into the fixture's comments.
fn cmd_create(args: &Args) -> Result<(), BoxError> {
    let mut ct = Conntrack::open_in(&args.netns)?;
    let preset = args.preset.as_deref().ok_or("create needs a PRESET")?;
    let specs: Vec<(String, FlowSpec)> = match preset {
        "labels" => {
            let tuple = Tuple::udp(([198, 51, 100, 1], 1000), ([198, 51, 100, 2], 2000));
            let labels = Labels::default()
                .with(0)
                .with(1)
                .with(31)
                .with(32)
                .with(63)
                .with(64)
                .with(100)
                .with(127);
            vec![(
                "FlowSpec::new(Tuple::udp(([198,51,100,1],1000),([198,51,100,2],2000))).timeout(600)\
                 .labels(Labels::default().with(0).with(1).with(31).with(32).with(63).with(64).with(100).with(127))"
                    .into(),
                FlowSpec::new(tuple).timeout(600).labels(labels),
            )]
        }
        "helper" => {
            let tuple = Tuple::tcp(([10, 1, 0, 1], 40000), ([10, 1, 0, 2], 21));
            vec![(
                "FlowSpec::new(Tuple::tcp(([10,1,0,1],40000),([10,1,0,2],21))).timeout(3600)\
                 .tcp_state(TcpState::Established).status(Status::SEEN_REPLY|Status::ASSURED).helper(\"ftp\")"
                    .into(),
                FlowSpec::new(tuple)
                    .timeout(3600)
                    .tcp_state(TcpState::Established)
                    .status(Status::SEEN_REPLY | Status::ASSURED)
                    .helper("ftp"),
            )]
        }
        "seqadj" => {
            let tuple = Tuple::tcp(([10, 2, 0, 1], 40002), ([10, 2, 0, 2], 8080));
            let orig = SeqAdj {
                correction_pos: 0x1122_3344,
                offset_before: 12,
                offset_after: -20,
            };
            let reply = SeqAdj {
                correction_pos: 0x5566_7788,
                offset_before: -4,
                offset_after: 100,
            };
            vec![(
                "FlowSpec::new(Tuple::tcp(([10,2,0,1],40002),([10,2,0,2],8080))).timeout(3600)\
                 .tcp_state(TcpState::Established).status(Status::SEEN_REPLY|Status::ASSURED)\
                 .seqadj(SeqAdj{correction_pos:0x11223344,offset_before:12,offset_after:-20}, \
                 SeqAdj{correction_pos:0x55667788,offset_before:-4,offset_after:100})"
                    .into(),
                FlowSpec::new(tuple)
                    .timeout(3600)
                    .tcp_state(TcpState::Established)
                    .status(Status::SEEN_REPLY | Status::ASSURED)
                    .seqadj(orig, reply),
            )]
        }
        "synproxy" => {
            let tuple = Tuple::tcp(([10, 4, 0, 1], 40004), ([10, 4, 0, 2], 443));
            let info = TcpInfo {
                state: Some(TcpState::Established),
                wscale_orig: Some(7),
                wscale_reply: Some(9),
                flags_orig: Some((
                    TcpFlags::WINDOW_SCALE | TcpFlags::SACK_PERM,
                    TcpFlags::WINDOW_SCALE | TcpFlags::SACK_PERM,
                )),
                // The kernel applies window scales only when both directions
                // carry WINDOW_SCALE (nlattr_to_tcp).
                flags_reply: Some((TcpFlags::WINDOW_SCALE, TcpFlags::WINDOW_SCALE)),
            };
            vec![(
                "FlowSpec::new(Tuple::tcp(([10,4,0,1],40004),([10,4,0,2],443))).timeout(3600)\
                 .status(Status::SEEN_REPLY|Status::ASSURED).protoinfo(ProtoInfo::Tcp(TcpInfo{\
                 state:Some(TcpState::Established),wscale_orig:Some(7),wscale_reply:Some(9),\
                 flags_orig:Some((WINDOW_SCALE|SACK_PERM, WINDOW_SCALE|SACK_PERM)),\
                 flags_reply:Some((WINDOW_SCALE, WINDOW_SCALE))}))\
                 .synproxy(Synproxy{isn:0x01020304,its:0xa0b0c0d0,tsoff:0xfffffff0})"
                    .into(),
                FlowSpec::new(tuple)
                    .timeout(3600)
                    .status(Status::SEEN_REPLY | Status::ASSURED)
                    .protoinfo(ProtoInfo::Tcp(info))
                    .synproxy(Synproxy {
                        isn: 0x0102_0304,
                        its: 0xa0b0_c0d0,
                        tsoff: 0xffff_fff0,
                    }),
            )]
        }
        "master" => {
            let master = Tuple::tcp(([10, 3, 0, 1], 40003), ([10, 3, 0, 2], 21));
            let expected = Tuple::tcp(([10, 3, 0, 2], 20), ([10, 3, 0, 1], 50000));
            vec![
                (
                    "FlowSpec::new(Tuple::tcp(([10,3,0,1],40003),([10,3,0,2],21))).timeout(3600)\
                     .tcp_state(TcpState::Established).status(Status::SEEN_REPLY|Status::ASSURED).helper(\"ftp\")"
                        .into(),
                    FlowSpec::new(master)
                        .timeout(3600)
                        .tcp_state(TcpState::Established)
                        .status(Status::SEEN_REPLY | Status::ASSURED)
                        .helper("ftp"),
                ),
                (
                    "FlowSpec::new(Tuple::tcp(([10,3,0,2],20),([10,3,0,1],50000))).timeout(120)\
                     .tcp_state(TcpState::SynSent).master(Tuple::tcp(([10,3,0,1],40003),([10,3,0,2],21)))"
                        .into(),
                    FlowSpec::new(expected)
                        .timeout(120)
                        .tcp_state(TcpState::SynSent)
                        .master(master),
                ),
            ]
        }
        "sctp" => {
            let tuple = Tuple::ports(
                proto::SCTP,
                v4([192, 0, 2, 1]),
                5000,
                v4([192, 0, 2, 2]),
                6000,
            );
            let info = SctpInfo {
                state: Some(SctpState::Established),
                vtag_orig: Some(0x1111_1111),
                vtag_reply: Some(0x2222_2222),
            };
            vec![(
                "FlowSpec::new(Tuple::ports(proto::SCTP, 192.0.2.1, 5000, 192.0.2.2, 6000)).timeout(300)\
                 .protoinfo(ProtoInfo::Sctp(SctpInfo{state:Some(SctpState::Established),\
                 vtag_orig:Some(0x11111111),vtag_reply:Some(0x22222222)}))"
                    .into(),
                FlowSpec::new(tuple)
                    .timeout(300)
                    .protoinfo(ProtoInfo::Sctp(info)),
            )]
        }
        "generic" => {
            let tuple = Tuple::generic(253, v4([203, 0, 113, 1]), v4([203, 0, 113, 2]));
            vec![(
                "FlowSpec::new(Tuple::generic(253, 203.0.113.1, 203.0.113.2)).timeout(600)".into(),
                FlowSpec::new(tuple).timeout(600),
            )]
        }
        "expect" => return create_expect_preset(&mut ct),
        other => return Err(format!("unknown preset {other}").into()),
    };
    for (text, spec) in specs {
        ct.create(&spec)?;
        println!("ct.create(&{text})");
    }
    Ok(())
}

fn run() -> Result<(), BoxError> {
    let args: Args = cli::parse();
    match args.command.as_str() {
        "list" => cmd_list(&args),
        "dump" => cmd_dump(&args),
        "dump-datagram" => cmd_dump_datagram(&args),
        "stats" => cmd_stats(&args),
        "stats-cpu" => cmd_stats_cpu(&args),
        "expect-dump" => cmd_expect_dump(&args),
        "expect-event" => cmd_expect_event(&args),
        "error" => cmd_error(&args),
        "create" => cmd_create(&args),
        other => Err(format!("unknown command {other}").into()),
    }
}

fn main() -> ExitCode {
    cli::quiet_on_closed_pipe();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("capture: {e}");
            ExitCode::FAILURE
        }
    }
}

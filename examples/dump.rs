// SPDX-License-Identifier: MIT OR Apache-2.0
//! `dump`: print a conntrack table, like `conntrack -L -o extended`.
//!
//! ```text
//! dump [--netns NAME] [--id | --json | --stats-only] [--prefetch auto|always|never]
//! ```
//!
//! * default: one line per flow in exactly the format of
//!   `conntrack -L -o extended` (see [`conntrack::text`]); `--id` appends the
//!   kernel id like `conntrack -L -o extended,id`.
//! * `--json`: NDJSON, one object per flow (described below).
//! * `--stats-only`: decodes every flow into the owned model ([`conntrack::Flow`])
//!   and prints only `flows=N digest=D`, where `D` is the wrapping `u64` sum over
//!   all flows of orig source port + orig destination port + reply source port +
//!   reply destination port + status bits + timeout. Ports are the values of
//!   [`conntrack::L4::Ports`] (GRE keys included) and 0 for tuples without ports
//!   (ICMP, generic protocols); the timeout is 0 when absent.
//! * `--prefetch`: how datagrams are received ([`conntrack::Prefetch`]):
//!   `auto` (the default: a receiving thread on tables of 4 096 flows or
//!   more), `always` or `never` (everything on one thread).
//! * `--netns NAME` reads the table of the `ip netns` namespace `NAME` (a value
//!   containing `/` is taken as a namespace file path, e.g. `/proc/PID/ns/net`);
//!   without it, the caller's namespace.
//!
//! Errors go to stderr. Exit status: 0 on success (also when stdout is a
//! closed pipe, e.g. `dump | head`), 1 when the table could not be read or a
//! flow failed to decode (the other flows are still printed) or the kernel
//! flagged the dump as interrupted (every flow was printed, some maybe twice),
//! 2 for a usage error.
//!
//! # JSON objects
//!
//! Every key is always present; a field the kernel did not send is `null`.
//! Addresses are strings (Rust's standard text form), 64-bit numbers are plain
//! JSON integers (exact, but beyond 2^53 for JavaScript doubles).
//!
//! ```text
//! family          "ipv4" | "ipv6"
//! protocol        layer-4 protocol number; protocol_name: conntrack's name ("tcp", ..., "unknown")
//! orig, reply     tuple: {"src", "dst", "protocol", "src_port", "dst_port",
//!                 "icmp_type", "icmp_code", "icmp_id", "zone"}; ports for port
//!                 protocols (GRE: the keys), icmp_* for ICMP/ICMPv6, null otherwise;
//!                 zone = directional zone (CTA_TUPLE_ZONE) or null
//! status          CTA_STATUS as an integer; status_flags: the names of its bits
//!                 ("SEEN_REPLY", "ASSURED", "CONFIRMED", ...; unknown bits as "BIT<n>")
//! timeout         remaining seconds or null (offloaded flows)
//! mark, use, id   CTA_MARK, CTA_USE, CTA_ID (the number `conntrack -o id` prints)
//! zone            CTA_ZONE (both directions) or null
//! protoinfo       null, {"tcp": {"state", "state_raw", "wscale_orig", "wscale_reply",
//!                 "flags_orig", "mask_orig", "flags_reply", "mask_reply"}},
//!                 {"sctp": {"state", "state_raw", "vtag_orig", "vtag_reply"}} or
//!                 {"dccp": {"state", "state_raw", "role", "handshake_seq"}}
//! counters_orig, counters_reply   {"packets", "bytes"} or null
//! timestamp       {"start", "stop"} in ns since the epoch (members may be null) or null
//! labels          sorted list of set label bit numbers, or null
//! helper, secctx  strings or null
//! seqadj_orig, seqadj_reply       {"correction_pos", "offset_before", "offset_after"} or null
//! synproxy        {"isn", "its", "tsoff"} or null
//! master          tuple of the master flow (expected flows) or null
//! event_timestamp ns since the epoch (events only) or null
//! ```

use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use conntrack::text::{self, TextOptions};
use conntrack::{Conntrack, Error, FlowRef, Netns, Prefetch, ProtoInfo, Status, Tuple, L4};

const USAGE: &str = "\
usage: dump [--netns NAME] [--id | --json | --stats-only] [--prefetch auto|always|never]

Print the conntrack table of a network namespace.

  --netns NAME   namespace created by `ip netns add NAME` (or a namespace file
                 path such as /proc/PID/ns/net); default: the current one
  --id           append the flow id, like `conntrack -L -o extended,id`
  --json         one JSON object per flow (NDJSON) with every decoded field
  --stats-only   print only `flows=N digest=D`
  --prefetch P   receive on a second thread: auto (default, large tables),
                 always or never
  -h, --help     print this help
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Text,
    Json,
    Stats,
}

#[derive(Debug)]
struct Args {
    netns: Netns,
    id: bool,
    mode: Mode,
    prefetch: Prefetch,
}

/// `Ok(None)`: help was asked for.
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, String> {
    let mut netns = Netns::Current;
    let mut id = false;
    let mut mode = Mode::Text;
    let mut prefetch = Prefetch::Auto;
    let mut args = args.into_iter();
    let set_mode = |mode: &mut Mode, new: Mode, flag: &str| {
        if *mode != Mode::Text && *mode != new {
            return Err(format!(
                "{flag} cannot be combined with another output mode"
            ));
        }
        *mode = new;
        Ok(())
    };
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("argument {a:?} is not valid UTF-8"))?;
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--netns" => {
                let name = match inline {
                    Some(name) => name,
                    None => args
                        .next()
                        .ok_or("--netns needs a namespace name")?
                        .into_string()
                        .map_err(|a| format!("namespace name {a:?} is not valid UTF-8"))?,
                };
                if name.is_empty() {
                    return Err("--netns needs a namespace name".into());
                }
                netns = if name.contains('/') {
                    Netns::Path(name.into())
                } else {
                    Netns::named(name)
                };
            }
            "--id" if inline.is_none() => id = true,
            "--prefetch" => {
                let value = match inline {
                    Some(value) => value,
                    None => args
                        .next()
                        .and_then(|a| a.into_string().ok())
                        .ok_or("--prefetch needs auto, always or never")?,
                };
                prefetch = match value.as_str() {
                    "auto" => Prefetch::Auto,
                    "always" => Prefetch::Always,
                    "never" => Prefetch::Never,
                    _ => {
                        return Err(format!(
                            "--prefetch {value:?}: expected auto, always or never"
                        ))
                    }
                };
            }
            "--json" if inline.is_none() => set_mode(&mut mode, Mode::Json, "--json")?,
            "--stats-only" if inline.is_none() => set_mode(&mut mode, Mode::Stats, "--stats-only")?,
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(Some(Args {
        netns,
        id,
        mode,
        prefetch,
    }))
}

/// Why a run stopped early.
enum Failure {
    /// Writing to stdout failed.
    Output(io::Error),
    /// Reading the table failed.
    Table(Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Output(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Table(e)
    }
}

/// Problems that did not stop the dump.
#[derive(Default)]
struct Problems {
    decode_errors: u64,
    interrupted: bool,
}

impl Problems {
    /// Records a per-flow error, or returns the error that ends the dump.
    fn absorb(&mut self, error: Error) -> Result<(), Failure> {
        match error {
            Error::Decode(e) => {
                self.decode_errors += 1;
                eprintln!("dump: skipped a flow that did not decode: {e}");
                Ok(())
            }
            Error::DumpInterrupted => {
                self.interrupted = true;
                Ok(())
            }
            other => Err(Failure::Table(other)),
        }
    }
}

fn run(args: &Args, out: &mut impl Write) -> Result<Problems, Failure> {
    let mut ct = Conntrack::open_in(&args.netns)?;
    ct.set_prefetch(args.prefetch);
    let mut problems = Problems::default();
    if args.mode == Mode::Stats {
        let (mut flows, mut digest) = (0u64, 0u64);
        for flow in ct.flows()? {
            match flow {
                Ok(flow) => {
                    flows += 1;
                    let port = |p: Option<u16>| u64::from(p.unwrap_or(0));
                    for part in [
                        port(flow.orig.src_port()),
                        port(flow.orig.dst_port()),
                        port(flow.reply.src_port()),
                        port(flow.reply.dst_port()),
                        u64::from(flow.status.bits()),
                        u64::from(flow.timeout.unwrap_or(0)),
                    ] {
                        digest = digest.wrapping_add(part);
                    }
                }
                Err(e) => problems.absorb(e)?,
            }
        }
        writeln!(out, "flows={flows} digest={digest}")?;
        return Ok(problems);
    }
    let options = TextOptions {
        extended: true,
        id: args.id,
    };
    let mut dump = ct.dump()?;
    while let Some(flow) = dump.next_flow() {
        match flow {
            Ok(flow) if args.mode == Mode::Json => write_json(out, &flow)?,
            Ok(flow) => writeln!(out, "{}", text::display(&flow, options))?,
            Err(e) => problems.absorb(e)?,
        }
    }
    Ok(problems)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("dump: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let result = run(&args, &mut out).and_then(|problems| {
        out.flush()?;
        Ok(problems)
    });
    match result {
        Ok(problems) => {
            if problems.interrupted {
                eprintln!(
                    "dump: the kernel flagged the dump as interrupted by table changes; \
                     flows may be missing or repeated"
                );
            }
            if problems.decode_errors > 0 {
                eprintln!(
                    "dump: {} flow(s) could not be decoded",
                    problems.decode_errors
                );
            }
            if problems.interrupted || problems.decode_errors > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        // The reader went away (`dump | head`): not an error.
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Output(e)) => {
            eprintln!("dump: cannot write output: {e}");
            ExitCode::FAILURE
        }
        Err(Failure::Table(e)) => {
            // Flows already printed stay printed; a broken pipe here is moot.
            let _ = out.flush();
            eprintln!("dump: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---- JSON -------------------------------------------------------------------

/// A JSON string literal.
struct JsonStr<'a>(&'a str);

impl fmt::Display for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        let mut rest = self.0;
        while let Some(at) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ' || c == '\u{7f}')
        {
            f.write_str(&rest[..at])?;
            // Every character found is ASCII, one byte long.
            match rest.as_bytes()[at] {
                b'"' => f.write_str("\\\"")?,
                b'\\' => f.write_str("\\\\")?,
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                b'\t' => f.write_str("\\t")?,
                byte => write!(f, "\\u{byte:04x}")?,
            }
            rest = &rest[at + 1..];
        }
        f.write_str(rest)?;
        f.write_str("\"")
    }
}

/// An optional JSON value: the value, or `null`.
struct Opt<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for Opt<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("null"),
        }
    }
}

/// A tuple as a JSON object.
struct JsonTuple<'a>(&'a Tuple);

impl fmt::Display for JsonTuple<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        let (ports, icmp) = match t.l4 {
            L4::Ports { src, dst } => (Some((src, dst)), None),
            L4::Icmp {
                id,
                icmp_type,
                code,
            } => (None, Some((icmp_type, code, id))),
            L4::None => (None, None),
        };
        write!(
            f,
            "{{\"src\":\"{}\",\"dst\":\"{}\",\"protocol\":{},\"src_port\":{},\"dst_port\":{},\
             \"icmp_type\":{},\"icmp_code\":{},\"icmp_id\":{},\"zone\":{}}}",
            t.src,
            t.dst,
            t.protocol,
            Opt(ports.map(|p| p.0)),
            Opt(ports.map(|p| p.1)),
            Opt(icmp.map(|i| i.0)),
            Opt(icmp.map(|i| i.1)),
            Opt(icmp.map(|i| i.2)),
            Opt(t.zone),
        )
    }
}

/// The status bit names as a JSON array.
struct JsonStatus(Status);

impl fmt::Display for JsonStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        let mut named = 0u32;
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { "," };
            first = false;
            f.write_str(s)
        };
        for (name, flag) in self.0.iter_names() {
            named |= flag.bits();
            sep(f)?;
            write!(f, "\"{name}\"")?;
        }
        let unknown = self.0.bits() & !named;
        for bit in (0..32).filter(|b| unknown >> b & 1 == 1) {
            sep(f)?;
            write!(f, "\"BIT{bit}\"")?;
        }
        f.write_str("]")
    }
}

/// Protocol info as a JSON object.
struct JsonProtoInfo(ProtoInfo);

impl fmt::Display for JsonProtoInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ProtoInfo::Tcp(tcp) => write!(
                f,
                "{{\"tcp\":{{\"state\":{},\"state_raw\":{},\"wscale_orig\":{},\"wscale_reply\":{},\
                 \"flags_orig\":{},\"mask_orig\":{},\"flags_reply\":{},\"mask_reply\":{}}}}}",
                Opt(tcp.state.map(|s| JsonStr(s.name()))),
                Opt(tcp.state.map(|s| s.raw())),
                Opt(tcp.wscale_orig),
                Opt(tcp.wscale_reply),
                Opt(tcp.flags_orig.map(|(flags, _)| flags.bits())),
                Opt(tcp.flags_orig.map(|(_, mask)| mask.bits())),
                Opt(tcp.flags_reply.map(|(flags, _)| flags.bits())),
                Opt(tcp.flags_reply.map(|(_, mask)| mask.bits())),
            ),
            ProtoInfo::Sctp(sctp) => write!(
                f,
                "{{\"sctp\":{{\"state\":{},\"state_raw\":{},\"vtag_orig\":{},\"vtag_reply\":{}}}}}",
                Opt(sctp.state.map(|s| JsonStr(s.name()))),
                Opt(sctp.state.map(|s| s.raw())),
                Opt(sctp.vtag_orig),
                Opt(sctp.vtag_reply),
            ),
            ProtoInfo::Dccp(dccp) => write!(
                f,
                "{{\"dccp\":{{\"state\":{},\"state_raw\":{},\"role\":{},\"handshake_seq\":{}}}}}",
                Opt(dccp.state.map(|s| JsonStr(s.name()))),
                Opt(dccp.state.map(|s| s.raw())),
                Opt(dccp.role),
                Opt(dccp.handshake_seq),
            ),
            // A kind of protocol info added to the library later.
            _ => f.write_str("null"),
        }
    }
}

/// A sorted list of label bits as a JSON array.
struct JsonLabels(conntrack::Labels);

impl fmt::Display for JsonLabels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, bit) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{bit}")?;
        }
        f.write_str("]")
    }
}

/// Formats with a closure (to build JSON objects without allocating).
struct With<F>(F);

impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Display for With<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(f)
    }
}

fn json_counters(c: conntrack::Counters) -> impl fmt::Display {
    With(move |f: &mut fmt::Formatter<'_>| {
        write!(f, "{{\"packets\":{},\"bytes\":{}}}", c.packets, c.bytes)
    })
}

fn json_seqadj(s: conntrack::SeqAdj) -> impl fmt::Display {
    With(move |f: &mut fmt::Formatter<'_>| {
        write!(
            f,
            "{{\"correction_pos\":{},\"offset_before\":{},\"offset_after\":{}}}",
            s.correction_pos, s.offset_before, s.offset_after
        )
    })
}

/// Writes one flow as one JSON line.
fn write_json(out: &mut impl Write, flow: &FlowRef<'_>) -> io::Result<()> {
    write!(
        out,
        "{{\"family\":\"{}\",\"protocol\":{},\"protocol_name\":\"{}\",\"orig\":{},\"reply\":{},\
         \"status\":{},\"status_flags\":{},\"timeout\":{},\"mark\":{},\"use\":{},\"id\":{},\
         \"zone\":{},\"protoinfo\":{},",
        text::family_name(flow.family()),
        flow.protocol(),
        conntrack::proto::name(flow.protocol()),
        JsonTuple(&flow.orig),
        JsonTuple(&flow.reply),
        flow.status.bits(),
        JsonStatus(flow.status),
        Opt(flow.timeout),
        Opt(flow.mark),
        Opt(flow.use_count),
        Opt(flow.id.map(|id| id.value())),
        Opt(flow.zone),
        Opt(flow.protoinfo.map(JsonProtoInfo)),
    )?;
    writeln!(
        out,
        "\"counters_orig\":{},\"counters_reply\":{},\"timestamp\":{},\"labels\":{},\
         \"helper\":{},\"secctx\":{},\"seqadj_orig\":{},\"seqadj_reply\":{},\"synproxy\":{},\
         \"master\":{},\"event_timestamp\":{}}}",
        Opt(flow.counters_orig.map(json_counters)),
        Opt(flow.counters_reply.map(json_counters)),
        Opt(flow
            .timestamp
            .map(|t| With(move |f: &mut fmt::Formatter<'_>| {
                write!(f, "{{\"start\":{},\"stop\":{}}}", Opt(t.start), Opt(t.stop))
            }))),
        Opt(flow.labels.map(JsonLabels)),
        Opt(flow.helper.map(JsonStr)),
        Opt(flow.secctx.map(JsonStr)),
        Opt(flow.seqadj_orig.map(json_seqadj)),
        Opt(flow.seqadj_reply.map(json_seqadj)),
        Opt(flow
            .synproxy
            .map(|s| With(move |f: &mut fmt::Formatter<'_>| {
                write!(
                    f,
                    "{{\"isn\":{},\"its\":{},\"tsoff\":{}}}",
                    s.isn, s.its, s.tsoff
                )
            }))),
        Opt(flow.master.as_ref().map(JsonTuple)),
        Opt(flow.event_timestamp),
    )
}

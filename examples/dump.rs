// SPDX-License-Identifier: MIT OR Apache-2.0
//! `dump`: print a conntrack table, like `conntrack -L -o extended`.
//!
//! ```text
//! dump [--netns NAME|PATH|PID] [--id] [--labels [--labels-file FILE]] [--json | --stats-only]
//!      [--prefetch auto|always|never]
//!      [--expect | -S [table|expect]]
//!      [-f ipv4|ipv6] [-p PROTO] [-s CIDR]... [-d CIDR]... [--sport P[-P]]... [--dport P[-P]]...
//!      [--state STATE]... [-u|--status BIT]... [--no-status BIT]... [-m|--mark M[/MASK]] [-w|--zone Z]
//! ```
//!
//! The filter options are those of `conntrack -L` (same short names, same
//! values) and go through [`Conntrack::dump_filtered`]: the kernel filters
//! what it can, the library the rest; the output is the same either way.
//!
//! * default: one line per flow in exactly the format of
//!   `conntrack -L -o extended` (see [`conntrack::text`]); `--id` appends the
//!   kernel id like `conntrack -L -o extended,id`; `--labels` ends each
//!   line with the flow's labels by name like `conntrack -L -o
//!   extended,labels` (names of `--labels-file FILE`, else of the system's
//!   `connlabel.conf`: see [`conntrack::text`] for the exact field).
//! * `--json`: NDJSON, one object per flow (described below).
//! * `--stats-only`: decodes every flow into the owned model ([`conntrack::Flow`])
//!   and prints only `flows=N digest=D`, where `D` is the wrapping `u64` sum over
//!   all flows of orig source port + orig destination port + reply source port +
//!   reply destination port + status bits + timeout. Ports are the values of
//!   [`conntrack::L4::Ports`] (GRE keys included) and 0 for tuples without ports
//!   (ICMP, generic protocols); the timeout is 0 when absent.
//! * `--expect`: the expectation table instead, like `conntrack -L expect`:
//!   one line per expectation in its format ([`conntrack::text::write_expectation`]),
//!   or with `--json` one object per expectation (`master`, `tuple`, `mask`,
//!   `timeout`, `id`, `helper`, `zone`, `flags`, `flag_names`, `class`,
//!   `nat`, `function`).
//! * `-S`/`--stats`: the kernel's per-CPU counters, like `conntrack -S`
//!   (`cpu=N   \tfound=0 invalid=0 ... `, the counters the kernel sends);
//!   `-S expect` the expectation counters, like `conntrack -S expect`
//!   (`cpu=N   \texpect_new=0 expect_create=0 expect_delete=0 `). With
//!   `--json`, one object per CPU.
//! * `--prefetch`: how datagrams are received ([`conntrack::Prefetch`]):
//!   `auto` (the default: a receiving thread on tables of 4 096 flows or
//!   more), `always` or `never` (everything on one thread).
//! * `--netns` reads the table of a namespace given by `ip netns` name, path
//!   (`/proc/PID/ns/net`) or pid ([`Netns`]'s `FromStr`, as in every tool);
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
//! The library's `serde` serialization of a flow (feature `serde`), the one
//! JSON shape of every tool. Every key is always present; a field the kernel did not send is `null`.
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

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::Parser;
use conntrack::text::{self, TextOptions};
use conntrack::{Conntrack, Error, Filter, FlowRef, LabelMap, Netns, Prefetch};

#[path = "support/cli.rs"]
mod cli;

/// Print the conntrack table of a network namespace, like conntrack -L -o extended.
#[derive(Parser, Debug)]
#[command(name = "dump", version)]
struct Args {
    /// Namespace: an `ip netns` name, a path (/proc/PID/ns/net) or a pid;
    /// default: the current one.
    #[arg(long, value_name = "NAME|PATH|PID", value_parser = cli::parse_netns, default_value = "current")]
    netns: Netns,
    /// Append the flow id, like `conntrack -L -o extended,id`.
    #[arg(long, conflicts_with_all = ["json", "stats_only"])]
    id: bool,
    /// One JSON object per flow (NDJSON) with every decoded field.
    #[arg(long, conflicts_with_all = ["stats_only", "labels"])]
    json: bool,
    /// Print only `flows=N digest=D`.
    #[arg(long, conflicts_with = "labels")]
    stats_only: bool,
    /// Receive on a second thread: auto (large tables), always or never.
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = parse_prefetch)]
    prefetch: Prefetch,
    /// Zero each flow's counters as it is read (`conntrack -L -z`);
    /// unfiltered, as conntrack-tools: a filter would zero flows it hides.
    #[arg(short = 'z', long)]
    zero: bool,
    /// Which list to read: the table (default), `dying` or `unconfirmed`
    /// (`conntrack -L dying|unconfirmed`).
    #[arg(long, value_name = "LIST", default_value = "table", value_parser = ["table", "dying", "unconfirmed"])]
    list: String,
    /// List the expectation table instead (`conntrack -L expect`).
    #[arg(long, conflicts_with_all = ["id", "stats_only", "zero", "stats", "labels"])]
    expect: bool,
    /// Print the kernel's per-CPU counters (`conntrack -S`), or with
    /// `expect` the expectation counters (`conntrack -S expect`).
    #[arg(short = 'S', long = "stats", value_name = "TABLE", num_args = 0..=1,
          default_missing_value = "table", value_parser = ["table", "expect"],
          conflicts_with_all = ["id", "stats_only", "zero", "labels"])]
    stats: Option<String>,
    #[command(flatten)]
    labels: cli::LabelArgs,
    #[command(flatten)]
    filter: cli::FilterArgs,
}

fn parse_prefetch(text: &str) -> Result<Prefetch, String> {
    match text {
        "auto" => Ok(Prefetch::Auto),
        "always" => Ok(Prefetch::Always),
        "never" => Ok(Prefetch::Never),
        _ => Err(format!("{text:?}: expected auto, always or never")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Text,
    Json,
    Stats,
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

/// The digest of `--stats-only`: see the module documentation.
fn digest_of(flow: &conntrack::Flow) -> u64 {
    let port = |p: Option<u16>| u64::from(p.unwrap_or(0));
    [
        port(flow.orig.src_port()),
        port(flow.orig.dst_port()),
        port(flow.reply.src_port()),
        port(flow.reply.dst_port()),
        u64::from(flow.status.bits()),
        u64::from(flow.timeout.unwrap_or(0)),
    ]
    .into_iter()
    .fold(0u64, u64::wrapping_add)
}

fn run(
    args: &Args,
    filter: &Filter,
    labels: Option<&LabelMap>,
    out: &mut impl Write,
) -> Result<Problems, Failure> {
    let mode = if args.json {
        Mode::Json
    } else if args.stats_only {
        Mode::Stats
    } else {
        Mode::Text
    };
    let mut ct = Conntrack::open_in(&args.netns)?;
    ct.set_prefetch(args.prefetch);
    let mut problems = Problems::default();
    let (mut flows, mut digest) = (0u64, 0u64);
    let options = TextOptions {
        extended: true,
        id: args.id,
    };
    let mut each = |flow: FlowRef<'_>, out: &mut dyn Write| -> Result<(), Failure> {
        match mode {
            Mode::Json => {
                serde_json::to_writer(&mut *out, &flow).map_err(io::Error::from)?;
                out.write_all(b"\n")?;
            }
            Mode::Text => writeln!(out, "{}", cli::flow_text(&flow, options, labels))?,
            Mode::Stats => {
                // The owned model, as `Conntrack::flows` yields it.
                flows += 1;
                digest = digest.wrapping_add(digest_of(&flow.to_owned_flow()));
            }
        }
        Ok(())
    };
    if filter.is_empty() {
        // No filter: the plain dump (no pushdown plan, no kernel probe), or
        // the zeroing one, or another list.
        let mut dump = match (args.list.as_str(), args.zero) {
            ("dying", _) => ct.dump_dying()?,
            ("unconfirmed", _) => ct.dump_unconfirmed()?,
            (_, true) => ct.dump_zeroing(conntrack::Family::All)?,
            _ => ct.dump()?,
        };
        while let Some(flow) = dump.next_flow() {
            match flow {
                Ok(flow) => each(flow, out)?,
                Err(e) => problems.absorb(e)?,
            }
        }
    } else {
        let mut dump = ct.dump_filtered(filter)?;
        while let Some(flow) = dump.next_flow() {
            match flow {
                Ok(flow) => each(flow, out)?,
                Err(e) => problems.absorb(e)?,
            }
        }
    }
    if mode == Mode::Stats {
        writeln!(out, "flows={flows} digest={digest}")?;
    }
    Ok(problems)
}

/// `--expect` and `-S`: the expectation table or the kernel's counters, in
/// conntrack-tools' formats.
fn run_other(args: &Args, out: &mut impl Write) -> Result<(), Failure> {
    let mut ct = Conntrack::open_in(&args.netns)?;
    match args.stats.as_deref() {
        Some("expect") => {
            for cpu in ct.expectation_stats()? {
                if args.json {
                    json_line(out, &cpu)?;
                } else {
                    // conntrack -S expect: `cpu=%-4u\t`, then `name=%u ` each.
                    writeln!(
                        out,
                        "cpu={:<4}\texpect_new={} expect_create={} expect_delete={} ",
                        cpu.cpu, cpu.new, cpu.create, cpu.delete
                    )?;
                }
            }
        }
        Some(_) => {
            for cpu in ct.kernel_stats()?.per_cpu {
                if args.json {
                    json_line(out, &cpu)?;
                    continue;
                }
                write!(out, "cpu={:<4}\t", cpu.cpu)?;
                for &counter in conntrack::Counter::ALL {
                    if let Some(value) = counter.get(&cpu.counters) {
                        write!(out, "{}={value} ", counter.name())?;
                    }
                }
                writeln!(out)?;
            }
        }
        None => {
            for expectation in ct.expectations()? {
                if args.json {
                    json_line(out, &expectation)?;
                } else {
                    writeln!(out, "{}", text::display_expectation(&expectation))?;
                }
            }
        }
    }
    Ok(())
}

/// One JSON object and a newline.
fn json_line(out: &mut impl Write, value: &impl serde::Serialize) -> Result<(), Failure> {
    serde_json::to_writer(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = cli::parse();
    let filter = match args.filter.filter() {
        Ok(filter) => filter,
        Err(e) => cli::usage_error::<Args>(e),
    };
    if (args.zero || args.list != "table") && !filter.is_empty() {
        cli::usage_error::<Args>(
            "--zero and --list dying|unconfirmed take no filter options (as conntrack -L -z: \
             a filter would zero or hide flows it does not show)",
        );
    }
    if (args.expect || args.stats.is_some()) && (!filter.is_empty() || args.list != "table") {
        cli::usage_error::<Args>(
            "--expect and -S take no filter options and no --list (as conntrack -L expect and \
             conntrack -S)",
        );
    }
    let labels = args
        .labels
        .map()
        .unwrap_or_else(|e| cli::usage_error::<Args>(e));
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let result = if args.expect || args.stats.is_some() {
        run_other(&args, &mut out).map(|()| Problems::default())
    } else {
        run(&args, &filter, labels.as_ref(), &mut out)
    };
    let result = result.and_then(|problems| {
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

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `expect`: the expectation table, like conntrack-tools' `-L/-G/-I/-D/-F
//! expect` (the connections helpers such as FTP and SIP announce).
//!
//! ```text
//! expect [--netns NS] list [--json]
//! expect [--netns NS] get    -p PROTO --src A --dst B [--sport P --dport Q] [--zone Z] [--json]
//! expect [--netns NS] create --master-src A --master-dst B [--master-sport P --master-dport Q]
//!                            -p PROTO --src A --dst B [--sport P | --any-sport] [--dport Q]
//!                            --timeout S [--helper NAME] [--permanent] [--class N] [--zone Z]
//! expect [--netns NS] delete -p PROTO --src A --dst B [--sport P --dport Q] [--zone Z] [--yes]
//! expect [--netns NS] flush  [--helper NAME] [--yes]
//! ```
//!
//! `list` and `get` print `conntrack -L expect`'s lines (every family; conntrack
//! lists one at a time) or, with `--json`, one object per expectation.
//! `create` expects a connection related to an existing master flow, which
//! must have a helper (`conntrack -I expect`); `--any-sport` leaves the
//! source port open, as FTP's data connections do. `delete` and `flush` are
//! dry runs unless `--yes`, like every tool here that removes state: they
//! print what would go. Exit status 0 on success, 1 when the kernel refuses
//! (the message says why) or `get`/`delete` find nothing, 2 for a usage error.

use std::io::{self, Write};
use std::net::IpAddr;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Parser, Subcommand};
use conntrack::text::display_expectation;
use conntrack::{proto, Conntrack, ExpectFlags, ExpectationSpec, Netns, Tuple};

#[path = "support/cli.rs"]
mod cli;

/// The expectation table (conntrack -L/-G/-I/-D/-F expect).
#[derive(Parser, Debug)]
#[command(name = "expect", version)]
struct Args {
    /// Namespace: an `ip netns` name, a path (/proc/PID/ns/net) or a pid;
    /// default: the current one.
    #[arg(long, global = true, value_name = "NAME|PATH|PID", value_parser = cli::parse_netns, default_value = "current")]
    netns: Netns,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every expectation (conntrack -L expect).
    List {
        /// One JSON object per expectation.
        #[arg(long)]
        json: bool,
    },
    /// The expectation of one tuple (conntrack -G expect).
    Get {
        #[command(flatten)]
        tuple: TupleArgs,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Expect a connection related to an existing master flow (conntrack -I expect).
    Create(Box<CreateArgs>),
    /// Delete the expectation of one tuple (conntrack -D expect); a dry run unless --yes.
    Delete {
        #[command(flatten)]
        tuple: TupleArgs,
        /// Delete for real.
        #[arg(long)]
        yes: bool,
    },
    /// Delete every expectation, or a helper's (conntrack -F expect); a dry run unless --yes.
    Flush {
        /// Only the expectations of this helper (e.g. ftp).
        #[arg(long, value_name = "NAME")]
        helper: Option<String>,
        /// Delete for real.
        #[arg(long)]
        yes: bool,
    },
}

/// The expected connection: protocol, addresses, ports, zone.
#[derive(ClapArgs, Debug)]
struct TupleArgs {
    /// Layer-4 protocol: a name (tcp, udp, ...) or a number.
    #[arg(short = 'p', long = "proto", value_name = "PROTO", value_parser = cli::parse_protocol)]
    protocol: u8,
    /// Source address of the expected connection.
    #[arg(long, value_name = "ADDR")]
    src: IpAddr,
    /// Destination address of the expected connection.
    #[arg(long, value_name = "ADDR")]
    dst: IpAddr,
    /// Source port (protocols with ports).
    #[arg(long, value_name = "PORT")]
    sport: Option<u16>,
    /// Destination port (protocols with ports).
    #[arg(long, value_name = "PORT")]
    dport: Option<u16>,
    /// Zone.
    #[arg(long, value_name = "ZONE", default_value_t = 0)]
    zone: u16,
}

#[derive(ClapArgs, Debug)]
struct CreateArgs {
    #[command(flatten)]
    tuple: TupleArgs,
    /// Leave the source port open (any source port matches).
    #[arg(long, conflicts_with = "sport")]
    any_sport: bool,
    /// Source address of the master flow's original direction.
    #[arg(long, value_name = "ADDR")]
    master_src: IpAddr,
    /// Destination address of the master flow's original direction.
    #[arg(long, value_name = "ADDR")]
    master_dst: IpAddr,
    /// Source port of the master flow.
    #[arg(long, value_name = "PORT")]
    master_sport: Option<u16>,
    /// Destination port of the master flow.
    #[arg(long, value_name = "PORT")]
    master_dport: Option<u16>,
    /// Protocol of the master flow (default: the expected connection's).
    #[arg(long, value_name = "PROTO", value_parser = cli::parse_protocol)]
    master_proto: Option<u8>,
    /// Lifetime in seconds (a helper's own policy timeout wins for its expectations).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..))]
    timeout: u32,
    /// Attribute it to this helper (default: the master's).
    #[arg(long, value_name = "NAME")]
    helper: Option<String>,
    /// Keep it after a connection matched it (NF_CT_EXPECT_PERMANENT).
    #[arg(long)]
    permanent: bool,
    /// Helper class.
    #[arg(long, value_name = "N")]
    class: Option<u32>,
}

/// A tuple from addresses, protocol and ports: ports are required for (and
/// only accepted with) protocols that have them; `open_sport` stands for a
/// source port left open (0, masked out).
fn tuple(
    what: &str,
    protocol: u8,
    (src, dst): (IpAddr, IpAddr),
    (sport, dport): (Option<u16>, Option<u16>),
    open_sport: bool,
) -> Result<Tuple, String> {
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(format!(
            "{what}: source {src} and destination {dst} are of different address families"
        ));
    }
    let has_ports = matches!(
        protocol,
        proto::TCP | proto::UDP | proto::UDPLITE | proto::SCTP | proto::DCCP
    );
    if !has_ports {
        if sport.or(dport).is_some() {
            return Err(format!(
                "{what}: protocol {} has no ports",
                proto::name(protocol)
            ));
        }
        return Ok(Tuple::generic(protocol, src, dst));
    }
    let sport = match (sport, open_sport) {
        (Some(port), _) => port,
        (None, true) => 0,
        (None, false) => {
            return Err(format!(
                "{what}: protocol {} needs a source port",
                proto::name(protocol)
            ))
        }
    };
    let dport = dport.ok_or_else(|| {
        format!(
            "{what}: protocol {} needs a destination port",
            proto::name(protocol)
        )
    })?;
    Ok(Tuple::ports(protocol, src, sport, dst, dport))
}

impl TupleArgs {
    fn tuple(&self) -> Result<Tuple, String> {
        tuple(
            "--src/--dst/--sport/--dport",
            self.protocol,
            (self.src, self.dst),
            (self.sport, self.dport),
            false,
        )
    }
}

impl CreateArgs {
    fn spec(&self) -> Result<ExpectationSpec, String> {
        let expected = tuple(
            "--src/--dst/--sport/--dport",
            self.tuple.protocol,
            (self.tuple.src, self.tuple.dst),
            (self.tuple.sport, self.tuple.dport),
            self.any_sport,
        )?;
        let master = tuple(
            "--master-src/--master-dst/--master-sport/--master-dport",
            self.master_proto.unwrap_or(self.tuple.protocol),
            (self.master_src, self.master_dst),
            (self.master_sport, self.master_dport),
            false,
        )?;
        let mut spec = ExpectationSpec::new(master, expected, self.timeout).zone(self.tuple.zone);
        if self.any_sport {
            spec = spec.any_source_port();
        }
        if self.permanent {
            spec = spec.flags(ExpectFlags::PERMANENT);
        }
        if let Some(class) = self.class {
            spec = spec.class(class);
        }
        if let Some(helper) = &self.helper {
            spec = spec.helper(helper.clone());
        }
        Ok(spec)
    }
}

fn print<S: AsRef<str>>(
    out: &mut impl Write,
    expectation: &conntrack::Expectation<S>,
    json: bool,
) -> io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, expectation).map_err(io::Error::from)?;
        writeln!(out)
    } else {
        writeln!(out, "{}", display_expectation(expectation))
    }
}

/// What the command did: success, or a failure already explained.
enum Outcome {
    Done,
    NotFound(String),
}

/// The command with its arguments checked: what to ask the kernel.
enum Request<'a> {
    List { json: bool },
    Get { tuple: Tuple, zone: u16, json: bool },
    Create(ExpectationSpec),
    Delete { tuple: Tuple, zone: u16, yes: bool },
    Flush { helper: Option<&'a str>, yes: bool },
}

/// Checks the arguments before any socket is opened; a usage error names
/// the options.
fn request(command: &Command) -> Result<Request<'_>, String> {
    Ok(match command {
        Command::List { json } => Request::List { json: *json },
        Command::Get { tuple, json } => Request::Get {
            tuple: tuple.tuple()?,
            zone: tuple.zone,
            json: *json,
        },
        Command::Create(create) => Request::Create(create.spec()?),
        Command::Delete { tuple, yes } => Request::Delete {
            tuple: tuple.tuple()?,
            zone: tuple.zone,
            yes: *yes,
        },
        Command::Flush { helper, yes } => {
            if let Some(helper) = helper.as_deref().filter(|h| h.is_empty() || h.len() > 15) {
                return Err(format!(
                    "--helper {helper:?}: a helper name of 1 to 15 bytes (the kernel's limit)"
                ));
            }
            Request::Flush {
                helper: helper.as_deref(),
                yes: *yes,
            }
        }
    })
}

fn run(
    netns: &Netns,
    request: Request<'_>,
    out: &mut impl Write,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let mut ct = Conntrack::open_in(netns)?;
    match request {
        Request::List { json } => {
            for expectation in ct.expectations()? {
                print(out, &expectation, json)?;
            }
        }
        Request::Get { tuple, zone, json } => match ct.get_expectation(&tuple, zone)? {
            Some(expectation) => print(out, &expectation, json)?,
            None => return Ok(Outcome::NotFound("no such expectation".into())),
        },
        Request::Create(spec) => {
            ct.create_expectation(&spec)?;
            writeln!(out, "created=1")?;
        }
        Request::Delete { tuple, zone, yes } => {
            let Some(expectation) = ct.get_expectation(&tuple, zone)? else {
                return Ok(Outcome::NotFound("no such expectation".into()));
            };
            print(out, &expectation, false)?;
            if yes {
                // Only the expectation just shown: by its id.
                let gone = ct.delete_expectation(&tuple, zone, expectation.id)?;
                writeln!(out, "deleted={}", u8::from(gone))?;
            } else {
                writeln!(out, "deleted=0 (dry run: add --yes to delete)")?;
            }
        }
        Request::Flush { helper, yes } => {
            let matching: Vec<_> = ct
                .expectations()?
                .into_iter()
                .filter(|e| helper.is_none() || e.helper.as_deref() == helper)
                .collect();
            if yes {
                ct.flush_expectations(helper)?;
                writeln!(out, "flushed={}", matching.len())?;
            } else {
                for expectation in &matching {
                    print(out, expectation, false)?;
                }
                writeln!(
                    out,
                    "flushed=0 (dry run: {} would go; add --yes to flush)",
                    matching.len()
                )?;
            }
        }
    }
    Ok(Outcome::Done)
}

fn main() -> ExitCode {
    cli::quiet_on_closed_pipe();
    let args: Args = cli::parse();
    let request = request(&args.command).unwrap_or_else(|e| cli::usage_error::<Args>(e));
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = run(&args.netns, request, &mut out);
    let _ = out.flush();
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::NotFound(why)) => {
            eprintln!("expect: {why}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("expect: {e}");
            ExitCode::FAILURE
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `events`: the `conntrack -E` equivalent. Prints the flows the kernel
//! creates, updates and destroys, as they happen.
//!
//! ```text
//! events [--netns NAME|PATH|PID] [-e NEW,UPDATE,DESTROY] [--json] [--extended] [--id]
//!        [--labels [--labels-file FILE]]
//!        [--expect | --with-expect] [--resync] [--buffer BYTES]
//!        [-f ipv4|ipv6] [-p PROTO] [-s CIDR]... [-d CIDR]... [--sport P[-P]]... [--dport P[-P]]...
//!        [--state STATE]... [-u|--status BIT]... [--no-status BIT]... [-m|--mark M[/MASK]] [-w|--zone Z]
//! ```
//!
//! * default: one line per event in `conntrack -E`'s format: the event type
//!   right-aligned in nine columns (`    [NEW]`, ` [UPDATE]`, `[DESTROY]`),
//!   then the flow as `conntrack -L` prints it ([`conntrack::text`]), and for
//!   a change made over netlink ` [USERSPACE] portid=P progname=NAME`;
//!   `--extended` and `--id` as `conntrack -E -o extended,id`, `--labels` as
//!   `-o labels` (the flow's labels by name at the end of the flow, names of
//!   `--labels-file FILE` or the system's `connlabel.conf`).
//! * `--expect`: expectation events instead of flow events, like `conntrack
//!   -E expect`: the event type as above, then the expectation as `conntrack
//!   -L expect` prints it ([`conntrack::text::write_expectation`]), e.g.
//!   `    [NEW] 300 proto=6 src=10.0.0.1 dst=10.0.0.2 sport=0 dport=50000
//!   mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535
//!   master-src=10.0.0.1 master-dst=10.0.0.2 sport=40000 dport=21 class=0
//!   helper=ftp` (one line). `--with-expect`: both, in the kernel's order.
//!   The filter options select flow events only.
//! * `--json`: NDJSON, `{"event": "new"|"update"|"destroy", "origin_portid",
//!   "flow"}` with the flow object `dump --json` prints; an expectation event
//!   has `"expectation"` (master, tuple, mask, timeout, id, helper, zone,
//!   flags, flag_names, class, nat, function) instead of `"flow"`.
//! * `-e`/`--event-mask`: the event types to subscribe to (comma-separated,
//!   any case, `ALL`); default all three.
//! * The filter options are those of `conntrack -E` and `dump` (same names);
//!   events are matched in userspace (an UPDATE event carries only what
//!   changed, so a `--state` filter sees the state only when it changed).
//! * When the kernel dropped events because this subscriber's receive queue
//!   was full (`ENOBUFS`), an explicit line says so and how many were lost:
//!   ` [LOST] N events dropped by the kernel (receive queue full)` or
//!   `{"event": "lost", "dropped": N|null}`. The stream goes on. With
//!   `--resync` the table is then dumped again (subscription first, so nothing
//!   falls between): every flow as a ` [RESYNC]` line (JSON: `{"event":
//!   "resync", "flow"}`), then `[RESYNCED] N flows` (`{"event": "resynced",
//!   "flows": N}`); `--resync` also does this once at start. With expectation
//!   events, the expectations are listed the same way (` [RESYNC]` lines,
//!   JSON `{"event": "resync", "expectation"}`, then `[RESYNCED] N
//!   expectations`, `{"event": "resynced", "expectations": N}`).
//! * `--buffer BYTES`: the socket's receive buffer (default 8 MiB; forced past
//!   `rmem_max` when privileged). Smaller loses events sooner.
//!
//! Runs until interrupted. Output is flushed after every event; a closed pipe
//! (`events | head`) ends it quietly. Exit status 1 if the subscription fails,
//! 2 for a usage error. Needs `CAP_NET_ADMIN` in the namespace.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use conntrack::events::{Event, EventItem, EventMask, EventOptions, ExpectationEvent};
use conntrack::text::{self, TextOptions};
use conntrack::{Filter, FlowRef, LabelMap, Netns};
use serde::Serialize;

#[path = "support/cli.rs"]
mod cli;

/// Print conntrack events as they happen, like conntrack -E.
#[derive(Parser, Debug)]
#[command(name = "events", version)]
struct Args {
    /// Namespace: an `ip netns` name, a path (/proc/PID/ns/net) or a pid;
    /// default: the current one.
    #[arg(long, value_name = "NAME|PATH|PID", value_parser = cli::parse_netns, default_value = "current")]
    netns: Netns,
    /// Event types, comma-separated: NEW, UPDATE, DESTROY or ALL.
    #[arg(short = 'e', long = "event-mask", value_name = "TYPES", default_value = "ALL", value_parser = parse_mask)]
    mask: EventMask,
    /// One JSON object per event (NDJSON).
    #[arg(long, conflicts_with_all = ["extended", "id", "labels"])]
    json: bool,
    /// Extended format (layer-3 family first), like `conntrack -E -o extended`.
    #[arg(long)]
    extended: bool,
    /// Append the flow id, like `conntrack -E -o id`.
    #[arg(long)]
    id: bool,
    /// Expectation events instead of flow events (`conntrack -E expect`).
    #[arg(long, conflicts_with = "with_expect")]
    expect: bool,
    /// Flow events and expectation events.
    #[arg(long)]
    with_expect: bool,
    /// Dump the table at start and after lost events (subscription first).
    #[arg(long)]
    resync: bool,
    /// Receive buffer in bytes (4096 to 1 GiB).
    #[arg(long, value_name = "BYTES", default_value = "8388608", value_parser = clap::value_parser!(u32).range(4096..=1 << 30))]
    buffer: u32,
    #[command(flatten)]
    labels: cli::LabelArgs,
    #[command(flatten)]
    filter: cli::FilterArgs,
}

fn parse_mask(text: &str) -> Result<EventMask, String> {
    let mut mask = EventMask::empty();
    for part in text.split(',') {
        mask |= match part.trim().to_ascii_uppercase().as_str() {
            "NEW" => EventMask::NEW,
            "UPDATE" => EventMask::UPDATE,
            "DESTROY" => EventMask::DESTROY,
            "ALL" => EventMask::NEW | EventMask::UPDATE | EventMask::DESTROY,
            _ => {
                return Err(format!(
                    "unknown event type {part:?} (NEW, UPDATE, DESTROY or ALL, comma-separated)"
                ))
            }
        };
    }
    Ok(mask)
}

/// The JSON line that ends a resynchronisation: `{"event":"resynced","flows":N}`
/// or `{"event":"resynced","expectations":N}`.
#[derive(Serialize)]
#[serde(tag = "event", rename = "resynced")]
struct Resynced {
    #[serde(skip_serializing_if = "Option::is_none")]
    flows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expectations: Option<u64>,
}

struct Printer {
    json: bool,
    options: TextOptions,
    labels: Option<LabelMap>,
    filter: Filter,
    out: std::io::StdoutLock<'static>,
}

impl Printer {
    fn event(&mut self, event: &Event<&str>) -> std::io::Result<()> {
        if !self.filter.matches(&event.flow) {
            return Ok(());
        }
        if self.json {
            serde_json::to_writer(&mut self.out, event)?;
            self.out.write_all(b"\n")?;
        } else {
            let kind = format!("[{}]", event.kind.name());
            write!(
                self.out,
                "{kind:>9} {}",
                cli::flow_text(&event.flow, self.options, self.labels.as_ref())
            )?;
            // Caused by a netlink request: conntrack -E names the process
            // whose socket it was (the port id is the pid of a process's
            // first netlink socket; the name is its `comm`).
            if event.origin_portid != 0 {
                write!(self.out, " [USERSPACE] portid={}", event.origin_portid)?;
                let comm = std::fs::read_to_string(format!("/proc/{}/comm", event.origin_portid));
                if let Ok(comm) = comm {
                    write!(self.out, " progname={}", comm.trim_end())?;
                }
            }
            writeln!(self.out)?;
        }
        self.out.flush()
    }

    fn expectation(&mut self, event: &ExpectationEvent<&str>) -> std::io::Result<()> {
        if self.json {
            serde_json::to_writer(&mut self.out, event)?;
            self.out.write_all(b"\n")?;
        } else {
            // conntrack -E expect prints no [USERSPACE] part.
            let kind = format!("[{}]", event.kind.name());
            writeln!(
                self.out,
                "{kind:>9} {}",
                text::display_expectation(&event.expectation)
            )?;
        }
        self.out.flush()
    }

    fn resync_expectations(
        &mut self,
        expectations: &[conntrack::Expectation],
    ) -> std::io::Result<()> {
        for expectation in expectations {
            if self.json {
                serde_json::to_writer(
                    &mut self.out,
                    &serde_json::json!({ "event": "resync", "expectation": expectation }),
                )?;
                self.out.write_all(b"\n")?;
            } else {
                writeln!(
                    self.out,
                    " [RESYNC] {}",
                    text::display_expectation(expectation)
                )?;
            }
        }
        let n = expectations.len();
        if self.json {
            let line = Resynced {
                flows: None,
                expectations: Some(n as u64),
            };
            serde_json::to_writer(&mut self.out, &line)?;
            self.out.write_all(b"\n")?;
        } else {
            writeln!(self.out, "[RESYNCED] {n} expectations")?;
        }
        self.out.flush()
    }

    fn lost(&mut self, dropped: Option<u64>) -> std::io::Result<()> {
        if self.json {
            serde_json::to_writer(&mut self.out, &EventItem::<&str>::Lost { dropped })?;
            self.out.write_all(b"\n")?;
        } else {
            let count = dropped.map_or("some".to_owned(), |n| n.to_string());
            writeln!(
                self.out,
                "   [LOST] {count} events dropped by the kernel (receive queue full)"
            )?;
        }
        self.out.flush()
    }

    fn resync_flow(&mut self, flow: &FlowRef<'_>) -> std::io::Result<()> {
        if !self.filter.matches(flow) {
            return Ok(());
        }
        if self.json {
            serde_json::to_writer(
                &mut self.out,
                &serde_json::json!({ "event": "resync", "flow": flow }),
            )?;
            self.out.write_all(b"\n")
        } else {
            writeln!(
                self.out,
                " [RESYNC] {}",
                cli::flow_text(flow, self.options, self.labels.as_ref())
            )
        }
    }

    fn resynced(&mut self, flows: u64) -> std::io::Result<()> {
        if self.json {
            let line = Resynced {
                flows: Some(flows),
                expectations: None,
            };
            serde_json::to_writer(&mut self.out, &line)?;
            self.out.write_all(b"\n")?;
        } else {
            writeln!(self.out, "[RESYNCED] {flows} flows")?;
        }
        self.out.flush()
    }
}

fn resync(
    events: &mut conntrack::events::Events,
    printer: &mut Printer,
) -> Result<(), Box<dyn std::error::Error>> {
    if !events.mask().is_empty() {
        let mut written = Ok(());
        let summary = events.resync_with(|flow| {
            if written.is_ok() {
                written = printer.resync_flow(&flow);
            }
        })?;
        written?;
        printer.resynced(summary.flows)?;
    } else {
        events.discard_queued()?;
    }
    if !events.expectation_mask().is_empty() {
        // After the flows: expectation events queued meanwhile follow.
        let expectations = events.table()?.expectations()?;
        printer.resync_expectations(&expectations)?;
    }
    Ok(())
}

fn run(
    args: Args,
    filter: Filter,
    labels: Option<LabelMap>,
) -> Result<(), Box<dyn std::error::Error>> {
    let (flows, expectations) = match (args.expect, args.with_expect) {
        (true, _) => (EventMask::empty(), args.mask),
        (false, true) => (args.mask, args.mask),
        (false, false) => (args.mask, EventMask::empty()),
    };
    let mut events = EventOptions::new(flows)
        .expectations(expectations)
        .receive_buffer(args.buffer as usize)
        .open_in(&args.netns)?;
    let mut printer = Printer {
        json: args.json,
        options: TextOptions {
            extended: args.extended,
            id: args.id,
        },
        labels,
        filter,
        out: std::io::stdout().lock(),
    };
    if args.resync {
        resync(&mut events, &mut printer)?;
    }
    loop {
        let lost = match events.next_event() {
            Ok(EventItem::Event(event)) => {
                printer.event(&event)?;
                None
            }
            Ok(EventItem::Expectation(event)) => {
                printer.expectation(&event)?;
                None
            }
            Ok(EventItem::Lost { dropped }) => Some(dropped),
            Ok(_) => None,
            Err(conntrack::Error::Decode(e)) => {
                eprintln!("events: skipped an event that did not decode: {e}");
                None
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(dropped) = lost {
            printer.lost(dropped)?;
            if args.resync {
                resync(&mut events, &mut printer)?;
            }
        }
    }
}

fn main() -> ExitCode {
    cli::quiet_on_closed_pipe();
    let args: Args = cli::parse();
    if args.mask.is_empty() {
        cli::usage_error::<Args>("--event-mask selects no event type");
    }
    let filter = match args.filter.filter() {
        Ok(filter) => filter,
        Err(e) => cli::usage_error::<Args>(e),
    };
    if args.expect && !filter.is_empty() {
        cli::usage_error::<Args>(
            "--expect takes no filter options (they select flow events; use --with-expect \
             to see both)",
        );
    }
    let labels = args
        .labels
        .map()
        .unwrap_or_else(|e| cli::usage_error::<Args>(e));
    match run(args, filter, labels) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("events: {e}");
            ExitCode::FAILURE
        }
    }
}

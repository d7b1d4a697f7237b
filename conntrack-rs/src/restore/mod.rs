// SPDX-License-Identifier: MIT OR Apache-2.0
//! Restoring a saved table: every flow of a snapshot created again, pipelined,
//! with what could not be created reported flow by flow.
//!
//! A snapshot is text, one flow per line, in any of three formats (told
//! apart line by line, so a file may even mix them):
//! * the NDJSON of `dump --json` (one object per line, see `examples/dump.rs`;
//!   needs the `serde` feature): everything the kernel lets a create set comes
//!   back;
//! * conntrack-tools' text, `conntrack -L -o extended` (or plain `conntrack -L`,
//!   `-o id`, `-o labels`): what that text shows comes back;
//! * conntrack-tools' snapshot, `conntrack -L -o save` (the `-A ...` command
//!   lines `conntrack -R` replays): what those lines give comes back (that
//!   format carries no mark, labels or helper: conntrack does not print them).
//!
//! [`SavedTable`] reads one, [`Conntrack::restore`] creates the flows. From a
//! saved flow to a create ([`FlowSpec::from_flow`]):
//!
//! | restored | how |
//! |---|---|
//! | tuples, zone, directional zones, mark, labels, helper, protocol state (TCP state, window scales and flags; SCTP state and tags), sequence adjustment, SYN proxy state | as saved |
//! | timeout | the remaining timeout as saved (or [`RestoreOptions::timeout`]); the clock restarts |
//! | status bits userspace may set (`SEEN_REPLY`, `ASSURED`, `FIXED_TIMEOUT`, `HELPER`) | as saved |
//! | NAT (`SRC_NAT`, `DST_NAT`) | a NAT binding to the reply tuple's addresses and ports ([`NatTarget`]): the kernel derives the same reply tuple and sets the NAT bits itself. A flow that passed the NAT hooks untranslated (`*_NAT_DONE` only) gets a null binding. In text, which shows no status bits, a reply tuple that is not the reverse of the original means NAT |
//! | `EXPECTED` and the master tuple | the flow is created after every other flow, related to its master (which must exist by then) |
//!
//! Not restored, because the kernel sets them and takes no value for them:
//! counters, timestamps, the flow id, the use count, the security context,
//! `OFFLOAD`/`HW_OFFLOAD` and `CONFIRMED`/`DYING`. Every flow created over
//! ctnetlink carries a (zero) SYN proxy state, also one saved without. Text
//! lacks what conntrack does not print: `FIXED_TIMEOUT`, window scales and
//! TCP flags, SCTP verification tags (restored as 0, since the kernel takes
//! an SCTP state only with both tags), sequence adjustment, the master tuple.
//!
//! A line that does not parse and a flow the kernel refuses (e.g. `EEXIST`:
//! it exists already; `ENOENT`: its master is gone) are both
//! [`RestoreFailure`]s, handed to the caller one by one as they happen; the
//! other flows are created regardless.

mod json;
mod save;
mod text;

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

use crate::conntrack::Conntrack;
use crate::error::{Error, Result};
use crate::flow::{Flow, ProtoInfo, TcpFlags, Tuple, L4};
use crate::labelmap::LabelMap;
use crate::request::{put_flow_spec, FlowSpec, NatTarget, WriteMode};
use crate::status::Status;
use crate::wire::Encoder;

pub use self::save::parse_save;
pub use self::text::parse_text;

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use self::json::parse_json;

/// The operation of the [`Error::Io`] [`Conntrack::restore`] returns when
/// reading the saved table fails.
pub const READ_SAVED_TABLE: &str = "read saved table";

/// Creates per datagram (their errors must fit in the receive queue).
const BATCH: usize = 128;

/// One flow read from a saved table: the create that restores it and the
/// line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFlow {
    /// 1-based line number in the saved table (or the caller's own index).
    pub line: usize,
    /// The create that brings the flow back.
    pub spec: FlowSpec,
}

/// A flow of a saved table that was not restored: the line did not parse, or
/// the kernel refused to create it.
#[derive(Debug)]
pub struct RestoreFailure {
    /// 1-based line number in the saved table.
    pub line: usize,
    /// The flow's original tuple, when the line parsed.
    pub orig: Option<Tuple>,
    /// Why: [`Error::InvalidInput`] for a line that does not parse,
    /// [`Error::Kernel`] (with the errno) for a refused create.
    pub error: Error,
}

impl RestoreFailure {
    /// The kernel's errno for a refused create (`None` for a parse error).
    pub fn errno(&self) -> Option<i32> {
        match &self.error {
            Error::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

impl fmt::Display for RestoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        if let Some(orig) = &self.orig {
            write!(
                f,
                "{} src={} dst={}",
                crate::flow::proto::name(orig.protocol),
                orig.src,
                orig.dst
            )?;
            if let L4::Ports { src, dst } = orig.l4 {
                write!(f, " sport={src} dport={dst}")?;
            }
            f.write_str(": ")?;
        }
        match &self.error {
            // A line that does not parse: the reason alone.
            Error::InvalidInput(reason) => f.write_str(reason),
            other => write!(f, "{other}"),
        }
    }
}

/// How [`Conntrack::restore`] creates the flows.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// Give every flow this timeout (seconds) instead of its saved one.
    pub timeout: Option<u32>,
    /// Create every flow in this zone instead of its saved one (like
    /// `conntrack -L -w 11 -o save | sed ... | conntrack -R -`).
    pub zone: Option<u16>,
    /// Only read and check every flow (encode each create); send nothing.
    pub dry_run: bool,
}

impl RestoreOptions {
    /// Every flow with `seconds` as its timeout.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout = Some(seconds);
        self
    }

    /// Every flow in `zone`.
    pub fn zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }

    /// Read and check only.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// What a restore did.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoreReport {
    /// Flows read (lines that parsed).
    pub read: u64,
    /// Flows created (in a dry run: flows that would be sent).
    pub created: u64,
    /// Flows not sent: lines that did not parse, or flows no create can
    /// describe (e.g. without a timeout: an offloaded flow).
    pub invalid: u64,
    /// Creates the kernel refused, by errno (`EEXIST`: the flow exists).
    pub failed: BTreeMap<i32, u64>,
}

impl RestoreReport {
    /// Flows not restored: invalid ones and refused creates.
    pub fn failed_total(&self) -> u64 {
        self.invalid + self.failed.values().sum::<u64>()
    }
}

/// Reads a saved table line by line (see the [module docs](self)): each
/// non-empty line that is not a `#` comment yields a [`SavedFlow`] or, when it
/// does not parse, a [`RestoreFailure`] naming the line. Reading stops with an
/// I/O error only if the source itself fails.
pub struct SavedTable<R> {
    reader: R,
    labels: Option<LabelMap>,
    line: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> SavedTable<R> {
    /// Reads `reader`; label names in text lines are looked up in `labels`
    /// (`LabelMap::system()` is conntrack's own `connlabel.conf`).
    pub fn new(reader: R, labels: Option<LabelMap>) -> Self {
        SavedTable {
            reader,
            labels,
            line: 0,
            buf: Vec::new(),
        }
    }
}

impl<R: BufRead> Iterator for SavedTable<R> {
    type Item = std::io::Result<std::result::Result<SavedFlow, RestoreFailure>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let length = match read_line(&mut self.reader, &mut self.buf) {
                Ok(None) => return None,
                Ok(Some(length)) => length,
                Err(e) => return Some(Err(e)),
            };
            self.line += 1;
            let line = self.line;
            if length > MAX_LINE {
                return Some(Ok(Err(RestoreFailure {
                    line,
                    orig: None,
                    error: Error::InvalidInput(format!(
                        "a line of {length} bytes: no saved flow is longer than {MAX_LINE}"
                    )),
                })));
            }
            let read = match std::str::from_utf8(&self.buf) {
                Ok(text) => saved_line(line, text, self.labels.as_ref()),
                Err(e) => Some(Err(RestoreFailure {
                    line,
                    orig: None,
                    error: Error::InvalidInput(format!(
                        "not UTF-8 (invalid byte at column {})",
                        e.valid_up_to() + 1
                    )),
                })),
            };
            if let Some(read) = read {
                return Some(Ok(read));
            }
        }
    }
}

/// The longest line [`SavedTable`] reads (a `dump --json` line of a flow with
/// every field is about 1.5 KiB); a longer one is a failure of its own and
/// is never held in memory.
pub const MAX_LINE: usize = 64 * 1024;

/// Reads one line into `buf` (without more than [`MAX_LINE`] bytes of it):
/// `None` at the end of the input, else the line's whole length.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    buf.clear();
    let mut length = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok((length > 0).then_some(length));
        }
        let (chunk, ends) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..=at], true),
            None => (available, false),
        };
        let taken = chunk.len();
        if length + taken <= MAX_LINE {
            buf.extend_from_slice(chunk);
        }
        length += taken;
        reader.consume(taken);
        if ends {
            return Ok(Some(length));
        }
    }
}

/// Reads line number `line` of a saved table, as [`SavedTable`] does: `None`
/// for an empty line or a `#` comment, else the flow's create or why the line
/// does not parse.
pub fn saved_line(
    line: usize,
    text: &str,
    labels: Option<&LabelMap>,
) -> Option<std::result::Result<SavedFlow, RestoreFailure>> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    Some(
        parse_line(text, labels)
            .map(|flow| SavedFlow {
                line,
                spec: FlowSpec::from_flow(&flow),
            })
            .map_err(|error| RestoreFailure {
                line,
                orig: None,
                error,
            }),
    )
}

/// Parses one line of a saved table: a `dump --json` object (a line starting
/// with `{`), a line of `conntrack -L -o save` (starting with `-`) or a line
/// of `conntrack -L` text.
pub fn parse_line(line: &str, labels: Option<&LabelMap>) -> Result<Flow> {
    let line = line.trim();
    if line.starts_with('-') {
        return parse_save(line, labels);
    }
    if line.starts_with('{') {
        #[cfg(feature = "serde")]
        return parse_json(line);
        #[cfg(not(feature = "serde"))]
        return Err(Error::InvalidInput(
            "a JSON line (dump --json): reading JSON needs the crate's `serde` feature".into(),
        ));
    }
    parse_text(line, labels)
}

impl FlowSpec {
    /// The create that brings `flow` back as it was saved (dumped), as far as
    /// the kernel lets a create set it: see the table in the
    /// [`restore`](crate::restore) module docs.
    pub fn from_flow<S: AsRef<str>>(flow: &Flow<S>) -> FlowSpec {
        let mut spec = FlowSpec::new(flow.orig).reply(flow.reply);
        spec.timeout = flow.timeout;
        // Bits beyond the kernel's 16 (a newer kernel's) cannot be sent.
        let settable = Status::from_bits_retain(
            (flow.status & !Status::UNCHANGEABLE).bits() & crate::status::KNOWN_STATUS_BITS,
        );
        if !settable.is_empty() {
            spec = spec.status(settable);
        }
        spec.mark = flow.mark;
        spec.zone = flow.zone;
        spec.labels = flow.labels.filter(|l| l.0 != 0);
        spec.helper = flow.helper.as_ref().map(|h| h.as_ref().to_owned());
        spec.seqadj_orig = flow.seqadj_orig;
        spec.seqadj_reply = flow.seqadj_reply;
        spec.synproxy = flow.synproxy;
        spec.master = flow.master;
        spec.protoinfo = flow.protoinfo.map(|info| match info {
            // A dump sends the flags with mask 0; a create applies only the
            // mask's bits, so ask for every bit to be set as saved.
            ProtoInfo::Tcp(mut tcp) => {
                tcp.flags_orig = tcp.flags_orig.map(|(flags, _)| (flags, TcpFlags::all()));
                tcp.flags_reply = tcp.flags_reply.map(|(flags, _)| (flags, TcpFlags::all()));
                ProtoInfo::Tcp(tcp)
            }
            // The kernel takes SCTP state only with both tags; text has no
            // tags, so they become 0 (the kernel then learns nothing from them).
            ProtoInfo::Sctp(mut sctp) if sctp.state.is_some() => {
                sctp.vtag_orig = sctp.vtag_orig.or(Some(0));
                sctp.vtag_reply = sctp.vtag_reply.or(Some(0));
                ProtoInfo::Sctp(sctp)
            }
            other => other,
        });
        let nat = flow.status & (Status::SRC_NAT | Status::DST_NAT);
        if !nat.is_empty() {
            // The kernel derives the reply tuple from the bindings.
            spec.reply = flow.orig.reversed();
            spec.reply.zone = flow.reply.zone;
            if nat.contains(Status::DST_NAT) {
                spec.dnat = Some(NatTarget {
                    addr: Some(flow.reply.src),
                    port: nat_port(&flow.reply, true),
                });
            }
            if nat.contains(Status::SRC_NAT) {
                spec.snat = Some(NatTarget {
                    addr: Some(flow.reply.dst),
                    port: nat_port(&flow.reply, false),
                });
            }
        } else if flow
            .status
            .intersects(Status::SRC_NAT_DONE | Status::DST_NAT_DONE)
        {
            spec.snat = Some(NatTarget::default());
        }
        spec
    }
}

/// The port (ICMP: echo id) a NAT binding maps to, read from the reply tuple:
/// its source for destination NAT, its destination for source NAT.
fn nat_port(reply: &Tuple, dnat: bool) -> Option<u16> {
    match reply.l4 {
        L4::Ports { src, dst } => Some(if dnat { src } else { dst }),
        L4::Icmp { id, .. } if !dnat => Some(id),
        _ => None,
    }
}

impl Conntrack {
    /// Creates every flow of `flows` (e.g. a [`SavedTable`]), pipelined: many
    /// creates per datagram on the handle's second socket, only errors coming
    /// back. Flows with a master are created last, after every other flow.
    ///
    /// Each flow not restored goes to `on_failure` as it happens (a
    /// `RestoreFailure` item of `flows`, or a create the kernel refused:
    /// `EEXIST` for a flow that exists, nothing is overwritten); the other
    /// flows are created regardless. With labels, each created flow is read
    /// back: where no ruleset reserved label space the kernel drops them
    /// silently, reported as `ENOSPC` (the flow exists, without its labels).
    ///
    /// Errors: those of the socket, and the first I/O error of `flows`
    /// ([`Error::Io`] with the operation [`READ_SAVED_TABLE`]); the flows sent
    /// before it stay created.
    pub fn restore<I>(
        &mut self,
        flows: I,
        options: RestoreOptions,
        on_failure: impl FnMut(RestoreFailure),
    ) -> Result<RestoreReport>
    where
        I: IntoIterator<Item = std::io::Result<std::result::Result<SavedFlow, RestoreFailure>>>,
    {
        let mut run = Restoring {
            pipeline: if options.dry_run {
                None
            } else {
                Some(self.pipeline()?)
            },
            sent: Vec::new(),
            scratch: Encoder::new(),
            report: RestoreReport::default(),
            on_failure,
        };
        let mut with_master = Vec::new();
        for item in flows {
            let item = item.map_err(|source| Error::Io {
                operation: READ_SAVED_TABLE,
                source,
            });
            let mut saved = match item? {
                Ok(saved) => saved,
                Err(failure) => {
                    run.invalid(failure);
                    continue;
                }
            };
            run.report.read += 1;
            if let Some(timeout) = options.timeout {
                saved.spec.timeout = Some(timeout);
            }
            if let Some(zone) = options.zone {
                saved.spec.zone = Some(zone);
            }
            if saved.spec.master.is_some() {
                with_master.push(saved);
            } else {
                run.push(self, saved)?;
            }
        }
        // Every master exists (or failed) before the first related flow.
        run.finish_batch(self)?;
        for saved in with_master {
            run.push(self, saved)?;
        }
        run.finish_batch(self)?;
        if let Some(pipeline) = run.pipeline.take() {
            self.keep_pipeline(pipeline);
        }
        Ok(run.report)
    }
}

/// One restore in progress: the pipeline (none in a dry run), the creates
/// of the batch in flight, and what happened so far.
struct Restoring<F> {
    pipeline: Option<crate::delete::Pipeline>,
    sent: Vec<Sent>,
    /// Where a dry run encodes each create, to check it.
    scratch: Encoder,
    report: RestoreReport,
    on_failure: F,
}

/// A create in the batch in flight.
struct Sent {
    seq: u32,
    line: usize,
    spec: FlowSpec,
}

impl<F: FnMut(RestoreFailure)> Restoring<F> {
    /// A flow that is not sent: its line did not parse, or no create can
    /// describe it.
    fn invalid(&mut self, failure: RestoreFailure) {
        self.report.invalid += 1;
        (self.on_failure)(failure);
    }

    /// Appends the create of `saved` to the batch (in a dry run: encodes it
    /// only), sending the batch when it is full.
    fn push(&mut self, ct: &mut Conntrack, saved: SavedFlow) -> Result<()> {
        let pushed = match self.pipeline.as_mut() {
            Some(pipeline) => pipeline.push_spec(&saved.spec, WriteMode::Create).map(Some),
            None => {
                self.scratch.clear();
                put_flow_spec(&mut self.scratch, &saved.spec, WriteMode::Create).map(|()| None)
            }
        };
        match pushed {
            Err(error) => self.invalid(RestoreFailure {
                line: saved.line,
                orig: Some(saved.spec.orig),
                error,
            }),
            Ok(None) => self.report.created += 1,
            Ok(Some(seq)) => {
                self.sent.push(Sent {
                    seq,
                    line: saved.line,
                    spec: saved.spec,
                });
                if self.sent.len() >= BATCH {
                    self.finish_batch(ct)?;
                }
            }
        }
        Ok(())
    }

    /// Sends the batch, reports each refused create, and reads back the
    /// labelled flows that were created.
    fn finish_batch(&mut self, ct: &mut Conntrack) -> Result<()> {
        let Some(pipeline) = self.pipeline.as_mut() else {
            return Ok(());
        };
        let mut refused: Vec<(u32, i32)> = Vec::new();
        pipeline.flush_each(|seq, errno| refused.push((seq, errno)))?;
        refused.sort_unstable();
        for sent in self.sent.drain(..) {
            let errno = refused
                .binary_search_by_key(&sent.seq, |&(seq, _)| seq)
                .ok()
                .map(|i| refused[i].1);
            let error = match errno {
                Some(errno) => Error::Kernel {
                    operation: "restore flow",
                    errno,
                    message: None,
                    offset: None,
                },
                None if sent.spec.labels.is_some() => {
                    match ct.check_labels_kept(&sent.spec, "restore flow") {
                        Ok(()) => {
                            self.report.created += 1;
                            continue;
                        }
                        Err(error) => error,
                    }
                }
                None => {
                    self.report.created += 1;
                    continue;
                }
            };
            if let Some(errno) = error.errno() {
                *self.report.failed.entry(errno).or_insert(0) += 1;
            }
            (self.on_failure)(RestoreFailure {
                line: sent.line,
                orig: Some(sent.spec.orig),
                error,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_one_by_one_and_a_huge_one_is_refused_without_being_held() {
        let good = "udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 [UNREPLIED] \
                    src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=0 use=1";
        let mut input = Vec::new();
        input.extend_from_slice(good.as_bytes());
        input.extend_from_slice(b"\n\n# comment\n");
        input.extend(std::iter::repeat(b'x').take(MAX_LINE * 3));
        input.extend_from_slice(b"\n\xff\n");
        input.extend_from_slice(good.as_bytes()); // no newline at the end
                                                  // A reader with a small buffer: lines span many fill_buf calls.
        let reader = std::io::BufReader::with_capacity(100, input.as_slice());
        let mut table = SavedTable::new(reader, None);
        let mut items = Vec::new();
        for item in table.by_ref() {
            items.push(item.unwrap());
        }
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].as_ref().unwrap().line, 1);
        let huge = items[1].as_ref().unwrap_err();
        assert_eq!(huge.line, 4);
        assert!(
            huge.to_string()
                .contains(&format!("{} bytes", MAX_LINE * 3 + 1)),
            "{huge}"
        );
        assert!(
            table.buf.capacity() <= 2 * MAX_LINE,
            "{}",
            table.buf.capacity()
        );
        assert!(items[2]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("not UTF-8"));
        assert_eq!(items[3].as_ref().unwrap().line, 6);
    }
}

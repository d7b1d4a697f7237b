// SPDX-License-Identifier: MIT OR Apache-2.0
//! Streaming dumps: a lending reader of borrowed flow views, and an owned iterator on top.
//!
//! Contract:
//! * memory is the handle's one receive buffer, whatever the table size;
//! * [`Dump::next_flow`] hands out [`FlowRef`]s that borrow that buffer (no heap
//!   allocation per flow); a flow that fails to decode is reported as
//!   `Err(Error::Decode)` and the dump goes on with the next one;
//! * kernel errors, socket errors and framing errors end the dump;
//! * if any message carried `NLM_F_DUMP_INTR`, the dump yields every flow and
//!   then one final `Err(Error::DumpInterrupted)`;
//! * a dump dropped before its end marks the handle's socket stale: the next
//!   request transparently opens a fresh socket (closing the old one stops the
//!   kernel's dump), so an abandoned dump never costs a full drain.
//!
//! A dump is not a snapshot (CTNETLINK.md §7.1): flows created or deleted
//! meanwhile may be missed or repeated.

use std::ops::Range;

use crate::conntrack::Conntrack;
use crate::consts::*;
use crate::decode::decode_flow;
use crate::error::{Error, Result};
use crate::flow::{Flow, FlowRef};
use crate::wire::{parse_error, Messages};

/// Totals of a finished (or stopped) dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DumpSummary {
    /// Flows delivered (decoded successfully).
    pub flows: u64,
    /// Flow messages that failed to decode (reported as errors and skipped).
    pub decode_errors: u64,
    /// Datagrams received.
    pub datagrams: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Size of the first datagram: about 32 KiB when the kernel batches fully
    /// from the start (the handle warms its socket up for that), 3.7 KiB otherwise.
    pub first_datagram: usize,
    /// Whether the kernel flagged the dump as inconsistent (`NLM_F_DUMP_INTR`).
    pub interrupted: bool,
    /// Whether the kernel applied a filter (`NLM_F_DUMP_FILTERED`).
    pub filtered: bool,
    /// Whether the dump reached `NLMSG_DONE`.
    pub complete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// Reached the end; `DumpInterrupted` still to report.
    Interrupted,
    Done,
}

/// A dump in progress, from [`Conntrack::dump`].
///
/// * Memory is the handle's one receive buffer, whatever the table size.
/// * [`Dump::next_flow`] hands out [`FlowRef`]s borrowing that buffer (no heap
///   allocation per flow); a flow that fails to decode yields
///   `Err(Error::Decode)` and the dump goes on.
/// * Kernel, socket and framing errors end the dump.
/// * If the kernel flagged the dump `NLM_F_DUMP_INTR`, every flow is still
///   yielded, then one final `Err(Error::DumpInterrupted)`.
/// * Dropping it before the end is cheap: the handle's next request uses a
///   fresh socket instead of reading out the rest.
/// * It is not a snapshot: flows changed meanwhile may be missed or repeated.
#[derive(Debug)]
pub struct Dump<'h> {
    ct: &'h mut Conntrack,
    seq: u32,
    len: usize,
    pos: usize,
    state: State,
    summary: DumpSummary,
}

impl<'h> Dump<'h> {
    pub(crate) fn new(ct: &'h mut Conntrack, seq: u32) -> Self {
        Dump {
            ct,
            seq,
            len: 0,
            pos: 0,
            state: State::Running,
            summary: DumpSummary::default(),
        }
    }

    /// Totals so far.
    pub fn summary(&self) -> DumpSummary {
        self.summary
    }

    /// Ends the dump with an error that leaves the socket out of step.
    fn fail(&mut self, error: Error) -> Option<Result<Range<usize>>> {
        self.state = State::Done;
        self.ct.stale = true;
        Some(Err(error))
    }

    /// Finds the next flow message, receiving datagrams as needed; returns the
    /// byte range of its payload in the receive buffer.
    fn advance(&mut self) -> Option<Result<Range<usize>>> {
        loop {
            match self.state {
                State::Running => {}
                State::Interrupted => {
                    self.state = State::Done;
                    return Some(Err(Error::DumpInterrupted));
                }
                State::Done => return None,
            }
            if self.pos >= self.len {
                match self.ct.socket.recv(&mut self.ct.buf) {
                    Ok(len) => {
                        self.len = len;
                        self.pos = 0;
                        if self.summary.datagrams == 0 {
                            self.summary.first_datagram = len;
                        }
                        self.summary.datagrams += 1;
                        self.summary.bytes += len as u64;
                    }
                    Err(e) => return self.fail(e),
                }
                continue;
            }
            let window = &self.ct.buf[self.pos..self.len];
            let mut messages = Messages::new(window);
            let message = match messages.next() {
                Some(Ok(message)) => message,
                Some(Err(mut e)) => {
                    e.offset += self.pos;
                    return self.fail(e.into());
                }
                None => {
                    self.pos = self.len;
                    continue;
                }
            };
            let start = self.pos + NLMSG_HDRLEN;
            let range = start..start + message.payload.len();
            self.pos += messages.position();
            if message.seq != self.seq {
                let found = message.seq;
                return self.fail(Error::SequenceMismatch {
                    expected: self.seq,
                    found,
                });
            }
            if message.flags & NLM_F_DUMP_INTR != 0 {
                self.summary.interrupted = true;
            }
            if message.flags & NLM_F_DUMP_FILTERED != 0 {
                self.summary.filtered = true;
            }
            match message.kind {
                NLMSG_DONE | NLMSG_ERROR => {
                    let (errno, message_text, offset) = match parse_error(&message) {
                        Ok(reply) => (reply.errno, reply.message.map(str::to_owned), reply.offset),
                        Err(e) => return self.fail(e.into()),
                    };
                    // The reply stream ended cleanly either way.
                    self.state = State::Done;
                    if errno != 0 {
                        return Some(Err(Error::Kernel {
                            operation: "dump",
                            errno,
                            message: message_text,
                            offset,
                        }));
                    }
                    self.summary.complete = true;
                    if self.summary.interrupted {
                        self.state = State::Interrupted;
                    }
                }
                kind if kind == ct_msg_type(IPCTNL_MSG_CT_NEW) => return Some(Ok(range)),
                _ => {} // NOOP and anything else carries no flow
            }
        }
    }

    /// The next flow as a borrowed view, or `None` at the end of the dump.
    ///
    /// The view borrows the receive buffer, so it must be dropped before the
    /// next call (a lending iterator). A flow that fails to decode yields
    /// `Err(Error::Decode)` and the dump continues.
    #[allow(clippy::should_implement_trait)] // lending: cannot be `Iterator`
    pub fn next_flow(&mut self) -> Option<Result<FlowRef<'_>>> {
        let range = match self.advance()? {
            Ok(range) => range,
            Err(e) => return Some(Err(e)),
        };
        match decode_flow(&self.ct.buf[range.clone()]) {
            Ok(flow) => {
                self.summary.flows += 1;
                Some(Ok(flow))
            }
            Err(mut e) => {
                self.summary.decode_errors += 1;
                // Report offsets within the datagram, not the message.
                e.offset += range.start - NLMSG_HDRLEN;
                Some(Err(e.into()))
            }
        }
    }

    /// The next flow for which `keep` returns true (flows that fail to decode
    /// are reported, not skipped).
    pub(crate) fn next_flow_where(
        &mut self,
        mut keep: impl FnMut(&FlowRef<'_>) -> bool,
    ) -> Option<Result<FlowRef<'_>>> {
        loop {
            let range = match self.advance()? {
                Ok(range) => range,
                Err(e) => return Some(Err(e)),
            };
            let base = self.ct.buf.as_ptr() as usize;
            // Detach the strings as positions so that no borrow of the buffer
            // outlives this iteration unless the flow is handed out.
            let detached: Flow<(usize, usize)> = match decode_flow(&self.ct.buf[range.clone()]) {
                Ok(flow) => {
                    self.summary.flows += 1;
                    if !keep(&flow) {
                        continue;
                    }
                    flow.map_strings(|s| (s.as_ptr() as usize - base, s.len()))
                }
                Err(mut e) => {
                    self.summary.decode_errors += 1;
                    e.offset += range.start - NLMSG_HDRLEN;
                    return Some(Err(e.into()));
                }
            };
            let buf = &self.ct.buf;
            return Some(Ok(detached.map_strings(|&(start, len)| {
                // Validated as UTF-8 by the decoder a moment ago.
                std::str::from_utf8(&buf[start..start + len]).unwrap_or_default()
            })));
        }
    }

    /// The raw payload (after `nlmsghdr`) of the next flow message, without
    /// decoding it: the baseline for measuring decode cost.
    pub fn next_raw(&mut self) -> Option<Result<&[u8]>> {
        match self.advance()? {
            Ok(range) => {
                self.summary.flows += 1;
                Some(Ok(&self.ct.buf[range]))
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// Turns the dump into an iterator of owned flows.
    pub fn into_flows(self) -> Flows<'h> {
        Flows { dump: self }
    }
}

impl Drop for Dump<'_> {
    fn drop(&mut self) {
        if self.state == State::Running {
            // The kernel may still be producing this dump: do not read it out,
            // start over on a fresh socket at the next request.
            self.ct.stale = true;
        }
    }
}

/// Owned flows from a dump (see [`Conntrack::flows`]).
#[derive(Debug)]
pub struct Flows<'h> {
    dump: Dump<'h>,
}

impl Flows<'_> {
    /// Totals so far.
    pub fn summary(&self) -> DumpSummary {
        self.dump.summary()
    }
}

impl Iterator for Flows<'_> {
    type Item = Result<Flow>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.dump.next_flow()?.map(|flow| flow.to_owned_flow()))
    }
}

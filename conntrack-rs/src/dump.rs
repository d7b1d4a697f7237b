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
//!   kernel's dump), so an abandoned dump never costs a full drain;
//! * on large tables the datagrams are received by a prefetch thread (see
//!   [`Prefetch`]): the kernel builds the next batch inside `recvmsg`
//!   (docs/ctnetlink.md §7.1), so receiving on another thread lets that work
//!   overlap with decoding instead of adding to it. Nothing else changes:
//!   the same flows, errors and summary, in the same order.
//!
//! A dump is not a snapshot (docs/ctnetlink.md §7.1): flows created or deleted
//! meanwhile may be missed or repeated.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::consts::*;
use crate::decode::decode_flow;
use crate::error::{Error, Result};
use crate::flow::{Flow, FlowRef};
use crate::socket::{Channel, SharedReader, RECV_BUFFER_SIZE};
use crate::wire::{parse_error, Messages};

/// Whether a dump receives its datagrams on a prefetch thread
/// ([`Conntrack::set_prefetch`](crate::Conntrack::set_prefetch)).
///
/// The kernel serialises the next batch of a dump (about 140 flows, 1 µs
/// each) inside the `recvmsg` that returns the current one (docs/ctnetlink.md
/// §7.1), so on one thread the decoding and whatever the caller does with each
/// flow add to the kernel's time. A prefetch thread calls `recvmsg` on a
/// duplicate of the handle's socket and passes whole datagrams over a bounded
/// queue, so that the two overlap: on a large table the dump then takes about
/// as long as the kernel alone. Flows, errors and the summary are the same
/// either way.
///
/// Cost: one thread per dump (spawned when the dump starts, gone when it
/// ends), at most [`PREFETCH_DEPTH`]` + 2` buffers of 64 KiB, one hand-over
/// (a wake-up) per datagram of about 140 flows, and on a dump abandoned
/// half-way, up to one more datagram received and 100 ms before the thread
/// notices and exits.
///
/// Measured (`benches/README.md`, 250k flows): owned flows 1.03x the kernel's
/// own time with the thread, 1.10x without. The thread pays off when the
/// caller spends more than about 40 ns per flow (owned flows, filters,
/// grouping, output); for a bare loop over borrowed views it is about even,
/// and [`Prefetch::Never`] saves the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prefetch {
    /// Prefetch when the table holds at least [`PREFETCH_MIN_FLOWS`] entries
    /// (one `GET_STATS` round trip before the dump tells) and the process may
    /// run on at least two CPUs. The default.
    #[default]
    Auto,
    /// Always prefetch (if the thread cannot be spawned, the dump is read on
    /// the calling thread).
    Always,
    /// Never: the calling thread receives every datagram itself.
    Never,
}

/// Table size from which [`Prefetch::Auto`] uses a thread: below it, the
/// thread's start-up (tens of microseconds) is not won back.
pub const PREFETCH_MIN_FLOWS: u32 = 4096;

/// Datagrams the prefetch thread may receive ahead of the decoder.
pub const PREFETCH_DEPTH: usize = 4;

/// Buffers a prefetching dump may use: queued, being read, being filled.
const BUFFERS: usize = PREFETCH_DEPTH + 2;

/// How long the prefetch thread waits for a datagram before checking whether
/// the dump was abandoned.
const PREFETCH_POLL: Duration = Duration::from_millis(100);

/// Totals of a finished (or stopped) dump.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
    /// Whether the datagrams were received by a prefetch thread ([`Prefetch`]).
    pub prefetched: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// Reached the end; `DumpInterrupted` still to report.
    Interrupted,
    Done,
}

/// A dump in progress, from [`Conntrack::dump`](crate::Conntrack::dump).
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
    channel: &'h mut Channel,
    seq: u32,
    len: usize,
    pos: usize,
    state: State,
    summary: DumpSummary,
    /// The prefetch thread's side, when one receives the datagrams.
    prefetcher: Option<Prefetcher>,
}

impl<'h> Dump<'h> {
    /// A dump whose request (sequence `seq`) was just sent on `channel`'s
    /// socket; `prefetch` starts a thread to receive it (on the calling
    /// thread if the thread cannot be started).
    pub(crate) fn new(channel: &'h mut Channel, seq: u32, prefetch: bool) -> Self {
        let prefetcher = if prefetch {
            Prefetcher::start(channel)
        } else {
            None
        };
        Dump {
            channel,
            seq,
            len: 0,
            pos: 0,
            state: State::Running,
            summary: DumpSummary {
                prefetched: prefetcher.is_some(),
                ..DumpSummary::default()
            },
            prefetcher,
        }
    }

    /// The datagram being read.
    #[inline]
    fn buf(&self) -> &[u8] {
        datagram(&self.prefetcher, self.channel)
    }

    /// Receives the next datagram; returns its length.
    fn receive(&mut self) -> Result<usize> {
        match &mut self.prefetcher {
            Some(prefetcher) => prefetcher.next_datagram(),
            None => self.channel.socket.recv(&mut self.channel.buf),
        }
    }

    /// Totals so far.
    pub fn summary(&self) -> DumpSummary {
        self.summary
    }

    /// Ends the dump with an error that leaves the socket out of step.
    fn fail(&mut self, error: Error) -> Option<Result<Range<usize>>> {
        self.state = State::Done;
        self.channel.stale = true;
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
                match self.receive() {
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
            let window = &datagram(&self.prefetcher, self.channel)[self.pos..self.len];
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
        match decode_flow(&datagram(&self.prefetcher, self.channel)[range.clone()]) {
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
            let buf = datagram(&self.prefetcher, self.channel);
            let base = buf.as_ptr() as usize;
            // Detach the strings as positions so that no borrow of the buffer
            // outlives this iteration unless the flow is handed out.
            let detached: Flow<(usize, usize)> = match decode_flow(&buf[range.clone()]) {
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
            let buf = self.buf();
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
                Some(Ok(&self.buf()[range]))
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
            self.channel.stale = true;
        }
        if let Some(prefetcher) = &self.prefetcher {
            // Also when the dump ended on an error: the thread may be waiting
            // for datagrams that will never come.
            prefetcher.stop.store(true, Ordering::Relaxed);
        }
    }
}

/// The datagram being read: the prefetch thread's latest, or the handle's
/// buffer (a function of the two fields, so that other fields stay writable
/// while it is borrowed).
#[inline]
fn datagram<'b>(prefetcher: &'b Option<Prefetcher>, channel: &'b Channel) -> &'b [u8] {
    match prefetcher {
        Some(prefetcher) => &prefetcher.current,
        None => &channel.buf,
    }
}

/// What the prefetch thread sends.
enum Fetched {
    /// A datagram: the buffer and the received length.
    Datagram(Vec<u8>, usize),
    /// Receiving failed; the thread has stopped.
    Failed(Error),
}

/// The decoding side of a prefetch thread.
#[derive(Debug)]
struct Prefetcher {
    /// The datagram being read (empty before the first).
    current: Vec<u8>,
    datagrams: Receiver<Fetched>,
    /// Read buffers go back to the thread.
    recycle: SyncSender<Vec<u8>>,
    /// Set when the dump is dropped: the thread stops at its next wake-up.
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fetched::Datagram(_, len) => write!(f, "Datagram({len} bytes)"),
            Fetched::Failed(e) => write!(f, "Failed({e})"),
        }
    }
}

impl Prefetcher {
    /// Starts the thread on a duplicate of `channel`'s socket; `None` (read on
    /// the calling thread instead) if the descriptor or the thread cannot be had.
    fn start(channel: &Channel) -> Option<Prefetcher> {
        let reader = channel.socket.duplicate_reader().ok()?;
        let (send, datagrams) = sync_channel(PREFETCH_DEPTH);
        // Both queues are bounded arrays allocated once: no allocation per
        // datagram, and room for every buffer there can be.
        let (recycle, recycled) = sync_channel(BUFFERS);
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("conntrack-dump".into())
            .spawn(move || prefetch(&reader, &send, &recycled, &thread_stop))
            .ok()?;
        Some(Prefetcher {
            current: Vec::new(),
            datagrams,
            recycle,
            stop,
        })
    }

    /// Hands the current buffer back and takes the next datagram.
    fn next_datagram(&mut self) -> Result<usize> {
        let read = std::mem::take(&mut self.current);
        if read.capacity() != 0 {
            // Never blocks (room for every buffer); the thread may be gone
            // already (it stops after the last datagram).
            let _ = self.recycle.try_send(read);
        }
        match self.datagrams.recv() {
            Ok(Fetched::Datagram(buf, len)) => {
                self.current = buf;
                Ok(len)
            }
            Ok(Fetched::Failed(e)) => Err(e),
            Err(_) => Err(Error::io(
                "receive netlink reply",
                std::io::Error::other("the dump's prefetch thread ended before the dump"),
            )),
        }
    }
}

/// The prefetch thread: receives datagrams until one ends the dump (it holds
/// `NLMSG_DONE` or `NLMSG_ERROR`, or does not frame), receiving fails, or the
/// dump is dropped. Buffers are reused: at most `PREFETCH_DEPTH` queued, one
/// being read, one being filled.
fn prefetch(
    reader: &SharedReader,
    send: &SyncSender<Fetched>,
    recycled: &Receiver<Vec<u8>>,
    stop: &AtomicBool,
) {
    let mut allocated = 0;
    let mut spare: Option<Vec<u8>> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut buf = match spare.take().or_else(|| recycled.try_recv().ok()) {
            Some(buf) => buf,
            None if allocated < BUFFERS => {
                allocated += 1;
                vec![0; RECV_BUFFER_SIZE]
            }
            None => match recycled.recv() {
                Ok(buf) => buf,
                Err(_) => return, // the dump is gone
            },
        };
        let fetched = match reader.recv_nonblocking(&mut buf) {
            Ok(Some(len)) => {
                let last = ends_dump(&buf[..len]);
                if send.send(Fetched::Datagram(buf, len)).is_err() || last {
                    return;
                }
                continue;
            }
            Ok(None) => {
                spare = Some(buf);
                match reader.wait_readable(Some(Instant::now() + PREFETCH_POLL)) {
                    Ok(_) => continue,
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        let _ = send.send(Fetched::Failed(fetched));
        return;
    }
}

/// Whether a datagram is the last one of a dump's reply stream.
fn ends_dump(datagram: &[u8]) -> bool {
    Messages::new(datagram).any(|message| {
        message.map_or(true, |message| {
            matches!(message.kind, NLMSG_DONE | NLMSG_ERROR)
        })
    })
}

/// Owned flows from a dump (see [`Conntrack::flows`](crate::Conntrack::flows)).
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One netlink message: header, then `payload`.
    fn message(kind: u16, payload: &[u8]) -> Vec<u8> {
        let len = (NLMSG_HDRLEN + payload.len()) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&NLM_F_MULTI.to_ne_bytes());
        out.extend_from_slice(&7u32.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize((out.len() + 3) & !3, 0);
        out
    }

    #[test]
    fn the_prefetch_thread_stops_after_the_datagram_that_ends_the_dump() {
        let flow = message(ct_msg_type(IPCTNL_MSG_CT_NEW), &[2, 0, 0, 0]);
        let done = message(NLMSG_DONE, &0i32.to_ne_bytes());
        let error = message(NLMSG_ERROR, &[0; 20]);
        let flows = [flow.clone(), flow.clone()].concat();
        assert!(!ends_dump(&flows), "flow messages only");
        assert!(!ends_dump(&[]), "empty datagram");
        assert!(
            ends_dump(&[flows.clone(), done].concat()),
            "NLMSG_DONE last"
        );
        assert!(ends_dump(&error), "an error reply");
        // A datagram that does not frame ends the dump too (the decoder
        // reports it; nothing sensible can follow on the socket).
        assert!(ends_dump(&[flows, vec![0xff; 7]].concat()));
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Deleting flows: one by tuple, many by filter (the fastest correct path the
//! kernel offers), or all.
//!
//! Delete by filter takes one of two paths:
//! * **kernel flush**: when the running kernel evaluates the *whole* filter by
//!   itself (as probed, see [`KernelFeatures`](crate::KernelFeatures)), one
//!   `IPCTNL_MSG_CT_DELETE` without a tuple carries the filter and the kernel
//!   deletes in one walk, with no dump at all;
//! * **dump and delete**: otherwise one streaming dump with the strongest
//!   kernel prefilter, the whole filter checked in userspace, and a `DELETE`
//!   per match (tuple, zone and the flow's `CTA_ID`, so a newer flow that
//!   reused the tuple is never hit), many per datagram on a second socket, with
//!   only errors and one ACK per batch coming back: no round trip per flow, no
//!   second dump.
//!
//! A filter the kernel cannot evaluate exactly never reaches a flush, so a
//! mask without its value, a zone or status filter on a kernel that ignores
//! them, or IPv6 addresses (inverted by the kernel) can never widen a delete.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::conntrack::Conntrack;
use crate::consts::*;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::flow::{Flow, FlowId, FlowRef, TcpState, Tuple};
use crate::pushdown::Pushdown;
use crate::request::{check_tuple, put_flow_spec, put_tuple, FlowSpec, WriteMode};
use crate::socket::NlSocket;
use crate::wire::{parse_error, Encoder, Messages};

/// Deletes per datagram on the dump-and-delete path. Each failed delete comes
/// back as an error message in the socket's receive queue, so a batch must fit
/// there even if every delete fails (the default queue holds ~200 KiB).
const BATCH: usize = 128;

/// How [`Conntrack::delete_matching`] behaves.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeleteOptions {
    /// Only count what would be deleted.
    pub dry_run: bool,
    /// Stop after this many matching flows (`Some(0)`: none; nothing is
    /// dumped or deleted).
    pub limit: Option<u64>,
    /// Delete at most this many flows per second.
    pub rate: Option<u32>,
}

/// Which way the flows were deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeletePath {
    /// Nothing was deleted: a dry run (one streaming dump).
    DryRun,
    /// One filtered flush evaluated entirely by the kernel.
    KernelFlush,
    /// A streaming dump with pipelined deletes.
    DumpAndDelete,
}

impl DeletePath {
    /// `"dry_run"`, `"kernel_flush"` or `"dump_and_delete"`: the one spelling
    /// of text output, JSON and the Python binding.
    pub fn name(self) -> &'static str {
        match self {
            DeletePath::DryRun => "dry_run",
            DeletePath::KernelFlush => "kernel_flush",
            DeletePath::DumpAndDelete => "dump_and_delete",
        }
    }
}

impl std::fmt::Display for DeletePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a delete by filter did.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteReport {
    /// The path taken.
    pub path: DeletePath,
    /// Flows that matched the filter (for a kernel flush: equal to `deleted`).
    pub matched: u64,
    /// Flows deleted. For a kernel flush the kernel reports no number: this is
    /// the drop of the namespace's entry count across the flush, so flows
    /// created or expiring meanwhile blur it.
    pub deleted: u64,
    /// Matching flows that were gone before their delete arrived (`ENOENT`,
    /// e.g. expired, or deleted and re-created with another id): not an error.
    pub already_gone: u64,
    /// Deletes that failed, by errno.
    pub failed: BTreeMap<i32, u64>,
    /// Whether the kernel applied part of the filter during the dump.
    pub kernel_prefiltered: bool,
}

impl DeleteReport {
    fn new(path: DeletePath) -> Self {
        DeleteReport {
            path,
            matched: 0,
            deleted: 0,
            already_gone: 0,
            failed: BTreeMap::new(),
            kernel_prefiltered: false,
        }
    }

    /// Total failed deletes.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// What pipelined requests came to: done, gone before their request arrived
/// (`ENOENT`), failed by errno.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) matched: u64,
    pub(crate) done: u64,
    pub(crate) already_gone: u64,
    pub(crate) failed: BTreeMap<i32, u64>,
    pub(crate) kernel_prefiltered: bool,
}

/// Requests pipelined on their own socket: many per datagram, only errors and
/// one ACK per batch coming back (no round trip per flow). Deletes and bulk
/// updates share it.
pub(crate) struct Pipeline {
    socket: NlSocket,
    enc: Encoder,
    pending: usize,
    last_seq: u32,
    /// Offset of the last message in `enc`.
    last_start: usize,
    buf: Vec<u8>,
}

impl Pipeline {
    /// Appends one request of type `message` about `flow`; `attributes` writes
    /// what follows the flow's tuple and zone.
    pub(crate) fn push(
        &mut self,
        message: u8,
        flow: &FlowRef<'_>,
        attributes: impl FnOnce(&mut Encoder),
    ) {
        self.push_tuple(message, &flow.orig, flow.zone, attributes);
    }

    /// [`Pipeline::push`] for a flow known by its original tuple and zone.
    fn push_tuple(
        &mut self,
        message: u8,
        orig: &Tuple,
        zone: Option<u16>,
        attributes: impl FnOnce(&mut Encoder),
    ) {
        let seq = self.socket.next_seq();
        self.last_start = self.enc.as_bytes().len();
        let mark = self
            .enc
            .begin(message, NLM_F_REQUEST, seq, orig.family(), NFNETLINK_V0);
        put_tuple(&mut self.enc, CTA_TUPLE_ORIG, orig);
        if let Some(zone) = zone {
            self.enc.be16(CTA_ZONE, zone);
        }
        attributes(&mut self.enc);
        self.enc.end(mark);
        self.pending += 1;
        self.last_seq = seq;
    }

    /// Appends one `CT_NEW` request creating (or updating, per `mode`) the
    /// flow `spec` describes, and returns its sequence number. A spec the
    /// encoder refuses leaves the batch as it was.
    pub(crate) fn push_spec(&mut self, spec: &FlowSpec, mode: WriteMode) -> Result<u32> {
        let seq = self.socket.next_seq();
        let start = self.enc.as_bytes().len();
        let mark = self.enc.begin(
            IPCTNL_MSG_CT_NEW,
            NLM_F_REQUEST | mode.flags(),
            seq,
            spec.orig.family(),
            NFNETLINK_V0,
        );
        if let Err(e) = put_flow_spec(&mut self.enc, spec, mode) {
            self.enc.truncate(start);
            return Err(e);
        }
        self.enc.end(mark);
        self.last_start = start;
        self.pending += 1;
        self.last_seq = seq;
        Ok(seq)
    }

    /// Sends the batch (the last message asks for an ACK) and collects the
    /// errors into `outcome`.
    fn flush(&mut self, outcome: &mut Outcome) -> Result<()> {
        let mut errors = 0u64;
        let sent = self.flush_each(|_, errno| {
            errors += 1;
            if errno == libc::ENOENT {
                outcome.already_gone += 1;
            } else {
                *outcome.failed.entry(errno).or_insert(0) += 1;
            }
        })?;
        outcome.done += sent - errors;
        Ok(())
    }

    /// Sends the batch (the last message asks for an ACK), calls `on_error`
    /// with the sequence number and errno of each request that failed, and
    /// returns how many requests were sent.
    pub(crate) fn flush_each(&mut self, mut on_error: impl FnMut(u32, i32)) -> Result<u64> {
        if self.pending == 0 {
            return Ok(0);
        }
        // Ask for an ACK on the last message only: its arrival ends the batch
        // (the kernel answers the others only if they fail).
        self.enc.add_flags(self.last_start, NLM_F_ACK);
        self.socket.send(self.enc.as_bytes())?;
        let sent = self.pending as u64;
        'batch: loop {
            let len = self.socket.recv(&mut self.buf)?;
            for message in Messages::new(&self.buf[..len]) {
                let message = message?;
                if message.kind != NLMSG_ERROR {
                    continue;
                }
                let reply = parse_error(&message)?;
                if reply.errno != 0 {
                    on_error(message.seq, reply.errno);
                }
                if message.seq == self.last_seq {
                    break 'batch;
                }
            }
        }
        self.pending = 0;
        self.enc.clear();
        Ok(sent)
    }
}

impl Conntrack {
    /// Deletes one flow by its original tuple in `zone`; with `id`, only if
    /// the flow still has that id (so a newer flow reusing the tuple is
    /// spared). Returns `false` when there was no such flow (`ENOENT`).
    pub fn delete(&mut self, orig: &Tuple, zone: u16, id: Option<FlowId>) -> Result<bool> {
        check_tuple(orig, "tuple")?;
        let (seq, mark) =
            self.begin(IPCTNL_MSG_CT_DELETE, NLM_F_ACK, orig.family(), NFNETLINK_V0)?;
        put_tuple(&mut self.enc, CTA_TUPLE_ORIG, orig);
        if zone != 0 {
            self.enc.be16(CTA_ZONE, zone);
        }
        if let Some(id) = id {
            self.enc.bytes(CTA_ID, &id.0);
        }
        self.enc.end(mark);
        match self.transact("delete flow", seq, |_| Ok(())) {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes exactly this flow (its tuple, zone and id, as dumped).
    pub fn delete_flow<S>(&mut self, flow: &crate::Flow<S>) -> Result<bool> {
        self.delete(&flow.orig, flow.zone.unwrap_or(0), flow.id)
    }

    /// Deletes every flow of the table (`conntrack -F`). Explicit on purpose:
    /// [`Conntrack::delete_matching`] refuses an empty filter.
    pub fn flush(&mut self) -> Result<()> {
        self.flush_pushdown(&Pushdown::default())
    }

    /// Deletes the flows `filter` selects, by the fastest correct path, and
    /// reports what happened: a kernel-side filtered flush when this kernel
    /// evaluates the whole filter itself (and no dry run, limit or rate is
    /// asked), else one streaming dump with pipelined deletes ([`DeletePath`]).
    /// An empty filter is refused: use [`Conntrack::flush`] to delete everything.
    pub fn delete_matching(
        &mut self,
        filter: &Filter,
        options: DeleteOptions,
    ) -> Result<DeleteReport> {
        filter.validate()?;
        if filter.is_empty() {
            return Err(Error::InvalidInput(
                "the filter has no condition that excludes any flow, so it would delete every \
                 flow: refused (to empty the table on purpose, flush it: Conntrack::flush, \
                 conntrack -F)"
                    .into(),
            ));
        }
        let flush_plan = self.plan(filter, true)?;
        if !options.dry_run && options.limit.is_none() && options.rate.is_none() && flush_plan.exact
        {
            let before = self.count()?;
            self.flush_pushdown(&flush_plan)?;
            let after = self.count()?;
            let deleted = u64::from(before.saturating_sub(after));
            let mut report = DeleteReport::new(DeletePath::KernelFlush);
            report.matched = deleted;
            report.deleted = deleted;
            report.kernel_prefiltered = true;
            return Ok(report);
        }
        self.dump_and_delete(filter, options)
    }

    fn dump_and_delete(&mut self, filter: &Filter, options: DeleteOptions) -> Result<DeleteReport> {
        self.dump_and_delete_where(filter, options, |_| true)
    }

    /// The dump-and-delete path, the one implementation behind
    /// [`Conntrack::delete_matching`] and
    /// [`Conntrack::delete_orphans`](crate::Conntrack::delete_orphans): every
    /// flow that matches the whole `prefilter` and for which `keep` returns
    /// true is deleted by tuple, zone and id (so a newer flow that reused the
    /// tuple is spared), or only counted in a dry run.
    pub(crate) fn dump_and_delete_where(
        &mut self,
        prefilter: &Filter,
        options: DeleteOptions,
        keep: impl FnMut(&FlowRef<'_>) -> bool,
    ) -> Result<DeleteReport> {
        let outcome = self.dump_and_apply(prefilter, options, keep, |pipeline, flow| {
            pipeline.push(IPCTNL_MSG_CT_DELETE, flow, |enc| {
                if let Some(id) = flow.id {
                    enc.bytes(CTA_ID, &id.0);
                }
            });
        })?;
        Ok(DeleteReport {
            path: if options.dry_run {
                DeletePath::DryRun
            } else {
                DeletePath::DumpAndDelete
            },
            matched: outcome.matched,
            deleted: outcome.done,
            already_gone: outcome.already_gone,
            failed: outcome.failed,
            kernel_prefiltered: outcome.kernel_prefiltered,
        })
    }

    /// A pipeline on the handle's second socket (opened on first use).
    pub(crate) fn pipeline(&mut self) -> Result<Pipeline> {
        let socket = match self.aux.take() {
            Some(socket) => socket,
            None => Self::new_socket(self.netns.as_deref())?,
        };
        Ok(Pipeline {
            socket,
            enc: Encoder::new(),
            pending: 0,
            last_seq: 0,
            last_start: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Keeps `pipeline`'s socket for the next pipeline, if every request it
    /// sent was answered (else its late replies would confuse the next user).
    pub(crate) fn keep_pipeline(&mut self, pipeline: Pipeline) {
        if pipeline.pending == 0 {
            self.aux = Some(pipeline.socket);
        }
    }

    /// Deletes the given flows (pipelined on the second socket, each by tuple,
    /// zone and id), adding to `report`; a dry run only counts them.
    pub(crate) fn delete_targets(
        &mut self,
        targets: &[DeleteTarget],
        options: DeleteOptions,
        report: &mut DeleteReport,
    ) -> Result<()> {
        report.matched += targets.len() as u64;
        if options.dry_run || targets.is_empty() {
            return Ok(());
        }
        let mut pipeline = self.pipeline()?;
        let mut outcome = Outcome::default();
        let started = Instant::now();
        for target in targets {
            pipeline.push_tuple(IPCTNL_MSG_CT_DELETE, &target.orig, target.zone, |enc| {
                if let Some(id) = target.id {
                    enc.bytes(CTA_ID, &id.0);
                }
            });
            if pipeline.pending >= BATCH {
                pipeline.flush(&mut outcome)?;
                throttle(options.rate, outcome.done + outcome.already_gone, started);
            }
        }
        pipeline.flush(&mut outcome)?;
        self.aux = Some(pipeline.socket);
        report.deleted += outcome.done;
        report.already_gone += outcome.already_gone;
        for (errno, n) in outcome.failed {
            *report.failed.entry(errno).or_insert(0) += n;
        }
        Ok(())
    }

    /// The one dump-and-act loop behind deletes and bulk updates: one
    /// streaming dump carrying what this kernel evaluates of `prefilter`;
    /// every flow that matches the whole `prefilter` and for which `keep`
    /// returns true is handed to `act`, which pipelines its request (nothing
    /// is sent in a dry run: the flows are only counted). `keep` sees each
    /// such flow once, in dump order, and is not called again after
    /// `options.limit` matches (`Some(0)`: nothing is dumped); `options.rate`
    /// bounds the requests per second.
    pub(crate) fn dump_and_apply(
        &mut self,
        prefilter: &Filter,
        options: DeleteOptions,
        mut keep: impl FnMut(&FlowRef<'_>) -> bool,
        mut act: impl FnMut(&mut Pipeline, &FlowRef<'_>),
    ) -> Result<Outcome> {
        let mut outcome = Outcome::default();
        let mut pipeline = if options.dry_run {
            None
        } else {
            Some(self.pipeline()?)
        };
        let plan = self.plan(prefilter, false)?;
        let started = Instant::now();
        let result = (|| -> Result<()> {
            if options.limit == Some(0) {
                return Ok(());
            }
            let mut dump = self.dump_pushdown(&plan)?;
            while let Some(flow) = dump.next_flow_where(|f| prefilter.matches(f) && keep(f)) {
                let flow = match flow {
                    Ok(flow) => flow,
                    Err(Error::Decode(_)) => continue,
                    Err(e) => return Err(e),
                };
                outcome.matched += 1;
                if let Some(pipeline) = pipeline.as_mut() {
                    act(pipeline, &flow);
                    if pipeline.pending >= BATCH {
                        pipeline.flush(&mut outcome)?;
                        throttle(options.rate, outcome.done + outcome.already_gone, started);
                    }
                }
                if options.limit.is_some_and(|limit| outcome.matched >= limit) {
                    break;
                }
            }
            outcome.kernel_prefiltered = dump.summary().filtered;
            Ok(())
        })();
        if let Some(mut pipeline) = pipeline {
            let flushed = pipeline.flush(&mut outcome);
            if flushed.is_ok() {
                // In step (every batch fully answered): keep it for next time.
                self.aux = Some(pipeline.socket);
            }
            result?;
            flushed?;
        } else {
            result?;
        }
        Ok(outcome)
    }
}

/// Sleeps so that `done` operations since `started` stay within `rate` per second.
fn throttle(rate: Option<u32>, done: u64, started: Instant) {
    if let Some(rate) = rate.filter(|&r| r > 0) {
        let due = Duration::from_secs_f64(done as f64 / f64::from(rate));
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// What deleting one flow needs: its original tuple, zone and id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeleteTarget {
    pub(crate) orig: Tuple,
    pub(crate) zone: Option<u16>,
    pub(crate) id: Option<FlowId>,
    /// Remaining timeout when it was judged (to see whether a packet
    /// refreshed it since).
    pub(crate) timeout: Option<u32>,
    /// TCP state when it was judged (to see whether a packet moved it since).
    pub(crate) tcp_state: Option<TcpState>,
}

impl DeleteTarget {
    pub(crate) fn of<S>(flow: &Flow<S>) -> Self {
        DeleteTarget {
            orig: flow.orig,
            zone: flow.zone,
            id: flow.id,
            timeout: flow.timeout,
            tcp_state: flow.tcp_state(),
        }
    }

    /// Whether `now`, the same flow read again, is as it was judged: the same
    /// id, the same TCP state and a remaining timeout no higher (only a
    /// packet raises it: the kernel counts it down otherwise).
    pub(crate) fn unchanged_in<S>(&self, now: &Flow<S>) -> bool {
        now.id == self.id
            && now.tcp_state() == self.tcp_state
            && match (now.timeout, self.timeout) {
                (Some(now), Some(judged)) => now <= judged,
                _ => true,
            }
    }
}

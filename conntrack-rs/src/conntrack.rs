// SPDX-License-Identifier: MIT OR Apache-2.0
//! The [`Conntrack`] handle: one ctnetlink socket in one network namespace.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::consts::*;
use crate::decode::decode_flow;
use crate::dump::{Dump, DumpSummary, Flows, Prefetch, PREFETCH_MIN_FLOWS};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::flow::{Family, Flow, FlowRef, Tuple};
use crate::netns::{Netns, NetnsFile};
use crate::pushdown::{KernelFeatures, Pushdown};
use crate::request::{
    check_status, check_tuple, put_flow_spec, put_tuple, FlowSpec, StatusChange, WriteMode,
};
use crate::socket::{Channel, NlSocket, RECV_BUFFER_SIZE};
use crate::stats::{decode_cpu_stats, decode_table_stats, KernelStats, TableStats};
use crate::status::Status;
use crate::wire::{parse_error, Encoder, Message, Messages};

/// Checks that a reply message has the ctnetlink type the request implies.
fn expect_kind(message: &Message<'_>, msg: u8, what: &'static str) -> Result<()> {
    expect_type(message, ct_msg_type(msg), what)
}

/// Checks that a reply has the full message type `kind` (subsystem and message).
pub(crate) fn expect_type(message: &Message<'_>, kind: u16, what: &'static str) -> Result<()> {
    if message.kind == kind {
        Ok(())
    } else {
        Err(Error::Decode(crate::error::DecodeError::new(
            what,
            crate::error::DecodeErrorKind::Invalid,
            0,
        )))
    }
}

/// A handle on the conntrack table of one network namespace.
///
/// It owns one netlink socket and one 64 KiB receive buffer, reused by every
/// request, so memory use does not depend on the table size. Requests are
/// sequential (`&mut self`); use one handle per thread for parallel work.
/// Every request, reads included, needs `CAP_NET_ADMIN`.
///
/// ```no_run
/// # fn main() -> conntrack::Result<()> {
/// let mut ct = conntrack::Conntrack::open()?;
/// println!("{} of {:?} entries", ct.count()?, ct.table_stats()?.max_entries);
/// for flow in ct.flows()? {
///     let flow = flow?;
///     println!("{} {} -> {}", conntrack::proto::name(flow.protocol()), flow.orig.src, flow.orig.dst);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Conntrack {
    /// The socket, its receive buffer and its state (what a [`Dump`] borrows).
    pub(crate) channel: Channel,
    pub(crate) netns: Option<Arc<NetnsFile>>,
    pub(crate) enc: Encoder,
    /// Kernel filter features, probed on first use.
    pub(crate) features: Option<KernelFeatures>,
    /// Second socket for pipelined deletes during a dump (opened on first use).
    pub(crate) aux: Option<NlSocket>,
    /// Whether dumps receive on a prefetch thread.
    pub(crate) prefetch: Prefetch,
}

impl Conntrack {
    /// Opens a handle in the calling thread's network namespace.
    pub fn open() -> Result<Self> {
        Self::open_in(&Netns::Current)
    }

    /// Opens a handle in the given network namespace (by name, path or pid).
    /// The calling thread does not change namespace.
    pub fn open_in(netns: &Netns) -> Result<Self> {
        let netns = netns.open()?.map(Arc::new);
        let socket = Self::new_socket(netns.as_deref())?;
        Ok(Conntrack {
            channel: Channel {
                socket,
                buf: vec![0; RECV_BUFFER_SIZE],
                stale: false,
            },
            netns,
            enc: Encoder::new(),
            features: None,
            aux: None,
            prefetch: Prefetch::default(),
        })
    }

    pub(crate) fn new_socket(netns: Option<&NetnsFile>) -> Result<NlSocket> {
        match netns {
            None => NlSocket::open(),
            Some(ns) => ns.run(NlSocket::open)?,
        }
    }

    /// The namespace file this handle was opened in (`None`: the opener's namespace).
    pub fn netns_path(&self) -> Option<&Path> {
        self.netns.as_deref().map(NetnsFile::path)
    }

    /// The netlink port id of the handle's socket.
    pub fn portid(&self) -> u32 {
        self.channel.socket.portid()
    }

    /// Replaces the socket if a previous dump was abandoned half-way.
    pub(crate) fn ready(&mut self) -> Result<()> {
        if self.channel.stale {
            self.channel.socket = Self::new_socket(self.netns.as_deref())?;
            self.channel.stale = false;
        }
        Ok(())
    }

    /// Sends the encoder's message and reads replies until the ACK, `NLMSG_DONE`
    /// or an error, passing every data message to `on_data`.
    pub(crate) fn transact(
        &mut self,
        operation: &'static str,
        seq: u32,
        mut on_data: impl FnMut(&Message<'_>) -> Result<()>,
    ) -> Result<()> {
        self.channel.socket.send(self.enc.as_bytes())?;
        match self.read_replies(operation, seq, &mut on_data) {
            Ok(completed) => completed,
            Err(broken) => {
                // We stopped before the end of the reply stream: the socket may
                // still hold replies, so the next request gets a fresh one.
                self.channel.stale = true;
                Err(broken)
            }
        }
    }

    /// Outer error: the reply stream broke (socket, framing, sequence).
    /// Inner result: the exchange completed, with the kernel's verdict or the
    /// first error `on_data` returned.
    fn read_replies(
        &mut self,
        operation: &'static str,
        seq: u32,
        on_data: &mut impl FnMut(&Message<'_>) -> Result<()>,
    ) -> Result<Result<()>> {
        let mut data_error = None;
        loop {
            let len = self.channel.socket.recv(&mut self.channel.buf)?;
            for message in Messages::new(&self.channel.buf[..len]) {
                let message = message?;
                if message.seq != seq {
                    return Err(Error::SequenceMismatch {
                        expected: seq,
                        found: message.seq,
                    });
                }
                match message.kind {
                    NLMSG_NOOP => {}
                    NLMSG_ERROR | NLMSG_DONE => {
                        let reply = parse_error(&message)?;
                        if reply.errno != 0 {
                            return Ok(Err(Error::Kernel {
                                operation,
                                errno: reply.errno,
                                message: reply.message.map(str::to_owned),
                                offset: reply.offset,
                            }));
                        }
                        return Ok(data_error.map_or(Ok(()), Err));
                    }
                    _ => {
                        // Keep reading to the ACK so the socket stays in step;
                        // report the first data error afterwards.
                        if let Err(e) = on_data(&message) {
                            data_error.get_or_insert(e);
                        }
                    }
                }
            }
        }
    }

    /// Starts a request: fresh socket if needed, cleared encoder, new sequence number.
    pub(crate) fn begin(
        &mut self,
        msg: u8,
        flags: u16,
        family: u8,
        version: u8,
    ) -> Result<(u32, crate::wire::Mark)> {
        self.begin_typed(ct_msg_type(msg), flags, family, version)
    }

    /// [`Conntrack::begin`] for a message of any netfilter subsystem.
    pub(crate) fn begin_typed(
        &mut self,
        kind: u16,
        flags: u16,
        family: u8,
        version: u8,
    ) -> Result<(u32, crate::wire::Mark)> {
        self.ready()?;
        let seq = self.channel.socket.next_seq();
        self.enc.clear();
        let mark = self
            .enc
            .begin_typed(kind, NLM_F_REQUEST | flags, seq, family, version);
        Ok((seq, mark))
    }

    /// Encodes a request of the full type `kind` without attributes, for
    /// both families (`AF_UNSPEC`): statistics and whole-table dumps.
    /// Returns its sequence number.
    pub(crate) fn bare_request(&mut self, kind: u16, flags: u16) -> Result<u32> {
        let (seq, mark) = self.begin_typed(kind, flags, AF_UNSPEC, NFNETLINK_V0)?;
        self.enc.end(mark);
        Ok(seq)
    }

    /// Entries and limit (`IPCTNL_MSG_CT_GET_STATS`): one round trip, microseconds
    /// whatever the table size.
    pub fn table_stats(&mut self) -> Result<TableStats> {
        let seq = self.bare_request(ct_msg_type(IPCTNL_MSG_CT_GET_STATS), NLM_F_ACK)?;
        let mut stats = None;
        self.transact("get table statistics", seq, |m| {
            expect_kind(m, IPCTNL_MSG_CT_GET_STATS, "IPCTNL_MSG_CT_GET_STATS reply")?;
            stats = Some(decode_table_stats(m.payload)?);
            Ok(())
        })?;
        stats.ok_or_else(|| {
            Error::Decode(crate::error::DecodeError::new(
                "IPCTNL_MSG_CT_GET_STATS reply",
                crate::error::DecodeErrorKind::Missing,
                0,
            ))
        })
    }

    /// Number of entries in this namespace's table, from kernel statistics (O(1)).
    ///
    /// Includes expired entries the garbage collector has not reaped yet, so it
    /// can be larger than the length of a dump taken at the same moment.
    pub fn count(&mut self) -> Result<u32> {
        Ok(self.table_stats()?.entries)
    }

    /// The table limit `nf_conntrack_max` as the kernel reports it.
    pub fn limit(&mut self) -> Result<u32> {
        self.table_stats()?.max_entries.ok_or_else(|| {
            Error::Decode(crate::error::DecodeError::new(
                "CTA_STATS_GLOBAL_MAX_ENTRIES",
                crate::error::DecodeErrorKind::Missing,
                0,
            ))
        })
    }

    /// Per-CPU counters and their sum (`IPCTNL_MSG_CT_GET_STATS_CPU`).
    pub fn kernel_stats(&mut self) -> Result<KernelStats> {
        let seq = self.bare_request(ct_msg_type(IPCTNL_MSG_CT_GET_STATS_CPU), NLM_F_DUMP)?;
        let mut per_cpu = Vec::new();
        self.transact("get per-CPU statistics", seq, |m| {
            expect_kind(
                m,
                IPCTNL_MSG_CT_GET_STATS_CPU,
                "IPCTNL_MSG_CT_GET_STATS_CPU reply",
            )?;
            per_cpu.push(decode_cpu_stats(m.payload)?);
            Ok(())
        })?;
        Ok(KernelStats::from_per_cpu(per_cpu))
    }

    /// Looks up one flow by its original tuple in `zone` (0 = default zone).
    /// `Ok(None)` when there is no such flow.
    pub fn get(&mut self, orig: &Tuple, zone: u16) -> Result<Option<Flow>> {
        check_tuple(orig, "tuple")?;
        let (seq, mark) = self.begin(IPCTNL_MSG_CT_GET, NLM_F_ACK, orig.family(), NFNETLINK_V0)?;
        put_tuple(&mut self.enc, CTA_TUPLE_ORIG, orig);
        if zone != 0 {
            self.enc.be16(CTA_ZONE, zone);
        }
        self.enc.end(mark);
        let mut found = None;
        let result = self.transact("get flow", seq, |m| {
            expect_kind(m, IPCTNL_MSG_CT_NEW, "IPCTNL_MSG_CT_GET reply")?;
            found = Some(decode_flow(m.payload)?.to_owned_flow());
            Ok(())
        });
        match result {
            Ok(()) => Ok(found),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write(&mut self, spec: &FlowSpec, mode: WriteMode, operation: &'static str) -> Result<()> {
        let (seq, mark) = self.begin(
            IPCTNL_MSG_CT_NEW,
            NLM_F_ACK | mode.flags(),
            spec.orig.family(),
            NFNETLINK_V0,
        )?;
        put_flow_spec(&mut self.enc, spec, mode)?;
        self.enc.end(mark);
        self.transact(operation, seq, |_| Ok(()))
    }

    /// Creates a flow; fails with `EEXIST` if one with the same tuple and zone exists.
    ///
    /// With labels, the flow is read back: where no ruleset reserved label
    /// space the kernel creates the flow *without* its labels and says
    /// nothing (an update answers `ENOSPC`), so the same `ENOSPC` error is
    /// returned here, with the fix, rather than losing the labels silently.
    /// The flow stays created.
    pub fn create(&mut self, spec: &FlowSpec) -> Result<()> {
        self.write(spec, WriteMode::Create, "create flow")?;
        self.check_labels_kept(spec, "create flow")
    }

    pub(crate) fn check_labels_kept(
        &mut self,
        spec: &FlowSpec,
        operation: &'static str,
    ) -> Result<()> {
        let Some(wanted) = spec.labels.filter(|l| l.0 != 0) else {
            return Ok(());
        };
        let kept = self
            .get(&spec.orig, spec.zone.unwrap_or(0))?
            .and_then(|flow| flow.labels)
            .unwrap_or_default();
        if kept.0 & wanted.0 == wanted.0 {
            return Ok(());
        }
        Err(Error::Kernel {
            operation,
            errno: libc::ENOSPC,
            message: Some("the kernel created the flow without its labels".into()),
            offset: None,
        })
    }

    /// Changes an existing flow (timeout, status bits, mark, protoinfo,
    /// labels); fails with `ENOENT` if it does not exist.
    ///
    /// Status bits are added to the flow's own ([`StatusChange::Add`], like
    /// `conntrack -U -u`): the flow is read first and its status sent back
    /// with the bits added, since the kernel takes a whole word and refuses
    /// (`EBUSY`) one that would clear `SEEN_REPLY` or `ASSURED`. If the flow
    /// gains such a bit between the read and the write, the update is retried.
    /// [`FlowSpec::status_word`] sends the word as given.
    pub fn update(&mut self, spec: &FlowSpec) -> Result<()> {
        self.update_as(spec, "update flow")
    }

    /// Creates the flow, or updates it if it exists (status bits then added,
    /// as for [`Conntrack::update`], unless [`FlowSpec::status_word`]).
    pub fn create_or_update(&mut self, spec: &FlowSpec) -> Result<()> {
        if spec.status.is_none() || spec.status_change == StatusChange::Word {
            return self.write(spec, WriteMode::CreateOrUpdate, "create or update flow");
        }
        match self.write(spec, WriteMode::Create, "create or update flow") {
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                self.update_as(spec, "create or update flow")
            }
            Ok(()) => self.check_labels_kept(spec, "create or update flow"),
            other => other,
        }
    }

    fn update_as(&mut self, spec: &FlowSpec, operation: &'static str) -> Result<()> {
        let Some(bits) = spec
            .status
            .filter(|_| spec.status_change == StatusChange::Add)
        else {
            return self.write(spec, WriteMode::Update, operation);
        };
        check_status(bits, "status", StatusChange::Add)?;
        let zone = spec.zone.unwrap_or(0);
        let mut attempts = 0;
        loop {
            let Some(current) = self.get(&spec.orig, zone)? else {
                return Err(Error::Kernel {
                    operation,
                    errno: libc::ENOENT,
                    message: None,
                    offset: None,
                });
            };
            // Send back only the bits the kernel defines: the flow's own
            // (unchanged, so never refused) plus the new ones.
            let word = Status::from_bits_retain(
                (current.status | bits).bits() & crate::status::KNOWN_STATUS_BITS,
            );
            let merged = FlowSpec {
                status: Some(word),
                status_change: StatusChange::Word,
                ..spec.clone()
            };
            match self.write(&merged, WriteMode::Update, operation) {
                // The flow gained SEEN_REPLY/ASSURED since it was read.
                Err(e) if e.errno() == Some(libc::EBUSY) && attempts < 3 => attempts += 1,
                other => return other,
            }
        }
    }

    /// Makes the kernel size dump batches from our 64 KiB buffer, including the
    /// first one (docs/ctnetlink.md §7.2), with one cheap round trip per socket.
    pub(crate) fn warm_up(&mut self) -> Result<()> {
        if !self.channel.socket.warmed {
            self.table_stats()?;
        }
        Ok(())
    }

    /// Chooses how dumps from this handle are received (see [`Prefetch`];
    /// the default is [`Prefetch::Auto`]).
    pub fn set_prefetch(&mut self, prefetch: Prefetch) {
        self.prefetch = prefetch;
    }

    /// Gets a dump about to be requested ready: a fresh, warmed-up socket;
    /// returns whether to receive it on a prefetch thread.
    pub(crate) fn prepare_dump(&mut self) -> Result<bool> {
        self.ready()?;
        Ok(match self.prefetch {
            Prefetch::Never => {
                self.warm_up()?;
                false
            }
            Prefetch::Always => {
                self.warm_up()?;
                true
            }
            // The count's round trip also warms the socket up.
            Prefetch::Auto => self.count()? >= PREFETCH_MIN_FLOWS && parallel(),
        })
    }

    /// Starts a streaming dump of both address families.
    ///
    /// The [`Dump`] borrows this handle; read it with [`Dump::next_flow`]
    /// (borrowed views) or turn it into owned flows with [`Dump::into_flows`].
    /// Dropping it before the end is fine: the next request uses a fresh socket.
    pub fn dump(&mut self) -> Result<Dump<'_>> {
        self.dump_family(Family::All)
    }

    /// Starts a streaming dump of one family (filtered by the kernel) or both.
    pub fn dump_family(&mut self, family: Family) -> Result<Dump<'_>> {
        self.dump_message(IPCTNL_MSG_CT_GET, family)
    }

    /// Starts a streaming dump of one family (or both) that zeroes each
    /// flow's byte and packet counters as it reads them
    /// (`IPCTNL_MSG_CT_GET_CTRZERO`, `conntrack -L -z`). The kernel exchanges
    /// each counter for zero atomically, so traffic between two zeroing dumps
    /// is counted exactly once: what accounting tools (nlbwmon, ulogd) use to
    /// get per-interval bytes and packets. Counters exist only with
    /// `nf_conntrack_acct=1` in the namespace.
    ///
    /// Deliberately unfiltered: a zeroing dump zeroes every flow the kernel
    /// sends, and a filter evaluated partly in userspace would zero flows it
    /// then hides. Filter the flows you read, not the ones zeroed.
    pub fn dump_zeroing(&mut self, family: Family) -> Result<Dump<'_>> {
        self.dump_message(IPCTNL_MSG_CT_GET_CTRZERO, family)
    }

    /// Starts a streaming dump of the dying list: flows already removed from
    /// the table whose destroy event has not been delivered yet (`conntrack -L
    /// dying`). Flows stuck there are why a table "will not drain"; on current
    /// kernels the list holds entries only while an event listener lags.
    pub fn dump_dying(&mut self) -> Result<Dump<'_>> {
        self.dump_message(IPCTNL_MSG_CT_GET_DYING, Family::All)
    }

    /// Starts a streaming dump of the unconfirmed list (`conntrack -L
    /// unconfirmed`): flows created for a packet still in flight, not yet in
    /// the table. Kernels since 5.19 no longer keep such a list and answer
    /// with an empty dump.
    pub fn dump_unconfirmed(&mut self) -> Result<Dump<'_>> {
        self.dump_message(IPCTNL_MSG_CT_GET_UNCONFIRMED, Family::All)
    }

    fn dump_message(&mut self, message: u8, family: Family) -> Result<Dump<'_>> {
        let prefetch = self.prepare_dump()?;
        let (seq, mark) = self.begin(message, NLM_F_DUMP, family.raw(), NFNETLINK_V0)?;
        self.enc.end(mark);
        self.channel.socket.send(self.enc.as_bytes())?;
        Ok(Dump::new(&mut self.channel, seq, prefetch))
    }

    /// Dumps the table as an iterator of owned [`Flow`]s.
    pub fn flows(&mut self) -> Result<Flows<'_>> {
        Ok(self.dump()?.into_flows())
    }

    /// Dumps the table, calling `f` with a borrowed view of each flow; `f`
    /// returns `ControlFlow::Break(())` to stop early. Flows that fail to
    /// decode are counted in the summary and skipped; kernel and socket errors end the call.
    pub fn for_each_flow(
        &mut self,
        mut f: impl FnMut(FlowRef<'_>) -> ControlFlow<()>,
    ) -> Result<DumpSummary> {
        let mut dump = self.dump()?;
        while let Some(flow) = dump.next_flow() {
            match flow {
                Ok(flow) => {
                    if f(flow).is_break() {
                        break;
                    }
                }
                Err(Error::Decode(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(dump.summary())
    }

    /// Runs `f` up to `attempts` times while it fails with
    /// [`Error::DumpInterrupted`] (the kernel flagged the dump as inconsistent).
    pub fn retry_interrupted<T>(
        &mut self,
        attempts: usize,
        mut f: impl FnMut(&mut Conntrack) -> Result<T>,
    ) -> Result<T> {
        let mut last = Error::DumpInterrupted;
        for _ in 0..attempts.max(1) {
            match f(self) {
                Err(Error::DumpInterrupted) => last = Error::DumpInterrupted,
                other => return other,
            }
        }
        Err(last)
    }
}

/// Whether this process may run on two CPUs or more (asked once: the answer
/// reads cgroup files).
fn parallel() -> bool {
    static PARALLEL: OnceLock<bool> = OnceLock::new();
    *PARALLEL.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2))
}

/// The kernel-filtering half of the handle: what this kernel filters by
/// itself, and requests carrying a kernel-side filter.
impl Conntrack {
    /// What this kernel can filter by itself (probed once per process; see
    /// [`KernelFeatures::probe`]).
    pub fn features(&mut self) -> KernelFeatures {
        *self.features.get_or_insert_with(KernelFeatures::probe)
    }

    /// Plans the kernel-side part of `filter`, probing the kernel only when the
    /// plan would use a feature that needs it (status, zone, `CTA_FILTER`; for
    /// a flush, only when the whole filter could be evaluated by the kernel).
    /// A probe walks the host's whole conntrack table several times, so a CIDR
    /// or set filter, which the kernel cannot evaluate anyway, never pays for one.
    ///
    /// Every request carrying a filter is planned here, so this is where a
    /// filter that makes no sense ([`Filter::validate`]) is refused, before
    /// anything reaches the kernel.
    pub(crate) fn plan(&mut self, filter: &Filter, for_flush: bool) -> Result<Pushdown> {
        filter.validate()?;
        Ok(self.plan_valid(filter, for_flush))
    }

    fn plan_valid(&mut self, filter: &Filter, for_flush: bool) -> Pushdown {
        if let Some(features) = self.features {
            return Pushdown::plan(filter, &features, for_flush);
        }
        let optimistic = Pushdown::plan(filter, &KernelFeatures::everything(), for_flush);
        let needs_probe = optimistic.status.is_some()
            || optimistic.zone.is_some()
            || optimistic.orig.flags != 0
            || optimistic.reply.flags != 0;
        if !needs_probe || (for_flush && !optimistic.exact) {
            return Pushdown::plan(filter, &KernelFeatures::conservative(), for_flush);
        }
        let features = if for_flush {
            KernelFeatures::probe()
        } else {
            KernelFeatures::probe_dump()
        };
        Pushdown::plan(filter, &features, for_flush)
    }

    /// Replaces the probed kernel features, e.g. to check in tests that a
    /// filter stays correct on a kernel lacking some of them.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn assume_features(&mut self, features: KernelFeatures) {
        self.features = Some(features);
    }

    /// Starts a dump carrying a kernel-side filter.
    pub(crate) fn dump_pushdown(&mut self, plan: &Pushdown) -> Result<Dump<'_>> {
        let prefetch = self.prepare_dump()?;
        let (seq, mark) = self.begin(IPCTNL_MSG_CT_GET, NLM_F_DUMP, plan.family, NFNETLINK_V0)?;
        plan.encode(&mut self.enc);
        self.enc.end(mark);
        self.channel.socket.send(self.enc.as_bytes())?;
        Ok(Dump::new(&mut self.channel, seq, prefetch))
    }

    /// Sends a flush (`IPCTNL_MSG_CT_DELETE` without a tuple) with a kernel-side filter.
    /// `version = 1` so that a family restricts the flush (docs/ctnetlink.md §4.3).
    pub(crate) fn flush_pushdown(&mut self, plan: &Pushdown) -> Result<()> {
        let (seq, mark) = self.begin(IPCTNL_MSG_CT_DELETE, NLM_F_ACK, plan.family, 1)?;
        plan.encode(&mut self.enc);
        self.enc.end(mark);
        self.transact("flush", seq, |_| Ok(()))
    }
}

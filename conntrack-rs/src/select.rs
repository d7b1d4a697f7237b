// SPDX-License-Identifier: MIT OR Apache-2.0
//! Filtered dumps, counts and grouped counts on a [`Conntrack`] handle.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::conntrack::Conntrack;
use crate::consts::*;
use crate::dump::{Dump, DumpSummary};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::flow::{Flow, FlowRef};
use crate::orphans::{OrphanCounts, OrphanPolicy, OrphanScan};
use crate::pushdown::{KernelFeatures, Pushdown};

/// A dump restricted to the flows a [`Filter`] selects (from [`Conntrack::dump_filtered`]).
///
/// The kernel filters what it can; every flow is checked against the whole
/// filter here before it is handed out.
#[derive(Debug)]
pub struct FilteredDump<'h, 'f> {
    dump: Dump<'h>,
    filter: &'f Filter,
    matched: u64,
}

impl FilteredDump<'_, '_> {
    /// The next matching flow (a borrowed view; see [`Dump::next_flow`]).
    #[allow(clippy::should_implement_trait)] // lending: cannot be `Iterator`
    pub fn next_flow(&mut self) -> Option<Result<FlowRef<'_>>> {
        let filter = self.filter;
        let next = self.dump.next_flow_where(|flow| filter.matches(flow));
        if let Some(Ok(_)) = next {
            self.matched += 1;
        }
        next
    }

    /// Totals of the underlying dump (what the kernel sent).
    pub fn summary(&self) -> DumpSummary {
        self.dump.summary()
    }

    /// Flows that matched so far.
    pub fn matched(&self) -> u64 {
        self.matched
    }
}

/// What [`Conntrack::count_by`] groups flows by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupBy {
    /// Original source address.
    Source,
    /// Original destination address.
    Destination,
    /// Original source port (`None` for flows without ports).
    SourcePort,
    /// Original destination port (`None` for flows without ports).
    DestinationPort,
    /// Layer-4 protocol number.
    Protocol,
    /// TCP state (`None` for other protocols).
    TcpState,
    /// Zone id.
    Zone,
    /// Mark.
    Mark,
}

/// One component of a group key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum GroupValue {
    /// An address.
    Addr(IpAddr),
    /// A port, protocol number, zone or mark.
    Number(u32),
    /// A TCP state.
    TcpState(crate::TcpState),
    /// The flow has no such value (e.g. no ports, not TCP).
    None,
}

impl std::fmt::Display for GroupValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupValue::Addr(addr) => write!(f, "{addr}"),
            GroupValue::Number(n) => write!(f, "{n}"),
            GroupValue::TcpState(state) => write!(f, "{state}"),
            GroupValue::None => f.write_str("-"),
        }
    }
}

impl GroupBy {
    /// Every key, in declaration order.
    pub const ALL: [GroupBy; 8] = [
        GroupBy::Source,
        GroupBy::Destination,
        GroupBy::SourcePort,
        GroupBy::DestinationPort,
        GroupBy::Protocol,
        GroupBy::TcpState,
        GroupBy::Zone,
        GroupBy::Mark,
    ];

    /// Short name: `src`, `dst`, `src_port`, `dst_port`, `proto`, `state`,
    /// `zone`, `mark` (the Python binding's `count_by` keys).
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Source => "src",
            GroupBy::Destination => "dst",
            GroupBy::SourcePort => "src_port",
            GroupBy::DestinationPort => "dst_port",
            GroupBy::Protocol => "proto",
            GroupBy::TcpState => "state",
            GroupBy::Zone => "zone",
            GroupBy::Mark => "mark",
        }
    }

    /// The key of a [`name`](GroupBy::name).
    pub fn from_name(name: &str) -> Option<GroupBy> {
        GroupBy::ALL.into_iter().find(|key| key.name() == name)
    }

    fn value<S>(self, flow: &Flow<S>) -> GroupValue {
        let number = |n: Option<u16>| n.map_or(GroupValue::None, |n| GroupValue::Number(n.into()));
        match self {
            GroupBy::Source => GroupValue::Addr(flow.orig.src),
            GroupBy::Destination => GroupValue::Addr(flow.orig.dst),
            GroupBy::SourcePort => number(flow.orig.src_port()),
            GroupBy::DestinationPort => number(flow.orig.dst_port()),
            GroupBy::Protocol => GroupValue::Number(flow.protocol().into()),
            GroupBy::TcpState => flow
                .tcp_state()
                .map_or(GroupValue::None, GroupValue::TcpState),
            GroupBy::Zone => GroupValue::Number(flow.zone_id().into()),
            GroupBy::Mark => GroupValue::Number(flow.mark.unwrap_or(0)),
        }
    }
}

/// Result of [`Conntrack::count_by`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupCounts {
    /// The largest groups, largest first (ties ordered by key), at most `top` of them.
    pub groups: Vec<(Vec<GroupValue>, u64)>,
    /// Flows in the groups beyond the top ones.
    pub other: u64,
    /// Number of groups beyond the top ones.
    pub other_groups: u64,
    /// Flows counted (matching the filter).
    pub total: u64,
}

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
    pub(crate) fn plan(&mut self, filter: &Filter, for_flush: bool) -> Pushdown {
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
        self.socket.send(self.enc.as_bytes())?;
        Ok(Dump::new(self, seq, prefetch))
    }

    /// Sends a flush (`IPCTNL_MSG_CT_DELETE` without a tuple) with a kernel-side filter.
    /// `version = 1` so that a family restricts the flush (CTNETLINK.md §4.3).
    pub(crate) fn flush_pushdown(&mut self, plan: &Pushdown) -> Result<()> {
        let (seq, mark) = self.begin(IPCTNL_MSG_CT_DELETE, NLM_F_ACK, plan.family, 1)?;
        plan.encode(&mut self.enc);
        self.enc.end(mark);
        self.transact("flush", seq, |_| Ok(()))
    }

    /// Dumps the flows `filter` selects, with the kernel filtering what it can.
    pub fn dump_filtered<'h, 'f>(&'h mut self, filter: &'f Filter) -> Result<FilteredDump<'h, 'f>> {
        let plan = self.plan(filter, false);
        Ok(FilteredDump {
            dump: self.dump_pushdown(&plan)?,
            filter,
            matched: 0,
        })
    }

    /// The flows `filter` selects, as owned flows.
    pub fn flows_matching(&mut self, filter: &Filter) -> Result<Vec<Flow>> {
        let mut dump = self.dump_filtered(filter)?;
        let mut flows = Vec::new();
        while let Some(flow) = dump.next_flow() {
            flows.push(flow?.to_owned_flow());
        }
        Ok(flows)
    }

    /// Counts the flows `filter` selects in one streaming pass (no owned flows).
    /// Unlike [`Conntrack::count`] this walks the table; with an empty filter
    /// it counts what a dump shows (no expired-but-unreaped entries).
    pub fn count_matching(&mut self, filter: &Filter) -> Result<u64> {
        let mut dump = self.dump_filtered(filter)?;
        while let Some(flow) = dump.next_flow() {
            flow?;
        }
        Ok(dump.matched())
    }

    /// Counts the flows `filter` selects grouped by `keys` (e.g. source, or
    /// destination port and protocol), in one streaming pass without owned
    /// flows, keeping the `top` largest groups and summing the rest into
    /// `other` (`top = usize::MAX` keeps all). Replaces the grep-per-IP,
    /// per-port, per-protocol checks run against `conntrack -L`.
    pub fn count_by(
        &mut self,
        keys: &[GroupBy],
        filter: &Filter,
        top: usize,
    ) -> Result<GroupCounts> {
        let mut tally = GroupTally::new(keys)?;
        let mut dump = self.dump_filtered(filter)?;
        while let Some(flow) = dump.next_flow() {
            tally.add(&flow?);
        }
        drop(dump);
        Ok(tally.finish(top))
    }
}

/// One grouping of a [`Conntrack::census`]: the keys, and how many of the
/// largest groups to keep (the rest is summed into `other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grouping<'k> {
    /// What to group by (at least one key).
    pub keys: &'k [GroupBy],
    /// Groups to keep, largest first (`usize::MAX`: all).
    pub top: usize,
}

impl<'k> Grouping<'k> {
    /// The `top` largest groups by `keys`.
    pub fn new(keys: &'k [GroupBy], top: usize) -> Self {
        Grouping { keys, top }
    }
}

/// What one streaming pass over a table found ([`Conntrack::census`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Census {
    /// Flows seen.
    pub flows: u64,
    /// One result per requested [`Grouping`], in order.
    pub groups: Vec<GroupCounts>,
    /// Orphans per category, when a policy was given.
    pub orphans: Option<OrphanCounts>,
    /// The kernel flagged the dump as inconsistent (`NLM_F_DUMP_INTR`: the table
    /// changed while it was walked; some flows may be missing or seen twice).
    pub interrupted: bool,
    /// Entries that could not be decoded and were skipped.
    pub decode_errors: u64,
    /// How long the pass took.
    pub elapsed: Duration,
}

impl Conntrack {
    /// One streaming pass over the whole table (borrowed views, no owned flow)
    /// that counts flows grouped several ways at once and, with a policy,
    /// classifies orphans: what a health report or a metrics scrape needs,
    /// for the cost of one dump.
    ///
    /// Unlike the other calls, a monitoring pass does not stop at an entry it
    /// cannot decode or at an interrupted dump: both are counted in the
    /// [`Census`] and the pass goes on.
    ///
    /// ```no_run
    /// use conntrack::{Conntrack, GroupBy, Grouping, OrphanPolicy};
    /// # fn main() -> conntrack::Result<()> {
    /// let mut ct = Conntrack::open()?;
    /// let census = ct.census(
    ///     &[
    ///         Grouping::new(&[GroupBy::Source], 10),
    ///         Grouping::new(&[GroupBy::Protocol, GroupBy::DestinationPort], 10),
    ///     ],
    ///     Some(&OrphanPolicy::new()),
    /// )?;
    /// println!("{} flows, top source {:?}", census.flows, census.groups[0].groups.first());
    /// # Ok(()) }
    /// ```
    pub fn census(
        &mut self,
        groupings: &[Grouping<'_>],
        orphans: Option<&OrphanPolicy>,
    ) -> Result<Census> {
        let mut tallies = groupings
            .iter()
            .map(|g| GroupTally::new(g.keys))
            .collect::<Result<Vec<_>>>()?;
        let timeouts = orphans
            .map(|policy| self.orphan_timeouts(policy))
            .transpose()?;
        let mut scan = orphans.zip(timeouts).map(|(p, t)| OrphanScan::new(p, t));
        let started = Instant::now();
        let (mut flows, mut interrupted, mut decode_errors) = (0u64, false, 0u64);
        let mut dump = self.dump()?;
        while let Some(flow) = dump.next_flow() {
            let flow = match flow {
                Ok(flow) => flow,
                Err(Error::Decode(_)) => {
                    decode_errors += 1;
                    continue;
                }
                Err(Error::DumpInterrupted) => {
                    interrupted = true;
                    break;
                }
                Err(e) => return Err(e),
            };
            flows += 1;
            for tally in &mut tallies {
                tally.add(&flow);
            }
            if let Some(scan) = scan.as_mut() {
                scan.observe(&flow);
            }
        }
        drop(dump);
        Ok(Census {
            flows,
            groups: tallies
                .into_iter()
                .zip(groupings)
                .map(|(tally, g)| tally.finish(g.top))
                .collect(),
            orphans: scan.map(|s| s.counts()),
            interrupted,
            decode_errors,
            elapsed: started.elapsed(),
        })
    }
}

/// Counts flows grouped by a key, one flow at a time: the accumulator behind
/// [`Conntrack::count_by`], for a pass that does several things at once (group
/// by source *and* by port *and* classify orphans in one dump, or count events).
///
/// ```no_run
/// use conntrack::{Conntrack, GroupBy, GroupTally};
/// # fn main() -> conntrack::Result<()> {
/// let mut ct = Conntrack::open()?;
/// let mut by_source = GroupTally::new(&[GroupBy::Source])?;
/// let mut by_port = GroupTally::new(&[GroupBy::Protocol, GroupBy::DestinationPort])?;
/// let mut dump = ct.dump()?;
/// while let Some(flow) = dump.next_flow() {
///     let flow = flow?;
///     by_source.add(&flow);
///     by_port.add(&flow);
/// }
/// for (key, flows) in by_source.finish(10).groups {
///     println!("{} {flows}", key[0]);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GroupTally {
    keys: Box<[GroupBy]>,
    counts: HashMap<Box<[GroupValue]>, u64>,
    key: Vec<GroupValue>,
    total: u64,
}

impl GroupTally {
    /// A tally grouping by `keys` (at least one).
    pub fn new(keys: &[GroupBy]) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::InvalidInput(
                "count_by needs at least one key".into(),
            ));
        }
        Ok(GroupTally {
            keys: keys.into(),
            counts: HashMap::new(),
            key: Vec::with_capacity(keys.len()),
            total: 0,
        })
    }

    /// Counts one flow in its group.
    pub fn add<S>(&mut self, flow: &Flow<S>) {
        self.key.clear();
        self.key.extend(self.keys.iter().map(|k| k.value(flow)));
        self.total += 1;
        match self.counts.get_mut(self.key.as_slice()) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(self.key.clone().into_boxed_slice(), 1);
            }
        }
    }

    /// Flows counted so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Distinct groups so far.
    pub fn groups(&self) -> usize {
        self.counts.len()
    }

    /// The `top` largest groups, largest first (ties ordered by key), and the
    /// rest summed into `other` (`top = usize::MAX` keeps all).
    pub fn finish(self, top: usize) -> GroupCounts {
        let mut groups: Vec<(Vec<GroupValue>, u64)> = self
            .counts
            .into_iter()
            .map(|(k, n)| (k.into_vec(), n))
            .collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let rest = if groups.len() > top {
            groups.split_off(top)
        } else {
            Vec::new()
        };
        GroupCounts {
            other: rest.iter().map(|(_, n)| n).sum(),
            other_groups: rest.len() as u64,
            groups,
            total: self.total,
        }
    }
}

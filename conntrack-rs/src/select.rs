// SPDX-License-Identifier: MIT OR Apache-2.0
//! Filtered dumps, counts and grouped counts on a [`Conntrack`] handle.

use std::time::{Duration, Instant};

use crate::conntrack::Conntrack;
use crate::dump::{Dump, DumpSummary};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::flow::{Flow, FlowRef};
use crate::group::{GroupBy, GroupCounts, GroupTally, Grouping};
use crate::orphans::{OrphanCounts, OrphanPolicy, OrphanScan};

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

impl Conntrack {
    /// Dumps the flows `filter` selects, with the kernel filtering what it can.
    pub fn dump_filtered<'h, 'f>(&'h mut self, filter: &'f Filter) -> Result<FilteredDump<'h, 'f>> {
        let plan = self.plan(filter, false)?;
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

/// What one streaming pass over a table found ([`Conntrack::census`]).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::seconds"))]
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
        // Local addresses before the dump, sockets after it (orphans.rs: the
        // read order that keeps a new connection from looking orphaned).
        let evidence = orphans.and_then(|policy| self.socket_evidence(policy));
        let mut scan = orphans
            .zip(timeouts)
            .map(|(p, t)| OrphanScan::new(p, t).with_evidence(evidence));
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
        if let Some(scan) = scan.as_mut() {
            scan.settle();
        }
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

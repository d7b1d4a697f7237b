// SPDX-License-Identifier: MIT OR Apache-2.0
//! Drop detection: what the kernel's conntrack counters did between two reads.
//!
//! The counters of `IPCTNL_MSG_CT_GET_STATS_CPU` are per-CPU `unsigned int`s that
//! wrap at 2³²; a delta is therefore computed per CPU with wrapping arithmetic on
//! 32 bits and then summed (a sum of wrapped totals would be wrong as soon as one CPU
//! wraps). Counters are per network namespace.

use std::fmt;

use crate::stats::{CpuCounters, CpuStats, KernelStats};

/// One kernel conntrack counter (`enum ctattr_stats_cpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Counter {
    /// `searched` (no longer counted).
    Searched,
    /// `found`.
    Found,
    /// `new` (no longer counted).
    New,
    /// `invalid`.
    Invalid,
    /// `ignore` (no longer counted).
    Ignore,
    /// `delete` (no longer counted).
    Delete,
    /// `delete_list` (no longer counted).
    DeleteList,
    /// `insert`.
    Insert,
    /// `insert_failed`.
    InsertFailed,
    /// `drop`.
    Drop,
    /// `early_drop`.
    EarlyDrop,
    /// `error`.
    Error,
    /// `search_restart`.
    SearchRestart,
    /// `clash_resolve` (5.9+).
    ClashResolve,
    /// `chaintoolong` (5.17+).
    ChainTooLong,
}

impl Counter {
    /// Every counter, in `ctattr_stats_cpu` order.
    pub const ALL: &'static [Counter] = &[
        Counter::Searched,
        Counter::Found,
        Counter::New,
        Counter::Invalid,
        Counter::Ignore,
        Counter::Delete,
        Counter::DeleteList,
        Counter::Insert,
        Counter::InsertFailed,
        Counter::Drop,
        Counter::EarlyDrop,
        Counter::Error,
        Counter::SearchRestart,
        Counter::ClashResolve,
        Counter::ChainTooLong,
    ];

    /// The kernel's name, as `conntrack -S` prints it (`"insert_failed"`, `"chaintoolong"`).
    pub fn name(self) -> &'static str {
        match self {
            Counter::Searched => "searched",
            Counter::Found => "found",
            Counter::New => "new",
            Counter::Invalid => "invalid",
            Counter::Ignore => "ignore",
            Counter::Delete => "delete",
            Counter::DeleteList => "delete_list",
            Counter::Insert => "insert",
            Counter::InsertFailed => "insert_failed",
            Counter::Drop => "drop",
            Counter::EarlyDrop => "early_drop",
            Counter::Error => "error",
            Counter::SearchRestart => "search_restart",
            Counter::ClashResolve => "clash_resolve",
            Counter::ChainTooLong => "chaintoolong",
        }
    }

    /// This counter's value in a set of counters (`None`: the kernel did not report it).
    pub fn get(self, counters: &CpuCounters) -> Option<u64> {
        match self {
            Counter::Searched => counters.searched,
            Counter::Found => counters.found,
            Counter::New => counters.new,
            Counter::Invalid => counters.invalid,
            Counter::Ignore => counters.ignore,
            Counter::Delete => counters.delete,
            Counter::DeleteList => counters.delete_list,
            Counter::Insert => counters.insert,
            Counter::InsertFailed => counters.insert_failed,
            Counter::Drop => counters.drop,
            Counter::EarlyDrop => counters.early_drop,
            Counter::Error => counters.error,
            Counter::SearchRestart => counters.search_restart,
            Counter::ClashResolve => counters.clash_resolve,
            Counter::ChainTooLong => counters.chain_too_long,
        }
    }

    fn slot(self, counters: &mut CpuCounters) -> &mut Option<u64> {
        match self {
            Counter::Searched => &mut counters.searched,
            Counter::Found => &mut counters.found,
            Counter::New => &mut counters.new,
            Counter::Invalid => &mut counters.invalid,
            Counter::Ignore => &mut counters.ignore,
            Counter::Delete => &mut counters.delete,
            Counter::DeleteList => &mut counters.delete_list,
            Counter::Insert => &mut counters.insert,
            Counter::InsertFailed => &mut counters.insert_failed,
            Counter::Drop => &mut counters.drop,
            Counter::EarlyDrop => &mut counters.early_drop,
            Counter::Error => &mut counters.error,
            Counter::SearchRestart => &mut counters.search_restart,
            Counter::ClashResolve => &mut counters.clash_resolve,
            Counter::ChainTooLong => &mut counters.chain_too_long,
        }
    }

    /// What one unit of the counter means, in plain language, phrased to follow a
    /// number ("3 packets dropped because the table was full ...").
    pub fn meaning(self) -> &'static str {
        match self {
            Counter::Searched => "hash lookups (no longer counted by current kernels)",
            Counter::Found => "lookups that found an existing entry",
            Counter::New => "entries created (no longer counted by current kernels)",
            Counter::Invalid => {
                "packets conntrack could not track (malformed, out of the TCP window, \
                 impossible flags): marked INVALID, and usually dropped by the firewall"
            }
            Counter::Ignore => "packets not tracked (no longer counted by current kernels)",
            Counter::Delete | Counter::DeleteList => {
                "entries deleted (no longer counted by current kernels)"
            }
            Counter::Insert => "entries inserted into the table",
            Counter::InsertFailed => {
                "new entries that could not be inserted (an identical entry won a race, \
                 or the hash chain was too long): their packets were dropped"
            }
            Counter::Drop => {
                "packets dropped because the table was full (nf_conntrack_max reached and \
                 no entry could be evicted) or an entry could not be allocated"
            }
            Counter::EarlyDrop => {
                "entries evicted early (unassured ones first) to make room because the \
                 table was full"
            }
            Counter::Error => {
                "packets with tracking errors (e.g. ICMP errors that matched no connection)"
            }
            Counter::SearchRestart => {
                "lookups restarted because the table changed under them (resize, or an \
                 entry moved during the walk); harmless unless sustained"
            }
            Counter::ClashResolve => {
                "insert races resolved without dropping (two packets of one new flow \
                 handled at once, typically parallel UDP such as DNS A+AAAA); harmless"
            }
            Counter::ChainTooLong => {
                "new entries refused because their hash chain was too long (too few \
                 buckets for the number of entries, or a hash-flooding attack): their \
                 packets were dropped"
            }
        }
    }

    /// What to do when this counter moves, for the counters that signal a problem.
    pub fn advice(self) -> Option<&'static str> {
        Some(match self {
            Counter::Drop => {
                "raise nf_conntrack_max within a memory budget, or find and stop what \
                 fills the table"
            }
            Counter::EarlyDrop => {
                "the table is full: raise nf_conntrack_max, or shorten the timeouts of \
                 states that linger"
            }
            Counter::InsertFailed => {
                "check chaintoolong (too few buckets) and clash_resolve (parallel UDP from \
                 one socket); a few are normal under heavy DNS"
            }
            Counter::ChainTooLong => "raise nf_conntrack_buckets (the hashsize module parameter)",
            Counter::Invalid => {
                "look for asymmetric routing or window tracking issues; log them with \
                 nf_conntrack_log_invalid=255, or consider nf_conntrack_tcp_be_liberal=1"
            }
            _ => return None,
        })
    }

    /// True for counters whose increase means packets were lost or the table is
    /// under pressure: `drop`, `early_drop`, `insert_failed`, `chaintoolong`, `invalid`.
    pub fn is_problem(self) -> bool {
        self.advice().is_some()
    }

    /// `"<n> <meaning>"`.
    pub fn describe(self, delta: u64) -> String {
        format!("{delta} {}", self.meaning())
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How much each kernel counter moved between two [`KernelStats`] reads of the same
/// namespace (see [`Conntrack::kernel_stats`](crate::Conntrack::kernel_stats)).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KernelStatsDelta {
    /// The delta of each CPU.
    pub per_cpu: Vec<CpuStats>,
    /// The sum of the per-CPU deltas.
    pub total: CpuCounters,
}

impl KernelStatsDelta {
    /// `after − before`, per CPU with 32-bit wrapping (`(new as u32).wrapping_sub(old as u32)`),
    /// then summed. CPUs are matched by number; a CPU absent from `before` counts from 0.
    /// A counter `after` does not report stays `None`.
    pub fn between(before: &KernelStats, after: &KernelStats) -> Self {
        let zero = CpuCounters::default();
        let per_cpu: Vec<CpuStats> = after
            .per_cpu
            .iter()
            .map(|new| {
                let old = before
                    .per_cpu
                    .iter()
                    .find(|old| old.cpu == new.cpu)
                    .map_or(&zero, |old| &old.counters);
                let mut counters = CpuCounters::default();
                for counter in Counter::ALL {
                    if let Some(value) = counter.get(&new.counters) {
                        let previous = counter.get(old).unwrap_or(0);
                        *counter.slot(&mut counters) =
                            Some(u64::from((value as u32).wrapping_sub(previous as u32)));
                    }
                }
                CpuStats {
                    cpu: new.cpu,
                    counters,
                }
            })
            .collect();
        let mut total = CpuCounters::default();
        for cpu in &per_cpu {
            total.accumulate(&cpu.counters);
        }
        KernelStatsDelta { per_cpu, total }
    }

    /// The delta of one counter (`None`: not reported by this kernel).
    pub fn get(&self, counter: Counter) -> Option<u64> {
        counter.get(&self.total)
    }

    /// Every reported counter with its delta, in kernel order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL
            .iter()
            .filter_map(move |c| self.get(*c).map(|delta| (*c, delta)))
    }

    /// The problem counters ([`Counter::is_problem`]) that moved.
    pub fn problems(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        self.iter()
            .filter(|(counter, delta)| *delta > 0 && counter.is_problem())
    }

    /// True when the table overflowed in the interval (`drop` or `early_drop` moved).
    pub fn table_full(&self) -> bool {
        self.get(Counter::Drop).unwrap_or(0) > 0 || self.get(Counter::EarlyDrop).unwrap_or(0) > 0
    }

    /// A plain-language line for every counter that moved, problems first
    /// ("12 packets dropped because the table was full ... — raise nf_conntrack_max ...").
    pub fn readings(&self) -> Vec<String> {
        let moved = self.iter().filter(|(_, delta)| *delta > 0);
        let (mut problems, others): (Vec<_>, Vec<_>) = moved.partition(|(c, _)| c.is_problem());
        problems.extend(others);
        problems
            .into_iter()
            .map(|(counter, delta)| match counter.advice() {
                Some(advice) => format!("{} ({counter}) — {advice}", counter.describe(delta)),
                None => format!("{} ({counter})", counter.describe(delta)),
            })
            .collect()
    }
}

impl fmt::Display for KernelStatsDelta {
    /// One reading per line; "no counter moved" when nothing did.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let readings = self.readings();
        if readings.is_empty() {
            return f.write_str("no counter moved");
        }
        for (i, line) in readings.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(line)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(cpu: u16, drop: u64, invalid: u64) -> CpuStats {
        CpuStats {
            cpu,
            counters: CpuCounters {
                drop: Some(drop),
                invalid: Some(invalid),
                found: Some(0),
                ..CpuCounters::default()
            },
        }
    }

    #[test]
    fn deltas_wrap_per_cpu() {
        let before = KernelStats::from_per_cpu(vec![
            cpu(0, u64::from(u32::MAX) - 2, 10),
            cpu(1, 5, u64::from(u32::MAX)),
        ]);
        let after = KernelStats::from_per_cpu(vec![cpu(0, 4, 10), cpu(1, 6, 3)]);
        let delta = KernelStatsDelta::between(&before, &after);
        // CPU 0: 4 − (2³² − 3) mod 2³² = 7; CPU 1: 6 − 5 = 1.
        assert_eq!(delta.per_cpu[0].counters.drop, Some(7));
        assert_eq!(delta.per_cpu[1].counters.drop, Some(1));
        assert_eq!(delta.get(Counter::Drop), Some(8));
        // CPU 1 invalid: 3 − (2³² − 1) mod 2³² = 4.
        assert_eq!(delta.get(Counter::Invalid), Some(4));
        // The naive difference of the sums would be nonsense.
        let naive = after
            .total
            .drop
            .unwrap()
            .wrapping_sub(before.total.drop.unwrap());
        assert_ne!(naive, 8);
        assert_eq!(delta.get(Counter::ChainTooLong), None, "not reported");
        assert!(delta.table_full());
        let problems: Vec<_> = delta.problems().collect();
        assert_eq!(problems, vec![(Counter::Invalid, 4), (Counter::Drop, 8)]);
        let readings = delta.readings();
        assert_eq!(readings.len(), 2, "found did not move");
        assert!(
            readings[1].starts_with("8 packets dropped because the table was full"),
            "{readings:?}"
        );
        assert!(readings[1].contains("raise nf_conntrack_max"));
    }

    #[test]
    fn new_cpu_counts_from_zero_and_quiet_table() {
        let before = KernelStats::from_per_cpu(vec![cpu(0, 1, 1)]);
        let after = KernelStats::from_per_cpu(vec![cpu(0, 1, 1), cpu(1, 2, 0)]);
        let delta = KernelStatsDelta::between(&before, &after);
        assert_eq!(delta.get(Counter::Drop), Some(2));
        let same = KernelStatsDelta::between(&before, &before);
        assert!(!same.table_full());
        assert_eq!(same.to_string(), "no counter moved");
    }

    #[test]
    fn every_counter_has_a_reading() {
        for counter in Counter::ALL {
            let mut counters = CpuCounters::default();
            *counter.slot(&mut counters) = Some(1);
            assert_eq!(counter.get(&counters), Some(1));
            assert!(!counter.meaning().is_empty());
            let field = counters.fields().into_iter().find(|(_, v)| v.is_some());
            assert_eq!(field.map(|(name, _)| name), Some(counter.name()));
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Table size and kernel counters (`IPCTNL_MSG_CT_GET_STATS`, `IPCTNL_MSG_CT_GET_STATS_CPU`).
//!
//! Every counter is optional: older kernels emit fewer attributes
//! (`CTA_STATS_CLASH_RESOLVE` since ~5.9, `CTA_STATS_CHAIN_TOOLONG` since ~5.17),
//! and some (`SEARCHED`, `NEW`, `IGNORE`, `DELETE`, `DELETE_LIST`) are no longer
//! sent at all. `None` means "this kernel did not report it", never zero.

use crate::consts::*;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::wire::{netfilter_attrs, Attrs};

/// Entries and limit of the handle's namespace (`IPCTNL_MSG_CT_GET_STATS`).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TableStats {
    /// `CTA_STATS_GLOBAL_ENTRIES`: entries of this namespace, including expired
    /// ones not yet reaped, unconfirmed and dying ones (so it can exceed a dump's length).
    pub entries: u32,
    /// `CTA_STATS_GLOBAL_MAX_ENTRIES`: the (global) `nf_conntrack_max`.
    pub max_entries: Option<u32>,
}

impl TableStats {
    /// Fill ratio `entries / max_entries` (0.0 ..= 1.0+), when the limit is known and non-zero.
    pub fn usage(&self) -> Option<f64> {
        match self.max_entries {
            Some(max) if max > 0 => Some(f64::from(self.entries) / f64::from(max)),
            _ => None,
        }
    }
}

/// Per-CPU conntrack counters (`enum ctattr_stats_cpu`), or their sum.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct CpuCounters {
    /// `CTA_STATS_SEARCHED` (no longer sent by current kernels).
    pub searched: Option<u64>,
    /// `CTA_STATS_FOUND`: lookups that found an entry.
    pub found: Option<u64>,
    /// `CTA_STATS_NEW` (no longer sent).
    pub new: Option<u64>,
    /// `CTA_STATS_INVALID`: packets that could not be tracked.
    pub invalid: Option<u64>,
    /// `CTA_STATS_IGNORE` (no longer sent).
    pub ignore: Option<u64>,
    /// `CTA_STATS_DELETE` (no longer sent).
    pub delete: Option<u64>,
    /// `CTA_STATS_DELETE_LIST` (no longer sent).
    pub delete_list: Option<u64>,
    /// `CTA_STATS_INSERT`: entries inserted.
    pub insert: Option<u64>,
    /// `CTA_STATS_INSERT_FAILED`: insert clashes that could not be resolved.
    pub insert_failed: Option<u64>,
    /// `CTA_STATS_DROP`: packets dropped because the table was full or allocation failed.
    pub drop: Option<u64>,
    /// `CTA_STATS_EARLY_DROP`: non-assured entries evicted to make room.
    pub early_drop: Option<u64>,
    /// `CTA_STATS_ERROR`: ICMP errors / invalid packets in tracking.
    pub error: Option<u64>,
    /// `CTA_STATS_SEARCH_RESTART`: lookups restarted by concurrent table changes.
    pub search_restart: Option<u64>,
    /// `CTA_STATS_CLASH_RESOLVE`: insert clashes resolved.
    pub clash_resolve: Option<u64>,
    /// `CTA_STATS_CHAIN_TOOLONG`: inserts refused because a hash chain was too long.
    pub chain_too_long: Option<u64>,
}

impl CpuCounters {
    /// Every counter with its kernel name (`"found"`, `"insert_failed"`, `"chaintoolong"`, ...),
    /// in `ctattr_stats_cpu` order.
    pub fn fields(&self) -> [(&'static str, Option<u64>); 15] {
        [
            ("searched", self.searched),
            ("found", self.found),
            ("new", self.new),
            ("invalid", self.invalid),
            ("ignore", self.ignore),
            ("delete", self.delete),
            ("delete_list", self.delete_list),
            ("insert", self.insert),
            ("insert_failed", self.insert_failed),
            ("drop", self.drop),
            ("early_drop", self.early_drop),
            ("error", self.error),
            ("search_restart", self.search_restart),
            ("clash_resolve", self.clash_resolve),
            ("chaintoolong", self.chain_too_long),
        ]
    }

    fn slot(&mut self, kind: u16) -> Option<&mut Option<u64>> {
        Some(match kind {
            CTA_STATS_SEARCHED => &mut self.searched,
            CTA_STATS_FOUND => &mut self.found,
            CTA_STATS_NEW => &mut self.new,
            CTA_STATS_INVALID => &mut self.invalid,
            CTA_STATS_IGNORE => &mut self.ignore,
            CTA_STATS_DELETE => &mut self.delete,
            CTA_STATS_DELETE_LIST => &mut self.delete_list,
            CTA_STATS_INSERT => &mut self.insert,
            CTA_STATS_INSERT_FAILED => &mut self.insert_failed,
            CTA_STATS_DROP => &mut self.drop,
            CTA_STATS_EARLY_DROP => &mut self.early_drop,
            CTA_STATS_ERROR => &mut self.error,
            CTA_STATS_SEARCH_RESTART => &mut self.search_restart,
            CTA_STATS_CLASH_RESOLVE => &mut self.clash_resolve,
            CTA_STATS_CHAIN_TOOLONG => &mut self.chain_too_long,
            _ => return None,
        })
    }

    /// Adds `other` into `self`, counter by counter (a counter stays `None`
    /// only if neither side reported it).
    pub fn accumulate(&mut self, other: &CpuCounters) {
        macro_rules! add {
            ($($field:ident),*) => {$(
                if let Some(value) = other.$field {
                    self.$field = Some(self.$field.unwrap_or(0).wrapping_add(value));
                }
            )*};
        }
        add!(
            searched,
            found,
            new,
            invalid,
            ignore,
            delete,
            delete_list,
            insert,
            insert_failed,
            drop,
            early_drop,
            error,
            search_restart,
            clash_resolve,
            chain_too_long
        );
    }
}

/// Counters of one CPU.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CpuStats {
    /// CPU number (from `nfgenmsg.res_id`).
    pub cpu: u16,
    /// Its counters.
    pub counters: CpuCounters,
}

/// Per-CPU counters and their sum (`IPCTNL_MSG_CT_GET_STATS_CPU`).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KernelStats {
    /// One entry per possible CPU, in the kernel's order.
    pub per_cpu: Vec<CpuStats>,
    /// The sum over CPUs.
    pub total: CpuCounters,
}

impl KernelStats {
    /// Builds the totals from per-CPU entries.
    pub fn from_per_cpu(per_cpu: Vec<CpuStats>) -> Self {
        let mut total = CpuCounters::default();
        for cpu in &per_cpu {
            total.accumulate(&cpu.counters);
        }
        KernelStats { per_cpu, total }
    }
}

fn attrs_of(payload: &[u8]) -> Result<Attrs<'_>, DecodeError> {
    netfilter_attrs(payload, "ctattr_stats")
}

/// Decodes a `GET_STATS` reply payload (after the `nlmsghdr`).
pub fn decode_table_stats(payload: &[u8]) -> Result<TableStats, DecodeError> {
    let mut entries = None;
    let mut max_entries = None;
    for attr in attrs_of(payload)? {
        let attr = attr?;
        match attr.kind {
            CTA_STATS_GLOBAL_ENTRIES => entries = Some(attr.be32("CTA_STATS_GLOBAL_ENTRIES")?),
            CTA_STATS_GLOBAL_MAX_ENTRIES => {
                max_entries = Some(attr.be32("CTA_STATS_GLOBAL_MAX_ENTRIES")?)
            }
            _ => {}
        }
    }
    Ok(TableStats {
        entries: entries.ok_or(DecodeError::new(
            "CTA_STATS_GLOBAL_ENTRIES",
            DecodeErrorKind::Missing,
            NLMSG_HDRLEN,
        ))?,
        max_entries,
    })
}

/// Decodes one `GET_STATS_CPU` reply payload (after the `nlmsghdr`).
pub fn decode_cpu_stats(payload: &[u8]) -> Result<CpuStats, DecodeError> {
    let mut counters = CpuCounters::default();
    for attr in attrs_of(payload)? {
        let attr = attr?;
        if let Some(slot) = counters.slot(attr.kind) {
            *slot = Some(u64::from(attr.be32("ctattr_stats_cpu")?));
        }
    }
    // nfgenmsg.res_id carries htons(cpu); attrs_of checked the length.
    let cpu = u16::from_be_bytes([payload[2], payload[3]]);
    Ok(CpuStats { cpu, counters })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_keep_missing_counters_missing() {
        let a = CpuCounters {
            found: Some(3),
            drop: Some(1),
            ..CpuCounters::default()
        };
        let b = CpuCounters {
            found: Some(4),
            ..CpuCounters::default()
        };
        let stats = KernelStats::from_per_cpu(vec![
            CpuStats {
                cpu: 0,
                counters: a,
            },
            CpuStats {
                cpu: 1,
                counters: b,
            },
        ]);
        assert_eq!(stats.total.found, Some(7));
        assert_eq!(stats.total.drop, Some(1));
        assert_eq!(stats.total.chain_too_long, None);
    }

    #[test]
    fn table_stats_usage() {
        let s = TableStats {
            entries: 50,
            max_entries: Some(200),
        };
        assert_eq!(s.usage(), Some(0.25));
        assert_eq!(TableStats::default().usage(), None);
    }
}

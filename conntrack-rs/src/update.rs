// SPDX-License-Identifier: MIT OR Apache-2.0
//! Bulk update by filter: change every flow a [`Filter`] selects
//! (`conntrack -U` with filter options), by the machinery of
//! [`Conntrack::delete_matching`]'s dump-and-delete path.
//!
//! No kernel updates many flows in one request, so one streaming dump (with
//! the strongest kernel prefilter, the whole filter checked in userspace, as
//! for every selection of this library: a filter never selects more than it
//! says) feeds pipelined `IPCTNL_MSG_CT_NEW` updates on a second socket, many
//! per datagram, only errors and one ACK per batch coming back. Dry run,
//! limit and rate work as for deletes.
//!
//! Each change is one the kernel applies atomically to the flow as it is when
//! the update arrives, so a flow that changed since it was dumped is not set
//! back: a mark under a mask (`CTA_MARK` + `CTA_MARK_MASK`: `mark = (mark &
//! !mask) | value`), labels added or removed under a mask (`CTA_LABELS` +
//! `CTA_LABELS_MASK`), a timeout. Status bits are the exception: the kernel
//! takes a whole word and refuses (`EBUSY`) one that lacks `SEEN_REPLY` or
//! `ASSURED` when the flow has them, so the word sent is the dumped status
//! with the bits added; a flow that gained one of those bits in between
//! fails with `EBUSY` (counted in [`UpdateReport::failed`], never changed
//! wrongly).

use std::collections::BTreeMap;

use crate::conntrack::Conntrack;
use crate::consts::*;
use crate::delete::DeleteOptions;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::flow::Labels;
use crate::status::{Status, KNOWN_STATUS_BITS};

/// What a bulk update changes on every flow it selects.
///
/// ```
/// use conntrack::{FlowChange, Labels};
/// // conntrack -U -m 0x10/0xf0 --label-add 3: set bits 4-7 of the mark to 1, add label 3.
/// let change = FlowChange::new()
///     .mark_masked(0x10, 0xf0)
///     .add_labels(Labels::default().with(3));
/// assert!(change.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FlowChange {
    /// `(value, mask)`: the mark becomes `(mark & !mask) | value`.
    pub mark: Option<(u32, u32)>,
    /// Labels to set.
    pub add_labels: Labels,
    /// Labels to clear.
    pub remove_labels: Labels,
    /// New timeout, in seconds.
    pub timeout: Option<u32>,
    /// Status bits to add (`ASSURED`, `FIXED_TIMEOUT`, ...).
    pub add_status: Status,
}

impl FlowChange {
    /// A change that changes nothing yet.
    pub fn new() -> Self {
        FlowChange::default()
    }

    /// Sets the whole mark. CLI: `conntrack -U ... -m MARK`.
    pub fn mark(self, mark: u32) -> Self {
        self.mark_masked(mark, u32::MAX)
    }

    /// Sets the bits of `mask` to those of `value`, keeping the others.
    /// CLI: `-m MARK/MASK`. A value with bits outside the mask is refused
    /// ([`FlowChange::validate`]).
    pub fn mark_masked(mut self, value: u32, mask: u32) -> Self {
        self.mark = Some((value, mask));
        self
    }

    /// Adds labels. CLI: `--label-add`.
    pub fn add_labels(mut self, labels: Labels) -> Self {
        self.add_labels = Labels(self.add_labels.0 | labels.0);
        self
    }

    /// Removes labels. CLI: `--label-del`.
    pub fn remove_labels(mut self, labels: Labels) -> Self {
        self.remove_labels = Labels(self.remove_labels.0 | labels.0);
        self
    }

    /// Sets the timeout (seconds). CLI: `-t`.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout = Some(seconds);
        self
    }

    /// Adds status bits. CLI: `-u`.
    pub fn add_status(mut self, bits: Status) -> Self {
        self.add_status |= bits;
        self
    }

    /// True when the change changes nothing.
    pub fn is_empty(&self) -> bool {
        self.mark.is_none()
            && self.add_labels.0 == 0
            && self.remove_labels.0 == 0
            && self.timeout.is_none()
            && self.add_status.is_empty()
    }

    /// Refuses changes that make no sense, naming what is wrong: a mark value
    /// with bits outside its mask, a label both added and removed, status
    /// bits beyond the kernel's 16 or ones it refuses to set (`EXPECTED`,
    /// `DYING`), an empty change.
    pub fn validate(&self) -> Result<()> {
        if self.is_empty() {
            return Err(Error::InvalidInput(
                "the change changes nothing: give a mark, labels, a timeout or status bits".into(),
            ));
        }
        if let Some((value, mask)) = self.mark {
            if value & !mask != 0 {
                return Err(Error::InvalidInput(format!(
                    "mark {value:#x}/{mask:#x}: the value has bits outside the mask, which \
                     the change would never set (did you mean {:#x}/{mask:#x}?)",
                    value & mask
                )));
            }
        }
        let both = self.add_labels.0 & self.remove_labels.0;
        if both != 0 {
            return Err(Error::InvalidInput(format!(
                "labels {:?} are both added and removed",
                Labels(both).iter().collect::<Vec<_>>()
            )));
        }
        crate::request::check_status(self.add_status, "status", crate::request::StatusChange::Add)
    }
}

/// What a bulk update did ([`Conntrack::update_matching`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpdateReport {
    /// Whether it was a dry run (nothing sent; `matched` says what would change).
    pub dry_run: bool,
    /// Flows that matched the filter.
    pub matched: u64,
    /// Flows updated.
    pub updated: u64,
    /// Matching flows gone before their update arrived (`ENOENT`): not an error.
    pub already_gone: u64,
    /// Updates that failed, by errno (`EBUSY`: the flow gained `SEEN_REPLY` or
    /// `ASSURED` between the dump and a status update; `ENOSPC`: labels in a
    /// namespace whose ruleset reserved no label space).
    pub failed: BTreeMap<i32, u64>,
    /// Whether the kernel applied part of the filter during the dump.
    pub kernel_prefiltered: bool,
}

impl UpdateReport {
    /// Total failed updates.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }
}

impl Conntrack {
    /// Applies `change` to every flow `filter` selects (`conntrack -U` with
    /// filter options) and reports what happened: one streaming dump and
    /// pipelined updates (see the module docs). `options` as for
    /// [`Conntrack::delete_matching`]: dry run, limit, rate. An empty filter
    /// is refused, as for a delete: changing every flow must be said with a
    /// condition every flow meets on purpose (e.g. a family).
    pub fn update_matching(
        &mut self,
        filter: &Filter,
        change: &FlowChange,
        options: DeleteOptions,
    ) -> Result<UpdateReport> {
        filter.validate()?;
        change.validate()?;
        if filter.is_empty() {
            return Err(Error::InvalidInput(
                "the filter has no condition that excludes any flow, so it would change every \
                 flow: refused (give a condition, e.g. a family, to change them all)"
                    .into(),
            ));
        }
        let labels_mask = Labels(change.add_labels.0 | change.remove_labels.0);
        let outcome = self.dump_and_apply(
            filter,
            options,
            |_| true,
            |pipeline, flow| {
                pipeline.push(IPCTNL_MSG_CT_NEW, flow, |enc| {
                    if let Some(timeout) = change.timeout {
                        enc.be32(CTA_TIMEOUT, timeout);
                    }
                    if !change.add_status.is_empty() {
                        let word = (flow.status | change.add_status | Status::CONFIRMED).bits()
                            & KNOWN_STATUS_BITS;
                        enc.be32(CTA_STATUS, word);
                    }
                    if let Some((value, mask)) = change.mark {
                        enc.be32(CTA_MARK, value);
                        enc.be32(CTA_MARK_MASK, mask);
                    }
                    if labels_mask.0 != 0 {
                        enc.bytes(CTA_LABELS, &change.add_labels.to_kernel_bytes());
                        enc.bytes(CTA_LABELS_MASK, &labels_mask.to_kernel_bytes());
                    }
                });
            },
        )?;
        Ok(UpdateReport {
            dry_run: options.dry_run,
            matched: outcome.matched,
            updated: outcome.done,
            already_gone: outcome.already_gone,
            failed: outcome.failed,
            kernel_prefiltered: outcome.kernel_prefiltered,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_that_makes_no_sense_is_refused() {
        let refused = |change: FlowChange, needle: &str| {
            let text = change.validate().unwrap_err().to_string();
            assert!(text.contains(needle), "{needle:?} not in {text:?}");
        };
        refused(FlowChange::new(), "changes nothing");
        refused(FlowChange::new().mark_masked(0x100, 0xff), "0x100/0xff");
        refused(
            FlowChange::new()
                .add_labels(Labels::default().with(3))
                .remove_labels(Labels::default().with(3)),
            "[3]",
        );
        refused(FlowChange::new().add_status(Status::DYING), "DYING");
        refused(
            FlowChange::new().add_status(Status::from_bits_retain(0x10000)),
            "0x10000",
        );
        assert!(FlowChange::new().mark(7).validate().is_ok());
        assert!(FlowChange::new().timeout(30).validate().is_ok());
    }
}

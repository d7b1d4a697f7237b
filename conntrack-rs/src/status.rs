// SPDX-License-Identifier: MIT OR Apache-2.0
//! Flow status bits (`enum ip_conntrack_status`, `include/uapi/linux/netfilter/nf_conntrack_common.h`).

bitflags::bitflags! {
    /// The `CTA_STATUS` bits of a flow. Unknown bits from newer kernels are kept.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
    pub struct Status: u32 {
        /// `IPS_EXPECTED`: created from an expectation (the flow has a master).
        const EXPECTED = 1 << 0;
        /// `IPS_SEEN_REPLY`: traffic was seen in the reply direction.
        const SEEN_REPLY = 1 << 1;
        /// `IPS_ASSURED`: never early-dropped (TCP: handshake completed).
        const ASSURED = 1 << 2;
        /// `IPS_CONFIRMED`: the flow is in the hash table.
        const CONFIRMED = 1 << 3;
        /// `IPS_SRC_NAT`: source NAT applies.
        const SRC_NAT = 1 << 4;
        /// `IPS_DST_NAT`: destination NAT applies.
        const DST_NAT = 1 << 5;
        /// `IPS_SEQ_ADJUST`: TCP sequence numbers are adjusted (helpers, NAT).
        const SEQ_ADJUST = 1 << 6;
        /// `IPS_SRC_NAT_DONE`.
        const SRC_NAT_DONE = 1 << 7;
        /// `IPS_DST_NAT_DONE`.
        const DST_NAT_DONE = 1 << 8;
        /// `IPS_DYING`: being destroyed.
        const DYING = 1 << 9;
        /// `IPS_FIXED_TIMEOUT`: packets do not refresh the timeout.
        const FIXED_TIMEOUT = 1 << 10;
        /// `IPS_TEMPLATE`.
        const TEMPLATE = 1 << 11;
        /// `IPS_UNTRACKED` (reused by the kernel as `IPS_NAT_CLASH`).
        const UNTRACKED = 1 << 12;
        /// `IPS_HELPER`: a helper was explicitly attached.
        const HELPER = 1 << 13;
        /// `IPS_OFFLOAD`: the flow lives in a flowtable.
        const OFFLOAD = 1 << 14;
        /// `IPS_HW_OFFLOAD`: offloaded to hardware.
        const HW_OFFLOAD = 1 << 15;
        // Keep bits this library does not know (from newer kernels).
        const _ = !0;
    }
}

/// The status bits the kernel defines (`__IPS_MAX_BIT` = 16).
pub(crate) const KNOWN_STATUS_BITS: u32 = 0xffff;

impl Status {
    /// The names of the status bits (`EXPECTED`, `SEEN_REPLY`, ...), lowest bit first.
    pub fn names() -> impl Iterator<Item = &'static str> {
        <Status as bitflags::Flags>::FLAGS
            .iter()
            .map(bitflags::Flag::name)
            .filter(|name| !name.is_empty())
    }

    /// Parses a status bit name (any case), or says which names exist: `what`
    /// names the argument in the message (`"--status"`, `"status"`).
    pub fn parse_named(what: &str, text: &str) -> crate::Result<Status> {
        let name = text.trim().to_ascii_uppercase();
        Status::from_name(&name).ok_or_else(|| {
            crate::Error::InvalidInput(format!(
                "{what}: unknown status bit {text:?} (one of {})",
                Status::names().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// `IPS_NAT_CLASH`, the kernel's alias of `IPS_UNTRACKED`.
    pub const NAT_CLASH: Status = Status::UNTRACKED;

    /// `IPS_UNCHANGEABLE_MASK`: bits userspace cannot change on an existing flow.
    pub const UNCHANGEABLE: Status = Status::SRC_NAT
        .union(Status::DST_NAT)
        .union(Status::SRC_NAT_DONE)
        .union(Status::DST_NAT_DONE)
        .union(Status::EXPECTED)
        .union(Status::CONFIRMED)
        .union(Status::DYING)
        .union(Status::SEQ_ADJUST)
        .union(Status::TEMPLATE)
        .union(Status::UNTRACKED)
        .union(Status::OFFLOAD)
        .union(Status::HW_OFFLOAD);

    /// Created from an expectation.
    pub fn expected(self) -> bool {
        self.contains(Status::EXPECTED)
    }
    /// Reply traffic was seen (the opposite of conntrack's `[UNREPLIED]`).
    pub fn seen_reply(self) -> bool {
        self.contains(Status::SEEN_REPLY)
    }
    /// No reply traffic yet (conntrack prints `[UNREPLIED]`).
    pub fn unreplied(self) -> bool {
        !self.seen_reply()
    }
    /// Assured: will not be early-dropped when the table is full.
    pub fn assured(self) -> bool {
        self.contains(Status::ASSURED)
    }
    /// In the hash table.
    pub fn confirmed(self) -> bool {
        self.contains(Status::CONFIRMED)
    }
    /// Source NAT applies.
    pub fn src_nat(self) -> bool {
        self.contains(Status::SRC_NAT)
    }
    /// Destination NAT applies.
    pub fn dst_nat(self) -> bool {
        self.contains(Status::DST_NAT)
    }
    /// Source or destination NAT applies.
    pub fn nat(self) -> bool {
        self.intersects(Status::SRC_NAT | Status::DST_NAT)
    }
    /// Sequence numbers are adjusted.
    pub fn seq_adjust(self) -> bool {
        self.contains(Status::SEQ_ADJUST)
    }
    /// Being destroyed.
    pub fn dying(self) -> bool {
        self.contains(Status::DYING)
    }
    /// Packets do not refresh the timeout.
    pub fn fixed_timeout(self) -> bool {
        self.contains(Status::FIXED_TIMEOUT)
    }
    /// Offloaded to a flowtable (no timeout or protoinfo in dumps).
    pub fn offload(self) -> bool {
        self.contains(Status::OFFLOAD)
    }
    /// Offloaded to hardware.
    pub fn hw_offload(self) -> bool {
        self.contains(Status::HW_OFFLOAD)
    }
    /// A helper was explicitly attached.
    pub fn helper(self) -> bool {
        self.contains(Status::HELPER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_and_unknown_bits() {
        let s = Status::from_bits_retain(0x0001_000e);
        assert!(s.seen_reply() && s.assured() && s.confirmed());
        assert!(!s.unreplied() && !s.nat() && !s.expected());
        assert_eq!(s.bits(), 0x0001_000e, "unknown bit 16 is kept");
        assert!(Status::UNCHANGEABLE.contains(Status::CONFIRMED));
        assert!(!Status::UNCHANGEABLE.contains(Status::ASSURED));
    }
}

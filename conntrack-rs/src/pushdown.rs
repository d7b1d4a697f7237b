// SPDX-License-Identifier: MIT OR Apache-2.0
//! What of a [`Filter`] the running kernel can evaluate, and how to ask it.
//!
//! [`KernelFeatures`] says which kernel-side filters this kernel evaluates
//! correctly (found by experiment: [`KernelFeatures::probe`], in
//! `probe.rs`). [`Pushdown::plan`] then splits a filter: the parts this
//! kernel evaluates correctly go into the request (family, mark+mask,
//! status+mask, zone, `CTA_FILTER` protocol / IPv4 host / TCP-UDP port), and
//! [`Pushdown::exact`] says whether the kernel alone decides exactly the
//! filter (the condition for a kernel-side filtered flush). The library still
//! evaluates the whole filter in userspace on every flow a dump returns.

use std::net::IpAddr;

use crate::consts::*;
use crate::filter::Filter;
use crate::flow::{proto, Family};
use crate::wire::Encoder;

// CTA_FILTER_F_* (kernel-internal net/netfilter/nf_internals.h): host-order flag words.
pub(crate) const CTA_FILTER_F_CTA_IP_SRC: u32 = 1 << 0;
pub(crate) const CTA_FILTER_F_CTA_IP_DST: u32 = 1 << 1;
pub(crate) const CTA_FILTER_F_CTA_PROTO_NUM: u32 = 1 << 3;
pub(crate) const CTA_FILTER_F_CTA_PROTO_SRC_PORT: u32 = 1 << 4;
pub(crate) const CTA_FILTER_F_CTA_PROTO_DST_PORT: u32 = 1 << 5;
const CTA_FILTER_ORIG_FLAGS: u16 = 1;
const CTA_FILTER_REPLY_FLAGS: u16 = 2;

/// Which kernel-side filters this kernel evaluates correctly, found by
/// [`KernelFeatures::probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct KernelFeatures {
    /// Whether the probe ran (false: no `CAP_SYS_ADMIN`, features assumed absent).
    pub probed: bool,
    /// Dump filter on `CTA_MARK` + `CTA_MARK_MASK`.
    pub dump_mark: bool,
    /// Dump filter on `CTA_STATUS` + `CTA_STATUS_MASK` (5.15+).
    pub dump_status: bool,
    /// Dump filter on `CTA_ZONE` (6.8+).
    pub dump_zone: bool,
    /// Dump filter on `CTA_FILTER` tuple fields (5.8+).
    pub dump_tuple: bool,
    /// Flush filtered by mark + mask.
    pub flush_mark: bool,
    /// Flush filtered by status + mask (5.15+).
    pub flush_status: bool,
    /// Flush filtered by zone (6.8+).
    pub flush_zone: bool,
    /// Flush filtered by `CTA_FILTER` tuple fields (6.11+).
    pub flush_tuple: bool,
}

impl KernelFeatures {
    /// What to assume without a probe: only mark + mask, present in every
    /// kernel this library supports.
    pub const fn conservative() -> Self {
        KernelFeatures {
            probed: false,
            dump_mark: true,
            dump_status: false,
            dump_zone: false,
            dump_tuple: false,
            flush_mark: true,
            flush_status: false,
            flush_zone: false,
            flush_tuple: false,
        }
    }

    /// Every feature (what a planner assumes to see whether a probe could help).
    pub(crate) const fn everything() -> Self {
        KernelFeatures {
            probed: false,
            dump_mark: true,
            dump_status: true,
            dump_zone: true,
            dump_tuple: true,
            flush_mark: true,
            flush_status: true,
            flush_zone: true,
            flush_tuple: true,
        }
    }
}

/// The `CTA_FILTER` part for one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TupleFilter {
    pub(crate) flags: u32,
    pub(crate) src: Option<IpAddr>,
    pub(crate) dst: Option<IpAddr>,
    pub(crate) protocol: Option<u8>,
    pub(crate) src_port: Option<u16>,
    pub(crate) dst_port: Option<u16>,
}

/// The kernel-side part of a filter, ready to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pushdown {
    /// `nfgen_family` (`AF_UNSPEC` = both).
    pub(crate) family: u8,
    pub(crate) mark: Option<(u32, u32)>,
    pub(crate) status: Option<(u32, u32)>,
    pub(crate) zone: Option<u16>,
    pub(crate) orig: TupleFilter,
    pub(crate) reply: TupleFilter,
    /// Whether the kernel alone evaluates exactly the whole filter.
    pub(crate) exact: bool,
}

impl Pushdown {
    /// Splits `filter` for a kernel with `features`; `for_flush` plans for a
    /// filtered flush (which needs the flush variants of each feature).
    pub(crate) fn plan(filter: &Filter, features: &KernelFeatures, for_flush: bool) -> Pushdown {
        let (can_mark, can_status, can_zone, can_tuple) = if for_flush {
            (
                features.flush_mark,
                features.flush_status,
                features.flush_zone,
                features.flush_tuple,
            )
        } else {
            (
                features.dump_mark,
                features.dump_status,
                features.dump_zone,
                features.dump_tuple,
            )
        };
        let mut plan = Pushdown::default();
        let mut exact = true;
        let family = filter.effective_family();
        plan.family = family.map_or(AF_UNSPEC, Family::raw);
        // An explicit family is always exact; an implied one only restates the
        // address conditions, which are checked on their own below.

        match filter.mark {
            Some(mark) if can_mark => plan.mark = Some(mark),
            Some(_) => exact = false,
            None => {}
        }
        let status_mask = (filter.status_set | filter.status_unset).bits();
        if status_mask != 0 {
            if can_status {
                // Value and mask always travel together: a mask alone is ignored.
                plan.status = Some((filter.status_set.bits(), status_mask));
            } else {
                exact = false;
            }
        }
        match filter.zone {
            Some(zone) if can_zone => plan.zone = Some(zone),
            Some(_) => exact = false,
            None => {}
        }
        if filter.tcp_states.is_some() || filter.labels.is_some() {
            exact = false;
        }

        // CTA_FILTER needs AF_INET or AF_INET6; address flags only for IPv4
        // (the kernel inverts IPv6 address matches), ports only for TCP/UDP.
        let protocol = filter.single_protocol();
        let tuple_ok = can_tuple && family.is_some();
        let v4 = family == Some(Family::Ipv4);
        if filter.protocols.is_some() {
            match protocol {
                Some(p) if tuple_ok => {
                    plan.orig.flags |= CTA_FILTER_F_CTA_PROTO_NUM;
                    plan.orig.protocol = Some(p);
                }
                _ => exact = false,
            }
        }
        let mut push_addr = |set: &Option<crate::filter::AddrSet>,
                             tuple: &mut TupleFilter,
                             flag: u32,
                             source: bool| {
            let Some(set) = set else { return };
            match set.single() {
                Some(cidr) if tuple_ok && v4 && cidr.is_host() && cidr.addr().is_ipv4() => {
                    tuple.flags |= flag;
                    if source {
                        tuple.src = Some(cidr.addr());
                    } else {
                        tuple.dst = Some(cidr.addr());
                    }
                }
                _ => exact = false,
            }
        };
        push_addr(
            &filter.orig_src,
            &mut plan.orig,
            CTA_FILTER_F_CTA_IP_SRC,
            true,
        );
        push_addr(
            &filter.orig_dst,
            &mut plan.orig,
            CTA_FILTER_F_CTA_IP_DST,
            false,
        );
        push_addr(
            &filter.reply_src,
            &mut plan.reply,
            CTA_FILTER_F_CTA_IP_SRC,
            true,
        );
        push_addr(
            &filter.reply_dst,
            &mut plan.reply,
            CTA_FILTER_F_CTA_IP_DST,
            false,
        );
        let ports_ok = tuple_ok && matches!(protocol, Some(proto::TCP) | Some(proto::UDP));
        for (set, flag, source) in [
            (&filter.src_ports, CTA_FILTER_F_CTA_PROTO_SRC_PORT, true),
            (&filter.dst_ports, CTA_FILTER_F_CTA_PROTO_DST_PORT, false),
        ] {
            let Some(set) = set else { continue };
            match set.single() {
                Some(port) if ports_ok => {
                    plan.orig.flags |= flag | CTA_FILTER_F_CTA_PROTO_NUM;
                    plan.orig.protocol = protocol;
                    if source {
                        plan.orig.src_port = Some(port);
                    } else {
                        plan.orig.dst_port = Some(port);
                    }
                }
                _ => exact = false,
            }
        }
        plan.exact = exact;
        plan
    }

    /// Appends the filter attributes to an open dump or flush request.
    pub(crate) fn encode(&self, enc: &mut Encoder) {
        if let Some((mark, mask)) = self.mark {
            enc.be32(CTA_MARK, mark);
            enc.be32(CTA_MARK_MASK, mask);
        }
        if let Some((status, mask)) = self.status {
            enc.be32(CTA_STATUS, status);
            enc.be32(CTA_STATUS_MASK, mask);
        }
        if let Some(zone) = self.zone {
            enc.be16(CTA_ZONE, zone);
        }
        if self.orig.flags == 0 && self.reply.flags == 0 {
            return;
        }
        let nest = enc.nest(CTA_FILTER);
        enc.bytes(CTA_FILTER_ORIG_FLAGS, &self.orig.flags.to_ne_bytes());
        enc.bytes(CTA_FILTER_REPLY_FLAGS, &self.reply.flags.to_ne_bytes());
        enc.end_nest(nest);
        for (kind, tuple) in [(CTA_TUPLE_ORIG, &self.orig), (CTA_TUPLE_REPLY, &self.reply)] {
            if tuple.flags == 0 {
                continue;
            }
            let outer = enc.nest(kind);
            if tuple.src.is_some() || tuple.dst.is_some() {
                let ip = enc.nest(CTA_TUPLE_IP);
                if let Some(IpAddr::V4(src)) = tuple.src {
                    enc.bytes(CTA_IP_V4_SRC, &src.octets());
                }
                if let Some(IpAddr::V4(dst)) = tuple.dst {
                    enc.bytes(CTA_IP_V4_DST, &dst.octets());
                }
                enc.end_nest(ip);
            }
            if let Some(protocol) = tuple.protocol {
                let l4 = enc.nest(CTA_TUPLE_PROTO);
                enc.u8(CTA_PROTO_NUM, protocol);
                if let Some(port) = tuple.src_port {
                    enc.be16(CTA_PROTO_SRC_PORT, port);
                }
                if let Some(port) = tuple.dst_port {
                    enc.be16(CTA_PROTO_DST_PORT, port);
                }
                enc.end_nest(l4);
            }
            enc.end_nest(outer);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::filter::Cidr;
    use crate::flow::TcpState;
    use crate::status::Status;

    /// A probed kernel that gets every filter right.
    pub(crate) fn all() -> KernelFeatures {
        KernelFeatures {
            probed: true,
            ..KernelFeatures::everything()
        }
    }

    #[test]
    fn single_values_are_pushed_exactly() {
        let f = Filter::new()
            .protocol(proto::UDP)
            .src([10, 0, 0, 1])
            .dst_port(53)
            .mark(7)
            .zone(3)
            .status(Status::ASSURED);
        let plan = Pushdown::plan(&f, &all(), true);
        assert!(plan.exact);
        assert_eq!(plan.family, AF_INET);
        assert_eq!(plan.mark, Some((7, u32::MAX)));
        assert_eq!(plan.status, Some((4, 4)));
        assert_eq!(plan.zone, Some(3));
        assert_eq!(plan.orig.src, Some([10, 0, 0, 1].into()));
        assert_eq!(plan.orig.dst_port, Some(53));
        assert_ne!(plan.orig.flags & CTA_FILTER_F_CTA_PROTO_NUM, 0);
    }

    #[test]
    fn what_the_kernel_gets_wrong_stays_in_userspace() {
        let v6: Cidr = "2001:db8::1".parse().unwrap();
        let plan = Pushdown::plan(&Filter::new().src(v6), &all(), true);
        assert!(!plan.exact, "IPv6 address flags are inverted by the kernel");
        assert_eq!(plan.orig.flags, 0);
        assert_eq!(plan.family, AF_INET6);
        let sctp = Filter::new()
            .protocol(proto::SCTP)
            .dst_port(3868)
            .family(Family::Ipv4);
        let plan = Pushdown::plan(&sctp, &all(), true);
        assert!(!plan.exact, "ports are ignored by the kernel for SCTP");
        assert_eq!(plan.orig.dst_port, None);
        let cidr = Filter::new().src("10.0.0.0/8".parse::<Cidr>().unwrap());
        assert!(!Pushdown::plan(&cidr, &all(), true).exact);
        let state = Filter::new().tcp_state(TcpState::Established);
        assert!(!Pushdown::plan(&state, &all(), true).exact);
        let old = KernelFeatures::conservative();
        let zoned = Filter::new().zone(4).status(Status::ASSURED);
        let plan = Pushdown::plan(&zoned, &old, true);
        assert!(!plan.exact && plan.zone.is_none() && plan.status.is_none());
        assert!(Pushdown::plan(&Filter::new().mark(1), &old, true).exact);
    }
}

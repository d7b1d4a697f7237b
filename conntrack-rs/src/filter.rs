// SPDX-License-Identifier: MIT OR Apache-2.0
//! [`Filter`]: which flows a dump, count or delete selects.
//!
//! One type for every operation. All conditions combine with AND; the values
//! given to one condition (several addresses, ports, protocols, states)
//! combine with OR. A filter is evaluated in two places: the library sends the
//! kernel every part the running kernel evaluates correctly (decided by a probe,
//! see [`KernelFeatures`](crate::KernelFeatures)) and always evaluates the whole
//! filter in userspace on what comes back, so the answer is the same on every
//! kernel. Membership in large sets of addresses or ports costs O(1) per flow
//! (hash sets per prefix length, a 64 Ki-bit port bitmap).

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::str::FromStr;

use crate::conntrack::Family;
use crate::error::{Error, Result};
use crate::flow::{Flow, Labels, TcpState, Tuple};
use crate::status::Status;

/// An address with a prefix length: `10.0.0.0/8`, `2001:db8::/32`, or one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// A network; host bits of `addr` are cleared. Fails if `prefix` is longer
    /// than the address (32 for IPv4, 128 for IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(Error::InvalidInput(format!(
                "prefix /{prefix} is longer than the {max} bits of {addr}"
            )));
        }
        let bits = mask_bits(addr_bits(addr), prefix, max);
        Ok(Cidr {
            addr: bits_addr(bits, addr.is_ipv6()),
            prefix,
        })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True for a single host (`/32` or `/128`).
    pub fn is_host(&self) -> bool {
        self.prefix == if self.addr.is_ipv4() { 32 } else { 128 }
    }

    /// Whether `addr` is inside this network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        addr.is_ipv4() == self.addr.is_ipv4()
            && mask_bits(addr_bits(addr), self.prefix, max) == addr_bits(self.addr)
    }
}

impl From<IpAddr> for Cidr {
    fn from(addr: IpAddr) -> Self {
        Cidr {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
        }
    }
}

impl From<std::net::Ipv4Addr> for Cidr {
    fn from(addr: std::net::Ipv4Addr) -> Self {
        IpAddr::V4(addr).into()
    }
}

impl From<std::net::Ipv6Addr> for Cidr {
    fn from(addr: std::net::Ipv6Addr) -> Self {
        IpAddr::V6(addr).into()
    }
}

impl From<[u8; 4]> for Cidr {
    fn from(octets: [u8; 4]) -> Self {
        IpAddr::from(octets).into()
    }
}

impl FromStr for Cidr {
    type Err = Error;

    /// Parses `ADDR` or `ADDR/PREFIX`.
    fn from_str(text: &str) -> Result<Self> {
        let bad = || Error::InvalidInput(format!("{text:?} is not an address or CIDR"));
        match text.split_once('/') {
            None => Ok(text.parse::<IpAddr>().map_err(|_| bad())?.into()),
            Some((addr, prefix)) => Cidr::new(
                addr.parse().map_err(|_| bad())?,
                prefix.parse().map_err(|_| bad())?,
            ),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn addr_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn bits_addr(bits: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(bits.into())
    } else {
        IpAddr::V4((bits as u32).into())
    }
}

fn mask_bits(bits: u128, prefix: u8, max: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        let keep = u32::from(max - prefix);
        (bits >> keep) << keep
    }
}

/// A fast, non-cryptographic hasher for address keys (the keys come from the
/// caller's filter, not from the network, so flooding is not a concern).
/// Public (hidden) so that benchmarks' raw baselines hash the same way.
#[doc(hidden)]
#[derive(Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u128(&mut self, value: u128) {
        self.write_u64(value as u64);
        self.write_u64((value >> 64) as u64);
    }
}

type FastSet = HashSet<u128, BuildHasherDefault<AddrHasher>>;

/// A set of addresses and networks with O(1) membership per prefix length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrSet {
    /// (is IPv6, prefix length, masked networks), one entry per distinct prefix length.
    groups: Vec<(bool, u8, FastSet)>,
    len: usize,
}

impl AddrSet {
    fn insert(&mut self, cidr: Cidr) {
        let v6 = cidr.addr.is_ipv6();
        let key = addr_bits(cidr.addr);
        let group = match self
            .groups
            .iter_mut()
            .position(|(g6, prefix, _)| *g6 == v6 && *prefix == cidr.prefix)
        {
            Some(i) => &mut self.groups[i].2,
            None => {
                self.groups.push((v6, cidr.prefix, FastSet::default()));
                // Longest prefixes first: exact hosts are the common case.
                self.groups.sort_by_key(|g| std::cmp::Reverse(g.1));
                let i = self
                    .groups
                    .iter()
                    .position(|(g6, prefix, _)| *g6 == v6 && *prefix == cidr.prefix)
                    .expect("just inserted");
                &mut self.groups[i].2
            }
        };
        if group.insert(key) {
            self.len += 1;
        }
    }

    /// Whether `addr` is one of the addresses or inside one of the networks.
    #[inline]
    pub fn contains(&self, addr: IpAddr) -> bool {
        let v6 = addr.is_ipv6();
        let bits = addr_bits(addr);
        let max = if v6 { 128 } else { 32 };
        self.groups
            .iter()
            .any(|(g6, prefix, set)| *g6 == v6 && set.contains(&mask_bits(bits, *prefix, max)))
    }

    /// Number of distinct entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The one entry, when the set holds exactly one.
    pub(crate) fn single(&self) -> Option<Cidr> {
        if self.len != 1 {
            return None;
        }
        let (v6, prefix, set) = self.groups.iter().find(|g| !g.2.is_empty())?;
        let bits = *set.iter().next()?;
        Some(Cidr {
            addr: bits_addr(bits, *v6),
            prefix: *prefix,
        })
    }

    /// Whether every entry is of one family (`Some(true)` = all IPv6).
    pub(crate) fn family(&self) -> Option<bool> {
        let mut families = self.groups.iter().filter(|g| !g.2.is_empty()).map(|g| g.0);
        let first = families.next()?;
        families.all(|f| f == first).then_some(first)
    }
}

/// A set of ports: a 65 536-bit map, O(1) per lookup.
#[derive(Clone, PartialEq, Eq)]
pub struct PortSet {
    bits: Box<[u64; 1024]>,
    len: u32,
}

impl Default for PortSet {
    fn default() -> Self {
        PortSet {
            bits: Box::new([0; 1024]),
            len: 0,
        }
    }
}

impl fmt::Debug for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortSet").field("len", &self.len).finish()
    }
}

impl PortSet {
    fn insert(&mut self, port: u16) {
        let (word, bit) = (usize::from(port >> 6), port & 63);
        if self.bits[word] >> bit & 1 == 0 {
            self.bits[word] |= 1 << bit;
            self.len += 1;
        }
    }

    /// Whether `port` is in the set.
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port >> 6)] >> (port & 63) & 1 == 1
    }

    /// Number of ports in the set.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The one port, when the set holds exactly one.
    pub(crate) fn single(&self) -> Option<u16> {
        if self.len != 1 {
            return None;
        }
        (0..=u16::MAX).find(|&p| self.contains(p))
    }
}

/// A selection of flows. Build it with the methods below; an empty filter
/// selects every flow.
///
/// ```
/// use conntrack::{Filter, TcpState, Status, proto};
/// let stale_dns = Filter::new()
///     .protocol(proto::UDP)
///     .dst_port(53)
///     .src("10.0.0.0/8".parse::<conntrack::Cidr>()?)
///     .status_unset(Status::SEEN_REPLY);
/// let established = Filter::new().tcp_state(TcpState::Established).zone(0);
/// # Ok::<(), conntrack::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub(crate) family: Option<Family>,
    pub(crate) protocols: Option<[u64; 4]>,
    pub(crate) orig_src: Option<AddrSet>,
    pub(crate) orig_dst: Option<AddrSet>,
    pub(crate) reply_src: Option<AddrSet>,
    pub(crate) reply_dst: Option<AddrSet>,
    pub(crate) src_ports: Option<PortSet>,
    pub(crate) dst_ports: Option<PortSet>,
    pub(crate) tcp_states: Option<u32>,
    pub(crate) status_set: Status,
    pub(crate) status_unset: Status,
    pub(crate) mark: Option<(u32, u32)>,
    pub(crate) zone: Option<u16>,
    pub(crate) labels: Option<Labels>,
}

fn add_addr(slot: &mut Option<AddrSet>, cidr: Cidr) {
    slot.get_or_insert_with(AddrSet::default).insert(cidr);
}

impl Filter {
    /// A filter that selects every flow.
    pub fn new() -> Self {
        Filter::default()
    }

    /// Only IPv4 or only IPv6 flows (`Family::All` removes the condition).
    /// CLI: `conntrack -L -f ipv6`. Kernel: filtered by every kernel.
    pub fn family(mut self, family: Family) -> Self {
        self.family = (family != Family::All).then_some(family);
        self
    }

    /// Layer-4 protocol; several calls select any of them.
    /// CLI: `-p tcp`. Kernel: `CTA_FILTER` (5.8+) when it is the only protocol
    /// and the family is known; userspace otherwise.
    pub fn protocol(mut self, protocol: u8) -> Self {
        let set = self.protocols.get_or_insert([0; 4]);
        set[usize::from(protocol >> 6)] |= 1 << (protocol & 63);
        self
    }

    /// Original source address or network; several calls select any of them.
    /// CLI: `-s ADDR` (`--orig-src`). Kernel: `CTA_FILTER` (5.8+) for one IPv4
    /// host; networks, sets and IPv6 (the kernel inverts IPv6 address matches)
    /// are evaluated in userspace.
    pub fn src(mut self, cidr: impl Into<Cidr>) -> Self {
        add_addr(&mut self.orig_src, cidr.into());
        self
    }

    /// Original source in any of `cidrs` (O(1) per flow whatever the set size).
    pub fn src_any(mut self, cidrs: impl IntoIterator<Item = impl Into<Cidr>>) -> Self {
        for cidr in cidrs {
            add_addr(&mut self.orig_src, cidr.into());
        }
        self
    }

    /// Original destination address or network. CLI: `-d ADDR` (`--orig-dst`).
    /// Kernel: as [`Filter::src`].
    pub fn dst(mut self, cidr: impl Into<Cidr>) -> Self {
        add_addr(&mut self.orig_dst, cidr.into());
        self
    }

    /// Original destination in any of `cidrs`.
    pub fn dst_any(mut self, cidrs: impl IntoIterator<Item = impl Into<Cidr>>) -> Self {
        for cidr in cidrs {
            add_addr(&mut self.orig_dst, cidr.into());
        }
        self
    }

    /// Reply-direction source (the address answering, after NAT).
    /// CLI: `-r ADDR` (`--reply-src`). Kernel: as [`Filter::src`].
    pub fn reply_src(mut self, cidr: impl Into<Cidr>) -> Self {
        add_addr(&mut self.reply_src, cidr.into());
        self
    }

    /// Reply-direction destination. CLI: `-q ADDR` (`--reply-dst`).
    /// Kernel: as [`Filter::src`].
    pub fn reply_dst(mut self, cidr: impl Into<Cidr>) -> Self {
        add_addr(&mut self.reply_dst, cidr.into());
        self
    }

    /// Original source port; several calls select any of them. Flows without
    /// ports (ICMP, generic) never match. CLI: `--sport PORT`. Kernel:
    /// `CTA_FILTER` (5.8+) for one port with protocol TCP or UDP only (the
    /// kernel ignores port filters for other protocols); userspace otherwise.
    pub fn src_port(mut self, port: u16) -> Self {
        self.src_ports
            .get_or_insert_with(PortSet::default)
            .insert(port);
        self
    }

    /// Original source port in `ports` (a set or a range, e.g. `1024..=65535`).
    pub fn src_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        let set = self.src_ports.get_or_insert_with(PortSet::default);
        ports.into_iter().for_each(|p| set.insert(p));
        self
    }

    /// Original destination port. CLI: `--dport PORT`. Kernel: as [`Filter::src_port`].
    pub fn dst_port(mut self, port: u16) -> Self {
        self.dst_ports
            .get_or_insert_with(PortSet::default)
            .insert(port);
        self
    }

    /// Original destination port in `ports` (a set or a range).
    pub fn dst_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        let set = self.dst_ports.get_or_insert_with(PortSet::default);
        ports.into_iter().for_each(|p| set.insert(p));
        self
    }

    /// TCP state; several calls select any of them; non-TCP flows never match.
    /// CLI: `-p tcp --state ESTABLISHED`. Kernel: none can filter on it; userspace.
    pub fn tcp_state(mut self, state: TcpState) -> Self {
        let raw = state.raw();
        // States are < 16 in every kernel; an out-of-range value can never match.
        let bit = if raw < 32 { 1u32 << raw } else { 0 };
        *self.tcp_states.get_or_insert(0) |= bit;
        self
    }

    /// Status bits that must all be set. CLI: `-u ASSURED`. Kernel:
    /// `CTA_STATUS`/`CTA_STATUS_MASK` (5.15+); userspace before.
    pub fn status(mut self, bits: Status) -> Self {
        self.status_set |= bits;
        self.status_unset &= !bits;
        self
    }

    /// Status bits that must all be clear (e.g. `SEEN_REPLY` for unreplied
    /// flows). CLI: no equivalent (`-u` only sets). Kernel: as [`Filter::status`].
    pub fn status_unset(mut self, bits: Status) -> Self {
        self.status_unset |= bits;
        self.status_set &= !bits;
        self
    }

    /// Exact mark. CLI: `-m MARK`. Kernel: `CTA_MARK` + `CTA_MARK_MASK` (every
    /// kernel this library supports; the mask is always sent with the value).
    pub fn mark(self, mark: u32) -> Self {
        self.mark_masked(mark, u32::MAX)
    }

    /// Mark under a mask: `(flow.mark & mask) == value & mask`. CLI: `-m MARK/MASK`.
    /// Kernel: as [`Filter::mark`].
    pub fn mark_masked(mut self, value: u32, mask: u32) -> Self {
        self.mark = Some((value & mask, mask));
        self
    }

    /// Zone (flow-wide or directional zone id; 0 = the default zone).
    /// CLI: `-w ZONE`. Kernel: `CTA_ZONE` (6.8+); userspace before.
    pub fn zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }

    /// Labels that must all be set. CLI: `-l LABEL,...`. Kernel: none; userspace.
    pub fn labels(mut self, labels: Labels) -> Self {
        self.labels = Some(labels);
        self
    }

    /// True when the filter selects every flow.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// The address family every matching flow must have, stated or implied by
    /// the addresses (`None`: both).
    pub(crate) fn effective_family(&self) -> Option<Family> {
        if self.family.is_some() {
            return self.family;
        }
        let families = [
            &self.orig_src,
            &self.orig_dst,
            &self.reply_src,
            &self.reply_dst,
        ]
        .into_iter()
        .flatten()
        .map(AddrSet::family);
        let mut implied = None;
        for family in families {
            match (family, implied) {
                (None, _) => return None, // a set mixing both families
                (Some(f), None) => implied = Some(f),
                (Some(f), Some(g)) if f != g => return None, // matches nothing; let userspace say so
                _ => {}
            }
        }
        implied.map(|v6| if v6 { Family::Ipv6 } else { Family::Ipv4 })
    }

    /// The one protocol, when exactly one is selected.
    pub(crate) fn single_protocol(&self) -> Option<u8> {
        let set = self.protocols?;
        if set.iter().map(|w| w.count_ones()).sum::<u32>() != 1 {
            return None;
        }
        (0..=255u8).find(|&p| set[usize::from(p >> 6)] >> (p & 63) & 1 == 1)
    }

    /// Evaluates the whole filter on one flow.
    #[inline]
    pub fn matches<S>(&self, flow: &Flow<S>) -> bool {
        let orig = &flow.orig;
        if let Some(family) = self.family {
            if (family == Family::Ipv6) != orig.is_ipv6() {
                return false;
            }
        }
        if let Some(set) = &self.protocols {
            let p = orig.protocol;
            if set[usize::from(p >> 6)] >> (p & 63) & 1 == 0 {
                return false;
            }
        }
        if !addr_ok(&self.orig_src, orig.src)
            || !addr_ok(&self.orig_dst, orig.dst)
            || !addr_ok(&self.reply_src, flow.reply.src)
            || !addr_ok(&self.reply_dst, flow.reply.dst)
            || !port_ok(&self.src_ports, orig, true)
            || !port_ok(&self.dst_ports, orig, false)
        {
            return false;
        }
        if let Some(states) = self.tcp_states {
            match flow.tcp_state() {
                Some(state) if flow.protocol() == crate::proto::TCP => {
                    let raw = state.raw();
                    if raw >= 32 || states >> raw & 1 == 0 {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        let mask = self.status_set | self.status_unset;
        if flow.status & mask != self.status_set {
            return false;
        }
        if let Some((value, mask)) = self.mark {
            if flow.mark.unwrap_or(0) & mask != value {
                return false;
            }
        }
        if let Some(zone) = self.zone {
            if flow.zone_id() != zone {
                return false;
            }
        }
        if let Some(wanted) = self.labels {
            if flow.labels.unwrap_or_default().0 & wanted.0 != wanted.0 {
                return false;
            }
        }
        true
    }
}

#[inline]
fn addr_ok(set: &Option<AddrSet>, addr: IpAddr) -> bool {
    match set {
        None => true,
        Some(set) => set.contains(addr),
    }
}

#[inline]
fn port_ok(set: &Option<PortSet>, tuple: &Tuple, source: bool) -> bool {
    match set {
        None => true,
        Some(set) => {
            let port = if source {
                tuple.src_port()
            } else {
                tuple.dst_port()
            };
            port.is_some_and(|p| set.contains(p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{proto, ProtoInfo, TcpInfo};

    fn flow(orig: Tuple) -> Flow {
        Flow {
            reply: orig.reversed(),
            orig,
            mark: Some(0x17),
            status: Status::CONFIRMED | Status::ASSURED,
            protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
                state: Some(TcpState::Established),
                ..TcpInfo::default()
            })),
            ..Flow::default()
        }
    }

    #[test]
    fn cidr_parsing_and_membership() {
        let net: Cidr = "10.1.2.3/16".parse().unwrap();
        assert_eq!(net.to_string(), "10.1.0.0/16");
        assert!(net.contains("10.1.200.9".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(!net.contains("::a01:1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!("0.0.0.0/0"
            .parse::<Cidr>()
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn sets_of_addresses_and_ports() {
        let mut set = AddrSet::default();
        for i in 0..1000u32 {
            set.insert(Cidr::from(IpAddr::V4((0x0a00_0000 + i).into())));
        }
        set.insert("192.168.0.0/24".parse().unwrap());
        assert_eq!(set.len(), 1001);
        assert!(set.contains("10.0.3.231".parse().unwrap()));
        assert!(!set.contains("10.0.3.232".parse().unwrap()));
        assert!(set.contains("192.168.0.77".parse().unwrap()));
        assert_eq!(set.family(), Some(false));
        let f = Filter::new().dst_ports(1000..=2000).dst_port(53);
        let ports = f.dst_ports.as_ref().unwrap();
        assert_eq!(ports.len(), 1002);
        assert!(ports.contains(1500) && ports.contains(53) && !ports.contains(2001));
        assert_eq!(
            Filter::new().src_port(7).src_ports.unwrap().single(),
            Some(7)
        );
    }

    #[test]
    fn every_condition_is_anded() {
        let f = flow(Tuple::tcp(([10, 0, 0, 1], 1111), ([10, 0, 0, 2], 80)));
        assert!(Filter::new().matches(&f));
        assert!(Filter::new().family(Family::Ipv4).matches(&f));
        assert!(!Filter::new().family(Family::Ipv6).matches(&f));
        assert!(Filter::new()
            .protocol(proto::UDP)
            .protocol(proto::TCP)
            .matches(&f));
        assert!(!Filter::new().protocol(proto::UDP).matches(&f));
        assert!(Filter::new()
            .src("10.0.0.0/8".parse::<Cidr>().unwrap())
            .matches(&f));
        assert!(!Filter::new().dst([10, 0, 0, 3]).matches(&f));
        assert!(Filter::new().reply_src([10, 0, 0, 2]).matches(&f));
        assert!(Filter::new().dst_port(80).src_ports(1000..2000).matches(&f));
        assert!(!Filter::new().dst_port(443).matches(&f));
        assert!(Filter::new().tcp_state(TcpState::Established).matches(&f));
        assert!(!Filter::new().tcp_state(TcpState::TimeWait).matches(&f));
        assert!(Filter::new().status(Status::ASSURED).matches(&f));
        assert!(!Filter::new().status_unset(Status::ASSURED).matches(&f));
        assert!(Filter::new().mark_masked(0x7, 0xf).matches(&f));
        assert!(!Filter::new().mark(0x7).matches(&f));
        assert!(Filter::new().zone(0).matches(&f));
        assert!(!Filter::new().zone(1).matches(&f));
        assert!(!Filter::new().labels(Labels(1)).matches(&f));
        let icmp = flow(Tuple::icmp(
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            1,
            8,
            0,
        ));
        assert!(
            !Filter::new().dst_port(80).matches(&icmp),
            "no ports, no match"
        );
    }

    #[test]
    fn family_is_implied_by_addresses() {
        assert_eq!(
            Filter::new().src([10, 0, 0, 1]).effective_family(),
            Some(Family::Ipv4)
        );
        let v6: Cidr = "2001:db8::1".parse().unwrap();
        assert_eq!(Filter::new().dst(v6).effective_family(), Some(Family::Ipv6));
        assert_eq!(
            Filter::new().src([10, 0, 0, 1]).src(v6).effective_family(),
            None
        );
        assert_eq!(Filter::new().effective_family(), None);
        assert_eq!(Filter::new().protocol(6).single_protocol(), Some(6));
        assert_eq!(
            Filter::new().protocol(6).protocol(17).single_protocol(),
            None
        );
    }
}

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

use crate::error::{Error, Result};
use crate::flow::Family;
use crate::flow::{proto, Flow, Labels, TcpState, Tuple};
use crate::status::{Status, KNOWN_STATUS_BITS};

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
/// caller's filter or the kernel's tables, not from packets, so flooding is
/// not a concern). Public (hidden) so that benchmarks' raw baselines hash the
/// same way.
///
/// Each word is mixed by a multiply, whose low bits depend only on the low
/// bits of its input; the hash table picks the bucket from the low bits of
/// the hash. So `finish` rotates the well-mixed high bits down (as
/// rustc-hash's `FxHasher` does): without it, keys that differ only in the
/// high bits of their last word share a bucket — the socket table's TCP keys
/// of many connections to one remote port (ports `local << 16 | remote`)
/// fell into a handful of buckets and each insert walked them all.
#[doc(hidden)]
#[derive(Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
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

    /// Which families the entries cover: bit 0 IPv4, bit 1 IPv6.
    fn family_bits(&self) -> u8 {
        self.groups
            .iter()
            .filter(|g| !g.2.is_empty())
            .fold(0, |bits, g| bits | if g.0 { 0b10 } else { 0b01 })
    }

    /// Whether every address of both families is in the set (`0.0.0.0/0` and `::/0`).
    fn is_universal(&self) -> bool {
        let has_default = |v6: bool| {
            self.groups
                .iter()
                .any(|g| g.0 == v6 && g.1 == 0 && !g.2.is_empty())
        };
        has_default(false) && has_default(true)
    }

    /// The entries for a message: up to three, then how many more.
    fn describe(&self) -> String {
        let mut shown = Vec::new();
        for (v6, prefix, set) in &self.groups {
            for bits in set.iter().take(3 - shown.len().min(3)) {
                shown.push(
                    Cidr {
                        addr: bits_addr(*bits, *v6),
                        prefix: *prefix,
                    }
                    .to_string(),
                );
            }
        }
        let more = self.len.saturating_sub(shown.len());
        if more > 0 {
            format!("{} (and {more} more)", shown.join(","))
        } else {
            shown.join(",")
        }
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

    /// Any of `protocols` (several [`Filter::protocol`] calls at once). An
    /// empty `protocols` selects nothing, never more.
    pub fn protocols(mut self, protocols: impl IntoIterator<Item = u8>) -> Self {
        self.protocols.get_or_insert([0; 4]);
        protocols.into_iter().fold(self, Filter::protocol)
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
    ///
    /// An empty `cidrs` is a condition no flow meets (any of no address):
    /// the filter then selects nothing, never more.
    pub fn src_any(mut self, cidrs: impl IntoIterator<Item = impl Into<Cidr>>) -> Self {
        let set = self.orig_src.get_or_insert_with(AddrSet::default);
        cidrs.into_iter().for_each(|cidr| set.insert(cidr.into()));
        self
    }

    /// Original destination address or network. CLI: `-d ADDR` (`--orig-dst`).
    /// Kernel: as [`Filter::src`].
    pub fn dst(mut self, cidr: impl Into<Cidr>) -> Self {
        add_addr(&mut self.orig_dst, cidr.into());
        self
    }

    /// Original destination in any of `cidrs`.
    ///
    /// An empty `cidrs` selects nothing, as for [`Filter::src_any`].
    pub fn dst_any(mut self, cidrs: impl IntoIterator<Item = impl Into<Cidr>>) -> Self {
        let set = self.orig_dst.get_or_insert_with(AddrSet::default);
        cidrs.into_iter().for_each(|cidr| set.insert(cidr.into()));
        self
    }

    /// Reply-direction source (the address answering, after NAT).
    /// CLI: `-r ADDR` (`--reply-src`). Kernel: as [`Filter::src`].
    pub fn reply_src(mut self, cidr: impl Into<Cidr>) -> Self {
        add_addr(&mut self.reply_src, cidr.into());
        self
    }

    /// Reply-direction source in any of `cidrs` (empty: selects nothing).
    pub fn reply_src_any(mut self, cidrs: impl IntoIterator<Item = impl Into<Cidr>>) -> Self {
        let set = self.reply_src.get_or_insert_with(AddrSet::default);
        cidrs.into_iter().for_each(|cidr| set.insert(cidr.into()));
        self
    }

    /// Reply-direction destination in any of `cidrs` (empty: selects nothing).
    pub fn reply_dst_any(mut self, cidrs: impl IntoIterator<Item = impl Into<Cidr>>) -> Self {
        let set = self.reply_dst.get_or_insert_with(AddrSet::default);
        cidrs.into_iter().for_each(|cidr| set.insert(cidr.into()));
        self
    }

    /// Reply-direction destination. CLI: `-q ADDR` (`--reply-dst`).
    /// Kernel: as [`Filter::src`].
    pub fn reply_dst(mut self, cidr: impl Into<Cidr>) -> Self {
        add_addr(&mut self.reply_dst, cidr.into());
        self
    }

    /// Original source port; several calls select any of them. Only TCP, UDP,
    /// UDP-Lite, SCTP and DCCP flows have ports: flows of any other protocol
    /// (ICMP, GRE, whose keys sit where ports would, generic) never match a
    /// port condition. CLI: `--sport PORT`. Kernel:
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

    /// Any of `states` (several [`Filter::tcp_state`] calls at once). An
    /// empty `states` selects nothing, never more.
    pub fn tcp_states(mut self, states: impl IntoIterator<Item = TcpState>) -> Self {
        self.tcp_states.get_or_insert(0);
        states.into_iter().fold(self, Filter::tcp_state)
    }

    /// TCP state; several calls select any of them; non-TCP flows never match.
    /// CLI: `-p tcp --state ESTABLISHED`. Kernel: none can filter on it; userspace.
    pub fn tcp_state(mut self, state: TcpState) -> Self {
        let raw = state.raw();
        // The kernel's states are 0-9; a larger one can never match and is
        // refused by `validate` (bit 31 stands for all those beyond 31).
        let bit = 1u32 << raw.min(31);
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

    /// Mark under a mask: `(flow.mark & mask) == value`, as the kernel,
    /// `conntrack -m MARK/MASK` and ti-mo/conntrack evaluate it.
    /// Kernel: as [`Filter::mark`].
    ///
    /// A `value` with bits outside `mask` could never match: such a filter is
    /// refused by every operation with [`Error::InvalidInput`] naming both
    /// numbers (see [`Filter::validate`]) rather than silently selecting
    /// nothing. A zero mask with a zero value holds for every flow, so it is
    /// no condition at all (and an otherwise empty filter stays empty: a delete
    /// refuses it).
    pub fn mark_masked(mut self, value: u32, mask: u32) -> Self {
        self.mark = (mask != 0 || value != 0).then_some((value, mask));
        self
    }

    /// Zone (flow-wide or directional zone id; 0 = the default zone).
    /// CLI: `-w ZONE`. Kernel: `CTA_ZONE` (6.8+); userspace before.
    pub fn zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }

    /// Labels that must all be set. CLI: `-l LABEL,...`. Kernel: none; userspace.
    /// No label (`Labels(0)`) is no condition.
    pub fn labels(mut self, labels: Labels) -> Self {
        self.labels = (labels.0 != 0).then_some(labels);
        self
    }

    /// True when the filter selects every flow: it has no condition, or only
    /// conditions every flow satisfies (every protocol number, `0.0.0.0/0`
    /// together with `::/0`). [`Conntrack::delete_matching`](crate::Conntrack::delete_matching)
    /// refuses such a filter.
    pub fn is_empty(&self) -> bool {
        self.family.is_none()
            && self.protocols.map_or(true, |set| set == [u64::MAX; 4])
            && [
                &self.orig_src,
                &self.orig_dst,
                &self.reply_src,
                &self.reply_dst,
            ]
            .into_iter()
            .all(|set| set.as_ref().map_or(true, AddrSet::is_universal))
            && self.src_ports.is_none()
            && self.dst_ports.is_none()
            && self.tcp_states.is_none()
            && self.status_set.is_empty()
            && self.status_unset.is_empty()
            && self.mark.is_none()
            && self.zone.is_none()
            && self.labels.is_none()
    }

    /// Checks that the filter means something: every operation taking a
    /// filter calls this first and sends nothing to the kernel when it fails.
    /// Refused with [`Error::InvalidInput`], naming the conditions involved:
    /// * a mark value with bits outside its mask (it could never match);
    /// * conditions that no flow can satisfy together: an address family and
    ///   addresses of the other family, address conditions of different
    ///   families (both directions of a flow have one family), a TCP state
    ///   with protocols that do not include TCP, ports with protocols none of
    ///   which has ports (only TCP, UDP, UDP-Lite, SCTP and DCCP do), a TCP
    ///   state number the kernel never uses.
    ///
    /// A filter that can match nothing is a mistake in the caller's
    /// conditions; saying so beats answering "0 matched" (or, for the kernel,
    /// `EINVAL`).
    pub fn validate(&self) -> Result<()> {
        if let Some((value, mask)) = self.mark {
            if value & !mask != 0 {
                return Err(Error::InvalidInput(format!(
                    "mark {value:#x}/{mask:#x}: the value has bits outside the mask, so \
                     (mark & {mask:#x}) can never equal {value:#x} and the filter would select \
                     nothing (did you mean {:#x}/{mask:#x}?)",
                    value & mask
                )));
            }
        }
        // Bit 0: IPv4 possible, bit 1: IPv6 possible.
        let mut families = match self.family {
            None | Some(Family::All) => 0b11u8,
            Some(Family::Ipv4) => 0b01,
            Some(Family::Ipv6) => 0b10,
        };
        let mut reasons = Vec::new();
        if let Some(family) = self.family {
            reasons.push(format!("family {}", family_name(family)));
        }
        for (name, set) in [
            ("src", &self.orig_src),
            ("dst", &self.orig_dst),
            ("reply_src", &self.reply_src),
            ("reply_dst", &self.reply_dst),
        ] {
            // An empty set of alternatives selects nothing by itself (as an
            // empty list of endpoints should); it says nothing of families.
            let Some(set) = set.as_ref().filter(|set| !set.is_empty()) else {
                continue;
            };
            families &= set.family_bits();
            reasons.push(format!("{name} {}", set.describe()));
            if families == 0 {
                return Err(Error::InvalidInput(format!(
                    "{} cannot hold together: no flow has addresses of both families \
                     (both directions of a flow share one family)",
                    reasons.join(" and ")
                )));
            }
        }
        let unknown = (self.status_set | self.status_unset).bits() & !KNOWN_STATUS_BITS;
        if unknown != 0 {
            return Err(Error::InvalidInput(format!(
                "status: bits {unknown:#x} are not status bits (the kernel defines 16: 0x1-0x8000)"
            )));
        }
        if let Some(states) = self.tcp_states {
            if states & !KNOWN_TCP_STATES != 0 {
                return Err(Error::InvalidInput(format!(
                    "TCP state {}: the kernel's states are 0 to 9 ({})",
                    (states & !KNOWN_TCP_STATES).trailing_zeros(),
                    TcpState::names().join(", ")
                )));
            }
            if let Some(set) = self.protocols {
                if !protocol_in(&set, proto::TCP) {
                    return Err(Error::InvalidInput(format!(
                        "a TCP state condition with protocol {} selects nothing: TCP states \
                         belong to TCP flows (add tcp or drop the state)",
                        protocol_list(&set)
                    )));
                }
            }
        }
        if self.src_ports.is_some() || self.dst_ports.is_some() {
            if let Some(set) = self.protocols {
                if !PORT_PROTOCOLS.iter().any(|&p| protocol_in(&set, p)) {
                    return Err(Error::InvalidInput(format!(
                        "a port condition with protocol {} selects nothing: only tcp, udp, \
                         udplite, sctp and dccp have ports",
                        protocol_list(&set)
                    )));
                }
            }
        }
        Ok(())
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
                Some(state) if flow.protocol() == proto::TCP => {
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

/// TCP states 0-9 (`TCP_CONNTRACK_NONE` to `TCP_CONNTRACK_SYN_SENT2`) as bits.
const KNOWN_TCP_STATES: u32 = 0x3ff;

/// The protocols whose tuples carry ports: a port condition never matches
/// another protocol (GRE keys and ICMP ids sit in the same place but are not ports).
pub(crate) const PORT_PROTOCOLS: [u8; 5] = [
    proto::TCP,
    proto::UDP,
    proto::UDPLITE,
    proto::SCTP,
    proto::DCCP,
];

/// Whether flows of `protocol` have ports.
#[inline]
pub(crate) fn has_ports(protocol: u8) -> bool {
    PORT_PROTOCOLS.contains(&protocol)
}

fn protocol_in(set: &[u64; 4], protocol: u8) -> bool {
    set[usize::from(protocol >> 6)] >> (protocol & 63) & 1 == 1
}

fn protocol_list(set: &[u64; 4]) -> String {
    (0..=255u8)
        .filter(|&p| protocol_in(set, p))
        .map(|p| match proto::name(p) {
            "unknown" => p.to_string(),
            name => name.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::All => "all",
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

#[inline]
fn port_ok(set: &Option<PortSet>, tuple: &Tuple, source: bool) -> bool {
    match set {
        None => true,
        Some(_) if !has_ports(tuple.protocol) => false,
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
    use crate::flow::{ProtoInfo, TcpInfo, L4};

    /// Keys that differ only in the high bits of their last word (the socket
    /// table's TCP keys of connections to one remote port: the same
    /// addresses, ports `local << 16 | remote`) must still spread over the
    /// buckets, which the table picks from the hash's low bits.
    #[test]
    fn addr_hasher_spreads_keys_that_differ_in_high_bits_only() {
        let hash = |local_port: u64| {
            let mut h = AddrHasher::default();
            h.write_u128(0xffff_7f00_0001 ^ 0xffff_7f00_0001u128.rotate_left(17));
            h.write_u64(local_port << 16 | 443);
            h.finish()
        };
        let keys = 4096u64;
        let low_bits: HashSet<u64> = (32768..32768 + keys).map(|p| hash(p) & 0x7fff).collect();
        // 4096 random values in 32768 slots: about 3 850 distinct.
        assert!(
            low_bits.len() as u64 > keys * 9 / 10,
            "{} distinct low-15-bit hashes of {keys} keys",
            low_bits.len()
        );
        let top_bits: HashSet<u64> = (32768..32768 + keys).map(|p| hash(p) >> 57).collect();
        assert_eq!(top_bits.len(), 128, "the 7-bit tags of {keys} keys");
    }

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
    #[test]
    fn a_mark_value_outside_its_mask_never_widens() {
        let mut f = flow(Tuple::tcp(([10, 0, 0, 1], 1111), ([10, 0, 0, 2], 80)));
        f.mark = Some(0);
        // (0 & 0xff) != 0x100: the kernel and conntrack -m 0x100/0xff select nothing.
        let wide = Filter::new().mark_masked(0x100, 0xff);
        assert!(
            !wide.matches(&f),
            "value bits outside the mask must not be dropped"
        );
        let err = wide.validate().unwrap_err().to_string();
        assert!(
            err.contains("0x100/0xff") && err.contains("0x0/0xff"),
            "{err}"
        );
        f.mark = Some(42);
        assert!(!Filter::new().mark_masked(42, 0xf).matches(&f));
        assert!(Filter::new().mark_masked(42, 0xf).validate().is_err());
        assert!(Filter::new().mark_masked(0xa, 0xf).matches(&f));
        assert!(Filter::new().mark_masked(0xa, 0xf).validate().is_ok());
    }

    #[test]
    fn conditions_every_flow_satisfies_leave_the_filter_empty() {
        assert!(Filter::new().mark_masked(0, 0).is_empty());
        assert!(!Filter::new().mark_masked(7, 0).is_empty());
        assert!(Filter::new().mark_masked(7, 0).validate().is_err());
        assert!(Filter::new().labels(Labels(0)).is_empty());
        assert!(Filter::new().family(Family::All).is_empty());
        assert!(Filter::new().status(Status::empty()).is_empty());
        let everything = (0..=255u8).fold(Filter::new(), Filter::protocol);
        assert!(everything.is_empty());
        let both: [Cidr; 2] = ["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()];
        assert!(Filter::new().src_any(both).is_empty());
        assert!(!Filter::new().src(both[0]).is_empty(), "IPv4 only");
        assert!(
            !Filter::new().dst_ports(0..=65535).is_empty(),
            "flows with ports only"
        );
    }

    #[test]
    fn ports_belong_to_port_protocols_only() {
        let gre = flow(Tuple {
            l4: L4::Ports { src: 0, dst: 0x35 },
            ..Tuple::generic(proto::GRE, [10, 0, 0, 1].into(), [10, 0, 0, 2].into())
        });
        assert_eq!(
            gre.orig.dst_port(),
            Some(0x35),
            "GRE keys sit where ports would"
        );
        assert!(!Filter::new().dst_port(53).matches(&gre));
        assert!(!Filter::new().src_ports(0..=65535).matches(&gre));
        for protocol in PORT_PROTOCOLS {
            let f = flow(Tuple {
                l4: L4::Ports { src: 1, dst: 53 },
                ..Tuple::generic(protocol, [10, 0, 0, 1].into(), [10, 0, 0, 2].into())
            });
            assert!(
                Filter::new().dst_port(53).matches(&f),
                "protocol {protocol}"
            );
        }
    }

    #[test]
    fn contradictions_are_refused_with_their_conditions() {
        let v6: Cidr = "2001:db8:1::1".parse().unwrap();
        let refused = |f: Filter, needles: &[&str]| {
            let text = f.validate().expect_err("contradiction").to_string();
            for needle in needles {
                assert!(text.contains(needle), "{needle:?} not in {text:?}");
            }
        };
        refused(
            Filter::new().family(Family::Ipv4).src(v6),
            &["family ipv4", "2001:db8:1::1"],
        );
        refused(
            Filter::new().family(Family::Ipv6).dst([10, 0, 0, 1]),
            &["ipv6", "10.0.0.1"],
        );
        refused(
            Filter::new().src([10, 0, 0, 1]).reply_dst(v6),
            &["src 10.0.0.1", "reply_dst"],
        );
        refused(
            Filter::new()
                .protocol(proto::UDP)
                .tcp_state(TcpState::Established),
            &["TCP state", "udp"],
        );
        refused(
            Filter::new().protocol(proto::GRE).dst_port(53),
            &["port", "gre"],
        );
        refused(
            Filter::new().protocol(proto::ICMP).protocol(47).src_port(1),
            &["icmp,gre"],
        );
        // Not contradictions: one of the alternatives can match.
        let ok = |f: Filter| f.validate().unwrap();
        ok(Filter::new()
            .family(Family::Ipv4)
            .src([10, 0, 0, 1])
            .src(v6));
        ok(Filter::new()
            .protocol(proto::UDP)
            .protocol(proto::TCP)
            .tcp_state(TcpState::Close));
        ok(Filter::new()
            .protocol(proto::GRE)
            .protocol(proto::SCTP)
            .dst_port(3868));
        ok(Filter::new().tcp_state(TcpState::Established).dst_port(22));
        ok(Filter::new());
        // An empty set of alternatives is allowed, and selects nothing (a
        // forgotten condition would select everything).
        let g = flow(Tuple::tcp(([10, 0, 0, 1], 1111), ([10, 0, 0, 2], 80)));
        for empty in [
            Filter::new()
                .protocol(proto::TCP)
                .dst_any(Vec::<Cidr>::new()),
            Filter::new().reply_src_any(Vec::<Cidr>::new()),
            Filter::new().reply_dst_any(Vec::<Cidr>::new()),
            Filter::new().protocols([]),
            Filter::new().tcp_states([]),
            Filter::new().dst_ports([]),
        ] {
            assert!(!empty.matches(&g) && !empty.is_empty(), "{empty:?}");
            empty.validate().unwrap();
        }
        let none = Filter::new()
            .family(Family::Ipv4)
            .src_any(Vec::<Cidr>::new());
        ok(none.clone());
        let f = flow(Tuple::tcp(([10, 0, 0, 1], 1111), ([10, 0, 0, 2], 80)));
        assert!(!none.matches(&f));
        refused(
            Filter::new().tcp_state(TcpState::from_raw(12)),
            &["TCP state 12", "SYN_SENT2"],
        );
        refused(
            Filter::new().tcp_state(TcpState::from_raw(200)),
            &["TCP state"],
        );
        refused(
            Filter::new().status(Status::from_bits_retain(0x1_0000)),
            &["0x10000"],
        );
        refused(
            Filter::new().status_unset(Status::from_bits_retain(0x8000_0000)),
            &["0x80000000"],
        );
    }

    #[test]
    fn names_conntrack_tools_takes() {
        assert_eq!(TcpState::from_name("LISTEN"), Some(TcpState::SynSent2));
        assert_eq!(TcpState::from_name("syn_sent2"), Some(TcpState::SynSent2));
        assert_eq!(
            TcpState::SynSent2.name(),
            "SYN_SENT2",
            "printed as the kernel names it"
        );
        let err = TcpState::parse_named("--state", "ESTABLISH")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--state") && err.contains("TIME_WAIT") && err.contains("LISTEN"));
        let err = Status::parse_named("--status", "ASURED")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ASSURED") && err.contains("SEEN_REPLY"),
            "{err}"
        );
        let table = proto::parse_protocols(
            "# comment\nip\t0\tIP\t\t# internet protocol\nigmp 2 IGMP\nipv6-icmp 58 IPv6-ICMP\n\
             bad x\nbig 300 BIG\n",
        );
        assert_eq!(
            table,
            [
                ("ip", 0),
                ("IP", 0),
                ("igmp", 2),
                ("IGMP", 2),
                ("ipv6-icmp", 58),
                ("IPv6-ICMP", 58)
            ]
            .map(|(n, p)| (n.to_owned(), p))
        );
        assert_eq!(proto::from_name("256"), None);
        let err = proto::parse_named("-p", "nonsense-proto")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("-p") && err.contains("tcp") && err.contains("0-255"),
            "{err}"
        );
        if std::path::Path::new("/etc/protocols").exists() {
            assert_eq!(proto::from_name("igmp"), Some(2));
            assert_eq!(proto::from_name("IPv6-ICMP"), Some(58));
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Counting flows grouped by keys: [`GroupBy`], [`GroupTally`] (the one-pass
//! accumulator behind [`Conntrack::count_by`](crate::Conntrack::count_by) and
//! [`Conntrack::census`](crate::Conntrack::census)) and its [`GroupCounts`].

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};
use crate::flow::Flow;

/// What [`Conntrack::count_by`](crate::Conntrack::count_by) groups flows by.
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

/// Result of [`Conntrack::count_by`](crate::Conntrack::count_by).
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

/// One grouping of a [`Conntrack::census`](crate::Conntrack::census): the keys, and how many of the
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

/// Counts flows grouped by a key, one flow at a time: the accumulator behind
/// [`Conntrack::count_by`](crate::Conntrack::count_by), for a pass that does several things at once (group
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
    layout: Layout,
    counts: Counts,
    total: u64,
}

/// Where each key of a tally goes in its compact form: the address key (at
/// most one outside [`Counts::General`]) is kept as is, every other key is a
/// small number ([`GroupBy::code`], ordered like its values) packed into one
/// `u64`, the first key in the highest bits, so that compact groups compare
/// like their value slices without decoding them.
#[derive(Debug, Clone)]
struct Layout {
    keys: Box<[GroupBy]>,
    /// The non-address keys and the bit position of their codes (unused in
    /// [`Counts::General`]).
    codes: Box<[(GroupBy, u32)]>,
    /// The address key of [`Counts::Address`].
    address: GroupBy,
    /// Width of the codes of the keys after the address key (the low bits).
    after_address: u32,
}

/// How a tally stores its counts, chosen once from its keys so that the
/// common groupings cost one array increment or one hash of a small key per
/// flow, with no allocation. Ports, marks, zones and addresses come from the
/// network (attacker-chosen on an attacked host): their maps keep std's
/// randomly keyed SipHash.
#[derive(Debug, Clone)]
enum Counts {
    /// Codes of at most [`DENSE_BITS`] bits (protocol, TCP state): one counter per code.
    Dense { counts: Box<[u64]> },
    /// Codes packed into a `u64` (ports, marks, zones and combinations).
    Numbers(Tally<u64>),
    /// One address plus codes packed into a `u64`, one map per family so that
    /// IPv4 keys stay small.
    Address { v4: Tally<V4Key>, v6: Tally<V6Key> },
    /// Anything else (several addresses, codes beyond 64 bits): the values themselves.
    General {
        counts: HashMap<Box<[GroupValue]>, u64>,
        key: Vec<GroupValue>,
    },
}

/// Largest code width counted in an array (1024 counters).
const DENSE_BITS: u32 = 10;

/// An IPv4 address and the other keys' codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct V4Key {
    addr: u32,
    numbers: u64,
}

/// An IPv6 address (as two halves: 8-byte alignment keeps entries small) and
/// the other keys' codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct V6Key {
    addr: [u64; 2],
    numbers: u64,
}

// Hashing only what varies (a tally by address alone hashes 4 or 16 bytes),
// in one `write` per key (each is a call into SipHash's buffering). Equal keys
// write the same bytes, so this agrees with `Eq`.
impl Hash for V4Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut bytes = [0; 12];
        bytes[..4].copy_from_slice(&self.addr.to_ne_bytes());
        bytes[4..].copy_from_slice(&self.numbers.to_ne_bytes());
        state.write(if self.numbers == 0 {
            &bytes[..4]
        } else {
            &bytes
        });
    }
}

impl Hash for V6Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut bytes = [0; 24];
        bytes[..8].copy_from_slice(&self.addr[0].to_ne_bytes());
        bytes[8..16].copy_from_slice(&self.addr[1].to_ne_bytes());
        bytes[16..].copy_from_slice(&self.numbers.to_ne_bytes());
        state.write(if self.numbers == 0 {
            &bytes[..16]
        } else {
            &bytes
        });
    }
}

/// Counts per compact key, for keys from the network: a small front cache
/// for the few groups that take most flows, then a map whose buckets are
/// chosen by std's randomly keyed SipHash of the key (flooding-resistant),
/// hashed once per flow and kept beside the key so that growing the map does
/// not hash every key again.
///
/// A cache slot, once taken, keeps its key for good, so a key is counted
/// either in its slot or in the map, never in both. Its index is a cheap
/// multiplicative hash: a sender choosing keys that share slots only costs
/// the map lookup every flow would cost without the cache.
#[derive(Debug, Clone)]
struct Tally<K> {
    cache: Box<[(K, u64)]>,
    sip: RandomState,
    map: HashMap<Hashed<K>, u64, BuildHasherDefault<StoredHash>>,
}

/// Slots of a [`Tally`]'s front cache (a power of two).
const CACHE_SLOTS: usize = 64;

/// A key of a [`Tally`]: hashable by SipHash, with a cheap cache index.
trait CompactKeyBits: Copy + Eq + Hash + Default {
    /// Some bits of the key, mixed into the cache index.
    fn bits(&self) -> u64;
}

impl CompactKeyBits for u64 {
    fn bits(&self) -> u64 {
        *self
    }
}

impl CompactKeyBits for V4Key {
    fn bits(&self) -> u64 {
        u64::from(self.addr) ^ self.numbers.rotate_left(32)
    }
}

impl CompactKeyBits for V6Key {
    fn bits(&self) -> u64 {
        self.addr[0] ^ self.addr[1] ^ self.numbers.rotate_left(32)
    }
}

/// A key and its SipHash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hashed<K> {
    hash: u64,
    key: K,
}

impl<K> Hash for Hashed<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Hands the SipHash kept in a [`Hashed`] key to the map unchanged.
#[derive(Debug, Default, Clone, Copy)]
struct StoredHash(u64);

impl Hasher for StoredHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; folding anything else keeps this correct.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

impl<K: CompactKeyBits> Tally<K> {
    fn new() -> Self {
        Tally {
            cache: vec![(K::default(), 0); CACHE_SLOTS].into_boxed_slice(),
            sip: RandomState::new(),
            map: HashMap::default(),
        }
    }

    #[inline]
    fn add(&mut self, key: K) {
        let slot =
            key.bits().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - CACHE_SLOTS.trailing_zeros());
        if let Some((cached, n)) = self.cache.get_mut(slot as usize) {
            if *n != 0 && *cached == key {
                *n += 1;
                return;
            }
            if *n == 0 {
                // A free slot: this key was never seen (it would have taken it).
                (*cached, *n) = (key, 1);
                return;
            }
        }
        let hash = self.sip.hash_one(key);
        *self.map.entry(Hashed { hash, key }).or_insert(0) += 1;
    }

    fn groups(&self) -> usize {
        self.cache.iter().filter(|(_, n)| *n != 0).count() + self.map.len()
    }

    fn iter(&self) -> impl Iterator<Item = (K, u64)> + '_ {
        let cached = self.cache.iter().filter(|(_, n)| *n != 0).copied();
        cached.chain(self.map.iter().map(|(k, n)| (k.key, *n)))
    }
}

/// A group in compact form: the address (for a layout with one) and the codes.
#[derive(Debug, Clone, Copy)]
struct CompactKey {
    address: Option<IpAddr>,
    numbers: u64,
}

impl GroupBy {
    /// Width of [`GroupBy::code`] in bits; `None` for address keys.
    fn code_bits(self) -> Option<u32> {
        match self {
            GroupBy::Source | GroupBy::Destination => None,
            GroupBy::SourcePort | GroupBy::DestinationPort => Some(17),
            GroupBy::Protocol => Some(8),
            GroupBy::TcpState => Some(10),
            GroupBy::Zone => Some(16),
            GroupBy::Mark => Some(32),
        }
    }

    /// The flow's value as a small number (an injective image of
    /// [`GroupBy::value`] for the non-address keys; 0 for address keys).
    #[inline]
    fn code<S>(self, flow: &Flow<S>) -> u64 {
        let port = |port: Option<u16>| port.map_or(NO_PORT, u64::from);
        match self {
            GroupBy::Source | GroupBy::Destination => 0,
            GroupBy::SourcePort => port(flow.orig.src_port()),
            GroupBy::DestinationPort => port(flow.orig.dst_port()),
            GroupBy::Protocol => flow.protocol().into(),
            GroupBy::TcpState => match flow.tcp_state() {
                None => NO_TCP_STATE,
                Some(crate::TcpState::Unknown(raw)) => UNKNOWN_TCP_STATE + u64::from(raw),
                Some(state) => state.raw().into(),
            },
            GroupBy::Zone => flow.zone_id().into(),
            GroupBy::Mark => flow.mark.unwrap_or(0).into(),
        }
    }

    /// The value of a [`GroupBy::code`] of a non-address key.
    fn value_of_code(self, code: u64) -> GroupValue {
        match self {
            GroupBy::SourcePort | GroupBy::DestinationPort if code == NO_PORT => GroupValue::None,
            GroupBy::TcpState => match code {
                NO_TCP_STATE => GroupValue::None,
                UNKNOWN_TCP_STATE.. => {
                    GroupValue::TcpState(crate::TcpState::Unknown((code - UNKNOWN_TCP_STATE) as u8))
                }
                raw => GroupValue::TcpState(crate::TcpState::from_raw(raw as u8)),
            },
            // Every other code is the number itself (at most 32 bits wide).
            _ => GroupValue::Number(code as u32),
        }
    }

    /// The flow's address for an address key.
    #[inline]
    fn address<S>(self, flow: &Flow<S>) -> IpAddr {
        match self {
            GroupBy::Destination => flow.orig.dst,
            _ => flow.orig.src,
        }
    }
}

/// Port code of a flow without ports.
const NO_PORT: u64 = 1 << 16;
/// TCP state codes: a known state is its kernel value (below 256), an
/// `Unknown(raw)` one is `256 + raw` (a caller can build `Unknown(3)`, which
/// is not `Established`), no state is 512.
const UNKNOWN_TCP_STATE: u64 = 256;
const NO_TCP_STATE: u64 = 512;

impl Layout {
    fn new(keys: &[GroupBy]) -> Self {
        let mut remaining: u32 = keys.iter().filter_map(|k| k.code_bits()).sum();
        let (mut codes, mut address, mut after_address) = (Vec::new(), GroupBy::Source, 0);
        for key in keys {
            match key.code_bits() {
                Some(bits) => {
                    remaining = remaining.saturating_sub(bits);
                    codes.push((*key, remaining));
                }
                None => {
                    address = *key;
                    after_address = remaining;
                }
            }
        }
        Layout {
            keys: keys.into(),
            codes: codes.into_boxed_slice(),
            address,
            after_address,
        }
    }

    /// The flow's codes packed at their shifts (not for [`Counts::General`]).
    #[inline]
    fn numbers<S>(&self, flow: &Flow<S>) -> u64 {
        match *self.codes {
            [] => 0,
            [(key, _)] => key.code(flow),
            [(first, shift), (second, _)] => first.code(flow) << shift | second.code(flow),
            ref codes => codes
                .iter()
                .fold(0, |packed, (key, shift)| packed | key.code(flow) << shift),
        }
    }

    /// Compares compact groups as their value slices compare: codes before
    /// the address, address, codes after it.
    fn compare(&self, a: &CompactKey, b: &CompactKey) -> Ordering {
        let before = |k: &CompactKey| k.numbers.checked_shr(self.after_address).unwrap_or(0);
        let after =
            |k: &CompactKey| k.numbers ^ before(k).checked_shl(self.after_address).unwrap_or(0);
        before(a)
            .cmp(&before(b))
            .then_with(|| a.address.cmp(&b.address))
            .then_with(|| after(a).cmp(&after(b)))
    }

    fn values(&self, key: &CompactKey) -> Vec<GroupValue> {
        let mut codes = self.codes.iter();
        self.keys
            .iter()
            .map(|by| match by.code_bits() {
                Some(bits) => {
                    // `codes` holds the non-address keys in order.
                    let shift = codes.next().map_or(0, |(_, shift)| *shift);
                    by.value_of_code((key.numbers >> shift) & ((1 << bits) - 1))
                }
                None => key.address.map_or(GroupValue::None, GroupValue::Addr),
            })
            .collect()
    }
}

impl GroupTally {
    /// A tally grouping by `keys` (at least one).
    pub fn new(keys: &[GroupBy]) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::InvalidInput(
                "count_by needs at least one key".into(),
            ));
        }
        let bits: u32 = keys.iter().filter_map(|k| k.code_bits()).sum();
        let addresses = keys.iter().filter(|k| k.code_bits().is_none()).count();
        let counts = match (addresses, bits) {
            (0, 0..=DENSE_BITS) => Counts::Dense {
                counts: vec![0; 1 << bits].into_boxed_slice(),
            },
            (0, 0..=64) => Counts::Numbers(Tally::new()),
            (1, 0..=64) => Counts::Address {
                v4: Tally::new(),
                v6: Tally::new(),
            },
            _ => Counts::General {
                counts: HashMap::new(),
                key: Vec::with_capacity(keys.len()),
            },
        };
        Ok(GroupTally {
            layout: Layout::new(keys),
            counts,
            total: 0,
        })
    }

    /// Counts one flow in its group.
    #[inline]
    pub fn add<S>(&mut self, flow: &Flow<S>) {
        self.total += 1;
        let layout = &self.layout;
        match &mut self.counts {
            Counts::Dense { counts } => {
                // The index has at most DENSE_BITS bits: always in range.
                if let Some(n) = counts.get_mut(layout.numbers(flow) as usize) {
                    *n += 1;
                }
            }
            Counts::Numbers(counts) => counts.add(layout.numbers(flow)),
            Counts::Address { v4, v6 } => {
                let numbers = layout.numbers(flow);
                match layout.address.address(flow) {
                    IpAddr::V4(addr) => {
                        let key = V4Key {
                            addr: addr.to_bits(),
                            numbers,
                        };
                        v4.add(key);
                    }
                    IpAddr::V6(addr) => {
                        let bits = addr.to_bits();
                        let key = V6Key {
                            addr: [(bits >> 64) as u64, bits as u64],
                            numbers,
                        };
                        v6.add(key);
                    }
                }
            }
            Counts::General { counts, key } => {
                key.clear();
                key.extend(layout.keys.iter().map(|k| k.value(flow)));
                match counts.get_mut(key.as_slice()) {
                    Some(n) => *n += 1,
                    None => {
                        counts.insert(key.clone().into_boxed_slice(), 1);
                    }
                }
            }
        }
    }

    /// Flows counted so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Distinct groups so far.
    pub fn groups(&self) -> usize {
        match &self.counts {
            Counts::Dense { counts } => counts.iter().filter(|n| **n != 0).count(),
            Counts::Numbers(counts) => counts.groups(),
            Counts::Address { v4, v6 } => v4.groups() + v6.groups(),
            Counts::General { counts, .. } => counts.len(),
        }
    }

    /// The `top` largest groups, largest first (ties ordered by key), and the
    /// rest summed into `other` (`top = usize::MAX` keeps all).
    pub fn finish(self, top: usize) -> GroupCounts {
        let (layout, total, len) = (&self.layout, self.total, self.groups());
        let compact = |entries: &mut dyn Iterator<Item = (CompactKey, u64)>| {
            top_groups(
                entries,
                len,
                top,
                total,
                |a, b| layout.compare(a, b),
                |k| layout.values(k),
            )
        };
        let numbers = |numbers| CompactKey {
            address: None,
            numbers,
        };
        match self.counts {
            Counts::Dense { ref counts } => compact(
                &mut (0..)
                    .zip(counts.iter())
                    .filter(|(_, n)| **n != 0)
                    .map(|(code, n)| (numbers(code), *n)),
            ),
            Counts::Numbers(ref counts) => {
                compact(&mut counts.iter().map(|(code, n)| (numbers(code), n)))
            }
            Counts::Address { ref v4, ref v6 } => {
                let v4 = v4.iter().map(|(key, n)| {
                    let address = IpAddr::V4(Ipv4Addr::from_bits(key.addr));
                    (
                        CompactKey {
                            address: Some(address),
                            numbers: key.numbers,
                        },
                        n,
                    )
                });
                let v6 = v6.iter().map(|(key, n)| {
                    let bits = u128::from(key.addr[0]) << 64 | u128::from(key.addr[1]);
                    let address = IpAddr::V6(Ipv6Addr::from_bits(bits));
                    (
                        CompactKey {
                            address: Some(address),
                            numbers: key.numbers,
                        },
                        n,
                    )
                });
                compact(&mut v4.chain(v6))
            }
            Counts::General { ref counts, .. } => top_groups(
                counts.iter().map(|(k, n)| (k, *n)),
                len,
                top,
                total,
                |a, b| a.cmp(b),
                |k| k.to_vec(),
            ),
        }
    }
}

/// Up to this many kept groups, [`top_groups`] selects them in one pass.
const SMALL_TOP: usize = 64;

/// The `top` largest of `len` groups (distinct keys), largest first and ties
/// ordered by key, and the rest summed. Only the kept groups are sorted and
/// turned into values: a small top is selected in one pass (most groups cost
/// one comparison with the smallest kept one), a large one with a partial sort.
fn top_groups<K>(
    entries: impl Iterator<Item = (K, u64)>,
    len: usize,
    top: usize,
    total: u64,
    compare: impl Fn(&K, &K) -> Ordering,
    values: impl Fn(&K) -> Vec<GroupValue>,
) -> GroupCounts {
    let order = |a: &(K, u64), b: &(K, u64)| b.1.cmp(&a.1).then_with(|| compare(&a.0, &b.0));
    let mut other = 0;
    let kept = if top < len && top <= SMALL_TOP {
        let mut kept: Vec<(K, u64)> = Vec::with_capacity(top + 1);
        for entry in entries {
            if kept.len() == top {
                match kept.last() {
                    Some(last) if order(&entry, last).is_lt() => {}
                    _ => {
                        other += entry.1;
                        continue;
                    }
                }
            }
            let at = kept.partition_point(|k| order(k, &entry).is_lt());
            kept.insert(at, entry);
            if kept.len() > top {
                other += kept.pop().map_or(0, |(_, n)| n);
            }
        }
        kept
    } else {
        let mut entries: Vec<(K, u64)> = entries.collect();
        if entries.len() > top {
            if top > 0 {
                entries.select_nth_unstable_by(top, order);
            }
            other = entries[top..].iter().map(|(_, n)| n).sum();
            entries.truncate(top);
        }
        // Keys are distinct, so the order is total and an unstable sort is exact.
        entries.sort_unstable_by(order);
        entries
    };
    GroupCounts {
        other_groups: (len - kept.len()) as u64,
        groups: kept.iter().map(|(k, n)| (values(k), *n)).collect(),
        other,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{proto, ProtoInfo, TcpInfo, TcpState, Tuple};

    /// The tally as it was before its compact layouts: values in a boxed
    /// slice, every group sorted. The compact layouts must agree with it exactly.
    fn reference(keys: &[GroupBy], flows: &[Flow], top: usize) -> GroupCounts {
        let mut counts: HashMap<Vec<GroupValue>, u64> = HashMap::new();
        for flow in flows {
            let key = keys.iter().map(|k| k.value(flow)).collect();
            *counts.entry(key).or_insert(0) += 1;
        }
        let mut groups: Vec<_> = counts.into_iter().collect();
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
            total: flows.len() as u64,
        }
    }

    /// Varied flows with many ties: both families, ports and none, every
    /// kind of TCP state value (including `Unknown` ones that alias known
    /// kernel values), zones, marks up to `u32::MAX`.
    fn flows() -> Vec<Flow> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let states = [
            None,
            Some(TcpState::Established),
            Some(TcpState::None),
            Some(TcpState::SynSent2),
            Some(TcpState::TimeWait),
            Some(TcpState::Unknown(3)),
            Some(TcpState::Unknown(0)),
            Some(TcpState::Unknown(42)),
            Some(TcpState::Unknown(255)),
        ];
        (0..1500)
            .map(|_| {
                let v6 = next(3) == 0;
                let host = |i: u64| -> IpAddr {
                    if v6 {
                        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16).into()
                    } else {
                        Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8).into()
                    }
                };
                let (src, dst) = (host(next(200)), host(1000 + next(5)));
                let orig = match next(5) {
                    0 | 1 => Tuple::tcp(
                        std::net::SocketAddr::new(src, next(4) as u16),
                        std::net::SocketAddr::new(dst, [80, 443, 65535][next(3) as usize]),
                    ),
                    2 => Tuple::udp(
                        std::net::SocketAddr::new(src, 5353),
                        std::net::SocketAddr::new(dst, next(3) as u16),
                    ),
                    3 => Tuple::icmp(src, dst, 7, 8, 0),
                    _ => Tuple::generic(proto::GRE + next(2) as u8 * 200, src, dst),
                };
                let state = states[next(states.len() as u64) as usize];
                Flow {
                    orig,
                    reply: orig.reversed(),
                    mark: [None, Some(0), Some(7), Some(u32::MAX)][next(4) as usize],
                    zone: [None, Some(1), Some(u16::MAX)][next(3) as usize],
                    protoinfo: (orig.protocol == proto::TCP && next(8) != 0).then_some(
                        ProtoInfo::Tcp(TcpInfo {
                            state,
                            ..TcpInfo::default()
                        }),
                    ),
                    ..Flow::default()
                }
            })
            .collect()
    }

    fn check(keys: &[GroupBy], flows: &[Flow]) {
        for top in [0, 1, 3, 20, usize::MAX] {
            let mut tally = GroupTally::new(keys).unwrap();
            for flow in flows {
                tally.add(flow);
            }
            let expected = reference(keys, flows, top);
            assert_eq!(tally.total(), flows.len() as u64);
            assert_eq!(
                tally.groups() as u64,
                expected.groups.len() as u64 + expected.other_groups,
                "{keys:?}"
            );
            assert_eq!(tally.finish(top), expected, "{keys:?} top {top}");
        }
    }

    #[test]
    fn every_layout_agrees_with_the_value_slices() {
        let flows = flows();
        for a in GroupBy::ALL {
            check(&[a], &flows);
            for b in GroupBy::ALL {
                check(&[a, b], &flows);
                for c in GroupBy::ALL {
                    check(&[a, b, c], &flows);
                }
            }
        }
        // Beyond 64 bits of codes, and several addresses: the general layout.
        use GroupBy::*;
        check(&[Mark, Mark, Protocol, Source], &flows);
        check(&[Mark, Mark, Source], &flows);
        check(&[Source, Mark, Mark], &flows);
        check(
            &[Mark, Zone, SourcePort, DestinationPort, Protocol, TcpState],
            &flows,
        );
        check(&GroupBy::ALL, &flows);
    }

    #[test]
    fn layouts_chosen_by_width() {
        use GroupBy::*;
        let layout = |keys: &[GroupBy]| match GroupTally::new(keys).unwrap().counts {
            Counts::Dense { .. } => "dense",
            Counts::Numbers(_) => "numbers",
            Counts::Address { .. } => "address",
            Counts::General { .. } => "general",
        };
        assert_eq!(layout(&[Protocol]), "dense");
        assert_eq!(layout(&[TcpState]), "dense");
        assert_eq!(layout(&[Protocol, DestinationPort]), "numbers");
        assert_eq!(layout(&[Mark, Mark]), "numbers");
        assert_eq!(layout(&[Source]), "address");
        assert_eq!(layout(&[Mark, Mark, Destination]), "address");
        assert_eq!(layout(&[Source, Destination]), "general");
        assert_eq!(layout(&[Mark, Mark, Protocol]), "general");
        assert!(GroupTally::new(&[]).is_err());
    }

    #[test]
    fn tcp_state_codes_order_like_the_values() {
        let states: Vec<Option<TcpState>> = std::iter::once(None)
            .chain((0..=255).map(|raw| Some(TcpState::from_raw(raw))))
            .chain((0..=255).map(|raw| Some(TcpState::Unknown(raw))))
            .collect();
        let flow = |state| -> Flow {
            Flow {
                protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
                    state,
                    ..TcpInfo::default()
                })),
                ..Flow::default()
            }
        };
        for a in &states {
            let (fa, va) = (flow(*a), GroupBy::TcpState.value(&flow(*a)));
            let code_a = GroupBy::TcpState.code(&fa);
            assert!(code_a < 1 << GroupBy::TcpState.code_bits().unwrap());
            assert_eq!(GroupBy::TcpState.value_of_code(code_a), va);
            for b in &states {
                let fb = flow(*b);
                let code_b = GroupBy::TcpState.code(&fb);
                let vb = GroupBy::TcpState.value(&fb);
                assert_eq!(code_a.cmp(&code_b), va.cmp(&vb), "{a:?} vs {b:?}");
            }
        }
    }
}

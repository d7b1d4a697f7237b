// SPDX-License-Identifier: MIT OR Apache-2.0
//! Capacity planning: what the table costs in kernel memory, and what fits a budget.
//!
//! # The model (docs/ctnetlink.md §9)
//! - **Entry**: one `struct nf_conn` from the `nf_conntrack` slab cache. Its footprint
//!   is the cache's slot size `S` (`/sys/kernel/slab/nf_conntrack/slab_size`, the
//!   `objsize` column of `/proc/slabinfo`; else `object_size` rounded up to the cache
//!   alignment, 64 B: the cache is `SLAB_HWCACHE_ALIGN`). 256 B on 6.18 x86-64.
//! - **Extensions**: as soon as an entry carries any extension (accounting,
//!   timestamp, event cache, labels, helper, NAT, ...) the kernel allocates
//!   `NF_CT_EXT_PREALLOC` = `X` = 128 B more ([`EXTENSION_PREALLOC_BYTES`]). Measured:
//!   255 B per entry with the defaults, 381 B with `acct=1, timestamp=1`.
//! - **Buckets**: the hash table is `B × 8` bytes (`hlist_nulls_head`, [`BUCKET_BYTES`]),
//!   allocated up front whatever the count, rounded up by the kernel to a multiple of
//!   [`HASH_BUCKET_ROUNDING`] (one 4 KiB page of heads).
//! - **Chain depth**: every entry sits in two chains (original and reply tuple), so the
//!   average chain holds `2 × count / B` nodes.
//!
//! All of it is unswappable kernel memory. A full namespace pins
//! `max × (S + X) + B × 8` bytes, and `nf_conntrack_max` applies *per namespace*: `n`
//! busy namespaces can hold `n × max` entries (the hash table is shared).

use std::fs;
use std::io;
use std::path::Path;

use super::{EventsMode, Key, PersistPlan, Settings, SysctlRoot};
use crate::error::{Error, Result};

/// Bytes per hash bucket (`sizeof(struct hlist_nulls_head)` on 64-bit).
pub const BUCKET_BYTES: u64 = 8;

/// Bytes of the extension area an entry gets as soon as it carries any extension
/// (`NF_CT_EXT_PREALLOC`, `nf_conntrack_extend.c`).
pub const EXTENSION_PREALLOC_BYTES: u64 = 128;

/// The kernel rounds the bucket count up to a multiple of this
/// (`nf_ct_alloc_hashtable`: `PAGE_SIZE / sizeof(struct hlist_nulls_head)`, 4 KiB pages).
pub const HASH_BUCKET_ROUNDING: u64 = 512;

/// Largest `nf_conntrack_max` the sysctl accepts (`INT_MAX`).
const MAX_ENTRIES_LIMIT: u64 = i32::MAX as u64;

/// Largest bucket count `nf_ct_alloc_hashtable` accepts (`UINT_MAX / 8`), rounded down.
const MAX_BUCKETS_LIMIT: u64 =
    (u32::MAX as u64 / BUCKET_BYTES) / HASH_BUCKET_ROUNDING * HASH_BUCKET_ROUNDING;

/// Alignment of the `nf_conntrack` cache when the kernel does not say (one cache line).
const DEFAULT_ALIGN: u64 = 64;

/// The `nf_conntrack` slab cache, host-wide (all namespaces share it).
///
/// The cache is `SLAB_TYPESAFE_BY_RCU`, which SLUB never merges with other caches,
/// so its object count is the number of conntrack entries of the whole host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct SlabInfo {
    /// `struct nf_conn` size (`/sys/kernel/slab/nf_conntrack/object_size`, 248 on 6.18).
    pub object_size: Option<u64>,
    /// Slot size including alignment (`slab_size`, or `/proc/slabinfo`'s `objsize`; 256).
    pub slot_size: Option<u64>,
    /// Cache alignment (`align`, 64).
    pub align: Option<u64>,
    /// Objects in use, host-wide (`objects`, or `/proc/slabinfo`'s `active_objs`).
    pub objects: Option<u64>,
}

impl SlabInfo {
    /// Reads `<sys>/kernel/slab/nf_conntrack/*`, completed from `<proc>/slabinfo`
    /// (root only) for what SLUB's sysfs does not show. An error when neither knows
    /// the cache (module not loaded).
    pub fn read(root: &SysctlRoot) -> Result<SlabInfo> {
        let dir = root.sys.join("kernel/slab/nf_conntrack");
        let mut info = SlabInfo {
            object_size: read_first_number(&dir.join("object_size"))?,
            slot_size: read_first_number(&dir.join("slab_size"))?,
            align: read_first_number(&dir.join("align"))?,
            objects: read_first_number(&dir.join("objects"))?,
        };
        if info.slot_size.is_none() || info.objects.is_none() {
            // /proc/slabinfo is mode 0400: without root, do with what sysfs gave.
            if let Ok(text) = fs::read_to_string(root.proc.join("slabinfo")) {
                if let Some((active, objsize)) = parse_slabinfo(&text) {
                    info.objects = info.objects.or(Some(active));
                    info.slot_size = info.slot_size.or(Some(objsize));
                }
            }
        }
        if info.slot_size.is_none() && info.object_size.is_none() {
            return Err(Error::Sysctl {
                key: "nf_conntrack slab cache",
                operation: "read",
                path: dir,
                source: io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
        Ok(info)
    }

    /// Bytes one entry occupies in the cache: the slot size, else the object size
    /// rounded up to the alignment (64 B when unknown).
    pub fn entry_bytes(&self) -> u64 {
        if let Some(slot) = self.slot_size {
            return slot;
        }
        let size = self.object_size.unwrap_or(0);
        let align = self.align.filter(|a| *a > 0).unwrap_or(DEFAULT_ALIGN);
        size.div_ceil(align) * align
    }

    /// Bytes the cache's objects occupy, host-wide (`objects × entry_bytes`, without
    /// extension areas, which live in the `kmalloc-128`/`-256` caches).
    pub fn objects_bytes(&self) -> Option<u64> {
        self.objects.map(|n| n.saturating_mul(self.entry_bytes()))
    }
}

/// `(active_objs, objsize)` of the `nf_conntrack` line of `/proc/slabinfo`
/// (`name active_objs num_objs objsize objperslab pagesperslab : ...`).
fn parse_slabinfo(text: &str) -> Option<(u64, u64)> {
    text.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        if fields.next()? != "nf_conntrack" {
            return None;
        }
        let active = fields.next()?.parse().ok()?;
        let _total: u64 = fields.next()?.parse().ok()?;
        let objsize = fields.next()?.parse().ok()?;
        Some((active, objsize))
    })
}

/// The first whitespace-separated number of a sysfs file (`objects` reads
/// `"250128 N0=250128"`); `None` if the file does not exist.
fn read_first_number(path: &Path) -> Result<Option<u64>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text.split_whitespace().next().and_then(|t| t.parse().ok())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Sysctl {
            key: "nf_conntrack slab cache",
            operation: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Bytes per entry: slot size `S` plus extension area `X` (0 or 128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemoryModel {
    /// `S`: the slab slot of one `struct nf_conn`.
    pub entry_bytes: u64,
    /// `X`: the extension area per entry (0, or [`EXTENSION_PREALLOC_BYTES`]).
    pub extension_bytes: u64,
}

impl Default for MemoryModel {
    /// 256-byte entries (6.18 x86-64), no extensions.
    fn default() -> Self {
        MemoryModel::new(256, 0)
    }
}

impl MemoryModel {
    /// An explicit model.
    pub const fn new(entry_bytes: u64, extension_bytes: u64) -> Self {
        MemoryModel {
            entry_bytes,
            extension_bytes,
        }
    }

    /// From the slab cache, with or without the 128-byte extension area.
    pub fn from_slab(slab: &SlabInfo, extensions: bool) -> Self {
        MemoryModel::new(
            slab.entry_bytes(),
            if extensions {
                EXTENSION_PREALLOC_BYTES
            } else {
                0
            },
        )
    }

    /// From the slab cache and the namespace's settings: extensions count when
    /// `acct`, `timestamp` or `events = 1` are on, or `events = 2` and
    /// `event_listener` says some process subscribes to conntrack events (then every
    /// entry created meanwhile carries the event cache). NAT, helpers and labels add
    /// the area too; pass `true` for `event_listener` to plan for the worst case.
    pub fn for_settings(slab: &SlabInfo, settings: &Settings, event_listener: bool) -> Self {
        let extensions =
            settings.extensions_on() || (event_listener && settings.events == EventsMode::Auto);
        MemoryModel::from_slab(slab, extensions)
    }

    /// `S + X`.
    pub fn per_entry_bytes(&self) -> u64 {
        self.entry_bytes.saturating_add(self.extension_bytes)
    }

    /// `entries × (S + X)`.
    pub fn entries_bytes(&self, entries: u64) -> u64 {
        entries.saturating_mul(self.per_entry_bytes())
    }

    /// `buckets × 8`.
    pub fn hash_table_bytes(buckets: u64) -> u64 {
        buckets.saturating_mul(BUCKET_BYTES)
    }

    /// The largest `nf_conntrack_max`, and its buckets, whose memory fits `budget_bytes`
    /// with an average chain depth of at most `target_chain_depth` when the table is full.
    ///
    /// With `E = S + X` bytes per entry and depth `d = 2 × max / B`, a full table
    /// pins `M = max × E + B × 8 = max × (E + 16 / d)`. So:
    ///
    /// 1. `max₀ = ⌊budget / (E + 16 / d)⌋`
    /// 2. `B = ⌈2 × max₀ / d⌉`, rounded up to a multiple of [`HASH_BUCKET_ROUNDING`]
    ///    (as the kernel would), at least 512
    /// 3. `max = ⌊(budget − 8 × B) / E⌋` (≤ `max₀`, so the depth stays ≤ `d`)
    ///
    /// and `pinned = max × E + 8 × B ≤ budget`. Clamped to the kernel's limits
    /// (`max ≤ 2³¹ − 1`, `B ≤ 2³² / 8`).
    ///
    /// Depth 2 is the kernel's own default (`max = buckets`); depth 8 (`buckets =
    /// max / 4`) is the common operator choice when raising the limit: lookups stay
    /// short and buckets cost 2 B per entry instead of 8.
    ///
    /// Example: `E = 384` (256 + 128), budget 64 MiB, depth 4 → `max₀ = 172960`,
    /// `B = 86528` (86480 rounded up), `max = 172960`, pinned exactly 64 MiB.
    pub fn recommend(&self, budget_bytes: u64, target_chain_depth: f64) -> Result<Recommendation> {
        check_depth(target_chain_depth)?;
        let per_entry = self.per_entry_bytes();
        if per_entry == 0 {
            return Err(Error::InvalidInput(
                "bytes per entry must be positive (read them with SlabInfo::read)".into(),
            ));
        }
        let cost = per_entry as f64 + 2.0 * BUCKET_BYTES as f64 / target_chain_depth;
        let max0 = ((budget_bytes as f64 / cost).floor() as u64).min(MAX_ENTRIES_LIMIT);
        let buckets = kernel_buckets((2.0 * max0 as f64 / target_chain_depth).ceil() as u64);
        let table = MemoryModel::hash_table_bytes(buckets);
        let max = (budget_bytes.saturating_sub(table) / per_entry).min(MAX_ENTRIES_LIMIT);
        if max == 0 {
            return Err(Error::InvalidInput(format!(
                "a budget of {budget_bytes} bytes does not fit one entry ({per_entry} B) \
                 plus the smallest hash table ({table} B)"
            )));
        }
        Ok(self.recommendation(max, buckets))
    }

    /// A full table of `max` entries over `buckets`.
    fn recommendation(&self, max: u64, buckets: u64) -> Recommendation {
        let table = MemoryModel::hash_table_bytes(buckets);
        Recommendation {
            max: max as u32,
            buckets: buckets as u32,
            per_entry_bytes: self.per_entry_bytes(),
            hash_table_bytes: table,
            entries_bytes: self.entries_bytes(max),
            pinned_bytes: self.entries_bytes(max).saturating_add(table),
            chain_depth: 2.0 * max as f64 / buckets as f64,
        }
    }

    /// The buckets and memory for a chosen limit: `buckets = ⌈2 × max / d⌉` rounded
    /// up to a multiple of [`HASH_BUCKET_ROUNDING`] (as the kernel would), at least
    /// `min_buckets` (pass the current bucket count to never shrink the table), and
    /// what a full table would pin. The counterpart of [`MemoryModel::recommend`]
    /// when the limit comes from demand (say, twice the peak) rather than from a
    /// budget; compare [`Recommendation::pinned_bytes`] with the budget yourself.
    ///
    /// Example: `E = 256`, `max = 524288`, depth 4, `min_buckets = 262144` →
    /// `B = 262144`, pinned `524288 × 256 + 262144 × 8` = 130 MiB.
    pub fn plan_for(
        &self,
        max: u64,
        target_chain_depth: f64,
        min_buckets: u64,
    ) -> Result<Recommendation> {
        check_depth(target_chain_depth)?;
        if max == 0 || max > MAX_ENTRIES_LIMIT {
            return Err(Error::InvalidInput(format!(
                "nf_conntrack_max must be between 1 and {MAX_ENTRIES_LIMIT}, got {max}"
            )));
        }
        let needed = ((2.0 * max as f64 / target_chain_depth).ceil() as u64).max(min_buckets);
        Ok(self.recommendation(max, kernel_buckets(needed)))
    }
}

/// Where a namespace's table stands: entries, limit, buckets and their memory.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Capacity {
    /// Bytes per entry.
    pub model: MemoryModel,
    /// `nf_conntrack_count` of the namespace.
    pub count: u64,
    /// `nf_conntrack_max`.
    pub max: u64,
    /// `nf_conntrack_buckets`.
    pub buckets: u64,
    /// Conntrack objects of the whole host (all namespaces), from the slab cache.
    pub slab_objects: Option<u64>,
}

impl Capacity {
    /// From a namespace's settings and the slab cache. The model counts the extension
    /// area when [`Settings::extensions_on`]; with `events = 2` it assumes no event
    /// listener (use [`Capacity::with_model`] and [`MemoryModel::for_settings`] otherwise).
    pub fn new(settings: &Settings, slab: &SlabInfo) -> Self {
        Capacity {
            model: MemoryModel::for_settings(slab, settings, false),
            count: settings.count.into(),
            max: settings.max.into(),
            buckets: settings.buckets.into(),
            slab_objects: slab.objects,
        }
    }

    /// The same numbers with another memory model.
    pub fn with_model(mut self, model: MemoryModel) -> Self {
        self.model = model;
        self
    }

    /// `count / max` (`None` when `max` is 0).
    pub fn usage(&self) -> Option<f64> {
        (self.max > 0).then(|| self.count as f64 / self.max as f64)
    }

    /// Average hash chain length now: `2 × count / buckets` (each entry is in two chains).
    /// Other namespaces' entries share the same table: see [`Capacity::host_chain_depth`].
    pub fn chain_depth(&self) -> f64 {
        chain_depth(self.count, self.buckets)
    }

    /// Average chain length over the host's entries (`2 × slab objects / buckets`).
    pub fn host_chain_depth(&self) -> Option<f64> {
        self.slab_objects.map(|n| chain_depth(n, self.buckets))
    }

    /// Average chain length when this namespace reaches `max`.
    pub fn chain_depth_at_max(&self) -> f64 {
        chain_depth(self.max, self.buckets)
    }

    /// The hash table: `buckets × 8` (allocated whatever the count).
    pub fn hash_table_bytes(&self) -> u64 {
        MemoryModel::hash_table_bytes(self.buckets)
    }

    /// This namespace's entries: `count × (S + X)`.
    pub fn entries_bytes(&self) -> u64 {
        self.model.entries_bytes(self.count)
    }

    /// In use now for this namespace: entries plus the hash table.
    pub fn in_use_bytes(&self) -> u64 {
        self.entries_bytes().saturating_add(self.hash_table_bytes())
    }

    /// Pinned when this namespace is full: `max × (S + X) + buckets × 8`.
    pub fn at_max_bytes(&self) -> u64 {
        self.model
            .entries_bytes(self.max)
            .saturating_add(self.hash_table_bytes())
    }

    /// [`MemoryModel::recommend`] with this model.
    pub fn recommend(&self, budget_bytes: u64, target_chain_depth: f64) -> Result<Recommendation> {
        self.model.recommend(budget_bytes, target_chain_depth)
    }
}

fn check_depth(target_chain_depth: f64) -> Result<()> {
    if target_chain_depth.is_finite() && target_chain_depth > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "target chain depth must be a positive number, got {target_chain_depth}"
        )))
    }
}

/// `needed` rounded up as `nf_ct_alloc_hashtable` does (a multiple of
/// [`HASH_BUCKET_ROUNDING`], at least one page), within the kernel's limit.
fn kernel_buckets(needed: u64) -> u64 {
    needed
        .div_ceil(HASH_BUCKET_ROUNDING)
        .max(1)
        .saturating_mul(HASH_BUCKET_ROUNDING)
        .min(MAX_BUCKETS_LIMIT)
}

fn chain_depth(entries: u64, buckets: u64) -> f64 {
    if buckets == 0 {
        return 0.0;
    }
    2.0 * entries as f64 / buckets as f64
}

/// A limit and hash size that fit a memory budget ([`MemoryModel::recommend`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Recommendation {
    /// `nf_conntrack_max` to set.
    pub max: u32,
    /// `nf_conntrack_buckets` / `hashsize` to set (a multiple of [`HASH_BUCKET_ROUNDING`]).
    pub buckets: u32,
    /// `S + X` used.
    pub per_entry_bytes: u64,
    /// `buckets × 8`, pinned as soon as the table is resized.
    pub hash_table_bytes: u64,
    /// `max × (S + X)`, pinned when the table is full.
    pub entries_bytes: u64,
    /// Unswappable kernel memory pinned by a full table: entries plus hash table
    /// (per namespace that fills up; the hash table is shared).
    pub pinned_bytes: u64,
    /// Average chain depth when full: `2 × max / buckets`.
    pub chain_depth: f64,
}

impl Recommendation {
    /// What to persist: `nf_conntrack_max` and `nf_conntrack_buckets` in the sysctl
    /// drop-in, `hashsize` in `modprobe.d` (so the table has its size from the moment the
    /// module loads; the sysctl also covers a built-in `nf_conntrack`).
    pub fn plan(&self) -> PersistPlan {
        PersistPlan::new()
            .set(Key::Max, self.max.into())
            .set(Key::Buckets, self.buckets.into())
            .set(Key::Hashsize, self.buckets.into())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_tree::TempTree;
    use super::super::Sysctl;
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn slab_from_sysfs_object_size_only() {
        let tree = TempTree::new("slab");
        tree.write("sys/kernel/slab/nf_conntrack/object_size", "248\n");
        tree.write("sys/kernel/slab/nf_conntrack/align", "64\n");
        tree.write("sys/kernel/slab/nf_conntrack/objects", "1000 N0=1000\n");
        let slab = SlabInfo::read(&tree.root()).unwrap();
        assert_eq!(slab.object_size, Some(248));
        assert_eq!(slab.slot_size, None);
        // 248 rounded up to 64: 4 × 64.
        assert_eq!(slab.entry_bytes(), 256);
        assert_eq!(slab.objects, Some(1000));
        assert_eq!(slab.objects_bytes(), Some(256_000));
    }

    #[test]
    fn slab_from_proc_slabinfo() {
        let tree = TempTree::new("slabinfo");
        tree.write(
            "proc/slabinfo",
            "slabinfo - version: 2.1\n\
             # name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n\
             nf_conntrack_expect      0      0    216   18    1 : tunables    0    0    0 : slabdata      0      0      0\n\
             nf_conntrack      250128 250192    320   16    1 : tunables    0    0    0 : slabdata  15637  15637      0\n",
        );
        let slab = SlabInfo::read(&tree.root()).unwrap();
        assert_eq!(slab.slot_size, Some(320));
        assert_eq!(slab.objects, Some(250_128));
        assert_eq!(slab.entry_bytes(), 320);
        // Nothing at all: module not loaded.
        let empty = TempTree::new("noslab");
        let err = SlabInfo::read(&empty.root()).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
    }

    #[test]
    fn plan_for_a_chosen_limit_matches_hand_computation() {
        // E = 384; max 300000, depth 4: B = ceil(600000 / 4) = 150000 → 293 × 512 = 150016;
        // pinned = 300000 × 384 + 150016 × 8 = 115200000 + 1200128 = 116400128.
        let model = MemoryModel::new(256, 128);
        let rec = model.plan_for(300_000, 4.0, 0).unwrap();
        assert_eq!((rec.max, rec.buckets), (300_000, 150_016));
        assert_eq!(rec.entries_bytes, 115_200_000);
        assert_eq!(rec.hash_table_bytes, 1_200_128);
        assert_eq!(rec.pinned_bytes, 116_400_128);
        assert!((rec.chain_depth - 600_000.0 / 150_016.0).abs() < 1e-12);
        // Never below the current buckets: 262144 stays (already a multiple of 512).
        let rec = model.plan_for(300_000, 4.0, 262_144).unwrap();
        assert_eq!(rec.buckets, 262_144);
        assert_eq!(rec.pinned_bytes, 115_200_000 + 262_144 * 8);
        // A minimum that is not a multiple of 512 is rounded up like the kernel does.
        assert_eq!(model.plan_for(1000, 2.0, 1000).unwrap().buckets, 1024);
        assert!(model.plan_for(0, 4.0, 0).is_err());
        assert!(model.plan_for(1 << 31, 4.0, 0).is_err());
        assert!(model.plan_for(1000, 0.0, 0).is_err());
        assert!(model.plan_for(1000, f64::NAN, 0).is_err());
    }

    #[test]
    fn recommendation_matches_hand_computation() {
        // Fake slab: object_size 248, align 64 → S = 256; acct on → X = 128; E = 384.
        let slab = SlabInfo {
            object_size: Some(248),
            align: Some(64),
            ..SlabInfo::default()
        };
        let model = MemoryModel::from_slab(&slab, true);
        assert_eq!(model.per_entry_bytes(), 384);
        // Budget 64 MiB = 67108864, depth 4:
        //   E + 16/d = 388; max0 = floor(67108864 / 388) = 172960 (388 × 172960 = 67108480)
        //   B = ceil(2 × 172960 / 4) = 86480 → next multiple of 512: 169 × 512 = 86528
        //   max = floor((67108864 − 8 × 86528) / 384) = floor(66416640 / 384) = 172960
        //   pinned = 172960 × 384 + 86528 × 8 = 66416640 + 692224 = 67108864
        let rec = model.recommend(64 * MIB, 4.0).unwrap();
        assert_eq!(rec.max, 172_960);
        assert_eq!(rec.buckets, 86_528);
        assert_eq!(rec.hash_table_bytes, 692_224);
        assert_eq!(rec.entries_bytes, 66_416_640);
        assert_eq!(rec.pinned_bytes, 67_108_864);
        assert!((rec.chain_depth - 2.0 * 172_960.0 / 86_528.0).abs() < 1e-12);
        assert!(rec.chain_depth <= 4.0);

        // No extensions (E = 256), budget 256 MiB, kernel-default depth 2:
        //   E + 16/2 = 264; max0 = floor(268435456 / 264) = 1016800 (264 × 1016800 = 268435200)
        //   B = 1016800 → 1986 × 512 = 1016832
        //   max = floor((268435456 − 8134656) / 256) = floor(260300800 / 256) = 1016800
        let rec = MemoryModel::from_slab(&slab, false)
            .recommend(256 * MIB, 2.0)
            .unwrap();
        assert_eq!((rec.max, rec.buckets), (1_016_800, 1_016_832));
        assert_eq!(rec.pinned_bytes, 1_016_800 * 256 + 1_016_832 * 8);
        assert!(rec.pinned_bytes <= 256 * MIB);

        let plan = rec.plan();
        assert_eq!(
            plan.values(),
            vec![
                (Key::Hashsize, 1_016_832),
                (Key::Max, 1_016_800),
                (Key::Buckets, 1_016_832),
            ]
        );
    }

    #[test]
    fn recommendation_rejects_nonsense() {
        let model = MemoryModel::new(256, 0);
        assert!(model.recommend(64 * MIB, 0.0).is_err());
        assert!(model.recommend(64 * MIB, f64::NAN).is_err());
        assert!(model.recommend(1000, 2.0).is_err());
        assert!(MemoryModel::new(0, 0).recommend(64 * MIB, 2.0).is_err());
        // Enormous budget: clamped to the kernel's limits.
        let rec = model.recommend(u64::MAX / 2, 8.0).unwrap();
        assert_eq!(u64::from(rec.max), MAX_ENTRIES_LIMIT);
        assert_eq!(u64::from(rec.buckets) % HASH_BUCKET_ROUNDING, 0);
    }

    #[test]
    fn capacity_of_a_namespace() {
        let tree = TempTree::new("capacity");
        tree.fake_kernel();
        tree.write("sys/kernel/slab/nf_conntrack/slab_size", "256\n");
        tree.write("sys/kernel/slab/nf_conntrack/object_size", "248\n");
        tree.write("sys/kernel/slab/nf_conntrack/objects", "5000 N0=5000\n");
        tree.write("proc/sys/net/netfilter/nf_conntrack_count", "131072\n");
        tree.write("proc/sys/net/netfilter/nf_conntrack_timestamp", "1\n");
        let cap = Sysctl::new().with_root(tree.root()).capacity().unwrap();
        assert_eq!(cap.model, MemoryModel::new(256, 128));
        assert_eq!(cap.usage(), Some(0.5));
        // 2 × 131072 / 262144
        assert_eq!(cap.chain_depth(), 1.0);
        assert_eq!(cap.chain_depth_at_max(), 2.0);
        assert_eq!(cap.host_chain_depth(), Some(2.0 * 5000.0 / 262_144.0));
        assert_eq!(cap.hash_table_bytes(), 2 * MIB);
        assert_eq!(cap.entries_bytes(), 131_072 * 384);
        assert_eq!(cap.in_use_bytes(), 48 * MIB + 2 * MIB);
        assert_eq!(cap.at_max_bytes(), 96 * MIB + 2 * MIB);

        let settings = Sysctl::new().with_root(tree.root()).settings().unwrap();
        let slab = SlabInfo::read(&tree.root()).unwrap();
        tree.write("proc/sys/net/netfilter/nf_conntrack_timestamp", "0\n");
        let quiet = Sysctl::new().with_root(tree.root()).settings().unwrap();
        assert_eq!(
            MemoryModel::for_settings(&slab, &quiet, false).extension_bytes,
            0
        );
        assert_eq!(
            MemoryModel::for_settings(&slab, &quiet, true).extension_bytes,
            128,
            "events=2 with a listener"
        );
        assert_eq!(
            MemoryModel::for_settings(&slab, &settings, false).extension_bytes,
            128
        );
    }
}

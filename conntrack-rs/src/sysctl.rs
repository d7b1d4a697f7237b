// SPDX-License-Identifier: MIT OR Apache-2.0
//! Conntrack settings: typed read and write of the `net.netfilter` sysctls and the
//! `hashsize` module parameter, persistence that survives reboots, and capacity
//! planning (the limit and buckets that fit a memory budget).
//!
//! # What it covers
//! - [`Sysctl`]: read and write one setting ([`Key`]) or all of them ([`Settings`],
//!   [`Timeouts`]) in the current network namespace or another one.
//! - [`PersistPlan`]: make values survive a reboot: one drop-in under `sysctl.d`,
//!   plus `modules-load.d` and `modprobe.d` entries, written atomically and idempotently,
//!   reporting lines elsewhere that would override it ([`PersistReport`]).
//! - [`Capacity`], [`MemoryModel`], [`Recommendation`]: memory per entry, hash chain
//!   depth, and the `nf_conntrack_max`/buckets that fit a memory budget.
//!
//! # Contract
//! - **Scope.** Each [`Key`] knows its [`Scope`]. Global keys (`nf_conntrack_max`,
//!   `nf_conntrack_buckets`, `nf_conntrack_expect_max`, `hashsize`) have one value for the
//!   host and can be written only from the initial network namespace; everything else
//!   is per namespace. Writing a global key elsewhere returns
//!   [`Error::SysctlGlobalOnly`] naming the rule, with the kernel's real errno.
//! - **Real errors.** Values are written by opening and writing the file itself, and
//!   every failure carries the kernel's errno. (`sysctl -w` on a read-only key in a child
//!   namespace prints a stale "Invalid argument" and exits 0: docs/ctnetlink.md §8.1.)
//! - **Namespaces.** `/proc/sys/net` shows the network namespace of the *thread* that
//!   opens the file (verified: a helper thread that `setns`'d into another namespace
//!   reads that namespace's values while the process's other threads read their own).
//!   For [`Netns::Named`] and friends, every access runs on a short helper thread
//!   inside that namespace ([`NetnsFile::run`](crate::netns::NetnsFile::run)); the
//!   calling thread never moves. [`Netns::Current`] reads in the calling thread.
//! - **Injectable root.** [`SysctlRoot`] names the `/proc`, `/sys`, `/etc`, `/run`,
//!   `/usr` and `/lib` to use, so tests run against a temporary tree.
//!
//! ```no_run
//! use conntrack::sysctl::{Key, Sysctl, Timeout};
//! use conntrack::Netns;
//! use std::time::Duration;
//! # fn main() -> conntrack::Result<()> {
//! let host = Sysctl::new();
//! println!("limit {} ({})", host.max()?, Key::Max.rule());
//!
//! let blue = Sysctl::in_netns(Netns::named("blue"));
//! blue.set_timeout(Timeout::TcpEstablished, Duration::from_secs(3600))?;
//! let settings = blue.settings()?;
//! println!("{} of {} entries", settings.count, settings.max);
//! # Ok(()) }
//! ```

mod capacity;
mod key;
mod persist;
mod timeouts;

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use self::capacity::{
    Capacity, MemoryModel, Recommendation, SlabInfo, BUCKET_BYTES, EXTENSION_PREALLOC_BYTES,
    HASH_BUCKET_ROUNDING,
};
pub use self::key::{EventsMode, Key, Scope, Timeout};
pub use self::persist::{
    FileOutcome, OverridingLine, PersistPlan, PersistReport, PersistedFile, DROP_IN_NAME,
    MODPROBE_NAME, MODULES_LOAD_NAME,
};
pub use self::timeouts::Timeouts;
/// Moved to the crate root (they are about the kernel counters, not sysctls);
/// kept here so that existing paths keep working.
pub use crate::counters::{Counter, KernelStatsDelta};

use crate::error::{Error, Result};
use crate::netns::Netns;

/// Where the kernel's and the system's trees are: `/proc`, `/sys`, `/etc`, and the
/// other `sysctl.d` locations (`/run`, `/usr`, `/lib`).
///
/// [`SysctlRoot::system`] (the default) is the real system; [`SysctlRoot::under`]
/// puts every tree below one directory (`<dir>/proc`, `<dir>/sys`, ...) for tests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SysctlRoot {
    /// `/proc`: sysctls under `<proc>/sys/net/netfilter`, `<proc>/slabinfo`.
    pub proc: PathBuf,
    /// `/sys`: `<sys>/module/nf_conntrack/parameters/hashsize`, `<sys>/kernel/slab`.
    pub sys: PathBuf,
    /// `/etc`: `sysctl.d`, `sysctl.conf`, `modules-load.d`, `modprobe.d`.
    pub etc: PathBuf,
    /// `/run`: `<run>/sysctl.d` (runtime drop-ins, read when checking for overrides).
    pub run: PathBuf,
    /// `/usr`: `<usr>/lib/sysctl.d`, `<usr>/local/lib/sysctl.d` (vendor drop-ins).
    pub usr: PathBuf,
    /// `/lib`: `<lib>/sysctl.d` (vendor drop-ins on systems without merged `/usr`).
    pub lib: PathBuf,
}

impl Default for SysctlRoot {
    fn default() -> Self {
        SysctlRoot::system()
    }
}

impl SysctlRoot {
    /// The real system: `/proc`, `/sys`, `/etc`, `/run`, `/usr`, `/lib`.
    pub fn system() -> Self {
        SysctlRoot::under("/")
    }

    /// Every tree below `prefix` (`<prefix>/proc`, `<prefix>/sys`, `<prefix>/etc`, ...).
    pub fn under(prefix: impl AsRef<Path>) -> Self {
        let prefix = prefix.as_ref();
        SysctlRoot {
            proc: prefix.join("proc"),
            sys: prefix.join("sys"),
            etc: prefix.join("etc"),
            run: prefix.join("run"),
            usr: prefix.join("usr"),
            lib: prefix.join("lib"),
        }
    }

    /// The `sysctl.d` directories in the precedence order of `systemd-sysctl` and
    /// `sysctl --system`: a file name found in an earlier directory masks the same
    /// name in later ones.
    pub fn sysctl_dirs(&self) -> [PathBuf; 5] {
        [
            self.etc.join("sysctl.d"),
            self.run.join("sysctl.d"),
            self.usr.join("local/lib/sysctl.d"),
            self.usr.join("lib/sysctl.d"),
            self.lib.join("sysctl.d"),
        ]
    }
}

/// Reads and writes conntrack settings of one network namespace.
///
/// Cheap to create and clone; every call opens the files afresh (values can change
/// at any time). Calls on a named namespace each take one helper thread; use
/// [`Sysctl::settings`] or [`Sysctl::read_keys`] to read many values in one hop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sysctl {
    root: SysctlRoot,
    netns: Netns,
}

impl Sysctl {
    /// The current network namespace (the calling thread's), real system root.
    pub fn new() -> Self {
        Sysctl::default()
    }

    /// Another network namespace, real system root.
    pub fn in_netns(netns: Netns) -> Self {
        Sysctl {
            root: SysctlRoot::system(),
            netns,
        }
    }

    /// The same namespace with another root (tests use a temporary tree).
    pub fn with_root(mut self, root: SysctlRoot) -> Self {
        self.root = root;
        self
    }

    /// The same root with another namespace.
    pub fn with_netns(mut self, netns: Netns) -> Self {
        self.netns = netns;
        self
    }

    /// The root in use.
    pub fn root(&self) -> &SysctlRoot {
        &self.root
    }

    /// The namespace in use.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Runs `f` inside the namespace: directly for [`Netns::Current`], else on a
    /// helper thread that entered it.
    fn inside<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&SysctlRoot) -> Result<T> + Send,
        T: Send,
    {
        match self.netns.open()? {
            None => f(&self.root),
            Some(file) => file.run(|| f(&self.root))?,
        }
    }

    /// Reads one value. A missing file is an error ([`Error::Sysctl`] with `ENOENT`:
    /// module not loaded, or a key this kernel lacks); see [`Sysctl::read_optional`].
    pub fn read(&self, key: Key) -> Result<u64> {
        self.inside(|root| read_required(root, key))
    }

    /// Reads one value; `None` when the kernel has no such file.
    pub fn read_optional(&self, key: Key) -> Result<Option<u64>> {
        self.inside(|root| read_value(root, key))
    }

    /// Reads many values in one namespace hop, in order; `None` for missing files.
    pub fn read_keys(&self, keys: &[Key]) -> Result<Vec<Option<u64>>> {
        self.inside(|root| keys.iter().map(|key| read_value(root, *key)).collect())
    }

    /// Writes one value by writing the file itself, and returns the kernel's real
    /// error: [`Error::SysctlGlobalOnly`] for a global key outside the initial
    /// namespace (`EACCES`, or `EOPNOTSUPP` for `hashsize`), [`Error::Sysctl`]
    /// otherwise (`EINVAL` for an out-of-range value, `EACCES` for a read-only key
    /// or without root, `ENOENT` when the module is not loaded).
    ///
    /// Writing `nf_conntrack_buckets` or `hashsize` resizes the hash table
    /// (rehashing every entry, under a lock); it does not change `nf_conntrack_max`.
    pub fn write(&self, key: Key, value: u64) -> Result<()> {
        self.inside(|root| write_value(root, key, value))
    }

    /// Writes several values in one namespace hop, in order, stopping at the first error.
    pub fn write_keys(&self, values: &[(Key, u64)]) -> Result<()> {
        self.inside(|root| {
            values
                .iter()
                .try_for_each(|(key, value)| write_value(root, *key, *value))
        })
    }

    /// Writes what a [`PersistPlan`] persists, now (in the order of
    /// [`PersistPlan::values`]: `hashsize` first, then the sysctls).
    pub fn apply(&self, plan: &PersistPlan) -> Result<()> {
        self.write_keys(&plan.values())
    }

    /// True when the namespace is the initial one (where global keys are writable):
    /// the kernel registers the `net.nf_conntrack_max` alias
    /// (`<proc>/sys/net/nf_conntrack_max`) only there. Needs `nf_conntrack` loaded.
    pub fn is_initial_namespace(&self) -> Result<bool> {
        self.inside(initial_namespace)
    }

    /// Every setting of the namespace in one hop.
    ///
    /// `hashsize` is `None` without root (the parameter is mode 0600), as are keys the
    /// kernel lacks; the other fields exist on every kernel with conntrack and their
    /// absence is an error (module not loaded).
    pub fn settings(&self) -> Result<Settings> {
        self.inside(|root| {
            let u32_of = |key: Key| -> Result<u32> { to_u32(root, key, read_required(root, key)?) };
            let opt_u32 = |key: Key| -> Result<Option<u32>> {
                read_value(root, key)?
                    .map(|v| to_u32(root, key, v))
                    .transpose()
            };
            let flag = |key: Key| -> Result<bool> { Ok(read_required(root, key)? != 0) };
            let hashsize = match read_value(root, Key::Hashsize) {
                Ok(value) => value.map(|v| to_u32(root, Key::Hashsize, v)).transpose()?,
                Err(e) if e.is_permission_denied() => None,
                Err(e) => return Err(e),
            };
            Ok(Settings {
                max: u32_of(Key::Max)?,
                count: u32_of(Key::Count)?,
                buckets: u32_of(Key::Buckets)?,
                hashsize,
                expect_max: opt_u32(Key::ExpectMax)?,
                acct: flag(Key::Acct)?,
                timestamp: flag(Key::Timestamp)?,
                events: EventsMode::from_raw(read_required(root, Key::Events)?),
                checksum: read_value(root, Key::Checksum)?.map(|v| v != 0),
                log_invalid: opt_u32(Key::LogInvalid)?,
                tcp_be_liberal: flag(Key::TcpBeLiberal)?,
                tcp_loose: flag(Key::TcpLoose)?,
                tcp_ignore_invalid_rst: read_value(root, Key::TcpIgnoreInvalidRst)?.map(|v| v != 0),
                tcp_max_retrans: opt_u32(Key::TcpMaxRetrans)?,
                timeouts: read_timeouts(root)?,
                initial_namespace: initial_namespace(root)?,
            })
        })
    }

    /// Every per-protocol timeout in one hop. Timeouts the kernel lacks are `None`;
    /// if it has none at all (module not loaded) this is an error.
    pub fn timeouts(&self) -> Result<Timeouts> {
        self.inside(read_timeouts)
    }

    /// One timeout (`ENOENT` error if the kernel lacks it).
    pub fn timeout(&self, timeout: Timeout) -> Result<Duration> {
        self.read(Key::Timeout(timeout)).map(Duration::from_secs)
    }

    /// Sets one timeout (whole seconds; the fraction is dropped). Per-namespace.
    pub fn set_timeout(&self, timeout: Timeout, value: Duration) -> Result<()> {
        self.write(Key::Timeout(timeout), value.as_secs())
    }

    fn read_u32(&self, key: Key) -> Result<u32> {
        self.inside(|root| to_u32(root, key, read_required(root, key)?))
    }

    /// `nf_conntrack_max`: entries each namespace may hold (global value).
    pub fn max(&self) -> Result<u32> {
        self.read_u32(Key::Max)
    }

    /// Sets `nf_conntrack_max`. Global: works only from the initial namespace.
    pub fn set_max(&self, value: u32) -> Result<()> {
        self.write(Key::Max, value.into())
    }

    /// `nf_conntrack_count`: entries in this namespace.
    pub fn count(&self) -> Result<u32> {
        self.read_u32(Key::Count)
    }

    /// `nf_conntrack_buckets`: hash table size (global value).
    pub fn buckets(&self) -> Result<u32> {
        self.read_u32(Key::Buckets)
    }

    /// Sets `nf_conntrack_buckets` (resizes the table; the kernel rounds up to a
    /// multiple of [`HASH_BUCKET_ROUNDING`]). Global: initial namespace only.
    pub fn set_buckets(&self, value: u32) -> Result<()> {
        self.write(Key::Buckets, value.into())
    }

    /// The `hashsize` module parameter (root only); equals `nf_conntrack_buckets`.
    pub fn hashsize(&self) -> Result<u32> {
        self.read_u32(Key::Hashsize)
    }

    /// Sets the `hashsize` module parameter (resizes the table). Fails with
    /// [`Error::SysctlGlobalOnly`] (`EOPNOTSUPP`) outside the initial namespace.
    pub fn set_hashsize(&self, value: u32) -> Result<()> {
        self.write(Key::Hashsize, value.into())
    }

    /// `nf_conntrack_acct`: packet/byte counters on new entries.
    pub fn acct(&self) -> Result<bool> {
        self.read(Key::Acct).map(|v| v != 0)
    }

    /// Sets `nf_conntrack_acct` (affects entries created afterwards). Per-namespace.
    pub fn set_acct(&self, on: bool) -> Result<()> {
        self.write(Key::Acct, on.into())
    }

    /// `nf_conntrack_timestamp`: start/stop timestamps on new entries.
    pub fn timestamp(&self) -> Result<bool> {
        self.read(Key::Timestamp).map(|v| v != 0)
    }

    /// Sets `nf_conntrack_timestamp` (affects entries created afterwards). Per-namespace.
    pub fn set_timestamp(&self, on: bool) -> Result<()> {
        self.write(Key::Timestamp, on.into())
    }

    /// `nf_conntrack_events`.
    pub fn events(&self) -> Result<EventsMode> {
        self.read(Key::Events).map(EventsMode::from_raw)
    }

    /// Sets `nf_conntrack_events`. Per-namespace.
    pub fn set_events(&self, mode: EventsMode) -> Result<()> {
        self.write(Key::Events, mode.raw())
    }

    /// `nf_conntrack_tcp_be_liberal`.
    pub fn tcp_be_liberal(&self) -> Result<bool> {
        self.read(Key::TcpBeLiberal).map(|v| v != 0)
    }

    /// Sets `nf_conntrack_tcp_be_liberal`. Per-namespace.
    pub fn set_tcp_be_liberal(&self, on: bool) -> Result<()> {
        self.write(Key::TcpBeLiberal, on.into())
    }

    /// `nf_conntrack_tcp_loose`.
    pub fn tcp_loose(&self) -> Result<bool> {
        self.read(Key::TcpLoose).map(|v| v != 0)
    }

    /// Sets `nf_conntrack_tcp_loose`. Per-namespace.
    pub fn set_tcp_loose(&self, on: bool) -> Result<()> {
        self.write(Key::TcpLoose, on.into())
    }

    /// The `nf_conntrack` slab cache (host-wide): object size and objects in use.
    pub fn slab(&self) -> Result<SlabInfo> {
        SlabInfo::read(&self.root)
    }

    /// Settings, slab and count combined for capacity planning ([`Capacity`]).
    pub fn capacity(&self) -> Result<Capacity> {
        let settings = self.settings()?;
        let slab = self.slab()?;
        Ok(Capacity::new(&settings, &slab))
    }
}

/// Every conntrack setting of one namespace, read in one hop ([`Sysctl::settings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// `nf_conntrack_max` (global).
    pub max: u32,
    /// `nf_conntrack_count` (this namespace).
    pub count: u32,
    /// `nf_conntrack_buckets` (global).
    pub buckets: u32,
    /// `hashsize` module parameter; `None` without root.
    pub hashsize: Option<u32>,
    /// `nf_conntrack_expect_max` (global).
    pub expect_max: Option<u32>,
    /// `nf_conntrack_acct`.
    pub acct: bool,
    /// `nf_conntrack_timestamp`.
    pub timestamp: bool,
    /// `nf_conntrack_events`.
    pub events: EventsMode,
    /// `nf_conntrack_checksum`.
    pub checksum: Option<bool>,
    /// `nf_conntrack_log_invalid`.
    pub log_invalid: Option<u32>,
    /// `nf_conntrack_tcp_be_liberal`.
    pub tcp_be_liberal: bool,
    /// `nf_conntrack_tcp_loose`.
    pub tcp_loose: bool,
    /// `nf_conntrack_tcp_ignore_invalid_rst` (5.14+).
    pub tcp_ignore_invalid_rst: Option<bool>,
    /// `nf_conntrack_tcp_max_retrans`.
    pub tcp_max_retrans: Option<u32>,
    /// Every per-protocol timeout.
    pub timeouts: Timeouts,
    /// Whether this is the initial namespace (global keys writable here).
    pub initial_namespace: bool,
}

impl Settings {
    /// The value of any key, as the file shows it (`None` when not read or absent).
    pub fn get(&self, key: Key) -> Option<u64> {
        match key {
            Key::Max => Some(self.max.into()),
            Key::Count => Some(self.count.into()),
            Key::Buckets => Some(self.buckets.into()),
            Key::ExpectMax => self.expect_max.map(u64::from),
            Key::Hashsize => self.hashsize.map(u64::from),
            Key::Acct => Some(self.acct.into()),
            Key::Timestamp => Some(self.timestamp.into()),
            Key::Events => Some(self.events.raw()),
            Key::Checksum => self.checksum.map(u64::from),
            Key::LogInvalid => self.log_invalid.map(u64::from),
            Key::TcpBeLiberal => Some(self.tcp_be_liberal.into()),
            Key::TcpLoose => Some(self.tcp_loose.into()),
            Key::TcpIgnoreInvalidRst => self.tcp_ignore_invalid_rst.map(u64::from),
            Key::TcpMaxRetrans => self.tcp_max_retrans.map(u64::from),
            Key::Timeout(timeout) => self.timeouts.seconds(timeout).map(u64::from),
        }
    }

    /// Fill ratio `count / max` (`None` when `max` is 0).
    pub fn usage(&self) -> Option<f64> {
        (self.max > 0).then(|| f64::from(self.count) / f64::from(self.max))
    }

    /// True when new entries carry the 128-byte extension area for certain:
    /// `acct`, `timestamp` or `events = 1`. With `events = 2` (the default) they do
    /// only while an event listener exists; see [`MemoryModel::for_settings`].
    pub fn extensions_on(&self) -> bool {
        self.acct || self.timestamp || self.events == EventsMode::On
    }
}

/// `Some(value)`, `None` if the file does not exist.
fn read_value(root: &SysctlRoot, key: Key) -> Result<Option<u64>> {
    let path = key.path(root);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Sysctl {
                key: key.name(),
                operation: "read",
                path,
                source,
            })
        }
    };
    let trimmed = text.trim();
    match trimmed.parse::<u64>() {
        Ok(value) => Ok(Some(value)),
        Err(_) => Err(Error::SysctlValue {
            key: key.name(),
            path,
            content: trimmed.chars().take(64).collect(),
            expected: "an unsigned integer",
        }),
    }
}

fn read_required(root: &SysctlRoot, key: Key) -> Result<u64> {
    read_value(root, key)?.ok_or_else(|| Error::Sysctl {
        key: key.name(),
        operation: "read",
        path: key.path(root),
        source: io::Error::from_raw_os_error(libc::ENOENT),
    })
}

fn to_u32(root: &SysctlRoot, key: Key, value: u64) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::SysctlValue {
        key: key.name(),
        path: key.path(root),
        content: value.to_string(),
        expected: "a number below 2^32",
    })
}

fn read_timeouts(root: &SysctlRoot) -> Result<Timeouts> {
    let mut timeouts = Timeouts::none();
    let mut found = false;
    for timeout in Timeout::ALL {
        let key = Key::Timeout(*timeout);
        let value = read_value(root, key)?
            .map(|v| to_u32(root, key, v))
            .transpose()?;
        found |= value.is_some();
        timeouts.set_seconds(*timeout, value);
    }
    if !found {
        // No timeout at all: conntrack is not loaded in this kernel.
        read_required(root, Key::Timeout(Timeout::Generic))?;
    }
    Ok(timeouts)
}

fn initial_namespace(root: &SysctlRoot) -> Result<bool> {
    // Fails with ENOENT (module not loaded) when there is no netfilter directory.
    read_required(root, Key::Max)?;
    Ok(root.proc.join("sys/net/nf_conntrack_max").exists())
}

fn write_value(root: &SysctlRoot, key: Key, value: u64) -> Result<()> {
    let path = key.path(root);
    // O_TRUNC as a shell's `>` does: meaningless to procfs/sysfs, right for a test tree.
    // No O_CREAT: a missing file must stay ENOENT (module not loaded).
    let result = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut file| file.write_all(format!("{value}\n").as_bytes()));
    match result {
        Ok(()) => Ok(()),
        Err(source) => Err(write_error(key, path, source)),
    }
}

/// Names the rule when the kernel refused a global key outside the initial namespace.
fn write_error(key: Key, path: PathBuf, source: io::Error) -> Error {
    let errno = source.raw_os_error();
    let global_refused = key.scope() == Scope::Global
        && match errno {
            // hashsize: nf_conntrack_set_hashsize() refuses non-init_net writers.
            Some(libc::EOPNOTSUPP) => key == Key::Hashsize,
            // Global sysctls are 0444 outside init_net, even for root; a 0644 file
            // refusing us is a privilege problem instead.
            Some(libc::EACCES) | Some(libc::EPERM) => fs::metadata(&path)
                .map(|m| m.permissions().mode() & 0o222 == 0)
                .unwrap_or(false),
            _ => false,
        };
    if global_refused {
        Error::SysctlGlobalOnly {
            key: key.name(),
            path,
            source,
        }
    } else {
        Error::Sysctl {
            key: key.name(),
            operation: "write",
            path,
            source,
        }
    }
}

/// Temporary directories for unit tests (no `tempfile` dependency).
#[cfg(test)]
pub(crate) mod test_tree {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    static NEXT: AtomicU32 = AtomicU32::new(0);

    /// A directory under the system temp dir, removed on drop.
    pub struct TempTree {
        pub path: PathBuf,
    }

    impl TempTree {
        pub fn new(tag: &str) -> TempTree {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = std::env::temp_dir().join(format!(
                "conntrack-rs-{tag}-{}-{}-{nanos}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempTree { path }
        }

        pub fn root(&self) -> super::SysctlRoot {
            super::SysctlRoot::under(&self.path)
        }

        /// Writes `content` to `relative`, creating parent directories.
        pub fn write(&self, relative: impl AsRef<Path>, content: &str) -> PathBuf {
            let path = self.path.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
            path
        }

        pub fn read(&self, relative: impl AsRef<Path>) -> String {
            std::fs::read_to_string(self.path.join(relative)).unwrap()
        }

        /// A fake `/proc/sys/net/netfilter` with the 6.18 defaults, `max`/`buckets`
        /// 262144 and `count` 1000, as the initial namespace.
        pub fn fake_kernel(&self) {
            for key in super::Key::all() {
                let value = match key {
                    super::Key::Max | super::Key::Buckets | super::Key::Hashsize => 262_144,
                    super::Key::ExpectMax => 4096,
                    super::Key::Count => 1000,
                    other => other.default_value().unwrap(),
                };
                let path = key.path(&self.root());
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, format!("{value}\n")).unwrap();
            }
            self.write("proc/sys/net/nf_conntrack_max", "262144\n");
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_tree::TempTree;
    use super::*;

    #[test]
    fn reads_typed_values_from_the_tree() {
        let tree = TempTree::new("read");
        tree.fake_kernel();
        let sysctl = Sysctl::new().with_root(tree.root());
        assert_eq!(sysctl.max().unwrap(), 262_144);
        assert_eq!(sysctl.count().unwrap(), 1000);
        assert_eq!(sysctl.buckets().unwrap(), 262_144);
        assert_eq!(sysctl.hashsize().unwrap(), 262_144);
        assert!(!sysctl.acct().unwrap());
        assert_eq!(sysctl.events().unwrap(), EventsMode::Auto);
        assert!(sysctl.tcp_loose().unwrap());
        assert_eq!(
            sysctl.timeout(Timeout::TcpEstablished).unwrap(),
            Duration::from_secs(432_000)
        );
        assert!(sysctl.is_initial_namespace().unwrap());
        let settings = sysctl.settings().unwrap();
        assert_eq!(settings.timeouts, Timeouts::kernel_defaults());
        assert!(settings.initial_namespace);
        assert_eq!(settings.usage(), Some(1000.0 / 262_144.0));
        for key in Key::all() {
            assert_eq!(settings.get(key), Some(sysctl.read(key).unwrap()), "{key}");
        }
        assert_eq!(
            sysctl.read_keys(&[Key::Max, Key::Count]).unwrap(),
            vec![Some(262_144), Some(1000)]
        );
    }

    #[test]
    fn missing_and_malformed_values() {
        let tree = TempTree::new("missing");
        tree.fake_kernel();
        let root = tree.root();
        std::fs::remove_file(Key::TcpIgnoreInvalidRst.path(&root)).unwrap();
        std::fs::remove_file(Key::Timeout(Timeout::SctpHeartbeatSent).path(&root)).unwrap();
        std::fs::remove_file(root.proc.join("sys/net/nf_conntrack_max")).unwrap();
        let sysctl = Sysctl::new().with_root(root.clone());
        let settings = sysctl.settings().unwrap();
        assert_eq!(settings.tcp_ignore_invalid_rst, None);
        assert_eq!(settings.timeouts.get(Timeout::SctpHeartbeatSent), None);
        assert!(!settings.initial_namespace, "no alias: a child namespace");
        assert_eq!(
            sysctl.read_optional(Key::TcpIgnoreInvalidRst).unwrap(),
            None
        );
        let err = sysctl.read(Key::TcpIgnoreInvalidRst).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
        assert!(err.to_string().contains("modprobe nf_conntrack"), "{err}");

        tree.write("proc/sys/net/netfilter/nf_conntrack_max", "lots\n");
        let err = sysctl.max().unwrap_err();
        assert!(matches!(err, Error::SysctlValue { .. }), "{err}");
        assert!(err.to_string().contains("\"lots\""), "{err}");
        tree.write("proc/sys/net/netfilter/nf_conntrack_max", "4294967296\n");
        assert!(matches!(
            sysctl.max().unwrap_err(),
            Error::SysctlValue { .. }
        ));

        // Module not loaded: no netfilter directory at all.
        std::fs::remove_dir_all(root.proc.join("sys/net/netfilter")).unwrap();
        let err = sysctl.timeouts().unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
        assert!(sysctl.settings().is_err());
    }

    #[test]
    fn writes_go_to_the_file() {
        let tree = TempTree::new("write");
        tree.fake_kernel();
        let sysctl = Sysctl::new().with_root(tree.root());
        sysctl.set_max(1_048_576).unwrap();
        sysctl.set_acct(true).unwrap();
        sysctl.set_events(EventsMode::On).unwrap();
        sysctl
            .set_timeout(Timeout::TcpEstablished, Duration::from_millis(3_600_900))
            .unwrap();
        sysctl.set_hashsize(131_072).unwrap();
        assert_eq!(
            tree.read("proc/sys/net/netfilter/nf_conntrack_max"),
            "1048576\n"
        );
        assert_eq!(tree.read("proc/sys/net/netfilter/nf_conntrack_acct"), "1\n");
        assert_eq!(
            tree.read("proc/sys/net/netfilter/nf_conntrack_events"),
            "1\n"
        );
        assert_eq!(
            tree.read("proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established"),
            "3600\n"
        );
        assert_eq!(
            tree.read("sys/module/nf_conntrack/parameters/hashsize"),
            "131072\n"
        );
        assert_eq!(sysctl.max().unwrap(), 1_048_576);
        assert!(sysctl.acct().unwrap());
    }

    #[test]
    fn write_errors_name_the_rule() {
        let tree = TempTree::new("readonly");
        tree.fake_kernel();
        let root = tree.root();
        let eacces = || io::Error::from_raw_os_error(libc::EACCES);
        // A child namespace shows the global keys as 0444 and refuses even root with
        // EACCES. (Root ignores modes on ordinary files, so the refusal is simulated.)
        let max = Key::Max.path(&root);
        std::fs::set_permissions(&max, std::fs::Permissions::from_mode(0o444)).unwrap();
        let err = write_error(Key::Max, max.clone(), eacces());
        assert!(matches!(err, Error::SysctlGlobalOnly { .. }), "{err}");
        assert_eq!(err.errno(), Some(libc::EACCES));
        assert!(err.to_string().starts_with(
            "nf_conntrack_max is global: writable only from the initial network namespace"
        ));
        // The same key writable (0644) but refused: a privilege problem, not the rule.
        std::fs::set_permissions(&max, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = write_error(Key::Max, max, eacces());
        assert!(matches!(err, Error::Sysctl { .. }), "{err}");
        assert!(err.to_string().contains("needs root"), "{err}");
        // hashsize outside init_net: EOPNOTSUPP.
        let err = write_error(
            Key::Hashsize,
            Key::Hashsize.path(&root),
            io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        );
        assert!(
            matches!(
                err,
                Error::SysctlGlobalOnly {
                    key: "hashsize",
                    ..
                }
            ),
            "{err}"
        );
        // A per-namespace key is never "global only".
        let acct = Key::Acct.path(&root);
        std::fs::set_permissions(&acct, std::fs::Permissions::from_mode(0o444)).unwrap();
        assert!(matches!(
            write_error(Key::Acct, acct, eacces()),
            Error::Sysctl { .. }
        ));
        // Missing file: the module is not loaded.
        let sysctl = Sysctl::new().with_root(root.clone());
        std::fs::remove_file(Key::Timestamp.path(&root)).unwrap();
        let err = sysctl.set_timestamp(true).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Sysctl {
                    operation: "write",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.errno(), Some(libc::ENOENT));
    }

    #[test]
    fn error_messages() {
        let global = Error::SysctlGlobalOnly {
            key: "hashsize",
            path: PathBuf::from("/sys/module/nf_conntrack/parameters/hashsize"),
            source: io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        };
        assert_eq!(global.errno(), Some(libc::EOPNOTSUPP));
        assert!(global
            .to_string()
            .starts_with("hashsize is global: writable only from the initial network namespace"));
        let count = Error::Sysctl {
            key: "nf_conntrack_count",
            operation: "write",
            path: PathBuf::from("/proc/sys/net/netfilter/nf_conntrack_count"),
            source: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert!(count.is_permission_denied());
        assert!(count.to_string().contains("read-only"), "{count}");
        let range = Error::Sysctl {
            key: "nf_conntrack_events",
            operation: "write",
            path: PathBuf::from("/proc/sys/net/netfilter/nf_conntrack_events"),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert!(range.to_string().contains("out of range"), "{range}");
    }
}

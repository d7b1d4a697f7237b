// SPDX-License-Identifier: MIT OR Apache-2.0
//! Network namespaces: naming one, and running code inside one without moving
//! the calling thread.
//!
//! A netlink socket belongs for good to the namespace of the thread that
//! created it (docs/ctnetlink.md §8.2). [`NetnsFile::run`] therefore spawns a short
//! helper thread, moves *that* thread into the namespace with `setns(2)`, runs
//! the closure there and lets the thread end: the caller's thread never changes
//! namespace, even if the closure panics.
//!
//! [`list_all`] finds every network namespace of the host that can be reached
//! by a path — the named ones under `/run/netns` and those of running
//! processes (`/proc/PID/ns/net`) — once each, so that one monitoring process
//! can cover them all.

#![allow(unsafe_code)] // setns(2) has no safe wrapper in std

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where the named namespaces of `ip netns` live.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// A network namespace to open a handle in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Netns {
    /// The namespace of the calling thread.
    #[default]
    Current,
    /// A namespace created by `ip netns add NAME` (`/run/netns/NAME`).
    Named(String),
    /// Any namespace file (`/proc/PID/ns/net`, a bind mount, ...).
    Path(PathBuf),
    /// The namespace of a process (`/proc/PID/ns/net`).
    Pid(u32),
}

/// How every front end reads a namespace argument (`--netns`, Python's
/// `netns=`): an absolute path (`/proc/1234/ns/net`, a bind mount) is a
/// namespace file, a decimal number a pid, `current` (or nothing) the calling
/// thread's namespace, anything else an `ip netns` name, checked as such (no
/// `/`, not `.` or `..`). The inverse of [`Netns::argument`].
impl std::str::FromStr for Netns {
    type Err = Error;

    fn from_str(text: &str) -> Result<Netns> {
        let netns = if text.is_empty() || text == "current" {
            Netns::Current
        } else if text.starts_with('/') {
            Netns::Path(PathBuf::from(text))
        } else if text.bytes().all(|b| b.is_ascii_digit()) {
            Netns::Pid(text.parse().map_err(|_| {
                Error::InvalidInput(format!("{text:?} is not a process id (1-4294967295)"))
            })?)
        } else {
            Netns::named(text)
        };
        // A name is checked where it enters, not when it is first opened.
        netns.path()?;
        Ok(netns)
    }
}

impl Netns {
    /// The text that [`FromStr`](std::str::FromStr) reads back as this
    /// namespace, for commands a tool prints (`gc --netns 8316` for a pid).
    pub fn argument(&self) -> String {
        match self {
            Netns::Current => "current".into(),
            Netns::Named(name) => name.clone(),
            Netns::Path(path) => path.display().to_string(),
            Netns::Pid(pid) => pid.to_string(),
        }
    }

    /// A short label for reports and metrics: `current`, the `ip netns` name,
    /// the path, or `pid N` (`Display` says "network namespace ..." instead).
    pub fn label(&self) -> String {
        match self {
            Netns::Current => "current".into(),
            Netns::Named(name) => name.clone(),
            Netns::Path(path) => path.display().to_string(),
            Netns::Pid(pid) => format!("pid {pid}"),
        }
    }

    /// A named namespace (`ip netns` name).
    pub fn named(name: impl Into<String>) -> Self {
        Netns::Named(name.into())
    }

    /// The namespace file, or `None` for [`Netns::Current`].
    pub fn path(&self) -> Result<Option<PathBuf>> {
        Ok(match self {
            Netns::Current => None,
            Netns::Named(name) => {
                if name.is_empty() || name == "." || name == ".." || name.contains('/') {
                    return Err(Error::InvalidInput(format!(
                        "{name:?} is not a valid network namespace name"
                    )));
                }
                Some(Path::new(NETNS_RUN_DIR).join(name))
            }
            Netns::Path(path) => Some(path.clone()),
            Netns::Pid(pid) => Some(PathBuf::from(format!("/proc/{pid}/ns/net"))),
        })
    }

    /// Opens the namespace file (`None` for the current namespace).
    pub fn open(&self) -> Result<Option<NetnsFile>> {
        match self.path()? {
            None => Ok(None),
            Some(path) => NetnsFile::open(path).map(Some),
        }
    }

    /// The names under `/run/netns` (what `ip netns list` shows), sorted.
    pub fn list_named() -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(NETNS_RUN_DIR) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read /run/netns", e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read /run/netns", e))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}

impl std::fmt::Display for Netns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Netns::Current => f.write_str("current network namespace"),
            Netns::Named(name) => write!(f, "network namespace {name}"),
            Netns::Path(path) => write!(f, "network namespace {}", path.display()),
            Netns::Pid(pid) => write!(f, "network namespace of pid {pid}"),
        }
    }
}

/// An open namespace file: keeps the namespace alive and lets code run inside it.
#[derive(Debug)]
pub struct NetnsFile {
    file: File,
    path: PathBuf,
}

impl NetnsFile {
    /// Opens a namespace file.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        match File::open(&path) {
            Ok(file) => Ok(NetnsFile { file, path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NoSuchNetns { path }),
            Err(source) => Err(Error::Netns { path, source }),
        }
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace's identity (device and inode of the open file).
    pub fn id(&self) -> Result<NetnsId> {
        let meta = self.file.metadata().map_err(|source| Error::Netns {
            path: self.path.clone(),
            source,
        })?;
        Ok(NetnsId::from_metadata(&meta))
    }

    /// A [`Netns`] that names exactly this open namespace for as long as this
    /// file stays open (`/proc/self/fd/N`), even if its name or process goes away.
    pub fn pinned(&self) -> Netns {
        Netns::Path(PathBuf::from(format!(
            "/proc/self/fd/{}",
            self.file.as_raw_fd()
        )))
    }

    /// Runs `f` on a helper thread that has entered this namespace, and returns
    /// its result. The calling thread's namespace never changes. Sockets created
    /// by `f` stay in this namespace after the thread ends.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| -> Result<T> {
                // SAFETY: setns only reads the fd, which `self.file` keeps open for
                // the duration of this scoped thread; it changes the namespace of
                // this helper thread only, which ends when the closure returns.
                let rc = unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(Error::Netns {
                        path: self.path.clone(),
                        source: io::Error::last_os_error(),
                    });
                }
                Ok(f())
            });
            match worker.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl AsRawFd for NetnsFile {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for NetnsFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Inode of the initial network namespace on kernels that fix it
/// (`PROC_NET_INIT_INO`, `include/uapi/linux/nsfs.h`); dynamically allocated
/// namespace inodes start at `0xF000_0000`, so no other namespace has it.
const PROC_NET_INIT_INO: u64 = 0xEFFF_FFF9;

/// The identity of a network namespace: device and inode of its `nsfs` file
/// (what `stat -L /proc/PID/ns/net` shows; `ip netns identify` compares the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetnsId {
    /// `st_dev` of the namespace file (the `nsfs` superblock).
    pub dev: u64,
    /// `st_ino` of the namespace file (`net:[INODE]` in `readlink /proc/PID/ns/net`).
    pub inode: u64,
}

impl NetnsId {
    fn from_metadata(meta: &std::fs::Metadata) -> Self {
        NetnsId {
            dev: meta.dev(),
            inode: meta.ino(),
        }
    }

    /// The identity of the namespace file at `path` (following symlinks).
    pub fn of_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        match std::fs::metadata(path) {
            Ok(meta) => Ok(NetnsId::from_metadata(&meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NoSuchNetns {
                path: path.to_owned(),
            }),
            Err(source) => Err(Error::Netns {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// The identity of the calling thread's namespace.
    pub fn current() -> Result<Self> {
        Self::of_path("/proc/thread-self/ns/net")
    }
}

impl std::fmt::Display for NetnsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "net:[{}]", self.inode)
    }
}

/// One network namespace of the host, as found by [`list_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetnsEntry {
    /// Its identity; every entry of one listing has a different one.
    pub id: NetnsId,
    /// How to open a handle in it: [`Netns::Named`] (its first name) when it
    /// has a name, else [`Netns::Pid`] of its lowest pid (valid while that
    /// process lives; see [`NetnsEntry::open`] for a robust way in).
    pub netns: Netns,
    /// Its names under `/run/netns` (sorted; usually zero or one).
    pub names: Vec<String>,
    /// The processes whose network namespace it is (sorted).
    pub pids: Vec<u32>,
    /// Command name (`/proc/PID/comm`) of the lowest pid, if it could be read.
    pub command: Option<String>,
    /// Whether it is the host's initial namespace (`init_net`): its inode is
    /// the fixed `PROC_NET_INIT_INO` (`include/uapi/linux/nsfs.h`, 6.18+), or,
    /// on older kernels, it is the namespace of PID 1 when that is readable
    /// (the initial one unless this `/proc` belongs to a container's PID
    /// namespace).
    pub initial: bool,
    /// Whether it is the calling thread's namespace.
    pub current: bool,
}

impl NetnsEntry {
    /// A one-line description: its names, or its lowest pid and command, plus
    /// how many processes use it, e.g. `"blue (2 processes)"`,
    /// `"pid 4242 (sleep)"`, `"initial: pid 1 (systemd) and 212 other processes"`.
    pub fn description(&self) -> String {
        let mut text = String::new();
        if self.initial {
            text.push_str("initial: ");
        }
        if !self.names.is_empty() {
            text.push_str(&self.names.join(", "));
            match self.pids.len() {
                0 => {}
                1 => text.push_str(" (1 process)"),
                n => text.push_str(&format!(" ({n} processes)")),
            }
        } else if let Some(pid) = self.pids.first() {
            text.push_str(&format!("pid {pid}"));
            if let Some(command) = &self.command {
                text.push_str(&format!(" ({command})"));
            }
            match self.pids.len() {
                1 => {}
                2 => text.push_str(" and 1 other process"),
                n => text.push_str(&format!(" and {} other processes", n - 1)),
            }
        } else {
            text.push_str(&self.id.to_string());
        }
        text
    }

    /// Opens the namespace, trying its names, then its processes in turn (a
    /// process may have exited since the listing), and checks that the file
    /// opened is still this namespace.
    pub fn open(&self) -> Result<NetnsFile> {
        let candidates = self
            .names
            .iter()
            .map(|name| Path::new(NETNS_RUN_DIR).join(name))
            .chain(
                self.pids
                    .iter()
                    .map(|pid| PathBuf::from(format!("/proc/{pid}/ns/net"))),
            );
        for path in candidates {
            let Ok(file) = NetnsFile::open(&path) else {
                continue;
            };
            if file.id().ok() == Some(self.id) {
                return Ok(file);
            }
        }
        Err(Error::NoSuchNetns {
            path: PathBuf::from(format!("{} ({})", self.id, self.description())),
        })
    }
}

/// Every network namespace of the host reachable by a path, once each:
/// the named ones (`/run/netns`, what `ip netns list` shows) and those of
/// running processes (`/proc/*/ns/net`), deduplicated by [`NetnsId`].
///
/// Sorted: the initial namespace first, then named ones by name, then the
/// others by lowest pid. Needs root to see the namespaces of other users'
/// processes (the rest are silently skipped, as are processes that exit
/// during the scan and stale files under `/run/netns`). Not listed: namespaces
/// kept alive only by an open file descriptor or by a bind mount outside
/// `/run/netns` with no process in them, and threads that entered another
/// namespace on their own (`/proc/PID/task/TID/ns/net`).
///
/// ```no_run
/// # fn main() -> conntrack::Result<()> {
/// for entry in conntrack::netns::list_all()? {
///     let mut ct = conntrack::Conntrack::open_in(&entry.netns)?;
///     println!("{}: {} flows", entry.description(), ct.count()?);
/// }
/// # Ok(()) }
/// ```
pub fn list_all() -> Result<Vec<NetnsEntry>> {
    // Every namespace file lives on the one nsfs superblock: anything under
    // /run/netns on another device is a stale file, not a namespace.
    let nsfs_dev = NetnsId::of_path("/proc/self/ns/net")?.dev;
    let current = NetnsId::current().ok();
    let pid1 = NetnsId::of_path("/proc/1/ns/net").ok();
    let mut found: BTreeMap<NetnsId, NetnsEntry> = BTreeMap::new();
    fn entry_for(
        found: &mut BTreeMap<NetnsId, NetnsEntry>,
        id: NetnsId,
        pid1: Option<NetnsId>,
        current: Option<NetnsId>,
    ) -> &mut NetnsEntry {
        found.entry(id).or_insert_with(|| NetnsEntry {
            id,
            netns: Netns::Current,
            names: Vec::new(),
            pids: Vec::new(),
            command: None,
            initial: id.inode == PROC_NET_INIT_INO || Some(id) == pid1,
            current: Some(id) == current,
        })
    }

    for name in Netns::list_named()? {
        let Ok(Some(path)) = Netns::named(name.as_str()).path() else {
            continue;
        };
        match NetnsId::of_path(&path) {
            Ok(id) if id.dev == nsfs_dev => {
                entry_for(&mut found, id, pid1, current).names.push(name)
            }
            _ => {}
        }
    }

    let proc_dir = std::fs::read_dir("/proc").map_err(|e| Error::io("read /proc", e))?;
    for process in proc_dir {
        let Ok(process) = process else { continue };
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(id) = NetnsId::of_path(format!("/proc/{pid}/ns/net")) {
            if id.dev == nsfs_dev {
                entry_for(&mut found, id, pid1, current).pids.push(pid);
            }
        }
    }

    let mut entries: Vec<NetnsEntry> = found
        .into_values()
        .map(|mut entry| {
            entry.names.sort();
            entry.pids.sort_unstable();
            entry.netns = match (entry.names.first(), entry.pids.first()) {
                (Some(name), _) => Netns::Named(name.clone()),
                (None, Some(&pid)) => Netns::Pid(pid),
                (None, None) => Netns::Current, // unreachable: every entry has one
            };
            entry.command = entry.pids.first().and_then(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .ok()
                    .map(|comm| comm.trim_end().to_owned())
            });
            entry
        })
        .collect();
    entries.sort_by(|a, b| {
        b.initial
            .cmp(&a.initial)
            .then_with(|| a.names.is_empty().cmp(&b.names.is_empty()))
            .then_with(|| a.names.cmp(&b.names))
            .then_with(|| a.pids.first().cmp(&b.pids.first()))
    });
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_arguments_read_the_same_everywhere() {
        let cases: [(&str, Netns); 6] = [
            ("blue", Netns::named("blue")),
            ("8316", Netns::Pid(8316)),
            ("/proc/1/ns/net", Netns::Path("/proc/1/ns/net".into())),
            ("current", Netns::Current),
            ("", Netns::Current),
            ("ctrs-a-1", Netns::named("ctrs-a-1")),
        ];
        for (text, netns) in cases {
            let parsed: Netns = text.parse().unwrap();
            assert_eq!(parsed, netns, "{text:?}");
            assert_eq!(parsed.argument().parse::<Netns>().unwrap(), parsed);
        }
        for bad in ["a/b", ".", "..", "99999999999"] {
            assert!(bad.parse::<Netns>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_validated() {
        assert!(Netns::named("../etc").path().is_err());
        assert!(Netns::named("").path().is_err());
        assert_eq!(
            Netns::named("blue").path().unwrap(),
            Some(PathBuf::from("/run/netns/blue"))
        );
        assert_eq!(
            Netns::Pid(1).path().unwrap(),
            Some(PathBuf::from("/proc/1/ns/net"))
        );
        assert_eq!(Netns::Current.path().unwrap(), None);
    }

    #[test]
    fn missing_namespace_is_a_clear_error() {
        let err = Netns::named("conntrack-rs-does-not-exist")
            .open()
            .unwrap_err();
        assert!(matches!(err, Error::NoSuchNetns { .. }), "{err}");
        assert_eq!(err.errno(), Some(libc::ENOENT));
    }

    #[test]
    fn listing_contains_the_current_namespace_once() {
        let me = NetnsId::current().unwrap();
        let all = list_all().unwrap();
        let mine: Vec<_> = all.iter().filter(|e| e.id == me).collect();
        assert_eq!(mine.len(), 1, "{all:#?}");
        assert!(mine[0].current);
        assert!(mine[0].pids.contains(&std::process::id()), "{:?}", mine[0]);
        assert_eq!(all.iter().filter(|e| e.current).count(), 1);
        let mut ids: Vec<_> = all.iter().map(|e| e.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "duplicates in {all:#?}");
    }

    #[test]
    fn descriptions_name_the_namespace() {
        let mut entry = NetnsEntry {
            id: NetnsId { dev: 4, inode: 42 },
            netns: Netns::Pid(7),
            names: Vec::new(),
            pids: vec![7, 9, 11],
            command: Some("sleep".into()),
            initial: false,
            current: false,
        };
        assert_eq!(entry.description(), "pid 7 (sleep) and 2 other processes");
        entry.pids.truncate(1);
        assert_eq!(entry.description(), "pid 7 (sleep)");
        entry.names = vec!["blue".into()];
        entry.initial = true;
        assert_eq!(entry.description(), "initial: blue (1 process)");
        entry.pids.clear();
        entry.names.clear();
        assert_eq!(entry.description(), "initial: net:[42]");
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Network namespaces: naming one, and running code inside one without moving
//! the calling thread.
//!
//! A netlink socket belongs for good to the namespace of the thread that
//! created it (CTNETLINK.md §8.2). [`NetnsFile::run`] therefore spawns a short
//! helper thread, moves *that* thread into the namespace with `setns(2)`, runs
//! the closure there and lets the thread end: the caller's thread never changes
//! namespace, even if the closure panics.

#![allow(unsafe_code)] // setns(2) has no safe wrapper in std

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
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

impl Netns {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

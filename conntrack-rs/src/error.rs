// SPDX-License-Identifier: MIT OR Apache-2.0
//! The crate's one error type.
//!
//! Every failure keeps what a caller needs to act on it: the kernel's errno and
//! extended-ack message for kernel refusals, the `io::Error` for socket and
//! namespace failures, and a small structured [`DecodeError`] (what, where, why)
//! for bytes that do not parse. `Display` says what to do about it.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while talking to ctnetlink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The kernel answered a request with an error (`NLMSG_ERROR` with a negative code).
    #[error("{operation}: {}", kernel_text(operation, *.errno, .message.as_deref()))]
    Kernel {
        /// What was asked (e.g. "dump", "create flow").
        operation: &'static str,
        /// The positive errno value (`libc::EPERM`, `libc::ENOENT`, ...).
        errno: i32,
        /// The extended-ack message (`NLMSGERR_ATTR_MSG`), when the kernel sent one.
        message: Option<String>,
        /// Offset of the offending attribute in the request (`NLMSGERR_ATTR_OFFS`).
        offset: Option<u32>,
    },
    /// A socket system call failed.
    #[error("{operation}: {source}{}", io_hint(operation, .source))]
    Io {
        /// The system call or step that failed.
        operation: &'static str,
        /// The operating-system error (keeps the errno).
        #[source]
        source: io::Error,
    },
    /// The network namespace does not exist.
    #[error("no such network namespace: {} (list named ones with `ip netns list`)", .path.display())]
    NoSuchNetns {
        /// The path that was looked up.
        path: PathBuf,
    },
    /// The network namespace exists but could not be entered.
    #[error("cannot enter network namespace {}: {source}{}", .path.display(), netns_hint(.source))]
    Netns {
        /// The namespace file.
        path: PathBuf,
        /// The failure from `open` or `setns`.
        #[source]
        source: io::Error,
    },
    /// Bytes from the kernel (or a capture) did not parse.
    #[error("malformed ctnetlink data: {0}")]
    Decode(#[from] DecodeError),
    /// A reply carried a sequence number this request did not use.
    #[error("netlink reply with sequence {found}, expected {expected}: a reply got mixed up with another request")]
    SequenceMismatch {
        /// Sequence number of the request in flight.
        expected: u32,
        /// Sequence number that arrived.
        found: u32,
    },
    /// A datagram was larger than the receive buffer (it was truncated and is lost).
    #[error("netlink datagram of {size} bytes truncated by a {capacity}-byte receive buffer")]
    Truncated {
        /// The datagram's real size.
        size: usize,
        /// The buffer's size.
        capacity: usize,
    },
    /// The kernel flagged the dump as inconsistent (`NLM_F_DUMP_INTR`): the table
    /// changed under it. Every flow was still delivered; retry for a clean view
    /// (see [`Conntrack::retry_interrupted`](crate::Conntrack::retry_interrupted)).
    #[error("the dump was interrupted by a table change (NLM_F_DUMP_INTR); retry it")]
    DumpInterrupted,
    /// The caller asked for something the protocol cannot express.
    #[error("invalid request: {0}")]
    InvalidInput(String),
    /// Reading or writing a conntrack sysctl (or the `hashsize` module parameter) failed.
    #[error("cannot {operation} {key} ({}): {source}{}", .path.display(), sysctl_hint(.key, .operation, .source))]
    Sysctl {
        /// The setting (`"nf_conntrack_max"`, `"hashsize"`, ...).
        key: &'static str,
        /// `"read"` or `"write"`.
        operation: &'static str,
        /// The file under `/proc/sys` or `/sys`.
        path: PathBuf,
        /// The kernel's answer (keeps the errno).
        #[source]
        source: io::Error,
    },
    /// A global conntrack setting was written from a network namespace other than the
    /// initial one: the kernel refuses (`EACCES` for the 0444 sysctls, `EOPNOTSUPP`
    /// for the `hashsize` module parameter).
    #[error("{key} is global: writable only from the initial network namespace (the kernel answered: {source}); write it from the host's namespace, where it applies to every namespace")]
    SysctlGlobalOnly {
        /// The setting.
        key: &'static str,
        /// The file that was written.
        path: PathBuf,
        /// The kernel's answer (keeps the errno).
        #[source]
        source: io::Error,
    },
    /// A sysctl file held something other than the number expected.
    #[error("{key} ({}): {content:?} is not {expected}; is this a conntrack sysctl file?", .path.display())]
    SysctlValue {
        /// The setting.
        key: &'static str,
        /// The file that was read.
        path: PathBuf,
        /// What it held (trimmed, at most 64 characters).
        content: String,
        /// What was expected (`"an unsigned integer"`, ...).
        expected: &'static str,
    },
    /// Writing or checking the persistent configuration (`sysctl.d`, `modules-load.d`,
    /// `modprobe.d`) failed.
    #[error("cannot {operation} {}: {source}{}", .path.display(), persist_hint(.source))]
    Persist {
        /// The step that failed (`"write"`, `"rename into place"`, `"fsync"`, ...).
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error (keeps the errno).
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The errno behind this error, if it came from the kernel or the OS.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Io { source, .. } | Error::Netns { source, .. } => source.raw_os_error(),
            Error::NoSuchNetns { .. } => Some(libc::ENOENT),
            Error::Sysctl { source, .. }
            | Error::SysctlGlobalOnly { source, .. }
            | Error::Persist { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// True when the kernel said the flow does not exist (`ENOENT`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Kernel { errno, .. } if *errno == libc::ENOENT)
    }

    /// True when the request lacked privileges (`EPERM` / `EACCES`).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self.errno(), Some(libc::EPERM) | Some(libc::EACCES))
    }

    pub(crate) fn io(operation: &'static str, source: io::Error) -> Self {
        Error::Io { operation, source }
    }
}

fn kernel_text<'a>(
    operation: &'a str,
    errno: i32,
    message: Option<&'a str>,
) -> KernelErrorText<'a> {
    KernelErrorText {
        operation,
        errno,
        message,
    }
}

struct KernelErrorText<'a> {
    operation: &'a str,
    errno: i32,
    message: Option<&'a str>,
}

impl fmt::Display for KernelErrorText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = io::Error::from_raw_os_error(self.errno);
        write!(f, "kernel error {} ({os})", self.errno)?;
        if let Some(message) = self.message {
            write!(f, ": {message}")?;
        }
        let sock_diag = self.operation.starts_with("sock_diag");
        let hint = match self.errno {
            libc::ENOENT if sock_diag => {
                " — the kernel has no inet_diag handler for this protocol: load it \
                 (modprobe tcp_diag udp_diag)"
            }
            libc::EPERM | libc::EACCES if sock_diag => {
                " — reading another namespace's sockets needs CAP_SYS_ADMIN to enter it (run as root)"
            }
            libc::EPERM if self.operation.contains("update") => {
                " — the flow has FIXED_TIMEOUT, whose timeout the kernel never changes (leave \
                 the timeout out), or ctnetlink needs CAP_NET_ADMIN in the namespace's user \
                 namespace (run as root)"
            }
            libc::EPERM | libc::EACCES => {
                " — ctnetlink needs CAP_NET_ADMIN in the namespace's user namespace (run as root)"
            }
            libc::ENOENT => " — no such flow (check the tuple, and pass its zone if it has one)",
            libc::EEXIST => " — the flow already exists (use update or create_or_update)",
            libc::EOPNOTSUPP if self.operation == "create expectation" => {
                " — the master flow has no helper: create it with one (FlowSpec::helper) or \
                 let a ruleset assign one (nft `ct helper set`)"
            }
            libc::EOPNOTSUPP => {
                " — the kernel does not support this request, or the nf_conntrack_netlink \
                 module is not loaded (modprobe nf_conntrack_netlink)"
            }
            libc::EBUSY if self.operation.contains("flow") => {
                " — the kernel refused the status change: SEEN_REPLY and ASSURED can only be \
                 set, never cleared (add bits with FlowSpec::status, which keeps the flow's own)"
            }
            libc::EBUSY => " — a dump is already running on this socket",
            libc::ENOMEM => " — the conntrack table is full (nf_conntrack_max) or memory is short",
            libc::ENOSPC => {
                " — no label space: the kernel keeps connection labels only in a namespace \
                 whose ruleset uses them; add a rule that does (it may only match, e.g. `nft add \
                 rule inet filter input ct label 127 counter`) and retry"
            }
            libc::EINVAL => " — the kernel rejected the request as malformed",
            _ => "",
        };
        f.write_str(hint)
    }
}

fn io_hint(operation: &str, err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EPROTONOSUPPORT) if operation.contains("SOCK_DIAG") => {
            " — this kernel has no NETLINK_SOCK_DIAG (CONFIG_INET_DIAG is off): orphans \
             cannot be confirmed, only suspected"
        }
        Some(libc::EPROTONOSUPPORT) => {
            " — this kernel has no NETLINK_NETFILTER (CONFIG_NETFILTER_NETLINK is off)"
        }
        Some(libc::EPERM) | Some(libc::EACCES) => " — needs CAP_NET_ADMIN (run as root)",
        _ => "",
    }
}

fn netns_hint(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            " — entering a network namespace needs CAP_SYS_ADMIN (run as root)"
        }
        Some(libc::EINVAL) => " — the file is not a network namespace",
        _ => "",
    }
}

/// What kind of problem a [`DecodeError`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Fewer bytes than a header or a length field requires.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// An attribute's payload has the wrong size for its type.
    WrongSize {
        /// The size the attribute must have.
        expected: usize,
        /// The size found.
        found: usize,
    },
    /// A required attribute is absent.
    Missing,
    /// A value is out of range or inconsistent (e.g. an IPv4 source with an IPv6 destination).
    Invalid,
}

/// Structured description of malformed bytes: what was being read, where, and why.
///
/// `Copy` and allocation-free, so building one on a hot path costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// The element being decoded, by its C name (`"CTA_TUPLE_ORIG"`, `"nlmsghdr"`, ...).
    pub what: &'static str,
    /// What was wrong.
    pub kind: DecodeErrorKind,
    /// Byte offset of the element within the message (or buffer) being decoded.
    pub offset: usize,
}

impl DecodeError {
    pub(crate) const fn new(what: &'static str, kind: DecodeErrorKind, offset: usize) -> Self {
        DecodeError { what, kind, offset }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DecodeErrorKind::Truncated { needed, available } => write!(
                f,
                "{} at offset {}: truncated, {needed} bytes needed, {available} available",
                self.what, self.offset
            ),
            DecodeErrorKind::WrongSize { expected, found } => write!(
                f,
                "{} at offset {}: payload of {found} bytes, expected {expected}",
                self.what, self.offset
            ),
            DecodeErrorKind::Missing => {
                write!(
                    f,
                    "{} missing (message at offset {})",
                    self.what, self.offset
                )
            }
            DecodeErrorKind::Invalid => {
                write!(f, "{} at offset {}: invalid value", self.what, self.offset)
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// The "what to do" part of [`Error::Sysctl`]'s message.
fn sysctl_hint(key: &str, operation: &str, source: &io::Error) -> &'static str {
    match source.raw_os_error() {
        Some(libc::ENOENT) => {
            " — no such file: the nf_conntrack module is not loaded (modprobe nf_conntrack) \
             or this kernel has no such setting"
        }
        Some(libc::EACCES) | Some(libc::EPERM) if key == "nf_conntrack_count" => {
            " — nf_conntrack_count is read-only: the kernel maintains it"
        }
        Some(libc::EACCES) | Some(libc::EPERM) if key == "hashsize" && operation == "read" => {
            " — the hashsize parameter is readable by root only; nf_conntrack_buckets \
             shows the same value to everyone"
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            " — needs root (CAP_NET_ADMIN over the namespace's user namespace)"
        }
        Some(libc::EINVAL) if operation == "write" => {
            " — the kernel rejected the value: out of range for this setting"
        }
        _ => "",
    }
}

/// The "what to do" part of [`Error::Persist`]'s message.
fn persist_hint(source: &io::Error) -> &'static str {
    match source.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => " — writing system configuration needs root",
        Some(libc::EROFS) => " — the file system is read-only (image-based system?)",
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => " — the file system is full",
        _ => "",
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! The settings this module reads and writes: names, files, scope and defaults.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::SysctlRoot;
use crate::error::{Error, Result};

/// Whether a setting has one value for the whole host or one per network namespace.
///
/// `nf_conntrack_standalone.c` (6.3+, upstream commit 2671fa4): *"Don't allow
/// non-init_net ns to alter global sysctls"* — global keys are mode 0444 in every
/// namespace but the initial one, so a write there fails with `EACCES`; the
/// `hashsize` module parameter refuses writes from threads outside the initial
/// namespace with `EOPNOTSUPP`. Before 6.3 a child namespace could write
/// `nf_conntrack_max`, and changed it for the whole host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// One value for the whole host, writable only from the initial network namespace.
    /// Every namespace reads the same value; `nf_conntrack_max` is still a limit
    /// *per namespace* (each may hold that many entries).
    Global,
    /// Each network namespace has its own value (new namespaces start from the kernel defaults,
    /// not from the host's values).
    PerNamespace,
}

impl Scope {
    /// `"global"` or `"per-namespace"`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::PerNamespace => "per-namespace",
        }
    }

    /// The rule in one sentence, naming `key`.
    pub fn rule(self, key: &str) -> String {
        match self {
            Scope::Global => {
                format!("{key} is global: writable only from the initial network namespace")
            }
            Scope::PerNamespace => {
                format!("{key} is per-namespace: each namespace has its own value")
            }
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

macro_rules! timeouts {
    ($($(#[$meta:meta])* $variant:ident = $suffix:literal, $default:expr;)*) => {
        /// A per-protocol, per-state timeout (`net.netfilter.nf_conntrack_*_timeout*`),
        /// all per-namespace, in seconds.
        ///
        /// Defaults are the kernel's (`nf_conntrack_proto_*.c`, 6.18); see
        /// [`Timeouts`](super::Timeouts) for reading them all at once.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Timeout {
            $($(#[$meta])* $variant,)*
        }

        impl Timeout {
            /// Every timeout, in the order of [`Timeout::index`].
            pub const ALL: &'static [Timeout] = &[$(Timeout::$variant,)*];

            /// The file name under `/proc/sys/net/netfilter/` (`"nf_conntrack_tcp_timeout_established"`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Timeout::$variant => concat!("nf_conntrack_", $suffix),)*
                }
            }

            /// The `sysctl` name (`"net.netfilter.nf_conntrack_tcp_timeout_established"`).
            pub fn sysctl_name(self) -> &'static str {
                match self {
                    $(Timeout::$variant => concat!("net.netfilter.nf_conntrack_", $suffix),)*
                }
            }

            /// The kernel's default.
            pub fn default_value(self) -> Duration {
                match self {
                    $(Timeout::$variant => Duration::from_secs($default),)*
                }
            }
        }
    };
}

timeouts! {
    /// TCP `SYN_SENT` (default 120 s). `SYN_SENT2` has no sysctl of its own: it keeps
    /// the kernel's constant 120 s.
    TcpSynSent = "tcp_timeout_syn_sent", 120;
    /// TCP `SYN_RECV` (60 s).
    TcpSynRecv = "tcp_timeout_syn_recv", 60;
    /// TCP `ESTABLISHED` (432000 s = 5 days).
    TcpEstablished = "tcp_timeout_established", 432_000;
    /// TCP `FIN_WAIT` (120 s).
    TcpFinWait = "tcp_timeout_fin_wait", 120;
    /// TCP `CLOSE_WAIT` (60 s).
    TcpCloseWait = "tcp_timeout_close_wait", 60;
    /// TCP `LAST_ACK` (30 s).
    TcpLastAck = "tcp_timeout_last_ack", 30;
    /// TCP `TIME_WAIT` (120 s).
    TcpTimeWait = "tcp_timeout_time_wait", 120;
    /// TCP `CLOSE`, after an RST (10 s).
    TcpClose = "tcp_timeout_close", 10;
    /// TCP after `nf_conntrack_tcp_max_retrans` unacknowledged retransmits or a zero
    /// window (300 s), when shorter than the state's timeout.
    TcpMaxRetrans = "tcp_timeout_max_retrans", 300;
    /// TCP while data is unacknowledged (300 s), when shorter than the state's timeout;
    /// also caps `ESTABLISHED` until a reply was seen.
    TcpUnacknowledged = "tcp_timeout_unacknowledged", 300;
    /// UDP before a reply, or replied but not yet a stream (30 s).
    Udp = "udp_timeout", 30;
    /// UDP stream: replied and assured (120 s).
    UdpStream = "udp_timeout_stream", 120;
    /// ICMP (30 s).
    Icmp = "icmp_timeout", 30;
    /// ICMPv6 (30 s).
    Icmpv6 = "icmpv6_timeout", 30;
    /// SCTP `CLOSED` (10 s).
    SctpClosed = "sctp_timeout_closed", 10;
    /// SCTP `COOKIE_WAIT` (3 s).
    SctpCookieWait = "sctp_timeout_cookie_wait", 3;
    /// SCTP `COOKIE_ECHOED` (3 s).
    SctpCookieEchoed = "sctp_timeout_cookie_echoed", 3;
    /// SCTP `ESTABLISHED` (210 s).
    SctpEstablished = "sctp_timeout_established", 210;
    /// SCTP `SHUTDOWN_SENT` (3 s).
    SctpShutdownSent = "sctp_timeout_shutdown_sent", 3;
    /// SCTP `SHUTDOWN_RECD` (3 s).
    SctpShutdownRecd = "sctp_timeout_shutdown_recd", 3;
    /// SCTP `SHUTDOWN_ACK_SENT` (3 s).
    SctpShutdownAckSent = "sctp_timeout_shutdown_ack_sent", 3;
    /// SCTP `HEARTBEAT_SENT` (30 s).
    SctpHeartbeatSent = "sctp_timeout_heartbeat_sent", 30;
    /// GRE before a reply (30 s).
    Gre = "gre_timeout", 30;
    /// GRE once a reply was seen (180 s).
    GreStream = "gre_timeout_stream", 180;
    /// Every protocol without its own tracker (600 s).
    Generic = "generic_timeout", 600;
}

impl Timeout {
    /// Number of timeouts ([`Timeout::ALL`]`.len()`).
    pub const COUNT: usize = Timeout::ALL.len();

    /// Position in [`Timeout::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A conntrack setting: a `net.netfilter` sysctl or the `hashsize` module parameter.
///
/// All values are unsigned integers on the wire (booleans are `0`/`1`, timeouts
/// are seconds); [`Sysctl`](super::Sysctl) has typed accessors for the common ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Key {
    /// `nf_conntrack_max`: entries each namespace may hold. **Global.**
    Max,
    /// `nf_conntrack_count`: entries in this namespace (read-only).
    Count,
    /// `nf_conntrack_buckets`: hash table size; writing it resizes the table. **Global.**
    Buckets,
    /// `nf_conntrack_expect_max`: expectation limit. **Global.**
    ExpectMax,
    /// `/sys/module/nf_conntrack/parameters/hashsize`: the same hash table size as
    /// [`Key::Buckets`], as a module parameter (root-only, mode 0600); writing it
    /// from outside the initial namespace fails with `EOPNOTSUPP`. **Global.**
    Hashsize,
    /// `nf_conntrack_acct`: byte/packet counters on new entries (0/1).
    Acct,
    /// `nf_conntrack_timestamp`: start/stop timestamps on new entries (0/1).
    Timestamp,
    /// `nf_conntrack_events`: 0 off, 1 on, 2 only while a listener exists ([`EventsMode`]).
    Events,
    /// `nf_conntrack_checksum`: treat packets with bad checksums as INVALID (0/1).
    Checksum,
    /// `nf_conntrack_log_invalid`: log INVALID packets of this protocol number (0 none, 255 all).
    LogInvalid,
    /// `nf_conntrack_tcp_be_liberal`: only out-of-window RSTs are INVALID (0/1).
    TcpBeLiberal,
    /// `nf_conntrack_tcp_loose`: pick up connections already established (0/1).
    TcpLoose,
    /// `nf_conntrack_tcp_ignore_invalid_rst` (5.14+): do not mark out-of-window RSTs INVALID (0/1).
    TcpIgnoreInvalidRst,
    /// `nf_conntrack_tcp_max_retrans`: unacknowledged retransmits before
    /// [`Timeout::TcpMaxRetrans`] applies.
    TcpMaxRetrans,
    /// A per-protocol timeout, in seconds.
    Timeout(Timeout),
}

impl Key {
    /// Every key other than the timeouts, in declaration order.
    pub const BASIC: &'static [Key] = &[
        Key::Max,
        Key::Count,
        Key::Buckets,
        Key::ExpectMax,
        Key::Hashsize,
        Key::Acct,
        Key::Timestamp,
        Key::Events,
        Key::Checksum,
        Key::LogInvalid,
        Key::TcpBeLiberal,
        Key::TcpLoose,
        Key::TcpIgnoreInvalidRst,
        Key::TcpMaxRetrans,
    ];

    /// Every key: [`Key::BASIC`], then every [`Timeout`].
    pub fn all() -> impl Iterator<Item = Key> {
        Key::BASIC
            .iter()
            .copied()
            .chain(Timeout::ALL.iter().map(|t| Key::Timeout(*t)))
    }

    /// The file name: `"nf_conntrack_max"`, ..., `"hashsize"` for the module parameter.
    pub fn name(self) -> &'static str {
        match self {
            Key::Max => "nf_conntrack_max",
            Key::Count => "nf_conntrack_count",
            Key::Buckets => "nf_conntrack_buckets",
            Key::ExpectMax => "nf_conntrack_expect_max",
            Key::Hashsize => "hashsize",
            Key::Acct => "nf_conntrack_acct",
            Key::Timestamp => "nf_conntrack_timestamp",
            Key::Events => "nf_conntrack_events",
            Key::Checksum => "nf_conntrack_checksum",
            Key::LogInvalid => "nf_conntrack_log_invalid",
            Key::TcpBeLiberal => "nf_conntrack_tcp_be_liberal",
            Key::TcpLoose => "nf_conntrack_tcp_loose",
            Key::TcpIgnoreInvalidRst => "nf_conntrack_tcp_ignore_invalid_rst",
            Key::TcpMaxRetrans => "nf_conntrack_tcp_max_retrans",
            Key::Timeout(timeout) => timeout.name(),
        }
    }

    /// The name `sysctl(8)` and `sysctl.d` use (`"net.netfilter.nf_conntrack_max"`);
    /// `None` for [`Key::Hashsize`], which is a module parameter (persisted in `modprobe.d`).
    pub fn sysctl_name(self) -> Option<&'static str> {
        Some(match self {
            Key::Max => "net.netfilter.nf_conntrack_max",
            Key::Count => "net.netfilter.nf_conntrack_count",
            Key::Buckets => "net.netfilter.nf_conntrack_buckets",
            Key::ExpectMax => "net.netfilter.nf_conntrack_expect_max",
            Key::Hashsize => return None,
            Key::Acct => "net.netfilter.nf_conntrack_acct",
            Key::Timestamp => "net.netfilter.nf_conntrack_timestamp",
            Key::Events => "net.netfilter.nf_conntrack_events",
            Key::Checksum => "net.netfilter.nf_conntrack_checksum",
            Key::LogInvalid => "net.netfilter.nf_conntrack_log_invalid",
            Key::TcpBeLiberal => "net.netfilter.nf_conntrack_tcp_be_liberal",
            Key::TcpLoose => "net.netfilter.nf_conntrack_tcp_loose",
            Key::TcpIgnoreInvalidRst => "net.netfilter.nf_conntrack_tcp_ignore_invalid_rst",
            Key::TcpMaxRetrans => "net.netfilter.nf_conntrack_tcp_max_retrans",
            Key::Timeout(timeout) => timeout.sysctl_name(),
        })
    }

    /// Global (one value, written only from the initial namespace) or per-namespace.
    pub fn scope(self) -> Scope {
        match self {
            Key::Max | Key::Buckets | Key::ExpectMax | Key::Hashsize => Scope::Global,
            _ => Scope::PerNamespace,
        }
    }

    /// False for keys the kernel maintains ([`Key::Count`]).
    pub fn is_writable(self) -> bool {
        !matches!(self, Key::Count)
    }

    /// The file behind the key, under `root`.
    pub fn path(self, root: &SysctlRoot) -> PathBuf {
        match self {
            Key::Hashsize => root.sys.join("module/nf_conntrack/parameters/hashsize"),
            other => root.proc.join("sys/net/netfilter").join(other.name()),
        }
    }

    /// The kernel's default, where it is a constant (not for `max`, `count`, `buckets`,
    /// `expect_max`, `hashsize`, which depend on memory and load).
    pub fn default_value(self) -> Option<u64> {
        Some(match self {
            Key::Max | Key::Count | Key::Buckets | Key::ExpectMax | Key::Hashsize => return None,
            Key::Acct | Key::Timestamp | Key::TcpBeLiberal | Key::TcpIgnoreInvalidRst => 0,
            Key::Events => 2,
            Key::Checksum | Key::TcpLoose => 1,
            Key::LogInvalid => 0,
            Key::TcpMaxRetrans => 3,
            Key::Timeout(timeout) => timeout.default_value().as_secs(),
        })
    }

    /// The rule in one sentence ("nf_conntrack_max is global: writable only from the
    /// initial network namespace").
    pub fn rule(self) -> String {
        self.scope().rule(self.name())
    }
}

impl From<Timeout> for Key {
    fn from(timeout: Timeout) -> Key {
        Key::Timeout(timeout)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Key {
    type Err = Error;

    /// Accepts the file name (`nf_conntrack_max`), the sysctl name with dots or slashes
    /// (`net.netfilter.nf_conntrack_max`, `net/netfilter/nf_conntrack_max`) and
    /// `hashsize` (also as `nf_conntrack.hashsize`).
    fn from_str(text: &str) -> Result<Key> {
        let text = text.trim();
        let short = text
            .strip_prefix("net.netfilter.")
            .or_else(|| text.strip_prefix("net/netfilter/"))
            .or_else(|| text.strip_prefix("nf_conntrack."))
            .unwrap_or(text);
        Key::all()
            .find(|key| key.name() == short)
            .ok_or_else(|| Error::InvalidInput(format!("{text:?} is not a conntrack setting")))
    }
}

/// `nf_conntrack_events` (`nf_conntrack_ecache.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventsMode {
    /// `0`: no events, no event extension on entries.
    Off,
    /// `1`: every new entry carries the event extension (+128 B per entry, see
    /// [`MemoryModel`](super::MemoryModel)).
    On,
    /// `2` (default): only entries created while some event listener exists get the
    /// extension; entries created before a listener subscribed never send DESTROY.
    Auto,
    /// A value this library does not know (from a newer kernel).
    Unknown(u64),
}

impl EventsMode {
    /// Decodes the sysctl's value.
    pub fn from_raw(value: u64) -> Self {
        match value {
            0 => EventsMode::Off,
            1 => EventsMode::On,
            2 => EventsMode::Auto,
            other => EventsMode::Unknown(other),
        }
    }

    /// The sysctl's value.
    pub fn raw(self) -> u64 {
        match self {
            EventsMode::Off => 0,
            EventsMode::On => 1,
            EventsMode::Auto => 2,
            EventsMode::Unknown(other) => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_scope() {
        let root = SysctlRoot::under("/x");
        assert_eq!(
            Key::Max.path(&root),
            PathBuf::from("/x/proc/sys/net/netfilter/nf_conntrack_max")
        );
        assert_eq!(
            Key::Hashsize.path(&root),
            PathBuf::from("/x/sys/module/nf_conntrack/parameters/hashsize")
        );
        assert_eq!(
            Key::Timeout(Timeout::TcpEstablished).sysctl_name(),
            Some("net.netfilter.nf_conntrack_tcp_timeout_established")
        );
        assert_eq!(Key::Hashsize.sysctl_name(), None);
        assert_eq!(Key::Max.scope(), Scope::Global);
        assert_eq!(Key::Acct.scope(), Scope::PerNamespace);
        assert_eq!(
            Key::Max.rule(),
            "nf_conntrack_max is global: writable only from the initial network namespace"
        );
        assert!(!Key::Count.is_writable());
        assert_eq!(Key::all().count(), Key::BASIC.len() + Timeout::COUNT);
        for (i, t) in Timeout::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
        }
    }

    #[test]
    fn keys_parse_from_every_spelling() {
        for key in Key::all() {
            assert_eq!(key.name().parse::<Key>().unwrap(), key);
            if let Some(name) = key.sysctl_name() {
                assert_eq!(name.parse::<Key>().unwrap(), key);
                assert_eq!(name.replace('.', "/").parse::<Key>().unwrap(), key);
            }
        }
        assert_eq!(
            "nf_conntrack.hashsize".parse::<Key>().unwrap(),
            Key::Hashsize
        );
        assert!("net.ipv4.ip_forward".parse::<Key>().is_err());
    }

    #[test]
    fn events_mode_round_trips() {
        for raw in 0..5 {
            assert_eq!(EventsMode::from_raw(raw).raw(), raw);
        }
    }
}

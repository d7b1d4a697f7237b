// SPDX-License-Identifier: MIT OR Apache-2.0
//! Orphaned flows: entries that linger because what should have ended them
//! (a FIN or RST, a reply) never reached the conntrack of this box.
//!
//! A peer that dies, a firewall rule that drops the RST before conntrack, an
//! asymmetric route: the entry stays `ESTABLISHED` for
//! `nf_conntrack_tcp_timeout_established` (5 days by default), holds a slot in
//! the table and, under NAT, a port. The kernel has no "last seen" field, so
//! this module estimates it (docs/ctnetlink.md §10):
//!
//! ```text
//! idle = configured timeout of the flow's protocol state, in the flow's namespace
//!        − remaining timeout (CTA_TIMEOUT)
//! ```
//!
//! because every accepted packet re-arms the configured timeout. The timeouts
//! are read once per call, through [`Sysctl`], in the namespace of the
//! [`Conntrack`] handle (the namespace the flows live in), and the estimate is
//! [`Timeouts::idle`].
//!
//! The caveats of that estimate are documented on [`OrphanPolicy`].
//!
//! # Evidence from the socket table
//!
//! An estimate cannot tell a dead flow from a quiet live one. For a flow that
//! **ends on this host** the kernel knows the truth: the socket table
//! ([`crate::sockets`]). Each orphan found by the estimate gets an
//! [`Evidence`]:
//!
//! - [`Confirmed`](Evidence::Confirmed): one of its ends is a local address
//!   and no socket exists there — TCP: no socket with that 4-tuple in any
//!   state (`TIME_WAIT` and request sockets included); UDP: nothing bound to
//!   that address and port (nor to the wildcard on that port). Any packet for
//!   it would be answered with a RST or a port-unreachable.
//! - [`Suspected`](Evidence::Suspected): idle by the estimate only: a
//!   forwarded flow (no local end), a protocol without sockets to check (ICMP,
//!   SCTP, ...), a socket check that is off, or a socket table that could not
//!   be read.
//! - [`Alive`](Evidence::Alive): a socket exists at a local end. **Never an
//!   orphan**, whatever the idle estimate says (an idle SSH or database
//!   connection without keepalive); counted in [`OrphanCounts::alive`].
//!
//! Which end is local: the original source (a connection this host opened:
//! its socket sees `orig.src:sport → orig.dst:dport`, before any SNAT) and
//! the reply source (a connection this host accepted: its socket sees
//! `reply.src:sport ← reply.dst:dport`, so the local end of an inbound DNATed
//! flow — the real server behind the NAT — is found in the reply tuple).
//! Local addresses are read per namespace (`RTM_GETADDR`); with
//! [`SocketCheck::AllNamespaces`] the host's other namespaces
//! ([`netns::list_all`](crate::netns::list_all)) count too, so a container's or
//! pod's flow crossing the host's table is checked against the socket table of
//! the namespace that owns its address. A namespace whose sockets cannot be
//! read contributes no local address: its flows stay suspected.
//!
//! ## Why a race cannot make a live flow look confirmed
//!
//! The reads happen in this order: (1) local addresses, (2) the conntrack
//! dump, (3) the socket tables. Deletes add, per confirmed flow and right
//! before its delete: (4) the flow read again by tuple and zone, (5) an exact
//! lookup of its sockets, (6) the delete, naming the flow's id.
//!
//! - **Lists and counts** ((1) to (3)). A connection opened after (2) has no
//!   entry in the dump: nothing to judge. One this host opened before (2) had
//!   its socket before its first packet created the entry; one it accepted
//!   has its request socket from the moment its SYN is processed (the entry
//!   is confirmed by the same packet, in the same softirq), long before (3)
//!   starts. So a connection alive at (3) is in (3), unless it closed in
//!   between, and then it *is* gone. Reading sockets first would be wrong: a
//!   connection opened between the two reads would show an entry without a
//!   socket. A TCP socket that closes moves to `TIME_WAIT` in the same hash
//!   bucket (the kernel inserts the timewait socket before it unhashes the
//!   full one), and `TIME_WAIT` and request sockets count as sockets, so a
//!   closing or half-open connection is still seen. An address added after
//!   (1) only makes its flows look forwarded (suspected), never confirmed.
//!   But an inet_diag dump is not a snapshot: it resumes each batch by
//!   position in a hash bucket, and a neighbour closing in the same bucket
//!   can make it skip a live socket. Lists and counts can therefore (rarely,
//!   under churn) show a live flow as confirmed; deletes never act on that.
//! - **Deletes** ((4) to (6)). (4) spares the flow when it is gone, has
//!   another id, another TCP state or a higher remaining timeout than when it
//!   was judged: the kernel only counts a timeout down, a packet is what
//!   raises it. (5) is the kernel's own hash lookup, the one a packet would
//!   hit (a listener's answer does not count: it owns no 4-tuple); any socket
//!   that answers spares the flow. Because (5) comes after (4), a connection
//!   that could still be hurt by (6) must have had no socket at (5) and its
//!   first packet after it: a brand-new connection on exactly the 4-tuple of
//!   the dead flow, which picks up the dead entry (same id: the kernel
//!   ignores its SYN on an established entry and resynchronises on the
//!   SYN/ACK). `tests/kernel_confirmed_orphans.rs` makes that connection at
//!   the worst moment before (4) with a test hook, and it is spared.
//! - **What remains** is the time between (5) and (6): the rest of a batch's
//!   lookups and at most 16 pipelined deletes, tens of microseconds. A
//!   connection whose socket is created *and* whose SYN/ACK crosses the entry
//!   inside it loses the entry to the delete. Its next packet then has none:
//!   with `nf_conntrack_tcp_loose=1` (the default) the kernel picks the
//!   connection up again mid-stream and it survives; with loose pickup off
//!   and `ct state invalid` dropped, it breaks. No ctnetlink request deletes
//!   only "if unchanged", so no order of requests closes this window; it
//!   needs a connection that reuses the exact 4-tuple of a dead flow within
//!   microseconds of its judgement.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::conntrack::Conntrack;
use crate::delete::{DeleteOptions, DeletePath, DeleteReport, DeleteTarget};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::flow::{proto, Flow, FlowRef, TcpState, L4};
use crate::netns::{NetnsFile, NetnsId};
use crate::sockets::{self, key_of, LocalAddrs, Lookup, SocketTable, TcpKey};
use crate::status::Status;
use crate::sysctl::{Sysctl, Timeouts};

/// Why a flow is considered orphaned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum OrphanCategory {
    /// A TCP flow in `ESTABLISHED` (with `SEEN_REPLY`) idle for at least
    /// [`OrphanPolicy::idle_established`]: typically the FIN or RST that closed
    /// it was lost, or the peer vanished. It would otherwise stay for
    /// `nf_conntrack_tcp_timeout_established` (5 days by default).
    IdleEstablished,
    /// A flow that never saw a reply (`SEEN_REPLY` clear, conntrack's
    /// `[UNREPLIED]`), of any protocol, at least [`OrphanPolicy::unreplied`] old:
    /// the age is the larger of the idle estimate and, when the kernel sends
    /// `CTA_TIMESTAMP_START` (`nf_conntrack_timestamp=1`), the time since creation.
    LongUnreplied,
    /// A TCP flow in `FIN_WAIT`, `CLOSE_WAIT`, `LAST_ACK`, `TIME_WAIT` or `CLOSE`
    /// (with `SEEN_REPLY`) idle for at least [`OrphanPolicy::half_closed`]. With
    /// the kernel's default timeouts (at most 120 s) these clean themselves up;
    /// the category finds them where those timeouts were raised.
    LingeringHalfClosed,
}

impl OrphanCategory {
    /// Every category, in classification order.
    pub const ALL: [OrphanCategory; 3] = [
        OrphanCategory::IdleEstablished,
        OrphanCategory::LongUnreplied,
        OrphanCategory::LingeringHalfClosed,
    ];

    /// A stable snake-case name (`idle_established`, `long_unreplied`,
    /// `lingering_half_closed`), e.g. for JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            OrphanCategory::IdleEstablished => "idle_established",
            OrphanCategory::LongUnreplied => "long_unreplied",
            OrphanCategory::LingeringHalfClosed => "lingering_half_closed",
        }
    }

    fn index(self) -> usize {
        match self {
            OrphanCategory::IdleEstablished => 0,
            OrphanCategory::LongUnreplied => 1,
            OrphanCategory::LingeringHalfClosed => 2,
        }
    }
}

impl fmt::Display for OrphanCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the socket table says about an orphan candidate (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum Evidence {
    /// A local end without a socket: certainly orphaned.
    Confirmed,
    /// Idle by the estimate only (forwarded, unchecked or unreadable).
    Suspected,
    /// A socket exists at a local end: never an orphan.
    Alive,
}

impl Evidence {
    /// A stable snake-case name (`confirmed`, `suspected`, `alive`).
    pub fn name(self) -> &'static str {
        match self {
            Evidence::Confirmed => "confirmed",
            Evidence::Suspected => "suspected",
            Evidence::Alive => "alive",
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which socket tables an [`OrphanPolicy`] consults for [`Evidence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SocketCheck {
    /// None: every orphan is [`Suspected`](Evidence::Suspected).
    Off,
    /// The namespace of the handle (the table's own): the default.
    #[default]
    Namespace,
    /// The handle's namespace and every other namespace of the host that
    /// [`netns::list_all`](crate::netns::list_all) finds (containers, pods):
    /// their addresses count as local and their sockets as evidence. Caveat:
    /// an address owned by an isolated namespace and also used by a remote
    /// host that this table's flows reach makes those flows look local; use
    /// it where namespace addresses are unique on the host (Kubernetes nodes,
    /// Docker hosts).
    AllNamespaces,
}

/// Which flows count as orphans: a threshold and an on/off switch per
/// [`OrphanCategory`], exclusions, and a [`Filter`] restricting the candidates.
///
/// Defaults ([`OrphanPolicy::new`]):
///
/// | setting | default | why |
/// |---|---|---|
/// | [`idle_established`](OrphanPolicy::idle_established) | 1 hour | far above typical application keepalives (seconds to minutes), far below the 5-day kernel timeout |
/// | [`unreplied`](OrphanPolicy::unreplied) | 60 s | twice the 30 s unreplied-UDP timeout, half the 120 s `SYN_SENT` one |
/// | [`half_closed`](OrphanPolicy::half_closed) | 300 s | longer than every default half-closed timeout (≤ 120 s) |
/// | every category | enabled | |
/// | [`include_nat`](OrphanPolicy::include_nat) | `false`: NATed flows are never orphans | deleting a NAT mapping under a live connection breaks it for good, unlike a plain entry that tcp_loose re-creates |
/// | [`exclude_assured`](OrphanPolicy::exclude_assured) | `false` | idle `ESTABLISHED` orphans are normally `ASSURED` |
/// | [`filter`](OrphanPolicy::filter) | every flow | |
/// | [`timeouts`](OrphanPolicy::timeouts) | read from the namespace's sysctls at each call | |
/// | [`sockets`](OrphanPolicy::sockets) | [`SocketCheck::Namespace`] | flows with a live socket are never orphans |
/// | [`require_confirmation`](OrphanPolicy::require_confirmation) | `false`: suspected orphans are selected too | forwarded flows can only be suspected |
///
/// A flow is judged by its first matching category: no `SEEN_REPLY` →
/// [`LongUnreplied`](OrphanCategory::LongUnreplied); TCP `ESTABLISHED` →
/// [`IdleEstablished`](OrphanCategory::IdleEstablished); TCP half-closed →
/// [`LingeringHalfClosed`](OrphanCategory::LingeringHalfClosed); anything else
/// is never an orphan. A disabled category does not pass its flows on to
/// another one. Flows without an idle estimate (see the caveats below), flows
/// being destroyed (`DYING`) and, by default, NATed flows are never orphans.
///
/// The idle estimate of a flow is the timeout the kernel arms for its protocol
/// state in the flow's namespace (the namespace's sysctls, read once per call)
/// minus its remaining `CTA_TIMEOUT`: [`Timeouts::idle`].
///
/// # Example
/// ```no_run
/// use conntrack::{Conntrack, DeleteOptions, OrphanPolicy};
/// use std::time::Duration;
/// # fn main() -> conntrack::Result<()> {
/// let mut ct = Conntrack::open()?;
/// let policy = OrphanPolicy::new().idle_established(Duration::from_secs(6 * 3600));
/// for orphan in ct.orphans(&policy)? {
///     println!("{} {:?} {} -> {}", orphan.category, orphan.idle,
///              orphan.flow.orig.src, orphan.flow.orig.dst);
/// }
/// let dry = ct.delete_orphans(&policy, DeleteOptions { dry_run: true, ..Default::default() })?;
/// println!("{} would go", dry.matched);
/// # Ok(()) }
/// ```
///
/// # Caveats (what the estimate cannot know)
/// 1. **Shorter timeouts armed instead.** While data is unacknowledged, after
///    `tcp_max_retrans` retransmits or on a zero window, the TCP tracker arms
///    `nf_conntrack_tcp_timeout_unacknowledged` / `_max_retrans` (300 s) instead of
///    the state's timeout, and an `ESTABLISHED` flow without `SEEN_REPLY` is capped
///    at the unacknowledged timeout. A remaining time within those shorter
///    timeouts cannot tell "idle for days" from "busy": the estimate is `None`,
///    and **a flow without an estimate is never an orphan**. Only
///    `remaining > 300 s` proves that the state's own timeout was armed.
/// 2. **Timeouts not visible in a dump.** Per-flow timeout policies (`nft ct
///    timeout`, `nfct timeout`, the `CT` target) override the sysctls, and a dump
///    does not say which flows have one: their estimate is wrong (a 1-hour policy
///    on `ESTABLISHED` looks like 5 days minus 1 hour of idle time with the default
///    sysctl). Exclude them with [`OrphanPolicy::filter`] (their zone, mark or
///    ports) or give the timeouts they use with [`OrphanPolicy::timeouts`].
///    Likewise a sysctl **raised** after a flow's last packet makes it look idle for
///    the difference; one **lowered** makes it look younger (clamped at zero).
/// 3. **No refresh, no timeout.** `IPS_FIXED_TIMEOUT` flows are never refreshed by
///    packets and `IPS_OFFLOAD` flows (flowtable) have no `CTA_TIMEOUT`: no
///    estimate, never an orphan.
/// 4. **The flow's namespace.** Timeouts are per network namespace; they are read
///    in the handle's namespace (for a handle on the current namespace: the
///    calling thread's at the time of the call).
/// 5. **Resolution.** `CTA_TIMEOUT` is truncated to whole seconds, so the estimate
///    can be up to one second high.
/// 6. **Age is not idleness.** The estimate measures the time since the last
///    accepted packet. The age of a flow is known only from
///    `CTA_TIMESTAMP_START`, sent when `nf_conntrack_timestamp=1` was set before
///    the flow was created; [`OrphanCategory::LongUnreplied`] uses it when present.
///    Without it, an unreplied flow whose sender keeps retrying looks freshly
///    active, and with the default timeouts (30 s for unreplied UDP, 120 s for
///    `SYN_SENT`, which SYN retransmits do not refresh) unreplied flows mostly
///    clean themselves up before they could look old.
/// 7. **Not a snapshot.** Flows are judged as a dump streams by. A flow deleted
///    as an orphan is deleted by tuple, zone and id (a newer flow that reused the
///    tuple is spared), but a packet that arrives between the dump and the delete
///    does not save it. Choose thresholds well above the keepalive interval of the
///    applications concerned: with `nf_conntrack_tcp_loose=0` or a strict
///    `ct state` ruleset, a live connection whose entry was deleted is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanPolicy {
    thresholds: [Duration; 3],
    enabled: [bool; 3],
    include_nat: bool,
    exclude_assured: bool,
    filter: Filter,
    timeouts: Option<Timeouts>,
    sockets: SocketCheck,
    require_confirmation: bool,
}

impl Default for OrphanPolicy {
    fn default() -> Self {
        OrphanPolicy {
            thresholds: [
                Duration::from_secs(3600),
                Duration::from_secs(60),
                Duration::from_secs(300),
            ],
            enabled: [true; 3],
            include_nat: false,
            exclude_assured: false,
            filter: Filter::new(),
            timeouts: None,
            sockets: SocketCheck::Namespace,
            require_confirmation: false,
        }
    }
}

/// What the classification of one flow found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Not an orphan (another state, below the threshold, excluded).
    No,
    /// In an enabled category but without an idle estimate.
    Unestimated,
    /// An orphan.
    Orphan {
        category: OrphanCategory,
        idle: Duration,
        age: Option<Duration>,
    },
    /// An orphan by the estimate with a local end: its evidence waits for the
    /// socket table, read after the dump ([`OrphanScan::settle`]).
    Pending {
        category: OrphanCategory,
        idle: Duration,
        age: Option<Duration>,
    },
}

impl OrphanPolicy {
    /// The default policy (see the table above).
    pub fn new() -> Self {
        OrphanPolicy::default()
    }

    /// Minimum idle time of an [`IdleEstablished`](OrphanCategory::IdleEstablished)
    /// orphan (default 1 hour).
    pub fn idle_established(mut self, threshold: Duration) -> Self {
        self.thresholds[OrphanCategory::IdleEstablished.index()] = threshold;
        self
    }

    /// Minimum age of a [`LongUnreplied`](OrphanCategory::LongUnreplied) orphan
    /// (default 60 s).
    pub fn unreplied(mut self, threshold: Duration) -> Self {
        self.thresholds[OrphanCategory::LongUnreplied.index()] = threshold;
        self
    }

    /// Minimum idle time of a
    /// [`LingeringHalfClosed`](OrphanCategory::LingeringHalfClosed) orphan
    /// (default 300 s).
    pub fn half_closed(mut self, threshold: Duration) -> Self {
        self.thresholds[OrphanCategory::LingeringHalfClosed.index()] = threshold;
        self
    }

    /// Sets the threshold of any category.
    pub fn threshold(mut self, category: OrphanCategory, threshold: Duration) -> Self {
        self.thresholds[category.index()] = threshold;
        self
    }

    /// Turns one category on or off (all are on by default).
    pub fn enable(mut self, category: OrphanCategory, on: bool) -> Self {
        self.enabled[category.index()] = on;
        self
    }

    /// Only this category (the others off).
    pub fn only(mut self, category: OrphanCategory) -> Self {
        self.enabled = [false; 3];
        self.enabled[category.index()] = true;
        self
    }

    /// Whether NATed flows can be orphans (default `false`). A flow counts as
    /// NATed when it has `SRC_NAT` or `DST_NAT`, or when its reply tuple is not
    /// the reverse of its original one (addresses, ports, ICMP id; GRE keys are
    /// not compared, PPTP changes them without NAT).
    pub fn include_nat(mut self, include: bool) -> Self {
        self.include_nat = include;
        self
    }

    /// Whether `ASSURED` flows are spared (default `false`).
    pub fn exclude_assured(mut self, exclude: bool) -> Self {
        self.exclude_assured = exclude;
        self
    }

    /// Restricts the candidates to the flows `filter` selects (e.g. a zone, a
    /// protocol, a mark that no `ct timeout` policy uses). The kernel evaluates
    /// what it can of it, as for [`Conntrack::dump_filtered`].
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Uses these timeouts instead of reading the namespace's sysctls, e.g. the
    /// values of an `nft ct timeout` policy that applies to every candidate
    /// (restrict the candidates to those flows with [`OrphanPolicy::filter`]).
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = Some(timeouts);
        self
    }

    /// The threshold of a category.
    pub fn threshold_of(&self, category: OrphanCategory) -> Duration {
        self.thresholds[category.index()]
    }

    /// Whether a category is enabled.
    pub fn is_enabled(&self, category: OrphanCategory) -> bool {
        self.enabled[category.index()]
    }

    /// Which socket tables give [`Evidence`] (default
    /// [`SocketCheck::Namespace`]). With [`SocketCheck::Off`] every orphan is
    /// suspected, and a policy that requires confirmation selects nothing.
    pub fn sockets(mut self, check: SocketCheck) -> Self {
        self.sockets = check;
        self
    }

    /// Selects only [`Confirmed`](Evidence::Confirmed) orphans (suspected ones
    /// are counted in [`OrphanCounts::suspected`] but neither listed nor
    /// deleted): what an automated cleanup should use. Turns a socket check
    /// that is off into [`SocketCheck::Namespace`].
    pub fn require_confirmation(mut self, on: bool) -> Self {
        self.require_confirmation = on;
        if on && self.sockets == SocketCheck::Off {
            self.sockets = SocketCheck::Namespace;
        }
        self
    }

    /// The socket check.
    pub fn socket_check(&self) -> SocketCheck {
        self.sockets
    }

    /// Whether only confirmed orphans are selected.
    pub fn requires_confirmation(&self) -> bool {
        self.require_confirmation
    }

    /// Whether NATed flows can be orphans.
    pub fn includes_nat(&self) -> bool {
        self.include_nat
    }

    /// Whether `ASSURED` flows are spared.
    pub fn excludes_assured(&self) -> bool {
        self.exclude_assured
    }

    /// The filter restricting the candidates.
    pub fn candidates(&self) -> &Filter {
        &self.filter
    }

    /// The timeouts given with [`OrphanPolicy::timeouts`], if any.
    pub fn timeouts_override(&self) -> Option<&Timeouts> {
        self.timeouts.as_ref()
    }

    /// Judges one flow (e.g. from a dump you run yourself or from events)
    /// against the whole policy, with the timeouts of the flow's namespace
    /// (from [`Sysctl::timeouts`]; the policy's own [`timeouts`](OrphanPolicy::timeouts)
    /// are not consulted here). Returns the category and the idle estimate of
    /// an orphan, `None` otherwise.
    pub fn classify<S>(
        &self,
        flow: &Flow<S>,
        timeouts: &Timeouts,
    ) -> Option<(OrphanCategory, Duration)> {
        if !self.filter.matches(flow) {
            return None;
        }
        match self.verdict(flow, timeouts, SystemTime::now()) {
            Verdict::Orphan { category, idle, .. } => Some((category, idle)),
            _ => None,
        }
    }

    /// Everything but the candidate filter (checked by the caller, partly in the kernel).
    fn verdict<S>(&self, flow: &Flow<S>, timeouts: &Timeouts, now: SystemTime) -> Verdict {
        let category = if !flow.status.seen_reply() {
            OrphanCategory::LongUnreplied
        } else if flow.protocol() == proto::TCP {
            match flow.tcp_state() {
                Some(TcpState::Established) => OrphanCategory::IdleEstablished,
                Some(
                    TcpState::FinWait
                    | TcpState::CloseWait
                    | TcpState::LastAck
                    | TcpState::TimeWait
                    | TcpState::Close,
                ) => OrphanCategory::LingeringHalfClosed,
                _ => return Verdict::No,
            }
        } else {
            return Verdict::No;
        };
        if !self.is_enabled(category)
            || flow.status.dying()
            || (!self.include_nat && translated(flow))
            || (self.exclude_assured && flow.status.assured())
        {
            return Verdict::No;
        }
        let Some(idle) = timeouts.idle(flow) else {
            return Verdict::Unestimated;
        };
        let age = flow
            .timestamp
            .and_then(|t| t.start)
            .and_then(|start| UNIX_EPOCH.checked_add(Duration::from_nanos(start)))
            .and_then(|start| now.duration_since(start).ok());
        let measured = match category {
            OrphanCategory::LongUnreplied => age.map_or(idle, |age| age.max(idle)),
            _ => idle,
        };
        if measured >= self.threshold_of(category) {
            Verdict::Orphan {
                category,
                idle,
                age,
            }
        } else {
            Verdict::No
        }
    }

    /// The candidate filter narrowed by what the enabled categories and the
    /// exclusions imply, so that the kernel can drop more flows before they are
    /// sent (protocol TCP and `SEEN_REPLY` set when only TCP categories are on;
    /// `SEEN_REPLY` clear for unreplied flows only; `SRC_NAT`/`DST_NAT` clear
    /// without NAT; `ASSURED` clear when excluded). Never wider than the policy:
    /// `None` when the policy can select nothing.
    fn prefilter(&self) -> Option<Filter> {
        let unreplied = self.is_enabled(OrphanCategory::LongUnreplied);
        let replied_tcp = self.is_enabled(OrphanCategory::IdleEstablished)
            || self.is_enabled(OrphanCategory::LingeringHalfClosed);
        if !unreplied && !replied_tcp {
            return None;
        }
        let mut filter = self.filter.clone();
        let mut set = Status::empty();
        let mut unset = Status::empty();
        if !self.include_nat {
            unset |= Status::SRC_NAT | Status::DST_NAT;
        }
        if self.exclude_assured {
            unset |= Status::ASSURED;
        }
        if unreplied && !replied_tcp {
            unset |= Status::SEEN_REPLY;
        }
        if replied_tcp && !unreplied {
            set |= Status::SEEN_REPLY;
            match filter.protocols {
                Some(protocols) if (protocols[0] >> proto::TCP) & 1 == 0 => return None,
                _ => filter.protocols = Filter::new().protocol(proto::TCP).protocols,
            }
        }
        // A bit the user's filter requires set that the policy requires clear
        // (or the reverse) selects nothing; adding it would change the meaning.
        if filter.status_set.intersects(unset) || filter.status_unset.intersects(set) {
            return None;
        }
        filter.status_set |= set;
        filter.status_unset |= unset;
        Some(filter)
    }
}

/// Whether the flow is NATed: a NAT status bit, or a reply tuple that is not
/// the reverse of the original one.
fn translated<S>(flow: &Flow<S>) -> bool {
    if flow.status.nat() {
        return true;
    }
    let (orig, reply) = (&flow.orig, &flow.reply);
    if orig.src != reply.dst || orig.dst != reply.src {
        return true;
    }
    match (orig.l4, reply.l4) {
        (
            L4::Ports { src, dst },
            L4::Ports {
                src: rsrc,
                dst: rdst,
            },
        ) => orig.protocol != proto::GRE && (src != rdst || dst != rsrc),
        (L4::Icmp { id, .. }, L4::Icmp { id: rid, .. }) => id != rid,
        _ => false,
    }
}

/// One orphaned flow found by [`Conntrack::orphans`].
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Orphan {
    /// The flow as dumped (its `id` and `zone` identify it for
    /// [`Conntrack::delete_flow`]).
    pub flow: Flow,
    /// Why it is an orphan.
    pub category: OrphanCategory,
    /// Estimated time since its last accepted packet (configured timeout minus
    /// `CTA_TIMEOUT`, up to 1 s high). Always present for the current categories.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serialize::optional_seconds")
    )]
    pub idle: Option<Duration>,
    /// Time since the flow was created, from `CTA_TIMESTAMP_START` (only with
    /// `nf_conntrack_timestamp=1` set before the flow was created).
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serialize::optional_seconds")
    )]
    pub age: Option<Duration>,
    /// What the socket table says: [`Evidence::Confirmed`] or
    /// [`Evidence::Suspected`] (alive flows are never orphans).
    pub evidence: Evidence,
}

/// Orphans per category, from [`Conntrack::count_orphans`] or
/// [`Conntrack::delete_orphans_counted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct OrphanCounts {
    /// [`OrphanCategory::IdleEstablished`] orphans.
    pub idle_established: u64,
    /// [`OrphanCategory::LongUnreplied`] orphans.
    pub long_unreplied: u64,
    /// [`OrphanCategory::LingeringHalfClosed`] orphans.
    pub lingering_half_closed: u64,
    /// Flows that passed the candidate filter and were judged.
    pub candidates: u64,
    /// Candidates in an enabled category that could not be judged for lack of an
    /// idle estimate (fixed timeout, offloaded, or a TCP remaining time within the
    /// unacknowledged/retransmission timeouts): never orphans.
    pub unestimated: u64,
    /// Orphans by the estimate whose local end has no socket
    /// ([`Evidence::Confirmed`]); included in the category counts.
    pub confirmed: u64,
    /// Orphans by the estimate only ([`Evidence::Suspected`]); included in the
    /// category counts unless the policy requires confirmation.
    pub suspected: u64,
    /// Idle enough by the estimate but with a live socket
    /// ([`Evidence::Alive`]): not orphans, not in the category counts.
    pub alive: u64,
}

impl OrphanCounts {
    /// Orphans of one category.
    pub fn get(&self, category: OrphanCategory) -> u64 {
        match category {
            OrphanCategory::IdleEstablished => self.idle_established,
            OrphanCategory::LongUnreplied => self.long_unreplied,
            OrphanCategory::LingeringHalfClosed => self.lingering_half_closed,
        }
    }

    /// Orphans of every category.
    pub fn total(&self) -> u64 {
        self.idle_established + self.long_unreplied + self.lingering_half_closed
    }

    /// `(category, count)` for every category, in [`OrphanCategory::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (OrphanCategory, u64)> + '_ {
        OrphanCategory::ALL.iter().map(move |c| (*c, self.get(*c)))
    }

    fn record(&mut self, verdict: &Verdict) {
        self.candidates += 1;
        match verdict {
            Verdict::No => {}
            Verdict::Unestimated => self.unestimated += 1,
            Verdict::Orphan { category, .. } | Verdict::Pending { category, .. } => {
                self.add(*category)
            }
        }
    }

    fn remove(&mut self, category: OrphanCategory) {
        match category {
            OrphanCategory::IdleEstablished => self.idle_established -= 1,
            OrphanCategory::LongUnreplied => self.long_unreplied -= 1,
            OrphanCategory::LingeringHalfClosed => self.lingering_half_closed -= 1,
        }
    }

    fn add(&mut self, category: OrphanCategory) {
        match category {
            OrphanCategory::IdleEstablished => self.idle_established += 1,
            OrphanCategory::LongUnreplied => self.long_unreplied += 1,
            OrphanCategory::LingeringHalfClosed => self.lingering_half_closed += 1,
        }
    }
}

/// Judges flows one at a time against an [`OrphanPolicy`], counting per
/// category: the classifier behind [`Conntrack::count_orphans`], for a pass
/// that does several things at once (a health report that groups the table
/// and counts its orphans in one dump) or for flows from events.
///
/// Unlike [`OrphanPolicy::classify`] it applies the whole selection of
/// [`Conntrack::orphans`] (the candidate filter narrowed by the enabled
/// categories and exclusions), fixes "now" once, and keeps the counts.
///
/// ```no_run
/// use conntrack::sysctl::Sysctl;
/// use conntrack::{Conntrack, OrphanPolicy, OrphanScan};
/// # fn main() -> conntrack::Result<()> {
/// let mut ct = Conntrack::open()?;
/// let policy = OrphanPolicy::new();
/// let mut scan = OrphanScan::new(&policy, Sysctl::new().timeouts()?);
/// let mut dump = ct.dump()?;
/// while let Some(flow) = dump.next_flow() {
///     if let Some((category, idle)) = scan.observe(&flow?) {
///         println!("{category} idle {idle:?}");
///     }
/// }
/// println!("{} orphans", scan.counts().total());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OrphanScan<'p> {
    policy: &'p OrphanPolicy,
    prefilter: Option<Filter>,
    /// `(mask, wanted)` when the prefilter only tests status bits (the default
    /// policy: no NAT bit): tested inline instead of through [`Filter::matches`].
    status_only: Option<(Status, Status)>,
    timeouts: Timeouts,
    now: SystemTime,
    counts: OrphanCounts,
    /// The socket evidence, when the policy checks sockets (the library's own
    /// passes; a scan built with [`OrphanScan::new`] calls every orphan suspected).
    evidence: Option<SocketEvidence>,
    /// Orphans by the estimate with a local end, in dump order, waiting for
    /// the socket table.
    pending: Vec<(Ends, OrphanCategory)>,
}

impl<'p> OrphanScan<'p> {
    /// A scan with `policy` and the timeouts of the namespace the flows live in
    /// (from [`Sysctl::timeouts`] in that namespace; the policy's own
    /// [`timeouts`](OrphanPolicy::timeouts) are not consulted). "Now" is fixed here.
    pub fn new(policy: &'p OrphanPolicy, timeouts: Timeouts) -> Self {
        let prefilter = policy.prefilter();
        let status_only = prefilter.as_ref().and_then(|filter| {
            let bare = Filter {
                status_set: Status::empty(),
                status_unset: Status::empty(),
                ..filter.clone()
            };
            (bare == Filter::new())
                .then_some((filter.status_set | filter.status_unset, filter.status_set))
        });
        OrphanScan {
            policy,
            prefilter,
            status_only,
            timeouts,
            now: SystemTime::now(),
            counts: OrphanCounts::default(),
            evidence: None,
            pending: Vec::new(),
        }
    }

    /// Checks orphans with a local end against the socket table (read by
    /// [`settle`](Self::settle) after the dump).
    pub(crate) fn with_evidence(mut self, evidence: Option<SocketEvidence>) -> Self {
        self.evidence = evidence;
        self
    }

    /// After the dump: reads the socket tables and judges the pending orphans,
    /// completing the counts. Returns their evidence in the order they were
    /// found.
    pub(crate) fn settle(&mut self) -> Vec<Evidence> {
        let Some(evidence) = self.evidence.as_mut() else {
            return Vec::new();
        };
        if !self.pending.is_empty() {
            evidence.read_sockets();
        }
        let mut found = Vec::with_capacity(self.pending.len());
        for (ends, category) in &self.pending {
            let verdict = evidence.judge(ends);
            match verdict {
                Evidence::Alive => self.counts.alive += 1,
                Evidence::Confirmed => {
                    self.counts.confirmed += 1;
                    self.counts.add(*category);
                }
                Evidence::Suspected => {
                    self.counts.suspected += 1;
                    if !self.policy.require_confirmation {
                        self.counts.add(*category);
                    }
                }
            }
            found.push(verdict);
        }
        found
    }

    /// Looks the sockets of the confirmed pending orphans `which` up again,
    /// one exact query each, right before they are deleted; returns which are
    /// still dead. One found alive moves from confirmed (and its category) to
    /// alive in the counts.
    pub(crate) fn recheck(&mut self, which: &[usize]) -> Vec<bool> {
        let Some(evidence) = self.evidence.as_ref() else {
            return vec![true; which.len()];
        };
        let ends: Vec<Ends> = which.iter().map(|&i| self.pending[i].0).collect();
        let alive = evidence.lookups(&ends);
        for (&i, &alive) in which.iter().zip(&alive) {
            if alive {
                self.counts.confirmed -= 1;
                self.counts.alive += 1;
                self.counts.remove(self.pending[i].1);
            }
        }
        alive.into_iter().map(|a| !a).collect()
    }

    /// Takes the confirmed pending orphan `i` out of the counts: read again
    /// before its delete, it was gone or had changed since it was judged.
    pub(crate) fn unconfirm(&mut self, i: usize) {
        self.counts.confirmed -= 1;
        self.counts.remove(self.pending[i].1);
    }

    /// Judges one flow: its category and idle estimate if it is an orphan.
    /// Flows outside the policy's selection are not counted as candidates.
    pub fn observe<S>(&mut self, flow: &Flow<S>) -> Option<(OrphanCategory, Duration)> {
        match self.judge(flow) {
            Verdict::Orphan { category, idle, .. } => Some((category, idle)),
            _ => None,
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> OrphanCounts {
        self.counts
    }

    #[inline]
    fn judge<S>(&mut self, flow: &Flow<S>) -> Verdict {
        let candidate = match (self.status_only, &self.prefilter) {
            (Some((mask, wanted)), _) => flow.status & mask == wanted,
            (None, Some(prefilter)) => prefilter.matches(flow),
            (None, None) => false,
        };
        if !candidate {
            return Verdict::No;
        }
        let verdict = self.policy.verdict(flow, &self.timeouts, self.now);
        let Verdict::Orphan {
            category,
            idle,
            age,
        } = verdict
        else {
            self.counts.record(&verdict);
            return verdict;
        };
        self.counts.candidates += 1;
        if let Some(ends) = self.evidence.as_ref().and_then(|e| e.ends(flow)) {
            self.pending.push((ends, category));
            return Verdict::Pending {
                category,
                idle,
                age,
            };
        }
        self.counts.suspected += 1;
        if self.policy.require_confirmation {
            return Verdict::No;
        }
        self.counts.add(category);
        verdict
    }
}

impl Conntrack {
    /// The per-protocol timeouts of this handle's namespace, read through
    /// [`Sysctl`] inside it (on a helper thread for another namespace).
    pub(crate) fn namespace_timeouts(&self) -> Result<Timeouts> {
        let read = || Sysctl::new().timeouts();
        match self.netns.as_deref() {
            None => read(),
            Some(netns) => netns.run(read)?,
        }
    }

    /// The policy's own timeouts, else the namespace's.
    pub(crate) fn orphan_timeouts(&self, policy: &OrphanPolicy) -> Result<Timeouts> {
        match policy.timeouts {
            Some(timeouts) => Ok(timeouts),
            None => self.namespace_timeouts(),
        }
    }

    /// The socket evidence a policy asks for: the namespaces to read and
    /// their local addresses (read now, before the conntrack dump). `None`
    /// when the check is off. Failures are not errors: a namespace whose
    /// addresses cannot be read has no local address, so its flows stay
    /// suspected.
    pub(crate) fn socket_evidence(&self, policy: &OrphanPolicy) -> Option<SocketEvidence> {
        let mut namespaces = vec![self.netns.clone()];
        match policy.sockets {
            SocketCheck::Off => return None,
            SocketCheck::Namespace => {}
            SocketCheck::AllNamespaces => {
                let own = match self.netns.as_deref() {
                    Some(file) => file.id().ok(),
                    None => NetnsId::current().ok(),
                };
                for entry in crate::netns::list_all().unwrap_or_default() {
                    if Some(entry.id) == own {
                        continue;
                    }
                    if let Ok(file) = entry.open() {
                        namespaces.push(Some(Arc::new(file)));
                    }
                }
            }
        }
        let mut locals = LocalAddrs::default();
        for (index, netns) in namespaces.iter().enumerate() {
            if let Ok(addrs) = sockets::read_addresses(netns.as_deref()) {
                for addr in addrs {
                    locals.insert(addr, index);
                }
            }
        }
        Some(SocketEvidence {
            namespaces,
            locals,
            sockets: None,
        })
    }

    /// One streaming pass: every orphan (and every orphan waiting for its
    /// evidence: the last argument) is handed to `found`; then the socket
    /// tables are read and the evidence of the waiting ones returned, in order.
    fn scan_orphans(
        &mut self,
        policy: &OrphanPolicy,
        mut found: impl FnMut(&FlowRef<'_>, OrphanCategory, Duration, Option<Duration>, bool),
    ) -> Result<(OrphanCounts, Vec<Evidence>)> {
        policy.filter.validate()?;
        let mut scan = OrphanScan::new(policy, self.orphan_timeouts(policy)?)
            .with_evidence(self.socket_evidence(policy));
        let Some(prefilter) = scan.prefilter.clone() else {
            return Ok((scan.counts, Vec::new()));
        };
        let plan = self.plan(&prefilter, false)?;
        let mut dump = self.dump_pushdown(&plan)?;
        loop {
            let mut verdict = Verdict::No;
            let next = dump.next_flow_where(|flow| {
                verdict = scan.judge(flow);
                matches!(verdict, Verdict::Orphan { .. } | Verdict::Pending { .. })
            });
            match next {
                None => break,
                Some(Ok(flow)) => match verdict {
                    Verdict::Orphan {
                        category,
                        idle,
                        age,
                    } => found(&flow, category, idle, age, false),
                    Verdict::Pending {
                        category,
                        idle,
                        age,
                    } => found(&flow, category, idle, age, true),
                    _ => {}
                },
                Some(Err(Error::Decode(_))) => continue,
                Some(Err(e)) => return Err(e),
            }
        }
        drop(dump);
        let evidence = scan.settle();
        Ok((scan.counts, evidence))
    }

    /// The orphaned flows `policy` selects, in one streaming dump (kernel
    /// prefilter, classification in userspace; see [`OrphanPolicy`] for the
    /// categories and the caveats of the idle estimate), each with its
    /// [`Evidence`] from the socket tables read after the dump (flows with a
    /// live socket are left out). Timeouts are read once, in this handle's
    /// namespace, unless the policy brings its own.
    pub fn orphans(&mut self, policy: &OrphanPolicy) -> Result<Vec<Orphan>> {
        let mut found = Vec::new();
        let (_, evidence) = self.scan_orphans(policy, |flow, category, idle, age, pending| {
            found.push((
                Orphan {
                    flow: flow.to_owned_flow(),
                    category,
                    idle: Some(idle),
                    age,
                    evidence: Evidence::Suspected,
                },
                pending,
            ));
        })?;
        let mut evidence = evidence.into_iter();
        let mut orphans = Vec::with_capacity(found.len());
        for (mut orphan, pending) in found {
            if pending {
                orphan.evidence = evidence.next().unwrap_or(Evidence::Suspected);
            }
            let selected = match orphan.evidence {
                Evidence::Confirmed => true,
                Evidence::Suspected => !policy.require_confirmation,
                Evidence::Alive => false,
            };
            if selected {
                orphans.push(orphan);
            }
        }
        Ok(orphans)
    }

    /// Counts the orphans of each category, and per [`Evidence`], in one
    /// streaming pass without owning any flow. Same selection as
    /// [`Conntrack::orphans`].
    pub fn count_orphans(&mut self, policy: &OrphanPolicy) -> Result<OrphanCounts> {
        Ok(self.scan_orphans(policy, |_, _, _, _, _| {})?.0)
    }

    /// Deletes the orphans `policy` selects (or only counts them with
    /// `options.dry_run`; choosing a dry run by default is the caller's job, as
    /// `examples/gc.rs` does). One streaming dump with the kernel prefilter;
    /// each suspected orphan is deleted as it is found, each orphan with a
    /// local end after the socket tables were read (module docs: the read
    /// order) and, if confirmed, right after it was read again unchanged and
    /// an exact lookup of its sockets proved it still has none (steps 4 to 6
    /// of the module docs). Every delete names the flow's tuple, zone and
    /// id, so a newer flow that reused the tuple is spared; deletes are
    /// pipelined on a second socket ([`DeletePath::DumpAndDelete`]; never a
    /// kernel flush, since no kernel filters on timeouts). `options.limit` and
    /// `options.rate` apply.
    ///
    /// A suspected flow judged idle and then refreshed by a packet before its
    /// delete arrives is still deleted: caveat 7 of [`OrphanPolicy`]; require
    /// confirmation to delete only flows proven dead.
    pub fn delete_orphans(
        &mut self,
        policy: &OrphanPolicy,
        options: DeleteOptions,
    ) -> Result<DeleteReport> {
        Ok(self.delete_orphans_counted(policy, options)?.0)
    }

    /// [`Conntrack::delete_orphans`], also counting per category the orphans it
    /// matched (deleted, or would delete in a dry run), from the same pass.
    pub fn delete_orphans_counted(
        &mut self,
        policy: &OrphanPolicy,
        options: DeleteOptions,
    ) -> Result<(DeleteReport, OrphanCounts)> {
        policy.filter.validate()?;
        let mut scan = OrphanScan::new(policy, self.orphan_timeouts(policy)?)
            .with_evidence(self.socket_evidence(policy));
        let Some(prefilter) = scan.prefilter.clone() else {
            let report = DeleteReport {
                path: if options.dry_run {
                    DeletePath::DryRun
                } else {
                    DeletePath::DumpAndDelete
                },
                matched: 0,
                deleted: 0,
                already_gone: 0,
                failed: BTreeMap::new(),
                kernel_prefiltered: false,
            };
            return Ok((report, scan.counts));
        };
        let mut waiting: Vec<DeleteTarget> = Vec::new();
        let mut report =
            self.dump_and_delete_where(&prefilter, options, |flow| match scan.judge(flow) {
                Verdict::Orphan { .. } => true,
                Verdict::Pending { .. } => {
                    waiting.push(DeleteTarget::of(flow));
                    false
                }
                _ => false,
            })?;
        if waiting.is_empty() {
            return Ok((report, scan.counts));
        }
        let evidence = scan.settle();
        let mut chosen: Vec<usize> = (0..waiting.len())
            .filter(|&i| match evidence[i] {
                Evidence::Confirmed => true,
                Evidence::Suspected => !policy.require_confirmation,
                Evidence::Alive => false,
            })
            .collect();
        if let Some(limit) = options.limit {
            chosen.truncate(limit.saturating_sub(report.matched) as usize);
        }
        #[cfg(feature = "testing")]
        crate::testing::hooks::fire_before_orphan_recheck(|| {
            chosen
                .iter()
                .filter(|&&i| evidence[i] == Evidence::Confirmed)
                .map(|&i| waiting[i].orig)
                .collect()
        });
        // Steps (4) to (6) of the module docs, in small batches so that each
        // proof comes right before the delete it allows: each confirmed flow
        // is read again (spared when gone, replaced, moved or refreshed since
        // it was judged), then its sockets are looked up exactly (spared when
        // one answers), then it is deleted by id.
        for batch in chosen.chunks(16) {
            let mut targets: Vec<DeleteTarget> = Vec::with_capacity(batch.len());
            let mut unchanged: Vec<usize> = Vec::with_capacity(batch.len());
            for &i in batch {
                let target = waiting[i];
                if evidence[i] != Evidence::Confirmed {
                    targets.push(target);
                } else if options.dry_run {
                    unchanged.push(i);
                } else {
                    match self.get(&target.orig, target.zone.unwrap_or(0))? {
                        Some(now) if target.unchanged_in(&now) => unchanged.push(i),
                        // Gone already, another flow now, or a packet moved
                        // or refreshed it: nothing proven dead to delete.
                        _ => scan.unconfirm(i),
                    }
                }
            }
            let dead = scan.recheck(&unchanged);
            targets.extend(
                unchanged
                    .iter()
                    .zip(&dead)
                    .filter(|(_, dead)| **dead)
                    .map(|(&i, _)| waiting[i]),
            );
            self.delete_targets(&targets, options, &mut report)?;
        }
        Ok((report, scan.counts))
    }
}

/// The two ends of a flow that a socket could own, for TCP and UDP.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ends {
    protocol: u8,
    ends: [Lookup; 2],
    count: u8,
}

impl Ends {
    fn iter(&self) -> impl Iterator<Item = &Lookup> {
        self.ends[..usize::from(self.count)].iter()
    }
}

/// The socket evidence of one pass: the namespaces consulted (index 0: the
/// handle's own), their local addresses (read before the conntrack dump) and
/// their sockets (read after it).
#[derive(Debug, Clone)]
pub(crate) struct SocketEvidence {
    namespaces: Vec<Option<Arc<NetnsFile>>>,
    locals: LocalAddrs,
    sockets: Option<SocketTable>,
}

impl SocketEvidence {
    /// The ends of `flow` at a local address, or `None` when it has none (or
    /// is neither TCP nor UDP): then it can only be suspected.
    #[inline]
    fn ends<S>(&self, flow: &Flow<S>) -> Option<Ends> {
        let protocol = flow.protocol();
        if protocol != proto::TCP && protocol != proto::UDP {
            return None;
        }
        let mut ends = Ends {
            protocol,
            ends: [Lookup {
                protocol,
                local: 0,
                local_port: 0,
                remote: 0,
                remote_port: 0,
            }; 2],
            count: 0,
        };
        for tuple in [&flow.orig, &flow.reply] {
            let L4::Ports { src, dst } = tuple.l4 else {
                continue;
            };
            let local = key_of(tuple.src);
            if self.locals.namespaces_of(local) == 0 {
                continue;
            }
            ends.ends[usize::from(ends.count)] = Lookup {
                protocol,
                local,
                local_port: src,
                remote: key_of(tuple.dst),
                remote_port: dst,
            };
            ends.count += 1;
        }
        (ends.count > 0).then_some(ends)
    }

    /// Reads the socket tables of every namespace with a local address; a
    /// namespace whose table cannot be read loses its addresses (its flows
    /// become suspected, never confirmed).
    fn read_sockets(&mut self) {
        let mut table = SocketTable::default();
        for (index, netns) in self.namespaces.iter().enumerate() {
            let read = sockets::read_in(netns.as_deref(), |socket| {
                let mut own = SocketTable::default();
                own.fill(socket)?;
                Ok(own)
            });
            match read {
                Ok(own) => table.merge(own),
                Err(_) => self.locals.forget(index),
            }
        }
        self.sockets = Some(table);
    }

    fn judge(&self, ends: &Ends) -> Evidence {
        let Some(table) = &self.sockets else {
            return Evidence::Suspected;
        };
        let mut local = false;
        for end in ends.iter() {
            if self.locals.namespaces_of(end.local) == 0 {
                continue;
            }
            local = true;
            let owned = if ends.protocol == proto::TCP {
                table.has_tcp_key(&TcpKey::new(
                    end.local,
                    end.local_port,
                    end.remote,
                    end.remote_port,
                ))
            } else {
                table.has_udp_key(end.local, end.local_port)
            };
            if owned {
                return Evidence::Alive;
            }
        }
        if local {
            Evidence::Confirmed
        } else {
            Evidence::Suspected
        }
    }

    /// Exact lookups of every local end of each flow, in each namespace that
    /// owns its address: whether a socket answers (a lookup that fails
    /// counts as alive: nothing is proven).
    fn lookups(&self, flows: &[Ends]) -> Vec<bool> {
        let mut alive = vec![false; flows.len()];
        for (index, netns) in self.namespaces.iter().enumerate() {
            let bit = 1u64 << index.min(63);
            let mut queries = Vec::new();
            let mut owners = Vec::new();
            for (i, ends) in flows.iter().enumerate() {
                for end in ends.iter() {
                    if self.locals.namespaces_of(end.local) & bit != 0 {
                        queries.push(*end);
                        owners.push(i);
                    }
                }
            }
            if queries.is_empty() {
                continue;
            }
            match sockets::read_in(netns.as_deref(), |socket| socket.lookup(&queries)) {
                Ok(found) => {
                    for (owner, found) in owners.iter().zip(found) {
                        alive[*owner] |= found;
                    }
                }
                Err(_) => {
                    for owner in owners {
                        alive[owner] = true;
                    }
                }
            }
        }
        alive
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{ProtoInfo, TcpInfo, Timestamp, Tuple};
    use crate::sysctl::Timeout;

    fn tcp(state: TcpState, status: Status, remaining: u32) -> Flow {
        let orig = Tuple::tcp(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80));
        Flow {
            orig,
            reply: orig.reversed(),
            status: status | Status::CONFIRMED,
            timeout: Some(remaining),
            protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
                state: Some(state),
                ..TcpInfo::default()
            })),
            ..Flow::default()
        }
    }

    fn udp(status: Status, remaining: u32) -> Flow {
        let orig = Tuple::udp(([10, 0, 0, 1], 5353), ([10, 0, 0, 9], 53));
        Flow {
            orig,
            reply: orig.reversed(),
            status: status | Status::CONFIRMED,
            timeout: Some(remaining),
            ..Flow::default()
        }
    }

    const REPLIED: Status = Status::SEEN_REPLY.union(Status::ASSURED);

    fn judge(policy: &OrphanPolicy, flow: &Flow) -> Option<(OrphanCategory, u64)> {
        let now = SystemTime::now();
        match policy.verdict(flow, &Timeouts::kernel_defaults(), now) {
            Verdict::Orphan { category, idle, .. } => Some((category, idle.as_secs())),
            _ => None,
        }
    }

    #[test]
    fn categories_and_thresholds() {
        let policy = OrphanPolicy::new();
        // 432000 - 428000 = 4000 s idle >= 1 h.
        let idle = tcp(TcpState::Established, REPLIED, 428_000);
        assert_eq!(
            judge(&policy, &idle),
            Some((OrphanCategory::IdleEstablished, 4000))
        );
        let busy = tcp(TcpState::Established, REPLIED, 431_990);
        assert_eq!(judge(&policy, &busy), None);
        // Within the UNACK window: no estimate, never an orphan.
        let unack = tcp(TcpState::Established, REPLIED, 100);
        assert_eq!(judge(&policy, &unack), None);
        assert_eq!(
            policy.verdict(&unack, &Timeouts::kernel_defaults(), SystemTime::now()),
            Verdict::Unestimated
        );
        // Unreplied UDP: 30 s configured, 5 left: 25 s idle < 60 s.
        let unreplied = udp(Status::empty(), 5);
        assert_eq!(judge(&policy, &unreplied), None);
        let short = OrphanPolicy::new().unreplied(Duration::from_secs(20));
        assert_eq!(
            judge(&short, &unreplied),
            Some((OrphanCategory::LongUnreplied, 25))
        );
        // Replied UDP belongs to no category.
        assert_eq!(judge(&short, &udp(REPLIED, 1)), None);
        // TIME_WAIT: 120 - 10 = 110 s idle; default 300 s threshold, then 60 s.
        let time_wait = tcp(TcpState::TimeWait, REPLIED, 10);
        assert_eq!(judge(&policy, &time_wait), None);
        assert_eq!(
            judge(
                &OrphanPolicy::new().half_closed(Duration::from_secs(60)),
                &time_wait
            ),
            Some((OrphanCategory::LingeringHalfClosed, 110))
        );
        // SYN_SENT without reply: unreplied (120 - 10 = 110 s).
        let syn = tcp(TcpState::SynSent, Status::empty(), 10);
        assert_eq!(
            judge(&policy, &syn),
            Some((OrphanCategory::LongUnreplied, 110))
        );
        // A disabled category does not hand its flows to another one.
        let no_unreplied = OrphanPolicy::new().enable(OrphanCategory::LongUnreplied, false);
        assert_eq!(judge(&no_unreplied, &syn), None);
        assert_eq!(
            judge(
                &OrphanPolicy::new().only(OrphanCategory::LongUnreplied),
                &idle
            ),
            None
        );
    }

    #[test]
    fn exclusions() {
        let policy = OrphanPolicy::new();
        let mut fixed = tcp(TcpState::Established, REPLIED | Status::FIXED_TIMEOUT, 1000);
        assert_eq!(
            judge(&policy.clone().idle_established(Duration::ZERO), &fixed),
            None
        );
        fixed.status.remove(Status::FIXED_TIMEOUT);
        assert!(judge(&policy, &fixed).is_some());
        let mut offloaded = fixed.clone();
        offloaded.status |= Status::OFFLOAD;
        offloaded.timeout = None;
        assert_eq!(judge(&policy, &offloaded), None);
        let mut dying = fixed.clone();
        dying.status |= Status::DYING;
        assert_eq!(judge(&policy, &dying), None);
        // NAT by status bit or by tuple.
        let mut nat = fixed.clone();
        nat.status |= Status::SRC_NAT;
        assert_eq!(judge(&policy, &nat), None);
        assert!(judge(&policy.clone().include_nat(true), &nat).is_some());
        let mut rewritten = fixed.clone();
        rewritten.reply.src = [192, 168, 0, 7].into();
        assert_eq!(judge(&policy, &rewritten), None);
        let mut port_mapped = fixed.clone();
        port_mapped.reply = Tuple::tcp(([10, 0, 0, 2], 80), ([10, 0, 0, 1], 61000));
        assert_eq!(judge(&policy, &port_mapped), None);
        assert!(judge(&policy.clone().include_nat(true), &port_mapped).is_some());
        // ASSURED on request.
        assert_eq!(judge(&policy.clone().exclude_assured(true), &fixed), None);
        // The candidate filter (checked by classify).
        let timeouts = Timeouts::kernel_defaults();
        assert!(policy.classify(&fixed, &timeouts).is_some());
        let zoned = policy.clone().filter(Filter::new().zone(3));
        assert_eq!(zoned.classify(&fixed, &timeouts), None);
    }

    #[test]
    fn age_from_timestamps_for_unreplied_flows() {
        let policy = OrphanPolicy::new().only(OrphanCategory::LongUnreplied);
        let now = SystemTime::now();
        let created = now - Duration::from_secs(90);
        let start = created.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        // Refreshed a second ago (29 s left), created 90 s ago.
        let mut flow = udp(Status::empty(), 29);
        flow.timestamp = Some(Timestamp {
            start: Some(start),
            stop: None,
        });
        match policy.verdict(&flow, &Timeouts::kernel_defaults(), now) {
            Verdict::Orphan {
                category,
                idle,
                age,
            } => {
                assert_eq!(category, OrphanCategory::LongUnreplied);
                assert_eq!(idle, Duration::from_secs(1));
                assert_eq!(age.map(|a| a.as_secs()), Some(90));
            }
            other => panic!("{other:?}"),
        }
        // Age does not make an established flow idle.
        let mut established = tcp(TcpState::Established, REPLIED, 431_990);
        established.timestamp = flow.timestamp;
        assert!(matches!(
            OrphanPolicy::new().verdict(&established, &Timeouts::kernel_defaults(), now),
            Verdict::No
        ));
    }

    #[test]
    fn given_timeouts_replace_the_sysctls() {
        let mut timeouts = Timeouts::kernel_defaults();
        timeouts.set(Timeout::TcpEstablished, Duration::from_secs(7200));
        // With a 2 h policy, 5000 s left means 2200 s idle.
        let flow = tcp(TcpState::Established, REPLIED, 5000);
        let policy = OrphanPolicy::new().timeouts(timeouts);
        assert_eq!(
            policy.classify(&flow, policy.timeouts_override().unwrap()),
            None
        );
        let policy = policy.idle_established(Duration::from_secs(2000));
        assert_eq!(
            policy.classify(&flow, policy.timeouts_override().unwrap()),
            Some((OrphanCategory::IdleEstablished, Duration::from_secs(2200)))
        );
    }

    #[test]
    fn the_prefilter_never_widens_the_policy() {
        let all = OrphanPolicy::new().prefilter().unwrap();
        assert_eq!(all.status_unset, Status::SRC_NAT | Status::DST_NAT);
        assert!(all.protocols.is_none());
        let tcp_only = OrphanPolicy::new()
            .enable(OrphanCategory::LongUnreplied, false)
            .prefilter()
            .unwrap();
        assert_eq!(tcp_only.single_protocol(), Some(proto::TCP));
        assert_eq!(tcp_only.status_set, Status::SEEN_REPLY);
        let unreplied = OrphanPolicy::new()
            .only(OrphanCategory::LongUnreplied)
            .exclude_assured(true)
            .include_nat(true)
            .prefilter()
            .unwrap();
        assert_eq!(unreplied.status_unset, Status::SEEN_REPLY | Status::ASSURED);
        // The user's protocol set is narrowed, never extended.
        let udp_only = Filter::new().protocol(proto::UDP);
        assert_eq!(
            OrphanPolicy::new()
                .only(OrphanCategory::IdleEstablished)
                .filter(udp_only)
                .prefilter(),
            None
        );
        let tcp_or_udp = Filter::new().protocol(proto::UDP).protocol(proto::TCP);
        let narrowed = OrphanPolicy::new()
            .only(OrphanCategory::IdleEstablished)
            .filter(tcp_or_udp)
            .prefilter()
            .unwrap();
        assert_eq!(narrowed.single_protocol(), Some(proto::TCP));
        // Contradictions select nothing instead of flipping a condition.
        let wants_reply = Filter::new().status(Status::SEEN_REPLY);
        assert_eq!(
            OrphanPolicy::new()
                .only(OrphanCategory::LongUnreplied)
                .filter(wants_reply)
                .prefilter(),
            None
        );
        let wants_nat = Filter::new().status(Status::SRC_NAT);
        assert_eq!(
            OrphanPolicy::new().filter(wants_nat.clone()).prefilter(),
            None
        );
        assert!(OrphanPolicy::new()
            .include_nat(true)
            .filter(wants_nat)
            .prefilter()
            .is_some());
        let none = OrphanPolicy::new()
            .enable(OrphanCategory::IdleEstablished, false)
            .enable(OrphanCategory::LongUnreplied, false)
            .enable(OrphanCategory::LingeringHalfClosed, false);
        assert_eq!(none.prefilter(), None);
    }

    #[test]
    fn counts_add_up() {
        let mut counts = OrphanCounts::default();
        counts.record(&Verdict::No);
        counts.record(&Verdict::Unestimated);
        counts.record(&Verdict::Orphan {
            category: OrphanCategory::LongUnreplied,
            idle: Duration::ZERO,
            age: None,
        });
        assert_eq!(counts.candidates, 3);
        assert_eq!(counts.unestimated, 1);
        assert_eq!(counts.total(), 1);
        assert_eq!(counts.get(OrphanCategory::LongUnreplied), 1);
        assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), 1);
    }
}

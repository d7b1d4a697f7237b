// SPDX-License-Identifier: MIT OR Apache-2.0
//! Conntrack events: flows created, updated and destroyed, as the kernel
//! announces them to the ctnetlink multicast groups of one network namespace.
//!
//! ```no_run
//! use conntrack::events::{EventItem, EventKind, EventMask, Events};
//! # fn main() -> conntrack::Result<()> {
//! let mut events = Events::open(EventMask::NEW | EventMask::DESTROY)?;
//! loop {
//!     match events.next_event()? {
//!         EventItem::Event(event) if event.kind == EventKind::New => {
//!             println!("new {} -> {}", event.flow.orig.src, event.flow.orig.dst)
//!         }
//!         EventItem::Event(event) => println!("gone {}", event.flow.orig.src),
//!         EventItem::Lost { dropped } => eprintln!("lost {dropped:?} events: resync"),
//!         _ => {}
//!     }
//! }
//! # }
//! ```
//!
//! Contract:
//! * A subscriber ([`Events`]) owns one netlink socket joined to the groups of
//!   its [`EventMask`] (`NFNLGRP_CONNTRACK_NEW = 1`, `_UPDATE = 2`,
//!   `_DESTROY = 3`) in the namespace it was opened in, and one 64 KiB buffer.
//!   Needs `CAP_NET_ADMIN`.
//! * Expectation events (`conntrack -E expect`) are opt-in
//!   ([`EventOptions::expectations`]): the groups `NFNLGRP_CONNTRACK_EXP_NEW
//!   = 4`, `_EXP_UPDATE = 5`, `_EXP_DESTROY = 6`, whose messages
//!   (`IPCTNL_MSG_EXP_NEW` / `_DELETE` of `NFNL_SUBSYS_CTNETLINK_EXP`) become
//!   [`EventItem::Expectation`] items decoded like an expectation dump
//!   ([`decode_expectation`](crate::decode_expectation)), with the same lost-event
//!   reporting. A subscription may have flow events, expectation events or both.
//! * Each message is decoded by the same decoder as dumps
//!   ([`decode_flow`]). NEW and UPDATE events are both
//!   `IPCTNL_MSG_CT_NEW` and differ only by `NLM_F_CREATE|NLM_F_EXCL` in the
//!   header flags; DESTROY is `IPCTNL_MSG_CT_DELETE` (docs/ctnetlink.md §6.1).
//!   UPDATE events carry only what changed besides tuples, id, status and
//!   timeout; DESTROY events carry the final counters and timestamps.
//! * [`Events::next_event`] lends an [`EventItemRef`] borrowing the buffer (no
//!   allocation per event); the [`Iterator`] impl yields owned [`EventItem`]s.
//!   [`Events::next_event_timeout`] and [`Events::try_next_event`] wait at most
//!   so long, for polling consumers; [`AsRawFd`] allows any event loop.
//! * When the socket's queue overflowed, the kernel drops events and the next
//!   receive fails with `ENOBUFS`: that becomes one [`EventItem::Lost`] item
//!   and the stream goes on. Events queued before the overflow may still
//!   follow it, and drops may go on until the queue is drained. Rebuild state
//!   with [`Events::resync`]. A bigger buffer ([`Events::set_receive_buffer`])
//!   makes overflows rarer.
//! * A flow that fails to decode yields `Err(Error::Decode)` and the stream
//!   goes on; so does an oversized datagram (`Err(Error::Truncated)`).
//!
//! # Rebuilding state without gaps
//!
//! Subscribe **first**, then dump ([`EventOptions::subscribe_then_dump`],
//! [`Events::resync`]): every change after the subscription is queued on the
//! socket while the dump runs, so applying the queued events, in order, to the
//! dumped table converges to the kernel's table. Reconcile by the flow's
//! identity — original tuple, zone and [`FlowId`](crate::FlowId):
//! * a NEW or UPDATE event inserts or refreshes the flow (it may already be in
//!   the dump: a dump is not a snapshot, docs/ctnetlink.md §7.1);
//! * a DESTROY event removes it (it may be absent: destroyed before the dump
//!   reached it);
//! * a reused tuple gets a new id, so keying by id (with the tuple) keeps an
//!   old flow's DESTROY from removing its successor.
//!
//! `resync` first discards whatever is still queued (those events predate the
//! dump, which already reflects them), so that after a [`EventItem::Lost`] no
//! stale event from before the gap is applied on top of the fresh dump.
//!
//! The kernel trap (docs/ctnetlink.md §6.2, §12 trap 17): with `nf_conntrack_events=2`
//! (the default since 5.19) a flow only gets event storage if some ctnetlink
//! listener existed *when it was created*. Flows created while nobody listened
//! never send DESTROY, so a mirror built by a dump keeps them for ever. Either
//! keep a subscriber open from boot, set `net.netfilter.nf_conntrack_events=1`
//! in the namespace (per namespace, writable in child namespaces; see
//! [`crate::sysctl`]), or resync periodically.
//!
//! # Reliable delivery
//!
//! [`EventOptions::reliable`] sets `NETLINK_BROADCAST_ERROR` and
//! `NETLINK_NO_ENOBUFS` (what `conntrackd` does). A failed delivery is then
//! reported to the kernel, which reacts per event type (docs/ctnetlink.md §6.3):
//! * DESTROY: the flow is parked on the namespace's dying list and the event
//!   retried every 10 ms until it is delivered — none is lost. The price: a
//!   stalled or slow reader keeps destroyed flows counted against
//!   `nf_conntrack_max` (measured: after a flush, `count()` stayed at the
//!   number of undelivered events until the reader drained them), so a stuck
//!   consumer can fill the table and make the kernel drop new connections.
//! * NEW / UPDATE: the missed event bits are re-sent with the flow's *next*
//!   event, which may come much later (or only as its DESTROY).
//!
//! No [`EventItem::Lost`] is reported in this mode. Use it only with a
//! dedicated, fast reader and a large forced buffer.

use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conntrack::Conntrack;
use crate::consts::*;
use crate::decode::decode_flow;
use crate::dump::{Dump, DumpSummary};
use crate::error::{DecodeError, Error, Result};
use crate::expect::{decode_expectation_ref, Expectation};
use crate::flow::{Flow, FlowRef};
use crate::netns::{Netns, NetnsFile};
use crate::socket::{EventReceive, NlSocket, RECV_BUFFER_SIZE};
use crate::wire::{parse_error, Message, Messages};

// include/uapi/linux/netfilter/nfnetlink.h: enum nfnetlink_groups
const NFNLGRP_CONNTRACK_NEW: u32 = 1;
const NFNLGRP_CONNTRACK_UPDATE: u32 = 2;
const NFNLGRP_CONNTRACK_DESTROY: u32 = 3;
const NFNLGRP_CONNTRACK_EXP_NEW: u32 = 4;
const NFNLGRP_CONNTRACK_EXP_UPDATE: u32 = 5;
const NFNLGRP_CONNTRACK_EXP_DESTROY: u32 = 6;

bitflags::bitflags! {
    /// Which events to subscribe to. Each bit is the `nl_groups` bit of its
    /// multicast group (`1 << (NFNLGRP_CONNTRACK_* - 1)`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct EventMask: u32 {
        /// Flows created (`NFNLGRP_CONNTRACK_NEW`), including related flows.
        const NEW = 1 << (NFNLGRP_CONNTRACK_NEW - 1);
        /// Flows changed: state, status, mark, labels, ... (`NFNLGRP_CONNTRACK_UPDATE`).
        const UPDATE = 1 << (NFNLGRP_CONNTRACK_UPDATE - 1);
        /// Flows destroyed: expired, deleted, flushed (`NFNLGRP_CONNTRACK_DESTROY`).
        const DESTROY = 1 << (NFNLGRP_CONNTRACK_DESTROY - 1);
    }
}

impl Default for EventMask {
    /// All three kinds.
    fn default() -> Self {
        EventMask::all()
    }
}

impl EventMask {
    /// The multicast groups of the flow events in this mask.
    fn flow_groups(self) -> impl Iterator<Item = u32> {
        [
            (EventMask::NEW, NFNLGRP_CONNTRACK_NEW),
            (EventMask::UPDATE, NFNLGRP_CONNTRACK_UPDATE),
            (EventMask::DESTROY, NFNLGRP_CONNTRACK_DESTROY),
        ]
        .into_iter()
        .filter(move |(bit, _)| self.contains(*bit))
        .map(|(_, group)| group)
    }

    /// The multicast groups of the expectation events in this mask
    /// (`NFNLGRP_CONNTRACK_EXP_NEW`, `_EXP_UPDATE`, `_EXP_DESTROY`).
    fn expectation_groups(self) -> impl Iterator<Item = u32> {
        [
            (EventMask::NEW, NFNLGRP_CONNTRACK_EXP_NEW),
            (EventMask::UPDATE, NFNLGRP_CONNTRACK_EXP_UPDATE),
            (EventMask::DESTROY, NFNLGRP_CONNTRACK_EXP_DESTROY),
        ]
        .into_iter()
        .filter(move |(bit, _)| self.contains(*bit))
        .map(|(_, group)| group)
    }
}

/// What happened to a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// Created (`IPCTNL_MSG_CT_NEW` with `NLM_F_CREATE|NLM_F_EXCL`).
    New,
    /// Changed (`IPCTNL_MSG_CT_NEW` without those flags).
    Update,
    /// Destroyed (`IPCTNL_MSG_CT_DELETE`).
    Destroy,
}

impl EventKind {
    /// Classifies a netlink message header; `None` for anything that is not a
    /// conntrack event (other subsystems, `NLMSG_*` control messages).
    pub fn from_header(message_type: u16, flags: u16) -> Option<EventKind> {
        if message_type == ct_msg_type(IPCTNL_MSG_CT_NEW) {
            if flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 {
                Some(EventKind::New)
            } else {
                Some(EventKind::Update)
            }
        } else if message_type == ct_msg_type(IPCTNL_MSG_CT_DELETE) {
            Some(EventKind::Destroy)
        } else {
            None
        }
    }

    /// Classifies the header of an expectation event (subsystem
    /// `NFNL_SUBSYS_CTNETLINK_EXP`): `IPCTNL_MSG_EXP_NEW` with
    /// `NLM_F_CREATE|NLM_F_EXCL` is a NEW, without them an UPDATE (the kernel
    /// sends none as of 6.18), `IPCTNL_MSG_EXP_DELETE` a DESTROY; `None` for
    /// anything else (flow events included).
    pub fn from_expectation_header(message_type: u16, flags: u16) -> Option<EventKind> {
        if message_type == exp_msg_type(IPCTNL_MSG_EXP_NEW) {
            if flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 {
                Some(EventKind::New)
            } else {
                Some(EventKind::Update)
            }
        } else if message_type == exp_msg_type(IPCTNL_MSG_EXP_DELETE) {
            Some(EventKind::Destroy)
        } else {
            None
        }
    }

    /// The mask bit of this kind.
    pub fn mask(self) -> EventMask {
        match self {
            EventKind::New => EventMask::NEW,
            EventKind::Update => EventMask::UPDATE,
            EventKind::Destroy => EventMask::DESTROY,
        }
    }

    /// `"NEW"`, `"UPDATE"` or `"DESTROY"`, as `conntrack -E` prints them.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::New => "NEW",
            EventKind::Update => "UPDATE",
            EventKind::Destroy => "DESTROY",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One flow event. `S` is how strings are held, as in [`Flow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Event<S = String> {
    /// What happened.
    pub kind: EventKind,
    /// The flow as the event describes it (UPDATE events omit unchanged
    /// optional parts; DESTROY events carry final counters and timestamps).
    pub flow: Flow<S>,
    /// `nlmsg_pid`: the port id of the netlink socket whose request caused the
    /// event (e.g. [`Conntrack::portid`] of a handle that deleted the flow),
    /// 0 for changes from the packet path and timeouts.
    pub origin_portid: u32,
}

/// An event whose strings borrow the receive buffer.
pub type EventRef<'a> = Event<&'a str>;

/// One expectation event (`conntrack -E expect`): an expectation created
/// (`NEW`) or gone (`DESTROY`: matched by the expected connection, timed out,
/// deleted, or removed with its master). `S` is how strings are held, as in
/// [`Expectation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ExpectationEvent<S = String> {
    /// What happened.
    pub kind: EventKind,
    /// The expectation as the event describes it (a DESTROY carries the
    /// whole expectation too, with its remaining timeout).
    pub expectation: Expectation<S>,
    /// `nlmsg_pid`: the port id of the netlink socket whose request caused
    /// the event, 0 for the packet path (a helper) and timeouts.
    pub origin_portid: u32,
}

/// An expectation event whose strings borrow the receive buffer.
pub type ExpectationEventRef<'a> = ExpectationEvent<&'a str>;

impl ExpectationEvent<&str> {
    /// Copies the view into an owned [`ExpectationEvent`].
    pub fn to_owned_event(&self) -> ExpectationEvent {
        ExpectationEvent {
            kind: self.kind,
            expectation: self.expectation.to_owned_expectation(),
            origin_portid: self.origin_portid,
        }
    }
}

impl Event<&str> {
    /// Copies the view into an owned [`Event`].
    pub fn to_owned_event(&self) -> Event {
        Event {
            kind: self.kind,
            flow: self.flow.to_owned_flow(),
            origin_portid: self.origin_portid,
        }
    }
}

/// One item of an event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
// Events are the common case; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum EventItem<S = String> {
    /// A flow event.
    Event(Event<S>),
    /// An expectation event; only on a subscription that asked for them
    /// ([`EventOptions::expectations`]).
    Expectation(ExpectationEvent<S>),
    /// The kernel dropped events for this subscriber because its receive queue
    /// was full (`ENOBUFS`). State built from events is now incomplete: rebuild
    /// it with [`Events::resync`]. The stream goes on.
    Lost {
        /// How many events the kernel dropped for this socket since the
        /// previous report (`SO_MEMINFO` drop counter, read when the report is
        /// received; drops that happen later are counted in the next report
        /// and in [`EventStats::dropped`]). `None` if the kernel cannot tell.
        dropped: Option<u64>,
    },
}

/// An item whose strings borrow the receive buffer.
pub type EventItemRef<'a> = EventItem<&'a str>;

impl<S> EventItem<S> {
    /// The flow event, if this is one.
    pub fn event(&self) -> Option<&Event<S>> {
        match self {
            EventItem::Event(event) => Some(event),
            _ => None,
        }
    }

    /// The expectation event, if this is one.
    pub fn expectation_event(&self) -> Option<&ExpectationEvent<S>> {
        match self {
            EventItem::Expectation(event) => Some(event),
            _ => None,
        }
    }

    /// Whether this reports lost events.
    pub fn is_lost(&self) -> bool {
        matches!(self, EventItem::Lost { .. })
    }
}

impl EventItem<&str> {
    /// Copies the view into an owned [`EventItem`].
    pub fn to_owned_item(&self) -> EventItem {
        match self {
            EventItem::Event(event) => EventItem::Event(event.to_owned_event()),
            EventItem::Expectation(event) => EventItem::Expectation(event.to_owned_event()),
            EventItem::Lost { dropped } => EventItem::Lost { dropped: *dropped },
        }
    }
}

/// Decodes one message of an event socket: `Ok(None)` when it is not a
/// conntrack event (see [`EventKind::from_header`]), an error when it is one
/// but its attributes do not parse. Offsets in errors are within the message.
///
/// ```
/// use conntrack::events::{decode_event, EventKind};
/// use conntrack::wire::Messages;
/// // A NEW event header (type 0x100, flags NLM_F_CREATE|NLM_F_EXCL), then a
/// // bare nfgenmsg and no attributes: the decoder wants the tuples.
/// let mut bytes = vec![20, 0, 0, 0, 0x00, 0x01, 0x00, 0x06, 0, 0, 0, 0, 0, 0, 0, 0];
/// bytes.extend_from_slice(&[2, 0, 0, 0]);
/// let message = Messages::new(&bytes).next().unwrap().unwrap();
/// assert_eq!(EventKind::from_header(message.kind, message.flags), Some(EventKind::New));
/// assert!(decode_event(&message).is_err());
/// ```
pub fn decode_event<'a>(message: &Message<'a>) -> Result<Option<EventRef<'a>>, DecodeError> {
    let Some(kind) = EventKind::from_header(message.kind, message.flags) else {
        return Ok(None);
    };
    Ok(Some(Event {
        kind,
        flow: decode_flow(message.payload)?,
        origin_portid: message.pid,
    }))
}

/// Decodes one message of an event socket as an expectation event:
/// `Ok(None)` when it is not one (see [`EventKind::from_expectation_header`]),
/// an error when it is one but its attributes do not parse.
pub fn decode_expectation_event<'a>(
    message: &Message<'a>,
) -> Result<Option<ExpectationEventRef<'a>>, DecodeError> {
    let Some(kind) = EventKind::from_expectation_header(message.kind, message.flags) else {
        return Ok(None);
    };
    Ok(Some(ExpectationEvent {
        kind,
        expectation: decode_expectation_ref(message.payload)?,
        origin_portid: message.pid,
    }))
}

/// The receive buffer a subscriber got (see [`Events::set_receive_buffer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveBuffer {
    /// Bytes asked for.
    pub requested: usize,
    /// What the kernel set (`SO_RCVBUF` read back): twice the request, for its
    /// bookkeeping, when granted in full. Queued events are charged their
    /// buffer's true size (about 1.3 KiB each on 6.18, docs/ctnetlink.md §6.3).
    pub granted: usize,
    /// Whether `SO_RCVBUFFORCE` was accepted (`CAP_NET_ADMIN`); otherwise
    /// `SO_RCVBUF` was used and the grant is capped by `net.core.rmem_max`.
    pub forced: bool,
}

/// Totals of a subscriber, for monitoring the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EventStats {
    /// NEW events delivered.
    pub new: u64,
    /// UPDATE events delivered.
    pub update: u64,
    /// DESTROY events delivered.
    pub destroy: u64,
    /// Expectation NEW events delivered.
    pub expectation_new: u64,
    /// Expectation UPDATE events delivered (the kernel sends none as of 6.18).
    pub expectation_update: u64,
    /// Expectation DESTROY events delivered.
    pub expectation_destroy: u64,
    /// `ENOBUFS` reports ([`EventItem::Lost`] items, plus those met while
    /// [`Events::resync`] discarded the queue).
    pub lost_reports: u64,
    /// Events the kernel dropped for this socket, summed over the reports.
    pub dropped: u64,
    /// Event messages that failed to decode (or did not fit the buffer).
    pub decode_errors: u64,
    /// Datagrams received.
    pub datagrams: u64,
    /// Datagrams thrown away unread by [`Events::resync`].
    pub discarded: u64,
}

/// How to subscribe: which events, buffer size, reliable delivery.
///
/// ```no_run
/// use conntrack::events::{EventMask, EventOptions};
/// # fn main() -> conntrack::Result<()> {
/// let events = EventOptions::new(EventMask::all())
///     .receive_buffer(8 << 20)
///     .open_in(&conntrack::Netns::named("blue"))?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOptions {
    mask: EventMask,
    expectations: EventMask,
    receive_buffer: Option<usize>,
    reliable: bool,
}

impl Default for EventOptions {
    /// Every event kind, the system's default buffer, best-effort delivery.
    fn default() -> Self {
        EventOptions::new(EventMask::all())
    }
}

impl EventOptions {
    /// Subscribe to the flow events of the kinds in `mask` (`EventMask::empty()`
    /// for none, with [`EventOptions::expectations`] for expectation events only).
    pub fn new(mask: EventMask) -> Self {
        EventOptions {
            mask,
            expectations: EventMask::empty(),
            receive_buffer: None,
            reliable: false,
        }
    }

    /// Also subscribes to the expectation events of the kinds in `mask`
    /// (`conntrack -E expect`), which arrive as [`EventItem::Expectation`]
    /// items on the same stream, in the order the kernel sent them. The
    /// kernel sends NEW and DESTROY; `UPDATE` joins a group that stays silent
    /// as of 6.18.
    ///
    /// ```no_run
    /// use conntrack::events::{EventItem, EventMask, EventOptions};
    /// # fn main() -> conntrack::Result<()> {
    /// // Expectations only, like `conntrack -E expect`.
    /// let events = EventOptions::new(EventMask::empty())
    ///     .expectations(EventMask::NEW | EventMask::DESTROY)
    ///     .open()?;
    /// for item in events {
    ///     if let EventItem::Expectation(e) = item? {
    ///         println!("{} {:?}", e.kind, e.expectation.tuple);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn expectations(mut self, mask: EventMask) -> Self {
        self.expectations = mask;
        self
    }

    /// Sets the receive buffer before joining the groups (see
    /// [`Events::set_receive_buffer`]).
    pub fn receive_buffer(mut self, bytes: usize) -> Self {
        self.receive_buffer = Some(bytes);
        self
    }

    /// Reliable delivery (`NETLINK_BROADCAST_ERROR` + `NETLINK_NO_ENOBUFS`):
    /// DESTROY events are never lost, at the price of destroyed flows staying
    /// in the table while the reader lags. Read the module documentation first.
    pub fn reliable(mut self, on: bool) -> Self {
        self.reliable = on;
        self
    }

    /// Subscribes in the calling thread's network namespace.
    pub fn open(&self) -> Result<Events> {
        self.open_in(&Netns::Current)
    }

    /// Subscribes in `netns` (the calling thread does not change namespace).
    pub fn open_in(&self, netns: &Netns) -> Result<Events> {
        if self.mask.is_empty() && self.expectations.is_empty() {
            return Err(Error::InvalidInput(
                "an event subscription needs at least one of NEW, UPDATE, DESTROY (flows or \
                 expectations)"
                    .into(),
            ));
        }
        let (socket, file) = match netns.open()? {
            Some(file) => (file.run(NlSocket::open)??, file),
            None => {
                // Pin the caller's namespace now, so that the handle used for
                // dumps is opened in the same one whatever thread asks later.
                let file = NetnsFile::open("/proc/thread-self/ns/net")?;
                (NlSocket::open()?, file)
            }
        };
        // Buffer and delivery mode first: no event can arrive before the groups are joined.
        let mut granted = None;
        if let Some(bytes) = self.receive_buffer {
            let got = socket.set_receive_buffer(bytes)?;
            granted = Some(ReceiveBuffer {
                requested: bytes,
                granted: got.granted,
                forced: got.forced,
            });
        }
        if self.reliable {
            socket.set_reliable(true)?;
        }
        for group in self
            .mask
            .flow_groups()
            .chain(self.expectations.expectation_groups())
        {
            socket.add_membership(group)?;
        }
        let drops_seen = socket.kernel_drops().ok().flatten().unwrap_or(0);
        Ok(Events {
            socket,
            netns: Arc::new(file),
            named: !matches!(netns, Netns::Current),
            buf: vec![0; RECV_BUFFER_SIZE],
            len: 0,
            pos: 0,
            mask: self.mask,
            expectation_mask: self.expectations,
            reliable: self.reliable,
            granted,
            stats: EventStats::default(),
            drops_seen,
            table: None,
            ended: false,
        })
    }

    /// Subscribes in `netns`, then dumps its table, passing each flow to `f`:
    /// the way to build a mirror of the table that later events keep exact
    /// (see the module documentation for how to apply them). Flows that fail
    /// to decode are counted in the summary and skipped.
    pub fn subscribe_then_dump(
        &self,
        netns: &Netns,
        f: impl FnMut(FlowRef<'_>),
    ) -> Result<(Events, DumpSummary)> {
        let mut events = self.open_in(netns)?;
        let summary = events.resync_with(f)?;
        Ok((events, summary))
    }
}

/// Where the next item comes from, found without holding a borrow of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Event {
        kind: EventKind,
        /// An expectation event (else a flow event).
        expectation: bool,
        origin: u32,
        /// Payload (after `nlmsghdr`) in the buffer.
        range: Range<usize>,
    },
    Lost {
        dropped: Option<u64>,
    },
}

/// What one receive produced.
enum Received {
    Datagram,
    Lost(Pending),
    Empty,
}

/// A subscription to the conntrack events of one network namespace.
///
/// Opened with [`Events::open`], [`Events::open_in`] or [`EventOptions`]. Read
/// with [`Events::next_event`] (borrowed views), the [`Iterator`] impl (owned
/// items, blocking), [`Events::next_event_timeout`] / [`Events::try_next_event`]
/// (bounded waits), or, with the `tokio` feature, `Events::into_async`.
pub struct Events {
    socket: NlSocket,
    /// The namespace the socket lives in, kept open.
    netns: Arc<NetnsFile>,
    /// Whether the caller named the namespace (else it was the opener's).
    named: bool,
    buf: Vec<u8>,
    len: usize,
    pos: usize,
    mask: EventMask,
    expectation_mask: EventMask,
    reliable: bool,
    granted: Option<ReceiveBuffer>,
    stats: EventStats,
    /// The socket's `SO_MEMINFO` drop counter at the last report.
    drops_seen: u32,
    /// Request handle in the same namespace, for dumps (opened on first use).
    table: Option<Conntrack>,
    /// The owned iterator met a fatal error.
    ended: bool,
}

impl Events {
    /// Subscribes to `mask` in the calling thread's network namespace.
    pub fn open(mask: EventMask) -> Result<Events> {
        EventOptions::new(mask).open()
    }

    /// Subscribes to `mask` in `netns` (by name, path or pid).
    pub fn open_in(netns: &Netns, mask: EventMask) -> Result<Events> {
        EventOptions::new(mask).open_in(netns)
    }

    /// The kinds of flow events subscribed to.
    pub fn mask(&self) -> EventMask {
        self.mask
    }

    /// The kinds of expectation events subscribed to (empty: none).
    pub fn expectation_mask(&self) -> EventMask {
        self.expectation_mask
    }

    /// Whether reliable delivery is on (see [`EventOptions::reliable`]).
    pub fn is_reliable(&self) -> bool {
        self.reliable
    }

    /// The namespace file the subscription was opened in (`None`: the opener's namespace).
    pub fn netns_path(&self) -> Option<&Path> {
        self.named.then(|| self.netns.path())
    }

    /// The netlink port id of the event socket.
    pub fn portid(&self) -> u32 {
        self.socket.portid()
    }

    /// Asks for a receive buffer of `bytes` (the queue that holds events until
    /// they are read): `SO_RCVBUFFORCE` where permitted (`CAP_NET_ADMIN`,
    /// ignores `net.core.rmem_max`), else `SO_RCVBUF`; reports what the kernel
    /// granted. Events already queued stay queued.
    pub fn set_receive_buffer(&mut self, bytes: usize) -> Result<ReceiveBuffer> {
        let got = self.socket.set_receive_buffer(bytes)?;
        let buffer = ReceiveBuffer {
            requested: bytes,
            granted: got.granted,
            forced: got.forced,
        };
        self.granted = Some(buffer);
        Ok(buffer)
    }

    /// The last grant of [`Events::set_receive_buffer`] (or of
    /// [`EventOptions::receive_buffer`]), if the size was ever set.
    pub fn granted_receive_buffer(&self) -> Option<ReceiveBuffer> {
        self.granted
    }

    /// The receive buffer size the kernel uses now (`SO_RCVBUF`).
    pub fn receive_buffer(&self) -> Result<usize> {
        self.socket.receive_buffer()
    }

    /// Totals so far.
    pub fn stats(&self) -> EventStats {
        self.stats
    }

    /// The kernel's count of events dropped for this socket since it was
    /// opened (`SO_MEMINFO`), including drops not reported yet; `None` on
    /// kernels without `SO_MEMINFO`. In reliable mode this counts failed
    /// deliveries that the kernel will retry or fold into later events.
    pub fn kernel_drops(&self) -> Result<Option<u64>> {
        Ok(self.socket.kernel_drops()?.map(u64::from))
    }

    /// Waits for the next item and lends it (it borrows the receive buffer).
    ///
    /// `Err(Error::Decode)` or `Err(Error::Truncated)`: one event was
    /// unreadable, the stream goes on. Other errors come from the socket.
    pub fn next_event(&mut self) -> Result<EventItemRef<'_>> {
        loop {
            if let Some(pending) = self.wait(None)? {
                return self.materialize(pending);
            }
        }
    }

    /// Like [`Events::next_event`], but gives up after `timeout` and returns
    /// `Ok(None)` when nothing arrived.
    pub fn next_event_timeout(&mut self, timeout: Duration) -> Result<Option<EventItemRef<'_>>> {
        let deadline = Instant::now().checked_add(timeout);
        match self.wait(deadline)? {
            Some(pending) => self.materialize(pending).map(Some),
            None => Ok(None),
        }
    }

    /// The next item if one is already queued, without waiting.
    pub fn try_next_event(&mut self) -> Result<Option<EventItemRef<'_>>> {
        match self.poll_once()? {
            Some(pending) => self.materialize(pending).map(Some),
            None => Ok(None),
        }
    }

    /// A request handle on the subscribed namespace's table (opened on first
    /// use and kept): for `count()`, lookups, or dumps of your own. Dumping
    /// through it is safe at any time, since the subscription already exists.
    pub fn table(&mut self) -> Result<&mut Conntrack> {
        match &mut self.table {
            Some(table) => Ok(table),
            slot @ None => Ok(slot.insert(Conntrack::open_in(&self.netns.pinned())?)),
        }
    }

    /// Throws away every event still queued, then starts a dump of the
    /// namespace's table: after a [`EventItem::Lost`] (or at start-up), apply
    /// the dump, then the events that follow. Discarding first matters: the
    /// queued events predate the dump, and applying one of them on top of it
    /// could resurrect a flow whose DESTROY was lost.
    pub fn resync(&mut self) -> Result<Dump<'_>> {
        self.discard_queued()?;
        self.table()?.dump()
    }

    /// [`Events::resync`] with a callback for each dumped flow; flows that fail
    /// to decode are counted in the summary and skipped.
    pub fn resync_with(&mut self, mut f: impl FnMut(FlowRef<'_>)) -> Result<DumpSummary> {
        let mut dump = self.resync()?;
        while let Some(flow) = dump.next_flow() {
            match flow {
                Ok(flow) => f(flow),
                Err(Error::Decode(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(dump.summary())
    }

    /// Throws away every event still queued (the socket's queue and the rest
    /// of the current datagram) without decoding it; `ENOBUFS` reports met
    /// meanwhile are counted in [`EventStats`] but not returned.
    ///
    /// [`Events::resync`] starts with this. Call it yourself before a dump of
    /// your own that does not go through [`Events::table`] (e.g. on another
    /// thread), so that no event older than that dump is applied on top of it.
    pub fn discard_queued(&mut self) -> Result<()> {
        self.pos = self.len;
        loop {
            match self.socket.recv_nonblocking(&mut self.buf) {
                Ok(EventReceive::Datagram(_)) | Err(Error::Truncated { .. }) => {
                    self.stats.datagrams += 1;
                    self.stats.discarded += 1;
                }
                Ok(EventReceive::Overrun) => {
                    self.lost();
                }
                Ok(EventReceive::Empty) => break,
                Err(e) => return Err(e),
            }
        }
        self.len = 0;
        self.pos = 0;
        Ok(())
    }

    /// Records an `ENOBUFS` report and reads how many events it stands for.
    fn lost(&mut self) -> Pending {
        self.stats.lost_reports += 1;
        let dropped = match self.socket.kernel_drops() {
            Ok(Some(now)) => {
                // sk_drops is a wrapping 32-bit counter.
                let dropped = u64::from(now.wrapping_sub(self.drops_seen));
                self.drops_seen = now;
                self.stats.dropped += dropped;
                Some(dropped)
            }
            _ => None,
        };
        Pending::Lost { dropped }
    }

    /// The next event message left in the current datagram.
    fn next_buffered(&mut self) -> Option<Result<Pending>> {
        while self.pos < self.len {
            let window = &self.buf[self.pos..self.len];
            let mut messages = Messages::new(window);
            let message = match messages.next() {
                Some(Ok(message)) => message,
                Some(Err(mut e)) => {
                    // The rest of this datagram cannot be framed; the next one can.
                    e.offset += self.pos;
                    self.pos = self.len;
                    self.stats.decode_errors += 1;
                    return Some(Err(e.into()));
                }
                None => {
                    self.pos = self.len;
                    break;
                }
            };
            let start = self.pos + NLMSG_HDRLEN;
            let range = start..start + message.payload.len();
            self.pos += messages.position();
            if let Some(kind) = EventKind::from_header(message.kind, message.flags) {
                if self.mask.contains(kind.mask()) {
                    return Some(Ok(Pending::Event {
                        kind,
                        expectation: false,
                        origin: message.pid,
                        range,
                    }));
                }
            } else if let Some(kind) =
                EventKind::from_expectation_header(message.kind, message.flags)
            {
                if self.expectation_mask.contains(kind.mask()) {
                    return Some(Ok(Pending::Event {
                        kind,
                        expectation: true,
                        origin: message.pid,
                        range,
                    }));
                }
            } else if message.kind == NLMSG_ERROR {
                // Nothing is sent on this socket, so no error is expected;
                // report one rather than hide it.
                match parse_error(&message) {
                    Ok(reply) if reply.errno == 0 => {}
                    Ok(reply) => {
                        return Some(Err(Error::Kernel {
                            operation: "receive events",
                            errno: reply.errno,
                            message: reply.message.map(str::to_owned),
                            offset: reply.offset,
                        }))
                    }
                    Err(mut e) => {
                        e.offset += start - NLMSG_HDRLEN;
                        self.stats.decode_errors += 1;
                        return Some(Err(e.into()));
                    }
                }
            }
        }
        None
    }

    /// One non-blocking receive.
    fn receive(&mut self) -> Result<Received> {
        match self.socket.recv_nonblocking(&mut self.buf) {
            Ok(EventReceive::Datagram(len)) => {
                self.len = len;
                self.pos = 0;
                self.stats.datagrams += 1;
                Ok(Received::Datagram)
            }
            Ok(EventReceive::Overrun) => Ok(Received::Lost(self.lost())),
            Ok(EventReceive::Empty) => Ok(Received::Empty),
            Err(e) => {
                if matches!(e, Error::Truncated { .. }) {
                    self.stats.datagrams += 1;
                    self.stats.decode_errors += 1;
                }
                Err(e)
            }
        }
    }

    /// The next item if one is available without waiting.
    fn poll_once(&mut self) -> Result<Option<Pending>> {
        loop {
            if let Some(pending) = self.next_buffered() {
                return pending.map(Some);
            }
            match self.receive()? {
                Received::Datagram => {}
                Received::Lost(pending) => return Ok(Some(pending)),
                Received::Empty => return Ok(None),
            }
        }
    }

    /// The next item, waiting until `deadline` (`None`: for ever).
    fn wait(&mut self, deadline: Option<Instant>) -> Result<Option<Pending>> {
        loop {
            if let Some(pending) = self.poll_once()? {
                return Ok(Some(pending));
            }
            if !self.socket.wait_readable(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Decodes a pending item from the buffer.
    fn materialize(&mut self, pending: Pending) -> Result<EventItemRef<'_>> {
        let (kind, expectation, origin, range) = match pending {
            Pending::Lost { dropped } => return Ok(EventItem::Lost { dropped }),
            Pending::Event {
                kind,
                expectation,
                origin,
                range,
            } => (kind, expectation, origin, range),
        };
        let payload = &self.buf[range.clone()];
        let decoded = if expectation {
            decode_expectation_ref(payload).map(|expectation| {
                EventItem::Expectation(ExpectationEvent {
                    kind,
                    expectation,
                    origin_portid: origin,
                })
            })
        } else {
            decode_flow(payload).map(|flow| {
                EventItem::Event(Event {
                    kind,
                    flow,
                    origin_portid: origin,
                })
            })
        };
        let stats = &mut self.stats;
        match decoded {
            Ok(item) => {
                let counter = match (expectation, kind) {
                    (false, EventKind::New) => &mut stats.new,
                    (false, EventKind::Update) => &mut stats.update,
                    (false, EventKind::Destroy) => &mut stats.destroy,
                    (true, EventKind::New) => &mut stats.expectation_new,
                    (true, EventKind::Update) => &mut stats.expectation_update,
                    (true, EventKind::Destroy) => &mut stats.expectation_destroy,
                };
                *counter += 1;
                Ok(item)
            }
            Err(mut e) => {
                stats.decode_errors += 1;
                // Report offsets within the datagram, not the message.
                e.offset += range.start - NLMSG_HDRLEN;
                Err(e.into())
            }
        }
    }
}

impl std::fmt::Debug for Events {
    // Not derived: the receive buffer is 64 KiB of bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("portid", &self.socket.portid())
            .field("netns", &self.netns.path())
            .field("mask", &self.mask)
            .field("expectation_mask", &self.expectation_mask)
            .field("reliable", &self.reliable)
            .field("granted", &self.granted)
            .field("stats", &self.stats)
            .field("unread_bytes", &(self.len - self.pos.min(self.len)))
            .finish_non_exhaustive()
    }
}

/// Blocking iteration over owned items. Unreadable events
/// (`Error::Decode`, `Error::Truncated`) are yielded and the iteration goes
/// on; after any other error the iterator ends.
impl Iterator for Events {
    type Item = Result<EventItem>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let item = self.next_event().map(|item| item.to_owned_item());
        if let Err(e) = &item {
            if !matches!(e, Error::Decode(_) | Error::Truncated { .. }) {
                self.ended = true;
            }
        }
        Some(item)
    }
}

/// For event loops of your own (epoll, mio, ...): wait for readability, then
/// call [`Events::try_next_event`] until it returns `Ok(None)`.
impl AsRawFd for Events {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for Events {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use self::asynchronous::AsyncEvents;

#[cfg(feature = "tokio")]
mod asynchronous {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    use super::*;

    /// An [`Events`] subscription driven by tokio (feature `tokio`): await
    /// [`AsyncEvents::next_event`], or use it as a `futures_core::Stream` of
    /// owned items.
    ///
    /// ```no_run
    /// # async fn watch() -> conntrack::Result<()> {
    /// use conntrack::events::{EventMask, Events};
    /// let mut events = Events::open(EventMask::all())?.into_async()?;
    /// loop {
    ///     let item = events.next_event().await?;
    ///     println!("{item:?}");
    /// }
    /// # }
    /// ```
    #[derive(Debug)]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub struct AsyncEvents {
        inner: AsyncFd<Events>,
    }

    /// One receive attempt under a readiness guard: `WouldBlock` tells tokio
    /// to clear the readiness it saw.
    fn receive_ready(inner: &mut AsyncFd<Events>) -> std::io::Result<Result<Received>> {
        match inner.get_mut().receive() {
            Ok(Received::Empty) => Err(std::io::ErrorKind::WouldBlock.into()),
            other => Ok(other),
        }
    }

    impl AsyncEvents {
        /// Registers the subscription with the current tokio runtime. Fails
        /// outside a runtime; panics, like every tokio I/O type, inside one
        /// built without I/O (`Builder::enable_io`).
        pub fn new(events: Events) -> Result<Self> {
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(Error::InvalidInput(
                    "AsyncEvents must be created inside a tokio runtime (with I/O enabled)".into(),
                ));
            }
            events.socket.set_non_blocking(true)?;
            // `with_interest` is deprecated in favour of an `unsafe fn` (tokio
            // 1.53.3+) whose contract is that the registered fd stays open and
            // the same while registered. It does: `Events` owns its socket and
            // never replaces it, and `AsyncEvents` hands out no `&mut Events`
            // through which a caller could swap the whole value.
            #[allow(deprecated)]
            let inner = AsyncFd::with_interest(events, Interest::READABLE)
                .map_err(|e| Error::io("register netlink socket with tokio", e))?;
            Ok(AsyncEvents { inner })
        }

        /// Waits for the next item and lends it; errors as [`Events::next_event`].
        pub async fn next_event(&mut self) -> Result<EventItemRef<'_>> {
            loop {
                if let Some(pending) = self.inner.get_mut().next_buffered() {
                    let pending = pending?;
                    return self.inner.get_mut().materialize(pending);
                }
                let mut guard = self
                    .inner
                    .readable_mut()
                    .await
                    .map_err(|e| Error::io("wait for netlink events", e))?;
                let received = match guard.try_io(receive_ready) {
                    Ok(Ok(received)) => received,
                    Ok(Err(e)) => Err(Error::io("receive netlink event", e)),
                    Err(_would_block) => continue,
                };
                drop(guard);
                match received? {
                    Received::Datagram | Received::Empty => {}
                    Received::Lost(pending) => return self.inner.get_mut().materialize(pending),
                }
            }
        }

        /// The subscription, for its statistics and settings.
        pub fn get_ref(&self) -> &Events {
            self.inner.get_ref()
        }

        /// Totals so far ([`Events::stats`]).
        pub fn stats(&self) -> EventStats {
            self.inner.get_ref().stats()
        }

        /// [`Events::set_receive_buffer`].
        pub fn set_receive_buffer(&mut self, bytes: usize) -> Result<ReceiveBuffer> {
            self.inner.get_mut().set_receive_buffer(bytes)
        }

        /// [`Events::table`]. Its requests block the calling thread (a
        /// round trip each, microseconds to milliseconds).
        pub fn table(&mut self) -> Result<&mut Conntrack> {
            self.inner.get_mut().table()
        }

        /// [`Events::resync`]: discards the queue, then dumps. The dump is
        /// blocking; for big tables run it under `tokio::task::block_in_place`
        /// or accept the pause.
        pub fn resync(&mut self) -> Result<Dump<'_>> {
            self.inner.get_mut().resync()
        }

        /// [`Events::resync_with`] (blocking, as [`AsyncEvents::resync`]).
        pub fn resync_with(&mut self, f: impl FnMut(FlowRef<'_>)) -> Result<DumpSummary> {
            self.inner.get_mut().resync_with(f)
        }

        /// Deregisters from the runtime and gives the subscription back (its
        /// blocking methods work whatever the socket's `O_NONBLOCK` mode).
        pub fn into_inner(self) -> Events {
            self.inner.into_inner()
        }
    }

    /// Owned items, for ever; unreadable events are yielded as errors and the
    /// stream goes on, any other error ends it.
    impl futures_core::Stream for AsyncEvents {
        type Item = Result<EventItem>;

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            let this = self.get_mut();
            if this.inner.get_ref().ended {
                return Poll::Ready(None);
            }
            let item = loop {
                if let Some(pending) = this.inner.get_mut().next_buffered() {
                    break pending.and_then(|pending| {
                        this.inner
                            .get_mut()
                            .materialize(pending)
                            .map(|item| item.to_owned_item())
                    });
                }
                let mut guard = match this.inner.poll_read_ready_mut(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(guard)) => guard,
                    Poll::Ready(Err(e)) => break Err(Error::io("wait for netlink events", e)),
                };
                let received = match guard.try_io(receive_ready) {
                    Ok(Ok(received)) => received,
                    Ok(Err(e)) => Err(Error::io("receive netlink event", e)),
                    Err(_would_block) => continue,
                };
                drop(guard);
                match received {
                    Ok(Received::Datagram | Received::Empty) => {}
                    Ok(Received::Lost(Pending::Lost { dropped })) => {
                        break Ok(EventItem::Lost { dropped })
                    }
                    Ok(Received::Lost(pending)) => {
                        break this
                            .inner
                            .get_mut()
                            .materialize(pending)
                            .map(|item| item.to_owned_item())
                    }
                    Err(e) => break Err(e),
                }
            };
            if let Err(e) = &item {
                if !matches!(e, Error::Decode(_) | Error::Truncated { .. }) {
                    this.inner.get_mut().ended = true;
                }
            }
            Poll::Ready(Some(item))
        }
    }

    impl Events {
        /// Hands the subscription to the current tokio runtime (feature `tokio`).
        #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
        pub fn into_async(self) -> Result<AsyncEvents> {
            AsyncEvents::new(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Tuple, L4};
    use crate::wire::Encoder;
    use std::net::{IpAddr, Ipv4Addr};

    fn header(len: usize, kind: u16, flags: u16, pid: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(len as u32).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(&pid.to_ne_bytes());
        v
    }

    /// An event message: the header, then the body of a dump entry built by
    /// the library's own encoder.
    fn event_bytes(kind: u16, flags: u16, pid: u32) -> Vec<u8> {
        let tuple = Tuple::udp(
            (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 5000),
            (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 53),
        );
        let mut enc = Encoder::new();
        let mark = enc.begin(IPCTNL_MSG_CT_NEW, 0, 0, AF_INET, NFNETLINK_V0);
        crate::request::put_tuple(&mut enc, CTA_TUPLE_ORIG, &tuple);
        crate::request::put_tuple(&mut enc, CTA_TUPLE_REPLY, &tuple.reversed());
        enc.be32(CTA_STATUS, 8);
        enc.end(mark);
        let body = &enc.as_bytes()[NLMSG_HDRLEN..];
        let mut bytes = header(NLMSG_HDRLEN + body.len(), kind, flags, pid);
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn kinds_come_from_type_and_flags() {
        let new = ct_msg_type(IPCTNL_MSG_CT_NEW);
        let delete = ct_msg_type(IPCTNL_MSG_CT_DELETE);
        assert_eq!(
            EventKind::from_header(new, NLM_F_CREATE | NLM_F_EXCL),
            Some(EventKind::New)
        );
        assert_eq!(EventKind::from_header(new, 0), Some(EventKind::Update));
        assert_eq!(EventKind::from_header(delete, 0), Some(EventKind::Destroy));
        assert_eq!(EventKind::from_header(NLMSG_DONE, 0), None);
        assert_eq!(
            EventKind::from_header(ct_msg_type(IPCTNL_MSG_CT_GET), 0),
            None
        );
        // Expectation events (subsystem 2) are not flow events, and the
        // other way round.
        assert_eq!(EventKind::from_header(0x200, 0x600), None);
        assert_eq!(
            EventKind::from_expectation_header(0x200, 0x600),
            Some(EventKind::New)
        );
        assert_eq!(
            EventKind::from_expectation_header(0x200, 0),
            Some(EventKind::Update)
        );
        assert_eq!(
            EventKind::from_expectation_header(0x202, 0),
            Some(EventKind::Destroy)
        );
        assert_eq!(EventKind::from_expectation_header(0x201, 0), None);
        assert_eq!(EventKind::from_expectation_header(new, 0x600), None);
        assert_eq!(EventMask::NEW.bits(), 1);
        assert_eq!(EventMask::all().bits(), 0b111);
        assert_eq!(EventKind::Destroy.mask(), EventMask::DESTROY);
    }

    #[test]
    fn decodes_an_event_message() {
        let bytes = event_bytes(ct_msg_type(IPCTNL_MSG_CT_NEW), 0x600, 4242);
        let message = Messages::new(&bytes).next().unwrap().unwrap();
        let event = decode_event(&message).unwrap().unwrap();
        assert_eq!(event.kind, EventKind::New);
        assert_eq!(event.origin_portid, 4242);
        assert_eq!(event.flow.orig.src_port(), Some(5000));
        assert!(matches!(event.flow.orig.l4, L4::Ports { .. }));
        let owned = EventItem::Event(event).to_owned_item();
        assert_eq!(owned.event().map(|e| e.kind), Some(EventKind::New));
        assert!(!owned.is_lost());
    }

    #[test]
    fn hostile_bytes_give_errors_not_panics() {
        let bytes = event_bytes(ct_msg_type(IPCTNL_MSG_CT_DELETE), 0, 1);
        for cut in 0..bytes.len() {
            let mut damaged = bytes[..cut].to_vec();
            if damaged.len() >= 4 {
                // Keep the header's claim: the message must not fit.
                damaged[..4].copy_from_slice(&(bytes.len() as u32).to_ne_bytes());
            }
            for message in Messages::new(&damaged).flatten() {
                let _ = decode_event(&message);
            }
            // A message that fits but whose attributes are cut short.
            if cut >= NLMSG_HDRLEN {
                let mut short = bytes[..cut].to_vec();
                short[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
                let message = Messages::new(&short).next().unwrap().unwrap();
                if cut < bytes.len() {
                    let _ = decode_event(&message);
                } else {
                    assert!(decode_event(&message).unwrap().is_some());
                }
            }
        }
    }

    #[test]
    fn empty_mask_is_refused() {
        let err = EventOptions::new(EventMask::empty()).open().unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }
}

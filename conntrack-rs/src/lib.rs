// SPDX-License-Identifier: MIT OR Apache-2.0
//! # conntrack: the Linux connection-tracking table over ctnetlink
//!
//! A library that speaks `NFNL_SUBSYS_CTNETLINK` directly: stream every flow of
//! a table of millions as typed data without parsing procfs text, create and
//! look up flows, and read the table size, limit and kernel counters in
//! microseconds — in the current network namespace or any other.
//!
//! ```no_run
//! use conntrack::{Conntrack, Netns};
//! # fn main() -> conntrack::Result<()> {
//! let mut ct = Conntrack::open_in(&Netns::named("blue"))?;
//! let stats = ct.table_stats()?;
//! println!("{} entries, limit {:?}", stats.entries, stats.max_entries);
//!
//! // Borrowed views: no allocation per flow.
//! let mut dump = ct.dump()?;
//! while let Some(flow) = dump.next_flow() {
//!     let flow = flow?;
//!     if flow.status.unreplied() {
//!         println!("{} -> {} never answered", flow.orig.src, flow.orig.dst);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Layers, bottom up: [`wire`] (framing, attributes, encoding), [`decode_flow`]
//! (one message into a [`FlowRef`]), [`Conntrack`] (socket, requests, [`Dump`]).
//! Every request needs `CAP_NET_ADMIN`. See `docs/ctnetlink.md` in the repository
//! for the kernel behaviour this crate is built around.

#![deny(unsafe_code)]
#![warn(missing_docs)]
// docs.rs (`[package.metadata.docs.rs]`) builds with `--cfg docsrs` on nightly,
// so feature-gated items say which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod conntrack;
pub mod consts;
mod counters;
mod decode;
mod delete;
mod dump;
mod error;
pub mod events;
mod expect;
mod filter;
mod flow;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
mod group;
mod labelmap;
pub mod netns;
mod orphans;
mod probe;
mod pushdown;
mod request;
pub mod restore;
mod select;
#[cfg(feature = "serde")]
mod serialize;
mod socket;
pub mod sockets;
mod stats;
mod status;
pub mod sysctl;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
pub mod text;
mod update;
pub mod wire;

pub use crate::conntrack::Conntrack;
pub use crate::counters::{Counter, KernelStatsDelta};
pub use crate::decode::{decode_flow, decode_flow_into};
pub use crate::delete::{DeleteOptions, DeletePath, DeleteReport};
pub use crate::dump::{Dump, DumpSummary, Flows, Prefetch, PREFETCH_DEPTH, PREFETCH_MIN_FLOWS};
pub use crate::error::{DecodeError, DecodeErrorKind, Error, Result};
pub use crate::events::{
    Event, EventItem, EventKind, EventMask, EventOptions, Events, ExpectationEvent,
};
pub use crate::expect::{
    decode_expectation, decode_expectation_ref, exact_mask, ExpectCpuStats, ExpectFlags, ExpectNat,
    Expectation, ExpectationRef, ExpectationSpec,
};
#[cfg(feature = "testing")]
#[doc(hidden)]
pub use crate::filter::AddrHasher;
pub use crate::filter::{AddrSet, Cidr, Filter, PortSet};
pub use crate::flow::{
    proto, Counters, DccpInfo, DccpState, Family, Flow, FlowId, FlowRef, Labels, ProtoInfo,
    SctpInfo, SctpState, SeqAdj, Synproxy, TcpFlags, TcpInfo, TcpState, Timestamp, Tuple, L4,
};
pub use crate::group::{GroupBy, GroupCounts, GroupTally, GroupValue, Grouping};
pub use crate::labelmap::{LabelMap, LABEL_FILES};
pub use crate::netns::Netns;
pub use crate::orphans::{
    Evidence, Orphan, OrphanCategory, OrphanCounts, OrphanPolicy, OrphanScan, SocketCheck,
};
pub use crate::pushdown::KernelFeatures;
pub use crate::request::{FlowSpec, NatTarget, StatusChange};
pub use crate::select::{Census, FilteredDump};
pub use crate::stats::{
    decode_cpu_stats, decode_table_stats, CpuCounters, CpuStats, KernelStats, TableStats,
};
pub use crate::status::Status;
pub use crate::update::{FlowChange, UpdateReport};

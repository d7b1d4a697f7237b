// SPDX-License-Identifier: MIT OR Apache-2.0
//! `serde::Serialize` for the public data types (feature `serde`): the one JSON
//! shape of a flow, a report or a count, used by every operator tool.
//!
//! Plain records (counters, reports, statistics) derive theirs next to their
//! definition. The types here are written by hand because their JSON is not
//! their Rust layout:
//! * a [`Flow`] is the object `dump --json` prints (documented in
//!   `examples/dump.rs`): every key always present, `null` for what the kernel
//!   did not send, `family`/`protocol_name` spelled out, the status both as its
//!   integer and as the list of its bit names;
//! * a [`Tuple`] is flat: `src`, `dst`, `protocol`, `src_port`, `dst_port`,
//!   `icmp_type`, `icmp_code`, `icmp_id`, `zone`;
//! * a [`Status`] is the list of its bit names (`"SEEN_REPLY"`; unknown bits as
//!   `"BIT<n>"`); kernel states are their names (`"ESTABLISHED"`): the spelling
//!   conntrack-tools prints, the text output and the Python binding use;
//! * enums this library names are `snake_case` strings (`"dry_run"`,
//!   `"idle_established"`, `"ipv4"`), as in text output and Python;
//! * durations are seconds (a float).
//!
//! The flow object is also read back: `restore` takes the NDJSON of
//! `dump --json` ([`crate::restore::parse_json`], strict: every key of this
//! shape, nothing else), so a change here is a change of that format too.
//! The other types are written only.

use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::flow::{
    proto, DccpInfo, DccpState, Flow, FlowId, Labels, ProtoInfo, SctpInfo, SctpState, TcpInfo,
    TcpState, Tuple,
};
use crate::group::GroupValue;
use crate::status::Status;
use crate::text::family_name;

/// `Option<Duration>` as seconds (a float) or `null`.
pub(crate) fn optional_seconds<S: Serializer>(
    value: &Option<std::time::Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(d) => serializer.serialize_f64(d.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

/// `Duration` as seconds (a float).
pub(crate) fn seconds<S: Serializer>(
    value: &std::time::Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64())
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut named = 0u32;
        let names: Vec<std::borrow::Cow<'static, str>> = self
            .iter_names()
            .map(|(name, flag)| {
                named |= flag.bits();
                name.into()
            })
            .collect();
        let unknown = self.bits() & !named;
        let mut seq = serializer.serialize_seq(None)?;
        for name in names {
            seq.serialize_element(&name)?;
        }
        for bit in (0..32).filter(|b| unknown >> b & 1 == 1) {
            seq.serialize_element(&format!("BIT{bit}"))?;
        }
        seq.end()
    }
}

macro_rules! by_name {
    ($($name:ty),*) => {$(
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }
    )*};
}

by_name!(
    TcpState,
    SctpState,
    DccpState,
    crate::DeletePath,
    crate::OrphanCategory,
    crate::GroupBy,
    crate::Counter
);

impl Serialize for crate::events::EventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Python's `EventKind` values; text output keeps conntrack -E's `[NEW]`.
        serializer.serialize_str(match self {
            crate::events::EventKind::New => "new",
            crate::events::EventKind::Update => "update",
            crate::events::EventKind::Destroy => "destroy",
        })
    }
}

impl Serialize for FlowId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.value())
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl Serialize for GroupValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            GroupValue::Addr(addr) => serializer.collect_str(addr),
            GroupValue::Number(n) => serializer.serialize_u32(*n),
            GroupValue::TcpState(state) => state.serialize(serializer),
            GroupValue::None => serializer.serialize_none(),
        }
    }
}

impl Serialize for Tuple {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let icmp = self.icmp_fields();
        let mut s = serializer.serialize_struct("Tuple", 9)?;
        s.serialize_field("src", &self.src)?;
        s.serialize_field("dst", &self.dst)?;
        s.serialize_field("protocol", &self.protocol)?;
        s.serialize_field("src_port", &self.src_port())?;
        s.serialize_field("dst_port", &self.dst_port())?;
        s.serialize_field("icmp_type", &icmp.map(|i| i.0))?;
        s.serialize_field("icmp_code", &icmp.map(|i| i.1))?;
        s.serialize_field("icmp_id", &icmp.map(|i| i.2))?;
        s.serialize_field("zone", &self.zone)?;
        s.end()
    }
}

impl Serialize for TcpInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("TcpInfo", 8)?;
        s.serialize_field("state", &self.state)?;
        s.serialize_field("state_raw", &self.state.map(TcpState::raw))?;
        s.serialize_field("wscale_orig", &self.wscale_orig)?;
        s.serialize_field("wscale_reply", &self.wscale_reply)?;
        s.serialize_field("flags_orig", &self.flags_orig.map(|(f, _)| f.bits()))?;
        s.serialize_field("mask_orig", &self.flags_orig.map(|(_, m)| m.bits()))?;
        s.serialize_field("flags_reply", &self.flags_reply.map(|(f, _)| f.bits()))?;
        s.serialize_field("mask_reply", &self.flags_reply.map(|(_, m)| m.bits()))?;
        s.end()
    }
}

impl Serialize for SctpInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("SctpInfo", 4)?;
        s.serialize_field("state", &self.state)?;
        s.serialize_field("state_raw", &self.state.map(SctpState::raw))?;
        s.serialize_field("vtag_orig", &self.vtag_orig)?;
        s.serialize_field("vtag_reply", &self.vtag_reply)?;
        s.end()
    }
}

impl Serialize for DccpInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("DccpInfo", 4)?;
        s.serialize_field("state", &self.state)?;
        s.serialize_field("state_raw", &self.state.map(DccpState::raw))?;
        s.serialize_field("role", &self.role)?;
        s.serialize_field("handshake_seq", &self.handshake_seq)?;
        s.end()
    }
}

impl Serialize for ProtoInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            ProtoInfo::Tcp(info) => map.serialize_entry("tcp", info)?,
            ProtoInfo::Sctp(info) => map.serialize_entry("sctp", info)?,
            ProtoInfo::Dccp(info) => map.serialize_entry("dccp", info)?,
        }
        map.end()
    }
}

impl<T: AsRef<str>> Serialize for Flow<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Flow", 26)?;
        s.serialize_field("family", family_name(self.family()))?;
        s.serialize_field("protocol", &self.protocol())?;
        s.serialize_field("protocol_name", proto::name(self.protocol()))?;
        s.serialize_field("orig", &self.orig)?;
        s.serialize_field("reply", &self.reply)?;
        s.serialize_field("status", &self.status.bits())?;
        s.serialize_field("status_flags", &self.status)?;
        s.serialize_field("timeout", &self.timeout)?;
        s.serialize_field("mark", &self.mark)?;
        s.serialize_field("use", &self.use_count)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("zone", &self.zone)?;
        s.serialize_field("protoinfo", &self.protoinfo)?;
        s.serialize_field("counters_orig", &self.counters_orig)?;
        s.serialize_field("counters_reply", &self.counters_reply)?;
        s.serialize_field("timestamp", &self.timestamp)?;
        s.serialize_field("labels", &self.labels)?;
        s.serialize_field("helper", &self.helper.as_ref().map(AsRef::as_ref))?;
        s.serialize_field("secctx", &self.secctx.as_ref().map(AsRef::as_ref))?;
        s.serialize_field("seqadj_orig", &self.seqadj_orig)?;
        s.serialize_field("seqadj_reply", &self.seqadj_reply)?;
        s.serialize_field("synproxy", &self.synproxy)?;
        s.serialize_field("master", &self.master)?;
        s.serialize_field("event_timestamp", &self.event_timestamp)?;
        s.end()
    }
}

impl<T: AsRef<str>> Serialize for crate::events::Event<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Event", 3)?;
        s.serialize_field("event", &self.kind)?;
        s.serialize_field("origin_portid", &self.origin_portid)?;
        s.serialize_field("flow", &self.flow)?;
        s.end()
    }
}

impl<T: AsRef<str>> Serialize for crate::events::EventItem<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            crate::events::EventItem::Event(event) => event.serialize(serializer),
            crate::events::EventItem::Expectation(event) => event.serialize(serializer),
            crate::events::EventItem::Lost { dropped } => {
                let mut s = serializer.serialize_struct("Lost", 2)?;
                s.serialize_field("event", "lost")?;
                s.serialize_field("dropped", dropped)?;
                s.end()
            }
        }
    }
}

impl Serialize for crate::ExpectFlags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // As a `Status`: the names of the bits, unknown ones as `BIT<n>`.
        let mut named = 0u32;
        let mut seq = serializer.serialize_seq(None)?;
        for (name, flag) in self.iter_names() {
            named |= flag.bits();
            seq.serialize_element(name)?;
        }
        let unknown = self.bits() & !named;
        for bit in (0..32).filter(|b| unknown >> b & 1 == 1) {
            seq.serialize_element(&format!("BIT{bit}"))?;
        }
        seq.end()
    }
}

/// An expectation: every key always present, `null` for what the kernel did
/// not send; `nat` is `{"direction", "tuple"}` or `null`.
impl<T: AsRef<str>> Serialize for crate::Expectation<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Nat<'a>(&'a crate::ExpectNat);
        impl Serialize for Nat<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut s = serializer.serialize_struct("ExpectNat", 2)?;
                s.serialize_field("direction", &self.0.direction)?;
                s.serialize_field("tuple", &self.0.tuple)?;
                s.end()
            }
        }
        let mut s = serializer.serialize_struct("Expectation", 13)?;
        s.serialize_field("family", family_name(self.tuple.family()))?;
        s.serialize_field("master", &self.master)?;
        s.serialize_field("tuple", &self.tuple)?;
        s.serialize_field("mask", &self.mask)?;
        s.serialize_field("timeout", &self.timeout)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("helper", &self.helper.as_ref().map(AsRef::as_ref))?;
        s.serialize_field("zone", &self.zone)?;
        s.serialize_field("flags", &self.flags.bits())?;
        s.serialize_field("flag_names", &self.flags)?;
        s.serialize_field("class", &self.class)?;
        s.serialize_field("nat", &self.nat.as_ref().map(Nat))?;
        s.serialize_field("function", &self.function.as_ref().map(AsRef::as_ref))?;
        s.end()
    }
}

/// `{"event": "new"|"update"|"destroy", "origin_portid", "expectation"}`.
impl<T: AsRef<str>> Serialize for crate::events::ExpectationEvent<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ExpectationEvent", 3)?;
        s.serialize_field("event", &self.kind)?;
        s.serialize_field("origin_portid", &self.origin_portid)?;
        s.serialize_field("expectation", &self.expectation)?;
        s.end()
    }
}

impl Serialize for crate::OrphanCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for category in crate::OrphanCategory::ALL {
            map.serialize_entry(category.name(), &self.get(category))?;
        }
        map.serialize_entry("unestimated", &self.unestimated)?;
        map.serialize_entry("candidates", &self.candidates)?;
        map.serialize_entry("confirmed", &self.confirmed)?;
        map.serialize_entry("suspected", &self.suspected)?;
        map.serialize_entry("alive", &self.alive)?;
        map.end()
    }
}

impl Serialize for crate::GroupCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Group<'a>(&'a [GroupValue], u64);
        impl Serialize for Group<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut s = serializer.serialize_struct("Group", 2)?;
                s.serialize_field("key", self.0)?;
                s.serialize_field("flows", &self.1)?;
                s.end()
            }
        }
        let mut s = serializer.serialize_struct("GroupCounts", 4)?;
        s.serialize_field(
            "groups",
            &self
                .groups
                .iter()
                .map(|(key, n)| Group(key, *n))
                .collect::<Vec<_>>(),
        )?;
        s.serialize_field("other", &self.other)?;
        s.serialize_field("other_groups", &self.other_groups)?;
        s.serialize_field("total", &self.total)?;
        s.end()
    }
}

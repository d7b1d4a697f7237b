// SPDX-License-Identifier: MIT OR Apache-2.0
//! Request encoding for flows: tuples and the attributes of `IPCTNL_MSG_CT_NEW`.
//!
//! Encoding applies the kernel's rules so callers cannot trip on them
//! (docs/ctnetlink.md §4.1, §12): `IPS_CONFIRMED` is always part of the status sent
//! on create, addresses are raw bytes, the flow's zone is sent top-level, and
//! a create without a timeout is refused before it reaches the kernel.

use std::net::IpAddr;

use crate::consts::*;
use crate::error::{Error, Result};
use crate::flow::{proto, Labels, ProtoInfo, SeqAdj, Synproxy, TcpInfo, TcpState, Tuple, L4};
use crate::status::{Status, KNOWN_STATUS_BITS};
use crate::wire::Encoder;

/// What to create or change with [`Conntrack::create`](crate::Conntrack::create),
/// [`update`](crate::Conntrack::update) or
/// [`create_or_update`](crate::Conntrack::create_or_update).
///
/// ```
/// use conntrack::{FlowSpec, Status, TcpState, Tuple};
/// let spec = FlowSpec::new(Tuple::tcp(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80)))
///     .timeout(3600)
///     .tcp_state(TcpState::Established)
///     .status(Status::SEEN_REPLY | Status::ASSURED)
///     .mark(7)
///     .zone(3);
/// assert_eq!(spec.reply.src_port(), Some(80));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowSpec {
    /// Original-direction tuple.
    pub orig: Tuple,
    /// Reply-direction tuple (defaults to `orig.reversed()`, i.e. no NAT).
    pub reply: Tuple,
    /// Timeout in seconds; required to create.
    pub timeout: Option<u32>,
    /// Status bits; `CONFIRMED` is always added. On create this is the new
    /// flow's status; on an existing flow [`FlowSpec::status_change`] says
    /// whether the bits are added (the default) or the word is sent as given.
    /// Only the kernel's 16 status bits (`0x0001`-`0x8000`) are accepted.
    pub status: Option<Status>,
    /// How [`FlowSpec::status`] applies to an existing flow.
    pub status_change: StatusChange,
    /// Connection mark.
    pub mark: Option<u32>,
    /// Zone (both directions); also selects the flow on update.
    pub zone: Option<u16>,
    /// Protocol state (TCP state, window scales, flags; SCTP state and tags).
    pub protoinfo: Option<ProtoInfo>,
    /// Connection labels (replaces all labels). The kernel silently ignores
    /// them unless a ruleset in the namespace uses labels (e.g. an nftables
    /// `ct label set` rule), which is what allocates the label storage.
    pub labels: Option<Labels>,
    /// Helper to attach by name (its module must be loaded), create only.
    pub helper: Option<String>,
    /// Sequence adjustment, original direction (`CTA_SEQ_ADJ_ORIG`).
    pub seqadj_orig: Option<SeqAdj>,
    /// Sequence adjustment, reply direction (`CTA_SEQ_ADJ_REPLY`).
    pub seqadj_reply: Option<SeqAdj>,
    /// SYN proxy state (`CTA_SYNPROXY`).
    pub synproxy: Option<Synproxy>,
    /// Original tuple of an existing master flow (`CTA_TUPLE_MASTER`), create
    /// only: the new flow becomes `EXPECTED`, related to that master.
    pub master: Option<Tuple>,
    /// Source NAT binding (`CTA_NAT_SRC`), create only; see [`FlowSpec::snat`].
    pub snat: Option<NatTarget>,
    /// Destination NAT binding (`CTA_NAT_DST`), create only; see [`FlowSpec::dnat`].
    pub dnat: Option<NatTarget>,
}

/// Where a NAT binding maps one end of a new flow (`CTA_NAT_SRC` /
/// `CTA_NAT_DST`, a range of one address and one port, like
/// `conntrack -I --src-nat IP[:PORT]`).
///
/// The kernel (module `nf_nat`) computes the reply tuple from the original
/// tuple and the binding, and marks the flow `SRC_NAT`/`DST_NAT` when the
/// binding changes anything. Whenever a create carries one binding, the kernel
/// sets up the other direction as a null binding, so the flow gets both
/// `SRC_NAT_DONE` and `DST_NAT_DONE`, as a flow that passed the NAT hooks
/// does. A target with neither address nor port is a null binding: nothing
/// changes, only the `*_NAT_DONE` bits are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NatTarget {
    /// The address to map to (`None`: keep the address).
    pub addr: Option<IpAddr>,
    /// The port to map to (`None`: keep the port; protocols with ports, or
    /// the echo id for ICMP).
    pub port: Option<u16>,
}

impl FlowSpec {
    /// A spec for `orig`, with the reply direction its reverse.
    pub fn new(orig: Tuple) -> Self {
        FlowSpec {
            reply: orig.reversed(),
            orig,
            timeout: None,
            status: None,
            status_change: StatusChange::Add,
            mark: None,
            zone: None,
            protoinfo: None,
            labels: None,
            helper: None,
            seqadj_orig: None,
            seqadj_reply: None,
            synproxy: None,
            master: None,
            snat: None,
            dnat: None,
        }
    }

    /// Sets the reply tuple (e.g. to describe NAT).
    pub fn reply(mut self, reply: Tuple) -> Self {
        self.reply = reply;
        self
    }

    /// Sets the timeout in seconds.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout = Some(seconds);
        self
    }

    /// Sets status bits (`SEEN_REPLY`, `ASSURED`, `FIXED_TIMEOUT`, ...): the
    /// status of a created flow; on an existing flow (update,
    /// create-or-update) the bits are added to those it has, as
    /// `conntrack -U -u BITS` does ([`StatusChange::Add`]).
    pub fn status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self.status_change = StatusChange::Add;
        self
    }

    /// Sends `status` as the status word, also to an existing flow
    /// ([`StatusChange::Word`]), without reading the flow first. The kernel's
    /// rules apply to the word as given: it refuses (`EBUSY`) a word lacking
    /// `SEEN_REPLY` or `ASSURED` when the flow has them, ignores the bits it
    /// keeps for itself ([`Status::UNCHANGEABLE`]: NAT, `EXPECTED`,
    /// `CONFIRMED`, `DYING`, ...) and adds the others; current kernels (6.x)
    /// clear no bit this way.
    pub fn status_word(mut self, status: Status) -> Self {
        self.status = Some(status);
        self.status_change = StatusChange::Word;
        self
    }

    /// Sets the mark.
    pub fn mark(mut self, mark: u32) -> Self {
        self.mark = Some(mark);
        self
    }

    /// Sets the zone.
    pub fn zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }

    /// Sets the TCP state (only the state; use [`FlowSpec::protoinfo`] for more).
    pub fn tcp_state(mut self, state: TcpState) -> Self {
        self.protoinfo = Some(ProtoInfo::Tcp(TcpInfo {
            state: Some(state),
            ..TcpInfo::default()
        }));
        self
    }

    /// Sets the protocol info.
    pub fn protoinfo(mut self, protoinfo: ProtoInfo) -> Self {
        self.protoinfo = Some(protoinfo);
        self
    }

    /// Sets the labels.
    pub fn labels(mut self, labels: Labels) -> Self {
        self.labels = Some(labels);
        self
    }

    /// Attaches a helper by name (e.g. `"ftp"`; at most 15 bytes, the kernel's limit).
    pub fn helper(mut self, name: impl Into<String>) -> Self {
        self.helper = Some(name.into());
        self
    }

    /// Sets the sequence adjustments of both directions.
    pub fn seqadj(mut self, orig: SeqAdj, reply: SeqAdj) -> Self {
        self.seqadj_orig = Some(orig);
        self.seqadj_reply = Some(reply);
        self
    }

    /// Sets the SYN proxy state.
    pub fn synproxy(mut self, synproxy: Synproxy) -> Self {
        self.synproxy = Some(synproxy);
        self
    }

    /// Makes the flow an expected (related) flow of the existing flow `master`.
    pub fn master(mut self, master: Tuple) -> Self {
        self.master = Some(master);
        self
    }

    /// Source NAT (`conntrack -I --src-nat`): the kernel maps the original
    /// source to `target` and derives the reply tuple itself, so the reply
    /// tuple of the spec must be `orig.reversed()` (the default). Create only.
    pub fn snat(mut self, target: NatTarget) -> Self {
        self.snat = Some(target);
        self
    }

    /// Destination NAT (`conntrack -I --dst-nat`), like [`FlowSpec::snat`]
    /// for the original destination.
    pub fn dnat(mut self, target: NatTarget) -> Self {
        self.dnat = Some(target);
        self
    }
}

/// Checks that a tuple can be sent: one address family, ports only for protocols with ports.
pub(crate) fn check_tuple(tuple: &Tuple, what: &str) -> Result<()> {
    if tuple.src.is_ipv4() != tuple.dst.is_ipv4() {
        return Err(Error::InvalidInput(format!(
            "{what}: source {} and destination {} are of different address families",
            tuple.src, tuple.dst
        )));
    }
    if let L4::Icmp { .. } = tuple.l4 {
        let expected = if tuple.is_ipv6() {
            proto::ICMPV6
        } else {
            proto::ICMP
        };
        if tuple.protocol != expected {
            return Err(Error::InvalidInput(format!(
                "{what}: ICMP identity on protocol {} (expected {expected} for this family)",
                tuple.protocol
            )));
        }
    }
    Ok(())
}

/// Encodes a tuple as the nest `kind` (`CTA_TUPLE_ORIG`, `_REPLY`, `_MASTER`).
pub(crate) fn put_tuple(enc: &mut Encoder, kind: u16, tuple: &Tuple) {
    let outer = enc.nest(kind);
    let ip = enc.nest(CTA_TUPLE_IP);
    match (tuple.src, tuple.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            enc.bytes(CTA_IP_V4_SRC, &src.octets());
            enc.bytes(CTA_IP_V4_DST, &dst.octets());
        }
        (src, dst) => {
            enc.bytes(CTA_IP_V6_SRC, &ipv6_octets(src));
            enc.bytes(CTA_IP_V6_DST, &ipv6_octets(dst));
        }
    }
    enc.end_nest(ip);
    let l4 = enc.nest(CTA_TUPLE_PROTO);
    enc.u8(CTA_PROTO_NUM, tuple.protocol);
    match tuple.l4 {
        L4::None => {}
        L4::Ports { src, dst } => {
            enc.be16(CTA_PROTO_SRC_PORT, src);
            enc.be16(CTA_PROTO_DST_PORT, dst);
        }
        L4::Icmp {
            id,
            icmp_type,
            code,
        } => {
            let (id_kind, type_kind, code_kind) = if tuple.protocol == proto::ICMPV6 {
                (
                    CTA_PROTO_ICMPV6_ID,
                    CTA_PROTO_ICMPV6_TYPE,
                    CTA_PROTO_ICMPV6_CODE,
                )
            } else {
                (CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE)
            };
            enc.be16(id_kind, id);
            enc.u8(type_kind, icmp_type);
            enc.u8(code_kind, code);
        }
    }
    enc.end_nest(l4);
    if let Some(zone) = tuple.zone {
        enc.be16(CTA_TUPLE_ZONE, zone);
    }
    enc.end_nest(outer);
}

fn ipv6_octets(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
    }
}

/// How [`FlowSpec::status`] changes an existing flow's status.
///
/// The kernel takes a whole status word (`ctnetlink_change_status`): it
/// refuses (`EBUSY`) a word that lacks `SEEN_REPLY` or `ASSURED` when the
/// flow has them (those bits can only be set), ignores the bits it keeps for
/// itself ([`Status::UNCHANGEABLE`]), and sets the others; current kernels
/// clear none. So sending only the wanted bits to a flow that has seen a
/// reply fails: [`StatusChange::Add`] reads the flow's status first and sends
/// it back with the bits added, as conntrack-tools does for `-U -u`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StatusChange {
    /// Add the bits to the flow's current status (read just before; retried
    /// if the flow gained `SEEN_REPLY`/`ASSURED` in between). `conntrack -U -u BITS`.
    #[default]
    Add,
    /// Send the status word as given, in one request with no read; the
    /// kernel's rules above apply to it.
    Word,
}

/// Refuses status bits the kernel does not define and, unless the word is
/// sent as given ([`StatusChange::Word`]), the two it refuses (`EBUSY`) to
/// see set by a request: `EXPECTED` (a flow becomes expected through
/// [`FlowSpec::master`]) and `DYING`. The other bits the kernel keeps for
/// itself ([`Status::UNCHANGEABLE`]) it ignores.
pub(crate) fn check_status(status: Status, what: &str, change: StatusChange) -> Result<()> {
    let unknown = status.bits() & !KNOWN_STATUS_BITS;
    if unknown != 0 {
        return Err(Error::InvalidInput(format!(
            "{what} {:#x}: bits {unknown:#x} are not status bits (the kernel defines 16: \
             0x1-0x8000, {})",
            status.bits(),
            Status::names().collect::<Vec<_>>().join(", ")
        )));
    }
    let refused = status & (Status::EXPECTED | Status::DYING);
    if change == StatusChange::Add && !refused.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{what}: the kernel refuses to set {refused:?} from a request (EXPECTED comes \
             with a master flow, FlowSpec::master; DYING with a delete)"
        )));
    }
    Ok(())
}

/// How `IPCTNL_MSG_CT_NEW` treats an existing / missing flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteMode {
    /// `NLM_F_CREATE | NLM_F_EXCL`: create; `EEXIST` if it exists.
    Create,
    /// no flag: update; `ENOENT` if missing.
    Update,
    /// `NLM_F_CREATE`: create, or update if it exists.
    CreateOrUpdate,
}

impl WriteMode {
    pub(crate) fn flags(self) -> u16 {
        match self {
            WriteMode::Create => NLM_F_CREATE | NLM_F_EXCL,
            WriteMode::Update => 0,
            WriteMode::CreateOrUpdate => NLM_F_CREATE,
        }
    }
}

/// Longest helper name the kernel accepts (`NF_CT_HELPER_NAME_LEN` 16, with the NUL).
pub(crate) const HELPER_NAME_MAX: usize = 15;

/// Encodes a `CT_NEW` request for `spec` (the message header is the caller's).
pub(crate) fn put_flow_spec(enc: &mut Encoder, spec: &FlowSpec, mode: WriteMode) -> Result<()> {
    check_tuple(&spec.orig, "original tuple")?;
    check_tuple(&spec.reply, "reply tuple")?;
    if spec.orig.is_ipv6() != spec.reply.is_ipv6() || spec.orig.protocol != spec.reply.protocol {
        return Err(Error::InvalidInput(
            "original and reply tuples must have the same address family and protocol".into(),
        ));
    }
    if let Some(status) = spec.status {
        check_status(status, "status", spec.status_change)?;
    }
    if mode != WriteMode::Update && spec.timeout.is_none() {
        return Err(Error::InvalidInput(
            "creating a flow needs a timeout".into(),
        ));
    }
    // Also keeps the attribute within netlink's 16-bit length: a longer name
    // would overflow it and the rest would be read as further attributes.
    if let Some(helper) = spec.helper.as_deref().filter(|h| h.len() > HELPER_NAME_MAX) {
        return Err(Error::InvalidInput(format!(
            "helper name {helper:.20?} is {} bytes: the kernel takes at most {HELPER_NAME_MAX} \
             (NF_CT_HELPER_NAME_LEN - 1)",
            helper.len()
        )));
    }
    put_tuple(enc, CTA_TUPLE_ORIG, &spec.orig);
    put_tuple(enc, CTA_TUPLE_REPLY, &spec.reply);
    if let Some(zone) = spec.zone {
        enc.be16(CTA_ZONE, zone);
    }
    if let Some(timeout) = spec.timeout {
        enc.be32(CTA_TIMEOUT, timeout);
    }
    // The kernel confirms a new flow before applying CTA_STATUS and refuses
    // (EBUSY) a status that would clear CONFIRMED: always include it. Without
    // a status, send none, so an update never tries to clear bits.
    if let Some(status) = spec.status {
        enc.be32(CTA_STATUS, (status | Status::CONFIRMED).bits());
    }
    if let Some(mark) = spec.mark {
        enc.be32(CTA_MARK, mark);
    }
    if let Some(protoinfo) = &spec.protoinfo {
        put_protoinfo(enc, protoinfo);
    }
    if let Some(labels) = spec.labels {
        enc.bytes(CTA_LABELS, &labels.to_kernel_bytes());
    }
    if let Some(helper) = &spec.helper {
        let help = enc.nest(CTA_HELP);
        enc.string(CTA_HELP_NAME, helper);
        enc.end_nest(help);
    }
    for (kind, seqadj) in [
        (CTA_SEQ_ADJ_ORIG, spec.seqadj_orig),
        (CTA_SEQ_ADJ_REPLY, spec.seqadj_reply),
    ] {
        if let Some(seqadj) = seqadj {
            let nest = enc.nest(kind);
            enc.be32(CTA_SEQADJ_CORRECTION_POS, seqadj.correction_pos);
            enc.be32(CTA_SEQADJ_OFFSET_BEFORE, seqadj.offset_before as u32);
            enc.be32(CTA_SEQADJ_OFFSET_AFTER, seqadj.offset_after as u32);
            enc.end_nest(nest);
        }
    }
    if let Some(synproxy) = spec.synproxy {
        put_synproxy(enc, synproxy);
    }
    if let Some(master) = &spec.master {
        check_tuple(master, "master tuple")?;
        put_tuple(enc, CTA_TUPLE_MASTER, master);
    }
    for (kind, target, what) in [
        (CTA_NAT_SRC, spec.snat, "source NAT"),
        (CTA_NAT_DST, spec.dnat, "destination NAT"),
    ] {
        if let Some(target) = target {
            if mode == WriteMode::Update {
                return Err(Error::InvalidInput(format!(
                    "{what}: the kernel sets up NAT only when it creates a flow"
                )));
            }
            put_nat(enc, kind, target, &spec.orig, what)?;
        }
    }
    Ok(())
}

/// Encodes a NAT binding as a range of one address and port.
fn put_nat(
    enc: &mut Encoder,
    kind: u16,
    target: NatTarget,
    orig: &Tuple,
    what: &str,
) -> Result<()> {
    if let Some(addr) = target.addr.filter(|a| a.is_ipv6() != orig.is_ipv6()) {
        return Err(Error::InvalidInput(format!(
            "{what} address {addr} is not of the flow's address family ({})",
            orig.src
        )));
    }
    if target.port.is_some() && !matches!(orig.l4, L4::Ports { .. } | L4::Icmp { .. }) {
        return Err(Error::InvalidInput(format!(
            "{what} port {}: protocol {} has no ports (nor an ICMP id)",
            target.port.unwrap_or_default(),
            proto::name(orig.protocol)
        )));
    }
    let nest = enc.nest(kind);
    match target.addr {
        Some(IpAddr::V4(addr)) => {
            enc.bytes(CTA_NAT_V4_MINIP, &addr.octets());
            enc.bytes(CTA_NAT_V4_MAXIP, &addr.octets());
        }
        Some(addr) => {
            enc.bytes(CTA_NAT_V6_MINIP, &ipv6_octets(addr));
            enc.bytes(CTA_NAT_V6_MAXIP, &ipv6_octets(addr));
        }
        None => {}
    }
    if let Some(port) = target.port {
        let proto_nest = enc.nest(CTA_NAT_PROTO);
        enc.be16(CTA_PROTONAT_PORT_MIN, port);
        enc.be16(CTA_PROTONAT_PORT_MAX, port);
        enc.end_nest(proto_nest);
    }
    enc.end_nest(nest);
    Ok(())
}

/// Encodes `spec` as the kernel dumps a flow created from it: `CT_NEW` with
/// `NLM_F_MULTI`, attributes in `ctnetlink_fill_info` order (ORIG, REPLY,
/// [ZONE], STATUS, MARK, ID, USE, TIMEOUT, [PROTOINFO], SYNPROXY — every
/// ctnetlink-created flow carries the SYN proxy extension). For benchmarks and
/// tests that need kernel-shaped buffers without a kernel.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn put_dump_entry(
    enc: &mut Encoder,
    spec: &FlowSpec,
    seq: u32,
    id: crate::flow::FlowId,
) {
    let mark = enc.begin(
        IPCTNL_MSG_CT_NEW,
        NLM_F_MULTI,
        seq,
        spec.orig.family(),
        NFNETLINK_V0,
    );
    put_tuple(enc, CTA_TUPLE_ORIG, &spec.orig);
    put_tuple(enc, CTA_TUPLE_REPLY, &spec.reply);
    if let Some(zone) = spec.zone {
        enc.be16(CTA_ZONE, zone);
    }
    enc.be32(
        CTA_STATUS,
        (spec.status.unwrap_or_default() | Status::CONFIRMED).bits(),
    );
    enc.be32(CTA_MARK, spec.mark.unwrap_or(0));
    enc.bytes(CTA_ID, &id.0);
    enc.be32(CTA_USE, 1);
    enc.be32(CTA_TIMEOUT, spec.timeout.unwrap_or(0));
    if let Some(protoinfo) = &spec.protoinfo {
        put_protoinfo(enc, protoinfo);
    }
    put_synproxy(enc, spec.synproxy.unwrap_or_default());
    enc.end(mark);
}

fn put_synproxy(enc: &mut Encoder, synproxy: Synproxy) {
    let nest = enc.nest(CTA_SYNPROXY);
    enc.be32(CTA_SYNPROXY_ISN, synproxy.isn);
    enc.be32(CTA_SYNPROXY_ITS, synproxy.its);
    enc.be32(CTA_SYNPROXY_TSOFF, synproxy.tsoff);
    enc.end_nest(nest);
}

fn put_protoinfo(enc: &mut Encoder, protoinfo: &ProtoInfo) {
    let outer = enc.nest(CTA_PROTOINFO);
    match protoinfo {
        ProtoInfo::Tcp(tcp) => {
            let inner = enc.nest(CTA_PROTOINFO_TCP);
            if let Some(state) = tcp.state {
                enc.u8(CTA_PROTOINFO_TCP_STATE, state.raw());
            }
            if let Some(w) = tcp.wscale_orig {
                enc.u8(CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, w);
            }
            if let Some(w) = tcp.wscale_reply {
                enc.u8(CTA_PROTOINFO_TCP_WSCALE_REPLY, w);
            }
            if let Some((flags, mask)) = tcp.flags_orig {
                enc.bytes(
                    CTA_PROTOINFO_TCP_FLAGS_ORIGINAL,
                    &[flags.bits(), mask.bits()],
                );
            }
            if let Some((flags, mask)) = tcp.flags_reply {
                enc.bytes(CTA_PROTOINFO_TCP_FLAGS_REPLY, &[flags.bits(), mask.bits()]);
            }
            enc.end_nest(inner);
        }
        ProtoInfo::Sctp(sctp) => {
            let inner = enc.nest(CTA_PROTOINFO_SCTP);
            if let Some(state) = sctp.state {
                enc.u8(CTA_PROTOINFO_SCTP_STATE, state.raw());
            }
            if let Some(tag) = sctp.vtag_orig {
                enc.be32(CTA_PROTOINFO_SCTP_VTAG_ORIGINAL, tag);
            }
            if let Some(tag) = sctp.vtag_reply {
                enc.be32(CTA_PROTOINFO_SCTP_VTAG_REPLY, tag);
            }
            enc.end_nest(inner);
        }
        ProtoInfo::Dccp(dccp) => {
            let inner = enc.nest(CTA_PROTOINFO_DCCP);
            if let Some(state) = dccp.state {
                enc.u8(CTA_PROTOINFO_DCCP_STATE, state.raw());
            }
            if let Some(role) = dccp.role {
                enc.u8(CTA_PROTOINFO_DCCP_ROLE, role);
            }
            if let Some(seq) = dccp.handshake_seq {
                enc.be64(CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ, seq);
            }
            enc.end_nest(inner);
        }
    }
    enc.end_nest(outer);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_flow;
    use crate::flow::FlowId;
    use crate::wire::Messages;

    #[test]
    fn helper_names_beyond_the_kernel_limit_are_refused() {
        let orig = Tuple::tcp(([10, 0, 0, 1], 1111), ([10, 0, 0, 2], 21));
        let encode = |name: &str| {
            let spec = FlowSpec::new(orig).timeout(60).helper(name);
            let mut enc = Encoder::new();
            let m = enc.begin(IPCTNL_MSG_CT_NEW, NLM_F_REQUEST, 1, AF_INET, 0);
            let result = put_flow_spec(&mut enc, &spec, WriteMode::Create);
            enc.end(m);
            result
        };
        encode(&"f".repeat(15)).unwrap();
        let err = encode(&"f".repeat(16)).unwrap_err();
        assert!(err.to_string().contains("at most 15"), "{err}");
        // Longer than a netlink attribute length can say: refused, not truncated.
        assert!(encode(&"f".repeat(70_000)).is_err());
    }

    #[test]
    fn encoded_spec_decodes_back() {
        let orig = Tuple::tcp(([10, 0, 0, 1], 1111), ([10, 0, 0, 2], 80));
        let spec = FlowSpec::new(orig)
            .timeout(60)
            .tcp_state(TcpState::Established)
            .mark(9)
            .zone(4)
            .status(Status::ASSURED)
            .labels(Labels::default().with(3));
        let mut enc = Encoder::new();
        let m = enc.begin(IPCTNL_MSG_CT_NEW, NLM_F_REQUEST, 1, AF_INET, 0);
        put_flow_spec(&mut enc, &spec, WriteMode::Create).unwrap();
        enc.end(m);
        let msg = Messages::new(enc.as_bytes()).next().unwrap().unwrap();
        let flow = decode_flow(msg.payload).unwrap();
        assert_eq!(flow.orig, orig);
        assert_eq!(flow.reply, orig.reversed());
        assert_eq!(flow.status, Status::ASSURED | Status::CONFIRMED);
        assert_eq!(
            (flow.timeout, flow.mark, flow.zone),
            (Some(60), Some(9), Some(4))
        );
        assert_eq!(flow.tcp_state(), Some(TcpState::Established));
        assert_eq!(flow.labels, Some(Labels(8)));
    }

    #[test]
    fn dump_entries_decode_to_the_spec() {
        let orig = Tuple::udp(([10, 0, 0, 1], 5000), ([10, 0, 0, 2], 53));
        let spec = FlowSpec::new(orig).timeout(30).mark(3).zone(2);
        let mut enc = Encoder::new();
        put_dump_entry(&mut enc, &spec, 9, FlowId([1, 2, 3, 4]));
        let msg = Messages::new(enc.as_bytes()).next().unwrap().unwrap();
        assert_eq!((msg.kind, msg.flags, msg.seq), (0x100, NLM_F_MULTI, 9));
        let flow = decode_flow(msg.payload).unwrap();
        assert_eq!((flow.orig, flow.reply), (orig, orig.reversed()));
        assert_eq!(flow.status, Status::CONFIRMED);
        assert_eq!(
            (flow.timeout, flow.mark, flow.zone),
            (Some(30), Some(3), Some(2))
        );
        assert_eq!(
            (flow.id, flow.use_count),
            (Some(FlowId([1, 2, 3, 4])), Some(1))
        );
        assert_eq!(flow.synproxy, Some(Synproxy::default()));
    }

    #[test]
    fn bad_specs_are_refused_before_the_kernel() {
        let v4 = Tuple::udp(([10, 0, 0, 1], 1), ([10, 0, 0, 2], 2));
        let mut enc = Encoder::new();
        assert!(put_flow_spec(&mut enc, &FlowSpec::new(v4), WriteMode::Create).is_err());
        let mut mixed = v4;
        mixed.dst = "::1".parse().unwrap();
        assert!(put_flow_spec(
            &mut enc,
            &FlowSpec::new(mixed).timeout(1),
            WriteMode::Create
        )
        .is_err());
        assert!(put_flow_spec(&mut enc, &FlowSpec::new(v4), WriteMode::Update).is_ok());
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `conntrack.Flow`, `conntrack.Tuple` and `conntrack.Orphan`: frozen Python
//! objects over the library's owned [`Flow`] and [`Tuple`].
//!
//! A `Flow` object is the Rust value plus two empty cells: creating one costs
//! one allocation and a copy, whatever the flow carries. Every attribute is
//! converted when it is read (an `ipaddress` object only when an address is
//! asked for); the tuples and addresses are cached after the first read, so
//! `flow.orig is flow.orig`.

use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::time::Duration;

use conntrack::text::{self, TextOptions};
use conntrack::{proto, Flow, OrphanCategory, ProtoInfo, Status, Tuple, L4};
use pyo3::basic::CompareOp;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFrozenSet, PyString};

use crate::errors::{invalid, to_py_err};
use crate::pytypes;

/// A protocol given as a number, a `Protocol` member or a name (`"tcp"`).
pub(crate) fn extract_protocol(value: &Bound<'_, PyAny>) -> PyResult<u8> {
    let py = value.py();
    if let Ok(text) = value.cast::<PyString>() {
        return proto::parse_named("protocol", &text.to_cow()?).map_err(|e| to_py_err(py, e));
    }
    let number = crate::args::extract_bounded(
        "protocol",
        value,
        0,
        255,
        "a protocol name ('tcp') or number 0-255",
    )?;
    Ok(number as u8)
}

/// An address given as text or an `ipaddress` address.
pub(crate) fn extract_addr(value: &Bound<'_, PyAny>) -> PyResult<IpAddr> {
    value
        .extract::<IpAddr>()
        .map_err(|_| invalid(value.py(), format!("{value} is not an IP address")))
}

/// Whether the protocol's tuples carry ports (GRE: keys).
fn has_ports(protocol: u8) -> bool {
    matches!(
        protocol,
        proto::TCP | proto::UDP | proto::UDPLITE | proto::SCTP | proto::DCCP | proto::GRE
    )
}

/// `"BIT<n>"` names for status bits this library does not name.
pub(crate) fn status_flag_names(status: Status) -> Vec<String> {
    let mut named = 0u32;
    let mut names: Vec<String> = status
        .iter_names()
        .map(|(name, flag)| {
            named |= flag.bits();
            name.to_owned()
        })
        .collect();
    let unknown = status.bits() & !named;
    names.extend(
        (0..32)
            .filter(|bit| unknown >> bit & 1 == 1)
            .map(|bit| format!("BIT{bit}")),
    );
    names
}

/// The tuple as the `dump --json` example prints it (addresses as text).
fn tuple_dict<'py>(py: Python<'py>, tuple: &Tuple) -> PyResult<Bound<'py, PyDict>> {
    let icmp = tuple.icmp_fields();
    let dict = PyDict::new(py);
    dict.set_item("src", tuple.src.to_string())?;
    dict.set_item("dst", tuple.dst.to_string())?;
    dict.set_item("protocol", tuple.protocol)?;
    dict.set_item("src_port", tuple.src_port())?;
    dict.set_item("dst_port", tuple.dst_port())?;
    dict.set_item("icmp_type", icmp.map(|i| i.0))?;
    dict.set_item("icmp_code", icmp.map(|i| i.1))?;
    dict.set_item("icmp_id", icmp.map(|i| i.2))?;
    dict.set_item("zone", tuple.zone)?;
    Ok(dict)
}

fn protoinfo_dict<'py>(py: Python<'py>, info: &ProtoInfo) -> PyResult<Option<Bound<'py, PyDict>>> {
    let inner = PyDict::new(py);
    let kind = match info {
        ProtoInfo::Tcp(tcp) => {
            inner.set_item("state", tcp.state.map(|s| s.name()))?;
            inner.set_item("state_raw", tcp.state.map(|s| s.raw()))?;
            inner.set_item("wscale_orig", tcp.wscale_orig)?;
            inner.set_item("wscale_reply", tcp.wscale_reply)?;
            inner.set_item("flags_orig", tcp.flags_orig.map(|(f, _)| f.bits()))?;
            inner.set_item("mask_orig", tcp.flags_orig.map(|(_, m)| m.bits()))?;
            inner.set_item("flags_reply", tcp.flags_reply.map(|(f, _)| f.bits()))?;
            inner.set_item("mask_reply", tcp.flags_reply.map(|(_, m)| m.bits()))?;
            "tcp"
        }
        ProtoInfo::Sctp(sctp) => {
            inner.set_item("state", sctp.state.map(|s| s.name()))?;
            inner.set_item("state_raw", sctp.state.map(|s| s.raw()))?;
            inner.set_item("vtag_orig", sctp.vtag_orig)?;
            inner.set_item("vtag_reply", sctp.vtag_reply)?;
            "sctp"
        }
        ProtoInfo::Dccp(dccp) => {
            inner.set_item("state", dccp.state.map(|s| s.name()))?;
            inner.set_item("state_raw", dccp.state.map(|s| s.raw()))?;
            inner.set_item("role", dccp.role)?;
            inner.set_item("handshake_seq", dccp.handshake_seq)?;
            "dccp"
        }
        // A kind of protocol info added to the library later.
        _ => return Ok(None),
    };
    let outer = PyDict::new(py);
    outer.set_item(kind, inner)?;
    Ok(Some(outer))
}

fn counters_dict<'py>(py: Python<'py>, c: conntrack::Counters) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("packets", c.packets)?;
    dict.set_item("bytes", c.bytes)?;
    Ok(dict)
}

fn seqadj_dict<'py>(py: Python<'py>, s: conntrack::SeqAdj) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("correction_pos", s.correction_pos)?;
    dict.set_item("offset_before", s.offset_before)?;
    dict.set_item("offset_after", s.offset_after)?;
    Ok(dict)
}

/// The flow as the `dump --json` example prints it: the same keys, the same
/// values (addresses and names as text), so `json.dumps(flow.to_dict())` is
/// one line of `dump --json`.
pub(crate) fn flow_dict<'py>(py: Python<'py>, flow: &Flow) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("family", text::family_name(flow.family()))?;
    dict.set_item("protocol", flow.protocol())?;
    dict.set_item("protocol_name", proto::name(flow.protocol()))?;
    dict.set_item("orig", tuple_dict(py, &flow.orig)?)?;
    dict.set_item("reply", tuple_dict(py, &flow.reply)?)?;
    dict.set_item("status", flow.status.bits())?;
    dict.set_item("status_flags", status_flag_names(flow.status))?;
    dict.set_item("timeout", flow.timeout)?;
    dict.set_item("mark", flow.mark)?;
    dict.set_item("use", flow.use_count)?;
    dict.set_item("id", flow.id.map(|id| id.value()))?;
    dict.set_item("zone", flow.zone)?;
    let protoinfo = match &flow.protoinfo {
        Some(info) => protoinfo_dict(py, info)?,
        None => None,
    };
    dict.set_item("protoinfo", protoinfo)?;
    dict.set_item(
        "counters_orig",
        flow.counters_orig
            .map(|c| counters_dict(py, c))
            .transpose()?,
    )?;
    dict.set_item(
        "counters_reply",
        flow.counters_reply
            .map(|c| counters_dict(py, c))
            .transpose()?,
    )?;
    let timestamp = match flow.timestamp {
        Some(t) => {
            let ts = PyDict::new(py);
            ts.set_item("start", t.start)?;
            ts.set_item("stop", t.stop)?;
            Some(ts)
        }
        None => None,
    };
    dict.set_item("timestamp", timestamp)?;
    dict.set_item(
        "labels",
        flow.labels.map(|l| l.iter().collect::<Vec<u32>>()),
    )?;
    dict.set_item("helper", flow.helper.as_deref())?;
    dict.set_item("secctx", flow.secctx.as_deref())?;
    dict.set_item(
        "seqadj_orig",
        flow.seqadj_orig.map(|s| seqadj_dict(py, s)).transpose()?,
    )?;
    dict.set_item(
        "seqadj_reply",
        flow.seqadj_reply.map(|s| seqadj_dict(py, s)).transpose()?,
    )?;
    let synproxy = match flow.synproxy {
        Some(s) => {
            let d = PyDict::new(py);
            d.set_item("isn", s.isn)?;
            d.set_item("its", s.its)?;
            d.set_item("tsoff", s.tsoff)?;
            Some(d)
        }
        None => None,
    };
    dict.set_item("synproxy", synproxy)?;
    dict.set_item(
        "master",
        flow.master
            .as_ref()
            .map(|t| tuple_dict(py, t))
            .transpose()?,
    )?;
    dict.set_item("event_timestamp", flow.event_timestamp)?;
    Ok(dict)
}

/// A total order on flows, field by field in declaration order (the
/// original tuple first), consistent with equality.
fn flow_cmp(a: &Flow, b: &Flow) -> Ordering {
    a.orig
        .cmp(&b.orig)
        .then_with(|| a.reply.cmp(&b.reply))
        .then_with(|| a.zone.cmp(&b.zone))
        .then_with(|| a.id.cmp(&b.id))
        .then_with(|| a.status.cmp(&b.status))
        .then_with(|| a.timeout.cmp(&b.timeout))
        .then_with(|| a.mark.cmp(&b.mark))
        .then_with(|| a.use_count.cmp(&b.use_count))
        .then_with(|| a.protoinfo.cmp(&b.protoinfo))
        .then_with(|| a.counters_orig.cmp(&b.counters_orig))
        .then_with(|| a.counters_reply.cmp(&b.counters_reply))
        .then_with(|| a.timestamp.cmp(&b.timestamp))
        .then_with(|| a.labels.cmp(&b.labels))
        .then_with(|| a.helper.cmp(&b.helper))
        .then_with(|| a.secctx.cmp(&b.secctx))
        .then_with(|| a.seqadj_orig.cmp(&b.seqadj_orig))
        .then_with(|| a.seqadj_reply.cmp(&b.seqadj_reply))
        .then_with(|| a.synproxy.cmp(&b.synproxy))
        .then_with(|| a.master.cmp(&b.master))
        .then_with(|| a.event_timestamp.cmp(&b.event_timestamp))
}

fn compare<T: Ord>(a: &T, b: &T, op: CompareOp) -> bool {
    op.matches(a.cmp(b))
}

fn hash_of(value: &impl Hash) -> isize {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish() as isize
}

/// One direction of a flow: addresses, protocol, ports or ICMP identity.
///
/// Frozen, hashable and ordered. Build one to create, look up or delete a
/// flow: `Tuple("10.0.0.1", "10.0.0.2", "tcp", 40000, 80)`.
#[pyclass(frozen, module = "conntrack", name = "Tuple")]
pub(crate) struct FlowTuple {
    pub(crate) tuple: Tuple,
    src: PyOnceLock<Py<PyAny>>,
    dst: PyOnceLock<Py<PyAny>>,
}

impl FlowTuple {
    pub(crate) fn new(tuple: Tuple) -> Self {
        FlowTuple {
            tuple,
            src: PyOnceLock::new(),
            dst: PyOnceLock::new(),
        }
    }
}

fn cached_addr(py: Python<'_>, cell: &PyOnceLock<Py<PyAny>>, addr: IpAddr) -> PyResult<Py<PyAny>> {
    cell.get_or_try_init(py, || Ok::<_, PyErr>(addr.into_pyobject(py)?.unbind()))
        .map(|a| a.clone_ref(py))
}

#[pymethods]
impl FlowTuple {
    /// Builds a tuple. Port protocols (tcp, udp, udplite, sctp, dccp, gre)
    /// need both ports; ICMP and ICMPv6 take an identity (default: an echo
    /// request, id 0); other protocols take neither.
    #[new]
    #[pyo3(signature = (src, dst, proto = None, src_port = None, dst_port = None, *, icmp_type = None, icmp_code = 0, icmp_id = 0))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        src: &Bound<'_, PyAny>,
        dst: &Bound<'_, PyAny>,
        proto: Option<&Bound<'_, PyAny>>,
        src_port: Option<u16>,
        dst_port: Option<u16>,
        icmp_type: Option<u8>,
        icmp_code: u8,
        icmp_id: u16,
    ) -> PyResult<Self> {
        let src = extract_addr(src)?;
        let dst = extract_addr(dst)?;
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(invalid(
                py,
                format!("source {src} and destination {dst} are of different address families"),
            ));
        }
        let protocol = match proto {
            Some(p) => extract_protocol(p)?,
            None => proto::TCP,
        };
        let icmp_protocol = if src.is_ipv6() {
            proto::ICMPV6
        } else {
            proto::ICMP
        };
        let tuple = if has_ports(protocol) {
            match (src_port, dst_port) {
                (Some(sp), Some(dp)) => Tuple::ports(protocol, src, sp, dst, dp),
                _ => {
                    return Err(invalid(
                        py,
                        format!(
                            "a {} tuple needs src_port and dst_port",
                            proto::name(protocol)
                        ),
                    ))
                }
            }
        } else if protocol == proto::ICMP || protocol == proto::ICMPV6 {
            if protocol != icmp_protocol {
                return Err(invalid(
                    py,
                    format!(
                        "{} addresses need protocol {}",
                        if src.is_ipv6() { "IPv6" } else { "IPv4" },
                        proto::name(icmp_protocol)
                    ),
                ));
            }
            if src_port.is_some() || dst_port.is_some() {
                return Err(invalid(
                    py,
                    "ICMP tuples have no ports: give icmp_type/icmp_code/icmp_id",
                ));
            }
            let echo_request = if src.is_ipv6() { 128 } else { 8 };
            Tuple::icmp(
                src,
                dst,
                icmp_id,
                icmp_type.unwrap_or(echo_request),
                icmp_code,
            )
        } else {
            if src_port.is_some() || dst_port.is_some() {
                return Err(invalid(
                    py,
                    format!("protocol {protocol} has no ports in conntrack"),
                ));
            }
            Tuple::generic(protocol, src, dst)
        };
        Ok(FlowTuple::new(tuple))
    }

    /// Source address (`ipaddress.IPv4Address` or `IPv6Address`).
    #[getter]
    fn src(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        cached_addr(py, &self.src, self.tuple.src)
    }

    /// Destination address.
    #[getter]
    fn dst(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        cached_addr(py, &self.dst, self.tuple.dst)
    }

    /// Layer-4 protocol (`Protocol`, an `IntEnum`).
    #[getter]
    fn proto<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        pytypes::PROTOCOLS.member(py, self.tuple.protocol)
    }

    /// 4 or 6.
    #[getter]
    fn family(&self) -> u8 {
        if self.tuple.is_ipv6() {
            6
        } else {
            4
        }
    }

    /// Source port (GRE: key), `None` for protocols without ports.
    #[getter]
    fn src_port(&self) -> Option<u16> {
        self.tuple.src_port()
    }

    /// Destination port (GRE: key), `None` for protocols without ports.
    #[getter]
    fn dst_port(&self) -> Option<u16> {
        self.tuple.dst_port()
    }

    /// ICMP type, `None` unless ICMP/ICMPv6.
    #[getter]
    fn icmp_type(&self) -> Option<u8> {
        self.tuple.icmp_fields().map(|i| i.0)
    }

    /// ICMP code, `None` unless ICMP/ICMPv6.
    #[getter]
    fn icmp_code(&self) -> Option<u8> {
        self.tuple.icmp_fields().map(|i| i.1)
    }

    /// ICMP echo identifier, `None` unless ICMP/ICMPv6.
    #[getter]
    fn icmp_id(&self) -> Option<u16> {
        self.tuple.icmp_fields().map(|i| i.2)
    }

    /// Directional zone (`CTA_TUPLE_ZONE`), usually `None`.
    #[getter]
    fn zone(&self) -> Option<u16> {
        self.tuple.zone
    }

    /// The tuple of the other direction when there is no NAT (addresses and
    /// ports swapped, ICMP requests turned into replies).
    fn reversed(&self) -> FlowTuple {
        FlowTuple::new(self.tuple.reversed())
    }

    /// A JSON-ready dict (the `orig` object of `dump --json`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        tuple_dict(py, &self.tuple)
    }

    fn __repr__(&self) -> String {
        let t = &self.tuple;
        let mut text = format!(
            "Tuple('{}', '{}', '{}'",
            t.src,
            t.dst,
            match proto::name(t.protocol) {
                "unknown" => t.protocol.to_string(),
                name => name.to_owned(),
            }
        );
        match t.l4 {
            L4::Ports { src, dst } => text.push_str(&format!(", {src}, {dst}")),
            L4::Icmp {
                id,
                icmp_type,
                code,
            } => text.push_str(&format!(
                ", icmp_type={icmp_type}, icmp_code={code}, icmp_id={id}"
            )),
            L4::None => {}
        }
        text.push(')');
        text
    }

    fn __hash__(&self) -> isize {
        hash_of(&self.tuple)
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        match other.cast::<FlowTuple>() {
            Ok(other) => Ok(compare(&self.tuple, &other.get().tuple, op)
                .into_pyobject(py)?
                .to_owned()
                .into_any()
                .unbind()),
            Err(_) => Ok(py.NotImplemented()),
        }
    }
}

/// One conntrack entry, as the kernel reported it. Frozen, hashable and
/// ordered (equal when every field is equal; ordered by original tuple first).
#[pyclass(frozen, subclass, module = "conntrack", name = "Flow")]
pub(crate) struct PyFlow {
    pub(crate) flow: Flow,
    orig: PyOnceLock<Py<FlowTuple>>,
    reply: PyOnceLock<Py<FlowTuple>>,
}

impl PyFlow {
    pub(crate) fn new(flow: Flow) -> Self {
        PyFlow {
            flow,
            orig: PyOnceLock::new(),
            reply: PyOnceLock::new(),
        }
    }
}

fn cached_tuple(
    py: Python<'_>,
    cell: &PyOnceLock<Py<FlowTuple>>,
    tuple: Tuple,
) -> PyResult<Py<FlowTuple>> {
    cell.get_or_try_init(py, || Py::new(py, FlowTuple::new(tuple)))
        .map(|t| t.clone_ref(py))
}

/// `None`, or the value converted by `build`.
fn optional_class<'py, T>(
    value: Option<T>,
    build: impl FnOnce(T) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    value.map(build).transpose()
}

#[pymethods]
impl PyFlow {
    /// Original direction (`conntrack.Tuple`).
    #[getter]
    fn orig(&self, py: Python<'_>) -> PyResult<Py<FlowTuple>> {
        cached_tuple(py, &self.orig, self.flow.orig)
    }

    /// Reply direction; differs from `orig.reversed()` under NAT.
    #[getter]
    fn reply(&self, py: Python<'_>) -> PyResult<Py<FlowTuple>> {
        cached_tuple(py, &self.reply, self.flow.reply)
    }

    /// 4 or 6.
    #[getter]
    fn family(&self) -> u8 {
        if self.flow.orig.is_ipv6() {
            6
        } else {
            4
        }
    }

    /// Layer-4 protocol (`Protocol`, an `IntEnum`: `flow.proto == "tcp"` is
    /// false, `flow.proto == Protocol.TCP` and `str(flow.proto) == "tcp"` hold).
    #[getter]
    fn proto<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        pytypes::PROTOCOLS.member(py, self.flow.protocol())
    }

    /// Protocol state: `TcpState`, `SctpState` or `DccpState`; `None` for
    /// protocols without one or when the kernel sent none.
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        Ok(match &self.flow.protoinfo {
            Some(ProtoInfo::Tcp(info)) => match info.state {
                Some(state) => Some(pytypes::TCP_STATES.member(py, state.raw())?),
                None => None,
            },
            Some(ProtoInfo::Sctp(info)) => match info.state {
                Some(state) => Some(pytypes::SCTP_STATES.member(py, state.raw())?),
                None => None,
            },
            Some(ProtoInfo::Dccp(info)) => match info.state {
                Some(state) => Some(pytypes::DCCP_STATES.member(py, state.raw())?),
                None => None,
            },
            _ => None,
        })
    }

    /// Status bits (`Status`, an `IntFlag`; unknown bits are kept).
    #[getter]
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        pytypes::STATUS.call1(py, (self.flow.status.bits(),))
    }

    /// Remaining lifetime in seconds (`None` for offloaded flows).
    #[getter]
    fn timeout(&self) -> Option<u32> {
        self.flow.timeout
    }

    /// Connection mark.
    #[getter]
    fn mark(&self) -> Option<u32> {
        self.flow.mark
    }

    /// Zone of both directions (`CTA_ZONE`); `None` for zone 0 or a
    /// directional zone (see `zone_id`).
    #[getter]
    fn zone(&self) -> Option<u16> {
        self.flow.zone
    }

    /// The zone id as the kernel's zone filter compares it (0 = default).
    #[getter]
    fn zone_id(&self) -> u16 {
        self.flow.zone_id()
    }

    /// Kernel id (the number `conntrack -o id` prints).
    #[getter]
    fn id(&self) -> Option<u32> {
        self.flow.id.map(|id| id.value())
    }

    /// Reference count (`CTA_USE`, diagnostic).
    #[getter]
    fn use_count(&self) -> Option<u32> {
        self.flow.use_count
    }

    /// Packets and bytes of the original direction (`Counters`), with
    /// `nf_conntrack_acct=1`.
    #[getter]
    fn counters_orig<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_class(self.flow.counters_orig, |c| {
            pytypes::COUNTERS.call1(py, (c.packets, c.bytes))
        })
    }

    /// Packets and bytes of the reply direction.
    #[getter]
    fn counters_reply<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_class(self.flow.counters_reply, |c| {
            pytypes::COUNTERS.call1(py, (c.packets, c.bytes))
        })
    }

    /// Start and stop times in ns since the epoch (`Timestamp`), with
    /// `nf_conntrack_timestamp=1`.
    #[getter]
    fn timestamp<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_class(self.flow.timestamp, |t| {
            pytypes::TIMESTAMP.call1(py, (t.start, t.stop))
        })
    }

    /// Set label bits, or `None` when the flow has no label.
    #[getter]
    fn labels<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyFrozenSet>>> {
        self.flow
            .labels
            .map(|labels| PyFrozenSet::new(py, labels.iter()))
            .transpose()
    }

    /// Attached helper's name (e.g. `"ftp"`).
    #[getter]
    fn helper(&self) -> Option<&str> {
        self.flow.helper.as_deref()
    }

    /// Security context.
    #[getter]
    fn secctx(&self) -> Option<&str> {
        self.flow.secctx.as_deref()
    }

    /// Protocol info as in `dump --json` (`{"tcp": {...}}`), or `None`.
    #[getter]
    fn protoinfo<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        match &self.flow.protoinfo {
            Some(info) => protoinfo_dict(py, info),
            None => Ok(None),
        }
    }

    /// NAT sequence adjustment, original direction (`SeqAdj`).
    #[getter]
    fn seqadj_orig<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_class(self.flow.seqadj_orig, |s| {
            pytypes::SEQ_ADJ.call1(py, (s.correction_pos, s.offset_before, s.offset_after))
        })
    }

    /// NAT sequence adjustment, reply direction.
    #[getter]
    fn seqadj_reply<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_class(self.flow.seqadj_reply, |s| {
            pytypes::SEQ_ADJ.call1(py, (s.correction_pos, s.offset_before, s.offset_after))
        })
    }

    /// SYN proxy state (`Synproxy`).
    #[getter]
    fn synproxy<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_class(self.flow.synproxy, |s| {
            pytypes::SYNPROXY.call1(py, (s.isn, s.its, s.tsoff))
        })
    }

    /// Original tuple of the master flow (expected flows).
    #[getter]
    fn master(&self) -> Option<FlowTuple> {
        self.flow.master.map(FlowTuple::new)
    }

    /// Event time in ns since the epoch (events only).
    #[getter]
    fn event_timestamp(&self) -> Option<u64> {
        self.flow.event_timestamp
    }

    /// A JSON-ready dict: exactly the object the `dump --json` example prints
    /// for this flow (same keys, addresses and names as text).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        flow_dict(py, &self.flow)
    }

    /// The line `conntrack -L` prints for this flow with the `-o` options
    /// given: `extended` (the layer-3 column), `id`, `labels` (labels by
    /// name at the end, names of `labels_file` or of the system's
    /// `connlabel.conf`, as `-o labels`). `str(flow)` is `to_text()`.
    #[pyo3(signature = (*, extended = true, id = true, labels = false, labels_file = None))]
    fn to_text(
        &self,
        py: Python<'_>,
        extended: bool,
        id: bool,
        labels: bool,
        labels_file: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let line = text::display(&self.flow, TextOptions { extended, id });
        if !labels {
            if labels_file.is_some_and(|f| !f.is_none()) {
                return Err(invalid(py, "labels_file: only with labels=True"));
            }
            return Ok(line.to_string());
        }
        let names = crate::args::label_map(py, labels_file)?;
        Ok(line.labels(&names).to_string())
    }

    /// The line `conntrack -L -o extended,id` prints for this flow.
    fn __str__(&self) -> String {
        text::display(&self.flow, TextOptions::EXTENDED_ID).to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "<Flow {}>",
            text::display(&self.flow, TextOptions::EXTENDED_ID)
        )
    }

    fn __hash__(&self) -> isize {
        hash_of(&self.flow)
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        match other.cast::<PyFlow>() {
            Ok(other) => Ok(op
                .matches(flow_cmp(&self.flow, &other.get().flow))
                .into_pyobject(py)?
                .to_owned()
                .into_any()
                .unbind()),
            Err(_) => Ok(py.NotImplemented()),
        }
    }
}

/// An orphaned flow (from `Conntrack.orphans`): a `Flow` with the reason
/// and the idle estimate.
#[pyclass(frozen, extends = PyFlow, module = "conntrack", name = "Orphan")]
pub(crate) struct PyOrphan {
    category: OrphanCategory,
    idle: Option<Duration>,
    age: Option<Duration>,
    evidence: conntrack::Evidence,
}

impl PyOrphan {
    pub(crate) fn create(py: Python<'_>, orphan: conntrack::Orphan) -> PyResult<Py<PyOrphan>> {
        let init = PyClassInitializer::from(PyFlow::new(orphan.flow)).add_subclass(PyOrphan {
            category: orphan.category,
            idle: orphan.idle,
            age: orphan.age,
            evidence: orphan.evidence,
        });
        Py::new(py, init)
    }
}

#[pymethods]
impl PyOrphan {
    /// Why it is an orphan (`OrphanCategory`).
    #[getter]
    fn category<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        pytypes::ORPHAN_CATEGORY.call1(py, (self.category.name(),))
    }

    /// Estimated seconds since the flow's last accepted packet.
    #[getter]
    fn idle(&self) -> Option<f64> {
        self.idle.map(|d| d.as_secs_f64())
    }

    /// Seconds since the flow was created (needs `nf_conntrack_timestamp=1`).
    #[getter]
    fn age(&self) -> Option<f64> {
        self.age.map(|d| d.as_secs_f64())
    }

    /// What the socket table says: `"confirmed"` (a local end without a
    /// socket) or `"suspected"` (idle by the estimate only).
    #[getter]
    fn evidence(&self) -> &'static str {
        self.evidence.name()
    }

    /// `Flow.to_dict()` plus `category`, `evidence`, `idle` and `age`.
    fn to_dict<'py>(slf: PyRef<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = flow_dict(py, &slf.as_super().flow)?;
        dict.set_item("category", slf.category.name())?;
        dict.set_item("evidence", slf.evidence.name())?;
        dict.set_item("idle", slf.idle.map(|d| d.as_secs_f64()))?;
        dict.set_item("age", slf.age.map(|d| d.as_secs_f64()))?;
        Ok(dict)
    }

    fn __repr__(slf: PyRef<'_, Self>) -> String {
        let idle = slf
            .idle
            .map_or_else(|| "?".to_owned(), |d| format!("{}s", d.as_secs()));
        format!(
            "<Orphan {} idle={idle} {}>",
            slf.category.name(),
            text::display(&slf.as_super().flow, TextOptions::EXTENDED_ID)
        )
    }
}

/// Wraps owned flows into Python objects.
pub(crate) fn flow_object(py: Python<'_>, flow: Flow) -> PyResult<Py<PyFlow>> {
    Py::new(py, PyFlow::new(flow))
}

/// An `Expectation` record.
pub(crate) fn expectation_object<'py>(
    py: Python<'py>,
    expectation: &conntrack::Expectation,
) -> PyResult<Bound<'py, PyAny>> {
    let tuple = |t: conntrack::Tuple| Py::new(py, FlowTuple::new(t));
    let kwargs = PyDict::new(py);
    kwargs.set_item("master", tuple(expectation.master)?)?;
    kwargs.set_item("tuple", tuple(expectation.tuple)?)?;
    kwargs.set_item("mask", tuple(expectation.mask)?)?;
    kwargs.set_item("timeout", expectation.timeout)?;
    kwargs.set_item("id", expectation.id.map(|id| id.value()))?;
    kwargs.set_item("helper", expectation.helper.as_deref())?;
    kwargs.set_item("zone", expectation.zone)?;
    kwargs.set_item(
        "flags",
        pytypes::EXPECT_FLAG.call1(py, (expectation.flags.bits(),))?,
    )?;
    kwargs.set_item("expect_class", expectation.class)?;
    kwargs.set_item("function", expectation.function.as_deref())?;
    match expectation.nat {
        Some(nat) => {
            kwargs.set_item("nat_direction", nat.direction)?;
            kwargs.set_item("nat_tuple", tuple(nat.tuple)?)?;
        }
        None => {
            kwargs.set_item("nat_direction", py.None())?;
            kwargs.set_item("nat_tuple", py.None())?;
        }
    }
    pytypes::EXPECTATION.build(py, &kwargs)
}

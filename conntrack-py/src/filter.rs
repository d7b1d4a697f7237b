// SPDX-License-Identifier: MIT OR Apache-2.0
//! `conntrack.Filter` and the keyword arguments every selecting method takes.
//!
//! One parser turns keyword criteria into the library's [`Filter`], for
//! `Filter(**criteria)` and for `ct.dump(**criteria)` alike, so both mean
//! exactly what the Rust builder methods mean: conditions combine with AND,
//! several values given to one condition with OR.

use conntrack::{proto, Filter, GroupBy};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyString, PyTuple};

use crate::args::{
    extract_bounded, extract_cidr, extract_family, extract_labels, extract_status_named,
    extract_tcp_state_named, extract_u16, extract_u32, for_each_value, wrong_type,
};
use crate::errors::{invalid, to_py_err};
use crate::flow::PyFlow;

/// The keyword criteria, in the order the docs list them.
pub(crate) const CRITERIA: [&str; 14] = [
    "family",
    "proto",
    "src",
    "dst",
    "reply_src",
    "reply_dst",
    "src_port",
    "dst_port",
    "state",
    "status",
    "status_unset",
    "mark",
    "zone",
    "labels",
];

/// Applies one keyword criterion to `filter`. `None` values add nothing.
fn apply(filter: Filter, name: &str, value: &Bound<'_, PyAny>) -> PyResult<Filter> {
    let py = value.py();
    if value.is_none() {
        return Ok(filter);
    }
    let mut filter = filter;
    match name {
        "family" => filter = filter.family(extract_family(value)?),
        // Collections go through the set builders, so that an empty one is a
        // condition no flow meets (any of nothing), never a missing one.
        "proto" => {
            let mut protocols = Vec::new();
            for_each_value(value, |v| {
                protocols.push(if let Ok(text) = v.cast::<PyString>() {
                    proto::parse_named("proto", &text.to_cow()?).map_err(|e| to_py_err(py, e))?
                } else {
                    extract_bounded(
                        "proto",
                        v,
                        0,
                        255,
                        "a protocol name ('tcp') or number 0-255",
                    )? as u8
                });
                Ok(())
            })?;
            filter = filter.protocols(protocols);
        }
        "src" | "dst" | "reply_src" | "reply_dst" => {
            let mut cidrs = Vec::new();
            for_each_value(value, |v| {
                cidrs.push(extract_cidr(name, v)?);
                Ok(())
            })?;
            filter = match name {
                "src" => filter.src_any(cidrs),
                "dst" => filter.dst_any(cidrs),
                "reply_src" => filter.reply_src_any(cidrs),
                _ => filter.reply_dst_any(cidrs),
            };
        }
        "src_port" | "dst_port" => {
            // A range is taken as the set of its ports (an empty range selects nothing).
            let mut ports = Vec::new();
            for_each_value(value, |v| {
                ports.push(extract_u16(name, v)?);
                Ok(())
            })?;
            filter = if name == "src_port" {
                filter.src_ports(ports)
            } else {
                filter.dst_ports(ports)
            };
        }
        "state" => {
            let mut states = Vec::new();
            for_each_value(value, |v| {
                states.push(extract_tcp_state_named(name, v)?);
                Ok(())
            })?;
            filter = filter.tcp_states(states);
        }
        "status" => filter = filter.status(extract_status_named(name, value)?),
        "status_unset" => filter = filter.status_unset(extract_status_named(name, value)?),
        "mark" => {
            filter = if let Ok(pair) = value.cast::<PyTuple>() {
                if pair.len() != 2 {
                    return Err(wrong_type(name, "an int or a (value, mask) pair", value));
                }
                let mark = extract_u32("mark value", &pair.get_item(0)?)?;
                let mask = extract_u32("mark mask", &pair.get_item(1)?)?;
                filter.mark_masked(mark, mask)
            } else {
                if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
                    return Err(wrong_type(name, "an int or a (value, mask) pair", value));
                }
                filter.mark(extract_u32(name, value)?)
            }
        }
        "zone" => filter = filter.zone(extract_u16(name, value)?),
        "labels" => filter = filter.labels(extract_labels(value)?),
        other => {
            return Err(PyTypeError::new_err(format!(
                "unexpected filter criterion {other:?} (known: {})",
                CRITERIA.join(", ")
            )))
        }
    }
    Ok(filter)
}

/// Builds a filter from keyword criteria.
/// The filter is checked as a whole here, at the edge: a contradiction (a
/// TCP state with `proto="udp"`, ports with `proto="gre"`, an IPv6 address
/// with `family="ipv4"`, a mark value with bits outside its mask) raises
/// `InvalidInputError` naming the conditions, never a silent 0.
pub(crate) fn from_criteria(criteria: Option<&Bound<'_, PyDict>>) -> PyResult<Filter> {
    let mut filter = Filter::new();
    if let Some(criteria) = criteria {
        for (name, value) in criteria.iter() {
            let name = name.extract::<String>()?;
            filter = apply(filter, &name, &value)?;
        }
        if let Some(py) = criteria.iter().next().map(|(name, _)| name.py()) {
            filter.validate().map_err(|e| to_py_err(py, e))?;
        }
    }
    Ok(filter)
}

/// The filter of a call: a `Filter` object or keyword criteria (not both).
pub(crate) fn resolve(
    filter: Option<&Bound<'_, PyAny>>,
    criteria: Option<&Bound<'_, PyDict>>,
) -> PyResult<Filter> {
    let has_criteria = criteria.is_some_and(|c| !c.is_empty());
    match filter {
        Some(object) if !object.is_none() => {
            let object = object.cast::<PyFilter>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "filter must be a conntrack.Filter, not {}",
                    object
                        .get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            if has_criteria {
                return Err(PyTypeError::new_err(
                    "give either a Filter or keyword criteria, not both",
                ));
            }
            Ok(object.get().filter.clone())
        }
        _ => from_criteria(criteria),
    }
}

/// The grouping keys of `count_by`: one name or a list of names.
pub(crate) fn group_keys(keys: &Bound<'_, PyAny>) -> PyResult<Vec<GroupBy>> {
    let py = keys.py();
    let mut parsed = Vec::new();
    for_each_value(keys, |key| {
        let name = key.extract::<String>().map_err(|_| {
            wrong_type(
                "count_by keys",
                "names such as 'src' or a list of them",
                key,
            )
        })?;
        let key = GroupBy::from_name(&name).ok_or_else(|| {
            let names: Vec<&str> = GroupBy::ALL.iter().map(|k| k.name()).collect();
            invalid(
                py,
                format!("unknown count_by key {name:?} ({})", names.join(", ")),
            )
        })?;
        parsed.push(key);
        Ok(())
    })?;
    if parsed.is_empty() {
        return Err(invalid(py, "count_by needs at least one key"));
    }
    Ok(parsed)
}

/// Which flows a dump, count or delete selects: `Filter(proto="udp",
/// dst_port=53)`. Frozen; equal when the conditions are equal.
///
/// Conditions combine with AND, the values of one condition with OR (an
/// empty collection selects nothing). Ports (`src_port`, `dst_port`) exist
/// only for TCP, UDP, UDP-Lite, SCTP and DCCP: flows of other protocols
/// never match them (never GRE, whose keys sit where ports would), and ports
/// with protocols none of which has ports are refused. `mark=(value, mask)`
/// selects the flows whose `(mark & mask) == value`; a value with bits
/// outside its mask is refused, and `(0, 0)` is no condition. A filter that
/// can match nothing raises `InvalidInputError` naming the conditions.
#[pyclass(frozen, module = "conntrack", name = "Filter")]
pub(crate) struct PyFilter {
    pub(crate) filter: Filter,
    /// The criteria as given, for `repr`.
    text: String,
}

#[pymethods]
impl PyFilter {
    #[new]
    #[pyo3(signature = (**criteria))]
    fn py_new(criteria: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let filter = from_criteria(criteria)?;
        let mut parts = Vec::new();
        if let Some(criteria) = criteria {
            for (name, value) in criteria.iter() {
                if !value.is_none() {
                    parts.push(format!("{}={}", name.str()?, value.repr()?));
                }
            }
        }
        Ok(PyFilter {
            filter,
            text: parts.join(", "),
        })
    }

    /// Whether `flow` satisfies every condition (evaluated here, in Rust,
    /// exactly as a dump evaluates it).
    fn matches(&self, flow: &Bound<'_, PyFlow>) -> bool {
        self.filter.matches(&flow.get().flow)
    }

    /// True when the filter selects every flow: no condition, or only
    /// conditions every flow satisfies (`mark=(0, 0)`, `labels=[]`, every
    /// protocol, `0.0.0.0/0` with `::/0`); `delete()` refuses it.
    #[getter]
    fn is_empty(&self) -> bool {
        self.filter.is_empty()
    }

    fn __repr__(&self) -> String {
        format!("Filter({})", self.text)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyFilter>()
            .is_ok_and(|other| other.get().filter == self.filter)
    }
}

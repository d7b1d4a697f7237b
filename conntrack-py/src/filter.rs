// SPDX-License-Identifier: MIT OR Apache-2.0
//! `conntrack.Filter` and the keyword arguments every selecting method takes.
//!
//! One parser turns keyword criteria into the library's [`Filter`], for
//! `Filter(**criteria)` and for `ct.dump(**criteria)` alike, so both mean
//! exactly what the Rust builder methods mean: conditions combine with AND,
//! several values given to one condition with OR.

use std::str::FromStr;

use conntrack::{Cidr, Family, Filter, GroupBy, Labels, Status, TcpState};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::errors::{invalid, to_py_err};
use crate::flow::{extract_protocol, PyFlow};

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

/// True for values given as a collection of alternatives (a list, set,
/// tuple, range, generator...). Text, numbers and `ipaddress` objects (which
/// all have `.version`; a network is iterable over its hosts, which is not
/// what a filter means) are single values.
fn is_collection(value: &Bound<'_, PyAny>) -> bool {
    if value.is_instance_of::<PyString>() || value.is_instance_of::<PyBytes>() {
        return false;
    }
    if value.hasattr("version").unwrap_or(false) {
        return false;
    }
    value.try_iter().is_ok()
}

/// Calls `each` for the value, or for every item of a collection.
fn for_each_value<'py>(
    value: &Bound<'py, PyAny>,
    mut each: impl FnMut(&Bound<'py, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    if is_collection(value) {
        for item in value.try_iter()? {
            each(&item?)?;
        }
        Ok(())
    } else {
        each(value)
    }
}

/// A CIDR or address given as text or an `ipaddress` object (address,
/// network or interface).
fn extract_cidr(value: &Bound<'_, PyAny>) -> PyResult<Cidr> {
    let text = value.str()?;
    Cidr::from_str(&text.to_cow()?).map_err(|e| to_py_err(value.py(), e))
}

fn extract_family(value: &Bound<'_, PyAny>) -> PyResult<Family> {
    let py = value.py();
    if let Ok(text) = value.cast::<PyString>() {
        return match text.to_cow()?.to_ascii_lowercase().as_str() {
            "ipv4" | "inet" | "4" => Ok(Family::Ipv4),
            "ipv6" | "inet6" | "6" => Ok(Family::Ipv6),
            "all" | "any" => Ok(Family::All),
            other => Err(invalid(
                py,
                format!("unknown family {other:?} (ipv4 or ipv6)"),
            )),
        };
    }
    match value.extract::<i64>() {
        // 4 and 6, or socket.AF_INET (2) and socket.AF_INET6 (10).
        Ok(n) if n == 4 || n == i64::from(libc::AF_INET) => Ok(Family::Ipv4),
        Ok(n) if n == 6 || n == i64::from(libc::AF_INET6) => Ok(Family::Ipv6),
        Ok(other) => Err(invalid(py, format!("unknown family {other} (4 or 6)"))),
        Err(_) => Err(PyTypeError::new_err("family is 'ipv4', 'ipv6', 4 or 6")),
    }
}

/// A TCP state given as a name (`"ESTABLISHED"`, any case), a `TcpState`
/// member or its number.
pub(crate) fn extract_tcp_state(value: &Bound<'_, PyAny>) -> PyResult<TcpState> {
    let py = value.py();
    if let Ok(text) = value.cast::<PyString>() {
        let wanted = text.to_cow()?;
        return TcpState::from_name(&wanted)
            .ok_or_else(|| invalid(py, format!("unknown TCP state {:?}", wanted.trim())));
    }
    // Enum members carry their number in `.value`.
    let number = match value.getattr("value") {
        Ok(inner) if !value.is_instance_of::<pyo3::types::PyInt>() => inner.extract::<u8>(),
        _ => value.extract::<u8>(),
    };
    number.map(TcpState::from_raw).map_err(|_| {
        PyTypeError::new_err("a TCP state is a name ('ESTABLISHED'), a TcpState or a number")
    })
}

/// Status bits given as an int (a `Status` flag is one), a bit name
/// (`"ASSURED"`) or a collection of them.
pub(crate) fn extract_status(value: &Bound<'_, PyAny>) -> PyResult<Status> {
    let py = value.py();
    let mut status = Status::empty();
    for_each_value(value, |item| {
        if let Ok(text) = item.cast::<PyString>() {
            let name = text.to_cow()?.trim().to_ascii_uppercase();
            let bit = Status::from_name(&name)
                .ok_or_else(|| invalid(py, format!("unknown status bit {name:?}")))?;
            status |= bit;
        } else {
            let bits = item.extract::<u32>().map_err(|_| {
                PyTypeError::new_err(
                    "status is a Status flag, an int, a bit name or a list of them",
                )
            })?;
            status |= Status::from_bits_retain(bits);
        }
        Ok(())
    })?;
    Ok(status)
}

/// Label bits given as one bit number or a collection of them.
pub(crate) fn extract_labels(value: &Bound<'_, PyAny>) -> PyResult<Labels> {
    let py = value.py();
    let mut labels = Labels::default();
    for_each_value(value, |item| {
        let bit = item.extract::<u32>()?;
        if bit >= Labels::BITS {
            return Err(invalid(py, format!("label bit {bit} is not below 128")));
        }
        labels = labels.with(bit);
        Ok(())
    })?;
    Ok(labels)
}

/// Applies one keyword criterion to `filter`. `None` values add nothing.
fn apply(filter: Filter, name: &str, value: &Bound<'_, PyAny>) -> PyResult<Filter> {
    let py = value.py();
    if value.is_none() {
        return Ok(filter);
    }
    let mut filter = filter;
    match name {
        "family" => filter = filter.family(extract_family(value)?),
        "proto" => for_each_value(value, |v| {
            filter = std::mem::take(&mut filter).protocol(extract_protocol(v)?);
            Ok(())
        })?,
        "src" | "dst" | "reply_src" | "reply_dst" => for_each_value(value, |v| {
            let cidr = extract_cidr(v)?;
            let f = std::mem::take(&mut filter);
            filter = match name {
                "src" => f.src(cidr),
                "dst" => f.dst(cidr),
                "reply_src" => f.reply_src(cidr),
                _ => f.reply_dst(cidr),
            };
            Ok(())
        })?,
        "src_port" | "dst_port" => for_each_value(value, |v| {
            let port = v
                .extract::<u16>()
                .map_err(|_| invalid(py, format!("{v} is not a port (0-65535)")))?;
            let f = std::mem::take(&mut filter);
            filter = if name == "src_port" {
                f.src_port(port)
            } else {
                f.dst_port(port)
            };
            Ok(())
        })?,
        "state" => for_each_value(value, |v| {
            filter = std::mem::take(&mut filter).tcp_state(extract_tcp_state(v)?);
            Ok(())
        })?,
        "status" => filter = filter.status(extract_status(value)?),
        "status_unset" => filter = filter.status_unset(extract_status(value)?),
        "mark" => {
            filter = if let Ok((mark, mask)) = value.extract::<(u32, u32)>() {
                filter.mark_masked(mark, mask)
            } else {
                let mark = value
                    .extract::<u32>()
                    .map_err(|_| PyTypeError::new_err("mark is an int or a (value, mask) pair"))?;
                filter.mark(mark)
            }
        }
        "zone" => filter = filter.zone(value.extract::<u16>()?),
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
pub(crate) fn from_criteria(criteria: Option<&Bound<'_, PyDict>>) -> PyResult<Filter> {
    let mut filter = Filter::new();
    if let Some(criteria) = criteria {
        for (name, value) in criteria.iter() {
            let name = name.extract::<String>()?;
            filter = apply(filter, &name, &value)?;
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
        let name = key
            .extract::<String>()
            .map_err(|_| PyTypeError::new_err("count_by keys are names such as 'src'"))?;
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

    /// True when the filter has no condition (selects every flow).
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

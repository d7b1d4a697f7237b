// SPDX-License-Identifier: MIT OR Apache-2.0
//! `conntrack.Filter` and the keyword arguments every selecting method takes.
//!
//! One parser turns keyword criteria into the library's [`Filter`], for
//! `Filter(**criteria)` and for `ct.dump(**criteria)` alike, so both mean
//! exactly what the Rust builder methods mean: conditions combine with AND,
//! several values given to one condition with OR.

use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::str::FromStr;

use conntrack::{proto, Cidr, Family, Filter, GroupBy, Labels, Status, TcpState};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyString, PyTuple};

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

/// `repr(value)` and its type's name, for messages about a wrong value.
fn shown(value: &Bound<'_, PyAny>) -> String {
    let repr = value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unrepresentable>".into());
    let kind = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    // A hostile value could have a huge repr: the message stays readable.
    if repr.chars().count() > 80 {
        let short: String = repr.chars().take(77).collect();
        format!("{short}... ({kind})")
    } else {
        format!("{repr} ({kind})")
    }
}

/// The `TypeError` for a value of the wrong type: the argument, what it
/// takes and what it got.
pub(crate) fn wrong_type(name: &str, expected: &str, value: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!("{name}: expected {expected}, got {}", shown(value)))
}

/// An integer argument in `min..=max`: a `TypeError` naming the argument for
/// anything but an `int` (`bool` included: `True` is no port, zone or mark),
/// an `InvalidInputError` (a `ValueError`) naming it and the allowed range
/// for a number outside it, however large.
pub(crate) fn extract_bounded(
    name: &str,
    value: &Bound<'_, PyAny>,
    min: u64,
    max: u64,
    expected: &str,
) -> PyResult<u64> {
    let py = value.py();
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(wrong_type(name, expected, value));
    }
    let in_range = value
        .extract::<i128>()
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| (min..=max).contains(n));
    in_range.ok_or_else(|| {
        invalid(
            py,
            format!(
                "{name}: {} is out of range ({min}-{max})",
                value.repr().map(|r| r.to_string()).unwrap_or_default()
            ),
        )
    })
}

pub(crate) fn extract_u16(name: &str, value: &Bound<'_, PyAny>) -> PyResult<u16> {
    let n = extract_bounded(name, value, 0, 65535, "an int 0-65535")?;
    Ok(n as u16)
}

pub(crate) fn extract_u32(name: &str, value: &Bound<'_, PyAny>) -> PyResult<u32> {
    let n = extract_bounded(name, value, 0, u64::from(u32::MAX), "an int 0-0xffffffff")?;
    Ok(n as u32)
}

/// A CIDR or address given as text or an `ipaddress` object (address,
/// network or interface).
fn extract_cidr(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Cidr> {
    let py = value.py();
    let is_ipaddress = value.hasattr("version").unwrap_or(false)
        && value.hasattr("max_prefixlen").unwrap_or(false);
    if !value.is_instance_of::<PyString>() && !is_ipaddress {
        return Err(wrong_type(
            name,
            "an address or network (str or ipaddress object)",
            value,
        ));
    }
    let text = value.str()?;
    let text = text.to_cow()?;
    Cidr::from_str(&text).map_err(|_| {
        invalid(
            py,
            format!("{name}: {text:?} is not an address or network (e.g. '10.0.0.1', '10.0.0.0/8', '2001:db8::/32')"),
        )
    })
}

pub(crate) fn extract_family(value: &Bound<'_, PyAny>) -> PyResult<Family> {
    let py = value.py();
    if let Ok(text) = value.cast::<PyString>() {
        return match text.to_cow()?.to_ascii_lowercase().as_str() {
            "ipv4" | "inet" | "4" => Ok(Family::Ipv4),
            "ipv6" | "inet6" | "6" => Ok(Family::Ipv6),
            "all" | "any" => Ok(Family::All),
            other => Err(invalid(
                py,
                format!("family: unknown family {other:?} (ipv4, ipv6 or all)"),
            )),
        };
    }
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(wrong_type(
            "family",
            "'ipv4', 'ipv6', 'all', 4, 6, socket.AF_INET or socket.AF_INET6",
            value,
        ));
    }
    match value.extract::<i64>() {
        // 4 and 6, or socket.AF_INET (2) and socket.AF_INET6 (10).
        Ok(n) if n == 4 || n == i64::from(libc::AF_INET) => Ok(Family::Ipv4),
        Ok(n) if n == 6 || n == i64::from(libc::AF_INET6) => Ok(Family::Ipv6),
        _ => Err(invalid(
            py,
            format!(
                "family: unknown family {} (4, 6, socket.AF_INET or socket.AF_INET6)",
                value.repr()?
            ),
        )),
    }
}

/// A TCP state given as a name (`"ESTABLISHED"`, any case; `"LISTEN"` as
/// conntrack-tools takes it), a `TcpState` member or its number (0-9).
pub(crate) fn extract_tcp_state(value: &Bound<'_, PyAny>) -> PyResult<TcpState> {
    extract_tcp_state_named("state", value)
}

fn extract_tcp_state_named(name: &str, value: &Bound<'_, PyAny>) -> PyResult<TcpState> {
    let py = value.py();
    if let Ok(text) = value.cast::<PyString>() {
        return TcpState::parse_named(name, &text.to_cow()?).map_err(|e| to_py_err(py, e));
    }
    // Enum members carry their number in `.value` (an IntEnum is also an int).
    let number = match value.getattr("value") {
        Ok(inner) if !value.is_instance_of::<PyInt>() => inner,
        _ => value.clone(),
    };
    let raw = extract_bounded(
        name,
        &number,
        0,
        9,
        "a TCP state name ('ESTABLISHED'), a TcpState or its number",
    )?;
    Ok(TcpState::from_raw(raw as u8))
}

/// Status bits given as an int (a `Status` flag is one), a bit name
/// (`"ASSURED"`) or a collection of them.
pub(crate) fn extract_status(value: &Bound<'_, PyAny>) -> PyResult<Status> {
    extract_status_named("status", value)
}

pub(crate) fn extract_status_named(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Status> {
    let py = value.py();
    let mut status = Status::empty();
    for_each_value(value, |item| {
        if let Ok(text) = item.cast::<PyString>() {
            status |= Status::parse_named(name, &text.to_cow()?).map_err(|e| to_py_err(py, e))?;
        } else {
            let bits = extract_bounded(
                name,
                item,
                0,
                0xffff,
                "a Status flag, an int, a bit name or a list of them",
            )
            .map_err(|e| {
                if e.is_instance_of::<PyTypeError>(py) {
                    e
                } else {
                    invalid(
                        py,
                        format!(
                            "{name}: {} has bits the kernel does not define (its 16 status \
                             bits are 0x1-0x8000)",
                            item.repr().map(|r| r.to_string()).unwrap_or_default()
                        ),
                    )
                }
            })?;
            status |= Status::from_bits_retain(bits as u32);
        }
        Ok(())
    })?;
    Ok(status)
}

/// A path given as `str`, `bytes` or `os.PathLike` (`None` for anything
/// else); an empty path or one with a NUL byte is refused.
pub(crate) fn extract_path(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Option<PathBuf>> {
    let is_path = value.is_instance_of::<PyString>()
        || value.is_instance_of::<PyBytes>()
        || value.hasattr("__fspath__")?;
    if !is_path {
        return Ok(None);
    }
    // `os.fsencode`: str and PathLike to the bytes the system sees.
    let encoded = value
        .py()
        .import("os")?
        .getattr("fsencode")?
        .call1((value,))?;
    let bytes = encoded.cast::<PyBytes>()?.as_bytes().to_vec();
    let path = PathBuf::from(std::ffi::OsString::from_vec(bytes));
    let raw = path.as_os_str().as_encoded_bytes();
    if raw.is_empty() || raw.contains(&0) {
        return Err(invalid(
            value.py(),
            format!("{name}: {} is not a path", value.repr()?),
        ));
    }
    Ok(Some(path))
}

/// The label names of `labels_file` (a path), or of the system's
/// `connlabel.conf` when it is `None`.
pub(crate) fn label_map(
    py: Python<'_>,
    labels_file: Option<&Bound<'_, PyAny>>,
) -> PyResult<conntrack::LabelMap> {
    match labels_file.filter(|l| !l.is_none()) {
        Some(path) => {
            let path = extract_path("labels_file", path)?
                .ok_or_else(|| wrong_type("labels_file", "a path", path))?;
            conntrack::LabelMap::load(path)
        }
        None => conntrack::LabelMap::system(),
    }
    .map_err(|e| to_py_err(py, e))
}

/// Label bits given as a bit number, a name of the system's
/// `connlabel.conf` (`conntrack.LABEL_FILES`), or a collection of them.
pub(crate) fn extract_labels(value: &Bound<'_, PyAny>) -> PyResult<Labels> {
    extract_labels_named("labels", value)
}

/// [`extract_labels`] for the argument `name`.
pub(crate) fn extract_labels_named(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Labels> {
    let py = value.py();
    let mut labels = Labels::default();
    let mut names: Option<conntrack::LabelMap> = None;
    for_each_value(value, |item| {
        if let Ok(text) = item.cast::<PyString>() {
            if names.is_none() {
                names = Some(conntrack::LabelMap::system().map_err(|e| to_py_err(py, e))?);
            }
            let map = names.as_ref().expect("just loaded");
            let bit = map
                .resolve(text.to_cow()?.trim())
                .map_err(|e| invalid(py, format!("{name}: {}", strip_prefix(&e))))?;
            labels = labels.with(bit);
            return Ok(());
        }
        let bit = extract_bounded(
            name,
            item,
            0,
            u64::from(Labels::BITS - 1),
            "a label bit number 0-127, a label name or a list of them",
        )?;
        labels = labels.with(bit as u32);
        Ok(())
    })?;
    Ok(labels)
}

/// A library error's text without its `invalid request: ` prefix.
fn strip_prefix(error: &conntrack::Error) -> String {
    match error {
        conntrack::Error::InvalidInput(text) => text.clone(),
        other => other.to_string(),
    }
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

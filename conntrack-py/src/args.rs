// SPDX-License-Identifier: MIT OR Apache-2.0
//! Arguments as they arrive from Python, checked once at the edge: numbers
//! in range, addresses and CIDRs, families, states, status bits,
//! expectation flags, labels
//! (bits or `connlabel.conf` names), paths. A wrong type is a `TypeError`
//! naming the argument and showing the value; a value out of range or
//! unknown is an `InvalidInputError` saying what is allowed. Every other
//! module of the extension reads its arguments through these.

use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::str::FromStr;

use conntrack::{Cidr, ExpectFlags, Family, Labels, Netns, Status, TcpState};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyInt, PyMapping, PyString};

use crate::errors::{invalid, to_py_err};

/// True for values given as a collection of alternatives (a list, set,
/// tuple, range, generator...). Text, numbers and `ipaddress` objects (which
/// all have `.version`; a network is iterable over its hosts, which is not
/// what a filter means) are single values, and so is a mapping: iterating it
/// would silently take its keys, so it meets the argument's type check.
pub(crate) fn is_collection(value: &Bound<'_, PyAny>) -> bool {
    if value.is_instance_of::<PyString>()
        || value.is_instance_of::<PyBytes>()
        || value.cast::<PyMapping>().is_ok()
    {
        return false;
    }
    if value.hasattr("version").unwrap_or(false) {
        return false;
    }
    value.try_iter().is_ok()
}

/// Calls `each` for the value, or for every item of a collection.
pub(crate) fn for_each_value<'py>(
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
pub(crate) fn shown(value: &Bound<'_, PyAny>) -> String {
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
pub(crate) fn extract_cidr(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Cidr> {
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

pub(crate) fn extract_tcp_state_named(name: &str, value: &Bound<'_, PyAny>) -> PyResult<TcpState> {
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
            let bits = extract_flag_bits(
                name,
                item,
                0xffff,
                "a Status flag, an int, a bit name or a list of them",
                || "its 16 status bits are 0x1-0x8000: an int 0-65535, 0x0-0xffff".to_owned(),
            )?;
            status |= Status::from_bits_retain(bits as u32);
        }
        Ok(())
    })?;
    Ok(status)
}

/// An int of flag bits, at most `max`: a wrong type is [`extract_bounded`]'s
/// `TypeError`; a larger value has bits the kernel does not define, said
/// with `defined` (the bits it does define).
fn extract_flag_bits(
    name: &str,
    item: &Bound<'_, PyAny>,
    max: u64,
    what: &str,
    defined: impl FnOnce() -> String,
) -> PyResult<u64> {
    let py = item.py();
    extract_bounded(name, item, 0, max, what).map_err(|e| {
        if e.is_instance_of::<PyTypeError>(py) {
            e
        } else {
            invalid(
                py,
                format!(
                    "{name}: {} has bits the kernel does not define ({})",
                    item.repr().map(|r| r.to_string()).unwrap_or_default(),
                    defined()
                ),
            )
        }
    })
}

/// Expectation flags given as an int (an `ExpectFlag` is one), a flag name
/// (`"PERMANENT"`, any case) or a collection of them.
pub(crate) fn extract_expect_flags(name: &str, value: &Bound<'_, PyAny>) -> PyResult<ExpectFlags> {
    let py = value.py();
    let known = || {
        ExpectFlags::all()
            .iter_names()
            .map(|(flag, bits)| format!("{flag} {:#x}", bits.bits()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut flags = ExpectFlags::empty();
    for_each_value(value, |item| {
        if let Ok(text) = item.cast::<PyString>() {
            let text = text.to_cow()?;
            let flag =
                ExpectFlags::from_name(&text.trim().to_ascii_uppercase()).ok_or_else(|| {
                    invalid(
                        py,
                        format!(
                            "{name}: unknown expectation flag {text:?} (one of {})",
                            known()
                        ),
                    )
                })?;
            flags |= flag;
        } else {
            let all = ExpectFlags::PERMANENT | ExpectFlags::INACTIVE | ExpectFlags::USERSPACE;
            let bits = extract_flag_bits(
                name,
                item,
                u64::from(all.bits()),
                "an ExpectFlag, an int, a flag name or a list of them",
                known,
            )?;
            flags |= ExpectFlags::from_bits_retain(bits as u32);
        }
        Ok(())
    })?;
    Ok(flags)
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
pub(crate) fn strip_prefix(error: &conntrack::Error) -> String {
    match error {
        conntrack::Error::InvalidInput(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A namespace given as `None` (the caller's), a name (`ip netns`), a path
/// (text containing `/`, or an `os.PathLike`) or a pid.
pub(crate) fn extract_netns(value: Option<&Bound<'_, PyAny>>) -> PyResult<Netns> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Netns::Current);
    };
    let py = value.py();
    // `True` is an int to Python, but never a pid: `netns=True` would be pid 1,
    // the host's namespace.
    if value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "netns: {} is not a namespace (give None, a name, a path or a pid)",
            value.repr()?
        )));
    }
    let nul = |text: &str| -> PyResult<()> {
        if text.contains('\0') {
            return Err(invalid(
                py,
                format!("netns: {} contains a NUL character", value.repr()?),
            ));
        }
        Ok(())
    };
    if let Ok(text) = value.cast::<PyString>() {
        let text = text.to_cow()?;
        nul(&text)?;
        return Ok(if text.contains('/') {
            Netns::Path(PathBuf::from(text.as_ref()))
        } else {
            Netns::named(text.as_ref())
        });
    }
    if let Ok(pid) = value.extract::<u32>() {
        return Ok(Netns::Pid(pid));
    }
    let path = value.extract::<PathBuf>().map_err(|_| {
        PyTypeError::new_err(format!(
            "netns: expected None, a namespace name, a path or a pid, not {}",
            value.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })?;
    nul(&path.to_string_lossy())?;
    Ok(Netns::Path(path))
}

/// `limit=` of the deleting calls: `None`, or a count 0-2**64-1 (0 deletes nothing).
pub(crate) fn extract_limit(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| extract_bounded("limit", v, 0, u64::MAX, "an int >= 0 or None"))
        .transpose()
}

/// `rate=` of the deleting calls: `None`, or deletes per second 1-2**32-1.
pub(crate) fn extract_rate(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u32>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| {
            extract_bounded("rate", v, 1, u64::from(u32::MAX), "an int > 0 or None")
                .map(|n| n as u32)
        })
        .transpose()
}

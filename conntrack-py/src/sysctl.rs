// SPDX-License-Identifier: MIT OR Apache-2.0
//! `conntrack.Sysctl` (typed settings of one namespace, persistence) and
//! `advise` (capacity advice for a memory budget), over the library's
//! `sysctl` module. The `conntrack.sysctl` Python module wraps `Sysctl` in
//! module-level functions.

use std::path::PathBuf;

use conntrack::sysctl::{Capacity, Key, MemoryModel, PersistPlan, Sysctl, SysctlRoot, Timeout};
use conntrack::Netns;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::args::extract_netns;
use crate::errors::{detached, invalid, to_py_err};
use crate::pytypes;

fn parse_key(py: Python<'_>, name: &str) -> PyResult<Key> {
    name.parse().map_err(|e| to_py_err(py, e))
}

fn capacity_object<'py>(py: Python<'py>, capacity: &Capacity) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("count", capacity.count)?;
    kwargs.set_item("max", capacity.max)?;
    kwargs.set_item("buckets", capacity.buckets)?;
    kwargs.set_item("slab_objects", capacity.slab_objects)?;
    kwargs.set_item("entry_bytes", capacity.model.entry_bytes)?;
    kwargs.set_item("extension_bytes", capacity.model.extension_bytes)?;
    kwargs.set_item("usage", capacity.usage())?;
    kwargs.set_item("chain_depth", capacity.chain_depth())?;
    kwargs.set_item("host_chain_depth", capacity.host_chain_depth())?;
    kwargs.set_item("chain_depth_at_max", capacity.chain_depth_at_max())?;
    kwargs.set_item("hash_table_bytes", capacity.hash_table_bytes())?;
    kwargs.set_item("entries_bytes", capacity.entries_bytes())?;
    kwargs.set_item("in_use_bytes", capacity.in_use_bytes())?;
    kwargs.set_item("at_max_bytes", capacity.at_max_bytes())?;
    pytypes::CAPACITY.build(py, &kwargs)
}

/// Typed access to the conntrack settings of one network namespace.
///
/// `Sysctl(netns=None, *, root=None)`: `netns` as for `Conntrack`; `root`
/// replaces `/` for `/proc`, `/sys` and `/etc` (tests use a temporary tree).
/// Keys are file names (`"nf_conntrack_max"`), sysctl names
/// (`"net.netfilter.nf_conntrack_max"`) or `"hashsize"`.
#[pyclass(frozen, module = "conntrack", name = "Sysctl")]
pub(crate) struct PySysctl {
    sysctl: Sysctl,
}

#[pymethods]
impl PySysctl {
    #[new]
    #[pyo3(signature = (netns = None, *, root = None))]
    fn py_new(netns: Option<&Bound<'_, PyAny>>, root: Option<PathBuf>) -> PyResult<Self> {
        let mut sysctl = Sysctl::in_netns(extract_netns(netns)?);
        if let Some(root) = root {
            sysctl = sysctl.with_root(SysctlRoot::under(root));
        }
        Ok(PySysctl { sysctl })
    }

    /// Reads one value (`FileNotFoundError` when the kernel has no such key).
    fn read(&self, py: Python<'_>, key: &str) -> PyResult<u64> {
        let key = parse_key(py, key)?;
        detached(py, || self.sysctl.read(key))
    }

    /// Reads one value; `None` when the kernel has no such key.
    fn read_optional(&self, py: Python<'_>, key: &str) -> PyResult<Option<u64>> {
        let key = parse_key(py, key)?;
        detached(py, || self.sysctl.read_optional(key))
    }

    /// Writes one value by writing the file itself; the kernel's errno comes
    /// back as the matching `OSError` (`PermissionError` for a global key
    /// outside the initial namespace, with a message that says so).
    fn write(&self, py: Python<'_>, key: &str, value: u64) -> PyResult<()> {
        let key = parse_key(py, key)?;
        detached(py, || self.sysctl.write(key, value))
    }

    /// Every setting in one namespace hop: `{name: value}` (`None` for keys
    /// this kernel lacks or, for `hashsize`, without root).
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let settings = detached(py, || self.sysctl.settings())?;
        let dict = PyDict::new(py);
        for key in Key::all() {
            dict.set_item(key.name(), settings.get(key))?;
        }
        Ok(dict)
    }

    /// Every per-protocol timeout in seconds: `{name: seconds}` (`None` when
    /// this kernel has no such key).
    fn timeouts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let timeouts = detached(py, || self.sysctl.timeouts())?;
        let dict = PyDict::new(py);
        for timeout in Timeout::ALL {
            dict.set_item(timeout.name(), timeouts.seconds(*timeout))?;
        }
        Ok(dict)
    }

    /// True in the initial namespace (where global keys are writable).
    fn is_initial_namespace(&self, py: Python<'_>) -> PyResult<bool> {
        detached(py, || self.sysctl.is_initial_namespace())
    }

    /// Entries, limit, buckets and their kernel memory (`Capacity`).
    fn capacity<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let capacity = detached(py, || self.sysctl.capacity())?;
        capacity_object(py, &capacity)
    }

    /// Makes `values` (`{key: value}`) survive a reboot: one drop-in under
    /// `<root>/etc/sysctl.d/`, plus `modules-load.d` and (for `hashsize`)
    /// `modprobe.d`, written atomically and only when their content changes.
    /// With `dry_run=True` nothing is written; the report holds the contents.
    #[pyo3(signature = (values, /, *, dry_run = false))]
    fn persist<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'py, PyDict>,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut plan = PersistPlan::new();
        for (key, value) in values.iter() {
            let key = parse_key(py, &key.extract::<String>()?)?;
            plan = plan.set(key, value.extract::<u64>()?);
        }
        let root = self.sysctl.root().clone();
        let report = detached(py, || {
            if dry_run {
                plan.preview(&root)
            } else {
                plan.persist(&root)
            }
        })?;
        let files = report
            .files
            .iter()
            .map(|file| {
                let d = PyDict::new(py);
                d.set_item("path", file.path.display().to_string())?;
                d.set_item("outcome", file.outcome.name())?;
                d.set_item("content", &file.content)?;
                Ok(d)
            })
            .collect::<PyResult<Vec<_>>>()?;
        let overrides = report
            .overrides
            .iter()
            .map(|line| {
                let d = PyDict::new(py);
                d.set_item("path", line.path.display().to_string())?;
                d.set_item("line", line.line)?;
                d.set_item("key", &line.key)?;
                d.set_item("value", &line.value)?;
                d.set_item("ours", &line.ours)?;
                d.set_item("text", &line.text)?;
                Ok(d)
            })
            .collect::<PyResult<Vec<_>>>()?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("dry_run", report.dry_run)?;
        kwargs.set_item("changed", report.changed())?;
        kwargs.set_item("files", files)?;
        kwargs.set_item("overrides", overrides)?;
        pytypes::PERSIST_REPORT.build(py, &kwargs)
    }

    fn __repr__(&self) -> String {
        format!("<conntrack.Sysctl {}>", self.sysctl.netns())
    }
}

/// A memory size: bytes as an int, or text with a unit (`"512M"`,
/// `"1.5GiB"`; K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB
/// powers of 1000).
fn parse_size(value: &Bound<'_, PyAny>) -> PyResult<u64> {
    let py = value.py();
    let Ok(text) = value.cast::<PyString>() else {
        return value
            .extract::<u64>()
            .map_err(|_| invalid(py, format!("{value} is not a size in bytes")));
    };
    let text = text.to_cow()?;
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let bad = || {
        invalid(
            py,
            format!("{text:?} is not a size (e.g. 536870912, \"512M\", \"1.5GiB\")"),
        )
    };
    let number: f64 = number.parse().map_err(|_| bad())?;
    let multiplier: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return Err(bad()),
    };
    let bytes = (number * multiplier).floor();
    if !(bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// The largest `nf_conntrack_max` and its buckets whose kernel memory fits
/// `memory_budget` with an average chain depth of at most `chain_depth` when
/// the table is full (`Recommendation`). Bytes per entry come from the slab
/// cache and the settings of `netns` (accounting, timestamps and events add
/// an extension area), unless `entry_bytes` is given.
#[pyfunction]
#[pyo3(signature = (memory_budget, *, chain_depth = 4.0, netns = None, entry_bytes = None, extension_bytes = None, event_listener = false))]
pub(crate) fn advise<'py>(
    py: Python<'py>,
    memory_budget: &Bound<'py, PyAny>,
    chain_depth: f64,
    netns: Option<&Bound<'py, PyAny>>,
    entry_bytes: Option<u64>,
    extension_bytes: Option<u64>,
    event_listener: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let budget = parse_size(memory_budget)?;
    let model = match entry_bytes {
        Some(entry) => MemoryModel::new(entry, extension_bytes.unwrap_or(0)),
        None => {
            let sysctl = Sysctl::in_netns(extract_netns(netns)?);
            let measured = detached(py, || {
                let settings = sysctl.settings()?;
                let slab = sysctl.slab()?;
                Ok(MemoryModel::for_settings(&slab, &settings, event_listener))
            })?;
            match extension_bytes {
                Some(extension) => MemoryModel::new(measured.entry_bytes, extension),
                None => measured,
            }
        }
    };
    let recommendation = model
        .recommend(budget, chain_depth)
        .map_err(|e| to_py_err(py, e))?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("max", recommendation.max)?;
    kwargs.set_item("buckets", recommendation.buckets)?;
    kwargs.set_item("per_entry_bytes", recommendation.per_entry_bytes)?;
    kwargs.set_item("hash_table_bytes", recommendation.hash_table_bytes)?;
    kwargs.set_item("entries_bytes", recommendation.entries_bytes)?;
    kwargs.set_item("pinned_bytes", recommendation.pinned_bytes)?;
    kwargs.set_item("chain_depth", recommendation.chain_depth)?;
    kwargs.set_item("memory_budget", budget)?;
    pytypes::RECOMMENDATION.build(py, &kwargs)
}

/// The named network namespaces (`ip netns list`), sorted.
#[pyfunction]
pub(crate) fn list_netns(py: Python<'_>) -> PyResult<Vec<String>> {
    detached(py, Netns::list_named)
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `conntrack.Conntrack`: a handle on the conntrack table of one network
//! namespace.
//!
//! A library [`Conntrack`] is one socket used by one caller at a time
//! (`&mut self`). The Python object keeps a small pool of them for its
//! namespace: each call takes one (opening a new one only when all are busy),
//! uses it with the interpreter released and puts it back. So a `Conntrack`
//! object can be shared by threads, and a dump in progress (which holds its
//! own handle) does not stop the caller from creating or deleting flows
//! inside the loop.

use std::sync::Arc;
use std::time::Duration;

use conntrack::restore::{saved_line, RestoreFailure, RestoreOptions, SavedFlow, SavedTable};
use conntrack::sysctl::{Key, Sysctl, Timeouts};
use conntrack::{
    Conntrack, DeleteOptions, DeletePath, DeleteReport, ExpectFlags, ExpectationSpec, Family,
    FlowChange, FlowSpec, GroupCounts, GroupValue, OrphanCategory, OrphanCounts, OrphanPolicy,
    ProtoInfo, SctpInfo, SctpState, SocketCheck, Status, StatusChange, TcpInfo,
};
use pyo3::exceptions::{PyOSError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::args::{
    extract_expect_flags, extract_family, extract_labels, extract_labels_named, extract_limit,
    extract_netns, extract_path, extract_rate, extract_status, extract_status_named,
    extract_tcp_state, extract_u16, extract_u32, label_map, wrong_type,
};
use crate::dump::{DumpIter, Source};
use crate::errors::{closed_error, detached, invalid, os_message, to_py_err};
use crate::events::PyEvents;
use crate::filter::{group_keys, resolve};
use crate::flow::{
    expectation_object, flow_object, status_flag_names, FlowTuple, PyFlow, PyOrphan,
};
use crate::pool::Pool;
use crate::pytypes;

/// A duration given in seconds (int or float) or as a `datetime.timedelta`.
fn extract_duration(value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let seconds = match value.call_method0("total_seconds") {
        Ok(seconds) => seconds.extract::<f64>()?,
        Err(_) => value
            .extract::<f64>()
            .map_err(|_| PyTypeError::new_err("a duration is seconds or a datetime.timedelta"))?,
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        invalid(
            value.py(),
            format!("{seconds} is not a duration in seconds"),
        )
    })
}

fn orphan_category(value: &Bound<'_, PyAny>) -> PyResult<OrphanCategory> {
    // `OrphanCategory` members carry their name in `.value`.
    let name = match value.cast::<PyString>() {
        Ok(text) => text.to_cow()?.into_owned(),
        Err(_) if value.is_instance(pytypes::ORPHAN_CATEGORY.get(value.py())?)? => {
            value.getattr("value")?.extract::<String>()?
        }
        Err(_) => {
            return Err(PyTypeError::new_err(format!(
                "categories: expected an OrphanCategory, a category name or a collection of \
                 them, not {}",
                value.repr()?
            )))
        }
    };
    OrphanCategory::ALL
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or_else(|| {
            invalid(
                value.py(),
                format!(
                    "unknown orphan category {name:?} (idle_established, long_unreplied, \
                     lingering_half_closed)"
                ),
            )
        })
}

/// The library's one spelling of the path (`DeletePath::name`), shared with
/// the operator tools' text and JSON.
fn delete_path_name(path: DeletePath) -> &'static str {
    path.name()
}

/// `zone=` of the expectation calls: `None` (the default zone) or 0-65535.
fn optional_zone(zone: Option<&Bound<'_, PyAny>>) -> PyResult<u16> {
    zone.filter(|z| !z.is_none())
        .map(|z| extract_u16("zone", z))
        .transpose()
        .map(|z| z.unwrap_or(0))
}

/// The fields a delete and a bulk update report alike: `matched`, the count
/// of flows done under `done_name`, `already_gone`, `failed` by errno,
/// `kernel_prefiltered`.
#[allow(clippy::too_many_arguments)]
fn bulk_fields<'py>(
    py: Python<'py>,
    matched: u64,
    done_name: &str,
    done: u64,
    already_gone: u64,
    failed: &std::collections::BTreeMap<i32, u64>,
    kernel_prefiltered: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("matched", matched)?;
    kwargs.set_item(done_name, done)?;
    kwargs.set_item("already_gone", already_gone)?;
    let by_errno = PyDict::new(py);
    for (errno, count) in failed {
        by_errno.set_item(errno, count)?;
    }
    kwargs.set_item("failed", by_errno)?;
    kwargs.set_item("kernel_prefiltered", kernel_prefiltered)?;
    Ok(kwargs)
}

fn delete_report<'py>(py: Python<'py>, report: &DeleteReport) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = bulk_fields(
        py,
        report.matched,
        "deleted",
        report.deleted,
        report.already_gone,
        &report.failed,
        report.kernel_prefiltered,
    )?;
    kwargs.set_item("path", delete_path_name(report.path))?;
    pytypes::DELETE_REPORT.build(py, &kwargs)
}

fn orphan_counts<'py>(py: Python<'py>, counts: &OrphanCounts) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("idle_established", counts.idle_established)?;
    kwargs.set_item("long_unreplied", counts.long_unreplied)?;
    kwargs.set_item("lingering_half_closed", counts.lingering_half_closed)?;
    kwargs.set_item("candidates", counts.candidates)?;
    kwargs.set_item("unestimated", counts.unestimated)?;
    kwargs.set_item("confirmed", counts.confirmed)?;
    kwargs.set_item("suspected", counts.suspected)?;
    kwargs.set_item("alive", counts.alive)?;
    pytypes::ORPHAN_COUNTS.build(py, &kwargs)
}

fn cpu_counters<'py>(
    py: Python<'py>,
    counters: &conntrack::CpuCounters,
) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(py);
    for (name, value) in counters.fields() {
        kwargs.set_item(name, value)?;
    }
    pytypes::CPU_COUNTERS.build(py, &kwargs)
}

/// One component of a `count_by` key as a Python value.
fn group_value<'py>(
    py: Python<'py>,
    key: conntrack::GroupBy,
    value: &GroupValue,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        GroupValue::Addr(addr) => addr.into_pyobject(py)?,
        GroupValue::Number(n) if key == conntrack::GroupBy::Protocol => {
            pytypes::PROTOCOLS.member(py, u8::try_from(*n).unwrap_or(u8::MAX))?
        }
        GroupValue::Number(n) => n.into_pyobject(py)?.into_any(),
        GroupValue::TcpState(state) => pytypes::TCP_STATES.member(py, state.raw())?,
        GroupValue::None => py.None().into_bound(py),
        // A kind of value added to the library later: its text.
        other => PyString::new(py, &other.to_string()).into_any(),
    })
}

fn group_counts<'py>(
    py: Python<'py>,
    keys: &[conntrack::GroupBy],
    counts: &GroupCounts,
) -> PyResult<Bound<'py, PyAny>> {
    let items = PyList::empty(py);
    for (values, count) in &counts.groups {
        let parts = keys
            .iter()
            .zip(values)
            .map(|(key, value)| group_value(py, *key, value))
            .collect::<PyResult<Vec<_>>>()?;
        let key = if parts.len() == 1 {
            parts.into_iter().next().expect("one part")
        } else {
            PyTuple::new(py, parts)?.into_any()
        };
        items.append((key, count))?;
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("total", counts.total)?;
    kwargs.set_item("other", counts.other)?;
    kwargs.set_item("other_groups", counts.other_groups)?;
    pytypes::GROUP_COUNTS.get(py)?.call((items,), Some(&kwargs))
}

/// The `OSError` for a `status_word` the kernel refused (`EBUSY`): which of
/// `SEEN_REPLY` and `ASSURED` the word lacks, and why that is refused. The
/// library's own advice names its Rust API; this one names the arguments.
fn refused_word(py: Python<'_>, error: conntrack::Error, word: Status) -> PyErr {
    let lacking = (Status::SEEN_REPLY | Status::ASSURED) - word;
    if lacking.is_empty() {
        return to_py_err(py, error);
    }
    let text = os_message(libc::EBUSY, &error.to_string());
    let what = text.split(" — ").next().unwrap_or(&text);
    let names = |status: Status| {
        let names = status_flag_names(status);
        if names.is_empty() {
            "no bit".to_owned()
        } else {
            names.join("|")
        }
    };
    PyOSError::new_err((
        libc::EBUSY,
        format!(
            "{what} — status_word={:#x} ({}) lacks {}, {}: the kernel sets SEEN_REPLY and \
             ASSURED but never clears them, and refuses a word that would (send a word that \
             keeps them, or add bits with status=, which keeps the flow's own)",
            word.bits(),
            names(word),
            names(lacking),
            if lacking.bits().count_ones() == 1 {
                "which the flow has"
            } else {
                "and the flow has at least one of them"
            }
        ),
    ))
}

/// A handle on the conntrack table of one network namespace.
///
/// `Conntrack(netns=None)`: `netns` is a name (`ip netns add NAME`), a path
/// (`/proc/PID/ns/net`, any `os.PathLike`) or a pid; `None` is the caller's
/// namespace. Use it as a context manager or call `close()`. Safe to share
/// between threads.
#[pyclass(frozen, module = "conntrack", name = "Conntrack")]
pub(crate) struct PyConntrack {
    pool: Arc<Pool>,
    netns: Option<Py<PyAny>>,
}

impl PyConntrack {
    /// Runs `work` on a pooled library handle with the interpreter released,
    /// mapping its error: the one path every kernel call of this class takes.
    fn with_handle<T, F>(&self, py: Python<'_>, work: F) -> PyResult<T>
    where
        F: FnOnce(&mut Conntrack) -> conntrack::Result<T> + Send,
        T: Send,
    {
        if self.pool.is_closed() {
            return Err(closed_error());
        }
        let pool = &self.pool;
        detached(py, || {
            let mut ct = pool.take()?;
            let result = work(&mut ct);
            pool.put(ct);
            result
        })
    }

    /// Builds an orphan policy from the keyword arguments of the orphan methods.
    #[allow(clippy::too_many_arguments)]
    fn orphan_policy(
        &self,
        py: Python<'_>,
        idle: Option<&Bound<'_, PyAny>>,
        unreplied: Option<&Bound<'_, PyAny>>,
        half_closed: Option<&Bound<'_, PyAny>>,
        categories: Option<&Bound<'_, PyAny>>,
        include_nat: bool,
        exclude_assured: bool,
        timeouts: Option<&Bound<'_, PyDict>>,
        evidence: (bool, &str),
        filter: Option<&Bound<'_, PyAny>>,
        criteria: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<OrphanPolicy> {
        let (confirmed, sockets) = evidence;
        let check = match sockets {
            "off" => SocketCheck::Off,
            "namespace" => SocketCheck::Namespace,
            "all" => SocketCheck::AllNamespaces,
            other => {
                return Err(invalid(
                    py,
                    format!("sockets: {other:?} is not one of \"off\", \"namespace\", \"all\""),
                ))
            }
        };
        let mut policy = OrphanPolicy::new()
            .sockets(check)
            .require_confirmation(confirmed)
            .include_nat(include_nat)
            .exclude_assured(exclude_assured)
            .filter(resolve(filter, criteria)?);
        if let Some(idle) = idle {
            policy = policy.idle_established(extract_duration(idle)?);
        }
        if let Some(unreplied) = unreplied {
            policy = policy.unreplied(extract_duration(unreplied)?);
        }
        if let Some(half_closed) = half_closed {
            policy = policy.half_closed(extract_duration(half_closed)?);
        }
        if let Some(categories) = categories {
            for category in OrphanCategory::ALL {
                policy = policy.enable(category, false);
            }
            // One name or member, or a collection of them.
            let single = categories.is_instance_of::<PyString>() || categories.try_iter().is_err();
            let categories: Vec<Bound<'_, PyAny>> = if single {
                vec![categories.clone()]
            } else {
                categories.try_iter()?.collect::<PyResult<_>>()?
            };
            for category in &categories {
                policy = policy.enable(orphan_category(category)?, true);
            }
        }
        if let Some(overrides) = timeouts {
            let mut values = Vec::new();
            for (name, seconds) in overrides.iter() {
                let name = name.extract::<String>()?;
                let key: Key = name.parse().map_err(|e| crate::errors::to_py_err(py, e))?;
                let Key::Timeout(timeout) = key else {
                    return Err(invalid(py, format!("{name:?} is not a conntrack timeout")));
                };
                values.push((timeout, extract_duration(&seconds)?));
            }
            // Start from the namespace's own timeouts, then override.
            let netns = self.pool.netns().clone();
            let mut base: Timeouts = detached(py, move || Sysctl::in_netns(netns).timeouts())?;
            for (timeout, value) in values {
                base.set(timeout, value);
            }
            policy = policy.timeouts(base);
        }
        Ok(policy)
    }

    fn spec(
        py: Python<'_>,
        orig: &Bound<'_, FlowTuple>,
        options: SpecOptions<'_, '_>,
    ) -> PyResult<FlowSpec> {
        let orig = orig.get().tuple;
        let mut spec = FlowSpec::new(orig);
        if let Some(reply) = options.reply {
            spec = spec.reply(reply.get().tuple);
        }
        if let Some(timeout) = options.timeout.filter(|v| !v.is_none()) {
            spec = spec.timeout(extract_u32("timeout", timeout)?);
        }
        let status = options.status.filter(|v| !v.is_none());
        match (status, options.status_word.filter(|v| !v.is_none())) {
            (Some(status), Some(word)) => {
                return Err(PyTypeError::new_err(format!(
                    "give status= (bits added to the flow's own) or status_word= (the whole \
                     word, sent as given), not both: status={}, status_word={}",
                    status.repr()?,
                    word.repr()?
                )))
            }
            (Some(status), None) => spec = spec.status(extract_status(status)?),
            (None, Some(word)) => {
                spec = spec.status_word(extract_status_named("status_word", word)?)
            }
            (None, None) => {}
        }
        if let Some(mark) = options.mark.filter(|v| !v.is_none()) {
            spec = spec.mark(extract_u32("mark", mark)?);
        }
        if let Some(zone) = options.zone.filter(|v| !v.is_none()) {
            spec = spec.zone(extract_u16("zone", zone)?);
        }
        if let Some(state) = options.state {
            spec = match orig.protocol {
                conntrack::proto::TCP => spec.protoinfo(ProtoInfo::Tcp(TcpInfo {
                    state: Some(extract_tcp_state(state)?),
                    ..TcpInfo::default()
                })),
                conntrack::proto::SCTP => {
                    let name = state.str()?.to_cow()?.trim().to_ascii_uppercase();
                    let state = (0..=u8::MAX)
                        .map(SctpState::from_raw)
                        .find(|s| !matches!(s, SctpState::Unknown(_)) && s.name() == name)
                        .ok_or_else(|| invalid(py, format!("unknown SCTP state {name:?}")))?;
                    spec.protoinfo(ProtoInfo::Sctp(SctpInfo {
                        state: Some(state),
                        ..SctpInfo::default()
                    }))
                }
                other => {
                    return Err(invalid(
                        py,
                        format!("protocol {other} has no state to set (tcp and sctp do)"),
                    ))
                }
            };
        }
        if let Some(labels) = options.labels {
            spec = spec.labels(extract_labels(labels)?);
        }
        if let Some(helper) = options.helper {
            spec = spec.helper(helper);
        }
        Ok(spec)
    }
}

/// The optional parts of a flow to create or update.
struct SpecOptions<'a, 'py> {
    reply: Option<&'a Bound<'py, FlowTuple>>,
    timeout: Option<&'a Bound<'py, PyAny>>,
    status: Option<&'a Bound<'py, PyAny>>,
    /// The exact status word (update, create-or-update), exclusive with `status`.
    status_word: Option<&'a Bound<'py, PyAny>>,
    mark: Option<&'a Bound<'py, PyAny>>,
    zone: Option<&'a Bound<'py, PyAny>>,
    state: Option<&'a Bound<'py, PyAny>>,
    labels: Option<&'a Bound<'py, PyAny>>,
    helper: Option<String>,
}

/// Which library call a create-like method makes.
#[derive(Clone, Copy)]
enum Write {
    Create,
    Update,
    CreateOrUpdate,
}

#[pymethods]
impl PyConntrack {
    #[new]
    #[pyo3(signature = (netns = None))]
    fn py_new(py: Python<'_>, netns: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let parsed = extract_netns(netns)?;
        let opened = {
            let parsed = parsed.clone();
            detached(py, move || Conntrack::open_in(&parsed))?
        };
        let pool = Pool::new(parsed, opened);
        Ok(PyConntrack {
            pool: Arc::new(pool),
            netns: netns.filter(|n| !n.is_none()).map(|n| n.clone().unbind()),
        })
    }

    /// The namespace given to the constructor (`None`: the caller's).
    #[getter]
    fn netns(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.netns.as_ref().map(|n| n.clone_ref(py))
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Closes the handle's sockets; later calls raise `ValueError`. Dumps in
    /// progress run to their end. Idempotent.
    fn close(&self) {
        self.pool.close();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) {
        self.close();
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { " closed" } else { "" };
        format!("<conntrack.Conntrack {}{state}>", self.pool.netns())
    }

    /// Number of entries. Without criteria: from kernel statistics, in
    /// microseconds whatever the table size (expired entries not yet reaped
    /// included). With a filter or criteria: the flows a dump selects,
    /// counted in one streaming pass without building any object.
    #[pyo3(signature = (filter = None, /, **criteria))]
    fn count(
        &self,
        py: Python<'_>,
        filter: Option<&Bound<'_, PyAny>>,
        criteria: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<u64> {
        let filter = resolve(filter, criteria)?;
        if filter.is_empty() {
            self.with_handle(py, |ct| ct.count().map(u64::from))
        } else {
            self.with_handle(py, |ct| ct.count_matching(&filter))
        }
    }

    /// The table limit (`nf_conntrack_max`) as the kernel reports it.
    fn limit(&self, py: Python<'_>) -> PyResult<u32> {
        self.with_handle(py, |ct| ct.limit())
    }

    /// Entries, limit and the kernel's per-CPU counters with their totals.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (table, kernel) =
            self.with_handle(py, |ct| Ok((ct.table_stats()?, ct.kernel_stats()?)))?;
        let per_cpu = kernel
            .per_cpu
            .iter()
            .map(|cpu| {
                let kwargs = PyDict::new(py);
                kwargs.set_item("cpu", cpu.cpu)?;
                kwargs.set_item("counters", cpu_counters(py, &cpu.counters)?)?;
                pytypes::CPU_STATS.build(py, &kwargs)
            })
            .collect::<PyResult<Vec<_>>>()?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("entries", table.entries)?;
        kwargs.set_item("max_entries", table.max_entries)?;
        kwargs.set_item("per_cpu", PyTuple::new(py, per_cpu)?)?;
        kwargs.set_item("total", cpu_counters(py, &kernel.total)?)?;
        pytypes::STATS.build(py, &kwargs)
    }

    /// Iterates over the flows (all, or those a `Filter` / the criteria
    /// select), streaming: memory does not grow with the table.
    #[pyo3(signature = (filter = None, /, **criteria))]
    fn dump(
        &self,
        filter: Option<&Bound<'_, PyAny>>,
        criteria: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<DumpIter> {
        if self.closed() {
            return Err(closed_error());
        }
        DumpIter::start(
            self.pool.clone(),
            Source::Table(Box::new(resolve(filter, criteria)?)),
        )
    }

    /// Iterates over the table while zeroing each flow's counters as it is
    /// read (`conntrack -L -z`): every byte and packet is read exactly once
    /// across successive calls. Unfiltered on purpose (it would zero hidden
    /// flows); `family` narrows to one address family.
    #[pyo3(signature = (*, family = None))]
    fn dump_zeroing(&self, family: Option<&Bound<'_, PyAny>>) -> PyResult<DumpIter> {
        if self.closed() {
            return Err(closed_error());
        }
        let family = match family.filter(|f| !f.is_none()) {
            Some(family) => extract_family(family)?,
            None => Family::All,
        };
        DumpIter::start(self.pool.clone(), Source::Zeroing(family))
    }

    /// Iterates over the dying list (`conntrack -L dying`).
    fn dump_dying(&self) -> PyResult<DumpIter> {
        if self.closed() {
            return Err(closed_error());
        }
        DumpIter::start(self.pool.clone(), Source::Dying)
    }

    /// Iterates over the unconfirmed list (`conntrack -L unconfirmed`).
    fn dump_unconfirmed(&self) -> PyResult<DumpIter> {
        if self.closed() {
            return Err(closed_error());
        }
        DumpIter::start(self.pool.clone(), Source::Unconfirmed)
    }

    /// Changes every flow the filter or criteria select (`conntrack -U`
    /// with filter options): `set_mark` (an int, or `(value, mask)` to set
    /// only the mask's bits), labels to add or remove (bits or names),
    /// `set_timeout`, status bits to add. One dump and pipelined updates;
    /// `dry_run`, `limit`, `rate` as for `delete()`; an empty selection is
    /// refused. Returns an `UpdateReport`.
    #[pyo3(signature = (filter = None, /, *, set_mark = None, add_labels = None, remove_labels = None, set_timeout = None, add_status = None, dry_run = false, limit = None, rate = None, **criteria))]
    #[allow(clippy::too_many_arguments)]
    fn update_matching<'py>(
        &self,
        py: Python<'py>,
        filter: Option<&Bound<'py, PyAny>>,
        set_mark: Option<&Bound<'py, PyAny>>,
        add_labels: Option<&Bound<'py, PyAny>>,
        remove_labels: Option<&Bound<'py, PyAny>>,
        set_timeout: Option<&Bound<'py, PyAny>>,
        add_status: Option<&Bound<'py, PyAny>>,
        dry_run: bool,
        limit: Option<&Bound<'py, PyAny>>,
        rate: Option<&Bound<'py, PyAny>>,
        criteria: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (limit, rate) = (extract_limit(limit)?, extract_rate(rate)?);
        let mut change = FlowChange::new();
        if let Some(mark) = set_mark.filter(|m| !m.is_none()) {
            change = if let Ok(pair) = mark.cast::<PyTuple>() {
                if pair.len() != 2 {
                    return Err(PyTypeError::new_err(format!(
                        "set_mark: expected an int or a (value, mask) pair, got {}",
                        mark.repr()?
                    )));
                }
                change.mark_masked(
                    extract_u32("set_mark value", &pair.get_item(0)?)?,
                    extract_u32("set_mark mask", &pair.get_item(1)?)?,
                )
            } else {
                change.mark(extract_u32("set_mark", mark)?)
            };
        }
        if let Some(labels) = add_labels.filter(|l| !l.is_none()) {
            change = change.add_labels(extract_labels_named("add_labels", labels)?);
        }
        if let Some(labels) = remove_labels.filter(|l| !l.is_none()) {
            change = change.remove_labels(extract_labels_named("remove_labels", labels)?);
        }
        if let Some(timeout) = set_timeout.filter(|t| !t.is_none()) {
            change = change.timeout(extract_u32("set_timeout", timeout)?);
        }
        if let Some(status) = add_status.filter(|s| !s.is_none()) {
            change = change.add_status(extract_status_named("add_status", status)?);
        }
        let filter = resolve(filter, criteria)?;
        let options = DeleteOptions {
            dry_run,
            limit,
            rate,
        };
        let report = self.with_handle(py, |ct| ct.update_matching(&filter, &change, options))?;
        let kwargs = bulk_fields(
            py,
            report.matched,
            "updated",
            report.updated,
            report.already_gone,
            &report.failed,
            report.kernel_prefiltered,
        )?;
        kwargs.set_item("dry_run", report.dry_run)?;
        pytypes::UPDATE_REPORT.build(py, &kwargs)
    }

    /// Creates every flow of a saved table again (`conntrack -R`). `source`:
    /// a path (`str`, `bytes` or `os.PathLike`) of a file of `dump --json`
    /// NDJSON, `conntrack -L` text or `conntrack -L -o save` lines, or an
    /// iterable of such lines and
    /// `Flow` objects (e.g. a dump of another namespace). Each flow not
    /// restored (a line that does not parse, a create the kernel refuses,
    /// `EEXIST` for a flow that exists) is in the report's `failures`; the
    /// others are created regardless. `timeout` and `zone` replace every
    /// flow's own; `dry_run` only checks; `labels_file` is the
    /// `connlabel.conf` for label names. Returns a `RestoreReport`.
    #[pyo3(signature = (source, /, *, timeout = None, zone = None, dry_run = false, labels_file = None))]
    fn restore<'py>(
        &self,
        py: Python<'py>,
        source: &Bound<'py, PyAny>,
        timeout: Option<&Bound<'py, PyAny>>,
        zone: Option<&Bound<'py, PyAny>>,
        dry_run: bool,
        labels_file: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut options = RestoreOptions::default().dry_run(dry_run);
        if let Some(timeout) = timeout.filter(|t| !t.is_none()) {
            options = options.timeout(extract_u32("timeout", timeout)?);
        }
        if let Some(zone) = zone.filter(|z| !z.is_none()) {
            options = options.zone(extract_u16("zone", zone)?);
        }
        let labels = label_map(py, labels_file)?;
        let mut failures = Vec::new();
        let report = if let Some(path) = extract_path("source", source)? {
            let file = std::fs::File::open(&path)
                .and_then(|file| match file.metadata()?.is_dir() {
                    true => Err(std::io::Error::from_raw_os_error(libc::EISDIR)),
                    false => Ok(file),
                })
                .map_err(|e| {
                    let errno = e.raw_os_error().unwrap_or(libc::EIO);
                    PyOSError::new_err((
                        errno,
                        os_message(errno, &e.to_string()),
                        path.display().to_string(),
                    ))
                })?;
            let table = SavedTable::new(
                std::io::BufReader::with_capacity(1 << 16, file),
                Some(labels),
            );
            self.with_handle(py, |ct| ct.restore(table, options, |f| failures.push(f)))?
        } else {
            let mut items = Vec::new();
            let iter = source.try_iter().map_err(|_| {
                wrong_type("source", "a path or an iterable of lines and Flows", source)
            })?;
            for (index, item) in iter.enumerate() {
                let item = item?;
                let line = index + 1;
                if let Ok(flow) = item.cast::<PyFlow>() {
                    items.push(Ok(Ok(SavedFlow {
                        line,
                        spec: FlowSpec::from_flow(&flow.get().flow),
                    })));
                } else if let Ok(text) = item.cast::<PyString>() {
                    match text.to_cow() {
                        Ok(text) => items.extend(saved_line(line, &text, Some(&labels)).map(Ok)),
                        // Lone surrogates: no UTF-8 text to read.
                        Err(_) => items.push(Ok(Err(RestoreFailure {
                            line,
                            orig: None,
                            error: conntrack::Error::InvalidInput(
                                "not UTF-8 (a lone surrogate)".into(),
                            ),
                        }))),
                    }
                } else {
                    return Err(wrong_type(
                        &format!("source item {line}"),
                        "a line (str) or a Flow",
                        &item,
                    ));
                }
            }
            self.with_handle(py, |ct| ct.restore(items, options, |f| failures.push(f)))?
        };
        let kwargs = PyDict::new(py);
        kwargs.set_item("dry_run", dry_run)?;
        kwargs.set_item("read", report.read)?;
        kwargs.set_item("created", report.created)?;
        kwargs.set_item("invalid", report.invalid)?;
        let by_errno = PyDict::new(py);
        for (errno, count) in &report.failed {
            by_errno.set_item(errno, count)?;
        }
        kwargs.set_item("failed", by_errno)?;
        let list = PyList::empty(py);
        for failure in &failures {
            let fields = PyDict::new(py);
            fields.set_item("line", failure.line)?;
            fields.set_item("orig", failure.orig.map(FlowTuple::new))?;
            fields.set_item("errno", failure.errno())?;
            let message = match &failure.error {
                conntrack::Error::InvalidInput(reason) => reason.clone(),
                other => other.to_string(),
            };
            fields.set_item("message", message)?;
            list.append(pytypes::RESTORE_FAILURE.build(py, &fields)?)?;
        }
        kwargs.set_item("failures", PyTuple::new(py, list)?)?;
        pytypes::RESTORE_REPORT.build(py, &kwargs)
    }

    /// Every expectation of the namespace (`conntrack -L expect`), as a list.
    fn expectations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let found = self.with_handle(py, |ct| ct.expectations())?;
        let list = PyList::empty(py);
        for expectation in &found {
            list.append(expectation_object(py, expectation)?)?;
        }
        Ok(list)
    }

    /// The expectation of `tuple` in `zone`, or `None`.
    #[pyo3(signature = (tuple, /, *, zone = None))]
    fn get_expectation<'py>(
        &self,
        py: Python<'py>,
        tuple: &Bound<'py, FlowTuple>,
        zone: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let zone = optional_zone(zone)?;
        let tuple = tuple.get().tuple;
        let found = self.with_handle(py, |ct| ct.get_expectation(&tuple, zone))?;
        found.map(|e| expectation_object(py, &e)).transpose()
    }

    /// Creates an expectation (`conntrack -I expect`) related to the existing
    /// flow `master` (which needs a helper). `mask` defaults to `tuple`
    /// matched exactly; `helper` to the master's. `flags`: `ExpectFlag`s,
    /// flag names (`"PERMANENT"`, `"INACTIVE"`) or ints, one or a
    /// collection; `permanent=True` adds `PERMANENT`. `expect_class`: the
    /// helper's class (`conntrack -I expect --class`; at most the helper's
    /// highest, e.g. 0 for ftp, 3 for sip, else `EINVAL`).
    #[pyo3(signature = (master, tuple, /, *, timeout, mask = None, zone = None, helper = None, permanent = false, flags = None, expect_class = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_expectation(
        &self,
        py: Python<'_>,
        master: &Bound<'_, FlowTuple>,
        tuple: &Bound<'_, FlowTuple>,
        timeout: &Bound<'_, PyAny>,
        mask: Option<&Bound<'_, FlowTuple>>,
        zone: Option<&Bound<'_, PyAny>>,
        helper: Option<String>,
        permanent: bool,
        flags: Option<&Bound<'_, PyAny>>,
        expect_class: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let mut spec = ExpectationSpec::new(
            master.get().tuple,
            tuple.get().tuple,
            extract_u32("timeout", timeout)?,
        );
        if let Some(mask) = mask {
            spec = spec.mask(mask.get().tuple);
        }
        let zone = optional_zone(zone)?;
        if zone != 0 {
            spec = spec.zone(zone);
        }
        if let Some(helper) = helper {
            spec = spec.helper(helper);
        }
        let mut expect_flags = match flags.filter(|f| !f.is_none()) {
            Some(flags) => extract_expect_flags("flags", flags)?,
            None => ExpectFlags::empty(),
        };
        if permanent {
            expect_flags |= ExpectFlags::PERMANENT;
        }
        spec = spec.flags(expect_flags);
        if let Some(class) = expect_class.filter(|c| !c.is_none()) {
            spec = spec.class(extract_u32("expect_class", class)?);
        }
        self.with_handle(py, |ct| ct.create_expectation(&spec))
    }

    /// Deletes the expectation of `tuple` in `zone`; False when there was none.
    #[pyo3(signature = (tuple, /, *, zone = None))]
    fn delete_expectation(
        &self,
        py: Python<'_>,
        tuple: &Bound<'_, FlowTuple>,
        zone: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let zone = optional_zone(zone)?;
        let tuple = tuple.get().tuple;
        self.with_handle(py, |ct| ct.delete_expectation(&tuple, zone, None))
    }

    /// Deletes every expectation (`conntrack -F expect`), or those of `helper`.
    #[pyo3(signature = (helper = None))]
    fn flush_expectations(&self, py: Python<'_>, helper: Option<String>) -> PyResult<()> {
        self.with_handle(py, |ct| ct.flush_expectations(helper.as_deref()))
    }

    /// Per-CPU expectation counters (`conntrack -S expect`): a list of
    /// `ExpectCpuStats`.
    fn expectation_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let per_cpu = self.with_handle(py, |ct| ct.expectation_stats())?;
        let list = PyList::empty(py);
        for cpu in per_cpu {
            let kwargs = PyDict::new(py);
            kwargs.set_item("cpu", cpu.cpu)?;
            kwargs.set_item("new", cpu.new)?;
            kwargs.set_item("create", cpu.create)?;
            kwargs.set_item("delete", cpu.delete)?;
            list.append(pytypes::EXPECT_CPU_STATS.build(py, &kwargs)?)?;
        }
        Ok(list)
    }

    /// Subscribes to the events of the namespace (flows created, updated,
    /// destroyed) that the filter or criteria select.
    #[pyo3(signature = (filter = None, /, *, kinds = None, expectations = None, timeout = None, receive_buffer = None, **criteria))]
    #[allow(clippy::too_many_arguments)]
    fn events(
        &self,
        py: Python<'_>,
        filter: Option<&Bound<'_, PyAny>>,
        kinds: Option<&Bound<'_, PyAny>>,
        expectations: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        receive_buffer: Option<usize>,
        criteria: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyEvents> {
        if self.closed() {
            return Err(closed_error());
        }
        let filter = resolve(filter, criteria)?;
        PyEvents::open(
            py,
            self.pool.clone(),
            filter,
            kinds,
            expectations,
            timeout,
            receive_buffer,
        )
    }

    /// Counts the selected flows grouped by `keys` (`"src"`, `"dst"`,
    /// `"src_port"`, `"dst_port"`, `"proto"`, `"state"`, `"zone"`, `"mark"`, or
    /// a list of them for tuple keys), in one pass in Rust.
    #[pyo3(signature = (keys, /, filter = None, *, top = None, **criteria))]
    fn count_by<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
        filter: Option<&Bound<'py, PyAny>>,
        top: Option<usize>,
        criteria: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let keys = group_keys(keys)?;
        let filter = resolve(filter, criteria)?;
        let limit = top.unwrap_or(usize::MAX);
        let counts = {
            let keys = keys.clone();
            self.with_handle(py, move |ct| ct.count_by(&keys, &filter, limit))?
        };
        group_counts(py, &keys, &counts)
    }

    /// Deletes the selected flows by the fastest correct path and reports
    /// what happened. An empty selection is refused: use `flush()`.
    #[pyo3(signature = (filter = None, /, *, dry_run = false, limit = None, rate = None, **criteria))]
    fn delete<'py>(
        &self,
        py: Python<'py>,
        filter: Option<&Bound<'py, PyAny>>,
        dry_run: bool,
        limit: Option<&Bound<'py, PyAny>>,
        rate: Option<&Bound<'py, PyAny>>,
        criteria: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (limit, rate) = (extract_limit(limit)?, extract_rate(rate)?);
        if let Some(target) = filter {
            if target.is_instance_of::<PyFlow>() || target.is_instance_of::<FlowTuple>() {
                return Err(PyTypeError::new_err(
                    "delete() takes a Filter or criteria; use delete_flow() for one flow",
                ));
            }
        }
        let filter = resolve(filter, criteria)?;
        let options = DeleteOptions {
            dry_run,
            limit,
            rate,
        };
        let report = self.with_handle(py, |ct| ct.delete_matching(&filter, options))?;
        delete_report(py, &report)
    }

    /// Deletes one flow: a `Flow` exactly (its tuple, zone and id, so a newer
    /// flow that reused the tuple is spared), or a `Tuple` in `zone`.
    /// Returns False when there was no such flow.
    #[pyo3(signature = (target, /, *, zone = None))]
    fn delete_flow(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        zone: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let zone = zone
            .filter(|z| !z.is_none())
            .map(|z| extract_u16("zone", z))
            .transpose()?;
        if let Ok(flow) = target.cast::<PyFlow>() {
            let flow = &flow.get().flow;
            if zone.is_some() {
                return Err(PyTypeError::new_err("a Flow carries its own zone"));
            }
            return self.with_handle(py, |ct| ct.delete_flow(flow));
        }
        if let Ok(tuple) = target.cast::<FlowTuple>() {
            let tuple = tuple.get().tuple;
            return self.with_handle(py, |ct| ct.delete(&tuple, zone.unwrap_or(0), None));
        }
        Err(PyTypeError::new_err(
            "delete_flow() takes a Flow or a Tuple",
        ))
    }

    /// Deletes every flow of the table (`conntrack -F`).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.with_handle(py, |ct| ct.flush())
    }

    /// Creates a flow (`FileExistsError` if its tuple exists in its zone).
    /// `timeout` (seconds) is required; `status` bits are added to CONFIRMED
    /// (the kernel's 16 status bits, an int 0-65535, names or a list);
    /// `state` is a TCP or SCTP state; `labels` are bit numbers.
    #[pyo3(signature = (orig, /, *, reply = None, timeout = None, status = None, mark = None, zone = None, state = None, labels = None, helper = None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        py: Python<'_>,
        orig: &Bound<'_, FlowTuple>,
        reply: Option<&Bound<'_, FlowTuple>>,
        timeout: Option<&Bound<'_, PyAny>>,
        status: Option<&Bound<'_, PyAny>>,
        mark: Option<&Bound<'_, PyAny>>,
        zone: Option<&Bound<'_, PyAny>>,
        state: Option<&Bound<'_, PyAny>>,
        labels: Option<&Bound<'_, PyAny>>,
        helper: Option<String>,
    ) -> PyResult<()> {
        let options = SpecOptions {
            reply,
            timeout,
            status,
            status_word: None,
            mark,
            zone,
            state,
            labels,
            helper,
        };
        self.write(py, orig, options, Write::Create)
    }

    /// Changes an existing flow (`FileNotFoundError` if there is none):
    /// timeout, status, mark, state, labels.
    ///
    /// `status` bits are added to the flow's own (`conntrack -U -u`): the
    /// flow is read and its status sent back with the bits added.
    /// `status_word` (not with `status`) is sent as the whole status word, as
    /// given, without reading the flow. The kernel's rule applies to it:
    /// `SEEN_REPLY` and `ASSURED` can only be set, never cleared, so a word
    /// lacking one the flow has is refused (`OSError` with `EBUSY`, saying
    /// so); the bits the kernel keeps for itself (NAT, `EXPECTED`,
    /// `CONFIRMED`, `DYING`, ...) are ignored; current kernels clear no bit.
    #[pyo3(signature = (orig, /, *, timeout = None, status = None, status_word = None, mark = None, zone = None, state = None, labels = None))]
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        py: Python<'_>,
        orig: &Bound<'_, FlowTuple>,
        timeout: Option<&Bound<'_, PyAny>>,
        status: Option<&Bound<'_, PyAny>>,
        status_word: Option<&Bound<'_, PyAny>>,
        mark: Option<&Bound<'_, PyAny>>,
        zone: Option<&Bound<'_, PyAny>>,
        state: Option<&Bound<'_, PyAny>>,
        labels: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let options = SpecOptions {
            reply: None,
            timeout,
            status,
            status_word,
            mark,
            zone,
            state,
            labels,
            helper: None,
        };
        self.write(py, orig, options, Write::Update)
    }

    /// Creates the flow, or updates it if it exists: `status` bits are then
    /// added to the flow's own; `status_word` (not with `status`) is sent as
    /// given, under the kernel's rule of `update` (a word lacking
    /// `SEEN_REPLY` or `ASSURED` that the flow has: `EBUSY`).
    #[pyo3(signature = (orig, /, *, reply = None, timeout = None, status = None, status_word = None, mark = None, zone = None, state = None, labels = None, helper = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_or_update(
        &self,
        py: Python<'_>,
        orig: &Bound<'_, FlowTuple>,
        reply: Option<&Bound<'_, FlowTuple>>,
        timeout: Option<&Bound<'_, PyAny>>,
        status: Option<&Bound<'_, PyAny>>,
        status_word: Option<&Bound<'_, PyAny>>,
        mark: Option<&Bound<'_, PyAny>>,
        zone: Option<&Bound<'_, PyAny>>,
        state: Option<&Bound<'_, PyAny>>,
        labels: Option<&Bound<'_, PyAny>>,
        helper: Option<String>,
    ) -> PyResult<()> {
        let options = SpecOptions {
            reply,
            timeout,
            status,
            status_word,
            mark,
            zone,
            state,
            labels,
            helper,
        };
        self.write(py, orig, options, Write::CreateOrUpdate)
    }

    /// Looks up one flow by its original tuple in `zone`; `None` if absent.
    #[pyo3(signature = (orig, /, *, zone = 0))]
    fn get(
        &self,
        py: Python<'_>,
        orig: &Bound<'_, FlowTuple>,
        zone: u16,
    ) -> PyResult<Option<Py<PyFlow>>> {
        let tuple = orig.get().tuple;
        match self.with_handle(py, |ct| ct.get(&tuple, zone))? {
            Some(flow) => flow_object(py, flow).map(Some),
            None => Ok(None),
        }
    }

    /// The orphaned flows (list of `Orphan`, a `Flow` subclass): idle
    /// ESTABLISHED for at least `idle` seconds (default 3600), unreplied for
    /// at least `unreplied` (60), half-closed for at least `half_closed` (300).
    #[pyo3(signature = (*, idle = None, unreplied = None, half_closed = None, categories = None, include_nat = false, exclude_assured = false, timeouts = None, confirmed = false, sockets = "namespace", filter = None, **criteria))]
    #[allow(clippy::too_many_arguments)]
    fn orphans<'py>(
        &self,
        py: Python<'py>,
        idle: Option<&Bound<'py, PyAny>>,
        unreplied: Option<&Bound<'py, PyAny>>,
        half_closed: Option<&Bound<'py, PyAny>>,
        categories: Option<&Bound<'py, PyAny>>,
        include_nat: bool,
        exclude_assured: bool,
        timeouts: Option<&Bound<'py, PyDict>>,
        confirmed: bool,
        sockets: &str,
        filter: Option<&Bound<'py, PyAny>>,
        criteria: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let policy = self.orphan_policy(
            py,
            idle,
            unreplied,
            half_closed,
            categories,
            include_nat,
            exclude_assured,
            timeouts,
            (confirmed, sockets),
            filter,
            criteria,
        )?;
        let orphans = self.with_handle(py, |ct| ct.orphans(&policy))?;
        let objects = orphans
            .into_iter()
            .map(|orphan| PyOrphan::create(py, orphan))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, objects)
    }

    /// Counts the orphans per category in one pass (`OrphanCounts`); same
    /// arguments as `orphans()`.
    #[pyo3(signature = (*, idle = None, unreplied = None, half_closed = None, categories = None, include_nat = false, exclude_assured = false, timeouts = None, confirmed = false, sockets = "namespace", filter = None, **criteria))]
    #[allow(clippy::too_many_arguments)]
    fn count_orphans<'py>(
        &self,
        py: Python<'py>,
        idle: Option<&Bound<'py, PyAny>>,
        unreplied: Option<&Bound<'py, PyAny>>,
        half_closed: Option<&Bound<'py, PyAny>>,
        categories: Option<&Bound<'py, PyAny>>,
        include_nat: bool,
        exclude_assured: bool,
        timeouts: Option<&Bound<'py, PyDict>>,
        confirmed: bool,
        sockets: &str,
        filter: Option<&Bound<'py, PyAny>>,
        criteria: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let policy = self.orphan_policy(
            py,
            idle,
            unreplied,
            half_closed,
            categories,
            include_nat,
            exclude_assured,
            timeouts,
            (confirmed, sockets),
            filter,
            criteria,
        )?;
        let counts = self.with_handle(py, |ct| ct.count_orphans(&policy))?;
        orphan_counts(py, &counts)
    }

    /// Deletes the orphans, each by tuple, zone and id, and reports what
    /// happened (`dry_run=True` only counts them: calls act, tools preview,
    /// as `delete()` and the Rust API); same selection arguments as
    /// `orphans()`.
    #[pyo3(signature = (*, dry_run = false, limit = None, rate = None, idle = None, unreplied = None, half_closed = None, categories = None, include_nat = false, exclude_assured = false, timeouts = None, confirmed = false, sockets = "namespace", filter = None, **criteria))]
    #[allow(clippy::too_many_arguments)]
    fn delete_orphans<'py>(
        &self,
        py: Python<'py>,
        dry_run: bool,
        limit: Option<&Bound<'py, PyAny>>,
        rate: Option<&Bound<'py, PyAny>>,
        idle: Option<&Bound<'py, PyAny>>,
        unreplied: Option<&Bound<'py, PyAny>>,
        half_closed: Option<&Bound<'py, PyAny>>,
        categories: Option<&Bound<'py, PyAny>>,
        include_nat: bool,
        exclude_assured: bool,
        timeouts: Option<&Bound<'py, PyDict>>,
        confirmed: bool,
        sockets: &str,
        filter: Option<&Bound<'py, PyAny>>,
        criteria: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let policy = self.orphan_policy(
            py,
            idle,
            unreplied,
            half_closed,
            categories,
            include_nat,
            exclude_assured,
            timeouts,
            (confirmed, sockets),
            filter,
            criteria,
        )?;
        let options = DeleteOptions {
            dry_run,
            limit: extract_limit(limit)?,
            rate: extract_rate(rate)?,
        };
        let report = self.with_handle(py, |ct| ct.delete_orphans(&policy, options))?;
        delete_report(py, &report)
    }
}

impl PyConntrack {
    fn write(
        &self,
        py: Python<'_>,
        orig: &Bound<'_, FlowTuple>,
        options: SpecOptions<'_, '_>,
        kind: Write,
    ) -> PyResult<()> {
        let spec = Self::spec(py, orig, options)?;
        let word = spec
            .status
            .filter(|_| spec.status_change == StatusChange::Word);
        // The library's error stays a value here, to explain a refused word.
        let result = self.with_handle(py, |ct| {
            Ok(match kind {
                Write::Create => ct.create(&spec),
                Write::Update => ct.update(&spec),
                Write::CreateOrUpdate => ct.create_or_update(&spec),
            })
        })?;
        result.map_err(|error| match word {
            Some(word) if error.errno() == Some(libc::EBUSY) => refused_word(py, error, word),
            _ => to_py_err(py, error),
        })
    }
}

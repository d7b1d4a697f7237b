// SPDX-License-Identifier: MIT OR Apache-2.0
//! `conntrack.Events`: the event subscription `Conntrack.events()` returns,
//! and `conntrack.Event`, one flow event.
//!
//! The library's [`Events`] owns one netlink socket joined to the conntrack
//! multicast groups. The Python object owns it too (no worker thread: the
//! kernel queues events on the socket by itself, so there is nothing to read
//! ahead of the consumer):
//!
//! * Blocking iteration refills a buffer of owned items with the interpreter
//!   released: it waits for the first item (in slices of [`SIGNAL_POLL`], so
//!   Ctrl-C raises `KeyboardInterrupt` promptly), then takes whatever else is
//!   already queued, up to [`BATCH`] items, without waiting. The items are
//!   then handed out one by one while attached: one release of the
//!   interpreter per batch, none per event.
//! * `poll()` refills without waiting at all, and `fileno()` gives the socket:
//!   the asyncio form (`conntrack/_aio.py`) waits for readability with
//!   `loop.add_reader` and then polls, so no thread and no blocking call ever
//!   runs on the event loop.
//! * The filter (the criteria dumps take) is evaluated in Rust on each event
//!   before any Python object exists; events it rejects cost no allocation.
//! * Expectation events (`expectations=`) are items of their own
//!   (`ExpectationEvent`, with an `Expectation` record), on the same stream
//!   as flow events, in the kernel's order; the filter selects flow events only.
//! * Lost events (`ENOBUFS`) are items of their own (`EventsLost`, with the
//!   kernel's count of dropped events when it tells); the stream goes on.
//! * Events that fail to decode are skipped and counted in `stats()`, as a
//!   dump skips undecodable flows.
//! * `resync()` discards what is queued, then dumps on a handle of the same
//!   namespace: since the subscription exists before the dump starts, every
//!   change the dump misses is queued on the socket (subscribe-then-dump).

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conntrack::events::{EventItem, EventKind, EventMask, EventOptions, Events};
use conntrack::{Error, Expectation, Filter, Flow};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyString};

use crate::dump::{DumpIter, Source};
use crate::errors::{detached, invalid, to_py_err};
use crate::flow::expectation_object;
use crate::flow::PyFlow;
use crate::pool::Pool;
use crate::pytypes;

/// Items taken from the socket per release of the interpreter.
const BATCH: usize = 1024;

/// How often a waiting consumer looks for signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// One owned item, before it becomes a Python object.
// Events are the common case; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Item {
    Event {
        kind: EventKind,
        flow: Flow,
        origin: u32,
    },
    Expectation {
        kind: EventKind,
        expectation: Expectation,
        origin: u32,
    },
    Lost {
        dropped: Option<u64>,
    },
}

/// Index of a kind in the cached `EventKind` members.
fn kind_index(kind: EventKind) -> usize {
    match kind {
        EventKind::New => 0,
        EventKind::Update => 1,
        EventKind::Destroy => 2,
        // A kind added to the library later: reported as an update.
        _ => 1,
    }
}

const KIND_NAMES: [&str; 3] = ["new", "update", "destroy"];

/// The `conntrack.EventKind` members, cached.
static KINDS: [PyOnceLock<Py<PyAny>>; 3] = [const { PyOnceLock::new() }; 3];

fn kind_member(py: Python<'_>, index: usize) -> PyResult<Bound<'_, PyAny>> {
    KINDS[index]
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(
                pytypes::EVENT_KIND
                    .call1(py, (KIND_NAMES[index],))?
                    .unbind(),
            )
        })
        .map(|member| member.bind(py).clone())
}

/// The event kinds given as `argument=` (`kinds`, `expectations`): a name
/// or `EventKind` member, or a collection of them (maybe empty).
fn extract_mask(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<EventMask> {
    let py = value.py();
    let one = |item: &Bound<'_, PyAny>| -> PyResult<EventMask> {
        let name = if let Ok(text) = item.cast::<PyString>() {
            text.to_cow()?.trim().to_ascii_lowercase()
        } else if item.is_instance(pytypes::EVENT_KIND.get(py)?)? {
            item.getattr("value")?.extract::<String>()?
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "{argument}: expected an EventKind, a name ('new', 'update', 'destroy') or a \
                 collection of them, not {}",
                item.repr()?
            )));
        };
        match name.as_str() {
            "new" => Ok(EventMask::NEW),
            "update" => Ok(EventMask::UPDATE),
            "destroy" => Ok(EventMask::DESTROY),
            _ => Err(invalid(
                py,
                format!("{argument}: unknown event kind {name:?} (new, update, destroy)"),
            )),
        }
    };
    if value.is_instance_of::<PyString>() || value.try_iter().is_err() {
        return one(value);
    }
    let mut mask = EventMask::empty();
    for item in value.try_iter()? {
        mask |= one(&item?)?;
    }
    Ok(mask)
}

/// The flow kinds (`kinds=`: `None` for all) and expectation kinds
/// (`expectations=`: `None` or `False` for none, `True` for all) of a
/// subscription; refuses one that selects nothing.
fn extract_masks(
    py: Python<'_>,
    kinds: Option<&Bound<'_, PyAny>>,
    expectations: Option<&Bound<'_, PyAny>>,
) -> PyResult<(EventMask, EventMask)> {
    let flows = match kinds.filter(|v| !v.is_none()) {
        None => EventMask::all(),
        Some(value) => extract_mask("kinds", value)?,
    };
    let expectations = match expectations.filter(|v| !v.is_none()) {
        None => EventMask::empty(),
        Some(value) if value.is_instance_of::<PyBool>() => {
            if value.is_truthy()? {
                EventMask::all()
            } else {
                EventMask::empty()
            }
        }
        Some(value) => extract_mask("expectations", value)?,
    };
    if flows.is_empty() && expectations.is_empty() {
        return Err(invalid(
            py,
            "kinds: an empty selection subscribes to nothing (give new, update and/or destroy, \
             or expectation events with expectations=)",
        ));
    }
    Ok((flows, expectations))
}

/// A duration in seconds (`None`: none), for `timeout=`.
fn extract_timeout(value: Option<f64>) -> PyResult<Option<Duration>> {
    match value {
        None => Ok(None),
        Some(seconds) => Duration::try_from_secs_f64(seconds).map(Some).map_err(|_| {
            PyValueError::new_err(format!(
                "timeout: {seconds} is not a duration in seconds (>= 0)"
            ))
        }),
    }
}

/// Moves the items already queued into `out` (at most [`BATCH`] accepted by
/// `filter`), without waiting. Returns how many events failed to decode.
fn take_queued(
    events: &mut Events,
    filter: &Filter,
    out: &mut VecDeque<Item>,
) -> conntrack::Result<u64> {
    let mut undecodable = 0;
    while out.len() < BATCH {
        match events.try_next_event() {
            Ok(Some(item)) => push(item, filter, out),
            Ok(None) => break,
            Err(Error::Decode(_) | Error::Truncated { .. }) => undecodable += 1,
            Err(error) => return Err(error),
        }
    }
    Ok(undecodable)
}

fn push(item: EventItem<&str>, filter: &Filter, out: &mut VecDeque<Item>) {
    match item {
        EventItem::Event(event) if filter.matches(&event.flow) => out.push_back(Item::Event {
            kind: event.kind,
            flow: event.flow.to_owned_flow(),
            origin: event.origin_portid,
        }),
        // Not selected by the filter.
        EventItem::Event(_) => {}
        EventItem::Expectation(event) => out.push_back(Item::Expectation {
            kind: event.kind,
            expectation: event.expectation.to_owned_expectation(),
            origin: event.origin_portid,
        }),
        EventItem::Lost { dropped } => out.push_back(Item::Lost { dropped }),
        // An item kind added to the library later: nothing to report yet.
        _ => {}
    }
}

/// Waits until `deadline` (at most) for an item, then takes what else is
/// queued. Returns the decode failures met.
fn wait_and_take(
    events: &mut Events,
    filter: &Filter,
    out: &mut VecDeque<Item>,
    deadline: Instant,
) -> conntrack::Result<u64> {
    let mut undecodable = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.next_event_timeout(left) {
            Ok(Some(item)) => {
                push(item, filter, out);
                if !out.is_empty() {
                    break;
                }
            }
            // Nothing within the slice.
            Ok(None) => return Ok(undecodable),
            Err(Error::Decode(_) | Error::Truncated { .. }) => undecodable += 1,
            Err(error) => return Err(error),
        }
        if Instant::now() >= deadline {
            return Ok(undecodable);
        }
    }
    Ok(undecodable + take_queued(events, filter, out)?)
}

/// A subscription to the conntrack events of one namespace (from
/// `Conntrack.events()`).
#[pyclass(module = "conntrack", name = "Events")]
pub(crate) struct PyEvents {
    /// `None` once closed.
    events: Option<Events>,
    filter: Filter,
    buffer: VecDeque<Item>,
    timeout: Option<Duration>,
    /// Handles of the same namespace, for `resync()` dumps.
    pool: Arc<Pool>,
    /// Events that failed to decode (skipped).
    undecodable: u64,
    /// Items handed out.
    delivered: u64,
    /// A socket error ended the stream.
    failed: bool,
}

impl PyEvents {
    /// Subscribes in the namespace of `pool`.
    pub(crate) fn open(
        py: Python<'_>,
        pool: Arc<Pool>,
        filter: Filter,
        kinds: Option<&Bound<'_, PyAny>>,
        expectations: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        receive_buffer: Option<usize>,
    ) -> PyResult<Self> {
        let (mask, expectation_mask) = extract_masks(py, kinds, expectations)?;
        let timeout = extract_timeout(timeout)?;
        let mut options = EventOptions::new(mask).expectations(expectation_mask);
        if let Some(bytes) = receive_buffer {
            options = options.receive_buffer(bytes);
        }
        let netns = pool.netns().clone();
        let events = detached(py, move || options.open_in(&netns))?;
        Ok(PyEvents {
            events: Some(events),
            filter,
            buffer: VecDeque::new(),
            timeout,
            pool,
            undecodable: 0,
            delivered: 0,
            failed: false,
        })
    }

    fn subscription(&mut self) -> PyResult<&mut Events> {
        self.events
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("operation on a closed Events subscription"))
    }

    /// Turns the next buffered item into its Python object.
    fn pop(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let Some(item) = self.buffer.pop_front() else {
            return Ok(None);
        };
        self.delivered += 1;
        let object = match item {
            Item::Event { kind, flow, origin } => Py::new(
                py,
                PyEvent {
                    kind: kind_index(kind) as u8,
                    flow: Py::new(py, PyFlow::new(flow))?,
                    origin_portid: origin,
                },
            )?
            .into_any(),
            Item::Expectation {
                kind,
                expectation,
                origin,
            } => Py::new(
                py,
                PyExpectationEvent {
                    kind: kind_index(kind) as u8,
                    expectation: expectation_object(py, &expectation)?.unbind(),
                    origin_portid: origin,
                },
            )?
            .into_any(),
            Item::Lost { dropped } => {
                let kwargs = PyDict::new(py);
                kwargs.set_item("dropped", dropped)?;
                pytypes::EVENTS_LOST.build(py, &kwargs)?.unbind()
            }
        };
        Ok(Some(object))
    }

    /// Maps a socket error; the stream ends.
    fn fail(&mut self, py: Python<'_>, error: Error) -> PyErr {
        self.failed = true;
        to_py_err(py, error)
    }

    /// The next item, waiting up to `timeout` (`None`: for ever); `None` when
    /// nothing came in time.
    fn next_within(
        &mut self,
        py: Python<'_>,
        timeout: Option<Duration>,
    ) -> PyResult<Option<Py<PyAny>>> {
        if let Some(object) = self.pop(py)? {
            return Ok(Some(object));
        }
        if self.failed {
            return Ok(None);
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let now = Instant::now();
            let slice_end = now + SIGNAL_POLL;
            let until = match deadline {
                Some(deadline) if deadline < slice_end => deadline,
                _ => slice_end,
            };
            let filter = &self.filter;
            let buffer = &mut self.buffer;
            let events = self.events.as_mut().ok_or_else(|| {
                PyValueError::new_err("operation on a closed Events subscription")
            })?;
            let result = py.detach(move || wait_and_take(events, filter, buffer, until));
            match result {
                Ok(undecodable) => self.undecodable += undecodable,
                Err(error) => {
                    // Items taken before the error are handed out first.
                    if !self.buffer.is_empty() {
                        self.failed = true;
                        return self.pop(py);
                    }
                    return Err(self.fail(py, error));
                }
            }
            if let Some(object) = self.pop(py)? {
                return Ok(Some(object));
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok(None);
            }
            // Between waits: let Ctrl-C stop the loop.
            py.check_signals()?;
        }
    }
}

#[pymethods]
impl PyEvents {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if self.events.is_none() {
            return Ok(None);
        }
        let timeout = self.timeout;
        self.next_within(py, timeout)
    }

    /// The asyncio form: `async for item in events`.
    fn __aiter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        pytypes::ASYNC_EVENTS.call1(py, (slf,))
    }

    /// The next item, waiting up to `timeout` seconds (`None`: for ever);
    /// `None` when nothing came in time.
    #[pyo3(signature = (timeout = None))]
    fn get(&mut self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        let timeout = extract_timeout(timeout)?;
        self.subscription()?;
        self.next_within(py, timeout)
    }

    /// The next item if one is queued already, else `None`; never waits.
    fn poll(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if let Some(object) = self.pop(py)? {
            return Ok(Some(object));
        }
        if self.failed {
            return Ok(None);
        }
        let filter = &self.filter;
        let buffer = &mut self.buffer;
        let events = self
            .events
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("operation on a closed Events subscription"))?;
        match py.detach(move || take_queued(events, filter, buffer)) {
            Ok(undecodable) => self.undecodable += undecodable,
            Err(error) if self.buffer.is_empty() => return Err(self.fail(py, error)),
            Err(_) => self.failed = true,
        }
        self.pop(py)
    }

    /// The socket's file descriptor (readable when events are queued).
    fn fileno(&mut self) -> PyResult<i32> {
        Ok(self.subscription()?.as_raw_fd())
    }

    /// Discards the queued events, then dumps the namespace's table (with
    /// this subscription's filter): subscribe first, then dump, and no change
    /// falls between the two.
    fn resync(&mut self, py: Python<'_>) -> PyResult<DumpIter> {
        let events = self.subscription()?;
        detached(py, || events.discard_queued())?;
        self.buffer.clear();
        DumpIter::start(
            self.pool.clone(),
            Source::Table(Box::new(self.filter.clone())),
        )
    }

    /// Totals so far (`EventStats`).
    fn stats<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let undecodable = self.undecodable;
        let delivered = self.delivered;
        let events = self.subscription()?;
        let stats = events.stats();
        let kwargs = PyDict::new(py);
        kwargs.set_item("new", stats.new)?;
        kwargs.set_item("update", stats.update)?;
        kwargs.set_item("destroy", stats.destroy)?;
        kwargs.set_item("expectation_new", stats.expectation_new)?;
        kwargs.set_item("expectation_update", stats.expectation_update)?;
        kwargs.set_item("expectation_destroy", stats.expectation_destroy)?;
        kwargs.set_item("lost_reports", stats.lost_reports)?;
        kwargs.set_item("dropped", stats.dropped)?;
        kwargs.set_item("decode_errors", stats.decode_errors.max(undecodable))?;
        kwargs.set_item("datagrams", stats.datagrams)?;
        kwargs.set_item("discarded", stats.discarded)?;
        kwargs.set_item("delivered", delivered)?;
        pytypes::EVENT_STATS.build(py, &kwargs)
    }

    /// The receive buffer the kernel uses now, in bytes (`SO_RCVBUF`).
    #[getter]
    fn receive_buffer(&mut self, py: Python<'_>) -> PyResult<usize> {
        let events = self.subscription()?;
        detached(py, || events.receive_buffer())
    }

    /// The idle timeout of iteration, in seconds (`None`: none).
    #[getter]
    fn timeout(&self) -> Option<f64> {
        self.timeout.map(|t| t.as_secs_f64())
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        self.events.is_none()
    }

    /// Leaves the groups and closes the socket; drops buffered items. Idempotent.
    fn close(&mut self) {
        self.events = None;
        self.buffer.clear();
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }

    fn __repr__(&self) -> String {
        let Some(events) = &self.events else {
            return format!(
                "<conntrack.Events {} closed delivered={}>",
                self.pool.netns(),
                self.delivered
            );
        };
        let names = |mask: EventMask| -> String {
            let names: Vec<&str> = [
                (EventMask::NEW, "new"),
                (EventMask::UPDATE, "update"),
                (EventMask::DESTROY, "destroy"),
            ]
            .into_iter()
            .filter(|(bit, _)| mask.contains(*bit))
            .map(|(_, name)| name)
            .collect();
            names.join("|")
        };
        let expectations = if events.expectation_mask().is_empty() {
            String::new()
        } else {
            format!(" expectations={}", names(events.expectation_mask()))
        };
        let filter = if self.filter.is_empty() {
            ""
        } else {
            " filtered"
        };
        format!(
            "<conntrack.Events {} kinds={}{expectations}{filter} delivered={} buffered={}>",
            self.pool.netns(),
            names(events.mask()),
            self.delivered,
            self.buffer.len()
        )
    }
}

/// One flow event: what happened (`kind`) to which flow (`flow`).
#[pyclass(frozen, module = "conntrack", name = "Event")]
pub(crate) struct PyEvent {
    kind: u8,
    flow: Py<PyFlow>,
    origin_portid: u32,
}

#[pymethods]
impl PyEvent {
    /// `EventKind.NEW`, `UPDATE` or `DESTROY`.
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        kind_member(py, usize::from(self.kind))
    }

    /// The flow as the event describes it.
    #[getter]
    fn flow(&self, py: Python<'_>) -> Py<PyFlow> {
        self.flow.clone_ref(py)
    }

    /// Netlink port id of the socket whose request caused the event (0 for
    /// the packet path and timeouts).
    #[getter]
    fn origin_portid(&self) -> u32 {
        self.origin_portid
    }

    /// `{"kind": "new", "origin_portid": ..., "flow": flow.to_dict()}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        event_dict(
            py,
            self.kind,
            self.origin_portid,
            "flow",
            self.flow.bind(py),
        )
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        event_repr("Event", self.kind, &self.flow.bind(py).str()?)
    }
}

/// One expectation event (`conntrack -E expect`): what happened (`kind`) to
/// which expectation (`expectation`, an `Expectation` record).
#[pyclass(frozen, module = "conntrack", name = "ExpectationEvent")]
pub(crate) struct PyExpectationEvent {
    kind: u8,
    expectation: Py<PyAny>,
    origin_portid: u32,
}

#[pymethods]
impl PyExpectationEvent {
    /// `EventKind.NEW` or `DESTROY` (`UPDATE` is never sent as of 6.18).
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        kind_member(py, usize::from(self.kind))
    }

    /// The expectation as the event describes it.
    #[getter]
    fn expectation(&self, py: Python<'_>) -> Py<PyAny> {
        self.expectation.clone_ref(py)
    }

    /// Netlink port id of the socket whose request caused the event (0 for
    /// a helper on the packet path and timeouts).
    #[getter]
    fn origin_portid(&self) -> u32 {
        self.origin_portid
    }

    /// `{"kind": "new", "origin_portid": ..., "expectation": expectation.to_dict()}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let expectation = self.expectation.bind(py);
        event_dict(
            py,
            self.kind,
            self.origin_portid,
            "expectation",
            expectation,
        )
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        event_repr(
            "ExpectationEvent",
            self.kind,
            &self.expectation.bind(py).repr()?,
        )
    }
}

/// The `to_dict()` of an event: its kind's name, origin, and the `to_dict()`
/// of what it is about under `key`.
fn event_dict<'py>(
    py: Python<'py>,
    kind: u8,
    origin_portid: u32,
    key: &str,
    subject: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("kind", KIND_NAMES[usize::from(kind)])?;
    dict.set_item("origin_portid", origin_portid)?;
    dict.set_item(key, subject.call_method0("to_dict")?)?;
    Ok(dict)
}

/// `Name(KIND, subject)`.
fn event_repr(name: &str, kind: u8, subject: &Bound<'_, PyString>) -> PyResult<String> {
    Ok(format!(
        "{name}({}, {})",
        KIND_NAMES[usize::from(kind)].to_ascii_uppercase(),
        subject.to_cow()?
    ))
}

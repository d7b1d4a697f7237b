// SPDX-License-Identifier: MIT OR Apache-2.0
//! `conntrack.Dump`: the iterator `Conntrack.dump()` returns.
//!
//! The library's dump is a lending reader that borrows its handle for as
//! long as it runs, which a Python object cannot hold. So a dump runs on its
//! own worker thread that owns a handle from the pool for the duration: it
//! receives each datagram, decodes it, checks the filter and sends the
//! datagram's matching flows, owned, as one batch over a bounded channel.
//! The Python side takes a batch with the interpreter released, then hands
//! its flows out one by one while attached: one channel hop per datagram
//! (about 200 flows), none per flow, and kernel I/O plus decoding overlap
//! with the building of Python objects.
//!
//! * Memory: at most [`BATCHES_IN_FLIGHT`] batches wait in the channel, so a
//!   slow consumer holds the kernel back instead of buffering the table.
//! * Ctrl-C: signals are checked after every batch (and every 100 ms while
//!   waiting), so `KeyboardInterrupt` stops a long dump promptly.
//! * Stopping early (`break`, `close()`, the iterator being collected) drops
//!   the receiving end: the worker's next send fails, it drops its dump (the
//!   library then gives the handle a fresh socket) and returns the handle to
//!   the pool.
//! * Flows that fail to decode are skipped and counted in `summary`, as
//!   `Conntrack::for_each_flow` does; kernel and socket errors raise.

use std::mem;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use conntrack::{Conntrack, DumpSummary, Error, Family, Filter, Flow};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py_err;
use crate::flow::PyFlow;
use crate::pool::Pool;
use crate::pytypes;

/// Batches the worker may have sent ahead of the consumer.
const BATCHES_IN_FLIGHT: usize = 4;

/// How often a waiting consumer looks for signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// What the worker sends.
enum Message {
    /// The matching flows of one datagram.
    Flows(Vec<Flow>),
    /// The dump ended normally.
    End(Totals),
    /// The dump ended with an error (after every flow before it was sent).
    Failed(Error, Totals),
}

/// Totals of a dump: the library's summary and the flows handed out.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    summary: DumpSummary,
    matched: u64,
}

/// A dump the worker can read flows from, filtered or not.
trait FlowSource {
    fn next_owned(&mut self) -> Option<conntrack::Result<Flow>>;
    fn totals(&self) -> DumpSummary;
}

impl FlowSource for conntrack::Dump<'_> {
    fn next_owned(&mut self) -> Option<conntrack::Result<Flow>> {
        Some(self.next_flow()?.map(|flow| flow.to_owned_flow()))
    }
    fn totals(&self) -> DumpSummary {
        self.summary()
    }
}

impl FlowSource for conntrack::FilteredDump<'_, '_> {
    fn next_owned(&mut self) -> Option<conntrack::Result<Flow>> {
        Some(self.next_flow()?.map(|flow| flow.to_owned_flow()))
    }
    fn totals(&self) -> DumpSummary {
        self.summary()
    }
}

/// Reads `source` to its end, sending one batch per datagram. Returns
/// `Ok(false)` when the consumer went away.
fn pump(
    source: &mut impl FlowSource,
    sender: &SyncSender<Message>,
    matched: &mut u64,
) -> conntrack::Result<bool> {
    let mut capacity = 256;
    let mut batch: Vec<Flow> = Vec::with_capacity(capacity);
    loop {
        let datagrams = source.totals().datagrams;
        let next = source.next_owned();
        // A new datagram arrived while reading this item: what came before
        // is the previous datagram's batch.
        if source.totals().datagrams != datagrams && !batch.is_empty() {
            capacity = capacity.max(batch.len());
            let full = mem::replace(&mut batch, Vec::with_capacity(capacity));
            *matched += full.len() as u64;
            if sender.send(Message::Flows(full)).is_err() {
                return Ok(false);
            }
        }
        match next {
            None => break,
            Some(Ok(flow)) => batch.push(flow),
            // Counted in the summary; the dump goes on.
            Some(Err(Error::Decode(_))) => {}
            Some(Err(error)) => {
                *matched += batch.len() as u64;
                if !batch.is_empty() && sender.send(Message::Flows(batch)).is_err() {
                    return Ok(false);
                }
                return Err(error);
            }
        }
    }
    *matched += batch.len() as u64;
    Ok(batch.is_empty() || sender.send(Message::Flows(batch)).is_ok())
}

/// What a dump reads.
pub(crate) enum Source {
    /// The table, the flows a filter selects.
    Table(Box<Filter>),
    /// The table, zeroing every flow's counters as it is read.
    Zeroing(Family),
    /// The dying list.
    Dying,
    /// The unconfirmed list.
    Unconfirmed,
}

/// Runs one dump on `ct`.
fn run(
    ct: &mut Conntrack,
    source: &Source,
    sender: &SyncSender<Message>,
) -> (conntrack::Result<()>, Totals) {
    let mut matched = 0;
    let mut whole = |dump: conntrack::Result<conntrack::Dump<'_>>| match dump {
        Ok(mut dump) => (pump(&mut dump, sender, &mut matched), dump.summary()),
        Err(error) => (Err(error), DumpSummary::default()),
    };
    let (result, summary) = match source {
        // An empty filter reads the plain dump: no per-flow filter call.
        Source::Table(filter) if filter.is_empty() => whole(ct.dump()),
        Source::Zeroing(family) => whole(ct.dump_zeroing(*family)),
        Source::Dying => whole(ct.dump_dying()),
        Source::Unconfirmed => whole(ct.dump_unconfirmed()),
        Source::Table(filter) => match ct.dump_filtered(filter) {
            Ok(mut dump) => (pump(&mut dump, sender, &mut matched), dump.summary()),
            Err(error) => (Err(error), DumpSummary::default()),
        },
    };
    (result.map(|_| ()), Totals { summary, matched })
}

/// The worker: borrows a handle from the pool, dumps, gives the handle back,
/// then reports the end (so the handle is free by the time the consumer
/// hears of it).
fn worker(pool: Arc<Pool>, source: Source, sender: SyncSender<Message>) {
    let mut ct = match pool.take() {
        Ok(ct) => ct,
        Err(error) => {
            let _ = sender.send(Message::Failed(error, Totals::default()));
            return;
        }
    };
    let (result, totals) = run(&mut ct, &source, &sender);
    pool.put(ct);
    let last = match result {
        Ok(()) => Message::End(totals),
        Err(error) => Message::Failed(error, totals),
    };
    // The consumer may be gone already: nothing to tell then.
    let _ = sender.send(last);
}

/// An iterator over the flows of one dump (from `Conntrack.dump()`).
///
/// Not a snapshot: flows created or deleted meanwhile may be missed or
/// repeated. Use it from one thread at a time.
#[pyclass(module = "conntrack", name = "Dump")]
pub(crate) struct DumpIter {
    batch: std::vec::IntoIter<Flow>,
    /// `None` once the dump ended or was closed.
    receiver: Option<Mutex<Receiver<Message>>>,
    totals: Option<Totals>,
    /// Flows handed out so far.
    handed_out: u64,
    /// The namespace, for `repr`.
    netns: String,
}

impl DumpIter {
    /// Starts a dump of `source` on a handle of `pool`.
    pub(crate) fn start(pool: Arc<Pool>, source: Source) -> PyResult<Self> {
        let netns = pool.netns().to_string();
        let (sender, receiver) = sync_channel(BATCHES_IN_FLIGHT);
        std::thread::Builder::new()
            .name("conntrack-dump".into())
            .spawn(move || worker(pool, source, sender))
            .map_err(pyo3::exceptions::PyOSError::new_err)?;
        Ok(DumpIter {
            batch: Vec::new().into_iter(),
            receiver: Some(Mutex::new(receiver)),
            totals: None,
            handed_out: 0,
            netns,
        })
    }

    /// Waits for the worker's next message, interpreter released; raises
    /// `KeyboardInterrupt` and friends while waiting.
    fn receive(&mut self, py: Python<'_>) -> PyResult<Option<Message>> {
        let Some(receiver) = self.receiver.as_mut() else {
            return Ok(None);
        };
        let receiver = receiver.get_mut().unwrap_or_else(PoisonError::into_inner);
        loop {
            let waiting = &mut *receiver;
            match py.detach(move || waiting.recv_timeout(SIGNAL_POLL)) {
                Ok(message) => return Ok(Some(message)),
                Err(RecvTimeoutError::Timeout) => py.check_signals()?,
                Err(RecvTimeoutError::Disconnected) => {
                    self.receiver = None;
                    // Only a panic in the worker ends it without a last message.
                    return Err(pyo3::exceptions::PyRuntimeError::new_err(
                        "the dump worker thread stopped unexpectedly",
                    ));
                }
            }
        }
    }
}

#[pymethods]
impl DumpIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyFlow>>> {
        loop {
            if let Some(flow) = self.batch.next() {
                self.handed_out += 1;
                return Py::new(py, PyFlow::new(flow)).map(Some);
            }
            match self.receive(py)? {
                None => return Ok(None),
                Some(Message::Flows(flows)) => {
                    self.batch = flows.into_iter();
                    // Between datagrams: let Ctrl-C stop a long dump. The
                    // batch is kept, so catching the interrupt and going on
                    // loses nothing.
                    py.check_signals()?;
                }
                Some(Message::End(totals)) => {
                    self.receiver = None;
                    self.totals = Some(totals);
                    return Ok(None);
                }
                Some(Message::Failed(error, totals)) => {
                    self.receiver = None;
                    self.totals = Some(totals);
                    return Err(to_py_err(py, error));
                }
            }
        }
    }

    /// Stops the dump (the rest of the table is not read) and drops the
    /// flows received but not yet handed out. Idempotent.
    fn close(&mut self) {
        self.receiver = None;
        self.batch = Vec::new().into_iter();
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }

    fn __repr__(&self) -> String {
        let state = match (&self.receiver, &self.totals) {
            (Some(_), _) => "running".to_owned(),
            (None, Some(totals)) => format!(
                "ended: {} flows read, {} matched{}",
                totals.summary.flows,
                totals.matched,
                if totals.summary.complete {
                    ""
                } else {
                    ", incomplete"
                }
            ),
            (None, None) => "closed".to_owned(),
        };
        format!(
            "<conntrack.Dump {}: {} flows handed out, {state}>",
            self.netns, self.handed_out
        )
    }

    /// Totals once the dump has ended (`DumpSummary`), else `None`.
    #[getter]
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(totals) = self.totals else {
            return Ok(None);
        };
        let s = totals.summary;
        let kwargs = PyDict::new(py);
        kwargs.set_item("flows", s.flows)?;
        kwargs.set_item("matched", totals.matched)?;
        kwargs.set_item("decode_errors", s.decode_errors)?;
        kwargs.set_item("datagrams", s.datagrams)?;
        kwargs.set_item("bytes", s.bytes)?;
        kwargs.set_item("first_datagram", s.first_datagram)?;
        kwargs.set_item("interrupted", s.interrupted)?;
        kwargs.set_item("filtered", s.filtered)?;
        kwargs.set_item("complete", s.complete)?;
        kwargs.set_item("prefetched", s.prefetched)?;
        pytypes::DUMP_SUMMARY.build(py, &kwargs).map(Some)
    }
}

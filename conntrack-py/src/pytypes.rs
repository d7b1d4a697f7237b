// SPDX-License-Identifier: MIT OR Apache-2.0
//! The pure-Python types the native module hands out (enums and small
//! records from `conntrack/_types.py`), imported once and cached.
//!
//! Enum members for values that fit a byte (protocol numbers, TCP/SCTP/DCCP
//! states) are cached per value, so reading `flow.proto` or `flow.state` on
//! many flows costs one array load after the first time.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

/// A class of `conntrack._types`, imported on first use.
pub(crate) struct Class {
    module: &'static str,
    name: &'static str,
    cell: PyOnceLock<Py<PyType>>,
}

impl Class {
    const fn new(name: &'static str) -> Self {
        Class::in_module("conntrack._types", name)
    }

    /// A class of another module of the package.
    const fn in_module(module: &'static str, name: &'static str) -> Self {
        Class {
            module,
            name,
            cell: PyOnceLock::new(),
        }
    }

    /// The class object.
    pub(crate) fn get<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, PyType>> {
        self.cell.import(py, self.module, self.name)
    }

    /// Calls the class with keyword arguments.
    pub(crate) fn build<'py>(
        &self,
        py: Python<'py>,
        kwargs: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.get(py)?.call((), Some(kwargs))
    }

    /// Calls the class with positional arguments.
    pub(crate) fn call1<'py>(
        &self,
        py: Python<'py>,
        args: impl pyo3::call::PyCallArgs<'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.get(py)?.call1(args)
    }
}

pub(crate) static PROTOCOL: Class = Class::new("Protocol");
pub(crate) static TCP_STATE: Class = Class::new("TcpState");
pub(crate) static SCTP_STATE: Class = Class::new("SctpState");
pub(crate) static DCCP_STATE: Class = Class::new("DccpState");
pub(crate) static STATUS: Class = Class::new("Status");
pub(crate) static ORPHAN_CATEGORY: Class = Class::new("OrphanCategory");
pub(crate) static COUNTERS: Class = Class::new("Counters");
pub(crate) static TIMESTAMP: Class = Class::new("Timestamp");
pub(crate) static SEQ_ADJ: Class = Class::new("SeqAdj");
pub(crate) static SYNPROXY: Class = Class::new("Synproxy");
pub(crate) static CPU_COUNTERS: Class = Class::new("CpuCounters");
pub(crate) static CPU_STATS: Class = Class::new("CpuStats");
pub(crate) static STATS: Class = Class::new("Stats");
pub(crate) static DELETE_REPORT: Class = Class::new("DeleteReport");
pub(crate) static UPDATE_REPORT: Class = Class::new("UpdateReport");
pub(crate) static RESTORE_REPORT: Class = Class::new("RestoreReport");
pub(crate) static RESTORE_FAILURE: Class = Class::new("RestoreFailure");
pub(crate) static EXPECTATION: Class = Class::new("Expectation");
pub(crate) static EXPECT_FLAG: Class = Class::new("ExpectFlag");
pub(crate) static EXPECT_CPU_STATS: Class = Class::new("ExpectCpuStats");
pub(crate) static GROUP_COUNTS: Class = Class::new("GroupCounts");
pub(crate) static ORPHAN_COUNTS: Class = Class::new("OrphanCounts");
pub(crate) static DUMP_SUMMARY: Class = Class::new("DumpSummary");
pub(crate) static RECOMMENDATION: Class = Class::new("Recommendation");
pub(crate) static CAPACITY: Class = Class::new("Capacity");
pub(crate) static PERSIST_REPORT: Class = Class::new("PersistReport");
pub(crate) static EVENT_KIND: Class = Class::new("EventKind");
pub(crate) static EVENTS_LOST: Class = Class::new("EventsLost");
pub(crate) static EVENT_STATS: Class = Class::new("EventStats");
pub(crate) static ASYNC_EVENTS: Class = Class::in_module("conntrack._aio", "AsyncEvents");

/// Members of one byte-valued enum, cached per value.
pub(crate) struct ByteEnum {
    class: &'static Class,
    members: [PyOnceLock<Py<PyAny>>; 256],
}

impl ByteEnum {
    const fn new(class: &'static Class) -> Self {
        ByteEnum {
            class,
            members: [const { PyOnceLock::new() }; 256],
        }
    }

    /// The member for `value` (the enum's `_missing_` makes one for values
    /// this version does not name, e.g. a state from a newer kernel).
    pub(crate) fn member<'py>(&self, py: Python<'py>, value: u8) -> PyResult<Bound<'py, PyAny>> {
        self.members[usize::from(value)]
            .get_or_try_init(py, || {
                Ok::<_, PyErr>(self.class.call1(py, (value,))?.unbind())
            })
            .map(|member| member.bind(py).clone())
    }
}

pub(crate) static PROTOCOLS: ByteEnum = ByteEnum::new(&PROTOCOL);
pub(crate) static TCP_STATES: ByteEnum = ByteEnum::new(&TCP_STATE);
pub(crate) static SCTP_STATES: ByteEnum = ByteEnum::new(&SCTP_STATE);
pub(crate) static DCCP_STATES: ByteEnum = ByteEnum::new(&DCCP_STATE);

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Python bindings for `conntrack-rs`: the native module `conntrack._conntrack`
//! behind the Python package `conntrack` (distribution `conntrack-rs`).
//!
//! Layout (maturin's mixed layout): this crate builds the extension module;
//! `python/conntrack/` holds the package around it: `__init__.py` (the public
//! names), `_types.py` (enums and small records the native code builds),
//! `_errors.py` (the exception classes), `sysctl.py`, and the hand-written
//! stubs `_conntrack.pyi`.
//!
//! Contract:
//! * every call that reaches the kernel, a namespace or `/proc/sys` runs with
//!   the interpreter released, through [`errors::detached`] (or the dump
//!   worker), and maps its error through [`errors::to_py_err`];
//! * kernel and OS failures are `OSError` subclasses with `errno` set,
//!   library failures `conntrack.ConntrackError` subclasses;
//! * `Flow` objects own a copy of the library's `Flow` and convert fields
//!   only when read.

#![forbid(unsafe_code)]

mod args;
mod dump;
mod errors;
mod events;
mod filter;
mod flow;
mod handle;
mod pool;
mod pytypes;
mod sysctl;

use pyo3::prelude::*;

/// Native part of the `conntrack` package; import `conntrack` instead.
#[pymodule]
mod _conntrack {
    #[pymodule_export]
    use crate::dump::DumpIter;
    #[pymodule_export]
    use crate::events::{PyEvent, PyEvents, PyExpectationEvent};
    #[pymodule_export]
    use crate::filter::PyFilter;
    #[pymodule_export]
    use crate::flow::{FlowTuple, PyFlow, PyOrphan};
    #[pymodule_export]
    use crate::handle::PyConntrack;
    #[pymodule_export]
    use crate::sysctl::{advise, list_netns, PySysctl};

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(module: &Bound<'_, PyModule>) -> PyResult<()> {
        module.add("__version__", env!("CARGO_PKG_VERSION"))?;
        module.add("FILTER_CRITERIA", crate::filter::CRITERIA.to_vec())?;
        Ok(())
    }
}

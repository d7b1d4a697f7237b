// SPDX-License-Identifier: MIT OR Apache-2.0
//! The one mapping from [`conntrack::Error`] to Python exceptions, and the one
//! helper through which every call into the kernel releases the interpreter.
//!
//! Kernel and operating-system failures become `OSError` built from
//! `(errno, message[, filename])`: CPython's `OSError` constructor then picks
//! the subclass for the errno by itself (`PermissionError` for `EPERM` and
//! `EACCES`, `FileNotFoundError` for `ENOENT`, `FileExistsError` for `EEXIST`,
//! ...), and `.errno` is set. PyO3's `From<io::Error>` would lose the errno of
//! a kernel answer, which is not an `io::Error` at all. The message is the
//! library's `Display` text, which says what to do about the failure.
//!
//! Everything else becomes a subclass of `conntrack.ConntrackError`, defined
//! in Python (`conntrack/_errors.py`) so that they can also derive from
//! built-in classes (`InvalidInputError` is a `ValueError`).

use std::path::Path;

use conntrack::Error;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The library exception classes of `conntrack._errors`, imported once.
struct LibraryErrors {
    base: PyOnceLock<Py<PyType>>,
    decode: PyOnceLock<Py<PyType>>,
    protocol: PyOnceLock<Py<PyType>>,
    interrupted: PyOnceLock<Py<PyType>>,
    invalid_input: PyOnceLock<Py<PyType>>,
    sysctl_value: PyOnceLock<Py<PyType>>,
}

static ERRORS: LibraryErrors = LibraryErrors {
    base: PyOnceLock::new(),
    decode: PyOnceLock::new(),
    protocol: PyOnceLock::new(),
    interrupted: PyOnceLock::new(),
    invalid_input: PyOnceLock::new(),
    sysctl_value: PyOnceLock::new(),
};

/// Raises `conntrack._errors.<name>` with `message`; if that class cannot be
/// imported (a broken installation), a `RuntimeError` saying so.
fn library_error(
    py: Python<'_>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    message: String,
) -> PyErr {
    match cell.import(py, "conntrack._errors", name) {
        Ok(class) => PyErr::from_type(class.clone(), message),
        Err(import_error) => import_error,
    }
}

/// The library's message without the errno repeated: Python prints
/// `[Errno N]` itself, while the Rust text names it again as
/// `kernel error N (Strerror (os error N))` or `Strerror (os error N)`.
/// What is left is one sentence: what failed, the system's words for why,
/// the kernel's extended-ack message if any, and the advice.
pub(crate) fn os_message(errno: i32, message: &str) -> String {
    let os = std::io::Error::from_raw_os_error(errno).to_string();
    let suffix = format!(" (os error {errno})");
    let strerror = os.strip_suffix(suffix.as_str()).unwrap_or(&os);
    message
        .replace(&format!("kernel error {errno} ({os})"), strerror)
        .replace(&suffix, "")
}

/// An `OSError` (the errno's subclass) carrying `errno`, the library's message
/// (errno not repeated) and, when the failure concerns a file, its path as
/// `filename`.
fn os_error(errno: Option<i32>, message: String, path: Option<&Path>) -> PyErr {
    let message = match errno {
        Some(errno) => os_message(errno, &message),
        None => message,
    };
    match (errno, path) {
        (Some(errno), Some(path)) => {
            PyOSError::new_err((errno, message, path.display().to_string()))
        }
        (Some(errno), None) => PyOSError::new_err((errno, message)),
        // An `io::Error` without an errno (a custom error): keep the text.
        (None, _) => PyOSError::new_err(message),
    }
}

/// The exception for a library error. Every variant is named, so a new one
/// is a deliberate decision; `Error` is `#[non_exhaustive]`, so variants added
/// to the library later fall back to plain `ConntrackError` until named here.
pub(crate) fn to_py_err(py: Python<'_>, error: Error) -> PyErr {
    let message = error.to_string();
    match &error {
        Error::Kernel { errno, .. } => os_error(Some(*errno), message, None),
        Error::Io { source, .. } => os_error(source.raw_os_error(), message, None),
        Error::NoSuchNetns { path } => os_error(Some(libc::ENOENT), message, Some(path)),
        Error::Netns { path, source } => os_error(source.raw_os_error(), message, Some(path)),
        Error::Sysctl { path, source, .. }
        | Error::SysctlGlobalOnly { path, source, .. }
        | Error::Persist { path, source, .. } => {
            os_error(source.raw_os_error(), message, Some(path))
        }
        Error::Decode(_) => library_error(py, &ERRORS.decode, "DecodeError", message),
        Error::SequenceMismatch { .. } | Error::Truncated { .. } => {
            library_error(py, &ERRORS.protocol, "ProtocolError", message)
        }
        Error::DumpInterrupted => {
            library_error(py, &ERRORS.interrupted, "DumpInterruptedError", message)
        }
        // The text without the library's "invalid request: " prefix.
        Error::InvalidInput(text) => {
            library_error(py, &ERRORS.invalid_input, "InvalidInputError", text.clone())
        }
        Error::SysctlValue { .. } => {
            library_error(py, &ERRORS.sysctl_value, "SysctlValueError", message)
        }
        _ => library_error(py, &ERRORS.base, "ConntrackError", message),
    }
}

/// An `InvalidInputError` (a `ValueError`) for arguments the binding rejects
/// before they reach the library.
pub(crate) fn invalid(py: Python<'_>, message: impl Into<String>) -> PyErr {
    library_error(
        py,
        &ERRORS.invalid_input,
        "InvalidInputError",
        message.into(),
    )
}

/// `ValueError` for an operation on a closed handle (as for closed files).
pub(crate) fn closed_error() -> PyErr {
    PyValueError::new_err("operation on a closed Conntrack handle")
}

/// Runs `work` with the interpreter released (other Python threads run
/// meanwhile) and maps its error. Every call into the kernel, the namespace
/// files or `/proc/sys` goes through here, so no Python thread ever waits for
/// the kernel behind this one.
pub(crate) fn detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> conntrack::Result<T> + Send,
    T: Send,
{
    py.detach(work).map_err(|error| to_py_err(py, error))
}

#[cfg(test)]
mod tests {
    use super::os_message;

    #[test]
    fn errno_is_not_repeated_and_advice_is_kept() {
        let error = conntrack::Error::Kernel {
            operation: "create flow",
            errno: libc::EEXIST,
            message: None,
            offset: None,
        };
        assert_eq!(
            os_message(libc::EEXIST, &error.to_string()),
            "create flow: File exists — the flow already exists (use update or create_or_update)"
        );
        let io = conntrack::Error::Io {
            operation: "open netlink socket",
            source: std::io::Error::from_raw_os_error(libc::EMFILE),
        };
        let text = os_message(libc::EMFILE, &io.to_string());
        assert!(
            text.starts_with("open netlink socket: Too many open files"),
            "{text}"
        );
        assert!(!text.contains("os error"), "{text}");
    }
}

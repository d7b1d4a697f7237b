// SPDX-License-Identifier: MIT OR Apache-2.0
//! Python bindings for `conntrack-rs`.
//!
//! This crate is a placeholder that keeps the workspace layout of the design
//! card; the PyO3 module (`import conntrack`) is built in its own issue. It
//! re-exports the core crate so the workspace builds it and its docs link.

#![forbid(unsafe_code)]

pub use conntrack;

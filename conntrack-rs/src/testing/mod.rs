// SPDX-License-Identifier: MIT OR Apache-2.0
//! Plumbing shared by this package's tests, benches and examples, written
//! once: the deterministic tables they fill ([`mix`]), the raw netlink
//! socket of the baselines and captures ([`raw`]), throwaway namespaces
//! ([`scratch`]) and the exporter as a child process with its HTTP
//! exchange ([`http`]), the benches' rounds and medians ([`bench`]), and hooks that
//! make races deterministic ([`hooks`]). Behind the `testing` feature, which only this package's own
//! targets turn on (its dev-dependency on itself). Not part of the supported
//! API.

pub mod bench;
pub mod hooks;
pub mod http;
pub mod mix;
pub mod raw;
pub mod scratch;

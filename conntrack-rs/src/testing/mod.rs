// SPDX-License-Identifier: MIT OR Apache-2.0
//! Plumbing shared by this package's tests, benches and examples, written
//! once: the deterministic tables they fill ([`mix`]), the raw netlink
//! socket of the baselines and captures ([`raw`]) and throwaway namespaces
//! ([`scratch`]). Behind the `testing` feature, which only this package's own
//! targets turn on (its dev-dependency on itself). Not part of the supported
//! API.

pub mod mix;
pub mod raw;
pub mod scratch;

// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the benches that measure the real kernel share: sizes and rounds
//! from the environment, and the median of interleaved rounds.

use std::time::Duration;

/// The number in environment variable `name`, or `default` when it is unset
/// or not a number.
pub fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of `times` (the upper one of an even count); zero when empty.
pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

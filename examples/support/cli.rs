// SPDX-License-Identifier: MIT OR Apache-2.0
//! Command-line pieces shared (by `#[path]`) by the operator examples.

use std::path::PathBuf;

use conntrack::Netns;

/// `--netns` values: an absolute path is a namespace file, a number a pid,
/// anything else an `ip netns` name.
pub fn parse_netns(text: &str) -> Netns {
    if text.starts_with('/') {
        Netns::Path(PathBuf::from(text))
    } else if let Ok(pid) = text.parse::<u32>() {
        Netns::Pid(pid)
    } else {
        Netns::named(text)
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Command-line pieces shared (by `#[path]`) by the operator examples.

#![allow(dead_code)] // each example takes the part it needs

use conntrack::{proto, GroupValue, Netns};

/// `--netns` values, read as every tool and the library read them
/// ([`Netns`]'s `FromStr`: a path, a pid, `current` or an `ip netns` name).
pub fn parse_netns(text: &str) -> Result<Netns, String> {
    text.parse::<Netns>().map_err(|e| format!("--netns: {e}"))
}

/// Parses the command line with `parse`: `--help` (an empty error) prints
/// `usage` and exits 0, any other error prints it with `usage` and exits 2.
pub fn parse_args<O>(
    name: &str,
    usage: &str,
    parse: impl FnOnce(&[String]) -> Result<O, String>,
) -> Result<O, std::process::ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(options) => Ok(options),
        Err(message) if message.is_empty() => {
            println!("{usage}");
            Err(std::process::ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("{name}: {message}\n{usage}");
            Err(std::process::ExitCode::from(2))
        }
    }
}

/// The value after option `name` on the command line, or the usage error.
pub fn next_value(args: &mut std::slice::Iter<'_, String>, name: &str) -> Result<String, String> {
    args.next()
        .cloned()
        .ok_or_else(|| format!("{name} needs a value"))
}

/// `1234567` → `"1,234,567"`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A protocol group value as its name (`tcp`), anything else as it displays.
pub fn protocol_name(value: &GroupValue) -> String {
    match value {
        GroupValue::Number(p) => proto::name(*p as u8).to_owned(),
        other => other.to_string(),
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! The command-line layer shared (by `#[path]`) by the operator examples: one
//! argument library (clap, derive) for every tool, the value parsers that call
//! the library's own (`Netns`'s `FromStr`, `proto::parse_named`,
//! `TcpState::parse_named`, `Status::parse_named`, `Filter::validate`), the
//! `conntrack -L`-style filter options, the `-o labels`-style label options
//! ([`LabelArgs`]), shell completions and man pages generated from the same
//! definitions, and the closed-pipe behaviour.
//!
//! Every tool therefore has per-option `--help`, `--version`, `--opt=value`
//! and `--opt value`, exit status 2 for a usage error (clap's), a message that
//! names the option, also for a value that is not UTF-8 ([`parse`] names the
//! option clap does not), and no panic on a non-UTF-8 argument (values are
//! checked by clap before any parser sees them).

#![allow(dead_code)] // each example takes the part it needs

use std::ffi::OsString;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Parser};
use conntrack::text::{FlowText, TextOptions};
use conntrack::{
    proto, Cidr, DeleteOptions, Family, Filter, Flow, GroupValue, LabelMap, Netns, Status, TcpState,
};

/// Parses the command line of tool `T`. A first argument `--generate WHAT`
/// (hidden; `bash`, `zsh`, `fish`, `elvish`, `powershell` or `man`) prints
/// that shell's completion script or the man page, generated from the same
/// definitions, and exits 0.
///
/// Usage errors exit 2 with clap's message, except for an argument that is
/// not UTF-8 where text is needed: clap only says that one was, so the
/// message names it ([`non_utf8_argument`]): the option whose value it is
/// (`--opt VALUE`, `--opt=VALUE`, `-o VALUE`, `-oVALUE`), or that it is a
/// positional argument or an option name. Values whose parser takes any
/// bytes (paths) are left to it.
pub fn parse<T: Parser>() -> T {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).map(|a| a == "--generate").unwrap_or(false) {
        quiet_on_closed_pipe();
        let what = args.get(2).and_then(|w| w.to_str()).unwrap_or("");
        std::process::exit(generate::<T>(what));
    }
    match T::try_parse_from(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            use clap::error::ErrorKind;
            // Any usage error (clap may stop at a missing argument before it
            // reads the bad one), not help or version.
            let usage = !matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            let named = usage
                .then(|| non_utf8_argument(&T::command(), args.get(1..).unwrap_or_default()))
                .flatten();
            match named {
                Some(message) => T::command().error(ErrorKind::InvalidUtf8, message).exit(),
                None => e.exit(),
            }
        }
    }
}

/// Names the first argument of `args` (the command line after the program
/// name) that is not UTF-8 where `command` needs text, as a usage error's
/// message: `invalid value "n\xFF" for --netns: not valid UTF-8 (...)`
/// (`-s (--src)` when given by its short name), `the positional argument
/// FILE is not valid UTF-8: ...`, `an option name is not valid UTF-8: ...`.
/// `None` when every argument is UTF-8 or only values that may be any bytes
/// (paths) are not.
///
/// It follows clap's reading closely enough for that: `--` ends the options,
/// a long option takes its value after `=` or as the next argument, a
/// cluster of short flags ends at the first short option that takes a value
/// (the rest of the cluster, or the next argument), a subcommand's name
/// switches to its options (and still knows its parents' global ones).
pub fn non_utf8_argument(command: &clap::Command, args: &[OsString]) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let bad = |value: &[u8]| std::str::from_utf8(value).is_err();
    // The bytes that are not UTF-8 escaped (`"n\xFF"`), as `OsStr` shows them.
    let shown = |value: &[u8]| format!("{:?}", std::ffi::OsStr::from_bytes(value));
    let mut commands = vec![command];
    let mut pending: Option<(&clap::Arg, String)> = None;
    let mut positional = 0usize;
    let mut only_positionals = false;
    for arg in args {
        let bytes = arg.as_bytes();
        let current = *commands.last()?;
        if let Some((option, spelled)) = pending.take() {
            if bad(bytes) && refuses_bytes(option, bytes) {
                return Some(value_message(option, &spelled, &shown(bytes)));
            }
            continue;
        }
        if !only_positionals && bytes == b"--" {
            only_positionals = true;
            continue;
        }
        if !only_positionals && bytes.len() > 2 && bytes.starts_with(b"--") {
            let (name, value) = match bytes.iter().position(|&b| b == b'=') {
                Some(eq) => (&bytes[2..eq], Some(&bytes[eq + 1..])),
                None => (&bytes[2..], None),
            };
            let Ok(name) = std::str::from_utf8(name) else {
                return Some(format!(
                    "an option name is not valid UTF-8: {}",
                    shown(bytes)
                ));
            };
            let Some(option) = find_option(&commands, |a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|all| all.contains(&name))
            }) else {
                continue; // clap says it is unknown
            };
            if !option.get_action().takes_values() {
                continue;
            }
            match value {
                Some(value) if bad(value) && refuses_bytes(option, value) => {
                    return Some(value_message(option, &format!("--{name}"), &shown(value)));
                }
                Some(_) => {}
                None => pending = Some((option, format!("--{name}"))),
            }
            continue;
        }
        if !only_positionals && bytes.len() > 1 && bytes[0] == b'-' {
            // A cluster of short options: `-abc`, `-oVALUE`, `-o VALUE`.
            let valid = match std::str::from_utf8(&bytes[1..]) {
                Ok(all) => all,
                Err(e) => std::str::from_utf8(&bytes[1..1 + e.valid_up_to()]).unwrap_or(""),
            };
            let mut consumed = 1;
            let mut value_taken = false;
            for short in valid.chars() {
                consumed += short.len_utf8();
                let Some(option) = find_option(&commands, |a| {
                    a.get_short() == Some(short)
                        || a.get_all_short_aliases()
                            .is_some_and(|all| all.contains(&short))
                }) else {
                    value_taken = true; // clap says it is unknown
                    break;
                };
                if option.get_action().takes_values() {
                    let value = bytes.get(consumed..).unwrap_or_default();
                    if value.is_empty() {
                        pending = Some((option, format!("-{short}")));
                    } else if bad(value) && refuses_bytes(option, value) {
                        return Some(value_message(option, &format!("-{short}"), &shown(value)));
                    }
                    value_taken = true;
                    break;
                }
            }
            if !value_taken && bad(bytes) {
                return Some(format!(
                    "an option name is not valid UTF-8: {}",
                    shown(bytes)
                ));
            }
            continue;
        }
        // A subcommand's name, or a positional argument.
        if positional == 0 && !only_positionals {
            if let Ok(name) = std::str::from_utf8(bytes) {
                if let Some(sub) = current.find_subcommand(name) {
                    commands.push(sub);
                    continue;
                }
            }
        }
        let slot = current.get_positionals().nth(positional).or_else(|| {
            current
                .get_positionals()
                .last()
                .filter(|a| matches!(a.get_action(), clap::ArgAction::Append))
        });
        positional += 1;
        if bad(bytes) && slot.map_or(true, |slot| refuses_bytes(slot, bytes)) {
            let what = match slot {
                Some(slot) => format!(
                    "the positional argument {}",
                    slot.get_value_names()
                        .and_then(|names| names.first())
                        .map_or_else(
                            || slot.get_id().to_string().to_uppercase(),
                            |n| n.to_string()
                        )
                ),
                None if current.has_subcommands() => {
                    "the command name (a positional argument)".into()
                }
                None => "a positional argument".into(),
            };
            return Some(format!("{what} is not valid UTF-8: {}", shown(bytes)));
        }
    }
    None
}

/// The option of `commands` (the innermost first, then the global options of
/// its parents) that `matches` picks.
fn find_option<'a>(
    commands: &[&'a clap::Command],
    matches: impl Fn(&clap::Arg) -> bool,
) -> Option<&'a clap::Arg> {
    commands
        .iter()
        .rev()
        .enumerate()
        .find_map(|(depth, command)| {
            command
                .get_arguments()
                .filter(|a| !a.is_positional())
                .filter(|a| depth == 0 || a.is_global_set())
                .find(|a| matches(a))
        })
}

/// Whether the value parser of `option` refuses `value` for not being UTF-8
/// (a path takes any bytes; text does not): asked of the parser itself, on
/// a command of its own.
fn refuses_bytes(option: &clap::Arg, value: &[u8]) -> bool {
    use std::os::unix::ffi::OsStringExt;
    let probe = clap::Command::new("probe").no_binary_name(true).arg(
        clap::Arg::new("value")
            .long("value")
            .action(clap::ArgAction::Set)
            .value_parser(option.get_value_parser().clone()),
    );
    let mut arg = b"--value=".to_vec();
    arg.extend_from_slice(value);
    matches!(
        probe.try_get_matches_from([OsString::from_vec(arg)]),
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidUtf8
    )
}

/// The usage error for a value of `option` (spelled `spelled` on the
/// command line) that is not UTF-8.
fn value_message(option: &clap::Arg, spelled: &str, shown: &str) -> String {
    let name = match (option.get_long(), option.get_short()) {
        (Some(long), Some(short)) if spelled == format!("-{short}") => {
            format!("-{short} (--{long})")
        }
        (Some(long), _) => format!("--{long}"),
        _ => spelled.to_owned(),
    };
    format!("invalid value {shown} for {name}: not valid UTF-8 (the value must be text)")
}

/// Writes completions or a man page for `T` to stdout; the exit status.
pub fn generate<T: CommandFactory>(what: &str) -> i32 {
    use clap_complete::Shell;
    let mut command = T::command();
    let name = command.get_name().to_owned();
    let mut out = std::io::stdout();
    if what == "man" {
        return match clap_mangen::Man::new(command).render(&mut out) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{name}: --generate man: {e}");
                1
            }
        };
    }
    match what.parse::<Shell>() {
        Ok(shell) => {
            clap_complete::generate(shell, &mut command, name, &mut out);
            0
        }
        Err(_) => {
            eprintln!(
                "{name}: --generate: {what:?} is not one of bash, zsh, fish, elvish, powershell, man"
            );
            2
        }
    }
}

/// Restores the default action of `SIGPIPE`: a tool whose reader went away
/// (`tool | head`) ends quietly, as C tools such as conntrack do, instead of
/// panicking in `println!` on `EPIPE` (Rust ignores `SIGPIPE` by default).
pub fn quiet_on_closed_pipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL has no preconditions.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Writes one line to stdout and flushes it; `false` when stdout is closed or
/// failing (the line is dropped, never a panic). For a tool that must keep
/// `SIGPIPE` ignored and so cannot call [`quiet_on_closed_pipe`]: a server
/// (the exporter), which a client closing its socket during a vectored write
/// (`writev(2)` sends no `MSG_NOSIGNAL`) would otherwise kill.
pub fn print_line(line: std::fmt::Arguments<'_>) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .is_ok()
}

/// Writes one line to stderr; a closed or failing stderr drops it (where
/// `eprintln!` would panic), for long-running tools whose log may go away.
pub fn log_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(line).and_then(|()| err.write_all(b"\n"));
}

/// `--netns` values, read as every tool and the library read them
/// ([`Netns`]'s `FromStr`: a path, a pid, `current` or an `ip netns` name).
pub fn parse_netns(text: &str) -> Result<Netns, String> {
    if text.is_empty() {
        return Err("empty namespace (a name, a path or a pid)".into());
    }
    text.parse::<Netns>().map_err(|e| e.to_string())
}

/// The text of a library error without its kind prefix.
fn message(e: conntrack::Error) -> String {
    match e {
        conntrack::Error::InvalidInput(text) => text,
        other => other.to_string(),
    }
}

/// A layer-4 protocol: a name (`tcp`, `udp`, `icmp`, ... or any name of
/// /etc/protocols) or a number.
pub fn parse_protocol(text: &str) -> Result<u8, String> {
    proto::parse_named("protocol", text).map_err(message)
}

/// A TCP state name (`ESTABLISHED`, `TIME_WAIT`, ..., any case).
pub fn parse_tcp_state(text: &str) -> Result<TcpState, String> {
    TcpState::parse_named("state", text).map_err(message)
}

/// A status bit name (`ASSURED`, `SEEN_REPLY`, ..., any case).
pub fn parse_status(text: &str) -> Result<Status, String> {
    Status::parse_named("status", text).map_err(message)
}

/// An address or network.
pub fn parse_cidr(text: &str) -> Result<Cidr, String> {
    text.parse::<Cidr>().map_err(|_| {
        format!("{text:?} is not an address or network (e.g. 10.0.0.1, 10.0.0.0/8, 2001:db8::/32)")
    })
}

/// `PORT` or `LOW-HIGH` (0-65535, LOW <= HIGH).
pub fn parse_ports(text: &str) -> Result<RangeInclusive<u16>, String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("{p:?} is not a port (0-65535) in {text:?}"))
    };
    match text.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (port(lo)?, port(hi)?);
            if lo > hi {
                return Err(format!("the range {text:?} is reversed (write {hi}-{lo})"));
            }
            Ok(lo..=hi)
        }
        None => port(text).map(|p| p..=p),
    }
}

/// A number 0-0xffffffff, decimal or `0x` hex.
fn parse_u32(text: &str) -> Option<u32> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// `MARK` or `MARK/MASK`.
pub fn parse_mark(text: &str) -> Result<(u32, u32), String> {
    let (mark, mask) = match text.split_once('/') {
        Some((m, k)) => (parse_u32(m), parse_u32(k)),
        None => (parse_u32(text), Some(u32::MAX)),
    };
    match (mark, mask) {
        (Some(mark), Some(mask)) => Ok((mark, mask)),
        _ => Err(format!(
            "{text:?} is not MARK or MARK/MASK (numbers 0-0xffffffff, decimal or 0x hex)"
        )),
    }
}

/// `ipv4` or `ipv6`.
pub fn parse_family(text: &str) -> Result<Family, String> {
    match text {
        "ipv4" | "inet" => Ok(Family::Ipv4),
        "ipv6" | "inet6" => Ok(Family::Ipv6),
        _ => Err(format!("unknown family {text:?} (ipv4 or ipv6)")),
    }
}

/// The options of the tools that delete or change the flows a selection
/// names (`gc`, `update`): where, whether for real, how reported, how many,
/// how fast.
#[derive(Args, Debug, Clone)]
pub struct BulkArgs {
    /// Namespace: an `ip netns` name, a path (/proc/PID/ns/net) or a pid;
    /// default: the current one.
    #[arg(long, value_name = "NAME|PATH|PID", value_parser = parse_netns, default_value = "current")]
    pub netns: Netns,
    /// Act for real (without it: a dry run that counts what would be done).
    #[arg(long)]
    pub yes: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many matching flows.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64))]
    pub limit: Option<u64>,
    /// At most this many flows per second.
    #[arg(long, value_name = "PER_SECOND", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,
}

impl BulkArgs {
    /// The library's options: a dry run unless `--yes`, the limit, the rate.
    pub fn options(&self) -> DeleteOptions {
        DeleteOptions {
            dry_run: !self.yes,
            limit: self.limit,
            rate: self.rate,
        }
    }
}

/// The filter options `conntrack -L` and `conntrack -D` take, with the same
/// short names. Repeated options of one kind select any of their values
/// (`-s 10.0.0.1 -s 10.0.0.2`).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Filter (as conntrack -L / -D)")]
pub struct FilterArgs {
    /// Address family: ipv4 or ipv6.
    #[arg(short = 'f', long, value_name = "FAMILY", value_parser = parse_family)]
    pub family: Option<Family>,
    /// Layer-4 protocol: a name (tcp, udp, icmp, sctp, gre, ...) or a number.
    #[arg(short = 'p', long = "proto", value_name = "PROTO", value_parser = parse_protocol)]
    pub protocol: Option<u8>,
    /// Original source address or network (repeatable: any of them).
    #[arg(short = 's', long = "src", visible_alias = "orig-src", value_name = "CIDR", value_parser = parse_cidr)]
    pub src: Vec<Cidr>,
    /// Original destination address or network (repeatable).
    #[arg(short = 'd', long = "dst", visible_alias = "orig-dst", value_name = "CIDR", value_parser = parse_cidr)]
    pub dst: Vec<Cidr>,
    /// Original source port or range LOW-HIGH (repeatable).
    #[arg(long, value_name = "PORT[-PORT]", value_parser = parse_ports)]
    pub sport: Vec<RangeInclusive<u16>>,
    /// Original destination port or range LOW-HIGH (repeatable).
    #[arg(long, value_name = "PORT[-PORT]", value_parser = parse_ports)]
    pub dport: Vec<RangeInclusive<u16>>,
    /// TCP state: ESTABLISHED, TIME_WAIT, SYN_SENT, ... (repeatable).
    #[arg(long, value_name = "STATE", value_parser = parse_tcp_state)]
    pub state: Vec<TcpState>,
    /// A status bit that must be set: ASSURED, SEEN_REPLY, ... (repeatable).
    #[arg(short = 'u', long, value_name = "BIT", value_parser = parse_status)]
    pub status: Vec<Status>,
    /// A status bit that must be clear (repeatable).
    #[arg(long, value_name = "BIT", value_parser = parse_status)]
    pub no_status: Vec<Status>,
    /// Connection mark, MARK or MARK/MASK (decimal or 0x hex).
    #[arg(short = 'm', long, value_name = "MARK[/MASK]", value_parser = parse_mark)]
    pub mark: Option<(u32, u32)>,
    /// Conntrack zone (0-65535).
    #[arg(short = 'w', long, value_name = "ZONE", value_parser = clap::value_parser!(u16))]
    pub zone: Option<u16>,
}

impl FilterArgs {
    /// The library's filter, validated: a filter that can match nothing (a
    /// reversed mark, contradicting families) is a usage error, `Err` with
    /// the library's explanation.
    pub fn filter(&self) -> Result<Filter, String> {
        let mut f = Filter::new();
        if let Some(family) = self.family {
            f = f.family(family);
        }
        if let Some(protocol) = self.protocol {
            f = f.protocol(protocol);
        }
        for &cidr in &self.src {
            f = f.src(cidr);
        }
        for &cidr in &self.dst {
            f = f.dst(cidr);
        }
        for ports in &self.sport {
            f = f.src_ports(ports.clone());
        }
        for ports in &self.dport {
            f = f.dst_ports(ports.clone());
        }
        for &state in &self.state {
            f = f.tcp_state(state);
        }
        for &bit in &self.status {
            f = f.status(bit);
        }
        for &bit in &self.no_status {
            f = f.status_unset(bit);
        }
        if let Some((mark, mask)) = self.mark {
            f = f.mark_masked(mark, mask);
        }
        if let Some(zone) = self.zone {
            f = f.zone(zone);
        }
        f.validate().map_err(message)?;
        Ok(f)
    }
}

/// `--labels` and `--labels-file`, for the tools that print flows as
/// `conntrack -L` lines: end each line with the flow's labels by name, like
/// `conntrack -o labels` ([`FlowText::labels`]).
#[derive(Args, Debug, Clone, Default)]
pub struct LabelArgs {
    /// End each line with the flow's labels by name, like `conntrack -o
    /// labels` (names of --labels-file, else of /etc/xtables/connlabel.conf
    /// or /etc/connlabel.conf; bits without a name are left out).
    #[arg(long)]
    pub labels: bool,
    /// The label names (a connlabel.conf) to use instead of the system's.
    #[arg(long, value_name = "FILE", requires = "labels")]
    pub labels_file: Option<PathBuf>,
}

impl LabelArgs {
    /// The names to print with, `None` without `--labels`; `Err` naming the
    /// option when the file cannot be read or parsed.
    pub fn map(&self) -> Result<Option<LabelMap>, String> {
        if !self.labels {
            return Ok(None);
        }
        load_label_map(self.labels_file.as_deref()).map(Some)
    }
}

/// The label names of the file given to `--labels-file`, or without one of
/// the system's `connlabel.conf` ([`LabelMap::system`]); `Err` naming
/// `--labels-file` when the file cannot be read (missing, a directory,
/// unreadable) or parsed.
pub fn load_label_map(path: Option<&Path>) -> Result<LabelMap, String> {
    match path {
        Some(path) => LabelMap::load(path),
        None => LabelMap::system(),
    }
    .map_err(|e| format!("--labels-file: {}", message(e)))
}

/// `flow` as its `conntrack -L` line, ending with its labels by name when
/// `labels` is given (`--labels`).
pub fn flow_text<'a, S: AsRef<str>>(
    flow: &'a Flow<S>,
    options: TextOptions,
    labels: Option<&'a LabelMap>,
) -> FlowText<'a, S> {
    let text = conntrack::text::display(flow, options);
    match labels {
        Some(names) => text.labels(names),
        None => text,
    }
}

/// Prints a usage error for tool `T` the way clap prints its own (exit 2).
pub fn usage_error<T: CommandFactory>(message: impl std::fmt::Display) -> ! {
    T::command()
        .error(clap::error::ErrorKind::ValueValidation, message)
        .exit()
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

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `top`: a live view of a conntrack table, refreshed every second.
//!
//! ```text
//! top [--netns NAME|PATH|PID] [--interval SECONDS] [--group KEY] [--rows N]
//!     [--no-events] [--once]
//! ```
//!
//! The first lines show entries against the limit, per-second rates of the
//! kernel counters (`drop`, `early_drop`, `insert_failed`, `invalid`, ...) and
//! of flows created and destroyed (from conntrack events). Below, the table
//! grouped by `KEY`: `source`, `destination`, `port` (protocol and destination
//! port), `protocol` or `state` (TCP state), with each group's flows, share and
//! new flows per second, sorted by flows or by new flows. Addresses are shown
//! as numbers: no DNS lookups.
//!
//! Keys: `s` source, `d` destination, `p` port, `P` protocol, `t` state;
//! `f` sort by flows, `n` sort by new flows per second; `q` (or Ctrl-C) quits.
//! Works on any terminal that understands the basic ANSI clear-screen
//! sequence; the terminal is put in non-canonical mode with `stty` and
//! restored on exit. `--once` prints one frame after one interval and exits
//! (no terminal handling: for scripts and logs). `--no-events` skips the event
//! subscription (then no new/destroy rates).
//!
//! Each refresh walks the whole table once (one streaming dump, grouped while
//! it streams); on tables of millions a refresh takes as long as that dump.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conntrack::events::{EventItem, EventKind, EventMask, EventOptions};
use conntrack::sysctl::{Counter, KernelStatsDelta};
use conntrack::{Conntrack, GroupBy, GroupTally, GroupValue, Grouping, KernelStats, Netns};

#[path = "support/cli.rs"]
mod cli;

use cli::{parse_netns, protocol_name, thousands};

const USAGE: &str = "usage: top [--netns NAME|PATH|PID] [--interval SECONDS] \
[--group source|destination|port|protocol|state] [--rows N] [--no-events] [--once]";

/// The groupings offered, with their key and column title.
const GROUPS: [(char, &str, &[GroupBy]); 5] = [
    ('s', "SOURCE", &[GroupBy::Source]),
    ('d', "DESTINATION", &[GroupBy::Destination]),
    ('p', "PORT", &[GroupBy::Protocol, GroupBy::DestinationPort]),
    ('P', "PROTOCOL", &[GroupBy::Protocol]),
    ('t', "TCP STATE", &[GroupBy::TcpState]),
];

/// Counter rates shown in the header.
const RATES: [Counter; 5] = [
    Counter::Drop,
    Counter::EarlyDrop,
    Counter::InsertFailed,
    Counter::ClashResolve,
    Counter::Invalid,
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    Flows,
    New,
}

struct Options {
    netns: Netns,
    interval: Duration,
    group: usize,
    rows: usize,
    events: bool,
    once: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        netns: Netns::Current,
        interval: Duration::from_secs(1),
        group: 0,
        rows: 20,
        events: true,
        once: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| cli::next_value(&mut it, name);
        match arg.as_str() {
            "--netns" => o.netns = parse_netns(&value("--netns")?)?,
            "--interval" => {
                let v = value("--interval")?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s| (0.1..=3600.0).contains(s))
                    .ok_or_else(|| format!("--interval: invalid {v:?}"))?;
                o.interval = Duration::from_secs_f64(secs);
            }
            "--group" => {
                let v = value("--group")?;
                o.group = ["source", "destination", "port", "protocol", "state"]
                    .iter()
                    .position(|g| *g == v)
                    .ok_or_else(|| format!("--group: unknown {v:?}"))?;
            }
            "--rows" => {
                let v = value("--rows")?;
                o.rows = v
                    .parse()
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or_else(|| format!("--rows: invalid {v:?}"))?;
            }
            "--no-events" => o.events = false,
            "--once" => o.once = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------------------
// Events: new flows per group, destroyed flows, in the background

/// What the event thread counted since the last refresh.
struct EventCounts {
    new: u64,
    destroyed: u64,
    lost: u64,
    /// New flows per grouping of [`GROUPS`].
    tallies: Vec<GroupTally>,
}

impl EventCounts {
    fn new() -> Self {
        EventCounts {
            new: 0,
            destroyed: 0,
            lost: 0,
            tallies: GROUPS
                .iter()
                .map(|(_, _, keys)| GroupTally::new(keys).expect("non-empty keys"))
                .collect(),
        }
    }
}

fn spawn_events(
    netns: &Netns,
    counts: Arc<Mutex<EventCounts>>,
    stop: Arc<AtomicBool>,
) -> conntrack::Result<std::thread::JoinHandle<()>> {
    let mut events = EventOptions::new(EventMask::NEW | EventMask::DESTROY)
        .receive_buffer(8 << 20)
        .open_in(netns)?;
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let item = match events.next_event_timeout(Duration::from_millis(200)) {
                Ok(Some(item)) => item,
                Ok(None) => continue,
                Err(e) => {
                    eprintln!("top: events: {e}");
                    return;
                }
            };
            let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
            match item {
                EventItem::Event(event) if event.kind == EventKind::New => {
                    counts.new += 1;
                    for tally in &mut counts.tallies {
                        tally.add(&event.flow);
                    }
                }
                EventItem::Event(event) if event.kind == EventKind::Destroy => {
                    counts.destroyed += 1;
                }
                EventItem::Lost { dropped } => counts.lost += dropped.unwrap_or(1),
                _ => {}
            }
        }
    }))
}

// ---------------------------------------------------------------------------
// The terminal

/// Non-canonical, no echo, no signals (Ctrl-C arrives as a key), restored on drop.
struct RawTerminal {
    saved: String,
}

impl RawTerminal {
    fn enter() -> Option<RawTerminal> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let saved = stty(&["-g"])?;
        stty(&["-icanon", "-echo", "-isig", "min", "1"])?;
        print!("\x1b[?25l"); // hide the cursor
        Some(RawTerminal {
            saved: saved.trim().to_owned(),
        })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        println!("\x1b[?25h");
        let _ = std::io::stdout().flush();
        let _ = stty(&[self.saved.as_str()]);
    }
}

/// Runs `stty` on our terminal (its stdin); `None` if it fails.
fn stty(args: &[&str]) -> Option<String> {
    let output = Command::new("stty")
        .args(args)
        .stdin(Stdio::inherit())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn spawn_keys() -> mpsc::Receiver<u8> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        let mut stdin = std::io::stdin();
        while let Ok(1) = stdin.read(&mut byte) {
            if send.send(byte[0]).is_err() {
                return;
            }
        }
    });
    receive
}

// ---------------------------------------------------------------------------
// One frame

fn key_text(key: &[GroupValue]) -> String {
    key.iter()
        .enumerate()
        .map(|(i, v)| match v {
            // In the groupings offered, a number first is a protocol, second a port.
            value @ GroupValue::Number(_) if i == 0 => protocol_name(value),
            GroupValue::TcpState(state) => state.name().to_owned(),
            GroupValue::None if key.len() == 2 => String::new(),
            GroupValue::None => "(not TCP)".to_owned(),
            other => other.to_string(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

struct Frame<'a> {
    options: &'a Options,
    label: &'a str,
    entries: u64,
    limit: u64,
    seconds: f64,
    delta: Option<KernelStatsDelta>,
    events: Option<(u64, u64, u64)>,
    dump_seconds: f64,
    total: u64,
    groups: usize,
    rows: Vec<(String, u64, Option<u64>)>,
    group: usize,
    sort: Sort,
}

fn render(frame: &Frame<'_>) -> String {
    let mut out = String::new();
    let usage = if frame.limit > 0 {
        frame.entries as f64 * 100.0 / frame.limit as f64
    } else {
        0.0
    };
    let rate = |n: u64| n as f64 / frame.seconds.max(1e-9);
    out.push_str(&format!(
        "conntrack top — namespace {} — refresh {:.1} s — dump {:.2} s\n",
        frame.label,
        frame.options.interval.as_secs_f64(),
        frame.dump_seconds
    ));
    out.push_str(&format!(
        "entries {} / {} ({usage:.1} %)",
        thousands(frame.entries),
        thousands(frame.limit)
    ));
    match frame.events {
        Some((new, destroyed, lost)) => {
            out.push_str(&format!(
                "   new {:.0}/s   destroyed {:.0}/s",
                rate(new),
                rate(destroyed)
            ));
            if lost > 0 {
                out.push_str(&format!("   EVENTS LOST {lost}"));
            }
        }
        None => out.push_str("   (no event rates)"),
    }
    out.push('\n');
    if let Some(delta) = &frame.delta {
        let parts: Vec<String> = RATES
            .iter()
            .filter_map(|c| {
                delta
                    .get(*c)
                    .map(|n| format!("{} {:.0}/s", c.name(), rate(n)))
            })
            .collect();
        out.push_str(&parts.join("   "));
    }
    out.push('\n');
    out.push('\n');
    let (_, title, _) = GROUPS[frame.group];
    out.push_str(&format!(
        "{:>12} {:>7} {:>8}  {title}{}\n",
        if frame.sort == Sort::Flows {
            "FLOWS*"
        } else {
            "FLOWS"
        },
        "SHARE",
        if frame.sort == Sort::New {
            "NEW/s*"
        } else {
            "NEW/s"
        },
        ""
    ));
    for (key, flows, new) in &frame.rows {
        out.push_str(&format!(
            "{:>12} {:>6.1}% {:>8}  {key}\n",
            thousands(*flows),
            *flows as f64 * 100.0 / frame.total.max(1) as f64,
            new.map_or("-".to_owned(), |n| format!("{:.0}", rate(n)))
        ));
    }
    out.push_str(&format!(
        "\n{} flows in {} groups   keys: s source  d destination  p port  P protocol  \
         t state  f/n sort  q quit\n",
        thousands(frame.total),
        thousands(frame.groups as u64)
    ));
    out
}

// ---------------------------------------------------------------------------

fn run(mut options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let mut ct = Conntrack::open_in(&options.netns)?;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Mutex::new(EventCounts::new()));
    let events_thread = if options.events {
        Some(spawn_events(
            &options.netns,
            Arc::clone(&counts),
            Arc::clone(&stop),
        )?)
    } else {
        None
    };
    let terminal = if options.once {
        None
    } else {
        RawTerminal::enter()
    };
    let keys = if terminal.is_some() {
        Some(spawn_keys())
    } else {
        None
    };
    let label = options.netns.label();
    let mut sort = Sort::Flows;
    let mut before: KernelStats = ct.kernel_stats()?;
    let mut since = Instant::now();
    loop {
        // Wait for the next refresh, handling keys meanwhile.
        let deadline = since + options.interval;
        let mut redraw_now = false;
        while !redraw_now {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let Some(keys) = &keys else {
                std::thread::sleep(left);
                break;
            };
            match keys.recv_timeout(left) {
                Ok(b'q') | Ok(3) | Err(RecvTimeoutError::Disconnected) => {
                    stop.store(true, Ordering::Relaxed);
                    drop(terminal);
                    if let Some(thread) = events_thread {
                        let _ = thread.join();
                    }
                    return Ok(());
                }
                Ok(b'f') => sort = Sort::Flows,
                Ok(b'n') => sort = Sort::New,
                Ok(key) => match GROUPS.iter().position(|(k, _, _)| *k as u8 == key) {
                    Some(group) => {
                        options.group = group;
                        redraw_now = true;
                    }
                    None => continue,
                },
                Err(RecvTimeoutError::Timeout) => break,
            }
        }

        let after = ct.kernel_stats()?;
        let seconds = since.elapsed().as_secs_f64();
        since = Instant::now();
        let delta = KernelStatsDelta::between(&before, &after);
        before = after;
        let events = events_thread.as_ref().map(|_| {
            let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *counts, EventCounts::new())
        });
        let stats = ct.table_stats()?;
        let (_, _, keys_of_group) = GROUPS[options.group];
        let census = ct.census(&[Grouping::new(keys_of_group, usize::MAX)], None)?;
        let groups = census.groups.into_iter().next().unwrap_or_default();
        let new_by_key: HashMap<Vec<GroupValue>, u64> = match &events {
            Some(e) => e.tallies[options.group]
                .clone()
                .finish(usize::MAX)
                .groups
                .into_iter()
                .collect(),
            None => HashMap::new(),
        };
        let mut rows: Vec<(Vec<GroupValue>, u64, Option<u64>)> = groups
            .groups
            .into_iter()
            .map(|(key, flows)| {
                let new = events
                    .as_ref()
                    .map(|_| new_by_key.get(&key).copied().unwrap_or(0));
                (key, flows, new)
            })
            .collect();
        if sort == Sort::New {
            rows.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)));
        }
        let group_count = rows.len();
        rows.truncate(options.rows);
        let frame = Frame {
            options: &options,
            label: &label,
            entries: stats.entries.into(),
            limit: stats.max_entries.unwrap_or(0).into(),
            seconds,
            delta: Some(delta),
            events: events.as_ref().map(|e| (e.new, e.destroyed, e.lost)),
            dump_seconds: census.elapsed.as_secs_f64(),
            total: groups.total,
            groups: group_count,
            rows: rows
                .into_iter()
                .map(|(key, flows, new)| (key_text(&key), flows, new))
                .collect(),
            group: options.group,
            sort,
        };
        let mut text = render(&frame);
        if group_count > frame.rows.len() {
            text.push_str(&format!(
                "({} more groups not shown)\n",
                thousands((group_count - frame.rows.len()) as u64)
            ));
        }
        let mut stdout = std::io::stdout().lock();
        if terminal.is_some() {
            // Home, clear, and CR-LF line ends (the terminal's output
            // processing is untouched, but be safe on raw-ish terminals).
            write!(stdout, "\x1b[H\x1b[2J{}", text.replace('\n', "\r\n"))?;
        } else {
            write!(stdout, "{text}")?;
        }
        stdout.flush()?;
        if options.once {
            stop.store(true, Ordering::Relaxed);
            if let Some(thread) = events_thread {
                let _ = thread.join();
            }
            return Ok(());
        }
    }
}

fn main() -> ExitCode {
    let options = match cli::parse_args("top", USAGE, parse) {
        Ok(options) => options,
        Err(code) => return code,
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("top: {e}");
            ExitCode::FAILURE
        }
    }
}

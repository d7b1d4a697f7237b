// SPDX-License-Identifier: MIT OR Apache-2.0
//! `top`: a live view of a conntrack table, refreshed every second.
//!
//! ```text
//! top [--netns NAME|PATH|PID] [--interval SECONDS] [--group KEY] [--rows N]
//!     [--no-events] [--once [--json]]
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
//! Each frame overwrites the previous one in place (cursor home, every line
//! cleared to its end, the rest of the screen cleared below): no full-screen
//! clear, so no flicker. The frame is cut to the terminal's size, read
//! (`TIOCGWINSZ`) every 200 ms, and redrawn at once when the terminal is
//! resized. Plain ANSI sequences and `stty` rather than a terminal library:
//! these four sequences are all top needs, and every terminal emulator in use
//! understands them. The terminal is put in non-canonical mode with `stty` and
//! restored on exit. `--once` prints one frame after one interval and exits
//! (no terminal handling: for scripts and logs); `--once --json` prints that
//! frame as one JSON object. `--no-events` skips the event subscription (then
//! no new/destroy rates).
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

/// A live view of a conntrack table, refreshed every interval.
#[derive(clap::Parser, Debug)]
#[command(name = "top", version)]
struct Options {
    /// Namespace: an `ip netns` name, a path (/proc/PID/ns/net) or a pid;
    /// default: the current one.
    #[arg(long, value_name = "NAME|PATH|PID", value_parser = parse_netns, default_value = "current")]
    netns: Netns,
    /// Seconds between refreshes (0.1-3600).
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = parse_interval)]
    interval: Duration,
    /// Grouping shown first.
    #[arg(long, value_name = "KEY", default_value = "source", value_parser = parse_group)]
    group: usize,
    /// Groups shown (at most; also cut to the terminal's height).
    #[arg(long, value_name = "N", default_value = "20", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rows: u32,
    /// No event subscription (then no new/destroy rates).
    #[arg(long = "no-events", action = clap::ArgAction::SetFalse)]
    events: bool,
    /// Print one frame after one interval and exit (for scripts and logs).
    #[arg(long)]
    once: bool,
    /// With --once: the frame as one JSON object.
    #[arg(long, requires = "once")]
    json: bool,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if (0.1..=3600.0).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!(
            "{text:?} is not a number of seconds from 0.1 to 3600"
        )),
    }
}

const GROUP_NAMES: [&str; 5] = ["source", "destination", "port", "protocol", "state"];

fn parse_group(text: &str) -> Result<usize, String> {
    GROUP_NAMES
        .iter()
        .position(|g| *g == text)
        .ok_or_else(|| format!("unknown group {text:?} (one of {})", GROUP_NAMES.join(", ")))
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

/// The terminal's (rows, columns), from stdout; `None` when not a terminal.
fn terminal_size() -> Option<(usize, usize)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointed-to value.
    #[allow(unsafe_code)]
    let done = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (done == 0 && size.ws_row > 0 && size.ws_col > 0)
        .then(|| (usize::from(size.ws_row), usize::from(size.ws_col)))
}

/// `text` drawn over the previous frame: cursor home, each line cut to the
/// terminal and cleared to its end, the screen cleared below the last one.
fn paint(text: &str, size: Option<(usize, usize)>) -> String {
    let (rows, columns) = size.unwrap_or((usize::MAX, usize::MAX));
    let mut out = String::from("\x1b[H");
    for (i, line) in text.lines().take(rows).enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        out.extend(line.chars().take(columns));
        out.push_str("\x1b[K");
    }
    out.push_str("\x1b[J");
    out
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
    let mut size = terminal_size();
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
            // A resize redraws at once.
            let now_size = terminal_size();
            if now_size != size {
                size = now_size;
                redraw_now = true;
                continue;
            }
            match keys.recv_timeout(left.min(Duration::from_millis(200))) {
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
                Err(RecvTimeoutError::Timeout) => continue,
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
        rows.truncate(options.rows as usize);
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
        if options.json {
            let text = json_frame(&frame);
            println!("{text}");
            stop.store(true, Ordering::Relaxed);
            if let Some(thread) = events_thread {
                let _ = thread.join();
            }
            return Ok(());
        }
        let mut text = render(&frame);
        if group_count > frame.rows.len() {
            text.push_str(&format!(
                "({} more groups not shown)\n",
                thousands((group_count - frame.rows.len()) as u64)
            ));
        }
        let mut stdout = std::io::stdout().lock();
        if terminal.is_some() {
            // The size now, not when the wait ended: a resize during the
            // dump must not get one more frame at the old size.
            size = terminal_size();
            // Over the previous frame, cut to the terminal (CR-LF line ends:
            // the output processing is untouched, but be safe on raw-ish terminals).
            write!(stdout, "{}", paint(&text, size))?;
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

/// One frame as a JSON object (`--once --json`).
fn json_frame(frame: &Frame<'_>) -> serde_json::Value {
    let rate = |n: u64| n as f64 / frame.seconds.max(1e-9);
    let counters: serde_json::Map<String, serde_json::Value> = frame
        .delta
        .iter()
        .flat_map(|delta| {
            RATES
                .iter()
                .filter_map(move |c| delta.get(*c).map(|n| (c.name().to_owned(), rate(n).into())))
        })
        .collect();
    serde_json::json!({
        "namespace": frame.label,
        "seconds": frame.seconds,
        "dump_seconds": frame.dump_seconds,
        "entries": frame.entries,
        "limit": frame.limit,
        "counters_per_second": counters,
        "events_per_second": frame.events.map(|(new, destroyed, _)| serde_json::json!({
            "new": rate(new),
            "destroy": rate(destroyed),
        })),
        "events_lost": frame.events.map(|(_, _, lost)| lost),
        "group": GROUP_NAMES[frame.group],
        "sort": if frame.sort == Sort::New { "new" } else { "flows" },
        "flows": frame.total,
        "groups": frame.groups,
        "rows": frame.rows.iter().map(|(key, flows, new)| serde_json::json!({
            "key": key,
            "flows": flows,
            "share": *flows as f64 / frame.total.max(1) as f64,
            "new_per_second": new.map(rate),
        })).collect::<Vec<_>>(),
    })
}

fn main() -> ExitCode {
    cli::quiet_on_closed_pipe();
    let options: Options = cli::parse();
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("top: {e}");
            ExitCode::FAILURE
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! The raw-drain baseline: the kernel's own cost of a conntrack dump.
//!
//! Opens a `NETLINK_NETFILTER` socket directly with `netlink-sys` (no
//! [`conntrack::Conntrack`]), sends one `IPCTNL_MSG_CT_GET` dump request
//! (`AF_UNSPEC`, `NLM_F_REQUEST | NLM_F_DUMP`) and receives until `NLMSG_DONE`,
//! reading only the 16-byte `nlmsghdr` of each message to count it: nothing is
//! decoded. This is the floor the library's dump is measured against
//! (DESIGN.md, "Performance bars").
//!
//! Like `Conntrack::dump`, it uses a 64 KiB receive buffer and first does one
//! `IPCTNL_MSG_CT_GET_STATS` round trip, so that the kernel has already seen a
//! large `recvmsg` and builds even the first dump batch as a 32 KiB skb
//! (docs/ctnetlink.md §7.2).
//!
//! ```text
//! drain [--netns NAME|PATH|PID] [--repeat K] [--buffer BYTES] [--no-warm-up]
//! ```
//!
//! Prints one line per dump, `messages=N bytes=B datagrams=D seconds=S`, where
//! `messages` counts flow messages (`NLMSG_DONE` excluded), `bytes` and
//! `datagrams` everything received for the dump, and `seconds` the wall time of
//! one run (fresh socket, warm-up, dump). With `--repeat K > 1`, a last line
//! gives the median. Needs `CAP_NET_ADMIN` in the namespace.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use conntrack::consts::*;
use conntrack::netns::NetnsFile;
use conntrack::wire::Encoder;
use conntrack::Netns;
use netlink_sys::{Socket, SocketAddr};

#[path = "support/cli.rs"]
mod cli;

/// The raw-drain baseline: one conntrack dump received and counted, not decoded.
#[derive(clap::Parser, Debug)]
#[command(name = "drain", version)]
struct Options {
    /// Namespace: an `ip netns` name, a path or a pid; default: the current one.
    #[arg(long, value_name = "NAME|PATH|PID", value_parser = cli::parse_netns)]
    netns: Option<Netns>,
    /// Dumps to run (a last line gives the median).
    #[arg(long, value_name = "K", default_value = "1", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    repeat: u32,
    /// Receive buffer in bytes (4096 to 1 GiB; below 4096 truncates dump batches).
    #[arg(long, value_name = "BYTES", default_value = "65536", value_parser = clap::value_parser!(u32).range(4096..=1 << 30))]
    buffer: u32,
    /// Skip the GET_STATS round trip that makes the kernel batch 32 KiB from
    /// the first datagram.
    #[arg(long = "no-warm-up", action = clap::ArgAction::SetFalse)]
    warm_up: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    messages: u64,
    bytes: u64,
    datagrams: u64,
}

type BoxError = Box<dyn std::error::Error>;

/// Opens and binds a socket, inside `netns` if given (a netlink socket belongs
/// to the namespace of the thread that creates it).
fn open_socket(netns: Option<&NetnsFile>) -> Result<Socket, BoxError> {
    let open = || -> std::io::Result<Socket> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        Ok(socket)
    };
    Ok(match netns {
        Some(ns) => ns.run(open)??,
        None => open()?,
    })
}

fn send(socket: &Socket, bytes: &[u8]) -> Result<(), BoxError> {
    let sent = socket.send_to(bytes, &SocketAddr::new(0, 0), 0)?;
    if sent != bytes.len() {
        return Err(format!("short send: {sent} of {} bytes", bytes.len()).into());
    }
    Ok(())
}

/// One datagram into `buf`; an error rather than silent loss if it did not fit.
fn recv(socket: &Socket, buf: &mut [u8]) -> Result<usize, BoxError> {
    let capacity = buf.len();
    let mut window: &mut [u8] = buf;
    let size = socket.recv(&mut window, libc::MSG_TRUNC)?;
    if size > capacity {
        return Err(format!("datagram of {size} bytes truncated to {capacity}").into());
    }
    Ok(size)
}

/// What ended a datagram's walk.
enum Walk {
    /// More datagrams follow.
    More,
    /// `NLMSG_DONE` or an ACK was seen.
    End,
}

/// Walks the message headers of one datagram: counts the other messages,
/// stops at `NLMSG_DONE`/`NLMSG_ERROR` (failing on a non-zero error code).
fn walk(datagram: &[u8], messages: &mut u64) -> Result<Walk, BoxError> {
    let mut pos = 0;
    while datagram.len() - pos >= NLMSG_HDRLEN {
        let header = &datagram[pos..];
        let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = u16::from_ne_bytes([header[4], header[5]]);
        if len < NLMSG_HDRLEN || len > header.len() {
            return Err(format!("bad nlmsg_len {len} at offset {pos}").into());
        }
        match kind {
            NLMSG_DONE => return Ok(Walk::End),
            NLMSG_ERROR => {
                let code = header
                    .get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or("truncated NLMSG_ERROR")?;
                if code != 0 {
                    let error = std::io::Error::from_raw_os_error(code.saturating_neg());
                    return Err(format!("kernel error: {error}").into());
                }
                return Ok(Walk::End);
            }
            _ => *messages += 1,
        }
        pos += (len + 3) & !3;
    }
    Ok(Walk::More)
}

/// Sends the request in `encoder` and receives until its end.
fn exchange(socket: &Socket, encoder: &Encoder, buf: &mut [u8]) -> Result<Totals, BoxError> {
    send(socket, encoder.as_bytes())?;
    let mut totals = Totals::default();
    loop {
        let len = recv(socket, buf)?;
        totals.datagrams += 1;
        totals.bytes += len as u64;
        if let Walk::End = walk(&buf[..len], &mut totals.messages)? {
            return Ok(totals);
        }
    }
}

fn drain_once(
    netns: Option<&NetnsFile>,
    options: &Options,
    buf: &mut [u8],
) -> Result<(Totals, Duration), BoxError> {
    let start = Instant::now();
    let socket = open_socket(netns)?;
    let mut encoder = Encoder::new();
    if options.warm_up {
        let mark = encoder.begin(
            IPCTNL_MSG_CT_GET_STATS,
            NLM_F_REQUEST | NLM_F_ACK,
            1,
            AF_UNSPEC,
            NFNETLINK_V0,
        );
        encoder.end(mark);
        exchange(&socket, &encoder, buf)?;
        encoder.clear();
    }
    let mark = encoder.begin(
        IPCTNL_MSG_CT_GET,
        NLM_F_REQUEST | NLM_F_DUMP,
        2,
        AF_UNSPEC,
        NFNETLINK_V0,
    );
    encoder.end(mark);
    let totals = exchange(&socket, &encoder, buf)?;
    Ok((totals, start.elapsed()))
}

fn run() -> Result<(), BoxError> {
    let options: Options = cli::parse();
    let netns = match &options.netns {
        Some(netns) => netns.open()?,
        None => None,
    };
    // Both bounded by the parser (at most 1 GiB, 100 000 runs).
    let mut buf = vec![0u8; options.buffer as usize];
    let mut times = Vec::with_capacity(options.repeat as usize);
    for _ in 0..options.repeat {
        let (totals, elapsed) = drain_once(netns.as_ref(), &options, &mut buf)?;
        println!(
            "messages={} bytes={} datagrams={} seconds={:.6}",
            totals.messages,
            totals.bytes,
            totals.datagrams,
            elapsed.as_secs_f64()
        );
        times.push(elapsed);
    }
    if times.len() > 1 {
        times.sort();
        let middle = times.len() / 2;
        let median = if times.len() % 2 == 1 {
            times[middle]
        } else {
            (times[middle - 1] + times[middle]) / 2
        };
        println!(
            "median_seconds={:.6} runs={}",
            median.as_secs_f64(),
            times.len()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    cli::quiet_on_closed_pipe();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drain: {e}");
            ExitCode::FAILURE
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the kernel benches share: a throwaway namespace (deleted on drop, also
//! when the bench panics), filling it with `fill --mix` flows through the
//! library, and a raw netlink socket for the baselines (no `Conntrack`, no
//! decoding: the kernel's own cost).

#![allow(dead_code)] // each bench takes the part it needs

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use conntrack::consts::*;
use conntrack::netns::NetnsFile;
use conntrack::wire::Encoder;
use conntrack::{Conntrack, Netns};
use netlink_sys::{Socket, SocketAddr};

#[path = "../../examples/support/mix.rs"]
pub mod mix;

/// True when the effective uid is 0 (namespaces and ctnetlink need root).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Runs a command, panicking with its output if it fails.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A throwaway network namespace with conntrack armed (loopback up, an
/// nftables `ct state` rule, like `tests/common/mod.rs`), deleted on drop.
pub struct BenchNs {
    /// Its `ip netns` name.
    pub name: String,
}

impl BenchNs {
    /// Creates `ctrs-bench-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> BenchNs {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("ctrs-bench-{tag}-{}-{n}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let ns = BenchNs { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        for rule in [
            "add table inet ctrs",
            "add chain inet ctrs out { type filter hook output priority 0; }",
            "add rule inet ctrs out ct state new accept",
        ] {
            let mut args = vec!["nft"];
            args.extend(rule.split_whitespace());
            ns.exec(&args);
        }
        ns
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) {
        let mut full = vec!["netns", "exec", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full);
    }

    /// The namespace file, to open raw sockets in it.
    pub fn file(&self) -> NetnsFile {
        NetnsFile::open(format!("/run/netns/{}", self.name)).expect("open bench namespace")
    }

    /// A library handle on the namespace's table.
    pub fn conntrack(&self) -> Conntrack {
        Conntrack::open_in(&Netns::named(self.name.as_str())).expect("conntrack handle")
    }
}

impl Drop for BenchNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A `NETLINK_NETFILTER` socket opened directly with `netlink-sys`, with the
/// same 64 KiB receive buffer as a `Conntrack` handle.
pub struct RawSocket {
    socket: Socket,
    /// Receive buffer.
    pub buf: Vec<u8>,
    seq: u32,
}

impl RawSocket {
    /// Opens and binds a socket in `netns`.
    pub fn open(netns: &NetnsFile) -> RawSocket {
        let socket = netns
            .run(|| -> std::io::Result<Socket> {
                let mut socket = Socket::new(NETLINK_NETFILTER)?;
                socket.bind_auto()?;
                Ok(socket)
            })
            .expect("enter bench namespace")
            .expect("netlink socket");
        RawSocket {
            socket,
            buf: vec![0; 64 * 1024],
            seq: 0,
        }
    }

    /// The next sequence number.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one datagram.
    pub fn send(&self, bytes: &[u8]) {
        let sent = self
            .socket
            .send_to(bytes, &SocketAddr::new(0, 0), 0)
            .expect("send");
        assert_eq!(sent, bytes.len(), "short send");
    }

    /// Receives one datagram into `buf`; returns its length.
    pub fn recv(&mut self) -> usize {
        let capacity = self.buf.len();
        let mut window: &mut [u8] = &mut self.buf;
        let len = self.socket.recv(&mut window, 0).expect("recv");
        assert!(len <= capacity, "datagram truncated");
        len
    }

    /// Sends an empty request `msg` with `flags` and returns its sequence number.
    fn request(&mut self, msg: u8, flags: u16, family: u8) -> u32 {
        let seq = self.next_seq();
        let mut enc = Encoder::new();
        let mark = enc.begin(msg, NLM_F_REQUEST | flags, seq, family, NFNETLINK_V0);
        enc.end(mark);
        self.send(enc.as_bytes());
        seq
    }

    /// One `GET_STATS` round trip: afterwards the kernel builds even the first
    /// dump batch as a 32 KiB skb (docs/ctnetlink.md §7.2), as for a library handle.
    pub fn warm_up(&mut self) {
        self.request(IPCTNL_MSG_CT_GET_STATS, NLM_F_ACK, AF_UNSPEC);
        self.receive_until_end(|_, _| {});
    }

    /// Starts a dump of both families.
    pub fn start_dump(&mut self) {
        self.request(IPCTNL_MSG_CT_GET, NLM_F_DUMP, AF_UNSPEC);
    }

    /// Receives until `NLMSG_DONE` or an ACK, calling `on_message(type, message)`
    /// (whole message, header included) for every other message. Panics on
    /// a kernel error.
    pub fn receive_until_end(&mut self, mut on_message: impl FnMut(u16, &[u8])) {
        loop {
            let len = self.recv();
            let mut pos = 0;
            while len - pos >= NLMSG_HDRLEN {
                let b = &self.buf[pos..len];
                let size = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let kind = u16::from_ne_bytes([b[4], b[5]]);
                assert!(size >= NLMSG_HDRLEN && size <= b.len(), "bad nlmsg_len");
                match kind {
                    NLMSG_DONE => return,
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes([b[16], b[17], b[18], b[19]]);
                        assert_eq!(code, 0, "kernel error");
                        return;
                    }
                    _ => on_message(kind, &b[..size]),
                }
                pos += (size + 3) & !3;
            }
        }
    }

    /// The raw drain: one dump, counting flow messages without decoding them.
    pub fn drain(&mut self) -> u64 {
        self.start_dump();
        let mut flows = 0;
        self.receive_until_end(|_, _| flows += 1);
        flows
    }
}

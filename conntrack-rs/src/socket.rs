// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `NETLINK_NETFILTER` socket: one owned fd (closed once, by
//! `netlink_sys::Socket`'s `Drop`), sequence numbers, extended ACKs, and
//! truncation-checked receives.

use netlink_sys::{Socket, SocketAddr};

use crate::consts::NETLINK_NETFILTER;
use crate::error::{Error, Result};

/// Size of the receive buffer. The kernel sizes dump batches from the length
/// passed to `recvmsg` (capped at 32 KiB of payload, CTNETLINK.md §7.2); 64 KiB
/// leaves room for any single message the kernel can build.
pub(crate) const RECV_BUFFER_SIZE: usize = 64 * 1024;

/// A bound `NETLINK_NETFILTER` socket.
#[derive(Debug)]
pub(crate) struct NlSocket {
    socket: Socket,
    portid: u32,
    next_seq: u32,
    /// Whether a large `recvmsg` already taught the kernel our buffer size, so
    /// that even the first skb of a dump is a full 32 KiB batch.
    pub(crate) warmed: bool,
}

impl NlSocket {
    /// Opens and binds a socket in the calling thread's network namespace.
    pub(crate) fn open() -> Result<Self> {
        let mut socket = Socket::new(NETLINK_NETFILTER)
            .map_err(|e| Error::io("socket(NETLINK_NETFILTER)", e))?;
        let addr = socket
            .bind_auto()
            .map_err(|e| Error::io("bind netlink socket", e))?;
        // Extended ACKs carry the kernel's reason for a refusal; capped ACKs do
        // not echo our whole request back. Both are best effort (old kernels).
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        Ok(NlSocket {
            socket,
            portid: addr.port_number(),
            // Start from a varying value so replies to an earlier socket with the
            // same port id can never be mistaken for ours.
            next_seq: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(1)
                | 1,
            warmed: false,
        })
    }

    /// The port id the kernel assigned.
    pub(crate) fn portid(&self) -> u32 {
        self.portid
    }

    /// A fresh sequence number for the next request.
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1);
        if self.next_seq == 0 {
            // Events use sequence 0; never send it.
            self.next_seq = 1;
        }
        self.next_seq
    }

    /// Sends one datagram (one or more messages) to the kernel.
    pub(crate) fn send(&self, bytes: &[u8]) -> Result<()> {
        let kernel = SocketAddr::new(0, 0);
        loop {
            match self.socket.send_to(bytes, &kernel, 0) {
                Ok(sent) if sent == bytes.len() => return Ok(()),
                Ok(sent) => {
                    return Err(Error::io(
                        "send netlink request",
                        std::io::Error::other(format!("short send: {sent} of {}", bytes.len())),
                    ))
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("send netlink request", e)),
            }
        }
    }

    /// Receives one datagram into `buf`, failing (rather than losing data) if
    /// it did not fit.
    pub(crate) fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        let capacity = buf.len();
        loop {
            let mut window: &mut [u8] = &mut *buf;
            match self.socket.recv(&mut window, libc::MSG_TRUNC) {
                Ok(size) if size > capacity => return Err(Error::Truncated { size, capacity }),
                Ok(size) => {
                    if capacity >= 32 * 1024 {
                        self.warmed = true;
                    }
                    return Ok(size);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("receive netlink reply", e)),
            }
        }
    }
}

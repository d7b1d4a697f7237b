// SPDX-License-Identifier: MIT OR Apache-2.0
//! A raw `NETLINK_NETFILTER` socket and the one loop that receives a ctnetlink
//! exchange on it: the raw drain (`examples/drain.rs`, the floor every read
//! path is measured against, DESIGN.md "Performance bars"), the benches' raw
//! loops (`benches/`) and the byte-exact fixtures of
//! `examples/capture.rs`.
//!
//! Deliberately apart from the library's own socket and walker
//! ([`Conntrack`](crate::Conntrack), [`wire::Messages`](crate::wire::Messages)):
//! a baseline must not speed up or slow down with the code it is compared
//! with, and a fixture must not be cut by the walker it will test. It reads
//! the 16-byte `nlmsghdr` of each message and nothing else; receiving
//! allocates nothing (one buffer, reused for every datagram).

use std::io;

use netlink_sys::{Socket, SocketAddr};

use crate::consts::*;
use crate::error::{DecodeError, DecodeErrorKind, Error, Result};
use crate::netns::NetnsFile;
use crate::wire::Encoder;

/// The receive buffer of a [`Conntrack`](crate::Conntrack) handle, which the
/// raw loops use too so that the kernel batches a dump the same way.
pub const RECEIVE_BUFFER: usize = 64 * 1024;

/// One netlink message of a datagram.
#[derive(Debug, Clone, Copy)]
pub struct RawMessage<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// The whole message, `nlmsg_len` bytes: the `nlmsghdr` included, the
    /// alignment padding after it excluded.
    pub bytes: &'a [u8],
}

impl RawMessage<'_> {
    /// The code of an `NLMSG_ERROR` message: 0 for an ACK, else a negative
    /// errno. `None` for any other message, or one too short to carry a code.
    pub fn error_code(&self) -> Option<i32> {
        if self.kind != NLMSG_ERROR {
            return None;
        }
        let code = self.bytes.get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)?;
        Some(i32::from_ne_bytes([code[0], code[1], code[2], code[3]]))
    }
}

/// The messages of one datagram, in order ([`messages`]).
#[derive(Debug, Clone)]
pub struct RawMessages<'a> {
    datagram: &'a [u8],
    pos: usize,
}

/// Walks the messages of one datagram. Fewer than 16 bytes left end the walk;
/// an `nlmsg_len` shorter than its header or longer than what is left is an
/// error, after which the walk ends.
pub fn messages(datagram: &[u8]) -> RawMessages<'_> {
    RawMessages { datagram, pos: 0 }
}

impl<'a> Iterator for RawMessages<'a> {
    type Item = Result<RawMessage<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.datagram[self.pos..];
        if rest.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            let at = self.pos;
            self.pos = self.datagram.len();
            let kind = DecodeErrorKind::Truncated {
                needed: len.max(NLMSG_HDRLEN),
                available: rest.len(),
            };
            return Some(Err(DecodeError::new("nlmsghdr", kind, at).into()));
        }
        let message = RawMessage {
            kind: u16::from_ne_bytes([rest[4], rest[5]]),
            seq: u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]),
            bytes: &rest[..len],
        };
        self.pos = (self.pos + ((len + 3) & !3)).min(self.datagram.len());
        Some(Ok(message))
    }
}

/// What one exchange received ([`RawSocket::receive_until_end`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Messages other than the closing `NLMSG_DONE` or ACK.
    pub messages: u64,
    /// Bytes of every datagram, the closing one included.
    pub bytes: u64,
    /// Datagrams, the closing one included.
    pub datagrams: u64,
}

/// A `NETLINK_NETFILTER` socket opened directly with `netlink-sys` (no
/// [`Conntrack`](crate::Conntrack)), with its receive buffer and sequence
/// numbers (1, 2, ... on a fresh socket).
#[derive(Debug)]
pub struct RawSocket {
    socket: Socket,
    buf: Vec<u8>,
    seq: u32,
}

impl RawSocket {
    /// Opens and binds a socket inside `netns` (the caller's namespace for
    /// `None`), with a [`RECEIVE_BUFFER`]-byte receive buffer.
    pub fn open(netns: Option<&NetnsFile>) -> Result<RawSocket> {
        RawSocket::with_buffer(netns, vec![0; RECEIVE_BUFFER])
    }

    /// Like [`open`](RawSocket::open), receiving into `buf`: its length is the
    /// largest datagram accepted. [`into_buffer`](RawSocket::into_buffer)
    /// gives it back, so a loop that opens a socket per run need not allocate.
    pub fn with_buffer(netns: Option<&NetnsFile>, buf: Vec<u8>) -> Result<RawSocket> {
        // A netlink socket belongs to the namespace of the thread creating it.
        let open = || -> io::Result<Socket> {
            let mut socket = Socket::new(NETLINK_NETFILTER)?;
            socket.bind_auto()?;
            Ok(socket)
        };
        let socket = match netns {
            Some(netns) => netns.run(open)?,
            None => open(),
        }
        .map_err(|e| Error::io("open a NETLINK_NETFILTER socket", e))?;
        Ok(RawSocket {
            socket,
            buf,
            seq: 0,
        })
    }

    /// The receive buffer, to reuse it ([`with_buffer`](RawSocket::with_buffer)).
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// The socket, to set options (`set_ext_ack`, `set_cap_ack`, ...).
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The next sequence number.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one datagram; a short send is an error.
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        let sent = self
            .socket
            .send_to(bytes, &SocketAddr::new(0, 0), 0)
            .map_err(|e| Error::io("send", e))?;
        if sent != bytes.len() {
            let short = io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short send: {sent} of {} bytes", bytes.len()),
            );
            return Err(Error::io("send", short));
        }
        Ok(())
    }

    /// Receives one datagram into the buffer; a datagram larger than the
    /// buffer is an error ([`Error::Truncated`]), never silently cut.
    pub fn recv(&mut self) -> Result<&[u8]> {
        let len = self.recv_len()?;
        Ok(&self.buf[..len])
    }

    #[inline]
    fn recv_len(&mut self) -> Result<usize> {
        let capacity = self.buf.len();
        let mut window: &mut [u8] = &mut self.buf;
        let size = self
            .socket
            .recv(&mut window, libc::MSG_TRUNC)
            .map_err(|e| Error::io("recv", e))?;
        if size > capacity {
            return Err(Error::Truncated { size, capacity });
        }
        Ok(size)
    }

    /// Sends a request without attributes (`NLM_F_REQUEST | flags`, netfilter
    /// header version 0) and returns its sequence number.
    pub fn request(&mut self, msg: u8, flags: u16, family: u8) -> Result<u32> {
        let seq = self.next_seq();
        let mut encoder = Encoder::new();
        let mark = encoder.begin(msg, NLM_F_REQUEST | flags, seq, family, NFNETLINK_V0);
        encoder.end(mark);
        self.send(encoder.as_bytes())?;
        Ok(seq)
    }

    /// Receives until `NLMSG_DONE` or an ACK, calling `on_message` for every
    /// other message. A kernel error ends the exchange with
    /// [`Error::Kernel`]; the socket is then ready for the next request.
    #[inline]
    pub fn receive_until_end(
        &mut self,
        mut on_message: impl FnMut(RawMessage<'_>),
    ) -> Result<Received> {
        let mut received = Received::default();
        loop {
            let len = self.recv_len()?;
            received.datagrams += 1;
            received.bytes += len as u64;
            for message in messages(&self.buf[..len]) {
                let message = message?;
                match message.kind {
                    NLMSG_DONE => return Ok(received),
                    NLMSG_ERROR => {
                        let code = message.error_code().ok_or_else(|| {
                            let kind = DecodeErrorKind::Truncated {
                                needed: NLMSG_HDRLEN + 4,
                                available: message.bytes.len(),
                            };
                            DecodeError::new("NLMSG_ERROR", kind, 0)
                        })?;
                        if code != 0 {
                            return Err(Error::Kernel {
                                operation: "raw netlink request",
                                errno: code.saturating_neg(),
                                message: None,
                                offset: None,
                            });
                        }
                        return Ok(received);
                    }
                    _ => {
                        received.messages += 1;
                        on_message(message);
                    }
                }
            }
        }
    }

    /// One `IPCTNL_MSG_CT_GET_STATS` round trip: afterwards the kernel builds
    /// even the first dump batch as a 32 KiB skb (docs/ctnetlink.md §7.2), as
    /// for a library handle.
    pub fn warm_up(&mut self) -> Result<()> {
        self.request(IPCTNL_MSG_CT_GET_STATS, NLM_F_ACK, AF_UNSPEC)?;
        self.receive_until_end(|_| {})?;
        Ok(())
    }

    /// Starts a dump of both families (`IPCTNL_MSG_CT_GET`, `NLM_F_DUMP`,
    /// `AF_UNSPEC`); receive it with
    /// [`receive_until_end`](RawSocket::receive_until_end).
    pub fn start_dump(&mut self) -> Result<u32> {
        self.request(IPCTNL_MSG_CT_GET, NLM_F_DUMP, AF_UNSPEC)
    }

    /// The raw drain: one dump of both families, its messages counted, none
    /// decoded.
    pub fn drain(&mut self) -> Result<Received> {
        self.start_dump()?;
        self.receive_until_end(|_| {})
    }
}

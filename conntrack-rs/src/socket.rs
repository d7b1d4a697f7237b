// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `NETLINK_NETFILTER` socket: one owned fd (closed once, by
//! `netlink_sys::Socket`'s `Drop`), sequence numbers, extended ACKs, and
//! truncation-checked receives.
//!
//! Event sockets use the same type plus what subscriptions need: multicast
//! group membership, receive-buffer sizing (forced where permitted), reliable
//! delivery options, the kernel's drop counter, and a non-blocking receive
//! that reports `ENOBUFS` (events lost, socket still usable) as a value
//! rather than an error. Request/reply and dump paths do not use those.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Instant;

use netlink_sys::{Socket, SocketAddr};

use crate::consts::NETLINK_NETFILTER;
use crate::error::{Error, Result};

/// `SO_RCVBUFFORCE` (`include/uapi/asm-generic/socket.h`; sparc has its own
/// numbering). The `libc` crate does not export it for Linux targets.
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const SO_RCVBUFFORCE: libc::c_int = 33;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_RCVBUFFORCE: libc::c_int = 0x100b;

/// `SO_MEMINFO` (`include/uapi/asm-generic/socket.h`, Linux 4.12+).
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const SO_MEMINFO: libc::c_int = 55;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_MEMINFO: libc::c_int = 0x0039;

/// Number of `u32`s `SO_MEMINFO` fills (`SK_MEMINFO_VARS`, `sock_diag.h`).
const SK_MEMINFO_VARS: usize = 9;

/// What one non-blocking receive on an event socket produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventReceive {
    /// A datagram of this many bytes is in the buffer.
    Datagram(usize),
    /// The kernel dropped messages for this socket (`ENOBUFS`); the socket is
    /// still usable and the queue may still hold older messages.
    Overrun,
    /// Nothing queued right now.
    Empty,
}

/// How a receive buffer request was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GrantedBuffer {
    /// What the kernel reports with `SO_RCVBUF` afterwards (it doubles the
    /// request for bookkeeping overhead).
    pub(crate) granted: usize,
    /// Whether `SO_RCVBUFFORCE` was accepted (else `SO_RCVBUF`, capped by
    /// `net.core.rmem_max`).
    pub(crate) forced: bool,
}

/// Size of the receive buffer. The kernel sizes dump batches from the length
/// passed to `recvmsg` (capped at 32 KiB of payload, docs/ctnetlink.md §7.2); 64 KiB
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
        Self::open_protocol(NETLINK_NETFILTER, "socket(NETLINK_NETFILTER)")
    }

    /// Opens and binds a socket of another netlink protocol (`NETLINK_SOCK_DIAG`,
    /// `NETLINK_ROUTE`) in the calling thread's network namespace; `operation`
    /// names it in errors.
    pub(crate) fn open_protocol(protocol: isize, operation: &'static str) -> Result<Self> {
        let mut socket = Socket::new(protocol).map_err(|e| Error::io(operation, e))?;
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

impl NlSocket {
    /// Joins a multicast group (`NETLINK_ADD_MEMBERSHIP`, needs `CAP_NET_ADMIN`).
    pub(crate) fn add_membership(&self, group: u32) -> Result<()> {
        self.socket
            .add_membership(group)
            .map_err(|e| Error::io("join netlink multicast group", e))
    }

    /// Asks for a receive buffer of `bytes`: `SO_RCVBUFFORCE` first (ignores
    /// `net.core.rmem_max`, needs `CAP_NET_ADMIN`), else `SO_RCVBUF`. Reports
    /// the size the kernel actually set.
    pub(crate) fn set_receive_buffer(&self, bytes: usize) -> Result<GrantedBuffer> {
        // The kernel takes an int and halves anything above INT_MAX / 2 itself.
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        let forced = match setsockopt_int(self.as_raw_fd(), libc::SOL_SOCKET, SO_RCVBUFFORCE, value)
        {
            Ok(()) => true,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) => {
                self.socket
                    .set_rx_buf_sz(value)
                    .map_err(|e| Error::io("setsockopt(SO_RCVBUF)", e))?;
                false
            }
            Err(e) => return Err(Error::io("setsockopt(SO_RCVBUFFORCE)", e)),
        };
        Ok(GrantedBuffer {
            granted: self.receive_buffer()?,
            forced,
        })
    }

    /// The receive buffer size in bytes (`SO_RCVBUF`, as the kernel accounts it).
    pub(crate) fn receive_buffer(&self) -> Result<usize> {
        self.socket
            .get_rx_buf_sz()
            .map_err(|e| Error::io("getsockopt(SO_RCVBUF)", e))
    }

    /// Reliable delivery: `NETLINK_BROADCAST_ERROR` (a failed delivery is
    /// reported back to the kernel sender, which then keeps destroyed flows
    /// until their event is delivered) and `NETLINK_NO_ENOBUFS`.
    pub(crate) fn set_reliable(&self, on: bool) -> Result<()> {
        self.socket
            .set_broadcast_error(on)
            .map_err(|e| Error::io("setsockopt(NETLINK_BROADCAST_ERROR)", e))?;
        self.socket
            .set_no_enobufs(on)
            .map_err(|e| Error::io("setsockopt(NETLINK_NO_ENOBUFS)", e))
    }

    /// The kernel's count of messages dropped for this socket because its
    /// queue was full (`SO_MEMINFO`, `SK_MEMINFO_DROPS`); `None` on kernels
    /// without `SO_MEMINFO` (before 4.12).
    pub(crate) fn kernel_drops(&self) -> Result<Option<u32>> {
        let mut info = [0u32; SK_MEMINFO_VARS];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: `info` is a live, writable array of `len` bytes for the whole
        // call, and `len` is a valid pointer the kernel updates; the fd is
        // owned by `self.socket`.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::getsockopt(
                self.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOPROTOOPT) | Some(libc::EINVAL) => Ok(None),
                _ => Err(Error::io("getsockopt(SO_MEMINFO)", e)),
            };
        }
        let drops = libc::SK_MEMINFO_DROPS as usize;
        if (len as usize) < (drops + 1) * std::mem::size_of::<u32>() {
            return Ok(None);
        }
        Ok(Some(info[drops]))
    }

    /// Switches `O_NONBLOCK` (for readiness-driven use such as tokio's `AsyncFd`).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn set_non_blocking(&self, on: bool) -> Result<()> {
        self.socket
            .set_non_blocking(on)
            .map_err(|e| Error::io("set O_NONBLOCK on netlink socket", e))
    }

    /// Receives one datagram without blocking (`MSG_DONTWAIT`, whatever the
    /// fd's mode), with truncation detection; `ENOBUFS` becomes
    /// [`EventReceive::Overrun`] and an empty queue [`EventReceive::Empty`].
    pub(crate) fn recv_nonblocking(&mut self, buf: &mut [u8]) -> Result<EventReceive> {
        let capacity = buf.len();
        loop {
            let mut window: &mut [u8] = &mut *buf;
            match self
                .socket
                .recv(&mut window, libc::MSG_TRUNC | libc::MSG_DONTWAIT)
            {
                Ok(size) if size > capacity => return Err(Error::Truncated { size, capacity }),
                Ok(size) => return Ok(EventReceive::Datagram(size)),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => return Ok(EventReceive::Overrun),
                    Some(code) if code == libc::EAGAIN || code == libc::EWOULDBLOCK => {
                        return Ok(EventReceive::Empty)
                    }
                    _ => return Err(Error::io("receive netlink event", e)),
                },
            }
        }
    }

    /// Waits until the socket is readable (or has an error to report), or
    /// until `deadline`; `None` waits for ever. Returns whether it is ready.
    pub(crate) fn wait_readable(&self, deadline: Option<Instant>) -> Result<bool> {
        wait_readable(self.as_fd(), deadline)
    }

    /// A second descriptor (`dup`) of this socket, for a thread that receives
    /// a dump's datagrams while the handle's owner decodes them.
    pub(crate) fn duplicate_reader(&self) -> Result<SharedReader> {
        let fd = self
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::io("duplicate netlink socket", e))?;
        Ok(SharedReader { fd })
    }
}

/// A duplicate descriptor of a handle's socket, read by a dump's prefetch
/// thread. It shares the socket (and its receive queue) with the handle: only
/// one side may read at a time, which the dump guarantees by holding the
/// handle for as long as the thread runs.
#[derive(Debug)]
pub(crate) struct SharedReader {
    fd: OwnedFd,
}

impl SharedReader {
    /// Receives one datagram without blocking (`MSG_DONTWAIT`), with
    /// truncation detection; `None` when nothing is queued yet.
    pub(crate) fn recv_nonblocking(&self, buf: &mut [u8]) -> Result<Option<usize>> {
        let capacity = buf.len();
        loop {
            // SAFETY: `buf` is a live, writable slice of `capacity` bytes for
            // the whole call, and the fd is owned by `self` (open until drop).
            #[allow(unsafe_code)]
            let rc = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    capacity,
                    libc::MSG_TRUNC | libc::MSG_DONTWAIT,
                )
            };
            if let Ok(size) = usize::try_from(rc) {
                if size > capacity {
                    return Err(Error::Truncated { size, capacity });
                }
                return Ok(Some(size));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(code) if code == libc::EAGAIN || code == libc::EWOULDBLOCK => return Ok(None),
                _ => return Err(Error::io("receive netlink reply", e)),
            }
        }
    }

    /// Waits until the socket is readable or `deadline` passes.
    pub(crate) fn wait_readable(&self, deadline: Option<Instant>) -> Result<bool> {
        wait_readable(self.fd.as_fd(), deadline)
    }
}

/// Waits until `fd` is readable (or has an error to report), or until
/// `deadline`; `None` waits for ever. Returns whether it is ready.
fn wait_readable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<bool> {
    loop {
        let timeout_ms: libc::c_int = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Round up so that a sub-millisecond remainder still waits.
                let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            }
        };
        let mut pollfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pollfd` is one valid, writable struct for the duration of
        // the call, matching `nfds = 1`; the fd is borrowed, so open meanwhile.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
        if rc > 0 {
            return Ok(true);
        }
        if rc == 0 {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            continue;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(Error::io("poll netlink socket", e));
        }
    }
}

impl AsRawFd for NlSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for NlSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// `setsockopt` with an `int` value.
fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the value pointer refers to a live `c_int` whose size is passed
    // as the option length; the kernel only reads it during the call.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The receiving end of a handle: its socket, the one receive buffer every
/// reply lands in, and whether a reply stream was left unfinished. A
/// [`Dump`](crate::Dump) borrows this, not the whole handle.
#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) socket: NlSocket,
    pub(crate) buf: Vec<u8>,
    /// Set when a dump was abandoned or a reply stream broke: the kernel may
    /// still be sending on this socket, so the next request uses a fresh one.
    pub(crate) stale: bool,
}

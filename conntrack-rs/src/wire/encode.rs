// SPDX-License-Identifier: MIT OR Apache-2.0
//! Request encoding: `nlmsghdr` + `nfgenmsg` + attributes, several messages per
//! buffer if wanted (pipelined requests).
//!
//! Lengths are patched when a message or nest is closed, so callers write
//! attributes in order without sizing them first. Attribute payloads follow the
//! kernel's conventions (docs/ctnetlink.md §2): big-endian scalars, raw IPv4/IPv6
//! bytes, host-order labels; nests always carry `NLA_F_NESTED`.

use crate::consts::*;

/// Builds netlink requests into a reusable buffer.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

/// Marks the start of an open message or nest (returned by `begin`/`nest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "close it with end() or end_nest()"]
pub struct Mark(usize);

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Encoder::default()
    }

    /// The encoded bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets everything encoded (keeps the allocation).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Forgets what was encoded after the first `len` bytes (e.g. a message
    /// abandoned half-way because its input was refused).
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Starts a ctnetlink message of type `msg` (an `IPCTNL_MSG_*`).
    pub fn begin(&mut self, msg: u8, flags: u16, seq: u32, family: u8, version: u8) -> Mark {
        self.begin_typed(ct_msg_type(msg), flags, seq, family, version)
    }

    /// Starts a netfilter message of the full type `kind` (`subsystem << 8 |
    /// message`, e.g. [`exp_msg_type`](crate::consts::exp_msg_type)).
    pub fn begin_typed(
        &mut self,
        kind: u16,
        flags: u16,
        seq: u32,
        family: u8,
        version: u8,
    ) -> Mark {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, patched in end()
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it
                                                         // struct nfgenmsg: family, version, res_id (big-endian, unused by ctnetlink requests)
        self.buf.extend_from_slice(&[family, version, 0, 0]);
        Mark(start)
    }

    /// Starts a message of any netlink family (`nlmsg_type` as given) with no
    /// family header: the caller appends its fixed header with [`raw`](Self::raw)
    /// (`inet_diag_req_v2`, `ifaddrmsg`, ...).
    pub fn begin_raw(&mut self, kind: u16, flags: u16, seq: u32) -> Mark {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, patched in end()
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        Mark(start)
    }

    /// Appends raw bytes (a fixed family header), padded to 4 bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.pad();
    }

    /// ORs `flags` into the `nlmsg_flags` of the message starting at byte `start`.
    pub fn add_flags(&mut self, start: usize, flags: u16) {
        if let Some(field) = self.buf.get_mut(start + 6..start + 8) {
            let old = u16::from_ne_bytes([field[0], field[1]]);
            field.copy_from_slice(&(old | flags).to_ne_bytes());
        }
    }

    /// Closes the message started at `mark`.
    pub fn end(&mut self, mark: Mark) {
        let len = (self.buf.len() - mark.0) as u32;
        self.buf[mark.0..mark.0 + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn header(&mut self, kind: u16, payload_len: usize) {
        let len = (NLA_HDRLEN + payload_len) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    /// Appends an attribute with a raw payload.
    pub fn bytes(&mut self, kind: u16, payload: &[u8]) {
        self.header(kind, payload.len());
        self.buf.extend_from_slice(payload);
        self.pad();
    }

    /// Appends a `u8` attribute.
    pub fn u8(&mut self, kind: u16, value: u8) {
        self.bytes(kind, &[value]);
    }

    /// Appends a big-endian `u16` attribute.
    pub fn be16(&mut self, kind: u16, value: u16) {
        self.bytes(kind, &value.to_be_bytes());
    }

    /// Appends a big-endian `u32` attribute.
    pub fn be32(&mut self, kind: u16, value: u32) {
        self.bytes(kind, &value.to_be_bytes());
    }

    /// Appends a big-endian `u64` attribute.
    pub fn be64(&mut self, kind: u16, value: u64) {
        self.bytes(kind, &value.to_be_bytes());
    }

    /// Appends a NUL-terminated string attribute.
    pub fn string(&mut self, kind: u16, value: &str) {
        self.header(kind, value.len() + 1);
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
        self.pad();
    }

    /// Opens a nested attribute.
    pub fn nest(&mut self, kind: u16) -> Mark {
        let start = self.buf.len();
        self.header(kind | NLA_F_NESTED, 0);
        Mark(start)
    }

    /// Closes the nest opened at `mark`.
    pub fn end_nest(&mut self, mark: Mark) {
        let len = (self.buf.len() - mark.0) as u16;
        self.buf[mark.0..mark.0 + 2].copy_from_slice(&len.to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Attrs, Messages};

    #[test]
    fn message_and_nest_lengths_are_patched() {
        let mut e = Encoder::new();
        let m = e.begin(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_ACK, 42, AF_INET, 0);
        let n = e.nest(CTA_TUPLE_ORIG);
        e.u8(CTA_PROTO_NUM, 6);
        e.end_nest(n);
        e.string(CTA_HELP_NAME, "ftp");
        e.end(m);
        let msg = Messages::new(e.as_bytes()).next().unwrap().unwrap();
        assert_eq!(msg.kind, 0x101);
        assert_eq!(msg.seq, 42);
        assert_eq!(&msg.payload[..4], &[AF_INET, 0, 0, 0]);
        let attrs: Vec<_> = Attrs::new(&msg.payload[4..], 20, "t")
            .map(Result::unwrap)
            .collect();
        assert_eq!(attrs.len(), 2);
        assert!(attrs[0].nested);
        assert_eq!(attrs[0].payload.len(), 8);
        assert_eq!(attrs[1].str("name").unwrap(), "ftp");
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Netlink message framing: a walker over the messages of one datagram, and the
//! decoding of `NLMSG_ERROR` (including extended-ack TLVs).
//!
//! Contract: [`Messages`] yields each message whose `nlmsg_len` fits in the
//! datagram; a header that does not fit is yielded as an error once and the
//! walk ends (the rest of the datagram cannot be framed).

use crate::consts::*;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::wire::attr::Attrs;

/// One netlink message inside a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`.
    pub pid: u32,
    /// Everything after the 16-byte header (up to `nlmsg_len`).
    pub payload: &'a [u8],
}

/// Walks the messages of a datagram.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    buf: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Messages<'a> {
    /// Walks `buf` (one datagram).
    pub fn new(buf: &'a [u8]) -> Self {
        Messages {
            buf,
            pos: 0,
            done: false,
        }
    }

    /// Byte offset of the next message in the datagram.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        if rest.len() < NLMSG_HDRLEN {
            self.done = true;
            return Some(Err(DecodeError::new(
                "nlmsghdr",
                DecodeErrorKind::Truncated {
                    needed: NLMSG_HDRLEN,
                    available: rest.len(),
                },
                self.pos,
            )));
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            self.done = true;
            return Some(Err(DecodeError::new(
                "nlmsghdr",
                DecodeErrorKind::Truncated {
                    needed: len.max(NLMSG_HDRLEN),
                    available: rest.len(),
                },
                self.pos,
            )));
        }
        let message = Message {
            kind: u16::from_ne_bytes([rest[4], rest[5]]),
            flags: u16::from_ne_bytes([rest[6], rest[7]]),
            seq: u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]),
            pid: u32::from_ne_bytes([rest[12], rest[13], rest[14], rest[15]]),
            payload: &rest[NLMSG_HDRLEN..len],
        };
        self.pos = (self.pos + ((len + 3) & !3)).min(self.buf.len());
        Some(Ok(message))
    }
}

/// The decoded body of an `NLMSG_ERROR` message (an ACK when `errno == 0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply<'a> {
    /// Positive errno, 0 for an ACK.
    pub errno: i32,
    /// Extended-ack message, if any.
    pub message: Option<&'a str>,
    /// Extended-ack offset of the offending attribute, if any.
    pub offset: Option<u32>,
}

/// Decodes an `NLMSG_ERROR` (or `NLMSG_DONE`, whose payload starts the same way) body.
pub fn parse_error<'a>(message: &Message<'a>) -> Result<ErrorReply<'a>, DecodeError> {
    let p = message.payload;
    let code: [u8; 4] = p
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(DecodeError::new(
            "nlmsgerr",
            DecodeErrorKind::Truncated {
                needed: 4,
                available: p.len(),
            },
            NLMSG_HDRLEN,
        ))?;
    // The kernel sends -errno; saturate so a hostile i32::MIN cannot overflow.
    let errno = i32::from_ne_bytes(code).saturating_neg();
    let mut reply = ErrorReply {
        errno,
        message: None,
        offset: None,
    };
    if message.kind != NLMSG_ERROR || message.flags & NLM_F_ACK_TLVS == 0 {
        return Ok(reply);
    }
    // After the code comes the echoed request header (and its payload unless capped).
    let echoed_len = match p.get(4..8) {
        Some(b) if message.flags & NLM_F_CAPPED == 0 => {
            u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize
        }
        _ => NLMSG_HDRLEN,
    };
    let tlv_start = 4 + ((echoed_len + 3) & !3);
    let Some(tlvs) = p.get(tlv_start..) else {
        return Ok(reply);
    };
    for attr in Attrs::new(tlvs, NLMSG_HDRLEN + tlv_start, "nlmsgerr TLVs") {
        let attr = attr?;
        match attr.kind {
            NLMSGERR_ATTR_MSG => reply.message = Some(attr.str("NLMSGERR_ATTR_MSG")?),
            NLMSGERR_ATTR_OFFS => {
                reply.offset = Some(u32::from_ne_bytes(attr.array("NLMSGERR_ATTR_OFFS")?))
            }
            _ => {}
        }
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u32, kind: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&77u32.to_ne_bytes());
        v
    }

    #[test]
    fn walks_two_messages_and_rejects_bad_length() {
        let mut d = header(20, NLMSG_DONE, NLM_F_MULTI, 5);
        d.extend_from_slice(&0i32.to_ne_bytes());
        d.extend(header(16, NLMSG_NOOP, 0, 6));
        d.extend(header(99, NLMSG_NOOP, 0, 7));
        let mut it = Messages::new(&d);
        let m = it.next().unwrap().unwrap();
        assert_eq!(
            (m.kind, m.seq, m.pid, m.payload.len()),
            (NLMSG_DONE, 5, 77, 4)
        );
        assert_eq!(it.next().unwrap().unwrap().seq, 6);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn error_with_extack_message() {
        // Captured shape: -EINVAL, capped echo of a 16-byte header, then
        // NLMSGERR_ATTR_MSG "Attribute failed policy validation".
        let text = b"Attribute failed policy validation\0";
        let mut body = (-22i32).to_ne_bytes().to_vec();
        body.extend(header(40, 0x100, 0x405, 9));
        let attr_len = 4 + text.len();
        body.extend_from_slice(&(attr_len as u16).to_ne_bytes());
        body.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        body.extend_from_slice(text);
        while body.len() % 4 != 0 {
            body.push(0);
        }
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&NLMSGERR_ATTR_OFFS.to_ne_bytes());
        body.extend_from_slice(&36u32.to_ne_bytes());
        let mut d = header(
            (16 + body.len()) as u32,
            NLMSG_ERROR,
            NLM_F_CAPPED | NLM_F_ACK_TLVS,
            9,
        );
        d.extend(body);
        let m = Messages::new(&d).next().unwrap().unwrap();
        let e = parse_error(&m).unwrap();
        assert_eq!(e.errno, 22);
        assert_eq!(e.message, Some("Attribute failed policy validation"));
        assert_eq!(e.offset, Some(36));
    }

    #[test]
    fn hostile_error_code_does_not_overflow() {
        let mut d = header(20, NLMSG_ERROR, 0, 1);
        d.extend_from_slice(&i32::MIN.to_ne_bytes());
        let m = Messages::new(&d).next().unwrap().unwrap();
        assert_eq!(parse_error(&m).unwrap().errno, i32::MAX);
    }
}

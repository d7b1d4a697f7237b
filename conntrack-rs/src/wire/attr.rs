// SPDX-License-Identifier: MIT OR Apache-2.0
//! A strict, allocation-free walker over netlink attributes (`struct nlattr`).
//!
//! Contract: [`Attrs`] yields `Result<Attr>`; the first framing error (a header
//! that does not fit, a length smaller than the header or larger than what is
//! left) is yielded once and the iterator then stops for good. Once an [`Attr`]
//! is yielded its payload slice is in bounds, so the scalar readers below only
//! have to check the payload size, which they do, returning a typed error.
//! Types are masked with `NLA_TYPE_MASK` (the kernel sets `NLA_F_NESTED` on
//! every nest since 5.2 and not before; both are accepted).

use crate::consts::{NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK};
use crate::error::{DecodeError, DecodeErrorKind};

/// One attribute: its masked type, payload, and offset (of its header) in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// `nla_type & NLA_TYPE_MASK`.
    pub kind: u16,
    /// Whether `NLA_F_NESTED` was set.
    pub nested: bool,
    /// The payload (without padding).
    pub payload: &'a [u8],
    /// Offset of the attribute header from the start of the enclosing message.
    pub offset: usize,
}

/// Iterator over the attributes in a byte range.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    what: &'static str,
    done: bool,
}

impl<'a> Attrs<'a> {
    /// Walks `buf`, whose first byte is at offset `base` of the enclosing message;
    /// `what` names the container in error reports.
    pub fn new(buf: &'a [u8], base: usize, what: &'static str) -> Self {
        Attrs {
            buf,
            pos: 0,
            base,
            what,
            done: false,
        }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = &self.buf[self.pos..];
        // Fewer bytes than a header at the end is alignment padding, as the
        // kernel's nla_ok() treats it.
        if rest.len() < NLA_HDRLEN {
            self.done = true;
            return None;
        }
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let raw_type = u16::from_ne_bytes([rest[2], rest[3]]);
        let offset = self.base + self.pos;
        if len < NLA_HDRLEN || len > rest.len() {
            self.done = true;
            return Some(Err(DecodeError::new(
                self.what,
                DecodeErrorKind::Truncated {
                    needed: len.max(NLA_HDRLEN),
                    available: rest.len(),
                },
                offset,
            )));
        }
        let payload = &rest[NLA_HDRLEN..len];
        // Move past the padding; the last attribute may omit it.
        self.pos = (self.pos + ((len + 3) & !3)).min(self.buf.len());
        Some(Ok(Attr {
            kind: raw_type & NLA_TYPE_MASK,
            nested: raw_type & NLA_F_NESTED != 0,
            payload,
            offset,
        }))
    }
}

/// The top-level attributes of a netfilter message payload (everything after
/// the `nlmsghdr`): skips the 4-byte `nfgenmsg`, or reports it truncated.
/// Offsets are relative to the start of the whole message.
pub fn netfilter_attrs<'a>(
    payload: &'a [u8],
    what: &'static str,
) -> Result<Attrs<'a>, DecodeError> {
    use crate::consts::{NFGENMSG_LEN, NLMSG_HDRLEN};
    let attrs = payload.get(NFGENMSG_LEN..).ok_or(DecodeError::new(
        "nfgenmsg",
        DecodeErrorKind::Truncated {
            needed: NFGENMSG_LEN,
            available: payload.len(),
        },
        NLMSG_HDRLEN,
    ))?;
    Ok(Attrs::new(attrs, NLMSG_HDRLEN + NFGENMSG_LEN, what))
}

impl<'a> Attr<'a> {
    /// The attributes nested inside this one.
    #[inline]
    pub fn nested(&self, what: &'static str) -> Attrs<'a> {
        Attrs::new(self.payload, self.offset + NLA_HDRLEN, what)
    }

    #[inline]
    fn exact<const N: usize>(&self, what: &'static str) -> Result<[u8; N], DecodeError> {
        self.payload.try_into().map_err(|_| {
            DecodeError::new(
                what,
                DecodeErrorKind::WrongSize {
                    expected: N,
                    found: self.payload.len(),
                },
                self.offset,
            )
        })
    }

    /// A `u8` payload.
    #[inline]
    pub fn u8(&self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.exact::<1>(what)?[0])
    }

    /// A big-endian `u16` payload.
    #[inline]
    pub fn be16(&self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.exact(what)?))
    }

    /// A big-endian `u32` payload.
    #[inline]
    pub fn be32(&self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.exact(what)?))
    }

    /// A big-endian `u64` payload.
    #[inline]
    pub fn be64(&self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.exact(what)?))
    }

    /// A fixed-size raw payload (addresses, opaque ids).
    #[inline]
    pub fn array<const N: usize>(&self, what: &'static str) -> Result<[u8; N], DecodeError> {
        self.exact(what)
    }

    /// A string payload: up to the first NUL, which must be valid UTF-8.
    pub fn str(&self, what: &'static str) -> Result<&'a str, DecodeError> {
        let bytes = match self.payload.iter().position(|&b| b == 0) {
            Some(end) => &self.payload[..end],
            None => self.payload,
        };
        std::str::from_utf8(bytes)
            .map_err(|_| DecodeError::new(what, DecodeErrorKind::Invalid, self.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_and_masks_nested_flag() {
        // CTA_STATUS=8 then a nested CTA_TUPLE_ORIG with no children, unpadded u8.
        let bytes = [
            8, 0, 3, 0, 0, 0, 0, 8, // CTA_STATUS = 8
            4, 0, 1, 0x80, // CTA_TUPLE_ORIG | NLA_F_NESTED, empty
            5, 0, 1, 0, 6, // u8 without trailing padding
        ];
        let attrs: Vec<_> = Attrs::new(&bytes, 20, "test")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(attrs.len(), 3);
        assert_eq!(attrs[0].kind, 3);
        assert_eq!(attrs[0].be32("status").unwrap(), 8);
        assert_eq!(attrs[0].offset, 20);
        assert_eq!(attrs[1].kind, 1);
        assert!(attrs[1].nested);
        assert_eq!(attrs[2].u8("num").unwrap(), 6);
        assert_eq!(attrs[2].offset, 32);
    }

    #[test]
    fn stops_after_first_framing_error() {
        let bytes = [8, 0, 3, 0, 0, 0, 0, 8, 40, 0, 1, 0, 1, 2, 3, 4];
        let mut it = Attrs::new(&bytes, 0, "test");
        assert!(it.next().unwrap().is_ok());
        let err = it.next().unwrap().unwrap_err();
        assert_eq!(err.offset, 8);
        assert!(matches!(
            err.kind,
            DecodeErrorKind::Truncated {
                needed: 40,
                available: 8
            }
        ));
        assert!(it.next().is_none());
    }

    #[test]
    fn length_below_header_is_an_error_not_a_loop() {
        let bytes = [2, 0, 1, 0, 0, 0, 0, 0];
        let mut it = Attrs::new(&bytes, 0, "test");
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn wrong_size_is_typed() {
        let bytes = [6, 0, 7, 0, 1, 2, 0, 0];
        let attr = Attrs::new(&bytes, 0, "t").next().unwrap().unwrap();
        let err = attr.be32("CTA_TIMEOUT").unwrap_err();
        assert_eq!(
            err.kind,
            DecodeErrorKind::WrongSize {
                expected: 4,
                found: 2
            }
        );
        assert_eq!(attr.be16("x").unwrap(), 0x0102);
    }
}

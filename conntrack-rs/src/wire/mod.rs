// SPDX-License-Identifier: MIT OR Apache-2.0
//! The wire layer: netlink message framing, attribute walking and request encoding.
//!
//! Everything here works on byte slices and never allocates while decoding, so
//! it serves both the socket code and offline parsing of captured buffers
//! (tests, benchmarks, fuzzing).

mod attr;
mod encode;
mod msg;

pub use attr::{netfilter_attrs, Attr, Attrs};
pub use encode::{Encoder, Mark};
pub use msg::{parse_error, ErrorReply, Message, Messages};

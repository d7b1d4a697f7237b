// SPDX-License-Identifier: MIT OR Apache-2.0
//! Text output of flows (being written in this session).

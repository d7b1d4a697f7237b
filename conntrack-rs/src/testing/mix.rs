// SPDX-License-Identifier: MIT OR Apache-2.0
//! The tables `fill` builds: deterministic flows (flow `i` is always the same
//! flow), so that the decode bench decodes exactly the flows `fill --mix`
//! creates, and the kernel tests and benches fill their namespaces with them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{Conntrack, FlowSpec, Status, TcpState, Tuple};

/// `base` + `i` as an IPv4 address.
pub fn v4(base: [u8; 4], i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(u32::from_be_bytes(base).wrapping_add(i)))
}

/// `2001:db8:<net>::<i>` (documentation prefix).
pub fn v6(net: u16, i: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        net,
        0,
        0,
        0,
        (i >> 16) as u16,
        i as u16,
    ))
}

/// Flow `i` of the default table: IPv4 UDP, unreplied, distinct source.
pub fn udp_flow(i: u32) -> FlowSpec {
    let src = v4([10, 0, 0, 1], i);
    let dst = v4([172, 16, 0, 1], i % 256);
    FlowSpec::new(Tuple::udp((src, 1024 + (i % 64000) as u16), (dst, 53)))
}

/// Flow `i` of the `--mix` table. Every tuple (and reply tuple) embeds `i` in
/// its client address, so no two flows clash in either direction.
pub fn mixed_flow(i: u32) -> FlowSpec {
    let port = 1024 + (i % 60000) as u16;
    let client4 = v4([10, 0, 0, 1], i);
    let client6 = v6(1, i);
    let server4 = v4([198, 51, 100, 1], i % 200);
    let server6 = v6(2, i % 200);
    let established = Status::SEEN_REPLY | Status::ASSURED;
    let mut spec = match i % 20 {
        0..=5 => FlowSpec::new(Tuple::tcp((client4, port), (server4, 443)))
            .tcp_state(TcpState::Established)
            .status(established),
        6 => {
            // Looks like masquerading: the reply goes to a public address and port.
            // (100.64.0.0/10 + i keeps every reply tuple distinct).
            let orig = Tuple::tcp((client4, port), (server4, 80));
            let reply = Tuple::tcp((server4, 80), (v4([100, 64, 0, 1], i), port));
            FlowSpec::new(orig)
                .reply(reply)
                .tcp_state(TcpState::Established)
                .status(established)
        }
        7 => FlowSpec::new(Tuple::tcp((client4, port), (server4, 22))).tcp_state(TcpState::SynSent),
        8 => FlowSpec::new(Tuple::tcp((client4, port), (server4, 443)))
            .tcp_state(TcpState::TimeWait)
            .status(established),
        9 | 10 => FlowSpec::new(Tuple::tcp((client6, port), (server6, 443)))
            .tcp_state(TcpState::Established)
            .status(established),
        11..=13 => FlowSpec::new(Tuple::udp((client4, port), (server4, 53))).status(established),
        14 | 15 => FlowSpec::new(Tuple::udp((client4, port), (server4, 123))),
        16 | 17 => FlowSpec::new(Tuple::udp((client6, port), (server6, 53))).status(established),
        18 => FlowSpec::new(Tuple::icmp(client4, server4, i as u16, 8, 0)).status(established),
        _ => FlowSpec::new(Tuple::icmp(client6, server6, i as u16, 128, 0)),
    };
    if i % 7 == 0 {
        spec = spec.mark(1 + i % 16);
    }
    if i % 50 == 0 {
        spec = spec.zone(1 + (i / 50 % 3) as u16);
    }
    spec
}

/// Creates flows `range` of the `--mix` table with a one-hour timeout, one
/// `Conntrack::create` per flow as `fill` does; flows that already exist are
/// kept. Panics on any other error (for tests and benches).
pub fn create_mixed(ct: &mut Conntrack, range: std::ops::Range<u32>) {
    for i in range {
        match ct.create(&mixed_flow(i).timeout(3600)) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::EEXIST) => {}
            Err(e) => panic!("create flow {i}: {e}"),
        }
    }
}

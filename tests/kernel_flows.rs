// SPDX-License-Identifier: MIT OR Apache-2.0
//! Create / get / dump / count against the real kernel, in throwaway namespaces.

mod common;

use common::TestNs;
use conntrack::*;

#[test]
fn smoke_create_get_dump_count() {
    require_root!();
    let ns = TestNs::new("smoke");
    let mut ct = ns.conntrack();
    assert_eq!(ct.count().unwrap(), 0);
    let orig = Tuple::tcp(([10, 0, 0, 1], 1111), ([10, 0, 0, 2], 80));
    ct.create(
        &FlowSpec::new(orig)
            .timeout(3600)
            .tcp_state(TcpState::Established)
            .status(Status::SEEN_REPLY | Status::ASSURED),
    )
    .unwrap();
    let got = ct.get(&orig, 0).unwrap().expect("flow exists");
    assert_eq!(got.orig, orig);
    let flows: Vec<Flow> = ct.flows().unwrap().collect::<Result<_>>().unwrap();
    assert_eq!(flows.len(), 1);
    assert_eq!(ct.count().unwrap(), 1);
    eprintln!("{:?}", flows[0]);
    eprintln!("{}", ns.conntrack_cli(&["-L", "-o", "extended,id"]));
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! A dump of 100 000 flows runs in bounded memory (its own test binary, so no
//! other test's allocations disturb the process's peak RSS).

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::ScratchNs;
use conntrack::{FlowSpec, Tuple};

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn dump_of_100k_flows_runs_in_bounded_memory() {
    require_root!();
    let ns = ScratchNs::new("mem");
    let mut ct = ns.conntrack();
    const FLOWS: u32 = 100_000;
    for i in 0..FLOWS {
        let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        let spec = FlowSpec::new(Tuple::udp((src, 4000), ([10, 255, 0, 1], 53))).timeout(3600);
        ct.create(&spec).unwrap();
    }
    assert_eq!(ct.count().unwrap(), FLOWS);

    // Reset the peak-RSS watermark (Linux >= 4.0), then stream the whole table
    // through both the owned and the borrowed path without collecting.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    let baseline = status_kib("VmRSS:");
    let mut owned = 0u32;
    let mut ports = 0u64;
    for flow in ct.flows().unwrap() {
        let flow = flow.unwrap();
        ports += u64::from(flow.orig.src_port().unwrap());
        owned += 1;
    }
    let mut borrowed = 0u32;
    let mut dump = ct.dump().unwrap();
    while let Some(flow) = dump.next_flow() {
        assert_eq!(flow.unwrap().orig.dst_port(), Some(53));
        borrowed += 1;
    }
    drop(dump);
    let peak = status_kib("VmHWM:");
    assert_eq!((owned, borrowed), (FLOWS, FLOWS));
    assert_eq!(ports, u64::from(FLOWS) * 4000);
    let growth_kib = peak.saturating_sub(baseline);
    eprintln!("RSS baseline {baseline} KiB, peak during dumps {peak} KiB, growth {growth_kib} KiB");
    // 100k flows are ~24 MB on the wire; streaming must not hold them.
    assert!(
        growth_kib < 2048,
        "peak RSS grew by {growth_kib} KiB while streaming"
    );
}
